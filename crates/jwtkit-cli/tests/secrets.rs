//! HMAC secrets as PyJWT users hold them (issue 13 items 8 and 9), through
//! the real binary: one rule for a secret's text (`echo secret > f` verifies
//! like the same text in a variable), `--secret-raw`, `keys generate --alg
//! HS*` printing `base64url:` text that every secret reader takes, and
//! `--dangerous-allow-weak-key` for verification only.

mod common;

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{jwtkit_env, Run};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;
const VAR: &str = "JWTKIT_SECRETS_TEST";
/// 40 bytes of text: strong enough for HS256.
const SECRET: &str = "correct-horse-battery-staple-0123456789ab";

fn now() -> String {
    NOW.to_string()
}

/// Writes a secret file readable by its owner only (as a secret should be).
fn write_secret(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// `jwtkit ARGS` with `VAR` set to `secret` (when given).
fn run(dir: &Path, args: &[&str], secret: Option<&str>) -> Run {
    match secret {
        Some(value) => jwtkit_env(dir, args, &[(VAR, value)]),
        None => jwtkit_env(dir, args, &[]),
    }
}

/// Signs at NOW with the key flags `key`; the token.
fn sign(dir: &Path, key: &[&str], secret: Option<&str>) -> String {
    let now = now();
    let mut args = vec!["sign", "--alg", "HS256", "--sub", "alice", "--exp", "5m"];
    args.extend_from_slice(key);
    args.extend_from_slice(&["--now", &now]);
    let out = run(dir, &args, secret);
    assert_eq!(out.code, 0, "sign {key:?}: {}", out.stderr);
    out.stdout.trim().to_owned()
}

/// `verify --json` at NOW with the key flags `key`.
fn verify(dir: &Path, key: &[&str], token: &str, secret: Option<&str>) -> Run {
    let now = now();
    let mut args = vec!["verify", "--alg", "HS256", "--json", "--now", &now];
    args.extend_from_slice(key);
    args.push(token);
    run(dir, &args, secret)
}

fn assert_valid(out: &Run) {
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["valid"], json!(true), "{doc}");
    assert_eq!(doc["claims"]["sub"], json!("alice"), "{doc}");
}

/// Exit code and kind of a failed `verify --json` (kind from stdout).
fn assert_rejected(out: &Run, code: i32, kind: &str) {
    assert_eq!(out.code, code, "{} {}", out.stdout, out.stderr);
    assert_eq!(out.json()["error"], json!(kind), "{}", out.stdout);
}

// ---- item 8: one rule for a secret ----------------------------------------

#[test]
fn a_secret_file_with_a_newline_verifies_like_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `echo secret > f` and a Windows editor's CRLF.
    write_secret(d, "lf.key", format!("{SECRET}\n"));
    write_secret(d, "crlf.key", format!("{SECRET}\r\n"));
    write_secret(d, "bare.key", SECRET);
    let by_env = sign(d, &["--secret-env", VAR], Some(SECRET));
    for file in ["lf.key", "crlf.key", "bare.key"] {
        // The file verifies the variable's token, and the variable the file's.
        assert_valid(&verify(d, &["--secret-file", file], &by_env, None));
        let by_file = sign(d, &["--secret-file", file], None);
        assert_valid(&verify(d, &["--secret-env", VAR], &by_file, Some(SECRET)));
        assert_valid(&verify(
            d,
            &["--store", &format!("env:{VAR}")],
            &by_file,
            Some(SECRET),
        ));
    }
    // The same rule for a secret piped in.
    let now = now();
    let out = common_stdin(
        d,
        &[
            "verify",
            "--alg",
            "HS256",
            "--json",
            "--now",
            &now,
            "--secret-file",
            "-",
            &by_env,
        ],
        format!("{SECRET}\n").as_bytes(),
    );
    assert_valid(&out);
    // All surrounding whitespace goes, as for the variable (the rule of
    // `--secret-env`; it was once one newline only).
    write_secret(d, "two.key", format!(" {SECRET}\n\n"));
    let out = verify(d, &["--secret-file", "two.key"], &by_env, None);
    assert_valid(&out);
    assert!(!out.stderr.contains("note"), "{}", out.stderr);
}

#[test]
fn secret_raw_keeps_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_secret(d, "lf.key", format!("{SECRET}\n"));
    let raw = sign(d, &["--secret-file", "lf.key", "--secret-raw"], None);
    // With the newline, it is another secret than the variable's...
    let out = verify(d, &["--secret-env", VAR], &raw, Some(SECRET));
    assert_rejected(&out, 1, "invalid_signature");
    let out = verify(d, &["--secret-file", "lf.key"], &raw, None);
    assert_rejected(&out, 1, "invalid_signature");
    // ...and the same as the variable holding it encoded.
    let encoded = format!(
        "base64url:{}",
        URL_SAFE_NO_PAD.encode(format!("{SECRET}\n"))
    );
    assert_valid(&verify(d, &["--secret-env", VAR], &raw, Some(&encoded)));
    let out = verify(d, &["--secret-file", "lf.key", "--secret-raw"], &raw, None);
    assert_valid(&out);
    assert!(out.stderr.contains("--secret-raw keeps"), "{}", out.stderr);
    // `base64url:` text is not decoded under --secret-raw.
    write_secret(d, "b64.key", format!("{encoded}\n"));
    let out = verify(d, &["--secret-file", "b64.key", "--secret-raw"], &raw, None);
    assert_rejected(&out, 1, "invalid_signature");
    assert_valid(&verify(d, &["--secret-file", "b64.key"], &raw, None));
    // --secret-raw needs --secret-file.
    let out = run(
        d,
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-env",
            VAR,
            "--secret-raw",
        ],
        Some(SECRET),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("cannot be used with")
            && out.stderr.contains("'--secret-raw'")
            && out.stderr.contains("'--secret-env <VAR>'"),
        "{}",
        out.stderr
    );
}

#[test]
fn binary_secret_files_are_used_byte_for_byte() {
    // What `keys generate --out` wrote before it wrote text: 64 raw bytes,
    // here ending in 0x0a and 0x0d 0x0a, which are not newlines to strip.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for tail in [&b"\n"[..], b"\r\n"] {
        let mut bytes: Vec<u8> = (0u8..64).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        bytes.truncate(64 - tail.len());
        bytes.extend_from_slice(tail);
        assert!(std::str::from_utf8(&bytes).is_err());
        write_secret(d, "bin.key", &bytes);
        let token = sign(d, &["--secret-file", "bin.key"], None);
        let encoded = format!("base64url:{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_valid(&verify(d, &["--secret-env", VAR], &token, Some(&encoded)));
    }
}

#[test]
fn bad_base64url_secret_text_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_secret(d, "bad.key", "base64url:not*base64\n");
    let out = run(
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
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("invalid_key")
            && out.stderr.contains("the secret file bad.key")
            && out.stderr.contains("unpadded base64url"),
        "{}",
        out.stderr
    );
    write_secret(d, "empty.key", "\n");
    let out = run(
        d,
        &["sign", "--alg", "HS256", "--secret-file", "empty.key"],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("is empty") && out.stderr.contains("jwtkit keys generate"),
        "{}",
        out.stderr
    );
}

#[test]
fn generated_hmac_secrets_are_base64url_text_every_reader_takes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (alg, bytes) in [("HS256", 64), ("HS384", 64), ("HS512", 64)] {
        // On stdout: one line of text, never raw bytes.
        let out = run(d, &["keys", "generate", "--alg", alg], None);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let line = out.stdout.strip_suffix('\n').expect("one line");
        let encoded = line.strip_prefix("base64url:").expect("base64url: prefix");
        assert!(!encoded.contains(['\n', '\r', '=']), "{line}");
        assert_eq!(URL_SAFE_NO_PAD.decode(encoded).unwrap().len(), bytes);

        // The printed line as a variable and as a file (`jwtkit keys generate > f`).
        write_secret(d, "printed.key", &out.stdout);
        let now = now();
        let sign_with = |key: &[&str], secret: Option<&str>| {
            let mut args = vec!["sign", "--alg", alg, "--sub", "alice", "--exp", "5m"];
            args.extend_from_slice(key);
            args.extend_from_slice(&["--now", &now]);
            let out = run(d, &args, secret);
            assert_eq!(out.code, 0, "{alg} {key:?}: {}", out.stderr);
            out.stdout.trim().to_owned()
        };
        let verify_with = |key: &[&str], token: &str, secret: Option<&str>| {
            let mut args = vec!["verify", "--alg", alg, "--json", "--now", &now];
            args.extend_from_slice(key);
            args.push(token);
            let out = run(d, &args, secret);
            assert_valid(&out);
        };
        let token = sign_with(&["--secret-env", VAR], Some(line));
        verify_with(&["--secret-file", "printed.key"], &token, None);
        let token = sign_with(&["--secret-file", "printed.key"], None);
        verify_with(&["--secret-env", VAR], &token, Some(line));

        // --out writes the same form; the file round trips both ways too.
        let name = format!("{alg}.key");
        let out = run(d, &["keys", "generate", "--alg", alg, "--out", &name], None);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.contains("--secret-file"), "{}", out.stderr);
        let text = std::fs::read_to_string(d.join(&name)).unwrap();
        assert!(
            text.starts_with("base64url:") && text.ends_with('\n'),
            "{text}"
        );
        let token = sign_with(&["--secret-file", &name], None);
        verify_with(&["--secret-env", VAR], &token, Some(text.trim()));
        let token = sign_with(&["--secret-env", VAR], Some(&text));
        verify_with(&["--secret-file", &name], &token, None);
    }
}

// ---- item 9: --dangerous-allow-weak-key -----------------------------------

/// An HS256 token signed with the 6-byte secret "secret", as PyJWT
/// tutorials make them (jsonwebtoken, unlike jwtkit, signs with it).
fn legacy_token() -> String {
    let claims = json!({"sub": "alice", "exp": NOW + 300});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap()
}

#[test]
fn signing_with_a_weak_secret_stays_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_secret(d, "weak.key", "secret\n");
    let out = run(
        d,
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-file",
            "weak.key",
            "--exp",
            "5m",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("weak_key") && out.stderr.contains("jwtkit keys generate --alg HS256"),
        "{}",
        out.stderr
    );
    // The flag does not change that, and says it is for verify only.
    let out = run(
        d,
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-file",
            "weak.key",
            "--exp",
            "5m",
            "--dangerous-allow-weak-key",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .contains("--dangerous-allow-weak-key is for `jwtkit verify` only")
            && out.stderr.contains("jwtkit keys generate"),
        "{}",
        out.stderr
    );
}

#[test]
fn verifying_with_a_weak_secret_needs_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_secret(d, "weak.key", "secret\n");
    let token = legacy_token();
    // Refused by default, for a file and a variable alike.
    let out = verify(d, &["--secret-file", "weak.key"], &token, None);
    assert_rejected(&out, 2, "weak_key");
    let out = verify(d, &["--secret-env", VAR], &token, Some("secret"));
    assert_rejected(&out, 2, "weak_key");
    // The refusal names the way out for legacy tokens (`--json`: the
    // message is in the document on stdout).
    let message = out.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("pass --dangerous-allow-weak-key (verify only"),
        "{message}"
    );
    // The flag is offered by verify, marked as verify-only.
    let out = run(d, &["verify", "--help"], None);
    let help = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("--dangerous-allow-weak-key (verify only) DANGEROUS"),
        "{help}"
    );
}

/// Issue 13 item 9: `--dangerous-allow-weak-key` lets a legacy token signed
/// with a short secret verify, warning on every run; a wrong secret still fails.
#[test]
fn the_weak_key_flag_verifies_legacy_tokens_with_a_warning_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_secret(d, "weak.key", "secret\n");
    let token = legacy_token();
    for key in [&["--secret-file", "weak.key"][..], &["--secret-env", VAR]] {
        for _ in 0..2 {
            let mut flags = key.to_vec();
            flags.push("--dangerous-allow-weak-key");
            let out = verify(d, &flags, &token, Some("secret"));
            assert_valid(&out);
            let doc: Value = out.json();
            assert_eq!(doc["header"]["alg"], json!("HS256"));
            assert!(
                out.stderr.contains("warning: --dangerous-allow-weak-key")
                    && out.stderr.contains("can forge tokens"),
                "{}",
                out.stderr
            );
        }
    }
    // The flag does not weaken anything else: a wrong secret still fails.
    let out = verify(
        d,
        &["--secret-env", VAR, "--dangerous-allow-weak-key"],
        &token,
        Some("secreT"),
    );
    assert_rejected(&out, 1, "invalid_signature");
}

/// `jwtkit ARGS` with `stdin` piped in (the shared helper has no stdin).
fn common_stdin(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(args)
        .current_dir(dir)
        .env_remove("JWTKIT_REFRESH_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let _ = pipe.write_all(stdin);
    drop(pipe);
    // Small outputs: waiting with the pipes attached cannot block here, and
    // the deadline of the shared helper is kept by polling.
    let deadline = std::time::Instant::now() + common::DEADLINE;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("jwtkit {args:?} still running after {:?}", common::DEADLINE);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr,
    }
}
