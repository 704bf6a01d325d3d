//! The TokenService's verified-token cache (on by default): a repeated
//! access token is answered from the cache with the answer a verification
//! gives — through `verify_access` and the axum layer — until its `exp`
//! plus the leeway, never across a change of the key set; revocations
//! drop the subject's cached tokens, on the memory and the Redis refresh
//! store.

use std::sync::Arc;
use std::time::Duration;

use jwtkit::keys::KeyStore;
use jwtkit::{
    AccessClaims, Algorithm, Clock, Error, GrantRefusal, ManualClock, MemoryKeyStore, RefreshKey,
    RefreshStore, RotationPolicy, TokenCacheOptions, TokenCacheStats, TokenService,
    TokenServiceBuilder,
};
use serde_json::Value;

const T0: i64 = 1_800_000_000;
const HOUR: Duration = Duration::from_secs(3600);

fn base(clock: &Arc<ManualClock>, store: Arc<dyn KeyStore>) -> TokenServiceBuilder {
    TokenService::builder()
        .shared_key_store(store)
        .init_key_store(Algorithm::ES256)
        .issuer("https://auth.test")
        .audience("api")
        .clock(clock.clone())
}

fn policy() -> RotationPolicy {
    RotationPolicy::builder()
        .rotate_after(24 * HOUR)
        .prepublish(HOUR)
        .max_token_lifetime(HOUR)
        .verify_grace(2 * HOUR)
        .build()
        .unwrap()
}

/// A service with the default token cache, and one without over the same
/// key store and clock: what an uncached verification answers.
async fn services(clock: &Arc<ManualClock>) -> (TokenService, TokenService) {
    let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::with_clock(clock.clone()));
    let cached = base(clock, store.clone())
        .rotation_policy(policy())
        .build()
        .await
        .unwrap();
    let plain = base(clock, store)
        .rotation_policy(policy())
        .no_token_cache()
        .build()
        .await
        .unwrap();
    (cached, plain)
}

/// Verifies `token` twice: a token is kept from its second verification on.
fn keep(tokens: &TokenService, token: &str) {
    for _ in 0..2 {
        tokens.verify_access::<Value>(token).expect("verifies");
    }
}

fn stats(tokens: &TokenService) -> TokenCacheStats {
    tokens.token_cache_stats().expect("the token cache is on")
}

/// An answer comparable across services: the claims, or the error's
/// kind and message.
fn answer(r: Result<Value, Error>) -> Result<Value, (String, String)> {
    r.map_err(|e| {
        let kind = match &e {
            Error::InvalidToken(core) => core.kind().as_str().to_owned(),
            other => other.kind().as_str().to_owned(),
        };
        (kind, e.to_string())
    })
}

#[tokio::test]
async fn the_service_answers_a_repeated_token_from_its_cache() {
    let c = Arc::new(ManualClock::new(T0));
    let (tokens, plain) = services(&c).await;
    assert_eq!(
        plain.token_cache_stats(),
        None,
        "no_token_cache turns it off"
    );
    let pair = tokens
        .issue("alice", &serde_json::json!({"scope": "read"}))
        .await
        .unwrap();
    for _ in 0..3 {
        let claims: AccessClaims = tokens.verify_access(&pair.access_token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.scope.as_deref(), Some("read"));
    }
    let claims: AccessClaims = tokens
        .verify_access_reloading(&pair.access_token)
        .await
        .unwrap();
    assert_eq!(claims.sub, "alice");
    // Kept from the second verification on.
    let s = stats(&tokens);
    assert_eq!((s.hits, s.misses, s.entries), (2, 2, 1), "{s:?}");
    // The same claims as a verification, as any type.
    assert_eq!(
        answer(tokens.verify_access::<Value>(&pair.access_token)),
        answer(plain.verify_access::<Value>(&pair.access_token))
    );
    // A refresh token presented as an access token is refused and never
    // cached (it names no kid, and the key store holds two keys).
    for _ in 0..2 {
        match tokens.verify_access::<Value>(&pair.refresh_token) {
            Err(Error::InvalidToken(e)) => {
                assert_eq!(e.kind(), jwtkit::core::ErrorKind::UnknownKey)
            }
            other => panic!("expected invalid_token, got {other:?}"),
        }
    }
    assert_eq!(stats(&tokens).entries, 1);
}

#[tokio::test]
async fn a_cached_access_token_expires_at_exp_plus_leeway_exactly() {
    let c = Arc::new(ManualClock::new(T0));
    let (tokens, plain) = services(&c).await;
    let pair = tokens.issue("alice", &()).await.unwrap();
    keep(&tokens, &pair.access_token);
    // 15 min tokens, 60 s leeway: valid through exp + 59 s, refused at exp + 60 s.
    let exp = T0 + 900;
    for at in [exp - 1, exp + 59, exp + 60, exp + 3600, T0 - 59, T0 - 61] {
        c.set(at);
        let hit = tokens.verify_access::<Value>(&pair.access_token);
        let fresh = plain.verify_access::<Value>(&pair.access_token);
        assert_eq!(answer(hit), answer(fresh), "at {at}");
    }
    c.set(exp + 60);
    match tokens.verify_access::<Value>(&pair.access_token) {
        Err(Error::InvalidToken(jwt_core::Error::Expired {
            exp: e,
            now,
            leeway,
        })) => {
            assert_eq!((e, now, leeway), (exp, exp + 60, 60))
        }
        other => panic!("expected expired, got {other:?}"),
    }
    c.set(T0 - 61);
    match tokens.verify_access::<Value>(&pair.access_token) {
        Err(Error::InvalidToken(jwt_core::Error::Immature { claim, .. })) => {
            assert_eq!(claim, "iat")
        }
        other => panic!("expected immature iat, got {other:?}"),
    }
    assert!(stats(&tokens).hits >= 2, "{:?}", stats(&tokens));
}

#[tokio::test]
async fn rotation_and_retirement_make_cached_tokens_verify_again() {
    let c = Arc::new(ManualClock::new(T0));
    let (tokens, plain) = services(&c).await;
    let old = tokens.issue("alice", &()).await.unwrap();
    keep(&tokens, &old.access_token);
    tokens.verify_access::<Value>(&old.access_token).unwrap();
    assert_eq!((stats(&tokens).hits, stats(&tokens).misses), (1, 2));

    // The maintenance tick reloads the keys; nothing changed, nothing is lost.
    assert_eq!(tokens.rotate_if_due().await.unwrap(), None);
    tokens.verify_access::<Value>(&old.access_token).unwrap();
    assert_eq!((stats(&tokens).hits, stats(&tokens).misses), (2, 2));

    // A rotation changes the key set: the token is verified again (and
    // still valid during its key's grace).
    c.advance_by(24 * HOUR - Duration::from_secs(600));
    let old = tokens.issue("alice", &()).await.unwrap();
    c.advance_by(Duration::from_secs(600));
    keep(&tokens, &old.access_token);
    let misses = stats(&tokens).misses;
    tokens.rotate_if_due().await.unwrap().expect("rotation due");
    plain.reload_keys().await.unwrap();
    tokens.verify_access::<Value>(&old.access_token).unwrap();
    assert_eq!(
        stats(&tokens).misses,
        misses + 1,
        "verified again, kept again"
    );
    let hits = stats(&tokens).hits;
    tokens.verify_access::<Value>(&old.access_token).unwrap();
    assert_eq!(stats(&tokens).hits, hits + 1);

    // The end of the grace: unknown_key, as without the cache.
    c.advance_by(2 * HOUR);
    let hit = tokens.verify_access::<Value>(&old.access_token);
    match &hit {
        Err(Error::InvalidToken(e)) => {
            assert_eq!(e.kind(), jwtkit::core::ErrorKind::UnknownKey)
        }
        other => panic!("expected unknown_key, got {other:?}"),
    }
    assert_eq!(
        answer(hit),
        answer(plain.verify_access::<Value>(&old.access_token))
    );
}

/// Revoking a session or detecting reuse drops that session's cached access
/// tokens (found by their `sid`), revoking a subject drops all of the
/// subject's; other sessions' and subjects' stay. The dropped tokens still
/// verify, afresh: access tokens stay valid until `exp`, with or without the
/// cache (introspection is what sees the revocation).
async fn revocation_drops_the_subjects_cached_tokens(tokens: &TokenService, sub: &str) {
    let other = format!("{sub}-other");
    let a1 = tokens.issue(sub, &()).await.unwrap();
    let a2 = tokens.issue(sub, &()).await.unwrap();
    let b = tokens.issue(&other, &()).await.unwrap();
    let cache_all = || {
        for pair in [&a1, &a2, &b] {
            keep(tokens, &pair.access_token);
        }
    };
    cache_all();
    assert_eq!(stats(tokens).entries, 3);

    // revoke_session: that session's token goes, the subject's other
    // session's stays (told apart by `sid`).
    assert!(tokens.revoke_session(&a1.refresh_token).await.unwrap());
    assert_eq!(stats(tokens).entries, 2);
    let hits = stats(tokens).hits;
    tokens.verify_access::<Value>(&a2.access_token).unwrap();
    assert_eq!(
        stats(tokens).hits,
        hits + 1,
        "the other session's token is still cached"
    );
    let misses = stats(tokens).misses;
    let claims: AccessClaims = tokens.verify_access(&a1.access_token).unwrap();
    assert_eq!(claims.sub, sub);
    assert_eq!(stats(tokens).misses, misses + 1, "verified afresh");
    assert_eq!(
        stats(tokens).entries,
        2,
        "kept again from the next verification"
    );

    // revoke_subject.
    cache_all();
    assert_eq!(stats(tokens).entries, 3);
    assert_eq!(tokens.revoke_subject(sub).await.unwrap(), 1);
    assert_eq!(stats(tokens).entries, 1);

    // Reuse detection on the other subject's session.
    cache_all();
    let next = tokens.refresh(&b.refresh_token).await.unwrap();
    keep(tokens, &next.access_token);
    assert_eq!(stats(tokens).entries, 4);
    match tokens.refresh(&b.refresh_token).await {
        Err(Error::InvalidGrant {
            reason: GrantRefusal::Reused,
        }) => {}
        other => panic!("expected reuse, got {other:?}"),
    }
    assert_eq!(stats(tokens).entries, 2, "{:?}", stats(tokens));
}

#[tokio::test]
async fn revocation_drops_cached_tokens_with_the_memory_store() {
    let c = Arc::new(ManualClock::new(T0));
    let (tokens, _) = services(&c).await;
    revocation_drops_the_subjects_cached_tokens(&tokens, "alice").await;
}

#[tokio::test]
async fn revocation_drops_cached_tokens_with_redis() {
    let Some(url) = jwtkit_test_support::service("JWTKIT_TEST_REDIS_URL", "Redis") else {
        return;
    };
    // Redis runs on real time: so does the service here.
    let c = Arc::new(ManualClock::starting_now());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("jwtkit-test:token-cache:{}:{nanos}:", std::process::id());
    let store = jwtkit::RedisRefreshStore::builder()
        .url(url)
        .key_prefix(prefix)
        .clock(c.clone())
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to the test Redis: {e}"));
    let store: Arc<dyn RefreshStore> = Arc::new(store);
    let keys: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::with_clock(c.clone()));
    let tokens = base(&c, keys)
        .shared_refresh_store(store)
        .refresh_key(RefreshKey::generate().unwrap())
        .build()
        .await
        .unwrap();
    revocation_drops_the_subjects_cached_tokens(&tokens, "alice").await;
}

#[tokio::test]
async fn the_axum_layer_answers_repeated_tokens_from_the_cache() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use jwtkit::axum::{BearerAuthLayer, Claims};
    use tower::ServiceExt;

    let c = Arc::new(ManualClock::new(T0));
    let (tokens, _) = services(&c).await;
    let app = axum::Router::new()
        .route(
            "/me",
            get(|Claims(claims): Claims<AccessClaims>| async move { claims.sub }),
        )
        .layer(BearerAuthLayer::<AccessClaims>::new(tokens.clone()));
    let call = |token: String| {
        let app = app.clone();
        async move {
            let req = Request::builder()
                .uri("/me")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let res = app.oneshot(req).await.unwrap();
            let status = res.status();
            let challenge = res
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = axum::body::to_bytes(res.into_body(), 1 << 16)
                .await
                .unwrap();
            (status, challenge, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let pair = tokens.issue("alice", &()).await.unwrap();
    for _ in 0..5 {
        let (status, _, body) = call(pair.access_token.clone()).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    }
    let s = stats(&tokens);
    assert_eq!((s.hits, s.misses), (3, 2), "{s:?}");
    // Past exp + leeway, the cached token is refused like any expired one.
    c.set(T0 + 900 + 60);
    let (status, challenge, _) = call(pair.access_token.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("expired"));
    assert_eq!(stats(&tokens).hits, 4);
}

#[tokio::test]
async fn the_builder_checks_the_token_cache_options() {
    let c = Arc::new(ManualClock::new(T0));
    let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::with_clock(c.clone()));
    let err = base(&c, store.clone())
        .token_cache(TokenCacheOptions::default().with_max_entries(0))
        .build()
        .await
        .unwrap_err();
    match err {
        Error::Config { setting, reason } => {
            assert_eq!(setting, "token_cache.max_entries");
            assert!(reason.contains("at least 2"), "{reason}");
        }
        other => panic!("expected a Config error, got {other:?}"),
    }
    // Custom bounds are taken as given.
    let tokens = base(&c, store)
        .token_cache(TokenCacheOptions::default().with_max_entries(2))
        .build()
        .await
        .unwrap();
    for sub in ["a", "b", "c", "d"] {
        let pair = tokens.issue(sub, &()).await.unwrap();
        keep(&tokens, &pair.access_token);
    }
    let s = stats(&tokens);
    assert_eq!((s.entries, s.evictions, s.misses), (2, 2, 8), "{s:?}");
    assert_eq!(c.now(), T0);
}
