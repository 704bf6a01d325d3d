//! PyJWT's module functions: `encode`, `decode`, `decode_complete`,
//! `get_unverified_header`, and the one that does not verify,
//! `dangerous_decode_unverified`.

use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, KeyFamily, Signer, Validation, Verifier};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyString};
use serde_json::{Map, Value};

use crate::convert::{claims_to_json, map_to_py, to_json};
use crate::errors::{class_err, config_err, core_err, kind_err, with_token_hint};
use crate::keys::{self, algorithm, cached, Material, SIGNERS, VERIFIERS};

/// The `options` PyJWT documents, with what jwtkit does with each.
const VERIFY_SWITCHES: [(&str, &str); 8] = [
    ("verify_exp", "an expired token is the one revocation every JWT has; to tolerate clock skew pass leeway=..., for tokens without `exp` options={\"optional_exp\": True}"),
    ("verify_nbf", "a token that is not valid yet must not be accepted; to tolerate clock skew pass leeway=..."),
    ("verify_iat", "an `iat` in the future means a wrong clock or a forged token; to tolerate clock skew pass leeway=..."),
    ("verify_aud", "a token for another service must not pass here; pass audience=... (one of the token's audiences)"),
    ("verify_iss", "pass issuer=... to check it, or leave it out to accept any issuer"),
    ("verify_sub", "pass subject=... to check it, or leave it out"),
    ("verify_jti", "jwtkit checks `jti` only for its type (a string)"),
    ("enforce_minimum_key_length", "jwtkit always refuses keys shorter than the algorithm's minimum (HMAC secrets shorter than the hash output, RSA keys under 2048 bits), when signing and when verifying; use a longer key"),
];

/// PyJWT's `options` and keyword arguments as jwt-core settings.
struct Settings {
    algorithms: Vec<Algorithm>,
    audiences: Vec<String>,
    issuers: Vec<String>,
    subject: Option<String>,
    require: Vec<String>,
    optional_exp: bool,
    leeway: u64,
    /// PyJWT 2.10's `options={"strict_aud": True}`: the token's `aud` must
    /// be one str (not a list) equal to `audience` (one str). Checked after
    /// the verifier's own audience check, so it is not part of the
    /// verifier's settings.
    strict_aud: bool,
}

impl Settings {
    fn validation(&self, algorithms: Vec<Algorithm>) -> Validation {
        let mut v = Validation::new(algorithms).leeway(Duration::from_secs(self.leeway));
        for a in &self.audiences {
            v = v.audience(a.clone());
        }
        for i in &self.issuers {
            v = v.issuer(i.clone());
        }
        if let Some(s) = &self.subject {
            v = v.subject(s.clone());
        }
        for r in &self.require {
            v = v.require(r.clone());
        }
        if self.optional_exp {
            v = v.optional_exp();
        }
        v
    }

    /// Appends every setting, unambiguously, to a cache key.
    fn write_fingerprint(&self, out: &mut Vec<u8>) {
        fn list(out: &mut Vec<u8>, items: &[String]) {
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for s in items {
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        let mut algs = 0u32;
        for a in &self.algorithms {
            algs |= 1 << Algorithm::ALL.iter().position(|x| x == a).unwrap_or(31);
        }
        out.extend_from_slice(&algs.to_le_bytes());
        out.extend_from_slice(&self.leeway.to_le_bytes());
        out.push(u8::from(self.optional_exp));
        list(out, &self.audiences);
        list(out, &self.issuers);
        list(out, self.subject.as_slice());
        list(out, &self.require);
    }
}

/// A str, or an iterable of str, as a list.
fn strings(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(vec![s.to_cow()?.into_owned()]);
    }
    let mut out = Vec::new();
    for item in value
        .try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a str or a sequence of str")))?
    {
        let item = item?;
        out.push(
            item.cast::<PyString>()
                .map_err(|_| {
                    PyTypeError::new_err(format!("{what} must be a str or a sequence of str"))
                })?
                .to_cow()?
                .into_owned(),
        );
    }
    Ok(out)
}

static TIMEDELTA: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The longest `leeway` any verification takes (one year, in seconds): a
/// longer one would accept tokens expired long ago (`2**64 - 1` accepts
/// every expired token).
pub(crate) const MAX_LEEWAY_SECS: u64 = 86_400 * 365;

/// `leeway`: seconds (int or float) or a `timedelta`.
fn leeway_secs(py: Python<'_>, leeway: &Bound<'_, PyAny>) -> PyResult<u64> {
    let timedelta = TIMEDELTA
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("datetime")?.getattr("timedelta")?.unbind())
        })?
        .bind(py);
    let secs: f64 = if leeway.is_instance(timedelta)? {
        leeway.call_method0("total_seconds")?.extract()?
    } else if leeway.is_instance_of::<PyInt>() || leeway.is_instance_of::<PyFloat>() {
        leeway.extract()?
    } else {
        return Err(PyTypeError::new_err(
            "leeway must be a number of seconds (int or float) or a datetime.timedelta",
        ));
    };
    // NaN is in no range: refused too.
    if !(0.0..=MAX_LEEWAY_SECS as f64).contains(&secs) {
        return Err(config_err(
            py,
            format!("leeway must be between 0 and one year of seconds, not {secs}"),
        ));
    }
    Ok(secs.ceil() as u64)
}

/// Reads `algorithms`, `options` and the claim keywords.
#[allow(clippy::too_many_arguments)]
fn settings(
    py: Python<'_>,
    algorithms: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
    audience: Option<&Bound<'_, PyAny>>,
    issuer: Option<&Bound<'_, PyAny>>,
    subject: Option<&Bound<'_, PyAny>>,
    leeway: Option<&Bound<'_, PyAny>>,
) -> PyResult<Settings> {
    let mut require = Vec::new();
    let mut optional_exp = false;
    let mut strict_aud = false;
    if let Some(options) = options {
        for (k, v) in options.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("options keys must be str"))?;
            let key = key.to_cow()?;
            let key = key.as_ref();
            match key {
                "verify_signature" => {
                    if !v.is_truthy()? {
                        return Err(config_err(
                            py,
                            "options={\"verify_signature\": False} is refused: jwtkit's decode always \
                             verifies. To read a token without verifying it (for debugging, or to pick \
                             a key), call jwtkit.dangerous_decode_unverified(token), whose result must \
                             never decide anything"
                                .to_owned(),
                        ));
                    }
                }
                "require" => {
                    if !v.is_none() {
                        require = strings(&v, "options[\"require\"]")?;
                    }
                }
                "optional_exp" => optional_exp = v.is_truthy()?,
                "strict_aud" => strict_aud = v.is_truthy()?,
                _ => {
                    if let Some((_, why)) = VERIFY_SWITCHES.iter().find(|(name, _)| *name == key) {
                        if !v.is_truthy()? {
                            return Err(config_err(
                                py,
                                format!("options={{\"{key}\": False}} is refused: jwtkit has no switch to turn this check off; {why}"),
                            ));
                        }
                    } else {
                        return Err(config_err(
                            py,
                            format!(
                                "unknown option {key:?}; jwtkit takes verify_signature/verify_exp/\
                                 verify_nbf/verify_iat/verify_aud/verify_iss/verify_sub/verify_jti/\
                                 enforce_minimum_key_length (True only), require, optional_exp, \
                                 strict_aud"
                            ),
                        ));
                    }
                }
            }
        }
    }
    let algorithms = match algorithms {
        None => {
            return Err(class_err(
                py,
                "DecodeError",
                "config",
                "It is required that you pass in a value for the \"algorithms\" argument when \
                 calling decode(): name the algorithms your issuer signs with, e.g. \
                 algorithms=[\"RS256\"] (jwtkit never takes the algorithm from the token)"
                    .to_owned(),
            ))
        }
        Some(a) if a.is_none() => {
            return settings(py, None, options, audience, issuer, subject, leeway)
        }
        Some(a) => strings(a, "algorithms")?
            .iter()
            .map(|name| algorithm(py, name))
            .collect::<PyResult<Vec<_>>>()?,
    };
    if algorithms.is_empty() {
        return Err(config_err(
            py,
            "algorithms is empty: name at least one, e.g. algorithms=[\"RS256\"]".to_owned(),
        ));
    }
    let non_empty = |v: &Bound<'_, PyAny>| !v.is_none();
    if strict_aud {
        if let Some(a) = audience.filter(|v| non_empty(v)) {
            if !a.is_instance_of::<PyString>() {
                return Err(class_err(
                    py,
                    "InvalidAudienceError",
                    "invalid_audience",
                    "Invalid audience (strict): with options={\"strict_aud\": True}, audience must \
                     be one str, not a list"
                        .to_owned(),
                ));
            }
        }
    }
    Ok(Settings {
        algorithms,
        audiences: match audience.filter(|v| non_empty(v)) {
            Some(a) => strings(a, "audience")?,
            None => Vec::new(),
        },
        issuers: match issuer.filter(|v| non_empty(v)) {
            Some(i) => strings(i, "issuer")?,
            None => Vec::new(),
        },
        subject: match subject.filter(|v| non_empty(v)) {
            Some(s) => Some(
                s.cast::<PyString>()
                    .map_err(|_| PyTypeError::new_err("subject must be a str"))?
                    .to_cow()?
                    .into_owned(),
            ),
            None => None,
        },
        require,
        optional_exp,
        strict_aud,
        leeway: match leeway {
            Some(l) => leeway_secs(py, l)?,
            None => 0,
        },
    })
}

/// The verifier for `key` and `settings`, from the cache or built. Of the
/// listed algorithms, those of the key's family are used (PyJWT picks the
/// one the token names; a token naming another family's algorithm is then
/// refused as `invalid_algorithm`).
fn verifier(py: Python<'_>, key: &Bound<'_, PyAny>, s: &Settings) -> PyResult<Arc<Verifier>> {
    let material = keys::material(py, key, &s.algorithms)?;
    let mut fingerprint = Vec::with_capacity(material_len(&material) + 64);
    material.write_fingerprint(&mut fingerprint);
    s.write_fingerprint(&mut fingerprint);
    cached(&VERIFIERS, fingerprint, || {
        let key = material.verifying_key()?;
        let family = key.family();
        let usable: Vec<Algorithm> = s
            .algorithms
            .iter()
            .copied()
            .filter(|a| fits(*a, family))
            .collect();
        if usable.is_empty() {
            // jwt-core's message names the key type and what fits it.
            key.check_usable(s.algorithms[0])?;
        }
        Verifier::new(key, s.validation(usable))
    })
    .map_err(|e| core_err(py, e))
}

fn material_len(m: &Material) -> usize {
    match m {
        Material::Secret(b) | Material::Pem(b) | Material::Der(b) | Material::Jwk(b) => b.len(),
    }
}

fn fits(alg: Algorithm, family: KeyFamily) -> bool {
    alg.family() == family
}

/// Verifies `jwt` (str or bytes) and returns header and claims.
fn verify(
    py: Python<'_>,
    jwt: &Bound<'_, PyAny>,
    verifier: &Verifier,
    s: &Settings,
) -> PyResult<(jwt_core::Header, Map<String, Value>)> {
    let token = token_str(jwt)?;
    let (header, claims) = py
        .detach(|| verifier.verify_to_map(&token))
        .map_err(|e| with_token_hint(py, core_err(py, e), &token))?;
    if s.strict_aud && !s.audiences.is_empty() {
        // The verifier has checked that `aud` names the audience; strict
        // mode also wants it to be that one str, as PyJWT 2.10 does.
        match claims.get("aud") {
            Some(Value::String(_)) => {}
            _ => {
                return Err(class_err(
                    py,
                    "InvalidAudienceError",
                    "invalid_audience",
                    "Invalid claim format in token (strict): with options={\"strict_aud\": True}, \
                     the token's `aud` must be one str equal to audience, not a list"
                        .to_owned(),
                ))
            }
        }
    }
    Ok((header, claims))
}

fn token_str(jwt: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = jwt.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    if let Ok(b) = jwt.cast::<PyBytes>() {
        return std::str::from_utf8(b.as_bytes())
            .map(str::to_owned)
            .map_err(|_| {
                crate::errors::to_py_err(
                    "malformed",
                    "malformed token: the token is not UTF-8 text".to_owned(),
                )
            });
    }
    Err(crate::errors::to_py_err(
        "malformed",
        format!(
            "Invalid token type. Token must be a str or bytes, not {}",
            jwt.get_type().name()?
        ),
    ))
}

/// `jwt.decode(jwt, key, algorithms=..., options=None, audience=None,
/// issuer=None, subject=None, leeway=None)`: the verified claims as a dict.
/// `leeway`: seconds (int, or a float rounded up to whole seconds) or a
/// `timedelta`; `None` is no leeway.
#[pyfunction]
#[pyo3(signature = (jwt, key=None, algorithms=None, options=None, detached_payload=None, audience=None, issuer=None, subject=None, leeway=None))]
#[allow(clippy::too_many_arguments)]
fn decode<'py>(
    py: Python<'py>,
    jwt: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    algorithms: Option<&Bound<'py, PyAny>>,
    options: Option<&Bound<'py, PyDict>>,
    detached_payload: Option<&Bound<'py, PyAny>>,
    audience: Option<&Bound<'py, PyAny>>,
    issuer: Option<&Bound<'py, PyAny>>,
    subject: Option<&Bound<'py, PyAny>>,
    leeway: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    refuse_detached(py, detached_payload)?;
    let s = settings(py, algorithms, options, audience, issuer, subject, leeway)?;
    let key = key_or_none(py, key);
    let v = verifier(py, &key, &s)?;
    let (_, claims) = verify(py, jwt, &v, &s)?;
    claims_to_py(py, jwt, &claims)
}

/// `jwt.decode_complete(...)`: `{"header": ..., "payload": ..., "signature": bytes}`.
#[pyfunction]
#[pyo3(signature = (jwt, key=None, algorithms=None, options=None, detached_payload=None, audience=None, issuer=None, subject=None, leeway=None))]
#[allow(clippy::too_many_arguments)]
fn decode_complete<'py>(
    py: Python<'py>,
    jwt: &Bound<'py, PyAny>,
    key: Option<&Bound<'py, PyAny>>,
    algorithms: Option<&Bound<'py, PyAny>>,
    options: Option<&Bound<'py, PyDict>>,
    detached_payload: Option<&Bound<'py, PyAny>>,
    audience: Option<&Bound<'py, PyAny>>,
    issuer: Option<&Bound<'py, PyAny>>,
    subject: Option<&Bound<'py, PyAny>>,
    leeway: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    refuse_detached(py, detached_payload)?;
    let s = settings(py, algorithms, options, audience, issuer, subject, leeway)?;
    let key = key_or_none(py, key);
    let v = verifier(py, &key, &s)?;
    let (header, claims) = verify(py, jwt, &v, &s)?;
    let token = token_str(jwt)?;
    let signature_b64 = token.rsplit('.').next().unwrap_or_default();
    let signature = jwt_core::b64::decode(signature_b64.as_bytes(), "the signature")
        .map_err(|e| core_err(py, e))?;
    let out = PyDict::new(py);
    out.set_item("header", header_to_py(py, &header)?)?;
    out.set_item("payload", claims_to_py(py, jwt, &claims)?)?;
    out.set_item("signature", PyBytes::new(py, &signature))?;
    Ok(out)
}

/// Verified claims as a dict, integers exact: when a number was read as a
/// float although it may have been written as an integer (beyond the
/// 64-bit range, or `-0`), the verified payload is read again by Python's
/// `json.loads`, as PyJWT reads it; otherwise the claims are converted as
/// they are (no cost for ordinary payloads).
fn claims_to_py<'py>(
    py: Python<'py>,
    jwt: &Bound<'py, PyAny>,
    claims: &Map<String, Value>,
) -> PyResult<Bound<'py, PyDict>> {
    if !crate::convert::may_hold_big_ints(claims) {
        return map_to_py(py, claims);
    }
    crate::convert::payload_via_json_loads(py, &token_str(jwt)?)
}

fn key_or_none<'py>(py: Python<'py>, key: Option<&Bound<'py, PyAny>>) -> Bound<'py, PyAny> {
    key.cloned().unwrap_or_else(|| py.None().into_bound(py))
}

fn refuse_detached(py: Python<'_>, detached: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    match detached {
        Some(d) if !d.is_none() => Err(config_err(
            py,
            "detached_payload is for PyJWS.decode (a JWS with b64=false is refused by jwtkit); \
             jwt.decode verifies compact JWTs"
                .to_owned(),
        )),
        _ => Ok(()),
    }
}

/// A header as a dict.
pub(crate) fn header_to_py<'py>(
    py: Python<'py>,
    header: &jwt_core::Header,
) -> PyResult<Bound<'py, PyDict>> {
    match serde_json::to_value(header) {
        Ok(Value::Object(map)) => map_to_py(py, &map),
        _ => Err(kind_err(
            py,
            "malformed",
            "the header is not a JSON object".to_owned(),
        )),
    }
}

/// `jwt.get_unverified_header(jwt)`: the header, **not verified** (whoever
/// made the token wrote it): to choose a key, never to decide anything.
#[pyfunction]
fn get_unverified_header<'py>(
    py: Python<'py>,
    jwt: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let token = token_str(jwt)?;
    let header = jwt_core::dangerous::insecure_decode_header(&token)
        .map_err(|e| with_token_hint(py, core_err(py, e), &token))?;
    header_to_py(py, &header)
}

/// The claims of `jwt` **without verifying anything**: no signature, no
/// expiry, no audience. What PyJWT's `decode(..., options={"verify_signature":
/// False})` does; the result is attacker-controlled and must never decide
/// anything (use it to debug, or to route by issuer before verifying).
#[pyfunction]
fn dangerous_decode_unverified<'py>(
    py: Python<'py>,
    jwt: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let token = token_str(jwt)?;
    let unverified = jwt_core::dangerous::insecure_decode(&token)
        .map_err(|e| with_token_hint(py, core_err(py, e), &token))?;
    map_to_py(py, &unverified.claims)
}

static JSON_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The claims as JSON: directly, or through `json.dumps(cls=json_encoder)`.
fn payload_json(
    py: Python<'_>,
    payload: &Bound<'_, PyAny>,
    json_encoder: Option<&Bound<'_, PyAny>>,
) -> PyResult<Map<String, Value>> {
    match json_encoder.filter(|e| !e.is_none()) {
        None => claims_to_json(py, payload),
        Some(cls) => {
            // PyJWT converts the datetime claims before calling the encoder.
            let dict = payload.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err(
                    "Expecting a dict object, as JWT only supports JSON objects as payloads.",
                )
            })?;
            let copy = dict.copy()?;
            for claim in ["exp", "iat", "nbf"] {
                if let Some(v) = copy.get_item(claim)? {
                    if let Some(secs) = crate::convert::datetime_secs(py, &v)? {
                        copy.set_item(claim, secs)?;
                    }
                }
            }
            let dumps = JSON_DUMPS
                .get_or_try_init(py, || {
                    Ok::<_, PyErr>(py.import("json")?.getattr("dumps")?.unbind())
                })?
                .bind(py);
            let kwargs = PyDict::new(py);
            kwargs.set_item("cls", cls)?;
            kwargs.set_item("separators", (",", ":"))?;
            let text: String = dumps.call((copy,), Some(&kwargs))?.extract()?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(PyTypeError::new_err(
                    "json_encoder did not produce a JSON object",
                )),
            }
        }
    }
}

/// The signer for `key`, `alg` and header parameters, cached.
pub(crate) fn signer(
    py: Python<'_>,
    key: &Bound<'_, PyAny>,
    alg: Algorithm,
    headers: Option<&Bound<'_, PyDict>>,
) -> PyResult<Arc<Signer>> {
    let material = keys::material(py, key, &[alg])?;
    let mut extra: Vec<(String, Value)> = Vec::new();
    if let Some(h) = headers {
        for (k, v) in h.iter() {
            let name = k
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("header names must be str"))?
                .to_cow()?
                .into_owned();
            if name == "alg" {
                continue;
            }
            extra.push((name, to_json(&v, 1)?));
        }
    }
    extra.sort_by(|a, b| a.0.cmp(&b.0));
    let mut fingerprint = Vec::with_capacity(material_len(&material) + 32);
    material.write_fingerprint(&mut fingerprint);
    fingerprint.extend_from_slice(alg.as_str().as_bytes());
    fingerprint.push(0);
    for (k, v) in &extra {
        fingerprint.extend_from_slice(&(k.len() as u64).to_le_bytes());
        fingerprint.extend_from_slice(k.as_bytes());
        let v = v.to_string();
        fingerprint.extend_from_slice(&(v.len() as u64).to_le_bytes());
        fingerprint.extend_from_slice(v.as_bytes());
    }
    cached(&SIGNERS, fingerprint, || {
        let mut signer = Signer::new(material.signing_key()?, alg)?;
        for (name, value) in extra {
            signer = match (name.as_str(), value) {
                ("typ", Value::Null) => signer.with_typ(None)?,
                ("typ", Value::String(t)) if t.is_empty() => signer.with_typ(None)?,
                ("typ", Value::String(t)) => signer.with_typ(Some(&t))?,
                ("kid", Value::Null) => signer.with_kid(None)?,
                ("kid", Value::String(k)) => signer.with_kid(Some(&k))?,
                ("typ" | "kid", other) => {
                    return Err(jwt_core::Error::Config {
                        reason: format!("header parameter `{name}` must be a string, not {other}"),
                    })
                }
                (_, value) => signer.with_header_param(&name, value)?,
            };
        }
        Ok(signer)
    })
    .map_err(|e| core_err(py, e))
}

/// The algorithm of `encode`: `headers["alg"]` wins over `algorithm`, as in PyJWT.
pub(crate) fn encode_algorithm(
    py: Python<'_>,
    algorithm_name: Option<&str>,
    headers: Option<&Bound<'_, PyDict>>,
) -> PyResult<Algorithm> {
    if let Some(h) = headers {
        if let Some(alg) = h.get_item("alg")? {
            if !alg.is_none() {
                return algorithm(py, &alg.cast::<PyString>()?.to_cow()?);
            }
        }
    }
    // `algorithm=None` is PyJWT's spelling of "none" (unsigned), refused.
    algorithm(py, algorithm_name.unwrap_or("none"))
}

/// `jwt.encode(payload, key, algorithm="HS256", headers=None,
/// json_encoder=None, sort_headers=True)`: the signed token as a str.
#[pyfunction]
#[pyo3(signature = (payload, key, algorithm="HS256", headers=None, json_encoder=None, sort_headers=true))]
fn encode(
    py: Python<'_>,
    payload: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
    algorithm: Option<&str>,
    headers: Option<&Bound<'_, PyDict>>,
    json_encoder: Option<&Bound<'_, PyAny>>,
    sort_headers: bool,
) -> PyResult<String> {
    let _ = sort_headers; // jwtkit's header order is fixed (alg, typ, kid, ...).
    let alg = encode_algorithm(py, algorithm, headers)?;
    let claims = payload_json(py, payload, json_encoder)?;
    let signer = signer(py, key, alg, headers)?;
    py.detach(|| signer.sign(&claims))
        .map_err(|e| core_err(py, e))
}

/// Registers the module functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(decode_complete, m)?)?;
    m.add_function(wrap_pyfunction!(get_unverified_header, m)?)?;
    m.add_function(wrap_pyfunction!(dangerous_decode_unverified, m)?)?;
    Ok(())
}
