//! DPoP proofs (RFC 9449): proof-of-possession JWTs that bind a request to a
//! key the client holds.
//!
//! A client signs one proof per request with its own key and sends it in the
//! `DPoP` header; the proof carries the public key (`jwk` header), the
//! request's method (`htm`) and URI (`htu`), a time (`iat`), a unique id
//! (`jti`) and, with an access token, the token's hash (`ath`). A server
//! checks it with a [`DpopVerifier`] (RFC 9449 §4.3), then
//! - checks the `jti` against a replay cache until
//!   [`DpopProof::replay_until`] (`jwt_refresh::replay` has one in memory and
//!   on Redis; this crate does no I/O);
//! - binds tokens to [`DpopProof::jkt`], the RFC 7638 thumbprint of the key
//!   (`cnf.jkt`, RFC 9449 §6), or checks a token's `cnf.jkt` against it.
//!
//! Proofs are held to the rules of every other JWS in jwtkit (size cap,
//! canonical base64url, no duplicate JSON members, bounded depth, no `crit`),
//! through the same parser. Every refusal has its own [`DpopErrorKind`].
//!
//! ```
//! use jwt_core::dpop::{ath_of, DpopProof, DpopRequest, DpopVerifier};
//! use jwt_core::{Algorithm, SigningKey};
//!
//! // Client: one proof per request.
//! let key = SigningKey::generate(Algorithm::ES256)?;
//! let token = "an access token";
//! let proof = DpopProof::builder(&key, Algorithm::ES256)
//!     .htm("GET")
//!     .htu("https://api.example.com/userinfo")
//!     .ath(token)
//!     .sign()?;
//!
//! // Server: checks the proof against the request it came with.
//! let verifier = DpopVerifier::new([Algorithm::ES256, Algorithm::RS256])?;
//! let request = DpopRequest::new("GET", "https://API.example.com:443/userinfo?x=1")
//!     .access_token(token);
//! let checked = verifier.verify(&proof, &request)?;
//! assert_eq!(checked.jkt(), key.thumbprint()?);
//! assert_eq!(ath_of(token).len(), 43);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize as _;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::b64;
use crate::error::{Error, ErrorKind, Shown};
use crate::header::Header;
use crate::jwk::Jwk;
use crate::jws;
use crate::key::{SigningKey, VerifyingKey};
use crate::time::{Clock, SystemClock, UnixTime};

/// The `typ` of every DPoP proof (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// The default window around now in which a proof's `iat` is accepted, on
/// either side: 60 seconds.
pub const DEFAULT_IAT_WINDOW: Duration = Duration::from_secs(60);

/// The widest `iat` window a [`DpopVerifier`] accepts (one hour, on either
/// side): the replay cache must remember every `jti` for as long as its proof
/// is acceptable, so the window bounds its size.
pub const MAX_IAT_WINDOW: Duration = Duration::from_secs(3600);

/// The default size limit of a proof: 8 KiB, several times an RSA-4096 proof.
pub const DEFAULT_MAX_PROOF_SIZE: usize = 8 * 1024;

/// Member names that only a private or symmetric JWK has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What was wrong with a proof (or a verifier's setup), as a stable name.
///
/// Every refusal rule of RFC 9449 §4.3 has its own kind, so a server can
/// count them and a test can tell them apart. [`DpopError::needs_nonce`]
/// says which ones a server answers with `use_dpop_nonce` (RFC 9449 §8);
/// every other rejection is `invalid_dpop_proof`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DpopErrorKind {
    /// Not a well-formed compact JWS: parts, base64url, JSON (duplicate
    /// members, depth), `crit`, an unknown `alg`.
    Malformed,
    /// Longer than the verifier's size limit.
    TooLarge,
    /// The header `typ` is not `dpop+jwt`.
    InvalidType,
    /// `alg` is symmetric, not allowed here, or does not fit the `jwk`.
    InvalidAlgorithm,
    /// The `jwk` header is absent, not a usable public key, or too weak.
    InvalidKey,
    /// The `jwk` header holds private key material.
    PrivateKey,
    /// The signature does not verify with the `jwk`.
    InvalidSignature,
    /// A required claim (`jti`, `htm`, `htu`, `iat`) is absent.
    MissingClaim,
    /// A claim has the wrong JSON type or an unusable value.
    InvalidClaim,
    /// `htm` is not the request's method.
    HtmMismatch,
    /// `htu` is not the request's URI.
    HtuMismatch,
    /// `iat` is older than the window allows.
    IatTooOld,
    /// `iat` is further in the future than the window allows.
    IatInFuture,
    /// An access token came with the request but the proof has no `ath`.
    MissingAth,
    /// `ath` is not the hash of the access token that came with the request.
    AthMismatch,
    /// The server requires a nonce and the proof has none.
    MissingNonce,
    /// The proof's `nonce` is not one the server issued (or still accepts).
    InvalidNonce,
    /// The verifier's setup is wrong (not a rejection of the proof).
    Config,
}

impl DpopErrorKind {
    /// The stable snake_case name, e.g. `"htu_mismatch"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DpopErrorKind::Malformed => "malformed",
            DpopErrorKind::TooLarge => "too_large",
            DpopErrorKind::InvalidType => "invalid_type",
            DpopErrorKind::InvalidAlgorithm => "invalid_algorithm",
            DpopErrorKind::InvalidKey => "invalid_key",
            DpopErrorKind::PrivateKey => "private_key",
            DpopErrorKind::InvalidSignature => "invalid_signature",
            DpopErrorKind::MissingClaim => "missing_claim",
            DpopErrorKind::InvalidClaim => "invalid_claim",
            DpopErrorKind::HtmMismatch => "htm_mismatch",
            DpopErrorKind::HtuMismatch => "htu_mismatch",
            DpopErrorKind::IatTooOld => "iat_too_old",
            DpopErrorKind::IatInFuture => "iat_in_future",
            DpopErrorKind::MissingAth => "missing_ath",
            DpopErrorKind::AthMismatch => "ath_mismatch",
            DpopErrorKind::MissingNonce => "missing_nonce",
            DpopErrorKind::InvalidNonce => "invalid_nonce",
            DpopErrorKind::Config => "config",
        }
    }
}

impl fmt::Display for DpopErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a DPoP proof was refused, or why a [`DpopVerifier`] could not be set up.
///
/// Messages say what was wrong and what the client should do; values taken
/// from the proof are quoted and cut short, never echoed raw.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DpopError {
    /// The proof is not a well-formed compact JWS (or is too large): the
    /// source is jwt-core's error, whose kind says which rule it broke.
    #[error("invalid DPoP proof: {source}")]
    Malformed {
        /// jwt-core's error (`malformed`, `too_large`, `unsupported`).
        #[source]
        source: Error,
    },
    /// The header `typ` is not `dpop+jwt`.
    #[error("invalid DPoP proof: the header `typ` is {}, but a DPoP proof has `typ` \"dpop+jwt\" (RFC 9449 §4.2); send a proof, not an access token or another JWT, in the DPoP header", found.as_deref().map(|f| Shown(f).to_string()).unwrap_or_else(|| "absent".into()))]
    InvalidType {
        /// The proof's `typ`, if any.
        found: Option<String>,
    },
    /// The algorithm cannot be used.
    #[error("invalid DPoP proof: {reason}")]
    InvalidAlgorithm {
        /// Why, with the algorithms this server accepts.
        reason: String,
    },
    /// The `jwk` header is absent or unusable.
    #[error("invalid DPoP proof: {reason}")]
    InvalidKey {
        /// What is wrong with the key.
        reason: String,
    },
    /// The `jwk` header holds a private key.
    #[error("invalid DPoP proof: the `jwk` header holds private key material (`{member}`); a proof carries the PUBLIC key only (RFC 9449 §4.2) — the private key has been exposed and must be replaced")]
    PrivateKey {
        /// The private member found.
        member: &'static str,
    },
    /// The signature does not verify.
    #[error("invalid DPoP proof: the signature does not verify with the key in the `jwk` header; the proof was altered or signed with another key")]
    InvalidSignature,
    /// A required claim is absent.
    #[error("invalid DPoP proof: the `{claim}` claim is missing; a proof carries `jti`, `htm`, `htu` and `iat` (RFC 9449 §4.2)")]
    MissingClaim {
        /// The claim.
        claim: &'static str,
    },
    /// A claim has the wrong type or value.
    #[error("invalid DPoP proof: the `{claim}` claim {reason}")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `htm` is not the request's method.
    #[error("invalid DPoP proof: `htm` is {}, but the request's method is {expected:?}; sign a new proof for this request (methods are case-sensitive)", Shown(found))]
    HtmMismatch {
        /// The proof's `htm`.
        found: String,
        /// The request's method.
        expected: String,
    },
    /// `htu` is not the request's URI.
    #[error("invalid DPoP proof: `htu` is {}, but the request was sent to {expected:?} (compared without query and fragment, after RFC 3986 normalization); sign the proof for the URI the request goes to{}", Shown(found), reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    HtuMismatch {
        /// The proof's `htu`.
        found: String,
        /// The request's URI, normalized, as the server compares it.
        expected: String,
        /// Why the proof's `htu` could not be read as a URI, if it could not.
        reason: Option<String>,
    },
    /// `iat` is too old.
    #[error("invalid DPoP proof: it was issued at {iat}, {age}s before now ({now}), and proofs are accepted for {max_age}s; sign a fresh proof for every request (and check the client's clock)")]
    IatTooOld {
        /// The proof's `iat`.
        iat: UnixTime,
        /// The server's clock.
        now: UnixTime,
        /// How old it is.
        age: i64,
        /// The window, in seconds.
        max_age: u64,
    },
    /// `iat` is too far in the future.
    #[error("invalid DPoP proof: it was issued at {iat}, {ahead}s after now ({now}), more than the {max_future}s allowed; check the client's clock")]
    IatInFuture {
        /// The proof's `iat`.
        iat: UnixTime,
        /// The server's clock.
        now: UnixTime,
        /// How far ahead it is.
        ahead: i64,
        /// The window, in seconds.
        max_future: u64,
    },
    /// An access token came without `ath`.
    #[error("invalid DPoP proof: the request presents an access token but the proof has no `ath`; a proof sent with an access token carries its hash, base64url(SHA-256(token)) (RFC 9449 §4.2)")]
    MissingAth,
    /// `ath` does not match the access token.
    #[error("invalid DPoP proof: `ath` is not the hash of the access token sent with it; sign the proof with `ath` = base64url(SHA-256(the access token sent))")]
    AthMismatch,
    /// A nonce is required and the proof has none.
    #[error("DPoP nonce required: this server requires a `nonce` claim in proofs; retry with the nonce from the DPoP-Nonce response header (RFC 9449 §8)")]
    MissingNonce,
    /// The nonce is not the server's.
    #[error("invalid DPoP nonce: the proof's `nonce` is not one this server issued or still accepts; retry with the nonce from the latest DPoP-Nonce response header (RFC 9449 §8)")]
    InvalidNonce,
    /// The verifier's setup is wrong.
    #[error("DPoP configuration error: {reason}")]
    Config {
        /// What is wrong and what to do.
        reason: String,
    },
}

impl DpopError {
    /// The stable kind of this error.
    pub fn kind(&self) -> DpopErrorKind {
        match self {
            DpopError::Malformed { source } if source.kind() == ErrorKind::TooLarge => {
                DpopErrorKind::TooLarge
            }
            DpopError::Malformed { .. } => DpopErrorKind::Malformed,
            DpopError::InvalidType { .. } => DpopErrorKind::InvalidType,
            DpopError::InvalidAlgorithm { .. } => DpopErrorKind::InvalidAlgorithm,
            DpopError::InvalidKey { .. } => DpopErrorKind::InvalidKey,
            DpopError::PrivateKey { .. } => DpopErrorKind::PrivateKey,
            DpopError::InvalidSignature => DpopErrorKind::InvalidSignature,
            DpopError::MissingClaim { .. } => DpopErrorKind::MissingClaim,
            DpopError::InvalidClaim { .. } => DpopErrorKind::InvalidClaim,
            DpopError::HtmMismatch { .. } => DpopErrorKind::HtmMismatch,
            DpopError::HtuMismatch { .. } => DpopErrorKind::HtuMismatch,
            DpopError::IatTooOld { .. } => DpopErrorKind::IatTooOld,
            DpopError::IatInFuture { .. } => DpopErrorKind::IatInFuture,
            DpopError::MissingAth => DpopErrorKind::MissingAth,
            DpopError::AthMismatch => DpopErrorKind::AthMismatch,
            DpopError::MissingNonce => DpopErrorKind::MissingNonce,
            DpopError::InvalidNonce => DpopErrorKind::InvalidNonce,
            DpopError::Config { .. } => DpopErrorKind::Config,
        }
    }

    /// `true` when the proof was refused (answer 401 / 400); `false` for a
    /// verifier set up wrong (answer 500).
    pub fn is_rejection(&self) -> bool {
        self.kind() != DpopErrorKind::Config
    }

    /// `true` when the server should answer `use_dpop_nonce` with a fresh
    /// `DPoP-Nonce` header (RFC 9449 §8, §9): the nonce is missing or stale.
    pub fn needs_nonce(&self) -> bool {
        matches!(
            self.kind(),
            DpopErrorKind::MissingNonce | DpopErrorKind::InvalidNonce
        )
    }

    /// The OAuth error code to answer with (RFC 9449 §7.1, §8):
    /// `use_dpop_nonce`, `invalid_dpop_proof`, or `None` for a setup error.
    pub fn oauth_error(&self) -> Option<&'static str> {
        if self.needs_nonce() {
            Some("use_dpop_nonce")
        } else if self.is_rejection() {
            Some("invalid_dpop_proof")
        } else {
            None
        }
    }

    fn config(reason: impl Into<String>) -> Self {
        DpopError::Config {
            reason: reason.into(),
        }
    }
}

/// `ath` for an access token: base64url(SHA-256(token)), RFC 9449 §4.2.
///
/// ```
/// // RFC 9449 §7.1's example token and its `ath`.
/// assert_eq!(
///     jwt_core::dpop::ath_of("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
///     "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
/// );
/// ```
pub fn ath_of(access_token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    b64::encode(digest.as_ref())
}

/// How a request's nonce is checked.
#[derive(Clone, Copy)]
enum NonceRule<'a> {
    Off,
    Exact(&'a str),
    Check(&'a (dyn Fn(&str) -> bool + Sync)),
}

/// The request a proof came with: method, URI, and optionally the access
/// token presented with it and the nonce the server expects.
///
/// `Debug` never shows the access token.
#[derive(Clone, Copy)]
pub struct DpopRequest<'a> {
    method: &'a str,
    uri: &'a str,
    access_token: Option<&'a str>,
    nonce: NonceRule<'a>,
}

impl fmt::Debug for DpopRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("access_token", &self.access_token.map(|_| "<redacted>"))
            .field(
                "nonce",
                &match self.nonce {
                    NonceRule::Off => "off",
                    NonceRule::Exact(_) => "exact",
                    NonceRule::Check(_) => "check",
                },
            )
            .finish()
    }
}

impl<'a> DpopRequest<'a> {
    /// A request by its method (`GET`, case-sensitive) and the absolute URI
    /// it was sent to, as the client saw it (`https://api.example.com/me`;
    /// behind a proxy, the public URI, not the internal one). A query and
    /// fragment are ignored.
    pub fn new(method: &'a str, uri: &'a str) -> Self {
        DpopRequest {
            method,
            uri,
            access_token: None,
            nonce: NonceRule::Off,
        }
    }

    /// The access token presented with the request (`Authorization: DPoP
    /// TOKEN`): the proof must then carry its hash in `ath`.
    pub fn access_token(mut self, token: &'a str) -> Self {
        self.access_token = Some(token);
        self
    }

    /// Requires the proof's `nonce` to be exactly `expected` (the server's
    /// current nonce).
    pub fn nonce(mut self, expected: &'a str) -> Self {
        self.nonce = NonceRule::Exact(expected);
        self
    }

    /// Requires a `nonce` that `accepts` accepts: for servers that rotate
    /// nonces and accept the previous one for a while, or derive them.
    pub fn nonce_check(mut self, accepts: &'a (dyn Fn(&str) -> bool + Sync)) -> Self {
        self.nonce = NonceRule::Check(accepts);
        self
    }
}

/// Checks DPoP proofs (RFC 9449 §4.3). Synchronous, no I/O: the replay check
/// of the `jti` is the caller's (with a replay cache, until
/// [`DpopProof::replay_until`]).
///
/// Defaults: `iat` within ±60 s of the clock ([`DEFAULT_IAT_WINDOW`]),
/// proofs up to 8 KiB ([`DEFAULT_MAX_PROOF_SIZE`]), the system clock.
#[derive(Debug, Clone)]
pub struct DpopVerifier {
    algorithms: Vec<Algorithm>,
    max_age: u64,
    max_future: u64,
    max_size: usize,
    clock: Arc<dyn Clock>,
}

impl DpopVerifier {
    /// A verifier accepting proofs signed with `algorithms`, which must be
    /// asymmetric (RFC 9449 §4.2: never `none` or a MAC) and not empty.
    pub fn new(algorithms: impl IntoIterator<Item = Algorithm>) -> Result<Self, DpopError> {
        let mut algorithms: Vec<Algorithm> = algorithms.into_iter().collect();
        algorithms.sort();
        algorithms.dedup();
        if algorithms.is_empty() {
            return Err(DpopError::config(
                "no algorithm is allowed for DPoP proofs; name the ones your clients sign with \
                 (ES256 is the most common, RS256 and EdDSA are others)",
            ));
        }
        if let Some(alg) = algorithms.iter().find(|a| a.is_symmetric()) {
            return Err(DpopError::config(format!(
                "{alg} is symmetric: a DPoP proof must be signed with the client's private key \
                 (RFC 9449 §4.2), so allow only asymmetric algorithms (ES256, RS256, PS256, EdDSA, …)"
            )));
        }
        Ok(DpopVerifier {
            algorithms,
            max_age: DEFAULT_IAT_WINDOW.as_secs(),
            max_future: DEFAULT_IAT_WINDOW.as_secs(),
            max_size: DEFAULT_MAX_PROOF_SIZE,
            clock: Arc::new(SystemClock),
        })
    }

    /// Accepts an `iat` up to `max_age` in the past and `max_future` in the
    /// future (clock skew). Each at most [`MAX_IAT_WINDOW`]; `max_age` at
    /// least one second.
    pub fn iat_window(
        mut self,
        max_age: Duration,
        max_future: Duration,
    ) -> Result<Self, DpopError> {
        for (name, d) in [("max_age", max_age), ("max_future", max_future)] {
            if d > MAX_IAT_WINDOW {
                return Err(DpopError::config(format!(
                    "the iat window's {name} is {}s, over the {}s maximum: every jti must be \
                     remembered for as long as its proof is acceptable, so a long window makes \
                     the replay cache large; proofs are made per request, and a minute is usual",
                    d.as_secs(),
                    MAX_IAT_WINDOW.as_secs()
                )));
            }
        }
        if max_age.as_secs() == 0 {
            return Err(DpopError::config(
                "the iat window's max_age must be at least 1 s (a proof made this second)",
            ));
        }
        self.max_age = max_age.as_secs();
        self.max_future = max_future.as_secs();
        Ok(self)
    }

    /// Refuses proofs longer than `bytes` before decoding anything.
    pub fn max_size(mut self, bytes: usize) -> Result<Self, DpopError> {
        if bytes == 0 {
            return Err(DpopError::config("the maximum proof size must be above 0"));
        }
        self.max_size = bytes;
        Ok(self)
    }

    /// Uses `clock` instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The accepted algorithms (for `WWW-Authenticate: DPoP algs="…"` and
    /// `dpop_signing_alg_values_supported`).
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// How long, in seconds, a proof is accepted after its `iat`.
    pub fn max_age_secs(&self) -> u64 {
        self.max_age
    }

    /// Checks `proof` against `request` (RFC 9449 §4.3, in its order: the
    /// JWS, `typ`, `alg`, the `jwk` (public, fitting `alg`), the signature,
    /// the claims, `htm`, `htu`, `nonce`, `iat`, `ath`).
    pub fn verify(&self, proof: &str, request: &DpopRequest<'_>) -> Result<DpopProof, DpopError> {
        let parts = jws::split(proof, self.max_size).map_err(jws_error)?;
        let header = &parts.header;
        if header.typ.as_deref() != Some(DPOP_TYP) {
            return Err(DpopError::InvalidType {
                found: header.typ.as_deref().map(str::to_owned),
            });
        }
        let alg = header.alg;
        if alg.is_symmetric() {
            return Err(DpopError::InvalidAlgorithm {
                reason: format!(
                    "the proof is signed with {alg}, a MAC; a DPoP proof is signed with the \
                     client's private key (accepted here: {})",
                    self.algorithm_list()
                ),
            });
        }
        if !self.algorithms.contains(&alg) {
            return Err(DpopError::InvalidAlgorithm {
                reason: format!(
                    "the proof is signed with {alg}, which this server does not accept for DPoP \
                     (accepted: {}); sign with one of those",
                    self.algorithm_list()
                ),
            });
        }
        let key = proof_key(header, alg)?;
        jws::with_signature(parts.signature_b64, |signature| {
            key.verify_raw(alg, parts.signing_input.as_bytes(), signature)
        })
        .map_err(jws_error)?
        .map_err(|e| match e {
            Error::InvalidSignature { .. } => DpopError::InvalidSignature,
            other => DpopError::InvalidKey {
                reason: other.to_string(),
            },
        })?;
        let claims = jws::decode_payload(parts.payload_b64).map_err(jws_error)?;
        let claims = Claims::read(&claims)?;

        if claims.htm != request.method {
            return Err(DpopError::HtmMismatch {
                found: claims.htm.to_owned(),
                expected: request.method.to_owned(),
            });
        }
        let expected = normalize_uri(request.uri).map_err(|why| {
            DpopError::config(format!(
                "the request URI {} given to the verifier is not an absolute http(s) URI \
                 ({why}); give the URI the client sent the request to (behind a proxy, the \
                 public one)",
                Shown(request.uri)
            ))
        })?;
        match normalize_uri(claims.htu) {
            Ok(found) if found == expected => {}
            Ok(_) => {
                return Err(DpopError::HtuMismatch {
                    found: claims.htu.to_owned(),
                    expected,
                    reason: None,
                })
            }
            Err(why) => {
                return Err(DpopError::HtuMismatch {
                    found: claims.htu.to_owned(),
                    expected,
                    reason: Some(format!("`htu` is not an absolute http(s) URI: {why}")),
                })
            }
        }
        match (request.nonce, claims.nonce) {
            (NonceRule::Off, _) => {}
            (_, None) => return Err(DpopError::MissingNonce),
            (NonceRule::Exact(expected), Some(found)) if found == expected => {}
            (NonceRule::Check(accepts), Some(found)) if accepts(found) => {}
            (_, Some(_)) => return Err(DpopError::InvalidNonce),
        }
        let now = self.clock.now();
        let iat = claims.iat;
        if iat < now.saturating_sub(self.max_age as i64) {
            return Err(DpopError::IatTooOld {
                iat,
                now,
                age: now.saturating_sub(iat),
                max_age: self.max_age,
            });
        }
        if iat > now.saturating_add(self.max_future as i64) {
            return Err(DpopError::IatInFuture {
                iat,
                now,
                ahead: iat.saturating_sub(now),
                max_future: self.max_future,
            });
        }
        if let Some(token) = request.access_token {
            match claims.ath {
                None => return Err(DpopError::MissingAth),
                Some(ath) if ath == ath_of(token) => {}
                Some(_) => return Err(DpopError::AthMismatch),
            }
        }
        let jkt = key.thumbprint().map_err(|e| DpopError::InvalidKey {
            reason: e.to_string(),
        })?;
        Ok(DpopProof {
            jkt,
            jti: claims.jti.to_owned(),
            iat,
            replay_until: iat.saturating_add(self.max_age as i64),
            alg,
        })
    }

    fn algorithm_list(&self) -> String {
        self.algorithms
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A jwt-core error from the JWS layer, as a DPoP refusal.
fn jws_error(e: Error) -> DpopError {
    match e {
        // An unknown or `none` algorithm, caught while parsing the header.
        Error::InvalidAlgorithm { reason } => DpopError::InvalidAlgorithm { reason },
        source => DpopError::Malformed { source },
    }
}

/// The public key of the proof's `jwk` header, checked for `alg`.
fn proof_key(header: &Header, alg: Algorithm) -> Result<VerifyingKey, DpopError> {
    let value = header
        .extra
        .get("jwk")
        .ok_or_else(|| DpopError::InvalidKey {
            reason: "the header has no `jwk`; a DPoP proof carries the client's public key in its \
                 `jwk` header (RFC 9449 §4.2)"
                .into(),
        })?;
    let Value::Object(members) = value else {
        return Err(DpopError::InvalidKey {
            reason: format!(
                "the `jwk` header must be a JSON object (a public JWK), found {}",
                crate::json::json_type(value)
            ),
        });
    };
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| members.contains_key(**m)) {
        if *member == "k" {
            return Err(DpopError::InvalidAlgorithm {
                reason: "the `jwk` header is a symmetric (`oct`) key; a DPoP proof is signed \
                         with an asymmetric key pair and carries its public key"
                    .into(),
            });
        }
        return Err(DpopError::PrivateKey { member });
    }
    let jwk = Jwk::deserialize(value).map_err(|e| DpopError::InvalidKey {
        reason: format!("the `jwk` header is not a valid JWK: {e}"),
    })?;
    let key = VerifyingKey::from_jwk(&jwk).map_err(|e| DpopError::InvalidKey {
        reason: format!("the `jwk` header is not a usable public key: {e}"),
    })?;
    key.check_usable(alg).map_err(|e| match e {
        Error::IncompatibleKey { .. } | Error::InvalidAlgorithm { .. } => {
            DpopError::InvalidAlgorithm {
                reason: format!("the proof's `alg` does not fit the key in its `jwk` header: {e}"),
            }
        }
        e => DpopError::InvalidKey {
            reason: format!("the key in the `jwk` header cannot be used: {e}"),
        },
    })?;
    Ok(key)
}

/// The claims of a proof, borrowed from its payload.
struct Claims<'a> {
    jti: &'a str,
    htm: &'a str,
    htu: &'a str,
    iat: UnixTime,
    ath: Option<&'a str>,
    nonce: Option<&'a str>,
}

impl<'a> Claims<'a> {
    fn read(map: &'a Map<String, Value>) -> Result<Self, DpopError> {
        let jti = required_str(map, "jti")?;
        if jti.is_empty() {
            return Err(DpopError::InvalidClaim {
                claim: "jti",
                reason: "is empty; it must be a unique id (e.g. 16 random bytes, base64url)".into(),
            });
        }
        let htm = required_str(map, "htm")?;
        let htu = required_str(map, "htu")?;
        let iat = match map.get("iat") {
            None => return Err(DpopError::MissingClaim { claim: "iat" }),
            Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i,
                // A fraction (some clients write milliseconds / 1000): the
                // second it falls in. `as` saturates, and JSON has no NaN.
                (None, Some(f)) => f.floor() as i64,
                (None, None) => {
                    return Err(DpopError::InvalidClaim {
                        claim: "iat",
                        reason: "is not a usable number".into(),
                    })
                }
            },
            Some(other) => {
                return Err(DpopError::InvalidClaim {
                    claim: "iat",
                    reason: format!(
                        "must be a NumericDate (seconds since 1970), found {}",
                        crate::json::json_type(other)
                    ),
                })
            }
        };
        Ok(Claims {
            jti,
            htm,
            htu,
            iat,
            ath: optional_str(map, "ath")?,
            nonce: optional_str(map, "nonce")?,
        })
    }
}

fn required_str<'a>(
    map: &'a Map<String, Value>,
    claim: &'static str,
) -> Result<&'a str, DpopError> {
    optional_str(map, claim)?.ok_or(DpopError::MissingClaim { claim })
}

fn optional_str<'a>(
    map: &'a Map<String, Value>,
    claim: &'static str,
) -> Result<Option<&'a str>, DpopError> {
    match map.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(DpopError::InvalidClaim {
            claim,
            reason: format!("must be a string, found {}", crate::json::json_type(other)),
        }),
    }
}

/// A verified proof: what the server binds tokens to and what its replay
/// cache must remember. Also the entry point for making proofs
/// ([`DpopProof::builder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    jkt: String,
    jti: String,
    iat: UnixTime,
    replay_until: UnixTime,
    alg: Algorithm,
}

impl DpopProof {
    /// A builder for a proof signed with `key` (a client's asymmetric key).
    pub fn builder(key: &SigningKey, alg: Algorithm) -> DpopProofBuilder<'_> {
        DpopProofBuilder {
            key,
            alg,
            htm: None,
            htu: None,
            ath: None,
            nonce: None,
            jti: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint of the proof's key: the `cnf.jkt` a
    /// bound token carries (RFC 9449 §6.1).
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The proof's `jti`, for the replay cache.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// The proof's `iat` (a fractional one rounded down).
    pub fn iat(&self) -> UnixTime {
        self.iat
    }

    /// Until when (inclusive) the proof is acceptable, and so until when a
    /// replay cache must remember its `jti`.
    pub fn replay_until(&self) -> UnixTime {
        self.replay_until
    }

    /// The algorithm the proof was signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// Makes a DPoP proof for one request (see [`DpopProof::builder`]).
///
/// `htm` and `htu` are required; `jti` defaults to 16 random bytes
/// (base64url), `iat` to the clock's now.
pub struct DpopProofBuilder<'k> {
    key: &'k SigningKey,
    alg: Algorithm,
    htm: Option<String>,
    htu: Option<String>,
    ath: Option<String>,
    nonce: Option<String>,
    jti: Option<String>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for DpopProofBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopProofBuilder")
            .field("key", &self.key)
            .field("alg", &self.alg)
            .field("htm", &self.htm)
            .field("htu", &self.htu)
            .field("ath", &self.ath)
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl DpopProofBuilder<'_> {
    /// The request's HTTP method, e.g. `POST` (case-sensitive).
    pub fn htm(mut self, method: impl Into<String>) -> Self {
        self.htm = Some(method.into());
        self
    }

    /// The request's absolute URI; a query and fragment are left out of the
    /// proof (RFC 9449 §4.2).
    pub fn htu(mut self, uri: impl Into<String>) -> Self {
        self.htu = Some(uri.into());
        self
    }

    /// The access token the request presents: the proof gets its `ath`.
    pub fn ath(mut self, access_token: &str) -> Self {
        self.ath = Some(ath_of(access_token));
        self
    }

    /// The server's nonce (from its `DPoP-Nonce` header).
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// A `jti` of your own instead of a random one (it must be unique).
    pub fn jti(mut self, jti: impl Into<String>) -> Self {
        self.jti = Some(jti.into());
        self
    }

    /// Uses `clock` for `iat` instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Signs the proof. Refused, with a [`Config`](crate::ErrorKind::Config)
    /// error saying why: a symmetric algorithm or an HMAC key, a key that does
    /// not fit `alg`, no `htm` or `htu`, a method that is not an HTTP token,
    /// a `htu` that is not an absolute http(s) URI, an empty `jti` or nonce.
    pub fn sign(self) -> Result<String, Error> {
        if self.alg.is_symmetric() {
            return Err(Error::config(format!(
                "{} is symmetric; a DPoP proof is signed with an asymmetric key (ES256, RS256, \
                 PS256, EdDSA, …)",
                self.alg
            )));
        }
        self.key.check_usable(self.alg)?;
        let htm = self.htm.ok_or_else(|| {
            Error::config("the proof needs the request's method: set htm (e.g. \"GET\")")
        })?;
        if htm.is_empty() || !htm.bytes().all(is_tchar) {
            return Err(Error::config(format!(
                "htm {} is not an HTTP method (letters, digits and !#$%&'*+-.^_`|~ only)",
                Shown(&htm)
            )));
        }
        let htu = self.htu.ok_or_else(|| {
            Error::config(
                "the proof needs the request's URI: set htu (e.g. \"https://api.example.com/me\")",
            )
        })?;
        normalize_uri(&htu).map_err(|why| {
            Error::config(format!(
                "htu {} is not an absolute http(s) URI: {why}",
                Shown(&htu)
            ))
        })?;
        let htu = strip_query_and_fragment(&htu);
        let jti = match self.jti {
            Some(jti) if jti.is_empty() => return Err(Error::config("the jti must not be empty")),
            Some(jti) => jti,
            None => random_jti()?,
        };
        let mut jwk = self.key.to_public_jwk().ok_or_else(|| {
            Error::config("an HMAC secret cannot sign DPoP proofs; use a key pair")
        })?;
        // The key's members only: `kid`, `use` and `alg` mean nothing to the
        // server and only lengthen every proof.
        jwk.kid = None;
        jwk.use_ = None;
        jwk.alg = None;
        jwk.key_ops = None;
        let jwk = serde_json::to_value(&jwk).map_err(|source| Error::Serialization { source })?;
        let mut header = Header::new(self.alg);
        header.typ = Some(DPOP_TYP.into());
        header.extra.insert("jwk".to_owned(), jwk);

        let mut claims = Map::new();
        claims.insert("jti".into(), Value::String(jti));
        claims.insert("htm".into(), Value::String(htm));
        claims.insert("htu".into(), Value::String(htu.to_owned()));
        claims.insert("iat".into(), Value::from(self.clock.now()));
        if let Some(ath) = self.ath {
            claims.insert("ath".into(), Value::String(ath));
        }
        if let Some(nonce) = self.nonce {
            if nonce.is_empty() {
                return Err(Error::config(
                    "the nonce is empty; pass the server's DPoP-Nonce value",
                ));
            }
            claims.insert("nonce".into(), Value::String(nonce));
        }
        let input = jws::signing_input(&header, &claims)?;
        let signature = self.key.sign_raw(self.alg, input.as_bytes())?;
        Ok(jws::assemble(input, &signature))
    }
}

/// 16 random bytes, base64url: 128 bits, over RFC 9449's 96.
fn random_jti() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Crypto {
        what: "random number generation",
    })?;
    Ok(b64::encode(&bytes))
}

/// RFC 9110 `tchar`, the characters of a method name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn strip_query_and_fragment(uri: &str) -> &str {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    &uri[..end]
}

/// `uri` without query and fragment, normalized as RFC 3986 §6.2.2 and
/// §6.2.3 say: scheme and host lower case, the scheme's default port
/// dropped, percent-encodings in upper case and those of unreserved
/// characters decoded, dot-segments removed, an empty path made `/`.
/// Characters a URI may not hold raw are percent-encoded. Only absolute
/// `http` and `https` URIs without user information are accepted.
pub(crate) fn normalize_uri(uri: &str) -> Result<String, &'static str> {
    let uri = strip_query_and_fragment(uri);
    if uri.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err("it holds a space, a control or a non-ASCII character; percent-encode it");
    }
    let (scheme, rest) = uri.split_once(':').ok_or("it has no scheme (`https:`)")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err("only http and https URIs are accepted"),
    };
    let rest = rest
        .strip_prefix("//")
        .ok_or("it has no authority (`//host`)")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err("it holds user information (`user@`), which a request URI never does");
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or("its IPv6 address has no closing `]`")?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("unexpected characters after its IPv6 address")?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("its host is empty");
    }
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            let trimmed = p.trim_start_matches('0');
            let n: u32 = if trimmed.is_empty() {
                0
            } else if trimmed.len() > 5 {
                return Err("its port is not a number up to 65535");
            } else {
                trimmed.parse().map_err(|_| "its port is not a number")?
            };
            if n > 65535 {
                return Err("its port is not a number up to 65535");
            }
            (n != default_port).then_some(n)
        }
        Some(_) => return Err("its port is not a number"),
    };
    let mut out = String::with_capacity(uri.len() + 1);
    out.push_str(&scheme);
    out.push_str("://");
    normalize_component(host, true, &mut out)?;
    if let Some(port) = port {
        out.push(':');
        out.push_str(&port.to_string());
    }
    let mut normalized_path = String::with_capacity(path.len() + 1);
    normalize_component(path, false, &mut normalized_path)?;
    let path = remove_dot_segments(&normalized_path);
    if path.is_empty() {
        out.push('/');
    } else {
        out.push_str(&path);
    }
    Ok(out)
}

/// Percent-encoding normalization of a host (lower-cased) or a path.
fn normalize_component(input: &str, lower: bool, out: &mut String) -> Result<(), &'static str> {
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|c| hex(*c)),
                bytes.get(i + 2).and_then(|c| hex(*c)),
            ) else {
                return Err("it holds a `%` not followed by two hex digits");
            };
            let decoded = h * 16 + l;
            if is_unreserved(decoded) {
                out.push(char::from(if lower {
                    decoded.to_ascii_lowercase()
                } else {
                    decoded
                }));
            } else {
                push_encoded(decoded, out);
            }
            i += 3;
            continue;
        }
        if is_unreserved(b) || b"!$&'()*+,;=:@/[]".contains(&b) {
            out.push(char::from(if lower { b.to_ascii_lowercase() } else { b }));
        } else {
            // Not allowed raw in a URI (`"`, `<`, `|`, `\`, …): its encoded
            // form is the one equivalent spelling.
            push_encoded(b, out);
        }
        i += 1;
    }
    Ok(())
}

fn push_encoded(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut out = String::with_capacity(path.len());
    fn pop_segment(out: &mut String) {
        match out.rfind('/') {
            Some(i) => out.truncate(i),
            None => out.clear(),
        }
    }
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            pop_segment(&mut out);
        } else if input == "/.." {
            input = "/";
            pop_segment(&mut out);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            out.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_normalization_follows_rfc_3986() {
        let same = [
            (
                "https://server.example.com/token",
                "https://server.example.com/token",
            ),
            (
                "HTTPS://Server.EXAMPLE.com:443/token",
                "https://server.example.com/token",
            ),
            ("http://a.example:80", "http://a.example/"),
            ("http://a.example:/x", "http://a.example/x"),
            ("https://a.example:0443/x", "https://a.example/x"),
            (
                "https://a.example/%7euser/a%2fb",
                "https://a.example/~user/a%2Fb",
            ),
            ("https://a.example/%41%42", "https://a.example/AB"),
            ("https://a.example/%e2%82%ac", "https://a.example/%E2%82%AC"),
            ("https://a.example/a/b/c/./../../g", "https://a.example/a/g"),
            ("https://a.example/a/..", "https://a.example/"),
            ("https://a.example/..", "https://a.example/"),
            ("https://a.example/a/b/", "https://a.example/a/b/"),
            ("https://a.example/x?q=1#f", "https://a.example/x"),
            ("https://a.example/x#f?q", "https://a.example/x"),
            ("https://a.example/%2E%2E/x", "https://a.example/x"),
            ("https://a.example/a|b", "https://a.example/a%7Cb"),
            ("https://[::1]:8443/x", "https://[::1]:8443/x"),
            ("https://[::1]:443/x", "https://[::1]/x"),
            ("https://a.example:8443/x", "https://a.example:8443/x"),
        ];
        for (input, want) in same {
            assert_eq!(normalize_uri(input).as_deref(), Ok(want), "{input}");
        }
        for bad in [
            "/relative",
            "ftp://a.example/x",
            "https:a.example/x",
            "https://u@a.example/x",
            "https://a.example/%",
            "https://a.example/%4",
            "https://a.example/%G1",
            "https://a.example:99999/x",
            "https://a.example:12x/x",
            "https:///x",
            "https://a.example/a b",
            "https://a.example/é",
            "https://[::1/x",
        ] {
            assert!(normalize_uri(bad).is_err(), "{bad} accepted");
        }
    }
}
