//! The refresh-token pattern of the guide (a `jti` stored for revocation,
//! rotation on every use, reuse detection), through `jwtkit serve` over real
//! HTTP: on the in-memory refresh store and on Redis. The access tokens are
//! also checked the way a resource server would: `jwtkit verify --jwks-url`
//! against the service's published JWKS.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::jwtkit;
use crate::support::serve::{Serve, ADMIN_TOKEN};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {v}"))
}

/// `POST /token` with the admin token: a new session's pair.
async fn issue(http: &reqwest::Client, serve: &Serve, sub: &str, claims: Value) -> Value {
    let response = http
        .post(serve.url("/token"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"sub": sub, "claims": claims}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The RFC 6749 refresh grant (form-encoded).
async fn refresh(http: &reqwest::Client, serve: &Serve, token: &str) -> (StatusCode, Value) {
    let response = http
        .post(serve.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn userinfo(http: &reqwest::Client, serve: &Serve, access: &str) -> (StatusCode, Value) {
    let response = http
        .get(serve.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = if status == StatusCode::OK {
        response.json().await.unwrap()
    } else {
        Value::Null
    };
    (status, body)
}

fn assert_invalid_grant(answer: &(StatusCode, Value), why: &str) {
    assert_eq!(
        (answer.0, answer.1["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{}",
        answer.1
    );
    assert!(
        str_of(&answer.1, "error_description").contains(why),
        "{}",
        answer.1
    );
}

/// Issue → userinfo → verify with the JWKS → refresh (rotation) → reuse of
/// the consumed token (invalid_grant, the whole family revoked) → revoke.
async fn guide_flow(dir: &Path, serve: &Serve, issuer: &str) {
    let http = client();
    let pair = issue(&http, serve, "alice", json!({"scope": "read"})).await;
    assert_eq!(pair["token_type"], "Bearer");
    let access = str_of(&pair, "access_token");
    let refresh1 = str_of(&pair, "refresh_token");

    let (status, info) = userinfo(&http, serve, access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (info["sub"].as_str(), info["scope"].as_str()),
        (Some("alice"), Some("read"))
    );
    let jti = str_of(&info, "jti").to_owned();

    // A resource server verifies the access token by kid from the service's JWKS.
    let run = jwtkit(
        dir,
        &[
            "verify",
            "--jwks-url",
            &serve.url("/.well-known/jwks.json"),
            "--alg",
            "ES256",
            "--iss",
            issuer,
            "--aud",
            "api",
            "--typ",
            "at+jwt",
            "--require",
            "jti",
            "--json",
            access,
        ],
    );
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.json()["claims"]["jti"], jti.as_str());

    // Rotation: a new pair; the new access token is a new one.
    let (status, pair2) = refresh(&http, serve, refresh1).await;
    assert_eq!(status, StatusCode::OK, "{pair2}");
    let refresh2 = str_of(&pair2, "refresh_token");
    assert_ne!(refresh2, refresh1);
    let (_, info2) = userinfo(&http, serve, str_of(&pair2, "access_token")).await;
    assert_eq!(info2["scope"], "read", "the session's claims carry over");
    assert_ne!(info2["jti"], jti.as_str());

    // Reuse of the consumed token: refused, and its successor dies with it.
    assert_invalid_grant(&refresh(&http, serve, refresh1).await, "already used");
    assert_invalid_grant(&refresh(&http, serve, refresh2).await, "revoked");

    // Logout: RFC 7009 revocation, then the session no longer refreshes.
    let pair3 = issue(&http, serve, "bob", json!({})).await;
    let refresh3 = str_of(&pair3, "refresh_token");
    let response = http
        .post(serve.url("/revoke"))
        .form(&[("token", refresh3)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_invalid_grant(&refresh(&http, serve, refresh3).await, "revoked");
}

#[tokio::test]
async fn refresh_flow_on_the_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[]);
    guide_flow(dir.path(), &serve, &serve.base).await;
    assert_eq!(serve.terminate().code(), Some(0), "graceful shutdown");
}

#[tokio::test]
async fn refresh_flow_on_redis() {
    let Some(url) = jwtkit_test_support::service("JWTKIT_TEST_REDIS_URL", "Redis") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}:", crate::support::unique("jwtkit-test:guide:"));
    // A fixed issuer: the default (http://LISTEN-ADDRESS) changes with the
    // port, and the restart below must be the same service.
    let args = [
        "--refresh",
        url.as_str(),
        "--refresh-prefix",
        prefix.as_str(),
        "--issuer",
        "https://auth.example.com",
    ];
    let serve = Serve::start(dir.path(), &args);
    guide_flow(dir.path(), &serve, "https://auth.example.com").await;
    drop(serve);

    // The sessions outlive the process: a restarted service on the same
    // Redis, key store and refresh key still knows them.
    let serve = Serve::start(dir.path(), &args);
    let http = client();
    let pair = issue(&http, &serve, "carol", json!({})).await;
    drop(serve);
    let serve = Serve::start(dir.path(), &args);
    let (status, body) = refresh(&http, &serve, str_of(&pair, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(serve.terminate().code(), Some(0), "graceful shutdown");
}
