//! Building a [`Pkcs11KeyStore`]: its settings, from code or an RFC 7512
//! URI, all checked in [`build`](Pkcs11KeyStoreBuilder::build). Nothing
//! touches the module before the first call.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jwt_core::{Clock, SystemClock};

use super::pin::Pin;
use super::token::{Selector, Token};
use super::uri::{redact_pin, Pkcs11Uri};
use super::Pkcs11KeyStore;
use crate::error::{Error, Result};
use crate::remote_store::RemoteParts;

/// The longest store name (`object=`, the objects' `CKA_LABEL`).
const MAX_OBJECT_LEN: usize = 128;

/// Builds a [`Pkcs11KeyStore`]; [`build`](Self::build) refuses contradictory
/// settings.
///
/// | setting | default | URI attribute |
/// |---|---|---|
/// | module | — (required) | `module-path` |
/// | token | — (one of them required) | `token`, `serial`, `model`, `manufacturer`, `slot-id`, `slot-description`, `slot-manufacturer` |
/// | object (the store's name) | — (required) | `object` |
/// | [`pin`](Self::pin) | none (only a token with a PIN pad logs in without one) | `pin-source` (a file, read at each login), `pin-value` (warned about) |
/// | [`max_sessions`](Self::max_sessions) | 8 | — |
/// | [`timeout`](Self::timeout) | 30 s | — |
/// | [`rsa_key_bits`](Self::rsa_key_bits) | 2048 | — |
/// | [`state_ttl`](Self::state_ttl) | 30 s | — |
/// | [`lock_wait`](Self::lock_wait) | 30 s | — |
/// | [`lock_lease`](Self::lock_lease) | 120 s | — |
#[derive(Clone)]
pub struct Pkcs11KeyStoreBuilder {
    module: PathBuf,
    selector: Selector,
    object: String,
    pin: Option<Pin>,
    max_sessions: usize,
    timeout: Duration,
    rsa_bits: u32,
    state_ttl: Duration,
    lock_wait: Duration,
    lock_lease: Duration,
    clock: Option<Arc<dyn Clock>>,
}

/// Never shows the PIN ([`Pin`] redacts it).
impl std::fmt::Debug for Pkcs11KeyStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeyStoreBuilder")
            .field("module", &self.module)
            .field("token", &self.selector.describe())
            .field("object", &self.object)
            .field("pin", &self.pin)
            .field("max_sessions", &self.max_sessions)
            .field("timeout", &self.timeout)
            .field("rsa_bits", &self.rsa_bits)
            .field("state_ttl", &self.state_ttl)
            .field("lock_wait", &self.lock_wait)
            .field("lock_lease", &self.lock_lease)
            .finish_non_exhaustive()
    }
}

impl Pkcs11KeyStore {
    /// A builder for the store named `object` on the token labelled `token`
    /// of the PKCS#11 module `module` (the shared library of the HSM's
    /// client, e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub fn builder(
        module: impl Into<PathBuf>,
        token: impl Into<String>,
        object: impl Into<String>,
    ) -> Pkcs11KeyStoreBuilder {
        Pkcs11KeyStoreBuilder {
            module: module.into(),
            selector: Selector {
                token: Some(token.into()),
                ..Selector::default()
            },
            object: object.into(),
            pin: None,
            max_sessions: 8,
            timeout: Duration::from_secs(30),
            rsa_bits: 2048,
            state_ttl: Duration::from_secs(30),
            lock_wait: Duration::from_secs(30),
            lock_lease: Duration::from_secs(120),
            clock: None,
        }
    }

    /// A builder for the store an RFC 7512 URI names, e.g.
    /// `pkcs11:token=jwtkit;object=signing?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/hsm-pin`
    /// (see the module docs for the attributes). A `pin-value` is accepted
    /// with a warning. The error never quotes the PIN.
    pub fn builder_from_uri(uri: &str) -> Result<Pkcs11KeyStoreBuilder> {
        let bad = |reason: String| Error::invalid_uri(&redact_pin(uri), reason);
        let u = Pkcs11Uri::parse(uri).map_err(bad)?;
        let module = u.module_path.clone().ok_or_else(|| {
            bad("no module-path; add ?module-path=/path/to/the/pkcs11-module.so (e.g. /usr/lib/softhsm/libsofthsm2.so for SoftHSM2)".into())
        })?;
        let object = u.object.clone().ok_or_else(|| {
            bad("no object; add ;object=NAME, the label of the store's objects (e.g. object=jwt-signing)".into())
        })?;
        if u.pin_in_uri {
            tracing::warn!(
                store = %redact_pin(uri),
                "the PKCS#11 URI holds the PIN (pin-value): it is visible in process listings, shell history and configuration files; use pin-source=file:/path/to/pin-file instead"
            );
        }
        let mut b = Pkcs11KeyStore::builder(module, String::new(), object);
        b.selector = Selector {
            token: u.token,
            manufacturer: u.manufacturer,
            model: u.model,
            serial: u.serial,
            slot_id: u.slot_id,
            slot_description: u.slot_description,
            slot_manufacturer: u.slot_manufacturer,
        };
        b.pin = u.pin;
        Ok(b)
    }
}

impl Pkcs11KeyStoreBuilder {
    /// The user PIN: [`Pin::from_file`] (read at each login) or
    /// [`Pin::new`]. Never shown in `Debug`, errors or logs.
    pub fn pin(mut self, pin: Pin) -> Self {
        self.pin = Some(pin);
        self
    }

    /// Chooses the token by serial number too (when labels repeat).
    pub fn token_serial(mut self, serial: impl Into<String>) -> Self {
        self.selector.serial = Some(serial.into());
        self
    }

    /// Chooses the token by slot number too.
    pub fn slot_id(mut self, slot: u64) -> Self {
        self.selector.slot_id = Some(slot);
        self
    }

    /// The most sessions the store opens on the token at once (default 8):
    /// as many signatures run in parallel. HSMs limit sessions per
    /// application or per partition (see `docs/backends/pkcs11.md`).
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// The bound on every call into the module, a wait for a free session
    /// included (default 30 s; RSA key generation on an HSM takes seconds).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The modulus size of new RSA keys: 2048, 3072 or 4096 (default 2048).
    pub fn rsa_key_bits(mut self, bits: u32) -> Self {
        self.rsa_bits = bits;
        self
    }

    /// How long the state read from the token is reused (default 30 s):
    /// the time other processes take to notice a rotation.
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// How long a write (init, rotate, retire) waits for another process's
    /// write to the same store to finish (default 30 s).
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// How long a write lock taken by a process on another host is honoured
    /// if that process stops answering (default 120 s, at least 10 s). A
    /// holder on this host is known to be gone as soon as its process ends.
    pub fn lock_lease(mut self, lease: Duration) -> Self {
        self.lock_lease = lease;
        self
    }

    /// The clock that decides key states and records lifecycle times.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the settings and builds the store. No call into the module is
    /// made yet: the first call loads it, finds the token and logs in.
    pub fn build(self) -> Result<Pkcs11KeyStore> {
        let bad = Error::invalid_config;
        if !self.module.is_absolute() {
            return Err(bad(
                "module_path",
                format!(
                    "module path `{}` is not absolute; give the PKCS#11 module's full path, e.g. /usr/lib/softhsm/libsofthsm2.so",
                    self.module.display()
                ),
            ));
        }
        let mut selector = self.selector.clone();
        if selector.token.as_deref().is_some_and(str::is_empty) {
            selector.token = None;
        }
        if selector.is_empty() {
            return Err(bad(
                "token",
                "no token: name the token by its label (token=LABEL in the URI), and by serial= or slot-id= when labels repeat".into(),
            ));
        }
        if self.object.is_empty()
            || self.object.len() > MAX_OBJECT_LEN
            || self.object.chars().any(char::is_control)
        {
            return Err(bad(
                "object",
                format!(
                    "the store name (object=) must be 1 to {MAX_OBJECT_LEN} bytes without control characters; it is the CKA_LABEL of every object of the store"
                ),
            ));
        }
        if !(1..=256).contains(&self.max_sessions) {
            return Err(bad(
                "max_sessions",
                format!(
                    "max_sessions {} is not between 1 and 256",
                    self.max_sessions
                ),
            ));
        }
        if ![2048, 3072, 4096].contains(&self.rsa_bits) {
            return Err(bad(
                "rsa_key_bits",
                format!("rsa_key_bits {} is not 2048, 3072 or 4096", self.rsa_bits),
            ));
        }
        if self.timeout.is_zero() || self.lock_wait.is_zero() {
            return Err(bad(
                "timeout",
                "timeout and lock_wait must be above zero".into(),
            ));
        }
        if self.lock_lease < Duration::from_secs(10) {
            return Err(bad(
                "lock_lease",
                "lock_lease must be at least 10 s: longer than any write, or a slow writer's lock is taken from it".into(),
            ));
        }
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        Ok(Pkcs11KeyStore {
            token: Arc::new(Token::new(
                self.module,
                selector,
                self.pin,
                self.max_sessions,
                self.timeout,
            )),
            object: self.object,
            rsa_bits: self.rsa_bits,
            lock_wait: self.lock_wait,
            lock_lease: self.lock_lease,
            parts: RemoteParts::new(clock, self.state_ttl),
            public_keys: Arc::new(RwLock::new(HashMap::new())),
            held: Mutex::new(None),
        })
    }
}
