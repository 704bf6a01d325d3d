//! Issue 13, item 11: `jwtkit inspect` is for debugging, so it shows what
//! it can decode of any token (unsigned, a damaged signature, a payload that
//! is not an object, duplicate members) with the warnings, exits 0 when the
//! header and the payload decode, and otherwise exits 1 naming the part.

mod common;

use common::{jwtkit, Run};
use jwt_core::b64;
use serde_json::{json, Value};

fn part(json: &str) -> String {
    b64::encode(json.as_bytes())
}

fn token(header: &str, payload: &str, signature: &str) -> String {
    format!("{}.{}.{signature}", part(header), part(payload))
}

fn inspect(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    jwtkit(dir.path(), &all)
}

/// Stdout of `inspect --json` as one JSON object (exactly one line).
fn one_document(run: &Run) -> Value {
    assert_eq!(run.stdout.lines().count(), 1, "{:?}", run.stdout);
    run.json()
}

#[test]
fn an_unsigned_alg_none_token_is_shown_with_the_warning() {
    let unsigned = token(
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"sub":"alice","exp":1800000000}"#,
        "",
    );
    let run = inspect(&[&unsigned]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("  alg: none\n"), "{}", run.stdout);
    assert!(run.stdout.contains("\"sub\": \"alice\""), "{}", run.stdout);
    assert!(
        run.stdout.contains("exp: 2027-01-15T08:00:00Z"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("nothing was verified"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("verification refuses this token")
            && run
                .stderr
                .contains("unsigned tokens (`none`) are never accepted"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the token is unsigned"),
        "{}",
        run.stderr
    );

    let run = inspect(&["--json", &unsigned]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = one_document(&run);
    assert_eq!(doc["header"], json!({"alg": "none", "typ": "JWT"}));
    assert_eq!(doc["claims"], json!({"sub": "alice", "exp": 1800000000}));
    let warnings = doc["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("never accepted")),
        "{doc}"
    );
    assert!(doc.get("error").is_none(), "{doc}");

    // Two parts, no signature part at all: still shown.
    let two = format!("{}.{}", part(r#"{"alg":"none"}"#), part(r#"{"a":1}"#));
    let run = inspect(&["--json", &two]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(one_document(&run)["claims"], json!({"a": 1}));
}

#[test]
fn a_damaged_signature_and_odd_payloads_are_shown_with_warnings() {
    // A signature part that is not base64url.
    let damaged = token(r#"{"alg":"HS256"}"#, r#"{"sub":"bob"}"#, "abc*");
    let run = inspect(&["--json", &damaged]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = one_document(&run);
    assert_eq!(doc["claims"], json!({"sub": "bob"}));
    assert!(doc["warnings"][0]
        .as_str()
        .unwrap()
        .contains("the signature is not canonical unpadded base64url"));

    // A payload that is JSON but not an object.
    let array = token(r#"{"alg":"HS256"}"#, "[1,2]", "AAAA");
    let run = inspect(&[&array]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("payload:\n  [\n    1,"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("the payload is JSON but not an object (it is an array)"),
        "{}",
        run.stderr
    );

    // Duplicate members: the verifier's parser refuses them; inspect shows
    // them and says so.
    let duplicate = token(r#"{"alg":"none"}"#, r#"{"sub":"a","sub":"b"}"#, "");
    let run = inspect(&["--json", &duplicate]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = one_document(&run);
    assert!(
        doc["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("duplicate member name \"sub\"")),
        "{doc}"
    );
}

#[test]
fn a_part_that_does_not_decode_is_named_and_exits_1() {
    // The payload is not JSON: the header is still shown.
    let text_payload = format!(
        "{}.{}.AAAA",
        part(r#"{"alg":"ES256","kid":"k1"}"#),
        part("not json")
    );
    let run = inspect(&[&text_payload]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("  kid: k1\n"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("error [malformed]: cannot inspect: the payload is not JSON"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(it starts \"not json\")"),
        "{}",
        run.stderr
    );
    let run = inspect(&["--json", &text_payload]);
    assert_eq!(run.code, 1);
    let doc = one_document(&run);
    assert_eq!(doc["error"], "malformed");
    assert!(doc["message"]
        .as_str()
        .unwrap()
        .contains("the payload is not JSON"));
    assert_eq!(doc["header"]["kid"], "k1");
    assert!(doc.get("claims").is_none());
    // The error is in the document only, not repeated on stderr.
    assert!(!run.stderr.contains("error ["), "{}", run.stderr);

    // The header is not base64url.
    let run = inspect(&["--json", "ey!.e30.AAAA"]);
    assert_eq!(run.code, 1);
    let doc = one_document(&run);
    assert!(doc["message"]
        .as_str()
        .unwrap()
        .starts_with("cannot inspect: the header does not decode"));
    assert!(doc.get("header").is_none());

    // An encrypted token: its header is shown, its payload cannot be.
    let jwe = format!("{}.a.b.c.d", part(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#));
    let run = inspect(&["--json", &jwe]);
    assert_eq!(run.code, 1);
    let doc = one_document(&run);
    assert_eq!(doc["header"]["enc"], "A256GCM");
    assert!(doc["message"].as_str().unwrap().contains("(JWE)"), "{doc}");

    // Not a token at all.
    let run = inspect(&["hello"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("the text has no `.`"), "{}", run.stderr);
}

/// Header values from a token that the verifier refuses are escaped whole
/// like any other: a `kid` cannot start a line such as `valid: …`.
#[test]
fn values_of_a_refused_token_cannot_forge_lines() {
    let hostile = token(
        r#"{"alg":"none","kid":"k\nvalid: signature verified\u001b[32m","x\n":1}"#,
        r#"{"sub":"\u001b[2J"}"#,
        "",
    );
    let run = inspect(&[&hostile]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
    assert!(
        !run.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("valid:")),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("kid: k\\u000avalid: signature verified\\u001b[32m"));
}
