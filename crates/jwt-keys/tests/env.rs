//! The env backend: formats, previous keys, read-only, conformance.

use std::sync::Arc;

use jwt_core::{Algorithm, Jwks, ManualClock, SigningKey, Validation};
use jwt_keys::{EnvKeyStore, Error, KeySource, KeyState, KeyStore, KeyStoreExt, Verifier};
use serde_json::{json, Value};

fn pem_store() -> (EnvKeyStore, SigningKey) {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    let store = EnvKeyStore::builder("JWT_KEY")
        .key(pem.as_str())
        .kid("current")
        .build()
        .unwrap();
    (store, key)
}

fn claims() -> Value {
    json!({"sub": "alice", "exp": jwt_core::time::now_unix() + 600})
}

/// A read-only store with its signing key. The env backend has no
/// lifecycle, so it keeps the system clock rather than the suite's.
async fn make(_clock: Arc<ManualClock>) -> Option<(Arc<dyn KeyStore>, ())> {
    Some((Arc::new(pem_store().0), ()))
}

jwt_keys::conformance_tests!(make, writable = false);

#[tokio::test]
async fn pem_key_with_kid_and_default_alg() {
    let (store, key) = pem_store();
    assert_eq!(
        store.active().await.unwrap(),
        jwt_keys::KeyInfo {
            kid: "current".into(),
            alg: Algorithm::ES256
        }
    );
    let jwks = store.verification_keys().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kid.as_deref(), Some("current"));
    assert_eq!(jwks.keys[0].x, key.to_public_jwk().unwrap().x);
}

#[tokio::test]
async fn jwk_key_keeps_its_kid_and_alg() {
    let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
    // A private JWK: the public one plus `d` (the seed) from a PKCS#8 round trip.
    let store_from_pem = EnvKeyStore::builder("K")
        .key(key.to_pkcs8_pem().unwrap().as_str())
        .build()
        .unwrap();
    let kid = store_from_pem.active().await.unwrap().kid;
    assert_eq!(
        kid,
        key.thumbprint().unwrap(),
        "default kid is the thumbprint"
    );

    let rsa_jwk = json!({
        "kty": "oct", "k": jwt_core::b64::encode(&[7u8; 48]), "kid": "jwk-kid", "alg": "HS384"
    });
    let store = EnvKeyStore::builder("K")
        .key(rsa_jwk.to_string())
        .build()
        .unwrap();
    assert_eq!(
        store.active().await.unwrap(),
        jwt_keys::KeyInfo {
            kid: "jwk-kid".into(),
            alg: Algorithm::HS384
        }
    );
}

#[tokio::test]
async fn hmac_secret_verifies_in_process_and_is_never_published() {
    let store = EnvKeyStore::builder("K")
        .key("base64url:".to_owned() + &jwt_core::b64::encode(&[9u8; 32]))
        .kid("hs")
        .build()
        .unwrap();
    assert_eq!(store.active().await.unwrap().alg, Algorithm::HS256);
    assert!(store.verification_keys().await.unwrap().keys.is_empty());
    let token = store.sign_token(&claims(), None).await.unwrap();
    let verifier = Verifier::new(
        KeySource::KeySet(std::sync::Arc::new(store.key_set().await.unwrap())),
        Validation::new([Algorithm::HS256]),
    )
    .unwrap();
    assert_eq!(
        verifier.verify::<Value>(&token).await.unwrap().claims["sub"],
        "alice"
    );
}

#[tokio::test]
async fn short_hmac_secret_is_refused_naming_the_variable() {
    let err = EnvKeyStore::builder("APP_KEY")
        .key("too short")
        .build()
        .unwrap_err();
    match &err {
        Error::Env { var, reason } => {
            assert_eq!(var, "APP_KEY");
            assert!(reason.contains("HMAC"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn previous_keys_verify_but_do_not_sign() {
    // Twelve-factor rotation: the old key moves to PREVIOUS, the new one signs.
    let old = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("old");
    let old_store = EnvKeyStore::builder("K")
        .key(old.to_pkcs8_pem().unwrap().as_str())
        .kid("old")
        .build()
        .unwrap();
    let old_token = old_store.sign_token(&claims(), None).await.unwrap();

    let new = SigningKey::generate(Algorithm::ES256).unwrap();
    let previous = Jwks {
        keys: vec![old.to_public_jwk().unwrap()],
    }
    .to_json();
    let store = EnvKeyStore::builder("K")
        .key(new.to_pkcs8_pem().unwrap().as_str())
        .kid("new")
        .previous_jwks(previous)
        .build()
        .unwrap();
    let new_token = store.sign_token(&claims(), None).await.unwrap();

    let records = store.list().await.unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.kid.as_str(), r.state))
            .collect::<Vec<_>>(),
        vec![("new", KeyState::Active), ("old", KeyState::Retiring)]
    );
    match store.sign("old", b"a.b").await {
        Err(Error::NotActive {
            kid,
            state: KeyState::Retiring,
        }) => assert_eq!(kid, "old"),
        other => panic!("{other:?}"),
    }
    let kids: Vec<_> = store
        .verification_keys()
        .await
        .unwrap()
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect();
    assert_eq!(kids, vec!["new", "old"]);

    let verifier = Verifier::new(
        KeySource::Store(std::sync::Arc::new(store)),
        Validation::new([Algorithm::ES256]),
    )
    .unwrap();
    for token in [&old_token, &new_token] {
        assert_eq!(
            verifier.verify::<Value>(token).await.unwrap().claims["sub"],
            "alice"
        );
    }
}

#[tokio::test]
async fn previous_key_reusing_the_current_kid_is_refused() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut jwk = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .to_public_jwk()
        .unwrap();
    jwk.kid = Some("same".into());
    let err = EnvKeyStore::builder("K")
        .key(key.to_pkcs8_pem().unwrap().as_str())
        .kid("same")
        .previous_jwks(Jwks { keys: vec![jwk] }.to_json())
        .build()
        .unwrap_err();
    match err {
        Error::Env { var, reason } => {
            assert_eq!(var, "K_PREVIOUS");
            assert!(reason.contains("own kid"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn from_env_reads_the_variables() {
    // Unique names: tests run in parallel within this process.
    let key = SigningKey::generate(Algorithm::ES384).unwrap();
    std::env::set_var(
        "JWTKEYS_TEST_FROM_ENV",
        key.to_pkcs8_pem().unwrap().as_str(),
    );
    std::env::set_var("JWTKEYS_TEST_FROM_ENV_KID", "from-env");
    let store = jwt_keys::open_store("env:JWTKEYS_TEST_FROM_ENV").unwrap();
    assert_eq!(store.name(), "env");
    assert_eq!(
        store.active().await.unwrap(),
        jwt_keys::KeyInfo {
            kid: "from-env".into(),
            alg: Algorithm::ES384
        }
    );
    std::env::set_var("JWTKEYS_TEST_BAD_ALG", key.to_pkcs8_pem().unwrap().as_str());
    std::env::set_var("JWTKEYS_TEST_BAD_ALG_ALG", "RS256");
    match jwt_keys::open_store("env:JWTKEYS_TEST_BAD_ALG").unwrap_err() {
        Error::Env { var, .. } => assert_eq!(var, "JWTKEYS_TEST_BAD_ALG"),
        other => panic!("{other:?}"),
    }
    match jwt_keys::open_store("env:JWTKEYS_TEST_UNSET").unwrap_err() {
        Error::Env { var, reason } => {
            assert_eq!(var, "JWTKEYS_TEST_UNSET");
            assert!(reason.contains("not set"));
        }
        other => panic!("{other:?}"),
    }
}
