//! Discovery and multi-issuer verification against a real OpenID provider:
//! the OpenBao dev server the test harness starts (`JWTKIT_TEST_VAULT_ADDR`,
//! `JWTKIT_TEST_VAULT_TOKEN`). Its identity secrets engine signs ID tokens
//! (`identity/oidc/token/ROLE`, RS256 and ES256 keys here) under the issuer
//! `{addr}/v1/identity/oidc`, and each OIDC provider
//! (`identity/oidc/provider/NAME`) is a second issuer with its own keys.
//! Without the server these tests print how to run them and pass, unless
//! `JWTKIT_REQUIRE_SERVICES=1`/`CI` is set.

mod openbao;
mod vault_admin;

use std::time::Duration;

use jwt_core::Algorithm;
use jwt_keys::discovery::MetadataKind;
use jwt_keys::{CacheOptions, Error, Issuer, MultiIssuerVerifier};
use openbao::{kid, unique, Bao};
use serde_json::Value;

fn kind(result: &Result<jwt_core::TokenData<Value>, Error>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => format!("{}: {e}", e.kind()),
    }
}

/// OpenBao's metadata is found and checked, and the keys `discover`
/// reports are the ones it publishes, with their RFC 7638 thumbprints.
#[tokio::test]
async fn discovery_reads_openbao_metadata_and_keys() {
    let Some(bao) = Bao::connect().await else {
        return;
    };
    let key = unique("disc-key");
    bao.key(&key, "ES256", "1h").await;
    let role = unique("disc-role");
    bao.role(&role, &key, "1h").await;
    let user = bao.user().await;
    let token = bao.id_token(&user, &role).await;
    let issuer = bao.issuer();

    let found = jwt_keys::discover(&issuer, &CacheOptions::default())
        .await
        .unwrap();
    let metadata = found.metadata();
    assert_eq!(metadata.issuer(), issuer);
    assert_eq!(metadata.kind(), MetadataKind::OpenIdConfiguration);
    assert_eq!(metadata.jwks_uri(), format!("{issuer}/.well-known/keys"));
    // OpenBao declares every algorithm it signs with (and nothing else).
    assert_eq!(
        metadata.signing_algorithms().unwrap(),
        [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::ES512,
            Algorithm::EdDSA
        ]
    );
    let signing = kid(&token);
    let published = bao.jwks(&issuer).await;
    let jwk = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == signing.as_str())
        .expect("the signing key is published");
    let expected = jwt_core::VerifyingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap())
        .unwrap()
        .thumbprint()
        .unwrap();
    let reported = found
        .keys()
        .iter()
        .find(|k| k.kid() == signing)
        .expect("discover reports the signing key");
    assert_eq!(reported.thumbprint(), expected);
    assert_eq!(reported.jwk_algorithm(), Some(Algorithm::ES256));
    assert_eq!(reported.algorithms(), [Algorithm::ES256]);
    assert_eq!(reported.key_type(), "EC P-256");

    // The same issuer spelled another way (localhost for 127.0.0.1) is
    // refused: OpenBao's metadata names its own spelling.
    let respelled = issuer.replace("127.0.0.1", "localhost");
    let err = jwt_keys::discover(&respelled, &CacheOptions::default())
        .await
        .unwrap_err();
    match &err {
        Error::InvalidConfig {
            setting: "issuer",
            reason,
        } => assert!(
            reason.contains(&format!("names the issuer {issuer:?}"))
                && reason.contains(&format!("the configured issuer is {respelled:?}")),
            "{reason}"
        ),
        other => panic!("expected an issuer mismatch, got {other:?}"),
    }
}

/// OpenBao's RS256 and ES256 ID tokens verify through discovery, with the
/// audience of their role; the claims are OpenBao's.
#[tokio::test]
async fn openbao_id_tokens_verify_through_discovery() {
    let Some(bao) = Bao::connect().await else {
        return;
    };
    let user = bao.user().await;
    let mut tokens = Vec::new();
    let mut audiences = Vec::new();
    for alg in ["RS256", "ES256"] {
        let key = unique(&format!("verify-{alg}"));
        bao.key(&key, alg, "1h").await;
        let role = unique("verify-role");
        audiences.push(bao.role(&role, &key, "1h").await);
        tokens.push((alg, bao.id_token(&user, &role).await));
    }
    let issuer = bao.issuer();
    let mut configured = Issuer::discover(&issuer);
    for audience in &audiences {
        configured = configured.audience(audience);
    }
    let v = MultiIssuerVerifier::builder()
        .issuer(configured)
        .build()
        .unwrap();
    for (alg, token) in &tokens {
        let data = v.verify::<Value>(token).await.unwrap();
        assert_eq!(data.header.alg.as_str(), *alg);
        assert_eq!(data.claims["iss"], issuer.as_str());
        assert_eq!(data.claims["sub"], user.entity_id.as_str());
        // Loaded now: the synchronous path decides.
        assert_eq!(kind(&v.verify_cached::<Value>(token)), "ok");
    }
    // One metadata read and one key-set read served both.
    assert_eq!(v.metadata_fetch_count(&issuer), Some(1));
    assert_eq!(v.verifier(&issuer).unwrap().fetch_count(), 1);

    // Another audience is refused, as is an issuer not configured.
    let other = MultiIssuerVerifier::builder()
        .issuer(Issuer::discover(&issuer).audience("another-api"))
        .build()
        .unwrap();
    let err = other.verify::<Value>(&tokens[0].1).await.unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_audience", "{err}");
}

/// A key rotation at OpenBao while a verifier runs: the new kid (published
/// after the verifier loaded its keys) is picked up through one unknown-kid
/// refresh; tokens of the old key keep verifying until OpenBao stops
/// publishing it (its `verification_ttl` after the rotation), then they
/// are `unknown_key`.
#[tokio::test]
async fn an_openbao_key_rotation_is_followed() {
    let Some(bao) = Bao::connect().await else {
        return;
    };
    let key = unique("rot-key");
    // OpenBao keeps a rotated-out key published this long (and its tokens
    // live no longer).
    bao.key(&key, "ES256", "30s").await;
    let role = unique("rot-role");
    let audience = bao.role(&role, &key, "30s").await;
    let user = bao.user().await;
    let issuer = bao.issuer();
    let old = bao.id_token(&user, &role).await;

    // Real time (OpenBao's): a one-second cooldown and key-set lifetime
    // (OpenBao's JWKS is `no-store`), and a leeway that keeps the old
    // token within its lifetime for as long as OpenBao may keep its key.
    let v = MultiIssuerVerifier::builder()
        .issuer(
            Issuer::discover(&issuer)
                .audience(&audience)
                .leeway(Duration::from_secs(300)),
        )
        .cache(
            CacheOptions::default()
                .with_min_ttl(Duration::from_secs(1))
                .with_default_ttl(Duration::from_secs(1))
                .with_refresh_ahead(Duration::ZERO)
                .with_cooldown(Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    assert_eq!(kind(&v.verify::<Value>(&old).await), "ok");
    let fetches = v.verifier(&issuer).unwrap().fetch_count();

    // OpenBao publishes its next key ahead of time: two rotations make the
    // signing key one the verifier has never seen.
    bao.rotate(&key).await;
    bao.rotate(&key).await;
    let new = bao.id_token(&user, &role).await;
    let verifier = v.verifier(&issuer).unwrap();
    assert!(
        !verifier.cached_kids().contains(&kid(&new)),
        "the new kid must be unknown to the verifier"
    );
    // The unknown kid is looked up (once the first load's one-second
    // cooldown has passed): the first success is one refresh later.
    let start = std::time::Instant::now();
    loop {
        match v.verify::<Value>(&new).await {
            Ok(data) => {
                assert_eq!(data.header.kid.as_deref(), Some(kid(&new).as_str()));
                break;
            }
            Err(e) if e.kind().as_str() == "unknown_key" => {}
            Err(e) => panic!("{e}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the new kid was never picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        verifier.fetch_count() <= fetches + 2,
        "{}",
        verifier.fetch_count()
    );
    assert!(verifier.cached_kids().contains(&kid(&old)));

    // The old token verifies for as long as OpenBao publishes its key; once
    // OpenBao has dropped it, the verifier's next refresh drops it too.
    let start = std::time::Instant::now();
    loop {
        let result = v.verify::<Value>(&old).await;
        let published = bao.published_kids(&issuer).await.contains(&kid(&old));
        match result {
            Ok(_) => {}
            Err(e) if e.kind().as_str() == "unknown_key" => {
                assert!(
                    !published,
                    "refused while OpenBao still publishes the key: {e}"
                );
                break;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "OpenBao never dropped the rotated-out key (or the verifier never noticed)"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(kind(&v.verify::<Value>(&new).await), "ok");
}

/// Two OpenBao issuers at once — the built-in one and an OIDC provider —
/// each verifying its own tokens; a token naming one issuer with the other
/// issuer's kid is `unknown_key`, and a token of an issuer not configured
/// is `invalid_issuer`.
#[tokio::test]
async fn two_openbao_issuers_at_once_with_keys_bound_to_each() {
    let Some(bao) = Bao::connect().await else {
        return;
    };
    let user = bao.user().await;
    let role_key = unique("two-role-key");
    bao.key(&role_key, "RS256", "1h").await;
    let role = unique("two-role");
    let role_audience = bao.role(&role, &role_key, "1h").await;
    let client_key = unique("two-client-key");
    bao.key(&client_key, "ES256", "1h").await;
    let provider = bao.provider(&client_key, &user).await;

    let identity = bao.issuer();
    let identity_token = bao.id_token(&user, &role).await;
    let provider_token = bao.provider_token(&provider, &user).await;
    let v = MultiIssuerVerifier::builder()
        .issuer(Issuer::discover(&identity).audience(&role_audience))
        .issuer(Issuer::discover(&provider.issuer).audience(&provider.client_id))
        .build()
        .unwrap();
    let a = v.verify::<Value>(&identity_token).await.unwrap();
    assert_eq!(a.claims["iss"], identity.as_str());
    let b = v.verify::<Value>(&provider_token).await.unwrap();
    assert_eq!(b.claims["iss"], provider.issuer.as_str());
    assert_eq!(b.claims["nonce"], "jwtkit-nonce");
    assert_eq!(b.claims["sub"], user.entity_id.as_str());

    // The provider's kid, in a token naming the built-in issuer (header
    // and signature of the provider's token, payload naming the other):
    // the built-in issuer has no such key; the provider's, loaded, is
    // never tried.
    let swap_payload = |token: &str, from: &str| {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = from.split('.').nth(1).unwrap().to_owned();
        parts.join(".")
    };
    for (header_of, payload_of, foreign) in [
        (&provider_token, &identity_token, kid(&provider_token)),
        (&identity_token, &provider_token, kid(&identity_token)),
    ] {
        let crossed = swap_payload(header_of, payload_of);
        let err = v.verify::<Value>(&crossed).await.unwrap_err();
        assert_eq!(err.kind().as_str(), "unknown_key", "{err}");
        assert!(err.to_string().contains(&foreign), "{err}");
    }
    // A verifier for the built-in issuer only refuses the provider's tokens.
    let one = MultiIssuerVerifier::builder()
        .issuer(Issuer::discover(&identity).audience(&role_audience))
        .build()
        .unwrap();
    let err = one.verify::<Value>(&provider_token).await.unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_issuer", "{err}");
    assert!(err.to_string().contains(&provider.issuer), "{err}");
}
