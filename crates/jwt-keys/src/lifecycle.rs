//! The one lifecycle state machine of every rotating backend: a ledger of
//! key records plus the policy, with pure transitions. Memory and file keep
//! the ledger itself; Vault and KMS rebuild it from their remote state, run
//! the same transitions and write the record changes back (Vault as one
//! metadata document, KMS as tags and aliases), so every backend rotates,
//! retires and warns the same way.

use jwt_core::time::{secs, UnixTime};
use jwt_core::{Algorithm, Jwk, Jwks, KeyFamily, SigningKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::policy::RotationPolicy;
use crate::store::{KeyRecord, KeyState, RotationReport};

/// The ledger format version written by this crate.
pub(crate) const LEDGER_VERSION: u32 = 1;

/// The store's metadata: its policy and every key it ever had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ledger {
    pub(crate) version: u32,
    pub(crate) policy: RotationPolicy,
    pub(crate) keys: Vec<KeyRecord>,
}

/// Generates a key for `alg`, named by its RFC 7638 thumbprint (unique by
/// construction, so a `kid` is never reused) and bound to `alg`.
pub(crate) fn generate_key(alg: Algorithm) -> Result<(String, SigningKey)> {
    if alg.family() == KeyFamily::Hmac {
        return Err(Error::invalid_config(
            "algorithm",
            format!(
            "{alg} keys are shared secrets and cannot be published in a JWKS; rotating stores hold \
             asymmetric keys (ES256, EdDSA, PS256, …) — use the env backend for an HMAC secret"
        ),
        ));
    }
    let key = SigningKey::generate(alg)?;
    key.check_usable(alg)?;
    let kid = key.thumbprint()?;
    let key = key.with_kid(kid.clone()).with_algorithm(alg)?;
    Ok((kid, key))
}

/// `true` for kids this crate can use as file names: base64url characters
/// only (what RFC 7638 thumbprints are), 1–128 of them.
pub(crate) fn kid_is_safe(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 128
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Ledger {
    /// A new ledger with an active key and its pending successor.
    pub(crate) fn new(
        policy: RotationPolicy,
        alg: Algorithm,
        now: UnixTime,
        active: &str,
        pending: &str,
    ) -> Result<Ledger> {
        if !policy.allows(alg) {
            return Err(Error::policy_violation(format!(
                "{alg} is not allowed by the policy (allowed: {})",
                names(policy.allowed_algorithms())
            )));
        }
        let mut a = KeyRecord::new(active, alg, KeyState::Active);
        a.created_at = Some(now);
        a.activated_at = Some(now);
        let mut p = KeyRecord::new(pending, alg, KeyState::Pending);
        p.created_at = Some(now);
        Ok(Ledger {
            version: LEDGER_VERSION,
            policy,
            keys: vec![a, p],
        })
    }

    /// The public JWKs of the keys that verify at `now` (pending, active,
    /// retiring within grace), in ledger order; `public` gives a key's JWK
    /// (`None` skips a key whose material the backend does not hold).
    pub(crate) fn verification_keys(
        &self,
        now: UnixTime,
        public: impl Fn(&KeyRecord) -> Option<Jwk>,
    ) -> Jwks {
        Jwks {
            keys: self
                .keys
                .iter()
                .filter(|r| r.state_at(now).is_published())
                .filter_map(public)
                .collect(),
        }
    }

    /// Checks the invariants; the error says what is wrong.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        if self.version != LEDGER_VERSION {
            return Err(format!(
                "format version {} is not supported (this build reads version {LEDGER_VERSION})",
                self.version
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.keys {
            if !kid_is_safe(&r.kid) {
                return Err(format!(
                    "kid {:?} is not a base64url string of 1-128 characters",
                    r.kid
                ));
            }
            if !seen.insert(r.kid.as_str()) {
                return Err(format!(
                    "kid `{}` appears twice; a kid names one key",
                    r.kid
                ));
            }
            if r.state == KeyState::Retiring && r.retire_at.is_none() {
                return Err(format!("retiring key `{}` has no retire_at", r.kid));
            }
        }
        let count = |s: KeyState| self.keys.iter().filter(|r| r.state == s).count();
        match count(KeyState::Active) {
            1 => {}
            n => return Err(format!("{n} keys are active; exactly one must be")),
        }
        match count(KeyState::Pending) {
            1 => {}
            n => return Err(format!("{n} keys are pending; exactly one must be")),
        }
        Ok(())
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&KeyRecord> {
        self.keys.iter().find(|r| r.kid == kid)
    }

    fn find(&self, state: KeyState) -> Option<&KeyRecord> {
        self.keys.iter().find(|r| r.state == state)
    }

    /// The active key's record (the invariants guarantee one).
    pub(crate) fn active(&self) -> Option<&KeyRecord> {
        self.find(KeyState::Active)
    }

    /// The records with their state as of `now`.
    pub(crate) fn list(&self, now: UnixTime) -> Vec<KeyRecord> {
        self.keys
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.has_private_key = r.state != KeyState::Retired;
                r.state = r.state_at(now);
                r
            })
            .collect()
    }

    /// Marks retiring keys past their grace as retired; returns their kids.
    pub(crate) fn retire_expired(&mut self, now: UnixTime) -> Vec<String> {
        let mut out = Vec::new();
        for r in &mut self.keys {
            if r.state == KeyState::Retiring && r.state_at(now) == KeyState::Retired {
                r.state = KeyState::Retired;
                r.has_private_key = false;
                out.push(r.kid.clone());
            }
        }
        out
    }

    /// The active key's kid, if it is still `if_active` (when given): the
    /// compare-and-swap of conditional rotations, checked by remote
    /// backends before they create the next key, and again by
    /// [`rotate`](Self::rotate).
    pub(crate) fn check_active(&self, if_active: Option<&str>) -> Result<String> {
        let active = self
            .active()
            .map(|r| r.kid.clone())
            .ok_or_else(|| Error::corrupt_state("the store has no active key"))?;
        match if_active {
            Some(expected) if expected != active => Err(Error::Conflict {
                expected: expected.to_owned(),
                actual: active,
            }),
            _ => Ok(active),
        }
    }

    /// pending → active, active → retiring, `new_pending` → pending.
    pub(crate) fn rotate(
        &mut self,
        now: UnixTime,
        if_active: Option<&str>,
        new_pending: &str,
        alg: Algorithm,
    ) -> Result<RotationReport> {
        let Some(pending) = self.find(KeyState::Pending).map(|r| r.kid.clone()) else {
            return Err(Error::corrupt_state(
                "the store has no active or no pending key",
            ));
        };
        let active = self.check_active(if_active)?;
        if self.get(new_pending).is_some() {
            // Thumbprints of fresh keys do not collide; this is a bug or an attack.
            return Err(Error::corrupt_state(format!(
                "kid `{new_pending}` already exists; refusing to reuse a kid"
            )));
        }
        let retired = self.retire_expired(now);
        let grace = secs(self.policy.verify_grace());
        let retire_at = now.saturating_add(grace);
        let mut published_for = None;
        for r in &mut self.keys {
            if r.kid == active {
                r.state = KeyState::Retiring;
                r.retiring_at = Some(now);
                r.retire_at = Some(retire_at);
            } else if r.kid == pending {
                r.state = KeyState::Active;
                r.activated_at = Some(now);
                published_for = Some(now - r.created_at.unwrap_or(now));
            }
        }
        let mut p = KeyRecord::new(new_pending, alg, KeyState::Pending);
        p.created_at = Some(now);
        self.keys.push(p);
        if published_for.unwrap_or(0) < secs(self.policy.prepublish()) {
            tracing::warn!(
                active = %pending,
                published_for_secs = published_for.unwrap_or(0),
                prepublish_secs = secs(self.policy.prepublish()),
                "the new signing key was published for less than the policy's prepublish time; \
                 verifiers with a cached JWKS may not know it yet"
            );
        }
        Ok(RotationReport {
            previous: Some(active),
            active: pending,
            pending: new_pending.to_owned(),
            previous_retire_at: Some(retire_at),
            retired,
            published_for_secs: published_for,
        })
    }

    /// The algorithm for the next key: the active key's, if still allowed,
    /// else the first allowed asymmetric one.
    pub(crate) fn next_algorithm(&self) -> Algorithm {
        self.next_algorithm_where(|a| !a.is_symmetric())
    }

    /// Like [`next_algorithm`](Self::next_algorithm), for a backend that
    /// can create keys only for the algorithms `supported` accepts.
    pub(crate) fn next_algorithm_where(&self, supported: impl Fn(Algorithm) -> bool) -> Algorithm {
        match self.active() {
            Some(a) if self.policy.allows(a.alg) => a.alg,
            _ => self
                .policy
                .allowed_algorithms()
                .iter()
                .copied()
                .find(|&a| supported(a))
                .unwrap_or(Algorithm::ES256),
        }
    }
}

fn names(algs: &[Algorithm]) -> String {
    algs.iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report of `init`: `active` signs, `pending` is published.
pub(crate) fn init_report(active: String, pending: String) -> RotationReport {
    RotationReport {
        previous: None,
        active,
        pending,
        previous_retire_at: None,
        retired: Vec::new(),
        published_for_secs: None,
    }
}

/// The one log line of a rotation, the same for every backend.
pub(crate) fn log_rotation(store: &str, report: &RotationReport) {
    tracing::info!(
        store,
        previous = report.previous.as_deref().unwrap_or("-"),
        active = %report.active,
        pending = %report.pending,
        retire_at = report.previous_retire_at.unwrap_or_default(),
        retired = ?report.retired,
        "key rotated"
    );
}
