//! `/api/v1/analysis/scores` and `/api/v1/analysis/score`: the room score (泵房评分, issue 22
//! item 5) — every room ranked within its zone and the fleet with each zone's weakest
//! dimension, and one room's score explained down to its facts with its daily trend. Any
//! signed-in user reads.
//!
//! Scores are computed on request from the analysis ledger (memory) and the services' live
//! facts — the same pass as the cockpit's ([`super::cockpit::gather`]) — so they follow each
//! closed day and a recomputed day at once ("recomputed daily and on demand"). The history:
//! when a room's day closes (or a closed day is recomputed) its score over the window ending
//! that day is stored on the records port ([`keep_history`], kind `analysis_score`) with the
//! services' facts of that moment (alarms on the board, open orders, lifecycle risk, cleaning);
//! the trend shows those stored days and scores any other day now from the ledger with
//! today's service facts (`stored: false`).

use super::analysis::service;
use super::cockpit::{gather, live, model, periods, PeriodKind};
use super::error::{ApiError, ErrorCode};
use super::ApiState;
use crate::business::analysis::cockpit_live::live_scaled;
use crate::business::analysis::score::ScoreDay;
use crate::business::analysis::score::{self, rank, shown, weakest_by_zone, Facts};
use crate::business::analysis::Analysis;
use crate::store::records::{IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut};
use actix_web::{web, HttpResponse};
use cistern_schemas::{Date, RoomId};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

/// The trend's days.
pub const TREND_DAYS: i32 = 30;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoresQuery {
    pub date: Option<String>,
}

/// `GET /api/v1/analysis/scores?date=`: every room's score over the window ending `date`
/// (default: today, live), ranked in the fleet and its zone, and each zone's weakest dimension.
pub async fn scores(
    state: web::Data<ApiState>,
    q: web::Query<ScoresQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let model = model(svc)?;
    let p = periods(svc, &model, PeriodKind::Day, q.date.as_deref())?;
    let (snapshot, scores, _) = gather(&state, svc, &model, p).await;
    let ranked = rank(
        &scores
            .iter()
            .map(|(z, s)| (s.room.clone(), z.clone(), s.score))
            .collect::<Vec<_>>(),
    );
    let names: std::collections::HashMap<&RoomId, &str> = snapshot
        .rooms
        .iter()
        .map(|r| (&r.room, r.name.as_str()))
        .collect();
    let by_room: std::collections::HashMap<&RoomId, &score::RoomScore> =
        scores.iter().map(|(_, s)| (&s.room, s)).collect();
    let rooms: Vec<_> = ranked
        .iter()
        .map(|r| {
            let s = by_room.get(&r.room);
            json!({
                "room": r.room,
                "name": names.get(&r.room),
                "zone": r.zone,
                "score": r.score,
                "fleet_rank": r.fleet_rank,
                "zone_rank": r.zone_rank,
                "fleet_of": r.fleet_of,
                "zone_of": r.zone_of,
                "weakest": s.and_then(|s| s.weakest()).map(|d| &d.key),
                "dimensions": s.map(|s| s.dimensions.iter().map(|d| json!({"key": d.key, "score": d.score})).collect::<Vec<_>>()),
                "missing": s.map(|s| s.missing.len()),
            })
        })
        .collect();
    let zones: Vec<_> = weakest_by_zone(
        &scores
            .iter()
            .map(|(z, s)| (z.clone(), s))
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .map(|w| {
        json!({
            "zone": w.zone,
            "name": snapshot.zone_names.get(&w.zone),
            "weakest": w.dimension,
            "mean": w.mean,
            "rooms": w.rooms,
            "score": w.zone_score,
        })
    })
    .collect();
    Ok(HttpResponse::Ok().json(json!({
        "date": p.to,
        "window": { "from": p.window_from, "to": p.window_to },
        "dimensions": model.dimensions.iter().map(|d| json!({"key": d.key, "weight": d.weight})).collect::<Vec<_>>(),
        "rooms": rooms,
        "zones": zones,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreQuery {
    pub room: String,
    pub date: Option<String>,
}

/// `GET /api/v1/analysis/score?room=&date=`: one room's score with its explanation (each
/// dimension's share and score, each fact's value, points, share and contribution — the
/// contributions add up to the score, and `shown` gives them rounded to tenths so that the
/// rounded figures add up too), what is missing, and the daily trend.
pub async fn score(
    state: web::Data<ApiState>,
    q: web::Query<ScoreQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let room = RoomId::new(&q.room)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?;
    let Some(spec) = svc.room(&room) else {
        return Err(ApiError::not_found(
            ErrorCode::UnknownRoom,
            format!("unknown room {room}"),
        ));
    };
    let model = model(svc)?;
    let p = periods(svc, &model, PeriodKind::Day, q.date.as_deref())?;
    let live = live(&state, svc, &p).await;
    let mut extra = Facts::default();
    if let Some(l) = live.rooms.get(&room) {
        l.score_facts(&mut extra);
    }
    let first = p.to.plus_days(1 - TREND_DAYS);
    let days: Vec<_> = svc
        .figures(&room, first.plus_days(1 - model.window_days as i32), p.to)
        .into_iter()
        .map(|(d, f)| match p.live {
            Some((today, elapsed)) if today == d => (d, live_scaled(&f, elapsed)),
            _ => (d, f),
        })
        .collect();
    let mut facts = Facts::from_figures(
        days.iter()
            .filter(|(d, _)| *d >= p.window_from)
            .map(|x| &x.1),
    );
    for (f, v) in &extra.0 {
        facts.set(*f, Some(*v));
    }
    let s = model.score(&room, &facts);
    // The trend: each closed day's stored score (scored at its close, with the services'
    // facts of then), the other days scored now.
    let stored = stored_history(svc, &room, first, p.to).await?;
    let trend: Vec<_> = score::trend(&model, &room, &days, &extra, first)
        .into_iter()
        .map(|d| match stored.get(&d.date) {
            Some(s) => json!({ "date": s.date, "score": s.score, "dimensions": s.dimensions, "stored": true }),
            None => json!({ "date": d.date, "score": d.score, "dimensions": d.dimensions, "stored": false }),
        })
        .collect();
    let parts: Vec<f64> = s
        .dimensions
        .iter()
        .flat_map(|d| d.facts.iter().map(|f| f.contribution))
        .collect();
    let rounded = shown(&parts);
    let mut k = 0;
    let shown_dims: Vec<_> = s
        .dimensions
        .iter()
        .map(|d| {
            let facts: Vec<f64> = d
                .facts
                .iter()
                .map(|_| {
                    let v = rounded.get(k).copied().unwrap_or(0.0);
                    k += 1;
                    v
                })
                .collect();
            let total = (facts.iter().sum::<f64>() * 10.0).round() / 10.0;
            json!({ "key": d.key, "contribution": total, "facts": facts })
        })
        .collect();
    let shown_total = (rounded.iter().sum::<f64>() * 10.0).round() / 10.0;
    Ok(HttpResponse::Ok().json(json!({
        "room": room,
        "name": spec.name,
        "zone": spec.zone,
        "date": p.to,
        "window": { "from": p.window_from, "to": p.window_to },
        "score": s,
        "shown": { "score": s.score.map(|_| shown_total), "dimensions": shown_dims },
        "trend": trend,
    })))
}

/// The record kind of the score history (id `<room>@<date>`, listed `by_room` at
/// `<room>/<date>`).
const HISTORY_KIND: &str = "analysis_score";
const BY_ROOM: &str = "by_room";

fn history_names() -> Result<(RecordKind, IndexName), ApiError> {
    Ok((
        RecordKind::new(HISTORY_KIND).map_err(ApiError::store_unavailable)?,
        IndexName::new(BY_ROOM).map_err(ApiError::store_unavailable)?,
    ))
}

/// The room's stored daily scores within `[from, to]`, by date.
async fn stored_history(
    svc: &Analysis,
    room: &RoomId,
    from: Date,
    to: Date,
) -> Result<BTreeMap<Date, ScoreDay>, ApiError> {
    let (kind, index) = history_names()?;
    let range = IndexRange::between(format!("{room}/{from}"), format!("{room}/{to}"));
    let stored = svc
        .records()
        .list_by_index(&kind, &index, range, 1_000)
        .await
        .map_err(ApiError::store_unavailable)?;
    Ok(stored
        .iter()
        .filter_map(|r| serde_json::from_slice::<ScoreDay>(&r.body).ok())
        .map(|d| (d.date, d))
        .collect())
}

/// Stores a room's score of a closed day (replacing one stored before).
async fn store_day(svc: &Analysis, room: &RoomId, day: &ScoreDay) -> Result<(), ApiError> {
    let (kind, index) = history_names()?;
    let id = RecordId::new(&format!("{room}@{}", day.date)).map_err(ApiError::store_unavailable)?;
    let body = serde_json::to_vec(day).map_err(|e| ApiError::internal(e.to_string()))?;
    for _ in 0..3 {
        let expected = svc
            .records()
            .record(&kind, &id)
            .await
            .map_err(ApiError::store_unavailable)?
            .map(|r| r.version);
        let put = RecordPut {
            kind: kind.clone(),
            id: id.clone(),
            expected,
            body: body.clone(),
            index: vec![IndexEntry::new(&index, format!("{room}/{}", day.date))],
        };
        match svc.records().put_record(put).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_retryable() => continue,
            Err(e) => return Err(ApiError::store_unavailable(e)),
        }
    }
    Err(ApiError::internal("the score record kept changing"))
}

/// Scores and stores the closed days of `rooms` on `date` (the services' facts as they are
/// now: at the day's close).
async fn store_closed(state: &ApiState, svc: &Analysis, date: Date, rooms: &[RoomId]) {
    let model = match model(svc) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = ?e, "score history: no model");
            return;
        }
    };
    let Ok(p) = periods(svc, &model, PeriodKind::Day, Some(&date.to_string())) else {
        return;
    };
    let live = live(state, svc, &p).await;
    for room in rooms {
        let mut facts = Facts::from_figures(
            svc.figures(room, p.window_from, p.window_to)
                .iter()
                .map(|(d, f)| match p.live {
                    Some((today, e)) if today == *d => live_scaled(f, e),
                    _ => f.clone(),
                })
                .collect::<Vec<_>>()
                .iter(),
        );
        if let Some(l) = live.rooms.get(room) {
            l.score_facts(&mut facts);
        }
        let day = ScoreDay::of(date, &model.score(room, &facts));
        if let Err(e) = store_day(svc, room, &day).await {
            tracing::warn!(%room, %date, error = ?e, "score history: not stored");
        }
    }
}

/// Keeps the score history: each room's score is stored when its day closes (and again when a
/// closed day is recomputed), with the services' facts of that moment, until `shutdown`.
/// Closings that come together (midnight's whole fleet) share one gathering of those facts.
pub async fn keep_history(
    state: web::Data<ApiState>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let Some(svc) = state.analysis.clone() else {
        return;
    };
    let mut rx = svc.subscribe();
    loop {
        let first = tokio::select! {
            _ = shutdown.changed() => break,
            m = rx.recv() => m,
        };
        let mut batch: BTreeMap<Date, Vec<RoomId>> = BTreeMap::new();
        match first {
            Ok(c) => batch.entry(c.date).or_default().push(c.room),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "score history: closings missed (scored on demand)"
                );
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
        while let Ok(c) = rx.try_recv() {
            batch.entry(c.date).or_default().push(c.room);
        }
        for (date, rooms) in batch {
            store_closed(&state, &svc, date, &rooms).await;
        }
    }
}
