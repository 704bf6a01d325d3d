//! The verified-token cache against verifying every time, in **alternating**
//! rounds (as `jwt-core`'s `versus` bench): each round times one batch of
//! each contender back to back, in rotating order, and takes the ratios
//! within the round; the table shows the median over the rounds and the
//! spread (lowest–highest round).
//!
//! - `uncached`: a verifier without a token cache, over fresh tokens;
//! - `miss`: a verifier with the default token cache, each call a token it
//!   has never seen (so every call verifies, then inserts; once the cache is
//!   full, every insert also evicts): the cost the cache adds;
//! - `hit`: the same cached verifier over one token presented again and
//!   again (a client calling an API with its access token).
//!
//! Every call deserializes the claims into a struct, as a resource server
//! does. `cargo bench -p jwt-keys --bench token_cache` (~1 minute);
//! `JWTKIT_BENCH_ROUNDS` sets the number of rounds (default 31) and
//! `JWTKIT_BENCH_ALGS` the algorithms (default ES256,RS256,EdDSA,HS256).

mod rounds;

use rounds::{fmt, median, per_call, spread};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, KeySet, Signer, SigningKey, Validation};
use jwt_keys::{KeySource, TokenCacheOptions, Verifier};
use serde::Deserialize;

/// How long one batch of one contender runs.
const BATCH: Duration = Duration::from_millis(20);

/// The claims a resource server reads from an access token.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Access {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    jti: String,
    scope: String,
}

fn claims(i: usize) -> serde_json::Value {
    serde_json::json!({
        "iss": "https://auth.example.com",
        "sub": format!("user-{i}"),
        "aud": "api",
        "exp": 4_000_000_000u64,
        "iat": 1_700_000_000u64,
        "jti": format!("jti-{i:016}"),
        "scope": "read write",
    })
}

fn verifier(alg: Algorithm, key: &SigningKey, cache: bool) -> Verifier {
    let mut set = KeySet::new();
    set.insert(key.verifying_key()).expect("key");
    let validation = Validation::new([alg])
        .issuer("https://auth.example.com")
        .audience("api");
    let mut builder = Verifier::builder(KeySource::KeySet(Arc::new(set)), validation);
    if cache {
        builder = builder.token_cache(TokenCacheOptions::default());
    }
    builder.build().expect("verifier")
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too,
    // which only needs to prove it works: one short round.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds: usize = if quick {
        1
    } else {
        std::env::var("JWTKIT_BENCH_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(31)
    };
    let algs: Vec<Algorithm> = std::env::var("JWTKIT_BENCH_ALGS")
        .ok()
        .map(|s| s.split(',').filter_map(|a| a.trim().parse().ok()).collect())
        .unwrap_or_else(|| {
            vec![
                Algorithm::ES256,
                Algorithm::RS256,
                Algorithm::EdDSA,
                Algorithm::HS256,
            ]
        });
    println!(
        "| alg | uncached | miss | hit | miss / uncached (spread) | hit / uncached (spread) |"
    );
    println!("|---|---|---|---|---|---|");
    for alg in algs {
        let key = SigningKey::generate(alg).expect("key");
        let uncached = verifier(alg, &key, false);
        let cached = verifier(alg, &key, true);
        let signer = Signer::new(key, alg).expect("signer");

        // Calibrate on the uncached verifier: calls per batch.
        let probe = signer.sign(&claims(0)).expect("token");
        let once = per_call(64, &mut || {
            black_box(uncached.verify_cached::<Access>(&probe).expect("verifies"));
        });
        let iters = ((BATCH.as_nanos() as f64 / once) as usize).clamp(16, 200_000);
        // One fresh token per miss, never repeated; the uncached verifier
        // goes through the same tokens.
        let pool_len = iters * rounds + 1;
        let pool: Vec<String> = (0..pool_len)
            .map(|i| signer.sign(&claims(i + 1)).expect("token"))
            .collect();
        let hot = signer.sign(&claims(0)).expect("token");
        cached.verify_cached::<Access>(&hot).expect("verifies");

        let (mut next_miss, mut next_plain) = (0usize, 0usize);
        let mut ns: [Vec<f64>; 3] = Default::default();
        let (mut miss_ratio, mut hit_ratio) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let mut t = [0.0; 3];
            for k in 0..3 {
                let which = (round + k) % 3;
                t[which] = match which {
                    0 => per_call(iters as u64, &mut || {
                        let token = &pool[next_plain % pool_len];
                        next_plain += 1;
                        black_box(uncached.verify_cached::<Access>(token).expect("verifies"));
                    }),
                    1 => per_call(iters as u64, &mut || {
                        let token = &pool[next_miss % pool_len];
                        next_miss += 1;
                        black_box(cached.verify_cached::<Access>(token).expect("verifies"));
                    }),
                    _ => per_call(iters as u64, &mut || {
                        black_box(cached.verify_cached::<Access>(&hot).expect("verifies"));
                    }),
                };
            }
            for i in 0..3 {
                ns[i].push(t[i]);
            }
            miss_ratio.push(t[1] / t[0]);
            hit_ratio.push(t[2] / t[0]);
        }
        let stats = cached.token_cache_stats().expect("cache");
        // Every `miss` call was a miss (fresh tokens); the `hit` calls hit
        // (but for the rare eviction of the hot token itself).
        assert!(stats.misses as usize > iters * rounds, "{stats:?}");
        assert!(stats.hits as usize >= iters * rounds - 2, "{stats:?}");
        let (mlo, mhi) = spread(&miss_ratio);
        let (hlo, hhi) = spread(&hit_ratio);
        println!(
            "| {alg} | {} | {} | {} | {:.3} ({mlo:.3}–{mhi:.3}) | {:.4} ({hlo:.4}–{hhi:.4}) |",
            fmt(median(&mut ns[0])),
            fmt(median(&mut ns[1])),
            fmt(median(&mut ns[2])),
            median(&mut miss_ratio),
            median(&mut hit_ratio),
        );
    }
}
