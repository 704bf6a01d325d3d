//! Verifying tokens from several issuers at once, each with its own keys:
//! [`MultiIssuerVerifier`] (how it chooses and why is in its docs), the
//! [`Issuer`] settings, and reading `iss` before the signature (`peek`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use jwt_core::{Clock, SystemClock, TokenData, DEFAULT_MAX_TOKEN_SIZE};
use serde::de::DeserializeOwned;

use crate::discovery::IssuerMetadata;
use crate::error::{Error, Result};
use crate::verify::{
    AlgorithmRule, CacheOptions, KeySource, Narrow, TokenCacheOptions, Verifier, VerifierBuilder,
    PUBLIC_KEY_ALGORITHMS,
};

mod issuer;
mod peek;

pub use issuer::Issuer;
use issuer::IssuerKeys;
use peek::Iss;

/// Above this many issuers, they are found by a hash lookup rather than by
/// comparing the token's `iss` with each in turn.
const LINEAR_LOOKUP_MAX: usize = 8;

/// Verifies tokens from several issuers, each with its own keys and
/// settings. Built once, cheap to clone (clones share every cache),
/// `Send + Sync`.
///
/// It holds one [`Verifier`] per issuer — the same verifier and key cache
/// as for a single key source, so each issuer's key set follows every rule
/// of [`Verifier`] (TTL from `Cache-Control`, unknown-`kid` refresh with a
/// cooldown, single-flight, stale-if-error) — and chooses among them by the
/// token's `iss`, read before the signature is checked. Keys are bound to
/// their issuer (RFC 9068 §4): the chosen verifier knows only its issuer's
/// keys and checks `iss` again, exactly, after the signature. So:
///
/// - a token whose `iss` is not configured is `invalid_issuer` (as is a
///   token without a string `iss`: no key set can be chosen for it);
/// - a token naming issuer A with the `kid` of a key of issuer B is
///   `unknown_key` (A's key set is refreshed once for it, within A's
///   cooldown, as for any unknown `kid`);
/// - no key of one issuer ever verifies a token of another.
///
/// Choosing costs reading `iss` (the payload decoded on the stack, one
/// pass that borrows the string) and comparing it with the configured
/// issuers: no I/O and no allocation, so
/// [`verify_cached`](MultiIssuerVerifier::verify_cached) stays the
/// synchronous, allocation-free key lookup that [`Verifier::verify_cached`]
/// is, and three issuers cost what one does (`benches/issuers.rs`).
///
/// ```no_run
/// use jwt_keys::{Issuer, MultiIssuerVerifier};
///
/// # async fn run(token: &str) -> Result<(), jwt_keys::Error> {
/// let verifier = MultiIssuerVerifier::builder()
///     .issuer(Issuer::discover("https://YOUR_TENANT.eu.auth0.com/").audience("my-api"))
///     .issuer(
///         Issuer::discover("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf")
///             .audience("client-id-of-my-app"),
///     )
///     .build()?;
/// let data = verifier.verify::<serde_json::Value>(token).await?;
/// println!("{} from {}", data.claims["sub"], data.claims["iss"]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MultiIssuerVerifier {
    inner: Arc<Issuers>,
}

struct Issuers {
    entries: Vec<Entry>,
    /// `iss` → entry, when there are more than [`LINEAR_LOOKUP_MAX`].
    index: Option<HashMap<Box<str>, usize>>,
    max_token_size: usize,
}

/// One issuer: its name as tokens spell it, and its verifier.
pub(crate) struct Entry {
    pub(crate) issuer: Box<str>,
    /// Other spellings of `iss` routed to this entry ([`Issuer::also_accept_iss`]).
    pub(crate) aliases: Vec<Box<str>>,
    pub(crate) verifier: Verifier,
    /// Its accepted audiences (empty for a verifier given as it is).
    pub(crate) audiences: Vec<String>,
    /// Its leeway in seconds (0 for a verifier given as it is).
    pub(crate) leeway: u64,
    /// Its required header `typ`, if any (the jsonwebtoken bridge checks it).
    #[cfg_attr(not(feature = "jsonwebtoken"), allow(dead_code))]
    pub(crate) typ: Option<String>,
    /// Its required claims besides `exp` (the jsonwebtoken bridge passes them on).
    #[cfg_attr(not(feature = "jsonwebtoken"), allow(dead_code))]
    pub(crate) required: Vec<String>,
}

impl fmt::Debug for MultiIssuerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiIssuerVerifier")
            .field("issuers", &self.issuers().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Builds a [`MultiIssuerVerifier`]. Every check happens in
/// [`build`](Self::build); nothing is fetched before the first verification
/// (or [`MultiIssuerVerifier::refresh`]).
///
/// | option | default | applies to |
/// |---|---|---|
/// | `issuer` | — | at least one issuer (or `verifier`); each `iss` once |
/// | `cache` | [`CacheOptions::default`] | every issuer's metadata and key set |
/// | `clock` | the system clock | cache lifetimes and token times of every issuer |
/// | `token_cache` | off | every issuer (one cache each, with these bounds) |
/// | `max_token_size` | 64 KiB | every token, checked before `iss` is read |
#[must_use]
pub struct MultiIssuerVerifierBuilder {
    issuers: Vec<Issuer>,
    verifiers: Vec<(String, Verifier)>,
    options: CacheOptions,
    clock: Arc<dyn Clock>,
    token_cache: Option<TokenCacheOptions>,
    max_token_size: usize,
}

impl fmt::Debug for MultiIssuerVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiIssuerVerifierBuilder")
            .field("issuers", &self.issuers)
            .field(
                "verifiers",
                &self.verifiers.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            )
            .field("options", &self.options)
            .field("token_cache", &self.token_cache)
            .field("max_token_size", &self.max_token_size)
            .finish_non_exhaustive()
    }
}

impl MultiIssuerVerifierBuilder {
    /// Accepts tokens from `issuer`.
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Accepts tokens naming `issuer` with a verifier built elsewhere (for
    /// instance a token service's own, over its key store), sharing its
    /// cache. Its [`Validation`](jwt_core::Validation) must accept exactly
    /// this issuer (`.issuer(issuer)`, and no other): tokens are sent to it
    /// because their `iss` is `issuer`, and it must check that again after
    /// the signature.
    pub fn verifier(mut self, issuer: impl Into<String>, verifier: Verifier) -> Self {
        self.verifiers.push((issuer.into(), verifier));
        self
    }

    /// Cache options for every issuer's metadata and key set.
    pub fn cache(mut self, options: CacheOptions) -> Self {
        self.options = options;
        self
    }

    /// The clock for cache lifetimes and token times (default: the system
    /// clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps the tokens that verified, one cache per issuer with these
    /// bounds; see [`VerifierBuilder::token_cache`].
    pub fn token_cache(mut self, options: TokenCacheOptions) -> Self {
        self.token_cache = Some(options);
        self
    }

    /// Refuses tokens longer than `bytes` before reading anything (default
    /// 64 KiB).
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.max_token_size = bytes;
        self
    }

    /// Checks every setting and builds the verifiers. Errors are
    /// [`Error::InvalidConfig`] naming the setting (and the issuer), or
    /// [`Error::InvalidJwksUrl`] for a refused JWKS URL.
    pub fn build(self) -> Result<MultiIssuerVerifier> {
        self.options.validate()?;
        if self.max_token_size == 0 {
            return Err(Error::invalid_config(
                "max_token_size",
                "the maximum token size must be above 0",
            ));
        }
        if self.issuers.is_empty() && self.verifiers.is_empty() {
            return Err(Error::invalid_config(
                "issuers",
                "no issuer: add one with .issuer(Issuer::discover(\"https://…\"))",
            ));
        }
        let mut entries = Vec::with_capacity(self.issuers.len() + self.verifiers.len());
        for issuer in &self.issuers {
            issuer.check()?;
            entries.push(Entry {
                issuer: issuer.issuer.as_str().into(),
                aliases: issuer.aliases.iter().map(|a| a.as_str().into()).collect(),
                verifier: self.issuer_verifier(issuer)?,
                audiences: issuer.audiences.clone(),
                leeway: issuer.leeway.as_secs(),
                typ: issuer.typ.clone(),
                required: issuer.required.clone(),
            });
        }
        for (issuer, verifier) in self.verifiers {
            entries.push(Entry {
                issuer: issuer.into(),
                aliases: Vec::new(),
                verifier,
                audiences: Vec::new(),
                leeway: 0,
                typ: None,
                required: Vec::new(),
            });
        }
        Issuers::new(entries, self.max_token_size).map(|inner| MultiIssuerVerifier {
            inner: Arc::new(inner),
        })
    }

    fn issuer_verifier(&self, issuer: &Issuer) -> Result<Verifier> {
        let clock = &self.clock;
        let max = self.max_token_size;
        let (algorithms, rule) = match &issuer.algorithms {
            Some(listed) => (listed.clone(), AlgorithmRule::Listed),
            None => (PUBLIC_KEY_ALGORITHMS.to_vec(), AlgorithmRule::KeysOnly),
        };
        let validation = issuer.validation(algorithms, clock, max);
        let builder = match &issuer.keys {
            IssuerKeys::Discovery => {
                let narrow: Option<Narrow> = match issuer.algorithms {
                    Some(_) => None,
                    None => {
                        let (issuer, clock) = (issuer.clone(), clock.clone());
                        Some(Box::new(move |algorithms| {
                            issuer.validation(algorithms, &clock, max)
                        }))
                    }
                };
                VerifierBuilder::discovery(&issuer.issuer, validation, rule, narrow)
            }
            IssuerKeys::Jwks(url) => {
                Verifier::builder(KeySource::Remote(url.clone()), validation).algorithms(rule)
            }
        };
        let mut builder = builder.cache(self.options.clone()).clock(clock.clone());
        if let Some(options) = &self.token_cache {
            builder = builder.token_cache(options.clone());
        }
        builder.build()
    }
}

impl Issuers {
    fn new(entries: Vec<Entry>, max_token_size: usize) -> Result<Issuers> {
        let names = |e: &Entry| {
            std::iter::once(e.issuer.clone())
                .chain(e.aliases.iter().cloned())
                .collect::<Vec<_>>()
        };
        for (i, entry) in entries.iter().enumerate() {
            for name in names(entry) {
                if entries[..i].iter().any(|e| names(e).contains(&name)) {
                    return Err(Error::invalid_config(
                        "issuers",
                        format!(
                            "the issuer {:?} is configured twice (as an issuer or an alias); \
                             configure each issuer once, with all the audiences it may issue for",
                            &*name
                        ),
                    ));
                }
            }
        }
        let index = (entries.len() > LINEAR_LOOKUP_MAX).then(|| {
            entries
                .iter()
                .enumerate()
                .flat_map(|(i, e)| {
                    std::iter::once((e.issuer.clone(), i))
                        .chain(e.aliases.iter().map(move |a| (a.clone(), i)))
                })
                .collect()
        });
        Ok(Issuers {
            entries,
            index,
            max_token_size,
        })
    }

    fn position(&self, iss: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(iss).copied(),
            None => self
                .entries
                .iter()
                .position(|e| *e.issuer == *iss || e.aliases.iter().any(|a| **a == *iss)),
        }
    }

    /// The entry for the token's `iss`. Refusals are jwt-core's: a token
    /// too large, a token that is not a JWS (its exact error), and
    /// `invalid_issuer`.
    fn select(&self, token: &str) -> std::result::Result<&Entry, jwt_core::Error> {
        if token.len() > self.max_token_size {
            return Err(jwt_core::Error::TooLarge {
                size: token.len(),
                limit: self.max_token_size,
            });
        }
        let found = peek::with_issuer(token, |iss| match iss {
            Iss::Str(iss) => self
                .position(&iss)
                .ok_or_else(|| self.refused(iss.into_owned())),
            Iss::Absent => Err(self.refused("(no `iss` claim)".to_owned())),
            Iss::NotString(what) => Err(self.refused(format!("({what})"))),
        });
        match found {
            Some(Ok(i)) => Ok(&self.entries[i]),
            Some(Err(e)) => Err(e),
            // Not a JWS with a JSON object payload: jwt-core's parser says
            // exactly what is wrong, in the order verification would.
            None => Err(match jwt_core::dangerous::insecure_decode(token) {
                Err(e) => e,
                Ok(_) => jwt_core::Error::Malformed {
                    reason: "the payload is not a single JSON object with at most one `iss`".into(),
                },
            }),
        }
    }

    #[cold]
    fn refused(&self, found: String) -> jwt_core::Error {
        jwt_core::Error::InvalidIssuer {
            found,
            expected: self
                .entries
                .iter()
                .flat_map(|e| std::iter::once(&e.issuer).chain(&e.aliases))
                .map(|name| name.to_string())
                .collect(),
        }
    }
}

impl MultiIssuerVerifier {
    /// A builder.
    pub fn builder() -> MultiIssuerVerifierBuilder {
        MultiIssuerVerifierBuilder {
            issuers: Vec::new(),
            verifiers: Vec::new(),
            options: CacheOptions::default(),
            clock: Arc::new(SystemClock),
            token_cache: None,
            max_token_size: DEFAULT_MAX_TOKEN_SIZE,
        }
    }

    /// Verifies `token` with the keys of the issuer its `iss` names and
    /// deserializes its claims; the returned header and claims are the
    /// verified ones. Awaits only when that issuer's key set must be
    /// (re)loaded: first use, expiry past `max_stale`, or an unknown `kid`
    /// outside the cooldown.
    ///
    /// Rejections are [`Error::Core`] with jwt-core's stable kinds:
    /// `invalid_issuer` (not a configured issuer, or no string `iss`),
    /// `unknown_key` (not a key of that issuer), `invalid_signature`,
    /// `invalid_audience`, `invalid_type`, `expired`, … ([`Error::is_rejection`]).
    /// An issuer that cannot be reached on first use is [`Error::Fetch`] (its
    /// JWKS) or [`Error::Backend`] (its metadata); see [`discovery`](crate::discovery).
    pub async fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<TokenData<T>> {
        let entry = self.inner.select(token)?;
        entry.verifier.verify::<T>(token).await
    }

    /// Verifies `token` with the keys already loaded: synchronous, no I/O,
    /// no allocation for choosing the issuer or the key. The same two
    /// outcomes as [`Verifier::verify_cached`] tell the caller to fall back
    /// to [`verify`](Self::verify): `unknown_key` with a `kid`, and
    /// [`Error::StaleKeys`] (that issuer's keys are not loaded yet, or too
    /// old). Every other outcome is final.
    pub fn verify_cached<T: DeserializeOwned>(&self, token: &str) -> Result<TokenData<T>> {
        let entry = self.inner.select(token)?;
        entry.verifier.verify_cached::<T>(token)
    }

    /// Loads every issuer's metadata and keys now, ignoring cooldowns (to
    /// load them before serving). Every issuer is tried; the first error is
    /// returned.
    pub async fn refresh(&self) -> Result<()> {
        let mut first = None;
        for entry in &self.inner.entries {
            if let Err(e) = entry.verifier.refresh().await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The configured issuers, in the order they were added.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.inner.entries.iter().map(|e| &*e.issuer)
    }

    /// The verifier of `issuer` (its cached kids, fetch count, token cache
    /// statistics).
    pub fn verifier(&self, issuer: &str) -> Option<&Verifier> {
        self.entry(issuer).map(|e| &e.verifier)
    }

    /// The metadata of `issuer` as last loaded (`None` before the first
    /// load, or for an issuer without discovery).
    pub fn metadata(&self, issuer: &str) -> Option<Arc<IssuerMetadata>> {
        self.verifier(issuer).and_then(Verifier::metadata)
    }

    /// How many times `issuer`'s metadata was fetched (0 for an issuer
    /// without discovery; `None` for an issuer not configured).
    pub fn metadata_fetch_count(&self, issuer: &str) -> Option<u64> {
        self.verifier(issuer).map(Verifier::metadata_fetch_count)
    }

    /// A verifier for these issuers and one more: `issuer`, verified by
    /// `verifier` (see [`MultiIssuerVerifierBuilder::verifier`] for what its
    /// validation must check). The two share every cache. Refused
    /// ([`Error::InvalidConfig`]) when `issuer` is already configured.
    pub fn with_verifier(&self, issuer: impl Into<String>, verifier: Verifier) -> Result<Self> {
        let mut entries: Vec<Entry> = self
            .inner
            .entries
            .iter()
            .map(|e| Entry {
                issuer: e.issuer.clone(),
                aliases: e.aliases.clone(),
                verifier: e.verifier.clone(),
                audiences: e.audiences.clone(),
                leeway: e.leeway,
                typ: e.typ.clone(),
                required: e.required.clone(),
            })
            .collect();
        entries.push(Entry {
            issuer: issuer.into().into(),
            aliases: Vec::new(),
            verifier,
            audiences: Vec::new(),
            leeway: 0,
            typ: None,
            required: Vec::new(),
        });
        Issuers::new(entries, self.inner.max_token_size).map(|inner| MultiIssuerVerifier {
            inner: Arc::new(inner),
        })
    }

    /// The entry of `issuer`.
    pub(crate) fn entry(&self, issuer: &str) -> Option<&Entry> {
        self.inner.position(issuer).map(|i| &self.inner.entries[i])
    }

    /// The entry for `token`'s `iss` (see [`verify`](Self::verify) for the refusals).
    #[cfg(feature = "jsonwebtoken")]
    pub(crate) fn entry_for(&self, token: &str) -> Result<&Entry> {
        Ok(self.inner.select(token)?)
    }
}
