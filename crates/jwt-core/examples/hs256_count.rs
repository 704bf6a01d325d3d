//! A fixed loop of HS256 verifications for instruction counting:
//!
//! ```sh
//! cargo build --release -p jwt-core --example hs256_count
//! valgrind --tool=callgrind target/release/examples/hs256_count jwtkit 20000
//! valgrind --tool=callgrind target/release/examples/hs256_count jsonwebtoken 20000
//! valgrind --tool=callgrind target/release/examples/hs256_count hmac 20000
//! ```
//!
//! Each run does the same setup; subtract a run with `0` iterations to get
//! the per-verification count. `scripts/count-hs256.sh` does all of that.

use std::hint::black_box;

use jwt_core::speed::{sample_validation, SampleClaims};
use jwt_core::{Algorithm, Signer, SigningKey, Verifier};

#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "jwtkit".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let secret = [0x5a_u8; 64];
    let claims = SampleClaims::default();
    let key = SigningKey::hmac(&secret).expect("key");
    let verifier =
        Verifier::new(key.verifying_key(), sample_validation(Algorithm::HS256)).expect("verifier");
    let token = Signer::new(key, Algorithm::HS256)
        .expect("signer")
        .sign(&claims)
        .expect("token");
    match which.as_str() {
        "jwtkit" => {
            for _ in 0..n {
                let d = verifier
                    .verify::<SampleClaims>(black_box(&token))
                    .expect("valid");
                black_box(d);
            }
        }
        "jsonwebtoken" => {
            let dec = jsonwebtoken::DecodingKey::from_secret(&secret);
            let v = common::jsonwebtoken_validation(jsonwebtoken::Algorithm::HS256);
            for _ in 0..n {
                let d = jsonwebtoken::decode::<SampleClaims>(black_box(&token), &dec, &v)
                    .expect("valid");
                black_box(d);
            }
        }
        "hmac" => {
            let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
            let (input, sig) = token.rsplit_once('.').expect("three parts");
            let sig = jwt_core::b64::decode(sig.as_bytes(), "sig").expect("b64");
            for _ in 0..n {
                aws_lc_rs::hmac::verify(&k, black_box(input.as_bytes()), black_box(&sig))
                    .expect("valid");
            }
        }
        other => {
            eprintln!("unknown target {other:?}: use jwtkit, jsonwebtoken or hmac");
            std::process::exit(2);
        }
    }
}
