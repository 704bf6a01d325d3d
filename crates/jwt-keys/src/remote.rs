//! Fetching a JWKS over HTTP(S): size-bounded, content-checked, never
//! redirected, with the cache lifetime taken from `Cache-Control`.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use jwt_core::{Jwk, Jwks, KeySet, VerifyingKey};
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::Url;

use crate::error::{Error, FetchError, Result};
use crate::verify::CacheOptions;

/// Parses and checks a JWKS URL: `https`, or `http` to a loopback address
/// only (a JWKS fetched in clear text could be replaced on the way).
pub(crate) fn parse_url(url: &str) -> Result<Url> {
    check_url(url, "the JWKS", "a JWKS").map_err(|reason| Error::InvalidJwksUrl {
        // A password in the URL never reaches an error message.
        url: crate::uri::redact_url(url),
        reason,
    })
}

/// Whether a URL's host is this machine: `localhost`, or a loopback address
/// (127.0.0.0/8, `[::1]`), where plain http never crosses a network.
pub(crate) fn is_loopback_host(host: Option<&str>) -> bool {
    match host {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The rule for every URL keys or key metadata are fetched from: `https`,
/// or `http` to a loopback address only. `the`/`a` name the document in
/// the reason of a refusal ("the JWKS", "a JWKS").
pub(crate) fn check_url(url: &str, the: &str, a: &str) -> std::result::Result<Url, String> {
    let parsed = Url::parse(url)
        .map_err(|e| format!("not a URL: {e}; give the full https:// URL of {the}"))?;
    let loopback = is_loopback_host(parsed.host_str());
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(format!(
            "{a} must be fetched over https: plain http is accepted only to a loopback \
             address (127.0.0.1, [::1], localhost), since anyone on the path could \
             substitute their own keys; use the provider's https:// URL"
        )),
        other => Err(format!("scheme `{other}` is not supported; use https://")),
    }
}

/// The HTTP client for one URL (already checked by [`check_url`]): a JWKS,
/// or an issuer's metadata.
pub(crate) fn client(options: &CacheOptions, url: &Url) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if url.scheme() == "http" {
        // Plain http is allowed to loopback only, because nothing leaves the
        // machine. A proxy from HTTP_PROXY/ALL_PROXY would carry the request
        // (and the keys it returns) in clear text over the network, or
        // answer it itself. https may go through a proxy: TLS to the origin
        // is verified end to end through CONNECT.
        builder = builder.no_proxy();
    }
    for pem in &options.root_certificates {
        // Checked when added (`CacheOptions::with_root_certificates_pem`).
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            Error::invalid_config("root_certificates", format!("not a PEM bundle: {e}"))
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .timeout(options.fetch_timeout())
        .connect_timeout(options.fetch_timeout())
        // No redirects (like panva/jose's `redirect: "manual"`): a redirect
        // could lead to a URL that `parse_url` refuses (https → http), and
        // the configured URL is the one the operator vetted.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("jwtkit-jwt-keys/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Backend {
            backend: "http",
            source: Box::new(e),
            retryable: false,
        })
}

/// Longest `Location` quoted in an error: enough for any real JWKS URL.
const MAX_QUOTED_LOCATION: usize = 256;

/// A header value as printable ASCII: it came from a remote server and
/// ends up in logs and on terminals.
pub(crate) fn printable_header(value: &[u8]) -> String {
    let mut out = String::new();
    for &b in value.iter().take(MAX_QUOTED_LOCATION) {
        if (0x20..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if value.len() > MAX_QUOTED_LOCATION {
        out.push('…');
    }
    out
}

/// A document as fetched, before it is parsed: what every remote document
/// (a JWKS, an issuer's metadata) passed on the way in.
pub(crate) struct Document {
    /// The `Content-Type`, when the response had one (already checked to be JSON).
    pub(crate) content_type: Option<String>,
    /// The `Cache-Control`, when the response had one.
    pub(crate) cache_control: Option<String>,
    /// The body, at most `max_body_bytes` long.
    pub(crate) body: Vec<u8>,
}

/// GETs `url` with the rules of every remote document: the client's timeout
/// (connect to last byte), no redirect followed (a 3xx is an error naming
/// its `Location`), a success status, a JSON `Content-Type` when there is
/// one, and a body of at most `max_body_bytes` (refused from the declared
/// length, and again while reading).
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &Url,
    options: &CacheOptions,
    accept: &'static str,
) -> std::result::Result<Document, FetchError> {
    let mut resp = client
        .get(url.clone())
        .header(ACCEPT, accept)
        .send()
        .await
        .map_err(FetchError::Transport)?;
    let status = resp.status();
    if status.is_redirection() {
        let location = resp
            .headers()
            .get(LOCATION)
            .map_or_else(|| "(none)".to_owned(), |l| printable_header(l.as_bytes()));
        return Err(FetchError::Redirect {
            status: status.as_u16(),
            location,
        });
    }
    if !status.is_success() {
        return Err(FetchError::Status {
            status: status.as_u16(),
        });
    }
    let headers = resp.headers();
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|ct| ct.to_str().unwrap_or("(not text)").to_owned());
    if let Some(ct) = &content_type {
        check_content_type(ct)?;
    }
    let limit = options.max_body_bytes();
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(FetchError::TooLarge { limit });
    }
    let cache_control = headers
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(FetchError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Document {
        content_type,
        cache_control,
        body,
    })
}

/// Fetches and parses the JWKS; returns the usable keys and the TTL in seconds.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    url: &Url,
    options: &CacheOptions,
) -> Result<(JwksKeys, i64)> {
    let fail = |source: FetchError| Error::Fetch {
        url: crate::uri::redact_url(url.as_str()),
        source,
    };
    let document = get(
        client,
        url,
        options,
        "application/jwk-set+json, application/json",
    )
    .await
    .map_err(fail)?;
    let (keys, ttl) = parse_jwks_document(
        document.content_type.as_deref(),
        document.cache_control.as_deref(),
        &document.body,
        options,
    )
    .map_err(fail)?;
    // Debug formatting: kids and reasons come from the remote document and
    // may hold control characters.
    for (kid, reason) in keys.primary.skipped() {
        tracing::debug!(%url, ?kid, ?reason, "JWKS entry skipped");
    }
    keys.warn_duplicates(url.as_str());
    Ok((keys, ttl))
}

/// Most keys tried for one `kid` (jose tries every match; a bound keeps a
/// hostile JWKS from turning one token into many signature checks).
pub const MAX_KEYS_PER_KID: usize = 4;

/// The usable keys of a JWKS, where one `kid` may name several keys.
///
/// A `kid` should name one key, but some providers publish two under the
/// same `kid` (a rotation done in place). Like panva/jose, the verifier then
/// tries each of them in document order, at most [`MAX_KEYS_PER_KID`].
#[derive(Debug, Clone, Default)]
pub(crate) struct JwksKeys {
    /// The first key of every `kid`, plus the unusable entries (in
    /// [`KeySet::skipped`]): exactly what [`KeySet::from_jwks`] keeps of a
    /// JWKS whose kids are unique.
    pub(crate) primary: KeySet,
    /// `alternates[i]` holds the `(i + 2)`-th key of every `kid` that has
    /// that many; at most `MAX_KEYS_PER_KID - 1` sets.
    pub(crate) alternates: Vec<KeySet>,
    /// The kids naming more than one key, with how many keys each names.
    pub(crate) duplicated: Vec<(String, usize)>,
}

impl JwksKeys {
    /// Splits `jwks` by occurrence of each `kid` (a key without `kid` is
    /// named by its RFC 7638 thumbprint, as in [`KeySet`]).
    pub(crate) fn from_jwks(jwks: &Jwks) -> JwksKeys {
        let mut layers: Vec<Vec<Jwk>> = vec![Vec::new()];
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for jwk in &jwks.keys {
            match VerifyingKey::from_jwk(jwk).and_then(|k| k.kid_or_thumbprint()) {
                // Unusable: `KeySet::from_jwks` records it in `skipped`.
                Err(_) => layers[0].push(jwk.clone()),
                Ok(kid) => {
                    let count = seen.entry(kid.clone()).or_insert(0);
                    let layer = *count;
                    *count += 1;
                    if layer == 1 {
                        order.push(kid);
                    }
                    if layer < MAX_KEYS_PER_KID {
                        if layers.len() == layer {
                            layers.push(Vec::new());
                        }
                        layers[layer].push(jwk.clone());
                    }
                }
            }
        }
        let mut sets = layers
            .into_iter()
            .map(|keys| KeySet::from_jwks(&Jwks { keys }));
        let primary = sets.next().unwrap_or_default();
        let duplicated = order
            .into_iter()
            .map(|kid| {
                let n = seen.get(&kid).copied().unwrap_or(0);
                (kid, n)
            })
            .collect();
        JwksKeys {
            primary,
            alternates: sets.collect(),
            duplicated,
        }
    }

    /// Logs one warning for the whole document when a `kid` names several keys.
    pub(crate) fn warn_duplicates(&self, source: &str) {
        if self.duplicated.is_empty() {
            return;
        }
        tracing::warn!(
            source = %source,
            kids = ?DuplicateKids(&self.duplicated),
            "the JWKS has several keys under one kid; each is tried in document order \
             (at most {MAX_KEYS_PER_KID} per kid, later ones are ignored); ask the provider \
             to give every key its own kid"
        );
    }
}

/// `kid` (n keys), … with the kids escaped (they came from the document).
struct DuplicateKids<'a>(&'a [(String, usize)]);

impl fmt::Debug for DuplicateKids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (kid, n)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{kid:?} ({n} keys)")?;
        }
        Ok(())
    }
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
/// makes it panic. When a `kid` names several keys, the set holds the first
/// of them (the remote [`Verifier`](crate::Verifier) tries up to four).
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
    parse_jwks_document(content_type, cache_control, body, options)
        .map(|(keys, ttl)| (keys.primary, ttl))
}

/// [`parse_jwks_response`] with every key of a duplicated `kid` kept.
pub(crate) fn parse_jwks_document(
    content_type: Option<&str>,
    cache_control: Option<&str>,
    body: &[u8],
    options: &CacheOptions,
) -> std::result::Result<(JwksKeys, i64), FetchError> {
    if let Some(ct) = content_type {
        check_content_type(ct)?;
    }
    let limit = options.max_body_bytes();
    if body.len() > limit {
        return Err(FetchError::TooLarge { limit });
    }
    check_jwk_set(content_type, body)?;
    let mut jwks = Jwks::from_json(body).map_err(FetchError::InvalidJwks)?;
    // A published key set holds public keys only. A symmetric (`oct`) key
    // in it is a secret anyone who can read the document knows: trusting it
    // would let them sign tokens (jose refuses them in a remote key set too).
    let before = jwks.keys.len();
    jwks.keys.retain(|jwk| !jwk.kty.eq_ignore_ascii_case("oct"));
    let symmetric = before - jwks.keys.len();
    if symmetric > 0 {
        tracing::warn!(
            symmetric,
            "a fetched JWKS holds symmetric (oct) keys; they are ignored: a published key set \
             must hold public keys only"
        );
    }
    let keys = JwksKeys::from_jwks(&jwks);
    if keys.primary.is_empty() {
        return Err(FetchError::NoUsableKeys {
            skipped: keys.primary.skipped().len() + symmetric,
        });
    }
    Ok((keys, ttl_from(cache_control, options)))
}

/// Longest part of a body quoted in an error.
const MAX_QUOTED_BODY: usize = 64;

/// Refuses a body that is not a JWK Set at all (not JSON, or JSON without a
/// `keys` array), saying what it is and what came (content type, first
/// bytes): the usual cause is a URL that serves something else, which the
/// JWK parser's own words ("malformed …") would not reveal.
fn check_jwk_set(content_type: Option<&str>, body: &[u8]) -> std::result::Result<(), FetchError> {
    let reason = match serde_json::from_slice::<serde_json::Value>(body) {
        Err(e) if body.trim_ascii().is_empty() => format!("the body is empty ({e})"),
        Err(e) => format!("the body is not JSON ({e})"),
        Ok(serde_json::Value::Object(members)) => match members.get("keys") {
            Some(keys) if keys.is_array() => return Ok(()),
            Some(_) => "its `keys` member is not an array".to_owned(),
            None if members.contains_key("jwks_uri") => {
                "it is an OpenID discovery document; use the URL in its `jwks_uri`".to_owned()
            }
            None if members.contains_key("kty") => {
                "it is a single JWK, not a set ({\"keys\": [...]})".to_owned()
            }
            None => "the JSON object has no `keys` array".to_owned(),
        },
        Ok(other) => format!("the body is JSON but not an object ({})", json_type(&other)),
    };
    Err(FetchError::NotJwkSet {
        reason,
        received: describe_body(content_type, body),
    })
}

pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `Content-Type: …, N bytes starting "…"`, printable ASCII only.
pub(crate) fn describe_body(content_type: Option<&str>, body: &[u8]) -> String {
    let ct = content_type.map_or_else(
        || "no Content-Type".to_owned(),
        |ct| format!("Content-Type {}", printable_header(ct.as_bytes())),
    );
    let mut start = String::new();
    for &b in body.iter().take(MAX_QUOTED_BODY) {
        match b {
            b'"' | b'\\' => {
                start.push('\\');
                start.push(char::from(b));
            }
            0x20..0x7f => start.push(char::from(b)),
            _ => start.push_str(&format!("\\x{b:02x}")),
        }
    }
    let more = if body.len() > MAX_QUOTED_BODY {
        "…"
    } else {
        ""
    };
    format!("{ct}, {} bytes starting \"{start}{more}\"", body.len())
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
    jwt_core::time::secs(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(content_type: Option<&str>, body: &[u8]) -> String {
        match parse_jwks_response(content_type, None, body, &CacheOptions::default()) {
            Err(e @ FetchError::NotJwkSet { .. }) => e.to_string(),
            other => panic!("{body:?}: expected NotJwkSet, got {other:?}"),
        }
    }

    /// A body that is not a JWK Set says so and what came, never with the
    /// token parser's words ("malformed token … three base64url parts").
    #[test]
    fn a_body_that_is_not_a_jwk_set_says_what_it_is() {
        let html = refused(Some("application/json"), b"<html>\x1b]0;x\x07</html>");
        assert!(
            html.starts_with("the response is not a JWK Set: the body is not JSON"),
            "{html}"
        );
        assert!(
            html.contains(r#"received Content-Type application/json, 19 bytes starting "<html>\x1b]0;x\x07</html>""#),
            "{html}"
        );
        assert!(
            !html.contains("base64url") && !html.contains('\u{1b}'),
            "{html}"
        );
        let discovery = refused(None, br#"{"issuer":"i","jwks_uri":"https://i/k"}"#);
        assert!(
            discovery.contains("OpenID discovery document"),
            "{discovery}"
        );
        assert!(
            discovery.contains("received no Content-Type"),
            "{discovery}"
        );
        let jwk = refused(None, br#"{"kty":"OKP"}"#);
        assert!(jwk.contains("a single JWK, not a set"), "{jwk}");
        let array = refused(None, b"[]");
        assert!(
            array.contains("JSON but not an object (an array)"),
            "{array}"
        );
        let keys = refused(None, br#"{"keys":{}}"#);
        assert!(keys.contains("`keys` member is not an array"), "{keys}");
        let long = refused(None, &[b'x'; 200]);
        assert!(long.contains("200 bytes starting \""), "{long}");
        assert!(long.contains(&format!("{}…\"", "x".repeat(64))), "{long}");
        // A set is still parsed by the strict parser after the check.
        let err = parse_jwks_response(None, None, br#"{"keys":[]}"#, &CacheOptions::default())
            .unwrap_err();
        assert!(matches!(err, FetchError::NoUsableKeys { .. }), "{err:?}");
    }

    /// Plain http to another host than a loopback address is refused as a
    /// JWKS URL (not a "key store URI"), saying what is accepted.
    #[test]
    fn a_plain_http_url_to_another_host_is_an_invalid_jwks_url() {
        let err = parse_url("http://idp.example.com/jwks").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidUri);
        let text = err.to_string();
        assert!(
            text.starts_with("invalid JWKS URL \"http://idp.example.com/jwks\""),
            "{text}"
        );
        assert!(text.contains("only to a loopback address"), "{text}");
        assert!(!text.contains("key store"), "{text}");
        for ok in [
            "https://idp.example.com/jwks",
            "http://127.0.0.1:1/j",
            "http://[::1]/j",
            "http://localhost/j",
        ] {
            parse_url(ok).unwrap();
        }
    }
}
