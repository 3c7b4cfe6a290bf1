//! `/api/v1/analysis`: a room's daily figures over a period (closed days from the ledger,
//! today live), one day's full facts, and a day computed again on request (late data, a
//! corrected curve). Any signed-in user reads; operators recompute (audited, `analysis_recompute`).
//! The energy, efficiency, leakage, comparison, score and cockpit reports build on the same
//! service (`crate::business::analysis::Analysis`).

use super::error::{ApiError, ErrorCode};
use super::users::caller;
use super::ApiState;
use crate::business::analysis::{Analysis, AnalysisError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_schemas::{Date, RoomId};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The longest period one request may ask for, in days (a little over two years: 同比 of a
/// year).
pub const MAX_PERIOD_DAYS: i32 = 800;

/// The node's analysis service, or the refusal a node without one gives.
pub fn service(state: &ApiState) -> Result<&Arc<Analysis>, ApiError> {
    state.analysis.as_ref().ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::NoAnalysis,
            "this node keeps no analysis (it needs a store and history)",
        )
    })
}

impl From<AnalysisError> for ApiError {
    fn from(e: AnalysisError) -> Self {
        let message = e.to_string();
        match e {
            AnalysisError::UnknownRoom(_) => ApiError::not_found(ErrorCode::UnknownRoom, message),
            AnalysisError::Future(..) => invalid_date(message),
            AnalysisError::NoHistory => ApiError::not_found(ErrorCode::NoAnalysis, message),
            AnalysisError::Records(r) => ApiError::store_unavailable(r),
            AnalysisError::Store(s) => ApiError::store_unavailable(s),
            AnalysisError::Encoding(_) => ApiError::internal(message),
        }
    }
}

pub fn invalid_date(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidDate,
        message,
    )
}

/// A `YYYY-MM-DD` parameter.
pub fn parse_date(name: &str, value: &str) -> Result<Date, ApiError> {
    value
        .parse::<Date>()
        .map_err(|e| invalid_date(format!("{name}: {e}")))
}

/// `[from, to]` from optional parameters: `to` defaults to today, `from` to `default_days`
/// before `to`; refused when reversed or longer than [`MAX_PERIOD_DAYS`].
pub fn period(
    svc: &Analysis,
    from: Option<&str>,
    to: Option<&str>,
    default_days: i32,
) -> Result<(Date, Date), ApiError> {
    let to = match to {
        Some(t) => parse_date("to", t)?,
        None => svc.today(),
    };
    let from = match from {
        Some(f) => parse_date("from", f)?,
        None => to.plus_days(1 - default_days),
    };
    if from > to {
        return Err(invalid_date(format!("from {from} is after to {to}")));
    }
    if to.days() - from.days() >= MAX_PERIOD_DAYS {
        return Err(invalid_date(format!(
            "{from}..{to} is longer than {MAX_PERIOD_DAYS} days"
        )));
    }
    Ok((from, to))
}

fn room_of(svc: &Analysis, room: &str) -> Result<RoomId, ApiError> {
    let id = RoomId::new(room)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidQuery, e.to_string()))?;
    if svc.room(&id).is_none() {
        return Err(ApiError::not_found(
            ErrorCode::UnknownRoom,
            format!("unknown room {id}"),
        ));
    }
    Ok(id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaysQuery {
    pub room: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// `GET /api/v1/analysis/days?room=&from=&to=`: the room's figures for each day of the period
/// that has them (default: the last 31 days to today), today's marked live.
pub async fn days(
    state: web::Data<ApiState>,
    q: web::Query<DaysQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let room = room_of(svc, &q.room)?;
    let (from, to) = period(svc, q.from.as_deref(), q.to.as_deref(), 31)?;
    let today = svc.today();
    let days: Vec<_> = svc
        .figures(&room, from, to)
        .into_iter()
        .map(|(date, f)| json!({ "date": date, "live": date >= today, "figures": f }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "room": room,
        "from": from,
        "to": to,
        "today": today,
        "since": svc.since(),
        "days": days,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayQuery {
    pub room: String,
    pub date: Option<String>,
}

/// `GET /api/v1/analysis/day?room=&date=`: one day's full facts (default today, live).
pub async fn day(
    state: web::Data<ApiState>,
    q: web::Query<DayQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let room = room_of(svc, &q.room)?;
    let date = match &q.date {
        Some(d) => parse_date("date", d)?,
        None => svc.today(),
    };
    match svc.day(&room, date).await? {
        Some(day) => Ok(HttpResponse::Ok().json(json!({ "day": day, "figures": day.figures() }))),
        None => Err(ApiError::not_found(
            ErrorCode::InvalidDate,
            format!(
                "{room} has no analysis of {date}: the node began on {}",
                svc.since()
            ),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecomputeBody {
    pub room: String,
    pub date: String,
}

/// `POST /api/v1/analysis/recompute` `{room, date}`: computes the day again from the
/// historian (stored when the day is closed) and returns it. Operators; audited.
pub async fn recompute(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<RecomputeBody>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let b = body.into_inner();
    let target = format!("{}@{}", b.room, b.date);
    let result = async {
        let room = room_of(svc, &b.room)?;
        let date = parse_date("date", &b.date)?;
        Ok::<_, ApiError>(svc.recompute(&room, date).await?)
    }
    .await;
    let (detail, ok) = super::audit::outcome(&result, |d| {
        if d.closed {
            "recomputed and stored".to_string()
        } else {
            "computed live (the day is not closed)".to_string()
        }
    });
    state
        .security
        .record(&who, "analysis_recompute", &target, detail, ok);
    let day = result?;
    Ok(HttpResponse::Ok().json(json!({ "day": day, "figures": day.figures() })))
}
