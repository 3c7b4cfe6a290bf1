//! The HTTP API (actix-web), first cut: health, rooms and their live state, metrics, and — in
//! the demo only — fault injection into the simulator. Every error is JSON with a stable code:
//! `{"error": {"code": "unknown_room", "message": "..."}}`.

pub mod alarms;
pub mod error;
pub mod history;
pub mod plans;
pub mod rooms;
pub mod rules;
pub mod setpoints;
pub mod sim;

use actix_web::{web, HttpResponse, ResponseError};
use cistern_actors::FleetRegistry;
use std::sync::Arc;

/// What handlers share.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub registry: Arc<FleetRegistry>,
    pub metrics: prometheus::Registry,
    /// Present in the demo: the simulated field.
    pub field: Option<crate::field::FieldHandle>,
    /// Present when the node keeps history.
    pub history: Option<std::sync::Arc<crate::historian::Historian>>,
    /// Present when the node runs alarm rules.
    pub alarms: Option<AlarmsApi>,
    /// Identity (bearer tokens, roles) and the audit log.
    pub security: crate::auth::Security,
    /// Remote-parameter writes to the Modbus rooms' controllers (set-points, fill plans).
    pub writer: Option<Arc<crate::ingest::modbus::writer::FieldWriter>>,
    /// The live peak-shaving plans (when the node plans).
    pub plans: Option<Arc<crate::plans::PlanBoard>>,
}

/// What the alarm and rule endpoints need.
#[derive(Clone, Debug)]
pub struct AlarmsApi {
    pub host: Arc<cistern_actors::alarms::RuleHost>,
    /// The alarm store, for event histories (when the node has storage).
    pub stored: Option<Arc<crate::alarms::StoredAlarms>>,
    /// The rule directory (none: the built-in library).
    pub dir: Option<std::path::PathBuf>,
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(16 * 1024)
            .error_handler(|err, _req| {
                error::ApiError::bad_request("invalid_json", err.to_string()).into()
            }),
    )
    .app_data(web::PathConfig::default().error_handler(|err, _req| {
        error::ApiError::bad_request("invalid_path", err.to_string()).into()
    }))
    .route("/healthz", web::get().to(healthz))
    .route("/metrics", web::get().to(metrics))
    .service(
        web::scope("/api/v1")
            .route("/rooms", web::get().to(rooms::list))
            .route("/rooms/{id}", web::get().to(rooms::get))
            .route("/rooms/{id}/setpoints", web::post().to(setpoints::post))
            .route("/districts", web::get().to(plans::list))
            .route("/districts/{id}/plan", web::get().to(plans::get))
            .route("/history", web::get().to(history::get))
            .route("/alarms", web::get().to(alarms::list))
            .route("/alarms/{source}/{key}", web::get().to(alarms::get))
            .route(
                "/alarms/{source}/{key}/{action}",
                web::post().to(alarms::command),
            )
            .route("/rules", web::get().to(rules::list))
            .route("/rules/validate", web::post().to(rules::validate))
            .route("/rules/reload", web::post().to(rules::reload))
            .route("/rules/{id}", web::get().to(rules::get))
            .route("/rules/{id}", web::put().to(rules::put))
            .route("/sim/faults", web::get().to(sim::list))
            .route("/sim/faults", web::post().to(sim::inject)),
    )
    .default_service(web::to(error::not_found));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn metrics(state: web::Data<ApiState>) -> HttpResponse {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    match encoder.encode(&state.metrics.gather(), &mut buf) {
        Ok(()) => HttpResponse::Ok()
            .content_type(encoder.format_type())
            .body(buf),
        Err(e) => error::ApiError::internal(e.to_string()).error_response(),
    }
}
