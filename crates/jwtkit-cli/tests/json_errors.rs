//! Issue 13, item 12: every command with `--json` reports a failure as one
//! JSON object on stdout (`{"error":KIND,"message":…}`, `verify` with
//! `"valid":false` first) and prints no error line on stderr; without
//! `--json`, the error line goes to stderr only. A command-line error of a
//! `--json` run is reported the same way.

mod common;

use std::path::Path;

use common::{jwtkit, Run};
use serde_json::Value;

/// The one JSON object of a failed `--json` run, checked: exit `code`,
/// nothing but that object on stdout, no error line on stderr.
fn json_failure(run: &Run, code: i32, kind: &str) -> Value {
    assert_eq!(run.code, code, "{} / {}", run.stdout, run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "{:?}", run.stdout);
    let doc = run.json();
    assert_eq!(doc["error"], kind, "{doc}");
    assert!(
        doc["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    assert!(
        !run.stderr.contains("error"),
        "stderr holds an error line: {}",
        run.stderr
    );
    doc
}

/// The human failure: exit `code`, stdout empty, `error [KIND]: …` on stderr.
fn text_failure(run: &Run, code: i32, kind: &str) {
    assert_eq!(run.code, code, "{} / {}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "{:?}", run.stdout);
    assert!(
        run.stderr.contains(&format!("error [{kind}]: ")),
        "{}",
        run.stderr
    );
}

fn both(dir: &Path, args: &[&str], code: i32, kind: &str) -> Value {
    text_failure(&jwtkit(dir, args), code, kind);
    let mut with_json = args.to_vec();
    with_json.push("--json");
    json_failure(&jwtkit(dir, &with_json), code, kind)
}

#[test]
fn runtime_errors_of_every_json_command_go_to_stdout_only() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    // verify: `"valid":false` first, as its success document has `"valid":true`.
    let args = ["verify", "--key", "missing.pem", "--alg", "ES256", "a.b.c"];
    let doc = both(dir, &args, 2, "invalid_key");
    assert_eq!(doc["valid"], false);
    let run = jwtkit(dir, &[&args[..], &["--json"]].concat());
    assert!(
        run.stdout
            .starts_with(r#"{"valid":false,"error":"invalid_key","message":"#),
        "{}",
        run.stdout
    );

    // store list / rotate / audit on a store that does not exist.
    for command in ["list", "rotate", "audit"] {
        let doc = both(
            dir,
            &["store", command, "file:nowhere"],
            2,
            "not_initialized",
        );
        assert!(doc.get("valid").is_none(), "{doc}");
        assert!(
            doc["message"]
                .as_str()
                .unwrap()
                .contains("jwtkit store init"),
            "{doc}"
        );
    }

    // inspect: the document says which part failed; only warnings on stderr.
    let run = jwtkit(dir, &["inspect", "--json", "not-a-token"]);
    let doc = json_failure(&run, 1, "malformed");
    assert!(doc["message"].as_str().unwrap().contains("no `.`"), "{doc}");
    assert!(
        run.stderr.contains("warning: nothing was verified"),
        "{}",
        run.stderr
    );
    text_failure(&jwtkit(dir, &["inspect", "not-a-token"]), 1, "malformed");
}

#[test]
fn command_line_errors_of_a_json_run_are_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cases: [(&[&str], &str); 6] = [
        (
            &["verify", "--json", "--bogus", "t"],
            "jwtkit verify --help",
        ),
        (
            &["verify", "--json", "--key", "k.pem"],
            "jwtkit verify --help",
        ),
        (&["inspect", "--json"], "jwtkit inspect --help"),
        (
            &["store", "audit", "--json", "file:x", "--now", "soon"],
            "jwtkit store audit --help",
        ),
        (&["store", "list", "--json"], "jwtkit store list --help"),
        (&["speed", "--json", "--bogus"], "jwtkit speed --help"),
    ];
    for (args, help) in cases {
        let run = jwtkit(dir, args);
        let doc = json_failure(&run, 2, "usage");
        assert!(run.stderr.is_empty(), "{args:?}: {}", run.stderr);
        let message = doc["message"].as_str().unwrap();
        assert!(
            message.ends_with(&format!("see `{help}`")),
            "{args:?}: {message}"
        );
        assert_eq!(doc.get("valid").is_some(), args[0] == "verify", "{doc}");
    }
    // A missing argument is named, not cut off after "were not provided:".
    let run = jwtkit(dir, &["verify", "--json", "--key", "k.pem"]);
    assert!(
        run.json()["message"]
            .as_str()
            .unwrap()
            .contains("were not provided: <TOKEN>"),
        "{}",
        run.stdout
    );

    // Without --json, or with `--json` only after `--` (a value, not a flag),
    // the human text on stderr (clap's, or the command's own for a missing
    // key source) and nothing on stdout.
    for (args, start) in [
        (&["verify", "--bogus", "t"][..], "error: "),
        (
            &["verify", "--", "--json"][..],
            "error [usage]: no key to verify with",
        ),
    ] {
        let run = jwtkit(dir, args);
        assert_eq!(run.code, 2);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(run.stderr.starts_with(start), "{args:?}: {}", run.stderr);
    }
    // A command without --json is never answered in JSON.
    let run = jwtkit(dir, &["sign", "--json"]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("unexpected argument '--json'"),
        "{}",
        run.stderr
    );
}
