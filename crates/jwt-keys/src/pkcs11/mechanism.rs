//! What each JOSE algorithm is in PKCS#11: the key-pair generation and
//! signing mechanisms, the key templates, the public key's attributes as a
//! JWK, and the signature's form.
//!
//! | alg | key pair | signs with | input |
//! |---|---|---|---|
//! | RS256/384/512 | `CKM_RSA_PKCS_KEY_PAIR_GEN` | `CKM_SHA256/384/512_RSA_PKCS` | the signing input |
//! | PS256/384/512 | `CKM_RSA_PKCS_KEY_PAIR_GEN` | `CKM_SHA256/384/512_RSA_PKCS_PSS`, MGF1 of the same hash, salt = hash length | the signing input |
//! | ES256/384/512 | `CKM_EC_KEY_PAIR_GEN` on P-256/384/521 | `CKM_ECDSA` | its SHA-256/384/512, computed here |
//! | EdDSA | `CKM_EC_EDWARDS_KEY_PAIR_GEN` on Ed25519 | `CKM_EDDSA` | the signing input |

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType};
use jwt_core::{Algorithm, Jwk, KeyFamily, VerifyingKey};

/// DER of the curve OIDs, as `CKA_EC_PARAMS` holds them.
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
/// id-Ed25519 (RFC 8410).
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// The PrintableString "edwards25519", which PKCS#11 3.0 also allows.
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

/// The RSA public exponent of new keys (F4).
const RSA_EXPONENT: &[u8] = &[0x01, 0x00, 0x01];

/// The mechanisms an algorithm needs: key-pair generation, then signing.
pub(crate) fn mechanisms(alg: Algorithm) -> Option<(MechanismType, MechanismType)> {
    Some(match alg {
        Algorithm::RS256 => (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::SHA256_RSA_PKCS,
        ),
        Algorithm::RS384 => (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::SHA384_RSA_PKCS,
        ),
        Algorithm::RS512 => (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::SHA512_RSA_PKCS,
        ),
        Algorithm::PS256 => (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::SHA256_RSA_PKCS_PSS,
        ),
        Algorithm::PS384 => (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::SHA384_RSA_PKCS_PSS,
        ),
        Algorithm::PS512 => (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::SHA512_RSA_PKCS_PSS,
        ),
        Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => {
            (MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA)
        }
        Algorithm::EdDSA => (
            MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            MechanismType::EDDSA,
        ),
        _ => return None,
    })
}

/// The signing mechanism with its parameters.
pub(crate) fn sign_mechanism(alg: Algorithm) -> Option<Mechanism<'static>> {
    // RFC 7518 §3.5: MGF1 with the same hash, a salt as long as the hash.
    let pss = |hash_alg, mgf, len: u64| PkcsPssParams {
        hash_alg,
        mgf,
        s_len: len.into(),
    };
    Some(match alg {
        Algorithm::RS256 => Mechanism::Sha256RsaPkcs,
        Algorithm::RS384 => Mechanism::Sha384RsaPkcs,
        Algorithm::RS512 => Mechanism::Sha512RsaPkcs,
        Algorithm::PS256 => {
            Mechanism::Sha256RsaPkcsPss(pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32))
        }
        Algorithm::PS384 => {
            Mechanism::Sha384RsaPkcsPss(pss(MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48))
        }
        Algorithm::PS512 => {
            Mechanism::Sha512RsaPkcsPss(pss(MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 64))
        }
        Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => Mechanism::Ecdsa,
        Algorithm::EdDSA => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
        _ => return None,
    })
}

/// What the token signs: the signing input, or for ES* its hash (many
/// tokens have no combined `CKM_ECDSA_SHA*` mechanism, and a digest
/// crosses the PKCS#11 boundary faster than a long input).
pub(crate) fn to_be_signed(alg: Algorithm, signing_input: &[u8]) -> Vec<u8> {
    let digest = match alg {
        Algorithm::ES256 => &aws_lc_rs::digest::SHA256,
        Algorithm::ES384 => &aws_lc_rs::digest::SHA384,
        Algorithm::ES512 => &aws_lc_rs::digest::SHA512,
        _ => return signing_input.to_vec(),
    };
    aws_lc_rs::digest::digest(digest, signing_input)
        .as_ref()
        .to_vec()
}

/// `(CKA_EC_PARAMS, the length of the public point CKA_EC_POINT holds,
/// the length of one of R and S)` of an EC or Ed25519 algorithm.
fn curve(alg: Algorithm) -> Option<(&'static [u8], usize, usize)> {
    Some(match alg {
        Algorithm::ES256 => (P256, 65, 32),
        Algorithm::ES384 => (P384, 97, 48),
        Algorithm::ES512 => (P521, 133, 66),
        Algorithm::EdDSA => (ED25519_OID, 32, 32),
        _ => return None,
    })
}

/// The curve's name in messages.
pub(crate) fn key_description(alg: Algorithm, rsa_bits: u32) -> String {
    match alg {
        Algorithm::ES256 => "an EC P-256 key".into(),
        Algorithm::ES384 => "an EC P-384 key".into(),
        Algorithm::ES512 => "an EC P-521 key".into(),
        Algorithm::EdDSA => "an Ed25519 key".into(),
        _ => format!("an RSA-{rsa_bits} key"),
    }
}

/// The templates of a new key pair: both halves on the token
/// (`CKA_TOKEN`), private to the logged-in user (`CKA_PRIVATE`: without the
/// PIN no one lists, reads, changes or deletes them), named by `label` and
/// `id`. The private half is `CKA_SENSITIVE` and not `CKA_EXTRACTABLE` (it
/// never leaves the token, not even wrapped) and may only sign; the public
/// half may only verify.
pub(crate) fn templates(
    alg: Algorithm,
    rsa_bits: u32,
    label: &str,
    id: &[u8],
) -> Option<(Vec<Attribute>, Vec<Attribute>)> {
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Verify(true),
        // Only verify, for every key type: tokens (SoftHSM among them)
        // default these to true when the template leaves them out.
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        // Only sign, for every key type (see above).
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    match alg.family() {
        KeyFamily::Rsa => {
            public.push(Attribute::ModulusBits(u64::from(rsa_bits).into()));
            public.push(Attribute::PublicExponent(RSA_EXPONENT.to_vec()));
        }
        KeyFamily::Ec(_) | KeyFamily::Ed25519 => {
            public.push(Attribute::EcParams(curve(alg)?.0.to_vec()));
        }
        KeyFamily::Hmac => return None,
    }
    Some((public, private))
}

/// The public key attributes to read for `alg`.
pub(crate) fn public_attributes(alg: Algorithm) -> Vec<AttributeType> {
    match alg.family() {
        KeyFamily::Rsa => vec![AttributeType::Modulus, AttributeType::PublicExponent],
        _ => vec![AttributeType::EcParams, AttributeType::EcPoint],
    }
}

/// The point in `CKA_EC_POINT`: DER `OCTET STRING` wrapped (what the
/// specification asks) or raw (what some tokens return), told apart by
/// length, which is fixed for a curve.
fn unwrap_point(bytes: &[u8], expected: usize) -> Option<&[u8]> {
    let uncompressed = |p: &[u8]| expected == 32 || p.first() == Some(&0x04);
    if bytes.len() == expected && uncompressed(bytes) {
        return Some(bytes);
    }
    let header: &[u8] = if expected < 0x80 {
        &[0x04, expected as u8]
    } else {
        &[0x04, 0x81, expected as u8]
    };
    bytes
        .strip_prefix(header)
        .filter(|p| p.len() == expected && uncompressed(p))
}

fn b64(bytes: &[u8]) -> String {
    jwt_core::b64::encode(bytes)
}

/// The public key of `kid` from its attributes, as a JWK bound to `alg`.
/// The error says what does not fit.
pub(crate) fn parse_public(
    alg: Algorithm,
    kid: &str,
    attributes: &[Attribute],
) -> Result<VerifyingKey, String> {
    let get = |t: AttributeType| {
        attributes.iter().find_map(|a| match (t, a) {
            (AttributeType::Modulus, Attribute::Modulus(v))
            | (AttributeType::PublicExponent, Attribute::PublicExponent(v))
            | (AttributeType::EcParams, Attribute::EcParams(v))
            | (AttributeType::EcPoint, Attribute::EcPoint(v)) => Some(v.as_slice()),
            _ => None,
        })
    };
    let missing = |what: &str| format!("the public key object has no {what}");
    let jwk = match alg.family() {
        KeyFamily::Rsa => {
            let strip = |v: &[u8]| {
                let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
                v[start..].to_vec()
            };
            let n = strip(get(AttributeType::Modulus).ok_or_else(|| missing("CKA_MODULUS"))?);
            let e = strip(
                get(AttributeType::PublicExponent).ok_or_else(|| missing("CKA_PUBLIC_EXPONENT"))?,
            );
            Jwk {
                kty: "RSA".into(),
                n: Some(b64(&n)),
                e: Some(b64(&e)),
                ..Jwk::default()
            }
        }
        KeyFamily::Ec(_) | KeyFamily::Ed25519 => {
            let (params, len, _) =
                curve(alg).ok_or_else(|| format!("{alg} is not an EC algorithm"))?;
            let found = get(AttributeType::EcParams).ok_or_else(|| missing("CKA_EC_PARAMS"))?;
            let ok = found == params || (alg == Algorithm::EdDSA && found == ED25519_NAME);
            if !ok {
                return Err(format!(
                    "its curve (CKA_EC_PARAMS {}) is not the one {alg} needs",
                    hex(found)
                ));
            }
            let raw = get(AttributeType::EcPoint).ok_or_else(|| missing("CKA_EC_POINT"))?;
            let point = unwrap_point(raw, len).ok_or_else(|| {
                format!(
                    "its CKA_EC_POINT ({} bytes) is not a {len}-byte point, raw or DER-wrapped",
                    raw.len()
                )
            })?;
            if alg == Algorithm::EdDSA {
                Jwk {
                    kty: "OKP".into(),
                    crv: Some("Ed25519".into()),
                    x: Some(b64(point)),
                    ..Jwk::default()
                }
            } else {
                let coord = (len - 1) / 2;
                Jwk {
                    kty: "EC".into(),
                    crv: Some(
                        match alg {
                            Algorithm::ES256 => "P-256",
                            Algorithm::ES384 => "P-384",
                            _ => "P-521",
                        }
                        .into(),
                    ),
                    x: Some(b64(&point[1..=coord])),
                    y: Some(b64(&point[1 + coord..])),
                    ..Jwk::default()
                }
            }
        }
        KeyFamily::Hmac => return Err(format!("{alg} is not an asymmetric algorithm")),
    };
    let jwk = Jwk {
        alg: Some(alg.as_str().to_owned()),
        kid: Some(kid.to_owned()),
        ..jwk
    };
    let key = VerifyingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    key.check_usable(alg).map_err(|e| e.to_string())?;
    Ok(key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token's signature in JOSE's form. RSA and EdDSA signatures are used
/// as they are. `CKM_ECDSA` returns `R || S`, each as long as the curve's
/// order, which is RFC 7518 §3.4's form; a token that drops leading zero
/// bytes (an even, shorter answer) gets each half padded back.
pub(crate) fn to_jose(alg: Algorithm, signature: Vec<u8>) -> Result<Vec<u8>, String> {
    let Some((_, _, half)) = curve(alg).filter(|_| alg.family() != KeyFamily::Ed25519) else {
        return Ok(signature);
    };
    let len = signature.len();
    if len == 2 * half {
        return Ok(signature);
    }
    if len % 2 != 0 || len > 2 * half || len == 0 {
        return Err(format!(
            "CKM_ECDSA returned {len} bytes, not R || S of 2 × {half} bytes (a DER signature? the token is not PKCS#11-conformant here)"
        ));
    }
    let (r, s) = signature.split_at(len / 2);
    let mut out = vec![0u8; 2 * half];
    out[half - r.len()..half].copy_from_slice(r);
    out[2 * half - s.len()..].copy_from_slice(s);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_read_raw_or_wrapped() {
        let mut p256 = vec![0x04];
        p256.extend([0x3f; 64]);
        assert_eq!(unwrap_point(&p256, 65), Some(&p256[..]));
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend(&p256);
        assert_eq!(unwrap_point(&wrapped, 65), Some(&p256[..]));
        let mut p521 = vec![0x04];
        p521.extend([7; 132]);
        let mut wrapped = vec![0x04, 0x81, 0x85];
        wrapped.extend(&p521);
        assert_eq!(unwrap_point(&wrapped, 133), Some(&p521[..]));
        let ed = [9u8; 32];
        let mut wrapped = vec![0x04, 0x20];
        wrapped.extend(ed);
        assert_eq!(unwrap_point(&wrapped, 32), Some(&ed[..]));
        assert_eq!(unwrap_point(&ed, 32), Some(&ed[..]));
        // A compressed point, a wrong length, a wrong tag.
        let mut compressed = vec![0x02];
        compressed.extend([1; 64]);
        assert_eq!(unwrap_point(&compressed, 65), None);
        assert_eq!(unwrap_point(&p256[..64], 65), None);
        let mut bad = vec![0x03, 0x41];
        bad.extend(&p256);
        assert_eq!(unwrap_point(&bad, 65), None);
    }

    #[test]
    fn ecdsa_signatures_are_padded_to_the_jws_length() {
        let full = vec![1u8; 64];
        assert_eq!(to_jose(Algorithm::ES256, full.clone()).unwrap(), full);
        // R and S of 31 bytes each: both get their leading zero back.
        let short: Vec<u8> = (0..62).map(|i| i as u8 + 1).collect();
        let padded = to_jose(Algorithm::ES256, short.clone()).unwrap();
        assert_eq!(padded.len(), 64);
        assert_eq!(padded[0], 0);
        assert_eq!(&padded[1..32], &short[..31]);
        assert_eq!(padded[32], 0);
        assert_eq!(&padded[33..], &short[31..]);
        for bad in [vec![1u8; 63], vec![1u8; 70], vec![0x30; 72], Vec::new()] {
            let err = to_jose(Algorithm::ES256, bad).unwrap_err();
            assert!(err.contains("CKM_ECDSA"), "{err}");
        }
        assert_eq!(to_jose(Algorithm::ES512, vec![2; 132]).unwrap().len(), 132);
        // RSA and EdDSA signatures are used as they are.
        assert_eq!(to_jose(Algorithm::EdDSA, vec![3; 64]).unwrap(), vec![3; 64]);
        assert_eq!(
            to_jose(Algorithm::RS256, vec![3; 256]).unwrap(),
            vec![3; 256]
        );
    }

    #[test]
    fn every_asymmetric_algorithm_has_its_mechanisms() {
        for alg in Algorithm::ALL {
            let m = mechanisms(alg);
            assert_eq!(m.is_some(), !alg.is_symmetric(), "{alg}");
            assert_eq!(sign_mechanism(alg).is_some(), !alg.is_symmetric(), "{alg}");
            assert_eq!(
                templates(alg, 2048, "l", b"i").is_some(),
                !alg.is_symmetric(),
                "{alg}"
            );
        }
        assert_eq!(to_be_signed(Algorithm::ES384, b"abc").len(), 48);
        assert_eq!(to_be_signed(Algorithm::RS256, b"abc"), b"abc");
    }
}
