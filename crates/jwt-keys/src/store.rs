//! The [`KeyStore`] trait every key backend implements, the types it speaks,
//! and the conveniences of [`KeyStoreExt`].

use std::fmt;

use async_trait::async_trait;
use jwt_core::time::{secs, UnixTime};
use jwt_core::{Algorithm, Clock, Header, Jwks, KeySet, SystemClock};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::policy::{self, AuditReport, RotationPolicy};

/// Where a key is in its lifecycle.
///
/// `pending` → `active` → `retiring` → `retired`, never backwards; a `kid`
/// names one key forever and is never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS but not signing yet, so that verifiers' caches
    /// learn it before the first token signed with it arrives.
    Pending,
    /// The one key that signs. A store has exactly one.
    Active,
    /// No longer signs; still verifies until its grace period ends.
    Retiring,
    /// Gone from the JWKS; tokens naming it are refused.
    Retired,
}

impl KeyState {
    /// The lowercase name, e.g. `"retiring"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }

    /// `true` for the states whose key is published and verifies
    /// (pending, active, retiring).
    pub fn is_published(self) -> bool {
        !matches!(self, KeyState::Retired)
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key that signs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its key id, as it goes into token headers.
    pub kid: String,
    /// The algorithm it signs with.
    pub alg: Algorithm,
}

/// One key of a store, as [`KeyStore::list`] reports it. Times are seconds
/// since the Unix epoch; `None` where the backend does not know them (keys
/// from environment variables).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The key id.
    pub kid: String,
    /// The key's algorithm.
    pub alg: Algorithm,
    /// Its state as of the time of the listing.
    pub state: KeyState,
    /// When the key was created (and published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<UnixTime>,
    /// When it became the active key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<UnixTime>,
    /// When it stopped signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_at: Option<UnixTime>,
    /// When it stops verifying (end of its grace period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_at: Option<UnixTime>,
    /// Whether the backend still holds the private key. A retired key
    /// should not: [`KeyStore::retire_expired`] destroys it, and the audit
    /// reports a key past its grace that still has one.
    #[serde(default = "yes")]
    pub has_private_key: bool,
}

fn yes() -> bool {
    true
}

impl KeyRecord {
    /// A record with no known times.
    pub fn new(kid: impl Into<String>, alg: Algorithm, state: KeyState) -> Self {
        KeyRecord {
            kid: kid.into(),
            alg,
            state,
            created_at: None,
            activated_at: None,
            retiring_at: None,
            retire_at: None,
            has_private_key: state != KeyState::Retired,
        }
    }

    /// The state at `now`: a retiring key whose grace period has ended is
    /// retired even before a write records it.
    pub fn state_at(&self, now: UnixTime) -> KeyState {
        match (self.state, self.retire_at) {
            (KeyState::Retiring, Some(at)) if at <= now => KeyState::Retired,
            (s, _) => s,
        }
    }
}

/// What a rotation (or `init`) did.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    /// The key that signed before and is now retiring (`None` for `init`).
    pub previous: Option<String>,
    /// The key that signs now.
    pub active: String,
    /// The new pending key, published now, signing from the next rotation.
    pub pending: String,
    /// When `previous` stops verifying.
    pub previous_retire_at: Option<UnixTime>,
    /// Keys whose grace period had ended and that were retired on the way.
    pub retired: Vec<String>,
    /// How long the new active key had been published before it started
    /// signing (`None` for `init`). Less than the policy's `prepublish` means
    /// some verifiers may not know it yet.
    pub published_for_secs: Option<i64>,
}

/// Everything [`KeyStoreExt::rotate_if_due`] changed: an audit record that
/// lists every change, never "nothing" when something was changed.
///
/// Serialized (e.g. `jwtkit store rotate --if-due --json`) as
/// `{"rotated": {…} | null, "retired": ["kid", …]}`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    /// The rotation, when one was due and this call made it; `None` when
    /// none was due, the pending key was not published long enough yet, or
    /// another process rotated first.
    pub rotated: Option<RotationReport>,
    /// Every key this call retired because its grace had ended, whether
    /// along with a rotation or alone; the backend destroyed their private
    /// keys where it can (see [`KeyStore::retire_expired`]). They no longer
    /// verify.
    pub retired: Vec<String>,
}

impl MaintenanceReport {
    /// `true` when the call changed the store (rotated or retired a key).
    pub fn changed(&self) -> bool {
        self.rotated.is_some() || !self.retired.is_empty()
    }
}

/// A source of signing keys with a lifecycle: every backend (memory, file,
/// env, and remote ones such as KMS or Vault) implements this small trait;
/// callers hold an `Arc<dyn KeyStore>` and use the conveniences of
/// [`KeyStoreExt`].
///
/// Rules for implementors:
/// - `sign` signs only with the active key and refuses any other `kid` with
///   [`Error::NotActive`] (a known key) or [`Error::UnknownKey`].
/// - `verification_keys` holds every pending, active and retiring key whose
///   grace has not ended (by the store's clock), as public JWKs with `kid`,
///   `alg` and `use: "sig"` — never private members.
/// - Read-only backends leave `init`, `rotate` and `retire_expired` to their
///   defaults, which return [`Error::ReadOnly`].
/// - Time is given once, when the store is built: every decision (which
///   state a key is in, when a rotation happens, when a grace ends) reads
///   [`clock`](KeyStore::clock), never a `now` argument, so one injected
///   clock drives a whole run (`jwtkit --now`, a test's `ManualClock`).
///
/// # Write your own store
///
/// A read-only store around one key, in a few lines:
///
/// ```
/// use async_trait::async_trait;
/// use jwt_core::{Algorithm, Jwks, SigningKey};
/// use jwt_keys::{Error, KeyInfo, KeyRecord, KeyState, KeyStore, KeyStoreExt, Result};
///
/// #[derive(Debug)]
/// struct OneKey(SigningKey, String);
///
/// #[async_trait]
/// impl KeyStore for OneKey {
///     fn name(&self) -> &'static str { "one-key" }
///     async fn active(&self) -> Result<KeyInfo> {
///         Ok(KeyInfo { kid: self.1.clone(), alg: Algorithm::ES256 })
///     }
///     async fn sign(&self, kid: &str, input: &[u8]) -> Result<Vec<u8>> {
///         if kid != self.1 {
///             return Err(Error::UnknownKey { kid: kid.to_owned() });
///         }
///         Ok(self.0.sign_raw(Algorithm::ES256, input)?)
///     }
///     async fn verification_keys(&self) -> Result<Jwks> {
///         Ok(Jwks { keys: self.0.to_public_jwk().into_iter().collect() })
///     }
///     async fn list(&self) -> Result<Vec<KeyRecord>> {
///         Ok(vec![KeyRecord::new(self.1.clone(), Algorithm::ES256, KeyState::Active)])
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let key = SigningKey::generate(Algorithm::ES256)?;
/// let kid = key.thumbprint()?;
/// let store = OneKey(key.with_kid(kid.clone()).with_algorithm(Algorithm::ES256)?, kid.clone());
///
/// let token = store.sign_token(&serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64}), None).await?;
/// let header = jwt_core::dangerous::insecure_decode_header(&token)?;
/// assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
/// // Read-only: rotation is refused with a typed error.
/// assert!(matches!(store.rotate(None).await, Err(Error::ReadOnly { .. })));
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait KeyStore: Send + Sync + fmt::Debug + 'static {
    /// A short name of the backend, e.g. `"file"`, for messages and logs.
    fn name(&self) -> &'static str;

    /// The clock the store was built with, which decides every key's state
    /// and every lifecycle time it records. Defaults to the system clock,
    /// for stores whose keys have no times (the built-in backends all take
    /// one at construction: `with_clock`, a builder's `clock`, or
    /// [`StoreRegistry::with_clock`](crate::StoreRegistry::with_clock)).
    fn clock(&self) -> &dyn Clock {
        &SystemClock
    }

    /// The key that signs now.
    async fn active(&self) -> Result<KeyInfo>;

    /// Signs `signing_input` with the key `kid`, which must be the active key.
    ///
    /// Async because remote backends sign remotely; local backends sign
    /// in-process with keys parsed once.
    async fn sign(&self, kid: &str, signing_input: &[u8]) -> Result<Vec<u8>>;

    /// Every key that may still verify (pending, active, retiring within its
    /// grace), as public JWKs: the document to publish at a JWKS URL.
    async fn verification_keys(&self) -> Result<Jwks>;

    /// The keys to verify with in-process. Defaults to
    /// [`verification_keys`](Self::verification_keys); backends holding
    /// symmetric (HMAC) keys, which are never published, override it.
    async fn key_set(&self) -> Result<KeySet> {
        Ok(KeySet::from_jwks(&self.verification_keys().await?))
    }

    /// All keys the store knows, retired ones included, each with its state
    /// at the store's current time (a retiring key past its grace is listed
    /// as retired even before a write records it).
    async fn list(&self) -> Result<Vec<KeyRecord>>;

    /// The rotation policy recorded with the store. Defaults to
    /// [`RotationPolicy::default`].
    async fn policy(&self) -> Result<RotationPolicy> {
        Ok(RotationPolicy::default())
    }

    /// Creates the first active key for `alg` and its pending successor, and
    /// records `policy`, at the store's [`clock`](Self::clock). Refused when
    /// the store already holds keys.
    async fn init(&self, alg: Algorithm, policy: &RotationPolicy) -> Result<RotationReport> {
        let _ = (alg, policy);
        Err(read_only(self.name(), "init"))
    }

    /// Rotates at the store's [`clock`](Self::clock) time `now`: the pending
    /// key becomes active (the signing `kid` changes at once), the active key
    /// starts retiring (until `now + verify_grace`), and a new pending key is
    /// created and published.
    ///
    /// With `if_active: Some(kid)`, rotates only if `kid` is still the active
    /// key, and fails with [`Error::Conflict`] otherwise — so several
    /// processes applying the same policy rotate once, not once each.
    async fn rotate(&self, if_active: Option<&str>) -> Result<RotationReport> {
        let _ = if_active;
        Err(read_only(self.name(), "rotate"))
    }

    /// Marks retiring keys whose grace has ended by the store's
    /// [`clock`](Self::clock) as retired (and destroys their private keys
    /// where the backend can). Returns their kids.
    async fn retire_expired(&self) -> Result<Vec<String>> {
        Err(read_only(self.name(), "retire_expired"))
    }
}

pub(crate) fn read_only(backend: &'static str, operation: &'static str) -> Error {
    Error::ReadOnly {
        backend,
        operation,
        hint: "rotate its keys where they come from (for env: put the new key in the variable and the old public key in the PREVIOUS JWKS, then restart)",
    }
}

/// Conveniences on every [`KeyStore`] (implemented for all of them,
/// `dyn KeyStore` included; implementors never touch it).
#[async_trait]
pub trait KeyStoreExt: KeyStore {
    /// Signs `claims` with the active key: header `alg`, `kid` and `typ`
    /// (`None` gives `JWT`). Retries once if the store rotated in between.
    async fn sign_token<T>(&self, claims: &T, typ: Option<&str>) -> Result<String>
    where
        T: Serialize + Sync + ?Sized,
    {
        // The template's `alg` is replaced by the active key's.
        let mut template = Header::new(jwt_core::Algorithm::ES256);
        if let Some(typ) = typ {
            template.typ = Some(typ.to_owned().into());
        }
        self.sign_token_with_header(claims, &template).await
    }

    /// Signs `claims` with the active key, `template` giving the header:
    /// its `alg` and `kid` are replaced by the active key's, everything else
    /// (`typ`, or none; `cty`; other parameters) is kept. A header jwtkit's
    /// verifier would refuse or read differently is refused before
    /// anything is signed ([`jwt_core::signing_input`]). Retries once if the
    /// store rotated in between.
    async fn sign_token_with_header<T>(&self, claims: &T, template: &Header) -> Result<String>
    where
        T: Serialize + Sync + ?Sized,
    {
        let mut attempt = 0;
        loop {
            let key = self.active().await?;
            let mut header = template.clone();
            header.alg = key.alg;
            header.kid = Some(key.kid.clone());
            let input = jwt_core::signing_input(&header, claims)?;
            match self.sign(&key.kid, input.as_bytes()).await {
                Ok(sig) => return Ok(jwt_core::assemble(input, &sig)),
                Err(Error::NotActive { .. }) if attempt == 0 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Rotates if the policy says so at the store's clock: the active key has signed for
    /// `rotate_after` and the pending key has been published for `prepublish`.
    /// Also retires keys whose grace has ended. Safe to run from several
    /// processes at once (e.g. a cron job on each host): only one rotates.
    ///
    /// Returns every change it made: the rotation (if one was due and this
    /// process made it) and every key it retired, so that a run that only
    /// retired a key (and destroyed its private key) never reads as "nothing
    /// changed".
    async fn rotate_if_due(&self) -> Result<MaintenanceReport> {
        let now = self.clock().now();
        let policy = self.policy().await?;
        let records = self.list().await?;
        let active = records.iter().find(|r| r.state_at(now) == KeyState::Active);
        let pending = records
            .iter()
            .find(|r| r.state_at(now) == KeyState::Pending);
        let Some(active) = active else {
            return Err(Error::NotInitialized {
                backend: self.name(),
                location: "this store (it has no active key)".into(),
            });
        };
        let signing_since = active.activated_at.or(active.created_at).unwrap_or(now);
        let due = now - signing_since >= secs(policy.rotate_after());
        // A backend without a pending key (read-only ones) decides in `rotate`.
        let ready =
            pending.is_none_or(|p| now - p.created_at.unwrap_or(now) >= secs(policy.prepublish()));
        if !due || !ready {
            let mut report = MaintenanceReport::default();
            if records
                .iter()
                .any(|r| r.state_at(now) == KeyState::Retired && r.has_private_key)
            {
                report.retired = self.retire_expired().await?;
            }
            if due {
                tracing::warn!(
                    store = self.name(),
                    pending = pending.map(|p| p.kid.as_str()).unwrap_or("-"),
                    "rotation is due but the pending key has not been published for `prepublish` yet; waiting"
                );
            }
            return Ok(report);
        }
        match self.rotate(Some(&active.kid)).await {
            Ok(rotation) => Ok(MaintenanceReport {
                retired: rotation.retired.clone(),
                rotated: Some(rotation),
            }),
            // The other process's rotation retired what was due, and its report says so.
            Err(Error::Conflict { .. }) => Ok(MaintenanceReport::default()),
            Err(e) => Err(e),
        }
    }

    /// Checks the store against its policy at the store's clock: an active key older
    /// than `rotate_after`, a retiring key kept past its grace, a disallowed
    /// algorithm, a weak key, a missing active or pending key.
    async fn audit(&self) -> Result<AuditReport> {
        let now = self.clock().now();
        let policy = self.policy().await?;
        let records = self.list().await?;
        let keys = self.key_set().await?;
        Ok(policy::audit(now, &policy, &records, &keys))
    }
}

impl<S: KeyStore + ?Sized> KeyStoreExt for S {}
