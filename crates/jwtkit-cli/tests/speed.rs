//! `jwtkit speed --json` prints one result per algorithm and operation, with
//! positive timings for both jwtkit and the primitive.

use std::process::Command;

use serde_json::Value;

#[test]
fn speed_json_shape() {
    let out = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
        .args([
            "speed",
            "--alg",
            "HS256",
            "--alg",
            "ES256",
            "--seconds",
            "0.05",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    let pairs: Vec<(String, String)> = results
        .iter()
        .map(|r| {
            (
                r["alg"].as_str().unwrap().to_owned(),
                r["op"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("HS256", "sign"),
            ("HS256", "verify"),
            ("ES256", "sign"),
            ("ES256", "verify")
        ]
        .map(|(a, o)| (a.to_owned(), o.to_owned()))
    );
    for r in results {
        assert!(r["ns_per_op"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["primitive_ns_per_op"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn speed_refuses_bad_arguments() {
    for args in [
        &["speed", "--alg", "none"][..],
        &["speed", "--seconds", "0"][..],
        &["speed", "--seconds", "-1"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_jwtkit"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}
