//! Ingest: field data in (MQTT, Modbus TCP), decoded and validated batches out to the actors.
//!
//! Sources decode with the pure codecs of `cistern-schemas` and hand each device batch to a
//! [`BatchSink`] — in production the [`router::IngestRouter`], which routes it through the
//! fleet registry to the room's actor. Every rejection (a malformed payload, an unknown point,
//! a NaN, a Modbus exception) is counted by reason and logged at most once per device per
//! interval ([`field_log::FieldLog`]), so bad input can neither crash ingest nor flood the log.

pub mod field_log;
pub mod metrics;
pub mod modbus;
pub mod mqtt;
pub mod router;

use cistern_actors::Receipt;
use cistern_schemas::reading::{DeviceBatch, IngestSource};
use futures::future::BoxFuture;
use std::fmt::Display;

/// Why a batch could not be handed to its room (the registry's routing error).
pub use cistern_actors::RouteError as DeliveryError;

/// Where sources put what they decoded.
pub trait BatchSink: Send + Sync + 'static {
    /// Hands a batch (records sorted by time) to its room, with the receipt the producer
    /// waits on before acknowledging (completed once the samples are durable). Waits while
    /// the room's mailbox is full: samples are never dropped for want of room.
    fn deliver(
        &self,
        batch: DeviceBatch,
        receipt: Receipt,
    ) -> BoxFuture<'_, Result<(), DeliveryError>>;

    /// Counts a rejected input under `reason` (a bounded label) and logs it, rate-limited per
    /// device.
    fn reject(
        &self,
        source: IngestSource,
        device: &str,
        reason: &'static str,
        detail: &dyn Display,
    );
}
