//! `Verifier::verify_cached` adds no heap allocation to a verification: the
//! key lookup through the cache (snapshot, kid, algorithm rule) allocates
//! nothing, so a cached verification allocates exactly what jwt-core's own
//! `Verifier` does for the same token (issue 12: "the sync `verify_cached`
//! path does no allocation for the key lookup").
//!
//! Counted with dhat's heap profiler in testing mode; one test per binary,
//! since the profiler is process-wide.

use std::sync::Arc;

use jwt_core::{Algorithm, Jwks, ManualClock, Signer, SigningKey, Validation};
use jwt_keys::{KeySource, Verifier};
use serde::Deserialize;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const T0: i64 = 1_700_000_000;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Claims {
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
fn verify_cached_allocates_nothing_beyond_the_core_verifier() {
    let _profiler = dhat::Profiler::builder().testing().build();

    let clock = Arc::new(ManualClock::new(T0));
    let keys: Vec<SigningKey> = (0..3)
        .map(|i| {
            SigningKey::generate(Algorithm::ES256)
                .unwrap()
                .with_kid(format!("key-{i}"))
        })
        .collect();
    let jwks = Jwks {
        keys: keys
            .iter()
            .map(|k| {
                let mut jwk = k.to_public_jwk().unwrap();
                jwk.alg = Some("ES256".into());
                jwk
            })
            .collect(),
    };
    let validation = Validation::new([Algorithm::ES256]).clock(clock.clone());
    let cached = Verifier::builder(KeySource::Jwks(jwks.clone()), validation.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let core =
        jwt_core::Verifier::with_key_set(jwt_core::KeySet::from_jwks(&jwks), validation).unwrap();
    let signer = Signer::new(
        SigningKey::from_pem(keys[1].to_pkcs8_pem().unwrap().as_bytes())
            .unwrap()
            .with_kid("key-1"),
        Algorithm::ES256,
    )
    .unwrap();
    let token = signer
        .sign(&serde_json::json!({"iat": T0, "exp": T0 + 600}))
        .unwrap();

    // Warm both (header memo, lazily parsed keys).
    for _ in 0..3 {
        cached.verify_cached::<Claims>(&token).unwrap();
        core.verify::<Claims>(&token).unwrap();
    }
    const ROUNDS: usize = 200;
    let through_cache = blocks_for(ROUNDS, || {
        cached.verify_cached::<Claims>(&token).unwrap();
    });
    let direct = blocks_for(ROUNDS, || {
        core.verify::<Claims>(&token).unwrap();
    });
    assert_eq!(
        through_cache, direct,
        "verify_cached made {through_cache} allocations in {ROUNDS} verifications, \
         jwt-core's Verifier {direct}"
    );
}
