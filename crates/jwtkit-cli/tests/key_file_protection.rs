//! Key and secret files given on the command line (`--key`,
//! `--secret-file`) are checked like the file store's: a file another user
//! owns, or that others may write, is refused, since whoever can replace it
//! chooses which tokens are signed or verify. A secret that others may read
//! is used with a warning. (Found by the outside review of issue 11: a
//! secret owned by another user with mode 0666 was used silently.)
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const SECRET: &str = "a-secret-of-at-least-32-bytes-for-hs256-0123456789";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn jwtkit(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run jwtkit");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

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
        run.stderr.contains("error [insecure_permissions]") && run.stderr.contains("shared.secret"),
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
