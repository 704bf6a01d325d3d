//! `jwtkit refresh-key`: rotating the key that signs `jwtkit serve`'s refresh
//! tokens without logging anyone out.
//!
//! The file (`--refresh-key`, default `.jwtkit/refresh.key`) holds a ring:
//! the first key signs, a staged `next` key already verifies, previous keys
//! verify until their time. With several instances: `stage`, roll the file
//! out to every instance (restart them), `promote`, roll it out again. With
//! one instance: `rotate` (both at once), then restart it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use jwtkit::RefreshKey;
use serde_json::json;

use crate::error::CliError;

/// The default grace of a previous key: the longest a session lasts by
/// default (`jwtkit serve --session-lifetime`, 30 days), so that no session
/// started before a rotation is logged out by it.
const DEFAULT_GRACE: Duration = Duration::from_secs(30 * 86_400);

/// The longest grace: as long as a session may live at most (365 days).
const MAX_GRACE: Duration = Duration::from_secs(365 * 86_400);

/// `jwtkit refresh-key …`
#[derive(Subcommand, Debug)]
pub(crate) enum RefreshKeyCommand {
    /// List the keys of a refresh-key file: kid, role (signs / next /
    /// previous) and until when a previous key verifies. Never a secret.
    Show(FileArgs),
    /// Stage a new key: it verifies at once and signs after `promote`. Roll
    /// the file out to every instance before promoting.
    Stage(FileArgs),
    /// Make the staged key the signing one; the old key keeps verifying for
    /// --grace, so refresh tokens it signed still work.
    Promote(PromoteArgs),
    /// Stage and promote at once (one instance, or instances that share the
    /// file and restart together).
    Rotate(PromoteArgs),
}

/// The file, and the output form.
#[derive(Args, Debug)]
pub(crate) struct FileArgs {
    /// The refresh-key file of `jwtkit serve --refresh-key` (mode 0600,
    /// owned by you).
    #[arg(default_value = ".jwtkit/refresh.key", value_name = "FILE")]
    file: PathBuf,
    /// Print JSON: {"keys":[{"kid","role","until"}…]}; the audit records
    /// on stderr are JSON lines too.
    #[arg(long)]
    json: bool,
}

/// The file, the grace and the output form.
#[derive(Args, Debug)]
pub(crate) struct PromoteArgs {
    #[command(flatten)]
    file: FileArgs,
    /// How long the old key keeps verifying: at least the longest a
    /// refresh token lives (`--session-lifetime`) [default: 30d].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    grace: Option<Duration>,
    /// The time to act at (Unix seconds), instead of the system clock.
    #[arg(long, value_name = "UNIX", hide = true)]
    now: Option<i64>,
}

/// Runs `jwtkit refresh-key …`.
pub(crate) fn run(command: &RefreshKeyCommand) -> Result<(), CliError> {
    let json = match command {
        RefreshKeyCommand::Show(args) | RefreshKeyCommand::Stage(args) => args.json,
        RefreshKeyCommand::Promote(args) | RefreshKeyCommand::Rotate(args) => args.file.json,
    };
    audit_logging(json);
    match command {
        RefreshKeyCommand::Show(args) => {
            let ring = load(&args.file)?;
            print(&ring, args.json, None)
        }
        RefreshKeyCommand::Stage(args) => {
            let _lock = lock(&args.file)?;
            let mut ring = load(&args.file)?;
            let staged = ring.stage().map_err(refused)?.to_owned();
            save(&ring, &args.file)?;
            tracing::info!(target: "jwtkit::audit", event = "refresh_key.staged", kid = %staged,
                "a refresh key was staged: it verifies now and signs after the next promotion");
            print(
                &ring,
                args.json,
                Some(format!(
                    "staged {staged}: roll this file out to every instance, then `jwtkit refresh-key promote`"
                )),
            )
        }
        RefreshKeyCommand::Promote(args) | RefreshKeyCommand::Rotate(args) => {
            let _lock = lock(&args.file.file)?;
            let mut ring = load(&args.file.file)?;
            if matches!(command, RefreshKeyCommand::Rotate(_)) {
                ring.stage().map_err(refused)?;
            }
            let now = args.now.unwrap_or_else(jwt_core::time::now_unix);
            let grace = args.grace.unwrap_or(DEFAULT_GRACE);
            if grace < Duration::from_secs(1) || grace > MAX_GRACE {
                return Err(CliError::config(format!(
                    "--grace must be 1s to 365d (the old key verifies for it; at least the longest a \
                     session lives, --session-lifetime, 30d by default); got {}s",
                    grace.as_secs()
                )));
            }
            if grace < DEFAULT_GRACE {
                crate::diag(format_args!(
                    "warning: --grace {} is shorter than 30d, jwtkit serve's default \
                     --session-lifetime: a session that does not refresh within it is logged out; \
                     give at least the --session-lifetime your jwtkit serve runs with",
                    crate::duration::display(grace)
                ));
            }
            let until = now.saturating_add(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
            let previous = ring.kid().to_owned();
            ring.promote(now, until).map_err(refused)?;
            save(&ring, &args.file.file)?;
            tracing::info!(target: "jwtkit::audit", event = "refresh_key.rotated",
                previous = %previous, signing = %ring.kid(), previous_until = until,
                "the refresh key was rotated: the new key signs, the old one verifies until then");
            print(
                &ring,
                args.file.json,
                Some(format!(
                    "{} signs now; {previous} verifies until {until} ({}): restart jwtkit serve to use it",
                    ring.kid(),
                    super::format_time(until)
                )),
            )
        }
    }
}

/// Audit records of this command on stderr (the `jwtkit::audit` target
/// only), like `jwtkit serve`'s log lines: one JSON object per line with
/// `--json` (for a log pipeline), else text, coloured only on a terminal.
fn audit_logging(json: bool) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("jwtkit::audit=info"))
        .with_writer(std::io::stderr)
        .with_ansi(!json && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// An exclusive lock on `FILE.lock` beside the key file, held while a
/// command reads, changes and writes the file: two commands at once (a
/// `rotate` racing a `promote`, two `stage`s) run one after the other
/// instead of one silently undoing the other.
fn lock(path: &std::path::Path) -> Result<std::fs::File, CliError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    crate::keyfile::check_path_trust(&lock_path)?;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock_path).map_err(|e| {
        CliError::io(format!(
            "cannot open the lock file {}: {e}; it sits beside the key file, whose directory \
             must be writable by you",
            lock_path.display()
        ))
    })?;
    fs4::FileExt::lock(&file)
        .map_err(|e| CliError::io(format!("cannot lock {}: {e}", lock_path.display())))?;
    Ok(file)
}

fn load(path: &std::path::Path) -> Result<RefreshKey, CliError> {
    // The same path rules as serve's --refresh-key and every key file.
    crate::keyfile::check_path_trust(path)?;
    if !path.exists() {
        return Err(CliError::config(format!(
            "no refresh-key file at {}: `jwtkit serve` creates it at its first start \
             (--refresh-key, default .jwtkit/refresh.key), or give the path of yours",
            path.display()
        )));
    }
    RefreshKey::load(path).map_err(|e| CliError::config(e.to_string()))
}

fn save(ring: &RefreshKey, path: &std::path::Path) -> Result<(), CliError> {
    ring.save(path).map_err(|e| CliError::io(e.to_string()))
}

fn refused(e: jwtkit::Error) -> CliError {
    CliError::config(e.to_string())
}

fn print(ring: &RefreshKey, json: bool, note: Option<String>) -> Result<(), CliError> {
    let keys = ring.keys();
    let text = if json {
        let keys: Vec<_> = keys
            .iter()
            .map(|k| json!({"kid": k.kid, "role": k.role, "until": k.until}))
            .collect();
        format!("{}\n", json!({ "keys": keys }))
    } else {
        let mut out = String::new();
        for k in &keys {
            match k.until {
                Some(until) => out.push_str(&format!(
                    "{}  {}  until {until} ({})\n",
                    k.kid,
                    k.role,
                    super::format_time(until)
                )),
                None => out.push_str(&format!("{}  {}\n", k.kid, k.role)),
            }
        }
        if let Some(note) = note {
            out.push_str(&note);
            out.push('\n');
        }
        out
    };
    crate::write_stdout(text.as_bytes())
}
