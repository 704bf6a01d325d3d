// Shared by the kms_store and vault_store examples (included with `include!`).

/// A token service whose access-token keys live in the store at `uri`:
/// initialize, issue, verify, rotate, verify again, publish the JWKS.
fn token_service_on(uri: &str) -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            let store = jwtkit::open_store(uri)?;
            let tokens = jwtkit::TokenService::builder()
                .shared_key_store(store)
                .init_key_store(jwtkit::Algorithm::ES256) // creates the keys on first use
                .issuer("https://auth.example.com")
                .audience("my-api")
                .build()
                .await?;
            let pair = tokens.issue("alice", &()).await?;
            let claims: jwtkit::AccessClaims = tokens.verify_access(&pair.access_token)?;
            println!(
                "{uri}: signed remotely, verified in memory: sub={}",
                claims.sub
            );

            // Rotate now (normally the maintenance task does it on schedule).
            let report = tokens.key_store().rotate(None).await?;
            tokens.reload_keys().await?;
            let after = tokens.issue("bob", &()).await?;
            tokens.verify_access::<jwtkit::AccessClaims>(&pair.access_token)?; // still in its grace
            tokens.verify_access::<jwtkit::AccessClaims>(&after.access_token)?;
            println!(
                "rotated: {} now signs; JWKS has {} keys",
                report.active,
                tokens.jwks().await?.keys.len()
            );
            Ok(())
        })
}
