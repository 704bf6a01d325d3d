//! `POST /token` of the real `jwtkit serve` (issue 11, item 6): the admin's
//! JSON body is read with the verifier's strict parser, so serde_json's
//! private member names, duplicate member names and excessive nesting are
//! refused with `400 invalid_request` instead of changing the claims of
//! every token of the session.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

const ADMIN: &str = "serve-claims-admin-token-0123456789";

/// A running `jwtkit serve` on `127.0.0.1:0`; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let stderr_path = dir.join("serve.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env("JWTKIT_ADMIN_TOKEN", ADMIN)
            .env_remove("JWTKIT_REFRESH_KEY")
            .env("JWTKIT_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
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
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => Server { child, base },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "jwtkit serve did not start:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
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

/// Posts `body` (raw JSON text) as the admin; the status and the JSON answer.
async fn issue_raw(http: &reqwest::Client, server: &Server, body: &str) -> (StatusCode, Value) {
    let response = http
        .post(server.url("/token"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(&jwt_core::b64::decode(part.as_bytes(), "payload").unwrap()).unwrap()
}

#[tokio::test]
async fn admin_claims_with_private_member_names_duplicates_or_depth_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let hidden = r#""{\"role\":\"admin\",\"nbf\":4000000000}""#;
    let cases = [
        // `Json` would keep the last one silently: role "admin".
        (
            r#"{"sub":"mallory","claims":{"role":"user","role":"admin"}}"#.to_owned(),
            r#"duplicate member name "role""#,
        ),
        // Top level of `claims`: stored as given, rewritten at the first refresh.
        (
            format!(
                r#"{{"sub":"mallory","claims":{{"$serde_json::private::RawValue":{hidden}}}}}"#
            ),
            "is reserved",
        ),
        // Nested: rewritten at issue time.
        (
            format!(
                r#"{{"sub":"mallory","claims":{{"profile":{{"$serde_json::private::RawValue":{hidden}}}}}}}"#
            ),
            "is reserved",
        ),
        (
            r#"{"sub":"mallory","sub":"alice"}"#.to_owned(),
            r#"duplicate member name "sub""#,
        ),
        (
            format!(
                r#"{{"sub":"mallory","claims":{{"d":{}1{}}}}}"#,
                "[".repeat(40),
                "]".repeat(40)
            ),
            "nested deeper than 32 levels",
        ),
    ];
    for (body, fragment) in &cases {
        let (status, answer) = issue_raw(&http, &server, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"], "invalid_request", "{body}: {answer}");
        let description = answer["error_description"].as_str().unwrap();
        assert!(description.contains(fragment), "{body}: {description}");
        assert!(
            description.contains(r#"the body must be {"sub""#),
            "{description}"
        );
    }

    // Ordinary claims still work, and survive a refresh unchanged.
    let (status, pair) = issue_raw(
        &http,
        &server,
        r#"{"sub":"alice","claims":{"role":"user","p":{"a":[1,null]}}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let claims = claims_of(pair["access_token"].as_str().unwrap());
    assert_eq!(claims["role"], "user");
    assert_eq!(claims["p"], json!({"a":[1,null]}));
    let response = http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", pair["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let next: Value = response.json().await.unwrap();
    let claims = claims_of(next["access_token"].as_str().unwrap());
    assert_eq!(claims["role"], "user");
    assert_eq!(claims["p"], json!({"a":[1,null]}));
    assert!(claims.get("nbf").is_none(), "{claims}");
}
