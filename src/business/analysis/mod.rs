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
pub mod compare;
pub mod day;
pub mod efficiency;
pub mod energy;
pub mod leak_rule;
pub mod leakage;
pub mod quality;
pub mod score;

use serde::{Deserialize, Serialize};

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
            energy: energy::EnergyConfig::default(),
            leakage: leakage::LeakageConfig::default(),
            score: score::ScoreConfig::default(),
        }
    }
}
