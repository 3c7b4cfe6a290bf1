//! Operator set-point writes: `POST /api/v1/rooms/{id}/setpoints` with
//! `{"writes": [{"point": "<point id>", "value": <number>}, ...]}` writes writable points of a
//! Modbus room (the profile's `write_range` says which and how far), each read back and audited
//! with the caller's user (`setpoint_write`).
//!
//! [`execute`] is the one code path for every caller (REST here, the WebSocket `setpoint`
//! command, the web UI through either): it checks the operator role itself — a write to the
//! field is never made on a caller's say-so alone — then writes. The REST handler takes the
//! caller the auth middleware put in the request, like every other handler.

use super::error::{ApiError, ErrorCode};
use super::ApiState;
use crate::auth::{Principal, Role};
use crate::control::writer::WriteError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_schemas::{PointId, RoomId};
use serde::{Deserialize, Serialize};

/// Most writes one request carries.
pub const MAX_WRITES: usize = 32;

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetpointRequest {
    pub writes: Vec<SetpointWrite>,
}

/// One write: a point of the room and the value to hold, in the catalog unit.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetpointWrite {
    pub point: String,
    pub value: f64,
}

/// What the controller holds after one write.
#[derive(Clone, Debug, Serialize)]
pub struct SetpointWritten {
    pub point: String,
    pub requested: f64,
    pub read_back: f64,
}

fn api_error(e: &WriteError) -> ApiError {
    let (status, code) = match e {
        WriteError::UnknownRoom { .. } => (StatusCode::NOT_FOUND, ErrorCode::UnknownRoom),
        WriteError::UnknownPoint { .. } => (StatusCode::NOT_FOUND, ErrorCode::UnknownPoint),
        WriteError::NotModbus { .. } | WriteError::NotWritable { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::NotWritable)
        }
        WriteError::OutOfRange { .. } => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::OutOfRange),
        WriteError::Timeout { .. } | WriteError::ConnectTimeout { .. } => {
            (StatusCode::GATEWAY_TIMEOUT, ErrorCode::FieldTimeout)
        }
        WriteError::ReadBack { .. } => (StatusCode::BAD_GATEWAY, ErrorCode::RefusedByReadBack),
        WriteError::Exception { .. } => (StatusCode::BAD_GATEWAY, ErrorCode::DeviceException),
        // Another node runs the room (a cluster request that was not forwarded).
        WriteError::NotOwned { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::RoomUnavailable)
        }
        _ => (StatusCode::BAD_GATEWAY, ErrorCode::FieldUnreachable),
    };
    let error = ApiError::new(status, code, e.to_string());
    match e {
        WriteError::NotOwned { room } => error.not_here(room.to_string()),
        _ => error,
    }
}

/// Writes `writes` to `room`'s controller as `who`, in order, stopping at the first failure
/// (the writes before it stay done: each is its own verified request). Needs the operator
/// role. Every write that reaches the writer is audited (`setpoint_write`, ok or not) and
/// counted; a refused role is not a write and is not audited here (the gate logs refusals).
pub async fn execute(
    state: &ApiState,
    who: &Principal,
    room: &RoomId,
    writes: &[SetpointWrite],
) -> Result<Vec<SetpointWritten>, ApiError> {
    who.require(Role::Operator)?;
    if writes.is_empty() || writes.len() > MAX_WRITES {
        return Err(ApiError::bad_request(
            ErrorCode::BadWrites,
            format!("between 1 and {MAX_WRITES} writes per request"),
        ));
    }
    let mut points = Vec::with_capacity(writes.len());
    for w in writes {
        let point: PointId = w.point.parse().map_err(|e: cistern_schemas::IdError| {
            ApiError::bad_request(ErrorCode::InvalidPoint, e.to_string())
        })?;
        if &point.device.room != room {
            return Err(ApiError::bad_request(
                ErrorCode::PointNotInRoom,
                format!("point {point} is not in room {room}"),
            ));
        }
        points.push(point);
    }
    let Some(writer) = &state.writer else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NoFieldWriter,
            "this node writes to no controllers",
        ));
    };
    let mut done = Vec::with_capacity(writes.len());
    for (point, w) in points.iter().zip(writes) {
        let read_back = writer
            .write_point(&who.user, point, w.value)
            .await
            .map_err(|e| api_error(&e))?;
        done.push(SetpointWritten {
            point: point.to_string(),
            requested: w.value,
            read_back,
        });
    }
    Ok(done)
}

pub async fn post(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<SetpointRequest>,
) -> Result<HttpResponse, ApiError> {
    let who = super::users::caller(&req)?;
    let room = RoomId::new(&path)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoom, e.to_string()))?;
    let written = execute(&state, &who, &room, &body.writes).await?;
    Ok(HttpResponse::Ok().json(answer(&room, &written)))
}

/// The answer to a set-point request, over REST and as the WebSocket `result`'s `data`.
pub fn answer(room: &RoomId, written: &[SetpointWritten]) -> serde_json::Value {
    serde_json::json!({ "room": room, "written": written })
}
