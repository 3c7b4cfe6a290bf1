//! The fleet registry: room id → room actor, and the status board.
//!
//! Ingest routes every decoded batch through [`FleetRegistry::route`]. The map is a DashMap so
//! that routing from many ingest tasks never contends on one lock; an entry's guard is dropped
//! before any `.await` (holding it across an await could deadlock a shard of the map).
//!
//! Rooms are hashed into [`SHARDS`] shards; a shard lives on one arbiter (thread). A single
//! node owns every shard; the clustering issue moves shards between nodes.

use crate::device::DeviceDeps;
use crate::pump_room::status_label;
use crate::pump_room::{
    GetRoomView, PumpRoomActor, RoomStatus, RoomSummary, RoomView, SamplesReceived,
};
use actix::dev::SendError;
use actix::{Addr, ArbiterHandle, Supervisor};
use cistern_schemas::inventory::{Inventory, RoomSpec};
use cistern_schemas::reading::DeviceBatch;
use cistern_schemas::RoomId;
use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;

/// Number of shards rooms are hashed into (fixed: changing it moves rooms between nodes).
pub const SHARDS: u32 = 64;

/// The shard of a room: FNV-1a of its id, stable across processes and versions.
pub fn shard_of(room: &RoomId) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in room.as_str().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SHARDS
}

/// Live status of every room, written by the room actors, read by listings.
pub type StatusBoard = DashMap<RoomId, RoomStatus>;

/// Why a batch or a request could not reach its room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("unknown room {0}")]
    UnknownRoom(String),
    #[error("room {room} has no device {device}")]
    UnknownDevice { room: String, device: String },
    #[error("room {0} is not running")]
    RoomDown(String),
    #[error("room {0} did not answer in time")]
    Timeout(String),
}

impl RouteError {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            RouteError::UnknownRoom(_) => "unknown_room",
            RouteError::UnknownDevice { .. } => "unknown_device",
            RouteError::RoomDown(_) => "room_down",
            RouteError::Timeout(_) => "timeout",
        }
    }
}

#[derive(Debug, Clone)]
struct RoomEntry {
    addr: Addr<PumpRoomActor>,
    spec: Arc<RoomSpec>,
}

/// Every room of this node.
#[derive(Debug, Default)]
pub struct FleetRegistry {
    rooms: DashMap<RoomId, RoomEntry>,
    board: Arc<StatusBoard>,
}

impl FleetRegistry {
    /// Starts a supervised actor tree for every room of `inventory`, spreading shards over
    /// `arbiters` (at least one).
    pub fn start(
        inventory: &Inventory,
        deps: &DeviceDeps,
        arbiters: &[ArbiterHandle],
    ) -> Arc<Self> {
        let registry = Arc::new(Self::default());
        for spec in &inventory.rooms {
            let arbiter = &arbiters[shard_of(&spec.id) as usize % arbiters.len().max(1)];
            registry.spawn_room(Arc::new(spec.clone()), deps.clone(), arbiter);
        }
        registry
    }

    /// Starts one room's actor tree on `arbiter`.
    pub fn spawn_room(&self, spec: Arc<RoomSpec>, deps: DeviceDeps, arbiter: &ArbiterHandle) {
        let board = self.board.clone();
        let s = spec.clone();
        let addr =
            Supervisor::start_in_arbiter(arbiter, move |_| PumpRoomActor::new(s, deps, board));
        self.rooms.insert(spec.id.clone(), RoomEntry { addr, spec });
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    pub fn spec(&self, room: &RoomId) -> Option<Arc<RoomSpec>> {
        self.rooms.get(room).map(|e| e.spec.clone())
    }

    fn entry(&self, room: &RoomId) -> Result<RoomEntry, RouteError> {
        // Clone out of the guard: it must not live across an await.
        self.rooms
            .get(room)
            .map(|e| e.clone())
            .ok_or_else(|| RouteError::UnknownRoom(room.to_string()))
    }

    /// Hands a batch to its room. Waits while the room's mailbox is full (backpressure, never
    /// a drop).
    pub async fn route(&self, batch: DeviceBatch) -> Result<(), RouteError> {
        let entry = self.entry(&batch.device.room)?;
        if !entry.spec.has_unit(batch.device.unit) {
            return Err(RouteError::UnknownDevice {
                room: entry.spec.id.to_string(),
                device: batch.device.unit.to_string(),
            });
        }
        match entry.addr.try_send(SamplesReceived(batch)) {
            Ok(()) => Ok(()),
            Err(SendError::Full(msg)) => entry
                .addr
                .send(msg)
                .await
                .map_err(|_| RouteError::RoomDown(entry.spec.id.to_string())),
            Err(SendError::Closed(_)) => Err(RouteError::RoomDown(entry.spec.id.to_string())),
        }
    }

    /// The live state of a room and its equipment.
    pub async fn room_view(&self, room: &RoomId) -> Result<RoomView, RouteError> {
        let entry = self.entry(room)?;
        match entry
            .addr
            .send(GetRoomView)
            .timeout(Duration::from_secs(5))
            .await
        {
            Ok(Ok(view)) => Ok(view),
            Ok(Err(_)) => Err(RouteError::RoomDown(room.to_string())),
            Err(actix::MailboxError::Timeout) => Err(RouteError::Timeout(room.to_string())),
            Err(actix::MailboxError::Closed) => Err(RouteError::RoomDown(room.to_string())),
        }
    }

    /// One line per room, from the status board (no actor is asked).
    pub fn summaries(&self) -> Vec<RoomSummary> {
        let mut out: Vec<RoomSummary> = self
            .rooms
            .iter()
            .map(|e| {
                let spec = &e.spec;
                let detail = self
                    .board
                    .get(&spec.id)
                    .map(|s| s.clone())
                    .unwrap_or_default();
                RoomSummary {
                    id: spec.id.clone(),
                    name: spec.name.clone(),
                    zone: spec.zone.clone(),
                    lat: spec.lat,
                    lon: spec.lon,
                    status: status_label(detail.online),
                    detail,
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Rooms online, rooms in total.
    pub fn online_count(&self) -> (usize, usize) {
        let online = self.board.iter().filter(|s| s.online).count();
        (online, self.rooms.len())
    }

    #[cfg(test)]
    pub(crate) fn addr(&self, room: &RoomId) -> Option<Addr<PumpRoomActor>> {
        self.rooms.get(room).map(|e| e.addr.clone())
    }
}
