//! How a [`Verifier`](super::Verifier)(super::Verifier) caches a key set.

use std::time::Duration;

use crate::error::{Error, Result};

/// How a refreshing key source is cached. All checks happen in
/// [`VerifierBuilder::build`](super::VerifierBuilder::build).
///
/// | option | default | why |
/// |---|---|---|
/// | `default_ttl` | 10 min | used when the response has no `Cache-Control: max-age` |
/// | `min_ttl` / `max_ttl` | 1 min / 24 h | bounds on the provider's `max-age` |
/// | `cooldown` | 30 s | minimum time between fetches caused by traffic (unknown kids, background refreshes, a missing key set); an explicit [`Verifier::refresh`](super::Verifier::refresh) neither waits for it nor starts it |
/// | `fetch_timeout` | 5 s | a hanging provider must not hang requests |
/// | `max_stale` | 6 h | how long past expiry the last good set serves while refreshes fail |
/// | `refresh_ahead` | 30 s | refresh in the background this long before expiry |
/// | `max_body_bytes` | 1 MiB | JWKS responses are small; anything larger is refused |
/// | `root_certificates` | none | CA certificates trusted for `https` besides the built-in roots: for a provider behind a private CA ([`with_root_certificates_pem`](Self::with_root_certificates_pem)) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    pub(super) default_ttl: Duration,
    pub(super) min_ttl: Duration,
    pub(super) max_ttl: Duration,
    pub(super) cooldown: Duration,
    pub(super) fetch_timeout: Duration,
    pub(super) max_stale: Duration,
    pub(super) refresh_ahead: Duration,
    pub(super) max_body_bytes: usize,
    /// PEM bundles of extra trusted CA certificates, each checked when added.
    pub(crate) root_certificates: Vec<Vec<u8>>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            default_ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            cooldown: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            max_stale: Duration::from_secs(6 * 3600),
            refresh_ahead: Duration::from_secs(30),
            max_body_bytes: 1 << 20,
            root_certificates: Vec::new(),
        }
    }
}

macro_rules! option {
    ($(#[$doc:meta])* $field:ident, $with:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $with(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
        $(#[$doc])*
        pub fn $field(&self) -> $ty {
            self.$field
        }
    };
}

impl CacheOptions {
    option!(
        /// TTL when the response carries no `max-age`.
        default_ttl, with_default_ttl, Duration);
    option!(
        /// Lower bound on the TTL.
        min_ttl, with_min_ttl, Duration);
    option!(
        /// Upper bound on the TTL.
        max_ttl, with_max_ttl, Duration);
    option!(
        /// Minimum time between miss-triggered or background fetches.
        cooldown, with_cooldown, Duration);
    option!(
        /// Timeout of one fetch (connect to last byte).
        fetch_timeout, with_fetch_timeout, Duration);
    option!(
        /// How long past expiry the last good key set serves while refreshes fail.
        max_stale, with_max_stale, Duration);
    option!(
        /// How long before expiry a background refresh starts.
        refresh_ahead, with_refresh_ahead, Duration);
    option!(
        /// Maximum size of a JWKS response.
        max_body_bytes, with_max_body_bytes, usize);

    /// Also trusts the CA certificates of `pem` (one or more `CERTIFICATE`
    /// blocks) for `https` fetches of metadata and key sets, as well as the
    /// built-in web roots: for a provider (a self-hosted Vault, OpenBao or
    /// Keycloak) whose certificate a private CA signed. Refused
    /// ([`Error::InvalidConfig`], setting `root_certificates`) when `pem`
    /// holds no certificate or one that does not parse. Certificate checks
    /// are never turned off.
    pub fn with_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::invalid_config("root_certificates", reason);
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| bad(format!("not a PEM bundle of CA certificates: {e}")))?;
        if certs.is_empty() {
            return Err(bad(
                "no `-----BEGIN CERTIFICATE-----` block found; give the PEM file of the CA \
                 that signed the provider's certificate"
                    .into(),
            ));
        }
        self.root_certificates.push(pem.to_vec());
        Ok(self)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad =
            |setting: &'static str, reason: String| Err(Error::invalid_config(setting, reason));
        if self.min_ttl.as_secs() == 0 {
            return bad("min_ttl", "min_ttl must be at least one second".into());
        }
        if self.min_ttl > self.max_ttl {
            return bad(
                "max_ttl",
                format!(
                    "min_ttl ({:?}) is above max_ttl ({:?})",
                    self.min_ttl, self.max_ttl
                ),
            );
        }
        if self.default_ttl < self.min_ttl || self.default_ttl > self.max_ttl {
            return bad(
                "default_ttl",
                format!(
                    "default_ttl ({:?}) is outside [min_ttl, max_ttl] ({:?}, {:?})",
                    self.default_ttl, self.min_ttl, self.max_ttl
                ),
            );
        }
        if self.refresh_ahead >= self.min_ttl {
            return bad(
                "refresh_ahead",
                format!(
                "refresh_ahead ({:?}) must be shorter than min_ttl ({:?}), or every request would start a refresh",
                self.refresh_ahead, self.min_ttl
            ));
        }
        if self.fetch_timeout.is_zero() {
            return bad("fetch_timeout", "fetch_timeout must be above zero".into());
        }
        if self.max_body_bytes < 1024 {
            return bad(
                "max_body_bytes",
                "max_body_bytes must be at least 1 KiB".into(),
            );
        }
        Ok(())
    }
}
