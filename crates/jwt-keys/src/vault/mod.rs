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
//! store.init(Algorithm::ES256, &RotationPolicy::default(), jwt_core::time::now_unix()).await?;
//! let token = store.sign_token(&serde_json::json!({"sub": "alice"}), None).await?;
//! # Ok(()) }
//! ```
//!
//! The Vault policy, the rotation runbook and rate limits are in
//! `docs/backends/vault.md`.

mod client;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use jwt_core::{Algorithm, Clock, Jwk, Jwks, KeyFamily, SystemClock, VerifyingKey};
use serde::Deserialize;
use serde_json::{json, Value};

pub use self::client::VaultError;
use self::client::{invalid, Http, Reply, BACKEND};
use crate::error::{Error, Result};
use crate::lifecycle::Ledger;
use crate::policy::RotationPolicy;
use crate::state_cache::StateCache;
use crate::store::{KeyInfo, KeyRecord, KeyState, KeyStore, RotationReport};

/// A token that never shows in `Debug` output.
#[derive(Clone, Default)]
struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<none>"
        } else {
            "<redacted>"
        })
    }
}

/// Builds a [`VaultKeyStore`]; [`build`](Self::build) refuses contradictory settings.
#[derive(Debug, Clone)]
pub struct VaultKeyStoreBuilder {
    mount: String,
    key: String,
    address: Option<String>,
    token: Token,
    namespace: Option<String>,
    ca_pem: Option<Vec<u8>>,
    timeout: Duration,
    kv_mount: String,
    state_path: Option<String>,
    rsa_bits: u32,
    state_ttl: Duration,
    clock: Option<Arc<dyn Clock>>,
}

/// A [`KeyStore`] whose private keys live in a Vault/OpenBao transit engine.
/// The module docs describe the `kid` and the state scheme.
pub struct VaultKeyStore {
    mount: String,
    key: String,
    address: String,
    kv_mount: String,
    state_path: String,
    rsa_bits: u32,
    state_ttl: Duration,
    http: Http,
    clock: Arc<dyn Clock>,
    state: StateCache<Snapshot>,
    /// Public keys by version: read once, kept forever.
    public_keys: RwLock<HashMap<u64, VerifyingKey>>,
    write: tokio::sync::Mutex<()>,
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

#[derive(Debug)]
struct Snapshot {
    ledger: Option<Ledger>,
    /// The KV version of the ledger (0: none yet), for check-and-set.
    cas: u64,
}

#[derive(Deserialize)]
struct TransitKey {
    #[serde(rename = "type")]
    key_type: String,
    latest_version: u64,
    #[serde(default)]
    keys: HashMap<String, TransitVersion>,
}

#[derive(Deserialize)]
struct TransitVersion {
    #[serde(default)]
    public_key: String,
}

impl VaultKeyStore {
    /// A builder for the key `key` of the transit engine at `mount`
    /// (e.g. `"transit"`).
    pub fn builder(mount: impl Into<String>, key: impl Into<String>) -> VaultKeyStoreBuilder {
        VaultKeyStoreBuilder {
            mount: mount.into(),
            key: key.into(),
            address: None,
            token: Token::default(),
            namespace: None,
            ca_pem: None,
            timeout: Duration::from_secs(5),
            kv_mount: "secret".into(),
            state_path: None,
            rsa_bits: 2048,
            state_ttl: Duration::from_secs(30),
            clock: None,
        }
    }

    /// The store with `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE` and
    /// `VAULT_CACERT` from the environment; a missing variable is an
    /// [`Error::Env`] naming it.
    pub fn from_env(mount: impl Into<String>, key: impl Into<String>) -> Result<VaultKeyStore> {
        let addr = std::env::var("VAULT_ADDR").map_err(|_| Error::Env {
            var: "VAULT_ADDR".into(),
            reason: "not set; set it to the Vault address, e.g. https://vault.internal:8200".into(),
        })?;
        VaultKeyStore::builder(mount, key)
            .address(addr)
            .env_auth()?
            .build()
    }

    fn location(&self) -> String {
        format!("{}/{}/{}", self.address, self.mount, self.key)
    }

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

    fn kv_path(&self) -> String {
        format!("{}/data/{}", self.kv_mount, self.state_path)
    }

    async fn snapshot(&self, allow_stale: bool) -> Result<Arc<Snapshot>> {
        self.state
            .get_or_load(
                self.state_ttl,
                allow_stale,
                "Vault",
                || self.location(),
                || self.load(),
            )
            .await
    }

    fn invalidate(&self) {
        self.state.invalidate();
    }

    async fn load(&self) -> Result<Snapshot> {
        let path = self.kv_path();
        let (ledger, cas) = match self.http.call("read state", &path, None).await? {
            Reply::NotFound => (None, 0),
            Reply::Ok(v) => {
                let cas = v["data"]["metadata"]["version"].as_u64().unwrap_or(0);
                let entry = &v["data"]["data"]["ledger"];
                if entry.is_null() {
                    // Deleted (KV v2 keeps the version number).
                    (None, cas)
                } else {
                    let ledger: Ledger = serde_json::from_value(entry.clone()).map_err(|e| {
                        invalid(
                            "read state",
                            &path,
                            format!("the jwtkit ledger is invalid: {e}"),
                        )
                    })?;
                    (Some(ledger), cas)
                }
            }
        };
        if let Some(l) = &ledger {
            let missing = l
                .keys
                .iter()
                .filter(|r| r.state != KeyState::Retired)
                .filter_map(|r| self.version_of(&r.kid))
                .any(|v| {
                    !self
                        .public_keys
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .contains_key(&v)
                });
            if missing {
                self.read_public_keys(l).await?;
            }
        }
        Ok(Snapshot { ledger, cas })
    }

    async fn read_key(&self) -> Result<Option<TransitKey>> {
        let path = format!("{}/keys/{}", self.mount, self.key);
        match self.http.call("read key", &path, None).await? {
            Reply::NotFound => Ok(None),
            Reply::Ok(v) => serde_json::from_value(v["data"].clone())
                .map(Some)
                .map_err(|e| invalid("read key", &path, format!("unexpected answer: {e}"))),
        }
    }

    /// Reads the key and caches the public key of every version the ledger names.
    async fn read_public_keys(&self, ledger: &Ledger) -> Result<()> {
        let key = self
            .read_key()
            .await?
            .ok_or_else(|| self.not_initialized())?;
        let mut cache = HashMap::new();
        for r in &ledger.keys {
            let Some(v) = self.version_of(&r.kid) else {
                continue;
            };
            if r.state == KeyState::Retired {
                continue;
            }
            let Some(tv) = key.keys.get(&v.to_string()) else {
                continue;
            };
            cache.insert(
                v,
                self.parse_public(&key.key_type, &tv.public_key, &r.kid, r.alg)?,
            );
        }
        self.public_keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(cache);
        Ok(())
    }

    fn parse_public(
        &self,
        key_type: &str,
        public: &str,
        kid: &str,
        alg: Algorithm,
    ) -> Result<VerifyingKey> {
        let parsed = if key_type == "ed25519" {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(public)
                .map_err(|e| {
                    invalid(
                        "read key",
                        kid,
                        format!("the ed25519 public key is not base64: {e}"),
                    )
                })?;
            VerifyingKey::from_jwk(&Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(jwt_core::b64::encode(&raw)),
                ..Jwk::default()
            })
        } else {
            VerifyingKey::from_pem(public.as_bytes())
        };
        parsed
            .and_then(|k| k.with_kid(kid.to_owned()).with_algorithm(alg))
            .map_err(|e| {
                invalid(
                    "read key",
                    kid,
                    format!("the public key does not fit {alg}: {e}"),
                )
            })
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
                return Err(Error::policy(format!(
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

    /// Writes `ledger` if the KV entry is still at version `cas`; `Ok(false)`
    /// when someone else wrote first.
    async fn write_ledger(&self, ledger: &Ledger, cas: u64) -> Result<bool> {
        let body = json!({"options": {"cas": cas}, "data": {"ledger": ledger}});
        match self
            .http
            .call("write state", &self.kv_path(), Some(body))
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::Backend { source, .. })
                if source.downcast_ref::<VaultError>().is_some_and(|v| {
                    v.status() == Some(400)
                        && v.messages().iter().any(|m| m.contains("check-and-set"))
                }) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Raises `min_decryption_version` and trims versions below the oldest
    /// version still in use, destroying retired private keys.
    async fn trim(&self, ledger: &Ledger) -> Result<()> {
        let Some(min_live) = ledger
            .keys
            .iter()
            .filter(|r| r.state != KeyState::Retired)
            .filter_map(|r| self.version_of(&r.kid))
            .min()
        else {
            return Ok(());
        };
        let base = format!("{}/keys/{}", self.mount, self.key);
        self.http
            .call(
                "configure key",
                &format!("{base}/config"),
                Some(
                    json!({"min_decryption_version": min_live, "min_encryption_version": min_live}),
                ),
            )
            .await?;
        self.http
            .call(
                "trim key",
                &format!("{base}/trim"),
                Some(json!({"min_available_version": min_live})),
            )
            .await?;
        Ok(())
    }

    async fn rotate_locked(&self, now: i64, if_active: Option<&str>) -> Result<RotationReport> {
        for _ in 0..5 {
            self.invalidate();
            let snap = self.snapshot(false).await?;
            let ledger = snap.ledger.as_ref().ok_or_else(|| self.not_initialized())?;
            let active = ledger.active().map(|r| r.kid.clone()).unwrap_or_default();
            if let Some(expected) = if_active {
                if expected != active {
                    return Err(Error::Conflict {
                        expected: expected.to_owned(),
                        actual: active,
                    });
                }
            }
            let alg = ledger.next_algorithm();
            let version = self.rotate_transit().await?;
            let mut next = ledger.clone();
            let report = next.rotate(now, if_active, &self.kid(version), alg)?;
            if self.write_ledger(&next, snap.cas).await? {
                self.invalidate();
                if !report.retired.is_empty() {
                    self.trim(&next).await?;
                }
                crate::memory::log_rotation(BACKEND, &report);
                return Ok(report);
            }
            // Another process wrote first; version `version` stays unused.
            if let Some(expected) = if_active {
                self.invalidate();
                let snap = self.snapshot(false).await?;
                let actual = snap
                    .ledger
                    .as_ref()
                    .and_then(|l| l.active())
                    .map(|r| r.kid.clone())
                    .unwrap_or_default();
                return Err(Error::Conflict {
                    expected: expected.to_owned(),
                    actual,
                });
            }
        }
        Err(Error::Backend {
            backend: BACKEND,
            source: "the state entry kept changing under five rotation attempts; another process is rotating in a loop".into(),
            retryable: true,
        })
    }
}

impl VaultKeyStoreBuilder {
    /// The Vault address, e.g. `https://vault.internal:8200`.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The Vault token (never shown in `Debug`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Token(token.into());
        self
    }

    /// The Vault Enterprise / OpenBao namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// A PEM bundle of CA certificates to trust for TLS, in addition to the
    /// system's.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Token from `VAULT_TOKEN` (required: an [`Error::Env`] naming it when
    /// missing), namespace from `VAULT_NAMESPACE` and CA from the file named
    /// by `VAULT_CACERT`, when set.
    pub fn env_auth(mut self) -> Result<Self> {
        let token = std::env::var("VAULT_TOKEN").map_err(|_| Error::Env {
            var: "VAULT_TOKEN".into(),
            reason: "not set; the vault store authenticates with a token (see docs/backends/vault.md for the policy it needs)".into(),
        })?;
        self = self.token(token);
        if let Ok(ns) = std::env::var("VAULT_NAMESPACE") {
            if !ns.is_empty() {
                self = self.namespace(ns);
            }
        }
        if let Ok(path) = std::env::var("VAULT_CACERT") {
            if !path.is_empty() {
                let pem = std::fs::read(&path).map_err(|e| Error::Env {
                    var: "VAULT_CACERT".into(),
                    reason: format!("cannot read {path}: {e}"),
                })?;
                self = self.ca_cert_pem(pem);
            }
        }
        Ok(self)
    }

    /// The bound on every Vault call (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The KV v2 mount holding the lifecycle state (default `secret`).
    pub fn kv_mount(mut self, mount: impl Into<String>) -> Self {
        self.kv_mount = mount.into();
        self
    }

    /// The path of the state entry in that mount (default `jwtkit/MOUNT/KEY`).
    pub fn state_path(mut self, path: impl Into<String>) -> Self {
        self.state_path = Some(path.into());
        self
    }

    /// The modulus size of new RSA keys: 2048, 3072 or 4096 (default 2048).
    pub fn rsa_key_bits(mut self, bits: u32) -> Self {
        self.rsa_bits = bits;
        self
    }

    /// How long the state read from Vault is reused (default 30 s): the
    /// time other processes take to notice a rotation.
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// The clock that decides when a retiring key stops verifying.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the settings and builds the store (no call is made yet).
    pub fn build(self) -> Result<VaultKeyStore> {
        let address = self.address.clone().ok_or_else(|| {
            Error::policy("no Vault address: call address() or set VAULT_ADDR and use from_env")
        })?;
        let parsed = reqwest::Url::parse(&address)
            .map_err(|e| Error::policy(format!("Vault address `{address}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::policy(format!(
                "Vault address `{address}` must be http:// or https://"
            )));
        }
        if self.ca_pem.is_some() && parsed.scheme() == "http" {
            return Err(Error::policy(
                "a CA certificate was given but the Vault address is http://; use https:// (vault+https://)",
            ));
        }
        if self.token.0.is_empty() {
            return Err(Error::policy(
                "no Vault token: call token() or env_auth() (VAULT_TOKEN)",
            ));
        }
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s.split('/').all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                })
        };
        if !segment_ok(&self.mount) || !segment_ok(&self.key) || self.key.contains('/') {
            return Err(Error::policy(format!(
                "transit mount `{}` and key `{}`: use letters, digits, `-`, `_`, `.` (the mount may contain `/`)",
                self.mount, self.key
            )));
        }
        if ![2048, 3072, 4096].contains(&self.rsa_bits) {
            return Err(Error::policy(format!(
                "rsa_key_bits {} is not a transit RSA key type; use 2048, 3072 or 4096",
                self.rsa_bits
            )));
        }
        if self.timeout.is_zero() {
            return Err(Error::policy("timeout must be above zero"));
        }
        let http = Http::new(
            &address,
            self.token.0.clone(),
            self.namespace.clone(),
            self.ca_pem.as_deref(),
            self.timeout,
        )?;
        let state_path = self
            .state_path
            .clone()
            .unwrap_or_else(|| format!("jwtkit/{}/{}", self.mount, self.key));
        Ok(VaultKeyStore {
            address: address.trim_end_matches('/').to_owned(),
            mount: self.mount,
            key: self.key,
            kv_mount: self.kv_mount,
            state_path,
            rsa_bits: self.rsa_bits,
            state_ttl: self.state_ttl,
            http,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            state: StateCache::new(),
            public_keys: RwLock::new(HashMap::new()),
            write: tokio::sync::Mutex::new(()),
        })
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
impl KeyStore for VaultKeyStore {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn active(&self) -> Result<KeyInfo> {
        let snap = self.snapshot(true).await?;
        let a = snap
            .ledger
            .as_ref()
            .and_then(|l| l.active())
            .ok_or_else(|| self.not_initialized())?;
        Ok(KeyInfo {
            kid: a.kid.clone(),
            alg: a.alg,
        })
    }

    async fn sign(&self, kid: &str, signing_input: &[u8]) -> Result<Vec<u8>> {
        let snap = self.snapshot(true).await?;
        let ledger = snap.ledger.as_ref().ok_or_else(|| self.not_initialized())?;
        let record = ledger.get(kid).ok_or_else(|| Error::UnknownKey {
            kid: kid.to_owned(),
        })?;
        match record.state_at(self.clock.now()) {
            KeyState::Active => {}
            state => {
                return Err(Error::NotActive {
                    kid: kid.to_owned(),
                    state,
                })
            }
        }
        let alg = record.alg;
        let version = self.version_of(kid).ok_or_else(|| Error::UnknownKey {
            kid: kid.to_owned(),
        })?;
        let public = self
            .public_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&version)
            .cloned()
            .ok_or_else(|| Error::UnknownKey {
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
        // Never hand out a signature verifiers would refuse (a wrong salt
        // length, a server that ignored key_version).
        public.verify_raw(alg, signing_input, &sig).map_err(|e| {
            invalid(
                "sign",
                &path,
                format!("the {alg} signature does not verify with version {version}'s public key ({e}); refusing to use it"),
            )
        })?;
        Ok(sig)
    }

    async fn verification_keys(&self) -> Result<Jwks> {
        let now = self.clock.now();
        let snap = self.snapshot(true).await?;
        let Some(ledger) = &snap.ledger else {
            return Ok(Jwks { keys: Vec::new() });
        };
        let cache = self.public_keys.read().unwrap_or_else(|e| e.into_inner());
        Ok(Jwks {
            keys: ledger
                .keys
                .iter()
                .filter(|r| r.state_at(now).is_published())
                .filter_map(|r| self.version_of(&r.kid).and_then(|v| cache.get(&v)))
                .filter_map(|k| k.to_jwk_public())
                .collect(),
        })
    }

    async fn list(&self) -> Result<Vec<KeyRecord>> {
        let now = self.clock.now();
        let snap = self.snapshot(true).await?;
        Ok(snap
            .ledger
            .as_ref()
            .map(|l| l.list(now))
            .unwrap_or_default())
    }

    async fn policy(&self) -> Result<RotationPolicy> {
        let snap = self.snapshot(true).await?;
        Ok(snap
            .ledger
            .as_ref()
            .map(|l| l.policy.clone())
            .unwrap_or_default())
    }

    async fn init(
        &self,
        alg: Algorithm,
        policy: &RotationPolicy,
        now: i64,
    ) -> Result<RotationReport> {
        let key_type = self.key_type(alg)?;
        let _w = self.write.lock().await;
        self.invalidate();
        let snap = self.snapshot(false).await?;
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
            return Err(Error::policy(format!(
                "the transit key {path} exists with type {} but {alg} needs {key_type}; use another key name",
                existing.key_type
            )));
        }
        let active = existing.latest_version;
        let pending = self.rotate_transit().await?;
        let (active_kid, pending_kid) = (self.kid(active), self.kid(pending));
        let ledger = Ledger::new(policy.clone(), alg, now, &active_kid, &pending_kid)?;
        let written = self.write_ledger(&ledger, snap.cas).await?;
        self.invalidate();
        if !written {
            return Err(Error::AlreadyInitialized {
                backend: BACKEND,
                location: self.location(),
            });
        }
        tracing::info!(store = %self.location(), active = %active_kid, pending = %pending_kid, %alg, "vault key store initialized");
        Ok(RotationReport {
            previous: None,
            active: active_kid,
            pending: pending_kid,
            previous_retire_at: None,
            retired: Vec::new(),
            published_for_secs: None,
        })
    }

    async fn rotate(&self, now: i64, if_active: Option<&str>) -> Result<RotationReport> {
        let _w = self.write.lock().await;
        let result = self.rotate_locked(now, if_active).await;
        self.invalidate();
        result
    }

    async fn retire_expired(&self, now: i64) -> Result<Vec<String>> {
        let _w = self.write.lock().await;
        for _ in 0..5 {
            self.invalidate();
            let snap = self.snapshot(false).await?;
            let mut ledger = snap.ledger.clone().ok_or_else(|| self.not_initialized())?;
            let retired = ledger.retire_expired(now);
            if retired.is_empty() {
                return Ok(retired);
            }
            if self.write_ledger(&ledger, snap.cas).await? {
                self.invalidate();
                self.trim(&ledger).await?;
                for kid in &retired {
                    tracing::info!(store = %self.location(), %kid, "key version retired and trimmed");
                }
                return Ok(retired);
            }
        }
        Err(Error::Backend {
            backend: BACKEND,
            source: "the state entry kept changing under five attempts".into(),
            retryable: true,
        })
    }
}

/// The `vault+http:` and `vault+https:` URI schemes:
/// `vault+https://HOST:PORT/MOUNT/KEY` (the mount may have several
/// segments), with `VAULT_TOKEN`, `VAULT_NAMESPACE` and `VAULT_CACERT` from
/// the environment.
pub(crate) fn open_uri(rest: &str, uri: &str) -> Result<Arc<dyn KeyStore>> {
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
        .env_auth()?;
    match builder.build() {
        Ok(s) => Ok(Arc::new(s)),
        Err(Error::Policy { reason }) => Err(bad(reason)),
        Err(e) => Err(e),
    }
}
