//! What the end-to-end tests in `tests/` share: running any program bounded
//! in time, the tools the guide drives (`openssl`, a Python with PyJWT), a
//! loopback JWKS server standing in for an identity provider, and a running
//! `jwtkit serve`. Each test binary includes this module with `#[path]`, so
//! not every binary uses every item.
#![allow(dead_code)]

pub mod jwks_server;
pub mod markdown;
pub mod serve;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one helper process (openssl, python, jwtkit) may run before the
/// test fails: a hang is a failure, never a stuck suite.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The `jwtkit` binary cargo built for this test run.
pub fn jwtkit_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_jwtkit"))
}

/// The outcome of one process.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Stdout as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {:?}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32, what: &str) -> Output {
        assert_eq!(
            self.code, code,
            "{what}: exit {} (expected {code})\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Runs `cmd` to completion with `stdin` (or none), reading both pipes while
/// waiting; kills it and panics after [`DEADLINE`].
pub fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let bytes = bytes.to_vec();
        // A writer thread: a child that does not read must not block us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout pipe")));
    let err = reader(Box::new(child.stderr.take().expect("stderr pipe")));
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!("{shown} still running after {DEADLINE:?}; stderr: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        code: status
            .code()
            .unwrap_or_else(|| panic!("{shown} was killed by a signal: {status}")),
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    }
}

/// `openssl` on PATH; `None` (a loud skip) locally when it is missing, a
/// failure in CI.
pub fn openssl_bin() -> Option<PathBuf> {
    jwtkit_test_support::tool(
        "openssl",
        "the guide's keys are made with the openssl command line (Debian: apt-get install openssl)",
    )
}

/// Runs `openssl ARGS` in `dir`; it must succeed.
pub fn openssl(openssl: &Path, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(openssl);
    cmd.args(args).current_dir(dir);
    run(cmd, None).expect_code(0, &format!("openssl {}", args.join(" ")))
}

/// The test venv's Python with PyJWT 2.x (see `jwtkit_test_support::python_with_pyjwt`).
pub fn python() -> Option<PathBuf> {
    jwtkit_test_support::python_with_pyjwt()
}

/// Runs the Python program `script` in `dir` with `args` (its `sys.argv[1:]`)
/// and extra environment variables.
pub fn python_run(
    python: &Path,
    dir: &Path,
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().copied());
    run(cmd, None)
}

/// The system clock, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

/// A name no other run of this test uses (Redis prefixes, key ids).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    format!("{prefix}{}-{nanos}", std::process::id())
}

/// The `kid` in a compact token's header (decoded without verifying: the
/// tests use it to name which key signed).
pub fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("a compact token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url header");
    let header: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON header");
    header["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("no kid in {header}"))
        .to_owned()
}
