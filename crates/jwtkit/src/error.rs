//! The one error type of the `jwtkit` facade.

use std::fmt;

/// Errors of the [`TokenService`](crate::TokenService) and its builder.
///
/// Three families, told apart by [`Error::is_rejection`] and
/// [`Error::is_retryable`]:
/// - the caller's token was refused ([`InvalidToken`](Error::InvalidToken) for
///   access tokens, [`InvalidGrant`](Error::InvalidGrant) for refresh tokens,
///   [`Dpop`](Error::Dpop) for a DPoP proof or a token's key binding):
///   answer `401 invalid_token` / `400 invalid_grant` / the code of
///   [`Error::oauth_error`];
/// - a store could not decide ([`KeyStore`](Error::KeyStore),
///   [`RefreshStore`](Error::RefreshStore),
///   [`ReplayCache`](Error::ReplayCache)): answer `503` when
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
    /// A DPoP proof was refused, or the request's proof does not fit the
    /// token's key binding (RFC 9449): see [`DpopRefusal`] and
    /// [`Error::oauth_error`]. When [`Error::needs_dpop_nonce`], answer
    /// `use_dpop_nonce` with a fresh `DPoP-Nonce` header.
    #[error("{}", dpop_message(reason, source.as_ref()))]
    Dpop {
        /// Why.
        reason: DpopRefusal,
        /// jwt-core's refusal of the proof, for [`DpopRefusal::Proof`].
        #[source]
        source: Option<jwt_core::dpop::DpopError>,
    },
    /// The DPoP replay cache failed; the proof was NOT accepted (answer
    /// `503` when [`is_retryable`](Error::is_retryable)).
    #[error("DPoP replay cache error: {0}")]
    ReplayCache(#[source] jwt_refresh::Error),
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
    /// A DPoP proof or a token's key binding was refused.
    Dpop,
    /// The DPoP replay cache failed.
    ReplayCache,
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
            ErrorKind::Dpop => "dpop",
            ErrorKind::ReplayCache => "replay_cache",
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
    /// The session is bound to a DPoP key (RFC 9449 §5) and the refresh
    /// came without a proof, or with a proof of another key. The token was
    /// NOT consumed and the session is untouched: the holder of the key
    /// can still refresh with it.
    DpopKeyMismatch,
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
            GrantRefusal::DpopKeyMismatch => "dpop_key_mismatch",
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
            GrantRefusal::DpopKeyMismatch => f.write_str(
                "the refresh token is bound to a DPoP key (RFC 9449 §5) and the request's DPoP \
                 proof is missing or signed with another key; refresh with a proof signed by \
                 the key the session was bound to",
            ),
        }
    }
}

/// Why a DPoP proof, or a token's use with or without one, was refused
/// ([`Error::Dpop`]). [`as_str`](Self::as_str) names are stable, for logs
/// and metrics; [`Error::oauth_error`] gives the code to answer with.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DpopRefusal {
    /// The proof broke a rule of RFC 9449 §4.3 (jwt-core's kind; the
    /// source holds the details). `MissingNonce` and `InvalidNonce` ask the
    /// client to retry with the server's nonce (`use_dpop_nonce`).
    Proof(jwt_core::dpop::DpopErrorKind),
    /// The proof is valid but was presented before (its `jti` is in the
    /// replay cache, RFC 9449 §11.1).
    Replayed,
    /// The proof is signed with another key than the one the access token
    /// is bound to (its `cnf.jkt`, RFC 9449 §7.1), or the token is bound by
    /// another method than a DPoP key.
    KeyMismatch,
    /// An issuance or refresh without a proof, in DPoP mode `required`.
    ProofRequired,
    /// A request presents a token with `Authorization: DPoP` but has no
    /// `DPoP` header (RFC 9449 §7.1).
    MissingProof,
    /// The request carries more than one `DPoP` header (RFC 9449 §4.3).
    MultipleProofs,
    /// A DPoP-bound access token (with `cnf`) was presented as a bearer
    /// token, without a proof (RFC 9449 §7.2): a stolen bound token must
    /// not work as a bearer token.
    BoundTokenAsBearer,
    /// An access token that is not bound to a DPoP key was presented with
    /// `Authorization: DPoP`, or as a bearer token to a service in DPoP
    /// mode `required`.
    UnboundToken,
    /// DPoP is not enabled on this service ([`DpopMode::Off`](crate::DpopMode::Off)).
    NotEnabled,
}

impl DpopRefusal {
    /// A stable snake_case name, e.g. `"replayed"`; for
    /// [`Proof`](Self::Proof), `"proof"` (the proof's own kind is inside).
    pub fn as_str(&self) -> &'static str {
        match self {
            DpopRefusal::Proof(_) => "proof",
            DpopRefusal::Replayed => "replayed",
            DpopRefusal::KeyMismatch => "key_mismatch",
            DpopRefusal::ProofRequired => "proof_required",
            DpopRefusal::MissingProof => "missing_proof",
            DpopRefusal::MultipleProofs => "multiple_proofs",
            DpopRefusal::BoundTokenAsBearer => "bound_token_as_bearer",
            DpopRefusal::UnboundToken => "unbound_token",
            DpopRefusal::NotEnabled => "not_enabled",
        }
    }

    /// The most specific stable name: the proof's kind for
    /// [`Proof`](Self::Proof) (e.g. `"htu_mismatch"`), else
    /// [`as_str`](Self::as_str). What `jwtkit::axum` writes into its
    /// `error_description`.
    pub fn detail(&self) -> &'static str {
        match self {
            DpopRefusal::Proof(kind) => kind.as_str(),
            other => other.as_str(),
        }
    }

    /// The OAuth error code to answer with (RFC 9449 §7.1, §8, RFC 6750
    /// §3.1): `use_dpop_nonce`, `invalid_dpop_proof`, `invalid_token` or
    /// `invalid_request`.
    pub fn oauth_error(&self) -> &'static str {
        match self {
            DpopRefusal::Proof(
                jwt_core::dpop::DpopErrorKind::MissingNonce
                | jwt_core::dpop::DpopErrorKind::InvalidNonce,
            ) => "use_dpop_nonce",
            DpopRefusal::Proof(_)
            | DpopRefusal::Replayed
            | DpopRefusal::KeyMismatch
            | DpopRefusal::MissingProof
            | DpopRefusal::MultipleProofs => "invalid_dpop_proof",
            DpopRefusal::BoundTokenAsBearer | DpopRefusal::UnboundToken => "invalid_token",
            DpopRefusal::ProofRequired | DpopRefusal::NotEnabled => "invalid_request",
        }
    }
}

impl fmt::Display for DpopRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpopRefusal::Proof(kind) => write!(f, "the DPoP proof was refused ({kind})"),
            DpopRefusal::Replayed => f.write_str(
                "the DPoP proof was already presented (its jti was seen before); sign a new \
                 proof for every request (RFC 9449 §11.1)",
            ),
            DpopRefusal::KeyMismatch => f.write_str(
                "the DPoP proof is signed with another key than the one the access token is \
                 bound to (`cnf.jkt`); sign proofs with the key the token was issued for",
            ),
            DpopRefusal::ProofRequired => f.write_str(
                "a DPoP proof is required: this service issues DPoP-bound tokens only; send a \
                 proof in the `DPoP` header (RFC 9449 §4, §5)",
            ),
            DpopRefusal::MissingProof => f.write_str(
                "the request presents a token with `Authorization: DPoP` but has no `DPoP` \
                 header; send a proof for this request, with the token's hash (`ath`)",
            ),
            DpopRefusal::MultipleProofs => {
                f.write_str("the request has more than one `DPoP` header; send exactly one proof")
            }
            DpopRefusal::BoundTokenAsBearer => f.write_str(
                "the access token is bound to a DPoP key (`cnf`); present it with \
                 `Authorization: DPoP` and a proof, not as a bearer token (RFC 9449 §7.2)",
            ),
            DpopRefusal::UnboundToken => f.write_str(
                "the access token is not bound to a DPoP key (no `cnf.jkt`): present it with \
                 `Authorization: Bearer`, unless this service requires DPoP-bound tokens \
                 (then get a token with a DPoP proof)",
            ),
            DpopRefusal::NotEnabled => f.write_str(
                "DPoP is not enabled on this service (jwtkit serve --dpop off): send the request \
                 without a DPoP header, and access tokens as `Authorization: Bearer`",
            ),
        }
    }
}

/// `Error::Dpop`'s message: jwt-core's, which says what to fix, for a
/// proof that broke a rule; the refusal's otherwise.
fn dpop_message(reason: &DpopRefusal, source: Option<&jwt_core::dpop::DpopError>) -> String {
    match (reason, source) {
        (DpopRefusal::Proof(_), Some(source)) => source.to_string(),
        (reason, _) => reason.to_string(),
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
            Error::ReplayCache(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// `true` when the caller's token or request was refused (answer 4xx),
    /// `false` for store and configuration failures (answer 5xx).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            Error::InvalidToken(_)
                | Error::InvalidGrant { .. }
                | Error::InvalidRequest { .. }
                | Error::Dpop { .. }
        )
    }

    /// The OAuth error code for a rejection (RFC 6749 §5.2, RFC 6750 §3.1,
    /// RFC 9449 §7.1): `invalid_token`, `invalid_grant`, `invalid_request`,
    /// `invalid_dpop_proof` or `use_dpop_nonce`; `None` for store and
    /// setup failures (answer 5xx).
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            Error::InvalidToken(_) => Some("invalid_token"),
            Error::InvalidGrant { .. } => Some("invalid_grant"),
            Error::InvalidRequest { .. } => Some("invalid_request"),
            Error::Dpop { reason, .. } => Some(reason.oauth_error()),
            _ => None,
        }
    }

    /// `true` when the client must retry with the server's current nonce:
    /// answer `use_dpop_nonce` with a `DPoP-Nonce` header
    /// ([`TokenService::dpop_nonce`](crate::TokenService::dpop_nonce)),
    /// RFC 9449 §8 and §9.
    pub fn needs_dpop_nonce(&self) -> bool {
        matches!(
            self,
            Error::Dpop {
                reason: DpopRefusal::Proof(
                    jwt_core::dpop::DpopErrorKind::MissingNonce
                        | jwt_core::dpop::DpopErrorKind::InvalidNonce
                ),
                ..
            }
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
            Error::Dpop { .. } => ErrorKind::Dpop,
            Error::ReplayCache(_) => ErrorKind::ReplayCache,
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

    pub(crate) fn dpop(reason: DpopRefusal) -> Self {
        Error::Dpop {
            reason,
            source: None,
        }
    }

    pub(crate) fn dpop_proof(source: jwt_core::dpop::DpopError) -> Self {
        if source.is_rejection() {
            Error::Dpop {
                reason: DpopRefusal::Proof(source.kind()),
                source: Some(source),
            }
        } else {
            // The verifier's own setup (an htu the server gave that is not
            // a URI): the server's fault, not the proof's.
            Error::config("dpop", source.to_string())
        }
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

    /// Each DPoP refusal answers with the code RFC 9449 (§7.1, §8) or RFC
    /// 6750 gives it; only a missing or stale nonce asks for a retry with one.
    #[test]
    fn dpop_refusals_answer_with_the_rfc_codes() {
        use jwt_core::dpop::DpopErrorKind;
        let cases = [
            (
                DpopRefusal::Proof(DpopErrorKind::HtuMismatch),
                "invalid_dpop_proof",
                "htu_mismatch",
            ),
            (
                DpopRefusal::Proof(DpopErrorKind::MissingNonce),
                "use_dpop_nonce",
                "missing_nonce",
            ),
            (
                DpopRefusal::Proof(DpopErrorKind::InvalidNonce),
                "use_dpop_nonce",
                "invalid_nonce",
            ),
            (DpopRefusal::Replayed, "invalid_dpop_proof", "replayed"),
            (
                DpopRefusal::KeyMismatch,
                "invalid_dpop_proof",
                "key_mismatch",
            ),
            (
                DpopRefusal::MissingProof,
                "invalid_dpop_proof",
                "missing_proof",
            ),
            (
                DpopRefusal::MultipleProofs,
                "invalid_dpop_proof",
                "multiple_proofs",
            ),
            (
                DpopRefusal::BoundTokenAsBearer,
                "invalid_token",
                "bound_token_as_bearer",
            ),
            (DpopRefusal::UnboundToken, "invalid_token", "unbound_token"),
            (
                DpopRefusal::ProofRequired,
                "invalid_request",
                "proof_required",
            ),
            (DpopRefusal::NotEnabled, "invalid_request", "not_enabled"),
        ];
        for (refusal, code, detail) in cases {
            let err = Error::dpop(refusal);
            assert_eq!(err.oauth_error(), Some(code), "{refusal:?}");
            assert_eq!(refusal.detail(), detail);
            assert_eq!(err.needs_dpop_nonce(), code == "use_dpop_nonce");
            assert!(err.is_rejection() && !err.is_retryable());
            assert_eq!(err.kind(), "dpop");
        }
        assert_eq!(GrantRefusal::DpopKeyMismatch.as_str(), "dpop_key_mismatch");
        assert_eq!(
            Error::grant(GrantRefusal::DpopKeyMismatch).oauth_error(),
            Some("invalid_grant")
        );
    }
}
