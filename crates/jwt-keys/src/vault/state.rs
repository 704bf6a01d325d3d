//! The Vault store's state: the ledger in a KV v2 entry (written with
//! check-and-set) and the public keys of the transit key's versions.
//!
//! The entry holds one of:
//!
//! - `{"ledger": {…}}`: the store is initialized;
//! - `{"init": {…}}`: an `init` began (and may have crashed) — written
//!   *before* the transit key is created, so Vault's time of this KV version
//!   tells the transit key the store created (all its versions are younger)
//!   from one that was there before (see `VaultKeyStore::init_remote`);
//! - nothing (missing, or deleted with `kv delete`): never initialized.

use std::collections::HashMap;

use base64::Engine as _;
use jwt_core::{Algorithm, Jwk, VerifyingKey};
use serde_json::json;
use vaultrs::api::kv2::requests::{ReadSecretRequest, SetSecretRequestOptions};
use vaultrs::api::kv2::responses::SecretVersionMetadata;
use vaultrs::error::ClientError;

use super::client::{invalid, not_found};
use super::endpoints::{ReadKeyRequest, TransitKey};
use super::VaultKeyStore;
use crate::error::Result;
use crate::lifecycle::Ledger;
use crate::remote_store::RemoteSnapshot;
use crate::store::KeyState;

/// The state read at one moment.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(super) ledger: Option<Ledger>,
    /// The KV version of the ledger (0: none yet), for check-and-set.
    pub(super) cas: u64,
    /// Without a ledger: when an `init` recorded that it began (Vault's
    /// time of the `{"init": …}` version, nanoseconds since the epoch).
    pub(super) init_started: Option<i128>,
    /// The entry was deleted (`kv delete`) at this version, which
    /// `kv undelete` can restore.
    pub(super) deleted_version: Option<u64>,
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

/// The transit key types the store signs with.
pub(super) const SIGNING_KEY_TYPES: [&str; 7] = [
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
    "ecdsa-p256",
    "ecdsa-p384",
    "ecdsa-p521",
    "ed25519",
];

/// An RFC 3339 time as Vault writes it (`2024-05-01T10:00:00.123456789Z`,
/// or with an offset such as `+02:00`), in nanoseconds since the Unix
/// epoch; `None` when it is not one.
pub(super) fn parse_vault_time(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let fraction = &b[start..i];
        if fraction.is_empty() {
            return None;
        }
        for k in 0..9 {
            nanos = nanos * 10 + i128::from(fraction.get(k).map_or(0, |d| d - b'0'));
        }
    }
    let offset_secs: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (digits(i + 1..i + 3)?, digits(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3_600 + m * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
    // days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_secs;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

/// The KV v2 entry as read.
enum Entry {
    Found {
        data: serde_json::Value,
        version: u64,
        /// Vault's time of this version (RFC 3339).
        created: String,
    },
    /// Missing, or deleted (KV v2 keeps the version number for check-and-set).
    Missing { version: u64 },
}

impl VaultKeyStore {
    /// `KV_MOUNT/data/STATE_PATH`, for messages.
    pub(super) fn kv_path(&self) -> String {
        format!("{}/data/{}", self.kv_mount, self.state_path)
    }

    /// Reads the ledger and the public keys of its live versions.
    pub(super) async fn read_state(&self) -> Result<Snapshot> {
        let path = self.kv_path();
        let entry = self
            .session
            .call("read state", &path, |conn| {
                let request = ReadSecretRequest {
                    mount: self.kv_mount.clone(),
                    path: self.state_path.clone(),
                    version: None,
                };
                async move {
                    match vaultrs::api::exec_with_result(&conn, request).await {
                        Ok(r) => Ok(Entry::Found {
                            data: r.data,
                            version: r.metadata.version,
                            created: r.metadata.created_time,
                        }),
                        Err(e) => match not_found(&e) {
                            Some(body) => Ok(Entry::Missing {
                                version: body["data"]["metadata"]["version"].as_u64().unwrap_or(0),
                            }),
                            None => Err(e),
                        },
                    }
                }
            })
            .await?;
        let (mut init_started, mut deleted_version) = (None, None);
        let (ledger, cas) = match entry {
            Entry::Missing { version } => {
                deleted_version = (version > 0).then_some(version);
                (None, version)
            }
            Entry::Found {
                data,
                version,
                created,
            } => {
                let entry = &data["ledger"];
                if entry.is_null() {
                    if data.get("init").is_some() {
                        init_started = parse_vault_time(&created);
                    }
                    (None, version)
                } else {
                    let ledger: Ledger = serde_json::from_value(entry.clone()).map_err(|e| {
                        invalid(
                            "read state",
                            &path,
                            format!("the jwtkit ledger is invalid: {e}"),
                        )
                    })?;
                    (Some(ledger), version)
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
            init_started,
            deleted_version,
            public,
        })
    }

    /// The transit key; `None` when it does not exist.
    pub(super) async fn read_key(&self) -> Result<Option<TransitKey>> {
        let path = format!("{}/keys/{}", self.mount, self.key);
        self.session
            .call("read key", &path, |conn| {
                let request = ReadKeyRequest {
                    mount: self.mount.clone(),
                    name: self.key.clone(),
                };
                async move {
                    match vaultrs::api::exec_with_result(&conn, request).await {
                        Ok(key) => Ok(Some(key)),
                        Err(e) if not_found(&e).is_some() => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }

    /// Reads the key and caches the public key of every version the ledger names.
    pub(super) async fn read_public_keys(&self, ledger: &Ledger) -> Result<()> {
        let key = self
            .read_key()
            .await?
            .ok_or_else(|| self.not_initialized())?;
        if !SIGNING_KEY_TYPES.contains(&key.key_type.as_str()) {
            let path = format!("{}/keys/{}", self.mount, self.key);
            return Err(invalid(
                "read key",
                &path,
                format!(
                    "the transit key {path} has type {}, which cannot sign JWTs; it is not the key this store was initialized with (was it deleted and created again?): restore the store's key from a backup, or initialize a new store under another key name",
                    key.key_type
                ),
            ));
        }
        let mut cache = HashMap::new();
        for r in &ledger.keys {
            let Some(v) = self.version_of(&r.kid) else {
                continue;
            };
            if r.state == KeyState::Retired {
                continue;
            }
            let Some(public) = key.public_key(v) else {
                continue;
            };
            cache.insert(v, self.parse_public(&key.key_type, public, &r.kid, r.alg)?);
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
        Ok(self
            .write_state(&json!({ "ledger": ledger }), cas)
            .await?
            .is_some())
    }

    /// Records that an `init` begins, before it creates the transit key,
    /// if the entry is still at version `cas`. Returns the new version and
    /// Vault's time of it; `None` when someone else wrote first.
    pub(super) async fn write_init_marker(
        &self,
        alg: Algorithm,
        key_type: &str,
        cas: u64,
    ) -> Result<Option<(u64, i128)>> {
        let marker = json!({ "init": {
            "transit_key": format!("{}/keys/{}", self.mount, self.key),
            "alg": alg.as_str(),
            "key_type": key_type,
            "about": "jwtkit store init began here; the ledger replaces this entry when it completes. A transit key created before this entry is not the store's.",
        }});
        let Some(written) = self.write_state(&marker, cas).await? else {
            return Ok(None);
        };
        let created = parse_vault_time(&written.created_time).ok_or_else(|| {
            invalid(
                "write state",
                &self.kv_path(),
                format!(
                    "the KV v2 answer's created_time `{}` is not an RFC 3339 time",
                    written.created_time
                ),
            )
        })?;
        Ok(Some((written.version, created)))
    }

    /// Writes `data` as the entry if it is still at version `cas`; `None`
    /// when someone else wrote first.
    async fn write_state(
        &self,
        data: &serde_json::Value,
        cas: u64,
    ) -> Result<Option<SecretVersionMetadata>> {
        let path = self.kv_path();
        let cas = u32::try_from(cas).map_err(|_| {
            invalid(
                "write state",
                &path,
                format!("the state entry is at version {cas}, beyond what check-and-set can name here; move the state to a new state_path"),
            )
        })?;
        self.session
            .call("write state", &path, |conn| async move {
                let written = vaultrs::kv2::set_with_options(
                    &conn,
                    &self.kv_mount,
                    &self.state_path,
                    data,
                    SetSecretRequestOptions { cas },
                )
                .await;
                match written {
                    Ok(meta) => Ok(Some(meta)),
                    Err(ClientError::APIError { code: 400, errors })
                        if errors.iter().any(|m| m.contains("check-and-set")) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            })
            .await
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
        self.session
            .call(
                "configure key",
                &format!("{base}/config"),
                |conn| async move {
                    let mut config =
                        vaultrs::api::transit::requests::UpdateKeyConfigurationRequest::builder();
                    config
                        .min_decryption_version(Some(min_live))
                        .min_encryption_version(Some(min_live));
                    vaultrs::transit::key::update(&conn, &self.mount, &self.key, Some(&mut config))
                        .await
                },
            )
            .await?;
        self.session
            .call("trim key", &format!("{base}/trim"), |conn| async move {
                vaultrs::transit::key::trim(&conn, &self.mount, &self.key, min_live).await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::parse_vault_time;

    #[test]
    fn vault_times_parse_with_nanoseconds_and_offsets() {
        const S: i128 = 1_000_000_000;
        assert_eq!(parse_vault_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_vault_time("2026-11-30T02:30:56.860625951Z"),
            Some(1_796_005_856 * S + 860_625_951)
        );
        // Go writes the local zone's offset; the same instant either way.
        assert_eq!(
            parse_vault_time("2026-11-30T03:30:56.86+01:00"),
            Some(1_796_005_856 * S + 860_000_000)
        );
        assert_eq!(
            parse_vault_time("2000-02-29T23:59:59-05:30"),
            Some(951_888_599 * S)
        );
        for bad in [
            "",
            "2026-11-30",
            "2026-11-30T02:30:56",
            "2026-13-30T02:30:56Z",
            "2026-11-30T02:30:56.Z",
            "2026-11-30T02:30:56Zjunk",
            "2026-11-30 02:30:56Z",
            "2026-11-30T02:30:56+0100",
            "２026-11-30T02:30:56Z",
        ] {
            assert_eq!(parse_vault_time(bad), None, "{bad}");
        }
    }
}
