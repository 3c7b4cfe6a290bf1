//! The audit log: who did what, when, and whether it took effect — logins (and failed ones),
//! alarm commands, rule changes, set-point writes, user and token changes.
//!
//! Every entry goes three ways: a bounded in-memory ring (the newest entries, for a node
//! without storage), live subscribers (the WebSocket hub's audit stream), and — when the node
//! has storage — the store's `audit` event stream, written behind in batches so that recording
//! never waits on a disk. A query first flushes what is pending, so it sees every entry
//! recorded before it.

use crate::store::{Store, StoreError, StoredEvent};
use cistern_schemas::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
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
    "backup",
    "restore",
];

/// One audited action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who acted (`unknown` for a failed login under a name that does not exist; an API token
    /// acts as `token:<name>`).
    pub user: String,
    /// What kind of action: one of [`ACTIONS`].
    pub action: String,
    /// What it acted on (an alarm id, a rule id, a point id, a user name, a token id).
    pub target: String,
    /// Free text: the operator's comment, the written value, the outcome.
    pub detail: String,
    /// Whether the action took effect.
    pub ok: bool,
}

impl AuditEntry {
    /// An entry stamped now.
    pub fn now(
        user: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        detail: impl Into<String>,
        ok: bool,
    ) -> Self {
        Self {
            at_ms: Timestamp::now().as_millis(),
            user: user.into(),
            action: action.into(),
            target: target.into(),
            detail: detail.into(),
            ok,
        }
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
/// logged): the ring and the log lines still have them.
const PENDING_MAX: usize = 100_000;

/// Where entries persist: the node's store, driven on its I/O runtime.
#[derive(Debug)]
struct AuditStore {
    store: Arc<dyn Store>,
    io: tokio::runtime::Handle,
    pending: Mutex<Vec<StoredEvent>>,
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
    store: Option<AuditStore>,
    seq: AtomicU64,
}

impl Default for AuditLog {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditLog {
    /// A log kept in memory only.
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            live,
            recent: Mutex::new(VecDeque::new()),
            store: None,
            seq: AtomicU64::new(0),
        }
    }

    /// A log that also appends to `store` (on the runtime `io`), flushing every `every`.
    pub fn stored(store: Arc<dyn Store>, io: tokio::runtime::Handle, every: Duration) -> Arc<Self> {
        let (stop, mut stopped) = watch::channel(false);
        let log = Arc::new(Self {
            store: Some(AuditStore {
                store,
                io: io.clone(),
                pending: Mutex::new(Vec::new()),
                flushing: tokio::sync::Mutex::new(()),
                stop,
            }),
            ..Self::new()
        });
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
        log
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
        if let Some(store) = &self.store {
            match serde_json::to_vec(&entry) {
                Ok(body) => {
                    // Unique within the process; after a restart the clock has moved on.
                    let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                    let mut keyed = body.clone();
                    keyed.extend_from_slice(&seq.to_le_bytes());
                    let event = StoredEvent {
                        t: Timestamp::from_millis(entry.at_ms),
                        id: crate::alarms::stored::fnv(&keyed),
                        body,
                    };
                    let mut pending = store.pending.lock().unwrap_or_else(|e| e.into_inner());
                    if pending.len() >= PENDING_MAX {
                        pending.remove(0);
                        tracing::error!(
                            "audit store backlog full: the oldest unwritten entry was dropped"
                        );
                    }
                    pending.push(event);
                }
                Err(error) => tracing::error!(%error, "cannot encode an audit entry"),
            }
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

    /// Writes the pending entries to the store (nothing to do without one). On failure they
    /// stay pending, in order, for the next flush.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let Some(s) = &self.store else {
            return Ok(0);
        };
        let _one_at_a_time = s.flushing.lock().await;
        let batch = std::mem::take(&mut *s.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        let store = s.store.clone();
        let sent = batch.clone();
        let written =
            s.io.spawn(async move { store.append_events(AUDIT_STREAM, sent).await })
                .await
                .map_err(|e| StoreError::Unavailable(format!("audit write task failed: {e}")))
                .and_then(|r| r);
        if let Err(e) = written {
            let mut pending = s.pending.lock().unwrap_or_else(|e| e.into_inner());
            let newer = std::mem::replace(&mut *pending, batch);
            pending.extend(newer);
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
        let mut from = Timestamp::from_millis(q.since_ms.unwrap_or(0));
        let to = Timestamp::from_millis(q.until_ms.unwrap_or(i64::MAX / 2));
        let mut last: Option<(Timestamp, u64)> = None;
        let mut out: VecDeque<AuditEntry> = VecDeque::new();
        let mut scanned = 0;
        while scanned < QUERY_SCAN_MAX && from <= to {
            let store = s.store.clone();
            let page = s
                .io
                .spawn(async move { store.events(AUDIT_STREAM, from, to, QUERY_PAGE).await })
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
                match serde_json::from_slice::<AuditEntry>(&ev.body) {
                    Ok(e) if q.matches(&e) => {
                        if out.len() == limit {
                            out.pop_front();
                        }
                        out.push_back(e);
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "unreadable audit entry skipped"),
                }
            }
            match (full, page.last()) {
                // A page wholly within one millisecond: move past it (entries recorded in
                // that same millisecond beyond one page are not returned).
                (true, Some(ev)) if ev.t == from => from = from + Duration::from_millis(1),
                (true, Some(ev)) => from = ev.t,
                _ => break,
            }
        }
        Ok(out.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: i64, user: &str, action: &str) -> AuditEntry {
        AuditEntry {
            at_ms,
            user: user.into(),
            action: action.into(),
            target: "t".into(),
            detail: String::new(),
            ok: true,
        }
    }

    fn sample(log: &AuditLog) {
        for i in 0..10 {
            let user = if i % 2 == 0 { "op1" } else { "op2" };
            let action = if i % 3 == 0 { "login" } else { "alarm_ack" };
            log.record(entry(1_000 + i, user, action));
        }
    }

    async fn check_queries(log: &AuditLog) {
        let all = log
            .query(&AuditQuery {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
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
            let log = AuditLog::stored(store.clone(), io.clone(), Duration::from_secs(3600));
            sample(&log);
            check_queries(&log).await;
            log.close().await;
        }
        // A new log on the same store (a restart) reads what the first one wrote.
        let log = AuditLog::stored(store, io, Duration::from_secs(3600));
        check_queries(&log).await;
        assert!(log.recent(10).is_empty(), "the ring is per process");
    }
}
