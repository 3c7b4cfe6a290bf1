//! The persistent record of one alarm: its ISA-18.2 state and every running timer.
//!
//! Timers are absolute timestamps (when a delay started and when it falls due, when an
//! escalation step is due, when a shelve expires), never "time remaining": a record restored
//! from a snapshot after a restart resumes a 10-minute delay where it was, and an engine that
//! was down past a due time fires it at the next `tick` with the original due time.

use crate::event::{AlarmState, FactValue};
use crate::ids::AlarmKey;
use crate::meta::Severity;
use cistern_schemas::Timestamp;
use serde::{Deserialize, Serialize};

/// A running on- or off-delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub since: Timestamp,
    pub due: Timestamp,
}

/// A shelve: by whom, why, until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShelveInfo {
    pub until: Timestamp,
    pub reason: String,
    pub user: String,
    #[serde(default)]
    pub comment: String,
    /// Shelved by chatter detection rather than by a user.
    #[serde(default)]
    pub auto: bool,
}

/// Out of service: by whom, since when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub since: Timestamp,
    pub user: String,
    #[serde(default)]
    pub comment: String,
}

/// The next step of an escalation ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationTimer {
    /// When the ladder started (the alarm was annunciated unacknowledged).
    pub started: Timestamp,
    /// Index of the next step in the ladder.
    pub next_step: u8,
    pub due: Timestamp,
}

/// One alarm's complete state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    pub key: AlarmKey,
    /// Current severity (the rule's, raised by escalation).
    pub severity: Severity,
    /// The annunciation state beneath any shelve / suppression / out-of-service overlay:
    /// normal, unacked, acked or returned_unacked.
    pub base: AlarmState,
    /// The alarm is on: the condition held past the on-delay and has not cleared past the
    /// off-delay (or it is latched and not yet reset).
    pub active: bool,
    /// The script's last verdict before inversion; `None` = unknown.
    pub condition: Option<bool>,
    /// Last input of an edge trigger.
    pub last_input: Option<bool>,
    pub pending_on: Option<Pending>,
    pub pending_off: Option<Pending>,
    /// A latched alarm whose condition has cleared: waiting for a reset.
    pub latched_clear: bool,
    pub shelve: Option<ShelveInfo>,
    pub out_of_service: Option<ServiceInfo>,
    /// The parent alarm suppressing this one.
    pub suppressed_by: Option<AlarmKey>,
    pub raised_at: Option<Timestamp>,
    pub escalation: Option<EscalationTimer>,
    /// Recent activations, for recurrence escalation.
    pub recurrences: Vec<Timestamp>,
    /// Recent activations, for chatter detection.
    pub chatter: Vec<Timestamp>,
    /// Activations since chatter detection consolidated this alarm (auto-shelved): shown
    /// on the room's `chattering` alarm; back to 0 when the shelve ends.
    #[serde(default)]
    pub chatter_count: u32,
    /// The latest value while the alarm was on (after it returns: the value it returned with).
    pub value: Option<FactValue>,
    /// The value when the alarm was last raised: with `value`, "was 0.02 MPa, now 0.40 MPa".
    /// (None in state stored before this field existed, until the next raise.)
    #[serde(default)]
    pub raised_value: Option<FactValue>,
    pub limit: Option<f64>,
    /// Rendered from the rule's `message` while the condition holds: it describes the alarm
    /// condition (the last value that was in alarm), and is not re-rendered with the value it
    /// returned to normal with.
    pub message: String,
    /// The same, from `message_zh` (or from `message` for a rule without one).
    #[serde(default)]
    pub message_zh: String,
}

impl AlarmRecord {
    pub fn new(key: AlarmKey, severity: Severity) -> Self {
        Self {
            key,
            severity,
            base: AlarmState::Normal,
            active: false,
            condition: None,
            last_input: None,
            pending_on: None,
            pending_off: None,
            latched_clear: false,
            shelve: None,
            out_of_service: None,
            suppressed_by: None,
            raised_at: None,
            escalation: None,
            recurrences: Vec::new(),
            chatter: Vec::new(),
            chatter_count: 0,
            value: None,
            raised_value: None,
            limit: None,
            message: String::new(),
            message_zh: String::new(),
        }
    }

    /// The state an operator sees: out-of-service, then shelved, then suppressed, then the base.
    pub fn state(&self) -> AlarmState {
        if self.out_of_service.is_some() {
            AlarmState::OutOfService
        } else if self.shelve.is_some() {
            AlarmState::Shelved
        } else if self.suppressed_by.is_some() {
            AlarmState::Suppressed
        } else {
            self.base
        }
    }

    pub(crate) fn overlaid(&self) -> bool {
        self.out_of_service.is_some() || self.shelve.is_some()
    }

    /// The earliest timer of this record.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        [
            self.pending_on.map(|p| p.due),
            self.pending_off.map(|p| p.due),
            self.shelve.as_ref().map(|s| s.until),
            self.escalation.map(|e| e.due),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
