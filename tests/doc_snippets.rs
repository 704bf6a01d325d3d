//! The documentation's shell and Python snippets, run as written (see
//! `support/markdown.rs` for how a page runs): the README's command-line
//! quick start and token-service tour (its DPoP part included),
//! `docs/operations.md`'s tour, every snippet of `docs/from-pyjwt.md` and of
//! `docs/dpop.md`. Rust snippets are doctests of the `jwtkit` crate instead.
//!
//! Every ```` ```sh ```` / ```` ```python ```` block of README.md and docs/
//! must be either run here or listed in [`NOT_RUN`] with the reason, so a new
//! snippet cannot silently go untested.
//!
//! Run: `cargo test -p jwtkit-cli --test doc_snippets`.
#![forbid(unsafe_code)]

#[path = "support/mod.rs"]
mod support;

use support::markdown::{blocks, workspace_root, MarkdownSession};

/// The pages and sections whose snippets these tests run: (page, heading;
/// `None` for the whole page).
const RUN: &[(&str, Option<&str>)] = &[
    ("README.md", Some("Quick start with the command line")),
    ("README.md", Some("Try the token service")),
    (
        "docs/operations.md",
        Some("Trying it: the embedded default"),
    ),
    ("docs/from-pyjwt.md", None),
    (
        "docs/identity-providers.md",
        Some("Try it with OpenBao (or Vault)"),
    ),
    ("docs/backends/pkcs11.md", Some("Try it with SoftHSM2")),
    ("docs/dpop.md", None),
];

/// Snippets deliberately not run, by (page, heading), and why.
const NOT_RUN: &[(&str, &str, &str)] = &[
    (
        "README.md",
        "The two commands",
        "the service runs until stopped (its tour is run under \"Try the token service\"), \
         and the other command is this very test run",
    ),
    (
        "docs/backends/vault.md",
        "Policies (least privilege)",
        "a Vault administrator's `vault auth`/`vault write` setup on a real server; \
         crates/jwt-keys/tests/vault_auth.rs makes the same logins against OpenBao",
    ),
    (
        "docs/backends/vault.md",
        "Recipe: one jwtkit logs another into Vault",
        "needs a production Vault at vault.internal and /etc, /run paths; \
         tests/guide/vault_dogfood.rs runs the recipe against OpenBao with two real \
         `jwtkit serve` (the CLI with VAULT_AUTH_METHOD=jwt, then a [vault] table)",
    ),
    (
        "docs/key-rotation.md",
        "Runbook: AWS KMS (`kms:`)",
        "needs an AWS account; crates/jwtkit-cli/tests/store_remote.rs runs the same \
         store commands against moto",
    ),
    (
        "docs/key-rotation.md",
        "Runbook: Vault / OpenBao transit (`vault+http(s)://`)",
        "needs a Vault server at vault.example.com; crates/jwtkit-cli/tests/store_remote.rs \
         runs the same store commands against OpenBao, and crates/jwt-keys/tests/vault_auth.rs \
         (approle_from_the_environment) logs in with the same AppRole variables",
    ),
    (
        "docs/operations.md",
        "With Redis",
        "a production command line (a password-protected Redis at redis.internal, \
         0.0.0.0:8080); tests/guide/refresh.rs runs serve on Redis",
    ),
    (
        "docs/performance.md",
        "`jwtkit speed`",
        "a release-build benchmark; crates/jwtkit-cli/tests/speed.rs runs `jwtkit speed`",
    ),
    (
        "docs/python.md",
        "Installing",
        "builds the Python package: scripts/test.sh runs the second block's `maturin develop` \
         into the test venv and then the package's pytest suite; the first block's `pip install` \
         is the same build in release mode",
    ),
    (
        "docs/python.md",
        "The PyJWT mapping",
        "Python with the jwtkit package installed: run as written by \
         crates/jwtkit-py/tests/test_docs.py (pytest, in scripts/test.sh)",
    ),
    (
        "docs/python.md",
        "Keys and speed",
        "a release-build benchmark (crates/jwtkit-py/bench/bench_vs_pyjwt.py); its figures are \
         on this page and in docs/performance.md",
    ),
    (
        "docs/python.md",
        "Key stores and the token service from Python",
        "Python with the jwtkit package installed: run as written by \
         crates/jwtkit-py/tests/test_docs.py (pytest, in scripts/test.sh)",
    ),
    (
        "docs/refresh-tokens.md",
        "Testing",
        "commands of the test harness itself (cargo test, scripts/test.sh)",
    ),
    (
        "docs/testing.md",
        "Testing jwtkit",
        "commands of the test harness itself (scripts/test.sh, scripts/services.sh, cargo test)",
    ),
];

/// The port `jwtkit serve` listens on in the tours, which write a fixed
/// `localhost:8080`: `serve` takes its address only from `--listen` or a
/// config file, so the test picks a free port and substitutes it.
fn tour_port() -> String {
    jwtkit_test_support::free_port().to_string()
}

/// The token-service tour of README.md and docs/operations.md, on a free
/// port, with the promises of its prose checked: the reused refresh token
/// gets `invalid_grant` and takes the rotated one (pair2.json's) down with
/// it; SIGTERM stops the service with exit 0. README's DPoP part: a token
/// bound to the client's key (`cnf.jkt` its thumbprint) and accepted at
/// /userinfo with a proof.
fn token_service_tour(page: &str, section: &str) {
    let port = tour_port();
    let mut session = MarkdownSession::new(page)
        .sections(&[section])
        .replace(
            "cargo run --release -p jwtkit-cli -- serve",
            &format!("jwtkit serve --listen 127.0.0.1:{port}"),
        )
        .replace("localhost:8080", &format!("localhost:{port}"))
        // The server's issuer (its default, the listen address), which the
        // README's DPoP proofs name; in the other lines only a comment.
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    if page == "README.md" {
        // The jwtkit cargo built for this test run is first on PATH; the
        // page's `cargo run` wrapper would build it again, in the test's
        // empty directory, where there is no workspace.
        session = session.replace_line(
            "jwtkit() { cargo run",
            "# (test) the jwtkit() wrapper left out: the jwtkit built for this test run is first on PATH",
        );
    }
    let Some(run) = session
        // Before `kill %1`: the page says pair2.json's refresh token is revoked too.
        .replace(
            "kill %1",
            &format!(
                "REFRESH2=$(sed -n 's/.*\"refresh_token\":\"\\([^\"]*\\)\".*/\\1/p' pair2.json); \
                 curl -s -X POST localhost:{port}/token -d grant_type=refresh_token \
                 -d refresh_token=$REFRESH2 | grep -q '\"error\":\"invalid_grant\"'; kill %1"
            ),
        )
        .then("wait %1  # the test: serve exits 0 after SIGTERM (a graceful shutdown)")
        .run()
    else {
        return;
    };
    run.assert_stdout_contains(&format!(
        "jwtkit serve: listening on http://127.0.0.1:{port}"
    ));
    run.assert_stdout_contains("\"token_type\":\"Bearer\"");
    run.assert_stdout_contains("\"sub\":\"alice\"");
    run.assert_stdout_contains("\"scope\":\"read\"");
    run.assert_stdout_contains("\"error\":\"invalid_grant\"");
    run.assert_stdout_contains("{\"keys\":[");
    if page == "README.md" {
        run.assert_stdout_contains("{\"active\":false}");
        run.assert_stdout_contains("\"sessions\":[]");
        run.assert_stdout_contains("\"introspection_endpoint\"");
        // DPoP: a bound pair, and its token accepted with a proof.
        run.assert_stdout_contains("\"token_type\":\"DPoP\"");
        let jkt = thumbprint(&run, "client.pem");
        run.assert_stdout_contains(&format!("\"cnf\":{{\"jkt\":\"{jkt}\"}}"));
        run.assert_stdout_contains("\"sub\":\"bob\"");
    }
    let pair: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.work_dir().join("pair.json")).unwrap())
            .unwrap();
    let pair2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.work_dir().join("pair2.json")).unwrap())
            .unwrap();
    assert!(pair2["refresh_token"].is_string(), "{pair2}");
    assert_ne!(
        pair["refresh_token"], pair2["refresh_token"],
        "the refresh rotated the token"
    );
    assert!(
        run.work_dir().join(".jwtkit/keys/keys.json").is_file(),
        "the embedded default created its key store in the current directory"
    );
}

/// The RFC 7638 thumbprint of the key in `file` of the session's directory
/// (what `cnf.jkt` of the tokens bound to it holds), as `jwtkit dpop proof
/// --json` reports it.
fn thumbprint(run: &support::markdown::SessionRun, file: &str) -> String {
    let out = support::run(
        {
            let mut cmd = std::process::Command::new(support::jwtkit_bin());
            cmd.args([
                "dpop",
                "proof",
                "--key",
                file,
                "--htm",
                "GET",
                "--htu",
                "http://127.0.0.1/",
                "--json",
            ])
            .current_dir(run.work_dir());
            cmd
        },
        None,
    )
    .expect_code(0, "jwtkit dpop proof --json");
    out.json()["jkt"]
        .as_str()
        .expect("a jkt in jwtkit dpop proof --json")
        .to_owned()
}

/// The claims of a compact JWS (not verified: the server did that).
fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a compact JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// docs/dpop.md as written, on a free port: every sh and python block, in
/// order, as one session. The page promises: a bound pair (`token_type`
/// DPoP, `cnf.jkt` the client key's thumbprint), /userinfo with a proof,
/// the bound token refused as Bearer, a replayed proof and another key's
/// proof refused, a refresh without a proof refused and one with a proof
/// bound to the same key; then, with `--dpop required --dpop-nonce`, the
/// nonce challenge and its retry, a request without a proof refused, and
/// the PyJWT client through the same challenge.
#[test]
fn dpop_page_runs_as_written() {
    let port = tour_port();
    let page = "docs/dpop.md";
    let Some(run) = MarkdownSession::new(page)
        .replace_line(
            "cargo install --locked --path crates/jwtkit-cli",
            "# (test) cargo install left out: the jwtkit built for this test run is first on PATH",
        )
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .run()
    else {
        return;
    };
    let markdown = std::fs::read_to_string(workspace_root().join(page)).unwrap();
    let expected: Vec<usize> = blocks(&markdown)
        .iter()
        .filter(|b| b.is_shell() || b.is_python())
        .map(|b| b.line)
        .collect();
    assert_eq!(
        run.blocks_run, expected,
        "every sh and python block ran, in order"
    );

    let jkt = thumbprint(&run, "client.pem");
    run.assert_stdout_contains(&format!("client key thumbprint: {jkt}\n"));
    // Bound issuance, and /userinfo with a proof (twice: the first session
    // and the nonce session).
    run.assert_stdout_contains("\"token_type\":\"DPoP\"");
    assert_eq!(
        run.stdout
            .matches(&format!("\"cnf\":{{\"jkt\":\"{jkt}\"}}"))
            .count(),
        2,
        "{}",
        run.stdout
    );
    // The refusals the comments promise.
    run.assert_stdout_contains(
        "{\"error\":\"invalid_token\",\"error_description\":\"the access token was refused: bound_token_as_bearer\"}",
    );
    run.assert_stdout_contains("\n200\n");
    run.assert_stdout_contains(
        "error=\"invalid_dpop_proof\", error_description=\"the DPoP proof was refused: replayed\"",
    );
    run.assert_stdout_contains("error=\"invalid_dpop_proof\", error_description=\"the DPoP proof was refused: key_mismatch\"");
    run.assert_stdout_contains("{\"error\":\"invalid_grant\"");
    run.assert_stdout_contains("{\"error\":\"use_dpop_nonce\"");
    run.assert_stdout_contains(
        "{\"error\":\"invalid_request\",\"error_description\":\"a DPoP proof is required",
    );
    // The PyJWT client went through the nonce challenge, got a bound pair
    // and refreshed it.
    run.assert_stdout_contains("python: DPoP token for alice-py, bound to ");
    run.assert_stdout_contains("; refreshed: DPoP\n");

    // The refresh with a proof rotated the pair and kept the key.
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.work_dir().join(name)).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let (pair, pair2, pair3) = (read("pair.json"), read("pair2.json"), read("pair3.json"));
    assert_ne!(pair["refresh_token"], pair2["refresh_token"], "{pair2}");
    for p in [&pair, &pair2, &pair3] {
        assert_eq!(p["token_type"], "DPoP", "{p}");
        let claims = claims_of(p["access_token"].as_str().unwrap());
        assert_eq!(claims["cnf"]["jkt"], jkt.as_str(), "{claims}");
    }
    let headers = std::fs::read_to_string(run.work_dir().join("headers.txt")).unwrap();
    assert!(
        headers.starts_with("HTTP/1.1 400") && headers.to_lowercase().contains("dpop-nonce: "),
        "the challenge is a 400 with a DPoP-Nonce header: {headers}"
    );
}

#[test]
fn readme_command_line_quick_start() {
    // The page's first command installs jwtkit; here the jwtkit cargo built
    // for this test run is already first on PATH, so that line is replaced
    // by a comment saying so (one line for one, keeping the line numbers).
    let Some(run) = MarkdownSession::new("README.md")
        .sections(&["Quick start with the command line"])
        .replace_line(
            "cargo install --locked --path crates/jwtkit-cli",
            "# (test) cargo install left out: the jwtkit built for this test run is first on PATH",
        )
        .run()
    else {
        return;
    };
    // The comments under the commands promise these outputs.
    run.assert_stdout_contains(
        "{\"valid\":true,\"header\":{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"",
    );
    run.assert_stdout_contains("{\"valid\":false,\"error\":\"invalid_audience\"");
    run.assert_stdout_contains("exit 1");
    assert!(
        run.stderr.contains("verified"),
        "inspect says that it did not verify: {}",
        run.stderr
    );
    let work = run.work_dir();
    let jwks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("jwks.json")).unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(work.join("signing.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the comment says mode 0600");
    // The store block: the token signed before the rotation still verified
    // (a second `"valid":true`), and the store holds one key per state.
    assert_eq!(
        run.stdout.matches("{\"valid\":true").count(),
        2,
        "{}",
        run.stdout
    );
    let list = support::run(
        {
            let mut cmd = std::process::Command::new(support::jwtkit_bin());
            cmd.args(["store", "list", "file:keys", "--json"])
                .current_dir(&work);
            cmd
        },
        None,
    )
    .expect_code(0, "jwtkit store list");
    let states: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["retiring", "active", "pending"], "{}", list.stdout);
}

/// docs/identity-providers.md's OpenBao walk-through, as written, on a dev
/// server of its own (the harness's `bao`, on a free port): discovery,
/// verification, a key rotation, and the refusal of a token whose issuer is
/// not configured.
#[test]
fn identity_providers_openbao_walk_through() {
    let Some(bao) = jwtkit_test_support::binary("JWTKIT_TEST_BAO_BIN", "bao") else {
        return;
    };
    let port = jwtkit_test_support::free_port().to_string();
    let Some(run) = MarkdownSession::new("docs/identity-providers.md")
        .sections(&["Try it with OpenBao (or Vault)"])
        .tool("bao", std::path::Path::new(&bao))
        .replace("127.0.0.1:8200", &format!("127.0.0.1:{port}"))
        .run()
    else {
        return;
    };
    let issuer = format!("http://127.0.0.1:{port}/v1/identity/oidc");
    run.assert_stdout_contains(&format!("issuer:     {issuer}"));
    run.assert_stdout_contains("valid: signature and claims verified");
    // After the rotation, the new token and the old one both verified.
    assert_eq!(
        run.stdout.matches("{\"valid\":true").count(),
        2,
        "{}",
        run.stdout
    );
    run.assert_stdout_contains("exit 1: refused (invalid_issuer)");
    assert!(
        run.stderr.contains("invalid issuer"),
        "the refusal says why: {}",
        run.stderr
    );
}

/// docs/backends/pkcs11.md's SoftHSM2 walk-through, as written, with the
/// module path of this machine: a token made with softhsm2-util, a store
/// initialized in it, a token signed in the HSM and verified.
#[test]
fn pkcs11_softhsm_walkthrough_runs_as_written() {
    let Some(module) =
        jwtkit_test_support::service("JWTKIT_TEST_PKCS11_MODULE", "SoftHSM2 (libsofthsm2.so)")
    else {
        return;
    };
    let Some(run) = MarkdownSession::new("docs/backends/pkcs11.md")
        .sections(&["Try it with SoftHSM2"])
        .replace("/usr/lib/softhsm/libsofthsm2.so", &module)
        .run()
    else {
        return;
    };
    run.assert_stdout_contains("{\"valid\":true,\"header\":{\"alg\":\"ES256\"");
}

#[test]
fn readme_token_service_tour() {
    token_service_tour("README.md", "Try the token service");
}

#[test]
fn operations_token_service_tour() {
    token_service_tour("docs/operations.md", "Trying it: the embedded default");
}

#[test]
fn from_pyjwt_page_runs_as_written() {
    let page = workspace_root().join("docs/from-pyjwt.md");
    assert!(
        page.is_file(),
        "docs/from-pyjwt.md is missing (issue 13 item 13 asks for it)"
    );
    let markdown = std::fs::read_to_string(&page).unwrap();
    let all = blocks(&markdown);
    assert!(
        all.iter().any(|b| b.is_shell()) && all.iter().any(|b| b.is_python()),
        "docs/from-pyjwt.md should show each step in PyJWT (```python) next to jwtkit (```sh)"
    );
    let Some(run) = support::markdown::run_markdown_session("docs/from-pyjwt.md", None) else {
        return;
    };
    let expected: Vec<usize> = all
        .iter()
        .filter(|b| b.is_shell() || b.is_python())
        .map(|b| b.line)
        .collect();
    assert_eq!(
        run.blocks_run, expected,
        "every sh and python block ran, in order"
    );
}

/// Every shell or Python snippet in README.md and docs/ is run by a test
/// above or listed in [`NOT_RUN`] with a reason.
#[test]
fn every_shell_and_python_snippet_is_run_or_says_why_not() {
    let root = workspace_root();
    let mut pages = vec!["README.md".to_owned()];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let rel = path.strip_prefix(&root).unwrap();
                pages.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    pages.sort();
    let mut unlisted = Vec::new();
    for page in &pages {
        let markdown = std::fs::read_to_string(root.join(page)).unwrap();
        for block in blocks(&markdown) {
            if !(block.is_shell() || block.is_python()) {
                continue;
            }
            let run = RUN
                .iter()
                .any(|(p, section)| p == page && section.is_none_or(|s| block.is_under(s)));
            let skipped = NOT_RUN
                .iter()
                .any(|(p, section, _)| p == page && block.is_under(section));
            if !run && !skipped {
                unlisted.push(format!(
                    "{page}:{} (```{} under {:?})",
                    block.line, block.lang, block.headings
                ));
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "snippets neither run nor listed in NOT_RUN of tests/doc_snippets.rs \
         (run them with a MarkdownSession, or list them with the reason):\n{}",
        unlisted.join("\n")
    );
    // And every NOT_RUN entry still names a snippet (no stale excuses).
    for (page, section, _) in NOT_RUN {
        let markdown = std::fs::read_to_string(root.join(page))
            .unwrap_or_else(|e| panic!("NOT_RUN names {page}: {e}"));
        assert!(
            blocks(&markdown)
                .iter()
                .any(|b| (b.is_shell() || b.is_python()) && b.is_under(section)),
            "NOT_RUN lists {page} / {section:?}, which has no shell or Python snippet any more"
        );
    }
}

/// The harness itself, on a small page: one session across blocks, Python
/// at its place, a clean empty directory, and failures that name the line.
mod harness {
    use std::path::Path;

    use super::support::markdown::MarkdownSession;

    fn page(dir: &Path, markdown: &str) -> std::path::PathBuf {
        let path = dir.join("page.md");
        std::fs::write(&path, markdown).unwrap();
        path
    }

    /// The panic message of `f`.
    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let err = std::panic::catch_unwind(f).expect_err("the session should fail");
        err.downcast_ref::<String>()
            .cloned()
            .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[test]
    fn one_session_in_an_empty_directory_with_jwtkit_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = page(
            dir.path(),
            "# Page\n\n```sh\ntest -z \"$(ls -A)\"\nNAME=alice\njwtkit --version\n```\n\n\
             ```text\nnot run\n```\n\n## Later\n\n```sh\necho \"name=${NAME:-unset}\"\n```\n",
        );
        let run = MarkdownSession::at(&path, "page.md").run().unwrap();
        assert!(run.stdout.contains("name=alice"), "{}", run.stdout);
        assert!(run.stdout.starts_with("jwtkit "), "{}", run.stdout);
        assert_eq!(run.blocks_run, vec![3, 15]);

        // Sections select blocks by heading.
        let run = MarkdownSession::at(&path, "page.md")
            .sections(&["Later"])
            .run()
            .unwrap();
        assert_eq!(run.stdout, "name=unset\n");
        assert_eq!(run.blocks_run, vec![15]);
    }

    #[test]
    fn a_failing_shell_line_is_named_with_its_page_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = page(
            dir.path(),
            "# Page\n\n```sh\necho one\n```\n\n```sh\necho two\njwtkit verify --json not-a-token\necho never\n```\n",
        );
        let msg = panic_message(|| {
            MarkdownSession::at(&path, "page.md").run();
        });
        assert!(
            msg.contains(
                "page.md: the ```sh block at line 7 failed (exit 2) at line 9: `jwtkit verify --json not-a-token`"
            ),
            "{msg}"
        );
        assert!(msg.contains("two"), "the output is shown: {msg}");

        // `set -u`: an unset variable stops the session, and is named too.
        let path = page(
            dir.path(),
            "# Page\n\n```sh\necho one\necho \"$NOT_SET\"\n```\n",
        );
        let msg = panic_message(|| {
            MarkdownSession::at(&path, "page.md").run();
        });
        assert!(
            msg.contains(
                "page.md: the ```sh block at line 3 failed (exit 1) at line 5: `echo \"$NOT_SET\"`"
            ),
            "{msg}"
        );
        assert!(msg.contains("NOT_SET: unbound variable"), "{msg}");
    }

    #[test]
    fn python_runs_at_its_place_and_a_failure_names_the_block() {
        let Some(_) = super::support::python() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = page(
            dir.path(),
            "# Page\n\n```sh\necho made > file.txt\n```\n\n```python\nimport jwt\nprint(open('file.txt').read().strip(), jwt.__version__[:2])\n```\n\n\
             ```sh\necho after\n```\n\n```python\nraise SystemExit('boom')\n```\n",
        );
        let msg = panic_message(|| {
            MarkdownSession::at(&path, "page.md").run();
        });
        assert!(
            msg.contains("made 2."),
            "the first python block ran after the sh block: {msg}"
        );
        assert!(msg.contains("after"), "{msg}");
        assert!(
            msg.contains("page.md: the ```python block at line 16 failed (exit 1)"),
            "{msg}"
        );
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn background_jobs_are_stopped_and_edits_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = page(
            dir.path(),
            "# Page\n\n```sh\nsleep 300 &\necho $! > pid\necho port 8080\n```\n",
        );
        let started = std::time::Instant::now();
        let run = MarkdownSession::at(&path, "page.md")
            .replace("8080", "9999")
            .run()
            .unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        assert!(run.stdout.contains("port 9999"), "{}", run.stdout);
        let pid = std::fs::read_to_string(run.work_dir().join("pid")).unwrap();
        // Gone, or a zombie nobody reaps (PID 1 of a container may not).
        let alive = || {
            std::fs::read_to_string(Path::new("/proc").join(pid.trim()).join("stat")).is_ok_and(
                |stat| {
                    stat.rsplit(") ")
                        .next()
                        .is_some_and(|f| !f.starts_with('Z'))
                },
            )
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!alive(), "the background job was killed");

        let msg = panic_message(|| {
            MarkdownSession::at(&path, "page.md")
                .replace("no such text", "x")
                .run();
        });
        assert!(msg.contains("no longer matches"), "{msg}");

        // A hung snippet is killed at the deadline, and the block is named.
        let path = page(dir.path(), "# Page\n\n```sh\necho start\nsleep 300\n```\n");
        let started = std::time::Instant::now();
        let msg = panic_message(|| {
            MarkdownSession::at(&path, "page.md")
                .deadline(std::time::Duration::from_secs(2))
                .run();
        });
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        assert!(
            msg.contains(
                "page.md: the session was still running after 2s, in the block at page.md:3"
            ),
            "{msg}"
        );
    }
}
