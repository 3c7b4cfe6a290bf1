//! The two state machines of the protocol: one [`TankPlanner`] per tank (hosted by the tank
//! actor) and one [`DistrictCoordinator`] per district (hosted by the district actor).
//!
//! The coordinator does not solve the district's schedule: it only grants the main's capacity
//! slot by slot. Each tank states its own needs (it alone knows its geometry, its forecast and
//! its reserve policy); the coordinator serves the tanks with the least autonomy first, first
//! what they must have by each slot, then what they may take, under one district ceiling λ
//! (lowered in network peak windows and higher tariff tiers). λ is the lowest ceiling under
//! which no tank's must-have has to exceed it: a bisection over a cheap greedy pass, so a
//! round for 40 tanks × 96 slots costs well under a millisecond. This is valley filling
//! with priorities: the district draw is flattened at λ wherever the tanks have room, and
//! nothing fills in a peak that could have filled in a valley.

use super::forecast::{
    Calendar, DemandForecaster, Forecast, ForecastConfig, SLOTS_PER_DAY, SLOT_HOURS,
};
use super::needs::{tank_needs, NeedsConfig, TankNeeds, TankSpec};
use super::protocol::{
    FillBid, FillGranted, ForecastMissed, LocalRule, PlanConfirmed, PlanningRoundOpened,
};
use super::DistrictError;
use cistern_schemas::DeviceId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Tuning of a tank's planner.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TankPlannerConfig {
    pub forecast: ForecastConfig,
    pub needs: NeedsConfig,
}

/// Where a tank planner stands in the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TankPlannerState {
    /// Not enough history to forecast: the controller runs a float valve.
    Cold,
    /// Waiting for a round.
    Idle,
    /// Bid sent in `round`, waiting for the grant.
    Bidding { round: u64 },
    /// Plan of `round` confirmed and sent to the controller.
    Planned { round: u64 },
}

/// One tank's side of the protocol: learns its demand, states its needs, adopts its grant.
#[derive(Clone, Debug)]
pub struct TankPlanner {
    tank: DeviceId,
    spec: TankSpec,
    config: TankPlannerConfig,
    forecaster: DemandForecaster,
    level_m: Option<f64>,
    state: TankPlannerState,
    rule: Option<LocalRule>,
    pending: Option<(TankNeeds, Forecast, f64)>,
    miss_error: f64,
    miss_var: f64,
}

impl TankPlanner {
    pub fn new(
        tank: DeviceId,
        spec: TankSpec,
        config: TankPlannerConfig,
        calendar: Calendar,
    ) -> Self {
        let forecaster = DemandForecaster::new(config.forecast.clone(), calendar);
        Self {
            tank,
            spec,
            config,
            forecaster,
            level_m: None,
            state: TankPlannerState::Cold,
            rule: None,
            pending: None,
            miss_error: 0.0,
            miss_var: 0.0,
        }
    }

    pub fn tank(&self) -> &DeviceId {
        &self.tank
    }

    pub fn spec(&self) -> &TankSpec {
        &self.spec
    }

    pub fn state(&self) -> TankPlannerState {
        self.state
    }

    pub fn forecaster(&self) -> &DemandForecaster {
        &self.forecaster
    }

    /// The rule the controller should run now (a float valve before the first plan).
    pub fn local_rule(&self, slot: u32) -> LocalRule {
        self.rule
            .clone()
            .unwrap_or_else(|| LocalRule::float_valve(slot, self.spec.max_level_m))
    }

    /// What the platform observed of the tank over `slot`: its outflow (m³/h) and its level at
    /// the end of the slot. `None` is a gap (comms lost, bad quality): nothing is learned from
    /// it. Returns a [`ForecastMissed`] when the last hours ran outside the forecast band.
    pub fn observe(
        &mut self,
        slot: u32,
        outflow_m3h: Option<f64>,
        level_m: Option<f64>,
    ) -> Option<ForecastMissed> {
        if let Some(level) = level_m.filter(|l| l.is_finite()) {
            self.level_m = Some(level);
        }
        let flow = outflow_m3h?;
        let mut missed = None;
        if self.forecaster.is_warm() {
            let f = self.forecaster.forecast(slot, 1);
            if let Some(s) = f.slots.first() {
                // Forecast-miss detector: a decaying sum of errors against its own band.
                let decay = 0.8;
                self.miss_error = decay * self.miss_error + (flow - s.median) * SLOT_HOURS;
                self.miss_var =
                    decay * decay * self.miss_var + (s.sigma * SLOT_HOURS).powi(2) * 4.0;
                if self.miss_error.abs() > 3.0 * self.miss_var.sqrt() && self.miss_var > 0.0 {
                    missed = Some(ForecastMissed {
                        tank: self.tank.clone(),
                        slot,
                        error_m3: self.miss_error,
                    });
                    self.miss_error = 0.0;
                }
            }
        }
        self.forecaster.observe(slot, flow);
        if self.state == TankPlannerState::Cold && self.forecaster.is_warm() {
            self.state = TankPlannerState::Idle;
        }
        missed
    }

    /// A round opened: bid with this round's needs, or stay out (cold, or no level known).
    pub fn on_round_opened(&mut self, round: &PlanningRoundOpened) -> Option<FillBid> {
        if self.state == TankPlannerState::Cold {
            return None;
        }
        let level = self.level_m?;
        let forecast = self.forecaster.forecast(round.slot0, round.horizon);
        let needs = tank_needs(&self.spec, &self.config.needs, level, &forecast);
        let bid = FillBid {
            tank: self.tank.clone(),
            round: round.round,
            autonomy_h: needs.autonomy_h,
            must_have: needs.must_have.clone(),
            may_have: needs.may_have.clone(),
            rate_cap: needs.rate_cap.clone(),
        };
        self.pending = Some((needs, forecast, level));
        self.state = TankPlannerState::Bidding { round: round.round };
        Some(bid)
    }

    /// The coordinator's grant: adopt it as the plan and build the controller's local rule.
    pub fn on_granted(&mut self, grant: &FillGranted) -> Result<PlanConfirmed, DistrictError> {
        let expected = match self.state {
            TankPlannerState::Bidding { round } => round,
            _ => {
                return Err(DistrictError::UnexpectedGrant {
                    tank: self.tank.clone(),
                    round: grant.round,
                })
            }
        };
        if grant.round != expected {
            return Err(DistrictError::StaleRound {
                round: grant.round,
                current: expected,
            });
        }
        let Some((needs, forecast, level)) = self.pending.take() else {
            return Err(DistrictError::UnexpectedGrant {
                tank: self.tank.clone(),
                round: grant.round,
            });
        };
        let mut volume = self.spec.volume_m3(level);
        let mut cum = 0.0;
        let mut short = false;
        let mut levels = Vec::with_capacity(grant.volumes.len());
        for (t, &v) in grant.volumes.iter().enumerate() {
            cum += v;
            if let Some(&m) = needs.must_have.get(t) {
                short |= cum + 1e-6 < m;
            }
            let d = forecast.slots.get(t).map_or(0.0, |s| s.median * SLOT_HOURS);
            volume += v - d;
            levels.push(self.spec.level_m(volume));
        }
        let rule = LocalRule::from_schedule(
            grant.slot0,
            &grant.volumes,
            &levels,
            needs.fallback_level_m,
            needs.max_level_m,
        );
        self.rule = Some(rule.clone());
        self.state = TankPlannerState::Planned { round: grant.round };
        Ok(PlanConfirmed {
            tank: self.tank.clone(),
            round: grant.round,
            rule,
            short,
        })
    }
}

/// The network's usual peak windows as [start, end) slots of the day: 06:30-09:00 and
/// 17:30-21:30, where a district's draw peaks (DOMAIN.md §5).
pub const NETWORK_PEAK_WINDOWS: [(u32, u32); 2] = [(26, 36), (70, 86)];

/// The district's shared constraints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistrictConstraints {
    /// Capacity of the district main, m³/h.
    pub main_capacity_m3h: f64,
    /// The network's peak windows, as [start, end) slots of the day.
    pub peak_windows: Vec<(u32, u32)>,
    /// The time-of-use tariff.
    pub tariff: Tariff,
}

/// A tier of the time-of-use tariff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TariffTier {
    Valley,
    Flat,
    Peak,
}

/// A 3-tier time-of-use tariff, ¥/kWh, with the tier of each 15-min slot of the day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    pub valley: f64,
    pub flat: f64,
    pub peak: f64,
    /// [start, end) slots of the day in the peak tier.
    pub peak_slots: Vec<(u32, u32)>,
    /// [start, end) slots of the day in the valley tier (may wrap: start > end).
    pub valley_slots: Vec<(u32, u32)>,
}

impl DistrictConstraints {
    /// Whether `slot` lies in one of the network's peak windows.
    pub fn in_peak(&self, slot: u32) -> bool {
        in_ranges(&self.peak_windows, slot % SLOTS_PER_DAY as u32)
    }
}

fn in_ranges(ranges: &[(u32, u32)], k: u32) -> bool {
    ranges.iter().any(|&(a, b)| {
        if a <= b {
            a <= k && k < b
        } else {
            k >= a || k < b
        }
    })
}

impl Tariff {
    /// A typical 3-tier tariff (peak:valley 3.5:1): valley 23:00-07:00, peak 08:00-11:00 and
    /// 18:00-22:00, flat otherwise (engineering default, not a sourced Xiamen schedule).
    pub fn three_tier() -> Self {
        Self {
            valley: 0.30,
            flat: 0.65,
            peak: 1.05,
            peak_slots: vec![(32, 44), (72, 88)],
            valley_slots: vec![(92, 28)],
        }
    }

    pub fn tier(&self, slot: u32) -> TariffTier {
        let k = slot % SLOTS_PER_DAY as u32;
        if in_ranges(&self.peak_slots, k) {
            TariffTier::Peak
        } else if in_ranges(&self.valley_slots, k) {
            TariffTier::Valley
        } else {
            TariffTier::Flat
        }
    }

    pub fn price(&self, slot: u32) -> f64 {
        match self.tier(slot) {
            TariffTier::Valley => self.valley,
            TariffTier::Flat => self.flat,
            TariffTier::Peak => self.peak,
        }
    }
}

/// Tuning of the coordinator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Slots planned ahead.
    pub horizon: usize,
    /// A round every this many slots (1 = every 15 min), and on a forecast miss.
    pub replan_every: u32,
    /// The ceiling is lowered by this fraction in the network's peak windows.
    pub peak_window_margin: f64,
    /// … and by this fraction per tariff tier above the valley.
    pub tariff_margin: f64,
    /// Successive ceilings of the lexicographic valley filling (1 = one ceiling).
    pub ceiling_levels: usize,
    /// Bisection steps per ceiling.
    pub search_steps: usize,
    pub forecast: ForecastConfig,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            horizon: SLOTS_PER_DAY * 3 / 2,
            replan_every: 1,
            peak_window_margin: 0.03,
            tariff_margin: 0.01,
            ceiling_levels: 4,
            search_steps: 18,
            forecast: ForecastConfig::default(),
        }
    }
}

/// Where the coordinator stands in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordinatorPhase {
    Idle,
    Collecting { round: u64, slot0: u32 },
    AwaitingConfirmations { round: u64, pending: usize },
}

/// What a round decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundSummary {
    pub bids: usize,
    /// Tanks counted at their last plan (they did not bid).
    pub committed: usize,
    /// The ceiling, m³/h.
    pub ceiling_m3h: f64,
    /// Highest planned district draw, m³/h.
    pub planned_peak_m3h: f64,
    /// Must-have inflow the ceiling could not hold, m³/h (0 in a healthy round).
    pub forced_over_ceiling_m3h: f64,
    /// Highest planned draw above the main's capacity, m³/h (0 unless needs force it).
    pub over_main_capacity_m3h: f64,
    /// Planned tank inflow in the round's first slot (what the controllers execute now), m³/h.
    pub first_slot_inflow_m3h: f64,
    /// Forecast base load (direct demand + committed plans) in the first slot, m³/h.
    pub first_slot_base_m3h: f64,
}

/// The district's side of the protocol.
#[derive(Clone, Debug)]
pub struct DistrictCoordinator {
    constraints: DistrictConstraints,
    config: CoordinatorConfig,
    direct: DemandForecaster,
    phase: CoordinatorPhase,
    next_round: u64,
    bids: Vec<FillBid>,
    plans: HashMap<DeviceId, LocalRule>,
    replan_requested: bool,
    last: RoundSummary,
    ceiling_factor: Vec<f64>,
}

impl DistrictCoordinator {
    pub fn new(
        constraints: DistrictConstraints,
        config: CoordinatorConfig,
        calendar: Calendar,
    ) -> Self {
        let direct = DemandForecaster::new(config.forecast.clone(), calendar);
        let ceiling_factor = (0..SLOTS_PER_DAY as u32)
            .map(|k| {
                let mut f = 1.0;
                if in_ranges(&constraints.peak_windows, k) {
                    f -= config.peak_window_margin;
                }
                f -= config.tariff_margin
                    * match constraints.tariff.tier(k) {
                        TariffTier::Valley => 0.0,
                        TariffTier::Flat => 1.0,
                        TariffTier::Peak => 2.0,
                    };
                f
            })
            .collect();
        Self {
            constraints,
            config,
            direct,
            phase: CoordinatorPhase::Idle,
            next_round: 1,
            bids: Vec::new(),
            plans: HashMap::new(),
            replan_requested: false,
            last: RoundSummary::default(),
            ceiling_factor,
        }
    }

    pub fn phase(&self) -> CoordinatorPhase {
        self.phase
    }

    pub fn last_round(&self) -> RoundSummary {
        self.last
    }

    pub fn constraints(&self) -> &DistrictConstraints {
        &self.constraints
    }

    /// The district meter's reading of the demand served directly from the main (m³/h),
    /// which the tanks cannot shift; `None` is a gap.
    pub fn observe_direct(&mut self, slot: u32, flow_m3h: Option<f64>) {
        if let Some(flow) = flow_m3h {
            self.direct.observe(slot, flow);
        }
    }

    /// A tank reported a forecast miss: the next slot gets a round.
    pub fn on_forecast_missed(&mut self, _missed: &ForecastMissed) {
        self.replan_requested = true;
    }

    /// Whether a round is due at `slot`.
    pub fn round_due(&self, slot: u32) -> bool {
        self.replan_requested || slot.is_multiple_of(self.config.replan_every.max(1))
    }

    /// Opens a round for the horizon starting at `slot0`.
    pub fn open_round(&mut self, slot0: u32) -> PlanningRoundOpened {
        let round = self.next_round;
        self.next_round += 1;
        self.bids.clear();
        self.replan_requested = false;
        self.phase = CoordinatorPhase::Collecting { round, slot0 };
        PlanningRoundOpened {
            round,
            slot0,
            horizon: self.config.horizon,
        }
    }

    pub fn receive_bid(&mut self, bid: FillBid) -> Result<(), DistrictError> {
        let CoordinatorPhase::Collecting { round, .. } = self.phase else {
            return Err(DistrictError::NotCollecting { tank: bid.tank });
        };
        if bid.round != round {
            return Err(DistrictError::StaleRound {
                round: bid.round,
                current: round,
            });
        }
        let h = self.config.horizon;
        if bid.must_have.len() != h || bid.may_have.len() != h || bid.rate_cap.len() != h {
            return Err(DistrictError::HorizonMismatch {
                tank: bid.tank,
                expected: h,
            });
        }
        self.bids.push(bid);
        Ok(())
    }

    /// Closes the collection and grants the main's capacity slot by slot. Tanks that did not
    /// bid are counted at the fill rate of their last confirmed plan.
    pub fn grant(&mut self) -> Result<Vec<FillGranted>, DistrictError> {
        let CoordinatorPhase::Collecting { round, slot0 } = self.phase else {
            return Err(DistrictError::NoOpenRound);
        };
        let h = self.config.horizon;
        let direct = self.direct.forecast(slot0, h);
        let bidders: std::collections::HashSet<&DeviceId> =
            self.bids.iter().map(|b| &b.tank).collect();
        let mut base: Vec<f64> = direct
            .slots
            .iter()
            .map(|s| {
                if s.median.is_finite() {
                    s.median * SLOT_HOURS
                } else {
                    0.0
                }
            })
            .collect();
        let mut committed = 0;
        for (tank, rule) in &self.plans {
            if bidders.contains(tank) {
                continue;
            }
            committed += 1;
            for (t, b) in base.iter_mut().enumerate() {
                *b += rule.planned_rate_m3h(slot0 + t as u32) * SLOT_HOURS;
            }
        }
        let factors: Vec<f64> = (0..h)
            .map(|t| self.ceiling_factor[(slot0 as usize + t) % SLOTS_PER_DAY])
            .collect();
        let main_cap = self.constraints.main_capacity_m3h * SLOT_HOURS;

        // Priority: least autonomy first.
        let mut order: Vec<usize> = (0..self.bids.len()).collect();
        order.sort_by(|&a, &b| {
            self.bids[a]
                .autonomy_h
                .total_cmp(&self.bids[b].autonomy_h)
                .then_with(|| self.bids[a].tank.cmp(&self.bids[b].tank))
        });
        let mut alloc = vec![vec![0.0; h]; self.bids.len()];
        let scale = base.iter().copied().fold(0.0, f64::max)
            + self
                .bids
                .iter()
                .map(|b| b.rate_cap.first().copied().unwrap_or(0.0))
                .sum::<f64>();
        let tolerance = 1e-6 * scale.max(1e-9);
        // Lexicographic valley filling: the lowest ceiling λ1 under which every must-have
        // fits, held only up to the slot where it binds; after that slot the rest of the
        // horizon gets its own, lower ceiling, and so on. One ceiling for the whole horizon
        // would let a peak that binds now (a tank that must fill during tonight's peak) raise
        // the ceiling for the night after it, and the voluntary fills would rush in at once.
        let mut ceiling = vec![f64::INFINITY; h];
        let mut start = 0;
        let mut lambda = scale;
        for _ in 0..self.config.ceiling_levels.max(1) {
            let (mut lo, mut hi) = (0.0, scale.max(1e-9) * 1.5);
            for _ in 0..self.config.search_steps {
                let mid = 0.5 * (lo + hi);
                set_ceiling(&mut ceiling, start, mid, &factors);
                let (over, _) = allocate(&ceiling, &base, main_cap, &order, &self.bids, &mut alloc);
                if over > tolerance {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            lambda = hi;
            set_ceiling(&mut ceiling, start, lo.min(hi * (1.0 - 1e-3)), &factors);
            let (_, binding) = allocate(&ceiling, &base, main_cap, &order, &self.bids, &mut alloc);
            set_ceiling(&mut ceiling, start, hi, &factors);
            match binding {
                Some(t) if t + 1 < h && t >= start => start = t + 1,
                _ => break,
            }
        }
        let (forced_over, _) = allocate(&ceiling, &base, main_cap, &order, &self.bids, &mut alloc);
        let hi = lambda;

        let mut planned_peak = 0.0_f64;
        for (t, b) in base.iter().enumerate() {
            let total = b + alloc.iter().map(|a| a[t]).sum::<f64>();
            planned_peak = planned_peak.max(total);
        }
        self.last = RoundSummary {
            bids: self.bids.len(),
            committed,
            ceiling_m3h: hi / SLOT_HOURS,
            planned_peak_m3h: planned_peak / SLOT_HOURS,
            forced_over_ceiling_m3h: forced_over / SLOT_HOURS,
            over_main_capacity_m3h: ((planned_peak - main_cap) / SLOT_HOURS).max(0.0),
            first_slot_inflow_m3h: alloc
                .iter()
                .map(|a| a.first().copied().unwrap_or(0.0))
                .sum::<f64>()
                / SLOT_HOURS,
            first_slot_base_m3h: base.first().copied().unwrap_or(0.0) / SLOT_HOURS,
        };
        let mut priority = vec![0u32; self.bids.len()];
        for (rank, &i) in order.iter().enumerate() {
            priority[i] = rank as u32;
        }
        let grants = self
            .bids
            .iter()
            .zip(alloc)
            .zip(priority)
            .map(|((bid, volumes), priority)| FillGranted {
                tank: bid.tank.clone(),
                round,
                slot0,
                priority,
                volumes,
            })
            .collect::<Vec<_>>();
        self.phase = CoordinatorPhase::AwaitingConfirmations {
            round,
            pending: grants.len(),
        };
        Ok(grants)
    }

    pub fn receive_confirmation(&mut self, confirmed: PlanConfirmed) -> Result<(), DistrictError> {
        let CoordinatorPhase::AwaitingConfirmations { round, pending } = self.phase else {
            return Err(DistrictError::NotCollecting {
                tank: confirmed.tank,
            });
        };
        if confirmed.round != round {
            return Err(DistrictError::StaleRound {
                round: confirmed.round,
                current: round,
            });
        }
        if confirmed.short {
            self.replan_requested = true;
        }
        self.plans.insert(confirmed.tank, confirmed.rule);
        let pending = pending.saturating_sub(1);
        self.phase = if pending == 0 {
            CoordinatorPhase::Idle
        } else {
            CoordinatorPhase::AwaitingConfirmations { round, pending }
        };
        Ok(())
    }

    /// Ends a round whose confirmations will not all come (a tank went offline after bidding):
    /// those tanks keep their previous plan.
    pub fn close_round(&mut self) {
        self.phase = CoordinatorPhase::Idle;
    }
}

/// One planning round at `slot` between a coordinator and the planners of its district's
/// tanks, in process: the round is opened, every planner `reachable(i)` says is reachable bids,
/// the coordinator grants, each granted planner confirms, and the round is closed. Returns the
/// confirmations (planner index, the grant's priority — 0 is served first —, its confirmed
/// plan), which carry the local rules to write to the controllers. A tank that did not bid keeps its previous rule (and the coordinator counts
/// it as committed load). The live district service and the benchmark both run rounds with it.
pub fn run_round(
    coordinator: &mut DistrictCoordinator,
    planners: &mut [TankPlanner],
    slot: u32,
    reachable: impl Fn(usize) -> bool,
) -> Vec<(usize, u32, PlanConfirmed)> {
    let round = coordinator.open_round(slot);
    for (i, planner) in planners.iter_mut().enumerate() {
        if !reachable(i) {
            continue;
        }
        if let Some(bid) = planner.on_round_opened(&round) {
            // A bid of the right round and horizon is always accepted.
            let _ = coordinator.receive_bid(bid);
        }
    }
    let index: HashMap<DeviceId, usize> = planners
        .iter()
        .enumerate()
        .map(|(i, p)| (p.tank().clone(), i))
        .collect();
    let mut confirmed = Vec::new();
    if let Ok(grants) = coordinator.grant() {
        for grant in grants {
            let Some(&i) = index.get(&grant.tank) else {
                continue;
            };
            if let Ok(c) = planners[i].on_granted(&grant) {
                let _ = coordinator.receive_confirmation(c.clone());
                confirmed.push((i, grant.priority, c));
            }
        }
    }
    coordinator.close_round();
    confirmed
}

/// Sets the ceiling (m³ per slot) from `start` on to `lambda` × the slot's factor.
fn set_ceiling(ceiling: &mut [f64], start: usize, lambda: f64, factors: &[f64]) {
    for (c, f) in ceiling.iter_mut().zip(factors).skip(start) {
        *c = lambda * f;
    }
}

/// One greedy pass under a per-slot ceiling (m³ per slot): per slot, first every tank's
/// must-have (by priority), then voluntary filling by priority up to the ceiling. Returns the
/// largest amount by which must-have inflow exceeded the ceiling, and the first slot where it
/// did. The pass is causal: a slot's allocation depends only on the ceilings up to it.
fn allocate(
    ceiling: &[f64],
    base: &[f64],
    main_cap: f64,
    order: &[usize],
    bids: &[FillBid],
    alloc: &mut [Vec<f64>],
) -> (f64, Option<usize>) {
    let mut cum = vec![0.0; bids.len()];
    let mut over = 0.0_f64;
    let mut first = None;
    for t in 0..base.len() {
        let budget = ceiling[t].min(main_cap) - base[t];
        let mut used = 0.0;
        for &i in order {
            let b = &bids[i];
            let forced = (b.must_have[t] - cum[i]).max(0.0).min(b.rate_cap[t]);
            alloc[i][t] = forced;
            cum[i] += forced;
            used += forced;
        }
        let excess = used - budget.max(0.0);
        if excess > 1e-9 && first.is_none() {
            first = Some(t);
        }
        over = over.max(excess);
        let mut left = budget - used;
        for &i in order {
            if left <= 0.0 {
                break;
            }
            let b = &bids[i];
            let v = (b.rate_cap[t] - alloc[i][t])
                .min(b.may_have[t] - cum[i])
                .min(left)
                .max(0.0);
            alloc[i][t] += v;
            cum[i] += v;
            left -= v;
        }
    }
    (over, first)
}
