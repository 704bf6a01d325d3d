//! The top level: must be an object; its members are tracked.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::registered::{CaptureSeed, Replay};
use super::value::{Ctx, Seed};
use super::{bail, key_into, watch, State, SERDE_JSON_PRIVATE};
use crate::claims::Slot;
use crate::json::Key;

pub(super) struct Top<'s, 'r, 'de, D> {
    pub(super) de: D,
    pub(super) state: &'s mut State<'r, 'de>,
}

impl<'s, 'r, 'de, D> Top<'s, 'r, 'de, D> {
    /// The inner deserializer, and the caller's visitor wrapped to track the
    /// top-level members.
    fn with<V>(self, inner: V) -> (D, TopVisitor<'s, 'r, 'de, V>) {
        (
            self.de,
            TopVisitor {
                inner,
                state: self.state,
            },
        )
    }
}

impl<'s, 'r, 'de, D: Deserializer<'de>> Deserializer<'de> for Top<'s, 'r, 'de, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let (de, v) = self.with(visitor);
        de.deserialize_any(v)
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let (de, v) = self.with(visitor);
        de.deserialize_map(v)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let (de, v) = self.with(visitor);
        de.deserialize_struct(name, fields, v)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let (de, v) = self.with(visitor);
        de.deserialize_option(v)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        if name.starts_with(SERDE_JSON_PRIVATE) {
            return Err(bail());
        }
        let (de, v) = self.with(visitor);
        de.deserialize_newtype_struct(name, v)
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, D::Error> {
        Err(bail())
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, D::Error> {
        Err(bail())
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        _: V,
    ) -> Result<V::Value, D::Error> {
        Err(bail())
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, D::Error> {
        Err(bail())
    }
    refuse! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_seq deserialize_identifier deserialize_ignored_any
    }
}

struct TopVisitor<'s, 'r, 'de, V> {
    inner: V,
    state: &'s mut State<'r, 'de>,
}

impl<'s, 'r, 'de, V: Visitor<'de>> Visitor<'de> for TopVisitor<'s, 'r, 'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(TopMap {
            map,
            state: self.state,
            key: None,
        })
    }
    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Top {
            de,
            state: self.state,
        })
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Top {
            de,
            state: self.state,
        })
    }
    // Every other visit keeps `Visitor`'s default: an "invalid type" error,
    // which sends the caller to the two-pass path (and its clear message).
}

struct TopMap<'s, 'r, 'de, A> {
    map: A,
    state: &'s mut State<'r, 'de>,
    /// The member whose value comes next: its name, or its registered slot.
    key: Option<Result<Slot, Cow<'de, str>>>,
}

impl<'s, 'r, 'de, A: MapAccess<'de>> TopMap<'s, 'r, 'de, A> {
    fn key<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let Some(Key(key)) = self.map.next_key::<Key<'de>>()? else {
            self.state.done = true;
            return Ok(None);
        };
        let out = key_into(&key, seed)?;
        self.key = Some(match Slot::of(&key) {
            Some(slot) => Ok(slot),
            None => {
                self.state.reg.names.insert::<A::Error>(key.clone())?;
                Err(key)
            }
        });
        Ok(Some(out))
    }

    fn value<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let State { reg, poisoned, .. } = &mut *self.state;
        match self.key.take().ok_or_else(bail::<A::Error>)? {
            Ok(slot) => {
                let captured = self.map.next_value_seed(CaptureSeed)?;
                let out = seed.deserialize(Replay::<A::Error> {
                    view: captured.view(),
                    error: PhantomData,
                })?;
                reg.set::<A::Error>(slot, captured.into_claim())?;
                Ok(out)
            }
            Err(name) => {
                let null = Cell::new(false);
                let out = self.map.next_value_seed(Seed {
                    seed,
                    ctx: Ctx {
                        depth: 1,
                        null: Some(&null),
                        poisoned,
                    },
                })?;
                if null.get() {
                    reg.nulls.push(name);
                }
                Ok(out)
            }
        }
    }
}

impl<'s, 'r, 'de, A: MapAccess<'de>> MapAccess<'de> for TopMap<'s, 'r, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let result = self.key(seed);
        watch(&self.state.poisoned, result)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let result = self.value(seed);
        watch(&self.state.poisoned, result)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}
