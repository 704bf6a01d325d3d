//! JWK import and export (RFC 7517, 7518 §6, 8037) and RFC 7638
//! thumbprints.
//!
//! This lives with the keys rather than next to `crate::jwk` because it
//! builds and reads the keys' private crypto objects; `crate::jwk` stays the
//! plain serde format, and no key internals are opened to the rest of the
//! crate.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
use zeroize::Zeroizing;

use super::primitives::{ecdsa_signing_alg, rejected, EcPublic, EdPublic, HmacSecret, RsaPublic};
use super::{check_family, SigningInner, SigningKey, VerifyInner, VerifyingKey};
use crate::algorithm::{Algorithm, Curve, KeyFamily};
use crate::b64;
use crate::error::Error;
use crate::jwk::Jwk;

impl SigningKey {
    /// Parses a private JWK (`RSA`, `EC`, `OKP`/Ed25519 or `oct`). Its `alg`,
    /// when present, binds the key to exactly that algorithm; its `use`, when
    /// present, must be `sig` and its `key_ops` must include `sign`. The
    /// private part must match the public part (checked by signing once with
    /// the private key and verifying with the public members).
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, Error> {
        check_jwk_purpose(jwk, "sign")?;
        Self::from_private_jwk(jwk)
    }

    /// The key of a private JWK, its private part checked against its public
    /// part; `use` and `key_ops` are the caller's to check.
    fn from_private_jwk(jwk: &Jwk) -> Result<Self, Error> {
        let alg = jwk_alg(jwk)?;
        let inner = match jwk.kty.as_str() {
            "oct" => SigningInner::Hmac(Box::new(HmacSecret::new(&Zeroizing::new(
                decode_member(&jwk.k, "oct", "k")?,
            ))?)),
            "RSA" => {
                if jwk.d.is_none() {
                    return Err(Error::invalid_key(
                        "this RSA JWK is public (no `d`); signing needs the private key",
                    ));
                }
                let n = decode_member(&jwk.n, "RSA", "n")?;
                let e = decode_member(&jwk.e, "RSA", "e")?;
                let private = |m: &Option<String>, name: &str| {
                    decode_member(m, "RSA", name).map(Zeroizing::new)
                };
                let comps = KeyPairComponents {
                    public_key: PublicKeyComponents {
                        n: &n[..],
                        e: &e[..],
                    },
                    d: private(&jwk.d, "d")?,
                    p: private(&jwk.p, "p")?,
                    q: private(&jwk.q, "q")?,
                    dP: private(&jwk.dp, "dp")?,
                    dQ: private(&jwk.dq, "dq")?,
                    qInv: private(&jwk.qi, "qi")?,
                };
                let comps = KeyPairComponents {
                    public_key: comps.public_key,
                    d: &comps.d[..],
                    p: &comps.p[..],
                    q: &comps.q[..],
                    dP: &comps.dP[..],
                    dQ: &comps.dQ[..],
                    qInv: &comps.qInv[..],
                };
                SigningInner::Rsa(Box::new(
                    RsaKeyPair::from_components(&comps).map_err(rejected("the RSA JWK"))?,
                ))
            }
            "EC" => {
                let curve = curve_from_name(jwk.crv.as_deref())?;
                let d = Zeroizing::new(decode_member(&jwk.d, "EC", "d")?);
                let point = ec_point_from_jwk(jwk, curve)?;
                let kp = EcdsaKeyPair::from_private_key_and_public_key(
                    ecdsa_signing_alg(curve),
                    &d,
                    &point,
                )
                .map_err(rejected("the EC JWK"))?;
                SigningInner::Ec(curve, Box::new(kp))
            }
            "OKP" => {
                okp_check_curve(jwk)?;
                let d = Zeroizing::new(decode_member(&jwk.d, "OKP", "d")?);
                let x = decode_member(&jwk.x, "OKP", "x")?;
                let kp = Ed25519KeyPair::from_seed_and_public_key(&d, &x)
                    .map_err(rejected("the Ed25519 JWK"))?;
                SigningInner::Ed25519(Box::new(kp))
            }
            other => return Err(unsupported_kty(other)),
        };
        let key = SigningKey {
            inner,
            kid: jwk.kid.clone(),
            alg,
        };
        if let Some(alg) = alg {
            key.check_family(alg)?;
        }
        key.check_matches_public_jwk(jwk)?;
        Ok(key)
    }

    /// Pairwise consistency test (as FIPS 140 does for generated keys): a
    /// signature made with the private part must verify with the JWK's own
    /// public members. A JWK whose private part belongs to another key is
    /// refused, whatever the crypto library's parser checked.
    fn check_matches_public_jwk(&self, jwk: &Jwk) -> Result<(), Error> {
        if self.family() == KeyFamily::Hmac {
            return Ok(());
        }
        const MESSAGE: &[u8] = b"jwtkit: pairwise consistency test of a private JWK";
        let public = VerifyingKey::public_from_jwk(jwk)?;
        let alg = self.default_algorithm();
        let signature = self.sign_raw(alg, MESSAGE)?;
        public
            .verify_raw_inner(alg, MESSAGE, &signature, false)
            .map_err(|_| {
                Error::invalid_key(format!(
                    "the {} JWK's private part does not belong to its public part ({}): the key \
                     is corrupt or was assembled from two keys; export the key pair again",
                    jwk.kty,
                    match self.family() {
                        KeyFamily::Rsa => "`n`/`e`",
                        KeyFamily::Ec(_) => "`x`/`y`",
                        _ => "`x`",
                    }
                ))
            })
    }

    /// The public JWK (with `kid` and `alg` when known). `None` for HMAC keys,
    /// which have no public part.
    pub fn to_public_jwk(&self) -> Option<Jwk> {
        let vk = self.verifying_key();
        vk.to_public_jwk()
    }

    /// The RFC 7638 thumbprint of the key (for HMAC, of the `oct` JWK).
    pub fn thumbprint(&self) -> Result<String, Error> {
        self.verifying_key().thumbprint()
    }
}

impl VerifyingKey {
    /// Parses a JWK (public or private). `alg` binds the key; `use`, if
    /// present, must be `sig` and `key_ops`, if present, must include
    /// `verify`. A private JWK's private part must match its public part (a
    /// mismatch means a corrupt or tampered key, and is refused).
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, Error> {
        check_jwk_purpose(jwk, "verify")?;
        let key = Self::public_from_jwk(jwk)?;
        if jwk.kty != "oct" && jwk.d.is_some() {
            SigningKey::from_private_jwk(jwk)?;
        }
        Ok(key)
    }

    /// The key of a JWK's public members (for `oct`, its secret).
    fn public_from_jwk(jwk: &Jwk) -> Result<Self, Error> {
        let alg = jwk_alg(jwk)?;
        let inner = match jwk.kty.as_str() {
            "oct" => VerifyInner::Hmac(Box::new(HmacSecret::new(&Zeroizing::new(decode_member(
                &jwk.k, "oct", "k",
            )?))?)),
            "RSA" => {
                let n = decode_member(&jwk.n, "RSA", "n")?;
                let e = decode_member(&jwk.e, "RSA", "e")?;
                let comps = PublicKeyComponents {
                    n: &n[..],
                    e: &e[..],
                };
                let der = comps.as_der().map_err(|_| {
                    Error::invalid_key("the RSA JWK's `n`/`e` do not form a valid key")
                })?;
                VerifyInner::Rsa(Box::new(RsaPublic::from_der(der.as_ref())?))
            }
            "EC" => {
                let curve = curve_from_name(jwk.crv.as_deref())?;
                let ec = EcPublic::new(curve, ec_point_from_jwk(jwk, curve)?);
                if ec.parsed.is_none() {
                    return Err(Error::invalid_key(format!(
                        "the EC JWK's x/y are not a point on {}",
                        curve.jwk_name()
                    )));
                }
                VerifyInner::Ec(curve, ec)
            }
            "OKP" => {
                okp_check_curve(jwk)?;
                let x = decode_member(&jwk.x, "OKP", "x")?;
                VerifyInner::Ed25519(EdPublic::from_untrusted(x, "the Ed25519 JWK's `x`")?)
            }
            other => return Err(unsupported_kty(other)),
        };
        let key = VerifyingKey {
            inner,
            kid: jwk.kid.clone(),
            alg,
        };
        if let Some(alg) = alg {
            check_family(key.family(), alg).map_err(|_| {
                Error::invalid_key(format!(
                    "the JWK declares alg {alg} but is an {} key",
                    key.family().name()
                ))
            })?;
        }
        Ok(key)
    }

    /// The public JWK (`kid` and `alg` included when known, `use: "sig"`).
    /// `None` for HMAC secrets: they must never be published.
    pub fn to_public_jwk(&self) -> Option<Jwk> {
        let mut jwk = self.raw_jwk(false)?;
        jwk.use_ = Some("sig".into());
        jwk.alg = self.alg.map(|a| a.as_str().to_owned());
        jwk.kid = Some(match &self.kid {
            Some(k) => k.clone(),
            None => jwk.thumbprint().ok()?,
        });
        Some(jwk)
    }

    fn raw_jwk(&self, include_secret: bool) -> Option<Jwk> {
        Some(match &self.inner {
            VerifyInner::Hmac(s) => {
                if !include_secret {
                    return None;
                }
                Jwk {
                    kty: "oct".into(),
                    k: Some(b64::encode(&s.bytes)),
                    ..Jwk::default()
                }
            }
            VerifyInner::Rsa(r) => Jwk {
                kty: "RSA".into(),
                n: Some(b64::encode(&r.n)),
                e: Some(b64::encode(&r.e)),
                ..Jwk::default()
            },
            VerifyInner::Ec(c, ec) => {
                let len = c.coordinate_len();
                let (x, y) = ec.point.get(1..)?.split_at_checked(len)?;
                Jwk {
                    kty: "EC".into(),
                    crv: Some(c.jwk_name().into()),
                    x: Some(b64::encode(x)),
                    y: Some(b64::encode(y)),
                    ..Jwk::default()
                }
            }
            VerifyInner::Ed25519(ed) => Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(b64::encode(&ed.raw)),
                ..Jwk::default()
            },
        })
    }

    /// The RFC 7638 SHA-256 thumbprint (HMAC keys: of their `oct` JWK).
    pub fn thumbprint(&self) -> Result<String, Error> {
        self.raw_jwk(true)
            .ok_or(Error::Crypto {
                what: "JWK encoding",
            })?
            .thumbprint()
    }
}

fn curve_from_name(name: Option<&str>) -> Result<Curve, Error> {
    match name {
        Some("P-256") => Ok(Curve::P256),
        Some("P-384") => Ok(Curve::P384),
        Some("P-521") => Ok(Curve::P521),
        Some(other) => Err(Error::invalid_key(format!(
            "unsupported EC curve {other:?}; use P-256, P-384 or P-521 (secp256k1 is not a JWS curve)"
        ))),
        None => Err(Error::invalid_key("the EC JWK has no `crv`")),
    }
}

fn decode_member(value: &Option<String>, kty: &str, member: &str) -> Result<Vec<u8>, Error> {
    let s = value
        .as_deref()
        .ok_or_else(|| Error::invalid_key(format!("the {kty} JWK has no `{member}`")))?;
    b64::decode(s.as_bytes(), &format!("JWK member `{member}`"))
        .map_err(|e| Error::invalid_key(e.to_string()))
}

fn jwk_alg(jwk: &Jwk) -> Result<Option<Algorithm>, Error> {
    jwk.alg
        .as_deref()
        .map(|a| {
            a.parse::<Algorithm>().map_err(|_| {
                Error::invalid_key(format!(
                    "the JWK's `alg` {a:?} is not a supported JWS algorithm"
                ))
            })
        })
        .transpose()
}

/// A JWK's `use`, when present, must be `sig` (RFC 7517 §4.2: `enc` keys
/// are for encryption), and its `key_ops`, when present, must include `op`.
fn check_jwk_purpose(jwk: &Jwk, op: &str) -> Result<(), Error> {
    let purpose = if op == "sign" {
        "signing"
    } else {
        "verification"
    };
    if let Some(u) = &jwk.use_ {
        if u != "sig" {
            return Err(Error::invalid_key(format!(
                "the JWK's `use` is {u:?}; only `sig` keys sign or verify signatures (RFC 7517 §4.2), \
                 so it cannot be used for {purpose}. Use the issuer's signing key, or set `use` to `sig` \
                 if this key really is one"
            )));
        }
    }
    if let Some(ops) = &jwk.key_ops {
        if !ops.iter().any(|o| o == op) {
            return Err(Error::invalid_key(format!(
                "the JWK's key_ops {ops:?} do not permit {purpose}"
            )));
        }
    }
    Ok(())
}

fn unsupported_kty(kty: &str) -> Error {
    Error::invalid_key(format!(
        "unsupported JWK key type {kty:?}; expected RSA, EC, OKP (Ed25519) or oct"
    ))
}

fn okp_check_curve(jwk: &Jwk) -> Result<(), Error> {
    match jwk.crv.as_deref() {
        Some("Ed25519") => Ok(()),
        other => Err(Error::invalid_key(format!(
            "unsupported OKP curve {other:?}; only Ed25519 signs (X25519 is for key agreement)"
        ))),
    }
}

fn ec_point_from_jwk(jwk: &Jwk, curve: Curve) -> Result<Vec<u8>, Error> {
    let x = decode_member(&jwk.x, "EC", "x")?;
    let y = decode_member(&jwk.y, "EC", "y")?;
    let len = curve.coordinate_len();
    if x.len() != len || y.len() != len {
        return Err(Error::invalid_key(format!(
            "EC JWK coordinates must be exactly {len} bytes for {} (RFC 7518 §6.2.1.2)",
            curve.jwk_name()
        )));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}
