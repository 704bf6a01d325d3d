//! Audit events of the HTTP edge: structured `tracing` records under the
//! target `jwtkit::audit` with a stable `event` field, so that a log
//! pipeline can route them to a SIEM on their own (`JWTKIT_LOG` filter
//! `jwtkit::audit=info`). The library emits the key and session events
//! under the same target; these are the ones only the HTTP side sees.
//!
//! Never a token, a secret or a claim value: the subject of an issued
//! token is left out (a hash of an e-mail address is a dictionary lookup
//! away from it); the session id, which is also the token's `sid`, ties the
//! event to the session's later events and to the login service's own log.

use std::net::IpAddr;
use std::time::Duration;

/// The tracing target of every audit event.
pub(crate) const TARGET: &str = "jwtkit::audit";

/// Why an admin or introspection authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A bearer token that is not the expected one.
    Wrong,
    /// The introspection token on a route that needs the admin token: a
    /// known credential used where it has no right, not a guess (it does not
    /// count toward the per-address limit).
    NotAllowed,
}

impl AuthFailure {
    /// The stable name, as the `reason` field and metrics label give it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Wrong => "wrong",
            AuthFailure::NotAllowed => "not_allowed",
        }
    }
}

/// `admin.token_issued`: the admin issued a token pair for a new session.
pub(crate) fn token_issued(client: IpAddr, session: &str) {
    tracing::info!(target: TARGET, event = "admin.token_issued", client = %client,
        route = "/token", session, "admin issued a token pair");
}

/// `admin.sessions_revoked`: an administrator ended sessions through
/// `route` (`/sessions/{sid}` or `/sessions/revoke`): who asked (the client
/// address) and how many live sessions ended. The library's own
/// `session.revoked` and `subject.revoked` records say which ones.
pub(crate) fn sessions_revoked(client: IpAddr, route: &'static str, revoked: usize) {
    tracing::info!(target: TARGET, event = "admin.sessions_revoked", client = %client,
        route, revoked, "an administrator ended sessions");
}

/// `admin.auth_failed`: a request to `route` without the admin (or
/// introspection) token. `locked_for` is set when this failure used up
/// the address's allowance: its admin and introspection requests are now
/// refused with `429` for that long (those refusals are counted in the
/// metrics, not logged one by one).
pub(crate) fn auth_failed(
    client: IpAddr,
    route: &'static str,
    reason: AuthFailure,
    locked_for: Option<Duration>,
) {
    match locked_for {
        None => tracing::warn!(target: TARGET, event = "admin.auth_failed", client = %client,
            route, reason = reason.as_str(), rate_limited = false,
            "authentication failed: not the admin or introspection token"),
        Some(wait) => tracing::warn!(target: TARGET, event = "admin.auth_failed", client = %client,
            route, reason = reason.as_str(), rate_limited = true,
            locked_secs = super::limit::retry_after_secs(wait),
            "authentication failed; too many failures from this address: its admin and \
             introspection requests are refused (429) for a while"),
    }
}
