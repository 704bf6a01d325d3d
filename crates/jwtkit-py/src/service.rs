//! `jwtkit.TokenService`: jwtkit's token service (access tokens signed by a
//! `KeyStore`, rotating refresh tokens with reuse detection in memory or on
//! Redis / Redis Cluster) for Python, each call sync (GIL released) or as
//! an awaitable (`*_async`, for asyncio).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use jwtkit::{RedisRefreshStore, RefreshKey, TokenPair, TokenService};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use serde_json::Value;

use crate::errors::{core_err, kind_err};
use crate::runtime::ProcessLocal;
use crate::store::{
    awaitable, block_on, duration_arg, keys_error, message_of, py_to_json, runtime, set_attr, Json,
    PyKeyStore,
};

/// Adds `TokenService` and `KeyMaintenance` to the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTokenService>()?;
    m.add_class::<PyKeyMaintenance>()?;
    Ok(())
}

/// A token-service error as the Python exception of its kind: a refused
/// access token as PyJWT's class for the reason (`ExpiredSignatureError`,
/// …), a refused refresh token as `InvalidGrantError` with `reason`
/// (`"reused"`, `"revoked"`, `"expired"`, `"unknown"`, `"invalid"`), store
/// failures with `retryable`.
fn service_error(err: jwtkit::Error) -> PyErr {
    let retryable = err.is_retryable();
    let reason = match &err {
        jwtkit::Error::InvalidGrant { reason } => Some(reason.as_str()),
        _ => None,
    };
    let message = message_of(&err);
    Python::attach(|py| {
        let py_err = match err {
            jwtkit::Error::InvalidToken(core) | jwtkit::Error::Encoding(core) => core_err(py, core),
            jwtkit::Error::KeyStore(keys) => return keys_error(keys),
            jwtkit::Error::RefreshStore(refresh) => kind_err(py, refresh.kind().as_str(), message),
            other => kind_err(py, other.kind().as_str(), message),
        };
        set_attr(py, &py_err, "retryable", retryable);
        if let Some(reason) = reason {
            set_attr(py, &py_err, "reason", reason);
        }
        py_err
    })
}

fn config_error(message: String) -> PyErr {
    Python::attach(|py| kind_err(py, jwtkit::ErrorKind::Config.as_str(), message))
}

/// A token pair as a dict (RFC 6749 §5.1 names, plus when the refresh token
/// expires and the session id, which is safe to log).
fn pair_json(pair: &TokenPair) -> Json {
    Json(serde_json::json!({
        "access_token": pair.access_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
        "refresh_expires_at": pair.refresh_expires_at,
        "session": pair.session,
    }))
}

/// Where refresh tokens are recorded, as `jwtkit serve --refresh` takes it.
enum RefreshBackend {
    Memory,
    Redis(String),
    Cluster(Vec<String>),
}

fn refresh_backend_arg(spec: Option<&Bound<'_, PyAny>>) -> PyResult<RefreshBackend> {
    let is_redis = |s: &str| s.starts_with("redis://") || s.starts_with("rediss://");
    let usage =
        "refresh_store must be \"memory\", a redis:// (or rediss://) URL, or the redis:// seed \
                 nodes of a Redis Cluster (a list, or one comma-separated str)";
    let Some(spec) = spec else {
        return Ok(RefreshBackend::Memory);
    };
    let nodes: Vec<String> = if let Ok(text) = spec.cast::<PyString>() {
        let text = text.to_cow()?;
        let text = text.trim();
        if text.eq_ignore_ascii_case("memory") {
            return Ok(RefreshBackend::Memory);
        }
        text.split(',').map(|n| n.trim().to_owned()).collect()
    } else if spec.is_instance_of::<PyList>() || spec.is_instance_of::<PyTuple>() {
        let mut nodes = Vec::new();
        for item in spec.try_iter()? {
            let item = item?;
            let Ok(node) = item.cast::<PyString>() else {
                return Err(PyTypeError::new_err(usage));
            };
            nodes.push(node.to_cow()?.trim().to_owned());
        }
        nodes
    } else {
        return Err(PyTypeError::new_err(usage));
    };
    // Never echo the values: a URL may carry a password.
    if nodes.is_empty() || !nodes.iter().all(|n| is_redis(n)) {
        return Err(config_error(usage.to_owned()));
    }
    if nodes.len() == 1 && spec.is_instance_of::<PyString>() {
        return Ok(RefreshBackend::Redis(nodes.concat()));
    }
    Ok(RefreshBackend::Cluster(nodes))
}

/// The refresh key: `refresh_key` (bytes: the secret; str: its base64 or
/// base64url text) or `refresh_key_file` (read, or created with a new
/// secret, mode 0600).
fn refresh_key_arg(
    key: Option<&Bound<'_, PyAny>>,
    file: Option<PathBuf>,
) -> PyResult<Option<RefreshKey>> {
    match (key, file) {
        (Some(_), Some(_)) => Err(config_error(
            "give refresh_key or refresh_key_file, not both".to_owned(),
        )),
        (None, None) => Ok(None),
        (None, Some(path)) => RefreshKey::load_or_create(path)
            .map(Some)
            .map_err(service_error),
        (Some(key), None) => {
            let parsed = if let Ok(bytes) = key.cast::<PyBytes>() {
                RefreshKey::from_secret(bytes.as_bytes())
            } else if let Ok(text) = key.cast::<PyString>() {
                let text = text.to_cow()?;
                refresh_key_text(&text)?;
                RefreshKey::from_base64(&text)
            } else {
                return Err(PyTypeError::new_err(REFRESH_KEY_FORMS));
            };
            parsed.map(Some).map_err(service_error)
        }
    }
}

/// The forms `refresh_key` takes, for the messages refusing others.
const REFRESH_KEY_FORMS: &str =
    "refresh_key must be bytes (the secret itself: 32+ random bytes, e.g. \
     secrets.token_bytes(32)) or str (the secret's base64url text, e.g. secrets.token_urlsafe(32))";

/// Refuses `refresh_key` text that is not what `RefreshKey::from_base64`
/// reads as meant: hex text (`openssl rand -hex 32`, `secrets.token_hex`)
/// is also valid base64 and would silently decode to other bytes than the
/// ones the hex spells; text with characters outside base64url is a
/// plain-text password, not a key.
fn refresh_key_text(text: &str) -> PyResult<()> {
    // Only the first key of a ring (`SECRET`, `SECRET next`, ...) matters
    // for these checks; the others get the same from jwtkit's parser.
    let first = text
        .split(['\n', ','])
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let mut words = first.split_whitespace();
    let secret = words.next().unwrap_or("");
    let secret = secret.strip_prefix("base64url:").unwrap_or(secret);
    // After the secret, a ring entry has only its role: `next`, `until=UNIX`.
    let plain_words = words.any(|w| w != "next" && !w.starts_with("until="));
    if secret.len() >= 16 && secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(config_error(format!(
            "refresh_key: the text is {} hex digits, which is ambiguous: it is also base64 text \
             and would be decoded as base64, to other bytes than the ones the hex spells. Pass \
             the bytes instead (refresh_key=bytes.fromhex(text)), or base64url text \
             (secrets.token_urlsafe(32))",
            secret.len()
        )));
    }
    let base64_char =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'=');
    if plain_words || (!secret.is_empty() && !secret.bytes().all(base64_char)) {
        return Err(config_error(format!(
            "refresh_key: the text is not base64url (it has characters such as spaces or \
             punctuation, like a password would): a str refresh_key is the base64url text of 32+ \
             random bytes. {REFRESH_KEY_FORMS}"
        )));
    }
    Ok(())
}

fn optional_duration(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Duration>> {
    obj.map(|o| duration_arg(o, name)).transpose()
}

/// The settings of `TokenService(...)`, read from Python before the build.
struct Settings {
    issuer: String,
    audience: String,
    backend: RefreshBackend,
    refresh_prefix: Option<String>,
    refresh_key: Option<RefreshKey>,
    access_ttl: Option<Duration>,
    refresh_ttl: Option<Duration>,
    session_lifetime: Option<Duration>,
    leeway: Option<Duration>,
    reuse_grace: Option<Duration>,
    init_algorithm: Option<jwtkit::Algorithm>,
    token_cache: bool,
    allow_long_access_ttl: bool,
}

async fn build(
    key_store: std::sync::Arc<dyn jwtkit::KeyStore>,
    clock: std::sync::Arc<dyn jwtkit::Clock>,
    s: Settings,
) -> PyResult<TokenService> {
    let mut builder = TokenService::builder()
        .shared_key_store(key_store)
        .clock(clock.clone())
        .issuer(s.issuer)
        .audience(s.audience);
    if let Some(ttl) = s.access_ttl {
        builder = builder.access_ttl(ttl);
    }
    if s.allow_long_access_ttl {
        builder = builder.allow_long_access_ttl();
    }
    let refresh_ttl = s.refresh_ttl.unwrap_or(jwtkit::DEFAULT_REFRESH_TTL);
    builder = builder.refresh_ttl(refresh_ttl);
    if let Some(leeway) = s.leeway {
        builder = builder.leeway(leeway);
    }
    if let Some(alg) = s.init_algorithm {
        builder = builder.init_key_store(alg);
    }
    if !s.token_cache {
        builder = builder.no_token_cache();
    }
    if let Some(key) = s.refresh_key.clone() {
        builder = builder.refresh_key(key);
    }
    builder = match s.backend {
        RefreshBackend::Memory => {
            if s.refresh_prefix.is_some() {
                return Err(config_error(
                    "refresh_prefix names Redis keys; it applies to a Redis refresh_store only"
                        .to_owned(),
                ));
            }
            if let Some(lifetime) = s.session_lifetime {
                builder = builder.session_lifetime(lifetime);
            }
            if let Some(grace) = s.reuse_grace {
                builder = builder.reuse_grace(grace);
            }
            builder
        }
        backend => {
            if s.refresh_key.is_none() {
                return Err(config_error(
                    "refresh_key: a Redis refresh store outlives this process, so refresh tokens must \
                     verify after a restart and on every instance: give refresh_key= (the secret as \
                     bytes, or its base64url text, 32+ random bytes) or refresh_key_file= (created \
                     with a new secret, mode 0600, if missing)"
                        .to_owned(),
                ));
            }
            let lifetime = s
                .session_lifetime
                .unwrap_or(jwtkit::DEFAULT_SESSION_LIFETIME)
                .max(refresh_ttl);
            let mut redis = RedisRefreshStore::builder()
                .ttl(refresh_ttl)
                .max_family_lifetime(lifetime)
                .clock(clock);
            redis = match backend {
                RefreshBackend::Redis(url) => redis.url(url),
                RefreshBackend::Cluster(nodes) => redis.cluster_nodes(nodes),
                RefreshBackend::Memory => redis,
            };
            if let Some(prefix) = s.refresh_prefix {
                redis = redis.key_prefix(prefix);
            }
            if let Some(grace) = s.reuse_grace {
                redis = redis.reuse_grace(grace);
            }
            let store = redis
                .connect()
                .await
                .map_err(|e| service_error(jwtkit::Error::RefreshStore(e)))?;
            builder.refresh_store(store)
        }
    };
    builder.build().await.map_err(service_error)
}

/// jwtkit's token service: short access tokens (`typ: at+jwt`) signed by a
/// `KeyStore`, single-use refresh tokens (`typ: refresh+jwt`, HS256 with a
/// separate key) recorded in memory or on Redis, where a replayed refresh
/// token revokes its whole session.
#[pyclass(module = "jwtkit._jwtkit", name = "TokenService", frozen)]
pub(crate) struct PyTokenService {
    /// Usable in the process that made it only.
    service: ProcessLocal<TokenService>,
}

async fn issue(service: TokenService, subject: String, claims: Value) -> PyResult<Json> {
    let pair = service
        .issue(&subject, &claims)
        .await
        .map_err(service_error)?;
    Ok(pair_json(&pair))
}

async fn refresh(service: TokenService, token: String) -> PyResult<Json> {
    let pair = service
        .refresh(&token)
        .await
        .map_err(|e| with_hint(service_error(e), &token))?;
    Ok(pair_json(&pair))
}

async fn revoke(service: TokenService, token: String) -> PyResult<bool> {
    service.revoke_session(&token).await.map_err(service_error)
}

async fn revoke_subject(service: TokenService, subject: String) -> PyResult<usize> {
    service
        .revoke_subject(&subject)
        .await
        .map_err(service_error)
}

async fn verify(service: TokenService, token: String) -> PyResult<Json> {
    match service.verify_access_reloading::<Value>(&token).await {
        Ok(claims) => Ok(Json(claims)),
        Err(err) => Err(match refresh_token_given(&token) {
            Some(message) => Python::attach(|py| {
                let py_err = kind_err(py, jwt_core::ErrorKind::InvalidType.as_str(), message);
                set_attr(py, &py_err, "retryable", false);
                py_err
            }),
            None => with_hint(service_error(err), &token),
        }),
    }
}

/// The message for a refresh token given where an access token belongs,
/// when `token`'s header (read unverified, only to word the error) says it
/// is one (`typ: refresh+jwt`).
fn refresh_token_given(token: &str) -> Option<String> {
    let header = jwt_core::dangerous::insecure_decode_header(token).ok()?;
    let typ = header.typ.as_deref()?;
    typ.eq_ignore_ascii_case("refresh+jwt").then(|| {
        "this is a refresh token (typ refresh+jwt), not an access token: TokenService.verify \
         checks access tokens (typ at+jwt); send the pair's \"access_token\" with each request, \
         and pass the \"refresh_token\" only to refresh() (or revoke())"
            .to_owned()
    })
}

/// [`crate::errors::with_token_hint`] for the token-service calls.
fn with_hint(err: PyErr, token: &str) -> PyErr {
    Python::attach(|py| crate::errors::with_token_hint(py, err, token))
}

async fn jwks(service: TokenService) -> PyResult<Json> {
    let jwks = service.jwks().await.map_err(service_error)?;
    Json::of(serde_json::to_value(&jwks))
}

async fn rotate_if_due(service: TokenService) -> PyResult<Json> {
    let report = service.rotate_if_due().await.map_err(service_error)?;
    match report {
        Some(report) => Json::of(serde_json::to_value(&report)),
        None => Ok(Json(Value::Null)),
    }
}

/// Custom claims for `issue`: a dict (or None for none).
fn custom_claims(claims: Option<&Bound<'_, PyAny>>) -> PyResult<Value> {
    match claims {
        None => Ok(Value::Object(serde_json::Map::new())),
        Some(obj) if obj.is_none() => Ok(Value::Object(serde_json::Map::new())),
        Some(obj) => match py_to_json(obj)? {
            Value::Object(map) => Ok(Value::Object(map)),
            _ => Err(PyTypeError::new_err(
                "claims must be a dict of custom claims (e.g. {\"scope\": \"read\"})",
            )),
        },
    }
}

#[pymethods]
impl PyTokenService {
    /// Builds the service (and connects to Redis) or raises
    /// `ConfigurationError` naming the setting at fault.
    ///
    /// - `key_store`: the `KeyStore` that signs access tokens; with
    ///   `init_algorithm="ES256"` an empty store is initialized.
    /// - `issuer`, `audience`: the `iss` of every token, the `aud` of
    ///   access tokens (both required).
    /// - `refresh_store`: `"memory"` (default), a `redis://`/`rediss://`
    ///   URL, or Redis Cluster seed nodes (a list, or one comma-separated
    ///   str); with Redis, `refresh_key` or `refresh_key_file` is required.
    /// - durations (int seconds or timedelta): `access_ttl` (15 min),
    ///   `refresh_ttl` (14 days), `session_lifetime` (30 days), `leeway`
    ///   (60 s), `reuse_grace` (off; ≤ 60 s); `int` or whole `float`
    ///   seconds, or a `timedelta`.
    /// - `allow_long_access_ttl`: allow an `access_ttl` over 24 h (access
    ///   tokens cannot be revoked; keep them short).
    #[new]
    #[pyo3(signature = (
        key_store, *, issuer, audience, refresh_store=None, refresh_key=None,
        refresh_key_file=None, refresh_prefix=None, access_ttl=None, refresh_ttl=None,
        session_lifetime=None, leeway=None, reuse_grace=None, init_algorithm=None,
        token_cache=true, allow_long_access_ttl=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        key_store: &Bound<'_, PyKeyStore>,
        issuer: String,
        audience: String,
        refresh_store: Option<&Bound<'_, PyAny>>,
        refresh_key: Option<&Bound<'_, PyAny>>,
        refresh_key_file: Option<PathBuf>,
        refresh_prefix: Option<String>,
        access_ttl: Option<&Bound<'_, PyAny>>,
        refresh_ttl: Option<&Bound<'_, PyAny>>,
        session_lifetime: Option<&Bound<'_, PyAny>>,
        leeway: Option<&Bound<'_, PyAny>>,
        reuse_grace: Option<&Bound<'_, PyAny>>,
        init_algorithm: Option<&str>,
        token_cache: bool,
        allow_long_access_ttl: bool,
    ) -> PyResult<Self> {
        let settings = Settings {
            issuer,
            audience,
            backend: refresh_backend_arg(refresh_store)?,
            refresh_prefix,
            refresh_key: refresh_key_arg(refresh_key, refresh_key_file)?,
            access_ttl: optional_duration(access_ttl, "access_ttl")?,
            refresh_ttl: optional_duration(refresh_ttl, "refresh_ttl")?,
            session_lifetime: optional_duration(session_lifetime, "session_lifetime")?,
            leeway: optional_duration(leeway, "leeway")?,
            reuse_grace: optional_duration(reuse_grace, "reuse_grace")?,
            init_algorithm: init_algorithm
                .map(crate::store::algorithm_arg)
                .transpose()?,
            token_cache,
            allow_long_access_ttl,
        };
        let store = key_store.get();
        let service = block_on(
            py,
            build(store.store.get()?.clone(), store.clock.clone(), settings),
        )??;
        Ok(PyTokenService {
            service: ProcessLocal::new("TokenService", service),
        })
    }

    /// The `iss` of every token.
    #[getter]
    fn issuer(&self) -> &str {
        self.service.peek().map_or("", |s| s.issuer())
    }

    /// The `aud` of access tokens.
    #[getter]
    fn audience(&self) -> &str {
        self.service.peek().map_or("", |s| s.audience())
    }

    /// Lifetime of access tokens, in seconds.
    #[getter]
    fn access_ttl(&self) -> u64 {
        self.service.peek().map_or(0, |s| s.access_ttl().as_secs())
    }

    /// Lifetime of refresh tokens, in seconds.
    #[getter]
    fn refresh_ttl(&self) -> u64 {
        self.service.peek().map_or(0, |s| s.refresh_ttl().as_secs())
    }

    /// How long clients may cache the JWKS (`Cache-Control: max-age`), in seconds.
    #[getter]
    fn jwks_max_age(&self) -> u64 {
        self.service
            .peek()
            .map_or(0, |s| s.jwks_max_age().as_secs())
    }

    fn __repr__(&self) -> String {
        format!(
            "TokenService(issuer={:?}, audience={:?}, key_store={:?})",
            self.issuer(),
            self.audience(),
            self.service
                .peek()
                .map_or("closed", |s| s.key_store().name())
        )
    }

    /// Starts a session for `subject`: `{"access_token", "token_type":
    /// "Bearer", "expires_in", "refresh_token", "refresh_expires_at",
    /// "session"}`. `claims` (a dict) go into every access token of the
    /// session; the registered names (iss sub aud exp iat nbf jti) are
    /// refused.
    #[pyo3(signature = (subject, claims=None))]
    fn issue(
        &self,
        py: Python<'_>,
        subject: String,
        claims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Json> {
        let claims = custom_claims(claims)?;
        block_on(py, issue(self.service.get()?.clone(), subject, claims))?
    }

    /// `issue` as an awaitable.
    #[pyo3(signature = (subject, claims=None))]
    fn issue_async<'py>(
        &self,
        py: Python<'py>,
        subject: String,
        claims: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let claims = custom_claims(claims)?;
        awaitable(py, issue(self.service.get()?.clone(), subject, claims))
    }

    /// Exchanges a refresh token for a new pair; the token is consumed
    /// (exactly one of concurrent refreshes wins). A token used before
    /// revokes its whole session: `InvalidGrantError` with `reason ==
    /// "reused"`; later refreshes of the session get `reason == "revoked"`.
    fn refresh(&self, py: Python<'_>, refresh_token: String) -> PyResult<Json> {
        block_on(py, refresh(self.service.get()?.clone(), refresh_token))?
    }

    /// `refresh` as an awaitable.
    fn refresh_async<'py>(
        &self,
        py: Python<'py>,
        refresh_token: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, refresh(self.service.get()?.clone(), refresh_token))
    }

    /// Logout: revokes the session of `refresh_token` (it and every token
    /// of its session stop refreshing). False when it was already revoked.
    /// Access tokens stay valid until they expire.
    fn revoke(&self, py: Python<'_>, refresh_token: String) -> PyResult<bool> {
        block_on(py, revoke(self.service.get()?.clone(), refresh_token))?
    }

    /// `revoke` as an awaitable.
    fn revoke_async<'py>(
        &self,
        py: Python<'py>,
        refresh_token: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, revoke(self.service.get()?.clone(), refresh_token))
    }

    /// Revokes every session of `subject` (logout everywhere); returns how many.
    fn revoke_subject(&self, py: Python<'_>, subject: String) -> PyResult<usize> {
        block_on(py, revoke_subject(self.service.get()?.clone(), subject))?
    }

    /// `revoke_subject` as an awaitable.
    fn revoke_subject_async<'py>(
        &self,
        py: Python<'py>,
        subject: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, revoke_subject(self.service.get()?.clone(), subject))
    }

    /// Verifies an access token (signature, `typ: at+jwt`, `iss`, `aud`,
    /// `exp`, `iat`) and returns its claims. A refresh token is refused.
    /// A kid not loaded yet (another instance rotated) reloads the keys
    /// once (30 s cooldown).
    fn verify(&self, py: Python<'_>, access_token: String) -> PyResult<Json> {
        block_on(py, verify(self.service.get()?.clone(), access_token))?
    }

    /// `verify` as an awaitable.
    fn verify_async<'py>(
        &self,
        py: Python<'py>,
        access_token: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, verify(self.service.get()?.clone(), access_token))
    }

    /// The JWKS to publish at `/.well-known/jwks.json`.
    fn jwks(&self, py: Python<'_>) -> PyResult<Json> {
        block_on(py, jwks(self.service.get()?.clone()))?
    }

    /// `jwks` as an awaitable.
    fn jwks_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, jwks(self.service.get()?.clone()))
    }

    /// Applies the key store's rotation policy once (rotates if due,
    /// retires keys past their grace) and reloads the keys; returns the
    /// rotation report, or None when no rotation was due.
    fn rotate_if_due(&self, py: Python<'_>) -> PyResult<Json> {
        block_on(py, rotate_if_due(self.service.get()?.clone()))?
    }

    /// `rotate_if_due` as an awaitable.
    fn rotate_if_due_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, rotate_if_due(self.service.get()?.clone()))
    }

    /// Starts key maintenance in the background (on the package's runtime,
    /// no Python thread): every `interval` (int seconds or timedelta,
    /// default 60 s, at least 1 s) rotates the key store if its policy says
    /// so, retires keys past their grace, and reloads the keys (picking up
    /// rotations made by other instances). Failures are logged and retried
    /// at the next tick. Runs until `stop()` or until the returned handle
    /// is garbage-collected: keep it.
    #[pyo3(signature = (interval=None))]
    fn start_maintenance(&self, interval: Option<&Bound<'_, PyAny>>) -> PyResult<PyKeyMaintenance> {
        let interval = optional_duration(interval, "interval")?.unwrap_or(Duration::from_secs(60));
        if interval.is_zero() {
            return Err(config_error(
                "start_maintenance: interval must be at least 1 s (0 would run maintenance in a \
                 busy loop); leave it out for the default, 60 s"
                    .to_owned(),
            ));
        }
        let service = self.service.get()?;
        let _entered = runtime()?.enter();
        let task = service.spawn_maintenance(interval);
        Ok(PyKeyMaintenance {
            task: ProcessLocal::new("KeyMaintenance", Mutex::new(Some(task))),
        })
    }

    /// Reloads the verification keys from the key store now.
    fn reload_keys(&self, py: Python<'_>) -> PyResult<()> {
        let service = self.service.get()?.clone();
        block_on(py, async move { service.reload_keys().await })?.map_err(service_error)
    }
}

/// The key maintenance started by `TokenService.start_maintenance`; it
/// stops with `stop()` or when this handle is garbage-collected.
#[pyclass(module = "jwtkit._jwtkit", name = "KeyMaintenance", frozen)]
pub(crate) struct PyKeyMaintenance {
    /// The task, on the runtime of the process that started it.
    task: ProcessLocal<Mutex<Option<jwtkit::MaintenanceTask>>>,
}

#[pymethods]
impl PyKeyMaintenance {
    /// Stops the maintenance at once: a tick under way is abandoned where
    /// it waits, as when the Rust `MaintenanceTask` is dropped.
    /// In a forked child the maintenance does not run (it is the parent's
    /// task): nothing to stop there, and the parent's is left alone.
    fn stop(&self) {
        if let Ok(task) = self.task.get() {
            if let Ok(mut task) = task.lock() {
                task.take();
            }
        }
    }

    /// Whether it still runs.
    #[getter]
    fn running(&self) -> bool {
        self.task
            .get()
            .ok()
            .and_then(|t| t.lock().ok().map(|t| t.is_some()))
            .unwrap_or(false)
    }

    fn __repr__(&self) -> String {
        format!("KeyMaintenance(running={})", self.running())
    }
}
