//! Operator set-point writes: `POST /api/v1/rooms/{id}/setpoints` with
//! `{"point": "<point id>", "value": <number>}` writes one writable point of a Modbus room
//! (the profile's `write_range` says which and how far), reads it back and audits it with the
//! caller's user. The auth middleware puts the caller's `Principal` in the request's
//! extensions and requires the operator role on this route; without a principal the write is
//! refused with 401 (never written anonymously).

use super::error::ApiError;
use super::ApiState;
use crate::auth::Principal;
use crate::ingest::modbus::writer::WriteError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use cistern_schemas::{PointId, RoomId};
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetpointWrite {
    pub point: String,
    pub value: f64,
}

/// The answer: what the controller holds after the write.
#[derive(Debug, Serialize)]
pub struct SetpointWritten {
    pub point: String,
    pub requested: f64,
    pub read_back: f64,
}

fn api_error(e: &WriteError) -> ApiError {
    let (status, code) = match e {
        WriteError::UnknownRoom { .. } => (StatusCode::NOT_FOUND, "unknown_room"),
        WriteError::UnknownPoint { .. } => (StatusCode::NOT_FOUND, "unknown_point"),
        WriteError::NotModbus { .. } | WriteError::NotWritable { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "not_writable")
        }
        WriteError::OutOfRange { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "out_of_range"),
        WriteError::Timeout { .. } | WriteError::ConnectTimeout { .. } => {
            (StatusCode::GATEWAY_TIMEOUT, "field_timeout")
        }
        WriteError::ReadBack { .. } => (StatusCode::BAD_GATEWAY, "refused_by_read_back"),
        WriteError::Exception { .. } => (StatusCode::BAD_GATEWAY, "device_exception"),
        _ => (StatusCode::BAD_GATEWAY, "field_unreachable"),
    };
    ApiError::new(status, code, e.to_string())
}

pub async fn post(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<SetpointWrite>,
) -> Result<HttpResponse, ApiError> {
    let Some(user) = req.extensions().get::<Principal>().map(|p| p.user.clone()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a set-point write needs an authenticated operator",
        ));
    };
    let room =
        RoomId::new(&path).map_err(|e| ApiError::bad_request("invalid_room", e.to_string()))?;
    let point: PointId = body.point.parse().map_err(|e: cistern_schemas::IdError| {
        ApiError::bad_request("invalid_point", e.to_string())
    })?;
    if point.device.room != room {
        return Err(ApiError::bad_request(
            "point_not_in_room",
            format!("point {point} is not in room {room}"),
        ));
    }
    let Some(writer) = &state.writer else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_field_writer",
            "this node writes to no controllers",
        ));
    };
    let read_back = writer
        .write_point(&user, &point, body.value)
        .await
        .map_err(|e| api_error(&e))?;
    Ok(HttpResponse::Ok().json(SetpointWritten {
        point: point.to_string(),
        requested: body.value,
        read_back,
    }))
}
