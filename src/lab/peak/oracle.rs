//! B3, the perfect-forecast oracle: a linear programme per district that knows every tank's
//! true demand, the direct demand and the hydraulics in advance.
//!
//! Rolled daily with a day of lookahead: each morning at 00:00 it solves the next 48 h at
//! 15-min resolution and executes the first 24 h in the simulator, then re-solves from the
//! levels the physics actually produced. A single LP over the 28 scored days would be exact
//! but has ~200,000 variables per district; the 48-h window is the usual receding-horizon
//! compromise and loses little because tanks turn over within a day.
//!
//! Per window: variables u[i,t] ∈ [0, cap_i] (inflow, m³/h) and V[i,t] ∈ [floor_i, top_i]
//! (volume, m³), V[i,t] = V[i,t−1] + ¼(u[i,t] − d[i,t]); P1, P2 ≥ direct[t] + Σ_i u[i,t] over
//! the first and second day; minimise 10·max(P1, P2) + P1 + P2 + ε·tariff cost. floor_i is the
//! hard minimum plus the fire reserve; top_i the operating maximum or the same water-age cap
//! the platform's tanks respect; cap_i the inlet's physical capacity at the mains pressure of
//! a flattened district draw (so the plan is one the hydraulics can deliver).
//!
//! Solver: `microlp` (pure Rust simplex, used for the oracle only).

use super::sim::{DistrictModel, SLOT_H};
use cistern_actors::district::Tariff;
use microlp::{ComparisonOp, OptimizationDirection, Problem, Variable};

/// Why a window could not be solved.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    #[error("district {district}, slot {slot}: the LP solver failed: {reason}")]
    Solver {
        district: usize,
        slot: usize,
        reason: String,
    },
}

/// Inflow schedule (m³/h per tank) for slots `start .. start + execute` from the volumes now.
pub fn solve_window(
    model: &DistrictModel,
    tariff: &Tariff,
    start: usize,
    execute: usize,
    lookahead: usize,
    volumes: &[f64],
    water_age: bool,
) -> Result<Vec<Vec<f64>>, OracleError> {
    let end = (start + execute + lookahead).min(model.slots());
    let h = end - start;
    let n = model.rooms.len();
    let total_mean: f64 = model.rooms.iter().map(|r| r.mean_m3h).sum::<f64>()
        + model.direct.iter().sum::<f64>() / model.direct.len().max(1) as f64;
    let p = model.pressure_m(1.15 * total_mean);
    let mut problem = Problem::new(OptimizationDirection::Minimize);
    let pmax = problem.add_var(10.0, (0.0, f64::INFINITY));
    let p1 = problem.add_var(1.0, (0.0, f64::INFINITY));
    let p2 = problem.add_var(1.0, (0.0, f64::INFINITY));
    problem.add_constraint([(pmax, 1.0), (p1, -1.0)], ComparisonOp::Ge, 0.0);
    problem.add_constraint([(pmax, 1.0), (p2, -1.0)], ComparisonOp::Ge, 0.0);
    let mut u: Vec<Vec<Variable>> = Vec::with_capacity(n);
    for (i, room) in model.rooms.iter().enumerate() {
        let cap = room.inlet_k
            * (p - room.elevation_m - room.spec.max_level_m)
                .max(0.0)
                .sqrt();
        // A sliver above the floor, so that solver tolerances never read as a violation.
        let floor = room.spec.volume_m3(room.spec.floor_level_m() + 0.02);
        let mut top = room.spec.volume_m3(room.spec.max_level_m);
        if water_age {
            top = top
                .min(room.spec.age_limit_h * 0.8 * room.mean_m3h)
                .max(floor + 1.0);
        }
        let v0 = volumes[i];
        let top = top.max(v0);
        let mut row = Vec::with_capacity(h);
        let mut prev: Option<Variable> = None;
        for t in 0..h {
            let slot = start + t;
            let price = tariff.price(slot as u32);
            let ui = problem.add_var(1e-4 * price * SLOT_H, (0.0, cap));
            let vi = problem.add_var(0.0, (floor.min(v0), top));
            let d = room.demand[slot] * SLOT_H;
            match prev {
                None => {
                    problem.add_constraint([(vi, 1.0), (ui, -SLOT_H)], ComparisonOp::Eq, v0 - d)
                }
                Some(pv) => problem.add_constraint(
                    [(vi, 1.0), (pv, -1.0), (ui, -SLOT_H)],
                    ComparisonOp::Eq,
                    -d,
                ),
            }
            prev = Some(vi);
            row.push(ui);
        }
        u.push(row);
    }
    for t in 0..h {
        let pv = if t < execute { p1 } else { p2 };
        let mut expr: Vec<(Variable, f64)> = Vec::with_capacity(n + 1);
        expr.push((pv, 1.0));
        for row in &u {
            expr.push((row[t], -1.0));
        }
        problem.add_constraint(expr.as_slice(), ComparisonOp::Ge, model.direct[start + t]);
    }
    let solution = problem
        .solve()
        .map_err(|e| OracleError::Solver {
            district: model.index,
            slot: start,
            reason: e.to_string(),
        })?
        .into_solution()
        .map_err(|e| OracleError::Solver {
            district: model.index,
            slot: start,
            reason: format!("{e:?}"),
        })?;
    Ok(u.iter()
        .map(|row| {
            row.iter()
                .take(execute.min(h))
                .map(|&v| solution.var_value(v).max(0.0))
                .collect()
        })
        .collect())
}
