//! In-process store: tests, examples, single-process services.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use jwt_core::time::secs;

use crate::clock::{Clock, SystemClock, UnixTime};
use crate::error::{Error, Result};
use crate::id::{FamilyId, TokenId};
use crate::policy::RefreshPolicy;
use crate::record::{
    NewRefresh, RefreshRecord, RefreshStatus, RotateOutcome, SessionInfo, TokenState,
};
use crate::store::RefreshStore;

/// Sweeps of expired entries happen after this many mutations at least (amortised O(1)).
const MIN_SWEEP_INTERVAL_OPS: usize = 1024;

/// A [`RefreshStore`] in process memory, with the same semantics as the Redis store.
///
/// One mutex is held across every check-and-update, so concurrent rotations of a token have
/// exactly one winner. Expired tokens and families are purged in amortised sweeps (and by
/// [`purge_expired`](Self::purge_expired)), so memory does not grow without bound. State is
/// lost when the process exits: every session ends with it.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use jwt_refresh::{ManualClock, MemoryRefreshStore, NewRefresh, RefreshPolicy, RefreshStore, RotateOutcome};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jwt_refresh::Error> {
/// let clock = Arc::new(ManualClock::new(1_700_000_000));
/// let policy = RefreshPolicy::builder().ttl(Duration::from_secs(3600)).build()?;
/// let store = MemoryRefreshStore::new(policy).with_clock(clock.clone());
///
/// let token = store.issue(NewRefresh::login("user-42")).await?;
/// clock.advance_by(Duration::from_secs(3600));
/// assert_eq!(store.rotate(&token.jti).await?, RotateOutcome::Expired);
/// # Ok(()) }
/// ```
pub struct MemoryRefreshStore {
    policy: RefreshPolicy,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl fmt::Debug for MemoryRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRefreshStore")
            .field("policy", &self.policy)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    families: HashMap<FamilyId, Family>,
    /// subject → family → family's absolute expiry.
    subjects: HashMap<String, HashMap<FamilyId, UnixTime>>,
    tokens: usize,
    ops_since_sweep: usize,
}

struct Family {
    subject: String,
    /// Absolute expiry of the family (login time + max lifetime).
    cap: UnixTime,
    /// Latest expiry of any of its tokens: the family is gone after this.
    last_expiry: UnixTime,
    revoked: bool,
    tokens: HashMap<String, Token>,
    /// Login time.
    created: UnixTime,
    /// Issue time of its latest token.
    last_issued: UnixTime,
    /// The client description given at login.
    client: Option<String>,
}

#[derive(Clone)]
struct Token {
    issued_at: UnixTime,
    expires_at: UnixTime,
    /// Lifetime given at issue, inherited by successors.
    ttl: UnixTime,
    generation: u32,
    state: State,
    metadata: Option<String>,
}

#[derive(Clone)]
enum State {
    Active,
    Consumed { successor: TokenId, at: UnixTime },
    Revoked,
}

impl Token {
    fn record(&self, jti: &TokenId, subject: &str) -> RefreshRecord {
        RefreshRecord {
            jti: jti.clone(),
            family: jti.family(),
            subject: subject.to_owned(),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            generation: self.generation,
            metadata: self.metadata.clone(),
        }
    }
}

impl MemoryRefreshStore {
    /// An empty store with `policy`, on the system clock.
    pub fn new(policy: RefreshPolicy) -> Self {
        Self {
            policy,
            clock: Arc::new(SystemClock),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Uses `clock` for every expiry decision (e.g. a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The policy this store applies.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    /// Removes every expired token and family now; returns how many tokens were removed.
    pub fn purge_expired(&self) -> usize {
        let now = self.clock.now();
        sweep(&mut self.lock(), now)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied rotation (every update is
        // a few infallible map writes), so a poisoned lock's data is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks and counts a mutation, sweeping when enough have accumulated.
    fn lock_mut(&self, now: UnixTime) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        inner.ops_since_sweep += 1;
        if inner.ops_since_sweep >= MIN_SWEEP_INTERVAL_OPS.max(inner.tokens) {
            sweep(&mut inner, now);
        }
        inner
    }
}

fn sweep(inner: &mut Inner, now: UnixTime) -> usize {
    let before = inner.tokens;
    let mut removed = 0;
    inner.families.retain(|_, fam| {
        if now >= fam.last_expiry {
            removed += fam.tokens.len();
            return false;
        }
        let n = fam.tokens.len();
        fam.tokens.retain(|_, t| now < t.expires_at);
        removed += n - fam.tokens.len();
        true
    });
    inner.subjects.retain(|_, fams| {
        fams.retain(|_, cap| now < *cap);
        !fams.is_empty()
    });
    inner.tokens = before - removed;
    inner.ops_since_sweep = 0;
    removed
}

#[async_trait]
impl RefreshStore for MemoryRefreshStore {
    async fn issue(&self, new: NewRefresh) -> Result<RefreshRecord> {
        new.validate()?;
        let now = self.clock.now();
        let ttl = new.ttl.map_or(self.policy.ttl_secs(), secs);
        let mut inner = self.lock_mut(now);
        let inner = &mut *inner;
        let family_id = match new.family {
            Some(family_id) => {
                let fam = inner
                    .families
                    .get(&family_id)
                    .ok_or_else(|| Error::UnknownFamily {
                        family: family_id.clone(),
                    })?;
                if fam.subject != new.subject {
                    return Err(Error::SubjectMismatch { family: family_id });
                }
                if fam.revoked {
                    return Err(Error::FamilyRevoked { family: family_id });
                }
                if now >= fam.cap {
                    return Err(Error::FamilyExpired { family: family_id });
                }
                if now >= fam.last_expiry {
                    return Err(Error::UnknownFamily { family: family_id });
                }
                family_id
            }
            None => {
                let family_id = FamilyId::generate()?;
                let cap = now.saturating_add(self.policy.family_lifetime_secs());
                // Index first, as on Redis: no family may exist outside its subject's index.
                inner
                    .subjects
                    .entry(new.subject.clone())
                    .or_default()
                    .insert(family_id.clone(), cap);
                inner.families.insert(
                    family_id.clone(),
                    Family {
                        subject: new.subject.clone(),
                        cap,
                        last_expiry: now,
                        revoked: false,
                        tokens: HashMap::new(),
                        created: now,
                        last_issued: now,
                        client: new.client.clone(),
                    },
                );
                family_id
            }
        };
        let jti = TokenId::generate(&family_id)?;
        let fam = inner
            .families
            .get_mut(&family_id)
            .ok_or_else(|| Error::UnknownFamily {
                family: family_id.clone(),
            })?;
        let token = Token {
            issued_at: now,
            expires_at: now.saturating_add(ttl).min(fam.cap),
            ttl,
            generation: 0,
            state: State::Active,
            metadata: new.metadata,
        };
        fam.last_expiry = fam.last_expiry.max(token.expires_at);
        fam.last_issued = now;
        let record = token.record(&jti, &fam.subject);
        fam.tokens.insert(jti.token_part().to_owned(), token);
        inner.tokens += 1;
        Ok(record)
    }

    async fn rotate(&self, jti: &TokenId) -> Result<RotateOutcome> {
        let now = self.clock.now();
        let grace = self.policy.grace_secs();
        let family_id = jti.family();
        let mut inner = self.lock_mut(now);
        let inner = &mut *inner;
        let Some(fam) = inner.families.get_mut(&family_id) else {
            return Ok(RotateOutcome::Unknown);
        };
        let Some(token) = fam.tokens.get(jti.token_part()) else {
            return Ok(RotateOutcome::Unknown);
        };
        if now >= token.expires_at {
            return Ok(RotateOutcome::Expired);
        }
        match &token.state {
            State::Consumed { successor, at } => {
                if grace > 0 && !fam.revoked && now < at.saturating_add(grace) {
                    if let Some(next) = fam.tokens.get(successor.token_part()) {
                        if matches!(next.state, State::Active) && now < next.expires_at {
                            return Ok(RotateOutcome::Rotated {
                                new: next.record(successor, &fam.subject),
                                previous: token.record(jti, &fam.subject),
                                replayed_within_grace: true,
                            });
                        }
                    }
                }
                let revoked = !fam.revoked;
                fam.revoked = true;
                if revoked {
                    tracing::warn!(family = %family_id, "refresh token reuse detected: family revoked");
                }
                Ok(RotateOutcome::Reused {
                    family: family_id,
                    subject: fam.subject.clone(),
                    revoked,
                })
            }
            State::Revoked => Ok(RotateOutcome::Revoked),
            State::Active if fam.revoked => Ok(RotateOutcome::Revoked),
            State::Active => {
                let next_jti = TokenId::generate(&family_id)?;
                let next = Token {
                    issued_at: now,
                    expires_at: now.saturating_add(token.ttl).min(fam.cap),
                    ttl: token.ttl,
                    generation: token.generation.saturating_add(1),
                    state: State::Active,
                    metadata: token.metadata.clone(),
                };
                let previous = token.record(jti, &fam.subject);
                let new = next.record(&next_jti, &fam.subject);
                fam.last_expiry = fam.last_expiry.max(next.expires_at);
                fam.last_issued = now;
                fam.tokens.insert(next_jti.token_part().to_owned(), next);
                if let Some(token) = fam.tokens.get_mut(jti.token_part()) {
                    token.state = State::Consumed {
                        successor: next_jti,
                        at: now,
                    };
                }
                inner.tokens += 1;
                Ok(RotateOutcome::Rotated {
                    new,
                    previous,
                    replayed_within_grace: false,
                })
            }
        }
    }

    async fn lookup(&self, jti: &TokenId) -> Result<Option<RefreshStatus>> {
        let now = self.clock.now();
        let inner = self.lock();
        let Some(fam) = inner.families.get(&jti.family()) else {
            return Ok(None);
        };
        let Some(token) = fam.tokens.get(jti.token_part()) else {
            return Ok(None);
        };
        let state = if now >= token.expires_at {
            TokenState::Expired
        } else if fam.revoked || matches!(token.state, State::Revoked) {
            TokenState::Revoked
        } else if let State::Consumed { successor, at } = &token.state {
            TokenState::Consumed {
                successor: successor.clone(),
                consumed_at: *at,
            }
        } else {
            TokenState::Active
        };
        Ok(Some(RefreshStatus {
            record: token.record(jti, &fam.subject),
            state,
        }))
    }

    async fn revoke_token(&self, jti: &TokenId) -> Result<bool> {
        let now = self.clock.now();
        let mut inner = self.lock_mut(now);
        let token = inner
            .families
            .get_mut(&jti.family())
            .and_then(|fam| fam.tokens.get_mut(jti.token_part()));
        match token {
            Some(t) if matches!(t.state, State::Active) => {
                t.state = State::Revoked;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_family(&self, family: &FamilyId) -> Result<bool> {
        let now = self.clock.now();
        let mut inner = self.lock_mut(now);
        match inner.families.get_mut(family) {
            Some(fam) if !fam.revoked => {
                fam.revoked = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn session_active(&self, family: &FamilyId) -> Result<bool> {
        let now = self.clock.now();
        let inner = self.lock();
        Ok(inner
            .families
            .get(family)
            .is_some_and(|fam| !fam.revoked && now < fam.cap && now < fam.last_expiry))
    }

    async fn sessions(&self, subject: &str) -> Result<Vec<SessionInfo>> {
        let now = self.clock.now();
        let inner = self.lock();
        let Some(families) = inner.subjects.get(subject) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<SessionInfo> = families
            .keys()
            .filter_map(|id| {
                let fam = inner.families.get(id)?;
                (!fam.revoked && now < fam.cap && now < fam.last_expiry).then(|| SessionInfo {
                    family: id.clone(),
                    created_at: fam.created,
                    last_refreshed_at: fam.last_issued,
                    expires_at: fam.last_expiry.min(fam.cap),
                    client: fam.client.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.created_at, a.family.as_str()).cmp(&(b.created_at, b.family.as_str()))
        });
        Ok(out)
    }

    async fn revoke_subject(&self, subject: &str) -> Result<usize> {
        let now = self.clock.now();
        let mut inner = self.lock_mut(now);
        let inner = &mut *inner;
        let Some(families) = inner.subjects.remove(subject) else {
            return Ok(0);
        };
        let mut revoked = 0;
        // Families past their absolute expiry are dead already (as on Redis, not counted).
        for (family, _) in families.iter().filter(|(_, &cap)| now < cap) {
            if let Some(fam) = inner.families.get_mut(family) {
                if !fam.revoked {
                    fam.revoked = true;
                    revoked += 1;
                }
            }
        }
        Ok(revoked)
    }
}
