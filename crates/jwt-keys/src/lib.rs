//! # jwt-keys
//!
//! Key management for jwtkit, on top of `jwt-core`:
//!
//! - [`KeyStore`]: one small object-safe async trait every key backend
//!   implements — [`MemoryKeyStore`], [`FileKeyStore`], [`EnvKeyStore`]
//!   here; KMS and Vault elsewhere. Hold one as `Arc<dyn KeyStore>`, open
//!   one from a URI with [`open_store`], and use the conveniences of
//!   [`KeyStoreExt`] (`sign_token`, `rotate_if_due`, `audit`).
//! - A key **lifecycle**, `pending → active → retiring → retired`
//!   ([`KeyState`]): every key is published before it signs, keeps
//!   verifying for a grace period after it stops signing, and its `kid` is
//!   never reused.
//! - A [`RotationPolicy`] a security team can put on a store, and an audit
//!   against it.
//! - A [`Verifier`] that follows a store, a fixed JWKS, or an identity
//!   provider's JWKS URL with a well-behaved cache (TTL from
//!   `Cache-Control`, refresh on unknown kid with a cooldown, single-flight,
//!   stale-if-error, background refresh), and
//!   [`blocking::Verifier`], the same verifier for code that is not async
//!   (what PyJWT's `PyJWKClient` users expect).
//! - A [`MultiIssuerVerifier`] for tokens from identity providers, found by
//!   their issuer URL ([`discovery`]: OpenID Connect Discovery and RFC
//!   8414 metadata), several at once, each key bound to the issuer that
//!   published it ([`Issuer`]; [`discover`] shows what it would trust), and
//!   [`blocking::MultiIssuerVerifier`] for code that is not async.
//! - `conformance` (feature `conformance`): the tests every backend passes.
//!
//! ```
//! use std::sync::Arc;
//! use jwt_core::{Algorithm, Clock, ManualClock, Validation};
//! use jwt_keys::{KeySource, KeyStore, KeyStoreExt, MemoryKeyStore, RotationPolicy, Verifier};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // Time is given once: the store decides every key state on this clock.
//! let clock = Arc::new(ManualClock::new(1_700_000_000));
//! let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::with_clock(clock.clone()));
//! store.init(Algorithm::ES256, &RotationPolicy::default()).await?;
//!
//! let claims = serde_json::json!({"sub": "alice", "exp": clock.now() + 600});
//! let old = store.sign_token(&claims, None).await?;
//! store.rotate(None).await?;          // the signing kid changes at once
//! let new = store.sign_token(&claims, None).await?;
//!
//! let verifier = Verifier::builder(
//!     KeySource::Store(store.clone()),
//!     Validation::new([Algorithm::ES256]).clock(clock.clone()),
//! )
//! .clock(clock.clone())
//! .build()?;
//! verifier.verify::<serde_json::Value>(&old).await?; // still verifies during the grace
//! verifier.verify::<serde_json::Value>(&new).await?;
//! # Ok::<(), jwt_keys::Error>(())
//! # }).unwrap();
//! ```
//!
//! The operator's side — choosing the policy knobs and a runbook per
//! backend — is in `docs/key-rotation.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "kms")]
pub mod aws_kms;
pub mod blocking;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod discovery;
pub mod env;
mod error;
pub mod file;
mod issuers;
#[cfg(feature = "jsonwebtoken")]
pub mod jsonwebtoken_bridge;
mod lifecycle;
mod memory;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
mod policy;
mod remote;
#[cfg(any(feature = "kms", feature = "vault", feature = "pkcs11"))]
mod remote_store;
#[cfg(any(feature = "kms", feature = "vault", feature = "pkcs11"))]
mod state_cache;
mod store;
mod uri;
#[cfg(feature = "vault")]
pub mod vault;
mod verify;

pub use discovery::discover;
pub use env::{EnvKeyStore, EnvKeyStoreBuilder};
pub use error::{BoxError, Error, ErrorKind, FetchError, Result};
pub use file::FileKeyStore;
pub use issuers::{Issuer, MultiIssuerVerifier, MultiIssuerVerifierBuilder};
pub use memory::MemoryKeyStore;
pub use policy::{AuditReport, Finding, RotationPolicy, RotationPolicyBuilder};
pub use remote::{parse_jwks_response, MAX_KEYS_PER_KID};
pub use store::{
    KeyInfo, KeyRecord, KeyState, KeyStore, KeyStoreExt, MaintenanceReport, RotationReport,
};
pub use uri::{open_store, open_store_with_clock, StoreOpener, StoreRegistry};
pub use verify::{
    verification_algorithms, AlgorithmRule, CacheOptions, CachedTokens, KeySource,
    TokenCacheOptions, TokenCacheStats, Verifier, VerifierBuilder, DEFAULT_TOKEN_CACHE_BYTES,
    DEFAULT_TOKEN_CACHE_ENTRIES, DEFAULT_TOKEN_CACHE_MAX_TOKEN,
};
