//! The pump actor: one booster pump on a variable-speed drive.
//!
//! - Owns: the pump's points (running, fault, frequency, current, power, run hours, starts,
//!   duty) and its derived state: running / stopped / tripped, duty or standby.
//! - Receives: the device messages of [`crate::device::messages`] from its room.
//! - Emits: accepted samples to the historian sink; snapshots after every change.
//! - Mailbox: bounded; its room waits when it is full.
//! - On failure: restarted in place by its supervisor, state reloaded from its last snapshot.

mod state;
#[cfg(test)]
mod tests;

pub use state::{PumpBehaviour, PumpDerived, PumpRole, PumpStatus};

/// The pump actor.
pub type PumpActor = crate::device::DeviceActor<PumpBehaviour>;
