//! Reading a token's `iss` before its signature is checked, to choose the
//! issuer whose keys verify it.
//!
//! What is read here is attacker-controlled and used for nothing but the
//! choice: the chosen issuer's verifier checks the signature with that
//! issuer's keys only, then checks `iss` again (exactly, with the strict
//! parser) among the other claims. A token that could make this reader
//! see another `iss` than the strict parser does would at worst be sent to
//! a key set that cannot verify it.
//!
//! The payload is decoded into a stack buffer and read in one pass that
//! borrows the `iss` string from it: no heap allocation for payloads up to
//! [`STACK`] bytes whose `iss` has no escape sequence (every real one).

use std::borrow::Cow;
use std::fmt;
use std::mem::MaybeUninit;

use base64_simd::{Out, URL_SAFE_NO_PAD};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Decoded payloads up to this many bytes stay on the stack.
const STACK: usize = 2048;

/// A token's `iss`, as read before verification.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Iss<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// No `iss` member.
    Absent,
    /// A member of another JSON type (named, e.g. `"a number"`).
    NotString(&'static str),
}

/// Calls `f` with the token's `iss`; `None` when the token is not a JWS
/// whose payload is a base64url JSON object (the caller asks jwt-core's
/// parser for the precise error).
pub(crate) fn with_issuer<R>(token: &str, f: impl FnOnce(Iss<'_>) -> R) -> Option<R> {
    let first = token.find('.')?;
    let second = first + 1 + token.get(first + 1..)?.find('.')?;
    let payload = token.as_bytes().get(first + 1..second)?;
    if URL_SAFE_NO_PAD.estimated_decoded_length(payload.len()) > STACK {
        let bytes = URL_SAFE_NO_PAD.decode_to_vec(payload).ok()?;
        return read(&bytes).map(f);
    }
    let mut buf = [MaybeUninit::<u8>::uninit(); STACK];
    // The estimate bounds the decoded length, so `buf` is large enough.
    let bytes = URL_SAFE_NO_PAD
        .decode(payload, Out::from_uninit_slice(&mut buf))
        .ok()?;
    read(bytes).map(f)
}

/// Reads `iss` from a JSON object; `None` for anything else (not JSON,
/// not an object, trailing bytes, `iss` twice).
fn read(payload: &[u8]) -> Option<Iss<'_>> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let iss = de.deserialize_map(TopLevel).ok()?;
    de.end().ok()?;
    Some(iss)
}

struct TopLevel;

impl<'de> Visitor<'de> for TopLevel {
    type Value = Iss<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Iss<'de>, A::Error> {
        let mut iss = Iss::Absent;
        let mut seen = false;
        while let Some(is_iss) = map.next_key_seed(IsIss)? {
            if is_iss {
                if seen {
                    return Err(serde::de::Error::custom("duplicate `iss`"));
                }
                seen = true;
                iss = map.next_value_seed(IssValue)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(iss)
    }
}

/// A member name: `true` for `iss` (however escaped: serde_json hands over
/// the unescaped name).
struct IsIss;

impl<'de> DeserializeSeed<'de> for IsIss {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for IsIss {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<bool, E> {
        Ok(name == "iss")
    }
}

struct IssValue;

impl<'de> DeserializeSeed<'de> for IssValue {
    type Value = Iss<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Iss<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IssValue {
    type Value = Iss<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Iss<'de>, E> {
        Ok(Iss::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Iss<'de>, E> {
        // An escape sequence in the issuer: serde_json unescaped it into
        // its scratch space, which does not outlive this call.
        Ok(Iss::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Iss<'de>, E> {
        Ok(Iss::NotString("a boolean"))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Iss<'de>, E> {
        Ok(Iss::NotString("a number"))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Iss<'de>, E> {
        Ok(Iss::NotString("a number"))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Iss<'de>, E> {
        Ok(Iss::NotString("a number"))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Iss<'de>, E> {
        Ok(Iss::NotString("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Iss<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Iss::NotString("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Iss<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Iss::NotString("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!(
            "eyJhbGciOiJFUzI1NiJ9.{}.c2ln",
            jwt_core::b64::encode(payload.as_bytes())
        )
    }

    fn iss(token: &str) -> Option<String> {
        with_issuer(token, |iss| format!("{iss:?}"))
    }

    #[test]
    fn reads_the_top_level_iss_only() {
        assert_eq!(
            iss(&token(r#"{"sub":"a","iss":"https://a.example/","exp":1}"#)).as_deref(),
            Some(r#"Str("https://a.example/")"#)
        );
        // Escaped, in the name and in the value.
        assert_eq!(
            iss(&token(r#"{"i\u0073s":"https:\/\/a"}"#)).as_deref(),
            Some(r#"Str("https://a")"#)
        );
        // Nested `iss` members are not the token's.
        assert_eq!(
            iss(&token(r#"{"act":{"iss":"x"},"a":[{"iss":"y"}]}"#)).as_deref(),
            Some("Absent")
        );
        assert_eq!(
            iss(&token(r#"{"iss":7}"#)).as_deref(),
            Some(r#"NotString("a number")"#)
        );
        assert_eq!(
            iss(&token(r#"{"iss":null}"#)).as_deref(),
            Some(r#"NotString("null")"#)
        );
        assert_eq!(
            iss(&token(r#"{"iss":["a"]}"#)).as_deref(),
            Some(r#"NotString("an array")"#)
        );
        // Large payloads are read too (from the heap).
        let big = format!(r#"{{"pad":"{}","iss":"big"}}"#, "x".repeat(5000));
        assert_eq!(iss(&token(&big)).as_deref(), Some(r#"Str("big")"#));
    }

    #[test]
    fn anything_but_one_json_object_is_not_read() {
        for bad in [
            token(r#"{"iss":"a","iss":"b"}"#),
            token(r#"{"iss":"a"} x"#),
            token("[1]"),
            token("not json"),
            "no-dots".to_owned(),
            "one.dot".to_owned(),
            "a.!!!.c".to_owned(),
            "a.e30=.c".to_owned(),
            String::new(),
        ] {
            assert_eq!(iss(&bad), None, "{bad}");
        }
    }
}
