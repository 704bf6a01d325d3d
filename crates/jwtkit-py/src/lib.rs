//! `jwtkit._jwtkit`: the native module of the `jwtkit` Python package.
//!
//! PyJWT's API (`encode`, `decode`, `decode_complete`, `get_unverified_header`,
//! the JWS functions behind `PyJWS`, JWK parsing behind `PyJWK` and `PyJWKSet`,
//! jwt-keys' remote JWKS cache behind `PyJWKClient` in `remote.rs`) on jwt-core's
//! strict verifier, and jwtkit's key stores
//! and token service (`store.rs`, `service.rs`). The Python layer
//! (`python/jwtkit/`) holds the exception classes and the thin classes.
//!
//! Signing and verifying release the GIL (`Python::detach`). Parsed keys and
//! built verifiers are cached, keyed by the exact key bytes, algorithm and
//! settings (never by a hash alone or an object's address).
//!
//! `unsafe`: none. `forbid(unsafe_code)` holds with PyO3 0.30, whose macros'
//! FFI trampolines are expanded from PyO3's own crate (the lint does not
//! count them against this one).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use pyo3::prelude::*;

mod convert;
mod errors;
mod jws;
mod jwt;
mod keys;
mod remote;
mod runtime;
mod service;
mod store;

/// The native module `jwtkit._jwtkit`.
#[pymodule]
fn _jwtkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    jwt::register(m)?;
    jws::register(m)?;
    keys::register(m)?;
    remote::register(m)?;
    store::register(m)?;
    service::register(m)?;
    runtime::register(m)?;
    Ok(())
}
