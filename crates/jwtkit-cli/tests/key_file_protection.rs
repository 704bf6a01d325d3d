//! Key and secret files given on the command line (`--key`,
//! `--secret-file`) are checked like the file store's: a file another user
//! owns, or that others may write, is refused, since whoever can replace it
//! chooses which tokens are signed or verify. A secret that others may read
//! is used with a warning. (Found by the outside review of issue 11: a
//! secret owned by another user with mode 0666 was used silently.)
#![cfg(unix)]

mod common;

use common::{jwtkit, Run};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const SECRET: &str = "a-secret-of-at-least-32-bytes-for-hs256-0123456789";

fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn sign(dir: &Path, secret_file: &str) -> Run {
    jwtkit(
        dir,
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-file",
            secret_file,
            "--sub",
            "a",
            "--exp",
            "5m",
        ],
    )
}

/// Whether this process can give a file to another user (root can).
fn can_chown() -> bool {
    let probe = tempfile::NamedTempFile::new().unwrap();
    std::os::unix::fs::chown(probe.path(), Some(65534), None).is_ok()
}

#[test]
fn secret_files_others_can_replace_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    write(dir, "ok.secret", SECRET.as_bytes(), 0o600);
    let run = sign(dir, "ok.secret");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    write(dir, "shared.secret", SECRET.as_bytes(), 0o666);
    let run = sign(dir, "shared.secret");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("error [insecure_permissions]")
            && run.stderr.contains("shared.secret")
            && run.stderr.contains("chooses what is signed")
            && run.stderr.contains("chmod 600"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing signed: {}", run.stdout);

    // Readable by others but theirs alone to change: used, with a warning.
    write(dir, "readable.secret", SECRET.as_bytes(), 0o644);
    let run = sign(dir, "readable.secret");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning: other users can read") && run.stderr.contains("chmod 600"),
        "{}",
        run.stderr
    );

    if !can_chown() {
        eprintln!("skipped the foreign-owner case: this user cannot chown files");
        return;
    }
    write(dir, "foreign.secret", SECRET.as_bytes(), 0o600);
    std::os::unix::fs::chown(dir.join("foreign.secret"), Some(65534), None).unwrap();
    let run = sign(dir, "foreign.secret");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("error [insecure_owner]"),
        "{}",
        run.stderr
    );
}

#[test]
fn verification_keys_others_can_replace_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let run = jwtkit(
        dir,
        &["keys", "generate", "--alg", "ES256", "--out", "k.pem"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let jwks = jwtkit(dir, &["keys", "jwks", "k.pem"]).stdout;
    let token = jwtkit(
        dir,
        &[
            "sign", "--alg", "ES256", "--key", "k.pem", "--sub", "a", "--exp", "5m",
        ],
    )
    .stdout;
    let token = token.trim();

    // A public JWKS readable by all is fine; writable by others is not.
    write(dir, "jwks.json", jwks.as_bytes(), 0o644);
    let run = jwtkit(
        dir,
        &["verify", "--key", "jwks.json", "--alg", "ES256", token],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    write(dir, "open.json", jwks.as_bytes(), 0o646);
    let run = jwtkit(
        dir,
        &["verify", "--key", "open.json", "--alg", "ES256", token],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("error [insecure_permissions]"),
        "{}",
        run.stderr
    );
}

/// Found by the second outside review: the secret file's owner was checked
/// but not its directory, so the directory's owner (another user) replaced
/// the file by a symlink to a root-owned public file and signed tokens with
/// its text. And a FIFO given as a secret file blocked for ever.
#[test]
fn the_path_to_a_key_is_checked_too() {
    if !can_chown() {
        eprintln!("skipped: this user cannot give files to another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // A directory another user owns, holding a file of ours.
    std::fs::create_dir(dir.join("theirs")).unwrap();
    write(dir, "theirs/secret", SECRET.as_bytes(), 0o600);
    std::os::unix::fs::chown(dir.join("theirs"), Some(65534), None).unwrap();
    let run = sign(dir, "theirs/secret");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("insecure_owner") && run.stderr.contains("the path is not safe"),
        "{}",
        run.stderr
    );

    // A symlink another user owns, pointing at a root-owned public file.
    std::fs::create_dir(dir.join("ours")).unwrap();
    std::os::unix::fs::symlink("/etc/os-release", dir.join("ours/secret")).unwrap();
    std::os::unix::fs::lchown(dir.join("ours/secret"), Some(65534), None).unwrap();
    let run = jwtkit(
        dir,
        &[
            "verify",
            "--alg",
            "HS256",
            "--secret-file",
            "ours/secret",
            "x.y.z",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("insecure_owner"), "{}", run.stderr);

    // A FIFO is refused at once, not read for ever.
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        // Bounded: a regression would block on the FIFO, so the child is
        // killed after 10 s rather than hanging the suite.
        let mut child = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
            .args([
                "sign",
                "--alg",
                "HS256",
                "--secret-file",
                "fifo",
                "--exp",
                "5m",
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > std::time::Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("jwtkit blocked reading a FIFO");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not a regular file"), "{stderr}");
    }
}
