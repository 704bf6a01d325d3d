//! The Vault store's login methods against the harness's OpenBao
//! (`JWTKIT_TEST_VAULT_ADDR`/`_TOKEN`): AppRole with a plain and a
//! response-wrapped secret id, JWT login trusting the JWKS of a jwt-keys
//! store (the dogfooding recipe of docs/backends/vault.md, library-level),
//! the Kubernetes login's request shape (the jwt method mounted at
//! `kubernetes`: this machine has no Kubernetes API for a real TokenReview),
//! a token from the environment that is renewed, a revoked token replaced
//! by a new login, a destroyed secret id, and a denial by policy. Each test
//! mounts its auth method at a path of its own, with the least-privilege
//! policy docs/backends/vault.md gives.
#![cfg(feature = "vault")]

mod common;
mod remote_servers;
mod vault_admin;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::JwksServer;
use jwt_core::{Algorithm, SystemClock};
use jwt_keys::vault::{SecretId, VaultAuth, VaultError, VaultKeyStore};
use jwt_keys::{conformance, Error, KeyStore, KeyStoreExt, MemoryKeyStore};
use remote_servers::{unique, verify_independently};
use serde_json::{json, Value};
use vault_admin::{server, store_policy, Admin};

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": jwt_core::time::now_unix() + 600})
}

fn store(addr: &str, key: &str, auth: VaultAuth) -> VaultKeyStore {
    VaultKeyStore::builder("transit", key)
        .address(addr)
        .auth(auth)
        .timeout(Duration::from_secs(10))
        .clock(Arc::new(SystemClock))
        .build()
        .expect("build")
}

/// Initializes the store and signs a token that verifies with its JWKS.
async fn init_and_sign(store: &VaultKeyStore, sub: &str) {
    store
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap_or_else(|e| panic!("init: {e}"));
    signs(store, sub).await;
}

async fn signs(store: &VaultKeyStore, sub: &str) {
    let token = store
        .sign_token(&claims(sub), None)
        .await
        .unwrap_or_else(|e| panic!("sign: {e}"));
    let jwks = store.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&token, &jwks), Ok(sub.to_owned()));
}

/// An AppRole mount, a role with the store's policy, and its role id.
async fn approle_setup(admin: &Admin, key: &str, ttl: &str, max: &str) -> (String, String) {
    let mount = unique("approle");
    let policy = unique("policy");
    admin.enable_auth(&mount, "approle").await;
    admin.put_policy(&policy, &store_policy(key)).await;
    let role_id = admin.approle(&mount, "issuer", &policy, ttl, max).await;
    (mount, role_id)
}

/// A secret file as it should be: mode 0600.
fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    set_mode(path, 0o600);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn vault_error(e: &Error) -> &VaultError {
    match e {
        Error::Backend { source, .. } => {
            let mut next: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
            while let Some(err) = next {
                if let Some(v) = err.downcast_ref::<VaultError>() {
                    return v;
                }
                next = err.source();
            }
            panic!("no VaultError in {e:?}")
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn approle_login_with_a_secret_id() {
    let Some((addr, root)) = server() else {
        return;
    };
    let admin = Admin::new(&addr, &root);
    let key = unique("ar");
    let (mount, role_id) = approle_setup(&admin, &key, "1h", "4h").await;
    let (secret_id, _) = admin.secret_id(&mount, "issuer").await;
    let auth = VaultAuth::approle(&role_id, SecretId::new(&secret_id)).with_mount(&mount);
    let store = store(&addr, &key, auth);
    assert_eq!(store.auth_method(), "approle");
    init_and_sign(&store, "approle").await;
    let stats = store.auth_stats();
    assert_eq!((stats.logins, stats.retried_calls), (1, 0), "{stats:?}");
    store.check_auth().await.unwrap();
    // Neither the secret id nor the token shows in Debug output.
    let shown = format!("{store:?}");
    assert!(!shown.contains(&secret_id), "{shown}");
    assert!(
        shown.contains("<redacted>") && shown.contains(&mount),
        "{shown}"
    );
}

/// `VAULT_SECRET_ID_FILE` with `VAULT_SECRET_ID_WRAPPED=true`: unwrapped
/// once; a second process with the same (spent) wrapping token gets a
/// clear, non-retryable error; a wrapping token around something else
/// than a secret id is refused before it is unwrapped.
#[tokio::test]
async fn approle_login_with_a_wrapped_secret_id_from_a_file() {
    let Some((addr, root)) = server() else {
        return;
    };
    let admin = Admin::new(&addr, &root);
    let key = unique("wrap");
    let (mount, role_id) = approle_setup(&admin, &key, "1h", "4h").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret-id");
    write_private(
        &file,
        &format!("{}\n", admin.wrapped_secret_id(&mount, "issuer").await),
    );
    let auth = || {
        VaultAuth::approle(&role_id, SecretId::from_file(&file).response_wrapped())
            .with_mount(&mount)
    };
    let first = store(&addr, &key, auth());
    init_and_sign(&first, "wrapped").await;

    let second = store(&addr, &key, auth());
    let err = second.sign_token(&claims("x"), None).await.unwrap_err();
    assert_eq!(err.kind(), "backend", "{err}");
    assert!(!err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("already unwrapped or has expired") && text.contains("VAULT_SECRET_ID_FILE"),
        "{text}"
    );
    assert_eq!(second.check_auth().await.unwrap_err().kind(), "backend");

    // A wrapping token made by sys/wrapping/wrap, not by the role's secret-id path.
    let (_, other) = admin
        .call(
            reqwest::Method::POST,
            "sys/wrapping/wrap",
            Some(json!({"secret_id": "not-from-approle"})),
            Some("5m"),
        )
        .await;
    write_private(&file, other["wrap_info"]["token"].as_str().unwrap());
    let third = store(&addr, &key, auth());
    let err = third.sign_token(&claims("x"), None).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("refusing to unwrap") && text.contains("sys/wrapping/wrap"),
        "{text}"
    );
    assert!(!err.is_retryable());
    // The first store keeps its unwrapped secret id and token.
    signs(&first, "still").await;
}

/// The harness's root token is not renewable; a token with a 4 s TTL is,
/// and the store renews it in the background while signing.
#[tokio::test]
async fn a_given_token_is_renewed() {
    let Some((addr, root)) = server() else {
        return;
    };
    let admin = Admin::new(&addr, &root);
    let key = unique("tok");
    let policy = unique("policy");
    admin.put_policy(&policy, &store_policy(&key)).await;
    let token = admin
        .post(
            "auth/token/create",
            json!({"policies": [policy], "ttl": "4s", "explicit_max_ttl": "1m", "renewable": true}),
        )
        .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = store(&addr, &key, VaultAuth::token(&token));
    init_and_sign(&store, "given").await;
    let deadline = Instant::now() + Duration::from_secs(9);
    while Instant::now() < deadline {
        signs(&store, "given").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stats = store.auth_stats();
    assert_eq!(stats.logins, 1, "{stats:?}");
    assert!(stats.renewals >= 2, "{stats:?}");
    assert!(!format!("{store:?}").contains(&token));
}

/// `bao token revoke`: the next call is denied, the token turns out dead,
/// the store logs in again and the call succeeds — no failure seen.
#[tokio::test]
async fn a_revoked_token_is_replaced_by_a_new_login() {
    let Some((addr, root)) = server() else {
        return;
    };
    let admin = Admin::new(&addr, &root);
    let key = unique("revoke");
    let (mount, role_id) = approle_setup(&admin, &key, "1h", "4h").await;
    let (secret_id, _) = admin.secret_id(&mount, "issuer").await;
    let store = store(
        &addr,
        &key,
        VaultAuth::approle(&role_id, SecretId::new(secret_id)).with_mount(&mount),
    );
    init_and_sign(&store, "before").await;
    admin.revoke_logins(&mount).await;
    signs(&store, "after").await;
    let stats = store.auth_stats();
    assert_eq!((stats.logins, stats.retried_calls), (2, 1), "{stats:?}");
}

/// A secret id destroyed while the store runs, then its token revoked:
/// no new token can be had. The error says so, names the setting and is
/// not retryable; health reports it too.
#[tokio::test]
async fn a_destroyed_secret_id_is_a_clear_non_retryable_error() {
    let Some((addr, root)) = server() else {
        return;
    };
    let admin = Admin::new(&addr, &root);
    let key = unique("destroyed");
    let (mount, role_id) = approle_setup(&admin, &key, "1h", "4h").await;
    let (secret_id, accessor) = admin.secret_id(&mount, "issuer").await;
    let store = store(
        &addr,
        &key,
        VaultAuth::approle(&role_id, SecretId::new(&secret_id)).with_mount(&mount),
    );
    init_and_sign(&store, "before").await;
    admin.destroy_secret_id(&mount, "issuer", &accessor).await;
    admin.revoke_logins(&mount).await;

    let err = store.sign_token(&claims("after"), None).await.unwrap_err();
    assert_eq!(err.kind(), "backend", "{err}");
    assert!(!err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("AppRole login refused")
            && text.contains("VAULT_SECRET_ID")
            && text.contains("destroyed"),
        "{text}"
    );
    assert!(!text.contains(&secret_id), "{text}");
    let v = vault_error(&err);
    assert_eq!(v.status(), Some(400), "{err}");
    let health = store.check_auth().await.unwrap_err();
    assert!(
        health.to_string().contains("AppRole login refused"),
        "{health}"
    );
    assert!(!health.is_retryable());
    // `active()` is what `/healthz` and `TokenService::health` ask: it
    // fails too while no token can be had.
    let active = store.active().await.unwrap_err();
    assert!(
        active.to_string().contains("AppRole login refused"),
        "{active}"
    );
}

/// Denied although the token is valid: the policy's fault, said so, and no
/// re-login (a login would not help).
#[tokio::test]
async fn a_denial_by_policy_is_reported_as_such() {
    let Some((addr, root)) = server() else {
        return;
    };
    let admin = Admin::new(&addr, &root);
    let key = unique("policy");
    let (mount, role_id) = approle_setup(&admin, &key, "1h", "4h").await;
    let (secret_id, _) = admin.secret_id(&mount, "issuer").await;
    let store = store(
        &addr,
        &unique("other-key"),
        VaultAuth::approle(&role_id, SecretId::new(secret_id)).with_mount(&mount),
    );
    let err = store.active().await.unwrap_err();
    assert_eq!(err.kind(), "backend");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("policy does not allow"), "{err}");
    assert_eq!(vault_error(&err).status(), Some(403));
    // Vault's own message, without its "1 error occurred:\n\t* " wrapping.
    assert_eq!(vault_error(&err).messages(), ["permission denied"]);
    assert!(
        err.to_string().contains("(HTTP 403): permission denied; "),
        "{err}"
    );
    let stats = store.auth_stats();
    assert_eq!((stats.logins, stats.retried_calls), (1, 0), "{stats:?}");
}

/// A jwtkit issuer (here a jwt-keys `MemoryKeyStore`, the store `jwtkit
/// serve` signs with, its JWKS served over HTTP as `serve` publishes it at
/// /.well-known/jwks.json) logs a second jwtkit into OpenBao: the jwt auth
/// method trusts the issuer's `jwks_url`. The workload token file is read
/// again at each login: a bad token in it shows in the next login's error
/// and in health; a good one again recovers without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_login_trusting_a_jwtkit_jwks() {
    let Some((addr, root)) = server() else {
        return;
    };
    let admin = Admin::new(&addr, &root);
    let issuer = MemoryKeyStore::new();
    issuer
        .init(Algorithm::ES256, &conformance::policy())
        .await
        .unwrap();
    let jwks = JwksServer::serving(issuer.verification_keys().await.unwrap().to_json()).await;
    let key = unique("jwt");
    let mount = unique("jwt");
    let policy = unique("policy");
    admin.enable_auth(&mount, "jwt").await;
    admin
        .post(
            &format!("auth/{mount}/config"),
            json!({"jwks_url": jwks.url, "bound_issuer": "https://issuer.jwtkit.test"}),
        )
        .await;
    admin.put_policy(&policy, &store_policy(&key)).await;
    admin.jwt_role(&mount, "signer", &policy, "1h").await;

    let workload = |exp_in: i64| {
        let now = jwt_core::time::now_unix();
        json!({"sub": "workload-1", "aud": "vault", "iss": "https://issuer.jwtkit.test",
               "iat": now, "nbf": now - 5, "exp": now + exp_in})
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(
        &file,
        issuer.sign_token(&workload(300), None).await.unwrap(),
    )
    .unwrap();
    let store = store(
        &addr,
        &key,
        VaultAuth::jwt("signer", &file).with_mount(&mount),
    );
    assert_eq!(store.auth_method(), "jwt");
    init_and_sign(&store, "jwt").await;

    // The token is revoked and the file now holds an expired workload token.
    admin.revoke_logins(&mount).await;
    std::fs::write(
        &file,
        issuer.sign_token(&workload(-60), None).await.unwrap(),
    )
    .unwrap();
    let err = store.sign_token(&claims("x"), None).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("JWT login refused") && text.contains("VAULT_JWT_FILE"),
        "{text}"
    );
    assert!(store.check_auth().await.is_err());

    // A fresh token in the file: the store recovers by itself.
    std::fs::write(
        &file,
        issuer.sign_token(&workload(300), None).await.unwrap(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.check_auth().await.is_err() {
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    signs(&store, "recovered").await;
    assert!(store.auth_stats().logins >= 2);
    assert!(jwks.hits() >= 1, "OpenBao fetched the issuer's JWKS");

    // A missing file is named in the error.
    let gone = store_for_missing_file(&addr, &key, &mount, dir.path());
    let err = gone.active().await.unwrap_err();
    assert!(
        err.to_string().contains("cannot read the JWT file"),
        "{err}"
    );
}

fn store_for_missing_file(addr: &str, key: &str, mount: &str, dir: &Path) -> VaultKeyStore {
    store(
        addr,
        key,
        VaultAuth::jwt("signer", dir.join("missing")).with_mount(mount),
    )
}

/// The Kubernetes login's request shape (`role` and `jwt` to
/// `auth/kubernetes/login`, the default mount): the jwt method mounted at
/// `kubernetes`, trusting a public key (`jwt_validation_pubkeys`), stands
/// in for the kubernetes method, which would need a Kubernetes API for its
/// TokenReview.
#[tokio::test]
async fn kubernetes_login_request_shape() {
    let Some((addr, root)) = server() else {
        return;
    };
    let Some(openssl) = jwtkit_test_support::tool("openssl", "install openssl") else {
        return;
    };
    let admin = Admin::new(&addr, &root);
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("sa.key");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&openssl)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        private.to_str().unwrap(),
    ]);
    let public =
        String::from_utf8(run(&["pkey", "-in", private.to_str().unwrap(), "-pubout"])).unwrap();
    let signer = jwt_core::Signer::new(
        jwt_core::SigningKey::from_pem(&std::fs::read(&private).unwrap()).unwrap(),
        Algorithm::ES256,
    )
    .unwrap();

    let key = unique("k8s");
    let role = unique("sa");
    let policy = unique("policy");
    admin.enable_auth("kubernetes", "jwt").await;
    admin
        .post(
            "auth/kubernetes/config",
            json!({"jwt_validation_pubkeys": [public]}),
        )
        .await;
    admin.put_policy(&policy, &store_policy(&key)).await;
    admin.jwt_role("kubernetes", &role, &policy, "1h").await;
    let now = jwt_core::time::now_unix();
    let sa_token = signer
        .sign(
            &json!({"sub": "system:serviceaccount:jwtkit:issuer", "aud": "vault",
                      "iat": now, "nbf": now - 5, "exp": now + 300}),
        )
        .unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, &sa_token).unwrap();

    let store = store(&addr, &key, VaultAuth::kubernetes(&role, &file));
    assert_eq!(store.auth_method(), "kubernetes");
    init_and_sign(&store, "k8s").await;
    assert!(!format!("{store:?}").contains(&sa_token));
    assert_eq!(store.auth_stats().logins, 1);
}

const CHILD: &str = "JWTKEYS_VAULT_APPROLE_CHILD";

/// `open_store("vault+http://…")` with `VAULT_AUTH_METHOD=approle`,
/// `VAULT_ROLE_ID`, `VAULT_SECRET_ID_FILE` and `VAULT_AUTH_MOUNT` from the
/// environment (in a child process, so no test changes this one's
/// environment). `VAULT_TOKEN` set to garbage alongside is ignored.
#[tokio::test]
async fn approle_from_the_environment() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let Some((addr, root)) = server() else {
        return;
    };
    let admin = Admin::new(&addr, &root);
    let key = unique("env");
    let (mount, role_id) = approle_setup(&admin, &key, "1h", "4h").await;
    let (secret_id, _) = admin.secret_id(&mount, "issuer").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret-id");
    write_private(&file, &secret_id);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "approle_from_the_environment_child",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("VAULT_AUTH_METHOD", "approle")
        .env("VAULT_ROLE_ID", &role_id)
        .env("VAULT_SECRET_ID_FILE", &file)
        .env("VAULT_AUTH_MOUNT", &mount)
        .env("VAULT_TOKEN", "garbage")
        .env_remove("VAULT_SECRET_ID")
        .env(
            "JWTKEYS_VAULT_URI",
            format!("{}/transit/{key}", addr.replace("http://", "vault+http://")),
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[tokio::test]
async fn approle_from_the_environment_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let uri = std::env::var("JWTKEYS_VAULT_URI").unwrap();
    let store = jwt_keys::open_store(&uri).unwrap();
    assert!(format!("{store:?}").contains("approle"));
    store
        .init(Algorithm::EdDSA, &conformance::policy())
        .await
        .unwrap();
    let t = store.sign_token(&claims("env"), None).await.unwrap();
    let jwks = store.verification_keys().await.unwrap();
    assert_eq!(verify_independently(&t, &jwks), Ok("env".into()));
}

/// What `check_auth` says for a login file, run in a task of its own with
/// a deadline, so that a read that blocks fails the test instead of
/// hanging it. Nothing listens at the address: every refusal must come
/// from the file, before any call to Vault.
async fn login_file_error(auth: VaultAuth, fifo: Option<&Path>) -> Error {
    let store = Arc::new(store("http://127.0.0.1:9", "k", auth));
    let task = {
        let store = store.clone();
        tokio::spawn(async move { store.check_auth().await })
    };
    let joined = tokio::time::timeout(Duration::from_secs(10), task).await;
    if let Some(fifo) = fifo.map(Path::to_owned) {
        // Releases a reader stuck opening the FIFO (a thread blocked there
        // would keep the runtime from shutting down, hanging the test);
        // with no reader this thread waits, detached, until the end.
        std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(fifo)));
    }
    let err = joined
        .expect("reading the login file blocked")
        .unwrap()
        .unwrap_err();
    assert_eq!(store.auth_stats().logins, 0);
    err
}

/// The login files (`VAULT_SECRET_ID_FILE`, `VAULT_JWT_FILE`, and the
/// `[vault]` table's `secret-id-file` and `jwt-file`, which become the same
/// settings) are read like the file store reads its keys: a FIFO used to
/// block the login for ever, `/dev/zero` to fill memory, and a secret id
/// readable by everyone or owned by another user to be used silently. Now:
/// regular files only, at most 64 KiB, a secret id `chmod 600` and owned
/// by this user or root; a JWT file may be readable by others (a warning
/// for `jwt`; a Kubernetes service-account token is mounted 0644 by
/// design) but not writable by them. No server needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_files_are_checked_before_they_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let secret_file = |p: &Path| VaultAuth::approle("role", SecretId::from_file(p));
    let expect = |err: Error, parts: &[&str]| {
        assert_eq!(err.kind(), "backend", "{err}");
        assert!(!err.is_retryable(), "{err}");
        let text = err.to_string();
        for part in parts {
            assert!(text.contains(part), "missing `{part}` in: {text}");
        }
    };

    let fifo = path("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    expect(
        login_file_error(secret_file(&fifo), Some(&fifo)).await,
        &[
            "secret id file",
            "(VAULT_SECRET_ID_FILE) is a FIFO (named pipe), not a regular file",
        ],
    );
    expect(
        login_file_error(VaultAuth::kubernetes("role", &fifo), Some(&fifo)).await,
        &["service-account token file", "(VAULT_JWT_FILE) is a FIFO"],
    );
    expect(
        login_file_error(secret_file(Path::new("/dev/zero")), None).await,
        &["/dev/zero (VAULT_SECRET_ID_FILE) is a device, not a regular file"],
    );
    expect(
        login_file_error(VaultAuth::jwt("role", dir.path()), None).await,
        &["JWT file", "is a directory"],
    );

    let readable = path("readable");
    std::fs::write(&readable, "s3cret-id-value").unwrap();
    set_mode(&readable, 0o644);
    let err = login_file_error(secret_file(&readable), None).await;
    assert!(!format!("{err} {err:?}").contains("s3cret-id-value"));
    expect(err, &["has mode 644", "chmod 600"]);
    set_mode(&readable, 0o640);
    expect(
        login_file_error(secret_file(&readable), None).await,
        &["has mode 640"],
    );

    let large = path("large");
    write_private(&large, &"a".repeat(70 * 1024));
    expect(
        login_file_error(secret_file(&large), None).await,
        &["larger than 65536 bytes"],
    );

    let binary = path("binary");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    set_mode(&binary, 0o600);
    expect(
        login_file_error(secret_file(&binary), None).await,
        &["is not text"],
    );

    // A token file others may change could log the store in as anyone.
    let writable = path("jwt");
    std::fs::write(&writable, "eyJ.e30.sig").unwrap();
    set_mode(&writable, 0o666);
    expect(
        login_file_error(VaultAuth::jwt("role", &writable), None).await,
        &["JWT file", "has mode 666", "chmod go-w"],
    );
    set_mode(&writable, 0o646);
    expect(
        login_file_error(VaultAuth::kubernetes("role", &writable), None).await,
        &["has mode 646"],
    );

    // Another user's file (only root can make one here).
    let foreign = path("foreign");
    write_private(&foreign, "secret-id");
    if std::os::unix::fs::chown(&foreign, Some(4242), None).is_ok() {
        expect(
            login_file_error(secret_file(&foreign), None).await,
            &["belongs to uid 4242", "chown"],
        );
        expect(
            login_file_error(VaultAuth::jwt("role", &foreign), None).await,
            &["belongs to uid 4242"],
        );
    }

    // Files as they should be get as far as the network (nothing listens).
    let good = path("good");
    write_private(&good, "secret-id\n");
    let sa = path("sa-token");
    std::fs::write(&sa, "eyJ.e30.sig").unwrap();
    set_mode(&sa, 0o644);
    for auth in [
        secret_file(&good),
        VaultAuth::jwt("role", &sa),
        VaultAuth::kubernetes("role", &sa),
    ] {
        let err = login_file_error(auth, None).await;
        assert!(err.is_retryable(), "a network error: {err}");
        assert!(err.to_string().contains("could not reach Vault"), "{err}");
    }
}
