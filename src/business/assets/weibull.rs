//! Parts lifecycle on failure curves (DOMAIN.md §8): a part class's times to failure follow a
//! two-parameter Weibull F(t) = 1 − exp(−(t/η)^β). [`fit`] estimates β and η by maximum
//! likelihood from the failures *and* the survivors still running (right-censored: dropping
//! them would make every part look short-lived); [`optimal_age`] says when replacing a part
//! before it fails costs least per hour of service, or that it never pays (β ≤ 1: failures are
//! random or infant, so an old part is no worse than a new one; or a failure costs no more than
//! a planned replacement).
//!
//! The censored MLE reduces to one equation in β (CRATES.md):
//! Σtᵢ^β ln tᵢ / Σtᵢ^β − 1/β − (1/r) Σ_failures ln tᵢ = 0 over all units, increasing in β,
//! solved by bisection; then η = (Σtᵢ^β / r)^(1/β). Times are scaled by the longest before
//! raising them to β, so that no power overflows. Reference values from PyPI `reliability`
//! 0.9.0 (`Fit_Weibull_2P`, `optimal_replacement_time`) are in the tests.

/// A fitted or assumed failure curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weibull {
    /// Shape: < 1 infant mortality, 1 random, > 1 wear-out.
    pub beta: f64,
    /// Scale (characteristic life), in the times' unit (hours): 63.2 % have failed by then.
    pub eta: f64,
}

/// Why a fit is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("a fit needs at least two failures (got {0})")]
    TooFewFailures(usize),
    #[error("times must be positive and finite (got {0})")]
    BadTime(f64),
    #[error("every failure happened at the same time: the shape cannot be estimated")]
    Degenerate,
}

impl Weibull {
    /// The share that survives past `t`.
    pub fn reliability(&self, t: f64) -> f64 {
        (-(t / self.eta).powf(self.beta)).exp()
    }

    /// The share that has failed by `t`.
    pub fn cdf(&self, t: f64) -> f64 {
        1.0 - self.reliability(t)
    }
}

/// The maximum-likelihood curve of `failures` (times to failure) and `censored` (ages of the
/// units still running, or removed unfailed).
pub fn fit(failures: &[f64], censored: &[f64]) -> Result<Weibull, FitError> {
    if let Some(&bad) = failures
        .iter()
        .chain(censored)
        .find(|t| !(t.is_finite() && **t > 0.0))
    {
        return Err(FitError::BadTime(bad));
    }
    let r = failures.len();
    if r < 2 {
        return Err(FitError::TooFewFailures(r));
    }
    let first = failures[0];
    if failures
        .iter()
        .all(|t| (t - first).abs() <= f64::EPSILON * first)
    {
        return Err(FitError::Degenerate);
    }
    let all: Vec<f64> = failures.iter().chain(censored).copied().collect();
    let max = all.iter().copied().fold(0.0_f64, f64::max);
    let scaled: Vec<(f64, f64)> = all.iter().map(|t| (t / max, t.ln())).collect();
    let mean_ln_failure = failures.iter().map(|t| t.ln()).sum::<f64>() / r as f64;
    // Σ s^β ln t / Σ s^β: max^β cancels between the sums.
    let g = |beta: f64| {
        let (mut num, mut den) = (0.0, 0.0);
        for (s, ln_t) in &scaled {
            let p = s.powf(beta);
            num += p * ln_t;
            den += p;
        }
        num / den - 1.0 / beta - mean_ln_failure
    };
    let (mut lo, mut hi) = (1e-3, 200.0);
    if g(lo) > 0.0 || g(hi) < 0.0 {
        return Err(FitError::Degenerate);
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if g(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 * hi {
            break;
        }
    }
    let beta = 0.5 * (lo + hi);
    let sum: f64 = scaled.iter().map(|(s, _)| s.powf(beta)).sum();
    let eta = max * (sum / r as f64).powf(1.0 / beta);
    Ok(Weibull { beta, eta })
}

/// The best age to replace a part: `(T*, cost per unit time at T*)`, minimising
/// C(T) = [Cp·R(T) + Cf·(1 − R(T))] / ∫₀ᵀ R(t) dt, where `planned` (Cp) is the cost of a
/// replacement before failure and `failure` (Cf) of one after. `None` when replacing early never
/// pays: β ≤ 1, Cf ≤ Cp, or the cost keeps falling as T grows (run to failure).
pub fn optimal_age(curve: &Weibull, planned: f64, failure: f64) -> Option<(f64, f64)> {
    if !(curve.beta > 1.0 && failure > planned && planned > 0.0 && curve.eta > 0.0) {
        return None;
    }
    // The cost on a grid out to 5 η (R is below 1e-10 there for β > 1.2), with ∫R summed
    // along (Simpson per cell), then refined by golden section inside the best cell's
    // neighbours.
    const CELLS: usize = 4_000;
    let end = 5.0 * curve.eta;
    let h = end / CELLS as f64;
    let cost = |t: f64, integral: f64| {
        let rel = curve.reliability(t);
        (planned * rel + failure * (1.0 - rel)) / integral
    };
    let simpson = |a: f64, b: f64| {
        (b - a) / 6.0
            * (curve.reliability(a) + 4.0 * curve.reliability(0.5 * (a + b)) + curve.reliability(b))
    };
    let mut integral = 0.0;
    let mut best = (f64::INFINITY, 0);
    let mut integrals = Vec::with_capacity(CELLS + 1);
    integrals.push(0.0);
    for k in 1..=CELLS {
        let t = k as f64 * h;
        integral += simpson(t - h, t);
        integrals.push(integral);
        let c = cost(t, integral);
        if c < best.0 {
            best = (c, k);
        }
    }
    if best.1 >= CELLS {
        return None;
    }
    let k = best.1;
    let (mut a, mut b) = ((k - 1) as f64 * h, (k + 1) as f64 * h);
    let base = integrals[k - 1];
    let at = |t: f64| cost(t, base + simpson((k - 1) as f64 * h, t));
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..100 {
        let (x1, x2) = (b - ratio * (b - a), a + ratio * (b - a));
        if at(x1) < at(x2) {
            b = x2;
        } else {
            a = x1;
        }
    }
    let t = 0.5 * (a + b);
    Some((t, at(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        assert!(
            ((got - want) / want).abs() <= rel,
            "got {got}, want {want} (±{rel})"
        );
    }

    #[test]
    fn the_censored_fit_matches_the_reference_implementation() {
        // PyPI reliability 0.9.0: Fit_Weibull_2P(failures, right_censored, method='MLE').
        let w = fit(
            &[1200.0, 2300.0, 3100.0, 4500.0, 5200.0, 6100.0, 7800.0],
            &[3000.0, 5000.0, 8000.0, 8000.0, 9000.0],
        )
        .unwrap();
        close(w.beta, 1.722698, 1e-5);
        close(w.eta, 7755.876499, 1e-5);
        let mut censored = vec![20_000.0; 5];
        censored.extend([45_000.0; 4]);
        let w = fit(
            &[16_000.0, 21_000.0, 28_000.0, 33_000.0, 41_000.0, 52_000.0],
            &censored,
        )
        .unwrap();
        close(w.beta, 2.926231, 1e-5);
        close(w.eta, 48_705.265764, 1e-5);
        close(w.cdf(w.eta), 1.0 - (-1.0f64).exp(), 1e-12);
    }

    #[test]
    fn the_best_replacement_age_matches_the_reference_and_never_pays_without_wear_out() {
        // reliability 0.9.0: optimal_replacement_time(cost_PM, cost_CM, alpha, beta, q=0).
        let seal = Weibull {
            beta: 1.4,
            eta: 25_000.0,
        };
        let (t, c) = optimal_age(&seal, 1.0, 5.0).unwrap();
        close(t, 19_735.210, 1e-4);
        close(c, 0.000203778, 1e-4);
        let wear = Weibull {
            beta: 2.5,
            eta: 40_000.0,
        };
        let (t, c) = optimal_age(&wear, 2_000.0, 12_000.0).unwrap();
        close(t, 18_002.650, 1e-4);
        close(c, 0.188720451, 1e-4);
        let random = Weibull {
            beta: 1.0,
            eta: 20_000.0,
        };
        assert_eq!(optimal_age(&random, 1.0, 50.0), None, "β = 1");
        assert_eq!(
            optimal_age(&wear, 12_000.0, 2_000.0),
            None,
            "failure cheaper"
        );
    }

    #[test]
    fn bad_samples_are_refused_with_the_reason() {
        assert_eq!(fit(&[100.0], &[50.0]), Err(FitError::TooFewFailures(1)));
        assert_eq!(fit(&[100.0, -1.0], &[]), Err(FitError::BadTime(-1.0)));
        assert!(matches!(
            fit(&[100.0, f64::NAN], &[]),
            Err(FitError::BadTime(_))
        ));
        assert_eq!(fit(&[100.0, 100.0], &[300.0]), Err(FitError::Degenerate));
    }
}
