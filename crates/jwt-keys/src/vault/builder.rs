//! Building a [`VaultKeyStore`]: its settings, from code or the environment,
//! all checked in [`build`](VaultKeyStoreBuilder::build).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jwt_core::{Clock, SystemClock};

use super::auth::VaultAuth;
use super::client::{header_safe, Transport};
use super::session::Session;
use super::VaultKeyStore;
use crate::error::{Error, Result};
use crate::remote_store::RemoteParts;

/// Builds a [`VaultKeyStore`]; [`build`](Self::build) refuses contradictory settings.
///
/// | setting | default | environment ([`env_auth`](Self::env_auth), [`VaultKeyStore::from_env`]) |
/// |---|---|---|
/// | [`address`](Self::address) | — (required) | `VAULT_ADDR` (`from_env` only) |
/// | [`auth`](Self::auth) / [`token`](Self::token) | — (required) | `VAULT_AUTH_METHOD` and its variables ([`VaultAuth::from_env`]) |
/// | [`namespace`](Self::namespace) | none | `VAULT_NAMESPACE` |
/// | [`ca_cert_pem`](Self::ca_cert_pem) | the system's trust store | `VAULT_CACERT` (a PEM file) |
/// | [`timeout`](Self::timeout) | 5 s | — |
/// | [`kv_mount`](Self::kv_mount) | `secret` | — |
/// | [`state_path`](Self::state_path) | `jwtkit/MOUNT/KEY` | — |
/// | [`rsa_key_bits`](Self::rsa_key_bits) | 2048 | — |
/// | [`state_ttl`](Self::state_ttl) | 30 s | — |
///
/// `VAULT_SKIP_VERIFY` is never read: TLS is always verified; give the CA
/// that signed Vault's certificate instead.
#[derive(Clone)]
pub struct VaultKeyStoreBuilder {
    mount: String,
    key: String,
    address: Option<String>,
    auth: Option<VaultAuth>,
    namespace: Option<String>,
    ca_pem: Option<Vec<u8>>,
    timeout: Duration,
    kv_mount: String,
    state_path: Option<String>,
    rsa_bits: u32,
    state_ttl: Duration,
    clock: Option<Arc<dyn Clock>>,
}

/// Never shows a password written into the address (`***`), the token or
/// the secret id ([`VaultAuth`] redacts them), or the CA bundle's bytes.
impl std::fmt::Debug for VaultKeyStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultKeyStoreBuilder")
            .field("mount", &self.mount)
            .field("key", &self.key)
            .field(
                "address",
                &self.address.as_deref().map(crate::uri::redact_userinfo),
            )
            .field("auth", &self.auth)
            .field("namespace", &self.namespace)
            .field(
                "ca_pem",
                &self.ca_pem.as_ref().map(|p| format!("<{} bytes>", p.len())),
            )
            .field("timeout", &self.timeout)
            .field("kv_mount", &self.kv_mount)
            .field("state_path", &self.state_path)
            .field("rsa_bits", &self.rsa_bits)
            .field("state_ttl", &self.state_ttl)
            .finish_non_exhaustive()
    }
}

/// A mount or path: `/`-separated segments of letters, digits, `-`, `_`, `.`.
pub(super) fn path_ok(s: &str) -> bool {
    !s.is_empty()
        && s.split('/').all(|p| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

/// Parses and checks a Vault address before `vaultrs` sees it (its own
/// parsing panics). Every message quotes the address with any user name and
/// password replaced by `***`.
fn check_address(address: &str) -> Result<reqwest_vault::Url> {
    let shown = crate::uri::redact_userinfo(address);
    let bad = |reason: String| Error::invalid_config("address", reason);
    let parsed = reqwest_vault::Url::parse(address)
        .map_err(|e| bad(format!("Vault address `{shown}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!(
            "Vault address `{shown}` must be http:// or https://"
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!("Vault address `{shown}` has no host")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(format!(
            "the Vault address `{shown}` holds a user name or password; remove it (the store authenticates with a token or a login method, never with credentials in the address)"
        )));
    }
    // The Vault token is sent with every request: over plain http it would
    // cross the network readable by anyone on the path.
    if parsed.scheme() == "http" && !crate::remote::is_loopback_host(parsed.host_str()) {
        return Err(bad(format!(
            "Vault address `{shown}` is plain http to another machine: the Vault token would \
             cross the network in clear text; use https:// (VAULT_CACERT names a private CA's \
             certificate), or http only to a loopback address (127.0.0.1, [::1], localhost: a \
             dev server, or a Vault Agent on this machine)"
        )));
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad(format!(
            "Vault address `{shown}` has a path, query or fragment; give scheme, host and port only (Vault's API lives at /v1 of its host)"
        )));
    }
    Ok(parsed)
}

impl VaultKeyStore {
    /// A builder for the key `key` of the transit engine at `mount`
    /// (e.g. `"transit"`).
    pub fn builder(mount: impl Into<String>, key: impl Into<String>) -> VaultKeyStoreBuilder {
        VaultKeyStoreBuilder {
            mount: mount.into(),
            key: key.into(),
            address: None,
            auth: None,
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

    /// A builder for the store a `vault+http(s)://HOST:PORT/MOUNT/KEY` URI
    /// names (address, mount and key set; nothing read from the
    /// environment). For `jwtkit serve`'s config file, which gives the
    /// login settings itself.
    pub fn builder_from_uri(uri: &str) -> Result<VaultKeyStoreBuilder> {
        let bad = |reason: String| Error::invalid_uri(uri, reason);
        let lower = uri.to_ascii_lowercase();
        let (scheme, rest) = if lower.starts_with("vault+https:") {
            ("https", &uri["vault+https:".len()..])
        } else if lower.starts_with("vault+http:") {
            ("http", &uri["vault+http:".len()..])
        } else {
            return Err(bad(
                "not a Vault store URI; write vault+https://HOST:PORT/MOUNT/KEY".into(),
            ));
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
        // Checked now, so that a bad address is reported as the URI's fault
        // before any missing login setting.
        let address = format!("{scheme}://{host}");
        check_address(&address).map_err(|e| match e {
            Error::InvalidConfig { reason, .. } => bad(reason),
            other => other,
        })?;
        Ok(VaultKeyStore::builder(mount, key).address(address))
    }

    /// The store with `VAULT_ADDR`, the login settings
    /// ([`VaultAuth::from_env`]: `VAULT_AUTH_METHOD`, `VAULT_TOKEN`, …),
    /// `VAULT_NAMESPACE` and `VAULT_CACERT` from the environment; a missing
    /// variable is an [`Error::Env`] naming it.
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

/// The largest CA bundle read from `VAULT_CACERT`: far more than any
/// bundle of CA certificates.
const MAX_CA_FILE_BYTES: u64 = 4 << 20;

/// Reads the PEM file `VAULT_CACERT` names: a regular file only (a FIFO
/// would block, a device like /dev/zero never end), at most
/// [`MAX_CA_FILE_BYTES`]. Not a secret, so its owner and mode are not
/// checked. The error says what is wrong and what to do.
fn read_ca_file(path: &std::path::Path) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read as _;
    let shown = path.display();
    let cannot = |e: std::io::Error| format!("cannot read {shown}: {e}; check the path");
    let regular = |m: &std::fs::Metadata| {
        if m.is_file() {
            Ok(())
        } else {
            Err(format!(
                "{shown} is not a regular file; name the PEM file of the CA that signed Vault's certificate (VAULT_CACERT, or ca-cert in `jwtkit serve`'s [vault] table)"
            ))
        }
    };
    regular(&std::fs::metadata(path).map_err(cannot)?)?;
    let file = std::fs::File::open(path).map_err(cannot)?;
    regular(&file.metadata().map_err(cannot)?)?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(cannot)?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(format!(
            "{shown} is larger than {MAX_CA_FILE_BYTES} bytes, which no CA bundle is; name the PEM file of the CA that signed Vault's certificate (VAULT_CACERT, or ca-cert in `jwtkit serve`'s [vault] table)"
        ));
    }
    Ok(pem)
}

impl VaultKeyStoreBuilder {
    /// The Vault address, e.g. `https://vault.internal:8200`.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// How the store gets its token: a token as is, or a login
    /// ([`VaultAuth`]).
    pub fn auth(mut self, auth: VaultAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// A Vault token used as is: `auth(VaultAuth::token(token))` (never
    /// shown in `Debug`).
    pub fn token(self, token: impl Into<String>) -> Self {
        self.auth(VaultAuth::token(token))
    }

    /// The Vault Enterprise / OpenBao namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// A PEM bundle of the CA certificates that verify Vault's TLS
    /// certificate (as `VAULT_CACERT` for the `vault` CLI: these CAs only,
    /// not the system's). Refused with an `http://` address.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// [`ca_cert_pem`](Self::ca_cert_pem) from a file, read as
    /// `VAULT_CACERT` is: a regular file only (a FIFO would block, a device
    /// never end), at most 4 MiB; an [`Error::InvalidConfig`] (setting
    /// `ca_cert`) says what is wrong.
    pub fn ca_cert_file(self, path: impl AsRef<std::path::Path>) -> Result<Self> {
        let pem = read_ca_file(path.as_ref())
            .map_err(|reason| Error::invalid_config("ca_cert", reason))?;
        Ok(self.ca_cert_pem(pem))
    }

    /// The login settings from the environment ([`VaultAuth::from_env`]:
    /// `VAULT_AUTH_METHOD`, then `VAULT_TOKEN` or the login method's
    /// variables), the namespace from `VAULT_NAMESPACE` and the CA from the
    /// file named by `VAULT_CACERT`, when set. `VAULT_SKIP_VERIFY` is not
    /// honoured.
    pub fn env_auth(mut self) -> Result<Self> {
        self = self.auth(VaultAuth::from_env()?);
        if let Ok(ns) = std::env::var("VAULT_NAMESPACE") {
            if !ns.is_empty() {
                self = self.namespace(ns);
            }
        }
        if let Ok(path) = std::env::var("VAULT_CACERT") {
            if !path.is_empty() {
                let pem =
                    read_ca_file(std::path::Path::new(&path)).map_err(|reason| Error::Env {
                        var: "VAULT_CACERT".into(),
                        reason,
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

    /// Checks the settings and builds the store (no call is made yet: the
    /// first call logs in).
    pub fn build(self) -> Result<VaultKeyStore> {
        let address = self.address.clone().ok_or_else(|| {
            Error::invalid_config(
                "address",
                "no Vault address: call address() or set VAULT_ADDR and use from_env",
            )
        })?;
        let parsed = check_address(&address)?;
        if self.ca_pem.is_some() && parsed.scheme() == "http" {
            return Err(Error::invalid_config(
                "ca_cert_pem",
                "a CA certificate was given but the Vault address is http://; use https:// (vault+https://)",
            ));
        }
        let auth = self.auth.clone().ok_or_else(|| {
            Error::invalid_config(
                "auth",
                "no Vault token or login method: call token(), auth() or env_auth() (VAULT_TOKEN, or VAULT_AUTH_METHOD=approle/jwt/kubernetes)",
            )
        })?;
        auth.check()?;
        if let Some(ns) = &self.namespace {
            if ns.is_empty() || !header_safe(ns) {
                return Err(Error::invalid_config(
                    "namespace",
                    "the Vault namespace (VAULT_NAMESPACE) is empty or holds characters that cannot be sent in an HTTP header",
                ));
            }
        }
        if !path_ok(&self.mount) || !path_ok(&self.key) || self.key.contains('/') {
            return Err(Error::invalid_config(
                "mount",
                format!(
                "transit mount `{}` and key `{}`: use letters, digits, `-`, `_`, `.` (the mount may contain `/`)",
                self.mount, self.key
            )));
        }
        let state_path = self
            .state_path
            .clone()
            .unwrap_or_else(|| format!("jwtkit/{}/{}", self.mount, self.key));
        if !path_ok(&self.kv_mount) || !path_ok(&state_path) {
            return Err(Error::invalid_config(
                "kv_mount",
                format!(
                    "KV mount `{}` and state path `{state_path}`: use letters, digits, `-`, `_`, `.` and `/` between segments",
                    self.kv_mount
                ),
            ));
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
        let transport = Transport::new(
            parsed,
            self.namespace.clone(),
            self.ca_pem.as_deref(),
            self.timeout,
        )?;
        // One clock for the lifecycle and the state cache's TTL.
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        Ok(VaultKeyStore {
            address: address.trim_end_matches('/').to_owned(),
            mount: self.mount,
            key: self.key,
            kv_mount: self.kv_mount,
            state_path,
            rsa_bits: self.rsa_bits,
            session: Arc::new(Session::new(transport, auth)),
            parts: RemoteParts::new(clock, self.state_ttl),
            public_keys: RwLock::new(HashMap::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::read_ca_file;

    /// `VAULT_CACERT` is read like the login files: a FIFO would block the
    /// build, `/dev/zero` fill memory; both are refused before any read.
    #[test]
    fn the_ca_file_must_be_a_regular_file_of_sane_size() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for path in [
            fifo.as_path(),
            std::path::Path::new("/dev/zero"),
            dir.path(),
        ] {
            let err = read_ca_file(path).unwrap_err();
            assert!(
                err.contains("is not a regular file") && err.contains("VAULT_CACERT"),
                "{err}"
            );
        }
        let large = dir.path().join("large.pem");
        std::fs::write(&large, vec![b'a'; (4 << 20) + 1]).unwrap();
        assert!(read_ca_file(&large).unwrap_err().contains("larger than"));
        let missing = read_ca_file(&dir.path().join("missing.pem")).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, "-----BEGIN CERTIFICATE-----\n").unwrap();
        assert_eq!(
            read_ca_file(&good).unwrap(),
            b"-----BEGIN CERTIFICATE-----\n"
        );
    }
}
