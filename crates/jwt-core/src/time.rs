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

/// The system's wall clock, in whole seconds.
///
/// On Linux it reads the coarse wall clock (`CLOCK_REALTIME_COARSE`, a
/// memory read, ~4 ns against ~35 ns for the precise clock on the machine
/// jwtkit is measured on) except in the last 50 ms of each second (or four
/// kernel ticks, if longer), where the coarse clock, which trails by up to
/// a tick, may still show the previous second and the precise clock is read
/// instead; so the answer is the precise clock's whole seconds, at a
/// fraction of its cost, on every claims check.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(secs) = coarse::whole_seconds() {
            return secs;
        }
        precise_now()
    }
}

/// Whole seconds by the precise system clock.
fn precise_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // A clock set before 1970: report negative seconds rather than panic.
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod coarse {
    use std::sync::OnceLock;

    use rustix::time::{clock_getres, clock_gettime, ClockId};

    const NANOS: i64 = 1_000_000_000;

    /// How close to the next second the coarse clock may be read: 50 ms, or
    /// four times its resolution (one kernel tick) if that is longer, a
    /// wide margin over the one tick it trails by. `None` when the
    /// resolution is unknown or too coarse to be worth it (then every read
    /// is precise).
    // `tv_nsec` is an `i64` here but a `c_long` (32 bits) on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    fn slack() -> Option<i64> {
        static SLACK: OnceLock<Option<i64>> = OnceLock::new();
        *SLACK.get_or_init(|| {
            let res = clock_getres(ClockId::RealtimeCoarse);
            let tick = res
                .tv_sec
                .checked_mul(NANOS)?
                .checked_add(res.tv_nsec.into())?;
            (tick > 0 && tick <= 50_000_000).then_some((4 * tick).max(50_000_000))
        })
    }

    /// The coarse clock's whole seconds, when they are certainly the precise
    /// clock's too: the coarse clock trails the precise one by at most a
    /// tick, so a reading well before the next second cannot be in the
    /// wrong second.
    #[allow(clippy::useless_conversion)]
    pub(super) fn whole_seconds() -> Option<i64> {
        let slack = slack()?;
        let now = clock_gettime(ClockId::RealtimeCoarse);
        let nanos: i64 = now.tv_nsec.into();
        (now.tv_sec >= 0 && nanos < NANOS - slack).then_some(now.tv_sec)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The coarse path answers the precise clock's whole seconds: read
    /// between two precise readings, it lies between them, also across
    /// second boundaries (the loop runs through at least one).
    #[test]
    fn system_clock_agrees_with_the_precise_clock() {
        let start = std::time::Instant::now();
        let first = precise_now();
        while start.elapsed() < Duration::from_millis(1300) {
            let before = precise_now();
            let now = SystemClock.now();
            let after = precise_now();
            assert!(
                before <= now && now <= after,
                "{before} <= {now} <= {after}"
            );
        }
        assert!(precise_now() > first, "no second boundary was crossed");
    }
}
