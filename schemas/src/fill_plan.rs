//! The fill plan as remote parameters: the fixed block of holding registers a pump-room
//! controller keeps per tank for the platform's peak-shaving plan (issue 7), and its codec.
//!
//! It lives here, next to the register maps, because three parties must agree on it bit for
//! bit: the platform's writer (src/control/writer.rs), the simulator's controller
//! (src/sim/modbus_server.rs) and the profiles that place the block (`plan_address` and
//! `plan_stride` of a profile's `[tank]` template).
//!
//! Layout (16-bit words, big-endian, 32-bit values high word first), relative to the block:
//!
//! | word | content |
//! |---|---|
//! | 0-1 | `issued_slot` (u32, 15-min slots, slot 0 = a Monday 00:00 local time) |
//! | 2-3 | `expires_slot` (u32; after it the controller is a plain float valve) |
//! | 4 | priority (0 = served first) |
//! | 5 | fallback level, mm (below it the inlet opens fully, whatever the windows say) |
//! | 6 | fallback hysteresis, mm |
//! | 7 | maximum level, mm |
//! | 8 | number of windows (0..=[`MAX_WINDOWS`]) |
//! | 9 + 4k | window k: start, slots after `issued_slot` |
//! | 10 + 4k | window k: end (exclusive), slots after `issued_slot` |
//! | 11 + 4k | window k: rate, 0.01 m³/h |
//! | 12 + 4k | window k: target level, mm |
//!
//! Unused window words are written as 0. One plan is [`PLAN_WORDS`] registers, one
//! write-multiple-registers request (≤ 123 words).

/// Most fill windows one plan carries; a plan with more is cut (see [`PlanImage::fit`]).
pub const MAX_WINDOWS: usize = 8;
/// Registers of one plan block.
pub const PLAN_WORDS: u16 = 9 + 4 * MAX_WINDOWS as u16;

/// Slot 0 of the plan clock: Monday 2024-01-01 00:00 local time (UTC+8, the utility's zone
/// and the simulator's), as Unix seconds.
pub const SLOT_EPOCH_UNIX_S: i64 = 1_704_038_400;
/// Seconds per plan slot.
pub const SLOT_S: i64 = 900;

/// The 15-min slot containing the instant `unix_s` (0 before the epoch).
pub fn slot_at(unix_s: i64) -> u32 {
    u32::try_from((unix_s - SLOT_EPOCH_UNIX_S).div_euclid(SLOT_S)).unwrap_or(0)
}

/// The Unix second at which `slot` starts.
pub fn slot_start_unix_s(slot: u32) -> i64 {
    SLOT_EPOCH_UNIX_S + i64::from(slot) * SLOT_S
}

/// What a controller's fill logic is doing, as reported in its `fill_mode` register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillMode {
    /// No plan (or an expired one): the inlet is a float valve.
    FloatValve = 0,
    /// Following the platform's fill windows.
    Plan = 1,
    /// Below the plan's fallback level: the inlet is open fully whatever the windows say.
    Fallback = 2,
}

impl FillMode {
    /// The value of the `fill_mode` point.
    pub fn code(self) -> f64 {
        f64::from(self as u8)
    }

    pub fn from_code(code: f64) -> Option<Self> {
        [Self::FloatValve, Self::Plan, Self::Fallback]
            .into_iter()
            .find(|m| m.code() == code)
    }
}

/// One fill window in absolute slots.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanWindow {
    pub start_slot: u32,
    /// Exclusive.
    pub end_slot: u32,
    pub rate_m3h: f64,
    pub target_level_m: f64,
}

/// A plan as the controller holds it (the register image, in engineering units).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanImage {
    pub issued_slot: u32,
    pub expires_slot: u32,
    pub priority: u16,
    pub fallback_level_m: f64,
    pub fallback_hysteresis_m: f64,
    pub max_level_m: f64,
    pub windows: Vec<PlanWindow>,
}

/// Why a plan cannot be encoded, or registers are not a plan.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum FillPlanError {
    #[error("plan block: {got} registers, a plan has {PLAN_WORDS}")]
    Length { got: usize },
    #[error("plan block: {count} windows, at most {MAX_WINDOWS}")]
    TooManyWindows { count: usize },
    #[error("plan: {field} = {value} does not fit its register")]
    OutOfRange { field: &'static str, value: f64 },
    #[error("plan: window {index} is empty, reversed or starts before the plan was issued")]
    BadWindow { index: usize },
    #[error("plan expires (slot {expires}) before it is issued (slot {issued})")]
    Expired { issued: u32, expires: u32 },
}

fn to_u16(field: &'static str, value: f64, per_unit: f64) -> Result<u16, FillPlanError> {
    let raw = (value * per_unit).round();
    if !(0.0..=65_535.0).contains(&raw) {
        return Err(FillPlanError::OutOfRange { field, value });
    }
    Ok(raw as u16)
}

fn offset(field: &'static str, slot: u32, issued: u32) -> Result<u16, FillPlanError> {
    slot.checked_sub(issued)
        .and_then(|d| u16::try_from(d).ok())
        .ok_or(FillPlanError::OutOfRange {
            field,
            value: f64::from(slot),
        })
}

impl PlanImage {
    /// The plan cut to what the registers carry: the first [`MAX_WINDOWS`] windows; the plan
    /// then expires where the first dropped window would have started, so the controller
    /// falls back to its float valve rather than keep the inlet shut for the rest.
    pub fn fit(mut self) -> Self {
        if self.windows.len() > MAX_WINDOWS {
            let cut = self.windows[MAX_WINDOWS].start_slot;
            self.windows.truncate(MAX_WINDOWS);
            self.expires_slot = self.expires_slot.min(cut);
        }
        self
    }

    /// The registers of the plan, [`PLAN_WORDS`] of them.
    pub fn encode(&self) -> Result<Vec<u16>, FillPlanError> {
        if self.windows.len() > MAX_WINDOWS {
            return Err(FillPlanError::TooManyWindows {
                count: self.windows.len(),
            });
        }
        if self.expires_slot < self.issued_slot {
            return Err(FillPlanError::Expired {
                issued: self.issued_slot,
                expires: self.expires_slot,
            });
        }
        let mut out = Vec::with_capacity(usize::from(PLAN_WORDS));
        for v in [self.issued_slot, self.expires_slot] {
            out.push((v >> 16) as u16);
            out.push((v & 0xFFFF) as u16);
        }
        out.push(self.priority);
        out.push(to_u16("fallback_level_m", self.fallback_level_m, 1000.0)?);
        out.push(to_u16(
            "fallback_hysteresis_m",
            self.fallback_hysteresis_m,
            1000.0,
        )?);
        out.push(to_u16("max_level_m", self.max_level_m, 1000.0)?);
        out.push(self.windows.len() as u16);
        for (index, w) in self.windows.iter().enumerate() {
            if w.end_slot <= w.start_slot || w.start_slot < self.issued_slot {
                return Err(FillPlanError::BadWindow { index });
            }
            out.push(offset("start_slot", w.start_slot, self.issued_slot)?);
            out.push(offset("end_slot", w.end_slot, self.issued_slot)?);
            out.push(to_u16("rate_m3h", w.rate_m3h, 100.0)?);
            out.push(to_u16("target_level_m", w.target_level_m, 1000.0)?);
        }
        out.resize(usize::from(PLAN_WORDS), 0);
        Ok(out)
    }

    /// The plan held in `words` (exactly [`PLAN_WORDS`] registers).
    pub fn decode(words: &[u16]) -> Result<Self, FillPlanError> {
        if words.len() != usize::from(PLAN_WORDS) {
            return Err(FillPlanError::Length { got: words.len() });
        }
        let u32_at = |i: usize| (u32::from(words[i]) << 16) | u32::from(words[i + 1]);
        let mm = |i: usize| f64::from(words[i]) / 1000.0;
        let issued_slot = u32_at(0);
        let expires_slot = u32_at(2);
        if expires_slot < issued_slot {
            return Err(FillPlanError::Expired {
                issued: issued_slot,
                expires: expires_slot,
            });
        }
        let count = usize::from(words[8]);
        if count > MAX_WINDOWS {
            return Err(FillPlanError::TooManyWindows { count });
        }
        let mut windows = Vec::with_capacity(count);
        for index in 0..count {
            let base = 9 + 4 * index;
            let start = u32::from(words[base]);
            let end = u32::from(words[base + 1]);
            if end <= start {
                return Err(FillPlanError::BadWindow { index });
            }
            windows.push(PlanWindow {
                start_slot: issued_slot.saturating_add(start),
                end_slot: issued_slot.saturating_add(end),
                rate_m3h: f64::from(words[base + 2]) / 100.0,
                target_level_m: mm(base + 3),
            });
        }
        Ok(Self {
            issued_slot,
            expires_slot,
            priority: words[4],
            fallback_level_m: mm(5),
            fallback_hysteresis_m: mm(6),
            max_level_m: mm(7),
            windows,
        })
    }

    /// The same plan at the resolution of its registers (what a read-back returns).
    pub fn quantised(&self) -> Result<Self, FillPlanError> {
        Self::decode(&self.encode()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn window(issued: u32) -> impl Strategy<Value = PlanWindow> {
        (0u32..3000, 1u32..200, 0u32..60_000, 0u32..5000).prop_map(
            move |(start, len, rate, target)| PlanWindow {
                start_slot: issued + start,
                end_slot: issued + start + len,
                rate_m3h: f64::from(rate) / 100.0,
                target_level_m: f64::from(target) / 1000.0,
            },
        )
    }

    fn plan() -> impl Strategy<Value = PlanImage> {
        (0u32..4_000_000_000, 0u32..3000).prop_flat_map(|(issued, horizon)| {
            (
                proptest::collection::vec(window(issued), 0..=MAX_WINDOWS),
                any::<u16>(),
                0u32..5000,
                0u32..1000,
                0u32..5000,
            )
                .prop_map(move |(windows, priority, fb, hy, max)| PlanImage {
                    issued_slot: issued,
                    expires_slot: issued + horizon,
                    priority,
                    fallback_level_m: f64::from(fb) / 1000.0,
                    fallback_hysteresis_m: f64::from(hy) / 1000.0,
                    max_level_m: f64::from(max) / 1000.0,
                    windows,
                })
        })
    }

    proptest! {
        #[test]
        fn plans_on_the_register_grid_round_trip(p in plan()) {
            let words = p.encode().unwrap();
            prop_assert_eq!(words.len(), usize::from(PLAN_WORDS));
            prop_assert_eq!(PlanImage::decode(&words).unwrap(), p);
        }

        #[test]
        fn any_plan_quantises_within_half_a_step(p in plan(), jitter in -0.0004f64..0.0004) {
            let mut off_grid = p.clone();
            off_grid.fallback_level_m += jitter.abs();
            for w in &mut off_grid.windows {
                w.target_level_m += jitter.abs();
                w.rate_m3h += jitter.abs();
            }
            let q = off_grid.quantised().unwrap();
            prop_assert!((q.fallback_level_m - off_grid.fallback_level_m).abs() <= 0.0005 + 1e-12);
            for (a, b) in q.windows.iter().zip(&off_grid.windows) {
                prop_assert_eq!(a.start_slot, b.start_slot);
                prop_assert!((a.rate_m3h - b.rate_m3h).abs() <= 0.005 + 1e-12);
                prop_assert!((a.target_level_m - b.target_level_m).abs() <= 0.0005 + 1e-12);
            }
        }

        #[test]
        fn arbitrary_registers_never_panic(words in proptest::collection::vec(any::<u16>(), 0..60)) {
            let _ = PlanImage::decode(&words);
        }
    }

    #[test]
    fn values_beyond_the_registers_are_refused_by_name() {
        let p = PlanImage {
            issued_slot: 10,
            expires_slot: 20,
            priority: 0,
            fallback_level_m: 70.0,
            fallback_hysteresis_m: 0.3,
            max_level_m: 3.0,
            windows: vec![],
        };
        assert_eq!(
            p.encode(),
            Err(FillPlanError::OutOfRange {
                field: "fallback_level_m",
                value: 70.0
            })
        );
    }

    #[test]
    fn a_long_plan_is_cut_and_expires_where_the_first_dropped_window_starts() {
        let windows = (0..10)
            .map(|k| PlanWindow {
                start_slot: 100 + 10 * k,
                end_slot: 104 + 10 * k,
                rate_m3h: 5.0,
                target_level_m: 2.0,
            })
            .collect();
        let p = PlanImage {
            issued_slot: 100,
            expires_slot: 244,
            priority: 1,
            fallback_level_m: 1.0,
            fallback_hysteresis_m: 0.3,
            max_level_m: 3.0,
            windows,
        }
        .fit();
        assert_eq!(p.windows.len(), MAX_WINDOWS);
        assert_eq!(p.expires_slot, 180);
        assert!(p.encode().is_ok());
    }
}
