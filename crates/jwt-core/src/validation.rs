//! What a token must satisfy besides its signature: allowed algorithms, the
//! registered claims (RFC 7519 §4.1, PyJWT-compatible semantics) and the
//! explicit type (RFC 8725 §3.11).

use std::sync::Arc;
use std::time::Duration;

use crate::algorithm::Algorithm;
use crate::claims::{ClaimValue, Registered};
use crate::error::Error;
use crate::error::Shown;
use crate::header::{typ_matches, Header};
use crate::time::{Clock, SystemClock};

/// Default maximum token size: 64 KiB.
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 64 * 1024;

/// Validation settings. There is no `Default`: the allowed algorithms must be
/// named (RFC 8725 §3.1), so [`Validation::new`] takes them.
///
/// Defaults: `exp` required and checked, `nbf` and `iat` checked when present,
/// no leeway, tokens over 64 KiB refused, the system clock.
///
/// ```
/// use jwt_core::{Algorithm, Validation};
/// let v = Validation::new([Algorithm::ES256])
///     .issuer("https://auth.example.com")
///     .audience("my-api")
///     .typ("at+jwt")
///     .leeway(std::time::Duration::from_secs(30));
/// assert_eq!(v.algorithms(), &[Algorithm::ES256]);
/// ```
#[derive(Debug, Clone)]
pub struct Validation {
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway: u64,
    pub(crate) require_exp: bool,
    pub(crate) required: Vec<String>,
    pub(crate) issuers: Option<Vec<String>>,
    pub(crate) audiences: Option<Vec<String>>,
    pub(crate) subject: Option<String>,
    pub(crate) typ: Option<String>,
    pub(crate) max_size: usize,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) allow_weak_keys: bool,
}

impl Validation {
    /// Validation accepting exactly `algorithms`. An empty list is refused
    /// when a [`Verifier`](crate::Verifier) is built with it.
    pub fn new(algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        let mut algs: Vec<Algorithm> = algorithms.into_iter().collect();
        algs.sort();
        algs.dedup();
        Validation {
            algorithms: algs,
            leeway: 0,
            require_exp: true,
            required: Vec::new(),
            issuers: None,
            audiences: None,
            subject: None,
            typ: None,
            max_size: DEFAULT_MAX_TOKEN_SIZE,
            clock: Arc::new(SystemClock),
            allow_weak_keys: false,
        }
    }

    /// The allowed algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Tolerance for clock skew applied to `exp`, `nbf` and `iat`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs();
        self
    }

    /// Accepts tokens from this issuer (may be called several times: one of them must match).
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers.get_or_insert_with(Vec::new).push(iss.into());
        self
    }

    /// Accepts tokens for this audience (may be called several times: the token
    /// must name at least one). Without any, a token carrying `aud` is refused.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.get_or_insert_with(Vec::new).push(aud.into());
        self
    }

    /// Requires `sub` to equal `sub`.
    pub fn subject(mut self, sub: impl Into<String>) -> Self {
        self.subject = Some(sub.into());
        self
    }

    /// Requires the header `typ` to be `typ` (case-insensitive, `application/` optional).
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Requires `claim` to be present.
    pub fn require(mut self, claim: impl Into<String>) -> Self {
        let claim = claim.into();
        if !self.required.contains(&claim) {
            self.required.push(claim);
        }
        self
    }

    /// Makes `exp` optional (it is still checked when present).
    pub fn optional_exp(mut self) -> Self {
        self.require_exp = false;
        self
    }

    /// Refuses tokens longer than `bytes` before decoding anything.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// The maximum token size in bytes.
    pub fn max_token_size(&self) -> usize {
        self.max_size
    }

    /// Uses `clock` instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock validation reads.
    pub fn clock_ref(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The leeway in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway
    }

    /// The time checks of verification, at this validation's clock and
    /// leeway, in the order verification runs them: `exp` (expired when
    /// `now >= exp + leeway`), then `nbf` and `iat` (not yet valid when more
    /// than the leeway in the future). The clock counts whole seconds, so
    /// `now` stands for the second `[now, now + 1)`: a fractional `nbf` or
    /// `iat` within it (PyJWT writes `time.time()`) is not in the future.
    ///
    /// Verification calls this; so does a cache of verified tokens
    /// (`jwt_keys`' token cache), which must answer at every hit exactly
    /// what a fresh verification would.
    pub fn check_times(
        &self,
        exp: Option<f64>,
        nbf: Option<f64>,
        iat: Option<f64>,
    ) -> Result<(), Error> {
        self.check_times_at(self.clock.now(), exp, nbf, iat)
    }

    fn check_times_at(
        &self,
        now: i64,
        exp: Option<f64>,
        nbf: Option<f64>,
        iat: Option<f64>,
    ) -> Result<(), Error> {
        let nowf = now as f64;
        let leeway = self.leeway as f64;
        if let Some(exp) = exp {
            if nowf >= exp + leeway {
                return Err(Error::Expired {
                    // `as` saturates on floats, and a JSON number is never NaN.
                    exp: exp.floor() as i64,
                    now,
                    leeway: self.leeway,
                });
            }
        }
        if let Some(nbf) = nbf {
            if nowf < (nbf - leeway).floor() {
                return Err(Error::Immature {
                    claim: "nbf",
                    value: nbf,
                    now,
                    leeway: self.leeway,
                });
            }
        }
        if let Some(iat) = iat {
            if (iat - leeway).floor() > nowf {
                return Err(Error::Immature {
                    claim: "iat",
                    value: iat,
                    now,
                    leeway: self.leeway,
                });
            }
        }
        Ok(())
    }

    pub(crate) fn check_config(&self) -> Result<(), Error> {
        if self.algorithms.is_empty() {
            return Err(Error::config(
                "no algorithm is allowed; name the algorithms your issuer uses (e.g. ES256) — \
                 accepting whatever the token says is the classic JWT vulnerability",
            ));
        }
        if self.max_size == 0 {
            return Err(Error::config("the maximum token size must be above 0"));
        }
        if matches!(&self.audiences, Some(a) if a.is_empty()) {
            return Err(Error::config("an empty audience list can never match"));
        }
        Ok(())
    }

    /// Checks the header's `typ` against the expected type.
    pub(crate) fn check_typ(&self, header: &Header) -> Result<(), Error> {
        if let Some(expected) = &self.typ {
            match &header.typ {
                Some(found) if typ_matches(found, expected) => {}
                found => {
                    return Err(Error::InvalidType {
                        found: found.as_deref().map(str::to_owned),
                        expected: expected.clone(),
                    })
                }
            }
        }
        Ok(())
    }

    /// Checks the registered claims picked out of the payload.
    pub(crate) fn check_claims(&self, claims: &Registered<'_>) -> Result<(), Error> {
        for claim in &self.required {
            if !claims.has(claim) {
                return Err(Error::MissingClaim {
                    claim: claim.clone(),
                });
            }
        }
        // One clock read; each claim's type, then its time, in this order.
        let now = self.clock.now();
        let exp = match &claims.exp {
            Some(v) => Some(numeric_date("exp", v)?),
            None if self.require_exp => {
                return Err(Error::MissingClaim {
                    claim: "exp".into(),
                })
            }
            None => None,
        };
        self.check_times_at(now, exp, None, None)?;
        let nbf = claims
            .nbf
            .as_ref()
            .map(|v| numeric_date("nbf", v))
            .transpose()?;
        self.check_times_at(now, None, nbf, None)?;
        let iat = claims
            .iat
            .as_ref()
            .map(|v| numeric_date("iat", v))
            .transpose()?;
        self.check_times_at(now, None, None, iat)?;
        if let Some(expected) = &self.issuers {
            match &claims.iss {
                None => {
                    return Err(Error::MissingClaim {
                        claim: "iss".into(),
                    })
                }
                Some(ClaimValue::Str(iss)) if expected.iter().any(|e| e == iss) => {}
                Some(ClaimValue::Str(iss)) => {
                    return Err(Error::InvalidIssuer {
                        found: iss.to_string(),
                        expected: expected.clone(),
                    })
                }
                Some(other) => {
                    return Err(Error::InvalidIssuer {
                        found: format!("({})", other.type_name()),
                        expected: expected.clone(),
                    })
                }
            }
        } else if let Some(v) = &claims.iss {
            // RFC 7519 §4.1.1: a string, whether or not an issuer is
            // expected (as `sub` and `jti` are checked below).
            if !matches!(v, ClaimValue::Str(_)) {
                return Err(Error::invalid_claim(
                    "iss",
                    format!("must be a string, found {}", v.type_name()),
                ));
            }
        }
        self.check_audience(claims.aud.as_ref(), &claims.aud_items)?;
        match (&claims.sub, &self.subject) {
            (Some(ClaimValue::Str(sub)), Some(expected)) if sub != expected => {
                return Err(Error::InvalidSubject {
                    reason: format!("{} is not the expected subject {expected:?}", Shown(sub)),
                })
            }
            (Some(ClaimValue::Str(_)), _) | (None, None) => {}
            (Some(other), _) => {
                return Err(Error::InvalidSubject {
                    reason: format!("`sub` must be a string, found {}", other.type_name()),
                })
            }
            (None, Some(_)) => {
                return Err(Error::MissingClaim {
                    claim: "sub".into(),
                })
            }
        }
        if let Some(v) = &claims.jti {
            if !matches!(v, ClaimValue::Str(_)) {
                return Err(Error::invalid_claim(
                    "jti",
                    format!("must be a string, found {}", v.type_name()),
                ));
            }
        }
        Ok(())
    }

    fn check_audience(
        &self,
        aud: Option<&ClaimValue<'_>>,
        aud_items: &[std::borrow::Cow<'_, str>],
    ) -> Result<(), Error> {
        let Some(expected) = &self.audiences else {
            return match aud {
                None => Ok(()),
                // RFC 7519 §4.1.3: a principal that does not identify itself
                // with a value in `aud` must reject the token.
                Some(_) => Err(Error::InvalidAudience {
                    reason:
                        "the token is meant for a specific audience (`aud`) but no audience is \
                             configured; configure the audience this service accepts"
                            .into(),
                }),
            };
        };
        let found: &[std::borrow::Cow<'_, str>] = match aud {
            None => {
                return Err(Error::MissingClaim {
                    claim: "aud".into(),
                })
            }
            Some(ClaimValue::Str(s)) => std::slice::from_ref(s),
            Some(ClaimValue::StrArray(_)) => aud_items,
            Some(other) => {
                return Err(Error::InvalidAudience {
                    reason: format!(
                        "`aud` must be a string or an array of strings, found {}",
                        other.type_name()
                    ),
                })
            }
        };
        if found.iter().any(|a| expected.iter().any(|e| e == a)) {
            Ok(())
        } else {
            Err(Error::InvalidAudience {
                reason: format!(
                    "the token is for [{}{}], not for any of {expected:?}",
                    found
                        .iter()
                        .take(10)
                        .map(|a| Shown(a).to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if found.len() > 10 { ", …" } else { "" }
                ),
            })
        }
    }
}

/// Reads a NumericDate: a JSON number (integer or fraction). Strings,
/// booleans and null are refused.
pub(crate) fn numeric_date(claim: &str, v: &ClaimValue<'_>) -> Result<f64, Error> {
    match v {
        ClaimValue::Num(n) => Ok(*n),
        other => Err(Error::invalid_claim(
            claim,
            format!(
                "must be a NumericDate (a JSON number of seconds since 1970), found {}",
                other.type_name()
            ),
        )),
    }
}
