//! Opening a key store from a URI, for command-line tools and configuration
//! files: `file:DIR` and `env:NAME` built in, other schemes (`kms:`,
//! `vault:`) registered by the crates or features that provide them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use jwt_core::{Clock, SystemClock};

use crate::env::EnvKeyStore;
use crate::error::{Error, Result};
use crate::file::FileKeyStore;
use crate::store::KeyStore;

/// Opens a store from the part of the URI after `scheme:`, reading time
/// from `clock` (the registry's, see [`StoreRegistry::with_clock`]).
pub type StoreOpener =
    fn(rest: &str, uri: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn KeyStore>>;

/// The schemes [`open_store`] understands, extendable with
/// [`register`](Self::register), and the clock every store it opens reads
/// (the system clock unless [`with_clock`](Self::with_clock) gives one).
///
/// ```
/// use std::sync::Arc;
/// use jwt_core::{Clock, ManualClock};
/// use jwt_keys::{KeyStore, MemoryKeyStore, StoreRegistry};
///
/// let clock = Arc::new(ManualClock::new(1_700_000_000));
/// let registry = StoreRegistry::with_builtin()
///     .with_clock(clock.clone())
///     .register("memory", |_rest, _uri, clock| {
///         Ok(Arc::new(MemoryKeyStore::with_clock(clock)) as Arc<dyn KeyStore>)
///     });
/// let store = registry.open("memory:").unwrap();
/// assert_eq!(store.name(), "memory");
/// assert_eq!(store.clock().now(), 1_700_000_000);
/// assert_eq!(registry.open("ftp://x").unwrap_err().kind(), "invalid_uri");
/// ```
#[derive(Debug, Clone)]
pub struct StoreRegistry {
    openers: BTreeMap<String, StoreOpener>,
    clock: Arc<dyn Clock>,
}

impl StoreRegistry {
    /// An empty registry.
    pub fn empty() -> Self {
        StoreRegistry {
            openers: BTreeMap::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The clock every store opened from now on reads: given once here, it
    /// decides key states, rotations and retirements of those stores (e.g.
    /// the `ManualClock` of `jwtkit --now`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// `file:` and `env:` (and whatever the enabled backends add).
    pub fn with_builtin() -> Self {
        let registry = StoreRegistry::empty()
            .register("file", open_file)
            .register("env", open_env);
        #[cfg(feature = "kms")]
        let registry = registry.register("kms", crate::aws_kms::open_uri);
        #[cfg(feature = "vault")]
        let registry = registry
            .register("vault+http", crate::vault::open_uri)
            .register("vault+https", crate::vault::open_uri);
        #[cfg(feature = "pkcs11")]
        let registry = registry.register("pkcs11", crate::pkcs11::open_uri);
        registry
    }

    /// Adds (or replaces) the opener for `scheme` (without the colon).
    pub fn register(mut self, scheme: &str, opener: StoreOpener) -> Self {
        self.openers.insert(scheme.to_ascii_lowercase(), opener);
        self
    }

    /// The registered schemes, sorted.
    pub fn schemes(&self) -> Vec<&str> {
        self.openers.keys().map(String::as_str).collect()
    }

    /// Opens `uri` with the opener of its scheme.
    pub fn open(&self, uri: &str) -> Result<Arc<dyn KeyStore>> {
        let accepted = || {
            self.schemes()
                .iter()
                .map(|s| format!("{s}:…"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let scheme_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        };
        let Some((scheme, rest)) = uri.split_once(':').filter(|(s, _)| scheme_ok(s)) else {
            return Err(Error::invalid_uri(
                uri,
                format!(
                    "no scheme; expected one of {} (e.g. file:/etc/jwtkit/keys or env:JWT_KEY)",
                    accepted()
                ),
            ));
        };
        match self.openers.get(&scheme.to_ascii_lowercase()) {
            Some(open) => open(rest, uri, self.clock.clone()),
            None => Err(Error::invalid_uri(
                uri,
                format!(
                    "unknown scheme `{scheme}`; supported: {} (kms:, vault+http(s): and pkcs11: need a build with those backends)",
                    accepted()
                ),
            )),
        }
    }
}

impl Default for StoreRegistry {
    fn default() -> Self {
        StoreRegistry::with_builtin()
    }
}

/// Opens a key store from a URI:
///
/// - `file:DIR` (or `file://` + absolute path): a [`FileKeyStore`] in `DIR`;
/// - `env:NAME`: an [`EnvKeyStore`] from the variable `NAME` (and
///   `NAME_KID`, `NAME_ALG`, `NAME_PREVIOUS`).
///
/// Unknown schemes are an [`Error::InvalidUri`] listing the supported ones.
/// The store reads the system clock; [`open_store_with_clock`] gives it
/// another. To add schemes, use a [`StoreRegistry`].
pub fn open_store(uri: &str) -> Result<Arc<dyn KeyStore>> {
    StoreRegistry::with_builtin().open(uri)
}

/// Like [`open_store`], with a store that reads `clock`.
pub fn open_store_with_clock(uri: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn KeyStore>> {
    StoreRegistry::with_builtin().with_clock(clock).open(uri)
}

fn open_file(rest: &str, uri: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn KeyStore>> {
    let path = match rest.strip_prefix("//") {
        // file:///abs/path → /abs/path; file://host/… is not a local path.
        Some(p) if p.starts_with('/') => p,
        Some(_) => {
            return Err(Error::invalid_uri(
                uri,
                "file:// URIs must have an absolute path (file:///dir) — or write file:DIR",
            ))
        }
        None => rest,
    };
    if path.is_empty() {
        return Err(Error::invalid_uri(uri, "no directory; write file:DIR"));
    }
    Ok(Arc::new(FileKeyStore::with_clock(
        PathBuf::from(path),
        clock,
    )))
}

/// Env keys carry no lifecycle times, so the clock has nothing to decide.
fn open_env(rest: &str, uri: &str, _clock: Arc<dyn Clock>) -> Result<Arc<dyn KeyStore>> {
    let valid = !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !rest.as_bytes()[0].is_ascii_digit();
    if !valid {
        return Err(Error::invalid_uri(
            uri,
            "env:NAME needs an environment variable name (letters, digits, _), e.g. env:JWT_KEY",
        ));
    }
    Ok(Arc::new(EnvKeyStore::from_env(rest)?))
}

/// `text` with the user information of every URL in it (`USER:PASSWORD@`
/// in `scheme://USER:PASSWORD@host/…`) replaced by `***`, so that a
/// password written into a store URI or a Vault address never reaches an
/// error message, a log or a terminal. A `scheme:USER@host` without `//` at
/// the very start of `text` counts too (`vault+https:user:pw@host/…` is a
/// typo away from a real URI); `file:` paths are left alone.
/// A URL keys are fetched from, as errors, logs and `Debug` show it: no
/// user name or password ([`redact_userinfo`]) and no query values (an API
/// key in `?api_key=…` is as secret as a password): `?api_key=***&v=***`.
/// The parameter names stay, to tell URLs apart.
pub(crate) fn redact_url(url: &str) -> String {
    let text = redact_userinfo(url);
    let Some(q) = text.find('?') else {
        return text;
    };
    let (head, rest) = text.split_at(q + 1);
    let (query, fragment) = match rest.find('#') {
        Some(f) => rest.split_at(f),
        None => (rest, ""),
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{name}=***"),
            None if pair.is_empty() => String::new(),
            None => "***".to_owned(),
        })
        .collect();
    format!("{head}{}{fragment}", query.join("&"))
}

pub(crate) fn redact_userinfo(text: &str) -> String {
    // Where an authority (host part) ends.
    fn authority_end(s: &str) -> usize {
        s.find(|c: char| {
            matches!(c, '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>') || c.is_whitespace()
        })
        .unwrap_or(s.len())
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // A leading `scheme:authority` without `//`.
    if let Some(colon) = text.find(':') {
        let scheme = &text[..colon];
        let after = &text[colon + 1..];
        let is_scheme = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if is_scheme && !after.starts_with("//") && !scheme.eq_ignore_ascii_case("file") {
            let end = authority_end(after);
            if let Some(at) = after[..end].rfind('@') {
                out.push_str(&text[..=colon]);
                out.push_str("***");
                rest = &after[at..];
            }
        }
    }
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = authority_end(tail);
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_userinfo;

    #[test]
    fn userinfo_is_redacted_wherever_a_url_appears() {
        let cases = [
            (
                "vault+http://user:pa55word@127.0.0.1:1/transit/k",
                "vault+http://***@127.0.0.1:1/transit/k",
            ),
            (
                "vault+http://user:pa55word@[::1/transit/k",
                "vault+http://***@[::1/transit/k",
            ),
            (
                "Vault address `http://u:p@x@host:1` is not a URL: and redis://:pw@r/0 too",
                "Vault address `http://***@host:1` is not a URL: and redis://***@r/0 too",
            ),
            ("vault+https:user:pa55@h/t/k", "vault+https:***@h/t/k"),
            ("https://host/p@th", "https://host/p@th"),
            ("file:/keys@2024", "file:/keys@2024"),
            ("file:keys@x/y", "file:keys@x/y"),
            ("env:JWT_KEY", "env:JWT_KEY"),
            ("no url here", "no url here"),
        ];
        for (text, want) in cases {
            assert_eq!(redact_userinfo(text), want, "{text}");
        }
    }
}
