//! Python objects to JSON values and back, as `json.dumps` / `json.loads`
//! would (plus PyJWT's `datetime` claims).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Nesting deeper than this is refused (jwt-core refuses it when verifying).
const MAX_DEPTH: usize = jwt_core::MAX_DEPTH;

static DATETIME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TIMEGM: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `datetime.datetime`, imported once.
fn datetime_class(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    DATETIME
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("datetime")?.getattr("datetime")?.unbind())
        })
        .map(|c| c.bind(py))
}

/// A `datetime` as a NumericDate, as PyJWT computes it:
/// `calendar.timegm(value.utctimetuple())` (a naive datetime counts as UTC).
fn numeric_date(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Value> {
    let timegm = TIMEGM
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("calendar")?.getattr("timegm")?.unbind())
        })?
        .bind(py);
    let secs: i64 = timegm
        .call1((value.call_method0("utctimetuple")?,))?
        .extract()?;
    Ok(Value::from(secs))
}

/// `value` as a NumericDate when it is a `datetime`.
pub(crate) fn datetime_secs(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if value.is_instance(datetime_class(py)?)? {
        return Ok(numeric_date(py, value)?.as_i64());
    }
    Ok(None)
}

/// The claims of `jwt.encode`: a dict whose `exp`, `iat` and `nbf` may be
/// `datetime`s (converted to NumericDates); other values as `json.dumps`
/// takes them.
pub(crate) fn claims_to_json(
    py: Python<'_>,
    payload: &Bound<'_, PyAny>,
) -> PyResult<Map<String, Value>> {
    let dict = payload.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(
            "Expecting a dict object, as JWT only supports JSON objects as payloads.",
        )
    })?;
    let mut map = Map::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key = dict_key(&k)?;
        let value = if matches!(key.as_str(), "exp" | "iat" | "nbf")
            && v.is_instance(datetime_class(py)?)?
        {
            numeric_date(py, &v)?
        } else {
            to_json(&v, 1)?
        };
        insert_once(&mut map, &k, key, value)?;
    }
    Ok(map)
}

/// Inserts a member converted from the Python key `k`; a second key that
/// `json.dumps` writes as the same name (`1` and `"1"`, `True` and
/// `"true"`) is refused: `json.dumps` would write the name twice, and
/// verifiers (jwtkit's among them) refuse duplicate names.
fn insert_once(
    map: &mut Map<String, Value>,
    k: &Bound<'_, PyAny>,
    key: String,
    value: Value,
) -> PyResult<()> {
    use serde_json::map::Entry;
    match map.entry(key) {
        Entry::Vacant(slot) => {
            slot.insert(value);
            Ok(())
        }
        Entry::Occupied(slot) => Err(PyValueError::new_err(format!(
            "the key {} and another key of the same dict are both written as {:?} in JSON \
             (json.dumps converts int, float, bool and None keys to str): the token would \
             hold a duplicate name, which verifiers refuse; give each member one key",
            k.repr()?,
            slot.key()
        ))),
    }
}

fn dict_key(k: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = k.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    // json.dumps turns these keys into strings too, as it writes them:
    // `int.__repr__` / `float.__repr__` (not a subclass's own `__str__`,
    // e.g. an IntEnum's), NaN and the infinities as its extensions.
    if k.is_instance_of::<PyBool>() {
        return Ok(if k.is_truthy()? { "true" } else { "false" }.to_owned());
    }
    if k.is_instance_of::<PyInt>() {
        let text = if k.is_exact_instance_of::<PyInt>() {
            k.str()?
        } else {
            k.py()
                .get_type::<PyInt>()
                .call_method1("__repr__", (k,))?
                .cast_into::<PyString>()?
        };
        return Ok(text.to_cow()?.into_owned());
    }
    if let Ok(f) = k.cast::<PyFloat>() {
        let value = f.value();
        return Ok(if value.is_nan() {
            "NaN".to_owned()
        } else if value.is_infinite() {
            if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
        } else {
            k.py()
                .get_type::<PyFloat>()
                .call_method1("__repr__", (k,))?
                .cast_into::<PyString>()?
                .to_cow()?
                .into_owned()
        });
    }
    if k.is_none() {
        return Ok("null".to_owned());
    }
    Err(PyTypeError::new_err(format!(
        "keys must be str, int, float, bool or None, not {}",
        k.get_type().name()?
    )))
}

/// A Python value as JSON, as `json.dumps` without a custom encoder takes it
/// (NaN and infinities refused: they are not JSON).
pub(crate) fn to_json(v: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyTypeError::new_err(format!(
            "the payload nests deeper than {MAX_DEPTH} levels, which verifiers refuse"
        )));
    }
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = v.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(PyTypeError::new_err(
            "an integer in the payload is outside the 64-bit range JSON parsers keep exactly",
        ));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        let f = f.value();
        return Number::from_f64(f).map(Value::Number).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "{f} is not a JSON number (NaN and infinities are not JSON)"
            ))
        });
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, item) in d.iter() {
            let key = dict_key(&k)?;
            insert_once(&mut map, &k, key, to_json(&item, depth + 1)?)?;
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = v.cast::<PyList>() {
        return l
            .iter()
            .map(|item| to_json(&item, depth + 1))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return t
            .iter()
            .map(|item| to_json(&item, depth + 1))
            .collect::<PyResult<_>>()
            .map(Value::Array);
    }
    Err(PyTypeError::new_err(format!(
        "Object of type {} is not JSON serializable (pass json_encoder=... to encode it)",
        v.get_type().name()?
    )))
}

/// A JSON value as the Python object `json.loads` returns.
pub(crate) fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => map_to_py(py, map)?.into_any(),
    })
}

/// A JSON object as a Python dict.
pub(crate) fn map_to_py<'py>(
    py: Python<'py>,
    map: &Map<String, Value>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, to_py(py, v)?)?;
    }
    Ok(dict)
}

/// Whether `claims` hold a number that serde_json read as a float but that
/// may have been written as an integer `json.loads` keeps exact: a whole
/// float at or beyond 2**63 in magnitude (an integer literal outside the
/// 64-bit range) or `-0.0` (the literal `-0`). A walk of the parsed claims:
/// ordinary payloads cost no second parse.
pub(crate) fn may_hold_big_ints(claims: &Map<String, Value>) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() => {
                    (f == 0.0 && f.is_sign_negative())
                        || (f.fract() == 0.0 && f.abs() >= 9_223_372_036_854_775_808.0)
                }
                _ => false,
            },
            Value::Array(items) => items.iter().any(value),
            Value::Object(map) => map.values().any(value),
            _ => false,
        }
    }
    claims.values().any(value)
}

static JSON_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The payload of a *verified* compact token as Python's `json.loads`
/// reads it (integers exact, as PyJWT returns them).
pub(crate) fn payload_via_json_loads<'py>(
    py: Python<'py>,
    token: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let malformed = |what: String| crate::errors::to_py_err("malformed", what);
    let segment = token
        .split('.')
        .nth(1)
        .ok_or_else(|| malformed("malformed token: no payload segment".to_owned()))?;
    let payload = jwt_core::b64::decode(segment.as_bytes(), "the payload")
        .map_err(|e| crate::errors::core_err(py, e))?;
    let loads = JSON_LOADS
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("json")?.getattr("loads")?.unbind())
        })?
        .bind(py);
    let text = std::str::from_utf8(&payload)
        .map_err(|_| malformed("malformed token: the payload is not UTF-8".to_owned()))?;
    // Python refuses integers of more than 4300 digits by default
    // (sys.set_int_max_str_digits): a DecodeError saying so.
    let claims = loads.call1((text,)).map_err(|e| {
        malformed(format!(
            "the payload's integers could not be read exactly: {e}; PyJWT refuses this token too"
        ))
    })?;
    claims
        .cast_into::<PyDict>()
        .map_err(|_| malformed("the payload is not a JSON object".to_owned()))
}
