//! Verifying tokens against a JWKS URL, with a local server publishing it.
//!
//! `cargo run --example jwks_verify`

use std::sync::Arc;

use jwtkit::core::{Algorithm, Validation};
use jwtkit::keys::{KeySource, KeyStore, KeyStoreExt, MemoryKeyStore, RotationPolicy, Verifier};

/// Runs the example (also called by `tests/examples.rs`).
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // The identity provider's side: a key store and its JWKS on loopback.
    let store: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
    store
        .init(Algorithm::ES256, &RotationPolicy::default())
        .await?;
    let published = store.clone();
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let store = published.clone();
            async move {
                let jwks = store.verification_keys().await.expect("keys").to_json();
                (
                    [
                        ("content-type", "application/json"),
                        ("cache-control", "max-age=300"),
                    ],
                    jwks,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("JWKS at {url}");

    let exp = jwtkit::core::time::now_unix() + 600;
    let token = store
        .sign_token(
            &serde_json::json!({"iss": "https://idp.test", "sub": "alice", "exp": exp}),
            None,
        )
        .await?;

    // The API's side: only the URL, the algorithm and the issuer are configured.
    let verifier = Verifier::new(
        KeySource::Remote(url),
        Validation::new([Algorithm::ES256]).issuer("https://idp.test"),
    )?;
    let claims = verifier.verify::<serde_json::Value>(&token).await?.claims;
    println!(
        "verified via JWKS: sub={} ({} fetch)",
        claims["sub"],
        verifier.fetch_count()
    );

    // The provider rotates; the verifier learns the new kid on its own.
    store.rotate(None).await?;
    let token2 = store
        .sign_token(
            &serde_json::json!({"iss": "https://idp.test", "sub": "bob", "exp": exp}),
            None,
        )
        .await?;
    let claims = verifier.verify::<serde_json::Value>(&token2).await?.claims;
    println!(
        "after rotation: sub={} (the new key was prepublished in the JWKS)",
        claims["sub"]
    );
    server.abort();
    Ok(())
}
