//! Issue 13, items 2, 3 and 4c: `jwtkit verify --help` says what `--alg`
//! does with each key source, and every statement is run here against the
//! real binary, so the help and the code cannot drift apart; a rejection
//! that a flag would have accepted names the flag; `--alg` and `--require`
//! take comma-separated lists, `--aud` and `--iss` do not.

mod common;
mod loopback;

use std::path::Path;

use common::{jwtkit, jwtkit_env, ok, Run};
use serde_json::{json, Value};

/// The verifying clock of every case: tokens are signed at `NOW`.
const NOW: &str = "1800000000";
const LATER: &str = "1800000060";
const SECRET: &str = "an-hmac-secret-of-32-bytes-or-more-0123";

/// A directory with an ES256 key (PEM, JWK with `alg`, JWK without), an
/// RSA key, JWKS files and tokens signed by each key.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let fixture = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        let dir = fixture.path();
        ok(
            dir,
            &["keys", "generate", "--alg", "ES256", "--out", "es.pem"],
        );
        ok(
            dir,
            &["keys", "generate", "--alg", "RS256", "--out", "rs.pem"],
        );
        let es = fixture.public_jwk("es.pem", "e", Some("ES256"));
        let es_bare = fixture.public_jwk("es.pem", "e", None);
        let rs_bound = fixture.public_jwk("rs.pem", "r", Some("RS256"));
        let rs_bare = fixture.public_jwk("rs.pem", "r", None);
        fixture.write_json("es.jwk", &es);
        fixture.write_json("es-bare.jwk", &es_bare);
        fixture.write_json("bound.jwks", &json!({"keys": [es, rs_bound]}));
        fixture.write_json("unbound.jwks", &json!({"keys": [es_bare, rs_bare]}));
        fixture.write_json("mixed.jwks", &json!({"keys": [es, rs_bare]}));
        fixture
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The public JWK of `pem` with `kid`, and `alg` when given (else none).
    fn public_jwk(&self, pem: &str, kid: &str, alg: Option<&str>) -> Value {
        let jwks: Value = serde_json::from_str(&ok(self.path(), &["keys", "jwks", pem])).unwrap();
        let mut jwk = jwks["keys"][0].clone();
        jwk["kid"] = json!(kid);
        let members = jwk.as_object_mut().unwrap();
        match alg {
            Some(alg) => {
                members.insert("alg".into(), json!(alg));
            }
            None => {
                members.remove("alg");
            }
        }
        jwk
    }

    fn write_json(&self, name: &str, value: &Value) {
        std::fs::write(self.path().join(name), value.to_string()).unwrap();
    }

    /// A token signed at `NOW` with `key` (`--key FILE` or other key flags).
    fn sign(&self, key: &[&str], alg: &str, kid: &str, extra: &[&str]) -> String {
        let kid = format!("--kid={kid}");
        let mut args = vec!["sign", "--alg", alg, &kid, "--exp", "5m", "--now", NOW];
        args.extend_from_slice(key);
        args.extend_from_slice(extra);
        let run = jwtkit_env(self.path(), &args, &[("S", SECRET)]);
        assert_eq!(run.code, 0, "sign {args:?}: {}", run.stderr);
        run.stdout.trim().to_owned()
    }

    /// `jwtkit verify --json --now LATER ARGS TOKEN`.
    fn verify(&self, args: &[&str], token: &str) -> Run {
        let mut all = vec!["verify", "--json", "--now", LATER];
        all.extend_from_slice(args);
        all.push(token);
        jwtkit_env(self.path(), &all, &[("S", SECRET)])
    }
}

/// The exit code and the `error` kind of a `verify --json` run ("ok" when valid).
fn outcome(run: &Run) -> (i32, String) {
    let doc = run.json();
    let kind = doc["error"].as_str().unwrap_or("ok").to_owned();
    (run.code, kind)
}

/// `a` then `b`.
fn cat<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
    [a, b].concat()
}

/// Whitespace collapsed, so that a statement reads the same however the
/// help text is laid out.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Item 2: each statement of the help's "--alg by key source" section, and
/// the runs that show it is what the code does.
#[test]
fn help_states_what_alg_does_per_key_source() {
    let f = Fixture::new();
    let dir = f.path();
    let help = flat(&ok(dir, &["verify", "--help"]));
    let says = |statement: &str| {
        assert!(
            help.contains(&flat(statement)),
            "`verify --help` no longer says: {statement}\n{help}"
        );
    };
    let es = f.sign(&["--key", "es.pem"], "ES256", "e", &[]);
    let rs = f.sign(&["--key", "rs.pem"], "RS256", "r", &[]);
    let ps = f.sign(&["--key", "rs.pem"], "PS256", "r", &[]);
    let hs = f.sign(&["--secret-env", "S"], "HS256", "h", &[]);
    let check = |args: &[&str], token: &str, expected: (i32, &str)| {
        let run = f.verify(args, token);
        assert_eq!(
            outcome(&run),
            (expected.0, expected.1.to_owned()),
            "verify {args:?}: {}",
            run.stdout
        );
    };

    says("--alg by key source (the key type is never used to guess an algorithm):");

    // PEM, DER, HMAC secrets.
    says(
        "--key PEM or DER file, --secret-file, --secret-env The key names no algorithm: \
         --alg is required (exit 2 `usage` without it).",
    );
    check(&["--key", "es.pem"], &es, (2, "usage"));
    check(&["--secret-env", "S"], &hs, (2, "usage"));
    check(&["--key", "es.pem", "--alg", "ES256"], &es, (0, "ok"));
    check(&["--secret-env", "S", "--alg", "HS256"], &hs, (0, "ok"));
    says("When no listed algorithm fits the key's type, it is refused (exit 2 `invalid_key`).");
    check(
        &["--key", "es.pem", "--alg", "RS256"],
        &es,
        (2, "invalid_key"),
    );
    check(
        &["--secret-env", "S", "--alg", "ES256"],
        &hs,
        (2, "invalid_key"),
    );

    // A JWK file.
    says(
        "--key JWK file A JWK with `alg` verifies with that algorithm only: --alg may be left \
         out; if given it must include it (exit 2 `usage` otherwise). A JWK without `alg` is \
         like a PEM file.",
    );
    check(&["--key", "es.jwk"], &es, (0, "ok"));
    check(&["--key", "es.jwk", "--alg", "RS256"], &es, (2, "usage"));
    check(&["--key", "es.jwk", "--alg", "RS256,ES256"], &es, (0, "ok"));
    check(&["--key", "es-bare.jwk"], &es, (2, "usage"));
    check(&["--key", "es-bare.jwk", "--alg", "ES256"], &es, (0, "ok"));

    // A JWKS file and a JWKS URL: the same rule.
    says(
        "--key JWKS file, --jwks-url URL The entry is picked by the token's `kid`. An entry \
         with `alg` verifies with that algorithm only: a token using another is rejected (exit \
         1 `invalid_algorithm`), whatever --alg lists.",
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let bound_url = loopback::serve(read("bound.jwks"), Some("application/json"));
    let unbound_url = loopback::serve(read("unbound.jwks"), Some("application/json"));
    let mixed_url = loopback::serve(read("mixed.jwks"), Some("application/json"));
    for bound in [["--key", "bound.jwks"], ["--jwks-url", bound_url.as_str()]] {
        check(&bound, &es, (0, "ok"));
        check(&bound, &rs, (0, "ok"));
        check(&bound, &ps, (1, "invalid_algorithm"));
        check(
            &cat(&bound, &["--alg", "PS256,ES256"]),
            &ps,
            (1, "invalid_algorithm"),
        );
    }
    says(
        "An entry without `alg` needs --alg (exit 2 `usage`; a JWKS file none of whose entries \
         has `alg` is refused before the token is read).",
    );
    for mixed in [["--key", "mixed.jwks"], ["--jwks-url", mixed_url.as_str()]] {
        check(&mixed, &es, (0, "ok"));
        check(&mixed, &ps, (2, "usage"));
        check(&cat(&mixed, &["--alg", "PS256"]), &ps, (0, "ok"));
    }
    check(&["--jwks-url", &unbound_url], &es, (2, "usage"));
    // Refused before the token is read: even an undecodable token gets the usage error.
    check(&["--key", "unbound.jwks"], "not-a-token", (2, "usage"));
    says(
        "With --alg, a token whose `alg` is not listed is rejected (exit 1 `invalid_algorithm`); \
         a JWKS file with no entry that can verify any listed algorithm is refused (exit 2 \
         `invalid_key`).",
    );
    for unbound in [
        ["--key", "unbound.jwks"],
        ["--jwks-url", unbound_url.as_str()],
    ] {
        check(
            &cat(&unbound, &["--alg", "RS256"]),
            &es,
            (1, "invalid_algorithm"),
        );
        check(&cat(&unbound, &["--alg", "ES256"]), &es, (0, "ok"));
    }
    check(
        &["--key", "bound.jwks", "--alg", "PS256"],
        &ps,
        (2, "invalid_key"),
    );

    // A key store.
    says(
        "--store URI Every key is bound to its record's algorithm: --alg is not needed. With \
         --alg, a token whose `alg` is not listed is rejected (exit 1 `invalid_algorithm`).",
    );
    ok(
        dir,
        &["store", "init", "file:keys", "--alg", "ES256", "--now", NOW],
    );
    let stored = ok(
        dir,
        &["sign", "--store", "file:keys", "--exp", "5m", "--now", NOW],
    );
    let stored = stored.trim();
    check(&["--store", "file:keys"], stored, (0, "ok"));
    check(
        &["--store", "file:keys", "--alg", "ES256"],
        stored,
        (0, "ok"),
    );
    check(
        &["--store", "file:keys", "--alg", "RS256"],
        stored,
        (1, "invalid_algorithm"),
    );
}

/// Item 3: a token without `exp` is refused naming --optional-exp, which
/// then accepts it; an explicit `--require exp` gets no such advice.
#[test]
fn a_token_without_exp_names_optional_exp() {
    let f = Fixture::new();
    let run = jwtkit(
        f.path(),
        &[
            "sign", "--key", "es.pem", "--alg", "ES256", "--sub", "a", "--now", NOW,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.stdout.trim();
    let key = ["--key", "es.pem", "--alg", "ES256"];

    let run = f.verify(&key, token);
    assert_eq!(outcome(&run), (1, "missing_claim".to_owned()));
    let message = run.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("no `exp` claim") && message.contains("pass --optional-exp"),
        "{message}"
    );
    // Text mode: the same words on stderr.
    let mut text = vec!["verify", "--now", LATER];
    text.extend_from_slice(&key);
    text.push(token);
    let run = jwtkit(f.path(), &text);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("pass --optional-exp"), "{}", run.stderr);

    let run = f.verify(&cat(&key, &["--optional-exp"]), token);
    assert_eq!(outcome(&run), (0, "ok".to_owned()));
    assert_eq!(run.json()["claims"]["sub"], "a");

    // Asked for explicitly: no advice to drop the requirement.
    let run = f.verify(&cat(&key, &["--require", "exp"]), token);
    assert_eq!(outcome(&run), (1, "missing_claim".to_owned()));
    let message = run.json()["message"].as_str().unwrap().to_owned();
    assert!(!message.contains("--optional-exp"), "{message}");
}

/// Item 3: a token carrying `aud` verified without --aud names --aud and
/// the token's audiences (escaped); with --aud it verifies.
#[test]
fn a_token_with_aud_and_no_aud_flag_names_aud() {
    let f = Fixture::new();
    let token = f.sign(
        &["--key", "es.pem"],
        "ES256",
        "e",
        &["--aud", "api://orders", "--aud", "billing\u{1b}[31m"],
    );
    let key = ["--key", "es.pem", "--alg", "ES256"];
    let run = f.verify(&key, &token);
    assert_eq!(outcome(&run), (1, "invalid_audience".to_owned()));
    let message = run.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("pass --aud <one of the token's audiences>")
            && message.contains("\"api://orders\""),
        "{message}"
    );
    // The audience's escape character never reaches the terminal raw.
    let mut text = vec!["verify", "--now", LATER];
    text.extend_from_slice(&key);
    text.push(&token);
    let run = jwtkit(f.path(), &text);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("pass --aud"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);

    let run = f.verify(&cat(&key, &["--aud", "api://orders"]), &token);
    assert_eq!(outcome(&run), (0, "ok".to_owned()));
    // With a wrong --aud the message is the usual one: no hint to add --aud.
    let run = f.verify(&cat(&key, &["--aud", "other"]), &token);
    assert_eq!(outcome(&run), (1, "invalid_audience".to_owned()));
    let message = run.json()["message"].as_str().unwrap().to_owned();
    assert!(!message.contains("pass --aud"), "{message}");
}

/// Item 4c: `--require exp,sub` is two claims, `--alg` takes a list the
/// same way; `--aud` and `--iss` are never split (a URI may hold a comma).
#[test]
fn require_and_alg_take_comma_lists_aud_and_iss_do_not() {
    let f = Fixture::new();
    let token = f.sign(
        &["--key", "es.pem"],
        "ES256",
        "e",
        &[
            "--sub",
            "alice",
            "--aud",
            "urn:a,b",
            "--iss",
            "https://idp/x,y",
        ],
    );
    let base = [
        "--key",
        "es.pem",
        "--alg",
        "ES256",
        "--aud",
        "urn:a,b",
        "--iss",
        "https://idp/x,y",
    ];
    let with = |extra: &[&str]| f.verify(&cat(&base, extra), &token);

    let run = with(&["--require", "exp,sub"]);
    assert_eq!(outcome(&run), (0, "ok".to_owned()), "{}", run.stdout);
    let run = with(&["--require", "exp,sub,jti"]);
    assert_eq!(outcome(&run), (1, "missing_claim".to_owned()));
    assert!(
        run.json()["message"].as_str().unwrap().contains("`jti`"),
        "{}",
        run.stdout
    );
    // Repeated and comma-separated mix.
    let run = with(&["--require", "sub", "--require", "exp,iat"]);
    assert_eq!(outcome(&run), (0, "ok".to_owned()));
    // An empty name is a usage error naming the flag.
    let run = with(&["--require", "exp,,sub"]);
    assert_eq!(outcome(&run), (2, "usage".to_owned()));
    assert!(
        run.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("--require:"),
        "{}",
        run.stdout
    );

    // --alg RS256,ES256: the token's ES256 is in the list.
    let run = f.verify(
        &[
            "--key",
            "es.jwk",
            "--alg",
            "RS256,ES256",
            "--aud",
            "urn:a,b",
        ],
        &token,
    );
    assert_eq!(outcome(&run), (0, "ok".to_owned()), "{}", run.stdout);

    // `--aud urn:a` alone does not match `urn:a,b`: the flag was not split.
    let run = f.verify(
        &["--key", "es.pem", "--alg", "ES256", "--aud", "urn:a"],
        &token,
    );
    assert_eq!(outcome(&run), (1, "invalid_audience".to_owned()));
    let help = flat(&ok(f.path(), &["verify", "--help"]));
    assert!(help.contains("(`--require exp,sub,jti`;"), "{help}");
    assert!(help.contains("never split at commas"), "{help}");
}
