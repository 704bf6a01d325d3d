//! The store's Vault token over time.
//!
//! The token comes from the configured [`VaultAuth`]: used as given, or
//! from a login. A background task owned by the store renews it at about
//! two thirds of its TTL and logs in again when it cannot be renewed any
//! more (its max TTL reached, renewal refused, token revoked). A call that
//! Vault denies is checked: when the token itself is dead (`lookup-self` is
//! denied too), the session logs in once and the call is retried once; when
//! the token is alive, the denial is the policy's and is reported as such.
//!
//! Token lifetimes are Vault's wall-clock durations, so they are measured on
//! tokio's monotonic clock, not on the store's [`Clock`](jwt_core::Clock):
//! that one decides key states and may be a test's `ManualClock`, which
//! would freeze or fast-forward token expiry.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::time::Instant;
use vaultrs::error::ClientError;

use super::auth::{read_login_file, Login, LoginFile, LoginFileError, SecretId, VaultAuth};
use super::client::{
    header_safe, invalid_fault, Conn, Failure, Fault, Secret, Transport, VaultError,
};
use crate::error::{Error, Result};

/// Longest wait between two login attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Counters of the store's token lifecycle ([`VaultKeyStore::auth_stats`](super::VaultKeyStore::auth_stats)),
/// for metrics and tests.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VaultAuthStats {
    /// Logins that returned a token (a given token counts once, when first used).
    pub logins: u64,
    /// Successful renewals of the token.
    pub renewals: u64,
    /// Calls denied because the token had just died, that logged in again
    /// and were retried.
    pub retried_calls: u64,
}

/// A token and what Vault said about its lifetime.
struct Lease {
    token: Secret,
    /// `None`: the token does not expire (or its TTL is unknown).
    ttl: Option<Duration>,
    renewable: bool,
}

struct TokenState {
    token: Option<Secret>,
    /// Counts token replacements, so concurrent callers replace a dead
    /// token once.
    generation: u64,
    /// When `ttl` was learnt (login or renewal).
    since: Instant,
    ttl: Option<Duration>,
    renewable: bool,
    /// The TTL at login: a renewal that grants less has hit the max TTL.
    login_ttl: Option<Duration>,
    /// The next refresh must be a login (renewal capped or refused).
    relogin: bool,
    /// Failed refreshes in a row, and when the last one failed.
    failures: u32,
    failed_at: Option<Instant>,
    /// Why the last refresh failed (what health reports without a token).
    last_error: Option<Fault>,
}

impl TokenState {
    fn expires(&self) -> Option<Instant> {
        self.ttl.map(|t| self.since + t)
    }

    fn expired(&self, now: Instant) -> bool {
        self.expires().is_some_and(|e| now >= e)
    }

    /// Good for a call now: there is a token and at least a tenth of its
    /// TTL is left (the background task renews at two thirds; this is the
    /// fallback when it could not run).
    fn fresh(&self, now: Instant) -> bool {
        self.token.is_some() && self.ttl.is_none_or(|t| now + t / 10 < self.since + t)
    }

    /// When the background task should act: two thirds into the TTL.
    fn due(&self) -> Option<Instant> {
        self.ttl.map(|t| self.since + t * 2 / 3)
    }

    fn backoff(&self) -> Duration {
        let shift = self.failures.saturating_sub(1).min(5);
        (Duration::from_secs(1) * (1u32 << shift)).min(MAX_BACKOFF)
    }

    /// While backing off after a failure: until when.
    fn backing_off_until(&self, now: Instant) -> Option<Instant> {
        let until = self.failed_at? + self.backoff();
        (self.failures > 0 && now < until).then_some(until)
    }

    fn current(&self) -> Option<(Secret, u64)> {
        self.token.clone().map(|t| (t, self.generation))
    }
}

/// Why a refresh is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    /// A call needs a token; refresh only if there is none or it is nearly out.
    Use,
    /// The background task's turn: renew (or log in) if due.
    Due,
    /// The token of this generation was found dead.
    Dead(u64),
}

/// The token side of a [`VaultKeyStore`](super::VaultKeyStore).
pub(super) struct Session {
    transport: Transport,
    auth: VaultAuth,
    state: RwLock<TokenState>,
    /// One login or renewal at a time.
    refresh: tokio::sync::Mutex<()>,
    /// The last wrapping token unwrapped, and the secret id it held (a
    /// wrapping token works once).
    unwrapped: Mutex<Option<(Secret, Secret)>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    logins: AtomicU64,
    renewals: AtomicU64,
    retried: AtomicU64,
    /// The JWT file was found readable by others and this was logged (once).
    warned_readable: AtomicBool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.read();
        f.debug_struct("Session")
            .field("transport", &self.transport)
            .field("auth", &self.auth)
            .field("token", &st.token.as_ref().map(|_| "<redacted>"))
            .field("generation", &st.generation)
            .field("ttl", &st.ttl)
            .finish_non_exhaustive()
    }
}

/// The error kept for health reports and handed to every caller while
/// the session backs off: the same error each time.
fn shared(f: &Fault) -> Error {
    f.clone().into()
}

impl Session {
    pub(super) fn new(transport: Transport, auth: VaultAuth) -> Session {
        Session {
            transport,
            auth,
            state: RwLock::new(TokenState {
                token: None,
                generation: 0,
                since: Instant::now(),
                ttl: None,
                renewable: false,
                login_ttl: None,
                relogin: false,
                failures: 0,
                failed_at: None,
                last_error: None,
            }),
            refresh: tokio::sync::Mutex::new(()),
            unwrapped: Mutex::new(None),
            task: Mutex::new(None),
            logins: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            warned_readable: AtomicBool::new(false),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, TokenState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, TokenState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn stats(&self) -> VaultAuthStats {
        VaultAuthStats {
            logins: self.logins.load(Ordering::Relaxed),
            renewals: self.renewals.load(Ordering::Relaxed),
            retried_calls: self.retried.load(Ordering::Relaxed),
        }
    }

    pub(super) fn auth(&self) -> &VaultAuth {
        &self.auth
    }

    /// Whether a new token can be had after this one dies: yes for the
    /// login methods; a given token is taken up once and never replaced.
    fn can_login(&self, generation: u64) -> bool {
        !matches!(self.auth.login(), Login::Token(_)) || generation == 0
    }

    /// One Vault call with the current token: `f` gets a `vaultrs` client.
    /// A denied call whose token turns out dead is retried once with a new
    /// token.
    pub(super) async fn call<T, F, Fut>(
        self: &Arc<Self>,
        operation: &'static str,
        path: &str,
        f: F,
    ) -> Result<T>
    where
        F: Fn(Conn) -> Fut + Send + Sync,
        Fut: Future<Output = std::result::Result<T, ClientError>> + Send,
        T: Send,
    {
        let (token, generation) = self.current().await?;
        let failure = match f(self.transport.conn(Some(&token))).await {
            Ok(v) => return Ok(v),
            Err(e) => Failure::of(e).scrub(token.expose()),
        };
        if !failure.is_denied() {
            return Err(failure.into_error(operation, path, None));
        }
        match self.token_alive(&token).await {
            Ok(false) => {}
            // The token works: the denial is the policy's.
            Ok(true) => {
                let hint = format!(
                    "the Vault token is valid but its policy does not allow this request: grant it on {path} (docs/backends/vault.md lists the policy the store needs; check VAULT_NAMESPACE too)"
                );
                return Err(failure.into_error(operation, path, Some(hint.into())));
            }
            // Cannot tell (Vault unreachable now): the denial as it came.
            Err(_) => return Err(failure.into_error(operation, path, None)),
        }
        tracing::info!(store = %self.transport_address(), %operation, "Vault denied a call because the token is no longer valid; getting a new one");
        let (token, _) = self.refresh(Why::Dead(generation)).await?;
        self.retried.fetch_add(1, Ordering::Relaxed);
        f(self.transport.conn(Some(&token))).await.map_err(|e| {
            Failure::of(e)
                .scrub(token.expose())
                .into_error(operation, path, None)
        })
    }

    fn transport_address(&self) -> &str {
        self.transport.address()
    }

    /// `Ok` while the store holds a valid token or can get one now; the
    /// error says why not (health).
    pub(super) async fn check(self: &Arc<Self>) -> Result<()> {
        self.current().await.map(|_| ())
    }

    /// The token to use now: the one held while it is fresh, else a
    /// renewed or new one.
    async fn current(self: &Arc<Self>) -> Result<(Secret, u64)> {
        {
            let st = self.read();
            if st.fresh(Instant::now()) {
                if let Some(c) = st.current() {
                    return Ok(c);
                }
            }
        }
        self.refresh(Why::Use).await
    }

    /// `true` when Vault still accepts `token` (`lookup-self`), `false`
    /// when it is denied.
    async fn token_alive(&self, token: &Secret) -> Result<bool> {
        match vaultrs::token::lookup_self(&self.transport.conn(Some(token))).await {
            Ok(_) => Ok(true),
            Err(e) => {
                let f = Failure::of(e).scrub(token.expose());
                if f.is_denied() {
                    Ok(false)
                } else {
                    Err(f.into_error("look up token", "auth/token/lookup-self", None))
                }
            }
        }
    }

    /// Renews or replaces the token, one caller at a time; `why` decides
    /// whether there is anything to do once the lock is held.
    async fn refresh(self: &Arc<Self>, why: Why) -> Result<(Secret, u64)> {
        let _one = self.refresh.lock().await;
        let now = Instant::now();
        let (current, generation, renew) = {
            let mut st = self.write();
            match why {
                Why::Dead(g) if g != st.generation => {
                    // Someone replaced it already.
                    if let Some(c) = st.current() {
                        return Ok(c);
                    }
                }
                Why::Dead(_) => {
                    st.token = None;
                    if !self.can_login(st.generation) {
                        let e = self.token_dead_error();
                        st.last_error = Some(e.clone());
                        return Err(e.into());
                    }
                }
                Why::Use if st.fresh(now) => {
                    if let Some(c) = st.current() {
                        return Ok(c);
                    }
                }
                Why::Due if st.due().is_some_and(|d| now < d) && !st.relogin => {
                    if let Some(c) = st.current() {
                        return Ok(c);
                    }
                }
                _ => {}
            }
            let valid = st.token.is_some() && !st.expired(now);
            let current = if valid { st.current() } else { None };
            if st.backing_off_until(now).is_some() && why != Why::Due {
                return match (current, &st.last_error) {
                    (Some(c), _) => Ok(c),
                    (None, Some(e)) => Err(shared(e)),
                    (None, None) => Err(self.token_dead_error().into()),
                };
            }
            let renew = valid && st.renewable && !st.relogin;
            (current, st.generation, renew)
        };

        if renew {
            if let Some((token, gen)) = &current {
                match vaultrs::token::renew_self(&self.transport.conn(Some(token)), None).await {
                    Ok(auth) => {
                        let ttl = Duration::from_secs(auth.lease_duration);
                        let mut st = self.write();
                        if st.generation == *gen {
                            st.since = now;
                            st.ttl = (!ttl.is_zero()).then_some(ttl);
                            st.renewable = auth.renewable;
                            // Less than at login: the max TTL caps it; the
                            // next refresh logs in.
                            st.relogin = ttl.is_zero() || st.login_ttl.is_some_and(|l| ttl < l);
                            st.failures = 0;
                            st.last_error = None;
                        }
                        self.renewals.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(store = %self.transport_address(), ttl_secs = ttl.as_secs(), "Vault token renewed");
                        return Ok((token.clone(), *gen));
                    }
                    Err(e) => {
                        let f = Failure::of(e).scrub(token.expose());
                        let refused = matches!(f.status, Some(400 | 401 | 403));
                        let err = f.into_fault("renew token", "auth/token/renew-self", None);
                        tracing::info!(store = %self.transport_address(), error = %err.error, "Vault token renewal failed");
                        if !refused {
                            // Vault unreachable: keep the token, try again soon.
                            self.failed(err);
                            return Ok((token.clone(), *gen));
                        }
                        self.write().relogin = true;
                    }
                }
            }
        }

        if !self.can_login(generation) {
            // A given token that cannot be renewed: use it while it lasts.
            return current.ok_or_else(|| self.token_dead_error().into());
        }
        match self.login().await {
            Ok(lease) => {
                let mut st = self.write();
                st.generation += 1;
                st.token = Some(lease.token.clone());
                st.since = now;
                st.ttl = lease.ttl;
                st.login_ttl = lease.ttl;
                st.renewable = lease.renewable;
                st.relogin = false;
                st.failures = 0;
                st.failed_at = None;
                st.last_error = None;
                let generation = st.generation;
                drop(st);
                self.logins.fetch_add(1, Ordering::Relaxed);
                tracing::info!(store = %self.transport_address(), method = self.auth.method(),
                    ttl_secs = lease.ttl.map(|t| t.as_secs()), renewable = lease.renewable, "Vault login succeeded");
                self.ensure_task();
                Ok((lease.token, generation))
            }
            Err(e) => {
                tracing::warn!(store = %self.transport_address(), method = self.auth.method(), error = %e.error,
                    retryable = e.retryable, "Vault login failed");
                self.failed(e.clone());
                // The old token may still be good for a while.
                current.ok_or_else(|| e.into())
            }
        }
    }

    fn failed(&self, e: Fault) {
        let mut st = self.write();
        st.failures = st.failures.saturating_add(1);
        st.failed_at = Some(Instant::now());
        st.last_error = Some(e);
        if st.expired(Instant::now()) {
            st.token = None;
        }
    }

    fn token_dead_error(&self) -> Fault {
        let hint = match self.auth.login() {
            Login::Token(_) => "the Vault token (VAULT_TOKEN) is no longer valid: it expired or was revoked (or may not look itself up); give the store a new token, or use a login method (VAULT_AUTH_METHOD=approle, jwt or kubernetes) so the store can log in again by itself",
            _ => "no valid Vault token: the last login failed; the store keeps trying to log in",
        };
        VaultError::new(
            "use token",
            "auth/token/lookup-self",
            Some(403),
            Vec::new(),
            hint,
            None,
        )
        .fault(false)
    }

    /// Starts the renewal task if it is not running (it ends when there is
    /// nothing to renew, when the store is dropped, or with its runtime).
    fn ensure_task(self: &Arc<Self>) {
        let mut task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        // Without a runtime (a blocking caller between calls) the calls
        // renew by themselves when the token runs low.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        *task = Some(runtime.spawn(maintain(Arc::downgrade(self))));
    }

    /// Stops the renewal task (the store is dropped).
    pub(super) fn stop(&self) {
        if let Some(h) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            h.abort();
        }
    }

    /// When the background task should act next; `None`: never.
    fn next_action(&self) -> Option<Instant> {
        let st = self.read();
        let can_login = self.can_login(st.generation);
        if st.token.is_none() {
            return can_login.then(|| st.failed_at.unwrap_or(st.since) + st.backoff());
        }
        let due = st.due()?;
        let can_renew = st.renewable && !st.relogin;
        if !can_renew && !can_login {
            return None;
        }
        Some(match st.failed_at {
            Some(f) if st.failures > 0 => due.max(f + st.backoff()),
            _ => due,
        })
    }

    /// Logs in with the configured method.
    async fn login(&self) -> std::result::Result<Lease, Fault> {
        let mount = self.auth.effective_mount().to_owned();
        let conn = self.transport.conn(None);
        let path = format!("auth/{mount}/login");
        let refused = |e: ClientError, sent: &Secret, hint: String| {
            Failure::of(e)
                .scrub(sent.expose())
                .into_fault("login", &path, Some(hint.into()))
        };
        let info = match self.auth.login() {
            Login::Token(token) => return self.adopt(token).await,
            Login::AppRole { role_id, secret_id } => {
                let secret = self.secret_id(secret_id, &mount).await?;
                vaultrs::auth::approle::login(&conn, &mount, role_id, secret.expose())
                    .await
                    .map_err(|e| refused(e, &secret, format!(
                        "AppRole login refused: the role id (VAULT_ROLE_ID) or the secret id ({}) is not valid; a secret id expires, runs out of uses or is destroyed: issue a new one (vault write -f auth/{mount}/role/ROLE/secret-id) and deliver it; check the mount too (VAULT_AUTH_MOUNT, now `{mount}`)",
                        secret_id.variable()
                    )))?
            }
            Login::Jwt {
                role,
                jwt_file,
                kubernetes,
            } => {
                // Read at each login: its owner rotates it.
                let kind = if kubernetes {
                    LoginFile::Kubernetes
                } else {
                    LoginFile::Jwt
                };
                let read = read_login_file(jwt_file, kind)
                    .await
                    .map_err(|e| file_fault(e, &path))?;
                if read.readable_by_others
                    && kind == LoginFile::Jwt
                    && !self.warned_readable.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(store = %self.transport_address(), file = %jwt_file.display(),
                        "the JWT file (VAULT_JWT_FILE) is readable by other users, who could log in to Vault as this workload until the JWT expires; run `chmod go-r` on it (or `chmod 600`)");
                }
                let jwt = read.secret;
                if jwt.is_empty() {
                    return Err(VaultError::new(
                        "login",
                        &format!("auth/{mount}/login"),
                        None,
                        Vec::new(),
                        format!(
                            "the JWT file {} (VAULT_JWT_FILE) is empty",
                            jwt_file.display()
                        ),
                        None,
                    )
                    .fault(false));
                }
                if kubernetes {
                    vaultrs::auth::kubernetes::login(&conn, &mount, role, jwt.expose())
                        .await
                        .map_err(|e| refused(e, &jwt, format!(
                            "Kubernetes login refused: check the role (VAULT_AUTH_ROLE, now `{role}`), that its bound service-account names and namespaces include this pod's, that the token in {} (VAULT_JWT_FILE) is current, and the mount (VAULT_AUTH_MOUNT, now `{mount}`)",
                            jwt_file.display()
                        )))?
                } else {
                    vaultrs::auth::oidc::login(&conn, &mount, jwt.expose(), Some(role.to_owned()))
                        .await
                        .map_err(|e| refused(e, &jwt, format!(
                            "JWT login refused: check the role (VAULT_AUTH_ROLE, now `{role}`), that the token in {} (VAULT_JWT_FILE) has not expired and matches the role's bound audience and claims, that the jwt method trusts its issuer (jwks_url or jwt_validation_pubkeys), and the mount (VAULT_AUTH_MOUNT, now `{mount}`)",
                            jwt_file.display()
                        )))?
                }
            }
        };
        let token = Secret::new(info.client_token);
        if token.is_empty() || !header_safe(token.expose()) {
            return Err(invalid_fault(
                "login",
                &format!("auth/{mount}/login"),
                "the login answer holds no usable token".into(),
            ));
        }
        Ok(Lease {
            token,
            ttl: (info.lease_duration > 0).then(|| Duration::from_secs(info.lease_duration)),
            renewable: info.renewable,
        })
    }

    /// A given token: its TTL and renewability from `lookup-self`. A token
    /// that may not look itself up is used as is (no renewal).
    async fn adopt(&self, token: &Secret) -> std::result::Result<Lease, Fault> {
        match vaultrs::token::lookup_self(&self.transport.conn(Some(token))).await {
            Ok(info) => Ok(Lease {
                token: token.clone(),
                ttl: (info.ttl > 0).then(|| Duration::from_secs(info.ttl)),
                renewable: info.renewable.unwrap_or(false) && info.ttl > 0,
            }),
            Err(e) => {
                let f = Failure::of(e).scrub(token.expose());
                if f.is_denied() {
                    tracing::debug!(store = %self.transport_address(), "the Vault token may not look itself up; using it without renewal");
                    Ok(Lease {
                        token: token.clone(),
                        ttl: None,
                        renewable: false,
                    })
                } else {
                    Err(f.into_fault("look up token", "auth/token/lookup-self", None))
                }
            }
        }
    }

    /// The AppRole secret id, unwrapped first when response-wrapped.
    async fn secret_id(
        &self,
        secret_id: &SecretId,
        mount: &str,
    ) -> std::result::Result<Secret, Fault> {
        let path = format!("auth/{mount}/login");
        let raw = secret_id.read().await.map_err(|e| file_fault(e, &path))?;
        if raw.is_empty() {
            return Err(VaultError::new(
                "login",
                &path,
                None,
                Vec::new(),
                format!("the secret id ({}) is empty", secret_id.variable()),
                None,
            )
            .fault(false));
        }
        if !secret_id.is_wrapped() {
            return Ok(raw);
        }
        if let Some((wrapping, secret)) = &*self.unwrapped.lock().unwrap_or_else(|e| e.into_inner())
        {
            if *wrapping == raw {
                return Ok(secret.clone());
            }
        }
        let var = secret_id.variable();
        if !header_safe(raw.expose()) {
            return Err(VaultError::new(
                "unwrap secret id",
                "sys/wrapping/unwrap",
                None,
                Vec::new(),
                format!(
                    "the wrapped secret id ({var}) holds characters a wrapping token cannot have"
                ),
                None,
            )
            .fault(false));
        }
        let spent = format!(
            "the response-wrapped secret id ({var}) was already unwrapped or has expired (a wrapping token works once, for its wrap TTL): deliver a new one; if this store did not unwrap it, someone else did, so treat that secret id as leaked and destroy it"
        );
        let info = vaultrs::sys::wrapping::lookup(&self.transport.conn(None), raw.expose())
            .await
            .map_err(|e| {
                Failure::of(e).scrub(raw.expose()).into_fault(
                    "look up wrapped secret id",
                    "sys/wrapping/lookup",
                    Some(spent.clone().into()),
                )
            })?;
        // Only a secret id of this AppRole mount is accepted: anything
        // else means the wrapping token was swapped on its way.
        let prefix = format!("auth/{mount}/role/");
        if !(info.creation_path.starts_with(&prefix) && info.creation_path.ends_with("/secret-id"))
        {
            return Err(VaultError::new(
                "unwrap secret id",
                "sys/wrapping/lookup",
                None,
                vec![format!("the wrapping token was created at `{}`", info.creation_path)],
                format!("refusing to unwrap ({var}): a wrapped secret id comes from {prefix}ROLE/secret-id; the token may have been replaced in transit — investigate, then deliver a new wrapped secret id"),
                None,
            )
            .fault(false));
        }
        let data: serde_json::Value =
            vaultrs::sys::wrapping::unwrap(&self.transport.conn(Some(&raw)), None)
                .await
                .map_err(|e| {
                    Failure::of(e).scrub(raw.expose()).into_fault(
                        "unwrap secret id",
                        "sys/wrapping/unwrap",
                        Some(Cow::Owned(spent)),
                    )
                })?;
        let secret = Secret::new(data["secret_id"].as_str().unwrap_or_default());
        if secret.is_empty() {
            return Err(invalid_fault(
                "unwrap secret id",
                "sys/wrapping/unwrap",
                "the wrapped response holds no secret_id".into(),
            ));
        }
        *self.unwrapped.lock().unwrap_or_else(|e| e.into_inner()) = Some((raw, secret.clone()));
        Ok(secret)
    }
}

/// A login file that cannot be used, as the login's failure.
fn file_fault(e: LoginFileError, path: &str) -> Fault {
    VaultError::new(
        "login",
        path,
        None,
        Vec::new(),
        e.message,
        e.source.map(|s| Box::new(s) as crate::error::BoxError),
    )
    .fault(e.retryable)
}

/// The renewal task: sleeps until the token is due, renews or logs in,
/// and ends when the session is gone or has nothing left to do. It holds
/// the session only while it works, so dropping the store ends it.
async fn maintain(session: Weak<Session>) {
    loop {
        let Some(at) = session.upgrade().and_then(|s| s.next_action()) else {
            return;
        };
        tokio::time::sleep_until(at).await;
        let Some(s) = session.upgrade() else {
            return;
        };
        // Failures are recorded in the session (health) and retried.
        let _ = s.refresh(Why::Due).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(ttl: Option<u64>) -> TokenState {
        TokenState {
            token: Some(Secret::new("t")),
            generation: 1,
            since: Instant::now(),
            ttl: ttl.map(Duration::from_secs),
            renewable: true,
            login_ttl: ttl.map(Duration::from_secs),
            relogin: false,
            failures: 0,
            failed_at: None,
            last_error: None,
        }
    }

    #[tokio::test]
    async fn renewal_is_due_at_two_thirds_and_calls_refresh_at_nine_tenths() {
        let st = state(Some(30));
        let t0 = st.since;
        assert_eq!(st.due(), Some(t0 + Duration::from_secs(20)));
        assert!(st.fresh(t0 + Duration::from_secs(26)));
        assert!(!st.fresh(t0 + Duration::from_secs(27)));
        assert!(!st.expired(t0 + Duration::from_secs(29)));
        assert!(st.expired(t0 + Duration::from_secs(30)));
        // A token without TTL stays fresh and is never due.
        let forever = state(None);
        assert!(forever.fresh(t0 + Duration::from_secs(1_000_000)));
        assert_eq!(forever.due(), None);
    }

    /// The renewal task holds the session weakly and is aborted when the
    /// store goes: nothing of the store outlives it.
    #[tokio::test]
    async fn dropping_the_store_stops_the_renewal_task() {
        let store = super::super::VaultKeyStore::builder("transit", "k")
            .address("http://127.0.0.1:9")
            .token("t")
            .build()
            .unwrap();
        {
            let mut st = store.session.write();
            *st = state(Some(3_600));
        }
        store.session.ensure_task();
        let weak = Arc::downgrade(&store.session);
        let handle = store
            .session
            .task
            .lock()
            .unwrap()
            .as_ref()
            .expect("task started")
            .abort_handle();
        tokio::task::yield_now().await;
        assert!(!handle.is_finished(), "the task waits for the renewal");
        drop(store);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(handle.is_finished());
        assert!(weak.upgrade().is_none(), "the session is freed");
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let mut st = state(Some(30));
        let secs: Vec<u64> = (1..=8)
            .map(|n| {
                st.failures = n;
                st.backoff().as_secs()
            })
            .collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
