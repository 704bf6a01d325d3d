//! The multi-issuer verifier against providers played by a real HTTP server
//! on 127.0.0.1: keys bound to their issuer, routing refusals, per-issuer
//! settings, a thousand concurrent unknown kids, the builder's checks, an
//! issuer added with its own verifier, and the blocking facade.

mod issuer_server;

use std::sync::Arc;
use std::time::Duration;

use issuer_server::{jwks, Answer, IssuerServer, Key};
use jwt_core::{Algorithm, Jwks, ManualClock, Validation};
use jwt_keys::{
    blocking, CacheOptions, Error, ErrorKind, Issuer, KeySource, MultiIssuerVerifier, Verifier,
};
use serde_json::{json, Value};

fn kind(result: &Result<jwt_core::TokenData<Value>, Error>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => e.kind().as_str().into(),
    }
}

fn build(clock: &Arc<ManualClock>, issuers: Vec<Issuer>) -> MultiIssuerVerifier {
    let mut builder = MultiIssuerVerifier::builder().clock(clock.clone());
    for issuer in issuers {
        builder = builder.issuer(issuer);
    }
    builder.build().unwrap()
}

/// A token with this header and payload, and a signature of zeros.
fn forged(header: Value, payload: Value) -> String {
    format!(
        "{}.{}.{}",
        jwt_core::b64::encode(header.to_string().as_bytes()),
        jwt_core::b64::encode(payload.to_string().as_bytes()),
        jwt_core::b64::encode(&[0u8; 64])
    )
}

/// Issue 14 item 2: a token naming issuer A with the kid of a key of issuer
/// B is `unknown_key` (B's key is never tried); a token naming an issuer
/// that is not configured, or none, is `invalid_issuer`; every issuer's own
/// tokens verify.
#[tokio::test]
async fn keys_are_bound_to_the_issuer_that_published_them() {
    let server = IssuerServer::start().await;
    let ka = Key::new(Algorithm::ES256, "a-1");
    let kb = Key::new(Algorithm::ES256, "b-1");
    // Both issuers publish a key named "shared"; they are different keys.
    let shared_a = Key::new(Algorithm::ES256, "shared");
    let shared_b = Key::new(Algorithm::ES256, "shared");
    let a = server.provider("/a", &[&ka, &shared_a]);
    let b = server.provider("/b", &[&kb, &shared_b]);
    let clock = Arc::new(ManualClock::starting_now());
    let v = build(&clock, vec![Issuer::discover(&a), Issuer::discover(&b)]);

    let data = v
        .verify::<Value>(&ka.sign(json!({"iss": a, "sub": "x"})))
        .await
        .unwrap();
    assert_eq!(data.claims["iss"], a.as_str());
    assert_eq!(data.header.kid.as_deref(), Some("a-1"));
    assert_eq!(
        kind(&v.verify::<Value>(&kb.sign(json!({"iss": b}))).await),
        "ok"
    );
    assert_eq!(
        kind(&v.verify::<Value>(&shared_b.sign(json!({"iss": b}))).await),
        "ok"
    );
    assert_eq!(server.hits("/a/jwks"), 1);

    // B's key, a token naming A: A has no such kid. Its signature is valid
    // under B's loaded key, which is never tried.
    let crossed = kb.sign(json!({"iss": a}));
    let err = v.verify::<Value>(&crossed).await.unwrap_err();
    assert_eq!(err.kind().as_str(), "unknown_key", "{err}");
    assert!(err.to_string().contains("\"b-1\""), "{err}");
    assert!(v.verify_cached::<Value>(&crossed).is_err());
    // Within A's cooldown: no fetch for it.
    assert_eq!(server.hits("/a/jwks"), 1);
    // A kid both publish: the token's issuer's key is used, and B's
    // signature does not verify under A's key.
    let err = v
        .verify::<Value>(&shared_b.sign(json!({"iss": a})))
        .await
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_signature", "{err}");

    // Routing refusals, each with its stable kind.
    let cases = [
        (
            kb.sign(json!({"iss": "https://unknown.example/"})),
            "invalid_issuer",
            "\"https://unknown.example/\" is not an accepted issuer",
        ),
        (
            kb.sign(json!({"sub": "no-iss"})),
            "invalid_issuer",
            "(no `iss` claim)",
        ),
        (
            forged(json!({"alg": "ES256", "kid": "b-1"}), json!({"iss": 42})),
            "invalid_issuer",
            "(a number)",
        ),
        (
            forged(
                json!({"alg": "ES256", "kid": "b-1"}),
                json!({"iss": [b.clone()]}),
            ),
            "invalid_issuer",
            "(an array)",
        ),
        // An issuer differing only by a trailing slash is another issuer.
        (
            kb.sign(json!({"iss": format!("{b}/")})),
            "invalid_issuer",
            "is not an accepted issuer",
        ),
        ("not a token".to_owned(), "malformed", "no `.` separators"),
        (
            forged(json!({"alg": "none"}), json!({"iss": a}))
                .rsplit_once('.')
                .unwrap()
                .0
                .to_owned()
                + ".",
            "invalid_algorithm",
            "none",
        ),
        (
            forged(
                json!({"alg": "ES256", "kid": "a-1"}),
                json!({"iss": a, "iss2": 1}),
            ),
            "invalid_signature",
            "invalid signature",
        ),
    ];
    for (token, expected, fragment) in cases {
        let err = v.verify::<Value>(&token).await.unwrap_err();
        assert_eq!(err.kind().as_str(), expected, "{token}: {err}");
        assert!(err.to_string().contains(fragment), "{token}: {err}");
        assert!(err.is_rejection(), "{err}");
        let cached = v.verify_cached::<Value>(&token).unwrap_err();
        assert_eq!(cached.kind().as_str(), expected, "{token}: {cached}");
    }
    // The accepted issuers are named in an invalid_issuer refusal.
    let err = v
        .verify::<Value>(&kb.sign(json!({"iss": "x"})))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("[{a:?}, {b:?}]")),
        "{err}"
    );
}

/// Issue 14 "done means": under 1,000 concurrent verifications with an
/// unknown kid, each issuer's jwks_uri is fetched at most once per
/// cooldown (the hits are counted at the server), and its metadata not
/// again before its TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_unknown_kids_fetch_each_jwks_once_per_cooldown() {
    let server = IssuerServer::start().await;
    let names = ["/one", "/two", "/three"];
    let keys: Vec<Key> = names
        .iter()
        .map(|n| Key::new(Algorithm::ES256, &format!("{}-k", &n[1..])))
        .collect();
    let mut issuers = Vec::new();
    for (name, key) in names.iter().zip(&keys) {
        let issuer = server.provider(name, &[key]);
        // A slow provider, so that the misses pile up while a fetch is in flight.
        server.set(
            &format!("{name}/jwks"),
            Answer::Slow {
                body: jwks(&[key]),
                delay: Duration::from_millis(200),
            },
        );
        issuers.push(issuer);
    }
    let clock = Arc::new(ManualClock::starting_now());
    let v = build(&clock, issuers.iter().map(Issuer::discover).collect());
    for (issuer, key) in issuers.iter().zip(&keys) {
        let now = jwt_core::Clock::now(&*clock);
        let token = key.sign(json!({"iss": issuer, "exp": now + 3600}));
        assert_eq!(kind(&v.verify::<Value>(&token).await), "ok");
    }
    let strangers: Vec<String> = issuers
        .iter()
        .enumerate()
        .map(|(i, issuer)| {
            let now = jwt_core::Clock::now(&*clock);
            Key::new(Algorithm::ES256, &format!("unpublished-{i}"))
                .sign(json!({"iss": issuer, "exp": now + 3600}))
        })
        .collect();
    let burst = |v: MultiIssuerVerifier, tokens: Vec<String>| async move {
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let (v, token) = (v.clone(), tokens[i % tokens.len()].clone());
                tokio::spawn(async move { v.verify::<Value>(&token).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(kind(&t.await.unwrap()), "unknown_key");
        }
    };
    let jwks_hits = |server: &IssuerServer| -> Vec<usize> {
        names
            .iter()
            .map(|n| server.hits(&format!("{n}/jwks")))
            .collect()
    };
    let metadata_hits = |server: &IssuerServer| -> Vec<usize> {
        names
            .iter()
            .map(|n| server.hits(&format!("{n}/.well-known/openid-configuration")))
            .collect()
    };
    assert_eq!(jwks_hits(&server), [1, 1, 1]);
    // Within the cooldown of the first fetches: no fetch at all.
    burst(v.clone(), strangers.clone()).await;
    assert_eq!(jwks_hits(&server), [1, 1, 1]);
    // Past the cooldown: one fetch per issuer for the whole burst.
    clock.advance(31);
    burst(v.clone(), strangers.clone()).await;
    assert_eq!(jwks_hits(&server), [2, 2, 2]);
    burst(v.clone(), strangers.clone()).await;
    assert_eq!(jwks_hits(&server), [2, 2, 2]);
    // A burst at one issuer refreshes that issuer only.
    clock.advance(31);
    burst(v.clone(), vec![strangers[1].clone()]).await;
    assert_eq!(jwks_hits(&server), [2, 3, 2]);
    assert_eq!(metadata_hits(&server), [1, 1, 1]);
}

/// Audiences, `typ` and leeway are per issuer.
#[tokio::test]
async fn each_issuer_has_its_own_settings() {
    let server = IssuerServer::start().await;
    let ka = Key::new(Algorithm::RS256, "a");
    let kb = Key::new(Algorithm::EdDSA, "b");
    let a = server.provider("/a", &[&ka]);
    let b = server.provider("/b", &[&kb]);
    let clock = Arc::new(ManualClock::starting_now());
    let now = jwt_core::Clock::now(&*clock);
    let v = build(
        &clock,
        vec![
            Issuer::discover(&a).audience("api-a").typ("at+jwt"),
            Issuer::discover(&b)
                .audience("api-b")
                .audience("api-b2")
                .leeway(Duration::from_secs(60))
                .require("sub"),
        ],
    );
    let typed = |claims: Value| {
        let signer = jwt_core::Signer::new(
            jwt_core::SigningKey::from_pem(ka.key.to_pkcs8_pem().unwrap().as_bytes())
                .unwrap()
                .with_kid("a"),
            Algorithm::RS256,
        )
        .unwrap()
        .with_typ(Some("at+jwt"))
        .unwrap();
        signer.sign(&claims).unwrap()
    };
    let cases = [
        (
            typed(json!({"iss": a, "aud": "api-a", "exp": now + 60})),
            "ok",
        ),
        (
            typed(json!({"iss": a, "aud": "api-b", "exp": now + 60})),
            "invalid_audience",
        ),
        (ka.sign(json!({"iss": a, "aud": "api-a"})), "invalid_type"),
        (
            kb.sign(json!({"iss": b, "aud": "api-b2", "sub": "s"})),
            "ok",
        ),
        (
            kb.sign(json!({"iss": b, "aud": "api-a", "sub": "s"})),
            "invalid_audience",
        ),
        (kb.sign(json!({"iss": b, "aud": "api-b"})), "missing_claim"),
        (
            kb.sign(json!({"iss": b, "aud": "api-b", "sub": "s", "exp": now - 30})),
            "ok",
        ),
        (
            kb.sign(json!({"iss": b, "aud": "api-b", "sub": "s", "exp": now - 90})),
            "expired",
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(kind(&v.verify::<Value>(&token).await), expected, "{token}");
    }
}

/// Before the first load, `verify_cached` says so (`stale_keys`) and
/// `verify` loads; a kid not loaded is `unknown_key` with the kid, which
/// `verify` looks up again; tokens over the size limit are refused
/// before anything is read.
#[tokio::test]
async fn verify_cached_answers_what_it_can_decide() {
    let server = IssuerServer::start().await;
    let k1 = Key::new(Algorithm::ES384, "k1");
    let k2 = Key::new(Algorithm::ES384, "k2");
    let issuer = server.provider("/c", &[&k1]);
    let clock = Arc::new(ManualClock::starting_now());
    let v = MultiIssuerVerifier::builder()
        .issuer(Issuer::discover(&issuer))
        .clock(clock.clone())
        .max_token_size(4096)
        .build()
        .unwrap();
    let t1 = k1.sign(json!({"iss": issuer}));
    assert_eq!(kind(&v.verify_cached::<Value>(&t1)), "stale_keys");
    assert_eq!(server.hits("/c/jwks"), 0, "verify_cached does no I/O");
    v.refresh().await.unwrap();
    assert_eq!(kind(&v.verify_cached::<Value>(&t1)), "ok");
    assert_eq!(v.verifier(&issuer).unwrap().cached_kids(), ["k1"]);

    server.set("/c/jwks", Answer::json(jwks(&[&k1, &k2])));
    let t2 = k2.sign(json!({"iss": issuer}));
    match v.verify_cached::<Value>(&t2) {
        Err(Error::Core(jwt_core::Error::UnknownKey { kid: Some(kid) })) => assert_eq!(kid, "k2"),
        other => panic!("{other:?}"),
    }
    // The explicit refresh does not start the cooldown; the miss fetches.
    assert_eq!(kind(&v.verify::<Value>(&t2).await), "ok");
    assert_eq!(server.hits("/c/jwks"), 2);

    let big = k1.sign(json!({"iss": issuer, "pad": "x".repeat(5000)}));
    assert_eq!(kind(&v.verify_cached::<Value>(&big)), "too_large");
}

/// A token service's own verifier (any `Verifier` bound to one issuer)
/// serves next to discovered issuers, sharing nothing but the routing.
#[tokio::test]
async fn an_issuer_can_come_with_its_own_verifier() {
    let server = IssuerServer::start().await;
    let external = Key::new(Algorithm::RS256, "ext");
    let own = Key::new(Algorithm::ES256, "own");
    let ext_issuer = server.provider("/ext", &[&external]);
    let own_issuer = "https://auth.internal.example";
    let clock = Arc::new(ManualClock::starting_now());
    let own_verifier = Verifier::builder(
        KeySource::Jwks(Jwks {
            keys: vec![own.jwk()],
        }),
        Validation::new([Algorithm::ES256])
            .issuer(own_issuer)
            .audience("api")
            .clock(clock.clone()),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    let external_only = build(&clock, vec![Issuer::discover(&ext_issuer).audience("api")]);
    let both = external_only
        .with_verifier(own_issuer, own_verifier.clone())
        .unwrap();
    assert_eq!(
        both.issuers().collect::<Vec<_>>(),
        [ext_issuer.as_str(), own_issuer]
    );
    let own_token = own.sign(json!({"iss": own_issuer, "aud": "api"}));
    let ext_token = external.sign(json!({"iss": ext_issuer, "aud": "api"}));
    assert_eq!(kind(&both.verify::<Value>(&own_token).await), "ok");
    assert_eq!(kind(&both.verify::<Value>(&ext_token).await), "ok");
    assert_eq!(
        kind(&external_only.verify::<Value>(&own_token).await),
        "invalid_issuer"
    );
    // The external issuer's cache is shared with the verifier it came from.
    assert_eq!(
        external_only.verifier(&ext_issuer).unwrap().fetch_count(),
        1
    );
    // An issuer once.
    let err = both.with_verifier(own_issuer, own_verifier).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { setting: "issuers", reason } if reason.contains("configured twice")),
        "{err}"
    );
}

/// Every mistake the builder can see is refused, naming the setting.
#[test]
fn the_builder_refuses_what_cannot_work() {
    let refused = |builder: jwt_keys::MultiIssuerVerifierBuilder| match builder.build() {
        Err(Error::InvalidConfig { setting, reason }) => (setting, reason),
        Err(other) => panic!("expected invalid_config, got {other:?}"),
        Ok(v) => panic!("built {v:?}"),
    };
    let issuer = || Issuer::discover("https://idp.example.com/");
    let cases: Vec<(jwt_keys::MultiIssuerVerifierBuilder, &str, &str)> = vec![
        (MultiIssuerVerifier::builder(), "issuers", "no issuer"),
        (
            MultiIssuerVerifier::builder()
                .issuer(issuer())
                .issuer(issuer().audience("b")),
            "issuers",
            "configured twice",
        ),
        (
            MultiIssuerVerifier::builder()
                .issuer(issuer().algorithms([Algorithm::HS256, Algorithm::RS256])),
            "algorithms",
            "HS256 cannot verify an issuer's tokens",
        ),
        (
            MultiIssuerVerifier::builder().issuer(issuer().algorithms([])),
            "algorithms",
            "the algorithm list is empty",
        ),
        (
            MultiIssuerVerifier::builder().issuer(issuer().audience("")),
            "audience",
            "empty audience",
        ),
        (
            MultiIssuerVerifier::builder().issuer(issuer().typ("")),
            "typ",
            "empty `typ`",
        ),
        (
            MultiIssuerVerifier::builder().issuer(issuer().leeway(Duration::from_millis(1500))),
            "leeway",
            "not a whole number of seconds",
        ),
        (
            MultiIssuerVerifier::builder().issuer(Issuer::discover("http://idp.example.com/")),
            "issuer",
            "only to a loopback address",
        ),
        (
            MultiIssuerVerifier::builder().issuer(Issuer::discover("https://idp.example.com/?x=1")),
            "issuer",
            "no query",
        ),
        (
            MultiIssuerVerifier::builder().issuer(Issuer::discover("")),
            "issuer",
            "non-empty",
        ),
        (
            MultiIssuerVerifier::builder()
                .issuer(issuer())
                .max_token_size(0),
            "max_token_size",
            "above 0",
        ),
        (
            MultiIssuerVerifier::builder()
                .issuer(issuer())
                .cache(CacheOptions::default().with_fetch_timeout(Duration::ZERO)),
            "fetch_timeout",
            "above zero",
        ),
    ];
    for (builder, setting, fragment) in cases {
        let (found, reason) = refused(builder);
        assert_eq!(found, setting, "{reason}");
        assert!(reason.contains(fragment), "{setting}: {reason}");
    }
    // A JWKS URL in clear text to another host is refused by the JWKS rule.
    let err = MultiIssuerVerifier::builder()
        .issuer(Issuer::with_jwks_url(
            "urn:issuer",
            "http://idp.example.com/jwks",
        ))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUri, "{err}");
}

/// An issuer without metadata, at a JWKS URL, with named algorithms.
#[tokio::test]
async fn an_issuer_can_be_given_by_its_jwks_url() {
    let server = IssuerServer::start().await;
    let key = Key::without_jwk_alg(Algorithm::PS256, "ps");
    server.set("/keys.json", Answer::json(jwks(&[&key])));
    let clock = Arc::new(ManualClock::starting_now());
    let v = build(
        &clock,
        vec![
            Issuer::with_jwks_url("urn:example:issuer", format!("{}/keys.json", server.base))
                .algorithms([Algorithm::PS256]),
        ],
    );
    let token = key.sign(json!({"iss": "urn:example:issuer"}));
    assert_eq!(kind(&v.verify::<Value>(&token).await), "ok");
    assert!(v.metadata("urn:example:issuer").is_none());
    assert_eq!(v.metadata_fetch_count("urn:example:issuer"), Some(0));
    // Without named algorithms, a key without `alg` verifies nothing.
    let v = build(
        &clock,
        vec![Issuer::with_jwks_url(
            "urn:example:issuer",
            format!("{}/keys.json", server.base),
        )],
    );
    let err = v.verify::<Value>(&token).await.unwrap_err();
    assert!(err.to_string().contains("names no algorithm"), "{err}");
}

/// The blocking facade: same answers from plain threads; refused inside a
/// runtime, where it would stall a worker.
#[test]
fn the_blocking_facade_verifies_from_plain_threads() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(IssuerServer::start());
    let key = Key::new(Algorithm::ES256, "k1");
    let other = Key::new(Algorithm::ES256, "k2");
    let issuer = server.provider("/blocking", &[&key]);
    let clock = Arc::new(ManualClock::starting_now());
    let v = blocking::MultiIssuerVerifier::from_async(
        MultiIssuerVerifier::builder()
            .issuer(Issuer::discover(&issuer).audience("api"))
            .clock(clock.clone())
            .build()
            .unwrap(),
    )
    .unwrap();
    let token = key.sign(json!({"iss": issuer, "aud": "api", "sub": "alice"}));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (v, token) = (v.clone(), token.clone());
            std::thread::spawn(move || v.verify::<Value>(&token).map(|d| d.claims["sub"].clone()))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), "alice");
    }
    assert_eq!(server.hits("/blocking/jwks"), 1);
    // A rotation: past the cooldown, the new kid is fetched once, the
    // calling thread waiting for it.
    server.set("/blocking/jwks", Answer::json(jwks(&[&key, &other])));
    let rotated = other.sign(json!({"iss": issuer, "aud": "api"}));
    clock.advance(31);
    assert_eq!(kind(&v.verify::<Value>(&rotated)), "ok");
    assert_eq!(server.hits("/blocking/jwks"), 2);
    v.refresh().unwrap();
    assert_eq!(server.hits("/blocking/jwks"), 3);
    let err = v
        .verify::<Value>(&key.sign(json!({"iss": "https://other/"})))
        .unwrap_err();
    assert_eq!(err.kind().as_str(), "invalid_issuer");
    let inside = runtime.block_on(async { v.verify::<Value>(&token) });
    match inside {
        Err(Error::InvalidConfig {
            setting: "runtime",
            reason,
        }) => {
            assert!(reason.contains("as_async().verify::<T>(token)"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        runtime
            .block_on(v.as_async().verify::<Value>(&token))
            .unwrap()
            .claims["sub"],
        "alice"
    );
}

/// Many issuers (a multi-tenant setup) are found by a hash lookup: each
/// tenant's token still verifies with its own keys only.
#[tokio::test]
async fn many_issuers_each_verify_their_own_tokens() {
    let clock = Arc::new(ManualClock::starting_now());
    let mut builder = MultiIssuerVerifier::builder().clock(clock.clone());
    let mut keys = Vec::new();
    for i in 0..20 {
        let issuer = format!("https://login.example.com/tenant-{i}/v2.0");
        let key = Key::new(Algorithm::ES256, &format!("k{i}"));
        let verifier = Verifier::builder(
            KeySource::Jwks(Jwks {
                keys: vec![key.jwk()],
            }),
            Validation::new([Algorithm::ES256])
                .issuer(issuer.clone())
                .clock(clock.clone()),
        )
        .clock(clock.clone())
        .build()
        .unwrap();
        builder = builder.verifier(issuer.clone(), verifier);
        keys.push((issuer, key));
    }
    let v = builder.build().unwrap();
    for (i, (issuer, key)) in keys.iter().enumerate() {
        let own = key.sign(json!({"iss": issuer}));
        assert_eq!(kind(&v.verify_cached::<Value>(&own)), "ok", "{issuer}");
        // The next tenant's key, in a token naming this tenant.
        let (_, other) = &keys[(i + 1) % keys.len()];
        let crossed = other.sign(json!({"iss": issuer}));
        assert_eq!(
            kind(&v.verify_cached::<Value>(&crossed)),
            "unknown_key",
            "{issuer}"
        );
    }
    let stranger = keys[0]
        .1
        .sign(json!({"iss": "https://login.example.com/tenant-20/v2.0"}));
    assert_eq!(kind(&v.verify_cached::<Value>(&stranger)), "invalid_issuer");
}

/// Google's two spellings of its issuer: with `also_accept_iss`, a token
/// naming the alias is checked with the issuer's keys and settings; the
/// alias is routed nowhere else, and without it the same token is
/// `invalid_issuer`. An alias that repeats another issuer is refused.
#[tokio::test]
async fn an_alias_spelling_of_the_issuer_uses_its_keys_and_settings() {
    let server = IssuerServer::start().await;
    let key = Key::new(Algorithm::RS256, "g-1");
    let issuer = server.provider("/google", &[&key]);
    let other_key = Key::new(Algorithm::RS256, "o-1");
    let other = server.provider("/other", &[&other_key]);
    let clock = Arc::new(ManualClock::starting_now());
    let v = build(
        &clock,
        vec![
            Issuer::discover(&issuer)
                .also_accept_iss("accounts.example.com")
                .audience("client"),
            Issuer::discover(&other).audience("client"),
        ],
    );
    let bare = key.sign(json!({"iss": "accounts.example.com", "aud": "client"}));
    let data = v.verify::<Value>(&bare).await.unwrap();
    assert_eq!(data.claims["iss"], "accounts.example.com");
    assert_eq!(
        kind(
            &v.verify::<Value>(&key.sign(json!({"iss": issuer, "aud": "client"})))
                .await
        ),
        "ok"
    );
    // The alias carries the issuer's settings (its audience) ...
    let wrong_aud = key.sign(json!({"iss": "accounts.example.com", "aud": "x"}));
    assert_eq!(
        kind(&v.verify::<Value>(&wrong_aud).await),
        "invalid_audience"
    );
    // ... and its keys only: the other issuer's key under the alias is unknown.
    let forged = other_key.sign(json!({"iss": "accounts.example.com", "aud": "client"}));
    assert_eq!(kind(&v.verify::<Value>(&forged).await), "unknown_key");
    // Without the alias, the bare spelling is not an issuer.
    let plain = build(&clock, vec![Issuer::discover(&issuer).audience("client")]);
    assert_eq!(kind(&plain.verify::<Value>(&bare).await), "invalid_issuer");
    // An alias that is another issuer, or the issuer itself, is refused.
    let clash = MultiIssuerVerifier::builder()
        .issuer(Issuer::discover(&issuer).also_accept_iss(other.clone()))
        .issuer(Issuer::discover(&other))
        .build();
    assert_eq!(clash.unwrap_err().kind(), ErrorKind::InvalidConfig);
    let itself = MultiIssuerVerifier::builder()
        .issuer(Issuer::discover(&issuer).also_accept_iss(issuer.clone()))
        .build();
    assert_eq!(itself.unwrap_err().kind(), ErrorKind::InvalidConfig);
}
