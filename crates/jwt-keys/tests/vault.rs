//! The Vault backend against a real server: the OpenBao dev server with
//! transit (and its default KV v2 `secret/`) that `scripts/services.sh`
//! starts (`JWTKIT_TEST_VAULT_ADDR`, `JWTKIT_TEST_VAULT_TOKEN`), and for the
//! fault test an OpenBao of its own with file storage (`JWTKIT_TEST_BAO_BIN`),
//! killed and restarted on the same port. Without them these tests print
//! how to run them and pass, unless `JWTKIT_REQUIRE_SERVICES=1`/`CI` is set.
#![cfg(feature = "vault")]

mod remote_servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_core::{Algorithm, Clock, ManualClock, Validation};
use jwt_keys::vault::VaultKeyStore;
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
    assert_eq!(
        bad.init(Algorithm::HS256, &conformance::policy())
            .await
            .unwrap_err()
            .kind(),
        "invalid_config"
    );
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
