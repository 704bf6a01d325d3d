//! Refresh tokens with rotation and reuse detection.
//!
//! `cargo run --example refresh_flow`

use jwtkit::{AccessClaims, Algorithm, GrantRefusal, MemoryKeyStore, TokenService};

/// Runs the example (also called by `tests/examples.rs`).
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let tokens = TokenService::builder()
        .key_store(MemoryKeyStore::new())
        .init_key_store(Algorithm::ES256)
        .issuer("https://auth.example.com")
        .audience("my-api")
        .build()
        .await?;

    // Login: an access token (15 min) and a refresh token (single use).
    let login = tokens
        .issue("alice", &serde_json::json!({"scope": "read"}))
        .await?;
    println!("session {} started", login.session);

    // The client refreshes: the old refresh token is consumed.
    let second = tokens.refresh(&login.refresh_token).await?;
    let claims: AccessClaims = tokens.verify_access(&second.access_token)?;
    println!("refreshed: sub={} scope={:?}", claims.sub, claims.scope);

    // Someone replays the first refresh token (stolen from a log, say).
    match tokens.refresh(&login.refresh_token).await {
        Err(jwtkit::Error::InvalidGrant {
            reason: GrantRefusal::Reused,
        }) => {
            println!("replay detected: the whole session is revoked")
        }
        other => return Err(format!("expected reuse detection, got {other:?}").into()),
    }
    // …so the legitimate client's current token is dead too: it must log in again.
    match tokens.refresh(&second.refresh_token).await {
        Err(jwtkit::Error::InvalidGrant {
            reason: GrantRefusal::Revoked,
        }) => {
            println!("the successor is revoked as well")
        }
        other => return Err(format!("expected a revoked session, got {other:?}").into()),
    }
    Ok(())
}
