//! Who is asking, and what they may do: users, API tokens, roles, and the audit log.
//!
//! Every REST and WebSocket request carries a bearer token (a session token from a login, or an
//! API token issued to a machine). [`Auth::verify_bearer`] turns it into a [`Principal`] — a
//! user and a [`Role`] — or refuses it with an [`AuthError`] that says nothing an attacker could
//! use. Roles are ordered: each one may do everything the roles below it may.
//!
//! The [`AuditLog`] records who did what (logins, acknowledgements, shelves, rule changes,
//! set-point writes) and fans every entry out to live subscribers (the WebSocket hub's audit
//! stream).
//!
//! This module is the seam between the API (REST and WebSocket) and identity: the API asks only
//! `verify_bearer` and records only through `AuditLog::record`.

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use tokio::sync::broadcast;

/// What a principal may do. Ordered: `Viewer < Operator < RuleAuthor < Admin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Sees everything live and in history; changes nothing.
    Viewer,
    /// Also acknowledges, shelves and resets alarms, and writes set-points.
    Operator,
    /// Also writes and reloads alarm rules.
    RuleAuthor,
    /// Also manages users and tokens.
    Admin,
}

impl Role {
    /// The role's name on the wire (`viewer`, `operator`, `rule-author`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::RuleAuthor => "rule-author",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user's name, or the API token's name for a machine.
    pub user: String,
    pub role: Role,
}

impl Principal {
    /// Refuses with [`AuthError::Forbidden`] unless this principal holds at least `role`.
    pub fn require(&self, role: Role) -> Result<(), AuthError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AuthError::Forbidden { needed: role })
        }
    }
}

/// Why a request was refused. The messages are deliberately bare: they never say whether a
/// user exists or which part of a credential was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential, an unknown or expired token, or a wrong password.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but the role is too low.
    #[error("this needs the {needed} role")]
    Forbidden { needed: Role },
}

/// Verifies credentials. (First cut: an in-memory token table; users with argon2-hashed
/// passwords, persistence and expiry replace the internals behind the same methods.)
#[derive(Debug, Default)]
pub struct Auth {
    tokens: DashMap<String, Principal>,
}

impl Auth {
    pub fn new() -> Self {
        Self::default()
    }

    /// The principal a bearer token stands for.
    pub fn verify_bearer(&self, token: &str) -> Result<Principal, AuthError> {
        self.tokens
            .get(token)
            .map(|p| p.value().clone())
            .ok_or(AuthError::Unauthorized)
    }

    /// Makes `token` stand for `principal` (tests and bootstrap).
    pub fn insert_token(&self, token: impl Into<String>, principal: Principal) {
        self.tokens.insert(token.into(), principal);
    }
}

/// One audited action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who acted (`anonymous` for a failed login).
    pub user: String,
    /// What kind of action: `login`, `login_failed`, `alarm_ack`, `alarm_shelve`, `rule_put`,
    /// `setpoint_write`, `user_create`, `token_create`, ...
    pub action: String,
    /// What it acted on (an alarm id, a rule id, a point id, a user name).
    pub target: String,
    /// Free text: the operator's comment, the written value, the outcome.
    pub detail: String,
    /// Whether the action took effect.
    pub ok: bool,
}

/// The audit log: every entry is kept (first cut: in memory) and fanned out to live subscribers.
#[derive(Debug)]
pub struct AuditLog {
    live: broadcast::Sender<AuditEntry>,
    recent: std::sync::Mutex<std::collections::VecDeque<AuditEntry>>,
}

impl Default for AuditLog {
    fn default() -> Self {
        Self::new()
    }
}

/// How many entries the in-memory log keeps.
const RECENT_ENTRIES: usize = 10_000;

impl AuditLog {
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            live,
            recent: std::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Records an entry and sends it to live subscribers (a lagging subscriber loses the
    /// oldest entries and is told so by `broadcast`).
    pub fn record(&self, entry: AuditEntry) {
        tracing::info!(
            user = %entry.user,
            action = %entry.action,
            target = %entry.target,
            ok = entry.ok,
            "audit"
        );
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() == RECENT_ENTRIES {
                recent.pop_front();
            }
            recent.push_back(entry.clone());
        }
        let _ = self.live.send(entry);
    }

    /// Live entries from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AuditEntry> {
        self.live.subscribe()
    }

    /// The newest `limit` entries, newest last.
    pub fn recent(&self, limit: usize) -> Vec<AuditEntry> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let skip = recent.len().saturating_sub(limit);
        recent.iter().skip(skip).cloned().collect()
    }
}

/// The actors' audit port, over the node's audit log.
impl cistern_actors::ports::AuditPort for AuditLog {
    fn record(&self, r: cistern_actors::ports::AuditRecord) {
        AuditLog::record(
            self,
            AuditEntry {
                at_ms: cistern_schemas::Timestamp::now().as_millis(),
                user: r.user,
                action: r.action.to_owned(),
                target: r.target,
                detail: r.detail,
                ok: r.ok,
            },
        );
    }
}

/// What the API holds: identity and the audit log.
#[derive(Clone, Debug, Default)]
pub struct Security {
    pub auth: Arc<Auth>,
    pub audit: Arc<AuditLog>,
}
