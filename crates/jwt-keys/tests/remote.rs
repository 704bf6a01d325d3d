//! The remote JWKS verifier against a real HTTP server on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{JwksServer, Mode};
use jwt_core::{Algorithm, Header, Jwks, ManualClock, Signer, SigningKey, Validation};
use jwt_keys::{CacheOptions, Error, FetchError, KeySource, Verifier};
use serde_json::{json, Value};

const T0: i64 = 1_700_000_000;

struct Key {
    key: SigningKey,
    alg: Algorithm,
}

impl Key {
    fn new(alg: Algorithm, kid: &str) -> Key {
        let key = SigningKey::generate(alg).unwrap().with_kid(kid);
        Key { key, alg }
    }

    fn jwk(&self) -> jwt_core::Jwk {
        let mut jwk = self.key.to_public_jwk().unwrap();
        jwk.alg = Some(self.alg.as_str().into());
        jwk
    }

    fn token(&self, now: i64) -> String {
        self.token_with(self.alg, now)
    }

    fn token_with(&self, alg: Algorithm, now: i64) -> String {
        let signer = Signer::new(
            SigningKey::from_pem(self.key.to_pkcs8_pem().unwrap().as_bytes())
                .unwrap()
                .with_kid(self.key.kid().unwrap()),
            alg,
        )
        .unwrap();
        signer
            .sign(&json!({"sub": "alice", "iat": now, "exp": now + 3600}))
            .unwrap()
    }
}

fn jwks(keys: &[&Key]) -> String {
    Jwks {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    }
    .to_json()
}

fn verifier(
    url: &str,
    clock: &Arc<ManualClock>,
    algs: &[Algorithm],
    options: CacheOptions,
) -> Verifier {
    Verifier::builder(
        KeySource::Remote(url.to_owned()),
        Validation::new(algs.iter().copied()).clock(clock.clone()),
    )
    .cache(options)
    .clock(clock.clone())
    .build()
    .unwrap()
}

fn kind(result: Result<jwt_core::TokenData<Value>, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.kind().as_str(),
    }
}

async fn wait_for_hits(server: &JwksServer, n: usize) {
    let start = Instant::now();
    while server.hits() < n {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "waited for {n} hits, got {}",
            server.hits()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_unknown_kids_cause_one_fetch_per_cooldown() {
    let a = Key::new(Algorithm::ES256, "a");
    let stranger = Key::new(Algorithm::ES256, "not-published");
    // A slow provider, so that the misses pile up while the fetch is in flight.
    let server = JwksServer::start(Mode::Slow {
        body: jwks(&[&a]),
        delay: Duration::from_millis(200),
    })
    .await;
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(
        &server.url,
        &clock,
        &[Algorithm::ES256],
        CacheOptions::default(),
    );
    assert_eq!(kind(v.verify(&a.token(T0)).await), "ok");
    assert_eq!(server.hits(), 1);

    let bad = stranger.token(T0);
    let burst = |v: Verifier, bad: String| async move {
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let (v, bad) = (v.clone(), bad.clone());
                tokio::spawn(async move { v.verify::<Value>(&bad).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(kind(t.await.unwrap()), "unknown_key");
        }
    };
    // Within the cooldown of the first fetch: no fetch at all.
    burst(v.clone(), bad.clone()).await;
    assert_eq!(server.hits(), 1);
    // Past the cooldown: one fetch for the whole burst.
    clock.advance(31);
    burst(v.clone(), bad.clone()).await;
    assert_eq!(server.hits(), 2);
    burst(v.clone(), bad.clone()).await;
    assert_eq!(server.hits(), 2);
    clock.advance(31);
    burst(v.clone(), bad.clone()).await;
    assert_eq!(server.hits(), 3);
    // Known kids never waited for any of it.
    assert_eq!(kind(v.verify(&a.token(clock_now(&clock))).await), "ok");
}

fn clock_now(clock: &ManualClock) -> i64 {
    jwt_core::Clock::now(clock)
}

#[tokio::test]
async fn a_rotation_at_the_provider_is_picked_up_on_kid_miss() {
    let a = Key::new(Algorithm::ES256, "2024-a");
    let b = Key::new(Algorithm::ES256, "2024-b");
    let server = JwksServer::serving(jwks(&[&a])).await;
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(
        &server.url,
        &clock,
        &[Algorithm::ES256],
        CacheOptions::default(),
    );
    assert_eq!(kind(v.verify(&a.token(T0)).await), "ok");
    assert_eq!(v.cached_kids(), vec!["2024-a"]);

    // The provider publishes b and starts signing with it.
    server.serve(jwks(&[&a, &b]));
    clock.advance(45);
    let now = clock_now(&clock);
    assert_eq!(kind(v.verify(&b.token(now)).await), "ok");
    assert_eq!(server.hits(), 2);
    assert_eq!(v.cached_kids(), vec!["2024-a", "2024-b"]);
    assert_eq!(kind(v.verify(&a.token(now)).await), "ok");
    assert_eq!(server.hits(), 2, "known kids cause no fetch");
}

#[tokio::test]
async fn the_cached_set_keeps_serving_while_the_provider_is_down() {
    let a = Key::new(Algorithm::EdDSA, "a");
    let server = JwksServer::serving(jwks(&[&a])).await;
    let clock = Arc::new(ManualClock::new(T0));
    let options = CacheOptions::default().with_max_stale(Duration::from_secs(7200));
    let v = verifier(&server.url, &clock, &[Algorithm::EdDSA], options);
    assert_eq!(kind(v.verify(&a.token(T0)).await), "ok");

    // Every way of failing, each past the TTL and the cooldown: the last good set serves.
    let mut hits = 1;
    for failure in [
        Mode::Status(500),
        Mode::Status(404),
        Mode::Close,
        Mode::Garbage,
        Mode::Html,
        Mode::Serve {
            body: "{\"keys\":[]}".into(),
            cache_control: None,
        },
        Mode::Huge(2 << 20),
    ] {
        server.set(failure.clone());
        clock.advance(601);
        let now = clock_now(&clock);
        assert_eq!(kind(v.verify(&a.token(now)).await), "ok", "{failure:?}");
        hits += 1;
        wait_for_hits(&server, hits).await; // the background refresh happened, and failed
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(kind(v.verify(&a.token(now)).await), "ok", "{failure:?}");
        assert_eq!(v.cached_kids(), vec!["a"]);
    }
    assert_eq!(v.fetch_count(), 1);

    // Past max_stale the set is no longer used: the verifier says why.
    server.set(Mode::Status(503));
    clock.advance(3600);
    let now = clock_now(&clock);
    match v.verify::<Value>(&a.token(now)).await {
        Err(
            e @ Error::Fetch {
                source: FetchError::Status { status: 503 },
                ..
            },
        ) => assert!(e.is_retryable()),
        other => panic!("{other:?}"),
    }
    // And does not hammer the provider: within the cooldown it answers at once.
    match v.verify::<Value>(&a.token(now)).await {
        Err(Error::StaleKeys { .. }) => {}
        other => panic!("{other:?}"),
    }
    // The provider recovers.
    server.serve(jwks(&[&a]));
    clock.advance(31);
    let now = clock_now(&clock);
    assert_eq!(kind(v.verify(&a.token(now)).await), "ok");
    assert_eq!(v.fetch_count(), 2);
}

#[tokio::test]
async fn a_hanging_provider_times_out_and_never_delays_known_kids() {
    let a = Key::new(Algorithm::ES256, "a");
    let server = JwksServer::serving(jwks(&[&a])).await;
    let clock = Arc::new(ManualClock::new(T0));
    let options = CacheOptions::default().with_fetch_timeout(Duration::from_secs(2));
    let v = verifier(&server.url, &clock, &[Algorithm::ES256], options);
    assert_eq!(kind(v.verify(&a.token(T0)).await), "ok");

    server.set(Mode::Hang(Duration::from_secs(30)));
    clock.advance(601);
    let now = clock_now(&clock);
    let start = Instant::now();
    assert_eq!(kind(v.verify(&a.token(now)).await), "ok");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "served stale at once: {:?}",
        start.elapsed()
    );
    wait_for_hits(&server, 2).await;

    // An unknown kid waits for one fetch, bounded by the timeout.
    clock.advance(31);
    let stranger = Key::new(Algorithm::ES256, "x");
    let start = Instant::now();
    assert_eq!(kind(v.verify(&stranger.token(now)).await), "unknown_key");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[tokio::test]
async fn cache_control_max_age_sets_the_ttl_within_bounds() {
    let a = Key::new(Algorithm::ES256, "a");
    let server = JwksServer::start(Mode::Serve {
        body: jwks(&[&a]),
        cache_control: Some("public, max-age=120, must-revalidate".into()),
    })
    .await;
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(
        &server.url,
        &clock,
        &[Algorithm::ES256],
        CacheOptions::default(),
    );
    assert_eq!(kind(v.verify(&a.token(T0)).await), "ok");
    clock.set(T0 + 85); // fresh: 120 - 30 (refresh ahead) not reached
    assert_eq!(kind(v.verify(&a.token(T0)).await), "ok");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.hits(), 1);
    clock.set(T0 + 95); // inside the refresh-ahead window: a background refresh
    assert_eq!(kind(v.verify(&a.token(T0)).await), "ok");
    wait_for_hits(&server, 2).await;

    // A tiny max-age is raised to min_ttl (60 s).
    server.set(Mode::Serve {
        body: jwks(&[&a]),
        cache_control: Some("max-age=5".into()),
    });
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(
        &server.url,
        &clock,
        &[Algorithm::ES256],
        CacheOptions::default(),
    );
    assert_eq!(kind(v.verify(&a.token(T0)).await), "ok");
    clock.set(T0 + 20);
    assert_eq!(kind(v.verify(&a.token(T0)).await), "ok");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        server.hits(),
        3,
        "no refresh before min_ttl - refresh_ahead"
    );
}

#[tokio::test]
async fn jwk_alg_use_and_key_ops_are_checked_against_the_token() {
    let rsa = Key::new(Algorithm::RS256, "rsa-no-alg");
    let mut no_alg = rsa.jwk();
    no_alg.alg = None;
    let bound = Key::new(Algorithm::RS256, "rsa-bound");
    let enc = Key::new(Algorithm::ES256, "enc");
    let mut enc_jwk = enc.jwk();
    enc_jwk.use_ = Some("enc".into());
    let sign_only = Key::new(Algorithm::ES256, "sign-only");
    let mut sign_only_jwk = sign_only.jwk();
    sign_only_jwk.key_ops = Some(vec!["sign".into()]);
    let body = Jwks {
        keys: vec![no_alg, bound.jwk(), enc_jwk, sign_only_jwk],
    }
    .to_json();
    let server = JwksServer::serving(body).await;
    let clock = Arc::new(ManualClock::new(T0));

    // Without `alg`, the key serves every allowed algorithm of its type.
    let v = verifier(
        &server.url,
        &clock,
        &[Algorithm::RS256, Algorithm::PS256, Algorithm::ES256],
        CacheOptions::default(),
    );
    assert_eq!(
        kind(v.verify(&rsa.token_with(Algorithm::RS256, T0)).await),
        "ok"
    );
    assert_eq!(
        kind(v.verify(&rsa.token_with(Algorithm::PS256, T0)).await),
        "ok"
    );
    // With `alg`, only that one.
    assert_eq!(
        kind(v.verify(&bound.token_with(Algorithm::PS256, T0)).await),
        "invalid_algorithm"
    );
    assert_eq!(kind(v.verify(&bound.token(T0)).await), "ok");
    // `use: enc` and key_ops without `verify` are not verification keys.
    assert_eq!(kind(v.verify(&enc.token(T0)).await), "unknown_key");
    assert_eq!(kind(v.verify(&sign_only.token(T0)).await), "unknown_key");
    // Algorithms the caller does not allow are refused whatever the key.
    let es_only = verifier(
        &server.url,
        &clock,
        &[Algorithm::ES256],
        CacheOptions::default(),
    );
    assert_eq!(
        kind(es_only.verify(&rsa.token(T0)).await),
        "invalid_algorithm"
    );
}

#[tokio::test]
async fn jku_in_a_token_is_never_followed() {
    let a = Key::new(Algorithm::ES256, "a");
    let attacker = Key::new(Algorithm::ES256, "evil");
    let provider = JwksServer::serving(jwks(&[&a])).await;
    let evil = JwksServer::serving(jwks(&[&attacker])).await;
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(
        &provider.url,
        &clock,
        &[Algorithm::ES256],
        CacheOptions::default(),
    );
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("evil".into());
    header.extra.insert("jku".into(), json!(evil.url));
    let input =
        jwt_core::signing_input(&header, &json!({"sub": "mallory", "exp": T0 + 60})).unwrap();
    let sig = attacker
        .key
        .sign_raw(Algorithm::ES256, input.as_bytes())
        .unwrap();
    let token = jwt_core::assemble(input, &sig);
    assert_eq!(kind(v.verify(&token).await), "unknown_key");
    assert_eq!(evil.hits(), 0);
}

#[tokio::test]
async fn a_failing_first_fetch_is_a_typed_error() {
    let a = Key::new(Algorithm::ES256, "a");
    let server = JwksServer::start(Mode::Status(502)).await;
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(
        &server.url,
        &clock,
        &[Algorithm::ES256],
        CacheOptions::default(),
    );
    let err = v.verify::<Value>(&a.token(T0)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Fetch { url, source: FetchError::Status { status: 502 } } if *url == server.url),
        "{err:?}"
    );
    assert!(err.is_retryable());
    server.set(Mode::Serve {
        body: "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\"}]}".into(),
        cache_control: None,
    });
    let err = v.refresh().await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Fetch {
                source: FetchError::NoUsableKeys { skipped: 1 },
                ..
            }
        ),
        "{err:?}"
    );
    server.serve(jwks(&[&a]));
    v.refresh().await.unwrap();
    assert_eq!(kind(v.verify(&a.token(T0)).await), "ok");
}

#[tokio::test]
async fn urls_and_options_are_checked_when_building() {
    let build = |url: &str, options: CacheOptions| {
        Verifier::builder(
            KeySource::Remote(url.into()),
            Validation::new([Algorithm::ES256]),
        )
        .cache(options)
        .build()
        .map(|_| ())
    };
    assert_eq!(
        build("http://idp.example.com/jwks", CacheOptions::default())
            .unwrap_err()
            .kind(),
        "invalid_uri"
    );
    assert_eq!(
        build("ftp://idp.example.com/jwks", CacheOptions::default())
            .unwrap_err()
            .kind(),
        "invalid_uri"
    );
    build(
        "https://idp.example.com/.well-known/jwks.json",
        CacheOptions::default(),
    )
    .unwrap();
    build("http://localhost:8080/jwks", CacheOptions::default()).unwrap();
    build("http://[::1]:8080/jwks", CacheOptions::default()).unwrap();
    let contradictory = CacheOptions::default()
        .with_min_ttl(Duration::from_secs(600))
        .with_max_ttl(Duration::from_secs(60));
    assert_eq!(
        build("https://idp.example.com/jwks", contradictory)
            .unwrap_err()
            .kind(),
        "invalid_config"
    );
    let no_algs = Verifier::new(
        KeySource::Remote("https://idp.example.com/jwks".into()),
        Validation::new([]),
    );
    assert_eq!(no_algs.unwrap_err().kind(), "config");
}

/// Issue 13 item 3: a JWKS URL nobody answers on says why (the cause from
/// the connection, not only "error sending request") and what to check.
#[tokio::test]
async fn an_unreachable_jwks_url_names_the_cause_and_what_to_check() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let verifier = Verifier::builder(
        KeySource::Remote(format!("http://127.0.0.1:{port}/jwks.json")),
        Validation::new([Algorithm::ES256]),
    )
    .build()
    .unwrap();
    let err = verifier.refresh().await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Fetch {
                source: FetchError::Transport(_),
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(message.contains("check that the server is up"), "{message}");
    assert!(err.is_retryable());
}

/// A password in a JWKS URL (`https://user:password@host/…`), or an API key
/// in its query (`?api_key=…`), never shows:
/// not in the verifier's `Debug`, not in a fetch error, not in a
/// stale-keys error (PY-C's review of the Python package found it in both).
#[tokio::test]
async fn a_password_in_the_jwks_url_never_shows() {
    let a = Key::new(Algorithm::ES256, "a");
    let server = JwksServer::start(Mode::Status(502)).await;
    let url = format!(
        "{}?api_key=hunter2-key&v=1",
        server
            .url
            .replacen("http://", "http://reader:hunter2-secret@", 1)
    );
    let clock = Arc::new(ManualClock::new(T0));
    let v = verifier(&url, &clock, &[Algorithm::ES256], CacheOptions::default());
    let shown = format!("{v:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("api_key=***"), "{shown}");
    let err = v.verify::<Value>(&a.token(T0)).await.unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    server.serve(jwks(&[&a]));
    v.refresh().await.unwrap();
    server.set(Mode::Status(502));
    clock.set(T0 + 30 * 86_400);
    let err = v.refresh().await.unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    if let Err(err) = v.verify::<Value>(&a.token(T0 + 30 * 86_400)).await {
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
