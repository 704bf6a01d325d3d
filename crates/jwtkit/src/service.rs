//! The [`TokenService`]: issue, verify, refresh and revoke, composed from a
//! key store, a refresh store and a refresh key.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_core::time::secs;
use jwt_core::{Algorithm, Clock, Jwks, Validation};
use jwt_keys::{
    CachedTokens, KeyStore, KeyStoreExt, RotationPolicy, RotationReport, TokenCacheOptions,
    TokenCacheStats,
};
use jwt_refresh::{
    FamilyId, NewRefresh, RefreshRecord, RefreshStore, RotateOutcome, SessionInfo, TokenId,
    MAX_METADATA_LEN,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::builder::TokenServiceBuilder;
use crate::claims::{Confirmed, RESERVED_CLAIMS};
use crate::dpop::{BoundClaims, DpopBinding, DpopMode, DpopState};
use crate::error::{DpopRefusal, Error, GrantRefusal, Result};

/// The header `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TYP: &str = "at+jwt";

/// `typ` of a signed introspection answer (RFC 9701 §5).
pub const INTROSPECTION_TYP: &str = "token-introspection+jwt";

/// How long a signed introspection answer ([`TokenService::introspection_jwt`])
/// is valid: 60 seconds after its `iat`.
pub const INTROSPECTION_JWT_TTL_SECS: i64 = 60;

/// The header `typ` of refresh tokens.
pub const REFRESH_TYP: &str = "refresh+jwt";

/// Default access-token lifetime: 15 minutes.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Default refresh-token lifetime: 14 days (each refresh starts a new one).
pub const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(14 * 86_400);
/// Default maximum lifetime of a session (a login and all its refreshes): 30 days.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// Default clock-skew tolerance when verifying: 60 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Longest access-token lifetime the builder accepts without
/// [`TokenServiceBuilder::allow_long_access_ttl`]: 24 hours.
pub const MAX_ACCESS_TTL: Duration = Duration::from_secs(86_400);
/// Largest accepted leeway: 5 minutes.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// An access token and a refresh token, as handed to a client.
///
/// Its `Debug` output shows neither token.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenPair {
    /// The access token (`typ: at+jwt`), for `Authorization: Bearer`, or
    /// `Authorization: DPoP` with a proof when it is bound to a DPoP key.
    pub access_token: String,
    /// `"Bearer"` (RFC 6750), or `"DPoP"` for tokens bound to a DPoP key
    /// (RFC 9449 §5: issued with a [`DpopBinding`]).
    pub token_type: &'static str,
    /// Lifetime of the access token in seconds (RFC 6749 §5.1 `expires_in`).
    pub expires_in: u64,
    /// The refresh token (`typ: refresh+jwt`); single use.
    pub refresh_token: String,
    /// When the refresh token expires, seconds since the epoch.
    #[serde(skip)]
    pub refresh_expires_at: jwt_core::time::UnixTime,
    /// The session (refresh family) the pair belongs to; safe to log.
    #[serde(skip)]
    pub session: String,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// The claims of a refresh token.
#[derive(Debug, Deserialize)]
struct RefreshClaims {
    /// The DPoP key the session is bound to (RFC 9449 §5): every refresh
    /// needs a proof of it. Absent for unbound sessions.
    #[serde(default)]
    cnf: Option<RefreshConfirmation>,
    jti: String,
    sub: String,
    /// The audience of the access tokens the session gets: a service with
    /// another audience (sharing the issuer, refresh key and store) must
    /// not mint its access tokens from it. Absent in tokens of versions
    /// before it was added.
    #[serde(default)]
    access_aud: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RefreshConfirmation {
    #[serde(default)]
    jkt: Option<String>,
}

/// What an access token says about its session, for revocation.
struct AccessSession {
    family: FamilyId,
    /// As [`VerifiedRefresh::binding`].
    jkt: Option<Option<String>>,
}

/// A token bound to a DPoP key (`cnf.jkt`: `Some(Some(jkt))`; `Some(None)`:
/// a `cnf` without a usable `jkt`) acts only with a proof of that key:
/// holding a stolen bound token is not enough to end its owner's session.
fn holds_binding(bound: Option<Option<&str>>, binding: Option<&DpopBinding>) -> Result<()> {
    match (bound, binding) {
        (None, _) => Ok(()),
        (Some(Some(jkt)), Some(b)) if b.jkt() == jkt => Ok(()),
        (Some(_), None) => Err(Error::dpop(DpopRefusal::MissingProof)),
        (Some(_), Some(_)) => Err(Error::dpop(DpopRefusal::KeyMismatch)),
    }
}

/// A refresh token that verified: its store id, subject and key binding.
struct VerifiedRefresh {
    jti: TokenId,
    sub: String,
    /// `Some(None)`: a `cnf` without a usable `jkt` (refused for every key).
    binding: Option<Option<String>>,
}

/// Health of the two stores, as [`TokenService::health`] found it.
#[non_exhaustive]
#[derive(Debug)]
pub struct Health {
    /// `None` when the key store answered, else its error.
    pub key_store: Option<Error>,
    /// `None` when the refresh store answered, else its error.
    pub refresh_store: Option<Error>,
}

impl Health {
    /// `true` when both stores answered.
    pub fn is_healthy(&self) -> bool {
        self.key_store.is_none() && self.refresh_store.is_none()
    }
}

/// Issues, verifies, refreshes and revokes tokens.
///
/// - Access tokens follow RFC 9068: header `typ: at+jwt`, claims `iss`,
///   `sub`, `aud`, `exp`, `iat`, `jti`, plus the caller's claims
///   (`client_id`, `scope`, …). They are signed by the key store's active key
///   and verified in memory ([`verify_access`](Self::verify_access) is
///   synchronous and does no I/O).
/// - Refresh tokens are JWTs with header `typ: refresh+jwt`, signed with a
///   separate HMAC [`RefreshKey`](crate::RefreshKey), carrying `jti` (the refresh store's token
///   id), `sub`, `iat`, `exp`, and `iss` = `aud` = the issuer. Each refresh
///   consumes the token and returns a new pair; presenting a consumed token
///   revokes the whole session (reuse detection).
///
/// Cheap to clone: clones share everything.
///
/// ```
/// use std::sync::Arc;
/// use jwt_core::Algorithm;
/// use jwtkit::{MemoryKeyStore, TokenService, AccessClaims};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jwtkit::Error> {
/// let tokens = TokenService::builder()
///     .key_store(MemoryKeyStore::new())
///     .init_key_store(Algorithm::ES256)          // create keys if the store has none
///     .issuer("https://auth.example.com")
///     .audience("my-api")
///     .build()
///     .await?;
///
/// let pair = tokens.issue("alice", &serde_json::json!({"scope": "read"})).await?;
/// let claims: AccessClaims = tokens.verify_access(&pair.access_token)?;
/// assert_eq!(claims.sub, "alice");
/// assert_eq!(claims.scope.as_deref(), Some("read"));
///
/// let next = tokens.refresh(&pair.refresh_token).await?;
/// // The first refresh token is used up; presenting it again revokes the session.
/// let err = tokens.refresh(&pair.refresh_token).await.unwrap_err();
/// assert_eq!(err.kind(), "invalid_grant");
/// assert_eq!(tokens.refresh(&next.refresh_token).await.unwrap_err().kind(), "invalid_grant");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenService {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("key_store", &self.inner.key_store.name())
            .field("refresh_store", &self.inner.refresh_store)
            .field("access_ttl", &self.inner.access_ttl)
            .field("refresh_ttl", &self.inner.refresh_ttl)
            .field("dpop", &self.dpop_mode())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) key_store: Arc<dyn KeyStore>,
    pub(crate) refresh_store: Arc<dyn RefreshStore>,
    pub(crate) refresh_signer: jwt_core::Signer,
    pub(crate) refresh_verifier: jwt_core::Verifier,
    /// The refresh key ring: a previous key verifies only until its time.
    pub(crate) refresh_key: crate::RefreshKey,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) access_ttl: Duration,
    pub(crate) refresh_ttl: Duration,
    pub(crate) policy: RotationPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    /// The one key cache: follows the key store (single-flight reloads,
    /// the unknown-kid cooldown, retiring keys dropped when their grace
    /// ends), and holds the verified-token cache; built by
    /// [`access_verifier`].
    pub(crate) access: jwt_keys::Verifier,
    /// With external issuers: them and `access` (for the service's own
    /// issuer), chosen by the token's `iss`.
    pub(crate) issuers: Option<jwt_keys::MultiIssuerVerifier>,
    /// DPoP's verifier, replay cache and nonce key; `None` in mode `Off`.
    pub(crate) dpop: Option<DpopState>,
}

impl TokenService {
    /// A builder; see [`TokenServiceBuilder`] for what it checks.
    pub fn builder() -> TokenServiceBuilder {
        TokenServiceBuilder::default()
    }

    pub(crate) fn from_inner(inner: Inner) -> Self {
        TokenService {
            inner: Arc::new(inner),
        }
    }

    /// The issuer (`iss`) of every token.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The audience (`aud`) of access tokens.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// Lifetime of access tokens.
    pub fn access_ttl(&self) -> Duration {
        self.inner.access_ttl
    }

    /// Lifetime of refresh tokens.
    pub fn refresh_ttl(&self) -> Duration {
        self.inner.refresh_ttl
    }

    /// The key store's rotation policy.
    pub fn rotation_policy(&self) -> &RotationPolicy {
        &self.inner.policy
    }

    /// The key store.
    pub fn key_store(&self) -> &Arc<dyn KeyStore> {
        &self.inner.key_store
    }

    /// The refresh store.
    pub fn refresh_store(&self) -> &Arc<dyn RefreshStore> {
        &self.inner.refresh_store
    }

    /// Starts a session for `subject`: a new access token and a new refresh token.
    ///
    /// `claims` (any type that serializes to a JSON object, or `()` for none)
    /// go into every access token of the session, refreshed ones included —
    /// e.g. `client_id`, `scope`, roles. The registered claims the service
    /// sets (`iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, `jti`, `sid`, and
    /// `cnf`, which only a DPoP proof sets) are refused
    /// ([`Error::InvalidRequest`]), as are claims over 4 KiB of JSON (they are
    /// kept with the session in the refresh store).
    ///
    /// In DPoP mode `required` this is refused ([`DpopRefusal::ProofRequired`]):
    /// use [`issue_dpop`](Self::issue_dpop) with a proof.
    pub async fn issue<C: Serialize + ?Sized>(
        &self,
        subject: &str,
        claims: &C,
    ) -> Result<TokenPair> {
        self.issue_inner(subject, claims, None, None).await
    }

    /// [`issue`](Self::issue), with the tokens bound to the key of a DPoP
    /// proof when `binding` is given (from [`check_dpop`](Self::check_dpop)):
    /// the access token carries `cnf: {"jkt": …}`, the refresh token its
    /// key too (every refresh then needs a proof of that key), and
    /// [`TokenPair::token_type`] is `"DPoP"`. `None` issues bearer tokens,
    /// refused in DPoP mode `required`.
    pub async fn issue_dpop<C: Serialize + ?Sized>(
        &self,
        subject: &str,
        claims: &C,
        binding: Option<&DpopBinding>,
    ) -> Result<TokenPair> {
        self.issue_inner(subject, claims, None, binding).await
    }

    /// [`issue`](Self::issue), recording a description of the client that
    /// logged in with the session (e.g. `{"device":"Alice's laptop",
    /// "user_agent":"…"}`: a JSON object of at most
    /// [`MAX_CLIENT_LEN`](jwt_refresh::MAX_CLIENT_LEN) bytes), which
    /// [`sessions`](Self::sessions) lists. It is kept with the session only,
    /// never put into tokens.
    pub async fn issue_with_client<C: Serialize + ?Sized>(
        &self,
        subject: &str,
        claims: &C,
        client: &Map<String, Value>,
    ) -> Result<TokenPair> {
        self.issue_with_client_dpop(subject, claims, client, None)
            .await
    }

    /// [`issue_with_client`](Self::issue_with_client), bound to a DPoP key
    /// like [`issue_dpop`](Self::issue_dpop).
    pub async fn issue_with_client_dpop<C: Serialize + ?Sized>(
        &self,
        subject: &str,
        claims: &C,
        client: &Map<String, Value>,
        binding: Option<&DpopBinding>,
    ) -> Result<TokenPair> {
        let json = Value::Object(client.clone()).to_string();
        if json.len() > jwt_refresh::MAX_CLIENT_LEN {
            return Err(Error::InvalidRequest {
                reason: format!(
                    "the client description is {} bytes of JSON; at most {} are kept per session",
                    json.len(),
                    jwt_refresh::MAX_CLIENT_LEN
                ),
            });
        }
        let client = (!client.is_empty()).then_some(json);
        self.issue_inner(subject, claims, client, binding).await
    }

    async fn issue_inner<C: Serialize + ?Sized>(
        &self,
        subject: &str,
        claims: &C,
        client: Option<String>,
        binding: Option<&DpopBinding>,
    ) -> Result<TokenPair> {
        let jkt = self.issuance_binding(binding)?;
        let extra = claims_map(claims)?;
        let mut new = NewRefresh::login(subject).ttl(self.inner.refresh_ttl);
        if let Some(client) = client {
            new = new.client(client);
        }
        if !extra.is_empty() {
            let json = Value::Object(extra.clone()).to_string();
            if json.len() > MAX_METADATA_LEN {
                return Err(Error::InvalidRequest {
                    reason: format!(
                        "the custom claims are {} bytes of JSON; at most {MAX_METADATA_LEN} are kept per session",
                        json.len()
                    ),
                });
            }
            new = new.metadata(json);
        }
        let record = self
            .inner
            .refresh_store
            .issue(new)
            .await
            .map_err(input_or_store_error)?;
        let pair = self.mint(&record, &extra, jkt).await?;
        tracing::info!(session = %record.family, dpop_bound = jkt.is_some(), "session started");
        Ok(pair)
    }

    /// The key new tokens are bound to: the binding's; none without one,
    /// unless DPoP is `required`.
    fn issuance_binding<'b>(&self, binding: Option<&'b DpopBinding>) -> Result<Option<&'b str>> {
        match (&self.inner.dpop, binding) {
            (None, Some(_)) => Err(Error::dpop(DpopRefusal::NotEnabled)),
            (Some(dpop), None) if dpop.mode == DpopMode::Required => {
                Err(Error::dpop(DpopRefusal::ProofRequired))
            }
            (_, binding) => Ok(binding.map(DpopBinding::jkt)),
        }
    }

    /// Verifies an access token (signature, `typ: at+jwt`, `iss`, `aud`,
    /// `exp`, `iat`) and returns its claims as `T` (e.g. [`AccessClaims`](crate::AccessClaims), your
    /// own struct, or `serde_json::Value`). Synchronous, no I/O: keys are
    /// held in memory ([`jwt_keys::Verifier::verify_cached`]) and reloaded
    /// by [`reload_keys`](Self::reload_keys) (the maintenance task does it
    /// on every tick, and after every rotation) or in the background.
    ///
    /// A token verified before is answered from the verified-token cache
    /// (on by default, see [`TokenServiceBuilder::token_cache`]) without
    /// another signature verification; the answer is the same.
    ///
    /// A token whose `kid` is not loaded is `unknown_key`; to reload the
    /// keys for it (another replica rotated), use
    /// [`verify_access_reloading`](Self::verify_access_reloading).
    ///
    /// With [`external_issuers`](TokenServiceBuilder::external_issuers), a
    /// token naming one of them (`iss`) is verified with that issuer's keys
    /// and settings instead (a token of an issuer not loaded yet is
    /// `stale_keys`, a [`Error::KeyStore`]: use
    /// [`verify_access_reloading`](Self::verify_access_reloading), which
    /// loads it); a token naming no accepted issuer is `invalid_issuer`.
    ///
    /// This is the bearer path: a token bound to a key (a `cnf` claim,
    /// RFC 9449 §7.2) is refused ([`DpopRefusal::BoundTokenAsBearer`]; use
    /// [`verify_access_dpop`](Self::verify_access_dpop) with its proof), and
    /// so is every token in DPoP mode `required`
    /// ([`DpopRefusal::UnboundToken`]).
    pub fn verify_access<T: DeserializeOwned>(&self, token: &str) -> Result<T> {
        let verified = match &self.inner.issuers {
            None => self.inner.access.verify_cached::<Confirmed<T>>(token),
            Some(issuers) => issuers.verify_cached::<Confirmed<T>>(token),
        };
        self.as_bearer(verified.map_err(access_error)?.claims)
    }

    /// The claims of a token presented without a proof, if it may be.
    fn as_bearer<T>(&self, verified: Confirmed<T>) -> Result<T> {
        if verified.cnf {
            return Err(Error::dpop(DpopRefusal::BoundTokenAsBearer));
        }
        if self.dpop_mode() == DpopMode::Required {
            return Err(Error::dpop(DpopRefusal::UnboundToken));
        }
        Ok(verified.claims)
    }

    /// Verifies an access token like [`verify_access`](Self::verify_access),
    /// but a token naming a `kid` not loaded yet (another replica rotated)
    /// makes the verifier reload the key store's keys first: one load for
    /// all concurrent callers, at most once per 30 s cooldown, so a flood
    /// of made-up kids costs one load. Known kids never wait. The axum
    /// layer uses this. An external issuer's keys are loaded the same way,
    /// under that issuer's own cooldown.
    ///
    /// Bound tokens are refused as in [`verify_access`](Self::verify_access).
    pub async fn verify_access_reloading<T: DeserializeOwned>(&self, token: &str) -> Result<T> {
        let verified = match &self.inner.issuers {
            None => self.inner.access.verify::<Confirmed<T>>(token).await,
            Some(issuers) => issuers.verify::<Confirmed<T>>(token).await,
        };
        self.as_bearer(verified.map_err(access_error)?.claims)
    }

    /// Verifies a DPoP-bound access token and the proof that came with it
    /// (`Authorization: DPoP <token>` and a `DPoP: <proof>` header, RFC 9449
    /// §7.1): `method` and `htu` are the request's method and the absolute
    /// URI the client sent it to (behind a proxy, the public one; query and
    /// fragment are ignored).
    ///
    /// In order: the token, as [`verify_access`](Self::verify_access)
    /// verifies it (the verified-token cache may answer this part; keys are
    /// not reloaded, see [`verify_access_dpop_reloading`](Self::verify_access_dpop_reloading));
    /// that it is bound (`cnf.jkt`, else [`DpopRefusal::UnboundToken`]); the
    /// proof (RFC 9449 §4.3, its `ath` the token's hash, the server nonce
    /// when nonces are on); that the proof's key is the token's
    /// ([`DpopRefusal::KeyMismatch`]); and last the replay cache
    /// ([`DpopRefusal::Replayed`]), so that only a proof that passed every
    /// other check is remembered. The proof is checked on every call, whether
    /// the token came from the cache or not.
    ///
    /// Errors: [`Error::InvalidToken`] for the token, [`Error::Dpop`] for
    /// the proof and the binding ([`Error::needs_dpop_nonce`]: answer
    /// `use_dpop_nonce` with [`dpop_nonce`](Self::dpop_nonce)), a retryable
    /// [`Error::ReplayCache`] when the replay cache cannot decide (answer
    /// 503: the request is refused, never let through).
    pub async fn verify_access_dpop<T: DeserializeOwned>(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        htu: &str,
    ) -> Result<BoundClaims<T>> {
        let dpop = self.dpop_state()?;
        let verified = match &self.inner.issuers {
            None => self.inner.access.verify_cached::<Confirmed<T>>(token),
            Some(issuers) => issuers.verify_cached::<Confirmed<T>>(token),
        };
        let verified = verified.map_err(access_error)?.claims;
        self.check_bound_access(dpop, verified, token, proof, method, htu)
            .await
    }

    /// [`verify_access_dpop`](Self::verify_access_dpop), loading keys for a
    /// `kid` not loaded yet as [`verify_access_reloading`](Self::verify_access_reloading)
    /// does. The axum layer uses this.
    pub async fn verify_access_dpop_reloading<T: DeserializeOwned>(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        htu: &str,
    ) -> Result<BoundClaims<T>> {
        let dpop = self.dpop_state()?;
        let verified = match &self.inner.issuers {
            None => self.inner.access.verify::<Confirmed<T>>(token).await,
            Some(issuers) => issuers.verify::<Confirmed<T>>(token).await,
        };
        let verified = verified.map_err(access_error)?.claims;
        self.check_bound_access(dpop, verified, token, proof, method, htu)
            .await
    }

    /// The checks of a bound token's use after the token itself verified.
    async fn check_bound_access<T>(
        &self,
        dpop: &DpopState,
        verified: Confirmed<T>,
        token: &str,
        proof: &str,
        method: &str,
        htu: &str,
    ) -> Result<BoundClaims<T>> {
        if !verified.cnf {
            return Err(Error::dpop(DpopRefusal::UnboundToken));
        }
        let checked = dpop.verify(proof, method, htu, Some(token))?;
        let jkt = match verified.jkt {
            Some(jkt) if jkt == checked.jkt() => jkt,
            _ => return Err(Error::dpop(DpopRefusal::KeyMismatch)),
        };
        dpop.check_replay(&checked).await?;
        Ok(BoundClaims {
            claims: verified.claims,
            jkt,
        })
    }

    /// Checks a DPoP proof at the token endpoint (RFC 9449 §4.3, §5):
    /// `method` and `htu` are the token request's (e.g. `POST` and
    /// `https://auth.example.com/token`, the public URI), `access_token` the
    /// token the request presents, if any (the proof must then carry its
    /// `ath`). The nonce is checked when nonces are on, and the proof's
    /// `jti` recorded in the replay cache: a proof is accepted once. The
    /// [`DpopBinding`] binds what [`issue_dpop`](Self::issue_dpop),
    /// [`issue_with_client_dpop`](Self::issue_with_client_dpop) and
    /// [`refresh_dpop`](Self::refresh_dpop) issue to the proof's key.
    ///
    /// Errors: [`Error::Dpop`] (`NotEnabled` in mode `off`; a rule of §4.3;
    /// `Replayed`), [`Error::ReplayCache`] when the replay cache cannot
    /// decide.
    pub async fn check_dpop(
        &self,
        proof: &str,
        method: &str,
        htu: &str,
        access_token: Option<&str>,
    ) -> Result<DpopBinding> {
        let dpop = self.dpop_state()?;
        let checked = dpop.verify(proof, method, htu, access_token)?;
        dpop.check_replay(&checked).await?;
        Ok(DpopBinding::new(checked.jkt().to_owned()))
    }

    /// [`check_dpop`](Self::check_dpop) for a request that presents one of
    /// this service's tokens without any other credential (a refresh grant,
    /// a revocation): the proof is checked, then the token (its signature
    /// and claims, no store), and only then is the proof remembered in the
    /// replay cache. A made-up token is refused before anything is stored,
    /// so requests anyone can send cannot fill the replay cache. Call
    /// [`check_dpop`](Self::check_dpop) only behind other authentication
    /// (the admin's issue request).
    ///
    /// Errors: those of [`check_dpop`](Self::check_dpop), and
    /// [`Error::InvalidGrant`] when `token` is neither a refresh nor an
    /// access token of this service.
    pub async fn check_dpop_with_token(
        &self,
        proof: &str,
        method: &str,
        htu: &str,
        token: &str,
    ) -> Result<DpopBinding> {
        let dpop = self.dpop_state()?;
        let checked = dpop.verify(proof, method, htu, None)?;
        if let Err(refused) = self.verify_refresh(token) {
            if self.access_session(token).await.is_none() {
                return Err(refused);
            }
        }
        dpop.check_replay(&checked).await?;
        Ok(DpopBinding::new(checked.jkt().to_owned()))
    }

    /// The DPoP mode ([`DpopMode::Off`] unless set with
    /// [`TokenServiceBuilder::dpop`]).
    pub fn dpop_mode(&self) -> DpopMode {
        self.inner.dpop.as_ref().map_or(DpopMode::Off, |d| d.mode)
    }

    /// The algorithms DPoP proofs may be signed with, for `WWW-Authenticate:
    /// DPoP algs="…"` and the `dpop_signing_alg_values_supported` metadata
    /// (RFC 9449 §5.1); empty when DPoP is off.
    pub fn dpop_algorithms(&self) -> &[Algorithm] {
        self.inner
            .dpop
            .as_ref()
            .map_or(&[], |d| d.verifier.algorithms())
    }

    /// The server nonce proofs must carry now, for the `DPoP-Nonce` header
    /// (RFC 9449 §8, §9): with [`Error::needs_dpop_nonce`] refusals, and on
    /// any response to keep clients current. `None` when nonces are off.
    /// It changes every [`NONCE_STEP`](crate::dpop::NONCE_STEP); the
    /// previous one stays accepted for one more step.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.inner.dpop.as_ref().and_then(DpopState::nonce)
    }

    fn dpop_state(&self) -> Result<&DpopState> {
        self.inner
            .dpop
            .as_ref()
            .ok_or_else(|| Error::dpop(DpopRefusal::NotEnabled))
    }

    /// The identity providers accepted beside the service's own issuer
    /// (see [`TokenServiceBuilder::external_issuers`]), with the service's
    /// own issuer added; `None` without external issuers.
    pub fn issuers(&self) -> Option<&jwt_keys::MultiIssuerVerifier> {
        self.inner.issuers.as_ref()
    }

    /// Exchanges a refresh token for a new pair (RFC 6749 §6): the token is
    /// consumed atomically; of concurrent refreshes of one token exactly one
    /// succeeds. A token that was already used revokes its whole session
    /// ([`GrantRefusal::Reused`]). Store failures are errors
    /// ([`Error::is_retryable`]), never a success.
    ///
    /// A session bound to a DPoP key refreshes only with
    /// [`refresh_dpop`](Self::refresh_dpop) and a proof of that key.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        self.refresh_dpop(refresh_token, None).await
    }

    /// [`refresh`](Self::refresh) with a DPoP proof's key (from
    /// [`check_dpop`](Self::check_dpop)), RFC 9449 §5:
    /// - a session bound to a key refreshes only with a proof of that key;
    ///   without one, or with another key's, the refresh is refused
    ///   ([`GrantRefusal::DpopKeyMismatch`]) *before* anything is consumed:
    ///   the token stays valid, no reuse is recorded, the session lives on,
    ///   and the key's holder can still refresh with it;
    /// - the new access token is bound to the proof's key (`token_type`
    ///   `"DPoP"`), and so is the new refresh token (an unbound session
    ///   refreshed with a proof is bound from then on);
    /// - without a binding, an unbound session gets bearer tokens, except in
    ///   DPoP mode `required` ([`DpopRefusal::ProofRequired`]).
    pub async fn refresh_dpop(
        &self,
        refresh_token: &str,
        binding: Option<&DpopBinding>,
    ) -> Result<TokenPair> {
        let verified = self.verify_refresh(refresh_token)?;
        let jkt = self.refresh_binding(&verified, binding)?;
        let VerifiedRefresh { jti, sub, .. } = verified;
        // Sign the next access token BEFORE consuming the refresh token.
        // Signing can fail (KMS or Vault unreachable, throttled); a failure
        // after the rotation would have consumed the token with nothing
        // delivered, and the client's retry would then look like reuse and
        // revoke the session. Only an active token is worth signing for; any
        // other state goes straight to `rotate`, which decides (reuse, expiry,
        // revocation).
        let presigned = match self
            .inner
            .refresh_store
            .lookup(&jti)
            .await
            .map_err(Error::RefreshStore)?
        {
            Some(status) if status.is_active() && status.record.subject == sub => {
                let extra = stored_claims(&status.record)?;
                Some(
                    self.sign_access(&sub, &status.record.family, &extra, jkt)
                        .await?,
                )
            }
            _ => None,
        };
        let outcome = self
            .inner
            .refresh_store
            .rotate(&jti)
            .await
            .map_err(Error::RefreshStore)?;
        match outcome {
            RotateOutcome::Rotated {
                new,
                previous,
                replayed_within_grace,
            } => {
                if new.subject != sub {
                    // Cannot happen with a store that keeps subjects; refuse rather than mint.
                    tracing::error!(session = %new.family, "refresh token subject differs from the store's record");
                    return Err(Error::grant(GrantRefusal::Invalid(
                        jwt_core::ErrorKind::InvalidSubject,
                    )));
                }
                let access_token = match presigned {
                    Some(token) => token,
                    // A replay within the reuse grace (the token was already
                    // consumed when looked up): a retry gets the same successor.
                    None => {
                        self.sign_access(&sub, &new.family, &stored_claims(&new)?, jkt)
                            .await?
                    }
                };
                let pair = self.finish_pair(&new, access_token, jkt)?;
                tracing::info!(session = %new.family, generation = new.generation,
                    previous_generation = previous.generation, replayed_within_grace, "refreshed");
                Ok(pair)
            }
            RotateOutcome::Reused {
                family, revoked, ..
            } => {
                tracing::warn!(session = %family, newly_revoked = revoked,
                    "refresh token reuse detected: the session is revoked");
                tracing::warn!(target: "jwtkit::audit", event = "refresh.reuse_detected",
                    session = %family, newly_revoked = revoked,
                    "a used refresh token was presented again: the session is revoked");
                self.forget_session_tokens(&family);
                Err(Error::grant(GrantRefusal::Reused))
            }
            RotateOutcome::Expired => Err(Error::grant(GrantRefusal::Expired)),
            RotateOutcome::Revoked => Err(Error::grant(GrantRefusal::Revoked)),
            RotateOutcome::Unknown => Err(Error::grant(GrantRefusal::Unknown)),
            // A future outcome this version does not know: refuse (fail closed).
            _ => Err(Error::grant(GrantRefusal::Unknown)),
        }
    }

    /// The key a refresh binds its new tokens to, after checking the
    /// session's binding; nothing is consumed when this refuses.
    fn refresh_binding<'b>(
        &self,
        verified: &VerifiedRefresh,
        binding: Option<&'b DpopBinding>,
    ) -> Result<Option<&'b str>> {
        if let Some(bound) = &verified.binding {
            let proven = binding.map(DpopBinding::jkt);
            if bound.as_deref().is_none() || proven != bound.as_deref() {
                let family = verified.jti.family();
                tracing::warn!(target: "jwtkit::audit", event = "refresh.dpop_key_mismatch",
                    session = %family, with_proof = binding.is_some(),
                    "a DPoP-bound refresh token was presented without a proof of its key; \
                     refused, nothing consumed");
                return Err(Error::grant(GrantRefusal::DpopKeyMismatch));
            }
        }
        self.issuance_binding(binding)
    }

    /// Revokes the session (refresh family) of a refresh token: the token, its
    /// predecessors and successors stop refreshing. Access tokens already
    /// issued stay valid until they expire (a resource server that must see
    /// the logout at once checks their `sid`, the session id); the session's
    /// are dropped from the verified-token cache. `Ok(false)` when the
    /// session was already revoked or gone; an invalid token is
    /// [`Error::InvalidGrant`].
    pub async fn revoke_session(&self, refresh_token: &str) -> Result<bool> {
        let family = self.verify_refresh(refresh_token)?.jti.family();
        let revoked = self.end_session(&family, "refresh_token").await?;
        tracing::info!(session = %family, newly_revoked = revoked, "session revoked");
        Ok(revoked)
    }

    /// Revokes the session of `token`, a refresh token or an access token of
    /// this service (RFC 7009 §2.1: `hint` is `token_type_hint`,
    /// `refresh_token` or `access_token`, and says which kind is tried
    /// first; any other value is ignored). An access token ends the session
    /// its `sid` names: its refresh tokens stop refreshing, introspection
    /// reports its access tokens inactive at once, and they leave the
    /// verified-token cache (other resource servers that verify them
    /// themselves accept them until `exp`). Holding the token is the
    /// credential, as for a refresh token, except for a token bound to a
    /// DPoP key: it ends its session only with `binding`, from a proof of
    /// that key ([`check_dpop_with_token`](Self::check_dpop_with_token));
    /// without one it is [`Error::Dpop`] (`missing_proof`, or
    /// `key_mismatch` for another key's), so a stolen bound token cannot log
    /// its owner out.
    ///
    /// `Ok(false)` when the session was already revoked or is gone; a token
    /// that is neither (invalid, expired, another issuer's, an access token
    /// without `sid`) is [`Error::InvalidGrant`] — RFC 7009 §2.2 answers it
    /// like a success.
    pub async fn revoke_token(
        &self,
        token: &str,
        hint: Option<&str>,
        binding: Option<&DpopBinding>,
    ) -> Result<bool> {
        if hint == Some("access_token") {
            return match self.revoke_by_access_token(token, binding).await {
                Err(Error::InvalidGrant { .. }) => {
                    self.revoke_by_refresh_token(token, binding).await
                }
                other => other,
            };
        }
        match self.revoke_by_refresh_token(token, binding).await {
            Err(Error::InvalidGrant { reason }) => {
                match self.revoke_by_access_token(token, binding).await {
                    Err(Error::InvalidGrant { .. }) => Err(Error::InvalidGrant { reason }),
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn revoke_by_refresh_token(
        &self,
        token: &str,
        binding: Option<&DpopBinding>,
    ) -> Result<bool> {
        let verified = self.verify_refresh(token)?;
        holds_binding(verified.binding.as_ref().map(Option::as_deref), binding)?;
        let family = verified.jti.family();
        let revoked = self.end_session(&family, "refresh_token").await?;
        tracing::info!(session = %family, newly_revoked = revoked, "session revoked");
        Ok(revoked)
    }

    async fn revoke_by_access_token(
        &self,
        token: &str,
        binding: Option<&DpopBinding>,
    ) -> Result<bool> {
        let Some(session) = self.access_session(token).await else {
            return Err(Error::grant(GrantRefusal::Invalid(
                jwt_core::ErrorKind::Malformed,
            )));
        };
        holds_binding(session.jkt.as_ref().map(Option::as_deref), binding)?;
        self.end_session(&session.family, "access_token").await
    }

    /// The session an access token of this service names (`sid`) and the
    /// DPoP key it is bound to, when the token verifies (signature, issuer,
    /// audience, time; bound or not).
    async fn access_session(&self, token: &str) -> Option<AccessSession> {
        #[derive(serde::Deserialize)]
        struct Claims {
            sid: Option<String>,
            #[serde(default)]
            cnf: Option<RefreshConfirmation>,
        }
        let verified = self.inner.access.verify::<Claims>(token).await.ok()?;
        let family = FamilyId::parse(verified.claims.sid.as_deref()?).ok()?;
        Some(AccessSession {
            family,
            jkt: verified.claims.cnf.map(|c| c.jkt),
        })
    }

    /// Revokes the session `sid` (the `sid` of its access tokens, the
    /// `session` of [`TokenPair`], an id from [`sessions`](Self::sessions)),
    /// for an administrator or a "log out that device" page. `Ok(false)`
    /// when it was already revoked or is unknown; a malformed id is
    /// [`Error::InvalidRequest`].
    pub async fn revoke_session_id(&self, sid: &str) -> Result<bool> {
        let family = FamilyId::parse(sid).map_err(|_| Error::InvalidRequest {
            reason: format!(
                "{:?} is not a session id (the `sid` claim of an access token, or an id from \
                 the sessions list)",
                sid.chars().take(64).collect::<String>()
            ),
        })?;
        self.end_session(&family, "session_id").await
    }

    /// Revokes `family`, drops its tokens from the verified-token cache and
    /// writes the `session.revoked` audit record (`by`: what named it).
    async fn end_session(&self, family: &FamilyId, by: &'static str) -> Result<bool> {
        let revoked = self
            .inner
            .refresh_store
            .revoke_family(family)
            .await
            .map_err(Error::RefreshStore)?;
        self.forget_session_tokens(family);
        tracing::info!(target: "jwtkit::audit", event = "session.revoked",
            session = %family, newly_revoked = revoked, by, "a session was revoked");
        Ok(revoked)
    }

    /// The live sessions of `subject`, oldest first (login time, last
    /// refresh, end, the client description given at login).
    pub async fn sessions(&self, subject: &str) -> Result<Vec<SessionInfo>> {
        self.inner
            .refresh_store
            .sessions(subject)
            .await
            .map_err(input_or_store_error)
    }

    /// Revokes every session of `subject` (logout everywhere, password
    /// change). Returns how many were revoked. The subject's access tokens
    /// stay valid until they expire; they are dropped from the
    /// verified-token cache.
    pub async fn revoke_subject(&self, subject: &str) -> Result<usize> {
        let n = self
            .inner
            .refresh_store
            .revoke_subject(subject)
            .await
            .map_err(Error::RefreshStore)?;
        self.forget_subject_tokens(subject);
        tracing::info!(sessions = n, "all sessions of a subject revoked");
        tracing::info!(target: "jwtkit::audit", event = "subject.revoked",
            subject_digest = %subject_digest(subject), sessions = n,
            "every session of a subject was revoked");
        Ok(n)
    }

    /// Token introspection (RFC 7662): what a resource server may know
    /// about `token`, an access or a refresh token of this service.
    ///
    /// `Ok(Some(members))` for a token that is valid now *and* whose session
    /// is live: the members of the introspection answer besides `active`
    /// (`sub`, `exp`, `iat`, `iss`, `aud`, `jti`, `sid`, `token_type` — `Bearer`
    /// for an access token, `DPoP` for one bound to a DPoP key,
    /// `refresh_token` for a refresh token — `scope` and `client_id` when
    /// the session has them, and `cnf` for a bound token, RFC 9449 §6.2). `Ok(None)` for
    /// anything else: expired, not yet valid, a bad signature, garbage, a
    /// token of another issuer, an unknown token, or one whose session was
    /// revoked, reused or ended — so a resource server that introspects sees
    /// a logout at once, not at the access token's `exp`. An access token
    /// without `sid` (signed before sessions were named) is judged by its
    /// signature and claims alone.
    ///
    /// `hint` is RFC 7662's `token_type_hint` (`access_token` or
    /// `refresh_token`): that kind is tried first; any other value is
    /// ignored. Errors are the stores' (unreachable, timed out): the answer
    /// is then unknown, not "inactive"; retry.
    pub async fn introspect(
        &self,
        token: &str,
        hint: Option<&str>,
    ) -> Result<Option<Map<String, Value>>> {
        if hint == Some("refresh_token") {
            if let Some(found) = self.introspect_refresh(token).await? {
                return Ok(Some(found));
            }
            return self.introspect_access(token).await;
        }
        if let Some(found) = self.introspect_access(token).await? {
            return Ok(Some(found));
        }
        self.introspect_refresh(token).await
    }

    /// The introspection answer as a signed JWT (RFC 9701, for a resource
    /// server that asks with `Accept: application/token-introspection+jwt`):
    /// `{"iss", "aud", "iat", "token_introspection": {"active": …, …}}`,
    /// signed with the service's access-token key, `typ`
    /// `token-introspection+jwt`, valid for [`INTROSPECTION_JWT_TTL_SECS`]
    /// (`exp`, so that verifiers that require it can check the answer).
    /// `answer` is [`introspect`](Self::introspect)'s result; `audience` is
    /// the resource server that asked (RFC 9701 §5: its identifier; the
    /// service's access-token audience when it has none).
    pub async fn introspection_jwt(
        &self,
        answer: Option<Map<String, Value>>,
        audience: Option<&str>,
    ) -> Result<String> {
        let mut introspection = Map::new();
        introspection.insert("active".into(), answer.is_some().into());
        if let Some(members) = answer {
            introspection.extend(members);
        }
        let mut claims = Map::new();
        claims.insert("iss".into(), self.inner.issuer.clone().into());
        claims.insert(
            "aud".into(),
            audience.unwrap_or(&self.inner.audience).to_owned().into(),
        );
        let now = self.inner.clock.now();
        claims.insert("iat".into(), now.into());
        // Not asked for by RFC 9701, but without it no JWT verifier that
        // requires `exp` (jwtkit's, by default) can check the answer; a
        // resource server asks again rather than keep an old answer.
        claims.insert(
            "exp".into(),
            now.saturating_add(INTROSPECTION_JWT_TTL_SECS).into(),
        );
        claims.insert("token_introspection".into(), Value::Object(introspection));
        self.inner
            .key_store
            .sign_token(&claims, Some(INTROSPECTION_TYP))
            .await
            .map_err(Error::KeyStore)
    }

    async fn introspect_access(&self, token: &str) -> Result<Option<Map<String, Value>>> {
        // This service's own tokens only (external issuers introspect
        // theirs); a key another replica just rotated in is loaded.
        let Ok(claims) = self
            .inner
            .access
            .verify::<Map<String, Value>>(token)
            .await
            .map(|d| d.claims)
        else {
            return Ok(None);
        };
        if let Some(sid) = claims.get("sid") {
            let Some(family) = sid.as_str().and_then(|s| FamilyId::parse(s).ok()) else {
                return Ok(None);
            };
            let live = self
                .inner
                .refresh_store
                .session_active(&family)
                .await
                .map_err(Error::RefreshStore)?;
            if !live {
                return Ok(None);
            }
        }
        let mut out = Map::new();
        for name in [
            "sub",
            "exp",
            "iat",
            "iss",
            "aud",
            "jti",
            "sid",
            "scope",
            "client_id",
            "cnf",
        ] {
            if let Some(v) = claims.get(name) {
                out.insert(name.into(), v.clone());
            }
        }
        let token_type = if claims.contains_key("cnf") {
            "DPoP"
        } else {
            "Bearer"
        };
        out.insert("token_type".into(), token_type.into());
        Ok(Some(out))
    }

    async fn introspect_refresh(&self, token: &str) -> Result<Option<Map<String, Value>>> {
        let Ok(VerifiedRefresh { jti, sub, binding }) = self.verify_refresh(token) else {
            return Ok(None);
        };
        let status = self
            .inner
            .refresh_store
            .lookup(&jti)
            .await
            .map_err(Error::RefreshStore)?;
        let Some(status) = status.filter(|s| s.is_active() && s.record.subject == sub) else {
            return Ok(None);
        };
        let record = &status.record;
        let mut out = Map::new();
        out.insert("sub".into(), record.subject.clone().into());
        out.insert("exp".into(), record.expires_at.into());
        out.insert("iat".into(), record.issued_at.into());
        out.insert("iss".into(), self.inner.issuer.clone().into());
        out.insert("aud".into(), self.inner.issuer.clone().into());
        out.insert("jti".into(), record.jti.as_str().into());
        out.insert("sid".into(), record.family.to_string().into());
        // The session's claims may be unreadable (written by another
        // application): then they are left out, the token is still live.
        if let Ok(stored) = stored_claims(record) {
            for name in ["scope", "client_id"] {
                if let Some(v) = stored.get(name) {
                    out.insert(name.into(), v.clone());
                }
            }
        }
        if let Some(jkt) = binding {
            out.insert("cnf".into(), confirmation(jkt.as_deref()));
        }
        out.insert("token_type".into(), "refresh_token".into());
        Ok(Some(out))
    }

    /// The public keys that verify access tokens (pending, active and
    /// retiring keys), to publish at `/.well-known/jwks.json`.
    pub async fn jwks(&self) -> Result<Jwks> {
        self.inner
            .key_store
            .verification_keys()
            .await
            .map_err(Error::KeyStore)
    }

    /// How long verifiers may cache the JWKS: half the policy's `prepublish`
    /// (so every verifier has seen a new key before it signs), at most one
    /// hour. For `Cache-Control: max-age`.
    pub fn jwks_max_age(&self) -> Duration {
        (self.inner.policy.prepublish() / 2).min(Duration::from_secs(3600))
    }

    /// Reloads the verification keys from the key store now (after a
    /// rotation elsewhere). Concurrent calls share one load.
    pub async fn reload_keys(&self) -> Result<()> {
        self.inner.access.refresh().await.map_err(Error::KeyStore)
    }

    /// Applies the rotation policy once: rotates the access-token keys if
    /// due (and retires keys past their grace), then reloads the keys.
    /// Emits a `tracing` event for every rotation.
    pub async fn rotate_if_due(&self) -> Result<Option<RotationReport>> {
        let changes = self
            .inner
            .key_store
            .rotate_if_due()
            .await
            .map_err(Error::KeyStore)?;
        if changes.rotated.is_none() && !changes.retired.is_empty() {
            tracing::info!(store = self.inner.key_store.name(), retired = ?changes.retired,
                "access-token signing keys retired (their grace had ended)");
        }
        for kid in changes
            .rotated
            .iter()
            .flat_map(|r| r.retired.iter())
            .chain(&changes.retired)
        {
            tracing::info!(target: "jwtkit::audit", event = "key.retired",
                store = self.inner.key_store.name(), kid = %kid,
                "a signing key was retired: it no longer signs or verifies");
        }
        let report = changes.rotated;
        if let Some(r) = &report {
            tracing::info!(
                store = self.inner.key_store.name(),
                previous = r.previous.as_deref().unwrap_or("-"),
                active = %r.active,
                pending = %r.pending,
                previous_retire_at = r.previous_retire_at.unwrap_or(0),
                retired = ?r.retired,
                "access-token signing key rotated"
            );
            tracing::info!(target: "jwtkit::audit", event = "key.rotated",
                store = self.inner.key_store.name(),
                previous = r.previous.as_deref().unwrap_or("-"), active = %r.active,
                pending = %r.pending, "the signing key was rotated");
        }
        self.reload_keys().await?;
        Ok(report)
    }

    /// Spawns the maintenance task on the current tokio runtime: every
    /// `interval`, [`rotate_if_due`](Self::rotate_if_due) (which also reloads
    /// the keys, picking up rotations made by other processes). Failures are
    /// logged and retried at the next tick. The task stops when the returned
    /// handle is dropped or [`stop`](MaintenanceTask::stop)ped.
    pub fn spawn_maintenance(&self, interval: Duration) -> MaintenanceTask {
        let service = self.clone();
        let interval = interval.max(Duration::from_secs(1));
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(e) = service.rotate_if_due().await {
                    tracing::warn!(error = %e, retryable = e.is_retryable(), "key maintenance failed; retrying at the next tick");
                }
            }
        });
        MaintenanceTask { handle }
    }

    /// Checks that both stores answer: the key store has an active key, the
    /// refresh store answers a lookup.
    pub async fn health(&self) -> Health {
        let key_store = self
            .inner
            .key_store
            .active()
            .await
            .err()
            .map(Error::KeyStore);
        let probe = TokenId::parse("AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA");
        let refresh_store = match probe {
            Ok(id) => self
                .inner
                .refresh_store
                .lookup(&id)
                .await
                .err()
                .map(Error::RefreshStore),
            Err(e) => Some(Error::RefreshStore(e)),
        };
        Health {
            key_store,
            refresh_store,
        }
    }

    /// The verified-token cache's counters (hits, misses, evictions,
    /// expirations) and size, for metrics; `None` when the service was
    /// built with [`no_token_cache`](TokenServiceBuilder::no_token_cache).
    pub fn token_cache_stats(&self) -> Option<TokenCacheStats> {
        self.inner.access.token_cache_stats()
    }

    /// Drops the cached access tokens of `subject`, one of whose sessions
    /// (or all) was revoked, from the verified-token cache. Access tokens
    /// carry no session id yet (no `sid` claim), so the cache cannot tell
    /// one session's tokens from another's: every cached token of the
    /// subject is dropped (its other sessions' tokens are only verified
    /// afresh at their next use).
    /// Verification answers the same either way — access tokens are not
    /// checked against the refresh store — so this keeps the cache from
    /// holding what the service no longer vouches for, and is the place
    /// where a session-aware check (a `sid` claim) will narrow it.
    fn forget_subject_tokens(&self, subject: &str) {
        self.inner
            .access
            .forget_cached_tokens(CachedTokens::Subject(subject));
    }

    fn forget_session_tokens(&self, family: &FamilyId) {
        self.inner
            .access
            .forget_cached_tokens(CachedTokens::Session(&family.to_string()));
    }

    /// The refresh keys this service holds (the signing one first, a staged
    /// one, previous ones with their time): their kids and roles, never a
    /// secret. Log them at start, so that a roll-out of a rotated key file
    /// can be checked on every instance.
    pub fn refresh_keys(&self) -> Vec<crate::RefreshKeyInfo> {
        self.inner.refresh_key.keys()
    }

    /// The kids the in-memory verifier currently knows (a retiring key is
    /// left out once its grace has ended).
    pub fn loaded_kids(&self) -> Vec<String> {
        self.inner.access.cached_kids()
    }

    fn verify_refresh(&self, token: &str) -> Result<VerifiedRefresh> {
        let data = self
            .inner
            .refresh_verifier
            .verify::<RefreshClaims>(token)
            .map_err(|e| {
                if e.is_rejection() {
                    Error::grant(GrantRefusal::Invalid(e.kind()))
                } else {
                    Error::Encoding(e)
                }
            })?;
        // Signed by a previous refresh key whose time is over: as if unknown.
        if self
            .inner
            .refresh_key
            .expired(data.header.kid.as_deref(), self.inner.clock.now())
        {
            return Err(Error::grant(GrantRefusal::Invalid(
                jwt_core::ErrorKind::UnknownKey,
            )));
        }
        if data
            .claims
            .access_aud
            .as_deref()
            .is_some_and(|aud| aud != self.inner.audience)
        {
            return Err(Error::grant(GrantRefusal::Invalid(
                jwt_core::ErrorKind::InvalidAudience,
            )));
        }
        let jti = TokenId::parse(&data.claims.jti)
            .map_err(|_| Error::grant(GrantRefusal::Invalid(jwt_core::ErrorKind::InvalidClaim)))?;
        Ok(VerifiedRefresh {
            jti,
            sub: data.claims.sub,
            binding: data.claims.cnf.map(|c| c.jkt),
        })
    }

    async fn mint(
        &self,
        record: &RefreshRecord,
        extra: &Map<String, Value>,
        jkt: Option<&str>,
    ) -> Result<TokenPair> {
        let access_token = self
            .sign_access(&record.subject, &record.family, extra, jkt)
            .await?;
        self.finish_pair(record, access_token, jkt)
    }

    /// Signs an access token for `subject` in session `family` (through the
    /// key store: this is the step that can fail on a remote backend),
    /// bound to the DPoP key `jkt` when given.
    async fn sign_access(
        &self,
        subject: &str,
        family: &FamilyId,
        extra: &Map<String, Value>,
        jkt: Option<&str>,
    ) -> Result<String> {
        let now = self.inner.clock.now();
        let access_jti = random_id()?;
        let mut claims = Map::with_capacity(8 + extra.len());
        // Custom claims first, registered claims last: stored claims can never
        // override `iss`, `sub`, `aud`, `exp`, `iat`, `jti`, `sid` or `cnf`.
        for (k, v) in extra {
            claims.insert(k.clone(), v.clone());
        }
        claims.insert("iss".into(), self.inner.issuer.clone().into());
        claims.insert("sub".into(), subject.into());
        claims.insert("aud".into(), self.inner.audience.clone().into());
        claims.insert(
            "exp".into(),
            now.saturating_add(secs(self.inner.access_ttl)).into(),
        );
        claims.insert("iat".into(), now.into());
        claims.insert("jti".into(), access_jti.clone().into());
        claims.insert("sid".into(), family.to_string().into());
        if let Some(jkt) = jkt {
            claims.insert("cnf".into(), confirmation(Some(jkt)));
        }
        let access_token = self
            .inner
            .key_store
            .sign_token(&claims, Some(ACCESS_TYP))
            .await
            .map_err(Error::KeyStore)?;
        tracing::debug!(access_jti = %access_jti, "access token signed");
        Ok(access_token)
    }

    /// Adds the refresh token for `record` (signed in-process) to
    /// `access_token`; both are bound to the DPoP key `jkt` when given.
    fn finish_pair(
        &self,
        record: &RefreshRecord,
        access_token: String,
        jkt: Option<&str>,
    ) -> Result<TokenPair> {
        let mut refresh_claims = serde_json::json!({
            "iss": self.inner.issuer,
            "sub": record.subject,
            "aud": self.inner.issuer,
            "exp": record.expires_at,
            "iat": record.issued_at,
            "jti": record.jti.as_str(),
            "access_aud": self.inner.audience,
        });
        if let Some(jkt) = jkt {
            refresh_claims["cnf"] = confirmation(Some(jkt));
        }
        let refresh_token = self
            .inner
            .refresh_signer
            .sign(&refresh_claims)
            .map_err(Error::Encoding)?;
        tracing::debug!(session = %record.family, "tokens minted");
        Ok(TokenPair {
            access_token,
            token_type: if jkt.is_some() { "DPoP" } else { "Bearer" },
            expires_in: self.inner.access_ttl.as_secs(),
            refresh_token,
            refresh_expires_at: record.expires_at,
            session: record.family.to_string(),
        })
    }
}

/// Handle of the task started by [`TokenService::spawn_maintenance`]; the
/// task stops when this is dropped.
#[derive(Debug)]
pub struct MaintenanceTask {
    handle: tokio::task::JoinHandle<()>,
}

impl MaintenanceTask {
    /// Stops the task.
    pub fn stop(self) {
        // Drop does it.
    }
}

impl Drop for MaintenanceTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// `{"jkt": …}`, the `cnf` of a token bound to a DPoP key (RFC 9449 §6.1);
/// `{}` for a binding without a usable key (never written by this service).
fn confirmation(jkt: Option<&str>) -> Value {
    let mut cnf = Map::with_capacity(1);
    if let Some(jkt) = jkt {
        cnf.insert("jkt".into(), jkt.into());
    }
    Value::Object(cnf)
}

/// The custom claims kept with a session (its refresh record's metadata),
/// read with the verifier's strict parser: `serde_json::from_str::<Value>`
/// would act on serde_json's private member names
/// (`{"$serde_json::private::RawValue": "<json>"}` becomes the JSON inside
/// the string), so stored text could turn into claims it never showed. The
/// reserved claims are refused here too, whoever wrote the record.
/// The first 16 hex digits of SHA-256(subject): lets audit records about one
/// subject be correlated without writing the subject (a claim value) into them.
fn subject_digest(subject: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, subject.as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A refresh-store error: the caller's bad input as `invalid_request`,
/// anything else as the store's error.
fn input_or_store_error(e: jwt_refresh::Error) -> Error {
    match e {
        jwt_refresh::Error::InvalidInput { what, reason } => Error::InvalidRequest {
            reason: format!("{what}: {reason}"),
        },
        e => Error::RefreshStore(e),
    }
}

fn stored_claims(record: &RefreshRecord) -> Result<Map<String, Value>> {
    match record.metadata.as_deref() {
        None => Ok(Map::new()),
        Some(json) => jwt_core::parse_claims(json.as_bytes())
            .map_err(|e| Error::InvalidRequest {
                reason: format!(
                    "the session's stored claims cannot be used (written by another \
                     application?): {}",
                    claims_reason(e)
                ),
            })
            .and_then(check_reserved),
    }
}

/// The reason of a `jwt_core::parse_claims` refusal, without the generic prefix.
fn claims_reason(e: jwt_core::Error) -> String {
    match e {
        jwt_core::Error::Config { reason } => reason,
        other => other.to_string(),
    }
}

fn random_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The custom claims of [`TokenService::issue`], serialized and read back
/// with the verifier's strict parser, so the session keeps exactly what the
/// tokens will carry: duplicate member names (a custom `Serialize`), serde_json's
/// private member names and nesting deeper than the verifier reads are refused.
fn claims_map<C: Serialize + ?Sized>(claims: &C) -> Result<Map<String, Value>> {
    let json = serde_json::to_vec(claims).map_err(|e| Error::InvalidRequest {
        reason: format!("the custom claims cannot be serialized: {e}"),
    })?;
    if json == b"null" {
        return Ok(Map::new());
    }
    let map = jwt_core::parse_claims(&json).map_err(|e| Error::InvalidRequest {
        reason: format!("the custom claims are refused: {}", claims_reason(e)),
    })?;
    check_reserved(map)
}

/// Refuses the registered claims the service sets itself, and a `scope` or
/// `client_id` that is not a string: RFC 9068 §2.2 has both as strings in
/// an access token, and introspection reports them as such (RFC 7662 §2.2).
fn check_reserved(map: Map<String, Value>) -> Result<Map<String, Value>> {
    if let Some(name) = map.keys().find(|k| RESERVED_CLAIMS.contains(&k.as_str())) {
        return Err(Error::InvalidRequest {
            reason: format!(
                "`{name}` is set by the token service and cannot be a custom claim (reserved: {})",
                RESERVED_CLAIMS.join(", ")
            ),
        });
    }
    for name in STRING_CLAIMS {
        if map.get(name).is_some_and(|v| !v.is_string()) {
            return Err(Error::InvalidRequest {
                reason: format!(
                    "`{name}` must be a string (RFC 9068 §2.2; for `scope`, space-separated \
                     scope names such as \"read write\")"
                ),
            });
        }
    }
    Ok(map)
}

/// Custom claims whose value must be a string when present.
const STRING_CLAIMS: [&str; 2] = ["scope", "client_id"];

/// The access-token verifier over the key store: the algorithms come from
/// the store's records ([`AlgorithmRule::KeysOnly`](jwt_keys::AlgorithmRule)),
/// exactly as for `jwtkit verify --store`, never from a key's family.
pub(crate) fn access_verifier(
    key_store: Arc<dyn KeyStore>,
    issuer: &str,
    audience: &str,
    leeway: Duration,
    clock: Arc<dyn Clock>,
    token_cache: Option<TokenCacheOptions>,
) -> Result<jwt_keys::Verifier> {
    let validation = Validation::new(Algorithm::ALL)
        .issuer(issuer)
        .audience(audience)
        .typ(ACCESS_TYP)
        .leeway(leeway)
        .require("sub")
        .require("iat")
        .require("jti")
        .clock(clock.clone());
    let mut builder =
        jwt_keys::Verifier::builder(jwt_keys::KeySource::Store(key_store), validation)
            .algorithms(jwt_keys::AlgorithmRule::KeysOnly)
            .clock(clock)
            // The service's keys are its own: they keep verifying while the
            // store is unreachable (a retiring key still stops at the end of its
            // grace, in memory), as they did before the verifier held them.
            .cache(jwt_keys::CacheOptions::default().with_max_stale(KEYS_NEVER_STALE));
    if let Some(options) = token_cache {
        builder = builder.token_cache(options);
    }
    builder.build().map_err(|e| match e {
        // The caller's `token_cache` options: a setting of this builder.
        jwt_keys::Error::InvalidConfig { setting, reason }
            if setting.starts_with("token_cache") =>
        {
            Error::config(setting, reason)
        }
        e => Error::KeyStore(e),
    })
}

/// `max_stale` of the service's verifier: a century, i.e. never.
const KEYS_NEVER_STALE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// An access-token refusal is `invalid_token`; a verifier that cannot
/// serve (no keys loaded) is a key-store failure.
fn access_error(e: jwt_keys::Error) -> Error {
    match e {
        jwt_keys::Error::Core(e) => Error::InvalidToken(e),
        other => Error::KeyStore(other),
    }
}

#[cfg(test)]
mod tests {
    use jwt_keys::MemoryKeyStore;
    use serde::ser::{SerializeMap, Serializer};

    use super::*;

    async fn service() -> TokenService {
        TokenService::builder()
            .key_store(MemoryKeyStore::new())
            .init_key_store(Algorithm::ES256)
            .issuer("https://auth.example.com")
            .audience("api")
            .build()
            .await
            .unwrap()
    }

    fn payload(token: &str) -> Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&jwt_core::b64::decode(part.as_bytes(), "payload").unwrap()).unwrap()
    }

    /// A refresh token for a session whose stored claims are `metadata`, as
    /// another application sharing the refresh store (or an older version
    /// of this one) could have written them.
    async fn session_with(tokens: &TokenService, metadata: &str) -> String {
        let record = tokens
            .refresh_store()
            .issue(NewRefresh::login("mallory").metadata(metadata))
            .await
            .unwrap();
        tokens
            .finish_pair(&record, String::new(), None)
            .unwrap()
            .refresh_token
    }

    /// Issue 11 item 6: stored claims are read with the strict parser, so a
    /// private member name is refused instead of becoming `role` and `nbf`.
    #[tokio::test]
    async fn stored_claims_are_read_strictly() {
        let tokens = service().await;
        let hidden =
            r#"{"$serde_json::private::RawValue":"{\"role\":\"admin\",\"nbf\":4000000000}"}"#;
        let refresh = session_with(&tokens, hidden).await;
        match tokens.refresh(&refresh).await {
            Err(Error::InvalidRequest { reason }) => {
                assert!(reason.contains("stored claims"), "{reason}");
                assert!(reason.contains("is reserved"), "{reason}");
            }
            other => panic!("expected invalid_request, got {other:?}"),
        }
        for (metadata, fragment) in [
            (r#"{"role":"user","role":"admin"}"#, "duplicate member name"),
            (r#"{"nbf":4000000000}"#, "`nbf` is set by the token service"),
            ("[1]", "must be a JSON object"),
        ] {
            let refresh = session_with(&tokens, metadata).await;
            match tokens.refresh(&refresh).await {
                Err(Error::InvalidRequest { reason }) => {
                    assert!(reason.contains(fragment), "{metadata}: {reason}")
                }
                other => panic!("{metadata}: expected invalid_request, got {other:?}"),
            }
        }
        // Ordinary stored claims still come back as they were.
        let refresh = session_with(&tokens, r#"{"role":"user","p":{"a":[1]}}"#).await;
        let pair = tokens.refresh(&refresh).await.unwrap();
        let claims = payload(&pair.access_token);
        assert_eq!(claims["role"], "user");
        assert_eq!(claims["p"], serde_json::json!({"a":[1]}));
    }

    /// Custom claims whose `Serialize` writes a member twice.
    struct Twice;

    impl Serialize for Twice {
        fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry("role", "user")?;
            map.serialize_entry("role", "admin")?;
            map.end()
        }
    }

    #[tokio::test]
    async fn issue_reads_custom_claims_strictly() {
        let tokens = service().await;
        let cases: [(&dyn erased::Claims, &str); 3] = [
            (&Twice, r#"duplicate member name "role""#),
            (
                &serde_json::json!({"p": {"$serde_json::private::RawValue": "{}"}}),
                "is reserved",
            ),
            (&serde_json::json!(["role"]), "must be a JSON object"),
        ];
        for (claims, fragment) in cases {
            match claims.issue(&tokens).await {
                Err(Error::InvalidRequest { reason }) => {
                    assert!(reason.contains(fragment), "{reason}")
                }
                other => panic!("expected invalid_request, got {other:?}"),
            }
        }
        // `()` is no claims at all.
        assert!(tokens.issue("alice", &()).await.is_ok());
    }

    mod erased {
        use super::*;

        /// Lets the test list claims of different types.
        pub(super) trait Claims: Sync {
            fn issue<'a>(
                &'a self,
                tokens: &'a TokenService,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<TokenPair>> + Send + 'a>>;
        }

        impl<T: Serialize + Sync> Claims for T {
            fn issue<'a>(
                &'a self,
                tokens: &'a TokenService,
            ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<TokenPair>> + Send + 'a>>
            {
                Box::pin(tokens.issue("mallory", self))
            }
        }
    }
}
