//! Quickstart: sign and verify an HS256 token.
//!
//! `cargo run --example quickstart`

use jwtkit::core::{Algorithm, Signer, SigningKey, Validation, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Claims {
    sub: String,
    iss: String,
    exp: i64,
}

/// Runs the example (also called by `tests/examples.rs`).
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    // HS256 needs a secret of at least 32 bytes; shorter ones are refused.
    let secret = b"an example secret of at least 32 bytes!!";
    let signer = Signer::new(SigningKey::hmac(secret)?, Algorithm::HS256)?;
    let claims = Claims {
        sub: "alice".into(),
        iss: "https://auth.example.com".into(),
        exp: jwtkit::core::time::now_unix() + 600,
    };
    let token = signer.sign(&claims)?;
    println!("token: {token}");

    // The verifier names the algorithms it accepts and the issuer it trusts.
    let verifier = Verifier::new(
        VerifyingKey::hmac(secret)?,
        Validation::new([Algorithm::HS256]).issuer("https://auth.example.com"),
    )?;
    let verified = verifier.verify::<Claims>(&token)?.claims;
    assert_eq!(verified, claims);
    println!("verified: sub={}", verified.sub);

    // A tampered token is refused.
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let err = verifier.verify::<Claims>(&tampered).unwrap_err();
    println!("tampered token refused: {}", err.kind());
    Ok(())
}
