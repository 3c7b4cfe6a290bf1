//! `GET /api/v1/rooms` and `GET /api/v1/rooms/{id}`: read from the actors' live state and the
//! status board, never from a database.

use super::error::ApiError;
use super::ApiState;
use actix_web::{web, HttpResponse};
use cistern_schemas::RoomId;

/// Every room, with its status.
pub async fn list(state: web::Data<ApiState>) -> HttpResponse {
    let rooms = state.registry.summaries();
    let online = rooms.iter().filter(|r| r.detail.online).count();
    HttpResponse::Ok().json(serde_json::json!({
        "count": rooms.len(),
        "online": online,
        "offline": rooms.len() - online,
        "rooms": rooms,
    }))
}

/// The live state of one room and its pumps, tanks and cameras.
pub async fn get(
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id =
        RoomId::new(&id).map_err(|e| ApiError::bad_request("invalid_room_id", e.to_string()))?;
    let view = state.registry.room_view(&id).await?;
    Ok(HttpResponse::Ok().json(view))
}
