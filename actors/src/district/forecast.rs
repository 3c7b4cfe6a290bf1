//! Demand forecaster: a tank's (or a district meter's) outflow profile, learned online.
//!
//! Why this shape: a compound's demand is a daily rhythm that differs between weekdays,
//! Saturdays and Sundays (holidays behave like Sundays), scaled from day to day by weather and
//! season. So the model is an hour-of-week profile at 15-minute resolution, folded into three
//! day types so that one week of history already gives every slot a few samples, plus a
//! short-memory level correction that carries today's deviation (a hot day) forward for a few
//! hours.
//!
//! Robustness, by construction rather than by cleaning afterwards:
//! - outliers (a meter spike, a flushing event): each residual is clipped at `clip` robust
//!   scales before it moves the profile (a clipped, Huber-style EWMA);
//! - comms gaps: a missing sample is simply absent — nothing is imputed, no zero is learned,
//!   and the level correction relaxes back to 1 across a gap;
//! - holidays: the calendar maps them to the Sunday profile, which they update.
//!
//! The band: each slot keeps an EWMA of absolute clipped residuals (a mean absolute
//! deviation), turned into quantiles with a normal approximation. Everything takes the slot
//! as an argument: no clock, no I/O.

use serde::{Deserialize, Serialize};

/// 15-minute slots in a day.
pub const SLOTS_PER_DAY: usize = 96;
/// Hours per slot.
pub const SLOT_HOURS: f64 = 0.25;
/// Mean absolute deviation → standard deviation, for normal residuals.
const MAD_TO_SIGMA: f64 = 1.2533;

/// The kind of day a slot belongs to, for the demand profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DayType {
    Weekday,
    Saturday,
    /// Sundays and public holidays.
    Sunday,
}

impl DayType {
    fn index(self) -> usize {
        match self {
            DayType::Weekday => 0,
            DayType::Saturday => 1,
            DayType::Sunday => 2,
        }
    }
}

/// The utility's calendar: slot 0 is a Monday 00:00 local time; listed days are holidays.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    /// Day numbers (slot / 96) that are public holidays.
    pub holidays: Vec<u32>,
}

impl Calendar {
    pub fn day_type(&self, slot: u32) -> DayType {
        let day = slot / SLOTS_PER_DAY as u32;
        if self.holidays.contains(&day) {
            return DayType::Sunday;
        }
        match day % 7 {
            5 => DayType::Saturday,
            6 => DayType::Sunday,
            _ => DayType::Weekday,
        }
    }
}

/// Tuning of the forecaster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastConfig {
    /// Floor of the profile's learning rate once a slot has enough samples.
    pub alpha_min: f64,
    /// Learning rate of the robust scale.
    pub scale_alpha: f64,
    /// Residuals are clipped at this many robust scales.
    pub clip: f64,
    /// Weight of an observation on the neighbouring slots (peaks jitter by ±45 min).
    pub neighbour_weight: f64,
    /// Learning rate of the level correction (per observed slot).
    pub level_alpha: f64,
    /// Slots over which the level correction fades back to 1 in a forecast.
    pub level_fade_slots: f64,
    /// z of the upper and lower quantile of the band (1.28 → 10 % / 90 %).
    pub band_z: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            alpha_min: 0.12,
            scale_alpha: 0.08,
            clip: 2.5,
            neighbour_weight: 0.5,
            level_alpha: 0.08,
            level_fade_slots: 24.0,
            band_z: 1.28,
        }
    }
}

/// One slot of a forecast: flow in m³/h.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastSlot {
    pub median: f64,
    pub lower: f64,
    pub upper: f64,
    /// Standard deviation of the slot's flow, m³/h.
    pub sigma: f64,
}

/// A forecast of the next slots starting at `slot0`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub slot0: u32,
    pub slots: Vec<ForecastSlot>,
}

impl Forecast {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Mean of the median flow over the forecast, m³/h.
    pub fn mean_flow(&self) -> f64 {
        if self.slots.is_empty() {
            return 0.0;
        }
        self.slots.iter().map(|s| s.median).sum::<f64>() / self.slots.len() as f64
    }
}

/// Hour-of-week demand profile (three day types × 96 slots), learned online.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemandForecaster {
    config: ForecastConfig,
    calendar: Calendar,
    mean: Vec<f64>,
    scale: Vec<f64>,
    count: Vec<u32>,
    /// Ratio of recent observations to the profile (today's level).
    level: f64,
    last_observed: Option<u32>,
    observations: u64,
    rejected: u64,
}

impl DemandForecaster {
    pub fn new(config: ForecastConfig, calendar: Calendar) -> Self {
        let n = 3 * SLOTS_PER_DAY;
        Self {
            config,
            calendar,
            mean: vec![0.0; n],
            scale: vec![0.0; n],
            count: vec![0; n],
            level: 1.0,
            last_observed: None,
            observations: 0,
            rejected: 0,
        }
    }

    /// Observations learned from so far.
    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// Observations refused (negative, not finite).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Whether every slot of every day type has a value to forecast from.
    pub fn is_warm(&self) -> bool {
        self.count[..SLOTS_PER_DAY].iter().all(|&c| c >= 2)
    }

    fn index(&self, slot: u32) -> (usize, usize) {
        let k = slot as usize % SLOTS_PER_DAY;
        (self.calendar.day_type(slot).index(), k)
    }

    /// Profile value (m³/h) and robust scale of a day type and slot of day, borrowing from the
    /// weekday profile while a weekend slot has no samples yet.
    fn profile(&self, day_type: usize, k: usize) -> Option<(f64, f64)> {
        let i = day_type * SLOTS_PER_DAY + k;
        if self.count[i] > 0 {
            return Some((self.mean[i], self.scale[i]));
        }
        if self.count[k] > 0 {
            return Some((self.mean[k], (self.scale[k] * 1.5).max(0.3 * self.mean[k])));
        }
        None
    }

    /// Learns the outflow observed over `slot` (m³/h). A comms gap is simply a slot that is
    /// never observed.
    pub fn observe(&mut self, slot: u32, flow_m3h: f64) {
        if !flow_m3h.is_finite() || flow_m3h < 0.0 {
            self.rejected += 1;
            return;
        }
        let (d, k) = self.index(slot);
        // Level correction: relax towards 1 across a gap, then learn today's ratio.
        if let Some(last) = self.last_observed {
            let gap = slot.saturating_sub(last).saturating_sub(1);
            if gap > 0 {
                let fade = (-(f64::from(gap)) / self.config.level_fade_slots).exp();
                self.level = 1.0 + (self.level - 1.0) * fade;
            }
        }
        if let Some((m, s)) = self.profile(d, k) {
            if m > 1e-9 {
                let sigma = (s * MAD_TO_SIGMA).max(0.02 * m);
                // The level is learned from the clipped ratio, so a spike cannot move it far.
                let ratio = (flow_m3h / m).clamp(
                    1.0 - self.config.clip * sigma / m,
                    1.0 + self.config.clip * sigma / m,
                );
                self.level += self.config.level_alpha * (ratio.clamp(0.5, 2.0) - self.level);
                self.level = self.level.clamp(0.7, 1.4);
            }
        }
        self.last_observed = Some(slot);
        self.observations += 1;
        self.learn(d, k, flow_m3h, 1.0);
        if self.config.neighbour_weight > 0.0 {
            let w = self.config.neighbour_weight;
            self.learn(d, (k + SLOTS_PER_DAY - 1) % SLOTS_PER_DAY, flow_m3h, w);
            self.learn(d, (k + 1) % SLOTS_PER_DAY, flow_m3h, w);
        }
    }

    fn learn(&mut self, d: usize, k: usize, x: f64, weight: f64) {
        let i = d * SLOTS_PER_DAY + k;
        let mut prior = 0.0;
        if self.count[i] == 0 {
            if d != 0 && self.count[k] > 0 {
                // A weekend slot starts from the weekday profile, as a weak prior with a wide
                // scale (weekends differ: the first samples must be able to move it).
                self.mean[i] = self.mean[k];
                self.scale[i] = (self.scale[k] * 1.5).max(0.3 * self.mean[k]);
                prior = 0.25;
            } else if self.scale[i] > 0.0 {
                // Seeded by a neighbouring slot's sample: a prior that clips an outlier even
                // when it is this slot's very first sample.
                prior = 0.5;
            } else {
                self.mean[i] = x;
                self.scale[i] = (0.25 * x).max(1e-6);
                if weight >= 1.0 {
                    self.count[i] = 1;
                }
                return;
            }
        }
        let n = f64::from(self.count[i]) + prior;
        let alpha = (1.0 / (n + 1.0)).max(self.config.alpha_min) * weight;
        let sigma = (self.scale[i] * MAD_TO_SIGMA)
            .max(0.02 * self.mean[i])
            .max(1e-9);
        let limit = self.config.clip * sigma;
        let residual = (x - self.mean[i]).clamp(-limit, limit);
        self.mean[i] = (self.mean[i] + alpha * residual).max(0.0);
        let beta = (1.0 / (n + 1.0)).max(self.config.scale_alpha) * weight;
        self.scale[i] += beta * (residual.abs() - self.scale[i]);
        if weight >= 1.0 {
            self.count[i] = self.count[i].saturating_add(1);
        }
    }

    /// Forecast of `slots` slots starting at `slot0`. Before any learning the forecast is
    /// zero with an infinite band (the caller must treat such a tank as unknown).
    pub fn forecast(&self, slot0: u32, slots: usize) -> Forecast {
        let z = self.config.band_z;
        let mut out = Vec::with_capacity(slots);
        for h in 0..slots {
            let slot = slot0 + h as u32;
            let (d, k) = self.index(slot);
            let (m, s) = self.profile(d, k).unwrap_or((0.0, f64::INFINITY));
            // Today's level fades with the distance from the last observation, not from the
            // forecast's origin: after a gap it is stale.
            let since = self.last_observed.map_or(f64::INFINITY, |last| {
                f64::from(slot.saturating_sub(last + 1))
            });
            let fade = (-since / self.config.level_fade_slots).exp();
            let level = 1.0 + (self.level - 1.0) * fade;
            let median = m * level;
            // Profile noise plus what the level correction does not know yet.
            let sigma = (s * MAD_TO_SIGMA).hypot(0.06 * median * (1.0 - fade));
            out.push(ForecastSlot {
                median,
                lower: (median - z * sigma).max(0.0),
                upper: median + z * sigma,
                sigma,
            });
        }
        Forecast { slot0, slots: out }
    }
}
