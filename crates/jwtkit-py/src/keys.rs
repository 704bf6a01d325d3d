//! Keys given from Python, and the caches of what is built from them.
//!
//! A key arrives as a `str`/`bytes` secret or PEM/DER/JWK text, a
//! `cryptography` key object (serialized through its public API to DER), or a
//! `NativeJwk` (behind `PyJWK`). Parsing a PEM key costs far more than a
//! signature check, so what is built from a key (a signer, a verifier, a
//! verifying key) is cached, keyed by the *exact bytes* of the key material
//! plus the algorithm and settings: never by a hash alone, nor by an
//! object's `id()`, which Python reuses.

use std::sync::{Arc, LazyLock};

use jwt_core::{Algorithm, Jwk, KeyFamily, SigningKey, VerifyingKey};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyString};
use quick_cache::sync::Cache;

use crate::errors::{core_err, kind_err};

/// How many built signers / verifiers / keys each cache keeps.
const CACHE_ENTRIES: usize = 512;

/// Key material, as given (the cache keys hold it verbatim).
pub(crate) enum Material {
    /// An HMAC secret.
    Secret(Vec<u8>),
    /// PEM text (a private or public key, or a certificate).
    Pem(Vec<u8>),
    /// DER (PKCS#8, PKCS#1, SEC1, SPKI or a certificate).
    Der(Vec<u8>),
    /// A JWK as JSON.
    Jwk(Vec<u8>),
}

impl Material {
    fn tag(&self) -> u8 {
        match self {
            Material::Secret(_) => b'S',
            Material::Pem(_) => b'P',
            Material::Der(_) => b'D',
            Material::Jwk(_) => b'J',
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Material::Secret(b) | Material::Pem(b) | Material::Der(b) | Material::Jwk(b) => b,
        }
    }

    /// Appends an unambiguous encoding of the material to a cache key.
    pub(crate) fn write_fingerprint(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        out.extend_from_slice(&(self.bytes().len() as u64).to_le_bytes());
        out.extend_from_slice(self.bytes());
    }

    /// The key to verify with.
    pub(crate) fn verifying_key(&self) -> Result<VerifyingKey, jwt_core::Error> {
        match self {
            Material::Secret(s) => VerifyingKey::hmac(s),
            Material::Pem(p) => VerifyingKey::from_pem(p),
            Material::Der(d) => VerifyingKey::from_der(d),
            Material::Jwk(j) => VerifyingKey::from_jwk(&Jwk::from_json(j)?),
        }
    }

    /// The key to sign with.
    pub(crate) fn signing_key(&self) -> Result<SigningKey, jwt_core::Error> {
        match self {
            Material::Secret(s) => SigningKey::hmac(s),
            Material::Pem(p) => SigningKey::from_pem(p),
            Material::Der(d) => SigningKey::from_der(d),
            Material::Jwk(j) => SigningKey::from_jwk(&Jwk::from_json(j)?),
        }
    }
}

/// A parsed JWK (the native half of `PyJWK`). Its `Debug`/`repr` shows no
/// key material.
#[pyclass(name = "NativeJwk", module = "jwtkit._jwtkit", frozen)]
pub(crate) struct NativeJwk {
    json: Vec<u8>,
    jwk: Jwk,
    family: KeyFamily,
}

#[pymethods]
impl NativeJwk {
    /// Parses a JWK from its JSON text and checks that it is a usable key.
    #[new]
    fn new(py: Python<'_>, json: &str) -> PyResult<Self> {
        let jwk = Jwk::from_json(json.as_bytes()).map_err(|e| core_err(py, e))?;
        let family = VerifyingKey::from_jwk(&jwk)
            .map_err(|e| core_err(py, e))?
            .family();
        Ok(NativeJwk {
            json: json.as_bytes().to_vec(),
            jwk,
            family,
        })
    }

    /// `kty`.
    #[getter]
    fn kty(&self) -> &str {
        &self.jwk.kty
    }

    /// `kid`, if any.
    #[getter]
    fn kid(&self) -> Option<&str> {
        self.jwk.kid.as_deref()
    }

    /// `alg`, if any.
    #[getter]
    fn alg(&self) -> Option<&str> {
        self.jwk.alg.as_deref()
    }

    /// `use`, if any.
    #[getter(public_key_use)]
    fn public_key_use(&self) -> Option<&str> {
        self.jwk.use_.as_deref()
    }

    /// The algorithm the key is for: its `alg`, else its family's default
    /// (PyJWT's choice: RS256 for RSA, ES256/384/512 by curve, EdDSA, HS256).
    #[getter]
    fn algorithm_name(&self) -> String {
        match &self.jwk.alg {
            Some(a) => a.clone(),
            None => self.family.default_algorithm().as_str().to_owned(),
        }
    }

    /// Whether the JWK holds a private key (or is a secret).
    #[getter]
    fn is_private(&self) -> bool {
        self.jwk.is_private()
    }

    /// The RFC 7638 thumbprint.
    fn thumbprint(&self, py: Python<'_>) -> PyResult<String> {
        self.jwk.thumbprint().map_err(|e| core_err(py, e))
    }

    fn __repr__(&self) -> String {
        format!(
            "NativeJwk(kty={:?}, kid={:?}, alg={:?})",
            self.jwk.kty, self.jwk.kid, self.jwk.alg
        )
    }
}

/// `cryptography`'s serialization enums, imported on first use.
struct Serialization {
    der: Py<PyAny>,
    pkcs8: Py<PyAny>,
    spki: Py<PyAny>,
    no_encryption: Py<PyAny>,
}

static SERIALIZATION: PyOnceLock<Serialization> = PyOnceLock::new();

fn serialization(py: Python<'_>) -> PyResult<&Serialization> {
    SERIALIZATION.get_or_try_init(py, || {
        let m = py.import("cryptography.hazmat.primitives.serialization")?;
        Ok::<_, PyErr>(Serialization {
            der: m.getattr("Encoding")?.getattr("DER")?.unbind(),
            pkcs8: m.getattr("PrivateFormat")?.getattr("PKCS8")?.unbind(),
            spki: m
                .getattr("PublicFormat")?
                .getattr("SubjectPublicKeyInfo")?
                .unbind(),
            no_encryption: m.getattr("NoEncryption")?.call0()?.unbind(),
        })
    })
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(10).any(|w| w == b"-----BEGIN")
}

/// Whether `bytes` are DER or JWK text that parse as a key of a public-key
/// algorithm (a JWK of `kty` `oct` is an HMAC secret's text, not this).
/// Only asked when a list of algorithms mixes HMAC and public-key ones.
fn is_public_key(bytes: &[u8]) -> bool {
    match bytes.trim_ascii_start().first() {
        // DER: a SEQUENCE.
        Some(0x30) => VerifyingKey::from_der(bytes).is_ok(),
        Some(b'{') => Jwk::from_json(bytes)
            .is_ok_and(|jwk| jwk.kty != "oct" && VerifyingKey::from_jwk(&jwk).is_ok()),
        _ => false,
    }
}

/// The key material of `key` for the algorithms `algs` (a `str`/`bytes`
/// that is not PEM is a secret for HMAC, DER or JWK text otherwise).
pub(crate) fn material(
    py: Python<'_>,
    key: &Bound<'_, PyAny>,
    algs: &[Algorithm],
) -> PyResult<Material> {
    let hmac = algs.iter().any(|a| a.is_symmetric());
    let asymmetric = algs.iter().any(|a| !a.is_symmetric());
    let is_str = key.is_instance_of::<PyString>();
    let text: Option<Vec<u8>> = if let Ok(s) = key.cast::<PyString>() {
        Some(s.to_cow()?.as_bytes().to_vec())
    } else if let Ok(b) = key.cast::<PyBytes>() {
        Some(b.as_bytes().to_vec())
    } else if let Ok(b) = key.cast::<PyByteArray>() {
        Some(b.to_vec())
    } else {
        None
    };
    if let Some(bytes) = text {
        // A PEM given for HMAC only goes to jwt-core as a secret, which
        // refuses it with the reason (a public key is never an HMAC secret).
        // With HMAC and public-key algorithms both allowed, text that is a
        // public key (PEM, DER, or a JWK of a public-key type) is that key,
        // never an HMAC secret: a token is then verified only with the
        // key's own algorithms, and an HS256 token "signed" with the
        // public key is refused (algorithm confusion).
        let public_key = hmac && asymmetric && is_public_key(&bytes);
        return Ok(
            if hmac && !public_key && (!asymmetric || !looks_like_pem(&bytes)) {
                Material::Secret(bytes)
            } else if looks_like_pem(&bytes) {
                Material::Pem(bytes)
            } else if bytes.trim_ascii_start().first() == Some(&b'{') {
                Material::Jwk(bytes)
            } else if bytes.starts_with(b"ssh-") || bytes.starts_with(b"ecdsa-sha2-") {
                return Err(kind_err(
                    py,
                    "invalid_key",
                    "OpenSSH public keys are not supported; convert the key to PEM \
                 (`ssh-keygen -e -m PKCS8 -f KEY.pub`)"
                        .to_owned(),
                ));
            } else if is_str || bytes.first() != Some(&0x30) {
                // DER is binary and always starts with a SEQUENCE (0x30): this
                // is a secret, a file name or a typo, not a key.
                return Err(not_a_public_key(py, algs, &bytes, is_str));
            } else {
                Material::Der(bytes)
            },
        );
    }
    if let Ok(native) = key.cast::<NativeJwk>() {
        return Ok(Material::Jwk(native.get().json.clone()));
    }
    if let Some(native) = key.getattr_opt("_jwtkit_native")? {
        if let Ok(native) = native.cast::<NativeJwk>() {
            return Ok(Material::Jwk(native.get().json.clone()));
        }
    }
    if key.is_none() {
        return Err(kind_err(
            py,
            "invalid_key",
            "no key was given (None); pass the HMAC secret, a PEM key or a key object".to_owned(),
        ));
    }
    // `cryptography` key objects, through their public serialization API.
    if hmac && !asymmetric {
        return Err(kind_err(
            py,
            "invalid_key",
            format!(
                "an HMAC algorithm needs a secret (str or bytes), not a {} object",
                key.get_type().name()?
            ),
        ));
    }
    if key.hasattr("private_bytes")? {
        let s = serialization(py)?;
        let der = key.call_method1(
            "private_bytes",
            (s.der.bind(py), s.pkcs8.bind(py), s.no_encryption.bind(py)),
        )?;
        return Ok(Material::Der(der.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    if key.hasattr("public_bytes")? {
        let s = serialization(py)?;
        let der = key.call_method1("public_bytes", (s.der.bind(py), s.spki.bind(py)))?;
        return Ok(Material::Der(der.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "Expecting a str, bytes, cryptography key object or PyJWK as the key, not {}",
        key.get_type().name()?
    )))
}

/// The refusal of a `str`/`bytes` key that is neither PEM, JWK JSON nor
/// DER, given for an asymmetric algorithm: what the algorithm needs, how
/// the value was read, and the two usual slips (an HMAC secret with the
/// wrong algorithm, a file name instead of the file's contents). The value
/// itself is never shown (it may be a secret).
fn not_a_public_key(py: Python<'_>, algs: &[Algorithm], bytes: &[u8], is_str: bool) -> PyErr {
    let asymmetric: Vec<&str> = algs
        .iter()
        .filter(|a| !a.is_symmetric())
        .map(|a| a.as_str())
        .collect();
    let needs = match algs.iter().find(|a| !a.is_symmetric()).map(|a| a.family()) {
        Some(KeyFamily::Rsa) => "an RSA key",
        Some(KeyFamily::Ec(_)) => "an EC key",
        Some(KeyFamily::Ed25519) => "an Ed25519 key",
        _ => "an asymmetric key",
    };
    let what = if is_str { "str" } else { "bytes" };
    let mut message = format!(
        "{} needs {needs} (the public key to verify, the private key to sign: PEM text with a `-----BEGIN` line, a JWK, a `cryptography` key object \
         or a PyJWK), but the key is a {what} that is not PEM, JWK JSON{} (a non-PEM {what} is \
         read as DER or JWK text). Did you mean an HMAC algorithm (algorithms=[\"HS256\"]) for \
         this secret, or did you pass a file path instead of the file's contents?",
        asymmetric.join("/"),
        if is_str { "" } else { " nor DER" },
    );
    let names_file = std::str::from_utf8(bytes)
        .ok()
        .filter(|p| !p.is_empty() && p.len() < 4096 && !p.contains('\0'))
        .is_some_and(|p| std::path::Path::new(p.trim()).is_file());
    if names_file {
        message.push_str(
            " The key names an existing file: pass its contents, e.g. open(path, \"rb\").read()",
        );
    }
    kind_err(py, "invalid_key", message)
}

/// Looks `fingerprint` up in `cache`, building and inserting on a miss.
pub(crate) fn cached<T>(
    cache: &Cache<Vec<u8>, Arc<T>>,
    fingerprint: Vec<u8>,
    build: impl FnOnce() -> Result<T, jwt_core::Error>,
) -> Result<Arc<T>, jwt_core::Error> {
    if let Some(hit) = cache.get(&fingerprint) {
        return Ok(hit);
    }
    let built = Arc::new(build()?);
    cache.insert(fingerprint, built.clone());
    Ok(built)
}

/// Built signers, by key, algorithm and header parameters.
pub(crate) static SIGNERS: LazyLock<Cache<Vec<u8>, Arc<jwt_core::Signer>>> =
    LazyLock::new(|| Cache::new(CACHE_ENTRIES));
/// Built verifiers, by key, algorithms and validation settings.
pub(crate) static VERIFIERS: LazyLock<Cache<Vec<u8>, Arc<jwt_core::Verifier>>> =
    LazyLock::new(|| Cache::new(CACHE_ENTRIES));
/// Parsed verifying keys (for `PyJWS`'s byte payloads), by key.
pub(crate) static VERIFYING_KEYS: LazyLock<Cache<Vec<u8>, Arc<VerifyingKey>>> =
    LazyLock::new(|| Cache::new(CACHE_ENTRIES));

/// Parses an algorithm name as PyJWT spells it.
pub(crate) fn algorithm(py: Python<'_>, name: &str) -> PyResult<Algorithm> {
    name.parse::<Algorithm>().map_err(|_| {
        let message = if name.eq_ignore_ascii_case("none") {
            "Algorithm not supported: \"none\" (unsigned tokens) is never signed or accepted by jwtkit".to_owned()
        } else {
            format!(
                "Algorithm not supported: {name:?}; jwtkit supports {}",
                Algorithm::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
            )
        };
        // PyJWT raises NotImplementedError for an unknown algorithm when
        // signing; InvalidAlgorithmError (a rejection) would hide the bug.
        crate::errors::class_err(py, "InvalidAlgorithmError", "invalid_algorithm", message)
    })
}

/// The public JWK of `key` (a PEM/DER/JWK `str`/`bytes`, a `cryptography`
/// key object, private or public, or a `PyJWK`) as JSON text: `use: "sig"`,
/// `alg` when `algorithm` is given (it must fit the key), and `kid`: the
/// given one, else the key's RFC 7638 thumbprint (what jwtkit puts in the
/// header of tokens signed without a `kid`). HMAC secrets have no public
/// JWK and are refused (they must never be published).
#[pyfunction]
#[pyo3(signature = (key, algorithm=None, kid=None))]
fn public_jwk(
    py: Python<'_>,
    key: &Bound<'_, PyAny>,
    algorithm: Option<&str>,
    kid: Option<String>,
) -> PyResult<String> {
    let alg = algorithm.map(|a| self::algorithm(py, a)).transpose()?;
    if alg.is_some_and(|a| a.is_symmetric()) {
        return Err(kind_err(
            py,
            "invalid_key",
            "an HMAC secret has no public JWK: it must never be published (share it out of band); \
             public_jwk is for RSA, EC and Ed25519 keys"
                .to_owned(),
        ));
    }
    let algs = match alg {
        Some(a) => vec![a],
        None => vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
    };
    let material = material(py, key, &algs)?;
    let mut vk = material.verifying_key().map_err(|e| core_err(py, e))?;
    if let Some(a) = alg {
        vk = vk.with_algorithm(a).map_err(|e| core_err(py, e))?;
    }
    if let Some(kid) = kid {
        vk = vk.with_kid(kid);
    }
    let jwk = vk.to_public_jwk().ok_or_else(|| {
        kind_err(
            py,
            "invalid_key",
            "an HMAC secret has no public JWK: it must never be published".to_owned(),
        )
    })?;
    serde_json::to_string(&jwk)
        .map_err(|e| core_err(py, jwt_core::Error::Serialization { source: e }))
}

/// Registers `NativeJwk` and `public_jwk`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeJwk>()?;
    m.add_function(wrap_pyfunction!(public_jwk, m)?)?;
    Ok(())
}
