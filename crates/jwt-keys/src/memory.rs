//! The in-memory backend, for tests and examples.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use jwt_core::{Algorithm, Clock, Jwks, SigningKey, SystemClock};

use crate::error::{Error, Result};
use crate::lifecycle::{generate_key, init_report, log_rotation, Ledger};
use crate::policy::RotationPolicy;
use crate::store::{KeyInfo, KeyRecord, KeyState, KeyStore, RotationReport};

/// Keys in process memory, with the full lifecycle. Lost when dropped.
///
/// ```
/// use std::sync::Arc;
/// use jwt_core::{Algorithm, Validation};
/// use jwt_keys::{KeyStore, KeyStoreExt, MemoryKeyStore, RotationPolicy, Verifier, KeySource};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
/// store.init(Algorithm::ES256, &RotationPolicy::default()).await?;
/// let token = store.sign_token(&serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64}), None).await?;
///
/// let verifier = Verifier::new(KeySource::Store(store.clone()), Validation::new([Algorithm::ES256]))?;
/// let data = verifier.verify::<serde_json::Value>(&token).await?;
/// assert_eq!(data.claims["sub"], "alice");
/// # Ok::<(), jwt_keys::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct MemoryKeyStore {
    clock: Arc<dyn Clock>,
    state: RwLock<Option<State>>,
}

#[derive(Debug)]
struct State {
    ledger: Ledger,
    keys: HashMap<String, Arc<SigningKey>>,
}

impl Default for MemoryKeyStore {
    fn default() -> Self {
        MemoryKeyStore::new()
    }
}

impl MemoryKeyStore {
    /// An empty store using the system clock; call [`KeyStore::init`].
    pub fn new() -> Self {
        MemoryKeyStore::with_clock(Arc::new(SystemClock))
    }

    /// An empty store that reads time from `clock` (which decides when a
    /// retiring key stops verifying).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryKeyStore {
            clock,
            state: RwLock::new(None),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> Result<R>) -> Result<R> {
        // A poisoned lock only means a panic elsewhere mid-read; the data is
        // replaced whole on writes, so it is still consistent.
        let guard = self.state.read().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(state) => f(state),
            None => Err(not_initialized()),
        }
    }
}

fn not_initialized() -> Error {
    Error::NotInitialized {
        backend: "memory",
        location: "(memory)".into(),
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    async fn active(&self) -> Result<KeyInfo> {
        self.read(|s| {
            let a = s.ledger.active().ok_or_else(not_initialized)?;
            Ok(KeyInfo {
                kid: a.kid.clone(),
                alg: a.alg,
            })
        })
    }

    async fn sign(&self, kid: &str, signing_input: &[u8]) -> Result<Vec<u8>> {
        let now = self.clock.now();
        let (key, alg) = self.read(|s| {
            let record = s.ledger.get(kid).ok_or_else(|| Error::UnknownKey {
                kid: kid.to_owned(),
            })?;
            match record.state_at(now) {
                KeyState::Active => {}
                state => {
                    return Err(Error::NotActive {
                        kid: kid.to_owned(),
                        state,
                    })
                }
            }
            let key = s.keys.get(kid).cloned().ok_or_else(|| Error::UnknownKey {
                kid: kid.to_owned(),
            })?;
            Ok((key, record.alg))
        })?;
        Ok(key.sign_raw(alg, signing_input)?)
    }

    async fn verification_keys(&self) -> Result<Jwks> {
        let now = self.clock.now();
        self.read(|s| {
            Ok(s.ledger
                .verification_keys(now, |r| s.keys.get(&r.kid).and_then(|k| k.to_public_jwk())))
        })
    }

    async fn list(&self) -> Result<Vec<KeyRecord>> {
        let now = self.clock.now();
        self.read(|s| Ok(s.ledger.list(now)))
    }

    async fn policy(&self) -> Result<RotationPolicy> {
        self.read(|s| Ok(s.ledger.policy.clone()))
    }

    async fn init(&self, alg: Algorithm, policy: &RotationPolicy) -> Result<RotationReport> {
        let now = self.clock.now();
        let (active_kid, active) = generate_key(alg)?;
        let (pending_kid, pending) = generate_key(alg)?;
        let ledger = Ledger::new(policy.clone(), alg, now, &active_kid, &pending_kid)?;
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            return Err(Error::AlreadyInitialized {
                backend: "memory",
                location: "(memory)".into(),
            });
        }
        let keys = HashMap::from([
            (active_kid.clone(), Arc::new(active)),
            (pending_kid.clone(), Arc::new(pending)),
        ]);
        *guard = Some(State { ledger, keys });
        tracing::info!(store = "memory", active = %active_kid, pending = %pending_kid, %alg, "key store initialized");
        Ok(init_report(active_kid, pending_kid))
    }

    async fn rotate(&self, if_active: Option<&str>) -> Result<RotationReport> {
        let alg = self.read(|s| Ok(s.ledger.next_algorithm()))?;
        // Generate outside the lock: RSA generation takes a while.
        let (kid, key) = generate_key(alg)?;
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        let state = guard.as_mut().ok_or_else(not_initialized)?;
        // Transition a copy, so a failure leaves the store untouched.
        let mut ledger = state.ledger.clone();
        let report = ledger.rotate(self.clock.now(), if_active, &kid, alg)?;
        state.ledger = ledger;
        state.keys.insert(kid, Arc::new(key));
        for retired in &report.retired {
            state.keys.remove(retired);
        }
        log_rotation("memory", &report);
        Ok(report)
    }

    async fn retire_expired(&self) -> Result<Vec<String>> {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        let state = guard.as_mut().ok_or_else(not_initialized)?;
        let retired = state.ledger.retire_expired(self.clock.now());
        for kid in &retired {
            state.keys.remove(kid);
            tracing::info!(store = "memory", %kid, "key retired");
        }
        Ok(retired)
    }
}
