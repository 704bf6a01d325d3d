//! The fused pass, and the flat path before it, must never accept what the
//! two-pass path refuses, and must produce the same value and registered
//! claims when they accept.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{flat, parse};
use crate::claims::Registered;

fn summary(r: &Registered<'_>) -> String {
    let mut nulls: Vec<_> = r.nulls.iter().map(|n| n.to_string()).collect();
    nulls.sort();
    format!(
        "exp={:?} nbf={:?} iat={:?} iss={:?} sub={:?} aud={:?} aud_items={:?} jti={:?} \
         names={:?} nulls={nulls:?}",
        r.exp,
        r.nbf,
        r.iat,
        r.iss,
        r.sub,
        r.aud,
        r.aud_items,
        r.jti,
        r.names.sorted()
    )
}

/// Runs both paths; panics if the fused one accepts something the
/// two-pass one does not, or disagrees with it. Returns whether the fused
/// path was taken.
fn agree<T: DeserializeOwned + PartialEq + Debug>(payload: &str) -> bool {
    agree_flat::<T>(payload);
    let mut fused_reg = Registered::default();
    let fused = parse::<T>(payload, &mut fused_reg);
    let two_pass = Registered::parse(payload)
        .ok()
        .and_then(|reg| serde_json::from_str::<T>(payload).ok().map(|t| (t, reg)));
    match (fused, two_pass) {
        (None, _) => false,
        (Some(t), Some((expected, reg))) => {
            assert_eq!(t, expected, "different value for {payload}");
            assert_eq!(
                summary(&fused_reg),
                summary(&reg),
                "different registered claims for {payload}"
            );
            true
        }
        (Some(t), None) => {
            panic!("the fused pass accepted {payload} as {t:?}; the two-pass path refuses it")
        }
    }
}

/// The same for the flat path: returns whether it was taken.
fn agree_flat<T: DeserializeOwned + PartialEq + Debug>(payload: &str) -> bool {
    let mut flat_reg = Registered::default();
    let flat = flat::parse::<T>(payload, &mut flat_reg);
    let two_pass = Registered::parse(payload)
        .ok()
        .and_then(|reg| serde_json::from_str::<T>(payload).ok().map(|t| (t, reg)));
    match (flat, two_pass) {
        (None, _) => false,
        (Some(t), Some((expected, reg))) => {
            assert_eq!(t, expected, "flat: different value for {payload}");
            assert_eq!(
                summary(&flat_reg),
                summary(&reg),
                "flat: different registered claims for {payload}"
            );
            true
        }
        (Some(t), None) => {
            panic!("the flat path accepted {payload} as {t:?}; the two-pass path refuses it")
        }
    }
}

#[derive(Debug, PartialEq, Deserialize)]
struct Sample {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Loose {
    exp: Option<f64>,
    aud: Option<Vec<String>>,
    sub: Option<String>,
    scope: Option<String>,
    role: Option<Role>,
    nested: Option<Nested>,
    tags: Option<Vec<Value>>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    Admin,
    User,
    Custom(String),
    Pair(u8, u8),
    Named { level: u8 },
}

#[derive(Debug, PartialEq, Deserialize)]
struct Nested {
    a: Option<u32>,
    b: Option<Map<String, Value>>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Flat {
    sub: String,
    #[serde(flatten)]
    rest: HashMap<String, Value>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Strict {
    sub: String,
    exp: i64,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Newtype(BTreeMap<String, Value>);

fn all_types(payload: &str) -> Vec<bool> {
    vec![
        agree::<Map<String, Value>>(payload),
        agree::<Value>(payload),
        agree::<Sample>(payload),
        agree::<Loose>(payload),
        agree::<Flat>(payload),
        agree::<Strict>(payload),
        agree::<Newtype>(payload),
        agree::<HashMap<String, Value>>(payload),
        agree::<Option<Map<String, Value>>>(payload),
    ]
}

const SAMPLE: &str = r#"{"iss":"https://auth.example.com","sub":"user-1234","aud":"my-api","exp":4000000000,"nbf":1700000000,"iat":1700000000}"#;

#[test]
fn typical_payloads_take_the_fused_path() {
    // `Loose` wants `aud` as an array and `Strict` refuses unknown
    // members: both paths refuse those.
    assert_eq!(
        all_types(SAMPLE),
        [true, true, true, false, true, false, true, true, true]
    );
    for payload in [
        r#"{"sub":"a","exp":1.5,"aud":["x","y"],"role":"admin"}"#,
        r#"{"sub":"a","role":{"custom":"x"},"nested":{"a":1,"b":{"k":[1,{"z":null}]}}}"#,
        r#"{"sub":"a","role":{"pair":[1,2]},"tags":[1,"x",null,{"q":1}]}"#,
        r#"{"sub":"a","role":{"named":{"level":3}},"scope":null,"extra":{"x":[[]]}}"#,
        r#"{"sub":"a","\u0065xp":5,"iss":null,"jti":"j"}"#,
    ] {
        assert!(agree::<Loose>(payload), "{payload}");
        assert!(agree::<Map<String, Value>>(payload), "{payload}");
        assert!(agree::<Flat>(payload), "{payload}");
    }
    assert!(agree::<Strict>(r#"{"sub":"a","exp":-3}"#));
}

#[test]
fn what_the_strict_pass_refuses_is_never_fused() {
    let deep_ok = format!("{}1{}", "[".repeat(31), "]".repeat(31));
    let too_deep = format!("{}1{}", "[".repeat(32), "]".repeat(32));
    let deep_obj = format!("{}1{}", r#"{"a":"#.repeat(32), "}".repeat(32));
    for payload in [
        // duplicates at the top, in read fields, in skipped fields
        r#"{"sub":"a","sub":"b"}"#,
        r#"{"exp":1,"\u0065xp":2}"#,
        r#"{"sub":"a","nested":{"a":1,"a":2}}"#,
        r#"{"sub":"a","nested":{"b":{"k":1,"k":2}}}"#,
        r#"{"sub":"a","other":{"k":1,"k":2}}"#,
        r#"{"sub":"a","other":[{"k":1,"k":2}]}"#,
        r#"{"sub":"a","tags":[{"k":1,"k":2}]}"#,
        r#"{"sub":"a","role":{"named":{"level":1,"level":2}}}"#,
        r#"{"sub":"a","x":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"a":14}}"#,
        // not an object, or not JSON
        r#"["sub"]"#,
        r#""sub""#,
        "null",
        r#"{"sub":"a"} x"#,
        r#"{"sub":"a",}"#,
        "",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!(r#"{{"sub":"a","other":{too_deep}}}"#),
        format!(r#"{{"sub":"a","tags":{too_deep}}}"#),
        format!(r#"{{"sub":"a","nested":{{"b":{deep_obj}}}}}"#),
        format!(r#"{{"sub":"a","other":{deep_obj}}}"#),
    ]) {
        let taken = all_types(&payload);
        assert!(
            taken.iter().all(|t| !t),
            "fused path taken for {payload}: {taken:?}"
        );
    }
    // Just inside the limit is fine on both paths.
    let ok = format!(r#"{{"sub":"a","tags":{deep_ok}}}"#);
    assert!(agree::<Loose>(&ok));
}

#[derive(Debug, Deserialize)]
struct Raw {
    sub: String,
    extra: Box<serde_json::value::RawValue>,
}

impl PartialEq for Raw {
    fn eq(&self, other: &Raw) -> bool {
        self.sub == other.sub && self.extra.get() == other.extra.get()
    }
}

#[test]
fn raw_values_are_never_fused() {
    // serde_json skips a `RawValue` without visiting it, so the fused
    // pass could not check it: it must leave such payloads to two passes.
    assert!(!agree::<Raw>(r#"{"sub":"a","extra":{"k":1,"k":2}}"#));
    assert!(!agree::<Raw>(r#"{"sub":"a","extra":{"k":1}}"#));
    assert!(serde_json::from_str::<Raw>(r#"{"sub":"a","extra":{"k":1,"k":2}}"#).is_ok());
    assert!(Registered::parse(r#"{"sub":"a","extra":{"k":1,"k":2}}"#).is_err());
}

#[derive(Debug, PartialEq, Deserialize)]
struct TupleAud {
    exp: u64,
    aud: (String,),
}

#[derive(Debug, PartialEq, Deserialize)]
struct Bytes {
    exp: u64,
    name: std::ffi::CString,
}

#[derive(Debug, PartialEq, Deserialize)]
enum Tree {
    Leaf,
    Node(Box<Tree>),
}

#[derive(Debug, PartialEq, Deserialize)]
struct Trees {
    exp: u64,
    t: Tree,
}

fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    Ok(Vec::<Value>::deserialize(d).unwrap_or_default())
}

#[derive(Debug, PartialEq, Deserialize)]
struct Swallows {
    exp: u64,
    #[serde(deserialize_with = "lenient")]
    tags: Vec<Value>,
}

#[test]
fn reviewed_differentials_stay_closed() {
    // An array with elements the caller's tuple does not read.
    assert!(!agree::<TupleAud>(r#"{"exp":4000000000,"aud":["a","b"]}"#));
    assert!(agree::<TupleAud>(r#"{"exp":4000000000,"aud":["a"]}"#));
    // Byte strings: serde_json does not validate them.
    assert!(!agree::<Bytes>(r#"{"exp":1,"name":"\ud800"}"#));
    assert!(!agree::<Bytes>("{\"exp\":1,\"name\":\"a\u{1}b\"}"));
    // A unit variant written as an object, at the depth limit.
    let deep = |n: usize, leaf: &str| {
        format!(
            r#"{{"exp":1,"t":{}{leaf}{}}}"#,
            r#"{"Node":"#.repeat(n),
            "}".repeat(n)
        )
    };
    assert!(!agree::<Trees>(&deep(31, r#"{"Leaf":null}"#)));
    assert!(agree::<Trees>(&deep(20, r#"{"Leaf":null}"#)));
    assert!(agree::<Trees>(&deep(20, r#""Leaf""#)));
    // A depth error the caller's type swallows.
    let too_deep = format!(r#"{{"exp":1,"tags":{}{}}}"#, "[".repeat(32), "]".repeat(32));
    assert!(!agree::<Swallows>(&too_deep));
    assert!(agree::<Swallows>(r#"{"exp":1,"tags":[1,[2]]}"#));
}

#[test]
fn serde_json_private_member_names_are_refused() {
    let hidden = r#"{"exp":1,"d":{"$serde_json::private::RawValue":"{\"a\":1,\"a\":2}"}}"#;
    assert!(Registered::parse(hidden).is_err());
    assert!(crate::json::parse_object(hidden.as_bytes(), "the payload").is_err());
    all_types(hidden);
    let top = r#"{"$serde_json::private::Number":"1"}"#;
    assert!(Registered::parse(top).is_err());
    all_types(top);
}

#[test]
fn odd_registered_claims_agree_or_fall_back() {
    for payload in [
        r#"{"exp":"soon","sub":"a"}"#,
        r#"{"exp":null,"sub":"a"}"#,
        r#"{"exp":true,"sub":"a"}"#,
        r#"{"exp":[1],"sub":"a"}"#,
        r#"{"exp":{"a":1},"sub":"a"}"#,
        r#"{"iss":{"a":1},"sub":"a"}"#,
        r#"{"aud":[1,"x"],"sub":"a"}"#,
        r#"{"aud":[],"sub":"a"}"#,
        r#"{"aud":"x","sub":"a"}"#,
        r#"{"sub":1}"#,
        r#"{"jti":["a"],"sub":"a"}"#,
        r#"{"exp":18446744073709551616,"sub":"a"}"#,
        r#"{"exp":-1,"sub":"a"}"#,
        r#"{"exp":1e3,"sub":"a"}"#,
        r#"{"sub":"\u00e9\n","iss":"a\"b"}"#,
    ] {
        all_types(payload);
    }
}

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("exp"),
        Just("nbf"),
        Just("iat"),
        Just("iss"),
        Just("sub"),
        Just("aud"),
        Just("jti"),
        Just("scope"),
        Just("role"),
        Just("nested"),
        Just("tags"),
        Just("a"),
        Just("b"),
        Just("admin"),
        Just("\\u0065xp"),
        Just("x\\\"y"),
    ]
    .prop_map(|s| format!("\"{s}\""))
}

fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("0".to_owned()),
        Just("-7".to_owned()),
        Just("1.5".to_owned()),
        Just("4000000000".to_owned()),
        json_string(),
    ];
    leaf.prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((json_string(), inner), 0..6).prop_map(|members| {
                let body: Vec<String> = members
                    .into_iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

fn payload() -> impl Strategy<Value = String> {
    prop::collection::vec((json_string(), json_text()), 0..8).prop_map(|members| {
        let body: Vec<String> = members
            .into_iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

proptest! {
    // About a quarter of these payloads are free of duplicates and so
    // take the fused path for a map; the rest check that it bails out.
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn fused_never_disagrees_with_two_passes(p in payload()) {
        all_types(&p);
    }
}

#[test]
fn flat_payloads_take_the_flat_path() {
    for payload in [
        SAMPLE,
        "{}",
        " { \"sub\" : \"a\" ,\n\t\"exp\":0 } \r\n",
        r#"{"sub":"a","aud":["x","y"],"admin":true,"scope":null,"n":18446744073709551615}"#,
        r#"{"sub":"é ☃","aud":[],"exp":4000000000,"tags":[ "a" , "b" ]}"#,
    ] {
        assert!(agree_flat::<Map<String, Value>>(payload), "{payload}");
        assert!(agree_flat::<Value>(payload), "{payload}");
        assert!(agree_flat::<HashMap<String, Value>>(payload), "{payload}");
        assert!(agree_flat::<Newtype>(payload), "{payload}");
        assert!(
            agree_flat::<Option<Map<String, Value>>>(payload),
            "{payload}"
        );
    }
    assert!(agree_flat::<Sample>(SAMPLE));
    assert!(agree_flat::<Flat>(SAMPLE));
    assert!(agree_flat::<TupleAud>(r#"{"exp":4000000000,"aud":["a"]}"#));
    assert!(agree_flat::<Loose>(
        r#"{"sub":"a","aud":["x"],"role":"admin","exp":3}"#
    ));
}

#[test]
fn what_the_flat_path_cannot_read_exactly_goes_on() {
    for payload in [
        // escapes, control characters, signs, fractions, exponents, big
        // numbers, leading zeros, nesting, mixed arrays, bad syntax
        r#"{"sub":"a\"b"}"#,
        r#"{"\u0073ub":"a"}"#,
        "{\"sub\":\"a\u{1}b\"}",
        r#"{"exp":-1}"#,
        r#"{"exp":-0}"#,
        r#"{"exp":1.5}"#,
        r#"{"exp":1e3}"#,
        r#"{"exp":1E3}"#,
        r#"{"exp":18446744073709551616}"#,
        r#"{"exp":01}"#,
        r#"{"a":{}}"#,
        r#"{"a":[1]}"#,
        r#"{"a":["x",1]}"#,
        r#"{"a":[["x"]]}"#,
        r#"{"a":tru}"#,
        r#"{"a":truex}"#,
        r#"{"a":"x",}"#,
        r#"{,"a":"x"}"#,
        r#"{"a":"x""b":1}"#,
        r#"{"a" "x"}"#,
        r#"{"a":"x"} x"#,
        r#"{"a":"x"}}"#,
        r#"{"a":"x""#,
        r#"{"a":"x"#,
        "{",
        "",
        "[]",
        // duplicates and private names, which the two-pass path refuses
        r#"{"sub":"a","sub":"b"}"#,
        r#"{"x":1,"x":2}"#,
        r#"{"$serde_json::private::RawValue":"1"}"#,
    ] {
        for taken in [
            agree_flat::<Map<String, Value>>(payload),
            agree_flat::<Value>(payload),
            agree_flat::<Loose>(payload),
            agree_flat::<Flat>(payload),
        ] {
            assert!(!taken, "flat path taken for {payload}");
        }
    }
    // The caller's type decides the rest, as with serde_json.
    assert!(!agree_flat::<Strict>(r#"{"sub":"a","exp":3,"x":1}"#));
    assert!(!agree_flat::<TupleAud>(
        r#"{"exp":4000000000,"aud":["a","b"]}"#
    ));
    // serde_json reads a plain string as bytes; so does the replay.
    assert!(agree_flat::<Bytes>(r#"{"exp":1,"name":"a"}"#));
}

fn flat_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("0".to_owned()),
        Just("00".to_owned()),
        Just("-0".to_owned()),
        Just("7".to_owned()),
        Just("1.5".to_owned()),
        Just("2e9".to_owned()),
        Just("4000000000".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("\"x\"".to_owned()),
        Just("\"a\\\"b\"".to_owned()),
        Just("\"\u{7}\"".to_owned()),
        Just("\"é\"".to_owned()),
        Just("[]".to_owned()),
        Just("[\"a\",\"b\"]".to_owned()),
        Just("[\"a\",1]".to_owned()),
        Just("{}".to_owned()),
    ]
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(""), Just(" "), Just("\n\t"), Just("\u{b}")]
}

/// Objects of up to six members with these names and values, whitespace
/// around every token.
fn flat_object(
    name: impl Strategy<Value = String>,
    value: impl Strategy<Value = String>,
) -> impl Strategy<Value = String> {
    prop::collection::vec((ws(), name, ws(), value, ws()), 0..7).prop_map(|members| {
        let body: Vec<String> = members
            .into_iter()
            .map(|(a, k, b, v, c)| format!("{a}{k}{b}:{v}{c}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

/// [`agree_flat`] for every claims type of these tests.
fn agree_flat_for_every_type(p: &str) {
    agree_flat::<Map<String, Value>>(p);
    agree_flat::<Value>(p);
    agree_flat::<Sample>(p);
    agree_flat::<Loose>(p);
    agree_flat::<Flat>(p);
    agree_flat::<Strict>(p);
    agree_flat::<Option<Map<String, Value>>>(p);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn flat_never_disagrees_with_two_passes(p in flat_object(json_string(), flat_value())) {
        agree_flat_for_every_type(&p);
    }
}

/// Numbers around the eight-digit step of the flat scanner: every length
/// up to past `u64::MAX`, leading zeros, fractions, exponents and stray
/// bytes right after the digits.
fn flat_number() -> impl Strategy<Value = String> {
    (
        "(0|[1-9])[0-9]{0,21}",
        prop_oneof![
            Just(""),
            Just(""),
            Just(".5"),
            Just("e3"),
            Just("E-1"),
            Just("x"),
            Just("-")
        ],
    )
        .prop_map(|(digits, tail)| format!("{digits}{tail}"))
}

/// Member names around the three-letter step: registered claims, other
/// short names, names with digits, non-ASCII letters, escapes and quotes.
fn flat_name() -> impl Strategy<Value = String> {
    prop_oneof![
        json_string(),
        "[a-zA-Z0-9_é:]{0,5}".prop_map(|s| format!("\"{s}\"")),
        Just("\"ex\\u0070\"".to_owned()),
        Just("\"e\\\"p\"".to_owned()),
        // Three raw bytes that are not a three-character name.
        Just("\"a\\\"\"".to_owned()),
        Just("\"\\\\a\"".to_owned()),
        Just("\"\u{1}ab\"".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn flat_numbers_and_short_names_never_disagree(
        p in flat_object(flat_name(), prop_oneof![flat_number(), flat_value()])
    ) {
        agree_flat_for_every_type(&p);
    }
}

#[test]
fn eight_digit_steps_read_every_length_exactly() {
    for text in [
        "0",
        "7",
        "12345678",
        "123456789",
        "4000000000",
        "99999999",
        "10000000",
        "18446744073709551615",
        "18446744073709551616",
        "012345678",
        "00000000",
        "1234567a",
        "12345678.0",
        "12345678e1",
        "9999999999999999999",
    ] {
        let payload = format!("{{\"exp\":{text}}}");
        let expected = serde_json::from_str::<Map<String, Value>>(&payload)
            .ok()
            .and_then(|m| m["exp"].as_u64());
        let mut reg = Registered::default();
        let flat = flat::parse::<Map<String, Value>>(&payload, &mut reg).map(|m| m["exp"].as_u64());
        match flat {
            // The flat path reads it exactly as serde_json does, or not at all.
            Some(n) => assert_eq!(n, expected, "{text}"),
            None => assert!(
                expected.is_none() || text.contains(['.', 'e']),
                "{text}: a plain u64 fell off the flat path"
            ),
        }
    }
}
