//! Ratios that survive a noisy machine: jwt-core against `jsonwebtoken` and
//! against the bare aws-lc-rs primitive, measured in **alternating** rounds.
//!
//! Criterion (`benches/sign_verify.rs`) measures each function for seconds
//! before the next, so load that comes and goes on a shared machine lands
//! on one side of a ratio. Here every round times one batch of each
//! contender back to back (in rotating order) and takes the ratio within
//! the round; the table shows the median over the rounds.
//!
//! `cargo bench -p jwt-core --bench versus` (all algorithms `jsonwebtoken`
//! has, ~1 minute), or `JWTKIT_BENCH_ALGS=HS256,ES256 cargo bench …`.
//! `JWTKIT_BENCH_ROUNDS` sets the number of rounds (default 31).

use std::hint::black_box;
use std::time::{Duration, Instant};

use jwt_core::speed::{sample_validation, Floor, SampleClaims};
use jwt_core::{Algorithm, Signer, SigningKey, Verifier};

mod common;
use common::{jsonwebtoken_alg, jsonwebtoken_keys, jsonwebtoken_validation};

/// How long one batch of one contender runs.
const BATCH: Duration = Duration::from_millis(20);

fn median(values: &mut [f64]) -> f64 {
    quantile(values, 0.5)
}

/// The `q` quantile (nearest rank) of `values`.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

/// A ratio's median and interquartile range over the rounds.
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    q1: f64,
    q3: f64,
}

impl Spread {
    fn of(values: &mut [f64]) -> Spread {
        Spread {
            median: quantile(values, 0.5),
            q1: quantile(values, 0.25),
            q3: quantile(values, 0.75),
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} ({:.2}–{:.2})", self.median, self.q1, self.q3)
    }
}

/// What [`compare`] measured: medians in ns, and the ratios' spreads.
struct Measured {
    ns: [f64; 3],
    vs_primitive: Spread,
    vs_jsonwebtoken: Spread,
}

/// Times `f` over `iters` calls, in nanoseconds per call.
fn per_call(iters: u64, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// Medians over `rounds` of jwtkit, primitive and jsonwebtoken ns, and the
/// spreads of jwtkit/primitive and jwtkit/jsonwebtoken, the ratios taken
/// per round.
fn compare(rounds: usize, contenders: &mut [&mut dyn FnMut(); 3]) -> Measured {
    // Calibrate each contender's batch to about `BATCH`.
    let iters: Vec<u64> = contenders
        .iter_mut()
        .map(|f| {
            let mut n = 1u64;
            loop {
                let t = per_call(n, *f) * n as f64;
                if t >= 2e6 || n >= 1 << 24 {
                    return ((BATCH.as_nanos() as f64 / (t / n as f64)) as u64).max(1);
                }
                n *= 4;
            }
        })
        .collect();
    let mut ns: [Vec<f64>; 3] = Default::default();
    let (mut vs_prim, mut vs_jwt) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut t = [0.0; 3];
        for k in 0..3 {
            let i = (round + k) % 3;
            t[i] = per_call(iters[i], contenders[i]);
        }
        for i in 0..3 {
            ns[i].push(t[i]);
        }
        vs_prim.push(t[0] / t[1]);
        vs_jwt.push(t[0] / t[2]);
    }
    Measured {
        ns: [median(&mut ns[0]), median(&mut ns[1]), median(&mut ns[2])],
        vs_primitive: Spread::of(&mut vs_prim),
        vs_jsonwebtoken: Spread::of(&mut vs_jwt),
    }
}

fn fmt(ns: f64) -> String {
    if ns >= 1000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
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
    let only: Option<Vec<Algorithm>> = std::env::var("JWTKIT_BENCH_ALGS")
        .ok()
        .map(|s| s.split(',').filter_map(|a| a.trim().parse().ok()).collect());
    println!("| alg | op | jwtkit | primitive | jsonwebtoken | jwtkit / primitive | jwtkit / jsonwebtoken |");
    println!("|---|---|---|---|---|---|---|");
    for alg in Algorithm::ALL {
        if only.as_ref().is_some_and(|o| !o.contains(&alg)) {
            continue;
        }
        let Some(j) = jsonwebtoken_alg(alg) else {
            continue;
        };
        let key = SigningKey::generate(alg).expect("key");
        let floor = Floor::new(alg, &key).expect("primitive");
        let (enc, dec) = jsonwebtoken_keys(alg, &key);
        let verifier =
            Verifier::new(key.verifying_key(), sample_validation(alg)).expect("verifier");
        let signer = Signer::new(key, alg).expect("signer");
        let claims = SampleClaims::default();
        let token = signer.sign(&claims).expect("token");
        let (input, sig_b64) = token.rsplit_once('.').expect("three parts");
        let sig = jwt_core::b64::decode(sig_b64.as_bytes(), "sig").expect("signature");
        let header = jsonwebtoken::Header::new(j);
        let v = jsonwebtoken_validation(j);
        // Both libraries must accept the token, or the comparison means nothing.
        jsonwebtoken::decode::<SampleClaims>(&token, &dec, &v).expect("jsonwebtoken verifies");

        let sign = compare(
            rounds,
            &mut [
                &mut || {
                    black_box(signer.sign(black_box(&claims)).expect("sign"));
                },
                &mut || {
                    black_box(floor.sign(black_box(input.as_bytes())).expect("sign"));
                },
                &mut || {
                    black_box(
                        jsonwebtoken::encode(&header, black_box(&claims), &enc).expect("sign"),
                    );
                },
            ],
        );
        let verify = compare(
            rounds,
            &mut [
                &mut || {
                    black_box(
                        verifier
                            .verify::<SampleClaims>(black_box(&token))
                            .expect("verify"),
                    );
                },
                &mut || {
                    assert!(floor.verify(black_box(input.as_bytes()), black_box(&sig)));
                },
                &mut || {
                    black_box(
                        jsonwebtoken::decode::<SampleClaims>(black_box(&token), &dec, &v)
                            .expect("verify"),
                    );
                },
            ],
        );
        for (op, m) in [("sign", sign), ("verify", verify)] {
            println!(
                "| {alg} | {op} | {} | {} | {} | {} | {} |",
                fmt(m.ns[0]),
                fmt(m.ns[1]),
                fmt(m.ns[2]),
                m.vs_primitive,
                m.vs_jsonwebtoken
            );
        }
    }
    if !quick {
        println!(
            "\n(medians of {rounds} alternating rounds of ~{} ms per contender; \
             ratios taken per round, interquartile range in brackets)",
            BATCH.as_millis()
        );
    }
}
