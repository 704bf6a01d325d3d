//! `jwtkit store …`, `sign --store` and `verify --store` on a PKCS#11 store
//! (`pkcs11:` URIs, RFC 7512) in SoftHSM2, through the real binary: one
//! process per command, as operators and cron jobs run them. Two processes
//! rotating the same token at once; `rotate --if-due` from both; `kill -9`
//! of rotating processes at varied moments.
//!
//! SoftHSM2 comes from `scripts/services.sh` (`JWTKIT_TEST_PKCS11_MODULE`,
//! `JWTKIT_TEST_SOFTHSM_UTIL`, `SOFTHSM2_CONF`); each test makes a token of
//! its own and deletes it at the end. Without SoftHSM a plain `cargo test`
//! skips with a message; under `scripts/test.sh` or CI it is a failure.

mod common;
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const PIN: &str = "2468-cli";

/// A SoftHSM2 token of one test, deleted when dropped.
struct Token {
    util: String,
    module: String,
    label: String,
    dir: tempfile::TempDir,
}

impl Drop for Token {
    fn drop(&mut self) {
        let dir = jwtkit_test_support::softhsm_token_directory(&self.label);
        let _ = Command::new(&self.util)
            .args(["--delete-token", "--token", &self.label])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // softhsm2-util leaves the directory when a process of another test,
        // initializing SoftHSM at that moment, wrote a file into it.
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Token {
    fn create() -> Option<Token> {
        let module = jwtkit_test_support::service(
            "JWTKIT_TEST_PKCS11_MODULE",
            "SoftHSM2 (the PKCS#11 module libsofthsm2.so)",
        )?;
        let util = jwtkit_test_support::service("JWTKIT_TEST_SOFTHSM_UTIL", "softhsm2-util")?;
        jwtkit_test_support::service("SOFTHSM2_CONF", "SoftHSM2's test configuration")?;
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let mut label = format!(
            "cli{:x}{nanos:x}{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        label.truncate(32);
        if let Err(out) = jwtkit_test_support::softhsm_init_token(&util, &label, PIN, "1357-so") {
            panic!(
                "softhsm2-util --init-token: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let pin = dir.path().join("hsm-pin");
        std::fs::write(&pin, format!("{PIN}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
        Some(Token {
            util,
            module,
            label,
            dir,
        })
    }

    fn pin_file(&self) -> PathBuf {
        self.dir.path().join("hsm-pin")
    }

    /// The store `object` on this token.
    fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={object}?module-path={}&pin-source=file:{}",
            self.label,
            self.module,
            self.pin_file().display()
        )
    }

    fn work(&self) -> &Path {
        self.dir.path()
    }
}

/// `jwtkit ARGS`, which must succeed; its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let run = common::jwtkit(dir, args);
    // With --json, the error is the JSON object on stdout.
    assert_eq!(
        run.code, 0,
        "jwtkit {args:?} failed: {}{}",
        run.stdout, run.stderr
    );
    run.stdout
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = ok(dir, args);
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("jwtkit {args:?}: not JSON ({e}): {out}"))
}

fn kid_of(token: &str) -> String {
    jwt_core::dangerous::insecure_decode_header(token)
        .unwrap()
        .kid
        .unwrap()
}

/// Verifies `token` with `jsonwebtoken` from the JWK of its kid in `jwks`.
fn independent_verify(jwks: &Value, token: &str, alg: jsonwebtoken::Algorithm) -> Value {
    let kid = kid_of(token);
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS {jwks}"));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("jsonwebtoken refused the token: {e}"))
        .claims
}

/// The store's keys by state, checked: exactly one active and one pending
/// key, no kid twice. Returns (active, pending, all kids).
fn consistent(dir: &Path, uri: &str) -> (String, String, Vec<String>) {
    let listed = json(dir, &["store", "list", uri, "--json"]);
    let records = listed.as_array().unwrap();
    let kids: Vec<String> = records
        .iter()
        .map(|r| r["kid"].as_str().unwrap().to_owned())
        .collect();
    let unique: HashSet<&String> = kids.iter().collect();
    assert_eq!(unique.len(), kids.len(), "a kid twice: {listed}");
    let with = |state: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["state"] == state)
            .map(|r| r["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let (active, pending) = (with("active"), with("pending"));
    assert_eq!((active.len(), pending.len()), (1, 1), "{listed}");
    (active[0].clone(), pending[0].clone(), kids)
}

fn sign(dir: &Path, uri: &str, sub: &str) -> String {
    ok(dir, &["sign", "--store", uri, "--sub", sub, "--exp", "30m"])
        .trim()
        .to_owned()
}

/// init, sign, rotate, sign: both tokens verify through `verify --store` and
/// in `jsonwebtoken`; the pending key is published before it signs.
fn scenario(alg: &str, independent: jsonwebtoken::Algorithm) {
    let Some(token) = Token::create() else { return };
    let (dir, uri) = (token.work(), token.uri("signing"));
    ok(dir, &["store", "init", &uri, "--alg", alg]);
    let t1 = sign(dir, &uri, "alice");
    let before = json(dir, &["store", "jwks", &uri]);
    assert_eq!(before["keys"].as_array().unwrap().len(), 2, "{before}");
    ok(dir, &["store", "rotate", &uri]);
    let t2 = sign(dir, &uri, "bob");
    assert_ne!(kid_of(&t1), kid_of(&t2));
    let after = json(dir, &["store", "jwks", &uri]);
    assert_eq!(independent_verify(&before, &t2, independent)["sub"], "bob");
    for (t, sub) in [(&t1, "alice"), (&t2, "bob")] {
        assert_eq!(independent_verify(&after, t, independent)["sub"], sub);
        let v = json(dir, &["verify", "--store", &uri, "--json", t]);
        assert_eq!(
            (v["valid"].clone(), v["claims"]["sub"].clone()),
            (Value::Bool(true), Value::from(sub)),
            "{v}"
        );
    }
    let audit = common::jwtkit(dir, &["store", "audit", &uri, "--json"]);
    assert_eq!(audit.code, 0, "{} {}", audit.stdout, audit.stderr);
}

#[test]
fn pkcs11_store_through_the_cli() {
    scenario("ES256", jsonwebtoken::Algorithm::ES256);
}

#[test]
fn pkcs11_pss_through_the_cli() {
    scenario("PS256", jsonwebtoken::Algorithm::PS256);
}

/// Starts `jwtkit ARGS` in `dir` without waiting.
fn spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(common::binary())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start jwtkit")
}

/// Waits for `child` (bounded); its exit code and output.
fn finish(mut child: std::process::Child, what: &str) -> (i32, String, String) {
    let deadline = Instant::now() + common::DEADLINE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} still running after {:?}", common::DEADLINE);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// Two processes rotate the same store 10 times each, in parallel rounds:
/// after each round the ledger has one active and one pending key, no kid
/// twice, and exactly two more keys (two whole rotations, none lost, none
/// torn); every token signed so far verifies with the published JWKS (its
/// key is within its grace).
#[test]
fn two_processes_rotating_ten_times_in_parallel() {
    let Some(token) = Token::create() else { return };
    let (dir, uri) = (token.work(), token.uri("race"));
    ok(dir, &["store", "init", &uri, "--alg", "ES256"]);
    let mut tokens = vec![(sign(dir, &uri, "round-0"), "round-0".to_owned())];
    for round in 1..=10 {
        let a = spawn(dir, &["store", "rotate", &uri, "--json"]);
        let b = spawn(dir, &["store", "rotate", &uri, "--json"]);
        let mut previous = HashSet::new();
        for (child, who) in [(a, "a"), (b, "b")] {
            let (code, out, err) = finish(child, "store rotate");
            assert_eq!(code, 0, "round {round}, process {who}: {out} {err}");
            let report: Value = serde_json::from_str(out.trim()).unwrap();
            assert!(
                previous.insert(report["previous"].as_str().unwrap().to_owned()),
                "two rotations from the same key: {report}"
            );
        }
        let (_, _, kids) = consistent(dir, &uri);
        assert_eq!(kids.len(), 2 + 2 * round, "two whole rotations per round");
        let sub = format!("round-{round}");
        tokens.push((sign(dir, &uri, &sub), sub));
        let jwks = json(dir, &["store", "jwks", &uri]);
        for (t, sub) in &tokens {
            assert_eq!(
                independent_verify(&jwks, t, jsonwebtoken::Algorithm::ES256)["sub"],
                sub.as_str()
            );
        }
    }
    // The CLI's own verifier agrees, for the first and the last token.
    for (t, sub) in [&tokens[0], &tokens[10]] {
        let v = json(dir, &["verify", "--store", &uri, "--json", t]);
        assert_eq!(v["claims"]["sub"], sub.as_str(), "{v}");
    }
}

/// `rotate --if-due` from two processes at once, when a rotation is due:
/// exactly one rotates, the other reports no rotation, round after round.
#[test]
fn if_due_from_two_processes_rotates_once() {
    let Some(token) = Token::create() else { return };
    let (dir, uri) = (token.work(), token.uri("due"));
    let t0: i64 = 1_800_000_000;
    ok(
        dir,
        &[
            "store",
            "init",
            &uri,
            "--alg",
            "ES256",
            "--now",
            &t0.to_string(),
        ],
    );
    let mut kids_before = 2;
    for round in 1..=4 {
        // 31 days later each round: rotate_after (30d) and prepublish (1d) are met.
        let now = (t0 + round * 31 * 86_400).to_string();
        let before = consistent(dir, &uri).0;
        let a = spawn(
            dir,
            &["store", "rotate", &uri, "--if-due", "--json", "--now", &now],
        );
        let b = spawn(
            dir,
            &["store", "rotate", &uri, "--if-due", "--json", "--now", &now],
        );
        let mut rotated = Vec::new();
        for child in [a, b] {
            let (code, out, err) = finish(child, "store rotate --if-due");
            assert_eq!(code, 0, "{out} {err}");
            let report: Value = serde_json::from_str(out.trim()).unwrap();
            if !report["rotated"].is_null() {
                rotated.push(report["rotated"].clone());
            }
        }
        assert_eq!(
            rotated.len(),
            1,
            "round {round}: exactly one process rotates: {rotated:?}"
        );
        assert_eq!(rotated[0]["previous"], before.as_str());
        let listed = json(dir, &["store", "list", &uri, "--json"]);
        let count = listed.as_array().unwrap().len();
        assert_eq!(count, kids_before + 1, "one new key per round: {listed}");
        kids_before = count;
    }
}

/// [`jwtkit_test_support::softhsm_token_directory`], which must find it.
fn token_directory(label: &str) -> PathBuf {
    jwtkit_test_support::softhsm_token_directory(label)
        .unwrap_or_else(|| panic!("no SoftHSM directory of token {label}"))
}

/// The object files of a SoftHSM token directory.
fn object_files(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".object") && n != "token.object")
        .collect()
}

/// Starts `jwtkit store rotate` and waits until it has created its first
/// object on the token (its write lock: it has logged in and begun the
/// write). `None` when it ended first.
fn rotate_until_it_writes(
    dir: &Path,
    uri: &str,
    token_dir: &Path,
) -> (std::process::Child, Option<Instant>) {
    let before = object_files(token_dir);
    let mut child = spawn(dir, &["store", "rotate", uri]);
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        if object_files(token_dir).difference(&before).next().is_some() {
            return (child, Some(Instant::now()));
        }
        if child.try_wait().unwrap().is_some() {
            return (child, None);
        }
        assert!(
            Instant::now() < deadline,
            "store rotate wrote nothing for {:?}",
            common::DEADLINE
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// `kill -9` of `jwtkit store rotate` at varied moments of its write (at
/// least 20 kills of a running process): after each, the store reads as the
/// old or the new ledger — one active and one pending key, no kid twice, the
/// active key the one before or its successor — the next commands work
/// (an abandoned write lock is taken over at once) and every token signed
/// so far still verifies.
///
/// The kills fall between the moment the process has created its first
/// object on the token (its write lock, after its login) and its end: taking
/// the lock, generating the key pair, writing the new ledger, destroying
/// the old one, releasing the lock. Not before: SoftHSM rewrites its token
/// file at every login, in place, and a `kill -9` at that moment leaves an
/// empty token file and a token SoftHSM no longer loads at all — a flaw of
/// the emulator's file store that no PKCS#11 application can prevent (HSMs
/// keep their state transactionally).
#[test]
fn kill_9_while_rotating_leaves_the_old_or_the_new_ledger() {
    let Some(token) = Token::create() else { return };
    let (dir, uri) = (token.work(), token.uri("kill"));
    ok(dir, &["store", "init", &uri, "--alg", "ES256"]);
    let token_dir = token_directory(&token.label);
    let mut tokens = vec![(sign(dir, &uri, "t-0"), "t-0".to_owned())];
    // How long a write takes here, from its first object to the end of the
    // process (the median of three), to spread the kills over it.
    let mut writes: Vec<Duration> = (0..3)
        .map(|_| {
            let (child, wrote) = rotate_until_it_writes(dir, &uri, &token_dir);
            let wrote = wrote.expect("a rotation writes a lock object");
            let (code, _, err) = finish(child, "store rotate");
            assert_eq!(code, 0, "{err}");
            wrote.elapsed()
        })
        .collect();
    writes.sort();
    let write = writes[1];
    let (mut kills, mut finished, mut iterations) = (0u32, 0u32, 0u64);
    // Kills that left the old ledger and kills that left the new one (the
    // process was past its commit, destroying the old ledger or releasing
    // the lock).
    let (mut killed_old, mut killed_new) = (0u32, 0u32);
    while kills < 24 || killed_old < 2 || killed_new < 2 {
        iterations += 1;
        assert!(
            iterations < 200,
            "{kills} kills of a running process in {iterations} tries ({killed_old} left the old ledger, {killed_new} the new one; a write takes {write:?})"
        );
        let (active, pending, _) = consistent(dir, &uri);
        // From the first object to a little past the end, in 24 steps.
        let delay = write.mul_f64(f64::from(kills % 24) / 24.0 * 1.2)
            + Duration::from_micros(iterations * 37 % 500);
        let (mut child, wrote) = rotate_until_it_writes(dir, &uri, &token_dir);
        if wrote.is_some() {
            std::thread::sleep(delay);
        }
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        } else {
            finished += 1;
        }
        let _ = child.wait();
        let (now_active, now_pending, _) = consistent(dir, &uri);
        if now_active == active {
            // The old ledger: nothing changed.
            assert_eq!(now_pending, pending);
            killed_old += u32::from(killed);
        } else {
            // The new one: the pending key was promoted.
            assert_eq!(
                now_active, pending,
                "the active key is the old one or its successor"
            );
            killed_new += u32::from(killed);
        }
        let sub = format!("t-{iterations}");
        tokens.push((sign(dir, &uri, &sub), sub));
    }
    let jwks = json(dir, &["store", "jwks", &uri]);
    for (t, sub) in &tokens {
        assert_eq!(
            independent_verify(&jwks, t, jsonwebtoken::Algorithm::ES256)["sub"],
            sub.as_str()
        );
    }
    // After all that, a plain rotation works and leaves a clean store.
    ok(dir, &["store", "rotate", &uri]);
    consistent(dir, &uri);
    eprintln!(
        "{kills} kills ({killed_old} left the old ledger, {killed_new} the new one), {finished} runs that finished first (a write takes {write:?})"
    );
}

/// Mistakes through the CLI: a wrong PIN is a configuration error (exit 2)
/// that names the return value and never shows the PIN; an unknown token
/// names the tokens present.
#[test]
fn a_wrong_pin_and_an_unknown_token_through_the_cli() {
    let Some(token) = Token::create() else { return };
    let dir = token.work();
    let wrong = dir.join("wrong-pin");
    std::fs::write(&wrong, "9999-wrong\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let uri = token.uri("pins").replace(
        &token.pin_file().display().to_string(),
        &wrong.display().to_string(),
    );
    let run = common::jwtkit(dir, &["store", "init", &uri, "--alg", "ES256"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("CKR_PIN_INCORRECT"), "{}", run.stderr);
    assert!(!run.stderr.contains("9999-wrong") && !run.stdout.contains("9999-wrong"));

    let unknown = token
        .uri("x")
        .replace(&format!("token={}", token.label), "token=no-such-token");
    let run = common::jwtkit(dir, &["store", "list", &unknown]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("no token matches") && run.stderr.contains("tokens present: `"),
        "{}",
        run.stderr
    );
    // A group-readable PIN file is refused before any login.
    std::fs::set_permissions(token.pin_file(), std::fs::Permissions::from_mode(0o640)).unwrap();
    let run = common::jwtkit(
        dir,
        &["store", "init", &token.uri("perm"), "--alg", "ES256"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
}

/// A PIN given in the URI (`pin-value=`, accepted with a warning) never
/// reaches the terminal: `store init`, `store rotate`, `store audit` and a
/// failed `verify --store` show the URI with `***` for it.
#[test]
fn a_pin_value_in_the_uri_is_never_shown() {
    let Some(token) = Token::create() else {
        return;
    };
    let dir = token.work();
    let uri = format!(
        "pkcs11:token={};object=shown?module-path={}&pin-value={PIN}",
        token.label, token.module
    );
    let mut outputs = Vec::new();
    for args in [
        vec!["store", "init", uri.as_str(), "--alg", "ES256"],
        vec!["store", "rotate", uri.as_str()],
        vec!["store", "audit", uri.as_str()],
        vec!["store", "list", uri.as_str()],
    ] {
        let run = common::jwtkit(dir, &args);
        outputs.push(format!(
            "{}: {} {} {}",
            args[1], run.code, run.stdout, run.stderr
        ));
    }
    // A token from another key: the unknown_key message names the store.
    let other = common::jwtkit(
        dir,
        &["keys", "generate", "--alg", "ES256", "--out", "other.pem"],
    );
    assert_eq!(other.code, 0, "{}", other.stderr);
    let foreign = ok(
        dir,
        &[
            "sign",
            "--key",
            "other.pem",
            "--alg",
            "ES256",
            "--sub",
            "x",
            "--kid",
            "nope",
        ],
    );
    let run = common::jwtkit(dir, &["verify", "--store", &uri, foreign.trim()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    outputs.push(format!("verify: {} {}", run.stdout, run.stderr));
    let all = outputs.join("\n");
    assert!(!all.contains(PIN), "the PIN was shown:\n{all}");
    // Quoted, so that a suggested command can be pasted into a shell.
    assert!(all.contains("initialized 'pkcs11:"), "{all}");
    assert!(all.contains("--if-due 'pkcs11:"), "{all}");
    assert!(
        all.contains("warning: the store URI holds the PIN"),
        "{all}"
    );
    assert!(all.contains("***"), "{all}");
}

/// `jwtkit serve` never creates a store in an HSM: a `pkcs11:` URI naming
/// no initialized store (a mistyped `object=`) fails the start with
/// `not_initialized`, and the token holds no new objects (new-user review
/// of issue 18: serve created keys under the mistyped name).
#[test]
fn serve_refuses_an_uninitialized_pkcs11_store() {
    let Some(token) = Token::create() else {
        return;
    };
    let dir = token.work();
    let uri = token.uri("typo");
    let run = common::jwtkit(dir, &["serve", "--listen", "127.0.0.1:0", "--store", &uri]);
    assert_eq!(run.code, 2, "{} {}", run.stdout, run.stderr);
    assert!(run.stderr.contains("store init"), "{}", run.stderr);
    let list = common::jwtkit(dir, &["store", "list", &uri, "--json"]);
    assert_ne!(
        list.code, 0,
        "the store is still not initialized: {}",
        list.stdout
    );
    assert!(
        list.stdout.contains("not_initialized") || list.stderr.contains("not initialized"),
        "{} {}",
        list.stdout,
        list.stderr
    );
}

/// `jwtkit serve --store 'pkcs11:…'` serves from a store held in the HSM
/// (step 2 of the PKCS#11 runbook): the access token it issues is signed in
/// the token by the store's active key, its JWKS is the store's, `/userinfo`
/// accepts the token, and `jsonwebtoken` verifies it with the served JWKS.
/// A PIN given in the URI (`pin-value`) appears nowhere in its debug log.
#[tokio::test]
async fn serve_issues_and_publishes_from_a_pkcs11_store() {
    let Some(token) = Token::create() else { return };
    let dir = token.work();
    let uri = format!(
        "pkcs11:token={};object=signing?module-path={}&pin-value={PIN}",
        token.label, token.module
    );
    ok(dir, &["store", "init", &uri, "--alg", "ES256"]);
    let (active, _, _) = consistent(dir, &uri);
    let server =
        support::serve::Serve::start_with_env(dir, &["--store", &uri], &[("JWTKIT_LOG", "debug")]);
    let http = reqwest::Client::new();
    let pair: Value = http
        .post(server.url("/token"))
        .bearer_auth(support::serve::ADMIN_TOKEN)
        .json(&serde_json::json!({"sub": "hsm-user"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = pair["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {pair}"));
    assert_eq!(kid_of(access), active, "signed by the store's active key");
    let served: Value = http
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, json(dir, &["store", "jwks", &uri]));
    let claims = independent_verify(&served, access, jsonwebtoken::Algorithm::ES256);
    assert_eq!(claims["sub"], "hsm-user");
    let userinfo = http
        .get(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), reqwest::StatusCode::OK);
    assert!(server.terminate().success());
    let log: String = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("serve-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(log.contains("jwtkit serve started"), "{log}");
    assert!(
        log.contains("pin-value"),
        "serve warns about the PIN in the URI: {log}"
    );
    assert!(!log.contains(PIN), "the PIN is in the serve log:\n{log}");
}
