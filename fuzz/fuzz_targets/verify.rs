//! Token decoding and verification: any input is an error or a valid token,
//! never a panic; unverified decoding agrees with itself.
#![no_main]

use std::sync::OnceLock;

use jwt_core::{dangerous, Algorithm, KeySet, SigningKey, Validation, Verifier, VerifyingKey};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    hmac: Verifier,
    set: Verifier,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let hmac = Verifier::new(
            VerifyingKey::hmac(&[7u8; 64]).unwrap(),
            Validation::new([Algorithm::HS256, Algorithm::HS512]).optional_exp(),
        )
        .unwrap();
        let mut keys = KeySet::new();
        for (alg, kid) in [(Algorithm::ES256, "ec"), (Algorithm::EdDSA, "ed"), (Algorithm::RS256, "rsa")] {
            keys.insert(SigningKey::generate(alg).unwrap().with_kid(kid).verifying_key())
                .unwrap();
        }
        let set = Verifier::with_key_set(
            keys,
            Validation::new([Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256])
                .audience("api")
                .typ("at+jwt"),
        )
        .unwrap();
        Fixture { hmac, set }
    })
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let f = fixture();
    let _ = f.hmac.verify_to_map(&token);
    let _ = f.set.verify_to_map(&token);
    if let Ok(u) = dangerous::insecure_decode(&token) {
        // Whatever decodes must also decode header-only, identically.
        let h = dangerous::insecure_decode_header(&token).expect("header decodes");
        assert_eq!(h, u.header);
    }
});

