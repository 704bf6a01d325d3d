//! How the Vault store gets its token: a token given as is, or a login with
//! AppRole, JWT or Kubernetes ([`VaultAuth`]), from code or from the
//! environment (`VAULT_AUTH_METHOD` and friends).

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::{header_safe, Secret};
use crate::error::{Error, Result};
use crate::file::{check_protection, Protection};

/// `VAULT_AUTH_METHOD`: `token` (default), `approle`, `jwt` or `kubernetes`.
pub const ENV_AUTH_METHOD: &str = "VAULT_AUTH_METHOD";
/// `VAULT_AUTH_MOUNT`: the auth method's mount path, when not its default.
pub const ENV_AUTH_MOUNT: &str = "VAULT_AUTH_MOUNT";

/// How the store authenticates to Vault.
///
/// | method | login | mount (default) | renewal / re-login |
/// |---|---|---|---|
/// | [`token`](Self::token) | none: the token is used as given | — | renewed while renewable; never replaced |
/// | [`approle`](Self::approle) | `auth/MOUNT/login` with role id and secret id | `approle` | renewed at ⅔ of its TTL; logs in again at its max TTL or when refused |
/// | [`jwt`](Self::jwt) | `auth/MOUNT/login` with role and the JWT read from a file | `jwt` | the same; the file is read again at each login |
/// | [`kubernetes`](Self::kubernetes) | `auth/MOUNT/login` with role and the service-account token | `kubernetes` | the same |
///
/// `Debug` never shows the token or the secret id.
///
/// ```
/// use jwt_keys::vault::{SecretId, VaultAuth};
///
/// let auth = VaultAuth::approle("3f1c…role-id", SecretId::new("s.secret-id-value"));
/// assert_eq!(auth.method(), "approle");
/// assert!(!format!("{auth:?}").contains("secret-id-value"));
/// let wrapped = VaultAuth::approle(
///     "3f1c…role-id",
///     SecretId::from_file("/run/secrets/wrapped-secret-id").response_wrapped(),
/// );
/// let k8s = VaultAuth::kubernetes("jwt-issuer", VaultAuth::KUBERNETES_TOKEN_FILE).with_mount("k8s-prod");
/// assert_eq!(k8s.mount(), Some("k8s-prod"));
/// ```
#[derive(Clone)]
pub struct VaultAuth {
    method: Method,
    mount: Option<String>,
}

#[derive(Clone)]
enum Method {
    Token(Secret),
    AppRole {
        role_id: String,
        secret_id: SecretId,
    },
    Jwt {
        role: String,
        jwt_file: PathBuf,
    },
    Kubernetes {
        role: String,
        jwt_file: PathBuf,
    },
}

/// An AppRole secret id: the value, or a file that holds it (read again at
/// each login, so whoever delivers it can replace it); optionally
/// response-wrapped (the value is a wrapping token that is unwrapped first).
#[derive(Clone)]
pub struct SecretId {
    source: SecretSource,
    wrapped: bool,
}

#[derive(Clone)]
enum SecretSource {
    Value(Secret),
    File(PathBuf),
}

impl SecretId {
    /// The secret id itself (`VAULT_SECRET_ID`).
    pub fn new(secret_id: impl Into<String>) -> SecretId {
        SecretId {
            source: SecretSource::Value(Secret::new(secret_id)),
            wrapped: false,
        }
    }

    /// A file holding the secret id (`VAULT_SECRET_ID_FILE`); surrounding
    /// whitespace is ignored. Read at each login, and refused unless it is
    /// a regular file of at most [`MAX_LOGIN_FILE_BYTES`], owned by this
    /// process's user or root, with no permission for group or others
    /// (`chmod 600`).
    pub fn from_file(path: impl Into<PathBuf>) -> SecretId {
        SecretId {
            source: SecretSource::File(path.into()),
            wrapped: false,
        }
    }

    /// The value is a response-wrapping token around the secret id
    /// (`VAULT_SECRET_ID_WRAPPED=true`, e.g. from
    /// `vault write -wrap-ttl=5m -f auth/approle/role/R/secret-id`). It is
    /// checked (it must come from `auth/MOUNT/role/…/secret-id`) and
    /// unwrapped once; a new one in the file is unwrapped when it appears.
    pub fn response_wrapped(mut self) -> SecretId {
        self.wrapped = true;
        self
    }

    pub(super) fn is_wrapped(&self) -> bool {
        self.wrapped
    }

    /// The configured value (the wrapping token when wrapped), read now.
    pub(super) async fn read(&self) -> std::result::Result<Secret, LoginFileError> {
        match &self.source {
            SecretSource::Value(s) => Ok(s.clone()),
            SecretSource::File(p) => read_login_file(p, LoginFile::SecretId)
                .await
                .map(|c| c.secret),
        }
    }

    /// The environment variable that set it, for messages.
    pub(super) fn variable(&self) -> &'static str {
        match self.source {
            SecretSource::Value(_) => "VAULT_SECRET_ID",
            SecretSource::File(_) => "VAULT_SECRET_ID_FILE",
        }
    }

    fn empty(&self) -> bool {
        matches!(&self.source, SecretSource::Value(s) if s.is_empty())
    }
}

impl fmt::Debug for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SecretId");
        match &self.source {
            SecretSource::Value(_) => d.field("value", &"<redacted>"),
            SecretSource::File(p) => d.field("file", p),
        };
        d.field("wrapped", &self.wrapped).finish()
    }
}

/// The largest login file read, in bytes: a secret id is 36 bytes and a
/// workload JWT a few KiB, so anything larger is the wrong file (or
/// `/dev/zero`-like, which would otherwise be read until memory runs out).
pub const MAX_LOGIN_FILE_BYTES: u64 = 64 * 1024;

/// How long reading a login file may take (a hung network file system).
const LOGIN_FILE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a login file holds, which decides how it must be protected.
///
/// | file | owner | refused | warned |
/// |---|---|---|---|
/// | AppRole secret id | this user or root | any permission for group or others (it is a credential: `chmod 600`) | — |
/// | JWT (`jwt` method) | this user or root | writable by group or others | readable by others (they could log in as this workload until the JWT expires) |
/// | service-account token (`kubernetes`) | this user or root | writable by group or others | — (the kubelet mounts it 0644, owned by root, unless the pod sets `runAsUser`/`fsGroup`: readable by design) |
///
/// A file of another user is refused because that user could put a token
/// or secret id of their choosing there and log the store in as another
/// identity; a writable one for the same reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoginFile {
    /// `VAULT_SECRET_ID_FILE`.
    SecretId,
    /// `VAULT_JWT_FILE` of the `jwt` method.
    Jwt,
    /// `VAULT_JWT_FILE` of the `kubernetes` method.
    Kubernetes,
}

impl LoginFile {
    fn what(self) -> &'static str {
        match self {
            LoginFile::SecretId => "secret id file",
            LoginFile::Jwt => "JWT file",
            LoginFile::Kubernetes => "service-account token file",
        }
    }

    fn holds(self) -> &'static str {
        match self {
            LoginFile::SecretId => "the secret id",
            LoginFile::Jwt => "the workload identity token (a JWT)",
            LoginFile::Kubernetes => "the pod's service-account token",
        }
    }

    pub(super) fn variable(self) -> &'static str {
        match self {
            LoginFile::SecretId => "VAULT_SECRET_ID_FILE",
            LoginFile::Jwt | LoginFile::Kubernetes => "VAULT_JWT_FILE",
        }
    }
}

/// A login file's content.
pub(super) struct LoginFileContent {
    /// The content without surrounding whitespace.
    pub(super) secret: Secret,
    /// Users other than the owner may read it (allowed for tokens only).
    pub(super) readable_by_others: bool,
}

/// Why a login file cannot be used: the message names the file, the
/// setting and the fix.
#[derive(Debug)]
pub(super) struct LoginFileError {
    pub(super) message: String,
    pub(super) retryable: bool,
    pub(super) source: Option<std::io::Error>,
}

/// Reads a login file (read again at each login: its owner replaces it),
/// off the async threads and bounded in time; see [`LoginFile`] for what is
/// refused.
pub(super) async fn read_login_file(
    path: &Path,
    kind: LoginFile,
) -> std::result::Result<LoginFileContent, LoginFileError> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return read_login_file_now(path, kind);
    };
    let owned = path.to_owned();
    let task = runtime.spawn_blocking(move || read_login_file_now(&owned, kind));
    let failed = |message: String, retryable: bool| LoginFileError {
        message,
        retryable,
        source: None,
    };
    match tokio::time::timeout(LOGIN_FILE_TIMEOUT, task).await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => Err(failed(
            format!(
                "reading the {} {} ({}) failed: {e}",
                kind.what(),
                path.display(),
                kind.variable()
            ),
            false,
        )),
        Err(_) => Err(failed(
            format!(
                "reading the {} {} ({}) took more than {} s; check the file system it is on (a hung network mount?)",
                kind.what(),
                path.display(),
                kind.variable(),
                LOGIN_FILE_TIMEOUT.as_secs()
            ),
            true,
        )),
    }
}

/// [`read_login_file`], on this thread.
fn read_login_file_now(
    path: &Path,
    kind: LoginFile,
) -> std::result::Result<LoginFileContent, LoginFileError> {
    let (what, var, shown) = (kind.what(), kind.variable(), path.display());
    let refuse = |message: String| LoginFileError {
        message,
        retryable: false,
        source: None,
    };
    let cannot = |e: std::io::Error| {
        LoginFileError {
        message: format!(
            "cannot read the {what} {shown} ({var}): check the path and that this process may read it"
        ),
        retryable: matches!(
            e.kind(),
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
        ),
        source: Some(e),
    }
    };
    let not_regular = |meta: &std::fs::Metadata| {
        refuse(format!(
            "the {what} {shown} ({var}) is {}, not a regular file; point {var} at the file that holds {}",
            file_type_name(meta),
            kind.holds()
        ))
    };
    // Looked at before it is opened: opening a FIFO waits for a writer,
    // and a device such as /dev/zero never ends. (Symbolic links are
    // followed: Kubernetes mounts the token as one.)
    let before = std::fs::metadata(path).map_err(cannot)?;
    if !before.is_file() {
        return Err(not_regular(&before));
    }
    // O_NONBLOCK: had the path become a FIFO since the check above, the
    // open would wait for a writer; a regular file reads as usual with it.
    #[cfg(unix)]
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
    }
    .map_err(cannot)?;
    #[cfg(not(unix))]
    let file = std::fs::File::open(path).map_err(cannot)?;
    // What is checked is what is read: the file opened, not the path.
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let protection = match kind {
        LoginFile::SecretId => Protection::Secret,
        LoginFile::Jwt | LoginFile::Kubernetes => Protection::Integrity,
    };
    check_protection(path, &meta, protection).map_err(|e| {
        refuse(match e {
            Error::InsecureOwner { owner, euid, .. } => format!(
                "the {what} {shown} ({var}) belongs to uid {owner}, but this process runs as uid {euid}: only files of this user or of root are trusted, since another user could put a credential of their choosing there and log the store in as another identity; `chown` it to uid {euid}, or run as its owner"
            ),
            Error::InsecurePermissions { mode, .. } if kind == LoginFile::SecretId => format!(
                "the {what} {shown} ({var}) has mode {mode:03o}: other users can read or change the secret id, a credential; run `chmod 600 {shown}`"
            ),
            Error::InsecurePermissions { mode, .. } => format!(
                "the {what} {shown} ({var}) has mode {mode:03o}: other users can replace the token and log the store in as another identity; run `chmod go-w {shown}`"
            ),
            other => format!(
                "cannot check who may read or change the {what} {shown} ({var}): {other}"
            ),
        })
    })?;
    let too_large = || {
        refuse(format!(
            "the {what} {shown} ({var}) is larger than {MAX_LOGIN_FILE_BYTES} bytes, far more than {} takes; check that {var} names the right file",
            kind.holds()
        ))
    };
    if meta.len() > MAX_LOGIN_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    file.take(MAX_LOGIN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_LOGIN_FILE_BYTES {
        return Err(too_large());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        refuse(format!(
            "the {what} {shown} ({var}) is not text (not UTF-8); it must hold {} and nothing else",
            kind.holds()
        ))
    })?;
    Ok(LoginFileContent {
        secret: Secret::new(text.trim()),
        readable_by_others: readable_by_others(&meta),
    })
}

#[cfg(unix)]
fn readable_by_others(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o044 != 0
}

#[cfg(not(unix))]
fn readable_by_others(_: &std::fs::Metadata) -> bool {
    false
}

/// "a FIFO", "a directory", … for messages.
fn file_type_name(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

impl VaultAuth {
    /// The service-account token file of a Kubernetes pod, the default
    /// `VAULT_JWT_FILE` of the `kubernetes` method.
    pub const KUBERNETES_TOKEN_FILE: &'static str =
        "/var/run/secrets/kubernetes.io/serviceaccount/token";

    /// A Vault token used as given (`VAULT_TOKEN`). It is renewed in the
    /// background while renewable, but nothing can replace it once it
    /// expires or is revoked: prefer a login method for long-running services.
    pub fn token(token: impl Into<String>) -> VaultAuth {
        VaultAuth {
            method: Method::Token(Secret::new(token)),
            mount: None,
        }
    }

    /// AppRole login (`VAULT_ROLE_ID` and `VAULT_SECRET_ID` or
    /// `VAULT_SECRET_ID_FILE`).
    pub fn approle(role_id: impl Into<String>, secret_id: SecretId) -> VaultAuth {
        VaultAuth {
            method: Method::AppRole {
                role_id: role_id.into(),
                secret_id,
            },
            mount: None,
        }
    }

    /// JWT login with the workload identity token in `jwt_file`
    /// (`VAULT_AUTH_ROLE`, `VAULT_JWT_FILE`), read again at each login since
    /// its owner rotates it: a regular file of at most
    /// [`MAX_LOGIN_FILE_BYTES`], owned by this process's user or root and
    /// writable by no one else (readable by others is logged as a warning).
    pub fn jwt(role: impl Into<String>, jwt_file: impl Into<PathBuf>) -> VaultAuth {
        VaultAuth {
            method: Method::Jwt {
                role: role.into(),
                jwt_file: jwt_file.into(),
            },
            mount: None,
        }
    }

    /// Kubernetes login with the pod's service-account token in `jwt_file`
    /// (usually [`KUBERNETES_TOKEN_FILE`](Self::KUBERNETES_TOKEN_FILE)),
    /// read again at each login: a regular file of at most
    /// [`MAX_LOGIN_FILE_BYTES`], owned by this process's user or root and
    /// writable by no one else (the kubelet mounts it readable by all).
    pub fn kubernetes(role: impl Into<String>, jwt_file: impl Into<PathBuf>) -> VaultAuth {
        VaultAuth {
            method: Method::Kubernetes {
                role: role.into(),
                jwt_file: jwt_file.into(),
            },
            mount: None,
        }
    }

    /// The mount path of the auth method (`VAULT_AUTH_MOUNT`), when it is
    /// not the method's name; not for [`token`](Self::token).
    pub fn with_mount(mut self, mount: impl Into<String>) -> VaultAuth {
        self.mount = Some(mount.into());
        self
    }

    /// `"token"`, `"approle"`, `"jwt"` or `"kubernetes"`.
    pub fn method(&self) -> &'static str {
        match self.method {
            Method::Token(_) => "token",
            Method::AppRole { .. } => "approle",
            Method::Jwt { .. } => "jwt",
            Method::Kubernetes { .. } => "kubernetes",
        }
    }

    /// The mount set with [`with_mount`](Self::with_mount), if any.
    pub fn mount(&self) -> Option<&str> {
        self.mount.as_deref()
    }

    /// The login settings from the environment:
    ///
    /// | `VAULT_AUTH_METHOD` | also reads |
    /// |---|---|
    /// | `token` or unset | `VAULT_TOKEN` (required) |
    /// | `approle` | `VAULT_ROLE_ID`; `VAULT_SECRET_ID` or `VAULT_SECRET_ID_FILE`; `VAULT_SECRET_ID_WRAPPED` (`true`/`false`) |
    /// | `jwt` | `VAULT_AUTH_ROLE`, `VAULT_JWT_FILE` (both required) |
    /// | `kubernetes` | `VAULT_AUTH_ROLE`; `VAULT_JWT_FILE` (default [`KUBERNETES_TOKEN_FILE`](Self::KUBERNETES_TOKEN_FILE)) |
    ///
    /// and `VAULT_AUTH_MOUNT` for the login methods. Empty variables count
    /// as unset. A missing or contradictory setting is an [`Error::Env`]
    /// naming the variable.
    pub fn from_env() -> Result<VaultAuth> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(super) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<VaultAuth> {
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        let env = |var: &str, reason: String| Error::Env {
            var: var.to_owned(),
            reason,
        };
        let required = |name: &'static str, why: &str| {
            var(name).ok_or_else(|| env(name, format!("not set; {why}")))
        };
        let method = var(ENV_AUTH_METHOD).unwrap_or_else(|| "token".into());
        let mut auth = match method.to_ascii_lowercase().as_str() {
            "token" => {
                let token = var("VAULT_TOKEN").ok_or_else(|| {
                    let mut reason = "not set; the vault store authenticates with a token unless VAULT_AUTH_METHOD names a login method (approle, jwt, kubernetes); docs/backends/vault.md has the policy it needs".to_owned();
                    if var("VAULT_ROLE_ID").is_some() {
                        reason.push_str(" (VAULT_ROLE_ID is set: did you mean VAULT_AUTH_METHOD=approle?)");
                    } else if var("VAULT_AUTH_ROLE").is_some() {
                        reason.push_str(" (VAULT_AUTH_ROLE is set: did you mean VAULT_AUTH_METHOD=jwt or kubernetes?)");
                    }
                    env("VAULT_TOKEN", reason)
                })?;
                VaultAuth::token(token)
            }
            "approle" => {
                let role_id = required(
                    "VAULT_ROLE_ID",
                    "AppRole login needs the role id (vault read auth/approle/role/ROLE/role-id)",
                )?;
                let secret_id = match (var("VAULT_SECRET_ID"), var("VAULT_SECRET_ID_FILE")) {
                    (Some(_), Some(_)) => {
                        return Err(env(
                            "VAULT_SECRET_ID_FILE",
                            "both VAULT_SECRET_ID and VAULT_SECRET_ID_FILE are set; set only one".into(),
                        ))
                    }
                    (Some(s), None) => SecretId::new(s),
                    (None, Some(f)) => SecretId::from_file(f),
                    (None, None) => {
                        return Err(env(
                            "VAULT_SECRET_ID",
                            "not set; AppRole login needs VAULT_SECRET_ID or VAULT_SECRET_ID_FILE (a file is better: it stays out of the process environment)".into(),
                        ))
                    }
                };
                let wrapped = match var("VAULT_SECRET_ID_WRAPPED").as_deref() {
                    None => false,
                    Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
                    Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
                    Some(v) => {
                        return Err(env(
                            "VAULT_SECRET_ID_WRAPPED",
                            format!("`{v}` is not a boolean; use true or false"),
                        ))
                    }
                };
                VaultAuth::approle(
                    role_id,
                    if wrapped {
                        secret_id.response_wrapped()
                    } else {
                        secret_id
                    },
                )
            }
            "jwt" => VaultAuth::jwt(
                required(
                    "VAULT_AUTH_ROLE",
                    "JWT login needs the Vault role to log in as",
                )?,
                required(
                    "VAULT_JWT_FILE",
                    "JWT login needs the file holding the workload identity token",
                )?,
            ),
            "kubernetes" => VaultAuth::kubernetes(
                required(
                    "VAULT_AUTH_ROLE",
                    "Kubernetes login needs the Vault role to log in as",
                )?,
                var("VAULT_JWT_FILE").unwrap_or_else(|| Self::KUBERNETES_TOKEN_FILE.into()),
            ),
            other => {
                return Err(env(
                    ENV_AUTH_METHOD,
                    format!(
                        "`{other}` is not a login method; use token, approle, jwt or kubernetes"
                    ),
                ))
            }
        };
        if let Some(mount) = var(ENV_AUTH_MOUNT) {
            if auth.method() == "token" {
                return Err(env(
                    ENV_AUTH_MOUNT,
                    "is set but VAULT_AUTH_METHOD is token, which has no mount; unset it or set VAULT_AUTH_METHOD".into(),
                ));
            }
            auth = auth.with_mount(mount);
        }
        Ok(auth)
    }

    /// Checks the settings (for the builder's `build`).
    pub(super) fn check(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::invalid_config("auth", reason));
        match &self.method {
            Method::Token(t) if t.is_empty() => {
                return bad("no Vault token: call token() or auth(), or set VAULT_TOKEN (env_auth)".into())
            }
            Method::Token(t) if !header_safe(t.expose()) => {
                return bad("the Vault token contains characters that cannot be sent in an HTTP header (a line break?); check VAULT_TOKEN".into())
            }
            Method::Token(_) => {
                if self.mount.is_some() {
                    return bad("an auth mount was set for token auth, which has no mount; drop with_mount (VAULT_AUTH_MOUNT) or use a login method".into());
                }
            }
            Method::AppRole { role_id, secret_id } => {
                if role_id.trim().is_empty() {
                    return bad("AppRole login without a role id (VAULT_ROLE_ID)".into());
                }
                if secret_id.empty() {
                    return bad("AppRole login with an empty secret id (VAULT_SECRET_ID)".into());
                }
            }
            Method::Jwt { role, .. } | Method::Kubernetes { role, .. } => {
                if role.trim().is_empty() {
                    return bad(format!(
                        "{} login without a role (VAULT_AUTH_ROLE)",
                        self.method()
                    ));
                }
            }
        }
        if let Some(m) = &self.mount {
            if !super::builder::path_ok(m) {
                return bad(format!(
                    "auth mount `{m}` (VAULT_AUTH_MOUNT): use letters, digits, `-`, `_`, `.` and `/` between segments"
                ));
            }
        }
        Ok(())
    }

    /// The mount path in effect.
    pub(super) fn effective_mount(&self) -> &str {
        self.mount.as_deref().unwrap_or(match self.method {
            Method::Token(_) => "token",
            Method::AppRole { .. } => "approle",
            Method::Jwt { .. } => "jwt",
            Method::Kubernetes { .. } => "kubernetes",
        })
    }

    pub(super) fn login(&self) -> Login<'_> {
        match &self.method {
            Method::Token(t) => Login::Token(t),
            Method::AppRole { role_id, secret_id } => Login::AppRole { role_id, secret_id },
            Method::Jwt { role, jwt_file } => Login::Jwt {
                role,
                jwt_file,
                kubernetes: false,
            },
            Method::Kubernetes { role, jwt_file } => Login::Jwt {
                role,
                jwt_file,
                kubernetes: true,
            },
        }
    }
}

/// The login a [`VaultAuth`] asks for, for the session.
pub(super) enum Login<'a> {
    Token(&'a Secret),
    AppRole {
        role_id: &'a str,
        secret_id: &'a SecretId,
    },
    Jwt {
        role: &'a str,
        jwt_file: &'a Path,
        kubernetes: bool,
    },
}

impl fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("VaultAuth");
        d.field("method", &self.method());
        match &self.method {
            Method::Token(t) => d.field("token", t),
            // The role id is an identifier, not a credential (the secret id is).
            Method::AppRole { role_id, secret_id } => {
                d.field("role_id", role_id).field("secret_id", secret_id)
            }
            Method::Jwt { role, jwt_file } | Method::Kubernetes { role, jwt_file } => {
                d.field("role", role).field("jwt_file", jwt_file)
            }
        };
        d.field("mount", &self.effective_mount()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<VaultAuth> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        VaultAuth::from_lookup(|name| map.get(name).cloned())
    }

    fn env_var(r: Result<VaultAuth>) -> (String, String) {
        match r {
            Err(Error::Env { var, reason }) => (var, reason),
            other => panic!("expected an env error, got {other:?}"),
        }
    }

    #[test]
    fn token_is_the_default_and_a_missing_token_points_at_the_login_methods() {
        let auth = from(&[("VAULT_TOKEN", "hvs.abc")]).unwrap();
        assert_eq!(auth.method(), "token");
        assert!(!format!("{auth:?}").contains("hvs.abc"));

        let (var, reason) = env_var(from(&[("VAULT_ROLE_ID", "r")]));
        assert_eq!(var, "VAULT_TOKEN");
        assert!(reason.contains("VAULT_AUTH_METHOD=approle"), "{reason}");
        // An empty variable counts as unset.
        let (var, _) = env_var(from(&[("VAULT_TOKEN", "")]));
        assert_eq!(var, "VAULT_TOKEN");
    }

    #[test]
    fn approle_settings() {
        let auth = from(&[
            ("VAULT_AUTH_METHOD", "approle"),
            ("VAULT_ROLE_ID", "role-1"),
            ("VAULT_SECRET_ID_FILE", "/run/s"),
            ("VAULT_SECRET_ID_WRAPPED", "true"),
            ("VAULT_AUTH_MOUNT", "approle-prod"),
        ])
        .unwrap();
        assert_eq!(auth.method(), "approle");
        assert_eq!(auth.effective_mount(), "approle-prod");
        match auth.login() {
            Login::AppRole { role_id, secret_id } => {
                assert_eq!(role_id, "role-1");
                assert!(secret_id.is_wrapped());
                assert_eq!(secret_id.variable(), "VAULT_SECRET_ID_FILE");
            }
            _ => panic!("not approle"),
        }

        let secret = from(&[
            ("VAULT_AUTH_METHOD", "AppRole"),
            ("VAULT_ROLE_ID", "role-1"),
            ("VAULT_SECRET_ID", "s3cret-id"),
        ])
        .unwrap();
        assert_eq!(secret.effective_mount(), "approle");
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("s3cret-id") && shown.contains("role-1"),
            "{shown}"
        );

        let base = [("VAULT_AUTH_METHOD", "approle"), ("VAULT_ROLE_ID", "r")];
        let (var, _) = env_var(from(&base));
        assert_eq!(var, "VAULT_SECRET_ID");
        let (var, reason) = env_var(from(&[
            base[0],
            base[1],
            ("VAULT_SECRET_ID", "a"),
            ("VAULT_SECRET_ID_FILE", "b"),
        ]));
        assert_eq!(var, "VAULT_SECRET_ID_FILE");
        assert!(reason.contains("set only one"), "{reason}");
        let (var, reason) = env_var(from(&[
            base[0],
            base[1],
            ("VAULT_SECRET_ID", "a"),
            ("VAULT_SECRET_ID_WRAPPED", "yes"),
        ]));
        assert_eq!(var, "VAULT_SECRET_ID_WRAPPED");
        assert!(reason.contains("true or false"), "{reason}");
        let (var, _) = env_var(from(&[("VAULT_AUTH_METHOD", "approle")]));
        assert_eq!(var, "VAULT_ROLE_ID");
    }

    #[test]
    fn jwt_and_kubernetes_settings() {
        let jwt = from(&[
            ("VAULT_AUTH_METHOD", "jwt"),
            ("VAULT_AUTH_ROLE", "issuer"),
            ("VAULT_JWT_FILE", "/var/run/id/token"),
        ])
        .unwrap();
        assert_eq!((jwt.method(), jwt.effective_mount()), ("jwt", "jwt"));
        let (var, _) = env_var(from(&[
            ("VAULT_AUTH_METHOD", "jwt"),
            ("VAULT_AUTH_ROLE", "issuer"),
        ]));
        assert_eq!(var, "VAULT_JWT_FILE");

        let k8s = from(&[
            ("VAULT_AUTH_METHOD", "kubernetes"),
            ("VAULT_AUTH_ROLE", "issuer"),
        ])
        .unwrap();
        assert_eq!(k8s.effective_mount(), "kubernetes");
        match k8s.login() {
            Login::Jwt {
                jwt_file,
                kubernetes,
                ..
            } => {
                assert!(kubernetes);
                assert_eq!(jwt_file, Path::new(VaultAuth::KUBERNETES_TOKEN_FILE));
            }
            _ => panic!("not kubernetes"),
        }
        let (var, _) = env_var(from(&[("VAULT_AUTH_METHOD", "kubernetes")]));
        assert_eq!(var, "VAULT_AUTH_ROLE");
    }

    #[test]
    fn unknown_methods_and_misplaced_mounts_are_refused() {
        let (var, reason) = env_var(from(&[("VAULT_AUTH_METHOD", "userpass")]));
        assert_eq!(var, "VAULT_AUTH_METHOD");
        assert!(reason.contains("approle, jwt or kubernetes"), "{reason}");
        let (var, _) = env_var(from(&[("VAULT_TOKEN", "t"), ("VAULT_AUTH_MOUNT", "x")]));
        assert_eq!(var, "VAULT_AUTH_MOUNT");
    }

    #[test]
    fn check_names_the_problem() {
        let reason = |a: VaultAuth| match a.check() {
            Err(Error::InvalidConfig { setting, reason }) => {
                assert_eq!(setting, "auth");
                reason
            }
            other => panic!("{other:?}"),
        };
        assert!(reason(VaultAuth::token("")).contains("VAULT_TOKEN"));
        assert!(reason(VaultAuth::token("a\nb")).contains("HTTP header"));
        assert!(reason(VaultAuth::token("t").with_mount("m")).contains("no mount"));
        assert!(reason(VaultAuth::approle(" ", SecretId::new("s"))).contains("VAULT_ROLE_ID"));
        assert!(reason(VaultAuth::approle("r", SecretId::new(""))).contains("VAULT_SECRET_ID"));
        assert!(reason(VaultAuth::jwt("", "/f")).contains("VAULT_AUTH_ROLE"));
        assert!(reason(VaultAuth::jwt("r", "/f").with_mount("a b")).contains("VAULT_AUTH_MOUNT"));
        assert!(VaultAuth::jwt("r", "/f")
            .with_mount("team/jwt")
            .check()
            .is_ok());
    }
}
