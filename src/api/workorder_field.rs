//! The field side of work orders over REST (kept apart from the dispatcher's list and
//! commands in `workorders.rs`):
//!
//! - `POST /api/v1/workorders/{id}/attachments?name=IMG_0001.jpg` — a photo as the raw request
//!   body (any `Content-Type`: the content decides). JPEG, PNG or WebP by their first bytes,
//!   else 415 `not_an_image`; over `[workorders] max_attachment_bytes` (8 MiB) 413
//!   `payload_too_large` (the body read to its end and dropped, so that the client sees the
//!   answer rather than a reset; past 32 MiB more the connection is closed); empty 400
//!   `missing_body`. The assignee or a dispatcher, on an open order
//!   (403 `not_assignee`, 409 `invalid_transition`, 409 `too_many_attachments` past 20).
//!   Answers 201 with the listing `{id, name, content_type, size, chunks, by, at}`; audited as
//!   `workorder_attach`, taken or refused;
//! - `GET /api/v1/workorders/{id}/attachments/{n}` — the bytes, with their `Content-Type`;
//! - `GET /api/v1/workorders/{id}/trail` — the positions of its transitions and the reports on
//!   the way, in time order;
//! - `POST /api/v1/crews/me/position` `{lat, lon, accuracy_m?}` — the caller's position, taken
//!   only while they have an order en route or on site (409 `no_active_order`), at most one per
//!   4 s (429 `too_many_requests` with `Retry-After`), validated (422 `invalid_position`);
//! - `GET /api/v1/crews` — every crew member's last position with their order.

use super::error::{ApiError, ErrorCode};
use super::users::caller;
use super::workorders::{order_id, service};
use super::ApiState;
use crate::auth::{Principal, Role};
use crate::business::workorders::attachments::{AttachmentError, AttachmentId, Upload};
use crate::business::workorders::model::{Caller, Position};
use crate::business::workorders::positions::PositionError;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use serde::Deserialize;

/// The API's answer to a refused upload.
pub fn attachment_refused(e: &AttachmentError) -> ApiError {
    let message = e.to_string();
    match e {
        AttachmentError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            message,
        ),
        AttachmentError::Empty => ApiError::bad_request(ErrorCode::MissingBody, message),
        AttachmentError::NotAnImage => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::NotAnImage,
            message,
        ),
        AttachmentError::Unknown { .. } => {
            ApiError::not_found(ErrorCode::UnknownAttachment, message)
        }
    }
}

/// The API's answer to a refused position report.
pub fn position_refused(e: &PositionError) -> ApiError {
    let message = e.to_string();
    match e {
        PositionError::Invalid => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidPosition,
            message,
        ),
        PositionError::NoActiveOrder { .. } => {
            ApiError::new(StatusCode::CONFLICT, ErrorCode::NoActiveOrder, message)
        }
        PositionError::TooFrequent { retry_after_ms } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            message,
        )
        .retry_after(std::time::Duration::from_millis(
            u64::try_from(*retry_after_ms).unwrap_or(1_000).max(1_000),
        )),
    }
}

fn crew_of(who: &Principal) -> Caller {
    Caller {
        user: who.user.clone(),
        dispatcher: who.role >= Role::Operator,
    }
}

fn audit(
    state: &ApiState,
    who: &Principal,
    target: &str,
    detail: String,
    result: &Result<impl Sized, ApiError>,
) {
    let (detail, ok) = super::audit::outcome(result, |_| detail);
    state
        .security
        .record(who, "workorder_attach", target, detail, ok);
}

/// `POST /api/v1/workorders/{id}/attachments` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachQuery {
    pub name: Option<String>,
}

/// How much of an oversized upload is read (and dropped) before it is refused, so that the
/// client, which sends its whole body before it reads the answer, gets the 413 rather than a
/// connection reset. Beyond it the connection is closed with the answer unread.
const DRAIN_BYTES: u64 = 32 * 1024 * 1024;

/// Reads the body up to `max` bytes. An oversized one (by `Content-Length`, or as it streams)
/// is read to its end but not kept (up to [`DRAIN_BYTES`] more) and refused with 413.
pub(super) async fn body_within(
    req: &HttpRequest,
    mut payload: web::Payload,
    max: u64,
) -> Result<Vec<u8>, ApiError> {
    let too_large = |size: u64| attachment_refused(&AttachmentError::TooLarge { size, max });
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > max.saturating_add(DRAIN_BYTES)) {
        return Err(too_large(n));
    }
    let keep = declared.is_none_or(|n| n <= max);
    let mut body = Vec::with_capacity(if keep {
        usize::try_from(declared.unwrap_or(0)).unwrap_or(0)
    } else {
        0
    });
    let mut seen: u64 = 0;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(ErrorCode::MissingBody, format!("the upload broke off: {e}"))
        })?;
        seen += chunk.len() as u64;
        if seen > max.saturating_add(DRAIN_BYTES) {
            return Err(too_large(seen));
        }
        if keep && seen <= max {
            body.extend_from_slice(&chunk);
        }
    }
    if seen > max {
        return Err(too_large(seen));
    }
    Ok(body)
}

pub async fn attach(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<AttachQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let raw_id = path.into_inner();
    let result = async {
        let id = order_id(&raw_id)?;
        let bytes = body_within(&req, payload, svc.max_attachment_bytes()).await?;
        let upload = Upload::check(bytes, query.name.as_deref(), svc.max_attachment_bytes())
            .map_err(|e| attachment_refused(&e))?;
        Ok(svc.attach(&id, upload, &crew_of(&who)).await?)
    }
    .await;
    let detail = match &result {
        Ok(a) => format!("{} {} ({} bytes)", a.id, a.content_type, a.size),
        Err(_) => String::new(),
    };
    audit(&state, &who, &raw_id, detail, &result);
    let attachment = result?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "attachment": attachment })))
}

pub async fn attachment(
    state: web::Data<ApiState>,
    path: web::Path<(String, u32)>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let (raw_id, n) = path.into_inner();
    let id = order_id(&raw_id)?;
    let (meta, bytes) = svc.attachment(&id, AttachmentId(n)).await?;
    // The name as an RFC 5987 parameter: any language, no header injection.
    let name: String = meta
        .name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, meta.content_type.as_str()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename*=UTF-8''{name}"),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, max-age=86400"))
        .body(bytes))
}

pub async fn trail(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let id = order_id(&path)?;
    let order = svc.get(&id).await?;
    let trail = svc.positions().trail(&id, &order.transitions).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "order": id,
        "room": order.room,
        "assignee": order.assignee,
        "trail": trail,
    })))
}

pub async fn crews(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "crews": svc.positions().last(),
        "now": svc.now(),
    })))
}

pub async fn report_position(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<Position>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let report = svc.report_position(&who.user, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "position": report })))
}
