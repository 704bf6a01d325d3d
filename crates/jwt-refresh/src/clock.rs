//! Injected time: stores never read the wall clock directly, so expiry is testable.
//!
//! The clock is jwt-core's, so one [`ManualClock`] can drive token
//! validation and the refresh store together.
//!
//! Times are jwt-core's [`UnixTime`] (signed seconds since the epoch), the
//! one timestamp type of the crates, so a record's `issued_at`/`expires_at`
//! go into `iat`/`exp` claims and compare with the access token's clock
//! without conversion.

pub use jwt_core::time::{Clock, ManualClock, SystemClock, UnixTime};
