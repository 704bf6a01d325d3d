//! Sign and verify per algorithm: jwt-core's public path next to the bare
//! aws-lc-rs primitive with a pre-parsed key (the floor) and next to
//! `jsonwebtoken` (aws-lc-rs backend), all in one run.
//!
//! `cargo bench -p jwt-core --bench sign_verify`; figures in docs/performance.md.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jwt_core::speed::{sample_validation, SampleClaims};
use jwt_core::{Algorithm, Signer, SigningKey, Verifier};

mod common;
use common::{jsonwebtoken_alg, jsonwebtoken_keys, jsonwebtoken_validation};

type Claims = SampleClaims;

fn claims() -> Claims {
    SampleClaims::default()
}

fn bench(c: &mut Criterion) {
    let only: Option<Vec<Algorithm>> = std::env::var("JWTKIT_BENCH_ALGS")
        .ok()
        .map(|s| s.split(',').filter_map(|a| a.trim().parse().ok()).collect());
    for alg in Algorithm::ALL {
        if only.as_ref().is_some_and(|o| !o.contains(&alg)) {
            continue;
        }
        let key = SigningKey::generate(alg).unwrap();
        let prim = jwt_core::speed::Floor::new(alg, &key).unwrap();
        let jwt_keys = jsonwebtoken_alg(alg).map(|j| (j, jsonwebtoken_keys(alg, &key)));
        let validation = sample_validation(alg);
        let verifier = Verifier::new(key.verifying_key(), validation).unwrap();
        let signer = Signer::new(key, alg).unwrap();
        let token = signer.sign(&claims()).unwrap();
        let (input, sig_b64) = token.rsplit_once('.').unwrap();
        let sig_bytes = jwt_core::b64::decode(sig_b64.as_bytes(), "sig").unwrap();

        let mut g = c.benchmark_group(format!("sign/{alg}"));
        g.bench_function("jwtkit", |b| {
            b.iter(|| signer.sign(black_box(&claims())).unwrap())
        });
        g.bench_function("primitive", |b| {
            b.iter(|| prim.sign(black_box(input.as_bytes())).unwrap())
        });
        if let Some((j, (enc, _))) = &jwt_keys {
            let header = jsonwebtoken::Header::new(*j);
            g.bench_function("jsonwebtoken", |b| {
                b.iter(|| jsonwebtoken::encode(&header, black_box(&claims()), enc).unwrap())
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("verify/{alg}"));
        g.bench_function("jwtkit", |b| {
            b.iter(|| verifier.verify::<Claims>(black_box(&token)).unwrap())
        });
        g.bench_function("primitive", |b| {
            b.iter(|| assert!(prim.verify(black_box(input.as_bytes()), black_box(&sig_bytes))))
        });
        if let Some((j, (_, dec))) = &jwt_keys {
            let v = jsonwebtoken_validation(*j);
            g.bench_function("jsonwebtoken", |b| {
                b.iter(|| jsonwebtoken::decode::<Claims>(black_box(&token), dec, &v).unwrap())
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
