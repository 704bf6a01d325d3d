//! The cached view of a remote store's state (KMS, Vault): read at most once
//! per TTL, one read in flight at a time, and — for verification — the last
//! good state kept when the service cannot be reached.
//!
//! Ages are measured on the store's injected clock, like every other time
//! of the store: a test that moves a `ManualClock` past the TTL sees the
//! next read go to the service, and `jwtkit --now` ages the cache with the
//! rest of the run. The clock counts whole seconds, so a TTL below one
//! second means "always read".

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jwt_core::time::{secs, UnixTime};
use jwt_core::Clock;

use crate::error::Result;

struct Entry<T> {
    value: Arc<T>,
    fetched: UnixTime,
}

pub(crate) struct StateCache<T> {
    clock: Arc<dyn Clock>,
    slot: RwLock<Option<Entry<T>>>,
    /// Serializes reads of the remote state (single flight).
    refresh: tokio::sync::Mutex<()>,
}

impl<T> StateCache<T> {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        StateCache {
            clock,
            slot: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Seconds since `e` was read; a clock set back counts as fresh.
    fn age(&self, e: &Entry<T>) -> i64 {
        self.clock.now().saturating_sub(e.fetched).max(0)
    }

    /// The cached state if it is younger than `max_age` (any age for `None`).
    pub(crate) fn get(&self, max_age: Option<Duration>) -> Option<Arc<T>> {
        let guard = self.slot.read().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .filter(|e| max_age.is_none_or(|ttl| self.age(e) < secs(ttl)))
            .map(|e| e.value.clone())
    }

    /// Forgets the cached state (after a write), so the next read goes to the service.
    pub(crate) fn invalidate(&self) {
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The cached state while it is younger than `ttl`, else `load()`'s. With
    /// `allow_stale`, a failed load falls back to the last state read
    /// (verification keeps working while the service is unreachable).
    /// `location` names the store in the warning logged when a stale state is
    /// served; it is only formatted then, not on every (cached) call.
    pub(crate) async fn get_or_load<F, Fut, L>(
        &self,
        ttl: Duration,
        allow_stale: bool,
        service: &str,
        location: L,
        load: F,
    ) -> Result<Arc<T>>
    where
        L: FnOnce() -> String,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if let Some(s) = self.get(Some(ttl)) {
            return Ok(s);
        }
        let _one = self.refresh.lock().await;
        if let Some(s) = self.get(Some(ttl)) {
            return Ok(s);
        }
        match load().await {
            Ok(s) => {
                let value = Arc::new(s);
                *self.slot.write().unwrap_or_else(|e| e.into_inner()) = Some(Entry {
                    value: value.clone(),
                    fetched: self.clock.now(),
                });
                Ok(value)
            }
            Err(e) => {
                if allow_stale {
                    let guard = self.slot.read().unwrap_or_else(|p| p.into_inner());
                    if let Some(stale) = guard.as_ref() {
                        tracing::warn!(store = %location(), error = %e, age_secs = self.age(stale),
                            "could not refresh the key state from {service}; using the last known state");
                        return Ok(stale.value.clone());
                    }
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use jwt_core::ManualClock;

    use super::*;

    /// The TTL runs on the injected clock: moving a `ManualClock` past it
    /// makes the next read go to the service, and nothing else does.
    #[tokio::test]
    async fn the_ttl_runs_on_the_store_clock() {
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let cache = StateCache::new(clock.clone());
        let loads = AtomicUsize::new(0);
        let read = || async {
            cache
                .get_or_load(
                    Duration::from_secs(30),
                    false,
                    "test",
                    String::new,
                    || async { Ok(loads.fetch_add(1, Ordering::SeqCst)) },
                )
                .await
                .map(|v| *v)
        };
        assert_eq!(read().await.unwrap(), 0);
        clock.advance(29);
        assert_eq!(read().await.unwrap(), 0, "still fresh at 29 s");
        clock.advance(1);
        assert_eq!(read().await.unwrap(), 1, "reloaded at 30 s");
        // A clock set back never makes an entry older.
        clock.advance(-3_600);
        assert_eq!(read().await.unwrap(), 1);
    }
}
