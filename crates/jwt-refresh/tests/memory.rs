//! The conformance suite on the in-memory store.

use std::sync::Arc;

use jwt_refresh::{conformance, ManualClock, MemoryRefreshStore, RefreshPolicy, RefreshStore};

fn store(policy: RefreshPolicy) -> (MemoryRefreshStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    (
        MemoryRefreshStore::new(policy).with_clock(clock.clone()),
        clock,
    )
}

#[tokio::test]
async fn issue_and_lookup() {
    conformance::issue_and_lookup(&store(conformance::standard_policy()).0).await;
}

#[tokio::test]
async fn rotate_issues_successor() {
    conformance::rotate_issues_successor(&store(conformance::standard_policy()).0).await;
}

#[tokio::test]
async fn reuse_revokes_family() {
    conformance::reuse_revokes_family(&store(conformance::standard_policy()).0).await;
}

#[tokio::test]
async fn grace_window() {
    let policy = conformance::grace_policy();
    let grace = policy.reuse_grace().expect("grace policy has grace");
    let (s, clock) = store(policy);
    conformance::grace_window(&s, &clock, grace).await;
}

#[tokio::test]
async fn revoke_token() {
    conformance::revoke_token(&store(conformance::standard_policy()).0).await;
}

#[tokio::test]
async fn revoke_family() {
    conformance::revoke_family(&store(conformance::standard_policy()).0).await;
}

#[tokio::test]
async fn revoke_subject() {
    conformance::revoke_subject(&store(conformance::standard_policy()).0).await;
}

#[tokio::test]
async fn expiry() {
    let policy = conformance::standard_policy();
    let (s, clock) = store(policy.clone());
    conformance::expiry(&s, &clock, &policy).await;
}

#[tokio::test]
async fn family_lifetime_cap() {
    let policy = conformance::standard_policy();
    let (s, clock) = store(policy.clone());
    conformance::family_lifetime_cap(&s, &clock, &policy).await;
}

#[tokio::test]
async fn unknown_tokens() {
    conformance::unknown_tokens(&store(conformance::standard_policy()).0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotation() {
    let (s, _) = store(conformance::standard_policy());
    let s: Arc<dyn RefreshStore> = Arc::new(s);
    conformance::concurrent_rotation(s, 200).await;
}

#[tokio::test]
async fn purge_removes_expired_entries_only() {
    use jwt_refresh::NewRefresh;
    use std::time::Duration;
    let (s, clock) = store(conformance::standard_policy());
    let short = s
        .issue(NewRefresh::login("purge").ttl(Duration::from_secs(10)))
        .await
        .unwrap();
    let long = s.issue(NewRefresh::login("purge")).await.unwrap();
    clock.advance_by(Duration::from_secs(10));
    assert_eq!(s.purge_expired(), 1);
    assert_eq!(s.lookup(&short.jti).await.unwrap(), None);
    assert!(s.lookup(&long.jti).await.unwrap().unwrap().is_active());
}
