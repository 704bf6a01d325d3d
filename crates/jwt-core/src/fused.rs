//! The fast path for verified payloads: one parser pass that deserializes the
//! caller's type *and* does the strict checks of [`Registered::parse`]
//! (duplicate members at any depth, nesting depth, the registered claims).
//!
//! It wraps serde_json's deserializer so that every value the caller's type
//! looks at goes through a checking visitor, and every value it skips goes
//! through [`Check`]. The registered claims are captured as they pass and
//! replayed into the caller's type.
//!
//! The contract is one-sided: [`parse`] returns `Some` only when the
//! two-pass path ([`Registered::parse`] then `serde_json::from_str::<T>`)
//! would succeed with the same `T` and the same registered claims. On any
//! doubt — an error of any kind, an object in a registered claim, serde_json's
//! `RawValue`, a top level that is not an object — it returns `None` and the
//! caller runs the two-pass path, which gives the authoritative result and
//! error message. Being stricter here only costs speed; never correctness.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{BorrowedStrDeserializer, StrDeserializer};
use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use crate::claims::{ClaimValue, Registered, Slot};
use crate::json::{Check, Key, MAX_DEPTH};

/// serde_json's private names for `RawValue` (and, with `arbitrary_precision`,
/// numbers): values behind them are not visited, so they are never fused.
const SERDE_JSON_PRIVATE: &str = "$serde_json::private::";

/// Deserializes `text` into `T` and picks out the registered claims in one
/// pass into `registered`; `None` means "use the two-pass path" (see the module docs).
pub(crate) fn parse<'de, T: Deserialize<'de>>(
    text: &'de str,
    registered: &mut Registered<'de>,
) -> Option<T> {
    let mut state = State {
        reg: registered,
        done: false,
        poisoned: Cell::new(false),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let value = T::deserialize(Top {
        de: &mut de,
        state: &mut state,
    })
    .ok()?;
    de.end().ok()?;
    // `done`: the top-level object was read to its end by our map access.
    // `poisoned`: some error was raised on the way, even if the caller's
    // type swallowed it (e.g. `deserialize_with` and `unwrap_or_default`).
    (state.done && !state.poisoned.get()).then_some(value)
}

struct State<'r, 'de> {
    reg: &'r mut Registered<'de>,
    done: bool,
    poisoned: Cell<bool>,
}

fn bail<E: de::Error>() -> E {
    E::custom("not on the fused path")
}

/// Refuses a deserializer method (the caller falls back to two passes).
macro_rules! refuse {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(bail())
        }
    )*};
}

/// Forwards visitor methods that carry a plain value.
macro_rules! forward_visits {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

// ---------------------------------------------------------------------------
// The top level: must be an object; its members are tracked.

struct Top<'s, 'r, 'de, D> {
    de: D,
    state: &'s mut State<'r, 'de>,
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

/// Hands a member name to the caller's key seed the way serde_json does.
fn key_into<'de, K: DeserializeSeed<'de>, E: de::Error>(
    key: &Cow<'de, str>,
    seed: K,
) -> Result<K::Value, E> {
    match key {
        Cow::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::<E>::new(s)),
        Cow::Owned(s) => seed.deserialize(StrDeserializer::<E>::new(s)),
    }
}

/// Marks the pass as failed when `result` is an error.
fn watch<T, E>(poisoned: &Cell<bool>, result: Result<T, E>) -> Result<T, E> {
    if result.is_err() {
        poisoned.set(true);
    }
    result
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

// ---------------------------------------------------------------------------
// Any other value: checked as the caller's type reads it.

/// Where a value sits, and where to report what was seen.
#[derive(Clone, Copy)]
struct Ctx<'n> {
    /// Nesting depth, counted as [`Check`] counts it.
    depth: usize,
    /// Set when the value is `null` (top-level members only).
    null: Option<&'n Cell<bool>>,
    /// Set when any error passes through (see [`parse`]).
    poisoned: &'n Cell<bool>,
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

struct Seed<'n, S> {
    seed: S,
    ctx: Ctx<'n>,
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

// ---------------------------------------------------------------------------
// Registered claims: captured, then replayed into the caller's type.

/// A registered claim's value as parsed; objects and arrays holding anything
/// but strings are not captured (the two-pass path handles them).
enum Captured<'de> {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
    Str(Cow<'de, str>),
    StrArray(Vec<Cow<'de, str>>),
}

impl<'de> Captured<'de> {
    fn view(&self) -> View<'_, 'de> {
        match self {
            Captured::U64(n) => View::U64(*n),
            Captured::I64(n) => View::I64(*n),
            Captured::F64(n) => View::F64(*n),
            Captured::Bool(b) => View::Bool(*b),
            Captured::Null => View::Null,
            Captured::Str(s) => View::Str(s),
            Captured::StrArray(items) => View::StrArray(items),
        }
    }

    /// The same value [`crate::claims`]'s strict pass records.
    fn into_claim(self) -> ClaimValue<'de> {
        match self {
            Captured::U64(n) => ClaimValue::Num(n as f64),
            Captured::I64(n) => ClaimValue::Num(n as f64),
            Captured::F64(n) => ClaimValue::Num(n),
            Captured::Bool(_) => ClaimValue::Other("a boolean"),
            Captured::Null => ClaimValue::Other("null"),
            Captured::Str(s) => ClaimValue::Str(s),
            Captured::StrArray(items) => ClaimValue::StrArray(items),
        }
    }
}

struct CaptureSeed;

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
enum View<'c, 'de> {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
    Str(&'c Cow<'de, str>),
    StrArray(&'c [Cow<'de, str>]),
}

/// Replays a captured value with serde_json's semantics for each method:
/// the same visitor calls where serde_json succeeds, an error (a bail)
/// where it would refuse the type.
struct Replay<'c, 'de, E> {
    view: View<'c, 'de>,
    error: PhantomData<E>,
}

impl<'c, 'de, E: de::Error> Replay<'c, 'de, E> {
    fn is_number(&self) -> bool {
        matches!(self.view, View::U64(_) | View::I64(_) | View::F64(_))
    }
    fn is_str(&self) -> bool {
        matches!(self.view, View::Str(_))
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
            View::Str(Cow::Borrowed(s)) => visitor.visit_borrowed_str(s),
            View::Str(Cow::Owned(s)) => visitor.visit_str(s),
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
            View::Str(Cow::Borrowed(s)) => visitor.visit_borrowed_bytes(s.as_bytes()),
            View::Str(Cow::Owned(s)) => visitor.visit_bytes(s.as_bytes()),
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
            View::Str(Cow::Borrowed(s)) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            View::Str(Cow::Owned(s)) => visitor.visit_enum(StrDeserializer::new(s)),
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
                    view: View::Str(item),
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

#[cfg(test)]
mod tests {
    //! The fused pass must never accept what the two-pass path refuses, and
    //! must produce the same value and registered claims when it accepts.

    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Debug;

    use proptest::prelude::*;
    use serde::de::DeserializeOwned;
    use serde::Deserialize;
    use serde_json::{Map, Value};

    use super::parse;
    use crate::claims::Registered;

    fn summary(r: &Registered<'_>) -> String {
        let mut nulls: Vec<_> = r.nulls.iter().map(|n| n.to_string()).collect();
        nulls.sort();
        format!(
            "exp={:?} nbf={:?} iat={:?} iss={:?} sub={:?} aud={:?} jti={:?} names={:?} nulls={nulls:?}",
            r.exp,
            r.nbf,
            r.iat,
            r.iss,
            r.sub,
            r.aud,
            r.jti,
            r.names.sorted()
        )
    }

    /// Runs both paths; panics if the fused one accepts something the
    /// two-pass one does not, or disagrees with it. Returns whether the fused
    /// path was taken.
    fn agree<T: DeserializeOwned + PartialEq + Debug>(payload: &str) -> bool {
        let mut fused_reg = Registered::default();
        let fused = parse::<T>(payload, &mut fused_reg);
        let two_pass = Registered::parse(payload)
            .ok()
            .and_then(|reg| serde_json::from_str::<T>(payload).ok().map(|t| (t, reg)));
        match (fused, two_pass) {
            (None, _) => false,
            (Some(t), Some((expected, reg))) => {
                assert_eq!(t, expected, "different value for {payload}");
                assert_eq!(
                    summary(&fused_reg),
                    summary(&reg),
                    "different registered claims for {payload}"
                );
                true
            }
            (Some(t), None) => {
                panic!("the fused pass accepted {payload} as {t:?}; the two-pass path refuses it")
            }
        }
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Sample {
        iss: String,
        sub: String,
        aud: String,
        exp: u64,
        nbf: u64,
        iat: u64,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Loose {
        exp: Option<f64>,
        aud: Option<Vec<String>>,
        sub: Option<String>,
        scope: Option<String>,
        role: Option<Role>,
        nested: Option<Nested>,
        tags: Option<Vec<Value>>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Role {
        Admin,
        User,
        Custom(String),
        Pair(u8, u8),
        Named { level: u8 },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Nested {
        a: Option<u32>,
        b: Option<Map<String, Value>>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Flat {
        sub: String,
        #[serde(flatten)]
        rest: HashMap<String, Value>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        sub: String,
        exp: i64,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Newtype(BTreeMap<String, Value>);

    fn all_types(payload: &str) -> Vec<bool> {
        vec![
            agree::<Map<String, Value>>(payload),
            agree::<Value>(payload),
            agree::<Sample>(payload),
            agree::<Loose>(payload),
            agree::<Flat>(payload),
            agree::<Strict>(payload),
            agree::<Newtype>(payload),
            agree::<HashMap<String, Value>>(payload),
            agree::<Option<Map<String, Value>>>(payload),
        ]
    }

    const SAMPLE: &str = r#"{"iss":"https://auth.example.com","sub":"user-1234","aud":"my-api","exp":4000000000,"nbf":1700000000,"iat":1700000000}"#;

    #[test]
    fn typical_payloads_take_the_fused_path() {
        // `Loose` wants `aud` as an array and `Strict` refuses unknown
        // members: both paths refuse those.
        assert_eq!(
            all_types(SAMPLE),
            [true, true, true, false, true, false, true, true, true]
        );
        for payload in [
            r#"{"sub":"a","exp":1.5,"aud":["x","y"],"role":"admin"}"#,
            r#"{"sub":"a","role":{"custom":"x"},"nested":{"a":1,"b":{"k":[1,{"z":null}]}}}"#,
            r#"{"sub":"a","role":{"pair":[1,2]},"tags":[1,"x",null,{"q":1}]}"#,
            r#"{"sub":"a","role":{"named":{"level":3}},"scope":null,"extra":{"x":[[]]}}"#,
            r#"{"sub":"a","\u0065xp":5,"iss":null,"jti":"j"}"#,
        ] {
            assert!(agree::<Loose>(payload), "{payload}");
            assert!(agree::<Map<String, Value>>(payload), "{payload}");
            assert!(agree::<Flat>(payload), "{payload}");
        }
        assert!(agree::<Strict>(r#"{"sub":"a","exp":-3}"#));
    }

    #[test]
    fn what_the_strict_pass_refuses_is_never_fused() {
        let deep_ok = format!("{}1{}", "[".repeat(31), "]".repeat(31));
        let too_deep = format!("{}1{}", "[".repeat(32), "]".repeat(32));
        let deep_obj = format!("{}1{}", r#"{"a":"#.repeat(32), "}".repeat(32));
        for payload in [
            // duplicates at the top, in read fields, in skipped fields
            r#"{"sub":"a","sub":"b"}"#,
            r#"{"exp":1,"\u0065xp":2}"#,
            r#"{"sub":"a","nested":{"a":1,"a":2}}"#,
            r#"{"sub":"a","nested":{"b":{"k":1,"k":2}}}"#,
            r#"{"sub":"a","other":{"k":1,"k":2}}"#,
            r#"{"sub":"a","other":[{"k":1,"k":2}]}"#,
            r#"{"sub":"a","tags":[{"k":1,"k":2}]}"#,
            r#"{"sub":"a","role":{"named":{"level":1,"level":2}}}"#,
            r#"{"sub":"a","x":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"a":14}}"#,
            // not an object, or not JSON
            r#"["sub"]"#,
            r#""sub""#,
            "null",
            r#"{"sub":"a"} x"#,
            r#"{"sub":"a",}"#,
            "",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([
            format!(r#"{{"sub":"a","other":{too_deep}}}"#),
            format!(r#"{{"sub":"a","tags":{too_deep}}}"#),
            format!(r#"{{"sub":"a","nested":{{"b":{deep_obj}}}}}"#),
            format!(r#"{{"sub":"a","other":{deep_obj}}}"#),
        ]) {
            let taken = all_types(&payload);
            assert!(
                taken.iter().all(|t| !t),
                "fused path taken for {payload}: {taken:?}"
            );
        }
        // Just inside the limit is fine on both paths.
        let ok = format!(r#"{{"sub":"a","tags":{deep_ok}}}"#);
        assert!(agree::<Loose>(&ok));
    }

    #[derive(Debug, Deserialize)]
    struct Raw {
        sub: String,
        extra: Box<serde_json::value::RawValue>,
    }

    impl PartialEq for Raw {
        fn eq(&self, other: &Raw) -> bool {
            self.sub == other.sub && self.extra.get() == other.extra.get()
        }
    }

    #[test]
    fn raw_values_are_never_fused() {
        // serde_json skips a `RawValue` without visiting it, so the fused
        // pass could not check it: it must leave such payloads to two passes.
        assert!(!agree::<Raw>(r#"{"sub":"a","extra":{"k":1,"k":2}}"#));
        assert!(!agree::<Raw>(r#"{"sub":"a","extra":{"k":1}}"#));
        assert!(serde_json::from_str::<Raw>(r#"{"sub":"a","extra":{"k":1,"k":2}}"#).is_ok());
        assert!(Registered::parse(r#"{"sub":"a","extra":{"k":1,"k":2}}"#).is_err());
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct TupleAud {
        exp: u64,
        aud: (String,),
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Bytes {
        exp: u64,
        name: std::ffi::CString,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    enum Tree {
        Leaf,
        Node(Box<Tree>),
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Trees {
        exp: u64,
        t: Tree,
    }

    fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
        Ok(Vec::<Value>::deserialize(d).unwrap_or_default())
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Swallows {
        exp: u64,
        #[serde(deserialize_with = "lenient")]
        tags: Vec<Value>,
    }

    #[test]
    fn reviewed_differentials_stay_closed() {
        // An array with elements the caller's tuple does not read.
        assert!(!agree::<TupleAud>(r#"{"exp":4000000000,"aud":["a","b"]}"#));
        assert!(agree::<TupleAud>(r#"{"exp":4000000000,"aud":["a"]}"#));
        // Byte strings: serde_json does not validate them.
        assert!(!agree::<Bytes>(r#"{"exp":1,"name":"\ud800"}"#));
        assert!(!agree::<Bytes>("{\"exp\":1,\"name\":\"a\u{1}b\"}"));
        // A unit variant written as an object, at the depth limit.
        let deep = |n: usize, leaf: &str| {
            format!(
                r#"{{"exp":1,"t":{}{leaf}{}}}"#,
                r#"{"Node":"#.repeat(n),
                "}".repeat(n)
            )
        };
        assert!(!agree::<Trees>(&deep(31, r#"{"Leaf":null}"#)));
        assert!(agree::<Trees>(&deep(20, r#"{"Leaf":null}"#)));
        assert!(agree::<Trees>(&deep(20, r#""Leaf""#)));
        // A depth error the caller's type swallows.
        let too_deep = format!(r#"{{"exp":1,"tags":{}{}}}"#, "[".repeat(32), "]".repeat(32));
        assert!(!agree::<Swallows>(&too_deep));
        assert!(agree::<Swallows>(r#"{"exp":1,"tags":[1,[2]]}"#));
    }

    #[test]
    fn serde_json_private_member_names_are_refused() {
        let hidden = r#"{"exp":1,"d":{"$serde_json::private::RawValue":"{\"a\":1,\"a\":2}"}}"#;
        assert!(Registered::parse(hidden).is_err());
        assert!(crate::json::parse_object(hidden.as_bytes(), "the payload").is_err());
        all_types(hidden);
        let top = r#"{"$serde_json::private::Number":"1"}"#;
        assert!(Registered::parse(top).is_err());
        all_types(top);
    }

    #[test]
    fn odd_registered_claims_agree_or_fall_back() {
        for payload in [
            r#"{"exp":"soon","sub":"a"}"#,
            r#"{"exp":null,"sub":"a"}"#,
            r#"{"exp":true,"sub":"a"}"#,
            r#"{"exp":[1],"sub":"a"}"#,
            r#"{"exp":{"a":1},"sub":"a"}"#,
            r#"{"iss":{"a":1},"sub":"a"}"#,
            r#"{"aud":[1,"x"],"sub":"a"}"#,
            r#"{"aud":[],"sub":"a"}"#,
            r#"{"aud":"x","sub":"a"}"#,
            r#"{"sub":1}"#,
            r#"{"jti":["a"],"sub":"a"}"#,
            r#"{"exp":18446744073709551616,"sub":"a"}"#,
            r#"{"exp":-1,"sub":"a"}"#,
            r#"{"exp":1e3,"sub":"a"}"#,
            r#"{"sub":"\u00e9\n","iss":"a\"b"}"#,
        ] {
            all_types(payload);
        }
    }

    fn json_string() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("exp"),
            Just("nbf"),
            Just("iat"),
            Just("iss"),
            Just("sub"),
            Just("aud"),
            Just("jti"),
            Just("scope"),
            Just("role"),
            Just("nested"),
            Just("tags"),
            Just("a"),
            Just("b"),
            Just("admin"),
            Just("\\u0065xp"),
            Just("x\\\"y"),
        ]
        .prop_map(|s| format!("\"{s}\""))
    }

    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("0".to_owned()),
            Just("-7".to_owned()),
            Just("1.5".to_owned()),
            Just("4000000000".to_owned()),
            json_string(),
        ];
        leaf.prop_recursive(6, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec((json_string(), inner), 0..6).prop_map(|members| {
                    let body: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    fn payload() -> impl Strategy<Value = String> {
        prop::collection::vec((json_string(), json_text()), 0..8).prop_map(|members| {
            let body: Vec<String> = members
                .into_iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    proptest! {
        // About a quarter of these payloads are free of duplicates and so
        // take the fused path for a map; the rest check that it bails out.
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn fused_never_disagrees_with_two_passes(p in payload()) {
            all_types(&p);
        }
    }
}
