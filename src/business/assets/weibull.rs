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
//!
//! [`fit_with_bounds`] adds 95 % confidence bounds the way `Fit_Weibull_2P` does: the
//! covariance is the inverse of the observed Fisher information (minus the log-likelihood's
//! Hessian at the MLE, here in closed form), and the bounds are log-transformed
//! (θ·exp(±z·SE/θ)) so that they stay positive. [`Sample::from_csv`] reads the `hours,failed`
//! files of `cistern reliability fit`.

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

/// A two-sided confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// A maximum-likelihood fit with its 95 % confidence bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fitted {
    pub curve: Weibull,
    pub beta: Interval,
    pub eta: Interval,
    pub failures: usize,
    pub censored: usize,
}

/// The standard normal quantile of a two-sided 95 % interval (scipy's `-norm.ppf(0.025)`).
const Z95: f64 = 1.959_963_984_540_054;

/// [`fit`] with 95 % bounds on β and η from the observed Fisher information (see the module
/// doc). The bounds are absent (the fit is still given) when the information matrix is not
/// positive definite, which a fit that converged does not produce.
pub fn fit_with_bounds(failures: &[f64], censored: &[f64]) -> Result<Fitted, FitError> {
    let curve = fit(failures, censored)?;
    let (beta, eta) = bounds(&curve, failures, censored).ok_or(FitError::Degenerate)?;
    Ok(Fitted {
        curve,
        beta,
        eta,
        failures: failures.len(),
        censored: censored.len(),
    })
}

/// The 95 % bounds on β and η at `curve` (the MLE of the sample), or `None` when the
/// information matrix is singular.
fn bounds(curve: &Weibull, failures: &[f64], censored: &[f64]) -> Option<(Interval, Interval)> {
    let (b, e) = (curve.beta, curve.eta);
    let r = failures.len() as f64;
    // Over all units: S0 = Σz^β, S1 = Σz^β ln z, S2 = Σz^β (ln z)², z = t/η.
    let (mut s0, mut s1, mut s2) = (0.0, 0.0, 0.0);
    for t in failures.iter().chain(censored) {
        let l = (t / e).ln();
        let p = (b * l).exp();
        s0 += p;
        s1 += p * l;
        s2 += p * l * l;
    }
    // Second derivatives of the log-likelihood
    // ℓ = Σ_f [ln β − β ln η + (β − 1) ln t] − Σ_all (t/η)^β.
    let d_bb = -r / (b * b) - s2;
    let d_ee = r * b / (e * e) - b * (b + 1.0) / (e * e) * s0;
    let d_be = -r / e + s0 / e + b / e * s1;
    // Information = −Hessian; its inverse is the covariance.
    let (i_bb, i_ee, i_be) = (-d_bb, -d_ee, -d_be);
    let det = i_bb * i_ee - i_be * i_be;
    if !(det.is_finite() && det > 0.0 && i_bb > 0.0) {
        return None;
    }
    let var_b = i_ee / det;
    let var_e = i_bb / det;
    let interval = |theta: f64, var: f64| {
        let k = (Z95 * var.sqrt() / theta).exp();
        Interval {
            lower: theta / k,
            upper: theta * k,
        }
    };
    let (bi, ei) = (interval(b, var_b), interval(e, var_e));
    [bi.lower, bi.upper, ei.lower, ei.upper]
        .iter()
        .all(|v| v.is_finite() && *v > 0.0)
        .then_some((bi, ei))
}

/// A life sample: times to failure and ages of the survivors, in hours.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub failures: Vec<f64>,
    pub censored: Vec<f64>,
}

/// A bad line of a sample file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowProblem {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    pub message: String,
}

/// Why a sample file is refused: every bad line, or a bad header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    #[error("the first line must be the header `hours,failed` (got {0:?})")]
    Header(String),
    #[error("{} bad rows: {}", .0.len(), .0.iter().map(|p| format!("line {}: {}", p.line, p.message)).collect::<Vec<_>>().join("; "))]
    Rows(Vec<RowProblem>),
}

impl Sample {
    /// Reads `hours,failed` lines (failed 1 or 0) after the header; blank lines are skipped,
    /// every other bad line is reported with its number and nothing is returned.
    pub fn from_csv(text: &str) -> Result<Self, SampleError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
        let columns: Vec<String> = header
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if columns != ["hours", "failed"] {
            return Err(SampleError::Header(header.chars().take(80).collect()));
        }
        let mut sample = Sample::default();
        let mut problems = Vec::new();
        for (i, line) in lines {
            let line_no = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let bad = |m: String| RowProblem {
                line: line_no,
                message: m,
            };
            if cells.len() != 2 {
                problems.push(bad(format!("expected 2 columns, got {}", cells.len())));
                continue;
            }
            let hours = match cells[0].parse::<f64>() {
                Ok(h) if h.is_finite() && h > 0.0 => h,
                Ok(h) => {
                    problems.push(bad(format!("hours must be positive (got {h})")));
                    continue;
                }
                Err(_) => {
                    problems.push(bad(format!("hours is not a number: {:?}", cells[0])));
                    continue;
                }
            };
            match cells[1] {
                "1" => sample.failures.push(hours),
                "0" => sample.censored.push(hours),
                other => problems.push(bad(format!("failed must be 1 or 0 (got {other:?})"))),
            }
        }
        if problems.is_empty() {
            Ok(sample)
        } else {
            Err(SampleError::Rows(problems))
        }
    }
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

    /// The committed data sets of tests/data/weibull/ and PyPI reliability 0.9.0's answer on
    /// each, computed once with
    /// `Fit_Weibull_2P(failures=f, right_censored=c, method="MLE")` (β, its 95 % bounds, η
    /// (reliability's α), its bounds). The last three were drawn (numpy seed 21) from
    /// wear-out, random and infant-mortality curves with uniform censoring.
    const REFERENCE: [(&str, [f64; 6]); 5] = [
        (
            "parts_small",
            [
                1.722698, 0.912705, 3.251533, 7755.8765, 4986.3636, 12063.6248,
            ],
        ),
        (
            "seals_heavy_censoring",
            [
                2.926231, 1.546086, 5.538387, 48705.2658, 36384.7153, 65197.7868,
            ],
        ),
        (
            "pumps_wearout",
            [
                1.587029, 1.099574, 2.290580, 36111.9768, 26835.0521, 48595.9508,
            ],
        ),
        (
            "transducers_random",
            [
                0.811498, 0.526240, 1.251386, 27353.7417, 14361.2520, 52100.4145,
            ],
        ),
        (
            "bearings_infant",
            [
                0.382330,
                0.241334,
                0.605701,
                41808.8879,
                9863.5734,
                177216.0088,
            ],
        ),
    ];

    #[test]
    fn fits_and_bounds_match_the_reference_on_the_committed_data_sets() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/weibull");
        for (name, [b, b_lo, b_hi, e, e_lo, e_hi]) in REFERENCE {
            let text = std::fs::read_to_string(dir.join(format!("{name}.csv"))).unwrap();
            let s = Sample::from_csv(&text).unwrap();
            assert!(!s.censored.is_empty(), "{name} has censoring");
            let f = fit_with_bounds(&s.failures, &s.censored).unwrap();
            close(f.curve.beta, b, 1e-4);
            close(f.curve.eta, e, 1e-4);
            close(f.beta.lower, b_lo, 1e-3);
            close(f.beta.upper, b_hi, 1e-3);
            close(f.eta.lower, e_lo, 1e-3);
            close(f.eta.upper, e_hi, 1e-3);
        }
    }

    #[test]
    fn a_sample_file_is_read_or_refused_with_line_numbers() {
        let s = Sample::from_csv("\u{feff}hours,failed\n100,1\n\n250.5,0\n").unwrap();
        assert_eq!(s.failures, vec![100.0]);
        assert_eq!(s.censored, vec![250.5]);
        assert!(matches!(
            Sample::from_csv("t,f\n1,1\n"),
            Err(SampleError::Header(_))
        ));
        let Err(SampleError::Rows(rows)) =
            Sample::from_csv("hours,failed\n100,1\nx,1\n-5,0\n7,2\n8\n")
        else {
            panic!("refused")
        };
        let lines: Vec<usize> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6]);
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
