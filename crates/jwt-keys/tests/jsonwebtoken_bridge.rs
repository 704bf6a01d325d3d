//! The `jsonwebtoken` bridge against a real provider (the OpenBao dev
//! server of the test harness): tokens verified with `jsonwebtoken::decode`
//! and the keys jwtkit's cache hands out, across a key rotation at the
//! provider; keys stay bound to their issuer. Without the server these
//! tests print how to run them and pass, unless `JWTKIT_REQUIRE_SERVICES=1`
//! or `CI` is set.
#![cfg(feature = "jsonwebtoken")]

mod openbao;
mod vault_admin;

use std::sync::Arc;

use jwt_core::ManualClock;
use jwt_keys::jsonwebtoken_bridge::DecodingKeys;
use jwt_keys::{Error, Issuer, MultiIssuerVerifier};
use openbao::{kid, unique, Bao};
use serde_json::Value;

fn decode(keys: &jwt_keys::jsonwebtoken_bridge::IssuerKey, token: &str) -> Value {
    jsonwebtoken::decode::<Value>(token, keys.decoding_key(), &keys.validation())
        .unwrap_or_else(|e| panic!("jsonwebtoken refused the token: {e}"))
        .claims
}

#[tokio::test]
async fn jsonwebtoken_decodes_through_the_bridge_across_a_rotation() {
    let Some(bao) = Bao::connect().await else {
        return;
    };
    let key = unique("bridge-key");
    bao.key(&key, "RS256", "1h").await;
    let role = unique("bridge-role");
    let audience = bao.role(&role, &key, "1h").await;
    let user = bao.user().await;
    let issuer = bao.issuer();
    let old = bao.id_token(&user, &role).await;

    let clock = Arc::new(ManualClock::starting_now());
    let keys = DecodingKeys::new(
        MultiIssuerVerifier::builder()
            .issuer(Issuer::discover(&issuer).audience(&audience))
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    // Not loaded yet: the synchronous lookup says so, the async one loads.
    let err = keys.for_token_cached(&old).unwrap_err();
    assert_eq!(err.kind().as_str(), "stale_keys", "{err}");
    let k = keys.for_token(&old).await.unwrap();
    assert_eq!(k.algorithm(), jsonwebtoken::Algorithm::RS256);
    assert_eq!(k.issuer(), issuer);
    assert_eq!(k.kid(), Some(kid(&old).as_str()));
    let claims = decode(&k, &old);
    assert_eq!(claims["sub"], user.entity_id.as_str());
    assert_eq!(claims["aud"], audience.as_str());
    let fetches = keys.verifier().verifier(&issuer).unwrap().fetch_count();

    // The provider rotates twice: its signing key is one the cache never saw.
    bao.rotate(&key).await;
    bao.rotate(&key).await;
    let new = bao.id_token(&user, &role).await;
    assert_ne!(kid(&new), kid(&old));
    let err = keys.for_token_cached(&new).unwrap_err();
    assert!(
        matches!(&err, Error::Core(jwt_core::Error::UnknownKey { kid: Some(k) }) if *k == kid(&new)),
        "{err:?}"
    );
    // Past the cooldown, the unknown kid is fetched once.
    clock.advance(31);
    let k = keys.for_token(&new).await.unwrap();
    assert_eq!(decode(&k, &new)["sub"], user.entity_id.as_str());
    assert_eq!(
        keys.verifier().verifier(&issuer).unwrap().fetch_count(),
        fetches + 1
    );
    // The old key is still published (verification_ttl): old tokens decode,
    // from the cache, without I/O.
    let k = keys.for_token_cached(&old).unwrap();
    assert_eq!(decode(&k, &old)["sub"], user.entity_id.as_str());
    // The same through a header decoded by jsonwebtoken.
    let header = jsonwebtoken::decode_header(&new).unwrap();
    let k = keys.for_header(&issuer, &header).await.unwrap();
    assert_eq!(decode(&k, &new)["aud"], audience.as_str());
    // The validation the bridge gives checks the issuer's audience.
    let mut wrong_audience = k.validation();
    wrong_audience.set_audience(&["another-api"]);
    let err = jsonwebtoken::decode::<Value>(&new, k.decoding_key(), &wrong_audience).unwrap_err();
    assert_eq!(
        err.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidAudience
    );
}

/// The key handed out is the issuer's the token names: another issuer's
/// kid is `unknown_key`, an issuer not configured is `invalid_issuer`, an
/// algorithm the key does not verify with is `invalid_algorithm`.
#[tokio::test]
async fn the_bridge_hands_out_keys_of_the_tokens_issuer_only() {
    let Some(bao) = Bao::connect().await else {
        return;
    };
    let user = bao.user().await;
    let role_key = unique("bridge-bound-key");
    bao.key(&role_key, "ES256", "1h").await;
    let role = unique("bridge-bound-role");
    let audience = bao.role(&role, &role_key, "1h").await;
    let client_key = unique("bridge-client-key");
    bao.key(&client_key, "ES256", "1h").await;
    let provider = bao.provider(&client_key, &user).await;
    let identity = bao.issuer();
    let identity_token = bao.id_token(&user, &role).await;
    let provider_token = bao.provider_token(&provider, &user).await;

    let keys = DecodingKeys::new(
        MultiIssuerVerifier::builder()
            .issuer(Issuer::discover(&identity).audience(&audience))
            .issuer(Issuer::discover(&provider.issuer).audience(&provider.client_id))
            .build()
            .unwrap(),
    );
    let k = keys.for_token(&provider_token).await.unwrap();
    assert_eq!(decode(&k, &provider_token)["iss"], provider.issuer.as_str());
    let k = keys.for_token(&identity_token).await.unwrap();
    assert_eq!(decode(&k, &identity_token)["iss"], identity.as_str());

    // The provider's header (its kid) on a payload naming the built-in issuer.
    let mut parts: Vec<&str> = provider_token.split('.').collect();
    parts[1] = identity_token.split('.').nth(1).unwrap();
    let crossed = parts.join(".");
    let err = keys.for_token(&crossed).await.unwrap_err();
    assert_eq!(err.kind().as_str(), "unknown_key", "{err}");
    // The provider's header asked of the built-in issuer.
    let header = jsonwebtoken::decode_header(&provider_token).unwrap();
    let err = keys.for_header(&identity, &header).await.unwrap_err();
    assert_eq!(err.kind().as_str(), "unknown_key", "{err}");
    let err = keys
        .for_header("https://not-configured.example/", &header)
        .await
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_issuer", "{err}");
    // The identity token's ES256 key, asked for ES384.
    let mut header = jsonwebtoken::decode_header(&identity_token).unwrap();
    header.alg = jsonwebtoken::Algorithm::ES384;
    let err = keys.for_header(&identity, &header).await.unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_algorithm", "{err}");
    assert!(
        err.to_string().contains("verifies only with [ES256]"),
        "{err}"
    );
    header.alg = jsonwebtoken::Algorithm::HS256;
    let err = keys.for_header(&identity, &header).await.unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_algorithm", "{err}");
    // A forged copy of the provider's token, its issuer swapped: the
    // bridged validation (iss, signature) refuses it in jsonwebtoken too.
    let k = keys.for_token(&provider_token).await.unwrap();
    let mut other = k.validation();
    other.set_issuer(&[&identity]);
    assert!(jsonwebtoken::decode::<Value>(&provider_token, k.decoding_key(), &other).is_err());
}
