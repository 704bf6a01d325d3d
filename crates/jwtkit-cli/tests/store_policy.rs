//! Issue 13, item 10 (and item 3's audit wording): `store init` sets the
//! whole rotation policy (`--allowed-alg`, `--max-token-lifetime`,
//! `--leeway`); `store audit` says when the next rotation is due and which
//! key signs next; `store rotate` says how long the new signing key had been
//! published and warns when verifiers' caches may not know it yet.

mod common;

use std::path::Path;

use common::{jwtkit, ok, Run};
use serde_json::Value;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn at(t: i64) -> String {
    t.to_string()
}

fn json(run: &Run) -> Value {
    assert_eq!(run.stdout.lines().count(), 1, "{:?}", run.stdout);
    run.json()
}

fn init(dir: &Path, extra: &[&str]) -> Run {
    let now = at(T0);
    let mut args = vec![
        "store",
        "init",
        "file:keys",
        "--alg",
        "ES256",
        "--now",
        &now,
    ];
    args.extend_from_slice(extra);
    jwtkit(dir, &args)
}

#[test]
fn init_sets_allowed_algorithms_and_lifetimes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let run = init(
        dir,
        &[
            "--allowed-alg",
            "ES256,EdDSA",
            "--allowed-alg",
            "PS256",
            "--max-token-lifetime",
            "2h",
            "--leeway",
            "1m",
            "--verify-grace",
            "3h",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "policy: rotate after 30d, prepublish 1d, verify grace 3h, max token lifetime 2h, \
             leeway 1m, algorithms PS256, ES256, EdDSA"
        ),
        "{}",
        run.stdout
    );
    // The store recorded it: a token longer than max-token-lifetime is refused.
    let run = jwtkit(
        dir,
        &[
            "sign",
            "--store",
            "file:keys",
            "--exp",
            "3h",
            "--now",
            &at(T0),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("max_token_lifetime"), "{}", run.stderr);
    ok(
        dir,
        &[
            "sign",
            "--store",
            "file:keys",
            "--exp",
            "2h",
            "--now",
            &at(T0),
        ],
    );
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("keys/keys.json")).unwrap())
            .unwrap();
    let policy = &recorded["policy"];
    assert_eq!(policy["max_token_lifetime_secs"], 7200);
    assert_eq!(policy["leeway_secs"], 60);
    assert_eq!(
        policy["allowed_algorithms"],
        serde_json::json!(["PS256", "ES256", "EdDSA"])
    );
}

#[test]
fn init_refuses_a_policy_that_contradicts_itself_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["--allowed-alg", "RS256"],
            "usage",
            "--alg ES256 is not among --allowed-alg (RS256)",
        ),
        (
            &["--allowed-alg", "ES256,HS256"],
            "usage",
            "--allowed-alg HS256: a rotating store holds asymmetric keys only",
        ),
        (&["--allowed-alg", "ES999"], "usage", "--allowed-alg ES999:"),
        (
            &["--max-token-lifetime", "2h", "--verify-grace", "1h"],
            "invalid_config",
            "--verify-grace: invalid verify_grace",
        ),
        (
            &["--leeway", "2d"],
            "invalid_config",
            "--leeway: invalid leeway",
        ),
    ];
    for (flags, kind, fragment) in cases {
        let run = init(dir, flags);
        assert_eq!(run.code, 2, "{flags:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("error [{kind}]: {fragment}")),
            "{flags:?}: {}",
            run.stderr
        );
        assert!(!dir.join("keys").exists(), "{flags:?} wrote the store");
    }
}

#[test]
fn audit_says_when_the_next_rotation_is_due_and_who_signs_next() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let run = init(dir, &["--rotate-after", "7d", "--prepublish", "2h"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list: Value =
        serde_json::from_str(&ok(dir, &["store", "list", "file:keys", "--json"])).unwrap();
    let kid = |state: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["state"] == state)
            .unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (active, pending) = (kid("active"), kid("pending"));

    let run = jwtkit(
        dir,
        &[
            "store",
            "audit",
            "file:keys",
            "--now",
            &at(T0 + DAY),
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run);
    assert_eq!(doc["active"], active.as_str());
    assert_eq!(doc["next_signer"], pending.as_str());
    assert_eq!(doc["next_rotation_at"], T0 + 7 * DAY);
    assert_eq!(doc["findings"], serde_json::json!([]));

    let run = jwtkit(
        dir,
        &["store", "audit", "file:keys", "--now", &at(T0 + DAY)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("compliant: no findings\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!("signing key: {active}\n")));
    assert!(
        run.stdout
            .contains("next rotation: due at 2027-01-22T08:00:00Z (1800604800), in 6d\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "next signing key: {pending} (pending, published)\n"
        )),
        "{}",
        run.stdout
    );

    // Overdue, and a retiring key kept past its grace: the findings name the
    // command (with this store's URI) and the library call.
    ok(
        dir,
        &["store", "rotate", "file:keys", "--now", &at(T0 + 3 * DAY)],
    );
    let run = jwtkit(
        dir,
        &["store", "audit", "file:keys", "--now", &at(T0 + 20 * DAY)],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "destroy it with `jwtkit store rotate --if-due file:keys`, which retires every key \
             past its grace and rotates only if a rotation is due (library: \
             `KeyStore::retire_expired`)"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("(rotate or retire_expired)"));
    assert!(
        run.stdout
            .contains("rotate with `jwtkit store rotate --if-due file:keys`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("next rotation: overdue since 2027-01-25T08:00:00Z (1800864000)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("error [policy_violation]"),
        "{}",
        run.stderr
    );
    // With --json: the report is the one document; no error line anywhere.
    let run = jwtkit(
        dir,
        &[
            "store",
            "audit",
            "file:keys",
            "--now",
            &at(T0 + 20 * DAY),
            "--json",
        ],
    );
    assert_eq!(run.code, 1);
    let doc = json(&run);
    assert_eq!(doc["findings"].as_array().unwrap().len(), 2, "{doc}");
    assert_eq!(doc["next_signer"].as_str().map(str::len), Some(43));
    assert!(!run.stderr.contains("error ["), "{}", run.stderr);
}

#[test]
fn rotate_reports_how_long_the_new_key_was_published_and_warns_when_too_short() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let run = init(dir, &["--prepublish", "2h"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // An emergency rotation 5 minutes after init: the new key had been
    // published for 5m, less than prepublish. Text and a warning.
    let run = jwtkit(
        dir,
        &["store", "rotate", "file:keys", "--now", &at(T0 + 300)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "had been published for 5m before it started signing (policy prepublish: 2h)"
        ),
        "{}",
        run.stdout
    );
    for fragment in [
        "warning: the new signing key ",
        "had been published for only 5m, less than the policy's prepublish (2h)",
        "refuse its tokens (unknown_key) until they fetch it again",
        "Cache-Control max-age, 10m without one, at most 1d",
        "rotate with `jwtkit store rotate --if-due file:keys`",
        "or lower the verifiers' cache TTL",
    ] {
        assert!(run.stderr.contains(fragment), "{fragment}: {}", run.stderr);
    }

    // A day later, with --json: published for 1d, no warning.
    let run = jwtkit(
        dir,
        &[
            "store",
            "rotate",
            "file:keys",
            "--now",
            &at(T0 + 300 + DAY),
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run);
    assert_eq!(doc["published_for_secs"], DAY);
    assert_eq!(doc["prepublish_secs"], 7200);
    assert_eq!(doc["warnings"], serde_json::json!([]));
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    // --if-due --json a minute later: nothing due, the documented shape.
    let run = jwtkit(
        dir,
        &[
            "store",
            "rotate",
            "file:keys",
            "--if-due",
            "--now",
            &at(T0 + 360 + DAY),
            "--json",
        ],
    );
    assert_eq!(json(&run)["rotated"], Value::Null);

    // A forced rotation 10 minutes later, with --json: the warning is in the
    // document and on stderr.
    let run = jwtkit(
        dir,
        &[
            "store",
            "rotate",
            "file:keys",
            "--now",
            &at(T0 + 900 + DAY),
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run);
    assert_eq!(doc["published_for_secs"], 600);
    let warning = doc["warnings"][0].as_str().unwrap();
    assert!(warning.contains("published for only 10m"), "{warning}");
    assert!(
        run.stderr.contains("published for only 10m"),
        "{}",
        run.stderr
    );

    // With a prepublish under the default JWKS cache TTL (10 min), the TTL is the bar.
    let other = tempfile::tempdir().unwrap();
    let now = at(T0);
    ok(
        other.path(),
        &[
            "store",
            "init",
            "file:s",
            "--alg",
            "EdDSA",
            "--prepublish",
            "1m",
            "--now",
            &now,
        ],
    );
    let run = jwtkit(
        other.path(),
        &["store", "rotate", "file:s", "--now", &at(T0 + 120)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "published for only 2m, less than the JWKS cache TTL a jwt-keys verifier uses \
             without max-age (10m)"
        ),
        "{}",
        run.stderr
    );
}
