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
//!
//! - `flat`: a faster path still, for a flat object (no serde_json at all);
//! - `top`: the top level, which must be an object; its members are tracked;
//! - `value`: any other value, checked as the caller's type reads it;
//! - `registered`: the registered claims, captured and replayed;
//! - `tests`: the agreement of both paths, by example and by proptest.

use std::borrow::Cow;
use std::cell::Cell;

use serde::de::value::{BorrowedStrDeserializer, StrDeserializer};
use serde::de::{self, Deserialize, DeserializeSeed};

use self::top::Top;
use crate::claims::Registered;

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

// Declared after the macros above, which are in scope only below their
// definition.
pub(crate) mod flat;
mod registered;
mod top;
mod value;

#[cfg(test)]
mod tests;
