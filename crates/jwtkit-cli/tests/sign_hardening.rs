//! `jwtkit sign` through the real binary (issue 11): claims that would change
//! meaning on the way to the signer (item 6), tokens that could never be
//! valid (item 7), and the store's `max_token_lifetime` (item 15).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const NOW: i64 = 1_800_000_000;
const SECRET_ENV: &str = "JWTKIT_SIGN_HARDENING_SECRET";
const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `jwtkit` in `dir`; killed (and the test failed) after 60 s.
fn jwtkit(dir: &Path, args: &[&str]) -> Run {
    let out_path = dir.join("stdout.txt");
    let err_path = dir.join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(args)
        .current_dir(dir)
        .env(SECRET_ENV, SECRET)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn jwtkit");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("jwtkit {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(!stderr.contains("panicked"), "jwtkit panicked: {stderr}");
    Run {
        code: status.code().expect("exit code"),
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr,
    }
}

fn now() -> String {
    NOW.to_string()
}

/// `jwtkit sign` with the HMAC secret, at `NOW`, plus `extra`.
fn sign(dir: &Path, extra: &[&str]) -> Run {
    let now = now();
    let mut args = vec![
        "sign",
        "--alg",
        "HS256",
        "--secret-env",
        SECRET_ENV,
        "--now",
        &now,
    ];
    args.extend_from_slice(extra);
    jwtkit(dir, &args)
}

/// Asserts a usage/config refusal (exit 2, no token) whose message holds every fragment.
fn assert_refused(run: &Run, fragments: &[&str]) {
    assert_eq!(run.code, 2, "expected exit 2; stderr: {}", run.stderr);
    assert!(run.stdout.is_empty(), "no token on refusal: {}", run.stdout);
    for f in fragments {
        assert!(run.stderr.contains(f), "{f:?} not in: {}", run.stderr);
    }
}

fn payload(token: &str) -> Value {
    let part = token.trim().split('.').nth(1).expect("a JWS");
    let bytes = jwt_core::b64::decode(part.as_bytes(), "payload").unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

// ---- item 6: claims that change meaning on the way through -----------------

#[test]
fn claims_with_serde_json_private_member_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hidden = r#""{\"role\":\"admin\",\"nbf\":4000000000}""#;
    for claims in [
        // Top level: serde_json's Value would replace the whole object.
        format!(r#"{{"$serde_json::private::RawValue":{hidden}}}"#),
        // Nested: the rewrite would happen inside `profile`.
        format!(r#"{{"profile":{{"$serde_json::private::RawValue":{hidden}}}}}"#),
        // arbitrary_precision's name too.
        r#"{"n":{"$serde_json::private::Number":"1"}}"#.to_owned(),
    ] {
        let run = sign(dir.path(), &["--claims", &claims, "--exp", "10m"]);
        assert_refused(&run, &["--claims", "is reserved", "$serde_json::private::"]);
    }
}

#[test]
fn claims_with_duplicate_member_names_or_deep_nesting_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for claims in [
        r#"{"role":"user","role":"admin"}"#,
        r#"{"role":"user","r\u006fle":"admin"}"#,
        r#"{"a":{"role":"user","role":"admin"}}"#,
    ] {
        let run = sign(dir.path(), &["--claims", claims, "--exp", "10m"]);
        assert_refused(&run, &[r#"duplicate member name "role""#]);
    }
    let deep = format!(r#"{{"d":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
    let run = sign(dir.path(), &["--claims", &deep, "--exp", "10m"]);
    assert_refused(&run, &["nested deeper than 32 levels"]);
    // What is accepted signs exactly what was given.
    let run = sign(
        dir.path(),
        &[
            "--claims",
            r#"{"role":"user","n":{"a":[1,{"b":null}]}}"#,
            "--exp",
            "10m",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let claims = payload(&run.stdout);
    assert_eq!(claims["role"], "user");
    assert_eq!(claims["n"], serde_json::json!({"a":[1,{"b":null}]}));
}

// ---- item 7: tokens that could never be valid ------------------------------

#[test]
fn registered_claims_of_the_wrong_type_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (claims, fragment) in [
        (r#"{"exp":"soon"}"#, "`exp` must be a NumericDate"),
        (r#"{"exp":null}"#, "`exp` must be a NumericDate"),
        (r#"{"nbf":"1"}"#, "`nbf` must be a NumericDate"),
        (r#"{"iat":true}"#, "`iat` must be a NumericDate"),
        (r#"{"iss":1}"#, "`iss` must be a string"),
        (r#"{"sub":["a"]}"#, "`sub` must be a string"),
        (r#"{"jti":{}}"#, "`jti` must be a string"),
        (
            r#"{"aud":[1]}"#,
            "`aud` must be a string or an array of strings",
        ),
        (r#"{"aud":[]}"#, "`aud` is an empty array"),
    ] {
        let run = sign(dir.path(), &["--claims", claims]);
        assert_refused(&run, &["--claims", fragment]);
    }
}

#[test]
fn tokens_expired_at_birth_or_expiring_before_nbf_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = sign(dir.path(), &["--exp", "0s"]);
    assert_refused(&run, &["would be expired when signed", "is not after now"]);
    let run = sign(dir.path(), &["--nbf", "10s", "--exp", "5s"]);
    assert_refused(&run, &["would never be valid", "is not after nbf"]);
    let run = sign(dir.path(), &["--nbf", "5s", "--exp", "5s"]);
    assert_refused(&run, &["would never be valid"]);
    let past = format!(r#"{{"exp":{}}}"#, NOW - 1);
    let run = sign(dir.path(), &["--claims", &past]);
    assert_refused(&run, &["would be expired when signed"]);
    let backwards = format!(r#"{{"exp":{},"nbf":{}}}"#, NOW + 60, NOW + 120);
    let run = sign(dir.path(), &["--claims", &backwards]);
    assert_refused(&run, &["would never be valid"]);

    // The valid neighbours still sign.
    let run = sign(dir.path(), &["--nbf", "5s", "--exp", "10s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let claims = payload(&run.stdout);
    assert_eq!(claims["nbf"], NOW + 5);
    assert_eq!(claims["exp"], NOW + 10);
    let run = sign(dir.path(), &["--exp", "1s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

// ---- item 15: the store's max_token_lifetime --------------------------------

fn init_store(dir: &Path) {
    let now = now();
    let run = jwtkit(
        dir,
        &[
            "store",
            "init",
            "file:keys",
            "--alg",
            "ES256",
            "--max-token-lifetime",
            "1h",
            "--now",
            &now,
        ],
    );
    assert_eq!(run.code, 0, "store init failed: {}", run.stderr);
}

fn sign_store(dir: &Path, extra: &[&str]) -> Run {
    let now = now();
    let mut args = vec![
        "sign",
        "--store",
        "file:keys",
        "--sub",
        "alice",
        "--now",
        &now,
    ];
    args.extend_from_slice(extra);
    jwtkit(dir, &args)
}

#[test]
fn sign_with_a_store_enforces_its_max_token_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    init_store(dir.path());

    let run = sign_store(dir.path(), &["--exp", "30d"]);
    assert_refused(
        &run,
        &["--exp 30d", "max_token_lifetime = 1h", "--exp 1h or less"],
    );
    let run = sign_store(dir.path(), &["--exp", "3601s"]);
    assert_refused(&run, &["max_token_lifetime = 1h"]);
    let long = format!(r#"{{"exp":{}}}"#, NOW + 86_400);
    let run = sign_store(dir.path(), &["--claims", &long]);
    assert_refused(&run, &["`exp` claim", "max_token_lifetime = 1h"]);

    // Up to the maximum is fine.
    let run = sign_store(dir.path(), &["--exp", "1h"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(payload(&run.stdout)["exp"], NOW + 3600);
    let run = sign_store(dir.path(), &["--exp", "10m"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(payload(&run.stdout)["exp"], NOW + 600);

    // No --exp: the policy's maximum, with iat = now, and no warning.
    let run = sign_store(dir.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let claims = payload(&run.stdout);
    assert_eq!(claims["exp"], NOW + 3600);
    assert_eq!(claims["iat"], NOW);
    assert!(!run.stderr.contains("never expires"), "{}", run.stderr);

    // An nbf past the maximum lifetime can never be valid under this store:
    // one message that says so (the new-user review was sent back and forth
    // between "make --exp longer than --nbf" and "--exp 1h or less").
    for args in [&["--nbf", "2h"][..], &["--nbf", "2h", "--exp", "3h"][..]] {
        let run = sign_store(dir.path(), args);
        assert_refused(&run, &["nbf", "could never be valid", "--nbf under 1h"]);
    }
    let run = sign_store(dir.path(), &["--nbf", "10m"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
