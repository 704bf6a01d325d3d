//! `jwtkit verify`: check a token's signature and claims.
//!
//! Every key source (a key file, a JWKS file, `--store`, `--jwks-url`)
//! goes through one verifier, [`jwt_keys::Verifier`] (a file is a fixed key
//! set), and one rule decides which algorithms a key verifies with,
//! [`jwt_keys::verification_algorithms`]: the same as the token service's.

use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, Header, ManualClock, Validation, VerifyingKey, DEFAULT_MAX_TOKEN_SIZE};
use jwt_keys::{verification_algorithms, AlgorithmRule};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::keyfile::{algorithms_for, KeySource, VerificationKeys};

/// Arguments of `jwtkit verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    key: KeySource,
    /// Allowed algorithm; repeat to allow several. Without it, a key verifies
    /// only with the algorithm it declares: the JWK's `alg`, the `alg` of the
    /// JWKS entry selected by the token's `kid` (file or --jwks-url), the
    /// store's record. A token whose `alg` differs from its key's is
    /// `invalid_algorithm`; a key that declares none (a PEM file, an entry
    /// without `alg`) needs --alg. The key type is never used to guess.
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
    let max_size = args.max_size.unwrap_or(DEFAULT_MAX_TOKEN_SIZE);
    let (source, algorithms, rule) = key_source(args, algorithms)?;
    let token = super::read_token(&args.token, max_size)?;
    crate::block_on(async {
        let validation = build_validation(args, &algorithms);
        let mut builder = jwt_keys::Verifier::builder(source, validation).algorithms(rule);
        if let Some(now) = args.now {
            builder = builder.clock(Arc::new(ManualClock::new(now)));
        }
        let verifier = builder.build().map_err(setup_error)?;
        let data = verifier
            .verify::<Map<String, Value>>(&token)
            .await
            .map_err(verification_error)?;
        print_valid(args, &data.header, &data.claims)
    })
}

/// The key source, the validation's algorithms and the rule that applies
/// them. With `--alg`, the list is the caller's
/// ([`AlgorithmRule::Listed`]); without it, the keys say
/// ([`AlgorithmRule::KeysOnly`], bounded by nothing).
fn key_source(
    args: &VerifyArgs,
    algorithms: Vec<Algorithm>,
) -> Result<(jwt_keys::KeySource, Vec<Algorithm>, AlgorithmRule), CliError> {
    let (algorithms, rule) = if algorithms.is_empty() {
        (Algorithm::ALL.to_vec(), AlgorithmRule::KeysOnly)
    } else {
        (algorithms, AlgorithmRule::Listed)
    };
    let source = match (&args.key.store, &args.key.jwks_url) {
        (Some(uri), _) => {
            // `--now` decides the key states too, so verify and `store audit` agree.
            let store = match args.now {
                Some(now) => jwt_keys::open_store_with_clock(uri, Arc::new(ManualClock::new(now))),
                None => jwt_keys::open_store(uri),
            }
            .map_err(CliError::from_keys)?;
            jwt_keys::KeySource::Store(store)
        }
        (None, Some(url)) => jwt_keys::KeySource::Remote(url.clone()),
        (None, None) => match args.key.load()?.verification_keys()? {
            VerificationKeys::Set(set, jwks) => {
                // A JWKS file none of whose entries names an `alg`: say so
                // now, naming them, rather than for the first token.
                let unbound: Vec<String> = set
                    .keys()
                    .filter(|k| verification_algorithms(k, &algorithms, rule).is_empty())
                    .map(|k| {
                        let fits: Vec<&str> = algorithms_for(k.family())
                            .into_iter()
                            .map(Algorithm::as_str)
                            .collect();
                        format!(
                            "`{}` ({}: {})",
                            k.kid().unwrap_or("?"),
                            k.family().name(),
                            fits.join(", ")
                        )
                    })
                    .collect();
                if rule == AlgorithmRule::KeysOnly && unbound.len() == set.len() {
                    return Err(CliError::usage(format!(
                        "--alg is required: no JWKS entry declares an `alg`; name the algorithm \
                         your issuer signs with, one that fits its keys: {}",
                        unbound.join(", ")
                    )));
                }
                jwt_keys::KeySource::Jwks(jwks)
            }
            VerificationKeys::Single(key) => {
                // One key verifies with exactly the validation's list (the
                // build checks that it fits each), so without --alg the
                // rule is applied here: the key's own `alg`, or none.
                let algorithms = match rule {
                    AlgorithmRule::KeysOnly => {
                        let own = verification_algorithms(&key, &algorithms, rule);
                        if own.is_empty() {
                            return Err(missing_alg(&key));
                        }
                        own
                    }
                    // The listed algorithms this key may verify with (a key
                    // bound to RS256 with `--alg RS256 --alg PS256`: RS256),
                    // so that a token using another one is rejected as
                    // `invalid_algorithm`, whatever the token says.
                    _ => {
                        let fits = verification_algorithms(&key, &algorithms, rule);
                        if fits.is_empty() && key.algorithm().is_none() {
                            // A key of another family: jwt-core's build names
                            // the mismatch (`invalid_key`).
                            algorithms
                        } else if fits.is_empty() {
                            return Err(CliError::usage(format!(
                                "--alg {} does not fit the key ({}{}); pass the algorithm it \
                                 signs with",
                                algorithms
                                    .iter()
                                    .map(|a| a.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", --alg "),
                                key.family().name(),
                                key.algorithm()
                                    .map(|a| format!(", bound to {a}"))
                                    .unwrap_or_default()
                            )));
                        } else {
                            fits
                        }
                    }
                };
                return Ok((
                    jwt_keys::KeySource::Key(key),
                    algorithms,
                    AlgorithmRule::Listed,
                ));
            }
        },
    };
    Ok((source, algorithms, rule))
}

/// A failure building the verifier is the setup's fault (exit 2).
fn setup_error(err: jwt_keys::Error) -> CliError {
    match err {
        jwt_keys::Error::Core(e) => CliError::from_setup(e),
        other => CliError::from_keys(other),
    }
}

/// A token rejection exits 1; a key that names no algorithm when --alg was
/// not given is a usage error (exit 2) that says to pass --alg (the
/// verifier's only `config` error once built: the validation itself was
/// checked by the build).
fn verification_error(err: jwt_keys::Error) -> CliError {
    match err {
        jwt_keys::Error::Core(jwt_core::Error::Config { reason }) => alg_required(&reason),
        jwt_keys::Error::Core(e) => CliError::from_verification(e),
        other => CliError::from_keys(other),
    }
}

fn alg_required(reason: &str) -> CliError {
    CliError::usage(format!(
        "--alg is required: {reason} (accepting whatever the token claims is the classic JWT \
         vulnerability)"
    ))
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
