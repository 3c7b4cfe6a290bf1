//! The HTTP API (actix-web): liveness (`/healthz`), readiness (`/readyz`), metrics, rooms and their live state, history, alarms and
//! their commands, rules, sessions (and login throttling), users, API tokens, the audit log, and — in the demo only —
//! fault injection into the simulator. Every error is JSON with a stable code:
//! `{"error": {"code": "unknown_room", "message": "..."}}`. Every route is in the table below
//! and described in `schemas/openapi.json`; who may call it is decided before any handler runs,
//! by [`crate::auth::middleware`] and [`crate::auth::policy`].

pub mod alarms;
pub mod analysis;
pub mod analysis_compare;
pub mod analysis_energy;
pub mod analysis_leakage;
pub mod analysis_score;
pub mod assets;
pub mod assets_import;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod basemap;
pub mod cleaning;
pub mod cluster;
pub mod cockpit;
pub mod error;
pub mod fleet;
pub mod forward;
pub mod gateways;
pub mod history;
pub mod inspections;
pub mod notify;
pub mod plans;
pub mod reliability;
pub mod rooms;
pub mod rules;
pub mod sessions;
pub mod setpoints;
pub mod sim;
pub mod tokens;
pub mod users;
pub mod webui;
pub mod workorder_field;
pub mod workorders;
pub mod ws;

use actix_web::{web, HttpResponse, ResponseError};
use cistern_actors::FleetRegistry;
use std::sync::Arc;

/// What handlers share.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub registry: Arc<FleetRegistry>,
    pub metrics: prometheus::Registry,
    /// Present in the demo: the simulated field (a port the lab implements).
    pub field: Option<Arc<dyn crate::node::FieldSim>>,
    /// Present when the node keeps history.
    pub history: Option<std::sync::Arc<crate::historian::Historian>>,
    /// Present when the node runs alarm rules.
    pub alarms: Option<AlarmsApi>,
    /// Identity (bearer tokens, roles) and the audit log.
    pub security: crate::auth::Security,
    /// The WebSocket push API (`GET /ws`).
    pub ws: Option<ws::WsApi>,
    /// What `/readyz` checks (none: always ready, for API tests without a node).
    pub readiness: Option<crate::monitor::ready::Readiness>,
    /// Remote-parameter writes to the Modbus rooms' controllers (set-points, fill plans).
    pub writer: Option<Arc<crate::control::writer::FieldWriter>>,
    /// The live peak-shaving plans (when the node plans).
    pub plans: Option<Arc<crate::control::plans::PlanBoard>>,
    /// The site's base map for the fleet map (`[inventory] basemap`).
    pub basemap: Option<basemap::Basemap>,
    /// Work orders (when the node has records and rules).
    pub workorders: Option<Arc<crate::business::workorders::WorkOrders>>,
    /// Notifications' delivery records (when the node has records).
    pub notify: Option<Arc<crate::notify::Notifier>>,
    /// The archive's spreadsheet imports and exports (when the node keeps an archive).
    pub imports: Option<Arc<crate::business::assets::archive::import::Imports>>,
    /// The rooms' archives (when the node has records).
    pub archive: Option<Arc<crate::business::assets::archive::Archive>>,
    /// Tank cleaning (when the node has records).
    pub cleaning: Option<Arc<crate::business::assets::cleaning::TankCleaning>>,
    /// Online inspection (when the node has records).
    pub inspections: Option<Arc<crate::business::assets::inspection::Inspections>>,
    /// The parts lifecycle (when the node has records).
    pub lifecycle: Option<Arc<crate::business::assets::lifecycle::service::Lifecycle>>,
    /// The analysis (issue 22), when the node has records and history.
    pub analysis: Option<Arc<crate::business::analysis::Analysis>>,
    /// The node's cluster member (when `[cluster]` is on).
    pub cluster: Option<Arc<dyn crate::cluster::ClusterView>>,
    /// Backups of the node's data (when it has an embedded store).
    pub backups: Option<Arc<crate::backup::Backups>>,
}

/// What the alarm and rule endpoints need.
#[derive(Clone, Debug)]
pub struct AlarmsApi {
    pub host: Arc<cistern_actors::alarms::RuleHost>,
    /// The alarm store, for event histories (when the node has storage).
    pub stored: Option<Arc<crate::alarms::StoredAlarms>>,
    /// The rule directory (none: the built-in library).
    pub dir: Option<std::path::PathBuf>,
    /// The golden-case directory (none: the cases built into the binary).
    pub cases: Option<std::path::PathBuf>,
}

/// Declares the route table: `ROUTES` (method, path) for the OpenAPI check and the policy, and
/// `register_routes`, which installs them. Every REST route goes through it (a test checks that
/// no route is registered around it), so the OpenAPI description cannot silently miss one.
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
    get "/readyz" => readyz;
    get "/metrics" => metrics;
    get "/" => webui::index;
    get "/ui/{file}" => webui::file;
    get "/ws" => ws::upgrade;
    post "/api/v1/auth/login" => auth::login;
    post "/api/v1/auth/logout" => auth::logout;
    get "/api/v1/auth/me" => auth::me;
    put "/api/v1/auth/me/language" => auth::set_language;
    put "/api/v1/auth/me/password" => auth::change_password;
    get "/api/v1/auth/sessions" => sessions::list_own;
    delete "/api/v1/auth/sessions/{id}" => sessions::end_own;
    get "/api/v1/auth/throttles" => sessions::throttles;
    post "/api/v1/auth/throttles/unlock" => sessions::unlock;
    get "/api/v1/sessions" => sessions::list;
    delete "/api/v1/sessions/{id}" => sessions::end;
    get "/api/v1/rooms" => rooms::list;
    get "/api/v1/rooms/{id}" => rooms::get;
    post "/api/v1/rooms/{id}/setpoints" => setpoints::post;
    get "/api/v1/districts" => plans::list;
    get "/api/v1/districts/{id}/plan" => plans::get;
    get "/api/v1/history" => history::get;
    get "/api/v1/alarms" => alarms::list;
    get "/api/v1/alarms/{source}/{key}" => alarms::get;
    post "/api/v1/alarms/{source}/{key}/{action}" => alarms::command;
    get "/api/v1/rules" => rules::list;
    post "/api/v1/rules/validate" => rules::validate;
    post "/api/v1/rules/reload" => rules::reload;
    get "/api/v1/rules/{id}" => rules::get;
    put "/api/v1/rules/{id}" => rules::put;
    post "/api/v1/rules/{id}/backtest" => rules::backtest;
    post "/api/v1/rules/{id}/cases" => rules::cases;
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
    get "/api/v1/gateways" => gateways::list;
    put "/api/v1/gateways/{id}" => gateways::put;
    delete "/api/v1/gateways/{id}" => gateways::delete;
    get "/api/v1/audit" => audit::list;
    post "/api/v1/admin/backup" => backup::post;
    get "/api/v1/audit/export" => audit::export;
    get "/api/v1/audit/verify" => audit::verify;
    get "/api/v1/basemap" => basemap::get;
    get "/api/v1/workorders" => workorders::list;
    post "/api/v1/workorders" => workorders::create;
    get "/api/v1/workorders/export" => workorders::export;
    get "/api/v1/workorders/{id}" => workorders::get;
    post "/api/v1/workorders/{id}/attachments" => workorder_field::attach;
    get "/api/v1/workorders/{id}/attachments/{n}" => workorder_field::attachment;
    get "/api/v1/workorders/{id}/trail" => workorder_field::trail;
    post "/api/v1/workorders/{id}/{action}" => workorders::command;
    get "/api/v1/crews" => workorder_field::crews;
    post "/api/v1/crews/me/position" => workorder_field::report_position;
    get "/api/v1/workorder-templates" => workorders::templates;
    get "/api/v1/teams" => workorders::teams;
    get "/api/v1/knowledge" => workorders::knowledge;
    put "/api/v1/knowledge/{problem}" => workorders::edit_knowledge;
    get "/api/v1/workorder-kpis" => workorders::kpis;
    get "/api/v1/notifications" => notify::list;
    get "/api/v1/assets/template" => assets_import::template;
    get "/api/v1/assets/export" => assets_import::export;
    post "/api/v1/assets/import" => assets_import::start;
    get "/api/v1/assets/import/{job}" => assets_import::job;
    get "/api/v1/assets/rooms" => assets::rooms;
    get "/api/v1/assets/rooms/{id}" => assets::room;
    put "/api/v1/assets/rooms/{id}" => assets::put_room;
    get "/api/v1/assets/rooms/{id}/retired" => assets::retired;
    post "/api/v1/assets/rooms/{id}/equipment" => assets::add_equipment;
    put "/api/v1/assets/rooms/{id}/equipment/{tag}" => assets::edit_equipment;
    delete "/api/v1/assets/rooms/{id}/equipment/{tag}" => assets::remove_equipment;
    post "/api/v1/assets/rooms/{id}/equipment/{tag}/replace" => assets::replace_equipment;
    post "/api/v1/assets/rooms/{id}/documents" => assets::upload;
    get "/api/v1/assets/rooms/{id}/documents/{doc}" => assets::document;
    get "/api/v1/assets/projects" => assets::projects;
    post "/api/v1/assets/projects" => assets::create_project;
    get "/api/v1/assets/projects/{id}" => assets::project;
    put "/api/v1/assets/projects/{id}" => assets::update_project;
    delete "/api/v1/assets/projects/{id}" => assets::delete_project;
    get "/api/v1/cleaning" => cleaning::list;
    get "/api/v1/cleaning/{room}/{tank}" => cleaning::get;
    post "/api/v1/cleaning/{room}/{tank}/records" => cleaning::record;
    put "/api/v1/cleaning/{room}/{tank}/interval" => cleaning::set_interval;
    get "/api/v1/inspection-templates" => inspections::templates;
    get "/api/v1/inspection-plans" => inspections::plans;
    get "/api/v1/inspection-coverage" => inspections::coverage;
    get "/api/v1/inspectors" => inspections::inspectors;
    get "/api/v1/inspections" => inspections::list;
    post "/api/v1/inspections" => inspections::start;
    get "/api/v1/inspections/{id}" => inspections::get;
    post "/api/v1/inspections/{id}/finish" => inspections::finish;
    post "/api/v1/inspections/{id}/items/{n}" => inspections::record_item;
    post "/api/v1/inspections/{id}/items/{n}/order" => inspections::raise_order;
    get "/api/v1/reliability/classes" => reliability::classes;
    get "/api/v1/reliability/components" => reliability::components;
    get "/api/v1/reliability/components/{room}/{tag}/{class}" => reliability::component;
    post "/api/v1/reliability/components/{room}/{tag}/{class}/events" => reliability::record_event;
    get "/api/v1/reliability/plan" => reliability::plan;
    get "/api/v1/reliability/spares" => reliability::spares;
    put "/api/v1/reliability/stock/{part}" => reliability::set_stock;
    get "/api/v1/reliability/suppliers" => reliability::suppliers;
    get "/api/v1/cluster" => cluster::status;
    get "/api/v1/analysis/days" => analysis::days;
    get "/api/v1/analysis/day" => analysis::day;
    post "/api/v1/analysis/recompute" => analysis::recompute;
    get "/api/v1/analysis/energy" => analysis_energy::report;
    get "/api/v1/analysis/energy/rooms/{id}" => analysis_energy::room_energy;
    get "/api/v1/analysis/efficiency" => analysis_energy::ranking;
    get "/api/v1/analysis/efficiency/rooms/{id}" => analysis_energy::room_efficiency;
    get "/api/v1/analysis/compare" => analysis_compare::get;
    get "/api/v1/analysis/leakage" => analysis_leakage::fleet;
    get "/api/v1/analysis/leakage/{room}" => analysis_leakage::room;
    get "/api/v1/analysis/scores" => analysis_score::scores;
    get "/api/v1/analysis/score" => analysis_score::score;
    get "/api/v1/cockpit/catalogue" => cockpit::catalogue;
    get "/api/v1/cockpit/board" => cockpit::board;
    put "/api/v1/cockpit/board" => cockpit::save_board;
    get "/api/v1/cockpit/drill" => cockpit::drill;
    get "/api/v1/cockpit/report.xlsx" => cockpit::report;
}

/// Registers every route. The caller wraps the app in the authentication middleware
/// ([`crate::auth::middleware::authenticate`]) and gives it `web::Data<Security>`.
/// Framework errors (a body or query the extractors refuse) are answered with the JSON
/// envelope like every other error; a path that no route serves is 404, and one that a route
/// serves with other methods is 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(error::JSON_LIMIT)
            .error_handler(|err, _req| error::json_refused(&err).into()),
    )
    .app_data(
        web::QueryConfig::default().error_handler(|err, _req| error::query_refused(&err).into()),
    )
    .app_data(web::PathConfig::default().error_handler(|err, _req| {
        error::ApiError::bad_request(error::ErrorCode::InvalidPath, err.to_string()).into()
    }))
    // A request no route serves gets the router's 405 (or 404), not a 403 from the policy.
    .app_data(web::Data::new(crate::auth::policy::RouteMethods(
        routed_methods,
    )));
    register_routes(cfg);
    cfg.default_service(web::to(fallback));
}

/// The route table's patterns, compiled once: (pattern, upper-case method).
fn patterns() -> &'static [(actix_web::dev::ResourceDef, String)] {
    static PATTERNS: std::sync::OnceLock<Vec<(actix_web::dev::ResourceDef, String)>> =
        std::sync::OnceLock::new();
    PATTERNS.get_or_init(|| {
        ROUTES
            .iter()
            .map(|(m, p)| (actix_web::dev::ResourceDef::new(*p), m.to_uppercase()))
            .collect()
    })
}

/// Every method some route would take `path` with: what the router dispatches to a handler,
/// shadowed patterns included (`PUT /api/v1/rules/reload` reaches the handler of
/// `/api/v1/rules/{id}`). The policy's refusals stand for all of these; only a method outside
/// them can never reach a handler.
pub fn routed_methods(path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = patterns()
        .iter()
        .filter(|(def, _)| def.is_match(path))
        .map(|(_, m)| m.as_str())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// The methods the route table serves `path` with (none: no such resource). A literal segment
/// makes its own resource, even where a parameter would match it too: `/api/v1/rules/reload`
/// is not `/api/v1/rules/{id}`, and `/api/v1/workorders/{id}/trail` is not
/// `/api/v1/workorders/{id}/{action}`.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let matching: Vec<_> = patterns()
        .iter()
        .filter(|(def, _)| def.is_match(path))
        .collect();
    // Which segments a pattern names literally; one is shadowed by another whose literal
    // segments are a strict superset of its own.
    let literals = |def: &actix_web::dev::ResourceDef| -> Vec<bool> {
        def.pattern()
            .unwrap_or_default()
            .split('/')
            .map(|s| !s.starts_with('{'))
            .collect()
    };
    let shadows = |a: &[bool], b: &[bool]| {
        a.len() == b.len() && a != b && a.iter().zip(b).all(|(x, y)| *x || !*y)
    };
    let mut methods: Vec<&'static str> = matching
        .iter()
        .filter(|(def, _)| {
            let own = literals(def);
            !matching
                .iter()
                .any(|(other, _)| shadows(&literals(other), &own))
        })
        .map(|(_, m)| m.as_str())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// What no route matched: 405 with `Allow` when the path is served with other methods, else
/// 404.
async fn fallback(req: actix_web::HttpRequest) -> HttpResponse {
    let allowed = allowed_methods(req.path());
    if allowed.is_empty() {
        error::ApiError::not_found(error::ErrorCode::NotFound, "no such resource").error_response()
    } else {
        error::method_not_allowed(&allowed)
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready (200) only when ingest, the store and the actors are; else 503 with every part's
/// state, so that whoever is paged sees which part and why. Public, like `/healthz` and
/// `/metrics`: load balancers and Prometheus carry no token.
async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    let Some(readiness) = &state.readiness else {
        return HttpResponse::Ok().json(serde_json::json!({ "ready": true }));
    };
    let mut report = readiness.check();
    if state.cluster.as_ref().is_some_and(|c| !c.ready()) {
        // Outside the cluster (etcd unreachable, or fenced), the node supervises nothing.
        report.ready = false;
        report.not_ready.push("cluster");
    }
    if report.ready {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
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

#[cfg(test)]
mod tests {
    use super::ROUTES;
    use crate::auth::policy::{self, Access};
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn openapi() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/openapi.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    fn operations(doc: &Value) -> BTreeSet<(String, String)> {
        let mut ops = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, _) in item.as_object().unwrap() {
                assert!(METHODS.contains(&method.as_str()), "{method} {path}");
                ops.insert((method.clone(), path.clone()));
            }
        }
        ops
    }

    #[test]
    fn every_route_is_described_in_openapi_and_nothing_else_is() {
        let routes: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(routes.len(), ROUTES.len(), "a route is declared twice");
        let described = operations(&openapi());
        let missing: Vec<_> = routes.difference(&described).collect();
        let stale: Vec<_> = described.difference(&routes).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "schemas/openapi.json is out of date.\nnot described: {missing:?}\ndescribed but not served: {stale:?}"
        );
    }

    #[test]
    fn allowed_methods_come_from_the_route_table() {
        use super::allowed_methods;
        assert_eq!(allowed_methods("/api/v1/rooms"), ["GET"]);
        assert_eq!(allowed_methods("/api/v1/rules/smoke"), ["GET", "PUT"]);
        assert_eq!(allowed_methods("/api/v1/rules/reload"), ["POST"]);
        assert_eq!(
            allowed_methods("/api/v1/workorders/WO-000001/trail"),
            ["GET"]
        );
        assert_eq!(
            allowed_methods("/api/v1/workorders/WO-000001/accept"),
            ["POST"]
        );
        assert_eq!(
            allowed_methods("/api/v1/users/bob"),
            ["DELETE", "GET", "PATCH"]
        );
        assert!(allowed_methods("/api/v1/nothing").is_empty());
        // What the router would dispatch, for the policy: shadowed patterns included.
        assert_eq!(
            super::routed_methods("/api/v1/rules/reload"),
            ["GET", "POST", "PUT"]
        );
        assert!(super::routed_methods("/").contains(&"GET"));
        assert!(super::routed_methods("/api/v1/nothing").is_empty());
    }

    #[test]
    fn no_route_bypasses_the_route_table() {
        let src = include_str!("mod.rs");
        let code = &src[..src.find("#[cfg(test)]").unwrap_or(src.len())];
        // The one `.route(` is the table's own registration.
        assert_eq!(
            code.matches(".route(").count(),
            1,
            "register REST routes in the routes! table, so that OpenAPI and the policy see them"
        );
        assert!(!code.contains("web::resource(") && !code.contains("web::scope("));
    }

    #[test]
    fn the_documented_role_of_every_operation_is_the_policys() {
        let doc = openapi();
        for (method, path) in operations(&doc) {
            let op = &doc["paths"][&path][&method];
            let documented = op["x-cistern-role"].as_str().unwrap_or_else(|| {
                panic!("{method} {path} has no x-cistern-role");
            });
            // A concrete path: every `{param}` filled in.
            let concrete: Vec<String> = path
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "x1".to_owned()
                    } else {
                        s.to_owned()
                    }
                })
                .collect();
            let enforced = match policy::required(&method.to_uppercase(), &concrete.join("/")) {
                Access::Public => "public".to_owned(),
                Access::Role(r) => r.to_string(),
            };
            assert_eq!(documented, enforced, "{method} {path}");
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            assert_eq!(public, documented == "public", "{method} {path}: security");
        }
    }

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_in_openapi_resolves() {
        let doc = openapi();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external ref {r}"));
            assert!(doc.pointer(pointer).is_some(), "dangling {r}");
        }
    }
}
