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
//! Because retirement destroys versions, [`init`](KeyStore::init) never
//! takes over a transit key that exists: it refuses it (`invalid_config`,
//! naming the key and what to do), unless the key was created by an earlier
//! `init` of this store that stopped before it wrote the ledger. That one
//! is told apart by the `{"init": …}` marker `init` writes into the KV
//! entry *before* it creates the key: every version of such a key is
//! younger than the marker, by Vault's own clock. A store without a ledger
//! fails every read with [`Error::NotInitialized`], never as an empty store.
//!
//! # Login files
//!
//! A secret id or JWT given as a file is read at each login, and only from
//! a regular file of at most [`MAX_LOGIN_FILE_BYTES`], owned by this
//! process's user or root; a secret id file must be `chmod 600`, a JWT file
//! must not be writable by others (a Kubernetes service-account token is
//! mounted readable by all by design). `docs/backends/vault.md` has the
//! table and the reasons.
//!
//! # Configuration and login
//!
//! [`VaultKeyStore::from_env`] reads `VAULT_ADDR`, the login settings
//! (`VAULT_AUTH_METHOD`: `token` with `VAULT_TOKEN`, or `approle`, `jwt`,
//! `kubernetes` with their variables, see [`VaultAuth::from_env`]),
//! `VAULT_NAMESPACE` and `VAULT_CACERT` (a PEM CA bundle for TLS); the
//! builder takes the same explicitly. `VAULT_SKIP_VERIFY` is never honoured.
//! Every call is bounded by [`timeout`](VaultKeyStoreBuilder::timeout).
//! Works with HashiCorp Vault and OpenBao alike, through `vaultrs`.
//!
//! # The token over time
//!
//! The first call logs in. A task owned by the store renews the token at
//! about two thirds of its TTL and logs in again when renewal is refused or
//! the max TTL is reached; it stops when the store is dropped. A call that
//! Vault denies because the token just died (expired, revoked) logs in once
//! and is retried once. [`check_auth`](VaultKeyStore::check_auth) reports
//! whether a valid token can be had. Tokens, secret ids and JWTs never
//! appear in logs, errors or `Debug` output.
//!
//! ```no_run
//! use jwt_core::Algorithm;
//! use jwt_keys::vault::{SecretId, VaultAuth, VaultKeyStore};
//! use jwt_keys::{KeyStore, KeyStoreExt, RotationPolicy};
//!
//! # async fn run() -> jwt_keys::Result<()> {
//! let store = VaultKeyStore::builder("transit", "jwt-issuer")
//!     .address("https://vault.internal:8200")
//!     .auth(VaultAuth::approle(
//!         "7e1a4f0c-role-id",
//!         SecretId::from_file("/run/secrets/vault-secret-id").response_wrapped(),
//!     ))
//!     .build()?;
//! store.init(Algorithm::ES256, &RotationPolicy::default()).await?;
//! let token = store.sign_token(&serde_json::json!({"sub": "alice"}), None).await?;
//! # Ok(()) }
//! ```
//!
//! The Vault policies, the login recipes, the rotation runbook and rate
//! limits are in `docs/backends/vault.md`.

mod auth;
mod builder;
mod client;
mod endpoints;
mod session;
mod state;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use base64::Engine as _;
use jwt_core::time::UnixTime;
use jwt_core::{Algorithm, Clock, KeyFamily, VerifyingKey};
use vaultrs::api::transit::requests::CreateKeyRequest;
use vaultrs::api::transit::KeyType;

pub use self::auth::{SecretId, VaultAuth, ENV_AUTH_METHOD, ENV_AUTH_MOUNT, MAX_LOGIN_FILE_BYTES};
pub use self::builder::VaultKeyStoreBuilder;
pub use self::client::VaultError;
use self::client::{invalid, not_found, BACKEND};
use self::endpoints::SignRequest;
use self::session::Session;
pub use self::session::VaultAuthStats;
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
    /// The token and the connection to Vault.
    session: Arc<Session>,
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
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Drop for VaultKeyStore {
    fn drop(&mut self) {
        // The renewal task holds the session weakly; stop it now rather
        // than at its next wake-up.
        self.session.stop();
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

    /// The transit key type for `alg`, by name and as `vaultrs` creates it.
    fn key_type(&self, alg: Algorithm) -> Result<(&'static str, KeyType)> {
        Ok(match (alg.family(), alg) {
            (KeyFamily::Rsa, _) => match self.rsa_bits {
                3072 => ("rsa-3072", KeyType::Rsa3072),
                4096 => ("rsa-4096", KeyType::Rsa4096),
                _ => ("rsa-2048", KeyType::Rsa2048),
            },
            (KeyFamily::Ec(_), Algorithm::ES256) => ("ecdsa-p256", KeyType::EcdsaP256),
            (KeyFamily::Ec(_), Algorithm::ES384) => ("ecdsa-p384", KeyType::EcdsaP384),
            (KeyFamily::Ec(_), _) => ("ecdsa-p521", KeyType::EcdsaP521),
            (KeyFamily::Ed25519, _) => ("ed25519", KeyType::Ed25519),
            _ => {
                return Err(Error::invalid_config(
                    "algorithm",
                    format!(
                    "{alg} keys are shared secrets and cannot be published; the vault backend signs RS*, PS*, ES* and EdDSA"
                )))
            }
        })
    }

    /// Creates a transit version; returns its number.
    async fn rotate_transit(&self) -> Result<u64> {
        let path = format!("{}/keys/{}/rotate", self.mount, self.key);
        let rotated = self
            .session
            .call("rotate key", &path, |conn| async move {
                match vaultrs::transit::key::rotate(&conn, &self.mount, &self.key).await {
                    Ok(()) => Ok(true),
                    Err(e) if not_found(&e).is_some() => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await?;
        if !rotated {
            return Err(self.not_initialized());
        }
        // Another process rotating at the same moment may make this a
        // later version than the one this call created; that is harmless:
        // it exists, and the one skipped is never published and trimmed.
        Ok(self
            .read_key()
            .await?
            .ok_or_else(|| self.not_initialized())?
            .latest_version)
    }

    /// The `vault` commands that delete the transit key, for messages.
    fn delete_commands(&self) -> String {
        format!(
            "`vault write {m}/keys/{k}/config deletion_allowed=true` then `vault delete {m}/keys/{k}`",
            m = self.mount,
            k = self.key
        )
    }

    /// The refusal of `init` on a transit key the store did not create.
    fn foreign_key(
        &self,
        key: &endpoints::TransitKey,
        alg: Algorithm,
        key_type: &str,
        snap: &Snapshot,
    ) -> Error {
        let path = format!("{}/keys/{}", self.mount, self.key);
        let versions = key.versions();
        let shown_versions = match (versions.first(), versions.last()) {
            (Some(a), Some(b)) if a != b => format!("versions {a} to {b}"),
            (Some(a), _) => format!("version {a}"),
            _ => "no versions".to_owned(),
        };
        let unfit = if state::SIGNING_KEY_TYPES.contains(&key.key_type.as_str()) {
            String::new()
        } else {
            format!("; that type cannot sign JWTs: {alg} needs {key_type}")
        };
        let mut reason = format!(
            "the transit key {path} already exists (type {}, {shown_versions}{unfit}) and this store did not create it; init never takes over an existing key, because the store's rotations would later destroy versions that someone else may rely on. Choose a new key name (…/{}/NEW-NAME in the store URI), or, if the key is a leftover nobody uses, delete it ({}) and run init again",
            key.key_type,
            self.mount,
            self.delete_commands()
        );
        if let Some(version) = snap.deleted_version {
            reason.push_str(&format!(
                ". If it is the key of a jwtkit store whose state entry {} was deleted, restore that entry instead: `vault kv undelete -mount={} -versions={version} {}`",
                self.kv_path(),
                self.kv_mount,
                self.state_path
            ));
        }
        Error::invalid_config("key", reason)
    }

    /// Counters of logins, renewals and retried calls since the store was
    /// built.
    pub fn auth_stats(&self) -> VaultAuthStats {
        self.session.stats()
    }

    /// The login method in use: `"token"`, `"approle"`, `"jwt"` or
    /// `"kubernetes"`.
    pub fn auth_method(&self) -> &'static str {
        self.session.auth().method()
    }

    /// `Ok` while the store holds a valid Vault token or can get one now
    /// (it logs in if it has none, at most once per back-off interval
    /// after failures); otherwise the error that keeps it from getting one,
    /// e.g. a destroyed secret id. For health checks: the store recovers
    /// by itself once a login succeeds again.
    pub async fn check_auth(&self) -> Result<()> {
        self.session.check().await
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

    async fn check_access(&self) -> Result<()> {
        self.check_auth().await
    }

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
        let rsa = alg.family() == KeyFamily::Rsa;
        let pss = matches!(alg, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512);
        let path = format!("{}/sign/{}", self.mount, self.key);
        let input = base64::engine::general_purpose::STANDARD.encode(signing_input);
        let data = self
            .session
            .call("sign", &path, |conn| {
                let request = SignRequest {
                    mount: self.mount.clone(),
                    name: self.key.clone(),
                    input: input.clone(),
                    key_version: version,
                    marshaling_algorithm: "jws",
                    hash_algorithm: (alg.family() != KeyFamily::Ed25519)
                        .then(|| hash_algorithm(alg)),
                    signature_algorithm: rsa.then_some(if pss { "pss" } else { "pkcs1v15" }),
                    // RFC 7518 §3.5: the salt is as long as the hash.
                    salt_length: pss.then_some("hash"),
                };
                async move { vaultrs::api::exec_with_result(&conn, request).await }
            })
            .await?;
        let text = data.signature.as_str();
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

    /// Creates the transit key and writes the first ledger. The store
    /// never takes over a transit key it did not create (rotations would
    /// later trim, i.e. destroy, versions someone else relies on), so the
    /// key must not exist yet, with one exception: the key created by an
    /// earlier `init` of this store that stopped before it wrote the ledger
    /// (a crash, a lost connection). That `init` first wrote an
    /// `{"init": …}` marker into the state entry, and every version of the
    /// key it created is younger than the marker, by Vault's own clock; a
    /// key with an older version was there before and is refused.
    async fn init_remote(
        &self,
        snap: &Snapshot,
        alg: Algorithm,
        policy: &RotationPolicy,
        now: UnixTime,
    ) -> Result<RotationReport> {
        let (key_type, create_type) = self.key_type(alg)?;
        let already = || Error::AlreadyInitialized {
            backend: BACKEND,
            location: self.location(),
        };
        if snap.ledger.is_some() {
            return Err(already());
        }
        let existing = self.read_key().await?;
        let (started, cas) = match (snap.init_started, &existing) {
            // An init began here before: resume it.
            (Some(started), _) => (started, snap.cas),
            (None, Some(key)) => return Err(self.foreign_key(key, alg, key_type, snap)),
            (None, None) => match self.write_init_marker(alg, key_type, snap.cas).await? {
                Some((version, started)) => (started, version),
                None => {
                    // Another process wrote first: it initialized the store,
                    // or is initializing it, which this init then joins
                    // (the second ledger write loses the check-and-set).
                    let fresh = self.read_state().await?;
                    match (&fresh.ledger, fresh.init_started) {
                        (Some(_), _) => return Err(already()),
                        (None, Some(started)) => (started, fresh.cas),
                        (None, None) => {
                            return Err(Error::Backend {
                                backend: BACKEND,
                                source: format!(
                                "the state entry {} changed while this init began; run init again",
                                self.kv_path()
                            )
                                .into(),
                                retryable: true,
                            })
                        }
                    }
                }
            },
        };
        let path = format!("{}/keys/{}", self.mount, self.key);
        if existing.is_none() {
            // Creating a key that exists (a racing init created it) changes
            // nothing; whose it is is checked below.
            self.session
                .call("create key", &path, |conn| async move {
                    let mut options = CreateKeyRequest::builder();
                    options.key_type(create_type).exportable(false);
                    vaultrs::transit::key::create(&conn, &self.mount, &self.key, Some(&mut options))
                        .await
                })
                .await?;
        }
        let key = self
            .read_key()
            .await?
            .ok_or_else(|| self.not_initialized())?;
        let ours = key
            .creation_times()
            .iter()
            .all(|t| t.is_some_and(|t| t >= started));
        if !ours {
            return Err(self.foreign_key(&key, alg, key_type, snap));
        }
        if key.key_type != key_type {
            return Err(Error::invalid_config(
                "key",
                format!(
                    "the transit key {path} was created with type {} by an earlier `store init` of this store that did not finish, but {alg} needs {key_type}: run init again with an algorithm for {}, or delete the key ({}) and run init again",
                    key.key_type,
                    key.key_type,
                    self.delete_commands()
                ),
            ));
        }
        let active = key.latest_version;
        let pending = self.rotate_transit().await?;
        let (active_kid, pending_kid) = (self.kid(active), self.kid(pending));
        let ledger = Ledger::new(policy.clone(), alg, now, &active_kid, &pending_kid)?;
        if !self.write_ledger(&ledger, cas).await? {
            return Err(already());
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
/// segments), with the login settings, `VAULT_NAMESPACE` and `VAULT_CACERT`
/// from the environment ([`VaultKeyStoreBuilder::env_auth`]).
pub(crate) fn open_uri(_rest: &str, uri: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn KeyStore>> {
    let builder = VaultKeyStore::builder_from_uri(uri)?
        .env_auth()?
        .clock(clock);
    match builder.build() {
        Ok(s) => Ok(Arc::new(s)),
        Err(Error::InvalidConfig { reason, .. }) => Err(Error::invalid_uri(uri, reason)),
        Err(e) => Err(e),
    }
}
