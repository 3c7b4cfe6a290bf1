//! The camera actor: one camera of the room's video system.
//!
//! - Owns: the camera's points (online, recording, motion) and its derived state.
//! - Receives: the device messages of [`crate::device::messages`] from its room.
//! - Emits: accepted samples to the historian sink; snapshots after every change.
//! - Mailbox: bounded; its room waits when it is full.
//! - On failure: restarted in place by its supervisor, state reloaded from its last snapshot.

mod state;

pub use state::{CameraBehaviour, CameraDerived};

/// The camera actor.
pub type CameraActor = crate::device::DeviceActor<CameraBehaviour>;
