//! The conformance suite and Redis-specific checks on a standalone Redis
//! (`JWTKIT_TEST_REDIS_URL`, started by `scripts/test.sh`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use jwt_refresh::{
    Error, ManualClock, NewRefresh, RedisRefreshStore, RefreshPolicy, RefreshStore, RotateOutcome,
};

async fn make(policy: RefreshPolicy) -> Option<(Arc<dyn RefreshStore>, Arc<ManualClock>)> {
    let (store, clock, _) = make_redis(policy).await?;
    Some((Arc::new(store), clock))
}

async fn make_redis(
    policy: RefreshPolicy,
) -> Option<(RedisRefreshStore, Arc<ManualClock>, String)> {
    let url = jwtkit_test_support::service("JWTKIT_TEST_REDIS_URL", "Redis")?;
    let clock = Arc::new(ManualClock::starting_now());
    let prefix = common::unique_prefix("refresh");
    let store = RedisRefreshStore::builder()
        .url(url)
        .key_prefix(prefix.clone())
        .policy(policy)
        .clock(clock.clone())
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to the test Redis: {e}"));
    Some((store, clock, prefix))
}

conformance_tests!(make, race_tasks = 200);

#[tokio::test]
async fn every_key_has_a_ttl_bounded_by_the_family_lifetime() {
    let Some((store, _clock, prefix)) =
        make_redis(jwt_refresh::conformance::standard_policy()).await
    else {
        return;
    };
    let a = store.issue(NewRefresh::login("ttl-check")).await.unwrap();
    let b = store.rotate(&a.jti).await.unwrap();
    assert!(b.rotated().is_some());
    store.issue(NewRefresh::login("ttl-check")).await.unwrap();
    store.revoke_subject("ttl-check").await.unwrap();
    store.issue(NewRefresh::login("ttl-check")).await.unwrap();

    let url = std::env::var("JWTKIT_TEST_REDIS_URL").unwrap();
    let mut con = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut con)
        .await
        .unwrap();
    // 3 families, 4 tokens (a, its successor, two more logins), 1 subject index
    assert_eq!(keys.len(), 8, "{keys:?}");
    for key in keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(
            ttl > 0 && ttl <= 4 * 3600 + 1,
            "{key} has TTL {ttl}, expected 1..=4h+1s"
        );
    }
}

#[tokio::test]
async fn builder_refuses_contradictory_settings() {
    let refused = |r: Result<RedisRefreshStore, Error>| match r {
        Err(Error::InvalidConfig { setting, .. }) => setting,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let b = || RedisRefreshStore::builder().url("redis://127.0.0.1:1/");
    assert_eq!(
        refused(b().cluster_nodes(["redis://127.0.0.1:2"]).connect().await),
        "url"
    );
    assert_eq!(refused(RedisRefreshStore::builder().connect().await), "url");
    assert_eq!(
        refused(b().key_prefix("a{b}:").connect().await),
        "key_prefix"
    );
    assert_eq!(
        refused(
            b().policy(RefreshPolicy::default())
                .reuse_grace(Duration::from_secs(5))
                .connect()
                .await
        ),
        "policy"
    );
    assert_eq!(
        refused(b().reuse_grace(Duration::from_secs(61)).connect().await),
        "reuse_grace"
    );
    assert_eq!(
        refused(
            b().response_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(1))
                .connect()
                .await
        ),
        "operation_timeout"
    );
    assert_eq!(
        refused(
            RedisRefreshStore::builder()
                .url("not a url")
                .connect()
                .await
        ),
        "url"
    );
}

#[tokio::test]
async fn unreachable_server_is_a_retryable_error_naming_the_endpoint() {
    let port = jwtkit_test_support::free_port();
    let err = RedisRefreshStore::builder()
        .url(format!("redis://user:secret@127.0.0.1:{port}/"))
        .response_timeout(Duration::from_millis(300))
        .operation_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect_err("nothing listens there");
    assert!(err.is_retryable(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(!msg.contains("secret"), "credentials leaked: {msg}");
    assert!(
        matches!(
            err,
            Error::Unavailable {
                backend: "redis",
                ..
            } | Error::Timeout { .. }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn debug_output_hides_credentials_and_token_ids() {
    let Some((store, _, _)) = make_redis(RefreshPolicy::default()).await else {
        return;
    };
    let t = store.issue(NewRefresh::login("debug")).await.unwrap();
    let dbg = format!("{store:?} {t:?} {:?}", store.rotate(&t.jti).await.unwrap());
    let token_part = &t.jti.as_str()[23..];
    assert!(!dbg.contains(token_part), "{dbg}");
    assert!(matches!(
        store.rotate(&t.jti).await.unwrap(),
        RotateOutcome::Reused { .. }
    ));
}
