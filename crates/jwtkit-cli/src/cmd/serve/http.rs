//! The HTTP side of `jwtkit serve`: routes, OAuth error answers, admin auth.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Json, Router};
use jwtkit::axum::{bearer_token, BearerAuthLayer, Claims, PublicOrigin};
use jwtkit::dpop::{DPOP_HEADER, DPOP_NONCE_HEADER};
use jwtkit::DpopBinding;
use jwtkit::{Error, TokenService};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use super::audit::{self, AuthFailure};
use super::limit::{retry_after_secs, AuthFailureLimiter};
use super::metrics::{self as m, StoreTimer};

mod sessions;

/// Largest request body accepted.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// Requests taking longer are answered 408.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared by all handlers.
pub(crate) struct AppState {
    pub(crate) tokens: TokenService,
    /// SHA-256 of the admin token.
    pub(crate) admin_digest: [u8; 32],
    /// SHA-256 of the introspection token (`JWTKIT_INTROSPECTION_TOKEN`):
    /// for resource servers, which may introspect but not issue.
    pub(crate) introspection_digest: Option<[u8; 32]>,
    /// The per-address limit on failed admin and introspection
    /// authentications; `None`: off (`--auth-failure-limit 0`).
    pub(crate) limiter: Option<Arc<AuthFailureLimiter>>,
    /// The URL clients reach the service at (`--issuer`): DPoP proofs name
    /// it with the endpoint's path (`htu`).
    pub(crate) public: PublicOrigin,
    /// `--introspection-audience`: the `aud` of signed introspection
    /// answers (`None`: the access-token audience).
    pub(crate) introspection_audience: Option<String>,
}

/// The client's address: the TCP peer, which the accept loop puts in every
/// request (`ConnectInfo`). A request without one (never from
/// `connections::serve`) counts as `0.0.0.0`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(client_addr(&parts.extensions))
    }
}

fn client_addr(extensions: &axum::http::Extensions) -> ClientAddr {
    if let Some(client) = extensions.get::<super::connections::ClientIp>() {
        return ClientAddr(client.0);
    }
    ClientAddr(
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
    )
}

/// The route patterns of [`router`], for the request metrics.
pub(crate) const ROUTES: &[&str] = &[
    "/token",
    "/revoke",
    "/introspect",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/healthz",
    "/userinfo",
    "/sessions",
    "/sessions/{sid}",
    "/sessions/revoke",
    "/openapi.json",
];

/// The router with every endpoint and the body limit, timeout and tracing
/// layers. (Request durations are recorded around it, by the connection's
/// service: `connections::serve`.)
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let userinfo = Router::new()
        .route("/userinfo", get(userinfo).post(userinfo))
        .layer(
            BearerAuthLayer::<Map<String, Value>>::new(state.tokens.clone())
                .with_origin(state.public.clone()),
        );
    Router::new()
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .route("/introspect", post(introspect))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/healthz", get(healthz))
        .route("/sessions", get(sessions::list))
        .route("/sessions/revoke", post(sessions::revoke_subject))
        .route("/sessions/{sid}", delete(sessions::revoke_one))
        .route("/openapi.json", get(super::openapi::openapi_json))
        .merge(userinfo)
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // Outside the timeout: an announced oversized body is refused before
        // anything waits for it.
        .layer(axum::middleware::from_fn(refuse_announced_oversized_body))
        .layer(
            // Method and route only: a query string, or a path under no route
            // (`/userinfo/<token>`), could carry a token. The route is the
            // matched pattern, `-` for a path no route matched.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("-", axum::extract::MatchedPath::as_str);
                    tracing::info_span!("request", method = %req.method(), path = %route)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
}

/// Answers 413 at once when `Content-Length` announces a body over
/// [`MAX_BODY_BYTES`]: the body limit alone only trips while the body is read,
/// so a client that announced a large body and sent none held the request
/// until the timeout. The connection is closed (its unread body cannot be skipped).
async fn refuse_announced_oversized_body(req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(len) if len > MAX_BODY_BYTES as u64 => {
            tracing::info!(
                content_length = len,
                limit = MAX_BODY_BYTES,
                "request refused: body over the limit"
            );
            let mut response = oauth_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                &format!("the request body is {len} bytes; at most {MAX_BODY_BYTES} are accepted"),
            );
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            response
        }
        _ => next.run(req).await,
    }
}

/// SHA-256 of `text`.
pub(crate) fn digest(text: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Compares the digests of the presented and the real admin token without
/// an early exit (hashing first also hides the length).
fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    bearer_token(headers)
        .is_some_and(|presented| same_digest(&digest(&presented), &state.admin_digest))
}

/// Whether the bearer token may introspect: the admin token, or the
/// introspection token when one is configured.
fn may_introspect(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(presented) = bearer_token(headers) else {
        return false;
    };
    let presented = digest(&presented);
    // Both compared, always: the time does not say which one matched.
    let admin = same_digest(&presented, &state.admin_digest);
    let introspection = state
        .introspection_digest
        .is_some_and(|d| same_digest(&presented, &d));
    admin | introspection
}

/// The outcome of the brute-force gate around a credential check.
enum Gate {
    /// The credential is right: go on.
    Allowed,
    /// The credential is missing or wrong: answer 401.
    Refused(AuthFailure),
    /// The address is locked: this 429 answer.
    Limited(Response),
}

/// Checks an admin or introspection credential behind the per-address
/// limit: a locked address is refused before its credential is looked at
/// (`right` is not called); a wrong bearer token counts against the
/// address (a missing one guesses nothing and does not); every failure is
/// an `admin.auth_failed` audit event and counted.
fn gate(
    state: &AppState,
    client: IpAddr,
    route: &'static str,
    headers: &HeaderMap,
    right: impl FnOnce() -> bool,
) -> Gate {
    if let Some(wait) = state.limiter.as_ref().and_then(|l| l.locked(client)) {
        metrics::counter!(m::AUTH_RATE_LIMITED, "route" => route).increment(1);
        return Gate::Limited(too_many_failures(wait));
    }
    if right() {
        return Gate::Allowed;
    }
    let reason = match bearer_token(headers) {
        None => AuthFailure::Missing,
        Some(presented) => {
            let presented = digest(&presented);
            if state
                .introspection_digest
                .is_some_and(|d| same_digest(&presented, &d))
            {
                AuthFailure::NotAllowed
            } else {
                AuthFailure::Wrong
            }
        }
    };
    metrics::counter!(m::AUTH_FAILURES, "route" => route, "reason" => reason.as_str()).increment(1);
    let locked = match (&state.limiter, reason) {
        (Some(limiter), AuthFailure::Wrong) => {
            let locked = limiter.failed(client);
            metrics::gauge!(m::AUTH_LIMIT_TRACKED).set(limiter.tracked() as f64);
            locked
        }
        _ => None,
    };
    audit::auth_failed(client, route, reason, locked);
    match locked {
        Some(wait) => {
            metrics::counter!(m::AUTH_RATE_LIMITED, "route" => route).increment(1);
            Gate::Limited(too_many_failures(wait))
        }
        None => Gate::Refused(reason),
    }
}

/// `429` with `Retry-After` for an address locked by the limit on failed
/// authentications.
fn too_many_failures(wait: Duration) -> Response {
    let secs = retry_after_secs(wait);
    let mut response = oauth_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        &format!(
            "too many failed authentications from this address; admin and introspection \
             requests from it are refused for {secs} s (Retry-After)"
        ),
    );
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from(secs));
    response
}

/// Digest equality without an early exit.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// An OAuth error answer (RFC 6749 §5.2), never cached.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store((
        status,
        Json(json!({"error": error, "error_description": description})),
    ))
}

fn no_store(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A service error: 400 for refusals, 503 when a store is unavailable, 500 otherwise.
fn service_error(err: &Error) -> Response {
    match err {
        Error::InvalidGrant { reason } => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &reason.to_string(),
        ),
        Error::InvalidRequest { reason } => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", reason)
        }
        // RFC 9449 §5 and §8: DPoP refusals at the token endpoint are 400s
        // with their own codes (`invalid_dpop_proof`, `use_dpop_nonce`).
        e @ Error::Dpop { .. } => oauth_error(
            StatusCode::BAD_REQUEST,
            e.oauth_error().unwrap_or("invalid_request"),
            &e.to_string(),
        ),
        e if e.is_retryable() => {
            tracing::warn!(error = %e, "a store is unavailable");
            let mut r = oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "a store is unavailable; try again shortly",
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            r
        }
        e => {
            tracing::error!(error = %e, kind = e.kind().as_str(), "request failed");
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the token service failed; see its logs",
            )
        }
    }
}

/// 413 for bodies over the limit, 400 for every other unreadable body.
fn rejection_status(status: StatusCode) -> StatusCode {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        status
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// `POST /token` JSON body (admin).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    sub: String,
    #[serde(default)]
    claims: Option<Map<String, Value>>,
    /// A description of the client (device, user agent) kept with the
    /// session and listed by `GET /sessions`; never put into tokens.
    #[serde(default)]
    client: Option<Map<String, Value>>,
}

/// `POST /token` form body (RFC 6749 §6). Its `Debug` never shows the
/// refresh token (a bearer credential), only whether one was sent.
#[derive(Deserialize)]
struct GrantForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
}

impl std::fmt::Debug for GrantForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantForm")
            .field("grant_type", &self.grant_type)
            .field("refresh_token", &redacted(&self.refresh_token))
            .finish()
    }
}

/// How a credential appears in `Debug` output: present or not, never its value.
fn redacted(token: &Option<String>) -> &'static str {
    match token {
        Some(_) => "<redacted>",
        None => "<none>",
    }
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

async fn token(State(state): State<Arc<AppState>>, req: Request) -> Response {
    match media_type(req.headers()).as_str() {
        "application/json" => issue(state, req).await,
        "application/x-www-form-urlencoded" => refresh(state, req).await,
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send application/json {\"sub\",\"claims\"} with the admin token to issue, or \
             application/x-www-form-urlencoded grant_type=refresh_token&refresh_token=… to refresh",
        ),
    }
}

/// What issuing needs, for the answers to a request without it.
const ISSUE_NEEDS_ADMIN: &str = "issuing tokens needs `Authorization: Bearer $JWTKIT_ADMIN_TOKEN` \
     (the admin token this jwtkit serve printed at start or read from JWTKIT_ADMIN_TOKEN); \
     refreshing needs no admin token: send application/x-www-form-urlencoded \
     grant_type=refresh_token&refresh_token=…";

/// Why a request that needs the admin token came without it, for its
/// answer: the error (`invalid_request` without a bearer token,
/// `invalid_token` with another one) and what was wrong, in the same words
/// for every wrong token.
pub(crate) fn admin_token_refusal(presented: bool) -> (&'static str, &'static str) {
    if presented {
        ("invalid_token", "the bearer token is not the admin token")
    } else {
        (
            "invalid_request",
            "no admin token (no `Authorization: Bearer …` header)",
        )
    }
}

/// The answer to an issue request without the admin token (RFC 6750 §3):
/// 401 with `invalid_request` when no bearer token came, `invalid_token`
/// when another one did. The same words for every wrong token, so the
/// answer never says how close one was.
fn admin_refused(presented: bool) -> Response {
    let (error, what) = admin_token_refusal(presented);
    let mut response = oauth_error(
        StatusCode::UNAUTHORIZED,
        error,
        &format!("{what}; {ISSUE_NEEDS_ADMIN}"),
    );
    // A header value is visible ASCII: the short form of the description.
    let challenge = if presented {
        "Bearer error=\"invalid_token\", error_description=\"not the admin token: issuing \
         tokens needs Authorization: Bearer $JWTKIT_ADMIN_TOKEN\""
    } else {
        "Bearer"
    };
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// The answer to the introspection token on a route that needs the admin
/// token: `403 insufficient_scope` (RFC 6750 §3.1), the credential is known
/// and right for introspection, so the client is told what it lacks.
pub(crate) fn introspection_token_not_allowed() -> Response {
    let mut response = oauth_error(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        "the introspection token may only introspect (POST /introspect); issuing tokens and \
         listing or revoking sessions need `Authorization: Bearer $JWTKIT_ADMIN_TOKEN`",
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer error=\"insufficient_scope\", error_description=\"the introspection token \
             may only introspect; this needs the admin token\"",
        ),
    );
    response
}

/// The answer to a refresh grant sent as JSON: RFC 6749 §6 has it
/// form-encoded, and a JSON body on `/token` is the admin's issue request.
fn json_refresh_grant() -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "a refresh grant must be form-encoded (RFC 6749 §6): send Content-Type: \
         application/x-www-form-urlencoded with the body grant_type=refresh_token&refresh_token=…; \
         a JSON body on /token issues tokens, with the admin token",
    )
}

/// Whether a JSON body is an OAuth grant (it has `grant_type`), which
/// belongs in a form, not an issue request.
fn is_json_grant(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Map<String, Value>>(bytes)
        .is_ok_and(|body| body.contains_key("grant_type"))
}

async fn issue(state: Arc<AppState>, req: Request) -> Response {
    let ClientAddr(client) = client_addr(req.extensions());
    match gate(&state, client, "/token", req.headers(), || {
        is_admin(&state, req.headers())
    }) {
        Gate::Allowed => {}
        Gate::Limited(response) => return response,
        Gate::Refused(AuthFailure::NotAllowed) => return introspection_token_not_allowed(),
        Gate::Refused(reason) => {
            // A refresh grant sent as JSON by a client (which holds no admin
            // token) is told how to send it; an unreadable body changes nothing.
            if let Ok(bytes) = axum::body::Bytes::from_request(req, &()).await {
                if is_json_grant(&bytes) {
                    return json_refresh_grant();
                }
            }
            return admin_refused(reason == AuthFailure::Wrong);
        }
    }
    let (headers, uri) = (req.headers().clone(), req.uri().clone());
    // The body is read as bytes and parsed with the verifier's strict parser
    // (duplicate member names, serde_json's private member names, depth),
    // never by `Json` into a `Value`: under serde_json's `raw_value` feature
    // a `Value` replaces `{"$serde_json::private::RawValue": "<json>"}` by
    // the JSON inside the string, so claims would change on the way through.
    let bytes = match axum::body::Bytes::from_request(req, &()).await {
        Ok(bytes) => bytes,
        Err(rejection) => {
            return oauth_error(
                rejection_status(rejection.status()),
                "invalid_request",
                &format!("the body could not be read: {}", rejection.body_text()),
            )
        }
    };
    let bad_body = |reason: &dyn std::fmt::Display| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("the body must be {{\"sub\": \"…\", \"claims\": {{…}}}}: {reason}"),
        )
    };
    if is_json_grant(&bytes) {
        return json_refresh_grant();
    }
    let body = match jwt_core::parse_claims(&bytes) {
        Ok(map) => map,
        Err(jwt_core::Error::Config { reason }) => return bad_body(&reason),
        Err(e) => return bad_body(&e),
    };
    // Every member name was checked above, so this conversion has nothing
    // left to reinterpret.
    let body = match serde_json::from_value::<IssueBody>(Value::Object(body)) {
        Ok(body) => body,
        Err(e) => return bad_body(&e),
    };
    let claims = body.claims.unwrap_or_default();
    let binding = match dpop_binding(&state, &headers, &uri, None).await {
        Ok(binding) => binding,
        Err(refused) => return dpop_refused(&state, refused),
    };
    let issued = {
        let _timer = StoreTimer::start("issue");
        let client = body.client.unwrap_or_default();
        state
            .tokens
            .issue_with_client_dpop(&body.sub, &claims, &client, binding.as_ref())
            .await
    };
    let response = match issued {
        Ok(pair) => {
            metrics::counter!(m::TOKENS_ISSUED).increment(1);
            audit::token_issued(client, &pair.session);
            no_store(Json(pair))
        }
        Err(e) => service_error(&e),
    };
    with_dpop_nonce(&state, response)
}

/// The DPoP binding of a request to the token or revocation endpoint (RFC
/// 9449 §5): `None` without a `DPoP` header; the proof's key when its one
/// `DPoP` header holds a proof for `POST` to this endpoint's public URL,
/// fresh, not seen before (and with the server's nonce when nonces are on).
/// `presented` is the token a request without other credentials presents
/// (a refresh grant's, a revocation's): it is checked before the proof is
/// remembered, so that made-up requests cannot fill the replay cache.
/// Otherwise the refusal: `Err(Ok(answer))` (`400 invalid_dpop_proof`, or
/// `use_dpop_nonce` with `DPoP-Nonce`), or `Err(Err(error))` for the caller
/// to answer (`presented` is not a token of this service, DPoP is off, the
/// replay cache is down).
async fn dpop_binding(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    presented: Option<&str>,
) -> Result<Option<DpopBinding>, Result<Response, Error>> {
    let mut proofs = headers.get_all(DPOP_HEADER).iter();
    let Some(proof) = proofs.next() else {
        return Ok(None);
    };
    let refuse = |description: &str| {
        Ok(with_dpop_nonce(
            state,
            oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", description),
        ))
    };
    if proofs.next().is_some() {
        return Err(refuse(
            "more than one DPoP header; send exactly one proof (RFC 9449 §4.3)",
        ));
    }
    let Ok(proof) = proof.to_str() else {
        return Err(refuse("the DPoP header is not a JWT (visible ASCII only)"));
    };
    let Some(htu) = state.public.htu(headers, uri) else {
        return Err(refuse("the request path cannot be named in a proof"));
    };
    let checked = match presented {
        Some(token) => {
            state
                .tokens
                .check_dpop_with_token(proof, "POST", &htu, token)
                .await
        }
        None => state.tokens.check_dpop(proof, "POST", &htu, None).await,
    };
    checked.map(Some).map_err(Err)
}

/// The answer to a refused [`dpop_binding`] at the token endpoint.
fn dpop_refused(state: &AppState, refused: Result<Response, Error>) -> Response {
    match refused {
        Ok(response) => response,
        Err(e) => with_dpop_nonce(state, service_error(&e)),
    }
}

/// `response` with the server's current DPoP nonce when nonces are on (RFC
/// 9449 §8.2: a client keeps the latest).
fn with_dpop_nonce(state: &AppState, mut response: Response) -> Response {
    if let Some(nonce) = state.tokens.dpop_nonce() {
        if let Ok(value) = HeaderValue::from_str(&nonce) {
            response.headers_mut().insert(DPOP_NONCE_HEADER, value);
        }
    }
    response
}

async fn refresh(state: Arc<AppState>, req: Request) -> Response {
    let (headers, uri) = (req.headers().clone(), req.uri().clone());
    let form = match Form::<GrantForm>::from_request(req, &()).await {
        Ok(Form(form)) => form,
        Err(rejection) => {
            return oauth_error(
                rejection_status(rejection.status()),
                "invalid_request",
                &rejection.body_text(),
            )
        }
    };
    match form.grant_type.as_deref() {
        Some("refresh_token") => {}
        Some(_) => return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=refresh_token is supported here (issue with the admin JSON request)",
        ),
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            )
        }
    }
    let Some(refresh_token) = form.refresh_token.filter(|t| !t.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refresh_token is missing",
        );
    };
    let binding = match dpop_binding(&state, &headers, &uri, Some(&refresh_token)).await {
        Ok(binding) => binding,
        Err(refused) => {
            if let Err(e) = &refused {
                // Counted like the refresh it refuses (an invalid token).
                m::refresh_refused(e);
            }
            return dpop_refused(&state, refused);
        }
    };
    let refreshed = {
        let _timer = StoreTimer::start("refresh");
        state
            .tokens
            .refresh_dpop(&refresh_token, binding.as_ref())
            .await
    };
    m::refresh_outcome(&refreshed);
    let response = match refreshed {
        Ok(pair) => no_store(Json(pair)),
        Err(e) => service_error(&e),
    };
    with_dpop_nonce(&state, response)
}

/// `POST /revoke` form body (RFC 7009 §2.1). Its `Debug` never shows the
/// token.
#[derive(Deserialize)]
struct RevokeForm {
    token: Option<String>,
    token_type_hint: Option<String>,
}

impl std::fmt::Debug for RevokeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeForm")
            .field("token", &redacted(&self.token))
            .field("token_type_hint", &self.token_type_hint)
            .finish()
    }
}

async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    form: Result<Form<RevokeForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (token, hint) = match form {
        Ok(Form(RevokeForm {
            token: Some(t),
            token_type_hint,
        })) if !t.is_empty() => (t, token_type_hint),
        Ok(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "token is missing",
            )
        }
        Err(rejection) => {
            return oauth_error(
                rejection_status(rejection.status()),
                "invalid_request",
                &rejection.body_text(),
            )
        }
    };
    // A token bound to a DPoP key revokes its session only with a proof of
    // that key (a stolen bound token must not log its owner out).
    let binding = match dpop_binding(&state, &headers, &uri, Some(&token)).await {
        Ok(binding) => binding,
        // RFC 7009 §2.2: a token that is not one of ours changes nothing.
        Err(Err(Error::InvalidGrant { .. })) => {
            metrics::counter!(m::REVOCATIONS, "result" => "invalid").increment(1);
            return no_store(StatusCode::OK);
        }
        Err(refused) => return dpop_refused(&state, refused),
    };
    let revoked = {
        let _timer = StoreTimer::start("revoke");
        state
            .tokens
            .revoke_token(&token, hint.as_deref(), binding.as_ref())
            .await
    };
    let result = match &revoked {
        Ok(true) => "revoked",
        Ok(false) => "not_active",
        Err(Error::InvalidGrant { .. } | Error::Dpop { .. }) => "invalid",
        Err(_) => "error",
    };
    metrics::counter!(m::REVOCATIONS, "result" => result).increment(1);
    match revoked {
        Ok(_) => no_store(StatusCode::OK),
        // RFC 7009 §2.2: an invalid token is answered 200 like a revoked one.
        Err(Error::InvalidGrant { .. }) => no_store(StatusCode::OK),
        Err(e) => service_error(&e),
    }
}

/// `POST /introspect` form body (RFC 7662 §2.1). Its `Debug` never shows
/// the token.
#[derive(Deserialize)]
struct IntrospectForm {
    token: Option<String>,
    token_type_hint: Option<String>,
}

impl std::fmt::Debug for IntrospectForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectForm")
            .field("token", &redacted(&self.token))
            .field("token_type_hint", &self.token_type_hint)
            .finish()
    }
}

/// Token introspection (RFC 7662), for resource servers: `{"active":true,
/// …}` for a valid access or refresh token of this service whose session
/// is live, exactly `{"active":false}` for anything else — a revoked
/// session's still-unexpired access token included. Needs the admin token
/// or the introspection token (`JWTKIT_INTROSPECTION_TOKEN`), RFC 7662 §2.1.
async fn introspect(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    form: Result<Form<IntrospectForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let refused = match gate(&state, client, "/introspect", &headers, || {
        may_introspect(&state, &headers)
    }) {
        Gate::Allowed => None,
        Gate::Limited(response) => return response,
        Gate::Refused(reason) => Some(reason),
    };
    if let Some(reason) = refused {
        let presented = reason == AuthFailure::Wrong;
        let (error, what) = if presented {
            (
                "invalid_token",
                "the bearer token is neither the admin token nor the introspection token",
            )
        } else {
            ("invalid_request", "no `Authorization: Bearer …` header")
        };
        let mut response = oauth_error(
            StatusCode::UNAUTHORIZED,
            error,
            &format!(
                "{what}; introspection needs `Authorization: Bearer` with $JWTKIT_INTROSPECTION_TOKEN \
                 (set when jwtkit serve starts, for resource servers) or the admin token"
            ),
        );
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let (token, hint) = match form {
        Ok(Form(IntrospectForm {
            token: Some(t),
            token_type_hint,
        })) if !t.is_empty() => (t, token_type_hint),
        Ok(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "token is missing: send application/x-www-form-urlencoded token=… \
                 (and optionally token_type_hint=access_token or refresh_token)",
            )
        }
        Err(rejection) => {
            return oauth_error(
                rejection_status(rejection.status()),
                "invalid_request",
                &rejection.body_text(),
            )
        }
    };
    let found = {
        let _timer = StoreTimer::start("introspect");
        state.tokens.introspect(&token, hint.as_deref()).await
    };
    let result = match &found {
        Ok(Some(_)) => "active",
        Ok(None) => "inactive",
        Err(_) => "error",
    };
    metrics::counter!(m::INTROSPECTIONS, "result" => result).increment(1);
    if wants_jwt_answer(&headers) {
        // RFC 9701: the same answer as a JWT signed with the service's key.
        return match found {
            Ok(answer) => match state
                .tokens
                .introspection_jwt(answer, state.introspection_audience.as_deref())
                .await
            {
                Ok(jwt) => no_store(([(CONTENT_TYPE, INTROSPECTION_JWT_MEDIA_TYPE)], jwt)),
                Err(e) => service_error(&e),
            },
            Err(e) => service_error(&e),
        };
    }
    match found {
        Ok(Some(members)) => {
            let mut body = Map::with_capacity(members.len() + 1);
            body.insert("active".into(), true.into());
            body.extend(members);
            no_store(Json(Value::Object(body)))
        }
        Ok(None) => no_store(Json(json!({"active": false}))),
        Err(e) => service_error(&e),
    }
}

/// RFC 9701's media type of a signed introspection answer.
const INTROSPECTION_JWT_MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// Whether the client asked for the signed answer (RFC 9701 §4:
/// `Accept: application/token-introspection+jwt`).
fn wants_jwt_answer(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let named = parts
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(INTROSPECTION_JWT_MEDIA_TYPE));
            // `q=0` means "not acceptable" (RFC 9110 §12.5.1).
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            named && !refused
        })
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let jwks = {
        let _timer = StoreTimer::start("jwks");
        state.tokens.jwks().await
    };
    match jwks {
        Ok(jwks) => {
            let max_age = state.tokens.jwks_max_age().as_secs();
            let mut response =
                ([(CONTENT_TYPE, "application/json")], jwks.to_json()).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
                response.headers_mut().insert(CACHE_CONTROL, v);
            }
            response
        }
        Err(e) => service_error(&e),
    }
}

/// The authorization server's metadata (RFC 8414; the same document at
/// OpenID Connect Discovery's name): where the keys and the endpoints are,
/// for clients and resource servers that configure themselves from the
/// issuer URL (`jwtkit verify --issuer-url`, OpenBao's and Vault's
/// `oidc_discovery_url`, PyJWT's `PyJWKClient` on `jwks_uri`). Cached like
/// the JWKS.
async fn metadata(State(state): State<Arc<AppState>>) -> Response {
    let jwks = {
        let _timer = StoreTimer::start("jwks");
        state.tokens.jwks().await
    };
    let jwks = match jwks {
        Ok(jwks) => jwks,
        Err(e) => return service_error(&e),
    };
    // The algorithms of the published keys (pending, active, retiring), in
    // their order, once each.
    let mut algs: Vec<String> = Vec::new();
    for alg in jwks.keys.iter().filter_map(|k| k.alg.clone()) {
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    let issuer = state.tokens.issuer();
    let base = issuer.trim_end_matches('/');
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/token"),
        "revocation_endpoint": format!("{base}/revoke"),
        "introspection_endpoint": format!("{base}/introspect"),
        // Introspection takes a bearer token (RFC 7662 §2.1 allows it), for
        // which no client authentication method is registered: the member is
        // left out, which RFC 8414 §2 reads as "determined by other means"
        // (docs/openapi.yaml and docs/operations.md say which).
        "userinfo_endpoint": format!("{base}/userinfo"),
        // Tokens are issued by the admin's JSON request, not an OAuth
        // grant; the one grant this endpoint takes is the refresh.
        "grant_types_supported": ["refresh_token"],
        // There is no authorization endpoint, so no response type; the
        // member is required by both specifications, so it is there, empty.
        "response_types_supported": [],
        "subject_types_supported": ["public"],
        // Refresh and revocation need no client authentication: the refresh
        // token is the credential (public clients, RFC 6749 §2.1).
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        // Access tokens are JWTs (RFC 9068) signed with these; OpenID
        // Connect has no name for that list, so it is given as the ID-token
        // one too, which is what discovery clients constrain keys by.
        "id_token_signing_alg_values_supported": algs,
        "access_token_signing_alg_values_supported": algs,
        // RFC 9701: the signed introspection answer uses the same keys.
        "introspection_signing_alg_values_supported": algs,
    });
    let mut body = body;
    let dpop_algs = state.tokens.dpop_algorithms();
    if !dpop_algs.is_empty() {
        // RFC 9449 §5.1: the algorithms DPoP proofs may use.
        body["dpop_signing_alg_values_supported"] = dpop_algs
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .into();
    }
    let max_age = state.tokens.jwks_max_age().as_secs();
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(CACHE_CONTROL, v);
    }
    response
}

async fn userinfo(Claims(claims): Claims<Map<String, Value>>) -> Response {
    no_store(Json(claims))
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let health = {
        let _timer = StoreTimer::start("health");
        state.tokens.health().await
    };
    // The answer says only which store is down: the endpoint is public, and
    // error details (paths, hosts, URLs) belong in the server's log.
    let describe = |e: &Option<Error>| match e {
        None => "ok",
        Some(_) => "unavailable",
    };
    let body = json!({
        "status": if health.is_healthy() { "ok" } else { "unavailable" },
        "key_store": describe(&health.key_store),
        "refresh_store": describe(&health.refresh_store),
    });
    let status = if health.is_healthy() {
        StatusCode::OK
    } else {
        let detail = |e: &Option<Error>| {
            e.as_ref()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "ok".into())
        };
        tracing::warn!(key_store = %detail(&health.key_store), refresh_store = %detail(&health.refresh_store),
            "health check failed");
        StatusCode::SERVICE_UNAVAILABLE
    };
    no_store((status, Json(body)))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "not_found", "endpoints": [
            "POST /token", "POST /revoke", "POST /introspect", "GET /.well-known/jwks.json",
            "GET /.well-known/openid-configuration", "GET /.well-known/oauth-authorization-server",
            "GET /userinfo", "POST /userinfo", "GET /healthz", "GET /sessions?sub=…",
            "DELETE /sessions/{sid}", "POST /sessions/revoke", "GET /openapi.json"
        ]})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 item 6: refresh tokens never reach logs through `Debug`.
    #[test]
    fn form_debug_output_redacts_tokens() {
        let secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2ln";
        let grant = GrantForm {
            grant_type: Some("refresh_token".into()),
            refresh_token: Some(secret.into()),
        };
        let shown = format!("{grant:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert_eq!(
            shown,
            r#"GrantForm { grant_type: Some("refresh_token"), refresh_token: "<redacted>" }"#
        );
        let revoke = RevokeForm {
            token: Some(secret.into()),
            token_type_hint: Some("access_token".into()),
        };
        assert_eq!(
            format!("{revoke:?}"),
            r#"RevokeForm { token: "<redacted>", token_type_hint: Some("access_token") }"#
        );
        let empty = RevokeForm {
            token: None,
            token_type_hint: None,
        };
        assert_eq!(
            format!("{empty:?}"),
            r#"RevokeForm { token: "<none>", token_type_hint: None }"#
        );
    }
}
