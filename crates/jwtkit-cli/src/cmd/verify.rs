//! `jwtkit verify`: check a token's signature and claims.
//!
//! Every key source (a key file, a JWKS file, `--store`, `--jwks-url`)
//! goes through one verifier, [`jwt_keys::Verifier`] (a file is a fixed key
//! set), and one rule decides which algorithms a key verifies with,
//! [`jwt_keys::verification_algorithms`]: the same as the token service's.

use std::sync::Arc;
use std::time::Duration;

use jwt_core::{
    Algorithm, Header, Jwks, ManualClock, Validation, VerifyingKey, DEFAULT_MAX_TOKEN_SIZE,
};
use jwt_keys::{verification_algorithms, AlgorithmRule};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::CliError;
use crate::keyfile::{self, algorithms_for, KeySource, KeyUse, VerificationKeys};

/// What `--alg` means with each key source: the rule of [`key_source`] and
/// of [`jwt_keys::verification_algorithms`], stated once for `--help`. The
/// test `verify_hints::help_states_what_alg_does_per_key_source` runs each
/// case, so this text and the code cannot drift apart.
const ALGORITHMS_BY_SOURCE: &str = "\
--alg by key source (the key type is never used to guess an algorithm):
  --key PEM or DER file, --secret-file, --secret-env
      The key names no algorithm: --alg is required (exit 2 `usage` without it).
      When no listed algorithm fits the key's type, it is refused (exit 2
      `invalid_key`).
  --key JWK file
      A JWK with `alg` verifies with that algorithm only: --alg may be left out;
      if given it must include it (exit 2 `usage` otherwise). A JWK without
      `alg` is like a PEM file.
  --key JWKS file, --jwks-url URL
      The entry is picked by the token's `kid`. An entry with `alg` verifies
      with that algorithm only: a token using another is rejected (exit 1
      `invalid_algorithm`), whatever --alg lists. An entry without `alg` needs
      --alg (exit 2 `usage`; a JWKS file none of whose entries has `alg` is
      refused before the token is read). With --alg, a token whose `alg` is not
      listed is rejected (exit 1 `invalid_algorithm`); a JWKS file with no entry
      that can verify any listed algorithm is refused (exit 2 `invalid_key`).
  --store URI
      Every key is bound to its record's algorithm: --alg is not needed. With
      --alg, a token whose `alg` is not listed is rejected (exit 1
      `invalid_algorithm`).
  --issuer-url URL (repeatable)
      The token's `iss` picks the issuer; its entry is picked by `kid` from that
      issuer's keys only. Without --alg, an entry verifies with its own `alg`,
      within the algorithms the issuer's metadata declares (an entry without
      `alg`: the declared ones of its type); with --alg, the listed ones
      replace the metadata's. --aud, --alg, --typ, --leeway and --require apply
      to every issuer given (the library's `Issuer` takes them per issuer).";

/// Arguments of `jwtkit verify`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = ALGORITHMS_BY_SOURCE,
    override_usage = "jwtkit verify [OPTIONS] <--key <FILE>|--secret-file <FILE>|--secret-env <VAR>|--store <URI>|--jwks-url <URL>|--issuer-url <URL>...> <TOKEN>",
)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    key: KeySource,
    /// Allowed algorithm; repeat, or separate with commas (`--alg RS256,PS256`;
    /// spaces around a name are ignored). Whether it is needed depends on
    /// the key source (see below).
    #[arg(long, value_name = "ALG", value_delimiter = ',', alias = "algorithm")]
    alg: Vec<String>,
    /// Accepted issuer; repeat to accept any of several (never split at
    /// commas: an issuer is a URI, which may hold one). Not with
    /// --issuer-url, which already requires `iss` to be one of its values.
    #[arg(long, value_name = "S", alias = "issuer")]
    iss: Vec<String>,
    /// With --jwks-url or --issuer-url: also trust the CA certificates in
    /// this PEM file for https (a provider whose certificate a private CA
    /// signed: a self-hosted Vault, OpenBao or Keycloak). The built-in web
    /// roots stay trusted; certificates are always checked.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<std::path::PathBuf>,
    /// Accepted audience; repeat to accept any of several (never split at
    /// commas: an audience may be a URI holding one). Without it, a token
    /// carrying `aud` is refused.
    #[arg(long, value_name = "S", alias = "audience")]
    aud: Vec<String>,
    /// Required subject.
    #[arg(long, value_name = "S")]
    sub: Option<String>,
    /// Required header `typ`, e.g. `at+jwt`.
    #[arg(long, value_name = "T")]
    typ: Option<String>,
    /// Claims that must be present: repeat, or separate with commas
    /// (`--require exp,sub,jti`; spaces around a name are ignored, so a claim
    /// name holding a comma or starting or ending with a space cannot be required).
    #[arg(long, value_name = "CLAIM", value_delimiter = ',')]
    require: Vec<String>,
    /// Accept tokens without `exp` (it is still checked when present); by
    /// default a token without `exp` is refused (`missing_claim`).
    #[arg(long)]
    optional_exp: bool,
    /// Clock-skew tolerance for exp/nbf/iat (10s, 15m, …; default 0; 30s
    /// covers ordinary clock drift between issuer and verifier).
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    leeway: Option<Duration>,
    /// Refuse tokens longer than BYTES (default 65536).
    #[arg(long, value_name = "BYTES")]
    max_size: Option<usize>,
    /// Use this time as "now" instead of the system clock: Unix seconds
    /// (1716163200) or RFC 3339 (2026-12-01T00:00:00Z).
    #[arg(
        long,
        value_name = "TIME",
        value_parser = crate::duration::claim_time::parse_now,
        allow_negative_numbers = true
    )]
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

/// Whether `--dangerous-allow-weak-key` would let a key refused as weak
/// verify, for the hint of a `weak_key` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WeakKeyFlag {
    /// It would: a short HMAC secret, or a 1024-2047-bit RSA key with RS256
    /// or RS512.
    Helps,
    /// It would not: an RSA key under 1024 bits, or a 1024-2047-bit one
    /// with another algorithm.
    DoesNotHelp,
    /// The keys are not known before the token is checked (`--jwks-url`).
    Unknown,
    /// The flag does not apply (`--store`, where it is refused).
    NotOffered,
}

/// What [`WeakKeyFlag`] applies to `keys` with `algorithms`.
fn weak_key_flag<'a>(
    keys: impl IntoIterator<Item = &'a VerifyingKey>,
    algorithms: &[Algorithm],
) -> WeakKeyFlag {
    let mut weak = false;
    for key in keys {
        for &alg in algorithms {
            if matches!(key.check_usable(alg), Err(e) if e.kind() == jwt_core::ErrorKind::WeakKey) {
                weak = true;
                if jwt_core::dangerous::check_usable_allowing_weak_keys(key, alg).is_ok() {
                    return WeakKeyFlag::Helps;
                }
            }
        }
    }
    if weak {
        WeakKeyFlag::DoesNotHelp
    } else {
        WeakKeyFlag::Unknown
    }
}

/// A weak key refused when verifying: say whether, and how, tokens a
/// legacy issuer signed with it can be checked anyway (signing with such a
/// key stays refused). Nothing is added when the flag was given: the key is
/// then too weak even for it, and jwt-core's message says why.
fn weak_key_hint(err: CliError, args: &VerifyArgs, flag: WeakKeyFlag) -> CliError {
    if err.kind() != "weak_key" || args.key.dangerous_allow_weak_key {
        return err;
    }
    let hint = match flag {
        WeakKeyFlag::Helps => {
            "to check tokens a legacy issuer signed with it, pass --dangerous-allow-weak-key \
             (verify only; it warns every time)"
        }
        WeakKeyFlag::DoesNotHelp => {
            "--dangerous-allow-weak-key cannot help here: it accepts only HMAC secrets shorter \
             than the hash and 1024-2047-bit RSA keys with RS256 or RS512"
        }
        WeakKeyFlag::Unknown => {
            "if a legacy issuer signs with an HMAC secret shorter than the hash or a \
             1024-2047-bit RSA key with RS256 or RS512, --dangerous-allow-weak-key accepts it \
             (verify only; it warns every time)"
        }
        WeakKeyFlag::NotOffered => return err,
    };
    let message = format!("{}; {hint}", err.message());
    err.with_message(message)
}

/// Runs `jwtkit verify`.
pub(crate) fn run(args: &VerifyArgs) -> Result<(), CliError> {
    args.key.check(KeyUse::Verify)?;
    if args.key.dangerous_allow_weak_key && args.key.store.is_some() {
        // A store's keys are signing keys, which are never weak (an `env:`
        // store refuses a short secret when it opens): the flag would only
        // print its warning and change nothing.
        return Err(CliError::usage(
            "--dangerous-allow-weak-key does not apply to --store: a key store holds signing \
             keys, and every store refuses a weak one (`env:` a short secret) when it opens; \
             to check legacy tokens signed with a weak secret, pass that secret with \
             --secret-env VAR or --secret-file FILE and --dangerous-allow-weak-key",
        ));
    }
    let algorithms = super::parse_algorithms("--alg", &args.alg)?;
    let required = super::list_items("--require", &args.require, "exp,sub,jti")?;
    if args.token == "-" {
        if let Some(flag) = args.key.stdin_flag() {
            return Err(CliError::usage(format!(
                "{flag} and the token `-` both read stdin, which can hold only one of them; \
                 pass the token as an argument or the key as a file"
            )));
        }
    }
    let max_size = args.max_size.unwrap_or(DEFAULT_MAX_TOKEN_SIZE);
    if args.ca_cert.is_some() && args.key.jwks_url.is_none() && args.key.issuer_url.is_empty() {
        return Err(CliError::usage(
            "--ca-cert applies to keys fetched over https (--jwks-url, --issuer-url); the other \
             key sources read no certificate",
        ));
    }
    if !args.key.issuer_url.is_empty() {
        return verify_by_issuer(args, &algorithms, &required, max_size);
    }
    let Source {
        source,
        algorithms,
        rule,
        jwks,
        weak_key_flag,
    } = key_source(args, algorithms)?;
    let token = super::read_token(&args.token, max_size)?;
    crate::block_on(async {
        let validation = build_validation(args, &algorithms, &required);
        let mut builder = jwt_keys::Verifier::builder(source, validation)
            .algorithms(rule)
            .cache(cache_options(args.ca_cert.as_deref())?);
        if let Some(now) = args.now {
            builder = builder.clock(Arc::new(ManualClock::new(now)));
        }
        let verifier = builder
            .build()
            .map_err(|e| jwks_url_context(args, setup_error(e)))?;
        let data = verifier
            .verify::<Map<String, Value>>(&token)
            .await
            .map_err(|e| {
                let seen = Seen {
                    token: &token,
                    kids: verifier.cached_kids(),
                    jwks: jwks.as_ref(),
                };
                jwks_url_context(args, verification_error(args, &seen, e))
            })?;
        print_valid(args, &data.header, &data.claims)
    })
    .map_err(|e| weak_key_hint(e, args, weak_key_flag))
}

/// `--issuer-url`: one verifier over the given issuers, each found by
/// discovery; the token is checked with the keys of the issuer its `iss`
/// names, and with that issuer's settings (here the same flags for all).
fn verify_by_issuer(
    args: &VerifyArgs,
    algorithms: &[Algorithm],
    required: &[&str],
    max_size: usize,
) -> Result<(), CliError> {
    if !args.iss.is_empty() {
        return Err(CliError::usage(
            "--iss does not go with --issuer-url: the token's `iss` must already be one of the \
             --issuer-url values, exactly; to accept another issuer, add --issuer-url for it",
        ));
    }
    if args.optional_exp {
        return Err(CliError::usage(
            "--optional-exp does not go with --issuer-url: tokens from an identity provider \
             always carry `exp`, and one without it is refused",
        ));
    }
    if args.key.dangerous_allow_weak_key {
        return Err(CliError::usage(
            "--dangerous-allow-weak-key does not apply to --issuer-url: an identity provider \
             signs with keys it publishes for everyone, and a token signed with one too weak \
             to trust (an RSA key under 2048 bits) is refused (`weak_key`, exit 1) until the \
             provider rotates to a strong key",
        ));
    }
    for url in &args.key.issuer_url {
        check_issuer_url("--issuer-url", url)?;
    }
    let token = super::read_token(&args.token, max_size)?;
    let options = cache_options(args.ca_cert.as_deref())?;
    crate::block_on(async {
        let mut builder = jwt_keys::MultiIssuerVerifier::builder()
            .max_token_size(max_size)
            .cache(options);
        for url in &args.key.issuer_url {
            let mut issuer =
                jwt_keys::Issuer::discover(url.clone()).leeway(args.leeway.unwrap_or_default());
            for aud in &args.aud {
                issuer = issuer.audience(aud.clone());
            }
            if !algorithms.is_empty() {
                issuer = issuer.algorithms(algorithms.iter().copied());
            }
            if let Some(typ) = &args.typ {
                issuer = issuer.typ(typ.clone());
            }
            for claim in required {
                issuer = issuer.require(*claim);
            }
            builder = builder.issuer(issuer);
        }
        if let Some(now) = args.now {
            builder = builder.clock(Arc::new(ManualClock::new(now)));
        }
        let verifier = builder
            .build()
            .map_err(|e| setup_error(e).context("--issuer-url"))?;
        let data = verifier
            .verify::<Map<String, Value>>(&token)
            .await
            .map_err(|e| issuer_error(args, &verifier, &token, e))?;
        if let Some(sub) = &args.sub {
            let found = data.claims.get("sub");
            if found.and_then(Value::as_str) != Some(sub.as_str()) {
                return Err(CliError::rejected(
                    "invalid_subject",
                    match found {
                        Some(v) => {
                            format!("invalid subject: the token's `sub` is {v}, not {sub:?}")
                        }
                        None => {
                            format!("invalid subject: the token has no `sub`; expected {sub:?}")
                        }
                    },
                ));
            }
        }
        print_valid(args, &data.header, &data.claims)
    })
}

/// The cache options of a fetched key source: the defaults, with the CA
/// certificates of `--ca-cert` trusted too.
pub(crate) fn cache_options(
    ca_cert: Option<&std::path::Path>,
) -> Result<jwt_keys::CacheOptions, CliError> {
    let options = jwt_keys::CacheOptions::default();
    let Some(path) = ca_cert else {
        return Ok(options);
    };
    // A CA bundle is public, but bounded like any input file.
    const MAX_CA_FILE: u64 = 4 << 20;
    let shown = path.display();
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::usage(format!("--ca-cert {shown}: cannot open it: {e}")))?;
    let mut pem = Vec::new();
    use std::io::Read as _;
    file.take(MAX_CA_FILE + 1)
        .read_to_end(&mut pem)
        .map_err(|e| CliError::usage(format!("--ca-cert {shown}: cannot read it: {e}")))?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(CliError::usage(format!(
            "--ca-cert {shown}: over 4 MiB, too large for a CA bundle; give the PEM file of the \
             CA that signed the provider's certificate"
        )));
    }
    options
        .with_root_certificates_pem(&pem)
        .map_err(|e| CliError::from_keys(e).context(format_args!("--ca-cert {shown}")))
}

/// Refuses, before any request, an issuer URL that is really the address
/// of its metadata or key set (a common slip: the issuer is the tokens'
/// `iss`, and the well-known documents are found from it).
pub(crate) fn check_issuer_url(flag: &str, url: &str) -> Result<(), CliError> {
    let Some(at) = url.find("/.well-known/") else {
        return Ok(());
    };
    let issuer = &url[..at];
    let what = if url[at..].starts_with("/.well-known/openid-configuration")
        || url[at..].starts_with("/.well-known/oauth-authorization-server")
    {
        "the address of the issuer's metadata"
    } else {
        "the address of a well-known document (a JWKS?)"
    };
    Err(CliError::usage(format!(
        "{flag} {url} is {what}, not an issuer: give the issuer exactly as its tokens' `iss` \
         spell it (here probably {issuer}; `jwtkit inspect TOKEN` shows the token's `iss`), and \
         jwtkit finds the metadata and keys from it; for a bare JWKS URL, use `jwtkit verify \
         --jwks-url`"
    )))
}

/// For an `invalid_issuer` of `--issuer-url`: the configured value the
/// token's `iss` nearly matches (a trailing slash, letter case), if any.
fn near_miss<'a>(iss: &str, configured: &'a [String]) -> Option<&'a str> {
    let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    configured
        .iter()
        .find(|c| c.as_str() != iss && norm(c) == norm(iss))
        .map(String::as_str)
}

/// A failure of an `--issuer-url` verification: setup problems (a refused
/// URL, metadata that names another issuer, a provider that cannot be
/// reached) name the flag and exit 2; a rejected token exits 1, and an
/// `unknown_key` lists the keys of the issuer the token names.
fn issuer_error(
    args: &VerifyArgs,
    verifier: &jwt_keys::MultiIssuerVerifier,
    token: &str,
    err: jwt_keys::Error,
) -> CliError {
    let claims = jwt_core::dangerous::insecure_decode(token)
        .ok()
        .map(|t| t.claims);
    let iss_value = claims.as_ref().and_then(|c| c.get("iss"));
    let iss = iss_value.and_then(Value::as_str).map(str::to_owned);
    // How the token's `iss` is shown when it is not a string.
    let not_string = iss_value.filter(|v| !v.is_string()).map(|v| {
        format!(
            "not a string but {}",
            match v {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
                Value::String(_) => "a string",
            }
        )
    });
    match err {
        jwt_keys::Error::Core(jwt_core::Error::UnknownKey { kid: Some(kid) }) => {
            let kids = iss
                .as_deref()
                .and_then(|i| verifier.verifier(i))
                .map(jwt_keys::Verifier::cached_kids)
                .unwrap_or_default();
            let issuer = iss.unwrap_or_default();
            let holds = if kids.is_empty() {
                "no key that can verify".to_owned()
            } else {
                let shown: Vec<String> = kids
                    .iter()
                    .take(KIDS_SHOWN)
                    .map(|k| format!("{k:?}"))
                    .collect();
                format!("kids {}", shown.join(", "))
            };
            CliError::rejected(
                "unknown_key",
                format!(
                    "unknown key: the token names kid {kid:?}, but the issuer it names \
                     ({issuer:?}) publishes {holds} (its key set was fetched just now): the \
                     key was rotated out by the issuer (get a new token), or the token was \
                     signed by a key of another issuer, which never verifies this issuer's \
                     tokens"
                ),
            )
        }
        jwt_keys::Error::Core(jwt_core::Error::InvalidIssuer { .. }) => {
            let configured = &args.key.issuer_url;
            let listed = configured
                .iter()
                .map(|u| format!("{u:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            let fix = match iss
                .as_deref()
                .and_then(|i| near_miss(i, configured).map(|c| (i, c)))
            {
                Some((i, c)) => format!(
                    "the token's issuer differs from --issuer-url {c:?} only in a trailing slash \
                     or letter case, and issuers are compared exactly: if this is the provider \
                     you mean, pass --issuer-url {i:?}"
                ),
                None => "if this service accepts that issuer's tokens, add --issuer-url with \
                         its exact `iss`; otherwise the token is not for this service"
                    .to_owned(),
            };
            CliError::rejected(
                "invalid_issuer",
                format!(
                    "invalid issuer: the token's `iss` is {}, which is not one of the \
                     --issuer-url values ({listed}); {fix}",
                    iss.map_or_else(
                        || not_string.unwrap_or_else(|| "missing".to_owned()),
                        |i| format!("{i:?}")
                    ),
                ),
            )
        }
        // A provider's key too weak to trust: the token is refused (exit 1);
        // no flag of this command makes it acceptable.
        jwt_keys::Error::Core(jwt_core::Error::WeakKey { reason }) => CliError::rejected(
            "weak_key",
            format!(
                "weak key: the key the token names, published by {}, is too weak to trust \
                 ({reason}); tokens signed with it are refused until the provider rotates to a \
                 strong key",
                iss.map_or_else(|| "its issuer".to_owned(), |i| format!("{i:?}"))
            ),
        ),
        jwt_keys::Error::Core(e) => {
            let seen = Seen {
                token,
                kids: Vec::new(),
                jwks: None,
            };
            verification_error(args, &seen, jwt_keys::Error::Core(e))
        }
        other => {
            let err = CliError::from_keys(other);
            if err.exit_code() == crate::error::EXIT_REJECTED {
                err
            } else {
                err.context("--issuer-url")
            }
        }
    }
}

/// What a failed verification had at hand, for a message that names the
/// fix: the token as given, the kids of the keys that verify, and the
/// JWKS file's entries.
struct Seen<'a> {
    token: &'a str,
    kids: Vec<String>,
    jwks: Option<&'a Jwks>,
}

/// Names `--jwks-url` in the errors that come from it: a URL the verifier
/// refuses, a fetch that failed or brought something else than a JWK Set.
/// Both are setup problems (exit 2), never a verdict on the token.
fn jwks_url_context(args: &VerifyArgs, err: CliError) -> CliError {
    if args.key.jwks_url.is_none() {
        return err;
    }
    match err.kind() {
        "invalid_uri" | "fetch" | "stale_keys" => err.context("--jwks-url"),
        _ => err,
    }
}

/// Where the verifier's keys come from, and how algorithms are chosen.
struct Source {
    source: jwt_keys::KeySource,
    /// The validation's algorithms.
    algorithms: Vec<Algorithm>,
    /// How they apply to the keys.
    rule: AlgorithmRule,
    /// A JWKS file's document, for messages about its entries.
    jwks: Option<Jwks>,
    /// Whether `--dangerous-allow-weak-key` would help a key refused as weak.
    weak_key_flag: WeakKeyFlag,
}

/// The key source, the validation's algorithms and the rule that applies
/// them. With `--alg`, the list is the caller's
/// ([`AlgorithmRule::Listed`]); without it, the keys say
/// ([`AlgorithmRule::KeysOnly`], bounded by nothing).
fn key_source(args: &VerifyArgs, algorithms: Vec<Algorithm>) -> Result<Source, CliError> {
    let (algorithms, rule) = if algorithms.is_empty() {
        (Algorithm::ALL.to_vec(), AlgorithmRule::KeysOnly)
    } else {
        (algorithms, AlgorithmRule::Listed)
    };
    let source = match (&args.key.store, &args.key.jwks_url) {
        (Some(uri), _) => {
            // `--now` decides the key states too, so verify and `store audit` agree.
            let store = super::store::open(uri, args.now)?;
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
                let weak_key_flag = weak_key_flag(set.keys().map(|k| &**k), &algorithms);
                return Ok(Source {
                    source: jwt_keys::KeySource::Jwks(jwks.clone()),
                    algorithms,
                    rule,
                    jwks: Some(jwks),
                    weak_key_flag,
                });
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
                        if let (true, None, Some(&alg)) =
                            (fits.is_empty(), key.algorithm(), algorithms.first())
                        {
                            // A key of another type than every listed
                            // algorithm needs (`invalid_key`).
                            return Err(keyfile::mismatch(key.family(), alg, KeyUse::Verify));
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
                let weak_key_flag = weak_key_flag([&*key], &algorithms);
                return Ok(Source {
                    source: jwt_keys::KeySource::Key(key),
                    algorithms,
                    rule: AlgorithmRule::Listed,
                    jwks: None,
                    weak_key_flag,
                });
            }
        },
    };
    let weak_key_flag = if args.key.store.is_some() {
        WeakKeyFlag::NotOffered
    } else {
        WeakKeyFlag::Unknown
    };
    Ok(Source {
        source,
        algorithms,
        rule,
        jwks: None,
        weak_key_flag,
    })
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
/// checked by the build). A rejection that a flag of this command would
/// have accepted names that flag.
fn verification_error(args: &VerifyArgs, seen: &Seen<'_>, err: jwt_keys::Error) -> CliError {
    match err {
        jwt_keys::Error::Core(jwt_core::Error::Config { reason }) => {
            alg_required(&reason, &candidates(seen))
        }
        jwt_keys::Error::Core(e) => {
            let message = flag_message(args, seen, &e);
            let err = CliError::from_verification(e);
            match message {
                Some(message) => err.with_message(message),
                None => err,
            }
        }
        other => CliError::from_keys(other),
    }
}

/// The message of a rejection that says more than jwt-core can: a pasted
/// token's slip (`Bearer `, quotes, whitespace); `--leeway 30s` for an
/// expired or immature token checked without leeway; for `unknown_key`,
/// the kids the keys hold; and, naming the flag that would have accepted
/// it, a token without `exp` (PyJWT accepts those unless told to require
/// `exp`) or a token for an audience when no `--aud` was given.
fn flag_message(args: &VerifyArgs, seen: &Seen<'_>, err: &jwt_core::Error) -> Option<String> {
    let token = seen.token;
    // The default leeway is 0: a token that expired (or starts) seconds
    // away from now is often only the clocks disagreeing.
    let no_leeway = args.leeway.is_none_or(|l| l.is_zero());
    match err {
        jwt_core::Error::Malformed { .. } => {
            super::paste_hint(token).map(|hint| format!("{err}; {hint}"))
        }
        jwt_core::Error::Expired { .. } if no_leeway => Some(format!(
            "{err}; if it expired only seconds ago, the clocks of issuer and verifier may \
             disagree: --leeway 30s tolerates that much skew"
        )),
        jwt_core::Error::Immature { .. } if no_leeway => Some(format!(
            "{err}; for a few seconds of clock skew between issuer and verifier, pass \
             --leeway 30s"
        )),
        jwt_core::Error::UnknownKey { kid: Some(kid) } => {
            Some(unknown_key_message(args, seen, kid))
        }
        jwt_core::Error::MissingClaim { claim }
            if claim == "exp"
                && !args.optional_exp
                && args.key.issuer_url.is_empty()
                && !args.require.iter().any(|c| c.trim() == "exp") =>
        {
            Some(format!(
                "{err}; pass --optional-exp to accept tokens without `exp` (one that has `exp` \
                 is still checked); better, have the issuer set `exp`"
            ))
        }
        jwt_core::Error::InvalidAudience { .. } if args.aud.is_empty() => {
            // The audiences come from the token (escaped on output): they
            // say what to pass, not whether to trust it.
            let audiences = jwt_core::dangerous::insecure_decode(token)
                .ok()
                .and_then(|t| t.claims.get("aud").cloned())
                .map(|aud| match aud {
                    Value::String(one) => vec![one],
                    Value::Array(many) => many
                        .into_iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default();
            let mut listed = audiences
                .iter()
                .take(5)
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            if audiences.len() > 5 {
                listed.push_str(", …");
            }
            Some(format!(
                "invalid audience: the token is for {listed} (`aud`) and no --aud was given; pass \
                 --aud <one of the token's audiences> if this service is one of them (a token for \
                 another service must be refused)"
            ))
        }
        _ => None,
    }
}

fn alg_required(reason: &str, candidates: &str) -> CliError {
    CliError::usage(format!(
        "--alg is required: {reason} (accepting whatever the token claims is the classic JWT \
         vulnerability){candidates}"
    ))
}

/// The algorithms that fit the key a token names, for the `--alg is
/// required` message: from the JWKS file's entry when there is one; for
/// `--jwks-url`, whose document the verifier keeps, from the key type of
/// the algorithm the token claims (a hint to check against the issuer's
/// documentation, never a choice made for the user).
fn candidates(seen: &Seen<'_>) -> String {
    let Ok(header) = jwt_core::dangerous::insecure_decode_header(seen.token) else {
        return String::new();
    };
    let entry = seen.jwks.and_then(|jwks| {
        jwks.keys
            .iter()
            .filter(|jwk| jwk.kid.is_some() && jwk.kid == header.kid)
            .find_map(|jwk| VerifyingKey::from_jwk(jwk).ok())
    });
    let list = |family| {
        algorithms_for(family)
            .into_iter()
            .map(Algorithm::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match entry {
        Some(key) => format!(
            "; for this key ({}): {}",
            keyfile::a_key(key.family(), KeyUse::Verify),
            list(key.family())
        ),
        None => format!(
            "; the token claims {}, and keys of that type verify {}: pass the one the issuer \
             documents (an OpenID provider lists them as `id_token_signing_alg_values_supported` \
             in /.well-known/openid-configuration)",
            header.alg,
            list(header.alg.family())
        ),
    }
}

/// The kids listed in an `unknown_key` message, at most.
const KIDS_SHOWN: usize = 10;

/// `unknown_key`: which kid the token names, where the keys came from and
/// which kids they hold (quoted and escaped: they come from the token and
/// from a remote document), and what to check. The keys were just read
/// (a `--jwks-url` fetched on this run, after a refetch for the unknown
/// kid), so reloading them is not the fix.
fn unknown_key_message(args: &VerifyArgs, seen: &Seen<'_>, kid: &str) -> String {
    let k = &args.key;
    let (from, fix) = if let Some(url) = &k.jwks_url {
        (
            format!("the JWKS at {url} (fetched just now)"),
            "the token was not signed by this issuer's current keys: check that --jwks-url is \
             the JWKS of the issuer that signed it (the token's `iss`; `jwtkit inspect TOKEN` \
             shows it)"
                .to_owned(),
        )
    } else if let Some(uri) = &k.store {
        let uri = super::store::shown_uri(uri);
        (
            format!("the store {uri}"),
            format!(
                "the key was retired and its grace has ended, or the token comes from another \
                 issuer; `jwtkit store list {uri}` shows the store's keys"
            ),
        )
    } else {
        let path = k.key.as_deref().map(keyfile::key_file).unwrap_or_default();
        (
            path,
            "the token was signed by another key: pass the issuer's current JWKS or key \
             (`jwtkit inspect TOKEN` shows the token's `iss`)"
                .to_owned(),
        )
    };
    let mut kids: Vec<String> = seen
        .kids
        .iter()
        .take(KIDS_SHOWN)
        .map(|k| format!("{k:?}"))
        .collect();
    if seen.kids.len() > KIDS_SHOWN {
        kids.push(format!("… ({} more)", seen.kids.len() - KIDS_SHOWN));
    }
    let holds = match seen.kids.len() {
        0 => "no key that can verify".to_owned(),
        1 => format!("one key, kid {}", kids.join(", ")),
        n => format!("{n} keys, kids {}", kids.join(", ")),
    };
    format!("unknown key: the token names kid {kid:?}, but {from} holds {holds}; {fix}")
}

fn print_valid(
    args: &VerifyArgs,
    header: &Header,
    claims: &Map<String, Value>,
) -> Result<(), CliError> {
    let now = args.now.unwrap_or_else(jwt_core::time::now_unix);
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
            super::render_token(&header, claims, now)
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

/// The validation the flags ask for; `required` is `--require`, trimmed.
fn build_validation(args: &VerifyArgs, algorithms: &[Algorithm], required: &[&str]) -> Validation {
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
    for claim in required {
        validation = validation.require(*claim);
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
    // `--dangerous-allow-weak-key` (with its warning), else unchanged.
    args.key.weak_key_validation(validation)
}
