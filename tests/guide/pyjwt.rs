//! Interop with PyJWT 2.x (and `cryptography`), both ways, for HS256, RS256,
//! ES256, PS256 and EdDSA: tokens made by `jwt.encode` verify with
//! `jwtkit verify`, and tokens made by `jwtkit sign` decode with
//! `jwt.decode(token, key, algorithms=[…], audience=…, issuer=…)`. Keys come
//! from the guide's `openssl` commands. Also PyJWT's `PyJWKClient` reading
//! the JWKS jwtkit publishes, by `kid`.
//!
//! Python is the project's test venv (`scripts/services.sh venv`); without
//! it these tests skip locally, and fail under `scripts/test.sh` or CI.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{jwtkit_env, Run};
use crate::support::jwks_server::JwksServer;
use crate::support::{kid_of, openssl, openssl_bin, python, python_run};

const SECRET: &str = "pyjwt-interop-secret-of-at-least-32-bytes";
const ISS: &str = "https://auth.example.com";

/// The PyJWT side. `encode ALG KEYFILE` prints a token; `decode ALG KEYFILE
/// TOKEN` prints `{"header":…,"claims":…}` or `{"error": EXCEPTION CLASS}`;
/// `decode-aud AUD ALG KEYFILE TOKEN` decodes for another audience. HS*
/// keys come from $JWT_SECRET, as in the tutorials.
const PYJWT: &str = r#"
import json, os, sys, time
import jwt

def key(alg, path):
    if alg.startswith("HS"):
        return os.environ["JWT_SECRET"]
    with open(path, "rb") as f:
        return f.read()

mode = sys.argv[1]
if mode == "encode":
    alg, path = sys.argv[2], sys.argv[3]
    now = int(time.time())
    payload = {"sub": "alice", "iss": "https://auth.example.com", "aud": "my-api",
               "iat": now, "exp": now + 900, "jti": "py-" + alg, "scope": ["read", "write"]}
    print(jwt.encode(payload, key(alg, path), algorithm=alg, headers={"kid": "py-key"}))
else:
    audience = "my-api"
    if mode == "decode-aud":
        audience = sys.argv.pop(2)
    alg, path, token = sys.argv[2], sys.argv[3], sys.argv[4]
    try:
        claims = jwt.decode(token, key(alg, path), algorithms=[alg], audience=audience,
                            issuer="https://auth.example.com",
                            options={"require": ["exp", "iat", "sub"]})
        print(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}))
    except jwt.PyJWTError as e:
        print(json.dumps({"error": type(e).__name__, "message": str(e)}))
"#;

/// One algorithm's keys: `(alg, signing key file, verifying key file)`; for
/// HS256 the files are unused and the secret is `$JWT_SECRET`.
struct Case {
    alg: &'static str,
    private: &'static str,
    public: &'static str,
}

const CASES: [Case; 5] = [
    Case {
        alg: "HS256",
        private: "-",
        public: "-",
    },
    Case {
        alg: "RS256",
        private: "rsa.pem",
        public: "rsa.pub.pem",
    },
    Case {
        alg: "PS256",
        private: "rsa.pem",
        public: "rsa.pub.pem",
    },
    Case {
        alg: "ES256",
        private: "ec.pem",
        public: "ec.pub.pem",
    },
    Case {
        alg: "EdDSA",
        private: "ed.pem",
        public: "ed.pub.pem",
    },
];

/// The guide's keys: `openssl genrsa`, `openssl ecparam -genkey` (SEC1),
/// `openssl genpkey -algorithm ed25519`, and their `-pubout` halves.
fn make_keys(openssl_bin: &Path, dir: &Path) {
    openssl(openssl_bin, dir, &["genrsa", "-out", "rsa.pem", "2048"]);
    openssl(
        openssl_bin,
        dir,
        &["rsa", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem"],
    );
    openssl(
        openssl_bin,
        dir,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            "ec.pem",
        ],
    );
    openssl(
        openssl_bin,
        dir,
        &["ec", "-in", "ec.pem", "-pubout", "-out", "ec.pub.pem"],
    );
    openssl(
        openssl_bin,
        dir,
        &["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"],
    );
    openssl(
        openssl_bin,
        dir,
        &["pkey", "-in", "ed.pem", "-pubout", "-out", "ed.pub.pem"],
    );
}

fn env() -> [(&'static str, &'static str); 1] {
    [("JWT_SECRET", SECRET)]
}

/// `--key FILE`, or `--secret-env JWT_SECRET` for HS*.
fn key_args(case: &Case, file: &'static str) -> [&'static str; 2] {
    if case.alg.starts_with("HS") {
        ["--secret-env", "JWT_SECRET"]
    } else {
        ["--key", file]
    }
}

fn pyjwt(python: &Path, dir: &Path, args: &[&str]) -> String {
    let out = python_run(python, dir, PYJWT, args, &env());
    assert_eq!(out.code, 0, "PyJWT {args:?}: {}", out.stderr);
    out.stdout.trim().to_owned()
}

fn jwtkit_verify(dir: &Path, case: &Case, aud: &str, token: &str) -> Run {
    let mut args = vec!["verify", "--alg", case.alg];
    args.extend(key_args(case, case.public));
    args.extend([
        "--iss",
        ISS,
        "--aud",
        aud,
        "--require",
        "jti",
        "--json",
        token,
    ]);
    jwtkit_env(dir, &args, &env())
}

/// Python and the guide's keys, or `None` (already reported) when missing.
fn setup() -> Option<(PathBuf, tempfile::TempDir)> {
    let python = python()?;
    let openssl_bin = openssl_bin()?;
    let dir = tempfile::tempdir().unwrap();
    make_keys(&openssl_bin, dir.path());
    Some((python, dir))
}

#[test]
fn pyjwt_tokens_verify_with_jwtkit() {
    let Some((python, dir)) = setup() else {
        return;
    };
    let dir = dir.path();
    for case in &CASES {
        let token = pyjwt(&python, dir, &["encode", case.alg, case.private]);
        let run = jwtkit_verify(dir, case, "my-api", &token);
        assert_eq!(run.code, 0, "{}: {} {}", case.alg, run.stdout, run.stderr);
        let json = run.json();
        assert_eq!(json["header"]["alg"], case.alg);
        assert_eq!(json["header"]["typ"], "JWT");
        assert_eq!(json["header"]["kid"], "py-key");
        assert_eq!(json["claims"]["sub"], "alice");
        assert_eq!(json["claims"]["jti"], format!("py-{}", case.alg));
        assert_eq!(json["claims"]["scope"], json!(["read", "write"]));

        // The same rejections PyJWT would raise, by their stable names.
        let run = jwtkit_verify(dir, case, "other-api", &token);
        assert_eq!(
            (run.code, run.json()["error"].as_str()),
            (1, Some("invalid_audience")),
            "{}: {}",
            case.alg,
            run.stdout
        );
        let mut tampered = token.clone();
        let last = tampered.pop().unwrap();
        // Flip the last base64url character to another one with the same
        // padding bits, so the signature decodes but differs.
        tampered.push(if last == 'A' { 'Q' } else { 'A' });
        let run = jwtkit_verify(dir, case, "my-api", &tampered);
        assert_eq!(
            (run.code, run.json()["error"].as_str()),
            (1, Some("invalid_signature")),
            "{}: {}",
            case.alg,
            run.stdout
        );
    }
}

#[test]
fn jwtkit_tokens_decode_with_pyjwt() {
    let Some((python, dir)) = setup() else {
        return;
    };
    let dir = dir.path();
    for case in &CASES {
        let mut args = vec!["sign", "--alg", case.alg];
        args.extend(key_args(case, case.private));
        args.extend([
            "--iss",
            ISS,
            "--sub",
            "alice",
            "--aud",
            "my-api",
            "--exp",
            "15m",
            "--jti",
            "jwtkit-1",
            "--claims",
            r#"{"scope":["read"],"n":9007199254740993}"#,
        ]);
        let run = jwtkit_env(dir, &args, &env());
        assert_eq!(run.code, 0, "{}: {}", case.alg, run.stderr);
        let token = run.stdout.trim();

        let decoded: Value = serde_json::from_str(&pyjwt(
            &python,
            dir,
            &["decode", case.alg, case.public, token],
        ))
        .unwrap();
        assert_eq!(decoded["error"], Value::Null, "{}: {decoded}", case.alg);
        assert_eq!(decoded["header"]["alg"], case.alg);
        assert_eq!(decoded["header"]["typ"], "JWT");
        if case.alg.starts_with("HS") {
            assert_eq!(decoded["header"]["kid"], Value::Null, "a secret has no kid");
        } else {
            assert_eq!(decoded["header"]["kid"], kid_of(token).as_str());
        }
        let claims = &decoded["claims"];
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["jti"], "jwtkit-1");
        assert_eq!(claims["scope"], json!(["read"]));
        assert_eq!(
            claims["n"].as_u64(),
            Some(9_007_199_254_740_993),
            "an integer above 2^53 stays exact through both libraries"
        );
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            900
        );

        let refused: Value = serde_json::from_str(&pyjwt(
            &python,
            dir,
            &["decode-aud", "other-api", case.alg, case.public, token],
        ))
        .unwrap();
        assert_eq!(refused["error"], "InvalidAudienceError", "{}", case.alg);
    }
}

/// PyJWT's `PyJWKClient` picks the key by `kid` from the JWKS jwtkit prints.
const PYJWK_CLIENT: &str = r#"
import json, sys
import jwt

url, alg, audience, issuer, token = sys.argv[1:6]
client = jwt.PyJWKClient(url, cache_keys=False)
signing_key = client.get_signing_key_from_jwt(token)
claims = jwt.decode(token, signing_key.key, algorithms=[alg], audience=audience, issuer=issuer)
print(json.dumps({"kid": signing_key.key_id, "claims": claims}))
"#;

#[test]
fn pyjwk_client_finds_jwtkit_keys_by_kid() {
    let Some((python, dir)) = setup() else {
        return;
    };
    let dir = dir.path();
    let jwks = jwtkit_env(
        dir,
        &["keys", "jwks", "rsa.pub.pem", "ec.pem", "ed.pub.pem"],
        &[],
    );
    assert_eq!(jwks.code, 0, "{}", jwks.stderr);
    let server = JwksServer::start(jwks.stdout.trim().to_owned());
    for case in CASES
        .iter()
        .filter(|c| c.alg != "HS256" && c.alg != "PS256")
    {
        let mut args = vec!["sign", "--alg", case.alg];
        args.extend(key_args(case, case.private));
        args.extend([
            "--iss", ISS, "--sub", "alice", "--aud", "my-api", "--exp", "15m",
        ]);
        let run = jwtkit_env(dir, &args, &[]);
        assert_eq!(run.code, 0, "{}: {}", case.alg, run.stderr);
        let token = run.stdout.trim();
        let out = python_run(
            &python,
            dir,
            PYJWK_CLIENT,
            &[&server.url, case.alg, "my-api", ISS, token],
            &[],
        );
        assert_eq!(out.code, 0, "{}: {}", case.alg, out.stderr);
        let result: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(result["kid"], kid_of(token).as_str(), "{}", case.alg);
        assert_eq!(result["claims"]["sub"], "alice");
    }
}
