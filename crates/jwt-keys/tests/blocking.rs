//! `jwt_keys::blocking::Verifier` from plain threads against a real HTTP JWKS
//! server on 127.0.0.1: loading, rotation at the provider, refresh ahead of
//! expiry on its own thread, single-flight across threads, errors, and the
//! refusal inside a tokio runtime.
//!
//! The server runs on a runtime of its own (`Provider`), so that the test
//! threads themselves have no runtime, like the programs this is for.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{JwksServer, Mode};
use jwt_core::{Algorithm, Clock, Jwks, ManualClock, Signer, SigningKey, Validation};
use jwt_keys::{blocking, CacheOptions, Error, ErrorKind, KeySource};
use serde_json::{json, Value};

const T0: i64 = 1_700_000_000;

/// A key of the provider, published with its `alg`.
struct Key {
    kid: &'static str,
    pem: String,
}

impl Key {
    fn new(kid: &'static str) -> Key {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        Key {
            kid,
            pem: key.to_pkcs8_pem().unwrap().to_string(),
        }
    }

    fn signing_key(&self) -> SigningKey {
        SigningKey::from_pem(self.pem.as_bytes())
            .unwrap()
            .with_kid(self.kid)
    }

    fn jwk(&self) -> jwt_core::Jwk {
        let mut jwk = self.signing_key().to_public_jwk().unwrap();
        jwk.alg = Some("ES256".into());
        jwk
    }

    fn token(&self, now: i64) -> String {
        Signer::new(self.signing_key(), Algorithm::ES256)
            .unwrap()
            .sign(&json!({"sub": self.kid, "iat": now, "exp": now + 3600}))
            .unwrap()
    }
}

fn jwks(keys: &[&Key]) -> String {
    Jwks {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    }
    .to_json()
}

/// The identity provider: a JWKS server on its own runtime.
struct Provider {
    server: JwksServer,
    // Dropped after the server (fields drop in order).
    _runtime: tokio::runtime::Runtime,
}

impl Provider {
    fn start(mode: Mode) -> Provider {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(JwksServer::start(mode));
        Provider {
            server,
            _runtime: runtime,
        }
    }

    fn serving(keys: &[&Key]) -> Provider {
        Provider::start(Mode::Serve {
            body: jwks(keys),
            cache_control: None,
        })
    }

    fn hits(&self) -> usize {
        self.server.hits()
    }

    /// Waits (from a plain thread) until the server has answered `n` requests.
    fn wait_for_hits(&self, n: usize) {
        let start = Instant::now();
        while self.hits() < n {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waited for {n} hits, got {}",
                self.hits()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn verifier(url: &str, clock: &Arc<ManualClock>, options: CacheOptions) -> blocking::Verifier {
    blocking::Verifier::from_async(
        jwt_keys::Verifier::builder(
            KeySource::Remote(url.to_owned()),
            Validation::new([Algorithm::ES256]).clock(clock.clone()),
        )
        .cache(options)
        .clock(clock.clone())
        .build()
        .unwrap(),
    )
    .unwrap()
}

fn outcome(result: Result<jwt_core::TokenData<Value>, Error>) -> String {
    match result {
        Ok(data) => format!("ok {}", data.claims["sub"].as_str().unwrap_or("?")),
        Err(e) => e.kind().as_str().to_owned(),
    }
}

#[test]
fn the_first_use_fetches_and_later_ones_use_the_cache() {
    let a = Key::new("2024-a");
    let provider = Provider::serving(&[&a]);
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(&provider.server.url, &clock, CacheOptions::default());
    assert!(
        v.cached_kids().is_empty(),
        "nothing is fetched when building"
    );
    assert!(v.cached_jwks().keys.is_empty());
    assert_eq!(provider.hits(), 0);

    assert_eq!(outcome(v.verify(&a.token(T0))), "ok 2024-a");
    assert_eq!(provider.hits(), 1);
    for _ in 0..100 {
        assert_eq!(outcome(v.verify(&a.token(T0))), "ok 2024-a");
    }
    assert_eq!(provider.hits(), 1, "known kids cause no fetch");
    assert_eq!(v.fetch_count(), 1);
    assert_eq!(v.cached_kids(), vec!["2024-a"]);
    // The same keys as a JWKS (public members only), for a PyJWKClient.
    let jwks = v.cached_jwks();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].kid.as_deref(), Some("2024-a"));
    assert_eq!(jwks.keys[0].alg.as_deref(), Some("ES256"));
    assert!(jwks.keys[0].d.is_none());

    // The wrapped async verifier shares the cache: its synchronous path
    // decides without a load.
    let shared = v.as_async().verify_cached::<Value>(&a.token(T0)).unwrap();
    assert_eq!(shared.claims["sub"], "2024-a");
}

#[test]
fn a_rotation_at_the_provider_is_picked_up_on_the_new_kid() {
    let a = Key::new("2024-a");
    let b = Key::new("2024-b");
    let stranger = Key::new("never-published");
    let provider = Provider::serving(&[&a]);
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(&provider.server.url, &clock, CacheOptions::default());
    assert_eq!(outcome(v.verify(&a.token(T0))), "ok 2024-a");

    // The provider publishes b, signs with it, and later drops a.
    provider.server.serve(jwks(&[&b]));
    clock.advance(45); // past the 30 s cooldown of the first fetch
    let now = clock.now();
    assert_eq!(outcome(v.verify(&b.token(now))), "ok 2024-b");
    assert_eq!(provider.hits(), 2, "one fetch for the new kid");
    assert_eq!(v.cached_kids(), vec!["2024-b"]);
    let kids: Vec<_> = v.cached_jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, vec![Some("2024-b".to_owned())]);
    // a is gone from the new set: its tokens are unknown now, and asking
    // again within the cooldown fetches nothing.
    assert_eq!(outcome(v.verify(&a.token(now))), "unknown_key");
    assert_eq!(outcome(v.verify(&stranger.token(now))), "unknown_key");
    assert_eq!(provider.hits(), 2, "the cooldown holds for unknown kids");
    assert_eq!(v.fetch_count(), 2);
}

#[test]
fn a_key_set_nearing_expiry_is_refreshed_on_the_background_thread() {
    let a = Key::new("2024-a");
    let b = Key::new("2024-b");
    let provider = Provider::start(Mode::Serve {
        body: jwks(&[&a]),
        cache_control: Some("max-age=300".into()),
    });
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(&provider.server.url, &clock, CacheOptions::default());
    assert_eq!(outcome(v.verify(&a.token(T0))), "ok 2024-a");
    assert_eq!(provider.hits(), 1);

    // The provider rotates a out; within the TTL nothing is fetched.
    provider.server.serve(jwks(&[&b]));
    clock.advance(200);
    assert_eq!(outcome(v.verify(&a.token(clock.now()))), "ok 2024-a");
    assert_eq!(provider.hits(), 1);

    // 10 s before expiry (refresh_ahead is 30 s): the call answers from the
    // cache at once, and the refresh runs on the verifier's own thread,
    // which nobody waits for.
    clock.advance(90);
    let now = clock.now();
    assert_eq!(outcome(v.verify(&a.token(now))), "ok 2024-a");
    provider.wait_for_hits(2);
    let start = Instant::now();
    while v.fetch_count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "no refresh");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(v.cached_kids(), vec!["2024-b"]);
    assert_eq!(outcome(v.verify(&a.token(now))), "unknown_key");
    assert_eq!(outcome(v.verify(&b.token(now))), "ok 2024-b");
}

/// Eight threads verify a token with a new kid while the provider is slow:
/// `(outcomes, fetches)`.
fn eight_threads_on_a_new_kid() -> (Vec<String>, usize, String, blocking::Verifier) {
    let a = Key::new("2024-a");
    let b = Key::new("2024-b");
    let provider = Provider::serving(&[&a]);
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(&provider.server.url, &clock, CacheOptions::default());
    assert_eq!(outcome(v.verify(&a.token(T0))), "ok 2024-a");

    // A slow provider, so that the threads ask while the fetch is in flight.
    provider.server.set(Mode::Slow {
        body: jwks(&[&a, &b]),
        delay: Duration::from_millis(300),
    });
    clock.advance(45);
    let token = b.token(clock.now());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            std::thread::spawn(move || outcome(v.verify(&token)))
        })
        .collect();
    let outcomes = threads.into_iter().map(|t| t.join().unwrap()).collect();
    (outcomes, provider.hits(), token, v)
}

#[test]
fn threads_asking_for_the_same_new_kid_cause_one_fetch() {
    let (outcomes, hits, token, v) = eight_threads_on_a_new_kid();
    assert_eq!(hits, 2, "eight threads, one fetch: {outcomes:?}");
    assert!(outcomes.iter().any(|o| o == "ok 2024-b"), "{outcomes:?}");
    // See the ignored test below for the threads that came second.
    assert!(
        outcomes
            .iter()
            .all(|o| o == "ok 2024-b" || o == "unknown_key"),
        "{outcomes:?}"
    );
    assert_eq!(outcome(v.verify(&token)), "ok 2024-b");
    assert_eq!(v.fetch_count(), 2);
}

/// A token whose kid is being fetched right now by another caller (the
/// cooldown started when that fetch did) waits for that fetch instead of
/// getting `unknown_key` at once: during a provider's rotation, concurrent
/// requests with the new kid all verify, with one fetch.
#[test]
fn threads_asking_for_a_kid_being_fetched_wait_for_that_fetch() {
    let (outcomes, hits, _, _) = eight_threads_on_a_new_kid();
    assert_eq!(hits, 2);
    assert!(outcomes.iter().all(|o| o == "ok 2024-b"), "{outcomes:?}");
}

#[test]
fn failures_keep_their_kinds() {
    // The provider is down on first use: a fetch error (setup, retryable),
    // not a token rejection.
    let down = Provider::start(Mode::Status(503));
    let clock = Arc::new(ManualClock::new(T0));
    let a = Key::new("2024-a");
    let v = verifier(&down.server.url, &clock, CacheOptions::default());
    let err = v.verify::<Value>(&a.token(T0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fetch, "{err}");
    assert!(err.to_string().contains("HTTP 503"), "{err}");
    assert!(err.is_retryable() && !err.is_rejection(), "{err}");
    let err = v.refresh().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fetch, "{err}");

    // Rejections are jwt-core's, as from the async verifier.
    let provider = Provider::serving(&[&a]);
    let v = verifier(&provider.server.url, &clock, CacheOptions::default());
    v.refresh().unwrap();
    assert_eq!(provider.hits(), 1, "refresh loads the keys ahead of use");
    let expired = a.token(T0 - 7200);
    let err = v.verify::<Value>(&expired).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Core(jwt_core::ErrorKind::Expired),
        "{err}"
    );
    assert!(err.is_rejection());
    // One character in the middle of the signature changed (the last one
    // would make the base64url non-canonical: `malformed`).
    let mut tampered = a.token(T0).into_bytes();
    let at = tampered.len() - 20;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        outcome(v.verify(&tampered)),
        "invalid_signature",
        "a changed signature is refused"
    );
    assert_eq!(outcome(v.verify("not a token")), "malformed");
    assert_eq!(provider.hits(), 1, "rejections of known kids fetch nothing");
}

#[test]
fn inside_a_tokio_runtime_it_refuses_with_a_clear_error_and_never_panics() {
    let a = Key::new("2024-a");
    let provider = Provider::serving(&[&a]);
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(&provider.server.url, &clock, CacheOptions::default());
    let token = a.token(T0);

    for flavor in ["current_thread", "multi_thread"] {
        let runtime = match flavor {
            "current_thread" => tokio::runtime::Builder::new_current_thread(),
            _ => tokio::runtime::Builder::new_multi_thread(),
        }
        .enable_all()
        .build()
        .unwrap();
        let (v, token, provider) = (v.clone(), token.clone(), &provider);
        let before = provider.hits();
        runtime.block_on(async move {
            let err = v.verify::<Value>(&token).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{flavor}: {err}");
            assert!(
                matches!(
                    &err,
                    Error::InvalidConfig {
                        setting: "runtime",
                        ..
                    }
                ),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(
                message.contains("inside a tokio runtime")
                    && message.contains("verifier.as_async().verify::<T>(token).await"),
                "{message}"
            );
            let err = v.refresh().unwrap_err();
            assert!(
                err.to_string()
                    .contains("verifier.as_async().refresh().await"),
                "{err}"
            );
            // Refused every time, not only when a fetch is needed (on the
            // second round the keys are loaded): nothing was fetched, and
            // the async verifier it names works here.
            assert_eq!(provider.hits(), before);
            let data = v.as_async().verify::<Value>(&token).await.unwrap();
            assert_eq!(data.claims["sub"], "2024-a");
        });
    }
    assert_eq!(provider.hits(), 1);
    // The outer verifier shares the cache the async calls loaded.
    assert_eq!(outcome(v.verify(&token)), "ok 2024-a");
    assert_eq!(provider.hits(), 1);
}

#[test]
fn the_last_clone_dropped_in_a_task_shuts_down_without_panicking() {
    let a = Key::new("2024-a");
    let provider = Provider::serving(&[&a]);
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(&provider.server.url, &clock, CacheOptions::default());
    assert_eq!(outcome(v.verify(&a.token(T0))), "ok 2024-a");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // `drop` of a tokio runtime blocks, which panics in an async context;
    // the verifier's runtime must not.
    runtime.block_on(async move { drop(v) });
}
