//! `jwtkit serve`: a token service over HTTP.
//!
//! With no arguments it listens on 127.0.0.1:8080, keeps its ES256 keys in a
//! file store under `./.jwtkit/keys` (created on first start, reused after)
//! and its refresh tokens in memory. Once bound it prints exactly one line on
//! stdout, `jwtkit serve: listening on http://ADDR`, so scripts and tests can
//! use `--listen 127.0.0.1:0` and read the port; with `--metrics-listen`
//! it prints `jwtkit serve: metrics on http://ADDR/metrics` just before
//! that line. Endpoints and options: `docs/configuration.md`.

use std::io::Write as _;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_keys::{KeyStore, RotationPolicy};
use jwtkit::{RefreshKey, TokenService};
use zeroize::Zeroizing;

use crate::error::CliError;

mod audit;
pub(crate) mod config;
mod connections;
mod http;
mod limit;
mod metrics;
mod openapi;

pub(crate) use config::ServeArgs;
use config::{LogFormat, RefreshBackend, Settings};

/// Environment variable holding the admin token (else one is generated and printed).
const ADMIN_TOKEN_ENV: &str = "JWTKIT_ADMIN_TOKEN";
/// Environment variable holding the introspection token (optional): resource
/// servers introspect with it and cannot issue.
const INTROSPECTION_TOKEN_ENV: &str = "JWTKIT_INTROSPECTION_TOKEN";
/// Environment variable holding the refresh-token secret (base64url, 32+ bytes).
const REFRESH_KEY_ENV: &str = "JWTKIT_REFRESH_KEY";
/// Environment variable with the secret of the DPoP nonces (`--dpop-nonce`),
/// shared by replicas.
const DPOP_NONCE_KEY_ENV: &str = "JWTKIT_DPOP_NONCE_KEY";
/// Environment variable with the log filter.
const LOG_ENV: &str = "JWTKIT_LOG";
/// Shortest admin token accepted from the environment.
const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Runs `jwtkit serve` until SIGTERM or SIGINT.
pub(crate) fn run(args: &ServeArgs) -> Result<(), CliError> {
    let settings = Settings::resolve(args)?;
    // Read once, at start, whatever the refresh store: a variable that is
    // set but empty is a configuration error before anything is created.
    let refresh_env = refresh_key_env()?;
    init_logging(settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(serve(settings, refresh_env));
    // After the graceful shutdown: a blocking call stuck in a hung HSM
    // must not keep the process alive past SIGTERM.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// `JWTKIT_REFRESH_KEY`: `None` when unset. Set but empty (or only
/// whitespace) is an error, not "unset": a secret manager that failed to
/// fill the variable must not make the service fall back to a key file of
/// its own, which other instances do not share.
fn refresh_key_env() -> Result<Option<Zeroizing<String>>, CliError> {
    match std::env::var(REFRESH_KEY_ENV) {
        Ok(text) if text.trim().is_empty() => Err(CliError::config(format!(
            "{REFRESH_KEY_ENV} is set but empty; set it to the refresh-token secret (32 or more \
             random bytes as base64url, e.g. the line `jwtkit keys generate --alg HS256` \
             prints), or unset it to use the --refresh-key file (default {})",
            config::DEFAULT_REFRESH_KEY
        ))),
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(CliError::config(format!(
            "{REFRESH_KEY_ENV} is not valid UTF-8; set it to the refresh-token secret as \
             base64url text (e.g. the line `jwtkit keys generate --alg HS256` prints)"
        ))),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
        // vaultrs and rustify log every non-2xx answer at ERROR, the expected
        // ones too (a 404 for a state not yet written, a lost check-and-set
        // race); the store reports what matters itself.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,vaultrs=off,rustify=off,cryptoki::mechanism=off",
            )
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn serve(settings: Settings, refresh_env: Option<Zeroizing<String>>) -> Result<(), CliError> {
    let admin_token = admin_token()?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| CliError::config(format!("cannot listen on {}: {e}", settings.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::io(format!("cannot read the bound address: {e}")))?;
    let metrics_listener = match settings.metrics_listen {
        Some(addr) => {
            let bound = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                CliError::config(format!(
                    "cannot listen on --metrics-listen {addr}: {e} (it must differ from \
                     --listen {local})"
                ))
            })?;
            let bound_addr = bound
                .local_addr()
                .map_err(|e| CliError::io(format!("cannot read the bound address: {e}")))?;
            Some((bound, bound_addr, metrics::Exporter::install()?))
        }
        None => None,
    };
    let issuer = settings
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));

    let tokens =
        build_service(&settings, &issuer, refresh_env.as_ref().map(|s| s.as_str())).await?;
    let _maintenance = tokens.spawn_maintenance(settings.maintenance_interval);
    let limiter = settings.auth_failure_limit.map(|n| {
        Arc::new(limit::AuthFailureLimiter::new(
            n,
            settings.auth_failure_window,
        ))
    });
    let state = Arc::new(http::AppState {
        tokens: tokens.clone(),
        admin_digest: http::digest(&admin_token.value),
        introspection_digest: introspection_token(&admin_token.value)?.map(|t| http::digest(&t)),
        limiter: limiter.clone(),
        public: jwtkit::axum::PublicOrigin::url(&issuer)
            .map_err(|e| CliError::config(format!("--issuer: {e}")))?,
        introspection_audience: settings.introspection_audience.clone(),
    });
    let app = http::router(state);
    let requests = metrics_listener
        .is_some()
        .then(|| metrics::RequestMetrics::new(http::ROUTES));

    if admin_token.generated {
        crate::diag(format_args!(
            "jwtkit serve: admin token (set {ADMIN_TOKEN_ENV} to choose one): {}",
            admin_token.value
        ));
    }
    tracing::info!(listen = %local, %issuer, audience = %settings.audience,
        key_store = tokens.key_store().name(), refresh_store = %settings.refresh_kind(),
        "jwtkit serve started");
    // Which refresh keys this instance holds: a rotated key file can be
    // checked on every instance before the staged key is promoted.
    let refresh_keys: Vec<String> = tokens
        .refresh_keys()
        .iter()
        .map(|k| match k.until {
            Some(until) => format!("{} ({} until {until})", k.kid, k.role),
            None => format!("{} ({})", k.kid, k.role),
        })
        .collect();
    tracing::info!(refresh_keys = %refresh_keys.join(", "), "refresh keys loaded");
    let limits = connections::Limits {
        header_read_timeout: settings.header_read_timeout,
        keep_alive_timeout: settings.keep_alive_timeout,
        shutdown_timeout: settings.shutdown_timeout,
        max_connections: settings.max_connections,
    };
    // The metrics side: its listener and the key gauges' timer (which also
    // prunes the failure limiter's tables). Without metrics only the pruning runs.
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut metrics_server = None;
    let observer = match metrics_listener {
        Some((bound, addr, exporter)) => {
            tracing::info!(metrics = %addr, "metrics listener started");
            crate::write_stdout(
                format!("jwtkit serve: metrics on http://{addr}/metrics\n").as_bytes(),
            )?;
            metrics_server = Some(tokio::spawn(exporter.serve(bound, limits, async {
                let _ = metrics_stopped.await;
            })));
            metrics::spawn_observer(tokens.clone(), settings.maintenance_interval, limiter)
        }
        None => spawn_limiter_pruning(limiter, settings.maintenance_interval),
    };
    crate::write_stdout(format!("jwtkit serve: listening on http://{local}\n").as_bytes())?;
    let _ = std::io::stdout().flush();

    let trusted_proxies: Arc<[ipnet::IpNet]> = settings.trusted_proxies.clone().into();
    connections::serve(
        listener,
        app,
        requests,
        trusted_proxies,
        limits,
        shutdown_signal(),
    )
    .await;
    observer.abort();
    let _ = stop_metrics.send(());
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    tracing::info!("jwtkit serve stopped");
    Ok(())
}

/// Prunes the failure limiter's tables every `interval` when metrics are
/// off (with metrics, their observer does it).
fn spawn_limiter_pruning(
    limiter: Option<Arc<limit::AuthFailureLimiter>>,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(limiter) = limiter else { return };
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            limiter.prune();
        }
    })
}

/// The introspection token (`JWTKIT_INTROSPECTION_TOKEN`), if set: lets
/// resource servers introspect without the admin token, which issues.
fn introspection_token(admin: &str) -> Result<Option<Zeroizing<String>>, CliError> {
    match std::env::var(INTROSPECTION_TOKEN_ENV) {
        Ok(value) if !value.trim().is_empty() => {
            let value = Zeroizing::new(value.trim().to_owned());
            if value.as_str() == admin {
                // Resource servers get it: they would hold the admin's power.
                return Err(CliError::config(format!(
                    "{INTROSPECTION_TOKEN_ENV} is the admin token ({ADMIN_TOKEN_ENV}); the \
                     introspection token goes to resource servers and must not issue tokens: \
                     give it a value of its own (e.g. `head -c 32 /dev/urandom | base64`)"
                )));
            }
            if value.len() < MIN_ADMIN_TOKEN_LEN {
                return Err(CliError::config(format!(
                    "{INTROSPECTION_TOKEN_ENV} is {} characters; use at least {MIN_ADMIN_TOKEN_LEN} random ones \
                     (e.g. `head -c 32 /dev/urandom | base64`)",
                    value.len()
                )));
            }
            Ok(Some(value))
        }
        _ => Ok(None),
    }
}

struct AdminToken {
    value: String,
    generated: bool,
}

fn admin_token() -> Result<AdminToken, CliError> {
    match std::env::var(ADMIN_TOKEN_ENV) {
        Ok(value) if !value.trim().is_empty() => {
            let value = value.trim().to_owned();
            if value.len() < MIN_ADMIN_TOKEN_LEN {
                return Err(CliError::config(format!(
                    "{ADMIN_TOKEN_ENV} is {} characters; use at least {MIN_ADMIN_TOKEN_LEN} random ones \
                     (e.g. `head -c 32 /dev/urandom | base64`)",
                    value.len()
                )));
            }
            Ok(AdminToken {
                value,
                generated: false,
            })
        }
        _ => {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes)
                .map_err(|_| CliError::io("the system random number generator failed"))?;
            Ok(AdminToken {
                value: URL_SAFE_NO_PAD.encode(bytes),
                generated: true,
            })
        }
    }
}

impl Settings {
    fn refresh_kind(&self) -> &'static str {
        match self.refresh {
            RefreshBackend::Memory => "memory",
            RefreshBackend::Redis(_) => "redis",
            RefreshBackend::Cluster(_) => "redis-cluster",
        }
    }
}

/// The rotation policy for a new store, and whether the user chose it.
fn rotation_policy(settings: &Settings) -> Result<(RotationPolicy, bool), CliError> {
    let defaults = RotationPolicy::default();
    let explicit = settings.rotate_after.is_some() || settings.prepublish.is_some();
    let lifetime = defaults.max_token_lifetime().max(settings.access_ttl);
    let mut builder = RotationPolicy::builder()
        .max_token_lifetime(lifetime)
        .verify_grace(defaults.verify_grace().max(lifetime + defaults.leeway()));
    if let Some(d) = settings.rotate_after {
        builder = builder.rotate_after(d);
        if settings.prepublish.is_none() {
            // Keep the default prepublish valid for short rotation periods.
            builder = builder.prepublish(defaults.prepublish().min(d / 2));
        }
    }
    if let Some(d) = settings.prepublish {
        builder = builder.prepublish(d);
    }
    let policy = builder.build().map_err(|e| {
        CliError::config(format!(
            "rotation policy (--rotate-after, --prepublish): {e}"
        ))
    })?;
    Ok((policy, explicit))
}

/// Opens `--store`; the token service's builder initializes it if empty
/// ([`TokenServiceBuilder::init_key_store_with`](jwtkit::TokenServiceBuilder::init_key_store_with)).
fn open_key_store(settings: &Settings) -> Result<Arc<dyn KeyStore>, CliError> {
    if settings.store == config::DEFAULT_STORE {
        // The embedded default: ./.jwtkit is private to the user.
        create_private_dir(std::path::Path::new(".jwtkit"))?;
    }
    if let Some(vault) = &settings.vault {
        return open_vault_store(&settings.store, vault);
    }
    crate::warn_pin_value(&settings.store);
    jwt_keys::open_store(&settings.store).map_err(|e| {
        CliError::config(format!(
            "--store {}: {e}",
            config::redact_userinfo(&settings.store)
        ))
    })
}

/// A `vault+http(s)://` store with the config file's `[vault]` login
/// settings (instead of the `VAULT_*` variables `open_store` reads).
fn open_vault_store(uri: &str, vault: &config::VaultConfig) -> Result<Arc<dyn KeyStore>, CliError> {
    use jwt_keys::vault::{SecretId, VaultAuth, VaultKeyStore};
    let bad = |reason: String| CliError::config(format!("config file: [vault]: {reason}"));
    if !uri.to_ascii_lowercase().starts_with("vault+") {
        return Err(bad(format!(
            "the store is {}, not a Vault store; remove the [vault] table or set store = \
             \"vault+https://HOST:PORT/MOUNT/KEY\"",
            config::redact_userinfo(uri)
        )));
    }
    // jwt-keys' errors quote the store URI themselves, with any password
    // in it redacted: no raw URI here.
    let mut builder = VaultKeyStore::builder_from_uri(uri).map_err(CliError::from_keys)?;
    let needs = |value: &Option<String>, key: &str, method: &str| {
        value
            .clone()
            .ok_or_else(|| bad(format!("auth-method = \"{method}\" needs {key}")))
    };
    let method = vault.auth_method.as_deref().unwrap_or("token");
    let auth = match method {
        // The table decides the method: only the token itself comes from
        // the environment (never from the file), not VAULT_AUTH_METHOD.
        "token" => match std::env::var("VAULT_TOKEN") {
            Ok(token) if !token.trim().is_empty() => VaultAuth::token(token.trim()),
            _ => {
                return Err(bad("auth-method = \"token\" needs VAULT_TOKEN in the \
                     environment (a token never goes in the config file); or choose a login \
                     method: approle, jwt, kubernetes"
                    .into()))
            }
        },
        "approle" => {
            let role_id = needs(&vault.role_id, "role-id", method)?;
            let secret_id = match &vault.secret_id_file {
                Some(path) => SecretId::from_file(path),
                None => SecretId::new(std::env::var("VAULT_SECRET_ID").map_err(|_| {
                    bad(
                        "auth-method = \"approle\" needs secret-id-file (or VAULT_SECRET_ID \
                         in the environment)"
                            .into(),
                    )
                })?),
            };
            let secret_id = if vault.secret_id_wrapped {
                secret_id.response_wrapped()
            } else {
                secret_id
            };
            VaultAuth::approle(role_id, secret_id)
        }
        "jwt" => {
            let role = needs(&vault.auth_role, "auth-role", method)?;
            let file = vault
                .jwt_file
                .clone()
                .ok_or_else(|| bad("auth-method = \"jwt\" needs jwt-file".into()))?;
            VaultAuth::jwt(role, file)
        }
        "kubernetes" => {
            let role = needs(&vault.auth_role, "auth-role", method)?;
            let file = vault
                .jwt_file
                .clone()
                .unwrap_or_else(|| VaultAuth::KUBERNETES_TOKEN_FILE.into());
            VaultAuth::kubernetes(role, file)
        }
        other => {
            return Err(bad(format!(
                "auth-method = \"{other}\" is not one of token, approle, jwt, kubernetes"
            )))
        }
    };
    let auth = match &vault.auth_mount {
        Some(mount) if method != "token" => auth.with_mount(mount.clone()),
        Some(_) => return Err(bad("auth-mount is for the login methods, not token".into())),
        None => auth,
    };
    builder = builder.auth(auth);
    if let Some(namespace) = &vault.namespace {
        builder = builder.namespace(namespace.clone());
    }
    if let Some(path) = &vault.ca_cert {
        builder = builder
            .ca_cert_file(path)
            .map_err(|e| bad(format!("ca-cert: {e}")))?;
    }
    let store = builder.build().map_err(CliError::from_keys)?;
    Ok(Arc::new(store))
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), CliError> {
    // Not a symbolic link someone else planted, nor under a directory they
    // control (they could point the default store anywhere).
    crate::keyfile::check_path_trust(dir)?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| CliError::io(format!("cannot create {}: {e}", dir.display())))?;
    // It may have existed: it holds the keys, so it must be ours and
    // writable by no one else (like the store directory inside it).
    let meta = std::fs::metadata(dir)
        .map_err(|e| CliError::io(format!("cannot read {}: {e}", dir.display())))?;
    jwt_keys::file::check_protection(dir, &meta, jwt_keys::file::Protection::Integrity)
        .map_err(CliError::from_keys)
}

async fn build_service(
    settings: &Settings,
    issuer: &str,
    refresh_env: Option<&str>,
) -> Result<TokenService, CliError> {
    let store = open_key_store(settings)?;
    let (policy, explicit_policy) = rotation_policy(settings)?;
    let mut builder = TokenService::builder().shared_key_store(store);
    // An empty file store gets the policy derived from the settings (the
    // embedded default creates itself); an initialized one keeps its own
    // unless the policy was set explicitly. A store in an HSM is created by
    // an operator (`jwtkit store init`): a mistyped `object=` must fail the
    // start (not_initialized), never make new keys in the HSM.
    if !settings.store.to_ascii_lowercase().starts_with("pkcs11:") {
        builder = builder.init_key_store_with(settings.algorithm, policy.clone());
    }
    let mut builder = builder
        .issuer(issuer)
        .audience(&settings.audience)
        .access_ttl(settings.access_ttl)
        .refresh_ttl(settings.refresh_ttl)
        .leeway(settings.leeway);
    if explicit_policy {
        builder = builder.rotation_policy(policy);
    }
    builder = match &settings.token_cache {
        Some(options) => builder.token_cache(options.clone()),
        None => builder.no_token_cache(),
    };
    let nonce_key = dpop_nonce_key(settings)?;
    builder = match &settings.refresh {
        RefreshBackend::Memory => {
            let mut b = builder.session_lifetime(settings.session_lifetime);
            if let Some(grace) = settings.reuse_grace {
                b = b.reuse_grace(grace);
            }
            // Proofs are remembered in memory (the library's default cache).
            match dpop_options(settings, nonce_key) {
                Some(options) => b.dpop(options),
                None => b,
            }
        }
        backend => {
            let mut redis = jwtkit::RedisRefreshStore::builder()
                .ttl(settings.refresh_ttl)
                .max_family_lifetime(settings.session_lifetime.max(settings.refresh_ttl));
            redis = match backend {
                RefreshBackend::Cluster(nodes) => redis.cluster_nodes(nodes.clone()),
                RefreshBackend::Redis(url) => redis.url(url.clone()),
                RefreshBackend::Memory => unreachable!("handled above"),
            };
            if let Some(prefix) = &settings.refresh_prefix {
                redis = redis.key_prefix(prefix.clone());
            }
            if let Some(grace) = settings.reuse_grace {
                redis = redis.reuse_grace(grace);
            }
            let store = redis.connect().await.map_err(|e| {
                if e.is_retryable() {
                    // Down, not misconfigured: say so, and what happens next.
                    CliError::unavailable(format!(
                        "--refresh: {e}; jwtkit serve needs its refresh store at start: \
                             start it (or correct --refresh) and start jwtkit serve again (under \
                             a supervisor, a restart with back-off rides out a short outage)"
                    ))
                } else {
                    CliError::config(format!("--refresh: {e}"))
                }
            })?;
            // Proofs are remembered in the same Redis (or Cluster), so that
            // no replica accepts a proof another one has seen.
            let replay = jwtkit::refresh::RedisReplayCache::new(&store);
            let builder = builder
                .refresh_store(store)
                .refresh_key(refresh_key(settings, refresh_env)?);
            match dpop_options(settings, nonce_key) {
                Some(options) => builder.dpop(options.replay_cache(Arc::new(replay))),
                None => builder,
            }
        }
    };
    builder.build().await.map_err(|e| match e {
        // The builder names its own setting; say which option sets it.
        jwtkit::Error::Config { setting, reason } if setting.starts_with("token_cache") => {
            let option = match setting {
                "token_cache.max_bytes" => "token-cache-bytes",
                _ => "token-cache-entries",
            };
            CliError::config(format!(
                "--{option} (`{option}` in the config file): {reason}"
            ))
        }
        e => CliError::config(e.to_string()),
    })
}

/// The DPoP settings of the token service; `None` with `--dpop off`.
fn dpop_options(
    settings: &Settings,
    nonce_key: Option<jwtkit::dpop::NonceKey>,
) -> Option<jwtkit::DpopOptions> {
    let mode = settings.dpop.mode();
    if mode == jwtkit::DpopMode::Off {
        return None;
    }
    let options = jwtkit::DpopOptions::new(mode);
    Some(match nonce_key {
        Some(key) => options.nonces(key),
        None => options,
    })
}

/// The key of the server's DPoP nonces with `--dpop-nonce`:
/// `JWTKIT_DPOP_NONCE_KEY` when set (read like `JWTKIT_REFRESH_KEY`:
/// surrounding whitespace trimmed, `base64url:` decoded), else a random
/// one of this process. `None` without `--dpop-nonce`.
fn dpop_nonce_key(settings: &Settings) -> Result<Option<jwtkit::dpop::NonceKey>, CliError> {
    if !settings.dpop_nonce {
        return Ok(None);
    }
    if settings.dpop == config::DpopSetting::Off {
        return Err(CliError::config(
            "--dpop-nonce needs DPoP: drop it, or set --dpop allowed or --dpop required",
        ));
    }
    let key = match std::env::var(DPOP_NONCE_KEY_ENV) {
        Err(std::env::VarError::NotPresent) => jwtkit::dpop::NonceKey::generate(),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(CliError::config(format!(
                "{DPOP_NONCE_KEY_ENV} is not valid UTF-8; set it to 32 or more random bytes as \
                 `base64url:…` (e.g. the line `jwtkit keys generate --alg HS256` prints)"
            )))
        }
        Ok(text) => {
            // Read as JWTKIT_REFRESH_KEY is: base64 text, with or without the
            // `base64url:` prefix `jwtkit keys generate` prints, so that two
            // replicas given the same secret in either form agree.
            let text = text.trim().trim_start_matches('\u{feff}').trim();
            let text = jwt_keys::env::base64url_text(text).unwrap_or(text);
            jwtkit::dpop::NonceKey::from_base64(text)
        }
    };
    key.map(Some).map_err(|e| {
        CliError::config(format!(
            "{DPOP_NONCE_KEY_ENV}: {e}; set it to 32 or more random bytes as `base64url:…` \
             (e.g. the line `jwtkit keys generate --alg HS256` prints), or unset it"
        ))
    })
}

/// The refresh-token key: `JWTKIT_REFRESH_KEY` (read at start) when set,
/// else the `--refresh-key` file, created if missing.
fn refresh_key(settings: &Settings, env: Option<&str>) -> Result<RefreshKey, CliError> {
    match env {
        Some(text) => RefreshKey::from_base64(text)
            .map_err(|e| CliError::config(format!("{REFRESH_KEY_ENV}: {e}"))),
        None => {
            // Like every key path: not a link or directory another user
            // controls (they could swap the key, or remove it so that a
            // fresh one logs everyone out).
            crate::keyfile::check_path_trust(&settings.refresh_key)
                .map_err(|e| e.context(format_args!("--refresh-key")))?;
            RefreshKey::load_or_create(&settings.refresh_key)
                .map_err(|e| CliError::config(format!("--refresh-key: {e}")))
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down gracefully"),
        () = terminate => tracing::info!("SIGTERM: shutting down gracefully"),
    }
}
