//! Server-side refresh tokens for jwtkit: families, rotation, reuse detection, revocation.
//!
//! Access tokens stay stateless; refresh tokens are recorded server-side so they can be
//! revoked. This crate decides on those records; it does not sign anything (the `jwtkit`
//! facade wraps each [`RefreshRecord`] in a `refresh+jwt` signed with its own key).
//!
//! # The model
//!
//! - Every login starts a **family** ([`FamilyId`]). Each refresh token ([`TokenId`], the
//!   `jti`) belongs to one family and has a subject, issue and expiry time.
//! - [`RefreshStore::rotate`] consumes the presented token and issues its successor in the
//!   same family, atomically: of concurrent rotations of one token exactly one wins.
//! - **Reuse detection**: presenting a consumed token revokes the whole family and returns
//!   [`RotateOutcome::Reused`]. With a **reuse grace** window
//!   ([`RefreshPolicyBuilder::reuse_grace`], off by default, at most 60 s) the immediately
//!   previous token may be re-presented shortly after rotation and yields the *same* successor.
//! - **Revocation** of one token, one family (logout) or every family of a subject.
//! - Every expiry decision uses an injected [`Clock`]; stores also expire their entries
//!   (Redis key TTLs, sweeps in memory) so nothing grows without bound.
//!
//! # Stores
//!
//! - [`MemoryRefreshStore`]: in process, always available.
//! - `RedisRefreshStore` (feature `redis`, on by default): Redis or Redis Cluster, one atomic
//!   Lua script per rotation.
//!
//! Both pass the shared [`conformance`] suite (feature `conformance`).
//!
//! See `docs/refresh-tokens.md` in the repository for the design discussion, the grace
//! trade-off and deployment notes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
mod error;
mod id;
mod memory;
mod policy;
mod record;
pub mod replay;
mod store;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "redis")]
mod redis;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use id::{FamilyId, TokenId};
pub use memory::MemoryRefreshStore;
pub use policy::{RefreshPolicy, RefreshPolicyBuilder, MAX_REUSE_GRACE};
pub use record::{
    NewRefresh, RefreshRecord, RefreshStatus, RotateOutcome, SessionInfo, TokenState,
    MAX_CLIENT_LEN, MAX_METADATA_LEN, MAX_SUBJECT_LEN,
};
pub use replay::{MemoryReplayCache, ReplayCache};
pub use store::RefreshStore;

#[cfg(feature = "redis")]
pub use crate::redis::{RedisRefreshStore, RedisRefreshStoreBuilder};
#[cfg(feature = "redis")]
pub use crate::replay::RedisReplayCache;
