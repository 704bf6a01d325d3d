//! The conformance suite on a real 3-node Redis Cluster (`JWTKIT_TEST_REDIS_CLUSTER`, a
//! comma-separated list of seed nodes, started by `scripts/test.sh`).

mod common;

use std::sync::Arc;

use jwt_refresh::{ManualClock, NewRefresh, RedisRefreshStore, RefreshPolicy, RefreshStore};

fn nodes() -> Option<Vec<String>> {
    let nodes = jwtkit_test_support::service("JWTKIT_TEST_REDIS_CLUSTER", "Redis Cluster")?;
    Some(
        nodes
            .split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect(),
    )
}

async fn make_cluster(policy: RefreshPolicy) -> Option<(RedisRefreshStore, Arc<ManualClock>)> {
    let nodes = nodes()?;
    let clock = Arc::new(ManualClock::starting_now());
    let store = RedisRefreshStore::builder()
        .cluster_nodes(nodes)
        .key_prefix(common::unique_prefix("refresh-cluster"))
        .policy(policy)
        .clock(clock.clone())
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to the test Redis Cluster: {e}"));
    Some((store, clock))
}

async fn make(policy: RefreshPolicy) -> Option<(Arc<dyn RefreshStore>, Arc<ManualClock>)> {
    let (store, clock) = make_cluster(policy).await?;
    Some((Arc::new(store), clock))
}

conformance_tests!(make, race_tasks = 200);

/// The suite only means something on a cluster if families really land on different nodes.
#[tokio::test]
async fn families_spread_over_every_node() {
    let Some(nodes) = nodes() else { return };
    let Some((store, _)) = make_cluster(RefreshPolicy::default()).await else {
        return;
    };
    let mut per_node = vec![0usize; nodes.len()];
    for _ in 0..30 {
        let t = store.issue(NewRefresh::login("spread")).await.unwrap();
        assert!(store.rotate(&t.jti).await.unwrap().rotated().is_some());
        let slot = key_slot(t.family.as_str());
        for (i, node) in nodes.iter().enumerate() {
            let mut con = redis::Client::open(node.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let owned: i64 = redis::cmd("CLUSTER")
                .arg("COUNTKEYSINSLOT")
                .arg(slot)
                .query_async(&mut con)
                .await
                .unwrap();
            if owned > 0 {
                per_node[i] += 1;
            }
        }
    }
    assert!(
        per_node.iter().all(|&n| n > 0),
        "families did not reach every node: {per_node:?}"
    );
    assert_eq!(store.revoke_subject("spread").await.unwrap(), 30);
}

/// CRC16/XMODEM mod 16384, as Redis Cluster computes slots (the whole tag is the family id).
fn key_slot(tag: &str) -> u16 {
    let mut crc: u16 = 0;
    for &b in tag.as_bytes() {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}
