//! Verifying from synchronous code: [`blocking::Verifier`](Verifier) wraps the
//! async [`jwt_keys::Verifier`](crate::Verifier) — same cache, same rules —
//! for programs that have no async runtime (a CLI, a sync web framework, a
//! worker thread), as PyJWT's `PyJWKClient` is used; and
//! [`blocking::MultiIssuerVerifier`](MultiIssuerVerifier) does the same for
//! a [`jwt_keys::MultiIssuerVerifier`](crate::MultiIssuerVerifier) (tokens
//! of several identity providers, found by their issuer URL).
//!
//! The wrapper owns a small tokio runtime with one background thread. A
//! verification with the keys already loaded takes the synchronous cached
//! path ([`Verifier::verify_cached`](crate::Verifier::verify_cached)): no
//! I/O, no waiting. The calling thread waits for a fetch only when it cannot
//! decide without one: the first verification, a token naming a `kid` not
//! loaded yet (a rotation at the provider, at most one fetch per cooldown),
//! or a key set past `max_stale`. A key set nearing expiry is refreshed on
//! the background thread while verifications go on with the cached keys.
//!
//! In async code, use the async verifier instead
//! ([`Verifier::as_async`] hands out the one this wraps, sharing its cache):
//! a blocking call on an async worker would stall every task on that thread,
//! so it is refused with [`Error::InvalidConfig`] (setting `"runtime"`)
//! rather than done.

use std::fmt;
use std::sync::Arc;

use jwt_core::{TokenData, Validation};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::verify::KeySource;

/// A verifier for synchronous code, following a [`KeySource`] (typically an
/// identity provider's JWKS URL) like [`jwt_keys::Verifier`](crate::Verifier)
/// does, with the same cache and the same rejections. Cheap to clone: clones
/// share the cache and the background thread, which ends when the last clone
/// is dropped.
///
/// ```
/// use jwt_core::{Algorithm, Validation};
/// use jwt_keys::{blocking, KeySource};
/// # use jwt_core::{Jwks, Signer, SigningKey};
/// # use std::io::{Read, Write};
/// # // A stand-in for the identity provider: its key, and its JWKS served
/// # // over HTTP on a loopback port by a plain thread.
/// # let key = SigningKey::generate(Algorithm::RS256)?.with_kid("2024-05");
/// # let mut jwk = key.to_public_jwk().expect("public part");
/// # jwk.alg = Some("RS256".into());
/// # let body = Jwks { keys: vec![jwk] }.to_json();
/// # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// # let jwks_url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
/// # std::thread::spawn(move || {
/// #     for mut conn in listener.incoming().flatten() {
/// #         let mut request = [0u8; 4096];
/// #         let _ = conn.read(&mut request);
/// #         let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
/// #             Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
/// #     }
/// # });
/// # let exp = jwt_core::time::now_unix() + 600;
/// # let token = Signer::new(key, Algorithm::RS256)?.sign(&serde_json::json!({
/// #     "iss": "https://idp.example.com/", "aud": "my-api", "sub": "alice", "exp": exp}))?;
/// let verifier = blocking::Verifier::new(
///     KeySource::Remote(jwks_url),            // e.g. https://TENANT/.well-known/jwks.json
///     Validation::new([Algorithm::RS256])
///         .issuer("https://idp.example.com/")
///         .audience("my-api"),
/// )?;
/// // The first call fetches the JWKS; later ones use the cached keys.
/// let claims = verifier.verify::<serde_json::Value>(&token)?.claims;
/// assert_eq!(claims["sub"], "alice");
/// assert_eq!(verifier.fetch_count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Cache options and a clock are set on the async builder, then wrapped:
///
/// ```
/// use std::time::Duration;
/// use jwt_core::{Algorithm, Validation};
/// use jwt_keys::{blocking, CacheOptions, KeySource};
///
/// let verifier = blocking::Verifier::from_async(
///     jwt_keys::Verifier::builder(
///         KeySource::Remote("https://idp.example.com/.well-known/jwks.json".into()),
///         Validation::new([Algorithm::RS256]),
///     )
///     .cache(CacheOptions::default().with_fetch_timeout(Duration::from_secs(2)))
///     .build()?,
/// )?;
/// assert!(verifier.cached_kids().is_empty()); // nothing is fetched before the first use
/// # Ok::<(), jwt_keys::Error>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: crate::Verifier,
    runtime: Arc<OwnedRuntime>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Verifier")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The wrapper's runtime, shut down without waiting when the last clone
/// goes: dropping a runtime the normal way blocks, which panics when the
/// drop happens inside an async context (a verifier moved into a task).
struct OwnedRuntime {
    /// What the verifier runs on (a multi-thread runtime's handle drives
    /// I/O from its worker, so `Handle::block_on` is enough).
    handle: tokio::runtime::Handle,
    /// Only for `Drop`.
    runtime: Option<tokio::runtime::Runtime>,
}

impl OwnedRuntime {
    /// A runtime with one background thread.
    fn new() -> Result<OwnedRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("jwt-keys-blocking")
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                path: "(the background thread of a jwt_keys::blocking verifier)".into(),
                source,
            })?;
        Ok(OwnedRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// A blocking verification: refused inside a tokio runtime; otherwise
    /// `cached` (the synchronous path, entered in this runtime so that a key
    /// set nearing expiry is refreshed on the background thread), and only
    /// when it cannot decide (a `kid` not loaded, keys not loaded or too
    /// old) the wait for `load` (the async verification, which fetches).
    fn cached_or_loaded<T, F>(
        &self,
        cached: impl FnOnce() -> Result<T>,
        load: impl FnOnce() -> F,
    ) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        refuse_inside_runtime("verify::<T>(token)")?;
        let decided = {
            let _context = self.handle.enter();
            cached()
        };
        match decided {
            Err(Error::Core(jwt_core::Error::UnknownKey { kid: Some(_) }))
            | Err(Error::StaleKeys { .. }) => self.handle.block_on(load()),
            decided => decided,
        }
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // An in-flight background refresh is abandoned: nobody is left
            // to use its result.
            runtime.shutdown_background();
        }
    }
}

impl Verifier {
    /// A blocking verifier with the default cache options and the system
    /// clock; see [`jwt_keys::Verifier::new`](crate::Verifier::new). Nothing
    /// is fetched yet: the first verification (or [`refresh`](Self::refresh))
    /// loads the keys.
    pub fn new(source: KeySource, validation: Validation) -> Result<Verifier> {
        Verifier::from_async(crate::Verifier::new(source, validation)?)
    }

    /// Wraps an async verifier (built with
    /// [`jwt_keys::Verifier::builder`](crate::Verifier::builder) for cache
    /// options, a clock or an algorithm rule). The two share one cache.
    ///
    /// Starts the background thread that runs fetches; fails with
    /// [`Error::Io`] only if the system refuses a new thread.
    pub fn from_async(verifier: crate::Verifier) -> Result<Verifier> {
        Ok(Verifier {
            inner: verifier,
            runtime: Arc::new(OwnedRuntime::new()?),
        })
    }

    /// Verifies `token` and deserializes its claims, waiting for a fetch
    /// only when the cached keys cannot decide (see the [module
    /// docs](self)).
    ///
    /// Rejections are [`Error::Core`] with `jwt-core`'s kinds, exactly as
    /// from the async [`verify`](crate::Verifier::verify): `unknown_key`,
    /// `invalid_signature`, `expired`, …; a provider that cannot be reached
    /// on the first use is [`Error::Fetch`]. Called from inside a tokio
    /// runtime, it returns [`Error::InvalidConfig`] (setting `"runtime"`)
    /// without verifying: await [`as_async`](Self::as_async)`().verify(token)`
    /// there instead.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<TokenData<T>> {
        self.runtime.cached_or_loaded(
            || self.inner.verify_cached::<T>(token),
            || self.inner.verify::<T>(token),
        )
    }

    /// Reloads the key set now, ignoring the cooldown (to load the keys
    /// before serving, or after an incident), and waits for it. Refused
    /// inside a tokio runtime like [`verify`](Self::verify).
    pub fn refresh(&self) -> Result<()> {
        refuse_inside_runtime("refresh()")?;
        self.runtime.handle.block_on(self.inner.refresh())
    }

    /// The async verifier this wraps, sharing its cache: for the async parts
    /// of a program.
    pub fn as_async(&self) -> &crate::Verifier {
        &self.inner
    }

    /// The kids of the keys that verify now (empty before the first load).
    pub fn cached_kids(&self) -> Vec<String> {
        self.inner.cached_kids()
    }

    /// The public keys that verify now, as a JWKS (empty before the first
    /// load); see [`crate::Verifier::cached_jwks`].
    pub fn cached_jwks(&self) -> jwt_core::Jwks {
        self.inner.cached_jwks()
    }

    /// How many fetches succeeded so far (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetch_count()
    }
}

/// Blocking inside a runtime would stall its thread (and tokio panics on a
/// nested `block_on`), so it is refused up front, always — not only when a
/// fetch turns out to be needed, which would make the failure depend on
/// the provider's rotation schedule.
/// `call` is the method as the async verifier spells it, e.g. `refresh()`.
fn refuse_inside_runtime(call: &str) -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::invalid_config(
            "runtime",
            format!(
                "a jwt_keys::blocking verifier was called from inside a tokio runtime, where \
                 blocking would stall the runtime's thread; in async code use the async verifier \
                 instead: `verifier.as_async().{call}.await` (it shares this cache), or build the \
                 async verifier (jwt_keys::Verifier, jwt_keys::MultiIssuerVerifier)"
            ),
        ));
    }
    Ok(())
}

/// A [`jwt_keys::MultiIssuerVerifier`](crate::MultiIssuerVerifier) for
/// synchronous code: tokens from several issuers, each verified with its
/// own keys, with the same caches and refusals. Cheap to clone: clones
/// share the caches and the background thread, which ends when the last
/// clone is dropped.
///
/// A verification whose issuer and key are loaded takes the synchronous
/// path (no I/O, no waiting); the calling thread waits for a fetch only on
/// an issuer's first use, a `kid` it has not loaded yet (at most one fetch
/// per cooldown), or keys past `max_stale`. Refused inside a tokio runtime,
/// like [`Verifier`].
///
/// ```no_run
/// use jwt_keys::{blocking, Issuer, MultiIssuerVerifier};
///
/// # fn run(token: &str) -> Result<(), jwt_keys::Error> {
/// let verifier = blocking::MultiIssuerVerifier::from_async(
///     MultiIssuerVerifier::builder()
///         .issuer(Issuer::discover("https://accounts.google.com").audience("CLIENT_ID"))
///         .issuer(Issuer::discover("https://YOUR_TENANT.eu.auth0.com/").audience("my-api"))
///         .build()?,
/// )?;
/// let claims = verifier.verify::<serde_json::Value>(token)?.claims;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MultiIssuerVerifier {
    inner: crate::MultiIssuerVerifier,
    runtime: Arc<OwnedRuntime>,
}

impl fmt::Debug for MultiIssuerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::MultiIssuerVerifier")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl MultiIssuerVerifier {
    /// Wraps an async multi-issuer verifier; the two share every cache.
    /// Starts the background thread that runs fetches; fails with
    /// [`Error::Io`] only if the system refuses a new thread.
    pub fn from_async(verifier: crate::MultiIssuerVerifier) -> Result<MultiIssuerVerifier> {
        Ok(MultiIssuerVerifier {
            inner: verifier,
            runtime: Arc::new(OwnedRuntime::new()?),
        })
    }

    /// Verifies `token` with the keys of the issuer its `iss` names, waiting
    /// for a fetch only when the cached keys cannot decide. Rejections and
    /// errors are those of the async
    /// [`verify`](crate::MultiIssuerVerifier::verify); inside a tokio
    /// runtime, [`Error::InvalidConfig`] (setting `"runtime"`).
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<TokenData<T>> {
        self.runtime.cached_or_loaded(
            || self.inner.verify_cached::<T>(token),
            || self.inner.verify::<T>(token),
        )
    }

    /// Loads every issuer's metadata and keys now, and waits for it.
    /// Refused inside a tokio runtime like [`verify`](Self::verify).
    pub fn refresh(&self) -> Result<()> {
        refuse_inside_runtime("refresh()")?;
        self.runtime.handle.block_on(self.inner.refresh())
    }

    /// The async verifier this wraps, sharing its caches.
    pub fn as_async(&self) -> &crate::MultiIssuerVerifier {
        &self.inner
    }
}
