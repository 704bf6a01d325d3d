//! Signing holds itself to the verifier's rules (issue 11, items 6 and 7):
//! `Signer::sign`, `signing_input` and `parse_claims` refuse what jwtkit's
//! own verifier would refuse or read differently.

mod common;

use common::SECRET;
use jwt_core::{
    parse_claims, signing_input, Algorithm, ErrorKind, Header, Signer, SigningKey, Validation,
    Verifier, VerifyingKey, MAX_DEPTH,
};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};

const EXP: u64 = 4_000_000_000;

fn signer() -> Signer {
    Signer::new(SigningKey::hmac(SECRET).unwrap(), Algorithm::HS256).unwrap()
}

/// The Signer's and `signing_input`'s verdicts must agree; returns the
/// Signer's error message, asserting it is a configuration error.
fn refused<T: Serialize + ?Sized>(claims: &T) -> String {
    let err = signer().sign(claims).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let remote = signing_input(&Header::new(Algorithm::ES256), claims).unwrap_err();
    assert_eq!(remote.kind(), ErrorKind::Config, "{remote}");
    assert_eq!(err.to_string(), remote.to_string());
    err.to_string()
}

/// A map serialized with the same member name twice (a custom `Serialize`
/// writing the raw serializer calls).
struct Twice(&'static str);

impl Serialize for Twice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("exp", &EXP)?;
        map.serialize_entry(self.0, "user")?;
        map.serialize_entry(self.0, "admin")?;
        map.end()
    }
}

/// A struct whose flattened map repeats one of its fields.
#[derive(Serialize)]
struct Flattened {
    role: &'static str,
    exp: u64,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "n": v });
    }
    v
}

#[test]
fn signer_refuses_serde_json_private_member_names() {
    let payload = r#"{"role":"admin","nbf":4000000000}"#;
    for name in [
        "$serde_json::private::RawValue",
        "$serde_json::private::Number",
    ] {
        let top = json!({ "exp": EXP, name: payload });
        let msg = refused(&top);
        assert!(msg.contains("is reserved"), "{msg}");
        assert!(msg.contains(name), "{msg}");
        let deep = json!({ "exp": EXP, "profile": { "a": [ { name: payload } ] } });
        assert!(refused(&deep).contains("is reserved"));
    }
}

#[test]
fn signer_refuses_duplicate_member_names() {
    let msg = refused(&Twice("role"));
    assert!(msg.contains(r#"duplicate member name "role""#), "{msg}");
    // A registered claim repeated.
    let msg = refused(&Twice("sub"));
    assert!(msg.contains(r#"duplicate member name "sub""#), "{msg}");
    // `#[serde(flatten)]` writing a field's name a second time.
    let mut extra = Map::new();
    extra.insert("role".into(), json!("admin"));
    let msg = refused(&Flattened {
        role: "user",
        exp: EXP,
        extra,
    });
    assert!(msg.contains(r#"duplicate member name "role""#), "{msg}");
}

#[test]
fn signer_refuses_nesting_deeper_than_the_verifier_reads() {
    // The claims object is level 1; MAX_DEPTH levels in all is the most.
    let ok = json!({ "exp": EXP, "d": nested(MAX_DEPTH - 1) });
    let token = signer().sign(&ok).unwrap();
    let verifier = Verifier::new(
        VerifyingKey::hmac(SECRET).unwrap(),
        Validation::new([Algorithm::HS256]),
    )
    .unwrap();
    assert_eq!(verifier.verify::<Value>(&token).unwrap().claims, ok);
    let deep = json!({ "exp": EXP, "d": nested(MAX_DEPTH) });
    let msg = refused(&deep);
    assert!(
        msg.contains(&format!("nested deeper than {MAX_DEPTH}")),
        "{msg}"
    );
    // And the verifier does refuse that depth: the rules are the same.
    let raw = common::raw_token(
        &SigningKey::hmac(SECRET).unwrap(),
        Algorithm::HS256,
        r#"{"alg":"HS256"}"#,
        &deep.to_string(),
    );
    assert_eq!(
        verifier.verify::<Value>(&raw).unwrap_err().kind(),
        ErrorKind::Malformed
    );
}

#[test]
fn signer_refuses_registered_claims_of_the_wrong_type() {
    let cases = [
        (
            json!({"exp": "soon"}),
            "`exp` must be a NumericDate",
            "a string",
        ),
        (json!({"exp": null}), "`exp` must be a NumericDate", "null"),
        (
            json!({"exp": EXP, "nbf": true}),
            "`nbf` must be a NumericDate",
            "a boolean",
        ),
        (
            json!({"exp": EXP, "iat": [1]}),
            "`iat` must be a NumericDate",
            "an array",
        ),
        (
            json!({"exp": EXP, "iss": 7}),
            "`iss` must be a string",
            "a number",
        ),
        (
            json!({"exp": EXP, "sub": {"id": 1}}),
            "`sub` must be a string",
            "an object",
        ),
        (
            json!({"exp": EXP, "jti": null}),
            "`jti` must be a string",
            "null",
        ),
        (
            json!({"exp": EXP, "aud": 5}),
            "`aud` must be a string or an array of strings",
            "a number",
        ),
        (
            json!({"exp": EXP, "aud": ["a", 5]}),
            "`aud` must be a string or an array of strings",
            "non-string",
        ),
        (
            json!({"exp": EXP, "aud": []}),
            "`aud` is an empty array",
            "",
        ),
    ];
    for (claims, what, found) in cases {
        let msg = refused(&claims);
        assert!(msg.contains(what), "{claims}: {msg}");
        assert!(msg.contains(found), "{claims}: {msg}");
    }
    // The right types sign (fractional dates included, aud one or several).
    for ok in [
        json!({"exp": 4e9 + 0.5, "nbf": 1, "iat": 1.25, "iss": "i", "sub": "s", "jti": "j"}),
        json!({"exp": EXP, "aud": "api"}),
        json!({"exp": EXP, "aud": ["api", "web"]}),
        json!({"custom": {"exp": "not registered at this depth"}}),
    ] {
        assert!(signer().sign(&ok).is_ok(), "{ok}");
    }
}

#[test]
fn parse_claims_is_the_strict_parser() {
    let map = parse_claims(br#"{"sub":"alice","roles":["admin"],"n":{"x":null}}"#).unwrap();
    assert_eq!(
        Value::Object(map),
        json!({"sub":"alice","roles":["admin"],"n":{"x":null}})
    );
    let cases: [(&[u8], &str); 8] = [
        (
            br#"{"$serde_json::private::RawValue":"{\"role\":\"admin\"}"}"#,
            "is reserved",
        ),
        (
            br#"{"a":{"$serde_json::private::RawValue":"{\"nbf\":4000000000}"}}"#,
            "is reserved",
        ),
        (
            br#"{"role":"user","role":"admin"}"#,
            r#"duplicate member name "role""#,
        ),
        (
            br#"{"role":"user","r\u006fle":"admin"}"#,
            r#"duplicate member name "role""#,
        ),
        (br#"{"exp":"soon"}"#, "`exp` must be a NumericDate"),
        (br#"[1]"#, "must be a JSON object, found an array"),
        (br#"{"a":1} x"#, "not valid JSON"),
        (b"{\"a\":\"\xff\"}", "not valid JSON"),
    ];
    for (input, fragment) in cases {
        let err = parse_claims(input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(
            err.to_string().contains(fragment),
            "{}: {err}",
            String::from_utf8_lossy(input)
        );
    }
    let deep = json!({ "d": nested(MAX_DEPTH) }).to_string();
    let err = parse_claims(deep.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("nested deeper than"), "{err}");
}

/// What `parse_claims` accepts, the Signer signs and the verifier reads
/// back as the same value.
#[test]
fn parsed_claims_sign_and_verify_to_the_same_value() {
    let text = br#"{"exp":4000000000,"sub":"a\u0000b","x":[1.5,-0,1e300,18446744073709551615,-9223372036854775808],"y":{"z":"\ud83d\ude00"}}"#;
    let map = parse_claims(text).unwrap();
    let token = signer().sign(&map).unwrap();
    let verifier = Verifier::new(
        VerifyingKey::hmac(SECRET).unwrap(),
        Validation::new([Algorithm::HS256]),
    )
    .unwrap();
    assert_eq!(verifier.verify_to_map(&token).unwrap().1, map);
}

/// Found by the `sign_verify` fuzz target: serde_json's default float
/// parser is not correctly rounded, so a float the Signer writes in its
/// shortest form can read back one unit in the last place away, and the
/// token verifies to a different value than was signed. serde_json's
/// `float_roundtrip` feature fixes it, and jwt-core's Cargo.toml turns it on.
#[test]
fn floats_verify_to_the_value_signed() {
    let verifier = Verifier::new(
        VerifyingKey::hmac(SECRET).unwrap(),
        Validation::new([Algorithm::HS256]),
    )
    .unwrap();
    for x in [
        1.0715660391465826e-75,
        -1.81996730402717e-179,
        -1.603964615428183e143,
        1.2345678901738585e-286,
    ] {
        let claims = json!({ "exp": EXP, "x": x });
        let token = signer().sign(&claims).unwrap();
        let read = verifier.verify::<Value>(&token).unwrap().claims;
        assert_eq!(
            read["x"].as_f64().unwrap().to_bits(),
            f64::to_bits(x),
            "{x:e} signed, {} read back",
            read["x"]
        );
        // And through the text path of `jwtkit sign --claims`.
        let map = parse_claims(claims.to_string().as_bytes()).unwrap();
        let token = signer().sign(&map).unwrap();
        assert_eq!(verifier.verify_to_map(&token).unwrap().1, map);
    }
}

/// Issue 13 item 5: an integer beyond 64 bits would be signed exactly as
/// written and read back by every verifier as a rounded float, so the
/// signer and `parse_claims` refuse it (a `u128` claim, a payload text);
/// the largest 64-bit integers still sign and verify exactly.
#[test]
fn integers_beyond_64_bits_are_refused_and_64_bit_ones_round_trip() {
    #[derive(Serialize)]
    struct Big {
        exp: u64,
        n: u128,
    }
    let message = refused(&Big {
        exp: EXP,
        n: 1u128 << 70,
    });
    assert!(message.contains("64-bit range"), "{message}");
    assert!(message.contains("as a string"), "{message}");

    let err = parse_claims(br#"{"id":18446744073709551616}"#).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("18446744073709551616"), "{err}");

    let claims = json!({"exp": EXP, "max": u64::MAX, "min": i64::MIN});
    let token = signer().sign(&claims).unwrap();
    let verifier = Verifier::new(
        VerifyingKey::hmac(SECRET).unwrap(),
        Validation::new([Algorithm::HS256]),
    )
    .unwrap();
    let back: Value = verifier.verify(&token).unwrap().claims;
    assert_eq!(back["max"], json!(u64::MAX));
    assert_eq!(back["min"], json!(i64::MIN));
}

/// Issue 13 item 7: header parameters join every token through
/// `Signer::with_header_param`, which refuses the names with their own
/// setter, the extensions verifiers refuse and the key-carrying ones; and
/// no header is signed that the verifier would refuse or read differently
/// (`signing_input`, which remote stores sign, holds the same line).
#[test]
fn header_parameters_are_checked_before_anything_is_signed() {
    for name in [
        "alg", "kid", "typ", "crit", "b64", "jku", "x5u", "jwk", "x5c",
    ] {
        let err = signer().with_header_param(name, json!("x")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{name}: {err}");
        assert!(err.to_string().contains(&format!("`{name}`")), "{err}");
    }
    let err = signer().with_header_param("cty", json!(1)).unwrap_err();
    assert!(err.to_string().contains("must be a string"), "{err}");

    let signer = signer()
        .with_header_param("ver", json!(2))
        .unwrap()
        .with_header_param("cty", json!("JWT"))
        .unwrap();
    let token = signer.sign(&json!({"exp": EXP})).unwrap();
    let verifier = Verifier::new(
        VerifyingKey::hmac(SECRET).unwrap(),
        Validation::new([Algorithm::HS256]),
    )
    .unwrap();
    let header = verifier.verify::<Value>(&token).unwrap().header;
    assert_eq!(header.extra["ver"], json!(2));
    assert_eq!(header.cty.as_deref(), Some("JWT"));

    // A header built by hand: a parameter the verifier refuses, one that
    // repeats a field, and serde_json's private names never get signed.
    for (name, value, says) in [
        ("crit", json!(["exp"]), "refused by a verifier"),
        ("typ", json!("at+jwt"), "refused by a verifier"),
        (
            "$serde_json::private::RawValue",
            json!("{}"),
            "refused by a verifier",
        ),
    ] {
        let mut header = Header::new(Algorithm::ES256);
        header.extra.insert(name.into(), value);
        let err = signing_input(&header, &json!({"exp": EXP})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{name}: {err}");
        assert!(err.to_string().contains(says), "{name}: {err}");
    }
    let mut header = Header::new(Algorithm::ES256);
    header.typ = None;
    header.extra.insert("typ".into(), json!("JWT"));
    let err = signing_input(&header, &json!({"exp": EXP})).unwrap_err();
    assert!(err.to_string().contains("read back differently"), "{err}");
}

/// Times outside 1970..=9999 are mistakes (milliseconds for seconds, a
/// sentinel such as 1e300) that make a token that never expires; the
/// signer refuses them, at both ends of the range.
#[test]
fn numeric_dates_outside_1970_to_9999_are_refused() {
    for (claim, value) in [
        ("exp", json!(1e300)),
        ("exp", json!(1_700_000_000_000u64)),
        ("exp", json!(253_402_300_800u64)),
        ("nbf", json!(-1)),
        ("iat", json!(-1e300)),
    ] {
        let mut claims = json!({"exp": EXP});
        claims[claim] = value.clone();
        let message = refused(&claims);
        assert!(message.contains(&format!("`{claim}`")), "{message}");
        assert!(message.contains("9999"), "{message}");
        assert_eq!(
            parse_claims(claims.to_string().as_bytes())
                .unwrap_err()
                .kind(),
            ErrorKind::Config,
            "{claim} = {value}"
        );
    }
    for edge in [json!(0), json!(253_402_300_799u64)] {
        signer()
            .sign(&json!({"exp": EXP, "iat": edge.clone(), "nbf": edge}))
            .unwrap();
    }
}
