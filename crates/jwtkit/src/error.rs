//! The one error type of the `jwtkit` facade.

use std::fmt;

/// Errors of the [`TokenService`](crate::TokenService) and its builder.
///
/// Three families, told apart by [`Error::is_rejection`] and
/// [`Error::is_retryable`]:
/// - the caller's token was refused ([`InvalidToken`](Error::InvalidToken) for
///   access tokens, [`InvalidGrant`](Error::InvalidGrant) for refresh tokens):
///   answer `401 invalid_token` / `400 invalid_grant`;
/// - a store could not decide ([`KeyStore`](Error::KeyStore),
///   [`RefreshStore`](Error::RefreshStore)): answer `503` when
///   [`is_retryable`](Error::is_retryable), `500` otherwise — never a success;
/// - the service was configured in a contradictory or unsafe way
///   ([`Config`](Error::Config)), or a request was malformed
///   ([`InvalidRequest`](Error::InvalidRequest)).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A builder setting is missing, unsafe, or contradicts another one.
    #[error("invalid token service configuration: {setting}: {reason}")]
    Config {
        /// The setting at fault (e.g. `"access_ttl"`).
        setting: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An access token was refused (signature, expiry, issuer, audience, `typ`, …).
    #[error("invalid access token: {0}")]
    InvalidToken(#[source] jwt_core::Error),
    /// A refresh token was refused; the client must log in again (RFC 6749 §5.2 `invalid_grant`).
    #[error("invalid refresh token: {reason}")]
    InvalidGrant {
        /// Why it was refused.
        reason: GrantRefusal,
    },
    /// The request to issue tokens is malformed (reserved claim names, claims too large, …).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// The key store failed (signing, listing keys, rotating).
    #[error("key store error: {0}")]
    KeyStore(#[source] jwt_keys::Error),
    /// The refresh-token store failed; the refresh was NOT performed.
    #[error("refresh store error: {0}")]
    RefreshStore(#[source] jwt_refresh::Error),
    /// Signing or encoding a token failed in `jwt-core` (a key that cannot be used).
    #[error("token encoding error: {0}")]
    Encoding(#[source] jwt_core::Error),
    /// The system random number generator failed; nothing was issued.
    #[error("the system random number generator failed; no token was issued")]
    Random,
    /// Reading or writing the refresh-token key file failed.
    #[error("refresh key file {path}: {source}")]
    RefreshKeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// What kind of [`Error`] this is, without its details: cheap to copy, to
/// compare and to count in metrics. The names ([`ErrorKind::as_str`]) are
/// stable (`jwtkit serve` logs them).
///
/// The kind of the error *inside* (a token rejection's
/// [`jwt_core::ErrorKind`], a store's own kind) is on the inner error.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A builder setting is missing, unsafe, or contradicts another one.
    Config,
    /// An access token was refused.
    InvalidToken,
    /// A refresh token was refused.
    InvalidGrant,
    /// The request to issue tokens is malformed.
    InvalidRequest,
    /// The key store failed.
    KeyStore,
    /// The refresh-token store failed.
    RefreshStore,
    /// Signing or encoding a token failed in `jwt-core`.
    Encoding,
    /// The system random number generator failed.
    Random,
    /// Reading or writing the refresh-token key file failed.
    RefreshKeyFile,
}

impl ErrorKind {
    /// The stable snake_case name of this kind, e.g. `"invalid_grant"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::InvalidGrant => "invalid_grant",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::KeyStore => "key_store",
            ErrorKind::RefreshStore => "refresh_store",
            ErrorKind::Encoding => "encoding",
            ErrorKind::Random => "random",
            ErrorKind::RefreshKeyFile => "refresh_key_file",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares by stable name: `err.kind() == "invalid_grant"`.
impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a refresh token was refused. Every variant means the same thing to the
/// client (`invalid_grant`: log in again); they differ for logs and metrics.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRefusal {
    /// Not a refresh token of this service: bad signature, wrong `typ` (an
    /// access token presented as a refresh token), wrong issuer, malformed.
    /// Carries jwt-core's kind, e.g. [`jwt_core::ErrorKind::InvalidType`].
    Invalid(jwt_core::ErrorKind),
    /// The refresh token is past its `exp`, or its session reached its maximum lifetime.
    Expired,
    /// The store does not know this token (purged, or issued by another store).
    Unknown,
    /// The token or its session was revoked (logout, or an earlier reuse).
    Revoked,
    /// The token had already been used: the whole session is now revoked
    /// (a stolen token was replayed, or a client raced itself).
    Reused,
}

impl GrantRefusal {
    /// A stable snake_case name, e.g. `"reused"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            GrantRefusal::Invalid(_) => "invalid",
            GrantRefusal::Expired => "expired",
            GrantRefusal::Unknown => "unknown",
            GrantRefusal::Revoked => "revoked",
            GrantRefusal::Reused => "reused",
        }
    }
}

impl fmt::Display for GrantRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantRefusal::Invalid(kind) => {
                write!(f, "not a valid refresh token of this service ({kind})")
            }
            GrantRefusal::Expired => f.write_str("the refresh token has expired"),
            GrantRefusal::Unknown => f.write_str("the refresh token is unknown"),
            GrantRefusal::Revoked => f.write_str("the refresh token has been revoked"),
            GrantRefusal::Reused => {
                f.write_str("the refresh token was already used; the session has been revoked")
            }
        }
    }
}

impl Error {
    /// `true` when retrying the same call may succeed (a store was
    /// unreachable or timed out; the store's own `is_retryable` decides):
    /// answer HTTP 503. The same meaning as `is_retryable` in `jwt-keys` and
    /// `jwt-refresh`.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::KeyStore(e) => e.is_retryable(),
            Error::RefreshStore(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// `true` when the caller's token or request was refused (answer 4xx),
    /// `false` for store and configuration failures (answer 5xx).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            Error::InvalidToken(_) | Error::InvalidGrant { .. } | Error::InvalidRequest { .. }
        )
    }

    /// The kind of this error, with a stable snake_case name
    /// ([`ErrorKind::as_str`], e.g. `"invalid_grant"`, `"config"`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. } => ErrorKind::Config,
            Error::InvalidToken(_) => ErrorKind::InvalidToken,
            Error::InvalidGrant { .. } => ErrorKind::InvalidGrant,
            Error::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Error::KeyStore(_) => ErrorKind::KeyStore,
            Error::RefreshStore(_) => ErrorKind::RefreshStore,
            Error::Encoding(_) => ErrorKind::Encoding,
            Error::RefreshKeyFile { .. } => ErrorKind::RefreshKeyFile,
            Error::Random => ErrorKind::Random,
        }
    }

    pub(crate) fn config(setting: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            setting,
            reason: reason.into(),
        }
    }

    pub(crate) fn grant(reason: GrantRefusal) -> Self {
        Error::InvalidGrant { reason }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are stable (`jwtkit serve` logs them); a refused refresh
    /// token carries jwt-core's kind, shown by name.
    #[test]
    fn kinds_are_stable_and_grant_refusals_carry_the_core_kind() {
        let refusal = GrantRefusal::Invalid(jwt_core::ErrorKind::InvalidType);
        assert_eq!(refusal.as_str(), "invalid");
        assert_eq!(
            refusal.to_string(),
            "not a valid refresh token of this service (invalid_type)"
        );
        let err = Error::grant(refusal);
        assert_eq!(err.kind(), ErrorKind::InvalidGrant);
        assert_eq!(err.kind().as_str(), "invalid_grant");
        assert!(err.is_rejection() && !err.is_retryable());
        let err = Error::config("access_ttl", "zero");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(err.kind(), "config");
        assert_eq!(Error::Random.kind().to_string(), "random");
    }
}
