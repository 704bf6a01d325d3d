//! `jwtkit sign`: build claims from flags and sign them.

use std::time::Duration;

use jwt_core::Signer;
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::keyfile::KeySource;

/// Arguments of `jwtkit sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    /// Signing algorithm (case-sensitive): HS256, HS384, HS512, RS256, RS384,
    /// RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA. Required with a
    /// key; with --store it defaults to (and must match) the active key's.
    #[arg(long, value_name = "ALG")]
    alg: Option<String>,
    #[command(flatten)]
    key: KeySource,
    /// Header `kid` (default: the JWK's `kid`, else the key's RFC 7638
    /// thumbprint for asymmetric keys, else none).
    #[arg(long, value_name = "KID")]
    kid: Option<String>,
    /// Header `typ`, e.g. `at+jwt`.
    #[arg(long, value_name = "TYP", default_value = "JWT")]
    typ: String,
    /// Claims as a JSON object; the flags below override its members.
    #[arg(long, value_name = "JSON")]
    claims: Option<String>,
    /// The `iss` claim.
    #[arg(long, value_name = "S")]
    iss: Option<String>,
    /// The `sub` claim.
    #[arg(long, value_name = "S")]
    sub: Option<String>,
    /// The `aud` claim; repeat for several audiences (then `aud` is an array).
    #[arg(long, value_name = "S")]
    aud: Vec<String>,
    /// Lifetime: sets `exp` = now + DUR and `iat` = now (10s, 15m, 1h, 30d).
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    exp: Option<Duration>,
    /// Sets `nbf` = now + DUR.
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    nbf: Option<Duration>,
    /// The `jti` claim.
    #[arg(long, value_name = "S")]
    jti: Option<String>,
    /// Use this Unix time as "now" instead of the system clock.
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    now: Option<i64>,
}

/// Runs `jwtkit sign`.
pub(crate) fn run(args: &SignArgs) -> Result<(), CliError> {
    if args.key.jwks_url.is_some() {
        return Err(CliError::usage(
            "--jwks-url only verifies; sign with --key, --secret-file, --secret-env or --store",
        ));
    }
    let claims = build_claims(args)?;
    if let Some(uri) = &args.key.store {
        warn_without_exp(&claims);
        return sign_with_store(args, uri, &claims);
    }
    let alg = match &args.alg {
        Some(name) => super::parse_algorithm(name)?,
        None => {
            return Err(CliError::usage(
                "--alg is required when signing with a key (e.g. --alg ES256); only --store knows its own algorithm",
            ))
        }
    };
    let key = args.key.load()?.signing_key()?;
    let mut signer = Signer::new(key, alg)
        .and_then(|s| s.with_typ(Some(&args.typ)))
        .map_err(CliError::from_setup)?;
    if let Some(kid) = &args.kid {
        signer = signer.with_kid(Some(kid)).map_err(CliError::from_setup)?;
    }
    warn_without_exp(&claims);
    let token = signer.sign(&claims).map_err(CliError::from_setup)?;
    crate::write_stdout(format!("{token}\n").as_bytes())
}

fn warn_without_exp(claims: &Map<String, Value>) {
    if !claims.contains_key("exp") {
        crate::diag(format_args!(
            "warning: the token has no `exp`, so it never expires; verifiers (`jwtkit verify` \
             included) refuse it unless told otherwise. Add --exp 15m (or another lifetime)"
        ));
    }
}

/// Signs with the store's active key; the header gets its `kid` and `alg`.
fn sign_with_store(
    args: &SignArgs,
    uri: &str,
    claims: &Map<String, Value>,
) -> Result<(), CliError> {
    if args.kid.is_some() {
        return Err(CliError::usage(
            "--kid cannot be used with --store: the store's active key names itself",
        ));
    }
    let wanted = args
        .alg
        .as_deref()
        .map(super::parse_algorithm)
        .transpose()?;
    crate::block_on(async {
        let store = jwt_keys::open_store(uri).map_err(CliError::from_keys)?;
        let active = store.active().await.map_err(CliError::from_keys)?;
        if let Some(alg) = wanted {
            if alg != active.alg {
                return Err(CliError::config(format!(
                    "the store's active key `{}` signs {}, not {alg}; drop --alg or pass --alg {}",
                    active.kid, active.alg, active.alg
                )));
            }
        }
        let token = jwt_keys::KeyStoreExt::sign_token(&*store, claims, Some(&args.typ))
            .await
            .map_err(CliError::from_keys)?;
        crate::write_stdout(format!("{token}\n").as_bytes())
    })
}

fn build_claims(args: &SignArgs) -> Result<Map<String, Value>, CliError> {
    let mut claims = match &args.claims {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(CliError::usage(format!(
                    "--claims must be a JSON object like '{{\"role\":\"admin\"}}', not {}",
                    json_type(&other)
                )))
            }
            Err(e) => {
                return Err(CliError::usage(format!(
                "--claims is not valid JSON ({e}); pass an object like '{{\"role\":\"admin\"}}' \
                     (quote it for the shell)"
            )))
            }
        },
    };
    for (name, value) in [("iss", &args.iss), ("sub", &args.sub), ("jti", &args.jti)] {
        if let Some(value) = value {
            claims.insert(name.into(), Value::String(value.clone()));
        }
    }
    match args.aud.as_slice() {
        [] => {}
        [one] => {
            claims.insert("aud".into(), Value::String(one.clone()));
        }
        several => {
            claims.insert("aud".into(), Value::from(several.to_vec()));
        }
    }
    if args.exp.is_some() || args.nbf.is_some() {
        let now = args.now.unwrap_or_else(jwt_core::time::now_unix);
        if let Some(exp) = args.exp {
            claims.insert("exp".into(), Value::from(after(now, exp, "--exp")?));
            claims.insert("iat".into(), Value::from(now));
        }
        if let Some(nbf) = args.nbf {
            claims.insert("nbf".into(), Value::from(after(now, nbf, "--nbf")?));
        }
    }
    Ok(claims)
}

/// `now + duration`, refusing overflow.
fn after(now: i64, duration: Duration, flag: &str) -> Result<i64, CliError> {
    i64::try_from(duration.as_secs())
        .ok()
        .and_then(|d| now.checked_add(d))
        .ok_or_else(|| {
            CliError::usage(format!(
                "{flag}: now ({now}) plus {}s is past the largest representable time; use a shorter duration",
                duration.as_secs()
            ))
        })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
