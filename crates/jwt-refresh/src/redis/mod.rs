//! Redis and Redis Cluster backend.
//!
//! Layout (prefix `P`, family `F`, all keys of a family share the hash tag `{F}`, so each
//! script touches one Cluster slot):
//!
//! | key | type | content |
//! |---|---|---|
//! | `P{F}` | hash | `sub`, `cap` (absolute expiry), `rev` (`0`/`1`), `lexp` (latest token expiry) |
//! | `P{F}:t:<token part>` | hash | `iat`, `exp`, `ttl`, `gen`, `st` (`a`ctive/`c`onsumed/`r`evoked), `nx` (successor), `cat` (consumed at), `md` |
//! | `P{s:<base64url subject>}:families` | sorted set | family id → family's absolute expiry |
//!
//! Every key has a TTL: tokens until their expiry, families until their last token's, the
//! subject index until its longest-lived family's absolute expiry.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{ErrorKind, FromRedisValue, RedisError, Script, ScriptInvocation};

use jwt_core::time::secs;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::id::{FamilyId, TokenId};
use crate::policy::{RefreshPolicy, RefreshPolicyBuilder};
use crate::record::{
    NewRefresh, RefreshRecord, RefreshStatus, RotateOutcome, SessionInfo, TokenState,
};
use crate::store::RefreshStore;

const BACKEND: &str = "redis";
/// Default key prefix.
const DEFAULT_PREFIX: &str = "jwtkit:refresh:";
const MAX_PREFIX_LEN: usize = 128;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(include_str!("prelude.lua"), include_str!($file)))
    };
}

struct Scripts {
    issue: Script,
    rotate: Script,
    lookup: Script,
    revoke_token: Script,
    revoke_family: Script,
    index_family: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            issue: script!("issue.lua"),
            rotate: script!("rotate.lua"),
            lookup: script!("lookup.lua"),
            revoke_token: script!("revoke_token.lua"),
            revoke_family: script!("revoke_family.lua"),
            index_family: script!("index_family.lua"),
        }
    }

    fn all(&self) -> [&Script; 6] {
        [
            &self.issue,
            &self.rotate,
            &self.lookup,
            &self.revoke_token,
            &self.revoke_family,
            &self.index_family,
        ]
    }
}

#[derive(Clone)]
enum Connection {
    /// Reconnects by itself after the server comes back.
    Standalone(ConnectionManager),
    /// Follows slot moves and reconnects to nodes by itself.
    Cluster(ClusterConnection),
}

/// A [`RefreshStore`] on Redis or Redis Cluster (feature `redis`).
///
/// Every rotation is one Lua script — check, consume, insert the successor, update the family
/// — executed atomically on the server in one round trip (`EVALSHA`, loaded on connect and
/// reloaded if the server forgot it), so concurrent rotations of a token can never both win.
/// Expiry decisions use the store's [`Clock`], passed to the script as an argument; keys also
/// get TTLs so storage never grows without bound.
///
/// Connection loss and timeouts surface as [`Error::Unavailable`] / [`Error::Timeout`]
/// (`is_retryable() == true`, map to 503), never as a success; the connection reconnects on
/// its own once the server is back.
///
/// Revocations and consumed tokens survive a Redis restart only with persistence (AOF):
/// see `docs/refresh-tokens.md`.
///
/// ```no_run
/// use std::time::Duration;
/// use jwt_refresh::{NewRefresh, RedisRefreshStore, RefreshStore};
///
/// # #[tokio::main] async fn main() -> Result<(), jwt_refresh::Error> {
/// let store = RedisRefreshStore::builder()
///     .url("redis://127.0.0.1:6379/")
///     .key_prefix("myapp:refresh:")
///     .reuse_grace(Duration::from_secs(5))
///     .connect()
///     .await?;
/// let token = store.issue(NewRefresh::login("user-42")).await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRefreshStore {
    connection: Connection,
    scripts: Arc<Scripts>,
    prefix: String,
    policy: RefreshPolicy,
    clock: Arc<dyn Clock>,
    endpoint: String,
    operation_timeout: Duration,
}

impl fmt::Debug for RedisRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.connection {
            Connection::Standalone(_) => "standalone",
            Connection::Cluster(_) => "cluster",
        };
        // Endpoint is host:port only: URLs may carry passwords.
        f.debug_struct("RedisRefreshStore")
            .field("mode", &mode)
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("policy", &self.policy)
            .field("clock", &self.clock)
            .field("operation_timeout", &self.operation_timeout)
            .finish()
    }
}

/// Configures and connects a [`RedisRefreshStore`]; refuses contradictory settings.
pub struct RedisRefreshStoreBuilder {
    url: Option<String>,
    cluster_nodes: Option<Vec<String>>,
    prefix: String,
    policy: Option<RefreshPolicy>,
    policy_builder: RefreshPolicyBuilder,
    policy_parts_set: bool,
    clock: Arc<dyn Clock>,
    response_timeout: Duration,
    operation_timeout: Duration,
}

impl fmt::Debug for RedisRefreshStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may carry credentials: say only whether one is set.
        f.debug_struct("RedisRefreshStoreBuilder")
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("cluster_nodes", &self.cluster_nodes.as_ref().map(Vec::len))
            .field("prefix", &self.prefix)
            .field("response_timeout", &self.response_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisRefreshStoreBuilder {
    /// A standalone Redis (or a managed endpoint that proxies a cluster), e.g.
    /// `redis://:password@host:6379/0`. Exclusive with [`cluster_nodes`](Self::cluster_nodes).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Seed nodes of a Redis Cluster, e.g. `["redis://10.0.0.1:6379", …]`. Exclusive with
    /// [`url`](Self::url).
    pub fn cluster_nodes<I, S>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cluster_nodes = Some(nodes.into_iter().map(Into::into).collect());
        self
    }

    /// Prefix of every key (default `jwtkit:refresh:`); no `{` or `}` (they would break the
    /// Cluster hash tags), at most 128 bytes.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The whole policy. Exclusive with [`ttl`](Self::ttl), [`reuse_grace`](Self::reuse_grace)
    /// and [`max_family_lifetime`](Self::max_family_lifetime).
    pub fn policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// See [`RefreshPolicyBuilder::ttl`].
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.policy_builder = self.policy_builder.ttl(ttl);
        self.policy_parts_set = true;
        self
    }

    /// See [`RefreshPolicyBuilder::reuse_grace`] (at most 60 s).
    pub fn reuse_grace(mut self, grace: Duration) -> Self {
        self.policy_builder = self.policy_builder.reuse_grace(grace);
        self.policy_parts_set = true;
        self
    }

    /// See [`RefreshPolicyBuilder::max_family_lifetime`].
    pub fn max_family_lifetime(mut self, lifetime: Duration) -> Self {
        self.policy_builder = self.policy_builder.max_family_lifetime(lifetime);
        self.policy_parts_set = true;
        self
    }

    /// The clock for expiry decisions (default: [`SystemClock`]). Key TTLs run on the
    /// server's real time, so a test clock should start at the current time
    /// ([`ManualClock::starting_now`](crate::ManualClock::starting_now)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long to wait for one reply or one connection attempt (default 2 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Upper bound for a whole operation including reconnection attempts (default 5 s); at
    /// least the response timeout.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Checks the settings, connects, and loads the scripts.
    pub async fn connect(self) -> Result<RedisRefreshStore> {
        let policy =
            match (self.policy, self.policy_parts_set) {
                (Some(_), true) => return Err(Error::invalid_config(
                    "policy",
                    "set either policy() or ttl()/reuse_grace()/max_family_lifetime(), not both",
                )),
                (Some(policy), false) => policy,
                (None, _) => self.policy_builder.build()?,
            };
        if self.prefix.contains(['{', '}']) || self.prefix.len() > MAX_PREFIX_LEN {
            return Err(Error::invalid_config(
                "key_prefix",
                format!("must be at most {MAX_PREFIX_LEN} bytes without `{{` or `}}` (they would break Cluster hash tags)"),
            ));
        }
        if self.response_timeout.is_zero() || self.operation_timeout < self.response_timeout {
            return Err(Error::invalid_config(
                "operation_timeout",
                format!(
                    "response timeout ({:?}) must be non-zero and at most the operation timeout ({:?})",
                    self.response_timeout, self.operation_timeout
                ),
            ));
        }
        let invalid_url = |e: RedisError| Error::invalid_config("url", e.to_string());
        let tls = self
            .url
            .iter()
            .chain(self.cluster_nodes.iter().flatten())
            .any(|u| {
                u.get(..9)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
            });
        if tls {
            // The redis client builds its rustls configuration on the
            // process's default crypto provider, and this binary links two
            // (aws-lc-rs, and ring through other crates), so none is chosen
            // by default and rustls would panic. Choose aws-lc-rs, jwtkit's
            // crypto, unless the application already installed one.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let (endpoint, connect) = match (self.url, self.cluster_nodes) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_config(
                    "url",
                    "set either url() (standalone) or cluster_nodes(), not both",
                ))
            }
            (None, None) => {
                return Err(Error::invalid_config(
                    "url",
                    "no Redis given: set url() or cluster_nodes()",
                ))
            }
            (None, Some(nodes)) if nodes.is_empty() => {
                return Err(Error::invalid_config(
                    "cluster_nodes",
                    "at least one seed node is needed",
                ))
            }
            (Some(url), None) => {
                let client = redis::Client::open(url).map_err(invalid_url)?;
                let endpoint = client.get_connection_info().addr.to_string();
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(self.response_timeout)
                    .set_connection_timeout(self.response_timeout)
                    .set_number_of_retries(2)
                    .set_max_delay(500);
                let fut = async move {
                    ConnectionManager::new_with_config(client, config)
                        .await
                        .map(Connection::Standalone)
                };
                (endpoint, Box::pin(fut) as BoxConnect)
            }
            (None, Some(nodes)) => {
                let mut endpoints = Vec::with_capacity(nodes.len());
                for node in &nodes {
                    let info = redis::IntoConnectionInfo::into_connection_info(node.as_str())
                        .map_err(|e| Error::invalid_config("cluster_nodes", e.to_string()))?;
                    endpoints.push(info.addr.to_string());
                }
                let client = ClusterClientBuilder::new(nodes)
                    .response_timeout(self.response_timeout)
                    .connection_timeout(self.response_timeout)
                    .retries(3)
                    .max_retry_wait(500)
                    .build()
                    .map_err(|e| Error::invalid_config("cluster_nodes", e.to_string()))?;
                let fut =
                    async move { client.get_async_connection().await.map(Connection::Cluster) };
                (endpoints.join(","), Box::pin(fut) as BoxConnect)
            }
        };
        let connection = match tokio::time::timeout(self.operation_timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(map_error(&endpoint, e)),
            Err(_) => {
                return Err(Error::Timeout {
                    backend: BACKEND,
                    endpoint,
                    after: self.operation_timeout,
                })
            }
        };
        let store = RedisRefreshStore {
            connection,
            scripts: Arc::new(Scripts::new()),
            prefix: self.prefix,
            policy,
            clock: self.clock,
            endpoint,
            operation_timeout: self.operation_timeout,
        };
        // Load the scripts now: surfaces ACL/EVAL problems at startup, not at the first login.
        for script in store.scripts.all() {
            let mut connection = store.connection.clone();
            store
                .bounded(async move {
                    match &mut connection {
                        Connection::Standalone(c) => script.load_async(c).await,
                        Connection::Cluster(c) => script.load_async(c).await,
                    }
                })
                .await?;
        }
        tracing::debug!(endpoint = %store.endpoint, prefix = %store.prefix, "connected refresh-token store to redis");
        Ok(store)
    }
}

type BoxConnect =
    std::pin::Pin<Box<dyn std::future::Future<Output = redis::RedisResult<Connection>> + Send>>;

/// Connection loss, failover and loading are retryable; the rest is a configuration problem.
fn map_error(endpoint: &str, e: RedisError) -> Error {
    let retryable = match e.kind() {
        ErrorKind::AuthenticationFailed => false,
        ErrorKind::ReadOnly => true, // writing to a replica during failover
        _ => !matches!(e.retry_method(), redis::RetryMethod::NoRetry),
    };
    if retryable {
        let effect = if e.is_connection_refusal() {
            "the operation was not applied"
        } else {
            "the operation may or may not have been applied; treat the token as not refreshed"
        };
        Error::Unavailable {
            backend: BACKEND,
            endpoint: endpoint.to_owned(),
            effect,
            source: Box::new(e),
        }
    } else {
        Error::Backend {
            backend: BACKEND,
            endpoint: endpoint.to_owned(),
            source: Box::new(e),
        }
    }
}

/// How many of a subject's families [`RedisRefreshStore`] reads at once
/// when listing its sessions.
const SESSION_READS_IN_FLIGHT: usize = 32;

fn unexpected(detail: impl Into<String>) -> Error {
    Error::UnexpectedReply {
        backend: BACKEND,
        detail: detail.into(),
    }
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| unexpected(format!("`{s}` is not a number")))
}

fn metadata(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl RedisRefreshStore {
    /// A builder; [`url`](RedisRefreshStoreBuilder::url) or
    /// [`cluster_nodes`](RedisRefreshStoreBuilder::cluster_nodes) is required.
    pub fn builder() -> RedisRefreshStoreBuilder {
        RedisRefreshStoreBuilder {
            url: None,
            cluster_nodes: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            policy: None,
            policy_builder: RefreshPolicy::builder(),
            policy_parts_set: false,
            clock: Arc::new(SystemClock),
            response_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(5),
        }
    }

    /// The policy this store applies.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    fn family_key(&self, family: &FamilyId) -> String {
        format!("{}{{{}}}", self.prefix, family)
    }

    fn token_key(&self, family: &FamilyId, part: &str) -> String {
        format!("{}{{{}}}:t:{}", self.prefix, family, part)
    }

    fn subject_key(&self, subject: &str) -> String {
        format!(
            "{}{{s:{}}}:families",
            self.prefix,
            URL_SAFE_NO_PAD.encode(subject)
        )
    }

    /// Runs `fut` under the operation timeout, mapping errors.
    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.operation_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_error(&self.endpoint, e)),
            Err(_) => Err(Error::Timeout {
                backend: BACKEND,
                endpoint: self.endpoint.clone(),
                after: self.operation_timeout,
            }),
        }
    }

    async fn invoke<T: FromRedisValue + Send>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T> {
        let mut connection = self.connection.clone();
        self.bounded(async move {
            match &mut connection {
                Connection::Standalone(c) => invocation.invoke_async(c).await,
                Connection::Cluster(c) => invocation.invoke_async(c).await,
            }
        })
        .await
    }

    async fn query<T: FromRedisValue + Send>(&self, cmd: &redis::Cmd) -> Result<T> {
        let mut connection = self.connection.clone();
        self.bounded(async move {
            match &mut connection {
                Connection::Standalone(c) => cmd.query_async(c).await,
                Connection::Cluster(c) => cmd.query_async(c).await,
            }
        })
        .await
    }

    /// The family `id` as a live session of `subject`, `None` when it is
    /// gone (expired and evicted, or indexed by a crash before it existed),
    /// revoked, ended or another subject's.
    async fn session_of(
        &self,
        id: FamilyId,
        subject: &str,
        now: i64,
    ) -> Result<Option<SessionInfo>> {
        let fields: Vec<Option<String>> = self
            .query(
                redis::cmd("HMGET")
                    .arg(self.family_key(&id))
                    .arg("sub")
                    .arg("cap")
                    .arg("rev")
                    .arg("lexp")
                    .arg("ct")
                    .arg("lat")
                    .arg("cli"),
            )
            .await?;
        let [Some(sub), Some(cap), Some(rev), Some(lexp), ct, lat, cli] = fields.as_slice() else {
            return Ok(None);
        };
        let (cap, lexp): (i64, i64) = (num(cap)?, num(lexp)?);
        if sub != subject || rev != "0" || now >= cap || now >= lexp {
            return Ok(None);
        }
        // Families from before `ct`/`lat` were recorded: unknown, shown as 0.
        let created_at = ct.as_deref().map(num).transpose()?.unwrap_or(0);
        Ok(Some(SessionInfo {
            family: id,
            created_at,
            last_refreshed_at: lat.as_deref().map(num).transpose()?.unwrap_or(created_at),
            expires_at: lexp.min(cap),
            client: cli.clone(),
        }))
    }

    async fn rotate_once(
        &self,
        jti: &TokenId,
        successor_hint: Option<&str>,
    ) -> Result<Vec<String>> {
        let family = jti.family();
        let next = TokenId::generate(&family)?;
        let mut invocation = self.scripts.rotate.prepare_invoke();
        invocation
            .key(self.family_key(&family))
            .key(self.token_key(&family, jti.token_part()))
            .key(self.token_key(&family, next.token_part()));
        if let Some(hint) = successor_hint {
            invocation.key(self.token_key(&family, hint));
        }
        invocation
            .arg(self.clock.now())
            .arg(self.policy.grace_secs())
            .arg(next.token_part());
        if let Some(hint) = successor_hint {
            invocation.arg(hint);
        }
        self.invoke(&invocation).await
    }
}

/// Builds a record from reply fields `[iat, exp, gen]`.
fn record(
    jti: TokenId,
    subject: &str,
    fields: &[String],
    metadata_field: &str,
) -> Result<RefreshRecord> {
    let [iat, exp, gen] = fields else {
        return Err(unexpected("token fields missing"));
    };
    Ok(RefreshRecord {
        family: jti.family(),
        jti,
        subject: subject.to_owned(),
        issued_at: num(iat)?,
        expires_at: num(exp)?,
        generation: num(gen)?,
        metadata: metadata(metadata_field),
    })
}

#[async_trait]
impl RefreshStore for RedisRefreshStore {
    async fn issue(&self, new: NewRefresh) -> Result<RefreshRecord> {
        new.validate()?;
        let now = self.clock.now();
        let ttl = new.ttl.map_or(self.policy.ttl_secs(), secs);
        let (family, mode, cap) = match &new.family {
            Some(family) => (family.clone(), "join", 0),
            None => {
                let family = FamilyId::generate()?;
                let cap = now.saturating_add(self.policy.family_lifetime_secs());
                // Index the family under its subject *before* it exists: a crash in between
                // leaves a dangling index entry (harmless), never a family that escapes
                // revoke_subject.
                let mut index = self.scripts.index_family.prepare_invoke();
                index
                    .key(self.subject_key(&new.subject))
                    .arg(now)
                    .arg(family.as_str())
                    .arg(cap);
                self.invoke::<i64>(&index).await?;
                (family, "new", cap)
            }
        };
        let jti = TokenId::generate(&family)?;
        let mut invocation = self.scripts.issue.prepare_invoke();
        invocation
            .key(self.family_key(&family))
            .key(self.token_key(&family, jti.token_part()))
            .arg(now)
            .arg(mode)
            .arg(&new.subject)
            .arg(ttl)
            .arg(cap)
            .arg(new.metadata.as_deref().unwrap_or(""))
            .arg(new.client.as_deref().unwrap_or(""));
        let reply: Vec<String> = self.invoke(&invocation).await?;
        match reply.as_slice() {
            [ok, iat, exp] if ok == "ok" => Ok(RefreshRecord {
                family: family.clone(),
                jti,
                subject: new.subject,
                issued_at: num(iat)?,
                expires_at: num(exp)?,
                generation: 0,
                metadata: new.metadata,
            }),
            [err, why] if err == "err" => Err(match why.as_str() {
                "unknown" => Error::UnknownFamily { family },
                "mismatch" => Error::SubjectMismatch { family },
                "revoked" => Error::FamilyRevoked { family },
                "expired" => Error::FamilyExpired { family },
                _ => unexpected(format!("issue refused: {why}")),
            }),
            other => Err(unexpected(format!("issue replied {other:?}"))),
        }
    }

    async fn rotate(&self, jti: &TokenId) -> Result<RotateOutcome> {
        let mut reply = self.rotate_once(jti, None).await?;
        if reply.first().map(String::as_str) == Some("successor") {
            // Grace path: the script needs the successor's key declared. The second call
            // re-checks everything atomically, so nothing can change in between unnoticed.
            let hint = reply
                .get(1)
                .cloned()
                .ok_or_else(|| unexpected("successor reply without id"))?;
            reply = self.rotate_once(jti, Some(&hint)).await?;
        }
        let family = jti.family();
        match reply.as_slice() {
            [o] if o == "unknown" => Ok(RotateOutcome::Unknown),
            [o] if o == "expired" => Ok(RotateOutcome::Expired),
            [o] if o == "revoked" => Ok(RotateOutcome::Revoked),
            [o, newly, subject] if o == "reused" => {
                let revoked = newly == "1";
                if revoked {
                    tracing::warn!(family = %family, "refresh token reuse detected: family revoked");
                }
                Ok(RotateOutcome::Reused {
                    family,
                    subject: subject.clone(),
                    revoked,
                })
            }
            [o, subject, p_iat, p_exp, p_gen, md, next, n_iat, n_exp, n_gen] if o == "rotated" => {
                let next = TokenId::parse(&format!("{family}.{next}"))?;
                Ok(RotateOutcome::Rotated {
                    previous: record(
                        jti.clone(),
                        subject,
                        &[p_iat.clone(), p_exp.clone(), p_gen.clone()],
                        md,
                    )?,
                    new: record(
                        next,
                        subject,
                        &[n_iat.clone(), n_exp.clone(), n_gen.clone()],
                        md,
                    )?,
                    replayed_within_grace: false,
                })
            }
            [o, subject, p_iat, p_exp, p_gen, p_md, next, n_iat, n_exp, n_gen, n_md]
                if o == "replayed" =>
            {
                let next = TokenId::parse(&format!("{family}.{next}"))?;
                Ok(RotateOutcome::Rotated {
                    previous: record(
                        jti.clone(),
                        subject,
                        &[p_iat.clone(), p_exp.clone(), p_gen.clone()],
                        p_md,
                    )?,
                    new: record(
                        next,
                        subject,
                        &[n_iat.clone(), n_exp.clone(), n_gen.clone()],
                        n_md,
                    )?,
                    replayed_within_grace: true,
                })
            }
            other => Err(unexpected(format!("rotate replied {other:?}"))),
        }
    }

    async fn lookup(&self, jti: &TokenId) -> Result<Option<RefreshStatus>> {
        let family = jti.family();
        let mut invocation = self.scripts.lookup.prepare_invoke();
        invocation
            .key(self.family_key(&family))
            .key(self.token_key(&family, jti.token_part()));
        let reply: Vec<String> = self.invoke(&invocation).await?;
        let now = self.clock.now();
        match reply.as_slice() {
            [] => Ok(None),
            [iat, exp, gen, st, nx, cat, md, subject, rev] => {
                let record = record(
                    jti.clone(),
                    subject,
                    &[iat.clone(), exp.clone(), gen.clone()],
                    md,
                )?;
                let state = if now >= record.expires_at {
                    TokenState::Expired
                } else if rev == "1" || st == "r" {
                    TokenState::Revoked
                } else if st == "c" {
                    TokenState::Consumed {
                        successor: TokenId::parse(&format!("{family}.{nx}"))?,
                        consumed_at: num(cat)?,
                    }
                } else {
                    TokenState::Active
                };
                Ok(Some(RefreshStatus { record, state }))
            }
            other => Err(unexpected(format!("lookup replied {other:?}"))),
        }
    }

    async fn revoke_token(&self, jti: &TokenId) -> Result<bool> {
        let mut invocation = self.scripts.revoke_token.prepare_invoke();
        invocation.key(self.token_key(&jti.family(), jti.token_part()));
        Ok(self.invoke::<i64>(&invocation).await? == 1)
    }

    async fn revoke_family(&self, family: &FamilyId) -> Result<bool> {
        let mut invocation = self.scripts.revoke_family.prepare_invoke();
        invocation.key(self.family_key(family));
        Ok(self.invoke::<i64>(&invocation).await? == 1)
    }

    async fn session_active(&self, family: &FamilyId) -> Result<bool> {
        let fields: Vec<Option<String>> = self
            .query(
                redis::cmd("HMGET")
                    .arg(self.family_key(family))
                    .arg("cap")
                    .arg("rev")
                    .arg("lexp"),
            )
            .await?;
        let now = self.clock.now();
        match fields.as_slice() {
            [None, None, None] => Ok(false),
            [Some(cap), Some(rev), Some(lexp)] => {
                Ok(rev == "0" && now < num(cap)? && now < num(lexp)?)
            }
            other => Err(unexpected(format!("the family hash holds {other:?}"))),
        }
    }

    async fn sessions(&self, subject: &str) -> Result<Vec<SessionInfo>> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        // The index lives in its own slot, each family in its own: one read
        // of the index, then one of each family, SESSION_READS_IN_FLIGHT at
        // a time on the multiplexed connection (a family revoked or
        // refreshed meanwhile is read as it is then).
        let now = self.clock.now();
        let families: Vec<String> = self
            .query(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(self.subject_key(subject))
                    .arg(format!("({now}"))
                    .arg("+inf"),
            )
            .await?;
        let ids = families
            .iter()
            .map(|family| {
                FamilyId::parse(family)
                    .map_err(|_| unexpected(format!("subject index holds `{family}`")))
            })
            .collect::<Result<Vec<_>>>()?;
        let read: Vec<Option<SessionInfo>> = stream::iter(ids)
            .map(|id| self.session_of(id, subject, now))
            .buffered(SESSION_READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut out: Vec<SessionInfo> = read.into_iter().flatten().collect();
        out.sort_by(|a, b| {
            (a.created_at, a.family.as_str()).cmp(&(b.created_at, b.family.as_str()))
        });
        Ok(out)
    }

    async fn revoke_subject(&self, subject: &str) -> Result<usize> {
        // The index lives in its own slot; each family is revoked atomically in its slot. An
        // entry is removed from the index only after its family was revoked, so a failure
        // half-way leaves the rest to a retry.
        let key = self.subject_key(subject);
        let now = self.clock.now();
        let families: Vec<String> = self
            .query(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&key)
                    .arg(format!("({now}"))
                    .arg("+inf"),
            )
            .await?;
        let mut revoked = 0;
        for family in families {
            let Ok(id) = FamilyId::parse(&family) else {
                return Err(unexpected(format!("subject index holds `{family}`")));
            };
            if self.revoke_family(&id).await? {
                revoked += 1;
            }
            self.query::<i64>(redis::cmd("ZREM").arg(&key).arg(&family))
                .await?;
        }
        Ok(revoked)
    }
}

/// What [`RedisReplayCache`](crate::replay::RedisReplayCache) shares with
/// the store: its key prefix, its clock, and its connection with the
/// operation timeout and error mapping.
impl RedisRefreshStore {
    /// The key prefix.
    pub(crate) fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The clock expiry decisions use.
    pub(crate) fn store_clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// One command on the store's connection, under its operation timeout.
    pub(crate) async fn run_command<T: FromRedisValue + Send>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T> {
        self.query(cmd).await
    }
}
