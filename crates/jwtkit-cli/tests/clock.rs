//! One clock per run, through the real `jwtkit` binary: `--now` decides the
//! key states the store reports to `verify`, exactly as it decides them for
//! `store audit`, so the two commands agree at any instant.
//!
//! The times are far in the future (2096) so that the system clock, which
//! a store read before `--now` reached it, would still see the key as
//! retiring and accept the token: these tests fail on that old behaviour.

mod common;

use common::{jwtkit, ok, Run};
use std::path::Path;

use serde_json::Value;

const T0: i64 = 4_000_000_000;
/// The grace of the test store: two hours.
const GRACE: i64 = 2 * 3600;

fn json(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "expected one JSON value, got {:?} ({e}); stderr {}",
            run.stdout, run.stderr
        )
    })
}

/// A file store initialized at `T0` (grace 2h), a token signed by its first
/// key at `T0`, and a rotation at `T0 + 60` that starts retiring that key
/// (until `T0 + 60 + GRACE`). Nothing retires it afterwards: only the
/// clock of each later command decides whether its grace has ended.
///
/// The token is signed with the key's own PEM file, past the store's
/// lifetime limit (10h), so that it is still unexpired after the grace:
/// only the key's state can refuse it.
fn store_with_retiring_token(dir: &Path) -> (String, String) {
    let t = |offset: i64| (T0 + offset).to_string();
    ok(
        dir,
        &[
            "store",
            "init",
            "file:keys",
            "--alg",
            "ES256",
            "--verify-grace",
            "2h",
            "--max-token-lifetime",
            "1h",
            "--now",
            &t(0),
        ],
    );
    let by_store = ok(
        dir,
        &[
            "sign",
            "--store",
            "file:keys",
            "--sub",
            "alice",
            "--exp",
            "1h",
            "--now",
            &t(0),
        ],
    );
    let kid = kid_of(by_store.trim());
    let pem = format!("keys/{kid}.pem");
    let token = ok(
        dir,
        &[
            "sign",
            "--key",
            &pem,
            "--alg",
            "ES256",
            // `=`: a thumbprint kid may start with `-`.
            &format!("--kid={kid}"),
            "--sub",
            "alice",
            "--exp",
            "10h",
            "--now",
            &t(0),
        ],
    );
    let rotated: Value = serde_json::from_str(&ok(
        dir,
        &["store", "rotate", "file:keys", "--now", &t(60), "--json"],
    ))
    .unwrap();
    assert_eq!(rotated["previous"], kid.as_str());
    assert_eq!(rotated["previous_retire_at"], T0 + 60 + GRACE);
    (token.trim().to_owned(), kid)
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let bytes = jwt_core::b64::decode(header.as_bytes(), "header").unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

/// `verify --store --now T` on the token.
fn verify_at(dir: &Path, token: &str, now: i64) -> Run {
    jwtkit(
        dir,
        &[
            "verify",
            "--store",
            "file:keys",
            "--now",
            &now.to_string(),
            "--json",
            token,
        ],
    )
}

fn audit_at(dir: &Path, now: i64) -> Run {
    jwtkit(
        dir,
        &[
            "store",
            "audit",
            "file:keys",
            "--now",
            &now.to_string(),
            "--json",
        ],
    )
}

fn past_grace_kids(audit: &Value) -> Vec<String> {
    audit["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["finding"] == "retiring_past_grace")
        .map(|f| f["kid"].as_str().expect("kid").to_owned())
        .collect()
}

#[test]
fn verify_refuses_a_key_past_its_grace_at_now_as_audit_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (token, kid) = store_with_retiring_token(dir);
    let after_grace = T0 + 60 + GRACE + 1;

    let audit = audit_at(dir, after_grace);
    assert_eq!(
        audit.code, 1,
        "audit finds the key past its grace: {}",
        audit.stdout
    );
    assert_eq!(past_grace_kids(&json(&audit)), vec![kid.clone()]);

    let run = verify_at(dir, &token, after_grace);
    assert_eq!(run.code, 1, "verify refuses the token: {}", run.stdout);
    assert_eq!(json(&run)["error"], "unknown_key");
}

#[test]
fn verify_and_audit_agree_while_the_grace_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (token, _) = store_with_retiring_token(dir);
    // The last second of the grace (it ends at retire_at, exclusive).
    let in_grace = T0 + 60 + GRACE - 1;

    let audit = audit_at(dir, in_grace);
    assert!(
        past_grace_kids(&json(&audit)).is_empty(),
        "{}",
        audit.stdout
    );

    let run = verify_at(dir, &token, in_grace);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(json(&run)["claims"]["sub"], "alice");
}

#[test]
fn each_run_decides_on_its_own_now_without_writing() {
    // `verify --now` decides on its own clock: an earlier instant still
    // accepts the token after a later `verify` refused it, since neither
    // run wrote anything to the store.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (token, _) = store_with_retiring_token(dir);
    let after_grace = T0 + 60 + GRACE + 1;
    assert_eq!(verify_at(dir, &token, after_grace).code, 1);
    assert_eq!(verify_at(dir, &token, T0 + 120).code, 0);
}
