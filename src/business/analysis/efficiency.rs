//! Pump efficiency (issue 22 item 2, DOMAIN.md §3): each pump's operating point (Q, H, speed
//! ratio) and its efficiency from the nameplate η-Q curve by the affinity laws.

use super::day::{DayFigures, DaySeries, RoomContext};
use cistern_schemas::DeviceUnit;
use serde::{Deserialize, Serialize};

/// A pump's efficiency facts for one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PumpDay {
    pub unit: DeviceUnit,
}

/// The day's facts of each pump of the room.
pub fn compute(series: &DaySeries, ctx: &RoomContext<'_>) -> Vec<PumpDay> {
    let _ = (series, ctx);
    Vec::new()
}

/// This analysis' share of the day's headline figures.
pub fn figures(pumps: &[PumpDay], out: &mut DayFigures) {
    let _ = (pumps, out);
}
