//! The PKCS#11 store (on SoftHSM2) against the in-process file store:
//! 1,000 signed tokens (`sign_token`) from 32 tasks at once, in
//! **alternating** rounds (as the `token_cache` bench): each round times one
//! batch of each store back to back, in alternating order, and takes the
//! ratio within the round; the table shows the median over the rounds and
//! the spread (lowest–highest round).
//!
//! SoftHSM is software, so this measures what the PKCS#11 path adds — the
//! binding, the session pool, the blocking threads and the token's own
//! locking — not an HSM's speed. Every signature is also verified by the
//! store before it is handed out, as in production.
//!
//! `cargo bench -p jwt-keys --features pkcs11 --bench pkcs11` (about a
//! minute), with SoftHSM2 from `scripts/services.sh` (`. .services/env.sh`);
//! `JWTKIT_BENCH_ROUNDS` sets the rounds (default 15), `JWTKIT_BENCH_ALGS`
//! the algorithms (default ES256,EdDSA,RS256), `JWTKIT_BENCH_SESSIONS` the
//! store's `max_sessions` (default 8).

mod rounds;

use rounds::{median, spread};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_core::Algorithm;
use jwt_keys::pkcs11::{Pin, Pkcs11KeyStore};
use jwt_keys::{FileKeyStore, KeyStore, KeyStoreExt, RotationPolicy};

const SIGNATURES: usize = 1_000;
const TASKS: usize = 32;
const PIN: &str = "bench-4711";

/// 1,000 tokens from 32 tasks; the time it took.
async fn batch(store: &Arc<dyn KeyStore>) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            let n = SIGNATURES / TASKS + usize::from(t < SIGNATURES % TASKS);
            tokio::spawn(async move {
                for i in 0..n {
                    let claims = serde_json::json!({
                        "iss": "https://auth.example.com",
                        "sub": format!("user-{t}-{i}"),
                        "aud": "api",
                        "exp": 4_000_000_000u64,
                    });
                    store.sign_token(&claims, None).await.expect("signs");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    started.elapsed()
}

/// A fresh SoftHSM2 token for the bench, made before the module is loaded
/// (SoftHSM reads its tokens when it is initialized).
fn token(util: &str) -> String {
    let label = "jwtkit-bench".to_owned();
    let _ = Command::new(util)
        .args(["--delete-token", "--token", &label])
        .output();
    let out = Command::new(util)
        .args([
            "--init-token",
            "--free",
            "--label",
            &label,
            "--pin",
            PIN,
            "--so-pin",
            "bench-so",
        ])
        .output()
        .expect("run softhsm2-util");
    assert!(
        out.status.success(),
        "softhsm2-util --init-token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    label
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too,
    // which only needs to prove it works: one round, one algorithm.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds: usize = if quick {
        1
    } else {
        std::env::var("JWTKIT_BENCH_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15)
    };
    let algs: Vec<Algorithm> = match std::env::var("JWTKIT_BENCH_ALGS") {
        Ok(s) => s.split(',').filter_map(|a| a.trim().parse().ok()).collect(),
        Err(_) if quick => vec![Algorithm::ES256],
        Err(_) => vec![Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256],
    };
    let sessions: usize = std::env::var("JWTKIT_BENCH_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let Some(module) = jwtkit_test_support::service(
        "JWTKIT_TEST_PKCS11_MODULE",
        "SoftHSM2 (the PKCS#11 module libsofthsm2.so)",
    ) else {
        return;
    };
    let Some(util) = jwtkit_test_support::service("JWTKIT_TEST_SOFTHSM_UTIL", "softhsm2-util")
    else {
        return;
    };
    if jwtkit_test_support::service("SOFTHSM2_CONF", "SoftHSM2's configuration").is_none() {
        return;
    }
    let label = token(&util);
    let dir = tempfile::tempdir().expect("temporary directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{SIGNATURES} signed tokens from {TASKS} tasks, {rounds} alternating rounds, {cores} cores, max_sessions {sessions}\n"
    );
    println!("| alg | file store (tokens/s) | PKCS#11 on SoftHSM2 (tokens/s) | PKCS#11 / file (spread) | per token, PKCS#11 |");
    println!("|---|---|---|---|---|");
    runtime.block_on(async {
        for alg in algs {
            let policy = RotationPolicy::default();
            let file: Arc<dyn KeyStore> =
                Arc::new(FileKeyStore::open(dir.path().join(alg.as_str())));
            file.init(alg, &policy).await.expect("file store init");
            let hsm =
                Pkcs11KeyStore::builder(PathBuf::from(&module), &label, format!("bench-{alg}"))
                    .pin(Pin::new(PIN))
                    .max_sessions(sessions)
                    .build()
                    .expect("pkcs11 store");
            hsm.init(alg, &policy).await.expect("pkcs11 store init");
            let hsm: Arc<dyn KeyStore> = Arc::new(hsm);
            // Warm up both: sessions opened, keys cached.
            batch(&file).await;
            batch(&hsm).await;
            let (mut f, mut p, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                let (tf, tp) = if round % 2 == 0 {
                    let tf = batch(&file).await;
                    (tf, batch(&hsm).await)
                } else {
                    let tp = batch(&hsm).await;
                    (batch(&file).await, tp)
                };
                let (rf, rp) = (
                    SIGNATURES as f64 / tf.as_secs_f64(),
                    SIGNATURES as f64 / tp.as_secs_f64(),
                );
                f.push(rf);
                p.push(rp);
                ratio.push(rp / rf);
            }
            let (lo, hi) = spread(&ratio);
            let pm = median(&mut p);
            println!(
                "| {alg} | {:.0} | {pm:.0} | {:.2} ({lo:.2}–{hi:.2}) | {:.0} µs |",
                median(&mut f),
                median(&mut ratio),
                1e6 / pm,
            );
        }
    });
}
