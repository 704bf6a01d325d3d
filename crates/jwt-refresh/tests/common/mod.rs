//! Shared by the backend test files: one test per conformance function.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A key prefix no other test (or earlier run) uses.
#[allow(dead_code)]
pub fn unique_prefix(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "jwtkit-test:{tag}:{}-{nanos}-{}:",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Generates one `#[tokio::test]` per conformance function. `$make` is an
/// `async fn(RefreshPolicy) -> Option<(Arc<dyn RefreshStore>, Arc<ManualClock>)>` returning
/// `None` when the backend is unavailable and the test is skipped (never under CI).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path, race_tasks = $tasks:expr) => {
        use jwt_refresh::conformance;

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn issue_and_lookup() {
            let Some((s, _)) = $make(conformance::standard_policy()).await else {
                return;
            };
            conformance::issue_and_lookup(&*s).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn rotate_issues_successor() {
            let Some((s, _)) = $make(conformance::standard_policy()).await else {
                return;
            };
            conformance::rotate_issues_successor(&*s).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn reuse_revokes_family() {
            let Some((s, _)) = $make(conformance::standard_policy()).await else {
                return;
            };
            conformance::reuse_revokes_family(&*s).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn grace_window() {
            let policy = conformance::grace_policy();
            let grace = policy.reuse_grace().expect("grace policy has grace");
            let Some((s, clock)) = $make(policy).await else {
                return;
            };
            conformance::grace_window(&*s, &clock, grace).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn revoke_token() {
            let Some((s, _)) = $make(conformance::standard_policy()).await else {
                return;
            };
            conformance::revoke_token(&*s).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn revoke_family() {
            let Some((s, _)) = $make(conformance::standard_policy()).await else {
                return;
            };
            conformance::revoke_family(&*s).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn revoke_subject() {
            let Some((s, _)) = $make(conformance::standard_policy()).await else {
                return;
            };
            conformance::revoke_subject(&*s).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn expiry() {
            let policy = conformance::standard_policy();
            let Some((s, clock)) = $make(policy.clone()).await else {
                return;
            };
            conformance::expiry(&*s, &clock, &policy).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn family_lifetime_cap() {
            let policy = conformance::standard_policy();
            let Some((s, clock)) = $make(policy.clone()).await else {
                return;
            };
            conformance::family_lifetime_cap(&*s, &clock, &policy).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn unknown_tokens() {
            let Some((s, _)) = $make(conformance::standard_policy()).await else {
                return;
            };
            conformance::unknown_tokens(&*s).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sessions() {
            let Some((s, clock)) = $make(conformance::standard_policy()).await else {
                return;
            };
            conformance::sessions(s, &clock).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_rotation() {
            let Some((s, _)) = $make(conformance::standard_policy()).await else {
                return;
            };
            conformance::concurrent_rotation(s, $tasks).await;
        }
    };
}
