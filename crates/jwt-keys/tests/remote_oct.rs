//! A remote JWKS never supplies a symmetric key: an `oct` entry in a
//! published document is a secret everyone who reads it knows (found by the
//! second outside review: `--jwks-url` verified HS256 tokens signed with an
//! `oct` key from the served JWKS, even next to an RSA key of the same kid).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::JwksServer;
use jwt_core::{b64, Algorithm, Jwk, Jwks, ManualClock, Signer, SigningKey, Validation};
use jwt_keys::{KeySource, Verifier};
use serde_json::{json, Value};

const T0: i64 = 1_700_000_000;
const SECRET: &[u8] = b"a-published-secret-of-at-least-32-bytes!";

fn oct(kid: &str) -> Jwk {
    Jwk {
        kty: "oct".into(),
        k: Some(b64::encode(SECRET)),
        kid: Some(kid.into()),
        alg: Some("HS256".into()),
        ..Jwk::default()
    }
}

fn hs256_token(kid: &str) -> String {
    Signer::new(
        SigningKey::hmac(SECRET).unwrap().with_kid(kid),
        Algorithm::HS256,
    )
    .unwrap()
    .sign(&json!({"sub": "mallory", "iat": T0, "exp": T0 + 600}))
    .unwrap()
}

fn verifier(url: &str) -> Verifier {
    let clock = Arc::new(ManualClock::new(T0));
    Verifier::builder(
        KeySource::Remote(url.to_owned()),
        Validation::new([Algorithm::HS256, Algorithm::RS256]).clock(clock.clone()),
    )
    .clock(clock)
    .build()
    .unwrap()
}

#[tokio::test]
async fn symmetric_keys_in_a_remote_jwks_are_never_trusted() {
    tokio::time::timeout(Duration::from_secs(30), async {
        // Only an oct key: the document has no usable key at all.
        let only = JwksServer::serving(
            Jwks {
                keys: vec![oct("k")],
            }
            .to_json(),
        )
        .await;
        let err = verifier(&only.url)
            .verify::<Value>(&hs256_token("k"))
            .await
            .unwrap_err();
        assert_eq!(err.kind().to_string(), "fetch", "{err}");

        // Next to an RSA key of the same kid: the HS256 token is refused.
        let rsa = SigningKey::generate(Algorithm::RS256)
            .unwrap()
            .with_kid("k");
        let mut rsa_jwk = rsa.to_public_jwk().unwrap();
        rsa_jwk.alg = Some("RS256".into());
        let mixed = JwksServer::serving(
            Jwks {
                keys: vec![rsa_jwk, oct("k")],
            }
            .to_json(),
        )
        .await;
        let v = verifier(&mixed.url);
        assert!(v.verify::<Value>(&hs256_token("k")).await.is_err());
        // The RSA key still verifies its own tokens.
        let good = Signer::new(rsa, Algorithm::RS256)
            .unwrap()
            .sign(&json!({"sub": "alice", "iat": T0, "exp": T0 + 600}))
            .unwrap();
        assert_eq!(
            v.verify::<Value>(&good).await.unwrap().claims["sub"],
            "alice"
        );
    })
    .await
    .expect("bounded");
}
