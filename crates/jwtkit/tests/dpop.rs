//! DPoP (RFC 9449) in the TokenService, through its public API: bound
//! issuance and refresh, the resource-side checks, replay, nonces, mode
//! `required`, the verified-token cache, and 50 concurrent identical proofs
//! on memory, Redis and Redis Cluster.

mod common;

use std::sync::Arc;
use std::time::Duration;

use jwtkit::core::dpop::{DpopErrorKind, DpopProof};
use jwtkit::core::SigningKey;
use jwtkit::dpop::{BoundClaims, DpopClient, DpopMode, DpopOptions, NonceKey, NONCE_STEP};
use jwtkit::keys::KeyStore;
use jwtkit::refresh::replay::{RedisReplayCache, ReplayCache};

use common::Unreachable;
use jwtkit::{
    AccessClaims, Algorithm, Confirmation, DpopBinding, DpopRefusal, Error, GrantRefusal,
    ManualClock, MemoryKeyStore, RefreshKey, RefreshStore, TokenService, TokenServiceBuilder,
};
use serde_json::{json, Value};

const T0: i64 = 1_800_000_000;
const TOKEN_URL: &str = "https://auth.test/token";
const API_URL: &str = "https://api.test/userinfo";

fn base(clock: &Arc<ManualClock>, keys: Arc<dyn KeyStore>) -> TokenServiceBuilder {
    TokenService::builder()
        .shared_key_store(keys)
        .init_key_store(Algorithm::ES256)
        .issuer("https://auth.test")
        .audience("api")
        .clock(clock.clone())
}

fn memory_keys(clock: &Arc<ManualClock>) -> Arc<dyn KeyStore> {
    Arc::new(MemoryKeyStore::with_clock(clock.clone()))
}

async fn service(clock: &Arc<ManualClock>, options: DpopOptions) -> TokenService {
    base(clock, memory_keys(clock))
        .dpop(options)
        .build()
        .await
        .unwrap()
}

async fn allowed(clock: &Arc<ManualClock>) -> TokenService {
    service(clock, DpopOptions::new(DpopMode::Allowed)).await
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(T0))
}

fn client(clock: &Arc<ManualClock>) -> DpopClient {
    DpopClient::generate(Algorithm::ES256)
        .unwrap()
        .with_clock(clock.clone())
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&jwtkit::core::b64::decode(part.as_bytes(), "payload").unwrap()).unwrap()
}

/// A proof for the token endpoint, checked: the binding to issue with.
async fn bind(tokens: &TokenService, client: &DpopClient) -> DpopBinding {
    let proof = client.proof("POST", TOKEN_URL, None).unwrap();
    tokens
        .check_dpop(&proof, "POST", TOKEN_URL, None)
        .await
        .unwrap()
}

/// A resource request with the bound token and a fresh proof.
async fn call(
    tokens: &TokenService,
    client: &DpopClient,
    access: &str,
) -> Result<BoundClaims<AccessClaims>, Error> {
    let proof = client.proof("GET", API_URL, Some(access)).unwrap();
    tokens
        .verify_access_dpop::<AccessClaims>(access, &proof, "GET", API_URL)
        .await
}

fn refusal(result: Result<impl std::fmt::Debug, Error>) -> DpopRefusal {
    match result {
        Err(Error::Dpop { reason, .. }) => reason,
        other => panic!("expected a DPoP refusal, got {other:?}"),
    }
}

fn grant_refusal(result: Result<impl std::fmt::Debug, Error>) -> GrantRefusal {
    match result {
        Err(Error::InvalidGrant { reason }) => reason,
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

#[tokio::test]
async fn bound_issuance_carries_cnf_jkt_and_token_type_dpop() {
    let c = clock();
    let tokens = allowed(&c).await;
    let alice = client(&c);
    let binding = bind(&tokens, &alice).await;
    assert_eq!(binding.jkt(), alice.jkt());

    let pair = tokens
        .issue_dpop("alice", &json!({"scope": "read"}), Some(&binding))
        .await
        .unwrap();
    assert_eq!(pair.token_type, "DPoP");
    assert_eq!(
        payload(&pair.access_token)["cnf"],
        json!({"jkt": alice.jkt()})
    );
    // RFC 9449 §5: the refresh token is bound too, in its signed claims.
    assert_eq!(
        payload(&pair.refresh_token)["cnf"],
        json!({"jkt": alice.jkt()})
    );
    assert_eq!(
        serde_json::to_value(&pair).unwrap()["token_type"],
        "DPoP",
        "the token response says DPoP"
    );

    let bound = call(&tokens, &alice, &pair.access_token).await.unwrap();
    assert_eq!(bound.jkt, alice.jkt());
    assert_eq!(bound.claims.sub, "alice");
    assert_eq!(bound.claims.cnf, Some(Confirmation::jkt(alice.jkt())));

    // Introspection shows the binding (RFC 9449 §6.2).
    let answer = tokens
        .introspect(&pair.access_token, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["cnf"], json!({"jkt": alice.jkt()}));
    let answer = tokens
        .introspect(&pair.refresh_token, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(answer["cnf"], json!({"jkt": alice.jkt()}));

    // With a client description too.
    let client_info = json!({"device": "laptop"}).as_object().unwrap().clone();
    let pair = tokens
        .issue_with_client_dpop(
            "alice",
            &(),
            &client_info,
            Some(&bind(&tokens, &alice).await),
        )
        .await
        .unwrap();
    assert_eq!(pair.token_type, "DPoP");
    assert_eq!(payload(&pair.access_token)["cnf"]["jkt"], alice.jkt());

    // Unbound issuance is unchanged in mode `allowed`.
    let plain = tokens.issue("bob", &()).await.unwrap();
    assert_eq!(plain.token_type, "Bearer");
    assert!(payload(&plain.access_token).get("cnf").is_none());
    assert!(payload(&plain.refresh_token).get("cnf").is_none());
    let claims: AccessClaims = tokens.verify_access(&plain.access_token).unwrap();
    assert_eq!((claims.sub.as_str(), claims.cnf), ("bob", None));
    let answer = tokens
        .introspect(&plain.access_token, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer.get("cnf").is_none());
}

/// A refresh of a bound session without a proof, or with another key's,
/// is refused before anything is consumed: the right key then refreshes,
/// and the session is live throughout.
async fn bound_refresh_flow(tokens: &TokenService, c: &Arc<ManualClock>) {
    let alice = client(c);
    let mallory = client(c);
    let pair = tokens
        .issue_dpop(
            "alice",
            &json!({"scope": "read"}),
            Some(&bind(tokens, &alice).await),
        )
        .await
        .unwrap();

    assert_eq!(
        grant_refusal(tokens.refresh(&pair.refresh_token).await),
        GrantRefusal::DpopKeyMismatch,
        "no proof"
    );
    let stolen = bind(tokens, &mallory).await;
    assert_eq!(
        grant_refusal(
            tokens
                .refresh_dpop(&pair.refresh_token, Some(&stolen))
                .await
        ),
        GrantRefusal::DpopKeyMismatch,
        "another key's proof"
    );
    let err = tokens
        .refresh_dpop(&pair.refresh_token, Some(&stolen))
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error(), Some("invalid_grant"));
    // Nothing consumed, nothing revoked.
    let live = tokens
        .introspect(&pair.refresh_token, Some("refresh_token"))
        .await
        .unwrap();
    assert!(live.is_some(), "the refresh token is still active");
    assert_eq!(tokens.sessions("alice").await.unwrap().len(), 1);
    assert!(call(tokens, &alice, &pair.access_token).await.is_ok());

    let next = tokens
        .refresh_dpop(&pair.refresh_token, Some(&bind(tokens, &alice).await))
        .await
        .expect("the key's holder refreshes");
    assert_eq!(next.token_type, "DPoP");
    assert_eq!(next.session, pair.session);
    assert_eq!(payload(&next.access_token)["cnf"]["jkt"], alice.jkt());
    assert_eq!(payload(&next.access_token)["scope"], "read");
    assert_eq!(payload(&next.refresh_token)["cnf"]["jkt"], alice.jkt());
    assert_eq!(
        call(tokens, &alice, &next.access_token)
            .await
            .unwrap()
            .claims
            .sub,
        "alice"
    );
    // The successor is bound as well.
    assert_eq!(
        grant_refusal(tokens.refresh(&next.refresh_token).await),
        GrantRefusal::DpopKeyMismatch
    );
    // The first token was consumed by the successful refresh only.
    assert_eq!(
        grant_refusal(
            tokens
                .refresh_dpop(&pair.refresh_token, Some(&bind(tokens, &alice).await))
                .await
        ),
        GrantRefusal::Reused
    );
}

#[tokio::test]
async fn a_bound_refresh_needs_the_sessions_key_and_consumes_nothing_without_it() {
    let c = clock();
    let tokens = allowed(&c).await;
    bound_refresh_flow(&tokens, &c).await;
}

#[tokio::test]
async fn an_unbound_session_refreshed_with_a_proof_is_bound_from_then_on() {
    let c = clock();
    let tokens = allowed(&c).await;
    let alice = client(&c);
    let pair = tokens.issue("alice", &()).await.unwrap();
    let next = tokens
        .refresh_dpop(&pair.refresh_token, Some(&bind(&tokens, &alice).await))
        .await
        .unwrap();
    assert_eq!(next.token_type, "DPoP");
    assert_eq!(payload(&next.refresh_token)["cnf"]["jkt"], alice.jkt());
    assert_eq!(
        grant_refusal(tokens.refresh(&next.refresh_token).await),
        GrantRefusal::DpopKeyMismatch
    );
}

#[tokio::test]
async fn a_replayed_proof_is_refused_and_jtis_are_per_key() {
    let c = clock();
    let tokens = allowed(&c).await;
    let alice = client(&c);
    let proof = alice.proof("POST", TOKEN_URL, None).unwrap();
    tokens
        .check_dpop(&proof, "POST", TOKEN_URL, None)
        .await
        .unwrap();
    let err = tokens
        .check_dpop(&proof, "POST", TOKEN_URL, None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Dpop {
            reason: DpopRefusal::Replayed,
            ..
        }
    ));
    assert_eq!(err.kind(), "dpop");
    assert_eq!(err.oauth_error(), Some("invalid_dpop_proof"));
    assert!(err.is_rejection() && !err.is_retryable());

    // At the resource.
    let pair = tokens
        .issue_dpop("alice", &(), Some(&bind(&tokens, &alice).await))
        .await
        .unwrap();
    let proof = alice
        .proof("GET", API_URL, Some(&pair.access_token))
        .unwrap();
    let verify =
        || tokens.verify_access_dpop::<AccessClaims>(&pair.access_token, &proof, "GET", API_URL);
    verify().await.unwrap();
    assert_eq!(refusal(verify().await), DpopRefusal::Replayed);

    // A `jti` is unique per key only (RFC 9449 §11.1): two clients that
    // happen to choose the same one are both accepted.
    let keys = [
        SigningKey::generate(Algorithm::ES256).unwrap(),
        SigningKey::generate(Algorithm::ES256).unwrap(),
    ];
    for key in &keys {
        let proof = DpopProof::builder(key, Algorithm::ES256)
            .htm("POST")
            .htu(TOKEN_URL)
            .jti("the-same-jti")
            .clock(c.clone())
            .sign()
            .unwrap();
        tokens
            .check_dpop(&proof, "POST", TOKEN_URL, None)
            .await
            .expect("another key's jti is its own");
    }
}

#[tokio::test]
async fn a_bound_token_presented_as_bearer_is_refused_even_with_dpop_off() {
    let c = clock();
    let keys = memory_keys(&c);
    let tokens = base(&c, keys.clone())
        .dpop(DpopOptions::new(DpopMode::Allowed))
        .build()
        .await
        .unwrap();
    let alice = client(&c);
    let pair = tokens
        .issue_dpop("alice", &(), Some(&bind(&tokens, &alice).await))
        .await
        .unwrap();
    assert_eq!(
        refusal(tokens.verify_access::<AccessClaims>(&pair.access_token)),
        DpopRefusal::BoundTokenAsBearer
    );
    assert_eq!(
        refusal(tokens.verify_access::<Value>(&pair.access_token)),
        DpopRefusal::BoundTokenAsBearer,
        "whatever the claims type"
    );
    let err = tokens
        .verify_access_reloading::<AccessClaims>(&pair.access_token)
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error(), Some("invalid_token"));
    assert!(matches!(
        err,
        Error::Dpop {
            reason: DpopRefusal::BoundTokenAsBearer,
            ..
        }
    ));

    // A resource server with DPoP off, on the same keys.
    let off = base(&c, keys).build().await.unwrap();
    assert_eq!(off.dpop_mode(), DpopMode::Off);
    assert_eq!(
        refusal(off.verify_access::<AccessClaims>(&pair.access_token)),
        DpopRefusal::BoundTokenAsBearer
    );
    // It checks no proofs, and binds nothing.
    let proof = alice
        .proof("GET", API_URL, Some(&pair.access_token))
        .unwrap();
    assert_eq!(
        refusal(
            off.verify_access_dpop::<AccessClaims>(&pair.access_token, &proof, "GET", API_URL)
                .await
        ),
        DpopRefusal::NotEnabled
    );
    assert_eq!(
        refusal(
            off.issue_dpop("alice", &(), Some(&bind(&tokens, &alice).await))
                .await
        ),
        DpopRefusal::NotEnabled
    );
    assert!(off.dpop_algorithms().is_empty());
    assert_eq!(off.dpop_nonce(), None);
}

#[tokio::test]
async fn proofs_for_another_method_uri_token_key_or_time_are_refused() {
    let c = clock();
    let tokens = allowed(&c).await;
    let alice = client(&c);
    let pair = tokens
        .issue_dpop("alice", &(), Some(&bind(&tokens, &alice).await))
        .await
        .unwrap();
    let access = pair.access_token.as_str();
    let tokens = &tokens;
    let check = |proof: String| async move {
        tokens
            .verify_access_dpop::<AccessClaims>(access, &proof, "GET", API_URL)
            .await
    };
    let kind = |r: Result<BoundClaims<AccessClaims>, Error>| match refusal(r) {
        DpopRefusal::Proof(kind) => kind,
        other => panic!("expected a proof refusal, got {other:?}"),
    };
    assert_eq!(
        kind(check(alice.proof("POST", API_URL, Some(access)).unwrap()).await),
        DpopErrorKind::HtmMismatch
    );
    assert_eq!(
        kind(
            check(
                alice
                    .proof("GET", "https://api.test/other", Some(access))
                    .unwrap()
            )
            .await
        ),
        DpopErrorKind::HtuMismatch
    );
    assert_eq!(
        kind(check(alice.proof("GET", API_URL, Some("another token")).unwrap()).await),
        DpopErrorKind::AthMismatch
    );
    assert_eq!(
        kind(check(alice.proof("GET", API_URL, None).unwrap()).await),
        DpopErrorKind::MissingAth
    );
    // The service's clock decides: the proof is 61 s old for it.
    let old = alice.proof("GET", API_URL, Some(access)).unwrap();
    c.advance(61);
    assert_eq!(kind(check(old).await), DpopErrorKind::IatTooOld);
    // Another key, with everything else right: the token is not its.
    let mallory = client(&c);
    assert_eq!(
        refusal(check(mallory.proof("GET", API_URL, Some(access)).unwrap()).await),
        DpopRefusal::KeyMismatch
    );
    // Query and fragment are ignored, on either side.
    let proof = alice
        .proof("GET", &format!("{API_URL}?page=2#top"), Some(access))
        .unwrap();
    tokens
        .verify_access_dpop::<AccessClaims>(access, &proof, "GET", &format!("{API_URL}?x=1"))
        .await
        .unwrap();
    // A refusal's message says what to fix; the oauth code is the RFC's.
    let err = check(alice.proof("GET", API_URL, Some("another token")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error(), Some("invalid_dpop_proof"));
    assert!(err.to_string().contains("`ath`"), "{err}");
}

#[tokio::test]
async fn a_nonce_challenge_then_a_retry_with_the_nonce_works() {
    let c = clock();
    let tokens = service(
        &c,
        DpopOptions::new(DpopMode::Allowed).nonces(NonceKey::generate().unwrap()),
    )
    .await;
    let alice = client(&c);
    // Token endpoint: the first proof has no nonce.
    let proof = alice.proof("POST", TOKEN_URL, None).unwrap();
    let err = tokens
        .check_dpop(&proof, "POST", TOKEN_URL, None)
        .await
        .unwrap_err();
    assert!(err.needs_dpop_nonce(), "{err:?}");
    assert_eq!(err.oauth_error(), Some("use_dpop_nonce"));
    let nonce = tokens.dpop_nonce().expect("nonces are on");
    alice.observe_nonce(&nonce);
    let binding = bind(&tokens, &alice).await;
    let pair = tokens
        .issue_dpop("alice", &(), Some(&binding))
        .await
        .unwrap();
    // The resource accepts the same nonce.
    call(&tokens, &alice, &pair.access_token).await.unwrap();
    // One step later the previous nonce is still accepted, two steps later not.
    let step = NONCE_STEP.as_secs() as i64;
    c.advance(step);
    call(&tokens, &alice, &pair.access_token).await.unwrap();
    c.advance(step);
    let err = call(&tokens, &alice, &pair.access_token).await.unwrap_err();
    assert!(err.needs_dpop_nonce());
    assert_eq!(
        refusal(Err::<(), _>(err)),
        DpopRefusal::Proof(DpopErrorKind::InvalidNonce)
    );
    let fresh = tokens.dpop_nonce().unwrap();
    assert_ne!(fresh, nonce, "nonces rotate");
    alice.observe_nonce(&fresh);
    call(&tokens, &alice, &pair.access_token).await.unwrap();

    // Replicas sharing the nonce key accept each other's nonces.
    let secret = [42u8; 32];
    let a = service(
        &c,
        DpopOptions::new(DpopMode::Allowed).nonces(NonceKey::from_secret(&secret).unwrap()),
    )
    .await;
    let b = service(
        &c,
        DpopOptions::new(DpopMode::Allowed).nonces(NonceKey::from_secret(&secret).unwrap()),
    )
    .await;
    assert_eq!(a.dpop_nonce(), b.dpop_nonce());
}

#[tokio::test]
async fn mode_required_refuses_everything_unbound() {
    let c = clock();
    let keys = memory_keys(&c);
    // Shared with an `allowed` service below, which issues unbound tokens.
    let store: Arc<dyn RefreshStore> = Arc::new(
        jwtkit::MemoryRefreshStore::new(jwtkit::RefreshPolicy::default()).with_clock(c.clone()),
    );
    let refresh_key = RefreshKey::generate().unwrap();
    let tokens = base(&c, keys.clone())
        .shared_refresh_store(store.clone())
        .refresh_key(refresh_key.clone())
        .dpop(DpopOptions::new(DpopMode::Required))
        .build()
        .await
        .unwrap();
    assert_eq!(tokens.dpop_mode(), DpopMode::Required);
    let err = tokens.issue("alice", &()).await.unwrap_err();
    assert!(matches!(
        err,
        Error::Dpop {
            reason: DpopRefusal::ProofRequired,
            ..
        }
    ));
    assert_eq!(err.oauth_error(), Some("invalid_request"));
    assert!(err.to_string().contains("DPoP proof is required"), "{err}");
    assert_eq!(
        refusal(tokens.issue_dpop("alice", &(), None).await),
        DpopRefusal::ProofRequired
    );
    assert_eq!(
        refusal(
            tokens
                .issue_with_client("alice", &(), &serde_json::Map::new())
                .await
        ),
        DpopRefusal::ProofRequired
    );

    // Tokens of an `allowed` service on the same keys and issuer.
    let lenient = base(&c, keys)
        .shared_refresh_store(store)
        .refresh_key(refresh_key)
        .dpop(DpopOptions::new(DpopMode::Allowed))
        .build()
        .await
        .unwrap();
    let unbound = lenient.issue("alice", &()).await.unwrap();
    assert_eq!(
        refusal(tokens.verify_access::<AccessClaims>(&unbound.access_token)),
        DpopRefusal::UnboundToken,
        "a bearer token"
    );
    let alice = client(&c);
    let proof = alice
        .proof("GET", API_URL, Some(&unbound.access_token))
        .unwrap();
    assert_eq!(
        refusal(
            tokens
                .verify_access_dpop::<AccessClaims>(&unbound.access_token, &proof, "GET", API_URL)
                .await
        ),
        DpopRefusal::UnboundToken,
        "an unbound token with a proof"
    );
    // Refreshing the unbound session without a proof: refused, not consumed.
    assert_eq!(
        refusal(tokens.refresh(&unbound.refresh_token).await),
        DpopRefusal::ProofRequired
    );
    // Bound, everything works.
    let pair = tokens
        .issue_dpop("alice", &(), Some(&bind(&tokens, &alice).await))
        .await
        .unwrap();
    call(&tokens, &alice, &pair.access_token).await.unwrap();
    tokens
        .refresh_dpop(&unbound.refresh_token, Some(&bind(&tokens, &alice).await))
        .await
        .expect("the unbound session, refreshed with a proof");
}

#[tokio::test]
async fn an_unbound_token_with_a_dpop_proof_is_refused_in_mode_allowed() {
    let c = clock();
    let tokens = allowed(&c).await;
    let alice = client(&c);
    let unbound = tokens.issue("alice", &()).await.unwrap();
    let err = call(&tokens, &alice, &unbound.access_token)
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error(), Some("invalid_token"));
    assert_eq!(refusal(Err::<(), _>(err)), DpopRefusal::UnboundToken);
}

/// The verified-token cache answers the token part; the proof is checked on
/// every request all the same.
#[tokio::test]
async fn a_cache_hit_still_checks_the_proof() {
    let c = clock();
    let tokens = allowed(&c).await;
    let alice = client(&c);
    let pair = tokens
        .issue_dpop("alice", &(), Some(&bind(&tokens, &alice).await))
        .await
        .unwrap();
    for _ in 0..3 {
        call(&tokens, &alice, &pair.access_token).await.unwrap();
    }
    let hits = tokens.token_cache_stats().unwrap().hits;
    assert!(hits >= 1, "the token is answered from the cache");
    let proof = alice
        .proof("GET", API_URL, Some(&pair.access_token))
        .unwrap();
    let verify = |proof: String| {
        let tokens = tokens.clone();
        let access = pair.access_token.clone();
        async move {
            tokens
                .verify_access_dpop::<AccessClaims>(&access, &proof, "GET", API_URL)
                .await
        }
    };
    verify(proof.clone()).await.unwrap();
    assert_eq!(refusal(verify(proof).await), DpopRefusal::Replayed);
    assert_eq!(
        refusal(verify("not a proof".into()).await),
        DpopRefusal::Proof(DpopErrorKind::Malformed)
    );
    assert_eq!(
        refusal(tokens.verify_access::<AccessClaims>(&pair.access_token)),
        DpopRefusal::BoundTokenAsBearer,
        "no proof at all"
    );
    assert!(
        tokens.token_cache_stats().unwrap().hits > hits,
        "the refused requests were cache hits"
    );
}

#[tokio::test]
async fn cnf_is_reserved_and_dpop_settings_are_checked() {
    let c = clock();
    let tokens = allowed(&c).await;
    match tokens
        .issue("alice", &json!({"cnf": {"jkt": "someone-elses-key"}}))
        .await
    {
        Err(Error::InvalidRequest { reason }) => assert!(reason.contains("`cnf`"), "{reason}"),
        other => panic!("expected invalid_request, got {other:?}"),
    }
    assert!(jwtkit::RESERVED_CLAIMS.contains(&"cnf"));

    let refused = |options: DpopOptions| {
        let c = c.clone();
        async move {
            match base(&c, memory_keys(&c)).dpop(options).build().await {
                Err(Error::Config { setting, reason }) => (setting, reason),
                other => panic!("expected a Config error, got {other:?}"),
            }
        }
    };
    let (setting, reason) =
        refused(DpopOptions::new(DpopMode::Allowed).algorithms([Algorithm::HS256])).await;
    assert_eq!(setting, "dpop");
    assert!(reason.contains("symmetric"), "{reason}");
    let (setting, _) = refused(DpopOptions::new(DpopMode::Allowed).algorithms(Vec::new())).await;
    assert_eq!(setting, "dpop");
    for window in [Duration::ZERO, Duration::from_millis(1500)] {
        let (setting, _) = refused(DpopOptions::new(DpopMode::Allowed).iat_window(window)).await;
        assert_eq!(setting, "dpop.iat_window");
    }
    let (setting, reason) =
        refused(DpopOptions::new(DpopMode::Required).iat_window(Duration::from_secs(7200))).await;
    assert_eq!(setting, "dpop");
    assert!(reason.contains("3600s"), "{reason}");

    // The defaults: every asymmetric algorithm, published for `algs=`.
    let algs = tokens.dpop_algorithms();
    assert!(algs.contains(&Algorithm::ES256) && algs.contains(&Algorithm::EdDSA));
    assert!(algs.iter().all(|a| !a.is_symmetric()));
    let only = service(
        &c,
        DpopOptions::new(DpopMode::Allowed).algorithms([Algorithm::EdDSA]),
    )
    .await;
    assert_eq!(only.dpop_algorithms(), [Algorithm::EdDSA]);
    let es256 = client(&c);
    let proof = es256.proof("POST", TOKEN_URL, None).unwrap();
    assert_eq!(
        refusal(only.check_dpop(&proof, "POST", TOKEN_URL, None).await),
        DpopRefusal::Proof(DpopErrorKind::InvalidAlgorithm)
    );
}

#[test]
fn the_client_helper_strips_the_query_keeps_the_nonce_and_hides_its_key() {
    let c = clock();
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let thumbprint = key.thumbprint().unwrap();
    let alice = DpopClient::new(key, Algorithm::ES256)
        .unwrap()
        .with_clock(c.clone());
    assert_eq!(alice.jkt(), thumbprint);
    let proof = alice
        .proof("GET", "https://api.test/x?secret=1#frag", Some("tok"))
        .unwrap();
    let claims = payload(&proof);
    assert_eq!(claims["htu"], "https://api.test/x");
    assert_eq!(claims["htm"], "GET");
    assert_eq!(claims["iat"], T0);
    assert_eq!(claims["ath"], jwtkit::core::dpop::ath_of("tok"));
    assert!(claims.get("nonce").is_none());
    alice.observe_nonce("n-1");
    alice.observe_nonce("");
    assert_eq!(
        payload(&alice.proof("GET", API_URL, None).unwrap())["nonce"],
        "n-1"
    );

    let mut headers = axum::http::HeaderMap::new();
    assert!(!alice.observe_headers(&headers));
    headers.insert("DPoP-Nonce", "n-2".parse().unwrap());
    assert!(alice.observe_headers(&headers));
    assert_eq!(alice.nonce().as_deref(), Some("n-2"));

    let debug = format!("{alice:?}");
    assert!(
        debug.contains(&thumbprint) && debug.contains("ES256"),
        "{debug}"
    );
    assert!(
        !debug.contains("n-2") && !debug.contains("SigningKey"),
        "{debug}"
    );

    assert!(matches!(
        DpopClient::generate(Algorithm::HS256),
        Err(Error::Config {
            setting: "dpop_client.algorithm",
            ..
        })
    ));
    let ec_key = SigningKey::generate(Algorithm::ES256).unwrap();
    assert!(matches!(
        DpopClient::new(ec_key, Algorithm::RS256),
        Err(Error::Encoding(_))
    ));
    assert!(matches!(
        alice.proof("GET", "/relative", None),
        Err(Error::InvalidRequest { .. })
    ));
}

#[tokio::test]
async fn a_replay_cache_outage_refuses_retryably() {
    let c = clock();
    let tokens = service(
        &c,
        DpopOptions::new(DpopMode::Allowed).replay_cache(Arc::new(Unreachable)),
    )
    .await;
    let alice = client(&c);
    let proof = alice.proof("POST", TOKEN_URL, None).unwrap();
    let err = tokens
        .check_dpop(&proof, "POST", TOKEN_URL, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReplayCache(_)), "{err:?}");
    assert_eq!(err.kind(), "replay_cache");
    assert!(err.is_retryable() && !err.is_rejection());
    assert_eq!(err.oauth_error(), None);
}

/// `tasks` concurrent presentations of one proof with one token: exactly
/// one accepted, every other one a replay.
async fn concurrent_identical_proofs(tokens: TokenService, clock: &Arc<ManualClock>, tasks: usize) {
    let alice = client(clock);
    let pair = tokens
        .issue_dpop("alice", &(), Some(&bind(&tokens, &alice).await))
        .await
        .unwrap();
    let proof = alice
        .proof("GET", API_URL, Some(&pair.access_token))
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (tokens, barrier) = (tokens.clone(), barrier.clone());
        let (access, proof) = (pair.access_token.clone(), proof.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            tokens
                .verify_access_dpop::<AccessClaims>(&access, &proof, "GET", API_URL)
                .await
        }));
    }
    let (mut accepted, mut replayed) = (0, 0);
    for handle in handles {
        match handle.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(Error::Dpop {
                reason: DpopRefusal::Replayed,
                ..
            }) => replayed += 1,
            Err(e) => panic!("unexpected error in the race: {e:?}"),
        }
    }
    assert_eq!((accepted, replayed), (1, tasks - 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_identical_proofs_one_accepted_in_memory() {
    let c = clock();
    concurrent_identical_proofs(allowed(&c).await, &c, 50).await;
}

/// A service whose refresh store and replay cache are on Redis (standalone,
/// or the cluster of `nodes`), on real time as Redis is.
async fn redis_service(
    nodes: Option<Vec<String>>,
    url: Option<String>,
) -> (TokenService, Arc<ManualClock>) {
    let c = Arc::new(ManualClock::starting_now());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut builder = jwtkit::RedisRefreshStore::builder()
        .key_prefix(format!("jwtkit-test:dpop:{}:{nanos}:", std::process::id()))
        .clock(c.clone());
    builder = match (nodes, url) {
        (Some(nodes), _) => builder.cluster_nodes(nodes),
        (None, Some(url)) => builder.url(url),
        (None, None) => unreachable!(),
    };
    let store = builder
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to the test Redis: {e}"));
    let replay: Arc<dyn ReplayCache> = Arc::new(RedisReplayCache::new(&store));
    let store: Arc<dyn RefreshStore> = Arc::new(store);
    let tokens = base(&c, memory_keys(&c))
        .shared_refresh_store(store)
        .refresh_key(RefreshKey::generate().unwrap())
        .dpop(DpopOptions::new(DpopMode::Allowed).replay_cache(replay))
        .build()
        .await
        .unwrap();
    (tokens, c)
}

fn redis_url() -> Option<String> {
    jwtkit_test_support::service("JWTKIT_TEST_REDIS_URL", "Redis")
}

fn cluster_nodes() -> Option<Vec<String>> {
    let nodes = jwtkit_test_support::service("JWTKIT_TEST_REDIS_CLUSTER", "Redis Cluster")?;
    Some(
        nodes
            .split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_identical_proofs_one_accepted_on_redis() {
    let Some(url) = redis_url() else { return };
    let (tokens, c) = redis_service(None, Some(url)).await;
    concurrent_identical_proofs(tokens, &c, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_identical_proofs_one_accepted_on_redis_cluster() {
    let Some(nodes) = cluster_nodes() else { return };
    let (tokens, c) = redis_service(Some(nodes), None).await;
    concurrent_identical_proofs(tokens, &c, 50).await;
}

#[tokio::test]
async fn a_bound_refresh_needs_the_sessions_key_on_redis() {
    let Some(url) = redis_url() else { return };
    let (tokens, c) = redis_service(None, Some(url)).await;
    bound_refresh_flow(&tokens, &c).await;
}

#[tokio::test]
async fn a_bound_refresh_needs_the_sessions_key_on_redis_cluster() {
    let Some(nodes) = cluster_nodes() else { return };
    let (tokens, c) = redis_service(Some(nodes), None).await;
    bound_refresh_flow(&tokens, &c).await;
}
