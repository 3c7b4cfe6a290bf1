//! Ingest: field data in (MQTT, Modbus TCP), decoded and validated batches out to the actors.
//!
//! Sources decode with the pure codecs of `cistern-schemas` and hand each device batch to a
//! [`BatchSink`] — in production the [`router::IngestRouter`], which routes it through the
//! fleet registry to the room's actor. Every rejection (a malformed payload, an unknown point,
//! a NaN, a Modbus exception) is counted by reason and logged at most once per device per
//! interval ([`field_log::FieldLog`]), so bad input can neither crash ingest nor flood the log.

pub mod field_log;
pub mod modbus;

use cistern_schemas::reading::{DeviceBatch, IngestSource};
use futures::future::BoxFuture;
use std::fmt::Display;

/// Why a batch could not be handed to its room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("unknown room {0}")]
    UnknownRoom(String),
    #[error("room {room} has no device {device}")]
    UnknownDevice { room: String, device: String },
    #[error("room {0} is not running")]
    RoomDown(String),
}

impl DeliveryError {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DeliveryError::UnknownRoom(_) => "unknown_room",
            DeliveryError::UnknownDevice { .. } => "unknown_device",
            DeliveryError::RoomDown(_) => "room_down",
        }
    }
}

/// Where sources put what they decoded.
pub trait BatchSink: Send + Sync + 'static {
    /// Hands a batch (records sorted by time) to its room. Waits while the room's mailbox is
    /// full: samples are never dropped for want of room.
    fn deliver(&self, batch: DeviceBatch) -> BoxFuture<'_, Result<(), DeliveryError>>;

    /// Counts a rejected input under `reason` (a bounded label) and logs it, rate-limited per
    /// device.
    fn reject(&self, source: IngestSource, device: &str, reason: &'static str, detail: &dyn Display);
}
