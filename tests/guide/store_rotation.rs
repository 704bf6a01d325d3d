//! A key store with rotation, where the guide would keep one PEM forever:
//! `store init` under a policy, sign with the active key, `store rotate`,
//! the old token still verifies during the grace, and `store audit` is clean
//! now and reports findings when "now" is past the policy.

use std::path::Path;

use crate::common::{jwtkit, ok};
use crate::support::kid_of;

const DAY: i64 = 86_400;

fn audit_json(dir: &Path, now: Option<i64>) -> (i32, serde_json::Value) {
    let now = now.map(|n| n.to_string());
    let mut args = vec!["store", "audit", "file:keys", "--json"];
    if let Some(now) = &now {
        args.extend(["--now", now.as_str()]);
    }
    let run = jwtkit(dir, &args);
    (run.code, run.json())
}

#[test]
fn rotate_verify_during_grace_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let init = ok(
        dir,
        &[
            "store",
            "init",
            "file:keys",
            "--alg",
            "ES256",
            "--rotate-after",
            "30d",
            "--verify-grace",
            "2d",
        ],
    );
    assert!(init.contains("ES256"), "{init}");

    // What verifiers get before the first token: the active and the pending key.
    let published: serde_json::Value =
        serde_json::from_str(&ok(dir, &["store", "jwks", "file:keys"])).unwrap();
    assert_eq!(
        published["keys"].as_array().unwrap().len(),
        2,
        "active + pending"
    );

    let token = ok(
        dir,
        &[
            "sign",
            "--store",
            "file:keys",
            "--sub",
            "alice",
            "--exp",
            "15m",
        ],
    );
    let token = token.trim();
    let first_kid = kid_of(token);

    let rotated = jwtkit(dir, &["store", "rotate", "file:keys", "--json"]);
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);

    // The retiring key still verifies its tokens during the grace.
    let run = jwtkit(dir, &["verify", "--store", "file:keys", "--json", token]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.json()["header"]["kid"], first_kid.as_str());
    assert_eq!(run.json()["claims"]["sub"], "alice");

    // New tokens come from the promoted key.
    let token2 = ok(
        dir,
        &[
            "sign",
            "--store",
            "file:keys",
            "--sub",
            "bob",
            "--exp",
            "15m",
        ],
    );
    let second_kid = kid_of(token2.trim());
    assert_ne!(second_kid, first_kid);
    let run = jwtkit(
        dir,
        &["verify", "--store", "file:keys", "--json", token2.trim()],
    );
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);

    // Now the store meets its policy.
    let (code, report) = audit_json(dir, None);
    assert_eq!(
        (code, &report["findings"]),
        (0, &serde_json::json!([])),
        "{report}"
    );
    let text = jwtkit(dir, &["store", "audit", "file:keys"]);
    assert_eq!(text.code, 0, "{}", text.stderr);

    // 31 days on, nobody rotated: the active key is too old and the retired
    // one is kept past its grace; exit 1 with both findings named.
    let later = crate::support::unix_now() + 31 * DAY;
    let (code, report) = audit_json(dir, Some(later));
    assert_eq!(code, 1, "{report}");
    let findings: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["finding"].as_str().unwrap().to_owned(),
                f["kid"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        findings.contains(&("active_too_old".into(), second_kid.clone())),
        "{report}"
    );
    assert!(
        findings.contains(&("retiring_past_grace".into(), first_kid.clone())),
        "{report}"
    );

    // Past the grace the first key no longer verifies: the key is looked up
    // before any claim is read, so the error names the key, not the expiry.
    let past_grace = (crate::support::unix_now() + 3 * DAY).to_string();
    let run = jwtkit(
        dir,
        &[
            "verify",
            "--store",
            "file:keys",
            "--now",
            &past_grace,
            "--json",
            token,
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.json()["error"], "unknown_key");
}
