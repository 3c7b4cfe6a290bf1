//! `GET /api/v1/audit?since=…&until=…&user=…&action=…&limit=…`: the audit log (operator and
//! above, see [`crate::auth::AUDIT_READ_ROLE`]). `since` and `until` are ms since the Unix
//! epoch, both inclusive; the newest `limit` matching entries (default 100, at most 10,000)
//! come back in time order. With storage the whole log is searched, else what this process
//! recorded.

use super::error::{ApiError, ErrorCode};
use super::ApiState;
use crate::auth::AuditQuery;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

/// What the audit log says of a command's outcome: `(detail, ok)` — `done`'s words when it was
/// taken, the refusal's code and message when not (one wording for every audited route).
pub fn outcome<T>(result: &Result<T, ApiError>, done: impl FnOnce(&T) -> String) -> (String, bool) {
    match result {
        Ok(v) => (done(v), true),
        Err(e) => (format!("refused: {}: {}", e.code, e.message), false),
    }
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

/// The query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub user: Option<String>,
    pub action: Option<String>,
    pub limit: Option<usize>,
}

pub async fn list(
    state: web::Data<ApiState>,
    q: web::Query<Query>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    if let (Some(s), Some(u)) = (q.since, q.until) {
        if s > u {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidRange,
                "`since` is after `until`",
            ));
        }
    }
    let query = AuditQuery {
        since_ms: q.since,
        until_ms: q.until,
        user: q.user.clone(),
        action: q.action.clone(),
        limit,
    };
    let entries = state.security.audit.query(&query).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StoreUnavailable,
            e.to_string(),
        )
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "count": entries.len(), "entries": entries })))
}
