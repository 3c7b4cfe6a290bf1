//! Pump efficiency (issue 22 item 2, DOMAIN.md §3): each pump's operating point (Q, H, speed
//! ratio) minute by minute and its efficiency from the nameplate η-Q curve by the affinity laws.
//!
//! There is no per-pump flow meter: the running pumps share the outlet flow evenly (one model
//! per room is the normal case, where the simulator's split is even too). The head is the lift
//! (outlet pressure − tank level, in metres). The speed ratio is the drive frequency / 50 Hz.
//! Efficiency η(Q, r) = η₀(Q/r) with η₀ the rated-speed η-Q curve; the BEP ratio is
//! Q / (r·Q_BEP); the preferred operating region is 70-120 % of BEP flow (ANSI/HI 9.6.3).
//!
//! The curves come from the room's archive (the pump equipment's nameplate `curve_eta_q`,
//! `curve_hq`); without one, from the inventory's `PumpSpec` with the parabola the simulator
//! itself uses (src/lab/sim/pump_curve.rs: η = η_BEP·x·(2 − x), x = Q / Q_BEP, and
//! H = H₀ − k·Q² through the rated point) — `source` says which. A pump without either has
//! no efficiency, and says so.

use super::day::{DayFigures, DaySeries, RoomContext};
use super::energy::{at, lift_minutes, METRES_PER_MPA};
use crate::business::assets::archive::RoomArchive;
use cistern_schemas::inventory::PumpSpec;
use cistern_schemas::DeviceUnit;
use serde::{Deserialize, Serialize};

/// Rated drive frequency, Hz.
pub const RATED_HZ: f64 = 50.0;
/// The preferred operating region, share of BEP flow.
pub const POR: (f64, f64) = (0.7, 1.2);
/// At most this many operating points a day are kept for the H-Q chart.
pub const CLOUD_POINTS: usize = 96;

/// Where a pump's curves came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurveSource {
    /// The archive's nameplate curves.
    Archive,
    /// The inventory's rated point and the simulator's parabolic model.
    Spec,
    /// Neither: no efficiency.
    None,
}

/// A pump's curves at rated speed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PumpCurves {
    pub source: CurveSource,
    /// Pump model (from the archive), empty when unknown.
    pub model: String,
    /// (flow m³/h, head m), flow increasing.
    pub hq: Vec<[f64; 2]>,
    /// (flow m³/h, efficiency 0..1), flow increasing.
    pub eta_q: Vec<[f64; 2]>,
    /// Best-efficiency flow, m³/h, and the efficiency there.
    pub bep_flow_m3h: f64,
    pub bep_efficiency: f64,
}

impl PumpCurves {
    /// The archive's curves of pump `i` (1-based), else the spec's.
    pub fn of(archive: Option<&RoomArchive>, spec: Option<&PumpSpec>, i: u8) -> Option<Self> {
        let equipment = archive.and_then(|a| {
            a.equipment
                .iter()
                .find(|e| e.device == Some(DeviceUnit::Pump(i)))
        });
        let model = equipment.map(|e| e.model.clone()).unwrap_or_default();
        if let Some(e) = equipment {
            let n = &e.nameplate;
            let eta_ok = n.curve_eta_q.len() >= 2
                && n.curve_eta_q.windows(2).all(|w| w[0][0] < w[1][0])
                && n.curve_eta_q
                    .iter()
                    .all(|p| p[0].is_finite() && p[1].is_finite() && (0.0..=1.0).contains(&p[1]));
            if eta_ok {
                let best = n
                    .curve_eta_q
                    .iter()
                    .copied()
                    .fold(
                        [0.0, f64::NEG_INFINITY],
                        |a, p| if p[1] > a[1] { p } else { a },
                    );
                let bep_flow = n
                    .rated_flow_m3h
                    .filter(|q| *q > 0.0 && q.is_finite())
                    .unwrap_or(best[0]);
                if bep_flow > 0.0 && best[1] > 0.0 {
                    let hq = if n.curve_hq.len() >= 2 {
                        n.curve_hq.clone()
                    } else {
                        spec.map(spec_hq).unwrap_or_default()
                    };
                    return Some(Self {
                        source: CurveSource::Archive,
                        model,
                        hq,
                        eta_q: n.curve_eta_q.clone(),
                        bep_flow_m3h: bep_flow,
                        bep_efficiency: interpolate(&n.curve_eta_q, bep_flow).max(best[1]),
                    });
                }
            }
        }
        let s = spec.filter(|s| s.rated_flow_m3h > 0.0 && s.bep_efficiency > 0.0)?;
        let eta_q = (0..=12)
            .map(|k| {
                let x = f64::from(k) * 0.125;
                [
                    s.rated_flow_m3h * x,
                    (s.bep_efficiency * x * (2.0 - x)).max(0.0),
                ]
            })
            .collect();
        Some(Self {
            source: CurveSource::Spec,
            model,
            hq: spec_hq(s),
            eta_q,
            bep_flow_m3h: s.rated_flow_m3h,
            bep_efficiency: s.bep_efficiency,
        })
    }

    /// Efficiency at flow `q` and speed ratio `r` (affinity laws: η(Q, r) = η₀(Q/r)).
    pub fn efficiency(&self, q: f64, r: f64) -> f64 {
        if r <= 0.0 {
            return 0.0;
        }
        interpolate(&self.eta_q, q / r).clamp(0.0, 1.0)
    }
}

/// The spec's H-Q curve at rated speed (H = H₀ − k·Q² through the rated point).
fn spec_hq(s: &PumpSpec) -> Vec<[f64; 2]> {
    let k = (s.shutoff_head_m - s.rated_head_m).max(0.0) / s.rated_flow_m3h.max(1e-6).powi(2);
    (0..=6)
        .map(|i| {
            let q = s.rated_flow_m3h * f64::from(i) * 0.25;
            [q, (s.shutoff_head_m - k * q * q).max(0.0)]
        })
        .collect()
}

/// Interpolation in a flow-increasing curve: inside it, the parabola through the three
/// nearest points (exact for the parabolic curves nameplates are drawn from, where straight
/// segments would understate the efficiency between points by up to a few %), never beyond
/// the three points' range; beyond its ends the curve falls linearly to zero over the next
/// step (a pump far out on its curve is not held at its end value). Never below zero.
pub fn interpolate(curve: &[[f64; 2]], x: f64) -> f64 {
    let (Some(first), Some(last)) = (curve.first(), curve.last()) else {
        return 0.0;
    };
    if x <= first[0] {
        return first[1].max(0.0);
    }
    let n = curve.len();
    if x >= last[0] {
        let step = if n >= 2 {
            last[0] - curve[n - 2][0]
        } else {
            1.0
        };
        let beyond = (x - last[0]) / step.max(1e-9);
        return (last[1] * (1.0 - beyond)).max(0.0);
    }
    let i = curve.partition_point(|p| p[0] <= x);
    let (a, b) = (curve[i - 1], curve[i]);
    if n < 3 {
        let t = (x - a[0]) / (b[0] - a[0]);
        return (a[1] + t * (b[1] - a[1])).max(0.0);
    }
    // The triple around the segment [i-1, i]: the third point on the side nearer to x.
    let k = if i + 1 >= n || (i >= 2 && x - a[0] < b[0] - x) {
        i - 2
    } else {
        i - 1
    };
    let (p0, p1, p2) = (curve[k], curve[k + 1], curve[k + 2]);
    let l = |xa: f64, xb: f64, xc: f64| (x - xb) * (x - xc) / ((xa - xb) * (xa - xc));
    let y = p0[1] * l(p0[0], p1[0], p2[0])
        + p1[1] * l(p1[0], p0[0], p2[0])
        + p2[1] * l(p2[0], p0[0], p1[0]);
    let (lo, hi) = [p0[1], p1[1], p2[1]]
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let span = hi - lo;
    y.clamp(lo - span, hi + span).max(0.0)
}

/// A pump's efficiency facts for one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PumpDay {
    pub unit: DeviceUnit,
    /// The curves used (the chart draws them), `None` when the pump has neither archive
    /// curves nor a spec.
    #[serde(default)]
    pub curves: Option<PumpCurves>,
    /// Minutes running, and of those the minutes with an operating point (flow, lift, speed).
    #[serde(default)]
    pub run_minutes: u32,
    #[serde(default)]
    pub point_minutes: u32,
    /// Run-time-weighted means of the operating point: speed ratio, flow m³/h, head m.
    #[serde(default)]
    pub mean_speed: Option<f64>,
    #[serde(default)]
    pub mean_flow_m3h: Option<f64>,
    #[serde(default)]
    pub mean_head_m: Option<f64>,
    /// Mean Q / (r·Q_BEP).
    #[serde(default)]
    pub bep_ratio: Option<f64>,
    /// Minutes inside 70-120 % of BEP flow.
    #[serde(default)]
    pub por_minutes: u32,
    /// Run-time-weighted efficiency from the curve (0..1).
    #[serde(default)]
    pub efficiency: Option<f64>,
    /// Measured wire-to-water efficiency ρgQH / P from the pump's power (0..1).
    #[serde(default)]
    pub wire_to_water: Option<f64>,
    /// Energy drawn (from the power point), kWh, and what running at the best point would have
    /// saved, kWh.
    #[serde(default)]
    pub kwh: Option<f64>,
    #[serde(default)]
    pub lost_kwh: Option<f64>,
    /// A thinned cloud of operating points (Q m³/h, H m, r).
    #[serde(default)]
    pub cloud: Vec<[f64; 3]>,
    /// Why figures are missing: `no_curve`, `not_running`, `no_operating_point`,
    /// `no_frequency` (rated speed assumed), `no_power`.
    #[serde(default)]
    pub missing: Vec<String>,
}

/// The day's facts of each pump of the room.
pub fn compute(series: &DaySeries, ctx: &RoomContext<'_>) -> Vec<PumpDay> {
    let n = ctx.spec.pumps.len();
    let running: Vec<_> = (1..=n)
        .map(|i| series.get(DeviceUnit::Pump(i as u8), "running"))
        .collect();
    let lifts = lift_minutes(series, ctx);
    let mut days: Vec<PumpDay> = (1..=n)
        .map(|i| PumpDay {
            unit: DeviceUnit::Pump(i as u8),
            curves: PumpCurves::of(ctx.archive, ctx.spec.pumps.get(i - 1), i as u8),
            run_minutes: 0,
            point_minutes: 0,
            mean_speed: None,
            mean_flow_m3h: None,
            mean_head_m: None,
            bep_ratio: None,
            por_minutes: 0,
            efficiency: None,
            wire_to_water: None,
            kwh: None,
            lost_kwh: None,
            cloud: Vec::new(),
            missing: Vec::new(),
        })
        .collect();
    // Run minutes and energy from the pump's own points.
    for (i, day) in days.iter_mut().enumerate() {
        day.run_minutes = running[i].iter().filter(|b| b.mean() >= 0.5).count() as u32;
        let power = series.get(day.unit, "power");
        if !power.is_empty() {
            day.kwh = Some(power.iter().map(|b| b.mean().max(0.0) / 60.0).sum());
        }
    }
    #[derive(Default, Clone)]
    struct Acc {
        r: f64,
        q: f64,
        h: f64,
        ratio: f64,
        eta: f64,
        hyd_kw: f64,
        power_kw: f64,
        lost: f64,
        lost_known: bool,
        no_freq: bool,
        points: Vec<[f64; 3]>,
    }
    let mut acc = vec![Acc::default(); n];
    for &(t, flow, lift_mpa) in &lifts {
        let on: Vec<usize> = (0..n)
            .filter(|&i| at(running[i], t).is_some_and(|b| b.mean() >= 0.5))
            .collect();
        if on.is_empty() {
            continue;
        }
        let q = flow / on.len() as f64;
        let h = (lift_mpa * METRES_PER_MPA).max(0.0);
        for &i in &on {
            let a = &mut acc[i];
            let r = match at(series.get(days[i].unit, "frequency"), t) {
                Some(b) => b.mean() / RATED_HZ,
                None => {
                    a.no_freq = true;
                    1.0
                }
            };
            if r <= 0.05 {
                continue;
            }
            let day = &mut days[i];
            day.point_minutes += 1;
            a.r += r;
            a.q += q;
            a.h += h;
            a.points.push([q, h, r]);
            let hyd_kw = q * h / 367.0;
            let power = at(series.get(day.unit, "power"), t).map(|b| b.mean());
            if let Some(p) = power.filter(|p| *p > 0.0) {
                a.hyd_kw += hyd_kw;
                a.power_kw += p;
            }
            let Some(c) = &day.curves else {
                continue;
            };
            let ratio = q / (r * c.bep_flow_m3h);
            a.ratio += ratio;
            if (POR.0..=POR.1).contains(&ratio) {
                day.por_minutes += 1;
            }
            let eta = c.efficiency(q, r);
            a.eta += eta;
            // What the minute drew beyond the same hydraulic work at the best efficiency.
            let drawn = power
                .filter(|p| *p > 0.0)
                .or_else(|| (eta > 0.01).then(|| hyd_kw / eta));
            if let Some(p) = drawn {
                a.lost += (p * (1.0 - eta / c.bep_efficiency)).max(0.0) / 60.0;
                a.lost_known = true;
            }
        }
    }
    for (day, a) in days.iter_mut().zip(acc) {
        let m = f64::from(day.point_minutes);
        if day.curves.is_none() {
            day.missing.push("no_curve".into());
        }
        if day.run_minutes == 0 {
            day.missing.push("not_running".into());
        } else if day.point_minutes == 0 {
            day.missing.push("no_operating_point".into());
        }
        if a.no_freq {
            day.missing.push("no_frequency".into());
        }
        if day.run_minutes > 0 && day.kwh.is_none() {
            day.missing.push("no_power".into());
        }
        if m > 0.0 {
            day.mean_speed = Some(a.r / m);
            day.mean_flow_m3h = Some(a.q / m);
            day.mean_head_m = Some(a.h / m);
            if day.curves.is_some() {
                day.bep_ratio = Some(a.ratio / m);
                day.efficiency = Some(a.eta / m);
                day.lost_kwh = a.lost_known.then_some(a.lost);
            }
            if a.power_kw > 0.0 {
                day.wire_to_water = Some((a.hyd_kw / a.power_kw).clamp(0.0, 1.0));
            }
            let stride = a.points.len().div_ceil(CLOUD_POINTS).max(1);
            day.cloud = a
                .points
                .iter()
                .step_by(stride)
                .map(|p| p.map(|v| (v * 1000.0).round() / 1000.0))
                .collect();
        }
    }
    days
}

/// This analysis' share of the day's headline figures.
pub fn figures(pumps: &[PumpDay], out: &mut DayFigures) {
    let (mut weighted, mut minutes, mut por, mut lost) = (0.0, 0u32, 0u32, None::<f64>);
    for p in pumps {
        if let Some(e) = p.efficiency {
            weighted += e * f64::from(p.point_minutes);
            minutes += p.point_minutes;
            por += p.por_minutes;
        }
        if let Some(l) = p.lost_kwh {
            lost = Some(lost.unwrap_or(0.0) + l);
        }
    }
    if minutes > 0 {
        out.pump_efficiency = Some(weighted / f64::from(minutes));
        out.por_share = Some(f64::from(por) / f64::from(minutes));
    }
    out.lost_kwh = lost;
}

/// Run-time-weighted estimated efficiency of each pump of a day, for the benchmark:
/// (unit, efficiency 0..1, minutes with an operating point).
pub fn pump_efficiencies(pumps: &[PumpDay]) -> Vec<(DeviceUnit, Option<f64>, u32)> {
    pumps
        .iter()
        .map(|p| (p.unit, p.efficiency, p.point_minutes))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::analysis::day::DaySeries;
    use crate::business::analysis::AnalysisConfig;
    use cistern_schemas::inventory::RoomSpec;
    use cistern_schemas::{Date, RoomId};

    fn spec() -> RoomSpec {
        let json = serde_json::json!({
            "id": "XM-0001", "name": "t", "lat": 24.5, "lon": 118.1, "zone": "siming",
            "pumps": [
                {"rated_flow_m3h": 40.0, "rated_head_m": 50.0, "shutoff_head_m": 62.5,
                 "rated_power_kw": 11.0, "bep_efficiency": 0.75},
                {"rated_flow_m3h": 40.0, "rated_head_m": 50.0, "shutoff_head_m": 62.5,
                 "rated_power_kw": 11.0, "bep_efficiency": 0.75}],
            "tanks": [{"area_m2": 20.0, "height_m": 3.0, "overflow_m": 2.8, "hard_min_m": 0.3,
                       "refill_on_m": 2.0, "refill_off_m": 2.6, "inlet_capacity_m3h": 60.0}]
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn interpolation_follows_the_curve_and_never_goes_negative() {
        let c = [[0.0, 0.0], [20.0, 0.5], [40.0, 0.75], [60.0, 0.5]];
        // The parabola through (20, 0.5), (40, 0.75), (60, 0.5): 0.75 − (Q − 40)²/1600.
        assert!((interpolate(&c, 30.0) - 0.6875).abs() < 1e-12);
        assert!((interpolate(&c, 50.0) - 0.6875).abs() < 1e-12);
        assert_eq!(interpolate(&c, 40.0), 0.75);
        // The demo's seven-point curve of η = 0.75·x·(2 − x) is followed exactly between
        // its points.
        let demo: Vec<[f64; 2]> = (0..=6)
            .map(|k| {
                let x = f64::from(k) * 0.25;
                [40.0 * x, 0.75 * x * (2.0 - x)]
            })
            .collect();
        for q in [3.0, 12.5, 17.0, 33.0, 45.0] {
            let x: f64 = q / 40.0;
            assert!(
                (interpolate(&demo, q) - 0.75 * x * (2.0 - x)).abs() < 1e-12,
                "{q}"
            );
        }
        // Two points: a straight line.
        assert_eq!(interpolate(&[[0.0, 0.0], [10.0, 1.0]], 2.5), 0.25);
        // Past the end it falls to zero over the next 20 m³/h.
        assert_eq!(interpolate(&c, 70.0), 0.25);
        assert_eq!(interpolate(&c, 200.0), 0.0);
        assert_eq!(interpolate(&[], 1.0), 0.0);
    }

    #[test]
    fn the_spec_parabola_moves_with_speed_by_the_affinity_laws() {
        let s = spec();
        let c = PumpCurves::of(None, s.pumps.first(), 1).unwrap();
        assert_eq!(c.source, CurveSource::Spec);
        // At BEP flow and rated speed: the BEP efficiency.
        assert!((c.efficiency(40.0, 1.0) - 0.75).abs() < 1e-12);
        // At 80 % speed the best point is at 32 m³/h.
        assert!((c.efficiency(32.0, 0.8) - 0.75).abs() < 1e-12);
        // Half the BEP flow at rated speed: x = 0.5, η = 0.75·0.5·1.5 = 0.5625.
        assert!((c.efficiency(20.0, 1.0) - 0.5625).abs() < 1e-12);
        // No curve and no spec: nothing.
        assert!(PumpCurves::of(None, None, 1).is_none());
    }

    #[test]
    fn a_day_of_two_pumps_sharing_the_flow() {
        let s = spec();
        let config = AnalysisConfig::default();
        let ctx = RoomContext {
            spec: &s,
            archive: None,
            config: &config,
        };
        let date = Date::ymd(2026, 3, 1).unwrap();
        let mut d = DaySeries::new(RoomId::new("XM-0001").unwrap(), date, 0);
        let t0 = d.from_ms;
        // 60 minutes: both pumps at 40 Hz (r = 0.8), outlet 32 m³/h shared (16 each), lift
        // 0.45 MPa from a tank at 0.5 m: head = 0.45·101.97 = 45.8865 m.
        // Per pump x = 16/0.8/40 = 0.5: η = 0.5625, BEP ratio 0.5 (outside the POR).
        // Power 4 kW each: wire-to-water = 16·45.8865/367 / 4 = 0.50013.
        // Lost per minute: 4·(1 − 0.5625/0.75)/60 kWh; an hour: 1 kWh.
        for m in 0..60i64 {
            let t = t0 + m * 60_000 + 500;
            d.add(DeviceUnit::Room, "outlet_flow", t, 32.0);
            d.add(
                DeviceUnit::Room,
                "outlet_pressure",
                t,
                0.45 + 0.5 / METRES_PER_MPA,
            );
            d.add(DeviceUnit::Tank(1), "level", t, 0.5);
            for p in 1..=2 {
                d.add(DeviceUnit::Pump(p), "running", t, 1.0);
                d.add(DeviceUnit::Pump(p), "frequency", t, 40.0);
                d.add(DeviceUnit::Pump(p), "power", t, 4.0);
            }
        }
        // Then 60 minutes of pump 1 alone at 50 Hz carrying 40 m³/h: at BEP.
        for m in 60..120i64 {
            let t = t0 + m * 60_000 + 500;
            d.add(DeviceUnit::Room, "outlet_flow", t, 40.0);
            d.add(
                DeviceUnit::Room,
                "outlet_pressure",
                t,
                0.45 + 0.5 / METRES_PER_MPA,
            );
            d.add(DeviceUnit::Tank(1), "level", t, 0.5);
            d.add(DeviceUnit::Pump(1), "running", t, 1.0);
            d.add(DeviceUnit::Pump(1), "frequency", t, 50.0);
            d.add(DeviceUnit::Pump(1), "power", t, 8.0);
            d.add(DeviceUnit::Pump(2), "running", t, 0.0);
        }
        let pumps = compute(&d, &ctx);
        let (p1, p2) = (&pumps[0], &pumps[1]);
        assert_eq!((p1.run_minutes, p1.point_minutes), (120, 120));
        assert_eq!((p2.run_minutes, p2.point_minutes), (60, 60));
        let e2 = p2.efficiency.unwrap();
        assert!((e2 - 0.5625).abs() < 1e-9, "{e2}");
        assert!((p2.bep_ratio.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(p2.por_minutes, 0);
        assert!((p2.lost_kwh.unwrap() - 1.0).abs() < 1e-9);
        let w2w = p2.wire_to_water.unwrap();
        assert!((w2w - 16.0 * 0.45 * METRES_PER_MPA / 367.0 / 4.0).abs() < 1e-9);
        // Pump 1: half the time at 0.5625, half at 0.75 ⇒ 0.65625; 60 POR minutes.
        assert!((p1.efficiency.unwrap() - 0.65625).abs() < 1e-9);
        assert_eq!(p1.por_minutes, 60);
        assert!((p1.mean_speed.unwrap() - 0.9).abs() < 1e-9);
        assert!((p1.kwh.unwrap() - 12.0).abs() < 1e-9);
        assert!(p1.cloud.len() <= CLOUD_POINTS && p1.cloud.len() >= 60);
        let mut f = DayFigures::default();
        figures(&pumps, &mut f);
        // (120·0.65625 + 60·0.5625) / 180 = 0.625; POR 60 / 180.
        assert!((f.pump_efficiency.unwrap() - 0.625).abs() < 1e-9);
        assert!((f.por_share.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert!((f.lost_kwh.unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_pump_without_data_says_what_it_lacks() {
        let mut s = spec();
        s.pumps.truncate(1);
        let config = AnalysisConfig::default();
        let ctx = RoomContext {
            spec: &s,
            archive: None,
            config: &config,
        };
        let d = DaySeries::new(
            RoomId::new("XM-0001").unwrap(),
            Date::ymd(2026, 3, 1).unwrap(),
            0,
        );
        let pumps = compute(&d, &ctx);
        assert_eq!(pumps[0].missing, vec!["not_running".to_string()]);
        assert_eq!(pumps[0].efficiency, None);
        let mut f = DayFigures::default();
        figures(&pumps, &mut f);
        assert_eq!(
            (f.pump_efficiency, f.por_share, f.lost_kwh),
            (None, None, None)
        );
    }
}
