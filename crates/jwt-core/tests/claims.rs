//! Registered-claim validation at its boundaries, with an injected clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{raw_token, SECRET};
use jwt_core::{
    Algorithm, Error, ErrorKind, ManualClock, Signer, SigningKey, Validation, Verifier,
    VerifyingKey,
};
use serde::Deserialize;
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_000;

/// Signs `claims` as given: these tests feed the verifier registered claims
/// of the wrong type, which `Signer` refuses to sign, so the token is built
/// from the raw JSON.
fn sign(claims: &Value) -> String {
    raw_token(
        &SigningKey::hmac(SECRET).unwrap(),
        Algorithm::HS256,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims.to_string(),
    )
}

fn verify_at(now: i64, v: Validation, token: &str) -> Result<Value, Error> {
    let v = v.clock(Arc::new(ManualClock::new(now)));
    Verifier::new(VerifyingKey::hmac(SECRET).unwrap(), v)
        .unwrap()
        .verify::<Value>(token)
        .map(|d| d.claims)
}

fn base() -> Validation {
    Validation::new([Algorithm::HS256])
}

fn kind_at(now: i64, v: Validation, claims: Value) -> Option<ErrorKind> {
    verify_at(now, v, &sign(&claims)).err().map(|e| e.kind())
}

#[test]
fn exp_boundary() {
    let exp = NOW + 100;
    assert_eq!(kind_at(exp - 1, base(), json!({"exp": exp})), None);
    assert_eq!(
        kind_at(exp, base(), json!({"exp": exp})),
        Some(ErrorKind::Expired)
    );
    assert_eq!(
        kind_at(exp + 1, base(), json!({"exp": exp})),
        Some(ErrorKind::Expired)
    );
    // With leeway: expired when now >= exp + leeway.
    let lee = || base().leeway(Duration::from_secs(10));
    assert_eq!(kind_at(exp + 9, lee(), json!({"exp": exp})), None);
    assert_eq!(
        kind_at(exp + 10, lee(), json!({"exp": exp})),
        Some(ErrorKind::Expired)
    );
}

#[test]
fn exp_is_required_by_default() {
    let err = verify_at(NOW, base(), &sign(&json!({"sub": "a"}))).unwrap_err();
    assert!(
        matches!(&err, Error::MissingClaim { claim } if claim == "exp"),
        "{err}"
    );
    assert_eq!(
        kind_at(NOW, base().optional_exp(), json!({"sub": "a"})),
        None
    );
    // Optional exp is still checked when present.
    assert_eq!(
        kind_at(NOW, base().optional_exp(), json!({"exp": NOW - 1})),
        Some(ErrorKind::Expired)
    );
}

#[test]
fn nbf_boundary() {
    let nbf = NOW + 100;
    let c = json!({"exp": NOW + 1000, "nbf": nbf});
    assert_eq!(kind_at(nbf, base(), c.clone()), None);
    assert_eq!(
        kind_at(nbf - 1, base(), c.clone()),
        Some(ErrorKind::Immature)
    );
    let lee = || base().leeway(Duration::from_secs(10));
    assert_eq!(kind_at(nbf - 10, lee(), c.clone()), None);
    assert_eq!(kind_at(nbf - 11, lee(), c), Some(ErrorKind::Immature));
}

#[test]
fn iat_in_the_future_is_immature() {
    let c = json!({"exp": NOW + 1000, "iat": NOW + 5});
    assert_eq!(kind_at(NOW + 5, base(), c.clone()), None);
    assert_eq!(
        kind_at(NOW + 4, base(), c.clone()),
        Some(ErrorKind::Immature)
    );
    assert_eq!(kind_at(NOW, base().leeway(Duration::from_secs(5)), c), None);
}

/// The clock counts whole seconds, so `now` stands for the second
/// [now, now + 1): a fractional `nbf` or `iat` inside it (PyJWT writes
/// `time.time()`) is not in the future; one in the next second is.
#[test]
fn fractional_nbf_and_iat_within_the_current_second_are_not_in_the_future() {
    for claim in ["nbf", "iat"] {
        let mut c = json!({"exp": NOW + 1000});
        c[claim] = json!(NOW as f64 + 0.999);
        assert_eq!(kind_at(NOW, base(), c.clone()), None, "{claim}");
        c[claim] = json!(NOW as f64 + 1.0);
        assert_eq!(
            kind_at(NOW, base(), c.clone()),
            Some(ErrorKind::Immature),
            "{claim}"
        );
        c[claim] = json!(NOW as f64 + 10.5);
        let lee = base().leeway(Duration::from_secs(10));
        assert_eq!(kind_at(NOW, lee, c.clone()), None, "{claim}");
        let lee = base().leeway(Duration::from_secs(9));
        assert_eq!(kind_at(NOW, lee, c), Some(ErrorKind::Immature), "{claim}");
    }
}

#[test]
fn numeric_dates_accept_numbers_only() {
    // Floats are NumericDates too.
    assert_eq!(kind_at(NOW, base(), json!({"exp": NOW as f64 + 0.5})), None);
    assert_eq!(
        kind_at(NOW + 1, base(), json!({"exp": NOW as f64 + 0.5})),
        Some(ErrorKind::Expired)
    );
    for bad in [
        json!("1700000100"),
        json!(true),
        json!(null),
        json!([1]),
        json!({}),
    ] {
        for claim in ["exp", "nbf", "iat"] {
            let mut c = json!({"exp": NOW + 100});
            c[claim] = bad.clone();
            let err = verify_at(NOW, base(), &sign(&c)).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidClaim { claim: cl, .. } if cl == claim),
                "{claim}={bad}: {err}"
            );
        }
    }
}

#[test]
fn issuer() {
    let v = || {
        base()
            .issuer("https://a.example")
            .issuer("https://b.example")
    };
    assert_eq!(
        kind_at(
            NOW,
            v(),
            json!({"exp": NOW + 9, "iss": "https://b.example"})
        ),
        None
    );
    assert_eq!(
        kind_at(
            NOW,
            v(),
            json!({"exp": NOW + 9, "iss": "https://evil.example"})
        ),
        Some(ErrorKind::InvalidIssuer)
    );
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9, "iss": 1})),
        Some(ErrorKind::InvalidIssuer)
    );
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9})),
        Some(ErrorKind::MissingClaim)
    );
}

/// RFC 7519 §4.1.1: `iss` is a string. A verifier with no issuer configured
/// refused a `sub` or `jti` of the wrong type but accepted any `iss` (found
/// by the attacker's review), which `parse_claims` documents every verifier
/// refusing.
#[test]
fn an_iss_that_is_not_a_string_is_refused_without_an_issuer_configured() {
    for iss in [
        json!(1),
        json!(null),
        json!(true),
        json!(1.5),
        json!(["a"]),
        json!({"a": 1}),
    ] {
        let token = sign(&json!({"exp": NOW + 9, "iss": iss}));
        let err = verify_at(NOW, base(), &token).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidClaim, "{iss}: {err}");
        assert!(err.to_string().contains("`iss`"), "{err}");
        assert!(err.to_string().contains("must be a string"), "{err}");
    }
    // A string `iss` is fine with no issuer configured, as before.
    let token = sign(&json!({"exp": NOW + 9, "iss": "https://any.example"}));
    assert!(verify_at(NOW, base(), &token).is_ok());
}

#[test]
fn audience() {
    let v = || base().audience("api").audience("admin");
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9, "aud": "api"})),
        None
    );
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9, "aud": ["x", "admin"]})),
        None
    );
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9, "aud": ["x", "y"]})),
        Some(ErrorKind::InvalidAudience)
    );
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9, "aud": []})),
        Some(ErrorKind::InvalidAudience)
    );
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9, "aud": 5})),
        Some(ErrorKind::InvalidAudience)
    );
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9, "aud": ["api", 5]})),
        Some(ErrorKind::InvalidAudience)
    );
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9})),
        Some(ErrorKind::MissingClaim)
    );
    // RFC 7519 §4.1.3: a token with `aud` is refused when no audience is expected.
    assert_eq!(
        kind_at(NOW, base(), json!({"exp": NOW + 9, "aud": "api"})),
        Some(ErrorKind::InvalidAudience)
    );
}

#[test]
fn subject_and_jti() {
    let v = || base().subject("alice");
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9, "sub": "alice"})),
        None
    );
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9, "sub": "bob"})),
        Some(ErrorKind::InvalidSubject)
    );
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9})),
        Some(ErrorKind::MissingClaim)
    );
    assert_eq!(
        kind_at(NOW, base(), json!({"exp": NOW + 9, "sub": 7})),
        Some(ErrorKind::InvalidSubject)
    );
    assert_eq!(
        kind_at(NOW, base(), json!({"exp": NOW + 9, "jti": 7})),
        Some(ErrorKind::InvalidClaim)
    );
}

#[test]
fn required_claims() {
    let v = || base().require("scope").require("jti");
    assert_eq!(
        kind_at(NOW, v(), json!({"exp": NOW + 9, "scope": "x", "jti": "1"})),
        None
    );
    let err = verify_at(NOW, v(), &sign(&json!({"exp": NOW + 9, "scope": "x"}))).unwrap_err();
    assert!(
        matches!(&err, Error::MissingClaim { claim } if claim == "jti"),
        "{err}"
    );
}

#[test]
fn a_required_claim_that_is_null_is_missing() {
    // PyJWT: `payload.get(claim) is None` is missing.
    for c in [
        json!({"exp": NOW + 9, "scope": null}),
        json!({"exp": NOW + 9, "scope": "x", "jti": null}),
    ] {
        let err = verify_at(NOW, base().require("scope").require("jti"), &sign(&c)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingClaim, "{c}: {err}");
    }
    // Not required: a null custom claim is just a claim.
    assert_eq!(
        kind_at(NOW, base(), json!({"exp": NOW + 9, "scope": null})),
        None
    );
}

#[test]
fn explicit_typing() {
    let key = SigningKey::hmac(SECRET).unwrap();
    let claims = format!(r#"{{"exp":{}}}"#, NOW + 9);
    let tok = |typ: &str| {
        raw_token(
            &key,
            Algorithm::HS256,
            &format!(r#"{{"alg":"HS256","typ":"{typ}"}}"#),
            &claims,
        )
    };
    let v = || base().typ("at+jwt");
    for ok in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/At+JWT",
    ] {
        assert!(verify_at(NOW, v(), &tok(ok)).is_ok(), "{ok}");
    }
    for bad in ["JWT", "refresh+jwt", "at+jwt ", "application/"] {
        let err = verify_at(NOW, v(), &tok(bad)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidType, "{bad}");
    }
    let untyped = raw_token(&key, Algorithm::HS256, r#"{"alg":"HS256"}"#, &claims);
    assert_eq!(
        verify_at(NOW, v(), &untyped).unwrap_err().kind(),
        ErrorKind::InvalidType
    );
    // The expected type may itself carry the prefix.
    assert!(verify_at(NOW, base().typ("application/at+jwt"), &tok("at+jwt")).is_ok());
    // A multi-byte character at the prefix boundary must not panic.
    let weird = raw_token(
        &key,
        Algorithm::HS256,
        r#"{"alg":"HS256","typ":"applicatio€x"}"#,
        &claims,
    );
    assert_eq!(
        verify_at(NOW, v(), &weird).unwrap_err().kind(),
        ErrorKind::InvalidType
    );
}

#[test]
fn custom_claims_deserialize_into_caller_types() {
    #[derive(Debug, Deserialize, PartialEq)]
    struct MyClaims {
        sub: String,
        exp: u64,
        roles: Vec<String>,
        #[serde(default)]
        tenant: Option<String>,
    }
    let token = sign(&json!({"sub": "alice", "exp": NOW + 9, "roles": ["admin"]}));
    let v = Verifier::new(
        VerifyingKey::hmac(SECRET).unwrap(),
        base().clock(Arc::new(ManualClock::new(NOW))),
    )
    .unwrap();
    let data = v.verify::<MyClaims>(&token).unwrap();
    assert_eq!(
        data.claims,
        MyClaims {
            sub: "alice".into(),
            exp: (NOW + 9) as u64,
            roles: vec!["admin".into()],
            tenant: None
        }
    );
    assert_eq!(data.header.alg, Algorithm::HS256);
    // A payload that does not fit the type is an invalid_claim, after all checks passed.
    let bad = sign(&json!({"sub": "alice", "exp": NOW + 9, "roles": "admin"}));
    let err = v.verify::<MyClaims>(&bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidClaim);
    // Or into a JSON map.
    let map = v
        .verify::<serde_json::Map<String, Value>>(&token)
        .unwrap()
        .claims;
    assert_eq!(map["roles"], json!(["admin"]));
}

#[test]
fn checks_run_after_the_signature() {
    // An expired token with a bad signature reports the signature, not the expiry.
    let other = Signer::new(SigningKey::hmac(&[9u8; 64]).unwrap(), Algorithm::HS256)
        .unwrap()
        .sign(&json!({"exp": 1}))
        .unwrap();
    assert_eq!(
        verify_at(NOW, base(), &other).unwrap_err().kind(),
        ErrorKind::InvalidSignature
    );
}

/// Values the token supplies are cut in messages: a hostile token cannot
/// make an error line of tens of kilobytes (and they stay escaped).
#[test]
fn token_values_in_messages_are_cut() {
    let long = "i".repeat(15_000);
    let token = sign(&json!({"exp": NOW + 100, "iss": long, "sub": long, "aud": [long, "x"]}));
    for v in [
        base().audience("x").issuer("https://issuer"),
        base().audience("x").subject("alice"),
        base().audience("my-api"),
    ] {
        let err = verify_at(NOW, v, &token).unwrap_err();
        let message = err.to_string();
        assert!(
            message.len() < 1_000,
            "{} bytes: {}",
            message.len(),
            &message[..200]
        );
        assert!(message.contains("(15000 bytes)"), "{message}");
    }
    let short = verify_at(
        NOW,
        base().issuer("https://issuer"),
        &sign(&json!({"exp": NOW + 100, "iss": "evil\n"})),
    )
    .unwrap_err()
    .to_string();
    assert!(short.contains("\"evil\\n\""), "{short}");
}
