//! The rotation policy a security team puts on a store, and the audit that
//! checks a store against it.

use std::fmt;
use std::time::Duration;

use jwt_core::time::{secs, UnixTime};
use jwt_core::{Algorithm, KeySet};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{KeyRecord, KeyState};

const DAY: u64 = 24 * 3600;

/// When keys rotate and how long they stay published. Build it with
/// [`RotationPolicy::builder`]; the build refuses contradictory settings.
///
/// | knob | meaning | default | maximum |
/// |---|---|---|---|
/// | `rotate_after` | maximum time a key signs | 30 days | 5 years |
/// | `prepublish` | minimum time a pending key is published before it signs; cover your verifiers' JWKS cache TTL | 1 day | `rotate_after` |
/// | `max_token_lifetime` | the longest `exp - iat` of tokens signed with the store | 1 hour | 365 days |
/// | `leeway` | clock skew verifiers tolerate | 5 minutes | 1 day |
/// | `verify_grace` | how long a former signer still verifies; at least `max_token_lifetime + leeway` | 1 day | 5 years |
/// | `allowed_algorithms` | algorithms keys may use | every asymmetric algorithm | |
///
/// ```
/// use std::time::Duration;
/// use jwt_core::Algorithm;
/// use jwt_keys::RotationPolicy;
///
/// let policy = RotationPolicy::builder()
///     .rotate_after(Duration::from_secs(7 * 86400))
///     .max_token_lifetime(Duration::from_secs(3600))
///     .verify_grace(Duration::from_secs(2 * 3600))
///     .allowed_algorithms([Algorithm::ES256, Algorithm::EdDSA])
///     .build()?;
/// assert_eq!(policy.verify_grace(), Duration::from_secs(7200));
///
/// // A grace shorter than the tokens it must cover is refused.
/// let err = RotationPolicy::builder()
///     .max_token_lifetime(Duration::from_secs(3600))
///     .verify_grace(Duration::from_secs(600))
///     .build()
///     .unwrap_err();
/// assert_eq!(err.kind(), jwt_keys::ErrorKind::InvalidConfig);
/// # Ok::<(), jwt_keys::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyRepr", into = "PolicyRepr")]
pub struct RotationPolicy {
    rotate_after: u64,
    prepublish: u64,
    verify_grace: u64,
    max_token_lifetime: u64,
    leeway: u64,
    allowed_algorithms: Vec<Algorithm>,
}

/// The serialized form (seconds), validated on the way in.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRepr {
    rotate_after_secs: u64,
    prepublish_secs: u64,
    verify_grace_secs: u64,
    max_token_lifetime_secs: u64,
    leeway_secs: u64,
    allowed_algorithms: Vec<Algorithm>,
}

impl TryFrom<PolicyRepr> for RotationPolicy {
    type Error = Error;
    fn try_from(r: PolicyRepr) -> Result<Self> {
        RotationPolicyBuilder {
            policy: RotationPolicy {
                rotate_after: r.rotate_after_secs,
                prepublish: r.prepublish_secs,
                verify_grace: r.verify_grace_secs,
                max_token_lifetime: r.max_token_lifetime_secs,
                leeway: r.leeway_secs,
                allowed_algorithms: r.allowed_algorithms,
            },
        }
        .build()
    }
}

impl From<RotationPolicy> for PolicyRepr {
    fn from(p: RotationPolicy) -> Self {
        PolicyRepr {
            rotate_after_secs: p.rotate_after,
            prepublish_secs: p.prepublish,
            verify_grace_secs: p.verify_grace,
            max_token_lifetime_secs: p.max_token_lifetime,
            leeway_secs: p.leeway,
            allowed_algorithms: p.allowed_algorithms,
        }
    }
}

/// Every asymmetric algorithm: the ones whose keys can be published.
const ASYMMETRIC: [Algorithm; 10] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
];

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            rotate_after: 30 * DAY,
            prepublish: DAY,
            verify_grace: DAY,
            max_token_lifetime: 3600,
            leeway: 300,
            allowed_algorithms: ASYMMETRIC.to_vec(),
        }
    }
}

impl RotationPolicy {
    /// A builder starting from the defaults.
    pub fn builder() -> RotationPolicyBuilder {
        RotationPolicyBuilder {
            policy: RotationPolicy::default(),
        }
    }

    /// Maximum time a key signs before it is due for rotation.
    pub fn rotate_after(&self) -> Duration {
        Duration::from_secs(self.rotate_after)
    }

    /// Minimum time a pending key is published before it may sign.
    pub fn prepublish(&self) -> Duration {
        Duration::from_secs(self.prepublish)
    }

    /// How long a former signing key still verifies after a rotation.
    pub fn verify_grace(&self) -> Duration {
        Duration::from_secs(self.verify_grace)
    }

    /// The longest lifetime of tokens signed with the store.
    pub fn max_token_lifetime(&self) -> Duration {
        Duration::from_secs(self.max_token_lifetime)
    }

    /// The longest `rotate_after` a policy accepts: 5 years.
    pub const MAX_ROTATE_AFTER: Duration = Duration::from_secs(5 * 365 * DAY);
    /// The longest `verify_grace` a policy accepts: 5 years.
    pub const MAX_VERIFY_GRACE: Duration = Duration::from_secs(5 * 365 * DAY);
    /// The longest `max_token_lifetime` a policy accepts: 365 days.
    pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * DAY);
    /// The largest `leeway` a policy accepts: 1 day.
    pub const MAX_LEEWAY: Duration = Duration::from_secs(DAY);

    /// The clock skew verifiers tolerate.
    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.leeway)
    }

    /// The algorithms keys may use.
    pub fn allowed_algorithms(&self) -> &[Algorithm] {
        &self.allowed_algorithms
    }

    /// `true` when `alg` is allowed.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.allowed_algorithms.contains(&alg)
    }
}

/// Builds a [`RotationPolicy`]; [`build`](Self::build) refuses contradictory settings.
#[derive(Debug, Clone)]
pub struct RotationPolicyBuilder {
    policy: RotationPolicy,
}

impl RotationPolicyBuilder {
    /// Maximum time a key signs (must be above zero).
    pub fn rotate_after(mut self, d: Duration) -> Self {
        self.policy.rotate_after = d.as_secs();
        self
    }

    /// Minimum time a pending key is published before it signs. Choose at
    /// least the longest JWKS cache TTL of your verifiers.
    pub fn prepublish(mut self, d: Duration) -> Self {
        self.policy.prepublish = d.as_secs();
        self
    }

    /// How long a former signer still verifies; at least
    /// `max_token_lifetime + leeway`.
    pub fn verify_grace(mut self, d: Duration) -> Self {
        self.policy.verify_grace = d.as_secs();
        self
    }

    /// The longest lifetime of tokens signed with the store.
    pub fn max_token_lifetime(mut self, d: Duration) -> Self {
        self.policy.max_token_lifetime = d.as_secs();
        self
    }

    /// The clock skew verifiers tolerate.
    pub fn leeway(mut self, d: Duration) -> Self {
        self.policy.leeway = d.as_secs();
        self
    }

    /// The algorithms keys may use (replaces the default list).
    pub fn allowed_algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        let mut algs: Vec<Algorithm> = algs.into_iter().collect();
        algs.sort();
        algs.dedup();
        self.policy.allowed_algorithms = algs;
        self
    }

    /// Checks each setting against its range and the settings against each
    /// other.
    pub fn build(self) -> Result<RotationPolicy> {
        let p = self.policy;
        for (setting, value, max) in [
            (
                "rotate_after",
                p.rotate_after,
                RotationPolicy::MAX_ROTATE_AFTER,
            ),
            (
                "verify_grace",
                p.verify_grace,
                RotationPolicy::MAX_VERIFY_GRACE,
            ),
            (
                "max_token_lifetime",
                p.max_token_lifetime,
                RotationPolicy::MAX_TOKEN_LIFETIME,
            ),
            ("leeway", p.leeway, RotationPolicy::MAX_LEEWAY),
        ] {
            if value > max.as_secs() {
                return Err(Error::invalid_config(
                    setting,
                    format!(
                    "{setting} ({value}s) is over its maximum of {}s ({} days); choose a shorter duration",
                    max.as_secs(),
                    max.as_secs() / DAY
                )));
            }
        }
        if p.rotate_after == 0 {
            return Err(Error::invalid_config(
                "rotate_after",
                "rotate_after must be above zero (it is the maximum time a key signs)",
            ));
        }
        if p.max_token_lifetime == 0 {
            return Err(Error::invalid_config(
                "max_token_lifetime",
                "max_token_lifetime must be at least 1s: a store that allows no lifetime can sign no \
                 token (every token would expire when it is signed)",
            ));
        }
        let needed = p.max_token_lifetime.saturating_add(p.leeway);
        if p.verify_grace < needed {
            return Err(Error::invalid_config(
                "verify_grace",
                format!(
                "verify_grace ({}s) is shorter than max_token_lifetime + leeway ({}s + {}s): tokens signed just \
                 before a rotation would be refused before they expire; raise verify_grace to at least {needed}s",
                p.verify_grace, p.max_token_lifetime, p.leeway
            )));
        }
        if p.prepublish > p.rotate_after {
            return Err(Error::invalid_config(
                "prepublish",
                format!(
                "prepublish ({}s) is longer than rotate_after ({}s): a pending key is created at each rotation, \
                 so it could never be published long enough before the next one is due",
                p.prepublish, p.rotate_after
            )));
        }
        if p.allowed_algorithms.is_empty() {
            return Err(Error::invalid_config(
                "allowed_algorithms",
                "allowed_algorithms is empty; name the algorithms keys may use (e.g. ES256)",
            ));
        }
        Ok(p)
    }
}

/// One way a store departs from its policy.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// The active key has signed for longer than `rotate_after`.
    ActiveTooOld {
        /// The active key.
        kid: String,
        /// How long it has signed.
        age_secs: i64,
        /// The policy's limit.
        rotate_after_secs: i64,
    },
    /// A key's grace has ended but its private key still exists (it was
    /// not retired on record).
    RetiringPastGrace {
        /// The key.
        kid: String,
        /// When its grace ended.
        retire_at: UnixTime,
    },
    /// A key uses an algorithm the policy does not allow.
    DisallowedAlgorithm {
        /// The key.
        kid: String,
        /// Its algorithm.
        alg: Algorithm,
    },
    /// A key is too weak for its algorithm (short HMAC secret, small RSA modulus).
    WeakKey {
        /// The key.
        kid: String,
        /// Why.
        reason: String,
    },
    /// The store has no active key.
    NoActiveKey,
    /// The store has more than one active key.
    SeveralActiveKeys {
        /// The active keys.
        kids: Vec<String>,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::ActiveTooOld { kid, age_secs, rotate_after_secs } => write!(
                f,
                "active key `{kid}` has signed for {age_secs}s, over rotate_after ({rotate_after_secs}s): \
                 rotate with `jwtkit store rotate --if-due URI` (library: `KeyStoreExt::rotate_if_due`)"
            ),
            Finding::RetiringPastGrace { kid, retire_at } => write!(
                f,
                "retiring key `{kid}` is kept past its grace (ended at {retire_at}): destroy it with \
                 `jwtkit store rotate --if-due URI`, which retires every key past its grace and \
                 rotates only if a rotation is due (library: `KeyStore::retire_expired`)"
            ),
            Finding::DisallowedAlgorithm { kid, alg } => {
                write!(f, "key `{kid}` uses {alg}, which the policy does not allow")
            }
            Finding::WeakKey { kid, reason } => write!(f, "key `{kid}` is weak: {reason}"),
            Finding::NoActiveKey => f.write_str("the store has no active key"),
            Finding::SeveralActiveKeys { kids } => {
                write!(f, "the store has several active keys: {kids:?}")
            }
        }
    }
}

/// The result of [`KeyStoreExt::audit`](crate::KeyStoreExt::audit): the
/// findings, and what happens next (when the next rotation is due, which
/// key will sign after it).
///
/// Serialized (`jwtkit store audit --json`) as
/// `{"now":…,"findings":[…],"active":KID|null,"next_rotation_at":T|null,"next_signer":KID|null}`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// The time of the audit.
    pub now: UnixTime,
    /// What departs from the policy; empty when all is well.
    pub findings: Vec<Finding>,
    /// The key that signs now (`None` without exactly one active key).
    pub active: Option<String>,
    /// When [`rotate_if_due`](crate::KeyStoreExt::rotate_if_due) will next
    /// rotate: `rotate_after` after the active key started signing, or
    /// later if the pending key has not been published for `prepublish` by
    /// then. At or before [`now`](Self::now) when a rotation is overdue;
    /// `None` when the store records no times (keys from the environment)
    /// or has no pending key.
    pub next_rotation_at: Option<UnixTime>,
    /// The pending key: it signs after the next rotation (`None` when the
    /// store has none).
    pub next_signer: Option<String>,
}

impl AuditReport {
    /// `true` when there are no findings.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

pub(crate) fn audit(
    now: UnixTime,
    policy: &RotationPolicy,
    records: &[KeyRecord],
    keys: &KeySet,
) -> AuditReport {
    let mut findings = Vec::new();
    let pending = records
        .iter()
        .find(|r| r.state_at(now) == KeyState::Pending);
    let active: Vec<&KeyRecord> = records
        .iter()
        .filter(|r| r.state_at(now) == KeyState::Active)
        .collect();
    match active.as_slice() {
        [] => findings.push(Finding::NoActiveKey),
        [one] => {
            if let Some(since) = one.activated_at.or(one.created_at) {
                let age = now - since;
                if age > secs(policy.rotate_after()) {
                    findings.push(Finding::ActiveTooOld {
                        kid: one.kid.clone(),
                        age_secs: age,
                        rotate_after_secs: secs(policy.rotate_after()),
                    });
                }
            }
        }
        many => findings.push(Finding::SeveralActiveKeys {
            kids: many.iter().map(|r| r.kid.clone()).collect(),
        }),
    }
    for r in records {
        if r.state_at(now) == KeyState::Retired && r.has_private_key {
            findings.push(Finding::RetiringPastGrace {
                kid: r.kid.clone(),
                retire_at: r.retire_at.unwrap_or(now),
            });
        }
        if !r.state_at(now).is_published() {
            continue;
        }
        if !policy.allows(r.alg) {
            findings.push(Finding::DisallowedAlgorithm {
                kid: r.kid.clone(),
                alg: r.alg,
            });
        }
        if let Some(key) = keys.get(&r.kid) {
            if let Err(e) = key.check_usable(r.alg) {
                if e.kind() == jwt_core::ErrorKind::WeakKey {
                    findings.push(Finding::WeakKey {
                        kid: r.kid.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    let (active_kid, next_rotation_at) = match active.as_slice() {
        [one] => (Some(one.kid.clone()), next_rotation(policy, one, pending)),
        _ => (None, None),
    };
    AuditReport {
        now,
        findings,
        active: active_kid,
        next_rotation_at,
        next_signer: pending.map(|p| p.kid.clone()),
    }
}

/// When `rotate_if_due` rotates: both conditions it checks must hold (the
/// active key has signed for `rotate_after`, the pending key has been
/// published for `prepublish`), so the later of the two times.
fn next_rotation(
    policy: &RotationPolicy,
    active: &KeyRecord,
    pending: Option<&KeyRecord>,
) -> Option<UnixTime> {
    let signing_since = active.activated_at.or(active.created_at)?;
    let published_at = pending?.created_at?;
    let due = signing_since.saturating_add(secs(policy.rotate_after()));
    let ready = published_at.saturating_add(secs(policy.prepublish()));
    Some(due.max(ready))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_over_their_maximum_are_refused_naming_setting_and_limit() {
        let huge = Duration::from_secs(u64::MAX / 2);
        let cases: [(&str, RotationPolicyBuilder); 4] = [
            ("rotate_after", RotationPolicy::builder().rotate_after(huge)),
            ("verify_grace", RotationPolicy::builder().verify_grace(huge)),
            (
                "max_token_lifetime",
                RotationPolicy::builder().max_token_lifetime(huge),
            ),
            ("leeway", RotationPolicy::builder().leeway(huge)),
        ];
        for (setting, builder) in cases {
            match builder.build() {
                Err(Error::InvalidConfig { setting: s, reason }) => {
                    assert_eq!(s, setting);
                    assert!(reason.starts_with(setting), "{reason}");
                    assert!(reason.contains("over its maximum"), "{reason}");
                }
                other => panic!("{setting}: expected a policy error, got {other:?}"),
            }
        }
        // The maxima themselves are accepted together.
        let p = RotationPolicy::builder()
            .rotate_after(RotationPolicy::MAX_ROTATE_AFTER)
            .max_token_lifetime(RotationPolicy::MAX_TOKEN_LIFETIME)
            .leeway(RotationPolicy::MAX_LEEWAY)
            .verify_grace(RotationPolicy::MAX_VERIFY_GRACE)
            .build()
            .unwrap();
        assert_eq!(p.rotate_after(), RotationPolicy::MAX_ROTATE_AFTER);
    }

    /// The audit says when `rotate_if_due` will next rotate (the later of
    /// `rotate_after` since activation and `prepublish` since the pending
    /// key's creation) and which key signs after it.
    #[test]
    fn the_audit_says_when_the_next_rotation_is_due_and_who_signs_next() {
        let policy = RotationPolicy::builder()
            .rotate_after(Duration::from_secs(7 * DAY))
            .prepublish(Duration::from_secs(DAY))
            .build()
            .unwrap();
        let day = DAY as i64;
        let mut active = KeyRecord::new("a", Algorithm::ES256, KeyState::Active);
        active.created_at = Some(0);
        active.activated_at = Some(10);
        let mut pending = KeyRecord::new("p", Algorithm::ES256, KeyState::Pending);
        pending.created_at = Some(10);
        let keys = KeySet::default();

        let report = audit(day, &policy, &[active.clone(), pending.clone()], &keys);
        assert_eq!(report.active.as_deref(), Some("a"));
        assert_eq!(report.next_signer.as_deref(), Some("p"));
        assert_eq!(report.next_rotation_at, Some(10 + 7 * day));

        // A pending key created late: its prepublish decides.
        pending.created_at = Some(10 + 7 * day - 3600);
        let report = audit(day, &policy, &[active.clone(), pending.clone()], &keys);
        assert_eq!(report.next_rotation_at, Some(10 + 8 * day - 3600));

        // Overdue: the time is in the past, and the finding names the command.
        let report = audit(9 * day, &policy, &[active.clone(), pending.clone()], &keys);
        assert!(report.next_rotation_at.unwrap() <= report.now);
        assert!(
            report.findings[0]
                .to_string()
                .contains("`jwtkit store rotate --if-due URI`"),
            "{:?}",
            report.findings
        );

        // Keys without times (the env backend): unknown.
        let bare = [
            KeyRecord::new("a", Algorithm::ES256, KeyState::Active),
            KeyRecord::new("p", Algorithm::ES256, KeyState::Pending),
        ];
        let report = audit(day, &policy, &bare, &keys);
        assert_eq!(report.next_rotation_at, None);
        assert_eq!(report.next_signer.as_deref(), Some("p"));
    }

    /// A retiring key kept past its grace is fixed by a command, named with
    /// the library call, never by a bare function name.
    #[test]
    fn a_key_past_its_grace_names_the_command_that_retires_it() {
        let finding = Finding::RetiringPastGrace {
            kid: "k".into(),
            retire_at: 5,
        };
        let text = finding.to_string();
        assert!(
            text.contains("`jwtkit store rotate --if-due URI`")
                && text.contains("(library: `KeyStore::retire_expired`)"),
            "{text}"
        );
        assert!(!text.contains("rotate or retire_expired"), "{text}");
    }
}
