//! The live change feed: how the actors tell dashboards what changed, without ever waiting.
//!
//! Dashboards (the WebSocket hub in `src/api/ws`) must never slow ingest. The actors therefore
//! call this port from their handlers and the adapter only records the change and wakes its
//! own task: it never blocks, never awaits, never asks an actor anything. Dashboard updates
//! conflate (the latest value per key wins), so an adapter may replace a pending change by a
//! newer one of the same key; alarm events and transitions are never conflated away.
//!
//! What is reported, and when:
//! - [`LiveFeed::device_changed`] / [`LiveFeed::room_changed`]: the full live view of a device,
//!   or of the room's own instruments, after every applied batch or quality sweep that changed
//!   it — only for rooms the adapter [`watches`](LiveFeed::watches) (building views for 2,100
//!   rooms nobody looks at would be waste).
//! - [`LiveFeed::status_changed`]: a room went online or offline (for every room).
//! - [`LiveFeed::alarm_changed`]: an alarm's view on the alarm board changed (for every alarm;
//!   a view that is no longer `listed()` left the board).
//! - [`LiveFeed::alarm_events`]: every alarm event, in order, as it is handed to the store.

use crate::alarms::AlarmView;
use crate::device::messages::DeviceView;
use crate::pump_room::RoomPart;
use cistern_rules::AlarmEvent;
use cistern_schemas::RoomId;

/// Where the actors report live changes. Every method must return at once.
pub trait LiveFeed: Send + Sync + std::fmt::Debug + 'static {
    /// Whether anyone watches this room's detailed state (cheap: called on every batch).
    fn watches(&self, room: &RoomId) -> bool;
    /// A device's live view (only for watched rooms).
    fn device_changed(&self, view: DeviceView);
    /// The room's own instruments and status (only for watched rooms).
    fn room_changed(&self, part: RoomPart);
    /// A room went online (`true`) or offline.
    fn status_changed(&self, room: &RoomId, online: bool);
    /// An alarm's view on the board changed.
    fn alarm_changed(&self, view: &AlarmView);
    /// Alarm events, in the order they happened.
    fn alarm_events(&self, events: &[AlarmEvent]);
}

/// Reports nowhere (tests, tools, and nodes without dashboards).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullLiveFeed;

impl LiveFeed for NullLiveFeed {
    fn watches(&self, _room: &RoomId) -> bool {
        false
    }
    fn device_changed(&self, _view: DeviceView) {}
    fn room_changed(&self, _part: RoomPart) {}
    fn status_changed(&self, _room: &RoomId, _online: bool) {}
    fn alarm_changed(&self, _view: &AlarmView) {}
    fn alarm_events(&self, _events: &[AlarmEvent]) {}
}
