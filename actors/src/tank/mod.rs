//! The tank actor: one break tank.
//!
//! - Owns: the tank's points (level, inlet valve, overflow and low-low switches) and its
//!   derived state: level in % of overflow, volume, usable volume above the hard minimum and
//!   fire reserve, hours of autonomy at the current draw.
//! - Receives: the device messages of [`crate::device::messages`]; [`RoomObserved`] carries its
//!   share of the room's outlet flow, which autonomy is computed from.
//! - Emits: accepted samples to the historian sink; snapshots after every change.
//! - Mailbox: bounded; its room waits when it is full.
//! - On failure: restarted in place by its supervisor, state reloaded from its last snapshot.
//!
//! [`RoomObserved`]: crate::device::messages::RoomObserved

mod state;
#[cfg(test)]
mod tests;

pub use state::{TankBehaviour, TankDerived};

/// The tank actor.
pub type TankActor = crate::device::DeviceActor<TankBehaviour>;
