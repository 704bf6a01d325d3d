//! Canonical, unpadded base64url (RFC 7515 §2): no padding, no whitespace,
//! no non-zero trailing bits, URL-safe alphabet only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

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
    // The engine rejects padding, characters outside the URL-safe alphabet and
    // non-zero trailing bits, so every value has exactly one accepted encoding.
    URL_SAFE_NO_PAD
        .decode(input)
        .map_err(|e| Error::malformed(format!("{what} is not canonical unpadded base64url ({e})")))
}

/// Decodes canonical unpadded base64url and hands the bytes to `f`. Results
/// of up to `N` bytes are decoded into a stack buffer, so the hot path of
/// verification makes no heap allocation for them.
pub(crate) fn with_decoded<const N: usize, R>(
    input: &[u8],
    what: &str,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, Error> {
    let estimate = base64::decoded_len_estimate(input.len());
    if estimate > N {
        return decode(input, what).map(|bytes| f(&bytes));
    }
    let mut buf = [0u8; N];
    match URL_SAFE_NO_PAD.decode_slice(input, &mut buf[..estimate]) {
        Ok(n) => Ok(f(&buf[..n])),
        Err(e) => Err(Error::malformed(format!(
            "{what} is not canonical unpadded base64url ({e})"
        ))),
    }
}
