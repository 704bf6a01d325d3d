//! The claims of an access token (RFC 9068 §2.2).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Claims the service sets itself; refused as custom claims.
pub const RESERVED_CLAIMS: [&str; 8] = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid"];

/// The `aud` claim: one audience or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience (what this service issues).
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// `true` when `aud` is one of the audiences.
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(all) => all.iter().any(|a| a == aud),
        }
    }
}

/// The claims of an access token issued by a [`TokenService`](crate::TokenService):
/// the registered ones of RFC 9068 plus whatever custom claims the session carries.
///
/// ```
/// let claims: jwtkit::AccessClaims = serde_json::from_value(serde_json::json!({
///     "iss": "https://auth.example.com", "sub": "alice", "aud": "my-api",
///     "exp": 1_700_000_900, "iat": 1_700_000_000, "jti": "abc",
///     "scope": "read write", "roles": ["admin"]
/// })).unwrap();
/// assert!(claims.has_scope("write"));
/// assert_eq!(claims.extra["roles"][0], "admin");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user (or client) the token is about.
    pub sub: String,
    /// Audience: the resource server(s) the token is for.
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The token's unique id (log this, never the token).
    pub jti: String,
    /// The session (refresh family) the token belongs to, as in OpenID
    /// Connect's `sid`: every access token of one login carries the same
    /// one, so a resource server can tie tokens to a session, and
    /// introspection or a logout list can end it before `exp`. Absent in
    /// tokens signed by versions before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The OAuth client the token was issued to, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Space-separated scopes, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccessClaims {
    /// `true` when `scope` is one of the token's space-separated scopes.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|s| s == scope))
    }
}
