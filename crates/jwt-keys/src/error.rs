//! The one error type of `jwt-keys`.

use std::path::PathBuf;

use crate::store::KeyState;

/// A boxed error from a backend's own library (a KMS SDK, an HTTP client, …).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors from key stores, rotation and verification.
///
/// Token rejections coming from the verifier are [`Error::Core`] (their
/// [`kind`](Error::kind) is the same stable name `jwt-core` uses, e.g.
/// `unknown_key`); [`Error::is_retryable`] tells a retry layer whether trying
/// the same operation again may succeed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store has no key with this `kid` (or it has been retired).
    #[error("unknown key: the store has no usable key with kid `{kid}`; it may have been retired")]
    UnknownKey {
        /// The requested `kid`.
        kid: String,
    },
    /// A key was asked to sign but is not the active key.
    #[error("key `{kid}` is {state} and cannot sign; only the active key signs (ask the store for the active key again: it may have rotated)")]
    NotActive {
        /// The requested `kid`.
        kid: String,
        /// Its current state.
        state: KeyState,
    },
    /// The backend cannot change its keys (e.g. keys from environment variables).
    #[error("{operation} is not supported by the {backend} backend: it is read-only; {hint}")]
    ReadOnly {
        /// The backend's name, e.g. `"env"`.
        backend: &'static str,
        /// What was attempted, e.g. `"rotate"`.
        operation: &'static str,
        /// How keys of this backend are rotated instead.
        hint: &'static str,
    },
    /// The store holds no keys yet: `init` never ran there, or the store's
    /// name (a directory, a key, a mount) is not the one meant. Every read
    /// of such a store fails with this error, never with an empty key set.
    #[error("the {backend} store at {location} is not initialized: it holds no key state (if it should, check the store's name and location for a typo); run `jwtkit store init` (KeyStore::init) to create it")]
    NotInitialized {
        /// The backend's name.
        backend: &'static str,
        /// Where the store is (a directory, a URI).
        location: String,
    },
    /// `init` on a store that already holds keys.
    #[error(
        "the {backend} store at {location} is already initialized; use rotate to replace its keys"
    )]
    AlreadyInitialized {
        /// The backend's name.
        backend: &'static str,
        /// Where the store is.
        location: String,
    },
    /// A conditional rotation found another active key than expected:
    /// someone else rotated first.
    #[error("rotation conflict: expected active key `{expected}` but the active key is `{actual}`; another process rotated first")]
    Conflict {
        /// The `kid` the caller expected to be active.
        expected: String,
        /// The `kid` that is active.
        actual: String,
    },
    /// A builder setting or argument the caller set wrong: contradictory,
    /// out of range, or something the backend cannot do (e.g. `init` with an
    /// algorithm the backend cannot sign).
    #[error("invalid {setting}: {reason}")]
    InvalidConfig {
        /// The setting or argument at fault, e.g. `"verify_grace"`,
        /// `"algorithm"`, `"address"`.
        setting: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A well-formed request that the store's rotation policy forbids (e.g.
    /// an algorithm the policy does not allow).
    #[error("refused by the rotation policy: {reason}")]
    PolicyViolation {
        /// What the policy forbids and what it allows.
        reason: String,
    },
    /// What the store holds contradicts itself (no active key, a `kid`
    /// that already exists, an interrupted rotation); in any backend. A store
    /// file that cannot be read or parsed is [`Error::CorruptStore`], which
    /// names the file.
    #[error("inconsistent key store state: {reason}")]
    CorruptState {
        /// What is inconsistent and how to recover.
        reason: String,
    },
    /// A remote backend (KMS, Vault, …) failed.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// The backend library's error.
        #[source]
        source: BoxError,
        /// Whether retrying may succeed (a timeout, throttling, a 5xx).
        retryable: bool,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A store file is unreadable or inconsistent.
    #[error("corrupt key store file {}: {reason}", path.display())]
    CorruptStore {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A private key file others can read, or a store directory or metadata
    /// file others can write.
    #[error("insecure permissions on {}: mode {mode:03o} {problem}", path.display())]
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// What the mode allows and how to fix it.
        problem: &'static str,
    },
    /// A store directory or file owned by another user than the one this
    /// process runs as (its effective uid) or root: that user could plant
    /// keys the store would trust.
    #[error(
        "insecure owner of {}: it belongs to uid {owner}, but this process runs as uid {euid}; \
         only files and directories owned by that user or by root are trusted (another user could \
         plant keys in them): `chown` it to uid {euid}, or run as its owner",
        path.display()
    )]
    InsecureOwner {
        /// The file or directory.
        path: PathBuf,
        /// The uid that owns it.
        owner: u32,
        /// The effective uid of this process.
        euid: u32,
    },
    /// `init` found files in the store's directory that the store did not
    /// write. Nothing was written: the store never shares its directory, so
    /// it can never delete or overwrite someone else's file.
    #[error(
        "refusing to initialize a key store in {}: it holds files the store did not write ({}); \
         use an empty or new directory for the store",
        dir.display(),
        files.join(", ")
    )]
    UnexpectedFiles {
        /// The store directory.
        dir: PathBuf,
        /// The names of the files found (at most 20).
        files: Vec<String>,
    },
    /// A directory that holds key files named as the store names them
    /// (`<thumbprint>.pem`) but no metadata file (`keys.json`): a store
    /// whose metadata was lost. It is never initialized over; nothing was
    /// changed.
    #[error(
        "the key store directory {} holds a store's key files but no keys.json (files: {}): its \
         metadata was lost; nothing was changed. Restore keys.json from a \
         backup to recover the store (the key files alone do not say which key signs or how long \
         the others verify); or, to start over, move these files out of the directory (tokens they \
         signed will stop verifying) and initialize it again",
        dir.display(),
        files.join(", ")
    )]
    DamagedStore {
        /// The store directory.
        dir: PathBuf,
        /// The files found that are not the store's own (at most 20).
        files: Vec<String>,
    },
    /// An environment variable is missing or unusable.
    #[error("environment variable {var}{}{reason}", if reason.starts_with("is ") { " " } else { ": " })]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Fetching a remote JWKS failed.
    #[error("fetching the JWKS from {url} failed: {source}")]
    Fetch {
        /// The JWKS URL.
        url: String,
        /// Why.
        #[source]
        source: FetchError,
    },
    /// The verifier has no key set it may still use: the last good one is
    /// older than the configured maximum staleness and refreshing failed.
    #[error("the key set from {source_name} is stale ({age_secs}s old, the limit is {max_stale_secs}s) and could not be refreshed; check that the key source is reachable")]
    StaleKeys {
        /// The key source (a URL or a store name).
        source_name: String,
        /// Age of the last good key set.
        age_secs: i64,
        /// The configured maximum staleness.
        max_stale_secs: i64,
    },
    /// A key store URI that cannot be opened.
    #[error(
        "invalid key store URI {:?}: {}",
        crate::uri::redact_userinfo(uri),
        crate::uri::redact_userinfo(reason)
    )]
    InvalidUri {
        /// The URI as given, with any user name and password replaced by
        /// `***` (the errors of this crate never hold a password).
        uri: String,
        /// What is wrong, and the accepted forms.
        reason: String,
    },
    /// A JWKS URL the verifier refuses (not a URL, plain `http` to another
    /// host than a loopback address, another scheme). Its
    /// [`kind`](Error::kind) is `invalid_uri`, like a key store URI's.
    #[error("invalid JWKS URL {url:?}: {reason}")]
    InvalidJwksUrl {
        /// The URL as given.
        url: String,
        /// What is wrong, and what is accepted.
        reason: String,
    },
    /// An error from `jwt-core`: a key that cannot be used, or a token rejection.
    #[error(transparent)]
    Core(#[from] jwt_core::Error),
}

/// What kind of [`Error`] this is, without its details: cheap to copy, to
/// compare and to count in metrics.
///
/// The names ([`ErrorKind::as_str`]) are stable: `jwtkit` commands print them
/// as their `"error"` member, and scripts depend on them.
///
/// ```
/// use std::time::Duration;
/// use jwt_keys::{ErrorKind, RotationPolicy};
///
/// let err = RotationPolicy::builder()
///     .rotate_after(Duration::ZERO)
///     .build()
///     .unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidConfig);
/// assert_eq!(err.kind().as_str(), "invalid_config");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The store has no usable key with this `kid`.
    UnknownKey,
    /// A key that is not the active key was asked to sign.
    NotActive,
    /// The backend cannot change its keys.
    ReadOnly,
    /// The store holds no keys yet.
    NotInitialized,
    /// `init` on a store that already holds keys.
    AlreadyInitialized,
    /// Another process rotated first.
    Conflict,
    /// A builder setting or argument the caller set wrong.
    InvalidConfig,
    /// A request the rotation policy forbids.
    PolicyViolation,
    /// What the store holds contradicts itself.
    CorruptState,
    /// A remote backend failed.
    Backend,
    /// Reading or writing a file failed.
    Io,
    /// A store file is unreadable or inconsistent.
    CorruptStore,
    /// A key file or store directory with unsafe permission bits.
    InsecurePermissions,
    /// A store file or directory owned by another user.
    InsecureOwner,
    /// `init` found files the store did not write.
    UnexpectedFiles,
    /// A store directory whose metadata was lost.
    DamagedStore,
    /// An environment variable is missing or unusable.
    Env,
    /// Fetching a remote JWKS failed.
    Fetch,
    /// The last good key set is too old and could not be refreshed.
    StaleKeys,
    /// A key store URI or a JWKS URL that cannot be used.
    InvalidUri,
    /// An error from `jwt-core` (a token rejection, a key that cannot be
    /// used): its name is `jwt-core`'s.
    Core(jwt_core::ErrorKind),
}

impl ErrorKind {
    /// The stable snake_case name of this kind, e.g. `"not_initialized"`;
    /// `jwt-core`'s name for [`ErrorKind::Core`].
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnknownKey => "unknown_key",
            ErrorKind::NotActive => "not_active",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::NotInitialized => "not_initialized",
            ErrorKind::AlreadyInitialized => "already_initialized",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::PolicyViolation => "policy_violation",
            ErrorKind::CorruptState => "corrupt_state",
            ErrorKind::Backend => "backend",
            ErrorKind::Io => "io",
            ErrorKind::CorruptStore => "corrupt_store",
            ErrorKind::InsecurePermissions => "insecure_permissions",
            ErrorKind::InsecureOwner => "insecure_owner",
            ErrorKind::UnexpectedFiles => "unexpected_files",
            ErrorKind::DamagedStore => "damaged_store",
            ErrorKind::Env => "env",
            ErrorKind::Fetch => "fetch",
            ErrorKind::StaleKeys => "stale_keys",
            ErrorKind::InvalidUri => "invalid_uri",
            ErrorKind::Core(kind) => kind.as_str(),
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares by stable name, so `err.kind() == "unknown_key"` reads like the
/// name a script sees.
impl PartialEq<&str> for ErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A transport error with its causes (reqwest's own message stops at
/// "error sending request", the cause — connection refused, a TLS or DNS
/// failure — is in its sources), and what to check.
fn transport_message(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    let lower = text.to_ascii_lowercase();
    if err.is_timeout() {
        text.push_str(" (the server did not answer in time; check that it is up and reachable)");
    } else if lower.contains("certificate") || lower.contains("tls handshake") {
        text.push_str(
            " (the server's TLS certificate is not trusted for this host: if a private CA \
             signed it, trust that CA for this fetch (`jwtkit verify|discover --ca-cert FILE`, \
             `CacheOptions::with_root_certificates_pem`); otherwise check the URL's host name)",
        );
    } else if err.is_connect() {
        text.push_str(" (check that the server is up and that the URL's host and port are right)");
    }
    text
}

/// Why fetching a JWKS failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The connection failed, or the request timed out.
    #[error("{}", transport_message(.0))]
    Transport(#[source] reqwest::Error),
    /// The server answered with a non-success status.
    #[error("the server answered HTTP {status}")]
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// The response body exceeds the size limit.
    #[error("the response is larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The response is not JSON (by its `Content-Type`).
    #[error(
        "the response is not a JWK Set: its Content-Type is {content_type}, not JSON. Check that \
         the URL is the provider's JWKS (the `jwks_uri` of its /.well-known/openid-configuration), \
         not a web page"
    )]
    NotJson {
        /// The response's content type.
        content_type: String,
    },
    /// The body is a JSON object with a `keys` array whose entries are not
    /// JWKs.
    #[error("the response is not a valid JWKS: {0}")]
    InvalidJwks(#[source] jwt_core::Error),
    /// The body is not a JWK Set at all: not JSON, or JSON without a `keys`
    /// array (an HTML page, an OpenID discovery document, an error answer).
    #[error(
        "the response is not a JWK Set: {reason}; received {received}. Check that the URL is \
         the provider's JWKS (the `jwks_uri` of its /.well-known/openid-configuration), not \
         its discovery document or a web page"
    )]
    NotJwkSet {
        /// What the body is instead.
        reason: String,
        /// The `Content-Type` and the first bytes of the body, non-printable
        /// bytes escaped as `\xNN`.
        received: String,
    },
    /// The server answered with a redirect, which is never followed: its
    /// target could be a URL the verifier would refuse (plain `http`,
    /// another host), so the configured URL must be the final one.
    #[error(
        "the server answered HTTP {status} redirecting to {location}; redirects are not followed \
         (the target could be a URL that would be refused, such as plain http): \
         configure the final JWKS URL instead"
    )]
    Redirect {
        /// The 3xx status code.
        status: u16,
        /// The `Location` header as received (non-printable bytes escaped
        /// as `\xNN`, cut at 256 bytes), or `(none)`.
        location: String,
    },
    /// The JWKS holds no key this library can verify with.
    #[error("the JWKS has no usable signature key ({skipped} entries skipped)")]
    NoUsableKeys {
        /// How many entries were skipped as unusable.
        skipped: usize,
    },
}

impl FetchError {
    fn is_retryable(&self) -> bool {
        match self {
            FetchError::Transport(_) => true,
            FetchError::Status { status } => *status == 429 || *status >= 500,
            // A garbage answer may be a deploy in progress at the provider.
            FetchError::NotJson { .. }
            | FetchError::InvalidJwks(_)
            | FetchError::NotJwkSet { .. }
            | FetchError::NoUsableKeys { .. } => true,
            FetchError::TooLarge { .. } | FetchError::Redirect { .. } => false,
        }
    }
}

impl Error {
    /// `true` when retrying the same call may succeed (the same meaning as
    /// `is_retryable` in `jwt-refresh` and `jwtkit`): I/O errors that are
    /// typically transient, fetch failures, remote backends that say so,
    /// rotation conflicts and signing with a key that has just rotated.
    /// Configuration mistakes, policy violations and corrupt state are not.
    pub fn is_retryable(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            Error::Io { source, .. } => matches!(
                source.kind(),
                K::Interrupted | K::WouldBlock | K::TimedOut | K::ResourceBusy
            ),
            Error::Backend { retryable, .. } => *retryable,
            Error::Fetch { source, .. } => source.is_retryable(),
            Error::StaleKeys { .. } | Error::Conflict { .. } | Error::NotActive { .. } => true,
            _ => false,
        }
    }

    /// `true` when a *token* was rejected (answer 401); `false` for store,
    /// configuration and I/O errors (answer 500 / exit 2).
    pub fn is_rejection(&self) -> bool {
        match self {
            Error::Core(e) => e.is_rejection(),
            _ => false,
        }
    }

    /// The kind of this error, with a stable snake_case name
    /// ([`ErrorKind::as_str`], e.g. `"unknown_key"`, `"read_only"`). Token
    /// rejections carry `jwt-core`'s kind ([`ErrorKind::Core`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownKey { .. } => ErrorKind::UnknownKey,
            Error::NotActive { .. } => ErrorKind::NotActive,
            Error::ReadOnly { .. } => ErrorKind::ReadOnly,
            Error::NotInitialized { .. } => ErrorKind::NotInitialized,
            Error::AlreadyInitialized { .. } => ErrorKind::AlreadyInitialized,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::InvalidConfig { .. } => ErrorKind::InvalidConfig,
            Error::PolicyViolation { .. } => ErrorKind::PolicyViolation,
            Error::CorruptState { .. } => ErrorKind::CorruptState,
            Error::Backend { .. } => ErrorKind::Backend,
            Error::Io { .. } => ErrorKind::Io,
            Error::CorruptStore { .. } => ErrorKind::CorruptStore,
            Error::InsecurePermissions { .. } => ErrorKind::InsecurePermissions,
            Error::InsecureOwner { .. } => ErrorKind::InsecureOwner,
            Error::UnexpectedFiles { .. } => ErrorKind::UnexpectedFiles,
            Error::DamagedStore { .. } => ErrorKind::DamagedStore,
            Error::Env { .. } => ErrorKind::Env,
            Error::Fetch { .. } => ErrorKind::Fetch,
            Error::StaleKeys { .. } => ErrorKind::StaleKeys,
            Error::InvalidUri { .. } | Error::InvalidJwksUrl { .. } => ErrorKind::InvalidUri,
            Error::Core(e) => ErrorKind::Core(e.kind()),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::CorruptStore {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::InvalidUri`] for `uri`: the user information of every
    /// URL in the URI and in `reason` is replaced by `***`, so neither the
    /// message nor `Debug` output ever shows a password.
    pub(crate) fn invalid_uri(uri: &str, reason: impl Into<String>) -> Self {
        Error::InvalidUri {
            uri: crate::uri::redact_userinfo(uri),
            reason: crate::uri::redact_userinfo(&reason.into()),
        }
    }

    pub(crate) fn invalid_config(setting: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            setting,
            reason: reason.into(),
        }
    }

    pub(crate) fn policy_violation(reason: impl Into<String>) -> Self {
        Error::PolicyViolation {
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt_state(reason: impl Into<String>) -> Self {
        Error::CorruptState {
            reason: reason.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jwt_core::Algorithm;

    use super::*;
    use crate::lifecycle::Ledger;
    use crate::policy::RotationPolicy;

    fn policy() -> RotationPolicy {
        RotationPolicy::builder()
            .allowed_algorithms([Algorithm::ES256])
            .build()
            .unwrap()
    }

    /// The names scripts see (`jwtkit … --json` prints them): a rename is
    /// a breaking change.
    #[test]
    fn kind_names_are_stable() {
        let names = [
            (ErrorKind::UnknownKey, "unknown_key"),
            (ErrorKind::NotActive, "not_active"),
            (ErrorKind::ReadOnly, "read_only"),
            (ErrorKind::NotInitialized, "not_initialized"),
            (ErrorKind::AlreadyInitialized, "already_initialized"),
            (ErrorKind::Conflict, "conflict"),
            (ErrorKind::InvalidConfig, "invalid_config"),
            (ErrorKind::PolicyViolation, "policy_violation"),
            (ErrorKind::CorruptState, "corrupt_state"),
            (ErrorKind::Backend, "backend"),
            (ErrorKind::Io, "io"),
            (ErrorKind::CorruptStore, "corrupt_store"),
            (ErrorKind::InsecurePermissions, "insecure_permissions"),
            (ErrorKind::InsecureOwner, "insecure_owner"),
            (ErrorKind::UnexpectedFiles, "unexpected_files"),
            (ErrorKind::DamagedStore, "damaged_store"),
            (ErrorKind::Env, "env"),
            (ErrorKind::Fetch, "fetch"),
            (ErrorKind::StaleKeys, "stale_keys"),
            (ErrorKind::InvalidUri, "invalid_uri"),
            (
                ErrorKind::Core(jwt_core::ErrorKind::UnknownKey),
                "unknown_key",
            ),
        ];
        for (kind, name) in names {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(kind, name);
        }
        // Token rejections keep jwt-core's kind, so callers can match on it.
        let core = Error::Core(jwt_core::Error::InvalidSignature { kid: None });
        assert_eq!(
            core.kind(),
            ErrorKind::Core(jwt_core::ErrorKind::InvalidSignature)
        );
    }

    /// Builder mistakes name the setting at fault.
    #[test]
    fn invalid_settings_are_named() {
        let cases: [(&str, Error); 4] = [
            (
                "rotate_after",
                RotationPolicy::builder()
                    .rotate_after(Duration::ZERO)
                    .build()
                    .unwrap_err(),
            ),
            (
                "max_ttl",
                crate::Verifier::builder(
                    crate::KeySource::Remote("https://idp.example.com/jwks".into()),
                    jwt_core::Validation::new([Algorithm::ES256]),
                )
                .cache(
                    crate::CacheOptions::default()
                        .with_min_ttl(Duration::from_secs(600))
                        .with_max_ttl(Duration::from_secs(60)),
                )
                .build()
                .map(|_| ())
                .unwrap_err(),
            ),
            (
                "deletion_window_days",
                crate::aws_kms::KmsKeyStore::builder("alias/x")
                    .deletion_window_days(3)
                    .build()
                    .unwrap_err(),
            ),
            (
                "address",
                crate::vault::VaultKeyStore::builder("transit", "k")
                    .token("t")
                    .build()
                    .unwrap_err(),
            ),
        ];
        for (expected, err) in cases {
            match &err {
                Error::InvalidConfig { setting, .. } => assert_eq!(*setting, expected, "{err}"),
                other => panic!("{expected}: expected InvalidConfig, got {other:?}"),
            }
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            assert!(!err.is_retryable() && !err.is_rejection(), "{err}");
        }
    }

    /// An algorithm the policy does not allow is a policy violation, not a
    /// configuration mistake of the store.
    #[test]
    fn a_disallowed_algorithm_is_a_policy_violation() {
        let err = Ledger::new(policy(), Algorithm::EdDSA, 0, "a", "p").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PolicyViolation, "{err}");
        assert!(err.to_string().contains("EdDSA is not allowed"), "{err}");
        assert!(!err.is_retryable());
    }

    /// A ledger that contradicts itself (no pending key, no active key, a
    /// kid already there) is corrupt state.
    #[test]
    fn a_self_contradicting_ledger_is_corrupt_state() {
        let ledger = Ledger::new(policy(), Algorithm::ES256, 0, "a", "p").unwrap();

        let mut no_pending = ledger.clone();
        no_pending.keys.retain(|r| r.kid != "p");
        let err = no_pending
            .rotate(10, None, "n", Algorithm::ES256)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CorruptState, "{err}");
        assert!(
            err.to_string().contains("no active or no pending key"),
            "{err}"
        );

        let mut no_active = ledger.clone();
        no_active.keys.retain(|r| r.kid != "a");
        let err = no_active.check_active(None).unwrap_err();
        assert!(
            matches!(&err, Error::CorruptState { reason } if reason.contains("no active key")),
            "{err:?}"
        );

        let mut reused = ledger;
        let err = reused.rotate(10, None, "a", Algorithm::ES256).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CorruptState, "{err}");
        assert!(!err.is_retryable());
    }
}
