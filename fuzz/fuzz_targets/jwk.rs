//! JWK and JWKS parsing, and turning each entry into a key: never a panic.
#![no_main]

use jwt_core::{Jwk, Jwks, KeySet, SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(jwk) = Jwk::from_json(data) {
        let _ = jwk.thumbprint();
        let _ = jwk.to_public();
        if let Ok(k) = VerifyingKey::from_jwk(&jwk) {
            let _ = k.to_public_jwk();
            let _ = k.thumbprint();
        }
        if let Ok(k) = SigningKey::from_jwk(&jwk) {
            let _ = k.to_public_jwk();
        }
    }
    if let Ok(jwks) = Jwks::from_json(data) {
        let set = KeySet::from_jwks(&jwks);
        // Every usable key round-trips through its public JWK.
        for key in set.keys() {
            if let Some(public) = key.to_public_jwk() {
                let again = VerifyingKey::from_jwk(&public).expect("a published key reloads");
                assert_eq!(again.thumbprint().unwrap(), key.thumbprint().unwrap());
            }
        }
        let _ = set.to_jwks().to_json();
    }
});
