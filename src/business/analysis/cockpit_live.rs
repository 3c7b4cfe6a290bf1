//! What the cockpit and the score read besides the daily ledger: each room's live facts from
//! the other services (open orders and their SLA, alarms on the board, lifecycle risk, tank
//! cleaning), and one pass over the ledger that builds both the cockpit's [`Snapshot`] and the
//! rooms' score facts ([`Gather`]).
//!
//! Pure: the API collects [`LiveFacts`] from the services (a service the node lacks leaves its
//! facts unknown — the score then says they are missing) and feeds the ledger through
//! [`Gather::day`] from `Analysis::each_figures`.
//!
//! Alarm facts count the alarms on the board (active, or cleared and not yet acknowledged)
//! raised within the score's window, classed by their rule's name: security (`intrusion`,
//! `door`, `access`), environment (`flood`, `smoke`, `temperature`, `humidity`) and pump
//! faults (`fault` on a pump). Alarms already cleared and acknowledged have left the board
//! and are not counted: a fact about the room's present trouble, not its full history.

use super::cockpit::{Acc, IndicatorId, RoomEntry, RoomFigures, Snapshot};
use super::day::DayFigures;
use super::score::{Fact, Facts, RoomScore, ScoreModel};
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::{Date, DeviceUnit, RoomId, ZoneId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The class of an alarm rule, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmClass {
    Security,
    Environment,
    PumpFault,
    Other,
}

/// The class of an alarm of rule `rule` on `unit`.
pub fn classify(rule: &str, unit: Option<DeviceUnit>) -> AlarmClass {
    let r = rule.to_ascii_lowercase();
    if ["intrusion", "door", "access"]
        .iter()
        .any(|w| r.contains(w))
    {
        AlarmClass::Security
    } else if ["flood", "smoke", "temperature", "humidity"]
        .iter()
        .any(|w| r.contains(w))
    {
        AlarmClass::Environment
    } else if r.contains("fault")
        && (matches!(unit, Some(DeviceUnit::Pump(_))) || r.contains("pump"))
    {
        AlarmClass::PumpFault
    } else {
        AlarmClass::Other
    }
}

/// One room's live facts. `None` / `false`: the node has no such service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveFacts {
    /// Work orders: known, open now, and those of the window whose SLA could be judged.
    pub orders_known: bool,
    pub open_orders: u32,
    pub sla_met: u32,
    pub sla_judged: u32,
    /// Alarms: known, active now, raised within the window in all and by class.
    pub alarms_known: bool,
    pub active_alarms: u32,
    pub window_alarms: u32,
    pub security_alarms: u32,
    pub environment_alarms: u32,
    pub pump_faults: u32,
    /// Lifecycle: the room's worst component 30-day failure probability, and each device's
    /// health (1 − its worst component's).
    pub lifecycle_risk: Option<f64>,
    pub device_health: Vec<(DeviceUnit, f64)>,
    /// Cleaning: days since the room's least recently cleaned tank was.
    pub days_since_cleaning: Option<f64>,
    /// Inspections done / due in the window.
    pub inspections_done: Option<f64>,
}

impl LiveFacts {
    /// Counts an alarm of the board raised within the window (`in_window`) or not.
    pub fn add_alarm(
        &mut self,
        rule: &str,
        unit: Option<DeviceUnit>,
        active: bool,
        in_window: bool,
    ) {
        self.alarms_known = true;
        if active {
            self.active_alarms += 1;
        }
        if !in_window {
            return;
        }
        self.window_alarms += 1;
        match classify(rule, unit) {
            AlarmClass::Security => self.security_alarms += 1,
            AlarmClass::Environment => self.environment_alarms += 1,
            AlarmClass::PumpFault => self.pump_faults += 1,
            AlarmClass::Other => {}
        }
    }

    /// Adds a component's failure probability on `unit`.
    pub fn add_risk(&mut self, unit: DeviceUnit, p: f64) {
        if !p.is_finite() {
            return;
        }
        let p = p.clamp(0.0, 1.0);
        self.lifecycle_risk = Some(self.lifecycle_risk.map_or(p, |r| r.max(p)));
        match self.device_health.iter_mut().find(|(u, _)| *u == unit) {
            Some((_, h)) => *h = h.min(1.0 - p),
            None => self.device_health.push((unit, 1.0 - p)),
        }
    }

    /// The score facts these give.
    pub fn score_facts(&self, facts: &mut Facts) {
        if self.alarms_known {
            facts.set(Fact::SecurityAlarms, Some(f64::from(self.security_alarms)));
            facts.set(
                Fact::EnvironmentAlarms,
                Some(f64::from(self.environment_alarms)),
            );
            facts.set(Fact::PumpFaults, Some(f64::from(self.pump_faults)));
        }
        if self.orders_known && self.sla_judged > 0 {
            facts.set(
                Fact::OrderSla,
                Some(f64::from(self.sla_met) / f64::from(self.sla_judged)),
            );
        }
        facts.set(Fact::LifecycleRisk, self.lifecycle_risk);
        facts.set(Fact::DaysSinceCleaning, self.days_since_cleaning);
        facts.set(Fact::InspectionsDone, self.inspections_done);
    }

    /// The cockpit figures these give (`window_days`: the alarm load's room-days).
    pub fn cockpit(&self, f: &mut RoomFigures, window_days: u32) {
        if self.orders_known {
            f.set(
                IndicatorId::OpenOrders,
                Acc::count(f64::from(self.open_orders)),
            );
            if self.sla_judged > 0 {
                f.set(
                    IndicatorId::OrderSla,
                    Acc {
                        sum: f64::from(self.sla_met),
                        weight: f64::from(self.sla_judged),
                    },
                );
            }
        }
        if self.alarms_known {
            f.set(
                IndicatorId::ActiveAlarms,
                Acc::count(f64::from(self.active_alarms)),
            );
            f.set(
                IndicatorId::AlarmLoad,
                Acc {
                    sum: f64::from(self.window_alarms),
                    weight: f64::from(window_days.max(1)),
                },
            );
        }
        for (unit, h) in &self.device_health {
            f.add_device(IndicatorId::EquipmentHealth, *unit, Acc::of(*h, 1.0));
        }
    }
}

/// The fleet's live facts.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub rooms: HashMap<RoomId, LiveFacts>,
    /// People on call for each zone now, and in the whole fleet (a team serving two zones
    /// counts once there).
    pub crews: BTreeMap<ZoneId, u32>,
    pub crews_fleet: Option<u32>,
}

/// The period the cockpit shows and the score's window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Periods {
    /// The cockpit's period `[from, to]` (a day, a month).
    pub from: Date,
    pub to: Date,
    /// The score's window `[from, to]`.
    pub window_from: Date,
    pub window_to: Date,
    /// The sparkline's first day (to `to`).
    pub spark_from: Date,
    /// Today (live) and the share of it elapsed (0..1]: a live day's completeness counts the
    /// whole day as expected (`quality`), so it is scaled to the elapsed part here.
    pub live: Option<(Date, f64)>,
}

/// A live day's figures with completeness over the elapsed part of the day.
pub fn live_scaled(f: &DayFigures, elapsed: f64) -> DayFigures {
    let mut f = f.clone();
    if elapsed > 0.0 && elapsed < 1.0 {
        f.completeness = f.completeness.map(|c| (c / elapsed).min(1.0));
    }
    f
}

/// One pass over the ledger: the cockpit's figures of the period, the score's window facts and
/// the fleet's daily sparkline points.
#[derive(Debug)]
pub struct Gather {
    periods: Periods,
    figures: HashMap<RoomId, RoomFigures>,
    window: HashMap<RoomId, WindowSums>,
    spark: BTreeMap<(IndicatorId, Date), Acc>,
}

#[derive(Debug, Default)]
struct WindowSums(BTreeMap<Fact, (f64, u32)>);

impl Gather {
    pub fn new(periods: Periods) -> Self {
        Self {
            periods,
            figures: HashMap::new(),
            window: HashMap::new(),
            spark: BTreeMap::new(),
        }
    }

    /// The first day the pass needs.
    pub fn first_day(&self) -> Date {
        self.periods
            .from
            .min(self.periods.window_from)
            .min(self.periods.spark_from)
    }

    /// The last day the pass needs.
    pub fn last_day(&self) -> Date {
        self.periods.to.max(self.periods.window_to)
    }

    /// Takes one room-day of the ledger.
    pub fn day(&mut self, room: &RoomId, date: Date, f: &DayFigures) {
        let p = self.periods;
        let scaled;
        let f = match p.live {
            Some((d, elapsed)) if d == date => {
                scaled = live_scaled(f, elapsed);
                &scaled
            }
            _ => f,
        };
        if date >= p.from && date <= p.to {
            match self.figures.get_mut(room) {
                Some(r) => r.add_day(f),
                None => {
                    let mut r = RoomFigures::default();
                    r.add_day(f);
                    self.figures.insert(room.clone(), r);
                }
            }
        }
        if date >= p.window_from && date <= p.window_to {
            let w = match self.window.get_mut(room) {
                Some(w) => w,
                None => self.window.entry(room.clone()).or_default(),
            };
            let mut add = |fact: Fact, v: Option<f64>| {
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    let e = w.0.entry(fact).or_insert((0.0, 0));
                    e.0 += v;
                    e.1 += 1;
                }
            };
            add(Fact::PumpEfficiency, f.pump_efficiency);
            add(Fact::PorShare, f.por_share);
            add(Fact::Availability, f.availability);
            add(Fact::QualityCompliance, f.quality_compliance);
            add(Fact::SetEfficiency, f.set_efficiency);
            add(Fact::LeakIndex, f.leak_index);
            add(Fact::Completeness, f.completeness);
        }
        if date >= p.spark_from && date <= p.to {
            for i in super::cockpit::CATALOGUE.iter().filter(|i| i.ledger) {
                if let Some(a) = super::cockpit::figure_value(i.id, f) {
                    self.spark.entry((i.id, date)).or_default().add(a);
                }
            }
        }
    }

    /// The room's score facts: its window's means and its live facts.
    pub fn facts(&self, room: &RoomId, live: Option<&LiveFacts>) -> Facts {
        let mut facts = Facts::default();
        if let Some(w) = self.window.get(room) {
            for (fact, (sum, n)) in &w.0 {
                facts.set(*fact, Some(sum / f64::from(*n)));
            }
        }
        if let Some(l) = live {
            l.score_facts(&mut facts);
        }
        facts
    }

    /// The fleet's daily figures of a ledger indicator from `spark_from` to `to` (days
    /// without a figure are `None`).
    pub fn sparkline(&self, id: IndicatorId) -> Vec<(Date, Option<f64>)> {
        let mut out = Vec::new();
        let mut d = self.periods.spark_from;
        while d <= self.periods.to {
            let v = self
                .spark
                .get(&(id, d))
                .and_then(|a| a.value(id.spec().combine));
            out.push((d, v));
            d = d.plus_days(1);
        }
        out
    }

    /// The cockpit's snapshot and every room's score.
    pub fn finish(
        &self,
        model: &ScoreModel,
        rooms: &[Arc<RoomSpec>],
        zone_names: BTreeMap<ZoneId, String>,
        live: &Live,
    ) -> (Snapshot, Vec<(ZoneId, RoomScore)>) {
        let window_days =
            (self.periods.window_to.days() - self.periods.window_from.days() + 1).max(1) as u32;
        let mut entries = Vec::with_capacity(rooms.len());
        let mut scores = Vec::with_capacity(rooms.len());
        for spec in rooms {
            let l = live.rooms.get(&spec.id);
            let score = model.score(&spec.id, &self.facts(&spec.id, l));
            let mut figures = self.figures.get(&spec.id).cloned().unwrap_or_default();
            if let Some(l) = l {
                l.cockpit(&mut figures, window_days);
            }
            if let Some(s) = score.score {
                figures.set(IndicatorId::RoomScore, Acc::of(s, 1.0));
            }
            entries.push(RoomEntry {
                room: spec.id.clone(),
                zone: spec.zone.clone(),
                name: spec.name.clone(),
                figures,
            });
            scores.push((spec.zone.clone(), score));
        }
        let mut snapshot = Snapshot {
            rooms: entries,
            zone_names,
            ..Snapshot::default()
        };
        for (z, n) in &live.crews {
            snapshot.zones.insert(
                (IndicatorId::CrewsOnDuty, z.clone()),
                Acc::count(f64::from(*n)),
            );
        }
        if let Some(n) = live.crews_fleet {
            snapshot
                .fleet
                .insert(IndicatorId::CrewsOnDuty, Acc::count(f64::from(n)));
        }
        (snapshot, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::analysis::cockpit::Scope;

    #[test]
    fn a_live_days_completeness_is_over_its_elapsed_part() {
        let f = DayFigures {
            completeness: Some(0.25),
            ..DayFigures::default()
        };
        assert_eq!(live_scaled(&f, 0.5).completeness, Some(0.5));
        assert_eq!(live_scaled(&f, 0.2).completeness, Some(1.0));
        assert_eq!(live_scaled(&f, 1.0).completeness, Some(0.25));
    }

    #[test]
    fn alarm_rules_are_classed_by_name() {
        assert_eq!(classify("intrusion_armed", None), AlarmClass::Security);
        assert_eq!(classify("door_open_long", None), AlarmClass::Security);
        assert_eq!(classify("flooding", None), AlarmClass::Environment);
        assert_eq!(
            classify("drive_fault", Some(DeviceUnit::Pump(2))),
            AlarmClass::PumpFault
        );
        assert_eq!(classify("drive_fault", None), AlarmClass::Other);
        assert_eq!(classify("low_pressure", None), AlarmClass::Other);
    }

    #[test]
    fn live_facts_feed_the_score_and_the_cockpit_and_unknown_services_stay_unknown() {
        let mut l = LiveFacts::default();
        let mut facts = Facts::default();
        l.score_facts(&mut facts);
        assert!(facts.0.is_empty(), "a node without services knows nothing");
        l.add_alarm("intrusion", None, true, true);
        l.add_alarm("drive_fault", Some(DeviceUnit::Pump(1)), false, true);
        l.add_alarm("smoke", None, true, false);
        l.add_risk(DeviceUnit::Pump(1), 0.2);
        l.add_risk(DeviceUnit::Pump(1), 0.4);
        l.add_risk(DeviceUnit::Tank(1), 0.1);
        l.score_facts(&mut facts);
        assert_eq!(facts.get(Fact::SecurityAlarms), Some(1.0));
        assert_eq!(facts.get(Fact::EnvironmentAlarms), Some(0.0));
        assert_eq!(facts.get(Fact::PumpFaults), Some(1.0));
        assert_eq!(facts.get(Fact::LifecycleRisk), Some(0.4));
        assert_eq!(facts.get(Fact::OrderSla), None);
        let mut f = RoomFigures::default();
        l.cockpit(&mut f, 30);
        assert_eq!(f.values[&IndicatorId::ActiveAlarms].sum, 2.0);
        assert_eq!(
            f.values[&IndicatorId::AlarmLoad].value(super::super::cockpit::Combine::Mean),
            Some(2.0 / 30.0)
        );
        let health = &f.devices[&IndicatorId::EquipmentHealth];
        assert!((health[0].1.sum - 0.6).abs() < 1e-12);
    }

    #[test]
    fn one_pass_over_the_ledger_gives_the_period_the_window_and_the_sparkline() {
        let d0 = Date::ymd(2026, 3, 1).unwrap();
        let periods = Periods {
            from: d0.plus_days(2),
            to: d0.plus_days(2),
            window_from: d0,
            window_to: d0.plus_days(2),
            spark_from: d0.plus_days(1),
            live: None,
        };
        let mut g = Gather::new(periods);
        assert_eq!(g.first_day(), d0);
        let room = RoomId::new("XM-0001").unwrap();
        for i in 0..3 {
            g.day(
                &room,
                d0.plus_days(i),
                &DayFigures {
                    availability: Some(0.9 + 0.05 * f64::from(i)),
                    ..DayFigures::default()
                },
            );
        }
        // The period is the last day only; the window's mean is over three.
        let facts = g.facts(&room, None);
        assert!((facts.get(Fact::Availability).unwrap() - 0.95).abs() < 1e-12);
        let fig = &g.figures[&room];
        assert!((fig.values[&IndicatorId::Availability].sum - 1.0).abs() < 1e-12);
        let spark = g.sparkline(IndicatorId::Availability);
        assert_eq!(spark.len(), 2);
        assert!((spark[0].1.unwrap() - 0.95).abs() < 1e-12);
        assert_eq!(g.sparkline(IndicatorId::LeakIndex)[0].1, None);
        let spec: Arc<RoomSpec> = Arc::new(
            toml::from_str::<cistern_schemas::inventory::Inventory>(
                r#"
                [[zones]]
                id = "siming"
                name = "思明"
                [[rooms]]
                id = "XM-0001"
                name = "金山花园泵房"
                lat = 24.48
                lon = 118.09
                zone = "siming"
                pumps = []
                tanks = []
            "#,
            )
            .unwrap()
            .rooms[0]
                .clone(),
        );
        let (snap, scores) = g.finish(
            &ScoreModel::shipped().unwrap(),
            &[spec],
            BTreeMap::new(),
            &Live::default(),
        );
        assert_eq!(scores.len(), 1);
        let s = &scores[0].1;
        assert!(s.score.is_some());
        assert!(s.missing.contains(&Fact::SecurityAlarms));
        assert_eq!(
            snap.value(IndicatorId::RoomScore, &Scope::Fleet).unwrap(),
            s.score
        );
    }
}
