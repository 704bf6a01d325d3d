//! Issue 13, item 3: messages name what was actually wrong and the flag or
//! command that fixes it. A `--jwks-url` that serves something else than a
//! JWK Set, or that is plain http to another host; `jwtkit serve`'s
//! `POST /token` without (or with a wrong) admin token, and with a refresh
//! grant sent as JSON. (The audit's wording is in `store_policy.rs`.)

mod common;
mod loopback;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{jwtkit, ok, Run};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A token signed by a fresh ES256 key with kid `k1`, valid at `NOW`.
fn signed_token(dir: &Path) -> String {
    ok(
        dir,
        &["keys", "generate", "--alg", "ES256", "--out", "es.pem"],
    );
    ok(
        dir,
        &[
            "sign", "--key", "es.pem", "--alg", "ES256", "--kid", "k1", "--exp", "5m", "--now", NOW,
        ],
    )
    .trim()
    .to_owned()
}

const NOW: &str = "1800000000";

fn verify_url(dir: &Path, url: &str, token: &str) -> Run {
    jwtkit(
        dir,
        &[
            "verify",
            "--json",
            "--now",
            NOW,
            "--alg",
            "ES256",
            "--jwks-url",
            url,
            token,
        ],
    )
}

/// Bodies that are not a JWK Set: each is a setup problem (exit 2, `fetch`),
/// said as such, with what came; never "malformed token".
#[test]
fn a_jwks_url_serving_something_else_says_it_is_not_a_jwk_set() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let token = signed_token(dir);
    let cases: [(&[u8], Option<&str>, &[&str]); 7] = [
        (
            b"<html><body>Sign in</body></html>",
            Some("text/html; charset=utf-8"),
            &["its Content-Type is text/html; charset=utf-8, not JSON"],
        ),
        (
            b"<html>\x1b[31mhello</html>",
            Some("application/json"),
            &[
                "the body is not JSON (expected value at line 1 column 1)",
                "received Content-Type application/json, 23 bytes starting \"<html>\\x1b[31mhello</html>\"",
            ],
        ),
        (
            b"not json",
            None,
            &["the body is not JSON", "received no Content-Type, 8 bytes starting \"not json\""],
        ),
        (
            br#"{"issuer":"https://idp","jwks_uri":"https://idp/keys"}"#,
            Some("application/json"),
            &["it is an OpenID discovery document; use the URL in its `jwks_uri`"],
        ),
        (
            br#"{"kty":"EC","crv":"P-256","x":"a","y":"b"}"#,
            Some("application/json"),
            &["it is a single JWK, not a set ({\"keys\": [...]})"],
        ),
        (
            br#"{"error":"not_found"}"#,
            Some("application/json"),
            &["the JSON object has no `keys` array", "starting \"{\\\"error\\\":\\\"not_found\\\"}\""],
        ),
        (b"", Some("application/json"), &["the body is empty"]),
    ];
    for (body, content_type, fragments) in cases {
        let url = loopback::serve(body, content_type);
        let run = verify_url(dir, &url, &token);
        assert_eq!(run.code, 2, "{content_type:?}: {}", run.stdout);
        let doc = run.json();
        assert_eq!(doc["error"], "fetch", "{doc}");
        let message = doc["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "--jwks-url: fetching the JWKS from {url} failed: the response is not a JWK Set: "
            )),
            "{message}"
        );
        for fragment in fragments {
            assert!(message.contains(fragment), "{fragment}: {message}");
        }
        assert!(message.contains("`jwks_uri`"), "{message}");
        for misleading in ["malformed token", "three base64url parts", "invalid key"] {
            assert!(!message.contains(misleading), "{misleading}: {message}");
        }
        // Text mode: the same, on stderr, with the body's escape escaped.
        let run = jwtkit(
            dir,
            &[
                "verify",
                "--now",
                NOW,
                "--alg",
                "ES256",
                "--jwks-url",
                &url,
                &token,
            ],
        );
        assert_eq!(run.code, 2);
        assert!(
            run.stderr.starts_with("error [fetch]: --jwks-url: "),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
    }
}

#[test]
fn a_plain_http_jwks_url_to_another_host_says_it_needs_https() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let token = signed_token(dir);
    for url in [
        "http://idp.example.com/jwks",
        "http://10.0.0.7:8080/.well-known/jwks.json",
    ] {
        let run = verify_url(dir, url, &token);
        assert_eq!(run.code, 2, "{}", run.stdout);
        let doc = run.json();
        assert_eq!(doc["error"], "invalid_uri");
        let message = doc["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "--jwks-url: invalid JWKS URL \"{url}\": a JWKS must be fetched over https"
            )),
            "{message}"
        );
        assert!(
            message.contains(
                "plain http is accepted only to a loopback address (127.0.0.1, [::1], localhost)"
            ),
            "{message}"
        );
        assert!(!message.contains("key store URI"), "{message}");
    }
    let run = verify_url(dir, "ftp://idp.example.com/jwks", &token);
    let doc = run.json();
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .contains("scheme `ftp` is not supported; use https://"),
        "{doc}"
    );
    // Loopback http is accepted (a connection refused is a fetch error).
    let run = verify_url(dir, "http://127.0.0.1:9/jwks", &token);
    assert_eq!(run.json()["error"], "fetch");
}

const ADMIN: &str = "messages-test-admin-token-0123456789";

/// A running `jwtkit serve` on a free port; killed on drop.
struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env("JWTKIT_ADMIN_TOKEN", ADMIN)
            .env_remove("JWTKIT_REFRESH_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn jwtkit serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("jwtkit serve: listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("jwtkit serve did not start within 60 s");
        Server {
            child,
            base,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, String, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, response.json().await.unwrap())
}

#[tokio::test]
async fn token_endpoint_says_what_issuing_and_refreshing_need() {
    let server = Server::start();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let needs = "issuing tokens needs `Authorization: Bearer $JWTKIT_ADMIN_TOKEN`";

    // No admin token: 401 invalid_request (RFC 6750 §3.1), naming the header.
    let (status, challenge, body) = answer(
        http.post(server.url("/token"))
            .json(&json!({"sub": "alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge, "Bearer");
    assert_eq!(body["error"], "invalid_request");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with("no admin token"), "{description}");
    assert!(description.contains(needs), "{description}");
    assert!(!description.contains("access token"), "{description}");

    // A wrong admin token: 401 invalid_token, the same words whether it is
    // nearly the admin token or nothing like it.
    let mut near = ADMIN.to_owned();
    near.pop();
    near.push('X');
    let mut seen = Vec::new();
    for wrong in [near.as_str(), "x"] {
        let (status, challenge, body) = answer(
            http.post(server.url("/token"))
                .bearer_auth(wrong)
                .json(&json!({"sub": "mallory"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
        assert_eq!(body["error"], "invalid_token");
        let description = body["error_description"].as_str().unwrap().to_owned();
        assert!(
            description.starts_with("the bearer token is not the admin token; ")
                && description.contains(needs),
            "{description}"
        );
        assert!(
            !description.contains("access token was refused"),
            "{description}"
        );
        seen.push((challenge, body));
    }
    assert_eq!(
        seen[0], seen[1],
        "the answer must not depend on how close the token was"
    );

    // A refresh grant sent as JSON, with or without the admin token: 400
    // invalid_request saying it must be form-encoded.
    for admin in [false, true] {
        let mut request = http
            .post(server.url("/token"))
            .json(&json!({"grant_type": "refresh_token", "refresh_token": "abc"}));
        if admin {
            request = request.bearer_auth(ADMIN);
        }
        let (status, _, body) = answer(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "admin {admin}: {body}");
        assert_eq!(body["error"], "invalid_request");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with("a refresh grant must be form-encoded (RFC 6749 §6)")
                && description.contains("grant_type=refresh_token&refresh_token=…"),
            "{description}"
        );
    }

    // The right way still works: issue with the admin token, refresh as a form.
    let (status, _, pair) = answer(
        http.post(server.url("/token"))
            .bearer_auth(ADMIN)
            .json(&json!({"sub": "alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let refresh = pair["refresh_token"].as_str().unwrap();
    let (status, _, refreshed) = answer(
        http.post(server.url("/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert!(refreshed["access_token"].is_string());
}
