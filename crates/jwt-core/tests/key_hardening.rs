//! Regression tests for the key and algorithm holes of issue 11 (items 8, 9,
//! 10 and 11): unsigned tokens reported as an algorithm attack, keys refused
//! as HMAC secrets in every form, Ed25519 public keys of small order, and JWK
//! and PEM hygiene.

mod common;

use common::{data, EXP, SECRET};
use jwt_core::{
    b64, dangerous, Algorithm, ErrorKind, Jwk, Jwks, KeySet, SigningKey, Validation, Verifier,
    VerifyingKey,
};

fn claims() -> String {
    format!(r#"{{"sub":"alice","exp":{EXP}}}"#)
}

/// Asserts an error of `kind` whose message contains `fragment`.
#[track_caller]
fn assert_err<T: std::fmt::Debug>(
    result: Result<T, jwt_core::Error>,
    kind: ErrorKind,
    fragment: &str,
) {
    let err = result.expect_err("expected an error");
    assert_eq!(err.kind(), kind, "{err}");
    assert!(
        err.to_string().contains(fragment),
        "{fragment:?} not in: {err}"
    );
}

// ---------------------------------------------------------------- item 8

#[test]
fn unsigned_tokens_are_an_algorithm_attack_not_malformed() {
    let payload = b64::encode(claims().as_bytes());
    let single = Verifier::new(
        VerifyingKey::hmac(SECRET).unwrap(),
        Validation::new([Algorithm::HS256]),
    )
    .unwrap();
    let mut set = KeySet::new();
    set.insert(
        SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .verifying_key(),
    )
    .unwrap();
    let by_kid = Verifier::with_key_set(set, Validation::new([Algorithm::ES256])).unwrap();
    for spelling in ["none", "None", "NONE", "nOnE"] {
        for header in [
            format!(r#"{{"alg":"{spelling}"}}"#),
            format!(r#"{{"alg":"{spelling}","typ":"JWT"}}"#),
            format!(r#"{{"typ":"JWT","kid":"k","alg":"{spelling}"}}"#),
        ] {
            let token = format!("{}.{payload}.", b64::encode(header.as_bytes()));
            for verifier in [&single, &by_kid] {
                assert_err(
                    verifier.verify::<serde_json::Value>(&token),
                    ErrorKind::InvalidAlgorithm,
                    "unsigned tokens (`none`) are never accepted",
                );
            }
            // The unverified decoders judge the header the same way.
            assert_err(
                dangerous::insecure_decode(&token),
                ErrorKind::InvalidAlgorithm,
                "never accepted",
            );
            assert_err(
                dangerous::insecure_decode_header(&token),
                ErrorKind::InvalidAlgorithm,
                "never accepted",
            );
        }
    }
    // An empty signature under a real algorithm is still a malformed token.
    let header = b64::encode(br#"{"alg":"HS256"}"#);
    assert_err(
        single.verify::<serde_json::Value>(&format!("{header}.{payload}.")),
        ErrorKind::Malformed,
        "the signature part is empty",
    );
}

// ---------------------------------------------------------------- item 9

/// Every form of key material that must never become an HMAC secret, with
/// the fragment of the refusal that names what it looks like.
fn key_material_forms() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let pub_pem = data("rsa2048.pkcs1.pub.pem");
    let spki_pem = data("ec256.pub.pem");
    let mut commented = b"# the API gateway's verification key\n".to_vec();
    commented.extend_from_slice(&spki_pem);
    let mut bom = "\u{feff}".as_bytes().to_vec();
    bom.extend_from_slice(&pub_pem);
    let pem_body: Vec<u8> = String::from_utf8(spki_pem.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes();
    let jwk = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .to_public_jwk()
        .unwrap();
    let pretty_jwk = serde_json::to_vec_pretty(&jwk).unwrap();
    let mut indented_jwk = b"\n  ".to_vec();
    indented_jwk.extend_from_slice(&pretty_jwk);
    vec![
        ("PEM", pub_pem, "a PEM document"),
        ("PEM after a comment line", commented, "a PEM document"),
        ("PEM with a UTF-8 BOM", bom, "a PEM document"),
        ("openssl x509 -text", data("ec256.cert.text.txt"), "a PEM document"),
        (
            "openssl x509 -noout -text",
            data("ec256.cert.noout-text.txt"),
            "`openssl ... -text` output",
        ),
        ("DER SPKI (EC)", data("ec256.pub.der"), "a DER public key"),
        ("DER SPKI (RSA)", data("rsa2048.pub.der"), "a DER public key"),
        ("DER certificate", data("ec256.cert.der"), "a DER X.509 certificate"),
        ("DER PKCS#8", data("rsa2048.pk8.der"), "a DER PKCS#8 private key"),
        ("DER PKCS#1 private", data("rsa2048.pkcs1.der"), "a DER PKCS#1 RSA key"),
        ("DER PKCS#1 public", data("rsa2048.pkcs1.pub.der"), "a DER PKCS#1 RSA key"),
        ("DER SEC1", data("ec256.sec1.der"), "a DER SEC1 EC private key"),
        ("PEM body without armor", pem_body, "the base64 form of a DER key"),
        ("JWK", indented_jwk, "a JWK"),
        (
            "OpenSSH public key",
            b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@host".to_vec(),
            "an OpenSSH public key",
        ),
    ]
}

#[test]
fn key_material_is_never_an_hmac_secret() {
    for (form, bytes, what) in key_material_forms() {
        for result in [
            SigningKey::hmac(&bytes).map(drop),
            VerifyingKey::hmac(&bytes).map(drop),
        ] {
            let err = result.expect_err(form);
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{form}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(what), "{form}: {what:?} not in: {msg}");
            assert!(msg.contains("not a secret"), "{form}: {msg}");
            assert!(msg.contains("--key"), "{form}: says what to do: {msg}");
        }
        // The same bytes as an `oct` JWK's `k`, for signing and verifying.
        let jwk = Jwk {
            kty: "oct".into(),
            k: Some(b64::encode(&bytes)),
            ..Jwk::default()
        };
        assert_err(SigningKey::from_jwk(&jwk), ErrorKind::InvalidKey, what);
        assert_err(VerifyingKey::from_jwk(&jwk), ErrorKind::InvalidKey, what);
    }
}

/// Found by the outside review after item 9's fix: key material in other
/// spellings still passed as an HMAC secret.
#[test]
fn key_material_in_other_spellings_is_never_an_hmac_secret() {
    let spki = data("ec256.pub.der");
    let pem = String::from_utf8(data("ec256.pub.pem")).unwrap();
    let hex: String = spki.iter().map(|b| format!("{b:02x}")).collect();
    let colons: Vec<String> = spki.iter().map(|b| format!("{b:02X}")).collect();
    let jwk = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .to_public_jwk()
        .unwrap();
    let mut point = vec![0x04];
    point.extend(b64::decode(jwk.x.as_deref().unwrap().as_bytes(), "x").unwrap());
    point.extend(b64::decode(jwk.y.as_deref().unwrap().as_bytes(), "y").unwrap());
    let utf16 = |text: &str, bom: bool| -> Vec<u8> {
        let mut out = if bom { vec![0xff, 0xfe] } else { Vec::new() };
        out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out
    };
    let forms: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "DER SPKI + newline",
            [&spki[..], b"\n"].concat(),
            "DER public key",
        ),
        ("hex of DER", hex.clone().into_bytes(), "hex form"),
        (
            "HEX:WITH:COLONS of DER",
            colons.join(":").into_bytes(),
            "hex form",
        ),
        (
            "lowercase PEM armor",
            pem.to_lowercase().into_bytes(),
            "PEM document",
        ),
        (
            "PEM as UTF-16LE with BOM",
            utf16(&pem, true),
            "PEM document",
        ),
        ("PEM as UTF-16LE", utf16(&pem, false), "PEM document"),
        (
            "a JSON array of JWKs",
            serde_json::to_vec(&vec![jwk.clone()]).unwrap(),
            "list of JWKs",
        ),
        (
            "raw P-256 point 04||x||y",
            point.clone(),
            "raw EC public key",
        ),
        (
            "PEM with a space after the dashes",
            pem.replace("-----BEGIN", "----- BEGIN").into_bytes(),
            "PEM document",
        ),
        (
            "RFC 4716 (ssh-keygen -e)",
            b"---- BEGIN SSH2 PUBLIC KEY ----\nAAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n---- END SSH2 PUBLIC KEY ----\n".to_vec(),
            "PEM document",
        ),
        (
            "authorized_keys line with options",
            b"from=\"10.0.0.1\",no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host".to_vec(),
            "OpenSSH public key",
        ),
        (
            "hex of a raw point",
            point
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
            "hex form",
        ),
    ];
    for (form, bytes, what) in forms {
        for result in [
            SigningKey::hmac(&bytes).map(drop),
            VerifyingKey::hmac(&bytes).map(drop),
        ] {
            let err = result.expect_err(form);
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{form}: {err}");
            assert!(
                err.to_string().contains(what),
                "{form}: {what:?} not in: {err}"
            );
        }
    }
}

#[test]
fn random_secrets_are_still_accepted() {
    // The checks must not refuse real secrets: random bytes (including ones
    // that start with the DER SEQUENCE tag or base64 `M`) and text secrets.
    let mut secret = [0u8; 64];
    for i in 0..2000 {
        aws_lc_rs::rand::fill(&mut secret).unwrap();
        if i % 2 == 0 {
            secret[0] = 0x30;
            secret[1] = 62;
        }
        SigningKey::hmac(&secret).unwrap();
        let text = b64::encode(&secret);
        let text = format!("M{}", &text[1..]);
        SigningKey::hmac(text.as_bytes()).unwrap();
    }
    // Random hex secrets (`openssl rand -hex 32`), random bytes shaped like
    // an EC point's prefix and length, and UTF-16-looking random bytes.
    for _ in 0..2000 {
        aws_lc_rs::rand::fill(&mut secret).unwrap();
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        SigningKey::hmac(hex.as_bytes()).unwrap();
        let mut point = [0u8; 65];
        aws_lc_rs::rand::fill(&mut point).unwrap();
        point[0] = 0x04;
        SigningKey::hmac(&point).unwrap();
        secret[1] = 0;
        secret[3] = 0;
        SigningKey::hmac(&secret).unwrap();
    }
    SigningKey::hmac(SECRET).unwrap();
    SigningKey::hmac(b"correct horse battery staple, and a public key: no").unwrap();
}

// ---------------------------------------------------------------- item 10

/// Every encoding of an Ed25519 point of small order: the 8 low-order points
/// in their canonical encodings, and the 6 non-canonical encodings of them
/// (y >= p, or x = 0 with the sign bit set). Derived from libsodium's
/// blocklist in `ge25519_has_small_order`
/// (src/libsodium/crypto_core/ed25519/ref10/ed25519_ref10.c), which lists the
/// 7 y values and ignores the sign bit; see also "Taming the many EdDSAs"
/// (Chalkias et al., 2020), table of small-order points.
const ED25519_SMALL_ORDER: [(&str, &str); 14] = [
    // canonical
    (
        "identity (order 1)",
        "0100000000000000000000000000000000000000000000000000000000000000",
    ),
    (
        "(0, -1) (order 2)",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ),
    (
        "(+sqrt(-1), 0) (order 4)",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
    (
        "(-sqrt(-1), 0) (order 4)",
        "0000000000000000000000000000000000000000000000000000000000000080",
    ),
    (
        "order 8, y1, x even",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    ),
    (
        "order 8, y1, x odd",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    ),
    (
        "order 8, y2, x even",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    ),
    (
        "order 8, y2, x odd",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    ),
    // non-canonical
    (
        "identity, x = -0",
        "0100000000000000000000000000000000000000000000000000000000000080",
    ),
    (
        "identity, y = p+1",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ),
    (
        "identity, y = p+1, x = -0",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ),
    (
        "(0, -1), x = -0",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ),
    (
        "order 4, y = p",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ),
    (
        "order 4, y = p, sign bit",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ),
];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// SubjectPublicKeyInfo DER of a raw Ed25519 public key (RFC 8410).
fn ed25519_spki(raw: &[u8]) -> Vec<u8> {
    let mut der = hex("302a300506032b6570032100");
    der.extend_from_slice(raw);
    der
}

#[test]
fn ed25519_public_keys_of_small_order_are_refused_in_every_form() {
    for (name, encoding) in ED25519_SMALL_ORDER {
        let raw = hex(encoding);
        let der = ed25519_spki(&raw);
        let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", der.clone()));
        let jwk = Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(b64::encode(&raw)),
            ..Jwk::default()
        };
        for (form, result) in [
            ("DER", VerifyingKey::from_der(&der).map(drop)),
            ("PEM", VerifyingKey::from_pem(pem.as_bytes()).map(drop)),
            ("JWK", VerifyingKey::from_jwk(&jwk).map(drop)),
        ] {
            let err = result.expect_err(&format!("{name} as {form}"));
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{name} as {form}: {err}");
            assert!(
                err.to_string().contains("small order"),
                "{name} as {form}: {err}"
            );
        }
        // In a JWKS it is skipped, with the reason.
        let set = KeySet::from_jwks(&Jwks {
            keys: vec![Jwk {
                kid: Some("low".into()),
                ..jwk
            }],
        });
        assert!(set.is_empty(), "{name}");
        assert!(set.skipped()[0].1.contains("small order"), "{name}");
    }
    // Real keys still load, in every form.
    let real = VerifyingKey::from_pem(&data("ed25519.pub.pem")).unwrap();
    let jwk = real.to_public_jwk().unwrap();
    VerifyingKey::from_jwk(&jwk).unwrap();
    VerifyingKey::from_der(&ed25519_spki(
        &b64::decode(jwk.x.unwrap().as_bytes(), "x").unwrap(),
    ))
    .unwrap();
}

// ---------------------------------------------------------------- item 11

fn private_jwk(key: &SigningKey) -> Jwk {
    // jwt-core exports no private JWK; build it from the PKCS#8 document.
    let der = key.to_pkcs8_der().unwrap();
    let mut jwk = key.to_public_jwk().unwrap();
    jwk.alg = None;
    jwk.kid = None;
    jwk.use_ = None;
    match jwk.kty.as_str() {
        // PKCS#8 v1 EC and Ed25519 keys end with the private scalar/seed in an
        // OCTET STRING; extract it by its known position.
        "OKP" => jwk.d = Some(b64::encode(&der[16..48])),
        "EC" => jwk.d = Some(b64::encode(&der[36..68])),
        other => panic!("unexpected {other}"),
    }
    jwk
}

#[test]
fn signing_refuses_a_jwk_whose_use_is_not_sig() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut jwk = private_jwk(&key);
    // Sanity: the JWK helper gives a usable key.
    SigningKey::from_jwk(&jwk).unwrap();
    jwk.use_ = Some("enc".into());
    assert_err(
        SigningKey::from_jwk(&jwk),
        ErrorKind::InvalidKey,
        "the JWK's `use` is \"enc\"",
    );
    assert_err(
        VerifyingKey::from_jwk(&jwk),
        ErrorKind::InvalidKey,
        "the JWK's `use` is \"enc\"",
    );
    jwk.use_ = Some("sig".into());
    SigningKey::from_jwk(&jwk).unwrap();
    // A JWKS holding it (as the CLI's `sign --key jwks.json` reads it).
    jwk.use_ = Some("enc".into());
    let jwks = Jwks::from_json(
        format!(r#"{{"keys":[{}]}}"#, serde_json::to_string(&jwk).unwrap()).as_bytes(),
    )
    .unwrap();
    assert_err(
        SigningKey::from_jwk(&jwks.keys[0]),
        ErrorKind::InvalidKey,
        "only `sig` keys",
    );
}

#[test]
fn a_private_jwk_must_match_its_public_part() {
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        let a = private_jwk(&SigningKey::generate(alg).unwrap());
        let b = SigningKey::generate(alg).unwrap().to_public_jwk().unwrap();
        VerifyingKey::from_jwk(&a).unwrap();
        // A's private part with B's public part: tokens signed by A's
        // private key would not verify, and B's would: refuse at load.
        let mixed = Jwk {
            x: b.x.clone(),
            y: b.y.clone(),
            ..a.clone()
        };
        let fragment = "private part does not belong to its public part";
        assert_err(
            VerifyingKey::from_jwk(&mixed),
            ErrorKind::InvalidKey,
            fragment,
        );
        assert_err(
            SigningKey::from_jwk(&mixed),
            ErrorKind::InvalidKey,
            fragment,
        );
        let mut set_jwk = mixed.clone();
        set_jwk.kid = Some("mixed".into());
        let set = KeySet::from_jwks(&Jwks {
            keys: vec![set_jwk],
        });
        assert!(set.is_empty(), "{alg}: {:?}", set.skipped());
    }
}

#[test]
fn a_pem_file_must_hold_one_key() {
    let ec = data("ec256.sec1.pem");
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let other_pem = other.to_pkcs8_pem().unwrap();
    let other_pub = pem::encode(&pem::Pem::new(
        "PUBLIC KEY",
        hex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
            .into_iter()
            .chain(other_public_point(&other))
            .collect::<Vec<u8>>(),
    ));
    let cat = |parts: &[&[u8]]| parts.concat();

    // Two private keys: neither signing nor verifying guesses.
    let two = cat(&[&ec, other_pem.as_bytes()]);
    assert_err(
        SigningKey::from_pem(&two),
        ErrorKind::InvalidKey,
        "2 private keys",
    );
    assert_err(
        VerifyingKey::from_pem(&two),
        ErrorKind::InvalidKey,
        "several different keys",
    );
    // Two different public keys.
    let two_pub = cat(&[&data("ec256.pub.pem"), other_pub.as_bytes()]);
    assert_err(
        VerifyingKey::from_pem(&two_pub),
        ErrorKind::InvalidKey,
        "several different keys",
    );
    // A private key with someone else's public key or certificate.
    let mixed = cat(&[&ec, other_pub.as_bytes()]);
    assert_err(
        SigningKey::from_pem(&mixed),
        ErrorKind::InvalidKey,
        "several different keys",
    );
    assert_err(
        VerifyingKey::from_pem(&mixed),
        ErrorKind::InvalidKey,
        "several different keys",
    );
    let leaf_cert_other_key = cat(&[other_pem.as_bytes(), &data("ec256.cert.pem")]);
    assert_err(
        SigningKey::from_pem(&leaf_cert_other_key),
        ErrorKind::InvalidKey,
        "several different keys",
    );

    // One key, written twice or with its own public part: fine.
    let own = cat(&[&ec, &data("ec256.pub.pem")]);
    let signing = SigningKey::from_pem(&own).unwrap();
    assert_eq!(
        VerifyingKey::from_pem(&own).unwrap().thumbprint().unwrap(),
        signing.thumbprint().unwrap()
    );
    // `openssl ecparam -genkey` output: EC PARAMETERS is not a key.
    SigningKey::from_pem(&data("ec256.ecparam-genkey.pem")).unwrap();
    VerifyingKey::from_pem(&data("ec256.ecparam-genkey.pem")).unwrap();

    // A certificate chain verifies with its first certificate (the leaf),
    // alone or after the leaf's private key.
    let leaf = SigningKey::from_pem(&data("chain.leaf.key.pem")).unwrap();
    let chain = data("chain.pem");
    assert_eq!(
        VerifyingKey::from_pem(&chain)
            .unwrap()
            .thumbprint()
            .unwrap(),
        leaf.thumbprint().unwrap()
    );
    let bundle = cat(&[&data("chain.leaf.key.pem"), &chain]);
    assert_eq!(
        SigningKey::from_pem(&bundle).unwrap().thumbprint().unwrap(),
        leaf.thumbprint().unwrap()
    );
    assert_eq!(
        VerifyingKey::from_pem(&bundle)
            .unwrap()
            .thumbprint()
            .unwrap(),
        leaf.thumbprint().unwrap()
    );
    // …but not when the chain's leaf is another key.
    let wrong_leaf = cat(&[&ec, &chain]);
    assert_err(
        VerifyingKey::from_pem(&wrong_leaf),
        ErrorKind::InvalidKey,
        "several different keys",
    );
}

/// The uncompressed public point of a P-256 key, from its public JWK.
fn other_public_point(key: &SigningKey) -> Vec<u8> {
    let jwk = key.to_public_jwk().unwrap();
    let mut point = vec![4u8];
    point.extend(b64::decode(jwk.x.unwrap().as_bytes(), "x").unwrap());
    point.extend(b64::decode(jwk.y.unwrap().as_bytes(), "y").unwrap());
    point
}
