//! Setting up OpenBao for the Vault login and lifecycle tests, as an
//! operator would with the `bao` CLI, over its HTTP API with the root token:
//! auth methods on mounts of their own, the store's least-privilege policy
//! (the one docs/backends/vault.md gives), AppRole roles and secret ids,
//! JWT roles, and revoking every token of a login mount.
#![allow(dead_code)] // each test file uses a different part

use std::time::Duration;

use jwtkit_test_support::service;
use serde_json::{json, Value};

/// The harness's OpenBao dev server: address and root token.
pub fn server() -> Option<(String, String)> {
    let addr = service("JWTKIT_TEST_VAULT_ADDR", "OpenBao (the Vault API)")?;
    let token = service("JWTKIT_TEST_VAULT_TOKEN", "OpenBao's root token")?;
    Some((addr, token))
}

/// The policy docs/backends/vault.md gives an issuing service that also
/// rotates (`transit` mount, `secret` KV v2 mount, key `key`).
pub fn store_policy(key: &str) -> String {
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

/// An operator with the root token.
pub struct Admin {
    http: reqwest::Client,
    pub addr: String,
    token: String,
}

impl Admin {
    pub fn new(addr: &str, token: &str) -> Admin {
        Admin {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            addr: addr.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    /// One request; returns the status and the JSON answer (`Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        wrap_ttl: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token);
        if let Some(ttl) = wrap_ttl {
            req = req.header("X-Vault-Wrap-TTL", ttl);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        (status, json)
    }

    /// A POST that must succeed.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, json) = self
            .call(reqwest::Method::POST, path, Some(body), None)
            .await;
        assert!((200..300).contains(&status), "POST {path}: {status} {json}");
        json
    }

    /// A GET that must succeed.
    pub async fn get(&self, path: &str) -> Value {
        let (status, json) = self.call(reqwest::Method::GET, path, None, None).await;
        assert!((200..300).contains(&status), "GET {path}: {status} {json}");
        json
    }

    /// `bao auth enable -path=MOUNT KIND` (already enabled is fine).
    pub async fn enable_auth(&self, mount: &str, kind: &str) {
        let (status, json) = self
            .call(
                reqwest::Method::POST,
                &format!("sys/auth/{mount}"),
                Some(json!({ "type": kind })),
                None,
            )
            .await;
        let taken = json.to_string().contains("already in use");
        assert!(
            (200..300).contains(&status) || taken,
            "enable {kind} at {mount}: {status} {json}"
        );
    }

    pub async fn put_policy(&self, name: &str, hcl: &str) {
        self.post(
            &format!("sys/policies/acl/{name}"),
            json!({ "policy": hcl }),
        )
        .await;
    }

    /// An AppRole role with these token TTLs and policy; returns its role id.
    pub async fn approle(
        &self,
        mount: &str,
        role: &str,
        policy: &str,
        token_ttl: &str,
        token_max_ttl: &str,
    ) -> String {
        self.post(
            &format!("auth/{mount}/role/{role}"),
            json!({
                "token_policies": [policy],
                "token_ttl": token_ttl,
                "token_max_ttl": token_max_ttl,
            }),
        )
        .await;
        self.get(&format!("auth/{mount}/role/{role}/role-id")).await["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A new secret id and its accessor.
    pub async fn secret_id(&self, mount: &str, role: &str) -> (String, String) {
        let data = self
            .post(&format!("auth/{mount}/role/{role}/secret-id"), json!({}))
            .await;
        (
            data["data"]["secret_id"].as_str().unwrap().to_owned(),
            data["data"]["secret_id_accessor"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    /// A new secret id, response-wrapped: the wrapping token.
    pub async fn wrapped_secret_id(&self, mount: &str, role: &str) -> String {
        let (status, json) = self
            .call(
                reqwest::Method::POST,
                &format!("auth/{mount}/role/{role}/secret-id"),
                Some(json!({})),
                Some("5m"),
            )
            .await;
        assert_eq!(status, 200, "{json}");
        json["wrap_info"]["token"].as_str().unwrap().to_owned()
    }

    /// Destroys a secret id by its accessor.
    pub async fn destroy_secret_id(&self, mount: &str, role: &str, accessor: &str) {
        self.post(
            &format!("auth/{mount}/role/{role}/secret-id-accessor/destroy"),
            json!({ "secret_id_accessor": accessor }),
        )
        .await;
    }

    /// Revokes every token logged in through `auth/MOUNT/login` (what
    /// `bao token revoke -mode=path auth/MOUNT/login` does).
    pub async fn revoke_logins(&self, mount: &str) {
        let (status, json) = self
            .call(
                reqwest::Method::PUT,
                &format!("sys/leases/revoke-prefix/auth/{mount}/login"),
                None,
                None,
            )
            .await;
        assert!((200..300).contains(&status), "revoke: {status} {json}");
    }

    /// A JWT role on a jwt-type mount: audience `vault`, user claim `sub`.
    pub async fn jwt_role(&self, mount: &str, role: &str, policy: &str, token_ttl: &str) {
        self.post(
            &format!("auth/{mount}/role/{role}"),
            json!({
                "role_type": "jwt",
                "bound_audiences": ["vault"],
                "user_claim": "sub",
                "token_policies": [policy],
                "token_ttl": token_ttl,
            }),
        )
        .await;
    }
}
