//! Metrics of the rule engines and the alarms. Labels are bounded: rule ids come from the rule
//! set, severities are P1-P4, states and event kinds are fixed lists.

use cistern_schemas::Timestamp;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Counters, gauges and histograms of the alarm hosts.
#[derive(Clone, Debug)]
pub struct RuleMetrics {
    pub evaluations: IntCounter,
    pub eval_seconds: Histogram,
    pub activations: IntCounterVec,
    pub suppressed: IntCounterVec,
    pub sandbox_kills: IntCounterVec,
    pub script_errors: IntCounter,
    pub events: IntCounterVec,
    pub notifications: IntCounterVec,
    pub active: IntGaugeVec,
    pub reloads: IntCounterVec,
    /// Annunciations of the last ten minutes (the ISA-18.2 alarm-load figure).
    pub annunciations: Arc<AnnunciationWindow>,
}

/// Annunciations (alarms raised) counted per minute over the last ten minutes: the alarm rate
/// ISA-18.2 judges an operator's load by (about 1 per 10 min is acceptable, over 10 is a flood).
/// Counted in event time, so a backfill replayed from history lands in its own minutes.
#[derive(Debug, Default)]
pub struct AnnunciationWindow {
    /// (minute since the epoch, annunciations in it), oldest first.
    minutes: Mutex<VecDeque<(i64, u64)>>,
}

/// The window of [`AnnunciationWindow`], minutes.
const WINDOW_MIN: i64 = 10;

impl AnnunciationWindow {
    /// Counts an annunciation at `t`.
    pub fn record(&self, t: Timestamp) {
        let minute = t.0.div_euclid(60_000);
        let mut m = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        match m.iter_mut().rev().find(|(at, _)| *at == minute) {
            Some((_, n)) => *n += 1,
            None => {
                let at = m
                    .iter()
                    .rposition(|(at, _)| *at < minute)
                    .map_or(0, |i| i + 1);
                m.insert(at, (minute, 1));
            }
        }
        // Keep the window bounded even if the clock jumps: drop what no query can reach.
        let newest = m.back().map_or(minute, |(at, _)| *at);
        while m.front().is_some_and(|(at, _)| *at <= newest - WINDOW_MIN) {
            m.pop_front();
        }
    }

    /// Annunciations in the ten minutes up to `now`.
    pub fn last_10_min(&self, now: Timestamp) -> u64 {
        let (from, to) = (now.0 - WINDOW_MIN * 60_000, now.0);
        let m = self.minutes.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .filter(|(at, _)| {
                let start = at * 60_000;
                start >= from - 59_999 && start <= to
            })
            .map(|(_, n)| n)
            .sum()
    }
}

impl RuleMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered()?;
        registry.register(Box::new(m.evaluations.clone()))?;
        registry.register(Box::new(m.eval_seconds.clone()))?;
        registry.register(Box::new(m.activations.clone()))?;
        registry.register(Box::new(m.suppressed.clone()))?;
        registry.register(Box::new(m.sandbox_kills.clone()))?;
        registry.register(Box::new(m.script_errors.clone()))?;
        registry.register(Box::new(m.events.clone()))?;
        registry.register(Box::new(m.notifications.clone()))?;
        registry.register(Box::new(m.active.clone()))?;
        registry.register(Box::new(m.reloads.clone()))?;
        Ok(m)
    }

    /// Starts the series whose label values are known in advance at zero (every rule of
    /// `rules`, every severity and standing state), so that dashboards and alerts see a 0
    /// rather than nothing until the first event.
    pub fn init_series(&self, rules: &cistern_rules::RuleSet) {
        for rule in rules.rules() {
            let (id, sev) = (rule.meta.id.as_str(), rule.meta.severity.as_str());
            self.activations.with_label_values(&[id, sev]);
            self.sandbox_kills.with_label_values(&[id]);
        }
        for result in ["applied", "rejected"] {
            self.reloads.with_label_values(&[result]);
        }
        use cistern_rules::AlarmState as S;
        for sev in cistern_rules::Severity::ALL {
            for state in [
                S::Unacked,
                S::Acked,
                S::ReturnedUnacked,
                S::Shelved,
                S::Suppressed,
                S::OutOfService,
            ] {
                self.active
                    .with_label_values(&[sev.as_str(), state.as_str()]);
            }
        }
    }

    pub fn unregistered() -> Result<Self, prometheus::Error> {
        Ok(Self {
            evaluations: IntCounter::new(
                "cistern_rules_evaluations_total",
                "Rule evaluations (one rule on one device)",
            )?,
            eval_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "cistern_rules_evaluation_seconds",
                    "Time of one engine call of one room (all the rules a change touched)",
                )
                .buckets(vec![
                    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1,
                ]),
            )?,
            activations: IntCounterVec::new(
                Opts::new(
                    "cistern_rules_activations_total",
                    "Alarms raised (annunciated), by rule and severity",
                ),
                &["rule", "severity"],
            )?,
            suppressed: IntCounterVec::new(
                Opts::new(
                    "cistern_rules_suppressed_total",
                    "Activations recorded as suppressed by a parent alarm, by rule",
                ),
                &["rule"],
            )?,
            sandbox_kills: IntCounterVec::new(
                Opts::new(
                    "cistern_rules_sandbox_kills_total",
                    "Rules stopped by the sandbox (operations, depth, size limits) and disabled",
                ),
                &["rule"],
            )?,
            script_errors: IntCounter::new(
                "cistern_rules_script_errors_total",
                "Rule evaluations that failed with a script error (verdict unknown)",
            )?,
            events: IntCounterVec::new(
                Opts::new("cistern_alarm_events_total", "Alarm transitions, by kind"),
                &["kind"],
            )?,
            notifications: IntCounterVec::new(
                Opts::new(
                    "cistern_alarm_notifications_total",
                    "Notifications sent to the outbox, by type",
                ),
                &["type"],
            )?,
            active: IntGaugeVec::new(
                Opts::new(
                    "cistern_alarm_active",
                    "Alarms that are not normal, by severity and state",
                ),
                &["severity", "state"],
            )?,
            reloads: IntCounterVec::new(
                Opts::new(
                    "cistern_rules_reloads_total",
                    "Rule directory reloads, by result (applied, rejected)",
                ),
                &["result"],
            )?,
            annunciations: Arc::new(AnnunciationWindow::default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn the_window_counts_the_last_ten_minutes_only() {
        let w = AnnunciationWindow::default();
        let t0 = Timestamp(1_000 * MIN);
        for _ in 0..3 {
            w.record(t0);
        }
        w.record(Timestamp(t0.0 + 5 * MIN));
        // Out of order (a late event) lands in its own minute.
        w.record(Timestamp(t0.0 + 2 * MIN));
        assert_eq!(w.last_10_min(Timestamp(t0.0 + 5 * MIN)), 5);
        assert_eq!(w.last_10_min(Timestamp(t0.0 + 11 * MIN)), 2);
        assert_eq!(w.last_10_min(Timestamp(t0.0 + 30 * MIN)), 0);
        // Minutes older than the window are dropped as new ones arrive.
        w.record(Timestamp(t0.0 + 60 * MIN));
        assert_eq!(w.minutes.lock().unwrap().len(), 1);
    }
}
