//! `cistern bench analysis`: the analysis measured against the simulator's own physics.
//!
//! A seeded fleet runs in simulated time, day after day. Every 2 s (the catalog's sampling
//! period) each room's reading goes into its day's [`DaySeries`] exactly as the historian's
//! 1-minute rollups would hold it, and each closed day goes through [`compute_day`] — the code
//! the platform runs on its historian — with the archive the demo gives the same fleet (pump
//! curves). Meanwhile the bench integrates the simulator's true state: the meter's physical
//! energy, the water served, the true lift, each pump's true hydraulic efficiency (ρgQH / shaft
//! power) while it runs.
//!
//! It prints, per measure, the analysis' error against that truth: energy intensity (kWh/m³
//! and kWh per 1,000 m³·MPa, per room-day) and pump efficiency (run-time-weighted, per
//! pump-day). With `--leaks K`, K rooms get a compound leak of `--leak-fraction` of their mean
//! daily flow from `--leak-day` on; the library's `night_flow_leak` rule runs over every room's
//! nightly facts and the bench prints leaks found, the nights each took, and the false alarms
//! on the leak-free rooms.

use crate::business::analysis::day::{compute_day, DaySeries, RoomContext, RoomDay};
use crate::business::analysis::AnalysisConfig;
use crate::business::assets::archive::RoomArchive;
use crate::lab::sim::{generate_fleet, Simulator};
use cistern_schemas::inventory::Inventory;
use cistern_schemas::{Date, DeviceKind, DeviceUnit, RoomId};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct AnalysisBenchOptions {
    pub rooms: usize,
    pub days: usize,
    pub leaks: usize,
    /// The leak's size, as a fraction of the room's mean daily flow.
    pub leak_fraction: f64,
    /// The day (0-based) the leaks start.
    pub leak_day: usize,
    pub seed: u64,
    /// The analysis' settings (`[analysis]` of a configuration file: night window, baseline,
    /// margins), to tune them against the simulator.
    pub config: AnalysisConfig,
    /// A rule directory whose `night_flow_leak` is run instead of the library's.
    pub rules: Option<std::path::PathBuf>,
}

impl AnalysisBenchOptions {
    /// The `[analysis]` section of a TOML file.
    pub fn load_config(path: &std::path::Path) -> Result<AnalysisConfig, AnalysisBenchError> {
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            analysis: AnalysisConfig,
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            AnalysisBenchError::Invalid(format!("cannot read {}: {e}", path.display()))
        })?;
        let file: File = toml::from_str(&text)
            .map_err(|e| AnalysisBenchError::Invalid(format!("{}: {e}", path.display())))?;
        Ok(file.analysis)
    }
}

impl Default for AnalysisBenchOptions {
    fn default() -> Self {
        Self {
            rooms: 30,
            days: 21,
            leaks: 10,
            leak_fraction: 0.02,
            leak_day: 15,
            seed: 1,
            config: AnalysisConfig::default(),
            rules: None,
        }
    }
}

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisBenchError {
    #[error("{0}")]
    Invalid(String),
    #[error("the simulator refused the leak: {0}")]
    Sim(#[from] crate::lab::sim::SimError),
}

/// Errors of a measure, in percent of the truth.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ErrorStats {
    /// How many cases were compared, and how many had no estimate (with the analysis' own
    /// reason) or no truth (nothing ran).
    pub n: usize,
    pub no_estimate: usize,
    pub mean_abs_pct: f64,
    pub p95_abs_pct: f64,
    pub max_abs_pct: f64,
    /// Mean signed error (estimate − truth) / truth, %: a bias shows here.
    pub bias_pct: f64,
}

impl ErrorStats {
    fn of(pairs: &[(Option<f64>, f64)]) -> Self {
        let mut errors: Vec<f64> = Vec::new();
        let mut no_estimate = 0;
        for &(estimate, truth) in pairs {
            match estimate {
                Some(e) if e.is_finite() && truth.abs() > 1e-9 => {
                    errors.push((e - truth) / truth * 100.0)
                }
                _ => no_estimate += 1,
            }
        }
        if errors.is_empty() {
            return Self {
                no_estimate,
                ..Self::default()
            };
        }
        let mut abs: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
        abs.sort_by(f64::total_cmp);
        let n = abs.len();
        Self {
            n,
            no_estimate,
            mean_abs_pct: abs.iter().sum::<f64>() / n as f64,
            p95_abs_pct: abs[((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1],
            max_abs_pct: abs[n - 1],
            bias_pct: errors.iter().sum::<f64>() / n as f64,
        }
    }
}

/// Leak detection.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LeakStats {
    pub injected: usize,
    pub detected: usize,
    /// Nights from the leak's first night to the alarm, per detected leak.
    pub delays: Vec<usize>,
    pub false_alarms: usize,
    /// Room-nights without a leak the rule judged (a baseline behind them): the leak-free
    /// rooms' and the leaking rooms' before their leak.
    pub clean_room_nights: usize,
}

/// The bench's result.
#[derive(Clone, Debug, Serialize)]
pub struct AnalysisBenchReport {
    pub rooms: usize,
    pub days: usize,
    pub leaks: usize,
    pub leak_fraction: f64,
    pub leak_day: usize,
    pub seed: u64,
    pub kwh_per_m3: ErrorStats,
    pub kwh_per_kt_mpa: ErrorStats,
    pub pump_efficiency: ErrorStats,
    pub leak: Option<LeakStats>,
    /// Wall time of the simulation and of the analysis.
    pub simulate_s: f64,
    pub analyse_s: f64,
}

/// The simulator's truth over one room-day.
#[derive(Clone, Debug, Default)]
pub struct Truth {
    energy_start: Option<f64>,
    energy_end: f64,
    served_start: Option<f64>,
    served_end: f64,
    /// Σ Q·lift·dt (m³·MPa) over the day.
    m3_mpa: f64,
    /// Per pump: Σ η·dt and Σ dt while running.
    pumps: HashMap<DeviceUnit, (f64, f64)>,
}

impl Truth {
    /// The energy the room used, kWh.
    pub fn kwh(&self) -> f64 {
        self.energy_end - self.energy_start.unwrap_or(self.energy_end)
    }

    /// The water it served, m³.
    pub fn m3(&self) -> f64 {
        self.served_end - self.served_start.unwrap_or(self.served_end)
    }

    /// A pump's run-time-weighted true efficiency, when it ran.
    pub fn pump_efficiency(&self, unit: DeviceUnit) -> Option<f64> {
        self.pumps
            .get(&unit)
            .filter(|(_, h)| *h > 0.0)
            .map(|(eta_h, h)| eta_h / h)
    }

    fn observe(&mut self, diag: &crate::lab::sim::RoomDiagnostics, dt: Duration) {
        self.energy_start.get_or_insert(diag.energy_kwh);
        self.served_start.get_or_insert(diag.served_m3);
        self.energy_end = diag.energy_kwh;
        self.served_end = diag.served_m3;
        let dt_h = dt.as_secs_f64() / 3600.0;
        let suction =
            diag.tanks.iter().map(|t| t.level_m).sum::<f64>() / diag.tanks.len().max(1) as f64;
        let lift = (diag.outlet_pressure_mpa - suction / METRES_PER_MPA).max(0.0);
        self.m3_mpa += diag.served_m3h * dt_h * lift;
        for p in diag.pumps.iter().filter(|p| p.running && p.flow_m3h > 0.0) {
            let e = self.pumps.entry(p.unit).or_insert((0.0, 0.0));
            e.0 += p.efficiency * dt_h;
            e.1 += dt_h;
        }
    }
}

/// Where each analysed point is in its device's reading.
fn point_table() -> HashMap<DeviceKind, Vec<(usize, &'static str)>> {
    let mut out = HashMap::new();
    for (kind, unit) in [
        (DeviceKind::Room, DeviceUnit::Room),
        (DeviceKind::Pump, DeviceUnit::Pump(1)),
        (DeviceKind::Tank, DeviceUnit::Tank(1)),
    ] {
        let names = crate::business::analysis::day::points_of(unit);
        let table = names
            .iter()
            .filter_map(|&n| kind.point_index(n).map(|i| (i, n)))
            .collect();
        out.insert(kind, table);
    }
    out
}

/// The sampling period of the readings, as the catalog's gateways publish.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
const METRES_PER_MPA: f64 = 101.97;

/// A simulated fleet analysed day by day in simulated time: each day's readings go into the
/// rooms' [`DaySeries`] as the historian's rollups would hold them, and the closed day through
/// [`compute_day`]. The bench and the demo's simulated past both run on it.
#[derive(Debug)]
pub struct DaySim {
    inventory: Inventory,
    archives: HashMap<RoomId, RoomArchive>,
    sim: Simulator,
    table: HashMap<DeviceKind, Vec<(usize, &'static str)>>,
    config: AnalysisConfig,
    next: Date,
    sample_every: Duration,
    /// Integrate the simulator's truth as well (the bench; the demo does not need it).
    pub with_truth: bool,
}

impl DaySim {
    /// A fleet whose first simulated day is `first`, sampled every `sample_every`.
    pub fn new(
        inventory: Inventory,
        archives: HashMap<RoomId, RoomArchive>,
        seed: u64,
        first: Date,
        config: AnalysisConfig,
        sample_every: Duration,
    ) -> Self {
        let sim = Simulator::new(&inventory, seed, first.start(config.utc_offset_minutes));
        Self {
            inventory,
            archives,
            sim,
            table: point_table(),
            config,
            next: first,
            sample_every: sample_every.max(Duration::from_secs(1)),
            with_truth: true,
        }
    }

    /// The simulator (to inject faults between days).
    pub fn simulator(&mut self) -> &mut Simulator {
        &mut self.sim
    }

    /// The day the next call simulates.
    pub fn next_date(&self) -> Date {
        self.next
    }

    /// Simulates the next day and returns its date and each room's facts with the truth
    /// (empty when `with_truth` is off), in inventory order, and the wall time simulating and
    /// analysing took.
    pub fn next_day(&mut self) -> (Date, Vec<(RoomDay, Truth)>, Duration, Duration) {
        let date = self.next;
        self.next = date.plus_days(1);
        let offset = self.config.utc_offset_minutes;
        let clock = Instant::now();
        let rooms = &self.inventory.rooms;
        let mut series: Vec<DaySeries> = rooms
            .iter()
            .map(|r| DaySeries::new(r.id.clone(), date, offset))
            .collect();
        let mut truth: Vec<Truth> = vec![Truth::default(); rooms.len()];
        let end = date.plus_days(1).start(offset).0;
        while self.sim.now().0 < end {
            self.sim.step(self.sample_every);
            let t = self.sim.now().0;
            if self.with_truth {
                for (i, room) in rooms.iter().enumerate() {
                    if let Some(diag) = self.sim.diagnostics(&room.id) {
                        if t >= end {
                            // The day's last instant: its counters close this day.
                            truth[i].energy_end = diag.energy_kwh;
                            truth[i].served_end = diag.served_m3;
                        } else {
                            truth[i].observe(&diag, self.sample_every);
                        }
                    }
                }
            }
            if t >= end {
                break;
            }
            for (i, reading) in self.sim.readings().into_iter().enumerate() {
                let Some(s) = series.get_mut(i) else { continue };
                for (unit, values) in &reading.devices {
                    if let Some(points) = self.table.get(&unit.kind()) {
                        for &(k, name) in points {
                            if let Some(&v) = values.get(k) {
                                s.add(*unit, name, reading.t.0, v);
                            }
                        }
                    }
                }
            }
        }
        let simulated = clock.elapsed();
        let clock = Instant::now();
        let out = series
            .iter()
            .zip(truth)
            .zip(rooms)
            .map(|((s, tr), spec)| {
                let ctx = RoomContext {
                    spec,
                    archive: self.archives.get(&spec.id),
                    config: &self.config,
                };
                (compute_day(s, &ctx, true), tr)
            })
            .collect();
        (date, out, simulated, clock.elapsed())
    }
}

/// Runs the bench.
pub fn run_analysis_bench(
    opts: &AnalysisBenchOptions,
) -> Result<AnalysisBenchReport, AnalysisBenchError> {
    if opts.rooms == 0 || opts.days == 0 {
        return Err(AnalysisBenchError::Invalid(
            "--rooms and --days must be at least 1".into(),
        ));
    }
    if opts.leaks > opts.rooms {
        return Err(AnalysisBenchError::Invalid(format!(
            "--leaks {} is more than --rooms {}",
            opts.leaks, opts.rooms
        )));
    }
    if !(opts.leak_fraction > 0.0 && opts.leak_fraction < 1.0) {
        return Err(AnalysisBenchError::Invalid(
            "--leak-fraction must be within (0, 1)".into(),
        ));
    }
    let inventory = generate_fleet(opts.rooms, opts.seed);
    let (_, archives) = crate::business::assets::archive::demo_archive(&inventory);
    let archives: HashMap<RoomId, RoomArchive> = archives
        .into_iter()
        .map(|a| (a.site.id.clone(), a))
        .collect();
    // Leaking rooms are spread over the fleet (and so over its sizes).
    let leaking: Vec<RoomId> = inventory
        .rooms
        .iter()
        .enumerate()
        .filter(|(i, _)| i * opts.leaks / opts.rooms != (i + 1) * opts.leaks / opts.rooms)
        .map(|(_, r)| r.id.clone())
        .collect();
    let first = Date::ymd(2026, 3, 2).unwrap_or(Date::from_days(20_514));
    let mut run = DaySim::new(
        inventory,
        archives,
        opts.seed,
        first,
        opts.config.clone(),
        SAMPLE_EVERY,
    );
    let mut days: HashMap<RoomId, Vec<RoomDay>> = HashMap::new();
    let mut truths: Vec<(RoomDay, Truth)> = Vec::new();
    let (mut simulate, mut analyse) = (Duration::ZERO, Duration::ZERO);
    for d in 0..opts.days {
        if d == opts.leak_day {
            for room in &leaking {
                inject_leak(run.simulator(), room, opts.leak_fraction)?;
            }
        }
        let (_, out, s, a) = run.next_day();
        simulate += s;
        analyse += a;
        for (day, truth) in out {
            days.entry(day.room.clone()).or_default().push(day.clone());
            truths.push((day, truth));
        }
    }
    let mut kwh_per_m3 = Vec::new();
    let mut kwh_per_kt_mpa = Vec::new();
    let mut pump_efficiency = Vec::new();
    for (day, tr) in &truths {
        let f = day.figures();
        if tr.m3() > 0.0 {
            kwh_per_m3.push((f.kwh_per_m3, tr.kwh() / tr.m3()));
        }
        if tr.m3_mpa > 0.0 {
            kwh_per_kt_mpa.push((f.kwh_per_kt_mpa, tr.kwh() / (tr.m3_mpa / 1000.0)));
        }
        for unit in tr.pumps.keys() {
            if let Some(truth) = tr.pump_efficiency(*unit) {
                pump_efficiency.push((pump_estimate(day, *unit), truth));
            }
        }
    }
    let rules = match &opts.rules {
        Some(dir) => {
            let loaded =
                cistern_rules::RuleSet::load_dir(dir, cistern_rules::SandboxLimits::default())
                    .map_err(|e| AnalysisBenchError::Invalid(format!("{}: {e}", dir.display())))?;
            if loaded.has_errors() {
                return Err(AnalysisBenchError::Invalid(format!(
                    "{}: the rules do not compile: {:?}",
                    dir.display(),
                    loaded.diagnostics
                )));
            }
            std::sync::Arc::new(loaded.set)
        }
        None => crate::business::analysis::leak_rule::library_rules(),
    };
    let leak = Some(leak_detection(
        &days,
        &leaking,
        opts.leak_day,
        &opts.config,
        &rules,
    )?);
    Ok(AnalysisBenchReport {
        rooms: opts.rooms,
        days: opts.days,
        leaks: leaking.len(),
        leak_fraction: opts.leak_fraction,
        leak_day: opts.leak_day,
        seed: opts.seed,
        kwh_per_m3: ErrorStats::of(&kwh_per_m3),
        kwh_per_kt_mpa: ErrorStats::of(&kwh_per_kt_mpa),
        pump_efficiency: ErrorStats::of(&pump_efficiency),
        leak,
        simulate_s: simulate.as_secs_f64(),
        analyse_s: analyse.as_secs_f64(),
    })
}

impl fmt::Display for AnalysisBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cistern bench analysis — {} rooms × {} days, seed {}; {} leaks of {:.1} % of daily flow from day {}",
            self.rooms,
            self.days,
            self.seed,
            self.leaks,
            self.leak_fraction * 100.0,
            self.leak_day + 1
        )?;
        writeln!(
            f,
            "{:<38} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
            "error against the simulator's physics",
            "cases",
            "mean %",
            "p95 %",
            "max %",
            "bias %",
            "no figure"
        )?;
        for (name, s) in [
            ("energy intensity, kWh/m³ (room-day)", &self.kwh_per_m3),
            ("kWh per 1,000 m³·MPa (room-day)", &self.kwh_per_kt_mpa),
            ("pump efficiency (pump-day)", &self.pump_efficiency),
        ] {
            writeln!(
                f,
                "{:<38} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>+8.2} {:>10}",
                name, s.n, s.mean_abs_pct, s.p95_abs_pct, s.max_abs_pct, s.bias_pct, s.no_estimate
            )?;
        }
        writeln!(f, "target: within 5 %")?;
        if let Some(l) = &self.leak {
            let mean = if l.delays.is_empty() {
                f64::NAN
            } else {
                l.delays.iter().sum::<usize>() as f64 / l.delays.len() as f64
            };
            writeln!(
                f,
                "leaks injected / detected          {} / {}",
                l.injected, l.detected
            )?;
            if l.delays.is_empty() {
                writeln!(f, "detection delay, nights            —")?;
            } else {
                writeln!(
                    f,
                    "detection delay, nights            mean {:.1}, max {}",
                    mean,
                    l.delays.iter().max().copied().unwrap_or(0)
                )?;
            }
            writeln!(
                f,
                "false alarms on leak-free rooms    {} in {} room-nights",
                l.false_alarms, l.clean_room_nights
            )?;
            writeln!(
                f,
                "target: a 2 % leak found within 3 nights, 0 false alarms in 200 room-nights"
            )?;
        }
        writeln!(
            f,
            "wall time: simulation {:.1} s, analysis {:.2} s ({} room-days)",
            self.simulate_s,
            self.analyse_s,
            self.rooms * self.days
        )
    }
}

/// The analysis' run-time-weighted efficiency estimate of a pump over the day.
fn pump_estimate(day: &RoomDay, unit: DeviceUnit) -> Option<f64> {
    crate::business::analysis::efficiency::pump_efficiencies(&day.pumps)
        .into_iter()
        .find(|(u, _, _)| *u == unit)
        .and_then(|(_, e, _)| e)
}

/// Starts a compound leak of `fraction` of the room's mean daily flow, for good.
pub fn inject_leak(
    sim: &mut Simulator,
    room: &RoomId,
    fraction: f64,
) -> Result<(), AnalysisBenchError> {
    Ok(sim.inject_pipe_leak(room, fraction, Duration::from_secs(10 * 365 * 86_400))?)
}

/// Runs the library's `night_flow_leak` rule (the real Rhai rule, through the rule engine)
/// over each room's nightly facts, as the platform sets them when a day closes.
fn leak_detection(
    days: &HashMap<RoomId, Vec<RoomDay>>,
    leaking: &[RoomId],
    leak_day: usize,
    config: &AnalysisConfig,
    rules: &std::sync::Arc<cistern_rules::RuleSet>,
) -> Result<LeakStats, AnalysisBenchError> {
    use crate::business::analysis::leak_rule::{alarm_nights, leak_facts};
    let mut stats = LeakStats {
        injected: leaking.len(),
        ..LeakStats::default()
    };
    let mut ids: Vec<&RoomId> = days.keys().collect();
    ids.sort();
    for room in ids {
        let nights: Vec<(Date, Option<f64>)> = days[room]
            .iter()
            .map(|d| (d.date, d.figures().leak_index))
            .collect();
        let facts = leak_facts(&nights, &config.leakage);
        let raised = alarm_nights(rules, room, &facts, config.utc_offset_minutes)
            .map_err(|e| AnalysisBenchError::Invalid(format!("night_flow_leak: {e}")))?;
        let first_leak_night = nights.get(leak_day).map(|(d, _)| *d);
        // The nights the rule could judge: those with a baseline behind them.
        let judged = |until: Option<Date>| {
            facts
                .iter()
                .filter(|f| f.baseline.is_some() && until.is_none_or(|u| f.date < u))
                .count()
        };
        if leaking.contains(room) {
            // Raised before the leak began: a false alarm all the same.
            let before = raised
                .iter()
                .filter(|d| first_leak_night.is_some_and(|f| **d < f))
                .count();
            stats.false_alarms += before;
            stats.clean_room_nights += judged(first_leak_night);
            if let Some(found) = raised
                .iter()
                .find(|d| first_leak_night.is_some_and(|f| **d >= f))
            {
                stats.detected += 1;
                if let Some(f) = first_leak_night {
                    stats.delays.push((found.days() - f.days()) as usize + 1);
                }
            }
        } else {
            stats.false_alarms += raised.len();
            stats.clean_room_nights += judged(None);
        }
    }
    Ok(stats)
}
