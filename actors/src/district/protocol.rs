//! The messages of the district filling protocol, and the local rule a plan leaves with the
//! room's controller.
//!
//! One round (every 15 min, or sooner when a tank reports a forecast miss):
//!
//! ```text
//! coordinator ──PlanningRoundOpened──► every reachable tank planner
//! tank        ──FillBid──────────────► coordinator   (needs: must/may curves, rate cap,
//!                                                      hours of autonomy = priority)
//! coordinator ──FillGranted──────────► each bidder    (m³ per slot, within the main's
//!                                                      capacity, least autonomy served first)
//! tank        ──PlanConfirmed────────► coordinator    (the local rule it sends its controller)
//! tank        ──ForecastMissed───────► coordinator    (between rounds: asks for a new round)
//! ```
//!
//! A tank that does not bid in a round (its room is offline) keeps running the local rule of
//! its last confirmed plan; the coordinator counts that rule's fill windows as committed load
//! on the main. The local rule is what the controller executes, online or not: fill windows
//! with a rate and a target level, and a fallback float-valve level below which it opens
//! regardless, so a tank cut off from the platform is never left without water.

use super::forecast::SLOT_HOURS;
use cistern_schemas::fill_plan::{PlanImage, PlanWindow};
use cistern_schemas::DeviceId;
use serde::{Deserialize, Serialize};

/// Coordinator → tanks: a planning round opens for slots `slot0 .. slot0 + horizon`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanningRoundOpened {
    pub round: u64,
    pub slot0: u32,
    pub horizon: usize,
}

/// Tank → coordinator: what the tank needs this round (volumes in m³ per 15-min slot).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FillBid {
    pub tank: DeviceId,
    pub round: u64,
    /// Priority: the least autonomy is served first.
    pub autonomy_h: f64,
    pub must_have: Vec<f64>,
    pub may_have: Vec<f64>,
    pub rate_cap: Vec<f64>,
}

/// Coordinator → tank: the inflow granted per slot, m³.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FillGranted {
    pub tank: DeviceId,
    pub round: u64,
    pub slot0: u32,
    /// 0 = served first.
    pub priority: u32,
    pub volumes: Vec<f64>,
}

/// Tank → coordinator: the plan the tank adopted, as sent to its controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanConfirmed {
    pub tank: DeviceId,
    pub round: u64,
    pub rule: LocalRule,
    /// The grant fell short of the tank's must-have curve (the fallback will cover it).
    pub short: bool,
}

/// Tank → coordinator: the forecast missed (observed demand outside the band for long
/// enough); asks for a new round before the next scheduled one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastMissed {
    pub tank: DeviceId,
    pub slot: u32,
    /// Observed minus forecast volume over the recent window, m³.
    pub error_m3: f64,
}

/// A period in which the controller fills at `rate_m3h` until `target_level_m`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FillWindow {
    pub start_slot: u32,
    /// Exclusive.
    pub end_slot: u32,
    pub rate_m3h: f64,
    pub target_level_m: f64,
}

/// The rule a room's controller runs, written to it as remote parameters: fill windows and
/// target levels, plus the fallback float level. It stays valid until `expires_slot`; after
/// that (or without any plan) the controller is a plain float valve at `max_level_m`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalRule {
    pub issued_slot: u32,
    pub expires_slot: u32,
    pub windows: Vec<FillWindow>,
    /// Below this level the inlet opens fully, whatever the windows say.
    pub fallback_level_m: f64,
    /// The fallback fill stops this far above the fallback level.
    pub fallback_hysteresis_m: f64,
    /// The inlet never fills above this level.
    pub max_level_m: f64,
}

/// What the controller does with its inlet over one slot.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum InletCommand {
    Closed,
    /// Open, flow limited to this rate (m³/h), until the level reaches `until_level_m`.
    Rate {
        rate_m3h: f64,
        until_level_m: f64,
    },
    /// Fully open (float valve), until the level reaches `until_level_m`.
    Full {
        until_level_m: f64,
    },
}

impl LocalRule {
    /// A rule without windows: a float valve that keeps the tank at `max_level_m` (B0).
    pub fn float_valve(issued_slot: u32, max_level_m: f64) -> Self {
        Self {
            issued_slot,
            expires_slot: u32::MAX,
            windows: Vec::new(),
            fallback_level_m: max_level_m,
            fallback_hysteresis_m: 0.0,
            max_level_m,
        }
    }

    /// Builds the rule from a per-slot schedule (m³ per slot) and the planned level at the end
    /// of each slot; consecutive slots with rates within 5 % of the largest merge into one
    /// window, whose target is the highest level planned in it (the level may fall while a
    /// window fills slower than the draw: the controller must not stop early then).
    pub fn from_schedule(
        slot0: u32,
        volumes: &[f64],
        planned_level_m: &[f64],
        fallback_level_m: f64,
        max_level_m: f64,
    ) -> Self {
        let peak = volumes.iter().copied().fold(0.0, f64::max);
        let tolerance = (0.05 * peak).max(1e-6);
        let mut windows: Vec<FillWindow> = Vec::new();
        for (t, &v) in volumes.iter().enumerate() {
            if v <= 1e-9 {
                continue;
            }
            let slot = slot0 + t as u32;
            let rate = v / SLOT_HOURS;
            let target = planned_level_m
                .get(t)
                .copied()
                .unwrap_or(max_level_m)
                .min(max_level_m);
            match windows.last_mut() {
                Some(w)
                    if w.end_slot == slot
                        && (w.rate_m3h - rate).abs() * SLOT_HOURS <= tolerance =>
                {
                    let n = f64::from(w.end_slot - w.start_slot);
                    w.rate_m3h = (w.rate_m3h * n + rate) / (n + 1.0);
                    w.end_slot = slot + 1;
                    w.target_level_m = w.target_level_m.max(target);
                }
                _ => windows.push(FillWindow {
                    start_slot: slot,
                    end_slot: slot + 1,
                    rate_m3h: rate,
                    target_level_m: target,
                }),
            }
        }
        Self {
            issued_slot: slot0,
            expires_slot: slot0 + volumes.len() as u32,
            windows,
            fallback_level_m: fallback_level_m.min(max_level_m),
            fallback_hysteresis_m: 0.3,
            max_level_m,
        }
    }

    /// The fill rate the rule plans for `slot`, m³/h (what the coordinator counts as committed
    /// load for a tank it cannot reach).
    pub fn planned_rate_m3h(&self, slot: u32) -> f64 {
        if slot >= self.expires_slot {
            return 0.0;
        }
        self.windows
            .iter()
            .find(|w| w.start_slot <= slot && slot < w.end_slot)
            .map_or(0.0, |w| w.rate_m3h)
    }

    /// The controller's decision at the start of `slot` with the tank at `level_m`.
    /// `fallback_active` is the controller's hysteresis state (kept between slots).
    pub fn command(&self, slot: u32, level_m: f64, fallback_active: &mut bool) -> InletCommand {
        let fallback_stop =
            (self.fallback_level_m + self.fallback_hysteresis_m).min(self.max_level_m);
        if level_m < self.fallback_level_m {
            *fallback_active = true;
        }
        if *fallback_active && level_m >= fallback_stop {
            *fallback_active = false;
        }
        let float_valve = InletCommand::Full {
            until_level_m: self.max_level_m,
        };
        if slot >= self.expires_slot {
            // Expired: a plain float valve.
            return float_valve;
        }
        if *fallback_active {
            return InletCommand::Full {
                until_level_m: fallback_stop,
            };
        }
        if self.windows.is_empty() && self.fallback_hysteresis_m == 0.0 {
            // A float valve rule: the valve modulates, shut only when the tank is full and
            // nothing is drawn.
            return float_valve;
        }
        match self
            .windows
            .iter()
            .find(|w| w.start_slot <= slot && slot < w.end_slot)
        {
            // The valve limits the flow to the rate and shuts at the target level.
            Some(w) => InletCommand::Rate {
                rate_m3h: w.rate_m3h,
                until_level_m: w.target_level_m,
            },
            None => InletCommand::Closed,
        }
    }
}

impl LocalRule {
    /// The rule as the controller's plan registers hold it (cut to what they carry).
    pub fn to_image(&self, priority: u32) -> PlanImage {
        PlanImage {
            issued_slot: self.issued_slot,
            expires_slot: self.expires_slot,
            priority: u16::try_from(priority).unwrap_or(u16::MAX),
            fallback_level_m: self.fallback_level_m,
            fallback_hysteresis_m: self.fallback_hysteresis_m,
            max_level_m: self.max_level_m,
            windows: self
                .windows
                .iter()
                .map(|w| PlanWindow {
                    start_slot: w.start_slot,
                    end_slot: w.end_slot,
                    rate_m3h: w.rate_m3h,
                    target_level_m: w.target_level_m,
                })
                .collect(),
        }
        .fit()
    }

    /// The rule a controller runs from its plan registers.
    pub fn from_image(image: &PlanImage) -> Self {
        Self {
            issued_slot: image.issued_slot,
            expires_slot: image.expires_slot,
            windows: image
                .windows
                .iter()
                .map(|w| FillWindow {
                    start_slot: w.start_slot,
                    end_slot: w.end_slot,
                    rate_m3h: w.rate_m3h,
                    target_level_m: w.target_level_m,
                })
                .collect(),
            fallback_level_m: image.fallback_level_m,
            fallback_hysteresis_m: image.fallback_hysteresis_m,
            max_level_m: image.max_level_m,
        }
    }
}
