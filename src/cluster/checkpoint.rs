//! A shard's checkpoint in etcd: its rooms' alarm state (delays, escalations and shelves as
//! absolute times) and their devices' live-state snapshots, so that the node that takes the
//! shard over starts its rooms where the last owner left them — a 10-minute delay that had run
//! 7 minutes fires 3 minutes later, not 10.
//!
//! Why etcd, on a site without ScyllaDB: every node reaches it, it is already the arbiter of
//! who owns the shard, and a checkpoint is bounded (one key per room and per device, a few KB
//! each; a 2,100-room fleet is ~17k keys, ~30 MB). Every write is a transaction guarded on the
//! shard's epoch (`create_revision(owner key) == epoch`): a deposed owner's late write is refused
//! by etcd itself and counted, so the new owner never reads a state older than its own.
//!
//! The node's actors see ordinary ports (`AlarmStore`, `SnapshotStore`): reads come from memory
//! (loaded from etcd when the shard is acquired, before its rooms start), writes go to memory
//! and, while the node may act for the shard, into the shard's next transaction (written every
//! `checkpoint_every`, and once more when the shard is handed over). Events and bookmarks are
//! history, not state: they go to the node's own store — and the alarm events recorded before
//! a checkpoint's state are made durable there before the checkpoint is written ("events
//! first: a state that is written says its events are", as the node's own alarm store does).
//! Otherwise a node dying between the two writes would leave a state in etcd whose transition
//! is in no event log: the next owner starts from that state and never makes the transition
//! again (found by `cistern bench failover`: its mirror image, the event written and the state
//! not, was seen — the transition recorded twice, by the old owner and by the new one).

use super::gate::{Epoch, Gate};
use super::metrics::ClusterMetrics;
use cistern_actors::alarms::{AlarmStore, Bookmark};
use cistern_actors::device::DeviceSnapshot;
use cistern_actors::registry::shard_of;
use cistern_actors::SnapshotStore;
use cistern_rules::zone::ZoneState;
use cistern_rules::{AlarmEvent, EngineSnapshot};
use cistern_schemas::{DeviceId, RoomId, ZoneId};
use dashmap::DashMap;
use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// etcd refuses a transaction of more than 128 operations (`--max-txn-ops`).
const OPS_PER_TXN: usize = 100;

/// The keys of one cluster.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: String) -> Self {
        Self { prefix }
    }
    pub fn node(&self, node: &str) -> String {
        format!("{}nodes/{node}", self.prefix)
    }
    pub fn nodes(&self) -> String {
        format!("{}nodes/", self.prefix)
    }
    pub fn owner(&self, shard: u32) -> String {
        format!("{}shards/{shard:02}/owner", self.prefix)
    }
    pub fn owners(&self) -> String {
        format!("{}shards/", self.prefix)
    }
    /// The shard of an owner key.
    pub fn owner_shard(&self, key: &[u8]) -> Option<u32> {
        let rest = key.strip_prefix(self.owners().as_bytes())?;
        let rest = rest.strip_suffix(b"/owner")?;
        std::str::from_utf8(rest).ok()?.parse().ok()
    }
    pub fn state(&self, shard: u32) -> String {
        format!("{}state/{shard:02}/", self.prefix)
    }
    fn alarms(&self, room: &RoomId) -> String {
        format!("{}alarms/{room}", self.state(shard_of(room)))
    }
    fn snapshot(&self, device: &DeviceId) -> String {
        format!("{}snap/{device}", self.state(shard_of(&device.room)))
    }
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("shard {0}: the epoch moved on (another node owns it now); the write was refused")]
    Stale(u32),
    #[error("shard {0} is not this node's")]
    NotOwned(u32),
    #[error("the alarm events before the checkpoint were not written: {0}")]
    Events(String),
}

/// The node's alarm state and snapshots, checkpointed per shard in etcd.
#[derive(Debug)]
pub struct ShardCheckpoints {
    keys: Keys,
    gate: Arc<Gate>,
    metrics: ClusterMetrics,
    /// Events, bookmarks and zone state: the node's own store.
    local: Arc<dyn AlarmStore>,
    /// The same store's writer, flushed before each checkpoint (none: events in memory only,
    /// tests).
    events: Option<Arc<crate::alarms::StoredAlarms>>,
    rooms: DashMap<RoomId, EngineSnapshot>,
    devices: DashMap<DeviceId, DeviceSnapshot>,
    /// Writes waiting for the shard's next transaction: key → value.
    dirty: Mutex<BTreeMap<u32, BTreeMap<String, Vec<u8>>>>,
    /// Per shard: flushes started, and the last started one that committed.
    started: Vec<std::sync::atomic::AtomicU64>,
    committed: Vec<tokio::sync::watch::Sender<u64>>,
}

impl ShardCheckpoints {
    pub fn new(
        keys: Keys,
        gate: Arc<Gate>,
        metrics: ClusterMetrics,
        local: Arc<dyn AlarmStore>,
        events: Option<Arc<crate::alarms::StoredAlarms>>,
    ) -> Self {
        Self {
            keys,
            gate,
            metrics,
            local,
            events,
            rooms: DashMap::new(),
            devices: DashMap::new(),
            dirty: Mutex::new(BTreeMap::new()),
            started: (0..cistern_actors::registry::SHARDS)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            committed: (0..cistern_actors::registry::SHARDS)
                .map(|_| tokio::sync::watch::channel(0).0)
                .collect(),
        }
    }

    /// Waits until a checkpoint of `shard` that started after this call has committed: what
    /// the shard's rooms had queued by now (the alarm transitions a batch caused, once it is
    /// durable) is then in etcd. False when the node stopped acting for the shard first.
    ///
    /// The shard's MQTT acknowledgements wait for this: a message is acknowledged only once
    /// its samples are durable *and* the state they moved is checkpointed, so a node that dies
    /// in between leaves the message with the broker, and the next owner derives the same
    /// transition from it again. No alarm transition is lost with the node.
    pub async fn covered(&self, shard: u32) -> bool {
        let (Some(started), Some(committed)) = (
            self.started.get(shard as usize),
            self.committed.get(shard as usize),
        ) else {
            return false;
        };
        let want = started.load(std::sync::atomic::Ordering::Acquire) + 1;
        let mut rx = committed.subscribe();
        loop {
            if *rx.borrow_and_update() >= want {
                return true;
            }
            if !self.gate.acting(shard) {
                return false;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(100), rx.changed()).await;
        }
    }

    fn queue(&self, shard: u32, key: String, value: Vec<u8>) {
        // A node that may not act for the shard writes nothing for it (self-fencing): the
        // state stays in memory only, and is dropped with the shard.
        if !self.gate.acting(shard) {
            return;
        }
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        dirty.entry(shard).or_default().insert(key, value);
    }

    /// Reads `shard`'s checkpoint into memory (before its rooms start). Returns the number of
    /// rooms and devices it held.
    pub async fn load(
        &self,
        client: &mut Client,
        shard: u32,
    ) -> Result<(usize, usize), CheckpointError> {
        let prefix = self.keys.state(shard);
        let resp = client
            .get(prefix.as_bytes(), Some(GetOptions::new().with_prefix()))
            .await?;
        let (mut rooms, mut devices) = (0, 0);
        for kv in resp.kvs() {
            let Some(rest) = kv.key().strip_prefix(prefix.as_bytes()) else {
                continue;
            };
            let Ok(rest) = std::str::from_utf8(rest) else {
                continue;
            };
            if let Some(room) = rest.strip_prefix("alarms/") {
                match (
                    room.parse::<RoomId>(),
                    serde_json::from_slice::<EngineSnapshot>(kv.value()),
                ) {
                    (Ok(room), Ok(s)) => {
                        self.rooms.insert(room, s);
                        rooms += 1;
                    }
                    _ => tracing::warn!(key = rest, shard, "unreadable alarm checkpoint skipped"),
                }
            } else if let Some(device) = rest.strip_prefix("snap/") {
                match (
                    device.parse::<DeviceId>(),
                    serde_json::from_slice::<DeviceSnapshot>(kv.value()),
                ) {
                    (Ok(device), Ok(s)) => {
                        self.devices.insert(device, s);
                        devices += 1;
                    }
                    _ => {
                        tracing::warn!(key = rest, shard, "unreadable snapshot checkpoint skipped")
                    }
                }
            }
        }
        Ok((rooms, devices))
    }

    /// Writes what changed in `shard` since its last transaction, guarded on `epoch`.
    pub async fn flush(
        &self,
        client: &mut Client,
        shard: u32,
        epoch: Epoch,
    ) -> Result<usize, CheckpointError> {
        let generation = self.started.get(shard as usize).map_or(0, |g| {
            g.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1
        });
        let pending = {
            let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            dirty.remove(&shard).unwrap_or_default()
        };
        let commit = |this: &Self| {
            if let Some(c) = this.committed.get(shard as usize) {
                c.send_if_modified(|g| {
                    let newer = generation > *g;
                    if newer {
                        *g = generation;
                    }
                    newer
                });
            }
        };
        if pending.is_empty() {
            commit(self);
            return Ok(0);
        }
        // Events first: a room records a transition's events before it queues the state the
        // transition left, so every event behind `pending` is written by this flush.
        if let Some(log) = &self.events {
            if let Err(error) = log.flush().await {
                let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
                let waiting = dirty.entry(shard).or_default();
                for (k, v) in pending {
                    waiting.entry(k).or_insert(v);
                }
                return Err(CheckpointError::Events(error.to_string()));
            }
        }
        let n = pending.len();
        let owner = self.keys.owner(shard);
        let items: Vec<_> = pending.into_iter().collect();
        let mut written = 0;
        for chunk in items.chunks(OPS_PER_TXN) {
            let ops: Vec<TxnOp> = chunk
                .iter()
                .map(|(k, v)| TxnOp::put(k.as_bytes(), v.clone(), None))
                .collect();
            let txn = Txn::new()
                .when([Compare::create_revision(
                    owner.as_bytes(),
                    CompareOp::Equal,
                    epoch.0,
                )])
                .and_then(ops);
            let resp = match client.txn(txn).await {
                Ok(resp) => resp,
                Err(error) => {
                    // Not written (etcd did not answer): the writes wait for the next round,
                    // unless a newer value of the same key is waiting already.
                    let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
                    let waiting = dirty.entry(shard).or_default();
                    for (k, v) in items.iter().skip(written) {
                        waiting.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    return Err(error.into());
                }
            };
            if !resp.succeeded() {
                self.metrics.stale_writes_refused.inc();
                return Err(CheckpointError::Stale(shard));
            }
            self.metrics.checkpoint_writes.inc();
            written += chunk.len();
        }
        commit(self);
        Ok(n)
    }

    /// Drops `shard`'s state from memory (the shard left this node).
    pub fn forget(&self, shard: u32) {
        self.rooms.retain(|r, _| shard_of(r) != shard);
        self.devices.retain(|d, _| shard_of(&d.room) != shard);
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        dirty.remove(&shard);
    }

    /// Shards with writes waiting.
    pub fn dirty_shards(&self) -> Vec<u32> {
        let dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        dirty
            .iter()
            .filter(|(_, w)| !w.is_empty())
            .map(|(s, _)| *s)
            .collect()
    }
}

impl AlarmStore for ShardCheckpoints {
    fn load_room(&self, room: &RoomId) -> Option<EngineSnapshot> {
        self.rooms.get(room).map(|s| s.clone())
    }
    fn save_room(&self, room: &RoomId, snapshot: EngineSnapshot) {
        if let Ok(value) = serde_json::to_vec(&snapshot) {
            self.queue(shard_of(room), self.keys.alarms(room), value);
        }
        self.rooms.insert(room.clone(), snapshot);
    }
    fn load_zone(&self, zone: &ZoneId) -> Option<ZoneState> {
        self.local.load_zone(zone)
    }
    fn save_zone(&self, zone: &ZoneId, state: ZoneState) {
        self.local.save_zone(zone, state);
    }
    fn record(&self, events: &[AlarmEvent]) {
        self.local.record(events);
    }
    fn bookmark(&self, bookmark: Bookmark) {
        self.local.bookmark(bookmark);
    }
}

impl SnapshotStore for ShardCheckpoints {
    fn save(&self, device: &DeviceId, snapshot: DeviceSnapshot) {
        if let Ok(value) = serde_json::to_vec(&snapshot) {
            self.queue(shard_of(&device.room), self.keys.snapshot(device), value);
        }
        self.devices.insert(device.clone(), snapshot);
    }
    fn load(&self, device: &DeviceId) -> Option<DeviceSnapshot> {
        self.devices.get(device).map(|s| s.clone())
    }
}
