//! `jwtkit dpop proof`: a DPoP proof (RFC 9449) for one request, to put in
//! its `DPoP` header: what a curl session or a script needs to call a
//! DPoP-protected endpoint. The proof is made by jwt-core's
//! [`DpopProof::builder`], the one Rust clients use.

use std::sync::Arc;

use jwt_core::dpop::DpopProof;
use jwt_core::{Algorithm, KeyFamily, ManualClock, DEFAULT_MAX_TOKEN_SIZE};

use crate::error::CliError;
use crate::keyfile::{self, KeySource, KeyUse};

/// `jwtkit dpop …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DpopCommand {
    /// Print a DPoP proof for one request (the value of its `DPoP` header).
    Proof(ProofArgs),
}

/// Arguments of `jwtkit dpop proof`.
#[derive(Debug, clap::Args)]
// The key is the client's key pair, from a file: the other key sources of
// `sign` stay out of the help (`run` refuses them, saying why).
#[command(
    mut_arg("key", |a| a.required(true).help(
        "The client's private key, read as `jwtkit sign --key` reads it: PEM (PKCS#8, SEC1, \
         PKCS#1), DER or JWK (or a JWKS holding exactly one private key); `-` for stdin. Its \
         public key goes into the proof's `jwk` header"
    )),
    mut_arg("secret_file", |a| a.hide(true)),
    mut_arg("secret_env", |a| a.hide(true)),
    mut_arg("store", |a| a.hide(true)),
    mut_arg("jwks_url", |a| a.hide(true)),
    mut_arg("issuer_url", |a| a.hide(true)),
    mut_arg("secret_raw", |a| a.hide(true)),
    mut_arg("dangerous_allow_weak_key", |a| a.hide(true)),
    override_usage = "jwtkit dpop proof --key <FILE> --htm <METHOD> --htu <URL> [--ath <TOKEN>] [--nonce <NONCE>]",
    after_help = "Example (a DPoP-bound token against jwtkit serve):\n  \
        curl -H \"Authorization: DPoP $ACCESS\" \\\n       \
        -H \"DPoP: $(jwtkit dpop proof --key client.pem --htm GET \\\n                 \
        --htu http://127.0.0.1:8080/userinfo --ath \"$ACCESS\")\" \\\n       \
        http://127.0.0.1:8080/userinfo\n\
        (the URL is the server's --issuer and the path: jwtkit serve's default is http://127.0.0.1:8080)"
)]
pub(crate) struct ProofArgs {
    #[command(flatten)]
    key: KeySource,
    /// The algorithm (case-sensitive): ES256, ES384, ES512, EdDSA, RS256,
    /// PS256, … Default: the JWK's `alg`, else the one algorithm of an EC or
    /// Ed25519 key; an RSA key needs it.
    #[arg(long, value_name = "ALG")]
    alg: Option<String>,
    /// The request's HTTP method, e.g. GET or POST (case-sensitive).
    #[arg(long, value_name = "METHOD")]
    htm: String,
    /// The request's absolute URL (http or https). A query and fragment are
    /// left out of the proof, as RFC 9449 requires.
    #[arg(long, value_name = "URL")]
    htu: String,
    /// The access token the request presents (`Authorization: DPoP TOKEN`),
    /// or `-` to read it from stdin: the proof carries its hash (`ath`).
    #[arg(long, value_name = "TOKEN")]
    ath: Option<String>,
    /// The server's nonce, from its last `DPoP-Nonce` response header.
    #[arg(long, value_name = "NONCE")]
    nonce: Option<String>,
    /// Use this time as the proof's `iat` instead of the system clock: Unix
    /// seconds (1716163200) or RFC 3339 (2026-12-01T00:00:00Z).
    #[arg(
        long,
        value_name = "TIME",
        value_parser = crate::duration::claim_time::parse_now,
        allow_negative_numbers = true
    )]
    now: Option<i64>,
    /// Print one JSON object: the proof, its key's RFC 7638 thumbprint
    /// (`jkt`, what a bound token's `cnf.jkt` holds), `jti` and `iat`.
    #[arg(long)]
    json: bool,
}

/// Runs `jwtkit dpop …`.
pub(crate) fn run(command: &DpopCommand) -> Result<(), CliError> {
    match command {
        DpopCommand::Proof(args) => proof(args),
    }
}

fn proof(args: &ProofArgs) -> Result<(), CliError> {
    args.key.check(KeyUse::Sign)?;
    let source = &args.key;
    let other = [
        (source.secret_file.is_some(), "--secret-file"),
        (source.secret_env.is_some(), "--secret-env"),
        (source.store.is_some(), "--store"),
        (source.jwks_url.is_some(), "--jwks-url"),
        (!source.issuer_url.is_empty(), "--issuer-url"),
        (source.secret_raw, "--secret-raw"),
        (
            source.dangerous_allow_weak_key,
            "--dangerous-allow-weak-key",
        ),
    ];
    if let Some((_, flag)) = other.iter().find(|(set, _)| *set) {
        return Err(CliError::usage(format!(
            "{flag} cannot be used here: a DPoP proof is signed with the client's own key pair, \
             read from a file; pass --key FILE (generate one with `jwtkit keys generate --alg \
             ES256 --out client.pem`)"
        )));
    }
    if args.ath.as_deref() == Some("-") && source.stdin_flag().is_some() {
        return Err(CliError::usage(
            "--ath - and --key - both read stdin, which can hold only one of them; pass the key \
             as a file",
        ));
    }
    if args.htm.bytes().any(|b| b.is_ascii_lowercase()) {
        crate::diag(format_args!(
            "warning: --htm {:?} has lower-case letters; HTTP methods are case-sensitive and a \
             server compares `htm` with its request's method exactly (GET, POST, …)",
            args.htm
        ));
    }
    let wanted = args
        .alg
        .as_deref()
        .map(super::parse_algorithm)
        .transpose()?;
    let key = source.load()?.signing_key()?;
    let alg = proof_algorithm(wanted, key.family(), key.algorithm())?;
    if key.family() != alg.family() {
        let err = keyfile::mismatch(key.family(), alg, KeyUse::Sign);
        return Err(match &source.key {
            Some(path) => err.context(keyfile::key_file(path)),
            None => err,
        });
    }
    let token = match args.ath.as_deref() {
        Some(arg) => Some(super::read_token(arg, DEFAULT_MAX_TOKEN_SIZE)?),
        None => None,
    };
    let mut builder = DpopProof::builder(&key, alg)
        .htm(args.htm.as_str())
        .htu(args.htu.as_str());
    if let Some(token) = &token {
        builder = builder.ath(token);
    }
    if let Some(nonce) = &args.nonce {
        builder = builder.nonce(nonce.as_str());
    }
    let now = args.now.unwrap_or_else(jwt_core::time::now_unix);
    builder = builder.clock(Arc::new(ManualClock::new(now)));
    let proof = builder.sign().map_err(CliError::from_setup)?;
    if !args.json {
        return crate::write_stdout(format!("{proof}\n").as_bytes());
    }
    let jkt = key.thumbprint().map_err(CliError::from_setup)?;
    let claims = jwt_core::dangerous::insecure_decode(&proof)
        .map_err(CliError::from_setup)?
        .claims;
    crate::write_stdout(
        crate::to_json_line(&serde_json::json!({
            "proof": proof,
            "jkt": jkt,
            "alg": alg.as_str(),
            "jti": claims.get("jti"),
            "htm": claims.get("htm"),
            "htu": claims.get("htu"),
            "iat": claims.get("iat"),
        }))?
        .as_bytes(),
    )
}

/// --alg, else the key's own (a JWK's `alg`), else the only algorithm of
/// its family; an RSA key must be told which of its algorithms to use.
fn proof_algorithm(
    wanted: Option<Algorithm>,
    family: KeyFamily,
    bound: Option<Algorithm>,
) -> Result<Algorithm, CliError> {
    if family == KeyFamily::Hmac {
        return Err(CliError::invalid_key(
            "the key is an HMAC secret; a DPoP proof is signed with the client's key pair \
             (its public key travels in the proof). Generate one with `jwtkit keys generate \
             --alg ES256 --out client.pem`",
        ));
    }
    match (wanted, bound) {
        (Some(alg), Some(own)) if alg != own => Err(CliError::usage(format!(
            "--alg {alg} does not match the key, which declares `alg` {own}; drop --alg, or \
             pass --alg {own}"
        ))),
        (Some(alg), _) | (None, Some(alg)) => Ok(alg),
        (None, None) => keyfile::only_algorithm(family).ok_or_else(|| {
            CliError::usage(format!(
                "--alg is required for {}: pass the one the server accepts, e.g. --alg RS256 \
                 (or PS256)",
                keyfile::a_key(family, KeyUse::Sign)
            ))
        }),
    }
}
