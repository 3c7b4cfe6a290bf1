//! Notifications: the outbox the engine emits escalation steps, chattering reports and sandbox
//! kills into.
//!
//! The engine only says *who* should hear *what* (`target` is a role such as `shift_lead`); the
//! host routes it. [`LogNotify`] writes them to the log; the webhook sink lives in the server
//! and posts [`Notification`] as its JSON body.

use crate::event::AlarmSource;
use crate::ids::{AlarmKey, RuleId};
use crate::meta::Severity;
use cistern_schemas::Timestamp;
use serde::{Deserialize, Serialize};

/// Why a notification was sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NotificationKind {
    /// An escalation ladder step: unacknowledged too long.
    Escalation { step: u8 },
    /// Recurred `count` times within `window_s`.
    Recurrence { count: u32, window_s: u64 },
    /// Chattered: `activations` within `window_s`; shelved until `shelved_until` (a ticket).
    Chattering {
        activations: u32,
        window_s: u64,
        shelved_until: Timestamp,
    },
    /// The rule was stopped by the sandbox and disabled.
    SandboxKill { error: String },
}

/// One message for a person or a ticketing system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub time: Timestamp,
    pub source: AlarmSource,
    pub key: AlarmKey,
    pub rule: RuleId,
    pub severity: Severity,
    /// The role to notify: `shift_lead`, `on_call_manager`, `maintenance`, `rule_authors` ….
    pub target: String,
    pub message: String,
    #[serde(flatten)]
    pub kind: NotificationKind,
}

/// Where notifications go.
pub trait Notify {
    fn notify(&mut self, notification: Notification);
}

/// Collects notifications (tests, batching in the host).
impl Notify for Vec<Notification> {
    fn notify(&mut self, notification: Notification) {
        self.push(notification);
    }
}

/// Drops notifications.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl Notify for Discard {
    fn notify(&mut self, _: Notification) {}
}

/// Writes notifications to the log (`tracing`), one structured line each.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogNotify;

impl Notify for LogNotify {
    fn notify(&mut self, n: Notification) {
        match &n.kind {
            NotificationKind::SandboxKill { error } => tracing::warn!(
                source = %n.source, rule = %n.rule, target = %n.target, %error,
                "alarm rule stopped by the sandbox and disabled"
            ),
            kind => tracing::info!(
                source = %n.source, key = %n.key, severity = %n.severity, target = %n.target,
                kind = ?kind, message = %n.message, "alarm notification"
            ),
        }
    }
}
