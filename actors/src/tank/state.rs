//! What a tank's points mean.

use crate::alarms::DerivedFacts;
use crate::device::messages::RoomObserved;
use crate::device::{DeviceBehaviour, PointTable};
use cistern_schemas::inventory::TankSpec;
use cistern_schemas::{DeviceKind, Timestamp};
use serde::Serialize;
use std::collections::VecDeque;

/// Derived state of a tank.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TankDerived {
    pub level_m: Option<f64>,
    /// Level as a share of the overflow level, %.
    pub level_pct: Option<f64>,
    pub volume_m3: Option<f64>,
    /// Volume above the hard minimum and the fire reserve, m³.
    pub usable_m3: Option<f64>,
    /// Hours the usable volume lasts at the current draw with the inlet closed.
    pub autonomy_h: Option<f64>,
    pub demand_m3h: Option<f64>,
    pub inlet_open: Option<bool>,
    pub overflow: Option<bool>,
    pub low_low: Option<bool>,
}

/// How far back the level trend looks, and the shortest span it is computed over.
const TREND_WINDOW_MS: i64 = 10 * 60 * 1000;
const TREND_MIN_SPAN_MS: i64 = 2 * 60 * 1000;
/// Levels are kept for the trend at most this often.
const TREND_STEP_MS: i64 = 30 * 1000;

/// The tank's kind-specific state: its share of the room's draw, and recent levels for the
/// trend.
#[derive(Debug, Default)]
pub struct TankBehaviour {
    demand_m3h: Option<f64>,
    levels: VecDeque<(Timestamp, f64)>,
}

impl TankBehaviour {
    /// The level trend over the last ten minutes, m/h (negative = falling); none before two
    /// minutes of good levels.
    pub fn level_rate_m_h(&self) -> Option<f64> {
        let (t0, l0) = *self.levels.front()?;
        let (t1, l1) = *self.levels.back()?;
        let span = t1.0 - t0.0;
        (span >= TREND_MIN_SPAN_MS).then(|| (l1 - l0) / (span as f64 / 3_600_000.0))
    }
}

/// Derives a tank's state from its level and the draw on it.
pub fn derive_tank(spec: &TankSpec, table: &PointTable, demand_m3h: Option<f64>) -> TankDerived {
    let level_m = table.good_value("level");
    let usable_m3 = level_m.map(|l| spec.usable_m3(l));
    // Below ~1 % of a typical draw the autonomy is effectively unbounded; report none rather
    // than an absurd number of hours.
    let autonomy_h = match (usable_m3, demand_m3h) {
        (Some(u), Some(d)) if d > 0.01 => Some(u / d),
        _ => None,
    };
    TankDerived {
        level_m,
        level_pct: level_m.map(|l| spec.percent(l)),
        volume_m3: level_m.map(|l| spec.volume_m3(l)),
        usable_m3,
        autonomy_h,
        demand_m3h,
        inlet_open: table.good_flag("inlet_valve"),
        overflow: table.good_flag("overflow"),
        low_low: table.good_flag("low_low"),
    }
}

impl DeviceBehaviour for TankBehaviour {
    const KIND: DeviceKind = DeviceKind::Tank;
    type Spec = TankSpec;
    type Derived = TankDerived;

    fn derive(&self, spec: &TankSpec, table: &PointTable, _now: Timestamp) -> TankDerived {
        derive_tank(spec, table, self.demand_m3h)
    }

    fn observe_room(&mut self, obs: &RoomObserved) {
        self.demand_m3h = obs.demand_m3h;
    }

    fn applied(&mut self, table: &PointTable, _now: Timestamp) {
        let Some(i) = table.specs().iter().position(|s| s.name == "level") else {
            return;
        };
        let p = &table.points()[i];
        let (Some(level), Some(t), true) = (p.value, p.t, p.quality.is_good()) else {
            return;
        };
        if self
            .levels
            .back()
            .is_some_and(|(last, _)| t.0 - last.0 < TREND_STEP_MS)
        {
            return;
        }
        self.levels.push_back((t, level));
        while self
            .levels
            .front()
            .is_some_and(|(first, _)| t.0 - first.0 > TREND_WINDOW_MS)
        {
            self.levels.pop_front();
        }
    }

    fn post_figures(
        &self,
        id: &cistern_schemas::DeviceId,
        spec: &TankSpec,
        table: &PointTable,
        figures: &crate::figures::LiveFigures,
    ) {
        let ratio = table.good_value("level").map(|l| spec.percent(l) / 100.0);
        figures.set_tank(id, ratio);
    }

    fn rule_facts(&self, spec: &TankSpec, table: &PointTable, _now: Timestamp) -> DerivedFacts {
        let d = derive_tank(spec, table, self.demand_m3h);
        // Rounded to what rules can tell apart, so that noise does not count as a change.
        let round = |v: Option<f64>, step: f64| v.map(|x| (x / step).round() * step);
        DerivedFacts::Tank {
            level_pct: round(d.level_pct, 0.1),
            volume_m3: round(d.volume_m3, 0.1),
            autonomy_h: round(d.autonomy_h, 0.1),
            level_rate_m_h: round(self.level_rate_m_h(), 0.01),
        }
    }
}
