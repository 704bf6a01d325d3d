//! The one error type of `jwt-core`.
//!
//! Token rejections (a token that is not acceptable) and configuration errors
//! (a key or setting that cannot be used) are kept apart by [`Error::is_rejection`]:
//! the `jwtkit` command exits 1 for the former and 2 for the latter.

use crate::Algorithm;

/// What went wrong, as a stable machine-readable name.
///
/// The names (see [`ErrorKind::as_str`]) are the ones the `jwtkit verify --json`
/// command prints in its `"error"` member; scripts depend on them.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The token is not a well-formed compact JWS/JWT.
    Malformed,
    /// The signature does not match.
    InvalidSignature,
    /// The token's algorithm is not allowed, or does not match the key.
    InvalidAlgorithm,
    /// No key is known for the token's `kid`.
    UnknownKey,
    /// The token has expired (`exp`).
    Expired,
    /// The token is not valid yet (`nbf`, or `iat` in the future).
    Immature,
    /// `iss` is not one of the accepted issuers.
    InvalidIssuer,
    /// `aud` does not name an accepted audience.
    InvalidAudience,
    /// `sub` is not the expected subject.
    InvalidSubject,
    /// The header's `typ` is not the expected type.
    InvalidType,
    /// A required claim is absent.
    MissingClaim,
    /// A claim has the wrong JSON type or an invalid value.
    InvalidClaim,
    /// The token uses a feature this library refuses (`crit`, `b64:false`, …).
    Unsupported,
    /// The token exceeds the configured size limit.
    TooLarge,
    /// A key could not be parsed or used (configuration error).
    InvalidKey,
    /// A key is too weak for its algorithm (configuration error).
    WeakKey,
    /// An invalid or contradictory setting (configuration error).
    Config,
    /// Claims could not be serialized when signing.
    Serialization,
    /// The cryptographic backend failed unexpectedly.
    Crypto,
}

impl ErrorKind {
    /// The stable snake_case name of this kind, e.g. `"invalid_signature"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "malformed",
            ErrorKind::InvalidSignature => "invalid_signature",
            ErrorKind::InvalidAlgorithm => "invalid_algorithm",
            ErrorKind::UnknownKey => "unknown_key",
            ErrorKind::Expired => "expired",
            ErrorKind::Immature => "immature",
            ErrorKind::InvalidIssuer => "invalid_issuer",
            ErrorKind::InvalidAudience => "invalid_audience",
            ErrorKind::InvalidSubject => "invalid_subject",
            ErrorKind::InvalidType => "invalid_type",
            ErrorKind::MissingClaim => "missing_claim",
            ErrorKind::InvalidClaim => "invalid_claim",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::WeakKey => "weak_key",
            ErrorKind::Config => "config",
            ErrorKind::Serialization => "serialization",
            ErrorKind::Crypto => "crypto",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors from parsing keys, signing, and verifying tokens.
///
/// Every message says what was wrong and what to do about it.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token is not a well-formed compact JWS.
    #[error("malformed token: {reason}; a JWT is three base64url parts (header.payload.signature) without padding or whitespace")]
    Malformed {
        /// What exactly is malformed.
        reason: String,
    },
    /// The signature did not verify with the selected key.
    #[error("invalid signature: the token was not signed by the key{} or was altered; check that the verifier uses the issuer's current key", kid.as_deref().map(|k| format!(" {}", Shown(k))).unwrap_or_default())]
    InvalidSignature {
        /// The `kid` of the key that was tried, when known.
        kid: Option<String>,
    },
    /// The token's algorithm is not acceptable.
    #[error("invalid algorithm: {reason}")]
    InvalidAlgorithm {
        /// Why the algorithm was refused.
        reason: String,
    },
    /// No key matches the token's `kid`.
    #[error("{}", unknown_key_message(kid.as_deref()))]
    UnknownKey {
        /// The token's `kid`, if it had one.
        kid: Option<String>,
    },
    /// `now >= exp + leeway`.
    #[error(
        "expired: the token expired at {exp} (now {now}, leeway {leeway}s); obtain a new token"
    )]
    Expired {
        /// The token's `exp`, in whole seconds (a fractional NumericDate is
        /// rounded down), the one timestamp type of the crates.
        exp: crate::time::UnixTime,
        /// The verifier's clock.
        now: crate::time::UnixTime,
        /// The leeway in seconds.
        leeway: u64,
    },
    /// `now < nbf - leeway` (or `iat` in the future).
    #[error("immature: the token's `{claim}` is {value} but now is {now} (leeway {leeway}s); it is not valid yet — check the clocks of issuer and verifier")]
    Immature {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// The claim's value.
        value: f64,
        /// The verifier's clock.
        now: i64,
        /// The leeway in seconds.
        leeway: u64,
    },
    /// `iss` not accepted.
    #[error(
        "invalid issuer: {} is not an accepted issuer (accepted: {expected:?})",
        Shown(found)
    )]
    InvalidIssuer {
        /// The token's `iss`.
        found: String,
        /// The accepted issuers.
        expected: Vec<String>,
    },
    /// `aud` not accepted.
    #[error("invalid audience: {reason}")]
    InvalidAudience {
        /// Why the audience was refused.
        reason: String,
    },
    /// `sub` not the expected subject.
    #[error("invalid subject: {reason}")]
    InvalidSubject {
        /// Why the subject was refused.
        reason: String,
    },
    /// Header `typ` mismatch.
    #[error("invalid type: the header `typ` is {}, expected {expected:?}; tokens of another kind (e.g. a refresh token presented as an access token) are refused", found.as_deref().map(|f| Shown(f).to_string()).unwrap_or_else(|| "absent".into()))]
    InvalidType {
        /// The token's `typ`, if any.
        found: Option<String>,
        /// The expected `typ`.
        expected: String,
    },
    /// A required claim is absent.
    #[error("missing claim: the token has no `{claim}` claim, which is required")]
    MissingClaim {
        /// The claim's name.
        claim: String,
    },
    /// A claim is present but has an invalid type or value.
    #[error("invalid claim `{claim}`: {reason}")]
    InvalidClaim {
        /// The claim's name (or `"payload"` when the payload as a whole did not fit).
        claim: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A feature this library deliberately refuses.
    #[error("unsupported: {reason}")]
    Unsupported {
        /// What is refused and why.
        reason: String,
    },
    /// The token exceeds the size limit.
    #[error("too large: the token is {size} bytes, over the limit of {limit}; raise the limit only if your tokens really are this big")]
    TooLarge {
        /// The token's length.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A key could not be parsed or used.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// What is wrong with the key.
        reason: String,
    },
    /// The key is too weak.
    #[error("weak key: {reason}")]
    WeakKey {
        /// Why the key is too weak and what is required.
        reason: String,
    },
    /// The key cannot be used with the algorithm.
    #[error("key/algorithm mismatch: an {key_type}{} cannot be used with {alg}; {hint}", if key_type.ends_with("secret") { "" } else { " key" })]
    IncompatibleKey {
        /// The algorithm requested.
        alg: Algorithm,
        /// The key's type, e.g. `"EC P-256"`.
        key_type: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// Invalid or contradictory configuration.
    #[error("configuration error: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// Claims or header could not be serialized.
    #[error(
        "could not serialize the claims to JSON: {source}; claims must serialize to a JSON object"
    )]
    Serialization {
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The cryptographic library failed (should not happen with valid keys).
    #[error("cryptographic operation failed: {what}")]
    Crypto {
        /// Which operation.
        what: &'static str,
    },
}

impl Error {
    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Malformed { .. } => ErrorKind::Malformed,
            Error::InvalidSignature { .. } => ErrorKind::InvalidSignature,
            Error::InvalidAlgorithm { .. } => ErrorKind::InvalidAlgorithm,
            Error::UnknownKey { .. } => ErrorKind::UnknownKey,
            Error::Expired { .. } => ErrorKind::Expired,
            Error::Immature { .. } => ErrorKind::Immature,
            Error::InvalidIssuer { .. } => ErrorKind::InvalidIssuer,
            Error::InvalidAudience { .. } => ErrorKind::InvalidAudience,
            Error::InvalidSubject { .. } => ErrorKind::InvalidSubject,
            Error::InvalidType { .. } => ErrorKind::InvalidType,
            Error::MissingClaim { .. } => ErrorKind::MissingClaim,
            Error::InvalidClaim { .. } => ErrorKind::InvalidClaim,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::InvalidKey { .. } | Error::IncompatibleKey { .. } => ErrorKind::InvalidKey,
            Error::WeakKey { .. } => ErrorKind::WeakKey,
            Error::Config { .. } => ErrorKind::Config,
            Error::Serialization { .. } => ErrorKind::Serialization,
            Error::Crypto { .. } => ErrorKind::Crypto,
        }
    }

    /// `true` when the *token* was rejected (the caller should answer 401 or
    /// ask for a new token); `false` for configuration, key and internal errors.
    pub fn is_rejection(&self) -> bool {
        !matches!(
            self.kind(),
            ErrorKind::InvalidKey
                | ErrorKind::WeakKey
                | ErrorKind::Config
                | ErrorKind::Serialization
                | ErrorKind::Crypto
        )
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Error::Malformed {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_key(reason: impl Into<String>) -> Self {
        Error::InvalidKey {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_claim(claim: &str, reason: impl Into<String>) -> Self {
        Error::InvalidClaim {
            claim: claim.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Error::Config {
            reason: reason.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message of [`Error::UnknownKey`]: the advice differs for a token
/// without `kid`, which no refresh of the key set can help.
/// A value the token supplied, as messages show it: Debug-quoted (its
/// control characters must not reach a log or a terminal raw) and cut to
/// [`Shown::MAX`] characters, so a hostile token cannot make a message of
/// tens of kilobytes.
pub(crate) struct Shown<'a>(pub(crate) &'a str);

impl Shown<'_> {
    /// The characters shown of one value.
    const MAX: usize = 120;
}

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.char_indices().nth(Self::MAX) {
            None => write!(f, "{:?}", self.0),
            Some((at, _)) => write!(f, "{:?}… ({} bytes)", &self.0[..at], self.0.len()),
        }
    }
}

fn unknown_key_message(kid: Option<&str>) -> String {
    match kid {
        // Debug-quoted: the kid comes from the token, and its control
        // characters must not reach a log or a terminal raw.
        Some(kid) => format!(
            "unknown key: no verification key has kid {}; the token was not signed by one of \
             the verifier's current keys (a key the issuer has not published yet or has \
             retired, or another issuer's key)",
            Shown(kid)
        ),
        None => "unknown key: the token has no kid and the key set has several keys, so none \
                 can be chosen; have the issuer put a kid in its tokens, or verify with the one \
                 key that signed them"
            .to_owned(),
    }
}
