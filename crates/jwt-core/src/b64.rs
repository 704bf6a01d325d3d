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
