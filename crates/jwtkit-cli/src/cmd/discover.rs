//! `jwtkit discover`: what a verifier given an issuer URL would trust — the
//! issuer's metadata (OpenID Connect Discovery or RFC 8414) and its current
//! keys, each with its kid, algorithms and RFC 7638 thumbprint.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::output::{escape, Keep};

/// Arguments of `jwtkit discover`.
#[derive(Debug, clap::Args)]
pub(crate) struct DiscoverArgs {
    /// The issuer URL, exactly as the provider's tokens spell `iss` (https,
    /// or http on loopback), e.g. `https://YOUR-TENANT.eu.auth0.com/`.
    #[arg(value_name = "URL")]
    issuer: String,
    /// Print one JSON object on stdout: the issuer, where its metadata and
    /// keys are, the keys (kid, key_type, alg, thumbprint, algorithms), the
    /// keys left out and why, and the whole metadata document.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also trust the CA certificates in this PEM file for https (a
    /// provider whose certificate a private CA signed). The built-in web
    /// roots stay trusted; certificates are always checked.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<std::path::PathBuf>,
}

#[derive(Serialize)]
struct Key<'a> {
    kid: &'a str,
    /// The key's type and curve or size family (`EC P-256`, `RSA`, `Ed25519`).
    key_type: &'a str,
    /// The JWK's own `alg`.
    alg: Option<&'a str>,
    thumbprint: &'a str,
    /// What a verifier with default settings accepts with it.
    algorithms: Vec<&'a str>,
}

#[derive(Serialize)]
struct Skipped<'a> {
    kid: Option<&'a str>,
    reason: &'a str,
}

#[derive(Serialize)]
struct Report<'a> {
    issuer: &'a str,
    metadata_url: &'a str,
    metadata_kind: &'a str,
    jwks_uri: &'a str,
    signing_algorithms: Option<Vec<&'a str>>,
    keys: Vec<Key<'a>>,
    skipped: Vec<Skipped<'a>>,
    keys_cache_seconds: u64,
    metadata: &'a Map<String, Value>,
}

/// Runs `jwtkit discover`.
pub(crate) fn run(args: &DiscoverArgs) -> Result<(), CliError> {
    super::verify::check_issuer_url("discover", &args.issuer)?;
    let options = super::verify::cache_options(args.ca_cert.as_deref())?;
    crate::block_on(async {
        let found = jwt_keys::discover(&args.issuer, &options)
            .await
            .map_err(|e| CliError::from_keys(e).with_exit(crate::error::EXIT_CONFIG))?;
        let meta = found.metadata();
        let report = Report {
            issuer: meta.issuer(),
            metadata_url: meta.url(),
            metadata_kind: meta.kind().as_str(),
            jwks_uri: meta.jwks_uri(),
            signing_algorithms: meta
                .signing_algorithms()
                .map(|list| list.iter().map(|a| a.as_str()).collect()),
            keys: found
                .keys()
                .iter()
                .map(|k| Key {
                    kid: k.kid(),
                    key_type: k.key_type(),
                    alg: k.jwk_algorithm().map(|a| a.as_str()),
                    thumbprint: k.thumbprint(),
                    algorithms: k.algorithms().iter().map(|a| a.as_str()).collect(),
                })
                .collect(),
            skipped: found
                .skipped()
                .iter()
                .map(|s| Skipped {
                    kid: s.kid.as_deref(),
                    reason: &s.reason,
                })
                .collect(),
            keys_cache_seconds: found.ttl().as_secs(),
            metadata: meta.document(),
        };
        let out = if args.json {
            crate::to_json_line(&report)?
        } else {
            human(&report, meta.ignored_algorithms())
        };
        crate::write_stdout(out.as_bytes())
    })
}

/// The report for people: one line per fact, one per key.
fn human(r: &Report<'_>, ignored: &[String]) -> String {
    // Every value from the provider's documents is one escaped line: none
    // can start a line of its own (a forged `kid … thumbprint …` line).
    let one = |text: &str| escape(text, Keep::Nothing).into_owned();
    let mut out = String::new();
    let _ = writeln!(out, "issuer:     {}", one(r.issuer));
    let _ = writeln!(
        out,
        "metadata:   {} ({})",
        one(r.metadata_url),
        r.metadata_kind
    );
    let _ = writeln!(out, "jwks_uri:   {}", one(r.jwks_uri));
    let _ = writeln!(
        out,
        "algorithms: {}",
        match &r.signing_algorithms {
            Some(list) if !list.is_empty() => list.join(", "),
            Some(_) => "none usable declared".to_owned(),
            None => "not declared (each key's own `alg` decides)".to_owned(),
        }
    );
    if !ignored.is_empty() {
        let _ = writeln!(
            out,
            "            (never accepted here: {})",
            ignored
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        out,
        "keys ({}; cached for {} s by a verifier):",
        r.keys.len(),
        r.keys_cache_seconds
    );
    for k in &r.keys {
        let verifies = if k.algorithms.is_empty() {
            match k.alg {
                Some(alg) => format!(
                    "verifies nothing by default: its JWK's alg {alg} is not among the \
                     algorithms the metadata declares"
                ),
                None => "verifies nothing by default: its JWK names no alg and the metadata \
                         declares none of its type (`jwtkit verify --alg` names it)"
                    .to_owned(),
            }
        } else {
            format!("verifies {}", k.algorithms.join(", "))
        };
        let _ = writeln!(
            out,
            "  kid {:?}  {}{}  thumbprint {}  {verifies}",
            k.kid,
            k.key_type,
            k.alg.map(|a| format!(" alg {a}")).unwrap_or_default(),
            k.thumbprint,
        );
    }
    for s in &r.skipped {
        let _ = writeln!(
            out,
            "  left out: kid {}: {}",
            s.kid
                .map_or_else(|| "(none)".to_owned(), |k| format!("{k:?}")),
            s.reason
        );
    }
    out
}
