//! One strict pass over the payload: refuses duplicate members and deep
//! nesting, and picks out the registered claims without building a tree.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::Error;
use crate::json::{Check, Key, SeenKeys};

/// A registered claim's value, as much as validation needs of it.
#[derive(Debug)]
pub(crate) enum ClaimValue<'de> {
    /// A JSON number.
    Num(f64),
    /// A JSON string.
    Str(Cow<'de, str>),
    /// An array whose elements are all strings.
    StrArray(Vec<Cow<'de, str>>),
    /// Anything else; the name of its JSON type.
    Other(&'static str),
}

impl ClaimValue<'_> {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            ClaimValue::Num(_) => "a number",
            ClaimValue::Str(_) => "a string",
            ClaimValue::StrArray(_) => "an array",
            ClaimValue::Other(t) => t,
        }
    }
}

/// The registered claims of a payload plus the names of all its members.
#[derive(Default)]
pub(crate) struct Registered<'de> {
    pub(crate) exp: Option<ClaimValue<'de>>,
    pub(crate) nbf: Option<ClaimValue<'de>>,
    pub(crate) iat: Option<ClaimValue<'de>>,
    pub(crate) iss: Option<ClaimValue<'de>>,
    pub(crate) sub: Option<ClaimValue<'de>>,
    pub(crate) aud: Option<ClaimValue<'de>>,
    pub(crate) jti: Option<ClaimValue<'de>>,
    pub(crate) names: SeenKeys<'de>,
    /// Members whose value is `null`: absent as far as "required" goes (PyJWT).
    pub(crate) nulls: Vec<Cow<'de, str>>,
}

impl Registered<'_> {
    /// Whether `claim` is present with a non-null value.
    pub(crate) fn has(&self, claim: &str) -> bool {
        self.names.contains(claim) && !self.nulls.iter().any(|n| n == claim)
    }
}

impl<'de> Registered<'de> {
    /// Parses the decoded payload strictly.
    pub(crate) fn parse(text: &'de str) -> Result<Registered<'de>, Error> {
        // `from_str`: the payload was checked to be UTF-8 once, as a whole.
        let mut de = serde_json::Deserializer::from_str(text);
        let out = de
            .deserialize_any(TopLevel)
            .and_then(|r| de.end().map(|()| r))
            .map_err(|e| {
                if e.is_data() && e.to_string().starts_with("invalid type") {
                    Error::malformed(format!("the payload must be a JSON object: {e}"))
                } else {
                    Error::malformed(format!("the payload is not valid JSON: {e}"))
                }
            })?;
        Ok(out)
    }
}

struct TopLevel;

impl<'de> Visitor<'de> for TopLevel {
    type Value = Registered<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object (the JWT claims set)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Registered<'de>, A::Error> {
        let mut out = Registered::default();
        let inner = Check { depth: 1 };
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let slot = match &*key {
                "exp" => Some(&mut out.exp),
                "nbf" => Some(&mut out.nbf),
                "iat" => Some(&mut out.iat),
                "iss" => Some(&mut out.iss),
                "sub" => Some(&mut out.sub),
                "aud" => Some(&mut out.aud),
                "jti" => Some(&mut out.jti),
                _ => None,
            };
            let is_null = match slot {
                Some(slot) => {
                    let value = map.next_value_seed(ValueSeed { check: inner })?;
                    let is_null = matches!(value, ClaimValue::Other("null"));
                    *slot = Some(value);
                    is_null
                }
                None => map.next_value_seed(inner)?,
            };
            if is_null {
                out.nulls.push(key.clone());
            }
            out.names.insert::<A::Error>(key)?;
        }
        Ok(out)
    }
}

struct ValueSeed {
    check: Check,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = ClaimValue<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ClaimValue<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = ClaimValue<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<ClaimValue<'de>, E> {
        Ok(ClaimValue::Other("a boolean"))
    }
    fn visit_i64<E>(self, v: i64) -> Result<ClaimValue<'de>, E> {
        Ok(ClaimValue::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<ClaimValue<'de>, E> {
        Ok(ClaimValue::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<ClaimValue<'de>, E> {
        Ok(ClaimValue::Num(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<ClaimValue<'de>, E> {
        Ok(ClaimValue::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<ClaimValue<'de>, E> {
        Ok(ClaimValue::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_unit<E>(self) -> Result<ClaimValue<'de>, E> {
        Ok(ClaimValue::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ClaimValue<'de>, A::Error> {
        let inner = self.check.deeper::<A::Error>()?;
        let mut strings = Vec::new();
        let mut all_strings = true;
        while let Some(v) = seq.next_element_seed(ValueSeed { check: inner })? {
            match v {
                ClaimValue::Str(s) if all_strings => strings.push(s),
                _ => all_strings = false,
            }
        }
        Ok(if all_strings {
            ClaimValue::StrArray(strings)
        } else {
            ClaimValue::Other("an array with non-string elements")
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ClaimValue<'de>, A::Error> {
        let _ = self.check.visit_map(map)?;
        Ok(ClaimValue::Other("an object"))
    }
}
