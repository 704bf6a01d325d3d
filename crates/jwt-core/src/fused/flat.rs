//! The fastest path, for the common payload: a flat object.
//!
//! Most claims sets are one object of strings, integers, booleans, nulls
//! and arrays of strings (`{"iss":…,"sub":…,"aud":…,"exp":…,"scope":…}`).
//! For those, a small scanner reads the members without serde_json, checks
//! them (duplicate names, serde_json's private names), records the
//! registered claims, and the caller's type is deserialized from the
//! scanned values by [`Replay`], the same replay the registered claims of
//! the fused path use (serde_json's visitor calls, method by method).
//!
//! It accepts only what it reads exactly as serde_json would: a string with
//! an escape or a control character, a number with a sign, a fraction, an
//! exponent or more than 64 bits, a nested object, an array holding
//! anything but plain strings, or anything unexpected, and it gives up
//! (`None`); the fused path then decides, and after it the two-pass path,
//! so the outcome and the error message never depend on which path ran.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::registered::{Captured, Replay, View};
use super::{bail, watch, SERDE_JSON_PRIVATE};
use crate::claims::{Claim, Registered, Slot};

/// Deserializes `text` into `T` and records its registered claims into
/// `registered`, when `text` is a flat object; `None` means "use the
/// fused path" (see the module docs). `registered` must be empty, and is
/// left in an unspecified state on `None`.
pub(crate) fn parse<'de, T: Deserialize<'de>>(
    text: &'de str,
    registered: &mut Registered<'de>,
) -> Option<T> {
    let mut members = Members {
        c: Cursor {
            bytes: text.as_bytes(),
            text,
            at: 0,
        },
        reg: registered,
        pending: None,
        first: true,
        done: false,
        poisoned: Cell::new(false),
    };
    members.c.eat(b'{')?;
    let value = T::deserialize(FlatTop {
        members: &mut members,
    })
    .ok()?;
    if members.pending.is_some() || members.poisoned.get() {
        return None;
    }
    // serde_json refuses an object the caller's type did not read to its
    // end (`}` must come next), and anything after it but whitespace.
    if !members.done {
        members.c.eat(b'}')?;
    }
    members.c.skip_ws();
    (members.c.at == text.len()).then_some(value)
}

/// The error type of the scan's checks: only its existence matters.
#[derive(Debug)]
struct Bail;

impl fmt::Display for Bail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not on the flat path")
    }
}

impl std::error::Error for Bail {}

impl de::Error for Bail {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Bail
    }
}

/// The bytes that end a plain string: `"`, `\\` and the control
/// characters (which JSON allows only escaped).
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The value of eight decimal digits, `digits` holding one digit value
/// (0..=9) per byte, the first (most significant) in the lowest byte.
fn eight_digits(digits: u64) -> u64 {
    // Pairs, then quads, then the eight: the multiplications leave each
    // step's result in the upper half of its lane.
    let pairs = digits.wrapping_mul(10).wrapping_add(digits >> 8);
    const MASK: u64 = 0x0000_00ff_0000_00ff;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    ((pairs & MASK)
        .wrapping_mul(MUL1)
        .wrapping_add(((pairs >> 16) & MASK).wrapping_mul(MUL2)))
        >> 32
}

/// Whether the three bytes are ASCII letters (the names read in one step),
/// computed rather than looked up: no load on the path of every member.
#[inline(always)]
fn letters(a: u8, b: u8, c: u8) -> bool {
    let letter = |x: u8| (x | 0x20).wrapping_sub(b'a') < 26;
    letter(a) & letter(b) & letter(c)
}

/// JSON's insignificant whitespace.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// A cursor over the payload.
struct Cursor<'de> {
    bytes: &'de [u8],
    text: &'de str,
    at: usize,
}

impl<'de> Cursor<'de> {
    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.at) {
            if b > b' ' || !is_ws(b) {
                break;
            }
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.at).copied()
    }

    /// Consumes `b` (after whitespace) or gives up.
    #[inline]
    fn eat(&mut self, b: u8) -> Option<()> {
        if self.bytes.get(self.at) == Some(&b) {
            self.at += 1;
            return Some(());
        }
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// A string with no escape and no control character, its quotes
    /// included; the cursor is on the opening quote.
    // Inlined for the reason `value` is (below): out of line, the member's
    // value went back through memory and stalled.
    #[inline(always)]
    fn plain_str(&mut self) -> Option<&'de str> {
        let start = self.at + 1;
        let mut end = start;
        // Eight bytes at a time: the lowest flagged byte of a word is
        // exactly the first special one (the borrows of the subtraction
        // only ever flag bytes above it).
        const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
        const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
        while let Some(chunk) = self.bytes.get(end..end + 8) {
            let w = u64::from_le_bytes(chunk.try_into().ok()?);
            let quote = w ^ (ONES * u64::from(b'"'));
            let slash = w ^ (ONES * u64::from(b'\\'));
            let flags = (w.wrapping_sub(ONES * 0x20) & !w
                | quote.wrapping_sub(ONES) & !quote
                | slash.wrapping_sub(ONES) & !slash)
                & HIGHS;
            if flags != 0 {
                end += (flags.trailing_zeros() / 8) as usize;
                break;
            }
            end += 8;
        }
        while !SPECIAL[usize::from(*self.bytes.get(end)?)] {
            end += 1;
        }
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        // Both ends are ASCII quotes, so these are character boundaries.
        self.text.get(start..end)
    }

    /// [`Self::plain_str`] for short strings (member names): a byte loop.
    #[inline]
    fn short_str(&mut self) -> Option<&'de str> {
        let start = self.at + 1;
        let mut end = start;
        while !SPECIAL[usize::from(*self.bytes.get(end)?)] {
            end += 1;
        }
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }

    /// A non-negative integer without a leading zero, a fraction or an
    /// exponent, that fits 64 bits: what serde_json reads as a `u64`.
    // Inlined for the reason `value` is (below).
    #[inline(always)]
    fn u64(&mut self) -> Option<u64> {
        let start = self.at;
        let mut n: u64 = 0;
        // Eight digits in one step when there are eight (a NumericDate has
        // ten), then the byte loop for the rest: 8 digits never overflow.
        if let Some(chunk) = self.bytes.get(start..start + 8) {
            let w = u64::from_le_bytes(chunk.try_into().ok()?);
            const ZEROS: u64 = u64::from_ne_bytes([b'0'; 8]);
            const HIGH_NIBBLES: u64 = u64::from_ne_bytes([0xf0; 8]);
            const SIXES: u64 = u64::from_ne_bytes([0x06; 8]);
            // Every byte in 0x30..=0x3f, and still so after adding 6: a digit.
            if w & HIGH_NIBBLES == ZEROS && w.wrapping_add(SIXES) & HIGH_NIBBLES == ZEROS {
                n = eight_digits(w - ZEROS);
                self.at += 8;
            }
        }
        while let Some(&b) = self.bytes.get(self.at) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(d))?;
            self.at += 1;
        }
        let digits = self.at - start;
        if digits == 0 || (digits > 1 && self.bytes[start] == b'0') {
            return None;
        }
        // A fraction or an exponent makes it a float (serde_json's own
        // rounding rules): not ours.
        if matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(n)
    }

    /// A literal (`true`, `false`, `null`), checked to end where a value
    /// ends.
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if !self.bytes[self.at..].starts_with(word) {
            return None;
        }
        self.at += word.len();
        Some(())
    }

    // Inlined into each caller so that the value stays in registers: returned
    // through memory, it was read back before its stores had landed (a
    // store-forwarding stall: ~4 % of the samples of an HS256 verification).
    #[inline(always)]
    fn value(&mut self) -> Option<Captured<'de>> {
        Some(match self.peek()? {
            b'"' => Captured::Str(Cow::Borrowed(self.plain_str()?)),
            b'0'..=b'9' => Captured::U64(self.u64()?),
            b't' => self.literal(b"true").map(|()| Captured::Bool(true))?,
            b'f' => self.literal(b"false").map(|()| Captured::Bool(false))?,
            b'n' => self.literal(b"null").map(|()| Captured::Null)?,
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.peek()? == b']' {
                    self.at += 1;
                } else {
                    loop {
                        if self.peek()? != b'"' {
                            return None;
                        }
                        items.push(Cow::Borrowed(self.plain_str()?));
                        match self.peek()? {
                            b',' => self.at += 1,
                            b']' => {
                                self.at += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                Captured::StrArray(items)
            }
            _ => return None,
        })
    }
}

/// The members of the object, read as the caller's type asks for them:
/// the scan runs inside serde's `MapAccess`, so no list is built.
struct Members<'r, 'de> {
    c: Cursor<'de>,
    reg: &'r mut Registered<'de>,
    /// The member whose value comes next, and its registered slot.
    pending: Option<(&'de str, Option<Slot>)>,
    /// No member read yet (no `,` before the next one).
    first: bool,
    /// The closing `}` was read.
    done: bool,
    /// Some error passed through (the caller's type may have swallowed it).
    poisoned: Cell<bool>,
}

impl<'r, 'de> Members<'r, 'de> {
    /// The next member's name, or `None` at the end of the object.
    #[inline(always)]
    fn name(&mut self) -> Option<Option<&'de str>> {
        if self.pending.is_some() || self.done {
            return None;
        }
        match (self.c.peek()?, self.first) {
            (b'}', _) => {
                self.c.at += 1;
                self.done = true;
                return Some(None);
            }
            (b',', false) => self.c.at += 1,
            (b'"', true) => {}
            _ => return None,
        }
        self.first = false;
        if self.c.peek()? != b'"' {
            return None;
        }
        let at = self.c.at;
        // The common member: a name of three ASCII letters followed at once
        // by `:` (`"exp":`, every registered claim and most others), read
        // in one step; anything else takes the general scan.
        let (name, slot) = match self.c.bytes.get(at..at + 6) {
            Some(&[b'"', a, b, c, b'"', b':']) if letters(a, b, c) => {
                self.c.at = at + 6;
                // ASCII letters between ASCII quotes: character boundaries.
                let name = self.c.text.get(at + 1..at + 4)?;
                (name, Slot::of_bytes3([a, b, c]))
            }
            _ => {
                let name = self.c.short_str()?;
                self.c.eat(b':')?;
                (name, Slot::of(name))
            }
        };
        if slot.is_none() {
            self.reg.names.insert::<Bail>(Cow::Borrowed(name)).ok()?;
        }
        self.pending = Some((name, slot));
        Some(Some(name))
    }
}

impl<'r, 'de> MapAccess<'de> for Members<'r, 'de> {
    type Error = Bail;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Bail> {
        let Some(name) = self.name() else {
            return self.fail();
        };
        let Some(name) = name else {
            return Ok(None);
        };
        let result = seed
            .deserialize(BorrowedStrDeserializer::<Bail>::new(name))
            .map(Some);
        watch(&self.poisoned, result)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Bail> {
        let Some((name, slot)) = self.pending.take() else {
            return self.fail();
        };
        // Strings and integers (nearly every member) are replayed and
        // recorded straight from the scan, so the value stays in registers;
        // the rest goes through `Captured`. Both record exactly what
        // `Captured::into_claim` does.
        match self.c.peek() {
            Some(b'"') => match self.c.plain_str() {
                Some(s) => self.replay(seed, slot, View::Borrowed(s), || {
                    Claim::Str(Cow::Borrowed(s))
                }),
                None => self.fail(),
            },
            // What `Captured::into_claim` records for a `u64`.
            Some(b'0'..=b'9') => match self.c.u64() {
                Some(n) => self.replay(seed, slot, View::U64(n), || Claim::Num(n as f64)),
                None => self.fail(),
            },
            _ => {
                let Some(captured) = self.c.value() else {
                    return self.fail();
                };
                let result = seed.deserialize(Replay::<Bail> {
                    view: captured.view(),
                    error: PhantomData,
                });
                let recorded = match slot {
                    Some(slot) => self.reg.set::<Bail>(slot, captured.into_claim()),
                    None => {
                        if matches!(captured, Captured::Null) {
                            self.reg.nulls.push(Cow::Borrowed(name));
                        }
                        Ok(())
                    }
                };
                watch(&self.poisoned, recorded.and(result))
            }
        }
    }
}

impl<'r, 'de> Members<'r, 'de> {
    /// Replays a scanned string or integer into `seed` and records it when
    /// it is a registered claim.
    #[inline(always)]
    fn replay<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
        slot: Option<Slot>,
        view: View<'_, 'de>,
        claim: impl FnOnce() -> Claim<'de>,
    ) -> Result<S::Value, Bail> {
        // Recorded first, so that the caller's value is returned as the seed
        // built it: combined with the recording's result, it was copied
        // through memory and read back wider than it was written (a
        // store-forwarding stall). Which comes first does not matter: any
        // error gives up on the flat path.
        if let Some(slot) = slot {
            if self.reg.set_with::<Bail>(slot, claim).is_err() {
                return self.fail();
            }
        }
        watch(
            &self.poisoned,
            seed.deserialize(Replay::<Bail> {
                view,
                error: PhantomData,
            }),
        )
    }

    /// Gives up on the flat path, and remembers that it did.
    fn fail<T>(&self) -> Result<T, Bail> {
        self.poisoned.set(true);
        Err(bail())
    }
}

/// The top level, with the methods serde_json answers for an object (the
/// same set as the fused path's `Top`); any other gives up.
struct FlatTop<'a, 'r, 'de> {
    members: &'a mut Members<'r, 'de>,
}

impl<'a, 'r, 'de> Deserializer<'de> for FlatTop<'a, 'r, 'de> {
    type Error = Bail;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        visitor.visit_map(&mut *self.members)
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        visitor.visit_map(&mut *self.members)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Bail> {
        visitor.visit_map(&mut *self.members)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Bail> {
        visitor.visit_some(self)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Bail> {
        if name.starts_with(SERDE_JSON_PRIVATE) {
            return Err(bail());
        }
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, Bail> {
        Err(bail())
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Bail> {
        Err(bail())
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        _: V,
    ) -> Result<V::Value, Bail> {
        Err(bail())
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Bail> {
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
