//! One issuer a [`MultiIssuerVerifier`](super::MultiIssuerVerifier) accepts:
//! where its keys are, and what its tokens must satisfy.

use std::sync::Arc;
use std::time::Duration;

use jwt_core::{Algorithm, Clock, Validation};

use crate::error::{Error, Result};

/// An issuer whose tokens a [`MultiIssuerVerifier`](super::MultiIssuerVerifier)
/// accepts, with the settings its tokens are checked against.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | keys | — | [`discover`](Self::discover): from the issuer's metadata; [`with_jwks_url`](Self::with_jwks_url): a JWKS URL |
/// | `audience` | none | the token's `aud` must name one of them; without any, a token that has an `aud` is refused (RFC 7519 §4.1.3), and OpenID Connect ID tokens always have one (the client id) |
/// | `algorithms` | the issuer's | each key verifies with its JWK's `alg`, if the metadata's `*_signing_alg_values_supported` lists declare it (or declare nothing); a key without `alg` verifies with the declared algorithms of its type, or nothing when none are declared. Given, the list replaces all that. Never `none` or HMAC. |
/// | `typ` | not checked | the header `typ` must be this (e.g. `at+jwt` for RFC 9068 access tokens) |
/// | `leeway` | 0 s | tolerance for clock skew on `exp`, `nbf`, `iat` |
/// | `require` | `exp` only | claims that must be present |
///
/// `iss` is always checked, exactly: a token is verified with this
/// issuer's keys only if it names this issuer, character for character.
///
/// ```
/// use std::time::Duration;
/// use jwt_core::Algorithm;
/// use jwt_keys::Issuer;
///
/// let entra = Issuer::discover("https://login.microsoftonline.com/TENANT_ID/v2.0")
///     .audience("api://my-api")
///     .leeway(Duration::from_secs(30));
/// let own = Issuer::with_jwks_url("https://auth.example.com", "https://auth.example.com/.well-known/jwks.json")
///     .audience("my-api")
///     .typ("at+jwt")
///     .algorithms([Algorithm::ES256]);
/// assert_eq!(entra.name(), "https://login.microsoftonline.com/TENANT_ID/v2.0");
/// # let _ = own;
/// ```
#[derive(Debug, Clone)]
pub struct Issuer {
    pub(super) issuer: String,
    pub(super) keys: IssuerKeys,
    pub(super) audiences: Vec<String>,
    pub(super) algorithms: Option<Vec<Algorithm>>,
    pub(super) typ: Option<String>,
    pub(super) leeway: Duration,
    pub(super) required: Vec<String>,
    pub(super) aliases: Vec<String>,
}

/// Where an issuer's keys are.
#[derive(Debug, Clone)]
pub(super) enum IssuerKeys {
    /// From its metadata (OpenID Connect Discovery, RFC 8414).
    Discovery,
    /// At this JWKS URL.
    Jwks(String),
}

impl Issuer {
    /// An issuer whose keys are found from its metadata: `issuer` is its
    /// identifier exactly as its tokens' `iss` spell it (scheme, host, path
    /// and trailing slash included), `https://` (or `http://` to a loopback
    /// address). See [`discovery`](crate::discovery).
    pub fn discover(issuer: impl Into<String>) -> Issuer {
        Issuer::new(issuer.into(), IssuerKeys::Discovery)
    }

    /// An issuer that publishes no metadata: its tokens' `iss` (any string)
    /// and the URL of its JWKS.
    pub fn with_jwks_url(issuer: impl Into<String>, jwks_url: impl Into<String>) -> Issuer {
        Issuer::new(issuer.into(), IssuerKeys::Jwks(jwks_url.into()))
    }

    fn new(issuer: String, keys: IssuerKeys) -> Issuer {
        Issuer {
            issuer,
            keys,
            audiences: Vec::new(),
            algorithms: None,
            typ: None,
            leeway: Duration::ZERO,
            required: Vec::new(),
            aliases: Vec::new(),
        }
    }

    /// Accepts tokens for this audience (may be given several times: the
    /// token's `aud` must name at least one).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The algorithms this issuer's tokens may use, instead of the issuer's
    /// own (see the table above). A key bound to an algorithm (a JWK's
    /// `alg`) still verifies with that one only.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        let mut list: Vec<Algorithm> = algorithms.into_iter().collect();
        list.sort();
        list.dedup();
        self.algorithms = Some(list);
        self
    }

    /// Requires the header `typ` to be `typ` (case-insensitive,
    /// `application/` optional), e.g. `at+jwt`.
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Tolerance for clock skew on `exp`, `nbf` and `iat` (whole seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Requires `claim` to be present (`exp` always is).
    pub fn require(mut self, claim: impl Into<String>) -> Self {
        let claim = claim.into();
        if !self.required.contains(&claim) {
            self.required.push(claim);
        }
        self
    }

    /// Also accepts tokens whose `iss` is `alias`, with this issuer's keys
    /// and settings: for a provider whose tokens spell their issuer two
    /// ways. Google's ID tokens have said both `https://accounts.google.com`
    /// and `accounts.google.com`; configure the URL (from which the keys are
    /// discovered) and accept the other spelling as an alias, never as an
    /// issuer of its own. An alias is matched exactly, like the issuer.
    ///
    /// ```
    /// use jwt_keys::Issuer;
    /// let google = Issuer::discover("https://accounts.google.com")
    ///     .also_accept_iss("accounts.google.com")
    ///     .audience("1234-abc.apps.googleusercontent.com");
    /// assert_eq!(google.aliases(), ["accounts.google.com"]);
    /// ```
    pub fn also_accept_iss(mut self, alias: impl Into<String>) -> Self {
        let alias = alias.into();
        if !self.aliases.contains(&alias) {
            self.aliases.push(alias);
        }
        self
    }

    /// The other spellings of `iss` accepted ([`also_accept_iss`](Self::also_accept_iss)).
    pub fn aliases(&self) -> &[String] {
        &self.aliases
    }

    /// The issuer, as tokens name it.
    pub fn name(&self) -> &str {
        &self.issuer
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The settings that need no I/O to check.
    pub(super) fn check(&self) -> Result<()> {
        let bad = |setting: &'static str, reason: String| {
            Err(Error::invalid_config(
                setting,
                format!("issuer {:?}: {reason}", self.issuer),
            ))
        };
        if self.issuer.is_empty() {
            return Err(Error::invalid_config(
                "issuer",
                "an issuer is named by a non-empty string: its tokens' `iss`",
            ));
        }
        if let Some(algorithms) = &self.algorithms {
            if algorithms.is_empty() {
                return bad(
                    "algorithms",
                    "the algorithm list is empty; name the algorithms the issuer signs with \
                     (e.g. RS256), or leave them out to use the issuer's own"
                        .into(),
                );
            }
            let symmetric: Vec<&str> = algorithms
                .iter()
                .filter(|a| a.is_symmetric())
                .map(|a| a.as_str())
                .collect();
            if !symmetric.is_empty() {
                return bad(
                    "algorithms",
                    format!(
                        "{} cannot verify an issuer's tokens: an issuer publishes public keys, and \
                         an HMAC token would need a secret shared with every verifier; name the \
                         public-key algorithm it signs with (RS256, ES256, …)",
                        symmetric.join(", ")
                    ),
                );
            }
        }
        if self
            .aliases
            .iter()
            .any(|a| a.is_empty() || *a == self.issuer)
        {
            return bad(
                "issuer",
                "an alias must be another non-empty spelling of the issuer's `iss`".into(),
            );
        }
        if self.audiences.iter().any(String::is_empty) {
            return bad(
                "audience",
                "an empty audience can never match; give the audience your API accepts".into(),
            );
        }
        if self.typ.as_deref() == Some("") {
            return bad(
                "typ",
                "an empty `typ` can never match; give the type (e.g. at+jwt) or leave it out"
                    .into(),
            );
        }
        if self.leeway.subsec_nanos() != 0 {
            return bad(
                "leeway",
                format!("{:?} is not a whole number of seconds", self.leeway),
            );
        }
        Ok(())
    }

    /// This issuer's validation with `algorithms`, on `clock`.
    pub(super) fn validation(
        &self,
        algorithms: Vec<Algorithm>,
        clock: &Arc<dyn Clock>,
        max_token_size: usize,
    ) -> Validation {
        let mut validation = Validation::new(algorithms).issuer(self.issuer.clone());
        for alias in &self.aliases {
            validation = validation.issuer(alias.clone());
        }
        let mut validation = validation
            .leeway(self.leeway)
            .max_size(max_token_size)
            .clock(clock.clone());
        for audience in &self.audiences {
            validation = validation.audience(audience.clone());
        }
        if let Some(typ) = &self.typ {
            validation = validation.typ(typ.clone());
        }
        for claim in &self.required {
            validation = validation.require(claim.clone());
        }
        validation
    }
}
