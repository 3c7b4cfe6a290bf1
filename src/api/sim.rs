//! Demo only: `GET /api/v1/sim/faults` lists the fault kinds (and the active faults);
//! `POST /api/v1/sim/faults` with `{"room": "...", "fault": "...", "seconds": N}` injects one;
//! with `"zone"` instead of `"room"`, into every room of the zone at once (a mains loss across
//! a district: the burst the alarm and work-order paths must take).

use super::error::{ApiError, ErrorCode};
use super::ApiState;
use crate::node::{FieldSim, FieldSimError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use cistern_schemas::RoomId;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Longest fault that can be injected: a day.
const MAX_SECONDS: u64 = 86_400;

/// The body of a fault injection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectFault {
    /// One room, or
    #[serde(default)]
    pub room: Option<String>,
    /// every room of a zone.
    #[serde(default)]
    pub zone: Option<String>,
    pub fault: String,
    pub seconds: u64,
}

fn field(state: &ApiState) -> Result<&Arc<dyn FieldSim>, ApiError> {
    state.field.as_ref().ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::NotSimulated,
            "fault injection exists only in `cistern demo`",
        )
    })
}

pub async fn list(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let field = field(&state)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "faults": field.fault_kinds(),
        "active": field.active_faults(),
    })))
}

pub async fn inject(
    state: web::Data<ApiState>,
    body: web::Json<InjectFault>,
) -> Result<HttpResponse, ApiError> {
    let field = field(&state)?;
    let rooms: Vec<RoomId> = match (&body.room, &body.zone) {
        (Some(room), None) => {
            let room = RoomId::new(room)
                .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?;
            if state.registry.spec(&room).is_none() {
                return Err(ApiError::not_found(
                    ErrorCode::UnknownRoom,
                    format!("unknown room {room}"),
                ));
            }
            vec![room]
        }
        (None, Some(zone)) => {
            let mut rooms = Vec::new();
            state.registry.visit(|spec, _, _| {
                if spec.zone.as_str() == zone {
                    rooms.push(spec.id.clone());
                }
            });
            if rooms.is_empty() {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidZone,
                    format!("no room in zone {zone}"),
                ));
            }
            rooms.sort();
            rooms
        }
        _ => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidRoom,
                "name exactly one of room and zone",
            ))
        }
    };
    let kinds = field.fault_kinds();
    if !kinds.iter().any(|k| k.fault == body.fault) {
        let e = FieldSimError::UnknownFault {
            fault: body.fault.clone(),
            known: kinds.into_iter().map(|k| k.fault).collect(),
        };
        return Err(ApiError::bad_request(
            ErrorCode::UnknownFault,
            e.to_string(),
        ));
    }
    let fault = &body.fault;
    if body.seconds == 0 || body.seconds > MAX_SECONDS {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidDuration,
            format!("seconds must be within 1..={MAX_SECONDS}"),
        ));
    }
    for room in &rooms {
        field
            .inject(room, fault, Duration::from_secs(body.seconds))
            .map_err(|e| match e {
                FieldSimError::UnknownFault { .. } => {
                    ApiError::bad_request(ErrorCode::UnknownFault, e.to_string())
                }
                FieldSimError::Rejected(_) => {
                    ApiError::bad_request(ErrorCode::InjectionFailed, e.to_string())
                }
            })?;
    }
    tracing::info!(rooms = rooms.len(), zone = ?body.zone, %fault, seconds = body.seconds, "fault injected");
    let room = (rooms.len() == 1 && body.zone.is_none()).then(|| rooms[0].clone());
    Ok(
        HttpResponse::build(StatusCode::ACCEPTED).json(serde_json::json!({
            "room": room, "zone": body.zone, "rooms": rooms, "fault": fault, "seconds": body.seconds,
        })),
    )
}
