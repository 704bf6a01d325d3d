//! A verifier that follows a key source: a [`KeyStore`], a local JWKS, or an
//! identity provider's JWKS URL (Auth0, Cognito, Google, Entra, Keycloak).
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

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jwt_core::{Clock, ErrorKind, Jwks, KeySet, SystemClock, TokenData, Validation};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::policy::secs;
use crate::remote::{self, JwksKeys};
use crate::store::{KeyState, KeyStore};

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
            KeySource::Remote(u) => write!(f, "Remote({u})"),
        }
    }
}

/// How a refreshing key source is cached. All checks happen in
/// [`VerifierBuilder::build`].
///
/// | option | default | why |
/// |---|---|---|
/// | `default_ttl` | 10 min | used when the response has no `Cache-Control: max-age` |
/// | `min_ttl` / `max_ttl` | 1 min / 24 h | bounds on the provider's `max-age` |
/// | `cooldown` | 30 s | minimum time between fetches caused by unknown kids or background refreshes |
/// | `fetch_timeout` | 5 s | a hanging provider must not hang requests |
/// | `max_stale` | 6 h | how long past expiry the last good set serves while refreshes fail |
/// | `refresh_ahead` | 30 s | refresh in the background this long before expiry |
/// | `max_body_bytes` | 1 MiB | JWKS responses are small; anything larger is refused |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    default_ttl: Duration,
    min_ttl: Duration,
    max_ttl: Duration,
    cooldown: Duration,
    fetch_timeout: Duration,
    max_stale: Duration,
    refresh_ahead: Duration,
    max_body_bytes: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            default_ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            cooldown: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            max_stale: Duration::from_secs(6 * 3600),
            refresh_ahead: Duration::from_secs(30),
            max_body_bytes: 1 << 20,
        }
    }
}

macro_rules! option {
    ($(#[$doc:meta])* $field:ident, $with:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $with(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
        $(#[$doc])*
        pub fn $field(&self) -> $ty {
            self.$field
        }
    };
}

impl CacheOptions {
    option!(
        /// TTL when the response carries no `max-age`.
        default_ttl, with_default_ttl, Duration);
    option!(
        /// Lower bound on the TTL.
        min_ttl, with_min_ttl, Duration);
    option!(
        /// Upper bound on the TTL.
        max_ttl, with_max_ttl, Duration);
    option!(
        /// Minimum time between miss-triggered or background fetches.
        cooldown, with_cooldown, Duration);
    option!(
        /// Timeout of one fetch (connect to last byte).
        fetch_timeout, with_fetch_timeout, Duration);
    option!(
        /// How long past expiry the last good key set serves while refreshes fail.
        max_stale, with_max_stale, Duration);
    option!(
        /// How long before expiry a background refresh starts.
        refresh_ahead, with_refresh_ahead, Duration);
    option!(
        /// Maximum size of a JWKS response.
        max_body_bytes, with_max_body_bytes, usize);

    fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::policy(reason));
        if self.min_ttl.as_secs() == 0 {
            return bad("min_ttl must be at least one second".into());
        }
        if self.min_ttl > self.max_ttl {
            return bad(format!(
                "min_ttl ({:?}) is above max_ttl ({:?})",
                self.min_ttl, self.max_ttl
            ));
        }
        if self.default_ttl < self.min_ttl || self.default_ttl > self.max_ttl {
            return bad(format!(
                "default_ttl ({:?}) is outside [min_ttl, max_ttl] ({:?}, {:?})",
                self.default_ttl, self.min_ttl, self.max_ttl
            ));
        }
        if self.refresh_ahead >= self.min_ttl {
            return bad(format!(
                "refresh_ahead ({:?}) must be shorter than min_ttl ({:?}), or every request would start a refresh",
                self.refresh_ahead, self.min_ttl
            ));
        }
        if self.fetch_timeout.is_zero() {
            return bad("fetch_timeout must be above zero".into());
        }
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes must be at least 1 KiB".into());
        }
        Ok(())
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
            .finish_non_exhaustive()
    }
}

/// Builds a [`Verifier`].
#[derive(Debug)]
pub struct VerifierBuilder {
    source: KeySource,
    validation: Validation,
    options: CacheOptions,
    clock: Arc<dyn Clock>,
}

impl VerifierBuilder {
    /// Cache options for refreshing sources.
    pub fn cache(mut self, options: CacheOptions) -> Self {
        self.options = options;
        self
    }

    /// The clock for cache lifetimes and cooldowns. Give it the same clock
    /// as the [`Validation`] and the store.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the options and builds the verifier. Nothing is fetched yet:
    /// the first verification (or [`Verifier::refresh`]) loads the keys.
    pub fn build(self) -> Result<Verifier> {
        self.options.validate()?;
        // Checks the validation (algorithms named, …) up front.
        jwt_core::Verifier::with_key_set(KeySet::new(), self.validation.clone())?;
        let (source, name, initial) = match self.source {
            KeySource::Store(store) => {
                let name = format!("the {} key store", store.name());
                (Source::Store(store), name, None)
            }
            KeySource::Remote(url) => {
                let parsed = remote::parse_url(&url)?;
                let client = remote::client(&self.options)?;
                (
                    Source::Remote {
                        url: parsed,
                        client,
                    },
                    url,
                    None,
                )
            }
            KeySource::Jwks(jwks) => {
                let keys = JwksKeys::from_jwks(&jwks);
                if keys.primary.is_empty() {
                    return Err(Error::policy(format!(
                        "the JWKS has no usable signature key ({} entries skipped: {:?})",
                        keys.primary.skipped().len(),
                        keys.primary.skipped()
                    )));
                }
                keys.warn_duplicates("a fixed JWKS");
                (Source::Static, "a fixed JWKS".to_owned(), Some(keys))
            }
            KeySource::KeySet(set) => (
                Source::Static,
                "a fixed key set".to_owned(),
                Some(JwksKeys {
                    primary: KeySet::clone(&set),
                    ..JwksKeys::default()
                }),
            ),
        };
        let snapshot = match initial {
            Some(keys) => Some(Arc::new(Snapshot::new(
                keys,
                &self.validation,
                self.clock.now(),
                i64::MAX,
                i64::MAX,
            )?)),
            None => None,
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                source,
                name,
                validation: self.validation,
                options: self.options,
                clock: self.clock,
                snapshot: RwLock::new(snapshot),
                fetch_lock: tokio::sync::Mutex::new(()),
                attempts: AtomicU64::new(0),
                last_attempt: AtomicI64::new(i64::MIN),
                last_failure: AtomicI64::new(i64::MIN),
                background: AtomicBool::new(false),
                fetches: AtomicU64::new(0),
            }),
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
}

struct Snapshot {
    verifier: jwt_core::Verifier,
    /// Verifiers over the second, third, … key of kids that name several
    /// (see [`JwksKeys`]); empty when every kid is unique.
    alternates: Vec<jwt_core::Verifier>,
    keys: Arc<KeySet>,
    loaded_at: i64,
    /// Refresh (in the background) from `fresh_until - refresh_ahead` on.
    fresh_until: i64,
    /// Unusable from then on: past `max_stale`, or a retiring key's grace ended.
    hard_until: i64,
}

struct Inner {
    source: Source,
    name: String,
    validation: Validation,
    options: CacheOptions,
    clock: Arc<dyn Clock>,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    fetch_lock: tokio::sync::Mutex<()>,
    /// Incremented by every fetch attempt; waiters compare it to skip a
    /// fetch someone else did while they waited (single-flight).
    attempts: AtomicU64,
    last_attempt: AtomicI64,
    last_failure: AtomicI64,
    background: AtomicBool,
    fetches: AtomicU64,
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

    /// A builder, to set cache options or a clock.
    pub fn builder(source: KeySource, validation: Validation) -> VerifierBuilder {
        VerifierBuilder {
            source,
            validation,
            options: CacheOptions::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Verifies `token` and deserializes its claims. Awaits only when the
    /// key set must be (re)loaded: first use, expiry past `max_stale`, or an
    /// unknown `kid` outside the cooldown.
    ///
    /// Rejections are [`Error::Core`] with `jwt-core`'s kinds (`unknown_key`,
    /// `invalid_signature`, `expired`, …).
    pub async fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<TokenData<T>> {
        let snap = self.inner.current().await?;
        match snap.verify::<T>(token) {
            Err(jwt_core::Error::UnknownKey { kid: Some(kid) }) if self.inner.refreshable() => {
                // Debug formatting: the kid is the token's, and may hold
                // control characters meant for a terminal.
                tracing::debug!(source = %self.inner.name, kid = ?kid, "unknown kid");
                if self.inner.refresh(Trigger::Miss).await? {
                    if let Some(snap) = self.inner.loaded() {
                        return Ok(snap.verify::<T>(token)?);
                    }
                }
                Err(Error::Core(jwt_core::Error::UnknownKey { kid: Some(kid) }))
            }
            other => Ok(other?),
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

    /// The kids of the cached key set (empty before the first load).
    pub fn cached_kids(&self) -> Vec<String> {
        self.inner
            .loaded()
            .map(|s| {
                s.keys
                    .keys()
                    .filter_map(|k| k.kid().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many fetches succeeded so far (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::SeqCst)
    }
}

impl Snapshot {
    fn new(
        keys: JwksKeys,
        validation: &Validation,
        loaded_at: i64,
        fresh_until: i64,
        hard_until: i64,
    ) -> Result<Snapshot> {
        let primary = Arc::new(keys.primary);
        let alternates = keys
            .alternates
            .into_iter()
            .map(|set| jwt_core::Verifier::with_key_set(set, validation.clone()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Snapshot {
            verifier: jwt_core::Verifier::with_key_set(primary.clone(), validation.clone())?,
            alternates,
            keys: primary,
            loaded_at,
            fresh_until,
            hard_until,
        })
    }

    fn keys_len(&self) -> usize {
        self.keys.len()
    }

    /// Verifies with the key the token's `kid` names; when the JWKS names
    /// several keys with that `kid`, tries the others in order until one
    /// verifies the signature. The error of a failed search is the most
    /// telling one: a bad signature over an algorithm mismatch.
    fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> std::result::Result<TokenData<T>, jwt_core::Error> {
        let first = match self.verifier.verify::<T>(token) {
            Ok(data) => return Ok(data),
            Err(e) => e,
        };
        if self.alternates.is_empty() || !another_key_may_verify(&first) {
            return Err(first);
        }
        // Only a token that names its kid: without one, a set with a single
        // key uses it, and an alternate set must not stand in for it.
        let named = jwt_core::dangerous::insecure_decode_header(token)
            .is_ok_and(|header| header.kid.is_some());
        if !named {
            return Err(first);
        }
        let mut best = first;
        for alternate in &self.alternates {
            match alternate.verify::<T>(token) {
                Ok(data) => return Ok(data),
                // Sets are filled in order: no further key has this kid.
                Err(jwt_core::Error::UnknownKey { .. }) => break,
                Err(e) if another_key_may_verify(&e) => {
                    if e.kind() == ErrorKind::InvalidSignature
                        && best.kind() != ErrorKind::InvalidSignature
                    {
                        best = e;
                    }
                }
                // The signature verified with this key: the claims decide.
                Err(e) => return Err(e),
            }
        }
        Err(best)
    }
}

/// Whether another key under the same `kid` could verify a token that this
/// error rejected: the signature did not match, or the key does not fit
/// the token's algorithm.
fn another_key_may_verify(e: &jwt_core::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidKey
            | ErrorKind::WeakKey
    )
}

impl Inner {
    fn refreshable(&self) -> bool {
        !matches!(self.source, Source::Static)
    }

    fn loaded(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn in_cooldown(&self, now: i64) -> bool {
        let last = self.last_attempt.load(Ordering::SeqCst);
        last != i64::MIN && now < last.saturating_add(secs(self.options.cooldown))
    }

    /// A usable key set, loading one (and waiting) only if there is none.
    async fn current(self: &Arc<Self>) -> Result<Arc<Snapshot>> {
        let now = self.clock.now();
        if let Some(s) = self.loaded() {
            if now < s.hard_until {
                let ahead = secs(self.options.refresh_ahead);
                if now >= s.fresh_until.saturating_sub(ahead) {
                    self.spawn_background(now);
                }
                return Ok(s);
            }
        }
        self.refresh(Trigger::Blocking).await?;
        match self.loaded() {
            Some(s) if now < s.hard_until => Ok(s),
            _ => Err(self.unusable(now)),
        }
    }

    fn unusable(&self, now: i64) -> Error {
        match self.loaded() {
            Some(s) => Error::StaleKeys {
                source_name: self.name.clone(),
                age_secs: now - s.loaded_at,
                max_stale_secs: s.hard_until.saturating_sub(s.loaded_at),
            },
            None => Error::StaleKeys {
                source_name: self.name.clone(),
                age_secs: 0,
                max_stale_secs: 0,
            },
        }
    }

    fn spawn_background(self: &Arc<Self>, now: i64) {
        if self.in_cooldown(now) || self.background.swap(true, Ordering::SeqCst) {
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
            Trigger::Miss | Trigger::Background if self.in_cooldown(now) => return Ok(false),
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
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.last_attempt.store(now, Ordering::SeqCst);
        match self.load(now).await {
            Ok(snap) => {
                tracing::info!(source = %self.name, keys = snap.keys_len(), ttl_secs = snap.fresh_until - now,
                    ?trigger, "key set loaded");
                *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(snap));
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

    async fn load(&self, now: i64) -> Result<Snapshot> {
        let (keys, ttl, hard_cap) = match &self.source {
            // Never called: static sources are not refreshable.
            Source::Static => return Err(Error::policy("a fixed key set cannot be reloaded")),
            Source::Store(store) => {
                let set = store.key_set().await?;
                let next_retirement = store
                    .list()
                    .await?
                    .iter()
                    .filter(|r| r.state_at(now) == KeyState::Retiring)
                    .filter_map(|r| r.retire_at)
                    .min();
                let keys = JwksKeys {
                    primary: set,
                    ..JwksKeys::default()
                };
                (keys, secs(self.options.default_ttl), next_retirement)
            }
            Source::Remote { url, client } => {
                let (keys, ttl) = remote::fetch(client, url, &self.options).await?;
                (keys, ttl, None)
            }
        };
        let fresh_until = now.saturating_add(ttl);
        let mut hard_until = fresh_until.saturating_add(secs(self.options.max_stale));
        if let Some(cap) = hard_cap {
            hard_until = hard_until.min(cap);
        }
        Snapshot::new(
            keys,
            &self.validation,
            now,
            fresh_until.min(hard_until),
            hard_until,
        )
    }
}
