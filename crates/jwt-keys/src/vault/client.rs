//! A small client for the parts of the Vault/OpenBao HTTP API the store
//! uses (transit keys and signing, KV v2 with check-and-set), with every
//! call bounded by a timeout and every failure typed.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{BoxError, Error, Result};

/// The backend name in [`Error::Backend`].
pub(crate) const BACKEND: &str = "vault";

/// A failed Vault call: the `source` of the [`Error::Backend`] errors of
/// [`VaultKeyStore`](super::VaultKeyStore). Its message names the request,
/// Vault's own error messages and what to check.
#[derive(Debug)]
pub struct VaultError {
    operation: &'static str,
    path: String,
    status: Option<u16>,
    messages: Vec<String>,
    hint: &'static str,
    source: Option<BoxError>,
}

impl VaultError {
    /// The HTTP status Vault answered with; `None` when there was no answer.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Vault's error messages (`errors` in its answer).
    pub fn messages(&self) -> &[String] {
        &self.messages
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

/// The HTTP side of the store.
pub(crate) struct Http {
    client: reqwest::Client,
    /// `https://host:port/v1/`
    base: String,
    token: String,
    namespace: Option<String>,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// What a call came back with.
pub(crate) enum Reply {
    Ok(Value),
    /// 404 (a path or key that does not exist).
    NotFound,
}

impl Http {
    pub(crate) fn new(
        address: &str,
        token: String,
        namespace: Option<String>,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Http> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("jwtkit/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                Error::invalid_config(
                    "ca_cert_pem",
                    format!("the Vault CA certificate is not valid PEM: {e}"),
                )
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| Error::Backend {
            backend: BACKEND,
            source: Box::new(e),
            retryable: false,
        })?;
        Ok(Http {
            client,
            base: format!("{}/v1/", address.trim_end_matches('/')),
            token,
            namespace,
        })
    }

    /// One request: `body` `None` is a GET, else a POST.
    pub(crate) async fn call(
        &self,
        operation: &'static str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply> {
        let url = format!("{}{}", self.base, path);
        let mut req = match &body {
            None => self.client.get(&url),
            Some(b) => self.client.post(&url).json(b),
        };
        req = req.header("X-Vault-Token", &self.token);
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        let fail = |status: Option<u16>, messages: Vec<String>, source: Option<BoxError>| {
            let (hint, retryable) = classify(status);
            Error::Backend {
                backend: BACKEND,
                source: Box::new(VaultError {
                    operation,
                    path: path.to_owned(),
                    status,
                    messages,
                    hint,
                    source,
                }),
                retryable,
            }
        };
        let resp = req
            .send()
            .await
            .map_err(|e| fail(None, Vec::new(), Some(Box::new(e))))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| fail(Some(status), Vec::new(), Some(Box::new(e))))?;
        let json: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        if (200..300).contains(&status) {
            return Ok(Reply::Ok(json));
        }
        let messages: Vec<String> = json["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if status == 404 && messages.is_empty() {
            return Ok(Reply::NotFound);
        }
        Err(fail(Some(status), messages, None))
    }

    /// A call whose answer must be there, with `data` parsed as `T`.
    pub(crate) async fn data<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        body: Option<Value>,
    ) -> Result<T> {
        match self.call(operation, path, body).await? {
            Reply::Ok(v) => serde_json::from_value(v["data"].clone())
                .map_err(|e| invalid(operation, path, format!("unexpected answer: {e}"))),
            Reply::NotFound => Err(invalid(operation, path, "not found (HTTP 404)".into())),
        }
    }
}

fn classify(status: Option<u16>) -> (&'static str, bool) {
    match status {
        None => (
            "could not reach Vault within the timeout; check the address (VAULT_ADDR), TLS (VAULT_CACERT) and the network",
            true,
        ),
        Some(400) => ("Vault refused the request as invalid", false),
        Some(401) | Some(403) => (
            "permission denied; check the token (VAULT_TOKEN), the namespace (VAULT_NAMESPACE) and the Vault policy (docs/backends/vault.md lists what the store needs)",
            false,
        ),
        Some(404) => (
            "not found; check the transit mount and key name, and the namespace",
            false,
        ),
        Some(412) => ("Vault is catching up with a write (HTTP 412); retry", true),
        Some(429) => ("Vault rate-limited the request; retry later", true),
        Some(503) => ("Vault is sealed or in standby/maintenance; retry when it is unsealed", true),
        Some(s) if s >= 500 => ("Vault failed internally; retry later", true),
        Some(_) => ("unexpected answer from Vault", false),
    }
}

/// An [`Error::Backend`] for an answer we cannot use (never retryable).
pub(crate) fn invalid(operation: &'static str, path: &str, detail: String) -> Error {
    Error::Backend {
        backend: BACKEND,
        source: Box::new(VaultError {
            operation,
            path: path.to_owned(),
            status: None,
            messages: vec![detail],
            hint: "Vault answered with something this library cannot use; check that the address is Vault or OpenBao",
            source: None,
        }),
        retryable: false,
    }
}
