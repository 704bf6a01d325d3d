//! The two transit requests `vaultrs` 0.8 cannot make as the store needs
//! them, as `rustify` endpoints sent through `vaultrs`'s own client (no
//! second HTTP stack):
//!
//! - signing with `salt_length` (PS* needs the salt as long as the hash,
//!   RFC 7518 §3.5; `vaultrs`'s `SignDataRequest` has no such field);
//! - reading a key with its `latest_version` (`vaultrs`'s `ReadKeyResponse`
//!   has none, and refuses answers with fields it does not know the type of).

use std::collections::HashMap;

use rustify::endpoint::Endpoint;
use rustify::enums::{RequestMethod, RequestType, ResponseType};
use rustify::errors::ClientError as HttpError;
use serde::{Deserialize, Serialize};

/// `POST MOUNT/sign/KEY`.
#[derive(Debug, Serialize)]
pub(super) struct SignRequest {
    #[serde(skip)]
    pub(super) mount: String,
    #[serde(skip)]
    pub(super) name: String,
    /// Base64 of the JWS signing input.
    pub(super) input: String,
    pub(super) key_version: u64,
    /// `jws`: ECDSA signatures as R‖S, base64url.
    pub(super) marshaling_algorithm: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hash_algorithm: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) signature_algorithm: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) salt_length: Option<&'static str>,
}

/// The `data` of a sign answer.
#[derive(Debug, Deserialize)]
pub(super) struct SignResponse {
    /// `vault:vN:BASE64URL`.
    pub(super) signature: String,
}

impl Endpoint for SignRequest {
    type Response = SignResponse;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        format!("{}/sign/{}", self.mount, self.name)
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::POST
    }

    fn body(&self) -> Result<Option<Vec<u8>>, HttpError> {
        serde_json::to_vec(self)
            .map(Some)
            .map_err(|e| HttpError::DataParseError { source: e.into() })
    }
}

/// `GET MOUNT/keys/KEY`.
#[derive(Debug)]
pub(super) struct ReadKeyRequest {
    pub(super) mount: String,
    pub(super) name: String,
}

/// The parts of a transit key the store uses. Its versions are kept as
/// JSON: an asymmetric key's are objects (`public_key`, `creation_time`),
/// a symmetric key's are bare Unix times, and a key of the wrong type must
/// be reported as such, not as an answer that cannot be parsed.
#[derive(Debug, Deserialize)]
pub(super) struct TransitKey {
    #[serde(rename = "type")]
    pub(super) key_type: String,
    pub(super) latest_version: u64,
    #[serde(default)]
    keys: HashMap<String, serde_json::Value>,
}

impl TransitKey {
    /// The public key of `version` (PEM for RSA and ECDSA, base64 for
    /// Ed25519), if the key has that version and it has one.
    pub(super) fn public_key(&self, version: u64) -> Option<&str> {
        self.keys.get(&version.to_string())?["public_key"].as_str()
    }

    /// The versions still in the key, oldest first.
    pub(super) fn versions(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.keys.keys().filter_map(|k| k.parse().ok()).collect();
        v.sort_unstable();
        v
    }

    /// Vault's time each version was created, in nanoseconds since the
    /// epoch; `None` for a version whose time cannot be read.
    pub(super) fn creation_times(&self) -> Vec<Option<i128>> {
        self.keys
            .values()
            .map(|v| match v {
                serde_json::Value::Object(o) => o
                    .get("creation_time")
                    .and_then(|t| t.as_str())
                    .and_then(super::state::parse_vault_time),
                // Symmetric keys: the Unix time in seconds.
                n => n.as_i64().map(|s| i128::from(s) * 1_000_000_000),
            })
            .collect()
    }
}

impl Endpoint for ReadKeyRequest {
    type Response = TransitKey;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        format!("{}/keys/{}", self.mount, self.name)
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::GET
    }
}
