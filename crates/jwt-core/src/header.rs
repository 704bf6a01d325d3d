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
        let raw = de
            .deserialize_any(HeaderVisitor)
            .and_then(|r| de.end().map(|()| r))
            .map_err(|e| Error::malformed(format!("the header is not a valid JSON object: {e}")))?;
        Header::from_raw(raw)
    }

    fn from_raw(raw: RawHeader) -> Result<Header, Error> {
        let RawHeader {
            alg,
            typ,
            kid,
            cty,
            extra,
        } = raw;
        if let Some(crit) = extra.get("crit") {
            return Err(Error::Unsupported {
                reason: format!(
                    "the header marks extensions as critical (`crit`: {crit}) and this library implements none; \
                     such a token cannot be processed safely (RFC 7515 §4.1.11)"
                ),
            });
        }
        match extra.get("b64") {
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
        let alg = match alg {
            Some(Value::String(s)) => s.parse::<Algorithm>()?,
            Some(other) => {
                return Err(Error::malformed(format!(
                    "header parameter `alg` must be a string, found {}",
                    json::json_type(&other)
                )))
            }
            None => return Err(Error::malformed("the header has no `alg` parameter")),
        };
        Ok(Header {
            alg,
            typ: string_param("typ", typ)?,
            kid: string_param("kid", kid)?,
            cty: string_param("cty", cty)?,
            extra,
        })
    }
}

/// A header as parsed, before its members are checked.
struct RawHeader {
    alg: Option<Value>,
    typ: Option<Value>,
    kid: Option<Value>,
    cty: Option<Value>,
    extra: Map<String, Value>,
}

/// Parses a header object strictly (no duplicates, bounded depth), putting
/// the common members straight into their slots.
struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object (the JOSE header)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
        let mut raw = RawHeader {
            alg: None,
            typ: None,
            kid: None,
            cty: None,
            extra: Map::new(),
        };
        let mut seen = json::SeenKeys::default();
        let inner = json::StrictValue { depth: 1 };
        while let Some(json::Key(key)) = map.next_key::<json::Key<'de>>()? {
            let value = map.next_value_seed(inner)?;
            let slot = match &*key {
                "alg" => &mut raw.alg,
                "typ" => &mut raw.typ,
                "kid" => &mut raw.kid,
                "cty" => &mut raw.cty,
                _ => {
                    seen.insert::<A::Error>(key.clone())?;
                    raw.extra.insert(key.into_owned(), value);
                    continue;
                }
            };
            if slot.replace(value).is_some() {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate member name {key:?}"
                )));
            }
        }
        Ok(raw)
    }
}

fn string_param(name: &str, value: Option<Value>) -> Result<Option<String>, Error> {
    match value {
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
