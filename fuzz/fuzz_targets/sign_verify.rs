//! The signing/verifying differential (issue 11): arbitrary bytes as claims
//! JSON go through the parser `jwtkit sign --claims` uses
//! (`jwt_core::parse_claims`), then through `Signer`, then through
//! `Verifier`.
//!
//! Asserted:
//! - whatever `parse_claims` accepts, `Signer::sign` and `signing_input`
//!   sign, and the verifier reads back the same value (as `Value` and as a
//!   `Map`), given a clock and audience the claims allow; the only refusals
//!   allowed are `expired`/`immature` when no clock can satisfy the dates;
//! - the same bytes given to the `Signer` verbatim (a `RawValue`) get the
//!   same verdict as from `parse_claims`, and when signed verify to the same
//!   value: the signer's check and the verifier's parser agree on the bytes;
//! - whatever is refused is refused with a configuration error, never a panic.
//!
//! serde_json's `raw_value` feature is on, as in the `jwtkit` binary (axum
//! turns it on), so the private member names are live.
#![no_main]

use std::sync::{Arc, OnceLock};

use jwt_core::{
    parse_claims, signing_input, Algorithm, ErrorKind, ManualClock, Signer, SigningKey, Validation,
    Verifier,
};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

const SECRET: [u8; 64] = [7u8; 64];

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| Signer::new(SigningKey::hmac(&SECRET).unwrap(), Algorithm::HS256).unwrap())
}

fn date(map: &Map<String, Value>, name: &str) -> Option<f64> {
    map.get(name)
        .map(|v| v.as_f64().expect("parse_claims checked the type"))
}

/// A verifier whose clock and audience the claims can satisfy when any can,
/// and whether they do (by the verifier's own comparisons).
fn verifier_for(map: &Map<String, Value>) -> (Verifier, bool) {
    let (exp, nbf, iat) = (date(map, "exp"), date(map, "nbf"), date(map, "iat"));
    let lo = match (nbf, iat) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    // `as` saturates: dates past the i64 range get the nearest clock.
    let now = match (lo, exp) {
        (Some(lo), _) => lo.ceil() as i64,
        (None, Some(exp)) => (exp - 1.0).floor() as i64,
        (None, None) => 0,
    };
    let nowf = now as f64;
    let satisfiable = exp.is_none_or(|e| nowf < e)
        && nbf.is_none_or(|n| nowf >= n)
        && iat.is_none_or(|i| i <= nowf);
    let mut validation = Validation::new([Algorithm::HS256])
        .optional_exp()
        .max_size(1 << 24)
        .clock(Arc::new(ManualClock::new(now)));
    match map.get("aud") {
        Some(Value::String(a)) => validation = validation.audience(a.clone()),
        Some(Value::Array(all)) => {
            let first = all[0].as_str().expect("parse_claims checked the type");
            validation = validation.audience(first.to_owned());
        }
        _ => {}
    }
    let verifier = Verifier::new(
        SigningKey::hmac(&SECRET).unwrap().verifying_key(),
        validation,
    )
    .unwrap();
    (verifier, satisfiable)
}

/// Verifies `token`; when the dates allow, it must verify to `expected`.
fn round_trip(verifier: &Verifier, satisfiable: bool, token: &str, expected: &Map<String, Value>) {
    match verifier.verify::<Value>(token) {
        Ok(data) => {
            assert!(
                satisfiable,
                "verified although no clock satisfies the dates"
            );
            assert_eq!(data.claims, Value::Object(expected.clone()), "{token}");
            let (_, map) = verifier.verify_to_map(token).unwrap();
            assert_eq!(&map, expected);
        }
        Err(e) => {
            assert!(
                !satisfiable && matches!(e.kind(), ErrorKind::Expired | ErrorKind::Immature),
                "a signed token was refused: {e} ({token})"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let signer = signer();
    let parsed = parse_claims(data);
    if let Err(e) = &parsed {
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }
    if let Ok(map) = &parsed {
        let token = signer
            .sign(map)
            .unwrap_or_else(|e| panic!("parse_claims accepted, the Signer refused: {e}"));
        let header = signer.header().clone();
        signing_input(&header, map)
            .unwrap_or_else(|e| panic!("parse_claims accepted, signing_input refused: {e}"));
        let (verifier, satisfiable) = verifier_for(map);
        round_trip(&verifier, satisfiable, &token, map);
    }

    // The same bytes, verbatim, through the Signer's own check.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    let Ok(raw) = RawValue::from_string(text.to_owned()) else {
        // Not JSON at all: parse_claims must have refused it too.
        assert!(parsed.is_err(), "parse_claims accepted invalid JSON");
        return;
    };
    match (signer.sign(&raw), &parsed) {
        (Ok(token), Ok(map)) => {
            let (verifier, satisfiable) = verifier_for(map);
            round_trip(&verifier, satisfiable, &token, map);
        }
        (Err(e), Err(_)) => assert_eq!(e.kind(), ErrorKind::Config, "{e}"),
        (Ok(token), Err(e)) => panic!("the Signer signed what parse_claims refuses ({e}): {token}"),
        (Err(e), Ok(_)) => panic!("the Signer refused what parse_claims accepts: {e}"),
    }
});
