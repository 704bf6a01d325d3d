//! `RemoteJwks`: the native half of `PyJWKClient`, a
//! [`jwt_keys::blocking::Verifier`] following a JWKS URL.
//!
//! The fetch and the cache are jwt-keys', not this module's: `https://` (or
//! `http://` to a loopback address) only, redirects refused, a size and a
//! time limit, the `Cache-Control` lifetime within bounds, one refetch per
//! cooldown for an unknown `kid`, and the last good key set served while
//! refreshes fail (for `max_stale`). This module maps PyJWT's settings onto
//! [`CacheOptions`] and asks the verifier for keys.
//!
//! The verifier has no "key for this kid" call, so a lookup goes through
//! its verification path with a *probe*: a token naming the `kid`, with an
//! empty payload and a signature that never verifies. The verifier loads
//! the key set when it has none (or only one past `max_stale`), and on an
//! unknown `kid` refetches once, respecting its cooldown, exactly as for a
//! real token; the key is then read from
//! [`cached_jwks`](jwt_keys::blocking::Verifier::cached_jwks). The probe's
//! own outcome (a bad signature) is discarded.

use std::time::Duration;

use jwt_core::{Algorithm, KeyFamily, Validation};
use jwt_keys::{blocking, CacheOptions, KeySource};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{class_err, config_err, keys_err};
use crate::runtime::ProcessLocal;

/// jwt-keys' lower bound on a TTL taken from `Cache-Control: max-age`
/// (its default `min_ttl`), kept unless `lifespan` is shorter.
const MIN_TTL: Duration = Duration::from_secs(60);
/// jwt-keys' default `refresh_ahead`, kept unless it would reach `min_ttl`.
const REFRESH_AHEAD: Duration = Duration::from_secs(30);
/// Longest duration accepted for a setting (ten years): beyond it a
/// `Duration` computed from a float could overflow.
const MAX_SECONDS: f64 = 10.0 * 365.0 * 24.0 * 3600.0;

/// The cached key set of a JWKS URL (the native half of `PyJWKClient`).
/// Cheap to share between threads: lookups in the cache take no lock the
/// GIL would wait on, and fetches release the GIL.
#[pyclass(name = "RemoteJwks", module = "jwtkit._jwtkit", frozen)]
pub(crate) struct RemoteJwks {
    /// With its own runtime (jwt-keys'), usable in the process that made
    /// it only.
    verifier: ProcessLocal<blocking::Verifier>,
    /// The cooldown, for the message of a lookup that waits for it.
    cooldown: Duration,
}

/// A setting in seconds, checked: finite, not negative, at most ten years.
fn seconds(py: Python<'_>, name: &str, value: f64) -> PyResult<f64> {
    // NaN is in no range: refused too.
    if !(0.0..=MAX_SECONDS).contains(&value) {
        return Err(config_err(
            py,
            format!(
                "{name} must be a finite number of seconds between 0 and {MAX_SECONDS} \
                 (ten years), not {value}"
            ),
        ));
    }
    Ok(value)
}

/// `value` seconds rounded up to whole seconds: jwt-keys counts a key
/// set's lifetime and the cooldown in whole seconds.
fn whole_seconds(value: f64) -> Duration {
    // `value` was checked by `seconds`: finite, in [0, ten years].
    Duration::from_secs(value.ceil() as u64)
}

/// The cache options for PyJWT's settings; see `docs/python.md`.
fn cache_options(
    py: Python<'_>,
    lifespan: f64,
    cooldown: f64,
    timeout: f64,
    max_stale: Option<f64>,
    root_certificates_pem: Option<&[u8]>,
) -> PyResult<CacheOptions> {
    let lifespan = seconds(py, "lifespan", lifespan)?;
    if lifespan <= 0.0 {
        return Err(config_err(
            py,
            format!("lifespan must be greater than 0, not {lifespan}"),
        ));
    }
    let lifespan = whole_seconds(lifespan);
    let cooldown = whole_seconds(seconds(py, "cooldown_duration", cooldown)?);
    let timeout = seconds(py, "timeout", timeout)?;
    if timeout <= 0.0 {
        return Err(config_err(
            py,
            format!(
                "timeout must be greater than 0 (a hanging server must not hang the caller), \
                 not {timeout}"
            ),
        ));
    }
    // `lifespan` is how long a key set is kept at most: a shorter
    // `Cache-Control: max-age` from the server is honoured (not below one
    // minute, or `lifespan` when that is shorter), a longer one is cut to it.
    let min_ttl = MIN_TTL.min(lifespan);
    let mut options = CacheOptions::default()
        .with_default_ttl(lifespan)
        .with_max_ttl(lifespan)
        .with_min_ttl(min_ttl)
        .with_refresh_ahead(REFRESH_AHEAD.min(min_ttl / 2))
        .with_cooldown(cooldown)
        .with_fetch_timeout(Duration::from_secs_f64(timeout));
    if let Some(max_stale) = max_stale {
        options = options.with_max_stale(whole_seconds(seconds(py, "max_stale", max_stale)?));
    }
    if let Some(pem) = root_certificates_pem {
        options = options
            .with_root_certificates_pem(pem)
            .map_err(|e| keys_err(py, e))?;
    }
    Ok(options)
}

/// A token naming `kid` (or none) that never verifies: the header the
/// verifier looks keys up by, an empty payload, a one-byte signature.
/// RS256 is in the probe's allowed list, so the lookup by `kid` is reached.
fn probe_token(kid: Option<&str>) -> String {
    let header = match kid {
        Some(kid) => serde_json::json!({"alg": "RS256", "kid": kid}),
        None => serde_json::json!({"alg": "RS256"}),
    };
    format!(
        "{}.{}.AA",
        jwt_core::b64::encode(header.to_string().as_bytes()),
        jwt_core::b64::encode(b"{}")
    )
}

/// An error of the JWKS fetch as PyJWT's class: `PyJWKClientConnectionError`
/// when the keys could not be had (`fetch`, `stale_keys`), the package's
/// usual class otherwise (a setting: `ConfigurationError`).
fn fetch_err(py: Python<'_>, err: jwt_keys::Error) -> PyErr {
    let kind = err.kind().as_str();
    match kind {
        "fetch" | "stale_keys" => {
            class_err(py, "PyJWKClientConnectionError", kind, err.to_string())
        }
        _ => keys_err(py, err),
    }
}

impl RemoteJwks {
    /// Runs the probe for `kid` through the verifier, without the GIL: loads
    /// the key set if needed, refetches once (cooldown permitting) for an
    /// unknown `kid`. A token rejection is the expected outcome; only a
    /// failure to have keys at all is an error.
    fn probe(&self, py: Python<'_>, kid: Option<&str>) -> PyResult<()> {
        let token = probe_token(kid);
        let verifier = self.verifier.get()?;
        let outcome = py.detach(|| verifier.verify::<serde::de::IgnoredAny>(&token));
        match outcome {
            Ok(_) | Err(jwt_keys::Error::Core(_)) => Ok(()),
            // jwt-keys' own message names the URL as given, with any
            // password in it, and for a set never loaded ("stale (0s old,
            // the limit is 0s)") does not say that nothing was tried.
            Err(jwt_keys::Error::StaleKeys {
                age_secs,
                max_stale_secs,
                ..
            }) => {
                let message = if verifier.fetch_count() == 0 {
                    format!(
                        "no key set has been fetched yet: the last attempt failed less than the \
                         cooldown ({}s) ago, so this lookup did not try again; check that the \
                         JWKS server is reachable",
                        self.cooldown.as_secs()
                    )
                } else {
                    format!(
                        "the cached key set is {age_secs}s old, past its lifespan and max_stale \
                         ({max_stale_secs}s), and refreshing it failed less than the cooldown \
                         ({}s) ago; check that the JWKS server is reachable",
                        self.cooldown.as_secs()
                    )
                };
                Err(class_err(
                    py,
                    "PyJWKClientConnectionError",
                    "stale_keys",
                    message,
                ))
            }
            Err(e) => Err(fetch_err(py, e)),
        }
    }

    /// The public keys that verify now, as JWK JSON texts, those named
    /// `kid` only when given.
    fn cached(&self, kid: Option<&str>) -> PyResult<Vec<String>> {
        self.verifier
            .get()?
            .cached_jwks()
            .keys
            .iter()
            .filter(|jwk| kid.is_none() || jwk.kid.as_deref() == kid)
            .map(|jwk| {
                serde_json::to_string(jwk).map_err(|e| {
                    crate::errors::to_py_err(
                        "serialization",
                        format!("a cached JWK could not be written as JSON: {e}"),
                    )
                })
            })
            .collect()
    }
}

#[pymethods]
impl RemoteJwks {
    /// Follows the JWKS at `uri` (`https://`, or `http://` to a loopback
    /// address; checked here). Nothing is fetched until the first lookup.
    /// `lifespan`, `cooldown` and `max_stale` are in seconds, rounded up to
    /// whole seconds; `timeout` bounds one fetch; `root_certificates_pem`
    /// adds trusted CA certificates (PEM) to the built-in roots.
    #[new]
    #[pyo3(signature = (uri, *, lifespan, cooldown, timeout, max_stale=None, root_certificates_pem=None))]
    fn new(
        py: Python<'_>,
        uri: &str,
        lifespan: f64,
        cooldown: f64,
        timeout: f64,
        max_stale: Option<f64>,
        root_certificates_pem: Option<Bound<'_, PyBytes>>,
    ) -> PyResult<Self> {
        let pem = root_certificates_pem.as_ref().map(|b| b.as_bytes());
        let options = cache_options(py, lifespan, cooldown, timeout, max_stale, pem)?;
        let cooldown = options.cooldown();
        // Every public-key algorithm: a probe in RS256 reaches the lookup
        // by `kid` whatever the keys are. HMAC is left out: a published key
        // set holds no secrets (jwt-keys drops `oct` keys anyway).
        let algorithms = Algorithm::ALL
            .into_iter()
            .filter(|a| a.family() != KeyFamily::Hmac);
        let verifier = jwt_keys::Verifier::builder(
            KeySource::Remote(uri.to_owned()),
            Validation::new(algorithms),
        )
        .cache(options)
        .build()
        .and_then(blocking::Verifier::from_async)
        .map_err(|e| keys_err(py, e))?;
        Ok(RemoteJwks {
            verifier: ProcessLocal::new("PyJWKClient", verifier),
            cooldown,
        })
    }

    /// The usable public keys of the set, as JWK JSON texts: loads the set
    /// on first use (or when past `max_stale`); a set past its lifetime is
    /// refreshed in the background while the cached keys answer.
    fn signing_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.probe(py, None)?;
        self.cached(None)
    }

    /// The keys named `kid` (JWK JSON texts, in document order; empty when
    /// none): a `kid` not in the cached set refetches once, unless a fetch
    /// caused by traffic happened within the cooldown.
    fn signing_key(&self, py: Python<'_>, kid: &str) -> PyResult<Vec<String>> {
        self.probe(py, Some(kid))?;
        self.cached(Some(kid))
    }

    /// Fetches the key set now, ignoring the cooldown, and waits for it.
    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        let verifier = self.verifier.get()?;
        py.detach(|| verifier.refresh())
            .map_err(|e| fetch_err(py, e))
    }

    /// The kids of the keys that verify now (no I/O; empty before the first
    /// fetch).
    fn cached_kids(&self) -> Vec<String> {
        self.verifier
            .peek()
            .map(|v| v.cached_kids())
            .unwrap_or_default()
    }

    /// How many fetches succeeded so far.
    #[getter]
    fn fetch_count(&self) -> u64 {
        self.verifier.peek().map_or(0, |v| v.fetch_count())
    }

    /// The fetch count and the cached kids; never the URL, which may carry
    /// a password (jwt-keys' `Debug` shows it as given).
    fn __repr__(&self) -> String {
        format!(
            "RemoteJwks(fetch_count={}, kids={:?})",
            self.fetch_count(),
            self.cached_kids()
        )
    }
}

/// Registers `RemoteJwks`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RemoteJwks>()?;
    Ok(())
}
