//! Any other value: checked as the caller's type reads it.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::{bail, key_into, watch, SERDE_JSON_PRIVATE};
use crate::json::{Check, Key, MAX_DEPTH};

/// Where a value sits, and where to report what was seen.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'n> {
    /// Nesting depth, counted as [`Check`] counts it.
    pub(super) depth: usize,
    /// Set when the value is `null` (top-level members only).
    pub(super) null: Option<&'n Cell<bool>>,
    /// Set when any error passes through (see [`parse`]).
    pub(super) poisoned: &'n Cell<bool>,
}

impl<'n> Ctx<'n> {
    fn watch<T, E>(self, result: Result<T, E>) -> Result<T, E> {
        watch(self.poisoned, result)
    }

    fn fail<T, E: de::Error>(self) -> Result<T, E> {
        self.poisoned.set(true);
        Err(bail())
    }

    /// The context of the values inside a container at this level.
    fn deeper<E: de::Error>(self) -> Result<Ctx<'n>, E> {
        if self.depth >= MAX_DEPTH {
            return self.fail();
        }
        Ok(Ctx {
            depth: self.depth + 1,
            null: None,
            poisoned: self.poisoned,
        })
    }

    fn nested(self) -> Ctx<'n> {
        Ctx { null: None, ..self }
    }

    fn saw_null(self) {
        if let Some(null) = self.null {
            null.set(true);
        }
    }
}

pub(super) struct Seed<'n, S> {
    pub(super) seed: S,
    pub(super) ctx: Ctx<'n>,
}

impl<'n, 'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'n, S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Wrap { de, ctx: self.ctx })
    }
}

struct Wrap<'n, D> {
    de: D,
    ctx: Ctx<'n>,
}

impl<'n, D> Wrap<'n, D> {
    fn visitor<V>(&self, inner: V) -> WrapVisitor<'n, V> {
        WrapVisitor {
            inner,
            ctx: self.ctx,
        }
    }
}

macro_rules! wrap_plain {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            let v = self.visitor(visitor);
            self.ctx.watch(self.de.$method(v))
        }
    )*};
}

impl<'n, 'de, D: Deserializer<'de>> Deserializer<'de> for Wrap<'n, D> {
    type Error = D::Error;

    wrap_plain! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_option deserialize_unit
        deserialize_seq deserialize_map deserialize_identifier
    }

    // serde_json reads strings for bytes without validating them (control
    // characters, lone surrogates); the strict pass refuses those.
    fn deserialize_bytes<V: Visitor<'de>>(self, _: V) -> Result<V::Value, D::Error> {
        self.ctx.fail()
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, _: V) -> Result<V::Value, D::Error> {
        self.ctx.fail()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let v = self.visitor(visitor);
        self.ctx.watch(self.de.deserialize_unit_struct(name, v))
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        if name.starts_with(SERDE_JSON_PRIVATE) {
            return self.ctx.fail();
        }
        let v = self.visitor(visitor);
        self.ctx.watch(self.de.deserialize_newtype_struct(name, v))
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let v = self.visitor(visitor);
        self.ctx.watch(self.de.deserialize_tuple(len, v))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let v = self.visitor(visitor);
        self.ctx
            .watch(self.de.deserialize_tuple_struct(name, len, v))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let v = self.visitor(visitor);
        self.ctx.watch(self.de.deserialize_struct(name, fields, v))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let v = self.visitor(visitor);
        self.ctx.watch(self.de.deserialize_enum(name, variants, v))
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        // The caller skips this value; it is still checked.
        let is_null = self.ctx.watch(
            Check {
                depth: self.ctx.depth,
            }
            .deserialize(self.de),
        )?;
        if is_null {
            self.ctx.saw_null();
        }
        visitor.visit_unit()
    }
    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

struct WrapVisitor<'n, V> {
    inner: V,
    ctx: Ctx<'n>,
}

impl<'n, 'de, V: Visitor<'de>> Visitor<'de> for WrapVisitor<'n, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visits! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.ctx.saw_null();
        self.inner.visit_none()
    }
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.ctx.saw_null();
        self.inner.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Wrap { de, ctx: self.ctx })
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Wrap { de, ctx: self.ctx })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let ctx = self.ctx.deeper()?;
        self.inner.visit_seq(WrapSeq { seq, ctx })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let ctx = self.ctx.deeper()?;
        self.inner.visit_map(WrapMap {
            map,
            ctx,
            seen: Default::default(),
        })
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(WrapEnum {
            data,
            ctx: self.ctx.nested(),
        })
    }
}

struct WrapSeq<'n, A> {
    seq: A,
    ctx: Ctx<'n>,
}

impl<'n, 'de, A: SeqAccess<'de>> SeqAccess<'de> for WrapSeq<'n, A> {
    type Error = A::Error;
    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let ctx = self.ctx;
        ctx.watch(self.seq.next_element_seed(Seed { seed, ctx }))
    }
    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

struct WrapMap<'n, 'de, A> {
    map: A,
    ctx: Ctx<'n>,
    seen: crate::json::SeenKeys<'de>,
}

impl<'n, 'de, A: MapAccess<'de>> WrapMap<'n, 'de, A> {
    fn key<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let Some(Key(key)) = self.map.next_key::<Key<'de>>()? else {
            return Ok(None);
        };
        let out = key_into(&key, seed)?;
        self.seen.insert::<A::Error>(key)?;
        Ok(Some(out))
    }
}

impl<'n, 'de, A: MapAccess<'de>> MapAccess<'de> for WrapMap<'n, 'de, A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let result = self.key(seed);
        self.ctx.watch(result)
    }
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let ctx = self.ctx;
        ctx.watch(self.map.next_value_seed(Seed { seed, ctx }))
    }
    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

struct WrapEnum<'n, A> {
    data: A,
    ctx: Ctx<'n>,
}

impl<'n, 'de, A: EnumAccess<'de>> EnumAccess<'de> for WrapEnum<'n, A> {
    type Error = A::Error;
    type Variant = WrapVariant<'n, A::Variant>;
    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let ctx = self.ctx;
        // The variant's name goes through the checking wrapper too.
        let (value, variant) = ctx.watch(self.data.variant_seed(Seed { seed, ctx }))?;
        Ok((value, WrapVariant { variant, ctx }))
    }
}

/// An enum's content sits one level inside `{"Variant": …}`.
struct WrapVariant<'n, A> {
    variant: A,
    ctx: Ctx<'n>,
}

impl<'n, 'de, A: VariantAccess<'de>> VariantAccess<'de> for WrapVariant<'n, A> {
    type Error = A::Error;
    fn unit_variant(self) -> Result<(), A::Error> {
        // `{"Variant":null}` is a unit variant too, one level down.
        self.ctx.deeper::<A::Error>()?;
        self.ctx.watch(self.variant.unit_variant())
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        let ctx = self.ctx.deeper()?;
        self.ctx
            .watch(self.variant.newtype_variant_seed(Seed { seed, ctx }))
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let ctx = self.ctx.deeper()?;
        self.ctx.watch(self.variant.tuple_variant(
            len,
            WrapVisitor {
                inner: visitor,
                ctx,
            },
        ))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let ctx = self.ctx.deeper()?;
        self.ctx.watch(self.variant.struct_variant(
            fields,
            WrapVisitor {
                inner: visitor,
                ctx,
            },
        ))
    }
}
