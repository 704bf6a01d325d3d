//! A multi-issuer verifier against a single-issuer one, with the issuer and
//! the key cached, in **alternating** rounds (as `token_cache` and
//! jwt-core's `versus`): each round times one batch of each contender back
//! to back, in rotating order, and takes the ratios within the round; the
//! table shows the median over the rounds and the spread (lowest–highest
//! round). Then criterion measures the same three calls on their own, for
//! its absolute figures and confidence intervals.
//!
//! - `verifier`: a `jwt_keys::Verifier` following one issuer's JWKS (what
//!   verifying one provider's tokens cost before issue 14);
//! - `one`: a `MultiIssuerVerifier` with that issuer only;
//! - `three`: a `MultiIssuerVerifier` with three issuers, the token's
//!   configured last (its `iss` is compared with the two others first).
//!
//! The issuers are real: three providers played by an HTTP server on
//! 127.0.0.1, found by discovery, their keys loaded before timing. Every
//! call is `verify_cached` and deserializes the claims into a struct, as a
//! resource server does. `cargo bench -p jwt-keys --bench issuers` (~1
//! minute); `JWTKIT_BENCH_ROUNDS` sets the number of rounds (default 31),
//! `JWTKIT_BENCH_ALGS` the algorithms (default ES256,RS256,EdDSA).

#[path = "../tests/issuer_server/mod.rs"]
mod issuer_server;

mod rounds;

use rounds::{fmt, median, per_call, spread};
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use issuer_server::{jwks, metadata, Answer, IssuerServer, Key};
use jwt_core::{Algorithm, Validation};
use jwt_keys::{AlgorithmRule, Issuer, KeySource, MultiIssuerVerifier, Verifier};
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

/// The three verifiers, loaded, and a token of the last issuer.
struct Setup {
    verifier: Verifier,
    one: MultiIssuerVerifier,
    three: MultiIssuerVerifier,
    token: String,
}

fn setup(runtime: &tokio::runtime::Runtime, server: &IssuerServer, alg: Algorithm) -> Setup {
    let names = ["/tenant-a/v2.0", "/idp", "/auth"];
    let keys: Vec<Key> = names
        .iter()
        .enumerate()
        .map(|(i, _)| Key::new(alg, &format!("{alg}-{i}")))
        .collect();
    let mut issuers = Vec::new();
    for (name, key) in names.iter().zip(&keys) {
        let issuer = format!("{}/{alg}{name}", server.base);
        let path = format!("/{alg}{name}");
        server.set(
            &format!("{path}/.well-known/openid-configuration"),
            Answer::json_max_age(
                metadata(&issuer, &format!("{issuer}/jwks"), Some(&[alg.as_str()])),
                86_400,
            ),
        );
        server.set(
            &format!("{path}/jwks"),
            Answer::json_max_age(jwks(&[key]), 86_400),
        );
        issuers.push(issuer);
    }
    let last = &issuers[2];
    let now = jwt_core::time::now_unix();
    let token = keys[2].sign(serde_json::json!({
        "iss": last,
        "sub": "user-1",
        "aud": "api",
        "exp": now + 86_400,
        "iat": now,
        "jti": "jti-0000000000000001",
        "scope": "read write",
    }));
    let issuer = |iss: &str| Issuer::discover(iss).audience("api");
    let three = MultiIssuerVerifier::builder()
        .issuer(issuer(&issuers[0]))
        .issuer(issuer(&issuers[1]))
        .issuer(issuer(&issuers[2]))
        .build()
        .expect("three issuers");
    let one = MultiIssuerVerifier::builder()
        .issuer(issuer(last))
        .build()
        .expect("one issuer");
    let verifier = Verifier::builder(
        KeySource::Remote(format!("{last}/jwks")),
        Validation::new([alg]).issuer(last.as_str()).audience("api"),
    )
    .algorithms(AlgorithmRule::KeysOnly)
    .build()
    .expect("verifier");
    runtime.block_on(async {
        three.refresh().await.expect("load three");
        one.refresh().await.expect("load one");
        verifier.refresh().await.expect("load verifier");
    });
    for check in [
        verifier.verify_cached::<Access>(&token).map(|_| ()),
        one.verify_cached::<Access>(&token).map(|_| ()),
        three.verify_cached::<Access>(&token).map(|_| ()),
    ] {
        check.expect("the token verifies");
    }
    Setup {
        verifier,
        one,
        three,
        token,
    }
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
        .unwrap_or_else(|| vec![Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(IssuerServer::start());
    let setups: Vec<(Algorithm, Setup)> = algs
        .iter()
        .map(|&alg| (alg, setup(&runtime, &server, alg)))
        .collect();

    println!(
        "| alg | verifier | one issuer | three issuers | three / verifier (spread) | three / one (spread) |"
    );
    println!("|---|---|---|---|---|---|");
    for (alg, s) in &setups {
        let token = s.token.as_str();
        let mut contenders: [Box<dyn FnMut()>; 3] = [
            Box::new(|| {
                black_box(
                    s.verifier
                        .verify_cached::<Access>(black_box(token))
                        .expect("verifies"),
                );
            }),
            Box::new(|| {
                black_box(
                    s.one
                        .verify_cached::<Access>(black_box(token))
                        .expect("verifies"),
                );
            }),
            Box::new(|| {
                black_box(
                    s.three
                        .verify_cached::<Access>(black_box(token))
                        .expect("verifies"),
                );
            }),
        ];
        let once = per_call(64, &mut *contenders[0]);
        let iters = ((BATCH.as_nanos() as f64 / once) as u64).clamp(16, 200_000);
        let mut ns: [Vec<f64>; 3] = Default::default();
        let (mut vs_verifier, mut vs_one) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let mut t = [0.0; 3];
            for k in 0..3 {
                let which = (round + k) % 3;
                t[which] = per_call(iters, &mut *contenders[which]);
            }
            for i in 0..3 {
                ns[i].push(t[i]);
            }
            vs_verifier.push(t[2] / t[0]);
            vs_one.push(t[2] / t[1]);
        }
        let (vlo, vhi) = spread(&vs_verifier);
        let (olo, ohi) = spread(&vs_one);
        println!(
            "| {alg} | {} | {} | {} | {:.3} ({vlo:.3}–{vhi:.3}) | {:.3} ({olo:.3}–{ohi:.3}) |",
            fmt(median(&mut ns[0])),
            fmt(median(&mut ns[1])),
            fmt(median(&mut ns[2])),
            median(&mut vs_verifier),
            median(&mut vs_one),
        );
    }

    // Criterion's own measurement of each call, one after the other.
    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (alg, s) in &setups {
        let token = s.token.as_str();
        let mut group = criterion.benchmark_group(format!("issuers/{alg}"));
        group.bench_function("verifier", |b| {
            b.iter(|| {
                s.verifier
                    .verify_cached::<Access>(black_box(token))
                    .expect("verifies")
            })
        });
        group.bench_function("one", |b| {
            b.iter(|| {
                s.one
                    .verify_cached::<Access>(black_box(token))
                    .expect("verifies")
            })
        });
        group.bench_function("three", |b| {
            b.iter(|| {
                s.three
                    .verify_cached::<Access>(black_box(token))
                    .expect("verifies")
            })
        });
        group.finish();
    }
    criterion.final_summary();
    drop(server);
}
