//! `GET /api/v1/rooms` and `GET /api/v1/rooms/{id}`: read from the actors' live state and the
//! status board, never from a database. Rooms and zones carry their names as operators read
//! them (`name`, Chinese in the demo) and in pinyin (`name_pinyin`, `address_pinyin`). A room's view carries the equipment's nameplate
//! (`spec`: tank height, fire reserve, hard minimum; pump ratings) so that a screen can draw
//! levels to scale without a second request.
//! Its tanks' current fill plans (`tank_plans`, from the planning service's board) sit next to
//! their live points (`fill_mode`).

use super::error::{ApiError, ErrorCode};
use super::ApiState;
use crate::control::plans::PlanBoard;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use cistern_actors::pump_room::RoomView;
use cistern_actors::FleetRegistry;
use cistern_schemas::RoomId;

/// Every room, with its status, and the supply zones they belong to: each zone once, with its
/// names (`name` as operators read it, `name_pinyin` beside it), rather than the names on each
/// of 2,100 rooms.
///
/// On a cluster node, every live member's rooms ([`super::fleet`]); with
/// `X-Cistern-Scope: local`, the rooms this node runs.
pub async fn list(state: web::Data<ApiState>, req: HttpRequest) -> HttpResponse {
    let local_only = match super::fleet::local_scope(&req) {
        Ok(l) => l,
        Err(e) => return e.error_response(),
    };
    let local = local_list(&state);
    match &state.cluster {
        Some(cluster) if !local_only => {
            HttpResponse::Ok().json(super::fleet::rooms(&state, cluster, &req, local).await)
        }
        _ => HttpResponse::Ok().json(local),
    }
}

/// The rooms this node runs.
fn local_list(state: &ApiState) -> serde_json::Value {
    let rooms = state.registry.summaries();
    let online = rooms.iter().filter(|r| r.detail.online).count();
    let zones: Vec<_> = (state.registry.zone_specs().iter())
        .map(|z| serde_json::json!({ "id": z.id, "name": z.name, "name_pinyin": z.name_pinyin }))
        .collect();
    serde_json::json!({
        "count": rooms.len(),
        "online": online,
        "offline": rooms.len() - online,
        "zones": zones,
        "rooms": rooms,
    })
}

/// The live state of one room and its pumps, tanks and cameras.
pub async fn get(
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = RoomId::new(&id)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?;
    let view = state.registry.room_view(&id).await?;
    let body = room_body(&state.registry, state.plans.as_deref(), &view)
        .map_err(|e| ApiError::internal(format!("room {id}: cannot serialise the view: {e}")))?;
    Ok(HttpResponse::Ok().json(body))
}

/// The RoomView as clients see it: the live `view` with its tanks' fill plans and the
/// nameplate. The one definition for `GET /api/v1/rooms/{id}` and the WebSocket `room`
/// snapshot (the hub keeps the live view current from the feed and calls this at each
/// snapshot), so that the two cannot drift apart.
pub fn room_body(
    registry: &FleetRegistry,
    plans: Option<&PlanBoard>,
    view: &RoomView,
) -> Result<serde_json::Value, serde_json::Error> {
    let id = &view.id;
    let mut body = serde_json::to_value(view)?;
    if let Some(obj) = body.as_object_mut() {
        // Each planned tank's current fill plan and its delivery to the controller.
        let plans = plans.map(|board| board.room_tanks(id)).unwrap_or_default();
        obj.insert("tank_plans".into(), serde_json::to_value(plans)?);
        if let Some(spec) = registry.known_spec(id) {
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
    Ok(body)
}
