//! Live peak-shaving (issue 7): the districts' tank planners running on the node, their agreed
//! plans reaching the rooms' controllers, and what the API shows of them.
//!
//! Why a service of its own: the planning logic (`cistern_actors::district`) is pure and takes
//! its slot as an argument; something has to feed it live observations, run its rounds on the
//! clock and hand the outcome to the field. One task per node does that for every district
//! (a district is a zone): it samples each planned room's live state through the fleet registry
//! (the actors' view, never the simulator), folds the samples into 15-min slot means
//! (outflow per tank, level, the district's actual inflow), feeds the planners at each slot
//! boundary, runs a round ([`run_round`]) when the coordinator says one is due (and once at
//! start), and sends the confirmed plans through the [`PlanPort`] — the Modbus writer, which
//! batches, audits and reads them back. Everything that happened is kept on the [`PlanBoard`]
//! that `GET /api/v1/districts/{id}/plan` and the room view read.
//!
//! Only tanks whose controller takes plans (a Modbus room whose profile has plan registers)
//! are planned; the others stay float valves. A room that is offline does not bid: its
//! controller keeps running the last plan it holds, and the coordinator counts that plan as
//! committed load. A tank's outflow is the room's outlet flow shared by tank area (the
//! booster draws from the tanks in parallel).
//!
//! A planner is cold until its forecaster has two samples of every slot of a weekday; a
//! fresh node therefore writes no plans for two days, unless history is imported first
//! ([`PlanService::import`]: the demo imports a week of its rooms' logged readings).

use crate::api::error::{ApiError, ErrorCode};
use actix_web::http::StatusCode;
use cistern_actors::district::{
    run_round, Calendar, CoordinatorConfig, DistrictConstraints, DistrictCoordinator, LocalRule,
    TankPlanner, TankPlannerConfig, TankPlannerState, TankSpec, Tariff, NETWORK_PEAK_WINDOWS,
};
use cistern_actors::ports::{PlanDispatch, PlanPort};
use cistern_actors::{Clock, FleetRegistry};
use cistern_schemas::fill_plan::{slot_at, slot_start_unix_s, PlanImage};
use cistern_schemas::inventory::Inventory;
use cistern_schemas::{DeviceId, DeviceUnit, RoomId, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How many past slots of the district timeline are kept (two days).
const TIMELINE_PAST_SLOTS: u32 = 192;
/// How many future slots the timeline shows of the plans held now (one day).
const TIMELINE_FUTURE_SLOTS: u32 = 96;
/// Water-age limit assumed for a tank whose inventory says nothing of it, hours.
const DEFAULT_AGE_LIMIT_H: f64 = 48.0;

/// Tuning of the live planning service.
#[derive(Clone, Debug)]
pub struct PlansConfig {
    /// How often the planned rooms are sampled (their live state, through the actors).
    pub sample_every: Duration,
    pub planner: TankPlannerConfig,
    pub coordinator: CoordinatorConfig,
}

impl Default for PlansConfig {
    fn default() -> Self {
        Self {
            sample_every: Duration::from_secs(30),
            planner: TankPlannerConfig::default(),
            coordinator: CoordinatorConfig::default(),
        }
    }
}

/// A plan as the API shows it: the register image plus wall-clock times for each window.
#[derive(Clone, Debug, Serialize)]
pub struct PlanView {
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    pub priority: u16,
    pub fallback_level_m: f64,
    pub max_level_m: f64,
    pub windows: Vec<WindowView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WindowView {
    pub start_ms: i64,
    pub end_ms: i64,
    pub rate_m3h: f64,
    pub target_level_m: f64,
}

fn slot_ms(slot: u32) -> i64 {
    slot_start_unix_s(slot) * 1000
}

impl PlanView {
    fn of(image: &PlanImage) -> Self {
        Self {
            issued_at_ms: slot_ms(image.issued_slot),
            expires_at_ms: slot_ms(image.expires_slot),
            priority: image.priority,
            fallback_level_m: image.fallback_level_m,
            max_level_m: image.max_level_m,
            windows: image
                .windows
                .iter()
                .map(|w| WindowView {
                    start_ms: slot_ms(w.start_slot),
                    end_ms: slot_ms(w.end_slot),
                    rate_m3h: w.rate_m3h,
                    target_level_m: w.target_level_m,
                })
                .collect(),
        }
    }
}

/// One tank's planning state, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TankPlanView {
    pub tank: String,
    pub district: String,
    /// `cold` (learning, no plan yet), `idle`, `bidding`, `planned`.
    pub state: &'static str,
    /// The round of the last confirmed plan.
    pub round: Option<u64>,
    /// The last plan the tank confirmed (what was sent to its controller).
    pub plan: Option<PlanView>,
    /// `written` (the controller holds it: read back identical), `failed`, or `none`.
    pub delivery: &'static str,
    /// Why the last write failed.
    pub delivery_error: Option<String>,
    pub delivered_at_ms: Option<i64>,
    /// Demand samples the tank's forecaster has learned from.
    pub observations: u64,
}

/// One 15-min slot of a district's timeline: what its tanks' plans (as their controllers hold
/// them) say they fill, and what they actually drew from the main.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineSlot {
    pub start_ms: i64,
    pub planned_inflow_m3h: f64,
    /// Mean measured inflow of the district's planned rooms (none: future, or no sample).
    pub actual_inflow_m3h: Option<f64>,
    /// Whether the slot lies in one of the network's peak windows (what the plans avoid).
    pub peak: bool,
}

/// A district's plans and timeline (`GET /api/v1/districts/{id}/plan`).
#[derive(Clone, Debug, Serialize)]
pub struct DistrictPlanView {
    pub district: String,
    pub rounds: u64,
    pub last_round_at_ms: Option<i64>,
    /// The last round's coordinator figures (ceiling, planned peak, ...).
    pub last_round: Option<cistern_actors::district::RoundSummary>,
    pub tanks: Vec<TankPlanView>,
    pub timeline: Vec<TimelineSlot>,
}

/// A district in the list (`GET /api/v1/districts`).
#[derive(Clone, Debug, Serialize)]
pub struct DistrictSummary {
    pub district: String,
    pub tanks: usize,
    pub planned: usize,
    pub rounds: u64,
}

#[derive(Clone, Debug)]
struct TankEntry {
    view: TankPlanView,
    /// The rule the controller holds (delivered), for the planned side of the timeline.
    held: Option<LocalRule>,
}

#[derive(Clone, Debug, Default)]
struct DistrictEntry {
    rounds: u64,
    last_round_at_ms: Option<i64>,
    last_round: Option<cistern_actors::district::RoundSummary>,
    tanks: Vec<TankEntry>,
    /// Past slots: (planned, actual) inflow.
    past: BTreeMap<u32, (f64, Option<f64>)>,
    /// The district's shared constraints, for the timeline's peak windows.
    constraints: Option<DistrictConstraints>,
}

impl DistrictEntry {
    fn planned_at(&self, slot: u32) -> f64 {
        self.tanks
            .iter()
            .filter_map(|t| t.held.as_ref())
            .map(|r| r.planned_rate_m3h(slot))
            .fold(0.0, |a, q| a + q)
    }
}

/// What the API reads of the planning service: per district, its tanks' plans and their
/// delivery, and the planned-vs-actual timeline.
#[derive(Debug, Default)]
pub struct PlanBoard {
    districts: Mutex<BTreeMap<String, DistrictEntry>>,
}

/// Why the board cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown district {district}: no planned tank is in it")]
    UnknownDistrict { district: String },
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownDistrict,
            e.to_string(),
        )
    }
}

impl PlanBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, DistrictEntry>> {
        self.districts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every district with planned tanks.
    pub fn districts(&self) -> Vec<DistrictSummary> {
        self.lock()
            .iter()
            .map(|(id, d)| DistrictSummary {
                district: id.clone(),
                tanks: d.tanks.len(),
                planned: d.tanks.iter().filter(|t| t.view.plan.is_some()).count(),
                rounds: d.rounds,
            })
            .collect()
    }

    /// A district's plans and its timeline around `now`.
    pub fn district(&self, id: &str, now: Timestamp) -> Result<DistrictPlanView, PlanError> {
        let districts = self.lock();
        let d = districts
            .get(id)
            .ok_or_else(|| PlanError::UnknownDistrict {
                district: id.to_owned(),
            })?;
        let now_slot = slot_at(now.as_millis() / 1000);
        let peak = |s: u32| d.constraints.as_ref().is_some_and(|c| c.in_peak(s));
        let mut timeline: Vec<TimelineSlot> = d
            .past
            .iter()
            .filter(|(&s, _)| s < now_slot)
            .map(|(&s, &(planned, actual))| TimelineSlot {
                start_ms: slot_ms(s),
                planned_inflow_m3h: planned,
                actual_inflow_m3h: actual,
                peak: peak(s),
            })
            .collect();
        timeline.extend(
            (now_slot..now_slot + TIMELINE_FUTURE_SLOTS).map(|s| TimelineSlot {
                start_ms: slot_ms(s),
                planned_inflow_m3h: d.planned_at(s),
                actual_inflow_m3h: None,
                peak: peak(s),
            }),
        );
        Ok(DistrictPlanView {
            district: id.to_owned(),
            rounds: d.rounds,
            last_round_at_ms: d.last_round_at_ms,
            last_round: d.last_round,
            tanks: d.tanks.iter().map(|t| t.view.clone()).collect(),
            timeline,
        })
    }

    /// The planning state of a room's tanks (empty when none is planned).
    pub fn room_tanks(&self, room: &RoomId) -> Vec<TankPlanView> {
        let prefix = format!("{room}/");
        self.lock()
            .values()
            .flat_map(|d| d.tanks.iter())
            .filter(|t| t.view.tank.starts_with(&prefix))
            .map(|t| t.view.clone())
            .collect()
    }
}

/// One planned tank of a district.
#[derive(Debug)]
struct Member {
    tank: DeviceId,
    /// This tank's share of the room's outflow (its area over the room's tank area).
    share: f64,
}

/// Slot means being gathered.
#[derive(Debug, Default, Clone)]
struct Accum {
    outflow_sum: f64,
    outflow_n: u32,
    level: Option<f64>,
}

#[derive(Debug)]
struct District {
    id: String,
    members: Vec<Member>,
    planners: Vec<TankPlanner>,
    coordinator: DistrictCoordinator,
    rooms: Vec<RoomId>,
    acc: Vec<Accum>,
    inflow_sum: f64,
    inflow_n: u32,
    reachable: Vec<bool>,
    /// Whether a round ran since the service started.
    planned_once: bool,
}

/// One sample of a planned room: what the actors report now (or what a data logger held).
#[derive(Clone, Debug)]
pub struct RoomSample {
    pub room: RoomId,
    pub outlet_flow_m3h: Option<f64>,
    pub inlet_flow_m3h: Option<f64>,
    /// Tank levels, T1 first.
    pub levels: Vec<Option<f64>>,
    pub online: bool,
}

/// The districts' planners and the way to the field.
#[derive(Debug)]
pub struct PlanService {
    districts: Vec<District>,
    board: Arc<PlanBoard>,
    port: Arc<dyn PlanPort>,
    config: PlansConfig,
    slot: Option<u32>,
}

impl PlanService {
    /// Planners for every tank of `inventory` that `takes_plans` says its controller takes
    /// plans, grouped by zone into districts.
    pub fn new(
        inventory: &Inventory,
        takes_plans: impl Fn(&DeviceId) -> bool,
        port: Arc<dyn PlanPort>,
        config: PlansConfig,
    ) -> Self {
        let mut by_zone: BTreeMap<String, District> = BTreeMap::new();
        let calendar = Calendar::default();
        for room in &inventory.rooms {
            let area: f64 = room.tanks.iter().map(|t| t.area_m2).sum();
            for (k, spec) in room.tanks.iter().enumerate() {
                let Ok(n) = u8::try_from(k + 1) else {
                    continue;
                };
                let tank = DeviceId::new(room.id.clone(), DeviceUnit::Tank(n));
                if !takes_plans(&tank) {
                    continue;
                }
                let d = by_zone
                    .entry(room.zone.to_string())
                    .or_insert_with(|| District {
                        id: room.zone.to_string(),
                        members: Vec::new(),
                        planners: Vec::new(),
                        coordinator: DistrictCoordinator::new(
                            DistrictConstraints {
                                main_capacity_m3h: 0.0,
                                peak_windows: NETWORK_PEAK_WINDOWS.to_vec(),
                                tariff: Tariff::three_tier(),
                            },
                            config.coordinator.clone(),
                            calendar.clone(),
                        ),
                        rooms: Vec::new(),
                        acc: Vec::new(),
                        inflow_sum: 0.0,
                        inflow_n: 0,
                        reachable: Vec::new(),
                        planned_once: false,
                    });
                let planner_spec = TankSpec {
                    area_m2: spec.area_m2,
                    max_level_m: spec.refill_off_m.min(spec.overflow_m),
                    hard_min_m: spec.hard_min_m,
                    fire_reserve_m: spec.fire_reserve_m,
                    age_limit_h: DEFAULT_AGE_LIMIT_H,
                    inlet_capacity_m3h: spec.inlet_capacity_m3h,
                };
                d.planners.push(TankPlanner::new(
                    tank.clone(),
                    planner_spec,
                    config.planner.clone(),
                    calendar.clone(),
                ));
                d.members.push(Member {
                    tank,
                    share: if area > 0.0 { spec.area_m2 / area } else { 0.0 },
                });
                d.acc.push(Accum::default());
                d.reachable.push(false);
                if !d.rooms.contains(&room.id) {
                    d.rooms.push(room.id.clone());
                }
            }
        }
        // The main is sized for every planned inlet at once: the ceiling, not the main, is
        // what binds (the utility's real main capacities are configuration to come).
        let districts: Vec<District> = by_zone
            .into_values()
            .map(|mut d| {
                let capacity: f64 = d.planners.iter().map(|p| p.spec().inlet_capacity_m3h).sum();
                d.coordinator = DistrictCoordinator::new(
                    DistrictConstraints {
                        main_capacity_m3h: capacity,
                        peak_windows: NETWORK_PEAK_WINDOWS.to_vec(),
                        tariff: Tariff::three_tier(),
                    },
                    config.coordinator.clone(),
                    calendar.clone(),
                );
                d
            })
            .collect();
        let board = Arc::new(PlanBoard::default());
        {
            let mut b = board.lock();
            for d in &districts {
                b.insert(
                    d.id.clone(),
                    DistrictEntry {
                        tanks: d
                            .planners
                            .iter()
                            .map(|p| TankEntry {
                                view: TankPlanView {
                                    tank: p.tank().to_string(),
                                    district: d.id.clone(),
                                    state: state_label(p.state()),
                                    round: None,
                                    plan: None,
                                    delivery: "none",
                                    delivery_error: None,
                                    delivered_at_ms: None,
                                    observations: p.forecaster().observations(),
                                },
                                held: None,
                            })
                            .collect(),
                        constraints: Some(d.coordinator.constraints().clone()),
                        ..DistrictEntry::default()
                    },
                );
            }
        }
        Self {
            districts,
            board,
            port,
            config,
            slot: None,
        }
    }

    pub fn board(&self) -> Arc<PlanBoard> {
        self.board.clone()
    }

    /// How many tanks are planned.
    pub fn tanks(&self) -> usize {
        self.districts.iter().map(|d| d.planners.len()).sum()
    }

    /// The rooms whose tanks are planned.
    pub fn rooms(&self) -> Vec<RoomId> {
        self.districts
            .iter()
            .flat_map(|d| d.rooms.iter().cloned())
            .collect()
    }

    /// Learns from history: `slots` of per-slot mean samples (slot, samples), oldest first,
    /// as a data logger or the historian holds them. No plan is made or written.
    pub fn import(&mut self, slots: &[(u32, Vec<RoomSample>)]) {
        for (slot, samples) in slots {
            for s in samples {
                self.fold(s);
            }
            self.close_slot(*slot, false);
        }
        self.publish_states();
    }

    /// Folds one sample into the current slot's means.
    fn fold(&mut self, s: &RoomSample) {
        for d in &mut self.districts {
            if !d.rooms.contains(&s.room) {
                continue;
            }
            if let Some(q) = s.inlet_flow_m3h.filter(|q| q.is_finite()) {
                d.inflow_sum += q;
                d.inflow_n += 1;
            }
            for (i, m) in d.members.iter().enumerate() {
                if m.tank.room != s.room {
                    continue;
                }
                d.reachable[i] = s.online;
                let DeviceUnit::Tank(n) = m.tank.unit else {
                    continue;
                };
                let level = s
                    .levels
                    .get(usize::from(n).saturating_sub(1))
                    .copied()
                    .flatten();
                let a = &mut d.acc[i];
                if let Some(l) = level.filter(|l| l.is_finite()) {
                    a.level = Some(l);
                }
                if let Some(q) = s.outlet_flow_m3h.filter(|q| q.is_finite() && *q >= 0.0) {
                    a.outflow_sum += q * m.share;
                    a.outflow_n += 1;
                }
            }
        }
    }

    /// Ends `slot`: its means go to the planners (and the timeline when `live`).
    fn close_slot(&mut self, slot: u32, live: bool) {
        let mut board = self.board.lock();
        for d in &mut self.districts {
            for (i, planner) in d.planners.iter_mut().enumerate() {
                let a = std::mem::take(&mut d.acc[i]);
                let outflow = (a.outflow_n > 0).then(|| a.outflow_sum / f64::from(a.outflow_n));
                if let Some(missed) = planner.observe(slot, outflow, a.level) {
                    d.coordinator.on_forecast_missed(&missed);
                }
                // The level carries on into the next slot until a new one is seen.
                d.acc[i].level = a.level;
            }
            let actual = (d.inflow_n > 0).then(|| d.inflow_sum / f64::from(d.inflow_n));
            d.inflow_sum = 0.0;
            d.inflow_n = 0;
            if live {
                if let Some(entry) = board.get_mut(&d.id) {
                    let planned = entry.planned_at(slot);
                    entry.past.insert(slot, (planned, actual));
                    while entry.past.len() > TIMELINE_PAST_SLOTS as usize {
                        entry.past.pop_first();
                    }
                }
            }
        }
    }

    fn publish_states(&self) {
        let mut board = self.board.lock();
        for d in &self.districts {
            let Some(entry) = board.get_mut(&d.id) else {
                continue;
            };
            for (t, p) in entry.tanks.iter_mut().zip(&d.planners) {
                t.view.state = state_label(p.state());
                t.view.observations = p.forecaster().observations();
            }
        }
    }

    /// One tick at `now` with the planned rooms' current samples: fold them, close the slot
    /// when it changed, and run a round in every district when one is due (or none ran yet
    /// and a room of it has reported),
    /// delivering the confirmed plans. Returns how many plans were delivered (written and
    /// read back).
    pub async fn tick(&mut self, now: Timestamp, samples: &[RoomSample]) -> usize {
        let slot = slot_at(now.as_millis() / 1000);
        if let Some(prev) = self.slot.filter(|&p| p != slot) {
            self.close_slot(prev, true);
        }
        let new_slot = self.slot != Some(slot);
        self.slot = Some(slot);
        for s in samples {
            self.fold(s);
        }
        let mut delivered = 0;
        for k in 0..self.districts.len() {
            let d = &self.districts[k];
            // The first round as soon as a room of the district has reported, then on the
            // coordinator's schedule (every slot by default, or after a forecast miss).
            let first = !d.planned_once && d.reachable.iter().any(|r| *r);
            let due = first || (d.planned_once && new_slot && d.coordinator.round_due(slot));
            if due {
                delivered += self.round(k, slot, now).await;
                self.districts[k].planned_once = true;
            }
        }
        self.publish_states();
        delivered
    }

    async fn round(&mut self, k: usize, slot: u32, now: Timestamp) -> usize {
        let Some(d) = self.districts.get_mut(k) else {
            return 0;
        };
        // A planner only bids once it has a level: feed the slot's latest one first.
        for (i, p) in d.planners.iter_mut().enumerate() {
            if let Some(level) = d.acc[i].level {
                let _ = p.observe(slot, None, Some(level));
            }
        }
        let reachable = d.reachable.clone();
        let confirmed = run_round(&mut d.coordinator, &mut d.planners, slot, |i| {
            reachable.get(i).copied().unwrap_or(false)
        });
        let summary = d.coordinator.last_round();
        let dispatches: Vec<PlanDispatch> = confirmed
            .iter()
            .map(|(_, priority, c)| PlanDispatch {
                tank: c.tank.clone(),
                rule: c.rule.clone(),
                priority: *priority,
            })
            .collect();
        let district = d.id.clone();
        let deliveries = if dispatches.is_empty() {
            Vec::new()
        } else {
            self.port
                .deliver(format!("system:district-{district}"), dispatches.clone())
                .await
        };
        let at = now.as_millis();
        let mut board = self.board.lock();
        let Some(entry) = board.get_mut(&district) else {
            return 0;
        };
        entry.rounds += 1;
        entry.last_round_at_ms = Some(at);
        entry.last_round = Some(summary);
        let mut ok = 0;
        for ((_, _, c), dispatch) in confirmed.iter().zip(&dispatches) {
            let Some(t) = entry
                .tanks
                .iter_mut()
                .find(|t| t.view.tank == c.tank.to_string())
            else {
                continue;
            };
            let image = dispatch.rule.to_image(dispatch.priority);
            // A confirmed plan: its planner is planned now (set with the plan, under the same
            // lock, so that no reader sees the new plan beside the state before the round).
            t.view.state = "planned";
            t.view.round = Some(c.round);
            t.view.plan = Some(PlanView::of(&image));
            match deliveries
                .iter()
                .find(|d| d.tank == c.tank)
                .map(|d| &d.result)
            {
                Some(Ok(())) => {
                    ok += 1;
                    t.view.delivery = "written";
                    t.view.delivery_error = None;
                    t.view.delivered_at_ms = Some(at);
                    t.held = Some(LocalRule::from_image(&image));
                }
                Some(Err(e)) => {
                    t.view.delivery = "failed";
                    t.view.delivery_error = Some(e.clone());
                }
                None => {
                    t.view.delivery = "failed";
                    t.view.delivery_error = Some("the port returned no outcome".into());
                }
            }
        }
        tracing::info!(
            district = %district,
            confirmed = confirmed.len(),
            written = ok,
            "planning round"
        );
        ok
    }

    /// Runs the service until `shutdown`: every `sample_every`, the planned rooms' live state
    /// from the actors, then [`PlanService::tick`].
    pub fn spawn(
        mut self,
        registry: Arc<FleetRegistry>,
        clock: Arc<dyn Clock>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let rooms = self.rooms();
        let every = self.config.sample_every;
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = shutdown.changed() => return,
                }
                let mut samples = Vec::with_capacity(rooms.len());
                for room in &rooms {
                    samples.push(sample(&registry, room).await);
                }
                self.tick(clock.now(), &samples).await;
            }
        })
    }
}

/// A room's live state from its actor (offline when the actor cannot answer).
async fn sample(registry: &FleetRegistry, room: &RoomId) -> RoomSample {
    let Ok(view) = registry.room_view(room).await else {
        return RoomSample {
            room: room.clone(),
            outlet_flow_m3h: None,
            inlet_flow_m3h: None,
            levels: Vec::new(),
            online: false,
        };
    };
    let point = |points: &[cistern_actors::device::PointView], name: &str| {
        points
            .iter()
            .find(|p| p.name == name && p.quality.is_good())
            .and_then(|p| p.value)
    };
    RoomSample {
        room: room.clone(),
        outlet_flow_m3h: view.derived.outlet_flow_m3h,
        inlet_flow_m3h: point(&view.points, "inlet_flow"),
        levels: view
            .tanks
            .iter()
            .map(|t| point(&t.points, "level"))
            .collect(),
        online: view.status == cistern_actors::pump_room::Link::Online,
    }
}

fn state_label(s: TankPlannerState) -> &'static str {
    match s {
        TankPlannerState::Cold => "cold",
        TankPlannerState::Idle => "idle",
        TankPlannerState::Bidding { .. } => "bidding",
        TankPlannerState::Planned { .. } => "planned",
    }
}

#[cfg(test)]
mod tests;
