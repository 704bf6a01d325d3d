//! Issue 12: every key source of `jwtkit verify` goes through one verifier,
//! and one rule says which algorithms a key verifies with — the key's own
//! (a JWKS entry's `alg`, a store's record) or `--alg` where it names none.
//! The token service applies the same rule to the same store.

mod common;

use common::{jwtkit, ok};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jwtkit::{AccessClaims, FileKeyStore, TokenService};
use serde_json::{json, Value};

/// `jwtkit verify --json …`: the exit code and the `error` kind (or "ok").
fn verify(dir: &Path, args: &[&str]) -> (i32, String, Value) {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let run = jwtkit(dir, &all);
    let doc = run.json();
    let kind = doc["error"].as_str().unwrap_or("ok").to_owned();
    (run.code, kind, doc)
}

/// The public JWK of `pem`, with `kid` and, when given, `alg` (else none).
fn entry(dir: &Path, pem: &str, kid: &str, alg: Option<&str>) -> Value {
    let jwks: Value = serde_json::from_str(&ok(dir, &["keys", "jwks", pem])).unwrap();
    let mut jwk = jwks["keys"][0].clone();
    jwk["kid"] = json!(kid);
    match alg {
        Some(alg) => jwk["alg"] = json!(alg),
        None => {
            jwk.as_object_mut().unwrap().remove("alg");
        }
    }
    jwk
}

/// An HTTP server on 127.0.0.1 answering every request with `jwks`, for
/// as long as the test runs.
fn serve_jwks(jwks: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { continue };
            let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{jwks}",
                jwks.len()
            );
            let _ = sock.write_all(response.as_bytes());
        }
    });
    url
}

fn sign(dir: &Path, key: &[&str], alg: &str, kid: &str, extra: &[&str]) -> String {
    // `--kid=…`: a thumbprint kid may start with `-`.
    let kid = format!("--kid={kid}");
    let mut args = vec!["sign", "--alg", alg, &kid, "--exp", "5m"];
    args.extend_from_slice(key);
    args.extend_from_slice(extra);
    ok(dir, &args).trim().to_owned()
}

#[test]
fn jwks_url_without_alg_uses_the_alg_each_entry_declares() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for (alg, file) in [("ES256", "a.pem"), ("ES256", "b.pem"), ("RS256", "r.pem")] {
        ok(dir, &["keys", "generate", "--alg", alg, "--out", file]);
    }
    let jwks = json!({"keys": [
        entry(dir, "a.pem", "a", Some("ES256")),
        entry(dir, "b.pem", "b", None),
        entry(dir, "r.pem", "r", Some("RS256")),
    ]});
    let url = serve_jwks(jwks.to_string());
    let source = ["--jwks-url", url.as_str()];
    let with = |token: &str, extra: &[&str]| {
        let mut args: Vec<&str> = source.to_vec();
        args.extend_from_slice(extra);
        args.push(token);
        verify(dir, &args)
    };

    // The entry selected by the kid declares ES256 and the token uses it.
    let token = sign(dir, &["--key", "a.pem"], "ES256", "a", &["--sub", "alice"]);
    let (code, kind, doc) = with(&token, &[]);
    assert_eq!((code, kind.as_str()), (0, "ok"), "{doc}");
    assert_eq!(doc["claims"]["sub"], "alice");
    let token = sign(dir, &["--key", "r.pem"], "RS256", "r", &[]);
    assert_eq!(with(&token, &[]).1, "ok");

    // The token's alg differs from the entry's (same RSA key, PS256).
    let token = sign(dir, &["--key", "r.pem"], "PS256", "r", &[]);
    let (code, kind, doc) = with(&token, &[]);
    assert_eq!((code, kind.as_str()), (1, "invalid_algorithm"), "{doc}");
    // …even when --alg allows PS256: the entry is bound to RS256.
    let (code, kind, _) = with(&token, &["--alg", "PS256"]);
    assert_eq!((code, kind.as_str()), (1, "invalid_algorithm"));

    // An entry without `alg` needs --alg, and the usage error says so.
    let token = sign(dir, &["--key", "b.pem"], "ES256", "b", &[]);
    let (code, kind, doc) = with(&token, &[]);
    assert_eq!((code, kind.as_str()), (2, "usage"), "{doc}");
    let message = doc["message"].as_str().unwrap();
    assert!(message.starts_with("--alg is required"), "{message}");
    assert!(message.contains("`b`"), "names the entry: {message}");
    assert_eq!(with(&token, &["--alg", "ES256"]).1, "ok");
    // --alg restricts: the ES256-bound entry no longer verifies with --alg RS256.
    let token = sign(dir, &["--key", "a.pem"], "ES256", "a", &[]);
    assert_eq!(with(&token, &["--alg", "RS256"]).1, "invalid_algorithm");
}

#[test]
fn verify_help_states_the_algorithm_rule() {
    let dir = tempfile::tempdir().unwrap();
    let help = ok(dir.path(), &["verify", "--help"]);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    // The statements of the "--alg by key source" section (issue 13 item 2;
    // every one is run in tests/verify_hints.rs).
    for fragment in [
        "A JWK with `alg` verifies with that algorithm only",
        "--key JWKS file, --jwks-url URL The entry is picked by the token's `kid`. An entry \
         with `alg` verifies with that algorithm only",
        "--store URI Every key is bound to its record's algorithm",
        "a token using another is rejected (exit 1 `invalid_algorithm`)",
        "An entry without `alg` needs --alg",
        "The key names no algorithm: --alg is required",
        "the key type is never used to guess an algorithm",
    ] {
        assert!(help.contains(fragment), "missing {fragment:?} in: {help}");
    }
}

const ISS: &str = "https://auth.test";
const AUD: &str = "api";

async fn service(store: &Path) -> TokenService {
    TokenService::builder()
        .key_store(FileKeyStore::open(PathBuf::from(store)))
        .issuer(ISS)
        .audience(AUD)
        .build()
        .await
        .unwrap()
}

/// The same file store and the same tokens: the service and `jwtkit verify
/// --store` both accept the store's algorithm and refuse every other one
/// under the same kid as `invalid_algorithm` — including the family's
/// default algorithm signed with the store's own key (RS256 from a PS256
/// key), the guess the service used to make.
#[tokio::test]
async fn the_service_and_the_cli_agree_on_a_stores_algorithms() {
    agree("ES256", &[]).await;
    agree("PS256", &["RS256", "PS384"]).await;
}

async fn agree(store_alg: &str, same_key_algs: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    ok(dir, &["store", "init", "file:s", "--alg", store_alg]);
    ok(
        dir,
        &["keys", "generate", "--alg", "HS256", "--out", "hs.key"],
    );
    ok(
        dir,
        &["keys", "generate", "--alg", "ES256", "--out", "ec.pem"],
    );
    ok(
        dir,
        &["keys", "generate", "--alg", "EdDSA", "--out", "ed.pem"],
    );
    let tokens = service(&dir.join("s")).await;

    let good = tokens.issue("alice", &()).await.unwrap().access_token;
    let kid = jwt_core::dangerous::insecure_decode_header(&good)
        .unwrap()
        .kid
        .unwrap();
    let own_key = format!("s/{kid}.pem");
    let claims = [
        "--typ", "at+jwt", "--iss", ISS, "--aud", AUD, "--sub", "mallory", "--jti", "j1",
    ];
    let mut forged: Vec<(String, String)> = vec![
        (
            "HS256".into(),
            sign(dir, &["--secret-file", "hs.key"], "HS256", &kid, &claims),
        ),
        (
            "EdDSA".into(),
            sign(dir, &["--key", "ed.pem"], "EdDSA", &kid, &claims),
        ),
    ];
    if store_alg != "ES256" {
        forged.push((
            "ES256".into(),
            sign(dir, &["--key", "ec.pem"], "ES256", &kid, &claims),
        ));
    }
    for alg in same_key_algs {
        forged.push((
            format!("{alg} with the store's own key"),
            sign(dir, &["--key", &own_key], alg, &kid, &claims),
        ));
    }
    let cli = |token: &str| {
        verify(
            dir,
            &[
                "--store", "file:s", "--iss", ISS, "--aud", AUD, "--typ", "at+jwt", token,
            ],
        )
    };

    let claims: AccessClaims = tokens.verify_access(&good).unwrap();
    assert_eq!(claims.sub, "alice");
    let (code, kind, doc) = cli(&good);
    assert_eq!((code, kind.as_str()), (0, "ok"), "{store_alg}: {doc}");
    assert_eq!(doc["header"]["alg"], store_alg);

    for (alg, token) in &forged {
        match tokens.verify_access::<Value>(token) {
            Err(jwtkit::Error::InvalidToken(e)) => assert_eq!(
                e.kind(),
                jwt_core::ErrorKind::InvalidAlgorithm,
                "{store_alg} store, {alg}: {e}"
            ),
            other => panic!("{store_alg} store, {alg}: the service answered {other:?}"),
        }
        let (code, kind, doc) = cli(token);
        assert_eq!(
            (code, kind.as_str()),
            (1, "invalid_algorithm"),
            "{store_alg} store, {alg}: {doc}"
        );
    }
}

/// Found by the outside review: a JWKS given as a file kept only the first
/// key of a duplicated kid (and printed a warning per skipped entry), while
/// the same bytes served at `--jwks-url` tried each key. One document, one
/// verdict: both try each key of a kid, and the file path warns once.
#[test]
fn a_jwks_file_and_a_jwks_url_agree_on_duplicated_kids() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for file in ["a.pem", "b.pem"] {
        ok(dir, &["keys", "generate", "--alg", "ES256", "--out", file]);
    }
    let mut keys = vec![entry(dir, "a.pem", "k", Some("ES256"))];
    keys.extend((0..3).map(|_| entry(dir, "b.pem", "k", Some("ES256"))));
    let jwks = json!({ "keys": keys }).to_string();
    std::fs::write(dir.join("jwks.json"), &jwks).unwrap();
    let url = serve_jwks(jwks);

    // Signed by the second key of kid `k`.
    let token = sign(dir, &["--key", "b.pem"], "ES256", "k", &["--sub", "bob"]);
    let (code, kind, doc) = verify(dir, &["--key", "jwks.json", &token]);
    assert_eq!((code, kind.as_str()), (0, "ok"), "{doc}");
    let (code, kind, doc) = verify(dir, &["--jwks-url", &url, &token]);
    assert_eq!((code, kind.as_str()), (0, "ok"), "{doc}");

    let run = jwtkit(dir, &["verify", "--key", "jwks.json", &token]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings = run.stderr.lines().filter(|l| l.contains("warning")).count();
    assert_eq!(warnings, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("3 JWKS entries share a kid"),
        "{}",
        run.stderr
    );
}

/// Found by the second new-user review: the usage error for a JWKS without
/// `alg` suggested `--alg RS256` for an EC key. It now names the algorithms
/// that fit each key.
#[test]
fn the_alg_hint_fits_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    ok(
        dir,
        &["keys", "generate", "--alg", "ES256", "--out", "e.pem"],
    );
    let jwks = json!({"keys": [entry(dir, "e.pem", "e", None)]}).to_string();
    std::fs::write(dir.join("jwks.json"), &jwks).unwrap();
    let token = sign(dir, &["--key", "e.pem"], "ES256", "e", &[]);
    let (code, kind, doc) = verify(dir, &["--key", "jwks.json", &token]);
    assert_eq!((code, kind.as_str()), (2, "usage"), "{doc}");
    let message = doc["message"].as_str().unwrap();
    assert!(message.contains("ES256"), "{message}");
    assert!(!message.contains("RS256"), "{message}");

    let url = serve_jwks(jwks);
    let (code, kind, doc) = verify(dir, &["--jwks-url", &url, &token]);
    assert_eq!((code, kind.as_str()), (2, "usage"), "{doc}");
    assert!(!doc["message"].as_str().unwrap().contains("RS256"), "{doc}");
}

/// Found by the second outside review: one `--key` JWK bound to RS256 with
/// `--alg RS256 --alg PS256` answered a PS256 token with a configuration
/// error (exit 2), while the same key in a JWKS file rejected it (exit 1).
/// The token must not decide whether the setup is at fault.
#[test]
fn a_bound_single_key_rejects_other_listed_algorithms_as_the_token_s_fault() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    ok(
        dir,
        &["keys", "generate", "--alg", "RS256", "--out", "r.pem"],
    );
    let jwk = entry(dir, "r.pem", "r", Some("RS256"));
    std::fs::write(dir.join("r.jwk"), jwk.to_string()).unwrap();
    std::fs::write(dir.join("r.jwks"), json!({"keys": [jwk]}).to_string()).unwrap();
    let ps = sign(dir, &["--key", "r.pem"], "PS256", "r", &[]);
    let rs = sign(dir, &["--key", "r.pem"], "RS256", "r", &[]);
    for file in ["r.jwk", "r.jwks"] {
        let both = ["--key", file, "--alg", "RS256", "--alg", "PS256"];
        let mut args = both.to_vec();
        args.push(&ps);
        let (code, kind, doc) = verify(dir, &args);
        assert_eq!(
            (code, kind.as_str()),
            (1, "invalid_algorithm"),
            "{file}: {doc}"
        );
        let mut args = both.to_vec();
        args.push(&rs);
        assert_eq!(verify(dir, &args).1, "ok", "{file}");
    }
    // Only algorithms the key cannot use: the setup's fault, said up front.
    let (code, kind, doc) = verify(dir, &["--key", "r.jwk", "--alg", "PS256", &rs]);
    assert_eq!((code, kind.as_str()), (2, "usage"), "{doc}");
    assert!(
        doc["message"].as_str().unwrap().contains("bound to RS256"),
        "{doc}"
    );
}
