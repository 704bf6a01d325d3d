//! Helpers for jwtkit's own tests: locating the real servers (Redis, Redis
//! Cluster, OpenBao, moto) that `scripts/test.sh` starts, and free loopback
//! ports for tests that start their own.
//!
//! Contract with `scripts/test.sh` (environment variables):
//!
//! | variable | meaning |
//! |---|---|
//! | `JWTKIT_TEST_REDIS_URL` | `redis://127.0.0.1:PORT/` of a standalone Redis |
//! | `JWTKIT_TEST_REDIS_CLUSTER` | comma-separated `redis://127.0.0.1:PORT` seed nodes of a 3-node cluster |
//! | `JWTKIT_TEST_VAULT_ADDR`, `JWTKIT_TEST_VAULT_TOKEN` | an OpenBao dev server with `transit/` enabled |
//! | `JWTKIT_TEST_KMS_ENDPOINT` | a moto server speaking the KMS API |
//! | `JWTKIT_TEST_REDIS_SERVER_BIN`, `JWTKIT_TEST_BAO_BIN`, `JWTKIT_TEST_MOTO_BIN` | binaries, for fault tests that start (and kill) their own instance |
//! | `JWTKIT_REQUIRE_SERVICES=1` | a missing service is a test failure, never a skip (set by the script and in CI) |
#![forbid(unsafe_code)]

use std::net::TcpListener;

/// Whether missing services must fail the test run (set by `scripts/test.sh`
/// and whenever `CI` is set).
pub fn services_required() -> bool {
    std::env::var("JWTKIT_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Returns the value of the service variable `var`, or `None` after printing
/// how to run the test for real. When services are required this panics
/// instead, so that a missing server fails CI rather than being skipped.
pub fn service(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            let msg = format!(
                "{what} is not available: {var} is not set. Run `scripts/test.sh` \
                 (the README's test command), which starts the real servers and sets it."
            );
            if services_required() {
                panic!(
                    "{msg} (JWTKIT_REQUIRE_SERVICES/CI is set, so this is a failure, not a skip)"
                );
            }
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

/// Like [`service`] but for a binary path, defaulting to `default` when it is on `PATH`.
pub fn binary(var: &str, default: &str) -> Option<String> {
    if let Ok(v) = std::env::var(var) {
        if !v.trim().is_empty() {
            return Some(v);
        }
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(default))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p.display().to_string()),
        None => service(var, default),
    }
}

/// A currently free TCP port on 127.0.0.1 (the OS picks it; racy only in the
/// usual way: another process could take it before the caller binds).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}
