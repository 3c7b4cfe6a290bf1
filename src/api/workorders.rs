//! Work orders over REST:
//!
//! - `GET /api/v1/workorders` — filters `state`, `open`, `type`, `priority`, `zone`, `team`,
//!   `assignee` (`me` for the caller), `room`, `overdue`, `limit` (≤ 1,000, default 200), newest
//!   first;
//! - `GET /api/v1/workorders/export?format=xlsx|csv&lang=` — the same filters (limit ≤ 100,000,
//!   default 10,000) as a spreadsheet in the caller's language;
//! - `POST /api/v1/workorders` `{template, room, priority?, assignee?, comment?}` — an order by
//!   hand (operator); 409 `order_exists` with the open order's id while the room has one of the
//!   same cause;
//! - `GET /api/v1/workorders/{id}`;
//! - `POST /api/v1/workorders/{id}/{action}` — `dispatch {team?, assignee?}`, `accept`,
//!   `en_route`, `on_site`, `check {item, done, reading?}`, `complete {cause, remedy, parts?,
//!   minutes?}`, `verify`, `reject`, `hold`, `resume`, `cancel`, `comment`; every body may carry
//!   `comment` and `position {lat, lon, accuracy_m?}`. Crews act on their own orders;
//!   dispatching, verifying and cancelling need an operator (the model's table decides);
//! - `GET /api/v1/workorder-templates`, `GET /api/v1/teams`;
//! - `GET /api/v1/workorder-kpis?from=&to=&by=team|zone|priority|assignee|all` — acknowledge,
//!   response, resolution, SLA compliance, first-time fix, close rate, backlog age, repeat failures;
//! - `GET /api/v1/knowledge?q=…` (search the knowledge base) or `?problem=pump_fault` (its
//!   causes and remedies ranked by how often each closed an order here). An order's page
//!   (`GET /api/v1/workorders/{id}`) carries its problem's ranked `suggestions`;
//! - `PUT /api/v1/knowledge/{problem}` — an engineer's (rule author's) version of a problem.
//!
//! Every command, taken or refused, is audited as `workorder_<action>`.

use super::error::{ApiError, ErrorCode};
use super::users::caller;
use super::ApiState;
use crate::auth::{Principal, Role};
use crate::business::workorders::model::{
    Caller, Command, Context, OrderError, PartUse, Position, Resolution,
};
use crate::business::workorders::service::NewOrder;
use crate::business::workorders::store::OrderFilter;
use crate::business::workorders::{OrderId, OrderState, OrderType, WorkOrders, WorkOrdersError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_rules::Severity;
use cistern_schemas::RoomId;
use serde::Deserialize;
use std::sync::Arc;

const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 1_000;

/// The node's work orders, or 404 `no_workorders` (shared with the field side's routes).
pub(super) fn service(state: &ApiState) -> Result<&Arc<WorkOrders>, ApiError> {
    state.workorders.as_ref().ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::NoWorkOrders,
            "this node keeps no work orders (it needs a store and alarm rules)",
        )
    })
}

impl From<WorkOrdersError> for ApiError {
    fn from(e: WorkOrdersError) -> Self {
        let message = e.to_string();
        match e {
            WorkOrdersError::Order(OrderError::InvalidTransition { .. }) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidTransition, message)
            }
            WorkOrdersError::Order(OrderError::NotAssignee { .. }) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::NotAssignee, message)
            }
            WorkOrdersError::Order(OrderError::NotDispatcher(_)) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
            }
            WorkOrdersError::Order(OrderError::Invalid(_)) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidOrder,
                message,
            ),
            WorkOrdersError::UnknownOrder(_) => {
                ApiError::not_found(ErrorCode::UnknownOrder, message)
            }
            WorkOrdersError::UnknownTemplate(_) => {
                ApiError::bad_request(ErrorCode::UnknownTemplate, message)
            }
            WorkOrdersError::UnknownRoom(_) => {
                ApiError::bad_request(ErrorCode::UnknownRoom, message)
            }
            WorkOrdersError::UnknownTeam(_) => {
                ApiError::bad_request(ErrorCode::UnknownTeam, message)
            }
            WorkOrdersError::InvalidKnowledge(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidKnowledge,
                message,
            ),
            WorkOrdersError::Busy(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Busy, message)
            }
            WorkOrdersError::Order(OrderError::PhotosMissing { .. }) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::PhotosMissing,
                message,
            ),
            WorkOrdersError::Order(OrderError::TooManyAttachments { .. }) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::TooManyAttachments, message)
            }
            WorkOrdersError::Attachment(e) => super::workorder_field::attachment_refused(&e),
            WorkOrdersError::Position(e) => super::workorder_field::position_refused(&e),
            WorkOrdersError::Store(e) => ApiError::store_unavailable(e),
            WorkOrdersError::Corrupt(_)
            | WorkOrdersError::Templates(_)
            | WorkOrdersError::Roster(_) => ApiError::internal(message),
        }
    }
}

/// `GET /api/v1/workorders` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<OrderState>,
    pub open: Option<bool>,
    #[serde(rename = "type")]
    pub kind: Option<OrderType>,
    pub priority: Option<Severity>,
    pub zone: Option<String>,
    pub team: Option<String>,
    pub assignee: Option<String>,
    pub room: Option<String>,
    pub overdue: Option<bool>,
    pub limit: Option<usize>,
}

impl ListQuery {
    /// The store's filter of this query for `who`, at most `max` orders (`default` when the
    /// query names no limit) — the list and the export read the same orders for the same query.
    fn filter(
        self,
        who: &Principal,
        svc: &WorkOrders,
        default: usize,
        max: usize,
    ) -> Result<OrderFilter, ApiError> {
        let limit = self.limit.unwrap_or(default);
        if limit == 0 || limit > max {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidLimit,
                format!("limit must be 1 to {max}"),
            ));
        }
        Ok(OrderFilter {
            state: self.state,
            open: self.open,
            kind: self.kind,
            priority: self.priority,
            zone: self.zone,
            team: self.team,
            assignee: self
                .assignee
                .map(|a| if a == "me" { who.user.clone() } else { a }),
            room: self.room,
            overdue_at: self.overdue.filter(|o| *o).map(|_| svc.now()),
            limit,
        })
    }
}

pub async fn list(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let filter = query
        .into_inner()
        .filter(&who, svc, DEFAULT_LIMIT, MAX_LIMIT)?;
    let orders = svc.list(&filter).await?;
    let now = svc.now();
    let overdue: Vec<bool> = orders.iter().map(|o| o.overdue(now)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "orders": orders,
        "overdue": overdue,
        "now": now,
    })))
}

/// An export without a limit holds this many orders at most…
const DEFAULT_EXPORT: usize = 10_000;
/// …and with one, this many.
const MAX_EXPORT: usize = 100_000;

/// The export's own parameters (the rest of the query is the list's, see [`ListQuery`]).
#[derive(Debug, Deserialize, Default)]
struct ExportQuery {
    format: Option<String>,
    lang: Option<String>,
}

/// `GET /api/v1/workorders/export?format=xlsx|csv&lang=zh-CN|en&…` — the orders the same
/// filters list, as a spreadsheet; headers and words in `lang`, else the caller's chosen
/// language, else Chinese.
pub async fn export(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    use crate::business::workorders::export;
    let svc = service(&state)?;
    let who = caller(&req)?;
    let raw = req.query_string();
    let own = |pair: &&str| {
        let key = pair.split('=').next().unwrap_or_default();
        key == "format" || key == "lang"
    };
    let mine: Vec<&str> = raw.split('&').filter(own).collect();
    let rest: Vec<&str> = raw
        .split('&')
        .filter(|p| !p.is_empty() && !own(p))
        .collect();
    let extra = web::Query::<ExportQuery>::from_query(&mine.join("&"))
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidQuery, e.to_string()))?
        .into_inner();
    let query = web::Query::<ListQuery>::from_query(&rest.join("&"))
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidQuery, e.to_string()))?
        .into_inner();
    let language = super::users::language_of(&state, &who, extra.lang.as_deref())?;
    let xlsx = match extra.format.as_deref().unwrap_or("xlsx") {
        "xlsx" => true,
        "csv" => false,
        other => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("format must be xlsx or csv (got {other:?})"),
            ))
        }
    };
    let filter = query.filter(&who, svc, DEFAULT_EXPORT, MAX_EXPORT)?;
    let orders = svc.list(&filter).await?;
    let now = svc.now();
    let labels = export_labels(language, svc.roster().offset_minutes());
    let rows: Vec<_> = orders
        .iter()
        .map(|o| export::row(o, o.overdue(now), &labels))
        .collect();
    let stem = format!(
        "workorders-{}",
        export::local_text(now, labels.offset_minutes)
            .get(..16)
            .unwrap_or_default()
            .replace([' ', ':'], "")
            .replace('-', "")
    );
    let (bytes, kind, ext) = if xlsx {
        (
            export::xlsx(&rows, &labels, "workorders"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        )
    } else {
        (
            export::csv(&rows, &labels),
            "text/csv; charset=utf-8",
            "csv",
        )
    };
    state.security.record(
        &who,
        "data_export",
        "workorders",
        match &bytes {
            Ok(_) => format!("{} orders as {ext}", rows.len()),
            Err(e) => format!("failed: {e}"),
        },
        bytes.is_ok(),
    );
    let bytes = bytes.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type(kind)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{stem}.{ext}\""),
        ))
        .body(bytes))
}

/// The export's words in `language`, from the console's own catalogues (one source of words).
pub fn export_labels(
    language: crate::auth::identity::Language,
    offset_minutes: i64,
) -> crate::business::workorders::export::Labels {
    use crate::auth::identity::Language;
    use crate::business::workorders::export::{Labels, COLUMNS};
    let orders = &super::webui::catalogue(language)["orders"];
    let word = |v: &serde_json::Value, fallback: &str| {
        v.as_str()
            .map_or_else(|| fallback.to_owned(), str::to_owned)
    };
    let mut words = std::collections::HashMap::new();
    for s in OrderState::ALL {
        words.insert(
            s.as_str().to_owned(),
            word(&orders["states"][s.as_str()], s.as_str()),
        );
    }
    for k in OrderType::ALL {
        words.insert(
            k.as_str().to_owned(),
            word(&orders["types"][k.as_str()], k.as_str()),
        );
    }
    Labels {
        headers: COLUMNS
            .iter()
            .map(|c| word(&orders[format!("col_{c}")], c))
            .collect(),
        words,
        overdue: word(&orders["overdue"], "overdue"),
        chinese: language == Language::ZhCn,
        offset_minutes,
    }
}

pub async fn get(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let id = order_id(&path)?;
    let order = svc.get(&id).await?;
    let overdue = order.overdue(svc.now());
    let suggestions = svc.knowledge().suggest(&order.cause).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "order": order,
        "overdue": overdue,
        "suggestions": suggestions,
    })))
}

pub(super) fn order_id(raw: &str) -> Result<OrderId, ApiError> {
    OrderId::try_from(raw.to_owned()).map_err(|e| ApiError::bad_request(ErrorCode::InvalidPath, e))
}

/// `POST /api/v1/workorders` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub template: String,
    pub room: String,
    #[serde(default)]
    pub priority: Option<Severity>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

pub async fn create(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let body = body.into_inner();
    let target = format!("{}/{}", body.room, body.template);
    let result = async {
        let room = RoomId::new(&body.room)
            .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?;
        let new = NewOrder {
            template: body.template.clone(),
            room,
            priority: body.priority,
            assignee: body.assignee.clone(),
            comment: body.comment.clone(),
        };
        match svc.create(new, &who.user).await? {
            Ok(order) => Ok(order),
            Err(open) => Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::OrderExists,
                format!("{open} is open for this room and cause; add to it instead"),
            )),
        }
    }
    .await;
    audit(&state, &who, "create", &target, &result);
    let order = result?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "order": order })))
}

/// `POST /api/v1/workorders/{id}/{action}` body (every field optional; each action reads its
/// own).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    pub comment: Option<String>,
    pub position: Option<Position>,
    pub team: Option<String>,
    pub assignee: Option<String>,
    pub item: Option<usize>,
    pub done: Option<bool>,
    pub reading: Option<f64>,
    pub cause: Option<String>,
    pub remedy: Option<String>,
    #[serde(default)]
    pub parts: Vec<PartUse>,
    pub minutes: Option<u32>,
}

/// The commands of `POST /api/v1/workorders/{id}/{action}` (as [`command_of`] reads them).
const ACTIONS: [&str; 12] = [
    "dispatch", "accept", "en_route", "on_site", "check", "complete", "verify", "reject", "hold",
    "resume", "cancel", "comment",
];

fn command_of(action: &str, body: &CommandBody) -> Result<Command, ApiError> {
    Ok(match action {
        "dispatch" => Command::Dispatch {
            team: body.team.clone(),
            assignee: body.assignee.clone(),
        },
        "accept" => Command::Accept,
        "en_route" => Command::EnRoute,
        "on_site" => Command::OnSite,
        "check" => Command::Check {
            item: body.item.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidOrder,
                    "check needs `item` (the checklist index)",
                )
            })?,
            done: body.done.unwrap_or(true),
            reading: body.reading,
        },
        "complete" => Command::Complete {
            resolution: match (&body.cause, &body.remedy) {
                (Some(cause), Some(remedy)) => Some(Resolution {
                    cause: cause.clone(),
                    remedy: remedy.clone(),
                }),
                _ => None,
            },
            parts: body.parts.clone(),
            minutes: body.minutes.unwrap_or(0),
        },
        "verify" => Command::Verify,
        "reject" => Command::Reject,
        "hold" => Command::Hold,
        "resume" => Command::Resume,
        "cancel" => Command::Cancel,
        "comment" => Command::Comment,
        other => {
            return Err(ApiError::not_found(
                ErrorCode::UnknownAction,
                format!(
                    "no work-order action {other:?} (dispatch, accept, en_route, on_site, check, \
                     complete, verify, reject, hold, resume, cancel, comment)"
                ),
            ))
        }
    })
}

pub async fn command(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (raw_id, action) = path.into_inner();
    // `{action}` also matches the order's own sub-resources (`trail`, served with GET only):
    // a POST there is 405 with `Allow`, before the body is read, as for any other resource.
    if !ACTIONS.contains(&action.as_str()) {
        let others: Vec<&str> = super::allowed_methods(req.path())
            .into_iter()
            .filter(|m| *m != "POST")
            .collect();
        if !others.is_empty() {
            return Ok(super::error::method_not_allowed(&others));
        }
    }
    let svc = service(&state)?;
    let who = caller(&req)?;
    let body: CommandBody = super::error::json_body(&req, &body)?;
    let result = async {
        let id = order_id(&raw_id)?;
        let command = command_of(&action, &body)?;
        let caller = Caller {
            user: who.user.clone(),
            dispatcher: who.role >= Role::Operator,
        };
        let context = Context {
            comment: body.comment.clone(),
            position: body.position,
        };
        Ok(svc.command(&id, command, &caller, context).await?)
    }
    .await;
    audit(&state, &who, &action, &raw_id, &result);
    let order = result?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "order": order })))
}

fn audit<T>(
    state: &ApiState,
    who: &Principal,
    action: &str,
    target: &str,
    result: &Result<T, ApiError>,
) {
    let (detail, ok) = super::audit::outcome(result, |_| String::new());
    // An action the node does not know is audited as `workorder_unknown`, never under a
    // name the caller made up.
    let name = format!("workorder_{action}");
    let name = if crate::auth::audit::ACTIONS.contains(&name.as_str()) {
        name
    } else {
        "workorder_unknown".to_owned()
    };
    state.security.record(who, &name, target, detail, ok);
}

pub async fn templates(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let list: Vec<_> = svc.templates().iter().collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "templates": list })))
}

pub async fn teams(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let now = svc.now();
    let teams: Vec<_> = svc
        .roster()
        .teams()
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "name": t.name,
                "name_en": t.name_en,
                "zones": t.zones,
                "lead": t.lead,
                "manager": t.manager,
                "members": t.members,
                "on_call_now": svc.roster().on_call(t, now),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "teams": teams })))
}

/// `GET /api/v1/knowledge` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeQuery {
    /// Words in any text of a problem, cause or remedy (either language).
    #[serde(default)]
    pub q: String,
    /// One problem (an alarm rule), with its ranked suggestions.
    pub problem: Option<String>,
}

pub async fn knowledge(
    state: web::Data<ApiState>,
    query: web::Query<KnowledgeQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let kb = svc.knowledge();
    if let Some(p) = &query.problem {
        let suggestions = kb.suggest(p).await?;
        return Ok(HttpResponse::Ok().json(serde_json::json!({
            "problems": kb.problem(p).into_iter().collect::<Vec<_>>(),
            "suggestions": suggestions,
        })));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "problems": kb.search(&query.q) })))
}

/// `PUT /api/v1/knowledge/{problem}` — an engineer's (rule author's) version of a problem with
/// its causes and remedies, new or replacing the library's; audited as `knowledge_edit`.
pub async fn edit_knowledge(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<crate::business::workorders::knowledge::Problem>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let id = path.into_inner();
    let problem = body.into_inner();
    let result = async {
        if problem.id != id {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidKnowledge,
                format!("the body is problem {:?}, the path {id:?}", problem.id),
            ));
        }
        Ok(svc.knowledge().edit(problem.clone()).await?)
    }
    .await;
    let (detail, ok) = super::audit::outcome(&result, |new| {
        format!(
            "{} with {} causes",
            if *new { "added" } else { "replaced" },
            problem.causes.len()
        )
    });
    state
        .security
        .record(&who, "knowledge_edit", &id, detail, ok);
    let new = result?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status)
        .json(serde_json::json!({ "problem": svc.knowledge().problem(&id) })))
}

/// `GET /api/v1/workorder-kpis` query: the period's bounds in ms (default: the last 30 days)
/// and the grouping.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiQuery {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub by: Option<crate::business::workorders::kpi::GroupBy>,
}

/// The longest KPI period: a year.
const MAX_KPI_PERIOD_MS: i64 = 366 * 86_400_000;

pub async fn kpis(
    state: web::Data<ApiState>,
    query: web::Query<KpiQuery>,
) -> Result<HttpResponse, ApiError> {
    use crate::business::workorders::kpi::GroupBy;
    let svc = service(&state)?;
    let now = svc.now().as_millis();
    let to = query.to.unwrap_or(now);
    let from = query.from.unwrap_or(to - 30 * 86_400_000);
    if from > to || to - from > MAX_KPI_PERIOD_MS || from < 0 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidPeriod,
            "from must be before to, both in ms since 1970, at most a year apart",
        ));
    }
    let by = query.by.unwrap_or(GroupBy::All);
    let rows = svc
        .kpis(
            cistern_schemas::Timestamp(from),
            cistern_schemas::Timestamp(to),
            by,
        )
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "from": from, "to": to, "kpis": rows })))
}
