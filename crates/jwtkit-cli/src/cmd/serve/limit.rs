//! Brute-force limit of `jwtkit serve`: failed admin and introspection
//! authentications per client address.
//!
//! Only failures count: a request with the right credential never uses up
//! the allowance. Once an address has failed more often than the quota
//! allows, it is *locked*: every admin or introspection request from it is
//! answered `429` with `Retry-After` without looking at its credential, the
//! right one included, until the quota lets one more attempt through. A
//! limit that still compared the credential of a locked address would still
//! tell a guesser which guess is right, only with another status for the
//! wrong ones.
//!
//! The quota is a GCRA (`governor`): `failures` attempts at once, then one
//! more every `window / failures`, so never more than `failures` per
//! `window` in the long run. Addresses are the TCP peer's: an IPv4 address,
//! or the /64 network of an IPv6 one (a single host commonly holds a whole
//! /64). Behind a proxy every client shares the proxy's address; see
//! `docs/operations.md`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The failed authentications allowed per address and window by default.
pub(crate) const DEFAULT_FAILURES: u32 = 10;
/// The default window of the limit.
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// The per-address limit on failed admin and introspection authentications.
pub(crate) struct AuthFailureLimiter {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses refused without a look at their credential, until when.
    locked: Mutex<HashMap<IpAddr, Instant>>,
    /// `locked.len()`, read without the lock: the path of a request from
    /// an address that is not locked (all of them, normally) takes no lock.
    locked_count: AtomicUsize,
}

impl std::fmt::Debug for AuthFailureLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFailureLimiter")
            .field("locked", &self.locked_count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl AuthFailureLimiter {
    /// At most `failures` failed authentications per address in `window`
    /// (`failures` at once, then one every `window / failures`).
    pub(crate) fn new(failures: NonZeroU32, window: Duration) -> Self {
        let period = window / failures.get();
        // `with_period` refuses only a zero period; the settings keep the
        // window at one second or more and the count at most 10 000.
        let quota = Quota::with_period(period.max(Duration::from_micros(1)))
            .unwrap_or_else(|| Quota::per_second(failures))
            .allow_burst(failures);
        AuthFailureLimiter {
            failures: RateLimiter::dashmap(quota),
            locked: Mutex::new(HashMap::new()),
            locked_count: AtomicUsize::new(0),
        }
    }

    /// How long `client` is still locked, if it is: the request is refused
    /// (`429`, `Retry-After`) without a look at its credential.
    pub(crate) fn locked(&self, client: IpAddr) -> Option<Duration> {
        if self.locked_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let key = key(client);
        let now = Instant::now();
        let mut locked = self.lock();
        match locked.get(&key) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                locked.remove(&key);
                self.locked_count.store(locked.len(), Ordering::Release);
                None
            }
            None => None,
        }
    }

    /// Records a failed authentication from `client`: `None` while it is
    /// within the quota (answer `401`), else how long it is now locked
    /// (answer `429`).
    pub(crate) fn failed(&self, client: IpAddr) -> Option<Duration> {
        let key = key(client);
        let not_until = self.failures.check_key(&key).err()?;
        let now = Instant::now();
        // At least a second: `Retry-After` counts whole seconds.
        let wait = not_until.wait_time_from(now).max(Duration::from_secs(1));
        let mut locked = self.lock();
        locked.insert(key, now + wait);
        self.locked_count.store(locked.len(), Ordering::Release);
        Some(wait)
    }

    /// Forgets addresses whose allowance is whole again and locks that have
    /// ended, so that the tables hold only recent offenders. Called on a timer.
    pub(crate) fn prune(&self) {
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
        let now = Instant::now();
        let mut locked = self.lock();
        locked.retain(|_, until| *until > now);
        locked.shrink_to_fit();
        self.locked_count.store(locked.len(), Ordering::Release);
    }

    /// The addresses the limiter tracks now (with failures or locked), for metrics.
    pub(crate) fn tracked(&self) -> usize {
        self.failures.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (single inserts and removals): keep using it.
        self.locked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the limit counts under: the IPv4 address (an IPv4-mapped IPv6
/// address too), or the /64 network of an IPv6 address.
fn key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs();
    if wait.subsec_nanos() > 0 {
        secs + 1
    } else {
        secs.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(n: u32, window: Duration) -> AuthFailureLimiter {
        AuthFailureLimiter::new(NonZeroU32::new(n).unwrap(), window)
    }

    #[test]
    fn the_failure_after_the_allowance_locks_the_address() {
        let limits = limiter(3, Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(limits.locked(a), None);
        for _ in 0..3 {
            assert_eq!(limits.failed(a), None);
        }
        let wait = limits.failed(a).expect("the fourth failure locks");
        // One more attempt every 20 s.
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        let left = limits.locked(a).expect("locked");
        assert!(left <= wait, "{left:?}");
        assert_eq!(retry_after_secs(left), 20);
        // Another address is not affected.
        assert_eq!(limits.locked(b), None);
        assert_eq!(limits.failed(b), None);
        assert_eq!(limits.tracked(), 2);
    }

    #[test]
    fn a_lock_ends_when_the_quota_lets_an_attempt_through() {
        let limits = limiter(2, Duration::from_secs(2));
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(limits.failed(a), None);
        assert_eq!(limits.failed(a), None);
        let wait = limits.failed(a).expect("locked");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        std::thread::sleep(wait + Duration::from_millis(50));
        assert_eq!(limits.locked(a), None);
        // One attempt came back, not the whole allowance.
        assert_eq!(limits.failed(a), None);
        assert!(limits.failed(a).is_some());
        limits.prune();
        assert!(limits.locked(a).is_some(), "prune keeps a running lock");
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(key(one), key(same_64));
        assert_ne!(key(one), key(other_64));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(6)), 6);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
