//! Prometheus metrics of `jwtkit serve` (`--metrics-listen`).
//!
//! Recorded through the `metrics` facade: without `--metrics-listen` no
//! recorder is installed and every recording is a no-op. With it,
//! `metrics-exporter-prometheus`'s recorder keeps them and `GET /metrics`
//! on the metrics listener (never the public one) renders them in the
//! Prometheus text format. Every name is defined here, once; the list with
//! example alert rules is in `docs/operations.md`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use jwt_keys::{KeyState, KeyStoreExt as _};
use jwtkit::{Error, GrantRefusal, TokenService};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::limit::AuthFailureLimiter;
use crate::error::CliError;

/// Tokens issued (`POST /token` with the admin token).
pub(crate) const TOKENS_ISSUED: &str = "jwtkit_tokens_issued_total";
/// Refresh grants that returned a new pair.
pub(crate) const TOKENS_REFRESHED: &str = "jwtkit_tokens_refreshed_total";
/// Refresh grants refused, by `reason`.
pub(crate) const REFRESH_REFUSED: &str = "jwtkit_refresh_refused_total";
/// `POST /revoke` requests, by `result`.
pub(crate) const REVOCATIONS: &str = "jwtkit_revocations_total";
/// Sessions ended by an administrator (`DELETE /sessions/{sid}`, `POST
/// /sessions/revoke`), by `by`.
pub(crate) const ADMIN_SESSIONS_REVOKED: &str = "jwtkit_admin_sessions_revoked_total";
/// `POST /introspect` answers, by `result`.
pub(crate) const INTROSPECTIONS: &str = "jwtkit_introspections_total";
/// Access tokens refused at `/userinfo`, by `kind`.
pub(crate) const ACCESS_REJECTED: &str = "jwtkit_access_token_rejections_total";
/// Failed admin or introspection authentications, by `route` and `reason`.
pub(crate) const AUTH_FAILURES: &str = "jwtkit_auth_failures_total";
/// Admin or introspection requests answered 429 by the brute-force limit, by `route`.
pub(crate) const AUTH_RATE_LIMITED: &str = "jwtkit_auth_rate_limited_total";
/// Addresses the brute-force limit tracks (recent failures or locked).
pub(crate) const AUTH_LIMIT_TRACKED: &str = "jwtkit_auth_limit_tracked_addresses";
/// HTTP request duration, by matched `route` and `status` class.
pub(crate) const HTTP_DURATION: &str = "jwtkit_http_request_duration_seconds";
/// Duration of the token service's calls (key and refresh store work), by `operation`.
pub(crate) const STORE_DURATION: &str = "jwtkit_store_operation_duration_seconds";
/// Age of the active signing key.
pub(crate) const KEY_AGE: &str = "jwtkit_signing_key_age_seconds";
/// Seconds until the next scheduled rotation; negative when overdue.
pub(crate) const ROTATION_DUE_IN: &str = "jwtkit_signing_key_rotation_due_in_seconds";
/// Findings of the key store's audit against its policy.
pub(crate) const AUDIT_FINDINGS: &str = "jwtkit_key_store_audit_findings";
/// Unix time of the last successful look at the key store.
pub(crate) const KEYS_OBSERVED_AT: &str = "jwtkit_key_store_last_observed_timestamp_seconds";
/// Changes of the active signing key this instance observed.
pub(crate) const KEY_ROTATIONS: &str = "jwtkit_key_rotations_total";
/// Keys this instance observed leaving the JWKS (retired).
pub(crate) const KEY_RETIREMENTS: &str = "jwtkit_key_retirements_total";

/// Histogram buckets (seconds): 0.25 ms to 10 s, for requests and store calls alike.
const BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Refresh refusal reasons, as [`GrantRefusal::as_str`] names them.
const REFUSAL_REASONS: &[&str] = &["reused", "revoked", "expired", "unknown", "invalid"];

/// The installed recorder: what `GET /metrics` renders.
#[derive(Clone)]
pub(crate) struct Exporter {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}

impl Exporter {
    /// Installs the Prometheus recorder as the process's `metrics` recorder
    /// and declares every metric (the counters at 0, so that `rate()` and
    /// `increase()` see a series from the start).
    pub(crate) fn install() -> Result<Exporter, CliError> {
        let handle = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .and_then(PrometheusBuilder::install_recorder)
            .map_err(|e| CliError::io(format!("cannot set up the metrics recorder: {e}")))?;
        describe();
        counter!(TOKENS_ISSUED).absolute(0);
        counter!(TOKENS_REFRESHED).absolute(0);
        for reason in REFUSAL_REASONS {
            counter!(REFRESH_REFUSED, "reason" => *reason).absolute(0);
        }
        for result in ["revoked", "not_active", "invalid", "error"] {
            counter!(REVOCATIONS, "result" => result).absolute(0);
        }
        for by in ["session_id", "subject"] {
            counter!(ADMIN_SESSIONS_REVOKED, "by" => by).absolute(0);
        }
        for result in ["active", "inactive", "error"] {
            counter!(INTROSPECTIONS, "result" => result).absolute(0);
        }
        counter!(ACCESS_REJECTED, "kind" => "missing").absolute(0);
        for route in ["/token", "/introspect"] {
            for reason in ["missing", "wrong"] {
                counter!(AUTH_FAILURES, "route" => route, "reason" => reason).absolute(0);
            }
            counter!(AUTH_RATE_LIMITED, "route" => route).absolute(0);
        }
        counter!(KEY_ROTATIONS).absolute(0);
        counter!(KEY_RETIREMENTS).absolute(0);
        Ok(Exporter { handle })
    }

    /// Serves `GET /metrics` on `listener` until `stop` completes, with the
    /// same connection limits as the public listener.
    pub(crate) async fn serve(
        self,
        listener: tokio::net::TcpListener,
        limits: super::connections::Limits,
        stop: impl std::future::Future<Output = ()>,
    ) {
        // The exporter folds histogram samples and drops idle series on
        // upkeep; rendering does it too, but an unscraped instance must not grow.
        let upkeep = {
            let handle = self.handle.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(Duration::from_secs(5));
                loop {
                    ticks.tick().await;
                    handle.run_upkeep();
                }
            })
        };
        let handle = self.handle;
        let app = Router::new()
            .route(
                "/metrics",
                get(move || {
                    let handle = handle.clone();
                    async move {
                        (
                            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                            handle.render(),
                        )
                    }
                }),
            )
            .fallback(|| async { (StatusCode::NOT_FOUND, "metrics are at /metrics\n") });
        super::connections::serve(listener, app, None, Arc::from([]), limits, stop).await;
        upkeep.abort();
    }
}

fn describe() {
    describe_counter!(
        TOKENS_ISSUED,
        "Token pairs issued (POST /token with the admin token)."
    );
    describe_counter!(
        TOKENS_REFRESHED,
        "Refresh grants answered with a new token pair."
    );
    describe_counter!(
        REFRESH_REFUSED,
        "Refresh grants refused (invalid_grant), by reason: reused, revoked, expired, unknown, invalid."
    );
    describe_counter!(
        ADMIN_SESSIONS_REVOKED,
        "Live sessions ended by an administrator, by what named them: session_id (DELETE \
         /sessions/{sid}) or subject (POST /sessions/revoke, logout everywhere)."
    );
    describe_counter!(
        REVOCATIONS,
        "POST /revoke requests, by result: revoked (a live session ended), not_active (already \
         revoked or gone), invalid (not a refresh token of this service), error (a store failed)."
    );
    describe_counter!(
        INTROSPECTIONS,
        "POST /introspect answers to authenticated requests, by result: active, inactive, error."
    );
    describe_counter!(
        ACCESS_REJECTED,
        "Access tokens refused at /userinfo, by kind (missing, or the verifier's error kind, e.g. expired, invalid_signature)."
    );
    describe_counter!(
        AUTH_FAILURES,
        "Failed admin or introspection authentications, by route and reason (missing, wrong)."
    );
    describe_counter!(
        AUTH_RATE_LIMITED,
        "Admin or introspection requests refused with 429 by the per-address limit on failed authentications."
    );
    describe_gauge!(
        AUTH_LIMIT_TRACKED,
        "Client addresses the failed-authentication limit currently tracks."
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request duration, by matched route (unmatched: no route) and status class."
    );
    describe_histogram!(
        STORE_DURATION,
        metrics::Unit::Seconds,
        "Duration of the token service calls the handlers make (key store and refresh store work), by operation."
    );
    describe_gauge!(
        KEY_AGE,
        metrics::Unit::Seconds,
        "Seconds since the active signing key started signing."
    );
    describe_gauge!(
        ROTATION_DUE_IN,
        metrics::Unit::Seconds,
        "Seconds until the next scheduled key rotation; negative when it is overdue (rotation stalled)."
    );
    describe_gauge!(
        AUDIT_FINDINGS,
        "Findings of the key store's audit against its rotation policy (jwtkit store audit); 0 when clean."
    );
    describe_gauge!(
        KEYS_OBSERVED_AT,
        metrics::Unit::Seconds,
        "Unix time at which the key gauges were last updated from the key store."
    );
    describe_counter!(
        KEY_ROTATIONS,
        "Changes of the active signing key observed by this instance (its own rotations and other instances')."
    );
    describe_counter!(
        KEY_RETIREMENTS,
        "Signing keys observed leaving the JWKS (retired) by this instance."
    );
}

/// The status classes of [`HTTP_DURATION`]'s `status` label.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The histograms of [`HTTP_DURATION`], resolved once per route and status
/// class: a request records into a handle it finds by the matched route,
/// with no label to build and no registry lookup on the way (those cost
/// /userinfo a few per cent of its throughput).
#[derive(Debug)]
pub(crate) struct RequestMetrics {
    by_route: std::collections::HashMap<&'static str, [metrics::Histogram; 5]>,
    /// The patterns with a `{name}` segment, for [`route_of`](Self::route_of).
    with_parameters: Vec<&'static str>,
}

impl RequestMetrics {
    /// Resolves the histograms of `routes` (the router's patterns) and of
    /// `unmatched`; a route missing from the list is recorded all the same,
    /// through the registry.
    pub(crate) fn new(routes: &[&'static str]) -> Arc<Self> {
        let by_route = routes
            .iter()
            .chain(std::iter::once(&"unmatched"))
            .map(|route| {
                let handles = STATUS_CLASSES
                    .map(|status| histogram!(HTTP_DURATION, "route" => *route, "status" => status));
                (*route, handles)
            })
            .collect();
        let with_parameters = routes.iter().copied().filter(|r| r.contains('{')).collect();
        Arc::new(RequestMetrics {
            by_route,
            with_parameters,
        })
    }
}

impl RequestMetrics {
    /// The route pattern `path` is served by, as the router matches it:
    /// a pattern itself, or a pattern with `{name}` segments whose other
    /// segments match; `unmatched` for any other path. Never the raw path,
    /// which could carry a token and has no bound on its values.
    pub(crate) fn route_of(&self, path: &str) -> &'static str {
        if let Some((route, _)) = self.by_route.get_key_value(path) {
            return route;
        }
        self.with_parameters
            .iter()
            .copied()
            .find(|pattern| {
                let mut want = pattern.split('/');
                let mut have = path.split('/');
                loop {
                    match (want.next(), have.next()) {
                        (None, None) => return true,
                        (Some(w), Some(h)) if w.starts_with('{') => {
                            if h.is_empty() {
                                return false;
                            }
                        }
                        (Some(w), Some(h)) if w == h => {}
                        _ => return false,
                    }
                }
            })
            .unwrap_or("unmatched")
    }

    /// Records a request to `route` (from [`route_of`](Self::route_of))
    /// that was answered `response` after `elapsed`, by status class; and
    /// counts the refusals of the bearer-token layer in front of
    /// `/userinfo`, by the kind its challenge names (`error_description="the
    /// access token was refused: KIND"`), or `missing` without a token.
    ///
    /// Called by the connection's service around the whole router (see
    /// `connections.rs`), not by a layer inside it: a router layer wraps
    /// every route, and its per-request clone and boxed future cost
    /// `/userinfo` about 6 % of its throughput.
    pub(crate) fn record(&self, route: &'static str, response: &Response, elapsed: Duration) {
        let class = match response.status().as_u16() {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        match self.by_route.get(route) {
            Some(handles) => handles[class].record(elapsed),
            None => histogram!(HTTP_DURATION, "route" => route, "status" => STATUS_CLASSES[class])
                .record(elapsed),
        }
        if route == "/userinfo" && response.status() == StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            counter!(ACCESS_REJECTED, "kind" => rejection_kind(challenge)).increment(1);
        }
    }
}

/// The kind in a `WWW-Authenticate` challenge of `BearerAuthLayer`. Only
/// a short snake_case name becomes a label value: anything else is `other`,
/// so the label's values stay few whatever a layer writes.
fn rejection_kind(challenge: &str) -> String {
    const MARK: &str = "refused: ";
    let Some(at) = challenge.find(MARK) else {
        return if challenge.contains("error=") {
            "other".into()
        } else {
            "missing".into()
        };
    };
    let rest = &challenge[at + MARK.len()..];
    let kind = rest.split('"').next().unwrap_or("");
    if !kind.is_empty()
        && kind.len() <= 32
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        kind.to_owned()
    } else {
        "other".into()
    }
}

/// Times a token service call for [`STORE_DURATION`].
pub(crate) struct StoreTimer {
    operation: &'static str,
    start: Instant,
}

impl StoreTimer {
    /// Starts timing `operation` (`issue`, `refresh`, `revoke`, `introspect`, `jwks`, `health`).
    pub(crate) fn start(operation: &'static str) -> Self {
        StoreTimer {
            operation,
            start: Instant::now(),
        }
    }
}

impl Drop for StoreTimer {
    fn drop(&mut self) {
        histogram!(STORE_DURATION, "operation" => self.operation).record(self.start.elapsed());
    }
}

/// Counts the outcome of a refresh grant.
pub(crate) fn refresh_outcome(result: &Result<jwtkit::TokenPair, Error>) {
    match result {
        Ok(_) => counter!(TOKENS_REFRESHED).increment(1),
        Err(e) => refresh_refused(e),
    }
}

/// Counts a refresh grant refused (an invalid grant; other errors are not
/// refusals).
pub(crate) fn refresh_refused(error: &Error) {
    if let Error::InvalidGrant { reason } = error {
        counter!(REFRESH_REFUSED, "reason" => refusal_label(reason)).increment(1);
    }
}

/// The label of a refusal: one of [`REFUSAL_REASONS`] (a reason a newer
/// library adds counts as `invalid` until it is listed here).
fn refusal_label(reason: &GrantRefusal) -> &'static str {
    let name = reason.as_str();
    REFUSAL_REASONS
        .iter()
        .copied()
        .find(|r| *r == name)
        .unwrap_or("invalid")
}

/// Updates the key gauges from the key store every `interval` (the
/// maintenance interval), and prunes the brute-force limiter's tables.
/// Rotations and retirements are counted by comparing what one look sees
/// with the previous one: whichever instance rotated, every instance sees it.
pub(crate) fn spawn_observer(
    tokens: TokenService,
    interval: Duration,
    limiter: Option<Arc<AuthFailureLimiter>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = KeysSeen::default();
        loop {
            ticks.tick().await;
            if let Err(e) = seen.observe(&tokens).await {
                tracing::warn!(error = %e, retryable = e.is_retryable(),
                    "cannot read the key store for the key metrics; retrying at the next tick");
            }
            if let Some(limiter) = &limiter {
                limiter.prune();
                gauge!(AUTH_LIMIT_TRACKED).set(limiter.tracked() as f64);
            }
        }
    })
}

/// What the previous look at the key store found.
#[derive(Debug, Default)]
struct KeysSeen {
    /// The active key's kid; `None` before the first look.
    active: Option<String>,
    /// The kids that were published (pending, active, retiring).
    published: HashSet<String>,
}

impl KeysSeen {
    async fn observe(&mut self, tokens: &TokenService) -> Result<(), jwt_keys::Error> {
        let store = tokens.key_store();
        let records = store.list().await?;
        // The audit's `next_rotation_at` is `jwtkit store audit`'s: the
        // later of "rotate_after since activation" and "pending key
        // published for prepublish".
        let audit = store.audit().await?;
        let now = audit.now;
        let active = records.iter().find(|r| r.state_at(now) == KeyState::Active);
        match active.and_then(|r| r.activated_at.or(r.created_at)) {
            Some(since) => gauge!(KEY_AGE).set((now - since) as f64),
            None => gauge!(KEY_AGE).set(f64::NAN),
        }
        match audit.next_rotation_at {
            Some(at) => gauge!(ROTATION_DUE_IN).set((at - now) as f64),
            None => gauge!(ROTATION_DUE_IN).set(f64::NAN),
        }
        gauge!(AUDIT_FINDINGS).set(audit.findings.len() as f64);
        gauge!(KEYS_OBSERVED_AT).set(now as f64);
        let (rotations, retirements) = self.changes(now, &records);
        counter!(KEY_ROTATIONS).increment(rotations);
        counter!(KEY_RETIREMENTS).increment(retirements);
        Ok(())
    }

    /// What changed since the previous look: whether the active key is
    /// another one (at most one rotation is seen per look), and how many
    /// keys that were published are no longer. The first look, and a look
    /// that finds no active key, count nothing.
    fn changes(
        &mut self,
        now: jwt_core::time::UnixTime,
        records: &[jwt_keys::KeyRecord],
    ) -> (u64, u64) {
        let active = records
            .iter()
            .find(|r| r.state_at(now) == KeyState::Active)
            .map(|r| r.kid.clone());
        let published: HashSet<String> = records
            .iter()
            .filter(|r| r.state_at(now).is_published())
            .map(|r| r.kid.clone())
            .collect();
        if active.is_none() {
            return (0, 0);
        }
        let mut changes = (0, 0);
        if self.active.is_some() {
            changes.0 = u64::from(active != self.active);
            changes.1 = self.published.difference(&published).count() as u64;
        }
        self.active = active;
        self.published = published;
        changes
    }
}

/// Refuses a metrics address that would share the public listener's port:
/// metrics must never be served where the public endpoints are.
pub(crate) fn check_addresses(public: SocketAddr, metrics: SocketAddr) -> Result<(), CliError> {
    let same_port = public.port() == metrics.port() && public.port() != 0;
    let overlapping = public.ip() == metrics.ip()
        || public.ip().is_unspecified()
        || metrics.ip().is_unspecified();
    if same_port && overlapping {
        return Err(CliError::config(format!(
            "--metrics-listen {metrics} is the address of --listen {public}; metrics must have \
             a listener of their own, never the public one: choose another port (e.g. \
             --metrics-listen 127.0.0.1:9090)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests are labelled by the route pattern the router matches, never
    /// by their raw path.
    #[test]
    fn requests_are_labelled_by_their_route_pattern() {
        let metrics = RequestMetrics::new(super::super::http::ROUTES);
        for (path, route) in [
            ("/token", "/token"),
            ("/userinfo", "/userinfo"),
            ("/sessions", "/sessions"),
            ("/sessions/revoke", "/sessions/revoke"),
            ("/sessions/AAAAAAAAAAAAAAAAAAAAAA", "/sessions/{sid}"),
            ("/sessions/", "unmatched"),
            ("/sessions/a/b", "unmatched"),
            ("/userinfo/eyJhbGciOi.secret", "unmatched"),
            ("/token/", "unmatched"),
            ("/", "unmatched"),
            ("", "unmatched"),
        ] {
            assert_eq!(metrics.route_of(path), route, "{path:?}");
        }
    }

    #[test]
    fn rejection_kinds_come_from_the_challenge_and_stay_few() {
        assert_eq!(rejection_kind("Bearer"), "missing");
        assert_eq!(
            rejection_kind(
                "Bearer error=\"invalid_token\", error_description=\"the access token was refused: expired\""
            ),
            "expired"
        );
        assert_eq!(
            rejection_kind("Bearer error=\"invalid_token\", error_description=\"the access token was refused: Bad Thing\""),
            "other"
        );
        assert_eq!(rejection_kind("Bearer error=\"invalid_token\""), "other");
    }

    #[test]
    fn refusal_labels_are_the_documented_reasons() {
        assert_eq!(refusal_label(&GrantRefusal::Reused), "reused");
        assert_eq!(refusal_label(&GrantRefusal::Revoked), "revoked");
        assert_eq!(refusal_label(&GrantRefusal::Expired), "expired");
        assert_eq!(refusal_label(&GrantRefusal::Unknown), "unknown");
        assert_eq!(
            refusal_label(&GrantRefusal::Invalid(
                jwt_core::ErrorKind::InvalidSignature
            )),
            "invalid"
        );
    }

    /// Rotations and retirements are told from two looks at the key list.
    #[test]
    fn rotations_and_retirements_are_counted_between_looks() {
        use jwt_core::Algorithm;
        use jwt_keys::KeyRecord;
        let key = |kid: &str, state| KeyRecord::new(kid, Algorithm::ES256, state);
        let mut seen = KeysSeen::default();
        let first = [key("a", KeyState::Active), key("b", KeyState::Pending)];
        assert_eq!(
            seen.changes(100, &first),
            (0, 0),
            "the first look is the baseline"
        );
        assert_eq!(seen.changes(160, &first), (0, 0));
        // b signs, a retires (still published), c is the new pending key.
        let rotated = [
            key("a", KeyState::Retiring),
            key("b", KeyState::Active),
            key("c", KeyState::Pending),
        ];
        assert_eq!(seen.changes(220, &rotated), (1, 0));
        // a's grace ends: by its retire_at (before any write records it).
        let mut a = key("a", KeyState::Retiring);
        a.retire_at = Some(250);
        let graced = [a, key("b", KeyState::Active), key("c", KeyState::Pending)];
        assert_eq!(seen.changes(280, &graced), (0, 1));
        // A look that finds no active key (a store being repaired) counts nothing
        // and keeps the previous baseline.
        assert_eq!(seen.changes(340, &[key("c", KeyState::Pending)]), (0, 0));
        // Other instances rotated twice meanwhile: one rotation seen, b and c gone.
        let later = [key("d", KeyState::Active), key("e", KeyState::Pending)];
        assert_eq!(seen.changes(400, &later), (1, 2));
    }

    #[test]
    fn the_metrics_address_may_not_be_the_public_one() {
        let public: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let err = check_addresses(public, "127.0.0.1:8080".parse().unwrap()).unwrap_err();
        assert_eq!(err.kind(), "config");
        assert!(
            err.message().contains("--metrics-listen"),
            "{}",
            err.message()
        );
        assert!(check_addresses(public, "0.0.0.0:8080".parse().unwrap()).is_err());
        assert!(check_addresses("0.0.0.0:8080".parse().unwrap(), public).is_err());
        assert!(check_addresses(public, "127.0.0.1:9090".parse().unwrap()).is_ok());
        assert!(check_addresses(public, "10.0.0.1:8080".parse().unwrap()).is_ok());
        // Two port-0 listeners get two ports.
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(check_addresses(any, any).is_ok());
    }
}
