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
//! store.init(Algorithm::ES256, &RotationPolicy::default()).await?;
//! let token = store.sign_token(&serde_json::json!({"sub": "alice"}), None).await?;
//! # Ok(()) }
//! ```
//!
//! The IAM policy, the rotation runbook, costs and rate limits are in
//! `docs/backends/kms.md`.

mod builder;
mod error;
mod signature;
mod state;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyUsageType, Tag};
use aws_sdk_kms::Client;
use jwt_core::time::UnixTime;
use jwt_core::{Algorithm, Clock};

pub use self::builder::KmsKeyStoreBuilder;
use self::builder::Settings;
pub use self::error::KmsError;
use self::error::{invalid, sdk, BACKEND};
use self::state::{encode_policy, PublicKey, Snapshot};
use crate::error::{Error, Result};
use crate::lifecycle::{init_report, Ledger};
use crate::policy::RotationPolicy;
use crate::remote_store::{RemoteBackend, RemoteParts};
use crate::store::{KeyRecord, KeyState, KeyStore, RotationReport};

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
pub(crate) enum Target {
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
    client: tokio::sync::OnceCell<Client>,
    given_client: Option<Client>,
    /// Clock, cached state and write lock, as every remote store has them.
    parts: RemoteParts<Snapshot>,
    /// Public keys by key id: fetched once, kept forever.
    public_keys: RwLock<HashMap<String, Arc<PublicKey>>>,
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

impl KmsKeyStore {
    fn not_initialized(&self) -> Error {
        Error::NotInitialized {
            backend: BACKEND,
            location: self.location(),
        }
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
    async fn new_key(
        &self,
        name: &str,
        alg: Algorithm,
        policy: &RotationPolicy,
        now: i64,
        activated: bool,
    ) -> Result<String> {
        let spec = signature::key_spec(alg, self.settings.rsa_bits).ok_or_else(|| {
            Error::invalid_config(
                "algorithm",
                format!(
                "KMS keys sign RS*, PS* and ES* here; {alg} is not supported by the aws-kms backend"
            ),
            )
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

    /// Writes what a lifecycle transition changed, from `before` to
    /// `after` (the same [`Ledger`] transitions every backend runs), as
    /// KMS tags and aliases: a key that started retiring gets its
    /// `retiring-at`/`retire-at` tags, the key that became active its
    /// `activated` tag, a retired key its `retired` tag and a scheduled
    /// deletion. The aliases move last: the `alias/NAME` update is the
    /// commit point, from which the new key signs. New keys were tagged when
    /// created.
    async fn write_changes(
        &self,
        name: &str,
        before: &Ledger,
        after: &Ledger,
        now: UnixTime,
    ) -> Result<()> {
        for r in &after.keys {
            let Some(old) = before.get(&r.kid) else {
                continue;
            };
            if old.state == r.state {
                continue;
            }
            let time = |t: Option<UnixTime>| t.unwrap_or(now).to_string();
            match r.state {
                KeyState::Retired => {
                    self.tag(&r.kid, &[(TAG_RETIRED, now.to_string())]).await?;
                    self.schedule_deletion(&r.kid).await?;
                    tracing::info!(store = %self.location(), kid = %r.kid, window_days = self.settings.deletion_window_days,
                        "key retired; its deletion is scheduled");
                }
                KeyState::Retiring => {
                    self.tag(
                        &r.kid,
                        &[
                            (TAG_RETIRING_AT, time(r.retiring_at)),
                            (TAG_RETIRE_AT, time(r.retire_at)),
                        ],
                    )
                    .await?;
                }
                KeyState::Active => {
                    self.tag(&r.kid, &[(TAG_ACTIVATED, time(r.activated_at))])
                        .await?;
                }
                KeyState::Pending => {}
            }
        }
        let kid = |l: &Ledger, state: KeyState| {
            l.keys
                .iter()
                .find(|r| r.state == state)
                .map(|r| r.kid.clone())
        };
        if let Some(active) = kid(after, KeyState::Active)
            .filter(|a| kid(before, KeyState::Active).as_ref() != Some(a))
        {
            self.update_alias(&alias(name, ""), &active).await?;
        }
        if let Some(pending) = kid(after, KeyState::Pending)
            .filter(|p| kid(before, KeyState::Pending).as_ref() != Some(p))
        {
            self.update_alias(&alias(name, "pending"), &pending).await?;
        }
        Ok(())
    }

    fn read_only(&self, operation: &'static str) -> Error {
        Error::ReadOnly {
            backend: BACKEND,
            operation,
            hint: "this store is one fixed KMS key; for rotation open the store by alias (kms:alias/NAME) and run `store init`",
        }
    }
}

#[async_trait]
impl RemoteBackend for KmsKeyStore {
    type Snapshot = Snapshot;
    const NAME: &'static str = BACKEND;
    const SERVICE: &'static str = "KMS";

    fn parts(&self) -> &RemoteParts<Snapshot> {
        &self.parts
    }

    fn location(&self) -> String {
        match &self.target {
            Target::Alias(name) => format!("kms:alias/{name}"),
            Target::Key(key) => format!("kms:{key}"),
        }
    }

    fn supports(&self, alg: Algorithm) -> bool {
        signature::signing_algorithm(alg).is_some()
    }

    fn check_writable(&self, operation: &'static str) -> Result<()> {
        match self.target {
            Target::Alias(_) => Ok(()),
            Target::Key(_) => Err(self.read_only(operation)),
        }
    }

    fn check_init(&self, alg: Algorithm, policy: &RotationPolicy) -> Result<()> {
        if !self.supports(alg) {
            return Err(Error::invalid_config(
                "algorithm",
                format!("the aws-kms backend signs RS*, PS* and ES*; {alg} is not supported"),
            ));
        }
        if !policy.allows(alg) {
            return Err(Error::policy_violation(format!(
                "{alg} is not allowed by the policy"
            )));
        }
        Ok(())
    }

    async fn load(&self, previous: Option<Arc<Snapshot>>) -> Result<Snapshot> {
        self.read_state(previous).await
    }

    async fn sign_remote(
        &self,
        snap: &Snapshot,
        key: &KeyRecord,
        signing_input: &[u8],
    ) -> Result<Vec<u8>> {
        let alg = key.alg;
        let public = snap.public.get(&key.kid).ok_or_else(|| Error::UnknownKey {
            kid: key.kid.clone(),
        })?;
        let spec = signature::signing_algorithm(alg).ok_or_else(|| {
            // The record names an algorithm this backend never creates keys for.
            Error::corrupt_state(format!("KMS keys cannot sign {alg}"))
        })?;
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
        signature::to_jose(alg, der.as_ref()).map_err(|reason| invalid("Sign", &public.arn, reason))
    }

    fn refuse_signature(&self, key: &KeyRecord, reason: jwt_core::Error) -> Error {
        invalid(
            "Sign",
            &key.kid,
            format!(
                "the {} signature KMS returned does not verify with the key's public key ({reason}); refusing to use it",
                key.alg
            ),
        )
    }

    async fn init_remote(
        &self,
        snap: &Snapshot,
        alg: Algorithm,
        policy: &RotationPolicy,
        now: UnixTime,
    ) -> Result<RotationReport> {
        let Target::Alias(name) = &self.target else {
            return Err(self.read_only("init"));
        };
        if snap.active.is_some() {
            return Err(Error::AlreadyInitialized {
                backend: BACKEND,
                location: self.location(),
            });
        }
        let active = self.new_key(name, alg, policy, now, true).await?;
        let pending = self.new_key(name, alg, policy, now, false).await?;
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
        Ok(init_report(active, pending))
    }

    /// Claims the rotation away from the active key with the alias
    /// `alias/NAME/rotated/ACTIVE` (created once: the compare-and-swap that
    /// makes concurrent rotations rotate once), then creates the key.
    async fn create_key(
        &self,
        snap: &Snapshot,
        alg: Algorithm,
        now: UnixTime,
        attempt: usize,
    ) -> Result<Option<String>> {
        let Target::Alias(name) = &self.target else {
            return Err(self.read_only("rotate"));
        };
        let (Some(active), Some(pending)) = (&snap.active, &snap.pending) else {
            return Err(self.not_initialized());
        };
        let claim = alias(name, &format!("rotated/{active}"));
        match self.create_alias(&claim, pending).await {
            Ok(()) => {}
            Err(Error::Conflict { .. }) if attempt == 0 => {
                // Another process is rotating away from the same key: let
                // it finish, then look again.
                tokio::time::sleep(Duration::from_millis(500)).await;
                return Ok(None);
            }
            Err(Error::Conflict { .. }) => {
                return Err(Error::corrupt_state(format!(
                    "a rotation away from key {active} was started ({claim} exists) but alias/… still points at it; \
                     if no other process is rotating this store, the rotation was interrupted: delete {claim} and rotate again"
                )))
            }
            Err(e) => return Err(e),
        }
        let key = self
            .new_key(name, alg, &snap.ledger.policy, now, false)
            .await?;
        Ok(Some(key))
    }

    async fn commit(
        &self,
        _: &Snapshot,
        before: &Ledger,
        after: &Ledger,
        now: UnixTime,
    ) -> Result<bool> {
        let Target::Alias(name) = &self.target else {
            return Err(self.read_only("rotate"));
        };
        // The claim alias (rotations) or the write lock (retirements)
        // already made this process the only writer: tags are not a CAS.
        self.write_changes(name, before, after, now).await?;
        Ok(true)
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

/// The `kms:` URI scheme: `kms:alias/NAME`, `kms:KEY-ID` or `kms:KEY-ARN`,
/// configured from the AWS environment.
pub(crate) fn open_uri(rest: &str, uri: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn KeyStore>> {
    if rest.is_empty() {
        return Err(Error::invalid_uri(
            uri,
            "write kms:alias/NAME (a rotating store), kms:KEY-ID or kms:KEY-ARN",
        ));
    }
    match KmsKeyStore::builder(rest).clock(clock).build() {
        Ok(store) => Ok(Arc::new(store)),
        Err(Error::InvalidConfig { reason, .. }) => Err(Error::invalid_uri(uri, reason)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::state::decode_policy;
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
