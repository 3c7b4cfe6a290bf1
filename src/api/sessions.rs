//! Login sessions and login throttling over REST.
//!
//! - An admin lists every user's sessions, `GET /api/v1/sessions` (`?user=` for one user's),
//!   and ends any of them, `DELETE /api/v1/sessions/{id}`.
//! - A signed-in user lists their own, `GET /api/v1/auth/sessions` (the one asking is marked
//!   `current`), and ends any of them, `DELETE /api/v1/auth/sessions/{id}` (another user's is
//!   unknown to them: 404).
//! - An admin sees this node's throttled logins, `GET /api/v1/auth/throttles`, and clears them,
//!   `POST /api/v1/auth/throttles/unlock` `{user?, address?}` (announced to a cluster's other
//!   nodes).
//!
//! A session is listed with its user, login time, last use, absolute and idle ends, client
//! address and user agent; never its secret. Ending a session and unlocking are audited
//! (`session_end`, `login_unlock`).

use super::error::{ApiError, ErrorCode};
use super::users::{audited, caller};
use super::ApiState;
use crate::auth::SessionView;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::net::IpAddr;

/// `GET /api/v1/sessions` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsQuery {
    #[serde(default)]
    pub user: Option<String>,
}

fn listing(sessions: Vec<SessionView>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "count": sessions.len(), "sessions": sessions }))
}

/// What an audit entry says of an ended session.
fn described(s: &SessionView, by: &str) -> String {
    format!(
        "session {} from {} ended by {by}",
        s.id,
        s.address.as_deref().unwrap_or("an unknown address")
    )
}

pub async fn list(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<SessionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    Ok(listing(
        state
            .security
            .auth
            .sessions(query.user.as_deref(), who.session.as_deref()),
    ))
}

pub async fn end(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    end_one(&state, &req, &id, false).await
}

pub async fn list_own(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    Ok(listing(
        state
            .security
            .auth
            .sessions(Some(&who.user), who.session.as_deref()),
    ))
}

pub async fn end_own(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    end_one(&state, &req, &id, true).await
}

/// Ends session `id`: the caller's own only (`own`), else any (an admin); audited either way.
async fn end_one(
    state: &ApiState,
    req: &HttpRequest,
    id: &str,
    own: bool,
) -> Result<HttpResponse, ApiError> {
    let who = caller(req)?;
    let owner = own.then_some(who.user.as_str());
    let result = state.security.auth.end_session(id, owner).await;
    let (target, detail) = match &result {
        Ok(s) => (
            s.user.clone(),
            described(s, if own { "its user" } else { "an admin" }),
        ),
        Err(_) => (owner.unwrap_or(id).to_owned(), format!("session {id}")),
    };
    let ended = audited(state, &who, "session_end", &target, &detail, result)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ended": ended })))
}

pub async fn throttles(state: web::Data<ApiState>) -> HttpResponse {
    let throttles = state.security.auth.throttles();
    HttpResponse::Ok().json(serde_json::json!({ "count": throttles.len(), "throttles": throttles }))
}

/// `POST /api/v1/auth/throttles/unlock` body: a user, an address, or both (that user from
/// that address).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockBody {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

pub async fn unlock(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<UnlockBody>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    let user = body
        .user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let address: Option<IpAddr> = match body.address.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => Some(a.parse().map_err(|_| {
            ApiError::bad_request(
                ErrorCode::InvalidAddress,
                format!("{a:?} is not an IPv4 or IPv6 address"),
            )
        })?),
    };
    if user.is_none() && address.is_none() {
        return Err(ApiError::bad_request(
            ErrorCode::NothingToChange,
            "give a `user`, an `address`, or both",
        ));
    }
    let target = match (user, address) {
        (Some(u), Some(a)) => format!("{u} from {a}"),
        (Some(u), None) => u.to_owned(),
        (None, Some(a)) => a.to_string(),
        (None, None) => String::new(),
    };
    let result = state.security.auth.unlock(user, address).await;
    let detail = match &result {
        Ok(n) => format!("{n} throttling keys cleared on this node"),
        Err(_) => String::new(),
    };
    let cleared = audited(&state, &who, "login_unlock", &target, &detail, result)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "cleared": cleared })))
}
