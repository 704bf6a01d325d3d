//! HS256 verify against the bare HMAC, in alternating rounds: each round
//! times a batch of `Verifier::verify::<SampleClaims>` (signature plus five
//! claims into a struct) and then a batch of the bare aws-lc-rs HMAC verify
//! over the same signing input, so a noisy neighbour slows both alike.
//! Prints each round's ratio, then the median and the spread.
//!
//! ```sh
//! cargo run --release -p jwt-core --features bench --example hs256_ratio -- 31
//! ```

use std::hint::black_box;
use std::time::Instant;

use jwt_core::speed::{sample_validation, Floor, SampleClaims};
use jwt_core::{Algorithm, Signer, SigningKey, Verifier};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    let key = SigningKey::hmac(&[0x5a_u8; 64]).expect("key");
    let floor = Floor::new(Algorithm::HS256, &key).expect("floor");
    let verifier =
        Verifier::new(key.verifying_key(), sample_validation(Algorithm::HS256)).expect("verifier");
    let token = Signer::new(key, Algorithm::HS256)
        .expect("signer")
        .sign(&SampleClaims::default())
        .expect("token");
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    let sig = jwt_core::b64::decode(sig.as_bytes(), "sig").expect("b64");
    assert!(floor.verify(input.as_bytes(), &sig));
    verifier.verify::<SampleClaims>(&token).expect("valid");

    let n = 20_000;
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };
    let full = || {
        black_box(verifier.verify::<SampleClaims>(black_box(&token)).ok());
    };
    let bare = || {
        black_box(floor.verify(black_box(input.as_bytes()), black_box(&sig)));
    };
    // Warm up both.
    time(&full);
    time(&bare);
    let mut ratios = Vec::with_capacity(rounds);
    let (mut fulls, mut bares) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let a = time(&full);
        let b = time(&bare);
        fulls.push(a);
        bares.push(b);
        ratios.push(a / b);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (lo, hi) = {
        let mut r = ratios.clone();
        r.sort_by(f64::total_cmp);
        (r[r.len() / 4], r[3 * r.len() / 4])
    };
    let m = median(&mut ratios);
    println!(
        "HS256 verify {:.0} ns, bare HMAC {:.0} ns (medians); ratio median {m:.2}, \
         interquartile {lo:.2}-{hi:.2}, min {:.2}, max {:.2} over {rounds} rounds",
        median(&mut fulls),
        median(&mut bares),
        ratios[0],
        ratios[rounds - 1]
    );
}
