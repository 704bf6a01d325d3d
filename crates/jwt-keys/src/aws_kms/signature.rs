//! What KMS calls each JOSE algorithm, and the conversions between KMS's
//! signature formats and JOSE's.

use aws_sdk_kms::types::{KeySpec, MessageType, SigningAlgorithmSpec};
use der::asn1::UintRef;
use der::{Decode, Reader, SliceReader};
use jwt_core::{Algorithm, KeyFamily};

/// Above this many bytes KMS refuses a `RAW` message; larger signing inputs
/// are hashed locally and sent as a `DIGEST`.
pub(crate) const MAX_RAW_MESSAGE: usize = 4096;

/// The KMS signing algorithm for a JOSE algorithm; `None` for the ones KMS
/// does not sign (HMAC, EdDSA).
pub(crate) fn signing_algorithm(alg: Algorithm) -> Option<SigningAlgorithmSpec> {
    Some(match alg {
        Algorithm::RS256 => SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
        Algorithm::RS384 => SigningAlgorithmSpec::RsassaPkcs1V15Sha384,
        Algorithm::RS512 => SigningAlgorithmSpec::RsassaPkcs1V15Sha512,
        Algorithm::PS256 => SigningAlgorithmSpec::RsassaPssSha256,
        Algorithm::PS384 => SigningAlgorithmSpec::RsassaPssSha384,
        Algorithm::PS512 => SigningAlgorithmSpec::RsassaPssSha512,
        Algorithm::ES256 => SigningAlgorithmSpec::EcdsaSha256,
        Algorithm::ES384 => SigningAlgorithmSpec::EcdsaSha384,
        Algorithm::ES512 => SigningAlgorithmSpec::EcdsaSha512,
        _ => return None,
    })
}

/// The key spec to create for `alg` (RSA keys of `rsa_bits`).
pub(crate) fn key_spec(alg: Algorithm, rsa_bits: u32) -> Option<KeySpec> {
    Some(match alg.family() {
        KeyFamily::Rsa => match rsa_bits {
            2048 => KeySpec::Rsa2048,
            3072 => KeySpec::Rsa3072,
            4096 => KeySpec::Rsa4096,
            _ => return None,
        },
        KeyFamily::Ec(_) => match alg {
            Algorithm::ES256 => KeySpec::EccNistP256,
            Algorithm::ES384 => KeySpec::EccNistP384,
            _ => KeySpec::EccNistP521,
        },
        _ => return None,
    })
}

/// The algorithm a key of `spec` signs with when nothing else says so (a
/// key given by id that jwtkit did not create): ES* by curve, RS256 for RSA.
pub(crate) fn default_algorithm(spec: &KeySpec) -> Option<Algorithm> {
    Some(match spec {
        KeySpec::EccNistP256 => Algorithm::ES256,
        KeySpec::EccNistP384 => Algorithm::ES384,
        KeySpec::EccNistP521 => Algorithm::ES512,
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => Algorithm::RS256,
        _ => return None,
    })
}

/// The message to send and how KMS must read it: the signing input itself
/// up to [`MAX_RAW_MESSAGE`] bytes, else its SHA-2 digest (the hash the
/// algorithm names), computed here.
pub(crate) fn message(alg: Algorithm, signing_input: &[u8]) -> (Vec<u8>, MessageType) {
    if signing_input.len() <= MAX_RAW_MESSAGE {
        return (signing_input.to_vec(), MessageType::Raw);
    }
    let digest_alg = match alg.hash_len() {
        32 => &aws_lc_rs::digest::SHA256,
        48 => &aws_lc_rs::digest::SHA384,
        _ => &aws_lc_rs::digest::SHA512,
    };
    let digest = aws_lc_rs::digest::digest(digest_alg, signing_input);
    (digest.as_ref().to_vec(), MessageType::Digest)
}

/// Converts KMS's signature to JOSE's form: RSA signatures are used as they
/// are; ECDSA signatures come DER-encoded (`SEQUENCE { r INTEGER, s INTEGER }`)
/// and become the fixed-width `R || S` of RFC 7518 §3.4. The error says
/// what is wrong with the signature.
pub(crate) fn to_jose(alg: Algorithm, kms_signature: &[u8]) -> Result<Vec<u8>, String> {
    let KeyFamily::Ec(curve) = alg.family() else {
        return Ok(kms_signature.to_vec());
    };
    let width = curve.coordinate_len();
    let (r, s) = parse_der(kms_signature)
        .ok_or_else(|| format!("the ECDSA signature for {alg} is not a DER ECDSA-Sig-Value"))?;
    let mut out = vec![0u8; 2 * width];
    for (i, n) in [r, s].into_iter().enumerate() {
        let bytes = n.as_bytes();
        if bytes.len() > width {
            return Err(format!(
                "an ECDSA signature component has {} bytes; {alg} allows at most {width}",
                bytes.len()
            ));
        }
        let end = (i + 1) * width;
        out[end - bytes.len()..end].copy_from_slice(bytes);
    }
    Ok(out)
}

/// Strict DER: one SEQUENCE of two positive INTEGERs and nothing after it.
fn parse_der(bytes: &[u8]) -> Option<(UintRef<'_>, UintRef<'_>)> {
    let mut reader = SliceReader::new(bytes).ok()?;
    let pair = reader
        .sequence(|seq| {
            let r = UintRef::decode(seq)?;
            let s = UintRef::decode(seq)?;
            Ok((r, s))
        })
        .ok()?;
    reader.finish(pair).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_to_fixed_width_pads_and_strips() {
        // r = 0x01 (short), s = 0x80.. (DER adds a 0x00 sign byte).
        let mut s = vec![0x80];
        s.extend([0x11; 31]);
        let mut der = vec![0x30, 0x00, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00];
        der.extend(&s);
        der[1] = (der.len() - 2) as u8;
        let jose = to_jose(Algorithm::ES256, &der).unwrap();
        assert_eq!(jose.len(), 64);
        assert_eq!(&jose[..31], &[0u8; 31]);
        assert_eq!(jose[31], 1);
        assert_eq!(&jose[32..], &s[..]);
    }

    #[test]
    fn bad_der_is_refused() {
        assert!(to_jose(Algorithm::ES256, b"\x30\x03\x02\x01")
            .unwrap_err()
            .contains("not a DER"));
        // Trailing bytes after the SEQUENCE.
        let der = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00];
        assert!(to_jose(Algorithm::ES256, &der).is_err());
        // A component wider than the curve.
        let mut der = vec![0x30, 0x00, 0x02, 0x21, 0x7f];
        der.extend([0x11; 32]);
        der.extend([0x02, 0x01, 0x01]);
        der[1] = (der.len() - 2) as u8;
        assert!(to_jose(Algorithm::ES256, &der).is_err());
    }

    #[test]
    fn large_inputs_are_hashed_locally() {
        let (m, t) = message(Algorithm::ES384, &[b'a'; 4096]);
        assert_eq!((m.len(), t), (4096, MessageType::Raw));
        let (m, t) = message(Algorithm::ES384, &[b'a'; 4097]);
        assert_eq!((m.len(), t), (48, MessageType::Digest));
        let (m, _) = message(Algorithm::RS512, &[b'a'; 5000]);
        assert_eq!(m.len(), 64);
    }
}
