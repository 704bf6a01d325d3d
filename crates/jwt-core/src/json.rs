//! Strict JSON parsing: duplicate member names are an error (RFC 7515 §5.2,
//! RFC 8725 §3.9 — two parsers must never disagree about a claim), and nesting
//! depth is bounded.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::Error;

/// Maximum nesting depth of objects and arrays inside a header or payload.
pub const MAX_DEPTH: usize = 32;

/// A `DeserializeSeed` producing a `serde_json::Value` that refuses duplicate
/// member names at any depth and nesting deeper than [`MAX_DEPTH`].
#[derive(Clone, Copy)]
pub(crate) struct StrictValue {
    pub(crate) depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.deeper::<A::Error>()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.deeper::<A::Error>()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            reserved_name::<A::Error>(&key)?;
            let value = map.next_value_seed(inner)?;
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate member name {key:?}"
                )));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

impl StrictValue {
    fn deeper<E: serde::de::Error>(self) -> Result<StrictValue, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "JSON nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(StrictValue {
            depth: self.depth + 1,
        })
    }
}

/// Parses `bytes` as a JSON object with strict rules; `what` names the part.
pub(crate) fn parse_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue { depth: 0 }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Error::malformed(format!("{what} is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Error::malformed(format!(
            "{what} must be a JSON object, found {}",
            json_type(&other)
        ))),
    }
}

/// A short name for a JSON value's type, for error messages.
/// Refuses integer literals outside the 64-bit range in JSON text:
/// serde_json (without `arbitrary_precision`) reads them as floats, so a
/// claim written `18446744073709551616` would be signed as written and read
/// back by every verifier (jwtkit's included) as `1.8446744073709552e19`.
/// A number with a fraction or an exponent is a float to begin with and is
/// left alone. Works on any text (no panic on invalid JSON); strings are
/// skipped, escapes included.
pub(crate) fn check_exact_integers(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                // Up to 18 digits always fit; only longer runs need parsing.
                let number = &text[start..i];
                if number.len() > 18
                    && !number.contains(['.', 'e', 'E'])
                    && number.parse::<i64>().is_err()
                    && number.parse::<u64>().is_err()
                {
                    let shown: String = number.chars().take(40).collect();
                    let more = if number.len() > 40 { "…" } else { "" };
                    return Err(format!(
                        "the integer {shown}{more} is outside the 64-bit range, so every verifier \
                         would read it as a rounded float; write it as a string (\"{shown}{more}\")"
                    ));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object key, borrowed from the input when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Member names that serde_json's own types treat as instructions: with its
/// `raw_value` feature, a `Value` holding `{"$serde_json::private::RawValue":
/// "<json>"}` parses the string as JSON, which would hide a duplicate member
/// (or anything else) from the strict pass inside a string. No claims set
/// needs such a name, so none is accepted.
const RESERVED_PREFIX: &str = "$serde_json::private::";

fn reserved_name<E: serde::de::Error>(key: &str) -> Result<(), E> {
    if key.starts_with(RESERVED_PREFIX) {
        return Err(E::custom(format_args!(
            "member name {key:?} is reserved (serde_json gives it a meaning of its own)"
        )));
    }
    Ok(())
}

/// Tracks the member names of one object and refuses a repeat. Small
/// objects use a linear scan over inline storage (no hashing, no heap
/// allocation for a typical claims set); large ones switch to a hash set so
/// hostile input stays linear.
#[derive(Default)]
pub(crate) struct SeenKeys<'de> {
    small: smallvec::SmallVec<[Cow<'de, str>; 12]>,
    large: Option<std::collections::HashSet<Cow<'de, str>>>,
}

impl<'de> SeenKeys<'de> {
    pub(crate) fn insert<E: serde::de::Error>(&mut self, key: Cow<'de, str>) -> Result<(), E> {
        reserved_name::<E>(&key)?;
        let dup = || E::custom(format_args!("duplicate member name {key:?}"));
        if let Some(set) = &mut self.large {
            if set.contains(&key) {
                return Err(dup());
            }
            set.insert(key);
            return Ok(());
        }
        if self.small.contains(&key) {
            return Err(dup());
        }
        self.small.push(key);
        if self.small.len() > 32 {
            self.large = Some(self.small.drain(..).collect());
        }
        Ok(())
    }

    /// The names seen, sorted (for tests).
    #[cfg(test)]
    pub(crate) fn sorted(&self) -> Vec<String> {
        let mut out: Vec<String> = match &self.large {
            Some(set) => set.iter().map(|k| k.to_string()).collect(),
            None => self.small.iter().map(|k| k.to_string()).collect(),
        };
        out.sort();
        out
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        match &self.large {
            Some(set) => set.contains(key),
            None => self.small.iter().any(|k| k == key),
        }
    }
}

/// Walks any JSON value without keeping it, refusing duplicate member names
/// and excessive depth.
#[derive(Clone, Copy)]
pub(crate) struct Check {
    pub(crate) depth: usize,
}

impl<'de> DeserializeSeed<'de> for Check {
    /// `true` when the value was `null`.
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let inner = self.deeper::<A::Error>()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let inner = self.deeper::<A::Error>()?;
        let mut seen = SeenKeys::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            seen.insert::<A::Error>(key)?;
            map.next_value_seed(inner)?;
        }
        Ok(false)
    }
}

impl Check {
    pub(crate) fn deeper<E: serde::de::Error>(self) -> Result<Check, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "JSON nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(Check {
            depth: self.depth + 1,
        })
    }
}

#[cfg(test)]
mod exact_integer_tests {
    use super::check_exact_integers;

    /// Issue 13 item 5: integers beyond 64 bits are refused wherever they
    /// are; everything that reads back exactly is kept.
    #[test]
    fn integers_beyond_64_bits_are_refused_wherever_they_are() {
        for ok in [
            r#"{"n":9223372036854775807}"#,
            r#"{"n":9223372036854775808}"#,
            r#"{"n":18446744073709551615}"#,
            r#"{"n":-9223372036854775808}"#,
            r#"{"n":1e30,"f":1.5,"g":-0.0,"h":123456789012345678901234.5}"#,
            r#"{"s":"18446744073709551616","t":"\"99999999999999999999\""}"#,
            // Not JSON at all: no panic, nothing to refuse.
            "\"unterminated \\",
            "-",
        ] {
            assert_eq!(check_exact_integers(ok), Ok(()), "{ok}");
        }
        for bad in [
            r#"{"n":18446744073709551616}"#,
            r#"{"a":[1,{"b":-9223372036854775809}]}"#,
            r#"{"s":"\\","n":99999999999999999999}"#,
        ] {
            let err = check_exact_integers(bad).expect_err(bad);
            assert!(err.contains("64-bit range"), "{bad}: {err}");
        }
    }
}
