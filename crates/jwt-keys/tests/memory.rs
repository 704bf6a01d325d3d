//! The in-memory backend passes the conformance suite.

use std::sync::Arc;

use jwt_core::{Algorithm, ManualClock};
use jwt_keys::{conformance, Error, KeyStore, MemoryKeyStore};

/// A fresh, uninitialized store on the suite's clock.
async fn make(clock: Arc<ManualClock>) -> Option<(Arc<dyn KeyStore>, ())> {
    Some((Arc::new(MemoryKeyStore::with_clock(clock)), ()))
}

jwt_keys::conformance_tests!(make, writable = true);

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
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                setting: "algorithm",
                ..
            }
        ),
        "{err:?}"
    );
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
    assert_eq!(err.kind(), "policy_violation");
    assert!(err.to_string().contains("ES256 is not allowed"), "{err}");
}
