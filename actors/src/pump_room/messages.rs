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

/// An operator command on one of the room's alarms.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<cistern_rules::AlarmEvent>, AlarmCommandError>")]
pub struct RoomCommand(pub cistern_rules::Command);

/// Why a command on a room's alarm was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmCommandError {
    #[error("this node runs no alarm rules")]
    NoRules,
    #[error(transparent)]
    Refused(#[from] cistern_rules::CommandError),
    #[error(transparent)]
    Actor(#[from] ActorError),
}

/// Asks for every alarm record of the room (normal ones included).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<cistern_rules::AlarmRecord>")]
pub struct GetAlarms;

/// The last recorded cleaning and disinfection of each of the room's tanks (`n` of `T<n>`, when;
/// a tank not named has no record). Sent by the cleaning service at start, after every record
/// and on its periodic sweep; the room keeps the latest and derives each tank's
/// `days_since_cleaning` fact from it with its own clock.
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub struct TankCleanings(pub Vec<(u8, cistern_schemas::Timestamp)>);

/// The room's nightly leak facts (DOMAIN.md §4), from the analysis when a night closes and at
/// start: the last night's leak index, the room's baseline and its spread, and the recent nights' indices
/// (oldest first, NaN = a night without data). The room keeps the latest and sets its
/// `leak_index`, `leak_baseline` and `leak_nights` facts from it (the `night_flow_leak` rule).
#[derive(Debug, Clone, PartialEq, Message)]
#[rtype(result = "()")]
pub struct NightLeak {
    pub index: Option<f64>,
    pub baseline: Option<f64>,
    pub spread: Option<f64>,
    pub nights: Vec<f64>,
}

/// Puts a reloaded rule set in force.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SwapRules(pub std::sync::Arc<cistern_rules::RuleSet>);

/// Puts a changed room spec in force (its archive changed): the same devices with new
/// nameplates and site data. Refused when the number of pumps, tanks or cameras or the zone
/// changed: those take a restart of the room.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), String>")]
pub struct UpdateSpec(pub std::sync::Arc<cistern_schemas::inventory::RoomSpec>);

/// Takes the room off this node for good (its shard moves; see [`crate::registry`]): it saves
/// its alarm state and live snapshot now, has its devices save theirs and go idle, cancels its
/// timers and drops every address it holds, so that it ends once the registry and its zone
/// drop theirs. Answered once the devices confirmed.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Retire;

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
