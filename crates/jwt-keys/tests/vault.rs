//! The Vault backend against a real server: the OpenBao dev server with
//! transit (and its default KV v2 `secret/`) that `scripts/services.sh`
//! starts (`JWTKIT_TEST_VAULT_ADDR`, `JWTKIT_TEST_VAULT_TOKEN`), and for the
//! fault test an OpenBao of its own with file storage (`JWTKIT_TEST_BAO_BIN`),
//! killed and restarted on the same port. Without them these tests print
//! how to run them and pass, unless `JWTKIT_REQUIRE_SERVICES=1`/`CI` is set.
#![cfg(feature = "vault")]

mod remote_servers;
mod vault_admin;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_core::{Algorithm, Clock, ManualClock, Validation};
use jwt_keys::vault::{SecretId, VaultAuth, VaultKeyStore};
use jwt_keys::{conformance, Error, KeySource, KeyState, KeyStore, KeyStoreExt, Verifier};
use jwtkit_test_support::{binary, free_port, service};
use remote_servers::{unique, verify_independently, ServerProcess};
use serde_json::{json, Value};

fn server() -> Option<(String, String)> {
    let addr = service("JWTKIT_TEST_VAULT_ADDR", "OpenBao (the Vault API)")?;
    let token = service("JWTKIT_TEST_VAULT_TOKEN", "OpenBao's root token")?;
    Some((addr, token))
}

fn store_at(addr: &str, token: &str, key: &str, clock: Arc<dyn Clock>) -> VaultKeyStore {
    VaultKeyStore::builder("transit", key)
        .address(addr)
        .token(token)
        .timeout(Duration::from_secs(10))
        .clock(clock)
        .build()
        .expect("build")
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": jwt_core::time::now_unix() + 600})
}

async fn vault_get(addr: &str, token: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{addr}/v1/{path}"))
        .header("X-Vault-Token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A fresh, uninitialized transit key store on the suite's clock.
async fn make(clock: Arc<ManualClock>) -> Option<(Arc<dyn KeyStore>, ())> {
    let (addr, token) = server()?;
    let store = store_at(&addr, &token, &unique("conf"), clock);
    Some((Arc::new(store), ()))
}

jwt_keys::conformance_tests!(make, writable = true);

/// Every algorithm transit can sign, PS* (salt_length=hash) and EdDSA
/// included; the tokens verify in jsonwebtoken (jwt-core for ES512, which
/// jsonwebtoken lacks); kid is MOUNT/KEY/vN.
#[tokio::test]
async fn every_algorithm_verifies_independently() {
    let Some((addr, token)) = server() else {
        return;
    };
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::EdDSA,
    ] {
        let key = unique("alg");
        let store = store_at(&addr, &token, &key, Arc::new(jwt_core::SystemClock));
        let init = store
            .init(alg, &conformance::policy())
            .await
            .unwrap_or_else(|e| panic!("init {alg}: {e}"));
        assert_eq!(init.active, format!("transit/{key}/v1"));
        assert_eq!(init.pending, format!("transit/{key}/v2"));
        let t = store.sign_token(&claims(alg.as_str()), None).await.unwrap();
        let jwks = store.verification_keys().await.unwrap();
        if alg == Algorithm::ES512 {
            let keys = jwt_core::KeySet::from_jwks(&jwks);
            let v = jwt_core::Verifier::with_key_set(keys, Validation::new([alg])).unwrap();
            assert_eq!(v.verify::<Value>(&t).unwrap().claims["sub"], "ES512");
        } else {
            assert_eq!(
                verify_independently(&t, &jwks),
                Ok(alg.as_str().to_owned()),
                "{alg}"
            );
        }
    }
}

/// init, sign, rotate, sign: tokens verify with the published JWKS before
/// and after the rotation; a second store object agrees; retiring trims the
/// old version in transit (its private key is gone).
#[tokio::test]
async fn end_to_end_rotation_and_trim() {
    let Some((addr, token)) = server() else {
        return;
    };
    let key = unique("e2e");
    let clock = Arc::new(ManualClock::new(jwt_core::time::now_unix()));
    let store = store_at(&addr, &token, &key, clock.clone());
    let init = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let t1 = store.sign_token(&claims("t1"), None).await.unwrap();
    let before = store.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&t1, &before), Ok("t1".into()));

    let report = store.rotate(Some(&init.active)).await.unwrap();
    assert_eq!(report.active, format!("transit/{key}/v2"));
    assert_eq!(report.pending, format!("transit/{key}/v3"));
    let t2 = store.sign_token(&claims("t2"), None).await.unwrap();
    let after = store.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&t1, &after), Ok("t1".into()));
    assert_eq!(verify_independently(&t2, &after), Ok("t2".into()));
    assert_eq!(
        verify_independently(&t2, &before),
        Ok("t2".into()),
        "pre-published"
    );

    let other = store_at(&addr, &token, &key, clock.clone());
    assert_eq!(other.active().await.unwrap().kid, report.active);
    match other.rotate(Some(&init.active)).await {
        Err(Error::Conflict { expected, actual }) => {
            assert_eq!(
                (expected, actual),
                (init.active.clone(), report.active.clone())
            )
        }
        other => panic!("stale rotation: {other:?}"),
    }
    match store.sign(&init.active, b"x.y").await {
        Err(Error::NotActive { state, .. }) => assert_eq!(state, KeyState::Retiring),
        other => panic!("{other:?}"),
    }

    // After the grace: retire → min_decryption_version 2, version 1 trimmed.
    clock.set(clock.now() + 7_200);
    assert_eq!(
        store.retire_expired().await.unwrap(),
        vec![init.active.clone()]
    );
    let k = vault_get(&addr, &token, &format!("transit/keys/{key}")).await;
    assert_eq!(k["data"]["min_decryption_version"], 2);
    assert_eq!(k["data"]["min_available_version"], 2);
    assert!(k["data"]["keys"].get("1").is_none(), "{k}");
    let rec = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kid == init.active)
        .unwrap();
    assert_eq!((rec.state, rec.has_private_key), (KeyState::Retired, false));
    // The lifecycle state is in KV v2.
    let kv = vault_get(&addr, &token, &format!("secret/data/jwtkit/transit/{key}")).await;
    assert!(kv["data"]["data"]["ledger"]["keys"].is_array(), "{kv}");
}

/// The ledger's KV v2 entry deleted (`bao kv delete`): the transit key is
/// still there, and a new `init` cannot tell it from someone else's, so it
/// refuses it, pointing at `kv undelete` (nothing written: the undelete
/// works and the store is back). With the key deleted too, `init` starts
/// over, writing with check-and-set at the deleted entry's version (KV v2
/// keeps it), read from the 404 answer's metadata; it used to write at 0
/// and report the store as already initialized.
#[tokio::test]
async fn init_after_the_state_entry_was_deleted() {
    let Some((addr, token)) = server() else {
        return;
    };
    let admin = vault_admin::Admin::new(&addr, &token);
    let key = unique("deleted");
    let store = store_at(&addr, &token, &key, Arc::new(jwt_core::SystemClock));
    let first = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let state = format!("secret/data/jwtkit/transit/{key}");
    let (status, _) = admin
        .call(reqwest::Method::DELETE, &state, None, None)
        .await;
    assert_eq!(status, 204);
    let again = store_at(&addr, &token, &key, Arc::new(jwt_core::SystemClock));
    assert_eq!(again.active().await.unwrap_err().kind(), "not_initialized");
    let err = again
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, Error::InvalidConfig { setting: "key", .. }),
        "{err:?}"
    );
    assert!(
        text.contains("already exists")
            && text.contains(&format!(
                "vault kv undelete -mount=secret -versions=2 jwtkit/transit/{key}"
            )),
        "{text}"
    );
    // The undelete the error names (version 2: the ledger written over
    // init's marker) brings the store back as it was.
    admin
        .post(
            &format!("secret/undelete/jwtkit/transit/{key}"),
            json!({"versions": [2]}),
        )
        .await;
    let back = store_at(&addr, &token, &key, Arc::new(jwt_core::SystemClock));
    assert_eq!(back.active().await.unwrap().kid, first.active);

    // Entry and key both gone: init starts over at the deleted version.
    let (status, _) = admin
        .call(reqwest::Method::DELETE, &state, None, None)
        .await;
    assert_eq!(status, 204);
    delete_transit_key(&admin, &key).await;
    let fresh = store_at(&addr, &token, &key, Arc::new(jwt_core::SystemClock));
    let report = fresh
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap_or_else(|e| panic!("init after delete: {e}"));
    assert_eq!(report.active, format!("transit/{key}/v1"));
    assert_eq!(report.pending, format!("transit/{key}/v2"));
    let t = fresh.sign_token(&claims("again"), None).await.unwrap();
    let jwks = fresh.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&t, &jwks), Ok("again".into()));
}

async fn delete_transit_key(admin: &vault_admin::Admin, key: &str) {
    admin
        .post(
            &format!("transit/keys/{key}/config"),
            json!({"deletion_allowed": true}),
        )
        .await;
    let (status, body) = admin
        .call(
            reqwest::Method::DELETE,
            &format!("transit/keys/{key}"),
            None,
            None,
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
}

/// The transit key as Vault has it.
async fn transit_key(admin: &vault_admin::Admin, key: &str) -> Value {
    admin.get(&format!("transit/keys/{key}")).await["data"].clone()
}

/// The review's reproduction: someone else's transit key with three
/// versions (`bao write -f transit/keys/K type=ecdsa-p256`, rotated twice).
/// `init` used to adopt it (exit 0), and a later retirement would have set
/// `min_decryption_version` past the owner's versions and trimmed them.
/// Now it is refused, naming the key and what to do, and nothing changes:
/// no transit version, no state entry. A key of the wrong type says so,
/// instead of "Vault's answer could not be parsed".
#[tokio::test]
async fn init_refuses_a_transit_key_it_did_not_create() {
    let Some((addr, token)) = server() else {
        return;
    };
    let admin = vault_admin::Admin::new(&addr, &token);
    let key = unique("foreign");
    admin
        .post(
            &format!("transit/keys/{key}"),
            json!({"type": "ecdsa-p256"}),
        )
        .await;
    for _ in 0..2 {
        admin
            .post(&format!("transit/keys/{key}/rotate"), json!({}))
            .await;
    }
    let store = store_at(&addr, &token, &key, Arc::new(jwt_core::SystemClock));
    let err = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { setting: "key", .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let text = err.to_string();
    for part in [
        format!("the transit key transit/keys/{key} already exists"),
        "type ecdsa-p256, versions 1 to 3".to_owned(),
        "this store did not create it".to_owned(),
        "Choose a new key name".to_owned(),
        format!("vault delete transit/keys/{key}"),
    ] {
        assert!(text.contains(&part), "missing `{part}` in: {text}");
    }
    let k = transit_key(&admin, &key).await;
    assert_eq!(k["latest_version"], 3, "{k}");
    assert_eq!(k["min_decryption_version"], 1, "{k}");
    let (status, _) = admin
        .call(
            reqwest::Method::GET,
            &format!("secret/data/jwtkit/transit/{key}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404, "no state entry written");
    assert_eq!(store.list().await.unwrap_err().kind(), "not_initialized");

    let aes = unique("aes");
    admin
        .post(
            &format!("transit/keys/{aes}"),
            json!({"type": "aes256-gcm96"}),
        )
        .await;
    let store = store_at(&addr, &token, &aes, Arc::new(jwt_core::SystemClock));
    let err = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.kind(), "invalid_config", "{text}");
    assert!(
        text.contains(
            "(type aes256-gcm96, version 1; that type cannot sign JWTs: ES256 needs ecdsa-p256)"
        ) && !text.contains("could not be parsed"),
        "{text}"
    );
}

/// An `init` that stopped after it created the transit key but before it
/// wrote the ledger (here: its token may not rotate, so it fails at the
/// pending version) is finished by the next `init`: the state entry's
/// `init` marker is older than every version of the key. A key created
/// before such a marker is still refused, and a key of another type that
/// an unfinished init created says which algorithm fits it.
#[tokio::test]
async fn an_unfinished_init_is_resumed_but_never_a_foreign_key() {
    let Some((addr, root)) = server() else {
        return;
    };
    let admin = vault_admin::Admin::new(&addr, &root);
    let key = unique("resume");
    let policy = unique("policy");
    admin
        .put_policy(
            &policy,
            &format!(
                r#"
path "transit/keys/{key}"               {{ capabilities = ["create", "read", "update"] }}
path "secret/data/jwtkit/transit/{key}" {{ capabilities = ["create", "read", "update"] }}
"#
            ),
        )
        .await;
    let no_rotate = admin
        .post(
            "auth/token/create",
            json!({"policies": [policy], "ttl": "10m"}),
        )
        .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let stopped = store_at(&addr, &no_rotate, &key, Arc::new(jwt_core::SystemClock));
    let err = stopped
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("transit/keys/{key}/rotate")),
        "{err}"
    );
    let state = admin
        .get(&format!("secret/data/jwtkit/transit/{key}"))
        .await;
    assert_eq!(
        state["data"]["data"]["init"]["transit_key"],
        format!("transit/keys/{key}"),
        "{state}"
    );
    assert_eq!(transit_key(&admin, &key).await["latest_version"], 1);

    let store = store_at(&addr, &root, &key, Arc::new(jwt_core::SystemClock));
    let report = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap_or_else(|e| panic!("resumed init: {e}"));
    assert_eq!(
        (report.active.as_str(), report.pending.as_str()),
        (
            format!("transit/{key}/v1").as_str(),
            format!("transit/{key}/v2").as_str()
        )
    );
    let t = store.sign_token(&claims("resumed"), None).await.unwrap();
    let jwks = store.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&t, &jwks), Ok("resumed".into()));

    // A key older than the marker: someone else's, refused all the same.
    let older = unique("older");
    admin
        .post(
            &format!("transit/keys/{older}"),
            json!({"type": "ecdsa-p256"}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    admin
        .post(
            &format!("secret/data/jwtkit/transit/{older}"),
            json!({"data": {"init": {"transit_key": format!("transit/keys/{older}")}}}),
        )
        .await;
    let store = store_at(&addr, &root, &older, Arc::new(jwt_core::SystemClock));
    let err = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("this store did not create it"),
        "{err}"
    );
    assert_eq!(transit_key(&admin, &older).await["latest_version"], 1);

    // An unfinished init that created an RSA key, resumed with ES256.
    let other = unique("othertype");
    admin
        .post(
            &format!("secret/data/jwtkit/transit/{other}"),
            json!({"data": {"init": {"transit_key": format!("transit/keys/{other}")}}}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    admin
        .post(
            &format!("transit/keys/{other}"),
            json!({"type": "rsa-2048"}),
        )
        .await;
    let store = store_at(&addr, &root, &other, Arc::new(jwt_core::SystemClock));
    let err = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.kind(), "invalid_config", "{text}");
    assert!(
        text.contains("created with type rsa-2048 by an earlier `store init`")
            && text.contains("ES256 needs ecdsa-p256")
            && text.contains(&format!("vault delete transit/keys/{other}")),
        "{text}"
    );
    let report = store
        .init(Algorithm::RS256, &conformance::policy())
        .await
        .unwrap_or_else(|e| panic!("init with the key's algorithm: {e}"));
    assert_eq!(report.active, format!("transit/{other}/v1"));
}

/// A store name with a typo (here a key that was never initialized) is not
/// an empty store: listing it, publishing its JWKS and verifying against
/// it all fail as not initialized, naming the store and `jwtkit store
/// init`, instead of an empty table, `{"keys":[]}` and tokens blamed as
/// signed by an unknown key.
#[tokio::test]
async fn a_missing_store_is_not_an_empty_one() {
    let Some((addr, token)) = server() else {
        return;
    };
    let real = unique("real");
    let store = store_at(&addr, &token, &real, Arc::new(jwt_core::SystemClock));
    store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let t = store.sign_token(&claims("typo"), None).await.unwrap();

    let typo = format!("{real}x");
    let missing: Arc<dyn KeyStore> = Arc::new(store_at(
        &addr,
        &token,
        &typo,
        Arc::new(jwt_core::SystemClock),
    ));
    let location = format!("{addr}/transit/{typo}");
    let check = |what: &str, err: Error| {
        assert_eq!(err.kind(), "not_initialized", "{what}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&location) && text.contains("jwtkit store init"),
            "{what}: {text}"
        );
    };
    check("list", missing.list().await.unwrap_err());
    check("jwks", missing.verification_keys().await.unwrap_err());
    check("policy", missing.policy().await.unwrap_err());
    check("audit", missing.audit().await.unwrap_err());
    let verifier = Verifier::new(
        KeySource::Store(missing.clone()),
        Validation::new([Algorithm::ES256]),
    )
    .unwrap();
    check("verify", verifier.verify::<Value>(&t).await.unwrap_err());
}

/// A password written into a store URI or a Vault address never shows in
/// an error's message or `Debug` output, nor in the builder's `Debug`:
/// the review's `store list vault+http://user:pa55word@127.0.0.1:1/…`
/// printed it twice. Checked before any login setting is read.
#[test]
fn passwords_in_uris_and_addresses_are_never_shown() {
    const PASSWORD: &str = "pa55word";
    let shown = |err: &Error| format!("{err} {err:?}");
    for uri in [
        "vault+http://user:pa55word@127.0.0.1:1/transit/k",
        "vault+https://user:pa55word@vault.internal/transit/k",
        "vault+http://user:pa55word@[::1/transit/k",
        "vault+https://:pa55word@h:99999/transit/k",
        "vault+https:user:pa55word@h/transit/k",
        "redis://:pa55word@127.0.0.1:6379/0",
        "user:pa55word@host/transit/k",
    ] {
        let err = jwt_keys::open_store(uri).unwrap_err();
        assert_eq!(err.kind(), "invalid_uri", "{uri}: {err}");
        let text = shown(&err);
        assert!(!text.contains(PASSWORD), "{uri}: {text}");
        let err = VaultKeyStore::builder_from_uri(uri).unwrap_err();
        assert!(!shown(&err).contains(PASSWORD), "{uri}: {err:?}");
    }
    let err = jwt_keys::open_store("vault+http://user:pa55word@127.0.0.1:1/transit/k").unwrap_err();
    assert!(
        err.to_string()
            .contains("vault+http://***@127.0.0.1:1/transit/k"),
        "{err}"
    );
    for address in [
        "http://user:pa55word@127.0.0.1:8200",
        "http://user:pa55word@[::1",
        "ftp://user:pa55word@h",
        "http://user:pa55word@h/prefix",
    ] {
        let builder = VaultKeyStore::builder("transit", "k")
            .address(address)
            .token("t");
        assert!(!format!("{builder:?}").contains(PASSWORD), "{builder:?}");
        let err = builder.build().unwrap_err();
        assert!(
            matches!(
                &err,
                Error::InvalidConfig {
                    setting: "address",
                    ..
                }
            ),
            "{address}: {err:?}"
        );
        assert!(!shown(&err).contains(PASSWORD), "{address}: {err:?}");
        assert!(err.to_string().contains("***@"), "{address}: {err}");
    }
}

#[tokio::test]
async fn errors_are_typed() {
    let Some((addr, token)) = server() else {
        return;
    };
    let store = store_at(
        &addr,
        &token,
        &unique("none"),
        Arc::new(jwt_core::SystemClock),
    );
    assert_eq!(store.active().await.unwrap_err().kind(), "not_initialized");
    let bad = VaultKeyStore::builder("transit", unique("bad"))
        .address(&addr)
        .token("not-a-token")
        .build()
        .unwrap();
    let err = bad.active().await.unwrap_err();
    assert_eq!(err.kind(), "backend");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("VAULT_TOKEN"), "{err}");
    // Never the token itself, in the message or the debug output.
    assert!(!format!("{err} {err:?} {bad:?}").contains("not-a-token"));
    assert_eq!(bad.check_auth().await.unwrap_err().kind(), "backend");
    assert_eq!(
        bad.init(Algorithm::HS256, &conformance::policy())
            .await
            .unwrap_err()
            .kind(),
        "invalid_config"
    );
}

/// A bad address is an `invalid_config` error naming it, never a panic
/// (vaultrs's own settings builder panics on one); a token or namespace
/// that cannot travel in an HTTP header is refused before vaultrs would
/// panic on it.
#[test]
fn bad_addresses_and_header_values_are_errors_not_panics() {
    let build = |addr: &str| {
        VaultKeyStore::builder("transit", "k")
            .address(addr)
            .token("t")
            .build()
    };
    for addr in [
        "",
        "vault.internal:8200",
        "http://",
        "http://:8200",
        "http://[::1",
        "https://h:99999",
        "unix:///run/vault.sock",
        "https://user:pw@vault.internal",
        "https://vault.internal/prefix",
        "https://vault.internal/?x=1",
        "https://vault.internal/#f",
    ] {
        match build(addr) {
            Err(Error::InvalidConfig { setting, reason }) => {
                assert_eq!(setting, "address", "{addr}: {reason}");
                assert!(!reason.contains("pw"), "{reason}");
            }
            other => panic!("{addr}: {other:?}"),
        }
    }
    assert!(build("http://127.0.0.1:8200/").is_ok());
    assert!(build("https://vault.internal").is_ok());
    // Plain http to another machine would send the Vault token in clear
    // text (the attacker's review of the Python package caught it there):
    // refused, as the URI form and VAULT_ADDR, loopback excepted.
    for addr in [
        "http://vault.internal:8200",
        "http://192.0.2.2:8200",
        "http://[2001:db8::1]:8200",
        "HTTP://Vault.Internal",
    ] {
        match build(addr) {
            Err(Error::InvalidConfig { setting, reason }) => {
                assert_eq!(setting, "address");
                assert!(
                    reason.contains("clear text") && reason.contains("https://"),
                    "{reason}"
                );
            }
            other => panic!("{addr}: {other:?}"),
        }
    }
    assert!(matches!(
        VaultKeyStore::builder_from_uri("vault+http://192.0.2.2:8200/transit/k"),
        Err(Error::InvalidUri { .. })
    ));
    for addr in [
        "http://localhost:8200",
        "http://[::1]:8200",
        "http://127.0.0.2:8200",
    ] {
        assert!(build(addr).is_ok(), "{addr}");
    }

    let b = || VaultKeyStore::builder("transit", "k").address("http://127.0.0.1:8200");
    let setting = |r: jwt_keys::Result<VaultKeyStore>| match r {
        Err(Error::InvalidConfig { setting, .. }) => setting,
        other => panic!("{other:?}"),
    };
    assert_eq!(setting(b().token("hvs.a\nb").build()), "auth");
    assert_eq!(
        setting(b().token("t").namespace("team\r\nX-Evil: 1").build()),
        "namespace"
    );
    assert_eq!(
        setting(b().token("t").kv_mount("secret kv").build()),
        "kv_mount"
    );
    assert_eq!(
        setting(b().token("t").state_path("../x").build()),
        "kv_mount"
    );
    assert_eq!(
        setting(
            b().auth(VaultAuth::approle("r", SecretId::new("s")).with_mount("a/../b"))
                .build()
        ),
        "auth"
    );
}

/// `builder_from_uri` (for configuration files): address, mount and key
/// from the URI, nothing from the environment.
#[test]
fn builder_from_uri() {
    let store =
        VaultKeyStore::builder_from_uri("vault+https://vault.internal:8200/team/transit/jwt")
            .unwrap()
            .auth(VaultAuth::kubernetes(
                "issuer",
                VaultAuth::KUBERNETES_TOKEN_FILE,
            ))
            .build()
            .unwrap();
    let shown = format!("{store:?}");
    assert!(shown.contains("https://vault.internal:8200"), "{shown}");
    assert!(
        shown.contains("team/transit") && shown.contains("\"jwt\""),
        "{shown}"
    );
    assert_eq!(store.auth_method(), "kubernetes");
    for uri in [
        "vault+https://h",
        "vault+https:h/t/k",
        "vault+https:///t/k",
        "kms:x",
    ] {
        assert_eq!(
            VaultKeyStore::builder_from_uri(uri).unwrap_err().kind(),
            "invalid_uri",
            "{uri}"
        );
    }
}

#[test]
fn builder_refuses_contradictions_and_redacts_the_token() {
    let b = || VaultKeyStore::builder("transit", "k").address("http://127.0.0.1:8200");
    assert_eq!(
        b().build().unwrap_err().kind(),
        "invalid_config",
        "no token"
    );
    let s = b().token("s3cret-token").build().unwrap();
    assert!(!format!("{s:?}").contains("s3cret"));
    assert!(!format!("{:?}", b().token("s3cret-token")).contains("s3cret"));
    assert!(
        b().token("t").ca_cert_pem(b"x".to_vec()).build().is_err(),
        "CA over http"
    );
    assert!(b().token("t").rsa_key_bits(1024).build().is_err());
    assert!(VaultKeyStore::builder("transit", "a/b")
        .address("http://x")
        .token("t")
        .build()
        .is_err());
    assert!(VaultKeyStore::builder("t", "k")
        .address("ftp://x")
        .token("t")
        .build()
        .is_err());
}

const CHILD: &str = "JWTKEYS_VAULT_URI_CHILD";

/// `open_store("vault+http://HOST:PORT/transit/KEY")` with `VAULT_TOKEN`
/// from the environment (run in a child process, so no test mutates this
/// process's environment); without it, an error naming `VAULT_TOKEN`.
#[test]
fn open_store_uri() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let Some((addr, token)) = server() else {
        return;
    };
    if std::env::var_os("VAULT_TOKEN").is_none() {
        let err = jwt_keys::open_store("vault+http://127.0.0.1:1/transit/k").unwrap_err();
        assert!(
            matches!(&err, Error::Env { var, .. } if var == "VAULT_TOKEN"),
            "{err}"
        );
    }
    assert_eq!(
        jwt_keys::open_store("vault+http://host")
            .unwrap_err()
            .kind(),
        "invalid_uri"
    );
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "open_store_uri_child", "--nocapture"])
        .env(CHILD, "1")
        .env("VAULT_TOKEN", &token)
        .env(
            "JWTKEYS_VAULT_URI",
            format!(
                "{}/transit/{}",
                addr.replace("http://", "vault+http://"),
                unique("uri")
            ),
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[tokio::test]
async fn open_store_uri_child() {
    let Ok(uri) = std::env::var("JWTKEYS_VAULT_URI") else {
        return;
    };
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let store = jwt_keys::open_store(&uri).unwrap();
    assert_eq!(store.name(), "vault");
    store
        .init(Algorithm::EdDSA, &conformance::policy())
        .await
        .unwrap();
    let t = store.sign_token(&claims("uri"), None).await.unwrap();
    let jwks = store.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&t, &jwks), Ok("uri".into()));
}

/// An OpenBao of our own with file storage, initialized and unsealed over
/// HTTP; it keeps its keys across a kill and restart.
struct OwnBao {
    process: ServerProcess,
    addr: String,
    token: String,
    unseal_key: String,
    _dir: tempfile::TempDir,
}

impl OwnBao {
    async fn start(bin: &str) -> OwnBao {
        let dir = tempfile::tempdir().unwrap();
        let (port, cluster) = (free_port(), free_port());
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let config = dir.path().join("bao.hcl");
        // OpenBao 2 has no file storage; single-node Raft persists as well.
        std::fs::write(
            &config,
            format!(
                "storage \"raft\" {{\n path = \"{}\"\n node_id = \"n1\"\n}}\n\
                 listener \"tcp\" {{\n address = \"127.0.0.1:{port}\"\n cluster_address = \"127.0.0.1:{cluster}\"\n tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\n",
                data.display()
            ),
        )
        .unwrap();
        let cfg = format!("-config={}", config.display());
        let process = ServerProcess::start("openbao", bin, &["server", &cfg], port);
        let addr = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let init: Value = http
            .put(format!("{addr}/v1/sys/init"))
            .json(&json!({"secret_shares": 1, "secret_threshold": 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut bao = OwnBao {
            process,
            token: init["root_token"].as_str().unwrap().to_owned(),
            unseal_key: init["keys"][0].as_str().unwrap().to_owned(),
            addr,
            _dir: dir,
        };
        bao.unseal().await;
        for (path, body) in [
            ("sys/mounts/transit", json!({"type": "transit"})),
            (
                "sys/mounts/secret",
                json!({"type": "kv", "options": {"version": "2"}}),
            ),
        ] {
            // Until Raft has elected this node, writes answer 5xx.
            let mut status = None;
            for _ in 0..100 {
                let s = http
                    .post(format!("{}/v1/{path}", bao.addr))
                    .header("X-Vault-Token", &bao.token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status();
                status = Some(s);
                if s.is_success() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(status.unwrap().is_success(), "{path}: {status:?}");
        }
        bao
    }

    async fn unseal(&mut self) {
        let resp: Value = reqwest::Client::new()
            .put(format!("{}/v1/sys/unseal", self.addr))
            .json(&json!({"key": self.unseal_key}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(resp["sealed"], false, "{resp}");
    }
}

/// The server frozen (SIGSTOP), then killed mid-run: `sign` fails with a
/// typed retryable error within the configured timeout, verification keeps
/// working from cached public keys, and signing recovers — with the same
/// keys — when the server is back (thawed; restarted on the same port and
/// unsealed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_mid_run() {
    let Some(bin) = binary("JWTKIT_TEST_BAO_BIN", "bao") else {
        return;
    };
    let mut bao = OwnBao::start(&bin).await;
    let timeout = Duration::from_secs(2);
    let store: Arc<dyn KeyStore> = Arc::new(
        VaultKeyStore::builder("transit", "fault")
            .address(&bao.addr)
            .token(&bao.token)
            .timeout(timeout)
            .build()
            .unwrap(),
    );
    // A new KV v2 mount upgrades itself for a moment after it is created.
    let mut init = None;
    for _ in 0..50 {
        match store.init(Algorithm::ES256, &conformance::policy()).await {
            Ok(r) => {
                init = Some(r);
                break;
            }
            Err(e) if e.kind() == "backend" => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => panic!("init: {e}"),
        }
    }
    let init = init.expect("OpenBao answered");
    let verifier = Verifier::new(
        KeySource::Store(store.clone()),
        Validation::new([Algorithm::ES256]),
    )
    .unwrap();
    let before = store.sign_token(&claims("before"), None).await.unwrap();
    verifier.verify::<Value>(&before).await.unwrap();

    for (what, frozen) in [("frozen", true), ("killed", false)] {
        if frozen {
            bao.process.freeze();
        } else {
            bao.process.kill();
        }
        let started = Instant::now();
        let err = store.sign(&init.active, b"a.b").await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), "backend", "{what}: {err}");
        assert!(err.is_retryable(), "{what}: {err}");
        assert!(
            took < timeout + Duration::from_secs(3),
            "{what}: took {took:?}"
        );
        let data = verifier.verify::<Value>(&before).await.unwrap();
        assert_eq!(data.claims["sub"], "before");
        let jwks = store.verification_keys().await.unwrap();
        assert_eq!(verify_independently(&before, &jwks), Ok("before".into()));
        if frozen {
            bao.process.thaw();
        } else {
            bao.process.restart();
            bao.unseal().await;
        }
        // Recovery: retryable errors until the server is active again (Raft
        // elects itself a second or two after an unseal).
        let mut after = store.sign_token(&claims(what), None).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(&after, Err(e) if e.is_retryable()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            after = store.sign_token(&claims(what), None).await;
        }
        let after = after.unwrap_or_else(|e| panic!("signing after {what}: {e}"));
        let header = jwt_core::dangerous::insecure_decode_header(&after).unwrap();
        assert_eq!(
            header.kid.as_deref(),
            Some(init.active.as_str()),
            "same key after {what}"
        );
        verifier.verify::<Value>(&after).await.unwrap();
    }
}
