//! `rediss://`: TLS to Redis, with the server's certificate verified against
//! the system's trust store (here a test CA given through `SSL_CERT_FILE`,
//! which the native trust store honours). Starts its own TLS-only
//! `redis-server` on a free loopback port with a CA and server certificate
//! made by `openssl` for the run.
//!
//! One test in its own binary: it sets `SSL_CERT_FILE` for the process.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jwt_refresh::{NewRefresh, RedisRefreshStore, RefreshStore};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME-ca.pem`) and a certificate for 127.0.0.1 it signed.
fn make_ca(dir: &Path, name: &str) {
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}-srv.key"),
            "-out",
            &format!("{name}-srv.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}-srv.csr"),
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &format!("{name}-srv.pem"),
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

#[tokio::test]
async fn rediss_urls_connect_over_verified_tls() {
    let Some(bin) = jwtkit_test_support::binary("JWTKIT_TEST_REDIS_SERVER_BIN", "redis-server")
    else {
        return;
    };
    if jwtkit_test_support::binary("JWTKIT_TEST_OPENSSL_BIN", "openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    make_ca(dir, "server");
    make_ca(dir, "other");

    let port = jwtkit_test_support::free_port();
    let _server = Killed(
        Command::new(&bin)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                "server-srv.pem",
                "--tls-key-file",
                "server-srv.key",
            ])
            .args([
                "--tls-ca-cert-file",
                "server-ca.pem",
                "--tls-auth-clients",
                "no",
            ])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("rediss://127.0.0.1:{port}/");
    let connect = || {
        RedisRefreshStore::builder()
            .url(url.clone())
            .operation_timeout(Duration::from_secs(3))
            .connect()
    };

    // A server whose certificate no trusted CA signed is refused.
    std::env::set_var("SSL_CERT_FILE", dir.join("other-ca.pem"));
    let refused = tokio::time::timeout(Duration::from_secs(20), async {
        match connect().await {
            Err(e) => Some(e),
            Ok(store) => store.issue(NewRefresh::login("alice")).await.err(),
        }
    })
    .await
    .expect("bounded");
    assert!(refused.is_some(), "an untrusted certificate was accepted");

    // Trusted: the store works over TLS.
    std::env::set_var("SSL_CERT_FILE", dir.join("server-ca.pem"));
    tokio::time::timeout(Duration::from_secs(20), async {
        let store = connect().await.expect("connect over TLS");
        let first = store.issue(NewRefresh::login("alice")).await.unwrap();
        let outcome = store.rotate(&first.jti).await.unwrap();
        assert!(outcome.rotated().is_some(), "{outcome:?}");
    })
    .await
    .expect("bounded");
}
