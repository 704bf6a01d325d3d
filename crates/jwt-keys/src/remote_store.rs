//! The skeleton every remote key backend (KMS, Vault) shares, written once:
//! a backend says how to load its state, sign remotely and commit ledger
//! changes ([`RemoteBackend`]); the one generic [`KeyStore`] impl below holds
//! the rest — the cached state with its TTL on the store's clock, the check
//! that only the active key signs, the verification of every remote
//! signature with the key's public key before it is handed out, and the
//! rotation and retirement through the shared [`Ledger`] state machine with
//! compare-and-swap retries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jwt_core::time::UnixTime;
use jwt_core::{Algorithm, Clock, Jwks, VerifyingKey};

use crate::error::{Error, Result};
use crate::lifecycle::{log_rotation, Ledger};
use crate::policy::RotationPolicy;
use crate::state_cache::StateCache;
use crate::store::{KeyInfo, KeyRecord, KeyState, KeyStore, RotationReport};

/// How many times a write that lost a compare-and-swap race is retried.
const ATTEMPTS: usize = 5;

/// A remote store's state read at one moment.
pub(crate) trait RemoteSnapshot: Send + Sync + 'static {
    /// The lifecycle records and the policy; `None` before `init`.
    fn ledger(&self) -> Option<&Ledger>;
    /// The public key of `kid`, read with the state (none for retired keys).
    fn public_key(&self, kid: &str) -> Option<&VerifyingKey>;
}

/// What every remote store holds besides its backend's own settings.
pub(crate) struct RemoteParts<S> {
    /// The store's one clock: key states, lifecycle times and the state TTL.
    pub(crate) clock: Arc<dyn Clock>,
    /// The last state read (single-flight refreshes, stale on error).
    pub(crate) state: StateCache<S>,
    /// How long a state read is reused: the time other processes take to
    /// notice a rotation.
    pub(crate) state_ttl: Duration,
    /// Writes (init, rotate, retire) of this process, one at a time.
    pub(crate) write: tokio::sync::Mutex<()>,
}

impl<S> RemoteParts<S> {
    pub(crate) fn new(clock: Arc<dyn Clock>, state_ttl: Duration) -> Self {
        RemoteParts {
            state: StateCache::new(clock.clone()),
            clock,
            state_ttl,
            write: tokio::sync::Mutex::new(()),
        }
    }
}

/// What [`RemoteBackend::lock_writes`] holds for the length of one write;
/// the backend's own type inside.
pub(crate) type WriteLock = Box<dyn std::any::Any + Send + Sync>;

/// One remote backend: where its state lives and how it signs. Every
/// lifecycle decision is the [`Ledger`]'s; the backend turns the ledger's
/// record changes into its own writes.
#[async_trait]
pub(crate) trait RemoteBackend: fmt::Debug + Send + Sync + 'static {
    /// The backend's state as read from the service.
    type Snapshot: RemoteSnapshot;
    /// The backend name (`KeyStore::name`).
    const NAME: &'static str;
    /// The service, in messages ("KMS", "Vault").
    const SERVICE: &'static str;

    /// The shared parts.
    fn parts(&self) -> &RemoteParts<Self::Snapshot>;
    /// Names the store in errors and logs.
    fn location(&self) -> String;
    /// Whether the backend can create keys for `alg`.
    fn supports(&self, alg: Algorithm) -> bool;
    /// Refuses writes on a store that cannot rotate (a fixed key).
    fn check_writable(&self, operation: &'static str) -> Result<()> {
        let _ = operation;
        Ok(())
    }
    /// Checks an `init` before any call to the service.
    fn check_init(&self, alg: Algorithm, policy: &RotationPolicy) -> Result<()>;
    /// Checks that the store can reach the service now (Vault: it holds a
    /// valid token or can get one), so that [`KeyStore::active`], which
    /// health checks call, fails while it cannot sign. Cheap when nothing
    /// has to be done (no call to the service).
    async fn check_access(&self) -> Result<()> {
        Ok(())
    }

    /// Serializes this store's writes (init, rotate, retire) across
    /// processes, for a backend whose service has no compare-and-swap of its
    /// own (PKCS#11): taken after this process's write lock and before the
    /// state is read for the write, given back to
    /// [`unlock_writes`](Self::unlock_writes) after it. `None` (the default)
    /// for services whose commits are conditional writes (KMS aliases, Vault
    /// KV check-and-set).
    async fn lock_writes(&self, operation: &'static str) -> Result<Option<WriteLock>> {
        let _ = operation;
        Ok(None)
    }
    /// Releases what [`lock_writes`](Self::lock_writes) took.
    async fn unlock_writes(&self, lock: WriteLock) {
        let _ = lock;
    }

    /// Reads the state; `previous` is the last state read, if any.
    async fn load(&self, previous: Option<Arc<Self::Snapshot>>) -> Result<Self::Snapshot>;
    /// Signs with `key` (the active key) remotely; the caller verifies.
    async fn sign_remote(
        &self,
        snap: &Self::Snapshot,
        key: &KeyRecord,
        signing_input: &[u8],
    ) -> Result<Vec<u8>>;
    /// The error for a remote signature that does not verify.
    fn refuse_signature(&self, key: &KeyRecord, reason: jwt_core::Error) -> Error;
    /// Creates the first keys and writes the first state, on `snap` just read.
    async fn init_remote(
        &self,
        snap: &Self::Snapshot,
        alg: Algorithm,
        policy: &RotationPolicy,
        now: UnixTime,
    ) -> Result<RotationReport>;
    /// Creates the next pending key for a rotation away from the active key
    /// of `snap`; `Ok(None)` when another process is rotating first (the
    /// caller reloads and tries again, `attempt` counting from 0).
    async fn create_key(
        &self,
        snap: &Self::Snapshot,
        alg: Algorithm,
        now: UnixTime,
        attempt: usize,
    ) -> Result<Option<String>>;
    /// Writes the change from `before` to `after` (read as `snap`);
    /// `Ok(false)` when another process wrote first (nothing written).
    async fn commit(
        &self,
        snap: &Self::Snapshot,
        before: &Ledger,
        after: &Ledger,
        now: UnixTime,
    ) -> Result<bool>;
}

fn not_initialized<B: RemoteBackend>(backend: &B) -> Error {
    Error::NotInitialized {
        backend: B::NAME,
        location: backend.location(),
    }
}

/// The state: cached while younger than the TTL; with `allow_stale`, the
/// last state read when the service cannot be reached (verification and
/// signing keep working), never for writes.
async fn snapshot<B: RemoteBackend>(backend: &B, allow_stale: bool) -> Result<Arc<B::Snapshot>> {
    let parts = backend.parts();
    parts
        .state
        .get_or_load(
            parts.state_ttl,
            allow_stale,
            B::SERVICE,
            || backend.location(),
            || backend.load(parts.state.get(None)),
        )
        .await
}

/// The state read now, for a write.
async fn fresh<B: RemoteBackend>(backend: &B) -> Result<Arc<B::Snapshot>> {
    backend.parts().state.invalidate();
    snapshot(backend, false).await
}

fn ledger_of<B: RemoteBackend>(backend: &B, snap: &B::Snapshot) -> Result<Ledger> {
    snap.ledger()
        .cloned()
        .ok_or_else(|| not_initialized(backend))
}

async fn rotate_locked<B: RemoteBackend>(
    backend: &B,
    if_active: Option<&str>,
) -> Result<RotationReport> {
    for attempt in 0..ATTEMPTS {
        let snap = fresh(backend).await?;
        let mut ledger = ledger_of(backend, &snap)?;
        // Before creating a key that a conflict would waste.
        ledger.check_active(if_active)?;
        let alg = ledger.next_algorithm_where(|a| backend.supports(a));
        let now = backend.parts().clock.now();
        if let Some(kid) = backend.create_key(&snap, alg, now, attempt).await? {
            let before = ledger.clone();
            let report = ledger.rotate(now, if_active, &kid, alg)?;
            if backend.commit(&snap, &before, &ledger, now).await? {
                log_rotation(B::NAME, &report);
                return Ok(report);
            }
        }
        // Another process rotated first: a conditional rotation has lost.
        if let Some(expected) = if_active {
            let snap = fresh(backend).await?;
            let actual = snap
                .ledger()
                .and_then(Ledger::active)
                .map(|r| r.kid.clone())
                .unwrap_or_default();
            return Err(Error::Conflict {
                expected: expected.to_owned(),
                actual,
            });
        }
    }
    Err(Error::Backend {
        backend: B::NAME,
        source: "the store's state kept changing under five rotation attempts; another process is rotating in a loop".into(),
        retryable: true,
    })
}

async fn retire_locked<B: RemoteBackend>(backend: &B) -> Result<Vec<String>> {
    for _ in 0..ATTEMPTS {
        let snap = fresh(backend).await?;
        let mut ledger = ledger_of(backend, &snap)?;
        let before = ledger.clone();
        let now = backend.parts().clock.now();
        let retired = ledger.retire_expired(now);
        if retired.is_empty() || backend.commit(&snap, &before, &ledger, now).await? {
            for kid in &retired {
                tracing::info!(store = %backend.location(), %kid, "key retired; its private key is destroyed");
            }
            return Ok(retired);
        }
    }
    Err(Error::Backend {
        backend: B::NAME,
        source: "the store's state kept changing under five attempts".into(),
        retryable: true,
    })
}

#[async_trait]
impl<B: RemoteBackend> KeyStore for B {
    fn name(&self) -> &'static str {
        B::NAME
    }

    fn clock(&self) -> &dyn Clock {
        &*self.parts().clock
    }

    async fn active(&self) -> Result<KeyInfo> {
        self.check_access().await?;
        let snap = snapshot(self, true).await?;
        let a = snap
            .ledger()
            .and_then(Ledger::active)
            .ok_or_else(|| not_initialized(self))?;
        Ok(KeyInfo {
            kid: a.kid.clone(),
            alg: a.alg,
        })
    }

    async fn sign(&self, kid: &str, signing_input: &[u8]) -> Result<Vec<u8>> {
        let snap = snapshot(self, true).await?;
        let ledger = snap.ledger().ok_or_else(|| not_initialized(self))?;
        let unknown = || Error::UnknownKey {
            kid: kid.to_owned(),
        };
        let record = ledger.get(kid).ok_or_else(unknown)?;
        match record.state_at(self.parts().clock.now()) {
            KeyState::Active => {}
            state => {
                return Err(Error::NotActive {
                    kid: kid.to_owned(),
                    state,
                })
            }
        }
        let public = snap.public_key(kid).ok_or_else(unknown)?;
        let sig = self.sign_remote(&snap, record, signing_input).await?;
        // Never hand out a signature verifiers would refuse (a wrong key
        // behind the name, a PSS salt length other than the hash length, a
        // server that ignored the requested version).
        public
            .verify_raw(record.alg, signing_input, &sig)
            .map_err(|e| self.refuse_signature(record, e))?;
        Ok(sig)
    }

    // A store without state is not an empty store: a typo in its name must
    // not read as "no keys" (an empty JWKS published, every token refused
    // as `unknown_key`), so every read fails as `init` has not run, as the
    // file and memory stores do.
    async fn verification_keys(&self) -> Result<Jwks> {
        let now = self.parts().clock.now();
        let snap = snapshot(self, true).await?;
        let ledger = snap.ledger().ok_or_else(|| not_initialized(self))?;
        Ok(ledger.verification_keys(now, |r| snap.public_key(&r.kid)?.to_public_jwk()))
    }

    async fn list(&self) -> Result<Vec<KeyRecord>> {
        let now = self.parts().clock.now();
        let snap = snapshot(self, true).await?;
        let ledger = snap.ledger().ok_or_else(|| not_initialized(self))?;
        Ok(ledger.list(now))
    }

    async fn policy(&self) -> Result<RotationPolicy> {
        let snap = snapshot(self, true).await?;
        let ledger = snap.ledger().ok_or_else(|| not_initialized(self))?;
        Ok(ledger.policy.clone())
    }

    async fn init(&self, alg: Algorithm, policy: &RotationPolicy) -> Result<RotationReport> {
        self.check_writable("init")?;
        self.check_init(alg, policy)?;
        let _w = self.parts().write.lock().await;
        let lock = self.lock_writes("init").await?;
        let result = match fresh(self).await {
            Ok(snap) => {
                let now = self.parts().clock.now();
                self.init_remote(&snap, alg, policy, now).await
            }
            Err(e) => Err(e),
        };
        if let Some(lock) = lock {
            self.unlock_writes(lock).await;
        }
        self.parts().state.invalidate();
        result
    }

    async fn rotate(&self, if_active: Option<&str>) -> Result<RotationReport> {
        self.check_writable("rotate")?;
        let _w = self.parts().write.lock().await;
        let lock = self.lock_writes("rotate").await?;
        let result = rotate_locked(self, if_active).await;
        if let Some(lock) = lock {
            self.unlock_writes(lock).await;
        }
        self.parts().state.invalidate();
        result
    }

    async fn retire_expired(&self) -> Result<Vec<String>> {
        self.check_writable("retire_expired")?;
        let _w = self.parts().write.lock().await;
        let lock = self.lock_writes("retire_expired").await?;
        let result = retire_locked(self).await;
        if let Some(lock) = lock {
            self.unlock_writes(lock).await;
        }
        self.parts().state.invalidate();
        result
    }
}
