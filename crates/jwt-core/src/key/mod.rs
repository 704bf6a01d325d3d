//! Keys, parsed once into ready crypto objects.
//!
//! [`SigningKey`] and [`VerifyingKey`] are built from PEM, DER, JWK or raw
//! secrets. Parsing happens here, once; signing and verifying reuse the parsed
//! objects (RSA public keys are pre-parsed per algorithm on first use).
//!
//! The two key types and their operations live here; the rest is split by
//! concept:
//! - `encodings`: PEM, DER, PKCS#8, PKCS#1, SEC1 and X.509 parsing and export;
//! - `jwk`: JWK import and export, and thumbprints (the JWK *format* itself is
//!   `crate::jwk`, which knows nothing about crypto);
//! - `strength`: what makes a key too weak or the wrong thing to use
//!   (HMAC length, RSA size, key material given as a secret, small-order
//!   Ed25519 points);
//! - `primitives`: the aws-lc-rs objects and algorithm mappings.

mod encodings;
mod jwk;
mod primitives;
mod strength;

use std::fmt;

use aws_lc_rs::hmac;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use self::primitives::{
    ecdsa_signing_alg, rsa_padding, rsa_verify_alg, EcPublic, EdPublic, HmacSecret, RsaPublic,
};
pub use self::strength::MIN_RSA_BITS;
use self::strength::{check_hmac_len, check_rsa_bits};
use crate::algorithm::{Algorithm, Curve, KeyFamily};
use crate::error::Error;

/// The crypto object behind a [`SigningKey`].
enum SigningInner {
    Hmac(Box<HmacSecret>),
    Rsa(Box<RsaKeyPair>),
    Ec(Curve, Box<EcdsaKeyPair>),
    Ed25519(Box<Ed25519KeyPair>),
}

/// A private key (or HMAC secret), ready to sign.
///
/// `Debug` shows the key type and `kid`, never key material.
pub struct SigningKey {
    inner: SigningInner,
    kid: Option<String>,
    alg: Option<Algorithm>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("type", &self.family().name())
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HMAC secret. Its length is checked against the algorithm when it is
    /// used: at least 32/48/64 bytes for HS256/384/512 (RFC 7518 §3.2).
    pub fn hmac(secret: &[u8]) -> Result<Self, Error> {
        Ok(SigningKey {
            inner: SigningInner::Hmac(Box::new(HmacSecret::new(secret)?)),
            kid: None,
            alg: None,
        })
    }

    /// Generates a fresh key for `alg`: 64 random bytes for HS*, RSA-2048 for
    /// RS*/PS*, the algorithm's curve for ES*, Ed25519 for EdDSA.
    pub fn generate(alg: Algorithm) -> Result<Self, Error> {
        let inner = match alg.family() {
            KeyFamily::Hmac => {
                let mut secret = Zeroizing::new(vec![0u8; 64]);
                aws_lc_rs::rand::fill(&mut secret).map_err(|_| Error::Crypto {
                    what: "random number generation",
                })?;
                SigningInner::Hmac(Box::new(HmacSecret::new(&secret)?))
            }
            KeyFamily::Rsa => SigningInner::Rsa(Box::new(
                RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| {
                    Error::Crypto {
                        what: "RSA key generation",
                    }
                })?,
            )),
            KeyFamily::Ec(curve) => SigningInner::Ec(
                curve,
                Box::new(
                    EcdsaKeyPair::generate(ecdsa_signing_alg(curve)).map_err(|_| {
                        Error::Crypto {
                            what: "EC key generation",
                        }
                    })?,
                ),
            ),
            KeyFamily::Ed25519 => {
                SigningInner::Ed25519(Box::new(Ed25519KeyPair::generate().map_err(|_| {
                    Error::Crypto {
                        what: "Ed25519 key generation",
                    }
                })?))
            }
        };
        Ok(Self::from_inner(inner))
    }

    fn from_inner(inner: SigningInner) -> Self {
        SigningKey {
            inner,
            kid: None,
            alg: None,
        }
    }

    /// Sets the key id used in token headers.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Binds the key to exactly one algorithm.
    pub fn with_algorithm(mut self, alg: Algorithm) -> Result<Self, Error> {
        self.check_family(alg)?;
        self.alg = Some(alg);
        Ok(self)
    }

    /// The explicit key id, if one was set or came from a JWK.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is bound to, if any.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The key family.
    pub fn family(&self) -> KeyFamily {
        match &self.inner {
            SigningInner::Hmac(_) => KeyFamily::Hmac,
            SigningInner::Rsa(_) => KeyFamily::Rsa,
            SigningInner::Ec(c, _) => KeyFamily::Ec(*c),
            SigningInner::Ed25519(_) => KeyFamily::Ed25519,
        }
    }

    /// The algorithm to use when none is given: the bound one, or the only
    /// one the key type allows (ES*, EdDSA); RSA defaults to RS256, HMAC to HS256.
    pub fn default_algorithm(&self) -> Algorithm {
        self.alg.unwrap_or(self.family().default_algorithm())
    }

    pub(crate) fn check_family(&self, alg: Algorithm) -> Result<(), Error> {
        check_family(self.family(), alg)?;
        match self.alg {
            Some(bound) if bound != alg => Err(Error::InvalidAlgorithm {
                reason: format!(
                    "the key is bound to {bound} (its JWK `alg`) and cannot be used with {alg}"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Checks that the key may sign with `alg`: right family, strong enough.
    pub fn check_usable(&self, alg: Algorithm) -> Result<(), Error> {
        self.check_family(alg)?;
        match &self.inner {
            SigningInner::Hmac(s) => check_hmac_len(s.bytes.len(), alg),
            SigningInner::Rsa(kp) => check_rsa_bits(kp.public_modulus_len() * 8),
            _ => Ok(()),
        }
    }

    /// Signs `message` with `alg`. The caller is responsible for having checked
    /// [`check_usable`](Self::check_usable) once; [`Signer`](crate::Signer) does.
    pub fn sign_raw(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.check_family(alg)?;
        match &self.inner {
            SigningInner::Hmac(s) => Ok(hmac::sign(s.key(alg), message).as_ref().to_vec()),
            SigningInner::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(
                    rsa_padding(alg),
                    &aws_lc_rs::rand::SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|_| Error::Crypto {
                    what: "RSA signing",
                })?;
                Ok(sig)
            }
            SigningInner::Ec(_, kp) => kp
                .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Crypto {
                    what: "ECDSA signing",
                }),
            SigningInner::Ed25519(kp) => Ok(kp.sign(message).as_ref().to_vec()),
        }
    }

    /// The matching public key (for HMAC: the same secret).
    pub fn verifying_key(&self) -> VerifyingKey {
        let inner = match &self.inner {
            SigningInner::Hmac(s) => VerifyInner::Hmac(s.clone()),
            SigningInner::Rsa(kp) => {
                let pk = kp.public_key();
                VerifyInner::Rsa(Box::new(RsaPublic::from_der_unchecked(pk.as_ref())))
            }
            SigningInner::Ec(c, kp) => {
                VerifyInner::Ec(*c, EcPublic::new(*c, kp.public_key().as_ref().to_vec()))
            }
            SigningInner::Ed25519(kp) => {
                VerifyInner::Ed25519(EdPublic::new(kp.public_key().as_ref().to_vec()))
            }
        };
        VerifyingKey {
            inner,
            kid: self.kid.clone(),
            alg: self.alg,
        }
    }

    /// The raw HMAC secret, for HMAC keys only.
    pub fn hmac_secret(&self) -> Option<&[u8]> {
        match &self.inner {
            SigningInner::Hmac(s) => Some(&s.bytes),
            _ => None,
        }
    }
}

fn check_family(family: KeyFamily, alg: Algorithm) -> Result<(), Error> {
    if family == alg.family() {
        return Ok(());
    }
    let hint = match (family, alg.family()) {
        (KeyFamily::Hmac, _) => "an HMAC secret only works with HS256/HS384/HS512",
        (_, KeyFamily::Hmac) => {
            "HS* needs a shared secret; an asymmetric key (public or private) is never an HMAC secret"
        }
        (KeyFamily::Ec(c), KeyFamily::Ec(_)) => match c {
            Curve::P256 => "a P-256 key signs ES256 only",
            Curve::P384 => "a P-384 key signs ES384 only",
            Curve::P521 => "a P-521 key signs ES512 only",
        },
        (KeyFamily::Rsa, _) => "an RSA key works with RS256/384/512 and PS256/384/512",
        (KeyFamily::Ec(_), _) => "an EC key works with the ES* algorithm of its curve",
        (KeyFamily::Ed25519, _) => "an Ed25519 key works with EdDSA only",
    };
    Err(Error::IncompatibleKey {
        alg,
        key_type: family.name(),
        hint,
    })
}

#[derive(Clone)]
enum VerifyInner {
    Hmac(Box<HmacSecret>),
    Rsa(Box<RsaPublic>),
    Ec(Curve, EcPublic),
    Ed25519(EdPublic),
}

/// A public key (or HMAC secret), ready to verify. Cloning shares nothing
/// mutable and keeps the pre-parsed crypto objects.
#[derive(Clone)]
pub struct VerifyingKey {
    inner: VerifyInner,
    kid: Option<String>,
    alg: Option<Algorithm>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("type", &self.family().name())
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An HMAC secret (refuses PEM/JWK text, so a public key can never become a secret).
    pub fn hmac(secret: &[u8]) -> Result<Self, Error> {
        Ok(VerifyingKey {
            inner: VerifyInner::Hmac(Box::new(HmacSecret::new(secret)?)),
            kid: None,
            alg: None,
        })
    }

    fn from_inner(inner: VerifyInner) -> Self {
        VerifyingKey {
            inner,
            kid: None,
            alg: None,
        }
    }

    /// Sets the key id.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Binds the key to exactly one algorithm.
    pub fn with_algorithm(mut self, alg: Algorithm) -> Result<Self, Error> {
        check_family(self.family(), alg)?;
        self.alg = Some(alg);
        Ok(self)
    }

    /// The explicit key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is bound to, if any.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The key family.
    pub fn family(&self) -> KeyFamily {
        match &self.inner {
            VerifyInner::Hmac(_) => KeyFamily::Hmac,
            VerifyInner::Rsa(_) => KeyFamily::Rsa,
            VerifyInner::Ec(c, _) => KeyFamily::Ec(*c),
            VerifyInner::Ed25519(_) => KeyFamily::Ed25519,
        }
    }

    /// RSA modulus size in bits (None for other key types).
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.inner {
            VerifyInner::Rsa(r) => Some(r.bits),
            _ => None,
        }
    }

    /// Checks that the key may verify `alg`: the right family, the bound
    /// algorithm if it has one, and strong enough (HMAC secrets at least as
    /// long as the hash, RSA keys of at least [`MIN_RSA_BITS`]).
    ///
    /// Legacy weak keys are checked with
    /// [`dangerous::check_usable_allowing_weak_keys`](crate::dangerous::check_usable_allowing_weak_keys).
    pub fn check_usable(&self, alg: Algorithm) -> Result<(), Error> {
        self.check_usable_with(alg, false)
    }

    /// [`check_usable`](Self::check_usable); `allow_weak` permits short HMAC
    /// secrets and 1024–2047-bit RSA keys (RS256/RS512 only). Reached only
    /// through [`dangerous`](crate::dangerous), never through a public `bool`.
    pub(crate) fn check_usable_with(&self, alg: Algorithm, allow_weak: bool) -> Result<(), Error> {
        check_family(self.family(), alg)?;
        if let Some(bound) = self.alg {
            if bound != alg {
                return Err(Error::InvalidAlgorithm {
                    reason: format!(
                        "the key{} is bound to {bound}; the token uses {alg}",
                        self.kid_suffix()
                    ),
                });
            }
        }
        if allow_weak {
            return match &self.inner {
                // aws-lc verifies 1024-2047-bit keys in its legacy modes,
                // RS256 and RS512 only, and nothing below 1024 bits.
                VerifyInner::Rsa(r) if r.bits < 1024 => Err(Error::WeakKey {
                    reason: format!(
                        "the RSA key has {} bits; below 1024 bits nothing can be verified, \
                         even with weak keys allowed",
                        r.bits
                    ),
                }),
                VerifyInner::Rsa(r)
                    if r.bits < MIN_RSA_BITS && rsa_verify_alg(alg, true).is_none() =>
                {
                    Err(Error::WeakKey {
                        reason: format!(
                            "the RSA key has {} bits; with weak keys allowed, keys of 1024 to \
                             {} bits verify RS256 and RS512 only (aws-lc's legacy modes), not {alg}",
                            r.bits,
                            MIN_RSA_BITS - 1
                        ),
                    })
                }
                _ => Ok(()),
            };
        }
        match &self.inner {
            VerifyInner::Hmac(s) => check_hmac_len(s.bytes.len(), alg),
            VerifyInner::Rsa(r) => check_rsa_bits(r.bits),
            _ => Ok(()),
        }
    }

    fn kid_suffix(&self) -> String {
        self.kid
            .as_deref()
            .map(|k| format!(" `{k}`"))
            .unwrap_or_default()
    }

    /// Verifies `signature` over `message` with `alg`. Checks the family and
    /// binding; strength is checked once, when a [`Verifier`](crate::Verifier) is built.
    pub fn verify_raw(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        self.verify_raw_inner(alg, message, signature, false)
    }

    pub(crate) fn verify_raw_inner(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
        legacy: bool,
    ) -> Result<(), Error> {
        let ok = match &self.inner {
            VerifyInner::Hmac(s) if alg.is_symmetric() => {
                hmac::verify(s.key(alg), message, signature).is_ok()
            }
            VerifyInner::Rsa(r)
                if alg.family() == KeyFamily::Rsa && !legacy && r.bits < MIN_RSA_BITS =>
            {
                return check_rsa_bits(r.bits)
            }
            VerifyInner::Rsa(r) if alg.family() == KeyFamily::Rsa => match r.parsed(alg, legacy) {
                Some(pk) => pk.verify_sig(message, signature).is_ok(),
                None => {
                    return check_rsa_bits(r.bits).and(Err(Error::InvalidSignature {
                        kid: self.kid.clone(),
                    }))
                }
            },
            VerifyInner::Ec(c, ec) if alg.family() == KeyFamily::Ec(*c) => ec
                .parsed
                .as_ref()
                .is_some_and(|pk| pk.verify_sig(message, signature).is_ok()),
            VerifyInner::Ed25519(ed) if alg == Algorithm::EdDSA => ed
                .parsed
                .as_ref()
                .is_some_and(|pk| pk.verify_sig(message, signature).is_ok()),
            _ => {
                return Err(Error::InvalidAlgorithm {
                    reason: format!(
                        "the token uses {alg} but the key{} is an {} key",
                        self.kid_suffix(),
                        self.family().name()
                    ),
                })
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidSignature {
                kid: self.kid.clone(),
            })
        }
    }

    /// The explicit `kid`, or else the RFC 7638 thumbprint.
    pub fn kid_or_thumbprint(&self) -> Result<String, Error> {
        match &self.kid {
            Some(k) => Ok(k.clone()),
            None => self.thumbprint(),
        }
    }
}
