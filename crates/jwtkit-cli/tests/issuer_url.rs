//! `jwtkit verify --issuer-url` and `jwtkit discover` against identity
//! providers the test controls: loopback HTTP servers that publish OpenID
//! Connect discovery metadata and a JWKS, with the real `jwtkit` binary.
//! (The same commands against OpenBao, a real provider, run as the snippets
//! of docs/identity-providers.md.)
#![forbid(unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::jwtkit;
use jwt_core::{Algorithm, Jwks, KeySet, Signer, SigningKey};
use serde_json::{json, Value};

/// A provider on 127.0.0.1: its issuer URL (`http://127.0.0.1:PORT/tenant`),
/// the key it signs with and the JWKS it publishes.
struct Provider {
    issuer: String,
    signer: Signer,
    /// The same key, signing RFC 9068 access tokens (`typ` `at+jwt`).
    access_signer: Signer,
    thumbprint: String,
}

impl Provider {
    /// Starts a provider whose metadata names `claimed_issuer(own)` as its
    /// issuer (its own URL, unless a test makes it lie).
    fn start(kid: &str, claimed_issuer: impl Fn(&str) -> String) -> Provider {
        Provider::start_custom(
            kid,
            |issuer| {
                json!({
                    "issuer": claimed_issuer(issuer),
                    "jwks_uri": format!("{issuer}/keys"),
                    "id_token_signing_alg_values_supported": ["ES256"],
                })
            },
            None,
        )
    }

    /// A provider serving `metadata(issuer)` and, as its JWKS, the file
    /// `jwks` as it is at each request (its own key's JWKS when `None`).
    fn start_custom(
        kid: &str,
        metadata: impl Fn(&str) -> Value,
        jwks: Option<std::path::PathBuf>,
    ) -> Provider {
        let key = SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid(kid);
        let mut set = KeySet::new();
        set.insert(key.verifying_key()).unwrap();
        let own: Jwks = set.to_jwks();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{base}/tenant");
        let metadata = metadata(&issuer).to_string();
        let own = own.to_json();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(mut sock) = sock else { continue };
                let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request);
                let path = line.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match path {
                    "/tenant/.well-known/openid-configuration" => ("200 OK", metadata.clone()),
                    "/tenant/keys" => (
                        "200 OK",
                        match &jwks {
                            Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
                            None => own.clone(),
                        },
                    ),
                    _ => ("404 Not Found", "{}".to_owned()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes());
                let _ = sock.write_all(body.as_bytes());
            }
        });
        let thumbprint = key.verifying_key().thumbprint().unwrap();
        let same_key = SigningKey::from_pem(key.to_pkcs8_pem().unwrap().as_bytes())
            .unwrap()
            .with_kid(kid);
        let access_signer = Signer::new(same_key, Algorithm::ES256)
            .unwrap()
            .with_typ(Some("at+jwt"))
            .unwrap();
        let signer = Signer::new(key, Algorithm::ES256).unwrap();
        Provider {
            issuer,
            signer,
            access_signer,
            thumbprint,
        }
    }

    fn honest(kid: &str) -> Provider {
        Provider::start(kid, |own| own.to_owned())
    }

    /// A token this provider signed, with `claims` added to iss/aud/exp.
    fn token(&self, claims: Value) -> String {
        sign(&self.signer, &self.issuer, claims)
    }
}

/// A token signed by `key` that names `iss`.
fn sign(signer: &Signer, iss: &str, extra: Value) -> String {
    let mut claims = json!({
        "iss": iss,
        "aud": "api",
        "sub": "alice",
        "exp": jwt_core::time::now_unix() + 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    signer.sign(&claims).unwrap()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_token_of_the_issuer_verifies_with_its_discovered_key_and_no_alg() {
    let p = Provider::honest("k1");
    let dir = tmp();
    let token = p.token(json!({}));
    let run = jwtkit(
        dir.path(),
        &[
            "verify",
            "--issuer-url",
            &p.issuer,
            "--aud",
            "api",
            "--json",
            &token,
        ],
    );
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    let out = run.json();
    assert_eq!(out["valid"], true);
    assert_eq!(out["claims"]["iss"], p.issuer.as_str());
    assert_eq!(out["header"]["kid"], "k1");

    // --sub is checked too.
    let run = jwtkit(
        dir.path(),
        &[
            "verify",
            "--issuer-url",
            &p.issuer,
            "--aud",
            "api",
            "--sub",
            "bob",
            &token,
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("invalid subject"), "{}", run.stderr);
}

/// `--typ` goes with `--issuer-url`: an RFC 9068 access token (`at+jwt`)
/// verifies when it is required, a token of another type is refused naming
/// the type, and without `--typ` either is accepted.
#[test]
fn typ_is_required_of_the_issuers_tokens_when_given() {
    let p = Provider::honest("k1");
    let dir = tmp();
    let plain = p.token(json!({}));
    let access = {
        let claims = json!({
            "iss": p.issuer,
            "aud": "api",
            "sub": "alice",
            "exp": jwt_core::time::now_unix() + 600,
        });
        p.access_signer.sign(&claims).unwrap()
    };
    let verify = |typ: Option<&str>, token: &str| {
        let mut args = vec!["verify", "--issuer-url", &p.issuer, "--aud", "api"];
        if let Some(typ) = typ {
            args.extend(["--typ", typ]);
        }
        args.push(token);
        jwtkit(dir.path(), &args)
    };
    let run = verify(Some("at+jwt"), &access);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    let run = verify(Some("at+jwt"), &plain);
    assert_eq!(run.code, 1, "{} {}", run.stdout, run.stderr);
    assert!(run.stderr.contains("typ"), "{}", run.stderr);
    for token in [&plain, &access] {
        let run = verify(None, token);
        assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    }
}

#[test]
fn several_issuers_each_with_its_own_keys_only() {
    let a = Provider::honest("ka");
    let b = Provider::honest("kb");
    let dir = tmp();
    let both = |token: &str| {
        jwtkit(
            dir.path(),
            &[
                "verify",
                "--issuer-url",
                &a.issuer,
                "--issuer-url",
                &b.issuer,
                "--aud",
                "api",
                "--json",
                token,
            ],
        )
    };
    // Each issuer's tokens verify.
    for token in [a.token(json!({})), b.token(json!({}))] {
        let run = both(&token);
        assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    }
    // A token that names B but is signed with A's key (kid "ka"): A's key
    // never verifies B's tokens.
    let forged = sign(&a.signer, &b.issuer, json!({}));
    let run = both(&forged);
    assert_eq!(run.code, 1, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.json()["error"], "unknown_key", "{}", run.stdout);
    let run = jwtkit(
        dir.path(),
        &[
            "verify",
            "--issuer-url",
            &a.issuer,
            "--issuer-url",
            &b.issuer,
            "--aud",
            "api",
            &forged,
        ],
    );
    assert!(
        run.stderr.contains("\"ka\"") && run.stderr.contains("\"kb\""),
        "names the token's kid and the issuer's: {}",
        run.stderr
    );
    // A token of an issuer that is not configured.
    let run = jwtkit(
        dir.path(),
        &[
            "verify",
            "--issuer-url",
            &a.issuer,
            "--aud",
            "api",
            &b.token(json!({})),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid issuer") && run.stderr.contains(&b.issuer),
        "{}",
        run.stderr
    );
}

#[test]
fn metadata_naming_another_issuer_is_a_setup_error_that_shows_both() {
    let p = Provider::start("k1", |_| "https://evil.example/tenant".to_owned());
    let dir = tmp();
    let token = p.token(json!({}));
    let run = jwtkit(
        dir.path(),
        &["verify", "--issuer-url", &p.issuer, "--aud", "api", &token],
    );
    assert_eq!(run.code, 2, "{} {}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&p.issuer) && run.stderr.contains("https://evil.example/tenant"),
        "{}",
        run.stderr
    );
    let run = jwtkit(dir.path(), &["discover", &p.issuer]);
    assert_eq!(run.code, 2, "{} {}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("https://evil.example/tenant"),
        "{}",
        run.stderr
    );
}

#[test]
fn discover_shows_the_metadata_and_the_keys_a_verifier_trusts() {
    let p = Provider::honest("k1");
    let dir = tmp();
    let run = jwtkit(dir.path(), &["discover", &p.issuer, "--json"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    let out = run.json();
    assert_eq!(out["issuer"], p.issuer.as_str());
    assert_eq!(out["jwks_uri"], format!("{}/keys", p.issuer));
    assert_eq!(out["signing_algorithms"], json!(["ES256"]));
    assert_eq!(out["keys"][0]["kid"], "k1");
    assert_eq!(out["keys"][0]["algorithms"], json!(["ES256"]));
    assert_eq!(out["keys"][0]["thumbprint"], p.thumbprint.as_str());
    let run = jwtkit(dir.path(), &["discover", &p.issuer]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("kid \"k1\""), "{}", run.stdout);
    assert!(run.stdout.contains("verifies ES256"), "{}", run.stdout);
}

#[test]
fn flags_that_do_not_go_with_issuer_url_are_refused_with_the_reason() {
    let p = Provider::honest("k1");
    let dir = tmp();
    let token = p.token(json!({}));
    for (extra, says) in [
        (&["--iss", "x"][..], "--iss does not go with --issuer-url"),
        (
            &["--optional-exp"][..],
            "--optional-exp does not go with --issuer-url",
        ),
    ] {
        let mut args = vec!["verify", "--issuer-url", p.issuer.as_str()];
        args.extend_from_slice(extra);
        args.push(&token);
        let run = jwtkit(dir.path(), &args);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
    // sign never takes a provider's keys.
    let run = jwtkit(
        dir.path(),
        &["sign", "--issuer-url", &p.issuer, "--alg", "ES256"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--issuer-url only verifies"),
        "{}",
        run.stderr
    );
    // Plain http off loopback is refused before any request.
    let run = jwtkit(
        dir.path(),
        &[
            "verify",
            "--issuer-url",
            "http://login.example.com/",
            "--aud",
            "api",
            &token,
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("https"), "{}", run.stderr);
}

/// A provider over https whose certificate a private CA signed: refused
/// (exit 2) with a hint that names `--ca-cert`, then verified and
/// discovered with `--ca-cert CA.pem`; a file without a certificate is a
/// usage error. The server is Python's own TLS stack; the certificates are
/// made with `openssl`.
#[test]
fn a_provider_behind_a_private_ca_is_trusted_only_with_ca_cert() {
    let Some(openssl) = jwtkit_test_support::tool(
        "openssl",
        "install openssl (Debian: apt-get install openssl)",
    ) else {
        return;
    };
    let Some(python) = jwtkit_test_support::tool("python3", "install python3") else {
        return;
    };
    let dir = tmp();
    let d = dir.path();
    let script = "set -e
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days 2 -subj '/CN=jwtkit test CA' \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
openssl req -new -key server.key -subj /CN=127.0.0.1 -out server.csr
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
  -extfile ext.cnf -out server.pem 2>/dev/null";
    let made = std::process::Command::new("bash")
        .args(["-c", script])
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", openssl.parent().unwrap().display()),
        )
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let port = jwtkit_test_support::free_port();
    let issuer = format!("https://127.0.0.1:{port}/tenant");
    let key = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("tls-1");
    let mut set = KeySet::new();
    set.insert(key.verifying_key()).unwrap();
    std::fs::write(d.join("keys.json"), set.to_jwks().to_json()).unwrap();
    std::fs::write(
        d.join("meta.json"),
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/keys"),
            "id_token_signing_alg_values_supported": ["ES256"],
        })
        .to_string(),
    )
    .unwrap();
    let server = r#"
import http.server, ssl, sys
port = int(sys.argv[1])
files = {"/tenant/.well-known/openid-configuration": "meta.json", "/tenant/keys": "keys.json"}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = files.get(self.path)
        body = open(name, "rb").read() if name else b"{}"
        self.send_response(200 if name else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("server.pem", "server.key")
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
"#;
    let mut child = std::process::Command::new(&python)
        .args(["-c", server, &port.to_string()])
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _server = Kill(child);
    assert_eq!(line.trim(), "ready");

    let token = sign(
        &Signer::new(key, Algorithm::ES256).unwrap(),
        &issuer,
        json!({}),
    );
    let run = jwtkit(
        d,
        &["verify", "--issuer-url", &issuer, "--aud", "api", &token],
    );
    assert_eq!(run.code, 2, "{} {}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("not trusted") && run.stderr.contains("--ca-cert"),
        "{}",
        run.stderr
    );
    let run = jwtkit(
        d,
        &[
            "verify",
            "--issuer-url",
            &issuer,
            "--ca-cert",
            "ca.pem",
            "--aud",
            "api",
            "--json",
            &token,
        ],
    );
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    let run = jwtkit(d, &["discover", &issuer, "--ca-cert", "ca.pem", "--json"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.json()["keys"][0]["kid"], "tls-1");
    // The same key set by its JWKS URL.
    let run = jwtkit(
        d,
        &[
            "verify",
            "--jwks-url",
            &format!("{issuer}/keys"),
            "--ca-cert",
            "ca.pem",
            "--alg",
            "ES256",
            "--aud",
            "api",
            &token,
        ],
    );
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    // Not a certificate; and a key source that fetches nothing.
    let run = jwtkit(d, &["discover", &issuer, "--ca-cert", "meta.json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--ca-cert meta.json"), "{}", run.stderr);
    let run = jwtkit(
        d,
        &[
            "verify",
            "--key",
            "keys.json",
            "--ca-cert",
            "ca.pem",
            &token,
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--ca-cert applies to"),
        "{}",
        run.stderr
    );
}

#[test]
fn near_misses_and_well_known_urls_get_the_fix() {
    let p = Provider::honest("k1");
    let dir = tmp();
    let token = p.token(json!({}));
    // A trailing slash too many: the message gives the exact value.
    let with_slash = format!("{}/", p.issuer);
    let run = jwtkit(
        dir.path(),
        &[
            "verify",
            "--issuer-url",
            &with_slash,
            "--aud",
            "api",
            &token,
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("only in a trailing slash")
            && run
                .stderr
                .contains(&format!("pass --issuer-url \"{}\"", p.issuer)),
        "{}",
        run.stderr
    );
    // The metadata or a JWKS URL instead of the issuer: refused before any request.
    for url in [
        format!("{}/.well-known/openid-configuration", p.issuer),
        format!("{}/.well-known/jwks.json", p.issuer),
    ] {
        for args in [
            vec!["verify", "--issuer-url", url.as_str(), &token],
            vec!["discover", url.as_str()],
        ] {
            let run = jwtkit(dir.path(), &args);
            assert_eq!(run.code, 2, "{}", run.stderr);
            assert!(
                run.stderr.contains("not an issuer") && run.stderr.contains(&p.issuer),
                "{}",
                run.stderr
            );
        }
    }
}

/// A `discover` run on metadata whose `jwks_uri` and algorithm names carry
/// line breaks: every value from the provider stays on its own line, so no
/// forged `kid … thumbprint …` line can appear (attacker's review, F1).
#[test]
fn discover_output_cannot_be_forged_by_the_metadata() {
    let p = Provider::start_custom(
        "k1",
        |issuer| {
            json!({
                "issuer": issuer,
                "jwks_uri": format!("{issuer}/keys#\n  kid \"prod\"  RSA alg RS256  thumbprint FORGED  verifies RS256"),
                "id_token_signing_alg_values_supported": ["ES256", "HS256\nissuer:     https://evil.example/"],
            })
        },
        None,
    );
    let dir = tmp();
    let run = jwtkit(dir.path(), &["discover", &p.issuer]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    for line in run.stdout.lines() {
        assert!(
            !line.trim_start().starts_with("kid \"prod\"")
                && !line.starts_with("issuer:     https://evil"),
            "a forged line: {line:?} in\n{}",
            run.stdout
        );
    }
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("  kid "))
            .count(),
        1,
        "{}",
        run.stdout
    );
}

/// A provider that publishes an RSA key under 2048 bits: a token naming
/// it is refused (`weak_key`, exit 1: a rejection, not a setup error), and
/// `--dangerous-allow-weak-key` is refused with `--issuer-url` with a
/// reason that says so (attacker's review, F4).
#[test]
fn a_weak_provider_key_is_a_rejection() {
    let Some(python) = jwtkit_test_support::python_with_pyjwt() else {
        return;
    };
    let dir = tmp();
    let d = dir.path();
    let p = Provider::start_custom(
        "unused",
        |issuer| json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")}),
        Some(d.join("jwks.json")),
    );
    // A 1024-bit RSA key (published) and a token signed with it, by
    // Python's `cryptography`.
    let script = r#"
import sys, json, base64, time
from cryptography.hazmat.primitives.asymmetric import rsa, padding
from cryptography.hazmat.primitives import hashes
iss = sys.argv[1]
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
i2b = lambda i: i.to_bytes((i.bit_length() + 7) // 8, "big")
k = rsa.generate_private_key(65537, 1024)
n = k.public_key().public_numbers()
json.dump({"keys": [{"kty": "RSA", "kid": "legacy", "alg": "RS256", "n": b(i2b(n.n)), "e": b(i2b(n.e))}]}, open("jwks.json", "w"))
si = b(json.dumps({"alg": "RS256", "kid": "legacy"}).encode()) + "." + b(json.dumps({"iss": iss, "aud": "api", "exp": int(time.time()) + 600}).encode())
open("token", "w").write(si + "." + b(k.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256())))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script, &p.issuer])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = std::fs::read_to_string(d.join("token")).unwrap();
    let run = jwtkit(
        d,
        &[
            "verify",
            "--issuer-url",
            &p.issuer,
            "--aud",
            "api",
            "--json",
            &token,
        ],
    );
    assert_eq!(run.code, 1, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.json()["error"], "weak_key", "{}", run.stdout);
    assert!(
        run.stdout.contains("rotates to a strong key"),
        "{}",
        run.stdout
    );
    let run = jwtkit(
        d,
        &[
            "verify",
            "--issuer-url",
            &p.issuer,
            "--aud",
            "api",
            "--dangerous-allow-weak-key",
            &token,
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("refused (`weak_key`, exit 1)"),
        "{}",
        run.stderr
    );
}

/// Values from a remote document are cut in errors: a 200 KB `issuer` in
/// the metadata gives an error of a few hundred bytes, saying how long the
/// value was (attacker's review, F2: it was quoted whole, 6× amplified).
#[test]
fn huge_remote_values_are_cut_in_errors() {
    let p = Provider::start("k1", |_| "\u{7f}".repeat(200_000));
    let dir = tmp();
    let run = jwtkit(dir.path(), &["discover", &p.issuer]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.len() < 4_000, "{} bytes", run.stderr.len());
    assert!(run.stderr.contains("200000 bytes in all"), "{}", run.stderr);
}
