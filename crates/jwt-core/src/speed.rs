//! The floor for measurements: the bare aws-lc-rs primitive for an
//! algorithm, with its key parsed once, signing and verifying raw bytes.
//!
//! `jwtkit speed` and the criterion benches time jwt-core's public path next
//! to this, so the ratio shows what the JWT layer (JSON, base64url, claims
//! checks) costs on top of the cryptography.

use aws_lc_rs::signature::{self as sig, KeyPair as _};
use serde::{Deserialize, Serialize};

use crate::algorithm::{Algorithm, KeyFamily};
use crate::error::Error;
use crate::key::SigningKey;
use crate::validation::Validation;

/// The claims every measured token carries: the five registered claims a
/// verifier checks (`exp`, `nbf`, `iss`, `aud`, `sub`) and `iat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Expiry (far in the future).
    pub exp: u64,
    /// Not before.
    pub nbf: u64,
    /// Issued at.
    pub iat: u64,
}

impl Default for SampleClaims {
    fn default() -> Self {
        SampleClaims {
            iss: "https://auth.example.com".into(),
            sub: "user-1234".into(),
            aud: "my-api".into(),
            exp: 4_000_000_000,
            nbf: 1_700_000_000,
            iat: 1_700_000_000,
        }
    }
}

/// The validation measured verifications use: `alg`, and `iss`, `aud`, `sub`
/// matching [`SampleClaims`] (`exp` and `nbf` are checked by default).
pub fn sample_validation(alg: Algorithm) -> Validation {
    let c = SampleClaims::default();
    Validation::new([alg])
        .issuer(c.iss)
        .audience(c.aud)
        .subject(c.sub)
}

/// The bare primitive for one algorithm and one key.
pub struct Floor {
    alg: Algorithm,
    inner: Inner,
}

enum Inner {
    Hmac(Box<aws_lc_rs::hmac::Key>),
    Rsa(
        Box<aws_lc_rs::rsa::KeyPair>,
        &'static dyn sig::RsaEncoding,
        Box<sig::ParsedPublicKey>,
    ),
    Ec(Box<sig::EcdsaKeyPair>, Box<sig::ParsedPublicKey>),
    Ed(Box<sig::Ed25519KeyPair>, Box<sig::ParsedPublicKey>),
}

impl std::fmt::Debug for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Floor")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Floor {
    /// Builds the primitive from the same key material as `key`.
    pub fn new(alg: Algorithm, key: &SigningKey) -> Result<Floor, Error> {
        key.check_usable(alg)?;
        let der = key.to_pkcs8_der()?;
        let rejected = |_| Error::Crypto {
            what: "building the reference primitive",
        };
        let inner = match alg.family() {
            KeyFamily::Hmac => {
                let h = match alg {
                    Algorithm::HS384 => aws_lc_rs::hmac::HMAC_SHA384,
                    Algorithm::HS512 => aws_lc_rs::hmac::HMAC_SHA512,
                    _ => aws_lc_rs::hmac::HMAC_SHA256,
                };
                Inner::Hmac(Box::new(aws_lc_rs::hmac::Key::new(h, &der)))
            }
            KeyFamily::Rsa => {
                let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).map_err(rejected)?;
                let (enc, params): (&'static dyn sig::RsaEncoding, &'static sig::RsaParameters) =
                    match alg {
                        Algorithm::RS384 => {
                            (&sig::RSA_PKCS1_SHA384, &sig::RSA_PKCS1_2048_8192_SHA384)
                        }
                        Algorithm::RS512 => {
                            (&sig::RSA_PKCS1_SHA512, &sig::RSA_PKCS1_2048_8192_SHA512)
                        }
                        Algorithm::PS256 => (&sig::RSA_PSS_SHA256, &sig::RSA_PSS_2048_8192_SHA256),
                        Algorithm::PS384 => (&sig::RSA_PSS_SHA384, &sig::RSA_PSS_2048_8192_SHA384),
                        Algorithm::PS512 => (&sig::RSA_PSS_SHA512, &sig::RSA_PSS_2048_8192_SHA512),
                        _ => (&sig::RSA_PKCS1_SHA256, &sig::RSA_PKCS1_2048_8192_SHA256),
                    };
                let pk = sig::ParsedPublicKey::new(params, kp.public_key().as_ref())
                    .map_err(rejected)?;
                Inner::Rsa(Box::new(kp), enc, Box::new(pk))
            }
            KeyFamily::Ec(_) => {
                let (s, v): (
                    &'static sig::EcdsaSigningAlgorithm,
                    &'static sig::EcdsaVerificationAlgorithm,
                ) = match alg {
                    Algorithm::ES384 => (
                        &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                        &sig::ECDSA_P384_SHA384_FIXED,
                    ),
                    Algorithm::ES512 => (
                        &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
                        &sig::ECDSA_P521_SHA512_FIXED,
                    ),
                    _ => (
                        &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                        &sig::ECDSA_P256_SHA256_FIXED,
                    ),
                };
                let kp = sig::EcdsaKeyPair::from_pkcs8(s, &der).map_err(rejected)?;
                let pk =
                    sig::ParsedPublicKey::new(v, kp.public_key().as_ref()).map_err(rejected)?;
                Inner::Ec(Box::new(kp), Box::new(pk))
            }
            KeyFamily::Ed25519 => {
                let kp = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(rejected)?;
                let pk = sig::ParsedPublicKey::new(&sig::ED25519, kp.public_key().as_ref())
                    .map_err(rejected)?;
                Inner::Ed(Box::new(kp), Box::new(pk))
            }
        };
        Ok(Floor { alg, inner })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Signs `message` with the bare primitive.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = |_| Error::Crypto { what: "signing" };
        Ok(match &self.inner {
            Inner::Hmac(k) => aws_lc_rs::hmac::sign(k, message).as_ref().to_vec(),
            Inner::Rsa(kp, enc, _) => {
                let mut out = vec![0; kp.public_modulus_len()];
                kp.sign(
                    *enc,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    message,
                    &mut out,
                )
                .map_err(failed)?;
                out
            }
            Inner::Ec(kp, _) => kp
                .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            Inner::Ed(kp, _) => kp.sign(message).as_ref().to_vec(),
        })
    }

    /// Verifies `signature` over `message` with the bare primitive.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.inner {
            Inner::Hmac(k) => aws_lc_rs::hmac::verify(k, message, signature).is_ok(),
            Inner::Rsa(_, _, pk) | Inner::Ec(_, pk) | Inner::Ed(_, pk) => {
                pk.verify_sig(message, signature).is_ok()
            }
        }
    }
}
