//! Wycheproof vectors for every algorithm family, through the public verify
//! API (`VerifyingKey::from_der`/`hmac` + `verify_raw`). `valid` vectors must
//! verify, `invalid` ones must not; `acceptable` ones may go either way.

use jwt_core::{Algorithm, VerifyingKey};
use wycheproof::TestResult;

fn check(result: TestResult, ok: bool, what: &str) -> bool {
    match result {
        TestResult::Valid => assert!(ok, "valid vector rejected: {what}"),
        TestResult::Invalid => assert!(!ok, "invalid vector accepted: {what}"),
        TestResult::Acceptable => {}
    }
    true
}

#[test]
fn ecdsa_p1363() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let mut n = 0;
    for (name, alg) in [
        (TestName::EcdsaSecp256r1Sha256P1363, Algorithm::ES256),
        (TestName::EcdsaSecp384r1Sha384P1363, Algorithm::ES384),
        (TestName::EcdsaSecp521r1Sha512P1363, Algorithm::ES512),
    ] {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            // Some groups hold deliberately invalid public keys; those must be refused at load.
            let Ok(key) = VerifyingKey::from_der(&group.der) else {
                continue;
            };
            for t in group.tests {
                let ok = key.verify_raw(alg, &t.msg, &t.sig).is_ok();
                check(t.result, ok, &format!("{alg} tc {} {}", t.tc_id, t.comment));
                n += 1;
            }
        }
    }
    assert!(n > 800, "only {n} ECDSA vectors ran");
}

#[test]
fn rsa_pkcs1() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut n = 0;
    for (name, alg) in [
        (TestName::Rsa2048Sha256, Algorithm::RS256),
        (TestName::Rsa2048Sha384, Algorithm::RS384),
        (TestName::Rsa2048Sha512, Algorithm::RS512),
        (TestName::Rsa3072Sha256, Algorithm::RS256),
        (TestName::Rsa3072Sha384, Algorithm::RS384),
        (TestName::Rsa3072Sha512, Algorithm::RS512),
        (TestName::Rsa4096Sha256, Algorithm::RS256),
        (TestName::Rsa4096Sha384, Algorithm::RS384),
        (TestName::Rsa4096Sha512, Algorithm::RS512),
    ] {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            let key = VerifyingKey::from_der(&group.der).expect("Wycheproof RSA key loads");
            for t in group.tests {
                let ok = key.verify_raw(alg, &t.msg, &t.sig).is_ok();
                check(t.result, ok, &format!("{alg} tc {} {}", t.tc_id, t.comment));
                n += 1;
            }
        }
    }
    assert!(n > 500, "only {n} RSA PKCS#1 vectors ran");
}

#[test]
fn rsa_pss_with_jws_parameters() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut n = 0;
    // Only the parameter sets JWS uses: MGF1 with the same hash, salt = hash length.
    for (name, alg) in [
        (TestName::RsaPss2048Sha256Mgf1SaltLen32, Algorithm::PS256),
        (TestName::RsaPss2048Sha384Mgf1SaltLen48, Algorithm::PS384),
        (TestName::RsaPss3072Sha256Mgf1SaltLen32, Algorithm::PS256),
        (TestName::RsaPss4096Sha256Mgf1SaltLen32, Algorithm::PS256),
        (TestName::RsaPss4096Sha384Mgf1SaltLen48, Algorithm::PS384),
        (TestName::RsaPss4096Sha512Mgf1SaltLen64, Algorithm::PS512),
    ] {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            let key = VerifyingKey::from_der(&group.der).expect("Wycheproof RSA key loads");
            for t in group.tests {
                let ok = key.verify_raw(alg, &t.msg, &t.sig).is_ok();
                check(t.result, ok, &format!("{alg} tc {} {}", t.tc_id, t.comment));
                n += 1;
            }
        }
    }
    assert!(n > 100, "only {n} RSA-PSS vectors ran");
}

#[test]
fn ed25519() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut n = 0;
    for group in set.test_groups {
        let key = VerifyingKey::from_der(&group.der).expect("Wycheproof Ed25519 key loads");
        for t in group.tests {
            let ok = key.verify_raw(Algorithm::EdDSA, &t.msg, &t.sig).is_ok();
            check(t.result, ok, &format!("EdDSA tc {} {}", t.tc_id, t.comment));
            n += 1;
        }
    }
    assert!(n > 100, "only {n} Ed25519 vectors ran");
}

#[test]
fn hmac() {
    use wycheproof::mac::{TestName, TestSet};
    let mut n = 0;
    for (name, alg) in [
        (TestName::HmacSha256, Algorithm::HS256),
        (TestName::HmacSha384, Algorithm::HS384),
        (TestName::HmacSha512, Algorithm::HS512),
    ] {
        let set = TestSet::load(name).unwrap();
        for group in set.test_groups {
            // JWS always uses the full tag.
            if group.tag_size / 8 != alg.hash_len() {
                continue;
            }
            for t in group.tests {
                // An empty key is refused outright (it is no secret).
                let Ok(key) = VerifyingKey::hmac(&t.key) else {
                    assert!(t.key.is_empty());
                    continue;
                };
                let ok = key.verify_raw(alg, &t.msg, &t.tag).is_ok();
                check(t.result, ok, &format!("{alg} tc {} {}", t.tc_id, t.comment));
                n += 1;
            }
        }
    }
    assert!(n > 50, "only {n} HMAC vectors ran");
}
