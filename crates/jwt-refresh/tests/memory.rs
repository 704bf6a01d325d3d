//! The conformance suite on the in-memory store.

mod common;

use std::sync::Arc;

use jwt_refresh::{ManualClock, MemoryRefreshStore, RefreshPolicy, RefreshStore};

fn store(policy: RefreshPolicy) -> (MemoryRefreshStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    (
        MemoryRefreshStore::new(policy).with_clock(clock.clone()),
        clock,
    )
}

/// A fresh store with `policy` on a clock of its own (never unavailable).
async fn make(policy: RefreshPolicy) -> Option<(Arc<dyn RefreshStore>, Arc<ManualClock>)> {
    let (store, clock) = store(policy);
    Some((Arc::new(store), clock))
}

conformance_tests!(make, race_tasks = 200);

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
