//! Shared by the benches and the `hs256_count` example: the same keys,
//! algorithms and claims checks in `jsonwebtoken`.
// Each user needs only some of these.
#![allow(dead_code)]

use jwt_core::speed::SampleClaims;
use jwt_core::{Algorithm, SigningKey};

/// `jsonwebtoken`'s validation doing what `jwt_core::speed::sample_validation`
/// does: `alg`, `exp`, `nbf`, and `iss`, `aud`, `sub` matching [`SampleClaims`].
pub fn jsonwebtoken_validation(alg: jsonwebtoken::Algorithm) -> jsonwebtoken::Validation {
    let claims = SampleClaims::default();
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_issuer(&[&claims.iss]);
    v.set_audience(&[&claims.aud]);
    v.sub = Some(claims.sub);
    v.validate_nbf = true;
    v
}

/// The same algorithm in `jsonwebtoken` (which has no ES512).
pub fn jsonwebtoken_alg(alg: Algorithm) -> Option<jsonwebtoken::Algorithm> {
    use jsonwebtoken::Algorithm as J;
    Some(match alg {
        Algorithm::HS256 => J::HS256,
        Algorithm::HS384 => J::HS384,
        Algorithm::HS512 => J::HS512,
        Algorithm::RS256 => J::RS256,
        Algorithm::RS384 => J::RS384,
        Algorithm::RS512 => J::RS512,
        Algorithm::PS256 => J::PS256,
        Algorithm::PS384 => J::PS384,
        Algorithm::PS512 => J::PS512,
        Algorithm::ES256 => J::ES256,
        Algorithm::ES384 => J::ES384,
        Algorithm::EdDSA => J::EdDSA,
        // jsonwebtoken has no ES512.
        Algorithm::ES512 => return None,
    })
}

/// `jsonwebtoken`'s keys for the same key material.
pub fn jsonwebtoken_keys(
    alg: Algorithm,
    key: &SigningKey,
) -> (jsonwebtoken::EncodingKey, jsonwebtoken::DecodingKey) {
    use jsonwebtoken::{DecodingKey, EncodingKey};
    if let Some(secret) = key.hmac_secret() {
        return (
            EncodingKey::from_secret(secret),
            DecodingKey::from_secret(secret),
        );
    }
    let pem = key.to_pkcs8_pem().unwrap();
    let enc = match alg.family() {
        jwt_core::KeyFamily::Rsa => EncodingKey::from_rsa_pem(pem.as_bytes()),
        jwt_core::KeyFamily::Ec(_) => EncodingKey::from_ec_pem(pem.as_bytes()),
        _ => EncodingKey::from_ed_pem(pem.as_bytes()),
    }
    .unwrap();
    let jwk_json = serde_json::to_string(&key.to_public_jwk().unwrap()).unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&jwk_json).unwrap();
    (enc, DecodingKey::from_jwk(&jwk).unwrap())
}
