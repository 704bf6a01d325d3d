//! Helpers for jwtkit's own tests: locating the real servers (Redis, Redis
//! Cluster, OpenBao, moto) that `scripts/test.sh` starts, the tools the
//! end-to-end tests drive (`openssl`, `curl`, a Python with PyJWT), and free
//! loopback ports for tests that start their own.
//!
//! Contract with `scripts/test.sh` (environment variables):
//!
//! | variable | meaning |
//! |---|---|
//! | `JWTKIT_TEST_REDIS_URL` | `redis://127.0.0.1:PORT/` of a standalone Redis |
//! | `JWTKIT_TEST_REDIS_CLUSTER` | comma-separated `redis://127.0.0.1:PORT` seed nodes of a 3-node cluster |
//! | `JWTKIT_TEST_VAULT_ADDR`, `JWTKIT_TEST_VAULT_TOKEN` | an OpenBao dev server with `transit/` enabled |
//! | `JWTKIT_TEST_KMS_ENDPOINT` | a moto server speaking the KMS API |
//! | `JWTKIT_TEST_REDIS_SERVER_BIN`, `JWTKIT_TEST_BAO_BIN`, `JWTKIT_TEST_MOTO_BIN` | binaries, for fault tests that start (and kill) their own instance |
//! | `JWTKIT_TEST_PYTHON` | the test venv's Python, with PyJWT 2.x and `cryptography` (for the PyJWT interop tests) |
//! | `JWTKIT_TEST_SCHEMATHESIS` | the test venv's `schemathesis` executable (jwtkit-cli's `serve_openapi` test) |
//! | `JWTKIT_REQUIRE_SERVICES=1` | a missing service is a test failure, never a skip (set by the script and in CI) |
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether missing services must fail the test run (set by `scripts/test.sh`
/// and whenever `CI` is set).
pub fn services_required() -> bool {
    std::env::var("JWTKIT_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Returns the value of the service variable `var`, or `None` after printing
/// how to run the test for real. When services are required this panics
/// instead, so that a missing server fails CI rather than being skipped.
pub fn service(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            let msg = format!(
                "{what} is not available: {var} is not set. Run `scripts/test.sh` \
                 (the README's test command), which starts the real servers and sets it."
            );
            if services_required() {
                panic!(
                    "{msg} (JWTKIT_REQUIRE_SERVICES/CI is set, so this is a failure, not a skip)"
                );
            }
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

/// Like [`service`] but for a binary path, defaulting to `default` when it is on `PATH`.
pub fn binary(var: &str, default: &str) -> Option<String> {
    if let Ok(v) = std::env::var(var) {
        if !v.trim().is_empty() {
            return Some(v);
        }
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(default))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p.display().to_string()),
        None => service(var, default),
    }
}

/// A currently free TCP port on 127.0.0.1 (the OS picks it; racy only in the
/// usual way: another process could take it before the caller binds).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}

/// Fails (when services are required) or prints `SKIPPED: …` and returns
/// `None`: the one rule for every missing prerequisite.
fn missing<T>(msg: String) -> Option<T> {
    if services_required() {
        panic!("{msg} (JWTKIT_REQUIRE_SERVICES/CI is set, so this is a failure, not a skip)");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// The path of the executable `name` on `PATH`, or `None` after printing
/// `SKIPPED: …` with `install_hint`. When services are required (CI, `scripts/test.sh`)
/// a missing tool panics instead: end-to-end tests that drive `openssl` or
/// `curl` must never pass by skipping there.
pub fn tool(name: &str, install_hint: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(path) => Some(path),
        None => missing(format!("`{name}` is not on PATH: {install_hint}")),
    }
}

/// The Python the PyJWT interop tests run: `JWTKIT_TEST_PYTHON` when set,
/// else the project's test venv (`$JWTKIT_SERVICES_DIR/venv`, by default
/// `.services/venv` at the workspace root) when it exists. It must import
/// PyJWT 2.x and `cryptography`; that is checked once per test binary.
///
/// When none is usable this prints `SKIPPED: …` (how to create the venv) and
/// returns `None`, or panics when services are required (CI,
/// `scripts/test.sh`). A `JWTKIT_TEST_PYTHON` that is set but unusable
/// always panics: it is a broken setup, not a missing one.
pub fn python_with_pyjwt() -> Option<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, NoPython>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let fix = "run `scripts/services.sh venv` (it installs the pinned PyJWT of \
                   scripts/services-requirements.txt into .services/venv), or `scripts/test.sh`";
        if let Some(python) = std::env::var_os("JWTKIT_TEST_PYTHON").filter(|v| !v.is_empty()) {
            let python = PathBuf::from(python);
            return match check_pyjwt(&python) {
                Ok(()) => Ok(python),
                Err(e) => Err(NoPython::Broken(format!(
                    "JWTKIT_TEST_PYTHON={} is not usable: {e}; {fix}",
                    python.display()
                ))),
            };
        }
        let services = std::env::var_os("JWTKIT_SERVICES_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".services"));
        let python = services.join("venv/bin/python");
        if !python.is_file() {
            return Err(NoPython::Missing(format!(
                "no Python with PyJWT: JWTKIT_TEST_PYTHON is not set and there is no {}; {fix}",
                python.display()
            )));
        }
        match check_pyjwt(&python) {
            Ok(()) => Ok(python),
            Err(e) => Err(NoPython::Missing(format!(
                "{} is not usable: {e}; {fix}",
                python.display()
            ))),
        }
    });
    match found {
        Ok(python) => Some(python.clone()),
        Err(NoPython::Broken(msg)) => panic!("{msg}"),
        Err(NoPython::Missing(msg)) => missing(msg.clone()),
    }
}

/// Why [`python_with_pyjwt`] has no Python.
enum NoPython {
    /// `JWTKIT_TEST_PYTHON` names an unusable interpreter: always a failure.
    Broken(String),
    /// No test venv yet: a skip locally, a failure where services are required.
    Missing(String),
}

/// The workspace root: this crate lives in `crates/test-support`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/test-support has a workspace root two levels up")
        .to_path_buf()
}

/// Whether `python` imports PyJWT 2.x and `cryptography` (bounded: a hung
/// interpreter is an error, not a stuck test run).
fn check_pyjwt(python: &Path) -> Result<(), String> {
    let mut child = Command::new(python)
        .args(["-c", "import jwt, cryptography; print(jwt.__version__)"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("`import jwt` did not finish within 30 s".into());
            }
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("").trim().to_owned();
        return Err(format!("`import jwt, cryptography` failed ({last})"));
    }
    if !version.starts_with("2.") {
        return Err(format!("PyJWT {version} is not 2.x"));
    }
    Ok(())
}

/// Initializes a new SoftHSM token labelled `label` in the first free slot
/// with `softhsm2-util` (`util`), and returns its output, or the last
/// failure's.
///
/// `softhsm2-util` looks at every token of the directory, before it
/// initializes the free one (to find it) and after (to say which slot it
/// moved to), and fails ("Could not get info about the token in slot …")
/// when it reads a token that another test's process is rewriting or
/// deleting at that moment (or aborts, loading the tokens). After, the
/// token is initialized with its PINs (its directory holds the label), and
/// that is a success; before, nothing was written, and it is tried again,
/// up to five times.
pub fn softhsm_init_token(
    util: impl AsRef<std::ffi::OsStr>,
    label: &str,
    pin: &str,
    so_pin: &str,
) -> Result<std::process::Output, std::process::Output> {
    let mut tries = 0;
    loop {
        let out = Command::new(util.as_ref())
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                so_pin,
            ])
            .output()
            .expect("run softhsm2-util");
        if out.status.success() {
            return Ok(out);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Also: SoftHSM 2.6 aborts while it loads the tokens when two of
        // them read alike at that moment (its SlotManager asserts).
        let racing = stderr.contains("Could not get info about the token in slot")
            || stderr.contains("Assertion `result.second' failed");
        if racing && softhsm_token_directory(label).is_some() {
            return Ok(out);
        }
        tries += 1;
        if !racing || tries == 5 {
            return Err(out);
        }
        std::thread::sleep(Duration::from_millis(50 * tries));
    }
}

/// The directory of SoftHSM token `label` in the token directory that
/// `SOFTHSM2_CONF` names: the one whose `token.object` holds the label.
pub fn softhsm_token_directory(label: &str) -> Option<PathBuf> {
    let conf = std::env::var("SOFTHSM2_CONF").ok()?;
    let text = std::fs::read_to_string(conf).ok()?;
    let dir = text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "directories.tokendir").then(|| PathBuf::from(v.trim()))
    })?;
    std::fs::read_dir(dir).ok()?.find_map(|entry| {
        let path = entry.ok()?.path();
        let bytes = std::fs::read(path.join("token.object")).ok()?;
        bytes
            .windows(label.len())
            .any(|w| w == label.as_bytes())
            .then_some(path)
    })
}
