//! Managed keys for code that verifies with `jsonwebtoken` (feature
//! `jsonwebtoken`).
//!
//! `jsonwebtoken` verifies a token with a `DecodingKey` and a `Validation`
//! the caller supplies, and leaves fetching keys to the caller (its issues
//! #226 and #263). [`DecodingKeys`] supplies both from a
//! [`MultiIssuerVerifier`]'s caches: the key set of the issuer the token
//! names (found by discovery or at a JWKS URL), refreshed on its TTL and
//! on an unknown `kid` (at most once per cooldown, one fetch for all
//! callers), the last good set kept while the provider is down. A service
//! that already calls `jsonwebtoken::decode` keeps doing so:
//!
//! ```no_run
//! use jwt_keys::jsonwebtoken_bridge::DecodingKeys;
//! use jwt_keys::{Issuer, MultiIssuerVerifier};
//!
//! # async fn run(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let keys = DecodingKeys::new(
//!     MultiIssuerVerifier::builder()
//!         .issuer(Issuer::discover("https://YOUR_TENANT.eu.auth0.com/").audience("my-api"))
//!         .build()?,
//! );
//! let key = keys.for_token(token).await?; // the issuer's key for this token's kid
//! let data = jsonwebtoken::decode::<serde_json::Value>(token, key.decoding_key(), &key.validation())?;
//! # Ok(()) }
//! ```
//!
//! Keys stay bound to their issuer: the key comes from the key set of the
//! issuer the token's `iss` names (a `kid` of another issuer is
//! `unknown_key`), and [`IssuerKey::validation`] makes `jsonwebtoken` check
//! `iss` again after the signature, with the issuer's audiences and leeway.
//! The algorithm is the token's, and only if that key may verify with it
//! (its JWK's `alg`, or the issuer's declared algorithms; never `none` or
//! HMAC). `jsonwebtoken` has no ES512: such keys are refused here.
//!
//! The verification itself is `jsonwebtoken`'s, with its own rules; the
//! [`MultiIssuerVerifier`] verifies the same tokens with jwtkit's (stricter
//! parsing, keys parsed once), sharing these caches.

use std::fmt;

use jsonwebtoken::{DecodingKey, Validation};
use jwt_core::{Algorithm, VerifyingKey};

use crate::error::{Error, Result};
use crate::issuers::Entry;
use crate::verify::SelectedKey;
use crate::MultiIssuerVerifier;

/// Hands out `jsonwebtoken` decoding keys from a [`MultiIssuerVerifier`]'s
/// caches; see the [module docs](self). Cheap to clone (clones share the
/// caches).
#[derive(Clone, Debug)]
pub struct DecodingKeys {
    verifier: MultiIssuerVerifier,
}

/// The key of one issuer for one token, as `jsonwebtoken` takes it.
pub struct IssuerKey {
    key: DecodingKey,
    algorithm: jsonwebtoken::Algorithm,
    issuer: String,
    /// Other accepted spellings of `iss` ([`crate::Issuer::also_accept_iss`]).
    aliases: Vec<String>,
    kid: Option<String>,
    audiences: Vec<String>,
    leeway: u64,
    /// The issuer's required claims besides `exp` and `iss`.
    required: Vec<String>,
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKey")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The claims `jsonwebtoken::Validation::set_required_spec_claims` knows.
const JSONWEBTOKEN_SPEC_CLAIMS: [&str; 5] = ["exp", "nbf", "aud", "iss", "sub"];

impl IssuerKey {
    /// The issuer's required claims (`Issuer::require`) that
    /// `jsonwebtoken` cannot require (anything but `exp`, `nbf`, `aud`,
    /// `iss` and `sub`, e.g. `jti`): [`validation`](Self::validation)
    /// passes the others on; check these in the decoded claims yourself.
    pub fn claims_to_check(&self) -> Vec<&str> {
        self.required
            .iter()
            .map(String::as_str)
            .filter(|c| !JSONWEBTOKEN_SPEC_CLAIMS.contains(c))
            .collect()
    }

    /// The key, for `jsonwebtoken::decode`.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// The algorithm to allow: the token's, which this key may verify with.
    pub fn algorithm(&self) -> jsonwebtoken::Algorithm {
        self.algorithm
    }

    /// The issuer whose key this is.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key's `kid` (the token's).
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// A `jsonwebtoken::Validation` for this key: only [`algorithm`](Self::algorithm),
    /// `iss` required and equal to the issuer (or one of its aliases), `exp` required, the issuer's
    /// audiences (without any, a token with an `aud` is refused) and leeway.
    /// Adjust it as for any `jsonwebtoken` validation.
    pub fn validation(&self) -> Validation {
        let mut validation = Validation::new(self.algorithm);
        // jsonwebtoken leaves `nbf` unchecked by default; jwtkit checks it
        // whenever it is present.
        validation.validate_nbf = true;
        let names: Vec<&str> = std::iter::once(self.issuer.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .collect();
        validation.set_issuer(&names);
        let mut spec = vec!["exp", "iss"];
        spec.extend(
            self.required
                .iter()
                .map(String::as_str)
                .filter(|c| JSONWEBTOKEN_SPEC_CLAIMS.contains(c)),
        );
        validation.set_required_spec_claims(&spec);
        validation.leeway = self.leeway;
        if !self.audiences.is_empty() {
            validation.set_audience(&self.audiences);
        }
        validation
    }
}

impl DecodingKeys {
    /// Decoding keys from `verifier`'s issuers and caches.
    pub fn new(verifier: MultiIssuerVerifier) -> DecodingKeys {
        DecodingKeys { verifier }
    }

    /// The verifier whose caches this reads.
    pub fn verifier(&self) -> &MultiIssuerVerifier {
        &self.verifier
    }

    /// The key for `token`: of the issuer its `iss` names, with the `kid`
    /// and algorithm of its header. Loads the issuer's keys on first use,
    /// and again for a `kid` not loaded yet (at most once per cooldown).
    ///
    /// Refusals are [`Error::Core`] with jwt-core's kinds: `invalid_issuer`
    /// (no configured issuer), `unknown_key` (no such key of that issuer),
    /// `invalid_algorithm` (the key may not verify with the token's
    /// algorithm, or `jsonwebtoken` lacks it), `malformed`.
    pub async fn for_token(&self, token: &str) -> Result<IssuerKey> {
        let (entry, header) = self.parts(token)?;
        let selected = entry.verifier.key(header.kid.as_deref()).await?;
        bridged(
            entry,
            header.kid,
            header.alg,
            header.typ.as_deref(),
            selected,
        )
    }

    /// [`for_token`](Self::for_token) from the keys already loaded:
    /// synchronous, no I/O. `unknown_key` with a `kid` and
    /// [`Error::StaleKeys`] mean "not loaded (yet)": call
    /// [`for_token`](Self::for_token).
    pub fn for_token_cached(&self, token: &str) -> Result<IssuerKey> {
        let (entry, header) = self.parts(token)?;
        let selected = entry.verifier.cached_key(header.kid.as_deref())?;
        bridged(
            entry,
            header.kid,
            header.alg,
            header.typ.as_deref(),
            selected,
        )
    }

    /// The key of `issuer` for a token with this header (decoded with
    /// `jsonwebtoken::decode_header`), when the caller has read the issuer
    /// already. The caller must then make sure the token's `iss` is
    /// `issuer`: [`IssuerKey::validation`] does.
    pub async fn for_header(
        &self,
        issuer: &str,
        header: &jsonwebtoken::Header,
    ) -> Result<IssuerKey> {
        let entry = self.verifier.entry(issuer).ok_or_else(|| {
            Error::Core(jwt_core::Error::InvalidIssuer {
                found: issuer.to_owned(),
                expected: self.verifier.issuers().map(str::to_owned).collect(),
            })
        })?;
        let alg = from_jsonwebtoken(header.alg)?;
        let selected = entry.verifier.key(header.kid.as_deref()).await?;
        bridged(
            entry,
            header.kid.clone(),
            alg,
            header.typ.as_deref(),
            selected,
        )
    }

    fn parts<'a>(&'a self, token: &str) -> Result<(&'a Entry, jwt_core::Header)> {
        let entry = self.verifier.entry_for(token)?;
        // The header as jwtkit's strict parser reads it (`alg: none` and
        // other unusable algorithms are refused here).
        let header = jwt_core::dangerous::insecure_decode_header(token)?;
        Ok((entry, header))
    }
}

/// The `jsonwebtoken` form of `selected`, for a token with `kid` and `alg`.
fn bridged(
    entry: &Entry,
    kid: Option<String>,
    alg: Algorithm,
    typ: Option<&str>,
    selected: SelectedKey,
) -> Result<IssuerKey> {
    // jsonwebtoken has no `typ` check: the issuer's (e.g. `at+jwt`, RFC
    // 9068) is checked here, by jwt-core's rule (case-insensitive, the
    // `application/` prefix optional).
    if let Some(expected) = &entry.typ {
        let bare = |t: &str| {
            let t = t.trim();
            match t.get(..12) {
                Some(p) if p.eq_ignore_ascii_case("application/") => t[12..].to_owned(),
                _ => t.to_owned(),
            }
        };
        if !typ.is_some_and(|t| bare(t).eq_ignore_ascii_case(&bare(expected))) {
            return Err(Error::Core(jwt_core::Error::InvalidType {
                found: typ.map(str::to_owned),
                expected: expected.clone(),
            }));
        }
    }
    if !selected.algorithms.contains(&alg) {
        let allowed: Vec<&str> = selected.algorithms.iter().map(|a| a.as_str()).collect();
        return Err(Error::Core(jwt_core::Error::InvalidAlgorithm {
            reason: format!(
                "the token uses {alg}, but the key {} of issuer {} verifies only with [{}]",
                kid.as_deref()
                    .map_or("(the only one)".to_owned(), |k| format!("{k:?}")),
                entry.issuer,
                allowed.join(", ")
            ),
        }));
    }
    Ok(IssuerKey {
        key: decoding_key(&selected.key)?,
        algorithm: to_jsonwebtoken(alg)?,
        issuer: entry.issuer.to_string(),
        aliases: entry.aliases.iter().map(|a| a.to_string()).collect(),
        kid,
        audiences: entry.audiences.clone(),
        leeway: entry.leeway,
        required: entry.required.clone(),
    })
}

/// A public key as `jsonwebtoken` takes it (from its JWK members).
fn decoding_key(key: &VerifyingKey) -> Result<DecodingKey> {
    let invalid = |reason: String| Error::Core(jwt_core::Error::InvalidKey { reason });
    let jwk = key
        .to_public_jwk()
        .ok_or_else(|| invalid("an HMAC secret is never handed out".into()))?;
    let member = |name: &str, value: &Option<String>| -> Result<String> {
        value
            .clone()
            .ok_or_else(|| invalid(format!("the {} JWK has no `{name}`", jwk.kty)))
    };
    let converted = match jwk.kty.as_str() {
        "RSA" => DecodingKey::from_rsa_components(&member("n", &jwk.n)?, &member("e", &jwk.e)?),
        "EC" => DecodingKey::from_ec_components(&member("x", &jwk.x)?, &member("y", &jwk.y)?),
        "OKP" => DecodingKey::from_ed_components(&member("x", &jwk.x)?),
        other => return Err(invalid(format!("jsonwebtoken cannot use a {other} key"))),
    };
    converted.map_err(|e| invalid(format!("jsonwebtoken refused the key: {e}")))
}

fn to_jsonwebtoken(alg: Algorithm) -> Result<jsonwebtoken::Algorithm> {
    use jsonwebtoken::Algorithm as J;
    Ok(match alg {
        Algorithm::RS256 => J::RS256,
        Algorithm::RS384 => J::RS384,
        Algorithm::RS512 => J::RS512,
        Algorithm::PS256 => J::PS256,
        Algorithm::PS384 => J::PS384,
        Algorithm::PS512 => J::PS512,
        Algorithm::ES256 => J::ES256,
        Algorithm::ES384 => J::ES384,
        Algorithm::EdDSA => J::EdDSA,
        // Never handed out: an issuer's keys are public.
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 | Algorithm::ES512 => {
            return Err(Error::Core(jwt_core::Error::InvalidAlgorithm {
                reason: format!(
                    "{alg} cannot be bridged: jsonwebtoken has no ES512, and an issuer's \
                     published keys never verify HMAC tokens; verify such tokens with \
                     MultiIssuerVerifier::verify"
                ),
            }))
        }
    })
}

fn from_jsonwebtoken(alg: jsonwebtoken::Algorithm) -> Result<Algorithm> {
    use jsonwebtoken::Algorithm as J;
    Ok(match alg {
        J::RS256 => Algorithm::RS256,
        J::RS384 => Algorithm::RS384,
        J::RS512 => Algorithm::RS512,
        J::PS256 => Algorithm::PS256,
        J::PS384 => Algorithm::PS384,
        J::PS512 => Algorithm::PS512,
        J::ES256 => Algorithm::ES256,
        J::ES384 => Algorithm::ES384,
        J::EdDSA => Algorithm::EdDSA,
        other => {
            return Err(Error::Core(jwt_core::Error::InvalidAlgorithm {
                reason: format!(
                    "the token uses {other:?}: an issuer's published keys never verify HMAC \
                     tokens"
                ),
            }))
        }
    })
}
