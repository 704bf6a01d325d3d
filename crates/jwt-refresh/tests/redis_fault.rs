//! Fault test: the Redis server dies mid-run and comes back on the same port.
//!
//! Starts its own `redis-server` (`JWTKIT_TEST_REDIS_SERVER_BIN`, default from `PATH`) on a
//! free loopback port, without persistence, and checks that the store fails closed with typed,
//! retryable errors within its timeout while the server is gone, never panics, never accepts a
//! consumed token, and works again after the restart without a new store object.

use std::collections::HashSet;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_refresh::{Error, NewRefresh, RedisRefreshStore, RefreshStore, RotateOutcome, TokenId};

const RESPONSE_TIMEOUT: Duration = Duration::from_millis(300);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(1);
/// Slack for scheduling on a loaded 2-core machine.
const MARGIN: Duration = Duration::from_millis(750);

/// A redis-server child process, killed when dropped (also when the test panics).
struct RedisServer {
    child: Child,
}

impl RedisServer {
    fn start(bin: &str, port: u16) -> Self {
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let server = RedisServer { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Ok, or the retryable error a caller maps to 503 — anything else fails the test.
fn check_error(e: &Error, what: &str) {
    assert!(
        e.is_retryable(),
        "{what}: expected a retryable Unavailable/Timeout error, got {e:?}"
    );
    assert!(
        matches!(
            e,
            Error::Unavailable {
                backend: "redis",
                ..
            } | Error::Timeout {
                backend: "redis",
                ..
            }
        ),
        "{what}: {e:?}"
    );
}

#[derive(Default)]
struct Stats {
    ops: AtomicUsize,
    ok: AtomicUsize,
    errors: AtomicUsize,
}

/// Rotates chains of tokens in a loop and presents consumed tokens now and then; asserts that
/// a consumed token is never accepted.
async fn worker(store: Arc<dyn RefreshStore>, stop: Arc<AtomicBool>, stats: Arc<Stats>) {
    let mut consumed: Vec<TokenId> = Vec::new();
    let mut consumed_set: HashSet<TokenId> = HashSet::new();
    let mut current: Option<TokenId> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && i < 1_000_000 {
        i += 1;
        stats.ops.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let presented = match (&current, i % 10 == 0 && !consumed.is_empty()) {
            (_, true) => Some(consumed[i % consumed.len()].clone()),
            (Some(jti), false) => Some(jti.clone()),
            (None, false) => None,
        };
        let result = match &presented {
            None => store
                .issue(NewRefresh::login("fault-worker"))
                .await
                .map(|r| {
                    current = Some(r.jti);
                }),
            Some(jti) => store.rotate(jti).await.map(|outcome| match outcome {
                RotateOutcome::Rotated { ref new, .. } => {
                    assert!(
                        !consumed_set.contains(jti),
                        "a consumed token was accepted: {outcome:?}"
                    );
                    consumed.push(jti.clone());
                    consumed_set.insert(jti.clone());
                    current = Some(new.jti.clone());
                }
                // Refused (reuse after an ambiguous timeout, or data lost in the restart):
                // start a new login.
                _ if Some(jti) == current.as_ref() => current = None,
                _ => {}
            }),
        };
        assert!(
            started.elapsed() <= OPERATION_TIMEOUT + MARGIN,
            "an operation took {:?}",
            started.elapsed()
        );
        match result {
            Ok(()) => {
                stats.ok.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                check_error(&e, "worker");
                stats.errors.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_fails_closed_then_recovers() {
    let Some(bin) = jwtkit_test_support::binary("JWTKIT_TEST_REDIS_SERVER_BIN", "redis-server")
    else {
        return;
    };
    let port = jwtkit_test_support::free_port();
    let mut server = RedisServer::start(&bin, port);
    let store = RedisRefreshStore::builder()
        .url(format!("redis://127.0.0.1:{port}/"))
        .response_timeout(RESPONSE_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .connect()
        .await
        .expect("connect to the fault-test Redis");
    let store: Arc<dyn RefreshStore> = Arc::new(store);

    // Tokens from before the crash: one consumed, one active.
    let before = store.issue(NewRefresh::login("fault")).await.unwrap();
    let before_next = store
        .rotate(&before.jti)
        .await
        .unwrap()
        .rotated()
        .cloned()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    let work = tokio::spawn(worker(store.clone(), stop.clone(), stats.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.ok.load(Ordering::SeqCst) < 200 {
        assert!(Instant::now() < deadline, "the worker made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    server.kill();
    let errors_before = stats.errors.load(Ordering::SeqCst);
    // While the server is gone: typed, retryable errors within the timeout, and nothing accepted.
    for _ in 0..5 {
        let started = Instant::now();
        match store.rotate(&before_next.jti).await {
            Err(e) => check_error(&e, "rotate while down"),
            Ok(outcome) => panic!("rotate succeeded without a server: {outcome:?}"),
        }
        match store.issue(NewRefresh::login("fault")).await {
            Err(e) => check_error(&e, "issue while down"),
            Ok(r) => panic!("issue succeeded without a server: {r:?}"),
        }
        match store.revoke_family(&before.family).await {
            Err(e) => check_error(&e, "revoke while down"),
            Ok(r) => panic!("revoke succeeded without a server: {r:?}"),
        }
        eprintln!("down: three refused operations in {:?}", started.elapsed());
        assert!(started.elapsed() <= 3 * (OPERATION_TIMEOUT + MARGIN));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.errors.load(Ordering::SeqCst) < errors_before + 3 {
        assert!(
            Instant::now() < deadline,
            "the worker saw no errors while Redis was down"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Same port, same store object: it must reconnect by itself.
    let _restarted = RedisServer::start(&bin, port);
    let restarted_at = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    let fresh = loop {
        match store.issue(NewRefresh::login("fault")).await {
            Ok(r) => break r,
            Err(e) => {
                check_error(&e, "issue after restart");
                assert!(Instant::now() < deadline, "no recovery within 15 s: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    eprintln!("recovered {:?} after the restart", restarted_at.elapsed());
    let ok_at_restart = stats.ok.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(15);
    while stats.ok.load(Ordering::SeqCst) < ok_at_restart + 50 {
        assert!(Instant::now() < deadline, "the worker did not recover");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    work.await.expect("worker panicked");

    // Without persistence the restarted server lost everything: old tokens are Unknown
    // (refused), never accepted.
    assert_eq!(
        store.rotate(&before.jti).await.unwrap(),
        RotateOutcome::Unknown
    );
    assert_eq!(
        store.rotate(&before_next.jti).await.unwrap(),
        RotateOutcome::Unknown
    );
    let next = store.rotate(&fresh.jti).await.unwrap();
    assert!(next.rotated().is_some(), "{next:?}");
    assert!(matches!(
        store.rotate(&fresh.jti).await.unwrap(),
        RotateOutcome::Reused { revoked: true, .. }
    ));
    eprintln!(
        "fault test: {} operations, {} ok, {} retryable errors",
        stats.ops.load(Ordering::SeqCst),
        stats.ok.load(Ordering::SeqCst),
        stats.errors.load(Ordering::SeqCst)
    );
}
