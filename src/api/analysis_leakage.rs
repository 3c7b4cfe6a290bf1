//! `/api/v1/analysis/leakage`: leakage by minimum night flow (issue 22 item 3). The fleet's rooms
//! by their last closed night's leak index against their own baseline, and one room's nights
//! (MNF, legitimate use, the MNF its baseline stands for, flagged nights, overflow minutes).
//! Read from the analysis service's in-memory ledger of daily figures (no store reads); the
//! baselines are recomputed from the nightly indices on each request, the same way the room
//! engines get them. Any signed-in user reads.

use super::analysis::{parse_date, period, service};
use super::error::{ApiError, ErrorCode};
use super::ApiState;
use crate::business::analysis::day::DayFigures;
use crate::business::analysis::leak_rule::{self, LeakNight};
use actix_web::{web, HttpResponse};
use cistern_schemas::{Date, RoomId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// How many nights before the shown one feed its baseline (the longest baseline window and a
/// little more).
fn history_nights(cfg: &crate::business::analysis::leakage::LeakageConfig) -> i32 {
    cfg.baseline_nights as i32 + cfg.recent_nights as i32 + 3
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetQuery {
    pub date: Option<String>,
}

/// One room's line on the fleet list.
#[derive(Debug, Serialize)]
struct RoomLine {
    room: RoomId,
    name: String,
    zone: String,
    #[serde(flatten)]
    night: Option<LeakNight>,
    /// The index over the baseline (index − baseline).
    excess: Option<f64>,
}

/// `GET /api/v1/analysis/leakage?date=`: every room's night of `date` (default: the last closed
/// day), those most over their own baseline first, then the rest, then rooms without an index.
pub async fn fleet(
    state: web::Data<ApiState>,
    q: web::Query<FleetQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let cfg = &svc.config().leakage;
    let date = match &q.date {
        Some(d) => parse_date("date", d)?,
        None => svc.last_closable(),
    };
    let from = date.plus_days(-history_nights(cfg));
    let mut by_room: BTreeMap<RoomId, Vec<(Date, DayFigures)>> = BTreeMap::new();
    svc.each_figures(from, date, |room, d, f| {
        by_room
            .entry(room.clone())
            .or_default()
            .push((d, f.clone()));
    });
    let mut lines: Vec<RoomLine> = svc
        .rooms()
        .iter()
        .map(|spec| {
            let night = by_room
                .get(&spec.id)
                .map(|days| leak_rule::nights(days, cfg))
                .and_then(|n| n.into_iter().find(|n| n.date == date));
            let excess = night
                .as_ref()
                .and_then(|n| Some(n.leak_index? - n.baseline?));
            RoomLine {
                room: spec.id.clone(),
                name: spec.name.clone(),
                zone: spec.zone.to_string(),
                night,
                excess,
            }
        })
        .collect();
    lines.sort_by(|a, b| {
        let key = |l: &RoomLine| {
            (
                l.night.as_ref().map_or(0, |n| n.nights_over),
                l.excess.or(l.night.as_ref().and_then(|n| n.leak_index)),
            )
        };
        let (ka, kb) = (key(a), key(b));
        kb.0.cmp(&ka.0)
            .then_with(|| match (ka.1, kb.1) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.room.cmp(&b.room))
    });
    Ok(HttpResponse::Ok().json(json!({
        "date": date,
        "today": svc.today(),
        "rooms": lines,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// `GET /api/v1/analysis/leakage/{room}?from=&to=`: the room's nights of the period (default:
/// the 35 nights to the last closed day).
pub async fn room(
    state: web::Data<ApiState>,
    path: web::Path<String>,
    q: web::Query<RoomQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let cfg = &svc.config().leakage;
    let id = RoomId::new(&path.into_inner())
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidQuery, e.to_string()))?;
    let Some(spec) = svc.room(&id) else {
        return Err(ApiError::not_found(
            ErrorCode::UnknownRoom,
            format!("unknown room {id}"),
        ));
    };
    let to_default = svc.last_closable().to_string();
    let (from, to) = period(
        svc,
        q.from.as_deref(),
        Some(q.to.as_deref().unwrap_or(&to_default)),
        35,
    )?;
    let days = svc.figures(&id, from.plus_days(-history_nights(cfg)), to);
    let nights: Vec<LeakNight> = leak_rule::nights(&days, cfg)
        .into_iter()
        .filter(|n| n.date >= from && n.date <= to)
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "room": id,
        "name": spec.name,
        "households": spec.households,
        "from": from,
        "to": to,
        "nights": nights,
    })))
}
