//! The attacks RFC 8725 describes, and the misuse the issue lists, each as a test.

mod common;

use common::{data, raw_token, EXP, SECRET};
use jwt_core::{
    b64, dangerous, Algorithm, ErrorKind, Jwk, KeySet, Signer, SigningKey, Validation, Verifier,
    VerifyingKey,
};

fn hs256_verifier() -> Verifier {
    Verifier::new(
        VerifyingKey::hmac(SECRET).unwrap(),
        Validation::new([Algorithm::HS256]),
    )
    .unwrap()
}

fn claims() -> String {
    format!(r#"{{"sub":"alice","exp":{EXP}}}"#)
}

fn kind(v: &Verifier, token: &str) -> ErrorKind {
    v.verify::<serde_json::Value>(token).unwrap_err().kind()
}

#[test]
fn alg_none_is_refused() {
    let header = b64::encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64::encode(claims().as_bytes());
    let v = hs256_verifier();
    // With an empty signature, and with a bogus one: both are algorithm
    // attacks (the header's `alg` is judged before the signature part).
    assert_eq!(
        kind(&v, &format!("{header}.{payload}.")),
        ErrorKind::InvalidAlgorithm
    );
    assert_eq!(
        kind(&v, &format!("{header}.{payload}.AAAA")),
        ErrorKind::InvalidAlgorithm
    );
    for spelling in ["None", "NONE", "nOnE"] {
        let h = b64::encode(format!(r#"{{"alg":"{spelling}"}}"#).as_bytes());
        assert_eq!(
            kind(&v, &format!("{h}.{payload}.AAAA")),
            ErrorKind::InvalidAlgorithm
        );
    }
    assert!("none".parse::<Algorithm>().is_err());
}

#[test]
fn allowed_algorithms_are_mandatory() {
    let err = Verifier::new(VerifyingKey::hmac(SECRET).unwrap(), Validation::new([])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = Verifier::with_key_set(KeySet::new(), Validation::new([])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[test]
fn token_algorithm_must_be_allowed() {
    let key = SigningKey::hmac(SECRET).unwrap();
    let token = raw_token(&key, Algorithm::HS512, r#"{"alg":"HS512"}"#, &claims());
    assert_eq!(kind(&hs256_verifier(), &token), ErrorKind::InvalidAlgorithm);
}

#[test]
fn public_key_is_never_an_hmac_secret() {
    // The classic confusion: the attacker HMACs with the server's public key bytes.
    let pem = data("rsa2048.pkcs1.pub.pem");
    // jwt-core refuses PEM text as an HMAC secret outright.
    assert_eq!(
        SigningKey::hmac(&pem).unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    assert_eq!(
        VerifyingKey::hmac(&pem).unwrap_err().kind(),
        ErrorKind::InvalidKey
    );

    // A verifier holding the RSA key refuses to even allow HS256 with it…
    let rsa = VerifyingKey::from_pem(&pem).unwrap();
    let err =
        Verifier::new(rsa, Validation::new([Algorithm::RS256, Algorithm::HS256])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);

    // …and a token claiming HS256, HMAC'd with the PEM bytes by an attacker
    // (using a raw HMAC, since our API will not), is refused.
    let header = b64::encode(br#"{"alg":"HS256"}"#);
    let payload = b64::encode(claims().as_bytes());
    let input = format!("{header}.{payload}");
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &pem),
        input.as_bytes(),
    );
    let forged = format!("{input}.{}", b64::encode(tag.as_ref()));
    let rs = Verifier::new(
        VerifyingKey::from_pem(&pem).unwrap(),
        Validation::new([Algorithm::RS256]),
    )
    .unwrap();
    assert_eq!(kind(&rs, &forged), ErrorKind::InvalidAlgorithm);

    // Same through a key set that maps the token's kid to the RSA key.
    let mut set = KeySet::new();
    set.insert(VerifyingKey::from_pem(&pem).unwrap().with_kid("k1"))
        .unwrap();
    let v =
        Verifier::with_key_set(set, Validation::new([Algorithm::RS256, Algorithm::HS256])).unwrap();
    let header = b64::encode(br#"{"alg":"HS256","kid":"k1"}"#);
    let input = format!("{header}.{payload}");
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &pem),
        input.as_bytes(),
    );
    let forged = format!("{input}.{}", b64::encode(tag.as_ref()));
    assert_eq!(kind(&v, &forged), ErrorKind::InvalidAlgorithm);
}

#[test]
fn jwk_alg_binds_exactly() {
    let signing = SigningKey::generate(Algorithm::RS256).unwrap();
    let mut jwk: Jwk = signing.to_public_jwk().unwrap();
    jwk.alg = Some("RS256".into());
    let bound = VerifyingKey::from_jwk(&jwk).unwrap();
    // PS256 with the very same key pair: a valid signature, but not the bound algorithm.
    let token = Signer::new(signing, Algorithm::PS256)
        .unwrap()
        .sign(&serde_json::json!({"exp": EXP}))
        .unwrap();
    let err =
        Verifier::new(bound, Validation::new([Algorithm::RS256, Algorithm::PS256])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidAlgorithm);
    let mut set = KeySet::new();
    set.insert(VerifyingKey::from_jwk(&jwk).unwrap()).unwrap();
    let v =
        Verifier::with_key_set(set, Validation::new([Algorithm::RS256, Algorithm::PS256])).unwrap();
    assert_eq!(kind(&v, &token), ErrorKind::InvalidAlgorithm);
    // A JWK whose alg contradicts its key type is refused when loaded.
    jwk.alg = Some("ES256".into());
    assert_eq!(
        VerifyingKey::from_jwk(&jwk).unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
}

#[test]
fn key_family_is_bound() {
    let ec = SigningKey::generate(Algorithm::ES256).unwrap();
    assert_eq!(
        Signer::new(ec, Algorithm::ES384).unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
    assert_eq!(
        Signer::new(ed, Algorithm::RS256).unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
}

#[test]
fn weak_hmac_secrets_are_refused() {
    let short = [7u8; 31];
    assert_eq!(
        Signer::new(SigningKey::hmac(&short).unwrap(), Algorithm::HS256)
            .unwrap_err()
            .kind(),
        ErrorKind::WeakKey
    );
    let v48 = [7u8; 48];
    assert_eq!(
        Signer::new(SigningKey::hmac(&v48).unwrap(), Algorithm::HS512)
            .unwrap_err()
            .kind(),
        ErrorKind::WeakKey
    );
    Signer::new(SigningKey::hmac(&v48).unwrap(), Algorithm::HS384).unwrap();
    assert_eq!(
        Verifier::new(
            VerifyingKey::hmac(&short).unwrap(),
            Validation::new([Algorithm::HS256])
        )
        .unwrap_err()
        .kind(),
        ErrorKind::WeakKey
    );
    // The loudly named opt-out allows legacy verification, never signing.
    let legacy = dangerous::allow_weak_verification_keys(Validation::new([Algorithm::HS256]));
    let v = Verifier::new(VerifyingKey::hmac(&short).unwrap(), legacy).unwrap();
    let token = raw_token(
        &SigningKey::hmac(&short).unwrap(),
        Algorithm::HS256,
        r#"{"alg":"HS256"}"#,
        &claims(),
    );
    v.verify::<serde_json::Value>(&token).unwrap();
}

#[test]
fn weak_rsa_keys_are_refused() {
    let private = data("rsa1024.pk8.pem");
    let public = data("rsa1024.pub.pem");
    // aws-lc-rs refuses to even load a signing key this small: reported as weak.
    let err = SigningKey::from_pem(&private).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WeakKey, "{err}");
    assert!(err.to_string().contains("2048"), "{err}");
    let vk = VerifyingKey::from_pem(&public).unwrap();
    assert_eq!(vk.rsa_bits(), Some(1024));
    assert_eq!(
        Verifier::new(vk, Validation::new([Algorithm::RS256]))
            .unwrap_err()
            .kind(),
        ErrorKind::WeakKey
    );
    // Legacy opt-out: RS256 verification with a 1024-bit key (signature made by openssl).
    let legacy = dangerous::allow_weak_verification_keys(Validation::new([Algorithm::RS256]));
    Verifier::new(VerifyingKey::from_pem(&public).unwrap(), legacy).unwrap();
    // PS* has no legacy path.
    let legacy_ps = dangerous::allow_weak_verification_keys(Validation::new([Algorithm::PS256]));
    assert_eq!(
        Verifier::new(VerifyingKey::from_pem(&public).unwrap(), legacy_ps)
            .unwrap_err()
            .kind(),
        ErrorKind::WeakKey
    );
}

#[test]
fn weak_keys_pass_the_usability_check_only_through_dangerous() {
    // The public check has no `allow_weak` switch: a 1024-bit RSA key and a
    // 16-byte HMAC secret are weak there, for every algorithm.
    let rsa = VerifyingKey::from_pem(&data("rsa1024.pub.pem")).unwrap();
    let short = VerifyingKey::hmac(&[7u8; 16]).unwrap();
    for (key, alg) in [(&rsa, Algorithm::RS256), (&short, Algorithm::HS256)] {
        let err = key.check_usable(alg).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WeakKey, "{alg}: {err}");
    }
    // The escape hatch accepts what `allow_weak_verification_keys` verifies
    // with: RS256/RS512 and short HMAC secrets...
    dangerous::check_usable_allowing_weak_keys(&rsa, Algorithm::RS256).unwrap();
    dangerous::check_usable_allowing_weak_keys(&rsa, Algorithm::RS512).unwrap();
    dangerous::check_usable_allowing_weak_keys(&short, Algorithm::HS256).unwrap();
    // ...but not PS* (no legacy path) nor a key of the wrong family.
    assert_eq!(
        dangerous::check_usable_allowing_weak_keys(&rsa, Algorithm::PS256)
            .unwrap_err()
            .kind(),
        ErrorKind::WeakKey
    );
    assert_eq!(
        dangerous::check_usable_allowing_weak_keys(&rsa, Algorithm::HS256)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidKey
    );
    // The refusals with weak keys allowed say why: RS384 has no legacy mode,
    // and below 1024 bits nothing verifies (a weak_key, never a token
    // blamed with invalid_signature).
    let err = dangerous::check_usable_allowing_weak_keys(&rsa, Algorithm::RS384).unwrap_err();
    assert!(err.to_string().contains("RS256 and RS512 only"), "{err}");
    let tiny = VerifyingKey::from_pem(&data("rsa512.pub.pem")).unwrap();
    for alg in [Algorithm::RS256, Algorithm::RS512] {
        let err = dangerous::check_usable_allowing_weak_keys(&tiny, alg).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WeakKey, "{alg}: {err}");
        assert!(err.to_string().contains("below 1024 bits"), "{err}");
    }
    // Strong keys pass both ways.
    let strong = VerifyingKey::hmac(SECRET).unwrap();
    strong.check_usable(Algorithm::HS256).unwrap();
    dangerous::check_usable_allowing_weak_keys(&strong, Algorithm::HS256).unwrap();
}

#[test]
fn legacy_weak_rsa_verification_does_not_leak_into_strict_checks() {
    // A token signed by openssl with the 1024-bit key.
    let token = String::from_utf8(data("rsa1024.rs256.jwt")).unwrap();
    let token = token.trim();
    let key = VerifyingKey::from_pem(&data("rsa1024.pub.pem")).unwrap();
    let legacy = dangerous::allow_weak_verification_keys(Validation::new([Algorithm::RS256]));
    let v = Verifier::new(key.clone(), legacy).unwrap();
    let claims = v.verify::<serde_json::Value>(token).unwrap().claims;
    assert_eq!(claims["sub"], "legacy");
    // The same key, used strictly afterwards (and a clone of it), still refuses.
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = b64::decode(sig.as_bytes(), "sig").unwrap();
    let err = key
        .verify_raw(Algorithm::RS256, input.as_bytes(), &sig)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WeakKey, "{err}");
    assert!(Verifier::new(key, Validation::new([Algorithm::RS256])).is_err());
}

#[test]
fn header_keys_and_urls_are_never_trusted() {
    // The attacker signs with their own key and ships its public key in `jwk`,
    // and points `jku`/`x5u` at their server.
    let attacker = SigningKey::generate(Algorithm::ES256).unwrap();
    let attacker_jwk = serde_json::to_string(&attacker.to_public_jwk().unwrap()).unwrap();
    let header = format!(
        r#"{{"alg":"ES256","jwk":{attacker_jwk},"jku":"http://127.0.0.1:9/jwks","x5u":"http://127.0.0.1:9/cert","x5c":["MIIB"]}}"#
    );
    let token = raw_token(&attacker, Algorithm::ES256, &header, &claims());
    let legit = SigningKey::generate(Algorithm::ES256).unwrap();
    let v = Verifier::new(legit.verifying_key(), Validation::new([Algorithm::ES256])).unwrap();
    assert_eq!(kind(&v, &token), ErrorKind::InvalidSignature);
    // The parameters are visible for inspection only.
    let h = dangerous::insecure_decode_header(&token).unwrap();
    assert!(h.extra.contains_key("jwk") && h.extra.contains_key("jku"));
}

#[test]
fn crit_and_unencoded_payloads_are_refused() {
    let key = SigningKey::hmac(SECRET).unwrap();
    let v = hs256_verifier();
    for header in [
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        r#"{"alg":"HS256","crit":[]}"#,
        r#"{"alg":"HS256","b64":false}"#,
    ] {
        let token = raw_token(&key, Algorithm::HS256, header, &claims());
        assert_eq!(kind(&v, &token), ErrorKind::Unsupported, "{header}");
    }
}

#[test]
fn only_canonical_base64url_is_accepted() {
    let key = SigningKey::hmac(SECRET).unwrap();
    let v = hs256_verifier();
    let token = raw_token(&key, Algorithm::HS256, r#"{"alg":"HS256"}"#, &claims());
    v.verify::<serde_json::Value>(&token).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    // Padding.
    assert_eq!(kind(&v, &format!("{input}.{sig}=")), ErrorKind::Malformed);
    // The standard alphabet instead of the URL-safe one.
    let std_sig = sig.replace('-', "+").replace('_', "/");
    if std_sig != sig {
        assert_eq!(
            kind(&v, &format!("{input}.{std_sig}")),
            ErrorKind::Malformed
        );
    }
    assert_eq!(kind(&v, &format!("{input}.{sig}+")), ErrorKind::Malformed);
    // Whitespace.
    assert_eq!(kind(&v, &format!("{input}. {sig}")), ErrorKind::Malformed);
    assert_eq!(kind(&v, &format!("{input}.{sig}\n")), ErrorKind::Malformed);
    // Non-zero trailing bits: a 32-byte HS256 tag is 43 characters; the last
    // one carries 4 padding bits. Changing them gives a second spelling of the
    // same bytes, which must be refused.
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    let twin = alphabet.as_bytes()[(idx & !0b11) | 0b01] as char;
    let twin_sig = format!("{}{twin}", &sig[..sig.len() - 1]);
    assert_eq!(
        kind(&v, &format!("{input}.{twin_sig}")),
        ErrorKind::Malformed
    );
}

#[test]
fn duplicate_member_names_are_refused() {
    let key = SigningKey::hmac(SECRET).unwrap();
    let v = hs256_verifier();
    let dup_header = raw_token(
        &key,
        Algorithm::HS256,
        r#"{"alg":"HS256","alg":"HS256"}"#,
        &claims(),
    );
    assert_eq!(kind(&v, &dup_header), ErrorKind::Malformed);
    let dup_kid = raw_token(
        &key,
        Algorithm::HS256,
        r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
        &claims(),
    );
    assert_eq!(kind(&v, &dup_kid), ErrorKind::Malformed);
    let dup_exp = raw_token(
        &key,
        Algorithm::HS256,
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"exp":1,"sub":"x","exp":{EXP}}}"#),
    );
    let err = v.verify::<serde_json::Value>(&dup_exp).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    assert!(
        err.to_string().contains("duplicate member name \"exp\""),
        "{err}"
    );
    let nested = raw_token(
        &key,
        Algorithm::HS256,
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"exp":{EXP},"a":{{"b":1,"b":2}}}}"#),
    );
    assert_eq!(kind(&v, &nested), ErrorKind::Malformed);

    // The same through typed claims: whether the caller's type reads the
    // member, skips it, or collects everything, and however it is spelled.
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Reads {
        exp: u64,
        a: std::collections::HashMap<String, u8>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Skips {
        exp: u64,
    }
    for payload in [
        format!(r#"{{"exp":{EXP},"a":{{"b":1,"b":2}}}}"#),
        format!(r#"{{"exp":{EXP},"a":{{"b":1,"\u0062":2}}}}"#),
        format!(r#"{{"exp":{EXP},"a":{{"b":1}},"z":[{{"c":1,"c":2}}]}}"#),
        format!(r#"{{"exp":{EXP},"a":{{"b":1}},"\u0065xp":{EXP}}}"#),
        format!(r#"{{"exp":{EXP},"a":{{"b":1}},"a":{{"b":1}}}}"#),
    ] {
        let token = raw_token(&key, Algorithm::HS256, r#"{"alg":"HS256"}"#, &payload);
        for err in [
            v.verify::<Reads>(&token).unwrap_err(),
            v.verify::<Skips>(&token).unwrap_err(),
            v.verify::<serde_json::Map<String, serde_json::Value>>(&token)
                .unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::Malformed, "{payload}: {err}");
            assert!(
                err.to_string().contains("duplicate member name"),
                "{payload}: {err}"
            );
        }
    }
}

#[test]
fn size_limit_is_checked_before_decoding() {
    let v = hs256_verifier();
    // Not even base64: only the size can have been looked at.
    let huge = "!".repeat(64 * 1024 + 1);
    assert_eq!(kind(&v, &huge), ErrorKind::TooLarge);
    let key = SigningKey::hmac(SECRET).unwrap();
    let token = raw_token(&key, Algorithm::HS256, r#"{"alg":"HS256"}"#, &claims());
    let small = Verifier::new(
        VerifyingKey::hmac(SECRET).unwrap(),
        Validation::new([Algorithm::HS256]).max_size(token.len() - 1),
    )
    .unwrap();
    assert_eq!(kind(&small, &token), ErrorKind::TooLarge);
    let exact = Verifier::new(
        VerifyingKey::hmac(SECRET).unwrap(),
        Validation::new([Algorithm::HS256]).max_size(token.len()),
    )
    .unwrap();
    exact.verify::<serde_json::Value>(&token).unwrap();
}

#[test]
fn nesting_depth_is_bounded() {
    let key = SigningKey::hmac(SECRET).unwrap();
    let v = hs256_verifier();
    let deep = format!(
        r#"{{"exp":{EXP},"a":{}1{}}}"#,
        "[".repeat(jwt_core::MAX_DEPTH + 1),
        "]".repeat(jwt_core::MAX_DEPTH + 1)
    );
    let token = raw_token(&key, Algorithm::HS256, r#"{"alg":"HS256"}"#, &deep);
    let err = v.verify::<serde_json::Value>(&token).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    assert!(err.to_string().contains("nested deeper"), "{err}");
    let ok = format!(
        r#"{{"exp":{EXP},"a":{}1{}}}"#,
        "[".repeat(jwt_core::MAX_DEPTH - 2),
        "]".repeat(jwt_core::MAX_DEPTH - 2)
    );
    let token = raw_token(&key, Algorithm::HS256, r#"{"alg":"HS256"}"#, &ok);
    v.verify::<serde_json::Value>(&token).unwrap();
}

#[test]
fn structural_garbage_is_malformed_not_a_panic() {
    let v = hs256_verifier();
    for token in [
        "",
        ".",
        "..",
        "...",
        "a",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        "..sig",
        "e30..",
        "e30.e30.",
        "\u{0}.\u{0}.\u{0}",
        "é.é.é",
        "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
    ] {
        let err = v.verify::<serde_json::Value>(token).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Malformed | ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm
            ),
            "{token:?} gave {err}"
        );
    }
    // A header that is JSON but not an object, or has a non-string alg.
    let key = SigningKey::hmac(SECRET).unwrap();
    for header in [
        r#"[]"#,
        r#""HS256""#,
        r#"{"alg":256}"#,
        r#"{}"#,
        r#"{"alg":"HS256","typ":1}"#,
    ] {
        let token = raw_token(&key, Algorithm::HS256, header, &claims());
        assert_eq!(kind(&v, &token), ErrorKind::Malformed, "{header}");
    }
    // A payload that is not an object.
    for payload in ["[]", "1", "\"x\"", "null", "{", ""] {
        let token = raw_token(&key, Algorithm::HS256, r#"{"alg":"HS256"}"#, payload);
        assert_eq!(kind(&v, &token), ErrorKind::Malformed, "{payload}");
    }
}

#[test]
fn unknown_kid_in_a_key_set() {
    let a = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("a");
    let b = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("b");
    let mut set = KeySet::new();
    set.insert(a.verifying_key()).unwrap();
    let v = Verifier::with_key_set(set, Validation::new([Algorithm::ES256])).unwrap();
    let token = Signer::new(b, Algorithm::ES256)
        .unwrap()
        .sign(&serde_json::json!({"exp": EXP}))
        .unwrap();
    let err = v.verify::<serde_json::Value>(&token).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKey);
    assert!(err.to_string().contains("kid \"b\""), "{err}");
    // Duplicate kids cannot be inserted.
    let mut set = KeySet::new();
    set.insert(
        SigningKey::generate(Algorithm::ES256)
            .unwrap()
            .with_kid("x")
            .verifying_key(),
    )
    .unwrap();
    assert_eq!(
        set.insert(
            SigningKey::generate(Algorithm::ES256)
                .unwrap()
                .with_kid("x")
                .verifying_key()
        )
        .unwrap_err()
        .kind(),
        ErrorKind::InvalidKey
    );
}

#[test]
fn errors_say_what_to_do() {
    let err = Verifier::new(
        VerifyingKey::hmac(&[1u8; 8]).unwrap(),
        Validation::new([Algorithm::HS256]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("jwtkit keys generate"), "{err}");
    let err = "none".parse::<Algorithm>().unwrap_err();
    assert!(err.to_string().contains("never accepted"), "{err}");
}
