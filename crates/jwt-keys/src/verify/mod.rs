//! A verifier that follows a key source: a [`KeyStore`], a local JWKS, or an
//! identity provider's JWKS URL (Auth0, Cognito, Google, Entra, Keycloak),
//! or — inside a [`MultiIssuerVerifier`](crate::MultiIssuerVerifier) — an
//! issuer found by [discovery](crate::discovery), whose metadata names the
//! JWKS URL (fetched by the same code as any other).
//!
//! Keys are looked up by `kid` in an in-memory map; the hot path does no I/O
//! and awaits nothing. The key set is refreshed:
//! - ahead of expiry, in the background (the request that notices does not wait);
//! - on an unknown `kid` (a rotation at the provider), at most once per
//!   `cooldown`, so a flood of tokens with made-up kids causes one fetch;
//! - one fetch at a time, however many requests need one (single-flight).
//!
//! When a refresh fails or returns garbage, the last good key set keeps
//! serving (stale-if-error) for up to `max_stale` past its expiry. A
//! store's retiring keys stop verifying exactly when their grace ends.
//!
//! Keys come only from the configured source: header `jku`, `x5u`, `jwk` and
//! `x5c` are never followed (RFC 8725 §3.10). A remote JWKS is fetched from
//! the configured URL only: redirects are refused, not followed.
//!
//! When a JWKS names several keys with one `kid`, each of them is tried in
//! document order (at most four), as panva/jose does, and one warning is
//! logged per fetched document.
//!
//! With [`VerifierBuilder::token_cache`], tokens that verified are kept
//! (by the SHA-256 of the whole token, from their second verification on)
//! and a repeated token answers without another signature verification:
//! the time checks are made again on every hit, and a change of the key set
//! makes every entry a miss. See [`TokenCacheOptions`].
//!
//! Which algorithms a key verifies with is decided in one place,
//! [`verification_algorithms`]: the algorithm the key is bound to (a JWK's
//! `alg`, a store's record), or the caller's list where the key names none —
//! never a guess from the key's family.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use jwt_core::{Algorithm, Clock, Jwks, KeySet, SystemClock, TokenData, Validation, VerifyingKey};
use serde::de::DeserializeOwned;

use crate::discovery::{DiscoverySource, IssuerMetadata};
use crate::error::{Error, Result};
use crate::remote::{self, JwksKeys};
use crate::store::{KeyState, KeyStore};
use jwt_core::time::secs;

mod algorithms;
mod options;
mod snapshot;
mod token_cache;

pub(crate) use algorithms::{issuer_default, PUBLIC_KEY_ALGORITHMS};
pub use algorithms::{verification_algorithms, AlgorithmRule};
pub use options::CacheOptions;
use snapshot::{Snapshot, Times};
use token_cache::TokenCache;
pub use token_cache::{
    CachedTokens, TokenCacheOptions, TokenCacheStats, DEFAULT_TOKEN_CACHE_BYTES,
    DEFAULT_TOKEN_CACHE_ENTRIES, DEFAULT_TOKEN_CACHE_MAX_TOKEN,
};

/// Where a [`Verifier`] gets its keys.
#[non_exhaustive]
pub enum KeySource {
    /// A key store's verification keys (refreshed like a remote JWKS, and
    /// always when a retiring key's grace ends).
    Store(Arc<dyn KeyStore>),
    /// A fixed JWKS.
    Jwks(Jwks),
    /// A fixed key set (may hold HMAC secrets).
    KeySet(Arc<KeySet>),
    /// One fixed key (a PEM, DER or JWK file, an HMAC secret), used for
    /// every token unless the key has a `kid` and the token names another.
    /// It verifies with exactly the [`Validation`]'s algorithms, each of
    /// which it must fit (checked when building).
    Key(Box<VerifyingKey>),
    /// A JWKS URL (`https://`, or `http://` to a loopback address). A
    /// redirect answer is an error naming the status and the `Location`:
    /// configure the final URL.
    Remote(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Store(s) => write!(f, "Store({})", s.name()),
            KeySource::Jwks(j) => write!(f, "Jwks({} keys)", j.keys.len()),
            KeySource::KeySet(k) => write!(f, "KeySet({} keys)", k.len()),
            KeySource::Key(k) => write!(f, "Key({})", k.family().name()),
            KeySource::Remote(u) => write!(f, "Remote({u})"),
        }
    }
}

/// Verifies tokens with keys from a [`KeySource`] and a `jwt-core`
/// [`Validation`]. Cheap to clone (clones share the cache).
///
/// ```no_run
/// use jwt_core::{Algorithm, Validation};
/// use jwt_keys::{KeySource, Verifier};
///
/// # async fn run(token: &str) -> Result<(), jwt_keys::Error> {
/// let verifier = Verifier::new(
///     KeySource::Remote("https://example.eu.auth0.com/.well-known/jwks.json".into()),
///     Validation::new([Algorithm::RS256])
///         .issuer("https://example.eu.auth0.com/")
///         .audience("my-api"),
/// )?;
/// let claims = verifier.verify::<serde_json::Value>(token).await?.claims;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("source", &self.inner.name)
            .field("token_cache", &self.inner.token_cache)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Verifier`].
pub struct VerifierBuilder {
    source: Origin,
    validation: Validation,
    rule: AlgorithmRule,
    options: CacheOptions,
    clock: Arc<dyn Clock>,
    token_cache: Option<TokenCacheOptions>,
}

/// Where a builder's keys come from: a public [`KeySource`], or an issuer
/// found by discovery (built by [`MultiIssuerVerifier`](crate::MultiIssuerVerifier)).
enum Origin {
    Public(KeySource),
    Discovery {
        issuer: String,
        narrow: Option<Narrow>,
    },
}

/// Builds the validation of one load from the algorithms the issuer's
/// metadata allows (the caller's other settings kept).
pub(crate) type Narrow = Box<dyn Fn(Vec<Algorithm>) -> Validation + Send + Sync>;

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("VerifierBuilder");
        match &self.source {
            Origin::Public(source) => d.field("source", source),
            Origin::Discovery { issuer, .. } => d.field("discovery", issuer),
        };
        d.field("validation", &self.validation)
            .field("rule", &self.rule)
            .field("options", &self.options)
            .field("token_cache", &self.token_cache)
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// A builder for the issuer `issuer`, whose keys are found by discovery
    /// (checked when built). `narrow`, when given, rebuilds the validation
    /// at each load with the algorithms the metadata declares (intersected
    /// with the validation's); without it the validation is used as given.
    pub(crate) fn discovery(
        issuer: &str,
        validation: Validation,
        rule: AlgorithmRule,
        narrow: Option<Narrow>,
    ) -> VerifierBuilder {
        VerifierBuilder {
            source: Origin::Discovery {
                issuer: issuer.to_owned(),
                narrow,
            },
            validation,
            rule,
            options: CacheOptions::default(),
            clock: Arc::new(SystemClock),
            token_cache: None,
        }
    }

    /// Cache options for refreshing sources.
    pub fn cache(mut self, options: CacheOptions) -> Self {
        self.options = options;
        self
    }

    /// The clock for cache lifetimes, cooldowns and the end of a retiring
    /// key's grace. Give it the same clock as the [`Validation`] and the store.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where the algorithms each key verifies with come from (default
    /// [`AlgorithmRule::Listed`]: the [`Validation`]'s list); see
    /// [`verification_algorithms`].
    pub fn algorithms(mut self, rule: AlgorithmRule) -> Self {
        self.rule = rule;
        self
    }

    /// Keeps the tokens that verified (from their second verification on),
    /// so that a repeated token answers without another signature
    /// verification (off by default). A hit answers exactly what a
    /// verification would at that moment: `exp`, `nbf` and `iat` are
    /// checked again with the [`Validation`]'s clock, a key set that changed
    /// since (rotation, retirement, removal) makes it a miss, and only
    /// tokens that verified are ever kept.
    ///
    /// Worth it for asymmetric algorithms: a hit costs ~0.75 µs against
    /// ~54 µs for an ES256 verification, and a token seen once adds ~0.4 µs.
    /// An HS256 verification (~1 µs) gains little from a hit (~0.65 µs) and
    /// loses as much on a token seen once.
    pub fn token_cache(mut self, options: TokenCacheOptions) -> Self {
        self.token_cache = Some(options);
        self
    }

    /// Checks the options and builds the verifier. Nothing is fetched yet:
    /// the first verification (or [`Verifier::refresh`]) loads the keys.
    /// A fixed source none of whose keys can verify under the algorithm rule
    /// is refused here.
    pub fn build(self) -> Result<Verifier> {
        self.options.validate()?;
        if let Some(options) = &self.token_cache {
            options.validate()?;
        }
        // Checks the validation (algorithms named, …) up front.
        jwt_core::Verifier::with_key_set(KeySet::new(), self.validation.clone())?;
        let (source, name, initial) = match self.source {
            Origin::Discovery { issuer, narrow } => {
                let discovery = DiscoverySource::new(&issuer, &self.options)?;
                (
                    Source::Discovery {
                        source: Box::new(discovery),
                        narrow,
                    },
                    format!("the issuer {issuer}"),
                    None,
                )
            }
            Origin::Public(source) => Self::public_source(source, &self.options)?,
        };
        let snapshot = match initial {
            Some(input) => {
                let snap = Snapshot::new(
                    input,
                    Vec::new(),
                    self.validation.clone(),
                    self.rule,
                    Times::forever(self.clock.now()),
                    self.clock.now(),
                )?;
                snap.check_usable()?;
                Some(Arc::new(snap))
            }
            None => None,
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                source,
                name,
                validation: self.validation,
                rule: self.rule,
                options: self.options,
                clock: self.clock,
                snapshot: RwLock::new(snapshot),
                fetch_lock: tokio::sync::Mutex::new(()),
                attempts: AtomicU64::new(0),
                last_attempt: AtomicI64::new(i64::MIN),
                last_failure: AtomicI64::new(i64::MIN),
                background: AtomicBool::new(false),
                fetches: AtomicU64::new(0),
                token_cache: self.token_cache.map(TokenCache::new),
            }),
        })
    }

    /// The source, its name and its fixed keys (if it has fixed keys).
    fn public_source(
        source: KeySource,
        options: &CacheOptions,
    ) -> Result<(Source, String, Option<Input>)> {
        Ok(match source {
            KeySource::Store(store) => {
                let name = format!("the {} key store", store.name());
                (Source::Store(store), name, None)
            }
            KeySource::Remote(url) => {
                let parsed = remote::parse_url(&url)?;
                let client = remote::client(options, &parsed)?;
                (
                    Source::Remote {
                        url: parsed,
                        client,
                    },
                    // The name shows in errors, logs and Debug: never a password.
                    crate::uri::redact_url(&url),
                    None,
                )
            }
            KeySource::Jwks(jwks) => {
                let keys = JwksKeys::from_jwks(&jwks);
                if keys.primary.is_empty() {
                    return Err(Error::invalid_config(
                        "key_source",
                        format!(
                            "the JWKS has no usable signature key ({} entries skipped: {:?})",
                            keys.primary.skipped().len(),
                            keys.primary.skipped()
                        ),
                    ));
                }
                keys.warn_duplicates("a fixed JWKS");
                (
                    Source::Static,
                    "a fixed JWKS".to_owned(),
                    Some(Input::Set(keys)),
                )
            }
            KeySource::KeySet(set) => (
                Source::Static,
                "a fixed key set".to_owned(),
                Some(Input::Set(JwksKeys {
                    primary: KeySet::clone(&set),
                    ..JwksKeys::default()
                })),
            ),
            KeySource::Key(key) => (
                Source::Static,
                "a fixed key".to_owned(),
                Some(Input::Single(key)),
            ),
        })
    }
}

enum Source {
    Static,
    Store(Arc<dyn KeyStore>),
    Remote {
        url: reqwest::Url,
        client: reqwest::Client,
    },
    /// An issuer's metadata and the JWKS it names.
    Discovery {
        source: Box<DiscoverySource>,
        /// Present when the algorithms are the issuer's default (the
        /// caller named none): each load narrows them to what the
        /// metadata declares.
        narrow: Option<Narrow>,
    },
}

/// The keys a snapshot is built from, kept so that it can be rebuilt
/// without I/O when a retiring key's grace ends.
#[derive(Clone)]
enum Input {
    Set(JwksKeys),
    Single(Box<VerifyingKey>),
}

struct Inner {
    source: Source,
    name: String,
    validation: Validation,
    rule: AlgorithmRule,
    options: CacheOptions,
    clock: Arc<dyn Clock>,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    fetch_lock: tokio::sync::Mutex<()>,
    /// Incremented by every fetch attempt; waiters compare it to skip a
    /// fetch someone else did while they waited (single-flight).
    attempts: AtomicU64,
    /// The last fetch caused by traffic (a missing set, an unknown kid, a
    /// refresh ahead of expiry): the cooldown counts from it. An explicit
    /// [`Verifier::refresh`] does not count, so an operator's reload never
    /// delays picking up a rotation announced by a token's kid.
    last_attempt: AtomicI64,
    last_failure: AtomicI64,
    background: AtomicBool,
    fetches: AtomicU64,
    token_cache: Option<TokenCache>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// No usable key set: the caller waits.
    Blocking,
    /// A token's kid is unknown.
    Miss,
    /// Refresh ahead of expiry.
    Background,
    /// Asked for explicitly.
    Forced,
}

impl Verifier {
    /// A verifier with the default cache options and the system clock.
    pub fn new(source: KeySource, validation: Validation) -> Result<Verifier> {
        Verifier::builder(source, validation).build()
    }

    /// A builder, to set cache options, a clock or the algorithm rule.
    pub fn builder(source: KeySource, validation: Validation) -> VerifierBuilder {
        VerifierBuilder {
            source: Origin::Public(source),
            validation,
            rule: AlgorithmRule::default(),
            options: CacheOptions::default(),
            clock: Arc::new(SystemClock),
            token_cache: None,
        }
    }

    /// Verifies `token` and deserializes its claims. Awaits only when the
    /// key set must be (re)loaded: first use, expiry past `max_stale`, or an
    /// unknown `kid` outside the cooldown.
    ///
    /// Rejections are [`Error::Core`] with `jwt-core`'s kinds (`unknown_key`,
    /// `invalid_signature`, `expired`, …). A token naming a key that names
    /// no algorithm under [`AlgorithmRule::KeysOnly`] is a `config` error.
    pub async fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<TokenData<T>> {
        let snap = self.inner.current().await?;
        match self.inner.verify_on::<T>(&snap, token) {
            Err(jwt_core::Error::UnknownKey { kid: Some(kid) }) if self.inner.refreshable() => {
                // Debug formatting: the kid is the token's, and may hold
                // control characters meant for a terminal.
                tracing::debug!(source = %self.inner.name, kid = ?kid, "unknown kid");
                if self.inner.refresh(Trigger::Miss).await? {
                    if let Some(snap) = self.inner.loaded_at(self.inner.clock.now()) {
                        return Ok(self.inner.verify_on::<T>(&snap, token)?);
                    }
                }
                Err(Error::Core(jwt_core::Error::UnknownKey { kid: Some(kid) }))
            }
            other => Ok(other?),
        }
    }

    /// Verifies `token` with the keys already loaded: synchronous, no I/O,
    /// and no allocation for the key lookup (for hot paths and
    /// middleware). Retiring keys whose grace has ended are dropped here,
    /// in memory; a refresh ahead of expiry is started in the background
    /// when a tokio runtime is running.
    ///
    /// Two outcomes tell the caller to fall back to [`verify`](Self::verify),
    /// which may load keys:
    /// - `Err(Error::Core(jwt_core::Error::UnknownKey { kid: Some(_) }))`:
    ///   the token names a key not loaded (yet);
    /// - `Err(Error::StaleKeys { .. })`: no key set is loaded, or it is past
    ///   `max_stale`.
    ///
    /// Every other outcome is final.
    pub fn verify_cached<T: DeserializeOwned>(&self, token: &str) -> Result<TokenData<T>> {
        let now = self.inner.clock.now();
        match self.inner.loaded_at(now) {
            Some(snap) if self.inner.serves(&snap, now) => {
                self.inner.refresh_ahead(&snap, now);
                Ok(self.inner.verify_on::<T>(&snap, token)?)
            }
            _ => Err(self.inner.unusable(now)),
        }
    }

    /// Reloads the key set now, ignoring the cooldown (after an incident, or
    /// to load the keys before serving). Waits for a fetch already in flight
    /// instead of starting a second one.
    pub async fn refresh(&self) -> Result<()> {
        if !self.inner.refreshable() {
            return Ok(());
        }
        self.inner.refresh(Trigger::Forced).await.map(|_| ())
    }

    /// The kids of the keys that verify now (empty before the first load;
    /// a retiring key is left out once its grace has ended).
    pub fn cached_kids(&self) -> Vec<String> {
        self.inner
            .loaded_at(self.inner.clock.now())
            .map(|s| s.kids.clone())
            .unwrap_or_default()
    }

    /// The public keys that verify now, as a JWKS (empty before the first
    /// load): what a PyJWT-style `PyJWKClient` hands out by `kid`, from the
    /// same cache, fetch rules and refresh policy as [`verify`](Self::verify).
    /// A `kid` that names several keys (see [`MAX_KEYS_PER_KID`](crate::MAX_KEYS_PER_KID)) is listed
    /// once per key, in document order.
    pub fn cached_jwks(&self) -> jwt_core::Jwks {
        let Some(snapshot) = self.inner.loaded_at(self.inner.clock.now()) else {
            return jwt_core::Jwks::default();
        };
        let verifies = |jwk: &jwt_core::Jwk| {
            jwk.kid
                .as_deref()
                .is_none_or(|kid| snapshot.kids.iter().any(|k| k == kid))
        };
        let keys = match &snapshot.input {
            Input::Set(keys) => std::iter::once(&keys.primary)
                .chain(&keys.alternates)
                .flat_map(|set| set.to_jwks().keys)
                .filter(|jwk| verifies(jwk))
                .collect(),
            Input::Single(key) => key.to_public_jwk().into_iter().collect(),
        };
        jwt_core::Jwks { keys }
    }

    /// How many fetches succeeded so far (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::SeqCst)
    }

    /// The token cache's counters (hits, misses, evictions, expirations)
    /// and size; `None` when the verifier was built without
    /// [`VerifierBuilder::token_cache`].
    pub fn token_cache_stats(&self) -> Option<TokenCacheStats> {
        self.inner.token_cache.as_ref().map(TokenCache::stats)
    }

    /// Drops cached tokens (a session or a subject was logged out, a token
    /// was reported stolen), so that their next use is verified afresh.
    /// Returns how many were dropped (0 without a token cache).
    ///
    /// A token being verified while this runs may still be cached just
    /// after; that changes no answer, since a hit answers what a
    /// verification would.
    pub fn forget_cached_tokens(&self, which: CachedTokens<'_>) -> u64 {
        self.inner
            .token_cache
            .as_ref()
            .map_or(0, |cache| cache.forget(which))
    }

    /// The issuer's metadata as last loaded, for a verifier whose keys are
    /// found by discovery (`None` otherwise, or before the first load).
    pub(crate) fn metadata(&self) -> Option<Arc<IssuerMetadata>> {
        match &self.inner.source {
            Source::Discovery { source, .. } => source.metadata(),
            _ => None,
        }
    }

    /// How many times the issuer's metadata was fetched (0 for other sources).
    pub(crate) fn metadata_fetch_count(&self) -> u64 {
        match &self.inner.source {
            Source::Discovery { source, .. } => source.metadata_fetches(),
            _ => 0,
        }
    }

    /// The key a token naming `kid` (or none) would be verified with, and
    /// the algorithms it may verify with, from the keys already loaded:
    /// no I/O. The same two outcomes as [`verify_cached`](Self::verify_cached)
    /// ask the caller to fall back to [`key`](Self::key): `unknown_key` with
    /// a kid, and [`Error::StaleKeys`].
    #[cfg(feature = "jsonwebtoken")]
    pub(crate) fn cached_key(&self, kid: Option<&str>) -> Result<SelectedKey> {
        let now = self.inner.clock.now();
        match self.inner.loaded_at(now) {
            Some(snap) if self.inner.serves(&snap, now) => {
                self.inner.refresh_ahead(&snap, now);
                Ok(snap.key(kid)?)
            }
            _ => Err(self.inner.unusable(now)),
        }
    }

    /// [`cached_key`](Self::cached_key), loading the keys when none are
    /// loaded, and again (at most once per cooldown) for an unknown `kid`.
    #[cfg(feature = "jsonwebtoken")]
    pub(crate) async fn key(&self, kid: Option<&str>) -> Result<SelectedKey> {
        let snap = self.inner.current().await?;
        match snap.key(kid) {
            Err(jwt_core::Error::UnknownKey { kid: Some(kid) }) if self.inner.refreshable() => {
                if self.inner.refresh(Trigger::Miss).await? {
                    if let Some(snap) = self.inner.loaded_at(self.inner.clock.now()) {
                        return Ok(snap.key(Some(&kid))?);
                    }
                }
                Err(Error::Core(jwt_core::Error::UnknownKey { kid: Some(kid) }))
            }
            other => Ok(other?),
        }
    }
}

/// A loaded key and the algorithms it verifies with (see
/// [`verification_algorithms`]).
#[cfg(feature = "jsonwebtoken")]
#[derive(Debug, Clone)]
pub(crate) struct SelectedKey {
    pub(crate) key: Arc<VerifyingKey>,
    pub(crate) algorithms: Vec<Algorithm>,
}

impl Inner {
    /// Verifies `token` with `snap`, through the token cache when there is
    /// one: a hit under the same key set answers from the cache, a miss
    /// verifies and keeps a token that verified.
    fn verify_on<T: DeserializeOwned>(
        &self,
        snap: &Snapshot,
        token: &str,
    ) -> std::result::Result<TokenData<T>, jwt_core::Error> {
        let Some(cache) = &self.token_cache else {
            return snap.verify::<T>(token);
        };
        // A token over the size limit is refused without the cache.
        let key = match cache.key(token) {
            Some(key) if token.len() <= self.validation.max_token_size() => key,
            _ => return snap.verify::<T>(token),
        };
        let miss = match cache.answer::<T>(&key, &snap.key_digest, &self.validation) {
            Ok(answer) => return answer,
            Err(miss) => miss,
        };
        let data = snap.verify::<T>(token)?;
        cache.insert(key, miss, token, &data.header, snap.key_digest);
        Ok(data)
    }

    fn refreshable(&self) -> bool {
        !matches!(self.source, Source::Static)
    }

    fn loaded(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The loaded snapshot as it stands at `now`: when a retiring key's
    /// grace has ended since it was built, it is rebuilt without that key
    /// (in memory) and stored for everyone.
    fn loaded_at(&self, now: i64) -> Option<Arc<Snapshot>> {
        let snap = self.loaded()?;
        if now < snap.prune_at {
            return Some(snap);
        }
        match snap.pruned(now) {
            Ok(pruned) => {
                let pruned = Arc::new(pruned);
                let mut slot = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
                // A reload that landed meanwhile wins: it is newer.
                if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, &snap)) {
                    *slot = Some(pruned.clone());
                }
                tracing::debug!(source = %self.name, keys = pruned.kids.len(),
                    "a retiring key's grace ended; it no longer verifies");
                Some(pruned)
            }
            Err(e) => {
                // Cannot happen with keys that built before; keep serving
                // the keys that are still valid rather than none.
                tracing::error!(source = %self.name, error = %e, "dropping retired keys failed");
                Some(snap)
            }
        }
    }

    /// Whether `snap` may still serve at `now` (a fixed set always may).
    fn serves(&self, snap: &Snapshot, now: i64) -> bool {
        !self.refreshable() || now < snap.times.hard_until
    }

    fn in_cooldown(&self, now: i64) -> bool {
        let last = self.last_attempt.load(Ordering::SeqCst);
        last != i64::MIN && now < last.saturating_add(secs(self.options.cooldown))
    }

    /// A usable key set, loading one (and waiting) only if there is none.
    async fn current(self: &Arc<Self>) -> Result<Arc<Snapshot>> {
        let now = self.clock.now();
        if let Some(s) = self.loaded_at(now) {
            if self.serves(&s, now) {
                self.refresh_ahead(&s, now);
                return Ok(s);
            }
        }
        self.refresh(Trigger::Blocking).await?;
        match self.loaded_at(now) {
            Some(s) if self.serves(&s, now) => Ok(s),
            _ => Err(self.unusable(now)),
        }
    }

    /// Starts a background refresh when `snap` nears its expiry.
    fn refresh_ahead(self: &Arc<Self>, snap: &Snapshot, now: i64) {
        let ahead = secs(self.options.refresh_ahead);
        if now >= snap.times.fresh_until.saturating_sub(ahead) {
            self.spawn_background(now);
        }
    }

    fn unusable(&self, now: i64) -> Error {
        match self.loaded() {
            Some(s) => Error::StaleKeys {
                source_name: self.name.clone(),
                age_secs: now - s.times.loaded_at,
                max_stale_secs: s.times.hard_until.saturating_sub(s.times.loaded_at),
            },
            None => Error::StaleKeys {
                source_name: self.name.clone(),
                age_secs: 0,
                max_stale_secs: 0,
            },
        }
    }

    fn spawn_background(self: &Arc<Self>, now: i64) {
        if !self.refreshable()
            || self.in_cooldown(now)
            || self.background.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.background.store(false, Ordering::SeqCst);
            return;
        };
        let inner = self.clone();
        handle.spawn(async move {
            let _ = inner.refresh(Trigger::Background).await;
            inner.background.store(false, Ordering::SeqCst);
        });
    }

    /// Fetches a new key set unless the trigger's rate limit says no.
    /// `Ok(true)` when a fetch completed (ours or one we waited for), so
    /// the caller should look again.
    async fn refresh(self: &Arc<Self>, trigger: Trigger) -> Result<bool> {
        let now = self.clock.now();
        let seen = self.attempts.load(Ordering::SeqCst);
        match trigger {
            Trigger::Miss if self.in_cooldown(now) => {
                // The cooldown may be running because another request's
                // fetch for this very kid (a provider rotation) is under
                // way: wait for it, then the caller looks once more. No
                // fetch of our own.
                drop(self.fetch_lock.lock().await);
                return Ok(true);
            }
            Trigger::Background if self.in_cooldown(now) => return Ok(false),
            Trigger::Blocking => {
                let failed = self.last_failure.load(Ordering::SeqCst);
                if failed != i64::MIN && now < failed.saturating_add(secs(self.options.cooldown)) {
                    return Err(self.unusable(now));
                }
            }
            _ => {}
        }
        let _guard = self.fetch_lock.lock().await;
        if self.attempts.load(Ordering::SeqCst) != seen {
            // Someone fetched while we waited: one fetch serves everyone.
            return Ok(true);
        }
        if trigger == Trigger::Blocking && self.loaded_at(now).is_some_and(|s| self.serves(&s, now))
        {
            // A fetch finished between the caller finding no usable key set
            // and reading `attempts`: it serves this caller too.
            return Ok(true);
        }
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if trigger != Trigger::Forced {
            self.last_attempt.store(now, Ordering::SeqCst);
        }
        match self.load(now, trigger == Trigger::Forced).await {
            Ok(snap) => {
                let mut current = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
                // A reload that changed nothing (the maintenance tick's) is
                // not news: INFO only when the keys did change.
                if current.as_ref().is_some_and(|old| old.kids == snap.kids) {
                    tracing::debug!(source = %self.name, keys = snap.kids.len(),
                        ttl_secs = snap.times.fresh_until - now, ?trigger, "key set loaded (unchanged)");
                } else {
                    tracing::info!(source = %self.name, keys = snap.kids.len(),
                        ttl_secs = snap.times.fresh_until - now, ?trigger, "key set loaded");
                }
                *current = Some(Arc::new(snap));
                drop(current);
                self.fetches.fetch_add(1, Ordering::SeqCst);
                Ok(true)
            }
            Err(e) => {
                self.last_failure.store(now, Ordering::SeqCst);
                tracing::warn!(source = %self.name, error = %e, ?trigger,
                    "refreshing the key set failed; serving the last good set if still allowed");
                match trigger {
                    Trigger::Blocking | Trigger::Forced => Err(e),
                    Trigger::Miss | Trigger::Background => Ok(false),
                }
            }
        }
    }

    /// Loads the key set now; `forced` (an explicit refresh) also re-reads
    /// an issuer's metadata before its TTL.
    async fn load(&self, now: i64, forced: bool) -> Result<Snapshot> {
        let mut validation = None;
        let (keys, ttl, retiring) = match &self.source {
            // Never called: static sources are not refreshable.
            Source::Static => {
                return Err(Error::invalid_config(
                    "key_source",
                    "a fixed key set cannot be reloaded",
                ))
            }
            Source::Store(store) => {
                let (keys, retiring) = store_keys(store.as_ref(), now).await?;
                (keys, secs(self.options.default_ttl), retiring)
            }
            Source::Remote { url, client } => {
                let (keys, ttl) = remote::fetch(client, url, &self.options).await?;
                (keys, ttl, Vec::new())
            }
            Source::Discovery { source, narrow } => {
                let loaded = source.load(now, forced, &self.options).await?;
                if let Some(narrow) = narrow {
                    validation = Some(self.narrowed(source.issuer(), &loaded.metadata, narrow)?);
                }
                (loaded.keys, loaded.ttl, Vec::new())
            }
        };
        let (validation, rule) = validation.unwrap_or_else(|| (self.validation.clone(), self.rule));
        let fresh_until = now.saturating_add(ttl);
        let hard_until = fresh_until.saturating_add(secs(self.options.max_stale));
        Snapshot::new(
            Input::Set(keys),
            retiring,
            validation,
            rule,
            Times {
                loaded_at: now,
                fresh_until,
                hard_until,
            },
            now,
        )
    }

    /// The validation and rule of a load whose algorithms are the issuer's
    /// default: the validation's algorithms (every public-key algorithm)
    /// narrowed to the ones the metadata declares, when it declares any.
    fn narrowed(
        &self,
        issuer: &str,
        metadata: &IssuerMetadata,
        narrow: &Narrow,
    ) -> Result<(Validation, AlgorithmRule)> {
        let (allowed, rule) = issuer_default(metadata.signing_algorithms()).map_err(|reason| {
            Error::invalid_config(
                "algorithms",
                format!("issuer {issuer}: {reason} (metadata at {})", metadata.url()),
            )
        })?;
        if rule == self.rule && allowed.as_slice() == self.validation.algorithms() {
            return Ok((self.validation.clone(), self.rule));
        }
        let allowed: Vec<Algorithm> = allowed
            .into_iter()
            .filter(|a| self.validation.algorithms().contains(a))
            .collect();
        Ok((narrow(allowed), rule))
    }
}

/// A store's verification keys, each bound to the algorithm its record
/// names (the store's record is what the key verifies with, whether or not
/// the published JWK repeats it), and the grace end of each retiring key.
async fn store_keys(store: &dyn KeyStore, now: i64) -> Result<(JwksKeys, Vec<(String, i64)>)> {
    let set = store.key_set().await?;
    let records = store.list().await?;
    let mut primary = KeySet::new();
    for key in set.keys() {
        let record = key
            .kid()
            .and_then(|kid| records.iter().find(|r| r.kid == kid));
        let key = match (key.algorithm(), record) {
            (None, Some(record)) => VerifyingKey::clone(key).with_algorithm(record.alg)?,
            _ => VerifyingKey::clone(key),
        };
        primary.insert(key)?;
    }
    let retiring = records
        .iter()
        .filter(|r| r.state_at(now) == KeyState::Retiring)
        .filter_map(|r| Some((r.kid.clone(), r.retire_at?)))
        .collect();
    Ok((
        JwksKeys {
            primary,
            ..JwksKeys::default()
        },
        retiring,
    ))
}
