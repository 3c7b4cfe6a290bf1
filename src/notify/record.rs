//! The persisted outbox: every notification is a record (kind `notification`) on the records
//! port, written before any attempt, so that a restart resumes whatever was pending. Its index
//! entries are its access paths: by alarm, by order, pending by due time (only while pending),
//! failed newest first, and all newest first. De-duplication claims (kind `notification_seen`,
//! one per event, recipient and channel) make "once within the window" hold across restarts.

use super::NotifyError;
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, RecordVersion, Records,
    RecordsError, StoredRecord,
};
use cistern_rules::Severity;
use cistern_schemas::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A delivery's id: `N-<created ms>-<sequence>`, unique on the node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub String);

impl DeliveryId {
    pub fn new(created_ms: i64, seq: u64) -> Self {
        Self(format!("N-{created_ms:013}-{seq:06}"))
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its due time (first attempt, a retry, or a rate-limit slot).
    Pending,
    Sent,
    /// Every attempt failed.
    Failed,
    /// Not sent, by preference or as a duplicate (`reason`).
    Suppressed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Suppressed => "suppressed",
        }
    }
}

/// One notification to one recipient on one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: DeliveryId,
    /// What happened: `alarm_escalation`, `order_dispatched` ….
    pub event: String,
    /// The event's identity for de-duplication (`alarm:<id>:escalation:1`).
    pub event_key: String,
    /// The alarm's id on the board, when the event concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    /// The work order, when the event concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    pub severity: Severity,
    /// A user's name, or the channel's for a group channel.
    pub recipient: String,
    /// The channel's name in `[notify]`, and its kind.
    pub channel: String,
    pub channel_kind: String,
    /// The e-mail address or phone number (personal channels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The language of the text (`zh-CN`, `en`).
    pub language: String,
    pub title: String,
    pub text: String,
    pub status: Status,
    /// Why suppressed (`severity`, `quiet_hours`, `duplicate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Held back by the channel's rate limit at least once (then sent or failed as usual).
    #[serde(default)]
    pub rate_limited: bool,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    /// When the next attempt is due (while pending).
    pub due_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
}

/// A delivery as read, with the version to write it back at.
#[derive(Clone, Debug)]
pub struct Stored {
    pub delivery: Delivery,
    pub version: RecordVersion,
}

fn ms_key(ms: i64) -> String {
    format!("{:019}", ms.max(0))
}

fn recent_key(ms: i64) -> String {
    format!("{:019}", i64::MAX - ms.max(0))
}

/// Deliveries and de-duplication claims on the records port.
#[derive(Debug, Clone)]
pub struct DeliveryStore {
    records: Arc<dyn Records>,
    kind: RecordKind,
    seen: RecordKind,
    by_alarm: IndexName,
    by_order: IndexName,
    pending: IndexName,
    failed: IndexName,
    recent: IndexName,
}

impl DeliveryStore {
    pub fn new(records: Arc<dyn Records>) -> Result<Self, NotifyError> {
        Ok(Self {
            records,
            kind: RecordKind::new("notification")?,
            seen: RecordKind::new("notification_seen")?,
            by_alarm: IndexName::new("by_alarm")?,
            by_order: IndexName::new("by_order")?,
            pending: IndexName::new("pending_by_due")?,
            failed: IndexName::new("failed_recent")?,
            recent: IndexName::new("by_recent")?,
        })
    }

    fn entries(&self, d: &Delivery) -> Vec<IndexEntry> {
        let recent = recent_key(d.created_at.as_millis());
        let mut e = vec![IndexEntry::new(&self.recent, recent.clone())];
        if let Some(a) = &d.alarm {
            e.push(IndexEntry::new(&self.by_alarm, format!("{a}|{recent}")));
        }
        if let Some(o) = &d.order {
            e.push(IndexEntry::new(&self.by_order, format!("{o}|{recent}")));
        }
        match d.status {
            Status::Pending => e.push(IndexEntry::new(&self.pending, ms_key(d.due_at.as_millis()))),
            Status::Failed => e.push(IndexEntry::new(
                &self.failed,
                recent_key(d.updated_at.as_millis()),
            )),
            Status::Sent | Status::Suppressed => {}
        }
        e
    }

    fn decode(r: &StoredRecord) -> Result<Stored, NotifyError> {
        let delivery = serde_json::from_slice(&r.body).map_err(|e| {
            NotifyError::Corrupt(format!("notification {} does not decode: {e}", r.id))
        })?;
        Ok(Stored {
            delivery,
            version: r.version,
        })
    }

    /// Writes `d` if it is still at `expected` (`None`: new); the new version.
    pub async fn put(
        &self,
        d: &Delivery,
        expected: Option<RecordVersion>,
    ) -> Result<RecordVersion, NotifyError> {
        let body = serde_json::to_vec(d)
            .map_err(|e| NotifyError::Corrupt(format!("notification does not encode: {e}")))?;
        Ok(self
            .records
            .put_record(RecordPut {
                kind: self.kind.clone(),
                id: RecordId::new(&d.id.0)?,
                expected,
                body,
                index: self.entries(d),
            })
            .await?)
    }

    pub async fn get(&self, id: &DeliveryId) -> Result<Option<Stored>, NotifyError> {
        match self
            .records
            .record(&self.kind, &RecordId::new(&id.0)?)
            .await?
        {
            Some(r) => Ok(Some(Self::decode(&r)?)),
            None => Ok(None),
        }
    }

    async fn list(
        &self,
        index: &IndexName,
        range: IndexRange,
        limit: usize,
    ) -> Result<Vec<Stored>, NotifyError> {
        self.records
            .list_by_index(&self.kind, index, range, limit)
            .await?
            .iter()
            .map(Self::decode)
            .collect()
    }

    /// Pending deliveries due at or before `now_ms`, the most overdue first.
    pub async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Stored>, NotifyError> {
        self.list(
            &self.pending,
            IndexRange::between(ms_key(0), ms_key(now_ms)),
            limit,
        )
        .await
    }

    /// Every pending delivery (at most `limit`), the earliest due first.
    pub async fn pending(&self, limit: usize) -> Result<Vec<Stored>, NotifyError> {
        self.list(
            &self.pending,
            IndexRange::between(ms_key(0), ms_key(i64::MAX)),
            limit,
        )
        .await
    }

    /// An alarm's deliveries, newest first.
    pub async fn by_alarm(&self, alarm: &str, limit: usize) -> Result<Vec<Delivery>, NotifyError> {
        self.under(&self.by_alarm, alarm, limit).await
    }

    /// An order's deliveries, newest first.
    pub async fn by_order(&self, order: &str, limit: usize) -> Result<Vec<Delivery>, NotifyError> {
        self.under(&self.by_order, order, limit).await
    }

    async fn under(
        &self,
        index: &IndexName,
        value: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, NotifyError> {
        let range = IndexRange::between(
            format!("{value}|{}", recent_key(i64::MAX)),
            format!("{value}|{}", recent_key(0)),
        );
        Ok(self
            .list(index, range, limit)
            .await?
            .into_iter()
            .map(|s| s.delivery)
            .collect())
    }

    /// The failed deliveries, the most recently failed first.
    pub async fn failed(&self, limit: usize) -> Result<Vec<Delivery>, NotifyError> {
        let range = IndexRange::between(recent_key(i64::MAX), recent_key(0));
        Ok(self
            .list(&self.failed, range, limit)
            .await?
            .into_iter()
            .map(|s| s.delivery)
            .collect())
    }

    /// Every delivery, newest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<Delivery>, NotifyError> {
        let range = IndexRange::between(recent_key(i64::MAX), recent_key(0));
        Ok(self
            .list(&self.recent, range, limit)
            .await?
            .into_iter()
            .map(|s| s.delivery)
            .collect())
    }

    /// Claims `key` (event, recipient, channel) at `now_ms`: true when it was not seen within
    /// `window_ms` (the claim is then ours), false for a duplicate.
    pub async fn first_seen(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<bool, NotifyError> {
        use blake2::Digest;
        let digest = blake2::Blake2s256::digest(key.as_bytes());
        let id = RecordId::new(
            &digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )?;
        for _ in 0..8 {
            let current = self.records.record(&self.seen, &id).await?;
            let expected = match &current {
                Some(r) => {
                    let at: i64 = std::str::from_utf8(&r.body)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    if now_ms - at < window_ms {
                        return Ok(false);
                    }
                    Some(r.version)
                }
                None => None,
            };
            let put = RecordPut {
                kind: self.seen.clone(),
                id: id.clone(),
                expected,
                body: now_ms.to_string().into_bytes(),
                index: vec![],
            };
            match self.records.put_record(put).await {
                Ok(_) => return Ok(true),
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(NotifyError::Busy("a de-duplication claim"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    pub(crate) struct Scratch(pub std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The records port under a store (to start a service on the same records).
    pub(crate) fn records_of(store: &DeliveryStore) -> Arc<dyn Records> {
        store.records.clone()
    }

    pub(crate) fn store(name: &str) -> (Scratch, DeliveryStore) {
        let d = std::env::temp_dir().join(format!("cistern-notify-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let s: Arc<dyn Records> = Arc::new(EmbeddedStore::open(&d).unwrap());
        (Scratch(d), DeliveryStore::new(s).unwrap())
    }

    pub(crate) fn delivery(seq: u64, at: i64) -> Delivery {
        Delivery {
            id: DeliveryId::new(at, seq),
            event: "order_dispatched".into(),
            event_key: format!("order:WO-1:dispatch:{seq}"),
            alarm: Some("XM-0001/pump_fault@P1".into()),
            order: Some("WO-2026-000001".into()),
            severity: Severity::P1,
            recipient: "crew-1".into(),
            channel: "mail".into(),
            channel_kind: "email".into(),
            address: Some("crew@example.test".into()),
            language: "zh-CN".into(),
            title: "工单".into(),
            text: "工单 WO-2026-000001 已派发给您".into(),
            status: Status::Pending,
            reason: None,
            rate_limited: false,
            attempts: 0,
            last_error: None,
            created_at: Timestamp(at),
            due_at: Timestamp(at),
            updated_at: Timestamp(at),
            sent_at: None,
        }
    }

    #[tokio::test]
    async fn a_delivery_round_trips_and_moves_between_the_pending_and_failed_indexes() {
        let (_d, s) = store("roundtrip");
        let a = delivery(1, 1_000);
        let mut b = delivery(2, 2_000);
        b.due_at = Timestamp(5_000);
        b.alarm = None;
        let va = s.put(&a, None).await.unwrap();
        s.put(&b, None).await.unwrap();
        assert_eq!(s.get(&a.id).await.unwrap().unwrap().delivery, a);
        // Pending by due time: only `a` is due at 3 s, both by 5 s, earliest first.
        let due = |t| {
            let s = s.clone();
            async move {
                s.due(t, 10)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|x| x.delivery.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(due(3_000).await, vec![a.id.clone()]);
        assert_eq!(due(5_000).await, [a.id.clone(), b.id.clone()]);
        assert_eq!(s.by_order("WO-2026-000001", 10).await.unwrap().len(), 2);
        let by_alarm = s.by_alarm("XM-0001/pump_fault@P1", 10).await.unwrap();
        assert_eq!(by_alarm, vec![a.clone()]);
        // Failed: out of pending, into the failed list; a stale version is refused.
        let mut failed = a.clone();
        failed.status = Status::Failed;
        failed.attempts = 3;
        failed.last_error = Some("HTTP 500".into());
        failed.updated_at = Timestamp(9_000);
        s.put(&failed, Some(va)).await.unwrap();
        assert!(s.put(&failed, Some(va)).await.is_err(), "stale version");
        assert_eq!(due(10_000).await, [b.id.clone()]);
        assert_eq!(s.failed(10).await.unwrap(), [failed.clone()]);
        let recent: Vec<_> = s
            .recent(10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(recent, [b.id, a.id]);
    }

    #[tokio::test]
    async fn the_same_event_recipient_and_channel_is_a_duplicate_within_the_window_only() {
        let (_d, s) = store("dedupe");
        let key = "alarm:XM-0001/pump_fault@P1:escalation:1|ops|wecom";
        assert!(s.first_seen(key, 1_000, 60_000).await.unwrap());
        assert!(!s.first_seen(key, 30_000, 60_000).await.unwrap());
        assert!(s
            .first_seen("another|ops|wecom", 30_000, 60_000)
            .await
            .unwrap());
        // After the window it goes out again (and claims a new window).
        assert!(s.first_seen(key, 61_000, 60_000).await.unwrap());
        assert!(!s.first_seen(key, 62_000, 60_000).await.unwrap());
    }
}
