//! `jwtkit store`: initialize, rotate, list, publish and audit a key store.

use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, Clock, ManualClock, SystemClock};
use jwt_keys::{
    AuditReport, CacheOptions, KeyRecord, KeyStore, KeyStoreExt, MaintenanceReport, RotationPolicy,
    RotationReport,
};
use serde::Serialize;

use crate::error::{CliError, EXIT_REJECTED};

/// `jwtkit store …` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum StoreCommand {
    /// Create the active key and its pending successor under a rotation policy.
    Init(InitArgs),
    /// Promote the pending key to active, start retiring the active one, create the next pending key.
    Rotate(RotateArgs),
    /// List the keys: kid, alg, state, created, activated, retire-at.
    List(ListArgs),
    /// Print the publishable JWKS: pending + active + retiring keys (public parts only).
    Jwks(UriArg),
    /// Check the store against its policy (exit 0 compliant, 1 violations
    /// listed), and say when the next rotation is due and which key signs next.
    Audit(AuditArgs),
}

/// `store init`.
#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// The store: `file:DIR`, `env:NAME`, `kms:KEY`, `vault+http(s)://HOST:PORT/MOUNT/KEY`,
    /// `pkcs11:token=T;object=O?module-path=…&pin-source=file:…` (RFC 7512).
    #[arg(value_name = "URI")]
    uri: String,
    /// The signing algorithm of every key in the store (asymmetric: ES256, EdDSA, RS256, …).
    #[arg(long, value_name = "ALG", alias = "algorithm")]
    alg: String,
    /// An algorithm the policy allows keys to use: repeat, or separate with
    /// commas (`--allowed-alg ES256,EdDSA`); must include --alg. The audit
    /// reports a key of any other algorithm (default: every asymmetric one).
    #[arg(long, value_name = "ALG", value_delimiter = ',')]
    allowed_alg: Vec<String>,
    /// Maximum signing age of a key before it is due for rotation (default 30d).
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    rotate_after: Option<Duration>,
    /// How long a pending key is published before it may sign; cover your verifiers' JWKS cache TTL (default 1d).
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    prepublish: Option<Duration>,
    /// How long a retired signer still verifies; at least the longest token lifetime + leeway (default 1d).
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    verify_grace: Option<Duration>,
    /// The longest lifetime of a token signed by this store (default 1h, at
    /// most 365d); `jwtkit sign --store` refuses a longer --exp, and
    /// verify-grace must cover it plus the leeway.
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    max_token_lifetime: Option<Duration>,
    /// The clock skew the store's verifiers tolerate (default 5m, at most
    /// 1d); verify-grace must cover max-token-lifetime plus it.
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    leeway: Option<Duration>,
    /// Use this time as "now" (Unix seconds or RFC 3339, e.g.
    /// 2026-12-01T00:00:00Z); the store records it as the keys' creation and
    /// activation time.
    #[arg(
        long,
        value_name = "TIME",
        value_parser = crate::duration::claim_time::parse_now,
        allow_negative_numbers = true
    )]
    now: Option<i64>,
}

/// `store rotate`.
#[derive(Debug, clap::Args)]
pub(crate) struct RotateArgs {
    /// The store URI.
    #[arg(value_name = "URI")]
    uri: String,
    /// Rotate only if the policy says it is due (`rotate_after` reached); retire keys past their grace either way. Reports every change.
    #[arg(long)]
    if_due: bool,
    /// Use this time as "now" (Unix seconds or RFC 3339, e.g.
    /// 2026-12-01T00:00:00Z); the store records it, and it may not be earlier
    /// than a time the store already recorded.
    #[arg(
        long,
        value_name = "TIME",
        value_parser = crate::duration::claim_time::parse_now,
        allow_negative_numbers = true
    )]
    now: Option<i64>,
    /// Print the report as one JSON object (with --if-due: `{"rotated": REPORT|null, "retired": [KID…]}`).
    /// A report has `published_for_secs` (how long the new signing key had
    /// been published), the policy's `prepublish_secs` and `warnings`.
    #[arg(long)]
    json: bool,
}

/// `store list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// The store URI.
    #[arg(value_name = "URI")]
    uri: String,
    /// One JSON array of key records.
    #[arg(long)]
    json: bool,
}

/// A store URI.
#[derive(Debug, clap::Args)]
pub(crate) struct UriArg {
    /// The store URI.
    #[arg(value_name = "URI")]
    uri: String,
}

/// `store audit`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// The store URI.
    #[arg(value_name = "URI")]
    uri: String,
    /// Use this time as "now": Unix seconds or RFC 3339 (2026-12-01T00:00:00Z).
    #[arg(
        long,
        value_name = "TIME",
        value_parser = crate::duration::claim_time::parse_now,
        allow_negative_numbers = true
    )]
    now: Option<i64>,
    /// The audit report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `store` subcommand.
pub(crate) fn run(command: &StoreCommand) -> Result<(), CliError> {
    crate::block_on(async {
        match command {
            StoreCommand::Init(args) => init(args).await,
            StoreCommand::Rotate(args) => rotate(args).await,
            StoreCommand::List(args) => list(args).await,
            StoreCommand::Jwks(args) => jwks(args).await,
            StoreCommand::Audit(args) => audit(args).await,
        }
    })
}

/// Opens the store on the run's one clock: `--now` when given (every
/// decision of the command, from key states to the audit, is made at that
/// instant), else the system clock. Every command that takes a store URI
/// but `serve` opens it here; a PIN in the URI is warned about.
pub(crate) fn open(uri: &str, now: Option<i64>) -> Result<Arc<dyn KeyStore>, CliError> {
    crate::warn_pin_value(uri);
    let clock: Arc<dyn Clock> = match now {
        Some(t) => Arc::new(ManualClock::new(t)),
        None => Arc::new(SystemClock),
    };
    jwt_keys::open_store_with_clock(uri, clock).map_err(CliError::from_keys)
}

/// The latest `--now` a command that writes a store accepts: the end of
/// year 9999 (a millisecond timestamp, 1000 times too large, is refused).
const MAX_WRITE_TIME: i64 = 253_402_300_799;

/// `--now` for a command that records times in the store: a Unix time in
/// seconds, after 1970 and before year 10000.
fn check_write_time(now: Option<i64>) -> Result<(), CliError> {
    match now {
        Some(t) if !(0..=MAX_WRITE_TIME).contains(&t) => Err(CliError::usage(format!(
            "--now {t} is not a Unix time in seconds between 1970 and 9999 (milliseconds?); \
             this command records the time in the store"
        ))),
        _ => Ok(()),
    }
}

async fn init(args: &InitArgs) -> Result<(), CliError> {
    let alg = super::parse_algorithm(&args.alg)?;
    let mut policy = RotationPolicy::builder();
    if let Some(d) = args.rotate_after {
        policy = policy.rotate_after(d);
    }
    if let Some(d) = args.prepublish {
        policy = policy.prepublish(d);
    }
    if let Some(d) = args.verify_grace {
        policy = policy.verify_grace(d);
    }
    if let Some(d) = args.max_token_lifetime {
        policy = policy.max_token_lifetime(d);
    }
    if let Some(d) = args.leeway {
        policy = policy.leeway(d);
    }
    if !args.allowed_alg.is_empty() {
        policy = policy.allowed_algorithms(allowed_algorithms(&args.allowed_alg, alg)?);
    }
    let policy = policy.build().map_err(policy_error)?;
    check_write_time(args.now)?;
    let store = open(&args.uri, args.now)?;
    let report = store
        .init(alg, &policy)
        .await
        .map_err(CliError::from_keys)?;
    crate::write_stdout(
        format!(
            "initialized {}: active key {} ({alg}), pending key {} (published, signs after the next rotation)\n\
             policy: rotate after {}, prepublish {}, verify grace {}, max token lifetime {}, leeway {}, algorithms {}\n",
            shown_uri(&args.uri),
            report.active,
            report.pending,
            human(policy.rotate_after()),
            human(policy.prepublish()),
            human(policy.verify_grace()),
            human(policy.max_token_lifetime()),
            human(policy.leeway()),
            names(policy.allowed_algorithms()),
        )
        .as_bytes(),
    )
}

/// The `--allowed-alg` list, which must hold `alg` and asymmetric
/// algorithms only (a rotating store publishes its keys).
fn allowed_algorithms(names: &[String], alg: Algorithm) -> Result<Vec<Algorithm>, CliError> {
    let mut allowed = Vec::with_capacity(names.len());
    for parsed in super::parse_algorithms("--allowed-alg", names)? {
        if parsed.is_symmetric() {
            return Err(CliError::usage(format!(
                "--allowed-alg {parsed}: a rotating store holds asymmetric keys only (their public \
                 halves are published); name ES256, EdDSA, RS256, … (keep an HMAC secret in \
                 --store env:NAME)"
            )));
        }
        allowed.push(parsed);
    }
    if !allowed.contains(&alg) {
        return Err(CliError::usage(format!(
            "--alg {alg} is not among --allowed-alg ({}): the store's first keys would break its \
             own policy; add --allowed-alg {alg} or choose --alg from the list",
            self::names(&allowed)
        )));
    }
    Ok(allowed)
}

/// A policy setting out of range names the flag that sets it.
fn policy_error(err: jwt_keys::Error) -> CliError {
    let flag = match &err {
        jwt_keys::Error::InvalidConfig { setting, .. } => match *setting {
            "rotate_after" => Some("--rotate-after"),
            "prepublish" => Some("--prepublish"),
            "verify_grace" => Some("--verify-grace"),
            "max_token_lifetime" => Some("--max-token-lifetime"),
            "leeway" => Some("--leeway"),
            "allowed_algorithms" => Some("--allowed-alg"),
            _ => None,
        },
        _ => None,
    };
    let err = CliError::from_keys(err);
    match flag {
        Some(flag) => err.context(flag),
        None => err,
    }
}

fn names(algs: &[Algorithm]) -> String {
    algs.iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration for people: `1d 2h`, `15m`, `30s`, `0s` (two units at most).
fn human(d: Duration) -> String {
    crate::duration::human(d.as_secs())
}

/// A span in seconds for people; never negative (callers say in words
/// when a time is ahead rather than behind).
fn human_secs(secs: i64) -> String {
    crate::duration::human(u64::try_from(secs).unwrap_or(0))
}

async fn rotate(args: &RotateArgs) -> Result<(), CliError> {
    check_write_time(args.now)?;
    let store = open(&args.uri, args.now)?;
    if let Some(now) = args.now {
        // A store's times only move forward: an earlier `now` would destroy
        // keys whose grace has not ended, or date keys before tokens they
        // signed.
        let records = store.list().await.map_err(CliError::from_keys)?;
        let latest = records
            .iter()
            .flat_map(|r| [r.created_at, r.activated_at, r.retiring_at])
            .flatten()
            .max();
        if let Some(latest) = latest.filter(|&latest| now < latest) {
            return Err(CliError::usage(format!(
                "--now {now} is before {latest}, a time this store already recorded; a store's \
                 times only move forward (leave --now out to use the clock)"
            )));
        }
    }
    let policy = store.policy().await.map_err(CliError::from_keys)?;
    let now = args.now.unwrap_or_else(jwt_core::time::now_unix);
    if args.if_due {
        // Every change is reported, a retirement alone included: this
        // output is an audit record.
        let changes = store.rotate_if_due().await.map_err(CliError::from_keys)?;
        let rotated = changes
            .rotated
            .as_ref()
            .map(|report| Rotated::new(report, &policy, &shown_uri(&args.uri), now));
        warn(rotated.as_ref());
        if args.json {
            let doc = Maintained {
                rotated,
                retired: &changes.retired,
            };
            return crate::write_stdout(crate::to_json_line(&doc)?.as_bytes());
        }
        return crate::write_stdout(maintenance_text(&changes, rotated.as_ref()).as_bytes());
    }
    let report = store.rotate(None).await.map_err(CliError::from_keys)?;
    let rotated = Rotated::new(&report, &policy, &shown_uri(&args.uri), now);
    warn(Some(&rotated));
    if args.json {
        return crate::write_stdout(crate::to_json_line(&rotated)?.as_bytes());
    }
    crate::write_stdout(rotation_text(&rotated).as_bytes())
}

/// A rotation as `store rotate` reports it: the store's report, the
/// policy's `prepublish`, and the warning when the new signing key may be
/// unknown to verifiers that cached the JWKS.
#[derive(Serialize)]
struct Rotated<'a> {
    #[serde(flatten)]
    report: &'a RotationReport,
    prepublish_secs: u64,
    warnings: Vec<String>,
}

/// `store rotate --if-due --json`: the library's `MaintenanceReport` shape,
/// `{"rotated": …|null, "retired": […]}`.
#[derive(Serialize)]
struct Maintained<'a> {
    rotated: Option<Rotated<'a>>,
    retired: &'a [String],
}

impl<'a> Rotated<'a> {
    fn new(
        report: &'a RotationReport,
        policy: &RotationPolicy,
        uri: &str,
        now: i64,
    ) -> Rotated<'a> {
        let mut warnings = Vec::new();
        match report.published_for_secs {
            Some(published) if published < 0 => {
                warnings.push(clock_ahead_warning(&report.active, published, now));
            }
            Some(published) => {
                if let Some(warning) = cache_warning(&report.active, published, policy, uri) {
                    warnings.push(warning);
                }
            }
            None => {}
        }
        Rotated {
            report,
            prepublish_secs: policy.prepublish().as_secs(),
            warnings,
        }
    }
}

/// The warning when the new signing key had been published for less than
/// verifiers may cache a JWKS: the policy's `prepublish` (which the
/// operator chose to cover their verifiers' cache TTL), and never less than
/// the TTL a jwt-keys verifier uses for a JWKS served without `max-age`.
/// A verifier that fetched the JWKS before the key appeared refuses its
/// tokens (`unknown_key`) until it fetches again.
fn cache_warning(kid: &str, published: i64, policy: &RotationPolicy, uri: &str) -> Option<String> {
    let cache = CacheOptions::default();
    let (needed, what) = if policy.prepublish() >= cache.default_ttl() {
        (policy.prepublish(), "the policy's prepublish")
    } else {
        (
            cache.default_ttl(),
            "the JWKS cache TTL a jwt-keys verifier uses without max-age",
        )
    };
    let needed_secs = i64::try_from(needed.as_secs()).unwrap_or(i64::MAX);
    if published >= needed_secs {
        return None;
    }
    Some(format!(
        "the new signing key {kid} had been published for only {}, less than {what} ({}): \
         verifiers that cached the JWKS before it appeared refuse its tokens (unknown_key) until \
         they fetch it again, for up to their JWKS cache TTL (jwt-keys' verifier: the JWKS's \
         Cache-Control max-age, {} without one, at most {}, refetching sooner on an unknown kid \
         at most every {}; `jwtkit serve` sends max-age = prepublish/2, at most 1h). Unless this \
         was an emergency, rotate with `jwtkit store rotate --if-due {uri}`, which waits until \
         the pending key has been published for prepublish; or lower the verifiers' cache TTL",
        human_secs(published),
        human(needed),
        human(cache.default_ttl()),
        human(cache.max_ttl()),
        human(cache.cooldown()),
    ))
}

/// The new signing key's creation time is after now (`published` < 0):
/// the store's clock was ahead when it made the key, e.g. a `--now` in the
/// future. How long verifiers have had it is unknown, so no duration is
/// given, and the usual cache warning cannot be judged either.
fn clock_ahead_warning(kid: &str, published: i64, now: i64) -> String {
    let created = now.saturating_sub(published);
    format!(
        "the new signing key {kid} was created at {} ({created}), {} after now ({}): the \
         store's clock was ahead when it created the key (e.g. an earlier `--now` in the \
         future), so how long verifiers have had it is unknown. If they cached the JWKS before \
         it appeared, they refuse its tokens (unknown_key) until they fetch it again; check the \
         system clock, and use --now only on test stores",
        super::format_time(created),
        human_secs(created.saturating_sub(now)),
        super::format_time(now),
    )
}

fn warn(rotated: Option<&Rotated<'_>>) {
    for warning in rotated.map(|r| r.warnings.as_slice()).unwrap_or_default() {
        crate::diag(format_args!("warning: {warning}"));
    }
}

/// `store rotate --if-due`, one change a line.
fn maintenance_text(changes: &MaintenanceReport, rotated: Option<&Rotated<'_>>) -> String {
    let mut out = match rotated {
        Some(rotated) => rotation_text(rotated),
        None => "not due: no rotation (the active key is younger than rotate_after, the \
                 pending key is not yet published for prepublish, or another process rotated \
                 first)\n"
            .to_owned(),
    };
    if rotated.is_none() {
        // With a rotation, its own report lists them.
        for kid in &changes.retired {
            out.push_str(&retired_line(kid));
        }
    }
    if !changes.changed() {
        out.push_str("nothing changed\n");
    }
    out
}

fn retired_line(kid: &str) -> String {
    format!("retired {kid} (its grace had ended; its private key was destroyed where the backend can)\n")
}

/// A rotation, one change a line.
fn rotation_text(rotated: &Rotated<'_>) -> String {
    let report = rotated.report;
    let mut out = format!(
        "rotated: active key is now {} (was {}), new pending key {}\n",
        report.active,
        report.previous.as_deref().unwrap_or("none"),
        report.pending
    );
    match report.published_for_secs {
        Some(published) if published < 0 => out.push_str(&format!(
            "{} had been published for an unknown time: the pending key's creation time is {} \
             after now, the store's clock was ahead (see the warning)\n",
            report.active,
            human_secs(published.saturating_neg()),
        )),
        Some(published) => out.push_str(&format!(
            "{} had been published for {} before it started signing (policy prepublish: {})\n",
            report.active,
            human_secs(published),
            human_secs(i64::try_from(rotated.prepublish_secs).unwrap_or(i64::MAX)),
        )),
        None => {}
    }
    if let (Some(prev), Some(at)) = (&report.previous, report.previous_retire_at) {
        out.push_str(&format!(
            "{prev} verifies until {} ({at})\n",
            super::format_time(at)
        ));
    }
    for kid in &report.retired {
        out.push_str(&retired_line(kid));
    }
    out
}

#[derive(Serialize)]
struct ListedKey<'a> {
    #[serde(flatten)]
    record: &'a KeyRecord,
}

async fn list(args: &ListArgs) -> Result<(), CliError> {
    let store = open(&args.uri, None)?;
    let records = store.list().await.map_err(CliError::from_keys)?;
    if args.json {
        let listed: Vec<ListedKey<'_>> =
            records.iter().map(|record| ListedKey { record }).collect();
        return crate::write_stdout(crate::to_json_line(&listed)?.as_bytes());
    }
    let time = |t: Option<i64>| t.map(super::format_time).unwrap_or_else(|| "-".into());
    let mut out = format!(
        "{:<44} {:<6} {:<9} {:<21} {:<21} {:<21}\n",
        "KID", "ALG", "STATE", "CREATED", "ACTIVATED", "RETIRE-AT"
    );
    for r in &records {
        out.push_str(&format!(
            "{:<44} {:<6} {:<9} {:<21} {:<21} {:<21}\n",
            r.kid,
            r.alg.as_str(),
            r.state.as_str(),
            time(r.created_at),
            time(r.activated_at),
            time(r.retire_at)
        ));
    }
    crate::write_stdout(out.as_bytes())
}

async fn jwks(args: &UriArg) -> Result<(), CliError> {
    let store = open(&args.uri, None)?;
    let jwks = store
        .verification_keys()
        .await
        .map_err(CliError::from_keys)?;
    crate::write_stdout(format!("{}\n", jwks.to_json()).as_bytes())
}

async fn audit(args: &AuditArgs) -> Result<(), CliError> {
    let store = open(&args.uri, args.now)?;
    let report = store.audit().await.map_err(CliError::from_keys)?;
    let out = if args.json {
        crate::to_json_line(&report)?
    } else {
        audit_text(&report, &shown_uri(&args.uri))
    };
    crate::write_stdout(out.as_bytes())?;
    if report.is_clean() {
        Ok(())
    } else {
        // The findings are the answer, already printed (with --json, the
        // report is the one JSON document).
        Err(CliError::rejected(
            "policy_violation",
            "the store departs from its rotation policy (findings listed above)",
        )
        .with_exit(EXIT_REJECTED)
        .reported_if(args.json))
    }
}

/// The audit for people: the findings, then what happens next.
fn audit_text(report: &AuditReport, uri: &str) -> String {
    let mut s = if report.is_clean() {
        "compliant: no findings\n".to_owned()
    } else {
        let mut s = format!("{} finding(s):\n", report.findings.len());
        for f in &report.findings {
            // The library names the command with a placeholder URI.
            let text = f.to_string().replace(" URI`", &format!(" {uri}`"));
            s.push_str(&format!("- {text}\n"));
        }
        s
    };
    if let Some(active) = &report.active {
        s.push_str(&format!("signing key: {active}\n"));
    }
    match report.next_rotation_at {
        Some(at) if at <= report.now => s.push_str(&format!(
            "next rotation: overdue since {} ({at}); run `jwtkit store rotate --if-due {uri}`\n",
            super::format_time(at)
        )),
        Some(at) => s.push_str(&format!(
            "next rotation: due at {} ({at}), in {}\n",
            super::format_time(at),
            human_secs(at - report.now)
        )),
        None => s.push_str("next rotation: unknown (the store records no key times)\n"),
    }
    if let Some(next) = &report.next_signer {
        s.push_str(&format!("next signing key: {next} (pending, published)\n"));
    }
    s
}

/// A store URI as shown on the terminal: a password in a URL and the PIN
/// of a PKCS#11 URI (`pin-value=…`) replaced by `***`, and single-quoted
/// when the shell would split or expand it (a PKCS#11 URI's `;`, `?`, `&`),
/// so that a command suggested with it can be pasted as it is.
pub(crate) fn shown_uri(uri: &str) -> String {
    shell_quote(&super::serve::config::redact_userinfo(uri))
}

/// `text` as one shell word: as it is when it holds only characters no
/// shell treats specially, else in single quotes.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
