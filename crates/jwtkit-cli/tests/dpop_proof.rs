//! `jwtkit dpop proof`, run as the real binary: its proofs verify with
//! jwt-core's DPoP verifier and in PyJWT; its refusals exit 2 with a message
//! that says what to pass instead.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{jwtkit, ok};
use jwt_core::dpop::{ath_of, DpopErrorKind, DpopRequest, DpopVerifier};
use jwt_core::{Algorithm, SigningKey};
use serde_json::Value;

const URL: &str = "https://api.example.com/userinfo";

fn generate(dir: &Path, alg: &str, name: &str) -> SigningKey {
    ok(dir, &["keys", "generate", "--alg", alg, "--out", name]);
    let pem = std::fs::read(dir.join(name)).unwrap();
    SigningKey::from_pem(&pem).unwrap()
}

fn verifier() -> DpopVerifier {
    DpopVerifier::new([
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::EdDSA,
    ])
    .unwrap()
}

#[test]
fn a_proof_for_a_request_with_an_access_token_and_a_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate(dir.path(), "ES256", "client.pem");
    let out = ok(
        dir.path(),
        &[
            "dpop",
            "proof",
            "--key",
            "client.pem",
            "--htm",
            "GET",
            "--htu",
            "https://api.example.com/userinfo?page=2#top",
            "--ath",
            "the-token",
            "--nonce",
            "n-1",
        ],
    );
    let proof = out.trim();
    assert_eq!(out, format!("{proof}\n"), "one line: the proof");
    let request = DpopRequest::new("GET", URL)
        .access_token("the-token")
        .nonce("n-1");
    let checked = verifier().verify(proof, &request).unwrap();
    assert_eq!(checked.jkt(), key.thumbprint().unwrap());
    assert_eq!(checked.algorithm(), Algorithm::ES256);
    let claims = jwt_core::dangerous::insecure_decode(proof).unwrap().claims;
    assert_eq!(claims["htu"], URL, "query and fragment are left out");
    assert_eq!(claims["ath"], ath_of("the-token"));
    // Each run makes a new proof (a new jti).
    let again = ok(
        dir.path(),
        &[
            "dpop",
            "proof",
            "--key",
            "client.pem",
            "--htm",
            "GET",
            "--htu",
            URL,
        ],
    );
    let other = jwt_core::dangerous::insecure_decode(again.trim())
        .unwrap()
        .claims;
    assert_ne!(other["jti"], claims["jti"]);
    // The proof is bound to its request: another method is refused.
    let err = verifier()
        .verify(again.trim(), &DpopRequest::new("POST", URL))
        .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::HtmMismatch);
}

#[test]
fn json_output_names_the_thumbprint_and_now_sets_iat() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate(dir.path(), "EdDSA", "ed.pem");
    let run = jwtkit(
        dir.path(),
        &[
            "dpop",
            "proof",
            "--key",
            "ed.pem",
            "--htm",
            "POST",
            "--htu",
            URL,
            "--now",
            "1716163200",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["jkt"], key.thumbprint().unwrap());
    assert_eq!(doc["alg"], "EdDSA");
    assert_eq!(doc["iat"], 1716163200);
    assert_eq!(doc["htm"], "POST");
    let proof = doc["proof"].as_str().unwrap();
    let clock = std::sync::Arc::new(jwt_core::ManualClock::new(1716163200));
    let checked = verifier()
        .clock(clock)
        .verify(proof, &DpopRequest::new("POST", URL))
        .unwrap();
    assert_eq!(checked.jti(), doc["jti"].as_str().unwrap());
    // With the system clock, that proof is long stale.
    let err = verifier()
        .verify(proof, &DpopRequest::new("POST", URL))
        .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::IatTooOld);
}

#[test]
fn the_access_token_can_come_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "ES256", "client.pem");
    let mut child = Command::new(common::binary())
        .args([
            "dpop",
            "proof",
            "--key",
            "client.pem",
            "--htm",
            "GET",
            "--htu",
            URL,
            "--ath",
            "-",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"  piped-token\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proof = String::from_utf8(out.stdout).unwrap();
    let request = DpopRequest::new("GET", URL).access_token("piped-token");
    assert!(verifier().verify(proof.trim(), &request).is_ok());
}

#[test]
fn rsa_keys_need_an_algorithm_and_get_the_one_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate(dir.path(), "RS256", "rsa.pem");
    let run = jwtkit(
        dir.path(),
        &[
            "dpop", "proof", "--key", "rsa.pem", "--htm", "GET", "--htu", URL,
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--alg is required"), "{}", run.stderr);
    for alg in ["RS256", "PS256"] {
        let out = ok(
            dir.path(),
            &[
                "dpop", "proof", "--key", "rsa.pem", "--alg", alg, "--htm", "GET", "--htu", URL,
            ],
        );
        let checked = verifier()
            .verify(out.trim(), &DpopRequest::new("GET", URL))
            .unwrap();
        assert_eq!(checked.algorithm().as_str(), alg);
        assert_eq!(checked.jkt(), key.thumbprint().unwrap());
    }
    let run = jwtkit(
        dir.path(),
        &[
            "dpop", "proof", "--key", "rsa.pem", "--alg", "ES256", "--htm", "GET", "--htu", URL,
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn what_cannot_make_a_proof_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "ES256", "client.pem");
    ok(
        dir.path(),
        &["keys", "generate", "--alg", "HS256", "--out", "secret.txt"],
    );
    let cases: [(&[&str], &str); 5] = [
        (
            &["--key", "client.pem", "--htm", "GET", "--htu", "/userinfo"],
            "absolute",
        ),
        (
            &[
                "--key",
                "client.pem",
                "--htm",
                "GET",
                "--htu",
                "ftp://a.example/x",
            ],
            "http",
        ),
        (
            &["--key", "client.pem", "--htm", "G ET", "--htu", URL],
            "HTTP method",
        ),
        (
            &[
                "--key",
                "client.pem",
                "--alg",
                "HS256",
                "--htm",
                "GET",
                "--htu",
                URL,
            ],
            "HS256",
        ),
        (
            &["--secret-file", "secret.txt", "--htm", "GET", "--htu", URL],
            "--key",
        ),
    ];
    for (args, says) in cases {
        let mut full = vec!["dpop", "proof"];
        full.extend_from_slice(args);
        let run = jwtkit(dir.path(), &full);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: no proof printed");
    }
    // --json reports the failure as one JSON object.
    let run = jwtkit(
        dir.path(),
        &[
            "dpop",
            "proof",
            "--key",
            "client.pem",
            "--htm",
            "GET",
            "--htu",
            "/x",
            "--json",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(run.json()["error"].is_string(), "{}", run.stdout);
    // A lower-case method works, with a warning.
    let run = jwtkit(
        dir.path(),
        &[
            "dpop",
            "proof",
            "--key",
            "client.pem",
            "--htm",
            "get",
            "--htu",
            URL,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("case-sensitive"), "{}", run.stderr);
}

/// The README's claim: proofs made by `jwtkit dpop proof` verify in PyJWT.
#[test]
fn proofs_verify_in_pyjwt() {
    let Some(python) = jwtkit_test_support::python_with_pyjwt() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "ES256", "ec.pem");
    generate(dir.path(), "RS256", "rsa.pem");
    for (file, alg) in [("ec.pem", "ES256"), ("rsa.pem", "RS256")] {
        let out = ok(
            dir.path(),
            &[
                "dpop", "proof", "--key", file, "--alg", alg, "--htm", "GET", "--htu", URL,
                "--ath", "tok",
            ],
        );
        let script = r#"
import base64, hashlib, json, sys
import jwt
proof = sys.stdin.read().strip()
header = jwt.get_unverified_header(proof)
key = jwt.PyJWK(header["jwk"], algorithm=header["alg"]).key
claims = jwt.decode(proof, key, algorithms=[header["alg"]], options={"require": ["iat", "jti", "htm", "htu"]})
ath = base64.urlsafe_b64encode(hashlib.sha256(b"tok").digest()).rstrip(b"=").decode()
print(json.dumps({"typ": header["typ"], "alg": header["alg"], "htu": claims["htu"], "ath_ok": claims["ath"] == ath}))
"#;
        let mut child = Command::new(&python)
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(out.as_bytes())
            .unwrap();
        let result = child.wait_with_output().unwrap();
        assert!(
            result.status.success(),
            "PyJWT refused: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        let doc: Value = serde_json::from_slice(&result.stdout).unwrap();
        assert_eq!(doc["typ"], "dpop+jwt");
        assert_eq!(doc["alg"], alg);
        assert_eq!(doc["htu"], URL);
        assert_eq!(doc["ath_ok"], true);
    }
}
