//! The real `jwtkit` binary against the key and algorithm holes of issue 11
//! (items 8, 9, 10, 11 and 16). Every run is bounded in time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// No command here takes more than a fraction of a second; this bounds a hang.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Far-future expiry, so the tokens are valid whenever the test runs.
const EXP: &str = "4000000000";

/// A 40-byte secret for HS256.
const SECRET: &str = "0123456789abcdef0123456789abcdef01234567";

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?}; stderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    fn token(&self) -> String {
        assert_eq!(self.code, 0, "sign failed: {}", self.stderr);
        self.stdout.trim().to_owned()
    }

    /// Asserts the exit code and that `fragment` is in the error (its kind
    /// or message): on stderr, or with `--json` in the document on stdout (issue 13
    /// item 12: a `--json` run prints its error there only).
    #[track_caller]
    fn assert_fails(&self, code: i32, fragment: &str) {
        assert_eq!(
            self.code, code,
            "expected exit {code}; stdout {:?}; stderr {}",
            self.stdout, self.stderr
        );
        let in_json = serde_json::from_str::<Value>(self.stdout.trim()).is_ok_and(|doc| {
            doc["error"] == fragment
                || doc["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(fragment))
        });
        assert!(
            self.stderr.contains(fragment) || in_json,
            "{fragment:?} not in the error: {} / {}",
            self.stdout,
            self.stderr
        );
    }
}

struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        Work {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write file");
        name.to_owned()
    }

    /// Runs `jwtkit` with exactly `env` added, killing it after [`TIMEOUT`].
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jwtkit"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn jwtkit");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait jwtkit") {
                break status;
            }
            if start.elapsed() > TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("jwtkit {args:?} did not finish within {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr = err_reader.join().expect("stderr reader");
        assert!(
            !stderr.contains("panicked"),
            "jwtkit panicked on {args:?}: {stderr}"
        );
        Output {
            code: status.code().expect("exit code (not a signal)"),
            stdout: out_reader.join().expect("stdout reader"),
            stderr,
        }
    }
}

fn data_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../jwt-core/tests/data")
        .join(name)
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(data_path(name)).expect("test data")
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

// ---------------------------------------------------------------- item 8

#[test]
fn verify_json_reports_unsigned_tokens_as_invalid_algorithm() {
    let work = Work::new();
    let secret = work.write("secret", SECRET);
    let payload = b64url(format!(r#"{{"sub":"alice","exp":{EXP}}}"#).as_bytes());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64url(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        let token = format!("{header}.{payload}.");
        let out = work.run(
            &[
                "verify",
                "--json",
                "--alg",
                "HS256",
                "--secret-file",
                &secret,
                &token,
            ],
            &[],
        );
        out.assert_fails(1, "invalid_algorithm");
        let doc = out.json();
        assert_eq!(doc["valid"], false, "{doc}");
        assert_eq!(doc["error"], "invalid_algorithm", "{alg}: {doc}");
        assert!(
            doc["message"].as_str().unwrap().contains("never accepted"),
            "{doc}"
        );
        // Through a key store too.
        let out = work.run(
            &["verify", "--json", "--store", "env:JWTKIT_D_KEY", &token],
            &[("JWTKIT_D_KEY", SECRET)],
        );
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert_eq!(out.json()["error"], "invalid_algorithm", "{}", out.stdout);
    }
}

// ---------------------------------------------------------------- item 9

#[test]
fn secret_file_refuses_keys_in_every_form() {
    let work = Work::new();
    let mut commented = b"# the gateway's verification key\n".to_vec();
    commented.extend_from_slice(&data("ec256.pub.pem"));
    let mut bom = "\u{feff}".as_bytes().to_vec();
    bom.extend_from_slice(&data("rsa2048.pkcs1.pub.pem"));
    let forms: [(&str, Vec<u8>); 6] = [
        ("commented.pem", commented),
        ("bom.pem", bom),
        ("x509-text.txt", data("ec256.cert.text.txt")),
        ("x509-noout-text.txt", data("ec256.cert.noout-text.txt")),
        ("spki.der", data("rsa2048.pub.der")),
        ("cert.der", data("ec256.cert.der")),
    ];
    for (name, bytes) in forms {
        let file = work.write(name, bytes);
        let out = work.run(
            &[
                "sign",
                "--alg",
                "HS256",
                "--secret-file",
                &file,
                "--claims",
                "{}",
                "--exp",
                "5m",
            ],
            &[],
        );
        out.assert_fails(2, "not a secret");
        let out = work.run(
            &[
                "verify",
                "--json",
                "--alg",
                "HS256",
                "--secret-file",
                &file,
                "a.b.c",
            ],
            &[],
        );
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert_eq!(out.json()["error"], "invalid_key", "{name}: {}", out.stdout);
        out.assert_fails(2, "--key");
    }
    // The same through --secret-env and the env store (DER as base64url:).
    let der = format!("base64url:{}", b64url(&data("ec256.pub.der")));
    let pem = format!(
        "# comment\n{}",
        String::from_utf8(data("ec256.pub.pem")).unwrap()
    );
    for value in [der.as_str(), pem.as_str()] {
        let out = work.run(
            &["sign", "--alg", "HS256", "--secret-env", "JWTKIT_D_SECRET"],
            &[("JWTKIT_D_SECRET", value)],
        );
        assert_eq!(out.code, 2, "{value}: {}", out.stderr);
        let out = work.run(
            &["sign", "--store", "env:JWTKIT_D_SECRET", "--exp", "5m"],
            &[("JWTKIT_D_SECRET", value)],
        );
        assert_eq!(out.code, 2, "{value}: {}", out.stderr);
    }
}

// ---------------------------------------------------------------- item 10

#[test]
fn ed25519_key_of_small_order_is_refused() {
    let work = Work::new();
    let mut identity = vec![1u8];
    identity.extend([0u8; 31]);
    let jwk = work.write(
        "identity.jwk",
        format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#,
            b64url(&identity)
        ),
    );
    // The forgery this key allows: R = identity, S = 0 verifies any message.
    let mut sig = vec![1u8];
    sig.extend([0u8; 63]);
    let token = format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"EdDSA"}"#),
        b64url(format!(r#"{{"sub":"admin","exp":{EXP}}}"#).as_bytes()),
        b64url(&sig)
    );
    let out = work.run(
        &["verify", "--json", "--alg", "EdDSA", "--key", &jwk, &token],
        &[],
    );
    out.assert_fails(2, "small order");
    assert_eq!(out.json()["error"], "invalid_key");
}

// ---------------------------------------------------------------- item 11

#[test]
fn key_files_with_several_keys_are_refused_and_chains_use_the_leaf() {
    let work = Work::new();
    let two = work.write(
        "two.pem",
        [data("ec256.sec1.pem"), data("chain.leaf.key.pem")].concat(),
    );
    let out = work.run(
        &["sign", "--alg", "ES256", "--key", &two, "--exp", "5m"],
        &[],
    );
    out.assert_fails(2, "2 private keys");
    let two_pub = work.write(
        "two-pub.pem",
        [data("ec256.pub.pem"), data("ed25519.pub.pem")].concat(),
    );
    let out = work.run(
        &[
            "verify", "--json", "--alg", "ES256", "--key", &two_pub, "a.b.c",
        ],
        &[],
    );
    out.assert_fails(2, "several different keys");
    assert_eq!(out.json()["error"], "invalid_key");

    // A certificate chain verifies with its leaf.
    let leaf_key = work.write("leaf.pem", data("chain.leaf.key.pem"));
    let chain = work.write("chain.pem", data("chain.pem"));
    let token = work
        .run(
            &[
                "sign", "--alg", "ES256", "--key", &leaf_key, "--sub", "alice", "--exp", "5m",
            ],
            &[],
        )
        .token();
    let out = work.run(
        &[
            "verify", "--json", "--alg", "ES256", "--key", &chain, &token,
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["claims"]["sub"], "alice");
}

#[test]
fn signing_refuses_an_enc_jwk() {
    let work = Work::new();
    // The P-256 key of RFC 7517 appendix A.2, marked for encryption.
    let jwk = work.write(
        "enc.jwk",
        r#"{"kty":"EC","crv":"P-256","use":"enc",
            "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
            "d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}"#,
    );
    let out = work.run(
        &["sign", "--alg", "ES256", "--key", &jwk, "--exp", "5m"],
        &[],
    );
    out.assert_fails(2, "`use` is \"enc\"");
    // With `use: sig` the same key signs.
    let sig = work.write(
        "sig.jwk",
        std::fs::read_to_string(work.dir.path().join(&jwk))
            .unwrap()
            .replace("\"enc\"", "\"sig\""),
    );
    work.run(
        &["sign", "--alg", "ES256", "--key", &sig, "--exp", "5m"],
        &[],
    )
    .token();
}

// ---------------------------------------------------------------- item 16

#[test]
fn one_variable_is_one_secret_through_secret_env_and_store_env() {
    let work = Work::new();
    let binary: Vec<u8> = (0u8..64).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
    let encoded = format!("base64url:{}", b64url(&binary));
    let padded = format!("  {SECRET}\n");
    for value in [encoded.as_str(), padded.as_str(), SECRET] {
        let env = [("JWTKIT_D_SHARED", value)];
        let by_env = work
            .run(
                &[
                    "sign",
                    "--alg",
                    "HS256",
                    "--secret-env",
                    "JWTKIT_D_SHARED",
                    "--exp",
                    "5m",
                ],
                &env,
            )
            .token();
        let by_store = work
            .run(
                &["sign", "--store", "env:JWTKIT_D_SHARED", "--exp", "5m"],
                &env,
            )
            .token();
        // Each token verifies the other way round.
        let out = work.run(
            &[
                "verify",
                "--json",
                "--store",
                "env:JWTKIT_D_SHARED",
                &by_env,
            ],
            &env,
        );
        assert_eq!(out.code, 0, "{value:?}: {}", out.stderr);
        let out = work.run(
            &[
                "verify",
                "--json",
                "--alg",
                "HS256",
                "--secret-env",
                "JWTKIT_D_SHARED",
                &by_store,
            ],
            &env,
        );
        assert_eq!(out.code, 0, "{value:?}: {}", out.stderr);
    }
    // The decoded secret is the binary one, not the `base64url:` text.
    let file = work.write("binary.secret", &binary);
    let token = work
        .run(
            &[
                "sign",
                "--alg",
                "HS256",
                "--secret-file",
                &file,
                "--exp",
                "5m",
            ],
            &[],
        )
        .token();
    let out = work.run(
        &[
            "verify",
            "--json",
            "--alg",
            "HS256",
            "--secret-env",
            "JWTKIT_D_SHARED",
            &token,
        ],
        &[("JWTKIT_D_SHARED", &encoded)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A malformed `base64url:` value is a configuration error naming the variable.
    let out = work.run(
        &["sign", "--alg", "HS256", "--secret-env", "JWTKIT_D_SHARED"],
        &[("JWTKIT_D_SHARED", "base64url:not base64!")],
    );
    out.assert_fails(2, "JWTKIT_D_SHARED");
}
