//! Injected time: stores never read the wall clock directly, so expiry is testable.
//!
//! The clock is jwt-core's, so one [`ManualClock`] can drive token
//! validation and the refresh store together.

pub use jwt_core::time::{Clock, ManualClock, SystemClock};

/// The clock's time as unsigned seconds (a clock before 1970 reads as 0: that
/// only makes tokens look older, never younger).
pub(crate) fn now_secs(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.now()).unwrap_or(0)
}
