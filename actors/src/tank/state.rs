//! What a tank's points mean.

use crate::device::messages::RoomObserved;
use crate::device::{DeviceBehaviour, PointTable};
use cistern_schemas::inventory::TankSpec;
use cistern_schemas::{DeviceKind, Timestamp};
use serde::Serialize;

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

/// The tank's kind-specific state: its share of the room's draw.
#[derive(Debug, Default)]
pub struct TankBehaviour {
    demand_m3h: Option<f64>,
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
}
