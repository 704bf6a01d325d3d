//! The aws-lc-rs side: algorithm mappings and the parsed crypto objects
//! each key holds, so nothing is parsed again per token.

use std::sync::OnceLock;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, ParsedPublicKey};
use zeroize::Zeroizing;

use super::strength::key_material_kind;
use super::strength::{ed25519_has_small_order, MIN_RSA_BITS};
use crate::algorithm::{Algorithm, Curve};
use crate::error::Error;

pub(super) fn ecdsa_signing_alg(curve: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

pub(super) fn ecdsa_verify_alg(curve: Curve) -> &'static signature::EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
    }
}

pub(super) fn rsa_padding(alg: Algorithm) -> &'static dyn signature::RsaEncoding {
    match alg {
        Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_SHA512,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

pub(super) fn rsa_verify_alg(
    alg: Algorithm,
    legacy: bool,
) -> Option<&'static signature::RsaParameters> {
    // PSS salt length defaults to the digest length, as RFC 7518 §3.5 requires.
    Some(match (alg, legacy) {
        (Algorithm::RS256, false) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (Algorithm::RS384, false) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (Algorithm::RS512, false) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (Algorithm::PS256, false) => &signature::RSA_PSS_2048_8192_SHA256,
        (Algorithm::PS384, false) => &signature::RSA_PSS_2048_8192_SHA384,
        (Algorithm::PS512, false) => &signature::RSA_PSS_2048_8192_SHA512,
        (Algorithm::RS256, true) => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        (Algorithm::RS512, true) => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        _ => return None,
    })
}

fn rsa_slot(alg: Algorithm) -> usize {
    alg.index() - Algorithm::RS256.index()
}

/// Bit length of a big-endian unsigned integer.
fn bit_len(be: &[u8]) -> usize {
    let trimmed: &[u8] = match be.iter().position(|&b| b != 0) {
        Some(i) => &be[i..],
        None => return 0,
    };
    trimmed.len() * 8 - trimmed[0].leading_zeros() as usize
}

pub(super) fn rejected(what: &str) -> impl Fn(aws_lc_rs::error::KeyRejected) -> Error + '_ {
    move |e| {
        if e.description_() == "TooSmall" {
            Error::WeakKey {
                reason: format!(
                    "{what} is too small; RSA keys need at least {MIN_RSA_BITS} bits. Generate a new \
                     key with `jwtkit keys generate --alg RS256`"
                ),
            }
        } else if e.description_() == "InconsistentComponents" {
            Error::invalid_key(format!(
                "{what}'s private part does not belong to its public part: the key is corrupt or \
                 was assembled from two keys; export the key pair again"
            ))
        } else {
            Error::invalid_key(format!("{what} was rejected by the crypto library ({e})"))
        }
    }
}

/// An HMAC secret with its HMAC contexts precomputed for each hash.
pub(super) struct HmacSecret {
    pub(super) bytes: Zeroizing<Vec<u8>>,
    pub(super) keys: [hmac::Key; 3],
}

impl HmacSecret {
    pub(super) fn new(secret: &[u8]) -> Result<Self, Error> {
        if secret.is_empty() {
            return Err(Error::WeakKey {
                reason: "the HMAC secret is empty".into(),
            });
        }
        if let Some(what) = key_material_kind(secret) {
            return Err(Error::invalid_key(format!(
                "this HMAC secret is {what}, not a secret: a key must never be used as an HMAC \
                 secret (with a public key that is the classic algorithm-confusion attack, RFC 8725 \
                 §2.1). Load it as a key instead (`--key FILE`, `VerifyingKey::from_pem`/`from_der`/\
                 `from_jwk`), or use a random secret (`jwtkit keys generate --alg HS256`)"
            )));
        }
        Ok(HmacSecret {
            bytes: Zeroizing::new(secret.to_vec()),
            keys: [
                hmac::Key::new(hmac::HMAC_SHA256, secret),
                hmac::Key::new(hmac::HMAC_SHA384, secret),
                hmac::Key::new(hmac::HMAC_SHA512, secret),
            ],
        })
    }

    pub(super) fn key(&self, alg: Algorithm) -> &hmac::Key {
        match alg {
            Algorithm::HS384 => &self.keys[1],
            Algorithm::HS512 => &self.keys[2],
            _ => &self.keys[0],
        }
    }
}

impl Clone for HmacSecret {
    fn clone(&self) -> Self {
        HmacSecret {
            bytes: self.bytes.clone(),
            keys: self.keys.clone(),
        }
    }
}

/// An RSA public key, pre-parsed per algorithm on first use.
#[derive(Clone)]
pub(super) struct RsaPublic {
    pub(super) der: Vec<u8>,
    pub(super) n: Vec<u8>,
    pub(super) e: Vec<u8>,
    pub(super) bits: usize,
    /// Per algorithm, strict (0–5) and legacy weak-key verification (6–11):
    /// separate slots, so one caller's opt-out never leaks into another's check.
    pub(super) parsed: [OnceLock<Option<ParsedPublicKey>>; 12],
}

impl RsaPublic {
    pub(super) fn from_der(der_bytes: &[u8]) -> Result<Self, Error> {
        let pk = aws_lc_rs::rsa::PublicKey::from_der(der_bytes)
            .map_err(rejected("the RSA public key"))?;
        Ok(Self::from_public(&pk))
    }

    /// For keys that came from a parsed key pair.
    pub(super) fn from_der_unchecked(pkcs1: &[u8]) -> Self {
        match Self::from_der(pkcs1) {
            Ok(k) => k,
            // A key pair's own public key always re-parses; keep an empty key
            // (which verifies nothing) rather than panic if it ever did not.
            Err(_) => RsaPublic {
                der: Vec::new(),
                n: Vec::new(),
                e: Vec::new(),
                bits: 0,
                parsed: Default::default(),
            },
        }
    }

    fn from_public(pk: &aws_lc_rs::rsa::PublicKey) -> Self {
        let n = pk.modulus().big_endian_without_leading_zero().to_vec();
        let e = pk.exponent().big_endian_without_leading_zero().to_vec();
        RsaPublic {
            der: pk.as_ref().to_vec(),
            bits: bit_len(&n),
            n,
            e,
            parsed: Default::default(),
        }
    }

    pub(super) fn parsed(&self, alg: Algorithm, legacy: bool) -> Option<&ParsedPublicKey> {
        let legacy = legacy && self.bits < MIN_RSA_BITS;
        let slot = &self.parsed[rsa_slot(alg) + if legacy { 6 } else { 0 }];
        slot.get_or_init(|| {
            let params = rsa_verify_alg(alg, legacy)?;
            ParsedPublicKey::new(params, &self.der).ok()
        })
        .as_ref()
    }
}

#[derive(Clone)]
pub(super) struct EcPublic {
    pub(super) point: Vec<u8>,
    pub(super) parsed: Option<ParsedPublicKey>,
}

impl EcPublic {
    pub(super) fn new(curve: Curve, point: Vec<u8>) -> Self {
        let parsed = ParsedPublicKey::new(ecdsa_verify_alg(curve), &point).ok();
        EcPublic { point, parsed }
    }
}

#[derive(Clone)]
pub(super) struct EdPublic {
    pub(super) raw: Vec<u8>,
    pub(super) parsed: Option<ParsedPublicKey>,
}

impl EdPublic {
    pub(super) fn new(raw: Vec<u8>) -> Self {
        let parsed = ParsedPublicKey::new(&signature::ED25519, &raw).ok();
        EdPublic { raw, parsed }
    }

    /// A public key from outside (PEM, DER, JWK): 32 bytes, a valid point,
    /// and not of small order. `form` names where it came from, for errors.
    pub(super) fn from_untrusted(raw: Vec<u8>, form: &str) -> Result<Self, Error> {
        let Ok(bytes) = <&[u8; 32]>::try_from(raw.as_slice()) else {
            return Err(Error::invalid_key(format!(
                "{form} is not a valid Ed25519 public key: it is {} bytes, an Ed25519 public key is 32",
                raw.len()
            )));
        };
        if ed25519_has_small_order(bytes) {
            return Err(Error::invalid_key(format!(
                "{form} is an Ed25519 public key of small order (the identity or another of the 8 \
                 low-order points): with it one fixed signature verifies every message, so it is \
                 refused, as libsodium does. Use the issuer's real public key"
            )));
        }
        let ed = EdPublic::new(raw);
        if ed.parsed.is_none() {
            return Err(Error::invalid_key(format!(
                "{form} is not a valid Ed25519 public key (not a point on the curve)"
            )));
        }
        Ok(ed)
    }
}
