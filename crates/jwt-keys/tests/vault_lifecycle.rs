//! The Vault store's token lifecycle against the harness's OpenBao: an
//! AppRole whose tokens live 3 s and at most 8 s, and a store that signs
//! without pause for 30 s across many renewals, at least two logins after
//! the max TTL and one revocation, with no failed signature. Its own test
//! binary, so its 30 s run alongside the other Vault tests.
#![cfg(feature = "vault")]

mod remote_servers;
mod vault_admin;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_core::{Algorithm, SystemClock};
use jwt_keys::vault::{SecretId, VaultAuth, VaultKeyStore};
use jwt_keys::{conformance, KeyStore, KeyStoreExt};
use remote_servers::{unique, verify_independently};
use serde_json::json;
use vault_admin::{server, store_policy, Admin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_for_30_seconds_across_renewals_relogins_and_a_revocation() {
    let Some((addr, root)) = server() else {
        return;
    };
    let admin = Admin::new(&addr, &root);
    let key = unique("life");
    let mount = unique("approle-life");
    let policy = unique("policy");
    admin.enable_auth(&mount, "approle").await;
    admin.put_policy(&policy, &store_policy(&key)).await;
    let role_id = admin.approle(&mount, "issuer", &policy, "3s", "8s").await;
    let (secret_id, _) = admin.secret_id(&mount, "issuer").await;
    let store = Arc::new(
        VaultKeyStore::builder("transit", &key)
            .address(&addr)
            .auth(VaultAuth::approle(role_id, SecretId::new(secret_id)).with_mount(&mount))
            .timeout(Duration::from_secs(5))
            // The ledger is read every second: KV calls cross token changes too.
            .state_ttl(Duration::from_secs(1))
            .clock(Arc::new(SystemClock))
            .build()
            .unwrap(),
    );
    store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let jwks = store.verification_keys().await.unwrap();

    let run = Duration::from_secs(30);
    let started = Instant::now();
    let signed = Arc::new(AtomicUsize::new(0));
    let mut failures = Vec::new();
    let mut workers = Vec::new();
    for w in 0..2 {
        let (store, signed, jwks) = (store.clone(), signed.clone(), jwks.clone());
        workers.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            let mut n = 0;
            while started.elapsed() < run {
                let sub = format!("w{w}-{n}");
                let exp = jwt_core::time::now_unix() + 600;
                match store
                    .sign_token(&json!({"sub": sub, "exp": exp}), None)
                    .await
                {
                    Ok(t) => {
                        if let Err(e) = verify_independently(&t, &jwks).map(|s| assert_eq!(s, sub))
                        {
                            failed.push(format!("{:?}: does not verify: {e}", started.elapsed()));
                        }
                        signed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failed.push(format!("{:?}: {e}", started.elapsed())),
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            failed
        }));
    }
    // Half way: every token of the mount revoked (`bao token revoke -mode=path`).
    tokio::time::sleep(Duration::from_secs(15)).await;
    admin.revoke_logins(&mount).await;
    for w in workers {
        failures.extend(w.await.unwrap());
    }

    let stats = store.auth_stats();
    let signed = signed.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    assert!(signed > 200, "only {signed} signatures");
    // The first login, one at each max TTL (8 s: at least two more in
    // 30 s) and one after the revocation.
    assert!(stats.logins >= 4, "{stats:?}");
    assert!(stats.renewals >= 4, "{stats:?}");
    store.check_auth().await.unwrap();
    eprintln!("signed {signed} tokens in {run:?}: {stats:?}");
}
