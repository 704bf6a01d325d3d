//! Injected time: stores never read the wall clock directly, so expiry is testable.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time, in whole seconds since the Unix epoch (the unit of JWT `iat`
/// and `exp`).
///
/// Every expiry decision of a [`RefreshStore`](crate::RefreshStore) uses its clock, including
/// the Redis store, which passes `now` into its server-side scripts instead of reading Redis
/// `TIME`.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now_unix(&self) -> u64;
}

/// The system wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        // A clock before 1970 is a broken host; treating it as 0 only makes tokens look older.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to, for tests.
///
/// ```
/// use jwt_refresh::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(1_700_000_000);
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now_unix(), 1_700_000_030);
/// clock.set(5);
/// assert_eq!(clock.now_unix(), 5);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock showing `now_unix` seconds since the epoch.
    pub fn new(now_unix: u64) -> Self {
        Self {
            now: AtomicU64::new(now_unix),
        }
    }

    /// A clock starting at the current system time (use this with real servers, whose key TTLs
    /// run on real time).
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now_unix())
    }

    /// Sets the time.
    pub fn set(&self, now_unix: u64) {
        self.now.store(now_unix, Ordering::SeqCst);
    }

    /// Moves the time forward by `by` (rounded down to whole seconds).
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}
