//! `GET /api/v1/cluster`: this node's view of the cluster — its state, its lease, the live
//! members (with the HTTP address each advertises, for a dashboard that must move to another
//! node) and the shards it owns with their epochs. A node outside a cluster says so.

use super::ApiState;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub async fn status(state: web::Data<ApiState>) -> HttpResponse {
    match &state.cluster {
        Some(view) => HttpResponse::Ok().json(view.status_json()),
        None => HttpResponse::Ok().json(json!({
            "enabled": false,
            "shards_owned": cistern_actors::registry::SHARDS,
        })),
    }
}
