//! The PKCS#11 store's login, against SoftHSM2 with a token of this binary's
//! own. PKCS#11 logs in once per application and token, so the refusals are
//! seen only by a process that has not logged in yet: one test, in order.
#![cfg(feature = "pkcs11")]

#[path = "pkcs11/mod.rs"]
mod softhsm;

use std::sync::Arc;

use jwt_core::{Algorithm, SystemClock};
use jwt_keys::pkcs11::{Pin, Pkcs11Error, Pkcs11KeyStore};
use jwt_keys::{conformance, Error, KeyStore, KeyStoreExt};
use softhsm::{shared_token, write_secret, PIN};

fn pkcs11_error(e: &Error) -> &Pkcs11Error {
    match e {
        Error::Backend { source, .. } => source
            .downcast_ref::<Pkcs11Error>()
            .unwrap_or_else(|| panic!("{e:?}")),
        other => panic!("expected a backend error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pin_is_never_sent_twice_and_the_pin_never_shows() {
    let Some(token) = shared_token() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    write_secret(&pin_file, "wrong-pin-123\n");
    let store = Pkcs11KeyStore::builder(&token.hsm.module, &token.label, "login")
        .pin(Pin::from_file(&pin_file))
        .clock(Arc::new(SystemClock))
        .build()
        .unwrap();

    // No PIN at all: a setting to fix, named.
    let no_pin = Pkcs11KeyStore::builder(&token.hsm.module, &token.label, "login")
        .build()
        .unwrap();
    match no_pin.active().await.unwrap_err() {
        Error::InvalidConfig { setting, reason } => {
            assert_eq!(setting, "pin");
            assert!(reason.contains("pin-source=file:"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    // A wrong PIN: C_Login refuses it; not retryable (a retry layer must
    // not lock the token).
    let err = store.active().await.unwrap_err();
    let e = pkcs11_error(&err);
    assert_eq!(e.operation(), "C_Login");
    assert_eq!(e.return_value(), Some("CKR_PIN_INCORRECT"));
    assert!(!err.is_retryable(), "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("wrong-pin-123"), "the PIN shows: {text}");
    assert!(
        text.contains(&pin_file.display().to_string()),
        "names the PIN file: {text}"
    );

    // Asked again, the store does not send the same PIN a second time.
    let err = store
        .sign_token(&serde_json::json!({"sub": "x"}), None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("refused") && text.contains("before"),
        "{text}"
    );
    assert!(!err.is_retryable());
    assert_eq!(store.stats().logins, 0);

    // The right PIN in the file: the store logs in at the next call.
    write_secret(&pin_file, &format!("{PIN}\n"));
    store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    assert_eq!(store.stats().logins, 1);
    let t = store
        .sign_token(
            &serde_json::json!({"sub": "ok", "exp": jwt_core::time::now_unix() + 60}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(t.split('.').count(), 3);
    assert!(!format!("{store:?}").contains(PIN));
}
