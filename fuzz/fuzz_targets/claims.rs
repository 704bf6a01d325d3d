//! Verified payloads, differentially: the input is a token's payload, signed
//! with the verifier's key, so every input reaches the claims parsing.
//!
//! `Verifier::verify` parses a payload in one pass when it can (the fused
//! path) and in two otherwise. `dangerous::insecure_decode` parses it with
//! a third, independent strict parser. Whatever the verifier accepts, the
//! strict parser must accept with the same value; whatever the strict parser
//! refuses (duplicate members, deep nesting, not a JSON object, too large),
//! the verifier must refuse with the same error kind, for every claims type.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use jwt_core::{b64, dangerous, Algorithm, ErrorKind, SigningKey, Validation, Verifier};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

struct Fixture {
    key: SigningKey,
    verifier: Verifier,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = SigningKey::hmac(&[7u8; 64]).unwrap();
        let verifier = Verifier::new(
            key.verifying_key(),
            Validation::new([Algorithm::HS256]).optional_exp(),
        )
        .unwrap();
        Fixture { key, verifier }
    })
}

/// Claims as an application might declare them.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Typed {
    sub: Option<String>,
    exp: Option<f64>,
    iat: Option<u64>,
    jti: Option<String>,
    scope: Option<String>,
    roles: Option<Vec<Role>>,
    nested: Option<HashMap<String, Value>>,
    #[serde(flatten)]
    rest: HashMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
enum Role {
    Admin,
    User,
    Custom(String),
    Level { n: u8 },
}

/// `strict` is the strict parser's verdict: `None` when it accepts, the
/// kind of its error (`malformed`, or `too_large` past the size limit) when
/// it refuses.
fn check<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    verifier: &Verifier,
    token: &str,
    strict: Option<ErrorKind>,
) -> Option<T> {
    match verifier.verify::<T>(token) {
        Ok(data) => {
            assert!(
                strict.is_none(),
                "the verifier accepted a payload the strict parser refuses: {data:?}"
            );
            Some(data.claims)
        }
        Err(e) => {
            if let Some(kind) = strict {
                assert_eq!(e.kind(), kind, "{e}");
            }
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut input = b64::encode(HEADER.as_bytes());
    input.push('.');
    b64::encode_into(data, &mut input);
    let signature = f.key.sign_raw(Algorithm::HS256, input.as_bytes()).unwrap();
    let token = jwt_core::assemble(input, &signature);

    let strict = dangerous::insecure_decode(&token);
    let verdict = strict.as_ref().err().map(|e| e.kind());
    if let Some(value) = check::<Value>(&f.verifier, &token, verdict) {
        let claims = strict.as_ref().unwrap().claims.clone();
        assert_eq!(value, Value::Object(claims));
    }
    if let Some(map) = check::<serde_json::Map<String, Value>>(&f.verifier, &token, verdict) {
        assert_eq!(&map, &strict.as_ref().unwrap().claims);
    }
    check::<Typed>(&f.verifier, &token, verdict);
});
