//! The alarm store on the node's [`Store`] (see the module doc of [`crate::alarms`]).

use crate::store::{Store, StoreError, StoredEvent};
use cistern_actors::alarms::{AlarmStore, Bookmark};
use cistern_rules::zone::ZoneState;
use cistern_rules::{AlarmEvent, AlarmKey, AlarmSource, EngineSnapshot};
use cistern_schemas::{RoomId, Timestamp, ZoneId};
use dashmap::{DashMap, DashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STATE_KIND: &str = "alarm_state";
const ZONE_PREFIX: &str = "zone:";

/// The event stream of an alarm source: `alarms/XM-0001`, `alarms/zone:siming`.
pub fn stream_of(source: &str) -> String {
    format!("alarms/{source}")
}

fn source_of(e: &AlarmEvent) -> String {
    match &e.source {
        AlarmSource::Device(d) => d.room.to_string(),
        AlarmSource::Zone(z) => format!("{ZONE_PREFIX}{z}"),
    }
}

/// FNV-1a: an event's id within its stream and millisecond is the hash of its body, so that a
/// replayed write replaces itself and never duplicates.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Alarm state and events, held for the actors and written behind (see the module doc).
#[derive(Debug)]
pub struct StoredAlarms {
    store: Arc<dyn Store>,
    rooms: DashMap<RoomId, EngineSnapshot>,
    zones: DashMap<ZoneId, ZoneState>,
    dirty_rooms: DashSet<RoomId>,
    dirty_zones: DashSet<ZoneId>,
    events: Mutex<Vec<AlarmEvent>>,
    bookmarks: Mutex<Vec<Bookmark>>,
    /// One flush at a time: a flush that returns has written everything recorded before it
    /// was called — also what a flush running at the time had taken (a cluster checkpoint
    /// relies on it, see `cluster::checkpoint`).
    writing: tokio::sync::Mutex<()>,
}

impl StoredAlarms {
    /// Loads every room's and zone's saved state. Unreadable records are logged and skipped
    /// (that room starts with no alarms, and its rules raise what is still true).
    pub async fn load(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let this = Self {
            rooms: DashMap::new(),
            zones: DashMap::new(),
            dirty_rooms: DashSet::new(),
            dirty_zones: DashSet::new(),
            events: Mutex::new(Vec::new()),
            bookmarks: Mutex::new(Vec::new()),
            writing: tokio::sync::Mutex::new(()),
            store: store.clone(),
        };
        for (key, bytes) in store.state(STATE_KIND).await? {
            let loaded = match key.strip_prefix(ZONE_PREFIX) {
                Some(zone) => zone
                    .parse::<ZoneId>()
                    .map_err(|e| e.to_string())
                    .and_then(|z| {
                        serde_json::from_slice::<ZoneState>(&bytes)
                            .map(|s| {
                                this.zones.insert(z, s);
                            })
                            .map_err(|e| e.to_string())
                    }),
                None => RoomId::new(&key).map_err(|e| e.to_string()).and_then(|r| {
                    serde_json::from_slice::<EngineSnapshot>(&bytes)
                        .map(|s| {
                            this.rooms.insert(r, s);
                        })
                        .map_err(|e| e.to_string())
                }),
            };
            if let Err(error) = loaded {
                tracing::warn!(%key, %error, "unreadable alarm state skipped");
            }
        }
        tracing::info!(
            rooms = this.rooms.len(),
            zones = this.zones.len(),
            "alarm state loaded"
        );
        Ok(this)
    }

    /// Writes what changed since the last flush: state records, events, bookmarks. On failure
    /// everything stays queued for the next flush. When it returns `Ok`, everything recorded
    /// before the call is written (a flush already under way is waited for).
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let _one = self.writing.lock().await;
        let mut records = Vec::new();
        let rooms: Vec<RoomId> = self.dirty_rooms.iter().map(|r| r.clone()).collect();
        for r in &rooms {
            self.dirty_rooms.remove(r);
            if let Some(s) = self.rooms.get(r) {
                match serde_json::to_vec(&*s) {
                    Ok(b) => records.push((r.to_string(), Some(b))),
                    Err(error) => tracing::error!(room = %r, %error, "cannot encode alarm state"),
                }
            }
        }
        let zones: Vec<ZoneId> = self.dirty_zones.iter().map(|z| z.clone()).collect();
        for z in &zones {
            self.dirty_zones.remove(z);
            if let Some(s) = self.zones.get(z) {
                match serde_json::to_vec(&*s) {
                    Ok(b) => records.push((format!("{ZONE_PREFIX}{z}"), Some(b))),
                    Err(error) => tracing::error!(zone = %z, %error, "cannot encode zone state"),
                }
            }
        }
        let events = self.take(&self.events);
        let bookmarks = self.take(&self.bookmarks);
        let n = records.len() + events.len() + bookmarks.len();
        let result = self.write(records, &events, &bookmarks).await;
        if result.is_err() {
            for r in rooms {
                self.dirty_rooms.insert(r);
            }
            for z in zones {
                self.dirty_zones.insert(z);
            }
            self.requeue(&self.events, events);
            self.requeue(&self.bookmarks, bookmarks);
        }
        result.map(|()| n)
    }

    fn take<T>(&self, q: &Mutex<Vec<T>>) -> Vec<T> {
        q.lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    fn requeue<T>(&self, q: &Mutex<Vec<T>>, mut items: Vec<T>) {
        if let Ok(mut v) = q.lock() {
            items.append(&mut v);
            *v = items;
        }
    }

    async fn write(
        &self,
        records: Vec<(String, Option<Vec<u8>>)>,
        events: &[AlarmEvent],
        bookmarks: &[Bookmark],
    ) -> Result<(), StoreError> {
        // Events first: a state that is written says its events are.
        let mut streams: std::collections::BTreeMap<String, Vec<StoredEvent>> = Default::default();
        for e in events {
            match serde_json::to_vec(e) {
                Ok(body) => {
                    streams
                        .entry(stream_of(&source_of(e)))
                        .or_default()
                        .push(StoredEvent {
                            t: e.time,
                            id: fnv(&body),
                            body,
                        })
                }
                Err(error) => tracing::error!(%error, "cannot encode an alarm event"),
            }
        }
        for b in bookmarks {
            if let Ok(body) = serde_json::to_vec(b) {
                streams
                    .entry(format!("bookmarks/{}", b.camera.room))
                    .or_default()
                    .push(StoredEvent {
                        t: b.time,
                        id: fnv(&body),
                        body,
                    });
            }
        }
        for (stream, events) in streams {
            self.store.append_events(&stream, events).await?;
        }
        if !records.is_empty() {
            self.store.put_state(STATE_KIND, records).await?;
        }
        Ok(())
    }

    /// Flushes every `every` until `shutdown` turns true, then once more.
    pub async fn write_behind(
        self: Arc<Self>,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut failing = false;
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                _ = shutdown.changed() => true,
            };
            match self.flush().await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("alarm state written again");
                }
                Ok(_) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "alarm state and events not written; kept and retried");
                }
                Err(_) => {}
            }
            if stop || *shutdown.borrow() {
                return;
            }
        }
    }

    /// The events of one alarm source within `[from, to]`, oldest first, at most `limit`;
    /// only those of `key` when given.
    pub async fn events(
        &self,
        source: &str,
        key: Option<&AlarmKey>,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<AlarmEvent>, StoreError> {
        // Filtering by key happens after the read: read more than `limit` when filtering.
        let read = if key.is_some() {
            limit.saturating_mul(20).max(10_000)
        } else {
            limit
        };
        let stored = self
            .store
            .events(&stream_of(source), from, to, read)
            .await?;
        let mut out = Vec::new();
        for s in stored {
            match serde_json::from_slice::<AlarmEvent>(&s.body) {
                Ok(mut e) if key.is_none_or(|k| &e.key == k) => {
                    // Stored before events carried `message_zh`: the English text stands in.
                    if e.message_zh.is_empty() {
                        e.message_zh.clone_from(&e.message);
                    }
                    out.push(e)
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%source, %error, "unreadable alarm event skipped"),
            }
        }
        // Not yet flushed: the newest, held in memory.
        if let Ok(q) = self.events.lock() {
            for e in q.iter() {
                if source_of(e) == source
                    && key.is_none_or(|k| &e.key == k)
                    && e.time >= from
                    && e.time <= to
                {
                    out.push(e.clone());
                }
            }
        }
        out.sort_by_key(|e| e.time);
        out.dedup();
        out.truncate(limit);
        Ok(out)
    }
}

impl AlarmStore for StoredAlarms {
    fn load_room(&self, room: &RoomId) -> Option<EngineSnapshot> {
        self.rooms.get(room).map(|s| s.clone())
    }
    fn save_room(&self, room: &RoomId, snapshot: EngineSnapshot) {
        self.rooms.insert(room.clone(), snapshot);
        self.dirty_rooms.insert(room.clone());
    }
    fn load_zone(&self, zone: &ZoneId) -> Option<ZoneState> {
        self.zones.get(zone).map(|s| s.clone())
    }
    fn save_zone(&self, zone: &ZoneId, state: ZoneState) {
        self.zones.insert(zone.clone(), state);
        self.dirty_zones.insert(zone.clone());
    }
    fn record(&self, events: &[AlarmEvent]) {
        if let Ok(mut q) = self.events.lock() {
            q.extend_from_slice(events);
        }
    }
    fn bookmark(&self, bookmark: Bookmark) {
        if let Ok(mut q) = self.bookmarks.lock() {
            q.push(bookmark);
        }
    }
}

/// A raise of `key` (`pump_fault@P1`) in room XM-0001 at `t` (ms), for tests.
#[cfg(test)]
pub(crate) fn raised_event(t: i64, key: &str) -> AlarmEvent {
    use cistern_rules::{AlarmState, EventKind, Severity};
    let key: AlarmKey = key.parse().expect("an alarm key");
    AlarmEvent {
        time: Timestamp(t),
        source: AlarmSource::Device(cistern_schemas::DeviceId::new(
            RoomId::new("XM-0001").expect("a room id"),
            key.unit,
        )),
        rule: key.rule.clone(),
        key,
        kind: EventKind::Raised,
        from: AlarmState::Normal,
        to: AlarmState::Unacked,
        severity: Severity::P2,
        value: None,
        message: "Pump P1 fault".into(),
        message_zh: "水泵 P1 故障".into(),
        user: None,
        comment: None,
        parent: None,
        first_out: true,
        escalation_step: None,
        notify: None,
        actions: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    #[tokio::test]
    async fn state_and_events_written_behind_load_back_and_replays_do_not_duplicate() {
        let d = std::env::temp_dir().join(format!("cistern-alarms-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&d).unwrap());
        let alarms = StoredAlarms::load(store.clone()).await.unwrap();
        let room = RoomId::new("XM-0001").unwrap();
        let snap = EngineSnapshot {
            version: 1,
            room: Some(room.clone()),
            last_activation: Some(Timestamp(7)),
            ..Default::default()
        };
        alarms.save_room(&room, snap.clone());
        let e1 = raised_event(1_000, "pump_fault@P1");
        // As stored before events carried `message_zh` (it deserialises empty): read back
        // with the English text.
        let mut e2 = raised_event(2_000, "mains_loss@room");
        e2.message_zh.clear();
        alarms.record(&[e1.clone(), e2.clone()]);
        e2.message_zh.clone_from(&e2.message);
        assert_eq!(alarms.flush().await.unwrap(), 3);
        // The same events again (a replay) replace themselves.
        alarms.record(std::slice::from_ref(&e1));
        alarms.flush().await.unwrap();
        let back = StoredAlarms::load(store.clone()).await.unwrap();
        assert_eq!(back.load_room(&room), Some(snap));
        let all = back
            .events("XM-0001", None, Timestamp(0), Timestamp(10_000), 100)
            .await
            .unwrap();
        assert_eq!(all, vec![e1.clone(), e2]);
        let one = back
            .events(
                "XM-0001",
                Some(&"pump_fault@P1".parse().unwrap()),
                Timestamp(0),
                Timestamp(10_000),
                100,
            )
            .await
            .unwrap();
        assert_eq!(one, vec![e1]);
    }
}
