//! The Vault store's state: the ledger in a KV v2 entry (written with
//! check-and-set) and the public keys of the transit key's versions.

use std::collections::HashMap;

use base64::Engine as _;
use jwt_core::{Algorithm, Jwk, VerifyingKey};
use serde::Deserialize;
use serde_json::json;

use super::client::{invalid, Reply, VaultError};
use super::VaultKeyStore;
use crate::error::{Error, Result};
use crate::lifecycle::Ledger;
use crate::remote_store::RemoteSnapshot;
use crate::store::KeyState;

/// The state read at one moment.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(super) ledger: Option<Ledger>,
    /// The KV version of the ledger (0: none yet), for check-and-set.
    pub(super) cas: u64,
    /// The public keys of the ledger's unretired versions, by kid.
    public: HashMap<String, VerifyingKey>,
}

impl RemoteSnapshot for Snapshot {
    fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    fn public_key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.public.get(kid)
    }
}

#[derive(Deserialize)]
pub(super) struct TransitKey {
    #[serde(rename = "type")]
    pub(super) key_type: String,
    pub(super) latest_version: u64,
    #[serde(default)]
    keys: HashMap<String, TransitVersion>,
}

#[derive(Deserialize)]
struct TransitVersion {
    #[serde(default)]
    public_key: String,
}

impl VaultKeyStore {
    pub(super) fn kv_path(&self) -> String {
        format!("{}/data/{}", self.kv_mount, self.state_path)
    }

    /// Reads the ledger and the public keys of its live versions.
    pub(super) async fn read_state(&self) -> Result<Snapshot> {
        let path = self.kv_path();
        let (ledger, cas) = match self.http.call("read state", &path, None).await? {
            Reply::NotFound => (None, 0),
            Reply::Ok(v) => {
                let cas = v["data"]["metadata"]["version"].as_u64().unwrap_or(0);
                let entry = &v["data"]["data"]["ledger"];
                if entry.is_null() {
                    // Deleted (KV v2 keeps the version number).
                    (None, cas)
                } else {
                    let ledger: Ledger = serde_json::from_value(entry.clone()).map_err(|e| {
                        invalid(
                            "read state",
                            &path,
                            format!("the jwtkit ledger is invalid: {e}"),
                        )
                    })?;
                    (Some(ledger), cas)
                }
            }
        };
        if let Some(l) = &ledger {
            let missing = l
                .keys
                .iter()
                .filter(|r| r.state != KeyState::Retired)
                .filter_map(|r| self.version_of(&r.kid))
                .any(|v| {
                    !self
                        .public_keys
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .contains_key(&v)
                });
            if missing {
                self.read_public_keys(l).await?;
            }
        }
        let mut public = HashMap::new();
        if let Some(l) = &ledger {
            let cache = self.public_keys.read().unwrap_or_else(|e| e.into_inner());
            for r in l.keys.iter().filter(|r| r.state != KeyState::Retired) {
                if let Some(key) = self.version_of(&r.kid).and_then(|v| cache.get(&v)) {
                    public.insert(r.kid.clone(), key.clone());
                }
            }
        }
        Ok(Snapshot {
            ledger,
            cas,
            public,
        })
    }

    pub(super) async fn read_key(&self) -> Result<Option<TransitKey>> {
        let path = format!("{}/keys/{}", self.mount, self.key);
        match self.http.call("read key", &path, None).await? {
            Reply::NotFound => Ok(None),
            Reply::Ok(v) => serde_json::from_value(v["data"].clone())
                .map(Some)
                .map_err(|e| invalid("read key", &path, format!("unexpected answer: {e}"))),
        }
    }

    /// Reads the key and caches the public key of every version the ledger names.
    pub(super) async fn read_public_keys(&self, ledger: &Ledger) -> Result<()> {
        let key = self
            .read_key()
            .await?
            .ok_or_else(|| self.not_initialized())?;
        let mut cache = HashMap::new();
        for r in &ledger.keys {
            let Some(v) = self.version_of(&r.kid) else {
                continue;
            };
            if r.state == KeyState::Retired {
                continue;
            }
            let Some(tv) = key.keys.get(&v.to_string()) else {
                continue;
            };
            cache.insert(
                v,
                self.parse_public(&key.key_type, &tv.public_key, &r.kid, r.alg)?,
            );
        }
        self.public_keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(cache);
        Ok(())
    }

    pub(super) fn parse_public(
        &self,
        key_type: &str,
        public: &str,
        kid: &str,
        alg: Algorithm,
    ) -> Result<VerifyingKey> {
        let parsed = if key_type == "ed25519" {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(public)
                .map_err(|e| {
                    invalid(
                        "read key",
                        kid,
                        format!("the ed25519 public key is not base64: {e}"),
                    )
                })?;
            VerifyingKey::from_jwk(&Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(jwt_core::b64::encode(&raw)),
                ..Jwk::default()
            })
        } else {
            VerifyingKey::from_pem(public.as_bytes())
        };
        parsed
            .and_then(|k| k.with_kid(kid.to_owned()).with_algorithm(alg))
            .map_err(|e| {
                invalid(
                    "read key",
                    kid,
                    format!("the public key does not fit {alg}: {e}"),
                )
            })
    }

    /// Writes `ledger` if the KV entry is still at version `cas`; `Ok(false)`
    /// when someone else wrote first.
    pub(super) async fn write_ledger(&self, ledger: &Ledger, cas: u64) -> Result<bool> {
        let body = json!({"options": {"cas": cas}, "data": {"ledger": ledger}});
        match self
            .http
            .call("write state", &self.kv_path(), Some(body))
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::Backend { source, .. })
                if source.downcast_ref::<VaultError>().is_some_and(|v| {
                    v.status() == Some(400)
                        && v.messages().iter().any(|m| m.contains("check-and-set"))
                }) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Raises `min_decryption_version` and trims versions below the oldest
    /// version still in use, destroying retired private keys.
    pub(super) async fn trim(&self, ledger: &Ledger) -> Result<()> {
        let Some(min_live) = ledger
            .keys
            .iter()
            .filter(|r| r.state != KeyState::Retired)
            .filter_map(|r| self.version_of(&r.kid))
            .min()
        else {
            return Ok(());
        };
        let base = format!("{}/keys/{}", self.mount, self.key);
        self.http
            .call(
                "configure key",
                &format!("{base}/config"),
                Some(
                    json!({"min_decryption_version": min_live, "min_encryption_version": min_live}),
                ),
            )
            .await?;
        self.http
            .call(
                "trim key",
                &format!("{base}/trim"),
                Some(json!({"min_available_version": min_live})),
            )
            .await?;
        Ok(())
    }
}
