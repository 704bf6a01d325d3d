//! DPoP (RFC 9449) through `jwtkit serve`, over real HTTP against the real
//! binary, with the memory refresh store, Redis and the 3-node Redis
//! Cluster: bound issuance and refresh, a refresh with another key refused
//! without ending the session, replayed proofs, a bound token sent as
//! Bearer, the nonce challenge and its retry, the `required` and `off`
//! modes, and proofs made in Python (PyJWT + cryptography) and by
//! `jwtkit dpop proof`.

#[path = "../../../tests/support/mod.rs"]
mod support;

use base64::Engine as _;
use jwtkit::{Algorithm, DpopClient};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::serve::{Serve, ADMIN_TOKEN};

/// A status, the headers and the JSON body (or `null`) of an answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    fn str(&self, key: &str) -> &str {
        self.body[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key} in {}", self.body))
    }

    /// The `WWW-Authenticate` challenges, joined.
    fn challenges(&self) -> String {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The claims of a compact JWS (not verified: the server did that).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// `POST /token` as the admin (a new session for `sub`), with a proof of
/// `key` when given.
async fn issue(server: &Serve, sub: &str, key: Option<&DpopClient>) -> Answer {
    let mut request = http()
        .post(server.url("/token"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"sub": sub}));
    if let Some(key) = key {
        request = request.header(
            "DPoP",
            key.proof("POST", &server.url("/token"), None).unwrap(),
        );
    }
    Answer::of(request.send().await.unwrap()).await
}

/// The refresh grant, with a proof of `key` when given.
async fn refresh(server: &Serve, token: &str, key: Option<&DpopClient>) -> Answer {
    let mut request = http()
        .post(server.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)]);
    if let Some(key) = key {
        request = request.header(
            "DPoP",
            key.proof("POST", &server.url("/token"), None).unwrap(),
        );
    }
    Answer::of(request.send().await.unwrap()).await
}

/// `GET /userinfo` with `Authorization: SCHEME access` and `proof`.
async fn userinfo(server: &Serve, scheme: &str, access: &str, proof: Option<&str>) -> Answer {
    let mut request = http()
        .get(server.url("/userinfo"))
        .header("authorization", format!("{scheme} {access}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    Answer::of(request.send().await.unwrap()).await
}

/// Whether introspection (as the admin) finds `token` active.
async fn active(server: &Serve, token: &str) -> bool {
    let answer = Answer::of(
        http()
            .post(server.url("/introspect"))
            .bearer_auth(ADMIN_TOKEN)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["active"] == true
}

fn key() -> DpopClient {
    DpopClient::generate(Algorithm::ES256).unwrap()
}

/// The DPoP flow of the issue, on whatever refresh store `server` uses.
async fn dpop_flow(server: &Serve) {
    let alice = key();
    // Bound issuance: token_type DPoP, cnf.jkt the proof key's thumbprint.
    let pair = issue(server, "dora", Some(&alice)).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.body);
    assert_eq!(pair.body["token_type"], "DPoP");
    let access = pair.str("access_token").to_owned();
    assert_eq!(claims_of(&access)["cnf"], json!({"jkt": alice.jkt()}));

    // The resource side: a fresh proof with ath works, once.
    let proof = alice
        .proof("GET", &server.url("/userinfo"), Some(&access))
        .unwrap();
    let info = userinfo(server, "DPoP", &access, Some(&proof)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert_eq!(info.body["sub"], "dora");
    let replay = userinfo(server, "DPoP", &access, Some(&proof)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert!(
        replay
            .challenges()
            .starts_with("DPoP error=\"invalid_dpop_proof\""),
        "{}",
        replay.challenges()
    );
    assert!(
        replay.challenges().contains("algs=\""),
        "{}",
        replay.challenges()
    );
    // A proof of another key, or for another URI, is refused.
    let mallory = key();
    let stolen = mallory
        .proof("GET", &server.url("/userinfo"), Some(&access))
        .unwrap();
    let answer = userinfo(server, "DPoP", &access, Some(&stolen)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let elsewhere = alice
        .proof("GET", "https://elsewhere.example/userinfo", Some(&access))
        .unwrap();
    let answer = userinfo(server, "DPoP", &access, Some(&elsewhere)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // The bound token as a bearer token is refused.
    let bearer = userinfo(server, "Bearer", &access, None).await;
    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED);
    assert!(
        bearer
            .challenges()
            .starts_with("Bearer error=\"invalid_token\""),
        "{}",
        bearer.challenges()
    );

    // A refresh without a proof, or with another key's, is refused without
    // consuming the token or ending the session.
    let refresh_token = pair.str("refresh_token").to_owned();
    for key in [None, Some(&mallory)] {
        let refused = refresh(server, &refresh_token, key).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(refused.body["error"], "invalid_grant", "{}", refused.body);
    }
    assert!(active(server, &access).await, "the session lives on");
    // The key's holder refreshes: bound again, to the same key.
    let next = refresh(server, &refresh_token, Some(&alice)).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
    assert_eq!(next.body["token_type"], "DPoP");
    assert_eq!(
        claims_of(next.str("access_token"))["cnf"]["jkt"],
        alice.jkt()
    );
    // A proof replayed at the token endpoint is refused.
    let proof = alice.proof("POST", &server.url("/token"), None).unwrap();
    for expected in [StatusCode::OK, StatusCode::BAD_REQUEST] {
        let answer = Answer::of(
            http()
                .post(server.url("/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", next.str("refresh_token")),
                ])
                .header("DPoP", &proof)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, expected, "{}", answer.body);
        if expected == StatusCode::BAD_REQUEST {
            assert_eq!(
                answer.body["error"], "invalid_dpop_proof",
                "{}",
                answer.body
            );
        }
    }

    // Without a proof, bearer tokens as before (mode `allowed`).
    let plain = issue(server, "bert", None).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    assert_eq!(plain.body["token_type"], "Bearer");
    let info = userinfo(server, "Bearer", plain.str("access_token"), None).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);

    // Discovery names the proof algorithms.
    let metadata: Value = http()
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs = metadata["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap_or_else(|| panic!("{metadata}"));
    assert!(algs.contains(&json!("ES256")), "{metadata}");
}

#[tokio::test]
async fn the_dpop_flow_with_the_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), &[]);
    dpop_flow(&server).await;
}

#[tokio::test]
async fn the_dpop_flow_with_redis() {
    let Some(url) = jwtkit_test_support::service("JWTKIT_TEST_REDIS_URL", "Redis") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = support::unique("jwtkit-test:serve-dpop:");
    let server = Serve::start(
        dir.path(),
        &["--refresh", &url, "--refresh-prefix", &format!("{prefix}:")],
    );
    dpop_flow(&server).await;
}

#[tokio::test]
async fn the_dpop_flow_with_the_redis_cluster() {
    let Some(nodes) = jwtkit_test_support::service("JWTKIT_TEST_REDIS_CLUSTER", "a Redis Cluster")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = support::unique("jwtkit-test:serve-dpop-cluster:");
    let server = Serve::start(
        dir.path(),
        &[
            "--refresh",
            &nodes,
            "--refresh-prefix",
            &format!("{prefix}:"),
        ],
    );
    dpop_flow(&server).await;
}

/// Two instances sharing Redis: a proof one of them accepted is refused by
/// the other (the replay cache is the refresh store's backend).
#[tokio::test]
async fn replicas_sharing_redis_refuse_each_others_proofs() {
    let Some(url) = jwtkit_test_support::service("JWTKIT_TEST_REDIS_URL", "Redis") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}:", support::unique("jwtkit-test:serve-dpop-replicas:"));
    // One issuer, one refresh key and one key store for both.
    let args = [
        "--refresh",
        url.as_str(),
        "--refresh-prefix",
        prefix.as_str(),
        "--issuer",
        "http://jwtkit.test",
    ];
    let a = Serve::start(dir.path(), &args);
    let b = Serve::start(dir.path(), &args);
    let alice = key();
    let proof = alice
        .proof("POST", "http://jwtkit.test/token", None)
        .unwrap();
    let mut statuses = Vec::new();
    for server in [&a, &b] {
        let answer = Answer::of(
            http()
                .post(server.url("/token"))
                .bearer_auth(ADMIN_TOKEN)
                .header("DPoP", &proof)
                .json(&json!({"sub": "rita"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        statuses.push((answer.status, answer.body["error"].clone()));
    }
    assert_eq!(
        statuses,
        [
            (StatusCode::OK, Value::Null),
            (StatusCode::BAD_REQUEST, json!("invalid_dpop_proof"))
        ]
    );
}

/// `--dpop-nonce` with the memory store, Redis and the Cluster.
#[tokio::test]
async fn the_nonce_challenge_and_its_retry() {
    let dir = tempfile::tempdir().unwrap();
    nonce_flow(&Serve::start(dir.path(), &["--dpop-nonce"])).await;
    if let Some(url) = jwtkit_test_support::service("JWTKIT_TEST_REDIS_URL", "Redis") {
        let prefix = format!("{}:", support::unique("jwtkit-test:serve-dpop-nonce:"));
        let args = [
            "--dpop-nonce",
            "--refresh",
            &url,
            "--refresh-prefix",
            &prefix,
        ];
        nonce_flow(&Serve::start(dir.path(), &args)).await;
    }
    if let Some(nodes) =
        jwtkit_test_support::service("JWTKIT_TEST_REDIS_CLUSTER", "a Redis Cluster")
    {
        let prefix = format!(
            "{}:",
            support::unique("jwtkit-test:serve-dpop-nonce-cluster:")
        );
        let args = [
            "--dpop-nonce",
            "--refresh",
            &nodes,
            "--refresh-prefix",
            &prefix,
        ];
        nonce_flow(&Serve::start(dir.path(), &args)).await;
    }
}

/// A proof without the server's nonce is answered `use_dpop_nonce` with a
/// `DPoP-Nonce` header, at the token endpoint (400) and at the resource
/// (401); the retry with that nonce goes through.
async fn nonce_flow(server: &Serve) {
    let alice = key();
    let first = issue(server, "nina", Some(&alice)).await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST, "{}", first.body);
    assert_eq!(first.body["error"], "use_dpop_nonce");
    assert!(first.headers.contains_key("dpop-nonce"));
    assert!(alice.observe_headers(&first.headers));
    let pair = issue(server, "nina", Some(&alice)).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.body);
    assert!(pair.headers.contains_key("dpop-nonce"), "kept current");
    let access = pair.str("access_token").to_owned();
    let info = userinfo(
        server,
        "DPoP",
        &access,
        Some(
            &alice
                .proof("GET", &server.url("/userinfo"), Some(&access))
                .unwrap(),
        ),
    )
    .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    // A client that lost the nonce is challenged at the resource too.
    let (client, access_without) = issue_and_forget_nonce(server).await;
    let answer = userinfo(
        server,
        "DPoP",
        &access_without,
        Some(
            &client
                .proof("GET", &server.url("/userinfo"), Some(&access_without))
                .unwrap(),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert!(
        answer
            .challenges()
            .starts_with("DPoP error=\"use_dpop_nonce\""),
        "{}",
        answer.challenges()
    );
    assert!(client.observe_headers(&answer.headers));
    let retry = userinfo(
        server,
        "DPoP",
        &access_without,
        Some(
            &client
                .proof("GET", &server.url("/userinfo"), Some(&access_without))
                .unwrap(),
        ),
    )
    .await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
}

/// A session bound through the nonce dance, returned with a client that
/// holds the key but no nonce (as after a restart of the client).
async fn issue_and_forget_nonce(server: &Serve) -> (DpopClient, String) {
    let pem = jwtkit::core::SigningKey::generate(Algorithm::ES256).unwrap();
    let pem = pem.to_pkcs8_pem().unwrap();
    let with_nonce = DpopClient::new(
        jwtkit::core::SigningKey::from_pem(pem.as_bytes()).unwrap(),
        Algorithm::ES256,
    )
    .unwrap();
    let challenge = issue(server, "olga", Some(&with_nonce)).await;
    assert!(with_nonce.observe_headers(&challenge.headers));
    let pair = issue(server, "olga", Some(&with_nonce)).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.body);
    let without = DpopClient::new(
        jwtkit::core::SigningKey::from_pem(pem.as_bytes()).unwrap(),
        Algorithm::ES256,
    )
    .unwrap();
    (without, pair.str("access_token").to_owned())
}

/// `--dpop required`: no bearer tokens are issued, refreshed or accepted.
#[tokio::test]
async fn mode_required_refuses_everything_without_a_proof() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), &["--dpop", "required"]);
    let refused = issue(&server, "rosa", None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.str("error_description").contains("DPoP"),
        "{}",
        refused.body
    );
    let alice = key();
    let pair = issue(&server, "rosa", Some(&alice)).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.body);
    let access = pair.str("access_token");
    let bearer = userinfo(&server, "Bearer", access, None).await;
    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED);
    let refused = refresh(&server, pair.str("refresh_token"), None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
}

/// `--dpop off`: a `DPoP` header is refused saying so, discovery names no
/// proof algorithms, and `--dpop-nonce` with it is a contradiction at start.
#[tokio::test]
async fn mode_off_refuses_dpop_and_a_nonce_setting_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), &["--dpop", "off"]);
    let refused = issue(&server, "otto", Some(&key())).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["error"], "invalid_request", "{}", refused.body);
    let metadata: Value = http()
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata.get("dpop_signing_alg_values_supported").is_none(),
        "{metadata}"
    );
    drop(server);
    let stderr = support::serve::refused(dir.path(), &["--dpop", "off", "--dpop-nonce"], &[]);
    assert!(stderr.contains("--dpop-nonce needs DPoP"), "{stderr}");
}

/// Interop: a client written with PyJWT and `cryptography` (ES256 and RS256
/// keys) gets bound tokens from `jwtkit serve` and reads /userinfo with its
/// proofs; and a proof made by `jwtkit dpop proof` is accepted too.
#[tokio::test]
async fn proofs_from_pyjwt_and_from_jwtkit_dpop_proof_are_accepted() {
    let Some(python) = support::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), &[]);
    const CLIENT: &str = r#"
import base64, hashlib, json, sys, time, urllib.request, uuid
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

base, admin, alg = sys.argv[1], sys.argv[2], sys.argv[3]
key = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else rsa.generate_private_key(65537, 2048)
jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))

def proof(method, url, access=None):
    claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
    if access:
        digest = hashlib.sha256(access.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return jwt.encode(claims, key, algorithm=alg, headers={"typ": "dpop+jwt", "jwk": jwk})

def call(method, url, headers, body=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())

pair = call("POST", base + "/token",
            {"Authorization": "Bearer " + admin, "Content-Type": "application/json",
             "DPoP": proof("POST", base + "/token")},
            json.dumps({"sub": "py-" + alg}).encode())
access = pair["access_token"]
info = call("GET", base + "/userinfo",
            {"Authorization": "DPoP " + access, "DPoP": proof("GET", base + "/userinfo", access)})
print(json.dumps({"token_type": pair["token_type"], "sub": info["sub"], "cnf": info["cnf"]}))
"#;
    for alg in ["ES256", "RS256"] {
        let out = support::python_run(
            &python,
            dir.path(),
            CLIENT,
            &[&server.base, ADMIN_TOKEN, alg],
            &[],
        );
        assert_eq!(out.code, 0, "{alg}: {}{}", out.stdout, out.stderr);
        let got = out.json();
        assert_eq!(got["token_type"], "DPoP", "{alg}: {got}");
        assert_eq!(got["sub"], format!("py-{alg}"), "{got}");
        assert!(got["cnf"]["jkt"].is_string(), "{got}");
    }

    // `jwtkit dpop proof` with a key from `jwtkit keys generate`, as the
    // docs' curl session does it.
    let keys = support::run(
        {
            let mut cmd = std::process::Command::new(support::jwtkit_bin());
            cmd.args(["keys", "generate", "--alg", "ES256", "--out", "client.pem"])
                .current_dir(dir.path());
            cmd
        },
        None,
    );
    assert_eq!(keys.code, 0, "{}", keys.stderr);
    let cli_proof = |method: &str, url: &str, access: Option<&str>| {
        let mut args = vec![
            "dpop".to_owned(),
            "proof".into(),
            "--key".into(),
            "client.pem".into(),
            "--htm".into(),
            method.into(),
            "--htu".into(),
            url.into(),
        ];
        if let Some(access) = access {
            args.extend(["--ath".into(), access.into()]);
        }
        let mut cmd = std::process::Command::new(support::jwtkit_bin());
        cmd.args(&args).current_dir(dir.path());
        let out = support::run(cmd, None);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout.trim().to_owned()
    };
    let pair = Answer::of(
        http()
            .post(server.url("/token"))
            .bearer_auth(ADMIN_TOKEN)
            .header("DPoP", cli_proof("POST", &server.url("/token"), None))
            .json(&json!({"sub": "cli"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.body);
    let access = pair.str("access_token").to_owned();
    let proof = cli_proof("GET", &server.url("/userinfo"), Some(&access));
    let info = userinfo(&server, "DPoP", &access, Some(&proof)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
}

/// `JWTKIT_DPOP_NONCE_KEY` is read as `JWTKIT_REFRESH_KEY` is: base64 text,
/// with or without the `base64url:` prefix, so two replicas given the same
/// secret in either form accept each other's nonces (the new user's review:
/// they disagreed); text that is not base64 is refused at start.
#[tokio::test]
async fn the_nonce_key_reads_the_same_with_or_without_its_prefix() {
    let secret = "5UZN9o3KXcEaRAGeDkWwLi0l8tDZnnQfgxVx8oQ1xkA";
    let with_prefix = format!("base64url:{secret}");
    let dir = tempfile::tempdir().unwrap();
    let a = Serve::start_with_env(
        dir.path(),
        &["--dpop-nonce"],
        &[("JWTKIT_DPOP_NONCE_KEY", &with_prefix)],
    );
    let b_dir = tempfile::tempdir().unwrap();
    let b = Serve::start_with_env(
        b_dir.path(),
        &["--dpop-nonce"],
        &[("JWTKIT_DPOP_NONCE_KEY", secret)],
    );
    let alice = key();
    let challenge = issue(&a, "nils", Some(&alice)).await;
    assert_eq!(
        challenge.body["error"], "use_dpop_nonce",
        "{}",
        challenge.body
    );
    assert!(alice.observe_headers(&challenge.headers));
    let pair = issue(&b, "nils", Some(&alice)).await;
    assert_eq!(pair.status, StatusCode::OK, "A's nonce at B: {}", pair.body);

    let stderr = support::serve::refused(
        dir.path(),
        &["--dpop-nonce"],
        &[("JWTKIT_DPOP_NONCE_KEY", "correct horse battery staple!")],
    );
    assert!(stderr.contains("JWTKIT_DPOP_NONCE_KEY"), "{stderr}");
}

/// A refresh grant with a made-up refresh token is refused before its
/// proof is remembered: requests anyone can send do not fill the replay
/// cache (the attacker's review: 50 junk grants left 50 Redis keys; on the
/// memory cache, a flood reaches its cap and every DPoP request gets 503).
/// Seen from outside: a proof first sent with junk still works once with a
/// real refresh token, and then no more. Memory and Redis.
#[tokio::test]
async fn made_up_refresh_grants_do_not_fill_the_replay_cache() {
    let dir = tempfile::tempdir().unwrap();
    junk_is_not_remembered(&Serve::start(dir.path(), &[])).await;
    if let Some(url) = jwtkit_test_support::service("JWTKIT_TEST_REDIS_URL", "Redis") {
        let prefix = format!("{}:", support::unique("jwtkit-test:serve-dpop-flood:"));
        let args = ["--refresh", &url, "--refresh-prefix", &prefix];
        junk_is_not_remembered(&Serve::start(dir.path(), &args)).await;
    }
}

async fn junk_is_not_remembered(server: &Serve) {
    let alice = key();
    let pair = issue(server, "tess", Some(&alice)).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.body);
    let proof = alice.proof("POST", &server.url("/token"), None).unwrap();
    let grant = |token: String| {
        let request = http()
            .post(server.url("/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
            .header("DPoP", &proof);
        async move { Answer::of(request.send().await.unwrap()).await }
    };
    for junk in ["x", "e30.e30.e30", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"] {
        let refused = grant(junk.to_owned()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(refused.body["error"], "invalid_grant", "{}", refused.body);
    }
    let real = grant(pair.str("refresh_token").to_owned()).await;
    assert_eq!(
        real.status,
        StatusCode::OK,
        "the junk did not use the proof up: {}",
        real.body
    );
    let again = grant(real.str("refresh_token").to_owned()).await;
    assert_eq!(again.body["error"], "invalid_dpop_proof", "{}", again.body);
}

/// `POST /revoke` with a DPoP-bound token needs a proof of its key: a thief
/// holding the bound access or refresh token cannot log its owner out (the
/// attacker's review); the owner, with a proof, can.
#[tokio::test]
async fn a_bound_token_revokes_its_session_only_with_a_proof_of_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path(), &[]);
    let alice = key();
    let mallory = key();
    let pair = issue(&server, "ursula", Some(&alice)).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.body);
    let revoke = |token: String, key: Option<&DpopClient>| {
        let mut request = http().post(server.url("/revoke")).form(&[("token", token)]);
        if let Some(key) = key {
            request = request.header(
                "DPoP",
                key.proof("POST", &server.url("/revoke"), None).unwrap(),
            );
        }
        async move { Answer::of(request.send().await.unwrap()).await }
    };
    for token in ["access_token", "refresh_token"] {
        for key in [None, Some(&mallory)] {
            let refused = revoke(pair.str(token).to_owned(), key).await;
            assert_eq!(
                refused.status,
                StatusCode::BAD_REQUEST,
                "{token}: {}",
                refused.body
            );
            assert_eq!(
                refused.body["error"], "invalid_dpop_proof",
                "{}",
                refused.body
            );
            assert!(active(&server, pair.str("access_token")).await, "{token}");
        }
    }
    let done = revoke(pair.str("access_token").to_owned(), Some(&alice)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(!active(&server, pair.str("access_token")).await);
    // A made-up token with a proof: 200, nothing stored or revoked.
    let junk = revoke("not-a-token".into(), Some(&mallory)).await;
    assert_eq!(junk.status, StatusCode::OK);
}
