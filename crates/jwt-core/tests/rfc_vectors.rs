//! Known-answer tests from RFC 7515 appendix A, RFC 8037 appendix A and
//! RFC 7638 §3.1, verbatim.

use std::sync::Arc;

use jwt_core::{
    Algorithm, ErrorKind, Jwk, ManualClock, SigningKey, Validation, Verifier, VerifyingKey,
};

/// The RFC 7515 payload's `exp` is 1300819380 (2011-03-22); verify just before it.
fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_300_819_000))
}

const A1_JWK: &str = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
const A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

const A2_JWK: &str = r#"{"kty":"RSA","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB","d":"Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ","p":"4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc","q":"uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc","dp":"BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0","dq":"h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU","qi":"IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"}"#;
const A2_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

const A3_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;
const A3_TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

const A4_JWK: &str = r#"{"kty":"EC","crv":"P-521","x":"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk","y":"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2","d":"AY5pb7A0UFiB3RELSD64fTLOSV_jazdF7fLYyuTw8lOfRhWg6Y6rUrPAxerEzgdRhajnu0ferB0d53vM9mE15j2C"}"#;
const A4_TOKEN: &str = "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn";

const RFC8037_JWK: &str = r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
const RFC8037_TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn jwk(s: &str) -> Jwk {
    Jwk::from_json(s.as_bytes()).expect("RFC JWK parses")
}

fn split(token: &str) -> (&str, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').unwrap();
    (input, jwt_core::b64::decode(sig.as_bytes(), "sig").unwrap())
}

fn check_claims(verifier: &Verifier, token: &str) {
    let data = verifier
        .verify::<serde_json::Value>(token)
        .expect("RFC token verifies");
    assert_eq!(data.claims["iss"], "joe");
    assert_eq!(data.claims["exp"], 1_300_819_380);
    assert_eq!(data.claims["http://example.com/is_root"], true);
}

#[test]
fn rfc7515_a1_hs256() {
    let key = jwk(A1_JWK);
    let verifier = Verifier::new(
        VerifyingKey::from_jwk(&key).unwrap(),
        Validation::new([Algorithm::HS256]).clock(clock()),
    )
    .unwrap();
    check_claims(&verifier, A1_TOKEN);
    // HMAC is deterministic: our signature over the same input is byte-identical.
    let (input, sig) = split(A1_TOKEN);
    let signer = SigningKey::from_jwk(&key).unwrap();
    assert_eq!(
        signer.sign_raw(Algorithm::HS256, input.as_bytes()).unwrap(),
        sig
    );
    // And the token expires exactly at 1300819380.
    let late = Verifier::new(
        VerifyingKey::from_jwk(&key).unwrap(),
        Validation::new([Algorithm::HS256]).clock(Arc::new(ManualClock::new(1_300_819_380))),
    )
    .unwrap();
    assert_eq!(
        late.verify::<serde_json::Value>(A1_TOKEN)
            .unwrap_err()
            .kind(),
        ErrorKind::Expired
    );
}

#[test]
fn rfc7515_a2_rs256() {
    let key = jwk(A2_JWK);
    let public = key.to_public().unwrap();
    let verifier = Verifier::new(
        VerifyingKey::from_jwk(&public).unwrap(),
        Validation::new([Algorithm::RS256]).clock(clock()),
    )
    .unwrap();
    check_claims(&verifier, A2_TOKEN);
    // PKCS#1 v1.5 is deterministic: signing reproduces the RFC's signature.
    let (input, sig) = split(A2_TOKEN);
    let signer = SigningKey::from_jwk(&key).unwrap();
    assert_eq!(
        signer.sign_raw(Algorithm::RS256, input.as_bytes()).unwrap(),
        sig
    );
}

#[test]
fn rfc7515_a3_es256() {
    let key = jwk(A3_JWK);
    let verifier = Verifier::new(
        VerifyingKey::from_jwk(&key.to_public().unwrap()).unwrap(),
        Validation::new([Algorithm::ES256]).clock(clock()),
    )
    .unwrap();
    check_claims(&verifier, A3_TOKEN);
    // ECDSA is randomized: a fresh signature differs but verifies.
    let (input, sig) = split(A3_TOKEN);
    let fresh = SigningKey::from_jwk(&key)
        .unwrap()
        .sign_raw(Algorithm::ES256, input.as_bytes())
        .unwrap();
    assert_ne!(fresh, sig);
    VerifyingKey::from_jwk(&key)
        .unwrap()
        .verify_raw(Algorithm::ES256, input.as_bytes(), &fresh)
        .unwrap();
}

#[test]
fn rfc7515_a4_es512() {
    let key = jwk(A4_JWK);
    let vk = VerifyingKey::from_jwk(&key.to_public().unwrap()).unwrap();
    let (input, sig) = split(A4_TOKEN);
    vk.verify_raw(Algorithm::ES512, input.as_bytes(), &sig)
        .unwrap();
    // The payload ("Payload") is not a JWT claims set: the signature checks
    // out, then the JWT layer refuses the payload as malformed.
    let verifier = Verifier::new(vk, Validation::new([Algorithm::ES512]).clock(clock())).unwrap();
    let err = verifier.verify::<serde_json::Value>(A4_TOKEN).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed, "{err}");
    let fresh = SigningKey::from_jwk(&key)
        .unwrap()
        .sign_raw(Algorithm::ES512, input.as_bytes())
        .unwrap();
    assert_eq!(fresh.len(), 132);
}

#[test]
fn rfc8037_a4_a5_ed25519() {
    let key = jwk(RFC8037_JWK);
    // A.3: the thumbprint of the public key.
    assert_eq!(
        key.thumbprint().unwrap(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    let (input, sig) = split(RFC8037_TOKEN);
    // A.4: Ed25519 is deterministic: signing reproduces the RFC's signature.
    let signer = SigningKey::from_jwk(&key).unwrap();
    assert_eq!(
        signer.sign_raw(Algorithm::EdDSA, input.as_bytes()).unwrap(),
        sig
    );
    // A.5: verification.
    let vk = VerifyingKey::from_jwk(&key.to_public().unwrap()).unwrap();
    vk.verify_raw(Algorithm::EdDSA, input.as_bytes(), &sig)
        .unwrap();
    let mut bad = sig.clone();
    bad[0] ^= 1;
    assert_eq!(
        vk.verify_raw(Algorithm::EdDSA, input.as_bytes(), &bad)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidSignature
    );
}

#[test]
fn rfc7638_thumbprint() {
    let key = jwk(
        r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
    );
    assert_eq!(
        key.thumbprint().unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    // The parsed key computes the same thumbprint from its own encoding.
    assert_eq!(
        VerifyingKey::from_jwk(&key).unwrap().thumbprint().unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}
