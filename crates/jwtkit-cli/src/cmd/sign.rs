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
    /// Claims as a JSON object; the flags below override its members. Read
    /// with the verifier's strict rules: duplicate member names, names
    /// starting `$serde_json::private::`, nesting deeper than 32 levels and
    /// registered claims of the wrong type (`exp`/`nbf`/`iat` not a number,
    /// `iss`/`sub`/`jti` not a string, `aud` not a string or a non-empty
    /// array of strings) are refused.
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
    /// Must be positive and longer than --nbf. With --store it defaults to,
    /// and may not exceed, the store's `max_token_lifetime`.
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
    let now = args.now.unwrap_or_else(jwt_core::time::now_unix);
    let claims = build_claims(args, now)?;
    if let Some(uri) = &args.key.store {
        return sign_with_store(args, uri, claims, now);
    }
    check_validity(&claims, now)?;
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
/// The store's `max_token_lifetime` bounds `exp` (and is its default): a
/// token outliving it would stop verifying when its key's grace ends.
fn sign_with_store(
    args: &SignArgs,
    uri: &str,
    mut claims: Map<String, Value>,
    now: i64,
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
        // The store decides at the same instant as the claims' `iat`/`exp`
        // (`--now` or the time read once above): one clock for the run.
        let clock = std::sync::Arc::new(jwt_core::ManualClock::new(now));
        let store = jwt_keys::open_store_with_clock(uri, clock).map_err(CliError::from_keys)?;
        let active = store.active().await.map_err(CliError::from_keys)?;
        if let Some(alg) = wanted {
            if alg != active.alg {
                return Err(CliError::config(format!(
                    "the store's active key `{}` signs {}, not {alg}; drop --alg or pass --alg {}",
                    active.kid, active.alg, active.alg
                )));
            }
        }
        let policy = store.policy().await.map_err(CliError::from_keys)?;
        apply_max_lifetime(args, &mut claims, now, policy.max_token_lifetime())?;
        check_validity(&claims, now)?;
        let token = jwt_keys::KeyStoreExt::sign_token(&*store, &claims, Some(&args.typ))
            .await
            .map_err(CliError::from_keys)?;
        crate::write_stdout(format!("{token}\n").as_bytes())
    })
}

/// Enforces the store's `max_token_lifetime` on `exp - now`, and sets `exp`
/// (and `iat`) to its maximum when neither --exp nor the claims give one.
fn apply_max_lifetime(
    args: &SignArgs,
    claims: &mut Map<String, Value>,
    now: i64,
    max: Duration,
) -> Result<(), CliError> {
    let max_secs = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
    let policy = || {
        format!(
            "the store's rotation policy sets max_token_lifetime = {} ({}s), and a token may \
             live no longer (its key verifies only for verify_grace after it stops signing)",
            crate::duration::display(max),
            max.as_secs()
        )
    };
    // A token must expire within `max` of now, so it cannot start later than
    // that: say so, rather than sending the user between --nbf and --exp.
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_f64) {
        if nbf - now as f64 >= max_secs as f64 {
            return Err(CliError::usage(format!(
                "the token would start (nbf {nbf}) {}s after now ({now}), but {}; so it could \
                 never be valid. Use an --nbf under {}",
                nbf - now as f64,
                policy(),
                crate::duration::display(max)
            )));
        }
    }
    if let Some(exp) = args.exp {
        if exp > max {
            return Err(CliError::usage(format!(
                "--exp {} is longer than the store allows: {}; pass --exp {} or less, or leave \
                 --exp out to get exactly that",
                crate::duration::display(exp),
                policy(),
                crate::duration::display(max)
            )));
        }
        return Ok(());
    }
    match claims.get("exp").and_then(Value::as_f64) {
        Some(exp) => {
            let lifetime = exp - now as f64;
            if lifetime > max_secs as f64 {
                return Err(CliError::usage(format!(
                    "the `exp` claim ({exp}) is {lifetime}s after now ({now}), longer than the \
                     store allows: {}; use --exp {} or less instead",
                    policy(),
                    crate::duration::display(max)
                )));
            }
        }
        None => {
            claims.insert("exp".into(), Value::from(after(now, max, "--exp")?));
            claims.entry("iat").or_insert_with(|| Value::from(now));
        }
    }
    Ok(())
}

/// Refuses a token that could never be valid: `exp` not after now (it is
/// born expired) or not after `nbf` (it expires before it starts).
fn check_validity(claims: &Map<String, Value>, now: i64) -> Result<(), CliError> {
    let date = |name: &str| claims.get(name).and_then(Value::as_f64);
    let Some(exp) = date("exp") else {
        return Ok(());
    };
    if exp <= now as f64 {
        return Err(CliError::usage(format!(
            "the token would be expired when signed: exp ({exp}) is not after now ({now}); \
             give a positive lifetime such as --exp 15m"
        )));
    }
    if let Some(nbf) = date("nbf") {
        if exp <= nbf {
            return Err(CliError::usage(format!(
                "the token would never be valid: exp ({exp}) is not after nbf ({nbf}), so it \
                 expires before it starts; make --exp longer than --nbf"
            )));
        }
    }
    Ok(())
}

fn build_claims(args: &SignArgs, now: i64) -> Result<Map<String, Value>, CliError> {
    // The verifier's strict parser, never `serde_json::from_str::<Value>`:
    // under serde_json's `raw_value` feature (which axum turns on) a `Value`
    // replaces `{"$serde_json::private::RawValue": "<json>"}` by the JSON
    // inside the string, so claims would change on the way to the signer.
    let mut claims = match &args.claims {
        None => Map::new(),
        Some(text) => jwt_core::parse_claims(text.as_bytes()).map_err(|e| {
            let reason = match e {
                jwt_core::Error::Config { reason } => reason,
                other => other.to_string(),
            };
            CliError::usage(format!(
                "--claims: {reason}; pass an object like '{{\"role\":\"admin\"}}' (quote it \
                 for the shell)"
            ))
        })?,
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
