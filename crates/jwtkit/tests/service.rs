//! The TokenService through its public API: builder refusals, the token
//! flow on an injected clock, key rotation, the axum layer.

use std::sync::Arc;
use std::time::Duration;

use jwtkit::{
    AccessClaims, Algorithm, Clock, Error, GrantRefusal, ManualClock, MemoryKeyStore,
    MemoryRefreshStore, RefreshKey, RefreshPolicy, RotationPolicy, TokenService,
    TokenServiceBuilder,
};
use serde_json::{json, Value};

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn base(clock: &Arc<ManualClock>) -> TokenServiceBuilder {
    TokenService::builder()
        .key_store(MemoryKeyStore::with_clock(clock.clone()))
        .init_key_store(Algorithm::ES256)
        .issuer("https://auth.test")
        .audience("api")
        .clock(clock.clone())
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_800_000_000))
}

async fn refused_setting(builder: TokenServiceBuilder) -> &'static str {
    match builder.build().await {
        Err(Error::Config { setting, reason }) => {
            assert!(!reason.is_empty());
            setting
        }
        other => panic!("expected a Config error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_builder_refuses_missing_unsafe_and_contradictory_settings() {
    let c = clock();
    assert_eq!(
        refused_setting(TokenService::builder().issuer("i").audience("a")).await,
        "key_store"
    );
    assert_eq!(
        refused_setting(
            TokenService::builder()
                .key_store(MemoryKeyStore::new())
                .audience("a")
        )
        .await,
        "issuer"
    );
    assert_eq!(
        refused_setting(
            TokenService::builder()
                .key_store(MemoryKeyStore::new())
                .issuer("i")
                .audience("")
        )
        .await,
        "audience"
    );
    assert_eq!(
        refused_setting(base(&c).access_ttl(Duration::ZERO)).await,
        "access_ttl"
    );
    assert_eq!(
        refused_setting(base(&c).access_ttl(Duration::from_millis(1500))).await,
        "access_ttl"
    );
    assert_eq!(
        refused_setting(base(&c).access_ttl(25 * HOUR)).await,
        "access_ttl"
    );
    assert_eq!(
        refused_setting(base(&c).access_ttl(HOUR).refresh_ttl(HOUR)).await,
        "refresh_ttl"
    );
    assert_eq!(refused_setting(base(&c).leeway(10 * MIN)).await, "leeway");
    assert_eq!(
        refused_setting(base(&c).reuse_grace(61 * Duration::from_secs(1))).await,
        "reuse_grace"
    );
    let own_store = || MemoryRefreshStore::new(RefreshPolicy::default());
    assert_eq!(
        refused_setting(base(&c).refresh_store(own_store())).await,
        "refresh_key",
        "a shared store with a per-process refresh key"
    );
    assert_eq!(
        refused_setting(
            base(&c)
                .refresh_store(own_store())
                .refresh_key(RefreshKey::generate().unwrap())
                .reuse_grace(Duration::from_secs(5))
        )
        .await,
        "reuse_grace",
        "grace belongs on the caller's own store"
    );
    // Access tokens longer than the rotation policy's token lifetime would
    // outlive their key's grace after a rotation.
    let policy = RotationPolicy::builder()
        .max_token_lifetime(HOUR)
        .verify_grace(2 * HOUR)
        .build()
        .unwrap();
    assert_eq!(
        refused_setting(
            base(&c)
                .rotation_policy(policy.clone())
                .access_ttl(2 * HOUR)
        )
        .await,
        "access_ttl"
    );
    // Even with the default (or no) policy configured, the store's recorded one is checked.
    assert_eq!(
        refused_setting(base(&c).access_ttl(2 * HOUR)).await,
        "access_ttl"
    );

    // A store initialized with one policy refuses a service configured with another.
    let store = Arc::new(MemoryKeyStore::with_clock(c.clone()));
    store.clone().init_default(&c).await;
    let other = RotationPolicy::builder()
        .rotate_after(7 * DAY)
        .build()
        .unwrap();
    let setting = refused_setting(
        TokenService::builder()
            .shared_key_store(store.clone())
            .issuer("i")
            .audience("a")
            .rotation_policy(other)
            .clock(c.clone()),
    )
    .await;
    assert_eq!(setting, "rotation_policy");
    // …and accepts the recorded one.
    TokenService::builder()
        .shared_key_store(store)
        .issuer("i")
        .audience("a")
        .rotation_policy(RotationPolicy::default())
        .clock(c.clone())
        .build()
        .await
        .unwrap();
    // An uninitialized store without init_key_store: told how to fix it.
    let err = TokenService::builder()
        .key_store(MemoryKeyStore::new())
        .issuer("i")
        .audience("a")
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "key_store");
}

trait InitDefault {
    async fn init_default(self, clock: &Arc<ManualClock>);
}

impl InitDefault for Arc<MemoryKeyStore> {
    async fn init_default(self, clock: &Arc<ManualClock>) {
        use jwtkit::KeyStore;
        let _ = clock;
        self.init(Algorithm::ES256, &RotationPolicy::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn issue_verify_refresh_reuse_and_expiry_on_an_injected_clock() {
    let c = clock();
    let tokens = base(&c).build().await.unwrap();
    let pair = tokens
        .issue(
            "alice",
            &json!({"scope": "read write", "client_id": "web", "roles": ["admin"]}),
        )
        .await
        .unwrap();
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);

    let header = jwt_core::dangerous::insecure_decode_header(&pair.access_token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::ES256);
    let rheader = jwt_core::dangerous::insecure_decode_header(&pair.refresh_token).unwrap();
    assert_eq!(rheader.typ.as_deref(), Some("refresh+jwt"));
    assert_eq!(rheader.alg, Algorithm::HS256);

    let claims: AccessClaims = tokens.verify_access(&pair.access_token).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.iss, "https://auth.test");
    assert!(claims.aud.contains("api"));
    assert_eq!(claims.iat, c.now());
    assert_eq!(claims.exp, c.now() + 900);
    assert_eq!(claims.client_id.as_deref(), Some("web"));
    assert!(claims.has_scope("write"));
    assert_eq!(claims.extra["roles"], json!(["admin"]));

    // Typ confusion both ways.
    match tokens.verify_access::<Value>(&pair.refresh_token) {
        Err(Error::InvalidToken(e)) => assert!(e.is_rejection()),
        other => panic!("a refresh token passed as an access token: {other:?}"),
    }
    match tokens.refresh(&pair.access_token).await {
        Err(Error::InvalidGrant {
            reason: GrantRefusal::Invalid(_),
        }) => {}
        other => panic!("an access token passed as a refresh token: {other:?}"),
    }

    // Expiry follows the injected clock (leeway 60 s).
    c.advance(900 + 60);
    match tokens.verify_access::<Value>(&pair.access_token) {
        Err(Error::InvalidToken(e)) => assert_eq!(e.kind(), jwt_core::ErrorKind::Expired),
        other => panic!("expected expired, got {other:?}"),
    }

    // Refresh: new pair, same custom claims, new jti.
    let pair2 = tokens.refresh(&pair.refresh_token).await.unwrap();
    assert_eq!(pair2.session, pair.session);
    let claims2: AccessClaims = tokens.verify_access(&pair2.access_token).unwrap();
    assert_eq!(claims2.extra["roles"], json!(["admin"]));
    assert_ne!(claims2.jti, claims.jti);
    // Every access token of the session carries its id (`sid`), not as a
    // custom claim.
    assert_eq!(claims2.sid.as_deref(), Some(pair.session.as_str()));
    assert_eq!(claims2.sid, claims.sid);
    assert!(!claims2.extra.contains_key("sid"));
    let other = tokens.issue("alice", &()).await.unwrap();
    let other: AccessClaims = tokens.verify_access(&other.access_token).unwrap();
    assert_ne!(other.sid, claims.sid);

    // Reuse: the session dies, successor included.
    assert!(matches!(
        tokens.refresh(&pair.refresh_token).await,
        Err(Error::InvalidGrant {
            reason: GrantRefusal::Reused
        })
    ));
    assert!(matches!(
        tokens.refresh(&pair2.refresh_token).await,
        Err(Error::InvalidGrant {
            reason: GrantRefusal::Revoked
        })
    ));

    // Revocation.
    let pair3 = tokens.issue("bob", &()).await.unwrap();
    assert!(tokens.revoke_session(&pair3.refresh_token).await.unwrap());
    assert!(!tokens.revoke_session(&pair3.refresh_token).await.unwrap());
    assert!(matches!(
        tokens.refresh(&pair3.refresh_token).await,
        Err(Error::InvalidGrant {
            reason: GrantRefusal::Revoked
        })
    ));

    // Refresh tokens expire on the same clock.
    let pair4 = tokens.issue("carol", &()).await.unwrap();
    c.advance_by(15 * DAY);
    match tokens.refresh(&pair4.refresh_token).await {
        Err(Error::InvalidGrant {
            reason: GrantRefusal::Invalid(kind),
        }) => assert_eq!(kind, jwtkit::core::ErrorKind::Expired),
        other => panic!("expected an expired refresh token, got {other:?}"),
    }
}

#[tokio::test]
async fn reserved_and_oversized_custom_claims_are_refused() {
    let c = clock();
    let tokens = base(&c).build().await.unwrap();
    for name in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid"] {
        let err = tokens
            .issue("alice", &json!({ name: 1 }))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidRequest { reason } if reason.contains(name)),
            "{err}"
        );
    }
    // `scope` and `client_id` are strings in an access token (RFC 9068
    // §2.2) and in an introspection answer (schemathesis found them taken
    // as any JSON type).
    for bad in [
        json!({"scope": 5}),
        json!({"scope": ["read"]}),
        json!({"client_id": {}}),
    ] {
        let err = tokens.issue("alice", &bad).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidRequest { reason } if reason.contains("must be a string")),
            "{bad}: {err}"
        );
    }
    let err = tokens
        .issue("alice", &json!(["not", "an", "object"]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_request");
    let big = "x".repeat(5000);
    let err = tokens
        .issue("alice", &json!({ "blob": big }))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_request");
    let err = tokens.issue("", &()).await.unwrap_err();
    assert_eq!(err.kind(), "invalid_request");
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_for_the_grace_then_drops_them_without_io() {
    let c = clock();
    let policy = RotationPolicy::builder()
        .rotate_after(DAY)
        .prepublish(HOUR)
        .max_token_lifetime(HOUR)
        .leeway(5 * MIN)
        .verify_grace(2 * HOUR)
        .build()
        .unwrap();
    let tokens = base(&c).rotation_policy(policy).build().await.unwrap();
    assert_eq!(tokens.jwks_max_age(), 30 * MIN, "half the prepublish");
    let old = tokens.issue("alice", &()).await.unwrap();
    let old_kid = jwt_core::dangerous::insecure_decode_header(&old.access_token)
        .unwrap()
        .kid
        .unwrap();

    assert_eq!(tokens.rotate_if_due().await.unwrap(), None, "not due yet");
    c.advance_by(DAY);
    let report = tokens.rotate_if_due().await.unwrap().expect("rotation due");
    assert_eq!(report.previous.as_deref(), Some(old_kid.as_str()));

    let new = tokens.refresh(&old.refresh_token).await.unwrap();
    let new_kid = jwt_core::dangerous::insecure_decode_header(&new.access_token)
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(new_kid, report.active);

    // The retiring key stays loaded for its grace (the next test shows a
    // token it signed still verifying).
    assert!(tokens.loaded_kids().contains(&old_kid));
    c.advance_by(2 * HOUR);
    // Past the grace: the retiring key is dropped by verify_access itself.
    let _ = tokens.verify_access::<Value>(&new.access_token);
    assert!(
        !tokens.loaded_kids().contains(&old_kid),
        "{:?}",
        tokens.loaded_kids()
    );
    assert!(tokens.loaded_kids().contains(&new_kid));
}

#[tokio::test]
async fn tokens_signed_just_before_a_rotation_verify_until_they_expire() {
    let c = clock();
    let policy = RotationPolicy::builder()
        .rotate_after(DAY)
        .prepublish(HOUR)
        .max_token_lifetime(HOUR)
        .verify_grace(2 * HOUR)
        .build()
        .unwrap();
    let tokens = base(&c).rotation_policy(policy).build().await.unwrap();
    c.advance_by(DAY);
    let before = tokens.issue("alice", &()).await.unwrap();
    tokens.rotate_if_due().await.unwrap().expect("rotated");
    c.advance(899);
    let claims: AccessClaims = tokens.verify_access(&before.access_token).unwrap();
    assert_eq!(claims.sub, "alice");
}

#[tokio::test]
async fn the_axum_layer_answers_rfc_6750_and_hands_claims_to_handlers() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use jwtkit::axum::{BearerAuthLayer, Claims};
    use tower::ServiceExt;

    let c = clock();
    let tokens = base(&c).build().await.unwrap();
    let app = axum::Router::new()
        .route(
            "/me",
            get(|Claims(claims): Claims<AccessClaims>| async move { claims.sub }),
        )
        .layer(BearerAuthLayer::<AccessClaims>::new(tokens.clone()));
    let call = |auth: Option<String>| {
        let app = app.clone();
        async move {
            let mut req = Request::builder().uri("/me");
            if let Some(auth) = auth {
                req = req.header("authorization", auth);
            }
            let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
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
    let (status, _, body) = call(Some(format!("Bearer {}", pair.access_token))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    let (status, _, _) = call(Some(format!("bearer {}", pair.access_token))).await;
    assert_eq!(status, StatusCode::OK, "the scheme is case-insensitive");

    let (status, challenge, _) = call(None).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );
    let (status, challenge, _) = call(Some(format!("Basic {}", pair.access_token))).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );

    let (status, challenge, _) = call(Some(format!("Bearer {}", pair.refresh_token))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = challenge.unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(
        !challenge.contains(&pair.refresh_token[..20]),
        "no token in the answer"
    );

    c.advance_by(HOUR);
    let (status, challenge, _) = call(Some(format!("Bearer {}", pair.access_token))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("expired"));
}

#[tokio::test]
async fn health_reports_each_store() {
    let c = clock();
    let tokens = base(&c).build().await.unwrap();
    let health = tokens.health().await;
    assert!(health.is_healthy(), "{health:?}");
}

/// A key store whose signing can be made to fail, as KMS or Vault do when
/// unreachable; everything else goes to an in-memory store.
#[derive(Debug)]
struct FlakySigner {
    inner: MemoryKeyStore,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl jwtkit::keys::KeyStore for FlakySigner {
    fn name(&self) -> &'static str {
        "flaky"
    }
    async fn active(&self) -> jwtkit::keys::Result<jwtkit::keys::KeyInfo> {
        self.inner.active().await
    }
    async fn sign(&self, kid: &str, input: &[u8]) -> jwtkit::keys::Result<Vec<u8>> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(jwtkit::keys::Error::Backend {
                backend: "flaky",
                retryable: true,
                source: "the signing service is unreachable".into(),
            });
        }
        self.inner.sign(kid, input).await
    }
    async fn verification_keys(&self) -> jwtkit::keys::Result<jwtkit::core::Jwks> {
        self.inner.verification_keys().await
    }
    async fn list(&self) -> jwtkit::keys::Result<Vec<jwtkit::keys::KeyRecord>> {
        self.inner.list().await
    }
    async fn policy(&self) -> jwtkit::keys::Result<RotationPolicy> {
        self.inner.policy().await
    }
}

#[tokio::test]
async fn a_signing_failure_during_refresh_does_not_consume_the_refresh_token() {
    let c = clock();
    let inner = MemoryKeyStore::with_clock(c.clone());
    jwtkit::keys::KeyStore::init(&inner, Algorithm::ES256, &RotationPolicy::default())
        .await
        .unwrap();
    let store = Arc::new(FlakySigner {
        inner,
        fail: std::sync::atomic::AtomicBool::new(false),
    });
    let tokens = TokenService::builder()
        .shared_key_store(store.clone())
        .issuer("https://auth.test")
        .audience("api")
        .clock(c.clone())
        .build()
        .await
        .unwrap();
    let pair = tokens
        .issue("alice", &json!({"scope": "read"}))
        .await
        .unwrap();

    // The signing service goes away: the refresh fails, retryably…
    store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = tokens.refresh(&pair.refresh_token).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    // …and the client's retry with the SAME refresh token, once the service is
    // back, succeeds: the token was not consumed, and no reuse is reported.
    store.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let next = tokens.refresh(&pair.refresh_token).await.unwrap();
    let claims: Value = tokens.verify_access(&next.access_token).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["scope"], "read");
    // The old token is now consumed: presenting it again is reuse.
    match tokens.refresh(&pair.refresh_token).await {
        Err(Error::InvalidGrant {
            reason: GrantRefusal::Reused,
        }) => {}
        other => panic!("expected reuse, got {other:?}"),
    }
}

/// Two service instances share one key store (two replicas). After the other
/// replica rotates twice, its tokens carry a kid this replica has never seen:
/// the layer reloads the keys once (rate-limited) and accepts them.
#[tokio::test]
async fn the_layer_reloads_keys_once_for_an_unknown_kid() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use jwtkit::axum::{BearerAuthLayer, Claims};
    use jwtkit::keys::KeyStore;
    use tower::ServiceExt;

    let c = clock();
    let store = Arc::new(MemoryKeyStore::with_clock(c.clone()));
    store
        .init(Algorithm::ES256, &RotationPolicy::default())
        .await
        .unwrap();
    let replica = |store: Arc<MemoryKeyStore>| {
        TokenService::builder()
            .shared_key_store(store)
            .issuer("https://auth.test")
            .audience("api")
            .clock(c.clone())
            .build()
    };
    let here = replica(store.clone()).await.unwrap();
    let there = replica(store.clone()).await.unwrap();
    let app = axum::Router::new()
        .route(
            "/me",
            get(|Claims(claims): Claims<AccessClaims>| async move { claims.sub }),
        )
        .layer(BearerAuthLayer::<AccessClaims>::new(here.clone()));
    let call = |token: String| {
        let app = app.clone();
        async move {
            let req = Request::builder()
                .uri("/me")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            app.oneshot(req).await.unwrap().status()
        }
    };

    // Two rotations: the new active key was created after `here` loaded its keys.
    store.rotate(None).await.unwrap();
    store.rotate(None).await.unwrap();
    there.reload_keys().await.unwrap();
    let token = there.issue("bob", &()).await.unwrap().access_token;
    assert!(matches!(
        here.verify_access::<AccessClaims>(&token),
        Err(Error::InvalidToken(jwtkit::core::Error::UnknownKey { .. }))
    ));
    assert_eq!(
        call(token.clone()).await,
        StatusCode::OK,
        "reloaded on the unknown kid"
    );
    assert!(here.verify_access::<AccessClaims>(&token).is_ok());

    // A made-up kid within the cooldown costs no second reload.
    store.rotate(None).await.unwrap();
    store.rotate(None).await.unwrap();
    there.reload_keys().await.unwrap();
    let newer = there.issue("carol", &()).await.unwrap().access_token;
    assert_eq!(
        call(newer.clone()).await,
        StatusCode::UNAUTHORIZED,
        "cooldown: no reload yet"
    );
    c.advance(31);
    assert_eq!(
        call(newer).await,
        StatusCode::OK,
        "after the cooldown it reloads again"
    );
}

/// Sessions per user: listed with the client description given at login,
/// one revoked by its id (the `sid` of its access tokens), all of a
/// subject's revoked at once.
#[tokio::test]
async fn sessions_are_listed_and_revoked_by_id_or_all_at_once() {
    let c = clock();
    let tokens = base(&c).build().await.unwrap();
    let mut client = serde_json::Map::new();
    client.insert("device".into(), json!("laptop"));
    let laptop = tokens
        .issue_with_client("dana", &json!({"scope": "read"}), &client)
        .await
        .unwrap();
    c.advance(5);
    let phone = tokens.issue("dana", &()).await.unwrap();
    let _other = tokens.issue("erik", &()).await.unwrap();
    let listed = tokens.sessions("dana").await.unwrap();
    let ids: Vec<_> = listed.iter().map(|s| s.family.to_string()).collect();
    assert_eq!(ids, vec![laptop.session.clone(), phone.session.clone()]);
    assert_eq!(listed[0].client.as_deref(), Some(r#"{"device":"laptop"}"#));
    assert_eq!(listed[1].client, None);
    // The session id is the access tokens' `sid`.
    let claims: AccessClaims = tokens.verify_access(&laptop.access_token).unwrap();
    assert_eq!(claims.sid.as_deref(), Some(laptop.session.as_str()));
    // The client description is never put into tokens.
    assert!(!claims.extra.contains_key("device"));

    assert!(tokens.revoke_session_id(&laptop.session).await.unwrap());
    assert!(!tokens.revoke_session_id(&laptop.session).await.unwrap());
    assert!(matches!(
        tokens.refresh(&laptop.refresh_token).await,
        Err(Error::InvalidGrant {
            reason: GrantRefusal::Revoked
        })
    ));
    assert_eq!(tokens.sessions("dana").await.unwrap().len(), 1);
    assert!(tokens
        .introspect(&laptop.access_token, None)
        .await
        .unwrap()
        .is_none());
    assert!(tokens
        .introspect(&phone.access_token, None)
        .await
        .unwrap()
        .is_some());
    for bad in ["", "not a session", "\u{1b}[31m"] {
        match tokens.revoke_session_id(bad).await {
            Err(Error::InvalidRequest { reason }) => {
                assert!(reason.contains("not a session id"), "{reason}");
                assert!(!reason.contains('\u{1b}'), "{reason}");
            }
            other => panic!("expected invalid_request for {bad:?}, got {other:?}"),
        }
    }
    // A client description is bounded.
    let mut big = serde_json::Map::new();
    big.insert("device".into(), json!("x".repeat(2000)));
    assert_eq!(
        tokens
            .issue_with_client("dana", &(), &big)
            .await
            .unwrap_err()
            .kind(),
        "invalid_request"
    );
    assert_eq!(tokens.revoke_subject("dana").await.unwrap(), 1);
    assert!(tokens.sessions("dana").await.unwrap().is_empty());
    assert_eq!(tokens.sessions("erik").await.unwrap().len(), 1);
}

/// Refresh-key rotation without logging anyone out (issue 15 item 5): a
/// staged key verifies before it signs, a promoted ring keeps verifying the
/// old key's tokens until its time, then refuses them.
#[tokio::test]
async fn the_refresh_key_rotates_without_logging_anyone_out() {
    let c = clock();
    let store: Arc<dyn jwtkit::RefreshStore> =
        Arc::new(MemoryRefreshStore::new(RefreshPolicy::default()).with_clock(c.clone()));
    let keys: Arc<dyn jwtkit::KeyStore> = Arc::new(MemoryKeyStore::with_clock(c.clone()));
    let service = |ring: RefreshKey| {
        TokenService::builder()
            .shared_key_store(keys.clone())
            .init_key_store(Algorithm::ES256)
            .issuer("https://auth.test")
            .audience("api")
            .clock(c.clone())
            .shared_refresh_store(store.clone())
            .refresh_key(ring)
            .build()
    };
    let mut ring = RefreshKey::generate().unwrap();
    let old_kid = ring.kid().to_owned();
    let before = service(ring.clone()).await.unwrap();
    let alice = before.issue("alice", &()).await.unwrap();

    // Staged: still signs with the old key, already verifies the new one.
    ring.stage().unwrap();
    let staged = service(ring.clone()).await.unwrap();
    let bob = staged.issue("bob", &()).await.unwrap();
    assert_eq!(
        jwt_core::dangerous::insecure_decode_header(&bob.refresh_token)
            .unwrap()
            .kid
            .as_deref(),
        Some(old_kid.as_str())
    );

    // Promoted: signs with the new key; the old key verifies for a day.
    let now = c.now();
    ring.promote(now, now + 86_400).unwrap();
    let after = service(ring.clone()).await.unwrap();
    let carol = after.issue("carol", &()).await.unwrap();
    let new_kid = jwt_core::dangerous::insecure_decode_header(&carol.refresh_token)
        .unwrap()
        .kid
        .unwrap();
    assert_ne!(new_kid, old_kid);
    // A token of the new key refreshes on an instance that only staged it.
    staged.refresh(&carol.refresh_token).await.unwrap();
    // The old key's tokens refresh on the rotated instance.
    let alice2 = after.refresh(&alice.refresh_token).await.unwrap();
    assert!(after
        .introspect(&alice2.refresh_token, None)
        .await
        .unwrap()
        .is_some());
    // After its time the old key verifies nothing.
    c.advance(86_400);
    match after.refresh(&bob.refresh_token).await {
        Err(Error::InvalidGrant {
            reason: GrantRefusal::Invalid(kind),
        }) => assert_eq!(kind, jwt_core::ErrorKind::UnknownKey),
        other => panic!("expected invalid_grant (unknown key), got {other:?}"),
    }
    assert!(
        before.sessions("bob").await.unwrap().len() == 1,
        "the session itself lives on"
    );
}

/// RFC 9701: the introspection answer as a JWT signed with the service's
/// key, `typ` token-introspection+jwt, verifiable with the published JWKS.
#[tokio::test]
async fn the_introspection_answer_can_be_a_signed_jwt() {
    let c = clock();
    let tokens = base(&c).build().await.unwrap();
    let pair = tokens
        .issue("fay", &json!({"scope": "read"}))
        .await
        .unwrap();
    let answer = tokens.introspect(&pair.access_token, None).await.unwrap();
    assert!(answer.is_some());
    let jwt = tokens
        .introspection_jwt(answer, Some("https://rs.example"))
        .await
        .unwrap();
    let inactive = tokens.introspection_jwt(None, None).await.unwrap();
    let jwks = tokens.jwks().await.unwrap();
    let set = jwt_core::KeySet::from_jwks(&jwks);
    let verify = |token: &str, aud: &str| {
        let validation = jwt_core::Validation::new([Algorithm::ES256])
            .issuer("https://auth.test")
            .audience(aud)
            .typ(jwtkit::INTROSPECTION_TYP)
            .optional_exp()
            .clock(c.clone());
        jwt_core::Verifier::with_key_set(set.clone(), validation)
            .unwrap()
            .verify::<Value>(token)
            .unwrap()
            .claims
    };
    let claims = verify(&jwt, "https://rs.example");
    assert_eq!(claims["token_introspection"]["active"], true);
    assert_eq!(claims["token_introspection"]["sub"], "fay");
    assert_eq!(claims["token_introspection"]["scope"], "read");
    assert_eq!(claims["iat"], c.now());
    let claims = verify(&inactive, "api");
    assert_eq!(claims["token_introspection"], json!({"active": false}));
}

/// A refresh token is bound to the audience of its session's access tokens:
/// a service sharing the issuer, refresh key and store but serving another
/// audience refuses it, without consuming it (the attacker's review of the
/// Python package minted an `aud: api-B` token from an `api-A` session).
#[tokio::test]
async fn a_refresh_token_is_bound_to_its_access_audience() {
    let c = clock();
    let store: Arc<dyn jwtkit::RefreshStore> =
        Arc::new(MemoryRefreshStore::new(RefreshPolicy::default()).with_clock(c.clone()));
    let keys: Arc<dyn jwtkit::KeyStore> = Arc::new(MemoryKeyStore::with_clock(c.clone()));
    let ring = RefreshKey::generate().unwrap();
    let service = |aud: &str| {
        TokenService::builder()
            .shared_key_store(keys.clone())
            .init_key_store(Algorithm::ES256)
            .issuer("https://auth.test")
            .audience(aud)
            .clock(c.clone())
            .shared_refresh_store(store.clone())
            .refresh_key(ring.clone())
            .build()
    };
    let a = service("api-A").await.unwrap();
    let b = service("api-B").await.unwrap();
    let pair = a.issue("gus", &json!({"scope": "admin"})).await.unwrap();
    match b.refresh(&pair.refresh_token).await {
        Err(Error::InvalidGrant {
            reason: GrantRefusal::Invalid(kind),
        }) => assert_eq!(kind, jwt_core::ErrorKind::InvalidAudience),
        other => panic!("expected invalid_grant (audience), got {other:?}"),
    }
    assert!(b
        .introspect(&pair.refresh_token, None)
        .await
        .unwrap()
        .is_none());
    // Not consumed: the right service still refreshes it.
    a.refresh(&pair.refresh_token).await.unwrap();
}
