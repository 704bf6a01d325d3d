//! The PKCS#11 backend against a real PKCS#11 module: SoftHSM2, with a token
//! of this test binary's own (see `pkcs11/mod.rs`). The conformance suite,
//! every algorithm signed in the token and verified by `jsonwebtoken` and
//! PyJWT, what the store leaves on the token (private keys not extractable,
//! gone after retirement; the write-then-swap ledger; the write lock), the
//! URI, the PIN's handling, and 1,000 concurrent signatures.
#![cfg(feature = "pkcs11")]

mod remote_servers;
#[path = "pkcs11/mod.rs"]
mod softhsm;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use jwt_core::{Algorithm, Clock, ManualClock, SystemClock, Validation};
use jwt_keys::pkcs11::{Pin, Pkcs11Error, Pkcs11KeyStore};
use jwt_keys::{conformance, Error, KeySource, KeyState, KeyStore, KeyStoreExt, Verifier};
use remote_servers::verify_independently;
use serde_json::json;
use softhsm::{key_id, own_token, shared_token, unique_object, verify_with_pyjwt, PIN};

/// A fresh, uninitialized store on the suite's clock.
async fn make(clock: Arc<ManualClock>) -> Option<(Arc<dyn KeyStore>, ())> {
    let token = shared_token()?;
    Some((Arc::new(token.store(&unique_object("conf"), clock)), ()))
}

jwt_keys::conformance_tests!(make, writable = true);

fn claims(sub: &str) -> serde_json::Value {
    json!({"sub": sub, "exp": jwt_core::time::now_unix() + 600})
}

fn pkcs11_error(e: &Error) -> Option<&Pkcs11Error> {
    match e {
        Error::Backend { source, .. } => source.downcast_ref::<Pkcs11Error>(),
        _ => None,
    }
}

/// Every algorithm the store offers: keys generated in the token, the
/// token signs, and the token verifies in `jsonwebtoken` (jwt-core for
/// ES512, which it lacks) and in PyJWT with the published JWKS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_signed_in_the_token_verifies_in_jsonwebtoken_and_pyjwt() {
    let Some(token) = shared_token() else { return };
    let algs = [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];
    let mut pairs = Vec::new();
    let mut jwks = jwt_core::Jwks { keys: Vec::new() };
    for alg in algs {
        let store = token.store(&unique_object(alg.as_str()), Arc::new(SystemClock));
        let init = store
            .init(alg, &conformance::policy())
            .await
            .unwrap_or_else(|e| panic!("init {alg}: {e}"));
        // kid: 16 random bytes, base64url.
        assert_eq!(init.active.len(), 22, "{}", init.active);
        // Long inputs too: ES* hashes in-process, the others sign the input.
        for (i, sub) in [
            alg.as_str().to_owned(),
            format!("{alg}-{}", "x".repeat(5000)),
        ]
        .into_iter()
        .enumerate()
        {
            let t = store.sign_token(&claims(&sub), None).await.unwrap();
            let header = jwt_core::dangerous::insecure_decode_header(&t).unwrap();
            assert_eq!(
                (header.alg, header.kid.as_deref()),
                (alg, Some(init.active.as_str()))
            );
            let published = store.verification_keys().await.unwrap();
            if alg == Algorithm::ES512 {
                let keys = jwt_core::KeySet::from_jwks(&published);
                let v = jwt_core::Verifier::with_key_set(keys, Validation::new([alg])).unwrap();
                assert_eq!(
                    v.verify::<serde_json::Value>(&t).unwrap().claims["sub"],
                    sub.as_str()
                );
            } else {
                assert_eq!(
                    verify_independently(&t, &published),
                    Ok(sub.clone()),
                    "{alg} #{i}"
                );
            }
            pairs.push((alg.as_str().to_owned(), t));
        }
        jwks.keys
            .extend(store.verification_keys().await.unwrap().keys);
        // The supported list says so, by the token's mechanisms.
        assert!(store.supported_algorithms().await.unwrap().contains(&alg));
    }
    let Some(subs) = verify_with_pyjwt(&jwks.to_json(), &pairs) else {
        return;
    };
    assert_eq!(subs.len(), pairs.len());
    for (sub, (alg, _)) in subs.iter().zip(&pairs) {
        assert!(sub.starts_with(alg.as_str()), "{sub} for {alg}");
    }
}

/// What an HSM administrator finds on the token: both halves of every key
/// labelled with the store's name and the kid as CKA_ID; the private half
/// sensitive, never extractable, signing only; reading its CKA_VALUE
/// fails. After the grace, retirement destroys both halves: the objects
/// are gone, the kid stays in the ledger as retired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_keys_never_leave_the_token_and_retirement_destroys_them() {
    let Some(token) = shared_token() else { return };
    let clock = Arc::new(ManualClock::new(conformance::T0));
    let object = unique_object("objects");
    let store = token.store(&object, clock.clone());
    let init = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let admin = token.admin();
    for kid in [&init.active, &init.pending] {
        let id = key_id(kid);
        let private = admin.find(ObjectClass::PRIVATE_KEY, &object, Some(&id));
        assert_eq!(private.len(), 1, "one private key for {kid}");
        assert_eq!(
            admin
                .find(ObjectClass::PUBLIC_KEY, &object, Some(&id))
                .len(),
            1
        );
        let info = admin
            .session
            .get_attribute_info(
                private[0],
                &[AttributeType::Value, AttributeType::PrivateExponent],
            )
            .unwrap();
        assert!(
            matches!(
                info[0],
                AttributeInfo::Sensitive | AttributeInfo::TypeInvalid
            ),
            "CKA_VALUE of {kid}: {info:?}"
        );
        // The read itself: C_GetAttributeValue answers CKR_ATTRIBUTE_SENSITIVE,
        // and the binding hands back no value.
        let values = admin
            .session
            .get_attributes(private[0], &[AttributeType::Value])
            .unwrap();
        assert!(values.is_empty(), "CKA_VALUE was readable: {values:?}");
        let flags = admin
            .session
            .get_attributes(
                private[0],
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Sign,
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Derive,
                    AttributeType::Decrypt,
                    AttributeType::Unwrap,
                ],
            )
            .unwrap();
        let want = [
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::AlwaysSensitive(true),
            Attribute::NeverExtractable(true),
            Attribute::Sign(true),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Derive(false),
            // An EC key may only sign: SoftHSM makes EC private keys able to
            // decrypt and unwrap unless the template says no (new-user
            // review of issue 18).
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
        ];
        assert_eq!(flags, want, "attributes of {kid}'s private key");
        let public = admin.find(ObjectClass::PUBLIC_KEY, &object, Some(&key_id(kid)));
        let flags = admin
            .session
            .get_attributes(
                public[0],
                &[
                    AttributeType::Verify,
                    AttributeType::Encrypt,
                    AttributeType::Wrap,
                ],
            )
            .unwrap();
        assert_eq!(
            flags,
            [
                Attribute::Verify(true),
                Attribute::Encrypt(false),
                Attribute::Wrap(false)
            ],
            "attributes of {kid}'s public key"
        );
    }
    drop(admin);

    let t0 = clock.now();
    clock.set(t0 + 86_400);
    let report = store.rotate(None).await.unwrap();
    assert_eq!(report.previous.as_deref(), Some(init.active.as_str()));
    // Retiring (within its grace): both halves are still there, it verifies.
    let admin = token.admin();
    let old = key_id(&init.active);
    assert_eq!(
        admin
            .find(ObjectClass::PRIVATE_KEY, &object, Some(&old))
            .len(),
        1
    );
    clock.set(t0 + 86_400 + 7_200);
    let retired = store.retire_expired().await.unwrap();
    assert_eq!(retired, vec![init.active.clone()]);
    assert!(
        admin
            .find(ObjectClass::PRIVATE_KEY, &object, Some(&old))
            .is_empty(),
        "the private key object is gone"
    );
    assert!(
        admin
            .find(ObjectClass::PUBLIC_KEY, &object, Some(&old))
            .is_empty(),
        "the public key left the JWKS and the token"
    );
    let listed = store.list().await.unwrap();
    let r = listed.iter().find(|r| r.kid == init.active).unwrap();
    assert_eq!((r.state, r.has_private_key), (KeyState::Retired, false));
    // The live keys are still there: 2 × 2 halves.
    let remaining = admin.find(ObjectClass::PRIVATE_KEY, &object, None).len()
        + admin.find(ObjectClass::PUBLIC_KEY, &object, None).len();
    assert_eq!(remaining, 4);
}

/// The ledger is written as a new object with the next generation, then
/// the old one is destroyed: one ledger object after each write. Readers
/// take the highest valid generation: a damaged newer object (a crash
/// during its creation) is passed over, a valid newer one (a crash before
/// the old one was destroyed) wins, and the next write removes both the
/// leftovers and keys no ledger names (an interrupted rotation's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_is_written_then_swapped_and_readers_take_the_newest_valid_one() {
    let Some(token) = own_token("ledger") else {
        return;
    };
    let object = unique_object("swap");
    let clock = Arc::new(ManualClock::new(conformance::T0));
    let store = token.store(&object, clock.clone());
    let init = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let admin = token.admin();
    let ledgers = admin.data(&object, b"jwtkit ledger");
    assert_eq!(ledgers.len(), 1);
    let first: serde_json::Value = serde_json::from_slice(&admin.value(ledgers[0])).unwrap();
    assert_eq!(first["generation"], 1);
    assert_eq!(first["format"], "jwtkit-pkcs11-ledger/1");
    assert!(
        admin.data(&object, b"jwtkit init").is_empty(),
        "init removed its marker"
    );
    assert!(
        admin.data(&object, b"jwtkit lock").is_empty(),
        "init released its lock"
    );

    store.rotate(None).await.unwrap();
    let ledgers = admin.data(&object, b"jwtkit ledger");
    assert_eq!(ledgers.len(), 1, "the old generation is destroyed");
    let second: serde_json::Value = serde_json::from_slice(&admin.value(ledgers[0])).unwrap();
    assert_eq!(second["generation"], 2);

    // A crash while creating generation 3: a damaged object. Readers keep 2.
    admin.create_data(
        &object,
        b"jwtkit ledger",
        br#"{"format":"jwtkit-pkcs11-ledger/1","generation":3,"ledger":{"ver"#,
    );
    let fresh = token.store(&object, clock.clone());
    assert_eq!(fresh.active().await.unwrap().kid, init.pending);
    // A crash after creating generation 3, before destroying 2: 3 wins.
    let mut third = second.clone();
    third["generation"] = json!(3);
    let keys = third["ledger"]["keys"].as_array_mut().unwrap();
    let (a, p) = (keys[1]["kid"].clone(), keys[2]["kid"].clone());
    // Generation 3 says the pending key of generation 2 is... the same
    // ledger with a recognizable change: the policy's leeway.
    third["ledger"]["policy"]["leeway_secs"] = json!(61);
    admin.create_data(&object, b"jwtkit ledger", third.to_string().as_bytes());
    let fresh = token.store(&object, clock.clone());
    assert_eq!(
        fresh.policy().await.unwrap().leeway(),
        Duration::from_secs(61)
    );
    assert_eq!(json!(fresh.active().await.unwrap().kid), a);
    // An interrupted rotation's key pair, which no ledger names.
    let orphan = vec![7u8; 16];
    admin
        .session
        .generate_key_pair(
            &cryptoki::mechanism::Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(object.as_bytes().to_vec()),
                Attribute::Id(orphan.clone()),
                Attribute::EcParams(vec![
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                ]),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::Label(object.as_bytes().to_vec()),
                Attribute::Id(orphan.clone()),
            ],
        )
        .unwrap();
    // The next write builds on generation 3 and removes every leftover.
    let report = fresh.rotate(None).await.unwrap();
    assert_eq!(json!(report.previous.unwrap()), a);
    assert_eq!(json!(report.active), p);
    let ledgers = admin.data(&object, b"jwtkit ledger");
    assert_eq!(ledgers.len(), 1, "leftover ledger objects removed");
    let fourth: serde_json::Value = serde_json::from_slice(&admin.value(ledgers[0])).unwrap();
    assert_eq!(fourth["generation"], 4);
    assert_eq!(fourth["ledger"]["policy"]["leeway_secs"], 61);
    assert!(admin
        .find(ObjectClass::PRIVATE_KEY, &object, Some(&orphan))
        .is_empty());
    assert!(admin
        .find(ObjectClass::PUBLIC_KEY, &object, Some(&orphan))
        .is_empty());
    // The first store object sees the rotation once its cached state expires.
    clock.advance(31);
    assert_eq!(store.active().await.unwrap().kid, report.active);
}

/// The write lock: a lock left by a process that is gone (this host, dead
/// pid) is removed at once; one held by a live process blocks writes for
/// `lock_wait`, with a retryable error naming the holder, and is taken as
/// soon as that process ends; a damaged lock object is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_lock_waits_for_a_live_writer_and_takes_over_from_a_dead_one() {
    let Some(token) = own_token("lock") else {
        return;
    };
    let object = unique_object("lock");
    let store = token
        .builder(&object)
        .lock_wait(Duration::from_millis(800))
        .build()
        .unwrap();
    store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let admin = token.admin();
    // Our own lock's JSON, as a template for other holders.
    let machine = format!(
        "{}/{}",
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap()
            .trim(),
        std::fs::read_link("/proc/self/ns/pid").unwrap().display()
    );
    let start_of = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .nth(19)
            .unwrap()
            .parse()
            .unwrap()
    };
    let holder = |pid: u32, start: u64| {
        let now = jwt_core::time::now_unix() as u64 * 1000;
        json!({
            "format": "jwtkit-pkcs11-lock/1", "nonce": format!("test-{pid}"), "pid": pid,
            "host": "test-host", "machine": machine, "start": start, "operation": "rotate",
            "acquired_ms": now, "expires_ms": now + 3_600_000u64
        })
        .to_string()
    };

    // A live writer: a child process that sleeps.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id();
    admin.create_data(
        &object,
        b"jwtkit lock",
        holder(pid, start_of(pid)).as_bytes(),
    );
    let started = Instant::now();
    let err = store.rotate(None).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("pid {pid} on test-host")) && text.contains("being written"),
        "{text}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "waited lock_wait"
    );
    // It ends: its lock is abandoned at once.
    child.kill().unwrap();
    child.wait().unwrap();
    let before = store.active().await.unwrap().kid;
    let report = store.rotate(None).await.unwrap();
    assert_eq!(report.previous.as_deref(), Some(before.as_str()));
    assert!(admin.data(&object, b"jwtkit lock").is_empty());

    // A damaged lock object (a crash while creating it) is removed.
    admin.create_data(&object, b"jwtkit lock", b"{\"format\":\"jwtkit-pkc");
    store.rotate(None).await.unwrap();
    assert!(admin.data(&object, b"jwtkit lock").is_empty());
}

/// 1,000 signatures from 32 tasks at once on one store: none fails, every
/// token verifies, and the pool never opens more sessions than allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_signatures_from_32_tasks() {
    let Some(token) = shared_token() else { return };
    let store = Arc::new(
        token
            .builder(&unique_object("load"))
            .max_sessions(8)
            .build()
            .unwrap(),
    );
    store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let verifier = Verifier::new(
        KeySource::Store(store.clone() as Arc<dyn KeyStore>),
        Validation::new([Algorithm::ES256]),
    )
    .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let store = store.clone();
        let n = if t < 8 { 32 } else { 31 };
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..n {
                let sub = format!("t{t}-{i}");
                out.push((sub.clone(), store.sign_token(&claims(&sub), None).await));
            }
            out
        }));
    }
    let mut signed = Vec::new();
    for task in tasks {
        signed.extend(task.await.unwrap());
    }
    let took = started.elapsed();
    assert_eq!(signed.len(), 1_000);
    let mut subs = HashSet::new();
    for (sub, result) in signed {
        let token = result.unwrap_or_else(|e| panic!("{sub}: {e}"));
        let data = verifier.verify::<serde_json::Value>(&token).await.unwrap();
        assert_eq!(data.claims["sub"], sub.as_str());
        subs.insert(sub);
    }
    assert_eq!(subs.len(), 1_000);
    let stats = store.stats();
    assert!(stats.sessions_opened <= 8, "{stats:?}");
    // PKCS#11 logs in per application: the first session of the process
    // logged in, every later one finds itself logged in.
    assert!(
        stats.logins <= 1,
        "one login at most for the whole pool: {stats:?}"
    );
    assert_eq!(stats.reconnects, 0, "{stats:?}");
    eprintln!("1,000 signatures from 32 tasks in {took:?} ({stats:?})");
}

/// Two store objects on one token (as two processes would hold them)
/// rotating 10 times each, all at once: the writes serialize into 20 whole
/// rotations; one active, one pending, no kid twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_rotating_at_once_serialize_into_whole_rotations() {
    let Some(token) = shared_token() else { return };
    let object = unique_object("race");
    let a = Arc::new(token.store(&object, Arc::new(SystemClock)));
    let b = Arc::new(token.store(&object, Arc::new(SystemClock)));
    a.init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let run = |s: Arc<Pkcs11KeyStore>| {
        tokio::spawn(async move {
            for _ in 0..10 {
                s.rotate(None).await.unwrap();
            }
        })
    };
    let (x, y) = tokio::join!(run(a.clone()), run(b.clone()));
    x.unwrap();
    y.unwrap();
    // Grace: two hours; none retired. 2 from init + 20 rotations.
    let fresh = token.store(&object, Arc::new(SystemClock));
    conformance::assert_one_active(&fresh, 22).await;
    let admin = token.admin();
    assert_eq!(admin.data(&object, b"jwtkit ledger").len(), 1);
    let ledger: serde_json::Value =
        serde_json::from_slice(&admin.value(admin.data(&object, b"jwtkit ledger")[0])).unwrap();
    assert_eq!(ledger["generation"], 21, "one generation per write");
}

/// The URI form opens through `open_store` (nothing loaded yet), names the
/// store without its query, and never shows a PIN; mistakes in the URI, the
/// builder or the token's name are errors that say what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uris_pins_and_mistakes() {
    let Some(token) = shared_token() else { return };
    let object = unique_object("uri");
    let store = jwt_keys::open_store(&token.uri(&object)).unwrap();
    assert_eq!(store.name(), "pkcs11");
    store
        .init(Algorithm::EdDSA, &conformance::policy())
        .await
        .unwrap();
    let t = store.sign_token(&claims("uri"), None).await.unwrap();
    assert_eq!(
        verify_independently(&t, &store.verification_keys().await.unwrap()),
        Ok("uri".into())
    );
    let debug = format!("{store:?}");
    assert!(
        debug.contains(&format!("pkcs11:token={};object={object}", token.label)),
        "{debug}"
    );

    // pin-value works (with a warning) and never shows.
    let with_value = format!(
        "pkcs11:token={};object={object}?module-path={}&pin-value={}",
        token.label,
        token.hsm.module.display(),
        PIN
    );
    let s = jwt_keys::open_store(&with_value).unwrap();
    assert!(!format!("{s:?}").contains(PIN));
    assert_eq!(s.active().await.unwrap(), store.active().await.unwrap());
    let err = jwt_keys::open_store(&format!("{with_value}&tokn=x")).unwrap_err();
    assert_eq!(err.kind(), "invalid_uri");
    assert!(
        !err.to_string().contains(PIN) && !format!("{err:?}").contains(PIN),
        "{err}"
    );
    assert!(err.to_string().contains("pin-value=***"), "{err}");

    // A token label that matches nothing: not retryable, and the error
    // lists the tokens the module has.
    let err = Pkcs11KeyStore::builder(&token.hsm.module, "no-such-token-label", &object)
        .pin(Pin::new(PIN))
        .build()
        .unwrap()
        .active()
        .await
        .unwrap_err();
    let e = pkcs11_error(&err).unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(e.operation(), "find the token");
    assert!(
        !err.is_retryable(),
        "a token never found is a setting to fix"
    );
    let text = err.to_string();
    assert!(
        text.contains("no token matches") && text.contains(&token.label),
        "lists the tokens present: {text}"
    );

    // An algorithm outside the policy, an HMAC algorithm.
    let s = token.store(&unique_object("hmac"), Arc::new(SystemClock));
    let err = s
        .init(Algorithm::HS256, &conformance::policy())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_config", "{err}");
    assert!(err.to_string().contains("shared secrets"), "{err}");

    // Builder mistakes name the setting.
    for (b, setting) in [
        (token.builder("x").max_sessions(0), "max_sessions"),
        (token.builder("x").rsa_key_bits(1024), "rsa_key_bits"),
        (token.builder(""), "object"),
        (
            token.builder("x").lock_lease(Duration::from_secs(1)),
            "lock_lease",
        ),
        (Pkcs11KeyStore::builder("lib.so", "t", "x"), "module_path"),
    ] {
        match b.build() {
            Err(Error::InvalidConfig { setting: s, .. }) => assert_eq!(s, setting),
            other => panic!("{setting}: {other:?}"),
        }
    }
    // Missing parts of a URI.
    for (uri, says) in [
        ("pkcs11:token=t;object=o", "no module-path"),
        ("pkcs11:token=t?module-path=/usr/lib/x.so", "no object"),
        ("pkcs11:object=o?module-path=/usr/lib/x.so", "no token"),
    ] {
        let err = jwt_keys::open_store(uri).unwrap_err();
        assert_eq!(err.kind(), "invalid_uri", "{uri}");
        assert!(err.to_string().contains(says), "{uri}: {err}");
    }
    // A module that is not one: a clear error, no panic.
    let err = Pkcs11KeyStore::builder("/etc/hostname", &token.label, "o")
        .pin(Pin::new(PIN))
        .build()
        .unwrap()
        .active()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("module-path") || err.to_string().contains("load the module"),
        "{err}"
    );
}

/// A private key another PKCS#11 client imported under the store's label
/// and a ledger kid's CKA_ID (with the PIN) is never used to sign: it is
/// not CKA_LOCAL, so someone may hold a copy (attacker's review of issue
/// 18, which made the store sign with an imported key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_imported_by_another_client_never_signs() {
    let Some(token) = own_token("imported") else {
        return;
    };
    let clock = Arc::new(ManualClock::new(conformance::T0));
    let object = unique_object("imported");
    let store = token.store(&object, clock.clone());
    let init = store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    drop(store);
    let admin = token.admin();
    let id = key_id(&init.active);
    for h in admin.find(ObjectClass::PRIVATE_KEY, &object, Some(&id)) {
        admin.session.destroy_object(h).unwrap();
    }
    // P-256's OID, and a private scalar known outside the token.
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    admin
        .session
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::EC),
            Attribute::EcParams(p256),
            Attribute::Value(vec![0x11; 32]),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Label(object.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ])
        .unwrap();
    drop(admin);
    let store = token.store(&object, clock.clone());
    let err = store
        .sign_token(&json!({"sub": "x", "exp": conformance::T0 + 60}), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("was not generated in the token"),
        "{err}"
    );
}

/// A module in a directory other users may write (and that is not sticky)
/// is never loaded: someone could swap it for their own library between
/// the check of the file and its loading (attacker's review of issue 18,
/// which won that race and ran code in the process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_in_a_directory_others_may_write_is_refused() {
    let Some(token) = shared_token() else { return };
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let copy = shared.join("module.so");
    std::fs::copy(&token.hsm.module, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let uri = token.uri("writable-dir").replace(
        &token.hsm.module.display().to_string(),
        &copy.display().to_string(),
    );
    let store = jwt_keys::open_store(&uri).unwrap();
    let err = store.active().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("directories no other user may change"),
        "{err}"
    );
    assert_eq!(err.kind(), jwt_keys::ErrorKind::InvalidConfig, "{err}");
}
