//! Sessions per user, for administrators (issue 15 item 4): list a
//! subject's live sessions, revoke one by its id, revoke all of a subject's
//! (logout everywhere). Every route needs the admin token, behind the same
//! per-address limit on failed authentications as `/token`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::metrics as m;
use super::{gate, no_store, oauth_error, service_error, AppState, AuthFailure, ClientAddr, Gate};

/// `None` when the admin token is right; else the answer.
fn admin_only(
    state: &AppState,
    client: std::net::IpAddr,
    route: &'static str,
    headers: &HeaderMap,
) -> Option<Response> {
    match gate(state, client, route, headers, || {
        super::is_admin(state, headers)
    }) {
        Gate::Allowed => None,
        Gate::Limited(response) => Some(response),
        Gate::Refused(AuthFailure::NotAllowed) => Some(super::introspection_token_not_allowed()),
        Gate::Refused(reason) => Some(sessions_refused(reason == AuthFailure::Wrong)),
    }
}

/// The answer to a sessions request without the admin token (RFC 6750 §3).
fn sessions_refused(presented: bool) -> Response {
    let (error, what) = super::admin_token_refusal(presented);
    let mut response = oauth_error(
        StatusCode::UNAUTHORIZED,
        error,
        &format!(
            "{what}; listing and revoking sessions needs `Authorization: Bearer $JWTKIT_ADMIN_TOKEN` \
             (the introspection token may only introspect)"
        ),
    );
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Sessions in one answer of `GET /sessions` unless `limit` says otherwise.
pub(crate) const DEFAULT_SESSIONS_PAGE: usize = 100;
/// The largest `limit` of `GET /sessions`.
pub(crate) const MAX_SESSIONS_PAGE: usize = 1000;

/// The query of `GET /sessions`.
#[derive(Deserialize)]
pub(super) struct SessionsQuery {
    sub: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// Where a page of sessions starts: after this (created, sid) in the
/// listing's order. Written as `CREATED.SID` in `next` and `after`.
struct Cursor {
    created_at: i64,
    sid: String,
}

impl Cursor {
    /// Only what [`of`](Self::of) writes: digits, a dot, a session id.
    fn parse(text: &str) -> Option<Cursor> {
        let (created, sid) = text.split_once('.')?;
        if created.is_empty() || created.len() > 19 || !created.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let created_at = created.parse().ok()?;
        jwtkit::refresh::FamilyId::parse(sid).ok()?;
        Some(Cursor {
            created_at,
            sid: sid.to_owned(),
        })
    }

    fn of(session: &jwtkit::SessionInfo) -> String {
        format!("{}.{}", session.created_at, session.family)
    }
}

fn bad_query(detail: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!(
            "{detail}: GET /sessions?sub=<the sub of its tokens>[&limit=1..{MAX_SESSIONS_PAGE}]\
             [&after=<the `next` of the previous answer>]"
        ),
    )
}

/// `GET /sessions?sub=S[&limit=N][&after=CURSOR]`: the subject's live
/// sessions, oldest first, at most `limit` (default
/// [`DEFAULT_SESSIONS_PAGE`], at most [`MAX_SESSIONS_PAGE`]) per answer;
/// `next` (present when more follow) is the `after` of the next page, and
/// `total` counts the subject's live sessions.
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    query: Result<Query<SessionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(refused) = admin_only(&state, client, "/sessions", &headers) {
        return refused;
    }
    let Ok(Query(query)) = query else {
        return bad_query("the query string is unreadable");
    };
    let sub = match query.sub {
        Some(sub) if !sub.is_empty() => sub,
        _ => return bad_query("name the subject"),
    };
    let limit = match query.limit.as_deref().map(str::parse::<usize>) {
        None => DEFAULT_SESSIONS_PAGE,
        Some(Ok(n)) if (1..=MAX_SESSIONS_PAGE).contains(&n) => n,
        Some(_) => return bad_query("`limit` must be a whole number from 1 to 1000"),
    };
    let after = match query.after.as_deref().map(Cursor::parse) {
        None => None,
        Some(Some(cursor)) => Some(cursor),
        Some(None) => return bad_query("`after` is not a `next` value of an earlier answer"),
    };
    let mut sessions = match state.tokens.sessions(&sub).await {
        Ok(sessions) => sessions,
        Err(e) => return service_error(&e),
    };
    // The cursor's order, whatever order a store lists them in.
    sessions
        .sort_by(|a, b| (a.created_at, a.family.as_str()).cmp(&(b.created_at, b.family.as_str())));
    let total = sessions.len();
    // The listing is ordered by (created, sid): a page starts after the
    // cursor's place even when that session has ended since.
    let start = after.map_or(0, |c| {
        sessions.partition_point(|s| {
            (s.created_at, s.family.as_str()) <= (c.created_at, c.sid.as_str())
        })
    });
    let page = &sessions[start..sessions.len().min(start.saturating_add(limit))];
    let next = (start + page.len() < total)
        .then(|| page.last().map(Cursor::of))
        .flatten();
    let listed: Vec<Value> = page
        .iter()
        .map(|s| {
            // Kept as the JSON text given at login; shown as JSON.
            let client = s
                .client
                .as_deref()
                .map(|c| serde_json::from_str::<Value>(c).unwrap_or_else(|_| c.into()));
            json!({
                "sid": s.family.to_string(),
                "created_at": s.created_at,
                "last_refreshed_at": s.last_refreshed_at,
                "expires_at": s.expires_at,
                "client": client,
            })
        })
        .collect();
    let mut body = json!({"sub": sub, "sessions": listed, "total": total});
    if let Some(next) = next {
        body["next"] = next.into();
    }
    no_store(Json(body))
}

/// `DELETE /sessions/{sid}`: revokes one session (its refresh tokens stop
/// refreshing; its access tokens are inactive to introspection at once).
pub(super) async fn revoke_one(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Path(sid): Path<String>,
) -> Response {
    if let Some(refused) = admin_only(&state, client, "/sessions/{sid}", &headers) {
        return refused;
    }
    match state.tokens.revoke_session_id(&sid).await {
        Ok(revoked) => {
            if revoked {
                metrics::counter!(m::ADMIN_SESSIONS_REVOKED, "by" => "session_id").increment(1);
            }
            super::audit::sessions_revoked(client, "/sessions/{sid}", usize::from(revoked));
            no_store(Json(json!({"sid": sid, "revoked": revoked})))
        }
        Err(e) => service_error(&e),
    }
}

/// The body of `POST /sessions/revoke`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeSubject {
    sub: String,
}

/// `POST /sessions/revoke` with `{"sub": S}`: revokes every session of the
/// subject (logout everywhere); answers how many were live.
pub(super) async fn revoke_subject(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Result<Json<RevokeSubject>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(refused) = admin_only(&state, client, "/sessions/revoke", &headers) {
        return refused;
    }
    let sub = match body {
        Ok(Json(RevokeSubject { sub })) if !sub.is_empty() => sub,
        Ok(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "`sub` is empty: send {\"sub\": \"<the subject>\"}",
            )
        }
        Err(rejection) => {
            return oauth_error(
                super::rejection_status(rejection.status()),
                "invalid_request",
                &format!(
                    "send application/json {{\"sub\": \"<the subject>\"}}: {}",
                    rejection.body_text()
                ),
            )
        }
    };
    match state.tokens.revoke_subject(&sub).await {
        Ok(n) => {
            metrics::counter!(m::ADMIN_SESSIONS_REVOKED, "by" => "subject").increment(n as u64);
            super::audit::sessions_revoked(client, "/sessions/revoke", n);
            no_store(Json(json!({"sub": sub, "revoked": n})))
        }
        Err(e) => service_error(&e),
    }
}
