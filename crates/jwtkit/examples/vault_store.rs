//! A token service whose signing keys live in a Vault/OpenBao transit engine.
//!
//! Against the local OpenBao server that `scripts/services.sh start` runs:
//!
//! ```sh
//! scripts/services.sh start && . .services/env.sh
//! cargo run --example vault_store
//! ```
//!
//! `JWTKIT_EXAMPLE_VAULT_URI` chooses the store (default: a new key under
//! `vault+http://$JWTKIT_TEST_VAULT_ADDR/transit/…`, token from `VAULT_TOKEN`
//! or `JWTKIT_TEST_VAULT_TOKEN`).

include!("common/remote.rs");

/// Runs the example (also called by `tests/examples.rs`); skips without a Vault server.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = match std::env::var("JWTKIT_EXAMPLE_VAULT_URI") {
        Ok(uri) => uri,
        Err(_) => {
            let Some(addr) =
                jwtkit_test_support::service("JWTKIT_TEST_VAULT_ADDR", "OpenBao (Vault API)")
            else {
                return Ok(());
            };
            let Some(token) = std::env::var("VAULT_TOKEN").ok().or_else(|| {
                jwtkit_test_support::service("JWTKIT_TEST_VAULT_TOKEN", "the OpenBao root token")
            }) else {
                return Ok(());
            };
            std::env::set_var("VAULT_TOKEN", token);
            let hostport = addr.trim_start_matches("http://").trim_end_matches('/');
            format!(
                "vault+http://{hostport}/transit/jwtkit-example-{}-{}",
                std::process::id(),
                jwtkit::core::time::now_unix()
            )
        }
    };
    token_service_on(&uri)
}
