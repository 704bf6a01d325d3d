//! Issue 17 item 4, dogfooding: OpenBao's JWT auth method trusts the JWKS
//! of one `jwtkit serve` (`jwks_url`), a workload token that service issues
//! logs a second jwtkit into OpenBao, and that jwtkit signs with Vault
//! transit: first the CLI (`VAULT_AUTH_METHOD=jwt`), then a second
//! `jwtkit serve` whose config file has a `[vault]` table. Both real
//! binaries, the real OpenBao the test harness runs.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{jwtkit_env, Run};
use crate::support::serve::{Serve, ADMIN_TOKEN};

const ISSUER: &str = "https://workload-issuer.jwtkit.test";
const AUDIENCE: &str = "vault";

/// An operator with OpenBao's root token, over its HTTP API.
struct Bao {
    http: reqwest::Client,
    addr: String,
    root: String,
}

impl Bao {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.root)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("OpenBao {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) {
        let (status, answer) = self.call(reqwest::Method::POST, path, body).await;
        assert!(status.is_success(), "OpenBao {path}: {status} {answer}");
    }
}

/// The least-privilege policy docs/backends/vault.md gives a signing store.
fn store_policy(key: &str) -> String {
    format!(
        r#"
path "transit/sign/{key}"                  {{ capabilities = ["update"] }}
path "transit/keys/{key}"                  {{ capabilities = ["create", "read", "update"] }}
path "transit/keys/{key}/rotate"           {{ capabilities = ["update"] }}
path "transit/keys/{key}/config"           {{ capabilities = ["update"] }}
path "transit/keys/{key}/trim"             {{ capabilities = ["update"] }}
path "secret/data/jwtkit/transit/{key}"    {{ capabilities = ["create", "read", "update"] }}
"#
    )
}

/// `POST /token` on the issuing service: a workload token for `sub`.
async fn workload_token(http: &reqwest::Client, issuer: &Serve, sub: &str) -> String {
    let response = http
        .post(issuer.url("/token"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"sub": sub}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.unwrap();
    pair["access_token"].as_str().unwrap().to_owned()
}

/// `run`, which must have succeeded.
fn ok(run: &Run) -> &Run {
    assert_eq!(run.code, 0, "jwtkit failed: {}", run.stderr);
    run
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_token_from_jwtkit_serve_logs_a_second_jwtkit_into_openbao() {
    let Some(addr) = jwtkit_test_support::service("JWTKIT_TEST_VAULT_ADDR", "OpenBao") else {
        return;
    };
    let Some(root) =
        jwtkit_test_support::service("JWTKIT_TEST_VAULT_TOKEN", "OpenBao's root token")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let bao = Bao {
        http: http.clone(),
        addr: addr.trim_end_matches('/').to_owned(),
        root,
    };

    // 1. The issuing jwtkit serve (its own key store), whose JWKS OpenBao trusts.
    std::fs::create_dir(d.join("issuer")).unwrap();
    let issuer = Serve::start(
        &d.join("issuer"),
        &["--issuer", ISSUER, "--audience", AUDIENCE],
    );
    let mount = crate::support::unique("dogfood");
    let key = crate::support::unique("dogfood-key");
    let policy = crate::support::unique("dogfood-policy");
    bao.post(&format!("sys/auth/{mount}"), json!({"type": "jwt"}))
        .await;
    bao.post(
        &format!("auth/{mount}/config"),
        json!({"jwks_url": issuer.url("/.well-known/jwks.json"), "bound_issuer": ISSUER}),
    )
    .await;
    let (status, answer) = bao
        .call(
            reqwest::Method::PUT,
            &format!("sys/policies/acl/{policy}"),
            json!({"policy": store_policy(&key)}),
        )
        .await;
    assert!(status.is_success(), "policy: {status} {answer}");
    bao.post(
        &format!("auth/{mount}/role/signer"),
        json!({
            "role_type": "jwt",
            "bound_audiences": [AUDIENCE],
            "user_claim": "sub",
            "token_policies": [policy],
            "token_ttl": "10m",
        }),
    )
    .await;

    // 2. The second jwtkit, the CLI: logs in with the workload token only.
    let token_file = d.join("workload.jwt");
    write_private(
        &token_file,
        &workload_token(&http, &issuer, "workload-1").await,
    );
    let token_path = token_file.to_str().unwrap();
    let store = format!("vault+{}/transit/{key}", bao.addr);
    let env = [
        ("VAULT_AUTH_METHOD", "jwt"),
        ("VAULT_AUTH_ROLE", "signer"),
        ("VAULT_AUTH_MOUNT", mount.as_str()),
        ("VAULT_JWT_FILE", token_path),
        // Nothing else may log it in: no root token in sight.
        ("VAULT_TOKEN", ""),
    ];
    let run = |args: &[&str]| jwtkit_env(d, args, &env);
    ok(&run(&["store", "init", &store, "--alg", "ES256"]));
    let signed = run(&["sign", "--store", &store, "--sub", "alice", "--exp", "5m"]);
    ok(&signed);
    let verified = run(&["verify", "--store", &store, "--json", signed.stdout.trim()]);
    ok(&verified);
    let doc: Value = serde_json::from_str(&verified.stdout).unwrap();
    assert_eq!(doc["valid"], true, "{doc}");
    assert_eq!(doc["claims"]["sub"], "alice", "{doc}");

    // A token the issuer did not sign is refused by OpenBao, and the CLI says
    // which login failed, without showing the token.
    let forged = format!("{}x", signed.stdout.trim());
    write_private(&token_file, &forged);
    let refused = run(&["sign", "--store", &store, "--sub", "alice", "--exp", "5m"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("JWT login"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains(&forged),
        "the token leaked: {}",
        refused.stderr
    );

    // 3. A second jwtkit serve, configured by a `[vault]` table, issues with
    // Vault transit and publishes the Vault key.
    write_private(
        &token_file,
        &workload_token(&http, &issuer, "workload-2").await,
    );
    std::fs::create_dir(d.join("second")).unwrap();
    let config = d.join("second/serve.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"{store}\"\n\n[vault]\nauth-method = \"jwt\"\nauth-mount = \"{mount}\"\n\
             auth-role = \"signer\"\njwt-file = \"{token_path}\"\n"
        ),
    )
    .unwrap();
    let second = Serve::start(&d.join("second"), &["--config", config.to_str().unwrap()]);
    let access = workload_token(&http, &second, "bob").await;
    let header = jwt_core::dangerous::insecure_decode_header(&access).unwrap();
    let jwks: Value = http
        .get(second.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&header.kid.as_deref().unwrap()),
        "the Vault store's key {:?} signs: {kids:?}",
        header.kid
    );
    let health = http.get(second.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(second.terminate().code(), Some(0));
    assert_eq!(issuer.terminate().code(), Some(0));
}

/// The `[vault]` table alone decides how the store logs in: with
/// `auth-method = "token"`, a `VAULT_AUTH_METHOD` left in the environment
/// is not read (only `VAULT_TOKEN` is), and without `VAULT_TOKEN` the
/// service refuses to start, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_table_decides_the_login_method_not_the_environment() {
    let Some(addr) = jwtkit_test_support::service("JWTKIT_TEST_VAULT_ADDR", "OpenBao") else {
        return;
    };
    let Some(root) =
        jwtkit_test_support::service("JWTKIT_TEST_VAULT_TOKEN", "OpenBao's root token")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = crate::support::unique("table-key");
    let store = format!("vault+{}/transit/{key}", addr.trim_end_matches('/'));
    let config = d.join("serve.toml");
    std::fs::write(
        &config,
        format!("store = \"{store}\"\n\n[vault]\nauth-method = \"token\"\n"),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let refused = jwtkit_env(
        d,
        &["serve", "--listen", "127.0.0.1:0", "--config", config],
        &[
            ("JWTKIT_ADMIN_TOKEN", ADMIN_TOKEN),
            ("VAULT_TOKEN", ""),
            ("VAULT_AUTH_METHOD", "approle"),
        ],
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("needs VAULT_TOKEN"),
        "{}",
        refused.stderr
    );

    let serve = Serve::start_with_env(
        d,
        &["--config", config],
        &[
            ("VAULT_TOKEN", root.as_str()),
            ("VAULT_AUTH_METHOD", "approle"),
        ],
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let access = workload_token(&http, &serve, "carol").await;
    assert!(jwt_core::dangerous::insecure_decode_header(&access)
        .unwrap()
        .kid
        .is_some());
    assert_eq!(serve.terminate().code(), Some(0));
}
