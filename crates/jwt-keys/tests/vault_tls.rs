//! The Vault store over TLS with a custom CA: the test makes a CA and a
//! server certificate for 127.0.0.1 with `openssl`, starts an OpenBao of its
//! own (`JWTKIT_TEST_BAO_BIN`) with a TLS listener on a free loopback port,
//! initializes and unseals it, and kills it when done. The store trusts the
//! CA given to it (`ca_cert_pem`, `VAULT_CACERT`) and nothing else;
//! `VAULT_SKIP_VERIFY` changes nothing.
#![cfg(feature = "vault")]

mod remote_servers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jwt_core::Algorithm;
use jwt_keys::vault::VaultKeyStore;
use jwt_keys::{conformance, KeyStore, KeyStoreExt};
use jwtkit_test_support::{binary, free_port, tool};
use remote_servers::{verify_independently, ServerProcess};
use serde_json::{json, Value};

/// A CA and a certificate it signed for 127.0.0.1, in `dir`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(openssl: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new(openssl)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_ca(openssl_bin: &Path, dir: &Path, name: &str) -> PathBuf {
    let key = format!("{name}.key");
    let cert = format!("{name}.pem");
    openssl(
        openssl_bin,
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ],
    );
    openssl(
        openssl_bin,
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-sha256",
            "-days",
            "2",
            "-subj",
            &format!("/CN=jwtkit test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &cert,
        ],
    );
    dir.join(cert)
}

fn make_pki(openssl_bin: &Path, dir: &Path) -> Pki {
    let ca = make_ca(openssl_bin, dir, "ca");
    openssl(
        openssl_bin,
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "server.key",
        ],
    );
    openssl(
        openssl_bin,
        dir,
        &[
            "req",
            "-new",
            "-key",
            "server.key",
            "-subj",
            "/CN=127.0.0.1",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        openssl_bin,
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
    Pki {
        ca,
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// An OpenBao with a TLS listener and in-memory storage, initialized,
/// unsealed, with `transit/` and a KV v2 `secret/`.
struct TlsBao {
    _process: ServerProcess,
    addr: String,
    token: String,
}

async fn start_bao(bin: &str, dir: &Path, pki: &Pki) -> TlsBao {
    let (port, cluster) = (free_port(), free_port());
    let config = dir.join("bao.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"inmem\" {{}}\n\
             listener \"tcp\" {{\n address = \"127.0.0.1:{port}\"\n cluster_address = \"127.0.0.1:{cluster}\"\n tls_cert_file = \"{}\"\n tls_key_file = \"{}\"\n}}\n\
             api_addr = \"https://127.0.0.1:{port}\"\ncluster_addr = \"https://127.0.0.1:{cluster}\"\ndisable_mlock = true\n",
            pki.cert.display(),
            pki.key.display()
        ),
    )
    .unwrap();
    let cfg = format!("-config={}", config.display());
    let process = ServerProcess::start("openbao (tls)", bin, &["server", &cfg], port);
    let addr = format!("https://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap(),
        )
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let init: Value = http
        .put(format!("{addr}/v1/sys/init"))
        .json(&json!({"secret_shares": 1, "secret_threshold": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = init["root_token"].as_str().unwrap().to_owned();
    let unseal: Value = http
        .put(format!("{addr}/v1/sys/unseal"))
        .json(&json!({"key": init["keys"][0]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unseal["sealed"], false, "{unseal}");
    for (path, body) in [
        ("sys/mounts/transit", json!({"type": "transit"})),
        (
            "sys/mounts/secret",
            json!({"type": "kv", "options": {"version": "2"}}),
        ),
    ] {
        // Right after the unseal, writes may answer 5xx for a moment.
        let mut status = None;
        for _ in 0..100 {
            let s = http
                .post(format!("{addr}/v1/{path}"))
                .header("X-Vault-Token", &token)
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
    TlsBao {
        _process: process,
        addr,
        token,
    }
}

fn store(bao: &TlsBao, key: &str, ca: Option<&Path>) -> VaultKeyStore {
    let mut b = VaultKeyStore::builder("transit", key)
        .address(&bao.addr)
        .token(&bao.token)
        .timeout(Duration::from_secs(10));
    if let Some(ca) = ca {
        b = b.ca_cert_pem(std::fs::read(ca).unwrap());
    }
    b.build().unwrap()
}

const CHILD: &str = "JWTKEYS_VAULT_TLS_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_custom_ca() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let Some(bin) = binary("JWTKIT_TEST_BAO_BIN", "bao") else {
        return;
    };
    let Some(openssl_bin) = tool(
        "openssl",
        "install openssl (Debian: apt-get install openssl)",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(&openssl_bin, dir.path());
    let other_ca = make_ca(&openssl_bin, dir.path(), "other-ca");
    let bao = start_bao(&bin, dir.path(), &pki).await;

    // With the CA: the store works.
    let good = store(&bao, "tls", Some(&pki.ca));
    good.init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let t = good
        .sign_token(
            &json!({"sub": "tls", "exp": jwt_core::time::now_unix() + 600}),
            None,
        )
        .await
        .unwrap();
    let jwks = good.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&t, &jwks), Ok("tls".into()));

    // Without it (system roots), or with another CA: a TLS failure, not
    // retryable, pointing at VAULT_CACERT.
    for (what, ca) in [("no CA", None), ("another CA", Some(other_ca.as_path()))] {
        let err = store(&bao, "tls", ca).active().await.unwrap_err();
        assert_eq!(err.kind(), "backend", "{what}: {err}");
        assert!(!err.is_retryable(), "{what}: {err}");
        assert!(err.to_string().contains("VAULT_CACERT"), "{what}: {err}");
    }

    // From the environment, in child processes: VAULT_SKIP_VERIFY=true
    // does not switch verification off; VAULT_CACERT is honoured.
    let uri = bao.addr.replace("https://", "vault+https://") + "/transit/tls";
    for (cacert, expect_ok) in [(None, false), (Some(&pki.ca), true)] {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "tls_child", "--nocapture"])
            .env(CHILD, "1")
            .env("JWTKEYS_VAULT_TLS_URI", &uri)
            .env(
                "JWTKEYS_VAULT_TLS_EXPECT_OK",
                if expect_ok { "1" } else { "0" },
            )
            .env("VAULT_TOKEN", &bao.token)
            .env("VAULT_SKIP_VERIFY", "true")
            .env_remove("VAULT_AUTH_METHOD")
            .env_remove("VAULT_CAPATH");
        match cacert {
            Some(p) => cmd.env("VAULT_CACERT", p),
            None => cmd.env_remove("VAULT_CACERT"),
        };
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "VAULT_CACERT={cacert:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn tls_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let uri = std::env::var("JWTKEYS_VAULT_TLS_URI").unwrap();
    let store = jwt_keys::open_store(&uri).unwrap();
    let result = store.active().await;
    if std::env::var("JWTKEYS_VAULT_TLS_EXPECT_OK").unwrap() == "1" {
        assert_eq!(result.unwrap().kid, "transit/tls/v1");
    } else {
        let err = result.unwrap_err();
        assert!(
            !err.is_retryable() && err.to_string().contains("TLS handshake"),
            "{err}"
        );
    }
}
