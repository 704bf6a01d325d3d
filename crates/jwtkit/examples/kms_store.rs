//! A token service whose signing keys never leave AWS KMS.
//!
//! Against the local moto server that `scripts/services.sh start` runs:
//!
//! ```sh
//! scripts/services.sh start && . .services/env.sh
//! AWS_ENDPOINT_URL=$JWTKIT_TEST_KMS_ENDPOINT cargo run --example kms_store
//! ```
//!
//! Against real AWS, drop `AWS_ENDPOINT_URL` and use your usual credentials.
//! `JWTKIT_EXAMPLE_KMS_URI` chooses the store (default: a new `kms:alias/…`).

include!("common/remote.rs");

/// Runs the example (also called by `tests/examples.rs`); skips without a KMS endpoint.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .or_else(|| jwtkit_test_support::service("JWTKIT_TEST_KMS_ENDPOINT", "moto (KMS API)"))
    else {
        return Ok(());
    };
    std::env::set_var("AWS_ENDPOINT_URL", endpoint);
    for (var, default) in [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, default);
        }
    }
    let uri = std::env::var("JWTKIT_EXAMPLE_KMS_URI").unwrap_or_else(|_| {
        format!(
            "kms:alias/jwtkit-example-{}",
            jwtkit::core::time::now_unix()
        )
    });
    token_service_on(&uri)
}
