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
        "unknown_key" | "invalid_type" | "invalid_claim" | "invalid_token" | "dpop" => {
            "InvalidTokenError"
        }
        // Keys and settings: configuration errors.
        "invalid_key" | "weak_key" => "InvalidKeyError",
        "config" | "usage" | "invalid_config" | "invalid_uri" | "invalid_request"
        | "invalid_input" | "refresh_key_file" | "serialization" | "forked" => "ConfigurationError",
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
        "backend" | "unavailable" | "timeout" | "unexpected_reply" | "refresh_store"
        | "replay_cache" => "BackendError",
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
            (Some(claim), message) => cls.call1((claim, python_hints(&message)))?,
            (None, message) => cls.call1((python_hints(&message),))?,
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

/// The Rust crates' "what to do" hints that name the `jwtkit` command or a
/// Rust API, each with what does the same from Python. The "what was
/// wrong" part of a message is kept as it is; only the hint is replaced.
const PYTHON_HINTS: &[(&str, &str)] = &[
    // jwt-core: a key (PEM, DER, JWK) given as an HMAC secret.
    (
        "Load it as a key instead (`--key FILE`, `VerifyingKey::from_pem`/`from_der`/`from_jwk`), \
         or use a random secret (`jwtkit keys generate --alg HS256`)",
        "Pass it as the key of an asymmetric algorithm instead (e.g. algorithms=[\"RS256\"] for \
         an RSA key, [\"ES256\"] for a P-256 key, [\"EdDSA\"] for an Ed25519 key), or use a \
         random secret for HMAC (`secrets.token_bytes(32)`)",
    ),
    // jwt-core: a small RSA key.
    (
        "Generate a new key with `jwtkit keys generate --alg RS256`",
        "Generate a new key with `cryptography`: \
         `rsa.generate_private_key(public_exponent=65537, key_size=2048)`",
    ),
    // jwt-keys: an uninitialized store.
    (
        "run `jwtkit store init` (KeyStore::init) to create it",
        "create it with `store.init(\"ES256\")` (or TokenService(..., init_algorithm=\"ES256\"))",
    ),
    // jwtkit: a token service on an empty store.
    (
        "initialize it (`jwtkit store init`, or .init_key_store(Algorithm::ES256))",
        "initialize it with `store.init(\"ES256\")`, or pass init_algorithm=\"ES256\" to TokenService",
    ),
    // jwt-keys: audit findings.
    (
        "rotate with `jwtkit store rotate --if-due URI` (library: `KeyStoreExt::rotate_if_due`)",
        "rotate with `store.rotate_if_due()` (or let TokenService.start_maintenance() do it)",
    ),
    (
        "destroy it with `jwtkit store rotate --if-due URI`, which retires every key past its grace \
         and rotates only if a rotation is due (library: `KeyStore::retire_expired`)",
        "destroy it with `store.retire_expired()` (or `store.rotate_if_due()`, which also rotates \
         if a rotation is due)",
    ),
    (
        "rotate to a new key (`jwtkit store rotate`)",
        "rotate to a new key (`store.rotate()`)",
    ),
    // jwtkit's token service settings.
    (
        "(or call .allow_long_access_ttl() if you really mean it)",
        "(or pass allow_long_access_ttl=True to TokenService if you really mean it)",
    ),
    (
        "(use no_reuse_grace() to disable)",
        "(leave reuse_grace out, or pass None, for no grace at all)",
    ),
    (
        "(generate one with RefreshKey::generate or `head -c 32 /dev/urandom | base64`)",
        "(generate one with `secrets.token_bytes(32)`, or `secrets.token_urlsafe(32)` for text; \
         or pass refresh_key_file=PATH to have one created)",
    ),
    (
        "(expected 32+ random bytes, base64url-encoded)",
        "(expected the base64url text of 32+ random bytes, e.g. secrets.token_urlsafe(32); or \
         pass the secret itself as bytes)",
    ),
    (
        "as `jwtkit keys generate --alg HS256` prints it",
        "e.g. \"base64url:\" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b\"=\").decode()",
    ),
];

/// `message` with the hints for the `jwtkit` command or the Rust API
/// replaced by what does the same from Python (see [`PYTHON_HINTS`]).
pub(crate) fn python_hints(message: &str) -> String {
    let mut out = message.to_owned();
    for (rust, python) in PYTHON_HINTS {
        if out.contains(rust) {
            out = out.replace(rust, python);
        }
    }
    // jwt-core: a short HMAC secret ("Generate one with `jwtkit keys
    // generate --alg HS384`"): as many random bytes as the hash.
    for (alg, bytes) in [("HS256", 32), ("HS384", 48), ("HS512", 64)] {
        let rust = format!("Generate one with `jwtkit keys generate --alg {alg}`");
        if out.contains(&rust) {
            out = out.replace(
                &rust,
                &format!(
                    "Generate one with `secrets.token_bytes({bytes})`, keep it secret and pass the \
                     same bytes to encode and decode"
                ),
            );
        }
    }
    out
}

/// What is wrong with a token that does not decode, when it is one of the
/// usual slips: an `Authorization` header's `Bearer ` prefix, quotes
/// around it, a line break at the end (a file read without `.strip()`).
/// Only a hint: the token itself is never changed (a verifier must see
/// exactly the token it was given). The CLI has the same check for pasted
/// tokens (jwtkit-cli's `paste_hint`).
pub(crate) fn token_hint(token: &str) -> Option<&'static str> {
    let trimmed = token.trim_start();
    let lower = trimmed.get(..14).unwrap_or(trimmed).to_ascii_lowercase();
    if lower.starts_with("authorization:") {
        return Some(
            "the token starts with an `Authorization:` header name; pass only the token itself \
             (e.g. header.removeprefix(\"Bearer \") of the header's value)",
        );
    }
    if lower.starts_with("bearer") && trimmed[6..].starts_with(char::is_whitespace) {
        return Some(
            "the token starts with `Bearer `: remove the `Bearer ` prefix and pass only the token \
             that follows it (e.g. header.removeprefix(\"Bearer \"))",
        );
    }
    let quoted = token.contains(['"', '\'', '`']);
    let spaced = token.contains(char::is_whitespace);
    let edges_only = token.trim() != token && !token.trim().contains(char::is_whitespace);
    match (quoted, spaced) {
        (true, true) => Some(
            "the token contains whitespace and quotes; pass only the token's characters \
             (base64url and two dots), without quotes, spaces or line breaks",
        ),
        (true, false) => Some(
            "the token is wrapped in quotes or contains them (copied from JSON or code?); pass it \
             without them (json.loads(...) of a JSON string gives the token without quotes)",
        ),
        (false, true) if edges_only => Some(
            "the token has whitespace or a line break at its start or end (read from a file \
             without .strip()?); pass token.strip(), e.g. open(path).read().strip()",
        ),
        (false, true) => Some(
            "the token contains whitespace (a line break or space from copying?); pass it as one \
             unbroken line",
        ),
        (false, false) => None,
    }
}

/// `err` with [`token_hint`]'s hint for `token` appended to its message
/// when `err` says the token is malformed; any other error as it is.
pub(crate) fn with_token_hint(py: Python<'_>, err: PyErr, token: &str) -> PyErr {
    let value = err.value(py);
    let malformed = value
        .getattr("kind")
        .and_then(|k| k.extract::<String>())
        .is_ok_and(|k| k == "malformed");
    let Some(hint) = token_hint(token).filter(|_| malformed) else {
        return err;
    };
    let message = value.str().map(|s| s.to_string()).unwrap_or_default();
    let mut hint = hint.to_owned();
    if let Some(first) = hint.get(..1) {
        hint.replace_range(..1, &first.to_ascii_uppercase());
    }
    let _ = value.setattr("args", (format!("{message}. {hint}"),));
    err
}
