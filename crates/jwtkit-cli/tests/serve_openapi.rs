//! `jwtkit serve` against its OpenAPI description, `docs/openapi.yaml`:
//! schemathesis drives the real binary with generated requests (positive,
//! negative and stateful through the description's links) and fails on any
//! server error or answer the description does not allow; and
//! `GET /openapi.json` serves exactly the YAML's content.
//!
//! schemathesis comes from `JWTKIT_TEST_SCHEMATHESIS` (the path of its
//! executable; `scripts/test.sh` sets it to the test venv's). Without it the
//! test prints how to get it and passes, or fails when services are required
//! (`JWTKIT_REQUIRE_SERVICES=1`, CI). A failing run can be repeated with the
//! seed it prints: `JWTKIT_TEST_SCHEMATHESIS_SEED=N`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

const ADMIN: &str = "openapi-test-admin-token-0123456789";
const INTROSPECTION: &str = "openapi-test-introspection-token-42";

/// The operations `docs/openapi.yaml` describes; schemathesis must test
/// every one.
const OPERATIONS: usize = 13;

/// Test cases per operation and phase: enough to reach every answer the
/// description lists, few enough for the whole run to take seconds.
const MAX_EXAMPLES: &str = "25";

/// A schemathesis run longer than this is a hang: the test fails.
const SCHEMATHESIS_DEADLINE: Duration = Duration::from_secs(180);

/// The schemathesis version this description was checked with (the pin in
/// `scripts/services-requirements.txt`).
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// The workspace's `docs/openapi.yaml`.
fn description_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.yaml")
}

/// A running `jwtkit serve` (memory refresh store, file key store in a
/// temporary directory); killed on drop.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let log = dir.join("serve.log");
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(common::binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env("JWTKIT_ADMIN_TOKEN", ADMIN)
            .env("JWTKIT_INTROSPECTION_TOKEN", INTROSPECTION)
            .env_remove("JWTKIT_REFRESH_KEY")
            .env_remove("JWTKIT_REFRESH_URL")
            .env("JWTKIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn jwtkit serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("jwtkit serve: listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => Server { child, base, log },
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

    /// The server's log so far (for failure messages).
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The schemathesis executable, or `None` after printing how to get it
/// (a failure instead when services are required).
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("JWTKIT_TEST_SCHEMATHESIS").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let msg = format!(
        "schemathesis is not available: JWTKIT_TEST_SCHEMATHESIS is not set. Run \
         `scripts/test.sh` (it installs the pinned schemathesis of \
         scripts/services-requirements.txt into .services/venv and sets it), or: \
         `python3 -m venv /tmp/st-venv && /tmp/st-venv/bin/pip install \
         schemathesis=={SCHEMATHESIS_VERSION}` and \
         `export JWTKIT_TEST_SCHEMATHESIS=/tmp/st-venv/bin/schemathesis`"
    );
    if jwtkit_test_support::services_required() {
        panic!("{msg} (JWTKIT_REQUIRE_SERVICES/CI is set, so this is a failure, not a skip)");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// Runs `program ARGS` in `dir` with `env`, bounded by `deadline`: exit
/// success and the combined output.
fn run_bounded(
    program: &Path,
    args: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
    deadline: Duration,
) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); JWTKIT_TEST_SCHEMATHESIS must name the schemathesis \
                 executable (e.g. .services/venv/bin/schemathesis)",
                program.display()
            )
        });
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::from_utf8_lossy(&out.join().unwrap()).into_owned();
    output.push_str(&String::from_utf8_lossy(&err.join().unwrap()));
    match status {
        Some(status) => (status.success(), output),
        None => (
            false,
            format!("{output}\n(killed: still running after {deadline:?})"),
        ),
    }
}

/// The number in `Tested: N` of schemathesis's summary.
fn tested_operations(output: &str) -> Option<usize> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse().ok())
}

/// schemathesis against the real binary: no 5xx; every status code, content
/// type, header and body as the description says; every request the
/// description forbids refused; for every operation.
#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_description() {
    let Some(schemathesis) = schemathesis() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let http = client();

    // A real access token for the operations that take one (`/userinfo`).
    let response = http
        .post(server.url("/token"))
        .bearer_auth(ADMIN)
        .json(&json!({"sub": "schemathesis", "claims": {"scope": "read"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.unwrap();
    let access = pair["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();

    // One credential per security scheme of the description (the tokens
    // reach schemathesis through its environment, never a file). A request
    // the description forbids must be refused with a 4xx: 413 (over the body
    // limit) is one too, which schemathesis does not count by default.
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        "[auth.openapi.adminToken]\nbearer = \"${JWTKIT_ST_ADMIN}\"\n\
         [auth.openapi.introspectionToken]\nbearer = \"${JWTKIT_ST_INTROSPECTION}\"\n\
         [auth.openapi.accessToken]\nbearer = \"${JWTKIT_ST_ACCESS}\"\n\
         [checks.negative_data_rejection]\nexpected-statuses = [\"400\", \"401\", \"403\", \
         \"404\", \"405\", \"406\", \"409\", \"413\", \"415\", \"422\", \"428\", \"429\", \"5xx\"]\n",
    )
    .unwrap();
    let description = description_path();
    let seed = std::env::var("JWTKIT_TEST_SCHEMATHESIS_SEED").ok();
    let mut args = vec![
        "--config-file",
        config.to_str().unwrap(),
        "run",
        description.to_str().unwrap(),
        "--url",
        &server.base,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,\
         response_headers_conformance,response_schema_conformance,negative_data_rejection",
        "--max-examples",
        MAX_EXAMPLES,
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
    ];
    if let Some(seed) = &seed {
        args.extend(["--seed", seed]);
    }
    let (passed, output) = run_bounded(
        &schemathesis,
        &args,
        dir.path(),
        &[
            ("JWTKIT_ST_ADMIN", ADMIN),
            ("JWTKIT_ST_INTROSPECTION", INTROSPECTION),
            ("JWTKIT_ST_ACCESS", &access),
            ("NO_COLOR", "1"),
        ],
        SCHEMATHESIS_DEADLINE,
    );
    let server_log = server.log();
    let log_tail = server_log
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        passed,
        "schemathesis found answers outside docs/openapi.yaml (fix the description when it \
         is wrong, the server when it is):\n{output}\n--- jwtkit serve log (end) ---\n{log_tail}"
    );
    assert_eq!(
        tested_operations(&output),
        Some(OPERATIONS),
        "schemathesis did not test every operation of docs/openapi.yaml:\n{output}"
    );
    assert!(
        !server_log.contains("panicked"),
        "jwtkit serve panicked under schemathesis:\n{server_log}"
    );
    // Each security scheme's credential reached the server: the operations
    // behind them answered 200 at least once (not only 401s).
    for (method, path) in [
        ("POST", "/token"),
        ("POST", "/introspect"),
        ("GET", "/userinfo"),
    ] {
        let answered_200 = server_log.lines().any(|line| {
            line.contains(&format!("method={method} path={path}}}")) && line.contains("status=200")
        });
        assert!(
            answered_200,
            "schemathesis never got a 200 from {method} {path}: its credential did not reach \
             the server (see the [auth.openapi.*] configuration):\n{output}"
        );
    }
}

/// `docs/openapi.yaml` is a valid OpenAPI 3.1 document (openapi-spec-validator)
/// and `GET /openapi.json` is its content as JSON, read here by an independent
/// YAML parser (PyYAML, the one schemathesis reads the file with).
#[tokio::test]
async fn docs_openapi_yaml_is_valid_openapi_3_1_and_served_as_json() {
    let Some(python) = jwtkit_test_support::python_with_pyjwt() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let description = description_path();
    let (ok, yaml_as_json) = run_bounded(
        &python,
        &[
            "-c",
            "import json, sys, yaml\n\
             from openapi_spec_validator import validate\n\
             with open(sys.argv[1], encoding='utf-8') as f:\n    \
                 document = yaml.safe_load(f)\n\
             validate(document)\n\
             json.dump(document, sys.stdout)",
            description.to_str().unwrap(),
        ],
        dir.path(),
        &[],
        Duration::from_secs(60),
    );
    assert!(
        ok,
        "docs/openapi.yaml is not a valid OpenAPI 3.1 document, or the test venv lacks \
         PyYAML or openapi-spec-validator (both pinned in \
         scripts/services-requirements.txt):\n{yaml_as_json}"
    );
    let expected: Value = serde_json::from_str(&yaml_as_json).unwrap();
    assert_eq!(expected["openapi"], "3.1.0");

    let server = Server::start(dir.path());
    let response = client()
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "GET /openapi.json is not served"
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    let mut served: Value = response.json().await.unwrap();
    // `servers` names the running service (its --issuer), not the file's example.
    assert_eq!(served["servers"][0]["url"], server.base.as_str());
    served["servers"] = expected["servers"].clone();
    if let Some(difference) = first_difference(&served, &expected, "") {
        panic!(
            "GET /openapi.json differs from docs/openapi.yaml read by PyYAML: {difference} \
             (a binary built before the last edit of the file, or a value YAML 1.1 and 1.2 \
             read differently: quote it)"
        );
    }
}

/// Where two JSON values first differ (a JSON Pointer and both sides), or
/// `None` when they are equal.
fn first_difference(served: &Value, expected: &Value, at: &str) -> Option<String> {
    match (served, expected) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, b_value) in b {
                let child = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match a.get(key) {
                    None => return Some(format!("{child} is missing from the served document")),
                    Some(a_value) => {
                        if let Some(d) = first_difference(a_value, b_value, &child) {
                            return Some(d);
                        }
                    }
                }
            }
            a.keys()
                .find(|key| !b.contains_key(*key))
                .map(|key| format!("{at}/{key} is served but not in the file"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{at}/{i}"))),
        _ if served == expected => None,
        _ => Some(format!(
            "at {at:?}: served {served}, the file has {expected}"
        )),
    }
}
