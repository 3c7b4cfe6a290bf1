//! `GET /api/v1/rooms` and `GET /api/v1/rooms/{id}`: read from the actors' live state and the
//! status board, never from a database. A room's view carries the equipment's nameplate
//! (`spec`: tank height, fire reserve, hard minimum; pump ratings) so that a screen can draw
//! levels to scale without a second request.
//! Its tanks' current fill plans (`tank_plans`, from the planning service's board) sit next to
//! their live points (`fill_mode`).

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
    if let Some(obj) = body.as_object_mut() {
        // Each planned tank's current fill plan and its delivery to the controller.
        obj.insert("tank_plans".into(), serde_json::json!(plans));
        if let Some(spec) = state.registry.spec(&id) {
            // The nameplate only: the source (controller addresses) stays out of the API.
            obj.insert(
                "spec".into(),
                serde_json::json!({
                    "households": spec.households,
                    "outlet_setpoint_mpa": spec.outlet_setpoint_mpa,
                    "pumps": spec.pumps,
                    "tanks": spec.tanks,
                    "cameras": spec.cameras,
                }),
            );
        }
    }
    Ok(HttpResponse::Ok().json(body))
}
