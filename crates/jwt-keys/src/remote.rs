//! Fetching a JWKS over HTTP(S): size-bounded, content-checked, with the
//! cache lifetime taken from `Cache-Control`.

use std::time::Duration;

use jwt_core::{Jwks, KeySet};
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::Url;

use crate::error::{Error, FetchError, Result};
use crate::verify::CacheOptions;

/// Parses and checks a JWKS URL: `https`, or `http` to a loopback address
/// only (a JWKS fetched in clear text could be replaced on the way).
pub(crate) fn parse_url(url: &str) -> Result<Url> {
    let parsed = Url::parse(url).map_err(|e| Error::InvalidUri {
        uri: url.to_owned(),
        reason: format!("not a URL: {e}"),
    })?;
    let loopback = match parsed.host_str() {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(Error::InvalidUri {
            uri: url.to_owned(),
            reason: "a JWKS must be fetched over https (plain http is accepted for loopback addresses only): \
                     anyone on the path could substitute their own keys"
                .into(),
        }),
        other => Err(Error::InvalidUri {
            uri: url.to_owned(),
            reason: format!("scheme `{other}` is not supported; use https://"),
        }),
    }
}

pub(crate) fn client(options: &CacheOptions) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(options.fetch_timeout())
        .connect_timeout(options.fetch_timeout())
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("jwtkit-jwt-keys/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Backend {
            backend: "http",
            source: Box::new(e),
            retryable: false,
        })
}

/// Fetches and parses the JWKS; returns the usable keys and the TTL in seconds.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    url: &Url,
    options: &CacheOptions,
) -> Result<(KeySet, i64)> {
    let fail = |source: FetchError| Error::Fetch {
        url: url.to_string(),
        source,
    };
    let mut resp = client
        .get(url.clone())
        .header(ACCEPT, "application/jwk-set+json, application/json")
        .send()
        .await
        .map_err(|e| fail(FetchError::Transport(e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(FetchError::Status {
            status: status.as_u16(),
        }));
    }
    let headers = resp.headers();
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|ct| ct.to_str().unwrap_or("(not text)").to_owned());
    if let Some(ct) = &content_type {
        check_content_type(ct).map_err(fail)?;
    }
    let limit = options.max_body_bytes();
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(fail(FetchError::TooLarge { limit }));
    }
    let cache_control = headers
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| fail(FetchError::Transport(e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(fail(FetchError::TooLarge { limit }));
        }
        body.extend_from_slice(&chunk);
    }
    let (set, ttl) = parse_jwks_response(
        content_type.as_deref(),
        cache_control.as_deref(),
        &body,
        options,
    )
    .map_err(fail)?;
    for (kid, reason) in set.skipped() {
        tracing::debug!(%url, kid = kid.as_deref().unwrap_or("-"), %reason, "JWKS entry skipped");
    }
    Ok((set, ttl))
}

fn check_content_type(content_type: &str) -> std::result::Result<(), FetchError> {
    let ct = content_type.to_ascii_lowercase();
    if ct.contains("json") {
        Ok(())
    } else {
        Err(FetchError::NotJson { content_type: ct })
    }
}

/// Parses an identity provider's JWKS response — its `Content-Type` and
/// `Cache-Control` headers (when present) and its body — into the usable
/// keys and the cache TTL in seconds, exactly as the remote verifier does.
///
/// Public for callers with their own HTTP client, and for fuzzing: no input
/// makes it panic.
///
/// ```
/// use jwt_keys::{parse_jwks_response, CacheOptions};
/// let body = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#;
/// let (keys, ttl) =
///     parse_jwks_response(Some("application/json"), Some("max-age=300"), body, &CacheOptions::default())?;
/// assert!(keys.get("k1").is_some());
/// assert_eq!(ttl, 300);
/// # Ok::<(), jwt_keys::FetchError>(())
/// ```
pub fn parse_jwks_response(
    content_type: Option<&str>,
    cache_control: Option<&str>,
    body: &[u8],
    options: &CacheOptions,
) -> std::result::Result<(KeySet, i64), FetchError> {
    if let Some(ct) = content_type {
        check_content_type(ct)?;
    }
    let limit = options.max_body_bytes();
    if body.len() > limit {
        return Err(FetchError::TooLarge { limit });
    }
    let jwks = Jwks::from_json(body).map_err(FetchError::InvalidJwks)?;
    let set = KeySet::from_jwks(&jwks);
    if set.is_empty() {
        return Err(FetchError::NoUsableKeys {
            skipped: set.skipped().len(),
        });
    }
    Ok((set, ttl_from(cache_control, options)))
}

/// The cache lifetime: `max-age` (0 for `no-store`/`no-cache`) clamped to
/// the configured bounds, or the default TTL.
pub(crate) fn ttl_from(cache_control: Option<&str>, options: &CacheOptions) -> i64 {
    let mut found: Option<u64> = None;
    for directive in cache_control.unwrap_or("").split(',') {
        let d = directive.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            found = Some(0);
        } else if let Some(v) = d.strip_prefix("max-age=") {
            if let Ok(n) = v.trim_matches('"').parse::<u64>() {
                found = Some(found.map_or(n, |f| f.min(n)));
            }
        }
    }
    let ttl = match found {
        Some(n) => Duration::from_secs(n).clamp(options.min_ttl(), options.max_ttl()),
        None => options.default_ttl(),
    };
    crate::policy::secs(ttl)
}
