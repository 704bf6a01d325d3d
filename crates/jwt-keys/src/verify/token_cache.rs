//! The verified-token cache: a token seen before answers without another
//! signature verification, exactly as a verification would.
//!
//! What an entry holds, and why a hit answers what a miss would:
//! - The key is the SHA-256 of the whole token (signature included). A
//!   256-bit hash, not the token: the cache never holds a usable bearer
//!   credential (a heap dump shows claims, not tokens), every key has the
//!   same small size, and finding another token with the same hash is a
//!   second preimage of SHA-256.
//! - The value is what a verification produced that does not depend on the
//!   time: the header, the payload's JSON text, and the digest of the key
//!   set it verified under ([`Snapshot::key_digest`](super::snapshot::Snapshot)).
//!   A hit under another key set (a rotation, a retirement, a removal) is a
//!   miss: the token is verified again.
//! - Everything that depends on the time (`exp`, `nbf`, `iat`, with the
//!   leeway) is checked again on every hit with the [`Validation`]'s clock,
//!   in jwt-core's order and with its errors; the claims type is
//!   deserialized from the payload text as jwt-core does (its authoritative
//!   path is `serde_json::from_str`). Every other check depends only on the
//!   token, the key set and the [`Validation`], which is fixed per verifier.
//! - Only tokens that verified are kept: a client cannot fill the cache
//!   with forgeries, and every refusal is decided by a real verification.
//!
//! A token is kept the second time it verifies, not the first: a set of
//! the hashes of tokens seen once (the admission filter, "doorkeeper" in
//! TinyLFU's terms) stands in front of the cache. A token presented once
//! — a client that fetches a fresh token per request, a batch of
//! one-off calls — then costs a verification plus the hash and two
//! lookups (about 0.4 µs, under 1 % of an ES256 verification), never an
//! entry: it neither evicts the tokens that are presented again and again,
//! nor churns memory that the verification's own tables need. Once kept,
//! an entry's time claims are read from the payload at its first hit.
//!
//! The cache is `quick_cache`'s (lookups and inserts of ~0.1 µs, bounded
//! by weight); it has no per-entry expiry, so an entry whose token expired
//! is dropped when it is next looked up, and otherwise by the bounds (an
//! entry nobody asks for is evicted first).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use jwt_core::{Header, TokenData, Validation};
use serde::de::{DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The SHA-256 of a token: the cache key.
pub(super) type TokenKey = [u8; 32];

/// How a [`Verifier`](super::Verifier) caches verified tokens
/// ([`VerifierBuilder::token_cache`](super::VerifierBuilder::token_cache)).
/// All checks happen when the verifier is built.
///
/// | option | default | why |
/// |---|---|---|
/// | `max_entries` | 10 000 (at least 2) | one entry per distinct token; a resource server sees each client's token many times |
/// | `max_bytes` | 16 MiB (at least 64 KiB) | entries are weighed by their size (header, payload, bookkeeping); each counts as at least `max_bytes / max_entries`, so both bounds hold |
/// | `max_token_bytes` | 8 KiB | longer tokens are verified without the cache: hashing them costs more than it saves, and one entry stays small |
///
/// A token is kept the second time it verifies (a token presented once is
/// never kept, and costs under 1 % of an ES256 verification). An entry is
/// never used past its token's `exp` plus the leeway (it is dropped when it
/// is next looked up), nor under another key set than the one it verified
/// under; the bounds evict the entries least asked for first. Besides
/// `max_bytes`, the hashes of tokens seen once take about 64 bytes each,
/// for at most `max_entries` of them.
///
/// ```
/// use jwt_keys::TokenCacheOptions;
/// let options = TokenCacheOptions::default()
///     .with_max_entries(50_000)
///     .with_max_bytes(64 << 20);
/// assert_eq!(options.max_entries(), 50_000);
/// assert_eq!(options.max_token_bytes(), 8 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCacheOptions {
    max_entries: u64,
    max_bytes: u64,
    max_token_bytes: usize,
}

/// Default [`TokenCacheOptions::max_entries`].
pub const DEFAULT_TOKEN_CACHE_ENTRIES: u64 = 10_000;
/// Default [`TokenCacheOptions::max_bytes`]: 16 MiB.
pub const DEFAULT_TOKEN_CACHE_BYTES: u64 = 16 << 20;
/// Default [`TokenCacheOptions::max_token_bytes`]: 8 KiB.
pub const DEFAULT_TOKEN_CACHE_MAX_TOKEN: usize = 8 << 10;

impl Default for TokenCacheOptions {
    fn default() -> Self {
        TokenCacheOptions {
            max_entries: DEFAULT_TOKEN_CACHE_ENTRIES,
            max_bytes: DEFAULT_TOKEN_CACHE_BYTES,
            max_token_bytes: DEFAULT_TOKEN_CACHE_MAX_TOKEN,
        }
    }
}

impl TokenCacheOptions {
    /// At most this many tokens are cached (at least 2).
    pub fn with_max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }

    /// At most this many tokens are cached.
    pub fn max_entries(&self) -> u64 {
        self.max_entries
    }

    /// The cached entries weigh at most this many bytes (estimated: header,
    /// payload and bookkeeping; at least 64 KiB).
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The cached entries weigh at most this many bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Tokens longer than this are verified without the cache.
    pub fn with_max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Tokens longer than this are verified without the cache.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// The least weight of one entry: `max_bytes / max_entries`, rounded up.
    fn min_weight(&self) -> u64 {
        self.max_bytes.div_ceil(self.max_entries.max(1))
    }

    pub(super) fn validate(&self) -> Result<()> {
        let bad =
            |setting: &'static str, reason: String| Err(Error::invalid_config(setting, reason));
        if self.max_entries < 2 {
            return bad(
                "token_cache.max_entries",
                format!(
                    "max_entries ({}) must be at least 2 (the cache admits an entry only while \
                     another fits beside it); to verify every token afresh, build the verifier \
                     without .token_cache(…)",
                    self.max_entries
                ),
            );
        }
        if self.max_bytes < MIN_BYTES {
            return bad(
                "token_cache.max_bytes",
                format!(
                    "max_bytes ({}) must be at least {MIN_BYTES} (64 KiB: room for entries of \
                     tokens up to the default max_token_bytes)",
                    self.max_bytes
                ),
            );
        }
        if self.max_token_bytes == 0 {
            return bad(
                "token_cache.max_token_bytes",
                "max_token_bytes must be above 0, or no token is ever cached".into(),
            );
        }
        Ok(())
    }
}

/// The smallest `max_bytes` accepted: an entry must weigh less than the
/// share of one of the cache's shards that new entries enter (most of it),
/// and an 8 KiB token's entry weighs about 17 KiB.
const MIN_BYTES: u64 = 64 << 10;

/// What the token cache has done since the verifier was built, for metrics
/// ([`Verifier::token_cache_stats`](super::Verifier::token_cache_stats)).
/// Counters only grow; `entries` and `weighted_bytes` are the current size.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCacheStats {
    /// Verifications answered from the cache.
    pub hits: u64,
    /// Verifications that looked in the cache and verified the token
    /// (absent — a token is kept from its second verification on — or
    /// cached under a key set that has changed since).
    pub misses: u64,
    /// Entries removed to stay within `max_entries` / `max_bytes`.
    pub evictions: u64,
    /// Entries dropped because their token had expired when looked up.
    pub expirations: u64,
    /// Entries now cached.
    pub entries: u64,
    /// Their weight in bytes: each entry's estimated size, and at least
    /// `max_bytes / max_entries` (which makes `max_bytes` bound the count too).
    pub weighted_bytes: u64,
}

/// Which cached tokens [`Verifier::forget_cached_tokens`](super::Verifier::forget_cached_tokens) drops.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachedTokens<'a> {
    /// Every cached token.
    All,
    /// The tokens whose `sub` claim is this subject.
    Subject(&'a str),
    /// The tokens whose `sid` claim (a session id, OpenID Connect
    /// front-channel logout §3) is this one.
    Session(&'a str),
}

/// A verified token, as much of it as a hit needs.
pub(super) struct Entry {
    /// The digest of the key set the token verified under.
    keys: [u8; 32],
    header: Header,
    /// The decoded payload: JSON, checked by jwt-core when it verified.
    payload: Box<str>,
    /// The claims read from `payload` at the first hit (not on the miss,
    /// which would pay for reading them even for a token never seen
    /// again); `None` if they cannot be read, and the entry is not used.
    meta: OnceLock<Option<Meta>>,
    weight: u64,
}

/// The claims a hit needs: the time-dependent ones, read as jwt-core reads
/// them (a JSON number as an `f64`; only a payload that verified is read,
/// so each is absent or a number), and `sub` and `sid`, to forget a
/// subject's or a session's tokens.
#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(default)]
    sub: Option<Box<str>>,
    /// Any JSON type (it is not a registered claim): kept when a string.
    #[serde(default)]
    sid: MaybeString,
}

/// A claim kept only when it is a string.
#[derive(Default)]
struct MaybeString(Option<Box<str>>);

impl<'de> Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<MaybeString, E> {
                Ok(MaybeString(Some(v.into())))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E>(self) -> std::result::Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<MaybeString, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<MaybeString, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The estimated bookkeeping of one entry beyond its strings: the entry
/// itself, its `Arc`, the key, and the cache's own node and indexes.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>() + std::mem::size_of::<Meta>() + 160;

impl Entry {
    /// The claims a hit needs, read at the first hit.
    fn meta(&self) -> Option<&Meta> {
        self.meta
            .get_or_init(|| serde_json::from_str::<Meta>(&self.payload).ok())
            .as_ref()
    }

    /// The answer a verification would give now: the time checks of
    /// jwt-core's `Validation` (in its order, with its errors), then the
    /// claims type.
    fn answer<T: DeserializeOwned>(
        &self,
        meta: &Meta,
        validation: &Validation,
    ) -> std::result::Result<TokenData<T>, jwt_core::Error> {
        validation.check_times(meta.exp, meta.nbf, meta.iat)?;
        let claims = serde_json::from_str::<T>(&self.payload).map_err(|e| {
            jwt_core::Error::InvalidClaim {
                claim: "payload".to_owned(),
                reason: format!("does not match the expected claims type: {e}"),
            }
        })?;
        Ok(TokenData {
            header: self.header.clone(),
            claims,
        })
    }
}

/// Weighs an entry by its estimated size, and at least `max_bytes /
/// max_entries`: the byte bound then also bounds the number of entries.
#[derive(Clone)]
struct Weigh {
    min: u64,
}

impl quick_cache::Weighter<TokenKey, Arc<Entry>> for Weigh {
    fn weight(&self, _key: &TokenKey, entry: &Arc<Entry>) -> u64 {
        entry.weight.max(self.min)
    }
}

/// Counts the entries evicted for room.
#[derive(Clone)]
struct CountEvictions(Arc<AtomicU64>);

impl quick_cache::Lifecycle<TokenKey, Arc<Entry>> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: TokenKey, _entry: Arc<Entry>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

type Entries = quick_cache::sync::Cache<
    TokenKey,
    Arc<Entry>,
    Weigh,
    quick_cache::DefaultHashBuilder,
    CountEvictions,
>;

/// The cache of one verifier (shared by its clones).
pub(super) struct TokenCache {
    entries: Entries,
    /// The hashes of tokens that verified once and are not kept (yet).
    seen: quick_cache::sync::Cache<TokenKey, ()>,
    options: TokenCacheOptions,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: Arc<AtomicU64>,
    expirations: AtomicU64,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The size of a typical entry, to tell the cache how many to expect.
const TYPICAL_ENTRY: u64 = 1024;

/// At most this many hashes of tokens seen once are remembered (~64 MiB).
const MAX_SEEN: u64 = 1 << 20;

/// What a look in the cache found when it could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Miss {
    /// Nothing: the token is new, or was evicted.
    Absent,
    /// The token, verified under another key set (or unreadable): it was
    /// presented before, so it is kept again at once.
    Stale,
}

impl TokenCache {
    /// A cache with checked `options`.
    pub(super) fn new(options: TokenCacheOptions) -> TokenCache {
        let evictions = Arc::new(AtomicU64::new(0));
        // The expected count sizes the shards (each gets its share of the
        // bounds, and holds at least 32 typical entries).
        let expected = options
            .max_entries
            .min(options.max_bytes / TYPICAL_ENTRY)
            .max(1);
        let mut builder = quick_cache::OptionsBuilder::new();
        builder
            .estimated_items_capacity(usize::try_from(expected).unwrap_or(usize::MAX))
            .weight_capacity(options.max_bytes);
        let entries = match builder.build() {
            Ok(built) => Entries::with_options(
                built,
                Weigh {
                    min: options.min_weight(),
                },
                quick_cache::DefaultHashBuilder::default(),
                CountEvictions(evictions.clone()),
            ),
            // Both settings are given, so this cannot fail; one shard then.
            Err(_) => Entries::with(
                usize::try_from(expected).unwrap_or(usize::MAX),
                options.max_bytes,
                Weigh {
                    min: options.min_weight(),
                },
                quick_cache::DefaultHashBuilder::default(),
                CountEvictions(evictions.clone()),
            ),
        };
        // One slot per entry: about 64 bytes each (the key, the cache's
        // slot and index).
        let seen = quick_cache::sync::Cache::new(
            usize::try_from(options.max_entries.min(MAX_SEEN)).unwrap_or(usize::MAX),
        );
        TokenCache {
            entries,
            seen,
            options,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions,
            expirations: AtomicU64::new(0),
        }
    }

    /// The cache key of `token`, or `None` when the token is not cached
    /// (too long: verified as without the cache).
    pub(super) fn key(&self, token: &str) -> Option<TokenKey> {
        if token.len() > self.options.max_token_bytes {
            return None;
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        digest.as_ref().try_into().ok()
    }

    /// The answer for the token under `key` if it verified under the key
    /// set `keys`; a miss is counted, and the caller verifies.
    pub(super) fn answer<T: DeserializeOwned>(
        &self,
        key: &TokenKey,
        keys: &[u8; 32],
        validation: &Validation,
    ) -> std::result::Result<std::result::Result<TokenData<T>, jwt_core::Error>, Miss> {
        let found = self.entries.get(key);
        let usable = found.as_ref().filter(|e| e.keys == *keys);
        let Some((entry, meta)) = usable.and_then(|e| Some((e, e.meta()?))) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Err(if found.is_some() {
                Miss::Stale
            } else {
                Miss::Absent
            });
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        let answer = entry.answer::<T>(meta, validation);
        if matches!(answer, Err(jwt_core::Error::Expired { .. })) {
            // Not kept past its token's `exp`; a clock set back later only
            // makes it a miss, which verifies again.
            if self.entries.remove(key).is_some() {
                self.expirations.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(answer)
    }

    /// Keeps `token`, which just verified under the key set `keys` with
    /// `header`, if it was seen before (`miss` says how the look went);
    /// otherwise only its hash is remembered. Nothing of the payload is
    /// read here but its base64.
    pub(super) fn insert(
        &self,
        key: TokenKey,
        miss: Miss,
        token: &str,
        header: &Header,
        keys: [u8; 32],
    ) {
        match miss {
            Miss::Absent if self.seen.remove(&key).is_none() => {
                self.seen.insert(key, ());
                return;
            }
            Miss::Absent => {}
            // Removed rather than replaced: the cache reports a replaced
            // value as evicted, and `evictions` counts room made.
            Miss::Stale => {
                self.entries.remove(&key);
            }
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64)) = (parts.next(), parts.next()) else {
            return;
        };
        let Ok(bytes) = jwt_core::b64::decode(payload_b64.as_bytes(), "the payload") else {
            return;
        };
        // jwt-core checked that it is UTF-8 when it verified.
        let Ok(payload) = String::from_utf8(bytes) else {
            return;
        };
        // The header's strings and map as about twice its JSON; `sub` and
        // `sid`, read later, within a second copy of the payload.
        let weight = ENTRY_OVERHEAD + 2 * payload.len() + 2 * header_b64.len();
        let entry = Entry {
            keys,
            header: header.clone(),
            payload: payload.into_boxed_str(),
            meta: OnceLock::new(),
            weight: u64::try_from(weight).unwrap_or(u64::MAX),
        };
        self.entries.insert(key, Arc::new(entry));
    }

    /// Drops the tokens `which` selects; returns how many were dropped.
    pub(super) fn forget(&self, which: CachedTokens<'_>) -> u64 {
        let matches = |entry: &Entry| match (which, entry.meta()) {
            (CachedTokens::All, _) => true,
            (CachedTokens::Subject(sub), Some(meta)) => meta.sub.as_deref() == Some(sub),
            (CachedTokens::Session(sid), Some(meta)) => meta.sid.0.as_deref() == Some(sid),
            // Never used (see `answer`): dropped with any selection.
            (_, None) => true,
        };
        let mut dropped = 0;
        for (key, entry) in self.entries.iter() {
            if matches(&entry) && self.entries.remove(&key).is_some() {
                dropped += 1;
            }
        }
        dropped
    }

    /// The counters and the current size.
    pub(super) fn stats(&self) -> TokenCacheStats {
        TokenCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            expirations: self.expirations.load(Ordering::Relaxed),
            entries: u64::try_from(self.entries.len()).unwrap_or(u64::MAX),
            weighted_bytes: self.entries.weight(),
        }
    }
}
