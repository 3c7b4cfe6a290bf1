//! A room's day of operational facts for the cockpit and the score (issue 22 items 5, 6):
//! water-quality compliance, availability and data completeness (received / expected samples).

use super::day::{DayFigures, DaySeries, RoomContext};
use serde::{Deserialize, Serialize};

/// A room's operational facts for one day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationDay {
    /// Samples received / expected over the day's loaded points, 0..1.
    pub completeness: Option<f64>,
}

/// The day's operational facts of a room.
pub fn compute(series: &DaySeries, ctx: &RoomContext<'_>) -> OperationDay {
    let _ = (series, ctx);
    OperationDay::default()
}

/// This analysis' share of the day's headline figures.
pub fn figures(day: &OperationDay, out: &mut DayFigures) {
    let _ = (day, out);
}
