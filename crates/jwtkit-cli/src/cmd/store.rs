//! `jwtkit store`: initialize, rotate, list, publish and audit a key store.

use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Clock, ManualClock, SystemClock};
use jwt_keys::{KeyRecord, KeyStore, KeyStoreExt, RotationPolicy, RotationReport};
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
    /// Check the store against its policy (exit 0 compliant, 1 violations listed).
    Audit(AuditArgs),
}

/// `store init`.
#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// The store: `file:DIR`, `env:NAME`, `kms:KEY`, `vault+http(s)://HOST:PORT/MOUNT/KEY`.
    #[arg(value_name = "URI")]
    uri: String,
    /// The signing algorithm of every key in the store (asymmetric: ES256, EdDSA, RS256, …).
    #[arg(long, value_name = "ALG")]
    alg: String,
    /// Maximum signing age of a key before it is due for rotation (default 30d).
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    rotate_after: Option<Duration>,
    /// How long a pending key is published before it may sign; cover your verifiers' JWKS cache TTL (default 1d).
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    prepublish: Option<Duration>,
    /// How long a retired signer still verifies; at least the longest token lifetime + leeway (default 1d).
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    verify_grace: Option<Duration>,
    /// The longest lifetime of a token signed by this store (default 1h); verify-grace must cover it.
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    max_token_lifetime: Option<Duration>,
    /// Use this Unix time (seconds) as "now"; the store records it as the
    /// keys' creation and activation time.
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
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
    /// Use this Unix time (seconds) as "now"; the store records it, and it may
    /// not be earlier than a time the store already recorded.
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    now: Option<i64>,
    /// Print the report as one JSON object (with --if-due: `{"rotated": REPORT|null, "retired": [KID…]}`).
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
    /// Use this Unix time as "now".
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
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
/// instant), else the system clock.
fn open(uri: &str, now: Option<i64>) -> Result<Arc<dyn KeyStore>, CliError> {
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
    let policy = policy.build().map_err(CliError::from_keys)?;
    check_write_time(args.now)?;
    let store = open(&args.uri, args.now)?;
    let report = store
        .init(alg, &policy)
        .await
        .map_err(CliError::from_keys)?;
    crate::write_stdout(
        format!(
            "initialized {}: active key {} ({alg}), pending key {} (published, signs after the next rotation)\n",
            args.uri, report.active, report.pending
        )
        .as_bytes(),
    )
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
    if args.if_due {
        // Every change is reported, a retirement alone included: this
        // output is an audit record.
        let changes = store.rotate_if_due().await.map_err(CliError::from_keys)?;
        if args.json {
            return crate::write_stdout(crate::to_json_line(&changes)?.as_bytes());
        }
        let mut out = match &changes.rotated {
            Some(report) => rotation_text(report),
            None => "not due: no rotation (the active key is younger than rotate_after, the \
                     pending key is not yet published for prepublish, or another process rotated \
                     first)\n"
                .to_owned(),
        };
        if changes.rotated.is_none() {
            // With a rotation, its own report lists them.
            for kid in &changes.retired {
                out.push_str(&retired_line(kid));
            }
        }
        if !changes.changed() {
            out.push_str("nothing changed\n");
        }
        return crate::write_stdout(out.as_bytes());
    }
    let report = store.rotate(None).await.map_err(CliError::from_keys)?;
    if args.json {
        return crate::write_stdout(crate::to_json_line(&report)?.as_bytes());
    }
    crate::write_stdout(rotation_text(&report).as_bytes())
}

fn retired_line(kid: &str) -> String {
    format!("retired {kid} (its grace had ended; its private key was destroyed where the backend can)\n")
}

/// A rotation, one change a line.
fn rotation_text(report: &RotationReport) -> String {
    let mut out = format!(
        "rotated: active key is now {} (was {}), new pending key {}\n",
        report.active,
        report.previous.as_deref().unwrap_or("none"),
        report.pending
    );
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
    } else if report.is_clean() {
        "compliant: no findings\n".to_owned()
    } else {
        let mut s = format!("{} finding(s):\n", report.findings.len());
        for f in &report.findings {
            s.push_str(&format!("- {f}\n"));
        }
        s
    };
    crate::write_stdout(out.as_bytes())?;
    if report.is_clean() {
        Ok(())
    } else {
        Err(CliError::rejected(
            "policy_violation",
            "the store departs from its rotation policy (findings listed above)",
        )
        .with_exit(EXIT_REJECTED))
    }
}
