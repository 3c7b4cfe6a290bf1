//! `GET /api/v1/rooms` and `GET /api/v1/rooms/{id}`: read from the actors' live state and the
//! status board, never from a database. A room's view carries its tanks' current fill plans
//! (`tank_plans`, from the planning service's board) next to their live points (`fill_mode`).

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
    let plans = state
        .plans
        .as_ref()
        .map(|board| board.room_tanks(&id))
        .unwrap_or_default();
    let mut body = serde_json::to_value(&view)
        .map_err(|e| ApiError::internal(format!("room {id}: cannot serialise the view: {e}")))?;
    if let Some(map) = body.as_object_mut() {
        // Each planned tank's current fill plan and its delivery to the controller.
        map.insert("tank_plans".into(), serde_json::json!(plans));
    }
    Ok(HttpResponse::Ok().json(body))
}
