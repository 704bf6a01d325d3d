//! The replay cache's conformance suite on every backend: memory, a
//! standalone Redis (`JWTKIT_TEST_REDIS_URL`) and the 3-node Redis Cluster
//! (`JWTKIT_TEST_REDIS_CLUSTER`), then what is particular to each.

mod common;

use std::sync::Arc;
use std::time::Duration;

use jwt_refresh::replay::ReplayCache;
use jwt_refresh::{Clock as _, ManualClock};

/// One `#[tokio::test]` per conformance function. `$make` is an
/// `async fn() -> Option<(Arc<dyn ReplayCache>, Arc<ManualClock>)>`,
/// `None` when the backend is not available (never under CI).
macro_rules! replay_conformance {
    ($make:path, expiry_wait = $wait:expr) => {
        use jwt_refresh::replay::conformance;

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn first_use_wins() {
            let Some((cache, clock)) = $make().await else {
                return;
            };
            conformance::first_use_wins(&*cache, &*clock).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn remembered_until_inclusive() {
            let Some((cache, clock)) = $make().await else {
                return;
            };
            conformance::remembered_until_inclusive(&*cache, &clock).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn forgotten_after_until() {
            let Some((cache, clock)) = $make().await else {
                return;
            };
            conformance::forgotten_after_until(&*cache, &clock, $wait).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn input_is_checked() {
            let Some((cache, clock)) = $make().await else {
                return;
            };
            conformance::input_is_checked(&*cache, &*clock).await;
        }

        /// Issue 16: "50 concurrent identical proofs: exactly one accepted".
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn fifty_concurrent_identical_jtis() {
            let Some((cache, clock)) = $make().await else {
                return;
            };
            conformance::concurrent_identical(cache, &*clock, 50).await;
        }
    };
}

mod memory {
    use super::*;
    use jwt_refresh::replay::MemoryReplayCache;
    use jwt_refresh::ErrorKind;

    async fn make() -> Option<(Arc<dyn ReplayCache>, Arc<ManualClock>)> {
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let cache = MemoryReplayCache::new().with_clock(clock.clone());
        Some((Arc::new(cache), clock))
    }

    replay_conformance!(make, expiry_wait = Duration::ZERO);

    #[tokio::test]
    async fn a_full_cache_refuses_with_a_retryable_error_until_entries_expire() {
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let cache = MemoryReplayCache::new()
            .with_clock(clock.clone())
            .with_max_entries(3)
            .unwrap();
        let now = clock.now();
        for (i, until) in [now + 1, now + 5, now + 5].into_iter().enumerate() {
            assert!(cache
                .check_and_store(&format!("j{i}"), until)
                .await
                .unwrap());
        }
        // A replay is still told apart when full…
        assert!(!cache.check_and_store("j0", now + 1).await.unwrap());
        // …but a new identifier cannot be recorded, and is never accepted.
        let err = cache.check_and_store("j3", now + 5).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_retryable());
        let message = err.to_string();
        assert!(message.contains("maximum of 3"), "{message}");
        assert!(message.contains("with_max_entries"), "{message}");
        // Once the first entry's window is over, its room is reused.
        clock.advance(2);
        assert!(cache.check_and_store("j3", now + 5).await.unwrap());
        assert_eq!(cache.len(), 3);
        assert!(cache.check_and_store("j0", now + 5).await.is_err());
        // Everything expires: the cache empties itself as it is used.
        clock.advance(10);
        assert!(cache.check_and_store("j9", clock.now()).await.unwrap());
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn memory_is_bounded_by_the_window_not_by_history() {
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let cache = MemoryReplayCache::new().with_clock(clock.clone());
        // 100 seconds of 50 proofs a second, each remembered 60 s.
        for second in 0..100 {
            for i in 0..50 {
                let jti = format!("{second}-{i}");
                assert!(cache.check_and_store(&jti, clock.now() + 60).await.unwrap());
            }
            clock.advance(1);
        }
        assert!(cache.len() <= 61 * 50, "{} entries", cache.len());
    }

    #[test]
    fn zero_entries_is_refused() {
        let err = MemoryReplayCache::new().with_max_entries(0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }
}

mod redis_standalone {
    use super::*;
    use jwt_refresh::replay::RedisReplayCache;
    use jwt_refresh::RedisRefreshStore;

    async fn connect(prefix: &str) -> Option<(RedisReplayCache, Arc<ManualClock>, String)> {
        let url = jwtkit_test_support::service("JWTKIT_TEST_REDIS_URL", "Redis")?;
        let clock = Arc::new(ManualClock::starting_now());
        let store = RedisRefreshStore::builder()
            .url(url.clone())
            .key_prefix(prefix)
            .clock(clock.clone())
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to the test Redis: {e}"));
        Some((RedisReplayCache::new(&store), clock, url))
    }

    async fn make() -> Option<(Arc<dyn ReplayCache>, Arc<ManualClock>)> {
        let (cache, clock, _) = connect(&common::unique_prefix("replay")).await?;
        Some((Arc::new(cache), clock))
    }

    replay_conformance!(make, expiry_wait = Duration::from_millis(1300));

    #[tokio::test]
    async fn keys_are_hashed_under_the_store_prefix_and_expire_with_the_window() {
        let prefix = common::unique_prefix("replay-layout");
        let Some((cache, clock, url)) = connect(&prefix).await else {
            return;
        };
        let jti = "a {hash tag} and a secret-looking jti";
        assert!(cache.check_and_store(jti, clock.now() + 30).await.unwrap());
        let key = cache.key_of(jti);
        assert!(key.starts_with(&format!("{prefix}dpop:")), "{key}");
        assert!(
            !key.contains("secret"),
            "the jti itself is never a key name: {key}"
        );
        assert_eq!(key.len(), prefix.len() + "dpop:".len() + 43);
        let mut con = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!((29_000..=31_000).contains(&ttl), "PTTL {ttl}");
        // Another prefix is another cache.
        let Some((other, _, _)) = connect(&common::unique_prefix("replay-other")).await else {
            return;
        };
        assert!(other.check_and_store(jti, clock.now() + 30).await.unwrap());
        assert!(!cache.check_and_store(jti, clock.now() + 30).await.unwrap());
    }
}

/// The server dies and comes back: the cache fails closed (a retryable
/// error, never a `true`) and works again without a new object.
mod redis_fault {
    use std::net::TcpStream;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    use super::*;
    use jwt_refresh::replay::RedisReplayCache;
    use jwt_refresh::{Error, RedisRefreshStore};

    /// A redis-server child process, killed when dropped.
    struct Server(Child);

    impl Server {
        fn start(bin: &str, port: u16) -> Self {
            let child = Command::new(bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--dir", &std::env::temp_dir().display().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {bin}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "redis-server did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Server(child)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_server_is_a_retryable_error_never_an_acceptance() {
        let Some(bin) = jwtkit_test_support::binary("JWTKIT_TEST_REDIS_SERVER_BIN", "redis-server")
        else {
            return;
        };
        let port = jwtkit_test_support::free_port();
        let server = Server::start(&bin, port);
        let clock = Arc::new(ManualClock::starting_now());
        let store = RedisRefreshStore::builder()
            .url(format!("redis://127.0.0.1:{port}/"))
            .key_prefix(common::unique_prefix("replay-fault"))
            .clock(clock.clone())
            .response_timeout(Duration::from_millis(300))
            .operation_timeout(Duration::from_secs(1))
            .connect()
            .await
            .unwrap();
        let cache = RedisReplayCache::new(&store);
        let until = clock.now() + 60;
        assert!(cache.check_and_store("seen", until).await.unwrap());

        drop(server);
        for jti in ["seen", "new"] {
            let started = Instant::now();
            let err = cache.check_and_store(jti, until).await.unwrap_err();
            assert!(err.is_retryable(), "{jti}: {err:?}");
            assert!(
                matches!(
                    err,
                    Error::Unavailable {
                        backend: "redis",
                        ..
                    } | Error::Timeout {
                        backend: "redis",
                        ..
                    }
                ),
                "{jti}: {err:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{:?}",
                started.elapsed()
            );
        }

        // Back on the same port (without persistence, so it remembers
        // nothing): the same object reconnects by itself.
        let _server = Server::start(&bin, port);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match cache.check_and_store("after-restart", until).await {
                Ok(first) => {
                    assert!(first);
                    break;
                }
                Err(e) => {
                    assert!(e.is_retryable(), "{e:?}");
                    assert!(Instant::now() < deadline, "no reconnection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        assert!(!cache.check_and_store("after-restart", until).await.unwrap());
    }
}

mod redis_cluster {
    use super::*;
    use jwt_refresh::replay::RedisReplayCache;
    use jwt_refresh::RedisRefreshStore;

    fn nodes() -> Option<Vec<String>> {
        let nodes = jwtkit_test_support::service("JWTKIT_TEST_REDIS_CLUSTER", "Redis Cluster")?;
        Some(
            nodes
                .split(',')
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
        )
    }

    async fn connect() -> Option<(RedisReplayCache, Arc<ManualClock>)> {
        let nodes = nodes()?;
        let clock = Arc::new(ManualClock::starting_now());
        let store = RedisRefreshStore::builder()
            .cluster_nodes(nodes)
            .key_prefix(common::unique_prefix("replay-cluster"))
            .clock(clock.clone())
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to the test Redis Cluster: {e}"));
        Some((RedisReplayCache::new(&store), clock))
    }

    async fn make() -> Option<(Arc<dyn ReplayCache>, Arc<ManualClock>)> {
        let (cache, clock) = connect().await?;
        Some((Arc::new(cache), clock))
    }

    replay_conformance!(make, expiry_wait = Duration::from_millis(1300));

    /// The suite means something on a cluster only if identifiers land on
    /// every node.
    #[tokio::test]
    async fn identifiers_spread_over_every_node() {
        let Some(nodes) = nodes() else { return };
        let Some((cache, clock)) = connect().await else {
            return;
        };
        let mut owners = std::collections::BTreeSet::new();
        for i in 0..30 {
            let jti = format!("spread-{i}-{}", clock.now());
            assert!(cache.check_and_store(&jti, clock.now() + 30).await.unwrap());
            let key = cache.key_of(&jti);
            for (n, node) in nodes.iter().enumerate() {
                let mut con = redis::Client::open(node.as_str())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let slot: i64 = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(&key)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                let count: i64 = redis::cmd("CLUSTER")
                    .arg("COUNTKEYSINSLOT")
                    .arg(slot)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                if count > 0 {
                    owners.insert(n);
                }
            }
        }
        assert_eq!(owners.len(), nodes.len(), "keys on nodes {owners:?}");
    }
}
