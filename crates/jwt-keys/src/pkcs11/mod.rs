//! The PKCS#11 backend (feature `pkcs11`): keys generated inside an HSM
//! (or any PKCS#11 token: SoftHSM2, YubiHSM, AWS CloudHSM, a Thales, Entrust
//! or Utimaco unit, a Nitrokey) that never leave it, through the
//! [`cryptoki`] binding.
//!
//! The store asks the token to sign (`C_Sign` with the active key's private
//! key object) and verifies locally with the public keys read once from the
//! token and cached, so verification never calls the token. Every signature
//! is verified with the cached public key before it is returned.
//!
//! # Addressing: RFC 7512 URIs
//!
//! `pkcs11:token=jwtkit;object=signing?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/hsm-pin`
//!
//! - path attributes choose the token (`token` = its label; `serial`,
//!   `model`, `manufacturer`, `slot-id`, `slot-description`,
//!   `slot-manufacturer` when labels repeat) and name the store (`object`:
//!   the `CKA_LABEL` of every object of the store);
//! - query attributes: `module-path` (required), `pin-source` (a file read
//!   at each login), or `pin-value` (accepted, with a warning: a PIN in a
//!   URI shows in process listings and shell history).
//!
//! Values are percent-decoded; unknown or repeated attributes are refused.
//! The PIN never appears in `Debug` output, errors or logs ([`Pin`],
//! [`redact_pin`]).
//!
//! # Keys and algorithms
//!
//! Keys are generated on the token (`C_GenerateKeyPair`): the private half
//! is `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, may only sign and is
//! `CKA_PRIVATE`; both halves are `CKA_TOKEN` objects with the store's name
//! as `CKA_LABEL` and the kid's bytes as `CKA_ID`. The **kid** is 16 random
//! bytes in base64url (22 characters), so `pkcs11:…;object=NAME;id=%…`
//! names one key for other PKCS#11 tools.
//!
//! | alg | mechanisms |
//! |---|---|
//! | RS256/384/512 | `CKM_RSA_PKCS_KEY_PAIR_GEN`, `CKM_SHA256/384/512_RSA_PKCS` |
//! | PS256/384/512 | `CKM_RSA_PKCS_KEY_PAIR_GEN`, `CKM_SHA256/384/512_RSA_PKCS_PSS` (MGF1 of the same hash, salt length = hash length) |
//! | ES256/384/512 | `CKM_EC_KEY_PAIR_GEN` (P-256/384/521), `CKM_ECDSA` over the hash computed in-process; the `R ‖ S` answer is the JWS form (padded back if a token drops leading zeros) |
//! | EdDSA | `CKM_EC_EDWARDS_KEY_PAIR_GEN` (Ed25519), `CKM_EDDSA` |
//!
//! The token's mechanism list (`C_GetMechanismList`) is read when the
//! store connects; an algorithm whose mechanisms the token lacks is refused
//! with an error that names the missing mechanism.
//!
//! # The lifecycle on the token
//!
//! The same lifecycle ledger as every rotating store ([`KeyState`]: pending,
//! active, retiring, retired), kept in a `CKO_DATA` object written with write-then-swap (a new object with the
//! next generation, then the old ones destroyed), so that a crash leaves
//! the old or the new ledger, never a mix. Writes of several processes are
//! serialized by a lock object on the token, with compare-before-write
//! under it (PKCS#11 has no compare-and-swap; see `docs/backends/pkcs11.md`
//! for why and how): two processes running `rotate --if-due` rotate once,
//! and two plain rotations are two whole rotations. Retiring a key destroys
//! both halves (`C_DestroyObject`) as it leaves the JWKS.
//!
//! # Sessions and recovery
//!
//! A pool of up to [`max_sessions`](Pkcs11KeyStoreBuilder::max_sessions)
//! sessions, logged in once as the user; every call runs on a blocking
//! thread, bounded by [`timeout`](Pkcs11KeyStoreBuilder::timeout). A token
//! removed or a module failing mid-flight gives a retryable
//! [`Error::Backend`] (with a [`Pkcs11Error`]); the store reconnects when
//! the token is back — new sessions, a new login, the module initialized
//! again if it lost the token — without a restart.
//!
//! ```no_run
//! use jwt_core::Algorithm;
//! use jwt_keys::pkcs11::{Pin, Pkcs11KeyStore};
//! use jwt_keys::{KeyStore, KeyStoreExt, RotationPolicy};
//!
//! # async fn run() -> jwt_keys::Result<()> {
//! let store = Pkcs11KeyStore::builder("/usr/lib/softhsm/libsofthsm2.so", "jwtkit", "signing")
//!     .pin(Pin::from_file("/run/secrets/hsm-pin"))
//!     .build()?;
//! store.init(Algorithm::ES256, &RotationPolicy::default()).await?;
//! let token = store.sign_token(&serde_json::json!({"sub": "alice"}), None).await?;
//! # Ok(()) }
//! ```
//!
//! Token set-up, HSM notes, the least-privilege policy and the rotation
//! runbook are in `docs/backends/pkcs11.md`.

mod builder;
mod error;
mod lock;
mod mechanism;
mod module;
mod pin;
mod state;
mod token;
mod uri;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use cryptoki::mechanism::{Mechanism, MechanismType};
use jwt_core::time::UnixTime;
use jwt_core::{Algorithm, Clock, KeyFamily, VerifyingKey};

pub use self::builder::Pkcs11KeyStoreBuilder;
pub use self::error::Pkcs11Error;
use self::error::BACKEND;
use self::lock::StoreLock;
pub use self::pin::{Pin, MAX_PIN_FILE_BYTES};
use self::state::{key_id, kid_of, Snapshot};
pub use self::token::Pkcs11Stats;
use self::token::{ck, OpError, Retry, Token};
pub use self::uri::redact_pin;
use crate::error::{Error, Result};
use crate::lifecycle::{init_report, Ledger};
use crate::policy::RotationPolicy;
use crate::remote_store::{RemoteBackend, RemoteParts, WriteLock};
use crate::store::{KeyRecord, KeyState, KeyStore, RotationReport};

/// How many times a ledger that is not there is looked for again, and
/// the pause before each look (see `load`).
const LEDGER_REREADS: usize = 3;
const LEDGER_REREAD_PAUSE: std::time::Duration = std::time::Duration::from_millis(30);

/// A [`KeyStore`] whose private keys live on a PKCS#11 token. The module
/// docs describe the URI, the objects and the lifecycle on the token.
pub struct Pkcs11KeyStore {
    /// The store's name: the `CKA_LABEL` of its objects.
    object: String,
    token: Arc<Token>,
    rsa_bits: u32,
    lock_wait: Duration,
    lock_lease: Duration,
    /// Clock, cached state and write lock, as every remote store has them.
    parts: RemoteParts<Snapshot>,
    /// Public keys by kid: read once, kept (a key's material never changes).
    public_keys: Arc<RwLock<HashMap<String, VerifyingKey>>>,
    /// The nonce of the write lock this process holds, during a write.
    held: Mutex<Option<String>>,
}

impl fmt::Debug for Pkcs11KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11KeyStore")
            .field("location", &self.location())
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

fn keygen_mechanism(alg: Algorithm) -> Mechanism<'static> {
    match alg.family() {
        KeyFamily::Rsa => Mechanism::RsaPkcsKeyPairGen,
        KeyFamily::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
        _ => Mechanism::EccKeyPairGen,
    }
}

/// Sixteen random bytes: a new key's `CKA_ID`.
fn new_key_id() -> Result<Vec<u8>> {
    let mut id = vec![0u8; 16];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| {
        Pkcs11Error::invalid(
            "generate a key id",
            "this host",
            "the system random number generator failed",
            "check the host's entropy source",
        )
        .into_error_retryable(true)
    })?;
    Ok(id)
}

impl Pkcs11KeyStore {
    /// Counters of sessions, logins and recoveries since the store was built.
    pub fn stats(&self) -> Pkcs11Stats {
        self.token.stats()
    }

    /// The algorithms the token can generate and sign keys for, by its
    /// mechanism list (connects to the token if it has not yet).
    pub async fn supported_algorithms(&self) -> Result<Vec<Algorithm>> {
        self.token.check().await?;
        Ok(Algorithm::ALL
            .into_iter()
            .filter(|&a| self.mechanisms_missing(a).is_some_and(|m| m.is_empty()))
            .collect())
    }

    /// The mechanisms `alg` needs that the token lacks; `None` before the
    /// token's list is known or for an algorithm this store never signs.
    fn mechanisms_missing(&self, alg: Algorithm) -> Option<Vec<MechanismType>> {
        let (keygen, sign) = mechanism::mechanisms(alg)?;
        let conn = self.token.known_conn()?;
        Some(
            [keygen, sign]
                .into_iter()
                .filter(|m| !conn.has(*m))
                .collect(),
        )
    }

    /// Refuses `alg` when the token lacks one of its mechanisms, naming it.
    fn check_mechanisms(&self, alg: Algorithm) -> Result<()> {
        if mechanism::mechanisms(alg).is_none() {
            return Err(Error::invalid_config(
                "algorithm",
                format!(
                    "{alg} keys are shared secrets and cannot be published; the pkcs11 backend signs RS*, PS*, ES* and EdDSA"
                ),
            ));
        }
        let Some(missing) = self.mechanisms_missing(alg).filter(|m| !m.is_empty()) else {
            return Ok(());
        };
        let usable: Vec<&str> = Algorithm::ALL
            .iter()
            .filter(|&&a| self.mechanisms_missing(a).is_some_and(|m| m.is_empty()))
            .map(|a| a.as_str())
            .collect();
        Err(Error::invalid_config(
            "algorithm",
            format!(
                "{alg} needs {}, which {} does not offer (its C_GetMechanismList); algorithms it can sign: {}",
                missing
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
                self.token.describe(),
                if usable.is_empty() {
                    "none".to_owned()
                } else {
                    usable.join(", ")
                }
            ),
        ))
    }

    /// Generates a key pair for `alg` on the token; returns its kid. Its
    /// public key is read and cached now: it is published from the first
    /// listing.
    async fn generate(&self, alg: Algorithm) -> Result<String> {
        self.check_mechanisms(alg)?;
        let not_asymmetric = move || {
            Error::invalid_config("algorithm", format!("{alg} is not an asymmetric algorithm"))
        };
        if mechanism::templates(alg, self.rsa_bits, &self.object, &[0]).is_none() {
            return Err(not_asymmetric());
        }
        let (rsa_bits, label) = (self.rsa_bits, self.object.clone());
        let (kid, key) = self
            .token
            .run("generate a key pair", Retry::Checked, move |c| {
                // A new id at each try: a pair that an earlier try left half
                // made (the module lost the token during it) is named by no
                // ledger, and the next ledger write removes it.
                let id = new_key_id().map_err(OpError::Store)?;
                let k = kid_of(&id);
                let (public, private) = mechanism::templates(alg, rsa_bits, &label, &id)
                    .ok_or_else(|| OpError::Store(not_asymmetric()))?;
                if alg.family() == KeyFamily::Rsa {
                    let info = ck(
                        "C_GetMechanismInfo",
                        c.module
                            .get_mechanism_info(c.conn.slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN),
                    )?;
                    let bits = rsa_bits as usize;
                    if info.max_key_size() > 0
                        && !(info.min_key_size()..=info.max_key_size()).contains(&bits)
                    {
                        return Err(OpError::Store(Error::invalid_config(
                            "rsa_key_bits",
                            format!(
                                "{} generates RSA keys of {} to {} bits (CKM_RSA_PKCS_KEY_PAIR_GEN), not {bits}",
                                c.describe(),
                                info.min_key_size(),
                                info.max_key_size()
                            ),
                        )));
                    }
                }
                let (handle, _) = ck(
                    "C_GenerateKeyPair",
                    c
                        .generate(&keygen_mechanism(alg), &public, &private),
                )?;
                let attrs = ck(
                    "C_GetAttributeValue",
                    c
                        .attributes(handle, &mechanism::public_attributes(alg)),
                )?;
                let key = mechanism::parse_public(alg, &k, &attrs).map_err(|reason| {
                    OpError::Store(token::invalid(
                        "generate a key pair",
                        c.token_ref(),
                        format!(
                            "the token generated {} whose public key cannot be used: {reason}",
                            mechanism::key_description(alg, rsa_bits)
                        ),
                        "the token does not generate this key type as PKCS#11 specifies; choose another algorithm",
                        false,
                    ))
                })?;
                Ok((k, key))
            })
            .await?;
        tracing::debug!(store = %self.location(), %kid, %alg, "key pair generated on the token");
        self.public_keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kid.clone(), key);
        Ok(kid)
    }

    fn held_nonce(&self) -> Option<String> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl RemoteBackend for Pkcs11KeyStore {
    type Snapshot = Snapshot;
    const NAME: &'static str = BACKEND;
    const SERVICE: &'static str = "the PKCS#11 token";

    fn parts(&self) -> &RemoteParts<Snapshot> {
        &self.parts
    }

    fn location(&self) -> String {
        // The URI without its query: never a PIN.
        let object: String = self
            .object
            .bytes()
            .map(|b| match b {
                b'%' | b';' | b'?' | b'&' | b'#' | b' ' => format!("%{b:02X}"),
                b if b.is_ascii() && !b.is_ascii_control() => (b as char).to_string(),
                b => format!("%{b:02X}"),
            })
            .collect();
        format!("pkcs11:{};object={object}", self.token.selector_uri())
    }

    fn supports(&self, alg: Algorithm) -> bool {
        mechanism::mechanisms(alg).is_some()
            && self.mechanisms_missing(alg).is_none_or(|m| m.is_empty())
    }

    fn check_init(&self, alg: Algorithm, policy: &RotationPolicy) -> Result<()> {
        if mechanism::mechanisms(alg).is_none() {
            return self.check_mechanisms(alg);
        }
        if !policy.allows(alg) {
            return Err(Error::policy_violation(format!(
                "{alg} is not allowed by the policy"
            )));
        }
        Ok(())
    }

    async fn check_access(&self) -> Result<()> {
        self.token.check().await
    }

    async fn lock_writes(&self, operation: &'static str) -> Result<Option<WriteLock>> {
        let host_key = format!("{}\n{}", self.token.host_key(), self.object);
        let lock = lock::acquire(
            &self.token,
            &self.object,
            &host_key,
            operation,
            self.lock_wait,
            self.lock_lease,
        )
        .await?;
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(lock.holder.nonce.clone());
        Ok(Some(Box::new(lock)))
    }

    async fn unlock_writes(&self, lock: WriteLock) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Ok(lock) = lock.downcast::<StoreLock>() {
            (*lock).release().await;
        }
    }

    async fn load(&self, previous: Option<Arc<Snapshot>>) -> Result<Snapshot> {
        let read = || {
            let (label, cache) = (self.object.clone(), self.public_keys.clone());
            self.token
                .run("read the ledger", Retry::Idempotent, move |c| {
                    state::read_snapshot(c, &label, &cache)
                })
        };
        let mut snap = read().await?;
        // While another process swaps the ledger (writes the new generation,
        // destroys the old), SoftHSM's file store can show neither object
        // to a reader for a moment: a store that looks uninitialized is
        // looked at again before it is called so (a `rotate --if-due` from
        // two processes saw `not_initialized` in CI without this).
        for _ in 0..LEDGER_REREADS {
            if snap.ledger.is_some() {
                break;
            }
            tokio::time::sleep(LEDGER_REREAD_PAUSE).await;
            snap = read().await?;
        }
        // A writer of this host can hold its swap longer than those pauses
        // (a busy machine, an RSA key being generated), and SoftHSM hides
        // for good an object it read while it was being written: a store
        // whose keys are there without a ledger is read once more, from a
        // module initialized afresh, while no writer of this host writes
        // (this store's own write lock, when it holds it; else the host's
        // lock file). A store with no objects at all is simply not
        // initialized: initializing SoftHSM again is not free (and SoftHSM
        // 2.6 can abort in it while other processes add or delete tokens).
        if snap.ledger.is_none()
            && (snap.keys_without_ledger || previous.as_ref().is_some_and(|p| p.ledger.is_some()))
        {
            let quiet = match self.held_nonce() {
                Some(_) => None,
                None => {
                    let host_key = format!("{}\n{}", self.token.host_key(), self.object);
                    Some(lock::quiet(&self.token, &self.object, &host_key, self.lock_wait).await?)
                }
            };
            let again = match self.token.reload().await {
                Ok(()) => read().await,
                Err(e) => Err(e),
            };
            drop(quiet);
            snap = again?;
        }
        if snap.ledger.is_none() && previous.is_some_and(|p| p.ledger.is_some()) {
            // A ledger does not vanish: the token was swapped or reset, or
            // someone deleted the store's objects.
            return Err(token::invalid(
                "read the ledger",
                &self.token,
                format!("the ledger of `{}` was there and is gone", self.object),
                "check that the token is the store's (a replaced or re-initialized token?); tokens signed before keep verifying from the cached keys",
                true,
            ));
        }
        Ok(snap)
    }

    async fn sign_remote(
        &self,
        _: &Snapshot,
        key: &KeyRecord,
        signing_input: &[u8],
    ) -> Result<Vec<u8>> {
        let alg = key.alg;
        let id = key_id(&key.kid).ok_or_else(|| Error::UnknownKey {
            kid: key.kid.clone(),
        })?;
        if mechanism::sign_mechanism(alg).is_none() {
            return Err(Error::invalid_config(
                "algorithm",
                format!("the pkcs11 backend does not sign {alg}"),
            ));
        }
        if let Some(missing) = self.mechanisms_missing(alg).filter(|m| !m.is_empty()) {
            return Err(self.check_mechanisms(alg).err().unwrap_or_else(|| {
                Error::invalid_config("algorithm", format!("{alg} needs {missing:?}"))
            }));
        }
        let data = mechanism::to_be_signed(alg, signing_input);
        let (label, kid) = (self.object.clone(), key.kid.clone());
        let signature = self
            .token
            .run("sign", Retry::Idempotent, move |c| {
                let handle = c.private_key(&label, &id)?.ok_or_else(|| {
                    OpError::Store(Error::corrupt_state(format!(
                        "the private key of the active key `{kid}` is not on {}; someone removed it. Rotate to a new key (tokens it signed keep verifying)",
                        c.describe()
                    )))
                })?;
                // Built here: mechanism parameters hold raw pointers (not `Send`).
                let Some(mechanism) = mechanism::sign_mechanism(alg) else {
                    return Err(OpError::Store(Error::invalid_config(
                        "algorithm",
                        format!("the pkcs11 backend does not sign {alg}"),
                    )));
                };
                ck("C_Sign", c.sign(&mechanism, handle, &data))
            })
            .await?;
        mechanism::to_jose(alg, signature).map_err(|detail| {
            token::invalid(
                "sign",
                &self.token,
                detail,
                "the token's signature is not in the form PKCS#11 specifies",
                false,
            )
        })
    }

    fn refuse_signature(&self, key: &KeyRecord, reason: jwt_core::Error) -> Error {
        token::invalid(
            "sign",
            &self.token,
            format!(
                "the {} signature does not verify with {}'s public key ({reason}); refusing to use it",
                key.alg, key.kid
            ),
            "the token signed with another key or mechanism parameter than asked (a PSS salt length other than the hash length?); report it to the HSM's vendor",
            false,
        )
    }

    async fn init_remote(
        &self,
        snap: &Snapshot,
        alg: Algorithm,
        policy: &RotationPolicy,
        now: UnixTime,
    ) -> Result<RotationReport> {
        if snap.ledger.is_some() {
            return Err(Error::AlreadyInitialized {
                backend: BACKEND,
                location: self.location(),
            });
        }
        self.check_mechanisms(alg)?;
        // Keys labelled as the store but without a ledger are leftovers of
        // an `init` that stopped half-way (it wrote its marker first) —
        // or someone else's keys, which the store never takes over: its
        // retirements would later destroy them.
        let (label, init_started) = (self.object.clone(), snap.init_started);
        self.token
            .run("prepare the store", Retry::Write, move |c| {
                let keys = state::key_objects(c, &label)?;
                if !keys.is_empty() && !init_started {
                    return Err(OpError::Store(Error::invalid_config(
                        "object",
                        format!(
                            "{} already holds {} key objects labelled `{label}` that this store did not create; init never takes over keys, because its retirements would later destroy them. Choose another store name (object= in the URI), or delete those objects if nobody uses them (pkcs11-tool --delete-object --label '{label}' …)",
                            c.describe(),
                            keys.len()
                        ),
                    )));
                }
                for (handle, _, _) in keys {
                    state::destroy(c, handle)?;
                }
                if !init_started {
                    state::create_data(c, &label, state::APP_INIT, b"jwtkit store init began here; the ledger replaces this object when it completes")?;
                }
                Ok(())
            })
            .await?;
        let active = self.generate(alg).await?;
        let pending = self.generate(alg).await?;
        let ledger = Ledger::new(policy.clone(), alg, now, &active, &pending)?;
        let (label, nonce) = (self.object.clone(), self.held_nonce());
        let written = self
            .token
            .run("write the ledger", Retry::Checked, move |c| {
                let objects = state::ledger_objects(c, &label)?;
                if let Some(current) = state::current(&objects).0 {
                    // Ours when an earlier try of this write (`Retry::Checked`)
                    // reached the token after all.
                    return Ok(current == ledger);
                }
                if let Some(n) = &nonce {
                    if !lock::held(c, &label, n)? {
                        return Ok(false);
                    }
                }
                state::write_ledger(c, &label, 1, &ledger)?;
                for h in state::data_objects(c, &label, state::APP_INIT)? {
                    state::destroy(c, h)?;
                }
                Ok(true)
            })
            .await?;
        if !written {
            return Err(Error::AlreadyInitialized {
                backend: BACKEND,
                location: self.location(),
            });
        }
        tracing::info!(store = %self.location(), %active, %pending, %alg, "pkcs11 key store initialized");
        Ok(init_report(active, pending))
    }

    async fn create_key(
        &self,
        _: &Snapshot,
        alg: Algorithm,
        _: UnixTime,
        _: usize,
    ) -> Result<Option<String>> {
        // Under the write lock: the snapshot is the newest, no other
        // process rotates meanwhile.
        Ok(Some(self.generate(alg).await?))
    }

    async fn commit(
        &self,
        snap: &Snapshot,
        before: &Ledger,
        after: &Ledger,
        _: UnixTime,
    ) -> Result<bool> {
        let ids = |pred: &dyn Fn(&KeyRecord) -> bool| -> HashSet<Vec<u8>> {
            after
                .keys
                .iter()
                .filter(|r| pred(r))
                .filter_map(|r| key_id(&r.kid))
                .collect()
        };
        let retired_now = ids(&|r| {
            r.state == KeyState::Retired
                && before
                    .get(&r.kid)
                    .is_some_and(|b| b.state != KeyState::Retired)
        });
        let live = ids(&|r| r.state != KeyState::Retired);
        let (label, nonce, generation) = (self.object.clone(), self.held_nonce(), snap.generation);
        // A ledger whose generation cannot grow (written by another client:
        // ours count from 1) is a damaged store, never an overflow.
        let Some(next) = generation.checked_add(1).filter(|n| *n < u64::MAX / 2) else {
            return Err(Error::CorruptState {
                reason: format!(
                    "the ledger of {} has generation {generation}, which jwtkit never writes \
                     (another PKCS#11 client wrote it); delete that ledger object (`pkcs11-tool \
                     --delete-object --type data --application-label 'jwtkit ledger' --label \
                     {}`) once you know which generation is genuine",
                    self.location(),
                    self.object
                ),
            });
        };
        let after = after.clone();
        let location = self.location();
        self.token
            .run("write the ledger", Retry::Checked, move |c| {
                // Compare before writing: the generation read under the lock
                // is still the newest, and the lock is still this process's.
                let objects = state::ledger_objects(c, &label)?;
                match state::current(&objects) {
                    // An earlier try of this write (`Retry::Checked`) reached
                    // the token after all: done (the next write removes what
                    // its swap left).
                    (Some(current), g) if g == next && current == after => return Ok(true),
                    (_, g) if g != generation => return Ok(false),
                    _ => {}
                }
                if let Some(n) = &nonce {
                    if !lock::held(c, &label, n)? {
                        tracing::warn!(store = %location, "the write lock was taken from this process as abandoned; not writing");
                        return Ok(false);
                    }
                }
                // The retired keys' objects go first: once the ledger says
                // a key is retired, its private key is gone.
                let keys = state::key_objects(c, &label)?;
                for (handle, _, id) in &keys {
                    if retired_now.contains(id) {
                        state::destroy(c, *handle)?;
                        c.forget_key(id);
                    }
                }
                let new = state::write_ledger(c, &label, next, &after)?;
                // The swap's second half, and leftovers of writes that
                // crashed (keys no ledger names, init markers); a failure
                // here is cleaned up by the next write.
                let cleanup = || -> std::result::Result<(), OpError> {
                    for o in objects.iter().filter(|o| o.handle != new) {
                        state::destroy(c, o.handle)?;
                    }
                    for (handle, _, id) in &keys {
                        if !live.contains(id) && !retired_now.contains(id) {
                            tracing::info!(store = %location, kid = %kid_of(id), "removing a key object no ledger names (left by an interrupted rotation)");
                            state::destroy(c, *handle)?;
                        }
                    }
                    for h in state::data_objects(c, &label, state::APP_INIT)? {
                        state::destroy(c, h)?;
                    }
                    Ok(())
                };
                if let Err(e) = cleanup() {
                    let detail = match e {
                        OpError::Call(op, e) => format!("{op}: {e}"),
                        OpError::Store(e) => e.to_string(),
                    };
                    tracing::warn!(store = %location, error = %detail, "the new ledger is written; removing the old one failed and is retried at the next write");
                }
                Ok(true)
            })
            .await
    }
}

/// The `pkcs11:` URI scheme (RFC 7512), as [`Pkcs11KeyStore::builder_from_uri`]
/// reads it. Nothing is loaded until the first call.
pub(crate) fn open_uri(_rest: &str, uri: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn KeyStore>> {
    match Pkcs11KeyStore::builder_from_uri(uri)?.clock(clock).build() {
        Ok(s) => Ok(Arc::new(s)),
        Err(Error::InvalidConfig { reason, .. }) => {
            Err(Error::invalid_uri(&redact_pin(uri), reason))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An algorithm whose mechanisms the token lacks (by its mechanism
    /// list) is refused with an error that names them and the algorithms
    /// the token can sign.
    #[test]
    fn an_algorithm_the_token_lacks_is_refused_naming_the_mechanism() {
        let store = Pkcs11KeyStore::builder("/usr/lib/softhsm/libsofthsm2.so", "t", "o")
            .build()
            .unwrap();
        // Before the token's list is known, nothing is refused yet.
        assert!(store.supports(Algorithm::EdDSA));
        store.token.set_mechanisms_for_tests(vec![
            MechanismType::ECC_KEY_PAIR_GEN,
            MechanismType::ECDSA,
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::SHA256_RSA_PKCS,
        ]);
        let err = store.check_mechanisms(Algorithm::EdDSA).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidConfig, "{text}");
        assert!(
            text.contains("CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA"),
            "{text}"
        );
        assert!(
            text.contains("algorithms it can sign: RS256, ES256, ES384, ES512"),
            "{text}"
        );
        let err = store.check_mechanisms(Algorithm::PS256).unwrap_err();
        assert!(err.to_string().contains("CKM_SHA256_RSA_PKCS_PSS"), "{err}");
        assert!(!store.supports(Algorithm::PS256));
        assert!(store.supports(Algorithm::ES384));
        store.check_mechanisms(Algorithm::RS256).unwrap();
        let err = store.check_mechanisms(Algorithm::HS256).unwrap_err();
        assert!(err.to_string().contains("shared secrets"), "{err}");
    }

    /// The store's location is its URI without the query (never a PIN),
    /// percent-encoded where RFC 7512 needs it.
    #[test]
    fn the_location_never_holds_the_query() {
        let store = Pkcs11KeyStore::builder_from_uri(
            "pkcs11:token=My%20HSM;serial=42;object=jwt%3Bsigning?module-path=/m.so&pin-value=1234",
        )
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(
            store.location(),
            "pkcs11:token=My%20HSM;serial=42;object=jwt%3Bsigning"
        );
        assert!(!format!("{store:?}").contains("1234"));
    }
}
