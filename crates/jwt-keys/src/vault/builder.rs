//! Building a [`VaultKeyStore`]: its settings, from code or the environment,
//! all checked in [`build`](VaultKeyStoreBuilder::build).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jwt_core::{Clock, SystemClock};

use super::client::Http;
use super::VaultKeyStore;
use crate::error::{Error, Result};
use crate::remote_store::RemoteParts;

/// A token that never shows in `Debug` output.
#[derive(Clone, Default)]
pub(super) struct Token(String);

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
            Error::invalid_config(
                "address",
                "no Vault address: call address() or set VAULT_ADDR and use from_env",
            )
        })?;
        let parsed = reqwest::Url::parse(&address).map_err(|e| {
            Error::invalid_config(
                "address",
                format!("Vault address `{address}` is not a URL: {e}"),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::invalid_config(
                "address",
                format!("Vault address `{address}` must be http:// or https://"),
            ));
        }
        if self.ca_pem.is_some() && parsed.scheme() == "http" {
            return Err(Error::invalid_config(
                "ca_cert_pem",
                "a CA certificate was given but the Vault address is http://; use https:// (vault+https://)",
            ));
        }
        if self.token.0.is_empty() {
            return Err(Error::invalid_config(
                "token",
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
            return Err(Error::invalid_config(
                "mount",
                format!(
                "transit mount `{}` and key `{}`: use letters, digits, `-`, `_`, `.` (the mount may contain `/`)",
                self.mount, self.key
            )));
        }
        if ![2048, 3072, 4096].contains(&self.rsa_bits) {
            return Err(Error::invalid_config(
                "rsa_key_bits",
                format!(
                    "rsa_key_bits {} is not a transit RSA key type; use 2048, 3072 or 4096",
                    self.rsa_bits
                ),
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid_config(
                "timeout",
                "timeout must be above zero",
            ));
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
        // One clock for the lifecycle and the state cache's TTL.
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        Ok(VaultKeyStore {
            address: address.trim_end_matches('/').to_owned(),
            mount: self.mount,
            key: self.key,
            kv_mount: self.kv_mount,
            state_path,
            rsa_bits: self.rsa_bits,
            http,
            parts: RemoteParts::new(clock, self.state_ttl),
            public_keys: RwLock::new(HashMap::new()),
        })
    }
}
