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
        Gate::Refused(reason) => Some(sessions_refused(reason == AuthFailure::Wrong)),
    }
}

/// The answer to a sessions request without the admin token (RFC 6750 §3).
fn sessions_refused(presented: bool) -> Response {
    let (error, what) = if presented {
        ("invalid_token", "the bearer token is not the admin token")
    } else {
        (
            "invalid_request",
            "no admin token (no `Authorization: Bearer …` header)",
        )
    };
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

/// `?sub=` of `GET /sessions`.
#[derive(Deserialize)]
pub(super) struct SubjectQuery {
    sub: Option<String>,
}

/// `GET /sessions?sub=S`: the subject's live sessions, oldest first.
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    query: Result<Query<SubjectQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(refused) = admin_only(&state, client, "/sessions", &headers) {
        return refused;
    }
    let sub = match query {
        Ok(Query(SubjectQuery { sub: Some(sub) })) if !sub.is_empty() => sub,
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "name the subject: GET /sessions?sub=<the sub of its tokens>",
            )
        }
    };
    match state.tokens.sessions(&sub).await {
        Ok(sessions) => {
            let sessions: Vec<Value> = sessions
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
            no_store(Json(json!({"sub": sub, "sessions": sessions})))
        }
        Err(e) => service_error(&e),
    }
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
        Ok(revoked) => no_store(Json(json!({"sid": sid, "revoked": revoked}))),
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
        Ok(n) => no_store(Json(json!({"sub": sub, "revoked": n}))),
        Err(e) => service_error(&e),
    }
}
