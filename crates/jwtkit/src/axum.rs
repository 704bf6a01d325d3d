//! Bearer-token authentication for tower and axum (feature `axum`).
//!
//! [`BearerAuthLayer`] verifies `Authorization: Bearer <access token>` with a
//! [`TokenService`], puts the typed claims in the request extensions as
//! [`Claims<C>`], and answers refusals as RFC 6750 §3 says: `401` with
//! `WWW-Authenticate: Bearer` (no token) or
//! `WWW-Authenticate: Bearer error="invalid_token", error_description="…"`.
//! Handlers take [`Claims<C>`] as an extractor.
//!
//! ```
//! use axum::{routing::get, Router};
//! use jwtkit::axum::{BearerAuthLayer, Claims};
//! use jwtkit::{AccessClaims, MemoryKeyStore, TokenService};
//!
//! async fn me(Claims(claims): Claims<AccessClaims>) -> String {
//!     format!("hello {}", claims.sub)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jwtkit::Error> {
//! let tokens = TokenService::builder()
//!     .key_store(MemoryKeyStore::new())
//!     .init_key_store(jwtkit::Algorithm::ES256)
//!     .issuer("https://auth.example.com")
//!     .audience("my-api")
//!     .build()
//!     .await?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(BearerAuthLayer::<AccessClaims>::new(tokens.clone()));
//! # let _ = app; Ok(()) }
//! ```
//!
//! Keys are verified in memory through
//! [`TokenService::verify_access_reloading`]: a token naming a `kid` the
//! service does not know yet (another instance rotated) makes the service's
//! key verifier reload the keys once, at most every 30 s (its cooldown); the
//! maintenance task reloads them on every tick anyway. The layer holds no
//! cache and drives no reload of its own: a client's repeated token is
//! answered by the service's verified-token cache (on by default, see
//! [`TokenServiceBuilder::token_cache`](crate::TokenServiceBuilder::token_cache)),
//! which answers exactly what a verification would. Anything the layer must
//! check per request beyond the token itself (a sender-constrained token's
//! proof of possession) is checked on every request, hit or miss.
//!
//! Tokens of identity providers (Auth0, Cognito, Entra, Google, Keycloak,
//! Vault, …) are accepted in two ways: next to the service's own, with
//! [`TokenServiceBuilder::external_issuers`](crate::TokenServiceBuilder::external_issuers);
//! or, in an API that issues no tokens itself, with
//! [`BearerAuthLayer::issuers`] and a
//! [`jwt_keys::MultiIssuerVerifier`] alone:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use jwtkit::axum::{BearerAuthLayer, Claims};
//! use jwtkit::keys::{Issuer, MultiIssuerVerifier};
//!
//! async fn me(Claims(claims): Claims<serde_json::Value>) -> String {
//!     format!("hello {} from {}", claims["sub"], claims["iss"])
//! }
//!
//! # fn main() -> Result<(), jwtkit::keys::Error> {
//! let issuers = MultiIssuerVerifier::builder()
//!     .issuer(Issuer::discover("https://YOUR_TENANT.eu.auth0.com/").audience("my-api"))
//!     .issuer(Issuer::discover("https://accounts.google.com").audience("CLIENT_ID"))
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(BearerAuthLayer::<serde_json::Value>::issuers(issuers));
//! # let _ = app; Ok(()) }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use jwt_keys::MultiIssuerVerifier;
use serde::de::DeserializeOwned;
use tower::{Layer, Service};

use crate::error::Error;
use crate::service::TokenService;

/// The verified claims of the request's access token, put in the request
/// extensions by [`BearerAuthLayer`]; also an axum extractor.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims<C>(pub C);

/// A tower [`Layer`] that lets through only requests with a valid access
/// token; see the [module docs](self).
pub struct BearerAuthLayer<C = crate::AccessClaims> {
    tokens: Verification,
    _claims: PhantomData<fn() -> C>,
}

/// What verifies the bearer tokens.
#[derive(Clone)]
enum Verification {
    /// A token service (its own tokens, and its external issuers').
    Service(TokenService),
    /// Identity providers only.
    Issuers(MultiIssuerVerifier),
}

impl Verification {
    /// The claims of a valid token, or the stable name of the refusal.
    async fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, &'static str> {
        match self {
            Verification::Service(tokens) => tokens
                .verify_access_reloading::<C>(token)
                .await
                .map_err(|e| match &e {
                    Error::InvalidToken(e) => e.kind().as_str(),
                    other => other.kind().as_str(),
                }),
            Verification::Issuers(issuers) => issuers
                .verify::<C>(token)
                .await
                .map(|d| d.claims)
                .map_err(|e| e.kind().as_str()),
        }
    }
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verification::Service(tokens) => write!(f, "TokenService({})", tokens.issuer()),
            Verification::Issuers(issuers) => write!(f, "{issuers:?}"),
        }
    }
}

impl<C> BearerAuthLayer<C> {
    /// A layer verifying with `tokens` and deserializing the claims into `C`.
    pub fn new(tokens: TokenService) -> Self {
        BearerAuthLayer {
            tokens: Verification::Service(tokens),
            _claims: PhantomData,
        }
    }

    /// A layer accepting the tokens of these identity providers, each
    /// verified with its own keys (see the [module docs](self)), for an API
    /// that issues no tokens itself. A token naming no configured issuer is
    /// refused as `invalid_issuer`; an issuer whose keys cannot be loaded
    /// refuses its tokens with the reason (`fetch`, `stale_keys`, …).
    pub fn issuers(issuers: MultiIssuerVerifier) -> Self {
        BearerAuthLayer {
            tokens: Verification::Issuers(issuers),
            _claims: PhantomData,
        }
    }
}

impl<C> Clone for BearerAuthLayer<C> {
    fn clone(&self) -> Self {
        BearerAuthLayer {
            tokens: self.tokens.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C> std::fmt::Debug for BearerAuthLayer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuthLayer")
            .field("verification", &self.tokens)
            .field("claims", &std::any::type_name::<C>())
            .finish()
    }
}

impl<S, C> Layer<S> for BearerAuthLayer<C> {
    type Service = BearerAuth<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            tokens: self.tokens.clone(),
            _claims: PhantomData,
        }
    }
}

/// The service made by [`BearerAuthLayer`].
pub struct BearerAuth<S, C> {
    inner: S,
    tokens: Verification,
    _claims: PhantomData<fn() -> C>,
}

impl<S: Clone, C> Clone for BearerAuth<S, C> {
    fn clone(&self) -> Self {
        BearerAuth {
            inner: self.inner.clone(),
            tokens: self.tokens.clone(),
            _claims: PhantomData,
        }
    }
}

impl<S: std::fmt::Debug, C> std::fmt::Debug for BearerAuth<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, C, B> Service<Request<B>> for BearerAuth<S, C>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    C: DeserializeOwned + Clone + Send + Sync + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The readied service handles this request; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let Some(token) = bearer_token(req.headers()) else {
                return Ok(challenge(None));
            };
            match tokens.verify::<C>(&token).await {
                Ok(claims) => {
                    req.extensions_mut().insert(Claims(claims));
                    inner.call(req).await
                }
                Err(kind) => {
                    tracing::debug!(reason = kind, "bearer token refused");
                    Ok(challenge(Some(kind)))
                }
            }
        })
    }
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// The RFC 6750 §3 answer: `401` with `WWW-Authenticate: Bearer`, plus
/// `error="invalid_token"` and a short description (the rejection's kind,
/// never the token) when a token was presented.
pub fn challenge(rejection: Option<&str>) -> Response {
    let (header, body) = match rejection {
        None => (
            "Bearer".to_owned(),
            serde_json::json!({"error": "invalid_request", "error_description": "an access token is required (Authorization: Bearer …)"}),
        ),
        Some(kind) => {
            let description = format!("the access token was refused: {kind}");
            (
                format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
                serde_json::json!({"error": "invalid_token", "error_description": description}),
            )
        }
    };
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&header) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The rejection of the [`Claims`] extractor when no [`BearerAuthLayer`]
/// with the same claims type runs in front of the handler: a server
/// misconfiguration, answered `500` (access is denied either way).
#[derive(Debug, Clone, Copy)]
pub struct MissingAuthLayer;

impl IntoResponse for MissingAuthLayer {
    fn into_response(self) -> Response {
        tracing::error!("a handler takes Claims<_> but no BearerAuthLayer with that claims type runs in front of it");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "authentication is misconfigured on this route",
        )
            .into_response()
    }
}

impl<S, C> FromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = MissingAuthLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Claims<C>>()
            .cloned()
            .ok_or(MissingAuthLayer)
    }
}
