//! `jwtkit.KeyStore`: a key store opened from a URI (`file:`, `env:`,
//! `kms:`, `vault+https://`), with signing, the JWKS to publish, rotation
//! and the audit; and `jwtkit.KeyStoreVerifier`, which verifies what the
//! store signed through jwt-keys' one key cache.
//!
//! Also the pieces [`crate::service`] shares: the one process-wide tokio
//! runtime, the GIL-free blocking call, the arguments both take (durations,
//! algorithms), results handed to Python as JSON, and jwt-keys errors as
//! Python exceptions.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, Clock, Header, ManualClock, SystemClock, Validation};
use jwt_keys::{AlgorithmRule, KeySource, KeyStore, KeyStoreExt, RotationPolicy};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Value};

use crate::errors::to_py_err;
use crate::runtime::ProcessLocal;

/// Adds `KeyStore` and `KeyStoreVerifier` to the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKeyStore>()?;
    m.add_class::<PyKeyStoreVerifier>()?;
    Ok(())
}

// The runtime (one per process: see crate::runtime), re-exported for
// crate::service.
pub(crate) use crate::runtime::{awaitable, block_on, runtime};

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// The message of `err` with its sources, each once.
pub(crate) fn message_of(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

/// A jwt-keys error as the Python exception of its kind (`expired`,
/// `unknown_key`, `not_initialized`, …; token rejections as PyJWT's
/// classes), with `retryable` set (a retry of the same call may succeed).
pub(crate) fn keys_error(err: jwt_keys::Error) -> PyErr {
    let retryable = err.is_retryable();
    Python::attach(|py| {
        let py_err = crate::errors::keys_err(py, err);
        set_attr(py, &py_err, "retryable", retryable);
        py_err
    })
}

/// Sets an attribute on the exception instance of `err` (best effort: an
/// exception class without a `__dict__` keeps only its message and kind).
pub(crate) fn set_attr<'py, V>(py: Python<'py>, err: &PyErr, name: &str, value: V)
where
    V: IntoPyObject<'py>,
{
    let _ = err.value(py).setattr(name, value);
}

fn invalid_claim(message: String) -> PyErr {
    to_py_err(jwt_core::ErrorKind::InvalidClaim.as_str(), message)
}

// ---------------------------------------------------------------------------
// Python ⇄ JSON (the conversions themselves are crate::convert's)
// ---------------------------------------------------------------------------

/// A JSON value for the Python object `obj`, as `json.dumps` takes it.
pub(crate) fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    crate::convert::to_json(obj, 1)
}

/// A JSON value handed to Python as a dict (or list, …): what the sync and
/// the async methods return.
pub(crate) struct Json(pub(crate) Value);

impl Json {
    /// `serde_json::to_value(&report)` handed to Python (every report type
    /// of jwt-keys is `Serialize`).
    pub(crate) fn of(value: Result<Value, serde_json::Error>) -> PyResult<Json> {
        value.map(Json).map_err(|e| {
            PyValueError::new_err(format!("could not represent the result as JSON: {e}"))
        })
    }
}

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        crate::convert::to_py(py, &self.0)
    }
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

/// A duration argument: seconds as an `int` or a whole `float` (`60.0`),
/// or a `datetime.timedelta` of whole seconds; never negative. (`leeway` of
/// `jwtkit.decode` alone takes fractions, rounded up, as PyJWT does.)
pub(crate) fn duration_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Duration> {
    let py = obj.py();
    let timedelta = py.import("datetime")?.getattr("timedelta")?;
    let seconds: f64 = if obj.is_instance(&timedelta)? {
        obj.call_method0("total_seconds")?.extract()?
    } else if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
        match obj.extract::<u64>() {
            Ok(s) => return Ok(Duration::from_secs(s)),
            Err(_) => {
                return Err(PyValueError::new_err(format!(
                    "{name} = {obj}: a duration is a number of seconds ≥ 0"
                )))
            }
        }
    } else if obj.is_instance_of::<PyFloat>() {
        obj.extract()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{name}: a duration is a number of seconds (int, or a float of whole seconds such as \
             60.0) or a datetime.timedelta, not {}",
            obj.get_type().name()?
        )));
    };
    if !(0.0..=u64::MAX as f64).contains(&seconds) || seconds.fract() != 0.0 {
        return Err(PyValueError::new_err(format!(
            "{name} = {seconds}s: a duration is a whole number of seconds ≥ 0"
        )));
    }
    Ok(Duration::from_secs(seconds as u64))
}

/// The `leeway` of `KeyStore.verify`/`verifier` (and `TokenService`): a
/// duration as [`duration_arg`] takes it (NaN and negative values refused),
/// at most one year, as `jwtkit.decode` bounds it.
pub(crate) fn leeway_arg(obj: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let max = crate::jwt::MAX_LEEWAY_SECS;
    let too_long = || {
        to_py_err(
            "config",
            format!(
                "leeway = {obj}: leeway must be between 0 and one year of seconds ({max}); a \
                 longer one would accept tokens that expired long ago"
            ),
        )
    };
    // An int too large for a duration is refused as too long, not as
    // malformed.
    if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
        if let Ok(big) = obj.gt(max) {
            if big {
                return Err(too_long());
            }
        }
    }
    // NaN, negative or fractional: a ConfigurationError (a ValueError) as
    // from `jwtkit.decode`, with duration_arg's message.
    let leeway = duration_arg(obj, "leeway").map_err(|e| {
        if e.is_instance_of::<PyValueError>(obj.py()) {
            to_py_err("config", e.value(obj.py()).to_string())
        } else {
            e
        }
    })?;
    if leeway.as_secs() > max {
        return Err(too_long());
    }
    Ok(leeway)
}

/// `KeyStore.open(now=...)`: Unix seconds (an `int`) or a `datetime`.
fn now_arg(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    if let Some(secs) = crate::convert::datetime_secs(obj.py(), obj)? {
        return Ok(secs);
    }
    if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
        return obj.extract();
    }
    Err(PyTypeError::new_err(format!(
        "now must be Unix seconds (an int) or a datetime.datetime, not {}",
        obj.get_type().name()?
    )))
}

/// An algorithm name (`"ES256"`, `"EdDSA"`, …; case-sensitive as RFC 7515
/// requires).
pub(crate) fn algorithm_arg(name: &str) -> PyResult<Algorithm> {
    name.parse::<Algorithm>()
        .map_err(|e| to_py_err(e.kind().as_str(), message_of(&e)))
}

/// A str, or a list/tuple of str (an audience, an issuer).
fn strings_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<String>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(vec![s.to_cow()?.into_owned()]);
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in obj.try_iter()? {
            let item = item?;
            let Ok(s) = item.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "{name}: every item must be a str"
                )));
            };
            out.push(s.to_cow()?.into_owned());
        }
        if out.is_empty() {
            return Err(PyValueError::new_err(format!(
                "{name} is empty; give at least one, or None to not check it"
            )));
        }
        return Ok(out);
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be a str or a list of str"
    )))
}

/// The policy keys, as `KeyStore.policy()` returns them and `init` takes them.
const POLICY_KEYS: &str =
    "rotate_after, prepublish, verify_grace, max_token_lifetime, leeway, allowed_algorithms";

/// A rotation policy from a dict (durations in seconds or timedeltas); the
/// keys left out keep their defaults.
fn policy_arg(policy: Option<&Bound<'_, PyDict>>) -> PyResult<RotationPolicy> {
    let mut builder = RotationPolicy::builder();
    let mut given: Vec<String> = Vec::new();
    for (key, value) in policy.into_iter().flat_map(|d| d.iter()) {
        let key: String = key
            .extract()
            .map_err(|_| PyTypeError::new_err("policy: every key must be a str"))?;
        given.push(key.clone());
        let what = format!("policy[{key:?}]");
        builder = match key.as_str() {
            "rotate_after" => builder.rotate_after(duration_arg(&value, &what)?),
            "prepublish" => builder.prepublish(duration_arg(&value, &what)?),
            "verify_grace" => builder.verify_grace(duration_arg(&value, &what)?),
            "max_token_lifetime" => builder.max_token_lifetime(duration_arg(&value, &what)?),
            "leeway" => builder.leeway(duration_arg(&value, &what)?),
            "allowed_algorithms" => {
                let names = strings_arg(&value, &what)?;
                let algs = names
                    .iter()
                    .map(|n| algorithm_arg(n))
                    .collect::<PyResult<Vec<_>>>()?;
                builder.allowed_algorithms(algs)
            }
            other => {
                return Err(to_py_err(
                    "config",
                    format!("policy: unknown setting {other:?}; the settings are {POLICY_KEYS}"),
                ))
            }
        };
    }
    builder.build().map_err(|e| {
        let err = keys_error(e);
        Python::attach(|py| default_setting_hint(py, err, &given))
    })
}

/// A policy refusal naming a setting that was left out gets a word that
/// its value is the default, and which setting to give too (e.g.
/// `{"rotate_after": 3600}` against the default `prepublish` of 86400 s).
fn default_setting_hint(py: Python<'_>, err: PyErr, given: &[String]) -> PyErr {
    let value = err.value(py);
    let message = value.str().map(|s| s.to_string()).unwrap_or_default();
    let defaults = RotationPolicy::default();
    let left_out: Vec<(&str, u64)> = [
        ("rotate_after", defaults.rotate_after().as_secs()),
        ("prepublish", defaults.prepublish().as_secs()),
        ("verify_grace", defaults.verify_grace().as_secs()),
        (
            "max_token_lifetime",
            defaults.max_token_lifetime().as_secs(),
        ),
        ("leeway", defaults.leeway().as_secs()),
    ]
    .into_iter()
    .filter(|(name, secs)| {
        !given.iter().any(|g| g == name) && message.contains(&format!("{name} ({secs}s)"))
    })
    .collect();
    if left_out.is_empty() {
        return err;
    }
    let hints: Vec<String> = left_out
        .iter()
        .map(|(name, secs)| {
            format!("{secs} s is the default {name} (not given): set \"{name}\" in the policy too")
        })
        .collect();
    let _ = value.setattr("args", (format!("{message}; {}", hints.join("; ")),));
    err
}

/// A policy as a dict, in the shape `policy_arg` takes.
fn policy_json(policy: &RotationPolicy) -> Value {
    serde_json::json!({
        "rotate_after": policy.rotate_after().as_secs(),
        "prepublish": policy.prepublish().as_secs(),
        "verify_grace": policy.verify_grace().as_secs(),
        "max_token_lifetime": policy.max_token_lifetime().as_secs(),
        "leeway": policy.leeway().as_secs(),
        "allowed_algorithms": policy.allowed_algorithms().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
    })
}

/// The header template of `KeyStore.sign`: `typ` (`JWT` unless given;
/// `None` leaves it out), `cty`, and other parameters; `alg` and `kid` come
/// from the store's active key, and the parameters verifiers refuse or must
/// never trust are refused here, before anything is signed.
fn header_arg(headers: Option<&Bound<'_, PyDict>>) -> PyResult<Header> {
    // The template's `alg` is replaced by the active key's.
    let mut header = Header::new(Algorithm::ES256);
    for (key, value) in headers.into_iter().flat_map(|d| d.iter()) {
        let name: String = key
            .extract()
            .map_err(|_| PyTypeError::new_err("headers: every parameter name must be a str"))?;
        let refused = match name.as_str() {
            "alg" | "kid" => Some(
                "the store's active key decides `alg` and `kid`; a token signed by a store always \
                 names the key that signed it",
            ),
            "crit" | "b64" => Some(
                "jwtkit implements no critical header extensions (RFC 7515 §4.1.11) or unencoded \
                 payloads (RFC 7797), and verifiers refuse tokens that declare them",
            ),
            "jku" | "x5u" | "jwk" | "x5c" => Some(
                "a verifier must never take its key from the token (RFC 8725 §3.10); publish the \
                 store's keys with KeyStore.jwks() instead",
            ),
            _ => None,
        };
        if let Some(why) = refused {
            return Err(to_py_err("config", format!("headers[{name:?}]: {why}")));
        }
        let what = format!("headers[{name:?}]");
        match name.as_str() {
            "typ" | "cty" => {
                let text = if value.is_none() {
                    None
                } else {
                    Some(value.extract::<String>().map_err(|_| {
                        PyTypeError::new_err(format!("{what} must be a str or None"))
                    })?)
                };
                if name == "typ" {
                    header.typ = text.map(Into::into);
                } else {
                    header.cty = text.map(Into::into);
                }
            }
            _ => {
                header.extra.insert(name.clone(), py_to_json(&value)?);
            }
        }
    }
    Ok(header)
}

/// The store's policy applied to the claims of `KeyStore.sign`, at `now`
/// (the store's clock), as `jwtkit sign --store` applies it: `iat` is now
/// unless given, `exp` defaults to now + `max_token_lifetime` and may not be
/// later, nor at or before now or `nbf`.
fn apply_policy(claims: &mut Map<String, Value>, now: i64, max_lifetime: Duration) -> PyResult<()> {
    let max = i64::try_from(max_lifetime.as_secs()).unwrap_or(i64::MAX);
    let date = |claims: &Map<String, Value>, name: &str| -> PyResult<Option<f64>> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(invalid_claim(format!(
                "`{name}` must be a NumericDate (seconds since the epoch, or a datetime), not {other}"
            ))),
        }
    };
    claims.entry("iat").or_insert_with(|| Value::from(now));
    let exp = match date(claims, "exp")? {
        Some(exp) => exp,
        None => {
            let exp = now.saturating_add(max);
            claims.insert("exp".into(), Value::from(exp));
            exp as f64
        }
    };
    if exp <= now as f64 {
        return Err(invalid_claim(format!(
            "`exp` ({exp}) is not after now ({now}): the token would be born expired"
        )));
    }
    if exp - now as f64 > max as f64 {
        return Err(to_py_err(
            jwt_keys::ErrorKind::PolicyViolation.as_str(),
            format!(
                "`exp` ({exp}) is {}s after now ({now}); the store's rotation policy allows at most \
                 max_token_lifetime = {max}s; leave `exp` out to get exactly that",
                exp - now as f64
            ),
        ));
    }
    if let Some(nbf) = date(claims, "nbf")? {
        if exp <= nbf {
            return Err(invalid_claim(format!(
                "`exp` ({exp}) is not after `nbf` ({nbf}): the token would never be valid"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// KeyStore
// ---------------------------------------------------------------------------

/// A key store: signs with its active key, publishes its JWKS, rotates
/// under its policy and audits itself.
///
/// Open one with `KeyStore.open(uri)`; every method that waits on the store
/// releases the GIL, and `sign_async`/`jwks_async` are awaitables for
/// asyncio code.
#[pyclass(module = "jwtkit._jwtkit", name = "KeyStore", frozen)]
pub(crate) struct PyKeyStore {
    /// The store, usable in the process that opened it only.
    pub(crate) store: ProcessLocal<Arc<dyn KeyStore>>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl PyKeyStore {
    fn verifier_for(
        &self,
        audience: Option<&Bound<'_, PyAny>>,
        issuer: Option<&Bound<'_, PyAny>>,
        subject: Option<String>,
        typ: Option<String>,
        leeway: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<jwt_keys::Verifier> {
        let mut validation = Validation::new(Algorithm::ALL).clock(self.clock.clone());
        if let Some(audience) = audience {
            for aud in strings_arg(audience, "audience")? {
                validation = validation.audience(aud);
            }
        }
        if let Some(issuer) = issuer {
            for iss in strings_arg(issuer, "issuer")? {
                validation = validation.issuer(iss);
            }
        }
        if let Some(subject) = subject {
            validation = validation.subject(subject);
        }
        if let Some(typ) = typ {
            validation = validation.typ(typ);
        }
        if let Some(leeway) = leeway {
            validation = validation.leeway(leeway_arg(leeway)?);
        }
        // The store's records name each key's algorithm: a key verifies
        // with that one only (as `jwtkit verify --store` and TokenService do).
        jwt_keys::Verifier::builder(KeySource::Store(self.store.get()?.clone()), validation)
            .clock(self.clock.clone())
            .algorithms(AlgorithmRule::KeysOnly)
            .build()
            .map_err(keys_error)
    }

    fn sign_future(
        &self,
        claims: &Bound<'_, PyAny>,
        headers: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<impl Future<Output = PyResult<String>> + Send + 'static> {
        let mut claims = crate::convert::claims_to_json(claims.py(), claims)?;
        let template = header_arg(headers)?;
        let store = self.store.get()?.clone();
        Ok(async move {
            let policy = store.policy().await.map_err(keys_error)?;
            apply_policy(
                &mut claims,
                store.clock().now(),
                policy.max_token_lifetime(),
            )?;
            store
                .sign_token_with_header(&Value::Object(claims), &template)
                .await
                .map_err(keys_error)
        })
    }
}

#[pymethods]
impl PyKeyStore {
    /// Opens the store `uri`: `file:DIR`, `env:NAME`, `kms:KEY` (or
    /// `kms:alias/NAME`), `vault+https://HOST/MOUNT/KEY` (`vault+http://`
    /// to a loopback address). `now` (Unix seconds, or a `datetime`; a
    /// naive one is taken as UTC) fixes the store's clock,
    /// like `jwtkit --now`: every key state, rotation and audit is decided
    /// at that instant.
    #[staticmethod]
    #[pyo3(signature = (uri, *, now=None))]
    fn open(py: Python<'_>, uri: &str, now: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let now = now.map(now_arg).transpose()?;
        let clock: Arc<dyn Clock> = match now {
            Some(t) => Arc::new(ManualClock::new(t)),
            None => Arc::new(SystemClock),
        };
        let uri = uri.to_owned();
        let opened_clock = clock.clone();
        // Remote backends build their clients inside the runtime.
        let runtime = runtime()?;
        let store = py.detach(move || {
            let _entered = runtime.enter();
            jwt_keys::open_store_with_clock(&uri, opened_clock)
        });
        Ok(PyKeyStore {
            store: ProcessLocal::new("KeyStore", store.map_err(keys_error)?),
            clock,
        })
    }

    /// The backend's name: `"file"`, `"env"`, `"aws-kms"`, `"vault"`, `"pkcs11"`.
    #[getter]
    fn backend(&self) -> &'static str {
        self.store.peek().map_or("closed", |s| s.name())
    }

    fn __repr__(&self) -> String {
        format!("KeyStore(backend={:?})", self.backend())
    }

    /// Creates the first active key (`alg`) and its pending successor, and
    /// records `policy` (a dict: rotate_after, prepublish, verify_grace,
    /// max_token_lifetime, leeway as seconds or timedeltas;
    /// allowed_algorithms as names; the keys left out keep their defaults).
    /// Refused when the store already holds keys. Returns the rotation
    /// report: `{"previous": None, "active", "pending", …}`.
    #[pyo3(signature = (alg, policy=None))]
    fn init(
        &self,
        py: Python<'_>,
        alg: &str,
        policy: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Json> {
        let alg = algorithm_arg(alg)?;
        let policy = policy_arg(policy)?;
        let store = self.store.get()?.clone();
        let report = block_on(py, async move { store.init(alg, &policy).await })?;
        Json::of(serde_json::to_value(&report.map_err(keys_error)?))
    }

    /// The key that signs now: `{"kid": …, "alg": …}`.
    fn active(&self, py: Python<'_>) -> PyResult<Json> {
        let store = self.store.get()?.clone();
        let key = block_on(py, async move { store.active().await })?.map_err(keys_error)?;
        Ok(Json(
            serde_json::json!({"kid": key.kid, "alg": key.alg.as_str()}),
        ))
    }

    /// The rotation policy recorded with the store, in the shape `init` takes.
    fn policy(&self, py: Python<'_>) -> PyResult<Json> {
        let store = self.store.get()?.clone();
        let policy = block_on(py, async move { store.policy().await })?.map_err(keys_error)?;
        Ok(Json(policy_json(&policy)))
    }

    /// Signs `claims` (a dict; `exp`/`iat`/`nbf` may be datetimes) with the
    /// active key; `alg` and `kid` come from that key, `headers` may set
    /// `typ` (default `"JWT"`, None leaves it out), `cty` and other
    /// parameters. The store's policy applies: `iat` defaults to now, `exp`
    /// to now + max_token_lifetime, and a later `exp` is refused.
    #[pyo3(signature = (claims, headers=None))]
    fn sign(
        &self,
        py: Python<'_>,
        claims: &Bound<'_, PyAny>,
        headers: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let fut = self.sign_future(claims, headers)?;
        block_on(py, fut)?
    }

    /// `sign` as an awaitable.
    #[pyo3(signature = (claims, headers=None))]
    fn sign_async<'py>(
        &self,
        py: Python<'py>,
        claims: &Bound<'py, PyAny>,
        headers: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fut = self.sign_future(claims, headers)?;
        awaitable(py, fut)
    }

    /// The JWKS to publish: `{"keys": [...]}` with every pending, active and
    /// retiring key (public parts only).
    fn jwks(&self, py: Python<'_>) -> PyResult<Json> {
        let store = self.store.get()?.clone();
        let jwks = block_on(py, async move { store.verification_keys().await })?;
        Json::of(serde_json::to_value(&jwks.map_err(keys_error)?))
    }

    /// `jwks` as an awaitable.
    fn jwks_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.get()?.clone();
        awaitable(py, async move {
            let jwks = store.verification_keys().await.map_err(keys_error)?;
            Json::of(serde_json::to_value(&jwks))
        })
    }

    /// Every key the store knows, retired ones included:
    /// `[{"kid", "alg", "state", "created_at", …}]`.
    fn keys(&self, py: Python<'_>) -> PyResult<Json> {
        let store = self.store.get()?.clone();
        let records = block_on(py, async move { store.list().await })?;
        Json::of(serde_json::to_value(&records.map_err(keys_error)?))
    }

    /// Rotates now: the pending key becomes active, the active key starts
    /// retiring (it verifies for the policy's verify_grace), a new pending
    /// key is published. With `if_active=KID`, only if KID still signs
    /// (else a `conflict` error): several processes rotate once. Returns the
    /// rotation report `{"previous", "active", "pending",
    /// "previous_retire_at", "retired", "published_for_secs"}`.
    #[pyo3(signature = (*, if_active=None))]
    fn rotate(&self, py: Python<'_>, if_active: Option<String>) -> PyResult<Json> {
        let store = self.store.get()?.clone();
        let report = block_on(py, async move { store.rotate(if_active.as_deref()).await })?;
        Json::of(serde_json::to_value(&report.map_err(keys_error)?))
    }

    /// Rotates only if the policy says it is due, and retires keys past
    /// their grace either way: `{"rotated": REPORT | None, "retired": [KID…]}`.
    fn rotate_if_due(&self, py: Python<'_>) -> PyResult<Json> {
        let store = self.store.get()?.clone();
        let changes = block_on(py, async move { store.rotate_if_due().await })?;
        Json::of(serde_json::to_value(&changes.map_err(keys_error)?))
    }

    /// Retires the retiring keys whose grace has ended (destroying their
    /// private keys where the backend can); returns their kids.
    fn retire_expired(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let store = self.store.get()?.clone();
        block_on(py, async move { store.retire_expired().await })?.map_err(keys_error)
    }

    /// Checks the store against its policy: `{"now", "findings": [{"finding":
    /// NAME, …, "message": TEXT}], "active", "next_rotation_at",
    /// "next_signer", "compliant"}` (`compliant`: no findings).
    fn audit(&self, py: Python<'_>) -> PyResult<Json> {
        let store = self.store.get()?.clone();
        let report = block_on(py, async move { store.audit().await })?.map_err(keys_error)?;
        let mut json = serde_json::to_value(&report)
            .map_err(|e| PyValueError::new_err(format!("could not represent the audit: {e}")))?;
        if let Some(findings) = json.get_mut("findings").and_then(Value::as_array_mut) {
            for (finding, described) in findings.iter_mut().zip(&report.findings) {
                if let Some(object) = finding.as_object_mut() {
                    object.insert(
                        "message".into(),
                        Value::String(crate::errors::python_hints(&described.to_string())),
                    );
                }
            }
        }
        if let Some(object) = json.as_object_mut() {
            object.insert("compliant".into(), Value::Bool(report.findings.is_empty()));
        }
        Ok(Json(json))
    }

    /// A verifier of the tokens this store signs, holding the store's keys
    /// in memory (reloaded when a token names a kid it does not know, at
    /// most every 30 s, and when a retiring key's grace ends). Each key
    /// verifies with the algorithm its record names. `audience`/`issuer`:
    /// a str or a list of str; a token with an `aud` is refused without
    /// `audience`. `leeway`: seconds or a timedelta.
    #[pyo3(signature = (*, audience=None, issuer=None, subject=None, typ=None, leeway=None))]
    fn verifier(
        &self,
        audience: Option<&Bound<'_, PyAny>>,
        issuer: Option<&Bound<'_, PyAny>>,
        subject: Option<String>,
        typ: Option<String>,
        leeway: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyKeyStoreVerifier> {
        let verifier = self.verifier_for(audience, issuer, subject, typ, leeway)?;
        Ok(PyKeyStoreVerifier {
            verifier: ProcessLocal::new("KeyStoreVerifier", verifier),
        })
    }

    /// Verifies one token against the store's keys and returns its claims
    /// (a one-off `verifier(...).verify(token)`: keep a verifier for many).
    #[pyo3(signature = (token, *, audience=None, issuer=None, subject=None, typ=None, leeway=None))]
    #[allow(clippy::too_many_arguments)]
    fn verify(
        &self,
        py: Python<'_>,
        token: String,
        audience: Option<&Bound<'_, PyAny>>,
        issuer: Option<&Bound<'_, PyAny>>,
        subject: Option<String>,
        typ: Option<String>,
        leeway: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Claims> {
        let verifier = self.verifier_for(audience, issuer, subject, typ, leeway)?;
        block_on(py, verify_claims(verifier, token))?
    }
}

async fn verify_claims(verifier: jwt_keys::Verifier, token: String) -> PyResult<Claims> {
    match verifier.verify::<Value>(&token).await {
        Ok(data) => Ok(Claims {
            claims: data.claims,
            token,
        }),
        Err(e) => {
            let err = keys_error(e);
            Err(Python::attach(|py| {
                crate::errors::with_token_hint(py, err, &token)
            }))
        }
    }
}

/// Verified claims handed to Python with their integers exact: as
/// `jwtkit.decode` does, a payload holding an integer outside the 64-bit
/// range (or `-0`) is read again by `json.loads` from the verified token.
pub(crate) struct Claims {
    claims: Value,
    token: String,
}

impl<'py> IntoPyObject<'py> for Claims {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        match &self.claims {
            Value::Object(map) if crate::convert::may_hold_big_ints(map) => {
                Ok(crate::convert::payload_via_json_loads(py, &self.token)?.into_any())
            }
            claims => crate::convert::to_py(py, claims),
        }
    }
}

/// Verifies tokens signed by a `KeyStore` (from `KeyStore.verifier()`):
/// keys held in memory, one reload on an unknown kid (30 s cooldown),
/// retiring keys dropped when their grace ends.
#[pyclass(module = "jwtkit._jwtkit", name = "KeyStoreVerifier", frozen)]
pub(crate) struct PyKeyStoreVerifier {
    /// Usable in the process that made it only.
    verifier: ProcessLocal<jwt_keys::Verifier>,
}

#[pymethods]
impl PyKeyStoreVerifier {
    /// The claims of `token`, verified (signature with the key its `kid`
    /// names, `exp`/`nbf`/`iat`, and the audience, issuer, subject and typ
    /// this verifier was made with). Raises the exception of the refusal
    /// (`ExpiredSignatureError`, `InvalidAudienceError`, …).
    fn verify(&self, py: Python<'_>, token: String) -> PyResult<Claims> {
        block_on(py, verify_claims(self.verifier.get()?.clone(), token))?
    }

    /// `verify` as an awaitable.
    fn verify_async<'py>(&self, py: Python<'py>, token: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, verify_claims(self.verifier.get()?.clone(), token))
    }

    /// Reloads the store's keys now (after a rotation elsewhere).
    fn reload(&self, py: Python<'_>) -> PyResult<()> {
        let verifier = self.verifier.get()?.clone();
        block_on(py, async move { verifier.refresh().await })?.map_err(keys_error)
    }

    /// The kids loaded now.
    fn kids(&self) -> Vec<String> {
        self.verifier
            .peek()
            .map(|v| v.cached_kids())
            .unwrap_or_default()
    }

    fn __repr__(&self) -> String {
        match self.verifier.peek() {
            Some(verifier) => format!("KeyStoreVerifier({verifier:?})"),
            None => "KeyStoreVerifier(closed)".to_owned(),
        }
    }
}
