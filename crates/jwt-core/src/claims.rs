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

/// The registered claims of a payload plus the names of its other members.
#[derive(Default)]
pub(crate) struct Registered<'de> {
    pub(crate) exp: Option<ClaimValue<'de>>,
    pub(crate) nbf: Option<ClaimValue<'de>>,
    pub(crate) iat: Option<ClaimValue<'de>>,
    pub(crate) iss: Option<ClaimValue<'de>>,
    pub(crate) sub: Option<ClaimValue<'de>>,
    pub(crate) aud: Option<ClaimValue<'de>>,
    pub(crate) jti: Option<ClaimValue<'de>>,
    /// The names of the members that are not registered claims.
    pub(crate) names: SeenKeys<'de>,
    /// Those of them whose value is `null`: absent as far as "required"
    /// goes (PyJWT). A registered claim that is `null` is
    /// `ClaimValue::Other("null")`.
    pub(crate) nulls: Vec<Cow<'de, str>>,
}

/// Which registered claim a member is.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Exp,
    Nbf,
    Iat,
    Iss,
    Sub,
    Aud,
    Jti,
}

impl Slot {
    /// The registered claim named `name`, if it is one.
    pub(crate) fn of(name: &str) -> Option<Slot> {
        Some(match name {
            "exp" => Slot::Exp,
            "nbf" => Slot::Nbf,
            "iat" => Slot::Iat,
            "iss" => Slot::Iss,
            "sub" => Slot::Sub,
            "aud" => Slot::Aud,
            "jti" => Slot::Jti,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Slot::Exp => "exp",
            Slot::Nbf => "nbf",
            Slot::Iat => "iat",
            Slot::Iss => "iss",
            Slot::Sub => "sub",
            Slot::Aud => "aud",
            Slot::Jti => "jti",
        }
    }
}

impl<'de> Registered<'de> {
    fn slot(&self, slot: Slot) -> &Option<ClaimValue<'de>> {
        match slot {
            Slot::Exp => &self.exp,
            Slot::Nbf => &self.nbf,
            Slot::Iat => &self.iat,
            Slot::Iss => &self.iss,
            Slot::Sub => &self.sub,
            Slot::Aud => &self.aud,
            Slot::Jti => &self.jti,
        }
    }

    /// Records a registered claim; a second one of the same name (however
    /// it is spelled: `"exp"`, `"\u0065xp"`) is a duplicate member.
    pub(crate) fn set<E: serde::de::Error>(
        &mut self,
        slot: Slot,
        value: ClaimValue<'de>,
    ) -> Result<(), E> {
        let place = match slot {
            Slot::Exp => &mut self.exp,
            Slot::Nbf => &mut self.nbf,
            Slot::Iat => &mut self.iat,
            Slot::Iss => &mut self.iss,
            Slot::Sub => &mut self.sub,
            Slot::Aud => &mut self.aud,
            Slot::Jti => &mut self.jti,
        };
        if place.is_some() {
            return Err(E::custom(format_args!(
                "duplicate member name {:?}",
                slot.name()
            )));
        }
        *place = Some(value);
        Ok(())
    }

    /// Whether `claim` is present with a non-null value.
    pub(crate) fn has(&self, claim: &str) -> bool {
        match Slot::of(claim) {
            Some(slot) => !matches!(self.slot(slot), None | Some(ClaimValue::Other("null"))),
            None => self.names.contains(claim) && !self.nulls.iter().any(|n| n == claim),
        }
    }

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
            match Slot::of(&key) {
                Some(slot) => {
                    let value = map.next_value_seed(ValueSeed { check: inner })?;
                    out.set::<A::Error>(slot, value)?;
                }
                None => {
                    let is_null = map.next_value_seed(inner)?;
                    if is_null {
                        out.nulls.push(key.clone());
                    }
                    out.names.insert::<A::Error>(key)?;
                }
            }
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
