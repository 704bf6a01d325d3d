//! `jwtkit sign`: build claims from a payload and flags, and sign them.
//!
//! Flag names follow `jwt encode` (mike-engel/jwt-cli) and `step crypto jwt
//! sign` where the two agree: `--exp`, `--nbf`, `--iat` (a bare integer is a
//! Unix time in both), `--jti`, `--kid`, `--typ`, `--iss`, `--sub`, `--aud`
//! (repeatable, as in step); `--no-iat` is jwt-cli's, and `iat` defaults to
//! now as in both. `--algorithm`, `--issuer` and `--audience` (the names
//! `jwtkit serve` uses) are hidden aliases. jwt-cli's `-S/--secret VALUE`
//! is refused with the flags to use instead (see `KeySource::check`).

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_core::{Algorithm, Header, KeyFamily, Signer, SigningKey, DEFAULT_MAX_TOKEN_SIZE};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::duration::claim_time::{self, ClaimTime};
use crate::error::CliError;
use crate::keyfile::{self, KeySource, KeyUse};

/// The largest payload `--claims @FILE` or `--claims -` reads.
const MAX_PAYLOAD: u64 = 1024 * 1024;

/// The `--jti` value that asks for a random id.
const JTI_AUTO: &str = "auto";

/// How long `sign` waits to see whether a pipe on stdin carries data that
/// nothing reads (only when the pipe is still open and empty).
const STDIN_PEEK: Duration = Duration::from_millis(50);

/// Arguments of `jwtkit sign`.
#[derive(Debug, clap::Args)]
// Verify-only flags of the shared key source stay out of `sign --help`
// (`run` refuses them with a message saying why).
#[command(
    mut_arg("jwks_url", |a| a.hide(true)),
    mut_arg("issuer_url", |a| a.hide(true)),
    mut_arg("dangerous_allow_weak_key", |a| a.hide(true)),
    override_usage = "jwtkit sign [OPTIONS] <--key <FILE>|--secret-file <FILE>|--secret-env <VAR>|--store <URI>>",
)]
pub(crate) struct SignArgs {
    /// Signing algorithm (case-sensitive): HS256, HS384, HS512, RS256, RS384,
    /// RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA. Required with a
    /// PEM or DER key and a secret; a JWK that declares `alg` defaults to it;
    /// with --store it defaults to the active key's. Either way, a given
    /// --alg must match.
    #[arg(long, value_name = "ALG", alias = "algorithm")]
    alg: Option<String>,
    #[command(flatten)]
    key: KeySource,
    /// Header `kid` (default: the JWK's `kid`, else the key's RFC 7638
    /// thumbprint for asymmetric keys, else none); `--kid ''` omits kid.
    #[arg(long, value_name = "KID")]
    kid: Option<String>,
    /// Header `typ`, e.g. `at+jwt` (default `JWT`); `--typ ''` omits typ.
    #[arg(long, value_name = "TYP", default_value = "JWT")]
    typ: String,
    /// Another header parameter, NAME=VALUE; repeat for several. VALUE is
    /// read as JSON when it parses as JSON (`n=1` is a number, `x='{"a":1}'`
    /// an object, `s='"1"'` the string "1"), else taken as a string
    /// (`env=prod`). Refused: `alg` (--alg), `kid` (--kid), `typ` (--typ),
    /// `crit` and `b64` (verifiers refuse such tokens), and `jku`, `x5u`,
    /// `jwk`, `x5c` (a verifier must never take its key from the token:
    /// publish keys with `jwtkit keys jwks`).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    header: Vec<String>,
    /// The payload: a JSON object, `@FILE` to read it from FILE, or `-` to
    /// read it from stdin (up to 1 MiB). The flags below win over the
    /// payload's members of the same name (whose values are then ignored,
    /// whatever their type); `iat` defaults to now unless the payload or
    /// --iat gives it. Read with the verifier's strict rules: duplicate
    /// member names, names starting `$serde_json::private::`, nesting deeper
    /// than 32 levels, integers beyond 64 bits (they would not survive as
    /// written) and registered claims of the wrong type (`exp`/`nbf`/`iat`
    /// not a number, `iss`/`sub`/`jti` not a string, `aud` not a string or a
    /// non-empty array of strings) are refused.
    #[arg(long, value_name = "JSON|@FILE|-")]
    claims: Option<String>,
    /// The `iss` claim.
    #[arg(long, value_name = "S", alias = "issuer")]
    iss: Option<String>,
    /// The `sub` claim.
    #[arg(long, value_name = "S")]
    sub: Option<String>,
    /// The `aud` claim; repeat for several audiences (then `aud` is an array).
    #[arg(long, value_name = "S", alias = "audience")]
    aud: Vec<String>,
    /// The `exp` claim: an offset from now (15m, +1h, 30d; units s, m, h, d),
    /// a NumericDate (Unix seconds: 1716163200) or an RFC 3339 date-time
    /// (2026-12-01T00:00:00Z, 2026-12-01T02:00:00+02:00). A bare number is
    /// a time, never a lifetime. Must be after now and after `nbf`. With
    /// --store it defaults to, and may not be later than, now + the store's
    /// `max_token_lifetime`.
    #[arg(
        long,
        value_name = "TIME",
        value_parser = claim_time::parse_exp,
        allow_hyphen_values = true
    )]
    exp: Option<ClaimTime>,
    /// The `nbf` claim, in any form --exp takes; a negative offset is
    /// allowed (`--nbf -30s`: valid from 30 s ago, for verifiers whose clock
    /// is behind).
    #[arg(
        long,
        value_name = "TIME",
        value_parser = claim_time::parse,
        allow_hyphen_values = true
    )]
    nbf: Option<ClaimTime>,
    /// The `iat` claim, in any form --exp takes (`--iat -5m` allowed);
    /// default: now (or the payload's `iat`).
    #[arg(
        long,
        value_name = "TIME",
        value_parser = claim_time::parse,
        allow_hyphen_values = true,
        conflicts_with = "no_iat"
    )]
    iat: Option<ClaimTime>,
    /// Leave `iat` out of the token (also removes the payload's `iat`).
    #[arg(long)]
    no_iat: bool,
    /// The `jti` claim; `--jti auto` makes a random 128-bit id (22 base64url
    /// characters), e.g. for revocation lists.
    #[arg(long, value_name = "S")]
    jti: Option<String>,
    /// Use this time as "now" instead of the system clock: Unix seconds
    /// (1716163200) or RFC 3339 (2026-12-01T00:00:00Z).
    #[arg(
        long,
        value_name = "TIME",
        value_parser = crate::duration::claim_time::parse_now,
        allow_negative_numbers = true
    )]
    now: Option<i64>,
    /// Refuse to sign a token longer than BYTES [default: 65536, the limit
    /// `jwtkit verify` and jwtkit's verifiers apply unless told otherwise],
    /// so that sign never makes a token verify refuses as `too_large`.
    /// Raise it only with the verifiers' limit: `jwtkit verify --max-size`
    /// the same BYTES (a warning says so).
    #[arg(long, value_name = "BYTES")]
    max_size: Option<usize>,
}

impl SignArgs {
    /// The header `typ`: `None` for `--typ ''`.
    fn typ(&self) -> Option<&str> {
        Some(self.typ.as_str()).filter(|t| !t.is_empty())
    }
}

/// Runs `jwtkit sign`.
pub(crate) fn run(args: &SignArgs) -> Result<(), CliError> {
    args.key.check(KeyUse::Sign)?;
    if args.key.jwks_url.is_some() || !args.key.issuer_url.is_empty() {
        let flag = if args.key.jwks_url.is_some() {
            "--jwks-url"
        } else {
            "--issuer-url"
        };
        return Err(CliError::usage(format!(
            "{flag} only verifies (an identity provider's keys are public keys); sign with \
             --key, --secret-file, --secret-env or --store"
        )));
    }
    if args.key.dangerous_allow_weak_key {
        return Err(CliError::usage(
            "--dangerous-allow-weak-key is for `jwtkit verify` only: signing with a weak key \
             stays refused. Generate a strong key with `jwtkit keys generate --alg HS256` \
             (or the algorithm you sign with)",
        ));
    }
    if let (Some("-"), Some(flag)) = (args.claims.as_deref(), args.key.stdin_flag()) {
        return Err(CliError::usage(format!(
            "--claims - and {flag} both read stdin, which can hold only one of them; pass the \
             payload as --claims @FILE or the key as a file"
        )));
    }
    // Usage errors first, before anything is read.
    let params = HeaderParams::parse(&args.header)?;
    let now = args.now.unwrap_or_else(jwt_core::time::now_unix);
    let claims = build_claims(args, now)?;
    if args.claims.as_deref() != Some("-") && args.key.stdin_flag().is_none() {
        warn_unread_stdin();
    }
    if let Some(uri) = &args.key.store {
        return sign_with_store(args, uri, claims, now, &params);
    }
    check_validity(args, &claims, now)?;
    let wanted = args
        .alg
        .as_deref()
        .map(super::parse_algorithm)
        .transpose()?;
    let key = args.key.load()?.signing_key()?;
    let alg = signing_algorithm(wanted, &key)?;
    if key.family() != alg.family() {
        let err = keyfile::mismatch(key.family(), alg, KeyUse::Sign);
        return Err(match &args.key.key {
            Some(path) => err.context(keyfile::key_file(path)),
            None => err,
        });
    }
    let mut signer = Signer::new(key, alg)
        .and_then(|s| s.with_typ(args.typ()))
        .map_err(CliError::from_setup)?;
    if let Some(kid) = &args.kid {
        // An empty kid names no key (verifiers answer `unknown_key`): `''`
        // leaves it out, as `--typ ''` does for typ.
        let kid = Some(kid.as_str()).filter(|k| !k.is_empty());
        signer = signer.with_kid(kid).map_err(CliError::from_setup)?;
    }
    for (name, value) in params.iter() {
        signer = signer
            .with_header_param(name, value.clone())
            .map_err(|e| CliError::usage(format!("--header {name}: {}", setup_reason(e))))?;
    }
    warn_without_exp(&claims);
    // jwt-core checks the header and the claims with the verifier's rules.
    let token = signer.sign(&claims).map_err(CliError::from_setup)?;
    check_size(args, &token)?;
    crate::write_stdout(format!("{token}\n").as_bytes())
}

/// Refuses a token its verifiers would refuse as `too_large`: longer than
/// --max-size, by default jwt-core's [`DEFAULT_MAX_TOKEN_SIZE`], the limit
/// of `jwtkit verify` and of every jwtkit verifier left at its default.
/// A token over the default that --max-size lets through gets a warning:
/// its verifiers need the same raised limit.
fn check_size(args: &SignArgs, token: &str) -> Result<(), CliError> {
    let size = token.len();
    let limit = args.max_size.unwrap_or(DEFAULT_MAX_TOKEN_SIZE);
    if size > limit {
        let (which, fix) = match args.max_size {
            None => (
                " that verifiers apply by default",
                format!(
                    "make the claims smaller; or, only if every verifier raises its limit too \
                     (`jwtkit verify --max-size {size}`), pass --max-size {size}"
                ),
            ),
            Some(_) => (
                " set by --max-size",
                format!(
                    "make the claims smaller, or raise --max-size to {size} (and the verifiers' \
                     --max-size with it)"
                ),
            ),
        };
        return Err(CliError::usage(format!(
            "the token would be {size} bytes, over the limit of {limit} bytes{which}: \
             verifiers would refuse it (`too_large`), so it is not printed; {fix}"
        )));
    }
    if size > DEFAULT_MAX_TOKEN_SIZE {
        crate::diag(format_args!(
            "warning: the token is {size} bytes, over the {DEFAULT_MAX_TOKEN_SIZE}-byte limit \
             verifiers apply by default: `jwtkit verify` refuses it (`too_large`) unless given \
             the same --max-size (--max-size {size} or more), and so does any verifier left at \
             its default limit"
        ));
    }
    Ok(())
}

/// The algorithm to sign with: --alg, else the one the key declares (a
/// JWK's `alg`). A key that declares one signs with it only. Without
/// either, the key type is not used to guess: the error lists what fits.
fn signing_algorithm(wanted: Option<Algorithm>, key: &SigningKey) -> Result<Algorithm, CliError> {
    match (wanted, key.algorithm()) {
        (Some(alg), Some(own)) if alg != own => Err(CliError::usage(format!(
            "--alg {alg} does not match the key, which declares `alg` {own} (its JWK's `alg` \
             member) and signs with it only; drop --alg, or pass --alg {own}"
        ))),
        (Some(alg), _) | (None, Some(alg)) => Ok(alg),
        (None, None) => {
            let fits: Vec<&str> = keyfile::algorithms_for(key.family())
                .into_iter()
                .map(Algorithm::as_str)
                .collect();
            let others = match fits.as_slice() {
                [_, rest @ ..] if !rest.is_empty() => format!(" (or {})", rest.join(", ")),
                _ => String::new(),
            };
            let why = if key.family() == KeyFamily::Hmac {
                "a secret never does; an `oct` JWK may, with `alg`"
            } else {
                "a PEM or DER file never does; a JWK may, with `alg`"
            };
            Err(CliError::usage(format!(
                "--alg is required: {} declares no algorithm ({why}); pass the one your \
                 verifiers expect, for this key: --alg {}{others}",
                keyfile::a_key(key.family(), KeyUse::Sign),
                fits.first().copied().unwrap_or("ES256"),
            )))
        }
    }
}

/// The reason of a jwt-core configuration error, without its generic prefix.
fn setup_reason(err: jwt_core::Error) -> String {
    match err {
        jwt_core::Error::Config { reason } => reason,
        other => other.to_string(),
    }
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
    params: &HeaderParams,
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
        let store = super::store::open(uri, Some(now))?;
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
        check_validity(args, &claims, now)?;
        // The active key's `alg` and `kid` replace the template's.
        let mut template = Header::new(active.alg);
        template.typ = args.typ().map(|t| t.to_owned().into());
        params.apply(&mut template);
        let token = jwt_keys::KeyStoreExt::sign_token_with_header(&*store, &claims, &template)
            .await
            .map_err(CliError::from_keys)?;
        check_size(args, &token)?;
        crate::write_stdout(format!("{token}\n").as_bytes())
    })
}

/// Enforces the store's `max_token_lifetime` on `exp - now`, and sets `exp`
/// to its maximum when neither --exp nor the payload gives one.
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
    let Some(exp) = claims.get("exp").and_then(Value::as_f64) else {
        let exp = now.checked_add(max_secs).ok_or_else(|| {
            CliError::usage(format!(
                "now ({now}) plus the store's max_token_lifetime is past the largest \
                 representable time; check --now"
            ))
        })?;
        claims.insert("exp".into(), Value::from(exp));
        return Ok(());
    };
    let lifetime = exp - now as f64;
    if lifetime <= max_secs as f64 {
        return Ok(());
    }
    let max_display = crate::duration::display(max);
    Err(CliError::usage(match &args.exp {
        Some(flag) => format!(
            "--exp {flag} (exp {exp}, {lifetime}s after now {now}) is longer than the store \
             allows: {}; pass --exp {max_display} or less, or leave --exp out to get exactly that",
            policy()
        ),
        None => format!(
            "the `exp` claim ({exp}) is {lifetime}s after now ({now}), longer than the store \
             allows: {}; use --exp {max_display} or less instead",
            policy()
        ),
    }))
}

/// Refuses a token that could never be valid: `exp` not after now (it is
/// born expired) or not after `nbf` (it expires before it starts). Warns
/// about an `iat` in the future, which verifiers refuse until then.
fn check_validity(args: &SignArgs, claims: &Map<String, Value>, now: i64) -> Result<(), CliError> {
    let date = |name: &str| claims.get(name).and_then(Value::as_f64);
    if let Some(iat) = date("iat") {
        if iat > now as f64 {
            crate::diag(format_args!(
                "warning: iat ({iat}) is after now ({now}); verifiers (`jwtkit verify` included) \
                 refuse the token until then"
            ));
        }
    }
    let Some(exp) = date("exp") else {
        return Ok(());
    };
    if exp <= now as f64 {
        let hint = match &args.exp {
            // `--exp 3600` once meant one hour from now: say what it means today.
            Some(flag) if flag.is_numeric_date() => format!(
                "--exp {flag} is the NumericDate {flag} ({}), a Unix time, not a lifetime; for \
                 a lifetime write a unit, e.g. --exp {flag}s",
                super::format_time(exp as i64)
            ),
            Some(flag) => format!("--exp {flag} is not in the future; give e.g. --exp 15m"),
            None => "give a lifetime such as --exp 15m".to_owned(),
        };
        return Err(CliError::usage(format!(
            "the token would be expired when signed: exp ({exp}) is not after now ({now}); {hint}"
        )));
    }
    if let Some(nbf) = date("nbf") {
        if exp <= nbf {
            return Err(CliError::usage(format!(
                "the token would never be valid: exp ({exp}) is not after nbf ({nbf}), so it \
                 expires before it starts; make --exp later than --nbf"
            )));
        }
    }
    Ok(())
}

/// The claims: the payload (`--claims`), then each flag over it.
fn build_claims(args: &SignArgs, now: i64) -> Result<Map<String, Value>, CliError> {
    let mut claims = match &args.claims {
        None => Map::new(),
        Some(arg) => read_payload(arg, &overridden_claims(args))?,
    };
    for (name, value) in [("iss", &args.iss), ("sub", &args.sub)] {
        if let Some(value) = value {
            claims.insert(name.into(), Value::String(value.clone()));
        }
    }
    match args.jti.as_deref() {
        None => {}
        Some(JTI_AUTO) => {
            claims.insert("jti".into(), Value::String(random_id()?));
        }
        Some(jti) => {
            claims.insert("jti".into(), Value::String(jti.to_owned()));
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
    let resolve = |flag: &str, time: &ClaimTime| {
        time.resolve(now)
            .map(Value::from)
            .map_err(|e| CliError::usage(format!("{flag} {time}: {e}")))
    };
    if let Some(exp) = &args.exp {
        claims.insert("exp".into(), resolve("--exp", exp)?);
    }
    if let Some(nbf) = &args.nbf {
        claims.insert("nbf".into(), resolve("--nbf", nbf)?);
    }
    match &args.iat {
        Some(iat) => {
            claims.insert("iat".into(), resolve("--iat", iat)?);
        }
        None if args.no_iat => {
            claims.remove("iat");
        }
        None => {
            claims.entry("iat").or_insert_with(|| Value::from(now));
        }
    }
    Ok(claims)
}

/// The registered claims a flag sets, replacing the payload's member of
/// that name (`--no-iat` removes it).
fn overridden_claims(args: &SignArgs) -> Vec<&'static str> {
    [
        ("iss", args.iss.is_some()),
        ("sub", args.sub.is_some()),
        ("aud", !args.aud.is_empty()),
        ("jti", args.jti.is_some()),
        ("exp", args.exp.is_some()),
        ("nbf", args.nbf.is_some()),
        ("iat", args.iat.is_some() || args.no_iat),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// Reads `--claims`: inline JSON, `@FILE`, or `-` (stdin). Members that a
/// flag replaces (`overridden`) are not judged: the flag wins, so
/// `{"exp":"soon"}` with --exp 15m signs the flag's `exp`.
fn read_payload(arg: &str, overridden: &[&str]) -> Result<Map<String, Value>, CliError> {
    let (flag, bytes, hint): (String, Zeroizing<Vec<u8>>, &str) = if arg == "-" {
        (
            "--claims -".into(),
            keyfile::read_stdin("the claims", "--claims -")?,
            "stdin must hold one JSON object",
        )
    } else if let Some(path) = arg.strip_prefix('@') {
        let flag = format!("--claims @{path}");
        if path.is_empty() {
            return Err(CliError::usage(
                "--claims @ needs a file name: --claims @payload.json (or --claims - for stdin)",
            ));
        }
        let bytes = read_payload_file(path).map_err(|e| {
            CliError::usage(format!(
                "{flag}: cannot read {path}: {e}; check the path (or pipe the payload in with \
                 --claims -)"
            ))
        })?;
        (flag, bytes, "the file must hold one JSON object")
    } else {
        (
            "--claims".into(),
            Zeroizing::new(arg.as_bytes().to_vec()),
            "pass an object like '{\"role\":\"admin\"}' (quote it for the shell), \
             or --claims @FILE to read a file, --claims - to read stdin",
        )
    };
    // The verifier's strict parser, never `serde_json::from_str::<Value>`:
    // under serde_json's `raw_value` feature (which axum turns on) a `Value`
    // replaces `{"$serde_json::private::RawValue": "<json>"}` by the JSON
    // inside the string, so claims would change on the way to the signer.
    let refused = |e: jwt_core::Error| {
        let reason = match e {
            jwt_core::Error::Config { reason } => reason,
            other => other.to_string(),
        };
        CliError::usage(format!("{flag}: {reason}; {hint}"))
    };
    match jwt_core::parse_claims(&bytes) {
        Ok(claims) => Ok(claims),
        // Judged again without the members the flags replace; the
        // remaining text goes through the same strict parser.
        Err(e) => match without_members(&bytes, overridden) {
            Some(rest) => jwt_core::parse_claims(rest.as_bytes()).map_err(refused),
            None => Err(refused(e)),
        },
    }
}

/// The payload's top-level members, in order, each name decoded and each
/// value as written (so that the strict parser judges the very text).
struct Members(Vec<(String, Box<serde_json::value::RawValue>)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    members.push((name, map.next_value()?));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// The JSON object `payload` without its top-level members named in
/// `names`, or `None` when that changes nothing or cannot be done safely
/// (not an object, a name given twice): then the payload is judged whole.
fn without_members(payload: &[u8], names: &[&str]) -> Option<Zeroizing<String>> {
    let Members(members) = serde_json::from_slice(payload).ok()?;
    let mut seen = BTreeSet::new();
    if !members.iter().all(|(name, _)| seen.insert(name.as_str())) {
        return None;
    }
    if !members
        .iter()
        .any(|(name, _)| names.contains(&name.as_str()))
    {
        return None;
    }
    let mut text = Zeroizing::new(String::from("{"));
    for (name, value) in members.iter().filter(|(n, _)| !names.contains(&n.as_str())) {
        if text.len() > 1 {
            text.push(',');
        }
        text.push_str(&Value::String(name.clone()).to_string());
        text.push(':');
        text.push_str(value.get());
    }
    text.push('}');
    Some(text)
}

/// Reads a payload file, at most [`MAX_PAYLOAD`] bytes. Pipes are read too
/// (`--claims @<(make-claims)`): the user named them.
fn read_payload_file(path: &str) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::other("it is a directory"));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_PAYLOAD + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PAYLOAD {
        return Err(std::io::Error::other(format!(
            "it is larger than {MAX_PAYLOAD} bytes, more than any token's claims"
        )));
    }
    Ok(bytes)
}

/// A random 128-bit id, base64url (22 characters): what jwt-refresh uses
/// for its token ids.
fn random_id() -> Result<String, CliError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| {
        CliError::io("--jti auto: the system's random number generator failed; try again")
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The `--header NAME=VALUE` parameters, checked.
#[derive(Debug, Default)]
struct HeaderParams(Vec<(String, Value)>);

impl HeaderParams {
    fn parse(items: &[String]) -> Result<Self, CliError> {
        let mut params = Vec::with_capacity(items.len());
        let mut seen = BTreeSet::new();
        for item in items {
            let Some((name, text)) = item.split_once('=') else {
                return Err(CliError::usage(format!(
                    "--header {item}: expected NAME=VALUE, e.g. --header x5t#S256=… or \
                     --header 'ver=2'"
                )));
            };
            if name.is_empty() {
                return Err(CliError::usage(format!(
                    "--header {item}: the parameter name is empty; write NAME=VALUE"
                )));
            }
            if let Some(why) = refused_header(name) {
                return Err(CliError::usage(format!("--header {name}: {why}")));
            }
            if !seen.insert(name) {
                return Err(CliError::usage(format!(
                    "--header {name} is given twice; a header parameter has one value"
                )));
            }
            let value =
                header_value(text).map_err(|e| CliError::usage(format!("--header {name}: {e}")))?;
            if name == "cty" && !value.is_string() {
                return Err(CliError::usage(format!(
                    "--header cty: the content type must be a string, not {value}"
                )));
            }
            params.push((name.to_owned(), value));
        }
        Ok(HeaderParams(params))
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// Adds the parameters to `header` (`cty` has its own field).
    fn apply(&self, header: &mut Header) {
        for (name, value) in &self.0 {
            match (name.as_str(), value) {
                ("cty", Value::String(cty)) => header.cty = Some(cty.clone().into()),
                _ => {
                    header.extra.insert(name.clone(), value.clone());
                }
            }
        }
    }
}

/// Why `--header NAME=…` is refused, if it is.
fn refused_header(name: &str) -> Option<&'static str> {
    Some(match name {
        "alg" => "the algorithm comes from --alg (and must fit the key); it cannot be set here",
        "kid" => "use --kid to set the key id",
        "typ" => "use --typ to set the type (--typ '' leaves it out)",
        "crit" | "b64" => {
            "jwtkit implements no critical header extensions (RFC 7515 §4.1.11) or unencoded \
             payloads (RFC 7797), and verifiers refuse tokens that declare them"
        }
        "jku" | "x5u" | "jwk" | "x5c" => {
            "a verifier must never take its key from the token (RFC 8725 §3.10), so key-carrying \
             parameters are refused: publish the public key as a JWKS (`jwtkit keys jwks`) and \
             name it with --kid"
        }
        _ => return None,
    })
}

/// A `--header` value: JSON when it is JSON, else the text as a string.
fn header_value(text: &str) -> Result<Value, String> {
    // A syntax check that builds nothing (so serde_json's private member
    // names cannot act), then the verifier's strict parser on the value
    // as the only member of an object.
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        if text.trim_start().starts_with(['{', '[']) {
            return Err(format!(
                "the value starts like JSON but does not parse; fix it, or write a string as \
                 JSON ('\"{text}\"')"
            ));
        }
        return Ok(Value::String(text.to_owned()));
    }
    let wrapped = format!("{{\"value\":{text}}}");
    let mut object = jwt_core::parse_claims(wrapped.as_bytes()).map_err(|e| match e {
        jwt_core::Error::Config { reason } => reason,
        other => other.to_string(),
    })?;
    Ok(object.remove("value").unwrap_or(Value::Null))
}

/// Warns when stdin holds data that nothing reads: `cat payload.json |
/// jwtkit sign …` without `--claims -` would otherwise sign the flags'
/// claims alone, silently. A warning, not an error: a script's stdin may
/// belong to something else (a `while read` loop), and reading it to find
/// out would take that data away. Nothing is read here.
fn warn_unread_stdin() {
    if stdin_has_unread_data() {
        crate::diag(format_args!(
            "warning: stdin holds data that nothing reads: the claims come from the flags \
             (and --claims) only. To sign a payload piped in, pass --claims -; if stdin \
             belongs to something else (a `while read` loop), redirect it: </dev/null"
        ));
    }
}

/// Whether stdin has data waiting, found without reading it: a regular file
/// with bytes past the current offset, or (on Linux) a pipe or socket that
/// polls readable within [`STDIN_PEEK`]. A terminal, `/dev/null`, a closed
/// or empty pipe: no.
#[cfg(unix)]
fn stdin_has_unread_data() -> bool {
    use std::io::{IsTerminal, Seek};
    use std::os::fd::AsFd;

    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return false;
    }
    // A duplicate descriptor: the same open file (and offset), never read.
    let Ok(fd) = stdin.as_fd().try_clone_to_owned() else {
        return false;
    };
    let mut file = std::fs::File::from(fd);
    let Ok(meta) = file.metadata() else {
        return false;
    };
    if meta.is_file() {
        return file.stream_position().is_ok_and(|at| meta.len() > at);
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_fifo() || kind.is_socket() {
            return pipe_has_data(file);
        }
    }
    false
}

#[cfg(not(unix))]
fn stdin_has_unread_data() -> bool {
    false
}

/// Polls a pipe for readability without reading it. Linux's `poll`
/// reports "data" (`POLLIN`) apart from "writer gone, nothing left"
/// (`POLLHUP` alone), so an empty pipe that was closed is not mistaken for
/// one with data; elsewhere the two look alike, hence Linux only. The
/// descriptor's flags are left as they are.
#[cfg(target_os = "linux")]
fn pipe_has_data(file: std::fs::File) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(u32::try_from(STDIN_PEEK.as_nanos()).unwrap_or(u32::MAX)),
    };
    let mut fds = [PollFd::new(&file, PollFlags::IN)];
    match poll(&mut fds, Some(&timeout)) {
        Ok(n) if n > 0 => fds[0].revents().contains(PollFlags::IN),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_json_or_strings() {
        assert_eq!(header_value("1"), Ok(Value::from(1)));
        assert_eq!(header_value("prod"), Ok(Value::from("prod")));
        assert_eq!(header_value("\"1\""), Ok(Value::from("1")));
        assert_eq!(header_value("true"), Ok(Value::from(true)));
        assert_eq!(header_value(""), Ok(Value::from("")));
        assert_eq!(
            header_value(r#"{"a":[1,2]}"#),
            Ok(serde_json::json!({"a": [1, 2]}))
        );
        // Looks like more members once wrapped: stays one string.
        assert_eq!(
            header_value(r#"1, "other": 2"#),
            Ok(Value::from(r#"1, "other": 2"#))
        );
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"$serde_json::private::RawValue":"{}"}"#,
            "{not json",
            "[1,",
            "18446744073709551616",
        ] {
            assert!(header_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn members_replaced_by_flags_are_dropped_before_the_strict_parse() {
        let rest = without_members(
            br#"{"exp":"soon", "a":[1, 2],"\u0069at":{"x":1}}"#,
            &["exp", "iat"],
        )
        .unwrap();
        assert_eq!(rest.as_str(), r#"{"a":[1, 2]}"#);
        // Nothing to drop, a name twice, not an object: judged whole.
        assert!(without_members(br#"{"a":1}"#, &["exp"]).is_none());
        assert!(without_members(br#"{"exp":"x","exp":1}"#, &["exp"]).is_none());
        assert!(without_members(b"[1]", &["exp"]).is_none());
        assert!(without_members(b"{", &["exp"]).is_none());
        // What remains is judged by the strict parser.
        let rest = without_members(
            br#"{"exp":"soon","$serde_json::private::RawValue":"{}"}"#,
            &["exp"],
        )
        .unwrap();
        assert!(jwt_core::parse_claims(rest.as_bytes()).is_err());
    }

    #[test]
    fn random_ids_are_128_bits_of_base64url() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 16);
    }
}
