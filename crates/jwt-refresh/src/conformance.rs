//! The conformance suite every [`RefreshStore`] runs (feature `conformance`).
//!
//! Plain `async fn`s that exercise a store through the trait and panic (like `assert!`) on any
//! deviation from the documented semantics. A backend's tests build stores as each function
//! documents and call every function; differences between backends are parameters, never
//! skipped checks. Each function uses fresh random subjects, so they can share one store (and
//! one Redis database) and run in parallel — except that functions taking a [`ManualClock`]
//! move that clock, so give them a store of their own.
//!
//! ```
//! use std::sync::Arc;
//! use jwt_refresh::{conformance, ManualClock, MemoryRefreshStore};
//!
//! # #[tokio::main] async fn main() {
//! let clock = Arc::new(ManualClock::starting_now());
//! let policy = conformance::standard_policy();
//! let store = MemoryRefreshStore::new(policy.clone()).with_clock(clock.clone());
//! conformance::rotate_issues_successor(&store).await;
//! conformance::expiry(&store, &clock, &policy).await;
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use jwt_core::time::secs;

use crate::clock::{Clock, ManualClock};
use crate::error::Error;
use crate::id::{FamilyId, TokenId};
use crate::policy::RefreshPolicy;
use crate::record::{NewRefresh, RefreshRecord, RotateOutcome, TokenState};
use crate::store::RefreshStore;

/// The policy most suite functions expect: 1 h tokens, 4 h families, no reuse grace.
pub fn standard_policy() -> RefreshPolicy {
    RefreshPolicy::builder()
        .ttl(Duration::from_secs(3600))
        .max_family_lifetime(Duration::from_secs(4 * 3600))
        .build()
        .expect("valid standard policy")
}

/// [`standard_policy`] with a 10 s reuse grace window, for [`grace_window`].
pub fn grace_policy() -> RefreshPolicy {
    RefreshPolicy::builder()
        .ttl(Duration::from_secs(3600))
        .max_family_lifetime(Duration::from_secs(4 * 3600))
        .reuse_grace(Duration::from_secs(10))
        .build()
        .expect("valid grace policy")
}

fn subject(tag: &str) -> String {
    let unique = FamilyId::generate().expect("random subject suffix");
    format!("conformance-{tag}-{unique}")
}

async fn login(store: &dyn RefreshStore, subject: &str) -> RefreshRecord {
    store
        .issue(NewRefresh::login(subject))
        .await
        .unwrap_or_else(|e| panic!("issue for {subject} failed: {e}"))
}

async fn rotate(store: &dyn RefreshStore, jti: &TokenId) -> RotateOutcome {
    store
        .rotate(jti)
        .await
        .unwrap_or_else(|e| panic!("rotate failed: {e}"))
}

async fn rotate_ok(store: &dyn RefreshStore, previous: &RefreshRecord) -> RefreshRecord {
    match rotate(store, &previous.jti).await {
        RotateOutcome::Rotated {
            new,
            previous: p,
            replayed_within_grace: false,
        } => {
            assert_eq!(&p, previous, "Rotated.previous must be the presented token");
            new
        }
        other => panic!("expected a fresh Rotated, got {other:?}"),
    }
}

async fn state(store: &dyn RefreshStore, jti: &TokenId) -> TokenState {
    store
        .lookup(jti)
        .await
        .unwrap_or_else(|e| panic!("lookup failed: {e}"))
        .unwrap_or_else(|| panic!("lookup found nothing for {jti:?}"))
        .state
}

/// A new login yields a fresh family and generation-0 token that `lookup` reports as active;
/// a second token can be issued into the family; issuing validates its input. Any policy
/// whose ttl is [`standard_policy`]'s.
pub async fn issue_and_lookup(store: &dyn RefreshStore) {
    let sub = subject("issue");
    let a = store
        .issue(NewRefresh::login(&sub).metadata("client=web"))
        .await
        .expect("issue");
    assert_eq!(a.subject, sub);
    assert_eq!(a.family, a.jti.family());
    assert_eq!(a.generation, 0);
    assert_eq!(a.metadata.as_deref(), Some("client=web"));
    assert_eq!(a.expires_at - a.issued_at, 3600, "policy ttl applies");

    let status = store.lookup(&a.jti).await.expect("lookup").expect("known");
    assert_eq!(status.record, a);
    assert!(status.is_active());

    let b = login(store, &sub).await;
    assert_ne!(a.family, b.family, "each login starts a new family");
    assert_ne!(a.jti, b.jti);

    let short = store
        .issue(NewRefresh::in_family(&sub, a.family.clone()).ttl(Duration::from_secs(60)))
        .await
        .expect("issue into an existing family");
    assert_eq!(short.family, a.family);
    assert_eq!(
        short.expires_at - short.issued_at,
        60,
        "per-request ttl applies"
    );
    assert_eq!(short.metadata, None);

    match store
        .issue(NewRefresh::in_family(subject("other"), a.family.clone()))
        .await
    {
        Err(Error::SubjectMismatch { family }) => assert_eq!(family, a.family),
        other => panic!("expected SubjectMismatch, got {other:?}"),
    }
    let unknown = FamilyId::generate().expect("random family");
    match store
        .issue(NewRefresh::in_family(&sub, unknown.clone()))
        .await
    {
        Err(Error::UnknownFamily { family }) => assert_eq!(family, unknown),
        other => panic!("expected UnknownFamily, got {other:?}"),
    }
    for bad in [
        NewRefresh::login(""),
        NewRefresh::login(&sub).metadata(""),
        NewRefresh::login(&sub).ttl(Duration::from_millis(10)),
    ] {
        assert!(
            matches!(store.issue(bad).await, Err(Error::InvalidInput { .. })),
            "invalid input must be refused"
        );
    }
}

/// Rotation consumes the presented token and issues a successor in the same family with the
/// same lifetime, next generation, inherited metadata; the consumed token is reported as such.
/// Any policy without reuse grace.
pub async fn rotate_issues_successor(store: &dyn RefreshStore) {
    let sub = subject("rotate");
    let first = store
        .issue(NewRefresh::login(&sub).metadata("device=7"))
        .await
        .expect("issue");
    let second = rotate_ok(store, &first).await;
    assert_ne!(second.jti, first.jti);
    assert_eq!(second.family, first.family);
    assert_eq!(second.subject, sub);
    assert_eq!(second.generation, 1);
    assert_eq!(second.metadata.as_deref(), Some("device=7"));
    assert_eq!(
        second.expires_at - second.issued_at,
        first.expires_at - first.issued_at
    );
    match state(store, &first.jti).await {
        TokenState::Consumed { successor, .. } => assert_eq!(successor, second.jti),
        other => panic!("expected Consumed, got {other:?}"),
    }
    let third = rotate_ok(store, &second).await;
    assert_eq!(third.generation, 2);
    assert_eq!(state(store, &third.jti).await, TokenState::Active);
}

/// [`RefreshStore::session_active`], failing the test on an error.
async fn active(store: &dyn RefreshStore, family: &FamilyId) -> bool {
    store.session_active(family).await.expect("session_active")
}

/// Presenting a consumed token revokes the family: `Reused { revoked: true }` once, then
/// `revoked: false`; every outstanding token of the family is then `Revoked`, other families
/// of the subject are untouched (and [`RefreshStore::session_active`] says so). Needs a store
/// without reuse grace.
pub async fn reuse_revokes_family(store: &dyn RefreshStore) {
    let sub = subject("reuse");
    let first = login(store, &sub).await;
    let sibling = store
        .issue(NewRefresh::in_family(&sub, first.family.clone()))
        .await
        .expect("sibling");
    let other_login = login(store, &sub).await;
    let second = rotate_ok(store, &first).await;
    assert!(
        active(store, &first.family).await,
        "a rotated session is live"
    );

    match rotate(store, &first.jti).await {
        RotateOutcome::Reused {
            family,
            subject,
            revoked: true,
        } => {
            assert_eq!(family, first.family);
            assert_eq!(subject, sub);
        }
        other => panic!("expected Reused {{ revoked: true }}, got {other:?}"),
    }
    assert!(matches!(
        rotate(store, &first.jti).await,
        RotateOutcome::Reused { revoked: false, .. }
    ));
    assert_eq!(rotate(store, &second.jti).await, RotateOutcome::Revoked);
    assert_eq!(rotate(store, &sibling.jti).await, RotateOutcome::Revoked);
    assert_eq!(state(store, &second.jti).await, TokenState::Revoked);
    assert!(
        !active(store, &first.family).await,
        "reuse ends the session"
    );
    assert!(active(store, &other_login.family).await);
    match store
        .issue(NewRefresh::in_family(&sub, first.family.clone()))
        .await
    {
        Err(Error::FamilyRevoked { family }) => assert_eq!(family, first.family),
        other => panic!("expected FamilyRevoked, got {other:?}"),
    }
    rotate_ok(store, &other_login).await;
}

/// Reuse grace: within `grace` of a rotation, re-presenting the immediately previous token
/// returns the same successor (`replayed_within_grace: true`); after the window, or for a token
/// two generations back, it is reuse. Needs a store with `reuse_grace(grace)` whose clock is
/// `clock` (e.g. one built with [`grace_policy`]).
pub async fn grace_window(store: &dyn RefreshStore, clock: &ManualClock, grace: Duration) {
    let sub = subject("grace");
    let t0 = login(store, &sub).await;
    let t1 = rotate_ok(store, &t0).await;
    for _ in 0..2 {
        match rotate(store, &t0.jti).await {
            RotateOutcome::Rotated {
                new,
                previous,
                replayed_within_grace: true,
            } => {
                assert_eq!(new, t1, "the same successor, not a new token");
                assert_eq!(previous.jti, t0.jti);
            }
            other => panic!("expected a replay within grace, got {other:?}"),
        }
    }
    // The successor keeps working normally after replays.
    clock.advance_by(grace - Duration::from_secs(1));
    let t2 = rotate_ok(store, &t1).await;
    // t0 is now two generations back: reuse, even within grace of t1's rotation.
    assert!(matches!(
        rotate(store, &t0.jti).await,
        RotateOutcome::Reused { revoked: true, .. }
    ));
    assert_eq!(rotate(store, &t2.jti).await, RotateOutcome::Revoked);

    // After the window the immediately previous token is reuse too.
    let u0 = login(store, &sub).await;
    let u1 = rotate_ok(store, &u0).await;
    clock.advance_by(grace);
    match rotate(store, &u0.jti).await {
        RotateOutcome::Reused {
            family,
            revoked: true,
            ..
        } => assert_eq!(family, u0.family),
        other => panic!("expected Reused after the grace window, got {other:?}"),
    }
    assert_eq!(rotate(store, &u1.jti).await, RotateOutcome::Revoked);

    // No grace for a successor that was revoked on its own.
    let v0 = login(store, &sub).await;
    let v1 = rotate_ok(store, &v0).await;
    assert!(store.revoke_token(&v1.jti).await.expect("revoke"));
    assert!(matches!(
        rotate(store, &v0.jti).await,
        RotateOutcome::Reused { revoked: true, .. }
    ));
}

/// Revoking one token refuses it (`Revoked`) and leaves its family's other tokens alone;
/// revoking again or revoking a consumed or unknown token reports `false`. Any policy without
/// reuse grace.
pub async fn revoke_token(store: &dyn RefreshStore) {
    let sub = subject("revoke-token");
    let a = login(store, &sub).await;
    let b = store
        .issue(NewRefresh::in_family(&sub, a.family.clone()))
        .await
        .expect("second token");
    assert!(store.revoke_token(&a.jti).await.expect("revoke"));
    assert!(!store.revoke_token(&a.jti).await.expect("revoke again"));
    assert_eq!(rotate(store, &a.jti).await, RotateOutcome::Revoked);
    assert_eq!(state(store, &a.jti).await, TokenState::Revoked);
    let b2 = rotate_ok(store, &b).await;
    assert!(
        !store.revoke_token(&b.jti).await.expect("revoke consumed"),
        "a consumed token is not active"
    );
    assert_eq!(state(store, &b2.jti).await, TokenState::Active);
    let unknown = TokenId::generate(&a.family).expect("random jti");
    assert!(!store.revoke_token(&unknown).await.expect("revoke unknown"));
}

/// Logout: revoking a family refuses all of its tokens and further issues into it, and leaves
/// the subject's other families alone. Any policy.
pub async fn revoke_family(store: &dyn RefreshStore) {
    let sub = subject("revoke-family");
    let a = login(store, &sub).await;
    let a2 = store
        .issue(NewRefresh::in_family(&sub, a.family.clone()))
        .await
        .expect("second token");
    let other = login(store, &sub).await;
    assert!(active(store, &a.family).await);
    assert!(store.revoke_family(&a.family).await.expect("revoke family"));
    assert!(
        !active(store, &a.family).await,
        "a revoked session is not live"
    );
    assert!(active(store, &other.family).await);
    assert!(!store.revoke_family(&a.family).await.expect("again"));
    assert_eq!(rotate(store, &a.jti).await, RotateOutcome::Revoked);
    assert_eq!(rotate(store, &a2.jti).await, RotateOutcome::Revoked);
    assert!(matches!(
        store
            .issue(NewRefresh::in_family(&sub, a.family.clone()))
            .await,
        Err(Error::FamilyRevoked { .. })
    ));
    rotate_ok(store, &other).await;
    let unknown = FamilyId::generate().expect("random family");
    assert!(!store.revoke_family(&unknown).await.expect("unknown family"));
    assert!(
        !active(store, &unknown).await,
        "an unknown session is not live"
    );
}

/// Logout everywhere: revoking a subject revokes every one of its families (including rotated
/// and extra tokens) and no other subject's. Any policy without reuse grace.
pub async fn revoke_subject(store: &dyn RefreshStore) {
    let sub = subject("revoke-subject");
    let bystander = subject("bystander");
    let a = login(store, &sub).await;
    let a1 = rotate_ok(store, &a).await;
    let b = login(store, &sub).await;
    let c = login(store, &sub).await;
    assert!(store.revoke_family(&c.family).await.expect("logout c"));
    let x = login(store, &bystander).await;

    assert_eq!(store.revoke_subject(&sub).await.expect("revoke subject"), 2);
    for session in [&a.family, &b.family, &c.family] {
        assert!(
            !active(store, session).await,
            "logout everywhere ends every session"
        );
    }
    assert!(
        active(store, &x.family).await,
        "another subject's session lives on"
    );
    assert_eq!(rotate(store, &a1.jti).await, RotateOutcome::Revoked);
    assert_eq!(rotate(store, &b.jti).await, RotateOutcome::Revoked);
    assert_eq!(store.revoke_subject(&sub).await.expect("again"), 0);
    assert_eq!(
        store
            .revoke_subject(&subject("nobody"))
            .await
            .expect("unknown subject"),
        0
    );
    rotate_ok(store, &x).await;
    // A login after the logout is a new, live session.
    let d = login(store, &sub).await;
    rotate_ok(store, &d).await;
}

/// Tokens are refused as `Expired` from their `expires_at` second on (by the store's clock),
/// and `lookup` reports them expired. Needs [`standard_policy`] (or any policy with the same
/// ttl) and the store's `clock`.
pub async fn expiry(store: &dyn RefreshStore, clock: &ManualClock, policy: &RefreshPolicy) {
    let sub = subject("expiry");
    let a = login(store, &sub).await;
    let b = login(store, &sub).await;
    assert_eq!(a.expires_at, a.issued_at + secs(policy.ttl()));
    clock.set(a.expires_at - 1);
    let b1 = rotate_ok(store, &b).await;
    assert_eq!(b1.expires_at, a.expires_at - 1 + secs(policy.ttl()));
    assert!(active(store, &a.family).await);
    clock.set(a.expires_at);
    assert!(
        !active(store, &a.family).await,
        "a session whose last token expired is not live"
    );
    assert!(active(store, &b.family).await);
    assert_eq!(rotate(store, &a.jti).await, RotateOutcome::Expired);
    assert_eq!(state(store, &a.jti).await, TokenState::Expired);
    // An expired consumed token is expired, not reuse: the family survives.
    assert_eq!(rotate(store, &b.jti).await, RotateOutcome::Expired);
    rotate_ok(store, &b1).await;
}

/// A family never outlives `max_family_lifetime` after its login: successors' expiry is
/// capped, and at the cap the family's tokens are `Expired` and issuing into it fails with
/// [`Error::FamilyExpired`]. Needs [`standard_policy`] and the store's `clock`.
pub async fn family_lifetime_cap(
    store: &dyn RefreshStore,
    clock: &ManualClock,
    policy: &RefreshPolicy,
) {
    let sub = subject("cap");
    let ttl = secs(policy.ttl());
    let first = login(store, &sub).await;
    let cap = first.issued_at + secs(policy.max_family_lifetime());
    let mut current = first.clone();
    while current.expires_at < cap {
        clock.set(current.expires_at - 1);
        let next = rotate_ok(store, &current).await;
        assert_eq!(next.expires_at, (clock.now() + ttl).min(cap));
        current = next;
    }
    assert_eq!(
        current.expires_at, cap,
        "the last successor ends at the cap"
    );
    clock.set(cap);
    assert_eq!(rotate(store, &current.jti).await, RotateOutcome::Expired);
    match store
        .issue(NewRefresh::in_family(&sub, first.family.clone()))
        .await
    {
        Err(Error::FamilyExpired { family }) => assert_eq!(family, first.family),
        other => panic!("expected FamilyExpired, got {other:?}"),
    }
}

/// [`RefreshStore::sessions`]: a subject's live sessions, oldest first, with their login
/// time, last refresh, end and client description; revoked, reused and ended ones are not
/// listed, nor other subjects'. Then listing and logout everywhere while the sessions are
/// being refreshed concurrently: every session is revoked or was started after, nothing is
/// lost or left half-revoked. Needs [`standard_policy`], the store's `clock`, and a
/// multi-threaded Tokio runtime.
pub async fn sessions(store: Arc<dyn RefreshStore>, clock: &ManualClock) {
    let sub = subject("sessions");
    let t0 = clock.now();
    let a = store
        .issue(NewRefresh::login(&sub).client(r#"{"device":"laptop"}"#))
        .await
        .expect("login a");
    clock.set(t0 + 10);
    let b = login(&*store, &sub).await;
    let c = login(&*store, &sub).await;
    let other = login(&*store, &subject("someone-else")).await;
    clock.set(t0 + 20);
    let a1 = rotate_ok(&*store, &a).await;
    assert!(store.revoke_family(&c.family).await.expect("logout c"));

    let listed = store.sessions(&sub).await.expect("sessions");
    let ids: Vec<_> = listed.iter().map(|s| s.family.clone()).collect();
    assert_eq!(
        ids,
        vec![a.family.clone(), b.family.clone()],
        "oldest first, live only"
    );
    assert_eq!(listed[0].created_at, t0);
    assert_eq!(listed[0].last_refreshed_at, t0 + 20);
    assert_eq!(listed[0].expires_at, a1.expires_at);
    assert_eq!(listed[0].client.as_deref(), Some(r#"{"device":"laptop"}"#));
    assert_eq!(
        (
            listed[1].created_at,
            listed[1].last_refreshed_at,
            listed[1].client.as_deref()
        ),
        (t0 + 10, t0 + 10, None)
    );
    // Reuse ends a session; so does the end of its last token.
    assert!(matches!(
        rotate(&*store, &a.jti).await,
        RotateOutcome::Reused { .. }
    ));
    assert_eq!(
        store.sessions(&sub).await.expect("sessions").len(),
        1,
        "a reused session is not listed"
    );
    clock.set(b.expires_at);
    assert!(store.sessions(&sub).await.expect("sessions").is_empty());
    assert_eq!(
        store
            .sessions(&other.subject)
            .await
            .expect("sessions")
            .len(),
        0
    );
    assert!(store
        .sessions(&subject("nobody"))
        .await
        .expect("sessions of nobody")
        .is_empty());
    // A client description is bounded, and only for a login.
    for bad in [
        NewRefresh::login(&sub).client(""),
        NewRefresh::login(&sub).client("x".repeat(crate::MAX_CLIENT_LEN + 1)),
        NewRefresh::in_family(&sub, b.family.clone()).client("x"),
    ] {
        assert!(matches!(
            store.issue(bad).await,
            Err(Error::InvalidInput { what: "client", .. })
        ));
    }

    // Under concurrent refreshes: 8 sessions, each refreshed in a loop while
    // they are listed and then all revoked.
    let sub = subject("sessions-race");
    let mut heads = Vec::new();
    for _ in 0..8 {
        heads.push(login(&*store, &sub).await);
    }
    let listed = store.sessions(&sub).await.expect("sessions");
    assert_eq!(listed.len(), 8);
    let refreshers: Vec<_> = heads
        .into_iter()
        .map(|head| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut current = head;
                for _ in 0..20 {
                    match store.rotate(&current.jti).await.expect("rotate") {
                        RotateOutcome::Rotated { new, .. } => current = new,
                        RotateOutcome::Revoked => return true,
                        other => panic!("unexpected {other:?}"),
                    }
                }
                false
            })
        })
        .collect();
    let listed_meanwhile = store
        .sessions(&sub)
        .await
        .expect("sessions while refreshing");
    assert!(listed_meanwhile.len() <= 8);
    let revoked = store.revoke_subject(&sub).await.expect("revoke subject");
    assert_eq!(revoked, 8, "every session revoked exactly once");
    for task in refreshers {
        task.await.expect("refresher");
    }
    assert!(store.sessions(&sub).await.expect("sessions").is_empty());
    for session in &listed {
        assert!(!store
            .session_active(&session.family)
            .await
            .expect("session_active"));
    }
}

/// Ids that were never issued are `Unknown` to rotate and `None` to lookup, whether or not
/// their family exists. Any policy.
pub async fn unknown_tokens(store: &dyn RefreshStore) {
    let sub = subject("unknown");
    let a = login(store, &sub).await;
    let in_known_family = TokenId::generate(&a.family).expect("random jti");
    let fresh = TokenId::generate(&FamilyId::generate().expect("family")).expect("jti");
    for jti in [&in_known_family, &fresh] {
        assert_eq!(rotate(store, jti).await, RotateOutcome::Unknown);
        assert_eq!(store.lookup(jti).await.expect("lookup"), None);
    }
    assert!(store.lookup(&a.jti).await.expect("lookup").is_some());
}

/// `tasks` concurrent rotations of one token: exactly one `Rotated`, every other one `Reused`
/// (exactly one of which revoked the family), and the winner's successor is then `Revoked`.
/// Needs a store without reuse grace, and a multi-threaded Tokio runtime for real parallelism.
pub async fn concurrent_rotation(store: Arc<dyn RefreshStore>, tasks: usize) {
    assert!(tasks >= 2, "a race needs at least two tasks");
    let sub = subject("race");
    let first = login(&*store, &sub).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        let jti = first.jti.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store.rotate(&jti).await
        }));
    }
    let (mut rotated, mut reused, mut revoked_by) = (Vec::new(), 0, 0);
    for handle in handles {
        match handle.await.expect("rotation task panicked") {
            Ok(RotateOutcome::Rotated {
                new,
                replayed_within_grace: false,
                ..
            }) => rotated.push(new),
            Ok(RotateOutcome::Reused {
                revoked, family, ..
            }) => {
                assert_eq!(family, first.family);
                reused += 1;
                revoked_by += usize::from(revoked);
            }
            Ok(other) => panic!("unexpected outcome in the race: {other:?}"),
            Err(e) => panic!("rotation failed in the race: {e}"),
        }
    }
    assert_eq!(rotated.len(), 1, "exactly one concurrent rotation may win");
    assert_eq!(reused, tasks - 1, "every loser sees reuse");
    assert_eq!(revoked_by, 1, "exactly one loser revokes the family");
    assert_eq!(
        rotate(&*store, &rotated[0].jti).await,
        RotateOutcome::Revoked,
        "reuse revoked the winner's successor too"
    );
    assert!(matches!(
        rotate(&*store, &first.jti).await,
        RotateOutcome::Reused { revoked: false, .. }
    ));
}
