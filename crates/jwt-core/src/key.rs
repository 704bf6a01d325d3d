//! Keys, parsed once into ready crypto objects.
//!
//! [`SigningKey`] and [`VerifyingKey`] are built from PEM, DER, JWK or raw
//! secrets. Parsing happens here, once; signing and verifying reuse the parsed
//! objects (RSA public keys are pre-parsed per algorithm on first use).

use std::fmt;
use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use zeroize::Zeroizing;

use crate::algorithm::{Algorithm, Curve, KeyFamily};
use crate::b64;
use crate::error::Error;
use crate::jwk::Jwk;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// Minimum RSA modulus size accepted by default (RFC 7518 §3.3, NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;

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

fn ecdsa_signing_alg(curve: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

fn ecdsa_verify_alg(curve: Curve) -> &'static signature::EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
    }
}

fn rsa_padding(alg: Algorithm) -> &'static dyn signature::RsaEncoding {
    match alg {
        Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_SHA512,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

fn rsa_verify_alg(alg: Algorithm, legacy: bool) -> Option<&'static signature::RsaParameters> {
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

fn decode_member(value: &Option<String>, kty: &str, member: &str) -> Result<Vec<u8>, Error> {
    let s = value
        .as_deref()
        .ok_or_else(|| Error::invalid_key(format!("the {kty} JWK has no `{member}`")))?;
    b64::decode(s.as_bytes(), &format!("JWK member `{member}`"))
        .map_err(|e| Error::invalid_key(e.to_string()))
}

fn rejected(what: &str) -> impl Fn(aws_lc_rs::error::KeyRejected) -> Error + '_ {
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
fn key_material_kind(secret: &[u8]) -> Option<&'static str> {
    use memchr::memmem::find;
    if find(secret, b"-----BEGIN").is_some() {
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
    const SSH_PREFIXES: [&[u8]; 4] = [b"ssh-rsa ", b"ssh-ed25519 ", b"ecdsa-sha2-", b"ssh-dss "];
    if SSH_PREFIXES.iter().any(|p| trimmed.starts_with(p)) {
        return Some("an OpenSSH public key");
    }
    if let Some(what) = der_key_kind(secret) {
        return Some(what);
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

/// An HMAC secret with its HMAC contexts precomputed for each hash.
struct HmacSecret {
    bytes: Zeroizing<Vec<u8>>,
    keys: [hmac::Key; 3],
}

impl HmacSecret {
    fn new(secret: &[u8]) -> Result<Self, Error> {
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

    fn key(&self, alg: Algorithm) -> &hmac::Key {
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

    /// The public JWK (with `kid` and `alg` when known). `None` for HMAC keys,
    /// which have no public part.
    pub fn to_public_jwk(&self) -> Option<Jwk> {
        let vk = self.verifying_key();
        vk.to_jwk_public()
    }

    /// The RFC 7638 thumbprint of the key (for HMAC, of the `oct` JWK).
    pub fn thumbprint(&self) -> Result<String, Error> {
        self.verifying_key().thumbprint()
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

    /// The raw HMAC secret, for HMAC keys only.
    pub fn hmac_secret(&self) -> Option<&[u8]> {
        match &self.inner {
            SigningInner::Hmac(s) => Some(&s.bytes),
            _ => None,
        }
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

fn check_family(family: KeyFamily, alg: Algorithm) -> Result<(), Error> {
    if family == alg.family() {
        return Ok(());
    }
    let hint = match (family, alg.family()) {
        (KeyFamily::Hmac, _) => "an HMAC secret only works with HS256/HS384/HS512",
        (_, KeyFamily::Hmac) => {
            "HS* needs a shared secret; a public key must never be used as an HMAC secret"
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

fn check_hmac_len(len: usize, alg: Algorithm) -> Result<(), Error> {
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

fn check_rsa_bits(bits: usize) -> Result<(), Error> {
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

/// An RSA public key, pre-parsed per algorithm on first use.
#[derive(Clone)]
struct RsaPublic {
    der: Vec<u8>,
    n: Vec<u8>,
    e: Vec<u8>,
    bits: usize,
    /// Per algorithm, strict (0–5) and legacy weak-key verification (6–11):
    /// separate slots, so one caller's opt-out never leaks into another's check.
    parsed: [OnceLock<Option<ParsedPublicKey>>; 12],
}

impl RsaPublic {
    fn from_der(der_bytes: &[u8]) -> Result<Self, Error> {
        let pk = aws_lc_rs::rsa::PublicKey::from_der(der_bytes)
            .map_err(rejected("the RSA public key"))?;
        Ok(Self::from_public(&pk))
    }

    /// For keys that came from a parsed key pair.
    fn from_der_unchecked(pkcs1: &[u8]) -> Self {
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

    fn parsed(&self, alg: Algorithm, legacy: bool) -> Option<&ParsedPublicKey> {
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
struct EcPublic {
    point: Vec<u8>,
    parsed: Option<ParsedPublicKey>,
}

impl EcPublic {
    fn new(curve: Curve, point: Vec<u8>) -> Self {
        let parsed = ParsedPublicKey::new(ecdsa_verify_alg(curve), &point).ok();
        EcPublic { point, parsed }
    }
}

#[derive(Clone)]
struct EdPublic {
    raw: Vec<u8>,
    parsed: Option<ParsedPublicKey>,
}

impl EdPublic {
    fn new(raw: Vec<u8>) -> Self {
        let parsed = ParsedPublicKey::new(&signature::ED25519, &raw).ok();
        EdPublic { raw, parsed }
    }

    /// A public key from outside (PEM, DER, JWK): 32 bytes, a valid point,
    /// and not of small order. `form` names where it came from, for errors.
    fn from_untrusted(raw: Vec<u8>, form: &str) -> Result<Self, Error> {
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
fn ed25519_has_small_order(key: &[u8; 32]) -> bool {
    ED25519_SMALL_ORDER_Y
        .iter()
        .any(|y| key[..31] == y[..31] && key[31] & 0x7f == y[31])
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
                    "the JWK declares alg {alg} but is a {} key",
                    key.family().name()
                ))
            })?;
        }
        Ok(key)
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

    /// Checks that the key may verify `alg`: family, binding and strength.
    /// `allow_weak` permits short HMAC secrets and 1024–2047-bit RSA keys
    /// (RS256/RS512 only), for legacy verification.
    pub fn check_usable(&self, alg: Algorithm, allow_weak: bool) -> Result<(), Error> {
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
                VerifyInner::Rsa(r)
                    if r.bits < MIN_RSA_BITS && rsa_verify_alg(alg, true).is_none() =>
                {
                    check_rsa_bits(r.bits)
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
                        "the token uses {alg} but the key{} is a {} key",
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

    /// The public JWK (`kid` and `alg` included when known, `use: "sig"`).
    /// `None` for HMAC secrets: they must never be published.
    pub fn to_jwk_public(&self) -> Option<Jwk> {
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

    /// The explicit `kid`, or else the RFC 7638 thumbprint.
    pub fn kid_or_thumbprint(&self) -> Result<String, Error> {
        match &self.kid {
            Some(k) => Ok(k.clone()),
            None => self.thumbprint(),
        }
    }
}
