//! jwtkit's errors as Python exceptions.
//!
//! The classes live in `jwtkit/exceptions.py` (PyJWT's names and bases, plus
//! jwtkit's own); this module picks the class for an error's stable kind and
//! sets the instance's `kind` attribute to it.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

static EXCEPTIONS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception class (by name in `jwtkit.exceptions`) for a stable error
/// kind of jwt-core, jwt-keys, jwt-refresh or jwtkit.
fn class_for_kind(kind: &str) -> &'static str {
    match kind {
        // jwt-core: rejections.
        "malformed" | "unsupported" | "too_large" => "DecodeError",
        "invalid_signature" => "InvalidSignatureError",
        "invalid_algorithm" => "InvalidAlgorithmError",
        "expired" => "ExpiredSignatureError",
        "immature" => "ImmatureSignatureError",
        "invalid_issuer" => "InvalidIssuerError",
        "invalid_audience" => "InvalidAudienceError",
        "invalid_subject" => "InvalidSubjectError",
        "missing_claim" => "MissingRequiredClaimError",
        "unknown_key" | "invalid_type" | "invalid_claim" | "invalid_token" => "InvalidTokenError",
        // Keys and settings: configuration errors.
        "invalid_key" | "weak_key" => "InvalidKeyError",
        "config" | "usage" | "invalid_config" | "invalid_uri" | "invalid_request"
        | "invalid_input" | "refresh_key_file" | "serialization" => "ConfigurationError",
        // jwt-keys: the JWKS fetch, the key stores.
        "fetch" => "PyJWKClientConnectionError",
        "not_active"
        | "read_only"
        | "not_initialized"
        | "already_initialized"
        | "conflict"
        | "policy_violation"
        | "corrupt_state"
        | "io"
        | "corrupt_store"
        | "insecure_permissions"
        | "insecure_owner"
        | "unexpected_files"
        | "damaged_store"
        | "env"
        | "stale_keys"
        | "key_store"
        | "not_found" => "KeyStoreError",
        // Remote backends (KMS, Vault, Redis).
        "backend" | "unavailable" | "timeout" | "unexpected_reply" | "refresh_store" => {
            "BackendError"
        }
        // jwtkit's token service and jwt-refresh: refresh tokens refused.
        "invalid_grant" | "unknown_family" | "family_revoked" | "family_expired"
        | "subject_mismatch" => "InvalidGrantError",
        _ => "PyJWTError",
    }
}

fn exceptions(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    EXCEPTIONS
        .get_or_try_init(py, || {
            PyModule::import(py, "jwtkit.exceptions").map(Bound::unbind)
        })
        .map(|m| m.bind(py))
}

/// Builds an instance of the exception class `class` (a name in
/// `jwtkit.exceptions`) with `args`, and sets its `kind`.
fn make(py: Python<'_>, class: &str, kind: &str, args: (Option<String>, String)) -> PyErr {
    let built = (|| -> PyResult<PyErr> {
        let cls = exceptions(py)?.getattr(class)?;
        let exc = match args {
            (Some(claim), message) => cls.call1((claim, message))?,
            (None, message) => cls.call1((message,))?,
        };
        exc.setattr("kind", kind)?;
        Ok(PyErr::from_value(exc))
    })();
    // Importing the exceptions module failed (a broken install): the error
    // saying so is more useful than a generic one.
    built.unwrap_or_else(|e| e)
}

/// The Python exception for an error of kind `kind` (jwtkit's stable kind
/// string: `"expired"`, `"invalid_signature"`, `"backend"`, `"not_found"`...)
/// with `message` (which must hold no secret).
pub(crate) fn to_py_err(kind: &str, message: String) -> PyErr {
    Python::attach(|py| kind_err(py, kind, message))
}

/// [`to_py_err`] for callers that hold the GIL already.
pub(crate) fn kind_err(py: Python<'_>, kind: &str, message: String) -> PyErr {
    if kind == "missing_claim" {
        let claim = claim_in(&message).unwrap_or("?").to_owned();
        return make(
            py,
            "MissingRequiredClaimError",
            kind,
            (Some(claim), message),
        );
    }
    make(py, class_for_kind(kind), kind, (None, message))
}

/// The exception for an error of a class chosen by the caller (e.g.
/// `PyJWKClientError` for an unknown `kid` in `PyJWKClient`).
pub(crate) fn class_err(py: Python<'_>, class: &str, kind: &str, message: String) -> PyErr {
    make(py, class, kind, (None, message))
}

/// A [`jwt_core::Error`] as the exception PyJWT raises for the same reason.
pub(crate) fn core_err(py: Python<'_>, err: jwt_core::Error) -> PyErr {
    let kind = err.kind().as_str();
    let message = err.to_string();
    match &err {
        jwt_core::Error::MissingClaim { claim } => make(
            py,
            "MissingRequiredClaimError",
            kind,
            (Some(claim.clone()), message),
        ),
        // A claim of the wrong type: PyJWT's class for that claim.
        jwt_core::Error::InvalidClaim { claim, .. } => {
            let class = match claim.as_str() {
                "iat" => "InvalidIssuedAtError",
                "jti" => "InvalidJTIError",
                "exp" | "nbf" => "DecodeError",
                "aud" => "InvalidAudienceError",
                "iss" => "InvalidIssuerError",
                "sub" => "InvalidSubjectError",
                _ => "InvalidTokenError",
            };
            make(py, class, kind, (None, message))
        }
        _ => make(py, class_for_kind(kind), kind, (None, message)),
    }
}

/// A [`jwt_keys::Error`] as a Python exception (its token rejections as
/// [`core_err`] makes them).
pub(crate) fn keys_err(py: Python<'_>, err: jwt_keys::Error) -> PyErr {
    match err {
        jwt_keys::Error::Core(core) => core_err(py, core),
        other => kind_err(py, other.kind().as_str(), other.to_string()),
    }
}

/// The name between the first pair of backticks of a jwt-core message
/// ("the token has no `iss` claim").
fn claim_in(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// A `ConfigurationError` (kind `config`): a setting jwtkit cannot or will
/// not follow.
pub(crate) fn config_err(py: Python<'_>, message: String) -> PyErr {
    make(py, "ConfigurationError", "config", (None, message))
}
