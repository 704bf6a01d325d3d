//! What a store keeps and answers: records, requests and outcomes.

use std::fmt;
use std::time::Duration;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::id::{FamilyId, TokenId};

/// Longest accepted subject, in bytes.
pub const MAX_SUBJECT_LEN: usize = 1024;
/// Longest accepted metadata value, in bytes.
pub const MAX_METADATA_LEN: usize = 4096;

/// Largest client description kept with a session ([`NewRefresh::client`]), in bytes.
pub const MAX_CLIENT_LEN: usize = 1024;

/// One refresh token as the store knows it: everything the facade needs to mint the
/// `refresh+jwt` (`jti`, `sub`, `iat`, `exp`; the family is the part of the `jti` before
/// the dot, so no separate claim carries it), and nothing secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshRecord {
    /// The token's id, to be put in the `jti` claim.
    pub jti: TokenId,
    /// The family (login session) the token belongs to.
    pub family: FamilyId,
    /// The subject (user) of the family.
    pub subject: String,
    /// Issue time, seconds since the epoch (`iat`).
    pub issued_at: UnixTime,
    /// Expiry, seconds since the epoch (`exp`); the token is refused from this second on.
    pub expires_at: UnixTime,
    /// 0 for the first token of a login, +1 on each rotation.
    pub generation: u32,
    /// Opaque metadata given at issue (e.g. a client id), inherited by successors.
    pub metadata: Option<String>,
}

impl RefreshRecord {
    /// A record (for stores implementing the trait); the family is taken from `jti`.
    pub fn new(
        jti: TokenId,
        subject: impl Into<String>,
        issued_at: UnixTime,
        expires_at: UnixTime,
        generation: u32,
        metadata: Option<String>,
    ) -> Self {
        Self {
            family: jti.family(),
            jti,
            subject: subject.into(),
            issued_at,
            expires_at,
            generation,
            metadata,
        }
    }
}

impl fmt::Debug for RefreshRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The jti is bearer-equivalent once signed: show the family only.
        f.debug_struct("RefreshRecord")
            .field("family", &self.family)
            .field("subject", &self.subject)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("generation", &self.generation)
            .field("metadata", &self.metadata.as_ref().map(|m| m.len()))
            .finish_non_exhaustive()
    }
}

/// A request to issue a refresh token: a new login, or one more token in an existing family.
///
/// ```
/// use jwt_refresh::NewRefresh;
/// use std::time::Duration;
///
/// let login = NewRefresh::login("user-42")
///     .ttl(Duration::from_secs(3600))
///     .metadata("client=mobile");
/// # let _ = login;
/// ```
#[derive(Debug, Clone)]
pub struct NewRefresh {
    pub(crate) subject: String,
    pub(crate) family: Option<FamilyId>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) metadata: Option<String>,
    pub(crate) client: Option<String>,
}

impl NewRefresh {
    /// A new login: starts a new family for `subject`.
    pub fn login(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            family: None,
            ttl: None,
            metadata: None,
            client: None,
        }
    }

    /// One more token in the existing `family` of `subject` (the family must be live, not
    /// revoked, and belong to `subject`).
    pub fn in_family(subject: impl Into<String>, family: FamilyId) -> Self {
        Self {
            family: Some(family),
            ..Self::login(subject)
        }
    }

    /// Lifetime of this token and of its successors, instead of the policy's
    /// [`ttl`](crate::RefreshPolicyBuilder::ttl). Still capped by the family's maximum lifetime.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Opaque metadata stored with the token and inherited by its successors (non-empty, at
    /// most [`MAX_METADATA_LEN`] bytes). Not stored for tokens issued into an existing family
    /// unless given again.
    pub fn metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }

    /// A description of the client that logged in (device name, user agent:
    /// opaque text, e.g. JSON; non-empty, at most [`MAX_CLIENT_LEN`] bytes),
    /// kept with the session and listed by [`RefreshStore::sessions`](crate::RefreshStore::sessions).
    /// Only for a new login: a token issued into an existing family keeps the
    /// family's.
    pub fn client(mut self, client: impl Into<String>) -> Self {
        self.client = Some(client.into());
        self
    }

    /// The client description given, if any.
    pub fn client_value(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The family, or `None` for a new login.
    pub fn family(&self) -> Option<&FamilyId> {
        self.family.as_ref()
    }

    /// The lifetime asked for, if any (otherwise the store's policy ttl applies).
    pub fn requested_ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// The metadata given, if any.
    pub fn metadata_value(&self) -> Option<&str> {
        self.metadata.as_deref()
    }

    /// Checks the request (subject and metadata length, ttl ≥ 1 s); stores call this first.
    pub fn validate(&self) -> Result<()> {
        if self.subject.is_empty() || self.subject.len() > MAX_SUBJECT_LEN {
            return Err(Error::invalid_input(
                "subject",
                format!("must be 1 to {MAX_SUBJECT_LEN} bytes long"),
            ));
        }
        if let Some(m) = &self.metadata {
            if m.is_empty() || m.len() > MAX_METADATA_LEN {
                return Err(Error::invalid_input(
                    "metadata",
                    format!("must be 1 to {MAX_METADATA_LEN} bytes long (leave it unset for none)"),
                ));
            }
        }
        if let Some(c) = &self.client {
            if c.is_empty() || c.len() > MAX_CLIENT_LEN {
                return Err(Error::invalid_input(
                    "client",
                    format!("must be 1 to {MAX_CLIENT_LEN} bytes long (leave it unset for none)"),
                ));
            }
            if self.family.is_some() {
                return Err(Error::invalid_input(
                    "client",
                    "is kept with a session when it starts: give it with NewRefresh::login, \
                     not with a token issued into an existing family",
                ));
            }
        }
        if let Some(ttl) = self.ttl {
            if ttl.as_secs() == 0 {
                return Err(Error::invalid_input("ttl", "must be at least one second"));
            }
        }
        Ok(())
    }
}

/// A live session (refresh family) of a subject, as
/// [`RefreshStore::sessions`](crate::RefreshStore::sessions) lists it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id (the `sid` of its access tokens).
    pub family: FamilyId,
    /// When it started (the login), Unix seconds.
    pub created_at: i64,
    /// When its latest refresh token was issued (the login itself until the
    /// first refresh), Unix seconds.
    pub last_refreshed_at: i64,
    /// When it ends unless refreshed again: the expiry of its latest token,
    /// never after its maximum lifetime. Unix seconds.
    pub expires_at: i64,
    /// The client description recorded at login ([`NewRefresh::client`]).
    pub client: Option<String>,
}

impl SessionInfo {
    /// A session as a store lists it (for stores implementing the trait).
    pub fn new(
        family: FamilyId,
        created_at: i64,
        last_refreshed_at: i64,
        expires_at: i64,
        client: Option<String>,
    ) -> Self {
        Self {
            family,
            created_at,
            last_refreshed_at,
            expires_at,
            client,
        }
    }
}

/// The result of presenting a refresh token for rotation.
///
/// Only [`Rotated`](RotateOutcome::Rotated) may lead to new tokens; every other variant must be
/// answered with `invalid_grant` (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The presented token was valid: it is now consumed and `new` is its successor.
    Rotated {
        /// The successor to hand out.
        new: RefreshRecord,
        /// The presented (now consumed) token.
        previous: RefreshRecord,
        /// `true` when the presented token had already been rotated moments ago and is
        /// re-presented within the reuse grace window: `new` is then the *same* successor as
        /// the first time (same `jti`), not a fresh token.
        replayed_within_grace: bool,
    },
    /// The presented token had already been consumed: a replay, possibly by a thief. The whole
    /// family is revoked.
    Reused {
        /// The revoked family.
        family: FamilyId,
        /// Its subject.
        subject: String,
        /// `true` if this presentation revoked the family; `false` if it was already revoked.
        revoked: bool,
    },
    /// No such token (never issued, purged after expiry, or lost by a server without
    /// persistence).
    Unknown,
    /// The token (or its family's maximum lifetime) has expired.
    Expired,
    /// The token or its family was revoked.
    Revoked,
}

impl RotateOutcome {
    /// The successor, if the rotation succeeded.
    pub fn rotated(&self) -> Option<&RefreshRecord> {
        match self {
            RotateOutcome::Rotated { new, .. } => Some(new),
            _ => None,
        }
    }
}

/// The state of a token, for introspection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenState {
    /// Usable.
    Active,
    /// Rotated into `successor` at `consumed_at`; presenting it again is reuse.
    Consumed {
        /// The token it was rotated into.
        successor: TokenId,
        /// When, seconds since the epoch.
        consumed_at: UnixTime,
    },
    /// Revoked, by itself or with its family.
    Revoked,
    /// Past its expiry.
    Expired,
}

/// What [`RefreshStore::lookup`](crate::RefreshStore::lookup) found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshStatus {
    /// The token.
    pub record: RefreshRecord,
    /// Its state now.
    pub state: TokenState,
}

impl RefreshStatus {
    /// A status (for stores implementing the trait).
    pub fn new(record: RefreshRecord, state: TokenState) -> Self {
        Self { record, state }
    }

    /// Whether the token could be rotated now (RFC 7662 `active`).
    pub fn is_active(&self) -> bool {
        self.state == TokenState::Active
    }
}
