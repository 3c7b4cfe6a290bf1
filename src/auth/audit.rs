//! The audit log: who did what, when, and whether it took effect — logins (and failed ones),
//! alarm commands, rule changes, set-point writes, user and token changes.
//!
//! Every entry goes three ways: a bounded in-memory ring (the newest entries, for a node
//! without storage), live subscribers (the WebSocket hub's audit stream), and — when the node
//! has storage — the store's `audit` event stream, written behind in batches so that recording
//! never waits on a disk. A query first flushes what is pending, so it sees every entry
//! recorded before it.
//!
//! Every entry is also put on a hash chain when it is recorded ([`super::audit_chain`]: `seq`,
//! `prev`, `hash`, given under the one lock that appends it, so the write-behind flush cannot
//! reorder it), carries where it came from (`source`: the request's address through
//! [`REQUEST_SOURCE`], else `system`), its category and result, is optionally forwarded
//! ([`super::audit_forward`]) and, with a retention, pruned behind an anchor entry
//! ([`AuditLog::prune`]).

use super::audit_chain::{ChainHead, PruneAnchor, Verifier, VerifyReport, PRUNED_ACTION};
use crate::store::{Store, StoreError, StoredEvent};
use cistern_schemas::Timestamp;
use prometheus::{IntCounter, IntCounterVec, Opts};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// The store stream audit entries are appended to.
pub const AUDIT_STREAM: &str = "audit";

/// Every action the node audits (the `action` of an entry). The console names each in both
/// languages and offers it as a filter; a test holds the three together.
pub const ACTIONS: &[&str] = &[
    "login",
    "login_failed",
    "login_throttled",
    "login_unlock",
    "logout",
    "session_end",
    "password_change",
    "alarm_ack",
    "alarm_shelve",
    "alarm_unshelve",
    "alarm_reset",
    "alarm_remove_from_service",
    "alarm_return_to_service",
    "rule_put",
    "rule_reload",
    "setpoint_write",
    "plan_write",
    "user_create",
    "user_update",
    "user_delete",
    "token_create",
    "token_revoke",
    "gateway_put",
    "gateway_delete",
    "language_set",
    "workorder_create",
    "workorder_dispatch",
    "workorder_accept",
    "workorder_en_route",
    "workorder_on_site",
    "workorder_check",
    "workorder_complete",
    "workorder_verify",
    "workorder_reject",
    "workorder_hold",
    "workorder_resume",
    "workorder_cancel",
    "workorder_comment",
    "workorder_escalate",
    "workorder_attach",
    "knowledge_edit",
    "component_event",
    "spare_stock_set",
    "workorder_unknown",
    "asset_project_create",
    "asset_project_update",
    "asset_project_delete",
    "asset_room_put",
    "asset_equipment_add",
    "asset_equipment_edit",
    "asset_equipment_replace",
    "asset_equipment_remove",
    "asset_document_attach",
    "asset_import",
    "cleaning_record",
    "cleaning_interval",
    "inspection_start",
    "inspection_item",
    "inspection_order",
    "inspection_finish",
    "analysis_recompute",
    "cockpit_board",
    "data_export",
    "audit_export",
    "audit_verify",
    "audit_pruned",
    "backup",
    "restore",
];

/// Every category of action (the `category` of an entry), derived from the action
/// ([`category_of`]). The console names each in both languages.
pub const CATEGORIES: &[&str] = &[
    "auth",
    "session",
    "user",
    "device",
    "alarm",
    "control",
    "rule",
    "workorder",
    "asset",
    "inspection",
    "data",
    "config",
    "audit",
];

/// The category of `action` (see [`CATEGORIES`]).
pub fn category_of(action: &str) -> &'static str {
    match action {
        "login" | "login_failed" | "login_throttled" | "login_unlock" | "password_change" => "auth",
        "logout" | "session_end" => "session",
        "user_create" | "user_update" | "user_delete" | "token_create" | "token_revoke"
        | "language_set" => "user",
        "gateway_put" | "gateway_delete" => "device",
        "setpoint_write" | "plan_write" => "control",
        "rule_put" | "rule_reload" => "rule",
        "asset_import" | "data_export" | "audit_export" | "backup" | "restore" => "data",
        "audit_pruned" | "audit_verify" => "audit",
        "analysis_recompute" | "cockpit_board" | "cleaning_interval" => "config",
        a if a.starts_with("alarm_") => "alarm",
        a if a.starts_with("workorder_") || a == "knowledge_edit" => "workorder",
        a if a.starts_with("inspection_") || a == "cleaning_record" => "inspection",
        a if a.starts_with("asset_") || a == "component_event" || a == "spare_stock_set" => "asset",
        _ => "config",
    }
}

/// The `result` of an entry: taken (`ok`), refused by a check (`refused`: no right, bad
/// input, a rule of the domain), or failed on the way (`failed`: a device, the store).
pub fn result_of(ok: bool, detail: &str) -> &'static str {
    if ok {
        "ok"
    } else if detail.starts_with("refused") || detail.contains("wrong user name or password") {
        "refused"
    } else {
        "failed"
    }
}

/// The `source` of an entry made with no request behind it (timers, start-up).
pub const SYSTEM_SOURCE: &str = "system";

tokio::task_local! {
    /// The address of the HTTP request being served (set by the REST gate around each
    /// handler, and by the WebSocket session around each command): what an entry recorded
    /// without a `source` of its own takes.
    pub static REQUEST_SOURCE: String;
}

/// The source an entry recorded now takes: the request's address, else `system`.
fn current_source() -> String {
    REQUEST_SOURCE
        .try_with(Clone::clone)
        .unwrap_or_else(|_| SYSTEM_SOURCE.to_owned())
}

/// `f` under the current request's source: for work a request hands to a task of its own
/// (a task does not inherit task-locals).
pub fn carry_source<F: std::future::Future>(f: F) -> impl std::future::Future<Output = F::Output> {
    REQUEST_SOURCE.scope(current_source(), f)
}

/// One audited action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Where the action came from: the HTTP peer's address, `system` for the platform's own
    /// (timers, start-up), `cli` for a command-line tool. Empty in entries written before it
    /// was recorded.
    #[serde(default)]
    pub source: String,
    /// Who acted (`unknown` for a failed login under a name that does not exist; an API token
    /// acts as `token:<name>`).
    pub user: String,
    /// One of [`CATEGORIES`].
    #[serde(default)]
    pub category: String,
    /// What kind of action: one of [`ACTIONS`].
    pub action: String,
    /// The object it acted on (an alarm id, a rule id, a point id, a user name, a token id).
    pub target: String,
    /// Free text: the operator's comment, the written value, the outcome.
    pub detail: String,
    /// Whether the action took effect.
    pub ok: bool,
    /// `ok`, `refused` or `failed` ([`result_of`]).
    #[serde(default)]
    pub result: String,
    /// Position in this node's chain ([`super::audit_chain`]); none in entries written before
    /// the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The previous entry's hash.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prev: String,
    /// SHA-256 of `prev` and this entry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl AuditEntry {
    /// An entry stamped now (its source is filled in when it is recorded).
    pub fn now(
        user: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        detail: impl Into<String>,
        ok: bool,
    ) -> Self {
        let action = action.into();
        let detail = detail.into();
        Self {
            at_ms: Timestamp::now().as_millis(),
            source: String::new(),
            user: user.into(),
            category: category_of(&action).to_owned(),
            result: result_of(ok, &detail).to_owned(),
            action,
            target: target.into(),
            detail,
            ok,
            seq: None,
            prev: String::new(),
            hash: String::new(),
        }
    }

    /// The same entry from `source` (an address, `cli`, `system`).
    pub fn from_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Fills what an entry written by an older version lacks (category, result), for display.
    fn completed(mut self) -> Self {
        if self.category.is_empty() {
            self.category = category_of(&self.action).to_owned();
        }
        if self.result.is_empty() {
            self.result = result_of(self.ok, &self.detail).to_owned();
        }
        self
    }
}

/// Which entries a query wants. Both bounds inclusive.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub user: Option<String>,
    pub action: Option<String>,
    /// The newest `limit` matching entries are returned (in time order).
    pub limit: usize,
}

impl AuditQuery {
    fn matches(&self, e: &AuditEntry) -> bool {
        self.since_ms.is_none_or(|s| e.at_ms >= s)
            && self.until_ms.is_none_or(|u| e.at_ms <= u)
            && self.user.as_deref().is_none_or(|u| e.user == u)
            && self.action.as_deref().is_none_or(|a| e.action == a)
    }
}

/// How many entries the in-memory ring keeps.
const RECENT_ENTRIES: usize = 10_000;
/// Entries read from the store per page of a query.
const QUERY_PAGE: usize = 2_000;
/// A query reads at most this many stored entries (narrow the time range beyond it).
const QUERY_SCAN_MAX: usize = 500_000;
/// Pending entries kept while the store refuses writes; beyond it the oldest are dropped (and
/// logged): the ring and the log lines still have them, and the chain shows the gap.
const PENDING_MAX: usize = 100_000;
/// The state record that holds the chain head ([`ChainHead`]) beside the stream.
const HEAD_KIND: &str = "audit_chain";
const HEAD_KEY: &str = "head";

/// The audit log's own metrics.
#[derive(Clone, Debug)]
pub struct AuditMetrics {
    /// `cistern_audit_chain_breaks_total`: breaks found in the chain (at start, by a verify).
    pub chain_breaks: IntCounter,
    /// `cistern_audit_forward_dropped_total{sink="syslog|file"}`: entries a full forwarding
    /// queue (or a failing destination) lost.
    pub forward_dropped: IntCounterVec,
    /// `cistern_audit_forwarded_total{sink}`: entries delivered to a forwarding destination.
    pub forwarded: IntCounterVec,
    /// `cistern_audit_pruned_total`: entries removed by retention.
    pub pruned: IntCounter,
}

impl Default for AuditMetrics {
    #[allow(clippy::expect_used)] // constant, valid metric definitions
    fn default() -> Self {
        let vec = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["sink"]).expect("valid metric")
        };
        Self {
            chain_breaks: IntCounter::new(
                "cistern_audit_chain_breaks_total",
                "Breaks found in the audit log's hash chain",
            )
            .expect("valid metric"),
            forward_dropped: vec(
                "cistern_audit_forward_dropped_total",
                "Audit entries not forwarded (queue full or destination failing)",
            ),
            forwarded: vec(
                "cistern_audit_forwarded_total",
                "Audit entries delivered to a forwarding destination",
            ),
            pruned: IntCounter::new(
                "cistern_audit_pruned_total",
                "Audit entries removed by retention",
            )
            .expect("valid metric"),
        }
    }
}

impl AuditMetrics {
    pub fn register(&self, registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.chain_breaks.clone()))?;
        registry.register(Box::new(self.forward_dropped.clone()))?;
        registry.register(Box::new(self.forwarded.clone()))?;
        registry.register(Box::new(self.pruned.clone()))
    }
}

/// What the lock of [`AuditLog::record`] guards: the chain head and what has not reached the
/// store yet, so that positions are given in the order entries are appended.
#[derive(Debug, Default)]
struct Chain {
    head: ChainHead,
    pending: Vec<StoredEvent>,
}

/// Where entries persist: the node's store, driven on its I/O runtime.
#[derive(Debug)]
struct AuditStore {
    store: Arc<dyn Store>,
    io: tokio::runtime::Handle,
    /// Serialises flushes, so that entries land in order and a query waits for the one
    /// running.
    flushing: tokio::sync::Mutex<()>,
    stop: watch::Sender<bool>,
}

/// The audit log (see the module doc).
#[derive(Debug)]
pub struct AuditLog {
    live: broadcast::Sender<AuditEntry>,
    recent: Mutex<VecDeque<AuditEntry>>,
    chain: Mutex<Chain>,
    store: Option<AuditStore>,
    metrics: AuditMetrics,
    forward: std::sync::OnceLock<super::audit_forward::Forwarder>,
}

impl Default for AuditLog {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads every event of `stream` within `[from, to]` in `(t, id)` order, page by page,
/// handing each to `each` (false: stop).
pub(crate) async fn scan_events(
    store: &Arc<dyn Store>,
    io: &tokio::runtime::Handle,
    from: Timestamp,
    to: Timestamp,
    max: usize,
    mut each: impl FnMut(&StoredEvent) -> bool,
) -> Result<usize, StoreError> {
    let mut from = from;
    let mut last: Option<(Timestamp, u64)> = None;
    let mut scanned = 0;
    while scanned < max && from <= to {
        let s = store.clone();
        let page = io
            .spawn(async move { s.events(AUDIT_STREAM, from, to, QUERY_PAGE).await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("audit read task failed: {e}")))??;
        let full = page.len() == QUERY_PAGE;
        scanned += page.len();
        for ev in &page {
            // Pages overlap on the millisecond they end on.
            if last.is_some_and(|l| (ev.t, ev.id) <= l) {
                continue;
            }
            last = Some((ev.t, ev.id));
            if !each(ev) {
                return Ok(scanned);
            }
        }
        match (full, page.last()) {
            // A page wholly within one millisecond: move past it (chained entries have one
            // millisecond each; only entries from before the chain can share one).
            (true, Some(ev)) if ev.t == from => from = from + Duration::from_millis(1),
            (true, Some(ev)) => from = ev.t,
            _ => break,
        }
    }
    Ok(scanned)
}

/// The chain head recorded beside the stream, if any.
pub(crate) async fn recorded_head(
    store: &Arc<dyn Store>,
    io: &tokio::runtime::Handle,
) -> Result<Option<ChainHead>, StoreError> {
    let s = store.clone();
    let records = io
        .spawn(async move { s.state(HEAD_KIND).await })
        .await
        .map_err(|e| StoreError::Unavailable(format!("audit read task failed: {e}")))??;
    Ok(records
        .into_iter()
        .find(|(k, _)| k == HEAD_KEY)
        .and_then(|(_, v)| serde_json::from_slice(&v).ok()))
}

/// Walks the whole stored chain of `store` (a stopped node's, or the running node's after a
/// flush).
pub async fn verify_store(
    store: &Arc<dyn Store>,
    io: &tokio::runtime::Handle,
) -> Result<VerifyReport, StoreError> {
    let head = recorded_head(store, io).await?;
    let mut v = Verifier::new();
    scan_events(
        store,
        io,
        Timestamp::from_millis(0),
        Timestamp::from_millis(i64::MAX / 2),
        usize::MAX,
        |ev| {
            match serde_json::from_slice::<AuditEntry>(&ev.body) {
                Ok(e) => v.push(ev.t.0, &e),
                Err(_) => v.unreadable(ev.t.0),
            }
            true
        },
    )
    .await?;
    Ok(v.finish(head.as_ref()))
}

impl AuditLog {
    /// A log kept in memory only.
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            live,
            recent: Mutex::new(VecDeque::new()),
            chain: Mutex::new(Chain::default()),
            store: None,
            metrics: AuditMetrics::default(),
            forward: std::sync::OnceLock::new(),
        }
    }

    /// A log that also appends to `store` (on the runtime `io`), flushing every `every`. The
    /// chain continues from the last stored entry; the entries written since the recorded
    /// chain head are checked, and a break is logged and counted
    /// (`cistern_audit_chain_breaks_total`).
    pub async fn stored(
        store: Arc<dyn Store>,
        io: tokio::runtime::Handle,
        every: Duration,
    ) -> Result<Arc<Self>, StoreError> {
        let head = recorded_head(&store, &io).await?;
        // From the recorded head on (all of it when none is recorded: the first start with a
        // chain, or a head removed).
        let from = head.as_ref().map_or(0, |h| h.t.max(0));
        let mut v = match &head {
            Some(h) => Verifier::resume(h),
            None => Verifier::new(),
        };
        let mut tail: Option<(i64, AuditEntry)> = None;
        let mut last_t = i64::MIN;
        scan_events(
            &store,
            &io,
            Timestamp::from_millis(from),
            Timestamp::from_millis(i64::MAX / 2),
            usize::MAX,
            |ev| {
                last_t = ev.t.0;
                match serde_json::from_slice::<AuditEntry>(&ev.body) {
                    Ok(e) => {
                        v.push(ev.t.0, &e);
                        if e.seq.is_some() {
                            tail = Some((ev.t.0, e));
                        }
                    }
                    Err(_) => v.unreadable(ev.t.0),
                }
                true
            },
        )
        .await?;
        let report = v.finish(head.as_ref());
        let log = Self::new();
        log.count_breaks(
            &report,
            "at start (the entries since the last recorded head)",
        );
        let chain_head = match (tail, head) {
            (Some((t, e)), h) => ChainHead {
                next_seq: e.seq.unwrap_or(0) + 1,
                hash: e.hash,
                t: t.max(last_t).max(h.map_or(i64::MIN, |h| h.t)),
            },
            // The newest entries are gone: continue after what the node recorded, so the gap
            // stays visible.
            (None, Some(h)) => ChainHead {
                t: h.t.max(last_t),
                ..h
            },
            (None, None) => ChainHead {
                t: last_t,
                ..ChainHead::default()
            },
        };
        let (stop, mut stopped) = watch::channel(false);
        let log = Arc::new(Self {
            store: Some(AuditStore {
                store,
                io: io.clone(),
                flushing: tokio::sync::Mutex::new(()),
                stop,
            }),
            chain: Mutex::new(Chain {
                head: chain_head,
                pending: Vec::new(),
            }),
            ..log
        });
        // The finding is itself audited, so a copy elsewhere (forwarding) has it too.
        if let Some(b) = &report.first_break {
            log.record(
                AuditEntry::now(
                    "system",
                    "audit_verify",
                    "audit",
                    format!(
                        "chain broken, found at start: {} break(s), first {} at entry {}",
                        report.breaks,
                        b.kind.as_str(),
                        b.seq.map_or_else(|| "?".to_owned(), |s| s.to_string())
                    ),
                    false,
                )
                .from_source(SYSTEM_SOURCE),
            );
        }
        let weak = Arc::downgrade(&log);
        io.spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(50)));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let Some(log) = weak.upgrade() else { break };
                if let Err(error) = log.flush().await {
                    tracing::warn!(%error, "audit entries not written yet; retrying");
                }
            }
        });
        Ok(log)
    }

    /// Logs and counts (`cistern_audit_chain_breaks_total`) the breaks `report` found.
    fn count_breaks(&self, report: &VerifyReport, found: &str) {
        if let Some(b) = &report.first_break {
            self.metrics.chain_breaks.inc_by(report.breaks);
            tracing::error!(
                breaks = report.breaks,
                kind = b.kind.as_str(),
                "audit chain broken, found {found}: {}; `cistern audit verify` walks the whole log",
                b.message
            );
        }
    }

    /// The log's metrics (registered by the node).
    pub fn metrics(&self) -> &AuditMetrics {
        &self.metrics
    }

    /// Starts forwarding every entry from now on (`[audit.forward]`), on the runtime `io`.
    /// Once per log; later calls are ignored.
    pub fn forward_to(
        &self,
        config: &super::audit_config::ForwardConfig,
        io: &tokio::runtime::Handle,
    ) -> Result<(), super::audit_config::AuditConfigError> {
        let f = super::audit_forward::Forwarder::start(config, io, self.metrics.clone())?;
        if let Some(f) = f {
            let _ = self.forward.set(f);
        }
        Ok(())
    }

    /// Records an entry and sends it to live subscribers (a lagging subscriber loses the
    /// oldest entries and is told so by `broadcast`). An entry without a source takes the
    /// request's address ([`REQUEST_SOURCE`]), else `system`.
    pub fn record(&self, mut entry: AuditEntry) {
        if entry.source.is_empty() {
            entry.source = current_source();
        }
        if entry.category.is_empty() {
            entry.category = category_of(&entry.action).to_owned();
        }
        if entry.result.is_empty() {
            entry.result = result_of(entry.ok, &entry.detail).to_owned();
        }
        {
            // One lock: the position, the hash and the order of the pending writes agree.
            let mut chain = self.chain.lock().unwrap_or_else(|e| e.into_inner());
            let t = chain.head.link(&mut entry);
            if self.store.is_some() {
                match serde_json::to_vec(&entry) {
                    Ok(body) => {
                        if chain.pending.len() >= PENDING_MAX {
                            chain.pending.remove(0);
                            tracing::error!(
                                "audit store backlog full: the oldest unwritten entry was dropped"
                            );
                        }
                        chain.pending.push(StoredEvent {
                            t: Timestamp::from_millis(t),
                            id: entry.seq.unwrap_or(0),
                            body,
                        });
                    }
                    Err(error) => tracing::error!(%error, "cannot encode an audit entry"),
                }
            }
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() == RECENT_ENTRIES {
                recent.pop_front();
            }
            recent.push_back(entry.clone());
        }
        tracing::info!(
            source = %entry.source,
            user = %entry.user,
            action = %entry.action,
            target = %entry.target,
            result = %entry.result,
            seq = entry.seq.unwrap_or(0),
            "audit"
        );
        if let Some(f) = self.forward.get() {
            f.send(&entry);
        }
        let _ = self.live.send(entry);
    }

    /// Live entries from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AuditEntry> {
        self.live.subscribe()
    }

    /// The newest `limit` entries recorded since this process started, newest last.
    pub fn recent(&self, limit: usize) -> Vec<AuditEntry> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let skip = recent.len().saturating_sub(limit);
        recent.iter().skip(skip).cloned().collect()
    }

    /// Writes the pending entries to the store, then the chain head (nothing to do without a
    /// store). On failure they stay pending, in order, for the next flush.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let Some(s) = &self.store else {
            return Ok(0);
        };
        let _one_at_a_time = s.flushing.lock().await;
        let (batch, head) = {
            let mut chain = self.chain.lock().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut chain.pending), chain.head.clone())
        };
        if batch.is_empty() {
            return Ok(0);
        }
        // The head of what this batch writes (entries recorded since are not in it).
        let head = match batch.last() {
            Some(last) if last.id + 1 != head.next_seq => ChainHead {
                next_seq: last.id + 1,
                hash: serde_json::from_slice::<AuditEntry>(&last.body)
                    .map(|e| e.hash)
                    .unwrap_or_default(),
                t: last.t.0,
            },
            _ => head,
        };
        let n = batch.len();
        let store = s.store.clone();
        let sent = batch.clone();
        let written =
            s.io.spawn(async move {
                store.append_events(AUDIT_STREAM, sent).await?;
                let head = serde_json::to_vec(&head).unwrap_or_default();
                store
                    .put_state(HEAD_KIND, vec![(HEAD_KEY.to_owned(), Some(head))])
                    .await
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("audit write task failed: {e}")))
            .and_then(|r| r);
        if let Err(e) = written {
            let mut chain = self.chain.lock().unwrap_or_else(|e| e.into_inner());
            let newer = std::mem::replace(&mut chain.pending, batch);
            chain.pending.extend(newer);
            return Err(e);
        }
        Ok(n)
    }

    /// Stops the write-behind task after a last flush (at node shutdown).
    pub async fn close(&self) {
        if let Err(error) = self.flush().await {
            tracing::error!(%error, "audit entries lost at shutdown: the store refused them");
        }
        if let Some(s) = &self.store {
            let _ = s.stop.send(true);
        }
    }

    /// Walks the chain: the whole stored log (after a flush), else the in-memory ring. A break
    /// is logged and counted.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let report = match &self.store {
            Some(s) => {
                self.flush().await?;
                verify_store(&s.store, &s.io).await?
            }
            None => {
                let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                // The ring drops its oldest: start from the first one it holds.
                let mut v = match recent.front().and_then(|e| Some((e.seq?, e))) {
                    Some((seq, e)) if seq > 0 => Verifier::after(seq - 1, &e.prev),
                    _ => Verifier::new(),
                };
                for e in recent.iter() {
                    v.push(e.at_ms, e);
                }
                v.finish(None)
            }
        };
        self.count_breaks(&report, "by a verify of the whole log");
        Ok(report)
    }

    /// Removes the stored entries older than `before` (retention), after recording an
    /// `audit_pruned` entry that names where the kept chain starts (so that it still
    /// verifies). Returns how many went.
    pub async fn prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        let Some(s) = &self.store else {
            return Ok(0);
        };
        self.flush().await?;
        let mut old = 0u64;
        let mut first_kept: Option<(u64, String)> = None;
        scan_events(
            &s.store,
            &s.io,
            Timestamp::from_millis(0),
            Timestamp::from_millis(i64::MAX / 2),
            usize::MAX,
            |ev| {
                if ev.t < before {
                    old += 1;
                    return true;
                }
                if let Ok(e) = serde_json::from_slice::<AuditEntry>(&ev.body) {
                    if let Some(seq) = e.seq {
                        first_kept = Some((seq, e.prev));
                        return false;
                    }
                }
                true
            },
        )
        .await?;
        if old == 0 {
            return Ok(0);
        }
        // Nothing kept yet: the anchor itself will be the first kept entry.
        let (first_seq, first_prev) = first_kept.unwrap_or_else(|| {
            let chain = self.chain.lock().unwrap_or_else(|e| e.into_inner());
            (chain.head.next_seq, chain.head.hash.clone())
        });
        let anchor = PruneAnchor {
            removed: old,
            before_ms: before.as_millis(),
            first_seq,
            first_prev,
        };
        self.record(
            AuditEntry::now(
                "system",
                PRUNED_ACTION,
                "audit",
                serde_json::to_string(&anchor).unwrap_or_default(),
                true,
            )
            .from_source(SYSTEM_SOURCE),
        );
        // The anchor is stored before anything goes: a crash between leaves a chain that
        // still verifies from its start.
        self.flush().await?;
        let store = s.store.clone();
        let removed =
            s.io.spawn(async move { store.expire_events(AUDIT_STREAM, before).await })
                .await
                .map_err(|e| StoreError::Unavailable(format!("audit prune task failed: {e}")))??;
        self.metrics.pruned.inc_by(removed);
        tracing::info!(removed, before = %before, "old audit entries removed (retention)");
        Ok(removed)
    }

    /// Prunes entries older than `keep` every `every` (the first time a minute from now), on
    /// the store's runtime, until the log is dropped or closed.
    pub fn keep_for(self: &Arc<Self>, keep: Duration, every: Duration) {
        let Some(s) = &self.store else {
            return;
        };
        let weak = Arc::downgrade(self);
        let mut stopped = s.stop.subscribe();
        s.io.spawn(async move {
            let start = tokio::time::Instant::now() + Duration::from_secs(60);
            let mut tick = tokio::time::interval_at(start, every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let Some(log) = weak.upgrade() else { break };
                let before = Timestamp::now() - keep;
                if let Err(error) = log.prune(before).await {
                    tracing::warn!(%error, "audit retention: old entries not removed; retrying later");
                }
            }
        });
    }

    /// The entries matching `q`: from the store when there is one (everything ever recorded),
    /// else from the in-memory ring.
    pub async fn query(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = q.limit.max(1);
        let Some(s) = &self.store else {
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let mut out: Vec<AuditEntry> = recent
                .iter()
                .rev()
                .filter(|e| q.matches(e))
                .take(limit)
                .cloned()
                .collect();
            out.reverse();
            return Ok(out);
        };
        self.flush().await?;
        let from = Timestamp::from_millis(q.since_ms.unwrap_or(0));
        let to = Timestamp::from_millis(q.until_ms.unwrap_or(i64::MAX / 2));
        let mut out: VecDeque<AuditEntry> = VecDeque::new();
        scan_events(&s.store, &s.io, from, to, QUERY_SCAN_MAX, |ev| {
            match serde_json::from_slice::<AuditEntry>(&ev.body) {
                Ok(e) if q.matches(&e) => {
                    if out.len() == limit {
                        out.pop_front();
                    }
                    out.push_back(e.completed());
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "unreadable audit entry skipped"),
            }
            true
        })
        .await?;
        Ok(out.into())
    }
}

#[cfg(test)]
mod tests {
    use super::super::audit_chain::BreakKind;
    use super::*;

    fn entry(at_ms: i64, user: &str, action: &str) -> AuditEntry {
        AuditEntry {
            at_ms,
            ..AuditEntry::now(user, action, "t", "", true)
        }
    }

    fn sample(log: &AuditLog) {
        for i in 0..10 {
            let user = if i % 2 == 0 { "op1" } else { "op2" };
            let action = if i % 3 == 0 { "login" } else { "alarm_ack" };
            log.record(entry(1_000 + i, user, action));
        }
    }

    /// Every entry, in time order.
    async fn everything(log: &AuditLog) -> Vec<AuditEntry> {
        log.query(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
    }

    async fn check_queries(log: &AuditLog) {
        let all = everything(log).await;
        assert_eq!(all.len(), 10);
        assert!(all.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        let newest = log
            .query(&AuditQuery {
                limit: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            newest.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
            [1_007, 1_008, 1_009]
        );
        let op1_acks = log
            .query(&AuditQuery {
                user: Some("op1".into()),
                action: Some("alarm_ack".into()),
                since_ms: Some(1_002),
                until_ms: Some(1_008),
                limit: 100,
            })
            .await
            .unwrap();
        assert_eq!(
            op1_acks.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
            [1_002, 1_004, 1_008]
        );
    }

    #[tokio::test]
    async fn queries_filter_the_in_memory_ring() {
        let log = AuditLog::new();
        sample(&log);
        check_queries(&log).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_persist_in_the_store_and_queries_see_them_before_the_flush() {
        let dir = crate::store::embedded::tests::dir("audit-log");
        let store: Arc<dyn Store> =
            Arc::new(crate::store::embedded::EmbeddedStore::open(&dir).unwrap());
        let io = tokio::runtime::Handle::current();
        {
            let log = AuditLog::stored(store.clone(), io.clone(), Duration::from_secs(3600))
                .await
                .unwrap();
            sample(&log);
            check_queries(&log).await;
            log.close().await;
        }
        // A new log on the same store (a restart) reads what the first one wrote.
        let log = AuditLog::stored(store, io, Duration::from_secs(3600))
            .await
            .unwrap();
        check_queries(&log).await;
        assert!(log.recent(10).is_empty(), "the ring is per process");
    }

    async fn open(store: &Arc<dyn Store>) -> Arc<AuditLog> {
        AuditLog::stored(
            store.clone(),
            tokio::runtime::Handle::current(),
            Duration::from_secs(3600),
        )
        .await
        .unwrap()
    }

    fn store(name: &str) -> Arc<dyn Store> {
        let dir = crate::store::embedded::tests::dir(name);
        Arc::new(crate::store::embedded::EmbeddedStore::open(&dir).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_chain_continues_across_restarts_and_flushes() {
        let store = store("audit-chain-restart");
        let log = open(&store).await;
        sample(&log);
        log.flush().await.unwrap();
        log.record(entry(2_000, "op1", "login"));
        log.close().await;
        drop(log);
        let log = open(&store).await;
        assert_eq!(log.metrics().chain_breaks.get(), 0);
        log.record(entry(3_000, "op2", "logout"));
        let report = log.verify().await.unwrap();
        assert!(report.intact, "{report}");
        assert_eq!((report.checked, report.last_seq), (12, Some(11)));
        let all = everything(&log).await;
        assert_eq!(all.last().unwrap().seq, Some(11));
        assert!(all
            .iter()
            .all(|e| e.source == SYSTEM_SOURCE && e.result == "ok"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_edited_or_removed_stored_entry_is_found_at_start_and_by_verify() {
        let store = store("audit-chain-tamper");
        let log = open(&store).await;
        sample(&log);
        log.close().await;
        drop(log);
        let events = store
            .events(AUDIT_STREAM, Timestamp(0), Timestamp(i64::MAX / 2), 100)
            .await
            .unwrap();
        // Edited: a refusal turned into a success, the hash left as it was.
        let mut edited = events[4].clone();
        let mut e: AuditEntry = serde_json::from_slice(&edited.body).unwrap();
        e.ok = !e.ok;
        edited.body = serde_json::to_vec(&e).unwrap();
        store
            .append_events(AUDIT_STREAM, vec![edited])
            .await
            .unwrap();
        let log = open(&store).await;
        let report = log.verify().await.unwrap();
        let b = report.first_break.clone().unwrap();
        assert_eq!((b.kind, b.seq), (BreakKind::Altered, Some(4)), "{report}");
        assert!(log.metrics().chain_breaks.get() >= 1);
        // Removed: everything from the 8th on (the tail), caught against the recorded head.
        log.close().await;
        drop(log);
        store
            .expire_events(AUDIT_STREAM, Timestamp(i64::MAX / 2))
            .await
            .unwrap();
        store
            .append_events(AUDIT_STREAM, events[..8].to_vec())
            .await
            .unwrap();
        let log = open(&store).await;
        assert!(log.metrics().chain_breaks.get() >= 1, "seen at start");
        // The finding is recorded after the recorded head, so the gap stays in the chain.
        let finding = log.recent(1).pop().unwrap();
        assert_eq!(
            (finding.action.as_str(), finding.seq),
            ("audit_verify", Some(10))
        );
        assert!(
            finding.detail.contains("tail_missing"),
            "{}",
            finding.detail
        );
        let b = log.verify().await.unwrap().first_break.unwrap();
        assert_eq!((b.kind, b.seq), (BreakKind::Missing, Some(8)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pruning_leaves_a_chain_that_verifies() {
        let store = store("audit-chain-prune");
        let log = open(&store).await;
        sample(&log); // at 1_000 … 1_009
        log.record(entry(5_000, "op1", "login"));
        let removed = log.prune(Timestamp(1_005)).await.unwrap();
        assert_eq!(removed, 5);
        let report = log.verify().await.unwrap();
        assert!(report.intact, "{report}");
        assert_eq!(report.first_seq, Some(5));
        let anchor = log
            .query(&AuditQuery {
                action: Some(PRUNED_ACTION.into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let a: PruneAnchor = serde_json::from_str(&anchor[0].detail).unwrap();
        assert_eq!((a.removed, a.first_seq), (5, 5));
        // Without the anchor the cut start is a break.
        let mut v = Verifier::new();
        for e in everything(&log)
            .await
            .iter()
            .filter(|e| e.action != PRUNED_ACTION)
        {
            v.push(e.at_ms, e);
        }
        assert_eq!(
            v.finish(None).first_break.unwrap().kind,
            BreakKind::StartMissing
        );
    }

    #[tokio::test]
    async fn an_entry_takes_the_request_address_it_is_recorded_under() {
        let log = AuditLog::new();
        REQUEST_SOURCE
            .scope("192.0.2.7".to_owned(), async {
                log.record(AuditEntry::now("op1", "alarm_ack", "a", "", true));
                carry_source(async {
                    log.record(AuditEntry::now(
                        "op1",
                        "alarm_ack",
                        "b",
                        "refused: no",
                        false,
                    ));
                })
                .await;
            })
            .await;
        log.record(AuditEntry::now(
            "system",
            "workorder_escalate",
            "c",
            "",
            true,
        ));
        let got: Vec<_> = log
            .recent(3)
            .into_iter()
            .map(|e| (e.source, e.category, e.result))
            .collect();
        assert_eq!(
            got,
            [
                ("192.0.2.7".into(), "alarm".into(), "ok".into()),
                ("192.0.2.7".into(), "alarm".into(), "refused".into()),
                ("system".into(), "workorder".into(), "ok".into()),
            ]
        );
        assert!(log.verify().await.unwrap().intact);
    }

    #[test]
    fn every_action_has_a_category_and_old_entries_read() {
        for a in ACTIONS {
            assert!(CATEGORIES.contains(&category_of(a)), "{a}");
        }
        let old: AuditEntry = serde_json::from_str(
            r#"{"at_ms":1,"user":"u","action":"login_failed","target":"session","detail":"from x: wrong user name or password","ok":false}"#,
        )
        .unwrap();
        let e = old.completed();
        assert_eq!(
            (e.category.as_str(), e.result.as_str(), e.seq),
            ("auth", "refused", None)
        );
    }
}
