//! Recovery of the PKCS#11 store without a restart, against SoftHSM2: the
//! token removed mid-flight (its directory moved out of SoftHSM's token
//! directory: SoftHSM then answers as for a removed token) and put back,
//! and the module finalized under the store. Its own test binary: both
//! make the process's module initialize again, which would cost the
//! sessions of tests running alongside.
#![cfg(feature = "pkcs11")]

mod remote_servers;
#[path = "pkcs11/mod.rs"]
mod softhsm;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_core::{Algorithm, SystemClock, Validation};
use jwt_keys::pkcs11::Pkcs11Error;
use jwt_keys::{conformance, Error, KeySource, KeyStore, KeyStoreExt, Verifier};
use remote_servers::verify_independently;
use serde_json::json;
use softhsm::shared_token;

fn claims(sub: &str) -> serde_json::Value {
    json!({"sub": sub, "exp": jwt_core::time::now_unix() + 600})
}

/// Moves a directory back where it was when dropped (a failing test must
/// not leave the token away).
struct Moved {
    from: std::path::PathBuf,
    to: std::path::PathBuf,
}

impl Moved {
    fn away(from: std::path::PathBuf, to: std::path::PathBuf) -> Moved {
        std::fs::rename(&from, &to).unwrap();
        Moved { from, to }
    }

    fn back(self) {}
}

impl Drop for Moved {
    fn drop(&mut self) {
        std::fs::rename(&self.to, &self.from).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_from_a_removed_token_and_a_finalized_module() {
    let Some(token) = shared_token() else { return };
    let store = Arc::new(
        token
            .builder("recovery")
            .state_ttl(Duration::from_secs(1))
            .timeout(Duration::from_secs(10))
            .clock(Arc::new(SystemClock))
            .build()
            .unwrap(),
    );
    let init = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let dyn_store: Arc<dyn KeyStore> = store.clone();
    let verifier = Verifier::new(
        KeySource::Store(dyn_store),
        Validation::new([Algorithm::ES256]),
    )
    .unwrap();
    let before = store.sign_token(&claims("before"), None).await.unwrap();
    verifier.verify::<serde_json::Value>(&before).await.unwrap();
    let jwks = store.verification_keys().await.unwrap();

    // 1. The token is removed.
    let dir = token.directory();
    let parked = dir.with_file_name(format!(
        "parked-{}",
        dir.file_name().unwrap().to_string_lossy()
    ));
    // Outside SoftHSM's token directory, so that it is not found as a token.
    let parked = std::env::temp_dir().join(parked.file_name().unwrap());
    let moved = Moved::away(dir.clone(), parked);
    let started = Instant::now();
    let err = store.sign(&init.active, b"a.b").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), "backend", "{err}");
    assert!(err.is_retryable(), "{err}");
    match &err {
        Error::Backend { source, .. } => {
            let e = source.downcast_ref::<Pkcs11Error>().expect("a Pkcs11Error");
            assert!(!e.operation().is_empty());
        }
        other => panic!("{other:?}"),
    }
    // Verification keeps working from the cached keys, even past the state TTL.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let data = verifier.verify::<serde_json::Value>(&before).await.unwrap();
    assert_eq!(data.claims["sub"], "before");
    assert_eq!(store.verification_keys().await.unwrap(), jwks);
    // Signing keeps failing, retryably, while it is away.
    let err = store.sign_token(&claims("away"), None).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let during = store.stats();
    assert!(during.reconnects >= 1, "{during:?}");

    // It is back: the store signs again, without a restart.
    moved.back();
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        match store.sign_token(&claims("after"), None).await {
            Ok(t) => break t,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    };
    assert_eq!(verify_independently(&after, &jwks), Ok("after".into()));
    let recovered = store.stats();
    assert!(recovered.module_reinits >= 1, "{recovered:?}");
    assert!(recovered.logins >= 2, "logged in again: {recovered:?}");

    // 2. The module is finalized under the store (another library of the
    // process, or a module that restarted): the next signature initializes
    // it again, opens sessions, logs in and signs, in the same call.
    let reinits = store.stats().module_reinits;
    let admin = token.admin();
    drop(admin.session);
    admin.ctx.finalize().unwrap();
    let t = store
        .sign_token(&claims("refinalized"), None)
        .await
        .unwrap();
    assert_eq!(verify_independently(&t, &jwks), Ok("refinalized".into()));
    assert_eq!(
        store.stats().module_reinits,
        reinits + 1,
        "{:?}",
        store.stats()
    );
    // And writes work on the recovered connection.
    let report = store.rotate(None).await.unwrap();
    assert_eq!(report.previous.as_deref(), Some(init.active.as_str()));
    let t = store.sign_token(&claims("rotated"), None).await.unwrap();
    let jwks = store.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&t, &jwks), Ok("rotated".into()));
}
