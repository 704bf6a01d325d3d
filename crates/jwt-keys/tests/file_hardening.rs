//! The file store's hardening (issue 11): it deletes only files it wrote
//! (item 1), never initializes over a store whose `keys.json` is lost
//! (item 2), checks owners as well as modes and never opens its lock through
//! a symbolic link (item 3), and reports a retirement done by
//! `rotate_if_due` (item 14).
//!
//! Ownership tests chown files to another real user (uid 65534, `nobody`),
//! which needs root; run as another user they say so and return.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jwt_core::{Algorithm, ManualClock};
use jwt_keys::{Error, FileKeyStore, KeyStore, KeyStoreExt, MemoryKeyStore, RotationPolicy};

const T0: i64 = 1_700_000_000;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
/// Another user than the one running the tests.
const OTHER_UID: u32 = 65_534;

fn policy() -> RotationPolicy {
    RotationPolicy::builder()
        .rotate_after(std::time::Duration::from_secs(7 * DAY as u64))
        .prepublish(std::time::Duration::from_secs(HOUR as u64))
        .verify_grace(std::time::Duration::from_secs(2 * HOUR as u64))
        .build()
        .unwrap()
}

async fn initialized(dir: &Path) -> (FileKeyStore, jwt_keys::RotationReport) {
    let store = at(dir, T0);
    let report = store.init(Algorithm::ES256, &policy()).await.unwrap();
    (store, report)
}

/// The store in `dir` on a clock stopped at `now`: a store decides on its
/// own clock, so each step of a scenario opens it at that step's time.
fn at(dir: &Path, now: i64) -> FileKeyStore {
    FileKeyStore::with_clock(dir, Arc::new(ManualClock::new(now)))
}

/// Every entry of `dir` with its bytes (`None` for a directory or symlink).
fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let bytes = meta.is_file().then(|| std::fs::read(e.path()).unwrap());
            (e.file_name().into_string().unwrap(), bytes)
        })
        .collect()
}

fn pem(dir: &Path, kid: &str) -> PathBuf {
    dir.join(format!("{kid}.pem"))
}

/// Gives `path` to [`OTHER_UID`]; `false` (after saying why) when this
/// process may not (not root).
fn give_away(path: &Path) -> bool {
    match std::os::unix::fs::lchown(path, Some(OTHER_UID), Some(OTHER_UID)) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("skipped: chown to uid {OTHER_UID} needs root ({e})");
            false
        }
        Err(e) => panic!("chown {}: {e}", path.display()),
    }
}

fn take_back(path: &Path) {
    std::os::unix::fs::lchown(path, Some(0), Some(0)).unwrap();
}

// ---- item 1: the store deletes only files it wrote -------------------------

#[tokio::test]
async fn init_refuses_a_directory_with_files_it_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    // Key files of someone else: a certbot key, a hand-made signing key.
    let certs = tmp.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("privkey.pem"), b"certbot's key").unwrap();
    std::fs::write(certs.join("signing.pem"), b"another signing key").unwrap();
    std::fs::write(certs.join("README"), b"notes").unwrap();
    let before = snapshot(&certs);
    match FileKeyStore::open(&certs)
        .init(Algorithm::ES256, &policy())
        .await
        .unwrap_err()
    {
        // Not a store that lost its keys.json (its key files are named by
        // thumbprint): the wrong directory, every file named.
        Error::UnexpectedFiles { dir, files } => {
            assert_eq!(dir, certs);
            assert_eq!(files, ["README", "privkey.pem", "signing.pem"]);
        }
        other => panic!("expected UnexpectedFiles, got {other:?}"),
    }
    assert_eq!(snapshot(&certs), before, "nothing deleted, nothing written");

    // Other files only: refused as well, by name, nothing written (not even `.lock`).
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("notes.txt"), b"keep me").unwrap();
    std::fs::create_dir(docs.join("sub")).unwrap();
    let err = FileKeyStore::open(&docs)
        .init(Algorithm::ES256, &policy())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "unexpected_files");
    assert!(
        err.to_string().contains("(notes.txt, sub)"),
        "names the files: {err}"
    );
    match err {
        Error::UnexpectedFiles { dir, files } => {
            assert_eq!(
                (dir, files),
                (docs.clone(), vec!["notes.txt".into(), "sub".into()])
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        snapshot(&docs).keys().collect::<Vec<_>>(),
        ["notes.txt", "sub"]
    );

    // The store's own leftovers (a lock, an interrupted temporary file) are
    // not foreign: an interrupted first init can be run again.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::write(fresh.join(".lock"), b"").unwrap();
    std::fs::set_permissions(fresh.join(".lock"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(fresh.join(".keys.json.tmp-4242-0"), b"{ half").unwrap();
    let (_, init) = initialized(&fresh).await;
    assert_eq!(
        snapshot(&fresh).keys().cloned().collect::<Vec<_>>(),
        [
            ".lock".to_owned(),
            format!("{}.pem", init.active),
            format!("{}.pem", init.pending),
            "keys.json".to_owned(),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>(),
        "the leftover temporary file is swept"
    );
}

#[tokio::test]
async fn writes_delete_only_retired_key_files_and_own_temporaries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let (_, init) = initialized(&dir).await;
    // Put into the store directory after init: a user's key file, a key
    // file named like a kid the ledger does not list, a file that only looks
    // like a temporary one, and a real leftover of the store.
    let user_pem = dir.join("signing.pem");
    std::fs::write(&user_pem, b"user key").unwrap();
    let stranger = jwt_core::SigningKey::generate(Algorithm::ES256).unwrap();
    let unlisted = pem(&dir, &stranger.thumbprint().unwrap());
    std::fs::write(&unlisted, stranger.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let lookalike = dir.join(".backup.tmp-1-2");
    std::fs::write(&lookalike, b"mine").unwrap();
    let leftover = dir.join(format!(".{}.pem.tmp-999-7", "A".repeat(43)));
    std::fs::write(&leftover, b"half a key").unwrap();

    let rot = at(&dir, T0 + DAY).rotate(None).await.unwrap();
    assert_eq!(
        at(&dir, T0 + DAY + 2 * HOUR)
            .retire_expired()
            .await
            .unwrap(),
        vec![init.active.clone()]
    );
    at(&dir, T0 + 2 * DAY).rotate(None).await.unwrap();

    assert!(user_pem.exists(), "signing.pem is not the store's");
    assert!(
        unlisted.exists(),
        "a key file keys.json does not list is not deleted"
    );
    assert!(lookalike.exists(), "not one of the store's temporary names");
    assert!(
        !leftover.exists(),
        "the store's own temporary file is swept"
    );
    assert!(
        !pem(&dir, &init.active).exists(),
        "the key file of a key keys.json records as retired is destroyed"
    );
    assert!(pem(&dir, &rot.active).exists());
}

// ---- item 2: a store without keys.json is damaged, never re-initialized ----

#[tokio::test]
async fn a_lost_keys_json_is_a_damaged_store_not_an_empty_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let (_, init) = initialized(&dir).await;
    std::fs::remove_file(dir.join("keys.json")).unwrap();
    let before = snapshot(&dir);

    let mut kids = vec![
        format!("{}.pem", init.active),
        format!("{}.pem", init.pending),
    ];
    kids.sort();
    let store = FileKeyStore::open(&dir);
    match store.active().await.unwrap_err() {
        Error::DamagedStore { dir: d, files } => {
            assert_eq!((d, files), (dir.clone(), kids.clone()))
        }
        other => panic!("expected DamagedStore, got {other:?}"),
    }
    let err = store.init(Algorithm::ES256, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), "damaged_store");
    let message = err.to_string();
    for needed in ["no keys.json", "Restore keys.json from a backup", &kids[0]] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from: {message}"
        );
    }
    assert_eq!(
        at(&dir, T0 + DAY).rotate(None).await.unwrap_err().kind(),
        "damaged_store"
    );
    assert_eq!(snapshot(&dir), before, "the old keys are untouched");

    // Missing or empty directories are still simply not initialized.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for d in [tmp.path().join("missing"), empty] {
        assert_eq!(
            FileKeyStore::open(&d).active().await.unwrap_err().kind(),
            "not_initialized",
            "{}",
            d.display()
        );
    }
}

// ---- item 3: owners as well as modes; no symlinked lock ---------------------

#[tokio::test]
async fn files_owned_by_another_user_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let (_, init) = initialized(&dir).await;
    let lock = dir.join(".lock");
    assert!(lock.exists(), "init left its lock file");
    for path in [
        dir.clone(),
        dir.join("keys.json"),
        pem(&dir, &init.active),
        pem(&dir, &init.pending),
        lock.clone(),
    ] {
        if !give_away(&path) {
            return;
        }
        // The lock is only opened by writers.
        let err = if path == lock {
            at(&dir, T0 + DAY).rotate(None).await.unwrap_err()
        } else {
            FileKeyStore::open(&dir).active().await.unwrap_err()
        };
        match &err {
            Error::InsecureOwner { path: p, owner, .. } => {
                assert_eq!((p, *owner), (&path, OTHER_UID))
            }
            other => panic!("{}: expected InsecureOwner, got {other:?}", path.display()),
        }
        assert!(err.to_string().contains("chown"), "{err}");
        take_back(&path);
        FileKeyStore::open(&dir).active().await.unwrap();
    }
    // Root's files are trusted (a root-owned /etc/jwtkit, say).
    take_back(&dir);
    assert_eq!(
        FileKeyStore::open(&dir).active().await.unwrap().kid,
        init.active
    );
}

#[tokio::test]
async fn init_refuses_an_unsafe_directory_before_writing_any_key() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, mode, foreign) in [
        ("world", 0o777, false),
        ("group", 0o770, false),
        ("foreign", 0o700, true),
    ] {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        if foreign && !give_away(&dir) {
            return;
        }
        let err = FileKeyStore::open(&dir)
            .init(Algorithm::ES256, &policy())
            .await
            .unwrap_err();
        let expected = if foreign {
            "insecure_owner"
        } else {
            "insecure_permissions"
        };
        assert_eq!(err.kind(), expected, "{name}: {err}");
        assert!(
            snapshot(&dir).is_empty(),
            "{name}: nothing written, no private key: {:?}",
            snapshot(&dir).keys()
        );
    }
}

#[tokio::test]
async fn the_lock_file_is_never_opened_through_a_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let (_store, _) = initialized(&dir).await;
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let lock = dir.join(".lock");

    // Dangling: opening it with O_CREAT would create the target.
    let target = outside.join("created-through-the-lock");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let err = at(&dir, T0 + DAY).rotate(None).await.unwrap_err();
    match &err {
        Error::CorruptStore { path, reason } => {
            assert_eq!(path, &lock);
            assert!(reason.contains("symbolic link"), "{reason}");
        }
        other => panic!("expected CorruptStore, got {other:?}"),
    }
    assert!(!target.exists(), "nothing created through the link");

    // To an existing file.
    std::fs::write(&target, b"precious").unwrap();
    assert_eq!(
        at(&dir, T0 + DAY).rotate(None).await.unwrap_err().kind(),
        "corrupt_store"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");

    // Removed, the store creates a fresh lock and works again.
    std::fs::remove_file(&lock).unwrap();
    at(&dir, T0 + DAY).rotate(None).await.unwrap();
    assert!(std::fs::symlink_metadata(&lock).unwrap().is_file());
}

// ---- item 14: rotate_if_due reports a retirement ----------------------------

#[tokio::test]
async fn rotate_if_due_reports_a_retirement_without_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let file = FileKeyStore::with_clock(tmp.path().join("keys"), clock.clone());
    let memory = MemoryKeyStore::with_clock(clock.clone());
    for store in [&file as &dyn KeyStore, &memory] {
        clock.set(T0);
        let init = store.init(Algorithm::ES256, &policy()).await.unwrap();
        clock.set(T0 + DAY);
        let rot = store.rotate(None).await.unwrap();
        // Nothing due at all: an empty report, not a lie.
        clock.set(T0 + DAY + HOUR);
        let nothing = store.rotate_if_due().await.unwrap();
        assert_eq!((nothing.rotated.as_ref(), nothing.retired.len()), (None, 0));
        assert!(!nothing.changed());

        // The old key's grace ended; rotation is not due (activated a day ago).
        clock.set(T0 + DAY + 2 * HOUR);
        let report = store.rotate_if_due().await.unwrap();
        assert_eq!(report.rotated, None, "{}", store.name());
        assert_eq!(
            report.retired,
            vec![init.active.clone()],
            "{}",
            store.name()
        );
        assert!(report.changed());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"rotated": null, "retired": [init.active]})
        );
        let listed = store.list().await.unwrap();
        let old = listed.iter().find(|r| r.kid == init.active).unwrap();
        assert!(!old.has_private_key, "{}: destroyed", store.name());

        // A due rotation lists what it retired on the way, at both levels.
        clock.set(T0 + 2 * DAY);
        let again = store.rotate(None).await.unwrap();
        clock.set(T0 + 9 * DAY + 3 * HOUR);
        let due = store.rotate_if_due().await.unwrap();
        let rotated = due.rotated.expect("due");
        assert_eq!(rotated.previous.as_deref(), Some(again.active.as_str()));
        assert_eq!(due.retired, vec![rot.active.clone()]);
        assert_eq!(rotated.retired, due.retired);
    }
}
