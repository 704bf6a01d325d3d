//! Clocks. Validation never reads the wall clock directly: it asks the
//! [`Clock`] in its [`Validation`](crate::Validation), so tests and callers
//! with their own notion of time can inject one.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time as every jwtkit crate speaks it: whole seconds since
/// 1970-01-01T00:00:00Z (a JWT NumericDate), signed so that a clock set
/// before 1970 and differences between two times need no special case.
/// Token claims, key lifecycle times and refresh-token records all use it.
pub type UnixTime = i64;

/// A source of the current time, in whole seconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// Now, as a NumericDate (seconds since 1970-01-01T00:00:00Z).
    fn now(&self) -> UnixTime;
}

/// A duration in whole seconds (rounded down), saturating at
/// [`i64::MAX`]: the one conversion from a configured [`Duration`] to the
/// arithmetic of [`UnixTime`], so that `now + secs(grace)` never overflows
/// silently.
pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            // A clock set before 1970: report negative seconds rather than panic.
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        }
    }
}

/// A clock that reports a settable time; for tests and replays.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: i64) -> Self {
        ManualClock(AtomicI64::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// A clock starting at the current system time (for tests against real
    /// servers, whose own TTLs run on real time).
    pub fn starting_now() -> Self {
        ManualClock::new(now_unix())
    }

    /// Moves the time forward by `secs` (backward if negative).
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// Moves the time forward by `by`, rounded down to whole seconds.
    pub fn advance_by(&self, by: std::time::Duration) {
        self.advance(i64::try_from(by.as_secs()).unwrap_or(i64::MAX));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Seconds since the Unix epoch by the system clock.
pub fn now_unix() -> i64 {
    SystemClock.now()
}
