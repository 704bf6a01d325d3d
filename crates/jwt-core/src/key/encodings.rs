//! Key encodings: PEM documents, DER (PKCS#8, PKCS#1, SEC1,
//! SubjectPublicKeyInfo) and X.509 certificates, in and out.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use zeroize::Zeroizing;

use super::primitives::{ecdsa_signing_alg, rejected, EcPublic, EdPublic, RsaPublic};
use super::{SigningInner, SigningKey, VerifyInner, VerifyingKey};
use crate::algorithm::{Curve, KeyFamily};
use crate::error::Error;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

fn curve_from_oid(oid: &ObjectIdentifier) -> Result<Curve, Error> {
    match *oid {
        OID_P256 => Ok(Curve::P256),
        OID_P384 => Ok(Curve::P384),
        OID_P521 => Ok(Curve::P521),
        other => Err(Error::invalid_key(format!(
            "unsupported elliptic curve (OID {other}); JWS uses P-256, P-384 and P-521"
        ))),
    }
}

impl SigningKey {
    /// Parses a PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`)
    /// or SEC1 (`EC PRIVATE KEY`).
    ///
    /// The document must hold one key: exactly one private key block, plus,
    /// optionally, that same key's public key or certificate (a certificate
    /// chain's issuer certificates after the first are ignored). Blocks that
    /// are not keys (e.g. `EC PARAMETERS`) are skipped. A document with
    /// several different keys is refused rather than silently using one.
    pub fn from_pem(pem_bytes: &[u8]) -> Result<Self, Error> {
        let blocks = parse_pem(pem_bytes)?;
        let candidates = pem_key_candidates(&blocks);
        let private: Vec<&pem::Pem> = candidates
            .iter()
            .copied()
            .filter(|b| is_private_tag(b.tag()))
            .collect();
        let key = match private.as_slice() {
            [one] => Self::from_pem_block(one)?,
            [] => {
                return Err(match candidates.first() {
                    Some(public) => Error::invalid_key(format!(
                        "this PEM holds a {}, which can only verify; signing needs the private key",
                        public.tag().to_lowercase()
                    )),
                    None => Error::invalid_key(format!(
                        "no private key in the PEM (found: {}); expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY",
                        pem_tags(&blocks)
                    )),
                })
            }
            several => {
                return Err(Error::invalid_key(format!(
                    "the PEM holds {} private keys (found: {}); a key file must hold exactly one key. \
                     Split the file and pass the key to sign with",
                    several.len(),
                    pem_tags(&blocks)
                )))
            }
        };
        if candidates.len() > 1 {
            let own = key.thumbprint()?;
            for block in candidates.iter().filter(|b| !is_private_tag(b.tag())) {
                if VerifyingKey::from_pem_block(block)?.thumbprint()? != own {
                    return Err(several_keys(&blocks));
                }
            }
        }
        Ok(key)
    }

    /// One private key block.
    fn from_pem_block(block: &pem::Pem) -> Result<Self, Error> {
        // A legacy (OpenSSL 1.x `genrsa -des3`, `-traditional`) encrypted
        // key: the tag is the plain one, the headers say it is encrypted.
        if block
            .headers()
            .get("Proc-Type")
            .is_some_and(|v| v.to_ascii_uppercase().contains("ENCRYPTED"))
        {
            let tool = if block.tag() == "EC PRIVATE KEY" {
                "ec"
            } else {
                "rsa"
            };
            return Err(Error::invalid_key(format!(
                "the private key is encrypted (a legacy `Proc-Type: 4,ENCRYPTED` PEM); decrypt it \
                 first (e.g. `openssl {tool} -in key.pem -out plain.pem`) and protect the file with \
                 mode 0600 instead"
            )));
        }
        match block.tag() {
            "PRIVATE KEY" => Self::from_pkcs8_der(block.contents()),
            "RSA PRIVATE KEY" => Self::from_pkcs1_der(block.contents()),
            "EC PRIVATE KEY" => Self::from_sec1_der(block.contents()),
            "ENCRYPTED PRIVATE KEY" => Err(Error::invalid_key(
                "the private key is encrypted; decrypt it first (e.g. `openssl pkcs8 -in key.pem -out plain.pem`) \
                 and protect the file with mode 0600 instead",
            )),
            other => Err(Error::invalid_key(format!(
                "a {} PEM block is not a private key; signing needs the private key",
                other.to_lowercase()
            ))),
        }
    }

    /// Parses a DER private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub fn from_der(der_bytes: &[u8]) -> Result<Self, Error> {
        if pkcs8::PrivateKeyInfo::from_der(der_bytes).is_ok() {
            return Self::from_pkcs8_der(der_bytes);
        }
        if pkcs1_private_ok(der_bytes) {
            return Self::from_pkcs1_der(der_bytes);
        }
        if sec1::EcPrivateKey::from_der(der_bytes).is_ok() {
            return Self::from_sec1_der(der_bytes);
        }
        Err(Error::invalid_key(
            "the DER data is not a PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key",
        ))
    }

    fn from_pkcs8_der(der_bytes: &[u8]) -> Result<Self, Error> {
        let info = pkcs8::PrivateKeyInfo::from_der(der_bytes)
            .map_err(|e| Error::invalid_key(format!("invalid PKCS#8 private key: {e}")))?;
        let inner = match info.algorithm.oid {
            OID_RSA => SigningInner::Rsa(Box::new(
                RsaKeyPair::from_pkcs8(der_bytes).map_err(rejected("the RSA private key"))?,
            )),
            OID_EC => {
                let curve_oid = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| Error::invalid_key("the EC private key does not name its curve"))?;
                let curve = curve_from_oid(&curve_oid)?;
                SigningInner::Ec(
                    curve,
                    Box::new(
                        EcdsaKeyPair::from_pkcs8(ecdsa_signing_alg(curve), der_bytes)
                            .map_err(rejected("the EC private key"))?,
                    ),
                )
            }
            OID_ED25519 => SigningInner::Ed25519(Box::new(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der_bytes)
                    .map_err(rejected("the Ed25519 private key"))?,
            )),
            OID_RSA_PSS => {
                return Err(Error::invalid_key(
                    "RSASSA-PSS-only keys (OID 1.2.840.113549.1.1.10) are not supported; use a plain rsaEncryption key for PS256/384/512",
                ))
            }
            other => {
                return Err(Error::invalid_key(format!(
                    "unsupported private key algorithm (OID {other}); use RSA, EC P-256/384/521 or Ed25519"
                )))
            }
        };
        Ok(Self::from_inner(inner))
    }

    fn from_pkcs1_der(der_bytes: &[u8]) -> Result<Self, Error> {
        let kp = RsaKeyPair::from_der(der_bytes).map_err(rejected("the PKCS#1 RSA private key"))?;
        Ok(Self::from_inner(SigningInner::Rsa(Box::new(kp))))
    }

    fn from_sec1_der(der_bytes: &[u8]) -> Result<Self, Error> {
        let parsed = sec1::EcPrivateKey::from_der(der_bytes)
            .map_err(|e| Error::invalid_key(format!("invalid SEC1 EC private key: {e}")))?;
        let curve = match parsed.parameters.and_then(|p| p.named_curve()) {
            Some(oid) => curve_from_oid(&oid)?,
            None => match parsed.private_key.len() {
                32 => Curve::P256,
                48 => Curve::P384,
                66 => Curve::P521,
                n => {
                    return Err(Error::invalid_key(format!(
                        "the SEC1 key does not name its curve and its {n}-byte scalar fits none of P-256/384/521"
                    )))
                }
            },
        };
        let kp = EcdsaKeyPair::from_private_key_der(ecdsa_signing_alg(curve), der_bytes)
            .map_err(rejected("the SEC1 EC private key"))?;
        Ok(Self::from_inner(SigningInner::Ec(curve, Box::new(kp))))
    }

    /// The private key as PKCS#8 DER (zeroized on drop). HMAC keys give their raw bytes.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let err = |_| Error::Crypto {
            what: "PKCS#8 encoding",
        };
        Ok(Zeroizing::new(match &self.inner {
            SigningInner::Hmac(s) => s.bytes.to_vec(),
            SigningInner::Rsa(kp) => kp.as_der().map_err(err)?.as_ref().to_vec(),
            SigningInner::Ec(_, kp) => kp.to_pkcs8v1().map_err(err)?.as_ref().to_vec(),
            SigningInner::Ed25519(kp) => kp.to_pkcs8v1().map_err(err)?.as_ref().to_vec(),
        }))
    }

    /// The private key as a PKCS#8 PEM document (zeroized on drop). Errors for HMAC keys.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, Error> {
        if self.family() == KeyFamily::Hmac {
            return Err(Error::invalid_key(
                "an HMAC secret has no PEM form; store its raw bytes",
            ));
        }
        let der = self.to_pkcs8_der()?;
        Ok(Zeroizing::new(pem::encode_config(
            &pem::Pem::new("PRIVATE KEY", der.to_vec()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )))
    }
}

impl VerifyingKey {
    /// Parses a PEM public key (`PUBLIC KEY`, `RSA PUBLIC KEY`, `CERTIFICATE`),
    /// or a private key (whose public part is used).
    ///
    /// The document must hold one key. A certificate chain is accepted and
    /// its first certificate (the leaf, as in TLS) gives the key; the
    /// certificates after it are the leaf's issuers and are not used. Other
    /// key blocks (a private key with its certificate, a key twice) must all
    /// be the same key. Blocks that are not keys (e.g. `EC PARAMETERS`) are
    /// skipped. A document with several different keys is refused rather
    /// than silently verifying with one of them.
    pub fn from_pem(pem_bytes: &[u8]) -> Result<Self, Error> {
        let blocks = parse_pem(pem_bytes)?;
        let candidates = pem_key_candidates(&blocks);
        let Some((first, rest)) = candidates.split_first() else {
            return Err(Error::invalid_key(format!(
                "no key in the PEM (found: {}); expected PUBLIC KEY, RSA PUBLIC KEY, CERTIFICATE or a private key",
                pem_tags(&blocks)
            )));
        };
        let key = Self::from_pem_block(first)?;
        if !rest.is_empty() {
            let own = key.thumbprint()?;
            for block in rest {
                if Self::from_pem_block(block)?.thumbprint()? != own {
                    return Err(several_keys(&blocks));
                }
            }
        }
        Ok(key)
    }

    /// One key block (a private key gives its public part).
    fn from_pem_block(block: &pem::Pem) -> Result<Self, Error> {
        match block.tag() {
            "PUBLIC KEY" => Self::from_spki_der(block.contents()),
            "RSA PUBLIC KEY" => Ok(Self::from_inner(VerifyInner::Rsa(Box::new(
                RsaPublic::from_der(block.contents())?,
            )))),
            "CERTIFICATE" => Self::from_certificate_der(block.contents()),
            _ => SigningKey::from_pem_block(block).map(|k| k.verifying_key()),
        }
    }

    /// Parses DER: SubjectPublicKeyInfo, an X.509 certificate, PKCS#1 RSA
    /// public key, or a private key.
    pub fn from_der(der_bytes: &[u8]) -> Result<Self, Error> {
        if spki::SubjectPublicKeyInfoRef::from_der(der_bytes).is_ok() {
            return Self::from_spki_der(der_bytes);
        }
        if x509_cert::Certificate::from_der(der_bytes).is_ok() {
            return Self::from_certificate_der(der_bytes);
        }
        if let Ok(k) = RsaPublic::from_der(der_bytes) {
            return Ok(Self::from_inner(VerifyInner::Rsa(Box::new(k))));
        }
        SigningKey::from_der(der_bytes)
            .map(|k| k.verifying_key())
            .map_err(|_| {
                Error::invalid_key(
                    "the DER data is not a public key (SPKI), certificate, PKCS#1 RSA key or private key",
                )
            })
    }

    fn from_certificate_der(der_bytes: &[u8]) -> Result<Self, Error> {
        let cert = x509_cert::Certificate::from_der(der_bytes)
            .map_err(|e| Error::invalid_key(format!("invalid X.509 certificate: {e}")))?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| Error::invalid_key(format!("invalid certificate public key: {e}")))?;
        Self::from_spki_der(&spki)
    }

    fn from_spki_der(der_bytes: &[u8]) -> Result<Self, Error> {
        let info = spki::SubjectPublicKeyInfoRef::from_der(der_bytes)
            .map_err(|e| Error::invalid_key(format!("invalid SubjectPublicKeyInfo: {e}")))?;
        let inner = match info.algorithm.oid {
            OID_RSA => VerifyInner::Rsa(Box::new(RsaPublic::from_der(der_bytes)?)),
            OID_EC => {
                let oid = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| Error::invalid_key("the EC public key does not name its curve"))?;
                let curve = curve_from_oid(&oid)?;
                let point = info.subject_public_key.raw_bytes().to_vec();
                let ec = EcPublic::new(curve, point);
                if ec.parsed.is_none() {
                    return Err(Error::invalid_key(format!(
                        "the EC public key is not a valid point on {}",
                        curve.jwk_name()
                    )));
                }
                VerifyInner::Ec(curve, ec)
            }
            OID_ED25519 => VerifyInner::Ed25519(EdPublic::from_untrusted(
                info.subject_public_key.raw_bytes().to_vec(),
                "the public key",
            )?),
            other => {
                return Err(Error::invalid_key(format!(
                    "unsupported public key algorithm (OID {other}); use RSA, EC P-256/384/521 or Ed25519"
                )))
            }
        };
        Ok(Self::from_inner(inner))
    }
}

fn pkcs1_private_ok(der_bytes: &[u8]) -> bool {
    // Cheap structural test: PKCS#1 RSAPrivateKey is a SEQUENCE starting with
    // INTEGER version 0 and at least 9 integers; let the crypto library decide.
    RsaKeyPair::from_der(der_bytes).is_ok()
}

fn parse_pem(bytes: &[u8]) -> Result<Vec<pem::Pem>, Error> {
    let blocks =
        pem::parse_many(bytes).map_err(|e| Error::invalid_key(format!("invalid PEM: {e}")))?;
    if blocks.is_empty() {
        return Err(Error::invalid_key(
            "no PEM block found (expected -----BEGIN ...----- lines)",
        ));
    }
    Ok(blocks)
}

/// PEM labels of private keys.
fn is_private_tag(tag: &str) -> bool {
    matches!(
        tag,
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY"
    )
}

/// The blocks of a PEM document that each name a key to use: every private
/// and public key block, and the first `CERTIFICATE` (the leaf of a chain;
/// the certificates after it are its issuers, not keys to use). Blocks that
/// are not keys (`EC PARAMETERS`, …) are left out.
fn pem_key_candidates(blocks: &[pem::Pem]) -> Vec<&pem::Pem> {
    let mut seen_certificate = false;
    blocks
        .iter()
        .filter(|b| match b.tag() {
            "CERTIFICATE" => !std::mem::replace(&mut seen_certificate, true),
            "PUBLIC KEY" | "RSA PUBLIC KEY" => true,
            tag => is_private_tag(tag),
        })
        .collect()
}

fn several_keys(blocks: &[pem::Pem]) -> Error {
    Error::invalid_key(format!(
        "the PEM holds several different keys (found: {}); a key file must hold one key, and jwtkit \
         does not guess which one to use. Split the file and pass the one key (a certificate chain \
         is fine: its first certificate, the leaf, is used)",
        pem_tags(blocks)
    ))
}

fn pem_tags(blocks: &[pem::Pem]) -> String {
    blocks
        .iter()
        .map(|b| b.tag().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}
