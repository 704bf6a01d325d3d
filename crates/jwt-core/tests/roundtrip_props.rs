//! Property tests: sign→verify round-trips for every algorithm, any
//! single-byte change is rejected, and no input makes the verifier panic.

use std::sync::OnceLock;

use jwt_core::{dangerous, Algorithm, Signer, SigningKey, Validation, Verifier};
use proptest::prelude::*;

/// One key per algorithm, generated once (RSA generation is slow).
fn pairs() -> &'static Vec<(Algorithm, Signer, Verifier)> {
    static PAIRS: OnceLock<Vec<(Algorithm, Signer, Verifier)>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        Algorithm::ALL
            .iter()
            .map(|&alg| {
                let key = SigningKey::generate(alg).unwrap();
                let verifier = Verifier::new(key.verifying_key(), Validation::new([alg])).unwrap();
                (alg, Signer::new(key, alg).unwrap(), verifier)
            })
            .collect()
    })
}

fn claims_strategy() -> impl Strategy<Value = serde_json::Value> {
    (
        "[a-zA-Z0-9 _\\-\u{e9}\u{1F600}]{0,40}",
        proptest::collection::vec(any::<i32>(), 0..5),
        any::<bool>(),
    )
        .prop_map(|(sub, nums, flag)| {
            serde_json::json!({"sub": sub, "exp": 4_000_000_000u64, "nums": nums, "flag": flag})
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn sign_verify_roundtrip(idx in 0usize..13, claims in claims_strategy()) {
        let (alg, signer, verifier) = &pairs()[idx];
        let token = signer.sign(&claims).unwrap();
        let data = verifier.verify::<serde_json::Value>(&token).unwrap();
        prop_assert_eq!(data.claims, claims);
        prop_assert_eq!(data.header.alg, *alg);
    }

    #[test]
    fn any_single_byte_change_is_rejected(
        idx in 0usize..13,
        claims in claims_strategy(),
        pos in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let (_, signer, verifier) = &pairs()[idx];
        let token = signer.sign(&claims).unwrap();
        let mut bytes = token.clone().into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        // The changed token may not even be UTF-8; then it cannot be presented at all.
        if let Ok(changed) = String::from_utf8(bytes) {
            prop_assert!(verifier.verify::<serde_json::Value>(&changed).is_err(),
                "accepted a token with byte {} changed", i);
        }
    }

    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,300}") {
        let (_, _, verifier) = &pairs()[0];
        let _ = verifier.verify::<serde_json::Value>(&s);
        let _ = dangerous::insecure_decode(&s);
    }

    #[test]
    fn arbitrary_token_shaped_input_never_panics(
        h in proptest::collection::vec(any::<u8>(), 0..80),
        p in proptest::collection::vec(any::<u8>(), 0..80),
        sig in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let token = format!("{}.{}.{}", jwt_core::b64::encode(&h), jwt_core::b64::encode(&p), jwt_core::b64::encode(&sig));
        for (_, _, verifier) in pairs() {
            prop_assert!(verifier.verify::<serde_json::Value>(&token).is_err());
        }
        let _ = dangerous::insecure_decode(&token);
    }
}
