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

/// `sign_token_with_header` keeps the template's header but for `alg` and
/// `kid`, which are the active key's, and refuses a header the verifier
/// would refuse before anything is signed.
#[tokio::test]
async fn sign_token_with_header_keeps_the_template_but_alg_and_kid() {
    use jwt_keys::KeyStoreExt;
    let store = MemoryKeyStore::new();
    store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let active = store.active().await.unwrap();
    let mut template = jwt_core::Header::new(Algorithm::HS256);
    template.typ = None;
    template.kid = Some("not-this-one".into());
    template.extra.insert("ver".into(), serde_json::json!(2));
    let claims = serde_json::json!({"exp": 4_000_000_000u64});
    let token = store
        .sign_token_with_header(&claims, &template)
        .await
        .unwrap();
    let header = jwt_core::dangerous::insecure_decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(active.kid.as_str()));
    assert_eq!(header.typ, None);
    assert_eq!(header.extra["ver"], 2);

    template
        .extra
        .insert("crit".into(), serde_json::json!(["ver"]));
    let err = store
        .sign_token_with_header(&claims, &template)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused by a verifier"), "{err}");
}
