//! The env backend: the signing key from an environment variable — the
//! twelve-factor way. Read-only: rotating means changing the variables and
//! restarting.
//!
//! For a variable `NAME` (the URI `env:NAME`):
//!
//! | variable | content |
//! |---|---|
//! | `NAME` | the signing key: a PEM private key, a private JWK (JSON), or an HMAC secret (its bytes as given, or `base64url:…` for binary secrets; see [`hmac_secret_from_value`]) |
//! | `NAME_KID` | optional `kid` (default: the JWK's `kid`, else the RFC 7638 thumbprint) |
//! | `NAME_ALG` | optional algorithm (default: the JWK's `alg`, else the key type's: ES256/ES384/ES512, EdDSA, RS256, HS256) |
//! | `NAME_PREVIOUS` | optional JWKS of previous keys that still verify but no longer sign |
//!
//! Surrounding whitespace of a value is ignored. An HMAC secret is read by
//! [`hmac_secret_from_value`], the same rule as `jwtkit --secret-env NAME`,
//! so one variable gives one secret whichever way it is used.

use std::fmt;

use async_trait::async_trait;
use jwt_core::{Algorithm, Jwk, Jwks, KeySet, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::policy::RotationPolicy;
use crate::store::{read_only, KeyInfo, KeyRecord, KeyState, KeyStore, RotationReport};

/// A read-only store holding one signing key and optional verify-only
/// previous keys, configured from environment variables (see the
/// [module docs](self)) or from values with [`EnvKeyStore::builder`].
///
/// ```
/// use jwt_core::Algorithm;
/// use jwt_keys::{EnvKeyStore, Error, KeyStore, KeyStoreExt};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = EnvKeyStore::builder("APP_JWT_KEY")
///     .key("an HMAC secret of at least thirty-two bytes")
///     .kid("2024-06")
///     .build()?;
/// assert_eq!(store.active().await?.alg, Algorithm::HS256);
/// let token = store.sign_token(&serde_json::json!({"sub": "a", "exp": 4_000_000_000u64}), None).await?;
/// assert!(store.verification_keys().await?.keys.is_empty()); // secrets are never published
/// assert!(matches!(store.rotate(None).await, Err(Error::ReadOnly { backend: "env", .. })));
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub struct EnvKeyStore {
    var: String,
    kid: String,
    alg: Algorithm,
    key: SigningKey,
    /// Previous keys: kid and algorithm (bound, or the key type's default).
    previous: Vec<(String, Algorithm)>,
    /// Public JWKs of the signing key and the previous keys.
    published: Vec<Jwk>,
    /// Every key that verifies, HMAC secrets included.
    key_set: KeySet,
    policy: RotationPolicy,
}

impl fmt::Debug for EnvKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvKeyStore")
            .field("var", &self.var)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field(
                "previous",
                &self.previous.iter().map(|p| &p.0).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Builds an [`EnvKeyStore`] from values. Secrets are zeroized on drop and
/// never shown by `Debug`.
pub struct EnvKeyStoreBuilder {
    var: String,
    key: Option<Zeroizing<String>>,
    kid: Option<String>,
    alg: Option<String>,
    previous: Option<Zeroizing<String>>,
    policy: Option<RotationPolicy>,
}

impl fmt::Debug for EnvKeyStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvKeyStoreBuilder")
            .field("var", &self.var)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Reads an environment variable as this backend does: unset, empty and
/// whitespace-only all count as unset; a value that is not UTF-8 is an error
/// (binary secrets are written `base64url:…`).
fn read_var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::Env {
            var: name.to_owned(),
            reason: "is not valid UTF-8; write a binary secret as `base64url:` followed by its \
                     unpadded base64url encoding"
                .into(),
        }),
    }
}

/// The HMAC secret an environment variable's value stands for — the one rule
/// shared by the `env:NAME` store and `jwtkit sign|verify --secret-env NAME`,
/// so one variable always means one secret:
///
/// - surrounding whitespace (e.g. the newline of `export S="$(cat file)"`
///   style assignments) and a leading byte-order mark are not part of the
///   secret;
/// - `base64url:` (in any letter case) followed by unpadded base64url is
///   decoded, for binary secrets;
/// - anything else is the secret's bytes as written.
///
/// Whether the bytes are an acceptable secret (not a key, long enough) is
/// checked when they become a key ([`SigningKey::hmac`]).
///
/// ```
/// use jwt_keys::env::hmac_secret_from_value;
/// assert_eq!(&*hmac_secret_from_value(" s3cret\n").unwrap(), b"s3cret");
/// assert_eq!(&*hmac_secret_from_value("base64url:AAEC").unwrap(), &[0u8, 1, 2]);
/// assert_eq!(&*hmac_secret_from_value("BASE64URL:AAEC").unwrap(), &[0u8, 1, 2]);
/// assert_eq!(&*hmac_secret_from_value("\u{feff}s3cret\r\n").unwrap(), b"s3cret");
/// let err = hmac_secret_from_value("base64url:not base64!").unwrap_err();
/// assert!(!err.to_string().contains("token"), "{err}");
/// ```
pub fn hmac_secret_from_value(
    value: &str,
) -> std::result::Result<Zeroizing<Vec<u8>>, jwt_core::Error> {
    // A byte-order mark (a file saved as "UTF-8 with BOM") is not part of
    // the secret either; `trim` keeps it.
    let value = value.trim().trim_start_matches('\u{feff}').trim();
    match base64url_text(value) {
        Some(b64) => jwt_core::b64::decode(b64.as_bytes(), "the `base64url:` HMAC secret")
            .map(Zeroizing::new)
            .map_err(|e| {
                let reason = match e {
                    jwt_core::Error::Malformed { reason } => reason,
                    other => other.to_string(),
                };
                jwt_core::Error::InvalidKey {
                    reason: format!(
                    "{reason}; after `base64url:` comes the secret in unpadded base64url on one \
                     line, as `jwtkit keys generate --alg HS256` prints it"
                ),
                }
            }),
        None => Ok(Zeroizing::new(value.as_bytes().to_vec())),
    }
}

/// The text after a `base64url:` prefix, in any letter case (a secret that
/// really starts with `BASE64URL:` is far less likely than a prefix typed
/// in capitals, which must not silently become part of the secret); `None`
/// without the prefix. Every reader of secret text uses it: `env:` stores,
/// `--secret-env`, `--secret-file`, `JWTKIT_REFRESH_KEY`.
///
/// ```
/// use jwt_keys::env::base64url_text;
/// assert_eq!(base64url_text("Base64URL:AAEC"), Some("AAEC"));
/// assert_eq!(base64url_text("s3cret"), None);
/// ```
pub fn base64url_text(value: &str) -> Option<&str> {
    const PREFIX: &str = "base64url:";
    value
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .map(|_| &value[PREFIX.len()..])
}

/// Reads the HMAC secret in the environment variable `var` by the rule of
/// [`hmac_secret_from_value`] (what `jwtkit --secret-env VAR` uses). An
/// unset, empty or non-UTF-8 variable is an [`Error::Env`] naming it.
pub fn hmac_secret_from_env(var: &str) -> Result<Zeroizing<Vec<u8>>> {
    let value = Zeroizing::new(read_var(var)?.ok_or_else(|| {
        Error::Env {
            var: var.to_owned(),
            reason: "is not set or empty; export it with the HMAC secret (its bytes, or \
                 `base64url:…` for a binary secret)"
                .into(),
        }
    })?);
    hmac_secret_from_value(&value).map_err(|e| Error::Env {
        var: var.to_owned(),
        reason: e.to_string(),
    })
}

impl EnvKeyStore {
    /// Reads `var`, `var_KID`, `var_ALG` and `var_PREVIOUS` from the environment.
    pub fn from_env(var: &str) -> Result<EnvKeyStore> {
        let get = read_var;
        let key = get(var)?.ok_or_else(|| Error::Env {
            var: var.to_owned(),
            reason: "is not set; it must hold the signing key (PEM, private JWK, or HMAC secret)"
                .into(),
        })?;
        let mut b = EnvKeyStore::builder(var).key(key);
        if let Some(kid) = get(&format!("{var}_KID"))? {
            b = b.kid(kid);
        }
        if let Some(alg) = get(&format!("{var}_ALG"))? {
            b.alg = Some(alg);
        }
        if let Some(prev) = get(&format!("{var}_PREVIOUS"))? {
            b = b.previous_jwks(prev);
        }
        b.build()
    }

    /// A builder; `var` names the configuration in error messages.
    pub fn builder(var: impl Into<String>) -> EnvKeyStoreBuilder {
        EnvKeyStoreBuilder {
            var: var.into(),
            key: None,
            kid: None,
            alg: None,
            previous: None,
            policy: None,
        }
    }

    fn is_previous(&self, kid: &str) -> bool {
        self.previous.iter().any(|p| p.0 == kid)
    }
}

impl EnvKeyStoreBuilder {
    /// The signing key: PEM, private JWK, or HMAC secret.
    pub fn key(mut self, value: impl Into<String>) -> Self {
        self.key = Some(Zeroizing::new(value.into()));
        self
    }

    /// The `kid`.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm.
    pub fn alg(mut self, alg: Algorithm) -> Self {
        self.alg = Some(alg.as_str().to_owned());
        self
    }

    /// Previous keys (a JWKS, JSON) that verify but no longer sign.
    pub fn previous_jwks(mut self, jwks: impl Into<String>) -> Self {
        self.previous = Some(Zeroizing::new(jwks.into()));
        self
    }

    /// The policy [`KeyStoreExt::audit`](crate::KeyStoreExt::audit) checks
    /// against (default: [`RotationPolicy::default`] plus the key's algorithm).
    pub fn policy(mut self, policy: RotationPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Parses everything; errors name the variable at fault.
    pub fn build(self) -> Result<EnvKeyStore> {
        let var = self.var;
        let err = |suffix: &str, reason: String| Error::Env {
            var: format!("{var}{suffix}"),
            reason,
        };
        let raw = self
            .key
            .ok_or_else(|| err("", "no signing key given".into()))?;
        let key = parse_signing_key(raw.trim()).map_err(|e| err("", e))?;
        let alg = match self.alg.as_deref() {
            Some(a) => a
                .parse::<Algorithm>()
                .map_err(|e| err("_ALG", e.to_string()))?,
            None => key.default_algorithm(),
        };
        key.check_usable(alg).map_err(|e| err("", e.to_string()))?;
        let kid = match self.kid.or_else(|| key.kid().map(str::to_owned)) {
            Some(k) => k,
            None => key.thumbprint().map_err(|e| err("", e.to_string()))?,
        };
        let key = key
            .with_kid(kid.clone())
            .with_algorithm(alg)
            .map_err(|e| err("", e.to_string()))?;
        let mut previous = Vec::new();
        let mut published: Vec<Jwk> = key.to_public_jwk().into_iter().collect();
        let mut key_set = KeySet::new();
        key_set
            .insert(key.verifying_key())
            .map_err(|e| err("", e.to_string()))?;
        if let Some(json) = self.previous {
            let jwks = Jwks::from_json(json.as_bytes())
                .map_err(|e| err("_PREVIOUS", format!("not a JWKS: {e}")))?;
            for (i, jwk) in jwks.keys.iter().enumerate() {
                let (pkid, palg, pkey) = parse_previous(jwk, &kid)
                    .map_err(|e| err("_PREVIOUS", format!("key #{i}: {e}")))?;
                published.extend(pkey.to_public_jwk());
                key_set
                    .insert(pkey)
                    .map_err(|e| err("_PREVIOUS", format!("key #{i} (kid `{pkid}`): {e}")))?;
                previous.push((pkid, palg));
            }
        }
        let policy = match self.policy {
            Some(p) => p,
            None => {
                let d = RotationPolicy::default();
                let mut algs = d.allowed_algorithms().to_vec();
                algs.push(alg);
                RotationPolicy::builder()
                    .allowed_algorithms(algs)
                    .build()
                    .unwrap_or(d)
            }
        };
        Ok(EnvKeyStore {
            var,
            kid,
            alg,
            key,
            previous,
            published,
            key_set,
            policy,
        })
    }
}

fn parse_signing_key(value: &str) -> std::result::Result<SigningKey, String> {
    // A PEM block anywhere (after a comment line or a BOM too) is a key.
    if value.contains("-----BEGIN") {
        SigningKey::from_pem(value.as_bytes()).map_err(|e| format!("PEM: {e}"))
    } else if value.starts_with('{') {
        let jwk = Jwk::from_json(value.as_bytes()).map_err(|e| format!("JWK: {e}"))?;
        SigningKey::from_jwk(&jwk).map_err(|e| format!("JWK: {e}"))
    } else {
        let secret = hmac_secret_from_value(value).map_err(|e| e.to_string())?;
        SigningKey::hmac(&secret).map_err(|e| format!("HMAC secret: {e}"))
    }
}

fn parse_previous(
    jwk: &Jwk,
    current_kid: &str,
) -> std::result::Result<(String, Algorithm, VerifyingKey), String> {
    let key = VerifyingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let kid = match jwk.kid.clone() {
        Some(k) => k,
        None => key.thumbprint().map_err(|e| e.to_string())?,
    };
    if kid == current_kid {
        return Err(format!(
            "kid `{kid}` is the signing key's; a previous key needs its own kid"
        ));
    }
    let alg = match key.algorithm() {
        Some(a) => a,
        None => default_alg(key.family()),
    };
    key.check_usable(alg).map_err(|e| e.to_string())?;
    let key = key.with_kid(kid.clone());
    Ok((kid, alg, key))
}

fn default_alg(family: jwt_core::KeyFamily) -> Algorithm {
    use jwt_core::KeyFamily;
    match family {
        KeyFamily::Hmac => Algorithm::HS256,
        KeyFamily::Rsa => Algorithm::RS256,
        KeyFamily::Ec(c) => c.algorithm(),
        KeyFamily::Ed25519 => Algorithm::EdDSA,
    }
}

#[async_trait]
impl KeyStore for EnvKeyStore {
    fn name(&self) -> &'static str {
        "env"
    }

    async fn active(&self) -> Result<KeyInfo> {
        Ok(KeyInfo {
            kid: self.kid.clone(),
            alg: self.alg,
        })
    }

    async fn sign(&self, kid: &str, signing_input: &[u8]) -> Result<Vec<u8>> {
        if kid == self.kid {
            return Ok(self.key.sign_raw(self.alg, signing_input)?);
        }
        if self.is_previous(kid) {
            return Err(Error::NotActive {
                kid: kid.to_owned(),
                state: KeyState::Retiring,
            });
        }
        Err(Error::UnknownKey {
            kid: kid.to_owned(),
        })
    }

    async fn verification_keys(&self) -> Result<Jwks> {
        Ok(Jwks {
            keys: self.published.clone(),
        })
    }

    async fn key_set(&self) -> Result<KeySet> {
        // HMAC secrets verify in-process but are never published.
        Ok(self.key_set.clone())
    }

    async fn list(&self) -> Result<Vec<KeyRecord>> {
        let mut out = vec![KeyRecord::new(self.kid.clone(), self.alg, KeyState::Active)];
        out.extend(self.previous.iter().map(|(kid, alg)| {
            let mut r = KeyRecord::new(kid.clone(), *alg, KeyState::Retiring);
            r.has_private_key = false;
            r
        }));
        Ok(out)
    }

    async fn policy(&self) -> Result<RotationPolicy> {
        Ok(self.policy.clone())
    }

    async fn init(&self, _: Algorithm, _: &RotationPolicy) -> Result<RotationReport> {
        Err(read_only("env", "init"))
    }

    async fn rotate(&self, _: Option<&str>) -> Result<RotationReport> {
        Err(read_only("env", "rotate"))
    }

    async fn retire_expired(&self) -> Result<Vec<String>> {
        Err(read_only("env", "retire_expired"))
    }
}
