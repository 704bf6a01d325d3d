//! Runs the real `jwtkit` binary: round trips for every algorithm, the exit
//! codes and error kinds scripts depend on, key forms, and hostile input.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const ALGORITHMS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512", "EdDSA",
];

/// A fixed "now" so expiry checks are deterministic.
const NOW: i64 = 1_700_000_000;

/// The RSA key of RFC 7638 §3.1, as a JWK.
const RFC7638_JWK: &str = r#"{
  "kty": "RSA",
  "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
  "e": "AQAB",
  "alg": "RS256",
  "kid": "2011-04-29"
}"#;
const RFC7638_THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/// A 1024-bit RSA key: too weak to sign with.
const RSA_1024_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIICeQIBADANBgkqhkiG9w0BAQEFAASCAmMwggJfAgEAAoGBAMJqch9kOBLq/eGN
6kWP8fRMCiZH3titXvlEicBLF8EKpspXIDOiXqmjqgN81qH7y2jOqDZ2RgbAp9Ki
Lzcu06U/9rOMVxRgT6KUtAexLH6xprAHMP0TapdI8XIrvuoolqhz7zstA22uKr8j
pdDWaE2lFSIGvti04RIrgzj1wmiVAgMBAAECgYEAnYoIJCvfzGSjicyn0+qK071y
VAbVK5uBZFgHj8zJ2OG6uifTrkOalbhLojvc6LHS6IDdihRZNkuTMnm97OeDE+/3
sTAlJiTVJ6V9Pu58boQmSAfzXBx92ivqsdMh79lN27Ahth36s4svi4bZzj0jYolb
6c1IOCmjTV4OSoSxSEECQQD10/acyH7qmx7bOXy1sb4tZaDFNlzNRIsV8O/KC7y0
iHqI/eQufUkqAeUJ9ypIt22j0lefstGabvvbax5ez/g5AkEAynXglGYW/2SbWgv8
ht0nYmGRiWc2oyMdEn9oGdEqkI5OA1P1FyS2R8+LBauoF2zoKF9mWeMEZ4xOXBHu
SLhbPQJBAIq+uHji3GcTaAX5Wz69dAXxTx0fwp8EKbAXjW8u0rHeObKqAaiPg8TW
zuuh+daS2KnWpSf4aD7Olw3PVpPSs1kCQQCcTDgeGFo0u9R6xboj22NmPfB+5OF3
O8pb12PkWmfDxThQtWYGgd7+vSiULhrMStVHJa78QZfK4LQ1u9n65ef5AkEA5LZA
XjZFrDAqZSs0QvR/El1OFyjazQMiJ7bY7Ylci6tG2BobrggiS2ABsoqfLsn9T7qf
jFAMJIij/iUnhZ4Rjw==
-----END PRIVATE KEY-----
";

struct Output {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Output {
    fn stdout(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    /// stdout as exactly one JSON object (and nothing else).
    fn json(&self) -> Value {
        let text = self.stdout();
        assert_eq!(text.lines().count(), 1, "one JSON line expected: {text:?}");
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {text:?}; stderr: {}",
                self.stderr
            )
        });
        assert!(value.is_object(), "{value}");
        value
    }

    fn token(&self) -> String {
        assert_eq!(self.code, 0, "sign failed: {}", self.stderr);
        let text = self.stdout();
        assert!(text.ends_with('\n'), "token ends with a newline");
        let token = text.trim_end_matches('\n');
        assert_eq!(token.split('.').count(), 3, "{token}");
        token.to_owned()
    }
}

/// A temp dir to run commands in.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        Work {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).expect("write file");
        path
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None, &[])
    }

    fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.run_with(args, Some(stdin), &[])
    }

    fn run_with(&self, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jwtkit"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn jwtkit");
        let mut pipe = child.stdin.take().expect("stdin");
        let input = stdin.unwrap_or_default().to_vec();
        // Write from another thread: a big input must not deadlock against stdout.
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait jwtkit");
        let _ = writer.join();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !stderr.contains("panicked"),
            "jwtkit panicked on {args:?}: {stderr}"
        );
        Output {
            code: out.status.code().expect("exit code (not a signal)"),
            stdout: out.stdout,
            stderr,
        }
    }

    /// `keys generate --alg ALG --out NAME`; returns the `--key`/`--secret-file` flag to use it.
    fn generate(&self, alg: &str, name: &str) -> [String; 2] {
        let out = self.run(&["keys", "generate", "--alg", alg, "--out", name]);
        assert_eq!(out.code, 0, "generate {alg}: {}", out.stderr);
        let flag = if alg.starts_with("HS") {
            "--secret-file"
        } else {
            "--key"
        };
        [flag.to_owned(), name.to_owned()]
    }

    fn sign(&self, key: &[String; 2], alg: &str, extra: &[&str]) -> String {
        let mut args = vec!["sign", "--alg", alg, &key[0], &key[1]];
        args.extend_from_slice(extra);
        self.run(&args).token()
    }

    fn verify_json(&self, key: &[String; 2], extra: &[&str], token: &str) -> Output {
        let mut args = vec!["verify", "--json", &key[0], &key[1]];
        args.extend_from_slice(extra);
        args.push(token);
        self.run(&args)
    }
}

/// Asserts a `verify --json` failure: exit code, error kind, a message on
/// stdout, and no error line on stderr.
fn assert_failure(out: &Output, code: i32, kind: &str) {
    assert_eq!(
        out.code,
        code,
        "expected exit {code} ({kind}); stdout {:?} stderr {}",
        String::from_utf8_lossy(&out.stdout),
        out.stderr
    );
    let doc = out.json();
    let obj = doc.as_object().expect("object");
    assert_eq!(obj.len(), 3, "{doc}");
    assert_eq!(doc["valid"], json!(false), "{doc}");
    assert_eq!(doc["error"], json!(kind), "{doc}");
    assert!(
        doc["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    // With --json the error is on stdout only (issue 13 item 12).
    assert!(
        !out.stderr.contains("error ["),
        "stderr repeats the error: {}",
        out.stderr
    );
}

fn now_arg() -> String {
    NOW.to_string()
}

#[test]
fn every_algorithm_round_trips_through_generate_sign_verify() {
    let work = Work::new();
    let now = now_arg();
    for alg in ALGORITHMS {
        let key = work.generate(alg, &format!("{alg}.key"));
        let token = work.sign(
            &key,
            alg,
            &[
                "--claims",
                r#"{"role":"admin","n":[1,2]}"#,
                "--iss",
                "https://issuer.example",
                "--sub",
                "alice",
                "--aud",
                "api",
                "--exp",
                "15m",
                "--jti",
                "id-1",
                "--now",
                &now,
            ],
        );
        let out = work.verify_json(
            &key,
            &[
                "--alg",
                alg,
                "--iss",
                "https://issuer.example",
                "--aud",
                "api",
                "--sub",
                "alice",
                "--now",
                &now,
            ],
            &token,
        );
        assert_eq!(out.code, 0, "{alg}: {}", out.stderr);
        let doc = out.json();
        let keys: Vec<&String> = doc.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 3, "{alg}: {doc}");
        assert_eq!(doc["valid"], json!(true));
        assert_eq!(
            doc["claims"],
            json!({
                "role": "admin", "n": [1, 2], "iss": "https://issuer.example", "sub": "alice",
                "aud": "api", "exp": NOW + 900, "iat": NOW, "jti": "id-1",
            }),
            "{alg}"
        );
        assert_eq!(doc["header"]["alg"], json!(alg));
        assert_eq!(doc["header"]["typ"], json!("JWT"));
        if alg.starts_with("HS") {
            // 64 random bytes, written as one line of `base64url:` text.
            let text = std::fs::read_to_string(work.path(&key[1])).expect("key");
            assert!(text.starts_with("base64url:"), "{text}");
            assert_eq!(text.len(), "base64url:".len() + 86 + 1, "{text}");
            assert!(doc["header"].get("kid").is_none(), "{alg}: {doc}");
        } else {
            // The default kid is the key's RFC 7638 thumbprint.
            let thumb = work.run(&["keys", "thumbprint", &key[1]]);
            assert_eq!(thumb.code, 0, "{}", thumb.stderr);
            assert_eq!(
                doc["header"]["kid"],
                json!(thumb.stdout().trim_end()),
                "{alg}"
            );
        }
    }
}

#[test]
fn sign_with_secret_env_and_custom_kid_and_typ() {
    let work = Work::new();
    let secret = "0123456789abcdef0123456789abcdef";
    let now = now_arg();
    let env = [("JWTKIT_TEST_SECRET", secret)];
    let out = work.run_with(
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-env",
            "JWTKIT_TEST_SECRET",
            "--kid",
            "k1",
            "--typ",
            "at+jwt",
            "--aud",
            "a",
            "--aud",
            "b",
            "--exp",
            "1h",
            "--nbf",
            "10s",
            "--now",
            &now,
        ],
        None,
        &env,
    );
    let token = out.token();
    let out = work.run_with(
        &[
            "verify",
            "--json",
            "--alg",
            "HS256",
            "--secret-env",
            "JWTKIT_TEST_SECRET",
            "--typ",
            "at+jwt",
            "--aud",
            "b",
            "--now",
            &(NOW + 10).to_string(),
            &token,
        ],
        None,
        &env,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(
        doc["header"],
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"})
    );
    assert_eq!(
        doc["claims"],
        json!({"aud": ["a", "b"], "exp": NOW + 3600, "iat": NOW, "nbf": NOW + 10})
    );
}

#[test]
fn rejections_exit_1_with_the_exact_kind() {
    let work = Work::new();
    let key = work.generate("ES256", "es.pem");
    let other = work.generate("ES256", "other.pem");
    let now = now_arg();
    let token = work.sign(
        &key,
        "ES256",
        &[
            "--iss", "me", "--sub", "alice", "--aud", "api", "--exp", "15m", "--nbf", "60s",
            "--now", &now,
        ],
    );
    let at = |t: i64| t.to_string();
    let valid_now = at(NOW + 60);
    let base = ["--alg", "ES256", "--aud", "api"];
    let check = |extra: &[&str], kind: &str| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        assert_failure(&work.verify_json(&key, &args, &token), 1, kind);
    };
    // Sanity: valid at NOW+60 with everything matching.
    let ok = work.verify_json(
        &key,
        &[
            &base[..],
            &["--iss", "me", "--sub", "alice", "--now", &valid_now],
        ]
        .concat(),
        &token,
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);

    check(&["--now", &at(NOW + 900)], "expired");
    check(&["--now", &at(NOW + 10_000)], "expired");
    check(&["--now", &at(NOW + 59)], "immature");
    check(&["--now", &at(NOW)], "immature");
    check(
        &["--now", &valid_now, "--iss", "someone-else"],
        "invalid_issuer",
    );
    check(&["--now", &valid_now, "--sub", "bob"], "invalid_subject");
    check(&["--now", &valid_now, "--typ", "at+jwt"], "invalid_type");
    check(&["--now", &valid_now, "--require", "foo"], "missing_claim");
    check(&["--now", &valid_now, "--max-size", "10"], "too_large");
    // Leeway turns the expired token valid again.
    let late = work.verify_json(
        &key,
        &[&base[..], &["--now", &at(NOW + 905), "--leeway", "10s"]].concat(),
        &token,
    );
    assert_eq!(late.code, 0, "{}", late.stderr);

    let wrong_aud = work.verify_json(
        &key,
        &["--alg", "ES256", "--aud", "other", "--now", &valid_now],
        &token,
    );
    assert_failure(&wrong_aud, 1, "invalid_audience");

    // Another key with the same algorithm: the kid differs, so a single key
    // without kid is tried and the signature fails.
    let wrong_key = work.verify_json(
        &other,
        &[&base[..], &["--now", &valid_now]].concat(),
        &token,
    );
    assert_failure(&wrong_key, 1, "invalid_signature");

    let garbage = work.verify_json(&key, &base, "not-a-token");
    assert_failure(&garbage, 1, "malformed");

    // A token whose alg is not in the allowed set.
    let hs = work.generate("HS256", "hs.key");
    let hs_token = work.sign(&hs, "HS256", &["--exp", "1h"]);
    let es_with_hs_token = work.verify_json(&key, &base, &hs_token);
    assert_failure(&es_with_hs_token, 1, "invalid_algorithm");
}

#[test]
fn wrong_hmac_secret_is_invalid_signature() {
    let work = Work::new();
    let a = work.generate("HS512", "a.key");
    let b = work.generate("HS512", "b.key");
    let token = work.sign(&a, "HS512", &["--exp", "1h"]);
    assert_failure(
        &work.verify_json(&b, &["--alg", "HS512"], &token),
        1,
        "invalid_signature",
    );
}

#[test]
fn configuration_errors_exit_2() {
    let work = Work::new();
    let ec = work.generate("ES256", "es.pem");
    let token = work.sign(&ec, "ES256", &["--exp", "1h"]);

    // --alg incompatible with the key.
    let out = work.verify_json(&ec, &["--alg", "RS256"], &token);
    assert_failure(&out, 2, "invalid_key");
    // With --json the message is in the document (issue 13 item 12).
    let message = out.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("EC P-256"), "{message}");
    let out = work.run(&["sign", "--alg", "RS256", "--key", "es.pem"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("invalid_key"), "{}", out.stderr);
    assert!(out.stdout.is_empty());

    // --alg none, in any command.
    assert_failure(
        &work.verify_json(&ec, &["--alg", "none"], &token),
        2,
        "usage",
    );
    let out = work.run(&["sign", "--alg", "none", "--key", "es.pem"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("never accepted"), "{}", out.stderr);
    let out = work.run(&["keys", "generate", "--alg", "none"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    // Names are case-sensitive.
    assert_failure(
        &work.verify_json(&ec, &["--alg", "es256"], &token),
        2,
        "usage",
    );

    // Missing --alg with a PEM key.
    let out = work.verify_json(&ec, &[], &token);
    assert_failure(&out, 2, "usage");
    assert!(
        out.json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ES256"),
        "suggests the algorithm: {}",
        out.stdout()
    );

    // Weak HMAC secret (16 bytes).
    work.write("weak.key", b"0123456789abcdef");
    let out = work.run(&[
        "sign",
        "--alg",
        "HS256",
        "--secret-file",
        "weak.key",
        "--exp",
        "1h",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("weak_key"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let weak = ["--secret-file".to_owned(), "weak.key".to_owned()];
    assert_failure(
        &work.verify_json(&weak, &["--alg", "HS256"], &token),
        2,
        "weak_key",
    );

    // Weak RSA key (1024 bits).
    work.write("rsa1024.pem", RSA_1024_PEM);
    let out = work.run(&[
        "sign",
        "--alg",
        "RS256",
        "--key",
        "rsa1024.pem",
        "--exp",
        "1h",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("weak_key"), "{}", out.stderr);
    assert!(out.stderr.contains("2048"), "{}", out.stderr);

    // Unreadable key file.
    let missing = ["--key".to_owned(), "nope.pem".to_owned()];
    let out = work.verify_json(&missing, &["--alg", "ES256"], &token);
    assert_failure(&out, 2, "invalid_key");
    assert!(
        out.json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nope.pem"),
        "{}",
        out.stdout()
    );

    // Missing or empty secret variable: the message names it.
    let out = work.run_with(
        &[
            "verify",
            "--alg",
            "HS256",
            "--secret-env",
            "JWTKIT_NO_SUCH_VAR",
            &token,
        ],
        None,
        &[],
    );
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("JWTKIT_NO_SUCH_VAR"), "{}", out.stderr);
    let out = work.run_with(
        &["sign", "--alg", "HS256", "--secret-env", "JWTKIT_EMPTY"],
        None,
        &[("JWTKIT_EMPTY", "")],
    );
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("JWTKIT_EMPTY"), "{}", out.stderr);

    // --max-size 0 is a setting that can never work.
    assert_failure(
        &work.verify_json(&ec, &["--alg", "ES256", "--max-size", "0"], &token),
        2,
        "config",
    );

    // Two key sources, or none: clap usage errors (exit 2), still one JSON object.
    let out = work.run(&[
        "verify",
        "--json",
        "--alg",
        "HS256",
        "--key",
        "es.pem",
        "--secret-file",
        "x",
        &token,
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["valid"], json!(false));
    assert_eq!(doc["error"], json!("usage"));
    // The message is in the document only (issue 13 item 12).
    assert!(
        doc["message"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot be used with"),
        "{doc}"
    );
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let out = work.run(&["verify", "--alg", "ES256", &token]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn sign_input_errors_exit_2() {
    let work = Work::new();
    let key = work.generate("EdDSA", "ed.pem");
    let sign = |extra: &[&str]| {
        let mut args = vec!["sign", "--alg", "EdDSA", "--key", "ed.pem"];
        args.extend_from_slice(extra);
        work.run(&args)
    };
    for claims in ["[1,2]", "\"x\"", "null", "{not json"] {
        let out = sign(&["--claims", claims]);
        assert_eq!(out.code, 2, "{claims}: {}", out.stderr);
        assert!(out.stderr.contains("--claims"), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    for dur in ["15x", "1.5h", "-1s", "h", "", "99999999999999999999d"] {
        let out = sign(&[&format!("--exp={dur}")]);
        assert_eq!(out.code, 2, "{dur}: {}", out.stderr);
        assert!(
            out.stderr.contains("15m"),
            "gives the accepted forms: {}",
            out.stderr
        );
    }
    // exp beyond i64 after adding now.
    let out = sign(&["--exp", "1000d", "--now", &i64::MAX.to_string()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    // A unit makes a lifetime (a bare number is a NumericDate, issue 13
    // item 6); flags override --claims members.
    let token = work.sign(
        &key,
        "EdDSA",
        &[
            "--claims",
            r#"{"sub":"x","exp":1}"#,
            "--sub",
            "y",
            "--exp",
            "30s",
            "--now",
            "100",
        ],
    );
    let out = work.run(&["inspect", "--json", &token]);
    assert_eq!(
        out.json()["claims"],
        json!({"sub": "y", "exp": 130, "iat": 100})
    );
    // Without exp, the token is signed but a warning says verifiers will refuse it.
    let out = sign(&[]);
    assert_eq!(out.code, 0);
    assert!(out.stderr.contains("no `exp`"), "{}", out.stderr);
}

#[test]
fn optional_exp_and_require() {
    let work = Work::new();
    let key = work.generate("ES384", "k.pem");
    let token = work.sign(
        &key,
        "ES384",
        &["--claims", r#"{"scope":"read"}"#, "--no-iat"],
    );
    assert_failure(
        &work.verify_json(&key, &["--alg", "ES384"], &token),
        1,
        "missing_claim",
    );
    let out = work.verify_json(
        &key,
        &["--alg", "ES384", "--optional-exp", "--require", "scope"],
        &token,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["claims"], json!({"scope": "read"}));
}

#[test]
fn jwks_selects_the_key_by_kid() {
    let work = Work::new();
    let a = work.generate("ES256", "a.pem");
    let b = work.generate("EdDSA", "b.pem");
    let c = work.generate("ES256", "c.pem");
    let out = work.run(&["keys", "jwks", "a.pem", "b.pem"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let jwks = out.json();
    let keys = jwks["keys"].as_array().expect("keys array");
    assert_eq!(keys.len(), 2);
    for (entry, (file, alg)) in keys.iter().zip([("a.pem", "ES256"), ("b.pem", "EdDSA")]) {
        let thumb = work.run(&["keys", "thumbprint", file]).stdout();
        assert_eq!(entry["kid"], json!(thumb.trim_end()), "{entry}");
        assert_eq!(entry["use"], json!("sig"));
        assert_eq!(entry["alg"], json!(alg));
        assert!(entry.get("d").is_none(), "no private member: {entry}");
    }
    work.write("jwks.json", out.stdout());
    let set = ["--key".to_owned(), "jwks.json".to_owned()];

    for (key, alg) in [(&a, "ES256"), (&b, "EdDSA")] {
        let token = work.sign(key, alg, &["--sub", alg, "--exp", "5m"]);
        // Every entry declares its alg, so --alg may be left out.
        let out = work.verify_json(&set, &[], &token);
        assert_eq!(out.code, 0, "{alg}: {}", out.stderr);
        assert_eq!(out.json()["claims"]["sub"], json!(alg));
        // Also through stdin, with surrounding whitespace.
        let out = work.run_stdin(
            &["verify", "--json", "--key", "jwks.json", "-"],
            format!("\n  {token}\n\n").as_bytes(),
        );
        assert_eq!(out.code, 0, "{alg}: {}", out.stderr);
    }
    // A key that is not in the set.
    let token = work.sign(&c, "ES256", &["--exp", "5m"]);
    assert_failure(&work.verify_json(&set, &[], &token), 1, "unknown_key");
    // A token of the set, but --alg restricted to another algorithm.
    let token = work.sign(&a, "ES256", &["--exp", "5m"]);
    assert_failure(
        &work.verify_json(&set, &["--alg", "EdDSA"], &token),
        1,
        "invalid_algorithm",
    );
    // An algorithm no key of the set can use: configuration error.
    assert_failure(
        &work.verify_json(&set, &["--alg", "RS256"], &token),
        2,
        "invalid_key",
    );
}

#[test]
fn jwks_with_rsa_needs_alg_and_refuses_secrets() {
    let work = Work::new();
    work.generate("RS256", "rsa.pem");
    let hs = work.generate("HS256", "hs.key");
    let out = work.run(&["keys", "jwks", "rsa.pem"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let jwks = out.json();
    // RS* and PS* fit an RSA key: the alg is not known, so it is left out.
    assert!(jwks["keys"][0].get("alg").is_none(), "{jwks}");
    work.write("rsa.jwks", out.stdout());
    let set = ["--key".to_owned(), "rsa.jwks".to_owned()];
    let token = work.sign(
        &["--key".into(), "rsa.pem".into()],
        "PS384",
        &["--exp", "5m"],
    );
    assert_failure(&work.verify_json(&set, &[], &token), 2, "usage");
    let out = work.verify_json(&set, &["--alg", "PS384", "--alg", "RS256"], &token);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // HMAC secrets are never published: raw bytes or an oct JWK.
    let out = work.run(&["keys", "jwks", "rsa.pem", &hs[1]]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("hs.key"), "{}", out.stderr);
    work.write(
        "oct.jwk",
        r#"{"kty":"oct","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}"#,
    );
    let out = work.run(&["keys", "jwks", "oct.jwk"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("never published"), "{}", out.stderr);
    // The same key twice would give two entries with one kid.
    let out = work.run(&["keys", "jwks", "rsa.pem", "rsa.pem"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn thumbprint_matches_rfc7638() {
    let work = Work::new();
    work.write("rfc7638.jwk", RFC7638_JWK);
    let out = work.run(&["keys", "thumbprint", "rfc7638.jwk"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout(), format!("{RFC7638_THUMBPRINT}\n"));
    // Published as-is, keeping its own kid and alg.
    let out = work.run(&["keys", "jwks", "rfc7638.jwk"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let entry = &out.json()["keys"][0];
    assert_eq!(entry["kid"], json!("2011-04-29"));
    assert_eq!(entry["alg"], json!("RS256"));
}

#[test]
fn jwk_der_and_single_key_jwks_forms() {
    let work = Work::new();
    work.generate("ES512", "es.pem");
    // A private JWK with its own kid and alg: sign uses that kid; verify needs no --alg.
    let pem_text = std::fs::read_to_string(work.path("es.pem")).expect("pem");
    let der = pem::parse(pem_text).expect("parse pem").into_contents();
    work.write("es.der", &der);
    let der_key = ["--key".to_owned(), "es.der".to_owned()];
    let token = work.sign(&der_key, "ES512", &["--exp", "5m"]);
    let out = work.verify_json(
        &["--key".into(), "es.pem".into()],
        &["--alg", "ES512"],
        &token,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);

    let jwks = work.run(&["keys", "jwks", "es.der"]).json();
    let mut public = jwks["keys"][0].clone();
    public["kid"] = json!("my-key");
    work.write("pub.jwk", public.to_string());
    // A public JWK cannot sign.
    let out = work.run(&["sign", "--alg", "ES512", "--key", "pub.jwk"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("invalid_key"), "{}", out.stderr);
    // A token with a different kid than the JWK's: unknown key.
    assert_failure(
        &work.verify_json(&["--key".into(), "pub.jwk".into()], &[], &token),
        1,
        "unknown_key",
    );
    // Signed with --kid my-key: the JWK (alg declared) verifies it without --alg.
    let token = work.sign(&der_key, "ES512", &["--exp", "5m", "--kid", "my-key"]);
    let out = work.verify_json(&["--key".into(), "pub.jwk".into()], &[], &token);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["header"]["kid"], json!("my-key"));

    // A JWKS with one public entry cannot sign; a JWK's kid is used by sign.
    work.write("pub.jwks", json!({"keys": [public]}).to_string());
    let out = work.run(&["sign", "--alg", "ES512", "--key", "pub.jwks"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no private key"), "{}", out.stderr);

    // A private oct JWK signs; its kid lands in the header.
    work.write(
        "oct.jwk",
        r#"{"kty":"oct","kid":"sym","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}"#,
    );
    work.write(
        "oct.jwks",
        r#"{"keys":[{"kty":"oct","kid":"sym","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}"#,
    );
    let oct = ["--key".to_owned(), "oct.jwks".to_owned()];
    let token = work.sign(&oct, "HS256", &["--exp", "5m"]);
    let out = work.verify_json(
        &["--key".into(), "oct.jwk".into()],
        &["--alg", "HS256"],
        &token,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["header"]["kid"], json!("sym"));
    // The same secret as raw bytes (no trailing newline).
    work.write("raw.key", "0123456789abcdef0123456789abcdef");
    let out = work.verify_json(
        &["--secret-file".into(), "raw.key".into()],
        &["--alg", "HS256"],
        &token,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // One trailing newline (`echo secret > f`) is not part of the secret
    // (issue 13 item 8)...
    work.write("nl.key", "0123456789abcdef0123456789abcdef\n");
    let out = work.verify_json(
        &["--secret-file".into(), "nl.key".into()],
        &["--alg", "HS256"],
        &token,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // ...unless --secret-raw: then it is, another secret, another signature.
    let out = work.verify_json(
        &["--secret-file".into(), "nl.key".into()],
        &["--secret-raw", "--alg", "HS256"],
        &token,
    );
    assert_failure(&out, 1, "invalid_signature");
    assert!(out.stderr.contains("newline"), "{}", out.stderr);

    // A PEM file is refused as an HMAC secret (algorithm confusion).
    let out = work.verify_json(
        &["--secret-file".into(), "es.pem".into()],
        &["--alg", "HS256"],
        &token,
    );
    assert_failure(&out, 2, "invalid_key");
}

#[test]
fn human_readable_verify_output() {
    let work = Work::new();
    let key = work.generate("ES256", "k.pem");
    let token = work.sign(
        &key,
        "ES256",
        &["--sub", "alice", "--exp", "1h", "--now", &now_arg()],
    );
    let out = work.run(&[
        "verify",
        "--key",
        "k.pem",
        "--alg",
        "ES256",
        "--now",
        &now_arg(),
        &token,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = out.stdout();
    assert!(text.contains("alg: ES256"), "{text}");
    assert!(text.contains("typ: JWT"), "{text}");
    assert!(text.contains("\"sub\": \"alice\""), "{text}");
    assert!(text.contains("iat: 2023-11-14T22:13:20Z"), "{text}");
    assert!(text.contains("exp: 2023-11-14T23:13:20Z"), "{text}");
    let out = work.run(&["verify", "--key", "k.pem", "--alg", "ES256", &token]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
}

#[test]
fn inspect_warns_and_prints_json() {
    let work = Work::new();
    let key = work.generate("PS256", "k.pem");
    let token = work.sign(
        &key,
        "PS256",
        &["--sub", "alice", "--typ", "at+jwt", "--no-iat"],
    );
    let out = work.run(&["inspect", "--json", &token]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("nothing was verified"),
        "{}",
        out.stderr
    );
    let doc = out.json();
    assert_eq!(doc.as_object().expect("object").len(), 2);
    assert_eq!(doc["claims"], json!({"sub": "alice"}));
    assert_eq!(doc["header"]["alg"], json!("PS256"));
    assert_eq!(doc["header"]["typ"], json!("at+jwt"));
    // Human form, from stdin.
    let out = work.run_stdin(&["inspect", "-"], format!("{token}\n").as_bytes());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout().contains("\"sub\": \"alice\""));
    assert!(out.stderr.contains("nothing was verified"));
    // Undecodable: exit 1.
    let out = work.run(&["inspect", "a.b.c"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("malformed"), "{}", out.stderr);
}

#[test]
fn generate_out_is_0600_and_never_overwrites() {
    let work = Work::new();
    for alg in ["HS384", "ES256"] {
        let name = format!("{alg}.key");
        work.generate(alg, &name);
        let path = work.path(&name);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{alg}: {mode:o}");
        }
        let before = std::fs::read(&path).expect("read");
        let out = work.run(&["keys", "generate", "--alg", alg, "--out", &name]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains("already exists"), "{}", out.stderr);
        assert_eq!(std::fs::read(&path).expect("read"), before, "unchanged");
    }
    // Also a file that is not a key.
    work.write("notes.txt", "keep me");
    let out = work.run(&["keys", "generate", "--alg", "EdDSA", "--out", "notes.txt"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        std::fs::read_to_string(work.path("notes.txt")).expect("read"),
        "keep me"
    );
    // Into a missing directory: a clear error, exit 2.
    let out = work.run(&[
        "keys",
        "generate",
        "--alg",
        "EdDSA",
        "--out",
        "no/such/dir/k.pem",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no/such/dir"), "{}", out.stderr);
    // Without --out: PEM on stdout for asymmetric; for HS*, 64 random bytes
    // as one line of `base64url:` text, never raw bytes (issue 13 item 8).
    let out = work.run(&["keys", "generate", "--alg", "ES384"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout().starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let out = work.run(&["keys", "generate", "--alg", "HS512"]);
    assert_eq!(out.code, 0);
    let text = out.stdout();
    assert!(
        text.starts_with("base64url:") && text.ends_with('\n'),
        "{text}"
    );
    assert_eq!(text.len(), "base64url:".len() + 86 + 1, "{text}");
}

#[test]
fn hostile_inputs_never_panic() {
    let work = Work::new();
    work.generate("HS256", "hs.key");
    let big = "a".repeat(1024 * 1024);
    let big_parts = format!(
        "{}.{}.{}",
        "a".repeat(400_000),
        "b".repeat(400_000),
        "c".repeat(200_000)
    );
    let tokens: Vec<&str> = vec![
        "",
        "a.b",
        "...",
        "..",
        ".",
        "a.b.c.d",
        "ey.ey.ey",
        "\u{1}",
        "é.é.é",
        "eyJhbGciOiJub25lIn0.e30.",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        "=.=.=",
        &big,
        &big_parts,
    ];
    let verify = ["verify", "--alg", "HS256", "--secret-file", "hs.key"];
    for token in &tokens {
        for cmd in [&verify[..], &["inspect"][..]] {
            // `inspect` shows an unsigned token whose header and payload
            // decode, with warnings (issue 13 item 11): exit 0.
            let code = if cmd[0] == "inspect" && token.ends_with(".e30.") {
                0
            } else {
                1
            };
            // One argv string is limited to 128 KiB by the kernel: big ones go through stdin only.
            if token.len() < 100_000 {
                let mut args = cmd.to_vec();
                args.push(token);
                let out = work.run(&args);
                assert_eq!(out.code, code, "{token:.40?}: {}", out.stderr);
                assert!(!out.stderr.is_empty());
            }
            // Through stdin too.
            let mut args = cmd.to_vec();
            args.push("-");
            let out = work.run_stdin(&args, token.as_bytes());
            assert_eq!(out.code, code, "stdin {token:.40?}: {}", out.stderr);
            assert!(!out.stderr.is_empty());
        }
    }
    // Specific kinds.
    let json = |token: &str| {
        let mut args = verify.to_vec();
        args.extend_from_slice(&["--json", token]);
        work.run(&args)
    };
    assert_failure(&json(""), 1, "malformed");
    assert_failure(&json("a.b"), 1, "malformed");
    assert_failure(&json("..."), 1, "malformed");
    assert_failure(&json(&"a".repeat(100_000)), 1, "too_large");
    let mut args = verify.to_vec();
    args.extend_from_slice(&["--json", "-"]);
    assert_failure(&work.run_stdin(&args, big.as_bytes()), 1, "too_large");
    assert_failure(&json("eyJhbGciOiJub25lIn0.e30."), 1, "invalid_algorithm");
    assert_failure(
        &json("eyJhbGciOiJub25lIn0.e30.AAAA"),
        1,
        "invalid_algorithm",
    );

    // Non-UTF-8 and oversized stdin.
    for input in [
        &b"\xff\xfe.\x80.\x00"[..],
        &b"a.\x00.b"[..],
        &b""[..],
        &b"   \n"[..],
        &[0x80; 70_000][..],
    ] {
        let mut args = verify.to_vec();
        args.extend_from_slice(&["--json", "-"]);
        let out = work.run_stdin(&args, input);
        assert_eq!(out.code, 1, "{}", out.stderr);
        let kind = if input.len() > 65_536 {
            "too_large"
        } else {
            "malformed"
        };
        assert_failure(&out, 1, kind);
        let out = work.run_stdin(&["inspect", "-"], input);
        assert_eq!(out.code, 1, "{}", out.stderr);
    }

    // Hostile key files: empty, garbage, /dev/null, directories, truncated PEM, odd JSON.
    work.write("empty", b"");
    work.write("garbage", b"\x30\x82\xff\xff\x00\x01");
    work.write("text", "hello world");
    work.write(
        "badpem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    work.write("array.json", "[1,2]");
    work.write("obj.json", r#"{"a":1}"#);
    work.write(
        "badjwk.json",
        r#"{"kty":"EC","crv":"P-256","x":"!!","y":""}"#,
    );
    work.write("dupjwk.json", r#"{"kty":"OKP","kty":"OKP"}"#);
    work.write(
        "deep.json",
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    );
    work.write(
        "nested.json",
        format!("{{\"keys\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000)),
    );
    work.write("emptyjwks.json", r#"{"keys":[]}"#);
    work.write(
        "weirdjwks.json",
        r#"{"keys":[{"kty":"XX"},{"kty":"EC"},1]}"#,
    );
    let files = [
        "empty",
        "garbage",
        "text",
        "badpem",
        "array.json",
        "obj.json",
        "badjwk.json",
        "dupjwk.json",
        "deep.json",
        "nested.json",
        "emptyjwks.json",
        "weirdjwks.json",
        "/dev/null",
        ".",
        "missing",
    ];
    let token = work.sign(
        &["--secret-file".into(), "hs.key".into()],
        "HS256",
        &["--exp", "1h"],
    );
    for file in files {
        for args in [
            vec!["verify", "--alg", "ES256", "--key", file, &token],
            vec!["sign", "--alg", "ES256", "--key", file],
            vec!["keys", "jwks", file],
            vec!["keys", "thumbprint", file],
        ] {
            let out = work.run(&args);
            assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
            assert!(!out.stderr.is_empty(), "{args:?}");
        }
    }
    // Weird numbers and flags.
    for args in [
        vec![
            "verify",
            "--alg",
            "HS256",
            "--secret-file",
            "hs.key",
            "--now",
            "abc",
            &token,
        ],
        vec![
            "verify",
            "--alg",
            "HS256",
            "--secret-file",
            "hs.key",
            "--max-size",
            "-1",
            &token,
        ],
        vec![
            "verify",
            "--alg",
            "HS256",
            "--secret-file",
            "hs.key",
            "--leeway",
            "99999999999999999999",
            &token,
        ],
        vec![
            "sign",
            "--alg",
            "HS256",
            "--secret-file",
            "hs.key",
            "--claims",
            &"[".repeat(100_000),
        ],
        vec!["verify"],
        vec!["frobnicate"],
    ] {
        let out = work.run(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.is_empty());
    }
    // Extreme --now values: rejected cleanly, never an overflow.
    for now in [i64::MIN, i64::MAX] {
        let out = work.run(&[
            "verify",
            "--alg",
            "HS256",
            "--secret-file",
            "hs.key",
            "--leeway",
            "30d",
            "--now",
            &now.to_string(),
            &token,
        ]);
        assert_eq!(out.code, 1, "{now}: {}", out.stderr);
    }
    let out = work.run(&[
        "sign",
        "--alg",
        "HS256",
        "--secret-file",
        "hs.key",
        "--nbf",
        "1s",
        "--now",
        &i64::MAX.to_string(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn help_and_version_exit_0() {
    let work = Work::new();
    for args in [
        &["--help"][..],
        &["--version"],
        &["verify", "--help"],
        &["keys", "generate", "--help"],
    ] {
        let out = work.run(args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(!out.stdout.is_empty());
    }
    let out = work.run(&["--help"]);
    assert!(out.stdout().contains("Exit codes"));
}
