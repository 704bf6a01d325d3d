//! Issue 12: the verifier is the one key cache. Its synchronous fast path
//! (`verify_cached`) does no I/O and says when the caller should fall back
//! to `verify`, which reloads on an unknown kid; retiring keys stop at the
//! end of their grace in memory; and one rule says which algorithms a key
//! verifies with.

use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, Clock, Jwks, ManualClock, SigningKey, Validation};
use jwt_keys::{
    AlgorithmRule, Error, KeySource, KeyStore, KeyStoreExt, MemoryKeyStore, RotationPolicy,
    Verifier,
};
use serde_json::{json, Value};

const T0: i64 = 1_800_000_000;
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn kind<T>(result: &Result<T, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.kind().as_str(),
    }
}

fn kid_of(token: &str) -> String {
    jwt_core::dangerous::insecure_decode_header(token)
        .unwrap()
        .kid
        .unwrap()
}

async fn token(store: &MemoryKeyStore, clock: &ManualClock) -> String {
    let now = clock.now();
    store
        .sign_token(&json!({"sub": "alice", "iat": now, "exp": now + 600}), None)
        .await
        .unwrap()
}

#[tokio::test]
async fn verify_cached_serves_from_memory_and_tells_the_caller_when_to_fall_back() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(MemoryKeyStore::with_clock(clock.clone()));
    let policy = RotationPolicy::builder()
        .rotate_after(DAY)
        .prepublish(HOUR)
        .max_token_lifetime(HOUR)
        .verify_grace(2 * HOUR)
        .build()
        .unwrap();
    store.init(Algorithm::ES256, &policy).await.unwrap();
    let verifier = Verifier::builder(
        KeySource::Store(store.clone()),
        Validation::new(Algorithm::ALL).clock(clock.clone()),
    )
    .algorithms(AlgorithmRule::KeysOnly)
    .clock(clock.clone())
    .build()
    .unwrap();
    let first = token(&store, &clock).await;

    // Nothing loaded yet: the fast path does not load, it says so.
    let r = verifier.verify_cached::<Value>(&first);
    assert!(matches!(r, Err(Error::StaleKeys { .. })), "{r:?}");
    assert_eq!(verifier.fetch_count(), 0);
    verifier.refresh().await.unwrap();
    assert_eq!(kind(&verifier.verify_cached::<Value>(&first)), "ok");
    assert_eq!(verifier.fetch_count(), 1);

    // Two rotations elsewhere: the new active kid is unknown here. The fast
    // path answers unknown_key without I/O; `verify` reloads (an explicit
    // refresh never starts the unknown-kid cooldown) and accepts it.
    store.rotate(None).await.unwrap();
    store.rotate(None).await.unwrap();
    let newer = token(&store, &clock).await;
    match verifier.verify_cached::<Value>(&newer) {
        Err(Error::Core(jwt_core::Error::UnknownKey { kid: Some(kid) })) => {
            assert_eq!(kid, kid_of(&newer))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(verifier.fetch_count(), 1, "the fast path did no I/O");
    assert_eq!(kind(&verifier.verify::<Value>(&newer).await), "ok");
    assert_eq!(verifier.fetch_count(), 2);
    assert_eq!(kind(&verifier.verify_cached::<Value>(&newer)), "ok");

    // The first key is retiring; at the end of its grace it stops verifying,
    // dropped in memory (no fetch), while the current key keeps verifying.
    assert!(verifier.cached_kids().contains(&kid_of(&first)));
    clock.advance_by(2 * HOUR);
    let r = verifier.verify_cached::<Value>(&first);
    assert_eq!(kind(&r), "unknown_key", "{r:?}");
    assert!(!verifier.cached_kids().contains(&kid_of(&first)));
    assert_eq!(verifier.fetch_count(), 2, "pruned without I/O");
    let current = token(&store, &clock).await;
    assert_eq!(kind(&verifier.verify_cached::<Value>(&current)), "ok");
}

/// The one rule, on a fixed JWKS: an entry's `alg` decides; without one,
/// only an explicit list does.
#[tokio::test]
async fn keys_name_their_algorithms_or_the_caller_must() {
    let bound = SigningKey::generate(Algorithm::PS256)
        .unwrap()
        .with_kid("bound");
    let unbound = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("unbound");
    let mut bound_jwk = bound.to_public_jwk().unwrap();
    bound_jwk.alg = Some("PS256".into());
    let mut unbound_jwk = unbound.to_public_jwk().unwrap();
    unbound_jwk.alg = None;
    let jwks = Jwks {
        keys: vec![bound_jwk, unbound_jwk],
    };
    let sign = |key: &SigningKey, alg| {
        let pem = key.to_pkcs8_pem().unwrap();
        let key = SigningKey::from_pem(pem.as_bytes())
            .unwrap()
            .with_kid(key.kid().unwrap());
        jwt_core::Signer::new(key, alg)
            .unwrap()
            .sign(&json!({"sub": "a", "exp": 4_000_000_000_i64}))
            .unwrap()
    };
    let keys_only = Verifier::builder(
        KeySource::Jwks(jwks.clone()),
        Validation::new(Algorithm::ALL),
    )
    .algorithms(AlgorithmRule::KeysOnly)
    .build()
    .unwrap();
    // Bound to PS256: PS256 verifies, RS256 (the RSA family's usual
    // default) with the same key is invalid_algorithm.
    assert_eq!(
        kind(&keys_only.verify_cached::<Value>(&sign(&bound, Algorithm::PS256))),
        "ok"
    );
    assert_eq!(
        kind(&keys_only.verify_cached::<Value>(&sign(&bound, Algorithm::RS256))),
        "invalid_algorithm"
    );
    // No `alg`: a configuration error naming the key, not a guess.
    match keys_only.verify_cached::<Value>(&sign(&unbound, Algorithm::ES256)) {
        Err(Error::Core(jwt_core::Error::Config { reason })) => {
            assert!(reason.contains("`unbound`"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // With an explicit list, the unbound key verifies with the listed
    // algorithms of its family; the bound key still only with its own.
    let listed = Verifier::new(
        KeySource::Jwks(jwks),
        Validation::new([Algorithm::ES256, Algorithm::RS256]),
    )
    .unwrap();
    assert_eq!(
        kind(&listed.verify_cached::<Value>(&sign(&unbound, Algorithm::ES256))),
        "ok"
    );
    assert_eq!(
        kind(&listed.verify_cached::<Value>(&sign(&bound, Algorithm::RS256))),
        "invalid_algorithm"
    );
}
