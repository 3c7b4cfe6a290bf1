//! The HTTP API (actix-web): health, metrics, rooms and their live state, history, alarms and
//! their commands, rules, sessions, users, API tokens, the audit log, and — in the demo only —
//! fault injection into the simulator. Every error is JSON with a stable code:
//! `{"error": {"code": "unknown_room", "message": "..."}}`. Every route is in the table below
//! and described in `schemas/openapi.json`; who may call it is decided before any handler runs,
//! by [`crate::auth::middleware`] and [`crate::auth::policy`].

pub mod alarms;
pub mod audit;
pub mod auth;
pub mod error;
pub mod history;
pub mod rooms;
pub mod rules;
pub mod sim;
pub mod tokens;
pub mod users;
pub mod webui;
pub mod ws;

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
    /// The WebSocket push API (`GET /ws`).
    pub ws: Option<ws::WsApi>,
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

/// Declares the route table: `ROUTES` (method, path) for the OpenAPI check and the policy, and
/// `register_routes`, which installs them. Every REST route goes through it (a test checks that
/// no `.route(` call bypasses it), so the OpenAPI description cannot silently miss one.
macro_rules! routes {
    ($($method:ident $path:literal => $handler:path;)*) => {
        /// Every route: (lower-case method, path pattern).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn register_routes(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::$method().to($handler));)*
        }
    };
}

routes! {
    get "/healthz" => healthz;
    get "/metrics" => metrics;
    get "/" => webui::index;
    get "/ui/{file}" => webui::file;
    get "/ws" => ws::upgrade;
    post "/api/v1/auth/login" => auth::login;
    post "/api/v1/auth/logout" => auth::logout;
    get "/api/v1/auth/me" => auth::me;
    get "/api/v1/rooms" => rooms::list;
    get "/api/v1/rooms/{id}" => rooms::get;
    get "/api/v1/history" => history::get;
    get "/api/v1/alarms" => alarms::list;
    get "/api/v1/alarms/{source}/{key}" => alarms::get;
    post "/api/v1/alarms/{source}/{key}/{action}" => alarms::command;
    get "/api/v1/rules" => rules::list;
    post "/api/v1/rules/validate" => rules::validate;
    post "/api/v1/rules/reload" => rules::reload;
    get "/api/v1/rules/{id}" => rules::get;
    put "/api/v1/rules/{id}" => rules::put;
    get "/api/v1/sim/faults" => sim::list;
    post "/api/v1/sim/faults" => sim::inject;
    get "/api/v1/users" => users::list;
    post "/api/v1/users" => users::create;
    get "/api/v1/users/{name}" => users::get;
    patch "/api/v1/users/{name}" => users::update;
    delete "/api/v1/users/{name}" => users::delete;
    get "/api/v1/tokens" => tokens::list;
    post "/api/v1/tokens" => tokens::create;
    delete "/api/v1/tokens/{id}" => tokens::revoke;
    get "/api/v1/audit" => audit::list;
}

/// Registers every route. The caller wraps the app in the authentication middleware
/// ([`crate::auth::middleware::authenticate`]) and gives it `web::Data<Security>`.
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
    }));
    register_routes(cfg);
    cfg.default_service(web::to(error::not_found));
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
