//! `jwtkit store init / sign / rotate / sign` against real servers: OpenBao
//! (the Vault API) and moto (the AWS KMS API), which `scripts/test.sh` starts.
//! Every token verifies with the JWKS published before and after the rotation,
//! through `verify --store`, and in an independent verifier (`jsonwebtoken`).
//!
//! Without the servers, a plain `cargo test` skips these with a message;
//! under `scripts/test.sh` or CI a missing server is a failure.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

struct Server {
    uri: String,
    env: Vec<(&'static str, String)>,
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}-{nanos}", std::process::id())
}

fn vault() -> Option<Server> {
    let addr = jwtkit_test_support::service("JWTKIT_TEST_VAULT_ADDR", "OpenBao (Vault API)")?;
    let token = jwtkit_test_support::service("JWTKIT_TEST_VAULT_TOKEN", "the OpenBao root token")?;
    let hostport = addr.trim_start_matches("http://").trim_end_matches('/');
    Some(Server {
        uri: format!("vault+http://{hostport}/transit/{}", unique("cli-")),
        env: vec![("VAULT_TOKEN", token)],
    })
}

fn kms() -> Option<Server> {
    let endpoint = jwtkit_test_support::service("JWTKIT_TEST_KMS_ENDPOINT", "moto (KMS API)")?;
    Some(Server {
        uri: format!("kms:alias/{}", unique("jwtkit-cli-")),
        env: vec![
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ],
    })
}

fn jwtkit(server: &Server, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args(args)
        .envs(server.env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .output()
        .expect("run jwtkit");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        stderr,
    )
}

fn ok(server: &Server, dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = jwtkit(server, dir, args);
    assert_eq!(code, 0, "jwtkit {args:?}: {err}");
    out
}

fn kid_of(token: &str) -> String {
    let h = jwt_core::dangerous::insecure_decode_header(token).unwrap();
    h.kid.unwrap()
}

/// Verifies `token` with `jsonwebtoken`, from the JWK with its kid in `jwks`.
fn independent_verify(jwks: &Value, token: &str, alg: jsonwebtoken::Algorithm) -> Value {
    let kid = kid_of(token);
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS {jwks}"));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("jsonwebtoken refused the token: {e}"))
        .claims
}

fn scenario(server: Server, alg: &str, independent: jsonwebtoken::Algorithm) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let uri = server.uri.as_str();
    ok(&server, dir, &["store", "init", uri, "--alg", alg]);
    let t1 = ok(
        &server,
        dir,
        &["sign", "--store", uri, "--sub", "alice", "--exp", "10m"],
    );
    let t1 = t1.trim().to_owned();
    let jwks_before: Value =
        serde_json::from_str(&ok(&server, dir, &["store", "jwks", uri])).unwrap();
    assert_eq!(
        jwks_before["keys"].as_array().unwrap().len(),
        2,
        "active + pending: {jwks_before}"
    );

    ok(&server, dir, &["store", "rotate", uri]);
    let t2 = ok(
        &server,
        dir,
        &["sign", "--store", uri, "--sub", "bob", "--exp", "10m"],
    );
    let t2 = t2.trim().to_owned();
    assert_ne!(
        kid_of(&t1),
        kid_of(&t2),
        "the signing kid changes at the rotation"
    );
    let jwks_after: Value =
        serde_json::from_str(&ok(&server, dir, &["store", "jwks", uri])).unwrap();

    // T2's key was published before it signed: it is in the JWKS from before the rotation.
    assert_eq!(
        independent_verify(&jwks_before, &t2, independent)["sub"],
        "bob"
    );
    for (token, sub) in [(&t1, "alice"), (&t2, "bob")] {
        assert_eq!(
            independent_verify(&jwks_after, token, independent)["sub"],
            sub
        );
        let out = ok(&server, dir, &["verify", "--store", uri, "--json", token]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["claims"]["sub"], sub);
    }
    let listed: Value =
        serde_json::from_str(&ok(&server, dir, &["store", "list", uri, "--json"])).unwrap();
    let states: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "active").count(),
        1,
        "{listed}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == "retiring").count(),
        1,
        "{listed}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == "pending").count(),
        1,
        "{listed}"
    );
}

#[test]
fn vault_store_through_the_cli() {
    let Some(server) = vault() else { return };
    scenario(server, "ES256", jsonwebtoken::Algorithm::ES256);
}

#[test]
fn vault_eddsa_through_the_cli() {
    let Some(server) = vault() else { return };
    scenario(server, "EdDSA", jsonwebtoken::Algorithm::EdDSA);
}

#[test]
fn kms_store_through_the_cli() {
    let Some(server) = kms() else { return };
    scenario(server, "ES256", jsonwebtoken::Algorithm::ES256);
}

#[test]
fn kms_rsa_through_the_cli() {
    // RS256 only: moto signs PSS with a maximal salt, so PS* cannot be checked against it.
    let Some(server) = kms() else { return };
    scenario(server, "RS256", jsonwebtoken::Algorithm::RS256);
}
