//! OpenBao as a real OpenID provider, set up over its HTTP API with the root
//! token as an operator would: named keys (`identity/oidc/key`), roles that
//! sign ID tokens with them (`identity/oidc/role`), a userpass user whose
//! token has an entity (what `identity/oidc/token/ROLE` needs), key
//! rotation, and an OIDC provider (`identity/oidc/provider`) with a client,
//! whose authorization-code flow issues ID tokens under a second issuer.
//!
//! Every test uses names of its own ([`unique`]), so tests run in parallel
//! on the one shared server.
#![allow(dead_code)] // each test file uses a different part

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::vault_admin::Admin;

/// The userpass mount the tests' users log in at (shared; enabling it
/// again is a no-op).
const USERS: &str = "jwtkit-oidc-users";
/// The policy that lets those users ask for ID tokens.
const POLICY: &str = "jwtkit-oidc-tokens";

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Bao {
    pub admin: Admin,
    http: reqwest::Client,
}

/// A user logged in through userpass: its token and entity.
pub struct User {
    pub token: String,
    pub entity_id: String,
}

/// An OIDC provider with one confidential client assigned to a user.
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    client_secret: String,
    redirect_uri: String,
}

impl Bao {
    /// The harness's OpenBao, ready for OIDC tests; `None` (after printing
    /// how to run them) when it is not available and not required.
    pub async fn connect() -> Option<Bao> {
        let (addr, token) = crate::vault_admin::server()?;
        let admin = Admin::new(&addr, &token);
        admin.enable_auth(USERS, "userpass").await;
        admin
            .put_policy(
                POLICY,
                r#"
path "identity/oidc/token/*"                 { capabilities = ["read"] }
path "identity/oidc/provider/+/authorize"    { capabilities = ["read", "update"] }
"#,
            )
            .await;
        Some(Bao {
            admin,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        })
    }

    /// The server's built-in issuer (`identity/oidc`).
    pub fn issuer(&self) -> String {
        format!("{}/v1/identity/oidc", self.admin.addr)
    }

    /// The issuer's JWKS, as published now.
    pub async fn jwks(&self, issuer: &str) -> Value {
        self.http
            .get(format!("{issuer}/.well-known/keys"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The kids the issuer publishes now.
    pub async fn published_kids(&self, issuer: &str) -> Vec<String> {
        self.jwks(issuer).await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// A named key: `algorithm`, usable by every role and client, rotated
    /// only when a test says so, and published for `verification_ttl`
    /// after a rotation.
    pub async fn key(&self, name: &str, algorithm: &str, verification_ttl: &str) {
        self.admin
            .post(
                &format!("identity/oidc/key/{name}"),
                json!({
                    "algorithm": algorithm,
                    "allowed_client_ids": ["*"],
                    "rotation_period": "24h",
                    "verification_ttl": verification_ttl,
                }),
            )
            .await;
    }

    /// Rotates a named key now.
    pub async fn rotate(&self, key: &str) {
        self.admin
            .post(&format!("identity/oidc/key/{key}/rotate"), json!({}))
            .await;
    }

    /// A role signing with `key` tokens that live `ttl` (at most the key's
    /// `verification_ttl`); returns its client id (the tokens' `aud`).
    pub async fn role(&self, name: &str, key: &str, ttl: &str) -> String {
        self.admin
            .post(
                &format!("identity/oidc/role/{name}"),
                json!({ "key": key, "ttl": ttl }),
            )
            .await;
        self.admin.get(&format!("identity/oidc/role/{name}")).await["data"]["client_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A new userpass user, logged in: its token has an entity.
    pub async fn user(&self) -> User {
        let name = unique("u");
        let password = unique("pw");
        self.admin
            .post(
                &format!("auth/{USERS}/users/{name}"),
                json!({ "password": password, "token_policies": [POLICY] }),
            )
            .await;
        let login: Value = self
            .http
            .post(format!("{}/v1/auth/{USERS}/login/{name}", self.admin.addr))
            .json(&json!({ "password": password }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        User {
            token: login["auth"]["client_token"].as_str().unwrap().to_owned(),
            entity_id: login["auth"]["entity_id"].as_str().unwrap().to_owned(),
        }
    }

    /// An ID token of `role` for `user` (`identity/oidc/token/ROLE`).
    pub async fn id_token(&self, user: &User, role: &str) -> String {
        let answer: Value = self
            .http
            .get(format!("{}/v1/identity/oidc/token/{role}", self.admin.addr))
            .header("X-Vault-Token", &user.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["data"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token for role {role}: {answer}"))
            .to_owned()
    }

    /// An OIDC provider whose one client signs with `key` and is assigned
    /// to `user`.
    pub async fn provider(&self, key: &str, user: &User) -> Provider {
        let name = unique("p");
        let assignment = unique("as");
        let client = unique("c");
        let redirect_uri = "http://127.0.0.1:9/callback".to_owned();
        self.admin
            .post(
                &format!("identity/oidc/assignment/{assignment}"),
                json!({ "entity_ids": [user.entity_id] }),
            )
            .await;
        self.admin
            .post(
                &format!("identity/oidc/client/{client}"),
                json!({
                    "key": key,
                    "redirect_uris": [redirect_uri],
                    "assignments": [assignment],
                    "id_token_ttl": "1h",
                    "access_token_ttl": "1h",
                }),
            )
            .await;
        let data = &self
            .admin
            .get(&format!("identity/oidc/client/{client}"))
            .await["data"];
        let client_id = data["client_id"].as_str().unwrap().to_owned();
        let client_secret = data["client_secret"].as_str().unwrap().to_owned();
        self.admin
            .post(
                &format!("identity/oidc/provider/{name}"),
                json!({ "allowed_client_ids": [client_id] }),
            )
            .await;
        Provider {
            issuer: format!("{}/v1/identity/oidc/provider/{name}", self.admin.addr),
            name,
            client_id,
            client_secret,
            redirect_uri,
        }
    }

    /// An ID token from `provider` for `user`, through the
    /// authorization-code flow (authorize with the user's token, then
    /// exchange the code as the client).
    pub async fn provider_token(&self, provider: &Provider, user: &User) -> String {
        let base = format!(
            "{}/v1/identity/oidc/provider/{}",
            self.admin.addr, provider.name
        );
        let code: Value = self
            .http
            .get(format!("{base}/authorize"))
            .header("X-Vault-Token", &user.token)
            .query(&[
                ("client_id", provider.client_id.as_str()),
                ("scope", "openid"),
                ("redirect_uri", provider.redirect_uri.as_str()),
                ("response_type", "code"),
                ("state", "jwtkit-state"),
                ("nonce", "jwtkit-nonce"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let code = code["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code: {code}"));
        let tokens: Value = self
            .http
            .post(format!("{base}/token"))
            .basic_auth(&provider.client_id, Some(&provider.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", provider.redirect_uri.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no id_token: {tokens}"))
            .to_owned()
    }

    /// Waits (at most `limit`) until `issuer` no longer publishes `kid`.
    pub async fn wait_until_unpublished(&self, issuer: &str, kid: &str, limit: Duration) {
        let start = Instant::now();
        while self.published_kids(issuer).await.iter().any(|k| k == kid) {
            assert!(
                start.elapsed() < limit,
                "OpenBao still publishes {kid} after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The `kid` in a token's header.
pub fn kid(token: &str) -> String {
    jwt_core::dangerous::insecure_decode_header(token)
        .unwrap()
        .kid
        .unwrap()
}
