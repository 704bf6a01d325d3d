//! The behaviour every [`KeyStore`] must have, as async test functions that
//! each backend's tests call with its own store (feature `conformance`).
//!
//! They panic with a message on the first departure, like `assert!`.
//! Functions that rotate take a fresh, *uninitialized* writable store (and
//! the [`ManualClock`] it was built with); the others take a store that
//! already has an active key.
//!
//! Each backend's test file runs *all* of it through
//! [`conformance_tests!`](crate::conformance_tests), one `#[tokio::test]` per
//! function; what a backend supports is a parameter (`writable`), never a
//! skipped check:
//!
//! ```
//! use std::sync::Arc;
//! use jwt_core::ManualClock;
//! use jwt_keys::{KeyStore, MemoryKeyStore};
//!
//! /// A fresh, uninitialized store on `clock`, and whatever must outlive it
//! /// (a temporary directory); `None` skips the tests (server not available).
//! async fn make(clock: Arc<ManualClock>) -> Option<(Arc<dyn KeyStore>, ())> {
//!     Some((Arc::new(MemoryKeyStore::with_clock(clock)), ()))
//! }
//!
//! jwt_keys::conformance_tests!(make, writable = true);
//! # fn main() {}
//! ```
//!
//! The functions can also be called one by one:
//!
//! ```
//! use std::sync::Arc;
//! use jwt_core::ManualClock;
//! use jwt_keys::{conformance, MemoryKeyStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new(1_700_000_000));
//! conformance::rotation_lifecycle(&MemoryKeyStore::with_clock(clock.clone()), &clock).await;
//! # });
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, Clock, ErrorKind, Validation};
use serde_json::{json, Value};

use crate::error::Error;
use crate::policy::RotationPolicy;
use crate::store::{KeyState, KeyStore, KeyStoreExt};

/// The clock the suite moves; re-exported so that
/// [`conformance_tests!`](crate::conformance_tests) works in crates that do
/// not depend on `jwt-core` themselves.
pub use jwt_core::ManualClock;

/// The algorithm conformance runs use for writable stores (fast to generate).
pub const ALG: Algorithm = Algorithm::ES256;

/// The policy conformance runs use: rotate daily, publish an hour ahead,
/// tokens up to an hour, a minute of leeway, two hours of grace.
pub fn policy() -> RotationPolicy {
    RotationPolicy::builder()
        .rotate_after(Duration::from_secs(86_400))
        .prepublish(Duration::from_secs(3_600))
        .max_token_lifetime(Duration::from_secs(3_600))
        .leeway(Duration::from_secs(60))
        .verify_grace(Duration::from_secs(7_200))
        .build()
        .expect("the conformance policy is valid")
}

fn claims(sub: &str, now: i64) -> Value {
    json!({ "sub": sub, "iat": now, "exp": now + 3_600 })
}

/// Verifies `token` with the store's current key set, as a relying party
/// would, at `now`.
async fn verify_at(store: &dyn KeyStore, token: &str, now: i64) -> Result<Value, Error> {
    let keys = store.key_set().await?;
    let algs: Vec<Algorithm> = Algorithm::ALL.to_vec();
    let validation = Validation::new(algs).clock(Arc::new(ManualClock::new(now)));
    let verifier = jwt_core::Verifier::with_key_set(keys, validation)?;
    Ok(verifier.verify::<Value>(token)?.claims)
}

fn core_kind(e: &Error) -> Option<ErrorKind> {
    match e {
        Error::Core(c) => Some(c.kind()),
        _ => None,
    }
}

/// A token signed through the store verifies with the store's keys; its
/// header names the active kid and alg; a tampered token does not verify.
pub async fn sign_verify_round_trip(store: &dyn KeyStore) {
    // The store's own clock: its keys' states and the tokens' times agree.
    let now = store.clock().now();
    let active = store.active().await.expect("active key");
    let token = store
        .sign_token(&claims("round-trip", now), Some("at+jwt"))
        .await
        .expect("sign_token");
    let header = jwt_core::dangerous::insecure_decode_header(&token).expect("header");
    assert_eq!(
        header.kid.as_deref(),
        Some(active.kid.as_str()),
        "header kid"
    );
    assert_eq!(header.alg, active.alg, "header alg");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "header typ");
    let verified = verify_at(store, &token, now).await.expect("verifies");
    assert_eq!(verified["sub"], "round-trip");

    // Flip one bit of the signature's first byte.
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    let mut sig_bytes = jwt_core::b64::decode(sig.as_bytes(), "sig").expect("b64");
    sig_bytes[0] ^= 1;
    let tampered = jwt_core::assemble(input.to_owned(), &sig_bytes);
    let err = verify_at(store, &tampered, now).await.unwrap_err();
    assert_eq!(
        core_kind(&err),
        Some(ErrorKind::InvalidSignature),
        "tampered token: {err}"
    );
}

/// Signing with a kid the store does not know is [`Error::UnknownKey`]
/// naming it; a token with an unknown kid is refused as `unknown_key`.
pub async fn unknown_kid(store: &dyn KeyStore) {
    let err = store.sign("no-such-kid", b"x.y").await.unwrap_err();
    match &err {
        Error::UnknownKey { kid } => assert_eq!(kid, "no-such-kid"),
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    // The store's own clock: its keys' states and the tokens' times agree.
    let now = store.clock().now();
    let active = store.active().await.expect("active");
    let mut header = jwt_core::Header::new(active.alg);
    header.kid = Some("no-such-kid".into());
    let input = jwt_core::signing_input(&header, &claims("x", now)).expect("input");
    let sig = store
        .sign(&active.kid, input.as_bytes())
        .await
        .expect("sign");
    let token = jwt_core::assemble(input, &sig);
    let err = verify_at(store, &token, now).await.unwrap_err();
    assert_eq!(core_kind(&err), Some(ErrorKind::UnknownKey), "{err}");
}

/// The published JWKS holds public keys only, each with `kid`, `alg` and
/// `use: "sig"`, and none of the private members (`d`, `p`, `q`, `dp`,
/// `dq`, `qi`, `k`).
pub async fn jwks_has_no_private_members(store: &dyn KeyStore) {
    let jwks = store.verification_keys().await.expect("verification keys");
    let json: Value = serde_json::from_str(&jwks.to_json()).expect("JSON");
    for key in json["keys"].as_array().expect("keys array") {
        for member in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
            assert!(
                key.get(member).is_none(),
                "published JWK {} has private member `{member}`",
                key["kid"]
            );
        }
        assert!(key["kid"].is_string(), "published JWK without kid: {key}");
        assert!(key["alg"].is_string(), "published JWK without alg: {key}");
        assert_eq!(key["use"], "sig", "published JWK without use=sig: {key}");
    }
}

/// A read-only store refuses `init`, `rotate` and `retire_expired` with
/// [`Error::ReadOnly`] and keeps its active key.
pub async fn read_only_refuses_rotation(store: &dyn KeyStore) {
    let before = store.active().await.expect("active");
    let checks = [
        ("rotate", store.rotate(None).await.map(|_| ())),
        ("init", store.init(ALG, &policy()).await.map(|_| ())),
        ("retire_expired", store.retire_expired().await.map(|_| ())),
    ];
    for (op, result) in checks {
        match result {
            Err(Error::ReadOnly {
                backend, operation, ..
            }) => {
                assert_eq!(backend, store.name());
                assert_eq!(operation, op);
            }
            other => panic!("{op} on read-only {}: {other:?}", store.name()),
        }
    }
    assert_eq!(store.active().await.expect("active"), before);
}

/// A fresh writable store before `init` is not an empty store: every read
/// and every write but `init` fails with [`Error::NotInitialized`] — no
/// empty key list, no empty JWKS (which a typo in a store's name would
/// otherwise publish, and which would make every token read as signed by
/// an unknown key), no default policy.
pub async fn uninitialized_store_is_not_initialized(store: &dyn KeyStore) {
    fn check<T: std::fmt::Debug>(store: &dyn KeyStore, what: &str, result: Result<T, Error>) {
        match result {
            Err(Error::NotInitialized { backend, location }) => {
                assert_eq!(backend, store.name(), "{what}: backend");
                assert!(!location.is_empty(), "{what}: the error names the store");
            }
            other => panic!(
                "{what} on an uninitialized {} store: expected NotInitialized, got {other:?}",
                store.name()
            ),
        }
    }
    check(store, "active", store.active().await);
    check(store, "sign", store.sign("some-kid", b"x.y").await);
    check(store, "verification_keys", store.verification_keys().await);
    check(store, "key_set", store.key_set().await.map(|k| k.len()));
    check(store, "list", store.list().await);
    check(store, "policy", store.policy().await);
    check(
        store,
        "audit",
        store.audit().await.map(|a| a.findings.len()),
    );
    check(store, "rotate", store.rotate(None).await);
    check(
        store,
        "rotate_if_due",
        store.rotate_if_due().await.map(|_| ()),
    );
    check(store, "retire_expired", store.retire_expired().await);
    // None of it initialized the store behind the caller's back.
    check(store, "active afterwards", store.active().await);
}

/// The whole lifecycle on a fresh writable store whose clock is `clock`:
/// init publishes the active key and its pending successor; rotation swaps
/// the signing kid at once and keeps old tokens verifying until the grace
/// ends; then the old key leaves the JWKS and its tokens are `unknown_key`.
pub async fn rotation_lifecycle(store: &dyn KeyStore, clock: &ManualClock) {
    let t0 = clock.now();
    let policy = policy();
    let init = store.init(ALG, &policy).await.expect("init");
    assert_eq!(store.active().await.expect("active").kid, init.active);
    let published = kids(store).await;
    assert!(
        published.contains(&init.active) && published.contains(&init.pending),
        "init publishes active and pending: {published:?}"
    );
    match store.init(ALG, &policy).await {
        Err(Error::AlreadyInitialized { .. }) => {}
        other => panic!("second init: {other:?}"),
    }
    assert_eq!(store.policy().await.expect("policy"), policy);

    // Not due yet.
    clock.set(t0 + 60);
    assert_eq!(store.rotate_if_due().await.expect("not due").rotated, None);

    // T1 is signed a minute before the rotation, so it is still valid after it.
    let t_rot = t0 + 86_400;
    clock.set(t_rot - 60);
    let t1 = store
        .sign_token(&claims("t1", t_rot - 60), None)
        .await
        .expect("sign T1");

    clock.set(t_rot);
    let report = store
        .rotate_if_due()
        .await
        .expect("rotate")
        .rotated
        .expect("due after rotate_after");
    assert_eq!(report.previous.as_deref(), Some(init.active.as_str()));
    assert_eq!(report.active, init.pending, "the pending key is promoted");
    assert_eq!(report.previous_retire_at, Some(t_rot + 7_200));
    assert_eq!(report.published_for_secs, Some(86_400));
    assert_eq!(store.active().await.expect("active").kid, report.active);

    let t2 = store
        .sign_token(&claims("t2", t_rot), None)
        .await
        .expect("sign T2");
    let h2 = jwt_core::dangerous::insecure_decode_header(&t2).expect("header");
    assert_eq!(h2.kid.as_deref(), Some(report.active.as_str()));

    // The old key no longer signs, but T1 and T2 both verify.
    match store.sign(&init.active, b"x.y").await {
        Err(Error::NotActive { kid, state }) => {
            assert_eq!(kid, init.active);
            assert_eq!(state, KeyState::Retiring);
        }
        other => panic!("signing with the retiring key: {other:?}"),
    }
    let now = t_rot + 10;
    clock.set(now);
    assert_eq!(verify_at(store, &t1, now).await.expect("T1")["sub"], "t1");
    assert_eq!(verify_at(store, &t2, now).await.expect("T2")["sub"], "t2");
    let published = kids(store).await;
    for kid in [&init.active, &report.active, &report.pending] {
        assert!(published.contains(kid), "{kid} published: {published:?}");
    }

    // After the grace, the old key is gone: from the JWKS and for T1.
    let after = t_rot + 7_200;
    clock.set(after);
    let published = kids(store).await;
    assert!(
        !published.contains(&init.active),
        "retired key still published"
    );
    let old = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .find(|r| r.kid == init.active)
        .expect("retired keys stay listed");
    assert_eq!(old.state, KeyState::Retired);
    // Checked at a time T1 has not expired yet: the refusal is the key's.
    let err = verify_at(store, &t1, t_rot).await.unwrap_err();
    assert_eq!(core_kind(&err), Some(ErrorKind::UnknownKey), "{err}");

    // The audit sees the expired key not yet retired on record; retiring fixes it.
    let audit = store.audit().await.expect("audit");
    assert!(
        audit.findings.iter().any(|f| matches!(f,
            crate::policy::Finding::RetiringPastGrace { kid, .. } if *kid == init.active)),
        "audit: {:?}",
        audit.findings
    );
    let retired = store.retire_expired().await.expect("retire");
    assert_eq!(retired, vec![init.active.clone()]);
    assert!(store.audit().await.expect("audit").is_clean());

    // A second rotation: kids are never reused.
    let second = store.rotate(None).await.expect("rotate again");
    let all: Vec<String> = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.kid)
        .collect();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "kids are unique: {all:?}");
    assert_eq!(all.len(), 4);
    assert_eq!(second.active, report.pending);
}

/// Eight rotations at once leave exactly one active and one pending key,
/// every kid distinct; conditional rotations racing on the same active kid
/// rotate exactly once.
pub async fn concurrent_rotations_leave_one_active(store: &dyn KeyStore, clock: &ManualClock) {
    assert_eq!(
        store.clock().now(),
        clock.now(),
        "the store reads the clock it was built with"
    );
    store.init(ALG, &policy()).await.expect("init");
    let r = || store.rotate(None);
    let results = tokio::join!(r(), r(), r(), r(), r(), r(), r(), r());
    let reports = [
        results.0, results.1, results.2, results.3, results.4, results.5, results.6, results.7,
    ];
    for report in &reports {
        assert!(report.is_ok(), "concurrent rotate: {report:?}");
    }
    assert_one_active(store, 10).await;

    let active = store.active().await.expect("active").kid;
    let c = || store.rotate(Some(&active));
    let results = tokio::join!(c(), c(), c(), c());
    let results = [results.0, results.1, results.2, results.3];
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Conflict { expected, .. }) if *expected == active))
        .count();
    assert_eq!(
        (ok, conflicts),
        (1, 3),
        "conditional rotations: {results:?}"
    );
    assert_one_active(store, 11).await;
}

/// Asserts exactly one active and one pending key among `total` distinct kids.
pub async fn assert_one_active(store: &dyn KeyStore, total: usize) {
    let records = store.list().await.expect("list");
    let count = |s: KeyState| records.iter().filter(|r| r.state == s).count();
    assert_eq!(count(KeyState::Active), 1, "active keys: {records:?}");
    assert_eq!(count(KeyState::Pending), 1, "pending keys: {records:?}");
    let unique: HashSet<&str> = records.iter().map(|r| r.kid.as_str()).collect();
    assert_eq!(unique.len(), records.len(), "kids are unique");
    assert_eq!(records.len(), total, "{records:?}");
    let active = store.active().await.expect("active");
    assert!(records
        .iter()
        .any(|r| r.kid == active.kid && r.state == KeyState::Active));
}

async fn kids(store: &dyn KeyStore) -> Vec<String> {
    store
        .verification_keys()
        .await
        .expect("verification keys")
        .keys
        .into_iter()
        .filter_map(|k| k.kid)
        .collect()
}

/// The time conformance runs start at (2023-11-14), on a [`ManualClock`].
pub const T0: i64 = 1_700_000_000;

/// Generates one `#[tokio::test]` per conformance function, named after
/// it, for a backend's test file.
///
/// `$make` is an `async fn(Arc<ManualClock>) -> Option<(Arc<dyn KeyStore>, G)>`:
/// a fresh store built on that clock (starting at [`T0`]), plus a guard `G`
/// kept alive for the test (a temporary directory, or `()`). It returns
/// `None` when the backend's server is not available, and the test returns
/// early (never under CI, which provides every server).
///
/// - `writable = true`: `$make` returns an *uninitialized* store; the tests
///   initialize it with [`ALG`] and [`policy`] where they need keys, and run
///   the rotation lifecycle and concurrent rotations.
/// - `writable = false`: a read-only store (env, a fixed KMS key) that
///   already has its signing key; the tests check that it refuses
///   `init`, `rotate` and `retire_expired`.
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread`
/// features among its dev-dependencies.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path, writable = true) => {
        $crate::conformance_tests!(@common $make, true);

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn rotation_lifecycle() {
            let clock = ::std::sync::Arc::new($crate::conformance::ManualClock::new($crate::conformance::T0));
            let Some((store, _guard)) = $make(clock.clone()).await else {
                return;
            };
            $crate::conformance::rotation_lifecycle(&*store, &clock).await;
        }

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn uninitialized_store_is_not_initialized() {
            let clock = ::std::sync::Arc::new($crate::conformance::ManualClock::new($crate::conformance::T0));
            let Some((store, _guard)) = $make(clock).await else {
                return;
            };
            $crate::conformance::uninitialized_store_is_not_initialized(&*store).await;
        }

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_rotations_leave_one_active() {
            let clock = ::std::sync::Arc::new($crate::conformance::ManualClock::new($crate::conformance::T0));
            let Some((store, _guard)) = $make(clock.clone()).await else {
                return;
            };
            $crate::conformance::concurrent_rotations_leave_one_active(&*store, &clock).await;
        }
    };
    ($make:path, writable = false) => {
        $crate::conformance_tests!(@common $make, false);

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn read_only_refuses_rotation() {
            let clock = ::std::sync::Arc::new($crate::conformance::ManualClock::new($crate::conformance::T0));
            let Some((store, _guard)) = $make(clock).await else {
                return;
            };
            $crate::conformance::read_only_refuses_rotation(&*store).await;
        }
    };
    (@common $make:path, $writable:literal) => {
        $crate::conformance_tests!(@keyed $make, $writable, sign_verify_round_trip);
        $crate::conformance_tests!(@keyed $make, $writable, unknown_kid);
        $crate::conformance_tests!(@keyed $make, $writable, jwks_has_no_private_members);
    };
    // A test of a function that needs a store with keys: writable stores are
    // initialized first.
    (@keyed $make:path, $writable:literal, $function:ident) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $function() {
            let clock = ::std::sync::Arc::new($crate::conformance::ManualClock::new($crate::conformance::T0));
            let Some((store, _guard)) = $make(clock).await else {
                return;
            };
            if $writable {
                $crate::KeyStore::init(
                    &*store,
                    $crate::conformance::ALG,
                    &$crate::conformance::policy(),
                )
                .await
                .expect("init");
            }
            $crate::conformance::$function(&*store).await;
        }
    };
}
