//! Verifying an identity provider's tokens by `kid` from its JWKS URL (what
//! PyJWT's `PyJWKClient` does), and the provider rotating its keys: it starts
//! publishing a new key, signs with it, and later drops the old one.
//!
//! The provider is a loopback HTTP server run by the test. The CLI fetches
//! the JWKS on every run (one process per verify, no cache across runs); a
//! long-lived `jwt_keys::Verifier` caches it, so it is checked separately:
//! an unknown `kid` makes it refetch (outside the cooldown), and a dropped
//! key stops verifying once its cached copy expires.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_core::{Algorithm, ManualClock, Validation};
use jwt_keys::{KeySource, Verifier};
use serde_json::Value;

use crate::common::{jwtkit, ok, Run};
use crate::support::jwks_server::{jwks_of, JwksServer};
use crate::support::{kid_of, openssl, openssl_bin, unix_now};

const ISS: &str = "https://tenant.example.auth0.com/";

/// The one public JWK of `key` (a PEM file), as `jwtkit keys jwks` prints it.
fn jwk_of(dir: &Path, key: &str) -> Value {
    let jwks: Value = serde_json::from_str(&ok(dir, &["keys", "jwks", key])).unwrap();
    jwks["keys"][0].clone()
}

fn sign(dir: &Path, alg: &str, key: &str, now: i64) -> String {
    ok(
        dir,
        &[
            "sign",
            "--alg",
            alg,
            "--key",
            key,
            "--iss",
            ISS,
            "--sub",
            "auth0|alice",
            "--aud",
            "my-api",
            "--exp",
            "1h",
            "--now",
            &now.to_string(),
        ],
    )
    .trim()
    .to_owned()
}

/// `jwtkit verify --jwks-url URL --alg RS256 --iss … --aud my-api --json TOKEN`,
/// as the README shows for an identity provider.
fn verify_cli(dir: &Path, url: &str, token: &str) -> Run {
    jwtkit(
        dir,
        &[
            "verify",
            "--jwks-url",
            url,
            "--alg",
            "RS256",
            "--iss",
            ISS,
            "--aud",
            "my-api",
            "--json",
            token,
        ],
    )
}

fn assert_valid(run: &Run, kid: &str) {
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    let json = run.json();
    assert_eq!(json["header"]["kid"], kid);
    assert_eq!(json["claims"]["sub"], "auth0|alice");
}

fn assert_unknown_key(run: &Run) {
    assert_eq!(
        (run.code, run.json()["error"].as_str()),
        (1, Some("unknown_key")),
        "{} {}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn the_cli_follows_a_provider_rotation_by_kid() {
    let Some(openssl_bin) = openssl_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for key in ["old.pem", "new.pem"] {
        openssl(&openssl_bin, dir, &["genrsa", "-out", key, "2048"]);
    }
    let (old_jwk, new_jwk) = (jwk_of(dir, "old.pem"), jwk_of(dir, "new.pem"));
    let server = JwksServer::start(jwks_of(&[&old_jwk]));
    let now = unix_now();
    let old_token = sign(dir, "RS256", "old.pem", now);
    let new_token = sign(dir, "RS256", "new.pem", now);
    let (old_kid, new_kid) = (kid_of(&old_token), kid_of(&new_token));
    assert_eq!(old_jwk["kid"], old_kid.as_str());
    assert_eq!(new_jwk["kid"], new_kid.as_str());

    assert_valid(&verify_cli(dir, &server.url, &old_token), &old_kid);
    // Signed with a key the provider does not publish (yet).
    assert_unknown_key(&verify_cli(dir, &server.url, &new_token));

    // The provider publishes the new key next to the old one.
    server.publish(jwks_of(&[&old_jwk, &new_jwk]));
    assert_valid(&verify_cli(dir, &server.url, &new_token), &new_kid);
    assert_valid(&verify_cli(dir, &server.url, &old_token), &old_kid);

    // … and drops the old one: its tokens are refused by kid.
    server.publish(jwks_of(&[&new_jwk]));
    assert_unknown_key(&verify_cli(dir, &server.url, &old_token));
    assert_valid(&verify_cli(dir, &server.url, &new_token), &new_kid);

    // Each CLI run fetched the JWKS once: there is no cache across processes.
    assert_eq!(server.hits(), 6);
}

fn kind(result: Result<jwt_core::TokenData<Value>, jwt_keys::Error>) -> String {
    match result {
        Ok(data) => format!("ok:{}", data.claims["sub"].as_str().unwrap_or("?")),
        Err(e) => e.kind().as_str().to_owned(),
    }
}

#[tokio::test]
async fn a_long_lived_verifier_follows_a_provider_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for key in ["old.pem", "new.pem"] {
        ok(dir, &["keys", "generate", "--alg", "ES256", "--out", key]);
    }
    let (old_jwk, new_jwk) = (jwk_of(dir, "old.pem"), jwk_of(dir, "new.pem"));
    let server = JwksServer::start(jwks_of(&[&old_jwk]));
    let t0 = unix_now();
    let old_token = sign(dir, "ES256", "old.pem", t0);
    let new_token = sign(dir, "ES256", "new.pem", t0);
    let (old_kid, new_kid) = (kid_of(&old_token), kid_of(&new_token));

    // Time is given once: the verifier's cache and the claims checks share it.
    let clock = Arc::new(ManualClock::new(t0));
    let verifier = Verifier::builder(
        KeySource::Remote(server.url.clone()),
        Validation::new([Algorithm::ES256])
            .issuer(ISS)
            .audience("my-api")
            .clock(clock.clone()),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    let ok_sub = "ok:auth0|alice";

    assert_eq!(kind(verifier.verify(&old_token).await), ok_sub);
    assert_eq!((server.hits(), verifier.fetch_count()), (1, 1));

    // The provider rotates. Right after the first fetch, an unknown kid does
    // not refetch (the 30 s cooldown bounds fetches caused by made-up kids) …
    server.publish(jwks_of(&[&old_jwk, &new_jwk]));
    assert_eq!(kind(verifier.verify(&new_token).await), "unknown_key");
    assert_eq!(server.hits(), 1);
    // … past it, the unknown kid is fetched once and verifies.
    clock.advance(31);
    assert_eq!(kind(verifier.verify(&new_token).await), ok_sub);
    assert_eq!(server.hits(), 2);
    let mut both = vec![old_kid.clone(), new_kid.clone()];
    both.sort();
    let mut cached = verifier.cached_kids();
    cached.sort();
    assert_eq!(cached, both);
    assert_eq!(kind(verifier.verify(&old_token).await), ok_sub);
    assert_eq!(server.hits(), 2, "known kids cause no fetch");

    // The provider drops the old key. Until the cached set expires (10 min
    // without Cache-Control) the old key still verifies here …
    server.publish(jwks_of(&[&new_jwk]));
    clock.advance(500);
    assert_eq!(kind(verifier.verify(&old_token).await), ok_sub);
    assert_eq!(server.hits(), 2);
    // … past the TTL the cached set still answers, and a background refresh
    // loads the provider's new set; from then on the old kid is unknown.
    clock.advance(101);
    assert_eq!(kind(verifier.verify(&old_token).await), ok_sub);
    let start = Instant::now();
    while verifier.fetch_count() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the background refresh did not happen"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(verifier.cached_kids(), vec![new_kid.clone()]);
    assert_eq!(kind(verifier.verify(&old_token).await), "unknown_key");
    assert_eq!(kind(verifier.verify(&new_token).await), ok_sub);
    assert_eq!(server.hits(), 3);
}
