//! The AWS KMS backend (feature `kms`): private keys that never leave KMS.
//!
//! The process asks KMS to sign ([`KeyStore::sign`] is one `Sign` call) and
//! verifies locally: each key's public key is fetched once with
//! `GetPublicKey` and cached forever (KMS key material never changes), so
//! verification never calls KMS.
//!
//! # Two kinds of store
//!
//! - `alias/NAME` (URI `kms:alias/NAME`): a **rotating store**. KMS cannot
//!   rotate asymmetric keys, so the store rotates by creating a new key and
//!   re-pointing aliases. [`KeyStore::init`] creates the first keys and the
//!   aliases.
//! - a key id or key ARN (URI `kms:KEY`): **one fixed key** that jwtkit did
//!   not create. It signs and verifies; `init`/`rotate` are refused with
//!   [`Error::ReadOnly`].
//!
//! # `kid`
//!
//! The `kid` of a KMS key is its **key id** (the UUID at the end of its ARN,
//! e.g. `1234abcd-12ab-34cd-56ef-1234567890ab`; `mrk-…` for multi-Region
//! keys). The store resolves the alias to a key ARN, signs with that ARN and
//! puts that key's id in the header, so `kid` and signature always agree.
//!
//! # Where the lifecycle lives (so that every process agrees)
//!
//! Everything is kept in KMS itself; nothing is stored locally:
//!
//! | KMS object | meaning |
//! |---|---|
//! | alias `alias/NAME` | the **active** key (the signing pointer) |
//! | alias `alias/NAME/pending` | the **pending** key (published, not signing) |
//! | alias `alias/NAME/key/KEYID` | membership: KEYID belongs to the store |
//! | alias `alias/NAME/rotated/KEYID` | the rotation away from KEYID happened (created once; the compare-and-swap that makes concurrent rotations rotate once) |
//! | tag `jwtkit:store` | NAME |
//! | tag `jwtkit:alg` | the JOSE algorithm (`ES256`, `PS256`, …): RS* and PS* share RSA key specs |
//! | tags `jwtkit:created`, `jwtkit:activated`, `jwtkit:retiring-at`, `jwtkit:retire-at`, `jwtkit:retired` | the lifecycle times, in Unix seconds of the store's clock |
//! | tag `jwtkit:policy` | the [`RotationPolicy`], e.g. `rotate=2592000 prepublish=86400 grace=86400 lifetime=3600 leeway=300 algs=ES256/PS256` |
//!
//! A member key is *active* or *pending* when the alias says so, *retiring*
//! when it has `jwtkit:retire-at` (and *retired* once that time has passed),
//! and *retired* for good once [`KeyStore::retire_expired`] tagged it
//! `jwtkit:retired` and scheduled its deletion (after
//! [`deletion_window_days`](KmsKeyStoreBuilder::deletion_window_days)). Old
//! keys stay enabled, verify-only, until their grace ends.
//!
//! Other processes see a rotation within
//! [`state_ttl`](KmsKeyStoreBuilder::state_ttl); tokens they sign in the
//! meantime use the previous key, which verifies for the whole grace.
//!
//! # Configuration
//!
//! Credentials, region and endpoint come from the standard AWS chain
//! (`aws-config`): `AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
//! `AWS_PROFILE`, SSO, web identity, instance roles, and
//! `AWS_ENDPOINT_URL_KMS`/`AWS_ENDPOINT_URL`; the builder overrides any of
//! them. Every call is bounded by [`timeout`](KmsKeyStoreBuilder::timeout)
//! (retries included); `ThrottlingException` is retried with backoff by the
//! SDK and surfaces as a retryable [`Error::Backend`]
//! when it persists.
//!
//! ```no_run
//! use std::time::Duration;
//! use jwt_core::Algorithm;
//! use jwt_keys::aws_kms::KmsKeyStore;
//! use jwt_keys::{KeyStore, KeyStoreExt, RotationPolicy};
//!
//! # async fn run() -> jwt_keys::Result<()> {
//! let store = KmsKeyStore::builder("alias/jwt-issuer")
//!     .timeout(Duration::from_secs(3))
//!     .build()?;
//! store.init(Algorithm::ES256, &RotationPolicy::default(), jwt_core::time::now_unix()).await?;
//! let token = store.sign_token(&serde_json::json!({"sub": "alice"}), None).await?;
//! # Ok(()) }
//! ```
//!
//! The IAM policy, the rotation runbook, costs and rate limits are in
//! `docs/backends/kms.md`.

mod error;
mod signature;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag};
use aws_sdk_kms::Client;
use jwt_core::{Algorithm, Clock, Jwks, SystemClock, VerifyingKey};

pub use self::error::KmsError;
use self::error::{invalid, sdk, BACKEND};
use crate::error::{Error, Result};
use crate::policy::{self, RotationPolicy};
use crate::state_cache::StateCache;
use crate::store::{KeyInfo, KeyRecord, KeyState, KeyStore, RotationReport};

const TAG_STORE: &str = "jwtkit:store";
const TAG_ALG: &str = "jwtkit:alg";
const TAG_CREATED: &str = "jwtkit:created";
const TAG_ACTIVATED: &str = "jwtkit:activated";
const TAG_RETIRING_AT: &str = "jwtkit:retiring-at";
const TAG_RETIRE_AT: &str = "jwtkit:retire-at";
const TAG_RETIRED: &str = "jwtkit:retired";
const TAG_POLICY: &str = "jwtkit:policy";

/// How a [`KmsKeyStore`] names its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A rotating store named by `alias/NAME` (NAME stored).
    Alias(String),
    /// One fixed key, by key id or ARN.
    Key(String),
}

/// A [`KeyStore`] whose private keys live in AWS KMS. Build it with
/// [`KmsKeyStore::builder`]; the module docs describe the `kid` and the
/// state scheme.
pub struct KmsKeyStore {
    target: Target,
    settings: Settings,
    clock: Arc<dyn Clock>,
    client: tokio::sync::OnceCell<Client>,
    given_client: Option<Client>,
    /// The last state read from KMS (single-flight refreshes, stale on error).
    state: StateCache<Snapshot>,
    /// Public keys by key id: fetched once, kept forever.
    public_keys: RwLock<HashMap<String, Arc<PublicKey>>>,
    /// Writes (init, rotate, retire) of this process, one at a time.
    write: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Settings {
    endpoint_url: Option<String>,
    region: Option<String>,
    profile: Option<String>,
    timeout: Duration,
    max_attempts: u32,
    rsa_bits: u32,
    deletion_window_days: i32,
    state_ttl: Duration,
    algorithm: Option<Algorithm>,
}

impl fmt::Debug for KmsKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No secrets here (credentials stay inside the SDK), but the client
        // and caches would only add noise.
        f.debug_struct("KmsKeyStore")
            .field("target", &self.location())
            .field("region", &self.settings.region)
            .field("endpoint_url", &self.settings.endpoint_url)
            .field("timeout", &self.settings.timeout)
            .finish_non_exhaustive()
    }
}

/// A public key fetched with `GetPublicKey`.
#[derive(Debug)]
struct PublicKey {
    arn: String,
    key: VerifyingKey,
}

/// One key of the store as read from KMS.
#[derive(Debug, Clone)]
struct Member {
    key_id: String,
    record: KeyRecord,
    /// `None` for retired keys (KMS no longer returns their public key).
    public: Option<Arc<PublicKey>>,
}

/// The store's state at one moment.
#[derive(Debug)]
struct Snapshot {
    members: Vec<Member>,
    active: Option<String>,
    pending: Option<String>,
    policy: RotationPolicy,
}

impl Snapshot {
    fn member(&self, kid: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.key_id == kid)
    }
}

/// Builds a [`KmsKeyStore`]; [`build`](Self::build) refuses contradictory settings.
#[derive(Debug, Clone)]
pub struct KmsKeyStoreBuilder {
    target: String,
    settings: Settings,
    clock: Option<Arc<dyn Clock>>,
    client: Option<Client>,
}

impl KmsKeyStore {
    /// A builder for the store at `target`: `alias/NAME` for a rotating
    /// store, or a key id / key ARN for one fixed key.
    pub fn builder(target: impl Into<String>) -> KmsKeyStoreBuilder {
        KmsKeyStoreBuilder {
            target: target.into(),
            settings: Settings {
                endpoint_url: None,
                region: None,
                profile: None,
                timeout: Duration::from_secs(5),
                max_attempts: 3,
                rsa_bits: 2048,
                deletion_window_days: 30,
                state_ttl: Duration::from_secs(30),
                algorithm: None,
            },
            clock: None,
            client: None,
        }
    }

    /// The store at `target` with everything from the AWS environment.
    pub fn from_env(target: impl Into<String>) -> Result<KmsKeyStore> {
        KmsKeyStore::builder(target).build()
    }

    fn location(&self) -> String {
        match &self.target {
            Target::Alias(name) => format!("kms:alias/{name}"),
            Target::Key(key) => format!("kms:{key}"),
        }
    }

    fn not_initialized(&self) -> Error {
        Error::NotInitialized {
            backend: BACKEND,
            location: self.location(),
        }
    }

    async fn client(&self) -> Result<&Client> {
        if let Some(c) = &self.given_client {
            return Ok(c);
        }
        self.client
            .get_or_try_init(|| async {
                let s = &self.settings;
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(s.timeout)
                            .operation_attempt_timeout(s.timeout)
                            .operation_timeout(s.timeout)
                            .build(),
                    )
                    .retry_config(RetryConfig::standard().with_max_attempts(s.max_attempts));
                if let Some(region) = &s.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                if let Some(profile) = &s.profile {
                    loader = loader.profile_name(profile);
                }
                if let Some(url) = &s.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                let config = loader.load().await;
                if config.region().is_none() {
                    return Err(Error::Env {
                        var: "AWS_REGION".into(),
                        reason: "no AWS region is configured: set AWS_REGION (or a region in the AWS profile), or call KmsKeyStoreBuilder::region".into(),
                    });
                }
                Ok(Client::new(&config))
            })
            .await
    }

    /// The current state: the cached one while it is younger than
    /// `state_ttl`, else read from KMS. With `allow_stale`, a failed read
    /// falls back to the last state read (verification keeps working while
    /// KMS is unreachable).
    async fn snapshot(&self, allow_stale: bool) -> Result<Arc<Snapshot>> {
        self.state
            .get_or_load(
                self.settings.state_ttl,
                allow_stale,
                "KMS",
                || self.location(),
                || self.load(),
            )
            .await
    }

    fn invalidate(&self) {
        self.state.invalidate();
    }

    /// Reads the state from KMS.
    async fn load(&self) -> Result<Snapshot> {
        match &self.target {
            Target::Key(key) => self.load_fixed(key).await,
            Target::Alias(name) => self.load_alias(name).await,
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
        Ok(Snapshot {
            members: vec![Member {
                key_id: key_id.clone(),
                record: KeyRecord::new(key_id.clone(), alg, KeyState::Active),
                public: Some(public),
            }],
            active: Some(key_id),
            pending: None,
            policy: RotationPolicy::default(),
        })
    }

    fn known_by_arn_or_id(&self, key: &str) -> Option<(String, Arc<PublicKey>)> {
        let keys = self.public_keys.read().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .find(|(id, p)| id.as_str() == key || p.arn == key)
            .map(|(id, p)| (id.clone(), p.clone()))
    }

    async fn load_alias(&self, name: &str) -> Result<Snapshot> {
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

        let previous = self.state.get(None);
        let mut members = Vec::new();
        let mut policy = RotationPolicy::default();
        for id in ids {
            // A retired key's tags never change again.
            if let Some(m) = previous
                .as_ref()
                .and_then(|p| p.member(&id))
                .filter(|m| m.record.state == KeyState::Retired)
            {
                members.push(m.clone());
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
            let public = if state == KeyState::Retired {
                None
            } else {
                Some(self.public_key(&id, alg).await?)
            };
            members.push(Member {
                key_id: id,
                record,
                public,
            });
        }
        members.sort_by_key(|m| (m.record.created_at, m.key_id.clone()));
        Ok(Snapshot {
            members,
            active,
            pending,
            policy,
        })
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
    async fn public_key(&self, key_id: &str, alg: Algorithm) -> Result<Arc<PublicKey>> {
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

    async fn create_alias(&self, alias: &str, key_id: &str) -> Result<(), Error> {
        self.client()
            .await?
            .create_alias()
            .alias_name(alias)
            .target_key_id(key_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                if e.code() == Some("AlreadyExistsException") {
                    // The alias is the compare-and-swap: someone else created it first.
                    Error::Conflict {
                        expected: alias.to_owned(),
                        actual: "an existing alias".to_owned(),
                    }
                } else {
                    sdk("CreateAlias", alias, e)
                }
            })
    }

    async fn update_alias(&self, alias: &str, key_id: &str) -> Result<()> {
        self.client()
            .await?
            .update_alias()
            .alias_name(alias)
            .target_key_id(key_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk("UpdateAlias", alias, e))
    }

    async fn tag(&self, key_id: &str, tags: &[(&str, String)]) -> Result<()> {
        let mut req = self.client().await?.tag_resource().key_id(key_id);
        for (k, v) in tags {
            req = req.tags(make_tag(k, v)?);
        }
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| sdk("TagResource", key_id, e))
    }

    /// Creates a key for `alg` with its tags and membership alias; returns its id.
    async fn create_key(
        &self,
        name: &str,
        alg: Algorithm,
        policy: &RotationPolicy,
        now: i64,
        activated: bool,
    ) -> Result<String> {
        let spec = signature::key_spec(alg, self.settings.rsa_bits).ok_or_else(|| {
            Error::policy(format!(
                "KMS keys sign RS*, PS* and ES* here; {alg} is not supported by the aws-kms backend"
            ))
        })?;
        let mut req = self
            .client()
            .await?
            .create_key()
            .key_usage(KeyUsageType::SignVerify)
            .key_spec(spec)
            .description(format!(
                "jwtkit signing key of the store alias/{name} ({alg}); its jwtkit:* tags and alias/{name}* aliases are managed by jwtkit"
            ))
            .tags(make_tag(TAG_STORE, name)?)
            .tags(make_tag(TAG_ALG, alg.as_str())?)
            .tags(make_tag(TAG_CREATED, &now.to_string())?)
            .tags(make_tag(TAG_POLICY, &encode_policy(policy))?);
        if activated {
            req = req.tags(make_tag(TAG_ACTIVATED, &now.to_string())?);
        }
        let out = req
            .send()
            .await
            .map_err(|e| sdk("CreateKey", &format!("a new key for alias/{name}"), e))?;
        let meta = out
            .key_metadata()
            .ok_or_else(|| invalid("CreateKey", name, "no KeyMetadata in the answer"))?;
        let key_id = meta.key_id().to_owned();
        self.create_alias(&alias(name, &format!("key/{key_id}")), &key_id)
            .await?;
        // Fetch the public key now: the key is published from its first listing.
        self.public_key(&key_id, alg).await?;
        Ok(key_id)
    }

    async fn schedule_deletion(&self, key_id: &str) -> Result<()> {
        self.client()
            .await?
            .schedule_key_deletion()
            .key_id(key_id)
            .pending_window_in_days(self.settings.deletion_window_days)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk("ScheduleKeyDeletion", key_id, e))
    }

    /// Retires the keys whose grace has ended; returns their kids.
    async fn retire_due(&self, snap: &Snapshot, now: i64) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for m in &snap.members {
            if m.record.state == KeyState::Retiring && m.record.state_at(now) == KeyState::Retired {
                self.tag(&m.key_id, &[(TAG_RETIRED, now.to_string())])
                    .await?;
                self.schedule_deletion(&m.key_id).await?;
                tracing::info!(store = %self.location(), kid = %m.key_id, window_days = self.settings.deletion_window_days,
                    "key retired; its deletion is scheduled");
                out.push(m.key_id.clone());
            }
        }
        Ok(out)
    }

    fn read_only(&self, operation: &'static str) -> Error {
        Error::ReadOnly {
            backend: BACKEND,
            operation,
            hint: "this store is one fixed KMS key; for rotation open the store by alias (kms:alias/NAME) and run `store init`",
        }
    }

    async fn rotate_locked(
        &self,
        name: &str,
        now: i64,
        if_active: Option<&str>,
    ) -> Result<RotationReport> {
        let mut waited = false;
        loop {
            self.invalidate();
            let snap = self.snapshot(false).await?;
            let (Some(active), Some(pending)) = (snap.active.clone(), snap.pending.clone()) else {
                return Err(self.not_initialized());
            };
            if let Some(expected) = if_active {
                if expected != active {
                    return Err(Error::Conflict {
                        expected: expected.to_owned(),
                        actual: active,
                    });
                }
            }
            let claim = alias(name, &format!("rotated/{active}"));
            match self.create_alias(&claim, &pending).await {
                Ok(()) => {}
                Err(Error::Conflict { .. }) if if_active.is_some() => {
                    self.invalidate();
                    let actual = self
                        .snapshot(false)
                        .await?
                        .active
                        .clone()
                        .unwrap_or_default();
                    return Err(Error::Conflict {
                        expected: active,
                        actual,
                    });
                }
                Err(Error::Conflict { .. }) if !waited => {
                    // Another process is rotating away from the same key:
                    // let it finish, then rotate its result.
                    waited = true;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(Error::Conflict { .. }) => {
                    return Err(Error::policy(format!(
                        "a rotation away from key {active} was started ({claim} exists) but alias/… still points at it; \
                         if no other process is rotating this store, the rotation was interrupted: delete {claim} and rotate again"
                    )))
                }
                Err(e) => return Err(e),
            }
            let retired = self.retire_due(&snap, now).await?;
            let policy = snap.policy.clone();
            let alg = next_algorithm(&snap, &policy);
            let new_pending = self.create_key(name, alg, &policy, now, false).await?;
            let grace = policy::secs(policy.verify_grace());
            let retire_at = now.saturating_add(grace);
            self.tag(
                &active,
                &[
                    (TAG_RETIRING_AT, now.to_string()),
                    (TAG_RETIRE_AT, retire_at.to_string()),
                ],
            )
            .await?;
            self.tag(&pending, &[(TAG_ACTIVATED, now.to_string())])
                .await?;
            // The commit point: from here the new key signs.
            self.update_alias(&alias(name, ""), &pending).await?;
            self.update_alias(&alias(name, "pending"), &new_pending)
                .await?;
            self.invalidate();
            let published_for = snap
                .member(&pending)
                .and_then(|m| m.record.created_at)
                .map(|c| now - c);
            let report = RotationReport {
                previous: Some(active),
                active: pending,
                pending: new_pending,
                previous_retire_at: Some(retire_at),
                retired,
                published_for_secs: published_for,
            };
            if published_for.unwrap_or(0) < policy::secs(policy.prepublish()) {
                tracing::warn!(store = %self.location(), active = %report.active,
                    "the new signing key was published for less than the policy's prepublish time; verifiers with a cached JWKS may not know it yet");
            }
            crate::memory::log_rotation(BACKEND, &report);
            return Ok(report);
        }
    }
}

/// `alias/NAME` (empty `suffix`) or `alias/NAME/SUFFIX`.
fn alias(name: &str, suffix: &str) -> String {
    if suffix.is_empty() {
        format!("alias/{name}")
    } else {
        format!("alias/{name}/{suffix}")
    }
}

fn next_algorithm(snap: &Snapshot, policy: &RotationPolicy) -> Algorithm {
    let current = snap
        .active
        .as_deref()
        .and_then(|a| snap.member(a))
        .map(|m| m.record.alg);
    match current {
        Some(a) if policy.allows(a) => a,
        _ => policy
            .allowed_algorithms()
            .iter()
            .copied()
            .find(|a| signature::signing_algorithm(*a).is_some())
            .unwrap_or(Algorithm::ES256),
    }
}

/// The key id at the end of a key ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`),
/// or the input when it is an id already.
fn key_id_of(arn_or_id: &str) -> &str {
    arn_or_id
        .rsplit_once(":key/")
        .map(|(_, id)| id)
        .unwrap_or(arn_or_id)
}

fn make_tag(key: &str, value: &str) -> Result<Tag> {
    Tag::builder()
        .tag_key(key)
        .tag_value(value)
        .build()
        .map_err(|e| Error::Backend {
            backend: BACKEND,
            source: Box::new(e),
            retryable: false,
        })
}

/// The policy as a KMS tag value (≤ 256 characters of the allowed set:
/// letters, digits, spaces and `_ . : / = + - @`).
fn encode_policy(p: &RotationPolicy) -> String {
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

fn decode_policy(s: &str) -> std::result::Result<RotationPolicy, String> {
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

impl KmsKeyStoreBuilder {
    /// The KMS endpoint, e.g. `http://127.0.0.1:5000` for an emulator or a
    /// VPC endpoint (default: `AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`,
    /// else the region's public endpoint).
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.settings.endpoint_url = Some(url.into());
        self
    }

    /// The region (default: `AWS_REGION`, then the profile's).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.settings.region = Some(region.into());
        self
    }

    /// The AWS profile to read credentials and region from (default: `AWS_PROFILE`).
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.settings.profile = Some(profile.into());
        self
    }

    /// Use this client instead of one from the environment (its own
    /// endpoint, region, timeouts and retries apply).
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The bound on every KMS call, retries included (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// Attempts per call, the first included, for throttling and transient
    /// failures, with the SDK's exponential backoff (default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.settings.max_attempts = attempts;
        self
    }

    /// The RSA modulus size of new keys for RS*/PS*: 2048, 3072 or 4096
    /// (default 2048).
    pub fn rsa_key_bits(mut self, bits: u32) -> Self {
        self.settings.rsa_bits = bits;
        self
    }

    /// Days between retiring a key and KMS deleting it, 7–30 (default 30;
    /// `CancelKeyDeletion` undoes a retirement within that window).
    pub fn deletion_window_days(mut self, days: i32) -> Self {
        self.settings.deletion_window_days = days;
        self
    }

    /// How long the state read from KMS (aliases, tags) is reused before it
    /// is read again (default 30 s): the time other processes take to
    /// notice a rotation. Public keys are cached forever regardless.
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.settings.state_ttl = ttl;
        self
    }

    /// For a fixed key only: the algorithm it signs with (default: ES* by
    /// curve, RS256 for RSA). An alias store records its algorithm at `init`.
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        self.settings.algorithm = Some(alg);
        self
    }

    /// The clock that decides when a retiring key stops verifying (default:
    /// the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the settings and builds the store. No KMS call is made until
    /// the store is used.
    pub fn build(self) -> Result<KmsKeyStore> {
        let s = &self.settings;
        let bad = |reason: String| Err(Error::policy(reason));
        let target = if let Some(name) = self.target.strip_prefix("alias/") {
            let valid = !name.is_empty()
                && name.len() <= 200
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid || name.starts_with("aws") {
                return bad(format!(
                    "KMS store alias `{}`: the NAME in alias/NAME must be 1-200 letters, digits, `-` or `_` and must not start with `aws` (the store adds alias/NAME/… aliases of its own)",
                    self.target
                ));
            }
            if s.algorithm.is_some() {
                return bad(
                    "algorithm() is for a fixed key; an alias store records its algorithm at init"
                        .into(),
                );
            }
            Target::Alias(name.to_owned())
        } else if self.target.is_empty() || self.target.contains(char::is_whitespace) {
            return bad(format!(
                "KMS key `{}`: expected alias/NAME, a key id or a key ARN",
                self.target
            ));
        } else {
            Target::Key(self.target.clone())
        };
        if let Some(alg) = s.algorithm {
            if signature::signing_algorithm(alg).is_none() {
                return bad(format!("KMS keys cannot sign {alg}; use RS*, PS* or ES*"));
            }
        }
        if ![2048, 3072, 4096].contains(&s.rsa_bits) {
            return bad(format!(
                "rsa_key_bits {} is not a KMS RSA key spec; use 2048, 3072 or 4096",
                s.rsa_bits
            ));
        }
        if !(7..=30).contains(&s.deletion_window_days) {
            return bad(format!(
                "deletion_window_days {} is outside KMS's 7-30 days",
                s.deletion_window_days
            ));
        }
        if s.timeout.is_zero() || s.max_attempts == 0 {
            return bad("timeout and max_attempts must be above zero".into());
        }
        if self.client.is_some()
            && (s.endpoint_url.is_some() || s.region.is_some() || s.profile.is_some())
        {
            return bad(
                "client() comes with its own endpoint, region and credentials; do not also set endpoint_url, region or profile"
                    .into(),
            );
        }
        Ok(KmsKeyStore {
            target,
            settings: self.settings,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            client: tokio::sync::OnceCell::new(),
            given_client: self.client,
            state: StateCache::new(),
            public_keys: RwLock::new(HashMap::new()),
            write: tokio::sync::Mutex::new(()),
        })
    }
}

#[async_trait]
impl KeyStore for KmsKeyStore {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn active(&self) -> Result<KeyInfo> {
        let snap = self.snapshot(true).await?;
        let kid = snap.active.clone().ok_or_else(|| self.not_initialized())?;
        let m = snap.member(&kid).ok_or_else(|| self.not_initialized())?;
        Ok(KeyInfo {
            kid,
            alg: m.record.alg,
        })
    }

    async fn sign(&self, kid: &str, signing_input: &[u8]) -> Result<Vec<u8>> {
        let snap = self.snapshot(true).await?;
        let member = snap.member(kid).ok_or_else(|| Error::UnknownKey {
            kid: kid.to_owned(),
        })?;
        match member.record.state_at(self.clock.now()) {
            KeyState::Active => {}
            state => {
                return Err(Error::NotActive {
                    kid: kid.to_owned(),
                    state,
                })
            }
        }
        let alg = member.record.alg;
        let public = member.public.as_ref().ok_or_else(|| Error::UnknownKey {
            kid: kid.to_owned(),
        })?;
        let spec = signature::signing_algorithm(alg)
            .ok_or_else(|| Error::policy(format!("KMS keys cannot sign {alg}")))?;
        let (message, message_type) = signature::message(alg, signing_input);
        let out = self
            .client()
            .await?
            .sign()
            .key_id(&public.arn)
            .message(Blob::new(message))
            .message_type(message_type)
            .signing_algorithm(spec)
            .send()
            .await
            .map_err(|e| sdk("Sign", &public.arn, e))?;
        let der = out
            .signature()
            .ok_or_else(|| invalid("Sign", &public.arn, "no Signature in the answer"))?;
        let sig = signature::to_jose(alg, der.as_ref())
            .map_err(|reason| invalid("Sign", &public.arn, reason))?;
        // Never hand out a signature our own verifiers would refuse (a wrong
        // key behind the ARN, a PSS salt length other than the hash length).
        public
            .key
            .verify_raw(alg, signing_input, &sig)
            .map_err(|e| {
                invalid(
                    "Sign",
                    &public.arn,
                    format!("the {alg} signature KMS returned does not verify with the key's public key ({e}); refusing to use it"),
                )
            })?;
        Ok(sig)
    }

    async fn verification_keys(&self) -> Result<Jwks> {
        let now = self.clock.now();
        let snap = self.snapshot(true).await?;
        Ok(Jwks {
            keys: snap
                .members
                .iter()
                .filter(|m| m.record.state_at(now).is_published())
                .filter_map(|m| m.public.as_ref().and_then(|p| p.key.to_jwk_public()))
                .collect(),
        })
    }

    async fn list(&self) -> Result<Vec<KeyRecord>> {
        let now = self.clock.now();
        let snap = self.snapshot(true).await?;
        Ok(snap
            .members
            .iter()
            .map(|m| {
                let mut r = m.record.clone();
                r.state = r.state_at(now);
                r
            })
            .collect())
    }

    async fn policy(&self) -> Result<RotationPolicy> {
        Ok(self.snapshot(true).await?.policy.clone())
    }

    async fn init(
        &self,
        alg: Algorithm,
        policy: &RotationPolicy,
        now: i64,
    ) -> Result<RotationReport> {
        let Target::Alias(name) = &self.target else {
            return Err(self.read_only("init"));
        };
        if signature::signing_algorithm(alg).is_none() {
            return Err(Error::policy(format!(
                "the aws-kms backend signs RS*, PS* and ES*; {alg} is not supported"
            )));
        }
        if !policy.allows(alg) {
            return Err(Error::policy(format!("{alg} is not allowed by the policy")));
        }
        let _w = self.write.lock().await;
        self.invalidate();
        let snap = self.snapshot(false).await?;
        if snap.active.is_some() {
            return Err(Error::AlreadyInitialized {
                backend: BACKEND,
                location: self.location(),
            });
        }
        let active = self.create_key(name, alg, policy, now, true).await?;
        let pending = self.create_key(name, alg, policy, now, false).await?;
        let result = async {
            if snap.pending.is_some() {
                // Left by an init that stopped half-way.
                self.update_alias(&alias(name, "pending"), &pending).await?;
            } else {
                self.create_alias(&alias(name, "pending"), &pending).await?;
            }
            self.create_alias(&alias(name, ""), &active).await
        }
        .await;
        self.invalidate();
        if let Err(e) = result {
            // Another process initialized first: leave no keys behind.
            for key in [&active, &pending] {
                let _ = self.schedule_deletion(key).await;
            }
            return Err(match e {
                Error::Conflict { .. } => Error::AlreadyInitialized {
                    backend: BACKEND,
                    location: self.location(),
                },
                e => e,
            });
        }
        tracing::info!(store = %self.location(), %active, %pending, %alg, "KMS key store initialized");
        Ok(RotationReport {
            previous: None,
            active,
            pending,
            previous_retire_at: None,
            retired: Vec::new(),
            published_for_secs: None,
        })
    }

    async fn rotate(&self, now: i64, if_active: Option<&str>) -> Result<RotationReport> {
        let Target::Alias(name) = &self.target else {
            return Err(self.read_only("rotate"));
        };
        let _w = self.write.lock().await;
        let result = self.rotate_locked(name, now, if_active).await;
        self.invalidate();
        result
    }

    async fn retire_expired(&self, now: i64) -> Result<Vec<String>> {
        if matches!(self.target, Target::Key(_)) {
            return Err(self.read_only("retire_expired"));
        }
        let _w = self.write.lock().await;
        self.invalidate();
        let snap = self.snapshot(false).await?;
        let retired = self.retire_due(&snap, now).await;
        self.invalidate();
        retired
    }
}

/// The `kms:` URI scheme: `kms:alias/NAME`, `kms:KEY-ID` or `kms:KEY-ARN`,
/// configured from the AWS environment.
pub(crate) fn open_uri(rest: &str, uri: &str) -> Result<Arc<dyn KeyStore>> {
    if rest.is_empty() {
        return Err(Error::InvalidUri {
            uri: uri.to_owned(),
            reason: "write kms:alias/NAME (a rotating store), kms:KEY-ID or kms:KEY-ARN".into(),
        });
    }
    match KmsKeyStore::from_env(rest) {
        Ok(store) => Ok(Arc::new(store)),
        Err(Error::Policy { reason }) => Err(Error::InvalidUri {
            uri: uri.to_owned(),
            reason,
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_round_trips_through_a_tag_value() {
        for p in [
            RotationPolicy::default(),
            RotationPolicy::builder()
                .rotate_after(Duration::from_secs(86_400))
                .allowed_algorithms([Algorithm::PS512, Algorithm::ES256, Algorithm::RS384])
                .build()
                .unwrap(),
        ] {
            let tag = encode_policy(&p);
            assert!(tag.len() <= 256, "{tag}");
            assert!(tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c)));
            assert_eq!(decode_policy(&tag).unwrap(), p);
        }
        assert!(decode_policy("rotate=1").is_err());
    }

    #[test]
    fn builder_refuses_contradictions() {
        let err = |b: KmsKeyStoreBuilder| b.build().unwrap_err().to_string();
        assert!(err(KmsKeyStore::builder("alias/a b")).contains("letters, digits"));
        assert!(err(KmsKeyStore::builder("alias/aws-x")).contains("aws"));
        assert!(
            err(KmsKeyStore::builder("alias/x").algorithm(Algorithm::ES256)).contains("fixed key")
        );
        assert!(err(KmsKeyStore::builder("k").algorithm(Algorithm::EdDSA)).contains("EdDSA"));
        assert!(err(KmsKeyStore::builder("alias/x").rsa_key_bits(1024)).contains("1024"));
        assert!(err(KmsKeyStore::builder("alias/x").deletion_window_days(3)).contains("7-30"));
        assert!(
            KmsKeyStore::builder("arn:aws:kms:us-east-1:111122223333:key/abc")
                .build()
                .is_ok()
        );
        assert_eq!(
            key_id_of("arn:aws:kms:us-east-1:111122223333:key/1234abcd"),
            "1234abcd"
        );
    }
}
