//! RS256 and ES256 with keys made by the guide's `openssl` commands:
//! `openssl genrsa -out rsa.pem 2048` (PKCS#8 with OpenSSL 3),
//! `openssl ecparam -genkey -name prime256v1 -noout -out ec.pem` (SEC1,
//! `BEGIN EC PRIVATE KEY`), and their public halves from `-pubout`. The
//! private PEM signs, the public PEM verifies; the other key of the same type
//! is refused.

use std::path::Path;

use crate::common::{jwtkit, Run};
use crate::support::{openssl, openssl_bin};

/// Makes `NAME.pem` and `NAME.pub.pem` with the guide's commands.
fn rsa_pair(openssl_bin: &Path, dir: &Path, name: &str) {
    let private = format!("{name}.pem");
    let public = format!("{name}.pub.pem");
    openssl(openssl_bin, dir, &["genrsa", "-out", &private, "2048"]);
    openssl(
        openssl_bin,
        dir,
        &["rsa", "-in", &private, "-pubout", "-out", &public],
    );
}

fn ec_pair(openssl_bin: &Path, dir: &Path, name: &str) {
    let private = format!("{name}.pem");
    let public = format!("{name}.pub.pem");
    openssl(
        openssl_bin,
        dir,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            &private,
        ],
    );
    openssl(
        openssl_bin,
        dir,
        &["ec", "-in", &private, "-pubout", "-out", &public],
    );
}

fn sign(dir: &Path, alg: &str, key: &str) -> String {
    let run = jwtkit(
        dir,
        &[
            "sign",
            "--alg",
            alg,
            "--key",
            key,
            "--iss",
            "https://auth.example.com",
            "--sub",
            "alice",
            "--aud",
            "my-api",
            "--exp",
            "15m",
        ],
    );
    assert_eq!(run.code, 0, "sign --alg {alg} --key {key}: {}", run.stderr);
    run.stdout.trim().to_owned()
}

fn verify(dir: &Path, alg: &str, key: &str, token: &str) -> Run {
    jwtkit(
        dir,
        &[
            "verify",
            "--alg",
            alg,
            "--key",
            key,
            "--iss",
            "https://auth.example.com",
            "--aud",
            "my-api",
            "--json",
            token,
        ],
    )
}

/// Signs with `NAME.pem`, verifies with `NAME.pub.pem`; `OTHER.pub.pem` is
/// refused, and so is verifying with `other_alg` only, with `(exit, error)`.
fn round_trip(
    dir: &Path,
    alg: &str,
    (other_alg, refused): (&str, (i32, &str)),
    name: &str,
    other: &str,
) {
    let token = sign(dir, alg, &format!("{name}.pem"));
    let run = verify(dir, alg, &format!("{name}.pub.pem"), &token);
    assert_eq!(run.code, 0, "{alg}: {} {}", run.stdout, run.stderr);
    let json = run.json();
    assert_eq!(json["header"]["alg"], alg);
    assert_eq!(json["claims"]["sub"], "alice");
    assert_eq!(json["claims"]["aud"], "my-api");
    // The kid defaults to the key's RFC 7638 thumbprint, as `keys thumbprint` prints it.
    let thumbprint = jwtkit(dir, &["keys", "thumbprint", &format!("{name}.pub.pem")]);
    assert_eq!(thumbprint.code, 0, "{}", thumbprint.stderr);
    assert_eq!(json["header"]["kid"], thumbprint.stdout.trim());

    let run = verify(dir, alg, &format!("{other}.pub.pem"), &token);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(run.json()["error"], "invalid_signature");

    let run = verify(dir, other_alg, &format!("{name}.pub.pem"), &token);
    assert_eq!(
        (run.code, run.json()["error"].as_str()),
        (refused.0, Some(refused.1)),
        "{}",
        run.stdout
    );
}

#[test]
fn rs256_with_openssl_genrsa_keys() {
    let Some(openssl_bin) = openssl_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    rsa_pair(&openssl_bin, dir.path(), "rsa");
    rsa_pair(&openssl_bin, dir.path(), "rsa2");
    // An RSA key also fits PS256; allowing only PS256 refuses the RS256 token.
    round_trip(
        dir.path(),
        "RS256",
        ("PS256", (1, "invalid_algorithm")),
        "rsa",
        "rsa2",
    );

    // A PEM file declares no algorithm: as `algorithms=[…]` in PyJWT, --alg is required.
    let token = sign(dir.path(), "RS256", "rsa.pem");
    let run = jwtkit(
        dir.path(),
        &["verify", "--key", "rsa.pub.pem", "--json", &token],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(run.json()["error"], "usage");
    assert!(
        run.json()["message"].as_str().unwrap().contains("--alg"),
        "the message names the flag: {}",
        run.stdout
    );
}

#[test]
fn es256_with_openssl_ecparam_sec1_keys() {
    let Some(openssl_bin) = openssl_bin() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    ec_pair(&openssl_bin, dir.path(), "ec");
    ec_pair(&openssl_bin, dir.path(), "ec2");
    let pem = std::fs::read_to_string(dir.path().join("ec.pem")).unwrap();
    assert!(
        pem.starts_with("-----BEGIN EC PRIVATE KEY-----"),
        "the guide's command writes SEC1: {pem}"
    );
    // A P-256 key signs ES256 only: --alg ES384 with it is a setup error.
    round_trip(
        dir.path(),
        "ES256",
        ("ES384", (2, "invalid_key")),
        "ec",
        "ec2",
    );

    // `openssl ec -pubout` output also publishes as a JWKS, which verifies by kid.
    let jwks = jwtkit(dir.path(), &["keys", "jwks", "ec.pub.pem", "ec2.pub.pem"]);
    assert_eq!(jwks.code, 0, "{}", jwks.stderr);
    std::fs::write(dir.path().join("jwks.json"), &jwks.stdout).unwrap();
    let token = sign(dir.path(), "ES256", "ec2.pem");
    let run = verify(dir.path(), "ES256", "jwks.json", &token);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(
        run.json()["header"]["kid"],
        jwks.json()["keys"][1]["kid"],
        "the second key of the set verified it"
    );
}
