//! Running the real `jwtkit` binary from the CLI's tests: one helper, bounded
//! in time, shared by the test files (each test file is its own crate, so
//! not every file uses every helper).
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long one `jwtkit` command may run before the test fails (a hang is
/// a failure, never a stuck suite).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The outcome of one `jwtkit` command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} / {}", self.stdout, self.stderr))
    }
}

/// Runs `jwtkit ARGS` in `dir` with no input.
pub fn jwtkit(dir: &Path, args: &[&str]) -> Run {
    jwtkit_env(dir, args, &[])
}

/// The binary under test: the one cargo built for this test run, unless
/// `JWTKIT_TEST_BIN` names another (a release build, or an older binary to
/// check that a regression test fails without its fix).
pub fn binary() -> std::ffi::OsString {
    std::env::var_os("JWTKIT_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_jwtkit").into())
}

/// Like [`jwtkit`], with extra environment variables. The caller's
/// `JWTKIT_REFRESH_KEY` is never inherited.
pub fn jwtkit_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(dir)
        .env_remove("JWTKIT_REFRESH_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jwtkit");
    // Read both pipes while waiting, so a large output cannot block the child.
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
            panic!("jwtkit {args:?} still running after {DEADLINE:?}; stderr: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
    assert!(!stderr.contains("panicked"), "jwtkit panicked: {stderr}");
    Run {
        code: status.code().expect("exit code"),
        stdout: String::from_utf8(out.join().unwrap()).expect("UTF-8 stdout"),
        stderr,
    }
}

/// Runs `jwtkit ARGS`, which must succeed; its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let run = jwtkit(dir, args);
    assert_eq!(run.code, 0, "jwtkit {args:?} failed: {}", run.stderr);
    run.stdout
}
