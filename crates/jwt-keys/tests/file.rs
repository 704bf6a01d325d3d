//! The file backend: conformance, layout and permissions, bad files,
//! crash safety, and two real processes rotating the same directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, ManualClock};
use jwt_keys::{conformance, Error, FileKeyStore, KeyState, KeyStore, KeyStoreExt};
use serde_json::Value;

const T0: i64 = 1_700_000_000;
const CHILD_DIR: &str = "JWTKEYS_TEST_CHILD_DIR";
const CHILD_MODE: &str = "JWTKEYS_TEST_CHILD_MODE";

async fn initialized(dir: &Path) -> FileKeyStore {
    let store = FileKeyStore::open(dir);
    store
        .init(conformance::ALG, &conformance::policy())
        .await
        .expect("init");
    store
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A fresh, uninitialized store on the suite's clock, in a temporary
/// directory kept for the test.
async fn make(clock: Arc<ManualClock>) -> Option<(Arc<dyn KeyStore>, tempfile::TempDir)> {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileKeyStore::with_clock(tmp.path().join("keys"), clock);
    Some((Arc::new(store), tmp))
}

jwt_keys::conformance_tests!(make, writable = true);

#[tokio::test]
async fn layout_and_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let clock = Arc::new(ManualClock::new(T0));
    let store = FileKeyStore::with_clock(&dir, clock.clone());
    let init = store
        .init(Algorithm::EdDSA, &conformance::policy())
        .await
        .unwrap();
    assert_eq!(mode(&dir), 0o700);
    for kid in [&init.active, &init.pending] {
        let pem = dir.join(format!("{kid}.pem"));
        assert_eq!(mode(&pem), 0o600, "{}", pem.display());
        let text = std::fs::read_to_string(&pem).unwrap();
        assert!(
            text.starts_with("-----BEGIN PRIVATE KEY-----"),
            "PKCS#8 PEM"
        );
    }
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    assert_eq!(meta["version"], 1);
    assert_eq!(meta["policy"]["verify_grace_secs"], 7200);
    let states: Vec<(&str, &str)> = meta["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![
            (init.active.as_str(), "active"),
            (init.pending.as_str(), "pending")
        ]
    );

    // After the grace the retired key's private key file is destroyed.
    clock.set(T0 + 10);
    let rot = store.rotate(None).await.unwrap();
    clock.set(T0 + 10 + 7_200);
    assert_eq!(
        store.retire_expired().await.unwrap(),
        vec![init.active.clone()]
    );
    assert!(!dir.join(format!("{}.pem", init.active)).exists());
    assert!(dir.join(format!("{}.pem", rot.active)).exists());
    let listed = store.list().await.unwrap();
    let old = listed.iter().find(|r| r.kid == init.active).unwrap();
    assert_eq!((old.state, old.has_private_key), (KeyState::Retired, false));
}

#[tokio::test]
async fn uninitialized_and_double_init() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileKeyStore::open(tmp.path().join("none"));
    match store.active().await.unwrap_err() {
        Error::NotInitialized {
            backend: "file",
            location,
        } => assert!(location.ends_with("none")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.rotate(None).await.unwrap_err().kind(),
        "not_initialized"
    );
    let store = initialized(&tmp.path().join("once")).await;
    assert_eq!(
        store
            .init(Algorithm::ES256, &conformance::policy())
            .await
            .unwrap_err()
            .kind(),
        "already_initialized"
    );
}

/// Opens the directory afresh (no cache) and returns the error.
async fn open_error(dir: &Path) -> Error {
    FileKeyStore::open(dir).active().await.unwrap_err()
}

fn corrupt_path(err: &Error) -> (PathBuf, String) {
    match err {
        Error::CorruptStore { path, reason } => (path.clone(), reason.clone()),
        other => panic!("expected CorruptStore, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_files_are_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let store = initialized(&dir).await;
    let active = store.active().await.unwrap().kid;
    let pending = store.list().await.unwrap()[1].kid.clone();
    let meta_path = dir.join("keys.json");
    let good_meta = std::fs::read(&meta_path).unwrap();
    let active_pem = dir.join(format!("{active}.pem"));
    let pending_pem = dir.join(format!("{pending}.pem"));
    let good_pem = std::fs::read(&active_pem).unwrap();

    // Not JSON.
    std::fs::write(&meta_path, b"{ oops").unwrap();
    let (path, reason) = corrupt_path(&open_error(&dir).await);
    assert_eq!(path, meta_path);
    assert!(
        reason.contains("not a valid key store metadata file"),
        "{reason}"
    );

    // Two active keys.
    let twice = String::from_utf8(good_meta.clone())
        .unwrap()
        .replace("\"pending\"", "\"active\"");
    std::fs::write(&meta_path, twice).unwrap();
    let (path, reason) = corrupt_path(&open_error(&dir).await);
    assert_eq!(path, meta_path);
    assert_eq!(reason, "2 keys are active; exactly one must be");

    // A kid that would escape the directory.
    let escape = String::from_utf8(good_meta.clone())
        .unwrap()
        .replace(&active, "../../etc/passwd");
    std::fs::write(&meta_path, escape).unwrap();
    let (_, reason) = corrupt_path(&open_error(&dir).await);
    assert!(reason.contains("not a base64url string"), "{reason}");
    std::fs::write(&meta_path, &good_meta).unwrap();

    // A missing key file.
    std::fs::remove_file(&active_pem).unwrap();
    let (path, reason) = corrupt_path(&open_error(&dir).await);
    assert_eq!(path, active_pem);
    assert!(reason.contains("private key file is missing"), "{reason}");

    // Garbage in the key file.
    std::fs::write(&active_pem, b"not a key").unwrap();
    std::fs::set_permissions(&active_pem, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (path, reason) = corrupt_path(&open_error(&dir).await);
    assert_eq!(path, active_pem);
    assert!(reason.contains("not a usable private key"), "{reason}");

    // Two key files swapped.
    std::fs::write(&active_pem, std::fs::read(&pending_pem).unwrap()).unwrap();
    let (path, reason) = corrupt_path(&open_error(&dir).await);
    assert_eq!(path, active_pem);
    assert!(reason.contains("thumbprint"), "{reason}");

    // Readable by others.
    std::fs::write(&active_pem, &good_pem).unwrap();
    std::fs::set_permissions(&active_pem, std::fs::Permissions::from_mode(0o644)).unwrap();
    match open_error(&dir).await {
        Error::InsecurePermissions { path, mode, .. } => {
            assert_eq!((path, mode), (active_pem.clone(), 0o644));
        }
        other => panic!("{other:?}"),
    }
    std::fs::set_permissions(&active_pem, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(FileKeyStore::open(&dir).active().await.unwrap().kid, active);

    // A directory or keys.json that others can write: they could extend a
    // retired key's grace or change the policy, so the store refuses it.
    let ledger = dir.join("keys.json");
    for (path, bad, good) in [(&dir, 0o770, 0o700), (&ledger, 0o666, 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(bad)).unwrap();
        match open_error(&dir).await {
            Error::InsecurePermissions {
                path: p,
                mode,
                problem,
            } => {
                assert_eq!((&p, mode), (path, bad));
                assert!(problem.contains("chmod go-w"), "{problem}");
            }
            other => panic!("{}: {other:?}", path.display()),
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(good)).unwrap();
    }
    assert_eq!(FileKeyStore::open(&dir).active().await.unwrap().kid, active);
}

#[tokio::test]
async fn leftovers_of_an_interrupted_write_are_ignored_then_handled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let store = initialized(&dir).await;
    let before = store.list().await.unwrap();
    // A crash after writing a new key file and a temporary metadata file,
    // before the rename: keys.json still describes the previous state.
    let orphan = jwt_core::SigningKey::generate(Algorithm::ES256).unwrap();
    let orphan_path = dir.join(format!("{}.pem", orphan.thumbprint().unwrap()));
    std::fs::write(&orphan_path, orphan.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let tmp_meta = dir.join(".keys.json.tmp-999-0");
    std::fs::write(&tmp_meta, b"{ half-writ").unwrap();

    let reopened = FileKeyStore::open(&dir);
    assert_eq!(reopened.list().await.unwrap(), before);
    reopened.rotate(None).await.unwrap();
    // keys.json does not list the orphan, so the store cannot tell it from
    // someone else's file: it is left in place (and logged), never deleted.
    assert!(
        orphan_path.exists(),
        "an unlisted key file is never deleted"
    );
    assert!(!tmp_meta.exists(), "temporary file swept");
}

/// Not a test on its own: the body of the child processes started by the
/// tests below (it returns at once when the variable is not set).
#[tokio::test]
async fn child_process_rotator() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let store = FileKeyStore::open(&dir);
    let forever = std::env::var(CHILD_MODE).is_ok_and(|m| m == "forever");
    let rounds = if forever { usize::MAX } else { 10 };
    for _ in 0..rounds {
        store.rotate(None).await.expect("child rotate");
    }
}

fn spawn_child(dir: &Path, mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_rotator",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_MODE, mode)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a child test process")
}

async fn assert_consistent(dir: &Path, total: usize) {
    // A fresh store: nothing cached, the directory parses from scratch.
    let store = FileKeyStore::open(dir);
    conformance::assert_one_active(&store, total).await;
    for r in store.list().await.unwrap() {
        let pem = dir.join(format!("{}.pem", r.kid));
        assert_eq!(
            pem.exists(),
            r.state != KeyState::Retired,
            "{}",
            pem.display()
        );
    }
    conformance::sign_verify_round_trip(&store).await;
}

#[tokio::test]
async fn two_processes_rotating_the_same_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shared");
    initialized(&dir).await;
    let a = spawn_child(&dir, "ten");
    let b = spawn_child(&dir, "ten");
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // 2 from init + 10 rotations by each process, each creating one key.
    assert_consistent(&dir, 22).await;
}

/// Kills a child process that rotates in a loop, many times, at varied
/// moments (SIGKILL: no cleanup runs). After every kill the directory parses,
/// has exactly one active and one pending key, and every token signed so far
/// — each by whatever key was active then — still verifies: no key that
/// verifies live tokens is ever lost.
#[tokio::test]
async fn a_process_killed_mid_rotation_leaves_a_consistent_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("crash");
    initialized(&dir).await;
    let mut tokens = Vec::new();
    // Delays from a fixed pseudo-random sequence (reproducible), 5–300 ms:
    // kills land before, during and between the steps of a rotation.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..24 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay_ms = 5 + x % 296;
        let mut child = spawn_child(&dir, "forever");
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.kill().unwrap(); // SIGKILL: no cleanup runs
        child.wait().unwrap();
        let store = FileKeyStore::open(&dir);
        let n = store
            .list()
            .await
            .unwrap_or_else(|e| {
                panic!("round {round}: unparseable after a kill at {delay_ms} ms: {e}")
            })
            .len();
        assert_consistent(&dir, n).await;
        let claims = serde_json::json!({"sub": format!("round-{round}"), "exp": jwt_core::time::now_unix() + 3600});
        tokens.push(
            store
                .sign_token(&claims, None)
                .await
                .expect("sign after a kill"),
        );
        let verifier = jwt_keys::Verifier::new(
            jwt_keys::KeySource::Store(Arc::new(FileKeyStore::open(&dir))),
            jwt_core::Validation::new([conformance::ALG]),
        )
        .unwrap();
        for (i, token) in tokens.iter().enumerate() {
            verifier
                .verify::<Value>(token)
                .await
                .unwrap_or_else(|e| panic!("round {round}: token {i} no longer verifies: {e}"));
        }
        // And the store keeps working.
        store.rotate(None).await.unwrap();
        assert_consistent(&dir, n + 1).await;
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "swept by the next write: {leftovers:?}"
    );
}

#[tokio::test]
async fn another_process_rotation_is_seen_by_a_running_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("seen");
    let reader = initialized(&dir).await;
    let before = reader.active().await.unwrap().kid;
    let writer = FileKeyStore::open(&dir);
    let report = writer.rotate(None).await.unwrap();
    assert_eq!(reader.active().await.unwrap().kid, report.active);
    assert_ne!(report.active, before);
    // The cached reader signs with the new key and refuses the old one.
    match reader.sign(&before, b"a.b").await {
        Err(Error::NotActive {
            state: KeyState::Retiring,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let token = reader
        .sign_token(&serde_json::json!({"exp": 4_000_000_000u64}), None)
        .await
        .unwrap();
    let header = jwt_core::dangerous::insecure_decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(report.active.as_str()));
}
