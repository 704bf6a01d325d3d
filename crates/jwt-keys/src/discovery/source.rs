//! The key source of an issuer found by discovery: its metadata, re-read on
//! its own TTL, and the JWKS at its `jwks_uri`, fetched by the one remote
//! JWKS path ([`remote::fetch`]) that every other JWKS goes through.
//!
//! A load is always made by the [`Verifier`](crate::Verifier) that owns the
//! source, under its single-flight lock and cooldown, so the metadata and
//! the JWKS are fetched at most once per cooldown however many requests
//! need them. When re-reading the metadata fails, the last good metadata
//! keeps serving (stale-if-error, as the key set itself does) and is tried
//! again `min_ttl` later.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::Url;

use super::metadata::{self, IssuerMetadata};
use crate::error::Result;
use crate::remote::{self, JwksKeys};
use crate::verify::CacheOptions;
use jwt_core::time::secs;

/// One issuer's metadata and keys, as loaded together.
pub(crate) struct Loaded {
    pub(crate) keys: JwksKeys,
    /// Seconds until either the key set or the metadata should be read again.
    pub(crate) ttl: i64,
    pub(crate) metadata: Arc<IssuerMetadata>,
}

pub(crate) struct DiscoverySource {
    issuer: String,
    issuer_url: Url,
    /// For the metadata URLs (same scheme and host as the issuer).
    client: reqwest::Client,
    state: Mutex<State>,
    metadata_fetches: AtomicU64,
}

#[derive(Default)]
struct State {
    metadata: Option<Arc<IssuerMetadata>>,
    /// Read the metadata again from then on.
    fresh_until: i64,
    /// The current `jwks_uri` as the metadata spells it, parsed, and its
    /// client (its scheme decides whether a proxy may carry it).
    jwks: Option<(String, Url, reqwest::Client)>,
}

impl fmt::Debug for DiscoverySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoverySource")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl DiscoverySource {
    /// Checks the issuer URL and prepares its client; fetches nothing.
    pub(crate) fn new(issuer: &str, options: &CacheOptions) -> Result<DiscoverySource> {
        let issuer_url = metadata::check_issuer(issuer)?;
        let client = remote::client(options, &issuer_url)?;
        Ok(DiscoverySource {
            issuer: issuer.to_owned(),
            issuer_url,
            client,
            state: Mutex::new(State::default()),
            metadata_fetches: AtomicU64::new(0),
        })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The metadata loaded last (`None` before the first load).
    pub(crate) fn metadata(&self) -> Option<Arc<IssuerMetadata>> {
        self.lock().metadata.clone()
    }

    /// How many times the metadata was fetched successfully.
    pub(crate) fn metadata_fetches(&self) -> u64 {
        self.metadata_fetches.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the key set: the metadata first when it is due (or `force`),
    /// then the JWKS at its `jwks_uri`.
    pub(crate) async fn load(
        &self,
        now: i64,
        force: bool,
        options: &CacheOptions,
    ) -> Result<Loaded> {
        let (current, due) = {
            let state = self.lock();
            (state.metadata.clone(), force || now >= state.fresh_until)
        };
        let metadata = match (current, due) {
            (Some(metadata), false) => metadata,
            (current, _) => self.reload_metadata(now, current, options).await?,
        };
        let (jwks_url, jwks_client) = self.jwks_client(&metadata, options)?;
        let (keys, jwks_ttl) = remote::fetch(&jwks_client, &jwks_url, options).await?;
        let metadata_left = self.lock().fresh_until.saturating_sub(now);
        Ok(Loaded {
            keys,
            ttl: jwks_ttl.min(metadata_left).max(0),
            metadata,
        })
    }

    /// Fetches the metadata; on failure, keeps serving `current` (tried
    /// again `min_ttl` later) if there is one.
    async fn reload_metadata(
        &self,
        now: i64,
        current: Option<Arc<IssuerMetadata>>,
        options: &CacheOptions,
    ) -> Result<Arc<IssuerMetadata>> {
        match metadata::fetch(&self.issuer, &self.issuer_url, &self.client, options).await {
            Ok((fresh, ttl)) => {
                self.metadata_fetches.fetch_add(1, Ordering::SeqCst);
                let fresh = Arc::new(fresh);
                let mut state = self.lock();
                if let Some(old) = &state.metadata {
                    if old.jwks_uri() != fresh.jwks_uri() {
                        // Debug formatting: the URLs come from a remote document.
                        tracing::info!(issuer = %self.issuer,
                            from = %metadata::shown_url(old.jwks_uri()),
                            to = %metadata::shown_url(fresh.jwks_uri()),
                            "the issuer's jwks_uri changed");
                    }
                }
                state.metadata = Some(fresh.clone());
                state.fresh_until = now.saturating_add(ttl);
                tracing::debug!(issuer = %self.issuer, url = %fresh.url(), ttl_secs = ttl,
                    "issuer metadata loaded");
                Ok(fresh)
            }
            Err(e) => match current {
                Some(stale) => {
                    tracing::warn!(issuer = %self.issuer, error = %e,
                        "re-reading the issuer's metadata failed; keeping the last good metadata");
                    self.lock().fresh_until = now.saturating_add(secs(options.min_ttl()));
                    Ok(stale)
                }
                None => Err(e),
            },
        }
    }

    /// The JWKS URL of `metadata` and its client (built once per URL).
    fn jwks_client(
        &self,
        metadata: &IssuerMetadata,
        options: &CacheOptions,
    ) -> Result<(Url, reqwest::Client)> {
        let mut state = self.lock();
        if let Some((spelled, url, client)) = &state.jwks {
            if spelled == metadata.jwks_uri() {
                return Ok((url.clone(), client.clone()));
            }
        }
        // Checked when the metadata was parsed; parsed again as a URL here.
        let url = remote::parse_url(metadata.jwks_uri())?;
        let client = remote::client(options, &url)?;
        state.jwks = Some((metadata.jwks_uri().to_owned(), url.clone(), client.clone()));
        Ok((url, client))
    }
}
