//! Helpers shared by jwt-core's integration tests.
#![allow(dead_code)]

use jwt_core::{b64, Algorithm, SigningKey};

/// The HMAC secret most tests use (64 bytes: fine for HS256/384/512).
pub const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Far-future expiry.
pub const EXP: u64 = 4_000_000_000;

/// Builds a token from raw header and payload JSON text, signed correctly, so
/// that tests can send exactly the bytes an attacker would.
pub fn raw_token(key: &SigningKey, alg: Algorithm, header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes())
    );
    let sig = key.sign_raw(alg, input.as_bytes()).unwrap();
    format!("{input}.{}", b64::encode(&sig))
}

/// Reads a file from tests/data.
pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}
