//! Leakage by minimum night flow (issue 22 item 3, DOMAIN.md §4): the night's minimum flow at the
//! booster outlet, the households' legitimate night use, the leak index against the room's own
//! baseline; float-valve overflow (inflow while full) separately.
//!
//! - **Night.** The night inside the local day: `[analysis.leakage] night_from_h`..`night_to_h`
//!   (02:00-04:00). In a pump room the night flow must be read at the booster outlet: the inlet
//!   flow at night is the tank refilling.
//! - **MNF.** The minimum of a *rolling mean* of the 1-minute mean `outlet_flow` over
//!   `rolling_minutes` (15): one quiet minute between two flushes is not the compound's night
//!   flow, and a leak is a constant that survives the averaging. Each 1-minute bucket stands
//!   for the time to the next one, at most `max_gap_minutes` (a meter read every 2 minutes
//!   covers its night; an hour's gap does not); a window counts only when at least half of it
//!   is covered, and the night needs `min_night_minutes` covered.
//! - **Legitimate night use.** Households × persons × the share of residents using water in a
//!   night hour × one flush: 300 × 3 × 6 % × 10 L = 0.54 m³/h (≈ 1.8 L/household/h).
//! - **Leak index** = (MNF − legitimate) / the day's mean flow (the time-weighted mean of the
//!   day's 1-minute means of `outlet_flow`; the day must be covered for `min_day_coverage`).
//! - **Overflow.** Minutes with inlet flow while a tank is full (level at its overflow weir less
//!   `overflow_margin_m`, or its overflow switch wet): water lost over the weir, not a leak in
//!   the compound.
//!
//! The alarm is the library rule `night_flow_leak` (see [`super::leak_rule`]): a rule, so it can
//! be tuned and backtested like every other alarm.

use super::day::{DayFigures, DaySeries, RoomContext};
use crate::historian::rollup::{Bucket, MINUTE_MS};
use cistern_schemas::DeviceUnit;
use serde::{Deserialize, Serialize};

/// `[analysis.leakage]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeakageConfig {
    /// The night window, local hours of the day: `[night_from_h, night_to_h)`.
    pub night_from_h: f64,
    pub night_to_h: f64,
    /// The MNF is the minimum of a rolling mean over this many minutes (1 = the minute means).
    pub rolling_minutes: u32,
    /// Minutes of the window that must be covered for a night to count (a bucket covers the
    /// time to the next, at most `max_gap_minutes`).
    pub min_night_minutes: u32,
    /// A bucket stands for at most this many minutes when the next one is further away.
    pub max_gap_minutes: u32,
    /// Share of the day that must be covered by outlet flow for its (time-weighted) mean to
    /// count.
    pub min_day_coverage: f64,
    /// Legitimate night use: persons per household × the share of residents using water in a
    /// night hour × litres per use (DOMAIN.md §4: 3 × 6 % × 10 L ≈ 1.8 L/household/h).
    pub persons_per_household: f64,
    pub night_use_share: f64,
    pub litres_per_use: f64,
    /// The baseline is the median of the room's unflagged nights among the last
    /// `baseline_nights`, once it has `baseline_min_nights` of them.
    pub baseline_nights: u32,
    pub baseline_min_nights: u32,
    /// A night whose index exceeds the baseline by more than this, or by more than
    /// `flag_spread_k` × the room's spread, is flagged and kept out of later baselines (a leak
    /// must not become the norm). The alarm's own thresholds are the rule's `margin` and
    /// `spread_k` params.
    pub flag_margin: f64,
    pub flag_spread_k: f64,
    /// How many recent nights the rule sees (`leak_nights`).
    pub recent_nights: u32,
    /// A tank counts as full this close to its overflow weir, m.
    pub overflow_margin_m: f64,
    /// Inlet flow above this counts as inflow, m³/h.
    pub min_inflow_m3h: f64,
}

impl Default for LeakageConfig {
    fn default() -> Self {
        Self {
            night_from_h: 2.0,
            night_to_h: 4.0,
            rolling_minutes: 15,
            min_night_minutes: 60,
            max_gap_minutes: 5,
            min_day_coverage: 0.8,
            persons_per_household: 3.0,
            night_use_share: 0.06,
            litres_per_use: 10.0,
            baseline_nights: 28,
            baseline_min_nights: 14,
            flag_margin: 0.005,
            flag_spread_k: 1.5,
            recent_nights: 7,
            overflow_margin_m: 0.05,
            min_inflow_m3h: 0.1,
        }
    }
}

impl LeakageConfig {
    /// The legitimate night use of `households`, m³/h.
    pub fn legit_m3h(&self, households: u32) -> f64 {
        f64::from(households)
            * self.persons_per_household
            * self.night_use_share
            * self.litres_per_use
            / 1000.0
    }
}

/// Why a night has no leak index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NightGap {
    /// No outlet flow in the night window.
    NoNightFlow,
    /// Too few minutes of the window have outlet flow.
    TooFewNightMinutes,
    /// The day's outlet flow covers too little of the day for its mean (a live day too).
    DayIncomplete,
    /// The day's mean flow is zero: nothing to compare the night with.
    NoDayFlow,
}

/// A room's night-flow facts for the night inside the day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NightFlow {
    /// Minimum night flow (the lowest rolling mean), m³/h, and the start of its window (UTC ms).
    pub mnf_m3h: Option<f64>,
    pub mnf_at: Option<i64>,
    /// The households' legitimate night use, m³/h.
    pub legit_m3h: Option<f64>,
    /// The day's mean outlet flow, m³/h.
    pub day_mean_m3h: Option<f64>,
    /// (MNF − legitimate) / the day's mean flow.
    pub leak_index: Option<f64>,
    /// Minutes of the night window with outlet flow, and of the day.
    pub night_minutes: u32,
    pub day_minutes: u32,
    /// Why there is no leak index, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<NightGap>,
    /// Minutes of inflow while a tank was full (float-valve overflow); `None` when the room
    /// has no tank or no inlet flow data.
    pub overflow_minutes: Option<f64>,
}

/// The night's facts of a room.
pub fn compute(series: &DaySeries, ctx: &RoomContext<'_>) -> NightFlow {
    let cfg = &ctx.config.leakage;
    let flow = series.get(DeviceUnit::Room, "outlet_flow");
    let legit = cfg.legit_m3h(ctx.spec.households);
    let from = series.from_ms + hours_ms(cfg.night_from_h);
    let to = (series.from_ms + hours_ms(cfg.night_to_h)).min(series.to_ms);
    let night: Vec<&Bucket> = flow
        .iter()
        .filter(|b| b.start >= from && b.start < to)
        .collect();
    let gap_ms = i64::from(cfg.max_gap_minutes.max(1)) * MINUTE_MS;
    let day_w = weights(flow.iter(), series.to_ms, gap_ms);
    let night_w = weights(night.iter().copied(), to, gap_ms);
    let mut out = NightFlow {
        legit_m3h: Some(legit),
        night_minutes: night_w.iter().sum::<f64>().round() as u32,
        day_minutes: day_w.iter().sum::<f64>().round() as u32,
        overflow_minutes: overflow_minutes(series, ctx),
        ..NightFlow::default()
    };
    if night.is_empty() {
        out.gap = Some(NightGap::NoNightFlow);
        return out;
    }
    if out.night_minutes < cfg.min_night_minutes.max(1) {
        out.gap = Some(NightGap::TooFewNightMinutes);
        return out;
    }
    match rolling_minimum(&night, &night_w, cfg.rolling_minutes, to) {
        Some((at, mnf)) => {
            out.mnf_m3h = Some(mnf);
            out.mnf_at = Some(at);
        }
        None => {
            out.gap = Some(NightGap::TooFewNightMinutes);
            return out;
        }
    }
    let day_minutes = ((series.to_ms - series.from_ms) / MINUTE_MS).max(1) as f64;
    let covered: f64 = day_w.iter().sum();
    if covered < cfg.min_day_coverage * day_minutes || covered <= 0.0 {
        out.gap = Some(NightGap::DayIncomplete);
        return out;
    }
    let mean = flow
        .iter()
        .zip(&day_w)
        .map(|(b, w)| b.mean() * w)
        .sum::<f64>()
        / covered;
    out.day_mean_m3h = Some(mean);
    if mean <= 0.0 {
        out.gap = Some(NightGap::NoDayFlow);
        return out;
    }
    out.leak_index = out
        .mnf_m3h
        .map(|mnf| (mnf - legit) / mean)
        .filter(|v| v.is_finite());
    out
}

fn hours_ms(h: f64) -> i64 {
    (h.clamp(0.0, 24.0) * 3_600_000.0).round() as i64
}

/// The minutes each (sorted) bucket stands for: until the next bucket (or `end`), at most
/// `gap_ms` — a meter read every 2 minutes covers its day, a gap of hours does not.
fn weights<'a>(buckets: impl Iterator<Item = &'a Bucket>, end: i64, gap_ms: i64) -> Vec<f64> {
    let starts: Vec<i64> = buckets.map(|b| b.start).collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let next = starts.get(i + 1).copied().unwrap_or(end);
            ((next - s).clamp(0, gap_ms)) as f64 / MINUTE_MS as f64
        })
        .collect()
}

/// The lowest time-weighted mean over `minutes`-long windows of the (sorted) buckets, and its
/// start. A window starting at each bucket, ending by `end`, counts when its buckets cover at
/// least half its minutes.
fn rolling_minimum(
    buckets: &[&Bucket],
    weights: &[f64],
    minutes: u32,
    end: i64,
) -> Option<(i64, f64)> {
    let width = i64::from(minutes.max(1)) * MINUTE_MS;
    let need = f64::from(minutes.max(1)) / 2.0;
    let w = |i: usize| weights.get(i).copied().unwrap_or(0.0);
    let mut best: Option<(i64, f64)> = None;
    let mut hi = 0;
    let (mut sum, mut covered) = (0.0, 0.0);
    for lo in 0..buckets.len() {
        let start = buckets[lo].start;
        if start + width > end && best.is_some() {
            break;
        }
        while hi < buckets.len() && buckets[hi].start < start + width {
            sum += buckets[hi].mean() * w(hi);
            covered += w(hi);
            hi += 1;
        }
        if covered >= need && covered > 0.0 {
            let mean = sum / covered;
            if best.is_none_or(|(_, b)| mean < b) {
                best = Some((start, mean));
            }
        }
        sum -= buckets[lo].mean() * w(lo);
        covered -= w(lo);
    }
    best
}

/// Minutes of the day with inflow while a tank was full.
fn overflow_minutes(series: &DaySeries, ctx: &RoomContext<'_>) -> Option<f64> {
    let cfg = &ctx.config.leakage;
    if ctx.spec.tanks.is_empty() {
        return None;
    }
    let inflow = series.get(DeviceUnit::Room, "inlet_flow");
    if inflow.is_empty() {
        return None;
    }
    let tanks: Vec<(&[Bucket], &[Bucket], f64)> = ctx
        .spec
        .tanks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let unit = DeviceUnit::Tank(i as u8 + 1);
            (
                series.get(unit, "level"),
                series.get(unit, "overflow"),
                t.overflow_m - cfg.overflow_margin_m,
            )
        })
        .collect();
    let full_at = |start: i64| {
        tanks.iter().any(|(level, switch, full_m)| {
            let at = |s: &[Bucket]| {
                s.binary_search_by_key(&start, |b| b.start)
                    .ok()
                    .and_then(|i| s.get(i))
                    .map(|b| b.max)
            };
            at(level).is_some_and(|l| l >= *full_m) || at(switch).is_some_and(|v| v >= 0.5)
        })
    };
    let minutes = inflow
        .iter()
        .filter(|b| b.mean() > cfg.min_inflow_m3h && full_at(b.start))
        .count();
    Some(minutes as f64)
}

/// This analysis' share of the day's headline figures.
pub fn figures(night: &NightFlow, out: &mut DayFigures) {
    out.mnf_m3h = night.mnf_m3h;
    out.legit_m3h = night.legit_m3h;
    out.leak_index = night.leak_index;
    out.overflow_minutes = night.overflow_minutes;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::analysis::AnalysisConfig;
    use cistern_schemas::inventory::RoomSpec;
    use cistern_schemas::{Date, RoomId};

    fn spec(households: u32, tanks: usize) -> RoomSpec {
        let tank = serde_json::json!({
            "area_m2": 20.0, "height_m": 3.5, "overflow_m": 3.2, "hard_min_m": 0.3,
            "refill_on_m": 2.4, "refill_off_m": 2.9, "inlet_capacity_m3h": 40.0
        });
        serde_json::from_value(serde_json::json!({
            "id": "XM-0001", "name": "t", "lat": 24.5, "lon": 118.1, "zone": "Z1",
            "households": households, "pumps": [],
            "tanks": (0..tanks).map(|_| tank.clone()).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    fn day() -> DaySeries {
        DaySeries::new(
            RoomId::new("XM-0001").unwrap(),
            Date::ymd(2026, 12, 1).unwrap(),
            480,
        )
    }

    /// A day of outlet flow: `f(minute of the day)` sampled every 20 s.
    fn flow_day(f: impl Fn(i64) -> f64) -> DaySeries {
        let mut d = day();
        for s in (0..86_400).step_by(20) {
            let t = d.from_ms + s * 1000;
            d.add(DeviceUnit::Room, "outlet_flow", t, f(s / 60));
        }
        d
    }

    fn run(d: &DaySeries, spec: &RoomSpec) -> NightFlow {
        let config = AnalysisConfig::default();
        compute(
            d,
            &RoomContext {
                spec,
                archive: None,
                config: &config,
            },
        )
    }

    #[test]
    fn the_mnf_is_the_lowest_rolling_mean_not_one_quiet_minute() {
        // 20 m³/h by day, 6 m³/h at night with one 0.5 m³/h minute at 03:00.
        let d = flow_day(|m| match m {
            180 => 0.5,
            120..240 => 6.0,
            _ => 20.0,
        });
        let n = run(&d, &spec(300, 1));
        let mnf = n.mnf_m3h.unwrap();
        // The 15-minute windows holding the quiet minute: (14 × 6 + 0.5) / 15.
        assert!((mnf - (14.0 * 6.0 + 0.5) / 15.0).abs() < 1e-9, "{mnf}");
        // Legitimate use: 300 × 3 × 6 % × 10 L = 0.54 m³/h.
        assert!((n.legit_m3h.unwrap() - 0.54).abs() < 1e-12);
        let mean = (120.0 * 6.0 + 1320.0 * 20.0 - 5.5) / 1440.0;
        assert!((n.day_mean_m3h.unwrap() - mean).abs() < 1e-9);
        assert!((n.leak_index.unwrap() - (mnf - 0.54) / mean).abs() < 1e-12);
        assert_eq!(n.night_minutes, 120);
        assert_eq!(n.gap, None);
        let mut f = DayFigures::default();
        figures(&n, &mut f);
        assert_eq!(f.leak_index, n.leak_index);
        assert_eq!(f.mnf_m3h, Some(mnf));
    }

    #[test]
    fn a_night_without_flow_data_says_so() {
        let d = flow_day(|m| {
            if (100..260).contains(&m) {
                f64::NAN
            } else {
                20.0
            }
        });
        let n = run(&d, &spec(300, 1));
        assert_eq!(n.gap, Some(NightGap::NoNightFlow));
        assert_eq!((n.mnf_m3h, n.leak_index), (None, None));
        let n = run(&day(), &spec(300, 1));
        assert_eq!(n.gap, Some(NightGap::NoNightFlow));
        assert_eq!(
            n.overflow_minutes, None,
            "no inflow data: no overflow figure"
        );
        // Half an hour of the window only.
        let d = flow_day(|m| {
            if (120..210).contains(&m) {
                f64::NAN
            } else {
                20.0
            }
        });
        assert_eq!(
            run(&d, &spec(300, 1)).gap,
            Some(NightGap::TooFewNightMinutes)
        );
    }

    #[test]
    fn a_day_that_is_not_covered_or_has_no_flow_gives_no_index() {
        // Only the morning (a live day at 06:00): the MNF, but no index yet.
        let d = flow_day(|m| if m < 360 { 5.0 } else { f64::NAN });
        let n = run(&d, &spec(300, 1));
        assert_eq!(n.mnf_m3h, Some(5.0));
        assert_eq!((n.gap, n.leak_index), (Some(NightGap::DayIncomplete), None));
        // A meter stuck at zero.
        let n = run(&flow_day(|_| 0.0), &spec(300, 1));
        assert_eq!((n.gap, n.leak_index), (Some(NightGap::NoDayFlow), None));
        assert!(n.mnf_m3h == Some(0.0));
    }

    #[test]
    fn inflow_while_a_tank_is_full_is_overflow() {
        let mut d = flow_day(|_| 10.0);
        let s = spec(300, 2);
        for m in 0..600 {
            let t = d.from_ms + m * MINUTE_MS;
            // 12 m³/h of inflow all morning; T2 at its weir (3.2 m) from minute 100 to 129,
            // T1's switch wet from 200 to 209; T1 at 3.0 m otherwise (not full).
            d.add(DeviceUnit::Room, "inlet_flow", t, 12.0);
            let level2 = if (100..130).contains(&m) { 3.18 } else { 2.5 };
            d.add(DeviceUnit::Tank(2), "level", t, level2);
            d.add(DeviceUnit::Tank(1), "level", t, 3.0);
            let wet = if (200..210).contains(&m) { 1.0 } else { 0.0 };
            d.add(DeviceUnit::Tank(1), "overflow", t, wet);
        }
        // Full without inflow is not overflow.
        for m in 700..720 {
            let t = d.from_ms + m * MINUTE_MS;
            d.add(DeviceUnit::Room, "inlet_flow", t, 0.0);
            d.add(DeviceUnit::Tank(2), "level", t, 3.25);
        }
        assert_eq!(run(&d, &s).overflow_minutes, Some(40.0));
        assert_eq!(run(&d, &spec(300, 0)).overflow_minutes, None);
    }
}
