//! Messages a device actor receives.

use crate::supervision::ActorError;
use actix::Message;
use cistern_schemas::reading::{IngestSource, Record};
use cistern_schemas::{DeviceId, DeviceKind};
use serde::{Deserialize, Serialize};

use super::table::PointView;

/// Records of this device, sorted by time, from its room, with their [`Intake`].
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct ApplyRecords {
    pub records: Vec<Record>,
    pub intake: Intake,
}

/// What travels with a batch from ingest: the room's intake permit, released once the batch
/// is applied (see [`crate::registry`] on backpressure), and the producer's receipt, which the
/// historian completes once the samples are durable.
#[derive(Debug)]
pub struct Intake {
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
    pub receipt: crate::ports::Receipt,
    /// The batch's `ingest` span (source, device, points): the room and the device enter it
    /// while they apply the batch and hand its samples to the historian, and the rule
    /// evaluation it triggers follows from it, so that one sample can be traced from the
    /// gateway to the store (`RUST_LOG=cistern=debug,cistern_actors=debug`). They report live
    /// views to the `LiveFeed` inside it too; the WebSocket hub fans them out in a span of its
    /// own, logging the same ids (ARCHITECTURE.md, Observability).
    pub span: tracing::Span,
    /// Where the batch came from (none: a test or a tool): the ingest lag is measured per
    /// source (see [`crate::lag`]).
    pub source: Option<IngestSource>,
}

impl Default for Intake {
    fn default() -> Self {
        Self {
            permit: None,
            receipt: Default::default(),
            span: tracing::Span::none(),
            source: None,
        }
    }
}

/// Room-level context a device's derived state depends on (e.g. a tank's share of demand).
#[derive(Debug, Clone, Copy, Default, PartialEq, Message)]
#[rtype(result = "()")]
pub struct RoomObserved {
    /// The share of the room's outlet flow this device serves, m³/h, when known and good.
    pub demand_m3h: Option<f64>,
    /// Whether mains power is present, when known and good.
    pub mains: Option<bool>,
}

/// Bookmarks a camera's video around an alarm (intrusion).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct BookmarkVideo(pub crate::alarms::Bookmark);

/// Sweeps points for staleness (driven by the actor's own timer; tests send it directly).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Sweep;

/// Asks for the device's live state.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<DeviceView, ActorError>")]
pub struct GetDeviceView;

/// A device's live state as operators see it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceView {
    pub id: DeviceId,
    pub kind: DeviceKind,
    /// Kind-specific derived state (pump running/tripped, tank volume and autonomy, ...).
    pub derived: serde_json::Value,
    pub points: Vec<PointView>,
}

/// Takes the device off this node with its room (see [`crate::registry`]): it saves its
/// snapshot now, leaves the fleet figures, cancels its timer and drops its room's address.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct RetireDevice;

/// Makes the actor panic inside a guarded handler (tests of supervision only).
#[cfg(test)]
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<(), ActorError>")]
pub struct Crash;

/// Replaces the device's nameplate (its archive changed): the same device, new ratings.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SetSpec<S: 'static>(pub S);
