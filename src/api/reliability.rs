//! `/api/v1/reliability`: the parts lifecycle (issue 21 items 3–5) — the failure curves per
//! class and per vendor/model with R(t) and h(t) sampled for plotting, the components with
//! their risk (filtered by room, class, vendor), one component with its events and curve, an
//! event recorded by hand, the monthly replacement plan, the spare-parts forecast against
//! stock (stock settable), and the suppliers' comparison. Viewers read; rule authors and
//! admins write (the policy table); every write is audited (`component_event`,
//! `spare_stock_set`).

use super::error::{ApiError, ErrorCode};
use super::users::caller;
use super::ApiState;
use crate::business::assets::lifecycle::analysis::{self, Curve};
use crate::business::assets::lifecycle::model::{ComponentClass, ComponentId, EventKind};
use crate::business::assets::lifecycle::service::{Figures, Lifecycle};
use crate::business::assets::lifecycle::LifecycleError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_schemas::{EquipmentTag, RoomId, Timestamp};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

fn service(state: &ApiState) -> Result<&Arc<Lifecycle>, ApiError> {
    state.lifecycle.as_ref().ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::NoLifecycle,
            "this node keeps no parts lifecycle (it needs a store)",
        )
    })
}

/// The figures, computed off the HTTP worker when the cache is stale (a fleet's fits and
/// risks are a few hundred ms of CPU in a debug build).
async fn figures(svc: &Arc<Lifecycle>) -> Result<Arc<Figures>, ApiError> {
    let svc = svc.clone();
    web::block(move || svc.figures())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        let message = e.to_string();
        match e {
            LifecycleError::UnknownComponent(_) => {
                ApiError::not_found(ErrorCode::UnknownComponent, message)
            }
            LifecycleError::Invalid(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidEvent,
                message,
            ),
            LifecycleError::Records(r) => ApiError::store_unavailable(r),
            LifecycleError::Encoding(_) => ApiError::internal(message),
        }
    }
}

/// Points per plotted curve.
const CURVE_POINTS: usize = 60;

fn curve_json(c: &Curve) -> serde_json::Value {
    json!({
        "curve": c,
        "points": analysis::sample(&c.weibull(), CURVE_POINTS),
        "literature_points": analysis::sample(
            &c.class.literature(),
            CURVE_POINTS,
        ),
    })
}

/// `GET /api/v1/reliability/classes`: per class its curve (fit or literature, with why) and
/// the vendor/model fits, each with `[t, R(t), h(t) per 10⁴ h]` points.
pub async fn classes(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let f = figures(svc).await?;
    let classes: Vec<_> = f.fits.classes.values().map(curve_json).collect();
    let models: Vec<_> = f.fits.models.iter().map(curve_json).collect();
    let components = |class: ComponentClass| f.risks.iter().filter(|r| r.class == class).count();
    let counts: serde_json::Map<String, serde_json::Value> = ComponentClass::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), json!(components(*c))))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "at": f.at,
        "classes": classes,
        "models": models,
        "components": counts,
    })))
}

/// `GET /api/v1/reliability/components` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentQuery {
    pub room: Option<String>,
    pub class: Option<String>,
    pub vendor: Option<String>,
    /// At most this many (default 500, at most 10,000), riskiest (P 90 d) first.
    pub limit: Option<usize>,
}

fn parse_class(s: &str) -> Result<ComponentClass, ApiError> {
    ComponentClass::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("unknown component class {s:?}"),
        )
    })
}

/// `GET /api/v1/reliability/components`: the components with their risk now.
pub async fn components(
    state: web::Data<ApiState>,
    query: web::Query<ComponentQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let q = query.into_inner();
    let room = q
        .room
        .as_deref()
        .map(RoomId::new)
        .transpose()
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?;
    let class = q.class.as_deref().map(parse_class).transpose()?;
    let limit = q.limit.unwrap_or(500);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLimit,
            "limit is 1 to 10000",
        ));
    }
    let f = figures(svc).await?;
    let mut risks: Vec<_> = f
        .risks
        .iter()
        .filter(|r| room.as_ref().is_none_or(|x| &r.room == x))
        .filter(|r| class.is_none_or(|k| r.class == k))
        .filter(|r| q.vendor.as_deref().is_none_or(|v| r.vendor == v))
        .collect();
    let total = risks.len();
    if room.is_none() {
        risks.sort_by(|a, b| b.p90.total_cmp(&a.p90));
    }
    risks.truncate(limit);
    Ok(HttpResponse::Ok().json(json!({ "at": f.at, "total": total, "components": risks })))
}

fn component_id(path: &(String, String, String)) -> Result<ComponentId, ApiError> {
    let (room, tag, class) = path;
    let room = RoomId::new(room)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?;
    let tag: EquipmentTag = tag.parse().map_err(|e: cistern_schemas::IdError| {
        ApiError::bad_request(ErrorCode::InvalidPath, e.to_string())
    })?;
    let class = ComponentClass::parse(class).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidPath,
            format!("unknown component class {class:?}"),
        )
    })?;
    Ok(ComponentId::new(&room, &tag, class))
}

/// `GET /api/v1/reliability/components/{room}/{tag}/{class}`: the component, its events, its
/// risk and its curve.
pub async fn component(
    state: web::Data<ApiState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let id = component_id(&path)?;
    let c = svc.component(&id).ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::UnknownComponent,
            format!("unknown component {id}"),
        )
    })?;
    let f = figures(svc).await?;
    let risk = f.risks.iter().find(|r| r.id == id);
    let curve = f.fits.for_component(&c).map(curve_json);
    Ok(HttpResponse::Ok().json(json!({ "component": c, "risk": risk, "curve": curve })))
}

/// `POST …/events` body: an event by hand.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// `install`, `replacement` or `failure`.
    pub kind: String,
    /// When (ms since the epoch; default now).
    pub at: Option<i64>,
    #[serde(default)]
    pub serial: String,
    #[serde(default)]
    pub note: String,
}

/// `POST /api/v1/reliability/components/{room}/{tag}/{class}/events` (rule author).
pub async fn record_event(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Json<EventBody>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let target = format!("{}/{}/{}", path.0, path.1, path.2);
    let b = body.into_inner();
    let result = async {
        let id = component_id(&path)?;
        let kind = EventKind::parse(&b.kind).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidEvent,
                format!("kind {:?}: install, replacement or failure", b.kind),
            )
        })?;
        Ok(svc
            .record_manual(
                &id,
                kind,
                b.at.map(Timestamp::from_millis),
                b.serial.clone(),
                b.note.clone(),
                &who.user,
            )
            .await?)
    }
    .await;
    let (detail, ok) = super::audit::outcome(&result, |_| format!("{} recorded", b.kind));
    state
        .security
        .record(&who, "component_event", &target, detail, ok);
    let c = result?;
    Ok(HttpResponse::Created().json(json!({ "component": c })))
}

/// `GET /api/v1/reliability/plan`: the replacement plan by month (next 12) and the
/// replacements due, soonest first (at most `limit`, default 200).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    pub room: Option<String>,
    pub limit: Option<usize>,
}

pub async fn plan(
    state: web::Data<ApiState>,
    query: web::Query<PlanQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(200).min(10_000);
    let f = figures(svc).await?;
    let mut due: Vec<_> = f
        .risks
        .iter()
        .filter(|r| r.next_replacement.is_some())
        .filter(|r| q.room.as_deref().is_none_or(|x| r.room.as_str() == x))
        .collect();
    due.sort_by_key(|r| r.next_replacement);
    due.truncate(limit);
    Ok(HttpResponse::Ok().json(json!({
        "at": f.at,
        "months": f.plan.months,
        "overdue": f.plan.overdue,
        "lead_days": svc.config().lead_days,
        "due": due,
    })))
}

/// `GET /api/v1/reliability/spares`: demand per part number over the horizon against stock.
pub async fn spares(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let f = figures(svc).await?;
    Ok(HttpResponse::Ok().json(json!({
        "at": f.at,
        "horizon_days": svc.config().horizon_days,
        "spares": f.spares,
        "reorder": f.spares.iter().filter(|s| s.reorder).count(),
    })))
}

/// `PUT /api/v1/reliability/stock/{part}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockBody {
    pub quantity: u32,
}

/// `PUT /api/v1/reliability/stock/{part}` (rule author): the stock on hand of a part number.
pub async fn set_stock(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<StockBody>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let part = path.into_inner();
    let quantity = body.quantity;
    let result = if quantity > 1_000_000 {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidStock,
            "quantity is 0 to 1000000",
        ))
    } else {
        svc.set_stock(&part, quantity, &who.user)
            .await
            .map_err(|e| match e {
                LifecycleError::Invalid(m) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidStock, m)
                }
                other => other.into(),
            })
    };
    let (detail, ok) = super::audit::outcome(&result, |s| format!("stock {}", s.quantity));
    state
        .security
        .record(&who, "spare_stock_set", &part, detail, ok);
    let stock = result?;
    Ok(HttpResponse::Ok().json(json!({ "stock": stock })))
}

/// `GET /api/v1/reliability/suppliers`: failures, run hours and MTBF per class, vendor and
/// model. With work orders, `orders`: the last 365 days' orders and linked alarms by pump vendor and
/// model.
pub async fn suppliers(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let f = figures(svc).await?;
    let orders = match &state.workorders {
        Some(o) => svc.order_statistics(o, 365).await?,
        None => Vec::new(),
    };
    Ok(HttpResponse::Ok().json(json!({ "at": f.at, "suppliers": f.suppliers, "orders": orders })))
}
