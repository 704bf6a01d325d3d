//! The remote-JWKS response parser (headers and body), as the remote verifier
//! runs it on whatever an identity provider answers: never a panic, and the
//! TTL always within the configured bounds.
#![no_main]

use jwt_keys::{parse_jwks_response, CacheOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Layout: CONTENT-TYPE \n CACHE-CONTROL \n BODY; a missing line means a missing header.
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let ct = parts.next().map(String::from_utf8_lossy);
    let cc = parts.next().map(String::from_utf8_lossy);
    let body = parts.next().unwrap_or(b"");
    let options = CacheOptions::default();
    if let Ok((keys, ttl)) = parse_jwks_response(ct.as_deref(), cc.as_deref(), body, &options) {
        assert!(!keys.is_empty());
        let lo = options.min_ttl().as_secs() as i64;
        let hi = options.max_ttl().as_secs() as i64;
        let default = options.default_ttl().as_secs() as i64;
        assert!((lo..=hi).contains(&ttl) || ttl == default, "ttl {ttl}");
    }
});
