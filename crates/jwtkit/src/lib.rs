//! # jwtkit
//!
//! One dependency for a service team: a [`TokenService`] that issues access
//! tokens (RFC 9068, `typ: at+jwt`) and rotating refresh tokens
//! (`typ: refresh+jwt`, with reuse detection), verifies access tokens in
//! memory, rotates its signing keys on a schedule and publishes them as a
//! JWKS — composed from the three crates it re-exports:
//!
//! - [`core`] (`jwt-core`): signing and verifying, synchronous, no I/O;
//! - [`keys`] (`jwt-keys`): key stores (file, env, memory; KMS and Vault
//!   behind features), the key lifecycle and its rotation policy;
//! - [`refresh`] (`jwt-refresh`): refresh-token families in memory or Redis.
//!
//! ```
//! use std::time::Duration;
//! use jwt_core::Algorithm;
//! use jwtkit::{AccessClaims, FileKeyStore, RefreshKey, TokenService};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jwtkit::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let tokens = TokenService::builder()
//!     .key_store(FileKeyStore::open(dir.path().join("keys")))
//!     .init_key_store(Algorithm::ES256)          // first start: create the keys
//!     .issuer("https://auth.example.com")
//!     .audience("my-api")
//!     .access_ttl(Duration::from_secs(15 * 60))
//!     .refresh_ttl(Duration::from_secs(30 * 86400))
//!     .build()                                   // refuses contradictory settings
//!     .await?;
//!
//! let pair = tokens.issue("alice", &serde_json::json!({"scope": "read"})).await?;
//! let claims: AccessClaims = tokens.verify_access(&pair.access_token)?;   // sync, no I/O
//! assert_eq!(claims.sub, "alice");
//! let pair2 = tokens.refresh(&pair.refresh_token).await?;    // rotation + reuse detection
//! tokens.revoke_session(&pair2.refresh_token).await?;
//! let jwks = tokens.jwks().await?;
//! assert_eq!(jwks.keys.len(), 2);                            // active + pending
//! # Ok(()) }
//! ```
//!
//! With Redis, give the service a refresh store and a refresh key that
//! outlive the process (the builder refuses a shared store with a
//! per-process key):
//!
//! ```no_run
//! # use jwtkit::*;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let tokens = TokenService::builder()
//!     .shared_key_store(jwtkit::keys::open_store("file:/var/lib/jwtkit/keys")?)
//!     .refresh_store(RedisRefreshStore::builder().url("redis://127.0.0.1:6379/").connect().await?)
//!     .refresh_key(RefreshKey::load_or_create("/var/lib/jwtkit/refresh.key")?)
//!     .issuer("https://auth.example.com")
//!     .audience("my-api")
//!     .build()
//!     .await?;
//! let _maintenance = tokens.spawn_maintenance(std::time::Duration::from_secs(60));
//! # Ok(()) }
//! ```
//!
//! ## Defaults, and what they defend against
//! - Access and refresh tokens are signed with different keys and carry
//!   different `typ`s (RFC 8725 §3.11, §3.12): one can never pass as the other.
//! - Refresh tokens are single use; a replayed one revokes its whole session
//!   (a thief and the legitimate client cannot both keep refreshing).
//! - Store failures never count as success: a refresh that cannot be decided
//!   is refused with a retryable error.
//! - Access tokens are short (15 min by default, over 24 h refused) because
//!   they cannot be revoked; the key policy's grace must cover them.
//! - Logs carry session and token ids, never tokens.
//!
//! - With [`dpop`] (RFC 9449, [`TokenServiceBuilder::dpop`]), tokens are
//!   bound to a key the client holds: a stolen access or refresh token is
//!   useless without it, and a bound token presented as `Bearer` is refused.
//!
//! With feature `axum`: [`axum::BearerAuthLayer`] (bearer and DPoP
//! tokens) and the [`axum::Claims`] and [`axum::DpopKey`] extractors.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod claims;
pub mod dpop;
mod error;
mod refresh_key;
mod service;

#[cfg(feature = "axum")]
pub mod axum;

pub use jwt_core as core;
pub use jwt_keys as keys;
pub use jwt_refresh as refresh;

pub use builder::TokenServiceBuilder;
pub use claims::{AccessClaims, Audience, Confirmation, RESERVED_CLAIMS};
pub use dpop::{BoundClaims, DpopBinding, DpopClient, DpopMode, DpopOptions};
pub use error::{DpopRefusal, Error, ErrorKind, GrantRefusal, Result};
pub use refresh_key::{RefreshKey, RefreshKeyInfo, REFRESH_KEY_LEN};
pub use service::{
    Health, MaintenanceTask, TokenPair, TokenService, ACCESS_TYP, DEFAULT_ACCESS_TTL,
    DEFAULT_LEEWAY, DEFAULT_REFRESH_TTL, DEFAULT_SESSION_LIFETIME, INTROSPECTION_JWT_TTL_SECS,
    INTROSPECTION_TYP, MAX_ACCESS_TTL, MAX_LEEWAY, REFRESH_TYP,
};

pub use jwt_core::{Algorithm, Clock, ManualClock, SystemClock};
pub use jwt_keys::{
    open_store, EnvKeyStore, FileKeyStore, Issuer, KeyStore, MemoryKeyStore, MultiIssuerVerifier,
    RotationPolicy, TokenCacheOptions, TokenCacheStats,
};
#[cfg(feature = "redis")]
pub use jwt_refresh::RedisRefreshStore;
pub use jwt_refresh::{MemoryRefreshStore, RefreshPolicy, RefreshStore, SessionInfo};

// The Rust snippets of the README and of every page under `docs/`, compiled
// and run by `cargo test --doc` so that they cannot rot: one item per page
// (rustdoc runs an item's `rust` code blocks and skips `sh`, `text`, …). A
// new page is added here; the unit test below fails until it is.
#[cfg(doctest)]
mod doc_pages {
    #[doc = include_str!("../../../README.md")]
    struct Readme;
    #[doc = include_str!("../../../docs/from-pyjwt.md")]
    struct FromPyjwt;
    #[doc = include_str!("../../../docs/refresh-tokens.md")]
    struct RefreshTokens;
    #[doc = include_str!("../../../docs/architecture.md")]
    struct Architecture;
    #[doc = include_str!("../../../docs/configuration.md")]
    struct Configuration;
    #[doc = include_str!("../../../docs/key-rotation.md")]
    struct KeyRotation;
    #[doc = include_str!("../../../docs/operations.md")]
    struct Operations;
    #[doc = include_str!("../../../docs/performance.md")]
    struct Performance;
    #[doc = include_str!("../../../docs/security-model.md")]
    struct SecurityModel;
    #[doc = include_str!("../../../docs/testing.md")]
    struct Testing;
    #[doc = include_str!("../../../docs/backends/kms.md")]
    struct BackendKms;
    #[doc = include_str!("../../../docs/backends/vault.md")]
    struct BackendVault;
    #[doc = include_str!("../../../docs/identity-providers.md")]
    struct IdentityProviders;
    #[doc = include_str!("../../../docs/backends/pkcs11.md")]
    struct BackendPkcs11;
    #[doc = include_str!("../../../docs/python.md")]
    struct Python;
    #[doc = include_str!("../../../docs/dpop.md")]
    struct Dpop;
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn markdown_pages(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("docs/ is readable") {
            let path = entry.expect("a docs/ entry").path();
            if path.is_dir() {
                markdown_pages(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }

    /// Every page under `docs/` has its snippets run as doctests
    /// (`doc_pages` above): a page left out could carry a snippet that no
    /// longer compiles.
    #[test]
    fn every_docs_page_is_included_as_a_doctest() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let lib = include_str!("lib.rs");
        let mut pages = Vec::new();
        markdown_pages(&root.join("docs"), &mut pages);
        assert!(pages.len() >= 10, "found only {pages:?}");
        for page in pages {
            let relative = page.strip_prefix(&root).expect("under the root");
            let include = format!("include_str!(\"../../../{}\")", relative.to_string_lossy());
            assert!(
                lib.contains(&include),
                "{} is not run as a doctest: add `#[doc = {include}]` to `doc_pages` in \
                 crates/jwtkit/src/lib.rs",
                relative.display()
            );
        }
    }
}
