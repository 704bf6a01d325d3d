//! Fixes from an attacker's review of the CLI, each checked on the real
//! binary (and each test fails on a binary without its fix; run one against
//! another binary with `JWTKIT_TEST_BIN`):
//!
//! 1. `sign` never prints a token its own `verify` refuses as `too_large`.
//! 2. `--dangerous-allow-weak-key` is offered only where it helps, and is
//!    refused with `--store`.
//! 3. `--secret-file` reads a secret's text by the rule of `--secret-env`.
//! 4. `jwtkit serve` refuses a set-but-empty `JWTKIT_REFRESH_KEY`.
//! 5. Invisible characters are escaped on output; `inspect` warns about a
//!    payload nested deeper than the verifier reads.
//! 6. Comma lists (`--require`, `--alg`, `--allowed-alg`) are trimmed and
//!    an empty item is named.
//! 7. `keys generate --out` refuses an unsafe directory; `--out -` is stdout.
//! 8. `jwtkit serve --token-cache-entries/--token-cache-bytes`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{binary, jwtkit, jwtkit_env, Run};
use serde_json::{json, Value};

/// Any fixed time: the tests pass `--now`.
const NOW: i64 = 1_800_000_000;
const VAR: &str = "JWTKIT_REVIEW_SECRET";
/// 40 bytes of text: strong enough for HS256.
const SECRET: &str = "correct-horse-battery-staple-0123456789ab";
/// jwt-core's default token size limit (`DEFAULT_MAX_TOKEN_SIZE`).
const DEFAULT_MAX: usize = 65_536;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn now() -> String {
    NOW.to_string()
}

/// `jwtkit ARGS` with the HS256 secret in `VAR`.
fn with_secret(dir: &Path, args: &[&str]) -> Run {
    jwtkit_env(dir, args, &[(VAR, SECRET)])
}

/// An HS256 token for `--secret-env VAR`, signed at NOW with `extra` flags.
fn sign(dir: &Path, extra: &[&str]) -> String {
    let now = now();
    let mut args = vec!["sign", "--alg", "HS256", "--secret-env", VAR, "--now", &now];
    args.extend_from_slice(extra);
    let out = with_secret(dir, &args);
    assert_eq!(out.code, 0, "sign {extra:?}: {}", out.stderr);
    out.stdout.trim().to_owned()
}

/// `verify --json` at NOW with the key flags and options `args`.
fn verify(dir: &Path, args: &[&str], token: &str) -> Run {
    let now = now();
    let mut all = vec!["verify", "--json", "--now", &now];
    all.extend_from_slice(args);
    all.push(token);
    with_secret(dir, &all)
}

/// Asserts a failed `--json` run: exit code and kind; the message.
fn failure(out: &Run, code: i32, kind: &str) -> String {
    assert_eq!(out.code, code, "{} {}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["error"], json!(kind), "{doc}");
    doc["message"].as_str().unwrap_or_default().to_owned()
}

/// Asserts a failed plain run: exit code and the `error [KIND]:` line.
fn plain_failure(out: &Run, code: i32, kind: &str) -> String {
    assert_eq!(out.code, code, "{} {}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!("error [{kind}]: ")),
        "{}",
        out.stderr
    );
    out.stderr.clone()
}

/// `header.payload.signature` from JSON values, unsigned (`sig` as given).
fn token(header: &Value, payload: &Value, sig: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{sig}", part(header), part(payload))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::write(path, bytes).unwrap();
    set_mode(path, 0o600);
}

fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// `jwtkit ARGS` with `stdin` read from the file `input`.
fn jwtkit_stdin_file(dir: &Path, args: &[&str], input: &Path) -> Run {
    let mut command = Command::new(binary());
    command
        .args(args)
        .current_dir(dir)
        .env_remove("JWTKIT_REFRESH_KEY")
        .stdin(std::fs::File::open(input).unwrap());
    run_bounded(command)
}

/// Runs `command` (stdout and stderr captured) within the shared deadline.
fn run_bounded(mut command: Command) -> Run {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + common::DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} still running after {:?}", common::DEADLINE);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    Run {
        code: status.code().unwrap(),
        stdout: String::from_utf8(out.join().unwrap()).unwrap(),
        stderr,
    }
}

// ---- 1: sign never makes a token verify refuses as too large --------------

/// A payload file whose token is about 93 KB: over the default limit.
fn big_payload(dir: &Path) -> &'static str {
    let claims = json!({"sub": "alice", "blob": "x".repeat(70_000)});
    std::fs::write(dir.join("big.json"), claims.to_string()).unwrap();
    "@big.json"
}

#[test]
fn sign_refuses_a_token_over_the_verifiers_default_size_limit() {
    let dir = tempdir();
    let d = dir.path();
    let payload = big_payload(d);
    let now = now();
    let args = [
        "sign",
        "--alg",
        "HS256",
        "--secret-env",
        VAR,
        "--now",
        &now,
        "--exp",
        "5m",
        "--claims",
        payload,
    ];
    let out = with_secret(d, &args);
    let stderr = plain_failure(&out, 2, "usage");
    // The size, the limit, what verifiers do, and the flag.
    assert!(
        stderr.contains("over the limit of 65536 bytes that verifiers apply by default")
            && stderr.contains("too_large")
            && stderr.contains("--max-size"),
        "{stderr}"
    );
    let size: usize = stderr
        .split("the token would be ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {stderr}"));
    assert!(size > DEFAULT_MAX, "{size}");

    // --max-size raises it, and the warning says verifiers need the same.
    let mut raised = args.to_vec();
    raised.extend_from_slice(&["--max-size", "200000"]);
    let out = with_secret(d, &raised);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let token = out.stdout.trim().to_owned();
    assert_eq!(token.len(), size);
    assert!(
        out.stderr.contains("warning: the token is")
            && out.stderr.contains(&format!("--max-size {size} or more")),
        "{}",
        out.stderr
    );
    // What the warning says: verify refuses it by default, accepts it with
    // the same limit.
    let message = failure(
        &verify(d, &["--alg", "HS256", "--secret-env", VAR], &token),
        1,
        "too_large",
    );
    assert!(message.contains("65536"), "{message}");
    let out = verify(
        d,
        &[
            "--alg",
            "HS256",
            "--secret-env",
            VAR,
            "--max-size",
            "200000",
        ],
        &token,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["claims"]["sub"], json!("alice"));

    // A --max-size below the token refuses it, naming the flag.
    let out = with_secret(
        d,
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-env",
            VAR,
            "--exp",
            "5m",
            "--max-size",
            "50",
        ],
    );
    let stderr = plain_failure(&out, 2, "usage");
    assert!(
        stderr.contains("over the limit of 50 bytes set by --max-size"),
        "{stderr}"
    );
    // Under the default limit nothing changes: no warning.
    let out = with_secret(
        d,
        &["sign", "--alg", "HS256", "--secret-env", VAR, "--exp", "5m"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn sign_with_a_store_refuses_a_token_over_the_limit_too() {
    let dir = tempdir();
    let d = dir.path();
    let out = jwtkit(d, &["store", "init", "file:keys", "--alg", "ES256"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let payload = big_payload(d);
    let out = jwtkit(
        d,
        &[
            "sign",
            "--store",
            "file:keys",
            "--exp",
            "5m",
            "--claims",
            payload,
        ],
    );
    let stderr = plain_failure(&out, 2, "usage");
    assert!(stderr.contains("--max-size"), "{stderr}");
}

// ---- 2: --dangerous-allow-weak-key where it helps, and not with --store ----

/// A 512-bit RSA public key: nothing verifies with it, flag or not.
const RSA_512: &str = "-----BEGIN PUBLIC KEY-----
MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBANy9vOutbYcG8VIZwFIFk5ViSc8ToM3q
K3mTIVJAfLW6PMxy6OgxVAUOLsUmuASDHEiiYPwyUnhtEmpPyP7bvvMCAwEAAQ==
-----END PUBLIC KEY-----
";

/// A 1024-bit RSA public key: with the flag, RS256 and RS512 only.
const RSA_1024: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDhFB1RnR62cJM2ybNsac8q7xYQ
wpPMkohrXlVkXGPJ05VOXdeodDdv4m/IeSvWiq8PqwdLTxre1r3nSWfJhVDCQoow
op/j1bfiSB57AsERXlLZJlNhzaAYQJ9NIaCrFawEuyiLOn14EZ3D4MsZ9HEVJIC6
kvzV/SM/YPKuwWbVyQIDAQAB
-----END PUBLIC KEY-----
";

const PASS_THE_FLAG: &str = "pass --dangerous-allow-weak-key";

/// `verify` of a token claiming `alg` (its signature is garbage: a key the
/// verifier accepts gets as far as `invalid_signature`).
fn verify_rsa(dir: &Path, key: &str, alg: &str, flag: bool) -> Run {
    let token = token(
        &json!({"alg": alg}),
        &json!({"sub": "alice", "exp": NOW + 300}),
        "AAAA",
    );
    let mut args = vec!["--key", key, "--alg", alg];
    if flag {
        args.push("--dangerous-allow-weak-key");
    }
    verify(dir, &args, &token)
}

#[test]
fn weak_rsa_keys_get_the_flag_hint_only_where_the_flag_helps() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("512.pem"), RSA_512).unwrap();
    std::fs::write(d.join("1024.pem"), RSA_1024).unwrap();

    // 1024 bits with RS256: the flag helps, and the hint says to pass it...
    let message = failure(&verify_rsa(d, "1024.pem", "RS256", false), 2, "weak_key");
    assert!(message.contains(PASS_THE_FLAG), "{message}");
    // ...and with it the key is used (the garbage signature is the verdict).
    let out = verify_rsa(d, "1024.pem", "RS256", true);
    failure(&out, 1, "invalid_signature");
    assert!(
        out.stderr.contains("warning: --dangerous-allow-weak-key"),
        "{}",
        out.stderr
    );

    // 1024 bits with RS384: the flag does not help, and no hint says it would.
    let message = failure(&verify_rsa(d, "1024.pem", "RS384", false), 2, "weak_key");
    assert!(!message.contains(PASS_THE_FLAG), "{message}");
    assert!(
        message.contains("--dangerous-allow-weak-key cannot help here"),
        "{message}"
    );
    // With the flag: jwt-core's reason (RS256/RS512 only), not "pass the flag".
    let message = failure(&verify_rsa(d, "1024.pem", "RS384", true), 2, "weak_key");
    assert!(!message.contains(PASS_THE_FLAG), "{message}");
    assert!(
        message.contains("1024 bits") && message.contains("RS256 and RS512 only"),
        "{message}"
    );

    // 512 bits: refused with or without the flag, never told to pass it.
    let message = failure(&verify_rsa(d, "512.pem", "RS256", false), 2, "weak_key");
    assert!(!message.contains(PASS_THE_FLAG), "{message}");
    assert!(
        message.contains("--dangerous-allow-weak-key cannot help here"),
        "{message}"
    );
    let message = failure(&verify_rsa(d, "512.pem", "RS256", true), 2, "weak_key");
    assert!(!message.contains(PASS_THE_FLAG), "{message}");
    assert!(message.contains("below 1024 bits"), "{message}");
}

#[test]
fn the_weak_key_flag_is_refused_with_a_store() {
    let dir = tempdir();
    let d = dir.path();
    // A legacy token signed with "secret", which an env: store refuses to hold.
    let legacy = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "exp": NOW + 300}),
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    let store = format!("env:{VAR}");
    let out = jwtkit_env(
        d,
        &[
            "verify",
            "--json",
            "--now",
            &now(),
            "--store",
            &store,
            "--dangerous-allow-weak-key",
            &legacy,
        ],
        &[(VAR, "secret")],
    );
    let message = failure(&out, 2, "usage");
    assert!(
        message.contains("--dangerous-allow-weak-key does not apply to --store")
            && message.contains("--secret-env VAR"),
        "{message}"
    );
    // No warning that weak keys are accepted: nothing was.
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    // What the message offers works.
    let out = jwtkit_env(
        d,
        &[
            "verify",
            "--json",
            "--now",
            &now(),
            "--alg",
            "HS256",
            "--secret-env",
            VAR,
            "--dangerous-allow-weak-key",
            &legacy,
        ],
        &[(VAR, "secret")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // --help says so.
    let help = jwtkit(d, &["verify", "--help"]).stdout;
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("Not with --store"), "{help}");
}

// ---- 3: one rule for a secret's text ---------------------------------------

#[test]
fn secret_files_read_text_by_the_rule_of_secret_env() {
    let dir = tempdir();
    let d = dir.path();
    let token = sign(d, &["--sub", "alice", "--exp", "5m"]);
    let encoded = URL_SAFE_NO_PAD.encode(SECRET);
    // Each reads as SECRET, as the same text in VAR would.
    let texts = [
        format!("{SECRET}\n\n"),
        format!("  {SECRET}\t\r\n"),
        format!(" base64url:{encoded}\n"),
        format!("BASE64URL:{encoded}"),
        format!("Base64Url:{encoded}\r\n"),
    ];
    for (i, text) in texts.iter().enumerate() {
        let name = format!("s{i}.key");
        write_private(&d.join(&name), text);
        let out = verify(d, &["--alg", "HS256", "--secret-file", &name], &token);
        assert_eq!(out.code, 0, "{text:?}: {} {}", out.stdout, out.stderr);
        assert_eq!(out.json()["claims"]["sub"], json!("alice"));
        // The variable holding the same text verifies the same token.
        let out = jwtkit_env(
            d,
            &[
                "verify",
                "--json",
                "--now",
                &now(),
                "--alg",
                "HS256",
                "--secret-env",
                VAR,
                &token,
            ],
            &[(VAR, text)],
        );
        assert_eq!(out.code, 0, "{text:?} in VAR: {}", out.stderr);
        // And the same from stdin.
        let out = jwtkit_stdin_file(
            d,
            &[
                "verify",
                "--json",
                "--now",
                &now(),
                "--alg",
                "HS256",
                "--secret-file",
                "-",
                &token,
            ],
            &d.join(&name),
        );
        assert_eq!(out.code, 0, "{text:?} on stdin: {}", out.stderr);
    }
    // --secret-raw still keeps every byte: trailing whitespace is part of it.
    write_private(&d.join("raw.key"), format!("{SECRET}\n"));
    let out = verify(
        d,
        &["--alg", "HS256", "--secret-file", "raw.key", "--secret-raw"],
        &token,
    );
    failure(&out, 1, "invalid_signature");
    // --help states the rule.
    let help = jwtkit(d, &["verify", "--help"]).stdout;
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("Text is read exactly as --secret-env reads a variable"),
        "{help}"
    );
}

#[test]
fn bad_base64url_secret_text_is_a_key_error_never_a_malformed_token() {
    let dir = tempdir();
    let d = dir.path();
    let token = sign(d, &["--sub", "alice", "--exp", "5m"]);
    for text in ["base64url:not*base64\n", " BASE64URL:a b\n"] {
        write_private(&d.join("bad.key"), text);
        for json in [true, false] {
            let now = now();
            let mut args = vec!["verify", "--now", &now, "--alg", "HS256"];
            if json {
                args.push("--json");
            }
            args.extend_from_slice(&["--secret-file", "bad.key", &token]);
            let out = jwtkit(d, &args);
            let message = if json {
                failure(&out, 2, "invalid_key")
            } else {
                plain_failure(&out, 2, "invalid_key")
            };
            assert!(
                message.contains("the secret file bad.key")
                    && message.contains("unpadded base64url")
                    && message.contains("--secret-raw"),
                "{text:?}: {message}"
            );
            assert!(!message.contains("malformed"), "{message}");
        }
        // Signing reports it the same way.
        let out = jwtkit(
            d,
            &[
                "sign",
                "--alg",
                "HS256",
                "--secret-file",
                "bad.key",
                "--exp",
                "5m",
            ],
        );
        let stderr = plain_failure(&out, 2, "invalid_key");
        assert!(!stderr.contains("malformed"), "{stderr}");
    }
    // Only whitespace: empty, with the command that makes a secret.
    write_private(&d.join("blank.key"), " \n\t\n");
    let out = jwtkit(d, &["sign", "--alg", "HS256", "--secret-file", "blank.key"]);
    let stderr = plain_failure(&out, 2, "invalid_key");
    assert!(
        stderr.contains("is empty") && stderr.contains("jwtkit keys generate --alg HS256"),
        "{stderr}"
    );
}

// ---- 4: JWTKIT_REFRESH_KEY set but empty -----------------------------------

#[test]
fn serve_refuses_an_empty_refresh_key_variable() {
    for value in ["", " ", "\n"] {
        for refresh in ["redis://127.0.0.1:1/0", "memory"] {
            let dir = tempdir();
            let d = dir.path();
            let out = jwtkit_env(
                d,
                &["serve", "--listen", "127.0.0.1:0", "--refresh", refresh],
                &[("JWTKIT_REFRESH_KEY", value)],
            );
            let stderr = plain_failure(&out, 2, "config");
            assert!(
                stderr.contains("JWTKIT_REFRESH_KEY is set but empty")
                    && stderr.contains("--refresh-key"),
                "{value:?} {refresh}: {stderr}"
            );
            // Refused before anything was created (no refresh.key of its own).
            assert!(!d.join(".jwtkit").exists(), "{value:?} {refresh}");
        }
    }
}

/// A value that is not UTF-8 is refused too, naming the variable, rather
/// than taken for "unset".
#[cfg(unix)]
#[test]
fn serve_refuses_a_refresh_key_variable_that_is_not_utf8() {
    use std::os::unix::ffi::OsStringExt;
    let dir = tempdir();
    let d = dir.path();
    let mut command = Command::new(binary());
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--refresh",
            "redis://127.0.0.1:1/0",
        ])
        .current_dir(d)
        .env(
            "JWTKIT_REFRESH_KEY",
            std::ffi::OsString::from_vec(vec![0xff, 0xfe, b'a']),
        )
        .stdin(Stdio::null());
    let stderr = plain_failure(&run_bounded(command), 2, "config");
    assert!(
        stderr.contains("JWTKIT_REFRESH_KEY is not valid UTF-8"),
        "{stderr}"
    );
    assert!(!d.join(".jwtkit").exists());
}

// ---- 5: invisible characters, and nesting inspect warns about --------------

/// Characters a terminal shows as nothing, and how they must appear.
const INVISIBLE: [(&str, &str); 7] = [
    ("\u{200b}", "\\u200b"),
    ("\u{200c}", "\\u200c"),
    ("\u{200d}", "\\u200d"),
    ("\u{2060}", "\\u2060"),
    ("\u{feff}", "\\ufeff"),
    ("\u{202e}", "\\u202e"),
    ("\u{e0041}", "\\udb40\\udc41"),
];

fn shows_no_invisible(text: &str) {
    for (c, _) in INVISIBLE {
        assert!(!text.contains(c), "{c:?} printed as-is: {text:?}");
    }
}

#[test]
fn invisible_characters_in_a_token_are_escaped_on_output() {
    let dir = tempdir();
    let d = dir.path();
    for (c, shown) in INVISIBLE {
        let kid = format!("kid-1{c}");
        let name = format!("a{c}b");
        let claims = json!({"name": name});
        let token = sign(
            d,
            &[
                "--kid",
                &kid,
                "--sub",
                "alice",
                "--exp",
                "5m",
                "--claims",
                &claims.to_string(),
            ],
        );
        // inspect and verify, as text: the kid and the claim are escaped.
        for args in [
            vec!["inspect", "--now", &now(), &token],
            vec![
                "verify",
                "--now",
                &now(),
                "--alg",
                "HS256",
                "--secret-env",
                VAR,
                &token,
            ],
        ] {
            let out = with_secret(d, &args);
            assert_eq!(out.code, 0, "{}", out.stderr);
            shows_no_invisible(&out.stdout);
            shows_no_invisible(&out.stderr);
            assert!(
                out.stdout.contains(&format!("kid: kid-1{shown}")),
                "{c:?}: {}",
                out.stdout
            );
            assert!(out.stdout.contains(&format!("a{shown}b")), "{}", out.stdout);
        }
        // As JSON: escaped, and the document decodes to the exact values.
        let out = with_secret(d, &["inspect", "--json", "--now", &now(), &token]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        shows_no_invisible(&out.stdout);
        let doc = out.json();
        assert_eq!(doc["header"]["kid"], json!(kid));
        assert_eq!(doc["claims"]["name"], json!(name));
    }
    // In a diagnostic too: an unknown kid quoted in the error.
    let token = token(
        &json!({"alg": "ES256", "kid": "k\u{200b}"}),
        &json!({"exp": NOW + 60}),
        "AAAA",
    );
    let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","alg":"ES256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    std::fs::write(d.join("k.jwks"), jwks).unwrap();
    let out = jwtkit(d, &["verify", "--now", &now(), "--key", "k.jwks", &token]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("unknown_key"), "{}", out.stderr);
    shows_no_invisible(&out.stderr);
}

#[test]
fn inspect_warns_about_nesting_verify_refuses() {
    let dir = tempdir();
    let d = dir.path();
    let mut deep = json!(1);
    for _ in 0..33 {
        deep = json!({ "a": deep });
    }
    // Signed with SECRET: verification gets past the signature to the
    // payload (a bad signature would be its verdict first).
    let signed = |header: Value, payload: Value| {
        let unsigned = token(&header, &payload, "");
        let message = unsigned.trim_end_matches('.');
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        let sig =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
                .unwrap();
        format!("{message}.{sig}")
    };
    let cases = [
        signed(json!({"alg": "HS256"}), json!({"exp": NOW + 60, "d": deep})),
        signed(json!({"alg": "HS256", "d": deep}), json!({"exp": NOW + 60})),
    ];
    for token in cases {
        let out = jwtkit(d, &["inspect", "--now", &now(), &token]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stderr
                .contains("warning: verification refuses this token")
                && out.stderr.contains("nested deeper than 32"),
            "{}",
            out.stderr
        );
        let out = jwtkit(d, &["inspect", "--json", "--now", &now(), &token]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let warnings = out.json()["warnings"].to_string();
        assert!(warnings.contains("nested deeper than 32"), "{warnings}");
        // What the warning announces.
        let message = failure(
            &verify(d, &["--alg", "HS256", "--secret-env", VAR], &token),
            1,
            "malformed",
        );
        assert!(message.contains("nested deeper than 32"), "{message}");
    }
}

// ---- 6: comma lists ----------------------------------------------------------

#[test]
fn comma_lists_are_trimmed_and_empty_items_named() {
    let dir = tempdir();
    let d = dir.path();
    let token = sign(d, &["--sub", "alice", "--exp", "5m"]);
    // `exp, sub`: the claims exp and sub, not ` sub`.
    let out = verify(
        d,
        &[
            "--alg",
            "HS256",
            "--secret-env",
            VAR,
            "--require",
            "exp, sub",
        ],
        &token,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let message = failure(
        &verify(
            d,
            &[
                "--alg",
                "HS256",
                "--secret-env",
                VAR,
                "--require",
                "exp, jti",
            ],
            &token,
        ),
        1,
        "missing_claim",
    );
    assert!(message.contains("no `jti` claim"), "{message}");
    // Algorithm names too.
    let out = verify(
        d,
        &[
            "--alg",
            "ES256, HS256",
            "--secret-env",
            VAR,
            "--require",
            " sub ",
        ],
        &token,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // An empty item names the flag, never an algorithm called "".
    for (flag, value) in [
        ("--alg", "ES256,"),
        ("--alg", "HS256,,ES256"),
        ("--require", "exp,"),
    ] {
        let out = verify(d, &["--secret-env", VAR, flag, value], &token);
        let message = failure(&out, 2, "usage");
        assert!(
            message.starts_with(&format!("{flag}: an empty item"))
                && message.contains(&format!("e.g. {flag} ")),
            "{flag} {value}: {message}"
        );
        assert!(!message.contains("\"\""), "{message}");
    }
    // store init's --allowed-alg as well.
    let out = jwtkit(
        d,
        &[
            "store",
            "init",
            "file:keys",
            "--alg",
            "ES256",
            "--allowed-alg",
            "ES256,",
        ],
    );
    let stderr = plain_failure(&out, 2, "usage");
    assert!(stderr.contains("--allowed-alg: an empty item"), "{stderr}");
    let out = jwtkit(
        d,
        &[
            "store",
            "init",
            "file:keys",
            "--alg",
            "ES256",
            "--allowed-alg",
            "ES256, EdDSA",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

// ---- 7: keys generate --out --------------------------------------------------

#[cfg(unix)]
#[test]
fn keys_generate_refuses_a_directory_others_may_write() {
    let dir = tempdir();
    let d = dir.path();
    let open = d.join("open");
    std::fs::create_dir(&open).unwrap();
    set_mode(&open, 0o777);
    for alg in ["HS256", "ES256"] {
        let out = jwtkit(d, &["keys", "generate", "--alg", alg, "--out", "open/k"]);
        let stderr = plain_failure(&out, 2, "insecure_permissions");
        assert!(
            stderr.contains("--out open/k")
                && stderr.contains(&format!("{} has mode 777", open.display()))
                && stderr.contains("chmod go-w"),
            "{stderr}"
        );
        assert!(!open.join("k").exists(), "a key was written");
    }
    // A sticky directory (like /tmp) is fine, and the key is usable by sign,
    // which applies the same check.
    let sticky = d.join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    set_mode(&sticky, 0o1777);
    let out = jwtkit(
        d,
        &["keys", "generate", "--alg", "HS256", "--out", "sticky/k"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = jwtkit(
        d,
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-file",
            "sticky/k",
            "--exp",
            "5m",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn keys_generate_out_dash_is_stdout() {
    let dir = tempdir();
    let d = dir.path();
    let out = jwtkit(d, &["keys", "generate", "--alg", "HS256", "--out", "-"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // base64url text on stdout, as without --out; no file named `-`.
    let line = out.stdout.trim_end();
    let encoded = line.strip_prefix("base64url:").expect("base64url: text");
    assert_eq!(URL_SAFE_NO_PAD.decode(encoded).unwrap().len(), 64);
    assert!(!d.join("-").exists());
    let out = jwtkit(d, &["keys", "generate", "--alg", "ES256", "--out", "-"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(!d.join("-").exists());
}

// ---- 8: jwtkit serve's token cache flags ------------------------------------

const ADMIN: &str = "review-fixes-admin-token-0123456789";

/// A running `jwtkit serve`; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `jwtkit serve ARGS` on a free port in `dir`.
    fn start(dir: &Path, args: &[&str]) -> Server {
        let log = dir.join("serve.log");
        let mut child = Command::new(binary())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .env("JWTKIT_ADMIN_TOKEN", ADMIN)
            .env_remove("JWTKIT_REFRESH_KEY")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("jwtkit serve: listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => Server { child, base },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "jwtkit serve {args:?} did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issues a token for `sub` and asks /userinfo with it three times (from
/// the third time on, a cached token is answered from the cache); then a
/// copy with a changed signature is refused.
async fn userinfo_works(server: &Server, sub: &str) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let pair: Value = http
        .post(format!("{}/token", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"sub": sub}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = pair["access_token"].as_str().expect("access_token");
    for _ in 0..3 {
        let response = http
            .get(format!("{}/userinfo", server.base))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let info: Value = response.json().await.unwrap();
        assert_eq!(info["sub"], json!(sub));
    }
    // The last signature character changed: another token, refused.
    let mut forged = access.to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let response = http
        .get(format!("{}/userinfo", server.base))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn serve_runs_with_the_token_cache_off_default_or_sized() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(
        d.join("cache.toml"),
        "token-cache-entries = 100\ntoken-cache-bytes = 131072\n",
    )
    .unwrap();
    for args in [
        &["--token-cache-entries", "0"][..],
        &[],
        &[
            "--token-cache-entries",
            "50",
            "--token-cache-bytes",
            "100000",
        ],
        &["--token-cache-bytes", "65536"],
        &["--config", "cache.toml"],
        // The flag wins over the file: off.
        &["--config", "cache.toml", "--token-cache-entries", "0"],
    ] {
        let server = Server::start(d, args);
        userinfo_works(&server, "alice").await;
    }
}

#[test]
fn bad_token_cache_sizes_exit_2_naming_the_setting() {
    let dir = tempdir();
    let d = dir.path();
    for (args, fragment) in [
        (
            &["--token-cache-entries", "1"][..],
            "--token-cache-entries 1 is out of range; token-cache-entries accepts 0 (the cache \
             off) or 2 to 1000000",
        ),
        (
            &["--token-cache-entries", "1000001"],
            "--token-cache-entries 1000001 is out of range",
        ),
        (
            &["--token-cache-bytes", "65535"],
            "--token-cache-bytes 65535 is below the minimum of 65536 (64 KiB)",
        ),
        (
            &["--token-cache-bytes", "1073741825"],
            "--token-cache-bytes 1073741825 is over the maximum of 1073741824 (1 GiB)",
        ),
    ] {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let stderr = plain_failure(&jwtkit(d, &all), 2, "config");
        assert!(stderr.contains(fragment), "{args:?}: {stderr}");
    }
    std::fs::write(d.join("bad.toml"), "token-cache-entries = 1\n").unwrap();
    let out = jwtkit(
        d,
        &["serve", "--listen", "127.0.0.1:0", "--config", "bad.toml"],
    );
    let stderr = plain_failure(&out, 2, "config");
    assert!(
        stderr.contains("config file: token-cache-entries = 1 is out of range"),
        "{stderr}"
    );
    // Not a number: clap names the flag.
    let out = jwtkit(
        d,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-cache-bytes",
            "16MiB",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--token-cache-bytes"), "{}", out.stderr);
    // Nothing was started or created.
    assert!(!d.join(".jwtkit").exists());
    // --help documents both.
    let help = jwtkit(d, &["serve", "--help"]).stdout;
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("--token-cache-entries <N>")
            && help.contains("0 turns the cache off")
            && help.contains("--token-cache-bytes <BYTES>"),
        "{help}"
    );
}

/// `jwtkit serve` with a `[vault]` table: a password in the store URI is
/// never printed, and `ca-cert` is read as `VAULT_CACERT` is (a FIFO is
/// refused at once instead of blocking the start for ever).
#[test]
fn serve_vault_table_redacts_uri_passwords_and_refuses_odd_ca_files() {
    let dir = tempdir();
    let d = dir.path();
    let env = [
        (
            "JWTKIT_ADMIN_TOKEN",
            "review-fixes-admin-token-0123456789abcdef",
        ),
        ("VAULT_TOKEN", "not-a-real-token"),
    ];
    let config = d.join("serve.toml");
    std::fs::write(
        &config,
        "store = \"vault+http://user:pa55word@127.0.0.1:1/transit/k\"\n\n[vault]\nauth-method = \"token\"\n",
    )
    .unwrap();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ];
    let out = jwtkit_env(d, &args, &env);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains("pa55word"), "{}", out.stderr);
    assert!(out.stderr.contains("***"), "{}", out.stderr);

    let fifo = d.join("ca.pem");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    std::fs::write(
        &config,
        format!(
            "store = \"vault+https://127.0.0.1:1/transit/k\"\n\n[vault]\nauth-method = \"token\"\nca-cert = \"{}\"\n",
            fifo.display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = jwtkit_env(d, &args, &env);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
    assert!(out.stderr.contains("ca-cert"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
}
