//! The Vault backend (feature `vault`): keys in a Vault or OpenBao
//! **transit** engine that never leave it.
//!
//! The process asks transit to sign (`POST MOUNT/sign/KEY` with an explicit
//! `key_version`, `marshaling_algorithm=jws`) and verifies locally with the
//! public keys read from `GET MOUNT/keys/KEY`, cached per version forever
//! (a version's key never changes), so verification never calls Vault.
//!
//! Key types: `rsa-2048/3072/4096` (RS*, and PS* with `salt_length=hash`),
//! `ecdsa-p256/p384/p521` (ES256/384/512), `ed25519` (EdDSA). Every
//! signature is verified with the cached public key before it is returned,
//! so a wrong salt length or a wrong key can never produce a token.
//!
//! # `kid`
//!
//! `MOUNT/KEY/vN`, e.g. `transit/jwt-issuer/v3`: the transit mount, the key
//! name and the key version. Key versions are the rotation unit.
//!
//! # Where the lifecycle lives
//!
//! Transit holds the key versions; which version is pending, active,
//! retiring or retired, the times and the [`RotationPolicy`] live in one
//! KV v2 entry, `KV_MOUNT/data/STATE_PATH` (default
//! `secret/data/jwtkit/MOUNT/KEY`), as `{"ledger": {…}}`. Every write uses
//! KV v2 check-and-set, so processes rotating at once rotate once.
//! `rotate` creates a transit version that stays **pending** (published, not
//! signing) until the next rotation activates it. `retire_expired` raises
//! the key's `min_decryption_version` and trims older versions, which
//! destroys their private keys. A version created by a rotation that lost
//! the check-and-set race is never published and is trimmed in time.
//!
//! # Configuration
//!
//! Token auth: [`VaultKeyStore::from_env`] reads `VAULT_ADDR`,
//! `VAULT_TOKEN`, `VAULT_NAMESPACE` and `VAULT_CACERT` (a PEM CA bundle for
//! TLS); the builder takes the same explicitly. Every call is bounded by
//! [`timeout`](VaultKeyStoreBuilder::timeout). Works with HashiCorp Vault
//! and OpenBao alike.
//!
//! ```no_run
//! use jwt_core::Algorithm;
//! use jwt_keys::vault::VaultKeyStore;
//! use jwt_keys::{KeyStore, KeyStoreExt, RotationPolicy};
//!
//! # async fn run() -> jwt_keys::Result<()> {
//! let store = VaultKeyStore::builder("transit", "jwt-issuer")
//!     .address("https://vault.internal:8200")
//!     .token(std::env::var("VAULT_TOKEN").unwrap_or_default())
//!     .build()?;
//! store.init(Algorithm::ES256, &RotationPolicy::default()).await?;
//! let token = store.sign_token(&serde_json::json!({"sub": "alice"}), None).await?;
//! # Ok(()) }
//! ```
//!
//! The Vault policy, the rotation runbook and rate limits are in
//! `docs/backends/vault.md`.

mod builder;
mod client;
mod state;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use base64::Engine as _;
use jwt_core::time::UnixTime;
use jwt_core::{Algorithm, Clock, KeyFamily, VerifyingKey};
use serde_json::{json, Value};

pub use self::builder::VaultKeyStoreBuilder;
pub use self::client::VaultError;
use self::client::{invalid, Http, Reply, BACKEND};
use self::state::Snapshot;
use crate::error::{Error, Result};
use crate::lifecycle::{init_report, Ledger};
use crate::policy::RotationPolicy;
use crate::remote_store::{RemoteBackend, RemoteParts};
use crate::store::{KeyRecord, KeyState, KeyStore, RotationReport};

/// A [`KeyStore`] whose private keys live in a Vault/OpenBao transit engine.
/// The module docs describe the `kid` and the state scheme.
pub struct VaultKeyStore {
    mount: String,
    key: String,
    address: String,
    kv_mount: String,
    state_path: String,
    rsa_bits: u32,
    http: Http,
    /// Clock, cached state and write lock, as every remote store has them.
    parts: RemoteParts<Snapshot>,
    /// Public keys by version: read once, kept forever.
    public_keys: RwLock<HashMap<u64, VerifyingKey>>,
}

impl fmt::Debug for VaultKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKeyStore")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .field("key", &self.key)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl VaultKeyStore {
    fn kid(&self, version: u64) -> String {
        format!("{}/{}/v{version}", self.mount, self.key)
    }

    fn version_of(&self, kid: &str) -> Option<u64> {
        kid.strip_prefix(&format!("{}/{}/v", self.mount, self.key))?
            .parse()
            .ok()
    }

    fn not_initialized(&self) -> Error {
        Error::NotInitialized {
            backend: BACKEND,
            location: self.location(),
        }
    }

    fn key_type(&self, alg: Algorithm) -> Result<String> {
        Ok(match alg.family() {
            KeyFamily::Rsa => format!("rsa-{}", self.rsa_bits),
            KeyFamily::Ec(_) => match alg {
                Algorithm::ES256 => "ecdsa-p256",
                Algorithm::ES384 => "ecdsa-p384",
                _ => "ecdsa-p521",
            }
            .to_owned(),
            KeyFamily::Ed25519 => "ed25519".to_owned(),
            _ => {
                return Err(Error::invalid_config(
                    "algorithm",
                    format!(
                    "{alg} keys are shared secrets and cannot be published; the vault backend signs RS*, PS*, ES* and EdDSA"
                )))
            }
        })
    }

    async fn rotate_transit(&self) -> Result<u64> {
        let path = format!("{}/keys/{}/rotate", self.mount, self.key);
        let latest = match self.http.call("rotate key", &path, Some(json!({}))).await? {
            // Vault ≥ 1.12 and OpenBao answer with the key, under the key's lock:
            // its latest_version is the version this call created.
            Reply::Ok(v) => v["data"]["latest_version"].as_u64(),
            Reply::NotFound => return Err(self.not_initialized()),
        };
        match latest {
            Some(v) => Ok(v),
            None => Ok(self
                .read_key()
                .await?
                .ok_or_else(|| self.not_initialized())?
                .latest_version),
        }
    }
}

fn hash_algorithm(alg: Algorithm) -> &'static str {
    match alg.hash_len() {
        32 => "sha2-256",
        48 => "sha2-384",
        _ => "sha2-512",
    }
}

#[async_trait]
impl RemoteBackend for VaultKeyStore {
    type Snapshot = Snapshot;
    const NAME: &'static str = BACKEND;
    const SERVICE: &'static str = "Vault";

    fn parts(&self) -> &RemoteParts<Snapshot> {
        &self.parts
    }

    fn location(&self) -> String {
        format!("{}/{}/{}", self.address, self.mount, self.key)
    }

    fn supports(&self, alg: Algorithm) -> bool {
        self.key_type(alg).is_ok()
    }

    fn check_init(&self, alg: Algorithm, _: &RotationPolicy) -> Result<()> {
        self.key_type(alg).map(|_| ())
    }

    async fn load(&self, _previous: Option<Arc<Snapshot>>) -> Result<Snapshot> {
        self.read_state().await
    }

    async fn sign_remote(
        &self,
        _: &Snapshot,
        key: &KeyRecord,
        signing_input: &[u8],
    ) -> Result<Vec<u8>> {
        let (kid, alg) = (key.kid.as_str(), key.alg);
        let version = self.version_of(kid).ok_or_else(|| Error::UnknownKey {
            kid: kid.to_owned(),
        })?;
        let mut body = json!({
            "input": base64::engine::general_purpose::STANDARD.encode(signing_input),
            "key_version": version,
            "marshaling_algorithm": "jws",
        });
        if alg.family() != KeyFamily::Ed25519 {
            body["hash_algorithm"] = json!(hash_algorithm(alg));
        }
        if alg.family() == KeyFamily::Rsa {
            let pss = matches!(alg, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512);
            body["signature_algorithm"] = json!(if pss { "pss" } else { "pkcs1v15" });
            if pss {
                // RFC 7518 §3.5: the salt is as long as the hash.
                body["salt_length"] = json!("hash");
            }
        }
        let path = format!("{}/sign/{}", self.mount, self.key);
        let data: Value = self.http.data("sign", &path, Some(body)).await?;
        let text = data["signature"].as_str().unwrap_or_default();
        let prefix = format!("vault:v{version}:");
        let encoded = text.strip_prefix(&prefix).ok_or_else(|| {
            invalid(
                "sign",
                &path,
                format!("the signature does not start with `{prefix}`"),
            )
        })?;
        let sig = jwt_core::b64::decode(encoded.as_bytes(), "signature").map_err(|e| {
            invalid(
                "sign",
                &path,
                format!("the signature is not base64url: {e}"),
            )
        })?;
        Ok(sig)
    }

    fn refuse_signature(&self, key: &KeyRecord, reason: jwt_core::Error) -> Error {
        invalid(
            "sign",
            &format!("{}/sign/{}", self.mount, self.key),
            format!(
                "the {} signature does not verify with {}'s public key ({reason}); refusing to use it",
                key.alg, key.kid
            ),
        )
    }

    async fn init_remote(
        &self,
        snap: &Snapshot,
        alg: Algorithm,
        policy: &RotationPolicy,
        now: UnixTime,
    ) -> Result<RotationReport> {
        let key_type = self.key_type(alg)?;
        if snap.ledger.is_some() {
            return Err(Error::AlreadyInitialized {
                backend: BACKEND,
                location: self.location(),
            });
        }
        let path = format!("{}/keys/{}", self.mount, self.key);
        self.http
            .call("create key", &path, Some(json!({"type": key_type})))
            .await?;
        let existing = self
            .read_key()
            .await?
            .ok_or_else(|| self.not_initialized())?;
        if existing.key_type != key_type {
            return Err(Error::invalid_config(
                "key",
                format!(
                "the transit key {path} exists with type {} but {alg} needs {key_type}; use another key name",
                existing.key_type
            )));
        }
        let active = existing.latest_version;
        let pending = self.rotate_transit().await?;
        let (active_kid, pending_kid) = (self.kid(active), self.kid(pending));
        let ledger = Ledger::new(policy.clone(), alg, now, &active_kid, &pending_kid)?;
        if !self.write_ledger(&ledger, snap.cas).await? {
            return Err(Error::AlreadyInitialized {
                backend: BACKEND,
                location: self.location(),
            });
        }
        tracing::info!(store = %self.location(), active = %active_kid, pending = %pending_kid, %alg, "vault key store initialized");
        Ok(init_report(active_kid, pending_kid))
    }

    async fn create_key(
        &self,
        _: &Snapshot,
        _: Algorithm,
        _: UnixTime,
        _: usize,
    ) -> Result<Option<String>> {
        // A version that loses the check-and-set race is never published
        // and is trimmed in time.
        Ok(Some(self.kid(self.rotate_transit().await?)))
    }

    async fn commit(
        &self,
        snap: &Snapshot,
        before: &Ledger,
        after: &Ledger,
        _: UnixTime,
    ) -> Result<bool> {
        if !self.write_ledger(after, snap.cas).await? {
            return Ok(false);
        }
        let retired_now = after.keys.iter().any(|r| {
            r.state == KeyState::Retired
                && before
                    .get(&r.kid)
                    .is_some_and(|b| b.state != KeyState::Retired)
        });
        if retired_now {
            // Destroys the retired versions' private keys.
            self.trim(after).await?;
        }
        Ok(true)
    }
}

/// The `vault+http:` and `vault+https:` URI schemes:
/// `vault+https://HOST:PORT/MOUNT/KEY` (the mount may have several
/// segments), with `VAULT_TOKEN`, `VAULT_NAMESPACE` and `VAULT_CACERT` from
/// the environment.
pub(crate) fn open_uri(rest: &str, uri: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn KeyStore>> {
    let bad = |reason: String| Error::InvalidUri {
        uri: uri.to_owned(),
        reason,
    };
    let scheme = if uri.to_ascii_lowercase().starts_with("vault+https:") {
        "https"
    } else {
        "http"
    };
    let form = "write vault+http://HOST:PORT/MOUNT/KEY (vault+https:// for TLS)";
    let after = rest
        .strip_prefix("//")
        .ok_or_else(|| bad(form.to_owned()))?;
    let (host, path) = after.split_once('/').ok_or_else(|| bad(form.to_owned()))?;
    let (mount, key) = path
        .trim_end_matches('/')
        .rsplit_once('/')
        .ok_or_else(|| bad(format!("no MOUNT/KEY path; {form}")))?;
    if host.is_empty() {
        return Err(bad(format!("no host; {form}")));
    }
    let builder = VaultKeyStore::builder(mount, key)
        .address(format!("{scheme}://{host}"))
        .env_auth()?
        .clock(clock);
    match builder.build() {
        Ok(s) => Ok(Arc::new(s)),
        Err(Error::InvalidConfig { reason, .. }) => Err(bad(reason)),
        Err(e) => Err(e),
    }
}
