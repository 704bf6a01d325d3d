//! Registered claims: captured, then replayed into the caller's type.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{BorrowedStrDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

use super::{bail, SERDE_JSON_PRIVATE};
use crate::claims::Claim;
use crate::json::Key;

/// A registered claim's value as parsed; objects and arrays holding anything
/// but strings are not captured (the two-pass path handles them).
pub(super) enum Captured<'de> {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
    Str(Cow<'de, str>),
    StrArray(Vec<Cow<'de, str>>),
}

impl<'de> Captured<'de> {
    pub(super) fn view(&self) -> View<'_, 'de> {
        match self {
            Captured::U64(n) => View::U64(*n),
            Captured::I64(n) => View::I64(*n),
            Captured::F64(n) => View::F64(*n),
            Captured::Bool(b) => View::Bool(*b),
            Captured::Null => View::Null,
            Captured::Str(Cow::Borrowed(s)) => View::Borrowed(s),
            Captured::Str(Cow::Owned(s)) => View::Owned(s),
            Captured::StrArray(items) => View::StrArray(items),
        }
    }

    /// The same value [`crate::claims`]'s strict pass records.
    pub(super) fn into_claim(self) -> Claim<'de> {
        match self {
            Captured::U64(n) => Claim::Num(n as f64),
            Captured::I64(n) => Claim::Num(n as f64),
            Captured::F64(n) => Claim::Num(n),
            Captured::Bool(_) => Claim::Other("a boolean"),
            Captured::Null => Claim::Other("null"),
            Captured::Str(s) => Claim::Str(s),
            Captured::StrArray(items) => Claim::StrArray(items),
        }
    }
}

pub(super) struct CaptureSeed;

impl<'de> DeserializeSeed<'de> for CaptureSeed {
    type Value = Captured<'de>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Captured<'de>, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CaptureSeed {
    type Value = Captured<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, string, boolean, null or array of strings")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Captured<'de>, E> {
        Ok(Captured::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Captured<'de>, E> {
        Ok(Captured::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Captured<'de>, E> {
        Ok(Captured::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Captured<'de>, E> {
        Ok(Captured::F64(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Captured<'de>, E> {
        Ok(Captured::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Captured<'de>, E> {
        Ok(Captured::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Captured<'de>, E> {
        Ok(Captured::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Captured<'de>, E> {
        Ok(Captured::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Captured<'de>, A::Error> {
        // `Key` reads a string; any other element is an error, i.e. a bail.
        let mut items = Vec::new();
        while let Some(Key(s)) = seq.next_element::<Key<'de>>()? {
            items.push(s);
        }
        Ok(Captured::StrArray(items))
    }
}

#[derive(Clone, Copy)]
pub(super) enum View<'c, 'de> {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
    /// A string borrowed from the payload.
    Borrowed(&'de str),
    /// A string unescaped into a buffer.
    Owned(&'c str),
    StrArray(&'c [Cow<'de, str>]),
}

impl<'c, 'de> View<'c, 'de> {
    /// A string of an array.
    fn of(item: &'c Cow<'de, str>) -> Self {
        match item {
            Cow::Borrowed(s) => View::Borrowed(s),
            Cow::Owned(s) => View::Owned(s),
        }
    }
}

/// Replays a captured value with serde_json's semantics for each method:
/// the same visitor calls where serde_json succeeds, an error (a bail)
/// where it would refuse the type.
pub(super) struct Replay<'c, 'de, E> {
    pub(super) view: View<'c, 'de>,
    pub(super) error: PhantomData<E>,
}

impl<'c, 'de, E: de::Error> Replay<'c, 'de, E> {
    fn is_number(&self) -> bool {
        matches!(self.view, View::U64(_) | View::I64(_) | View::F64(_))
    }
    fn is_str(&self) -> bool {
        matches!(self.view, View::Borrowed(_) | View::Owned(_))
    }
}

macro_rules! replay_if {
    ($test:ident: $($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
            if self.$test() {
                self.deserialize_any(visitor)
            } else {
                Err(bail())
            }
        }
    )*};
}

impl<'c, 'de, E: de::Error> Deserializer<'de> for Replay<'c, 'de, E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.view {
            View::U64(n) => visitor.visit_u64(n),
            View::I64(n) => visitor.visit_i64(n),
            View::F64(n) => visitor.visit_f64(n),
            View::Bool(b) => visitor.visit_bool(b),
            View::Null => visitor.visit_unit(),
            View::Borrowed(s) => visitor.visit_borrowed_str(s),
            View::Owned(s) => visitor.visit_str(s),
            View::StrArray(items) => {
                let mut seq = ReplaySeq {
                    items: items.iter(),
                    error: PhantomData,
                };
                let out = visitor.visit_seq(&mut seq)?;
                // serde_json refuses an array with elements left unread
                // (a tuple or a fixed-size array shorter than the input).
                if seq.items.len() != 0 {
                    return Err(bail());
                }
                Ok(out)
            }
        }
    }

    replay_if! { is_number:
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }
    replay_if! { is_str:
        deserialize_char deserialize_str deserialize_string deserialize_identifier
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.view {
            View::Bool(b) => visitor.visit_bool(b),
            _ => Err(bail()),
        }
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.view {
            View::Borrowed(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            View::Owned(s) => visitor.visit_bytes(s.as_bytes()),
            View::StrArray(_) => self.deserialize_any(visitor),
            _ => Err(bail()),
        }
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        self.deserialize_bytes(visitor)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.view {
            View::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.view {
            View::Null => visitor.visit_unit(),
            _ => Err(bail()),
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, E> {
        self.deserialize_unit(visitor)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, E> {
        if name.starts_with(SERDE_JSON_PRIVATE) {
            return Err(bail());
        }
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.view {
            View::StrArray(_) => self.deserialize_any(visitor),
            _ => Err(bail()),
        }
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, E> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, E> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, E> {
        Err(bail())
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        // serde_json reads a struct from an array too.
        self.deserialize_seq(visitor)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        match self.view {
            View::Borrowed(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            View::Owned(s) => visitor.visit_enum(StrDeserializer::new(s)),
            _ => Err(bail()),
        }
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_unit()
    }
}

struct ReplaySeq<'c, 'de, E> {
    items: std::slice::Iter<'c, Cow<'de, str>>,
    error: PhantomData<E>,
}

impl<'c, 'de, E: de::Error> SeqAccess<'de> for ReplaySeq<'c, 'de, E> {
    type Error = E;
    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, E> {
        match self.items.next() {
            Some(item) => seed
                .deserialize(Replay {
                    view: View::of(item),
                    error: PhantomData,
                })
                .map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}
