//! The pump-room actor: one per room, parent of the room's pump, tank and camera actors.
//!
//! - Owns: the room's own points (power meter, hydraulics, water quality, environment,
//!   security), its online/offline status (offline once its gateway has been silent for
//!   `offline_after`), and the addresses of its children, which it starts.
//! - Receives: [`SamplesReceived`] from ingest (via the registry) — its own batches it applies,
//!   device batches it forwards to the child; [`GetRoomView`]; [`Sweep`]; [`TankCleanings`]
//!   (each tank's last cleaning, from which it derives the tanks' `days_since_cleaning`).
//! - Emits: accepted samples to the historian sink; [`RoomObserved`] to its tanks (their share
//!   of the draw, conflated: a full tank mailbox skips one); status to the fleet's status board.
//! - Mailbox: bounded. When a child's mailbox is full the room waits for it (it stops taking
//!   new batches), which pushes back on ingest and, through QoS 1, on the broker: samples are
//!   never dropped.
//! - On failure: a panic in a handler is caught and the room is restarted in place by its
//!   supervisor; it rebuilds its own points from its last snapshot and keeps its children,
//!   which never notice.
//!
//! [`RoomObserved`]: crate::device::messages::RoomObserved

mod actor;
#[cfg(test)]
mod alarm_tests;
mod alarms;
mod messages;
#[cfg(test)]
mod shard_tests;
mod state;
#[cfg(test)]
mod tests;

pub use crate::device::messages::Sweep;
pub use actor::PumpRoomActor;
pub use messages::{
    AlarmCommandError, GetAlarms, GetRoomView, NightLeak, Retire, RoomCommand, SamplesReceived,
    SwapRules, TankCleanings, UpdateSpec,
};
pub use state::{
    status_label, ClockSkew, Link, RoomDerived, RoomPart, RoomStatus, RoomSummary, RoomView,
};
