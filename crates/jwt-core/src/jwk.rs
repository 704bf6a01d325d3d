//! JSON Web Keys (RFC 7517) and thumbprints (RFC 7638).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::b64;
use crate::error::Error;
use crate::json;

/// A JSON Web Key, as it appears on the wire. Parse it into a
/// [`SigningKey`](crate::SigningKey) or [`VerifyingKey`](crate::VerifyingKey) to use it.
///
/// `Debug` never shows private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `RSA`, `EC`, `OKP` or `oct`.
    pub kty: String,
    /// Intended use: `sig` (or `enc`, which this library refuses to verify with).
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Permitted operations, e.g. `["verify"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// The algorithm the key is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Curve (`EC`, `OKP`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// X coordinate (`EC`) or public key (`OKP`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Y coordinate (`EC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Private exponent (`RSA`), private scalar (`EC`) or seed (`OKP`). Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    /// RSA first prime. Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    /// RSA second prime. Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// RSA first CRT exponent. Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp: Option<String>,
    /// RSA second CRT exponent. Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dq: Option<String>,
    /// RSA CRT coefficient. Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qi: Option<String>,
    /// Symmetric key (`oct`). Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    /// Other members, kept verbatim (`x5c`, `x5t`, …; never trusted).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Jwk")
            .field("kty", &self.kty)
            .field("use", &self.use_)
            .field("key_ops", &self.key_ops)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("crv", &self.crv)
            .field("x", &self.x)
            .field("y", &self.y)
            .field("n", &self.n)
            .field("e", &self.e)
            .field("d", &redact(&self.d))
            .field("p", &redact(&self.p))
            .field("q", &redact(&self.q))
            .field("dp", &redact(&self.dp))
            .field("dq", &redact(&self.dq))
            .field("qi", &redact(&self.qi))
            .field("k", &redact(&self.k))
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// Parses one JWK from JSON (duplicate members refused).
    pub fn from_json(bytes: &[u8]) -> Result<Jwk, Error> {
        let map =
            json::parse_object(bytes, "the JWK").map_err(|e| Error::invalid_key(e.to_string()))?;
        serde_json::from_value(Value::Object(map))
            .map_err(|e| Error::invalid_key(format!("not a valid JWK: {e}")))
    }

    /// `true` when the JWK holds private material.
    pub fn is_private(&self) -> bool {
        self.d.is_some() || self.k.is_some()
    }

    /// The JWK without private members (`oct` keys have no public form and give `None`).
    pub fn to_public(&self) -> Option<Jwk> {
        if self.kty == "oct" {
            return None;
        }
        let mut out = self.clone();
        out.d = None;
        out.p = None;
        out.q = None;
        out.dp = None;
        out.dq = None;
        out.qi = None;
        out.k = None;
        out.extra.remove("oth");
        Some(out)
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url-encoded.
    pub fn thumbprint(&self) -> Result<String, Error> {
        let missing = |m: &str| {
            Error::invalid_key(format!(
                "cannot compute a thumbprint: the {} JWK has no `{m}`",
                self.kty
            ))
        };
        fn get<'a>(
            v: &'a Option<String>,
            m: &str,
            missing: &dyn Fn(&str) -> Error,
        ) -> Result<&'a str, Error> {
            v.as_deref().ok_or_else(|| missing(m))
        }
        // Required members only, in lexicographic order, no whitespace (RFC 7638 §3.2).
        let canonical = match self.kty.as_str() {
            "EC" => serde_json::json!({
                "crv": get(&self.crv, "crv", &missing)?, "kty": "EC",
                "x": get(&self.x, "x", &missing)?, "y": get(&self.y, "y", &missing)?,
            }),
            "RSA" => serde_json::json!({
                "e": get(&self.e, "e", &missing)?, "kty": "RSA", "n": get(&self.n, "n", &missing)?,
            }),
            "OKP" => serde_json::json!({
                "crv": get(&self.crv, "crv", &missing)?, "kty": "OKP", "x": get(&self.x, "x", &missing)?,
            }),
            "oct" => serde_json::json!({ "k": get(&self.k, "k", &missing)?, "kty": "oct" }),
            other => {
                return Err(Error::invalid_key(format!(
                    "unsupported key type {other:?} (expected RSA, EC, OKP or oct)"
                )))
            }
        };
        // serde_json's map is ordered by key (no `preserve_order`), which is
        // exactly the lexicographic order RFC 7638 requires.
        let bytes =
            serde_json::to_vec(&canonical).map_err(|source| Error::Serialization { source })?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        Ok(b64::encode(digest.as_ref()))
    }
}

/// A JWK Set (`{"keys": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document (duplicate members refused).
    pub fn from_json(bytes: &[u8]) -> Result<Jwks, Error> {
        // `parse_object`'s errors are worded for tokens ("malformed token");
        // here the reason alone, said of the key set.
        let map = json::parse_object(bytes, "the JWKS").map_err(|e| match e {
            Error::Malformed { reason } => Error::invalid_key(format!("not a JWKS: {reason}")),
            other => other,
        })?;
        let Some(keys) = map.get("keys") else {
            return Err(Error::invalid_key(
                "not a JWKS: the document has no `keys` array",
            ));
        };
        if !keys.is_array() {
            return Err(Error::invalid_key(
                "not a JWKS: `keys` must be an array of JWKs",
            ));
        }
        serde_json::from_value(Value::Object(map))
            .map_err(|e| Error::invalid_key(format!("not a valid JWKS: {e}")))
    }

    /// The JWKS as compact JSON.
    pub fn to_json(&self) -> String {
        // A Jwks holds only strings and maps: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{\"keys\":[]}".into())
    }
}
