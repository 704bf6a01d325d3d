//! [`TokenServiceBuilder`]: every check of the service's settings, before and
//! after looking at the stores.

use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, Clock, SystemClock, Validation};
use jwt_keys::{KeyStore, MultiIssuerVerifier, RotationPolicy, TokenCacheOptions};
use jwt_refresh::{MemoryRefreshStore, RefreshPolicy, RefreshStore};

use crate::dpop::{DpopOptions, DpopState};
use crate::error::{Error, Result};
use crate::refresh_key::RefreshKey;
use crate::service::{
    Inner, TokenService, DEFAULT_ACCESS_TTL, DEFAULT_LEEWAY, DEFAULT_REFRESH_TTL,
    DEFAULT_SESSION_LIFETIME, MAX_ACCESS_TTL, MAX_LEEWAY, REFRESH_TYP,
};

/// Builds a [`TokenService`]. [`build`](Self::build) refuses missing, unsafe
/// and contradictory settings, each with an [`Error::Config`] naming the
/// setting and saying how to fix it:
///
/// | setting | default | checked |
/// |---|---|---|
/// | `key_store` | — | required |
/// | `issuer`, `audience` | — | required, non-empty |
/// | `access_ttl` | 15 min | 1 s ≤ ttl ≤ 24 h (more with `allow_long_access_ttl`), ≤ the policy's `max_token_lifetime`, and `ttl + leeway` ≤ the policy's `verify_grace` (else tokens die before their `exp` after a rotation) |
/// | `refresh_ttl` | 14 days | > `access_ttl`, ≤ 365 days ([`RefreshPolicy::MAX_TTL`]) |
/// | `session_lifetime` | 30 days | ≤ 365 days ([`RefreshPolicy::MAX_FAMILY_LIFETIME`]); raised to `refresh_ttl` if shorter |
/// | `leeway` | 60 s | ≤ 5 min |
/// | `refresh_store` | in memory | — |
/// | `reuse_grace` | off | only with the built-in memory store (set it on your own store otherwise); 1 s ≤ grace ≤ 60 s and < `refresh_ttl` |
/// | `refresh_key` | generated per process | required with your own refresh store (tokens must survive restarts and verify on every instance) |
/// | `rotation_policy` | the store's | must equal the store's recorded policy; used to initialize an empty store |
/// | `init_key_store` | off | initializes an empty store with this algorithm |
/// | `token_cache` | on: 10 000 tokens, 16 MiB | checked like [`TokenCacheOptions`]; `no_token_cache` turns it off |
/// | `external_issuers` | none | the service's own issuer must not be one of them |
/// | `dpop` | off | checked like [`DpopOptions`](crate::dpop::DpopOptions) says (`dpop.iat_window`, `dpop` for the algorithms) |
///
/// ```
/// use std::time::Duration;
/// use jwtkit::{MemoryKeyStore, TokenService};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let err = TokenService::builder()
///     .key_store(MemoryKeyStore::new())
///     .issuer("https://auth.example.com")
///     .audience("my-api")
///     .access_ttl(Duration::from_secs(3600))
///     .refresh_ttl(Duration::from_secs(600))   // shorter than the access token
///     .build()
///     .await
///     .unwrap_err();
/// assert!(matches!(err, jwtkit::Error::Config { setting: "refresh_ttl", .. }));
/// # }
/// ```
#[must_use]
pub struct TokenServiceBuilder {
    key_store: Option<Arc<dyn KeyStore>>,
    refresh_store: Option<Arc<dyn RefreshStore>>,
    refresh_key: Option<RefreshKey>,
    issuer: Option<String>,
    audience: Option<String>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    session_lifetime: Option<Duration>,
    leeway: Duration,
    reuse_grace: Option<Duration>,
    rotation_policy: Option<RotationPolicy>,
    init_algorithm: Option<Algorithm>,
    /// The policy an empty store is initialized with, when it differs from
    /// the one an initialized store is checked against.
    init_policy: Option<RotationPolicy>,
    clock: Arc<dyn Clock>,
    allow_long_access_ttl: bool,
    /// `None`: every access token is verified afresh.
    token_cache: Option<TokenCacheOptions>,
    /// Identity providers whose tokens are accepted beside the service's own.
    external_issuers: Option<MultiIssuerVerifier>,
    /// DPoP (RFC 9449); `None`: off.
    dpop: Option<DpopOptions>,
}

impl Default for TokenServiceBuilder {
    fn default() -> Self {
        TokenServiceBuilder {
            key_store: None,
            refresh_store: None,
            refresh_key: None,
            issuer: None,
            audience: None,
            access_ttl: DEFAULT_ACCESS_TTL,
            refresh_ttl: DEFAULT_REFRESH_TTL,
            session_lifetime: None,
            leeway: DEFAULT_LEEWAY,
            reuse_grace: None,
            rotation_policy: None,
            init_algorithm: None,
            init_policy: None,
            clock: Arc::new(SystemClock),
            allow_long_access_ttl: false,
            token_cache: Some(TokenCacheOptions::default()),
            external_issuers: None,
            dpop: None,
        }
    }
}

impl std::fmt::Debug for TokenServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServiceBuilder")
            .field("key_store", &self.key_store.as_ref().map(|s| s.name()))
            .field("refresh_store", &self.refresh_store)
            .field("refresh_key", &self.refresh_key)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("leeway", &self.leeway)
            .field("reuse_grace", &self.reuse_grace)
            .field("token_cache", &self.token_cache)
            .field("external_issuers", &self.external_issuers)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

impl TokenServiceBuilder {
    /// The key store that signs access tokens (file, env, KMS, Vault, memory, your own).
    pub fn key_store(self, store: impl KeyStore) -> Self {
        self.shared_key_store(Arc::new(store))
    }

    /// Like [`key_store`](Self::key_store), for a store already behind an `Arc`
    /// (e.g. from [`jwt_keys::open_store`]).
    pub fn shared_key_store(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.key_store = Some(store);
        self
    }

    /// Where refresh tokens are recorded (default: a [`MemoryRefreshStore`],
    /// lost at restart and not shared between instances).
    pub fn refresh_store(self, store: impl RefreshStore) -> Self {
        self.shared_refresh_store(Arc::new(store))
    }

    /// Like [`refresh_store`](Self::refresh_store), for a store behind an `Arc`.
    pub fn shared_refresh_store(mut self, store: Arc<dyn RefreshStore>) -> Self {
        self.refresh_store = Some(store);
        self
    }

    /// The key that signs refresh tokens (e.g. [`RefreshKey::load_or_create`]).
    pub fn refresh_key(mut self, key: RefreshKey) -> Self {
        self.refresh_key = Some(key);
        self
    }

    /// The `iss` of every token, e.g. `https://auth.example.com`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The `aud` of access tokens: the API that accepts them.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Lifetime of access tokens (whole seconds; default 15 min).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Lifetime of each refresh token (whole seconds; default 14 days, at most
    /// [`RefreshPolicy::MAX_TTL`], 365 days). A session idle for longer ends.
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Maximum lifetime of a session with the built-in memory refresh store
    /// (default 30 days, at least `refresh_ttl`, at most
    /// [`RefreshPolicy::MAX_FAMILY_LIFETIME`], 365 days). Your own store has its own.
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = Some(lifetime);
        self
    }

    /// Clock-skew tolerance for `exp`/`iat` when verifying (default 60 s, at most 5 min).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Reuse grace of the built-in memory refresh store: for this long after
    /// a refresh, the previous token may be presented again and yields the
    /// same successor (clients retrying after a lost response). Off by
    /// default; at most 60 s.
    pub fn reuse_grace(mut self, grace: Duration) -> Self {
        self.reuse_grace = Some(grace);
        self
    }

    /// The rotation policy expected on the key store; it initializes an
    /// empty store (with [`init_key_store`](Self::init_key_store)) and must
    /// equal the policy an initialized store records.
    pub fn rotation_policy(mut self, policy: RotationPolicy) -> Self {
        self.rotation_policy = Some(policy);
        self
    }

    /// Initializes the key store with `alg` keys if it holds none yet.
    pub fn init_key_store(mut self, alg: Algorithm) -> Self {
        self.init_algorithm = Some(alg);
        self
    }

    /// Initializes the key store with `alg` keys and `policy` if it holds
    /// none yet; a store already initialized keeps its recorded policy,
    /// which is compared with [`rotation_policy`](Self::rotation_policy)
    /// only if that is set. For a server whose defaults depend on its other
    /// settings (`jwtkit serve`) but that must accept a store initialized
    /// earlier with other defaults.
    pub fn init_key_store_with(mut self, alg: Algorithm, policy: RotationPolicy) -> Self {
        self.init_algorithm = Some(alg);
        self.init_policy = Some(policy);
        self
    }

    /// The clock for token times and validation (default: the system clock).
    /// Give the stores the same clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Allows access tokens to live longer than 24 hours. Long-lived bearer
    /// tokens cannot be revoked; prefer short access tokens and refreshes.
    pub fn allow_long_access_ttl(mut self) -> Self {
        self.allow_long_access_ttl = true;
        self
    }

    /// The bounds of the verified-token cache (on by default: 10 000
    /// tokens, 16 MiB). A client presents its access token with every
    /// request for the token's whole life; from its third presentation on
    /// (it is kept the second time it verifies) it is answered without
    /// another signature verification, and a hit answers exactly
    /// what a verification would (`exp`, `nbf` and `iat` are checked again
    /// with the service's clock, and a change of the key set — rotation,
    /// retirement — makes it verify again). See
    /// [`jwt_keys::VerifierBuilder::token_cache`].
    pub fn token_cache(mut self, options: TokenCacheOptions) -> Self {
        self.token_cache = Some(options);
        self
    }

    /// Verifies every access token afresh (no verified-token cache).
    pub fn no_token_cache(mut self) -> Self {
        self.token_cache = None;
        self
    }

    /// Also accepts access tokens of these identity providers (Auth0,
    /// Cognito, Entra, Google, Keycloak, Vault, another `jwtkit serve`…),
    /// each verified with its own keys and settings, next to the service's
    /// own tokens: [`TokenService::verify_access`] and the axum layer then
    /// choose the keys by the token's `iss`. The service's own tokens are
    /// verified exactly as without them (its key store, `typ: at+jwt`, its
    /// audience); its issuer must not be one of `issuers`.
    ///
    /// ```no_run
    /// use jwtkit::keys::{Issuer, MultiIssuerVerifier};
    /// use jwtkit::{MemoryKeyStore, TokenService};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let partners = MultiIssuerVerifier::builder()
    ///     .issuer(Issuer::discover("https://YOUR_TENANT.eu.auth0.com/").audience("my-api"))
    ///     .build()?;
    /// let tokens = TokenService::builder()
    ///     .key_store(MemoryKeyStore::new())
    ///     .init_key_store(jwtkit::Algorithm::ES256)
    ///     .issuer("https://auth.example.com")
    ///     .audience("my-api")
    ///     .external_issuers(partners)
    ///     .build()
    ///     .await?;
    /// # let _ = tokens; Ok(()) }
    /// ```
    pub fn external_issuers(mut self, issuers: MultiIssuerVerifier) -> Self {
        self.external_issuers = Some(issuers);
        self
    }

    /// Sender-constrained tokens with DPoP (RFC 9449): the mode, the proof
    /// algorithms, the `iat` window, the replay cache and server nonces
    /// (see [`DpopOptions`] and the [`dpop`](crate::dpop) module). Off by
    /// default: then no token is bound, and a bound token (of another
    /// issuer) presented as a bearer token is still refused.
    pub fn dpop(mut self, options: DpopOptions) -> Self {
        self.dpop = Some(options);
        self
    }

    /// The checks that need no I/O.
    fn check(&self) -> Result<()> {
        if self.key_store.is_none() {
            return Err(Error::config(
                "key_store",
                "no key store: set one with .key_store(FileKeyStore::open(dir)) or \
                 .shared_key_store(jwt_keys::open_store(uri)?)",
            ));
        }
        match self.issuer.as_deref() {
            None | Some("") => {
                return Err(Error::config(
                    "issuer",
                    "no issuer: set .issuer(\"https://auth.example.com\"); it goes into every token's `iss` \
                     and verifiers check it",
                ))
            }
            Some(_) => {}
        }
        match self.audience.as_deref() {
            None | Some("") => {
                return Err(Error::config(
                    "audience",
                    "no audience: set .audience(\"my-api\"); without `aud`, a token for one API would be \
                     accepted by every API trusting this issuer",
                ))
            }
            Some(_) => {}
        }
        let whole = |d: Duration| d.subsec_nanos() == 0;
        if self.access_ttl.as_secs() == 0 || !whole(self.access_ttl) {
            return Err(Error::config(
                "access_ttl",
                format!(
                    "{:?} is not a whole number of seconds ≥ 1 s",
                    self.access_ttl
                ),
            ));
        }
        if self.access_ttl > MAX_ACCESS_TTL && !self.allow_long_access_ttl {
            return Err(Error::config(
                "access_ttl",
                format!(
                    "{:?} is over 24 h; access tokens cannot be revoked, so keep them short and use refresh \
                     tokens (or call .allow_long_access_ttl() if you really mean it)",
                    self.access_ttl
                ),
            ));
        }
        if !whole(self.refresh_ttl) || self.refresh_ttl <= self.access_ttl {
            return Err(Error::config(
                "refresh_ttl",
                format!(
                    "{:?} must be whole seconds and longer than access_ttl ({:?}): a refresh token that dies \
                     before the access token it renews is useless",
                    self.refresh_ttl, self.access_ttl
                ),
            ));
        }
        if self.refresh_ttl > RefreshPolicy::MAX_TTL {
            return Err(Error::config(
                "refresh_ttl",
                format!(
                    "{}s is over the maximum of {}s (365 days); a refresh token is a bearer credential — \
                     shorten refresh_ttl",
                    self.refresh_ttl.as_secs(),
                    RefreshPolicy::MAX_TTL.as_secs()
                ),
            ));
        }
        if let Some(lifetime) = self.session_lifetime {
            if lifetime > RefreshPolicy::MAX_FAMILY_LIFETIME {
                return Err(Error::config(
                    "session_lifetime",
                    format!(
                        "{}s is over the maximum of {}s (365 days); make users log in again at least \
                         once a year",
                        lifetime.as_secs(),
                        RefreshPolicy::MAX_FAMILY_LIFETIME.as_secs()
                    ),
                ));
            }
        }
        if self.leeway > MAX_LEEWAY {
            return Err(Error::config(
                "leeway",
                format!(
                    "{:?} is over {MAX_LEEWAY:?}; a large leeway keeps expired tokens alive — fix the clocks instead",
                    self.leeway
                ),
            ));
        }
        if self.reuse_grace.is_some() && self.refresh_store.is_some() {
            return Err(Error::config(
                "reuse_grace",
                "reuse_grace applies to the built-in memory refresh store only; with your own store, \
                 set it there (e.g. RedisRefreshStore::builder().reuse_grace(…))",
            ));
        }
        if self.session_lifetime.is_some() && self.refresh_store.is_some() {
            return Err(Error::config(
                "session_lifetime",
                "session_lifetime applies to the built-in memory refresh store only; with your own store, \
                 set max_family_lifetime there",
            ));
        }
        if self.refresh_store.is_some() && self.refresh_key.is_none() {
            return Err(Error::config(
                "refresh_key",
                "a refresh store that outlives this process needs a refresh key that does too \
                 (refresh tokens must verify after a restart and on every instance): set \
                 .refresh_key(RefreshKey::load_or_create(path)?) or RefreshKey::from_base64(secret)",
            ));
        }
        if let Some(policy) = &self.rotation_policy {
            self.check_policy(policy)?;
        }
        if let (Some(external), Some(issuer)) = (&self.external_issuers, &self.issuer) {
            if external.issuers().any(|i| i == issuer) {
                return Err(Error::config(
                    "external_issuers",
                    format!(
                        "the service's own issuer {issuer:?} is also an external issuer; its \
                         tokens are verified with its key store: remove it from the external \
                         issuers"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_policy(&self, policy: &RotationPolicy) -> Result<()> {
        if self.access_ttl > policy.max_token_lifetime() {
            return Err(Error::config(
                "access_ttl",
                format!(
                    "{:?} is longer than the rotation policy's max_token_lifetime ({:?}); raise \
                     max_token_lifetime (and verify_grace) in the policy, or shorten access_ttl",
                    self.access_ttl,
                    policy.max_token_lifetime()
                ),
            ));
        }
        let needed = self.access_ttl + self.leeway;
        if policy.verify_grace() < needed {
            return Err(Error::config(
                "rotation_policy",
                format!(
                    "verify_grace ({:?}) is shorter than access_ttl + leeway ({needed:?}): tokens signed just before \
                     a rotation would stop verifying before they expire; raise verify_grace",
                    policy.verify_grace()
                ),
            ));
        }
        Ok(())
    }

    /// Checks the settings, initializes the key store if asked, checks the
    /// store's recorded policy against the settings, and loads the
    /// verification keys.
    pub async fn build(self) -> Result<TokenService> {
        self.check()?;
        let dpop = match self.dpop.clone() {
            Some(options) => DpopState::build(options, self.clock.clone())?,
            None => None,
        };
        // Everything that can be refused is checked before an empty key store
        // is initialized: a refused start must not leave a store behind whose
        // policy is then fixed.
        let (refresh_store, refresh_key): (Arc<dyn RefreshStore>, RefreshKey) =
            match self.refresh_store.clone() {
                Some(store) => (store, self.refresh_key.clone().expect("checked")),
                None => {
                    let mut policy = RefreshPolicy::builder()
                        .ttl(self.refresh_ttl)
                        .max_family_lifetime(
                            self.session_lifetime
                                .unwrap_or(DEFAULT_SESSION_LIFETIME)
                                .max(self.refresh_ttl),
                        );
                    if let Some(grace) = self.reuse_grace {
                        policy = policy.reuse_grace(grace);
                    }
                    let policy = policy.build().map_err(|e| match e {
                        jwt_refresh::Error::InvalidConfig { setting, reason } => {
                            Error::config(setting, reason)
                        }
                        e => Error::RefreshStore(e),
                    })?;
                    let store = MemoryRefreshStore::new(policy).with_clock(self.clock.clone());
                    let key = match self.refresh_key.clone() {
                        Some(k) => k,
                        None => RefreshKey::generate()?,
                    };
                    (Arc::new(store), key)
                }
            };

        let key_store = self.key_store.clone().expect("checked");
        if let Some(alg) = self.init_algorithm {
            match key_store.active().await {
                Ok(_) => {}
                Err(jwt_keys::Error::NotInitialized { .. }) => {
                    let policy = self
                        .init_policy
                        .clone()
                        .or_else(|| self.rotation_policy.clone())
                        .unwrap_or_default();
                    if !policy.allows(alg) {
                        return Err(Error::config(
                            "init_key_store",
                            format!(
                                "{alg} is not allowed by the rotation policy ({:?})",
                                policy.allowed_algorithms()
                            ),
                        ));
                    }
                    self.check_policy(&policy)?;
                    match key_store.init(alg, &policy).await {
                        Ok(report) => {
                            tracing::info!(store = key_store.name(), active = %report.active,
                            pending = %report.pending, %alg, "key store initialized")
                        }
                        // Another process initialized it first.
                        Err(jwt_keys::Error::AlreadyInitialized { .. }) => {}
                        Err(e) => return Err(Error::KeyStore(e)),
                    }
                }
                Err(e) => return Err(Error::KeyStore(e)),
            }
        }
        let recorded = key_store.policy().await.map_err(Error::KeyStore)?;
        if let Some(expected) = &self.rotation_policy {
            if *expected != recorded {
                return Err(Error::config(
                    "rotation_policy",
                    format!(
                        "the {} key store records a different rotation policy ({}) than the one configured ({}); \
                         a store's policy is fixed when it is initialized — configure the recorded one, or \
                         initialize a new store",
                        key_store.name(),
                        describe(&recorded),
                        describe(expected)
                    ),
                ));
            }
        }
        self.check_policy(&recorded)?;

        let issuer = self.issuer.clone().expect("checked");
        let audience = self.audience.clone().expect("checked");
        let refresh_signer = refresh_key.signer()?;
        let refresh_verifier = jwt_core::Verifier::with_key_set(
            refresh_key.verifying_keys()?,
            Validation::new([Algorithm::HS256])
                .issuer(&issuer)
                .audience(&issuer)
                .typ(REFRESH_TYP)
                .leeway(self.leeway)
                .require("sub")
                .require("jti")
                .clock(self.clock.clone()),
        )
        .map_err(Error::Encoding)?;

        let access = crate::service::access_verifier(
            key_store.clone(),
            &issuer,
            &audience,
            self.leeway,
            self.clock.clone(),
            self.token_cache.clone(),
        )?;
        // The service's own verifier is one issuer among the external ones:
        // one routing by `iss`, each issuer its own keys.
        let issuers = match &self.external_issuers {
            None => None,
            Some(external) => Some(external.with_verifier(&issuer, access.clone()).map_err(
                |e| match e {
                    jwt_keys::Error::InvalidConfig { reason, .. } => {
                        Error::config("external_issuers", reason)
                    }
                    e => Error::KeyStore(e),
                },
            )?),
        };
        let service = TokenService::from_inner(Inner {
            key_store,
            refresh_store,
            refresh_signer,
            refresh_verifier,
            refresh_key: refresh_key.clone(),
            issuer,
            audience,
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
            policy: recorded,
            clock: self.clock.clone(),
            access,
            issuers,
            dpop,
        });
        service.reload_keys().await?;
        if service.loaded_kids().is_empty() {
            return Err(Error::config(
                "key_store",
                "the key store has no verification key: initialize it (`jwtkit store init`, or \
                 .init_key_store(Algorithm::ES256))",
            ));
        }
        Ok(service)
    }
}

fn describe(p: &RotationPolicy) -> String {
    format!(
        "rotate_after {}s, prepublish {}s, verify_grace {}s, max_token_lifetime {}s, leeway {}s, algorithms {:?}",
        p.rotate_after().as_secs(),
        p.prepublish().as_secs(),
        p.verify_grace().as_secs(),
        p.max_token_lifetime().as_secs(),
        p.leeway().as_secs(),
        p.allowed_algorithms()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn base() -> TokenServiceBuilder {
        TokenService::builder()
            .key_store(jwt_keys::MemoryKeyStore::new())
            .issuer("https://auth.example.com")
            .audience("api")
    }

    fn refused(builder: &TokenServiceBuilder) -> (&'static str, String) {
        match builder.check() {
            Err(Error::Config { setting, reason }) => (setting, reason),
            other => panic!("expected a Config error, got {other:?}"),
        }
    }

    /// Issue 11 item 5: `refresh_ttl` near `i64::MAX` seconds was accepted and
    /// every later issue failed; the in-memory store emitted `exp` past `i64::MAX`.
    #[test]
    fn lifetimes_over_their_maximum_are_refused_naming_setting_limit_and_value() {
        let huge = Duration::from_secs(106_751_991_167_300 * DAY);
        let (setting, reason) = refused(&base().refresh_ttl(huge));
        assert_eq!(setting, "refresh_ttl");
        assert!(
            reason.contains(&format!("{}s", huge.as_secs())) && reason.contains("31536000s"),
            "{reason}"
        );
        let (setting, reason) = refused(&base().refresh_ttl(Duration::from_secs(366 * DAY)));
        assert_eq!(setting, "refresh_ttl");
        assert!(reason.contains("31622400s"), "{reason}");
        let (setting, reason) = refused(&base().session_lifetime(Duration::from_secs(400 * DAY)));
        assert_eq!(setting, "session_lifetime");
        assert!(
            reason.contains("34560000s") && reason.contains("31536000s"),
            "{reason}"
        );
        // Long access tokens stay bounded by refresh_ttl, so by a year.
        let (setting, _) = refused(
            &base()
                .allow_long_access_ttl()
                .access_ttl(Duration::from_secs(400 * DAY))
                .refresh_ttl(Duration::from_secs(401 * DAY)),
        );
        assert_eq!(setting, "refresh_ttl");
        base()
            .refresh_ttl(RefreshPolicy::MAX_TTL)
            .session_lifetime(RefreshPolicy::MAX_FAMILY_LIFETIME)
            .check()
            .expect("the maxima themselves are accepted");
    }
}
