//! The axum layer with DPoP (RFC 9449 §7.1, §9): the exact challenges and
//! headers it answers with, the request URI behind a proxy, the extractors.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use jwtkit::axum::{BearerAuthLayer, Claims, DpopKey};
use jwtkit::core::dpop::DpopProof;
use jwtkit::core::SigningKey;
use jwtkit::dpop::{DpopClient, DpopMode, DpopOptions, NonceKey, NONCE_STEP};
use jwtkit::{AccessClaims, Algorithm, ManualClock, MemoryKeyStore, TokenPair, TokenService};
use tower::ServiceExt;

use common::Unreachable;

const T0: i64 = 1_800_000_000;
const TOKEN_URL: &str = "https://auth.test/token";
const PUBLIC: &str = "https://api.example.com";

async fn service(clock: &Arc<ManualClock>, options: Option<DpopOptions>) -> TokenService {
    let mut builder = TokenService::builder()
        .key_store(MemoryKeyStore::with_clock(clock.clone()))
        .init_key_store(Algorithm::ES256)
        .issuer("https://auth.test")
        .audience("api")
        .clock(clock.clone());
    if let Some(options) = options {
        builder = builder.dpop(options);
    }
    builder.build().await.unwrap()
}

async fn me(Claims(claims): Claims<AccessClaims>, key: Option<DpopKey>) -> String {
    match key {
        Some(DpopKey(jkt)) => format!("{} dpop {jkt}", claims.sub),
        None => format!("{} bearer", claims.sub),
    }
}

async fn bound_only(DpopKey(jkt): DpopKey) -> String {
    jkt
}

fn app(layer: BearerAuthLayer<AccessClaims>) -> Router {
    Router::new()
        .route("/userinfo", get(me))
        .route("/bound-only", get(bound_only))
        .layer(layer)
}

struct Setup {
    tokens: TokenService,
    clock: Arc<ManualClock>,
    client: DpopClient,
    pair: TokenPair,
}

async fn setup(options: DpopOptions) -> Setup {
    let clock = Arc::new(ManualClock::new(T0));
    let tokens = service(&clock, Some(options)).await;
    let client = DpopClient::generate(Algorithm::ES256)
        .unwrap()
        .with_clock(clock.clone());
    let pair = bound_pair(&tokens, &client).await;
    Setup {
        tokens,
        clock,
        client,
        pair,
    }
}

async fn bound_pair(tokens: &TokenService, client: &DpopClient) -> TokenPair {
    if let Some(nonce) = tokens.dpop_nonce() {
        client.observe_nonce(&nonce);
    }
    let proof = client.proof("POST", TOKEN_URL, None).unwrap();
    let binding = tokens
        .check_dpop(&proof, "POST", TOKEN_URL, None)
        .await
        .unwrap();
    tokens
        .issue_dpop("alice", &(), Some(&binding))
        .await
        .unwrap()
}

fn get_request(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .uri(path)
        .header("host", "api.internal:8080");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let res: Response = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn challenges(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn algs(tokens: &TokenService) -> String {
    let names: Vec<&str> = tokens
        .dpop_algorithms()
        .iter()
        .map(|a| a.as_str())
        .collect();
    format!("algs=\"{}\"", names.join(" "))
}

/// A DPoP request for `path` (proof for `PUBLIC` + `path`).
async fn dpop_get(app: &Router, s: &Setup, path: &str) -> (StatusCode, HeaderMap, String) {
    let proof = s
        .client
        .proof(
            "GET",
            &format!("{PUBLIC}{path}"),
            Some(&s.pair.access_token),
        )
        .unwrap();
    let auth = format!("DPoP {}", s.pair.access_token);
    send(
        app,
        get_request(path, &[("authorization", &auth), ("dpop", &proof)]),
    )
    .await
}

#[tokio::test]
async fn a_dpop_request_is_let_through_with_the_key_in_the_extensions() {
    let s = setup(DpopOptions::new(DpopMode::Allowed)).await;
    let app = app(BearerAuthLayer::new(s.tokens.clone())
        .public_url(PUBLIC)
        .unwrap());
    let (status, headers, body) = dpop_get(&app, &s, "/userinfo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, format!("alice dpop {}", s.client.jkt()));
    assert!(headers.get("dpop-nonce").is_none(), "nonces are off");
    let (status, _, body) = dpop_get(&app, &s, "/bound-only").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, s.client.jkt()));

    // A bearer token still works in mode `allowed`, without a key.
    let plain = s.tokens.issue("bob", &()).await.unwrap();
    let auth = format!("Bearer {}", plain.access_token);
    let (status, _, body) = send(&app, get_request("/userinfo", &[("authorization", &auth)])).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "bob bearer"));
    // A handler that needs a DPoP key refuses it.
    let (status, headers, _) = send(
        &app,
        get_request("/bound-only", &[("authorization", &auth)]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&headers),
        ["DPoP error=\"invalid_token\", error_description=\"the access token was refused: unbound_token\""]
    );
}

#[tokio::test]
async fn refused_proofs_get_the_rfc_9449_challenge_exactly() {
    let s = setup(DpopOptions::new(DpopMode::Allowed)).await;
    let app = app(BearerAuthLayer::new(s.tokens.clone())
        .public_url(PUBLIC)
        .unwrap());
    let auth = format!("DPoP {}", s.pair.access_token);
    let expect = |kind: &str| {
        format!(
            "DPoP error=\"invalid_dpop_proof\", error_description=\"the DPoP proof was refused: {kind}\", {}",
            algs(&s.tokens)
        )
    };

    // A proof for another URI.
    let proof = s
        .client
        .proof(
            "GET",
            "https://elsewhere.example/userinfo",
            Some(&s.pair.access_token),
        )
        .unwrap();
    let (status, headers, body) = send(
        &app,
        get_request("/userinfo", &[("authorization", &auth), ("dpop", &proof)]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&headers), [expect("htu_mismatch")]);
    assert_eq!(headers["cache-control"], "no-store");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("https://api.example.com/userinfo"),
        "the full message names the URI the server expects: {body}"
    );

    // Two DPoP headers.
    let p1 = s
        .client
        .proof(
            "GET",
            &format!("{PUBLIC}/userinfo"),
            Some(&s.pair.access_token),
        )
        .unwrap();
    let p2 = s
        .client
        .proof(
            "GET",
            &format!("{PUBLIC}/userinfo"),
            Some(&s.pair.access_token),
        )
        .unwrap();
    let (status, headers, _) = send(
        &app,
        get_request(
            "/userinfo",
            &[("authorization", &auth), ("dpop", &p1), ("dpop", &p2)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&headers), [expect("multiple_proofs")]);

    // No DPoP header.
    let (status, headers, _) =
        send(&app, get_request("/userinfo", &[("authorization", &auth)])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&headers), [expect("missing_proof")]);

    // A replayed proof: the first use passes (the token is cached after a
    // few requests: the proof is checked all the same).
    for _ in 0..3 {
        assert_eq!(dpop_get(&app, &s, "/userinfo").await.0, StatusCode::OK);
    }
    let proof = s
        .client
        .proof(
            "GET",
            &format!("{PUBLIC}/userinfo"),
            Some(&s.pair.access_token),
        )
        .unwrap();
    let req = || get_request("/userinfo", &[("authorization", &auth), ("dpop", &proof)]);
    assert_eq!(send(&app, req()).await.0, StatusCode::OK);
    let (status, headers, _) = send(&app, req()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&headers), [expect("replayed")]);
    assert!(s.tokens.token_cache_stats().unwrap().hits >= 1);

    // Another key's proof for this token.
    let mallory = DpopClient::generate(Algorithm::ES256)
        .unwrap()
        .with_clock(s.clock.clone());
    let proof = mallory
        .proof(
            "GET",
            &format!("{PUBLIC}/userinfo"),
            Some(&s.pair.access_token),
        )
        .unwrap();
    let (status, headers, _) = send(
        &app,
        get_request("/userinfo", &[("authorization", &auth), ("dpop", &proof)]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&headers), [expect("key_mismatch")]);

    // An unbound token sent with the DPoP scheme: the token is refused.
    let plain = s.tokens.issue("bob", &()).await.unwrap();
    let proof = s
        .client
        .proof(
            "GET",
            &format!("{PUBLIC}/userinfo"),
            Some(&plain.access_token),
        )
        .unwrap();
    let (status, headers, _) = send(
        &app,
        get_request(
            "/userinfo",
            &[
                ("authorization", &format!("DPoP {}", plain.access_token)),
                ("dpop", &proof),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&headers),
        [format!(
            "DPoP error=\"invalid_token\", error_description=\"the access token was refused: unbound_token\", {}",
            algs(&s.tokens)
        )]
    );
    // An expired one too, in the DPoP scheme.
    s.clock.advance(3600);
    let (status, headers, _) = dpop_get(&app, &s, "/userinfo").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&headers),
        [format!(
            "DPoP error=\"invalid_token\", error_description=\"the access token was refused: expired\", {}",
            algs(&s.tokens)
        )]
    );
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_invalid_token_with_a_dpop_challenge() {
    let s = setup(DpopOptions::new(DpopMode::Allowed)).await;
    let app = app(BearerAuthLayer::new(s.tokens.clone())
        .public_url(PUBLIC)
        .unwrap());
    let auth = format!("Bearer {}", s.pair.access_token);
    let (status, headers, _) =
        send(&app, get_request("/userinfo", &[("authorization", &auth)])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&headers),
        [
            "Bearer error=\"invalid_token\", error_description=\"the access token was refused: bound_token_as_bearer\"".to_owned(),
            format!("DPoP {}", algs(&s.tokens)),
        ]
    );
    // No token at all: both schemes are offered.
    let (status, headers, _) = send(&app, get_request("/userinfo", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&headers),
        ["Bearer".to_owned(), format!("DPoP {}", algs(&s.tokens))]
    );
}

#[tokio::test]
async fn a_nonce_challenge_then_a_retry_with_the_nonce_goes_through() {
    let clock = Arc::new(ManualClock::new(T0));
    let tokens = service(
        &clock,
        Some(DpopOptions::new(DpopMode::Allowed).nonces(NonceKey::generate().unwrap())),
    )
    .await;
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let client = DpopClient::new(
        SigningKey::from_der(&key.to_pkcs8_der().unwrap()).unwrap(),
        Algorithm::ES256,
    )
    .unwrap()
    .with_clock(clock.clone());
    // The token endpoint's proof already had the nonce; the client (a
    // fresh process, say) has none.
    let proof = DpopProof::builder(&key, Algorithm::ES256)
        .htm("POST")
        .htu(TOKEN_URL)
        .nonce(tokens.dpop_nonce().unwrap())
        .clock(clock.clone())
        .sign()
        .unwrap();
    let binding = tokens
        .check_dpop(&proof, "POST", TOKEN_URL, None)
        .await
        .unwrap();
    let pair = tokens
        .issue_dpop("alice", &(), Some(&binding))
        .await
        .unwrap();
    let app = app(BearerAuthLayer::new(tokens.clone())
        .public_url(PUBLIC)
        .unwrap());
    let request = || {
        let proof = client
            .proof(
                "GET",
                &format!("{PUBLIC}/userinfo"),
                Some(&pair.access_token),
            )
            .unwrap();
        let auth = format!("DPoP {}", pair.access_token);
        get_request("/userinfo", &[("authorization", &auth), ("dpop", &proof)])
    };
    let challenge = |kind: &str| {
        format!(
            "DPoP error=\"use_dpop_nonce\", error_description=\"the DPoP proof was refused: {kind}\", {}",
            algs(&tokens)
        )
    };

    let (status, headers, body) = send(&app, request()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&headers), [challenge("missing_nonce")]);
    assert_eq!(
        headers["dpop-nonce"].to_str().unwrap(),
        tokens.dpop_nonce().unwrap()
    );
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    assert!(client.observe_headers(&headers));
    let (status, headers, body) = send(&app, request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        headers["dpop-nonce"].to_str().unwrap(),
        tokens.dpop_nonce().unwrap(),
        "answers carry the current nonce"
    );

    // Two rotations later the client's nonce is stale.
    clock.advance(2 * NONCE_STEP.as_secs() as i64);
    let (status, headers, _) = send(&app, request()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&headers), [challenge("invalid_nonce")]);
    assert!(client.observe_headers(&headers));
    assert_eq!(send(&app, request()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_replay_cache_outage_is_503_not_401() {
    let clock = Arc::new(ManualClock::new(T0));
    // Tokens issued by a service whose cache works; checked by one whose
    // cache is down (same keys: a second instance).
    let keys: Arc<dyn jwtkit::KeyStore> = Arc::new(MemoryKeyStore::with_clock(clock.clone()));
    let build = |options: DpopOptions| {
        TokenService::builder()
            .shared_key_store(keys.clone())
            .init_key_store(Algorithm::ES256)
            .issuer("https://auth.test")
            .audience("api")
            .clock(clock.clone())
            .dpop(options)
            .build()
    };
    let issuer = build(DpopOptions::new(DpopMode::Allowed)).await.unwrap();
    let down = build(DpopOptions::new(DpopMode::Allowed).replay_cache(Arc::new(Unreachable)))
        .await
        .unwrap();
    let client = DpopClient::generate(Algorithm::ES256)
        .unwrap()
        .with_clock(clock.clone());
    let s = Setup {
        pair: bound_pair(&issuer, &client).await,
        tokens: down.clone(),
        clock,
        client,
    };
    let app = app(BearerAuthLayer::new(down).public_url(PUBLIC).unwrap());
    let (status, headers, body) = dpop_get(&app, &s, "/userinfo").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert!(headers.get("www-authenticate").is_none());
}

#[tokio::test]
async fn the_request_uri_comes_from_the_public_url_or_the_host_header() {
    let s = setup(DpopOptions::new(DpopMode::Allowed)).await;
    let access = s.pair.access_token.clone();
    let call = |app: Router, htu: String| {
        let proof = s.client.proof("GET", &htu, Some(&access)).unwrap();
        let auth = format!("DPoP {access}");
        async move {
            send(
                &app,
                get_request(
                    "/userinfo?page=1",
                    &[("authorization", &auth), ("dpop", &proof)],
                ),
            )
            .await
            .0
        }
    };
    // Behind a proxy that maps https://example.com/api/ to this service.
    let proxied = app(BearerAuthLayer::new(s.tokens.clone())
        .public_url("https://example.com/api/")
        .unwrap());
    assert_eq!(
        call(proxied.clone(), "https://example.com/api/userinfo".into()).await,
        StatusCode::OK
    );
    assert_eq!(
        call(proxied, "https://api.internal:8080/userinfo".into()).await,
        StatusCode::UNAUTHORIZED,
        "the internal URI is not the one clients use"
    );
    // Without a public URL: the Host header, https by default.
    let by_host = app(BearerAuthLayer::new(s.tokens.clone()));
    assert_eq!(
        call(by_host.clone(), "https://api.internal:8080/userinfo".into()).await,
        StatusCode::OK
    );
    assert_eq!(
        call(by_host, "http://api.internal:8080/userinfo".into()).await,
        StatusCode::UNAUTHORIZED
    );
    let http = app(BearerAuthLayer::new(s.tokens.clone())
        .fallback_scheme("http")
        .unwrap());
    assert_eq!(
        call(http, "http://api.internal:8080/userinfo".into()).await,
        StatusCode::OK
    );
    // Inside `nest`, the proof names the whole path.
    let nested = Router::new().nest(
        "/v1",
        app(BearerAuthLayer::new(s.tokens.clone())
            .public_url(PUBLIC)
            .unwrap()),
    );
    let proof = s
        .client
        .proof("GET", &format!("{PUBLIC}/v1/userinfo"), Some(&access))
        .unwrap();
    let (status, _, body) = send(
        &nested,
        get_request(
            "/v1/userinfo",
            &[
                ("authorization", &format!("DPoP {access}")),
                ("dpop", &proof),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(BearerAuthLayer::<AccessClaims>::new(s.tokens.clone())
        .public_url("api.example.com")
        .is_err());
}

#[tokio::test]
async fn with_dpop_off_the_layer_answers_as_before_and_required_refuses_bearer() {
    let clock = Arc::new(ManualClock::new(T0));
    let off = service(&clock, None).await;
    let app_off = app(BearerAuthLayer::new(off.clone()));
    let pair = off.issue("alice", &()).await.unwrap();
    let (status, headers, body) = send(
        &app_off,
        get_request(
            "/userinfo",
            &[("authorization", &format!("DPoP {}", pair.access_token))],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // No DPoP challenge when off, and the answer says DPoP is off (it used to
    // say an access token was required, though one was sent).
    let offered = challenges(&headers);
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert!(
        offered[0].starts_with("Bearer error=\"invalid_request\""),
        "{offered:?}"
    );
    assert!(body.contains("DPoP is not enabled"), "{body}");
    let (status, _, body) = send(
        &app_off,
        get_request(
            "/userinfo",
            &[("authorization", &format!("Bearer {}", pair.access_token))],
        ),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice bearer"));

    // Mode `required`: an unbound bearer token (of an `allowed` instance on
    // the same keys) is refused; a bound one passes.
    let keys: Arc<dyn jwtkit::KeyStore> = Arc::new(MemoryKeyStore::with_clock(clock.clone()));
    let build = |mode: DpopMode| {
        TokenService::builder()
            .shared_key_store(keys.clone())
            .init_key_store(Algorithm::ES256)
            .issuer("https://auth.test")
            .audience("api")
            .clock(clock.clone())
            .dpop(DpopOptions::new(mode))
            .build()
    };
    let required = build(DpopMode::Required).await.unwrap();
    let lenient = build(DpopMode::Allowed).await.unwrap();
    let app = app(BearerAuthLayer::new(required.clone())
        .public_url(PUBLIC)
        .unwrap());
    let unbound = lenient.issue("bob", &()).await.unwrap();
    let (status, headers, _) = send(
        &app,
        get_request(
            "/userinfo",
            &[("authorization", &format!("Bearer {}", unbound.access_token))],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&headers),
        [
            "Bearer error=\"invalid_token\", error_description=\"the access token was refused: unbound_token\"".to_owned(),
            format!("DPoP {}", algs(&required)),
        ]
    );
    let client = DpopClient::generate(Algorithm::ES256)
        .unwrap()
        .with_clock(clock.clone());
    let s = Setup {
        pair: bound_pair(&required, &client).await,
        tokens: required,
        clock,
        client,
    };
    assert_eq!(dpop_get(&app, &s, "/userinfo").await.0, StatusCode::OK);
}

/// One credential per request: two `Authorization` headers (say `Bearer
/// <one token>` and `DPoP <another>`) are refused with 400 rather than
/// judged by the first, which a proxy reading the last would not agree
/// with (the attacker's review).
#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let clock = Arc::new(ManualClock::new(T0));
    let tokens = service(&clock, None).await;
    let app = app(BearerAuthLayer::new(tokens.clone()));
    let pair = tokens.issue("alice", &()).await.unwrap();
    let bearer = format!("Bearer {}", pair.access_token);
    let (status, headers, body) = send(
        &app,
        get_request(
            "/userinfo",
            &[("authorization", &bearer), ("authorization", &bearer)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("more than one Authorization header"),
        "{body}"
    );
    assert!(
        challenges(&headers)[0].starts_with("Bearer error=\"invalid_request\""),
        "{headers:?}"
    );
    let (status, _, _) = send(
        &app,
        get_request("/userinfo", &[("authorization", &bearer)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
