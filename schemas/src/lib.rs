//! Cistern's shared vocabulary.
//!
//! Everything that crosses a crate or a wire boundary is defined here: ids, timestamps, samples
//! and their quality, the site inventory and the point catalog, the MQTT telemetry convention
//! and the Modbus register maps. The crate is pure (no async runtime, no I/O beyond reading a
//! file it is pointed at) so that rules, actors, ingest and the simulator agree on one model and
//! so that codecs can be property-tested and fuzzed in isolation.

pub mod catalog;
pub mod chunk;
pub mod fill_plan;
pub mod ids;
pub mod inventory;
pub mod modbus;
pub mod quality;
pub mod reading;
pub mod telemetry;
pub mod time;

pub use catalog::{DeviceKind, PointKind, PointSpec};
pub use ids::{DeviceId, DeviceUnit, EquipmentTag, IdError, PointId, ProjectId, RoomId, ZoneId};
pub use quality::{Quality, QualityLevel};
pub use time::{Date, Timestamp};
