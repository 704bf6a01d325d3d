//! Bearer- and DPoP-token authentication for tower and axum (feature `axum`).
//!
//! [`BearerAuthLayer`] verifies `Authorization: Bearer <access token>` with a
//! [`TokenService`], puts the typed claims in the request extensions as
//! [`Claims<C>`], and answers refusals as RFC 6750 §3 says: `401` with
//! `WWW-Authenticate: Bearer` (no token) or
//! `WWW-Authenticate: Bearer error="invalid_token", error_description="…"`.
//! Handlers take [`Claims<C>`] as an extractor. With DPoP on the service
//! ([`TokenServiceBuilder::dpop`](crate::TokenServiceBuilder::dpop)), the
//! same layer takes DPoP-bound tokens too (see [below](#dpop-rfc-9449)).
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

//!
//! ## DPoP (RFC 9449)
//!
//! With DPoP on, a request may present `Authorization: DPoP <token>` and
//! exactly one `DPoP: <proof>` header. The layer checks them with
//! [`TokenService::verify_access_dpop_reloading`] against the request's
//! method and URI — on every request, whether the token itself was in the
//! verified-token cache or not — and puts the key's thumbprint in the
//! extensions as [`DpopKey`] beside [`Claims<C>`]. A bound token presented
//! as `Bearer` is refused, and in mode `required` so is every unbound token.
//! Answers follow RFC 9449 §7.1 and §9:
//!
//! | case | status | headers |
//! |---|---|---|
//! | a proof refused (or missing, or two `DPoP` headers) | 401 | `WWW-Authenticate: DPoP error="invalid_dpop_proof", error_description="the DPoP proof was refused: KIND", algs="ES256 …"` |
//! | a nonce is needed (nonces on) | 401 | `WWW-Authenticate: DPoP error="use_dpop_nonce", …` and `DPoP-Nonce: …` |
//! | the token refused (or not bound) | 401 | `WWW-Authenticate: DPoP error="invalid_token", error_description="the access token was refused: KIND", algs="…"` |
//! | a bound token sent as `Bearer` | 401 | `WWW-Authenticate: Bearer error="invalid_token", …bound_token_as_bearer"` and `WWW-Authenticate: DPoP algs="…"` |
//! | the replay cache unreachable | 503 | `Retry-After: 1` (the request is refused, not let through) |
//!
//! With server nonces on, every answer on the DPoP path carries the current
//! `DPoP-Nonce`, so clients follow a rotation without a refused request.
//! The JSON body's `error_description` says in full what was wrong.
//!
//! ### The request URI, behind a proxy
//!
//! A proof names the URI the client sent the request to (`htu`), and the
//! layer must know it. Set the public base URL with
//! [`public_url`](BearerAuthLayer::public_url) (e.g.
//! `https://api.example.com`, or `https://example.com/api` when a proxy
//! maps that prefix to this service's root): the request's path is
//! appended, its query left out. Without it, the layer uses the request's
//! `Host` header with the scheme of
//! [`fallback_scheme`](BearerAuthLayer::fallback_scheme) (default `https`).
//! That is a risk: the client chooses the `Host` header, so a proof
//! captured at *another* server, for the same path, would be accepted here
//! with that server's host in `Host` — the very replay across servers that
//! `htu` exists to stop (the replay cache still stops a second use here,
//! and the token's `ath` and key must still match). Set `public_url` in
//! production.
//!
//! ```
//! use axum::{routing::get, Router};
//! use jwtkit::axum::{BearerAuthLayer, Claims, DpopKey};
//! use jwtkit::dpop::{DpopMode, DpopOptions};
//! use jwtkit::{AccessClaims, MemoryKeyStore, TokenService};
//!
//! async fn me(Claims(claims): Claims<AccessClaims>, key: Option<DpopKey>) -> String {
//!     match key {
//!         Some(DpopKey(jkt)) => format!("hello {}, holder of {jkt}", claims.sub),
//!         None => format!("hello {} (bearer)", claims.sub),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jwtkit::Error> {
//! let tokens = TokenService::builder()
//!     .key_store(MemoryKeyStore::new())
//!     .init_key_store(jwtkit::Algorithm::ES256)
//!     .issuer("https://auth.example.com")
//!     .audience("my-api")
//!     .dpop(DpopOptions::new(DpopMode::Allowed))
//!     .build()
//!     .await?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(BearerAuthLayer::<AccessClaims>::new(tokens).public_url("https://api.example.com")?);
//! # let _ = app; Ok(()) }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, HOST, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jwt_keys::MultiIssuerVerifier;
use serde::de::DeserializeOwned;
use tower::{Layer, Service};

use crate::claims::Confirmed;
use crate::dpop::{DpopMode, DPOP_HEADER, DPOP_NONCE_HEADER};
use crate::error::{DpopRefusal, Error};
use crate::service::TokenService;

/// The verified claims of the request's access token, put in the request
/// extensions by [`BearerAuthLayer`]; also an axum extractor.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims<C>(pub C);

/// The thumbprint (RFC 7638, the token's `cnf.jkt`) of the key whose proof
/// came with a DPoP-bound token, put in the request extensions by
/// [`BearerAuthLayer`]. An extractor: `DpopKey` refuses requests that did
/// not present a bound token (401), `Option<DpopKey>` is `None` for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopKey(pub String);

/// A tower [`Layer`] that lets through only requests with a valid access
/// token (bearer, or DPoP-bound with its proof); see the [module docs](self).
pub struct BearerAuthLayer<C = crate::AccessClaims> {
    tokens: Verification,
    origin: PublicOrigin,
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
    /// The claims of a valid bearer token, or the stable name of the
    /// refusal. A token bound to a key (`cnf`) is refused here: it is
    /// only good with its proof (RFC 9449 §7.2).
    async fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, &'static str> {
        match self {
            Verification::Service(tokens) => tokens
                .verify_access_reloading::<C>(token)
                .await
                .map_err(|e| refusal_name(&e)),
            Verification::Issuers(issuers) => match issuers.verify::<Confirmed<C>>(token).await {
                Ok(d) if d.claims.cnf => Err(DpopRefusal::BoundTokenAsBearer.detail()),
                Ok(d) => Ok(d.claims.claims),
                Err(e) => Err(e.kind().as_str()),
            },
        }
    }

    /// The service, when it takes DPoP-bound tokens.
    fn dpop(&self) -> Option<&TokenService> {
        match self {
            Verification::Service(tokens) if tokens.dpop_mode() != DpopMode::Off => Some(tokens),
            _ => None,
        }
    }
}

/// The stable name of a token refusal, for `error_description`.
fn refusal_name(e: &Error) -> &'static str {
    match e {
        Error::InvalidToken(e) => e.kind().as_str(),
        Error::Dpop { reason, .. } => reason.detail(),
        other => other.kind().as_str(),
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
    /// A layer verifying with `tokens` and deserializing the claims into
    /// `C`. DPoP-bound tokens are taken when the service has DPoP on; set
    /// [`public_url`](Self::public_url) then.
    pub fn new(tokens: TokenService) -> Self {
        BearerAuthLayer {
            tokens: Verification::Service(tokens),
            origin: PublicOrigin::default(),
            _claims: PhantomData,
        }
    }

    /// A layer accepting the tokens of these identity providers, each
    /// verified with its own keys (see the [module docs](self)), for an API
    /// that issues no tokens itself. A token naming no configured issuer is
    /// refused as `invalid_issuer`; an issuer whose keys cannot be loaded
    /// refuses its tokens with the reason (`fetch`, `stale_keys`, …). A
    /// token bound to a key (`cnf`) is refused (`bound_token_as_bearer`):
    /// this layer checks no DPoP proofs for other issuers' tokens.
    pub fn issuers(issuers: MultiIssuerVerifier) -> Self {
        BearerAuthLayer {
            tokens: Verification::Issuers(issuers),
            origin: PublicOrigin::default(),
            _claims: PhantomData,
        }
    }

    /// The public base URL clients reach this service at (e.g.
    /// `https://api.example.com`, or `https://example.com/api` when a proxy
    /// maps `/api` to this service's root): a DPoP proof's `htu` must be it
    /// followed by the request's path. Refused unless it is an absolute
    /// `http`/`https` URL without query, fragment or user information.
    pub fn public_url(mut self, url: &str) -> Result<Self, Error> {
        self.origin = PublicOrigin::url(url)?;
        Ok(self)
    }

    /// [`public_url`](Self::public_url) with an origin already checked (one
    /// a token endpoint builds its proofs' URIs with too).
    pub fn with_origin(mut self, origin: PublicOrigin) -> Self {
        self.origin = origin;
        self
    }

    /// Without [`public_url`](Self::public_url), the scheme put before the
    /// request's `Host` header to make the URI a proof must name: `https`
    /// (the default) or `http` (see the [module docs](self) for the risk).
    pub fn fallback_scheme(mut self, scheme: &str) -> Result<Self, Error> {
        self.origin = PublicOrigin::host_header(scheme)?;
        Ok(self)
    }
}

impl<C> Clone for BearerAuthLayer<C> {
    fn clone(&self) -> Self {
        BearerAuthLayer {
            tokens: self.tokens.clone(),
            origin: self.origin.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C> std::fmt::Debug for BearerAuthLayer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuthLayer")
            .field("verification", &self.tokens)
            .field("origin", &self.origin)
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
            origin: self.origin.clone(),
            _claims: PhantomData,
        }
    }
}

/// Where the URI a client sent a request to comes from, for a DPoP proof's
/// `htu` (RFC 9449 §4.3): a configured public base URL followed by the
/// request's path, or the request's `Host` header with a scheme (see the
/// [module docs](self) for why the first is the safe one). Servers that
/// check proofs outside the layer (a token endpoint) use
/// [`htu`](Self::htu) to get the same URI.
#[derive(Debug, Clone)]
pub struct PublicOrigin {
    /// `scheme://authority[/prefix]`, no trailing `/`.
    base: Option<Arc<str>>,
    /// The scheme before the `Host` header, without a base.
    scheme: &'static str,
}

impl Default for PublicOrigin {
    /// The `Host` header, with `https`.
    fn default() -> Self {
        PublicOrigin {
            base: None,
            scheme: "https",
        }
    }
}

impl PublicOrigin {
    /// A public base URL, e.g. `https://api.example.com` (see
    /// [`BearerAuthLayer::public_url`]).
    pub fn url(url: &str) -> Result<Self, Error> {
        let invalid = |why: &str| {
            Error::config(
                "public_url",
                format!(
                    "{:?} is not a public base URL ({why}); give the absolute http(s) URL \
                     clients reach this service at, e.g. https://api.example.com",
                    url.chars().take(80).collect::<String>()
                ),
            )
        };
        let base = url.trim_end_matches('/');
        let (scheme, rest) = base.split_once("://").ok_or_else(|| invalid("no scheme"))?;
        if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
            return Err(invalid("only http and https"));
        }
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !valid_authority(authority) {
            return Err(invalid(
                "its host is not a host name or IP address with an optional port",
            ));
        }
        if base.contains(['?', '#']) {
            return Err(invalid("a query or fragment"));
        }
        if !valid_path(prefix) {
            return Err(invalid(
                "its path holds characters a URI may not, or a bad %-encoding",
            ));
        }
        Ok(PublicOrigin {
            base: Some(base.into()),
            scheme: "https",
        })
    }

    /// The request's `Host` header with `scheme` (`https` or `http`).
    pub fn host_header(scheme: &str) -> Result<Self, Error> {
        let scheme = match scheme {
            "https" => "https",
            "http" => "http",
            other => {
                return Err(Error::config(
                    "fallback_scheme",
                    format!(
                        "{:?} is not http or https",
                        other.chars().take(16).collect::<String>()
                    ),
                ))
            }
        };
        Ok(PublicOrigin { base: None, scheme })
    }

    /// The absolute URI of a request to `uri` (its path; no query) with
    /// `headers`; `None` when it cannot be made (no base URL and no usable
    /// `Host`, or a path that is not a valid URI path): then no proof can
    /// match.
    pub fn htu(&self, headers: &HeaderMap, uri: &Uri) -> Option<String> {
        let path = uri.path();
        if !valid_path(path) {
            return None;
        }
        match &self.base {
            Some(base) => Some(format!("{base}{path}")),
            None => {
                let host = match headers.get(HOST) {
                    Some(value) => value.to_str().ok()?,
                    None => uri.authority()?.as_str(),
                };
                valid_authority(host).then(|| format!("{}://{host}{path}", self.scheme))
            }
        }
    }
}

/// `host[:port]`: a registered name, an IPv4 address or a bracketed IPv6
/// address, and a port of up to 5 digits.
fn valid_authority(authority: &str) -> bool {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => ("v6", None),
            _ => match after.strip_prefix(':') {
                Some(port) => ("v6", Some(port)),
                None => return false,
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    });
    host_ok && port_ok
}

/// A path a proof's `htu` can be compared with: printable ASCII, every `%`
/// followed by two hex digits.
fn valid_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b.is_ascii_graphic()
            && (b != b'%'
                || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)))
    })
}

/// The service made by [`BearerAuthLayer`].
pub struct BearerAuth<S, C> {
    inner: S,
    tokens: Verification,
    origin: PublicOrigin,
    _claims: PhantomData<fn() -> C>,
}

impl<S: Clone, C> Clone for BearerAuth<S, C> {
    fn clone(&self) -> Self {
        BearerAuth {
            inner: self.inner.clone(),
            tokens: self.tokens.clone(),
            origin: self.origin.clone(),
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
        let origin = self.origin.clone();
        Box::pin(async move {
            if req.headers().get_all(AUTHORIZATION).iter().nth(1).is_some() {
                // One credential per request (RFC 9110 §11.6.2): with two, a
                // proxy reading the other one would judge another request.
                return Ok(two_authorizations());
            }
            let dpop = tokens.dpop();
            if let (Some(service), Some(token)) = (dpop, dpop_token(req.headers())) {
                // Owned: the request's body need not be `Sync` across the await.
                let checked = match dpop_request(&origin, &req) {
                    Ok((proof, htu)) => {
                        let method = req.method().as_str().to_owned();
                        service
                            .verify_access_dpop_reloading::<C>(&token, &proof, &method, &htu)
                            .await
                    }
                    Err(e) => Err(e),
                };
                return match checked {
                    Ok(bound) => {
                        req.extensions_mut().insert(Claims(bound.claims));
                        req.extensions_mut().insert(DpopKey(bound.jkt));
                        let mut response = inner.call(req).await?;
                        add_nonce(service, &mut response);
                        Ok(response)
                    }
                    Err(e) => {
                        tracing::debug!(reason = refusal_name(&e), "DPoP request refused");
                        Ok(dpop_rejection(service, &e))
                    }
                };
            }
            let Some(token) = bearer_token(req.headers()) else {
                if dpop.is_none() && dpop_token(req.headers()).is_some() {
                    // `Authorization: DPoP` where DPoP is off: say so.
                    return Ok(dpop_not_enabled());
                }
                return Ok(with_dpop_challenge(dpop, challenge(None)));
            };
            match tokens.verify::<C>(&token).await {
                Ok(claims) => {
                    req.extensions_mut().insert(Claims(claims));
                    inner.call(req).await
                }
                Err(kind) => {
                    tracing::debug!(reason = kind, "bearer token refused");
                    Ok(with_dpop_challenge(dpop, challenge(Some(kind))))
                }
            }
        })
    }
}

/// The answer to a request with more than one `Authorization` header:
/// `400 invalid_request` (RFC 6750 §3.1).
fn two_authorizations() -> Response {
    invalid_request(
        StatusCode::BAD_REQUEST,
        "more than one Authorization header; send exactly one",
        "Bearer error=\"invalid_request\", error_description=\"more than one Authorization header\"",
    )
}

/// The answer to `Authorization: DPoP` where DPoP is off: `401
/// invalid_request` with a `Bearer` challenge, saying that DPoP is off.
fn dpop_not_enabled() -> Response {
    invalid_request(
        StatusCode::UNAUTHORIZED,
        &Error::dpop(crate::error::DpopRefusal::NotEnabled).to_string(),
        "Bearer error=\"invalid_request\", error_description=\"DPoP is not enabled here: send \
         Authorization: Bearer\"",
    )
}

/// An `invalid_request` answer with `description` and the challenge.
fn invalid_request(status: StatusCode, description: &str, challenge: &'static str) -> Response {
    let mut response = (
        status,
        axum::Json(serde_json::json!({
            "error": "invalid_request",
            "error_description": description,
        })),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The DPoP path's inputs: the one `DPoP` header, and the URI the client
/// sent the request to.
fn dpop_request<B>(origin: &PublicOrigin, req: &Request<B>) -> Result<(String, String), Error> {
    let proof = single_proof(req.headers())?;
    // Inside `Router::nest`, the request's URI lost its prefix; the
    // client's proof names the whole path.
    let uri = req
        .extensions()
        .get::<OriginalUri>()
        .map_or(req.uri(), |o| &o.0);
    let Some(htu) = origin.htu(req.headers(), uri) else {
        return Err(Error::dpop(DpopRefusal::Proof(
            jwt_core::dpop::DpopErrorKind::HtuMismatch,
        )));
    };
    Ok((proof.to_owned(), htu))
}

/// The one `DPoP` header of a request (RFC 9449 §4.3: exactly one).
fn single_proof(headers: &HeaderMap) -> Result<&str, Error> {
    let mut values = headers.get_all(DPOP_HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        let refusal = if headers.contains_key(DPOP_HEADER) {
            DpopRefusal::MultipleProofs
        } else {
            DpopRefusal::MissingProof
        };
        return Err(Error::dpop(refusal));
    };
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| Error::dpop(DpopRefusal::Proof(jwt_core::dpop::DpopErrorKind::Malformed)))
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    scheme_token(headers, "bearer")
}

/// The token of an `Authorization: DPoP …` header (scheme case-insensitive).
pub fn dpop_token(headers: &HeaderMap) -> Option<String> {
    scheme_token(headers, "dpop")
}

fn scheme_token(headers: &HeaderMap, wanted: &str) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case(wanted) {
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

/// `algs="ES256 …"`: the algorithms the service accepts for proofs.
fn algs_param(service: &TokenService) -> String {
    let algs: Vec<&str> = service
        .dpop_algorithms()
        .iter()
        .map(|a| a.as_str())
        .collect();
    format!("algs=\"{}\"", algs.join(" "))
}

/// Adds `WWW-Authenticate: DPoP algs="…"` to a bearer answer when the
/// service takes DPoP (RFC 9449 §7.1: both schemes are offered).
fn with_dpop_challenge(dpop: Option<&TokenService>, mut response: Response) -> Response {
    if let Some(service) = dpop {
        if let Ok(value) = HeaderValue::from_str(&format!("DPoP {}", algs_param(service))) {
            response.headers_mut().append(WWW_AUTHENTICATE, value);
        }
    }
    response
}

/// The current server nonce on an answer of the DPoP path (RFC 9449 §9),
/// unless the handler set one.
fn add_nonce(service: &TokenService, response: &mut Response) {
    let name = HeaderName::from_static(DPOP_NONCE_HEADER);
    if response.headers().contains_key(&name) {
        return;
    }
    if let Some(value) = service
        .dpop_nonce()
        .and_then(|n| HeaderValue::from_str(&n).ok())
    {
        response.headers_mut().insert(name, value);
    }
}

/// The answer to a refused DPoP request (RFC 9449 §7.1, §9).
fn dpop_rejection(service: &TokenService, e: &Error) -> Response {
    let (status, code, description) = match e {
        Error::Dpop { reason, .. } => {
            let code = reason.oauth_error();
            let what = if code == "invalid_token" {
                "the access token was refused"
            } else {
                "the DPoP proof was refused"
            };
            (
                StatusCode::UNAUTHORIZED,
                code,
                format!("{what}: {}", reason.detail()),
            )
        }
        // The replay cache could not decide: refused, and worth a retry.
        e if e.is_retryable() && matches!(e, Error::ReplayCache(_)) => {
            tracing::warn!(error = %e, "DPoP replay cache unavailable; request refused");
            let body = serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": "the DPoP replay cache is unavailable; retry",
            });
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return response;
        }
        Error::ReplayCache(_) | Error::Config { .. } => {
            tracing::error!(error = %e, "DPoP check failed on the server's side");
            let body = serde_json::json!({
                "error": "server_error",
                "error_description": "the DPoP proof could not be checked",
            });
            return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
        }
        // The token itself, as on the bearer path.
        other => (
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            format!("the access token was refused: {}", refusal_name(other)),
        ),
    };
    let header = format!(
        "DPoP error=\"{code}\", error_description=\"{description}\", {}",
        algs_param(service)
    );
    // The full message says what to fix; values from the proof in it are
    // quoted and cut short by jwt-core.
    let body = serde_json::json!({"error": code, "error_description": e.to_string()});
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&header) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    add_nonce(service, &mut response);
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

/// The rejection of the [`DpopKey`] extractor on a request that presented
/// no DPoP-bound token: `401`, `WWW-Authenticate: DPoP error="invalid_token"`.
#[derive(Debug, Clone, Copy)]
pub struct NotDpopBound;

impl IntoResponse for NotDpopBound {
    fn into_response(self) -> Response {
        let description = "the access token was refused: unbound_token";
        let body = serde_json::json!({
            "error": "invalid_token",
            "error_description": "this resource requires a DPoP-bound access token, with its proof",
        });
        let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&format!(
            "DPoP error=\"invalid_token\", error_description=\"{description}\""
        )) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for DpopKey {
    type Rejection = NotDpopBound;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<DpopKey>()
            .cloned()
            .ok_or(NotDpopBound)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for DpopKey {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<DpopKey>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_origins_are_checked_and_make_the_htu() {
        let uri: Uri = "/userinfo?x=1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("api.internal:8080"));
        let origin = PublicOrigin::url("https://api.example.com/").unwrap();
        assert_eq!(
            origin.htu(&headers, &uri).as_deref(),
            Some("https://api.example.com/userinfo")
        );
        let prefixed = PublicOrigin::url("https://example.com/api").unwrap();
        assert_eq!(
            prefixed.htu(&headers, &uri).as_deref(),
            Some("https://example.com/api/userinfo")
        );
        let host = PublicOrigin::host_header("http").unwrap();
        assert_eq!(
            host.htu(&headers, &uri).as_deref(),
            Some("http://api.internal:8080/userinfo")
        );
        for bad_host in [
            "a:b:c",
            "evil.example/x",
            "a b",
            "",
            "h:99999",
            "[zz]",
            "u@h",
        ] {
            headers.insert(HOST, HeaderValue::from_str(bad_host).unwrap());
            assert_eq!(host.htu(&headers, &uri), None, "{bad_host:?}");
        }
        headers.insert(HOST, HeaderValue::from_static("[::1]:8443"));
        assert_eq!(
            host.htu(&headers, &uri).as_deref(),
            Some("http://[::1]:8443/userinfo")
        );
        let bad_path: Uri = "/a%zz".parse().unwrap();
        assert_eq!(origin.htu(&headers, &bad_path), None);
        for bad in [
            "api.example.com",
            "ftp://api.example.com",
            "https://u@api.example.com",
            "https://api.example.com/x?y",
            "https://api.example.com#f",
            "https://:443",
            "https://api.example.com/a b",
        ] {
            assert!(
                matches!(
                    PublicOrigin::url(bad),
                    Err(Error::Config {
                        setting: "public_url",
                        ..
                    })
                ),
                "{bad} accepted"
            );
        }
        assert!(matches!(
            PublicOrigin::host_header("ftp"),
            Err(Error::Config {
                setting: "fallback_scheme",
                ..
            })
        ));
    }
}
