//! `jwtkit serve` settings: command-line options over a TOML file over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jwt_core::Algorithm;
use serde::Deserialize;

use crate::error::CliError;

/// The default listen address.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default key store: created (ES256) on first start.
pub(crate) const DEFAULT_STORE: &str = "file:.jwtkit/keys";
/// The default refresh-token key file (used with a Redis refresh store).
pub(crate) const DEFAULT_REFRESH_KEY: &str = ".jwtkit/refresh.key";
/// The default audience of access tokens.
pub(crate) const DEFAULT_AUDIENCE: &str = "api";

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3_600);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// How long a client may take to send a request's headers (from when the
/// connection is accepted, or from the end of the previous response).
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound of `--header-read-timeout`: longer lets slow clients hold connections.
pub(crate) const MAX_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(300);
/// How long an idle keep-alive connection stays open between requests.
pub(crate) const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a graceful shutdown waits for open connections before closing them.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound of `--shutdown-timeout`.
pub(crate) const MAX_SHUTDOWN_TIMEOUT: Duration = HOUR;
/// Connections served at once; more wait in the listen backlog.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Upper bound of `--max-connections`.
pub(crate) const MAX_MAX_CONNECTIONS: usize = 65_536;
/// How often key maintenance runs by default.
pub(crate) const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// Upper bound of `--maintenance-interval`: keys must reload well within a rotation.
pub(crate) const MAX_MAINTENANCE_INTERVAL: Duration = HOUR;
/// Upper bound of `--rotate-after` and `--prepublish`.
pub(crate) const MAX_ROTATION_PERIOD: Duration = YEAR;
/// Least `--token-cache-entries` other than 0 (off): the token cache's own minimum.
pub(crate) const MIN_TOKEN_CACHE_ENTRIES: u64 = 2;
/// Upper bound of `--token-cache-entries`: the cache sizes its tables for
/// the expected count up front, so an unbounded value could exhaust memory
/// at start.
pub(crate) const MAX_TOKEN_CACHE_ENTRIES: u64 = 1_000_000;
/// Least `--token-cache-bytes`: the token cache's own minimum (64 KiB).
pub(crate) const MIN_TOKEN_CACHE_BYTES: u64 = 64 << 10;
/// Upper bound of `--token-cache-bytes` (1 GiB), for the same reason as
/// [`MAX_TOKEN_CACHE_ENTRIES`].
pub(crate) const MAX_TOKEN_CACHE_BYTES: u64 = 1 << 30;

/// Upper bound of `--auth-failure-limit`.
pub(crate) const MAX_AUTH_FAILURE_LIMIT: u32 = 10_000;
/// Upper bound of `--auth-failure-window`.
pub(crate) const MAX_AUTH_FAILURE_WINDOW: Duration = HOUR;

/// Sender-constrained tokens (DPoP, RFC 9449).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DpopSetting {
    /// No DPoP: bearer tokens only; a `DPoP` header is refused.
    Off,
    /// Tokens issued or refreshed with a DPoP proof are bound to its key;
    /// without one, bearer tokens as before.
    Allowed,
    /// Every issue, refresh and /userinfo request needs a DPoP proof.
    Required,
}

impl DpopSetting {
    /// The library's mode.
    pub(crate) fn mode(self) -> jwtkit::DpopMode {
        match self {
            DpopSetting::Off => jwtkit::DpopMode::Off,
            DpopSetting::Allowed => jwtkit::DpopMode::Allowed,
            DpopSetting::Required => jwtkit::DpopMode::Required,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Arguments of `jwtkit serve`. Every option can also be set in the
/// `--config` TOML file under the same name (e.g. `access-ttl = "15m"`);
/// options given on the command line win.
#[derive(Debug, Default, clap::Args)]
#[command(after_help = "Environment:\n  \
    JWTKIT_ADMIN_TOKEN           the bearer token that issues tokens and manages sessions (16+ \
    characters; printed once at start when unset)\n  \
    JWTKIT_INTROSPECTION_TOKEN   a second token, for resource servers: POST /introspect only\n  \
    JWTKIT_REFRESH_KEY           the refresh-token secret (instead of the --refresh-key file)\n  \
    JWTKIT_REFRESH_URL           the refresh store URL (instead of --refresh)\n  \
    JWTKIT_DPOP_NONCE_KEY        the secret of --dpop-nonce nonces, shared by replicas\n  \
    JWTKIT_LOG                   what is logged (default info,vaultrs=off,rustify=off,\
    cryptoki::mechanism=off; e.g. jwtkit::audit=info for audit events alone)\n\n\
    Endpoints, options and examples: docs/configuration.md; operating it: docs/operations.md.")]
pub(crate) struct ServeArgs {
    /// TOML file with the same keys as these options (e.g. `listen = "0.0.0.0:8080"`).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// Key store for access tokens: file:DIR or env:NAME (kms:, vault+https:// and
    /// pkcs11: where built in; a pkcs11: store must be created first with `jwtkit store init`)
    /// [default: file:.jwtkit/keys, initialized on first start].
    #[arg(long, value_name = "URI")]
    pub(crate) store: Option<String>,
    /// Algorithm of the keys created when the store is empty [default: ES256].
    #[arg(long, value_name = "ALG", visible_alias = "alg")]
    pub(crate) algorithm: Option<String>,
    /// Refresh-token store: `memory`, `redis://HOST:PORT/DB` (`rediss://` for
    /// TLS, verified against the system trust store or `SSL_CERT_FILE`), or
    /// comma-separated `redis://` seed nodes of a Redis Cluster [default:
    /// memory]. A URL with a password belongs in the environment or the
    /// config file, not on the command line, where `ps` shows it to every
    /// local user.
    #[arg(
        long,
        value_name = "URL",
        env = "JWTKIT_REFRESH_URL",
        hide_env_values = true
    )]
    pub(crate) refresh: Option<String>,
    /// Prefix of every Redis key [default: jwtkit:refresh:].
    #[arg(long, value_name = "PREFIX")]
    pub(crate) refresh_prefix: Option<String>,
    /// File holding the HS256 secret that signs refresh tokens (created 0600 if
    /// missing); used with a Redis refresh store. `JWTKIT_REFRESH_KEY` (base64url
    /// secret) takes precedence [default: .jwtkit/refresh.key].
    #[arg(long, value_name = "FILE")]
    pub(crate) refresh_key: Option<PathBuf>,
    /// `iss` of every token [default: http://LISTEN-ADDRESS].
    #[arg(long, value_name = "URL", visible_alias = "iss")]
    pub(crate) issuer: Option<String>,
    /// `aud` of access tokens [default: api].
    #[arg(long, value_name = "AUD", visible_alias = "aud")]
    pub(crate) audience: Option<String>,
    /// Access-token lifetime; 1s to 24h [default: 15m].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) access_ttl: Option<Duration>,
    /// Refresh-token lifetime (idle session timeout); 1s to 365d [default: 14d].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) refresh_ttl: Option<Duration>,
    /// Maximum session lifetime, however often it refreshes; 1s to 365d [default: 30d].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) session_lifetime: Option<Duration>,
    /// Window in which a just-used refresh token may be presented again and get
    /// the same new pair (lost responses); 0 = off, at most 60s [default: 0].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) reuse_grace: Option<Duration>,
    /// Clock-skew tolerance when verifying; at most 5m [default: 60s].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) leeway: Option<Duration>,
    /// Rotation policy: rotate the signing key after this long; 1s to 365d [default: 30d].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) rotate_after: Option<Duration>,
    /// Rotation policy: publish a new key this long before it signs; at most
    /// 365d and `--rotate-after` [default: 1d].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) prepublish: Option<Duration>,
    /// How often to apply the rotation policy and reload keys; 1s to 1h [default: 60s].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) maintenance_interval: Option<Duration>,
    /// Time a client has to send a request's headers, counted from when the
    /// connection is accepted or the previous response sent; slower connections are closed.
    /// 1s to 5m [default: 10s].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) header_read_timeout: Option<Duration>,
    /// How long an idle keep-alive connection is kept between requests; 0 turns
    /// keep-alive off. At most the header-read timeout [default: 5s].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) keep_alive_timeout: Option<Duration>,
    /// On SIGTERM/SIGINT, how long to let open requests finish; then the remaining
    /// connections are closed and the process exits 0. 0s to 1h [default: 30s].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) shutdown_timeout: Option<Duration>,
    /// Connections served at once; further ones wait in the listen backlog until one
    /// closes (logged at most once a minute). Keep it under the open-files limit (`ulimit -n`).
    /// 1 to 65536 [default: 512].
    #[arg(long, value_name = "N")]
    pub(crate) max_connections: Option<usize>,
    /// Log format on stderr [default: text]. What is logged comes from
    /// `JWTKIT_LOG` (e.g. `debug`, `jwtkit=debug`; see Environment below).
    #[arg(long, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
    /// Verified-token cache for /userinfo: at most N access tokens are kept
    /// verified, so that a token presented again is answered without another
    /// signature verification (a hit still checks `exp`, `nbf` and `iat`, and
    /// a key rotation or retirement makes tokens verify again). 0 turns the
    /// cache off (every token verified afresh; --token-cache-bytes is then
    /// ignored); otherwise 2 to 1000000 [default: 10000].
    #[arg(long, value_name = "N")]
    pub(crate) token_cache_entries: Option<u64>,
    /// Verified-token cache: the most memory its entries may take, in bytes
    /// (a plain number: 16777216 is 16 MiB); 65536 (64 KiB) to 1073741824
    /// (1 GiB) [default: 16777216].
    #[arg(long, value_name = "BYTES")]
    pub(crate) token_cache_bytes: Option<u64>,
    /// Serve Prometheus metrics at http://ADDR/metrics, on a listener of their
    /// own (never the public --listen address); port 0 picks a free port
    /// [default: off].
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// Failed admin or introspection authentications (a wrong bearer token)
    /// allowed per client address and --auth-failure-window; one more is
    /// answered 429, and so is every admin or introspection request from
    /// that address, the right token included, until the window lets one
    /// more attempt through. 0 turns the limit off; at most 10000 [default: 10].
    #[arg(long, value_name = "N")]
    pub(crate) auth_failure_limit: Option<u32>,
    /// The window of --auth-failure-limit; 1s to 1h [default: 60s].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub(crate) auth_failure_window: Option<Duration>,
    /// Sender-constrained tokens (DPoP, RFC 9449): `allowed` binds the tokens
    /// of a /token request that carries a `DPoP` proof to the proof's key
    /// (token_type DPoP; /userinfo then needs `Authorization: DPoP` and a
    /// fresh proof, and the session refreshes only with that key), bearer
    /// tokens otherwise; `required` refuses every request without a proof;
    /// `off` refuses DPoP. Proofs are remembered in the refresh store's
    /// backend (memory, or Redis) so none is accepted twice [default: allowed].
    #[arg(long, value_name = "MODE")]
    pub(crate) dpop: Option<DpopSetting>,
    /// A reverse proxy or load balancer in front of the service (an address
    /// or a CIDR network, e.g. 10.0.0.0/8; repeatable). For a request from
    /// one, the client address (for the failed-authentication limit and the
    /// audit records) is the last `X-Forwarded-For` address that is not a
    /// trusted proxy, instead of the proxy's own. Without it the header is
    /// ignored: anyone can write it [default: none].
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_network)]
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// The `aud` of signed introspection answers (RFC 9701 §5: the resource
    /// servers that hold JWTKIT_INTROSPECTION_TOKEN, which check it is
    /// theirs); set it to their identifier, distinct from --audience, so an
    /// answer can never be taken for an access token by a verifier that
    /// ignores `typ` [default: --audience].
    #[arg(long, value_name = "ID")]
    pub(crate) introspection_audience: Option<String>,
    /// Server-issued DPoP nonces (RFC 9449 §8): proofs must carry the nonce
    /// of the last `DPoP-Nonce` header (a request without it is answered
    /// `use_dpop_nonce` with one); a nonce lasts 5 to 10 minutes. Replicas
    /// share nonces when they share `JWTKIT_DPOP_NONCE_KEY` (32 bytes or more,
    /// `base64url:…`); without it each instance makes its own [default: off].
    #[arg(long)]
    pub(crate) dpop_nonce: bool,
}

/// The TOML file: the same keys as the options.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    store: Option<String>,
    // The short names of sign, verify and store (`--alg`, `--iss`, `--aud`)
    // work in the file too, as on the command line.
    #[serde(alias = "alg")]
    algorithm: Option<String>,
    refresh: Option<String>,
    refresh_prefix: Option<String>,
    refresh_key: Option<PathBuf>,
    #[serde(alias = "iss")]
    issuer: Option<String>,
    #[serde(alias = "aud")]
    audience: Option<String>,
    access_ttl: Option<String>,
    refresh_ttl: Option<String>,
    session_lifetime: Option<String>,
    reuse_grace: Option<String>,
    leeway: Option<String>,
    rotate_after: Option<String>,
    prepublish: Option<String>,
    maintenance_interval: Option<String>,
    header_read_timeout: Option<String>,
    keep_alive_timeout: Option<String>,
    shutdown_timeout: Option<String>,
    max_connections: Option<usize>,
    log_format: Option<LogFormat>,
    token_cache_entries: Option<u64>,
    token_cache_bytes: Option<u64>,
    metrics_listen: Option<SocketAddr>,
    auth_failure_limit: Option<u32>,
    auth_failure_window: Option<String>,
    dpop: Option<DpopSetting>,
    dpop_nonce: Option<bool>,
    trusted_proxy: Option<Vec<String>>,
    introspection_audience: Option<String>,
    vault: Option<VaultConfig>,
}

/// The `[vault]` table: how a `vault+http(s)://` store logs in. Secrets
/// never go in the file: a token comes from `VAULT_TOKEN`, a secret id from
/// `secret-id-file` (or `VAULT_SECRET_ID`), a JWT from `jwt-file`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct VaultConfig {
    /// `token` (default: `VAULT_TOKEN`), `approle`, `jwt` or `kubernetes`.
    pub(crate) auth_method: Option<String>,
    /// The login method's mount path (default: the method's name).
    pub(crate) auth_mount: Option<String>,
    /// AppRole: the role id.
    pub(crate) role_id: Option<String>,
    /// AppRole: a file holding the secret id (else `VAULT_SECRET_ID`).
    pub(crate) secret_id_file: Option<PathBuf>,
    /// AppRole: the secret id is a response-wrapping token to unwrap first.
    #[serde(default)]
    pub(crate) secret_id_wrapped: bool,
    /// JWT and Kubernetes: the role to log in as.
    pub(crate) auth_role: Option<String>,
    /// JWT and Kubernetes: the token file, re-read at each login.
    pub(crate) jwt_file: Option<PathBuf>,
    /// The Vault Enterprise / OpenBao namespace.
    pub(crate) namespace: Option<String>,
    /// A PEM file of the CAs that verify Vault's certificate (these only).
    pub(crate) ca_cert: Option<PathBuf>,
}

/// Where refresh tokens are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefreshBackend {
    /// In process.
    Memory,
    /// One Redis server.
    Redis(String),
    /// Redis Cluster seed nodes.
    Cluster(Vec<String>),
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    pub(crate) store: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) refresh: RefreshBackend,
    pub(crate) refresh_prefix: Option<String>,
    pub(crate) refresh_key: PathBuf,
    pub(crate) issuer: Option<String>,
    pub(crate) audience: String,
    pub(crate) access_ttl: Duration,
    pub(crate) refresh_ttl: Duration,
    pub(crate) session_lifetime: Duration,
    pub(crate) reuse_grace: Option<Duration>,
    pub(crate) leeway: Duration,
    pub(crate) rotate_after: Option<Duration>,
    pub(crate) prepublish: Option<Duration>,
    pub(crate) maintenance_interval: Duration,
    pub(crate) header_read_timeout: Duration,
    /// Zero: keep-alive off.
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) log_format: LogFormat,
    /// The verified-token cache's bounds; `None`: off.
    pub(crate) token_cache: Option<jwtkit::TokenCacheOptions>,
    /// The `[vault]` table, if the config file has one.
    pub(crate) vault: Option<VaultConfig>,
    /// Where `/metrics` is served; `None`: metrics off.
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// Failed authentications allowed per address and window; `None`: no limit.
    pub(crate) auth_failure_limit: Option<std::num::NonZeroU32>,
    /// The window of `auth_failure_limit`.
    pub(crate) auth_failure_window: Duration,
    /// DPoP: off, allowed or required.
    pub(crate) dpop: DpopSetting,
    /// Server-issued DPoP nonces.
    pub(crate) dpop_nonce: bool,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// The `aud` of signed introspection answers; `None`: the audience.
    pub(crate) introspection_audience: Option<String>,
}

impl Settings {
    /// Options over the `--config` file over the defaults.
    pub(crate) fn resolve(args: &ServeArgs) -> Result<Settings, CliError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let dur = |arg: Option<Duration>,
                   key: &str,
                   value: &Option<String>,
                   (min, max): (Duration, Duration)|
         -> Result<Option<Duration>, CliError> {
            let (d, source) = match (arg, value) {
                (Some(d), _) => (d, Source::Flag),
                (None, Some(text)) => (
                    crate::duration::parse(text)
                        .map_err(|e| CliError::config(format!("config file: {key}: {e}")))?,
                    Source::File,
                ),
                (None, None) => return Ok(None),
            };
            let show = crate::duration::display;
            check_bounds(
                key,
                source,
                &show(d),
                d < min,
                d > max,
                &show(min),
                &show(max),
            )?;
            Ok(Some(d))
        };
        let listen = match args.listen.or(file.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse().expect("valid default"),
        };
        let algorithm = match args.algorithm.as_deref().or(file.algorithm.as_deref()) {
            Some(name) => crate::cmd::parse_algorithm(name)?,
            None => Algorithm::ES256,
        };
        let refresh = parse_refresh(
            args.refresh
                .as_deref()
                .or(file.refresh.as_deref())
                .unwrap_or("memory"),
        )?;
        let reuse_grace = dur(
            args.reuse_grace,
            "reuse-grace",
            &file.reuse_grace,
            // At most 60 s: checked (and named `reuse_grace`) by the refresh store's policy.
            (Duration::ZERO, crate::duration::MAX),
        )?
        .filter(|d| !d.is_zero());
        let header_read_timeout = dur(
            args.header_read_timeout,
            "header-read-timeout",
            &file.header_read_timeout,
            (SECOND, MAX_HEADER_READ_TIMEOUT),
        )?
        .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT);
        // hyper's header timer also runs between keep-alive requests, so an idle
        // connection cannot outlive it.
        let keep_alive_timeout = dur(
            args.keep_alive_timeout,
            "keep-alive-timeout",
            &file.keep_alive_timeout,
            (Duration::ZERO, header_read_timeout),
        )?
        .unwrap_or(DEFAULT_KEEP_ALIVE_TIMEOUT.min(header_read_timeout));
        let max_connections = match (args.max_connections, file.max_connections) {
            (Some(n), _) => Some((n, Source::Flag)),
            (None, Some(n)) => Some((n, Source::File)),
            (None, None) => None,
        };
        if let Some((n, source)) = max_connections {
            check_bounds(
                "max-connections",
                source,
                &n.to_string(),
                n < 1,
                n > MAX_MAX_CONNECTIONS,
                "1",
                &MAX_MAX_CONNECTIONS.to_string(),
            )?;
        }
        let token_cache = token_cache(args, &file)?;
        let auth_failure_limit = match (args.auth_failure_limit, file.auth_failure_limit) {
            (Some(n), _) => Some((n, Source::Flag)),
            (None, Some(n)) => Some((n, Source::File)),
            (None, None) => None,
        };
        if let Some((n, source)) = auth_failure_limit {
            check_bounds(
                "auth-failure-limit",
                source,
                &n.to_string(),
                false,
                n > MAX_AUTH_FAILURE_LIMIT,
                "0 (off)",
                &MAX_AUTH_FAILURE_LIMIT.to_string(),
            )?;
        }
        let auth_failure_limit = match auth_failure_limit {
            Some((n, _)) => std::num::NonZeroU32::new(n),
            None => std::num::NonZeroU32::new(super::limit::DEFAULT_FAILURES),
        };
        let auth_failure_window = dur(
            args.auth_failure_window,
            "auth-failure-window",
            &file.auth_failure_window,
            (SECOND, MAX_AUTH_FAILURE_WINDOW),
        )?
        .unwrap_or(super::limit::DEFAULT_WINDOW);
        let metrics_listen = args.metrics_listen.or(file.metrics_listen);
        if let Some(metrics) = metrics_listen {
            super::metrics::check_addresses(listen, metrics)?;
        }
        let access_ttl = dur(
            args.access_ttl,
            "access-ttl",
            &file.access_ttl,
            (SECOND, jwtkit::MAX_ACCESS_TTL),
        )?
        .unwrap_or(jwtkit::DEFAULT_ACCESS_TTL);
        let refresh_ttl = dur(
            args.refresh_ttl,
            "refresh-ttl",
            &file.refresh_ttl,
            (SECOND, jwtkit::RefreshPolicy::MAX_TTL),
        )?
        .unwrap_or(jwtkit::DEFAULT_REFRESH_TTL);
        let session_lifetime = dur(
            args.session_lifetime,
            "session-lifetime",
            &file.session_lifetime,
            (SECOND, jwtkit::RefreshPolicy::MAX_FAMILY_LIFETIME),
        )?
        .unwrap_or(jwtkit::DEFAULT_SESSION_LIFETIME);
        Ok(Settings {
            listen,
            store: args
                .store
                .clone()
                .or(file.store)
                .unwrap_or_else(|| DEFAULT_STORE.to_owned()),
            algorithm,
            refresh,
            refresh_prefix: args.refresh_prefix.clone().or(file.refresh_prefix),
            refresh_key: args
                .refresh_key
                .clone()
                .or(file.refresh_key)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_REFRESH_KEY)),
            issuer: args.issuer.clone().or(file.issuer),
            audience: args
                .audience
                .clone()
                .or(file.audience)
                .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned()),
            access_ttl,
            refresh_ttl,
            session_lifetime,
            reuse_grace,
            leeway: dur(
                args.leeway,
                "leeway",
                &file.leeway,
                (Duration::ZERO, jwtkit::MAX_LEEWAY),
            )?
            .unwrap_or(jwtkit::DEFAULT_LEEWAY),
            rotate_after: dur(
                args.rotate_after,
                "rotate-after",
                &file.rotate_after,
                (SECOND, MAX_ROTATION_PERIOD),
            )?,
            prepublish: dur(
                args.prepublish,
                "prepublish",
                &file.prepublish,
                (Duration::ZERO, MAX_ROTATION_PERIOD),
            )?,
            maintenance_interval: dur(
                args.maintenance_interval,
                "maintenance-interval",
                &file.maintenance_interval,
                (SECOND, MAX_MAINTENANCE_INTERVAL),
            )?
            .unwrap_or(DEFAULT_MAINTENANCE_INTERVAL),
            header_read_timeout,
            keep_alive_timeout,
            shutdown_timeout: dur(
                args.shutdown_timeout,
                "shutdown-timeout",
                &file.shutdown_timeout,
                (Duration::ZERO, MAX_SHUTDOWN_TIMEOUT),
            )?
            .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
            max_connections: max_connections.map_or(DEFAULT_MAX_CONNECTIONS, |(n, _)| n),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            token_cache,
            vault: file.vault,
            metrics_listen,
            auth_failure_limit,
            auth_failure_window,
            dpop: args.dpop.or(file.dpop).unwrap_or(DpopSetting::Allowed),
            dpop_nonce: args.dpop_nonce || file.dpop_nonce.unwrap_or(false),
            trusted_proxies: if args.trusted_proxies.is_empty() {
                file.trusted_proxy
                    .unwrap_or_default()
                    .iter()
                    .map(|text| {
                        parse_network(text).map_err(|e| {
                            CliError::config(format!("config file: trusted-proxy: {e}"))
                        })
                    })
                    .collect::<Result<_, _>>()?
            } else {
                args.trusted_proxies.clone()
            },
            introspection_audience: match args
                .introspection_audience
                .clone()
                .or(file.introspection_audience)
            {
                Some(aud) if aud.trim().is_empty() => return Err(CliError::config(
                    "--introspection-audience is empty: give the resource servers' identifier, \
                         or leave it out to use --audience",
                )),
                other => other,
            },
        })
    }
}

/// The verified-token cache from `token-cache-entries` (0: off) and
/// `token-cache-bytes`, checked here so that a bad value names the option
/// as it was given (the builder would name its own setting).
fn token_cache(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<Option<jwtkit::TokenCacheOptions>, CliError> {
    let given = |flag: Option<u64>, in_file: Option<u64>| match (flag, in_file) {
        (Some(n), _) => Some((n, Source::Flag)),
        (None, Some(n)) => Some((n, Source::File)),
        (None, None) => None,
    };
    let mut options = jwtkit::TokenCacheOptions::default();
    match given(args.token_cache_entries, file.token_cache_entries) {
        Some((0, _)) => return Ok(None),
        Some((n, source)) => {
            let range = format!("{MIN_TOKEN_CACHE_ENTRIES} to {MAX_TOKEN_CACHE_ENTRIES}");
            if !(MIN_TOKEN_CACHE_ENTRIES..=MAX_TOKEN_CACHE_ENTRIES).contains(&n) {
                return Err(CliError::config(format!(
                    "{} is out of range; token-cache-entries accepts 0 (the cache off) or {range} \
                     (the cache admits a token only while another fits beside it)",
                    setting("token-cache-entries", source, &n.to_string())
                )));
            }
            options = options.with_max_entries(n);
        }
        None => {}
    }
    if let Some((n, source)) = given(args.token_cache_bytes, file.token_cache_bytes) {
        check_bounds(
            "token-cache-bytes",
            source,
            &n.to_string(),
            n < MIN_TOKEN_CACHE_BYTES,
            n > MAX_TOKEN_CACHE_BYTES,
            &format!("{MIN_TOKEN_CACHE_BYTES} (64 KiB)"),
            &format!("{MAX_TOKEN_CACHE_BYTES} (1 GiB)"),
        )?;
        options = options.with_max_bytes(n);
    }
    Ok(Some(options))
}

/// A network of `--trusted-proxy`: `10.0.0.0/8`, `fd00::/8`, or one
/// address (`10.1.2.3`, a /32 or /128).
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| {
            format!(
                "{:?} is not an IP address or a CIDR network (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)",
                text.chars().take(64).collect::<String>()
            )
        })
}

/// A setting as it was given: `--key VALUE`, or as the config file writes
/// it: `key = "VALUE"` (a duration) or `key = 12` (a number).
fn setting(key: &str, source: Source, value: &str) -> String {
    match source {
        Source::Flag => format!("--{key} {value}"),
        Source::File if value.parse::<u64>().is_ok() => format!("config file: {key} = {value}"),
        Source::File => format!("config file: {key} = {value:?}"),
    }
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, Copy)]
enum Source {
    Flag,
    File,
}

/// Refuses a value outside its documented bounds, naming the setting (as it
/// was given), the bound and the value.
fn check_bounds(
    key: &str,
    source: Source,
    value: &str,
    below: bool,
    above: bool,
    min: &str,
    max: &str,
) -> Result<(), CliError> {
    let (what, limit) = match (below, above) {
        (true, _) => ("below the minimum", min),
        (_, true) => ("over the maximum", max),
        _ => return Ok(()),
    };
    Err(CliError::config(format!(
        "{} is {what} of {limit}; {key} accepts {min} to {max}",
        setting(key, source, value)
    )))
}

fn read_file(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::config(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| {
        CliError::config(format!(
            "config file {}: {}",
            path.display(),
            redact_userinfo(&e.to_string())
        ))
    })
}

/// `text` with the user-info part of every URL (`redis://:PASSWORD@host`)
/// replaced by `***`, and the PIN of every PKCS#11 URI (`pin-value=…`)
/// too: a TOML parse error quotes the offending line, and the line may be
/// the Redis URL with its password or a store URI with its PIN.
pub(crate) fn redact_userinfo(text: &str) -> String {
    jwt_keys::pkcs11::redact_pin(&redact_url_userinfo(text))
}

fn redact_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

fn parse_refresh(value: &str) -> Result<RefreshBackend, CliError> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("memory") {
        return Ok(RefreshBackend::Memory);
    }
    let is_redis = |s: &str| s.starts_with("redis://") || s.starts_with("rediss://");
    let nodes: Vec<&str> = value.split(',').map(str::trim).collect();
    if nodes.iter().all(|n| is_redis(n)) {
        return Ok(if nodes.len() == 1 {
            RefreshBackend::Redis(value.to_owned())
        } else {
            RefreshBackend::Cluster(nodes.into_iter().map(str::to_owned).collect())
        });
    }
    Err(CliError::config(
        "--refresh must be `memory`, a redis:// (or rediss://) URL, or comma-separated redis:// \
         seed nodes of a Redis Cluster",
    ))
}

#[cfg(test)]
mod tests {
    /// Found by the second outside review: a TOML syntax error on the
    /// `refresh` line quoted the Redis password.
    #[test]
    fn config_errors_never_quote_a_url_password() {
        // A missing comma-like typo on the line itself: an unquoted tail.
        let text = "refresh = \"redis://:hunter2/x@redis.internal:6379/0\" oops\n";
        let err = toml::from_str::<FileConfig>(text).unwrap_err().to_string();
        assert!(err.contains("hunter2"), "the raw error quotes it: {err}");
        let shown = super::redact_userinfo(&err);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("redis://***@redis.internal:6379/0"),
            "{shown}"
        );
        assert_eq!(
            super::redact_userinfo("see https://example.com/a@b and redis://host/0"),
            "see https://***@b and redis://host/0"
        );
    }

    use super::*;

    #[test]
    fn options_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\naudience = \"file-aud\"\naccess-ttl = \"5m\"\nrefresh = \"redis://127.0.0.1:6379/\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            audience: Some("cli-aud".into()),
            ..ServeArgs::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(s.audience, "cli-aud");
        assert_eq!(s.access_ttl, Duration::from_secs(300));
        assert_eq!(
            s.refresh,
            RefreshBackend::Redis("redis://127.0.0.1:6379/".into())
        );
        assert_eq!(s.store, DEFAULT_STORE);
        assert_eq!(s.refresh_ttl, jwtkit::DEFAULT_REFRESH_TTL);
    }

    /// The token cache flags reach the builder's options: 0 is off, the
    /// flag wins over the file, the defaults stay without either.
    #[test]
    fn token_cache_settings_become_the_builders_options() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            "token-cache-entries = 100\ntoken-cache-bytes = 131072\n",
        )
        .unwrap();
        let resolve = |args: ServeArgs| Settings::resolve(&args).unwrap().token_cache;
        assert_eq!(
            resolve(ServeArgs::default()),
            Some(jwtkit::TokenCacheOptions::default())
        );
        let from_file = resolve(ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(
            (from_file.max_entries(), from_file.max_bytes()),
            (100, 131_072)
        );
        let flags = resolve(ServeArgs {
            config: Some(path.clone()),
            token_cache_entries: Some(50),
            token_cache_bytes: Some(65_536),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!((flags.max_entries(), flags.max_bytes()), (50, 65_536));
        let off = resolve(ServeArgs {
            config: Some(path),
            token_cache_entries: Some(0),
            ..ServeArgs::default()
        });
        assert_eq!(off, None);
    }

    /// The metrics listener and the failure limit come from the flags or
    /// the file; the metrics port may not be the public one.
    #[test]
    fn metrics_and_auth_limit_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            "metrics-listen = \"127.0.0.1:9100\"\nauth-failure-limit = 5\nauth-failure-window = \"10s\"\n",
        )
        .unwrap();
        let defaults = Settings::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(defaults.metrics_listen, None);
        assert_eq!(defaults.auth_failure_limit.map(|n| n.get()), Some(10));
        assert_eq!(defaults.auth_failure_window, Duration::from_secs(60));
        let from_file = Settings::resolve(&ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(
            from_file.metrics_listen,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(from_file.auth_failure_limit.map(|n| n.get()), Some(5));
        assert_eq!(from_file.auth_failure_window, Duration::from_secs(10));
        let off = Settings::resolve(&ServeArgs {
            config: Some(path.clone()),
            auth_failure_limit: Some(0),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(off.auth_failure_limit, None);
        let err = Settings::resolve(&ServeArgs {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert_eq!(err.kind(), "config");
        assert!(
            err.message().contains("--metrics-listen 127.0.0.1:9100"),
            "{}",
            err.message()
        );
        let err = Settings::resolve(&ServeArgs {
            auth_failure_limit: Some(10_001),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(
            err.message().contains("--auth-failure-limit 10001"),
            "{}",
            err.message()
        );
        let err = Settings::resolve(&ServeArgs {
            auth_failure_window: Some(Duration::from_secs(7200)),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(
            err.message().contains("auth-failure-window"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, "acess-ttl = \"5m\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let err = Settings::resolve(&args).unwrap_err();
        assert_eq!(err.kind(), "config");
        assert!(err.message().contains("acess-ttl"), "{}", err.message());

        std::fs::write(&path, "access-ttl = \"5 minutes\"\n").unwrap();
        let err = Settings::resolve(&args).unwrap_err();
        assert!(err.message().contains("access-ttl"), "{}", err.message());

        assert_eq!(parse_refresh("postgres://x").unwrap_err().kind(), "config");
        assert_eq!(
            parse_refresh("redis://a:1,redis://b:2").unwrap(),
            RefreshBackend::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
    }
}
