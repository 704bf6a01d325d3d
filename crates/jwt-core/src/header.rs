//! The JOSE header (RFC 7515 §4).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;
use crate::error::Error;
use crate::json;

/// A JWS header.
///
/// `typ` and `cty` are media types, and nearly every token carries one of a
/// few registered ones (`JWT`, `at+jwt`, …): those are held as `'static`
/// text, so a verified token's header is copied out of the verifier's memo
/// without an allocation. Any other value is held as written
/// (`Cow::Owned`); either way the text is exactly the token's.
///
/// The key-carrying parameters `jwk`, `jku`, `x5u`, `x5c` are kept in
/// [`Header::extra`] for inspection only: they are never used to find or
/// fetch a key (RFC 8725 §3.10), because whoever wrote the token chose them.
#[derive(Debug, PartialEq, Serialize)]
pub struct Header {
    /// The signing algorithm.
    pub alg: Algorithm,
    /// The media type of the whole token, e.g. `JWT`, `at+jwt`, `refresh+jwt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typ: Option<Cow<'static, str>>,
    /// The key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The content type of the payload (only for nested tokens; rarely used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cty: Option<Cow<'static, str>>,
    /// Every other header parameter, verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// Not derived, so that it is inlined: a verified token's header is copied
// out of the verifier's memo, and built in place it is not returned through
// memory and read back wider than it was written (a store-forwarding stall).
impl Clone for Header {
    #[inline(always)]
    fn clone(&self) -> Self {
        Header {
            alg: self.alg,
            typ: clone_media_type(&self.typ),
            kid: self.kid.clone(),
            cty: clone_media_type(&self.cty),
            // Most headers have no other parameter: an empty map made in
            // place rather than by `BTreeMap::clone`, whose result went
            // through memory and stalled.
            extra: if self.extra.is_empty() {
                Map::new()
            } else {
                self.extra.clone()
            },
        }
    }
}

/// `Cow::clone`, inlined (it is not, and its result went through memory).
#[inline(always)]
fn clone_media_type(m: &Option<Cow<'static, str>>) -> Option<Cow<'static, str>> {
    match m {
        None => None,
        Some(Cow::Borrowed(s)) => Some(Cow::Borrowed(s)),
        Some(Cow::Owned(s)) => Some(Cow::Owned(s.clone())),
    }
}

impl Header {
    /// A header with `alg` and `typ: "JWT"`.
    pub fn new(alg: Algorithm) -> Self {
        Header {
            alg,
            typ: Some(Cow::Borrowed("JWT")),
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
            typ: string_param("typ", typ)?.map(media_type),
            kid: string_param("kid", kid)?,
            cty: string_param("cty", cty)?.map(media_type),
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

/// The registered media types held without an allocation: those of
/// RFC 7519 (`JWT`), RFC 9068 (`at+jwt`), RFC 9449 (`dpop+jwt`), RFC 9701,
/// RFC 8417, OpenID Connect back-channel logout, and jwtkit's refresh
/// tokens.
const MEDIA_TYPES: [&str; 7] = [
    "JWT",
    "at+jwt",
    "dpop+jwt",
    "token-introspection+jwt",
    "secevent+jwt",
    "logout+jwt",
    "refresh+jwt",
];

/// A `typ` or `cty` value: one of [`MEDIA_TYPES`] as `'static` text (the
/// same text, byte for byte), any other as it was written.
pub(crate) fn media_type(text: impl Into<String> + AsRef<str>) -> Cow<'static, str> {
    match MEDIA_TYPES.iter().find(|m| **m == text.as_ref()) {
        Some(m) => Cow::Borrowed(m),
        None => Cow::Owned(text.into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn typ_of(json: &str) -> Option<Cow<'static, str>> {
        Header::parse(json.as_bytes()).expect("header").typ
    }

    /// A registered media type is held as `'static` text, any other value
    /// (a different case included) as written: the text is always the
    /// token's own.
    #[test]
    fn media_types_are_held_as_written() {
        for m in MEDIA_TYPES {
            let typ = typ_of(&format!(r#"{{"alg":"HS256","typ":"{m}"}}"#));
            assert!(
                matches!(typ, Some(Cow::Borrowed(t)) if t == m),
                "{m}: {typ:?}"
            );
        }
        for m in [
            "jwt",
            "AT+JWT",
            "application/at+jwt",
            "JWT ",
            "",
            "custom+jwt",
        ] {
            let typ = typ_of(&format!(r#"{{"alg":"HS256","typ":"{m}"}}"#));
            assert!(
                matches!(&typ, Some(Cow::Owned(t)) if t == m),
                "{m}: {typ:?}"
            );
        }
        let h = Header::parse(br#"{"alg":"HS256","cty":"JWT"}"#).expect("header");
        assert!(matches!(h.cty, Some(Cow::Borrowed("JWT"))));
        assert_eq!(h.clone(), h);
    }
}
