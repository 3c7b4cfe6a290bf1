//! A work order and its life: the states of DOMAIN.md §7 (after Maximo's WAPPR → APPR → INPRG
//! → COMP → CLOSE, made concrete for field crews), the commands that move it, and who may give
//! each. Pure: no store, no clock, no I/O — [`WorkOrder::apply`] checks a command against the
//! order and the caller and records the transition, so the rules are tested here and every
//! adapter (REST, the crew page, the demo's crew) goes through the same table.
//!
//! ```text
//! created ─dispatch→ dispatched ─accept→ accepted ─en_route→ en_route ─on_site→ on_site
//!              ↑ (reassign)  │                 └────────────on_site────────────↗   │
//!              └─────────────┘                                          complete ↓
//!                                          on_site ←reject─ completed ─verify→ closed
//! any open state ─hold→ on_hold ─resume→ (the state it left);  any open state ─cancel→ cancelled
//! ```

use cistern_rules::Severity;
use cistern_schemas::{DeviceId, RoomId, Timestamp, ZoneId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A work order's id: `WO-000123` (a fleet-wide sequence).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderId(String);

impl OrderId {
    pub fn from_sequence(n: u64) -> Self {
        Self(format!("WO-{n:06}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrderId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let digits = s.strip_prefix("WO-").unwrap_or("");
        if digits.len() >= 6 && digits.len() <= 12 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s))
        } else {
            Err(format!(
                "{s:?} is not a work order id (WO- and 6 to 12 digits)"
            ))
        }
    }
}

impl From<OrderId> for String {
    fn from(id: OrderId) -> String {
        id.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of work (DOMAIN.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// From an alarm or a report.
    Corrective,
    /// From a plan: parts replacement, pump overhaul.
    Preventive,
    Inspection,
    TankCleaning,
    Installation,
    /// Burst, flooding, no water.
    Emergency,
}

impl OrderType {
    pub const ALL: [OrderType; 6] = [
        OrderType::Corrective,
        OrderType::Preventive,
        OrderType::Inspection,
        OrderType::TankCleaning,
        OrderType::Installation,
        OrderType::Emergency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Corrective => "corrective",
            OrderType::Preventive => "preventive",
            OrderType::Inspection => "inspection",
            OrderType::TankCleaning => "tank_cleaning",
            OrderType::Installation => "installation",
            OrderType::Emergency => "emergency",
        }
    }

    /// Whether completing needs a cause and a remedy (the knowledge base learns from them).
    pub fn needs_resolution(self) -> bool {
        matches!(self, OrderType::Corrective | OrderType::Emergency)
    }
}

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    Created,
    Dispatched,
    Accepted,
    EnRoute,
    OnSite,
    /// Done by the crew, waiting for verification.
    Completed,
    OnHold,
    /// Verified: final.
    Closed,
    /// Final, with a reason.
    Cancelled,
}

impl OrderState {
    pub const ALL: [OrderState; 9] = [
        OrderState::Created,
        OrderState::Dispatched,
        OrderState::Accepted,
        OrderState::EnRoute,
        OrderState::OnSite,
        OrderState::Completed,
        OrderState::OnHold,
        OrderState::Closed,
        OrderState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Created => "created",
            OrderState::Dispatched => "dispatched",
            OrderState::Accepted => "accepted",
            OrderState::EnRoute => "en_route",
            OrderState::OnSite => "on_site",
            OrderState::Completed => "completed",
            OrderState::OnHold => "on_hold",
            OrderState::Closed => "closed",
            OrderState::Cancelled => "cancelled",
        }
    }

    /// Not closed and not cancelled: the order still holds its room and cause (a completed
    /// order waits for verification, and a recurrence before then belongs to it).
    pub fn is_open(self) -> bool {
        !matches!(self, OrderState::Closed | OrderState::Cancelled)
    }

    /// Whether a crew has responded (accepted, or further along): the response target is met.
    pub fn responded(self) -> bool {
        matches!(
            self,
            OrderState::Accepted
                | OrderState::EnRoute
                | OrderState::OnSite
                | OrderState::Completed
                | OrderState::Closed
        )
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A position reported by a phone (WGS 84).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
    /// Metres, as the browser's geolocation reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
}

impl Position {
    fn valid(&self) -> bool {
        (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lon)
            && self.accuracy_m.is_none_or(|a| a.is_finite() && a >= 0.0)
    }
}

/// An alarm the order answers (one order may collect a recurring alarm's raisings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmLink {
    /// The alarm's id on the board (`XM-0001/pump_fault@pump-1`).
    pub alarm: String,
    pub raised_at: Timestamp,
    pub severity: Severity,
    pub message: String,
    #[serde(default)]
    pub message_zh: String,
}

/// One step of a checklist, from the order's template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChecklistEntry {
    pub text: String,
    pub text_zh: String,
    /// A point of the room whose live reading the crew records (`outlet_pressure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    #[serde(default)]
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

/// A part used on the job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartUse {
    pub part: String,
    pub quantity: u32,
}

/// How the job ended: the knowledge base's cause and remedy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    pub cause: String,
    pub remedy: String,
}

/// A note on the order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub at: Timestamp,
    pub by: String,
    pub text: String,
}

/// One change of state (or an escalation), with who, when, where and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: Timestamp,
    pub by: String,
    pub from: OrderState,
    pub to: OrderState,
    pub action: ActionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// Who the order went to (dispatch, escalation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
}

/// A commanded change (the wire names of the transitions API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Create,
    Dispatch,
    Accept,
    EnRoute,
    OnSite,
    Complete,
    Verify,
    Reject,
    Hold,
    Resume,
    Cancel,
    /// A recurrence of the alarm joined the order.
    Link,
    /// A target was missed and the order went up the ladder.
    Escalate,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Dispatch => "dispatch",
            ActionKind::Accept => "accept",
            ActionKind::EnRoute => "en_route",
            ActionKind::OnSite => "on_site",
            ActionKind::Complete => "complete",
            ActionKind::Verify => "verify",
            ActionKind::Reject => "reject",
            ActionKind::Hold => "hold",
            ActionKind::Resume => "resume",
            ActionKind::Cancel => "cancel",
            ActionKind::Link => "link",
            ActionKind::Escalate => "escalate",
        }
    }
}

/// A command on an order (what a caller asks).
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// To a person (and their team) — or back to a team's queue with `assignee: None`.
    Dispatch {
        team: Option<String>,
        assignee: Option<String>,
    },
    Accept,
    EnRoute,
    OnSite,
    /// Records checklist readings; the order stays where it is.
    Check {
        item: usize,
        done: bool,
        reading: Option<f64>,
    },
    Complete {
        resolution: Option<Resolution>,
        parts: Vec<PartUse>,
        minutes: u32,
    },
    Verify,
    /// Verification refused: back on site.
    Reject,
    Hold,
    Resume,
    Cancel,
    Comment,
}

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    /// Dispatchers (operators and above) direct orders; crews work the ones given to them.
    pub dispatcher: bool,
}

/// Everything a command carries besides itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    pub comment: Option<String>,
    pub position: Option<Position>,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    #[error("{order} is {state}: it cannot be {action}")]
    InvalidTransition {
        order: OrderId,
        state: OrderState,
        action: &'static str,
    },
    #[error("{order} is assigned to {assignee}, not to {user}")]
    NotAssignee {
        order: OrderId,
        assignee: String,
        user: String,
    },
    #[error("only a dispatcher (operator or above) may {0}")]
    NotDispatcher(&'static str),
    #[error("{0}")]
    Invalid(String),
    /// Completion without the template's photos.
    #[error("{order} needs {required} photo(s) before it is completed: {missing} missing")]
    PhotosMissing {
        order: OrderId,
        required: u32,
        missing: u32,
    },
    #[error("{order} has {max} attachments already")]
    TooManyAttachments { order: OrderId, max: usize },
}

/// The most attachments one order keeps.
pub const MAX_ATTACHMENTS: usize = 20;

/// A file attached to an order (a photo); its bytes are stored beside the order
/// ([`super::attachments`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub id: super::attachments::AttachmentId,
    /// The name it was uploaded with (display only).
    pub name: String,
    /// What its bytes are (sniffed, never the uploader's word): `image/jpeg`, `image/png`,
    /// `image/webp`.
    pub content_type: String,
    pub size: u64,
    /// How many stored chunks hold the bytes.
    pub chunks: u32,
    pub by: String,
    pub at: Timestamp,
}

/// The longest comment, reason or resolution text, in characters.
pub const MAX_TEXT_CHARS: usize = 2_000;

/// A work order (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkOrder {
    pub id: OrderId,
    #[serde(rename = "type")]
    pub kind: OrderType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    pub priority: Severity,
    pub state: OrderState,
    pub title: String,
    pub title_zh: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<ZoneId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    /// What it answers: the alarm rule (`pump_fault`) or the template's cause; with the room,
    /// the key of "one open order per room and cause".
    pub cause: String,
    #[serde(default)]
    pub alarms: Vec<AlarmLink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
    /// Accepted by then (the response target).
    pub response_due: Timestamp,
    /// Completed by then (the resolution target).
    pub resolution_due: Timestamp,
    /// Steps up the ladder taken: 1 the team lead, 2 the manager.
    #[serde(default)]
    pub escalation: u8,
    #[serde(default)]
    pub checklist: Vec<ChecklistEntry>,
    #[serde(default)]
    pub photos_required: u32,
    #[serde(default)]
    pub safety: String,
    #[serde(default)]
    pub safety_zh: String,
    #[serde(default)]
    pub expected_parts: Vec<String>,
    #[serde(default)]
    pub parts: Vec<PartUse>,
    #[serde(default)]
    pub minutes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    #[serde(default)]
    pub comments: Vec<Comment>,
    /// The state an order on hold returns to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_from: Option<OrderState>,
    pub transitions: Vec<Transition>,
    /// Photos, oldest first.
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
}

fn text(what: &str, value: Option<&str>) -> Result<(), OrderError> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT_CHARS => Err(OrderError::Invalid(format!(
            "{what} is longer than {MAX_TEXT_CHARS} characters"
        ))),
        Some(v) if v.chars().any(|c| c.is_control() && c != '\n') => Err(OrderError::Invalid(
            format!("{what} has control characters"),
        )),
        _ => Ok(()),
    }
}

impl WorkOrder {
    /// When it was first accepted (the response), if it was.
    pub fn responded_at(&self) -> Option<Timestamp> {
        self.first(ActionKind::Accept)
    }

    /// When the crew last completed it, if it did.
    pub fn completed_at(&self) -> Option<Timestamp> {
        self.transitions
            .iter()
            .rev()
            .find(|t| t.action == ActionKind::Complete)
            .map(|t| t.at)
    }

    fn first(&self, action: ActionKind) -> Option<Timestamp> {
        self.transitions
            .iter()
            .find(|t| t.action == action)
            .map(|t| t.at)
    }

    /// Whether a target is missed at `now`: the response while nobody accepted, the
    /// resolution while the crew has not completed.
    pub fn overdue(&self, now: Timestamp) -> bool {
        if !self.state.is_open() {
            return false;
        }
        let unresponded = !self.state.responded() && self.responded_at().is_none();
        (unresponded && now > self.response_due)
            || (self.state != OrderState::Completed && now > self.resolution_due)
    }

    /// Checks `command` from `caller` and applies it at `now`: the order changes and a
    /// transition is recorded (a checklist tick or a comment records none).
    pub fn apply(
        &mut self,
        command: Command,
        caller: &Caller,
        context: Context,
        now: Timestamp,
    ) -> Result<(), OrderError> {
        text("the comment", context.comment.as_deref())?;
        if let Some(p) = &context.position {
            if !p.valid() {
                return Err(OrderError::Invalid(
                    "position: lat within ±90, lon within ±180, accuracy ≥ 0".into(),
                ));
            }
        }
        use OrderState as S;
        let state = self.state;
        let refuse = |action: &'static str| OrderError::InvalidTransition {
            order: self.id.clone(),
            state,
            action,
        };
        let (to, action) = match &command {
            Command::Dispatch { .. } => {
                self.dispatcher(caller, "dispatch an order")?;
                if !matches!(state, S::Created | S::Dispatched) {
                    return Err(refuse("dispatched"));
                }
                (S::Dispatched, ActionKind::Dispatch)
            }
            Command::Accept => {
                if state != S::Dispatched {
                    return Err(refuse("accepted"));
                }
                self.crew(caller)?;
                (S::Accepted, ActionKind::Accept)
            }
            Command::EnRoute => {
                if state != S::Accepted {
                    return Err(refuse("en route"));
                }
                self.crew(caller)?;
                (S::EnRoute, ActionKind::EnRoute)
            }
            Command::OnSite => {
                if !matches!(state, S::Accepted | S::EnRoute) {
                    return Err(refuse("on site"));
                }
                self.crew(caller)?;
                (S::OnSite, ActionKind::OnSite)
            }
            Command::Check {
                item,
                done,
                reading,
            } => {
                if state != S::OnSite {
                    return Err(refuse("checked off (the crew must be on site)"));
                }
                self.crew(caller)?;
                if reading.is_some_and(|r| !r.is_finite()) {
                    return Err(OrderError::Invalid("a reading must be a number".into()));
                }
                let by = caller.user.clone();
                let entry = self.checklist.get_mut(*item).ok_or_else(|| {
                    OrderError::Invalid(format!("the checklist has no item {item}"))
                })?;
                entry.done = *done;
                entry.reading = *reading;
                entry.by = Some(by);
                entry.at = Some(now);
                return Ok(());
            }
            Command::Complete {
                resolution,
                parts,
                minutes,
            } => {
                if state != S::OnSite {
                    return Err(refuse("completed (the crew must be on site)"));
                }
                self.crew(caller)?;
                if let Some(r) = resolution {
                    text("the cause", Some(&r.cause))?;
                    text("the remedy", Some(&r.remedy))?;
                }
                let resolved = resolution
                    .as_ref()
                    .is_some_and(|r| !r.cause.trim().is_empty() && !r.remedy.trim().is_empty());
                if self.kind.needs_resolution() && !resolved {
                    return Err(OrderError::Invalid(
                        "completing a corrective or emergency order needs its cause and remedy"
                            .into(),
                    ));
                }
                if let Some(open) = self.checklist.iter().position(|c| !c.done) {
                    return Err(OrderError::Invalid(format!(
                        "checklist item {open} ({}) is not done",
                        self.checklist[open].text
                    )));
                }
                let photos = u32::try_from(self.attachments.len()).unwrap_or(u32::MAX);
                if photos < self.photos_required {
                    return Err(OrderError::PhotosMissing {
                        order: self.id.clone(),
                        required: self.photos_required,
                        missing: self.photos_required - photos,
                    });
                }
                if parts
                    .iter()
                    .any(|p| p.quantity == 0 || p.part.trim().is_empty())
                {
                    return Err(OrderError::Invalid(
                        "a part used needs a name and a quantity of at least 1".into(),
                    ));
                }
                self.resolution = resolution.clone();
                self.parts = parts.clone();
                self.minutes = *minutes;
                (S::Completed, ActionKind::Complete)
            }
            Command::Verify => {
                self.dispatcher(caller, "verify and close an order")?;
                if state != S::Completed {
                    return Err(refuse("verified"));
                }
                (S::Closed, ActionKind::Verify)
            }
            Command::Reject => {
                self.dispatcher(caller, "send an order back")?;
                if state != S::Completed {
                    return Err(refuse("sent back"));
                }
                (S::OnSite, ActionKind::Reject)
            }
            Command::Hold => {
                if !state.is_open() || state == S::OnHold || state == S::Completed {
                    return Err(refuse("put on hold"));
                }
                if !caller.dispatcher {
                    self.crew(caller)?;
                }
                self.reason(&context, "putting an order on hold")?;
                (S::OnHold, ActionKind::Hold)
            }
            Command::Resume => {
                if state != S::OnHold {
                    return Err(refuse("resumed"));
                }
                if !caller.dispatcher {
                    self.crew(caller)?;
                }
                (self.held_from.unwrap_or(S::Dispatched), ActionKind::Resume)
            }
            Command::Cancel => {
                self.dispatcher(caller, "cancel an order")?;
                if !state.is_open() {
                    return Err(refuse("cancelled"));
                }
                self.reason(&context, "cancelling an order")?;
                (S::Cancelled, ActionKind::Cancel)
            }
            Command::Comment => {
                let text = context
                    .comment
                    .filter(|c| !c.trim().is_empty())
                    .ok_or_else(|| OrderError::Invalid("a comment needs its text".into()))?;
                self.comments.push(Comment {
                    at: now,
                    by: caller.user.clone(),
                    text,
                });
                return Ok(());
            }
        };
        match command {
            Command::Dispatch { team, assignee } => {
                if team.is_some() {
                    self.team = team;
                }
                self.assignee = assignee;
            }
            // From the team's queue: whoever accepts takes it.
            Command::Accept if self.assignee.is_none() => {
                self.assignee = Some(caller.user.clone());
            }
            _ => {}
        }
        match to {
            S::OnHold => self.held_from = Some(state),
            _ => self.held_from = None,
        }
        self.state = to;
        self.transitions.push(Transition {
            at: now,
            by: caller.user.clone(),
            from: state,
            to,
            action,
            comment: context.comment,
            position: context.position,
            assignee: if action == ActionKind::Dispatch {
                self.assignee.clone().or_else(|| self.team.clone())
            } else {
                None
            },
        });
        Ok(())
    }

    /// Checks that `caller` may attach a file now: the order is open and theirs (or they
    /// dispatch), and it has room for one more.
    pub fn may_attach(&self, caller: &Caller) -> Result<(), OrderError> {
        if !self.state.is_open() {
            return Err(OrderError::InvalidTransition {
                order: self.id.clone(),
                state: self.state,
                action: "given an attachment",
            });
        }
        self.crew(caller)?;
        if self.attachments.len() >= MAX_ATTACHMENTS {
            return Err(OrderError::TooManyAttachments {
                order: self.id.clone(),
                max: MAX_ATTACHMENTS,
            });
        }
        Ok(())
    }

    /// Lists an attachment whose bytes are stored (after [`Self::may_attach`]; the state does
    /// not change and no transition is recorded — the audit log has who attached what).
    pub fn attach(&mut self, attachment: AttachmentRef, caller: &Caller) -> Result<(), OrderError> {
        self.may_attach(caller)?;
        self.attachments.push(attachment);
        Ok(())
    }

    /// Records an escalation step (the state does not change).
    pub fn escalate(&mut self, step: u8, to: &str, reason: String, now: Timestamp) {
        self.escalation = step;
        self.transitions.push(Transition {
            at: now,
            by: "system".into(),
            from: self.state,
            to: self.state,
            action: ActionKind::Escalate,
            comment: Some(reason),
            position: None,
            assignee: Some(to.to_owned()),
        });
    }

    /// Joins a recurrence of an alarm to the order (once per raising).
    pub fn link(&mut self, link: AlarmLink, now: Timestamp) -> bool {
        if self
            .alarms
            .iter()
            .any(|a| a.alarm == link.alarm && a.raised_at == link.raised_at)
        {
            return false;
        }
        let comment = format!("{} ({})", link.message, link.alarm);
        self.alarms.push(link);
        self.transitions.push(Transition {
            at: now,
            by: "system".into(),
            from: self.state,
            to: self.state,
            action: ActionKind::Link,
            comment: Some(comment),
            position: None,
            assignee: None,
        });
        true
    }

    fn dispatcher(&self, caller: &Caller, what: &'static str) -> Result<(), OrderError> {
        if caller.dispatcher {
            Ok(())
        } else {
            Err(OrderError::NotDispatcher(what))
        }
    }

    /// The order's assignee (or, for an order sent to a team's queue, anyone) — or a dispatcher
    /// acting on their behalf.
    fn crew(&self, caller: &Caller) -> Result<(), OrderError> {
        match &self.assignee {
            Some(a) if *a != caller.user && !caller.dispatcher => Err(OrderError::NotAssignee {
                order: self.id.clone(),
                assignee: a.clone(),
                user: caller.user.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn reason(&self, context: &Context, what: &str) -> Result<(), OrderError> {
        if context
            .comment
            .as_deref()
            .is_some_and(|c| !c.trim().is_empty())
        {
            Ok(())
        } else {
            Err(OrderError::Invalid(format!("{what} needs a reason")))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn order() -> WorkOrder {
        WorkOrder {
            id: OrderId::from_sequence(1),
            kind: OrderType::Corrective,
            template: Some("pump_fault".into()),
            priority: Severity::P2,
            state: OrderState::Created,
            title: "Pump fault".into(),
            title_zh: "水泵故障".into(),
            room: RoomId::new("XM-0001").ok(),
            zone: ZoneId::new("siming").ok(),
            device: None,
            cause: "pump_fault".into(),
            alarms: vec![],
            team: None,
            assignee: None,
            created_at: Timestamp(0),
            created_by: "system".into(),
            response_due: Timestamp(7_200_000),
            resolution_due: Timestamp(86_400_000),
            escalation: 0,
            checklist: vec![ChecklistEntry {
                text: "Read the drive's fault code".into(),
                text_zh: "读取变频器故障代码".into(),
                point: None,
                done: false,
                reading: None,
                by: None,
                at: None,
            }],
            photos_required: 0,
            safety: String::new(),
            safety_zh: String::new(),
            expected_parts: vec![],
            parts: vec![],
            minutes: 0,
            resolution: None,
            comments: vec![],
            held_from: None,
            transitions: vec![],
            attachments: vec![],
        }
    }

    fn dispatcher() -> Caller {
        Caller {
            user: "dispatch".into(),
            dispatcher: true,
        }
    }

    fn crew(name: &str) -> Caller {
        Caller {
            user: name.into(),
            dispatcher: false,
        }
    }

    fn go(o: &mut WorkOrder, c: Command, who: &Caller) -> Result<(), OrderError> {
        o.apply(c, who, Context::default(), Timestamp(1_000))
    }

    fn photo(n: u32, by: &str) -> AttachmentRef {
        AttachmentRef {
            id: super::super::attachments::AttachmentId(n),
            name: format!("p{n}.jpg"),
            content_type: "image/jpeg".into(),
            size: 10,
            chunks: 1,
            by: by.into(),
            at: Timestamp(2_000),
        }
    }

    #[test]
    fn completion_waits_for_the_templates_photos_and_says_how_many_are_missing() {
        let mut o = dispatched_to("wang");
        o.photos_required = 2;
        for c in [Command::Accept, Command::OnSite] {
            go(&mut o, c, &crew("wang")).unwrap();
        }
        go(
            &mut o,
            Command::Check {
                item: 0,
                done: true,
                reading: None,
            },
            &crew("wang"),
        )
        .unwrap();
        let complete = || Command::Complete {
            resolution: Some(Resolution {
                cause: "vfd_overcurrent".into(),
                remedy: "reset".into(),
            }),
            parts: vec![],
            minutes: 10,
        };
        o.attach(photo(1, "wang"), &crew("wang")).unwrap();
        let err = go(&mut o, complete(), &crew("wang")).unwrap_err();
        assert_eq!(
            err,
            OrderError::PhotosMissing {
                order: o.id.clone(),
                required: 2,
                missing: 1
            }
        );
        assert!(err.to_string().contains("1 missing"), "{err}");
        // Another crew cannot add it; a dispatcher can.
        assert!(matches!(
            o.attach(photo(2, "li"), &crew("li")),
            Err(OrderError::NotAssignee { .. })
        ));
        o.attach(photo(2, "dispatch"), &dispatcher()).unwrap();
        go(&mut o, complete(), &crew("wang")).unwrap();
        assert_eq!(o.state, OrderState::Completed);
        // Completed is still open (a photo for the verifier); closed is not.
        o.attach(photo(3, "wang"), &crew("wang")).unwrap();
        go(&mut o, Command::Verify, &dispatcher()).unwrap();
        assert!(matches!(
            o.attach(photo(4, "wang"), &crew("wang")),
            Err(OrderError::InvalidTransition { .. })
        ));
    }

    #[test]
    fn an_order_keeps_at_most_its_share_of_attachments() {
        let mut o = dispatched_to("wang");
        for n in 0..MAX_ATTACHMENTS as u32 {
            o.attach(photo(n + 1, "wang"), &crew("wang")).unwrap();
        }
        assert_eq!(
            o.attach(photo(99, "wang"), &crew("wang")),
            Err(OrderError::TooManyAttachments {
                order: o.id.clone(),
                max: MAX_ATTACHMENTS
            })
        );
    }

    fn dispatched_to(name: &str) -> WorkOrder {
        let mut o = order();
        go(
            &mut o,
            Command::Dispatch {
                team: Some("siming".into()),
                assignee: Some(name.into()),
            },
            &dispatcher(),
        )
        .unwrap();
        o
    }

    #[test]
    fn the_crew_flow_runs_from_dispatch_to_closed_with_every_transition_recorded() {
        let mut o = dispatched_to("li");
        let li = crew("li");
        go(&mut o, Command::Accept, &li).unwrap();
        go(&mut o, Command::EnRoute, &li).unwrap();
        o.apply(
            Command::OnSite,
            &li,
            Context {
                comment: None,
                position: Some(Position {
                    lat: 24.48,
                    lon: 118.09,
                    accuracy_m: Some(12.0),
                }),
            },
            Timestamp(2_000),
        )
        .unwrap();
        go(
            &mut o,
            Command::Check {
                item: 0,
                done: true,
                reading: None,
            },
            &li,
        )
        .unwrap();
        go(
            &mut o,
            Command::Complete {
                resolution: Some(Resolution {
                    cause: "vfd_overcurrent".into(),
                    remedy: "reset_and_megger".into(),
                }),
                parts: vec![],
                minutes: 40,
            },
            &li,
        )
        .unwrap();
        go(&mut o, Command::Verify, &dispatcher()).unwrap();
        assert_eq!(o.state, OrderState::Closed);
        let path: Vec<_> = o.transitions.iter().map(|t| t.to).collect();
        assert_eq!(
            path,
            [
                OrderState::Dispatched,
                OrderState::Accepted,
                OrderState::EnRoute,
                OrderState::OnSite,
                OrderState::Completed,
                OrderState::Closed
            ]
        );
        assert_eq!(o.transitions[3].position.map(|p| p.lat), Some(24.48));
        assert_eq!(o.responded_at(), Some(Timestamp(1_000)));
    }

    #[test]
    fn out_of_order_transitions_are_refused_and_change_nothing() {
        let mut o = dispatched_to("li");
        let before = o.clone();
        let err = go(
            &mut o,
            Command::Complete {
                resolution: None,
                parts: vec![],
                minutes: 0,
            },
            &crew("li"),
        )
        .unwrap_err();
        assert!(matches!(err, OrderError::InvalidTransition { .. }), "{err}");
        assert!(go(&mut o, Command::Verify, &dispatcher()).is_err());
        assert_eq!(o, before);
    }

    #[test]
    fn a_second_crew_cannot_take_someone_elses_order() {
        let mut o = dispatched_to("li");
        let err = go(&mut o, Command::Accept, &crew("wang")).unwrap_err();
        assert!(matches!(err, OrderError::NotAssignee { .. }), "{err}");
        go(&mut o, Command::Accept, &crew("li")).unwrap();
        let err = go(&mut o, Command::Accept, &crew("li")).unwrap_err();
        assert!(matches!(err, OrderError::InvalidTransition { .. }), "{err}");
    }

    #[test]
    fn crews_cannot_dispatch_cancel_or_verify() {
        let mut o = order();
        for c in [
            Command::Dispatch {
                team: None,
                assignee: Some("li".into()),
            },
            Command::Cancel,
            Command::Verify,
        ] {
            assert!(matches!(
                go(&mut o, c, &crew("li")),
                Err(OrderError::NotDispatcher(_))
            ));
        }
    }

    #[test]
    fn completing_needs_cause_remedy_and_a_done_checklist() {
        let mut o = dispatched_to("li");
        let li = crew("li");
        go(&mut o, Command::Accept, &li).unwrap();
        go(&mut o, Command::OnSite, &li).unwrap();
        let done = |r: Option<Resolution>| Command::Complete {
            resolution: r,
            parts: vec![],
            minutes: 5,
        };
        let err = go(&mut o, done(None), &li).unwrap_err();
        assert!(err.to_string().contains("cause and remedy"), "{err}");
        let r = Resolution {
            cause: "c".into(),
            remedy: "r".into(),
        };
        let err = go(&mut o, done(Some(r.clone())), &li).unwrap_err();
        assert!(err.to_string().contains("checklist item 0"), "{err}");
        go(
            &mut o,
            Command::Check {
                item: 0,
                done: true,
                reading: Some(0.41),
            },
            &li,
        )
        .unwrap();
        go(&mut o, done(Some(r)), &li).unwrap();
        assert_eq!(o.checklist[0].reading, Some(0.41));
    }

    #[test]
    fn hold_returns_to_the_state_it_left_and_needs_a_reason() {
        let mut o = dispatched_to("li");
        go(&mut o, Command::Accept, &crew("li")).unwrap();
        assert!(go(&mut o, Command::Hold, &crew("li")).is_err());
        o.apply(
            Command::Hold,
            &crew("li"),
            Context {
                comment: Some("waiting for a VFD fuse".into()),
                position: None,
            },
            Timestamp(5),
        )
        .unwrap();
        assert_eq!(o.state, OrderState::OnHold);
        go(&mut o, Command::Resume, &crew("li")).unwrap();
        assert_eq!(o.state, OrderState::Accepted);
    }

    #[test]
    fn a_recurrence_links_once_and_overdue_follows_the_targets() {
        let mut o = dispatched_to("li");
        let link = AlarmLink {
            alarm: "XM-0001/pump_fault@pump-1".into(),
            raised_at: Timestamp(10),
            severity: Severity::P2,
            message: "Pump pump-1 fault".into(),
            message_zh: "水泵 pump-1 故障".into(),
        };
        assert!(o.link(link.clone(), Timestamp(11)));
        assert!(!o.link(link, Timestamp(12)));
        assert!(!o.overdue(Timestamp(7_200_000)));
        assert!(o.overdue(Timestamp(7_200_001)));
        go(&mut o, Command::Accept, &crew("li")).unwrap();
        assert!(!o.overdue(Timestamp(7_200_001)));
        assert!(o.overdue(Timestamp(86_400_001)));
    }

    #[test]
    fn order_ids_round_trip_and_reject_garbage() {
        let id = OrderId::from_sequence(42);
        assert_eq!(id.as_str(), "WO-000042");
        assert!(OrderId::try_from("WO-000042".to_owned()).is_ok());
        for bad in ["", "WO-", "WO-12", "XX-000042", "WO-00004x"] {
            assert!(OrderId::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}
