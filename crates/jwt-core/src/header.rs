//! The JOSE header (RFC 7515 §4).

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::error::Error;
use crate::json;

/// A JWS header.
///
/// The key-carrying parameters `jwk`, `jku`, `x5u`, `x5c` are kept in
/// [`Header::extra`] for inspection only: they are never used to find or
/// fetch a key (RFC 8725 §3.10), because whoever wrote the token chose them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    /// The signing algorithm.
    pub alg: Algorithm,
    /// The media type of the whole token, e.g. `JWT`, `at+jwt`, `refresh+jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// The key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The content type of the payload (only for nested tokens; rarely used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cty: Option<String>,
    /// Every other header parameter, verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Header {
    /// A header with `alg` and `typ: "JWT"`.
    pub fn new(alg: Algorithm) -> Self {
        Header {
            alg,
            typ: Some("JWT".to_owned()),
            kid: None,
            cty: None,
            extra: Map::new(),
        }
    }

    /// Parses decoded header bytes, refusing duplicates, `crit`, `b64:false`,
    /// unknown algorithms and `none`.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Header, Error> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let mut map = de
            .deserialize_any(HeaderVisitor)
            .and_then(|r| de.end().map(|()| r))
            .map_err(|e| Error::malformed(format!("the header is not a valid JSON object: {e}")))?;
        Header::from_map(&mut map)
    }

    /// Builds a header from an already-parsed object (consuming its known members).
    pub(crate) fn from_map(map: &mut Map<String, Value>) -> Result<Header, Error> {
        if let Some(crit) = map.get("crit") {
            return Err(Error::Unsupported {
                reason: format!(
                    "the header marks extensions as critical (`crit`: {crit}) and this library implements none; \
                     such a token cannot be processed safely (RFC 7515 §4.1.11)"
                ),
            });
        }
        match map.get("b64") {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => {
                return Err(Error::Unsupported {
                    reason: "unencoded payloads (`b64: false`, RFC 7797) are not supported".into(),
                })
            }
            Some(other) => {
                return Err(Error::malformed(format!(
                    "header parameter `b64` must be a boolean, found {}",
                    json::json_type(other)
                )))
            }
        }
        let alg = match map.remove("alg") {
            Some(Value::String(s)) => s.parse::<Algorithm>()?,
            Some(other) => {
                return Err(Error::malformed(format!(
                    "header parameter `alg` must be a string, found {}",
                    json::json_type(&other)
                )))
            }
            None => return Err(Error::malformed("the header has no `alg` parameter")),
        };
        let typ = take_string(map, "typ")?;
        let kid = take_string(map, "kid")?;
        let cty = take_string(map, "cty")?;
        Ok(Header {
            alg,
            typ,
            kid,
            cty,
            extra: std::mem::take(map),
        })
    }
}

/// Parses a header object strictly (no duplicates, bounded depth) straight
/// into a map, without the intermediate `Value::Object`.
struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object (the JOSE header)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        let inner = json::StrictValue { depth: 1 };
        while let Some(json::Key(key)) = map.next_key::<json::Key<'de>>()? {
            let value = map.next_value_seed(inner)?;
            if out.insert(key.into_owned(), value).is_some() {
                return Err(serde::de::Error::custom(
                    "duplicate member name in the header",
                ));
            }
        }
        Ok(out)
    }
}

fn take_string(map: &mut Map<String, Value>, name: &str) -> Result<Option<String>, Error> {
    match map.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::malformed(format!(
            "header parameter `{name}` must be a string, found {}",
            json::json_type(&other)
        ))),
    }
}

/// Compares media types as RFC 7515 §4.1.9 says: case-insensitively, with an
/// optional `application/` prefix.
pub fn typ_matches(found: &str, expected: &str) -> bool {
    fn strip(s: &str) -> &str {
        // `get` rather than slicing: a multi-byte character at byte 12 must not panic.
        match (s.get(..12), s.get(12..)) {
            (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case("application/") => rest,
            _ => s,
        }
    }
    strip(found).eq_ignore_ascii_case(strip(expected))
}
