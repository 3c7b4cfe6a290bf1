//! Notification deliveries over REST, so that an order's or an alarm's page shows who was told,
//! on which channel, and whether it arrived:
//!
//! - `GET /api/v1/notifications?order=WO-…` — an order's deliveries, newest first;
//! - `GET /api/v1/notifications?alarm=XM-0001/pump_fault@P1` — an alarm's (its escalations,
//!   and those of the orders it opened);
//! - `GET /api/v1/notifications?status=failed` — the recently failed ones;
//! - without a filter, the most recent. `limit` ≤ 1,000, default 100. Any signed-in user.

use super::error::{ApiError, ErrorCode};
use super::users::caller;
use super::ApiState;
use crate::notify::{Listing, NotifyError};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    order: Option<String>,
    alarm: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
}

impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> Self {
        match e {
            NotifyError::Records(r) if r.is_retryable() => ApiError::store_unavailable(r),
            other => ApiError::internal(other.to_string()),
        }
    }
}

pub async fn list(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller(&req)?;
    let notifier = state.notify.as_ref().ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::NoNotifications,
            "this node keeps no notification outbox (it needs a store)",
        )
    })?;
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let what = match (q.order, q.alarm, q.status.as_deref()) {
        (Some(o), None, None) if !o.is_empty() => Listing::Order(o),
        (None, Some(a), None) if !a.is_empty() => Listing::Alarm(a),
        (None, None, Some("failed")) => Listing::Failed,
        (None, None, None) => Listing::Recent,
        _ => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "give one of order=ID, alarm=ID or status=failed",
            ))
        }
    };
    let deliveries = notifier.list(&what, limit).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "notifications": deliveries })))
}
