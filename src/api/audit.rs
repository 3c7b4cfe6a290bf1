//! `GET /api/v1/audit?since=…&until=…&user=…&action=…&limit=…`: the audit log (operator and
//! above, see [`crate::auth::AUDIT_READ_ROLE`]). `since` and `until` are ms since the Unix
//! epoch, both inclusive; the newest `limit` matching entries (default 100, at most 10,000)
//! come back in time order. With storage the whole log is searched, else what this process
//! recorded.
//!
//! Admins only: `GET /api/v1/audit/export?format=csv|jsonl&since&until&lang` (the log as a file,
//! itself audited as `audit_export`) and `GET /api/v1/audit/verify` (the hash chain walked,
//! [`crate::auth::audit_chain`]; audited as `audit_verify`).

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

/// Refuses `since` after `until`.
fn check_range(since: Option<i64>, until: Option<i64>) -> Result<(), ApiError> {
    match (since, until) {
        (Some(s), Some(u)) if s > u => Err(ApiError::bad_request(
            ErrorCode::InvalidRange,
            "`since` is after `until`",
        )),
        _ => Ok(()),
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
    check_range(q.since, q.until)?;
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

/// Most entries one export holds (narrow `since`/`until` beyond it).
const MAX_EXPORT: usize = 500_000;

/// `GET /api/v1/audit/export`'s query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub format: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub lang: Option<String>,
}

pub async fn export(
    state: web::Data<ApiState>,
    req: actix_web::HttpRequest,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    use crate::auth::audit_export::{render, ExportFormat};
    let who = super::users::caller(&req)?;
    let format_name = q.format.as_deref().unwrap_or("csv");
    let format = ExportFormat::parse(format_name).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("format must be csv or jsonl (got {format_name:?})"),
        )
    })?;
    check_range(q.since, q.until)?;
    let english =
        super::users::language_of(&state, &who, q.lang.as_deref())? == crate::auth::Language::En;
    let query = AuditQuery {
        since_ms: q.since,
        until_ms: q.until,
        limit: MAX_EXPORT,
        ..Default::default()
    };
    let entries = state
        .security
        .audit
        .query(&query)
        .await
        .map_err(unavailable)?;
    let range = match (q.since, q.until) {
        (None, None) => "everything".to_owned(),
        (s, u) => format!(
            "{} to {}",
            s.map_or_else(|| "the start".to_owned(), |s| s.to_string()),
            u.map_or_else(|| "now".to_owned(), |u| u.to_string())
        ),
    };
    let bytes = render(&entries, format, english);
    let (detail, ok) = match &bytes {
        Ok(_) => (
            format!("{} entries as {format_name}, {range}", entries.len()),
            true,
        ),
        Err(e) => (format!("failed: {e}"), false),
    };
    state
        .security
        .record(&who, "audit_export", "audit", detail, ok);
    let bytes = bytes.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CONTENT_TYPE, format.content_type()))
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"cistern-audit.{}\"",
                format.extension()
            ),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(bytes))
}

fn unavailable(e: crate::store::StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::StoreUnavailable,
        e.to_string(),
    )
}

/// `GET /api/v1/audit/verify`: the chain walked; `200` with `intact` either way (a broken chain
/// is a finding, not a failed request).
pub async fn verify(
    state: web::Data<ApiState>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let who = super::users::caller(&req)?;
    let report = state.security.audit.verify().await.map_err(unavailable)?;
    let detail = match &report.first_break {
        None => format!("intact: {} entries checked", report.checked),
        Some(b) => format!(
            "broken: {} break(s), first {} at entry {}",
            report.breaks,
            b.kind.as_str(),
            b.seq.map_or_else(|| "?".to_owned(), |s| s.to_string())
        ),
    };
    state
        .security
        .record(&who, "audit_verify", "audit", detail, true);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "report": report,
        "summary": report.to_string(),
    })))
}
