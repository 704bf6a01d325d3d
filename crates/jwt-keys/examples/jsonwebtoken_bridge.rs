//! Keep `jsonwebtoken::decode`, gain managed keys: discovery, the issuer's
//! key set cached and refreshed on rotation, keys bound to their issuer.
//!
//! ```sh
//! cargo run -p jwt-keys --features jsonwebtoken --example jsonwebtoken_bridge -- \
//!     https://YOUR_TENANT.eu.auth0.com/ my-api "$TOKEN"
//! ```
//!
//! Prints the verified claims, or why the token was refused (exit 1) or the
//! setup failed (exit 2).

use std::process::ExitCode;

use jwt_keys::jsonwebtoken_bridge::DecodingKeys;
use jwt_keys::{Issuer, MultiIssuerVerifier};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [issuer, audience, token] = args.as_slice() else {
        eprintln!("usage: jsonwebtoken_bridge ISSUER_URL AUDIENCE TOKEN");
        return ExitCode::from(2);
    };
    // Built once at start-up and shared (it is cheap to clone); nothing is
    // fetched until the first token.
    let keys = match MultiIssuerVerifier::builder()
        .issuer(Issuer::discover(issuer).audience(audience))
        .build()
    {
        Ok(verifier) => DecodingKeys::new(verifier),
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };

    // The issuer's key for this token: its `iss` chooses the issuer, its
    // `kid` the key (fetched on first use, and again on a rotation).
    let key = match keys.for_token(token).await {
        Ok(key) => key,
        Err(e) if e.is_rejection() => {
            eprintln!("refused ({}): {e}", e.kind());
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("could not get the issuer's keys: {e}");
            return ExitCode::from(2);
        }
    };
    // Verification is jsonwebtoken's own, with the validation the key
    // comes with (its algorithm, `iss`, the audience, `exp`).
    match jsonwebtoken::decode::<serde_json::Value>(token, key.decoding_key(), &key.validation()) {
        Ok(data) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&data.claims).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("refused by jsonwebtoken: {e}");
            ExitCode::from(1)
        }
    }
}
