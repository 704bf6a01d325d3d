//! `jwtkit verify`: check a token's signature and claims.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jwt_core::{
    Algorithm, Header, ManualClock, Validation, Verifier, VerifyingKey, DEFAULT_MAX_TOKEN_SIZE,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::keyfile::{algorithms_for, KeySource, VerificationKeys};

/// Arguments of `jwtkit verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    key: KeySource,
    /// Allowed algorithm; repeat to allow several. Required unless the JWK
    /// (or every JWKS entry) declares its `alg`.
    #[arg(long, value_name = "ALG")]
    alg: Vec<String>,
    /// Accepted issuer; repeat to accept any of several.
    #[arg(long, value_name = "S")]
    iss: Vec<String>,
    /// Accepted audience; repeat to accept any of several. Without it, a token
    /// carrying `aud` is refused.
    #[arg(long, value_name = "S")]
    aud: Vec<String>,
    /// Required subject.
    #[arg(long, value_name = "S")]
    sub: Option<String>,
    /// Required header `typ`, e.g. `at+jwt`.
    #[arg(long, value_name = "T")]
    typ: Option<String>,
    /// A claim that must be present; repeat for several.
    #[arg(long, value_name = "CLAIM")]
    require: Vec<String>,
    /// Accept tokens without `exp` (it is still checked when present).
    #[arg(long)]
    optional_exp: bool,
    /// Clock-skew tolerance for exp/nbf/iat (10s, 15m, …; default 0).
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    leeway: Option<Duration>,
    /// Refuse tokens longer than BYTES (default 65536).
    #[arg(long, value_name = "BYTES")]
    max_size: Option<usize>,
    /// Use this Unix time as "now" instead of the system clock.
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    now: Option<i64>,
    /// Print exactly one JSON object on stdout:
    /// `{"valid":true,"header":…,"claims":…}` or `{"valid":false,"error":KIND,"message":…}`.
    #[arg(long)]
    pub(crate) json: bool,
    /// The token, or `-` to read it from stdin.
    #[arg(value_name = "TOKEN")]
    token: String,
}

#[derive(Serialize)]
struct Valid<'a> {
    valid: bool,
    header: &'a Header,
    claims: &'a Map<String, Value>,
}

/// The `--json` document for a failure.
#[derive(Serialize)]
struct Invalid<'a> {
    valid: bool,
    error: &'a str,
    message: &'a str,
}

/// The `--json` line reporting `err`.
pub(crate) fn failure_json(err: &CliError) -> String {
    let doc = Invalid {
        valid: false,
        error: err.kind(),
        message: err.message(),
    };
    // Three strings and a bool always serialize.
    serde_json::to_string(&doc).unwrap_or_else(|_| r#"{"valid":false,"error":"io"}"#.into())
}

/// Runs `jwtkit verify`.
pub(crate) fn run(args: &VerifyArgs) -> Result<(), CliError> {
    let mut algorithms = Vec::with_capacity(args.alg.len());
    for name in &args.alg {
        algorithms.push(super::parse_algorithm(name)?);
    }
    if args.key.store.is_some() || args.key.jwks_url.is_some() {
        return verify_with_key_source(args, algorithms);
    }
    let keys = args.key.load()?.verification_keys()?;
    if algorithms.is_empty() {
        algorithms = declared_algorithms(&keys)?;
    }
    let verifier = build_verifier(args, keys, algorithms)?;
    let max_size = args.max_size.unwrap_or(DEFAULT_MAX_TOKEN_SIZE);
    let token = super::read_token(&args.token, max_size)?;
    let (header, claims) = verifier
        .verify_to_map(&token)
        .map_err(CliError::from_verification)?;
    print_valid(args, &header, &claims)
}

/// `--store URI` or `--jwks-url URL`: keys selected by `kid` from a key
/// store's published keys or from an identity provider's JWKS.
fn verify_with_key_source(
    args: &VerifyArgs,
    mut algorithms: Vec<Algorithm>,
) -> Result<(), CliError> {
    let max_size = args.max_size.unwrap_or(DEFAULT_MAX_TOKEN_SIZE);
    let token = super::read_token(&args.token, max_size)?;
    crate::block_on(async {
        let source = match (&args.key.store, &args.key.jwks_url) {
            (Some(uri), _) => {
                let store = jwt_keys::open_store(uri).map_err(CliError::from_keys)?;
                if algorithms.is_empty() {
                    // The store's own records say which algorithms its keys use.
                    let records = store.list().await.map_err(CliError::from_keys)?;
                    let set: BTreeSet<Algorithm> = records
                        .iter()
                        .filter(|r| r.state.is_published())
                        .map(|r| r.alg)
                        .collect();
                    algorithms = set.into_iter().collect();
                }
                jwt_keys::KeySource::Store(store)
            }
            (None, Some(url)) => {
                if algorithms.is_empty() {
                    return Err(CliError::usage(
                        "--alg is required with --jwks-url: name the algorithms your identity \
                         provider signs with (e.g. --alg RS256); a JWKS is not trusted to say",
                    ));
                }
                jwt_keys::KeySource::Remote(url.clone())
            }
            (None, None) => return Err(CliError::usage("no key source given")),
        };
        let validation = build_validation(args, &algorithms);
        let mut builder = jwt_keys::Verifier::builder(source, validation);
        if let Some(now) = args.now {
            builder = builder.clock(Arc::new(ManualClock::new(now)));
        }
        let verifier = builder.build().map_err(CliError::from_keys)?;
        let data = verifier
            .verify::<Map<String, Value>>(&token)
            .await
            .map_err(CliError::from_keys)?;
        print_valid(args, &data.header, &data.claims)
    })
}

fn print_valid(
    args: &VerifyArgs,
    header: &Header,
    claims: &Map<String, Value>,
) -> Result<(), CliError> {
    let out = if args.json {
        crate::to_json_line(&Valid {
            valid: true,
            header,
            claims,
        })?
    } else {
        // Header values escaped whole: a `kid` must not forge a line.
        let header = crate::output::header_for_display(header);
        format!(
            "valid: signature and claims verified\n{}",
            super::render_token(&header, claims)
        )
    };
    crate::write_stdout(out.as_bytes())
}

/// Without `--alg`, the algorithms the key itself declares (a JWK's `alg`,
/// or every JWKS entry's): never a guess from the key type or the token.
fn declared_algorithms(keys: &VerificationKeys) -> Result<Vec<Algorithm>, CliError> {
    match keys {
        VerificationKeys::Single(key) => match key.algorithm() {
            Some(alg) => Ok(vec![alg]),
            None => Err(missing_alg(key)),
        },
        VerificationKeys::Set(set) => {
            let mut algs = BTreeSet::new();
            let mut undeclared = Vec::new();
            for key in set.keys() {
                match key.algorithm() {
                    Some(alg) => {
                        algs.insert(alg);
                    }
                    None => undeclared.push(key.kid().unwrap_or("?").to_owned()),
                }
            }
            if !undeclared.is_empty() {
                return Err(CliError::usage(format!(
                    "--alg is required: the JWKS entries {} do not declare an `alg`; \
                     name the algorithms your issuer uses, e.g. --alg RS256",
                    undeclared.join(", ")
                )));
            }
            Ok(algs.into_iter().collect())
        }
    }
}

fn missing_alg(key: &VerifyingKey) -> CliError {
    let choices: Vec<&str> = algorithms_for(key.family())
        .into_iter()
        .map(Algorithm::as_str)
        .collect();
    CliError::usage(format!(
        "--alg is required: the key ({}) does not declare its algorithm, and accepting whatever \
         the token claims is the classic JWT vulnerability; pass the algorithm your issuer uses \
         (for this key: {})",
        key.family().name(),
        choices.join(", ")
    ))
}

fn build_verifier(
    args: &VerifyArgs,
    keys: VerificationKeys,
    algorithms: Vec<Algorithm>,
) -> Result<Verifier, CliError> {
    let validation = build_validation(args, &algorithms);
    match keys {
        VerificationKeys::Single(key) => {
            Verifier::new(*key, validation).map_err(CliError::from_setup)
        }
        VerificationKeys::Set(set) => {
            // A set is checked per token; refuse up front a set none of whose
            // keys could ever verify with the allowed algorithms.
            let mut last_error = None;
            let usable = set.keys().any(|key| {
                algorithms
                    .iter()
                    .any(|&alg| match key.check_usable(alg, false) {
                        Ok(()) => true,
                        Err(e) => {
                            last_error = Some(e);
                            false
                        }
                    })
            });
            if !usable {
                let names: Vec<&str> = algorithms.iter().map(|a| a.as_str()).collect();
                return Err(CliError::invalid_key(format!(
                    "no key in the JWKS can verify {} ({}); check --alg against the keys",
                    names.join("/"),
                    last_error.map(|e| e.to_string()).unwrap_or_default()
                )));
            }
            Verifier::with_key_set(Arc::new(set), validation).map_err(CliError::from_setup)
        }
    }
}

fn build_validation(args: &VerifyArgs, algorithms: &[Algorithm]) -> Validation {
    let mut validation =
        Validation::new(algorithms.iter().copied()).leeway(args.leeway.unwrap_or(Duration::ZERO));
    for iss in &args.iss {
        validation = validation.issuer(iss);
    }
    for aud in &args.aud {
        validation = validation.audience(aud);
    }
    if let Some(sub) = &args.sub {
        validation = validation.subject(sub);
    }
    if let Some(typ) = &args.typ {
        validation = validation.typ(typ);
    }
    for claim in &args.require {
        validation = validation.require(claim);
    }
    if args.optional_exp {
        validation = validation.optional_exp();
    }
    if let Some(max) = args.max_size {
        validation = validation.max_size(max);
    }
    if let Some(now) = args.now {
        validation = validation.clock(Arc::new(ManualClock::new(now)));
    }
    validation
}
