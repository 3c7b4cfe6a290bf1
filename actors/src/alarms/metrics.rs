//! Metrics of the rule engines and the alarms. Labels are bounded: rule ids come from the rule
//! set, severities are P1-P4, states and event kinds are fixed lists.

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
                    "cistern_alarms_active",
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
        })
    }
}
