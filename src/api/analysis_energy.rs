//! `/api/v1/analysis/energy` and `/api/v1/analysis/efficiency` (issue 22 items 1 and 2): the
//! energy report of a day, month or year for the fleet, its zones and rooms with 环比, 同比
//! and peer outliers (summed from the service's in-memory ledger of daily figures, never from
//! samples), a room's day of energy by hour, the rooms ranked by the energy their pumps lost,
//! and a room's pumps' day (operating points, BEP ratio, efficiency, curves for the H-Q chart).
//! Any signed-in user reads.

use super::analysis::{invalid_date, parse_date, service};
use super::error::{ApiError, ErrorCode};
use super::ApiState;
use crate::business::analysis::energy_report::{self, EnergyReport, Period, RoomInfo};
use crate::business::analysis::Analysis;
use actix_web::{web, HttpResponse};
use cistern_schemas::{Date, RoomId};
use serde::Deserialize;
use serde_json::json;
use std::cmp::Ordering;
use std::sync::Arc;

/// Rooms listed by default, and at most.
const DEFAULT_LIMIT: usize = 300;
const MAX_LIMIT: usize = 5000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `YYYY-MM-DD`, `YYYY-MM` or `YYYY` (default: this month).
    pub period: Option<String>,
    /// Only this zone's rooms listed (peers are still the whole fleet's).
    pub zone: Option<String>,
    pub limit: Option<usize>,
}

fn parse_period(svc: &Analysis, text: Option<&str>) -> Result<Period, ApiError> {
    match text {
        None => Ok(Period::month_of(svc.today())),
        Some(t) => Period::parse(t).map_err(|e| invalid_date(e.to_string())),
    }
}

fn limit(q: Option<usize>) -> Result<usize, ApiError> {
    match q {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            ErrorCode::InvalidLimit,
            format!("limit {n} is not within 1..={MAX_LIMIT}"),
        )),
    }
}

/// The report of `period`, summed off the HTTP worker (a year of the fleet is a few hundred
/// ms in a debug build).
async fn build(svc: &Arc<Analysis>, period: Period) -> Result<EnergyReport, ApiError> {
    let svc = svc.clone();
    let today = svc.today();
    let report = web::block(move || {
        let rooms: Vec<RoomInfo> = svc
            .rooms()
            .iter()
            .map(|r| RoomInfo {
                id: r.id.clone(),
                name: r.name.clone(),
                zone: r.zone.to_string(),
                households: r.households,
            })
            .collect();
        energy_report::report(&rooms, period, today, |from, to, visit| {
            svc.each_figures(from, to, |room, date, f| visit(room, date, f))
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    report.ok_or_else(|| invalid_date(format!("{} starts after today {today}", period.label())))
}

fn desc(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => b.total_cmp(&a),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// `GET /api/v1/analysis/energy?period=&zone=&limit=`: the period's report; rooms listed
/// outliers first, then by kWh per 1,000 m³·MPa, highest first.
pub async fn report(
    state: web::Data<ApiState>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let period = parse_period(svc, q.period.as_deref())?;
    let limit = limit(q.limit)?;
    let mut r = build(svc, period).await?;
    if let Some(z) = &q.zone {
        if !r.zones.iter().any(|row| &row.key == z) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidZone,
                format!("no rooms in zone {z:?}"),
            ));
        }
        r.rooms.retain(|row| &row.zone == z);
    }
    let outlier = |row: &energy_report::ReportRow| {
        matches!(
            row.peers,
            Some(energy_report::PeerVerdict::Scored { outlier: true, .. })
        )
    };
    r.rooms.sort_by(|a, b| {
        outlier(b)
            .cmp(&outlier(a))
            .then(desc(a.figures.kwh_per_kt_mpa, b.figures.kwh_per_kt_mpa))
            .then(a.key.cmp(&b.key))
    });
    let room_count = r.rooms.len();
    let outliers = r.rooms.iter().filter(|row| outlier(row)).count();
    r.rooms.truncate(limit);
    let mut body = serde_json::to_value(&r).map_err(|e| ApiError::internal(e.to_string()))?;
    body["room_count"] = json!(room_count);
    body["outliers"] = json!(outliers);
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/v1/analysis/efficiency?period=&zone=&limit=`: rooms by the energy their pumps
/// lost against the best point, most first, with the pumps' efficiency and time in the
/// preferred region.
pub async fn ranking(
    state: web::Data<ApiState>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let period = parse_period(svc, q.period.as_deref())?;
    let limit = limit(q.limit)?;
    let r = build(svc, period).await?;
    let mut rooms: Vec<_> = r
        .rooms
        .into_iter()
        .filter(|row| q.zone.as_ref().is_none_or(|z| &row.zone == z))
        .collect();
    rooms.sort_by(|a, b| desc(a.figures.lost_kwh, b.figures.lost_kwh).then(a.key.cmp(&b.key)));
    let room_count = rooms.len();
    rooms.truncate(limit);
    let rooms: Vec<_> = rooms
        .iter()
        .map(|row| json!({ "key": row.key, "name": row.name, "zone": row.zone, "figures": row.figures }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "period": r.period,
        "label": r.label,
        "from": r.from,
        "to": r.to,
        "fleet": r.fleet.figures,
        "room_count": room_count,
        "rooms": rooms,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomDayQuery {
    pub date: Option<String>,
}

async fn room_day(
    state: &ApiState,
    id: &str,
    date: Option<&str>,
) -> Result<(RoomId, Date, crate::business::analysis::day::RoomDay), ApiError> {
    let svc = service(state)?;
    let room = RoomId::new(id)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?;
    let date = match date {
        Some(d) => parse_date("date", d)?,
        None => svc.today(),
    };
    match svc.day(&room, date).await? {
        Some(day) => Ok((room, date, day)),
        None => Err(ApiError::not_found(
            ErrorCode::InvalidDate,
            format!(
                "{room} has no analysis of {date}: the node began on {}",
                svc.since()
            ),
        )),
    }
}

/// `GET /api/v1/analysis/energy/rooms/{id}?date=`: the room's energy of the day by hour, with
/// the counters' resets, wraps, gaps and coverage.
pub async fn room_energy(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    q: web::Query<RoomDayQuery>,
) -> Result<HttpResponse, ApiError> {
    let (room, date, day) = room_day(&state, &path, q.date.as_deref()).await?;
    Ok(HttpResponse::Ok().json(json!({
        "room": room,
        "date": date,
        "closed": day.closed,
        "energy": day.energy,
    })))
}

/// `GET /api/v1/analysis/efficiency/rooms/{id}?date=`: each pump's day — operating points,
/// BEP ratio, time in the preferred region, efficiency, lost kWh, and its curves.
pub async fn room_efficiency(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    q: web::Query<RoomDayQuery>,
) -> Result<HttpResponse, ApiError> {
    let (room, date, day) = room_day(&state, &path, q.date.as_deref()).await?;
    let figures = day.figures();
    Ok(HttpResponse::Ok().json(json!({
        "room": room,
        "date": date,
        "closed": day.closed,
        "pumps": day.pumps,
        "missing": day.energy.missing,
        "figures": figures,
    })))
}
