//! Centrifugal pump hydraulics: the head curve of a pump on a variable-speed drive, the
//! affinity laws, pumps in parallel, the operating point against the building, and efficiency
//! and power at any point.
//!
//! Head at speed ratio r: H(Q, r) = H0·r² − k·Q² (affinity laws applied to the rated-speed curve
//! H0 − k·Q²). Efficiency follows the BEP flow with speed: η(Q, r) = η_bep·(1 − ((Q/r − Q_bep) /
//! Q_bep)²). The building takes flow at pressure P as Q = Q_demand·√(P / P_setpoint) when the
//! set-point cannot be held (taps are orifices), and its full demand otherwise.
//!
//! The step asks these questions for every room every simulated second, so answers are
//! closed-form whenever the running pumps share a shut-off head (one model per room, the
//! normal case: parallel pumps then combine exactly into one equivalent curve) and fall back
//! to bisection otherwise (a worn pump running beside healthy ones).

/// Metres of water column per MPa.
pub(crate) const METRES_PER_MPA: f64 = 101.97;
/// ρ·g of water, N/m³.
const RHO_G: f64 = 1000.0 * 9.81;
/// The inventory allows up to nine pumps per room.
pub(crate) const MAX_PUMPS: usize = 9;
const BISECTION_STEPS: usize = 60;

/// A pump's head curve at rated speed: H(Q) = shutoff − k·Q², Q in m³/h, H in m.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct HeadCurve {
    shutoff_m: f64,
    k: f64,
}

impl HeadCurve {
    /// The curve through the rated point with the given shut-off head.
    pub(crate) fn through(shutoff_m: f64, rated_head_m: f64, rated_flow_m3h: f64) -> Self {
        let k = (shutoff_m - rated_head_m).max(1e-6) / rated_flow_m3h.max(1e-6).powi(2);
        Self { shutoff_m, k }
    }

    /// The curve of a pump whose impeller and wear rings have lost `wear` (0..1) of its head.
    pub(crate) fn worn(self, wear: f64) -> Self {
        let keep = (1.0 - wear).clamp(0.05, 1.0);
        Self {
            shutoff_m: self.shutoff_m * keep,
            k: self.k * keep,
        }
    }

    pub(crate) fn head(&self, flow_m3h: f64, speed: f64) -> f64 {
        self.shutoff_m * speed * speed - self.k * flow_m3h * flow_m3h
    }

    /// The flow this pump delivers against `head_m` at `speed` (zero when it cannot open its
    /// check valve).
    pub(crate) fn flow(&self, head_m: f64, speed: f64) -> f64 {
        ((self.shutoff_m * speed * speed - head_m).max(0.0) / self.k).sqrt()
    }
}

/// Pumps running in parallel at one speed (one drive setting for the whole duty set).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParallelSet {
    curves: [HeadCurve; MAX_PUMPS],
    len: usize,
}

impl Default for ParallelSet {
    fn default() -> Self {
        Self {
            curves: [HeadCurve {
                shutoff_m: 0.0,
                k: 1.0,
            }; MAX_PUMPS],
            len: 0,
        }
    }
}

impl ParallelSet {
    pub(crate) fn push(&mut self, curve: HeadCurve) {
        if self.len < MAX_PUMPS {
            self.curves[self.len] = curve;
            self.len += 1;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn curves(&self) -> &[HeadCurve] {
        &self.curves[..self.len]
    }

    /// The single curve equivalent to the set, when every pump has the same shut-off head:
    /// Q_i = √((H0·r² − H)/k_i) sums to √((H0·r² − H)/k_eff) with k_eff = (Σ k_i^-½)^-2.
    fn equivalent(&self) -> Option<HeadCurve> {
        let first = self.curves().first()?;
        let same = self
            .curves()
            .iter()
            .all(|c| (c.shutoff_m - first.shutoff_m).abs() <= 1e-12 * first.shutoff_m.abs());
        if !same {
            return None;
        }
        let conductance: f64 = self.curves().iter().map(|c| 1.0 / c.k.sqrt()).sum();
        Some(HeadCurve {
            shutoff_m: first.shutoff_m,
            k: 1.0 / (conductance * conductance),
        })
    }

    /// Total flow of the set against `head_m` at `speed`.
    pub(crate) fn flow(&self, head_m: f64, speed: f64) -> f64 {
        self.curves().iter().map(|c| c.flow(head_m, speed)).sum()
    }

    /// The speed ratio at which the set delivers `flow_m3h` against `head_m`.
    pub(crate) fn speed_for(&self, head_m: f64, flow_m3h: f64) -> f64 {
        if let Some(eq) = self.equivalent() {
            return ((head_m + eq.k * flow_m3h * flow_m3h).max(0.0) / eq.shutoff_m).sqrt();
        }
        let (min_shutoff, max_shutoff, max_k) = self.extremes();
        let lo = (head_m.max(0.0) / max_shutoff).sqrt();
        // At this speed every pump alone delivers at least the flow.
        let hi = ((head_m.max(0.0) + max_k * flow_m3h * flow_m3h) / min_shutoff).sqrt();
        bisect_increasing(lo, hi, |r| self.flow(head_m, r) - flow_m3h)
    }

    /// The head of the set when it delivers `flow_m3h` at `speed`.
    pub(crate) fn head_at(&self, flow_m3h: f64, speed: f64) -> f64 {
        if let Some(eq) = self.equivalent() {
            return eq.head(flow_m3h, speed);
        }
        let lo = self
            .curves()
            .iter()
            .map(|c| c.head(flow_m3h, speed))
            .fold(f64::INFINITY, f64::min);
        let hi = self
            .curves()
            .iter()
            .map(|c| c.head(0.0, speed))
            .fold(f64::NEG_INFINITY, f64::max);
        bisect_increasing(lo, hi, |h| flow_m3h - self.flow(h, speed))
    }

    /// Flow of pump `i` of the set (in push order) when the set delivers `total_m3h` at
    /// `head_m`: the split follows the curves, scaled so that the parts add up exactly.
    pub(crate) fn share(&self, i: usize, head_m: f64, speed: f64, total_m3h: f64) -> f64 {
        let Some(curve) = self.curves().get(i) else {
            return 0.0;
        };
        let all = self.flow(head_m, speed);
        if all > 1e-12 {
            total_m3h * curve.flow(head_m, speed) / all
        } else {
            total_m3h / self.len as f64
        }
    }

    fn extremes(&self) -> (f64, f64, f64) {
        self.curves()
            .iter()
            .fold((f64::INFINITY, 0.0_f64, 0.0_f64), |(lo, hi, k), c| {
                (lo.min(c.shutoff_m), hi.max(c.shutoff_m), k.max(c.k))
            })
    }
}

/// Where the booster set and the building meet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OperatingPoint {
    /// Flow delivered to the building, m³/h.
    pub(crate) flow_m3h: f64,
    /// Outlet pressure as metres of water above atmosphere.
    pub(crate) outlet_head_m: f64,
}

impl OperatingPoint {
    /// The pump head (outlet minus suction).
    pub(crate) fn pump_head_m(&self, suction_m: f64) -> f64 {
        (self.outlet_head_m - suction_m).max(0.0)
    }
}

/// The operating point of `set` at `speed` against a building that wants `demand_m3h` at
/// `setpoint_m`, with the suction at `suction_m`.
///
/// With no pump able to beat the suction head, the bypass check valve opens and the building
/// gets what the tank's static head pushes through it.
pub(crate) fn operating_point(
    set: &ParallelSet,
    speed: f64,
    demand_m3h: f64,
    suction_m: f64,
    setpoint_m: f64,
) -> OperatingPoint {
    let setpoint_m = setpoint_m.max(1e-3);
    let demand = demand_m3h.max(0.0);
    let suction = suction_m.max(0.0);
    let bypass = OperatingPoint {
        flow_m3h: demand * (suction / setpoint_m).min(1.0).sqrt(),
        outlet_head_m: suction,
    };
    if set.is_empty() || speed <= 0.0 {
        return bypass;
    }
    let held = suction + set.head_at(demand, speed);
    let point = if held >= setpoint_m {
        OperatingPoint {
            flow_m3h: demand,
            outlet_head_m: held,
        }
    } else if let Some(eq) = set.equivalent() {
        // P = suction + H0·r² − k·Q² with Q² = demand²·P/P_sp, solved for P.
        let p =
            (suction + eq.shutoff_m * speed * speed) / (1.0 + eq.k * demand * demand / setpoint_m);
        OperatingPoint {
            flow_m3h: demand * (p.max(0.0) / setpoint_m).sqrt(),
            outlet_head_m: p,
        }
    } else {
        let p = bisect_increasing(0.0, setpoint_m, |p| {
            demand * (p.max(0.0) / setpoint_m).sqrt() - set.flow(p - suction, speed)
        });
        OperatingPoint {
            flow_m3h: demand * (p.max(0.0) / setpoint_m).sqrt(),
            outlet_head_m: p,
        }
    };
    if point.outlet_head_m < suction {
        bypass
    } else {
        point
    }
}

/// Shaft power of one pump, kW, with the efficiency parabola around its best-efficiency point
/// moved by the affinity laws.
pub(crate) fn shaft_power_kw(
    bep_flow_m3h: f64,
    bep_efficiency: f64,
    flow_m3h: f64,
    head_m: f64,
    speed: f64,
) -> f64 {
    if speed <= 0.0 || bep_flow_m3h <= 0.0 {
        return 0.0;
    }
    let head = head_m.max(0.0);
    let x = flow_m3h.max(0.0) / (speed * bep_flow_m3h);
    let watts = if x < 1.0 {
        // ρgQH/η is 0/0 at shut-off; dividing Q out of η = η_bep·x·(2 − x) gives the finite
        // churning power a real pump draws against a closed valve.
        RHO_G * head * speed * bep_flow_m3h / 3600.0 / (bep_efficiency * (2.0 - x))
    } else {
        let efficiency = (bep_efficiency * x * (2.0 - x)).max(0.05);
        RHO_G * head * flow_m3h / 3600.0 / efficiency
    };
    watts / 1000.0
}

/// The power a pump gives the water, kW: ρ·g·Q·H.
pub(crate) fn hydraulic_power_kw(flow_m3h: f64, head_m: f64) -> f64 {
    RHO_G * flow_m3h.max(0.0) * head_m.max(0.0) / 3600.0 / 1000.0
}

/// The root of an increasing function between `lo` (f ≤ 0) and `hi` (f ≥ 0).
fn bisect_increasing(mut lo: f64, mut hi: f64, f: impl Fn(f64) -> f64) -> f64 {
    for _ in 0..BISECTION_STEPS {
        let mid = 0.5 * (lo + hi);
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve() -> HeadCurve {
        HeadCurve::through(62.5, 50.0, 40.0)
    }

    #[test]
    fn the_curve_passes_through_its_rated_point_and_obeys_affinity() {
        let c = curve();
        assert!((c.head(40.0, 1.0) - 50.0).abs() < 1e-9);
        assert!((c.head(0.0, 0.8) - 62.5 * 0.64).abs() < 1e-9);
        assert!((c.flow(c.head(25.0, 0.9), 0.9) - 25.0).abs() < 1e-9);
    }

    #[test]
    fn closed_form_and_bisection_agree_for_parallel_pumps() {
        let mut same = ParallelSet::default();
        same.push(curve());
        same.push(curve());
        // A tiny difference in shut-off head forces the numeric path.
        let mut nearly = ParallelSet::default();
        nearly.push(curve());
        nearly.push(HeadCurve {
            shutoff_m: 62.5 * (1.0 + 1e-9),
            ..curve()
        });
        let r1 = same.speed_for(44.0, 60.0);
        let r2 = nearly.speed_for(44.0, 60.0);
        assert!((r1 - r2).abs() < 1e-6, "{r1} {r2}");
        assert!((same.head_at(60.0, 0.95) - nearly.head_at(60.0, 0.95)).abs() < 1e-5);
        let a = operating_point(&same, 0.7, 80.0, 2.0, 45.0);
        let b = operating_point(&nearly, 0.7, 80.0, 2.0, 45.0);
        assert!(
            a.outlet_head_m < 45.0,
            "the set cannot hold pressure at this speed"
        );
        assert!(
            (a.flow_m3h - b.flow_m3h).abs() < 1e-4
                && (a.outlet_head_m - b.outlet_head_m).abs() < 1e-4
        );
    }

    #[test]
    fn a_worn_pump_needs_more_speed() {
        let mut healthy = ParallelSet::default();
        healthy.push(curve());
        let mut worn = ParallelSet::default();
        worn.push(curve().worn(0.2));
        assert!(worn.speed_for(44.0, 30.0) > healthy.speed_for(44.0, 30.0) + 0.05);
        let mut mixed = ParallelSet::default();
        mixed.push(curve());
        mixed.push(curve().worn(0.2));
        let r = mixed.speed_for(44.0, 60.0);
        assert!((mixed.flow(44.0, r) - 60.0).abs() < 1e-6);
        assert!(mixed.share(0, 44.0, r, 60.0) > mixed.share(1, 44.0, r, 60.0));
    }

    #[test]
    fn the_set_point_is_held_while_the_pump_can() {
        let mut set = ParallelSet::default();
        set.push(curve());
        let r = set.speed_for(43.0, 30.0);
        let p = operating_point(&set, r, 30.0, 2.0, 45.0);
        assert!((p.outlet_head_m - 45.0).abs() < 1e-9 && (p.flow_m3h - 30.0).abs() < 1e-9);
        // Far beyond the curve at full speed: less flow, less pressure, consistent with both.
        let p = operating_point(&set, 1.0, 200.0, 2.0, 45.0);
        assert!(p.outlet_head_m < 45.0 && p.flow_m3h < 200.0);
        assert!((p.flow_m3h - 200.0 * (p.outlet_head_m / 45.0).sqrt()).abs() < 1e-9);
        assert!((p.outlet_head_m - 2.0 - curve().head(p.flow_m3h, 1.0)).abs() < 1e-9);
        // Nothing running: the bypass.
        let p = operating_point(&ParallelSet::default(), 0.0, 30.0, 2.0, 45.0);
        assert!((p.outlet_head_m - 2.0).abs() < 1e-12 && p.flow_m3h < 30.0 * 0.25);
    }

    #[test]
    fn power_is_finite_at_shutoff_and_peaks_near_bep_efficiency() {
        let at_zero = shaft_power_kw(40.0, 0.75, 0.0, 62.5, 1.0);
        let at_bep = shaft_power_kw(40.0, 0.75, 40.0, 50.0, 1.0);
        assert!(
            at_zero > 0.3 * at_bep && at_zero < at_bep,
            "{at_zero} {at_bep}"
        );
        assert!((at_bep - 9.81 * 40.0 / 3600.0 * 50.0 / 0.75).abs() < 1e-9);
        // Continuous across the two formulas.
        let below = shaft_power_kw(40.0, 0.75, 40.0 - 1e-9, 50.0, 1.0);
        assert!((below - at_bep).abs() < 1e-6);
        // Affinity: at 80 % speed the BEP sits at 80 % of the flow, with the head at 64 %.
        let scaled = shaft_power_kw(40.0, 0.75, 32.0, 32.0, 0.8);
        assert!((scaled - 9.81 * 32.0 / 3600.0 * 32.0 / 0.75).abs() < 1e-9);
    }
}
