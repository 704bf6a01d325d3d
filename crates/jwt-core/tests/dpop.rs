//! DPoP proofs (RFC 9449): RFC 9449's examples verbatim, every refusal rule
//! of §4.3 one by one, the strictness every jwtkit JWS gets, the proof
//! builder, and interop with PyJWT + cryptography both ways.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jwt_core::dpop::{
    ath_of, DpopError, DpopErrorKind, DpopProof, DpopRequest, DpopVerifier, DPOP_TYP,
};
use jwt_core::{b64, Algorithm, ErrorKind, Header, ManualClock, SigningKey};
use serde_json::{json, Value};

// RFC 9449 §4.1 (Figure 2): a proof for a token request, and §7.1 (Figure
// 13): a proof for a resource request with the access token of Figure 12.
const RFC_TOKEN_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
const RFC_RESOURCE_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
const RFC_ATH: &str = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo";
/// RFC 9449 §6.1: the thumbprint of the examples' key (the `cnf.jkt`).
const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

const URI: &str = "https://api.example.com/resource";
const NOW: i64 = 1_800_000_000;

fn verifier_at(now: i64) -> DpopVerifier {
    DpopVerifier::new([Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA])
        .unwrap()
        .clock(Arc::new(ManualClock::new(now)))
}

fn verifier() -> DpopVerifier {
    verifier_at(NOW)
}

fn es256() -> SigningKey {
    SigningKey::generate(Algorithm::ES256).unwrap()
}

fn public_jwk(key: &SigningKey) -> Value {
    let mut jwk = key.to_public_jwk().unwrap();
    jwk.kid = None;
    jwk.use_ = None;
    jwk.alg = None;
    serde_json::to_value(jwk).unwrap()
}

fn claims() -> Value {
    json!({"jti": "a-unique-id-0123456789", "htm": "GET", "htu": URI, "iat": NOW})
}

/// A proof with any header and claims, signed with `key`.
fn craft(
    key: &SigningKey,
    alg: Algorithm,
    edit: impl FnOnce(&mut Header),
    claims: &Value,
) -> String {
    let mut header = Header::new(alg);
    header.typ = Some(DPOP_TYP.into());
    header.extra.insert("jwk".into(), public_jwk(key));
    edit(&mut header);
    let input = jwt_core::signing_input(&header, claims).unwrap();
    let signature = key.sign_raw(alg, input.as_bytes()).unwrap();
    jwt_core::assemble(input, &signature)
}

/// A proof from raw header and payload JSON text (for what a `Header` or a
/// `Value` cannot hold, such as duplicate members).
fn craft_raw(key: &SigningKey, alg: Algorithm, header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes())
    );
    let signature = key.sign_raw(alg, input.as_bytes()).unwrap();
    jwt_core::assemble(input, &signature)
}

/// A proof whose claims a signer would refuse (a claim of the wrong type).
fn craft_unchecked(key: &SigningKey, claims: &Value) -> String {
    let header = json!({"typ": DPOP_TYP, "alg": "ES256", "jwk": public_jwk(key)});
    craft_raw(
        key,
        Algorithm::ES256,
        &header.to_string(),
        &claims.to_string(),
    )
}

fn good(key: &SigningKey) -> String {
    craft(key, Algorithm::ES256, |_| {}, &claims())
}

fn with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut c = claims();
    edit(c.as_object_mut().unwrap());
    c
}

fn refused(proof: &str, request: &DpopRequest<'_>) -> DpopError {
    match verifier().verify(proof, request) {
        Ok(p) => panic!("proof accepted: {p:?}"),
        Err(e) => e,
    }
}

fn kind(proof: &str, request: &DpopRequest<'_>) -> DpopErrorKind {
    refused(proof, request).kind()
}

fn get() -> DpopRequest<'static> {
    DpopRequest::new("GET", URI)
}

// ── RFC 9449's examples, verbatim ──────────────────────────────────────

#[test]
fn rfc_9449_token_request_proof() {
    // Structure (Figure 2's decoded header and claims).
    let decoded = jwt_core::dangerous::insecure_decode(RFC_TOKEN_PROOF).unwrap();
    assert_eq!(decoded.header.typ.as_deref(), Some("dpop+jwt"));
    assert_eq!(decoded.header.alg, Algorithm::ES256);
    assert_eq!(
        decoded.header.extra["jwk"],
        json!({"kty": "EC", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
               "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA", "crv": "P-256"})
    );
    assert_eq!(
        Value::Object(decoded.claims),
        json!({"jti": "-BwC3ESc6acc2lTc", "htm": "POST",
               "htu": "https://server.example.com/token", "iat": 1562262616})
    );
    // Its signature, at a clock two seconds after its iat.
    let request = DpopRequest::new("POST", "https://server.example.com/token");
    let proof = verifier_at(1_562_262_618)
        .verify(RFC_TOKEN_PROOF, &request)
        .unwrap();
    assert_eq!(proof.jkt(), RFC_JKT);
    assert_eq!(proof.jti(), "-BwC3ESc6acc2lTc");
    assert_eq!(proof.iat(), 1_562_262_616);
    assert_eq!(proof.replay_until(), 1_562_262_616 + 60);
    assert_eq!(proof.algorithm(), Algorithm::ES256);
    // The thumbprint from the JWK member by member, as RFC 7638 computes it.
    let jwk = jwt_core::Jwk::from_json(decoded.header.extra["jwk"].to_string().as_bytes()).unwrap();
    assert_eq!(jwk.thumbprint().unwrap(), RFC_JKT);
    // Today, the same proof is years old.
    let err = verifier_at(NOW)
        .verify(RFC_TOKEN_PROOF, &request)
        .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::IatTooOld);
}

#[test]
fn rfc_9449_resource_request_proof_with_ath() {
    assert_eq!(ath_of(RFC_ACCESS_TOKEN), RFC_ATH);
    let verifier = verifier_at(1_562_262_620);
    let request = DpopRequest::new("GET", "https://resource.example.org/protectedresource");
    let proof = verifier
        .verify(RFC_RESOURCE_PROOF, &request.access_token(RFC_ACCESS_TOKEN))
        .unwrap();
    assert_eq!(proof.jkt(), RFC_JKT);
    assert_eq!(proof.jti(), "e1j3V_bKic8-LAEB");
    let err = verifier
        .verify(RFC_RESOURCE_PROOF, &request.access_token("another token"))
        .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::AthMismatch);
    // The token request's proof has no `ath`: presented with a token, refused.
    let err = verifier_at(1_562_262_617)
        .verify(
            RFC_TOKEN_PROOF,
            &DpopRequest::new("POST", "https://server.example.com/token")
                .access_token(RFC_ACCESS_TOKEN),
        )
        .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::MissingAth);
}

// ── Each refusal rule, one by one ──────────────────────────────────────

#[test]
fn a_good_proof_is_accepted() {
    let key = es256();
    let proof = verifier().verify(&good(&key), &get()).unwrap();
    assert_eq!(proof.jkt(), key.thumbprint().unwrap());
    assert_eq!(proof.jti(), "a-unique-id-0123456789");
    assert_eq!(proof.replay_until(), NOW + 60);
}

#[test]
fn wrong_typ_is_refused() {
    let key = es256();
    for typ in [
        Some("JWT"),
        Some("at+jwt"),
        Some("application/dpop+jwt"),
        Some("DPOP+JWT"),
        None,
    ] {
        let proof = craft(
            &key,
            Algorithm::ES256,
            |h| h.typ = typ.map(Into::into),
            &claims(),
        );
        let err = refused(&proof, &get());
        assert_eq!(err.kind(), DpopErrorKind::InvalidType, "{typ:?}");
        assert!(err.to_string().contains("dpop+jwt"), "{err}");
    }
}

#[test]
fn symmetric_and_unlisted_algorithms_are_refused() {
    let key = es256();
    let secret = SigningKey::hmac(&[7u8; 32]).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some(DPOP_TYP.into());
    header.extra.insert("jwk".into(), public_jwk(&key));
    let input = jwt_core::signing_input(&header, &claims()).unwrap();
    let mac = secret.sign_raw(Algorithm::HS256, input.as_bytes()).unwrap();
    let err = refused(&jwt_core::assemble(input, &mac), &get());
    assert_eq!(err.kind(), DpopErrorKind::InvalidAlgorithm);
    assert!(err.to_string().contains("HS256"), "{err}");

    // A symmetric `jwk` (an `oct` key) is refused as well.
    let proof = craft(
        &key,
        Algorithm::ES256,
        |h| {
            h.extra
                .insert("jwk".into(), json!({"kty": "oct", "k": "AAAA"}));
        },
        &claims(),
    );
    assert_eq!(kind(&proof, &get()), DpopErrorKind::InvalidAlgorithm);

    // Asymmetric, but not in this server's list.
    let p384 = SigningKey::generate(Algorithm::ES384).unwrap();
    let proof = craft(&p384, Algorithm::ES384, |_| {}, &claims());
    let err = refused(&proof, &get());
    assert_eq!(err.kind(), DpopErrorKind::InvalidAlgorithm);
    assert!(err.to_string().contains("RS256, ES256, EdDSA"), "{err}");

    // `none`.
    let proof = format!(
        "{}.{}.",
        b64::encode(br#"{"typ":"dpop+jwt","alg":"none"}"#),
        b64::encode(claims().to_string().as_bytes())
    );
    assert_eq!(kind(&proof, &get()), DpopErrorKind::InvalidAlgorithm);
}

#[test]
fn the_jwk_must_be_a_public_key_bound_to_alg() {
    let key = es256();
    // Private key material in the header: refused, whichever member.
    let d = b64::encode(&[1u8; 32]);
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        let proof = craft(
            &key,
            Algorithm::ES256,
            |h| {
                h.extra["jwk"][member] = json!(d);
            },
            &claims(),
        );
        let err = refused(&proof, &get());
        assert_eq!(err.kind(), DpopErrorKind::PrivateKey, "{member}");
        assert!(err.to_string().contains("private key"), "{err}");
    }
    // No jwk; a jwk that is not an object; one that is no key.
    let no_jwk = craft(
        &key,
        Algorithm::ES256,
        |h| drop(h.extra.remove("jwk")),
        &claims(),
    );
    assert_eq!(kind(&no_jwk, &get()), DpopErrorKind::InvalidKey);
    let text = craft(
        &key,
        Algorithm::ES256,
        |h| drop(h.extra.insert("jwk".into(), json!("key"))),
        &claims(),
    );
    assert_eq!(kind(&text, &get()), DpopErrorKind::InvalidKey);
    let off_curve = craft(
        &key,
        Algorithm::ES256,
        |h| {
            h.extra["jwk"]["x"] = json!(b64::encode(&[0u8; 32]));
        },
        &claims(),
    );
    assert_eq!(kind(&off_curve, &get()), DpopErrorKind::InvalidKey);
    // An encryption key.
    let enc = craft(
        &key,
        Algorithm::ES256,
        |h| h.extra["jwk"]["use"] = json!("enc"),
        &claims(),
    );
    assert_eq!(kind(&enc, &get()), DpopErrorKind::InvalidKey);
    // The jwk of another key: the signature does not verify with it.
    let other = es256();
    let swapped = craft(
        &key,
        Algorithm::ES256,
        |h| {
            h.extra.insert("jwk".into(), public_jwk(&other));
        },
        &claims(),
    );
    assert_eq!(kind(&swapped, &get()), DpopErrorKind::InvalidSignature);
    // A jwk of another family than alg, and one bound to another alg.
    let rsa = SigningKey::generate(Algorithm::RS256).unwrap();
    let mixed = craft(
        &key,
        Algorithm::ES256,
        |h| {
            h.extra.insert("jwk".into(), public_jwk(&rsa));
        },
        &claims(),
    );
    assert_eq!(kind(&mixed, &get()), DpopErrorKind::InvalidAlgorithm);
    let bound = craft(
        &rsa,
        Algorithm::RS256,
        |h| h.extra["jwk"]["alg"] = json!("PS256"),
        &claims(),
    );
    assert_eq!(kind(&bound, &get()), DpopErrorKind::InvalidAlgorithm);
    // A tampered payload.
    let proof = good(&key);
    let (input, sig) = proof.rsplit_once('.').unwrap();
    let (header, _) = input.split_once('.').unwrap();
    let forged = format!(
        "{header}.{}.{sig}",
        b64::encode(
            with(|c| drop(c.insert("htm".into(), json!("POST"))))
                .to_string()
                .as_bytes()
        )
    );
    assert_eq!(kind(&forged, &get()), DpopErrorKind::InvalidSignature);
}

#[test]
fn wrong_htm_is_refused() {
    let key = es256();
    let err = refused(&good(&key), &DpopRequest::new("POST", URI));
    assert_eq!(err.kind(), DpopErrorKind::HtmMismatch);
    assert!(err.to_string().contains("\"POST\""), "{err}");
    // Methods are case-sensitive.
    let lower = craft(
        &key,
        Algorithm::ES256,
        |_| {},
        &with(|c| drop(c.insert("htm".into(), json!("get")))),
    );
    assert_eq!(kind(&lower, &get()), DpopErrorKind::HtmMismatch);
}

#[test]
fn wrong_htu_is_refused_and_query_and_fragment_are_ignored_on_both_sides() {
    let key = es256();
    let proof_for = |htu: &str| {
        craft(
            &key,
            Algorithm::ES256,
            |_| {},
            &with(|c| drop(c.insert("htu".into(), json!(htu)))),
        )
    };
    for other in [
        "https://api.example.com/other",
        "https://api.example.com/resource/",
        "https://evil.example/resource",
        "http://api.example.com/resource",
        "https://api.example.com:8443/resource",
        "/resource",
        "https://u@api.example.com/resource",
        "https://api.example.com/%zz",
    ] {
        let err = refused(&proof_for(other), &get());
        assert_eq!(err.kind(), DpopErrorKind::HtuMismatch, "{other}");
    }
    // Query and fragment: ignored in the proof, in the request, and in both.
    let request_uris = [
        URI,
        "https://api.example.com/resource?page=2",
        "https://api.example.com/resource#top",
    ];
    let proof_uris = [
        URI,
        "https://api.example.com/resource?x=1",
        "https://api.example.com/resource?a#f",
    ];
    for proof_uri in proof_uris {
        for request_uri in request_uris {
            let result =
                verifier().verify(&proof_for(proof_uri), &DpopRequest::new("GET", request_uri));
            assert!(result.is_ok(), "{proof_uri} vs {request_uri}: {result:?}");
        }
    }
    // RFC 3986 normalization: case, default port, percent-encoding, dot-segments.
    for equivalent in [
        "HTTPS://API.Example.COM/resource",
        "https://api.example.com:443/resource",
        "https://api.example.com/%72esource",
        "https://api.example.com/a/../resource",
        "https://api.example.com/./resource",
    ] {
        let result = verifier().verify(&proof_for(equivalent), &get());
        assert!(result.is_ok(), "{equivalent}: {result:?}");
    }
    let encoded = verifier().verify(
        &proof_for("https://api.example.com/a%2fb"),
        &DpopRequest::new("GET", "https://api.example.com/a%2Fb"),
    );
    assert!(encoded.is_ok(), "{encoded:?}");
    // An encoded slash is not a slash.
    let slash = verifier().verify(
        &proof_for("https://api.example.com/a%2Fb"),
        &DpopRequest::new("GET", "https://api.example.com/a/b"),
    );
    assert_eq!(slash.unwrap_err().kind(), DpopErrorKind::HtuMismatch);
    // A request URI the server got wrong is its own (configuration) error.
    let err = verifier()
        .verify(&good(&key), &DpopRequest::new("GET", "/resource"))
        .unwrap_err();
    assert_eq!(err.kind(), DpopErrorKind::Config);
    assert!(!err.is_rejection());
}

#[test]
fn stale_and_future_iat_are_refused() {
    let key = es256();
    let at = |iat: i64| {
        craft(
            &key,
            Algorithm::ES256,
            |_| {},
            &with(|c| drop(c.insert("iat".into(), json!(iat)))),
        )
    };
    assert!(verifier().verify(&at(NOW - 60), &get()).is_ok());
    assert!(verifier().verify(&at(NOW + 60), &get()).is_ok());
    let err = refused(&at(NOW - 61), &get());
    assert_eq!(err.kind(), DpopErrorKind::IatTooOld);
    assert!(err.to_string().contains("61s before now"), "{err}");
    let err = refused(&at(NOW + 61), &get());
    assert_eq!(err.kind(), DpopErrorKind::IatInFuture);
    // A fractional iat (milliseconds / 1000) is the second it falls in.
    let fraction = craft(
        &key,
        Algorithm::ES256,
        |_| {},
        &with(|c| drop(c.insert("iat".into(), json!(NOW as f64 + 0.25)))),
    );
    assert_eq!(verifier().verify(&fraction, &get()).unwrap().iat(), NOW);
    // A window of its own.
    let narrow = verifier()
        .iat_window(Duration::from_secs(5), Duration::from_secs(0))
        .unwrap();
    assert_eq!(
        narrow.verify(&at(NOW - 6), &get()).unwrap_err().kind(),
        DpopErrorKind::IatTooOld
    );
    assert_eq!(
        narrow.verify(&at(NOW + 1), &get()).unwrap_err().kind(),
        DpopErrorKind::IatInFuture
    );
    assert_eq!(
        narrow.verify(&at(NOW - 5), &get()).unwrap().replay_until(),
        NOW
    );
    // Not a number.
    let text = craft_unchecked(&key, &with(|c| drop(c.insert("iat".into(), json!("now")))));
    assert_eq!(kind(&text, &get()), DpopErrorKind::InvalidClaim);
}

#[test]
fn missing_claims_are_refused_each_by_name() {
    let key = es256();
    for claim in ["jti", "htm", "htu", "iat"] {
        let proof = craft(
            &key,
            Algorithm::ES256,
            |_| {},
            &with(|c| drop(c.remove(claim))),
        );
        match refused(&proof, &get()) {
            DpopError::MissingClaim { claim: found } => assert_eq!(found, claim),
            other => panic!("{claim}: {other:?}"),
        }
    }
    let empty = craft(
        &key,
        Algorithm::ES256,
        |_| {},
        &with(|c| drop(c.insert("jti".into(), json!("")))),
    );
    assert_eq!(kind(&empty, &get()), DpopErrorKind::InvalidClaim);
    let number = craft_unchecked(&key, &with(|c| drop(c.insert("jti".into(), json!(7)))));
    assert_eq!(kind(&number, &get()), DpopErrorKind::InvalidClaim);
}

#[test]
fn ath_is_checked_when_a_token_is_presented() {
    let key = es256();
    let token = "the-access-token";
    let with_ath = |ath: &str| {
        craft(
            &key,
            Algorithm::ES256,
            |_| {},
            &with(|c| drop(c.insert("ath".into(), json!(ath)))),
        )
    };
    let request = get().access_token(token);
    assert!(verifier()
        .verify(&with_ath(&ath_of(token)), &request)
        .is_ok());
    assert_eq!(
        kind(&with_ath(&ath_of("another token")), &request),
        DpopErrorKind::AthMismatch
    );
    // The hash must be exact: no padding, no standard base64.
    assert_eq!(
        kind(&with_ath(&format!("{}=", ath_of(token))), &request),
        DpopErrorKind::AthMismatch
    );
    let err = refused(&good(&key), &request);
    assert_eq!(err.kind(), DpopErrorKind::MissingAth);
    assert_eq!(err.oauth_error(), Some("invalid_dpop_proof"));
    let not_text = craft_unchecked(&key, &with(|c| drop(c.insert("ath".into(), json!(1)))));
    assert_eq!(kind(&not_text, &request), DpopErrorKind::InvalidClaim);
}

#[test]
fn nonce_is_checked_when_the_server_requires_one() {
    let key = es256();
    let with_nonce = |n: &str| {
        craft(
            &key,
            Algorithm::ES256,
            |_| {},
            &with(|c| drop(c.insert("nonce".into(), json!(n)))),
        )
    };
    // Off: a nonce or none, both fine.
    assert!(verifier().verify(&with_nonce("n-1"), &get()).is_ok());
    let request = get().nonce("n-1");
    assert!(verifier().verify(&with_nonce("n-1"), &request).is_ok());
    let missing = refused(&good(&key), &request);
    assert_eq!(missing.kind(), DpopErrorKind::MissingNonce);
    assert!(missing.needs_nonce());
    assert_eq!(missing.oauth_error(), Some("use_dpop_nonce"));
    let wrong = refused(&with_nonce("n-0"), &request);
    assert_eq!(wrong.kind(), DpopErrorKind::InvalidNonce);
    assert_eq!(wrong.oauth_error(), Some("use_dpop_nonce"));
    // A server accepting its current and previous nonce.
    let accepts = |n: &str| n == "n-1" || n == "n-2";
    let rotating = get().nonce_check(&accepts);
    assert!(verifier().verify(&with_nonce("n-2"), &rotating).is_ok());
    assert_eq!(
        kind(&with_nonce("n-3"), &rotating),
        DpopErrorKind::InvalidNonce
    );
    assert_eq!(kind(&good(&key), &rotating), DpopErrorKind::MissingNonce);
}

// ── The strictness of every other jwtkit JWS ───────────────────────────

#[test]
fn proofs_get_the_strict_jws_rules() {
    let key = es256();
    let jwk = public_jwk(&key).to_string();
    let header = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{jwk}}}"#);
    let payload = format!(r#"{{"jti":"x1","htm":"GET","htu":"{URI}","iat":{NOW}}}"#);
    assert!(verifier()
        .verify(
            &craft_raw(&key, Algorithm::ES256, &header, &payload),
            &get()
        )
        .is_ok());

    // Duplicate members: in the claims, in the header, inside the jwk.
    let dup_claim = format!(r#"{{"jti":"x1","htm":"POST","htm":"GET","htu":"{URI}","iat":{NOW}}}"#);
    let dup_header = format!(r#"{{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"ES256","jwk":{jwk}}}"#);
    let dup_jwk = header.replacen(r#""kty":"EC""#, r#""kty":"EC","kty":"EC""#, 1);
    assert_ne!(dup_jwk, header);
    for (h, p) in [
        (&header, &dup_claim),
        (&dup_header, &payload),
        (&dup_jwk, &payload),
    ] {
        let err = refused(&craft_raw(&key, Algorithm::ES256, h, p), &get());
        assert_eq!(err.kind(), DpopErrorKind::Malformed, "{err}");
        assert!(err.to_string().contains("duplicate member"), "{err}");
    }
    // Nesting beyond jwt-core's MAX_DEPTH.
    let deep = format!(
        r#"{{"jti":"x1","htm":"GET","htu":"{URI}","iat":{NOW},"x":{}1{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    assert_eq!(
        kind(&craft_raw(&key, Algorithm::ES256, &header, &deep), &get()),
        DpopErrorKind::Malformed
    );
    // `crit`.
    let crit = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","crit":["exp"],"jwk":{jwk}}}"#);
    let err = refused(&craft_raw(&key, Algorithm::ES256, &crit, &payload), &get());
    assert_eq!(err.kind(), DpopErrorKind::Malformed);
    match &err {
        DpopError::Malformed { source } => assert_eq!(source.kind(), ErrorKind::Unsupported),
        other => panic!("{other:?}"),
    }
    // Non-canonical base64url: padding, and a signature with a stray character.
    let proof = good(&key);
    let (input, sig) = proof.rsplit_once('.').unwrap();
    assert_eq!(
        kind(&format!("{input}.{sig}="), &get()),
        DpopErrorKind::Malformed
    );
    assert_eq!(
        kind(&format!("{input}.{sig}+"), &get()),
        DpopErrorKind::Malformed
    );
    // Not a JWS at all; a JWE's five parts.
    assert_eq!(kind("not-a-proof", &get()), DpopErrorKind::Malformed);
    assert_eq!(kind("a.b.c.d.e", &get()), DpopErrorKind::Malformed);
    // The size cap, checked before anything is decoded.
    let big = craft(
        &key,
        Algorithm::ES256,
        |_| {},
        &with(|c| drop(c.insert("pad".into(), json!("x".repeat(9000))))),
    );
    let err = refused(&big, &get());
    assert_eq!(err.kind(), DpopErrorKind::TooLarge);
    let roomy = verifier().max_size(16 * 1024).unwrap();
    assert!(roomy.verify(&big, &get()).is_ok());
}

#[test]
fn hostile_values_are_quoted_and_cut_in_messages() {
    let key = es256();
    let htu = format!("https://evil.example/\u{1b}[2J{}", "x".repeat(500));
    let proof = craft(
        &key,
        Algorithm::ES256,
        |_| {},
        &with(|c| drop(c.insert("htu".into(), json!(htu)))),
    );
    let message = refused(&proof, &get()).to_string();
    assert!(!message.contains('\u{1b}'), "{message}");
    assert!(message.len() < 900, "{} bytes: {message}", message.len());
}

// ── Setup ──────────────────────────────────────────────────────────────

#[test]
fn verifier_setup_is_checked() {
    let config = |r: Result<DpopVerifier, DpopError>| r.unwrap_err().kind();
    assert_eq!(config(DpopVerifier::new([])), DpopErrorKind::Config);
    assert_eq!(
        config(DpopVerifier::new([Algorithm::ES256, Algorithm::HS256])),
        DpopErrorKind::Config
    );
    let v = DpopVerifier::new([Algorithm::RS256, Algorithm::ES256, Algorithm::ES256]).unwrap();
    assert_eq!(v.algorithms(), &[Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(v.max_age_secs(), 60);
    let hour_and_a_bit = Duration::from_secs(3601);
    assert_eq!(
        config(v.clone().iat_window(hour_and_a_bit, Duration::ZERO)),
        DpopErrorKind::Config
    );
    assert_eq!(
        config(v.clone().iat_window(Duration::ZERO, Duration::ZERO)),
        DpopErrorKind::Config
    );
    assert_eq!(config(v.clone().max_size(0)), DpopErrorKind::Config);
    let err = DpopVerifier::new([Algorithm::HS256]).unwrap_err();
    assert!(!err.is_rejection());
    assert_eq!(err.oauth_error(), None);
}

// ── The builder ────────────────────────────────────────────────────────

#[test]
fn builder_proofs_verify_for_every_asymmetric_algorithm() {
    let verifier = DpopVerifier::new([
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::EdDSA,
    ])
    .unwrap()
    .clock(Arc::new(ManualClock::new(NOW)));
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::EdDSA,
    ] {
        let key = SigningKey::generate(alg).unwrap();
        let proof = DpopProof::builder(&key, alg)
            .htm("POST")
            .htu("https://api.example.com/token?code=1#x")
            .ath("tok")
            .nonce("n-9")
            .clock(Arc::new(ManualClock::new(NOW)))
            .sign()
            .unwrap();
        let decoded = jwt_core::dangerous::insecure_decode(&proof).unwrap();
        assert_eq!(decoded.header.typ.as_deref(), Some("dpop+jwt"));
        assert_eq!(decoded.header.kid, None);
        let jwk = decoded.header.extra["jwk"].as_object().unwrap();
        assert!(
            jwk.keys()
                .all(|m| ["kty", "crv", "x", "y", "n", "e"].contains(&m.as_str())),
            "{jwk:?}"
        );
        assert_eq!(
            decoded.claims["htu"], "https://api.example.com/token",
            "query and fragment left out"
        );
        assert_eq!(decoded.claims["iat"], NOW);
        assert_eq!(decoded.claims["ath"], ath_of("tok"));
        assert_eq!(decoded.claims["jti"].as_str().unwrap().len(), 22);
        let request = DpopRequest::new("POST", "https://api.example.com/token")
            .access_token("tok")
            .nonce("n-9");
        let checked = verifier.verify(&proof, &request).unwrap();
        assert_eq!(checked.jkt(), key.thumbprint().unwrap(), "{alg}");
        assert_eq!(checked.algorithm(), alg);
    }
}

#[test]
fn builder_makes_a_new_jti_every_time() {
    let key = es256();
    let make = || {
        let p = DpopProof::builder(&key, Algorithm::ES256)
            .htm("GET")
            .htu(URI)
            .sign()
            .unwrap();
        jwt_core::dangerous::insecure_decode(&p).unwrap().claims["jti"].clone()
    };
    assert_ne!(make(), make());
    let fixed = DpopProof::builder(&key, Algorithm::ES256)
        .htm("GET")
        .htu(URI)
        .jti("mine")
        .sign()
        .unwrap();
    assert_eq!(
        jwt_core::dangerous::insecure_decode(&fixed).unwrap().claims["jti"],
        "mine"
    );
}

#[test]
fn builder_refuses_what_no_server_would_accept() {
    let key = es256();
    let secret = SigningKey::hmac(&[9u8; 64]).unwrap();
    let cases: Vec<(&str, Result<String, jwt_core::Error>)> = vec![
        (
            "HMAC",
            DpopProof::builder(&secret, Algorithm::HS256)
                .htm("GET")
                .htu(URI)
                .sign(),
        ),
        (
            "key/alg",
            DpopProof::builder(&key, Algorithm::RS256)
                .htm("GET")
                .htu(URI)
                .sign(),
        ),
        (
            "no htm",
            DpopProof::builder(&key, Algorithm::ES256).htu(URI).sign(),
        ),
        (
            "no htu",
            DpopProof::builder(&key, Algorithm::ES256).htm("GET").sign(),
        ),
        (
            "bad htm",
            DpopProof::builder(&key, Algorithm::ES256)
                .htm("G ET")
                .htu(URI)
                .sign(),
        ),
        (
            "relative htu",
            DpopProof::builder(&key, Algorithm::ES256)
                .htm("GET")
                .htu("/x")
                .sign(),
        ),
        (
            "ftp htu",
            DpopProof::builder(&key, Algorithm::ES256)
                .htm("GET")
                .htu("ftp://a/x")
                .sign(),
        ),
        (
            "empty jti",
            DpopProof::builder(&key, Algorithm::ES256)
                .htm("GET")
                .htu(URI)
                .jti("")
                .sign(),
        ),
        (
            "empty nonce",
            DpopProof::builder(&key, Algorithm::ES256)
                .htm("GET")
                .htu(URI)
                .nonce("")
                .sign(),
        ),
    ];
    for (name, result) in cases {
        let err = result.expect_err(name);
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Config | ErrorKind::InvalidKey | ErrorKind::InvalidAlgorithm
            ),
            "{name}: {err}"
        );
    }
}

// ── Interop with PyJWT + cryptography ──────────────────────────────────

/// The test venv's Python (`JWTKIT_TEST_PYTHON`), by the rule of every
/// jwtkit test: missing is a failure under `JWTKIT_REQUIRE_SERVICES=1`/CI,
/// else a skip that says so.
fn python() -> Option<String> {
    match std::env::var("JWTKIT_TEST_PYTHON") {
        Ok(p) if !p.trim().is_empty() => Some(p),
        _ => {
            let required = std::env::var("JWTKIT_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
                || std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            let msg = "a Python with PyJWT is not available: JWTKIT_TEST_PYTHON is not set. \
                       Run `scripts/test.sh`, which sets it";
            assert!(
                !required,
                "{msg} (JWTKIT_REQUIRE_SERVICES/CI is set: a failure, not a skip)"
            );
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

fn run_python(python: &str, script: &str, input: &str) -> Value {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

const PYJWT_MAKE_PROOF: &str = r#"
import base64, hashlib, json, sys, time, uuid
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
req = json.load(sys.stdin)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
if req["alg"] == "ES256":
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    canon = {m: jwk[m] for m in ("crv", "kty", "x", "y")}
else:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    canon = {m: jwk[m] for m in ("e", "kty", "n")}
claims = {"jti": str(uuid.uuid4()), "htm": req["htm"], "htu": req["htu"], "iat": int(time.time())}
if req.get("token"):
    claims["ath"] = b64(hashlib.sha256(req["token"].encode()).digest())
proof = jwt.encode(claims, key, algorithm=req["alg"], headers={"typ": "dpop+jwt", "jwk": jwk})
jkt = b64(hashlib.sha256(json.dumps(canon, separators=(",", ":"), sort_keys=True).encode()).digest())
print(json.dumps({"proof": proof, "jkt": jkt, "jti": claims["jti"]}))
"#;

const PYJWT_CHECK_PROOF: &str = r#"
import base64, hashlib, json, sys
import jwt
req = json.load(sys.stdin)
header = jwt.get_unverified_header(req["proof"])
assert header["typ"] == "dpop+jwt", header
assert "d" not in header["jwk"], header
key = jwt.PyJWK(header["jwk"], algorithm=header["alg"]).key
claims = jwt.decode(req["proof"], key, algorithms=[header["alg"]],
                    options={"require": ["iat", "jti", "htm", "htu"]})
ath = base64.urlsafe_b64encode(hashlib.sha256(req["token"].encode()).digest()).rstrip(b"=").decode()
print(json.dumps({"alg": header["alg"], "claims": claims, "ath_ok": claims.get("ath") == ath}))
"#;

#[test]
fn proofs_made_with_pyjwt_are_accepted() {
    let Some(python) = python() else { return };
    let verifier = DpopVerifier::new([Algorithm::ES256, Algorithm::RS256]).unwrap();
    for alg in ["ES256", "RS256"] {
        let input = json!({"alg": alg, "htm": "GET", "htu": "https://api.example.com/userinfo?x=1", "token": "tok-123"});
        let made = run_python(&python, PYJWT_MAKE_PROOF, &input.to_string());
        let proof = made["proof"].as_str().unwrap();
        let request =
            DpopRequest::new("GET", "https://api.example.com/userinfo").access_token("tok-123");
        let checked = verifier
            .verify(proof, &request)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(
            checked.jkt(),
            made["jkt"].as_str().unwrap(),
            "{alg}: RFC 7638 thumbprint as Python computes it"
        );
        assert_eq!(checked.jti(), made["jti"].as_str().unwrap());
        assert_eq!(checked.algorithm().as_str(), alg);
        // And its refusals apply to PyJWT's proofs just the same.
        let post =
            DpopRequest::new("POST", "https://api.example.com/userinfo").access_token("tok-123");
        assert_eq!(
            verifier.verify(proof, &post).unwrap_err().kind(),
            DpopErrorKind::HtmMismatch
        );
    }
}

#[test]
fn builder_proofs_verify_in_pyjwt() {
    let Some(python) = python() else { return };
    for alg in [
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::EdDSA,
    ] {
        let key = SigningKey::generate(alg).unwrap();
        let proof = DpopProof::builder(&key, alg)
            .htm("GET")
            .htu("https://api.example.com/userinfo")
            .ath("tok-456")
            .sign()
            .unwrap();
        let checked = run_python(
            &python,
            PYJWT_CHECK_PROOF,
            &json!({"proof": proof, "token": "tok-456"}).to_string(),
        );
        assert_eq!(checked["alg"], alg.as_str());
        assert_eq!(checked["claims"]["htm"], "GET");
        assert_eq!(checked["claims"]["htu"], "https://api.example.com/userinfo");
        assert_eq!(checked["ath_ok"], true, "{alg}");
    }
}
