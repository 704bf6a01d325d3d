//! The storage trait.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::Result;
use crate::id::{FamilyId, TokenId};
use crate::record::{NewRefresh, RefreshRecord, RefreshStatus, RotateOutcome, SessionInfo};

/// Server-side state of refresh tokens: issue, rotate with reuse detection, revoke, look up.
///
/// Object safe: services hold an `Arc<dyn RefreshStore>`. Implementations must make
/// [`rotate`](Self::rotate) atomic — of any number of concurrent rotations of one token,
/// exactly one may return [`RotateOutcome::Rotated`] with a fresh successor — and must fail
/// closed: when they cannot decide, they return an [`Error`](crate::Error), never a success.
/// [`conformance`](crate::conformance) (feature `conformance`) checks all of this.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use jwt_refresh::{MemoryRefreshStore, NewRefresh, RefreshStore, RotateOutcome};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jwt_refresh::Error> {
/// let store: Arc<dyn RefreshStore> = Arc::new(MemoryRefreshStore::new(Default::default()));
///
/// let first = store.issue(NewRefresh::login("user-42")).await?; // login
/// let second = match store.rotate(&first.jti).await? {
///     RotateOutcome::Rotated { new, .. } => new, // hand out `new` wrapped in a refresh+jwt
///     other => panic!("refused: {other:?}"),
/// };
/// // Presenting the consumed token again is reuse: the whole login is revoked.
/// assert!(matches!(store.rotate(&first.jti).await?, RotateOutcome::Reused { revoked: true, .. }));
/// assert_eq!(store.rotate(&second.jti).await?, RotateOutcome::Revoked);
/// # Ok(()) }
/// ```
///
/// # Writing your own store
///
/// Stores compose by implementing the trait. This one counts refusals and delegates the rest:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use async_trait::async_trait;
/// use jwt_refresh::*;
///
/// #[derive(Debug)]
/// struct CountingStore<S> { inner: S, refused: AtomicU64 }
///
/// #[async_trait]
/// impl<S: RefreshStore> RefreshStore for CountingStore<S> {
///     async fn issue(&self, new: NewRefresh) -> Result<RefreshRecord> { self.inner.issue(new).await }
///     async fn rotate(&self, jti: &TokenId) -> Result<RotateOutcome> {
///         let outcome = self.inner.rotate(jti).await?;
///         if outcome.rotated().is_none() {
///             self.refused.fetch_add(1, Ordering::Relaxed);
///         }
///         Ok(outcome)
///     }
///     async fn lookup(&self, jti: &TokenId) -> Result<Option<RefreshStatus>> { self.inner.lookup(jti).await }
///     async fn revoke_token(&self, jti: &TokenId) -> Result<bool> { self.inner.revoke_token(jti).await }
///     async fn revoke_family(&self, family: &FamilyId) -> Result<bool> { self.inner.revoke_family(family).await }
///     async fn revoke_subject(&self, subject: &str) -> Result<usize> { self.inner.revoke_subject(subject).await }
///     async fn session_active(&self, family: &FamilyId) -> Result<bool> { self.inner.session_active(family).await }
///     async fn sessions(&self, subject: &str) -> Result<Vec<SessionInfo>> { self.inner.sessions(subject).await }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<()> {
/// let store = CountingStore { inner: MemoryRefreshStore::new(RefreshPolicy::default()), refused: AtomicU64::new(0) };
/// let t = store.issue(NewRefresh::login("alice")).await?;
/// store.revoke_token(&t.jti).await?;
/// assert_eq!(store.rotate(&t.jti).await?, RotateOutcome::Revoked);
/// assert_eq!(store.refused.load(Ordering::Relaxed), 1);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait RefreshStore: Send + Sync + Debug + 'static {
    /// Issues a refresh token: the first of a new family for a login
    /// ([`NewRefresh::login`]), or one more in a live family ([`NewRefresh::in_family`]).
    ///
    /// Errors: [`UnknownFamily`](crate::Error::UnknownFamily),
    /// [`FamilyRevoked`](crate::Error::FamilyRevoked),
    /// [`FamilyExpired`](crate::Error::FamilyExpired),
    /// [`SubjectMismatch`](crate::Error::SubjectMismatch) for an existing family; invalid input;
    /// backend errors.
    async fn issue(&self, new: NewRefresh) -> Result<RefreshRecord>;

    /// Presents token `jti` for rotation: consumes it and issues its successor in the same
    /// family, atomically; or reports why not (see [`RotateOutcome`]). Presenting a consumed
    /// token revokes its whole family unless the reuse grace window applies.
    async fn rotate(&self, jti: &TokenId) -> Result<RotateOutcome>;

    /// The record and current state of `jti`, or `None` if it is unknown (for introspection;
    /// changes nothing).
    async fn lookup(&self, jti: &TokenId) -> Result<Option<RefreshStatus>>;

    /// Revokes one token. `true` if it was active and is now revoked.
    async fn revoke_token(&self, jti: &TokenId) -> Result<bool>;

    /// Revokes a family — every token of one login (logout). `true` if it existed and was not
    /// already revoked.
    async fn revoke_family(&self, family: &FamilyId) -> Result<bool>;

    /// Revokes every family of `subject` (logout everywhere, password change). Returns how
    /// many families were newly revoked. Families started concurrently with this call may
    /// survive it (they are logins that happened after the logout).
    async fn revoke_subject(&self, subject: &str) -> Result<usize>;

    /// Whether a session (refresh family) is live: it exists, is not
    /// revoked (logout, reuse detected, logout everywhere), and has reached
    /// neither its maximum lifetime nor the expiry of its latest token.
    /// Changes nothing. Access tokens name their session (`sid`), so an
    /// introspection endpoint can answer "inactive" for an access token
    /// whose session ended, before the token's own `exp`.
    async fn session_active(&self, family: &FamilyId) -> Result<bool>;

    /// The live sessions of `subject` (not revoked, not ended), oldest
    /// first: for a "where you are logged in" page and for an administrator
    /// before a logout everywhere. Changes nothing.
    async fn sessions(&self, subject: &str) -> Result<Vec<SessionInfo>>;
}
