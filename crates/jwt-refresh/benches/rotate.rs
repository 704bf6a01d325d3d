//! Rotation throughput on a real Redis at fixed concurrency.
//!
//! `scripts/bench-refresh.sh` runs this next to `redis-benchmark` (plain SET/GET at the same
//! concurrency) so the two can be compared. Reads `JWTKIT_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`) and `JWTKIT_BENCH_CONCURRENCY` (default 50); skips with a message
//! when Redis is unreachable. Keys use the prefix `jwtkit-bench:` and expire within two minutes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jwt_refresh::{NewRefresh, RedisRefreshStore, RefreshPolicy, RefreshStore, TokenId};

fn concurrency() -> usize {
    std::env::var("JWTKIT_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(50)
}

/// One sample: `iters` rotations spread over `concurrency` tasks, each rotating its own chain.
async fn sample(store: Arc<RedisRefreshStore>, iters: u64, concurrency: usize) -> Duration {
    let per_task = iters.div_ceil(concurrency as u64);
    let mut firsts = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let r = store
            .issue(NewRefresh::login("bench"))
            .await
            .expect("issue");
        firsts.push(r.jti);
    }
    let started = Instant::now();
    let tasks: Vec<_> = firsts
        .into_iter()
        .map(|first: TokenId| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut current = first;
                for _ in 0..per_task {
                    let outcome = store.rotate(&current).await.expect("rotate");
                    current = outcome.rotated().expect("rotated").jti.clone();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("bench task");
    }
    // Scale to exactly `iters` operations.
    started
        .elapsed()
        .mul_f64(iters as f64 / (per_task * concurrency as u64) as f64)
}

fn rotate(c: &mut Criterion) {
    let url = std::env::var("JWTKIT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let concurrency = concurrency();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Short lifetimes: the bench's keys are gone two minutes after it ends.
    let policy = RefreshPolicy::builder()
        .ttl(Duration::from_secs(60))
        .max_family_lifetime(Duration::from_secs(120))
        .build()
        .expect("policy");
    let store = match rt.block_on(
        RedisRefreshStore::builder()
            .url(url.clone())
            .key_prefix("jwtkit-bench:")
            .policy(policy)
            .connect(),
    ) {
        Ok(store) => Arc::new(store),
        Err(e) => {
            eprintln!("SKIPPED: rotate bench needs Redis at {url}: {e}");
            return;
        }
    };
    let rates = Arc::new(Mutex::new(Vec::new()));
    let mut group = c.benchmark_group("refresh_redis");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(8));
    group.bench_function(format!("rotate/concurrency={concurrency}"), |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = Arc::clone(&store);
            let rates = Arc::clone(&rates);
            async move {
                let elapsed = sample(store, iters, concurrency).await;
                if let Ok(mut r) = rates.lock() {
                    r.push(iters as f64 / elapsed.as_secs_f64());
                }
                elapsed
            }
        })
    });
    group.finish();
    let mut r: Vec<f64> = rates.lock().map(|r| r.clone()).unwrap_or_default();
    r.sort_by(|a, b| a.total_cmp(b));
    if let Some(median) = r.get(r.len() / 2) {
        println!(
            "RESULT rotate_ops_per_sec={median:.0} concurrency={concurrency} samples={}",
            r.len()
        );
    }
}

criterion_group!(benches, rotate);
criterion_main!(benches);
