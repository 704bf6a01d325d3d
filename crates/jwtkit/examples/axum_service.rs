//! An axum API protected by jwtkit's bearer-token layer.
//!
//! `cargo run --example axum_service` starts it on 127.0.0.1 (a free port),
//! calls it once with and once without a token, and exits. Pass `--serve` to
//! keep it running and print a token to try with curl.

use axum::routing::get;
use axum::{Json, Router};
use jwtkit::axum::{BearerAuthLayer, Claims};
use jwtkit::{AccessClaims, Algorithm, MemoryKeyStore, TokenService};

async fn orders(Claims(claims): Claims<AccessClaims>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"owner": claims.sub, "orders": [], "token_id": claims.jti}))
}

/// Runs the example (also called by `tests/examples.rs`).
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(std::env::args().any(|a| a == "--serve")))
}

async fn run(keep_serving: bool) -> Result<(), Box<dyn std::error::Error>> {
    let tokens = TokenService::builder()
        .key_store(MemoryKeyStore::new())
        .init_key_store(Algorithm::ES256)
        .issuer("https://auth.example.com")
        .audience("orders-api")
        .build()
        .await?;
    // Applies the rotation policy and reloads keys every minute.
    let _maintenance = tokens.spawn_maintenance(std::time::Duration::from_secs(60));

    let app = Router::new()
        .route("/orders", get(orders))
        .layer(BearerAuthLayer::<AccessClaims>::new(tokens.clone()))
        .route("/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let pair = tokens.issue("alice", &()).await?;
    if keep_serving {
        println!(
            "listening on {base}\ncurl -H 'Authorization: Bearer {}' {base}/orders",
            pair.access_token
        );
        server.await??;
        return Ok(());
    }

    let http = reqwest::Client::new();
    let ok = http
        .get(format!("{base}/orders"))
        .bearer_auth(&pair.access_token)
        .send()
        .await?;
    println!("with a token: {} {}", ok.status(), ok.text().await?);
    let refused = http.get(format!("{base}/orders")).send().await?;
    println!(
        "without: {} (WWW-Authenticate: {:?})",
        refused.status(),
        refused.headers().get("www-authenticate")
    );
    server.abort();
    Ok(())
}
