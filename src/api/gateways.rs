//! Enrolled gateways (admin only; issue 24 item 2): `GET /api/v1/gateways`,
//! `PUT /api/v1/gateways/{id}` `{rooms, fingerprint?, enabled?, note?}` enrols or changes one,
//! `DELETE /api/v1/gateways/{id}` removes it. A disabled or removed gateway's telemetry is
//! refused and counted from the next message on (`crate::auth::identity::gateways`). Every
//! change is audited.

use super::error::ApiError;
use super::users::caller;
use super::ApiState;
use crate::auth::GatewayWrite;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn list(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "gateways": state.security.auth.gateways() }))
}

pub async fn put(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<GatewayWrite>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    let write = body.into_inner();
    let detail = format!(
        "rooms {}, {}",
        write
            .rooms
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        if write.enabled { "enabled" } else { "disabled" }
    );
    match state.security.auth.put_gateway(&id, write, &who.user).await {
        Ok(record) => {
            state
                .security
                .record(&who, "gateway_put", &id, detail, true);
            Ok(HttpResponse::Ok().json(record))
        }
        Err(e) => {
            state
                .security
                .record(&who, "gateway_put", &id, format!("refused: {e}"), false);
            Err(e.into())
        }
    }
}

pub async fn delete(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    match state.security.auth.delete_gateway(&id).await {
        Ok(record) => {
            state.security.record(&who, "gateway_delete", &id, "", true);
            Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": record })))
        }
        Err(e) => {
            state
                .security
                .record(&who, "gateway_delete", &id, format!("refused: {e}"), false);
            Err(e.into())
        }
    }
}
