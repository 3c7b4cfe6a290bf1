//! Leakage by minimum night flow (issue 22 item 3, DOMAIN.md §4): the night's minimum flow at the
//! booster outlet, the households' legitimate night use, the leak index against the room's own
//! baseline; float-valve overflow (inflow while full) separately.

use super::day::{DayFigures, DaySeries, RoomContext};
use serde::{Deserialize, Serialize};

/// `[analysis.leakage]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeakageConfig {}

/// A room's night-flow facts for the night that ends on the day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NightFlow {
    /// Minimum night flow, m³/h.
    pub mnf_m3h: Option<f64>,
}

/// The night's facts of a room.
pub fn compute(series: &DaySeries, ctx: &RoomContext<'_>) -> NightFlow {
    let _ = (series, ctx);
    NightFlow::default()
}

/// This analysis' share of the day's headline figures.
pub fn figures(night: &NightFlow, out: &mut DayFigures) {
    let _ = (night, out);
}
