//! RS256 with PEM files: sign with a PKCS#8 private key, verify with the SPKI public key.
//!
//! `cargo run --example rs256_pem`

include!("common/pem.rs");

/// Runs the example (also called by `tests/examples.rs`).
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    sign_and_verify_with_pem("rs256", jwtkit::core::Algorithm::RS256)
}
