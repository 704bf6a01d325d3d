//! `MultiIssuerVerifier::verify_cached` adds no heap allocation to a
//! verification: reading the token's `iss` (the payload decoded on the
//! stack, the string borrowed from it), finding the issuer and then its key
//! allocate nothing, so a verification through three configured issuers
//! allocates exactly what jwt-core's own `Verifier` does for the same token
//! (issue 14: "verifying a token whose issuer and key are cached does no
//! I/O and no allocation for the key lookup").
//!
//! Counted with dhat's heap profiler in testing mode; one test per binary,
//! since the profiler is process-wide.

use std::sync::Arc;

use jwt_core::{Algorithm, Jwks, ManualClock, Signer, SigningKey, Validation};
use jwt_keys::{KeySource, MultiIssuerVerifier, Verifier};
use serde::Deserialize;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const T0: i64 = 1_700_000_000;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Claims {
    iss: String,
    exp: i64,
    iat: i64,
}

fn blocks_for(rounds: usize, mut f: impl FnMut()) -> u64 {
    let before = dhat::HeapStats::get().total_blocks;
    for _ in 0..rounds {
        f();
    }
    dhat::HeapStats::get().total_blocks - before
}

#[test]
fn verify_cached_through_three_issuers_allocates_nothing_beyond_the_core_verifier() {
    let _profiler = dhat::Profiler::builder().testing().build();

    let clock = Arc::new(ManualClock::new(T0));
    let issuers = [
        "https://login.example.com/tenant-a/v2.0",
        "https://idp.example.org/",
        "https://auth.example.net",
    ];
    let mut builder = MultiIssuerVerifier::builder().clock(clock.clone());
    let mut signers = Vec::new();
    let mut core = Vec::new();
    for (i, issuer) in issuers.iter().enumerate() {
        let key = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid(format!("{i}-key"));
        let mut jwk = key.to_public_jwk().unwrap();
        jwk.alg = Some("ES256".into());
        let jwks = Jwks { keys: vec![jwk] };
        let validation = Validation::new([Algorithm::ES256])
            .issuer(*issuer)
            .clock(clock.clone());
        builder = builder.verifier(
            *issuer,
            Verifier::builder(KeySource::Jwks(jwks.clone()), validation.clone())
                .clock(clock.clone())
                .build()
                .unwrap(),
        );
        core.push(
            jwt_core::Verifier::with_key_set(jwt_core::KeySet::from_jwks(&jwks), validation)
                .unwrap(),
        );
        signers.push(Signer::new(key, Algorithm::ES256).unwrap());
    }
    let multi = builder.build().unwrap();
    // A token of the last issuer: the lookup compares it with every other.
    let token = signers[2]
        .sign(&serde_json::json!({"iss": issuers[2], "sub": "alice", "iat": T0, "exp": T0 + 600}))
        .unwrap();

    // Warm both (header memo, lazily parsed keys).
    for _ in 0..3 {
        multi.verify_cached::<Claims>(&token).unwrap();
        core[2].verify::<Claims>(&token).unwrap();
    }
    const ROUNDS: usize = 200;
    let through_issuers = blocks_for(ROUNDS, || {
        multi.verify_cached::<Claims>(&token).unwrap();
    });
    let direct = blocks_for(ROUNDS, || {
        core[2].verify::<Claims>(&token).unwrap();
    });
    assert_eq!(
        through_issuers, direct,
        "verify_cached made {through_issuers} allocations in {ROUNDS} verifications through \
         three issuers, jwt-core's Verifier {direct}"
    );
}
