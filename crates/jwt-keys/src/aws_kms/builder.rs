//! Building a [`KmsKeyStore`]: its settings, from code or the AWS
//! environment, all checked in [`build`](KmsKeyStoreBuilder::build), and the
//! SDK client made from them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::Client;
use jwt_core::{Algorithm, Clock, SystemClock};

use super::{signature, KmsKeyStore, Target};
use crate::error::{Error, Result};
use crate::remote_store::RemoteParts;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) endpoint_url: Option<String>,
    pub(super) region: Option<String>,
    pub(super) profile: Option<String>,
    pub(super) timeout: Duration,
    pub(super) max_attempts: u32,
    pub(super) rsa_bits: u32,
    pub(super) deletion_window_days: i32,
    pub(super) state_ttl: Duration,
    pub(super) algorithm: Option<Algorithm>,
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

    pub(super) async fn client(&self) -> Result<&Client> {
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
        let bad =
            |setting: &'static str, reason: String| Err(Error::invalid_config(setting, reason));
        let target = if let Some(name) = self.target.strip_prefix("alias/") {
            let valid = !name.is_empty()
                && name.len() <= 200
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid || name.starts_with("aws") {
                return bad(
                    "target",
                    format!(
                    "KMS store alias `{}`: the NAME in alias/NAME must be 1-200 letters, digits, `-` or `_` and must not start with `aws` (the store adds alias/NAME/… aliases of its own)",
                    self.target
                ));
            }
            if s.algorithm.is_some() {
                return bad(
                    "algorithm",
                    "algorithm() is for a fixed key; an alias store records its algorithm at init"
                        .into(),
                );
            }
            Target::Alias(name.to_owned())
        } else if self.target.is_empty() || self.target.contains(char::is_whitespace) {
            return bad(
                "target",
                format!(
                    "KMS key `{}`: expected alias/NAME, a key id or a key ARN",
                    self.target
                ),
            );
        } else {
            Target::Key(self.target.clone())
        };
        if let Some(alg) = s.algorithm {
            if signature::signing_algorithm(alg).is_none() {
                return bad(
                    "algorithm",
                    format!("KMS keys cannot sign {alg}; use RS*, PS* or ES*"),
                );
            }
        }
        if ![2048, 3072, 4096].contains(&s.rsa_bits) {
            return bad(
                "rsa_key_bits",
                format!(
                    "rsa_key_bits {} is not a KMS RSA key spec; use 2048, 3072 or 4096",
                    s.rsa_bits
                ),
            );
        }
        if !(7..=30).contains(&s.deletion_window_days) {
            return bad(
                "deletion_window_days",
                format!(
                    "deletion_window_days {} is outside KMS's 7-30 days",
                    s.deletion_window_days
                ),
            );
        }
        if s.timeout.is_zero() || s.max_attempts == 0 {
            let setting = if s.timeout.is_zero() {
                "timeout"
            } else {
                "max_attempts"
            };
            return bad(
                setting,
                "timeout and max_attempts must be above zero".into(),
            );
        }
        if self.client.is_some()
            && (s.endpoint_url.is_some() || s.region.is_some() || s.profile.is_some())
        {
            return bad(
                "client",
                "client() comes with its own endpoint, region and credentials; do not also set endpoint_url, region or profile"
                    .into(),
            );
        }
        // One clock for the lifecycle and the state cache's TTL.
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let state_ttl = self.settings.state_ttl;
        Ok(KmsKeyStore {
            target,
            settings: self.settings,
            client: tokio::sync::OnceCell::new(),
            given_client: self.client,
            parts: RemoteParts::new(clock, state_ttl),
            public_keys: RwLock::new(HashMap::new()),
        })
    }
}
