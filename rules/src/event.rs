//! Alarm states and the event every transition produces.
//!
//! Every change of an alarm's state, and every escalation step, is an [`AlarmEvent`]: the host
//! sends them to the historian (never dropped) and to dashboards. Events are the audit trail
//! ISA-18.2 asks for (who acknowledged or shelved what, when, why), and the input of the KPI
//! computation in [`crate::kpi`].

use crate::ids::{AlarmKey, RuleId};
use crate::meta::{RuleAction, Severity};
use cistern_schemas::{DeviceId, Timestamp, ZoneId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The ISA-18.2 state of an alarm as an operator sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    Normal,
    /// Active, unacknowledged.
    Unacked,
    /// Active, acknowledged.
    Acked,
    /// Returned to normal, not yet acknowledged.
    ReturnedUnacked,
    /// Shelved by an operator (or auto-shelved for chattering) until an expiry.
    Shelved,
    /// Suppressed by design: active while a parent alarm is active.
    Suppressed,
    /// Removed from service (maintenance).
    OutOfService,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Normal => "normal",
            AlarmState::Unacked => "unacked",
            AlarmState::Acked => "acked",
            AlarmState::ReturnedUnacked => "returned_unacked",
            AlarmState::Shelved => "shelved",
            AlarmState::Suppressed => "suppressed",
            AlarmState::OutOfService => "out_of_service",
        }
    }

    /// Shown to an operator as needing attention.
    pub fn annunciated(self) -> bool {
        matches!(
            self,
            AlarmState::Unacked | AlarmState::Acked | AlarmState::ReturnedUnacked
        )
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The alarm became active and is annunciated.
    Raised,
    /// The condition returned to normal (after the off-delay).
    Cleared,
    Acknowledged,
    Shelved,
    /// Shelved automatically because it chattered.
    ChatterShelved,
    Unshelved,
    ShelveExpired,
    /// Active while a parent is active: recorded, not annunciated.
    Suppressed,
    /// The parent cleared while this alarm is still active: annunciated now.
    Unsuppressed,
    RemovedFromService,
    ReturnedToService,
    /// A latched alarm reset by a user.
    Reset,
    /// An escalation ladder step (unacknowledged too long).
    Escalated,
    /// Escalated because it recurred N times within a window.
    RecurrenceEscalated,
    /// The rule was stopped by the sandbox and disabled.
    RuleDisabled,
    /// The rule no longer exists after a reload: the alarm is dropped.
    RuleRemoved,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Raised => "raised",
            EventKind::Cleared => "cleared",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Shelved => "shelved",
            EventKind::ChatterShelved => "chatter_shelved",
            EventKind::Unshelved => "unshelved",
            EventKind::ShelveExpired => "shelve_expired",
            EventKind::Suppressed => "suppressed",
            EventKind::Unsuppressed => "unsuppressed",
            EventKind::RemovedFromService => "removed_from_service",
            EventKind::ReturnedToService => "returned_to_service",
            EventKind::Reset => "reset",
            EventKind::Escalated => "escalated",
            EventKind::RecurrenceEscalated => "recurrence_escalated",
            EventKind::RuleDisabled => "rule_disabled",
            EventKind::RuleRemoved => "rule_removed",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value shown with an alarm: the measured value, a contact, or a list of names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FactValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl FactValue {
    /// Converts a script value; `()` and values of other types give `None`.
    pub(crate) fn from_dynamic(d: &rhai::Dynamic) -> Option<FactValue> {
        if let Ok(b) = d.as_bool() {
            return Some(FactValue::Bool(b));
        }
        if let Ok(f) = d.as_float() {
            return Some(FactValue::Number(f));
        }
        if let Ok(i) = d.as_int() {
            return Some(FactValue::Number(i as f64));
        }
        if d.is_string() {
            return Some(FactValue::Text(d.to_string()));
        }
        if d.is_array() {
            let parts: Vec<String> = d
                .clone()
                .into_array()
                .unwrap_or_default()
                .iter()
                .filter_map(FactValue::from_dynamic)
                .map(|v| v.to_string())
                .collect();
            return Some(FactValue::Text(parts.join(", ")));
        }
        None
    }

    /// Formats with a fixed number of decimals when a number.
    pub fn format(&self, decimals: Option<usize>) -> String {
        match (self, decimals) {
            (FactValue::Number(v), Some(d)) => format!("{v:.d$}"),
            _ => self.to_string(),
        }
    }
}

impl fmt::Display for FactValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactValue::Bool(b) => write!(f, "{}", u8::from(*b)),
            FactValue::Number(v) => {
                // Up to three decimals, trailing zeros trimmed: 0.452, 12, 0.05.
                let s = format!("{v:.3}");
                let s = if s.contains('.') {
                    s.trim_end_matches('0').trim_end_matches('.')
                } else {
                    &s
                };
                f.write_str(if s == "-0" { "0" } else { s })
            }
            FactValue::Text(t) => f.write_str(t),
        }
    }
}

/// Where an alarm lives: a device of a room, or a supply zone (cross-room correlation).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmSource {
    Device(DeviceId),
    Zone(ZoneId),
}

impl fmt::Display for AlarmSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlarmSource::Device(d) => write!(f, "{d}"),
            AlarmSource::Zone(z) => write!(f, "zone:{z}"),
        }
    }
}

/// One transition of one alarm (or one escalation step), with everything an audit needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmEvent {
    pub time: Timestamp,
    pub source: AlarmSource,
    pub rule: RuleId,
    pub key: AlarmKey,
    pub kind: EventKind,
    pub from: AlarmState,
    pub to: AlarmState,
    /// The alarm's severity after this event (escalation raises it).
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<FactValue>,
    pub message: String,
    /// The message in Chinese (the rule's `message_zh`, or `message` when it has none; empty
    /// in events stored before this field existed).
    #[serde(default)]
    pub message_zh: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The parent alarm that suppresses this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<AlarmKey>,
    /// The first alarm of a burst in its room.
    #[serde(default)]
    pub first_out: bool,
    /// Escalation ladder step reached (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_step: Option<u8>,
    /// Who was notified by this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    /// What the host should do (on `raised`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<RuleAction>,
}

impl fmt::Display for AlarmEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {}→{} {}",
            self.time, self.source, self.key, self.kind, self.from, self.to, self.severity
        )?;
        if let Some(p) = &self.parent {
            write!(f, " parent={p}")?;
        }
        if self.first_out {
            f.write_str(" first_out")?;
        }
        if let Some(s) = self.escalation_step {
            write!(f, " step={s}")?;
        }
        if let Some(n) = &self.notify {
            write!(f, " notify={n}")?;
        }
        if let Some(u) = &self.user {
            write!(f, " user={u}")?;
        }
        if !self.message.is_empty() {
            write!(f, " \"{}\"", self.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_compactly() {
        assert_eq!(FactValue::Number(0.45).to_string(), "0.45");
        assert_eq!(FactValue::Number(12.0).to_string(), "12");
        assert_eq!(FactValue::Number(-0.0001).to_string(), "0");
        assert_eq!(FactValue::Number(2.0 / 3.0).format(Some(1)), "0.7");
        assert_eq!(FactValue::Bool(true).to_string(), "1");
    }
}
