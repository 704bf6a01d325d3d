//! `jwtkit sign` input as a PyJWT user expects it (issue 13, items 4a/4b,
//! 5, 6, 7), through the real binary: `--typ ''`, `--key -`, the payload
//! from `@FILE` or stdin (and the warning when stdin is piped but unread),
//! flags over payload, exact big integers, `--exp`/`--nbf`/`--iat` in every
//! form, `--no-iat`, `--header`, `--jti auto`. Tokens are checked with
//! `jwtkit verify --json`.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{jwtkit, Run, DEADLINE};
use serde_json::{json, Value};

/// "Now" for every command (2027-01-15T08:00:00Z).
const NOW: i64 = 1_800_000_000;
const SECRET_ENV: &str = "JWTKIT_SIGN_INPUT_SECRET";
/// 48 bytes: long enough for HS256 and HS384.
const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

/// What the child's stdin is.
enum Stdin<'a> {
    /// A pipe carrying these bytes, then closed.
    Bytes(&'a [u8]),
    /// A pipe left open and empty until the child exits.
    OpenEmptyPipe,
    /// This file.
    File(&'a Path),
}

/// Runs `jwtkit ARGS` in `dir` with `stdin`, within the shared deadline.
fn jwtkit_stdin(dir: &Path, args: &[&str], stdin: Stdin<'_>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtkit"));
    command
        .args(args)
        .current_dir(dir)
        .env(SECRET_ENV, SECRET)
        .env_remove("JWTKIT_REFRESH_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match &stdin {
        Stdin::File(path) => command.stdin(std::fs::File::open(path).unwrap()),
        _ => command.stdin(Stdio::piped()),
    };
    let mut child = command.spawn().expect("run jwtkit");
    // Kept open (and empty) until the child has exited, for OpenEmptyPipe.
    let mut open_pipe = None;
    match stdin {
        Stdin::Bytes(bytes) => {
            let mut pipe = child.stdin.take().unwrap();
            // A child that exits without reading closes the pipe: not an error.
            let _ = pipe.write_all(bytes);
        }
        Stdin::OpenEmptyPipe => open_pipe = child.stdin.take(),
        Stdin::File(_) => {}
    }
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("jwtkit {args:?} still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(open_pipe);
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    assert!(!stderr.contains("panicked"), "jwtkit panicked: {stderr}");
    Run {
        code: status.code().expect("exit code"),
        stdout: String::from_utf8(out.join().unwrap()).unwrap(),
        stderr,
    }
}

/// `jwtkit ARGS` with the test secret in the environment and no stdin.
fn run(dir: &Path, args: &[&str]) -> Run {
    common::jwtkit_env(dir, args, &[(SECRET_ENV, SECRET)])
}

/// `sign --secret-env … --alg HS256 --now NOW EXTRA`.
fn sign_args<'a>(now: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "sign",
        "--secret-env",
        SECRET_ENV,
        "--alg",
        "HS256",
        "--now",
        now,
    ];
    args.extend_from_slice(extra);
    args
}

fn sign(dir: &Path, extra: &[&str]) -> Run {
    let now = NOW.to_string();
    run(dir, &sign_args(&now, extra))
}

/// Signs, which must succeed; the token.
fn token(dir: &Path, extra: &[&str]) -> String {
    let out = sign(dir, extra);
    assert_eq!(out.code, 0, "sign {extra:?}: {}", out.stderr);
    out.stdout.trim().to_owned()
}

/// `verify --json` of `token` with the test secret at `now`: the document.
fn verify_at(dir: &Path, token: &str, now: i64) -> Value {
    verify_with(dir, token, now, &[])
}

/// [`verify_at`] with more verify flags (`--aud …`).
fn verify_with(dir: &Path, token: &str, now: i64, extra: &[&str]) -> Value {
    let now = now.to_string();
    let mut args = vec![
        "verify",
        "--secret-env",
        SECRET_ENV,
        "--alg",
        "HS256",
        "--optional-exp",
        "--now",
        &now,
        "--json",
    ];
    args.extend_from_slice(extra);
    args.push(token);
    let out = run(dir, &args);
    assert_eq!(out.code, 0, "verify: {} {}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["valid"], json!(true), "{doc}");
    doc
}

fn verify(dir: &Path, token: &str) -> Value {
    verify_at(dir, token, NOW)
}

/// A refused command: exit 2, nothing on stdout, each fragment in stderr.
fn assert_usage(out: &Run, fragments: &[&str]) {
    assert_eq!(out.code, 2, "stdout {:?} stderr {}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    for fragment in fragments {
        assert!(
            out.stderr.contains(fragment),
            "{fragment:?} not in: {}",
            out.stderr
        );
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---- item 4: --typ '', --key - -------------------------------------------

#[test]
fn empty_typ_leaves_typ_out_of_the_header() {
    let dir = tempdir();
    let t = token(dir.path(), &["--exp", "5m", "--typ", ""]);
    let doc = verify(dir.path(), &t);
    assert_eq!(doc["header"], json!({"alg": "HS256"}));
    // The default is still `JWT`, and a custom typ is kept.
    let t = token(dir.path(), &["--exp", "5m"]);
    assert_eq!(verify(dir.path(), &t)["header"]["typ"], json!("JWT"));
    let t = token(dir.path(), &["--exp", "5m", "--typ", "at+jwt"]);
    assert_eq!(verify(dir.path(), &t)["header"]["typ"], json!("at+jwt"));
    // `--kid ''` leaves kid out the same way (an empty kid names no key).
    let t = token(dir.path(), &["--exp", "5m", "--kid", ""]);
    assert_eq!(
        verify(dir.path(), &t)["header"],
        json!({"alg": "HS256", "typ": "JWT"})
    );
    let t = token(dir.path(), &["--exp", "5m", "--kid", "k1"]);
    assert_eq!(verify(dir.path(), &t)["header"]["kid"], json!("k1"));
}

#[test]
fn empty_typ_with_a_store_leaves_typ_out_too() {
    let dir = tempdir();
    let now = NOW.to_string();
    let init = run(
        dir.path(),
        &[
            "store",
            "init",
            "file:keys",
            "--alg",
            "ES256",
            "--now",
            &now,
        ],
    );
    assert_eq!(init.code, 0, "{}", init.stderr);
    let out = run(
        dir.path(),
        &[
            "sign",
            "--store",
            "file:keys",
            "--typ",
            "",
            "--header",
            "ver=2",
            "--exp",
            "5m",
            "--now",
            &now,
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let verified = run(
        dir.path(),
        &[
            "verify",
            "--store",
            "file:keys",
            "--now",
            &now,
            "--json",
            out.stdout.trim(),
        ],
    );
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    let header = &verified.json()["header"];
    assert_eq!(header["typ"], Value::Null, "{header}");
    assert_eq!(header["ver"], json!(2), "{header}");
    assert_eq!(header["alg"], json!("ES256"));
    assert!(header["kid"].is_string(), "{header}");
}

#[test]
fn key_from_stdin_signs_and_verifies() {
    let dir = tempdir();
    let now = NOW.to_string();
    let pem = common::ok(dir.path(), &["keys", "generate", "--alg", "ES256"]);
    let out = jwtkit_stdin(
        dir.path(),
        &[
            "sign", "--key", "-", "--alg", "ES256", "--sub", "alice", "--exp", "5m", "--now", &now,
        ],
        Stdin::Bytes(pem.as_bytes()),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let token = out.stdout.trim().to_owned();
    // Verify with the key from stdin too (the token as an argument).
    let out = jwtkit_stdin(
        dir.path(),
        &[
            "verify", "--key", "-", "--alg", "ES256", "--now", &now, "--json", &token,
        ],
        Stdin::Bytes(pem.as_bytes()),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["claims"]["sub"], json!("alice"));

    // An empty stdin, and stdin larger than any key file, say so.
    let sign_stdin = ["sign", "--key", "-", "--alg", "ES256", "--exp", "5m"];
    let out = jwtkit_stdin(dir.path(), &sign_stdin, Stdin::Bytes(b""));
    assert_usage(&out, &["--key -", "stdin is empty"]);
    let big = vec![b'a'; 1024 * 1024 + 1];
    let out = jwtkit_stdin(dir.path(), &sign_stdin, Stdin::Bytes(&big));
    assert_usage(&out, &["--key -", "more than 1048576 bytes"]);
    // Not a key: the error names stdin, not a file called `-`.
    let out = jwtkit_stdin(dir.path(), &sign_stdin, Stdin::Bytes(b"hello"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("the key read from stdin"),
        "{}",
        out.stderr
    );
}

#[test]
fn only_one_flag_may_read_stdin() {
    let dir = tempdir();
    for key in [["--key", "-"], ["--secret-file", "-"]] {
        let out = jwtkit_stdin(
            dir.path(),
            &["sign", key[0], key[1], "--alg", "HS256", "--claims", "-"],
            Stdin::Bytes(b"{}"),
        );
        assert_usage(
            &out,
            &["--claims -", &format!("{} -", key[0]), "only one of them"],
        );
    }
}

// ---- item 5: the payload from a file or stdin ------------------------------

#[test]
fn claims_from_a_file_and_from_stdin() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("payload.json"),
        r#"{"sub":"alice","role":"admin","n":[1,2]}"#,
    )
    .unwrap();
    let t = token(dir.path(), &["--claims", "@payload.json", "--exp", "5m"]);
    let claims = &verify(dir.path(), &t)["claims"];
    assert_eq!(claims["role"], json!("admin"));
    assert_eq!(claims["n"], json!([1, 2]));
    assert_eq!(claims["sub"], json!("alice"));

    let now = NOW.to_string();
    let out = jwtkit_stdin(
        dir.path(),
        &sign_args(&now, &["--claims", "-", "--exp", "5m"]),
        Stdin::Bytes(br#"{"sub":"bob","scope":"read"}"#),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    let claims = &verify(dir.path(), out.stdout.trim())["claims"];
    assert_eq!(claims["sub"], json!("bob"));
    assert_eq!(claims["scope"], json!("read"));

    // The strict rules apply to each source, and errors name it.
    std::fs::write(dir.path().join("dup.json"), r#"{"a":1,"a":2}"#).unwrap();
    let out = sign(dir.path(), &["--claims", "@dup.json"]);
    assert_usage(&out, &["--claims @dup.json", "duplicate member name"]);
    let out = jwtkit_stdin(
        dir.path(),
        &sign_args(&now, &["--claims", "-"]),
        Stdin::Bytes(b"[1]"),
    );
    assert_usage(&out, &["--claims -", "stdin must hold one JSON object"]);
    let out = jwtkit_stdin(
        dir.path(),
        &sign_args(&now, &["--claims", "-"]),
        Stdin::Bytes(b""),
    );
    assert_usage(&out, &["--claims -", "stdin is empty"]);
    let out = sign(dir.path(), &["--claims", "@missing.json"]);
    assert_usage(
        &out,
        &["--claims @missing.json", "cannot read missing.json"],
    );
    let out = sign(dir.path(), &["--claims", "@"]);
    assert_usage(&out, &["--claims @payload.json"]);
    let out = sign(dir.path(), &["--claims", "@."]);
    assert_usage(&out, &["--claims @.", "directory"]);
    let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(1024 * 1024));
    std::fs::write(dir.path().join("big.json"), big).unwrap();
    let out = sign(dir.path(), &["--claims", "@big.json"]);
    assert_usage(&out, &["--claims @big.json", "larger than 1048576 bytes"]);
    // A file name given without `@` is not JSON: the hint says how to read a file.
    let out = sign(dir.path(), &["--claims", "payload.json"]);
    assert_usage(&out, &["--claims @FILE", "--claims -"]);
}

#[test]
fn piped_stdin_that_nothing_reads_is_a_warning_naming_claims_dash() {
    let dir = tempdir();
    let now = NOW.to_string();
    let args = sign_args(&now, &["--sub", "alice", "--exp", "5m"]);
    // `cat payload.json | jwtkit sign …` (a pipe with data).
    let out = jwtkit_stdin(dir.path(), &args, Stdin::Bytes(br#"{"role":"admin"}"#));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("stdin holds data that nothing reads")
            && out.stderr.contains("pass --claims -"),
        "{}",
        out.stderr
    );
    // The token holds the flags' claims only: nothing was read from stdin.
    let claims = &verify(dir.path(), out.stdout.trim())["claims"];
    assert_eq!(claims["sub"], json!("alice"));
    assert_eq!(claims.get("role"), None);
    // `jwtkit sign … < payload.json` (a file with data).
    std::fs::write(dir.path().join("payload.json"), r#"{"role":"admin"}"#).unwrap();
    let out = jwtkit_stdin(
        dir.path(),
        &args,
        Stdin::File(&dir.path().join("payload.json")),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("pass --claims -"), "{}", out.stderr);

    // Nothing piped: no warning, and no wait.
    std::fs::write(dir.path().join("empty"), "").unwrap();
    for stdin in [
        Stdin::Bytes(b""),
        Stdin::File(&dir.path().join("empty")),
        Stdin::File(Path::new("/dev/null")),
    ] {
        let out = jwtkit_stdin(dir.path(), &args, stdin);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    }
    // A pipe that stays open and empty (a runner that never closes stdin):
    // signed without blocking on it.
    let started = Instant::now();
    let out = jwtkit_stdin(dir.path(), &args, Stdin::OpenEmptyPipe);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
    // Flags that read stdin themselves: no warning.
    let out = jwtkit_stdin(
        dir.path(),
        &[
            "sign",
            "--secret-file",
            "-",
            "--alg",
            "HS256",
            "--exp",
            "5m",
            "--now",
            &now,
        ],
        Stdin::Bytes(format!("{SECRET}\n").as_bytes()),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn a_while_read_loop_keeps_its_input() {
    // The check never reads stdin: a loop feeding names line by line still
    // gets every line after jwtkit ran inside it.
    let dir = tempdir();
    let bin = env!("CARGO_BIN_EXE_jwtkit");
    let script = format!(
        "printf 'alice\\nbob\\ncarol\\n' | while read -r u; do \
         '{bin}' sign --secret-env {SECRET_ENV} --alg HS256 --exp 5m --sub \"$u\" \
         >/dev/null 2>&1 || exit 9; echo \"$u\"; done"
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env(SECRET_ENV, SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alice\nbob\ncarol\n");
}

#[test]
fn flags_win_over_the_payload() {
    let dir = tempdir();
    let payload = json!({
        "iss": "payload-iss", "sub": "payload-sub", "aud": "payload-aud",
        "jti": "payload-jti", "exp": NOW + 60, "nbf": NOW - 60, "iat": NOW - 100,
        "role": "admin"
    })
    .to_string();
    // Without flags the payload stands, its `iat` included.
    let t = token(dir.path(), &["--claims", &payload]);
    let claims = &verify_with(dir.path(), &t, NOW, &["--aud", "payload-aud"])["claims"];
    assert_eq!(claims["iat"], json!(NOW - 100));
    assert_eq!(claims["sub"], json!("payload-sub"));
    // Each flag replaces the payload's member.
    let t = token(
        dir.path(),
        &[
            "--claims", &payload, "--iss", "flag-iss", "--sub", "flag-sub", "--aud", "a1", "--aud",
            "a2", "--jti", "flag-jti", "--exp", "10m", "--nbf", "-5s", "--iat", "-1s",
        ],
    );
    let claims = &verify_with(dir.path(), &t, NOW, &["--aud", "a2"])["claims"];
    assert_eq!(
        *claims,
        json!({
            "iss": "flag-iss", "sub": "flag-sub", "aud": ["a1", "a2"], "jti": "flag-jti",
            "exp": NOW + 600, "nbf": NOW - 5, "iat": NOW - 1, "role": "admin"
        })
    );
    // --no-iat removes even the payload's iat.
    let t = token(dir.path(), &["--claims", &payload, "--no-iat"]);
    let claims = &verify_with(dir.path(), &t, NOW, &["--aud", "payload-aud"])["claims"];
    assert_eq!(claims.get("iat"), None);
    assert_eq!(claims["exp"], json!(NOW + 60));
    // --iat and --no-iat contradict each other.
    let out = sign(dir.path(), &["--iat", "0s", "--no-iat"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--no-iat"), "{}", out.stderr);
}

#[test]
fn integers_keep_their_exact_value() {
    let dir = tempdir();
    let payload = r#"{"big":18446744073709551615,"min":-9223372036854775808,"two63":9223372036854775808,"f":1.5}"#;
    let t = token(dir.path(), &["--claims", payload, "--exp", "5m"]);
    let segment = t.split('.').nth(1).unwrap();
    let json = String::from_utf8(base64url_decode(segment)).unwrap();
    // Exactly as written, never as floats.
    for literal in [
        "\"big\":18446744073709551615",
        "\"min\":-9223372036854775808",
        "\"two63\":9223372036854775808",
        "\"f\":1.5",
    ] {
        assert!(json.contains(literal), "{literal} not in {json}");
    }
    for bad in [
        r#"{"n":18446744073709551616}"#,
        r#"{"deep":{"n":[-9223372036854775809]}}"#,
        r#"{"exp":99999999999999999999999}"#,
    ] {
        let out = sign(dir.path(), &["--claims", bad]);
        assert_usage(
            &out,
            &["--claims", "outside the 64-bit range", "as a string"],
        );
    }
}

// ---- item 6: --exp, --nbf, --iat ------------------------------------------

/// The claims of a token signed with `extra` at NOW (verified at `at`).
fn claims_at(dir: &Path, extra: &[&str], at: i64) -> Value {
    let t = token(dir, extra);
    verify_at(dir, &t, at)["claims"].clone()
}

#[test]
fn every_form_of_exp_nbf_and_iat() {
    let dir = tempdir();
    let d = dir.path();
    // Offsets, with and without a sign.
    let c = claims_at(d, &["--exp", "15m"], NOW);
    assert_eq!(
        (c["exp"].clone(), c["iat"].clone()),
        (json!(NOW + 900), json!(NOW))
    );
    assert_eq!(
        claims_at(d, &["--exp", "+15m"], NOW)["exp"],
        json!(NOW + 900)
    );
    assert_eq!(
        claims_at(d, &["--exp", "2d"], NOW)["exp"],
        json!(NOW + 172_800)
    );
    // A bare integer: a NumericDate.
    assert_eq!(
        claims_at(d, &["--exp", "1800003600"], NOW)["exp"],
        json!(1_800_003_600)
    );
    // RFC 3339 in UTC and with an offset (the same instant).
    for rfc3339 in [
        "2027-01-15T09:00:00Z",
        "2027-01-15T11:00:00+02:00",
        "2027-01-15T04:30:00-04:30",
        "2027-01-15T09:00:00.750Z",
    ] {
        assert_eq!(
            claims_at(d, &["--exp", rfc3339], NOW)["exp"],
            json!(NOW + 3600),
            "{rfc3339}"
        );
    }
    // nbf and iat read every form, negative offsets included.
    let c = claims_at(
        d,
        &[
            "--exp",
            "1h",
            "--nbf",
            "-30s",
            "--iat",
            "2027-01-15T07:59:00Z",
        ],
        NOW,
    );
    assert_eq!(c["nbf"], json!(NOW - 30));
    assert_eq!(c["iat"], json!(NOW - 60));
    let c = claims_at(
        d,
        &["--exp", "1h", "--nbf", "1799999000", "--iat", "-5m"],
        NOW,
    );
    assert_eq!(
        (c["nbf"].clone(), c["iat"].clone()),
        (json!(1_799_999_000), json!(NOW - 300))
    );
    let c = claims_at(d, &["--exp", "1h", "--nbf", "+10m"], NOW + 700);
    assert_eq!(c["nbf"], json!(NOW + 600));
    let c = claims_at(
        d,
        &[
            "--exp",
            "2027-01-15T11:00:00+01:00",
            "--nbf",
            "2027-01-15T08:30:00Z",
        ],
        NOW + 1800,
    );
    assert_eq!(
        (c["exp"].clone(), c["nbf"].clone()),
        (json!(NOW + 7200), json!(NOW + 1800))
    );
    // --no-iat.
    let c = claims_at(d, &["--exp", "1h", "--no-iat"], NOW);
    assert_eq!(c.get("iat"), None);
    assert_eq!(c["exp"], json!(NOW + 3600));
}

/// Issue 13 item 6: `--exp 4000000000` was now + 4e9 s; it is the
/// NumericDate 4000000000 (2096-10-02T07:06:40Z).
#[test]
fn a_bare_integer_exp_is_a_numeric_date_not_a_lifetime() {
    let dir = tempdir();
    let c = claims_at(dir.path(), &["--exp", "4000000000"], NOW);
    assert_eq!(c["exp"], json!(4_000_000_000u64));
    // A small number is a time long past, and the message says what it
    // meant and how to write a lifetime.
    let out = sign(dir.path(), &["--exp", "3600"]);
    assert_usage(
        &out,
        &[
            "would be expired when signed",
            "NumericDate 3600",
            "1970-01-01T01:00:00Z",
            "--exp 3600s",
        ],
    );
}

#[test]
fn impossible_times_are_refused_with_the_accepted_forms() {
    let dir = tempdir();
    let d = dir.path();
    // exp may not be a negative offset; nbf and iat may.
    let out = sign(d, &["--exp", "-30s"]);
    assert_usage(&out, &["-30s", "expired when signed"]);
    // An absolute exp in the past.
    let out = sign(d, &["--exp", "2020-01-01T00:00:00Z"]);
    assert_usage(&out, &["expired when signed", "not in the future"]);
    // exp not after nbf.
    let out = sign(d, &["--exp", "10m", "--nbf", "2027-01-15T09:00:00Z"]);
    assert_usage(&out, &["never be valid", "later than --nbf"]);
    // Malformed values list every form.
    for (flag, bad) in [
        ("--exp", "soon"),
        ("--exp", "1.5h"),
        ("--nbf", "yesterday"),
        ("--iat", "15x"),
        ("--exp", "2027-01-15T09:00:00"),
        ("--exp", "2027-02-30T00:00:00Z"),
        ("--nbf", "-30"),
        ("--exp", "99999999999999"),
    ] {
        let out = sign(d, &[flag, bad]);
        assert_eq!(out.code, 2, "{flag} {bad}: {}", out.stderr);
        assert!(
            out.stderr.contains(flag)
                && (out.stderr.contains("15m")
                    || out.stderr.contains("2026-12-01T00:00:00Z")
                    || out.stderr.contains("-30s")
                    || out.stderr.contains("unit must be")
                    || out.stderr.contains("9999")),
            "{flag} {bad}: {}",
            out.stderr
        );
    }
    // An iat in the future signs, with a warning that verifiers wait for it.
    let out = sign(d, &["--exp", "1h", "--iat", "+10m"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("iat") && out.stderr.contains("refuse the token until then"));
}

#[test]
fn help_says_which_forms_each_time_flag_reads() {
    let dir = tempdir();
    let out = jwtkit(dir.path(), &["sign", "--help"]);
    assert_eq!(out.code, 0);
    let help = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for fragment in [
        "`--typ ''` omits typ",
        "NumericDate (Unix seconds: 1716163200)",
        "RFC 3339 date-time (2026-12-01T00:00:00Z, 2026-12-01T02:00:00+02:00)",
        "A bare number is a time, never a lifetime",
        "`--nbf -30s`",
        "--no-iat",
        "--jti auto",
        "The flags below win over the payload",
        "`@FILE`",
        "--header <NAME=VALUE>",
    ] {
        assert!(help.contains(fragment), "{fragment:?} not in sign --help");
    }
    // Verify-only flags are not offered by sign.
    assert!(!help.contains("--jwks-url"), "{help}");
    assert!(!help.contains("--dangerous-allow-weak-key"), "{help}");
}

// ---- item 7: --header, --jti auto -----------------------------------------

#[test]
fn header_parameters_are_added() {
    let dir = tempdir();
    let t = token(
        dir.path(),
        &[
            "--exp",
            "5m",
            "--header",
            "env=prod",
            "--header",
            "ver=2",
            "--header",
            r#"x={"a":[1,true]}"#,
            "--header",
            r#"s="2""#,
            "--header",
            "cty=example",
            "--header",
            "x5t#S256=abc",
        ],
    );
    let header = &verify(dir.path(), &t)["header"];
    assert_eq!(
        *header,
        json!({
            "alg": "HS256", "typ": "JWT", "cty": "example", "env": "prod", "ver": 2,
            "x": {"a": [1, true]}, "s": "2", "x5t#S256": "abc"
        })
    );
}

#[test]
fn refused_header_parameters_name_the_right_flag() {
    let dir = tempdir();
    for (name, fragment) in [
        ("alg", "--alg"),
        ("kid", "--kid"),
        ("typ", "--typ"),
        ("crit", "critical"),
        ("b64", "RFC 7797"),
        ("jku", "jwtkit keys jwks"),
        ("x5u", "jwtkit keys jwks"),
        ("jwk", "jwtkit keys jwks"),
        ("x5c", "jwtkit keys jwks"),
    ] {
        let item = format!("{name}=x");
        let out = sign(dir.path(), &["--exp", "5m", "--header", &item]);
        assert_usage(&out, &[&format!("--header {name}:"), fragment]);
    }
    for (args, fragment) in [
        (&["--header", "novalue"][..], "expected NAME=VALUE"),
        (&["--header", "=1"], "name is empty"),
        (&["--header", "a=1", "--header", "a=2"], "given twice"),
        (&["--header", "a={oops"], "starts like JSON"),
        (&["--header", r#"a={"k":1,"k":2}"#], "duplicate member name"),
        (&["--header", "cty=1"], "must be a string"),
        (&["--header", "n=18446744073709551616"], "64-bit range"),
    ] {
        let out = sign(dir.path(), args);
        assert_usage(&out, &[fragment]);
    }
}

#[test]
fn jti_auto_is_a_fresh_128_bit_id() {
    let dir = tempdir();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        let t = token(dir.path(), &["--exp", "5m", "--jti", "auto"]);
        let jti = verify(dir.path(), &t)["claims"]["jti"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(jti.len(), 22, "{jti}");
        assert!(
            jti.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{jti}"
        );
        assert_eq!(base64url_decode(&jti).len(), 16, "{jti}");
        assert!(seen.insert(jti), "repeated jti");
    }
    // Any other value is the jti itself.
    let t = token(dir.path(), &["--exp", "5m", "--jti", "id-1"]);
    assert_eq!(verify(dir.path(), &t)["claims"]["jti"], json!("id-1"));
}

// ---- the store path with the new forms ------------------------------------

#[test]
fn the_stores_max_lifetime_bounds_absolute_times_too() {
    let dir = tempdir();
    let now = NOW.to_string();
    let init = run(
        dir.path(),
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
    assert_eq!(init.code, 0, "{}", init.stderr);
    let sign_store = |extra: &[&str]| {
        let mut args = vec!["sign", "--store", "file:keys", "--now", &now];
        args.extend_from_slice(extra);
        run(dir.path(), &args)
    };
    for too_late in [
        "2027-01-15T09:00:01Z",
        "1800003601",
        "2027-01-15T10:00:01+01:00",
    ] {
        let out = sign_store(&["--exp", too_late]);
        assert_usage(
            &out,
            &[
                &format!("--exp {too_late}"),
                "max_token_lifetime = 1h",
                "--exp 1h or less",
            ],
        );
    }
    for fine in ["2027-01-15T09:00:00Z", "1800003600", "2027-01-15T08:30:00Z"] {
        let out = sign_store(&["--exp", fine]);
        assert_eq!(out.code, 0, "{fine}: {}", out.stderr);
    }
    // The default exp with --no-iat: no iat comes back.
    let out = sign_store(&["--no-iat"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let claims: Value = serde_json::from_slice(&base64url_decode(
        out.stdout.trim().split('.').nth(1).unwrap(),
    ))
    .unwrap();
    assert_eq!(claims, json!({"exp": NOW + 3600}));
}

fn base64url_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64url ({e}): {text}"))
}
