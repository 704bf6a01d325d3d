//! Canonical, unpadded base64url (RFC 7515 §2): no padding, no whitespace,
//! no non-zero trailing bits, URL-safe alphabet only.
//!
//! Decoding uses `base64-simd` (vectorized, strict mode); the `base64`
//! crate, which accepts exactly the same inputs (a property test holds the
//! two to that), encodes and words the error when an input is refused.

use std::mem::MaybeUninit;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use base64_simd::{Out, URL_SAFE_NO_PAD as SIMD_URL_SAFE_NO_PAD};

use crate::error::Error;

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends the unpadded base64url encoding of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Decodes canonical unpadded base64url; `what` names the part for the error message.
pub fn decode(input: &[u8], what: &str) -> Result<Vec<u8>, Error> {
    // Both decoders refuse padding, characters outside the URL-safe alphabet
    // and non-zero trailing bits, so every value has exactly one accepted
    // encoding.
    SIMD_URL_SAFE_NO_PAD
        .decode_to_vec(input)
        .map_err(|_| refused(input, what))
}

/// Decodes canonical unpadded base64url and hands the bytes to `f`. Results
/// of up to `N` bytes are decoded into a stack buffer, so the hot path of
/// verification makes no heap allocation for them.
pub(crate) fn with_decoded<const N: usize, R>(
    input: &[u8],
    what: &str,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, Error> {
    let mut stack = [MaybeUninit::uninit(); N];
    let mut heap = Vec::new();
    decode_to(input, &mut stack, &mut heap, what).map(f)
}

/// Decodes canonical unpadded base64url into `stack` when the result fits
/// (no heap allocation), else into `heap`, and returns the bytes.
// Inlined so that the bytes' slice stays in registers: returned through
// memory, it was read back wider than it was written, and the failed store
// forwarding stalled the verification (~1.5 % of an HS256 verification).
#[inline(always)]
pub(crate) fn decode_to<'b, const N: usize>(
    input: &[u8],
    stack: &'b mut [MaybeUninit<u8>; N],
    heap: &'b mut Vec<u8>,
    what: &str,
) -> Result<&'b [u8], Error> {
    if SIMD_URL_SAFE_NO_PAD.estimated_decoded_length(input.len()) > N {
        *heap = decode(input, what)?;
        return Ok(heap);
    }
    // The estimate bounds the decoded length, so `stack` is large enough.
    match SIMD_URL_SAFE_NO_PAD.decode(input, Out::from_uninit_slice(stack)) {
        Ok(bytes) => Ok(bytes),
        Err(_) => Err(refused(input, what)),
    }
}

/// The error for a refused input, with the position and reason.
#[cold]
fn refused(input: &[u8], what: &str) -> Error {
    match URL_SAFE_NO_PAD.decode(input) {
        Err(e) => Error::malformed(format!("{what} is not canonical unpadded base64url ({e})")),
        Ok(_) => Error::malformed(format!("{what} is not canonical unpadded base64url")),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            40 => prop::sample::select(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec()
            ),
            1 => prop::sample::select(b"=+/ .\n\0\xff".to_vec()),
        ];
        prop::collection::vec(byte, 0..120)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// Both decoders accept exactly the same inputs, with the same bytes.
        #[test]
        fn simd_and_scalar_decoders_agree(input in text()) {
            let scalar = URL_SAFE_NO_PAD.decode(&input).ok();
            let simd = decode(&input, "x").ok();
            prop_assert_eq!(&scalar, &simd);
            let stack = with_decoded::<16, _>(&input, "x", |b| b.to_vec()).ok();
            prop_assert_eq!(&scalar, &stack);
        }

        /// Every value round-trips, at lengths that cross SIMD block sizes.
        #[test]
        fn round_trip(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let text = encode(&bytes);
            prop_assert_eq!(decode(text.as_bytes(), "x").unwrap(), bytes.clone());
            prop_assert_eq!(
                with_decoded::<300, _>(text.as_bytes(), "x", |b| b.to_vec()).unwrap(),
                bytes
            );
        }
    }

    #[test]
    fn non_canonical_trailing_bits_are_refused() {
        // "AB" decodes to one byte with 4 trailing bits; only "AA".."AP"-style
        // inputs with zero trailing bits are canonical.
        assert!(decode(b"AA", "x").is_ok());
        assert!(decode(b"AB", "x").is_err());
        assert!(decode(b"AAB", "x").is_err());
        assert!(decode(b"AAA=", "x").is_err());
        assert!(decode(b"A", "x").is_err());
        let err = decode(b"AB", "the payload").unwrap_err().to_string();
        assert!(err.contains("the payload is not canonical"), "{err}");
    }
}
