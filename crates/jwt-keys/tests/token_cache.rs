//! The verified-token cache (`VerifierBuilder::token_cache`): a hit answers
//! exactly what a verification would — the same claims or the same error —
//! across expiry boundaries, clocks moved either way, and key sets that
//! rotate, retire and drop keys; and the cache stays within its bounds.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use jwt_core::{Algorithm, Clock, ErrorKind, Jwks, ManualClock, Signer, SigningKey, Validation};
use jwt_keys::{
    CacheOptions, CachedTokens, KeyInfo, KeyRecord, KeySource, KeyState, KeyStore,
    TokenCacheOptions, TokenCacheStats, Verifier,
};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

const T0: i64 = 1_700_000_000;
const ISS: &str = "https://issuer.example";
const AUD: &str = "api";

/// Signers of ES256 keys, made once: `kid` `k0`, `k1`, … bound to ES256.
fn keys() -> &'static [Signer] {
    static KEYS: OnceLock<Vec<Signer>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..6)
            .map(|i| {
                let key = SigningKey::generate(Algorithm::ES256)
                    .unwrap()
                    .with_kid(format!("k{i}"))
                    .with_algorithm(Algorithm::ES256)
                    .unwrap();
                Signer::new(key, Algorithm::ES256).unwrap()
            })
            .collect()
    })
}

fn sign(key: usize, claims: &Value) -> String {
    keys()[key].sign(claims).unwrap()
}

/// `token` with the signature of `other` (same header and algorithm).
fn with_signature_of(token: &str, other: &str) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    let (_, sig) = other.rsplit_once('.').unwrap();
    format!("{input}.{sig}")
}

/// A key store whose published keys the test sets one by one: a key
/// retires (verifies until a given time) or disappears at once (an issuer
/// that drops a key without grace).
#[derive(Debug)]
struct Scripted {
    clock: Arc<ManualClock>,
    /// (index into `keys()`, end of its grace when retiring)
    published: Mutex<Vec<(usize, Option<i64>)>>,
}

impl Scripted {
    fn new(clock: Arc<ManualClock>, first: usize) -> Arc<Scripted> {
        Arc::new(Scripted {
            clock,
            published: Mutex::new(vec![(first, None)]),
        })
    }

    /// `next` becomes the active key; the active one retires `grace`
    /// seconds from now.
    fn rotate(&self, next: usize, grace: i64) {
        let now = self.clock.now();
        let mut published = self.published.lock().unwrap();
        for (_, retire_at) in published.iter_mut() {
            retire_at.get_or_insert(now + grace);
        }
        published.retain(|(k, _)| *k != next);
        published.push((next, None));
    }

    /// `key` is no longer published; the active key stays.
    fn remove(&self, key: usize) {
        let mut published = self.published.lock().unwrap();
        let active = published.last().map(|(k, _)| *k);
        if active != Some(key) {
            published.retain(|(k, _)| *k != key);
        }
    }

    fn visible(&self) -> Vec<(usize, Option<i64>)> {
        let now = self.clock.now();
        let published = self.published.lock().unwrap();
        published
            .iter()
            .filter(|(_, at)| at.is_none_or(|at| at > now))
            .copied()
            .collect()
    }
}

#[async_trait]
impl KeyStore for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    async fn active(&self) -> jwt_keys::Result<KeyInfo> {
        let (key, _) = *self.published.lock().unwrap().last().unwrap();
        Ok(KeyInfo {
            kid: format!("k{key}"),
            alg: Algorithm::ES256,
        })
    }

    async fn sign(&self, kid: &str, _: &[u8]) -> jwt_keys::Result<Vec<u8>> {
        Err(jwt_keys::Error::UnknownKey {
            kid: kid.to_owned(),
        })
    }

    async fn verification_keys(&self) -> jwt_keys::Result<Jwks> {
        Ok(Jwks {
            keys: self
                .visible()
                .into_iter()
                .filter_map(|(k, _)| keys()[k].key().to_public_jwk())
                .collect(),
        })
    }

    async fn list(&self) -> jwt_keys::Result<Vec<KeyRecord>> {
        let now = self.clock.now();
        Ok(self
            .published
            .lock()
            .unwrap()
            .iter()
            .map(|&(k, retire_at)| {
                let state = match retire_at {
                    None => KeyState::Active,
                    Some(at) if at > now => KeyState::Retiring,
                    Some(_) => KeyState::Retired,
                };
                let mut record = KeyRecord::new(format!("k{k}"), Algorithm::ES256, state);
                record.retire_at = retire_at;
                record
            })
            .collect())
    }
}

fn validation(clock: &Arc<ManualClock>, leeway: u64) -> Validation {
    Validation::new([Algorithm::ES256])
        .issuer(ISS)
        .audience(AUD)
        .leeway(Duration::from_secs(leeway))
        .clock(clock.clone())
}

/// Key-set caching that never refreshes on its own within a test's span
/// (so that both verifiers of a comparison always hold the same keys).
fn quiet() -> CacheOptions {
    CacheOptions::default()
        .with_max_ttl(Duration::from_secs(30 * 86_400))
        .with_default_ttl(Duration::from_secs(30 * 86_400))
}

/// A verifier over `source`, with a token cache when `cache` is given.
fn verifier(
    source: KeySource,
    clock: &Arc<ManualClock>,
    leeway: u64,
    cache: Option<TokenCacheOptions>,
) -> Verifier {
    let mut builder = Verifier::builder(source, validation(clock, leeway))
        .clock(clock.clone())
        .cache(quiet());
    if let Some(options) = cache {
        builder = builder.token_cache(options);
    }
    let v = builder.build().unwrap();
    // Load the keys now, so that `verify_cached` has them.
    rt().block_on(v.refresh()).unwrap();
    v
}

/// A cached and an uncached verifier over the same store and clock.
fn pair(store: &Arc<Scripted>, clock: &Arc<ManualClock>, leeway: u64) -> (Verifier, Verifier) {
    let cached = verifier(
        KeySource::Store(store.clone()),
        clock,
        leeway,
        Some(TokenCacheOptions::default()),
    );
    let plain = verifier(KeySource::Store(store.clone()), clock, leeway, None);
    (cached, plain)
}

fn claims(sub: &str, now: i64) -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": sub, "iat": now, "exp": now + 600})
}

fn stats(v: &Verifier) -> TokenCacheStats {
    v.token_cache_stats().expect("a token cache")
}

/// The claims as a typed struct (the verifier is generic over the type).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Typed {
    sub: String,
    exp: f64,
    #[serde(default)]
    role: Option<String>,
}

/// A type most tokens do not fit (`role` is required and a number).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Strict {
    sub: String,
    role: u32,
}

/// One answer, comparable across verifiers: the claims as JSON, or the
/// error's kind and its whole message.
#[derive(Debug, PartialEq)]
enum Answer {
    Claims(String, String),
    Refused(String, String),
}

fn answer<T: std::fmt::Debug>(r: jwt_keys::Result<jwt_core::TokenData<T>>) -> Answer {
    match r {
        Ok(data) => Answer::Claims(format!("{:?}", data.header), format!("{:?}", data.claims)),
        Err(e) => {
            let kind = match &e {
                jwt_keys::Error::Core(core) => core.kind().as_str().to_owned(),
                other => other.kind().as_str().to_owned(),
            };
            Answer::Refused(kind, e.to_string())
        }
    }
}

fn core_kind(r: &jwt_keys::Result<jwt_core::TokenData<Value>>) -> Option<ErrorKind> {
    match r {
        Err(jwt_keys::Error::Core(e)) => Some(e.kind()),
        _ => None,
    }
}

/// Verifies `token` twice (a token is kept from its second verification
/// on), so that it is cached: two misses.
fn keep(v: &Verifier, token: &str) {
    for _ in 0..2 {
        v.verify_cached::<Value>(token).expect("verifies");
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_repeated_token_is_a_hit_with_the_same_answer() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Scripted::new(clock.clone(), 0);
    let (cached, plain) = pair(&store, &clock, 0);
    let token = sign(
        0,
        &json!({"iss": ISS, "aud": AUD, "sub": "alice", "exp": T0 + 600, "role": "admin"}),
    );
    rt().block_on(async {
        let first = cached.verify::<Value>(&token).await.unwrap();
        let s = stats(&cached);
        assert_eq!(
            (s.hits, s.misses, s.entries, s.evictions, s.expirations),
            (0, 1, 0, 0, 0),
            "a token seen once is not kept"
        );
        assert_eq!(cached.verify::<Value>(&token).await.unwrap(), first);
        let s = stats(&cached);
        assert_eq!(
            (s.hits, s.misses, s.entries),
            (0, 2, 1),
            "kept the second time"
        );
        let second = cached.verify::<Value>(&token).await.unwrap();
        assert_eq!(second, first);
        assert_eq!(second.claims["role"], "admin");
        assert_eq!(second.header.kid.as_deref(), Some("k0"));
        let typed = cached.verify_cached::<Typed>(&token).unwrap();
        assert_eq!(typed.claims.sub, "alice");
        assert_eq!(typed.claims.role.as_deref(), Some("admin"));
        assert_eq!(
            answer(cached.verify::<Typed>(&token).await),
            answer(plain.verify::<Typed>(&token).await)
        );
        let s = stats(&cached);
        assert_eq!((s.hits, s.misses, s.entries), (3, 2, 1));
        assert!(s.weighted_bytes > 0, "{s:?}");
    });
    // Without a token cache there are no stats, and nothing to forget.
    assert_eq!(plain.token_cache_stats(), None);
    assert_eq!(plain.forget_cached_tokens(CachedTokens::All), 0);
}

#[test]
fn a_hit_expires_exactly_when_a_miss_would_leeway_included() {
    for (leeway, exp) in [(60u64, json!(T0 + 100)), (0, json!(T0 as f64 + 100.5))] {
        let clock = Arc::new(ManualClock::new(T0));
        let store = Scripted::new(clock.clone(), 0);
        let (cached, plain) = pair(&store, &clock, leeway);
        let token = sign(
            0,
            &json!({"iss": ISS, "aud": AUD, "sub": "alice", "exp": exp}),
        );
        let last_ok = T0 + 100 + leeway as i64 - i64::from(leeway == 60);
        let check = |at: i64| {
            clock.set(at);
            let hit = cached.verify_cached::<Value>(&token);
            let miss = plain.verify_cached::<Value>(&token);
            assert_eq!(answer(hit), answer(miss), "leeway {leeway}, at {at}");
        };
        check(T0);
        check(T0 + 1);
        check(last_ok);
        assert_eq!(stats(&cached).hits, 1);
        clock.set(last_ok + 1);
        match cached.verify_cached::<Value>(&token) {
            Err(jwt_keys::Error::Core(jwt_core::Error::Expired {
                exp,
                now,
                leeway: l,
            })) => assert_eq!((exp, now, l), (T0 + 100, last_ok + 1, leeway)),
            other => panic!("expected expired, got {other:?}"),
        }
        check(last_ok + 1);
        // The expired hit dropped the entry; the next look is a miss.
        let s = stats(&cached);
        assert_eq!((s.hits, s.misses, s.entries), (2, 3, 0), "{s:?}");
        // A clock set back makes it valid again: verified afresh (twice,
        // as any token seen anew), and kept again.
        check(last_ok);
        check(last_ok);
        assert_eq!(stats(&cached).entries, 1);
    }
}

#[test]
fn nbf_and_iat_are_checked_again_on_every_hit() {
    let clock = Arc::new(ManualClock::new(T0 + 10));
    let store = Scripted::new(clock.clone(), 0);
    let (cached, plain) = pair(&store, &clock, 30);
    let nbf = sign(
        0,
        &json!({"iss": ISS, "aud": AUD, "sub": "a", "nbf": T0, "exp": T0 + 900}),
    );
    let iat = sign(
        0,
        &json!({"iss": ISS, "aud": AUD, "sub": "b", "iat": T0, "exp": T0 + 900}),
    );
    for token in [&nbf, &iat] {
        keep(&cached, token);
    }
    for at in [T0 - 30, T0 - 31, T0 - 400, T0 + 5] {
        clock.set(at);
        for token in [&nbf, &iat] {
            assert_eq!(
                answer(cached.verify_cached::<Value>(token)),
                answer(plain.verify_cached::<Value>(token)),
                "at {at}"
            );
        }
    }
    clock.set(T0 - 31);
    match cached.verify_cached::<Value>(&nbf) {
        Err(jwt_keys::Error::Core(jwt_core::Error::Immature {
            claim,
            value,
            now,
            leeway,
        })) => {
            assert_eq!((claim, value, now, leeway), ("nbf", T0 as f64, T0 - 31, 30))
        }
        other => panic!("expected immature nbf, got {other:?}"),
    }
    match cached.verify_cached::<Value>(&iat) {
        Err(jwt_keys::Error::Core(jwt_core::Error::Immature { claim, .. })) => {
            assert_eq!(claim, "iat")
        }
        other => panic!("expected immature iat, got {other:?}"),
    }
    // Every one of these was answered from the cache: immature is not a
    // reason to drop an entry.
    let s = stats(&cached);
    assert_eq!((s.misses, s.hits, s.entries), (4, 10, 2), "{s:?}");
}

#[test]
fn a_hit_deserializes_the_callers_type_as_a_miss_does() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Scripted::new(clock.clone(), 0);
    let (cached, plain) = pair(&store, &clock, 0);
    let token = sign(0, &claims("alice", T0));
    // Cached through one type, then asked for another that does not fit.
    keep(&cached, &token);
    let hit = cached.verify_cached::<Strict>(&token);
    match &hit {
        Err(jwt_keys::Error::Core(jwt_core::Error::InvalidClaim { claim, reason })) => {
            assert_eq!(claim, "payload");
            assert!(reason.contains("missing field `role`"), "{reason}");
        }
        other => panic!("expected invalid_claim, got {other:?}"),
    }
    assert_eq!(answer(hit), answer(plain.verify_cached::<Strict>(&token)));
    // Expired comes before the type, on a hit as on a miss.
    clock.set(T0 + 600);
    let hit = cached.verify_cached::<Strict>(&token);
    assert_eq!(answer(hit), answer(plain.verify_cached::<Strict>(&token)));
    assert_eq!(stats(&cached).hits, 2);
}

#[test]
fn rotation_retirement_and_removal_make_cached_tokens_verify_again() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Scripted::new(clock.clone(), 0);
    let (cached, plain) = pair(&store, &clock, 0);
    let rt = rt();
    let both = |token: &str| {
        let hit = cached.verify_cached::<Value>(token);
        let kind = core_kind(&hit);
        assert_eq!(answer(hit), answer(plain.verify_cached::<Value>(token)));
        kind
    };
    let reload = || {
        rt.block_on(async {
            cached.refresh().await.unwrap();
            plain.refresh().await.unwrap();
        })
    };
    reload();
    let old = sign(0, &claims("alice", T0));
    for _ in 0..3 {
        assert_eq!(both(&old), None);
    }
    assert_eq!((stats(&cached).hits, stats(&cached).misses), (1, 2));

    // A reload that changes nothing keeps the entries.
    reload();
    assert_eq!(both(&old), None);
    assert_eq!((stats(&cached).hits, stats(&cached).misses), (2, 2));

    // Rotation: k0 retires in 300 s. The key set changed: verified again
    // (and kept again at once: the token was presented before).
    store.rotate(1, 300);
    reload();
    assert_eq!(both(&old), None);
    assert_eq!((stats(&cached).hits, stats(&cached).misses), (2, 3));
    assert_eq!(both(&old), None);
    assert_eq!(stats(&cached).hits, 3);

    // The end of k0's grace, in memory (no reload): never the cached claims.
    clock.set(T0 + 300);
    assert_eq!(both(&old), Some(ErrorKind::UnknownKey));
    // And not after the clock is set back either: k0 is gone from the set.
    clock.set(T0 + 10);
    assert_eq!(both(&old), Some(ErrorKind::UnknownKey));

    // Removal without grace: k1 signs, is cached, then disappears.
    let new = sign(1, &claims("bob", T0 + 10));
    for _ in 0..3 {
        assert_eq!(both(&new), None);
    }
    store.rotate(2, 3600);
    store.remove(1);
    reload();
    assert_eq!(both(&new), Some(ErrorKind::UnknownKey));
    let hits = stats(&cached).hits;
    rt.block_on(async {
        let r = cached.verify::<Value>(&new).await;
        assert_eq!(core_kind(&r), Some(ErrorKind::UnknownKey));
    });
    assert_eq!(stats(&cached).hits, hits, "no hit for a removed key");
}

/// A store publishing one key under the kid `x`, which the test can
/// replace by another key under the same kid (an issuer reusing a kid).
#[derive(Debug)]
struct OneKid(Mutex<jwt_core::Jwk>);

#[async_trait]
impl KeyStore for OneKid {
    fn name(&self) -> &'static str {
        "one-kid"
    }

    async fn active(&self) -> jwt_keys::Result<KeyInfo> {
        Ok(KeyInfo {
            kid: "x".into(),
            alg: Algorithm::ES256,
        })
    }

    async fn sign(&self, kid: &str, _: &[u8]) -> jwt_keys::Result<Vec<u8>> {
        Err(jwt_keys::Error::UnknownKey {
            kid: kid.to_owned(),
        })
    }

    async fn verification_keys(&self) -> jwt_keys::Result<Jwks> {
        Ok(Jwks {
            keys: vec![self.0.lock().unwrap().clone()],
        })
    }

    async fn list(&self) -> jwt_keys::Result<Vec<KeyRecord>> {
        Ok(vec![KeyRecord::new(
            "x",
            Algorithm::ES256,
            KeyState::Active,
        )])
    }
}

#[test]
fn a_kid_bound_to_another_key_makes_cached_tokens_verify_again() {
    let signer = |_: ()| {
        let key = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("x")
            .with_algorithm(Algorithm::ES256)
            .unwrap();
        Signer::new(key, Algorithm::ES256).unwrap()
    };
    let (first, second) = (signer(()), signer(()));
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(OneKid(Mutex::new(first.key().to_public_jwk().unwrap())));
    let options = Some(TokenCacheOptions::default());
    let cached = verifier(KeySource::Store(store.clone()), &clock, 0, options);
    let plain = verifier(KeySource::Store(store.clone()), &clock, 0, None);
    let token = first.sign(&claims("alice", T0)).unwrap();
    for _ in 0..3 {
        assert_eq!(
            cached.verify_cached::<Value>(&token).unwrap().claims["sub"],
            "alice"
        );
    }
    *store.0.lock().unwrap() = second.key().to_public_jwk().unwrap();
    rt().block_on(async {
        cached.refresh().await.unwrap();
        plain.refresh().await.unwrap();
    });
    let hit = cached.verify_cached::<Value>(&token);
    assert_eq!(core_kind(&hit), Some(ErrorKind::InvalidSignature));
    assert_eq!(answer(hit), answer(plain.verify_cached::<Value>(&token)));
    let s = stats(&cached);
    assert_eq!((s.hits, s.misses), (1, 3), "{s:?}");
}

#[test]
fn only_tokens_that_verified_are_cached() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Scripted::new(clock.clone(), 0);
    let (cached, plain) = pair(&store, &clock, 0);
    let good = sign(0, &claims("alice", T0));
    let forged = with_signature_of(&good, &sign(0, &claims("mallory", T0)));
    let expired = sign(0, &claims("alice", T0 - 601));
    let wrong_aud = sign(
        0,
        &json!({"iss": ISS, "aud": "other", "sub": "a", "exp": T0 + 60}),
    );
    let unknown = sign(5, &claims("alice", T0));
    let cases = [
        (&forged, ErrorKind::InvalidSignature),
        (&expired, ErrorKind::Expired),
        (&wrong_aud, ErrorKind::InvalidAudience),
        (&unknown, ErrorKind::UnknownKey),
    ];
    for _ in 0..2 {
        for (token, kind) in &cases {
            let hit = cached.verify_cached::<Value>(token);
            assert_eq!(core_kind(&hit), Some(*kind));
            assert_eq!(answer(hit), answer(plain.verify_cached::<Value>(token)));
        }
    }
    let s = stats(&cached);
    assert_eq!((s.hits, s.misses, s.entries), (0, 8, 0), "{s:?}");
}

#[test]
fn entries_are_bounded_by_count_and_by_bytes() {
    let clock = Arc::new(ManualClock::new(T0));
    let set = Arc::new({
        let mut set = jwt_core::KeySet::new();
        set.insert(keys()[0].key().verifying_key()).unwrap();
        set
    });
    let tokens: Vec<String> = (0..150)
        .map(|i| sign(0, &claims(&format!("user-{i}"), T0)))
        .collect();
    for (options, held) in [
        // Each entry weighs at least 16 MiB / 10 (rounded up): 9 or 10 fit.
        (TokenCacheOptions::default().with_max_entries(10), 9..=10),
        // ~800-byte entries in 64 KiB: far fewer than the 1000 allowed.
        (
            TokenCacheOptions::default()
                .with_max_entries(1000)
                .with_max_bytes(65536),
            60..=100,
        ),
    ] {
        let max_bytes = options.max_bytes();
        let v = verifier(KeySource::KeySet(set.clone()), &clock, 0, Some(options));
        for _ in 0..3 {
            for token in &tokens {
                assert_eq!(
                    v.verify_cached::<Typed>(token).unwrap().claims.exp,
                    (T0 + 600) as f64
                );
            }
        }
        let s = stats(&v);
        assert!(held.contains(&s.entries), "{s:?}");
        assert!(s.weighted_bytes <= max_bytes, "{s:?}");
        assert!(s.evictions > 0, "{s:?}");
        assert_eq!(s.hits + s.misses, 450, "{s:?}");
    }
}

/// A token is kept the second time it verifies: tokens presented once
/// (a client that fetches a token per request) never take an entry, so a
/// flood of them neither evicts the tokens presented again and again nor
/// turns their hits into misses.
#[test]
fn tokens_presented_once_are_never_kept_and_evict_nothing() {
    let clock = Arc::new(ManualClock::new(T0));
    let set = Arc::new({
        let mut set = jwt_core::KeySet::new();
        set.insert(keys()[0].key().verifying_key()).unwrap();
        set
    });
    let options = TokenCacheOptions::default().with_max_entries(10);
    let v = verifier(KeySource::KeySet(set), &clock, 0, Some(options));
    let hot: Vec<String> = (0..5)
        .map(|i| sign(0, &claims(&format!("hot-{i}"), T0)))
        .collect();
    for token in &hot {
        keep(&v, token);
    }
    assert_eq!(stats(&v).entries, 5);
    for i in 0..200 {
        let once = sign(0, &claims(&format!("once-{i}"), T0));
        assert_eq!(
            v.verify_cached::<Value>(&once).unwrap().claims["sub"],
            format!("once-{i}")
        );
    }
    let before = stats(&v);
    assert_eq!(
        (before.entries, before.evictions, before.misses),
        (5, 0, 210),
        "{before:?}"
    );
    for token in &hot {
        v.verify_cached::<Value>(token).unwrap();
    }
    let after = stats(&v);
    assert_eq!(
        (after.hits, after.misses),
        (before.hits + 5, before.misses),
        "{after:?}"
    );
}

#[test]
fn an_expired_entry_is_dropped_when_looked_up_and_counted() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Scripted::new(clock.clone(), 0);
    let (cached, _) = pair(&store, &clock, 0);
    let short = sign(
        0,
        &json!({"iss": ISS, "aud": AUD, "sub": "a", "exp": T0 + 1}),
    );
    let long = sign(0, &claims("b", T0));
    keep(&cached, &short);
    keep(&cached, &long);
    assert_eq!(stats(&cached).entries, 2);
    clock.set(T0 + 1);
    let r = cached.verify_cached::<Value>(&short);
    assert_eq!(core_kind(&r), Some(ErrorKind::Expired));
    let s = stats(&cached);
    assert_eq!(
        (s.entries, s.expirations, s.evictions, s.hits),
        (1, 1, 0, 1),
        "{s:?}"
    );
    // The other entry still answers.
    assert_eq!(
        cached.verify_cached::<Value>(&long).unwrap().claims["sub"],
        "b"
    );
    assert_eq!(stats(&cached).hits, 2);
}

#[test]
fn forgetting_by_subject_session_or_all() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Scripted::new(clock.clone(), 0);
    let (cached, _) = pair(&store, &clock, 0);
    let token = |sub: &str, sid: Value| {
        sign(
            0,
            &json!({"iss": ISS, "aud": AUD, "sub": sub, "sid": sid, "exp": T0 + 600}),
        )
    };
    let tokens = [
        token("alice", json!("s1")),
        token("alice", json!("s2")),
        token("bob", json!("s3")),
        // A `sid` that is not a string is never matched.
        token("carol", json!(["s1"])),
    ];
    for t in &tokens {
        keep(&cached, t);
    }
    assert_eq!(stats(&cached).entries, 4);
    assert_eq!(cached.forget_cached_tokens(CachedTokens::Session("s1")), 1);
    assert_eq!(
        cached.forget_cached_tokens(CachedTokens::Subject("alice")),
        1
    );
    assert_eq!(
        cached.forget_cached_tokens(CachedTokens::Subject("nobody")),
        0
    );
    assert_eq!(stats(&cached).entries, 2);
    // A forgotten token is verified again at its next uses (and kept
    // again from the second, as any token seen anew).
    let misses = stats(&cached).misses;
    keep(&cached, &tokens[0]);
    assert_eq!(stats(&cached).misses, misses + 2);
    assert_eq!(stats(&cached).entries, 3);
    assert_eq!(cached.forget_cached_tokens(CachedTokens::All), 3);
    assert_eq!(stats(&cached).entries, 0);
}

#[test]
fn long_tokens_are_verified_without_the_cache() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Scripted::new(clock.clone(), 0);
    let v = verifier(
        KeySource::Store(store),
        &clock,
        0,
        Some(TokenCacheOptions::default().with_max_token_bytes(300)),
    );
    let long = sign(
        0,
        &json!({"iss": ISS, "aud": AUD, "sub": "a", "exp": T0 + 60, "pad": "x".repeat(300)}),
    );
    for _ in 0..3 {
        assert_eq!(v.verify_cached::<Value>(&long).unwrap().claims["sub"], "a");
    }
    let s = stats(&v);
    assert_eq!((s.hits, s.misses, s.entries), (0, 0, 0), "{s:?}");
}

#[test]
fn token_cache_options_are_checked_when_building() {
    let clock = Arc::new(ManualClock::new(T0));
    let cases = [
        (
            TokenCacheOptions::default().with_max_entries(0),
            "token_cache.max_entries",
            "without .token_cache",
        ),
        (
            TokenCacheOptions::default().with_max_entries(1),
            "token_cache.max_entries",
            "at least 2",
        ),
        (
            TokenCacheOptions::default().with_max_bytes(65535),
            "token_cache.max_bytes",
            "at least 65536",
        ),
        (
            TokenCacheOptions::default().with_max_token_bytes(0),
            "token_cache.max_token_bytes",
            "no token is ever cached",
        ),
    ];
    for (options, expected, fragment) in cases {
        let store = Scripted::new(clock.clone(), 0);
        let err = Verifier::builder(KeySource::Store(store), validation(&clock, 0))
            .token_cache(options)
            .build()
            .unwrap_err();
        match &err {
            jwt_keys::Error::InvalidConfig { setting, reason } => {
                assert_eq!(*setting, expected);
                assert!(reason.contains(fragment), "{reason}");
            }
            other => panic!("expected invalid_config, got {other:?}"),
        }
    }
    // The extremes that are accepted build, and cache.
    for options in [
        TokenCacheOptions::default()
            .with_max_entries(u64::MAX)
            .with_max_bytes(u64::MAX),
        TokenCacheOptions::default()
            .with_max_entries(2)
            .with_max_bytes(u64::MAX),
        TokenCacheOptions::default()
            .with_max_entries(u64::MAX)
            .with_max_bytes(65536),
    ] {
        let store = Scripted::new(clock.clone(), 0);
        let v = verifier(KeySource::Store(store), &clock, 0, Some(options.clone()));
        let token = sign(0, &claims("alice", T0));
        for _ in 0..3 {
            assert_eq!(
                v.verify_cached::<Value>(&token).unwrap().claims["sub"],
                "alice"
            );
        }
        let s = stats(&v);
        assert_eq!(
            (s.hits, s.misses, s.entries),
            (1, 2, 1),
            "{options:?}: {s:?}"
        );
    }
}

// --- the property: a cached verifier answers what an uncached one does ---

/// What a token in the test is made to be.
#[derive(Debug, Clone)]
enum Kind {
    /// Signed by a published key (`key` picks among them).
    Valid { key: usize },
    /// Wrong audience.
    WrongAud,
    /// Another token's signature.
    BadSignature,
    /// Signed by a key never published.
    UnknownKid,
    /// No `exp` (required).
    NoExp,
}

#[derive(Debug, Clone)]
enum Op {
    /// Mint a token; times are relative to the clock.
    Mint {
        kind: Kind,
        exp: i64,
        /// Fractional seconds added to `exp`.
        frac: bool,
        nbf: Option<i64>,
        iat: Option<i64>,
    },
    /// Verify the `pick`-th token (modulo the count) as `ty`, through
    /// `verify` (async) or `verify_cached`.
    Verify {
        pick: usize,
        ty: u8,
        reloading: bool,
    },
    /// Move the clock (either way).
    Clock(i64),
    /// Verify the `pick`-th token, set the clock next to one of its time
    /// boundaries — where its `exp` (0), `nbf` (1) or `iat` (2) starts or
    /// stops refusing it with the leeway, plus `delta` seconds — and verify
    /// it again (a hit on the boundary, when it verified the first time).
    Edge { pick: usize, claim: u8, delta: i64 },
    /// The next key signs; the active one retires after `grace` seconds.
    Rotate { grace: i64 },
    /// A published key disappears at once.
    Remove { pick: usize },
    /// Both verifiers reload the store's keys.
    Reload,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => (0usize..4).prop_map(|key| Kind::Valid { key }),
        1 => Just(Kind::WrongAud),
        1 => Just(Kind::BadSignature),
        1 => Just(Kind::UnknownKid),
        1 => Just(Kind::NoExp),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (kind(), -200i64..900, any::<bool>(), proptest::option::of(-300i64..300),
              proptest::option::of(-300i64..300))
            .prop_map(|(kind, exp, frac, nbf, iat)| Op::Mint { kind, exp, frac, nbf, iat }),
        8 => (any::<usize>(), 0u8..3, any::<bool>())
            .prop_map(|(pick, ty, reloading)| Op::Verify { pick, ty, reloading }),
        3 => (-400i64..400).prop_map(Op::Clock),
        2 => (any::<usize>(), 0u8..3, -1i64..=1)
            .prop_map(|(pick, claim, delta)| Op::Edge { pick, claim, delta }),
        1 => (0i64..600).prop_map(|grace| Op::Rotate { grace }),
        1 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
        1 => Just(Op::Reload),
    ]
}

/// Runs `ops` on a cached and an uncached verifier over one store and one
/// clock; every verification must give the same answer on both. Returns
/// the cached verifier's stats.
fn run(ops: &[Op], leeway: u64) -> TokenCacheStats {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Scripted::new(clock.clone(), 0);
    let cached = verifier(
        KeySource::Store(store.clone()),
        &clock,
        leeway,
        Some(TokenCacheOptions::default().with_max_entries(8)),
    );
    let plain = verifier(KeySource::Store(store.clone()), &clock, leeway, None);
    let rt = rt();
    let mut tokens: Vec<String> = Vec::new();
    // Each token's `exp`, `nbf`, `iat`, for `Op::Edge`.
    let mut times: Vec<[Option<f64>; 3]> = Vec::new();
    let mut next_key = 1;
    // Verifies `token` as type `ty` on both verifiers, through `verify`
    // (async) or `verify_cached`; the answers must be the same.
    let compare = |token: &str, ty: u8, reloading: bool, step: usize| {
        let (a, b) = match (ty, reloading) {
            (0, false) => (
                answer(cached.verify_cached::<Value>(token)),
                answer(plain.verify_cached::<Value>(token)),
            ),
            (1, false) => (
                answer(cached.verify_cached::<Typed>(token)),
                answer(plain.verify_cached::<Typed>(token)),
            ),
            (_, false) => (
                answer(cached.verify_cached::<Strict>(token)),
                answer(plain.verify_cached::<Strict>(token)),
            ),
            (0, true) => rt.block_on(async {
                (
                    answer(cached.verify::<Value>(token).await),
                    answer(plain.verify::<Value>(token).await),
                )
            }),
            (1, true) => rt.block_on(async {
                (
                    answer(cached.verify::<Typed>(token).await),
                    answer(plain.verify::<Typed>(token).await),
                )
            }),
            (_, true) => rt.block_on(async {
                (
                    answer(cached.verify::<Strict>(token).await),
                    answer(plain.verify::<Strict>(token).await),
                )
            }),
        };
        assert_eq!(a, b, "step {step}: {token} as {ty} at {}", clock.now());
    };
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Mint {
                kind,
                exp,
                frac,
                nbf,
                iat,
            } => {
                let now = clock.now();
                let mut c = json!({"iss": ISS, "aud": AUD, "sub": format!("s{step}")});
                let exp = (now + exp) as f64 + if *frac { 0.5 } else { 0.0 };
                if !matches!(kind, Kind::NoExp) {
                    c["exp"] = json!(exp);
                }
                if let Some(nbf) = nbf {
                    c["nbf"] = json!(now + nbf);
                }
                if let Some(iat) = iat {
                    c["iat"] = json!(now + iat);
                }
                let published = store.visible();
                let signer = published.last().map_or(0, |(k, _)| *k);
                let token = match kind {
                    Kind::Valid { key } => sign(published[key % published.len()].0, &c),
                    Kind::WrongAud => {
                        c["aud"] = json!("elsewhere");
                        sign(signer, &c)
                    }
                    Kind::BadSignature => {
                        let token = sign(signer, &c);
                        c["sub"] = json!("forged");
                        with_signature_of(&token, &sign(signer, &c))
                    }
                    Kind::UnknownKid => sign(5, &c),
                    Kind::NoExp => sign(signer, &c),
                };
                tokens.push(token);
                times.push([
                    c.get("exp").and_then(Value::as_f64),
                    c.get("nbf").and_then(Value::as_f64),
                    c.get("iat").and_then(Value::as_f64),
                ]);
            }
            Op::Verify {
                pick,
                ty,
                reloading,
            } => {
                if tokens.is_empty() {
                    continue;
                }
                compare(&tokens[pick % tokens.len()], *ty, *reloading, step);
            }
            Op::Clock(by) => clock.advance(*by),
            Op::Edge { pick, claim, delta } => {
                if times.is_empty() {
                    continue;
                }
                let i = pick % times.len();
                compare(&tokens[i], 0, false, step);
                let leeway = leeway as f64;
                // exp refuses from `exp + leeway` on; nbf and iat until
                // `nbf - leeway` and `iat - leeway` (within a second).
                let edge = times[i][usize::from(*claim)].map(|t| match claim {
                    0 => (t + leeway).ceil(),
                    _ => (t - leeway).floor(),
                });
                if let Some(edge) = edge {
                    clock.set(edge as i64 + delta);
                }
                compare(&tokens[i], 0, false, step);
            }

            Op::Rotate { grace } => {
                store.rotate(next_key, *grace);
                next_key = next_key % 4 + 1;
            }
            Op::Remove { pick } => {
                let published = store.visible();
                if let Some((k, _)) = published.get(pick % published.len().max(1)) {
                    store.remove(*k);
                }
            }
            Op::Reload => rt.block_on(async {
                cached.refresh().await.unwrap();
                plain.refresh().await.unwrap();
            }),
        }
    }
    stats(&cached)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_cached_verifier_answers_what_an_uncached_one_does(
        ops in proptest::collection::vec(op(), 1..60),
        leeway in prop_oneof![Just(0u64), Just(30), Just(60)],
    ) {
        run(&ops, leeway);
    }
}

/// The property's machinery does exercise hits, expiry across a hit, and
/// a key set change between two uses of one token.
#[test]
fn the_property_sees_hits_expiry_and_key_changes() {
    let valid = |exp| Op::Mint {
        kind: Kind::Valid { key: 0 },
        exp,
        frac: false,
        nbf: Some(-10),
        iat: Some(0),
    };
    let verify = |pick, ty| Op::Verify {
        pick,
        ty,
        reloading: pick % 2 == 0,
    };
    // Leeway 30 s; t0 expires at T0 + 100, t1 at T0 + 600; both signed by k0.
    let ops = [
        valid(100),
        valid(600),
        verify(0, 0), // miss: t0 seen once
        verify(0, 1), // miss: t0 kept
        verify(0, 1), // hit
        verify(1, 2), // miss: t1 does not fit `Strict`, so it is not even seen
        verify(1, 0), // miss: t1 seen once
        verify(1, 0), // miss: t1 kept
        Op::Clock(130),
        verify(0, 0), // hit: expired (T0 + 130 = exp + leeway), and dropped
        verify(1, 0), // hit
        Op::Clock(-400),
        verify(1, 1), // hit: immature `iat` (the clock went back)
        Op::Clock(300),
        Op::Rotate { grace: 50 },
        Op::Reload,
        verify(1, 0), // miss: the key set changed; kept again at once
        verify(1, 0), // hit
        Op::Clock(450),
        verify(1, 0), // miss: k0's grace ended, unknown_key
    ];
    let s = run(&ops, 30);
    assert_eq!(
        (s.hits, s.misses, s.entries, s.expirations, s.evictions),
        (5, 7, 1, 1, 0),
        "{s:?}"
    );
}
