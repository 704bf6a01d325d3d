//! The file key store's hardening through the real `jwtkit` binary (issue
//! 11): `store init` refuses directories holding other files (item 1),
//! `serve` refuses a store whose `keys.json` is lost (item 2), unsafe owners
//! and modes are refused before any key is written (item 3), and
//! `store rotate --if-due` reports a retirement (item 14).

mod common;

use common::{jwtkit_env, ok, Run};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
/// Another user than the one running the tests.
const OTHER_UID: u32 = 65_534;

/// Every file of `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect()
}

fn init(dir: &Path, uri: &str) {
    ok(
        dir,
        &[
            "store",
            "init",
            uri,
            "--alg",
            "ES256",
            "--rotate-after",
            "7d",
            "--now",
            &NOW.to_string(),
        ],
    );
}

#[test]
fn store_init_refuses_a_directory_with_other_files_and_names_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("tls")).unwrap();
    std::fs::write(dir.join("tls/privkey.pem"), b"certbot's private key").unwrap();
    std::fs::write(dir.join("tls/fullchain.crt"), b"chain").unwrap();
    let before = files(&dir.join("tls"));
    let run = jwtkit(dir, &["store", "init", "file:tls", "--alg", "ES256"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // The wrong directory, not a damaged store (found by the new-user
    // review: it was told its metadata was lost): every file is named.
    assert!(
        run.stderr.contains("error [unexpected_files]")
            && run
                .stderr
                .contains("holds files the store did not write (fullchain.crt, privkey.pem)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        files(&dir.join("tls")),
        before,
        "nothing deleted or written"
    );

    std::fs::create_dir(dir.join("docs")).unwrap();
    std::fs::write(dir.join("docs/notes.txt"), b"keep").unwrap();
    let run = jwtkit(dir, &["store", "init", "file:docs", "--alg", "ES256"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("holds files the store did not write (notes.txt)"),
        "{}",
        run.stderr
    );
    assert_eq!(files(&dir.join("docs")).len(), 1);
}

#[test]
fn serve_refuses_a_store_whose_keys_json_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // An explicit --store, and the default ./.jwtkit/keys.
    init(dir, "file:keys");
    std::fs::create_dir(dir.join(".jwtkit")).unwrap();
    std::fs::set_permissions(dir.join(".jwtkit"), std::fs::Permissions::from_mode(0o700)).unwrap();
    init(dir, "file:.jwtkit/keys");
    for (store, args) in [
        ("keys", vec!["--store", "file:keys"]),
        (".jwtkit/keys", vec![]),
    ] {
        let store_dir = dir.join(store);
        std::fs::remove_file(store_dir.join("keys.json")).unwrap();
        let before = files(&store_dir);
        let pems: Vec<&String> = before.keys().filter(|n| n.ends_with(".pem")).collect();
        assert_eq!(pems.len(), 2);

        let mut full = vec!["serve", "--listen", "127.0.0.1:0"];
        full.extend(args);
        let run = jwtkit(dir, &full);
        assert_eq!(run.code, 2, "{store}: {}", run.stderr);
        assert!(!run.stdout.contains("listening"), "{store}: {}", run.stdout);
        for needed in [
            "no keys.json",
            "Restore keys.json from a backup",
            pems[0].as_str(),
            pems[1].as_str(),
        ] {
            assert!(
                run.stderr.contains(needed),
                "{store}: {needed:?} missing: {}",
                run.stderr
            );
        }
        assert_eq!(files(&store_dir), before, "{store}: the keys are untouched");
    }
}

#[test]
fn unsafe_directories_and_foreign_owners_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // World-writable: refused before any private key is written.
    std::fs::create_dir(dir.join("open")).unwrap();
    std::fs::set_permissions(dir.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = jwtkit(dir, &["store", "init", "file:open", "--alg", "ES256"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("chmod go-w"), "{}", run.stderr);
    assert!(files(&dir.join("open")).is_empty(), "no key written");

    // serve's default ./.jwtkit, existing and world-writable: refused before
    // any key is generated in it.
    let cwd = dir.join("service");
    std::fs::create_dir_all(cwd.join(".jwtkit")).unwrap();
    std::fs::set_permissions(cwd.join(".jwtkit"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = jwtkit(&cwd, &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(".jwtkit"), "{}", run.stderr);
    assert!(run.stderr.contains("chmod go-w"), "{}", run.stderr);
    assert!(files(&cwd.join(".jwtkit")).is_empty(), "no key written");

    // A key file planted by another user.
    init(dir, "file:keys");
    let pem = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pem"))
        .unwrap();
    match std::os::unix::fs::chown(&pem, Some(OTHER_UID), Some(OTHER_UID)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("skipped the ownership part: chown needs root ({e})");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    let run = jwtkit(dir, &["store", "list", "file:keys"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("it belongs to uid {OTHER_UID}")),
        "{}",
        run.stderr
    );
    let run = jwtkit(
        dir,
        &["serve", "--listen", "127.0.0.1:0", "--store", "file:keys"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("insecure owner"), "{}", run.stderr);
}

#[test]
fn rotate_if_due_reports_a_retirement_it_made() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    init(dir, "file:keys");
    let first = serde_json::from_str::<Value>(&ok(dir, &["store", "list", "file:keys", "--json"]))
        .unwrap()[0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = |secs: i64| (NOW + secs).to_string();
    ok(dir, &["store", "rotate", "file:keys", "--now", &t(DAY)]);
    let first_pem = dir.join("keys").join(format!("{first}.pem"));
    assert!(first_pem.exists(), "retiring: still verifies");

    // Nothing due: an object saying so, never `null`.
    let none: Value = serde_json::from_str(&ok(
        dir,
        &[
            "store",
            "rotate",
            "file:keys",
            "--if-due",
            "--now",
            &t(DAY + 60),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(none, serde_json::json!({"rotated": null, "retired": []}));

    // The default grace is one day: at NOW + 2 days the first key is retired
    // (and its private key deleted), though no rotation is due.
    let report: Value = serde_json::from_str(&ok(
        dir,
        &[
            "store",
            "rotate",
            "file:keys",
            "--if-due",
            "--now",
            &t(2 * DAY + 60),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(
        report,
        serde_json::json!({"rotated": null, "retired": [first]})
    );
    assert!(!first_pem.exists(), "its private key is destroyed");

    // In text, with a second store in the same state.
    init(dir, "file:other");
    let second =
        serde_json::from_str::<Value>(&ok(dir, &["store", "list", "file:other", "--json"]))
            .unwrap()[0]["kid"]
            .as_str()
            .unwrap()
            .to_owned();
    ok(dir, &["store", "rotate", "file:other", "--now", &t(DAY)]);
    let text = ok(
        dir,
        &[
            "store",
            "rotate",
            "file:other",
            "--if-due",
            "--now",
            &t(2 * DAY + 60),
        ],
    );
    assert!(text.contains(&format!("retired {second}")), "{text}");
    assert!(!text.contains("nothing changed"), "{text}");
    let text = ok(
        dir,
        &[
            "store",
            "rotate",
            "file:other",
            "--if-due",
            "--now",
            &t(2 * DAY + 120),
        ],
    );
    assert!(text.contains("nothing changed"), "{text}");
}

/// Found by the second outside review: `--now` on a command that writes the
/// store had no bounds, so `--now 0` destroyed keys still in their grace and
/// a millisecond timestamp dated the store in year 58 000.
#[test]
fn store_writes_refuse_a_now_that_runs_backwards_or_is_not_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t0 = 1_900_000_000i64;
    let t = |d: i64| (t0 + d).to_string();
    ok(
        dir,
        &[
            "store",
            "init",
            "file:keys",
            "--alg",
            "ES256",
            "--now",
            &t(0),
        ],
    );
    let before = files(&dir.join("keys"));

    let run = jwtkit(dir, &["store", "rotate", "file:keys", "--now", "0"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("only move forward"), "{}", run.stderr);
    let run = jwtkit(dir, &["store", "rotate", "file:keys", "--now", &t(-60)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let millis = (t0 * 1000).to_string();
    let run = jwtkit(dir, &["store", "rotate", "file:keys", "--now", &millis]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("milliseconds?"), "{}", run.stderr);
    assert_eq!(files(&dir.join("keys")), before, "nothing was written");

    // Forward is fine.
    ok(dir, &["store", "rotate", "file:keys", "--now", &t(86_400)]);
}

/// Runs `jwtkit ARGS` in `dir` (with an admin token, for `serve`).
fn jwtkit(dir: &Path, args: &[&str]) -> Run {
    jwtkit_env(
        dir,
        args,
        &[("JWTKIT_ADMIN_TOKEN", "an-admin-token-of-some-length")],
    )
}
