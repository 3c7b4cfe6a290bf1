//! The alarms: `GET /api/v1/alarms` (filters `state`, `severity`, `room`, `zone`, `rule`, each
//! a comma-separated list or value), `GET /api/v1/alarms/{source}/{key}` with its event
//! history, and `POST /api/v1/alarms/{source}/{key}/{action}` — `ack`, `shelve`, `unshelve`,
//! `reset`, `remove_from_service`, `return_to_service` — by a user with a comment.
//!
//! An alarm's id is `<room>/<rule>@<unit>` (`XM-0001/pump_fault@P1`), or
//! `zone:<zone>/zone_event@room` for a supply zone's alarm (which can only be acknowledged).
//! The acting user is the authenticated caller; a body that still names a `user` must name that
//! same one (a mismatch is refused, never silently rewritten). Every command, taken or refused,
//! is audited as `alarm_<action>`.

use super::error::{ApiError, ErrorCode};
use super::{AlarmsApi, ApiState};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_actors::alarms::{AlarmFilter, AlarmView};
use cistern_actors::pump_room::AlarmCommandError;
use cistern_actors::registry::CommandFailed;
use cistern_rules::{AlarmKey, AlarmState, Command, CommandAction, CommandError, Severity};
use cistern_schemas::{RoomId, Timestamp, ZoneId};
use serde::Deserialize;
use std::time::Duration;

/// How far back an alarm's event history goes.
const HISTORY: Duration = Duration::from_secs(90 * 86_400);
const HISTORY_LIMIT: usize = 500;

fn alarms(state: &ApiState) -> Result<&AlarmsApi, ApiError> {
    state.alarms.as_ref().ok_or_else(|| {
        ApiError::not_found(ErrorCode::RulesDisabled, "this node runs no alarm rules")
    })
}

/// `GET /api/v1/alarms` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<String>,
    pub severity: Option<String>,
    pub room: Option<String>,
    pub zone: Option<String>,
    pub rule: Option<String>,
}

fn list_of<T>(
    raw: Option<&str>,
    what: ErrorCode,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, ApiError> {
    raw.into_iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse(s).ok_or_else(|| ApiError::bad_request(what, format!("unknown value {s:?}")))
        })
        .collect()
}

fn parse_state(s: &str) -> Option<AlarmState> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

fn parse_severity(s: &str) -> Option<Severity> {
    serde_json::from_value(serde_json::Value::String(s.to_uppercase())).ok()
}

/// On a cluster node, every live member's alarms ([`super::fleet`]); with
/// `X-Cistern-Scope: local`, the alarms of the rooms this node runs (and its zones' alarms).
pub async fn list(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let local_only = super::fleet::local_scope(&req)?;
    let api = alarms(&state)?;
    let filter = AlarmFilter {
        states: list_of(q.state.as_deref(), ErrorCode::InvalidState, parse_state)?,
        severities: list_of(
            q.severity.as_deref(),
            ErrorCode::InvalidSeverity,
            parse_severity,
        )?,
        room: q
            .room
            .as_deref()
            .map(RoomId::new)
            .transpose()
            .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?,
        zone: q
            .zone
            .as_deref()
            .map(str::parse::<ZoneId>)
            .transpose()
            .map_err(|e| ApiError::bad_request(ErrorCode::InvalidZone, e.to_string()))?,
        rule: q.rule.as_deref().map(str::parse).transpose().map_err(
            |e: cistern_rules::ids::RuleIdError| {
                ApiError::bad_request(ErrorCode::InvalidRule, e.to_string())
            },
        )?,
    };
    let mut list = api.host.board.list(&filter);
    if state.cluster.is_some() {
        // Only the rooms running here: a shard's alarms are its owner's to list.
        list.retain(|v| v.room.as_ref().is_none_or(|r| state.registry.runs(r)));
    }
    let mut by_severity = serde_json::Map::new();
    for s in ["P1", "P2", "P3", "P4"] {
        let n = list.iter().filter(|v| v.severity.as_str() == s).count();
        by_severity.insert(s.into(), n.into());
    }
    let local = serde_json::json!({
        "count": list.len(),
        "by_severity": by_severity,
        "alarms": list,
    });
    match &state.cluster {
        Some(cluster) if !local_only => {
            Ok(HttpResponse::Ok().json(super::fleet::alarms(cluster, &req, local).await))
        }
        _ => Ok(HttpResponse::Ok().json(local)),
    }
}

/// Where an alarm lives.
enum Source {
    Room(RoomId),
    Zone(ZoneId),
}

fn parse_id(source: &str, key: &str) -> Result<(Source, AlarmKey), ApiError> {
    let key: AlarmKey = key.parse().map_err(|e: cistern_rules::ids::RuleIdError| {
        ApiError::bad_request(ErrorCode::InvalidAlarmId, e.to_string())
    })?;
    let source = match source.strip_prefix("zone:") {
        Some(z) => Source::Zone(
            z.parse()
                .map_err(|e| ApiError::bad_request(ErrorCode::InvalidAlarmId, format!("{e}")))?,
        ),
        None => Source::Room(
            RoomId::new(source)
                .map_err(|e| ApiError::bad_request(ErrorCode::InvalidAlarmId, e.to_string()))?,
        ),
    };
    Ok((source, key))
}

/// The alarm's current view: from the board, or (normal alarms are not on it) from its room.
async fn view_of(
    state: &ApiState,
    api: &AlarmsApi,
    source: &Source,
    source_text: &str,
    key: &AlarmKey,
) -> Result<AlarmView, ApiError> {
    let id = cistern_actors::alarms::alarm_id(source_text, key);
    if let Some(v) = api.host.board.get(&id) {
        return Ok(v);
    }
    let unknown = || ApiError::not_found(ErrorCode::UnknownAlarm, format!("no alarm {id}"));
    match source {
        Source::Room(room) => {
            let spec = state.registry.spec(room).ok_or_else(unknown)?;
            let records = state.registry.alarms(room).await?;
            let rec = records.iter().find(|r| &r.key == key).ok_or_else(unknown)?;
            Ok(AlarmView::of(
                source_text,
                Some(room),
                &spec.zone,
                rec,
                false,
                Timestamp::now(),
            ))
        }
        Source::Zone(_) => Err(unknown()),
    }
}

pub async fn get(
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let api = alarms(&state)?;
    let (source_text, key_text) = path.into_inner();
    let (source, key) = parse_id(&source_text, &key_text)?;
    let view = view_of(&state, api, &source, &source_text, &key).await?;
    let events = match &api.stored {
        Some(stored) => {
            let now = Timestamp::now();
            stored
                .events(
                    &source_text,
                    Some(&key),
                    now - HISTORY,
                    now + Duration::from_secs(3600),
                    HISTORY_LIMIT,
                )
                .await
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorCode::StoreUnavailable,
                        e.to_string(),
                    )
                })?
        }
        None => Vec::new(),
    };
    let diagnosis = crate::alarms::diagnosis::diagnose(&crate::alarms::diagnosis::situation(
        &state.registry,
        state.readiness.as_ref(),
        view.room.as_ref(),
    ));
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "alarm": view, "events": events, "diagnosis": diagnosis })))
}

/// The body of a command.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    /// Optional: who acts. The caller is the authenticated principal; if given, it must be
    /// that same name.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub comment: String,
    /// `shelve`: why.
    #[serde(default)]
    pub reason: Option<String>,
    /// `shelve`: for how long (`"2h"`, `"30m"`).
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// `shelve`: until when (ms since the epoch), instead of `for`.
    #[serde(default)]
    pub until: Option<Timestamp>,
}

/// An alarm command, however it arrived (REST or the WebSocket): both go through [`execute`],
/// which applies it as the authenticated principal and audits it.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    /// The alarm's source: a room id, or `zone:<zone>`.
    pub source: String,
    /// The alarm's key (`pump_fault@P1`).
    pub key: String,
    /// `ack`, `shelve`, `unshelve`, `reset`, `remove_from_service`, `return_to_service`.
    pub action: String,
    pub comment: String,
    /// `shelve`: why.
    pub reason: Option<String>,
    /// `shelve`: for how long.
    pub duration: Option<Duration>,
    /// `shelve`: until when, instead of `duration`.
    pub until: Option<Timestamp>,
}

/// What a command did: its events and the alarm's view afterwards.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommandOutcome {
    pub events: Vec<cistern_rules::AlarmEvent>,
    pub alarm: Option<AlarmView>,
}

fn action_of(req: &CommandRequest) -> Result<CommandAction, ApiError> {
    Ok(match req.action.as_str() {
        "ack" => CommandAction::Ack,
        "unshelve" => CommandAction::Unshelve,
        "reset" => CommandAction::Reset,
        "remove_from_service" => CommandAction::RemoveFromService,
        "return_to_service" => CommandAction::ReturnToService,
        "shelve" => {
            let until = match (req.until, req.duration) {
                (Some(t), None) => t,
                (None, Some(d)) => Timestamp::now() + d,
                _ => {
                    return Err(ApiError::bad_request(
                        ErrorCode::InvalidShelve,
                        "shelve needs either `for` (e.g. \"2h\") or `until` (ms since the epoch)",
                    ))
                }
            };
            let reason = req.reason.clone().filter(|r| !r.trim().is_empty()).ok_or_else(|| {
                ApiError::bad_request(ErrorCode::InvalidShelve, "shelve needs a `reason`")
            })?;
            CommandAction::Shelve { until, reason }
        }
        other => {
            return Err(ApiError::not_found(
                ErrorCode::UnknownAction,
                format!(
                    "unknown action {other:?}; known: ack, shelve, unshelve, reset, remove_from_service, return_to_service"
                ),
            ))
        }
    })
}

fn refused(e: CommandError) -> ApiError {
    match e {
        CommandError::UnknownAlarm { .. } => {
            ApiError::not_found(ErrorCode::UnknownAlarm, e.to_string())
        }
        CommandError::BadShelveExpiry { .. } => {
            ApiError::bad_request(ErrorCode::InvalidShelve, e.to_string())
        }
        CommandError::NoUser => ApiError::bad_request(ErrorCode::MissingUser, e.to_string()),
        _ => ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidTransition,
            e.to_string(),
        ),
    }
}

pub async fn command(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Json<CommandBody>,
) -> Result<HttpResponse, ApiError> {
    let who = crate::auth::principal(&req).ok_or(crate::auth::AuthError::Unauthorized)?;
    if body.user.as_deref().is_some_and(|u| u != who.user) {
        return Err(ApiError::bad_request(
            ErrorCode::UserMismatch,
            format!(
                "the body names another user than the authenticated one ({}); leave `user` out",
                who.user
            ),
        ));
    }
    let (source, key, action) = path.into_inner();
    let body = body.into_inner();
    let request = CommandRequest {
        source,
        key,
        action,
        comment: body.comment,
        reason: body.reason,
        duration: body.duration,
        until: body.until,
    };
    let outcome = execute(&state, &who, request).await?;
    Ok(HttpResponse::Ok().json(outcome))
}

/// Applies an alarm command as `who` and audits it (`alarm_<action>`), whether it took effect
/// or not. The role check is the caller's (the REST policy table, the WebSocket session).
pub async fn execute(
    state: &ApiState,
    who: &crate::auth::Principal,
    req: CommandRequest,
) -> Result<CommandOutcome, ApiError> {
    let target = format!("{}/{}", req.source, req.key);
    let audit = format!("alarm_{}", req.action);
    let result = match action_of(&req) {
        Ok(action) => {
            let detail = match &action {
                CommandAction::Shelve { until, reason } => {
                    format!("{reason} (until {}) {}", until.as_millis(), req.comment)
                }
                _ => req.comment.clone(),
            };
            run_command(state, &who.user, &req, action)
                .await
                .map(|outcome| (outcome, detail))
        }
        Err(e) => Err(e),
    };
    let (detail, ok) = super::audit::outcome(&result, |(_, detail)| detail.clone());
    state
        .security
        .record(who, &audit, &target, detail.trim().to_owned(), ok);
    result.map(|(outcome, _)| outcome)
}

async fn run_command(
    state: &ApiState,
    user: &str,
    req: &CommandRequest,
    action: CommandAction,
) -> Result<CommandOutcome, ApiError> {
    let api = alarms(state)?;
    let source_text = req.source.as_str();
    let (source, key) = parse_id(source_text, &req.key)?;
    let events = match &source {
        Source::Room(room) => state
            .registry
            .command(
                room,
                Command {
                    key: key.clone(),
                    action,
                    user: user.to_owned(),
                    comment: req.comment.clone(),
                },
            )
            .await
            .map_err(|e| match e {
                CommandFailed::Route(r) => ApiError::from(r),
                CommandFailed::Alarm(AlarmCommandError::Refused(c)) => refused(c),
                CommandFailed::Alarm(e) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::RoomUnavailable,
                    e.to_string(),
                ),
            })?,
        Source::Zone(zone) => {
            if action != CommandAction::Ack {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::InvalidTransition,
                    "a zone alarm can only be acknowledged",
                ));
            }
            let events = state
                .registry
                .ack_zone(zone, user.to_owned(), req.comment.clone())
                .await?;
            if events.is_empty() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::InvalidTransition,
                    format!("zone alarm {source_text}/{key} has nothing to acknowledge"),
                ));
            }
            events
        }
    };
    let alarm = view_of(state, api, &source, source_text, &key).await.ok();
    Ok(CommandOutcome { events, alarm })
}
