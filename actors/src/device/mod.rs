//! What every device actor shares: the live point table, snapshots, views, and a generic
//! actor parameterised by the kind's derived state ([`DeviceBehaviour`]).
//!
//! - Owns: the live state of one device's points (value, quality with reason, source
//!   timestamp) and the state derived from them.
//! - Receives: [`messages::ApplyRecords`] from its room, [`messages::RoomObserved`] (room-level
//!   context such as outlet flow), [`messages::GetDeviceView`], [`messages::Sweep`].
//! - Emits: accepted samples to the [`crate::SampleSink`]; its snapshot to the
//!   [`crate::SnapshotStore`] after every change.
//! - Mailbox: unbounded (messages are queued with [`crate::mailbox::Post`]); what it holds is
//!   bounded by its room's intake permits ([`crate::ActorConfig::mailbox`]).
//! - On failure: a panic in a handler is caught, counted and stops the actor; the actix
//!   supervisor restarts it in place and it reloads its last snapshot.

pub mod actor;
pub mod messages;
pub mod table;

pub use actor::{DeviceActor, DeviceBehaviour, DeviceDeps};
pub use messages::Intake;
pub use table::{ApplyOutcome, DeviceSnapshot, PointState, PointTable, PointView};
