//! A token service that also accepts an identity provider's tokens, side by
//! side with its own: the provider is the OpenBao dev server the test
//! harness starts (a real OpenID provider: `identity/oidc`), found by
//! discovery. Through `TokenService::verify_access*` and through the axum
//! layer, and the layer with the provider alone. Without the server these
//! tests print how to run them and pass, unless `JWTKIT_REQUIRE_SERVICES=1`
//! or `CI` is set.

#[path = "../../jwt-keys/tests/openbao/mod.rs"]
mod openbao;
#[path = "../../jwt-keys/tests/vault_admin/mod.rs"]
mod vault_admin;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use jwtkit::axum::{BearerAuthLayer, Claims};
use jwtkit::keys::{Issuer, MultiIssuerVerifier};
use jwtkit::{Algorithm, Error, MemoryKeyStore, TokenService};
use openbao::{unique, Bao};
use serde_json::Value;
use tower::ServiceExt;

const OWN: &str = "https://auth.example.test";

/// What the route answers for `Authorization: Bearer TOKEN`: the status,
/// and the body (the `iss` and `sub` the handler got) or the refusal.
async fn call(app: &axum::Router, token: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .uri("/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    match challenge {
        Some(c) => (status, c),
        None => (status, String::from_utf8(body.to_vec()).unwrap()),
    }
}

fn app(layer: BearerAuthLayer<Value>) -> axum::Router {
    axum::Router::new()
        .route(
            "/me",
            get(|Claims(claims): Claims<Value>| async move {
                format!(
                    "{} {}",
                    claims["iss"].as_str().unwrap(),
                    claims["sub"].as_str().unwrap()
                )
            }),
        )
        .layer(layer)
}

#[tokio::test]
async fn own_tokens_and_an_identity_providers_side_by_side() {
    let Some(bao) = Bao::connect().await else {
        return;
    };
    let key = unique("svc-key");
    bao.key(&key, "RS256", "1h").await;
    let role = unique("svc-role");
    let audience = bao.role(&role, &key, "1h").await;
    let user = bao.user().await;
    let external = bao.id_token(&user, &role).await;
    let provider = bao.issuer();

    let partners = MultiIssuerVerifier::builder()
        .issuer(Issuer::discover(&provider).audience(&audience))
        .build()
        .unwrap();
    let tokens = TokenService::builder()
        .key_store(MemoryKeyStore::new())
        .init_key_store(Algorithm::ES256)
        .issuer(OWN)
        .audience("api")
        .external_issuers(partners.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(
        tokens.issuers().unwrap().issuers().collect::<Vec<_>>(),
        [provider.as_str(), OWN]
    );
    let own = tokens.issue("alice", &()).await.unwrap().access_token;

    // The service's own tokens verify as before, synchronously.
    let claims: Value = tokens.verify_access(&own).unwrap();
    assert_eq!(
        (claims["iss"].as_str(), claims["sub"].as_str()),
        (Some(OWN), Some("alice"))
    );
    // The provider's keys are not loaded yet: the synchronous path says so
    // (a key-store error, `stale_keys`), the reloading one loads them.
    match tokens.verify_access::<Value>(&external) {
        Err(Error::KeyStore(e)) => assert_eq!(e.kind().as_str(), "stale_keys", "{e}"),
        other => panic!("{other:?}"),
    }
    let claims: Value = tokens.verify_access_reloading(&external).await.unwrap();
    assert_eq!(claims["iss"], provider.as_str());
    assert_eq!(claims["sub"], user.entity_id.as_str());
    let claims: Value = tokens.verify_access(&external).unwrap();
    assert_eq!(claims["aud"], audience.as_str());
    // The cache is the one the caller built (shared).
    assert_eq!(partners.verifier(&provider).unwrap().fetch_count(), 1);

    // Each issuer's own settings: the provider's ID token has no
    // `typ: at+jwt`, which the service requires of its own tokens only; a
    // token naming the service with the provider's key is not the service's.
    let mut parts: Vec<&str> = external.split('.').collect();
    let own_payload = own.split('.').nth(1).unwrap().to_owned();
    parts[1] = &own_payload;
    let crossed = parts.join(".");
    match tokens.verify_access_reloading::<Value>(&crossed).await {
        Err(Error::InvalidToken(e)) => assert_eq!(e.kind().as_str(), "unknown_key", "{e}"),
        other => panic!("{other:?}"),
    }

    // The same through the axum layer.
    let service_app = app(BearerAuthLayer::new(tokens.clone()));
    assert_eq!(
        call(&service_app, &own).await,
        (StatusCode::OK, format!("{OWN} alice"))
    );
    assert_eq!(
        call(&service_app, &external).await,
        (StatusCode::OK, format!("{provider} {}", user.entity_id))
    );
    let (status, challenge) = call(&service_app, &crossed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("refused: unknown_key"), "{challenge}");

    // An API that issues no tokens: the provider alone. The service's
    // tokens name an issuer it does not accept.
    let provider_app = app(BearerAuthLayer::issuers(partners));
    assert_eq!(
        call(&provider_app, &external).await,
        (StatusCode::OK, format!("{provider} {}", user.entity_id))
    );
    let (status, challenge) = call(&provider_app, &own).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\"")
            && challenge.contains("invalid_issuer"),
        "{challenge}"
    );
}

/// The service's own issuer cannot also be an external one.
#[tokio::test]
async fn the_own_issuer_is_not_an_external_issuer() {
    let partners = MultiIssuerVerifier::builder()
        .issuer(Issuer::discover(OWN))
        .build()
        .unwrap();
    let err = TokenService::builder()
        .key_store(MemoryKeyStore::new())
        .init_key_store(Algorithm::ES256)
        .issuer(OWN)
        .audience("api")
        .external_issuers(partners)
        .build()
        .await
        .unwrap_err();
    match err {
        Error::Config { setting, reason } => {
            assert_eq!(setting, "external_issuers");
            assert!(reason.contains("is also an external issuer"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
