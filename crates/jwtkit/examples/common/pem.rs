// Shared by the rs256_pem and es256_pem examples (included with `include!`).

/// Signs and verifies with the key pair in `examples/keys/<name>-{private,public}.pem`.
fn sign_and_verify_with_pem(
    name: &str,
    alg: jwtkit::core::Algorithm,
) -> Result<(), Box<dyn std::error::Error>> {
    use jwtkit::core::{Signer, SigningKey, Validation, Verifier, VerifyingKey};
    // EXAMPLE KEYS ONLY: they are public in this repository; never use them for anything real.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/keys");
    let private = std::fs::read(dir.join(format!("{name}-private.pem")))?;
    let public = std::fs::read(dir.join(format!("{name}-public.pem")))?;

    // The kid defaults to the key's RFC 7638 thumbprint.
    let signer = Signer::new(SigningKey::from_pem(&private)?, alg)?;
    let exp = jwtkit::core::time::now_unix() + 600;
    let token = signer.sign(&serde_json::json!({"sub": "alice", "aud": "my-api", "exp": exp}))?;
    println!(
        "{alg} token (kid {}): {token}",
        signer.header().kid.as_deref().unwrap_or("-")
    );

    let verifier = Verifier::new(
        VerifyingKey::from_pem(&public)?,
        Validation::new([alg]).audience("my-api"),
    )?;
    let claims = verifier.verify::<serde_json::Value>(&token)?.claims;
    assert_eq!(claims["sub"], "alice");
    println!("verified with the public PEM: sub={}", claims["sub"]);

    // The same public key cannot be abused as an HMAC secret (alg confusion).
    let wrong = Verifier::new(
        VerifyingKey::from_pem(&public)?,
        Validation::new([jwtkit::core::Algorithm::HS256]),
    );
    println!(
        "public key as HS256 secret refused: {}",
        wrong.unwrap_err().kind()
    );
    Ok(())
}
