//! Tank cleaning over REST (see [`crate::business::assets::cleaning`]):
//!
//! - `GET /api/v1/cleaning?zone=&room=&overdue=true` — every tank's schedule, most urgent first,
//!   with the GB 5749-2022 limits the water test is judged against and the city's settings;
//! - `GET /api/v1/cleaning/{room}/{tank}` — a tank's schedule and its cleaning log (newest first);
//! - `POST /api/v1/cleaning/{room}/{tank}/records` `{date, crew, order?, test: {colour,
//!   turbidity_ntu, odour, ph, free_chlorine_mg_l, coliforms_per_100ml, bacteria_cfu_ml}, note?}`
//!   — records a cleaning (operators: field crews are operators); 201 with the record, its
//!   failures and the follow-up order when the water failed;
//! - `PUT /api/v1/cleaning/{room}/{tank}/interval` `{days}` (`null`: the city's) — rule authors
//!   and admins.
//!
//! Writes are audited as `cleaning_record` and `cleaning_interval`.

use super::error::{ApiError, ErrorCode};
use super::users::caller;
use super::ApiState;
use crate::auth::Principal;
use crate::business::assets::cleaning::water::LIMITS;
use crate::business::assets::cleaning::{CleaningError, NewCleaning, TankCleaning};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_schemas::{DeviceId, DeviceUnit, RoomId};
use serde::Deserialize;
use std::sync::Arc;

fn service(state: &ApiState) -> Result<&Arc<TankCleaning>, ApiError> {
    state.cleaning.as_ref().ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::NoCleaning,
            "this node keeps no cleaning records (it needs a store)",
        )
    })
}

impl From<CleaningError> for ApiError {
    fn from(e: CleaningError) -> Self {
        let message = e.to_string();
        match e {
            CleaningError::UnknownTank(_) => ApiError::not_found(ErrorCode::UnknownTank, message),
            CleaningError::Invalid(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidCleaning,
                message,
            ),
            CleaningError::Interval(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidInterval,
                message,
            ),
            CleaningError::Busy(_) => ApiError::new(StatusCode::CONFLICT, ErrorCode::Busy, message),
            CleaningError::Store(e) => ApiError::store_unavailable(e),
            CleaningError::WorkOrders(e) => e.into(),
            CleaningError::Corrupt(_) => ApiError::internal(message),
        }
    }
}

/// `XM-0001` + `T1` → the tank's id.
fn tank_id(room: &str, tank: &str) -> Result<DeviceId, ApiError> {
    let room = RoomId::new(room)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?;
    let n = tank
        .strip_prefix('T')
        .and_then(|n| n.parse::<u8>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::not_found(
                ErrorCode::UnknownTank,
                format!("{tank:?} is not a tank (T1, T2…)"),
            )
        })?;
    Ok(DeviceId::new(room, DeviceUnit::Tank(n)))
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

/// `GET /api/v1/cleaning` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub zone: Option<String>,
    pub room: Option<String>,
    pub overdue: Option<bool>,
}

pub async fn list(
    state: web::Data<ApiState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let tanks = svc.schedule(
        q.zone.as_deref(),
        q.room.as_deref(),
        q.overdue.unwrap_or(false),
    );
    let c = svc.config();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "count": tanks.len(),
        "tanks": tanks,
        "limits": LIMITS,
        "interval_days": c.interval_days,
        "order_days": c.order_days,
        "remind_days": c.remind_days,
    })))
}

pub async fn get(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let tank = tank_id(&path.0, &path.1)?;
    let line = svc.tank(&tank)?;
    let log = svc.log(&tank).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tank": line, "log": log, "limits": LIMITS })))
}

pub async fn record(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<NewCleaning>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let target = format!("{}/{}", path.0, path.1);
    let result = async {
        let tank = tank_id(&path.0, &path.1)?;
        Ok(svc.record(&tank, body.into_inner(), &who.user).await?)
    }
    .await;
    audit(&state, &who, "cleaning_record", &target, &result);
    let record = result?;
    let tank = svc.tank(&record.tank)?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "record": record, "tank": tank })))
}

/// `PUT …/interval` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalBody {
    pub days: Option<u32>,
}

pub async fn set_interval(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<IntervalBody>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let target = format!("{}/{}", path.0, path.1);
    let result = async {
        let tank = tank_id(&path.0, &path.1)?;
        Ok(svc.set_interval(&tank, body.days).await?)
    }
    .await;
    audit(&state, &who, "cleaning_interval", &target, &result);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tank": result? })))
}
