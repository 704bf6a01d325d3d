//! `jwtkit`: sign, verify and inspect JSON Web Tokens, and manage their keys.
//!
//! Exit codes: 0 success; 1 the token was rejected (expired, bad signature,
//! wrong audience, undecodable, …); 2 usage or configuration error (bad flag,
//! unreadable or weak key, algorithm that does not fit the key, …).
//! Tokens and JSON go to stdout, diagnostics to stderr; both go through
//! [`output`], which escapes the control characters a terminal would act on.
//! A failed command prints one `error [KIND]: …` line on stderr; run with
//! `--json` (every command that has the flag), it prints instead one JSON
//! object on stdout, `{"error":KIND,"message":…}`, and no error line.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Serialize;

mod cmd;
mod duration;
mod error;
mod keyfile;
mod output;

use error::{CliError, JsonErrors};

/// Sign, verify and inspect JSON Web Tokens, and manage their keys.
#[derive(Debug, Parser)]
#[command(
    name = "jwtkit",
    version,
    after_help = "Exit codes: 0 success, 1 token rejected, 2 usage or configuration error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign claims into a compact JWT (printed on stdout).
    Sign(cmd::sign::SignArgs),
    /// Verify a token's signature and claims (exit 0 valid, 1 rejected, 2 usage/config error).
    Verify(cmd::verify::VerifyArgs),
    /// Decode a token WITHOUT verifying it, for debugging.
    Inspect(cmd::inspect::InspectArgs),
    /// Show what an identity provider's issuer URL leads to: its metadata and current keys.
    Discover(cmd::discover::DiscoverArgs),
    /// Generate keys, publish JWKS, compute thumbprints.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Manage a key store: init, rotate, list, jwks, audit.
    #[command(subcommand)]
    Store(cmd::store::StoreCommand),
    /// Measure sign/verify speed per algorithm next to the bare primitive.
    Speed(cmd::speed::SpeedArgs),
    /// Run a token service over HTTP (issue, refresh, revoke, introspect, sessions, JWKS,
    /// discovery, userinfo).
    Serve(cmd::serve::ServeArgs),
    /// Rotate the key that signs `jwtkit serve`'s refresh tokens: show, stage, promote, rotate.
    #[command(subcommand)]
    RefreshKey(cmd::refresh_key::RefreshKeyCommand),
    /// DPoP (RFC 9449): make a proof for one request.
    #[command(subcommand)]
    Dpop(cmd::dpop::DpopCommand),
}

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(err) => return clap_failure(&err),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => return clap_failure(&err),
    };
    let json = json_errors(&matches);
    let result = match &cli.command {
        Command::Sign(args) => cmd::sign::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Discover(args) => cmd::discover::run(args),
        Command::Keys(command) => cmd::keys::run(command),
        Command::Store(command) => cmd::store::run(command),
        Command::Speed(args) => cmd::speed::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::RefreshKey(command) => cmd::refresh_key::run(command),
        Command::Dpop(command) => cmd::dpop::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err, json);
            ExitCode::from(err.exit_code())
        }
    }
}

/// Reports a failed command: with `--json`, one JSON object on stdout and
/// nothing on stderr (unless the command already printed its answer, which
/// says what failed); without it, the human line on stderr only.
fn report(err: &CliError, json: JsonErrors) {
    if json == JsonErrors::Off {
        // CliError's Display escapes its message (a kid, a typ, a URL…).
        diag(format_args!("{err}"));
    } else if !err.is_reported() {
        // Best effort: the exit code reports the failure even if stdout is gone.
        let _ = write_stdout(format!("{}\n", err.json(json)).as_bytes());
    }
}

/// Whether the parsed command line asked for `--json` (every command that
/// has the flag), and in which shape its errors are reported.
fn json_errors(matches: &clap::ArgMatches) -> JsonErrors {
    let mut names = Vec::new();
    let mut leaf = matches;
    while let Some((name, sub)) = leaf.subcommand() {
        names.push(name);
        leaf = sub;
    }
    // `try_get_one` is an error for a command without the flag.
    let json = matches!(leaf.try_get_one::<bool>("json"), Ok(Some(true)));
    json_shape(json, names.first().copied())
}

fn json_shape(json: bool, command: Option<&str>) -> JsonErrors {
    match (json, command) {
        (false, _) => JsonErrors::Off,
        (true, Some("verify")) => JsonErrors::Verify,
        (true, _) => JsonErrors::On,
    }
}

/// Reports a command-line parsing error (exit 2) or prints help/version
/// (exit 0). A command run with `--json` promises one JSON object on stdout,
/// a usage error included, and then prints nothing on stderr.
fn clap_failure(err: &clap::Error) -> ExitCode {
    let code = u8::try_from(err.exit_code()).unwrap_or(error::EXIT_CONFIG);
    if !err.use_stderr() {
        // Help and version: our own text, with clap's styling.
        let _ = err.print();
        return ExitCode::from(code);
    }
    let rendered = err.render().to_string();
    let (json, command) = json_requested();
    if json != JsonErrors::Off {
        // The message is the first paragraph (a list of missing arguments
        // included), without the usage and tips that follow.
        let message = rendered
            .lines()
            .take_while(|line| !line.trim().is_empty())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let message = message.trim_start_matches("error: ");
        let message = if message.is_empty() {
            "invalid command line"
        } else {
            message
        };
        let usage = CliError::usage(format!("{message}; see `jwtkit {command} --help`"));
        let _ = write_stdout(format!("{}\n", usage.json(json)).as_bytes());
    } else {
        // An error quotes the offending argument, which can hold control or
        // bidi characters (clap strips only ESC): print it plain, escaped,
        // like every other diagnostic.
        let shown = output::escape(&rendered, output::Keep::Layout);
        let _ = std::io::stderr().lock().write_all(shown.as_bytes());
    }
    ExitCode::from(code)
}

/// Whether the raw command line asks for `--json` of a command that has the
/// flag (used only when clap could not parse it), and that command's name
/// (`store audit`). The subcommand names are the words that lead the line.
fn json_requested() -> (JsonErrors, String) {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let mut command = Cli::command();
    let mut names = Vec::new();
    for arg in &args {
        let Some(sub) = arg.to_str().and_then(|a| command.find_subcommand(a)) else {
            break;
        };
        let sub = sub.clone();
        names.push(sub.get_name().to_owned());
        command = sub;
    }
    let has_flag = command
        .get_arguments()
        .any(|a| a.get_long() == Some("json"));
    // After `--` every word is a value (a token), never a flag.
    let asked = args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    let shape = json_shape(has_flag && asked, names.first().map(String::as_str));
    (shape, names.join(" "))
}

/// Writes to stdout; a closed pipe or full disk is an error, not a panic.
/// Text is escaped for the terminal (newlines and tabs kept; JSON stays
/// valid and means the same); non-UTF-8 bytes (a raw secret) pass as they are.
fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let bytes = output::escape_bytes(bytes);
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::io(format!("cannot write to stdout: {e}")))
}

/// Runs an async command body on a small single-threaded runtime (store and
/// JWKS commands do I/O; the rest of the CLI stays synchronous).
fn block_on<F: std::future::Future<Output = Result<(), CliError>>>(
    future: F,
) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(future);
    // Not a plain drop, which waits for every blocking thread: a call into
    // a PKCS#11 module that never returns (a hung HSM) has already timed
    // out, and its error must be printed and the process exit.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    result
}

/// How long a command waits, once it has its result, for blocking calls
/// still running (a hung HSM's, after their own timeout) before it exits.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(1);

/// Warns when a store URI carries a PKCS#11 PIN itself (`pin-value=`):
/// accepted, but a command line shows in `ps` and the shell history
/// (RFC 7512 recommends `pin-source`). The PIN is never repeated.
fn warn_pin_value(uri: &str) {
    if uri.to_ascii_lowercase().starts_with("pkcs11:")
        && uri.to_ascii_lowercase().contains("pin-value=")
    {
        diag(format_args!(
            "warning: the store URI holds the PIN (pin-value=): it shows in `ps` and the shell \
             history; put the PIN in a file only the service's user can read and use \
             pin-source=file:/PATH instead"
        ));
    }
}

/// Prints a diagnostic line on stderr (never panics if stderr is gone).
/// One diagnostic is one line: every control character in it, newlines
/// included, is escaped, whatever part of the message it came from.
fn diag(message: fmt::Arguments<'_>) {
    let text = message.to_string();
    let line = output::escape(&text, output::Keep::Indented);
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `value` as one line of compact JSON.
fn to_json_line<T: Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| CliError::io(format!("cannot encode the output as JSON: {e}")))
}
