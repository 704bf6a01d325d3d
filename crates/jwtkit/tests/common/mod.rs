//! What the DPoP tests of this crate share.

use async_trait::async_trait;
use jwtkit::refresh::replay::ReplayCache;

/// A replay cache that cannot be reached.
#[derive(Debug)]
pub struct Unreachable;

#[async_trait]
impl ReplayCache for Unreachable {
    async fn check_and_store(&self, _jti: &str, _until: i64) -> jwtkit::refresh::Result<bool> {
        Err(jwtkit::refresh::Error::Unavailable {
            backend: "test",
            endpoint: "nowhere".into(),
            effect: "nothing was recorded",
            source: "connection refused".into(),
        })
    }
}
