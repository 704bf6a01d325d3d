//! Issue 11, item 13: text that came from a token or a remote document never
//! reaches the terminal raw. The real `jwtkit` binary, on every output path
//! a token's text can take: `inspect` (text and `--json`), `verify` valid
//! (text and `--json`), `verify` rejecting an unknown `kid` (stderr and
//! `--json`), and a `--jwks-url` answer quoted in an error.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_core::{Algorithm, Jwks, SigningKey};
use serde_json::{json, Value};

/// The `kid` of the issue: paints "valid" green.
const ANSI_KID: &str = "\u{1b}[32mvalid\u{1b}[0m";
/// Its escaped form, as printed.
const ANSI_KID_SHOWN: &str = "\\u001b[32mvalid\\u001b[0m";

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the real binary with a 30 s deadline (killed after it).
fn jwtkit(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn jwtkit");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("jwtkit {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8(out_reader.join().unwrap()).expect("stdout is UTF-8");
    let stderr = String::from_utf8(err_reader.join().unwrap()).expect("stderr is UTF-8");
    assert!(!stderr.contains("panicked"), "{stderr}");
    Output {
        code: status.code().expect("exit code"),
        stdout,
        stderr,
    }
}

/// Characters a terminal acts on; none may be printed raw.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect()
}

fn assert_clean(what: &str, out: &Output) {
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let raw = raw_controls(text);
        assert!(raw.is_empty(), "{what}: raw {raw:?} on {stream}: {text:?}");
    }
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        assert!(
            !line.starts_with("valid: ") || what.starts_with("verify valid"),
            "{what}: a forged line {line:?}"
        );
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    key: SigningKey,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let mut jwk = key.to_public_jwk().unwrap();
        jwk.alg = Some("ES256".into());
        jwk.kid = None;
        std::fs::write(
            dir.path().join("key.jwk"),
            serde_json::to_string(&jwk).unwrap(),
        )
        .unwrap();
        let mut known = jwk.clone();
        known.kid = Some("known".into());
        let jwks = Jwks { keys: vec![known] };
        std::fs::write(dir.path().join("jwks.json"), jwks.to_json()).unwrap();
        Fixture { dir, key }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A real ES256 token over any header (built by hand: the header is
    /// the attacker's).
    fn token(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
        );
        let sig = self
            .key
            .sign_raw(Algorithm::ES256, input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn run(&self, args: &[&str]) -> Output {
        jwtkit(self.dir.path(), args)
    }
}

fn hostile_header(kid: &str) -> Value {
    json!({
        "alg": "ES256",
        "kid": kid,
        "typ": "JWT\u{9b}31m",
        "cty": "x\u{202e}gnp.exe",
        "x\u{1b}]0;pwned\u{7}": "\u{85}\u{7f}\u{2066}",
    })
}

fn hostile_claims() -> Value {
    json!({
        "sub": "alice\u{1b}[2K\u{9b}1A",
        "role\u{202e}nimda": "\u{2067}user",
        "exp": 4_000_000_000u64,
    })
}

#[test]
fn inspect_text_escapes_every_header_field_and_claim() {
    let f = Fixture::new();
    let token = f.token(&hostile_header(ANSI_KID), &hostile_claims());
    let out = f.run(&["inspect", &token]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_clean("inspect", &out);
    assert!(
        out.stdout.contains(&format!("kid: {ANSI_KID_SHOWN}")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("typ: JWT\\u009b31m"), "{}", out.stdout);
    assert!(
        out.stdout.contains("cty: x\\u202egnp.exe"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("x\\u001b]0;pwned\\u0007: \"\\u0085\\u007f\\u2066\""),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("role\\u202enimda"), "{}", out.stdout);
}

#[test]
fn inspect_text_a_kid_cannot_start_a_line() {
    let f = Fixture::new();
    let kid = "k\nvalid: signature and claims verified\r";
    let token = f.token(&hostile_header(kid), &hostile_claims());
    let out = f.run(&["inspect", &token]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_clean("inspect", &out);
    assert!(
        out.stdout
            .contains("kid: k\\u000avalid: signature and claims verified\\u000d"),
        "{}",
        out.stdout
    );
}

#[test]
fn inspect_json_is_escaped_and_still_means_the_same() {
    let f = Fixture::new();
    let header = hostile_header(ANSI_KID);
    let claims = hostile_claims();
    let token = f.token(&header, &claims);
    let out = f.run(&["inspect", "--json", &token]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_clean("inspect --json", &out);
    assert!(
        out.stdout.contains("\\u0085\\u007f\\u2066"),
        "{}",
        out.stdout
    );
    let doc: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["header"], header);
    assert_eq!(doc["claims"], claims);
}

#[test]
fn verify_valid_text_and_json_are_escaped() {
    let f = Fixture::new();
    let header = hostile_header(ANSI_KID);
    let claims = hostile_claims();
    let token = f.token(&header, &claims);
    let key = f.path("key.jwk");
    let key = key.to_str().unwrap();

    let out = f.run(&["verify", "--key", key, "--alg", "ES256", &token]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_clean("verify valid", &out);
    assert!(out
        .stdout
        .starts_with("valid: signature and claims verified\n"));
    assert_eq!(out.stdout.matches("valid: ").count(), 1, "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("kid: {ANSI_KID_SHOWN}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("alice\\u001b[2K\\u009b1A"),
        "{}",
        out.stdout
    );

    let out = f.run(&["verify", "--json", "--key", key, "--alg", "ES256", &token]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_clean("verify valid --json", &out);
    let doc: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["header"], header);
    assert_eq!(doc["claims"], claims);
}

#[test]
fn verify_unknown_kid_is_escaped_in_the_error() {
    let f = Fixture::new();
    let kid = format!("{ANSI_KID}\u{9b}2J\u{202e}\nvalid: forged");
    let token = f.token(&hostile_header(&kid), &hostile_claims());
    let jwks = f.path("jwks.json");
    let jwks = jwks.to_str().unwrap();

    let out = f.run(&["verify", "--key", jwks, "--alg", "ES256", &token]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_clean("verify unknown kid", &out);
    assert!(out.stderr.contains("error [unknown_key]"), "{}", out.stderr);
    // The library quotes the token's kid with Rust's escapes, so a log of
    // the error is safe too; the CLI's boundary has nothing left to do.
    assert!(out.stderr.contains(&format!("{kid:?}")), "{}", out.stderr);
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("error"))
            .count(),
        1
    );

    let out = f.run(&["verify", "--json", "--key", jwks, "--alg", "ES256", &token]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_clean("verify unknown kid --json", &out);
    let doc: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["error"], "unknown_key");
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{kid:?}")),
        "the JSON names the kid, quoted: {doc}"
    );
}

/// A one-shot HTTP server on 127.0.0.1 that answers with `response`.
fn serve_once(response: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let Ok((mut sock, _)) = listener.accept() else {
            return;
        };
        let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let _ = sock.write_all(&response);
    });
    (url, handle)
}

#[test]
fn verify_jwks_url_quotes_a_remote_location_escaped() {
    let f = Fixture::new();
    let token = f.token(&json!({"alg": "ES256", "kid": "known"}), &hostile_claims());
    let mut response = b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/".to_vec();
    response.extend_from_slice("\u{9b}31mvalid\u{202e}".as_bytes());
    response.extend_from_slice(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let (url, server) = serve_once(response);
    let out = f.run(&["verify", "--jwks-url", &url, "--alg", "ES256", &token]);
    server.join().unwrap();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_clean("verify --jwks-url redirect", &out);
    assert!(out.stderr.contains("HTTP 302"), "{}", out.stderr);
    assert!(
        out.stderr.contains("configure the final JWKS URL"),
        "{}",
        out.stderr
    );
}

/// A multi-line diagnostic (a TOML parse error with its caret lines) keeps
/// its lines, each after the first indented, rather than being folded into
/// one line of `\u000a` escapes.
#[test]
fn multi_line_errors_stay_readable_and_indented() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), "shutdown_timeout = \"10s\"\n").unwrap();
    let out = jwtkit(dir.path(), &["serve", "--config", "c.toml"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains("\\u000a"), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(lines.len() > 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with("error [usage]") || lines[0].starts_with("error ["),
        "{}",
        out.stderr
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.is_empty() || l.starts_with("  ")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("shutdown_timeout"), "{}", out.stderr);
}

/// Found by the outside review: clap's own "invalid value" errors quote the
/// argument, and clap strips only ESC from it; CR and bidi controls reached
/// the terminal raw.
#[test]
fn command_line_errors_quote_arguments_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = "ES\u{202e}256\rvalid: forged\u{2066}";
    let out = jwtkit(dir.path(), &["sign", "--exp", hostile, "--alg", "ES256"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_clean("clap invalid value", &out);
    assert!(out.stderr.contains("\\u202e"), "{}", out.stderr);
}
