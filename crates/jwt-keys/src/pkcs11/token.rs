//! One store's way to its token: the slot found by the URI's attributes, a
//! pool of sessions logged in as the user, and the recovery when the token
//! or the module fails.
//!
//! - **Sessions.** Up to `max_sessions` read-write sessions are open at a
//!   time; an idle one is reused, so that a signature is one `C_SignInit` +
//!   `C_Sign` on a session that is already open and logged in. PKCS#11
//!   sessions must not be used by two threads at once, and each is used by
//!   one blocking thread at a time here (`cryptoki`'s `Session` is `Send`
//!   but not `Sync`).
//! - **Login.** PKCS#11 logs an application in per token, not per session:
//!   the first session logs in with the user PIN (`CKU_USER`), later ones
//!   find themselves logged in. A PIN the token refused is never sent again
//!   (repeated wrong PINs lock the token) until the PIN source changes.
//! - **Blocking calls off the executor.** Every call runs on tokio's
//!   blocking threads, bounded by the store's timeout.
//! - **Recovery.** A failure that says the session, the token or the module
//!   is gone drops the connection: the slot is looked up again (a token that
//!   came back may be in another slot), new sessions are opened and logged
//!   in, and — if the token cannot be found — the module is initialized
//!   again (at most once a second), which is how SoftHSM and several HSM
//!   clients see a token that came back. Reads and signatures are tried a
//!   second time after a reconnection; writes only when the first try never
//!   reached the token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::error::{needs_reconnect, rv_of, Pkcs11Error};
use super::module::{self, Module};
use super::pin::Pin;
use crate::error::{Error, Result};

/// Which token a store uses: every attribute given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    pub(crate) token: Option<String>,
    pub(crate) manufacturer: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) serial: Option<String>,
    pub(crate) slot_id: Option<u64>,
    pub(crate) slot_description: Option<String>,
    pub(crate) slot_manufacturer: Option<String>,
}

impl Selector {
    /// `token=jwtkit;serial=…`, for messages.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut add = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{name}={v}"));
            }
        };
        add("token", &self.token);
        add("manufacturer", &self.manufacturer);
        add("model", &self.model);
        add("serial", &self.serial);
        add("slot-description", &self.slot_description);
        add("slot-manufacturer", &self.slot_manufacturer);
        if let Some(id) = self.slot_id {
            parts.push(format!("slot-id={id}"));
        }
        parts.join(";")
    }

    /// The attributes as a URI path (percent-encoded, RFC 7512).
    pub(crate) fn to_uri_path(&self) -> String {
        fn enc(v: &str) -> String {
            v.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=/".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        }
        let mut parts = Vec::new();
        for (name, v) in [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
            ("slot-description", &self.slot_description),
            ("slot-manufacturer", &self.slot_manufacturer),
        ] {
            if let Some(v) = v {
                parts.push(format!("{name}={}", enc(v)));
            }
        }
        if let Some(id) = self.slot_id {
            parts.push(format!("slot-id={id}"));
        }
        parts.join(";")
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Selector::default()
    }

    fn needs_slot_info(&self) -> bool {
        self.slot_description.is_some() || self.slot_manufacturer.is_some()
    }

    fn matches(&self, ctx: &Pkcs11, slot: Slot, token: &cryptoki::slot::TokenInfo) -> bool {
        // PKCS#11 pads these fields with spaces; `cryptoki` trims them.
        let eq = |want: &Option<String>, have: &str| {
            want.as_deref()
                .is_none_or(|w| w.trim_end() == have.trim_end())
        };
        if !(eq(&self.token, token.label())
            && eq(&self.manufacturer, token.manufacturer_id())
            && eq(&self.model, token.model())
            && eq(&self.serial, token.serial_number())
            && self.slot_id.is_none_or(|id| id == slot.id()))
        {
            return false;
        }
        if self.needs_slot_info() {
            let Ok(info) = ctx.get_slot_info(slot) else {
                return false;
            };
            return eq(&self.slot_description, info.slot_description())
                && eq(&self.slot_manufacturer, info.manufacturer_id());
        }
        true
    }
}

/// The token as found: its slot, at which module epoch, and what it can do.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub(crate) slot: Slot,
    pub(crate) epoch: u64,
    pub(crate) mechanisms: Arc<Vec<MechanismType>>,
    /// Whether the token has a PIN pad (login without a PIN).
    protected_path: bool,
}

impl Conn {
    /// Whether the token offers `mechanism`.
    pub(crate) fn has(&self, mechanism: MechanismType) -> bool {
        self.mechanisms.contains(&mechanism)
    }
}

/// Counters of a store's sessions and recoveries since it was built.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pkcs11Stats {
    /// Sessions opened (`C_OpenSession`).
    pub sessions_opened: u64,
    /// Logins (`C_Login` as the user).
    pub logins: u64,
    /// Times the store dropped its sessions and looked for the token again
    /// after a failure that said the token, the session or the module was gone.
    pub reconnects: u64,
    /// Times this store initialized the module again to find a token that
    /// had disappeared.
    pub module_reinits: u64,
}

#[derive(Default)]
struct Counters {
    sessions_opened: AtomicU64,
    logins: AtomicU64,
    reconnects: AtomicU64,
    module_reinits: AtomicU64,
}

struct Inner {
    conn: Option<Conn>,
    /// Idle sessions and the epoch each was opened in.
    idle: Vec<(Session, u64)>,
    /// Private key handles by CKA_ID (object handles are shared by all
    /// sessions of the application); valid for `conn`'s epoch.
    handles: HashMap<Vec<u8>, ObjectHandle>,
    /// The token was found once: its absence is a failure to recover from,
    /// not a typo.
    seen: bool,
}

/// What an operation run on a session may fail with.
pub(crate) enum OpError {
    /// A PKCS#11 call failed: the function as the store names it, the error.
    Call(&'static str, CkError),
    /// The store's own finding (a corrupt object, a refused template).
    Store(Error),
}

impl From<Error> for OpError {
    fn from(e: Error) -> Self {
        OpError::Store(e)
    }
}

/// `r` with its error named as the call `op`.
pub(crate) fn ck<T>(op: &'static str, r: cryptoki::error::Result<T>) -> Result<T, OpError> {
    r.map_err(|e| OpError::Call(op, e))
}

/// Whether an operation may run a second time after a reconnection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads and signatures: always.
    Idempotent,
    /// Writes: only if the first try never reached the token.
    Write,
    /// Writes that are safe to make again: they read the token before they
    /// write (compare-before-write), or write under a name new at each try.
    /// Made again, like a write, if the first try never reached the token,
    /// and also after the module lost the token during the first try
    /// (see `attempt`): the module may have written part of it anyway, and
    /// a second try sees it or does not mind it.
    Checked,
}

/// Why the token cannot be used, which decides whether initializing the
/// module again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// The module says it is not initialized: nothing works until it is.
    NotInitialized,
    /// The token was found before and is gone (removed, the HSM restarted).
    Gone,
    /// No token ever matched: a setting to fix, or (SoftHSM) a token whose
    /// files another process was rewriting when the module read them.
    NeverFound,
    /// The token was read without its user PIN (SoftHSM, as above).
    Unreadable,
}

enum Failure {
    /// The token cannot be used; the module may need initializing again.
    Missing {
        epoch: u64,
        error: Error,
        cause: Missing,
        /// Whether the operation ran (the module lost the token during
        /// it) rather than failing before it could start.
        ran: bool,
    },
    Op {
        error: Error,
        reconnect: bool,
        /// The failure came from the operation itself (it may have had
        /// effects), not from opening or logging in a session.
        ran: bool,
    },
}

/// What an operation gets: the module, a logged-in session, the token.
///
/// Object management goes through its methods, which a process runs one
/// at a time per module: SoftHSM 2.6 fails `C_CreateObject` and
/// `C_GenerateKeyPair` with `CKR_GENERAL_ERROR` while another thread of the
/// process searches the same token. They are rare (state reads, writes);
/// signatures, the hot path, run in parallel.
pub(crate) struct Ctx<'a> {
    pub(crate) module: &'a Pkcs11,
    session: &'a Session,
    pub(crate) conn: &'a Conn,
    token: &'a Token,
    objects: &'a Mutex<()>,
}

impl Ctx<'_> {
    fn serial<T>(&self, f: impl FnOnce() -> T) -> T {
        let _one = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }

    /// `C_FindObjects` with `template`.
    pub(crate) fn find(
        &self,
        template: &[Attribute],
    ) -> cryptoki::error::Result<Vec<ObjectHandle>> {
        self.serial(|| self.session.find_objects(template))
    }

    /// `C_GetAttributeValue`.
    pub(crate) fn attributes(
        &self,
        object: ObjectHandle,
        types: &[cryptoki::object::AttributeType],
    ) -> cryptoki::error::Result<Vec<Attribute>> {
        self.serial(|| self.session.get_attributes(object, types))
    }

    /// `C_CreateObject`.
    pub(crate) fn create(&self, template: &[Attribute]) -> cryptoki::error::Result<ObjectHandle> {
        self.serial(|| self.session.create_object(template))
    }

    /// `C_DestroyObject`.
    pub(crate) fn destroy(&self, object: ObjectHandle) -> cryptoki::error::Result<()> {
        self.serial(|| self.session.destroy_object(object))
    }

    /// `C_GenerateKeyPair`: `(public, private)`.
    pub(crate) fn generate(
        &self,
        mechanism: &cryptoki::mechanism::Mechanism<'_>,
        public: &[Attribute],
        private: &[Attribute],
    ) -> cryptoki::error::Result<(ObjectHandle, ObjectHandle)> {
        self.serial(|| self.session.generate_key_pair(mechanism, public, private))
    }

    /// `C_SignInit` + `C_Sign`, in parallel with other sessions.
    pub(crate) fn sign(
        &self,
        mechanism: &cryptoki::mechanism::Mechanism<'_>,
        key: ObjectHandle,
        data: &[u8],
    ) -> cryptoki::error::Result<Vec<u8>> {
        self.session.sign(mechanism, key, data)
    }

    /// Fails when the token is not reachable. `C_FindObjects` on a token
    /// that went away may answer "nothing found" (SoftHSM does): an empty
    /// search is trusted only after this.
    pub(crate) fn check_present(&self) -> Result<(), OpError> {
        ck("C_GetTokenInfo", token_info(self.module, self.conn.slot)).map(|_| ())
    }

    /// The handle of the private key `id` labelled `label`; `None` when the
    /// token, present, does not hold it.
    pub(crate) fn private_key(
        &self,
        label: &str,
        id: &[u8],
    ) -> Result<Option<ObjectHandle>, OpError> {
        if let Some(h) = self.token.inner().handles.get(id) {
            return Ok(Some(*h));
        }
        let found = ck(
            "C_FindObjects",
            self.find(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.to_vec()),
            ]),
        )?;
        match found.as_slice() {
            [] => {
                self.check_present()?;
                Ok(None)
            }
            [h] => {
                // Only a key generated in this token that was never
                // extractable signs: one imported by another client (with
                // the PIN) would be a copy someone holds outside the HSM.
                let flags = ck(
                    "C_GetAttributeValue",
                    self.attributes(
                        *h,
                        &[
                            cryptoki::object::AttributeType::Local,
                            cryptoki::object::AttributeType::NeverExtractable,
                            cryptoki::object::AttributeType::AlwaysSensitive,
                        ],
                    ),
                )?;
                let generated_here = flags.len() == 3
                    && flags.iter().all(|a| {
                        matches!(
                            a,
                            Attribute::Local(true)
                                | Attribute::NeverExtractable(true)
                                | Attribute::AlwaysSensitive(true)
                        )
                    });
                if !generated_here {
                    return Err(OpError::Store(Error::corrupt_state(format!(
                        "the private key labelled `{label}` with this kid's CKA_ID on {} was not generated in the token, or was extractable once (CKA_LOCAL, CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE: {flags:?}): jwtkit signs only with keys that never left the HSM; rotate to a new key (`jwtkit store rotate`) and delete the imported object",
                        self.token.describe()
                    ))));
                }
                self.token.inner().handles.insert(id.to_vec(), *h);
                Ok(Some(*h))
            }
            many => Err(OpError::Store(Error::corrupt_state(format!(
                "{} private keys on {} carry the label `{label}` and the same CKA_ID; a kid names one key: remove the copies that jwtkit did not create",
                many.len(),
                self.token.describe()
            )))),
        }
    }

    /// Forgets a cached private key handle (the key was destroyed).
    pub(crate) fn forget_key(&self, id: &[u8]) {
        self.token.inner().handles.remove(id);
    }

    /// The token, for messages.
    pub(crate) fn describe(&self) -> String {
        self.token.describe()
    }

    /// The store's connection, for errors built inside an operation.
    pub(crate) fn token_ref(&self) -> &Token {
        self.token
    }
}

/// `C_GetTokenInfo`, asked up to three times: SoftHSM fails it now and
/// then while another process logs in (which rewrites the token's file).
fn token_info(ctx: &Pkcs11, slot: Slot) -> cryptoki::error::Result<cryptoki::slot::TokenInfo> {
    let mut tries = 0;
    loop {
        match ctx.get_token_info(slot) {
            Err(e) if tries < 2 && rv_of(&e) == Some(RvError::GeneralError) => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// One store's connection to its token.
pub(crate) struct Token {
    module_path: PathBuf,
    module: OnceLock<Arc<Module>>,
    selector: Selector,
    pin: Option<Pin>,
    permits: Arc<tokio::sync::Semaphore>,
    max_sessions: usize,
    timeout: Duration,
    inner: Mutex<Inner>,
    /// The HMAC (under `pin_key`) of the last PIN the token refused: never
    /// sent again. Keyed, so that memory holds nothing a short PIN could be
    /// guessed from offline.
    refused_pin: Mutex<Option<Vec<u8>>>,
    pin_key: aws_lc_rs::hmac::Key,
    counters: Counters,
    /// Times the module was loaded again for a token that looked missing
    /// or unreadable at the first look (at most three).
    looked_again: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("module_path", &self.module_path)
            .field("selector", &self.selector.describe())
            .field("pin", &self.pin)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.inner().idle);
        match self.module.get() {
            Some(module) => module.call(|_, epoch| {
                module.leave();
                for (s, e) in idle {
                    discard(s, e, epoch);
                }
            }),
            None => idle.into_iter().for_each(|(s, _)| std::mem::forget(s)),
        }
    }
}

/// Closes a session of the current epoch; abandons one of an earlier epoch,
/// whose handle may now name another session.
fn discard(session: Session, opened: u64, current: u64) {
    if opened == current {
        drop(session);
    } else {
        std::mem::forget(session);
    }
}

impl Token {
    pub(crate) fn new(
        module_path: PathBuf,
        selector: Selector,
        pin: Option<Pin>,
        max_sessions: usize,
        timeout: Duration,
    ) -> Token {
        Token {
            module_path,
            module: OnceLock::new(),
            selector,
            pin,
            permits: Arc::new(tokio::sync::Semaphore::new(max_sessions)),
            max_sessions,
            timeout,
            inner: Mutex::new(Inner {
                conn: None,
                idle: Vec::new(),
                handles: HashMap::new(),
                seen: false,
            }),
            refused_pin: Mutex::new(None),
            pin_key: {
                let mut key = zeroize::Zeroizing::new([0u8; 32]);
                // A failed RNG leaves a zero key: the HMAC still tells PINs
                // apart, it is only no longer secret.
                let _ = aws_lc_rs::rand::fill(&mut key[..]);
                aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key[..])
            },
            counters: Counters::default(),
            looked_again: std::sync::atomic::AtomicU32::new(0),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// "token `jwtkit` (module /usr/lib/…)", for messages.
    pub(crate) fn describe(&self) -> String {
        let which = match &self.selector {
            Selector {
                token: Some(label),
                manufacturer: None,
                model: None,
                serial: None,
                slot_id: None,
                slot_description: None,
                slot_manufacturer: None,
            } => format!("token `{label}`"),
            s => format!("the token {}", s.describe()),
        };
        format!("{which} (module {})", self.module_path.display())
    }

    /// The token's attributes as a URI path, for the store's location.
    pub(crate) fn selector_uri(&self) -> String {
        self.selector.to_uri_path()
    }

    /// What names the token on this host (the module's real path and the
    /// token's attributes), for the host's lock files.
    pub(crate) fn host_key(&self) -> String {
        let module =
            std::fs::canonicalize(&self.module_path).unwrap_or_else(|_| self.module_path.clone());
        format!("{}\n{}", module.display(), self.selector.to_uri_path())
    }

    pub(crate) fn stats(&self) -> Pkcs11Stats {
        let c = &self.counters;
        Pkcs11Stats {
            sessions_opened: c.sessions_opened.load(Ordering::Relaxed),
            logins: c.logins.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            module_reinits: c.module_reinits.load(Ordering::Relaxed),
        }
    }

    /// The mechanisms of the token as last found (none before the first call).
    pub(crate) fn known_conn(&self) -> Option<Conn> {
        self.inner().conn.clone()
    }

    /// Pretends the token was found with `mechanisms` (unit tests of the
    /// checks that read the mechanism list).
    #[cfg(test)]
    pub(crate) fn set_mechanisms_for_tests(&self, mechanisms: Vec<MechanismType>) {
        self.inner().conn = Some(Conn {
            slot: Slot::try_from(0u64).expect("slot 0"),
            epoch: 0,
            mechanisms: Arc::new(mechanisms),
            protected_path: false,
        });
    }

    /// Whether the token was found at the module's current epoch and no
    /// failure has dropped it since (no call is made).
    pub(crate) fn is_connected(&self) -> bool {
        let (Some(module), Some(conn)) = (self.module.get(), self.inner().conn.clone()) else {
            return false;
        };
        conn.epoch == module.epoch()
    }

    fn module(&self) -> Result<Arc<Module>> {
        if let Some(m) = self.module.get() {
            return Ok(m.clone());
        }
        let m = module::load(&self.module_path)?;
        let mut joined = false;
        let m = self
            .module
            .get_or_init(|| {
                joined = true;
                m
            })
            .clone();
        if joined {
            m.join();
        }
        Ok(m)
    }

    fn call_error(&self, op: &str, e: CkError) -> Error {
        Pkcs11Error::call(op, self.describe(), e).into_error()
    }

    /// Runs `f` on a logged-in session on a blocking thread, bounded by the
    /// store's timeout, reconnecting (and, as `retry` allows, running it a
    /// second time) when the token, the session or the module failed.
    pub(crate) async fn run<R, F>(
        self: &Arc<Self>,
        what: &'static str,
        retry: Retry,
        f: F,
    ) -> Result<R>
    where
        F: Fn(&Ctx<'_>) -> Result<R, OpError> + Send + Sync + 'static,
        R: Send + 'static,
    {
        let timeout = self.timeout;
        let busy = || {
            Pkcs11Error::invalid(
                what,
                self.describe(),
                format!(
                    "all {} sessions of the store stayed busy for {} s",
                    self.max_sessions,
                    timeout.as_secs_f32()
                ),
                "the token is slow or overloaded; raise max_sessions if it allows more sessions, or the timeout",
            )
            .into_error_retryable(true)
        };
        let permit = tokio::time::timeout(timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let token = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            token.run_blocking(retry, &f)
        });
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(self.join_failed(what, join)),
            Err(_) => Err(Pkcs11Error::invalid(
                what,
                self.describe(),
                format!("no answer within {} s", timeout.as_secs_f32()),
                "the HSM or its client is hung or unreachable; the call may still complete, and the store reconnects if it failed",
            )
            .into_error_retryable(true)),
        }
    }

    /// Initializes the module again, when this store is the only one of the
    /// process using it (no other store loses its sessions for it), so that
    /// the next call reads the token's objects afresh. SoftHSM's file store
    /// keeps an object it read half-written (another process was writing
    /// it) as invalid for the life of the module, hidden from every search.
    pub(crate) async fn reload(self: &Arc<Self>) -> Result<()> {
        let token = self.clone();
        tokio::task::spawn_blocking(move || {
            let module = token.module()?;
            if module.stores() == 1 && module.reinitialize(module.epoch(), true)? {
                token
                    .counters
                    .module_reinits
                    .fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|join| Err(self.join_failed("initialize the module again", join)))
    }

    /// The error for a blocking task that panicked or was cancelled.
    fn join_failed(&self, what: &'static str, join: tokio::task::JoinError) -> crate::Error {
        Pkcs11Error::invalid(
            what,
            self.describe(),
            format!("the call on its blocking thread failed: {join}"),
            "this is a bug in the PKCS#11 module or its binding",
        )
        .into_error_retryable(false)
    }

    /// A connection check for health probes: `Ok` at once when the token is
    /// connected, else it looks for the token.
    pub(crate) async fn check(self: &Arc<Self>) -> Result<()> {
        if self.is_connected() {
            return Ok(());
        }
        self.run("find the token", Retry::Idempotent, |_| Ok(()))
            .await
    }

    fn run_blocking<R>(
        &self,
        retry: Retry,
        f: &(dyn Fn(&Ctx<'_>) -> Result<R, OpError> + Send + Sync),
    ) -> Result<R> {
        let module = self.module()?;
        let mut reinitialized = false;
        for attempt in 0..5 {
            let result = module.call(|ctx, epoch| self.attempt(ctx, epoch, module.objects(), f));
            match result {
                Ok(r) => {
                    if reinitialized {
                        self.looked_again.store(0, Ordering::Relaxed);
                    }
                    return Ok(r);
                }
                Err(Failure::Missing {
                    epoch,
                    error,
                    cause,
                    ran,
                }) => {
                    // Initializing the module again costs every store of the
                    // process its sessions: it is done for a module that is
                    // not initialized, and to find a token this store had
                    // (gone: removed, or the HSM restarted).
                    //
                    // A token never found, or read without its user PIN, is
                    // a setting to fix — or a token whose file another
                    // process was rewriting while this one's module read it
                    // (SoftHSM rewrites it at every login, and reads tokens
                    // only when it is initialized). A store alone with the
                    // module looks again, up to three times: no other store
                    // loses its sessions for it.
                    //
                    // SoftHSM also drops a token it had (see `attempt`), so a
                    // lone store looks for a token gone the same way; the
                    // three looks are given back once the token is found.
                    let load_again = matches!(
                        cause,
                        Missing::NeverFound | Missing::Unreadable | Missing::Gone
                    ) && module.stores() == 1
                        && self.looked_again.fetch_add(1, Ordering::Relaxed) < 3;
                    let now = cause == Missing::NotInitialized || load_again;
                    if !(now || cause == Missing::Gone) || (reinitialized && !load_again) {
                        return Err(error);
                    }
                    if load_again {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    match module.reinitialize(epoch, now) {
                        Ok(true) => {
                            reinitialized = true;
                            self.counters.module_reinits.fetch_add(1, Ordering::Relaxed);
                        }
                        // Initialized less than a second ago: not again yet.
                        Ok(false) => return Err(error),
                        Err(e) => return Err(e),
                    }
                    // A write the module lost the token during is made again
                    // only if it is safe to (`Retry::Checked`); the module,
                    // initialized again, serves the next call.
                    if ran && retry == Retry::Write {
                        return Err(error);
                    }
                }
                Err(Failure::Op {
                    error,
                    reconnect,
                    ran,
                }) => {
                    let again = reconnect && attempt == 0 && (!ran || retry == Retry::Idempotent);
                    if !again {
                        return Err(error);
                    }
                }
            }
        }
        Err(Pkcs11Error::invalid(
            "find the token",
            self.describe(),
            "it kept failing after the module was initialized again",
            "check the HSM and its client",
        )
        .into_error_retryable(true))
    }

    fn attempt<R>(
        &self,
        ctx: &Pkcs11,
        epoch: u64,
        objects: &Mutex<()>,
        f: &(dyn Fn(&Ctx<'_>) -> Result<R, OpError> + Send + Sync),
    ) -> std::result::Result<R, Failure> {
        let conn = self.connect(ctx, epoch)?;
        let session = self.checkout(ctx, &conn)?;
        let c = Ctx {
            module: ctx,
            session: &session,
            conn: &conn,
            token: self,
            objects,
        };
        match f(&c) {
            Ok(r) => {
                self.checkin(session, epoch);
                Ok(r)
            }
            Err(OpError::Call(op, e)) => {
                let reconnect = needs_reconnect(&e);
                // SoftHSM's file store gives up on a whole token when it
                // reads the token's file while another process rewrites it
                // (SoftHSMv2 #757, "Token integrity check failed"): from
                // then on, every call on it in this process fails with a
                // general error and the token is no longer listed, until
                // the module is initialized again. `run_blocking` then
                // initializes it again and makes the operation again if it
                // may (reads, signatures and `Retry::Checked` writes).
                let lost =
                    rv_of(&e) == Some(RvError::GeneralError) && token_info(ctx, conn.slot).is_err();
                if reconnect {
                    discard(session, epoch, epoch);
                    self.drop_connection(epoch);
                } else {
                    self.checkin(session, epoch);
                }
                if lost {
                    return Err(Failure::Missing {
                        epoch,
                        error: self.call_error(op, e),
                        cause: Missing::Gone,
                        ran: true,
                    });
                }
                Err(Failure::Op {
                    error: self.call_error(op, e),
                    reconnect,
                    ran: true,
                })
            }
            Err(OpError::Store(error)) => {
                self.checkin(session, epoch);
                Err(Failure::Op {
                    error,
                    reconnect: false,
                    ran: true,
                })
            }
        }
    }

    /// Forgets the slot, the idle sessions and the key handles: the next
    /// call finds the token again and opens new sessions.
    fn drop_connection(&self, epoch: u64) {
        let idle = {
            let mut inner = self.inner();
            if inner.conn.take().is_some() {
                self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(token = %self.describe(), "PKCS#11 token, session or module failed; reconnecting");
            }
            inner.handles.clear();
            std::mem::take(&mut inner.idle)
        };
        for (s, e) in idle {
            discard(s, e, epoch);
        }
    }

    fn checkin(&self, session: Session, epoch: u64) {
        let mut inner = self.inner();
        let current = inner.conn.as_ref().is_some_and(|c| c.epoch == epoch);
        if current && inner.idle.len() < self.max_sessions {
            inner.idle.push((session, epoch));
        } else {
            drop(inner);
            discard(session, epoch, epoch);
        }
    }

    fn connect(&self, ctx: &Pkcs11, epoch: u64) -> std::result::Result<Conn, Failure> {
        {
            let mut inner = self.inner();
            match &inner.conn {
                Some(c) if c.epoch == epoch => return Ok(c.clone()),
                Some(_) => {
                    // The module was initialized again: every session and
                    // handle of the earlier epoch is gone.
                    inner.conn = None;
                    inner.handles.clear();
                    for (s, e) in std::mem::take(&mut inner.idle) {
                        discard(s, e, epoch);
                    }
                }
                None => {}
            }
        }
        let op_failure = |op: &str, e: CkError| {
            let not_initialized = rv_of(&e) == Some(RvError::CryptokiNotInitialized);
            if not_initialized || needs_reconnect(&e) {
                Failure::Missing {
                    epoch,
                    error: self.call_error(op, e),
                    cause: if not_initialized {
                        Missing::NotInitialized
                    } else {
                        Missing::Gone
                    },
                    ran: false,
                }
            } else {
                Failure::Op {
                    error: self.call_error(op, e),
                    reconnect: false,
                    ran: false,
                }
            }
        };
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| op_failure("C_GetSlotList", e))?;
        let mut found = Vec::new();
        let mut present = Vec::new();
        for slot in slots {
            let Ok(info) = token_info(ctx, slot) else {
                continue;
            };
            present.push(format!(
                "`{}` (serial {}, slot {})",
                info.label(),
                info.serial_number(),
                slot.id()
            ));
            if self.selector.matches(ctx, slot, &info) {
                found.push((slot, info));
            }
        }
        let (slot, info) = match found.len() {
            0 => {
                let seen = self.inner().seen;
                let present = match present.len() {
                    0 => "none".to_owned(),
                    n if n > 8 => format!("{} and {} more", present[..8].join(", "), n - 8),
                    _ => present.join(", "),
                };
                let error = if seen {
                    Pkcs11Error::invalid(
                        "find the token",
                        self.describe(),
                        format!("it is gone (tokens present: {present})"),
                        "the token was removed or the HSM is unreachable; the store reconnects when it is back",
                    )
                    .into_error_retryable(true)
                } else {
                    Pkcs11Error::invalid(
                        "find the token",
                        self.describe(),
                        format!("no token matches (tokens present: {present})"),
                        "check the URI's token= (and serial=, slot-id=) attributes; a new SoftHSM token is made with `softhsm2-util --init-token --free --label NAME`, and a process that loaded the module before sees it after a restart",
                    )
                    .into_error_retryable(false)
                };
                return Err(Failure::Missing {
                    epoch,
                    error,
                    cause: if seen {
                        Missing::Gone
                    } else {
                        Missing::NeverFound
                    },
                    ran: false,
                });
            }
            1 => found.remove(0),
            n => {
                return Err(Failure::Op {
                    error: Error::invalid_config(
                        "token",
                        format!(
                            "{n} tokens of module {} match {} ({}); add serial= (or slot-id=) to the URI to choose one",
                            self.module_path.display(),
                            self.selector.describe(),
                            found
                                .iter()
                                .map(|(s, i)| format!("`{}` serial {} in slot {}", i.label(), i.serial_number(), s.id()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                    reconnect: false,
                    ran: false,
                })
            }
        };
        if !info.token_initialized() {
            return Err(Failure::Op {
                error: Error::invalid_config(
                    "token",
                    format!(
                        "{} is not initialized; initialize it with the HSM's tools (softhsm2-util --init-token, pkcs11-tool --init-token)",
                        self.describe()
                    ),
                ),
                reconnect: false,
                ran: false,
            });
        }
        let mechanisms = ctx
            .get_mechanism_list(slot)
            .map_err(|e| op_failure("C_GetMechanismList", e))?;
        let conn = Conn {
            slot,
            epoch,
            mechanisms: Arc::new(mechanisms),
            protected_path: info.protected_authentication_path(),
        };
        let mut inner = self.inner();
        inner.conn = Some(conn.clone());
        inner.seen = true;
        Ok(conn)
    }

    fn checkout(&self, ctx: &Pkcs11, conn: &Conn) -> std::result::Result<Session, Failure> {
        if let Some((s, _)) = {
            let mut inner = self.inner();
            inner.idle.pop()
        } {
            return Ok(s);
        }
        let failed = |op: &str, e: CkError| {
            let reconnect = needs_reconnect(&e);
            if reconnect {
                self.drop_connection(conn.epoch);
            }
            Failure::Op {
                error: self.call_error(op, e),
                reconnect,
                ran: false,
            }
        };
        let session = ctx
            .open_rw_session(conn.slot)
            .map_err(|e| failed("C_OpenSession", e))?;
        self.counters
            .sessions_opened
            .fetch_add(1, Ordering::Relaxed);
        let state = session
            .get_session_info()
            .map_err(|e| failed("C_GetSessionInfo", e))?
            .session_state();
        if matches!(state, SessionState::RoPublic | SessionState::RwPublic) {
            match self.login(ctx, &session, conn) {
                Ok(()) => {}
                Err(OpError::Call(op, e)) if rv_of(&e) == Some(RvError::UserPinNotInitialized) => {
                    return Err(Failure::Missing {
                        epoch: conn.epoch,
                        error: self.call_error(op, e),
                        cause: Missing::Unreadable,
                        ran: false,
                    })
                }
                Err(OpError::Call(op, e)) => return Err(failed(op, e)),
                Err(OpError::Store(error)) => {
                    return Err(Failure::Op {
                        error,
                        reconnect: false,
                        ran: false,
                    })
                }
            }
        }
        Ok(session)
    }

    fn login(&self, ctx: &Pkcs11, session: &Session, conn: &Conn) -> Result<(), OpError> {
        let Some(pin) = &self.pin else {
            if conn.protected_path {
                // A PIN pad: the PIN is entered on the device.
                return match session.login(UserType::User, None) {
                    Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                        self.counters.logins.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    }
                    Err(e) => Err(OpError::Call("C_Login", e)),
                };
            }
            return Err(OpError::Store(Error::invalid_config(
                "pin",
                format!(
                    "{} needs the user PIN to sign and to read its keys; add pin-source=file:/path/to/pin-file to the URI (or Pkcs11KeyStoreBuilder::pin)",
                    self.describe()
                ),
            )));
        };
        let value = pin.read()?;
        let digest = aws_lc_rs::hmac::sign(&self.pin_key, value.as_bytes());
        let mut refused = self.refused_pin.lock().unwrap_or_else(|e| e.into_inner());
        if refused.as_deref() == Some(digest.as_ref()) {
            return Err(OpError::Store(
                Pkcs11Error::invalid(
                    "C_Login",
                    self.describe(),
                    format!(
                        "the token refused {} before, and it was not changed since",
                        pin.describe()
                    ),
                    "a refused PIN is not sent again, since repeated wrong PINs lock the token; put the right PIN in place (the store reads it again at the next call)",
                )
                .into_error_retryable(false),
            ));
        }
        // The token's PIN counter, before a try is spent: a locked PIN, or a
        // last try left, is not tried by an unattended process (a cron job
        // or a restarting service would lock the token, which only the
        // security officer can undo); a low count is warned about. The
        // refusal above lasts for one process only; these flags are the
        // token's own, shared by every process.
        if let Ok(info) = token_info(ctx, conn.slot) {
            if info.user_pin_locked() || info.user_pin_final_try() {
                let state = if info.user_pin_locked() {
                    "the user PIN is locked (too many wrong tries)"
                } else {
                    "one wrong user PIN more locks the token (CKF_USER_PIN_FINAL_TRY)"
                };
                return Err(OpError::Store(
                    Pkcs11Error::invalid(
                        "C_Login",
                        self.describe(),
                        state.to_owned(),
                        "the store does not try the PIN now; check the PIN file, then log in once by hand (e.g. pkcs11-tool --login --test) to reset the counter, or have the security officer unlock the PIN",
                    )
                    .into_error_retryable(false),
                ));
            }
            if info.user_pin_count_low() {
                tracing::warn!(token = %self.describe(),
                    "the token reports wrong user PIN tries (CKF_USER_PIN_COUNT_LOW); check the PIN file before it locks");
            }
        }
        let auth = AuthPin::new(value.as_str().into());
        // SoftHSM answers a general error now and then while another
        // process's login rewrites the token's file, before the PIN is
        // checked: asking again costs no try.
        let mut tries = 0;
        let result = loop {
            match session.login(UserType::User, Some(&auth)) {
                Err(e) if tries < 2 && rv_of(&e) == Some(RvError::GeneralError) => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => break other,
            }
        };
        match result {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                *refused = None;
                self.counters.logins.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(
                e @ CkError::Pkcs11(
                    RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
                    _,
                ),
            ) => {
                *refused = Some(digest.as_ref().to_vec());
                Err(OpError::Store(
                    Pkcs11Error::call("C_Login", self.describe(), e)
                        .with_detail(format!("with {}", pin.describe()))
                        .into_error(),
                ))
            }
            Err(e) => Err(OpError::Call("C_Login", e)),
        }
    }
}

/// The backend error for a failure the store found itself.
pub(crate) fn invalid(
    what: &str,
    token: &Token,
    detail: impl Into<String>,
    hint: impl Into<String>,
    retryable: bool,
) -> Error {
    Pkcs11Error::invalid(what, token.describe(), detail, hint).into_error_retryable(retryable)
}
