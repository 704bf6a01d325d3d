//! The rotation scenario end to end, on a real file store: init → sign T1 →
//! rotate → sign T2 (new kid) → T1 and T2 verify through the store and
//! through the published JWKS → after verify_grace, T1 is `unknown_key` and
//! its key is gone from the JWKS.

mod common;

use std::sync::Arc;

use common::JwksServer;
use jwt_core::{Algorithm, Clock, ManualClock, Validation};
use jwt_keys::{
    CacheOptions, FileKeyStore, KeySource, KeyState, KeyStore, KeyStoreExt, RotationPolicy,
    Verifier,
};
use serde_json::{json, Value};
use std::time::Duration;

const T0: i64 = 1_700_000_000;
const HOUR: u64 = 3600;

fn claims(sub: &str, now: i64) -> Value {
    json!({"sub": sub, "iss": "https://issuer.example", "iat": now, "exp": now + 3600})
}

fn validation(clock: &Arc<ManualClock>) -> Validation {
    Validation::new([Algorithm::ES256])
        .issuer("https://issuer.example")
        .leeway(Duration::from_secs(60))
        .clock(clock.clone())
}

async fn published_kids(store: &dyn KeyStore) -> Vec<String> {
    store
        .verification_keys()
        .await
        .unwrap()
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect()
}

#[tokio::test]
async fn rotation_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let store: Arc<dyn KeyStore> = Arc::new(FileKeyStore::with_clock(
        tmp.path().join("keys"),
        clock.clone(),
    ));
    let policy = RotationPolicy::builder()
        .rotate_after(Duration::from_secs(24 * HOUR))
        .prepublish(Duration::from_secs(HOUR))
        .max_token_lifetime(Duration::from_secs(HOUR))
        .leeway(Duration::from_secs(60))
        .verify_grace(Duration::from_secs(2 * HOUR))
        .allowed_algorithms([Algorithm::ES256])
        .build()
        .unwrap();
    let init = store.init(Algorithm::ES256, &policy).await.unwrap();

    // The published JWKS, served by a real HTTP server as a JWKS endpoint would.
    let server = JwksServer::serving(store.verification_keys().await.unwrap().to_json()).await;
    let by_store = Verifier::builder(KeySource::Store(store.clone()), validation(&clock))
        .clock(clock.clone())
        .build()
        .unwrap();
    let by_jwks = Verifier::builder(KeySource::Remote(server.url.clone()), validation(&clock))
        .clock(clock.clone())
        .cache(CacheOptions::default())
        .build()
        .unwrap();

    // T1, signed a day after init, just before the rotation.
    clock.set(T0 + 24 * 3600 - 60);
    let t1 = store
        .sign_token(&claims("t1", clock.now()), None)
        .await
        .unwrap();

    clock.set(T0 + 24 * 3600);
    let rotation = store.rotate_if_due().await.unwrap().rotated.expect("due");
    assert_eq!(rotation.previous.as_deref(), Some(init.active.as_str()));
    assert_eq!(rotation.active, init.pending);
    server.serve(store.verification_keys().await.unwrap().to_json());

    let t2 = store
        .sign_token(&claims("t2", clock.now()), None)
        .await
        .unwrap();
    let h1 = jwt_core::dangerous::insecure_decode_header(&t1).unwrap();
    let h2 = jwt_core::dangerous::insecure_decode_header(&t2).unwrap();
    assert_eq!(h1.kid.as_deref(), Some(init.active.as_str()));
    assert_eq!(h2.kid.as_deref(), Some(rotation.active.as_str()));

    // Both verify through the store and through the published JWKS.
    for v in [&by_store, &by_jwks] {
        assert_eq!(v.verify::<Value>(&t1).await.unwrap().claims["sub"], "t1");
        assert_eq!(v.verify::<Value>(&t2).await.unwrap().claims["sub"], "t2");
    }
    assert!(published_kids(store.as_ref()).await.contains(&init.active));

    // T2 at the end of its life, still inside T1's key's grace: fine.
    clock.set(T0 + 24 * 3600 + 3000);
    assert_eq!(
        by_store.verify::<Value>(&t2).await.unwrap().claims["sub"],
        "t2"
    );

    // After verify_grace: T1's key is gone from the JWKS and T1 is unknown_key.
    clock.set(T0 + 24 * 3600 + 2 * 3600);
    let kids = published_kids(store.as_ref()).await;
    assert!(!kids.contains(&init.active), "{kids:?}");
    assert_eq!(
        kids,
        vec![rotation.active.clone(), rotation.pending.clone()]
    );
    let err = by_store.verify::<Value>(&t1).await.unwrap_err();
    assert_eq!(err.kind(), "unknown_key", "{err}");
    assert!(err.is_rejection());

    server.serve(store.verification_keys().await.unwrap().to_json());
    by_jwks.refresh().await.unwrap();
    assert!(!by_jwks.cached_kids().contains(&init.active));
    assert_eq!(
        by_jwks.verify::<Value>(&t1).await.unwrap_err().kind(),
        "unknown_key"
    );

    // On record: the old key is retired and its private key destroyed.
    store.retire_expired().await.unwrap();
    let old = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kid == init.active)
        .unwrap();
    assert_eq!((old.state, old.has_private_key), (KeyState::Retired, false));
    assert!(!tmp
        .path()
        .join("keys")
        .join(format!("{}.pem", init.active))
        .exists());
    assert!(store.audit().await.unwrap().is_clean());
}
