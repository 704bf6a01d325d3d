//! A loopback `http://` JWKS is never fetched through a proxy from the
//! environment: the proxy would carry the request over the network in clear
//! text, or answer it itself with keys of its choice (found by the outside
//! review of issue 11: with `HTTP_PROXY` set, a JWKS URL whose port had no
//! listener "verified" a token signed by the proxy's key).
//!
//! One test in its own binary: it sets process-wide proxy variables before
//! any HTTP client is built.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::JwksServer;
use jwt_core::{Algorithm, Jwks, ManualClock, Signer, SigningKey, Validation};
use jwt_keys::{KeySource, Verifier};
use serde_json::{json, Value};

const T0: i64 = 1_700_000_000;

#[tokio::test]
async fn a_loopback_jwks_is_never_fetched_through_a_proxy() {
    tokio::time::timeout(Duration::from_secs(30), async {
        // The "proxy" answers every request with the attacker's key set.
        let attacker = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("k");
        let mut jwk = attacker.to_public_jwk().unwrap();
        jwk.alg = Some("ES256".into());
        let proxy = JwksServer::serving(Jwks { keys: vec![jwk] }.to_json()).await;
        let proxy_addr = proxy.url.split('/').nth(2).unwrap().to_owned();
        for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            std::env::set_var(var, format!("http://{proxy_addr}"));
        }
        for var in ["NO_PROXY", "no_proxy"] {
            std::env::remove_var(var);
        }

        // The configured JWKS: a loopback port nobody listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", closed.local_addr().unwrap());
        drop(closed);

        let clock = Arc::new(ManualClock::new(T0));
        let verifier = Verifier::builder(
            KeySource::Remote(url),
            Validation::new([Algorithm::ES256]).clock(clock.clone()),
        )
        .clock(clock)
        .build()
        .unwrap();
        let token = Signer::new(attacker, Algorithm::ES256)
            .unwrap()
            .sign(&json!({"sub": "mallory", "iat": T0, "exp": T0 + 3600}))
            .unwrap();

        let err = verifier.verify::<Value>(&token).await.unwrap_err();
        assert_eq!(err.kind(), "fetch", "{err}");
        assert_eq!(proxy.hits(), 0, "the JWKS request went to the proxy");
    })
    .await
    .expect("the test took more than 30 s");
}
