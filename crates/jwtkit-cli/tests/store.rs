//! The rotation scenario through the real `jwtkit` binary: `store init` →
//! sign T1 → `store rotate` → sign T2 (new kid) → both verify through
//! `--store` and through the published JWKS → after `verify_grace`, T1 is
//! refused with `unknown_key` and its key is gone from the JWKS.

mod common;

use common::{jwtkit, ok};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const NOW: i64 = 1_800_000_000;

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let bytes = jwt_core::b64::decode(header.as_bytes(), "header").unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

fn verify_json(dir: &Path, source: &[&str], token: &str, now: i64) -> (i32, Value) {
    let now = now.to_string();
    let mut args = vec!["verify"];
    args.extend_from_slice(source);
    args.extend_from_slice(&["--now", &now, "--json", token]);
    let run = jwtkit(dir, &args);
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "verify --json printed {:?} ({e}); stderr {}",
            run.stdout, run.stderr
        )
    });
    (run.code, v)
}

fn jwks_kids(dir: &Path) -> Vec<String> {
    let jwks: Value = serde_json::from_str(&ok(dir, &["store", "jwks", "file:keys"])).unwrap();
    for key in jwks["keys"].as_array().unwrap() {
        assert!(key.get("d").is_none(), "private member in the JWKS: {key}");
    }
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rotation_scenario_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = |offset: i64| (NOW + offset).to_string();

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
    // Private keys are written with mode 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(dir.join("keys")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "pem") {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", path.display());
            }
        }
    }
    let t1 = ok(
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
    let t1 = t1.trim();
    let kid1 = kid_of(t1);

    let rotated = ok(
        dir,
        &["store", "rotate", "file:keys", "--now", &t(60), "--json"],
    );
    let report: Value = serde_json::from_str(&rotated).unwrap();
    assert_eq!(report["previous"], kid1);

    let t2 = ok(
        dir,
        &[
            "sign",
            "--store",
            "file:keys",
            "--sub",
            "bob",
            "--exp",
            "1h",
            "--now",
            &t(60),
        ],
    );
    let t2 = t2.trim();
    let kid2 = kid_of(t2);
    assert_ne!(kid1, kid2, "rotation changes the signing kid at once");
    assert_eq!(report["active"], kid2);

    // Both verify through the store…
    for (token, sub) in [(t1, "alice"), (t2, "bob")] {
        let (code, v) = verify_json(dir, &["--store", "file:keys"], token, NOW + 120);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["claims"]["sub"], sub);
    }
    // …and through the published JWKS (pending + active + retiring).
    let kids = jwks_kids(dir);
    assert_eq!(kids.len(), 3, "{kids:?}");
    assert!(kids.contains(&kid1) && kids.contains(&kid2));
    std::fs::write(
        dir.join("jwks.json"),
        ok(dir, &["store", "jwks", "file:keys"]),
    )
    .unwrap();
    for token in [t1, t2] {
        let (code, v) = verify_json(
            dir,
            &["--key", "jwks.json", "--alg", "ES256"],
            token,
            NOW + 120,
        );
        assert_eq!(code, 0, "{v}");
    }

    // After verify_grace (2h from the rotation), T1's key is retired: gone
    // from the JWKS and refused as unknown_key. (--optional-exp isolates the
    // key check from T1's own expiry.)
    let late = NOW + 60 + 2 * 3600 + 1;
    ok(
        dir,
        &["store", "rotate", "file:keys", "--now", &late.to_string()],
    );
    assert!(!jwks_kids(dir).contains(&kid1));
    let mut args = vec!["--store", "file:keys", "--optional-exp"];
    let (code, v) = verify_json(dir, &args, t1, late);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"], "unknown_key");
    std::fs::write(
        dir.join("jwks.json"),
        ok(dir, &["store", "jwks", "file:keys"]),
    )
    .unwrap();
    args = vec!["--key", "jwks.json", "--alg", "ES256", "--optional-exp"];
    let (code, v) = verify_json(dir, &args, t1, late);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"], "unknown_key");

    // list shows the lifecycle.
    let listed: Value =
        serde_json::from_str(&ok(dir, &["store", "list", "file:keys", "--json"])).unwrap();
    let state = |kid: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kid"] == kid)
            .map(|r| r["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state(&kid1).as_deref(), Some("retired"));
    assert_eq!(state(&kid2).as_deref(), Some("retiring"));
}

#[test]
fn audit_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        dir,
        &[
            "store",
            "init",
            "file:k",
            "--alg",
            "EdDSA",
            "--rotate-after",
            "30d",
            "--now",
            "1800000000",
        ],
    );
    let clean = jwtkit(
        dir,
        &["store", "audit", "file:k", "--now", "1800000100", "--json"],
    );
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let report: Value = serde_json::from_str(&clean.stdout).unwrap();
    assert_eq!(report["findings"], Value::Array(vec![]));
    let late = jwtkit(
        dir,
        &["store", "audit", "file:k", "--now", "1803000000", "--json"],
    );
    assert_eq!(late.code, 1);
    let report: Value = serde_json::from_str(&late.stdout).unwrap();
    assert_eq!(report["findings"][0]["finding"], "active_too_old");
    // rotate --if-due does nothing before rotate_after, and rotates after.
    assert!(ok(
        dir,
        &[
            "store",
            "rotate",
            "file:k",
            "--if-due",
            "--now",
            "1800000200"
        ]
    )
    .contains("not due"));
    assert!(ok(
        dir,
        &[
            "store",
            "rotate",
            "file:k",
            "--if-due",
            "--now",
            "1803000000"
        ]
    )
    .contains("rotated"));
    let after = jwtkit(dir, &["store", "audit", "file:k", "--now", "1803000001"]);
    assert_eq!(after.code, 0, "{}", after.stdout);
}

#[test]
fn store_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Not initialized.
    let run = jwtkit(
        dir,
        &["sign", "--store", "file:empty", "--sub", "a", "--exp", "1m"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("store init"), "{}", run.stderr);
    // Unknown scheme.
    let run = jwtkit(dir, &["store", "list", "ftp:x"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("invalid_uri"), "{}", run.stderr);
    // The env backend is read-only.
    let key = ok(dir, &["keys", "generate", "--alg", "ES256"]);
    let run = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(["store", "rotate", "env:JWTKIT_TEST_KEY"])
        .env("JWTKIT_TEST_KEY", key.trim())
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("read_only"));
    // --jwks-url without --alg fetches (the entries may declare their
    // `alg`: tests/verify_sources.rs); an unreachable URL is a setup error.
    // --kid cannot override a store's kid.
    let run = jwtkit(
        dir,
        &["verify", "--jwks-url", "http://127.0.0.1:9/jwks", "a.b.c"],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("fetching the JWKS"), "{}", run.stderr);
    ok(dir, &["store", "init", "file:s", "--alg", "ES256"]);
    let run = jwtkit(
        dir,
        &["sign", "--store", "file:s", "--kid", "x", "--exp", "1m"],
    );
    assert_eq!(run.code, 2);
    let run = jwtkit(
        dir,
        &["sign", "--store", "file:s", "--alg", "RS256", "--exp", "1m"],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("signs ES256"), "{}", run.stderr);
}
