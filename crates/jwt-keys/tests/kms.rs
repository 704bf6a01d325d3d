//! The AWS KMS backend against a real KMS API: moto's server, reached
//! through the endpoint override (`JWTKIT_TEST_KMS_ENDPOINT`, started by
//! `scripts/services.sh`). Without it these tests print how to run them and
//! pass, unless `JWTKIT_REQUIRE_SERVICES=1`/`CI` is set.
//!
//! moto ignores `MessageType` and signs PSS with a maximal salt length, so
//! PS* signatures cannot be checked against it: RS* and ES* are tested for
//! real, and for PS* the test checks that the store *refuses* moto's
//! signature (it verifies every signature before handing it out) instead of
//! emitting a token that verifiers would reject.
#![cfg(feature = "kms")]

mod remote_servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_core::{Algorithm, Clock, ManualClock, Validation};
use jwt_keys::aws_kms::{KmsError, KmsKeyStore};
use jwt_keys::{conformance, Error, KeySource, KeyState, KeyStore, KeyStoreExt, Verifier};
use jwtkit_test_support::{binary, free_port, service};
use remote_servers::{unique, verify_independently, ServerProcess};
use serde_json::json;

fn endpoint() -> Option<String> {
    service("JWTKIT_TEST_KMS_ENDPOINT", "moto (the KMS API)")
}

fn store_at(endpoint: &str, alias: &str, clock: Arc<dyn Clock>) -> KmsKeyStore {
    KmsKeyStore::builder(alias)
        .endpoint_url(endpoint)
        .region("us-east-1")
        .timeout(Duration::from_secs(10))
        .deletion_window_days(7)
        .clock(clock)
        .build()
        .expect("build")
}

fn claims(sub: &str) -> serde_json::Value {
    json!({"sub": sub, "exp": jwt_core::time::now_unix() + 600})
}

fn kms_code(e: &Error) -> Option<String> {
    match e {
        Error::Backend { source, .. } => source
            .downcast_ref::<KmsError>()
            .and_then(|k| k.code().map(str::to_owned)),
        _ => None,
    }
}

/// A fresh, uninitialized alias store on the suite's clock.
async fn make(clock: Arc<ManualClock>) -> Option<(Arc<dyn KeyStore>, ())> {
    let ep = endpoint()?;
    let store = store_at(&ep, &format!("alias/{}", unique("conf")), clock);
    Some((Arc::new(store), ()))
}

jwt_keys::conformance_tests!(make, writable = true);

/// The key-id form (`kms:KEY-ID`): one fixed key, read-only.
mod fixed_key {
    use super::*;

    /// A fixed-key store on the active key of a fresh alias store.
    async fn make_fixed(clock: Arc<ManualClock>) -> Option<(Arc<dyn KeyStore>, ())> {
        let ep = endpoint()?;
        let alias = store_at(&ep, &format!("alias/{}", unique("fixed")), clock.clone());
        let init = alias
            .init(conformance::ALG, &conformance::policy())
            .await
            .expect("init");
        let fixed = KmsKeyStore::builder(init.active)
            .endpoint_url(&ep)
            .region("us-east-1")
            .timeout(Duration::from_secs(10))
            .clock(clock)
            .build()
            .expect("build");
        Some((Arc::new(fixed), ()))
    }

    jwt_keys::conformance_tests!(make_fixed, writable = false);
}

/// Each RS*/ES* algorithm on its KMS key spec: the token verifies in
/// jsonwebtoken with the published JWK, and the kid is the KMS key id.
#[tokio::test]
async fn every_rs_and_es_algorithm_verifies_independently() {
    let Some(ep) = endpoint() else { return };
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
    ] {
        let store = store_at(
            &ep,
            &format!("alias/{}", unique("alg")),
            Arc::new(jwt_core::SystemClock),
        );
        let init = store
            .init(alg, &conformance::policy())
            .await
            .unwrap_or_else(|e| panic!("init {alg}: {e}"));
        // kid = the KMS key id (a UUID), not an ARN.
        assert_eq!(init.active.len(), 36, "{}", init.active);
        let token = store.sign_token(&claims(alg.as_str()), None).await.unwrap();
        let header = jwt_core::dangerous::insecure_decode_header(&token).unwrap();
        assert_eq!(
            (header.alg, header.kid.as_deref()),
            (alg, Some(init.active.as_str()))
        );
        let jwks = store.verification_keys().await.unwrap();
        if alg == Algorithm::ES512 {
            // jsonwebtoken has no ES512; jwt-core's verifier with the JWKS instead.
            let keys = jwt_core::KeySet::from_jwks(&jwks);
            let v = jwt_core::Verifier::with_key_set(keys, Validation::new([alg])).unwrap();
            assert_eq!(
                v.verify::<serde_json::Value>(&token).unwrap().claims["sub"],
                "ES512"
            );
        } else {
            assert_eq!(
                verify_independently(&token, &jwks),
                Ok(alg.as_str().to_owned())
            );
        }
    }
}

/// A signing input of exactly 4096 bytes goes as RAW and verifies. A larger
/// one is hashed locally and sent as a DIGEST: moto ignores `MessageType`
/// and hashes the digest again, so against moto the store must *refuse*
/// the resulting signature (its self-check), never emit it. (Real KMS signs
/// the digest; the digest itself is unit-tested in `aws_kms::signature`.)
#[tokio::test]
async fn inputs_over_4096_bytes_go_as_digest() {
    let Some(ep) = endpoint() else { return };
    let store = store_at(
        &ep,
        &format!("alias/{}", unique("big")),
        Arc::new(jwt_core::SystemClock),
    );
    let init = store
        .init(Algorithm::ES384, &conformance::policy())
        .await
        .unwrap();
    let raw = store.sign(&init.active, &[b'a'; 4096]).await.unwrap();
    assert_eq!(raw.len(), 96, "fixed-width R||S for P-384");
    let err = store.sign(&init.active, &[b'a'; 4097]).await.unwrap_err();
    assert_eq!(err.kind(), "backend");
    assert!(err.to_string().contains("does not verify"), "{err}");
}

/// moto signs PSS with a maximal salt; the store checks every signature and
/// refuses it rather than emit a PS* token with the wrong salt length.
#[tokio::test]
async fn ps_signatures_with_a_wrong_salt_are_refused() {
    let Some(ep) = endpoint() else { return };
    let store = store_at(
        &ep,
        &format!("alias/{}", unique("pss")),
        Arc::new(jwt_core::SystemClock),
    );
    store
        .init(Algorithm::PS256, &conformance::policy())
        .await
        .unwrap();
    let err = store.sign_token(&claims("pss"), None).await.unwrap_err();
    assert_eq!(err.kind(), "backend");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("does not verify"), "{err}");
}

/// init, sign, rotate, sign: both tokens verify with the published JWKS
/// (jsonwebtoken) before and after the rotation; a second store object
/// (another process) agrees on the active kid; the key-id form of the URI
/// signs with one fixed key and refuses to rotate.
#[tokio::test]
async fn end_to_end_rotation_with_published_jwks() {
    let Some(ep) = endpoint() else { return };
    let alias = format!("alias/{}", unique("e2e"));
    let clock = Arc::new(ManualClock::new(jwt_core::time::now_unix()));
    let store = store_at(&ep, &alias, clock.clone());
    let init = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let t1 = store.sign_token(&claims("t1"), None).await.unwrap();
    let before = store.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&t1, &before), Ok("t1".into()));
    // The pending key is published before it signs.
    assert!(before
        .keys
        .iter()
        .any(|k| k.kid.as_deref() == Some(init.pending.as_str())));

    let report = store.rotate(Some(&init.active)).await.unwrap();
    assert_eq!(report.active, init.pending);
    let t2 = store.sign_token(&claims("t2"), None).await.unwrap();
    let after = store.verification_keys().await.unwrap();
    for (t, sub) in [(&t1, "t1"), (&t2, "t2")] {
        assert_eq!(verify_independently(t, &after), Ok(sub.into()));
    }
    // The JWKS fetched before the rotation already verifies the new key's tokens.
    assert_eq!(verify_independently(&t2, &before), Ok("t2".into()));

    // Another process's view: same active key, same records.
    let other = store_at(&ep, &alias, clock.clone());
    assert_eq!(other.active().await.unwrap().kid, report.active);
    let states: Vec<(String, KeyState)> = other
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.kid, r.state))
        .collect();
    assert!(
        states.contains(&(init.active.clone(), KeyState::Retiring)),
        "{states:?}"
    );
    assert!(
        states.contains(&(report.pending.clone(), KeyState::Pending)),
        "{states:?}"
    );
    // A stale conditional rotation from it is a conflict.
    match other.rotate(Some(&init.active)).await {
        Err(Error::Conflict { expected, actual }) => {
            assert_eq!(
                (expected, actual),
                (init.active.clone(), report.active.clone())
            )
        }
        other => panic!("stale rotation: {other:?}"),
    }

    // The retiring key refuses to sign.
    match store.sign(&init.active, b"x.y").await {
        Err(Error::NotActive { state, .. }) => assert_eq!(state, KeyState::Retiring),
        other => panic!("{other:?}"),
    }

    // One fixed key by id: signs, verifies, refuses rotation.
    let fixed = KmsKeyStore::builder(report.active.clone())
        .endpoint_url(&ep)
        .region("us-east-1")
        .build()
        .unwrap();
    assert_eq!(fixed.active().await.unwrap().kid, report.active);
    let t3 = fixed.sign_token(&claims("t3"), None).await.unwrap();
    assert_eq!(verify_independently(&t3, &after), Ok("t3".into()));
    assert_eq!(fixed.rotate(None).await.unwrap_err().kind(), "read_only");
}

#[tokio::test]
async fn uninitialized_and_missing_keys_are_typed() {
    let Some(ep) = endpoint() else { return };
    let store = store_at(
        &ep,
        &format!("alias/{}", unique("none")),
        Arc::new(jwt_core::SystemClock),
    );
    assert_eq!(store.active().await.unwrap_err().kind(), "not_initialized");
    // Not an empty store either: a typo'd alias must not publish an empty
    // JWKS or list no keys as if that were fine.
    for (what, err) in [
        ("list", store.list().await.map(|_| ()).unwrap_err()),
        (
            "jwks",
            store.verification_keys().await.map(|_| ()).unwrap_err(),
        ),
        ("policy", store.policy().await.map(|_| ()).unwrap_err()),
    ] {
        assert_eq!(err.kind(), "not_initialized", "{what}: {err}");
        assert!(
            err.to_string().contains("jwtkit store init"),
            "{what}: {err}"
        );
    }
    let missing = KmsKeyStore::builder("11111111-2222-3333-4444-555555555555")
        .endpoint_url(&ep)
        .region("us-east-1")
        .build()
        .unwrap();
    let err = missing.active().await.unwrap_err();
    assert_eq!(
        kms_code(&err).as_deref(),
        Some("NotFoundException"),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("AWS_REGION"),
        "says what to check: {err}"
    );
}

#[test]
fn uris_open_without_calling_kms() {
    let store = jwt_keys::open_store("kms:alias/jwt-issuer").unwrap();
    assert_eq!(store.name(), "aws-kms");
    assert!(jwt_keys::open_store("kms:arn:aws:kms:us-east-1:111122223333:key/1234abcd").is_ok());
    assert_eq!(
        jwt_keys::open_store("kms:").unwrap_err().kind(),
        "invalid_uri"
    );
    assert_eq!(
        jwt_keys::open_store("kms:alias/has space")
            .unwrap_err()
            .kind(),
        "invalid_uri"
    );
}

/// Our own moto: frozen (SIGSTOP) mid-run, then killed and restarted on the
/// same port. Signing fails with a typed retryable error within the
/// configured timeout, verification keeps working from the cached public
/// keys, and signing recovers when the server answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_mid_run() {
    let Some(moto) = binary("JWTKIT_TEST_MOTO_BIN", "moto_server") else {
        return;
    };
    let port = free_port();
    let p = port.to_string();
    let mut server = ServerProcess::start("moto", &moto, &["-H", "127.0.0.1", "-p", &p], port);
    let ep = format!("http://127.0.0.1:{port}");
    let timeout = Duration::from_secs(2);
    let store: Arc<dyn KeyStore> = Arc::new(
        KmsKeyStore::builder("alias/fault")
            .endpoint_url(&ep)
            .region("us-east-1")
            .timeout(timeout)
            .build()
            .unwrap(),
    );
    // moto needs a moment after it opens its port.
    let mut init = None;
    for _ in 0..50 {
        match store.init(Algorithm::ES256, &conformance::policy()).await {
            Ok(r) => {
                init = Some(r);
                break;
            }
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => panic!("init: {e}"),
        }
    }
    let init = init.expect("moto answered");
    let verifier = Verifier::new(
        KeySource::Store(store.clone()),
        Validation::new([Algorithm::ES256]),
    )
    .unwrap();
    let before = store.sign_token(&claims("before"), None).await.unwrap();
    verifier.verify::<serde_json::Value>(&before).await.unwrap();

    for (what, frozen) in [("frozen", true), ("killed", false)] {
        if frozen {
            server.freeze();
        } else {
            server.kill();
        }
        let started = Instant::now();
        let err = store.sign(&init.active, b"a.b").await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), "backend", "{what}: {err}");
        assert!(err.is_retryable(), "{what}: {err}");
        // The configured bound, plus scheduling slack on a shared machine.
        assert!(
            took < timeout + Duration::from_secs(3),
            "{what}: took {took:?}"
        );
        // Verification never calls KMS: cached public keys.
        let data = verifier.verify::<serde_json::Value>(&before).await.unwrap();
        assert_eq!(data.claims["sub"], "before");
        let jwks = store.verification_keys().await.unwrap();
        assert_eq!(verify_independently(&before, &jwks), Ok("before".into()));
        if frozen {
            server.thaw();
            let after = store.sign_token(&claims("thawed"), None).await.unwrap();
            verifier.verify::<serde_json::Value>(&after).await.unwrap();
        }
    }

    // moto keeps no state across a restart: the store's keys are gone, which
    // the store reports as a typed, non-retryable error naming what to check.
    server.restart();
    let mut result = store.sign(&init.active, b"a.b").await;
    for _ in 0..50 {
        match &result {
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                result = store.sign(&init.active, b"a.b").await;
            }
            _ => break,
        }
    }
    let err = result.unwrap_err();
    assert_eq!(
        kms_code(&err).as_deref(),
        Some("NotFoundException"),
        "{err}"
    );
    // And a fresh init on the restarted server signs again.
    let store2 = KmsKeyStore::builder("alias/fault")
        .endpoint_url(&ep)
        .region("us-east-1")
        .build()
        .unwrap();
    store2
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let token = store2.sign_token(&claims("again"), None).await.unwrap();
    let jwks = store2.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&token, &jwks), Ok("again".into()));
}
