//! Issue 13's new-user review (a PyJWT user working through the guide with
//! the release binary): each point of friction it found, run against the
//! real binary. Every test here failed on the binary the review used.

mod common;
mod loopback;

use std::path::Path;

use common::{jwtkit, jwtkit_env, ok, Run};
use serde_json::{json, Map, Value};

/// Tokens are signed at `T0` (2027-01-15T08:00:00Z) unless said otherwise.
const T0: i64 = 1_800_000_000;
const SECRET: &str = "an-hmac-secret-of-32-bytes-or-more-0123";

fn at(t: i64) -> String {
    t.to_string()
}

/// `jwtkit ARGS` with the HMAC secret in `$S`.
fn run(dir: &Path, args: &[&str]) -> Run {
    jwtkit_env(dir, args, &[("S", SECRET)])
}

/// A token signed with `$S` (HS256) at `T0`, with `extra` flags.
fn hs_token(dir: &Path, extra: &[&str]) -> String {
    let now = at(T0);
    let mut args = vec!["sign", "--alg", "HS256", "--secret-env", "S", "--now", &now];
    args.extend_from_slice(extra);
    let signed = run(dir, &args);
    assert_eq!(signed.code, 0, "sign {args:?}: {}", signed.stderr);
    signed.stdout.trim().to_owned()
}

/// The header (`alg`, `kid`) and claims of `token`, decoded without the binary.
fn decode(token: &str) -> (Value, Map<String, Value>) {
    let token = jwt_core::dangerous::insecure_decode(token).expect("a token");
    let header = serde_json::to_value(&token.header).unwrap();
    (header, token.claims)
}

/// Asserts exit code 2 (or `code`) and that stderr holds every fragment.
fn assert_fails(run: &Run, code: i32, fragments: &[&str]) {
    assert_eq!(
        run.code, code,
        "stdout {:?} stderr {}",
        run.stdout, run.stderr
    );
    for fragment in fragments {
        assert!(
            run.stderr.contains(fragment),
            "missing {fragment:?} in: {}",
            run.stderr
        );
    }
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// The first entry of `jwtkit keys jwks ARGS`.
fn public_jwk(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["keys", "jwks"];
    all.extend_from_slice(args);
    let jwks: Value = serde_json::from_str(&ok(dir, &all)).unwrap();
    jwks["keys"][0].clone()
}

/// Item 1: `inspect` says when a token is expired or not yet valid, at
/// `--now` (the system clock by default), in the `times:` section, as
/// warnings on stderr and as `"warnings"` with `--json`.
#[test]
fn inspect_says_when_a_token_is_expired_or_not_yet_valid() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // iat T0, nbf T0 + 5m, exp T0 + 15m.
    let token = hs_token(dir, &["--exp", "15m", "--nbf", "+5m"]);

    let late = at(T0 + 900 + 45 * 60);
    let text = jwtkit(dir, &["inspect", "--now", &late, &token]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("  exp: 2027-01-15T08:15:00Z (expired 45m ago)\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stderr.contains(
            "warning: the token expired 45m ago (exp 2027-01-15T08:15:00Z); verification \
             refuses it (`expired`)"
        ),
        "{}",
        text.stderr
    );
    let doc = jwtkit(dir, &["inspect", "--json", "--now", &late, &token]).json();
    let warnings = doc["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{doc}");
    assert!(
        warnings[0].as_str().unwrap().contains("expired 45m ago"),
        "{doc}"
    );

    // Valid: how long it has left, and no warnings at all.
    let valid = at(T0 + 360);
    let text = jwtkit(dir, &["inspect", "--now", &valid, &token]);
    assert!(
        text.stdout
            .contains("  exp: 2027-01-15T08:15:00Z (valid for another 9m)\n"),
        "{}",
        text.stdout
    );
    assert!(text
        .stdout
        .contains("  nbf: 2027-01-15T08:05:00Z (1m ago)\n"));
    let doc = jwtkit(dir, &["inspect", "--json", "--now", &valid, &token]).json();
    assert_eq!(doc.get("warnings"), None, "{doc}");

    // Before nbf.
    let early = at(T0 + 60);
    let text = jwtkit(dir, &["inspect", "--now", &early, &token]);
    assert!(
        text.stdout
            .contains("  nbf: 2027-01-15T08:05:00Z (not valid yet: in 4m)\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stderr.contains(
            "warning: the token is not valid before 2027-01-15T08:05:00Z (nbf, in 4m); \
             verification refuses it until then (`immature`)"
        ),
        "{}",
        text.stderr
    );

    // An iat in the future (a --now in RFC 3339, as --exp takes).
    let doc = jwtkit(
        dir,
        &["inspect", "--json", "--now", "2027-01-15T07:50:00Z", &token],
    )
    .json();
    let warnings: Vec<&str> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("iat 2027-01-15T08:00:00Z is in the future (in 10m)")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("(nbf, in 15m)")),
        "{warnings:?}"
    );
}

/// Item 2: jwt-cli's `-S/--secret VALUE` is refused with the reason and the
/// flags to use, never by echoing the secret, on sign and verify.
#[test]
fn a_secret_on_the_command_line_is_refused_with_the_flags_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let value = "s3cr3t-value-on-the-command-line";
    let with_value = format!("--secret={value}");
    for args in [
        &["sign", "--alg", "HS256", "--secret", value][..],
        &["sign", "-S", value, "--alg", "HS256", "--exp", "1m"],
        &["sign", "--alg", "HS256", "--secret"],
        &["verify", "--alg", "HS256", "--secret", value, "a.b.c"],
        &["verify", "--alg", "HS256", &with_value, "a.b.c"],
    ] {
        let out = jwtkit(dir, args);
        assert_fails(
            &out,
            2,
            &[
                "error [usage]: --secret: jwtkit takes no secret on the command line (it would \
                 show in `ps` and in the shell history)",
                "--secret-env VAR",
                "--secret-file FILE (`-` for stdin)",
            ],
        );
        assert!(!out.stderr.contains(value), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
    // jwt-cli's `@FILE` form: the path is named in the fix.
    let out = jwtkit(dir, &["verify", "-S", "@secret.txt", "a.b.c"]);
    assert_fails(&out, 2, &["--secret-file secret.txt"]);
    // `--json`: the one JSON document.
    let out = jwtkit(dir, &["verify", "--json", "--secret", value, "a.b.c"]);
    assert_eq!(out.code, 2);
    let doc = out.json();
    assert_eq!(doc["error"], "usage");
    assert!(!out.stdout.contains(value));
    // Hidden: not offered in the help or the usage.
    for command in ["sign", "verify"] {
        let help = ok(dir, &[command, "--help"]);
        assert!(!help.contains("--secret <"), "{help}");
        assert!(!help.contains("--secret [<"), "{help}");
    }
}

/// Item 3: a missing key source lists sign's own sources (not the
/// verify-only --jwks-url); verify's lists its own.
#[test]
fn a_missing_key_source_lists_the_commands_own_sources() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let out = jwtkit(dir, &["sign", "--alg", "HS256", "--exp", "1m"]);
    assert_fails(
        &out,
        2,
        &[
            "error [usage]: no key to sign with",
            "--key FILE",
            "--secret-file FILE",
            "--secret-env VAR",
            "--store URI",
        ],
    );
    assert!(!out.stderr.contains("jwks-url"), "{}", out.stderr);

    let out = jwtkit(
        dir,
        &["sign", "--jwks-url", "https://issuer.example/jwks.json"],
    );
    assert_fails(&out, 2, &["--jwks-url only verifies"]);

    let out = jwtkit(dir, &["verify", "a.b.c"]);
    assert_fails(
        &out,
        2,
        &["error [usage]: no key to verify with", "--jwks-url URL"],
    );
    let usage = ok(dir, &["sign", "--help"]);
    let usage = usage.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert!(!usage.contains("jwks-url"), "{usage}");
}

/// Item 4: HS256 with a key file says what the key is, that HS256 takes a
/// shared secret and how to pass one, and which --alg fits the key.
#[test]
fn an_hmac_algorithm_with_a_key_file_names_both_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    ok(
        dir,
        &["keys", "generate", "--alg", "RS256", "--out", "rsa.pem"],
    );
    let out = jwtkit(
        dir,
        &["sign", "--alg", "HS256", "--key", "rsa.pem", "--exp", "1m"],
    );
    assert_fails(
        &out,
        2,
        &[
            "error [invalid_key]: key file rsa.pem: key/algorithm mismatch: a key file (here an \
           RSA private key) is never an HMAC secret: HS256 takes a shared secret: pass \
           --secret-env VAR or --secret-file FILE; for this key use --alg RS256, RS384, RS512, \
           PS256, PS384 or PS512",
        ],
    );
    assert!(!out.stderr.contains("public key"), "{}", out.stderr);

    // Verifying: the same, for the public key.
    let jwk = public_jwk(dir, &["rsa.pem"]);
    write(dir, "rsa.jwk", &jwk.to_string(), 0o644);
    let token = hs_token(dir, &["--exp", "15m"]);
    let out = jwtkit(
        dir,
        &[
            "verify", "--json", "--alg", "HS256", "--key", "rsa.jwk", &token,
        ],
    );
    assert_eq!(out.code, 2);
    let doc = out.json();
    assert_eq!(doc["error"], "invalid_key");
    let message = doc["message"].as_str().unwrap();
    assert!(
        message.contains("(here an RSA key) is never an HMAC secret: HS256 takes a shared secret"),
        "{message}"
    );
}

/// Item 5: a token pasted with `Bearer `, quotes or whitespace gets a hint
/// naming the slip, from verify and inspect; the token is never cleaned up.
#[test]
fn pasted_tokens_get_a_hint_and_are_never_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let token = hs_token(dir, &["--exp", "15m"]);
    let now = at(T0 + 60);
    let (head, tail) = token.split_at(30);
    let cases = [
        (format!("Bearer {token}"), "remove the `Bearer ` prefix"),
        (
            format!("Authorization: Bearer {token}"),
            "without `Authorization: Bearer `",
        ),
        (format!("\"{token}\""), "the token contains quotes"),
        (format!("{head}\n{tail}"), "the token contains whitespace"),
        (
            format!("'{head} {tail}'"),
            "the token contains whitespace and quotes",
        ),
    ];
    for (given, hint) in &cases {
        let verify = [
            "verify",
            "--alg",
            "HS256",
            "--secret-env",
            "S",
            "--now",
            &now,
        ];
        let out = run(dir, &[&verify[..], &[given.as_str()]].concat());
        assert_fails(&out, 1, &["error [malformed]: malformed token", hint]);

        let out = run(dir, &[&verify[..], &["--json", given.as_str()]].concat());
        assert_eq!(out.code, 1);
        let doc = out.json();
        assert_eq!(doc["error"], "malformed");
        assert!(doc["message"].as_str().unwrap().contains(hint), "{doc}");

        let out = jwtkit(dir, &["inspect", given]);
        assert_fails(&out, 1, &["error [malformed]: cannot inspect", hint]);
        assert_eq!(out.stderr.matches(hint).count(), 1, "once: {}", out.stderr);
    }
    // The clean token verifies: the hint is the only difference.
    let out = run(
        dir,
        &[
            "verify",
            "--alg",
            "HS256",
            "--secret-env",
            "S",
            "--now",
            &now,
            &token,
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Item 6: `unknown_key` from --jwks-url names the token's kid, the URL
/// and the kids the JWKS holds (at most 10), and says what to check; it
/// does not tell to refresh a JWKS just fetched.
#[test]
fn an_unknown_kid_from_a_jwks_url_names_the_kids_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    ok(
        dir,
        &["keys", "generate", "--alg", "ES256", "--out", "a.pem"],
    );
    ok(
        dir,
        &["keys", "generate", "--alg", "ES256", "--out", "b.pem"],
    );
    let a = public_jwk(dir, &["a.pem"]);
    let a_kid = a["kid"].as_str().unwrap().to_owned();
    let url = loopback::serve(json!({"keys": [a]}).to_string(), Some("application/json"));
    let now = at(T0);
    let token = ok(
        dir,
        &[
            "sign", "--alg", "ES256", "--key", "b.pem", "--kid", "b-key", "--exp", "5m", "--now",
            &now,
        ],
    );
    let out = jwtkit(
        dir,
        &["verify", "--jwks-url", &url, "--now", &now, token.trim()],
    );
    assert_fails(
        &out,
        1,
        &[
            "error [unknown_key]: unknown key: the token names kid \"b-key\", but the JWKS at ",
            &format!("{url} (fetched just now) holds one key, kid \"{a_kid}\""),
            "the token was not signed by this issuer's current keys: check that --jwks-url is \
             the JWKS of the issuer that signed it",
        ],
    );
    assert!(!out.stderr.contains("refresh the JWKS"), "{}", out.stderr);

    // Twelve keys: ten kids shown, and how many more.
    let many: Vec<Value> = (0..12)
        .map(|i| {
            let mut jwk = a.clone();
            jwk["kid"] = json!(format!("kid-{i:02}"));
            jwk
        })
        .collect();
    let url = loopback::serve(json!({"keys": many}).to_string(), Some("application/json"));
    let out = jwtkit(
        dir,
        &[
            "verify",
            "--json",
            "--jwks-url",
            &url,
            "--now",
            &now,
            token.trim(),
        ],
    );
    assert_eq!(out.code, 1);
    let doc = out.json();
    assert_eq!(doc["error"], "unknown_key");
    let message = doc["message"].as_str().unwrap();
    assert!(message.contains("holds 12 keys, kids \"kid-"), "{message}");
    assert!(message.contains("… (2 more)"), "{message}");
    assert_eq!(message.matches("\"kid-").count(), 10, "{message}");
}

/// Item 7: `serve` takes `--alg`, `--iss` and `--aud` (its config file
/// `alg`, `iss`, `aud`); sign and verify take `--algorithm`, `--issuer`
/// and `--audience`.
#[test]
fn serve_sign_and_verify_take_each_others_flag_names() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Parsed, then refused for the access TTL: the aliases were accepted.
    let out = jwtkit(
        dir,
        &[
            "serve",
            "--alg",
            "ES256",
            "--iss",
            "https://issuer.example",
            "--aud",
            "my-api",
            "--access-ttl",
            "0s",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert_fails(&out, 2, &["access-ttl"]);
    assert!(
        !out.stderr.contains("unexpected argument"),
        "{}",
        out.stderr
    );
    let out = jwtkit(dir, &["serve", "--alg", "NOPE", "--listen", "127.0.0.1:0"]);
    assert_fails(&out, 2, &["--alg NOPE"]);

    write(
        dir,
        "serve.toml",
        "alg = \"ES256\"\niss = \"https://issuer.example\"\naud = \"my-api\"\naccess-ttl = \"0s\"\n",
        0o644,
    );
    let out = jwtkit(dir, &["serve", "--config", "serve.toml"]);
    assert_fails(&out, 2, &["access-ttl"]);
    assert!(!out.stderr.contains("unknown field"), "{}", out.stderr);

    let now = at(T0);
    let signed = run(
        dir,
        &[
            "sign",
            "--algorithm",
            "HS256",
            "--secret-env",
            "S",
            "--issuer",
            "me",
            "--audience",
            "api",
            "--exp",
            "5m",
            "--now",
            &now,
        ],
    );
    assert_eq!(signed.code, 0, "{}", signed.stderr);
    let token = signed.stdout.trim();
    let (header, claims) = decode(token);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(
        (&claims["iss"], &claims["aud"]),
        (&json!("me"), &json!("api"))
    );
    let out = run(
        dir,
        &[
            "verify",
            "--algorithm",
            "HS256",
            "--secret-env",
            "S",
            "--issuer",
            "me",
            "--audience",
            "api",
            "--now",
            &now,
            token,
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Item 8: a rotation on a store whose pending key was created "in the
/// future" (an earlier `--now` ahead of the clock) says so instead of
/// printing a negative duration.
#[test]
fn a_pending_key_from_the_future_is_explained_not_given_a_negative_age() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let real_now = jwt_core::time::now_unix();
    let day = 86_400;
    let init_at = at(real_now - day);
    ok(
        dir,
        &[
            "store",
            "init",
            "file:keys",
            "--alg",
            "ES256",
            "--now",
            &init_at,
        ],
    );
    // A maintenance run 31 days ahead rotates and creates the next pending key then.
    let ahead = at(real_now + 31 * day);
    ok(
        dir,
        &["store", "rotate", "--if-due", "file:keys", "--now", &ahead],
    );
    // Back on the system clock: that pending key is now promoted.
    let out = jwtkit(dir, &["store", "rotate", "file:keys"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // 31 days ahead, less the second or two this test took.
    let said = |age: &str| {
        out.stdout.contains(&format!(
            "had been published for an unknown time: the pending key's creation time is {age} \
             after now, the store's clock was ahead"
        ))
    };
    assert!(said("31d") || said("30d 23h"), "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "the store's clock was ahead when it created the key (e.g. an \
                             earlier `--now` in the future)"
        ),
        "{}",
        out.stderr
    );
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains("for -"), "{text}");
        assert!(!text.contains("-30d") && !text.contains("-31d"), "{text}");
    }
}

/// Item 9: a JWK that declares `alg` signs with it by default (a given
/// --alg must match); a PEM key's `--alg is required` lists what fits; `keys
/// jwks --alg` binds the entries; a JWKS entry without `alg` is answered
/// with the candidate algorithms.
#[test]
fn a_keys_own_alg_is_the_default_and_missing_algs_list_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let oct = json!({
        "kty": "oct",
        "alg": "HS256",
        "kid": "k1",
        "k": jwt_core::b64::encode(SECRET.as_bytes()),
    });
    write(dir, "oct.jwk", &oct.to_string(), 0o600);
    let now = at(T0);
    let token = ok(
        dir,
        &["sign", "--key", "oct.jwk", "--exp", "5m", "--now", &now],
    );
    let (header, _) = decode(token.trim());
    assert_eq!(
        (&header["alg"], &header["kid"]),
        (&json!("HS256"), &json!("k1"))
    );
    let out = jwtkit(
        dir,
        &["sign", "--key", "oct.jwk", "--alg", "HS384", "--exp", "5m"],
    );
    assert_fails(
        &out,
        2,
        &["error [usage]: --alg HS384 does not match the key, which declares `alg` HS256"],
    );

    ok(
        dir,
        &["keys", "generate", "--alg", "RS256", "--out", "rsa.pem"],
    );
    let out = jwtkit(dir, &["sign", "--key", "rsa.pem", "--exp", "5m"]);
    assert_fails(
        &out,
        2,
        &[
            "error [usage]: --alg is required: an RSA private key declares no algorithm",
            "for this key: --alg RS256 (or RS384, RS512, PS256, PS384, PS512)",
        ],
    );

    // `keys jwks --alg` binds: verify needs no --alg, and refuses another one.
    let bound = ok(dir, &["keys", "jwks", "--alg", "PS256", "rsa.pem"]);
    let doc: Value = serde_json::from_str(&bound).unwrap();
    assert_eq!(doc["keys"][0]["alg"], "PS256");
    write(dir, "bound.jwks", &bound, 0o644);
    let sign_rsa = |alg: &str| {
        let out = jwtkit(
            dir,
            &[
                "sign", "--key", "rsa.pem", "--alg", alg, "--exp", "5m", "--now", &now,
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout.trim().to_owned()
    };
    let ps = sign_rsa("PS256");
    let rs = sign_rsa("RS256");
    let verify = |set: &str, token: &str| {
        jwtkit(
            dir,
            &["verify", "--json", "--key", set, "--now", &now, token],
        )
    };
    assert_eq!(verify("bound.jwks", &ps).code, 0);
    let out = verify("bound.jwks", &rs);
    assert_eq!(
        (out.code, out.json()["error"].clone()),
        (1, json!("invalid_algorithm"))
    );
    let out = jwtkit(dir, &["keys", "jwks", "--alg", "ES256", "rsa.pem"]);
    assert_fails(
        &out,
        2,
        &[
            "error [invalid_key]: key file rsa.pem: key/algorithm mismatch: an RSA key cannot be \
           used with ES256, which needs an EC P-256 key; for this key use --alg RS256",
        ],
    );
    let mut ps_jwk = doc["keys"][0].clone();
    ps_jwk["kid"] = json!("ps");
    write(dir, "ps.jwk", &ps_jwk.to_string(), 0o644);
    let out = jwtkit(dir, &["keys", "jwks", "--alg", "RS256", "ps.jwk"]);
    assert_fails(&out, 2, &["--alg RS256: the key declares `alg` PS256"]);

    // A JWKS entry without `alg`: --alg is required, and the message lists
    // what fits the entry (a file) or the token's claimed type (a URL).
    let bare = public_jwk(dir, &["rsa.pem"]);
    assert_eq!(bare.get("alg"), None);
    let es = {
        ok(
            dir,
            &["keys", "generate", "--alg", "ES256", "--out", "es.pem"],
        );
        public_jwk(dir, &["es.pem"])
    };
    write(
        dir,
        "mixed.jwks",
        &json!({"keys": [es, bare]}).to_string(),
        0o644,
    );
    let out = verify("mixed.jwks", &rs);
    assert_eq!(out.code, 2);
    let message = out.json()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("--alg is required"), "{message}");
    assert!(
        message.contains("; for this key (an RSA key): RS256, RS384, RS512, PS256, PS384, PS512"),
        "{message}"
    );
    let url = loopback::serve(
        json!({"keys": [bare]}).to_string(),
        Some("application/json"),
    );
    let out = jwtkit(
        dir,
        &["verify", "--json", "--jwks-url", &url, "--now", &now, &rs],
    );
    assert_eq!(out.code, 2);
    let message = out.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(
            "the token claims RS256, and keys of that type verify RS256, RS384, RS512, PS256, \
             PS384, PS512: pass the one the issuer documents"
        ),
        "{message}"
    );
}

/// Item 10: every `--now` takes RFC 3339 as --exp does, and says what it
/// takes when it gets something else.
#[test]
fn now_takes_rfc3339_and_says_what_it_takes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let signed = run(
        dir,
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-env",
            "S",
            "--exp",
            "15m",
            "--now",
            "2027-01-15T08:00:00Z",
        ],
    );
    assert_eq!(signed.code, 0, "{}", signed.stderr);
    let token = signed.stdout.trim();
    let (_, claims) = decode(token);
    assert_eq!(
        (&claims["iat"], &claims["exp"]),
        (&json!(T0), &json!(T0 + 900))
    );
    let verify = |now: &str| {
        run(
            dir,
            &[
                "verify",
                "--alg",
                "HS256",
                "--secret-env",
                "S",
                "--now",
                now,
                token,
            ],
        )
    };
    assert_eq!(verify("2027-01-15T09:05:00+01:00").code, 0);
    assert_fails(&verify("2027-01-15T08:15:00Z"), 1, &["error [expired]"]);
    ok(
        dir,
        &[
            "store",
            "init",
            "file:keys",
            "--alg",
            "ES256",
            "--now",
            "2027-01-15T08:00:00Z",
        ],
    );
    let audit = jwtkit(
        dir,
        &[
            "store",
            "audit",
            "--json",
            "file:keys",
            "--now",
            "2027-01-16T08:00:00Z",
        ],
    );
    assert_eq!(audit.code, 0, "{}", audit.stdout);
    assert_eq!(audit.json()["now"], json!(T0 + 86_400));

    for (bad, why) in [("soon", "invalid time \"soon\""), ("15m", "is an offset")] {
        let out = verify(bad);
        assert_fails(
            &out,
            2,
            &[
                why,
                "use a Unix time in seconds (e.g. 1716163200) or an RFC 3339 date-time",
            ],
        );
        assert!(!out.stderr.contains("invalid digit"), "{}", out.stderr);
    }
}

/// Item 11: a flag that sets a registered claim replaces the payload's
/// member before its type is judged; the rest of the payload is judged as
/// strictly as before.
#[test]
fn flags_replace_payload_claims_of_the_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let payload =
        r#"{"exp":"soon","iat":"x","nbf":"n","sub":1,"iss":false,"aud":[],"jti":3,"role":"admin"}"#;
    let token = hs_token(
        dir,
        &[
            "--claims", payload, "--exp", "15m", "--no-iat", "--nbf", "0s", "--sub", "alice",
            "--iss", "me", "--aud", "api", "--jti", "j1",
        ],
    );
    let (_, claims) = decode(&token);
    assert_eq!(
        Value::Object(claims),
        json!({"exp": T0 + 900, "nbf": T0, "sub": "alice", "iss": "me", "aud": "api",
               "jti": "j1", "role": "admin"})
    );
    // From a file too.
    write(
        dir,
        "payload.json",
        r#"{"exp":"soon","role":"admin"}"#,
        0o644,
    );
    let token = hs_token(dir, &["--claims", "@payload.json", "--exp", "15m"]);
    assert_eq!(decode(&token).1["exp"], T0 + 900);

    let now = at(T0);
    let sign = |claims: &str| {
        run(
            dir,
            &[
                "sign",
                "--alg",
                "HS256",
                "--secret-env",
                "S",
                "--now",
                &now,
                "--claims",
                claims,
                "--exp",
                "15m",
            ],
        )
    };
    // Without the flag, still refused.
    let out = run(
        dir,
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-env",
            "S",
            "--claims",
            r#"{"exp":"soon"}"#,
        ],
    );
    assert_fails(&out, 2, &["the claim `exp` must be a NumericDate"]);
    // What no flag replaces is judged.
    assert_fails(
        &sign(r#"{"exp":"soon","iss":5}"#),
        2,
        &["the claim `iss` must be a string"],
    );
    assert_fails(
        &sign(r#"{"exp":"soon","exp":1}"#),
        2,
        &["duplicate member name \"exp\""],
    );
    assert_fails(
        &sign(r#"{"exp":"soon","$serde_json::private::RawValue":"{}"}"#),
        2,
        &["error [usage]: --claims"],
    );
    assert_fails(&sign(r#"["exp"]"#), 2, &["must be a JSON object"]);
}

/// Item 12 and the leeway note: `an RSA`/`an EC` key; no "holds a secret"
/// warning for a public key file, whose signing error names the private
/// key; the environment variable message; expired and immature rejections
/// suggest `--leeway 30s` when no leeway was given.
#[test]
fn messages_read_right() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    ok(
        dir,
        &["keys", "generate", "--alg", "ES256", "--out", "ec.pem"],
    );
    let out = jwtkit(
        dir,
        &["sign", "--alg", "ES384", "--key", "ec.pem", "--exp", "1m"],
    );
    assert_fails(
        &out,
        2,
        &[
            "an EC P-256 private key cannot be used with ES384, which needs an EC P-384 private \
           key; for this key use --alg ES256",
        ],
    );
    assert!(!out.stderr.contains("a EC"), "{}", out.stderr);

    // A public key file, readable by all as public keys are.
    ok(
        dir,
        &["keys", "generate", "--alg", "EdDSA", "--out", "ed.pem"],
    );
    let jwk = public_jwk(dir, &["ed.pem"]);
    let x = jwt_core::b64::decode(jwk["x"].as_str().unwrap().as_bytes(), "x").unwrap();
    // SubjectPublicKeyInfo of an Ed25519 key: the fixed prefix, then the key.
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(&x);
    let public = pem::encode(&pem::Pem::new("PUBLIC KEY", der));
    write(dir, "ed.pub", &public, 0o644);
    let out = jwtkit(
        dir,
        &["sign", "--alg", "EdDSA", "--key", "ed.pub", "--exp", "1m"],
    );
    assert_fails(
        &out,
        2,
        &[
            "error [invalid_key]: key file ed.pub: invalid key: this PEM holds a public key, \
             which can only verify; signing needs the private key",
            "pass the private key file instead",
        ],
    );
    assert!(!out.stderr.contains("holds a secret"), "{}", out.stderr);
    // A private key readable by others still gets the warning.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("ec.pem"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let out = jwtkit(
            dir,
            &["sign", "--alg", "ES256", "--key", "ec.pem", "--exp", "1m"],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stderr
                .contains("warning: other users can read key file ec.pem, which holds a secret"),
            "{}",
            out.stderr
        );
    }

    let out = jwtkit(
        dir,
        &[
            "sign",
            "--alg",
            "HS256",
            "--secret-env",
            "JWTKIT_TEST_UNSET_VAR",
            "--exp",
            "1m",
        ],
    );
    assert_fails(
        &out,
        2,
        &[
            "error [config]: environment variable JWTKIT_TEST_UNSET_VAR is not set or empty; \
           export it",
        ],
    );

    let token = hs_token(dir, &["--exp", "15m"]);
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "--alg", "HS256", "--secret-env", "S"];
        args.extend_from_slice(extra);
        args.push(&token);
        run(dir, &args)
    };
    let expired = at(T0 + 900);
    let early = at(T0 - 10);
    assert_fails(
        &verify(&["--now", &expired]),
        1,
        &["error [expired]", "--leeway 30s"],
    );
    assert_fails(
        &verify(&["--now", &early]),
        1,
        &["error [immature]", "--leeway 30s"],
    );
    let later = at(T0 + 960);
    let out = verify(&["--now", &later, "--leeway", "10s"]);
    assert_fails(&out, 1, &["error [expired]"]);
    assert!(!out.stderr.contains("--leeway 30s"), "{}", out.stderr);
}
