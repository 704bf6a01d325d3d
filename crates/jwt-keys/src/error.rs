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
    /// The store holds no keys yet.
    #[error("the {backend} store at {location} is not initialized; run `jwtkit store init` (KeyStore::init) first")]
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
    /// A policy or option that is contradictory or unsafe.
    #[error("invalid policy: {reason}")]
    Policy {
        /// What is wrong and what to do.
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
    #[error("environment variable {var}: {reason}")]
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
    #[error("invalid key store URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI as given.
        uri: String,
        /// What is wrong, and the accepted forms.
        reason: String,
    },
    /// An error from `jwt-core`: a key that cannot be used, or a token rejection.
    #[error(transparent)]
    Core(#[from] jwt_core::Error),
}

/// Why fetching a JWKS failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The connection failed, or the request timed out.
    #[error("{0}")]
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
    #[error("the response is not JSON (Content-Type: {content_type})")]
    NotJson {
        /// The response's content type.
        content_type: String,
    },
    /// The body is not a JWKS.
    #[error("the response is not a valid JWKS: {0}")]
    InvalidJwks(#[source] jwt_core::Error),
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
            | FetchError::NoUsableKeys { .. } => true,
            FetchError::TooLarge { .. } | FetchError::Redirect { .. } => false,
        }
    }
}

impl Error {
    /// `true` when retrying the same operation may succeed: I/O errors that
    /// are typically transient, fetch failures, remote backends that say so,
    /// rotation conflicts and signing with a key that has just rotated.
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

    /// A stable snake_case name for this error, e.g. `"unknown_key"`,
    /// `"read_only"`. Token rejections use `jwt-core`'s names.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::UnknownKey { .. } => "unknown_key",
            Error::NotActive { .. } => "not_active",
            Error::ReadOnly { .. } => "read_only",
            Error::NotInitialized { .. } => "not_initialized",
            Error::AlreadyInitialized { .. } => "already_initialized",
            Error::Conflict { .. } => "conflict",
            Error::Policy { .. } => "policy",
            Error::Backend { .. } => "backend",
            Error::Io { .. } => "io",
            Error::CorruptStore { .. } => "corrupt_store",
            Error::InsecurePermissions { .. } => "insecure_permissions",
            Error::InsecureOwner { .. } => "insecure_owner",
            Error::UnexpectedFiles { .. } => "unexpected_files",
            Error::DamagedStore { .. } => "damaged_store",
            Error::Env { .. } => "env",
            Error::Fetch { .. } => "fetch",
            Error::StaleKeys { .. } => "stale_keys",
            Error::InvalidUri { .. } => "invalid_uri",
            Error::Core(e) => e.kind().as_str(),
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

    pub(crate) fn policy(reason: impl Into<String>) -> Self {
        Error::Policy {
            reason: reason.into(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
