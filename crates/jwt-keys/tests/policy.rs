//! RotationPolicy validation, audit findings, rotate_if_due, and open_store.

use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, ManualClock};
use jwt_keys::{
    open_store, Error, Finding, KeyStore, KeyStoreExt, MemoryKeyStore, RotationPolicy,
    StoreRegistry,
};

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

fn refused(b: jwt_keys::RotationPolicyBuilder) -> String {
    match b.build() {
        Err(Error::InvalidConfig { reason, .. }) => reason,
        other => panic!("expected a policy error, got {other:?}"),
    }
}

#[test]
fn contradictory_policies_are_refused() {
    let r = refused(
        RotationPolicy::builder()
            .max_token_lifetime(Duration::from_secs(3600))
            .leeway(Duration::from_secs(60))
            .verify_grace(Duration::from_secs(3600)),
    );
    assert!(r.contains("raise verify_grace to at least 3660s"), "{r}");
    let r = refused(
        RotationPolicy::builder()
            .rotate_after(Duration::from_secs(3600))
            .prepublish(Duration::from_secs(7200)),
    );
    assert!(
        r.contains("prepublish (7200s) is longer than rotate_after (3600s)"),
        "{r}"
    );
    let r = refused(RotationPolicy::builder().rotate_after(Duration::ZERO));
    assert!(r.contains("rotate_after must be above zero"), "{r}");
    // A store that allows no token lifetime could never sign.
    let r = refused(RotationPolicy::builder().max_token_lifetime(Duration::ZERO));
    assert!(r.contains("max_token_lifetime must be at least 1s"), "{r}");
    let r = refused(RotationPolicy::builder().allowed_algorithms([]));
    assert!(r.contains("allowed_algorithms is empty"), "{r}");
    let ok = RotationPolicy::builder()
        .max_token_lifetime(Duration::from_secs(3600))
        .leeway(Duration::from_secs(60))
        .verify_grace(Duration::from_secs(3660))
        .build()
        .unwrap();
    assert_eq!(ok.verify_grace(), Duration::from_secs(3660));
}

#[test]
fn policies_round_trip_through_json_and_are_validated_on_load() {
    let p = RotationPolicy::default();
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("\"rotate_after_secs\":2592000"), "{json}");
    assert_eq!(serde_json::from_str::<RotationPolicy>(&json).unwrap(), p);
    let bad = json.replace("\"verify_grace_secs\":86400", "\"verify_grace_secs\":1");
    let err = serde_json::from_str::<RotationPolicy>(&bad).unwrap_err();
    assert!(err.to_string().contains("verify_grace"), "{err}");
}

fn policy() -> RotationPolicy {
    RotationPolicy::builder()
        .rotate_after(Duration::from_secs(7 * DAY as u64))
        .prepublish(Duration::from_secs(DAY as u64))
        .verify_grace(Duration::from_secs(DAY as u64))
        .allowed_algorithms([Algorithm::ES256, Algorithm::EdDSA])
        .build()
        .unwrap()
}

#[tokio::test]
async fn rotate_if_due_follows_the_policy() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = MemoryKeyStore::with_clock(clock.clone());
    let init = store.init(Algorithm::EdDSA, &policy()).await.unwrap();
    clock.set(T0 + 7 * DAY - 1);
    assert_eq!(store.rotate_if_due().await.unwrap().rotated, None);
    clock.set(T0 + 7 * DAY);
    let r = store.rotate_if_due().await.unwrap().rotated.expect("due");
    assert_eq!(r.active, init.pending);
    assert_eq!(r.published_for_secs, Some(7 * DAY));
    // Just rotated: nothing due, even if called again by another host.
    assert_eq!(store.rotate_if_due().await.unwrap().rotated, None);
    // An emergency rotation (e.g. a leaked key) happens at once, reports how
    // briefly its key was published, and restarts the policy's clock.
    clock.set(T0 + 7 * DAY + 10);
    let emergency = store.rotate(None).await.unwrap();
    assert_eq!(emergency.published_for_secs, Some(10));
    clock.set(T0 + 14 * DAY + 20);
    assert_eq!(
        store
            .rotate_if_due()
            .await
            .unwrap()
            .rotated
            .map(|r| r.previous),
        Some(Some(emergency.active))
    );
}

#[tokio::test]
async fn audit_reports_each_violation() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = MemoryKeyStore::with_clock(clock.clone());
    let init = store.init(Algorithm::ES256, &policy()).await.unwrap();
    assert!(store.audit().await.unwrap().is_clean());

    clock.set(T0 + 8 * DAY);
    let audit = store.audit().await.unwrap();
    assert_eq!(
        audit.findings,
        vec![Finding::ActiveTooOld {
            kid: init.active.clone(),
            age_secs: 8 * DAY,
            rotate_after_secs: 7 * DAY
        }]
    );
    store.rotate(None).await.unwrap();
    clock.set(T0 + 10 * DAY);
    let audit = store.audit().await.unwrap();
    assert_eq!(
        audit.findings,
        vec![Finding::RetiringPastGrace {
            kid: init.active.clone(),
            retire_at: T0 + 9 * DAY
        }]
    );
    assert!(audit.findings[0]
        .to_string()
        .contains("kept past its grace"));
    let json = serde_json::to_value(&audit).unwrap();
    assert_eq!(json["findings"][0]["finding"], "retiring_past_grace");
}

#[tokio::test]
async fn audit_flags_disallowed_algorithms() {
    let store = jwt_keys::EnvKeyStore::builder("K")
        .key(
            jwt_core::SigningKey::generate(Algorithm::ES384)
                .unwrap()
                .to_pkcs8_pem()
                .unwrap()
                .as_str(),
        )
        .kid("k")
        .policy(policy())
        .build()
        .unwrap();
    let audit = store.audit().await.unwrap();
    assert_eq!(
        audit.findings,
        vec![Finding::DisallowedAlgorithm {
            kid: "k".into(),
            alg: Algorithm::ES384
        }]
    );
}

#[tokio::test]
async fn open_store_understands_file_and_env_uris() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    let store = open_store(&format!("file:{}", dir.display())).unwrap();
    assert_eq!(store.name(), "file");
    store.init(Algorithm::ES256, &policy()).await.unwrap();
    let again = open_store(&format!("file://{}", dir.display())).unwrap();
    assert_eq!(again.active().await.unwrap(), store.active().await.unwrap());

    for (uri, needle) in [
        ("s3://bucket", "unknown scheme `s3`"),
        ("/just/a/path", "no scheme"),
        ("file:", "no directory"),
        ("file://host/dir", "absolute path"),
        ("env:1BAD", "environment variable name"),
    ] {
        match open_store(uri) {
            Err(Error::InvalidUri { uri: u, reason }) => {
                assert_eq!(u, uri);
                assert!(reason.contains(needle), "{uri}: {reason}");
            }
            other => panic!("{uri}: {other:?}"),
        }
    }
    // kms: and vault+http(s): exist only when built with those backends.
    let mut expected = vec!["env", "file"];
    if cfg!(feature = "kms") {
        expected.push("kms");
    } else {
        match open_store("kms:alias/jwt") {
            Err(Error::InvalidUri { reason, .. }) => {
                assert!(reason.contains("unknown scheme `kms`"), "{reason}")
            }
            other => panic!("kms: without the feature: {other:?}"),
        }
    }
    if cfg!(feature = "vault") {
        expected.extend(["vault+http", "vault+https"]);
    }
    if cfg!(feature = "pkcs11") {
        expected.push("pkcs11");
    }
    let registry = StoreRegistry::with_builtin();
    let mut schemes = registry.schemes();
    schemes.sort();
    expected.sort();
    assert_eq!(schemes, expected);
}

/// A store opened from a URI reads the clock given to the registry (or to
/// `open_store_with_clock`): it records its lifecycle times on it and
/// decides key states on it, so one clock drives a whole run.
#[tokio::test]
async fn stores_opened_from_a_uri_run_on_the_given_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let uri = format!("file:{}", tmp.path().join("k").display());
    let clock = Arc::new(ManualClock::new(T0));
    let store = jwt_keys::open_store_with_clock(&uri, clock.clone()).unwrap();
    assert_eq!(store.clock().now(), T0);
    let init = store.init(Algorithm::ES256, &policy()).await.unwrap();
    let listed = store.list().await.unwrap();
    let active = listed.iter().find(|r| r.kid == init.active).unwrap();
    assert_eq!(active.created_at, Some(T0));

    clock.set(T0 + DAY);
    let rotated = store.rotate(None).await.unwrap();
    assert_eq!(rotated.previous_retire_at, Some(T0 + 2 * DAY));
    // The same store, opened by a registry on a clock past the grace: the
    // old key no longer verifies there, while it still does on `clock`.
    let later = StoreRegistry::with_builtin()
        .with_clock(Arc::new(ManualClock::new(T0 + 2 * DAY)))
        .open(&uri)
        .unwrap();
    let kids = |jwks: jwt_core::Jwks| -> Vec<String> {
        jwks.keys.into_iter().filter_map(|k| k.kid).collect()
    };
    assert!(kids(store.verification_keys().await.unwrap()).contains(&init.active));
    assert!(!kids(later.verification_keys().await.unwrap()).contains(&init.active));
    assert_eq!(
        later.audit().await.unwrap().findings,
        vec![Finding::RetiringPastGrace {
            kid: init.active.clone(),
            retire_at: T0 + 2 * DAY
        }]
    );
}
