//! `PyJWS`: signing and verifying arbitrary byte payloads (a JWS whose
//! payload need not be JSON claims). Claims are not validated here; the
//! header is parsed as strictly as for a JWT.

use jwt_core::b64;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{class_err, core_err};
use crate::jwt::{encode_algorithm, header_to_py, signer};
use crate::keys::{self, algorithm, cached, VERIFYING_KEYS};

/// `PyJWS.encode(payload: bytes, key, algorithm, headers)`: a compact JWS.
#[pyfunction]
#[pyo3(signature = (payload, key, algorithm="HS256", headers=None))]
fn jws_encode(
    py: Python<'_>,
    payload: &[u8],
    key: &Bound<'_, PyAny>,
    algorithm: Option<&str>,
    headers: Option<&Bound<'_, PyDict>>,
) -> PyResult<String> {
    let alg = encode_algorithm(py, algorithm, headers)?;
    let signer = signer(py, key, alg, headers)?;
    let header_json = serde_json::to_vec(signer.header())
        .map_err(|e| core_err(py, jwt_core::Error::Serialization { source: e }))?;
    let mut input = b64::encode(&header_json);
    input.push('.');
    b64::encode_into(payload, &mut input);
    let signature = py
        .detach(|| signer.key().sign_raw(alg, input.as_bytes()))
        .map_err(|e| core_err(py, e))?;
    Ok(jwt_core::assemble(input, &signature))
}

/// `PyJWS.decode_complete(jwt, key, algorithms)`: `{"payload": bytes,
/// "header": dict, "signature": bytes}` after checking the signature.
#[pyfunction]
#[pyo3(signature = (jwt, key, algorithms))]
fn jws_decode_complete<'py>(
    py: Python<'py>,
    jwt: &str,
    key: &Bound<'py, PyAny>,
    algorithms: Vec<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let algs = algorithms
        .iter()
        .map(|a| algorithm(py, a))
        .collect::<PyResult<Vec<_>>>()?;
    // The header, strictly parsed (no `crit`, no `none`, canonical base64url).
    let header = jwt_core::dangerous::insecure_decode_header(jwt)
        .map_err(|e| crate::errors::with_token_hint(py, core_err(py, e), jwt))?;
    if !algs.contains(&header.alg) {
        return Err(class_err(
            py,
            "InvalidAlgorithmError",
            "invalid_algorithm",
            format!(
                "The specified alg value is not allowed: the token uses {}, allowed: {}",
                header.alg,
                algorithms.join(", ")
            ),
        ));
    }
    let material = keys::material(py, key, &[header.alg])?;
    let mut fingerprint = Vec::new();
    material.write_fingerprint(&mut fingerprint);
    let key = cached(&VERIFYING_KEYS, fingerprint, || material.verifying_key())
        .map_err(|e| core_err(py, e))?;
    key.check_usable(header.alg).map_err(|e| core_err(py, e))?;
    let mut parts = jwt.splitn(3, '.');
    let (h, p, s) = match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s)) => (h, p, s),
        _ => {
            return Err(core_err(
                py,
                jwt_core::Error::Malformed {
                    reason: "a JWS has 3 parts".to_owned(),
                },
            ))
        }
    };
    let signature = b64::decode(s.as_bytes(), "the signature")
        .map_err(|e| crate::errors::with_token_hint(py, core_err(py, e), jwt))?;
    let signing_input = &jwt[..h.len() + 1 + p.len()];
    py.detach(|| key.verify_raw(header.alg, signing_input.as_bytes(), &signature))
        .map_err(|e| core_err(py, e))?;
    let payload = b64::decode(p.as_bytes(), "the payload").map_err(|e| core_err(py, e))?;
    let out = PyDict::new(py);
    out.set_item("payload", PyBytes::new(py, &payload))?;
    out.set_item("header", header_to_py(py, &header)?)?;
    out.set_item("signature", PyBytes::new(py, &signature))?;
    Ok(out)
}

/// The JWK Set in a JWKS HTTP answer, checked as jwt-keys checks a fetched
/// one (content type, size, no `oct` keys, unusable keys skipped), with the
/// cache lifetime its `Cache-Control` gives: `(list of JWK JSON texts, ttl)`.
#[pyfunction]
#[pyo3(signature = (body, content_type=None, cache_control=None))]
fn parse_jwks_response(
    py: Python<'_>,
    body: &[u8],
    content_type: Option<&str>,
    cache_control: Option<&str>,
) -> PyResult<(Vec<String>, i64)> {
    let (keys, ttl) = jwt_keys::parse_jwks_response(
        content_type,
        cache_control,
        body,
        &jwt_keys::CacheOptions::default(),
    )
    .map_err(|e| {
        class_err(
            py,
            "PyJWKClientError",
            "fetch",
            format!("the JWKS is unusable: {e}"),
        )
    })?;
    let jwks = keys.to_jwks();
    let texts = jwks
        .keys
        .iter()
        .map(|k| serde_json::to_string(k).unwrap_or_default())
        .collect();
    Ok((texts, ttl))
}

/// Registers the JWS functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(jws_encode, m)?)?;
    m.add_function(wrap_pyfunction!(jws_decode_complete, m)?)?;
    m.add_function(wrap_pyfunction!(parse_jwks_response, m)?)?;
    Ok(())
}
