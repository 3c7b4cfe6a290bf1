//! Online inspection over REST (see [`crate::business::assets::inspection`]):
//!
//! - `GET /api/v1/inspection-templates`; `GET /api/v1/inspection-plans?zone=&room=` (overdue
//!   first); `GET /api/v1/inspection-coverage` (overall first, then per zone);
//! - `GET /api/v1/inspections?from=&to=&zone=` — the period's report (local days, default the
//!   last 30); `?room=` — a room's inspections, newest first;
//! - `GET /api/v1/inspectors?from=&to=` — per inspector: started, finished, on time,
//!   anomalies, orders, mean minutes (for staff performance);
//! - `POST /api/v1/inspections` `{room, template}` — starts one (operators);
//! - `GET /api/v1/inspections/{id}`;
//! - `POST /api/v1/inspections/{id}/items/{n}` `{status: ok|anomaly, value?, note?, photo?}` (a
//!   photo as a `data:image/…` URL of at most 1 MB: this body may be that large);
//! - `POST /api/v1/inspections/{id}/items/{n}/order` — the anomaly raised as a work order;
//! - `POST /api/v1/inspections/{id}/finish`.
//!
//! Writes are audited as `inspection_start`, `inspection_item`, `inspection_order`,
//! `inspection_finish`. The inspector who started one records it; an admin may too.

use super::error::{ApiError, ErrorCode};
use super::users::caller;
use super::ApiState;
use crate::auth::{Principal, Role};
use crate::business::assets::inspection::service::MAX_PHOTO_BYTES;
use crate::business::assets::inspection::{InspectionError, Inspections, ItemInput};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_schemas::{Date, RoomId};
use serde::Deserialize;
use std::sync::Arc;

fn service(state: &ApiState) -> Result<&Arc<Inspections>, ApiError> {
    state.inspections.as_ref().ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::NoInspections,
            "this node keeps no inspections (it needs a store)",
        )
    })
}

impl From<InspectionError> for ApiError {
    fn from(e: InspectionError) -> Self {
        let message = e.to_string();
        let unprocessable =
            |code| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.clone());
        match e {
            InspectionError::UnknownTemplate(_) => {
                ApiError::bad_request(ErrorCode::UnknownInspectionTemplate, message)
            }
            InspectionError::UnknownRoom(_) => {
                ApiError::bad_request(ErrorCode::UnknownRoom, message)
            }
            InspectionError::UnknownInspection(_) => {
                ApiError::not_found(ErrorCode::UnknownInspection, message)
            }
            InspectionError::UnknownItem(..) => {
                ApiError::not_found(ErrorCode::UnknownItem, message)
            }
            InspectionError::Finished(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::InspectionFinished, message)
            }
            InspectionError::Invalid(_) => unprocessable(ErrorCode::InvalidInspection),
            InspectionError::NotInspector(..) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::NotInspector, message)
            }
            InspectionError::Busy(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Busy, message)
            }
            InspectionError::NoWorkOrders => ApiError::not_found(ErrorCode::NoWorkOrders, message),
            InspectionError::Store(e) => ApiError::store_unavailable(e),
            InspectionError::WorkOrders(e) => e.into(),
            InspectionError::Templates(_) | InspectionError::Corrupt(_) => {
                ApiError::internal(message)
            }
        }
    }
}

fn audit<T>(
    state: &ApiState,
    who: &Principal,
    action: &str,
    target: &str,
    result: &Result<T, ApiError>,
) {
    let (detail, ok) = super::audit::outcome(result, |_| String::new());
    state.security.record(who, action, target, detail, ok);
}

pub async fn templates(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "templates": svc.templates() })))
}

/// `GET /api/v1/inspection-plans` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    pub zone: Option<String>,
    pub room: Option<String>,
}

pub async fn plans(
    state: web::Data<ApiState>,
    q: web::Query<PlanQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let plans = svc.plans(q.zone.as_deref(), q.room.as_deref());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "count": plans.len(), "plans": plans })))
}

pub async fn coverage(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "coverage": svc.coverage() })))
}

/// A period's query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub zone: Option<String>,
    pub room: Option<String>,
}

fn period(svc: &Inspections, q: &PeriodQuery) -> Result<(Date, Date), ApiError> {
    let today = Date::of(svc.now(), svc.offset_minutes());
    let to = q.to.unwrap_or(today);
    let from = q.from.unwrap_or(to.plus_days(-29));
    if from > to || to.days() - from.days() > 366 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRange,
            "`from` must be on or before `to`, at most 366 days apart",
        ));
    }
    Ok((from, to))
}

pub async fn list(
    state: web::Data<ApiState>,
    q: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    if let Some(room) = &q.room {
        let room = RoomId::new(room)
            .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?;
        let rows = svc.of_room(&room, 200).await?;
        return Ok(
            HttpResponse::Ok().json(serde_json::json!({ "count": rows.len(), "rows": rows }))
        );
    }
    let (from, to) = period(svc, &q)?;
    let report = svc.report(from, to, q.zone.as_deref()).await?;
    Ok(HttpResponse::Ok().json(report))
}

pub async fn inspectors(
    state: web::Data<ApiState>,
    q: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let (from, to) = period(svc, &q)?;
    let rows = svc.inspectors(from, to).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "from": from, "to": to, "inspectors": rows })))
}

/// `POST /api/v1/inspections` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    pub room: String,
    pub template: String,
}

pub async fn start(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<StartBody>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let target = format!("{}/{}", body.room, body.template);
    let result = async {
        let room = RoomId::new(&body.room)
            .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?;
        Ok(svc
            .start_inspection(&room, &body.template, &who.user)
            .await?)
    }
    .await;
    audit(&state, &who, "inspection_start", &target, &result);
    Ok(HttpResponse::Created().json(serde_json::json!({ "inspection": result? })))
}

pub async fn get(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let i = svc.get(&path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "inspection": i })))
}

/// The largest item body: a photo (a data URL) and the rest (the API's JSON bodies are 16 KiB
/// otherwise).
const MAX_ITEM_BYTES: u64 = MAX_PHOTO_BYTES as u64 + 64 * 1024;

pub async fn record_item(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, usize)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let (id, n) = path.into_inner();
    let result = async {
        let bytes = super::workorder_field::body_within(&req, payload, MAX_ITEM_BYTES).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                ErrorCode::MissingBody,
                "a JSON body is required",
            ));
        }
        let input: ItemInput = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(ErrorCode::InvalidJson, e.to_string()))?;
        Ok(svc
            .record_item(&id, n, input, &who.user, who.role >= Role::Admin)
            .await?)
    }
    .await;
    audit(
        &state,
        &who,
        "inspection_item",
        &format!("{id}/{n}"),
        &result,
    );
    Ok(HttpResponse::Ok().json(serde_json::json!({ "inspection": result? })))
}

pub async fn raise_order(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, usize)>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let (id, n) = path.into_inner();
    let result = async { Ok(svc.raise_order(&id, n, &who.user).await?) }.await;
    audit(
        &state,
        &who,
        "inspection_order",
        &format!("{id}/{n}"),
        &result,
    );
    let (i, order) = result?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "inspection": i, "order": order })))
}

pub async fn finish(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let result = async {
        Ok(svc
            .finish(&path, &who.user, who.role >= Role::Admin)
            .await?)
    }
    .await;
    audit(&state, &who, "inspection_finish", &path, &result);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "inspection": result? })))
}
