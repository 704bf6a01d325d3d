//! Key loading in every form the issue lists, JWK/JWKS export and thumbprints.

mod common;

use common::{data, EXP};
use jwt_core::{
    Algorithm, Curve, ErrorKind, Jwks, KeyFamily, KeySet, Signer, SigningKey, Validation, Verifier,
    VerifyingKey,
};

fn roundtrip(signing: SigningKey, verifying: VerifyingKey, alg: Algorithm) {
    let token = Signer::new(signing, alg)
        .unwrap()
        .sign(&serde_json::json!({"exp": EXP}))
        .unwrap();
    Verifier::new(verifying, Validation::new([alg]))
        .unwrap()
        .verify::<serde_json::Value>(&token)
        .unwrap();
}

#[test]
fn pem_forms() {
    // PKCS#1 RSA private and public.
    let sk = SigningKey::from_pem(&data("rsa2048.pkcs1.pem")).unwrap();
    assert_eq!(sk.family(), KeyFamily::Rsa);
    let vk = VerifyingKey::from_pem(&data("rsa2048.pkcs1.pub.pem")).unwrap();
    assert_eq!(vk.rsa_bits(), Some(2048));
    assert_eq!(sk.thumbprint().unwrap(), vk.thumbprint().unwrap());
    roundtrip(sk, vk, Algorithm::PS384);
    // SEC1 EC private key (with an EC PARAMETERS block before it), SPKI public key, certificate.
    let sk = SigningKey::from_pem(&data("ec256.sec1.pem")).unwrap();
    assert_eq!(sk.family(), KeyFamily::Ec(Curve::P256));
    let spki = VerifyingKey::from_pem(&data("ec256.pub.pem")).unwrap();
    let cert = VerifyingKey::from_pem(&data("ec256.cert.pem")).unwrap();
    assert_eq!(spki.thumbprint().unwrap(), cert.thumbprint().unwrap());
    assert_eq!(sk.thumbprint().unwrap(), cert.thumbprint().unwrap());
    roundtrip(sk, cert, Algorithm::ES256);
    // P-521 SEC1 without parameters block.
    let sk = SigningKey::from_pem(&data("ec521.sec1.pem")).unwrap();
    assert_eq!(sk.family(), KeyFamily::Ec(Curve::P521));
    let vk = sk.verifying_key();
    roundtrip(sk, vk, Algorithm::ES512);
    // PKCS#8 Ed25519 and SPKI.
    let sk = SigningKey::from_pem(&data("ed25519.pem")).unwrap();
    let vk = VerifyingKey::from_pem(&data("ed25519.pub.pem")).unwrap();
    roundtrip(sk, vk, Algorithm::EdDSA);
    // A private key PEM also works where a public key is expected.
    let vk = VerifyingKey::from_pem(&data("ed25519.pem")).unwrap();
    assert_eq!(vk.family(), KeyFamily::Ed25519);
}

#[test]
fn der_forms() {
    let sk = SigningKey::from_der(&data("rsa2048.pk8.der")).unwrap();
    let pem = pem::parse(data("rsa2048.pkcs1.pub.pem")).unwrap();
    let vk = VerifyingKey::from_der(pem.contents()).unwrap();
    assert_eq!(sk.thumbprint().unwrap(), vk.thumbprint().unwrap());
    let cert = pem::parse(data("ec256.cert.pem")).unwrap();
    let vk = VerifyingKey::from_der(cert.contents()).unwrap();
    assert_eq!(vk.family(), KeyFamily::Ec(Curve::P256));
    let spki = pem::parse(data("ed25519.pub.pem")).unwrap();
    assert_eq!(
        VerifyingKey::from_der(spki.contents()).unwrap().family(),
        KeyFamily::Ed25519
    );
    assert_eq!(
        VerifyingKey::from_der(b"\x30\x03\x02\x01\x00")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidKey
    );
}

#[test]
fn unsupported_and_wrong_keys_say_so() {
    let err = SigningKey::from_pem(&data("secp256k1.pem")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
    assert!(err.to_string().contains("curve"), "{err}");
    let err = SigningKey::from_pem(&data("ec256.pub.pem")).unwrap_err();
    assert!(err.to_string().contains("private key"), "{err}");
    let err = SigningKey::from_pem(b"not a pem").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
    let enc = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(SigningKey::from_pem(enc)
        .unwrap_err()
        .to_string()
        .contains("decrypt"));
    // The legacy form (`openssl genrsa -des3` on OpenSSL 1.x, `openssl rsa
    // -traditional -aes128`): a plain tag whose headers say it is encrypted.
    for (tag, tool) in [
        ("RSA PRIVATE KEY", "openssl rsa"),
        ("EC PRIVATE KEY", "openssl ec"),
    ] {
        let legacy = format!(
            "-----BEGIN {tag}-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,\
             E2CB7D5B8E9CFC548D92AFCF222C56E9\n\nAAAA\n-----END {tag}-----\n"
        );
        let err = SigningKey::from_pem(legacy.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
        let message = err.to_string();
        assert!(message.contains("encrypted"), "{message}");
        assert!(message.contains(tool), "{message}");
    }
}

#[test]
fn generated_keys_export_and_reload() {
    for alg in Algorithm::ALL {
        let sk = SigningKey::generate(alg).unwrap();
        if alg.is_symmetric() {
            assert!(sk.to_public_jwk().is_none(), "secrets are never published");
            assert_eq!(sk.hmac_secret().unwrap().len(), 64);
            continue;
        }
        let pem = sk.to_pkcs8_pem().unwrap();
        let reloaded = SigningKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(
            reloaded.thumbprint().unwrap(),
            sk.thumbprint().unwrap(),
            "{alg}"
        );
        let jwk = sk.to_public_jwk().unwrap();
        assert!(!jwk.is_private());
        assert_eq!(jwk.use_.as_deref(), Some("sig"));
        assert_eq!(jwk.kid.as_deref(), Some(sk.thumbprint().unwrap().as_str()));
        let vk = VerifyingKey::from_jwk(&jwk).unwrap();
        roundtrip(reloaded, vk, alg);
    }
}

#[test]
fn both_key_types_export_the_same_public_jwk_by_one_name() {
    for alg in Algorithm::ALL {
        let sk = SigningKey::generate(alg)
            .unwrap()
            .with_kid("k-1")
            .with_algorithm(alg)
            .unwrap();
        let vk = sk.verifying_key();
        assert_eq!(sk.to_public_jwk(), vk.to_public_jwk(), "{alg}");
        match vk.to_public_jwk() {
            None => assert!(alg.is_symmetric(), "{alg}: only secrets have no public JWK"),
            Some(jwk) => {
                assert_eq!(jwk.kid.as_deref(), Some("k-1"), "{alg}");
                assert_eq!(jwk.alg.as_deref(), Some(alg.as_str()), "{alg}");
                assert!(!jwk.is_private(), "{alg}");
            }
        }
    }
}

#[test]
fn private_jwk_roundtrip_and_debug_redaction() {
    let jwk = jwt_core::Jwk::from_json(
        br#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow","kid":"hmac-1"}"#,
    )
    .unwrap();
    let dbg = format!("{jwk:?}");
    assert!(!dbg.contains("AyM1"), "{dbg}");
    assert!(dbg.contains("<redacted>"));
    let sk = SigningKey::from_jwk(&jwk).unwrap();
    let dbg = format!("{sk:?}");
    assert!(dbg.contains("hmac-1") && !dbg.contains("AyM1"), "{dbg}");
    // oct keys never appear in a public JWKS.
    assert!(jwk.to_public().is_none());
}

#[test]
fn jwks_parsing_skips_unusable_entries() {
    let ec = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("ec");
    let ed = SigningKey::generate(Algorithm::EdDSA)
        .unwrap()
        .with_kid("ed");
    let mut enc = ec.to_public_jwk().unwrap();
    enc.kid = Some("enc".into());
    enc.use_ = Some("enc".into());
    let jwks = serde_json::json!({"keys": [
        ec.to_public_jwk().unwrap(),
        ed.to_public_jwk().unwrap(),
        enc,
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA", "kid": "k1"},
        {"kty": "RSA", "n": "!!", "e": "AQAB", "kid": "bad"},
    ]});
    let parsed = Jwks::from_json(jwks.to_string().as_bytes()).unwrap();
    let set = KeySet::from_jwks(&parsed);
    assert_eq!(set.len(), 2);
    assert!(set.get("ec").is_some() && set.get("ed").is_some());
    let skipped: Vec<_> = set
        .skipped()
        .iter()
        .map(|(k, _)| k.clone().unwrap())
        .collect();
    assert_eq!(skipped, ["enc", "k1", "bad"]);
    // The re-exported JWKS has only public members.
    let out = set.to_jwks().to_json();
    assert!(!out.contains("\"d\""));
    // Not a JWKS at all.
    assert_eq!(
        Jwks::from_json(b"{}").unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    assert_eq!(
        Jwks::from_json(br#"{"keys":[],"keys":[]}"#)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidKey
    );
    // Issue 13 item 3: a document that is not JSON is named as a key set,
    // never as a "malformed token".
    for text in [&b"<html>Not Found</html>"[..], b"[1,2]", b""] {
        let err = Jwks::from_json(text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey, "{err}");
        let message = err.to_string();
        assert!(message.contains("not a JWKS"), "{message}");
        assert!(!message.contains("token"), "{message}");
    }
}

#[test]
fn ec_jwk_coordinates_must_have_fixed_length() {
    let sk = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut jwk = sk.to_public_jwk().unwrap();
    // Strip one byte from x: RFC 7518 §6.2.1.2 requires the full length.
    let x = jwt_core::b64::decode(jwk.x.as_ref().unwrap().as_bytes(), "x").unwrap();
    jwk.x = Some(jwt_core::b64::encode(&x[1..]));
    assert_eq!(
        VerifyingKey::from_jwk(&jwk).unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
}
