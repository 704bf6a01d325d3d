//! The KMS store's state as read from KMS: the member keys named by the
//! store's aliases, their lifecycle from their tags (as a [`Ledger`]), and
//! their public keys, fetched once each.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_sdk_kms::types::KeySpec;
use jwt_core::{Algorithm, VerifyingKey};

use super::error::{invalid, sdk};
use super::{alias, key_id_of, signature, KmsKeyStore, Target};
use super::{
    TAG_ACTIVATED, TAG_ALG, TAG_CREATED, TAG_POLICY, TAG_RETIRED, TAG_RETIRE_AT, TAG_RETIRING_AT,
};
use crate::error::Result;
use crate::lifecycle::{Ledger, LEDGER_VERSION};
use crate::policy::RotationPolicy;
use crate::remote_store::{RemoteBackend, RemoteSnapshot};
use crate::store::{KeyRecord, KeyState};

/// A public key fetched with `GetPublicKey`.
#[derive(Debug)]
pub(super) struct PublicKey {
    pub(super) arn: String,
    pub(super) key: VerifyingKey,
}

/// The store's state at one moment: the lifecycle as a [`Ledger`] (one
/// record per member key, read from its tags and the aliases), so that
/// rotation and retirement run the same state machine as every other
/// backend, and the public keys that verify.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(super) ledger: Ledger,
    /// Public keys by key id; none for retired keys (KMS no longer returns
    /// their public key).
    pub(super) public: HashMap<String, Arc<PublicKey>>,
    /// The targets of `alias/NAME` and `alias/NAME/pending` as found, even
    /// when they name no valid member (an init that stopped half-way).
    pub(super) active: Option<String>,
    pub(super) pending: Option<String>,
}

impl Snapshot {
    fn new(keys: Vec<KeyRecord>, policy: RotationPolicy) -> Snapshot {
        Snapshot {
            ledger: Ledger {
                version: LEDGER_VERSION,
                policy,
                keys,
            },
            public: HashMap::new(),
            active: None,
            pending: None,
        }
    }
}

impl RemoteSnapshot for Snapshot {
    /// `None` until `init` created the `alias/NAME` signing pointer (or
    /// for a fixed key, always there).
    fn ledger(&self) -> Option<&Ledger> {
        self.active.as_ref().map(|_| &self.ledger)
    }

    fn public_key(&self, kid: &str) -> Option<&jwt_core::VerifyingKey> {
        self.public.get(kid).map(|p| &p.key)
    }
}

impl KmsKeyStore {
    /// Reads the state from KMS.
    /// Reads the state from KMS; `previous`, the last state read, saves
    /// reading the tags of keys retired for good.
    pub(super) async fn read_state(&self, previous: Option<Arc<Snapshot>>) -> Result<Snapshot> {
        match &self.target {
            Target::Key(key) => self.load_fixed(key).await,
            Target::Alias(name) => self.load_alias(name, previous).await,
        }
    }

    async fn load_fixed(&self, key: &str) -> Result<Snapshot> {
        let (key_id, public) = match self.known_by_arn_or_id(key) {
            Some(found) => found,
            None => {
                let (spec, arn, der) = self.get_public_key(key).await?;
                let alg = match self.settings.algorithm {
                    Some(a) => a,
                    None => signature::default_algorithm(&spec).ok_or_else(|| {
                        invalid(
                            "GetPublicKey",
                            key,
                            format!("key spec {spec} cannot sign JWTs (use RSA_* or ECC_NIST_P*)"),
                        )
                    })?,
                };
                let public = self.remember_public(&arn, &der, alg)?;
                (key_id_of(&arn).to_owned(), public)
            }
        };
        let alg = public.key.algorithm().unwrap_or(Algorithm::RS256);
        let record = KeyRecord::new(key_id.clone(), alg, KeyState::Active);
        let mut snap = Snapshot::new(vec![record], RotationPolicy::default());
        snap.public.insert(key_id.clone(), public);
        snap.active = Some(key_id);
        Ok(snap)
    }

    fn known_by_arn_or_id(&self, key: &str) -> Option<(String, Arc<PublicKey>)> {
        let keys = self.public_keys.read().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .find(|(id, p)| id.as_str() == key || p.arn == key)
            .map(|(id, p)| (id.clone(), p.clone()))
    }

    async fn load_alias(&self, name: &str, previous: Option<Arc<Snapshot>>) -> Result<Snapshot> {
        let aliases = self.store_aliases(name).await?;
        let active_alias = alias(name, "");
        let pending_alias = alias(name, "pending");
        let member_prefix = alias(name, "key/");
        let active = aliases.get(&active_alias).cloned();
        let pending = aliases.get(&pending_alias).cloned();
        let mut ids: Vec<String> = aliases
            .iter()
            .filter(|(alias, _)| alias.starts_with(&member_prefix))
            .map(|(_, target)| target.clone())
            .collect();
        ids.extend(active.iter().cloned());
        ids.extend(pending.iter().cloned());
        ids.sort();
        ids.dedup();

        let mut records = Vec::new();
        let mut public = HashMap::new();
        let mut policy = RotationPolicy::default();
        for id in ids {
            // A retired key's tags never change again.
            if let Some(r) = previous
                .as_ref()
                .and_then(|p| p.ledger.get(&id))
                .filter(|r| r.state == KeyState::Retired)
            {
                records.push(r.clone());
                continue;
            }
            let tags = self.tags(&id).await?;
            let Some(alg) = tags.get(TAG_ALG).and_then(|a| a.parse::<Algorithm>().ok()) else {
                tracing::warn!(store = %self.location(), key = %id, "key without a valid jwtkit:alg tag; ignored");
                continue;
            };
            let num = |t: &str| tags.get(t).and_then(|v| v.parse::<i64>().ok());
            let state = if Some(&id) == active.as_ref() {
                if let Some(p) = tags.get(TAG_POLICY) {
                    policy = decode_policy(p).map_err(|reason| {
                        invalid(
                            "ListResourceTags",
                            &id,
                            format!("the jwtkit:policy tag is invalid: {reason}"),
                        )
                    })?;
                }
                KeyState::Active
            } else if Some(&id) == pending.as_ref() {
                KeyState::Pending
            } else if tags.contains_key(TAG_RETIRED) {
                KeyState::Retired
            } else if num(TAG_RETIRE_AT).is_some() {
                KeyState::Retiring
            } else {
                // Created by a rotation that did not finish: never published.
                tracing::debug!(store = %self.location(), key = %id, "key never became pending; ignored");
                continue;
            };
            let mut record = KeyRecord::new(id.clone(), alg, state);
            record.created_at = num(TAG_CREATED);
            record.activated_at = num(TAG_ACTIVATED);
            record.retiring_at = num(TAG_RETIRING_AT);
            record.retire_at = num(TAG_RETIRE_AT);
            record.has_private_key = state != KeyState::Retired;
            if state != KeyState::Retired {
                public.insert(id.clone(), self.public_key(&id, alg).await?);
            }
            records.push(record);
        }
        records.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        let mut snap = Snapshot::new(records, policy);
        snap.public = public;
        snap.active = active;
        snap.pending = pending;
        Ok(snap)
    }

    /// The store's aliases (`alias/NAME` and `alias/NAME/…`) → target key id.
    async fn store_aliases(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let client = self.client().await?;
        let exact = format!("alias/{name}");
        let prefix = format!("alias/{name}/");
        let mut out = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let page = client
                .list_aliases()
                .set_marker(marker.take())
                .limit(100)
                .send()
                .await
                .map_err(|e| sdk("ListAliases", &exact, e))?;
            for a in page.aliases() {
                let (Some(alias), Some(target)) = (a.alias_name(), a.target_key_id()) else {
                    continue;
                };
                if alias == exact || alias.starts_with(&prefix) {
                    out.insert(alias.to_owned(), target.to_owned());
                }
            }
            match page.next_marker() {
                Some(m) if page.truncated() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn tags(&self, key_id: &str) -> Result<HashMap<String, String>> {
        let client = self.client().await?;
        let mut out = HashMap::new();
        let mut marker: Option<String> = None;
        loop {
            let page = client
                .list_resource_tags()
                .key_id(key_id)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk("ListResourceTags", key_id, e))?;
            for t in page.tags() {
                out.insert(t.tag_key().to_owned(), t.tag_value().to_owned());
            }
            match page.next_marker() {
                Some(m) if page.truncated() => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn get_public_key(&self, key: &str) -> Result<(KeySpec, String, Vec<u8>)> {
        let out = self
            .client()
            .await?
            .get_public_key()
            .key_id(key)
            .send()
            .await
            .map_err(|e| sdk("GetPublicKey", key, e))?;
        // Older KMS APIs (and moto) answer with the deprecated CustomerMasterKeySpec only.
        #[allow(deprecated)]
        let spec = out
            .key_spec()
            .cloned()
            .or_else(|| {
                out.customer_master_key_spec()
                    .map(|c| KeySpec::from(c.as_str()))
            })
            .ok_or_else(|| invalid("GetPublicKey", key, "no KeySpec in the answer"))?;
        let arn = out
            .key_id()
            .ok_or_else(|| invalid("GetPublicKey", key, "no KeyId in the answer"))?
            .to_owned();
        let der = out
            .public_key()
            .ok_or_else(|| invalid("GetPublicKey", key, "no PublicKey in the answer"))?
            .as_ref()
            .to_vec();
        Ok((spec, arn, der))
    }

    fn remember_public(&self, arn: &str, der: &[u8], alg: Algorithm) -> Result<Arc<PublicKey>> {
        let key_id = key_id_of(arn).to_owned();
        let key = VerifyingKey::from_der(der)
            .and_then(|k| k.with_kid(key_id.clone()).with_algorithm(alg))
            .map_err(|e| {
                invalid(
                    "GetPublicKey",
                    arn,
                    format!("the public key does not fit {alg}: {e}"),
                )
            })?;
        let public = Arc::new(PublicKey {
            arn: arn.to_owned(),
            key,
        });
        self.public_keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key_id, public.clone());
        Ok(public)
    }

    /// The public key of `key_id`: from the cache, or `GetPublicKey` once.
    pub(super) async fn public_key(&self, key_id: &str, alg: Algorithm) -> Result<Arc<PublicKey>> {
        if let Some(p) = self
            .public_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key_id)
        {
            return Ok(p.clone());
        }
        let (_spec, arn, der) = self.get_public_key(key_id).await?;
        self.remember_public(&arn, &der, alg)
    }
}

/// The policy as a KMS tag value (≤ 256 characters of the allowed set:
/// letters, digits, spaces and `_ . : / = + - @`).
pub(super) fn encode_policy(p: &RotationPolicy) -> String {
    let algs: Vec<&str> = p.allowed_algorithms().iter().map(|a| a.as_str()).collect();
    format!(
        "rotate={} prepublish={} grace={} lifetime={} leeway={} algs={}",
        p.rotate_after().as_secs(),
        p.prepublish().as_secs(),
        p.verify_grace().as_secs(),
        p.max_token_lifetime().as_secs(),
        p.leeway().as_secs(),
        algs.join("/")
    )
}

pub(super) fn decode_policy(s: &str) -> std::result::Result<RotationPolicy, String> {
    let mut fields = HashMap::new();
    for part in s.split_whitespace() {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not key=value"))?;
        fields.insert(k, v);
    }
    let num = |k: &str| -> std::result::Result<u64, String> {
        fields
            .get(k)
            .ok_or_else(|| format!("`{k}` is missing"))?
            .parse()
            .map_err(|_| format!("`{k}` is not a number"))
    };
    let algs: Vec<&str> = fields
        .get("algs")
        .ok_or("`algs` is missing")?
        .split('/')
        .collect();
    // Through serde, so the algorithm order is kept as recorded and the
    // policy's own checks apply.
    serde_json::from_value(serde_json::json!({
        "rotate_after_secs": num("rotate")?,
        "prepublish_secs": num("prepublish")?,
        "verify_grace_secs": num("grace")?,
        "max_token_lifetime_secs": num("lifetime")?,
        "leeway_secs": num("leeway")?,
        "allowed_algorithms": algs,
    }))
    .map_err(|e| e.to_string())
}
