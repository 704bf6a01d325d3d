//! `jwtkit serve --metrics-listen`, the audit events of the HTTP edge and
//! the limit on failed admin authentications (issue 15 items 6, 7, 8), over
//! real HTTP against the real binary.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

const ADMIN: &str = "metrics-test-admin-token-0123456789";
const INTROSPECTION: &str = "metrics-test-introspection-token-42";
/// A wrong admin token: it must never appear in a log.
const WRONG: &str = "not-the-admin-token-guess-31337";

/// A running `jwtkit serve` (JSON logs in a file); killed on drop.
struct Server {
    child: Child,
    base: String,
    /// `http://ADDR/metrics`, when started with `--metrics-listen`.
    metrics: Option<String>,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Server {
        let log = dir.join(format!("serve-{}.log", std::process::id()));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .current_dir(dir)
            .env("JWTKIT_ADMIN_TOKEN", ADMIN)
            .env("JWTKIT_INTROSPECTION_TOKEN", INTROSPECTION)
            .env_remove("JWTKIT_REFRESH_KEY")
            .env("JWTKIT_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn jwtkit serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut metrics = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("jwtkit serve: metrics on ") {
                    metrics = Some(url.to_owned());
                }
                if let Some(addr) = line.strip_prefix("jwtkit serve: listening on ") {
                    let _ = tx.send((addr.to_owned(), metrics.take()));
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((base, metrics)) => Server {
                child,
                base,
                metrics,
                log,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "jwtkit serve did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Scrapes `/metrics`: every sample by name and sorted labels.
    async fn scrape(&self, http: &reqwest::Client) -> Metrics {
        let url = self
            .metrics
            .as_deref()
            .expect("started with --metrics-listen");
        let response = http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4"),
            "{:?}",
            response.headers()
        );
        Metrics::parse(&response.text().await.unwrap())
    }

    /// The JSON log records written so far.
    fn log_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scrape: sample values by metric name and `label=value` pairs (sorted).
#[derive(Debug)]
struct Metrics {
    text: String,
    samples: BTreeMap<(String, Vec<(String, String)>), f64>,
}

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("a number: {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').expect("closing brace");
                    let mut labels: Vec<(String, String)> = inner
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                            (k.to_owned(), v.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    labels.sort();
                    (name.to_owned(), labels)
                }
                None => (series.to_owned(), Vec::new()),
            };
            samples.insert((name, labels), value);
        }
        Metrics {
            text: text.to_owned(),
            samples,
        }
    }

    /// The sample `name{labels}`; panics naming it when absent.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut wanted: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        wanted.sort();
        *self
            .samples
            .get(&(name.to_owned(), wanted))
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{}", self.text))
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn issue(http: &reqwest::Client, server: &Server, sub: &str) -> Value {
    let response = http
        .post(server.url("/token"))
        .bearer_auth(ADMIN)
        .json(&json!({"sub": sub, "claims": {"scope": "read"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn refresh(http: &reqwest::Client, server: &Server, token: &str) -> (StatusCode, Value) {
    let response = http
        .post(server.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn revoke(http: &reqwest::Client, server: &Server, token: &str) {
    let response = http
        .post(server.url("/revoke"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn introspect(
    http: &reqwest::Client,
    server: &Server,
    credential: Option<&str>,
    token: &str,
) -> reqwest::Response {
    let mut request = http
        .post(server.url("/introspect"))
        .form(&[("token", token)]);
    if let Some(credential) = credential {
        request = request.bearer_auth(credential);
    }
    request.send().await.unwrap()
}

async fn userinfo(http: &reqwest::Client, server: &Server, token: Option<&str>) -> StatusCode {
    let mut request = http.get(server.url("/userinfo"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status()
}

async fn issue_as(
    http: &reqwest::Client,
    server: &Server,
    credential: Option<&str>,
) -> reqwest::Response {
    let mut request = http
        .post(server.url("/token"))
        .json(&json!({"sub": "mallory"}));
    if let Some(credential) = credential {
        request = request.bearer_auth(credential);
    }
    request.send().await.unwrap()
}

/// The `sid` claim (the session id) of an access token.
fn sid(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["sid"].as_str().expect("sid").to_owned()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {v}"))
}

/// A flow moves every counter by exactly what it did; histograms count
/// requests by route pattern (never the raw path) and status class; the
/// key gauges describe a fresh store; `/metrics` is not on the public port.
#[tokio::test]
async fn counters_histograms_and_gauges_follow_a_flow() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let http = client();
    let metrics_url = server.metrics.clone().expect("the metrics line on stdout");
    assert_ne!(
        metrics_url,
        server.url("/metrics"),
        "metrics have a listener of their own"
    );

    // Nothing yet: every documented counter is there, at 0.
    let before = server.scrape(&http).await;
    assert_eq!(before.get("jwtkit_tokens_issued_total", &[]), 0.0);
    for reason in ["reused", "revoked", "expired", "unknown", "invalid"] {
        assert_eq!(
            before.get("jwtkit_refresh_refused_total", &[("reason", reason)]),
            0.0
        );
    }

    // Issue two sessions; refresh one, then replay its old token (reuse).
    let alice = issue(&http, &server, "alice").await;
    let bob = issue(&http, &server, "bob").await;
    let (status, alice2) = refresh(&http, &server, str_of(&alice, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = refresh(&http, &server, str_of(&alice, "refresh_token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // The successor of a reused token: its session is revoked.
    let (status, _) = refresh(&http, &server, str_of(&alice2, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Garbage: invalid.
    let (status, _) = refresh(&http, &server, "not.a.token").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Revoke bob's session twice, and a garbage token.
    revoke(&http, &server, str_of(&bob, "refresh_token")).await;
    revoke(&http, &server, str_of(&bob, "refresh_token")).await;
    revoke(&http, &server, "garbage").await;
    let (status, _) = refresh(&http, &server, str_of(&bob, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Introspection: a live session's access token, a revoked one's, garbage.
    let carol = issue(&http, &server, "carol").await;
    let answer: Value = introspect(
        &http,
        &server,
        Some(INTROSPECTION),
        str_of(&carol, "access_token"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer["active"], true);
    let answer: Value = introspect(&http, &server, Some(ADMIN), str_of(&bob, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"active": false}));
    let answer: Value = introspect(&http, &server, Some(INTROSPECTION), "garbage")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"active": false}));
    // Without and with a wrong credential: authentication failures.
    assert_eq!(
        introspect(&http, &server, None, "x").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        introspect(&http, &server, Some(WRONG), "x").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        issue_as(&http, &server, Some(WRONG)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        issue_as(&http, &server, None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // /userinfo: one valid token, then refusals by kind.
    assert_eq!(
        userinfo(&http, &server, Some(str_of(&carol, "access_token"))).await,
        StatusCode::OK
    );
    assert_eq!(
        userinfo(&http, &server, None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        userinfo(&http, &server, Some("garbage")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        userinfo(&http, &server, Some("garbage2")).await,
        StatusCode::UNAUTHORIZED
    );
    // A path no route matches, holding something token-like.
    let secret_path = "/userinfo/eyJzZWNyZXQtcGF0aA";
    let response = http.get(server.url(secret_path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Metrics are not served on the public port.
    let response = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let after = server.scrape(&http).await;
    let get = |name: &str, labels: &[(&str, &str)]| after.get(name, labels);
    assert_eq!(get("jwtkit_tokens_issued_total", &[]), 3.0);
    assert_eq!(get("jwtkit_tokens_refreshed_total", &[]), 1.0);
    let refused = |reason| get("jwtkit_refresh_refused_total", &[("reason", reason)]);
    assert_eq!(refused("reused"), 1.0);
    assert_eq!(refused("revoked"), 2.0, "alice's successor and bob's token");
    assert_eq!(refused("invalid"), 1.0);
    assert_eq!(refused("expired"), 0.0);
    assert_eq!(refused("unknown"), 0.0);
    let revocations = |result| get("jwtkit_revocations_total", &[("result", result)]);
    assert_eq!(revocations("revoked"), 1.0);
    assert_eq!(revocations("not_active"), 1.0);
    assert_eq!(revocations("invalid"), 1.0);
    assert_eq!(revocations("error"), 0.0);
    let introspections = |result| get("jwtkit_introspections_total", &[("result", result)]);
    assert_eq!(introspections("active"), 1.0);
    assert_eq!(introspections("inactive"), 2.0);
    assert_eq!(introspections("error"), 0.0);
    let auth = |route, reason| {
        get(
            "jwtkit_auth_failures_total",
            &[("route", route), ("reason", reason)],
        )
    };
    assert_eq!(auth("/introspect", "missing"), 1.0);
    assert_eq!(auth("/introspect", "wrong"), 1.0);
    assert_eq!(auth("/token", "missing"), 1.0);
    assert_eq!(auth("/token", "wrong"), 1.0);
    assert_eq!(
        get("jwtkit_auth_rate_limited_total", &[("route", "/token")]),
        0.0
    );
    let rejected = |kind| get("jwtkit_access_token_rejections_total", &[("kind", kind)]);
    assert_eq!(rejected("missing"), 1.0);
    assert_eq!(rejected("malformed"), 2.0);

    // Histograms: by route pattern and status class.
    let count = |route, status| {
        get(
            "jwtkit_http_request_duration_seconds_count",
            &[("route", route), ("status", status)],
        )
    };
    // Issued 3 (2xx), refreshed 1 (2xx); 4 refresh refusals and 2 admin refusals (4xx).
    assert_eq!(count("/token", "2xx"), 4.0);
    assert_eq!(count("/token", "4xx"), 6.0);
    assert_eq!(count("/revoke", "2xx"), 3.0);
    assert_eq!(count("/introspect", "2xx"), 3.0);
    assert_eq!(count("/introspect", "4xx"), 2.0);
    assert_eq!(count("/userinfo", "2xx"), 1.0);
    assert_eq!(count("/userinfo", "4xx"), 3.0);
    assert_eq!(
        count("unmatched", "4xx"),
        2.0,
        "the secret path and /metrics"
    );
    assert!(
        !after.text.contains("eyJzZWNyZXQtcGF0aA"),
        "a raw path became a label:\n{}",
        after.text
    );
    let bucket_inf = get(
        "jwtkit_http_request_duration_seconds_bucket",
        &[("route", "/token"), ("status", "2xx"), ("le", "+Inf")],
    );
    assert_eq!(bucket_inf, 4.0);
    let store = |operation| {
        get(
            "jwtkit_store_operation_duration_seconds_count",
            &[("operation", operation)],
        )
    };
    assert_eq!(store("issue"), 3.0);
    assert_eq!(store("refresh"), 5.0);
    assert_eq!(store("revoke"), 3.0);
    assert_eq!(store("introspect"), 3.0);

    // The key gauges of a store created at start (defaults: rotate after 30 days).
    let age = get("jwtkit_signing_key_age_seconds", &[]);
    assert!((0.0..300.0).contains(&age), "age {age}");
    let due_in = get("jwtkit_signing_key_rotation_due_in_seconds", &[]);
    let thirty_days = 30.0 * 86_400.0;
    assert!(
        due_in <= thirty_days && due_in > thirty_days - 300.0,
        "due in {due_in}"
    );
    assert_eq!(get("jwtkit_key_store_audit_findings", &[]), 0.0);
    assert_eq!(get("jwtkit_key_rotations_total", &[]), 0.0);
    let observed = get("jwtkit_key_store_last_observed_timestamp_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - observed).abs() < 300.0,
        "observed at {observed}, now {now}"
    );

    // Anything but /metrics on the metrics listener: 404.
    let other = metrics_url.replace("/metrics", "/token");
    assert_eq!(
        http.get(other).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

/// Without `--metrics-listen` nothing listens for metrics and no line says so.
#[tokio::test]
async fn metrics_are_off_by_default_and_never_share_the_public_port() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.metrics, None);
    let http = client();
    let response = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    drop(server);

    // The same address as --listen is refused at start, naming both options.
    let output = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:18931",
            "--metrics-listen",
            "127.0.0.1:18931",
        ])
        .current_dir(dir.path())
        .env("JWTKIT_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--metrics-listen 127.0.0.1:18931") && stderr.contains("--listen"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing listened");
}

/// A rotation made by the maintenance task shows in the rotation counter
/// and resets the key's age.
#[tokio::test]
async fn a_rotation_is_counted_and_the_key_age_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--rotate-after",
            "2s",
            "--prepublish",
            "1s",
            "--maintenance-interval",
            "1s",
        ],
    );
    let http = client();
    let mut rotations = 0.0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rotations = server
            .scrape(&http)
            .await
            .get("jwtkit_key_rotations_total", &[]);
        if rotations >= 1.0 {
            break;
        }
    }
    assert!(rotations >= 1.0, "no rotation counted within 10 s");
    let scrape = server.scrape(&http).await;
    let age = scrape.get("jwtkit_signing_key_age_seconds", &[]);
    assert!((0.0..=4.0).contains(&age), "age {age}");
    let due_in = scrape.get("jwtkit_signing_key_rotation_due_in_seconds", &[]);
    assert!((-3.0..=2.0).contains(&due_in), "due in {due_in}");
    let rotated = server
        .log_records()
        .into_iter()
        .any(|r| r["fields"]["message"] == "access-token signing key rotated");
    assert!(rotated, "the library logged the rotation too");
}

/// Failed admin authentications are limited per address: the failure past
/// the allowance answers 429 with Retry-After, and so does every admin or
/// introspection request from that address — the right token included —
/// until the window lets one more attempt through. Successful requests and
/// requests without a token never use up the allowance. Every failure is
/// an `admin.auth_failed` audit record, and no record holds a token.
#[tokio::test]
async fn failed_admin_authentications_are_limited_per_address_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--auth-failure-limit",
            "3",
            "--auth-failure-window",
            "3s",
        ],
    );
    let http = client();
    // Successes and missing tokens do not count.
    let mut tokens = Vec::new();
    for i in 0..5 {
        tokens.push(issue(&http, &server, &format!("subject-{i}-confidential")).await);
    }
    for _ in 0..5 {
        assert_eq!(
            issue_as(&http, &server, None).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Three wrong tokens: 401.
    for _ in 0..3 {
        assert_eq!(
            issue_as(&http, &server, Some(WRONG)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // The fourth: 429, Retry-After.
    let response = issue_as(&http, &server, Some(WRONG)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=1).contains(&retry_after),
        "one attempt a second: {retry_after}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    // Locked: the right admin token is refused too, and so is introspection.
    let response = issue_as(&http, &server, Some(ADMIN)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let response = introspect(&http, &server, Some(INTROSPECTION), "x").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Refreshing needs no admin token: never limited.
    let (status, _) = refresh(&http, &server, str_of(&tokens[0], "refresh_token")).await;
    assert_eq!(status, StatusCode::OK);

    // After Retry-After the right token works again.
    tokio::time::sleep(Duration::from_millis(retry_after * 1000 + 200)).await;
    let response = issue_as(&http, &server, Some(ADMIN)).await;
    assert_eq!(response.status(), StatusCode::OK);

    let scrape = server.scrape(&http).await;
    assert_eq!(
        scrape.get(
            "jwtkit_auth_failures_total",
            &[("route", "/token"), ("reason", "wrong")]
        ),
        4.0
    );
    assert_eq!(
        scrape.get(
            "jwtkit_auth_failures_total",
            &[("route", "/token"), ("reason", "missing")]
        ),
        5.0
    );
    assert_eq!(
        scrape.get("jwtkit_auth_rate_limited_total", &[("route", "/token")]),
        2.0,
        "the fourth wrong token and the right one while locked"
    );
    assert_eq!(
        scrape.get(
            "jwtkit_auth_rate_limited_total",
            &[("route", "/introspect")]
        ),
        1.0
    );
    assert_eq!(scrape.get("jwtkit_tokens_issued_total", &[]), 6.0);

    // The audit records: stable names under one target, and no secrets.
    let records = server.log_records();
    let audit: Vec<&Value> = records
        .iter()
        .filter(|r| r["target"] == "jwtkit::audit")
        .collect();
    let events = |name: &str| -> Vec<&Value> {
        audit
            .iter()
            .copied()
            .filter(|r| r["fields"]["event"] == name)
            .collect()
    };
    let issued = events("admin.token_issued");
    assert_eq!(issued.len(), 6, "{audit:#?}");
    for (record, pair) in issued.iter().zip(&tokens) {
        assert_eq!(
            record["fields"]["session"],
            sid(str_of(pair, "access_token"))
        );
        assert_eq!(record["fields"]["client"], "127.0.0.1");
        assert_eq!(record["fields"]["route"], "/token");
        assert_eq!(record["level"], "INFO");
    }
    let failed = events("admin.auth_failed");
    assert_eq!(failed.len(), 9, "5 missing, 4 wrong: {audit:#?}");
    let missing = failed
        .iter()
        .filter(|r| r["fields"]["reason"] == "missing")
        .count();
    assert_eq!(missing, 5);
    let limited: Vec<&&Value> = failed
        .iter()
        .filter(|r| r["fields"]["rate_limited"] == true)
        .collect();
    assert_eq!(limited.len(), 1, "the failure that locked the address");
    assert_eq!(limited[0]["fields"]["reason"], "wrong");
    assert_eq!(limited[0]["fields"]["locked_secs"], 1);
    for record in &failed {
        assert_eq!(record["fields"]["client"], "127.0.0.1");
        assert_eq!(record["fields"]["route"], "/token");
        assert_eq!(record["level"], "WARN");
    }
    // No token or subject in an audit record; no token anywhere in the log.
    for record in &audit {
        let text = record.to_string();
        assert!(!text.contains("confidential"), "a subject: {text}");
    }
    let log = std::fs::read_to_string(&server.log).unwrap();
    for secret in [ADMIN, INTROSPECTION, WRONG] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    for pair in &tokens {
        for token in ["access_token", "refresh_token"] {
            assert!(!log.contains(str_of(pair, token)), "a {token} in the log");
        }
    }
}

/// A failed introspection authentication is audited with its route and
/// counts against the same per-address allowance as the admin token's.
#[tokio::test]
async fn failed_introspection_authentications_share_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--auth-failure-limit", "2", "--auth-failure-window", "60s"],
    );
    let http = client();
    assert_eq!(
        introspect(&http, &server, Some(WRONG), "x").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        issue_as(&http, &server, Some(WRONG)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = introspect(&http, &server, Some(WRONG), "x").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let records = server.log_records();
    let routes: Vec<&str> = records
        .iter()
        .filter(|r| r["target"] == "jwtkit::audit" && r["fields"]["event"] == "admin.auth_failed")
        .map(|r| r["fields"]["route"].as_str().unwrap())
        .collect();
    assert_eq!(routes, ["/introspect", "/token", "/introspect"]);

    // --auth-failure-limit 0 turns the limit off.
    drop(server);
    let server = Server::start(dir.path(), &["--auth-failure-limit", "0"]);
    for _ in 0..15 {
        assert_eq!(
            issue_as(&http, &server, Some(WRONG)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

/// The introspection token on a route that needs the admin token is a
/// known credential used where it has no right, not a guess: `403
/// insufficient_scope`, which says what is needed, and never counted toward
/// the address's lock-out (a resource server that mistakes the endpoint
/// must not lock its own introspection out). A wrong token counts, and the
/// tracked-addresses gauge follows it at once, not at the next tick.
#[tokio::test]
async fn the_introspection_token_on_admin_routes_is_forbidden_and_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--auth-failure-limit",
            "2",
            "--auth-failure-window",
            "60s",
        ],
    );
    let http = client();
    for _ in 0..4 {
        let response = issue_as(&http, &server, Some(INTROSPECTION)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer error=\"insufficient_scope\""),
            "{challenge}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        assert!(
            str_of(&body, "error_description").contains("may only introspect"),
            "{body}"
        );
    }
    for path in ["/sessions?sub=someone", "/sessions/AAAAAAAAAAAAAAAAAAAAAA"] {
        let method = if path.contains('?') {
            reqwest::Method::GET
        } else {
            reqwest::Method::DELETE
        };
        let response = http
            .request(method, server.url(path))
            .bearer_auth(INTROSPECTION)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Not locked: the admin token issues, the introspection token introspects.
    assert_eq!(
        issue_as(&http, &server, Some(ADMIN)).await.status(),
        StatusCode::OK
    );
    // An administrator's logout everywhere is counted by the sessions it ended.
    issue(&http, &server, "carol").await;
    let response = http
        .post(server.url("/sessions/revoke"))
        .bearer_auth(ADMIN)
        .json(&json!({"sub": "mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Who ended them is an audit record of its own.
    let records = server.log_records();
    let ended: Vec<&Value> = records
        .iter()
        .filter(|r| r["fields"]["event"] == "admin.sessions_revoked")
        .collect();
    assert_eq!(ended.len(), 1, "{records:#?}");
    assert_eq!(ended[0]["target"], "jwtkit::audit");
    assert_eq!(ended[0]["fields"]["client"], "127.0.0.1");
    assert_eq!(ended[0]["fields"]["route"], "/sessions/revoke");
    assert_eq!(ended[0]["fields"]["revoked"], 1);
    assert_eq!(
        introspect(&http, &server, Some(INTROSPECTION), "x")
            .await
            .status(),
        StatusCode::OK
    );
    let scrape = server.scrape(&http).await;
    assert_eq!(
        scrape.get(
            "jwtkit_auth_failures_total",
            &[("route", "/token"), ("reason", "not_allowed")]
        ),
        4.0
    );
    assert_eq!(scrape.get("jwtkit_auth_limit_tracked_addresses", &[]), 0.0);
    assert_eq!(
        scrape.get("jwtkit_admin_sessions_revoked_total", &[("by", "subject")]),
        1.0
    );
    assert_eq!(
        scrape.get(
            "jwtkit_admin_sessions_revoked_total",
            &[("by", "session_id")]
        ),
        0.0
    );
    // One wrong token: counted, and the gauge shows the address at once.
    assert_eq!(
        issue_as(&http, &server, Some(WRONG)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let scrape = server.scrape(&http).await;
    assert_eq!(scrape.get("jwtkit_auth_limit_tracked_addresses", &[]), 1.0);
}

/// Behind a load balancer (`--trusted-proxy`), the failed-authentication
/// limit and the audit records follow the client `X-Forwarded-For` names,
/// not the proxy's address: one client's wrong tokens lock that client out,
/// not every resource server behind the same proxy (the operator's
/// review). Without `--trusted-proxy` the header is ignored.
#[tokio::test]
async fn behind_a_trusted_proxy_the_limit_follows_the_forwarded_client() {
    let wrong_from = |http: &reqwest::Client, server: &Server, client: &str| {
        http.post(server.url("/token"))
            .bearer_auth(WRONG)
            .header("x-forwarded-for", format!("198.51.100.77, {client}"))
            .json(&json!({"sub": "mallory"}))
            .send()
    };
    let http = client();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--trusted-proxy",
            "127.0.0.0/8",
            "--auth-failure-limit",
            "2",
            "--auth-failure-window",
            "60s",
        ],
    );
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            wrong_from(&http, &server, "203.0.113.5")
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // Another client behind the same proxy is not locked out.
    let other = wrong_from(&http, &server, "203.0.113.6").await.unwrap();
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    let clients: Vec<String> = server
        .log_records()
        .iter()
        .filter(|r| r["fields"]["event"] == "admin.auth_failed")
        .map(|r| r["fields"]["client"].as_str().unwrap().to_owned())
        .collect();
    // The third failure is the one that locked .5 (audited with rate_limited).
    assert_eq!(
        clients,
        ["203.0.113.5", "203.0.113.5", "203.0.113.5", "203.0.113.6"]
    );
    drop(server);

    // Without --trusted-proxy anyone could write the header: ignored.
    let server = Server::start(
        dir.path(),
        &["--auth-failure-limit", "2", "--auth-failure-window", "60s"],
    );
    let mut statuses = Vec::new();
    for client in ["203.0.113.5", "203.0.113.6", "203.0.113.7"] {
        statuses.push(wrong_from(&http, &server, client).await.unwrap().status());
    }
    assert_eq!(statuses[2], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}
