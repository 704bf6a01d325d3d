//! Operations that do **not** verify anything, and the escape hatches that
//! weaken what is verified. Decoded results are attacker controlled: use them
//! for debugging, routing by issuer, or picking a key set — never for
//! authorization. The weak-key hatches are for verifying legacy tokens while
//! their issuer migrates.

use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::error::Error;
use crate::header::Header;
use crate::jws;
use crate::key::VerifyingKey;
use crate::validation::{Validation, DEFAULT_MAX_TOKEN_SIZE};

/// A token decoded without checking its signature or claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    /// The header (attacker-controlled).
    pub header: Header,
    /// The claims (attacker-controlled).
    pub claims: Map<String, Value>,
}

/// Decodes a token's header and claims **without verifying anything**.
///
/// The same strict parsing applies as for verification (canonical base64url,
/// no duplicate members, size limit, no `crit`).
pub fn insecure_decode(token: &str) -> Result<Unverified, Error> {
    let parts = jws::split(token, DEFAULT_MAX_TOKEN_SIZE)?;
    jws::with_signature(parts.signature_b64, |_| ())?;
    let claims = jws::decode_payload(parts.payload_b64)?;
    Ok(Unverified {
        header: parts.header,
        claims,
    })
}

/// Decodes only the header **without verifying anything** (e.g. to read `kid`).
pub fn insecure_decode_header(token: &str) -> Result<Header, Error> {
    let parts = jws::split(token, DEFAULT_MAX_TOKEN_SIZE)?;
    jws::with_signature(parts.signature_b64, |_| ())?;
    Ok(parts.header)
}

/// Lets a [`Validation`] verify with keys that are too weak to be accepted by
/// default: HMAC secrets shorter than the hash, and 1024–2047-bit RSA keys
/// (RS256 and RS512 only). For verifying legacy tokens while their issuer
/// migrates; never for signing, which always refuses weak keys.
pub fn allow_weak_verification_keys(validation: Validation) -> Validation {
    let mut v = validation;
    v.allow_weak_keys = true;
    v
}

/// [`VerifyingKey::check_usable`], but accepting the keys that
/// [`allow_weak_verification_keys`] lets a [`Validation`] verify with: HMAC
/// secrets shorter than the hash, and 1024–2047-bit RSA keys for RS256 and
/// RS512. Family and algorithm binding are checked as usual. For callers that
/// check a key ahead of verifying with such a validation; never for signing.
pub fn check_usable_allowing_weak_keys(key: &VerifyingKey, alg: Algorithm) -> Result<(), Error> {
    key.check_usable_with(alg, true)
}
