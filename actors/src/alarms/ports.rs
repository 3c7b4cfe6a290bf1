//! What the alarm hosts need from the outside: where alarm state and events persist, and where
//! notifications go. `src/` provides the store-backed and webhook adapters.

use cistern_rules::zone::ZoneState;
use cistern_rules::{AlarmEvent, EngineSnapshot, LogNotify, Notification, Notify};
use cistern_schemas::{DeviceId, RoomId, Timestamp, ZoneId};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// A camera recording bookmarked by an alarm (intrusion), for the video system to keep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bookmark {
    pub camera: DeviceId,
    pub time: Timestamp,
    /// The alarm that asked for it (`XM-0001/intrusion@room`).
    pub alarm: String,
    pub message: String,
}

/// Persistent alarm state and the event log. Saves never block the actor: an adapter queues
/// them and writes within its flush interval; loads come from what it read at start-up.
pub trait AlarmStore: Send + Sync + std::fmt::Debug + 'static {
    /// A room's last saved engine state (on start and after an actor restart).
    fn load_room(&self, room: &RoomId) -> Option<EngineSnapshot>;
    fn save_room(&self, room: &RoomId, snapshot: EngineSnapshot);
    fn load_zone(&self, zone: &ZoneId) -> Option<ZoneState>;
    fn save_zone(&self, zone: &ZoneId, state: ZoneState);
    /// Appends events to the log (never dropped: the adapter retries until stored).
    fn record(&self, events: &[AlarmEvent]);
    fn bookmark(&self, bookmark: Bookmark);
}

/// Alarm state in process memory (tests, tools): survives an actor restart, not a process
/// restart.
#[derive(Debug, Default)]
pub struct MemoryAlarmStore {
    rooms: DashMap<RoomId, EngineSnapshot>,
    zones: DashMap<ZoneId, ZoneState>,
    events: Mutex<Vec<AlarmEvent>>,
    bookmarks: Mutex<Vec<Bookmark>>,
}

impl MemoryAlarmStore {
    /// Every event recorded so far.
    pub fn events(&self) -> Vec<AlarmEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    pub fn bookmarks(&self) -> Vec<Bookmark> {
        self.bookmarks.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl AlarmStore for MemoryAlarmStore {
    fn load_room(&self, room: &RoomId) -> Option<EngineSnapshot> {
        self.rooms.get(room).map(|s| s.clone())
    }
    fn save_room(&self, room: &RoomId, snapshot: EngineSnapshot) {
        self.rooms.insert(room.clone(), snapshot);
    }
    fn load_zone(&self, zone: &ZoneId) -> Option<ZoneState> {
        self.zones.get(zone).map(|s| s.clone())
    }
    fn save_zone(&self, zone: &ZoneId, state: ZoneState) {
        self.zones.insert(zone.clone(), state);
    }
    fn record(&self, events: &[AlarmEvent]) {
        if let Ok(mut e) = self.events.lock() {
            e.extend_from_slice(events);
        }
    }
    fn bookmark(&self, bookmark: Bookmark) {
        if let Ok(mut b) = self.bookmarks.lock() {
            b.push(bookmark);
        }
    }
}

/// Where notifications (escalation steps, chattering reports, sandbox kills) go. Must not
/// block: an adapter queues.
pub trait Outbox: Send + Sync + std::fmt::Debug + 'static {
    fn send(&self, notification: Notification);
}

/// Writes notifications to the log.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogOutbox;

impl Outbox for LogOutbox {
    fn send(&self, notification: Notification) {
        LogNotify.notify(notification);
    }
}
