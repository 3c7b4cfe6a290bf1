//! Reading the node's `/metrics` during the benchmark: counters summed over their labels, and
//! histograms as cumulative buckets from which differences between two scrapes give
//! percentiles of the window alone.

use super::BenchError;
use std::collections::HashMap;
use std::time::Duration;

/// One scrape: every sample line's value summed by metric name (labels dropped), and the
/// buckets of each histogram (`le` → cumulative count).
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    pub sums: HashMap<String, f64>,
    pub buckets: HashMap<String, Vec<(f64, f64)>>,
}

impl Scrape {
    pub fn get(&self, name: &str) -> f64 {
        self.sums.get(name).copied().unwrap_or(0.0)
    }

    /// Parses the text exposition format (what this benchmark needs of it).
    pub fn parse(text: &str) -> Self {
        let mut s = Scrape::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            if let Some(base) = name.strip_suffix("_bucket") {
                let le = labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("le=\""))
                    .map(|v| v.trim_end_matches('"'));
                let le = match le {
                    Some("+Inf") => f64::INFINITY,
                    Some(v) => match v.parse() {
                        Ok(v) => v,
                        Err(_) => continue,
                    },
                    None => continue,
                };
                let buckets = s.buckets.entry(base.to_owned()).or_default();
                match buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, c)) => *c += value,
                    None => buckets.push((le, value)),
                }
            } else {
                *s.sums.entry(name.to_owned()).or_default() += value;
            }
        }
        for b in s.buckets.values_mut() {
            b.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        s
    }
}

/// Fetches and parses `base/metrics`.
pub fn scrape(agent: &ureq::Agent, base: &str) -> Result<Scrape, BenchError> {
    let text = agent
        .get(format!("{base}/metrics"))
        .call()
        .and_then(|mut r| r.body_mut().read_to_string())
        .map_err(|e| BenchError::Scrape(e.to_string()))?;
    Ok(Scrape::parse(&text))
}

/// An HTTP agent with a timeout, for scrapes.
pub fn agent() -> ureq::Agent {
    agent_with(None)
}

/// [`agent`], with this TLS configuration for https:// URLs.
pub fn agent_with(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(true);
    if let Some(tls) = tls {
        config = config.tls_config(tls);
    }
    config.build().into()
}

/// Percentiles of what a histogram gained between two scrapes, over the observations at or
/// below `upto` (larger ones are counted apart, as `beyond`).
#[derive(Clone, Debug, PartialEq)]
pub struct WindowHistogram {
    pub count: f64,
    pub beyond: f64,
    pub p50: f64,
    pub p99: f64,
    /// The upper bound of the highest bucket that gained an observation (at or below `upto`).
    pub max_bound: f64,
}

impl WindowHistogram {
    pub fn between(before: &Scrape, after: &Scrape, name: &str, upto: f64) -> Option<Self> {
        let after_b = after.buckets.get(name)?;
        let empty = Vec::new();
        let before_b = before.buckets.get(name).unwrap_or(&empty);
        let delta: Vec<(f64, f64)> = after_b
            .iter()
            .map(|(le, c)| {
                let was = before_b
                    .iter()
                    .find(|(b, _)| b == le)
                    .map_or(0.0, |(_, c)| *c);
                (*le, c - was)
            })
            .collect();
        let within: Vec<(f64, f64)> = delta
            .iter()
            .copied()
            .filter(|(le, _)| *le <= upto)
            .collect();
        let count = within.last().map_or(0.0, |(_, c)| *c);
        let total = delta.last().map_or(0.0, |(_, c)| *c);
        let quantile = |q: f64| {
            let rank = q * count;
            let mut lower = (0.0, 0.0);
            for &(le, c) in &within {
                if c >= rank && c > 0.0 {
                    // Linear inside the bucket, as Prometheus's histogram_quantile does.
                    let (lo_le, lo_c) = lower;
                    let span = c - lo_c;
                    let frac = if span > 0.0 {
                        (rank - lo_c) / span
                    } else {
                        1.0
                    };
                    return lo_le + (le - lo_le) * frac.clamp(0.0, 1.0);
                }
                lower = (le, c);
            }
            f64::NAN
        };
        let mut max_bound = 0.0;
        let mut prev = 0.0;
        for &(le, c) in &within {
            if c > prev {
                max_bound = le;
            }
            prev = c;
        }
        Some(Self {
            count,
            beyond: total - count,
            p50: quantile(0.5),
            p99: quantile(0.99),
            max_bound,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x_total x\n# TYPE x_total counter\nx_total{kind=\"a\"} 3\nx_total{kind=\"b\"} 4\n\
        lag_bucket{le=\"0.1\"} 10\nlag_bucket{le=\"0.5\"} 90\nlag_bucket{le=\"1\"} 100\nlag_bucket{le=\"+Inf\"} 105\n\
        lag_sum 20\nlag_count 105\n";

    #[test]
    fn counters_sum_over_labels_and_buckets_are_cumulative() {
        let s = Scrape::parse(TEXT);
        assert_eq!(s.get("x_total"), 7.0);
        assert_eq!(s.get("lag_count"), 105.0);
        assert_eq!(s.buckets["lag"].len(), 4);
    }

    #[test]
    fn window_percentiles_interpolate_and_keep_the_tail_apart() {
        let before = Scrape::default();
        let after = Scrape::parse(TEXT);
        let w = WindowHistogram::between(&before, &after, "lag", 1.0).unwrap();
        assert_eq!(w.count, 100.0);
        assert_eq!(w.beyond, 5.0);
        // 50th of 100: inside (0.1, 0.5], 40 of its 80.
        assert!((w.p50 - 0.3).abs() < 1e-9, "{}", w.p50);
        // 99th: inside (0.5, 1], 9 of its 10.
        assert!((w.p99 - 0.95).abs() < 1e-9, "{}", w.p99);
        assert_eq!(w.max_bound, 1.0);
        // A second scrape with nothing new: an empty window.
        let w = WindowHistogram::between(&after, &after, "lag", 1.0).unwrap();
        assert_eq!(w.count, 0.0);
        assert!(w.p50.is_nan());
    }
}
