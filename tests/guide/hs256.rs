//! HS256 with a secret from an environment variable, as every PyJWT
//! tutorial starts: `jwt.encode(payload, os.environ["JWT_SECRET"], "HS256")`
//! and `jwt.decode(token, secret, algorithms=["HS256"], audience=…, issuer=…)`.

use crate::common::{jwtkit_env, Run};

const SECRET: &str = "guide-e2e-hs256-secret-of-at-least-32-bytes";
const ISS: &str = "https://auth.example.com";
const T0: i64 = 1_800_000_000;

fn env() -> [(&'static str, &'static str); 1] {
    [("JWT_SECRET", SECRET)]
}

/// `jwtkit sign --alg HS256 --secret-env JWT_SECRET ARGS`
fn sign(dir: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["sign", "--alg", "HS256", "--secret-env", "JWT_SECRET"];
    all.extend_from_slice(args);
    let run = jwtkit_env(dir, &all, &env());
    assert_eq!(run.code, 0, "jwtkit {all:?}: {}", run.stderr);
    run.stdout.trim().to_owned()
}

/// `jwtkit verify --secret-env JWT_SECRET --alg HS256 --json ARGS TOKEN`
fn verify(dir: &std::path::Path, token: &str, args: &[&str]) -> Run {
    let mut all = vec![
        "verify",
        "--secret-env",
        "JWT_SECRET",
        "--alg",
        "HS256",
        "--json",
    ];
    all.extend_from_slice(args);
    all.push(token);
    jwtkit_env(dir, &all, &env())
}

/// Exit 1 with this `--json` error kind.
fn assert_rejected(run: &Run, kind: &str) {
    assert_eq!(
        (run.code, run.json()["error"].as_str()),
        (1, Some(kind)),
        "stdout: {} stderr: {}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn sign_and_verify_with_audience_and_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let token = sign(
        dir.path(),
        &[
            "--iss", ISS, "--sub", "alice", "--aud", "my-api", "--exp", "15m",
        ],
    );

    let ok = verify(dir.path(), &token, &["--aud", "my-api", "--iss", ISS]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let json = ok.json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["header"]["alg"], "HS256");
    assert_eq!(json["claims"]["sub"], "alice");
    assert_eq!(json["claims"]["aud"], "my-api");
    let (iat, exp) = (
        json["claims"]["iat"].as_i64().unwrap(),
        json["claims"]["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 900, "--exp 15m");

    // PyJWT's InvalidAudienceError / InvalidIssuerError / InvalidSignatureError.
    assert_rejected(
        &verify(dir.path(), &token, &["--aud", "other-api", "--iss", ISS]),
        "invalid_audience",
    );
    assert_rejected(
        &verify(
            dir.path(),
            &token,
            &["--aud", "my-api", "--iss", "https://evil.example"],
        ),
        "invalid_issuer",
    );
    let forged = jwtkit_env(
        dir.path(),
        &[
            "verify",
            "--secret-env",
            "OTHER_SECRET",
            "--alg",
            "HS256",
            "--aud",
            "my-api",
            "--json",
            &token,
        ],
        &[("OTHER_SECRET", "another-secret-that-is-32-bytes-long!!")],
    );
    assert_rejected(&forged, "invalid_signature");

    // Unlike `jwt.decode(token, key)` in PyJWT 1.x, the algorithm is never
    // taken from the token: a secret declares none, so --alg is required.
    let no_alg = jwtkit_env(
        dir.path(),
        &["verify", "--secret-env", "JWT_SECRET", "--json", &token],
        &env(),
    );
    assert_eq!(no_alg.code, 2, "{}", no_alg.stdout);
    assert_eq!(no_alg.json()["error"], "usage");
    assert!(
        no_alg.json()["message"].as_str().unwrap().contains("--alg"),
        "the message names the flag: {}",
        no_alg.stdout
    );
}

#[test]
fn an_expired_token_is_refused_unless_the_leeway_covers_it() {
    let dir = tempfile::tempdir().unwrap();
    // exp = T0 + 900
    let token = sign(
        dir.path(),
        &["--sub", "alice", "--exp", "15m", "--now", &T0.to_string()],
    );
    let at = |now: i64, leeway: Option<&str>| {
        let now = now.to_string();
        let mut args = vec!["--now", now.as_str()];
        if let Some(leeway) = leeway {
            args.extend(["--leeway", leeway]);
        }
        verify(dir.path(), &token, &args)
    };
    assert_eq!(at(T0 + 899, None).code, 0);
    // PyJWT's ExpiredSignatureError.
    assert_rejected(&at(T0 + 960, None), "expired");
    assert_rejected(&at(T0 + 960, Some("30s")), "expired");
    // `jwt.decode(..., leeway=timedelta(minutes=2))`
    let late = at(T0 + 960, Some("2m"));
    assert_eq!(late.code, 0, "{}", late.stdout);
    assert_eq!(late.json()["claims"]["exp"], T0 + 900);

    // Not yet valid: nbf in the future is ImmatureSignatureError in PyJWT.
    let early = sign(
        dir.path(),
        &[
            "--sub",
            "alice",
            "--exp",
            "15m",
            "--nbf",
            "5m",
            "--now",
            &T0.to_string(),
        ],
    );
    let run = verify(dir.path(), &early, &["--now", &T0.to_string()]);
    assert_rejected(&run, "immature");
    let run = verify(dir.path(), &early, &["--now", &(T0 + 300).to_string()]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn required_claims_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let plain = sign(dir.path(), &["--sub", "alice", "--exp", "15m"]);
    let with_jti = sign(
        dir.path(),
        &["--sub", "alice", "--exp", "15m", "--jti", "session-42"],
    );
    // `options={"require": ["exp", "sub", "jti"]}` → MissingRequiredClaimError.
    let run = verify(dir.path(), &plain, &["--require", "jti"]);
    assert_rejected(&run, "missing_claim");
    assert!(run.json()["message"].as_str().unwrap().contains("jti"));
    let run = verify(
        dir.path(),
        &with_jti,
        &["--require", "sub", "--require", "jti"],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["claims"]["jti"], "session-42");

    // `exp` is required by default (PyJWT only checks it when present).
    let no_exp = jwtkit_env(
        dir.path(),
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-env",
            "JWT_SECRET",
            "--claims",
            r#"{"sub":"alice"}"#,
        ],
        &env(),
    );
    assert_eq!(no_exp.code, 0, "{}", no_exp.stderr);
    let no_exp = no_exp.stdout.trim();
    assert_rejected(&verify(dir.path(), no_exp, &[]), "missing_claim");
    let run = verify(dir.path(), no_exp, &["--optional-exp"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn a_tutorial_secret_is_refused_for_signing() {
    // PyJWT tutorials sign with "secret"; jwtkit refuses a key that short.
    let dir = tempfile::tempdir().unwrap();
    let run = jwtkit_env(
        dir.path(),
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-env",
            "WEAK",
            "--sub",
            "a",
            "--exp",
            "5m",
        ],
        &[("WEAK", "secret")],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stdout.is_empty(), "no token printed: {}", run.stdout);
    assert!(run.stderr.contains("weak_key"), "{}", run.stderr);
}
