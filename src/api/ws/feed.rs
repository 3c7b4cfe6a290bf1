//! The hub's side of the actors' live change feed ([`cistern_actors::LiveFeed`]).
//!
//! The actors call it from their handlers on the ingest path, so it never blocks and never
//! allocates much: a change is put in a buffer under a short lock (a newer change of the same
//! key replaces an unprocessed one: the latest value wins) and the hub task is woken. Alarm
//! events are never conflated; their buffer is bounded, and when it overflows the oldest are
//! dropped, counted, and the hub re-snapshots the `events` subscriptions (no silent gap).

use cistern_actors::alarms::AlarmView;
use cistern_actors::device::messages::DeviceView;
use cistern_actors::pump_room::RoomPart;
use cistern_actors::LiveFeed;
use cistern_rules::AlarmEvent;
use cistern_schemas::{DeviceId, RoomId};
use dashmap::DashMap;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::Notify;

/// How many alarm events wait for the hub at most.
const EVENT_BUFFER: usize = 10_000;

/// What a change is about (the conflation key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FeedKey {
    Device(DeviceId),
    Room(RoomId),
    Status(RoomId),
    Alarm(String),
}

/// One change.
#[derive(Debug, Clone)]
pub enum Change {
    Device(DeviceView),
    Room(RoomPart),
    Status { room: RoomId, online: bool },
    Alarm(Box<AlarmView>),
}

/// What the hub takes out in one go.
#[derive(Debug, Default)]
pub struct Drained {
    pub changes: Vec<Change>,
    pub events: Vec<AlarmEvent>,
    /// Alarm events lost to the bounded buffer since the last drain.
    pub events_lost: u64,
    /// Changes replaced by a newer one of the same key before the hub saw them.
    pub conflated: u64,
}

#[derive(Debug, Default)]
struct Buffer {
    order: Vec<FeedKey>,
    changes: HashMap<FeedKey, Change>,
    events: VecDeque<AlarmEvent>,
    events_lost: u64,
    conflated: u64,
}

/// The adapter (see the module doc).
#[derive(Debug, Default)]
pub struct HubFeed {
    /// Rooms whose detailed state someone watches, with how many subscriptions do.
    watched: DashMap<RoomId, usize>,
    buffer: Mutex<Buffer>,
    pub wake: Notify,
}

impl HubFeed {
    pub fn new() -> Self {
        Self::default()
    }

    fn put(&self, key: FeedKey, change: Change) {
        // Called inside the batch's `ingest` span (the actor entered it to apply the batch):
        // with `cistern=debug` a sample's path is visible up to the hand-off to the sockets.
        tracing::debug!(key = ?key, "live change handed to the WebSocket hub");
        {
            let mut b = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
            match b.changes.insert(key.clone(), change) {
                Some(_) => b.conflated += 1,
                None => b.order.push(key),
            }
        }
        self.wake.notify_one();
    }

    /// Everything buffered, in first-arrival order per key.
    pub fn drain(&self) -> Drained {
        let mut b = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let order = std::mem::take(&mut b.order);
        let mut changes = std::mem::take(&mut b.changes);
        Drained {
            changes: order.iter().filter_map(|k| changes.remove(k)).collect(),
            events: b.events.drain(..).collect(),
            events_lost: std::mem::take(&mut b.events_lost),
            conflated: std::mem::take(&mut b.conflated),
        }
    }

    /// The rooms some subscription watches.
    pub fn watched_rooms(&self) -> Vec<RoomId> {
        self.watched.iter().map(|e| e.key().clone()).collect()
    }

    /// One more subscription watches `room`.
    pub fn watch(&self, room: &RoomId) {
        *self.watched.entry(room.clone()).or_insert(0) += 1;
    }

    /// One subscription fewer watches `room`.
    pub fn unwatch(&self, room: &RoomId) {
        self.watched.remove_if_mut(room, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

impl LiveFeed for HubFeed {
    fn watches(&self, room: &RoomId) -> bool {
        self.watched.contains_key(room)
    }

    fn device_changed(&self, view: DeviceView) {
        self.put(FeedKey::Device(view.id.clone()), Change::Device(view));
    }

    fn room_changed(&self, part: RoomPart) {
        self.put(FeedKey::Room(part.id.clone()), Change::Room(part));
    }

    fn status_changed(&self, room: &RoomId, online: bool) {
        self.put(
            FeedKey::Status(room.clone()),
            Change::Status {
                room: room.clone(),
                online,
            },
        );
    }

    fn alarm_changed(&self, view: &AlarmView) {
        self.put(
            FeedKey::Alarm(view.id.clone()),
            Change::Alarm(Box::new(view.clone())),
        );
    }

    fn alarm_events(&self, events: &[AlarmEvent]) {
        if events.is_empty() {
            return;
        }
        {
            let mut b = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
            for e in events {
                if b.events.len() >= EVENT_BUFFER {
                    b.events.pop_front();
                    b.events_lost += 1;
                }
                b.events.push_back(e.clone());
            }
        }
        self.wake.notify_one();
    }
}
