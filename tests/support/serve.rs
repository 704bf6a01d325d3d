//! A running `jwtkit serve`: the real binary in a temporary directory on
//! `127.0.0.1:0`, found by the `listening on` line it prints. Killed on drop,
//! so a failing test never leaves it running.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The admin bearer token the tests start `jwtkit serve` with.
pub const ADMIN_TOKEN: &str = "e2e-guide-admin-token-0123456789abcdef";

/// A running `jwtkit serve`.
pub struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the server printed it.
    pub base: String,
    log: std::path::PathBuf,
}

/// Runs `jwtkit serve --listen 127.0.0.1:0 ARGS` in `dir` with extra
/// environment variables, expecting it to refuse them before listening:
/// exit 2, nothing on stdout; returns its stderr.
pub fn refused(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = super::run(serve_command(dir, args, env), None);
    assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
    assert!(
        out.stdout.is_empty(),
        "{args:?} never listened: {}",
        out.stdout
    );
    out.stderr
}

/// `jwtkit serve --listen 127.0.0.1:0 ARGS` in `dir`: the tests' admin
/// token, no refresh key or URL from the caller's environment, then `env`.
fn serve_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(super::jwtkit_bin());
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .env("JWTKIT_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("JWTKIT_REFRESH_KEY")
        .env_remove("JWTKIT_REFRESH_URL")
        .envs(env.iter().copied());
    cmd
}

impl Serve {
    /// Starts `jwtkit serve --listen 127.0.0.1:0 ARGS` in `dir` and waits
    /// (at most 60 s) until it listens.
    pub fn start(dir: &Path, args: &[&str]) -> Serve {
        Serve::start_with_env(dir, args, &[])
    }

    /// [`Serve::start`] with extra environment variables.
    pub fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
        let log = dir.join(format!("serve-{}.log", super::unique("")));
        let stderr = std::fs::File::create(&log).expect("create the serve log");
        let mut child = serve_command(dir, args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn jwtkit serve");
        let stdout = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("jwtkit serve: listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => Serve { child, base, log },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "jwtkit serve {args:?} did not start listening within 60 s:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }

    /// `BASE` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, then the exit status (a graceful shutdown exits 0); bounded.
    pub fn terminate(mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        for _ in 0..400 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "jwtkit serve did not stop within 20 s of SIGTERM:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
