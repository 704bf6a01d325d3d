//! DPoP (RFC 9449) in the token service: sender-constrained access and
//! refresh tokens, server nonces, and a client helper.
//!
//! A client holds a key pair and signs a short-lived proof (a JWT with its
//! public key in the header) for every request. Tokens issued with a valid
//! proof are bound to that key: the access token carries
//! `cnf: {"jkt": THUMBPRINT}` (RFC 9449 §6.1), the refresh token carries it
//! in its signed claims (§5), and both are worthless without the private
//! key. The pieces:
//!
//! - [`DpopOptions`], given to [`TokenServiceBuilder::dpop`](crate::TokenServiceBuilder::dpop):
//!   the [`DpopMode`], the proof algorithms, the `iat` window, the replay
//!   cache and the server nonces;
//! - at the token endpoint: [`TokenService::check_dpop`](crate::TokenService::check_dpop)
//!   checks a proof and gives a [`DpopBinding`], which
//!   [`issue_dpop`](crate::TokenService::issue_dpop) and
//!   [`refresh_dpop`](crate::TokenService::refresh_dpop) bind tokens to;
//! - at a resource: [`TokenService::verify_access_dpop`](crate::TokenService::verify_access_dpop)
//!   (or the axum layer) checks the token, then the proof with its `ath`,
//!   then that the proof's key is the token's, then the replay cache — on
//!   every request, whether the verified-token cache knew the token or not;
//! - [`DpopClient`], for Rust clients: one proof per request, the server's
//!   nonce remembered.
//!
//! ```
//! use jwtkit::dpop::{DpopClient, DpopMode, DpopOptions};
//! use jwtkit::{AccessClaims, Algorithm, MemoryKeyStore, TokenService};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jwtkit::Error> {
//! let tokens = TokenService::builder()
//!     .key_store(MemoryKeyStore::new())
//!     .init_key_store(Algorithm::ES256)
//!     .issuer("https://auth.example.com")
//!     .audience("my-api")
//!     .dpop(DpopOptions::new(DpopMode::Allowed))
//!     .build()
//!     .await?;
//!
//! // Client: a key of its own, a proof for the token request.
//! let client = DpopClient::generate(Algorithm::ES256)?;
//! let proof = client.proof("POST", "https://auth.example.com/token", None)?;
//!
//! // Token endpoint: check the proof, bind the tokens to its key.
//! let binding = tokens.check_dpop(&proof, "POST", "https://auth.example.com/token", None).await?;
//! let pair = tokens.issue_dpop("alice", &(), Some(&binding)).await?;
//! assert_eq!(pair.token_type, "DPoP");
//!
//! // Resource: the token with a fresh proof carrying its hash (`ath`).
//! let url = "https://api.example.com/me";
//! let proof = client.proof("GET", url, Some(&pair.access_token))?;
//! let bound = tokens
//!     .verify_access_dpop::<AccessClaims>(&pair.access_token, &proof, "GET", url)
//!     .await?;
//! assert_eq!(bound.jkt, client.jkt());
//! // Without a proof, the bound token is refused.
//! let err = tokens.verify_access::<AccessClaims>(&pair.access_token).unwrap_err();
//! assert_eq!(err.oauth_error(), Some("invalid_token"));
//! # Ok(()) }
//! ```
//!
//! ## Server nonces, and why they are MACs of the time
//!
//! With [`DpopOptions::nonces`], every proof must carry a nonce the server
//! gave (RFC 9449 §8, §9), which bounds how far ahead a client (or malware
//! on it) can sign proofs. A nonce here is
//! `base64url(HMAC-SHA256(key, time step)[..16])` with 5-minute steps
//! ([`NONCE_STEP`]); the current and the previous step's nonces are
//! accepted, so a nonce lives 5 to 10 minutes and a client that follows
//! the `DPoP-Nonce` headers never sees a refusal. Nothing is stored:
//! replicas that share the [`NonceKey`] (from
//! [`NonceKey::from_secret`]) accept each other's nonces with no shared
//! state, and a restart costs at most one `use_dpop_nonce` round trip per
//! client. The default key is random per process, right for one instance.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jwt_core::dpop::{DpopProof, DpopRequest, DpopVerifier, DEFAULT_IAT_WINDOW};
use jwt_core::{Algorithm, Clock, SigningKey, SystemClock};
use jwt_refresh::replay::{MemoryReplayCache, ReplayCache};
use zeroize::Zeroizing;

use crate::error::{DpopRefusal, Error, Result};

/// How a [`TokenService`](crate::TokenService) treats DPoP.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DpopMode {
    /// No DPoP: proofs are not checked and no token is bound. (A bound
    /// token presented as a bearer token is still refused.)
    #[default]
    Off,
    /// Tokens issued with a proof are bound to its key; tokens issued
    /// without one are bearer tokens, accepted as `Bearer`.
    Allowed,
    /// Every issuance and refresh needs a proof, and only bound tokens are
    /// accepted (with their proof).
    Required,
}

impl DpopMode {
    /// The stable name: `"off"`, `"allowed"` or `"required"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DpopMode::Off => "off",
            DpopMode::Allowed => "allowed",
            DpopMode::Required => "required",
        }
    }
}

impl fmt::Display for DpopMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `off`, `allowed` or `required` (for command lines and config files).
impl FromStr for DpopMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "off" => Ok(DpopMode::Off),
            "allowed" => Ok(DpopMode::Allowed),
            "required" => Ok(DpopMode::Required),
            other => Err(Error::config(
                "dpop.mode",
                format!(
                    "{:?} is not a DPoP mode: use off, allowed or required",
                    other.chars().take(32).collect::<String>()
                ),
            )),
        }
    }
}

/// The length of a nonce time step: 5 minutes. A nonce is accepted during
/// its step and the next one.
pub const NONCE_STEP: Duration = Duration::from_secs(300);

/// The shortest [`NonceKey`] secret: 32 bytes.
pub const MIN_NONCE_KEY_LEN: usize = 32;

/// The HMAC key server nonces are derived from (see the [module
/// docs](self)). `Debug` never shows it.
#[derive(Clone)]
pub struct NonceKey {
    key: aws_lc_rs::hmac::Key,
}

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceKey(<redacted>)")
    }
}

/// Domain separation: the key may be shared with nothing else, but a MAC
/// of a bare counter should not be mistaken for anything else either.
const NONCE_CONTEXT: &[u8] = b"jwtkit dpop nonce v1\0";

/// Bytes of MAC in a nonce (base64url: 22 characters).
const NONCE_TAG_LEN: usize = 16;

impl NonceKey {
    /// A random key (per process: nonces of other instances are refused,
    /// and clients then retry with this one's).
    pub fn generate() -> Result<Self> {
        let mut secret = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(secret.as_mut()).map_err(|_| Error::Random)?;
        NonceKey::from_secret(secret.as_ref())
    }

    /// A key from a secret shared by every replica (at least
    /// [`MIN_NONCE_KEY_LEN`] bytes; e.g. 32 random bytes kept with the
    /// refresh key).
    pub fn from_secret(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_NONCE_KEY_LEN {
            return Err(Error::config(
                "dpop.nonce_key",
                format!(
                    "the secret is {} bytes; at least {MIN_NONCE_KEY_LEN} random bytes are needed",
                    secret.len()
                ),
            ));
        }
        Ok(NonceKey {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
        })
    }

    /// [`from_secret`](Self::from_secret) with the secret in base64
    /// (standard or URL-safe, padded or not; surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self> {
        let text = text.trim();
        let unpadded = text.trim_end_matches('=');
        let secret = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(unpadded)
                .or_else(|_| STANDARD_NO_PAD.decode(unpadded))
                .map_err(|_| Error::config("dpop.nonce_key", "the secret is not valid base64"))?,
        );
        NonceKey::from_secret(&secret)
    }

    fn tag(&self, step: i64) -> [u8; NONCE_TAG_LEN] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
        ctx.update(NONCE_CONTEXT);
        ctx.update(&step.to_be_bytes());
        let mac = ctx.sign();
        let mut out = [0u8; NONCE_TAG_LEN];
        out.copy_from_slice(&mac.as_ref()[..NONCE_TAG_LEN]);
        out
    }

    /// The nonce of the step `now` falls in.
    fn nonce_at(&self, now: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.tag(step_of(now)))
    }

    /// `true` for the nonce of `now`'s step or of the step before.
    fn accepts(&self, nonce: &str, now: i64) -> bool {
        let mut presented = [0u8; NONCE_TAG_LEN];
        match URL_SAFE_NO_PAD.decode_slice(nonce, &mut presented) {
            Ok(NONCE_TAG_LEN) if nonce.len() == 22 => {}
            _ => return false,
        }
        let step = step_of(now);
        // Both compared, in constant time, whichever matches.
        let current =
            aws_lc_rs::constant_time::verify_slices_are_equal(&presented, &self.tag(step)).is_ok();
        let previous = aws_lc_rs::constant_time::verify_slices_are_equal(
            &presented,
            &self.tag(step.saturating_sub(1)),
        )
        .is_ok();
        current | previous
    }
}

fn step_of(now: i64) -> i64 {
    now.div_euclid(NONCE_STEP.as_secs() as i64)
}

/// DPoP settings of a [`TokenService`](crate::TokenService), given to
/// [`TokenServiceBuilder::dpop`](crate::TokenServiceBuilder::dpop), which
/// checks them.
///
/// | setting | default | why |
/// |---|---|---|
/// | mode | — ([`DpopOptions::new`]) | [`DpopMode`] |
/// | `algorithms` | every asymmetric algorithm jwt-core verifies | RFC 9449 §4.2: never a MAC; [`TokenService::dpop_algorithms`](crate::TokenService::dpop_algorithms) publishes them |
/// | `iat_window` | ±60 s on the service's clock | a proof is made per request; the replay cache remembers each `jti` this long |
/// | `replay_cache` | a [`MemoryReplayCache`] on the service's clock | several instances need a shared one ([`RedisReplayCache`](jwt_refresh::replay::RedisReplayCache)) |
/// | `nonces` | off | on: every proof carries a server nonce ([`NonceKey`], the module docs) |
///
/// ```
/// use std::time::Duration;
/// use jwtkit::dpop::{DpopMode, DpopOptions, NonceKey};
/// use jwtkit::Algorithm;
///
/// let options = DpopOptions::new(DpopMode::Required)
///     .algorithms([Algorithm::ES256, Algorithm::EdDSA])
///     .iat_window(Duration::from_secs(30))
///     .nonces(NonceKey::generate()?);
/// # let _ = options; Ok::<(), jwtkit::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct DpopOptions {
    pub(crate) mode: DpopMode,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) iat_window: Duration,
    pub(crate) replay_cache: Option<Arc<dyn ReplayCache>>,
    pub(crate) nonces: Option<NonceKey>,
}

impl fmt::Debug for DpopOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopOptions")
            .field("mode", &self.mode)
            .field("algorithms", &self.algorithms)
            .field("iat_window", &self.iat_window)
            .field("replay_cache", &self.replay_cache)
            .field("nonces", &self.nonces.is_some())
            .finish()
    }
}

impl DpopOptions {
    /// The defaults (see the table) in `mode`.
    pub fn new(mode: DpopMode) -> Self {
        DpopOptions {
            mode,
            algorithms: Algorithm::ALL
                .into_iter()
                .filter(|a| !a.is_symmetric())
                .collect(),
            iat_window: DEFAULT_IAT_WINDOW,
            replay_cache: None,
            nonces: None,
        }
    }

    /// The algorithms proofs may be signed with (asymmetric only, not empty).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// How far a proof's `iat` may be from the service's clock, on either
    /// side (whole seconds, 1 s to 1 h; default 60 s).
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.iat_window = window;
        self
    }

    /// The replay cache (default: in memory, per process). Instances that
    /// serve the same clients must share one, e.g.
    /// `RedisReplayCache::new(&redis_refresh_store)`.
    pub fn replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.replay_cache = Some(cache);
        self
    }

    /// Requires a server nonce in every proof, derived from `key` (see the
    /// [module docs](self)).
    pub fn nonces(mut self, key: NonceKey) -> Self {
        self.nonces = Some(key);
        self
    }

    /// The mode.
    pub fn mode(&self) -> DpopMode {
        self.mode
    }
}

/// What the service holds for DPoP, built from [`DpopOptions`].
pub(crate) struct DpopState {
    pub(crate) mode: DpopMode,
    pub(crate) verifier: DpopVerifier,
    pub(crate) replay: Arc<dyn ReplayCache>,
    pub(crate) nonces: Option<NonceKey>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl fmt::Debug for DpopState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopState")
            .field("mode", &self.mode)
            .field("algorithms", &self.verifier.algorithms())
            .field("replay", &self.replay)
            .field("nonces", &self.nonces.is_some())
            .finish()
    }
}

impl DpopState {
    /// Checks the settings and builds the state (`None` in mode `Off`).
    pub(crate) fn build(options: DpopOptions, clock: Arc<dyn Clock>) -> Result<Option<Self>> {
        if options.mode == DpopMode::Off {
            return Ok(None);
        }
        let window = options.iat_window;
        if window.subsec_nanos() != 0 || window.as_secs() == 0 {
            return Err(Error::config(
                "dpop.iat_window",
                format!("{window:?} is not a whole number of seconds ≥ 1 s"),
            ));
        }
        let verifier = DpopVerifier::new(options.algorithms)
            .and_then(|v| v.iat_window(window, window))
            .map_err(|e| Error::config("dpop", e.to_string()))?
            .clock(clock.clone());
        let replay = match options.replay_cache {
            Some(cache) => cache,
            None => Arc::new(MemoryReplayCache::new().with_clock(clock.clone())),
        };
        Ok(Some(DpopState {
            mode: options.mode,
            verifier,
            replay,
            nonces: options.nonces,
            clock,
        }))
    }

    /// Verifies `proof` for the request (RFC 9449 §4.3, with the nonce when
    /// nonces are on), without the replay check.
    pub(crate) fn verify(
        &self,
        proof: &str,
        method: &str,
        htu: &str,
        access_token: Option<&str>,
    ) -> Result<DpopProof> {
        let mut request = DpopRequest::new(method, htu);
        if let Some(token) = access_token {
            request = request.access_token(token);
        }
        let now = self.clock.now();
        let accepts = |nonce: &str| self.nonces.as_ref().is_some_and(|k| k.accepts(nonce, now));
        if self.nonces.is_some() {
            request = request.nonce_check(&accepts);
        }
        self.verifier
            .verify(proof, &request)
            .map_err(Error::dpop_proof)
    }

    /// Records the proof's `jti`, per key (a `jti` is unique per client
    /// key only, RFC 9449 §11.1): a replay is refused, and a cache that
    /// cannot decide refuses too (retryably).
    pub(crate) async fn check_replay(&self, proof: &DpopProof) -> Result<()> {
        // The thumbprint is base64url (no `.`): `jkt.jti` is unambiguous.
        let id = format!("{}.{}", proof.jkt(), proof.jti());
        match self.replay.check_and_store(&id, proof.replay_until()).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::info!(jkt = %proof.jkt(), "DPoP proof replayed");
                Err(Error::dpop(DpopRefusal::Replayed))
            }
            Err(jwt_refresh::Error::InvalidInput { what, reason }) => {
                // A `jti` over the cache's length limit: the proof's fault.
                Err(Error::Dpop {
                    reason: DpopRefusal::Proof(jwt_core::dpop::DpopErrorKind::InvalidClaim),
                    source: Some(jwt_core::dpop::DpopError::InvalidClaim {
                        claim: "jti",
                        reason: format!("cannot be remembered ({what} {reason})"),
                    }),
                })
            }
            Err(e) => Err(Error::ReplayCache(e)),
        }
    }

    pub(crate) fn nonce(&self) -> Option<String> {
        self.nonces
            .as_ref()
            .map(|key| key.nonce_at(self.clock.now()))
    }
}

/// A verified DPoP proof's key, from
/// [`TokenService::check_dpop`](crate::TokenService::check_dpop): tokens
/// issued or refreshed with it are bound to that key. Made only from a
/// proof that verified and was not a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopBinding {
    jkt: String,
}

impl DpopBinding {
    pub(crate) fn new(jkt: String) -> Self {
        DpopBinding { jkt }
    }

    /// The RFC 7638 thumbprint of the proof's key: the `cnf.jkt` of the
    /// tokens bound to it.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
}

/// The claims of a DPoP-bound access token whose proof checked out
/// ([`TokenService::verify_access_dpop`](crate::TokenService::verify_access_dpop)).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct BoundClaims<T> {
    /// The token's claims.
    pub claims: T,
    /// The thumbprint of the key the token is bound to (its `cnf.jkt`, and
    /// the proof's key): identifies the client's key across requests.
    pub jkt: String,
}

/// A client's DPoP key, making one proof per request (RFC 9449 §4) and
/// remembering the server's latest nonce (§8, §9).
///
/// Shareable between tasks (`&self` everywhere). `Debug` shows the
/// algorithm and thumbprint, never the key.
///
/// ```
/// use jwtkit::dpop::DpopClient;
/// use jwtkit::Algorithm;
///
/// let client = DpopClient::generate(Algorithm::ES256)?;
/// let proof = client.proof("POST", "https://auth.example.com/token?x=1", None)?;
/// assert_eq!(proof.split('.').count(), 3);
/// // The server asked for a nonce (a `DPoP-Nonce` header): later proofs carry it.
/// client.observe_nonce("eyJ7S_zG.eyJH0-Z.HX4w-7v");
/// assert_eq!(client.nonce().as_deref(), Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
/// # Ok::<(), jwtkit::Error>(())
/// ```
pub struct DpopClient {
    key: SigningKey,
    alg: Algorithm,
    jkt: String,
    nonce: Mutex<Option<String>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for DpopClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopClient")
            .field("alg", &self.alg)
            .field("jkt", &self.jkt)
            .field("nonce", &self.nonce().is_some())
            .finish_non_exhaustive()
    }
}

impl DpopClient {
    /// A client signing with `key` and `alg` (asymmetric; the key must fit it).
    pub fn new(key: SigningKey, alg: Algorithm) -> Result<Self> {
        if alg.is_symmetric() {
            return Err(Error::config(
                "dpop_client.algorithm",
                format!(
                    "{alg} is a MAC; DPoP proofs are signed with a key pair (ES256, EdDSA, PS256, …)"
                ),
            ));
        }
        key.check_usable(alg).map_err(Error::Encoding)?;
        let jkt = key.thumbprint().map_err(Error::Encoding)?;
        Ok(DpopClient {
            key,
            alg,
            jkt,
            nonce: Mutex::new(None),
            clock: Arc::new(SystemClock),
        })
    }

    /// A client with a fresh key for `alg` (kept in memory only).
    pub fn generate(alg: Algorithm) -> Result<Self> {
        let key = SigningKey::generate(alg).map_err(Error::Encoding)?;
        DpopClient::new(key, alg)
    }

    /// Uses `clock` for the proofs' `iat` (default: the system clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The thumbprint of the client's key: the `cnf.jkt` of its tokens.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The algorithm proofs are signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// A proof for one request: `method` (e.g. `GET`), the `url` the request
    /// goes to (query and fragment left out), and the access token it
    /// presents (the proof then carries its hash, `ath`). Carries the last
    /// nonce observed. Sign a new one for every request: servers refuse a
    /// proof presented twice.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> Result<String> {
        let end = url.find(['?', '#']).unwrap_or(url.len());
        let mut builder = jwt_core::dpop::DpopProof::builder(&self.key, self.alg)
            .htm(method)
            .htu(&url[..end])
            .clock(self.clock.clone());
        if let Some(token) = access_token {
            builder = builder.ath(token);
        }
        if let Some(nonce) = self.nonce() {
            builder = builder.nonce(nonce);
        }
        builder.sign().map_err(|e| match e {
            jwt_core::Error::Config { reason } => Error::InvalidRequest { reason },
            e => Error::Encoding(e),
        })
    }

    /// Remembers the nonce a server sent (its `DPoP-Nonce` header): the
    /// next proofs carry it. An empty value is ignored.
    pub fn observe_nonce(&self, nonce: &str) {
        let nonce = nonce.trim();
        if !nonce.is_empty() {
            *self.nonce.lock().unwrap_or_else(|e| e.into_inner()) = Some(nonce.to_owned());
        }
    }

    /// Remembers the `DPoP-Nonce` of a response's headers, if it has one;
    /// `true` when it did (then retry a request refused with
    /// `use_dpop_nonce` with a new proof). Any `http` 1 `HeaderMap`
    /// (reqwest's, hyper's, axum's).
    #[cfg(feature = "axum")]
    pub fn observe_headers(&self, headers: &axum::http::HeaderMap) -> bool {
        match headers
            .get(DPOP_NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
        {
            Some(nonce) if !nonce.is_empty() => {
                self.observe_nonce(nonce);
                true
            }
            _ => false,
        }
    }

    /// The nonce later proofs carry, if a server sent one.
    pub fn nonce(&self) -> Option<String> {
        self.nonce.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The response header carrying a server nonce (RFC 9449 §8).
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";

/// The request header carrying a proof (RFC 9449 §4.1).
pub const DPOP_HEADER: &str = "dpop";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_rotate_every_step_and_the_previous_one_is_accepted() {
        let key = NonceKey::from_secret(&[7u8; 32]).unwrap();
        let t0 = 1_800_000_100; // inside a step
        let n0 = key.nonce_at(t0);
        assert_eq!(n0.len(), 22);
        assert_eq!(key.nonce_at(t0 + 10), n0, "same step, same nonce");
        assert!(key.accepts(&n0, t0));
        let next = t0 + NONCE_STEP.as_secs() as i64;
        assert_ne!(key.nonce_at(next), n0, "a new step, a new nonce");
        assert!(key.accepts(&n0, next), "the previous step's is accepted");
        assert!(
            !key.accepts(&n0, next + NONCE_STEP.as_secs() as i64),
            "two steps later it is not"
        );
        let other = NonceKey::from_secret(&[8u8; 32]).unwrap();
        assert!(!other.accepts(&n0, t0), "another key's nonce");
        for bad in ["", "short", &format!("{n0}A"), &n0.to_uppercase()] {
            assert!(!key.accepts(bad, t0), "{bad:?} accepted");
        }
        // A shared secret gives the same nonces on every replica.
        let again = NonceKey::from_base64(&URL_SAFE_NO_PAD.encode([7u8; 32])).unwrap();
        assert_eq!(again.nonce_at(t0), n0);
        assert!(matches!(
            NonceKey::from_secret(&[1u8; 31]),
            Err(Error::Config {
                setting: "dpop.nonce_key",
                ..
            })
        ));
        assert_eq!(format!("{key:?}"), "NonceKey(<redacted>)");
    }

    #[test]
    fn modes_parse_by_name() {
        for mode in [DpopMode::Off, DpopMode::Allowed, DpopMode::Required] {
            assert_eq!(mode.as_str().parse::<DpopMode>().unwrap(), mode);
        }
        assert!(matches!(
            "on".parse::<DpopMode>(),
            Err(Error::Config {
                setting: "dpop.mode",
                ..
            })
        ));
    }
}
