//! PEM and DER key loading: never a panic; a loaded key's public part is consistent.
#![no_main]

use jwt_core::{SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for key in [SigningKey::from_pem(data), SigningKey::from_der(data)].into_iter().flatten() {
        let public = key.verifying_key();
        if let (Ok(a), Ok(b)) = (key.thumbprint(), public.thumbprint()) {
            assert_eq!(a, b);
        }
        let _ = key.to_public_jwk();
    }
    for key in [VerifyingKey::from_pem(data), VerifyingKey::from_der(data)].into_iter().flatten() {
        let _ = key.to_public_jwk();
        let _ = key.thumbprint();
    }
});
