//! The in-memory backend passes the conformance suite.

use std::sync::Arc;

use jwt_core::{Algorithm, ManualClock};
use jwt_keys::{conformance, Error, KeyStore, MemoryKeyStore};

const T0: i64 = 1_700_000_000;

async fn initialized() -> MemoryKeyStore {
    let store = MemoryKeyStore::new();
    store
        .init(conformance::ALG, &conformance::policy())
        .await
        .expect("init");
    store
}

#[tokio::test]
async fn round_trip() {
    conformance::sign_verify_round_trip(&initialized().await).await;
}

#[tokio::test]
async fn unknown_kid() {
    conformance::unknown_kid(&initialized().await).await;
}

#[tokio::test]
async fn jwks_has_no_private_members() {
    conformance::jwks_has_no_private_members(&initialized().await).await;
}

#[tokio::test]
async fn rotation_lifecycle() {
    let clock = Arc::new(ManualClock::new(T0));
    conformance::rotation_lifecycle(&MemoryKeyStore::with_clock(clock.clone()), &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations() {
    let clock = Arc::new(ManualClock::new(T0));
    conformance::concurrent_rotations_leave_one_active(
        &MemoryKeyStore::with_clock(clock.clone()),
        &clock,
    )
    .await;
}

#[tokio::test]
async fn uninitialized_store_says_so() {
    let store = MemoryKeyStore::new();
    let err = store.active().await.unwrap_err();
    assert_eq!(err.kind(), "not_initialized");
}

#[tokio::test]
async fn hmac_cannot_be_a_rotating_key() {
    let store = MemoryKeyStore::new();
    let err = store
        .init(Algorithm::HS256, &conformance::policy())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Policy { .. }), "{err:?}");
    assert!(err.to_string().contains("env backend"), "{err}");
}

#[tokio::test]
async fn init_refuses_a_disallowed_algorithm() {
    let policy = jwt_keys::RotationPolicy::builder()
        .allowed_algorithms([Algorithm::EdDSA])
        .build()
        .unwrap();
    let err = MemoryKeyStore::new()
        .init(Algorithm::ES256, &policy)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "policy");
    assert!(err.to_string().contains("ES256 is not allowed"), "{err}");
}
