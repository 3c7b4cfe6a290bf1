//! The lifecycle's figures, pure functions of the components and `now` (no I/O, no clock):
//! the curves per class and per vendor/model, each component's risk, the monthly replacement
//! plan, the spare-parts forecast and the suppliers' comparison. They run over the whole fleet
//! in one pass each (see the `fleet_figures_time` measurement in the tests).

use super::model::{
    stock_key, Component, ComponentClass, ComponentId, EventKind, EventSource, Life,
};
use super::Costs;
use crate::business::assets::weibull::{self, Interval, Weibull};
use cistern_schemas::{Date, EquipmentTag, RoomId, Timestamp};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A class needs this many failures before its own fit replaces the literature curve.
pub const MIN_CLASS_FAILURES: usize = 5;
/// A vendor/model needs this many failures for a curve of its own.
pub const MIN_MODEL_FAILURES: usize = 10;

/// Where a curve comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CurveSource {
    /// Fitted by maximum likelihood to this fleet's lives.
    Fit,
    /// The literature default (DOMAIN.md §8): see `reason`.
    Literature,
}

/// A curve as used, with its provenance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Curve {
    pub class: ComponentClass,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub beta: f64,
    pub eta: f64,
    pub source: CurveSource,
    /// Why the literature curve is used (`thin_data`, `fit_refused`), or absent for a fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta_bounds: Option<Interval>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_bounds: Option<Interval>,
    pub failures: usize,
    pub censored: usize,
    /// How many of the failures are the demo's simulated history.
    pub simulated_failures: usize,
    pub literature_beta: f64,
    pub literature_eta: f64,
}

impl Curve {
    pub fn weibull(&self) -> Weibull {
        Weibull {
            beta: self.beta,
            eta: self.eta,
        }
    }
}

/// The curve of `lives`, or the class's literature curve when there are fewer than `min`
/// failures or the fit is refused (all at one age, …): never NaN.
pub fn curve_of(
    class: ComponentClass,
    vendor_model: Option<(String, String)>,
    lives: &[Life],
    simulated_failures: usize,
    min: usize,
) -> Curve {
    let failures: Vec<f64> = lives.iter().filter(|l| l.failed).map(|l| l.hours).collect();
    let censored: Vec<f64> = lives
        .iter()
        .filter(|l| !l.failed)
        .map(|l| l.hours)
        .collect();
    let lit = class.literature();
    let (vendor, model) = match vendor_model {
        Some((v, m)) => (Some(v), Some(m)),
        None => (None, None),
    };
    let mut curve = Curve {
        class,
        vendor,
        model,
        beta: lit.beta,
        eta: lit.eta,
        source: CurveSource::Literature,
        reason: None,
        beta_bounds: None,
        eta_bounds: None,
        failures: failures.len(),
        censored: censored.len(),
        simulated_failures,
        literature_beta: lit.beta,
        literature_eta: lit.eta,
    };
    if failures.len() < min {
        curve.reason = Some(format!(
            "thin_data: {} failures, {min} needed",
            failures.len()
        ));
        return curve;
    }
    match weibull::fit_with_bounds(&failures, &censored) {
        Ok(f) if f.curve.beta.is_finite() && f.curve.eta.is_finite() && f.curve.eta > 0.0 => {
            curve.beta = f.curve.beta;
            curve.eta = f.curve.eta;
            curve.source = CurveSource::Fit;
            curve.beta_bounds = Some(f.beta);
            curve.eta_bounds = Some(f.eta);
        }
        Ok(_) => curve.reason = Some("fit_refused: not finite".into()),
        Err(e) => curve.reason = Some(format!("fit_refused: {e}")),
    }
    curve
}

/// The curves of a fleet: per class, and per (class, vendor, model) where the model has
/// enough failures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Fits {
    pub classes: BTreeMap<ComponentClass, Curve>,
    pub models: Vec<Curve>,
    #[serde(skip)]
    model_index: HashMap<(ComponentClass, String, String), usize>,
}

impl Fits {
    /// The curve a component follows: its model's when fitted, else its class's.
    pub fn for_component(&self, c: &Component) -> Option<&Curve> {
        self.model_index
            .get(&(c.class, c.vendor.clone(), c.model.clone()))
            .and_then(|&i| self.models.get(i))
            .or_else(|| self.classes.get(&c.class))
    }
}

fn simulated_failures(c: &Component) -> usize {
    c.events
        .iter()
        .filter(|e| e.kind == EventKind::Failure && e.source == EventSource::Simulated)
        .count()
}

/// Fits every class (all six, the literature curve where thin) and every vendor/model with
/// at least [`MIN_MODEL_FAILURES`] failures.
pub fn fits(components: &[Component], now: Timestamp) -> Fits {
    let mut by_class: BTreeMap<ComponentClass, (Vec<Life>, usize)> = ComponentClass::ALL
        .iter()
        .map(|c| (*c, (Vec::new(), 0)))
        .collect();
    let mut by_model: BTreeMap<(ComponentClass, String, String), (Vec<Life>, usize)> =
        BTreeMap::new();
    for c in components {
        let lives = c.lives(now);
        let sim = simulated_failures(c);
        let entry = by_class.entry(c.class).or_default();
        entry.0.extend_from_slice(&lives);
        entry.1 += sim;
        if !c.vendor.is_empty() && !c.model.is_empty() {
            let e = by_model
                .entry((c.class, c.vendor.clone(), c.model.clone()))
                .or_default();
            e.0.extend(lives);
            e.1 += sim;
        }
    }
    let mut out = Fits::default();
    for (class, (lives, sim)) in by_class {
        out.classes.insert(
            class,
            curve_of(class, None, &lives, sim, MIN_CLASS_FAILURES),
        );
    }
    for ((class, vendor, model), (lives, sim)) in by_model {
        if lives.iter().filter(|l| l.failed).count() >= MIN_MODEL_FAILURES {
            let key = (class, vendor.clone(), model.clone());
            out.model_index.insert(key, out.models.len());
            out.models.push(curve_of(
                class,
                Some((vendor, model)),
                &lives,
                sim,
                MIN_MODEL_FAILURES,
            ));
        }
    }
    out
}

/// The hazard rate h(t) = β/η (t/η)^(β−1), per running hour; at t ≤ 1 h the value at 1 h
/// (β < 1 is infinite at 0).
pub fn hazard(w: &Weibull, t: f64) -> f64 {
    let t = t.max(1.0);
    w.beta / w.eta * (t / w.eta).powf(w.beta - 1.0)
}

/// The probability that a part running `age` hours fails within the next `more` hours.
pub fn conditional_failure(w: &Weibull, age: f64, more: f64) -> f64 {
    // ln R ratio, stable far in the tail: 1 − exp(−((a+m)/η)^β + (a/η)^β).
    let (a, b) = (
        (age / w.eta).powf(w.beta),
        ((age + more) / w.eta).powf(w.beta),
    );
    let p = 1.0 - (a - b).exp();
    if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// Points of R(t) and h(t) from 0 to 2.5 η, for plotting: `[t hours, R, h per 10⁴ h]`.
pub fn sample(w: &Weibull, points: usize) -> Vec<[f64; 3]> {
    let end = 2.5 * w.eta;
    (0..=points)
        .map(|i| {
            let t = end * i as f64 / points.max(1) as f64;
            [t, w.reliability(t), hazard(w, t) * 1e4]
        })
        .collect()
}

/// A component's risk now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Risk {
    pub id: ComponentId,
    pub room: RoomId,
    pub equipment: EquipmentTag,
    pub class: ComponentClass,
    pub vendor: String,
    pub model: String,
    pub part_number: String,
    pub installed_at: Timestamp,
    pub age_hours: f64,
    pub hours_source: super::model::HoursSource,
    /// Failures per 10,000 running hours at its age.
    pub hazard: f64,
    pub p30: f64,
    pub p90: f64,
    pub curve_source: CurveSource,
    /// The optimal replacement age (β > 1 and a failure dearer than a plan), running hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimal_age_hours: Option<f64>,
    /// When it should be replaced (now when overdue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_replacement: Option<Timestamp>,
    pub overdue: bool,
    pub failures: usize,
}

const MS_PER_HOUR: f64 = 3_600_000.0;

/// The optimal replacement age on `curve` at its class's costs (running hours), if replacing
/// early pays.
pub fn optimal_age(curve: &Curve, costs: &Costs) -> Option<f64> {
    let cost = costs.of(curve.class);
    weibull::optimal_age(&curve.weibull(), cost.planned, cost.failure).map(|(t, _)| t)
}

/// The risk of `c` on curve `curve` at `now`.
pub fn risk(c: &Component, curve: &Curve, costs: &Costs, now: Timestamp) -> Risk {
    risk_at(c, curve, optimal_age(curve, costs), now)
}

/// [`risk`] with the curve's optimal age already known (it is the same for every part on
/// the curve, and the costliest step).
fn risk_at(c: &Component, curve: &Curve, optimal: Option<f64>, now: Timestamp) -> Risk {
    let w = curve.weibull();
    let age = c.age_hours(now);
    let running_per_day = 24.0 * c.duty;
    let (next, overdue) = match optimal {
        Some(t) if c.duty > 0.0 => {
            let due_ms = c.installed_at.as_millis() as f64 + t / c.duty * MS_PER_HOUR;
            let due = Timestamp::from_millis(due_ms.min(i64::MAX as f64 / 2.0) as i64);
            if due <= now {
                (Some(now), true)
            } else {
                (Some(due), false)
            }
        }
        _ => (None, false),
    };
    Risk {
        id: c.id.clone(),
        room: c.room.clone(),
        equipment: c.equipment.clone(),
        class: c.class,
        vendor: c.vendor.clone(),
        model: c.model.clone(),
        part_number: c.part_number.clone(),
        installed_at: c.installed_at,
        age_hours: age,
        hours_source: c.hours_source,
        hazard: hazard(&w, age) * 1e4,
        p30: conditional_failure(&w, age, 30.0 * running_per_day),
        p90: conditional_failure(&w, age, 90.0 * running_per_day),
        curve_source: curve.source,
        optimal_age_hours: optimal,
        next_replacement: next,
        overdue,
        failures: c.failures(),
    }
}

/// Every component's risk (in the order given).
pub fn risks(components: &[Component], fits: &Fits, costs: &Costs, now: Timestamp) -> Vec<Risk> {
    let mut optimal: HashMap<(ComponentClass, Option<String>, Option<String>), Option<f64>> =
        HashMap::new();
    components
        .iter()
        .filter_map(|c| {
            let curve = fits.for_component(c)?;
            let t = *optimal
                .entry((curve.class, curve.vendor.clone(), curve.model.clone()))
                .or_insert_with(|| optimal_age(curve, costs));
            Some(risk_at(c, curve, t, now))
        })
        .collect()
}

/// One month of the replacement plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanMonth {
    /// `2026-12` (local calendar).
    pub month: String,
    pub count: usize,
    pub by_class: BTreeMap<ComponentClass, usize>,
    /// Planned cost of the month's replacements.
    pub cost: f64,
}

/// The replacement plan of the next `months` months (this month first; overdue ones count in
/// it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub months: Vec<PlanMonth>,
    pub overdue: usize,
}

fn month_key(t: Timestamp, offset_minutes: i32) -> (i32, u32) {
    let (y, m, _) = Date::of(t, offset_minutes).parts();
    (y, m)
}

pub fn plan(risks: &[Risk], costs: &Costs, now: Timestamp, months: usize, offset: i32) -> Plan {
    let (mut y, mut m) = month_key(now, offset);
    let mut out = Vec::with_capacity(months);
    let mut index = HashMap::new();
    for i in 0..months {
        index.insert((y, m), i);
        out.push(PlanMonth {
            month: format!("{y:04}-{m:02}"),
            count: 0,
            by_class: BTreeMap::new(),
            cost: 0.0,
        });
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    let mut overdue = 0;
    for r in risks {
        let Some(due) = r.next_replacement else {
            continue;
        };
        overdue += usize::from(r.overdue);
        if let Some(&i) = index.get(&month_key(due, offset)) {
            let month = &mut out[i];
            month.count += 1;
            *month.by_class.entry(r.class).or_default() += 1;
            month.cost += costs.of(r.class).planned;
        }
    }
    Plan {
        months: out,
        overdue,
    }
}

/// The demand for one part number over the horizon, against stock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpareLine {
    pub part_number: String,
    pub class: ComponentClass,
    pub installed: usize,
    /// Expected failures (sum of each part's conditional failure probability until its
    /// planned replacement or the horizon).
    pub expected_failures: f64,
    pub planned: usize,
    /// ⌈expected failures + planned⌉.
    pub demand: u32,
    pub stock: u32,
    pub reorder: bool,
}

pub fn spares(
    components: &[Component],
    risks: &[Risk],
    fits: &Fits,
    stock: &BTreeMap<String, u32>,
    now: Timestamp,
    horizon_days: u32,
) -> Vec<SpareLine> {
    let horizon = Timestamp::from_millis(now.as_millis() + i64::from(horizon_days) * 86_400_000);
    let mut lines: BTreeMap<String, SpareLine> = BTreeMap::new();
    for (c, r) in components.iter().zip(risks) {
        let Some(curve) = fits.for_component(c) else {
            continue;
        };
        let key = stock_key(c);
        let line = lines.entry(key.clone()).or_insert_with(|| SpareLine {
            part_number: key.clone(),
            class: c.class,
            installed: 0,
            expected_failures: 0.0,
            planned: 0,
            demand: 0,
            stock: stock.get(&key).copied().unwrap_or(0),
            reorder: false,
        });
        line.installed += 1;
        let until = match r.next_replacement {
            Some(due) if due <= horizon => {
                line.planned += 1;
                due
            }
            _ => horizon,
        };
        let more = (until.as_millis() - now.as_millis()).max(0) as f64 / MS_PER_HOUR * c.duty;
        line.expected_failures += conditional_failure(&curve.weibull(), r.age_hours, more);
    }
    lines
        .into_values()
        .map(|mut l| {
            let need = (l.expected_failures + l.planned as f64).ceil();
            l.demand = if need.is_finite() {
                need.min(u32::MAX as f64) as u32
            } else {
                0
            };
            l.reorder = l.stock < l.demand;
            l
        })
        .collect()
}

/// The failure record of one vendor and model of a class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SupplierLine {
    pub class: ComponentClass,
    pub vendor: String,
    pub model: String,
    pub components: usize,
    pub failures: usize,
    pub simulated_failures: usize,
    pub run_hours: f64,
    /// Run hours per failure; absent with no failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtbf_hours: Option<f64>,
    /// Failures per component per 10,000 running hours.
    pub failure_rate: f64,
}

pub fn suppliers(components: &[Component], now: Timestamp) -> Vec<SupplierLine> {
    let mut lines: BTreeMap<(ComponentClass, String, String), SupplierLine> = BTreeMap::new();
    for c in components {
        let vendor = if c.vendor.is_empty() {
            "-".to_owned()
        } else {
            c.vendor.clone()
        };
        let model = if c.model.is_empty() {
            "-".to_owned()
        } else {
            c.model.clone()
        };
        let line = lines
            .entry((c.class, vendor.clone(), model.clone()))
            .or_insert_with(|| SupplierLine {
                class: c.class,
                vendor,
                model,
                components: 0,
                failures: 0,
                simulated_failures: 0,
                run_hours: 0.0,
                mtbf_hours: None,
                failure_rate: 0.0,
            });
        line.components += 1;
        line.failures += c.failures();
        line.simulated_failures += simulated_failures(c);
        line.run_hours += c.lives(now).iter().map(|l| l.hours).sum::<f64>();
    }
    lines
        .into_values()
        .map(|mut l| {
            if l.failures > 0 {
                l.mtbf_hours = Some(l.run_hours / l.failures as f64);
            }
            if l.run_hours > 0.0 {
                l.failure_rate = l.failures as f64 / l.run_hours * 1e4;
            }
            l
        })
        .collect()
}
