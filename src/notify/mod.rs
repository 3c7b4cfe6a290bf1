//! Notifications (`[notify]`): who hears about an alarm or a work order, on which channel, and
//! whether it reached them. It replaces the rules' log-and-webhook outbox.
//!
//! Two sources feed it: the rules' notifications (escalation steps, recurrences, chattering,
//! rules disabled by the sandbox) through [`AlarmOutbox`], the alarm engine's
//! [`cistern_actors::alarms::Outbox`], and the work orders' events through
//! `WorkOrders::subscribe()` (dispatched → the assignee, escalated → the lead or manager it went
//! to, completed → the team lead, to verify). The alarm path never waits: `Outbox::send` is a
//! bounded `try_send` (a full queue is counted and logged, never waited on).
//!
//! An intake task turns each event into deliveries — one per recipient and channel, in the
//! recipient's language (zh-CN unless the user chose English) — applies preferences (severity,
//! quiet hours; P1 through them unless opted out) and de-duplication (the same event, recipient
//! and channel within `dedupe_window`), and persists every delivery, suppressed ones too, on the
//! records port ([`record`]) before any attempt. A sender loop takes the pending ones by due
//! time and attempts each on its own task: a channel's rate limit moves a delivery to its next
//! free slot (never dropping it), a failure retries with exponential backoff until `attempts`,
//! then records it failed with its last error. A restart resumes whatever was pending.
//!
//! Channels are plug-ins ([`channel::Channel`]): a generic JSON webhook, WeCom and DingTalk
//! robots (group channels, each with its severity filter), e-mail over SMTP and SMS through an
//! HTTP gateway template (personal channels, to a user's address).

pub mod channel;
pub mod policy;
pub mod record;

use crate::business::workorders::model::{ActionKind, OrderState, WorkOrder};
use crate::business::workorders::WorkOrders;
use crate::store::records::{Records, RecordsError};
use cistern_actors::alarms::{LogOutbox, Outbox};
use cistern_rules::{AlarmSource, Notification, NotificationKind, Severity};
use cistern_schemas::Timestamp;
use policy::{local_minute, Preference, QuietHours, RateLimit, Suppression};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use record::{Delivery, DeliveryId, DeliveryStore, Status, Stored};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What went wrong in the notifications.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error("corrupt notification record: {0}")]
    Corrupt(String),
    #[error("{0} stayed busy")]
    Busy(&'static str),
    #[error("[notify] {0}")]
    Config(String),
}

/// A channel's kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A generic JSON webhook (POST).
    #[default]
    Webhook,
    /// A WeCom (企业微信) group robot.
    Wecom,
    /// A DingTalk (钉钉) group robot, signed when it has a secret.
    Dingtalk,
    /// E-mail over SMTP, to a user's `email`.
    Email,
    /// SMS through an HTTP gateway, to a user's `phone`.
    Sms,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::Webhook,
        ChannelKind::Wecom,
        ChannelKind::Dingtalk,
        ChannelKind::Email,
        ChannelKind::Sms,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
        }
    }

    /// Delivers to one place (a group), not to a person's address.
    pub fn is_group(self) -> bool {
        matches!(
            self,
            ChannelKind::Webhook | ChannelKind::Wecom | ChannelKind::Dingtalk
        )
    }

    /// Messages a minute when not configured: the robots' documented 20, else no limit.
    pub fn default_per_minute(self) -> u32 {
        match self {
            ChannelKind::Wecom | ChannelKind::Dingtalk => 20,
            _ => 0,
        }
    }
}

/// A robot's message format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageFormat {
    #[default]
    Markdown,
    Text,
}

/// How an e-mail channel talks to its SMTP server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the host or the LAN).
    #[default]
    None,
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

/// `[[notify.channels]]`: one channel; which fields apply depends on `kind`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// webhook, wecom, dingtalk, sms: the endpoint (`https://`, or `http://` to a local
    /// relay). For sms `{phone}` and `{text}` are filled in, percent-encoded.
    pub url: Option<String>,
    /// https: trust this CA (PEM) for the endpoint instead of the public roots (an internal
    /// receiver with the utility's own certificates).
    #[serde(default)]
    pub ca: Option<std::path::PathBuf>,
    /// dingtalk: the robot's signing secret (`SEC…`).
    pub secret: Option<String>,
    /// wecom, dingtalk: `markdown` (default) or `text`.
    #[serde(default)]
    pub format: MessageFormat,
    /// Group channels: the severities they take (empty: all).
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// Messages a minute (robots 20 by default, others unlimited; 0: unlimited).
    pub per_minute: Option<u32>,
    /// Group channels: the language of their texts (default zh-CN).
    pub language: Option<String>,
    /// Per request (default: `[notify] timeout`).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// email: the SMTP server.
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    pub from: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// sms: `POST` (default), `PUT` or `GET`.
    pub method: Option<String>,
    /// sms: request headers (`{phone}`, `{text}` filled in).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// sms: the body template; `{phone}` and `{text}` are filled in, JSON-escaped when the
    /// template is JSON (starts with `{` or `[`).
    pub body: Option<String>,
}

impl ChannelConfig {
    pub fn per_minute(&self) -> u32 {
        self.per_minute
            .unwrap_or_else(|| self.kind.default_per_minute())
    }

    fn check(&self) -> Result<(), String> {
        let needs = |field: &str, v: &Option<String>| match v {
            Some(s) if !s.trim().is_empty() => Ok(()),
            _ => Err(format!(
                "channel {:?} ({}) needs `{field}`",
                self.name,
                self.kind.as_str()
            )),
        };
        match self.kind {
            ChannelKind::Webhook | ChannelKind::Wecom | ChannelKind::Dingtalk => {
                needs("url", &self.url)?;
            }
            ChannelKind::Sms => {
                needs("url", &self.url)?;
                needs("body", &self.body)?;
                if let Some(m) = &self.method {
                    if !["GET", "POST", "PUT"].contains(&m.to_ascii_uppercase().as_str()) {
                        return Err(format!(
                            "channel {:?}: method {m:?} is not GET, POST or PUT",
                            self.name
                        ));
                    }
                }
            }
            ChannelKind::Email => {
                needs("smtp_host", &self.smtp_host)?;
                needs("from", &self.from)?;
            }
        }
        if let Some(url) = &self.url {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(format!(
                    "channel {:?}: url {url:?} must be https:// (or http:// to a local relay)",
                    self.name
                ));
            }
            if self.ca.is_some() && !url.starts_with("https://") {
                return Err(format!(
                    "channel {:?}: `ca` is for an https:// url",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// `[[notify.users]]`: a platform user's addresses and preferences.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The platform user's name (the work orders' assignees, leads and managers).
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The personal channels to use (empty: every personal channel the user has an address
    /// for).
    #[serde(default)]
    pub channels: Vec<String>,
    /// The severities the user takes (empty: all).
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// The rules' notification targets the user answers to (`shift_lead`, `*` for all); work
    /// orders reach the user by name regardless.
    #[serde(default)]
    pub alarms: Vec<String>,
    /// Local hours not to be disturbed (`"22:00-07:00"`).
    pub quiet_hours: Option<QuietHours>,
    /// P1 through quiet hours (default true).
    #[serde(default = "yes")]
    pub p1_in_quiet_hours: bool,
}

fn yes() -> bool {
    true
}

/// `[notify]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    pub enabled: bool,
    /// Events waiting for the intake; beyond, an alarm notification is dropped and counted.
    pub queue: usize,
    /// Attempts per delivery before it is recorded failed.
    pub attempts: u32,
    /// The wait after the first failed attempt, doubled after each, at most `backoff_max`.
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Per request (a channel may set its own).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The same event to the same recipient on the same channel within this is suppressed.
    #[serde(with = "humantime_serde")]
    pub dedupe_window: Duration,
    /// How often the sender looks for due deliveries (it is also woken by new ones).
    #[serde(with = "humantime_serde")]
    pub poll_every: Duration,
    /// Local time of quiet hours and texts = UTC + this many minutes (Beijing: 480).
    pub utc_offset_minutes: i32,
    pub channels: Vec<ChannelConfig>,
    pub users: Vec<UserConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            queue: 10_000,
            attempts: 5,
            backoff: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            dedupe_window: Duration::from_secs(600),
            poll_every: Duration::from_secs(1),
            utc_offset_minutes: 480,
            channels: Vec::new(),
            users: Vec::new(),
        }
    }
}

impl NotifyConfig {
    /// The `[notify]` section of a TOML file (the demo's `--notify FILE`), validated.
    pub fn load_section(path: &std::path::Path) -> Result<Self, NotifyError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            notify: NotifyConfig,
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| NotifyError::Config(format!("cannot read {}: {e}", path.display())))?;
        let file: File = toml::from_str(&text)
            .map_err(|e| NotifyError::Config(format!("{}: {e}", path.display())))?;
        file.notify.validate()?;
        Ok(file.notify)
    }

    /// Takes the deprecated `[rules.webhook]` as a webhook channel named `rules-webhook`,
    /// with a warning.
    pub fn adopt_rules_webhook(&mut self, legacy: &crate::alarms::LegacyWebhook) {
        // Warned about when the notifications start (the log is not set up yet here).
        self.channels.push(ChannelConfig {
            name: "rules-webhook".into(),
            kind: ChannelKind::Webhook,
            url: Some(legacy.url.clone()),
            timeout: legacy.timeout,
            ..ChannelConfig::default()
        });
    }

    /// Checks what serde cannot: each channel's fields, unique names, users' channels.
    pub fn validate(&self) -> Result<(), NotifyError> {
        let mut names = HashSet::new();
        for c in &self.channels {
            if !names.insert(c.name.as_str()) || c.name.trim().is_empty() {
                return Err(NotifyError::Config(format!(
                    "channel name {:?} is empty or repeated",
                    c.name
                )));
            }
            c.check().map_err(NotifyError::Config)?;
        }
        let mut users = HashSet::new();
        for u in &self.users {
            if !users.insert(u.name.as_str()) {
                return Err(NotifyError::Config(format!(
                    "user {:?} is repeated",
                    u.name
                )));
            }
            if let Some(c) = u.channels.iter().find(|c| !names.contains(c.as_str())) {
                return Err(NotifyError::Config(format!(
                    "user {:?} names channel {c:?}, which is not configured",
                    u.name
                )));
            }
        }
        if self.attempts == 0 || self.queue == 0 {
            return Err(NotifyError::Config(
                "attempts and queue must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Counters and gauges (labels bounded: channel kind × result).
#[derive(Clone, Debug)]
pub struct NotifyMetrics {
    /// By channel kind and result: sent, failed (every attempt), retried (an attempt failed,
    /// another follows), suppressed, rate_limited (held for a slot).
    pub deliveries: IntCounterVec,
    /// Events not taken because the queue was full (alarm notifications) or missed because
    /// the order feed ran ahead (order events), by source.
    pub dropped: IntCounterVec,
    pub pending: IntGauge,
    pub oldest_pending_seconds: IntGauge,
}

impl NotifyMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            deliveries: IntCounterVec::new(
                Opts::new(
                    "cistern_notify_deliveries_total",
                    "Notification deliveries by channel kind and result (sent, failed, retried, suppressed, rate_limited)",
                ),
                &["kind", "result"],
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "cistern_notify_dropped_total",
                    "Notification events not taken, by source (alarm: queue full; order: feed lagged)",
                ),
                &["source"],
            )?,
            pending: IntGauge::new(
                "cistern_notify_pending",
                "Deliveries waiting (first attempt, retry or rate-limit slot)",
            )?,
            oldest_pending_seconds: IntGauge::new(
                "cistern_notify_oldest_pending_seconds",
                "Age of the oldest pending delivery",
            )?,
        };
        registry.register(Box::new(m.deliveries.clone()))?;
        registry.register(Box::new(m.dropped.clone()))?;
        registry.register(Box::new(m.pending.clone()))?;
        registry.register(Box::new(m.oldest_pending_seconds.clone()))?;
        for k in ChannelKind::ALL {
            for r in ["sent", "failed", "retried", "suppressed", "rate_limited"] {
                m.deliveries.with_label_values(&[k.as_str(), r]);
            }
        }
        for s in ["alarm", "order", "reminder"] {
            m.dropped.with_label_values(&[s]);
        }
        Ok(m)
    }
}

/// What the intake takes.
#[derive(Debug)]
pub enum Event {
    Alarm(Notification),
    Order(Arc<WorkOrder>),
    Reminder(Reminder),
}

/// A reminder from the business layer (a tank cleaning falling due) to named users, in both
/// languages. `key` names the occasion: the same key is sent once per dedupe window.
#[derive(Clone, Debug, PartialEq)]
pub struct Reminder {
    /// What kind of reminder (`cleaning_due`): the delivery's event.
    pub event: String,
    pub key: String,
    pub to: Vec<String>,
    pub severity: Severity,
    /// (title, text) in Chinese and in English.
    pub zh: (String, String),
    pub en: (String, String),
}

/// Where the business layer posts its reminders: the notifier's intake, without waiting (a full
/// queue drops the reminder, counted and logged; the next sweep does not resend it).
#[derive(Clone, Debug)]
pub struct ReminderSender {
    tx: mpsc::Sender<Event>,
    metrics: NotifyMetrics,
}

impl ReminderSender {
    /// Hands `reminder` to the intake; false when it was dropped.
    pub fn send(&self, reminder: Reminder) -> bool {
        match self.tx.try_send(Event::Reminder(reminder)) {
            Ok(()) => true,
            Err(_) => {
                self.metrics.dropped.with_label_values(&["reminder"]).inc();
                tracing::warn!("notification queue full or closed; reminder dropped");
                false
            }
        }
    }
}

/// The alarm engine's outbox: logs every notification and hands it to the intake without ever
/// waiting (a full queue drops it, counted and logged).
#[derive(Debug)]
pub struct AlarmOutbox {
    tx: Option<mpsc::Sender<Event>>,
    metrics: NotifyMetrics,
}

impl AlarmOutbox {
    /// A sender of reminders into the same intake (none when notifications are off).
    pub fn reminders(&self) -> Option<ReminderSender> {
        self.tx.as_ref().map(|tx| ReminderSender {
            tx: tx.clone(),
            metrics: self.metrics.clone(),
        })
    }
}

impl Outbox for AlarmOutbox {
    fn send(&self, notification: Notification) {
        if let Some(tx) = &self.tx {
            match tx.try_send(Event::Alarm(notification.clone())) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.metrics.dropped.with_label_values(&["alarm"]).inc();
                    tracing::warn!(key = %notification.key, "notification queue full; notification dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.metrics.dropped.with_label_values(&["alarm"]).inc();
                }
            }
        }
        LogOutbox.send(notification);
    }
}

/// The outbox for the alarm engine and the intake's end of its queue (none when off).
pub fn outbox(
    config: &NotifyConfig,
    metrics: NotifyMetrics,
) -> (AlarmOutbox, Option<mpsc::Receiver<Event>>) {
    if !config.enabled {
        return (AlarmOutbox { tx: None, metrics }, None);
    }
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    (
        AlarmOutbox {
            tx: Some(tx),
            metrics,
        },
        Some(rx),
    )
}

/// The notification service: intake, sender, and the delivery records the API reads.
pub struct Notifier {
    config: NotifyConfig,
    store: DeliveryStore,
    channels: BTreeMap<String, (ChannelConfig, Box<dyn channel::Channel>)>,
    limits: Mutex<HashMap<String, RateLimit>>,
    in_flight: Mutex<HashSet<DeliveryId>>,
    seq: AtomicU64,
    wake: tokio::sync::Notify,
    metrics: NotifyMetrics,
    security: crate::auth::Security,
    workorders: Option<Arc<WorkOrders>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One recipient of an event.
struct Recipient {
    name: String,
    language: String,
}

/// What an event says, in both languages.
struct Texts {
    event: String,
    event_key: String,
    alarm: Option<String>,
    order: Option<String>,
    severity: Severity,
    /// (zh-CN, en) title and text.
    zh: (String, String),
    en: (String, String),
}

impl Texts {
    fn in_language(&self, language: &str) -> &(String, String) {
        if language == "en" {
            &self.en
        } else {
            &self.zh
        }
    }
}

/// The board's id of a notification's alarm.
fn alarm_id(n: &Notification) -> String {
    match &n.source {
        AlarmSource::Device(d) => format!("{}/{}", d.room, n.key),
        AlarmSource::Zone(z) => format!("zone:{z}/{}", n.key),
    }
}

fn hhmm(at_ms: i64, offset: i32) -> String {
    let m = local_minute(at_ms, offset);
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// The texts of a rule's notification.
fn alarm_texts(n: &Notification) -> Texts {
    let id = alarm_id(n);
    let sev = n.severity.as_str();
    let (event, detail, zh, en) = match &n.kind {
        NotificationKind::Escalation { step } => (
            "alarm_escalation",
            step.to_string(),
            format!("[{sev}] 告警升级（第 {step} 级）"),
            format!("[{sev}] Alarm escalated (step {step})"),
        ),
        NotificationKind::Recurrence { count, .. } => (
            "alarm_recurrence",
            n.time.as_millis().to_string(),
            format!("[{sev}] 告警反复出现（{count} 次）"),
            format!("[{sev}] Alarm recurring ({count} times)"),
        ),
        NotificationKind::Chattering { .. } => (
            "alarm_chattering",
            n.time.as_millis().to_string(),
            format!("[{sev}] 告警抖动，已搁置"),
            format!("[{sev}] Chattering alarm shelved"),
        ),
        NotificationKind::SandboxKill { .. } => (
            "rule_disabled",
            n.time.as_millis().to_string(),
            format!("[{sev}] 规则被停用"),
            format!("[{sev}] Rule disabled"),
        ),
    };
    Texts {
        event: event.into(),
        event_key: format!("alarm:{id}:{event}:{detail}"),
        alarm: Some(id.clone()),
        order: None,
        severity: n.severity,
        zh: (zh, format!("{id}：{}（通知对象：{}）", n.message, n.target)),
        en: (en, format!("{id}: {} (for {})", n.message, n.target)),
    }
}

/// The texts of an order event, and who hears it.
fn order_event(
    o: &WorkOrder,
    workorders: Option<&WorkOrders>,
    offset: i32,
) -> Option<(Texts, String)> {
    let index = o.transitions.len().checked_sub(1)?;
    let t = o.transitions.last()?;
    let room = o
        .room
        .as_ref()
        .map_or_else(|| "-".to_owned(), |r| r.to_string());
    let sev = o.priority.as_str();
    let id = o.id.as_str();
    let (event, to, zh, en) = match t.action {
        ActionKind::Create | ActionKind::Dispatch if t.to == OrderState::Dispatched => {
            let to = t.assignee.clone().or_else(|| o.assignee.clone())?;
            let due = hhmm(o.response_due.as_millis(), offset);
            (
                "order_dispatched",
                to,
                (
                    format!("[{sev}] 工单 {id} 已派发给您"),
                    format!("{}；泵房 {room}；请于 {due} 前响应", o.title_zh),
                ),
                (
                    format!("[{sev}] Work order {id} dispatched to you"),
                    format!("{}; room {room}; respond by {due}", o.title),
                ),
            )
        }
        ActionKind::Escalate => {
            let to = t.assignee.clone()?;
            (
                "order_escalated",
                to,
                (
                    format!("[{sev}] 工单 {id} 超时未处理，已升级给您"),
                    format!(
                        "{}；泵房 {room}；当前处理人 {}",
                        o.title_zh,
                        o.assignee.as_deref().unwrap_or("-")
                    ),
                ),
                (
                    format!("[{sev}] Work order {id} escalated to you (target missed)"),
                    format!(
                        "{}; room {room}; assignee {}",
                        o.title,
                        o.assignee.as_deref().unwrap_or("-")
                    ),
                ),
            )
        }
        ActionKind::Complete => {
            let team = o.team.as_deref()?;
            let lead = workorders?.roster().team(team)?.lead.clone();
            (
                "order_completed",
                lead,
                (
                    format!("[{sev}] 工单 {id} 已完成，请验收"),
                    format!("{}；泵房 {room}；完成人 {}", o.title_zh, t.by),
                ),
                (
                    format!("[{sev}] Work order {id} completed: please verify"),
                    format!("{}; room {room}; completed by {}", o.title, t.by),
                ),
            )
        }
        _ => return None,
    };
    Some((
        Texts {
            event: event.into(),
            event_key: format!("order:{id}:{}:{index}", t.action.as_str()),
            alarm: o.alarms.first().map(|a| a.alarm.clone()),
            order: Some(id.to_owned()),
            severity: o.priority,
            zh,
            en,
        },
        to,
    ))
}

/// What the API lists.
#[derive(Clone, Debug, PartialEq)]
pub enum Listing {
    Order(String),
    Alarm(String),
    Failed,
    Recent,
}

impl Notifier {
    /// Starts the intake, the order feed and the sender on `records`.
    pub fn start(
        config: NotifyConfig,
        records: Arc<dyn Records>,
        intake: mpsc::Receiver<Event>,
        workorders: Option<Arc<WorkOrders>>,
        security: crate::auth::Security,
        metrics: NotifyMetrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Arc<Self>, Vec<tokio::task::JoinHandle<()>>), NotifyError> {
        config.validate()?;
        if config.channels.iter().any(|c| c.name == "rules-webhook") {
            tracing::warn!("[rules.webhook] is deprecated: it is read as a [[notify.channels]] webhook named rules-webhook; move it to [notify]");
        }
        let mut channels = BTreeMap::new();
        for c in &config.channels {
            let ch = channel::build(c, config.timeout).map_err(NotifyError::Config)?;
            channels.insert(c.name.clone(), (c.clone(), ch));
        }
        let me = Arc::new(Self {
            store: DeliveryStore::new(records)?,
            channels,
            limits: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
            seq: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            metrics,
            security,
            workorders: workorders.clone(),
            config,
        });
        let mut tasks = vec![
            tokio::spawn(me.clone().run_intake(intake, shutdown.clone())),
            tokio::spawn(me.clone().run_sender(shutdown.clone())),
        ];
        if let Some(w) = workorders {
            tasks.push(tokio::spawn(me.clone().run_orders(w.subscribe(), shutdown)));
        }
        tracing::info!(
            channels = me.channels.len(),
            users = me.config.users.len(),
            "notifications started"
        );
        Ok((me, tasks))
    }

    /// Deliveries for the API, newest first.
    pub async fn list(&self, what: &Listing, limit: usize) -> Result<Vec<Delivery>, NotifyError> {
        match what {
            Listing::Order(o) => self.store.by_order(o, limit).await,
            Listing::Alarm(a) => self.store.by_alarm(a, limit).await,
            Listing::Failed => self.store.failed(limit).await,
            Listing::Recent => self.store.recent(limit).await,
        }
    }

    fn language_of(&self, user: &str) -> String {
        self.security
            .auth
            .user(user)
            .and_then(|u| u.language)
            .map_or_else(|| "zh-CN".to_owned(), |l| l.tag().to_owned())
    }

    async fn run_intake(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Event>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let event = tokio::select! {
                _ = shutdown.changed() => break,
                e = rx.recv() => match e { Some(e) => e, None => break },
            };
            let (texts, recipients) = match &event {
                Event::Alarm(n) => (alarm_texts(n), self.alarm_recipients(n)),
                Event::Order(o) => {
                    match order_event(
                        o,
                        self.workorders.as_deref(),
                        self.config.utc_offset_minutes,
                    ) {
                        Some((t, to)) => (t, self.users_named(&to)),
                        None => continue,
                    }
                }
                Event::Reminder(r) => (
                    Texts {
                        event: r.event.clone(),
                        event_key: r.key.clone(),
                        alarm: None,
                        order: None,
                        severity: r.severity,
                        zh: r.zh.clone(),
                        en: r.en.clone(),
                    },
                    r.to.iter().flat_map(|u| self.users_named(u)).collect(),
                ),
            };
            for (recipient, ch, address, pref) in recipients {
                if let Err(error) = self.record(&texts, &recipient, &ch, address, pref).await {
                    tracing::error!(%error, event = %texts.event_key, "cannot record a notification");
                }
            }
            self.wake.notify_one();
        }
    }

    /// Group channels and users answering to the notification's target.
    fn alarm_recipients(&self, n: &Notification) -> Vec<(Recipient, String, Option<String>, Pref)> {
        let mut out = Vec::new();
        for (name, (c, _)) in &self.channels {
            if c.kind.is_group() {
                out.push((
                    Recipient {
                        name: name.clone(),
                        language: c.language.clone().unwrap_or_else(|| "zh-CN".into()),
                    },
                    name.clone(),
                    None,
                    Pref {
                        severities: c.severities.clone(),
                        quiet: None,
                        p1_in_quiet_hours: true,
                    },
                ));
            }
        }
        for u in &self.config.users {
            if u.alarms.iter().any(|t| t == "*" || *t == n.target) {
                out.extend(self.personal(u));
            }
        }
        // The escalation ladder climbs the work orders' rosters: `shift_lead` is the lead of
        // the team serving the alarm's zone, `on_call` who of it is on call at the time.
        if let Some(w) = &self.workorders {
            let zone = match &n.source {
                AlarmSource::Device(d) => w.zone_of(&d.room),
                AlarmSource::Zone(z) => Some(z.clone()),
            };
            for name in w.roster().resolve(&n.target, zone.as_ref(), n.time) {
                for r in self.users_named(&name) {
                    if !out.iter().any(|o| o.0.name == r.0.name && o.1 == r.1) {
                        out.push(r);
                    }
                }
            }
        }
        out
    }

    fn users_named(&self, name: &str) -> Vec<(Recipient, String, Option<String>, Pref)> {
        match self.config.users.iter().find(|u| u.name == name) {
            Some(u) => self.personal(u),
            None => {
                tracing::debug!(user = name, "no [[notify.users]] entry: not notified");
                Vec::new()
            }
        }
    }

    /// A user's personal channels with an address.
    fn personal(&self, u: &UserConfig) -> Vec<(Recipient, String, Option<String>, Pref)> {
        let language = self.language_of(&u.name);
        self.channels
            .iter()
            .filter(|(name, (c, _))| {
                !c.kind.is_group() && (u.channels.is_empty() || u.channels.contains(name))
            })
            .filter_map(|(name, (c, _))| {
                let address = match c.kind {
                    ChannelKind::Email => u.email.clone(),
                    ChannelKind::Sms => u.phone.clone(),
                    _ => None,
                }?;
                Some((
                    Recipient {
                        name: u.name.clone(),
                        language: language.clone(),
                    },
                    name.clone(),
                    Some(address),
                    Pref {
                        severities: u.severities.clone(),
                        quiet: u.quiet_hours,
                        p1_in_quiet_hours: u.p1_in_quiet_hours,
                    },
                ))
            })
            .collect()
    }

    /// Persists one delivery: pending, or suppressed by preference or as a duplicate.
    async fn record(
        &self,
        texts: &Texts,
        r: &Recipient,
        ch: &str,
        address: Option<String>,
        pref: Pref,
    ) -> Result<(), NotifyError> {
        let Some((c, _)) = self.channels.get(ch) else {
            return Ok(());
        };
        let now = Timestamp::now().as_millis();
        let (title, text) = texts.in_language(&r.language).clone();
        let mut d = Delivery {
            id: DeliveryId::new(now, self.seq.fetch_add(1, Ordering::Relaxed)),
            event: texts.event.clone(),
            event_key: texts.event_key.clone(),
            alarm: texts.alarm.clone(),
            order: texts.order.clone(),
            severity: texts.severity,
            recipient: r.name.clone(),
            channel: ch.to_owned(),
            channel_kind: c.kind.as_str().to_owned(),
            address,
            language: r.language.clone(),
            title,
            text,
            status: Status::Pending,
            reason: None,
            rate_limited: false,
            attempts: 0,
            last_error: None,
            created_at: Timestamp(now),
            due_at: Timestamp(now),
            updated_at: Timestamp(now),
            sent_at: None,
        };
        let preference = Preference {
            severities: &pref.severities,
            quiet: pref.quiet,
            p1_in_quiet_hours: pref.p1_in_quiet_hours,
        };
        let minute = local_minute(now, self.config.utc_offset_minutes);
        let suppressed = match preference.admits(texts.severity, minute) {
            Err(s) => Some(s),
            Ok(()) => {
                let key = format!("{}|{}|{}", texts.event_key, r.name, ch);
                let window =
                    i64::try_from(self.config.dedupe_window.as_millis()).unwrap_or(i64::MAX);
                (!self.store.first_seen(&key, now, window).await?).then_some(Suppression::Duplicate)
            }
        };
        if let Some(s) = suppressed {
            d.status = Status::Suppressed;
            d.reason = Some(s.as_str().to_owned());
            self.count(c.kind, "suppressed");
        }
        self.store.put(&d, None).await?;
        Ok(())
    }

    fn count(&self, kind: ChannelKind, result: &str) {
        self.metrics
            .deliveries
            .with_label_values(&[kind.as_str(), result])
            .inc();
    }

    async fn run_orders(
        self: Arc<Self>,
        mut feed: tokio::sync::broadcast::Receiver<Arc<WorkOrder>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        // The intake's own queue: order events wait for room (they are not the alarm path).
        let (tx, rx) = mpsc::channel(self.config.queue.max(1));
        tokio::spawn(self.clone().run_intake(rx, shutdown.clone()));
        loop {
            let order = tokio::select! {
                _ = shutdown.changed() => break,
                o = feed.recv() => o,
            };
            match order {
                Ok(o) => {
                    if tx.send(Event::Order(o)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    self.metrics.dropped.with_label_values(&["order"]).inc_by(n);
                    tracing::warn!(missed = n, "notifications fell behind the work-order feed");
                }
                Err(RecvError::Closed) => break,
            }
        }
    }

    async fn run_sender(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_every) => {}
            }
            let now = Timestamp::now().as_millis();
            match self.store.due(now, 200).await {
                Ok(due) => {
                    for s in due {
                        let fresh = self
                            .in_flight
                            .lock()
                            .map(|mut f| f.insert(s.delivery.id.clone()))
                            .unwrap_or(false);
                        if fresh {
                            tokio::spawn(self.clone().attempt(s));
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read the pending notifications"),
            }
            if let Ok(pending) = self.store.pending(10_000).await {
                self.metrics
                    .pending
                    .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
                let oldest = pending
                    .iter()
                    .map(|s| s.delivery.created_at.as_millis())
                    .min()
                    .map_or(0, |c| (now - c).max(0) / 1_000);
                self.metrics.oldest_pending_seconds.set(oldest);
            }
        }
    }

    /// One attempt of a due delivery (or its move to the channel's next free slot).
    async fn attempt(self: Arc<Self>, s: Stored) {
        let id = s.delivery.id.clone();
        // The sender's list may predate an attempt that finished since (it wrote the record,
        // then released it): go by the record as it is now, or not at all.
        let now = Timestamp::now().as_millis();
        let current = match self.store.get(&id).await {
            Ok(Some(c))
                if c.version == s.version
                    && c.delivery.status == Status::Pending
                    && c.delivery.due_at.as_millis() <= now =>
            {
                c
            }
            other => {
                if let Err(error) = other {
                    tracing::warn!(%error, id = %id.0, "cannot read a due notification");
                }
                if let Ok(mut f) = self.in_flight.lock() {
                    f.remove(&id);
                }
                return;
            }
        };
        let Stored {
            mut delivery,
            version,
        } = current;
        let outcome = match self.channels.get(&delivery.channel) {
            None => {
                delivery.status = Status::Failed;
                delivery.last_error = Some(format!(
                    "channel {:?} is no longer configured",
                    delivery.channel
                ));
                None
            }
            Some((c, ch)) => {
                let slot = self
                    .limits
                    .lock()
                    .map(|mut l| {
                        l.entry(c.name.clone())
                            .or_insert_with(|| RateLimit::new(c.per_minute()))
                            .take(now)
                    })
                    .unwrap_or(Ok(()));
                match slot {
                    Err(next) => {
                        delivery.rate_limited = true;
                        delivery.due_at = Timestamp(next);
                        self.count(c.kind, "rate_limited");
                        None
                    }
                    Ok(()) => {
                        let m = channel::Message {
                            event: delivery.event.clone(),
                            severity: delivery.severity.as_str().to_owned(),
                            title: delivery.title.clone(),
                            text: delivery.text.clone(),
                            alarm: delivery.alarm.clone(),
                            order: delivery.order.clone(),
                            recipient: delivery.recipient.clone(),
                            address: delivery.address.clone(),
                            language: delivery.language.clone(),
                            at_ms: delivery.created_at.as_millis(),
                        };
                        Some((c.kind, ch.deliver(&m).await))
                    }
                }
            }
        };
        let done = Timestamp::now();
        if let Some((kind, result)) = outcome {
            delivery.attempts += 1;
            match result {
                Ok(()) => {
                    delivery.status = Status::Sent;
                    delivery.sent_at = Some(done);
                    self.count(kind, "sent");
                }
                Err(error) => {
                    tracing::warn!(id = %id.0, channel = %delivery.channel, attempt = delivery.attempts, %error, "notification attempt failed");
                    delivery.last_error = Some(error);
                    if delivery.attempts >= self.config.attempts {
                        delivery.status = Status::Failed;
                        self.count(kind, "failed");
                    } else {
                        let wait = policy::backoff(
                            self.config.backoff,
                            self.config.backoff_max,
                            delivery.attempts,
                        );
                        delivery.due_at = Timestamp(
                            done.as_millis()
                                + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2),
                        );
                        self.count(kind, "retried");
                    }
                }
            }
        }
        delivery.updated_at = done;
        if let Err(error) = self.store.put(&delivery, Some(version)).await {
            tracing::error!(%error, id = %id.0, "cannot record a notification attempt");
        }
        if let Ok(mut f) = self.in_flight.lock() {
            f.remove(&id);
        }
    }
}

/// A recipient's preferences, owned (for the intake).
#[derive(Clone, Debug)]
struct Pref {
    severities: Vec<Severity>,
    quiet: Option<QuietHours>,
    p1_in_quiet_hours: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cistern_rules::AlarmKey;
    use cistern_schemas::{DeviceId, RoomId};

    /// A notifier over `records` with `config`, no work orders and a fresh registry: what the
    /// sender tests start (the outbox and the stop sender are kept alive with it).
    struct Started {
        notifier: Arc<Notifier>,
        metrics: NotifyMetrics,
        _tasks: Vec<tokio::task::JoinHandle<()>>,
        _outbox: AlarmOutbox,
        _stop: watch::Sender<bool>,
    }

    fn start_notifier(config: NotifyConfig, records: Arc<dyn Records>) -> Started {
        let metrics = NotifyMetrics::register(&Registry::new()).unwrap();
        let (outbox, intake) = outbox(&config, metrics.clone());
        let (stop, shutdown) = watch::channel(false);
        let (notifier, tasks) = Notifier::start(
            config,
            records,
            intake.unwrap(),
            None,
            crate::auth::Security::default(),
            metrics.clone(),
            shutdown,
        )
        .unwrap();
        Started {
            notifier,
            metrics,
            _tasks: tasks,
            _outbox: outbox,
            _stop: stop,
        }
    }

    fn notification(step: u8) -> Notification {
        let key: AlarmKey = "pump_fault@P1".parse().unwrap();
        Notification {
            time: Timestamp(1_000),
            source: AlarmSource::Device(DeviceId::new(RoomId::new("XM-0001").unwrap(), key.unit)),
            rule: key.rule.clone(),
            key,
            severity: Severity::P1,
            target: "shift_lead".into(),
            message: "Pump P1 fault".into(),
            kind: NotificationKind::Escalation { step },
        }
    }

    #[test]
    fn the_alarm_outbox_never_waits_a_full_queue_drops_and_counts() {
        let metrics = NotifyMetrics::register(&Registry::new()).unwrap();
        let config = NotifyConfig {
            queue: 2,
            ..NotifyConfig::default()
        };
        let (outbox, rx) = outbox(&config, metrics.clone());
        let started = std::time::Instant::now();
        for step in 0..1_000 {
            outbox.send(notification(step as u8));
        }
        // Nobody reads the queue: two wait, the rest are dropped, and the sends took no time.
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(metrics.dropped.with_label_values(&["alarm"]).get(), 998);
        assert_eq!(rx.unwrap().len(), 2);
    }

    #[test]
    fn an_alarm_notification_names_its_board_id_and_is_worded_in_both_languages() {
        let t = alarm_texts(&notification(1));
        assert_eq!(t.alarm.as_deref(), Some("XM-0001/pump_fault@P1"));
        assert_eq!(t.event, "alarm_escalation");
        assert_eq!(
            t.event_key,
            "alarm:XM-0001/pump_fault@P1:alarm_escalation:1"
        );
        assert!(t.in_language("zh-CN").0.contains("告警升级"));
        assert!(t.in_language("en").0.contains("Alarm escalated (step 1)"));
        // An unknown language falls back to zh-CN.
        assert_eq!(t.in_language("fr"), t.in_language("zh-CN"));
    }

    #[test]
    fn a_channel_without_what_its_kind_needs_is_refused_and_the_old_webhook_is_adopted() {
        let mut c = NotifyConfig::default();
        c.channels.push(ChannelConfig {
            name: "mail".into(),
            kind: ChannelKind::Email,
            ..ChannelConfig::default()
        });
        assert!(c.validate().unwrap_err().to_string().contains("smtp_host"));
        let mut c = NotifyConfig::default();
        c.adopt_rules_webhook(&crate::alarms::LegacyWebhook {
            url: "http://127.0.0.1:9000/cistern".into(),
            timeout: Some(Duration::from_secs(3)),
            attempts: None,
            queue: None,
        });
        c.validate().unwrap();
        assert_eq!(c.channels[0].name, "rules-webhook");
        assert_eq!(c.channels[0].kind, ChannelKind::Webhook);
        c.channels[0].url = Some("https://example.com/hook".into());
        c.validate().unwrap();
        c.channels[0].url = Some("ftp://example.com/hook".into());
        assert!(c.validate().is_err(), "http or https only");
        c.channels.clear();
        c.users.push(UserConfig {
            name: "zhang.wei".into(),
            channels: vec!["nope".into()],
            ..UserConfig::default()
        });
        assert!(c.validate().is_err(), "a user naming an unknown channel");
    }

    /// A receiver answering 200 to every request; the bodies it took.
    fn receiver() -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut reader = BufReader::new(stream.unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let _ = tx.send(String::from_utf8(body).unwrap());
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        (url, rx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delivery_left_pending_by_a_previous_run_is_sent_after_a_restart() {
        let (_d, store) = record::tests::store("resume");
        let (url, bodies) = receiver();
        // What the previous process persisted before it died: a pending delivery, already
        // once attempted.
        let mut left = record::tests::delivery(7, 1_000);
        left.channel = "hook".into();
        left.channel_kind = "webhook".into();
        left.attempts = 1;
        left.last_error = Some("connection refused".into());
        store.put(&left, None).await.unwrap();
        let records = record::tests::records_of(&store);
        let config = NotifyConfig {
            poll_every: Duration::from_millis(50),
            channels: vec![ChannelConfig {
                name: "hook".into(),
                kind: ChannelKind::Webhook,
                url: Some(url),
                ..ChannelConfig::default()
            }],
            ..NotifyConfig::default()
        };
        let _started = start_notifier(config, records);
        let body =
            tokio::task::spawn_blocking(move || bodies.recv_timeout(Duration::from_secs(10)))
                .await
                .unwrap()
                .expect("the pending delivery sent after the restart");
        assert!(body.contains("WO-2026-000001"), "{body}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let d = store.get(&left.id).await.unwrap().unwrap().delivery;
            if d.status == Status::Sent {
                assert_eq!(d.attempts, 2);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "still {d:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            store.due(i64::MAX / 2, 10).await.unwrap().is_empty(),
            "nothing pending"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_its_rate_limit_a_channel_holds_the_next_delivery_for_its_slot_never_drops_it() {
        let (_d, store) = record::tests::store("ratelimit");
        let (url, bodies) = receiver();
        let now = Timestamp::now().as_millis();
        let (first, mut second) = (
            record::tests::delivery(1, now),
            record::tests::delivery(2, now),
        );
        for d in [&first, &second] {
            let mut d = d.clone();
            d.channel = "robot".into();
            d.channel_kind = "wecom".into();
            store.put(&d, None).await.unwrap();
        }
        let config = NotifyConfig {
            poll_every: Duration::from_millis(50),
            channels: vec![ChannelConfig {
                name: "robot".into(),
                kind: ChannelKind::Webhook,
                url: Some(url),
                per_minute: Some(1),
                ..ChannelConfig::default()
            }],
            ..NotifyConfig::default()
        };
        let started = start_notifier(config, record::tests::records_of(&store));
        // Both were due at once: whichever took the slot went out, the other was held.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let (a, b) = loop {
            let x = store.get(&first.id).await.unwrap().unwrap().delivery;
            second = store.get(&second.id).await.unwrap().unwrap().delivery;
            match (x.status, second.status) {
                (Status::Sent, _) if second.rate_limited => break (x, second.clone()),
                (_, Status::Sent) if x.rate_limited => break (second.clone(), x),
                _ => {}
            }
            assert!(std::time::Instant::now() < deadline, "{x:?} {second:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // One went out; the other waits, pending, for the slot a minute after the first.
        assert_eq!(a.attempts, 1);
        assert_eq!((b.status, b.attempts), (Status::Pending, 0));
        let slot = b.due_at.as_millis() - now;
        assert!(
            (59_000..=61_000).contains(&slot),
            "due {slot} ms after the first"
        );
        assert_eq!(
            started
                .metrics
                .deliveries
                .with_label_values(&["webhook", "rate_limited"])
                .get(),
            1
        );
        let one = tokio::task::spawn_blocking(move || {
            let first = bodies.recv_timeout(Duration::from_secs(5));
            (first, bodies.recv_timeout(Duration::from_millis(300)))
        })
        .await
        .unwrap();
        assert!(
            one.0.is_ok() && one.1.is_err(),
            "exactly one request: {one:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_attempt_from_a_stale_listing_sends_nothing_and_leaves_the_record_alone() {
        let (_d, store) = record::tests::store("stale");
        let (url, bodies) = receiver();
        let now = Timestamp::now().as_millis();
        let mut d = record::tests::delivery(1, now);
        d.channel = "hook".into();
        d.channel_kind = "webhook".into();
        let v1 = store.put(&d, None).await.unwrap();
        let stale = store.get(&d.id).await.unwrap().unwrap();
        // Meanwhile an attempt finished and moved the next one a minute on.
        d.attempts = 1;
        d.due_at = Timestamp(now + 60_000);
        let v2 = store.put(&d, Some(v1)).await.unwrap();
        let config = NotifyConfig {
            channels: vec![ChannelConfig {
                name: "hook".into(),
                kind: ChannelKind::Webhook,
                url: Some(url),
                ..ChannelConfig::default()
            }],
            ..NotifyConfig::default()
        };
        let started = start_notifier(config, record::tests::records_of(&store));
        let notifier = started.notifier.clone();
        notifier.clone().attempt(stale).await;
        let got =
            tokio::task::spawn_blocking(move || bodies.recv_timeout(Duration::from_millis(500)))
                .await
                .unwrap();
        assert!(got.is_err(), "a request was sent: {got:?}");
        let now_stored = store.get(&d.id).await.unwrap().unwrap();
        assert_eq!((now_stored.version, now_stored.delivery), (v2, d));
    }
}
