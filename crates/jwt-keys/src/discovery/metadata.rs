//! An issuer's metadata: where it is published (OpenID Connect Discovery
//! 1.0 §4, RFC 8414 §3), how it is fetched, and what of it is used.
//!
//! The document is fetched like a JWKS ([`remote::get`]: time-bounded,
//! size-bounded, no redirect followed, JSON only) and parsed with the strict
//! parser tokens get (duplicate member names refused at any depth, however
//! spelled). Its `issuer` must equal the configured issuer character for
//! character (OpenID Connect Discovery §4.3): otherwise one issuer's
//! metadata could stand in for another's (the mix-up attack).

use std::fmt;

use jwt_core::Algorithm;
use reqwest::Url;
use serde_json::{Map, Value};

use crate::error::{Error, FetchError, Result};
use crate::remote;
use crate::verify::CacheOptions;

/// The well-known suffix of OpenID Connect Discovery 1.0 §4.
const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// The well-known prefix of RFC 8414 §3.
const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";

/// The metadata members that list the algorithms the issuer itself signs
/// with, using the keys at its `jwks_uri`: ID tokens (OpenID Connect
/// Discovery §3), UserInfo responses (idem), introspection responses (RFC
/// 9701) and authorization responses (JARM). Their union is what the issuer
/// declares it signs with.
///
/// `token_endpoint_auth_signing_alg_values_supported` and the other
/// `*_auth_*`/`request_object_*` lists are left out on purpose: they list
/// what the issuer *accepts from clients* (assertions signed with a client's
/// own key or its `client_secret`, hence often `HS256`), not what it signs.
pub const SIGNING_ALGORITHM_MEMBERS: [&str; 4] = [
    "id_token_signing_alg_values_supported",
    "userinfo_signing_alg_values_supported",
    "introspection_signing_alg_values_supported",
    "authorization_signing_alg_values_supported",
];

/// Which specification a metadata document was found by.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKind {
    /// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
    OpenIdConfiguration,
    /// `/.well-known/oauth-authorization-server{path}` (RFC 8414).
    OAuthAuthorizationServer,
}

impl MetadataKind {
    /// A stable name: `"openid-configuration"` or `"oauth-authorization-server"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataKind::OpenIdConfiguration => "openid-configuration",
            MetadataKind::OAuthAuthorizationServer => "oauth-authorization-server",
        }
    }
}

impl fmt::Display for MetadataKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An issuer's metadata, checked: its `issuer` is the configured issuer,
/// its `jwks_uri` passes the rules of a JWKS URL (`https`, or `http` to a
/// loopback address).
#[derive(Debug, Clone)]
pub struct IssuerMetadata {
    issuer: String,
    jwks_uri: String,
    url: String,
    kind: MetadataKind,
    signing_algorithms: Option<Vec<Algorithm>>,
    ignored_algorithms: Vec<String>,
    document: Map<String, Value>,
}

impl IssuerMetadata {
    /// The issuer, as the metadata names it (equal to the configured one).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Where the issuer publishes its keys.
    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// The URL the document was fetched from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which well-known location served it.
    pub fn kind(&self) -> MetadataKind {
        self.kind
    }

    /// The public-key algorithms the issuer declares it signs with (the
    /// union of [`SIGNING_ALGORITHM_MEMBERS`]), in jwtkit's order; `None`
    /// when the document has none of those members. When present, a
    /// verifier left to its default algorithms accepts no other.
    pub fn signing_algorithms(&self) -> Option<&[Algorithm]> {
        self.signing_algorithms.as_deref()
    }

    /// Names in those lists that never verify here: `none`, HMAC
    /// algorithms (an issuer's published keys are public; an HMAC token
    /// would need a shared secret) and names jwtkit does not know.
    pub fn ignored_algorithms(&self) -> &[String] {
        &self.ignored_algorithms
    }

    /// The whole document, as parsed (strictly).
    pub fn document(&self) -> &Map<String, Value> {
        &self.document
    }
}

/// Why an issuer's metadata could not be used. Carried as the source of an
/// [`Error::Backend`] (backend `"OpenID discovery"`); an `issuer` that is not
/// the configured one is [`Error::InvalidConfig`] instead, and a `jwks_uri`
/// the URL rules refuse is [`Error::InvalidJwksUrl`].
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The request failed: transport, a status other than "absent", or a
    /// body over the size limit.
    #[error("fetching the metadata of issuer {issuer} from {url} failed: {source}")]
    Fetch {
        /// The configured issuer.
        issuer: String,
        /// The metadata URL.
        url: String,
        /// Why.
        #[source]
        source: FetchError,
    },
    /// The metadata URL answered with a redirect, which is never followed.
    #[error(
        "the metadata URL {url} answered HTTP {status} redirecting to {location}; redirects \
         are not followed: an issuer's metadata is served at the well-known URL under the \
         issuer itself, so check that the issuer is spelled exactly as in its tokens' `iss` \
         (scheme, host, path, trailing slash)"
    )]
    Redirect {
        /// The metadata URL.
        url: String,
        /// The 3xx status.
        status: u16,
        /// The `Location` as received (printable ASCII, cut at 256 bytes), or `(none)`.
        location: String,
    },
    /// Neither well-known location has a document.
    #[error(
        "issuer {issuer} publishes no metadata: {openid_url} answered HTTP {openid_status} and \
         {oauth_url} answered HTTP {oauth_status}; check the issuer URL (it is the tokens' \
         `iss`, e.g. https://YOUR_TENANT.auth0.com/ or \
         https://login.microsoftonline.com/TENANT_ID/v2.0), or give the JWKS URL instead"
    )]
    NotFound {
        /// The configured issuer.
        issuer: String,
        /// The OpenID Connect Discovery URL.
        openid_url: String,
        /// Its status.
        openid_status: u16,
        /// The RFC 8414 URL.
        oauth_url: String,
        /// Its status.
        oauth_status: u16,
    },
    /// The document is not usable metadata: not JSON, not strict JSON, not
    /// an object, or without a string `issuer` or `jwks_uri`.
    #[error("the document at {url} is not usable issuer metadata: {reason}; received {received}")]
    Invalid {
        /// The metadata URL.
        url: String,
        /// What is wrong with it.
        reason: String,
        /// The `Content-Type` and the first bytes of the body, non-printable
        /// bytes escaped as `\xNN`.
        received: String,
    },
}

impl MetadataError {
    /// Whether trying again may succeed: transport failures, throttling and
    /// server errors, and a garbled document (a deploy in progress at the
    /// provider), as for a JWKS.
    pub fn is_retryable(&self) -> bool {
        match self {
            MetadataError::Fetch { source, .. } => match source {
                FetchError::Transport(_) => true,
                FetchError::Status { status } => *status == 429 || *status >= 500,
                _ => false,
            },
            MetadataError::Invalid { .. } => true,
            MetadataError::Redirect { .. } | MetadataError::NotFound { .. } => false,
        }
    }

    pub(crate) fn into_error(self) -> Error {
        let retryable = self.is_retryable();
        Error::Backend {
            backend: "OpenID discovery",
            source: Box::new(self),
            retryable,
        }
    }
}

/// Checks a configured issuer: an `https` URL (or `http` to a loopback
/// address), with no query, fragment or user information (OpenID Connect
/// Discovery §2). Returns it parsed.
pub(crate) fn check_issuer(issuer: &str) -> Result<Url> {
    let bad = |reason: String| {
        Error::invalid_config(
            "issuer",
            // A password in the URL never reaches an error message.
            format!(
                "{:?} cannot be an issuer URL: {reason}",
                crate::uri::redact_url(issuer)
            ),
        )
    };
    let url = remote::check_url(issuer, "the issuer", "an issuer's metadata").map_err(bad)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "an issuer URL has no query (`?…`) or fragment (`#…`); give the issuer exactly as \
             its tokens' `iss` names it"
                .into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "an issuer URL holds no user name or password; give the issuer exactly as its \
             tokens' `iss` names it"
                .into(),
        ));
    }
    Ok(url)
}

/// The two places an issuer's metadata may be, in the order they are tried:
/// OpenID Connect Discovery appends its suffix to the issuer
/// (`https://h/tenant/.well-known/openid-configuration`); RFC 8414 §3.1
/// inserts its prefix between the host and the issuer's path, without the
/// path's trailing `/` (`https://h/.well-known/oauth-authorization-server/tenant`).
pub(crate) fn well_known_urls(issuer: &Url) -> [(MetadataKind, Url); 2] {
    let path = issuer.path().trim_end_matches('/');
    let mut openid = issuer.clone();
    openid.set_path(&format!("{path}{OPENID_CONFIGURATION}"));
    let mut oauth = issuer.clone();
    oauth.set_path(&format!("{OAUTH_AUTHORIZATION_SERVER}{path}"));
    [
        (MetadataKind::OpenIdConfiguration, openid),
        (MetadataKind::OAuthAuthorizationServer, oauth),
    ]
}

/// Whether a status means "no document here" (so the other location is tried).
fn absent(status: u16) -> bool {
    status == 404 || status == 410
}

/// Fetches, parses and checks the metadata of `issuer` (parsed as
/// `issuer_url`): the OpenID Connect location first, the RFC 8414 one when
/// the first answers 404 or 410. Returns it with its TTL in seconds (from
/// `Cache-Control`, within the cache options' bounds).
pub(crate) async fn fetch(
    issuer: &str,
    issuer_url: &Url,
    client: &reqwest::Client,
    options: &CacheOptions,
) -> Result<(IssuerMetadata, i64)> {
    let [(openid_kind, openid_url), (oauth_kind, oauth_url)] = well_known_urls(issuer_url);
    let openid_status = match fetch_one(issuer, &openid_url, openid_kind, client, options).await {
        Err(Attempt::Absent(status)) => status,
        Err(Attempt::Failed(e)) => return Err(e),
        Ok(found) => return Ok(found),
    };
    tracing::debug!(%issuer, url = %openid_url, status = openid_status,
        "no OpenID configuration; trying RFC 8414 metadata");
    match fetch_one(issuer, &oauth_url, oauth_kind, client, options).await {
        Ok(found) => Ok(found),
        Err(Attempt::Failed(e)) => Err(e),
        Err(Attempt::Absent(oauth_status)) => Err(MetadataError::NotFound {
            issuer: issuer.to_owned(),
            openid_url: openid_url.to_string(),
            openid_status,
            oauth_url: oauth_url.to_string(),
            oauth_status,
        }
        .into_error()),
    }
}

enum Attempt {
    /// 404 or 410: try the next location.
    Absent(u16),
    Failed(Error),
}

async fn fetch_one(
    issuer: &str,
    url: &Url,
    kind: MetadataKind,
    client: &reqwest::Client,
    options: &CacheOptions,
) -> std::result::Result<(IssuerMetadata, i64), Attempt> {
    let document = match remote::get(client, url, options, "application/json").await {
        Ok(document) => document,
        Err(FetchError::Status { status }) if absent(status) => {
            return Err(Attempt::Absent(status))
        }
        Err(FetchError::Redirect { status, location }) => {
            return Err(Attempt::Failed(
                MetadataError::Redirect {
                    url: url.to_string(),
                    status,
                    location,
                }
                .into_error(),
            ))
        }
        Err(FetchError::NotJson { content_type }) => {
            return Err(Attempt::Failed(
                MetadataError::Invalid {
                    url: url.to_string(),
                    reason: format!(
                        "its Content-Type is {content_type}, not JSON (a web page at the \
                         well-known URL?)"
                    ),
                    received: format!(
                        "Content-Type {}",
                        remote::printable_header(content_type.as_bytes())
                    ),
                }
                .into_error(),
            ))
        }
        Err(source) => {
            return Err(Attempt::Failed(
                MetadataError::Fetch {
                    issuer: issuer.to_owned(),
                    url: url.to_string(),
                    source,
                }
                .into_error(),
            ))
        }
    };
    let metadata = parse(
        issuer,
        url,
        kind,
        document.content_type.as_deref(),
        &document.body,
    )
    .map_err(Attempt::Failed)?;
    let ttl = remote::ttl_from(document.cache_control.as_deref(), options);
    Ok((metadata, ttl))
}

/// Parses and checks one metadata document fetched from `url`.
pub(crate) fn parse(
    issuer: &str,
    url: &Url,
    kind: MetadataKind,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<IssuerMetadata> {
    let invalid = |reason: String| {
        MetadataError::Invalid {
            url: url.to_string(),
            reason,
            received: remote::describe_body(content_type, body),
        }
        .into_error()
    };
    if body.trim_ascii().is_empty() {
        return Err(invalid("the body is empty".into()));
    }
    // The workspace's strict JSON parser (the one tokens and JWKS get):
    // duplicate member names are refused at any depth, so no `issuer` or
    // `jwks_uri` can be read one way here and another way elsewhere.
    let document = jwt_core::parse_claims(body).map_err(|e| {
        let reason = match e {
            jwt_core::Error::Config { reason } => reason,
            other => other.to_string(),
        };
        invalid(reason.replacen("the claims set", "the document", 1))
    })?;
    let string = |name: &str| -> Result<String> {
        match document.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(invalid(format!("its `{name}` is empty"))),
            Some(other) => Err(invalid(format!(
                "its `{name}` is {}, not a string",
                remote::json_type(other)
            ))),
            None if document.contains_key("keys") => Err(invalid(format!(
                "it has no `{name}`: it is a JWK Set, not metadata; give the issuer URL (the \
                 tokens' `iss`), or use the JWKS URL as a JWKS"
            ))),
            None => Err(invalid(format!("it has no `{name}`"))),
        }
    };
    let published = string("issuer")?;
    if published != issuer {
        // Cut: the value comes from a remote document of up to a megabyte.
        let published = quoted(&published);
        return Err(Error::invalid_config(
            "issuer",
            format!(
                "the metadata at {url} names the issuer {published}, but the configured issuer \
                 is {issuer:?}; they must be equal character for character (OpenID Connect \
                 Discovery §4.3, which keeps one issuer's metadata from standing in for \
                 another's): configure the issuer exactly as the provider spells it in its \
                 tokens' `iss` (scheme, host, path, trailing slash)"
            ),
        ));
    }
    if !document.contains_key("jwks_uri") {
        return Err(invalid(
            "it has no `jwks_uri`: the issuer publishes no keys its tokens could be verified \
             with"
                .into(),
        ));
    }
    let jwks_uri = string("jwks_uri")?;
    let parsed = remote::check_url(&jwks_uri, "the JWKS", "a JWKS").map_err(|reason| {
        Error::InvalidJwksUrl {
            url: shown_url(&jwks_uri),
            reason: format!("{reason} (it is the `jwks_uri` of the metadata at {url})"),
        }
    })?;
    if url.scheme() == "https" && parsed.scheme() != "https" {
        // Loopback http is for an issuer that is itself on loopback (tests,
        // a sidecar): an https issuer's keys never come in clear text.
        return Err(Error::InvalidJwksUrl {
            url: shown_url(&jwks_uri),
            reason: format!(
                "the issuer is served over https but its `jwks_uri` is not (metadata at {url}); \
                 an https issuer's keys are fetched over https only: ask the provider to fix its \
                 metadata"
            ),
        });
    }
    let mut declared: Option<Vec<Algorithm>> = None;
    let mut ignored = Vec::new();
    for member in SIGNING_ALGORITHM_MEMBERS {
        let Some(list) = document.get(member) else {
            continue;
        };
        let Some(items) = list.as_array() else {
            return Err(invalid(format!(
                "its `{member}` is {}, not an array of algorithm names",
                remote::json_type(list)
            )));
        };
        let algorithms = declared.get_or_insert_with(Vec::new);
        for item in items {
            let Some(name) = item.as_str() else {
                return Err(invalid(format!(
                    "its `{member}` holds {}, not only algorithm names",
                    remote::json_type(item)
                )));
            };
            match name.parse::<Algorithm>() {
                Ok(alg) if !alg.is_symmetric() => {
                    if !algorithms.contains(&alg) {
                        algorithms.push(alg);
                    }
                }
                _ => {
                    if !ignored.iter().any(|i| i == name) {
                        ignored.push(name.to_owned());
                    }
                }
            }
        }
    }
    if let Some(algorithms) = &mut declared {
        algorithms.sort();
    }
    Ok(IssuerMetadata {
        issuer: published,
        jwks_uri,
        url: url.to_string(),
        kind,
        signing_algorithms: declared,
        ignored_algorithms: ignored,
        document,
    })
}

/// The most of a remote value quoted in an error or a log line.
const MAX_QUOTED: usize = 256;

/// A value from a remote document, for an error: debug-quoted (escaped),
/// and cut after [`MAX_QUOTED`] characters, saying how long it was.
pub(crate) fn quoted(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED) {
        None => format!("{value:?}"),
        Some((at, _)) => format!("{:?}… ({} bytes in all)", &value[..at], value.len()),
    }
}

/// A URL from a remote document, for an error: its user information
/// redacted, and cut like [`quoted`] (without the quotes' escaping of a
/// plain URL).
pub(crate) fn shown_url(url: &str) -> String {
    let redacted = crate::uri::redact_url(url);
    match redacted.char_indices().nth(MAX_QUOTED) {
        None => redacted.escape_debug().to_string(),
        Some((at, _)) => format!(
            "{}… ({} bytes in all)",
            redacted[..at].escape_debug(),
            redacted.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> [String; 2] {
        let [(_, a), (_, b)] = well_known_urls(&Url::parse(issuer).unwrap());
        [a.to_string(), b.to_string()]
    }

    /// OpenID Connect appends; RFC 8414 inserts, dropping the path's
    /// trailing slash.
    #[test]
    fn well_known_locations_follow_both_specifications() {
        assert_eq!(
            urls("https://h.example/tenant"),
            [
                "https://h.example/tenant/.well-known/openid-configuration",
                "https://h.example/.well-known/oauth-authorization-server/tenant",
            ]
        );
        assert_eq!(
            urls("https://h.example/tenant/v2.0/"),
            [
                "https://h.example/tenant/v2.0/.well-known/openid-configuration",
                "https://h.example/.well-known/oauth-authorization-server/tenant/v2.0",
            ]
        );
        for root in ["https://h.example", "https://h.example/"] {
            assert_eq!(
                urls(root),
                [
                    "https://h.example/.well-known/openid-configuration",
                    "https://h.example/.well-known/oauth-authorization-server",
                ]
            );
        }
        assert_eq!(
            urls("http://127.0.0.1:8200/v1/identity/oidc"),
            [
                "http://127.0.0.1:8200/v1/identity/oidc/.well-known/openid-configuration",
                "http://127.0.0.1:8200/.well-known/oauth-authorization-server/v1/identity/oidc",
            ]
        );
    }

    #[test]
    fn issuer_urls_follow_the_url_rules() {
        for bad in [
            "http://idp.example.com",
            "ftp://idp.example.com",
            "https://idp.example.com/?tenant=a",
            "https://idp.example.com/#x",
            "https://user:pw@idp.example.com/",
            "idp.example.com",
        ] {
            let err = check_issuer(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidConfig, "{bad}: {err}");
            let text = err.to_string();
            assert!(text.contains("cannot be an issuer URL"), "{text}");
            assert!(!text.contains("pw@"), "{text}");
        }
        check_issuer("https://idp.example.com/").unwrap();
        check_issuer("http://localhost:8080/realms/a").unwrap();
    }

    fn parsed(body: &str) -> Result<IssuerMetadata> {
        parse(
            "https://idp.example.com/",
            &Url::parse("https://idp.example.com/.well-known/openid-configuration").unwrap(),
            MetadataKind::OpenIdConfiguration,
            Some("application/json"),
            body.as_bytes(),
        )
    }

    fn reason(body: &str) -> String {
        match parsed(body) {
            Err(Error::Backend { source, .. }) => source.to_string(),
            other => panic!("{body}: expected a metadata error, got {other:?}"),
        }
    }

    #[test]
    fn the_algorithm_lists_the_issuer_signs_with_are_united_and_filtered() {
        let m = parsed(
            r#"{"issuer":"https://idp.example.com/","jwks_uri":"https://idp.example.com/jwks",
               "id_token_signing_alg_values_supported":["RS256","HS256","none"],
               "userinfo_signing_alg_values_supported":["ES256","RS256","ES256K"],
               "token_endpoint_auth_signing_alg_values_supported":["PS512","HS512"]}"#,
        )
        .unwrap();
        assert_eq!(
            m.signing_algorithms(),
            Some(&[Algorithm::RS256, Algorithm::ES256][..])
        );
        assert_eq!(m.ignored_algorithms(), ["HS256", "none", "ES256K"]);
        let none = parsed(
            r#"{"issuer":"https://idp.example.com/","jwks_uri":"https://idp.example.com/jwks"}"#,
        )
        .unwrap();
        assert_eq!(none.signing_algorithms(), None);
    }

    #[test]
    fn unusable_documents_say_what_is_wrong() {
        assert!(reason("").contains("the body is empty"));
        assert!(reason("<html>").contains("the document is not valid JSON"));
        assert!(reason("[1]").contains("the document must be a JSON object"));
        let dup = reason(
            r#"{"issuer":"https://idp.example.com/","iss\u0075er":"https://evil.example/"}"#,
        );
        assert!(dup.contains("duplicate member name \"issuer\""), "{dup}");
        assert!(reason(r#"{"jwks_uri":"https://x/"}"#).contains("it has no `issuer`"));
        assert!(reason(r#"{"issuer":1}"#).contains("its `issuer` is a number, not a string"));
        let no_keys = reason(r#"{"issuer":"https://idp.example.com/"}"#);
        assert!(
            no_keys.contains("it has no `jwks_uri`: the issuer publishes no keys"),
            "{no_keys}"
        );
        assert!(reason(r#"{"keys":[]}"#).contains("it is a JWK Set, not metadata"));
        let list = reason(
            r#"{"issuer":"https://idp.example.com/","jwks_uri":"https://idp.example.com/j",
               "id_token_signing_alg_values_supported":"RS256"}"#,
        );
        assert!(list.contains("not an array of algorithm names"), "{list}");
    }

    #[test]
    fn a_metadata_issuer_other_than_the_configured_one_is_a_configuration_error() {
        let err = parsed(
            r#"{"issuer":"https://idp.example.com","jwks_uri":"https://idp.example.com/j"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidConfig);
        let text = err.to_string();
        assert!(
            text.contains(r#"names the issuer "https://idp.example.com""#)
                && text.contains(r#"the configured issuer is "https://idp.example.com/""#),
            "{text}"
        );
    }

    #[test]
    fn an_https_issuer_never_names_a_jwks_uri_in_clear_text() {
        let err = parsed(
            r#"{"issuer":"https://idp.example.com/","jwks_uri":"http://127.0.0.1:8080/jwks"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidUri);
        assert!(
            err.to_string()
                .contains("the issuer is served over https but its `jwks_uri` is not"),
            "{err}"
        );
    }

    #[test]
    fn a_jwks_uri_in_clear_text_to_another_host_is_refused() {
        let err = parsed(
            r#"{"issuer":"https://idp.example.com/","jwks_uri":"http://idp.example.com/j"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidUri);
        let text = err.to_string();
        assert!(text.contains("only to a loopback address"), "{text}");
        assert!(text.contains("the `jwks_uri` of the metadata at"), "{text}");
    }
}
