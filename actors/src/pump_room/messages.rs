//! Messages a pump-room actor receives.

use super::state::RoomView;
use crate::supervision::ActorError;
use actix::Message;
use cistern_schemas::reading::DeviceBatch;

/// A decoded batch for the room or one of its devices, with its intake permit and receipt.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SamplesReceived {
    pub batch: DeviceBatch,
    pub intake: crate::device::Intake,
}

/// Asks for the live state of the room and all its equipment.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<RoomView, ActorError>")]
pub struct GetRoomView;

/// Makes the room panic inside a guarded handler (tests of supervision only).
#[cfg(test)]
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct Crash;

/// Hands out the address of pump `n` (tests of supervision only).
#[cfg(test)]
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<actix::Addr<crate::pump::PumpActor>>")]
pub struct GetPump(pub usize);
