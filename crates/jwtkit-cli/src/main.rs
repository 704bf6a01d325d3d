//! `jwtkit`: sign, verify and inspect JSON Web Tokens, and manage their keys.
//!
//! Exit codes: 0 success; 1 the token was rejected (expired, bad signature,
//! wrong audience, undecodable, …); 2 usage or configuration error (bad flag,
//! unreadable or weak key, algorithm that does not fit the key, …).
//! Tokens and JSON go to stdout, diagnostics to stderr; both go through
//! [`output`], which escapes the control characters a terminal would act on.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

mod cmd;
mod duration;
mod error;
mod keyfile;
mod output;

use error::CliError;

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
    /// Generate keys, publish JWKS, compute thumbprints.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Manage a key store: init, rotate, list, jwks, audit.
    #[command(subcommand)]
    Store(cmd::store::StoreCommand),
    /// Measure sign/verify speed per algorithm next to the bare primitive.
    Speed(cmd::speed::SpeedArgs),
    /// Run a token service over HTTP (issue, refresh, revoke, JWKS, userinfo).
    Serve(cmd::serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return clap_failure(&err),
    };
    let verify_json = matches!(&cli.command, Command::Verify(args) if args.json);
    let result = match &cli.command {
        Command::Sign(args) => cmd::sign::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Keys(command) => cmd::keys::run(command),
        Command::Store(command) => cmd::store::run(command),
        Command::Speed(args) => cmd::speed::run(args),
        Command::Serve(args) => cmd::serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if verify_json {
                // Best effort: the exit code reports the failure even if stdout is gone.
                let _ = write_stdout(format!("{}\n", cmd::verify::failure_json(&err)).as_bytes());
            }
            // CliError's Display escapes its message (a kid, a typ, a URL…).
            diag(format_args!("{err}"));
            ExitCode::from(err.exit_code())
        }
    }
}

/// Reports a command-line parsing error (exit 2) or prints help/version (exit 0).
/// `verify --json` promises one JSON object on stdout even for usage errors.
fn clap_failure(err: &clap::Error) -> ExitCode {
    let code = u8::try_from(err.exit_code()).unwrap_or(error::EXIT_CONFIG);
    if err.use_stderr() && verify_json_requested() {
        let rendered = err.render().to_string();
        let first_line = rendered
            .lines()
            .next()
            .unwrap_or("invalid command line")
            .trim_start_matches("error: ");
        let usage = CliError::usage(format!("{first_line}; see `jwtkit verify --help`"));
        let _ = write_stdout(format!("{}\n", cmd::verify::failure_json(&usage)).as_bytes());
    }
    if err.use_stderr() {
        // An error quotes the offending argument, which can hold control or
        // bidi characters (clap strips only ESC): print it plain, escaped,
        // like every other diagnostic.
        let rendered = err.render().to_string();
        let shown = output::escape(&rendered, output::Keep::Layout);
        let _ = std::io::stderr().lock().write_all(shown.as_bytes());
    } else {
        // Help and version: our own text, with clap's styling.
        let _ = err.print();
    }
    ExitCode::from(code)
}

/// Whether the raw command line asks for `verify --json` (used only when
/// clap could not parse it).
fn verify_json_requested() -> bool {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    args.first().is_some_and(|a| a == "verify") && args.iter().any(|a| a == "--json")
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
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io(format!("cannot start the async runtime: {e}")))?
        .block_on(future)
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
