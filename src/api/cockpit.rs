//! `/api/v1/cockpit`: the cockpit (驾驶舱, issue 22 item 6) — the indicator catalogue, the
//! caller's board with each tile's figure and sparkline, the drill-down fleet → zone → room →
//! device of any indicator, the caller's board saved (audited, `cockpit_board`) and the daily
//! and monthly reports as .xlsx. Any signed-in user reads and keeps their own board.
//!
//! Every answer is one pass over the analysis ledger (`Analysis::each_figures`, memory) plus
//! the services' live facts ([`gather`]), so a board at 2,100 rooms costs a few tens of
//! milliseconds, not a scan of samples. A drill-down into a room reads that room's stored
//! days for its devices' figures (completeness per device).

use super::analysis::{parse_date, service};
use super::error::{ApiError, ErrorCode};
use super::users::{caller, language_of};
use super::ApiState;
use crate::business::analysis::cockpit::{
    Acc, BoardKind, CockpitError, IndicatorId, Level, Scope, Snapshot, UserBoard, CATALOGUE,
};
use crate::business::analysis::cockpit_live::{Gather, Live, LiveFacts, Periods};
use crate::business::analysis::score::{RoomScore, ScoreModel};
use crate::business::analysis::Analysis;
use crate::store::records::{RecordId, RecordKind, RecordPut};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_schemas::{Date, DeviceUnit, RoomId, ZoneId};
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The sparkline's days.
pub const SPARK_DAYS: i32 = 14;

/// The record kind of the users' boards (id: the user's name).
const BOARD_KIND: &str = "cockpit_board";

/// The period a board or report shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// One day (default: today, live).
    Day,
    /// One month to the date (default: this month to date).
    Month,
}

impl From<CockpitError> for ApiError {
    fn from(e: CockpitError) -> Self {
        let message = e.to_string();
        match e {
            CockpitError::UnknownZone(_) => ApiError::not_found(ErrorCode::InvalidZone, message),
            CockpitError::UnknownRoom(_) => ApiError::not_found(ErrorCode::UnknownRoom, message),
            CockpitError::TooDeep(..) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::UnknownIndicator,
                message,
            ),
            CockpitError::Board(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidBoard,
                message,
            ),
        }
    }
}

/// The score model of the node (`[analysis.score]`), or the refusal of a bad one.
pub fn model(svc: &Analysis) -> Result<Arc<ScoreModel>, ApiError> {
    static SHIPPED: std::sync::OnceLock<Option<Arc<ScoreModel>>> = std::sync::OnceLock::new();
    let config = &svc.config().score;
    if config.model.is_none() {
        if let Some(m) = SHIPPED.get_or_init(|| ScoreModel::shipped().ok().map(Arc::new)) {
            return Ok(m.clone());
        }
    }
    ScoreModel::load(config)
        .map(Arc::new)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The periods of a request: the cockpit's `[from, to]` (a day, or a month to the date), the
/// score's window ending at `to`, the sparkline's days.
pub fn periods(
    svc: &Analysis,
    model: &ScoreModel,
    kind: PeriodKind,
    date: Option<&str>,
) -> Result<Periods, ApiError> {
    let today = svc.today();
    let to = match date {
        Some(d) => parse_date("date", d)?,
        None => match kind {
            PeriodKind::Day | PeriodKind::Month => today,
        },
    };
    if to > today {
        return Err(super::analysis::invalid_date(format!(
            "{to} is in the future (today is {today})"
        )));
    }
    let from = match kind {
        PeriodKind::Day => to,
        PeriodKind::Month => {
            let (y, m, _) = to.parts();
            Date::ymd(y, m, 1).unwrap_or(to)
        }
    };
    let offset = svc.config().utc_offset_minutes;
    let start = today.start(offset).0;
    let end = today.plus_days(1).start(offset).0;
    let elapsed = ((svc.now().0 - start) as f64 / (end - start).max(1) as f64).clamp(0.0, 1.0);
    Ok(Periods {
        live: (elapsed > 0.0).then_some((today, elapsed)),
        from,
        to,
        window_from: to.plus_days(1 - model.window_days as i32),
        window_to: to,
        spark_from: to.plus_days(1 - SPARK_DAYS),
    })
}

/// The services' live facts of every room (a service the node lacks leaves them unknown).
pub async fn live(state: &ApiState, svc: &Analysis, periods: &Periods) -> Live {
    let mut out = Live::default();
    let offset = svc.config().utc_offset_minutes;
    let window_from = periods.window_from.start(offset);
    let window_to = periods.window_to.plus_days(1).start(offset);
    let now = svc.now();
    let rooms = svc.rooms();
    let mut facts: HashMap<RoomId, LiveFacts> = rooms
        .iter()
        .map(|r| (r.id.clone(), LiveFacts::default()))
        .collect();
    if let Some(orders) = &state.workorders {
        let open = orders.open_orders().await;
        let made = orders.created_between(window_from, window_to).await;
        if let (Ok(open), Ok(made)) = (open, made) {
            for f in facts.values_mut() {
                f.orders_known = true;
            }
            for o in open {
                if let Some(f) = o.room.as_ref().and_then(|r| facts.get_mut(r)) {
                    f.open_orders += 1;
                }
            }
            for o in made {
                let met = crate::business::workorders::kpi::met_sla(&o, now);
                if let (Some(f), Some(met)) = (o.room.as_ref().and_then(|r| facts.get_mut(r)), met)
                {
                    f.sla_judged += 1;
                    if met {
                        f.sla_met += 1;
                    }
                }
            }
        }
        // People on call now, per zone and in the fleet (each person once).
        let roster = orders.roster();
        let mut everyone = std::collections::HashSet::new();
        for z in state.registry.zone_specs() {
            if let Some(team) = roster.team_for(Some(&z.id)) {
                let on = roster.on_call(team, now);
                out.crews.insert(z.id.clone(), on.len() as u32);
                everyone.extend(on);
            }
        }
        out.crews_fleet = Some(everyone.len() as u32);
    }
    if let Some(alarms) = &state.alarms {
        for f in facts.values_mut() {
            f.alarms_known = true;
        }
        let filter = cistern_actors::alarms::AlarmFilter {
            states: Vec::new(),
            severities: Vec::new(),
            room: None,
            zone: None,
            rule: None,
        };
        for a in alarms.host.board.list(&filter) {
            let Some(f) = a.room.as_ref().and_then(|r| facts.get_mut(r)) else {
                continue;
            };
            let in_window = a
                .raised_at
                .is_some_and(|t| t >= window_from && t < window_to);
            let unit = a.device.as_ref().map(|d| d.unit);
            f.add_alarm(a.rule.as_str(), unit, a.active, in_window);
        }
    }
    if let Some(lifecycle) = &state.lifecycle {
        let figures = lifecycle.figures();
        for r in &figures.risks {
            if let Some(f) = facts.get_mut(&r.room) {
                let tag = r.equipment.as_str();
                let unit = tag
                    .split('-')
                    .next()
                    .and_then(|t| t.parse::<DeviceUnit>().ok())
                    .unwrap_or(DeviceUnit::Room);
                f.add_risk(unit, r.p30);
            }
        }
    }
    if let Some(cleaning) = &state.cleaning {
        let today = cleaning.today();
        for line in cleaning.schedule(None, None, false) {
            if let (Some(f), Some(last)) = (facts.get_mut(&line.room), line.last_cleaning) {
                let days = f64::from(today.days() - last.days());
                f.days_since_cleaning = Some(f.days_since_cleaning.map_or(days, |d| d.max(days)));
            }
        }
    }
    out.rooms = facts;
    out
}

/// The zones' names.
pub fn zone_names(state: &ApiState) -> BTreeMap<ZoneId, String> {
    state
        .registry
        .zone_specs()
        .iter()
        .map(|z| (z.id.clone(), z.name.clone()))
        .collect()
}

/// One pass: the cockpit's snapshot, every room's score and the gather (sparklines).
pub async fn gather(
    state: &ApiState,
    svc: &Analysis,
    model: &ScoreModel,
    periods: Periods,
) -> (Snapshot, Vec<(ZoneId, RoomScore)>, Gather) {
    let live = live(state, svc, &periods).await;
    let mut g = Gather::new(periods);
    svc.each_figures(g.first_day(), g.last_day(), |room, date, f| {
        g.day(room, date, f)
    });
    let (snapshot, scores) = g.finish(model, &svc.rooms(), zone_names(state), &live);
    (snapshot, scores, g)
}

async fn stored_board(
    svc: &Analysis,
    user: &str,
) -> Result<Option<(UserBoard, crate::store::records::RecordVersion)>, ApiError> {
    let kind = RecordKind::new(BOARD_KIND).map_err(ApiError::store_unavailable)?;
    let id = RecordId::new(user).map_err(ApiError::store_unavailable)?;
    let Some(r) = svc
        .records()
        .record(&kind, &id)
        .await
        .map_err(ApiError::store_unavailable)?
    else {
        return Ok(None);
    };
    // A board that no longer parses (an indicator since removed) falls back to the default.
    Ok(serde_json::from_slice::<UserBoard>(&r.body)
        .ok()
        .map(|b| (b, r.version)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardQuery {
    pub period: Option<PeriodKind>,
    pub date: Option<String>,
    /// One of the default boards instead of the caller's (the wall screen cycles them).
    pub kind: Option<BoardKind>,
}

fn tile(id: IndicatorId, snapshot: &Snapshot, g: &Gather) -> serde_json::Value {
    let spec = id.spec();
    let value = snapshot.value(id, &Scope::Fleet).ok().flatten();
    let spark: Vec<serde_json::Value> = if spec.ledger {
        g.sparkline(id)
            .into_iter()
            .map(|(d, v)| json!({ "date": d, "value": v }))
            .collect()
    } else {
        Vec::new()
    };
    json!({
        "indicator": spec,
        "value": value,
        "spark": spark,
    })
}

/// `GET /api/v1/cockpit/board?period=day|month&date=&kind=`: the caller's board (their own,
/// else their role's default; `kind`: a default board), each tile's fleet figure over the
/// period and its daily sparkline.
pub async fn board(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<BoardQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let model = model(svc)?;
    let kind = q.period.unwrap_or(PeriodKind::Day);
    let periods = periods(svc, &model, kind, q.date.as_deref())?;
    let (board, own) = match q.kind {
        Some(k) => (UserBoard::default_of(k), false),
        None => match stored_board(svc, &who.user).await? {
            Some((b, _)) => (b, true),
            None => (UserBoard::default_of(BoardKind::for_role(who.role)), false),
        },
    };
    let (snapshot, _, g) = gather(&state, svc, &model, periods).await;
    let tiles: Vec<_> = board
        .tiles
        .iter()
        .map(|i| tile(*i, &snapshot, &g))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "board": board,
        "own": own,
        "from": periods.from,
        "to": periods.to,
        "rooms": snapshot.rooms.len(),
        "tiles": tiles,
    })))
}

/// `GET /api/v1/cockpit/catalogue`: the indicators and the default boards.
pub async fn catalogue(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    let boards: Vec<_> = BoardKind::ALL
        .iter()
        .map(|k| json!({ "kind": k, "tiles": k.tiles() }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "indicators": CATALOGUE,
        "boards": boards,
        "default": BoardKind::for_role(who.role),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveBoard {
    pub kind: BoardKind,
    pub tiles: Vec<String>,
}

/// `PUT /api/v1/cockpit/board` `{kind, tiles}`: keeps the caller's board (the indicators they
/// follow, in order). Audited (`cockpit_board`).
pub async fn save_board(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<SaveBoard>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let b = body.into_inner();
    let result = async {
        let mut tiles = Vec::with_capacity(b.tiles.len());
        for t in &b.tiles {
            tiles.push(IndicatorId::parse(t).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::UnknownIndicator,
                    format!("unknown indicator {t:?}"),
                )
            })?);
        }
        let board = UserBoard {
            kind: b.kind,
            tiles,
        };
        board.validate()?;
        let body = serde_json::to_vec(&board).map_err(|e| ApiError::internal(e.to_string()))?;
        let kind = RecordKind::new(BOARD_KIND).map_err(ApiError::store_unavailable)?;
        let id = RecordId::new(&who.user).map_err(ApiError::store_unavailable)?;
        // Last writer wins: a user's own board, read again on a race.
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
                index: Vec::new(),
            };
            match svc.records().put_record(put).await {
                Ok(_) => return Ok(board),
                Err(e) if e.is_retryable() => continue,
                Err(e) => return Err(ApiError::store_unavailable(e)),
            }
        }
        Err(ApiError::internal("the board kept changing while saving"))
    }
    .await;
    let (detail, ok) = super::audit::outcome(&result, |b: &UserBoard| {
        let names: Vec<&str> = b.tiles.iter().map(|t| t.as_str()).collect();
        names.join(",")
    });
    state
        .security
        .record(&who, "cockpit_board", &who.user, detail, ok);
    let board = result?;
    Ok(HttpResponse::Ok().json(json!({ "board": board, "own": true })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillQuery {
    pub indicator: String,
    pub zone: Option<String>,
    pub room: Option<String>,
    pub period: Option<PeriodKind>,
    pub date: Option<String>,
}

/// `GET /api/v1/cockpit/drill?indicator=&zone=&room=&period=&date=`: the indicator's figure at
/// the fleet (no zone, no room), a zone or a room, and its children's, worst first.
pub async fn drill(
    state: web::Data<ApiState>,
    q: web::Query<DrillQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let id = IndicatorId::parse(&q.indicator).ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::UnknownIndicator,
            format!("unknown indicator {:?}", q.indicator),
        )
    })?;
    let model = model(svc)?;
    let periods = periods(
        svc,
        &model,
        q.period.unwrap_or(PeriodKind::Day),
        q.date.as_deref(),
    )?;
    let scope = match (&q.room, &q.zone) {
        (Some(r), _) => Scope::Room {
            room: RoomId::new(r)
                .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRoomId, e.to_string()))?,
        },
        (None, Some(z)) => Scope::Zone {
            zone: z
                .parse::<ZoneId>()
                .map_err(|e| ApiError::bad_request(ErrorCode::InvalidZone, e.to_string()))?,
        },
        (None, None) => Scope::Fleet,
    };
    let (mut snapshot, _, _) = gather(&state, svc, &model, periods).await;
    if let Scope::Room { room } = &scope {
        if id.spec().deepest == Level::Device {
            device_figures(svc, &mut snapshot, room, id, &periods).await?;
        }
    }
    let d = snapshot.drill(id, &scope)?;
    // The path back up: the room's zone.
    let zone = match &scope {
        Scope::Room { room } => snapshot
            .rooms
            .iter()
            .find(|r| &r.room == room)
            .map(|r| json!({ "id": r.zone, "name": snapshot.zone_names.get(&r.zone) })),
        Scope::Zone { zone } => Some(json!({ "id": zone, "name": snapshot.zone_names.get(zone) })),
        _ => None,
    };
    let room_name = match &scope {
        Scope::Room { room } => snapshot
            .rooms
            .iter()
            .find(|r| &r.room == room)
            .map(|r| r.name.clone()),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(json!({
        "indicator": id.spec(),
        "from": periods.from,
        "to": periods.to,
        "zone": zone,
        "room_name": room_name,
        "drill": d,
    })))
}

/// Per-device figures of a room over the period, from its stored days (completeness per
/// device, each pump's efficiency weighted by its minutes with an operating point; equipment
/// health comes from the lifecycle already).
async fn device_figures(
    svc: &Analysis,
    snapshot: &mut Snapshot,
    room: &RoomId,
    id: IndicatorId,
    periods: &Periods,
) -> Result<(), ApiError> {
    if id != IndicatorId::Completeness && id != IndicatorId::PumpEfficiency {
        return Ok(());
    }
    let Some(entry) = snapshot.rooms.iter_mut().find(|r| &r.room == room) else {
        return Ok(());
    };
    let mut d = periods.from;
    while d <= periods.to {
        if let Some(day) = svc.day(room, d).await? {
            // A live day expects only its elapsed part (see `Periods::live`).
            let elapsed = match periods.live {
                Some((today, e)) if today == d && e > 0.0 => e,
                _ => 1.0,
            };
            if id == IndicatorId::PumpEfficiency {
                for p in &day.pumps {
                    if let Some(e) = p.efficiency {
                        entry.figures.add_device(
                            IndicatorId::PumpEfficiency,
                            p.unit,
                            Acc::of(e, f64::from(p.point_minutes.max(1))),
                        );
                    }
                }
                d = d.plus_days(1);
                continue;
            }
            for u in &day.operation.units {
                let expected = (u.expected as f64 * elapsed).max(u.received as f64);
                entry.figures.add_device(
                    IndicatorId::Completeness,
                    u.unit,
                    Acc {
                        sum: u.received as f64,
                        weight: expected,
                    },
                );
            }
        }
        d = d.plus_days(1);
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    pub period: Option<PeriodKind>,
    pub date: Option<String>,
    pub lang: Option<String>,
}

/// `GET /api/v1/cockpit/report.xlsx?period=day|month&date=&lang=`: the daily or monthly
/// report — the fleet, each zone and each room on every indicator, with the room score.
pub async fn report(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let svc = service(&state)?;
    let who = caller(&req)?;
    let language = language_of(&state, &who, q.lang.as_deref())?;
    let model = model(svc)?;
    let kind = q.period.unwrap_or(PeriodKind::Day);
    let periods = periods(svc, &model, kind, q.date.as_deref())?;
    let (snapshot, _, _) = gather(&state, svc, &model, periods).await;
    let words = &super::webui::catalogue(language)["cockpit"];
    let word = |k: &str| {
        words[k]
            .as_str()
            .map_or_else(|| k.to_owned(), str::to_owned)
    };
    let ind_word = |i: IndicatorId| {
        words["ind"][i.as_str()]
            .as_str()
            .map_or_else(|| i.as_str().to_owned(), str::to_owned)
    };
    let title = format!(
        "{} {}{}",
        word(if kind == PeriodKind::Day {
            "report_daily"
        } else {
            "report_monthly"
        }),
        periods.from,
        if periods.from == periods.to {
            String::new()
        } else {
            format!(" – {}", periods.to)
        }
    );
    let bytes = crate::business::analysis::cockpit_report::xlsx(
        &snapshot,
        &crate::business::analysis::cockpit_report::Words {
            title,
            fleet: word("fleet"),
            zones: word("zones"),
            rooms: word("rooms"),
            zone: word("zone"),
            room: word("room"),
            name: word("name"),
            indicators: CATALOGUE.iter().map(|i| ind_word(i.id)).collect(),
        },
    )
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let name = format!(
        "cockpit-{}-{}.xlsx",
        if kind == PeriodKind::Day {
            "day"
        } else {
            "month"
        },
        periods.to
    );
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(bytes))
}
