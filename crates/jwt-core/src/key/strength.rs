//! Key strength and key hygiene: what is refused because it is too weak
//! (short HMAC secrets, small RSA moduli, small-order Ed25519 points) or is
//! the wrong thing (a key, or a key's text, given as an HMAC secret).

use der::Decode;
use zeroize::Zeroizing;

use crate::algorithm::Algorithm;
use crate::error::Error;

/// Minimum RSA modulus size accepted by default (RFC 7518 §3.3, NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;

pub(super) fn check_hmac_len(len: usize, alg: Algorithm) -> Result<(), Error> {
    let need = alg.hash_len();
    if len < need {
        return Err(Error::WeakKey {
            reason: format!(
                "the HMAC secret is {len} bytes; {alg} needs at least {need} random bytes (RFC 7518 §3.2). \
                 Generate one with `jwtkit keys generate --alg {alg}`"
            ),
        });
    }
    Ok(())
}

pub(super) fn check_rsa_bits(bits: usize) -> Result<(), Error> {
    if bits < MIN_RSA_BITS {
        return Err(Error::WeakKey {
            reason: format!(
                "the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required. Generate a new key \
                 with `jwtkit keys generate --alg RS256`"
            ),
        });
    }
    Ok(())
}

/// What `secret` is when it is really a key (or a key's text form) rather
/// than a secret, for the refusal message; `None` for anything else.
///
/// This is the one check every HMAC secret goes through (the library's
/// `hmac` constructors, `oct` JWKs, the CLI's `--secret-file`/`--secret-env`
/// and the env key store all build their secret with [`HmacSecret::new`]).
/// It looks for a PEM block anywhere (so a leading comment line, a UTF-8 BOM
/// or `openssl x509 -text` output around it changes nothing), the text that
/// `openssl x509|pkey|rsa -text -noout` prints, a JWK, an OpenSSH public key,
/// and DER (raw, or as the base64 body of a PEM without its armor lines) that
/// parses as a public key, private key or certificate. Random secrets match
/// none of these; secrets are checked once, when loaded, never per token.
pub(super) fn key_material_kind(secret: &[u8]) -> Option<&'static str> {
    if let Some(what) = key_material_kind_of(secret) {
        return Some(what);
    }
    // The same text saved as UTF-16 (an editor's "Unicode"): look again at
    // what it says.
    let text = utf16_text(secret)?;
    key_material_kind_of(text.as_bytes())
}

fn key_material_kind_of(secret: &[u8]) -> Option<&'static str> {
    use memchr::memmem::find;
    // Any case, and any armor of four or more dashes with spaces before
    // BEGIN (`----- BEGIN`, RFC 4716's `---- BEGIN SSH2 PUBLIC KEY ----`):
    // PEM-like readers differ, and none of these is a secret.
    if has_armor_begin(secret) {
        return Some("a PEM document (it contains a `-----BEGIN` line)");
    }
    const OPENSSL_TEXT: [&[u8]; 3] = [b"Subject Public Key Info:", b"Public-Key:", b"Private-Key:"];
    if OPENSSL_TEXT
        .iter()
        .any(|marker| find(secret, marker).is_some())
    {
        return Some("the text form of a key or certificate (`openssl ... -text` output)");
    }
    let trimmed = secret.trim_ascii();
    if trimmed.starts_with(b"{") && find(trimmed, b"\"kty\"").is_some() {
        return Some("a JWK");
    }
    if trimmed.starts_with(b"[") && find(trimmed, b"\"kty\"").is_some() {
        return Some("a list of JWKs");
    }
    // Anywhere, not only at the start: an authorized_keys line may carry
    // options (`from="…",no-pty ssh-ed25519 AAAA…`).
    const SSH_KEY_TYPES: [&[u8]; 4] = [
        b"ssh-rsa AAAA",
        b"ssh-ed25519 AAAA",
        b"ecdsa-sha2-",
        b"ssh-dss AAAA",
    ];
    if SSH_KEY_TYPES.iter().any(|p| find(trimmed, p).is_some()) {
        return Some("an OpenSSH public key");
    }
    // DER as written, or followed by a newline (`openssl ... -outform DER`
    // then an editor or `echo`).
    if let Some(what) = der_key_kind(secret).or_else(|| der_key_kind(trimmed)) {
        return Some(what);
    }
    if let Some(what) = raw_ec_point_kind(secret) {
        return Some(what);
    }
    // Hex of DER or of a raw EC point (`xxd -p`, `openssl asn1parse` dumps),
    // with or without colons and line breaks. Random hex secrets
    // (`openssl rand -hex 32`) decode to bytes that are neither.
    if let Some(bytes) = hex_bytes(trimmed) {
        if der_key_kind(&bytes).is_some() || raw_ec_point_kind(&bytes).is_some() {
            return Some("the hex form of a key or certificate");
        }
    }
    // The base64 body of a PEM document without its armor lines. DER starts
    // with a SEQUENCE tag (0x30), whose base64 starts with `M`.
    if trimmed.first() == Some(&b'M')
        && trimmed
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/-_=".contains(b) || b.is_ascii_whitespace())
    {
        use base64::Engine as _;
        let compact: Zeroizing<Vec<u8>> = Zeroizing::new(
            trimmed
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
                .map(|b| match b {
                    b'-' => b'+',
                    b'_' => b'/',
                    other => other,
                })
                .collect(),
        );
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
                .with_decode_allow_trailing_bits(true),
        );
        if let Ok(der) = engine.decode(&*compact) {
            let der = Zeroizing::new(der);
            if der_key_kind(&der).is_some() {
                return Some("the base64 form of a DER key or certificate (a PEM body without its armor lines)");
            }
        }
    }
    None
}

/// Whether `bytes` hold an armor line's start: four or more dashes, optional
/// spaces, then `BEGIN` in any case.
fn has_armor_begin(bytes: &[u8]) -> bool {
    let mut i = 0;
    while let Some(at) = memchr::memmem::find(&bytes[i..], b"----") {
        let mut j = i + at + 4;
        while j < bytes.len() && (bytes[j] == b'-' || bytes[j] == b' ') {
            j += 1;
        }
        if bytes.len() >= j + 5 && bytes[j..j + 5].eq_ignore_ascii_case(b"BEGIN") {
            return true;
        }
        i = j.max(i + at + 1);
    }
    false
}

/// An uncompressed or compressed EC public key point of a curve jwtkit
/// knows, as raw bytes (the form some HSM and cloud APIs hand out). Random
/// bytes of these lengths and prefixes are a valid point with negligible
/// probability. A raw 32-byte Ed25519 public key cannot be told apart from
/// a random 32-byte secret, so it is not refused here.
fn raw_ec_point_kind(bytes: &[u8]) -> Option<&'static str> {
    use crate::algorithm::Curve;
    let curve = match (bytes.first()?, bytes.len()) {
        (0x04, 65) | (0x02 | 0x03, 33) => Curve::P256,
        (0x04, 97) | (0x02 | 0x03, 49) => Curve::P384,
        (0x04, 133) | (0x02 | 0x03, 67) => Curve::P521,
        _ => return None,
    };
    aws_lc_rs::signature::ParsedPublicKey::new(super::primitives::ecdsa_verify_alg(curve), bytes)
        .is_ok()
        .then_some("a raw EC public key (a curve point)")
}

/// `text` decoded as hex, when it is only hex digits (at least 32 of them),
/// optionally separated by `:` or white space.
fn hex_bytes(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let digits: Zeroizing<Vec<u8>> = Zeroizing::new(
        text.iter()
            .copied()
            .filter(|b| *b != b':' && !b.is_ascii_whitespace())
            .collect(),
    );
    if digits.len() < 32 || digits.len() % 2 != 0 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    };
    Some(Zeroizing::new(
        digits
            .chunks_exact(2)
            .map(|p| nibble(p[0]) << 4 | nibble(p[1]))
            .collect(),
    ))
}

/// `bytes` as text when they are UTF-16 (with a byte-order mark, or ASCII
/// text with every other byte zero).
fn utf16_text(bytes: &[u8]) -> Option<Zeroizing<String>> {
    if bytes.len() < 4 || bytes.len() % 2 != 0 {
        return None;
    }
    let (little, body) = match bytes {
        [0xff, 0xfe, rest @ ..] => (true, rest),
        [0xfe, 0xff, rest @ ..] => (false, rest),
        [_, 0, _, 0, ..] => (true, bytes),
        [0, _, 0, _, ..] => (false, bytes),
        _ => return None,
    };
    let units = body.chunks_exact(2).map(|p| {
        if little {
            u16::from_le_bytes([p[0], p[1]])
        } else {
            u16::from_be_bytes([p[0], p[1]])
        }
    });
    let text: Result<String, _> = char::decode_utf16(units).collect();
    text.ok().map(Zeroizing::new)
}

/// What DER-encoded `bytes` are, when they are a public key, private key or
/// certificate. Every one of these is a DER SEQUENCE (first byte 0x30), and
/// each parser needs the whole input to be one exact structure, so random
/// secrets do not match.
fn der_key_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.first() != Some(&0x30) {
        return None;
    }
    if spki::SubjectPublicKeyInfoRef::from_der(bytes).is_ok() {
        return Some("a DER public key (SubjectPublicKeyInfo)");
    }
    if x509_cert::Certificate::from_der(bytes).is_ok() {
        return Some("a DER X.509 certificate");
    }
    if pkcs8::PrivateKeyInfo::from_der(bytes).is_ok() {
        return Some("a DER PKCS#8 private key");
    }
    if sec1::EcPrivateKey::from_der(bytes).is_ok() {
        return Some("a DER SEC1 EC private key");
    }
    // PKCS#1: RSAPublicKey is a SEQUENCE of 2 INTEGERs, RSAPrivateKey of 9
    // (two-prime; multi-prime keys add a sequence and fail this shape, but
    // then also fail the crypto library's parser).
    if let Ok(ints) = Vec::<der::asn1::IntRef<'_>>::from_der(bytes) {
        if ints.len() == 2 || ints.len() >= 9 {
            return Some("a DER PKCS#1 RSA key");
        }
    }
    None
}

/// The y coordinates (little-endian, sign bit clear) of the Ed25519 points of
/// small order, as libsodium lists them in `ge25519_has_small_order`
/// (src/libsodium/crypto_core/ed25519/ref10/ed25519_ref10.c, called when
/// `crypto_sign/ed25519/ref10/open.c` checks a public key). The 8 low-order
/// points have 5 distinct y values (0, 1, p-1 and the two order-8 ones); the
/// list adds the non-canonical y = p (≡ 0) and y = p+1 (≡ 1). The x sign bit
/// (bit 255) is ignored when comparing, so these 7 rows cover all 14
/// encodings: the 8 canonical ones and 6 non-canonical ones.
const ED25519_SMALL_ORDER_Y: [[u8; 32]; 7] = [
    // 0 (order 4)
    [0; 32],
    // 1 (order 1: the identity)
    [
        0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0,
    ],
    // 2707385501144840649318225287225658788936804267575313519463743609750303402022 (order 8)
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    // 55188659117513257062467267217118295137698188065244968500265048394206261417927 (order 8)
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    // p-1 (order 2)
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p (non-canonical 0, order 4)
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p+1 (non-canonical 1, order 1)
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// `true` when an encoded Ed25519 public key is a point of small order (in
/// any of its encodings, canonical or not). Public keys are not secret, so a
/// plain comparison is fine.
pub(super) fn ed25519_has_small_order(key: &[u8; 32]) -> bool {
    ED25519_SMALL_ORDER_Y
        .iter()
        .any(|y| key[..31] == y[..31] && key[31] & 0x7f == y[31])
}
