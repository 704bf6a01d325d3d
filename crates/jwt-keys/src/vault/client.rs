//! The connection to Vault: one `vaultrs` client (its `rustify` HTTP layer
//! on reqwest with rustls), configured here and nowhere else, and the
//! translation of every `vaultrs` failure into the crate's [`Error`].
//!
//! `vaultrs`'s own settings builder is never used: it reads `VAULT_ADDR`,
//! `VAULT_TOKEN`, `VAULT_SKIP_VERIFY`, `VAULT_CAPATH` and client certificates
//! from the environment by itself and panics on a bad address. The settings
//! are filled in field by field instead, and the HTTP client is built here,
//! so TLS verification is always on.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest_vault as http;
use rustify::errors::ClientError as HttpError;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::VaultClientSettings;
use vaultrs::error::ClientError;

use crate::error::{BoxError, Error, Result};

/// The backend name in [`Error::Backend`].
pub(crate) const BACKEND: &str = "vault";

/// A failed Vault call: the `source` of the [`Error::Backend`] errors of
/// [`VaultKeyStore`](super::VaultKeyStore). Its message names the request,
/// Vault's own error messages and what to check. It never holds a token, a
/// secret id or a JWT.
#[derive(Debug, Clone)]
pub struct VaultError {
    operation: &'static str,
    path: String,
    status: Option<u16>,
    messages: Vec<String>,
    hint: Cow<'static, str>,
    /// Shared, so the error can be kept (health) and handed out again.
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl VaultError {
    /// The HTTP status Vault answered with; `None` when there was no answer.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Vault's error messages (`errors` in its answer, or its `warnings`
    /// when it gave no error), as shown in the message: Vault's
    /// "1 error occurred" wrapping removed, control characters escaped,
    /// each cut at 300 characters, and any credential the
    /// store sent (token, secret id, JWT) replaced by `<redacted>`.
    pub fn messages(&self) -> &[String] {
        &self.messages
    }

    pub(super) fn new(
        operation: &'static str,
        path: &str,
        status: Option<u16>,
        messages: Vec<String>,
        hint: impl Into<Cow<'static, str>>,
        source: Option<BoxError>,
    ) -> VaultError {
        VaultError {
            operation,
            path: path.to_owned(),
            status,
            messages: messages.iter().map(|m| clean_message(m)).collect(),
            hint: hint.into(),
            source: source.map(Arc::from),
        }
    }

    pub(super) fn into_error(self, retryable: bool) -> Error {
        Fault {
            error: self,
            retryable,
        }
        .into()
    }

    pub(super) fn fault(self, retryable: bool) -> Fault {
        Fault {
            error: self,
            retryable,
        }
    }
}

/// A [`VaultError`] and whether retrying may help: what becomes an
/// [`Error::Backend`], kept as is where the session must hand the same
/// error out again.
#[derive(Debug, Clone)]
pub(super) struct Fault {
    pub(super) error: VaultError,
    pub(super) retryable: bool,
}

impl From<Fault> for Error {
    fn from(f: Fault) -> Error {
        Error::Backend {
            backend: BACKEND,
            source: Box::new(f.error),
            retryable: f.retryable,
        }
    }
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vault {} {} failed", self.operation, self.path)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if !self.messages.is_empty() {
            write!(f, ": {}", self.messages.join("; "))?;
        }
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        write!(f, "; {}", self.hint)
    }
}

impl std::error::Error for VaultError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The longest message of Vault's quoted in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;
/// How many of Vault's messages an error quotes at most.
const MAX_MESSAGES: usize = 5;

/// One of Vault's messages as it may be shown: Vault wraps its errors in
/// `1 error occurred:\n\t* …\n\n` (Go's multierror), which is unwrapped;
/// runs of whitespace become one space; other control characters are
/// escaped (the text comes from the network and ends up in logs and on
/// terminals); the result is cut at [`MAX_MESSAGE_CHARS`] characters.
pub(super) fn clean_message(raw: &str) -> String {
    let mut text = raw.trim();
    if let Some((head, rest)) = text.split_once(" occurred:") {
        if head.ends_with("error") || head.ends_with("errors") {
            text = rest.trim();
        }
    }
    let items: Vec<&str> = text
        .split("\n\t* ")
        .flat_map(|part| part.split("\n* "))
        .map(|part| part.trim().trim_start_matches("* ").trim())
        .filter(|part| !part.is_empty())
        .collect();
    let joined = items.join("; ");
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in joined.chars() {
        if count >= MAX_MESSAGE_CHARS {
            out.push('…');
            break;
        }
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        space = false;
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
        count += 1;
    }
    out
}

/// What a failed call came to, before it is given its context.
pub(super) struct Failure {
    pub(super) status: Option<u16>,
    pub(super) messages: Vec<String>,
    source: Option<BoxError>,
    /// No answer at all because TLS failed: retrying will not help.
    tls: bool,
    /// An answer this library cannot use.
    garbled: bool,
}

impl Failure {
    /// Sorts out a `vaultrs` error. Bodies of answers that could not be
    /// parsed are dropped, never quoted: one might hold a token.
    pub(super) fn of(e: ClientError) -> Failure {
        let (mut status, mut messages, mut garbled) = (None, Vec::new(), false);
        let mut source: Option<BoxError> = None;
        match e {
            ClientError::APIError { code, errors } => {
                status = Some(code);
                messages = errors;
            }
            ClientError::RestClientError { source: inner } => match inner {
                HttpError::ServerResponseError { code, content } => {
                    status = Some(code);
                    messages = answer_messages(content.as_deref());
                }
                HttpError::RequestError { source: s, .. } => source = Some(BoxError::from(s)),
                HttpError::ResponseParseError { .. }
                | HttpError::DataParseError { .. }
                | HttpError::ResponseConversionError { .. } => garbled = true,
                other => source = Some(Box::new(other)),
            },
            ClientError::WrapInvalidError => {
                status = Some(400);
                messages = vec!["wrapping token is not valid or does not exist".into()];
            }
            ClientError::ResponseEmptyError
            | ClientError::ResponseDataEmptyError
            | ClientError::ResponseWrapError
            | ClientError::JsonParseError { .. } => garbled = true,
            other => source = Some(Box::new(other)),
        }
        let tls = source.as_deref().is_some_and(is_tls_failure);
        // Kept raw until the error is made (then cleaned and cut), so that a
        // credential is scrubbed whole, never cut in two first.
        messages.truncate(MAX_MESSAGES);
        Failure {
            status,
            messages,
            source,
            tls,
            garbled,
        }
    }

    /// Replaces `secret` (a credential this call sent) wherever Vault's
    /// messages quote it: no Vault is known to echo one, but an error must
    /// never carry a token, whatever the server (or a proxy) answers.
    pub(super) fn scrub(mut self, secret: &str) -> Failure {
        let secret = secret.trim();
        // Short values would blank out ordinary words.
        if secret.len() >= 8 {
            for m in &mut self.messages {
                if m.contains(secret) {
                    *m = m.replace(secret, "<redacted>");
                }
            }
        }
        self
    }

    /// 401/403: the token is not (or no longer) allowed to do this.
    pub(super) fn is_denied(&self) -> bool {
        matches!(self.status, Some(401 | 403))
    }

    /// The error, with `hint` replacing the generic one for a refusal
    /// (4xx other than 412 and 429) when given.
    pub(super) fn into_error(
        self,
        operation: &'static str,
        path: &str,
        hint: Option<Cow<'static, str>>,
    ) -> Error {
        self.into_fault(operation, path, hint).into()
    }

    /// [`into_error`](Self::into_error), as a [`Fault`].
    pub(super) fn into_fault(
        self,
        operation: &'static str,
        path: &str,
        hint: Option<Cow<'static, str>>,
    ) -> Fault {
        if self.garbled {
            return invalid_fault(operation, path, "Vault's answer could not be parsed".into());
        }
        let (generic, retryable) = if self.tls {
            (
                "the TLS handshake with Vault failed; check that the address is right and that VAULT_CACERT (ca_cert_pem) holds the CA that signed Vault's certificate",
                false,
            )
        } else {
            classify(self.status)
        };
        let hint = match (hint, self.status) {
            (Some(h), Some(s)) if (400..500).contains(&s) && s != 412 && s != 429 => h,
            _ => Cow::Borrowed(generic),
        };
        VaultError::new(
            operation,
            path,
            self.status,
            self.messages,
            hint,
            self.source,
        )
        .fault(retryable)
    }
}

/// 404 without an error message: the path or key does not exist. Returns
/// the answer's body (`Null` when none): a deleted KV v2 entry still
/// carries its metadata there.
pub(super) fn not_found(e: &ClientError) -> Option<serde_json::Value> {
    match e {
        ClientError::APIError { code: 404, errors } if errors.is_empty() => {
            Some(serde_json::Value::Null)
        }
        ClientError::RestClientError {
            source: HttpError::ServerResponseError { code: 404, content },
        } if error_messages(content.as_deref()).is_empty() => Some(
            content
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or_default(),
        ),
        _ => None,
    }
}

/// What an answer `vaultrs` could not parse as an error says: its
/// `errors`, else its `warnings` (a KV v2 mount asked for a transit path
/// answers 404 with a warning only), else a note that its body is not
/// shown (not Vault's JSON: a proxy's page could quote anything, a token
/// included).
fn answer_messages(content: Option<&str>) -> Vec<String> {
    let Some(content) = content.filter(|c| !c.trim().is_empty()) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(content) else {
        return vec![format!(
            "the answer is not Vault's JSON ({} bytes, not shown: is a proxy or another server at this address?)",
            content.len()
        )];
    };
    let strings = |member: &str| -> Vec<String> {
        value[member]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let errors = strings("errors");
    if errors.is_empty() {
        strings("warnings")
    } else {
        errors
    }
}

/// Vault's `errors` from an answer `vaultrs` could not parse as an error.
fn error_messages(content: Option<&str>) -> Vec<String> {
    content
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|v| {
            v["errors"].as_array().map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Whether a transport error is a failed TLS handshake: rustls reports
/// certificate problems as `InvalidData` I/O errors, which hyper wraps in
/// another I/O error (whose `source()` skips the inner one, hence
/// `get_ref`).
fn is_tls_failure(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    fn walk(e: &(dyn std::error::Error + 'static), depth: usize) -> bool {
        if depth > 16 {
            return false;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::InvalidData {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                if walk(inner, depth + 1) {
                    return true;
                }
            }
        }
        e.source().is_some_and(|s| walk(s, depth + 1))
    }
    walk(e, 0)
}

fn classify(status: Option<u16>) -> (&'static str, bool) {
    match status {
        None => (
            "could not reach Vault within the timeout; check the address (VAULT_ADDR), TLS (VAULT_CACERT) and the network",
            true,
        ),
        Some(s @ 300..=399) => (
            if s == 307 {
                "Vault redirected the request (a standby node?); redirects are never followed, because the token would go along: point the address at the active node or at the load balancer"
            } else {
                "Vault answered with a redirect, which is never followed (the token would go along); use the final address"
            },
            false,
        ),
        Some(400) => ("Vault refused the request as invalid", false),
        Some(401) | Some(403) => (
            "permission denied; check the token (VAULT_TOKEN or the login method), the namespace (VAULT_NAMESPACE) and the Vault policy (docs/backends/vault.md lists what the store needs)",
            false,
        ),
        Some(404) => (
            "not found; check the transit mount and key name, and the namespace",
            false,
        ),
        Some(412) => ("Vault is catching up with a write (HTTP 412); retry", true),
        Some(429) => ("Vault rate-limited the request; retry later", true),
        Some(503) => (
            "Vault is sealed or in standby/maintenance; retry when it is unsealed",
            true,
        ),
        Some(s) if s >= 500 => ("Vault failed internally; retry later", true),
        Some(_) => ("unexpected answer from Vault", false),
    }
}

/// An [`Error::Backend`] for an answer we cannot use (never retryable).
pub(crate) fn invalid(operation: &'static str, path: &str, detail: String) -> Error {
    invalid_fault(operation, path, detail).into()
}

pub(super) fn invalid_fault(operation: &'static str, path: &str, detail: String) -> Fault {
    VaultError::new(
        operation,
        path,
        None,
        vec![detail],
        "Vault answered with something this library cannot use; check that the address is Vault or OpenBao",
        None,
    )
    .fault(false)
}

/// A secret (token, secret id, JWT) that never shows in `Debug` output and
/// is wiped from memory when dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub(super) struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    pub(super) fn new(s: impl Into<String>) -> Secret {
        Secret(zeroize::Zeroizing::new(s.into()))
    }

    pub(super) fn expose(&self) -> &str {
        &self.0
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<none>"
        } else {
            "<redacted>"
        })
    }
}

/// Whether `value` can travel in an HTTP header. `vaultrs` puts the token
/// and the namespace in headers and panics on a value that cannot, so both
/// are checked first.
pub(super) fn header_safe(value: &str) -> bool {
    value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// The HTTP side of the store: one reqwest client and the `vaultrs`
/// settings, shared by every call. A [`Conn`] adds the token of the moment.
pub(super) struct Transport {
    http: Arc<rustify::clients::reqwest::Client>,
    settings: Arc<VaultClientSettings>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("address", &self.settings.address.as_str())
            .field("namespace", &self.settings.namespace)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// `address` is already checked (`http`/`https`, a host); `namespace`
    /// is header-safe.
    pub(super) fn new(
        address: http::Url,
        namespace: Option<String>,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Transport> {
        let mut builder = http::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect would carry the token to wherever it points.
            .redirect(http::redirect::Policy::none())
            .user_agent(concat!("jwtkit/", env!("CARGO_PKG_VERSION")));
        if address.scheme() == "http" {
            // Plain http carries the token in clear text: never through a
            // proxy from HTTP_PROXY/ALL_PROXY. No TLS either, so no trust
            // store to load (vaultrs does the same, reqwest issue 2988).
            builder = builder.no_proxy().tls_certs_only(Vec::new());
        } else if let Some(pem) = ca_pem {
            let certs = http::Certificate::from_pem_bundle(pem).map_err(|e| {
                Error::invalid_config(
                    "ca_cert_pem",
                    format!("the Vault CA certificate (VAULT_CACERT) is not valid PEM: {e}"),
                )
            })?;
            if certs.is_empty() {
                return Err(Error::invalid_config(
                    "ca_cert_pem",
                    "the Vault CA bundle (VAULT_CACERT) holds no certificate; give the PEM file of the CA that signed Vault's certificate",
                ));
            }
            // Like VAULT_CACERT for the vault CLI: the given CAs only.
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().map_err(|e| {
            VaultError::new(
                "connect",
                address.as_str(),
                None,
                Vec::new(),
                "the HTTP client for Vault could not be set up (the system's TLS trust store?); set VAULT_CACERT to the CA that signed Vault's certificate",
                Some(Box::new(e)),
            )
            .into_error(false)
        })?;
        let base = address.as_str().trim_end_matches('/').to_owned();
        // Every field set here: nothing comes from the environment.
        let settings = VaultClientSettings {
            address,
            ca_certs: Vec::new(),
            identity: None,
            timeout: Some(timeout),
            token: String::new(),
            verify: true,
            version: 1,
            wrapping: false,
            namespace,
            proxy: None,
        };
        Ok(Transport {
            http: Arc::new(rustify::clients::reqwest::Client::new(&base, client)),
            settings: Arc::new(settings),
        })
    }

    /// The Vault address, for logs.
    pub(super) fn address(&self) -> &str {
        self.settings.address.as_str()
    }

    /// A `vaultrs` client for one call, with `token` (none for logins).
    pub(super) fn conn(&self, token: Option<&Secret>) -> Conn {
        Conn {
            http: self.http.clone(),
            settings: self.settings.clone(),
            middle: EndpointMiddleware {
                token: token.map(|t| t.expose().to_owned()).unwrap_or_default(),
                version: "v1".into(),
                wrap: None,
                namespace: self.settings.namespace.clone(),
            },
        }
    }
}

/// What the `vaultrs` functions call Vault through: the shared client plus
/// the token of one call.
pub(super) struct Conn {
    http: Arc<rustify::clients::reqwest::Client>,
    settings: Arc<VaultClientSettings>,
    middle: EndpointMiddleware,
}

impl vaultrs::client::Client for Conn {
    fn http(&self) -> &rustify::clients::reqwest::Client {
        &self.http
    }

    fn middle(&self) -> &EndpointMiddleware {
        &self.middle
    }

    fn settings(&self) -> &VaultClientSettings {
        &self.settings
    }

    fn set_token(&mut self, token: &str) {
        self.middle.token = token.to_owned();
    }
}
