//! The crate's one error type.

use std::time::Duration;

use crate::id::FamilyId;

/// A boxed source error from a storage backend (kept as a source, never flattened to a string).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a [`RefreshStore`](crate::RefreshStore) or while configuring one.
///
/// Outcomes of a refresh attempt (reuse, expiry, revocation) are *not* errors: they are
/// [`RotateOutcome`](crate::RotateOutcome) values. An `Error` means the store could not decide,
/// and a caller must then refuse the refresh (fail closed). Use [`Error::is_retryable`] to map
/// errors to HTTP 503 (retryable) or 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A policy or builder setting is invalid or contradicts another one.
    #[error("invalid refresh-token configuration: {setting}: {reason}")]
    InvalidConfig {
        /// The setting that was refused (e.g. `"reuse_grace"`).
        setting: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },

    /// A token id, family id, subject or metadata value is malformed.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was malformed (`"token id"`, `"family id"`, `"subject"`, `"metadata"`, `"ttl"`).
        what: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },

    /// A token was to be issued into a family that does not exist (or has expired and been purged).
    #[error("refresh family {family} does not exist (expired or never issued); start a new login instead")]
    UnknownFamily {
        /// The family that was asked for.
        family: FamilyId,
    },

    /// A token was to be issued into a family that has been revoked (logout or reuse).
    #[error("refresh family {family} has been revoked; start a new login instead")]
    FamilyRevoked {
        /// The revoked family.
        family: FamilyId,
    },

    /// A token was to be issued into a family whose absolute lifetime is over.
    #[error("refresh family {family} has reached its maximum lifetime; start a new login instead")]
    FamilyExpired {
        /// The expired family.
        family: FamilyId,
    },

    /// A token was to be issued into a family that belongs to another subject.
    #[error("refresh family {family} belongs to a different subject; refusing to issue into it")]
    SubjectMismatch {
        /// The family that was asked for.
        family: FamilyId,
    },

    /// The system random number generator failed; no identifier could be generated.
    #[error("the system random number generator failed; no refresh token was issued")]
    Random,

    /// The backend could not be reached or did not answer (connection refused or lost, cluster
    /// failover, server loading). Retryable; map to HTTP 503. The refresh must be refused.
    #[error("{backend} at {endpoint} is unavailable: {source} — check that it is running and reachable; {effect}")]
    Unavailable {
        /// Which backend (`"redis"`).
        backend: &'static str,
        /// `host:port` of the server or cluster seed nodes (never credentials).
        endpoint: String,
        /// Whether the operation may have been applied, in words.
        effect: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// The backend did not answer within the configured operation timeout. Retryable; the
    /// operation may or may not have been applied.
    #[error("{backend} at {endpoint} did not answer within {after:?} — check its load and the network; the operation may or may not have been applied, treat the token as not refreshed")]
    Timeout {
        /// Which backend (`"redis"`).
        backend: &'static str,
        /// `host:port` of the server or cluster seed nodes.
        endpoint: String,
        /// The timeout that elapsed.
        after: Duration,
    },

    /// The backend refused the operation for a reason retrying will not fix (authentication,
    /// permissions, wrong key type, script error). Not retryable; map to HTTP 500.
    #[error("{backend} at {endpoint} refused the operation: {source} — check the server's configuration and ACLs; the operation was not applied")]
    Backend {
        /// Which backend (`"redis"`).
        backend: &'static str,
        /// `host:port` of the server or cluster seed nodes.
        endpoint: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// The backend answered with data this version does not understand (foreign keys under the
    /// configured prefix, or an incompatible layout). Not retryable.
    #[error("{backend} returned an unexpected reply: {detail} — is another application using the key prefix?")]
    UnexpectedReply {
        /// Which backend (`"redis"`).
        backend: &'static str,
        /// What was unexpected.
        detail: String,
    },
}

/// What kind of [`Error`] this is, without its details: cheap to copy, to
/// compare and to count in metrics. The names ([`ErrorKind::as_str`]) are
/// stable.
///
/// ```
/// use jwt_refresh::{ErrorKind, RefreshPolicy};
/// use std::time::Duration;
///
/// let err = RefreshPolicy::builder().ttl(Duration::ZERO).build().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidConfig);
/// assert_eq!(err.kind().as_str(), "invalid_config");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A policy or builder setting is invalid.
    InvalidConfig,
    /// A token id, family id, subject or metadata value is malformed.
    InvalidInput,
    /// The family to issue into does not exist.
    UnknownFamily,
    /// The family to issue into has been revoked.
    FamilyRevoked,
    /// The family to issue into reached its maximum lifetime.
    FamilyExpired,
    /// The family to issue into belongs to another subject.
    SubjectMismatch,
    /// The system random number generator failed.
    Random,
    /// The backend could not be reached (retryable).
    Unavailable,
    /// The backend did not answer in time (retryable).
    Timeout,
    /// The backend refused the operation.
    Backend,
    /// The backend answered with data this version does not understand.
    UnexpectedReply,
}

impl ErrorKind {
    /// The stable snake_case name of this kind, e.g. `"unavailable"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::UnknownFamily => "unknown_family",
            ErrorKind::FamilyRevoked => "family_revoked",
            ErrorKind::FamilyExpired => "family_expired",
            ErrorKind::SubjectMismatch => "subject_mismatch",
            ErrorKind::Random => "random",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Backend => "backend",
            ErrorKind::UnexpectedReply => "unexpected_reply",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares by stable name: `err.kind() == "unavailable"`.
impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Error {
    /// The kind of this error, with a stable snake_case name
    /// ([`ErrorKind::as_str`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidConfig { .. } => ErrorKind::InvalidConfig,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::UnknownFamily { .. } => ErrorKind::UnknownFamily,
            Error::FamilyRevoked { .. } => ErrorKind::FamilyRevoked,
            Error::FamilyExpired { .. } => ErrorKind::FamilyExpired,
            Error::SubjectMismatch { .. } => ErrorKind::SubjectMismatch,
            Error::Random => ErrorKind::Random,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Backend { .. } => ErrorKind::Backend,
            Error::UnexpectedReply { .. } => ErrorKind::UnexpectedReply,
        }
    }

    /// `true` when retrying the same call may succeed (the backend was unreachable or slow);
    /// the same meaning as `is_retryable` in `jwt-keys` and `jwtkit`. Callers typically answer
    /// HTTP 503 for these and 500 for the rest.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Timeout { .. })
    }

    pub(crate) fn invalid_input(what: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_config(setting: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            setting,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are stable: logs and metrics key on them.
    #[test]
    fn kind_names_are_stable_and_retryability_follows_the_kind() {
        let unavailable = Error::Unavailable {
            backend: "redis",
            endpoint: "127.0.0.1:6379".into(),
            effect: "the operation was not applied",
            source: "connection refused".into(),
        };
        let timeout = Error::Timeout {
            backend: "redis",
            endpoint: "127.0.0.1:6379".into(),
            after: Duration::from_secs(1),
        };
        let config = Error::invalid_config("ttl", "zero");
        let input = Error::invalid_input("subject", "empty");
        let cases = [
            (unavailable, ErrorKind::Unavailable, "unavailable", true),
            (timeout, ErrorKind::Timeout, "timeout", true),
            (config, ErrorKind::InvalidConfig, "invalid_config", false),
            (input, ErrorKind::InvalidInput, "invalid_input", false),
            (Error::Random, ErrorKind::Random, "random", false),
        ];
        for (err, kind, name, retryable) in cases {
            assert_eq!(err.kind(), kind, "{err}");
            assert_eq!(err.kind().as_str(), name);
            assert_eq!(err.kind(), name);
            assert_eq!(err.is_retryable(), retryable, "{err}");
        }
    }
}
