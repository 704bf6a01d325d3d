//! `jwtkit serve` over real HTTP: the real binary, started in a temporary
//! directory on `127.0.0.1:0`, driven with reqwest, stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

const ADMIN: &str = "serve-test-admin-token-0123456789";
const INTROSPECTION: &str = "serve-test-introspection-token-42";

/// A running `jwtkit serve`; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Server {
        Self::try_start(dir, args)
            .unwrap_or_else(|stderr| panic!("jwtkit serve did not start:\n{stderr}"))
    }

    /// Starts the server; `Err(stderr)` when it exits before listening.
    fn try_start(dir: &Path, args: &[&str]) -> Result<Server, String> {
        let stderr_path = dir.join(format!("serve-{}.log", std::process::id()));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .env("JWTKIT_ADMIN_TOKEN", ADMIN)
            .env("JWTKIT_INTROSPECTION_TOKEN", INTROSPECTION)
            .env_remove("JWTKIT_REFRESH_KEY")
            .env("JWTKIT_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
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
            Ok(base) => Ok(Server { child, base }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(std::fs::read_to_string(&stderr_path).unwrap_or_default())
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, then the exit status (graceful shutdown exits 0).
    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("jwtkit serve did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn issue(http: &reqwest::Client, server: &Server, sub: &str, claims: Value) -> Value {
    let response = http
        .post(server.url("/token"))
        .bearer_auth(ADMIN)
        .json(&json!({"sub": sub, "claims": claims}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn refresh(http: &reqwest::Client, server: &Server, token: &str) -> (StatusCode, Value) {
    let response = http
        .post(server.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// `POST /introspect` with `credential` (RFC 7662): the status and body.
async fn introspect_as(
    http: &reqwest::Client,
    server: &Server,
    credential: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = http
        .post(server.url("/introspect"))
        .bearer_auth(credential)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    if status == StatusCode::OK {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.json().await.unwrap())
}

/// The introspection answer for `token`, with the introspection token.
async fn introspect(http: &reqwest::Client, server: &Server, token: &str) -> Value {
    let (status, body) = introspect_as(http, server, INTROSPECTION, &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {v}"))
}

/// Verifies `token` with the server's JWKS in an independent library.
async fn verify_with_jsonwebtoken(http: &reqwest::Client, server: &Server, token: &str) -> Value {
    let response = http
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        cache, "public, max-age=3600",
        "derived from the default prepublish (1 day)"
    );
    let jwks: jsonwebtoken::jwk::JwkSet = response.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("the token's kid is in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["api"]);
    validation.set_issuer(&[server.base.as_str()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("jsonwebtoken verifies the access token with the published JWKS")
        .claims
}

/// The authorization server metadata at both of its names (RFC 8414,
/// OpenID Connect Discovery): the issuer exactly, endpoints under it, the
/// JWKS it names answering with the token's keys, cached like the JWKS.
async fn metadata(http: &reqwest::Client, server: &Server) -> Value {
    let mut documents = Vec::new();
    for name in ["openid-configuration", "oauth-authorization-server"] {
        let response = http
            .get(server.url(&format!("/.well-known/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
        assert_eq!(response.headers()["content-type"], "application/json");
        documents.push(response.json::<Value>().await.unwrap());
    }
    assert_eq!(documents[0], documents[1]);
    let doc = documents.pop().unwrap();
    let base = server.base.as_str();
    assert_eq!(doc["issuer"], base);
    assert_eq!(doc["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    assert_eq!(doc["token_endpoint"], format!("{base}/token"));
    assert_eq!(doc["revocation_endpoint"], format!("{base}/revoke"));
    assert_eq!(doc["grant_types_supported"], json!(["refresh_token"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    // Only registered values: a bearer token authenticates introspection,
    // for which no method name is registered, so the member is left out.
    assert!(
        doc.get("introspection_endpoint_auth_methods_supported")
            .is_none(),
        "{doc}"
    );
    // The OpenAPI description names this service as its server.
    let openapi: Value = http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["servers"][0]["url"], base);
    let jwks: Value = http
        .get(str_of(&doc, "jwks_uri"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
    doc
}

/// `GET /sessions`, `DELETE /sessions/{sid}`, `POST /sessions/revoke`
/// (admin), and the client description given at login.
async fn sessions_per_user(http: &reqwest::Client, server: &Server) {
    let sub = format!("carla-{}", std::process::id());
    let admin_json = |method: reqwest::Method, path: String| {
        http.request(method, server.url(&path)).bearer_auth(ADMIN)
    };
    let laptop = http
        .post(server.url("/token"))
        .bearer_auth(ADMIN)
        .json(&json!({"sub": sub, "client": {"device": "laptop", "user_agent": "curl/8"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(laptop.status(), StatusCode::OK);
    let laptop: Value = laptop.json().await.unwrap();
    let phone = issue(http, server, &sub, json!({})).await;
    let list = |sub: String| async move {
        let response = admin_json(reqwest::Method::GET, format!("/sessions?sub={sub}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json::<Value>().await.unwrap()
    };
    let listed = list(sub.clone()).await;
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listed}");
    let info: Value = http
        .get(server.url("/userinfo"))
        .bearer_auth(str_of(&laptop, "access_token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        info.get("device").is_none(),
        "the client description never enters tokens"
    );
    let laptop_sid = info["sid"].as_str().unwrap().to_owned();
    // Both started in the same second: found by id, not by position.
    for session in sessions {
        let expected = if session["sid"] == laptop_sid.as_str() {
            json!({"device": "laptop", "user_agent": "curl/8"})
        } else {
            Value::Null
        };
        assert_eq!(session["client"], expected, "{listed}");
    }
    assert!(sessions.iter().any(|s| s["sid"] == laptop_sid.as_str()));
    // One session revoked by its id: its access token is inactive at once.
    let response = admin_json(reqwest::Method::DELETE, format!("/sessions/{laptop_sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"sid": laptop_sid, "revoked": true})
    );
    assert_eq!(
        introspect(http, server, str_of(&laptop, "access_token")).await,
        json!({"active": false})
    );
    assert_eq!(
        list(sub.clone()).await["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Logout everywhere.
    let response = admin_json(reqwest::Method::POST, "/sessions/revoke".into())
        .json(&json!({"sub": sub}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"sub": sub, "revoked": 1})
    );
    assert_eq!(
        introspect(http, server, str_of(&phone, "access_token")).await,
        json!({"active": false})
    );
    assert!(list(sub.clone()).await["sessions"]
        .as_array()
        .unwrap()
        .is_empty());
    // Admin only: the introspection token is forbidden (it may only
    // introspect), a wrong one unauthorized; a bad id or body is invalid_request.
    for (method, path) in [
        (reqwest::Method::GET, format!("/sessions?sub={sub}")),
        (reqwest::Method::DELETE, format!("/sessions/{laptop_sid}")),
    ] {
        let response = http
            .request(method.clone(), server.url(&path))
            .bearer_auth(INTROSPECTION)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope", "{body}");
        assert!(
            str_of(&body, "error_description").contains("listing or revoking sessions"),
            "{body}"
        );
        let response = http
            .request(method, server.url(&path))
            .bearer_auth("not-the-admin-token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            str_of(&body, "error_description").contains("listing and revoking sessions"),
            "{body}"
        );
    }
    sessions_are_paged(http, server).await;
    for response in [
        admin_json(
            reqwest::Method::DELETE,
            "/sessions/not%20a%20session".into(),
        ),
        admin_json(reqwest::Method::GET, "/sessions".into()),
        admin_json(reqwest::Method::POST, "/sessions/revoke".into()).json(&json!({"user": "x"})),
    ] {
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
    let response = http
        .post(server.url("/token"))
        .bearer_auth(ADMIN)
        .json(&json!({"sub": sub, "client": {"device": "x".repeat(2000)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "a client description over 1 KiB"
    );
}

/// `GET /sessions` answers at most `limit` sessions (default 100, at most
/// 1000), oldest first, and `next` leads through the rest: every session
/// once, in order, even when the one a cursor names ended in between.
async fn sessions_are_paged(http: &reqwest::Client, server: &Server) {
    let sub = format!("paged-{}", std::process::id());
    for _ in 0..5 {
        issue(http, server, &sub, json!({})).await;
    }
    let sub = sub.as_str();
    let get = |query: String| async move {
        let response = http
            .get(server.url(&format!("/sessions?sub={sub}{query}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json::<Value>().await.unwrap())
    };
    let (_, all) = get(String::new()).await;
    assert_eq!(all["total"], 5, "{all}");
    assert!(all.get("next").is_none(), "{all}");
    let all: Vec<Value> = all["sessions"].as_array().unwrap().clone();
    let mut seen = Vec::new();
    let mut query = "&limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = get(query.clone()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        // One session ends after the first page (below).
        assert_eq!(page["total"], if pages == 0 { 5 } else { 4 }, "{page}");
        let listed = page["sessions"].as_array().unwrap();
        assert!(listed.len() <= 2, "{page}");
        seen.extend(listed.iter().cloned());
        pages += 1;
        match page.get("next") {
            Some(next) => query = format!("&limit=2&after={}", next.as_str().unwrap()),
            None => break,
        }
        if pages == 1 {
            // The session a cursor names ends: the next page still follows it.
            let last = listed.last().unwrap()["sid"].as_str().unwrap().to_owned();
            let response = http
                .delete(server.url(&format!("/sessions/{last}")))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all, "every session once, in order");
    for bad in [
        "&limit=0",
        "&limit=1001",
        "&limit=x",
        "&after=nonsense",
        "&after=12.",
    ] {
        let (status, body) = get(bad.to_owned()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert!(
            str_of(&body, "error_description").contains("GET /sessions?sub="),
            "{body}"
        );
    }
}

/// RFC 9701: `Accept: application/token-introspection+jwt` gets the answer
/// as a JWT signed with the service's key, which the published JWKS
/// verifies in an independent library.
async fn signed_introspection(http: &reqwest::Client, server: &Server) {
    let pair = issue(http, server, "ines", json!({"scope": "read"})).await;
    let response = http
        .post(server.url("/introspect"))
        .bearer_auth(INTROSPECTION)
        .header("accept", "application/token-introspection+jwt")
        .form(&[("token", str_of(&pair, "access_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/token-introspection+jwt"
    );
    let jwt = response.text().await.unwrap();
    // `q=0` is "not acceptable" (RFC 9110 §12.5.1): JSON then.
    let response = http
        .post(server.url("/introspect"))
        .bearer_auth(INTROSPECTION)
        .header(
            "accept",
            "application/token-introspection+jwt;q=0, application/json",
        )
        .form(&[("token", str_of(&pair, "access_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("token-introspection+jwt"));
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["api"]);
    validation.set_issuer(&[server.base.as_str()]);
    validation.set_required_spec_claims(&["iss", "aud", "exp"]);
    let claims = jsonwebtoken::decode::<Value>(&jwt, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["token_introspection"]["active"], true);
    assert_eq!(claims["token_introspection"]["sub"], "ines");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60,
        "valid for a minute"
    );
    // jwtkit's own verifier checks it with its defaults (exp required).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args([
            "verify",
            "--jwks-url",
            &server.url("/.well-known/jwks.json"),
        ])
        .args(["--iss", &server.base, "--aud", "api"])
        .args(["--typ", "token-introspection+jwt", "--json", &jwt])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "jwtkit verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        verified["claims"]["token_introspection"]["sub"], "ines",
        "{verified}"
    );
}

/// The flow of the issue: issue → userinfo → refresh → reuse (invalid_grant,
/// successor revoked too) → revoke → refresh refused.
async fn token_lifecycle(http: &reqwest::Client, server: &Server) {
    let pair = issue(
        http,
        server,
        "alice",
        json!({"scope": "read write", "client_id": "web"}),
    )
    .await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    let access = str_of(&pair, "access_token");
    let refresh1 = str_of(&pair, "refresh_token");

    // userinfo with the access token: its claims.
    let info: Value = http
        .get(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["scope"], "read write");
    assert_eq!(info["client_id"], "web");
    assert_eq!(info["aud"], "api");
    assert_eq!(info["iss"], server.base);
    assert_eq!(
        info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap(),
        900
    );

    // An independent verifier accepts it with the published keys.
    let claims = verify_with_jsonwebtoken(http, server, access).await;
    assert_eq!(claims["jti"], info["jti"]);
    // The session is visible in the token: `sid`, the same for every token
    // of the session (checked after the refresh below), another for another
    // session.
    assert_eq!(info["sid"], claims["sid"]);
    assert!(
        info["sid"].as_str().is_some_and(|s| s.len() >= 16),
        "{info}"
    );
    metadata(http, server).await;

    // Introspection (RFC 7662) of both tokens of a live session.
    let seen = introspect(http, server, access).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["token_type"], "Bearer");
    for name in [
        "sub",
        "exp",
        "iat",
        "iss",
        "aud",
        "jti",
        "sid",
        "scope",
        "client_id",
    ] {
        assert_eq!(seen[name], info[name], "{name} in {seen}");
    }
    let seen = introspect(http, server, refresh1).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["token_type"], "refresh_token");
    assert_eq!(
        (&seen["sub"], &seen["sid"], &seen["scope"]),
        (&info["sub"], &info["sid"], &info["scope"])
    );
    let (status, hinted) = introspect_as(
        http,
        server,
        ADMIN,
        &[("token", refresh1), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(
        (status, &hinted["token_type"]),
        (StatusCode::OK, &json!("refresh_token"))
    );
    // Anything else is exactly {"active":false}.
    for garbage in ["garbage", "a.b.c", &access[..access.len() - 2]] {
        assert_eq!(
            introspect(http, server, garbage).await,
            json!({"active": false})
        );
    }
    // Only the admin and the introspection token may ask; the introspection
    // token cannot issue.
    for credential in ["not-the-token-at-all-0123456789", access] {
        let (status, body) = introspect_as(http, server, credential, &[("token", access)]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );
    }
    let response = http
        .post(server.url("/introspect"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = http
        .post(server.url("/token"))
        .bearer_auth(INTROSPECTION)
        .json(&json!({"sub": "mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope", "{body}");
    let (status, body) =
        introspect_as(http, server, INTROSPECTION, &[("token_type_hint", "x")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    // A refresh token is not an access token, and vice versa.
    let response = http
        .get(server.url("/userinfo"))
        .bearer_auth(refresh1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    let (status, body) = refresh(http, server, access).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

    // Refresh: a new pair with the session's claims.
    let (status, pair2) = refresh(http, server, refresh1).await;
    assert_eq!(status, StatusCode::OK, "{pair2}");
    let refresh2 = str_of(&pair2, "refresh_token");
    assert_ne!(refresh2, refresh1);
    let info2: Value = http
        .get(server.url("/userinfo"))
        .bearer_auth(str_of(&pair2, "access_token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info2["scope"], "read write");
    assert_ne!(info2["jti"], info["jti"]);
    assert_eq!(info2["sid"], info["sid"]);

    // Reuse of the consumed token: invalid_grant, and the successor dies too.
    let (status, body) = refresh(http, server, refresh1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        str_of(&body, "error_description").contains("already used"),
        "{body}"
    );
    let (status, body) = refresh(http, server, refresh2).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        str_of(&body, "error_description").contains("revoked"),
        "{body}"
    );
    // The reuse ended the session: its access tokens, unexpired, are no
    // longer active for a resource server that introspects.
    for token in [access, str_of(&pair2, "access_token"), refresh2] {
        assert_eq!(
            introspect(http, server, token).await,
            json!({"active": false})
        );
    }

    // Revoke (RFC 7009): 200, then the session no longer refreshes.
    let pair3 = issue(http, server, "bob", json!({})).await;
    let info3: Value = http
        .get(server.url("/userinfo"))
        .bearer_auth(str_of(&pair3, "access_token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(info3["sid"], info["sid"]);
    let refresh3 = str_of(&pair3, "refresh_token");
    let response = http
        .post(server.url("/revoke"))
        .form(&[("token", refresh3)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = refresh(http, server, refresh3).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Logout: the session's still-unexpired access token is inactive at once.
    assert_eq!(
        introspect(http, server, str_of(&pair3, "access_token")).await,
        json!({"active": false})
    );
    sessions_per_user(http, server).await;
    signed_introspection(http, server).await;
    // Revoking garbage is not an error either (RFC 7009 §2.2).
    let response = http
        .post(server.url("/revoke"))
        .form(&[("token", "garbage")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn embedded_default_runs_the_whole_flow_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    token_lifecycle(&http, &server).await;

    // Errors of the HTTP surface.
    let response = http.get(server.url("/userinfo")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let response = http
        .post(server.url("/token"))
        .bearer_auth("not-the-admin-token")
        .json(&json!({"sub": "mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = http
        .post(server.url("/token"))
        .bearer_auth(ADMIN)
        .json(&json!({"sub": "alice", "claims": {"exp": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let response = http
        .post(server.url("/token"))
        .form(&[("grant_type", "password"), ("username", "a")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
    let response = http
        .post(server.url("/token"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(vec![b' '; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let response = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ok");

    // The embedded default created its key store, private to the user.
    let keys = dir.path().join(".jwtkit/keys");
    assert!(keys.join("keys.json").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
}

#[tokio::test]
async fn a_restart_reuses_the_key_store_and_its_tokens_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let http = client();
    let first = Server::start(
        dir.path(),
        &["--issuer", "https://auth.test", "--audience", "api"],
    );
    let pair = issue(&http, &first, "carol", json!({})).await;
    let kids = |jwks: Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let jwks1 = kids(
        http.get(first.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(jwks1.len(), 2, "active + pending");
    drop(first);

    let second = Server::start(
        dir.path(),
        &["--issuer", "https://auth.test", "--audience", "api"],
    );
    let jwks2 = kids(
        http.get(second.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(jwks1, jwks2);
    let response = http
        .get(second.url("/userinfo"))
        .bearer_auth(str_of(&pair, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The memory refresh store and its per-process key died with the first process.
    let (status, body) = refresh(&http, &second, str_of(&pair, "refresh_token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn config_file_sets_options_and_contradictions_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("serve.toml"),
        "audience = \"orders\"\naccess-ttl = \"5m\"\nrefresh-ttl = \"1h\"\n",
    )
    .unwrap();
    let server = Server::start(dir.path(), &["--config", "serve.toml"]);
    let http = client();
    let pair = issue(&http, &server, "dave", json!({})).await;
    assert_eq!(pair["expires_in"], 300);
    let info: Value = http
        .get(server.url("/userinfo"))
        .bearer_auth(str_of(&pair, "access_token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["aud"], "orders");
    drop(server);

    // An option overrides the file: here into a contradiction, refused with exit 2.
    let output = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            "serve.toml",
            "--refresh-ttl",
            "1m",
        ])
        .current_dir(dir.path())
        .env("JWTKIT_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refresh_ttl"), "{stderr}");
    assert!(output.stdout.is_empty(), "never listened");

    let output = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(["serve", "--listen", "127.0.0.1:0", "--reuse-grace", "2m"])
        .current_dir(dir.path())
        .env("JWTKIT_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("reuse_grace"));

    let output = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("JWTKIT_ADMIN_TOKEN", "short")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("JWTKIT_ADMIN_TOKEN"));
}

#[tokio::test]
async fn without_an_admin_token_one_is_generated_and_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("JWTKIT_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("jwtkit serve: listening on ")
        .unwrap()
        .to_owned();
    let stderr = std::fs::read_to_string(&log).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let prefix = "jwtkit serve: admin token (set JWTKIT_ADMIN_TOKEN to choose one): ";
    let printed: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .collect();
    assert_eq!(printed.len(), 1, "{stderr}");
    assert_eq!(printed[0].len(), 43, "32 random bytes, base64url");
    assert!(base.starts_with("http://127.0.0.1:"));
}

fn redis_url() -> Option<String> {
    jwtkit_test_support::service("JWTKIT_TEST_REDIS_URL", "Redis")
}

fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("jwtkit-test:serve:{test}:{}:{nanos}:", std::process::id())
}

#[tokio::test]
async fn redis_refresh_store_runs_the_flow_and_one_of_50_concurrent_refreshes_wins() {
    let Some(url) = redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("flow");
    let server = Server::start(
        dir.path(),
        &["--refresh", &url, "--refresh-prefix", &prefix],
    );
    let http = client();
    token_lifecycle(&http, &server).await;

    // 50 concurrent refreshes of one token: exactly one 200, the rest invalid_grant.
    let pair = issue(&http, &server, "erin", json!({})).await;
    let token = str_of(&pair, "refresh_token").to_owned();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let http = http.clone();
            let url = server.url("/token");
            let token = token.clone();
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                (status, body)
            })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST if body["error"] == "invalid_grant" => refused += 1,
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    assert_eq!((ok, refused), (1, 49));

    // The refresh key file was created next to the keys, private.
    let key_file = dir.path().join(".jwtkit/refresh.key");
    assert!(key_file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

/// `--refresh` with the comma-separated seed nodes of a Redis Cluster: the same
/// token lifecycle, each session's keys in one hash slot.
#[tokio::test]
async fn redis_cluster_refresh_store_runs_the_flow() {
    let Some(nodes) = jwtkit_test_support::service("JWTKIT_TEST_REDIS_CLUSTER", "a Redis Cluster")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("cluster");
    let server = Server::start(
        dir.path(),
        &["--refresh", &nodes, "--refresh-prefix", &prefix],
    );
    let http = client();
    token_lifecycle(&http, &server).await;
    let response = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_redis_refresh_tokens_survive_a_restart() {
    let Some(url) = redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("restart");
    // A fixed issuer: the default one names the (random) listen port.
    let args = [
        "--refresh",
        url.as_str(),
        "--refresh-prefix",
        prefix.as_str(),
        "--issuer",
        "https://auth.test",
    ];
    let http = client();
    let first = Server::start(dir.path(), &args);
    let pair = issue(&http, &first, "frank", json!({"scope": "read"})).await;
    assert_eq!(first.terminate().code(), Some(0));

    let second = Server::start(dir.path(), &args);
    let (status, pair2) = refresh(&http, &second, str_of(&pair, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{pair2}");
    let info: Value = http
        .get(second.url("/userinfo"))
        .bearer_auth(str_of(&pair2, "access_token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["scope"], "read");
}

#[tokio::test]
async fn healthz_and_refresh_answer_503_while_redis_is_down() {
    let Some(redis_bin) =
        jwtkit_test_support::binary("JWTKIT_TEST_REDIS_SERVER_BIN", "redis-server")
    else {
        return;
    };
    let port = jwtkit_test_support::free_port();
    let mut redis = Command::new(&redis_bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("redis://127.0.0.1:{port}/");
    // Wait for it to accept connections.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--refresh", &url]);
    let http = client();
    let pair = issue(&http, &server, "grace", json!({})).await;
    let _ = redis.kill();
    let _ = redis.wait();

    let response = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["key_store"], "ok");
    // Which store, not its error text (no hosts or paths on a public endpoint).
    assert_eq!(body["refresh_store"], "unavailable");
    let (status, body) = refresh(&http, &server, str_of(&pair, "refresh_token")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    // Access tokens still verify: no store is involved.
    let response = http
        .get(server.url("/userinfo"))
        .bearer_auth(str_of(&pair, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// The discovery document is accepted by the consumers that configure
/// themselves from an issuer URL: `jwtkit verify --issuer-url`, PyJWT's
/// `PyJWKClient` on its `jwks_uri`, and OpenBao's JWT auth method with
/// `oidc_discovery_url` (a real OpenBao, which logs the token's subject in).
#[tokio::test]
async fn the_discovery_document_is_accepted_by_jwtkit_pyjwt_and_openbao() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let doc = metadata(&http, &server).await;
    let pair = issue(&http, &server, "dora", json!({"scope": "read"})).await;
    let access = str_of(&pair, "access_token");

    // 1. jwtkit itself, from the issuer URL alone.
    let out = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args([
            "verify",
            "--issuer-url",
            &server.base,
            "--aud",
            "api",
            "--json",
        ])
        .arg(access)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(verified["claims"]["sub"], "dora");

    // 2. PyJWT's PyJWKClient, on the document's jwks_uri.
    if let Some(python) = jwtkit_test_support::service("JWTKIT_TEST_PYTHON", "a Python with PyJWT")
    {
        let script = r#"
import json, sys, urllib.request
import jwt
doc = json.load(urllib.request.urlopen(sys.argv[1] + "/.well-known/openid-configuration"))
assert doc["issuer"] == sys.argv[1], doc
client = jwt.PyJWKClient(doc["jwks_uri"])
key = client.get_signing_key_from_jwt(sys.argv[2])
claims = jwt.decode(sys.argv[2], key, algorithms=doc["id_token_signing_alg_values_supported"],
                    audience="api", issuer=doc["issuer"])
print(claims["sub"])
"#;
        let out = Command::new(python)
            .args(["-c", script, &server.base, access])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "PyJWT: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "dora");
    }

    // 3. OpenBao's JWT auth method, configured with oidc_discovery_url.
    let (Some(addr), Some(root)) = (
        jwtkit_test_support::service("JWTKIT_TEST_VAULT_ADDR", "OpenBao (Vault API)"),
        jwtkit_test_support::service("JWTKIT_TEST_VAULT_TOKEN", "OpenBao's root token"),
    ) else {
        return;
    };
    let mount = format!(
        "jwtkit-serve-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let bao = |method: reqwest::Method, path: String, body: Value| {
        let http = http.clone();
        let url = format!("{}/v1/{path}", addr.trim_end_matches('/'));
        let root = root.clone();
        async move {
            let response = http
                .request(method, url)
                .header("X-Vault-Token", root)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            (status, text)
        }
    };
    let (status, text) = bao(
        reqwest::Method::POST,
        format!("sys/auth/{mount}"),
        json!({"type": "jwt"}),
    )
    .await;
    assert!(status.is_success(), "enable jwt auth: {status} {text}");
    let (status, text) = bao(
        reqwest::Method::POST,
        format!("auth/{mount}/config"),
        json!({"oidc_discovery_url": doc["issuer"], "bound_issuer": doc["issuer"]}),
    )
    .await;
    assert!(
        status.is_success(),
        "configure oidc_discovery_url: {status} {text}"
    );
    let (status, text) = bao(
        reqwest::Method::POST,
        format!("auth/{mount}/role/api"),
        json!({"role_type": "jwt", "bound_audiences": ["api"], "user_claim": "sub",
               "token_policies": ["default"], "token_ttl": "1m"}),
    )
    .await;
    assert!(status.is_success(), "create role: {status} {text}");
    let (status, text) = bao(
        reqwest::Method::POST,
        format!("auth/{mount}/login"),
        json!({"role": "api", "jwt": access}),
    )
    .await;
    let _ = bao(
        reqwest::Method::DELETE,
        format!("sys/auth/{mount}"),
        json!({}),
    )
    .await;
    assert!(
        status.is_success(),
        "OpenBao login with the access token: {status} {text}"
    );
    let login: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(login["auth"]["metadata"]["role"], "api", "{login}");
    assert!(login["auth"]["client_token"].is_string(), "{login}");
}

/// `jwtkit refresh-key`: the refresh key rotates without logging anyone out
/// (issue 15 item 5). A session started before the rotation refreshes
/// after it; new refresh tokens carry the new kid; the rotation is an audit
/// record (without the secret); mistakes are exit 2 with what to do.
#[tokio::test]
async fn the_refresh_key_rotates_without_logging_anyone_out() {
    let Some(url) = redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("refresh-key");
    // A fixed issuer: the default names the (new) listening port.
    let args = [
        "--refresh",
        url.as_str(),
        "--refresh-prefix",
        prefix.as_str(),
        "--issuer",
        "https://auth.test",
    ];
    let http = client();
    let server = Server::start(dir.path(), &args);
    let before = issue(&http, &server, "alice", json!({})).await;
    drop(server);
    let jwtkit = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_jwtkit"))
            .arg("refresh-key")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let kid_of =
        |token: &str| -> String { jsonwebtoken::decode_header(token).unwrap().kid.unwrap() };
    let old_kid = kid_of(str_of(&before, "refresh_token"));

    let out = jwtkit(&["rotate", "--grace", "1h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{old_kid}  previous  until")),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refresh_key.rotated"), "{stderr}");
    // Not a terminal: no colour codes in the audit record.
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes: {stderr:?}");
    let secret_file = std::fs::read_to_string(dir.path().join(".jwtkit/refresh.key")).unwrap();
    for line in secret_file.lines().filter(|l| !l.starts_with('#')) {
        let secret = line.split_whitespace().next().unwrap();
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }

    let server = Server::start(dir.path(), &args);
    let (status, after) = refresh(&http, &server, str_of(&before, "refresh_token")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the session survives the rotation: {after}"
    );
    let new_kid = kid_of(str_of(&after, "refresh_token"));
    assert_ne!(new_kid, old_kid);
    drop(server);

    // The restarted instance logs the refresh keys it holds (no secret).
    let log = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("serve-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        log.contains("refresh keys loaded") && log.contains(&format!("{new_kid} (signs)")),
        "{log}"
    );
    let out = jwtkit(&["show", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["keys"][0],
        json!({"kid": new_kid, "role": "signs", "until": null})
    );
    assert_eq!(shown["keys"][1]["role"], "previous");
    // With --json the audit records are JSON lines, for a log pipeline.
    let out = jwtkit(&["stage", "--json"]);
    assert!(out.status.success());
    let records: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["target"], "jwtkit::audit");
    assert_eq!(records[0]["fields"]["event"], "refresh_key.staged");
    // Staging twice, promoting with nothing staged, a missing file: exit 2.
    for (args, says) in [
        (&["stage"][..], "staged"),
        (
            &["promote", "--grace", "1h", "nope.key"][..],
            "no refresh-key file at nope.key",
        ),
    ] {
        let out = jwtkit(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    for grace in ["0s", "400d"] {
        let out = jwtkit(&["promote", "--grace", grace]);
        assert_eq!(out.status.code(), Some(2), "--grace {grace}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("1s to 365d"));
    }
    // A symlinked key file is refused: replacing the link would leave the
    // file the server reads unchanged.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("refresh.key", dir.path().join(".jwtkit/link.key")).unwrap();
        let out = jwtkit(&["promote", ".jwtkit/link.key"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    }
    assert!(jwtkit(&["promote"]).status.success());
    let out = jwtkit(&["promote"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no refresh key is staged"));
}

/// The refresh key's path is checked like every key path (the attacker's
/// review): under a directory other users may write (not sticky), or
/// through a link another user owns, someone else could swap the key or
/// remove it (a fresh key would log everyone out). `jwtkit serve` refuses
/// to start with it, and so do the `refresh-key` commands.
#[cfg(unix)]
#[tokio::test]
async fn a_refresh_key_path_others_control_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let Some(url) = redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("shared");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let prefix = unique_prefix("refresh-key-path");
    let started = Server::try_start(
        dir.path(),
        &[
            "--refresh",
            &url,
            "--refresh-prefix",
            &prefix,
            "--refresh-key",
            "shared/refresh.key",
        ],
    );
    let stderr = match started {
        Ok(_) => panic!("jwtkit serve started with a refresh key in a world-writable directory"),
        Err(stderr) => stderr,
    };
    assert!(stderr.contains("--refresh-key"), "{stderr}");
    assert!(stderr.contains("shared"), "{stderr}");
    assert!(
        !open.join("refresh.key").exists(),
        "no key was created there"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(["refresh-key", "show", "shared/refresh.key"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not safe"), "{stderr}");
}

/// `jwtkit refresh-key` commands on one file run one after the other (an
/// flock beside the file): eight concurrent `stage`s stage exactly one key
/// and the other seven are told a key is already staged. Without the lock
/// all eight succeeded, audited eight keys and kept one (the attacker's
/// review).
#[test]
fn concurrent_refresh_key_commands_do_not_undo_each_other() {
    let dir = tempfile::tempdir().unwrap();
    jwtkit::RefreshKey::load_or_create(dir.path().join("refresh.key")).unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_jwtkit"))
                .args(["refresh-key", "stage", "refresh.key"])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<Option<i32>> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Some(2)).count(),
        7,
        "{codes:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(["refresh-key", "show", "--json", "refresh.key"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let roles: Vec<&str> = shown["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["signs", "next"], "{shown}");
}

/// RFC 7009 with an access token: `POST /revoke` ends the session its `sid`
/// names (the operator's review: it used to answer 200 and do nothing). Its
/// refresh token stops refreshing and introspection reports the access token
/// inactive at once; `token_type_hint` only orders the attempts; anything
/// else is still answered 200 and changes nothing.
#[tokio::test]
async fn revoking_an_access_token_ends_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    for hint in [None, Some("access_token"), Some("refresh_token")] {
        let pair = issue(&http, &server, "vera", json!({})).await;
        let access = str_of(&pair, "access_token");
        let mut form = vec![("token", access)];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        let response = http
            .post(server.url("/revoke"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{hint:?}");
        assert_eq!(
            introspect(&http, &server, access).await,
            json!({"active": false}),
            "{hint:?}"
        );
        let (status, body) = refresh(&http, &server, str_of(&pair, "refresh_token")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hint:?}: {body}");
        assert_eq!(body["error"], "invalid_grant");
    }
    // Garbage, and another service's token: 200, nothing revoked.
    let live = issue(&http, &server, "walt", json!({})).await;
    for token in ["garbage", "e30.e30.e30"] {
        let response = http
            .post(server.url("/revoke"))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        introspect(&http, &server, str_of(&live, "access_token")).await["active"],
        true
    );
}

/// `--introspection-audience`: the signed introspection answer (RFC 9701)
/// names the resource servers that asked, not the access-token audience, so
/// it can never pass for an access token at a verifier that ignores `typ`
/// (the attacker's review); without it, the audience as before.
#[tokio::test]
async fn the_signed_introspection_answer_names_the_introspection_audience() {
    let dir = tempfile::tempdir().unwrap();
    let http = client();
    for (args, aud) in [
        (
            &["--introspection-audience", "https://rs.example"][..],
            "https://rs.example",
        ),
        (&[][..], "api"),
    ] {
        let server = Server::start(dir.path(), args);
        let pair = issue(&http, &server, "yara", json!({})).await;
        let jwt = http
            .post(server.url("/introspect"))
            .bearer_auth(INTROSPECTION)
            .header("accept", "application/token-introspection+jwt")
            .form(&[("token", str_of(&pair, "access_token"))])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let claims = jwt_core::dangerous::insecure_decode(&jwt)
            .unwrap_or_else(|e| panic!("{e}: {jwt}"))
            .claims;
        assert_eq!(claims["aud"], aud, "{claims:?}");
        assert_eq!(claims["token_introspection"]["active"], true);
    }
}
