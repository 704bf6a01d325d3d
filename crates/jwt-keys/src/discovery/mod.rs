//! Finding an issuer's keys from its URL: OpenID Connect Discovery 1.0 and
//! RFC 8414 authorization-server metadata.
//!
//! Given an issuer (the tokens' `iss`, e.g. `https://YOUR_TENANT.auth0.com/`),
//! its metadata is fetched from `{issuer}/.well-known/openid-configuration`
//! and, when that answers 404 or 410, from RFC 8414's
//! `/.well-known/oauth-authorization-server{path}` (the issuer's path goes
//! after the well-known prefix). The metadata's `issuer` must equal the
//! configured issuer exactly (OpenID Connect Discovery §4.3), else it is a
//! configuration error that names both. Its `jwks_uri` must pass the rules
//! of any JWKS URL (`https`, or `http` to a loopback address, and `https`
//! whenever the issuer is; it may be on another host, as Google's is) and is then
//! fetched by the same code as every other remote JWKS: `Cache-Control`
//! TTL within bounds, size and time limits, no redirect followed.
//!
//! Every fetch (metadata and JWKS) is bounded by
//! [`CacheOptions::fetch_timeout`] and [`CacheOptions::max_body_bytes`];
//! the metadata has its own TTL from its own `Cache-Control`, within the
//! same `min_ttl`/`max_ttl` bounds as a key set.
//!
//! [`discover`] does it once (what `jwtkit discover` prints); a
//! [`MultiIssuerVerifier`](crate::MultiIssuerVerifier) built with
//! [`Issuer::discover`](crate::Issuer::discover) does it continuously, with
//! the verifier's cache rules (unknown-`kid` refresh with a cooldown,
//! single-flight, stale-if-error, the metadata re-read on its TTL).
//!
//! Which algorithms an issuer's keys verify with, by default: a JWK's `alg`,
//! constrained by the algorithms the metadata declares the issuer signs with
//! ([`IssuerMetadata::signing_algorithms`]: the union of the issuer-signed
//! `*_signing_alg_values_supported` lists, see
//! [`SIGNING_ALGORITHM_MEMBERS`] for which and why), never `none` and never
//! an HMAC algorithm.

use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, Clock, SystemClock, VerifyingKey};

use crate::error::{Error, Result};
use crate::verify::{issuer_default, verification_algorithms, CacheOptions};

mod metadata;
mod source;

pub use metadata::{IssuerMetadata, MetadataError, MetadataKind, SIGNING_ALGORITHM_MEMBERS};
pub(crate) use source::DiscoverySource;

/// What [`discover`] found: the issuer's metadata and the keys a verifier
/// with default settings would trust now.
#[derive(Debug, Clone)]
pub struct Discovery {
    metadata: Arc<IssuerMetadata>,
    keys: Vec<DiscoveredKey>,
    skipped: Vec<SkippedKey>,
    ttl: Duration,
}

impl Discovery {
    /// The issuer's metadata.
    pub fn metadata(&self) -> &IssuerMetadata {
        &self.metadata
    }

    /// The usable keys of its JWKS: the first key of each `kid` in document
    /// order, then the further keys of a `kid` that names several.
    pub fn keys(&self) -> &[DiscoveredKey] {
        &self.keys
    }

    /// The JWKS entries left out, and why (`use: enc`, unsupported key
    /// types, malformed members).
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// How long a verifier keeps these keys before it reads the metadata
    /// and the JWKS again (the shorter of their TTLs).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// One key of an issuer's JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredKey {
    kid: String,
    key_type: &'static str,
    jwk_algorithm: Option<Algorithm>,
    thumbprint: String,
    algorithms: Vec<Algorithm>,
}

impl DiscoveredKey {
    /// Its `kid` (its RFC 7638 thumbprint when the JWK has none).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Its type, e.g. `"RSA"`, `"EC P-256"`, `"Ed25519"`.
    pub fn key_type(&self) -> &'static str {
        self.key_type
    }

    /// The algorithm its JWK names (`alg`), if any.
    pub fn jwk_algorithm(&self) -> Option<Algorithm> {
        self.jwk_algorithm
    }

    /// Its RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The algorithms a verifier with default settings accepts with this
    /// key: its JWK's `alg` if the metadata declares it (or declares
    /// nothing), or the declared algorithms of its type when it names none.
    /// Empty: the key verifies nothing by default (name the algorithms).
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }
}

/// A JWKS entry that cannot verify anything, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// The entry's `kid`, if it has one.
    pub kid: Option<String>,
    /// Why it was left out.
    pub reason: String,
}

/// Fetches `issuer`'s metadata and its current keys, once, with the rules
/// and limits of `options` (see the [module docs](self)). For showing an
/// operator what a verifier will trust; verify tokens with a
/// [`MultiIssuerVerifier`](crate::MultiIssuerVerifier).
///
/// ```no_run
/// # async fn run() -> Result<(), jwt_keys::Error> {
/// let found = jwt_keys::discover("https://accounts.google.com", &Default::default()).await?;
/// println!("keys at {}", found.metadata().jwks_uri());
/// for key in found.keys() {
///     println!("{} {:?} {}", key.kid(), key.jwk_algorithm(), key.thumbprint());
/// }
/// # Ok(()) }
/// ```
///
/// Errors: a refused issuer URL or a metadata `issuer` that differs from it
/// is [`Error::InvalidConfig`] (setting `"issuer"`); unusable metadata is an
/// [`Error::Backend`] whose source is a [`MetadataError`]; a refused
/// `jwks_uri` is [`Error::InvalidJwksUrl`]; a JWKS that cannot be fetched or
/// used is [`Error::Fetch`].
pub async fn discover(issuer: &str, options: &CacheOptions) -> Result<Discovery> {
    options.validate()?;
    let source = DiscoverySource::new(issuer, options)?;
    let now = SystemClock.now();
    let loaded = source.load(now, true, options).await?;
    let (allowed, rule) = issuer_default(loaded.metadata.signing_algorithms())
        .map_err(|reason| Error::invalid_config("algorithms", reason))?;
    let describe = |key: &VerifyingKey| -> Result<DiscoveredKey> {
        Ok(DiscoveredKey {
            kid: key.kid_or_thumbprint()?,
            key_type: key.family().name(),
            jwk_algorithm: key.algorithm(),
            thumbprint: key.thumbprint()?,
            algorithms: verification_algorithms(key, &allowed, rule),
        })
    };
    let mut keys = Vec::new();
    for set in std::iter::once(&loaded.keys.primary).chain(&loaded.keys.alternates) {
        for key in set.keys() {
            keys.push(describe(key)?);
        }
    }
    let skipped = loaded
        .keys
        .primary
        .skipped()
        .iter()
        .map(|(kid, reason)| SkippedKey {
            kid: kid.clone(),
            reason: reason.clone(),
        })
        .collect();
    Ok(Discovery {
        metadata: loaded.metadata,
        keys,
        skipped,
        ttl: Duration::from_secs(u64::try_from(loaded.ttl).unwrap_or(0)),
    })
}
