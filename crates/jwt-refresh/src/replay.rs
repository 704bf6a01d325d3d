//! Replay caches: remember one-time identifiers, such as the `jti` of DPoP
//! proofs (RFC 9449 §11.1), for as long as they could be presented.
//!
//! A DPoP proof is acceptable for a short window after its `iat`
//! (`jwt_core::dpop::DpopVerifier`); a server accepts each `jti` once within
//! it. [`ReplayCache::check_and_store`] records a `jti` until the end of that
//! window (`DpopProof::replay_until`) and says whether it was new, in one
//! atomic step, so of any number of concurrent presentations exactly one is
//! accepted. Entries expire at the end of the window, so the key space is
//! bounded by the window and the request rate, and never grows without bound.
//!
//! - [`MemoryReplayCache`]: in process, with a cap on its entries.
//! - [`RedisReplayCache`] (feature `redis`): on the Redis or Redis Cluster of
//!   a [`RedisRefreshStore`](crate::RedisRefreshStore), sharing its connection,
//!   timeouts and clock; one `SET … NX PX` round trip per check.
//!
//! Identifiers are stored as their SHA-256, so a long or odd `jti` costs the
//! same as any other and never reaches a key name.
//!
//! ```
//! use jwt_core::dpop::{DpopProof, DpopRequest, DpopVerifier};
//! use jwt_core::{Algorithm, SigningKey};
//! use jwt_refresh::replay::{MemoryReplayCache, ReplayCache};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = DpopVerifier::new([Algorithm::ES256])?;
//! let replay = MemoryReplayCache::new();
//!
//! let client_key = SigningKey::generate(Algorithm::ES256)?;
//! let proof = DpopProof::builder(&client_key, Algorithm::ES256)
//!     .htm("POST")
//!     .htu("https://auth.example.com/token")
//!     .sign()?;
//!
//! let request = DpopRequest::new("POST", "https://auth.example.com/token");
//! let checked = verifier.verify(&proof, &request)?;
//! assert!(replay.check_and_store(checked.jti(), checked.replay_until()).await?);
//! // The same proof again: valid, but a replay.
//! let again = verifier.verify(&proof, &request)?;
//! assert!(!replay.check_and_store(again.jti(), again.replay_until()).await?);
//! # Ok(()) }
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::{self, Debug};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock, UnixTime};
use crate::error::{Error, Result};

/// The longest an identifier may be remembered, in seconds from now (one
/// day): far beyond any proof window (`jwt_core::dpop::MAX_IAT_WINDOW` is an
/// hour either side), so an `until` past it is a caller's bug, refused
/// rather than kept for ever.
pub const MAX_REMEMBER_SECS: i64 = 24 * 3600;

/// The longest identifier accepted, in bytes (DPoP proofs themselves are
/// capped at 8 KiB by default).
pub const MAX_JTI_LEN: usize = 8 * 1024;

/// Remembers one-time identifiers until a given time.
///
/// Object safe: services hold an `Arc<dyn ReplayCache>`. Implementations must
/// make [`check_and_store`](Self::check_and_store) atomic — of any number of
/// concurrent calls with one identifier, exactly one returns `true` — and
/// fail closed: when they cannot decide they return an error, never `true`.
/// [`conformance`] (feature `conformance`) checks this.
///
/// # Example
///
/// ```
/// use jwt_refresh::replay::{MemoryReplayCache, ReplayCache};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jwt_refresh::Error> {
/// let cache = MemoryReplayCache::new();
/// let until = jwt_core::time::now_unix() + 60; // the proof's `replay_until()`
/// assert!(cache.check_and_store("-BwC3ESc6acc2lTc", until).await?); // first time: accept
/// assert!(!cache.check_and_store("-BwC3ESc6acc2lTc", until).await?); // a replay: refuse
/// # Ok(()) }
/// ```
///
/// # Writing your own cache
///
/// Caches compose by implementing the trait. This one scopes identifiers to
/// a client key's thumbprint, so one client's `jti` can never collide with
/// another's:
///
/// ```
/// use async_trait::async_trait;
/// use jwt_refresh::replay::{MemoryReplayCache, ReplayCache};
///
/// #[derive(Debug)]
/// struct PerKey<C> { inner: C, jkt: String }
///
/// #[async_trait]
/// impl<C: ReplayCache> ReplayCache for PerKey<C> {
///     async fn check_and_store(&self, jti: &str, until: i64) -> jwt_refresh::Result<bool> {
///         self.inner.check_and_store(&format!("{}.{jti}", self.jkt), until).await
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> jwt_refresh::Result<()> {
/// let until = jwt_core::time::now_unix() + 60;
/// let a = PerKey { inner: MemoryReplayCache::new(), jkt: "key-a".into() };
/// assert!(a.check_and_store("j1", until).await?);
/// assert!(!a.check_and_store("j1", until).await?);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ReplayCache: Send + Sync + Debug + 'static {
    /// Records `jti` as seen until `until` (inclusive; seconds since the
    /// epoch, the proof's `replay_until`) and returns `true` if it was not
    /// already recorded — the first presentation, to accept — or `false` for
    /// a replay, to refuse.
    ///
    /// An `until` already past is remembered for the current second. Errors:
    /// [`InvalidInput`](crate::Error::InvalidInput) for an empty or
    /// over-long `jti`, or an `until` more than [`MAX_REMEMBER_SECS`] ahead;
    /// backend errors (retryable ones: answer 503 and refuse the request).
    async fn check_and_store(&self, jti: &str, until: UnixTime) -> Result<bool>;
}

/// SHA-256 of the identifier, after checking it and `until`.
fn digest(jti: &str, until: UnixTime, now: UnixTime) -> Result<[u8; 32]> {
    if jti.is_empty() {
        return Err(Error::invalid_input(
            "jti",
            "is empty; a replay cache keeps unique identifiers",
        ));
    }
    if jti.len() > MAX_JTI_LEN {
        return Err(Error::invalid_input(
            "jti",
            format!(
                "is {} bytes, over the {MAX_JTI_LEN}-byte limit; identifiers are short random values",
                jti.len()
            ),
        ));
    }
    if until > now.saturating_add(MAX_REMEMBER_SECS) {
        return Err(Error::invalid_input(
            "until",
            format!(
                "{until} is more than {MAX_REMEMBER_SECS}s after now ({now}); pass the end of the \
                 proof's acceptance window (`replay_until`), which is at most two hours ahead"
            ),
        ));
    }
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, jti.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    Ok(out)
}

/// How many identifiers a [`MemoryReplayCache`] holds by default: 1,000,000
/// (about 100 MB at most; at 60 s windows, over 8,000 proofs a second).
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// A [`ReplayCache`] in process memory.
///
/// One mutex is held across each check-and-store, so concurrent calls with
/// one identifier have exactly one winner. Expired entries are removed at
/// every call, in expiry order (a heap), so the cost stays O(log n) per call
/// and memory follows the live entries. A cap ([`DEFAULT_MAX_ENTRIES`], see
/// [`with_max_entries`](Self::with_max_entries)) bounds memory even under a
/// flood of valid proofs: when it is reached, calls fail with a retryable
/// error (answer 503) until entries expire. Entries are lost when the process
/// exits, and each process has its own: several instances of a service need
/// a shared cache ([`RedisReplayCache`]).
pub struct MemoryReplayCache {
    clock: Arc<dyn Clock>,
    max_entries: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// Identifier digest → the last second it is remembered.
    seen: HashMap<[u8; 32], UnixTime>,
    /// The same entries, soonest expiry first.
    expiry: BinaryHeap<Reverse<(UnixTime, [u8; 32])>>,
}

impl Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("clock", &self.clock)
            .field("max_entries", &self.max_entries)
            .field("entries", &self.len())
            .finish()
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryReplayCache {
    /// An empty cache on the system clock, holding at most
    /// [`DEFAULT_MAX_ENTRIES`] identifiers.
    pub fn new() -> Self {
        MemoryReplayCache {
            clock: Arc::new(SystemClock),
            max_entries: DEFAULT_MAX_ENTRIES,
            inner: Mutex::new(Entries::default()),
        }
    }

    /// Uses `clock` for expiry (e.g. the verifier's, or a
    /// [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Holds at most `max` unexpired identifiers (at least 1).
    pub fn with_max_entries(mut self, max: usize) -> Result<Self> {
        if max == 0 {
            return Err(Error::invalid_config(
                "max_entries",
                "must be at least 1 (each entry takes about 100 bytes)",
            ));
        }
        self.max_entries = max;
        Ok(self)
    }

    /// How many identifiers are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// `true` when no identifier is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Every update is a few infallible container writes, so a poisoned
        // lock's data is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ReplayCache for MemoryReplayCache {
    async fn check_and_store(&self, jti: &str, until: UnixTime) -> Result<bool> {
        let now = self.clock.now();
        let key = digest(jti, until, now)?;
        let until = until.max(now);
        let mut entries = self.lock();
        let entries = &mut *entries;
        // Forget what expired before this second (an entry lives through its
        // `until` second).
        while let Some(Reverse((at, old))) = entries.expiry.peek().copied() {
            if at >= now {
                break;
            }
            entries.expiry.pop();
            if entries.seen.get(&old) == Some(&at) {
                entries.seen.remove(&old);
            }
        }
        if entries.seen.contains_key(&key) {
            return Ok(false);
        }
        if entries.seen.len() >= self.max_entries {
            return Err(Error::Unavailable {
                backend: "memory replay cache",
                endpoint: "this process".into(),
                effect: "the identifier was not recorded, so the request must be refused; entries \
                         free up as their proofs' windows end",
                source: format!(
                    "it holds its maximum of {} unexpired identifiers (raise it with \
                     MemoryReplayCache::with_max_entries, shorten the proof window, or share a \
                     Redis-backed cache between instances)",
                    self.max_entries
                )
                .into(),
            });
        }
        entries.seen.insert(key, until);
        entries.expiry.push(Reverse((until, key)));
        Ok(true)
    }
}

#[cfg(feature = "redis")]
pub use self::redis_cache::RedisReplayCache;

#[cfg(feature = "redis")]
mod redis_cache {
    use std::fmt;

    use async_trait::async_trait;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::{digest, ReplayCache};
    use crate::clock::UnixTime;
    use crate::error::Result;
    use crate::redis::RedisRefreshStore;

    /// A [`ReplayCache`] on the Redis or Redis Cluster of a
    /// [`RedisRefreshStore`], sharing its connection (reconnection, slot
    /// moves), operation timeout, error mapping and clock.
    ///
    /// Layout: one string key per identifier, `P` the store's prefix:
    ///
    /// | key | type | content |
    /// |---|---|---|
    /// | `Pdpop:<base64url(SHA-256(jti))>` | string | `1`, with a TTL to the end of its `until` second |
    ///
    /// Each check is one round trip, `SET key 1 NX PX ms`: atomic on the
    /// server, so concurrent presentations of one identifier have exactly one
    /// winner, on any node of a cluster (each key lives in one slot). The TTL
    /// is computed on the store's clock; keys expire on the server's.
    /// Connection loss and timeouts are retryable errors, never a `true`.
    ///
    /// ```no_run
    /// use jwt_refresh::RedisRefreshStore;
    /// use jwt_refresh::replay::{RedisReplayCache, ReplayCache};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), jwt_refresh::Error> {
    /// let store = RedisRefreshStore::builder().url("redis://127.0.0.1:6379/").connect().await?;
    /// let replay = RedisReplayCache::new(&store);
    /// let first = replay.check_and_store("-BwC3ESc6acc2lTc", jwt_core::time::now_unix() + 60).await?;
    /// # let _ = first; Ok(()) }
    /// ```
    #[derive(Clone)]
    pub struct RedisReplayCache {
        store: RedisRefreshStore,
        prefix: String,
    }

    impl fmt::Debug for RedisReplayCache {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RedisReplayCache")
                .field("prefix", &self.prefix)
                .field("store", &self.store)
                .finish()
        }
    }

    impl RedisReplayCache {
        /// A cache on `store`'s connection, its keys under `store`'s prefix
        /// followed by `dpop:`.
        pub fn new(store: &RedisRefreshStore) -> Self {
            RedisReplayCache {
                prefix: format!("{}dpop:", store.key_prefix()),
                store: store.clone(),
            }
        }

        /// The key of an identifier (for tests and operators).
        pub fn key_of(&self, jti: &str) -> String {
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, jti.as_bytes());
            format!("{}{}", self.prefix, URL_SAFE_NO_PAD.encode(d.as_ref()))
        }
    }

    #[async_trait]
    impl ReplayCache for RedisReplayCache {
        async fn check_and_store(&self, jti: &str, until: UnixTime) -> Result<bool> {
            let now = self.store.store_clock().now();
            let key = digest(jti, until, now)?;
            let key = format!("{}{}", self.prefix, URL_SAFE_NO_PAD.encode(key));
            // Through the end of the `until` second; at least one second.
            let ttl_ms = (until.max(now) - now + 1).saturating_mul(1000);
            let reply: Option<String> = self
                .store
                .run_command(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(1)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl_ms),
                )
                .await?;
            Ok(reply.is_some())
        }
    }
}

/// The conformance suite every [`ReplayCache`] runs (feature `conformance`).
///
/// Plain `async fn`s that panic on any deviation. Each uses fresh random
/// identifiers, so they can share one cache; those taking a [`ManualClock`]
/// move it, so give them a cache of their own. Backend differences are
/// parameters: `expiry_wait` is how long the backend's own expiry takes to
/// forget a one-second entry (zero for a cache that expires on the injected
/// clock, about a second for Redis, whose keys expire on the server's).
///
/// [`ManualClock`]: crate::ManualClock
#[cfg(feature = "conformance")]
pub mod conformance {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{ReplayCache, MAX_JTI_LEN, MAX_REMEMBER_SECS};
    use crate::clock::{Clock, ManualClock};
    use crate::error::ErrorKind;
    use crate::id::FamilyId;

    fn jti(tag: &str) -> String {
        let unique = FamilyId::generate().expect("random jti");
        format!("conformance-{tag}-{unique}")
    }

    async fn check(cache: &dyn ReplayCache, jti: &str, until: i64) -> bool {
        cache
            .check_and_store(jti, until)
            .await
            .unwrap_or_else(|e| panic!("check_and_store({jti:?}) failed: {e}"))
    }

    /// The first presentation is accepted, every later one refused; other
    /// identifiers are independent, including ones that differ in one
    /// character or only in letter case.
    pub async fn first_use_wins(cache: &dyn ReplayCache, clock: &dyn Clock) {
        let until = clock.now() + 60;
        let a = jti("first");
        assert!(
            check(cache, &a, until).await,
            "a new identifier is accepted"
        );
        assert!(!check(cache, &a, until).await, "a replay is refused");
        assert!(
            !check(cache, &a, until + 30).await,
            "a later `until` does not reset it"
        );
        for other in [
            format!("{a}x"),
            a.to_uppercase(),
            a[..a.len() - 1].to_owned(),
        ] {
            assert!(
                check(cache, &other, until).await,
                "{other} is independent of {a}"
            );
        }
    }

    /// An identifier is remembered through its `until` second, and an
    /// `until` already past still counts for the current second.
    pub async fn remembered_until_inclusive(cache: &dyn ReplayCache, clock: &ManualClock) {
        let a = jti("inclusive");
        let until = clock.now() + 5;
        assert!(check(cache, &a, until).await);
        clock.advance(5);
        assert!(
            !check(cache, &a, until).await,
            "still remembered at `until`"
        );
        let past = jti("past");
        assert!(check(cache, &past, clock.now() - 100).await);
        assert!(
            !check(cache, &past, clock.now() - 100).await,
            "a past `until` counts for now"
        );
    }

    /// After its `until` has passed (on the clock, and for `expiry_wait` of
    /// real time), an identifier is forgotten: the cache does not grow with
    /// every identifier it ever saw.
    pub async fn forgotten_after_until(
        cache: &dyn ReplayCache,
        clock: &ManualClock,
        expiry_wait: Duration,
    ) {
        let a = jti("expiry");
        assert!(check(cache, &a, clock.now()).await);
        assert!(!check(cache, &a, clock.now()).await);
        clock.advance(2);
        tokio::time::sleep(expiry_wait).await;
        assert!(
            check(cache, &a, clock.now()).await,
            "forgotten after its `until`"
        );
    }

    /// Bad input is an `InvalidInput` error, never a `true`: an empty or
    /// over-long identifier, an `until` beyond [`MAX_REMEMBER_SECS`]. Long
    /// and unusual identifiers within the limits work like any other.
    pub async fn input_is_checked(cache: &dyn ReplayCache, clock: &dyn Clock) {
        let now = clock.now();
        let kind = |r: crate::Result<bool>| r.expect_err("refused").kind();
        assert_eq!(
            kind(cache.check_and_store("", now + 60).await),
            ErrorKind::InvalidInput
        );
        let huge = "j".repeat(MAX_JTI_LEN + 1);
        assert_eq!(
            kind(cache.check_and_store(&huge, now + 60).await),
            ErrorKind::InvalidInput
        );
        let far = now + MAX_REMEMBER_SECS + 10;
        assert_eq!(
            kind(cache.check_and_store(&jti("far"), far).await),
            ErrorKind::InvalidInput
        );
        let base = jti("odd");
        for odd in [
            format!("{base}-{}", "x".repeat(MAX_JTI_LEN - base.len() - 1)),
            format!("{base} {{tag}} ünï\u{0}\n*?[]"),
        ] {
            assert!(check(cache, &odd, now + 60).await);
            assert!(!check(cache, &odd, now + 60).await);
        }
    }

    /// `tasks` concurrent presentations of one identifier: exactly one is
    /// accepted. Needs a multi-threaded Tokio runtime for real parallelism.
    pub async fn concurrent_identical(
        cache: Arc<dyn ReplayCache>,
        clock: &dyn Clock,
        tasks: usize,
    ) {
        assert!(tasks >= 2, "a race needs at least two tasks");
        let a = jti("race");
        let until = clock.now() + 60;
        let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
        let mut handles = Vec::with_capacity(tasks);
        for _ in 0..tasks {
            let (cache, barrier, a) = (Arc::clone(&cache), Arc::clone(&barrier), a.clone());
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                cache.check_and_store(&a, until).await
            }));
        }
        let mut accepted = 0;
        for handle in handles {
            match handle.await.expect("task panicked") {
                Ok(first) => accepted += usize::from(first),
                Err(e) => panic!("check_and_store failed in the race: {e}"),
            }
        }
        assert_eq!(
            accepted, 1,
            "exactly one of {tasks} concurrent presentations is accepted"
        );
    }
}
