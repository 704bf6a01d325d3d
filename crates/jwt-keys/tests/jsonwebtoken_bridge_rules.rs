//! What the `jsonwebtoken` bridge keeps of an issuer's settings, against a
//! provider played by a loopback HTTP server: its `typ` (checked by the
//! bridge, since jsonwebtoken has no such check), `nbf` (jsonwebtoken leaves
//! it unchecked by default), the required claims jsonwebtoken can require,
//! and the others listed for the caller. Found by the attacker's review of
//! issue 14: all three passed `jsonwebtoken::decode` through the bridge.
#![cfg(feature = "jsonwebtoken")]

mod issuer_server;

use issuer_server::{IssuerServer, Key};
use jwt_core::{Algorithm, Signer, SigningKey};
use jwt_keys::jsonwebtoken_bridge::DecodingKeys;
use jwt_keys::{Issuer, MultiIssuerVerifier};
use serde_json::{json, Value};

#[tokio::test]
async fn the_bridge_keeps_the_issuers_typ_nbf_and_required_claims() {
    let server = IssuerServer::start().await;
    let key = Key::new(Algorithm::ES256, "k1");
    let issuer = server.provider("/idp", &[&key]);
    let verifier = MultiIssuerVerifier::builder()
        .issuer(
            Issuer::discover(&issuer)
                .audience("api")
                .typ("at+jwt")
                .require("jti")
                .require("sub"),
        )
        .build()
        .unwrap();
    let keys = DecodingKeys::new(verifier.clone());
    let now = jwt_core::time::now_unix();
    let typed = |claims: Value| {
        Signer::new(
            SigningKey::from_pem(key.key.to_pkcs8_pem().unwrap().as_bytes())
                .unwrap()
                .with_kid("k1"),
            Algorithm::ES256,
        )
        .unwrap()
        .with_typ(Some("at+jwt"))
        .unwrap()
        .sign(&claims)
        .unwrap()
    };
    let decode = |k: &jwt_keys::jsonwebtoken_bridge::IssuerKey, token: &str| {
        jsonwebtoken::decode::<Value>(token, k.decoding_key(), &k.validation()).map(|d| d.claims)
    };

    // An access token as the issuer requires it passes, and the claims the
    // bridge cannot require are named for the caller.
    let good =
        typed(json!({"iss": issuer, "aud": "api", "sub": "alice", "jti": "j1", "exp": now + 600}));
    let k = keys.for_token(&good).await.unwrap();
    assert_eq!(decode(&k, &good).unwrap()["sub"], "alice");
    assert_eq!(k.claims_to_check(), ["jti"]);

    // An ID-token-shaped JWT (typ JWT): refused by the bridge, as by jwtkit.
    let untyped = key.sign(json!({"iss": issuer, "aud": "api", "sub": "alice", "jti": "j2"}));
    let err = keys.for_token(&untyped).await.unwrap_err();
    assert_eq!(err.kind(), "invalid_type", "{err}");
    assert_eq!(
        verifier.verify::<Value>(&untyped).await.unwrap_err().kind(),
        "invalid_type"
    );

    // `nbf` an hour ahead: refused by jsonwebtoken with the bridge's validation.
    let early = typed(json!({
        "iss": issuer, "aud": "api", "sub": "alice", "jti": "j3",
        "nbf": now + 3600, "exp": now + 7200,
    }));
    let k = keys.for_token(&early).await.unwrap();
    assert!(
        decode(&k, &early).is_err(),
        "a token not valid for another hour"
    );

    // `sub` is required through jsonwebtoken's own spec claims.
    let no_sub = typed(json!({"iss": issuer, "aud": "api", "jti": "j4", "exp": now + 600}));
    let k = keys.for_token(&no_sub).await.unwrap();
    assert!(
        decode(&k, &no_sub).is_err(),
        "a token without the required sub"
    );
}
