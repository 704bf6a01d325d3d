//! The cached view of a remote store's state (KMS, Vault): read at most once
//! per TTL, one read in flight at a time, and — for verification — the last
//! good state kept when the service cannot be reached.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::error::Result;

struct Entry<T> {
    value: Arc<T>,
    fetched: Instant,
}

pub(crate) struct StateCache<T> {
    slot: RwLock<Option<Entry<T>>>,
    /// Serializes reads of the remote state (single flight).
    refresh: tokio::sync::Mutex<()>,
}

impl<T> StateCache<T> {
    pub(crate) fn new() -> Self {
        StateCache {
            slot: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The cached state if it is younger than `max_age` (any age for `None`).
    pub(crate) fn get(&self, max_age: Option<Duration>) -> Option<Arc<T>> {
        let guard = self.slot.read().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .filter(|e| max_age.is_none_or(|ttl| e.fetched.elapsed() < ttl))
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
                    fetched: Instant::now(),
                });
                Ok(value)
            }
            Err(e) => {
                if allow_stale {
                    let guard = self.slot.read().unwrap_or_else(|p| p.into_inner());
                    if let Some(stale) = guard.as_ref() {
                        tracing::warn!(store = %location(), error = %e, age_secs = stale.fetched.elapsed().as_secs(),
                            "could not refresh the key state from {service}; using the last known state");
                        return Ok(stale.value.clone());
                    }
                }
                Err(e)
            }
        }
    }
}
