//! Energy (issue 22 item 1, DOMAIN.md §3): a room's kWh, m³, kWh/m³ and kWh per 1,000 m³·MPa by
//! hour and day, from counter deltas taken only between two good readings.
//!
//! Counters are read as the last sample of each 1-minute bucket. A delta is taken only between
//! two consecutive buckets no further apart than `max_gap_minutes`; a longer gap is not bridged
//! (its energy is unknown) and the share of the day the deltas cover is reported with the
//! figure. A backwards step is a wrap when the reading before it sits just below a power of ten
//! (99,999.99 → 0.37: the wrap amount is counted) and a reset otherwise (the delta is skipped
//! and counted). A counter that stays flat while the pumps run (or the outlet flows) for
//! `stuck_minutes` is stuck: those minutes count as not covered and the day says so.
//!
//! Day figures are the covered deltas; intensities (kWh/m³, kWh per 1,000 m³·MPa) scale each
//! counter to its own coverage before dividing, and are given only when both cover at least
//! `min_coverage` of the span the meters were read in (so a live day, or a node's first day,
//! has an intensity once `min_span_minutes` are read; the day's coverage says how much of it). A figure without data is `None` and `missing` says why — never
//! NaN. 278 kWh lift 1,000 m³ by 1 MPa, so the pump set's efficiency is 278 / measured.

use super::day::{DayFigures, DaySeries, RoomContext};
use crate::historian::rollup::Bucket;
use cistern_schemas::DeviceUnit;
use serde::{Deserialize, Serialize};

/// kWh that lift 1,000 m³ by 1 MPa (1 MPa · 1,000 m³ = 10⁹ J).
pub const IDEAL_KWH_PER_KT_MPA: f64 = 1e9 / 3.6e6;
/// Metres of water column per MPa.
pub const METRES_PER_MPA: f64 = 101.97;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// `[analysis.energy]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnergyConfig {
    /// Two readings further apart than this are not bridged by a delta.
    pub max_gap_minutes: u32,
    /// A backwards step is a wrap when the wrapped amount (rollover − before + after) is at
    /// most this share of the rollover (a power of ten just above the reading before).
    pub wrap_fraction: f64,
    /// A counter flat this long while the plant runs is stuck.
    pub stuck_minutes: u32,
    /// Intensities need both counters to cover at least this share of the span the meters
    /// were read in (first to last reading of either; the whole day once it is read all day)…
    pub min_coverage: f64,
    /// …and that span to be at least this long.
    pub min_span_minutes: u32,
}

impl Default for EnergyConfig {
    fn default() -> Self {
        Self {
            max_gap_minutes: 15,
            wrap_fraction: 0.01,
            stuck_minutes: 30,
            min_coverage: 0.5,
            min_span_minutes: 10,
        }
    }
}

/// One counter's day: the sum of its trusted deltas and how honest it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterDay {
    /// Sum of the trusted deltas; `None` when the counter gave none.
    pub total: Option<f64>,
    /// Share of the day covered by trusted deltas, 0..1.
    pub coverage: f64,
    /// Per local hour (24 entries): the deltas ending in that hour and their coverage.
    pub hours: Vec<HourAmount>,
    /// Backwards steps read as resets (skipped) and as wraps (counted).
    pub resets: u32,
    pub wraps: u32,
    /// Gaps longer than the configured maximum (not bridged).
    pub gaps: u32,
    /// Minutes the counter stood still while the plant ran (stuck; not covered).
    pub stuck_minutes: u32,
}

/// One hour of a counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HourAmount {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    pub coverage: f64,
}

/// A room's energy facts for one day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnergyDay {
    /// kWh used, when the meter gave any trustworthy delta.
    pub kwh: Option<f64>,
    /// m³ delivered at the booster outlet.
    pub m3: Option<f64>,
    /// m³ taken in from the mains.
    #[serde(default)]
    pub inlet_m3: Option<f64>,
    /// The counters in detail (energy, outlet volume, inlet volume).
    #[serde(default)]
    pub energy: CounterDay,
    #[serde(default)]
    pub outlet: CounterDay,
    #[serde(default)]
    pub inlet: CounterDay,
    /// Flow-weighted mean lift, MPa (outlet pressure − tank level / 101.97).
    #[serde(default)]
    pub lift_mpa: Option<f64>,
    #[serde(default)]
    pub kwh_per_m3: Option<f64>,
    #[serde(default)]
    pub kwh_per_kt_mpa: Option<f64>,
    /// 278 / kWh per 1,000 m³·MPa.
    #[serde(default)]
    pub set_efficiency: Option<f64>,
    /// Why figures are missing or doubtful: `no_energy_counter`, `no_outlet_counter`,
    /// `no_inlet_counter`, `energy_reset`, `outlet_reset`, `energy_stuck`, `outlet_stuck`,
    /// `no_flow`, `no_lift`, `low_coverage`.
    #[serde(default)]
    pub missing: Vec<String>,
}

/// Reads a counter's day from its 1-minute buckets. `running(minute_start)` says whether the
/// plant ran in that minute (a flat counter then is stuck).
pub fn counter_day(
    buckets: &[Bucket],
    day_from_ms: i64,
    day_to_ms: i64,
    config: &EnergyConfig,
    running: &dyn Fn(i64) -> bool,
) -> CounterDay {
    let day_ms = (day_to_ms - day_from_ms).max(1);
    let max_gap_ms = i64::from(config.max_gap_minutes.max(1)) * MINUTE_MS;
    let mut out = CounterDay {
        hours: vec![HourAmount::default(); 24],
        ..CounterDay::default()
    };
    // The trusted intervals: (hour, covered ms, delta, plant running).
    let mut intervals: Vec<(usize, i64, f64, bool)> = Vec::with_capacity(buckets.len());
    for w in buckets.windows(2) {
        let (prev, cur) = (&w[0], &w[1]);
        let dt = cur.last_t - prev.last_t;
        if dt <= 0 {
            continue;
        }
        if dt > max_gap_ms {
            out.gaps += 1;
            continue;
        }
        let (a, b) = (prev.last_v, cur.last_v);
        // A backwards step inside the minute shows as a maximum above the minute's last value.
        let inner_back = cur.max > b + tolerance(cur.max);
        let delta = if b + tolerance(a) < a || inner_back {
            let top = if inner_back { cur.max.max(a) } else { a };
            match wrap_amount(top, config.wrap_fraction) {
                Some(rollover) => {
                    out.wraps += 1;
                    rollover - a + b
                }
                None => {
                    out.resets += 1;
                    continue;
                }
            }
        } else {
            (b - a).max(0.0)
        };
        let hour = ((cur.start - day_from_ms) / HOUR_MS).clamp(0, 23) as usize;
        intervals.push((hour, dt, delta, running(cur.start)));
    }
    // Stuck: a run of intervals with no advance while the plant ran, at least stuck_minutes.
    let stuck_ms = i64::from(config.stuck_minutes.max(1)) * MINUTE_MS;
    let mut i = 0;
    while i < intervals.len() {
        let flat = |k: usize| intervals[k].2 <= 0.0 && intervals[k].3;
        if !flat(i) {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut ms = 0;
        while j < intervals.len() && flat(j) {
            ms += intervals[j].1;
            j += 1;
        }
        if ms >= stuck_ms {
            out.stuck_minutes += (ms / MINUTE_MS) as u32;
            for k in &mut intervals[i..j] {
                k.1 = 0;
            }
        }
        i = j;
    }
    let mut total = 0.0;
    let mut covered = 0;
    for &(hour, ms, delta, _) in &intervals {
        if ms == 0 {
            continue;
        }
        total += delta;
        covered += ms;
        let h = &mut out.hours[hour];
        h.amount = Some(h.amount.unwrap_or(0.0) + delta);
        h.coverage += ms as f64 / HOUR_MS as f64;
    }
    for h in &mut out.hours {
        h.coverage = h.coverage.min(1.0);
    }
    if covered > 0 {
        out.total = Some(total);
    }
    out.coverage = (covered as f64 / day_ms as f64).min(1.0);
    out
}

/// Jitter allowed before a lower reading counts as a backwards step.
fn tolerance(v: f64) -> f64 {
    1e-7 * v.abs() + 1e-9
}

/// The rollover (a power of ten just above `before`) when a counter at `before` that went
/// backwards wrapped: `before` lies within `fraction` of the rollover.
pub fn wrap_amount(before: f64, fraction: f64) -> Option<f64> {
    if before <= 0.0 || !before.is_finite() {
        return None;
    }
    let rollover = 10f64.powf(before.log10().floor() + 1.0);
    (rollover - before <= fraction * rollover).then_some(rollover)
}

/// The day's energy facts of a room.
pub fn compute(series: &DaySeries, ctx: &RoomContext<'_>) -> EnergyDay {
    let config = &ctx.config.energy;
    let pumps: Vec<&[Bucket]> = (1..=ctx.spec.pumps.len())
        .map(|i| series.get(DeviceUnit::Pump(i as u8), "running"))
        .collect();
    let power = series.get(DeviceUnit::Room, "active_power");
    let outlet_flow = series.get(DeviceUnit::Room, "outlet_flow");
    let inlet_flow = series.get(DeviceUnit::Room, "inlet_flow");
    let pumps_run = |t: i64| {
        pumps.iter().any(|b| at(b, t).is_some_and(|b| b.max >= 0.5))
            || at(power, t).is_some_and(|b| b.mean() > 0.2)
    };
    let outlet_flows = |t: i64| at(outlet_flow, t).is_some_and(|b| b.mean() > 0.5);
    let inlet_flows = |t: i64| at(inlet_flow, t).is_some_and(|b| b.mean() > 0.5);
    let (from, to) = (series.from_ms, series.to_ms);
    let energy = counter_day(
        series.get(DeviceUnit::Room, "energy"),
        from,
        to,
        config,
        &pumps_run,
    );
    let outlet = counter_day(
        series.get(DeviceUnit::Room, "outlet_volume"),
        from,
        to,
        config,
        &outlet_flows,
    );
    let inlet = counter_day(
        series.get(DeviceUnit::Room, "inlet_volume"),
        from,
        to,
        config,
        &inlet_flows,
    );
    let mut missing = Vec::new();
    for (c, name, counter) in [
        (&energy, "energy", "no_energy_counter"),
        (&outlet, "outlet", "no_outlet_counter"),
        (&inlet, "inlet", "no_inlet_counter"),
    ] {
        if c.total.is_none() {
            missing.push(counter.to_string());
        }
        if c.resets > 0 {
            missing.push(format!("{name}_reset"));
        }
        if c.stuck_minutes > 0 {
            missing.push(format!("{name}_stuck"));
        }
    }
    let lift_mpa = mean_lift_mpa(series, ctx);
    if lift_mpa.is_none() {
        missing.push("no_lift".into());
    }
    let mut day = EnergyDay {
        kwh: energy.total,
        m3: outlet.total,
        inlet_m3: inlet.total,
        lift_mpa,
        ..EnergyDay::default()
    };
    let energy_buckets = series.get(DeviceUnit::Room, "energy");
    let outlet_buckets = series.get(DeviceUnit::Room, "outlet_volume");
    let first = [energy_buckets.first(), outlet_buckets.first()]
        .into_iter()
        .flatten()
        .map(|b| b.last_t)
        .min();
    let last = [energy_buckets.last(), outlet_buckets.last()]
        .into_iter()
        .flatten()
        .map(|b| b.last_t)
        .max();
    let span_ms = match (first, last) {
        (Some(a), Some(b)) => (b - a).max(0),
        _ => 0,
    };
    let day_ms = (to - from).max(1) as f64;
    let share_of_span = |c: &CounterDay| c.coverage * day_ms / (span_ms.max(1) as f64);
    let cov_ok = span_ms >= i64::from(config.min_span_minutes) * MINUTE_MS
        && share_of_span(&energy) >= config.min_coverage
        && share_of_span(&outlet) >= config.min_coverage;
    if let (Some(kwh), Some(m3)) = (energy.total, outlet.total) {
        if !cov_ok {
            missing.push("low_coverage".into());
        } else if m3 / outlet.coverage < 1e-6 {
            missing.push("no_flow".into());
        } else {
            let per_m3 = (kwh / energy.coverage) / (m3 / outlet.coverage);
            day.kwh_per_m3 = Some(per_m3);
            if let Some(lift) = lift_mpa.filter(|l| *l > 1e-3) {
                let per_kt_mpa = per_m3 * 1000.0 / lift;
                day.kwh_per_kt_mpa = Some(per_kt_mpa);
                if per_kt_mpa > 0.0 {
                    day.set_efficiency = Some(IDEAL_KWH_PER_KT_MPA / per_kt_mpa);
                }
            }
        }
    }
    day.energy = energy;
    day.outlet = outlet;
    day.inlet = inlet;
    day.missing = missing;
    day
}

/// The bucket of the minute starting at `t` (buckets in start order).
pub(crate) fn at(buckets: &[Bucket], t: i64) -> Option<&Bucket> {
    buckets
        .binary_search_by_key(&t, |b| b.start)
        .ok()
        .and_then(|i| buckets.get(i))
}

/// The suction head of the booster in the minute at `t`, MPa: the tanks' mean level, or the
/// inlet pressure of a room without tanks.
pub(crate) fn suction_mpa(series: &DaySeries, tanks: usize, t: i64) -> Option<f64> {
    if tanks == 0 {
        return at(series.get(DeviceUnit::Room, "inlet_pressure"), t).map(Bucket::mean);
    }
    let levels: Vec<f64> = (1..=tanks)
        .filter_map(|i| at(series.get(DeviceUnit::Tank(i as u8), "level"), t).map(Bucket::mean))
        .collect();
    (!levels.is_empty()).then(|| levels.iter().sum::<f64>() / levels.len() as f64 / METRES_PER_MPA)
}

/// Each minute's (outlet flow m³/h, lift MPa), for minutes with both.
pub(crate) fn lift_minutes(series: &DaySeries, ctx: &RoomContext<'_>) -> Vec<(i64, f64, f64)> {
    let pressure = series.get(DeviceUnit::Room, "outlet_pressure");
    let flow = series.get(DeviceUnit::Room, "outlet_flow");
    flow.iter()
        .filter_map(|f| {
            let p = at(pressure, f.start)?.mean();
            let s = suction_mpa(series, ctx.spec.tanks.len(), f.start)?;
            Some((f.start, f.mean().max(0.0), p - s))
        })
        .collect()
}

/// The flow-weighted mean lift of the day, MPa.
fn mean_lift_mpa(series: &DaySeries, ctx: &RoomContext<'_>) -> Option<f64> {
    let (mut qh, mut q) = (0.0, 0.0);
    for (_, flow, lift) in lift_minutes(series, ctx) {
        qh += flow * lift;
        q += flow;
    }
    (q > 1e-9).then(|| qh / q).filter(|l| l.is_finite())
}

/// This analysis' share of the day's headline figures.
pub fn figures(energy: &EnergyDay, out: &mut DayFigures) {
    out.kwh = energy.kwh;
    out.kwh_coverage = energy.kwh.map(|_| energy.energy.coverage);
    out.m3 = energy.m3;
    out.m3_coverage = energy.m3.map(|_| energy.outlet.coverage);
    out.inlet_m3 = energy.inlet_m3;
    out.lift_mpa = energy.lift_mpa;
    out.kwh_per_m3 = energy.kwh_per_m3;
    out.kwh_per_kt_mpa = energy.kwh_per_kt_mpa;
    out.set_efficiency = energy.set_efficiency;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::analysis::AnalysisConfig;
    use cistern_schemas::inventory::RoomSpec;
    use cistern_schemas::{Date, RoomId};

    const FROM: i64 = 0;
    const TO: i64 = 86_400_000;

    /// Buckets of one sample each at minute `m` (the sample 30 s into the minute).
    fn counter(points: &[(i64, f64)]) -> Vec<Bucket> {
        points
            .iter()
            .map(|&(m, v)| Bucket::of(m * MINUTE_MS, m * MINUTE_MS + 30_000, v))
            .collect()
    }

    fn never(_: i64) -> bool {
        false
    }

    #[test]
    fn a_steady_counter_sums_its_deltas_and_covers_its_span() {
        let c = counter(
            &(0..=60)
                .map(|m| (m, 100.0 + m as f64 * 0.5))
                .collect::<Vec<_>>(),
        );
        let d = counter_day(&c, FROM, TO, &EnergyConfig::default(), &never);
        // 60 deltas of 0.5 over 60 minutes of a 1,440-minute day.
        assert_eq!(d.total, Some(30.0));
        assert!((d.coverage - 60.0 / 1440.0).abs() < 1e-12);
        // The delta ending in minute 60 belongs to hour 1; the first 59 to hour 0.
        assert_eq!(d.hours[0].amount, Some(29.5));
        assert_eq!(d.hours[1].amount, Some(0.5));
        assert_eq!(d.hours[2].amount, None);
        assert_eq!((d.resets, d.wraps, d.gaps), (0, 0, 0));
    }

    #[test]
    fn a_wrap_near_a_power_of_ten_counts_the_wrapped_amount() {
        // 99,999.2 → 99,999.9 → 0.4 → 1.1: deltas 0.7, 0.5 (100,000 − 99,999.9 + 0.4), 0.7.
        let c = counter(&[(0, 99_999.2), (1, 99_999.9), (2, 0.4), (3, 1.1)]);
        let d = counter_day(&c, FROM, TO, &EnergyConfig::default(), &never);
        assert_eq!(d.wraps, 1);
        assert_eq!(d.resets, 0);
        assert!((d.total.unwrap_or(0.0) - 1.9).abs() < 1e-6, "{d:?}");
        assert!((d.coverage - 3.0 / 1440.0).abs() < 1e-12);
        // A six-digit meter wraps at 1,000,000.
        assert_eq!(wrap_amount(999_999.99, 0.01), Some(1_000_000.0));
        assert_eq!(wrap_amount(52_000.0, 0.01), None);
    }

    #[test]
    fn a_reset_skips_its_delta_and_is_counted() {
        // 5,000 → 5,002 → 0 (reset: skipped) → 3.
        let c = counter(&[(0, 5_000.0), (1, 5_002.0), (2, 0.0), (3, 3.0)]);
        let d = counter_day(&c, FROM, TO, &EnergyConfig::default(), &never);
        assert_eq!((d.resets, d.wraps), (1, 0));
        assert_eq!(d.total, Some(5.0));
        // Two of the three minutes are covered.
        assert!((d.coverage - 2.0 / 1440.0).abs() < 1e-12);
    }

    #[test]
    fn a_reset_inside_a_minute_is_seen_from_its_maximum() {
        let mut c = counter(&[(0, 5_000.0), (1, 5_001.0)]);
        // Minute 2: 5,002 then reset to 0.5 within the minute.
        let mut b = Bucket::of(2 * MINUTE_MS, 2 * MINUTE_MS + 10_000, 5_002.0);
        b.add(2 * MINUTE_MS + 40_000, 0.5);
        c.push(b);
        c.extend(counter(&[(3, 1.5)]));
        let d = counter_day(&c, FROM, TO, &EnergyConfig::default(), &never);
        assert_eq!(d.resets, 1);
        assert_eq!(d.total, Some(2.0));
    }

    #[test]
    fn a_long_gap_is_not_bridged() {
        // 10 minutes of readings, 40 minutes without, 10 more: the 40-minute gap's 80 kWh are
        // unknown.
        let mut pts: Vec<(i64, f64)> = (0..=10).map(|m| (m, m as f64 * 2.0)).collect();
        pts.extend((50..=60).map(|m| (m, m as f64 * 2.0)));
        let d = counter_day(&counter(&pts), FROM, TO, &EnergyConfig::default(), &never);
        assert_eq!(d.gaps, 1);
        assert_eq!(d.total, Some(40.0));
        assert!((d.coverage - 20.0 / 1440.0).abs() < 1e-12);
        // A 15-minute gap is bridged with the default maximum.
        let d = counter_day(
            &counter(&[(0, 0.0), (15, 30.0)]),
            FROM,
            TO,
            &EnergyConfig::default(),
            &never,
        );
        assert_eq!((d.gaps, d.total), (0, Some(30.0)));
    }

    #[test]
    fn a_flat_counter_while_the_plant_runs_is_stuck_and_not_covered() {
        // Flat at 700 for 60 minutes while running; then 30 minutes of 1 kWh/min.
        let mut pts: Vec<(i64, f64)> = (0..=60).map(|m| (m, 700.0)).collect();
        pts.extend((61..=90).map(|m| (m, 700.0 + (m - 60) as f64)));
        let running = |_: i64| true;
        let d = counter_day(&counter(&pts), FROM, TO, &EnergyConfig::default(), &running);
        assert_eq!(d.stuck_minutes, 60);
        assert_eq!(d.total, Some(30.0));
        assert!((d.coverage - 30.0 / 1440.0).abs() < 1e-12);
        // The same counter with the plant stopped is simply flat: covered, no energy.
        let d = counter_day(&counter(&pts), FROM, TO, &EnergyConfig::default(), &never);
        assert_eq!(d.stuck_minutes, 0);
        assert!((d.coverage - 90.0 / 1440.0).abs() < 1e-12);
        // A meter stuck all day gives no figure at all.
        let flat: Vec<(i64, f64)> = (0..1440).map(|m| (m, 0.0)).collect();
        let d = counter_day(
            &counter(&flat),
            FROM,
            TO,
            &EnergyConfig::default(),
            &running,
        );
        assert_eq!((d.total, d.coverage, d.stuck_minutes), (None, 0.0, 1439));
    }

    fn spec() -> RoomSpec {
        let json = serde_json::json!({
            "id": "XM-0001", "name": "t", "lat": 24.5, "lon": 118.1, "zone": "siming",
            "pumps": [{"rated_flow_m3h": 40.0, "rated_head_m": 50.0, "shutoff_head_m": 62.5,
                       "rated_power_kw": 11.0, "bep_efficiency": 0.75}],
            "tanks": [{"area_m2": 20.0, "height_m": 3.0, "overflow_m": 2.8, "hard_min_m": 0.3,
                       "refill_on_m": 2.0, "refill_off_m": 2.6, "inlet_capacity_m3h": 60.0}]
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_day_gives_kwh_per_kt_mpa_and_the_set_efficiency() {
        let spec = spec();
        let config = AnalysisConfig::default();
        let ctx = RoomContext {
            spec: &spec,
            archive: None,
            config: &config,
        };
        let date = Date::ymd(2026, 3, 1).unwrap();
        let mut s = DaySeries::new(RoomId::new("XM-0001").unwrap(), date, 0);
        let t0 = s.from_ms;
        // 36 m³/h at 0.6 MPa from a tank at 2.0397 m (0.02 MPa): lift 0.58 MPa. 0.6 m³ and
        // 0.2 kWh a minute: 0.2/0.6 = 0.3333 kWh/m³, /0.58 × 1000 = 574.7 kWh/1000 m³·MPa.
        for m in 0..1440i64 {
            let t = t0 + m * MINUTE_MS + 1_000;
            s.add(DeviceUnit::Room, "energy", t, 1_000.0 + 0.2 * m as f64);
            s.add(DeviceUnit::Room, "outlet_volume", t, 0.6 * m as f64);
            s.add(DeviceUnit::Room, "outlet_flow", t, 36.0);
            s.add(DeviceUnit::Room, "outlet_pressure", t, 0.6);
            s.add(DeviceUnit::Tank(1), "level", t, 0.02 * METRES_PER_MPA);
            s.add(DeviceUnit::Pump(1), "running", t, 1.0);
        }
        let e = compute(&s, &ctx);
        assert!((e.kwh.unwrap_or(0.0) - 0.2 * 1439.0).abs() < 1e-6);
        assert!((e.lift_mpa.unwrap_or(0.0) - 0.58).abs() < 1e-9);
        let per = e.kwh_per_kt_mpa.unwrap_or(0.0);
        assert!((per - 0.2 / 0.6 * 1000.0 / 0.58).abs() < 1e-6, "{per}");
        let eff = e.set_efficiency.unwrap_or(0.0);
        assert!((eff - IDEAL_KWH_PER_KT_MPA / per).abs() < 1e-9);
        assert!(e.missing.contains(&"no_inlet_counter".to_string()));
        let mut f = DayFigures::default();
        figures(&e, &mut f);
        assert!(f.kwh_coverage.unwrap_or(0.0) > 0.99);
        assert_eq!(f.inlet_m3, None);

        // A day read for only 20 minutes (a live day, a node's first day) has its intensity,
        // with its coverage saying how little of the day it is; 5 minutes are too few.
        for (minutes, given) in [(21i64, true), (6, false)] {
            let mut s = DaySeries::new(RoomId::new("XM-0001").unwrap(), date, 0);
            for m in 600..600 + minutes {
                let t = t0 + m * MINUTE_MS + 1_000;
                s.add(DeviceUnit::Room, "energy", t, 1_000.0 + 0.2 * m as f64);
                s.add(DeviceUnit::Room, "outlet_volume", t, 0.6 * m as f64);
                s.add(DeviceUnit::Room, "outlet_flow", t, 36.0);
                s.add(DeviceUnit::Room, "outlet_pressure", t, 0.6);
                s.add(DeviceUnit::Tank(1), "level", t, 0.02 * METRES_PER_MPA);
            }
            let e = compute(&s, &ctx);
            assert_eq!(e.kwh_per_kt_mpa.is_some(), given, "{minutes}: {e:?}");
            assert_eq!(
                e.missing.contains(&"low_coverage".to_string()),
                !given,
                "{minutes}"
            );
            assert!(e.energy.coverage < 0.02);
        }
    }

    #[test]
    fn an_empty_day_gives_reasons_and_no_nan() {
        let spec = spec();
        let config = AnalysisConfig::default();
        let ctx = RoomContext {
            spec: &spec,
            archive: None,
            config: &config,
        };
        let s = DaySeries::new(
            RoomId::new("XM-0001").unwrap(),
            Date::ymd(2026, 3, 1).unwrap(),
            480,
        );
        let e = compute(&s, &ctx);
        assert_eq!((e.kwh, e.kwh_per_m3, e.set_efficiency), (None, None, None));
        for code in ["no_energy_counter", "no_outlet_counter", "no_lift"] {
            assert!(e.missing.contains(&code.to_string()), "{code}");
        }
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("NaN"));
    }
}
