//! A room's day of operational facts for the cockpit and the score (issue 22 items 5, 6):
//! water-quality compliance, availability and data completeness (received / expected samples).
//!
//! Definitions (the cockpit and the score show these words):
//!
//! - **Water-quality compliance**: the share of the day's turbidity, free-chlorine and pH
//!   samples inside GB 5749-2022's limits (turbidity ≤ 1 NTU, free chlorine 0.05–2 mg/L at
//!   the outlet of secondary supply, pH 6.5–8.5; the same limits as the tank-cleaning water
//!   test, `cleaning::water`). The rollups keep no single sample, so a minute's samples count
//!   inside when the minute's mean is inside — a minute whose every sample is inside (min and
//!   max) is inside whatever its mean. The three parameters' samples are pooled; each one's own
//!   share is kept too. A room without any water-quality sample has no figure (`None`), not
//!   100 %.
//! - **Data completeness**: samples received / samples expected over the points the analyses
//!   load ([`super::day::points_of`]: 11 room points, 5 per pump, 3 per tank — about a third of
//!   a room's points). Every point of a room comes from the same RTU over the same link at the
//!   same 2 s period (schemas' catalog, overridable per room), so a silent link, an RTU restart
//!   or a store gap thins them all alike: this third is a fair sample of the room's data. What
//!   it does not see is one dead sensor on a point the analyses do not read (a camera, a door
//!   contact) — that is the stale-point alarm's job. Expected = the day's minutes × 60 s / the
//!   point's period; a minute's received samples are capped at its expected count (a burst of
//!   duplicates does not make up for a gap). A live day counts the whole day as expected, so
//!   today's figure rises through the day; the cockpit and the score scale it to the elapsed
//!   part (`cockpit_live::live_scaled`), which is exact since the expectation is uniform.
//! - **Availability**: the share of observed minutes the room supplied water — the outlet
//!   pressure's minute mean held at or above [`AVAILABLE_SHARE`] of the room's set-point.
//!   Minutes without an outlet-pressure sample are not observed (they count against
//!   completeness, not availability: a lost link is not a dry tap). No outlet-pressure sample
//!   all day: no figure.

use super::day::{points_of, units_of, DayFigures, DaySeries, RoomContext};
use crate::historian::rollup::{Bucket, MINUTE_MS};
use cistern_schemas::DeviceUnit;
use serde::{Deserialize, Serialize};

/// GB 5749-2022 limits the compliance counts against: (point, low, high).
pub const LIMITS: &[(&str, f64, f64)] = &[
    ("turbidity", 0.0, 1.0),
    ("chlorine", 0.05, 2.0),
    ("ph", 6.5, 8.5),
];

/// A minute supplies water when its outlet pressure is at least this share of the set-point.
pub const AVAILABLE_SHARE: f64 = 0.8;

/// One water-quality parameter's day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParameterDay {
    pub point: String,
    /// Samples counted and those inside the limits.
    pub samples: u64,
    pub inside: u64,
    /// The day's extremes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// One device's samples received and expected over the day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitCompleteness {
    pub unit: DeviceUnit,
    pub received: u64,
    pub expected: u64,
}

impl UnitCompleteness {
    /// received / expected, when anything was expected.
    pub fn ratio(&self) -> Option<f64> {
        ratio(self.received, self.expected)
    }
}

/// A room's operational facts for one day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperationDay {
    /// Samples received / expected over the day's loaded points, 0..1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completeness: Option<f64>,
    pub received: u64,
    pub expected: u64,
    /// The same per device (room, pumps, tanks): the cockpit's drill-down to a pump.
    pub units: Vec<UnitCompleteness>,
    /// Water-quality compliance (pooled share of samples inside the limits), 0..1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality_compliance: Option<f64>,
    pub quality: Vec<ParameterDay>,
    /// Minutes supplying / minutes observed (outlet pressure present), and their ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
    pub supplying_minutes: u32,
    pub observed_minutes: u32,
}

/// The day's operational facts of a room.
pub fn compute(series: &DaySeries, ctx: &RoomContext<'_>) -> OperationDay {
    let mut day = OperationDay::default();
    completeness(series, ctx, &mut day);
    quality(series, &mut day);
    availability(series, ctx, &mut day);
    day
}

fn completeness(series: &DaySeries, ctx: &RoomContext<'_>, day: &mut OperationDay) {
    let minutes = ((series.to_ms - series.from_ms).max(0) / MINUTE_MS) as u64;
    for unit in units_of(ctx.spec) {
        let mut this = UnitCompleteness {
            unit,
            received: 0,
            expected: 0,
        };
        let specs = ctx.spec.point_specs(unit);
        for &name in points_of(unit) {
            let period_ms = specs
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.period.as_millis() as u64)
                .unwrap_or(2_000)
                .max(1);
            // Per minute: at least one sample even for points slower than a minute would
            // be wrong; a point of period > 1 min expects a fraction, counted over the day.
            let per_minute = MINUTE_MS as f64 / period_ms as f64;
            let expected = (per_minute * minutes as f64).round() as u64;
            let cap = per_minute.ceil().max(1.0) as u64;
            let received: u64 = series
                .get(unit, name)
                .iter()
                .map(|b| b.count.min(cap))
                .sum();
            this.expected += expected;
            this.received += received.min(expected);
        }
        day.expected += this.expected;
        day.received += this.received;
        day.units.push(this);
    }
    day.completeness = ratio(day.received, day.expected);
}

fn quality(series: &DaySeries, day: &mut OperationDay) {
    let (mut samples, mut inside) = (0u64, 0u64);
    for &(point, lo, hi) in LIMITS {
        let buckets = series.get(DeviceUnit::Room, point);
        let mut p = ParameterDay {
            point: point.to_string(),
            ..ParameterDay::default()
        };
        for b in buckets {
            if b.count == 0 {
                continue;
            }
            p.samples += b.count;
            if minute_inside(b, lo, hi) {
                p.inside += b.count;
            }
            p.min = Some(p.min.map_or(b.min, |m: f64| m.min(b.min)));
            p.max = Some(p.max.map_or(b.max, |m: f64| m.max(b.max)));
        }
        samples += p.samples;
        inside += p.inside;
        if p.samples > 0 {
            day.quality.push(p);
        }
    }
    day.quality_compliance = ratio(inside, samples);
}

/// A minute's samples are inside when all are (min and max), or when their mean is.
fn minute_inside(b: &Bucket, lo: f64, hi: f64) -> bool {
    if b.min >= lo && b.max <= hi {
        return true;
    }
    let mean = b.sum / b.count as f64;
    mean >= lo && mean <= hi
}

fn availability(series: &DaySeries, ctx: &RoomContext<'_>, day: &mut OperationDay) {
    let floor = AVAILABLE_SHARE * ctx.spec.outlet_setpoint_mpa;
    for b in series.get(DeviceUnit::Room, "outlet_pressure") {
        if b.count == 0 {
            continue;
        }
        day.observed_minutes += 1;
        if b.sum / b.count as f64 >= floor {
            day.supplying_minutes += 1;
        }
    }
    day.availability = ratio(
        u64::from(day.supplying_minutes),
        u64::from(day.observed_minutes),
    );
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

/// This analysis' share of the day's headline figures.
pub fn figures(day: &OperationDay, out: &mut DayFigures) {
    out.quality_compliance = day.quality_compliance;
    out.completeness = day.completeness;
    out.availability = day.availability;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::analysis::AnalysisConfig;
    use cistern_schemas::inventory::Inventory;
    use cistern_schemas::Date;

    fn spec() -> cistern_schemas::inventory::RoomSpec {
        let inv: Inventory = toml::from_str(
            r#"
            [[zones]]
            id = "siming"
            name = "思明"
            [[rooms]]
            id = "XM-0001"
            name = "金山花园泵房"
            lat = 24.48
            lon = 118.09
            zone = "siming"
            [[rooms.pumps]]
            rated_flow_m3h = 30.0
            rated_head_m = 50.0
            shutoff_head_m = 65.0
            rated_power_kw = 7.5
            bep_efficiency = 0.7
            [[rooms.pumps]]
            rated_flow_m3h = 30.0
            rated_head_m = 50.0
            shutoff_head_m = 65.0
            rated_power_kw = 7.5
            bep_efficiency = 0.7
            [[rooms.tanks]]
            area_m2 = 20.0
            height_m = 3.0
            overflow_m = 2.9
            hard_min_m = 0.3
            refill_on_m = 1.5
            refill_off_m = 2.7
            inlet_capacity_m3h = 40.0
        "#,
        )
        .unwrap();
        inv.rooms[0].clone()
    }

    fn day_of(spec: &cistern_schemas::inventory::RoomSpec) -> DaySeries {
        DaySeries::new(spec.id.clone(), Date::ymd(2026, 3, 1).unwrap(), 480)
    }

    #[test]
    fn an_empty_day_says_it_has_no_quality_and_no_availability_and_zero_completeness() {
        let spec = spec();
        let config = AnalysisConfig::default();
        let ctx = RoomContext {
            spec: &spec,
            archive: None,
            config: &config,
        };
        let day = compute(&day_of(&spec), &ctx);
        assert_eq!(day.quality_compliance, None);
        assert_eq!(day.availability, None);
        assert_eq!(day.completeness, Some(0.0));
        assert!(day.expected > 0);
    }

    #[test]
    fn quality_counts_samples_inside_the_limits_and_pools_the_parameters() {
        let spec = spec();
        let config = AnalysisConfig::default();
        let ctx = RoomContext {
            spec: &spec,
            archive: None,
            config: &config,
        };
        let mut s = day_of(&spec);
        let t0 = s.from_ms;
        // 10 minutes of turbidity, 2 samples each: 8 minutes at 0.3 NTU, 2 at 1.5 NTU.
        for m in 0..10 {
            let v = if m < 8 { 0.3 } else { 1.5 };
            for k in 0..2 {
                s.add(
                    DeviceUnit::Room,
                    "turbidity",
                    t0 + m * MINUTE_MS + k * 2_000,
                    v,
                );
            }
        }
        // 10 minutes of pH 7.2, one sample each.
        for m in 0..10 {
            s.add(DeviceUnit::Room, "ph", t0 + m * MINUTE_MS, 7.2);
        }
        let day = compute(&s, &ctx);
        // Inside: 16 turbidity + 10 pH of 30 samples.
        let c = day.quality_compliance.unwrap();
        assert!((c - 26.0 / 30.0).abs() < 1e-12, "{c}");
        let turb = day.quality.iter().find(|p| p.point == "turbidity").unwrap();
        assert_eq!((turb.samples, turb.inside), (20, 16));
        assert_eq!(turb.max, Some(1.5));
        assert!(day.quality.iter().all(|p| p.point != "chlorine"));
    }

    #[test]
    fn a_minute_straddling_a_limit_is_judged_by_its_mean() {
        let b = Bucket {
            start: 0,
            min: 0.8,
            max: 1.4,
            sum: 0.8 + 1.4,
            count: 2,
            last_t: 0,
            last_v: 1.4,
        };
        assert!(!minute_inside(&b, 0.0, 1.0));
        let b = Bucket {
            sum: 0.8 + 1.1 + 0.9,
            count: 3,
            min: 0.8,
            max: 1.1,
            ..b
        };
        assert!(minute_inside(&b, 0.0, 1.0));
    }

    #[test]
    fn completeness_is_received_over_expected_capped_per_minute() {
        let spec = spec();
        let config = AnalysisConfig::default();
        let ctx = RoomContext {
            spec: &spec,
            archive: None,
            config: &config,
        };
        let mut s = day_of(&spec);
        let t0 = s.from_ms;
        // Outlet pressure every 2 s for the whole day (30 a minute), plus a burst of 100
        // duplicates in one minute that must not count beyond 30.
        for k in 0..(24 * 60 * 30) {
            s.add(DeviceUnit::Room, "outlet_pressure", t0 + k * 2_000, 0.4);
        }
        for _ in 0..100 {
            s.add(DeviceUnit::Room, "outlet_pressure", t0 + 1_000, 0.4);
        }
        let day = compute(&s, &ctx);
        let points: usize = units_of(&spec).iter().map(|u| points_of(*u).len()).sum();
        assert_eq!(day.expected, points as u64 * 24 * 60 * 30);
        assert_eq!(day.received, 24 * 60 * 30);
        let room = &day.units[0];
        assert_eq!(room.unit, DeviceUnit::Room);
        assert_eq!(room.received, 24 * 60 * 30);
        assert_eq!(day.units[1].unit, DeviceUnit::Pump(1));
        assert_eq!(day.units[1].ratio(), Some(0.0));
        let c = day.completeness.unwrap();
        assert!((c - 1.0 / points as f64).abs() < 1e-12, "{c}");
    }

    #[test]
    fn availability_is_the_share_of_observed_minutes_with_pressure_held() {
        let spec = spec();
        let config = AnalysisConfig::default();
        let ctx = RoomContext {
            spec: &spec,
            archive: None,
            config: &config,
        };
        let mut s = day_of(&spec);
        let t0 = s.from_ms;
        let sp = spec.outlet_setpoint_mpa;
        // 60 observed minutes: 45 at the set-point, 15 at a third of it; the rest unobserved.
        for m in 0..60 {
            let v = if m < 45 { sp } else { sp / 3.0 };
            s.add(DeviceUnit::Room, "outlet_pressure", t0 + m * MINUTE_MS, v);
        }
        let day = compute(&s, &ctx);
        assert_eq!((day.supplying_minutes, day.observed_minutes), (45, 60));
        assert_eq!(day.availability, Some(0.75));
        let mut f = DayFigures::default();
        figures(&day, &mut f);
        assert_eq!(f.availability, Some(0.75));
        assert_eq!(f.quality_compliance, None);
    }
}
