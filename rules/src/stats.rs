//! Counters of one engine (or of many, merged): the host exports them to Prometheus as
//! `cistern_rules_*` metrics. Labels stay bounded: rule ids come from the rule set, severities
//! are P1-P4.

use crate::ids::RuleId;
use serde::Serialize;
use std::collections::BTreeMap;

/// Counters of one rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    pub evaluations: u64,
    pub eval_nanos: u64,
    /// Raised (annunciated) activations.
    pub activations: u64,
    /// Activations recorded as suppressed by a parent.
    pub suppressed: u64,
    /// Evaluations whose verdict was unknown (bad, stale or missing input).
    pub unknown: u64,
    pub script_errors: u64,
    pub sandbox_kills: u64,
}

impl RuleStats {
    fn add(&mut self, o: &RuleStats) {
        self.evaluations += o.evaluations;
        self.eval_nanos += o.eval_nanos;
        self.activations += o.activations;
        self.suppressed += o.suppressed;
        self.unknown += o.unknown;
        self.script_errors += o.script_errors;
        self.sandbox_kills += o.sandbox_kills;
    }
}

/// Counters of an engine: totals, by severity (P1..P4) and by rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    pub evaluations: u64,
    pub eval_nanos: u64,
    /// Raised activations by severity at raise: index 0 = P1 … 3 = P4.
    pub activations_by_severity: [u64; 4],
    pub suppressed: u64,
    pub unknown: u64,
    pub script_errors: u64,
    pub sandbox_kills: u64,
    pub per_rule: BTreeMap<RuleId, RuleStats>,
}

impl EngineStats {
    /// Adds another engine's counters (a node sums its rooms).
    pub fn merge(&mut self, o: &EngineStats) {
        self.evaluations += o.evaluations;
        self.eval_nanos += o.eval_nanos;
        for (a, b) in self
            .activations_by_severity
            .iter_mut()
            .zip(o.activations_by_severity)
        {
            *a += b;
        }
        self.suppressed += o.suppressed;
        self.unknown += o.unknown;
        self.script_errors += o.script_errors;
        self.sandbox_kills += o.sandbox_kills;
        for (id, s) in &o.per_rule {
            self.per_rule.entry(id.clone()).or_default().add(s);
        }
    }
}
