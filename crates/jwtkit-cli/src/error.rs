//! The command's one error type: a stable kind, a message saying what was
//! wrong and what to do, and the exit code.

use std::fmt;

/// Exit code for a token that was rejected (expired, bad signature, …).
pub(crate) const EXIT_REJECTED: u8 = 1;
/// Exit code for usage and configuration errors (bad flag, unreadable key, weak key, …).
pub(crate) const EXIT_CONFIG: u8 = 2;

/// A failure of a subcommand.
#[derive(Debug)]
pub(crate) struct CliError {
    /// Stable machine-readable name (`expired`, `invalid_key`, `usage`, …);
    /// `verify --json` prints it as `"error"`.
    kind: &'static str,
    message: String,
    exit_code: u8,
    /// The command already wrote its answer on stdout (an audit's findings,
    /// what `inspect` could decode): with `--json`, no second document follows.
    reported: bool,
}

/// How a `--json` command reports a failure on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonErrors {
    /// Not a `--json` run: the human line goes to stderr.
    Off,
    /// `{"error":KIND,"message":…}` on stdout, nothing on stderr.
    On,
    /// `verify --json`: the same with `"valid":false` first, the shape of its
    /// success document (`{"valid":true,…}`).
    Verify,
}

/// The `--json` document of a failure.
#[derive(serde::Serialize)]
struct Failure<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    valid: Option<bool>,
    error: &'a str,
    message: &'a str,
}

impl CliError {
    /// A usage error: a flag or argument that cannot work (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new("usage", message, EXIT_CONFIG)
    }

    /// A configuration error (exit 2).
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new("config", message, EXIT_CONFIG)
    }

    /// A key that cannot be loaded or used (exit 2).
    pub(crate) fn invalid_key(message: impl Into<String>) -> Self {
        Self::new("invalid_key", message, EXIT_CONFIG)
    }

    /// A key too weak for its algorithm (exit 2).
    pub(crate) fn weak_key(message: impl Into<String>) -> Self {
        Self::new("weak_key", message, EXIT_CONFIG)
    }

    /// A key or secret file others may change (exit 2).
    pub(crate) fn insecure_permissions(message: impl Into<String>) -> Self {
        Self::new("insecure_permissions", message, EXIT_CONFIG)
    }

    /// A server the command needs (Redis, Vault, KMS, an HSM) did not answer:
    /// an outage, not a mistake in the settings (exit 2; starting again once
    /// it answers may work).
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new("unavailable", message, EXIT_CONFIG)
    }

    /// Reading input or writing output failed (exit 2).
    pub(crate) fn io(message: impl Into<String>) -> Self {
        Self::new("io", message, EXIT_CONFIG)
    }

    /// A token rejected for a reason found outside jwt-core (exit 1), with one
    /// of jwt-core's kind names (`malformed`, `too_large`).
    pub(crate) fn rejected(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(kind, message, EXIT_REJECTED)
    }

    fn new(kind: &'static str, message: impl Into<String>, exit_code: u8) -> Self {
        CliError {
            kind,
            // A PKCS#11 PIN (`pin-value=…`) never reaches the terminal,
            // whichever message quotes a store URI or a path built from one.
            message: jwt_keys::pkcs11::redact_pin(&message.into()),
            exit_code,
            reported: false,
        }
    }

    /// An error while checking a token: exit 1 when the token was rejected,
    /// 2 when the key or settings are at fault.
    pub(crate) fn from_verification(err: jwt_core::Error) -> Self {
        let exit_code = if err.is_rejection() {
            EXIT_REJECTED
        } else {
            EXIT_CONFIG
        };
        Self::new(err.kind().as_str(), err.to_string(), exit_code)
    }

    /// An error while setting up (loading keys, building a signer or
    /// verifier): always exit 2. A token-rejection kind here (e.g. a JWK bound
    /// to another algorithm) is really a configuration mistake, so it is
    /// reported as `config` rather than misleading a script into blaming the token.
    pub(crate) fn from_setup(err: jwt_core::Error) -> Self {
        let kind = if err.is_rejection() {
            "config"
        } else {
            err.kind().as_str()
        };
        Self::new(kind, err.to_string(), EXIT_CONFIG)
    }

    /// An error from a key store or a key-set verifier: exit 1 when a token
    /// was rejected, 2 otherwise (store unreachable, not initialized, …).
    pub(crate) fn from_keys(err: jwt_keys::Error) -> Self {
        let exit_code = if err.is_rejection() {
            EXIT_REJECTED
        } else {
            EXIT_CONFIG
        };
        Self::new(err.kind().as_str(), err.to_string(), exit_code)
    }

    /// The same error with another exit code.
    pub(crate) fn with_exit(mut self, exit_code: u8) -> Self {
        self.exit_code = exit_code;
        self
    }

    /// Prefixes the message with where the error happened (e.g. the key file).
    pub(crate) fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = jwt_keys::pkcs11::redact_pin(&format!("{context}: {}", self.message));
        self
    }

    /// Marks that the command already printed its answer on stdout (which
    /// says what failed), so a `--json` run prints no error document after it.
    pub(crate) fn reported(mut self) -> Self {
        self.reported = true;
        self
    }

    /// [`reported`](Self::reported) when `yes` (a `--json` run whose
    /// document already says what failed).
    pub(crate) fn reported_if(self, yes: bool) -> Self {
        if yes {
            self.reported()
        } else {
            self
        }
    }

    /// Whether the command already printed its answer on stdout.
    pub(crate) fn is_reported(&self) -> bool {
        self.reported
    }

    /// The one-line `--json` document reporting this error (without the
    /// newline); `shape` says whether it carries `"valid":false`.
    pub(crate) fn json(&self, shape: JsonErrors) -> String {
        let doc = Failure {
            valid: (shape == JsonErrors::Verify).then_some(false),
            error: self.kind,
            message: &self.message,
        };
        // Two strings and a bool always serialize.
        serde_json::to_string(&doc).unwrap_or_else(|_| format!(r#"{{"error":"{}"}}"#, self.kind))
    }

    /// The same error (kind, exit code) with a message that says more.
    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = jwt_keys::pkcs11::redact_pin(&message.into());
        self
    }

    /// The stable kind name.
    pub(crate) fn kind(&self) -> &'static str {
        self.kind
    }

    /// The human-readable message, unescaped: serialize it (JSON) or print
    /// it through [`Display`](fmt::Display), never raw.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        self.exit_code
    }
}

/// One line, with the message's control characters escaped: messages quote
/// text from tokens and remote documents (a `kid`, a `typ`, a `Location`).
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = crate::output::escape(&self.message, crate::output::Keep::Indented);
        write!(f, "error [{}]: {message}", self.kind)
    }
}
