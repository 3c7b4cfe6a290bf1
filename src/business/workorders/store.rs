//! Work orders on the records port: the order itself (kind `work_order`, JSON body) with its
//! access paths as index entries, the claim that makes "one open order per room and cause" hold
//! across writers and restarts (kind `work_order_open`, id `room/cause`, created only if absent),
//! and the id sequence (kind `work_order_seq`, compare-and-set).
//!
//! Creating an order from an alarm claims first, then writes the order under the claimed id: a
//! crash between the two leaves a claim naming an order that does not exist, which the next
//! creation for that room and cause completes rather than duplicates.

use super::model::{OrderId, OrderState, WorkOrder};
use super::WorkOrdersError;
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, RecordVersion, Records,
    RecordsError, StoredRecord,
};
use std::sync::Arc;

/// The indexes of an order.
#[derive(Debug, Clone)]
struct Indexes {
    state: IndexName,
    room: IndexName,
    assignee: IndexName,
    team: IndexName,
    /// Newest first: `i64::MAX - created` zero-padded.
    recent: IndexName,
    /// While open (the escalation scan and the loads).
    open: IndexName,
    /// A person's open orders (the crew's "my orders").
    open_assignee: IndexName,
    priority: IndexName,
}

/// Orders, claims and the sequence (see the module doc).
#[derive(Debug, Clone)]
pub struct OrderStore {
    records: Arc<dyn Records>,
    orders: RecordKind,
    claims: RecordKind,
    sequence: RecordKind,
    idx: Indexes,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Ours: write the order under this id.
    Taken(OrderId),
    /// Another order holds the room and cause.
    Held(OrderId),
}

fn name(s: &str) -> Result<IndexName, WorkOrdersError> {
    Ok(IndexName::new(s)?)
}

fn recent_key(created: i64) -> String {
    format!("{:019}", i64::MAX - created.max(0))
}

/// Every value of the age index.
fn all_ages() -> IndexRange {
    IndexRange::between(recent_key(i64::MAX), recent_key(0))
}

impl OrderStore {
    pub fn new(records: Arc<dyn Records>) -> Result<Self, WorkOrdersError> {
        Ok(Self {
            records,
            orders: RecordKind::new("work_order")?,
            claims: RecordKind::new("work_order_open")?,
            sequence: RecordKind::new("work_order_seq")?,
            idx: Indexes {
                state: name("by_state")?,
                room: name("by_room")?,
                assignee: name("by_assignee")?,
                team: name("by_team")?,
                recent: name("by_recent")?,
                open: name("open")?,
                open_assignee: name("open_by_assignee")?,
                priority: name("by_priority")?,
            },
        })
    }

    fn decode(r: &StoredRecord) -> Result<WorkOrder, WorkOrdersError> {
        serde_json::from_slice(&r.body).map_err(|e| {
            WorkOrdersError::Corrupt(format!("work order {} does not decode: {e}", r.id))
        })
    }

    fn entries(&self, o: &WorkOrder) -> Vec<IndexEntry> {
        // Every value ends in the order's age key, so that each index reads newest first and
        // pages by value (no two orders share a value unless created in the same millisecond).
        let recent = recent_key(o.created_at.as_millis());
        let under = |index: &IndexName, v: &str| IndexEntry::new(index, format!("{v}|{recent}"));
        let mut e = vec![
            under(&self.idx.state, o.state.as_str()),
            under(&self.idx.priority, o.priority.as_str()),
            IndexEntry::new(&self.idx.recent, recent.clone()),
        ];
        if let Some(r) = &o.room {
            e.push(under(&self.idx.room, r.as_str()));
        }
        if let Some(a) = &o.assignee {
            e.push(under(&self.idx.assignee, a));
            if o.state.is_open() {
                e.push(under(&self.idx.open_assignee, a));
            }
        }
        if let Some(t) = &o.team {
            e.push(under(&self.idx.team, t));
        }
        if o.state.is_open() {
            e.push(IndexEntry::new(&self.idx.open, recent));
        }
        e
    }

    /// The next order id.
    pub async fn next_id(&self) -> Result<OrderId, WorkOrdersError> {
        let id = RecordId::new("seq")?;
        for _ in 0..32 {
            let current = self.records.record(&self.sequence, &id).await?;
            let (n, expected) = match &current {
                Some(r) => {
                    let n: u64 = serde_json::from_slice(&r.body).map_err(|e| {
                        WorkOrdersError::Corrupt(format!("the order sequence does not decode: {e}"))
                    })?;
                    (n + 1, Some(r.version))
                }
                None => (1, None),
            };
            let put = RecordPut {
                kind: self.sequence.clone(),
                id: id.clone(),
                expected,
                body: n.to_string().into_bytes(),
                index: vec![],
            };
            match self.records.put_record(put).await {
                Ok(_) => return Ok(OrderId::from_sequence(n)),
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WorkOrdersError::Busy("the order sequence"))
    }

    pub async fn get(
        &self,
        id: &OrderId,
    ) -> Result<Option<(WorkOrder, RecordVersion)>, WorkOrdersError> {
        let rid = RecordId::new(id.as_str())?;
        match self.records.record(&self.orders, &rid).await? {
            Some(r) => Ok(Some((Self::decode(&r)?, r.version))),
            None => Ok(None),
        }
    }

    /// Writes `order` if it is still at `expected` (`None`: new).
    pub async fn put(
        &self,
        order: &WorkOrder,
        expected: Option<RecordVersion>,
    ) -> Result<RecordVersion, RecordsError> {
        let body = serde_json::to_vec(order)
            .map_err(|e| RecordsError::Invalid(format!("work order does not encode: {e}")))?;
        self.records
            .put_record(RecordPut {
                kind: self.orders.clone(),
                id: RecordId::new(order.id.as_str())?,
                expected,
                body,
                index: self.entries(order),
            })
            .await
    }

    fn claim_id(room: &str, cause: &str) -> Result<RecordId, RecordsError> {
        RecordId::new(&format!("{room}/{cause}"))
    }

    /// Claims `room`/`cause` for a new order with a fresh id, or names the order holding it.
    pub async fn claim(&self, room: &str, cause: &str) -> Result<Claim, WorkOrdersError> {
        let cid = Self::claim_id(room, cause)?;
        for _ in 0..8 {
            if let Some(r) = self.records.record(&self.claims, &cid).await? {
                let held = String::from_utf8(r.body.clone())
                    .ok()
                    .and_then(|s| OrderId::try_from(s).ok())
                    .ok_or_else(|| {
                        WorkOrdersError::Corrupt(format!("the claim {cid} does not name an order"))
                    })?;
                return match self.get(&held).await? {
                    Some((o, _)) if o.state.is_open() => Ok(Claim::Held(held)),
                    // Left by a crash before the order was written: finish it.
                    None => Ok(Claim::Taken(held)),
                    // Left by a crash after the order closed: release and try again.
                    Some(_) => {
                        self.release_version(&cid, r.version).await?;
                        continue;
                    }
                };
            }
            let id = self.next_id().await?;
            let put = RecordPut {
                kind: self.claims.clone(),
                id: cid.clone(),
                expected: None,
                body: id.as_str().as_bytes().to_vec(),
                index: vec![],
            };
            match self.records.put_record(put).await {
                Ok(_) => return Ok(Claim::Taken(id)),
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WorkOrdersError::Busy("the room's open-order claim"))
    }

    async fn release_version(
        &self,
        cid: &RecordId,
        version: RecordVersion,
    ) -> Result<(), WorkOrdersError> {
        match self.records.delete_record(&self.claims, cid, version).await {
            Ok(()) | Err(RecordsError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Frees `room`/`cause` once `order` has closed (if the claim is still that order's).
    pub async fn release(
        &self,
        room: &str,
        cause: &str,
        order: &OrderId,
    ) -> Result<(), WorkOrdersError> {
        let cid = Self::claim_id(room, cause)?;
        if let Some(r) = self.records.record(&self.claims, &cid).await? {
            if r.body == order.as_str().as_bytes() {
                self.release_version(&cid, r.version).await?;
            }
        }
        Ok(())
    }

    /// Orders listed under one index value (or range), in index order, at most `limit`.
    async fn listed(
        &self,
        index: &IndexName,
        range: IndexRange,
        limit: usize,
    ) -> Result<Vec<WorkOrder>, WorkOrdersError> {
        self.records
            .list_by_index(&self.orders, index, range, limit)
            .await?
            .iter()
            .map(Self::decode)
            .collect()
    }

    /// Every open order.
    pub async fn open(&self) -> Result<Vec<WorkOrder>, WorkOrdersError> {
        self.listed(&self.idx.open, all_ages(), usize::MAX).await
    }

    /// Every order created in `[from, to]`, newest first.
    pub async fn created_between(
        &self,
        from: cistern_schemas::Timestamp,
        to: cistern_schemas::Timestamp,
    ) -> Result<Vec<WorkOrder>, WorkOrdersError> {
        let range = IndexRange::between(recent_key(to.as_millis()), recent_key(from.as_millis()));
        self.listed(&self.idx.recent, range, usize::MAX).await
    }

    /// Orders matching `filter`, newest first, at most `filter.limit`, read through the most
    /// selective index the filter names and checked against the rest.
    pub async fn list(&self, filter: &OrderFilter) -> Result<Vec<WorkOrder>, WorkOrdersError> {
        let under = |v: &str| IndexRange::between(format!("{v}|"), format!("{v}|~"));
        let (index, range) = if let (Some(a), Some(true)) = (&filter.assignee, filter.open) {
            (&self.idx.open_assignee, under(a))
        } else if let Some(a) = &filter.assignee {
            (&self.idx.assignee, under(a))
        } else if let Some(r) = &filter.room {
            (&self.idx.room, under(r))
        } else if let Some(s) = filter.state {
            (&self.idx.state, under(s.as_str()))
        } else if filter.open == Some(true) {
            (&self.idx.open, all_ages())
        } else if let Some(t) = &filter.team {
            (&self.idx.team, under(t))
        } else if let Some(p) = filter.priority {
            (&self.idx.priority, under(p.as_str()))
        } else {
            (&self.idx.recent, all_ages())
        };
        // Read in pages, so that a narrow filter over a broad index still stops at `limit`.
        const PAGE: usize = 512;
        let mut out = Vec::new();
        let mut from = range.from.clone();
        let mut skip: Option<String> = None;
        loop {
            let page = self
                .records
                .list_by_index(
                    &self.orders,
                    index,
                    IndexRange::between(from.clone(), range.to.clone()),
                    PAGE,
                )
                .await?;
            let full = page.len() == PAGE;
            let mut last = None;
            for r in &page {
                let value = r
                    .index
                    .iter()
                    .filter(|e| &e.index == index && range.contains(&e.value))
                    .map(|e| e.value.clone())
                    .min()
                    .unwrap_or_default();
                let key = (value.clone(), r.id.as_str().to_owned());
                last = Some(key.clone());
                if skip
                    .as_ref()
                    .is_some_and(|s| *s >= format!("{}\u{0}{}", key.0, key.1))
                {
                    continue;
                }
                let o = Self::decode(r)?;
                if filter.matches(&o) {
                    out.push(o);
                }
            }
            match (full, last) {
                (true, Some((value, id))) if out.len() < filter.limit => {
                    skip = Some(format!("{value}\u{0}{id}"));
                    from = value;
                }
                _ => break,
            }
        }
        out.truncate(filter.limit);
        Ok(out)
    }
}

/// A query over orders (every field narrows).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderFilter {
    pub state: Option<OrderState>,
    pub open: Option<bool>,
    pub kind: Option<super::model::OrderType>,
    pub priority: Option<cistern_rules::Severity>,
    pub zone: Option<String>,
    pub team: Option<String>,
    pub assignee: Option<String>,
    pub room: Option<String>,
    /// Only orders past a target at this instant.
    pub overdue_at: Option<cistern_schemas::Timestamp>,
    pub limit: usize,
}

impl OrderFilter {
    pub fn matches(&self, o: &WorkOrder) -> bool {
        self.state.is_none_or(|s| o.state == s)
            && self.open.is_none_or(|open| o.state.is_open() == open)
            && self.kind.is_none_or(|k| o.kind == k)
            && self.priority.is_none_or(|p| o.priority == p)
            && self
                .zone
                .as_ref()
                .is_none_or(|z| o.zone.as_ref().is_some_and(|oz| oz.as_str() == z))
            && self
                .team
                .as_ref()
                .is_none_or(|t| o.team.as_ref() == Some(t))
            && self
                .assignee
                .as_ref()
                .is_none_or(|a| o.assignee.as_ref() == Some(a))
            && self
                .room
                .as_ref()
                .is_none_or(|r| o.room.as_ref().is_some_and(|or| or.as_str() == r))
            && self.overdue_at.is_none_or(|t| o.overdue(t))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::model::tests::order;
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use cistern_schemas::Timestamp;

    /// A store in a fresh directory (removed when the guard drops).
    pub(crate) fn store(name: &str) -> (Scratch, OrderStore, Arc<dyn Records>) {
        let d = std::env::temp_dir().join(format!("cistern-orders-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let s: Arc<dyn Records> = Arc::new(EmbeddedStore::open(&d).unwrap());
        (Scratch(d), OrderStore::new(s.clone()).unwrap(), s)
    }

    pub(crate) struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn one_claim_per_room_and_cause_and_a_crash_before_the_order_is_finished_not_duplicated()
    {
        let (_d, s, _) = store("claim");
        let Claim::Taken(first) = s.claim("XM-0001", "pump_fault").await.unwrap() else {
            panic!("not taken")
        };
        // Crash here: the claim exists, the order does not. The next claim finishes it.
        assert_eq!(
            s.claim("XM-0001", "pump_fault").await.unwrap(),
            Claim::Taken(first.clone())
        );
        let mut o = order();
        o.id = first.clone();
        s.put(&o, None).await.unwrap();
        assert_eq!(
            s.claim("XM-0001", "pump_fault").await.unwrap(),
            Claim::Held(first.clone())
        );
        // Another cause in the room, another order.
        assert!(matches!(
            s.claim("XM-0001", "flooding").await.unwrap(),
            Claim::Taken(id) if id != first
        ));
        // Closed: the claim goes and a new order may be opened.
        let (mut o, v) = s.get(&first).await.unwrap().unwrap();
        o.state = OrderState::Closed;
        s.put(&o, Some(v)).await.unwrap();
        assert!(matches!(
            s.claim("XM-0001", "pump_fault").await.unwrap(),
            Claim::Taken(id) if id != first
        ));
    }

    #[tokio::test]
    async fn lists_page_through_an_index_newest_first_and_filter() {
        let (_d, s, _) = store("list");
        for i in 0..1_100u64 {
            let mut o = order();
            o.id = OrderId::from_sequence(i + 1);
            o.created_at = Timestamp(i as i64 * 1000);
            o.assignee = Some(if i % 2 == 0 { "li" } else { "wang" }.into());
            o.priority = if i == 7 {
                cistern_rules::Severity::P1
            } else {
                cistern_rules::Severity::P3
            };
            s.put(&o, None).await.unwrap();
        }
        let all = s
            .list(&OrderFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 10);
        assert_eq!(all[0].id, OrderId::from_sequence(1_100));
        let li = s
            .list(&OrderFilter {
                assignee: Some("li".into()),
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(li.len(), 550);
        // A narrow filter on the broad index pages to the end.
        let p1 = s
            .list(&OrderFilter {
                priority: Some(cistern_rules::Severity::P1),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(p1.len(), 1);
        assert_eq!(p1[0].id, OrderId::from_sequence(8));
        assert_eq!(s.open().await.unwrap().len(), 1_100);
    }
}
