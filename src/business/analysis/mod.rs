//! Analysis (DOMAIN.md §3, §4, §9; issue 22): what the managers run the fleet from — energy
//! intensity and pump efficiency ([`energy`], [`efficiency`]), leakage by minimum night flow
//! ([`leakage`]), comparisons of points and periods ([`compare`]), the room score
//! ([`score`]) and the cockpit's indicators ([`cockpit`]).
//!
//! Everything here is computed from a room's day of 1-minute rollups ([`day::DaySeries`]), never
//! from raw samples per request: a closed day is computed once into a [`day::RoomDay`] record on
//! the records port and read back by every report; today is computed live from the same rollups
//! by the same code. `cistern bench analysis` builds the same `DaySeries` from the simulator in
//! simulated time, so the live platform and the benchmark share one code path.

pub mod cockpit;
#[cfg(test)]
mod cockpit_bench;
pub mod cockpit_live;
pub mod cockpit_report;
pub mod compare;
pub mod day;
pub mod efficiency;
pub mod energy;
pub mod energy_report;
pub mod leak_feed;
pub mod leak_rule;
pub mod leakage;
pub mod quality;
pub mod score;
pub mod service;
#[cfg(test)]
mod tests;

pub use day::{DayFigures, DaySeries, RoomDay};
pub use service::{Analysis, AnalysisError, DayClosed, RoomSource};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[analysis]`: the day boundary and each analysis' own settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Compute closed days and serve the analysis API.
    pub enabled: bool,
    /// Local days start at UTC + this many minutes (Beijing: 480).
    pub utc_offset_minutes: i32,
    /// How many closed days the closer catches up on after a restart or on a new room.
    pub backfill_days: u32,
    /// Closed days' figures kept in memory (and read at start): over a year, for 同比.
    pub retain_days: u32,
    /// A day closes this long after local midnight (late store-and-forward data).
    #[serde(with = "humantime_serde")]
    pub close_after: Duration,
    /// Today's figures are recomputed this often.
    #[serde(with = "humantime_serde")]
    pub live_every: Duration,
    /// How often the closer looks for days due.
    #[serde(with = "humantime_serde")]
    pub check_every: Duration,
    pub energy: energy::EnergyConfig,
    pub leakage: leakage::LeakageConfig,
    pub score: score::ScoreConfig,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            utc_offset_minutes: 480,
            backfill_days: 35,
            retain_days: 400,
            close_after: Duration::from_secs(15 * 60),
            live_every: Duration::from_secs(5 * 60),
            check_every: Duration::from_secs(60),
            energy: energy::EnergyConfig::default(),
            leakage: leakage::LeakageConfig::default(),
            score: score::ScoreConfig::default(),
        }
    }
}
