//! One strict pass over the payload: refuses duplicate members and deep
//! nesting, and picks out the registered claims without building a tree.
//!
//! The same pass guards signing: [`check_signable`] runs it over the JSON
//! about to be signed, and [`parse_claims`] over claims that arrive as text,
//! so nothing is signed that the verifier would refuse or read differently.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::json::{self, Check, Key, SeenKeys};

/// Parses claims given as JSON text (a command-line flag, a request body,
/// claims kept in a store) with the verifier's strict rules, for signing.
///
/// Refused, each with a [`ErrorKind::Config`](crate::ErrorKind::Config)
/// error that says why: text that is not a JSON object; duplicate member
/// names at any depth (however spelled: `"a"` and `"\u0061"` are the same
/// name); serde_json's private member names (`$serde_json::private::…`,
/// which `serde_json::Value` would otherwise replace by the JSON inside the
/// string); nesting deeper than [`MAX_DEPTH`](crate::MAX_DEPTH); and a
/// registered claim of the wrong type (`exp`, `nbf`, `iat` not a number;
/// `iss`, `sub`, `jti` not a string; `aud` not a string or a non-empty array
/// of strings), which every verifier refuses; and an integer outside the
/// 64-bit range, which every verifier would read as a rounded float.
///
/// Never parse such text with `serde_json::from_str::<Value>` before
/// signing it: once a `Value` exists, a private member name has already
/// been acted on and the check cannot see it.
///
/// ```
/// let claims = jwt_core::parse_claims(br#"{"sub":"alice","roles":["admin"]}"#)?;
/// assert_eq!(claims["roles"][0], "admin");
///
/// let dup = jwt_core::parse_claims(br#"{"role":"user","role":"admin"}"#).unwrap_err();
/// assert!(dup.to_string().contains("duplicate member name \"role\""));
///
/// let hidden = br#"{"$serde_json::private::RawValue":"{\"role\":\"admin\"}"}"#;
/// assert!(jwt_core::parse_claims(hidden).unwrap_err().to_string().contains("reserved"));
///
/// let soon = jwt_core::parse_claims(br#"{"exp":"soon"}"#).unwrap_err();
/// assert_eq!(soon.kind(), jwt_core::ErrorKind::Config);
/// # Ok::<(), jwt_core::Error>(())
/// ```
pub fn parse_claims(json: &[u8]) -> Result<Map<String, Value>, Error> {
    let map = json::parse_object(json, "the claims set").map_err(|e| match e {
        Error::Malformed { reason } => Error::config(reason),
        other => other,
    })?;
    // `parse_object` succeeded, so the text is UTF-8; the second pass is the
    // one that judges the registered claims, exactly as signing does.
    let text = std::str::from_utf8(json).map_err(|e| Error::config(format!("{e}")))?;
    check_signable(text)?;
    Ok(map)
}

/// Checks JSON about to be signed, without building a tree: the strict
/// rules of the verifier (duplicate or private member names, depth) and the
/// types of the registered claims. Errors are configuration errors: the
/// caller asked to sign something no verifier would accept as meant.
pub(crate) fn check_signable(text: &str) -> Result<(), Error> {
    json::check_exact_integers(text).map_err(|reason| {
        Error::config(format!(
            "the claims are not acceptable JSON for a token ({reason})"
        ))
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let registered = de
        .deserialize_map(TopLevel)
        .and_then(|r| de.end().map(|()| r))
        .map_err(|e| {
            Error::config(format!(
                "the claims are not acceptable JSON for a token ({e}); a verifier would \
                 refuse them or read them differently"
            ))
        })?;
    registered.check_types()
}

/// The latest NumericDate jwtkit signs: 9999-12-31T23:59:59Z.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// A registered claim's value as parsed, before [`Registered`] records it.
pub(crate) enum Claim<'de> {
    /// A JSON number.
    Num(f64),
    /// A JSON string.
    Str(Cow<'de, str>),
    /// An array whose elements are all strings.
    StrArray(Vec<Cow<'de, str>>),
    /// Anything else; the name of its JSON type.
    Other(&'static str),
}

/// A registered claim's value as recorded, as much as validation needs of
/// it. An array of strings is recorded by its length: validation reads the
/// items of `aud` only, which [`Registered::aud_items`] holds. So no slot
/// owns a vector, and a [`Registered`] whose strings all borrow the payload
/// (the flat path's) is dropped without a call per claim.
#[derive(Debug)]
pub(crate) enum ClaimValue<'de> {
    /// A JSON number.
    Num(f64),
    /// A JSON string.
    Str(Cow<'de, str>),
    /// An array whose elements are all strings; how many.
    StrArray(usize),
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
    /// The items of `aud` when it is an array of strings.
    pub(crate) aud_items: Vec<Cow<'de, str>>,
    /// The names of the members that are not registered claims.
    pub(crate) names: SeenKeys<'de>,
    /// Those of them whose value is `null`: absent as far as "required"
    /// goes (PyJWT). A registered claim that is `null` is
    /// `ClaimValue::Other("null")`.
    pub(crate) nulls: Vec<Cow<'de, str>>,
}

/// The error for a registered claim that appears twice.
#[cold]
fn duplicate<E: serde::de::Error>(slot: Slot) -> E {
    E::custom(format_args!("duplicate member name {:?}", slot.name()))
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
        // Every registered claim's name has three bytes: the length first,
        // since this runs for every member of every payload verified.
        Slot::of_bytes3(name.as_bytes().try_into().ok()?)
    }

    /// [`Slot::of`] for a name of exactly three bytes, compared as one
    /// integer.
    #[inline]
    pub(crate) fn of_bytes3(name: [u8; 3]) -> Option<Slot> {
        const fn word(name: &[u8; 3]) -> u32 {
            u32::from_le_bytes([name[0], name[1], name[2], 0])
        }
        const EXP: u32 = word(b"exp");
        const NBF: u32 = word(b"nbf");
        const IAT: u32 = word(b"iat");
        const ISS: u32 = word(b"iss");
        const SUB: u32 = word(b"sub");
        const AUD: u32 = word(b"aud");
        const JTI: u32 = word(b"jti");
        Some(match word(&name) {
            EXP => Slot::Exp,
            NBF => Slot::Nbf,
            IAT => Slot::Iat,
            ISS => Slot::Iss,
            SUB => Slot::Sub,
            AUD => Slot::Aud,
            JTI => Slot::Jti,
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
    #[inline(always)]
    pub(crate) fn set<E: serde::de::Error>(
        &mut self,
        slot: Slot,
        value: Claim<'de>,
    ) -> Result<(), E> {
        self.set_with(slot, || value)
    }

    /// [`Registered::set`] with the value made only once its slot is known
    /// to be free. Inlined, the value is written straight into its slot: a
    /// `ClaimValue` built on the stack and then copied in with wider loads
    /// than it was written with stalls (store forwarding fails), ~3 % of an
    /// HS256 verification.
    #[inline(always)]
    pub(crate) fn set_with<E: serde::de::Error>(
        &mut self,
        slot: Slot,
        value: impl FnOnce() -> Claim<'de>,
    ) -> Result<(), E> {
        if self.slot(slot).is_some() {
            return Err(duplicate(slot));
        }
        let value = match value() {
            Claim::Num(n) => ClaimValue::Num(n),
            Claim::Str(s) => ClaimValue::Str(s),
            Claim::StrArray(items) => {
                let len = items.len();
                if let Slot::Aud = slot {
                    self.aud_items = items;
                }
                ClaimValue::StrArray(len)
            }
            Claim::Other(t) => ClaimValue::Other(t),
        };
        let place = match slot {
            Slot::Exp => &mut self.exp,
            Slot::Nbf => &mut self.nbf,
            Slot::Iat => &mut self.iat,
            Slot::Iss => &mut self.iss,
            Slot::Sub => &mut self.sub,
            Slot::Aud => &mut self.aud,
            Slot::Jti => &mut self.jti,
        };
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

    /// Refuses a registered claim whose type no verifier accepts (RFC 7519
    /// §4.1): `exp`, `nbf`, `iat` must be NumericDates; `iss`, `sub`, `jti`
    /// strings; `aud` a string or a non-empty array of strings.
    fn check_types(&self) -> Result<(), Error> {
        for slot in [Slot::Exp, Slot::Nbf, Slot::Iat] {
            match self.slot(slot) {
                None => {}
                // A time before 1970 or after 9999 is a mistake (milliseconds
                // for seconds, a sentinel like 1e300) that would make a token
                // which never expires or was never issued; verifiers accept
                // such numbers, so the signer refuses to write them.
                Some(ClaimValue::Num(n)) if (0.0..=MAX_NUMERIC_DATE).contains(n) => {}
                Some(ClaimValue::Num(n)) => {
                    return Err(Error::config(format!(
                        "the claim `{}` is {n}, outside 0 (1970) to {MAX_NUMERIC_DATE} \
                         (9999-12-31T23:59:59Z): a NumericDate counts seconds since 1970 \
                         (milliseconds are a common mistake); give a time in that range",
                        slot.name()
                    )))
                }
                Some(other) => {
                    return Err(wrong_type(
                        slot,
                        "a NumericDate (a JSON number of seconds since 1970)",
                        other,
                    ))
                }
            }
        }
        for slot in [Slot::Iss, Slot::Sub, Slot::Jti] {
            match self.slot(slot) {
                None | Some(ClaimValue::Str(_)) => {}
                Some(other) => return Err(wrong_type(slot, "a string", other)),
            }
        }
        match &self.aud {
            None | Some(ClaimValue::Str(_)) => Ok(()),
            Some(ClaimValue::StrArray(len)) if *len > 0 => Ok(()),
            Some(ClaimValue::StrArray(_)) => Err(Error::config(
                "the claim `aud` is an empty array, which names no audience, so every verifier \
                 refuses the token; give one audience or more, or leave `aud` out",
            )),
            Some(other) => Err(wrong_type(
                Slot::Aud,
                "a string or an array of strings",
                other,
            )),
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

fn wrong_type(slot: Slot, expected: &str, found: &ClaimValue<'_>) -> Error {
    Error::config(format!(
        "the claim `{}` must be {expected}, found {}; a verifier refuses such a token \
         (RFC 7519 §4.1), so it is not signed",
        slot.name(),
        found.type_name()
    ))
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
    type Value = Claim<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Claim<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Claim<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Claim<'de>, E> {
        Ok(Claim::Other("a boolean"))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Claim<'de>, E> {
        Ok(Claim::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Claim<'de>, E> {
        Ok(Claim::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Claim<'de>, E> {
        Ok(Claim::Num(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Claim<'de>, E> {
        Ok(Claim::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Claim<'de>, E> {
        Ok(Claim::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_unit<E>(self) -> Result<Claim<'de>, E> {
        Ok(Claim::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Claim<'de>, A::Error> {
        let inner = self.check.deeper::<A::Error>()?;
        let mut strings = Vec::new();
        let mut all_strings = true;
        while let Some(v) = seq.next_element_seed(ValueSeed { check: inner })? {
            match v {
                Claim::Str(s) if all_strings => strings.push(s),
                _ => all_strings = false,
            }
        }
        Ok(if all_strings {
            Claim::StrArray(strings)
        } else {
            Claim::Other("an array with non-string elements")
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Claim<'de>, A::Error> {
        let _ = self.check.visit_map(map)?;
        Ok(Claim::Other("an object"))
    }
}
