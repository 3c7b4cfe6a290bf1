//! What a tank needs from the next 24 hours, from its level and its demand forecast.
//!
//! The tank's own rules, in order of strength:
//! 1. never below the hard minimum (the booster's suction / low-low protection);
//! 2. never into the fire reserve (rooms that hold one);
//! 3. keep a safety reserve: `reserve_hours` of autonomy at the forecast's upper band above
//!    (1) and (2), at every slot of the plan;
//! 4. never above the level at which the water would age past the limit (a well-mixed tank's
//!    mean age is its volume over its throughput), nor above the operating maximum;
//! 5. never take more than the inlet can deliver (rated capacity, derated for low mains
//!    pressure).
//!
//! They become two cumulative curves over the horizon: `must_have[t]`, the inflow (m³) that
//! must have arrived by the end of slot t for (1)-(3) to hold with upper-band demand (already
//! pulled earlier where the inlet could not catch up later), and `may_have[t]`, what may have
//! arrived without passing (4) at median demand. Any schedule between the two curves, within the
//! rate cap, is safe: that is what the district coordinator allocates within.

use super::forecast::{Forecast, SLOT_HOURS};
use serde::{Deserialize, Serialize};

/// A tank's geometry and limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TankSpec {
    /// Plan area, m² (volume per metre of level).
    pub area_m2: f64,
    /// Highest operating level (the float valve closes there), m.
    pub max_level_m: f64,
    /// Hard minimum level, m.
    pub hard_min_m: f64,
    /// Fire reserve above the hard minimum, m (0 when the room holds none).
    pub fire_reserve_m: f64,
    /// Water-age limit, hours.
    pub age_limit_h: f64,
    /// Rated inlet capacity at nominal mains pressure, m³/h.
    pub inlet_capacity_m3h: f64,
}

impl TankSpec {
    /// The level below which the tank never plans to go: hard minimum plus fire reserve.
    pub fn floor_level_m(&self) -> f64 {
        self.hard_min_m + self.fire_reserve_m
    }

    pub fn volume_m3(&self, level_m: f64) -> f64 {
        self.area_m2 * level_m
    }

    pub fn level_m(&self, volume_m3: f64) -> f64 {
        volume_m3 / self.area_m2.max(1e-9)
    }
}

/// Tuning of the needs computation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeedsConfig {
    /// Hours of autonomy at upper-band demand kept above the floor at every slot.
    pub reserve_hours: f64,
    /// Fraction of the rated inlet capacity the plan counts on (low mains pressure at peak).
    pub inlet_derate: f64,
    /// Fraction of the water-age limit the planned level may reach (mean age ≈ volume /
    /// throughput, so this is a margin against a slow day).
    pub age_margin: f64,
    /// Hours of upper-band autonomy above the floor at which the fallback float valve opens.
    pub fallback_hours: f64,
    /// z of the cumulative demand's upper quantile (errors partly cancel over hours, so the
    /// cumulative band is narrower than the sum of the slots' bands).
    pub cumulative_z: f64,
    /// Correlation length of forecast errors, slots.
    pub error_correlation_slots: f64,
}

impl Default for NeedsConfig {
    fn default() -> Self {
        Self {
            reserve_hours: 0.75,
            inlet_derate: 0.8,
            age_margin: 0.8,
            fallback_hours: 0.5,
            cumulative_z: 1.0,
            error_correlation_slots: 4.0,
        }
    }
}

/// The tank's needs over a horizon, all volumes in m³ and per slot of 15 min.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TankNeeds {
    pub slot0: u32,
    /// Hours until the level reaches the floor at upper-band demand with the inlet shut.
    pub autonomy_h: f64,
    /// Cumulative inflow that must have arrived by the end of each slot.
    pub must_have: Vec<f64>,
    /// Cumulative inflow that may have arrived by the end of each slot.
    pub may_have: Vec<f64>,
    /// Most inflow per slot, m³.
    pub rate_cap: Vec<f64>,
    /// Highest level planned (operating maximum or water-age cap), m.
    pub max_level_m: f64,
    /// Level below which the local rule opens the inlet regardless of the plan, m.
    pub fallback_level_m: f64,
}

/// Needs of a tank at `level_m` given its demand forecast (the horizon is the forecast's).
///
/// There is no terminal condition beyond the reserve: a terminal level ("end where you are
/// now") forces fills into the last hours of the horizon, which are as likely to be tomorrow's
/// evening peak as tomorrow's night. The horizon is long enough (36 h by default) that the
/// next valley is always in view, and the plan is redone every 15 min.
pub fn tank_needs(
    spec: &TankSpec,
    config: &NeedsConfig,
    level_m: f64,
    forecast: &Forecast,
) -> TankNeeds {
    let h = forecast.len();
    let v0 = spec.volume_m3(level_m);
    let floor = spec.volume_m3(spec.floor_level_m());
    let reserve_slots = (config.reserve_hours / SLOT_HOURS).round().max(1.0) as usize;
    let fallback_slots = (config.fallback_hours / SLOT_HOURS).round().max(1.0) as usize;

    // Upper-band and median demand per slot, m³.
    let up: Vec<f64> = forecast
        .slots
        .iter()
        .map(|s| s.upper * SLOT_HOURS)
        .collect();
    let med: Vec<f64> = forecast
        .slots
        .iter()
        .map(|s| s.median * SLOT_HOURS)
        .collect();
    // Upper-band demand over the `n` slots after each slot (the reserve), wrapping to the
    // start of the forecast past its end (the profile is periodic enough for that).
    let window_sum = |n: usize, start: usize| -> f64 {
        (0..n)
            .map(|j| if h == 0 { 0.0 } else { up[(start + j) % h] })
            .sum()
    };

    let mean_flow = forecast.mean_flow();
    let age_cap = (spec.age_limit_h * config.age_margin * mean_flow).max(floor);
    let vmax_total = spec.volume_m3(spec.max_level_m).min(age_cap);
    let reserve_now = window_sum(reserve_slots, 0);
    let vmax = vmax_total.max(floor + reserve_now.min(spec.volume_m3(spec.max_level_m) - floor));

    let rate = spec.inlet_capacity_m3h * config.inlet_derate * SLOT_HOURS;
    let mut must = vec![0.0; h];
    let mut may = vec![0.0; h];
    let mut cum_med = 0.0;
    let mut cum_band = 0.0;
    let mut cum_var = 0.0;
    let mut running = 0.0_f64;
    for t in 0..h {
        cum_med += med[t];
        cum_band += up[t] - med[t];
        let s = forecast.slots[t].sigma * SLOT_HOURS;
        cum_var += s * s * config.error_correlation_slots;
        let cum_up = cum_med + cum_band.min(config.cumulative_z * cum_var.sqrt());
        let reserve = window_sum(reserve_slots, t + 1);
        let need = floor + reserve + cum_up - v0;
        running = running.max(need);
        must[t] = running.max(0.0);
        may[t] = vmax + cum_med - v0;
    }
    if h > 0 {
        // The inlet is rate-limited: what is needed late must start early enough.
        for t in (0..h - 1).rev() {
            must[t] = must[t].max(must[t + 1] - rate);
        }
        // Never more than the inlet could have delivered.
        for (t, m) in must.iter_mut().enumerate() {
            *m = m.min(rate * (t + 1) as f64);
        }
        for t in 0..h {
            may[t] = may[t].max(must[t]);
        }
    }

    // Autonomy: hours until the floor at upper-band demand with the inlet shut.
    let mut left = v0 - floor;
    let mut autonomy_h = 0.0;
    for &d in &up {
        if left <= 0.0 {
            break;
        }
        if d >= left {
            autonomy_h += SLOT_HOURS * left / d.max(1e-12);
            left = 0.0;
            break;
        }
        left -= d;
        autonomy_h += SLOT_HOURS;
    }
    if left > 0.0 {
        let mean_up = if h == 0 {
            0.0
        } else {
            up.iter().sum::<f64>() / (h as f64 * SLOT_HOURS)
        };
        autonomy_h += if mean_up > 1e-12 { left / mean_up } else { 1e3 };
    }

    let fallback = floor + window_sum(fallback_slots, 0);
    TankNeeds {
        slot0: forecast.slot0,
        autonomy_h,
        must_have: must,
        may_have: may,
        rate_cap: vec![rate; h],
        max_level_m: spec.level_m(vmax),
        fallback_level_m: spec.level_m(fallback.min(vmax)),
    }
}
