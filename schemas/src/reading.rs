//! Decoded samples as they travel from ingest to the actors, and readings as the simulator
//! produces them.
//!
//! Values are addressed by their index in the device kind's catalog
//! ([`crate::DeviceKind::points`]), so an actor's live state is a plain array and routing a
//! sample costs no string hashing.

use crate::ids::{DeviceId, DeviceUnit, RoomId};
use crate::quality::Quality;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// One value of one point at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointValue {
    /// Index into the device kind's catalog.
    pub index: u16,
    pub value: f64,
    pub quality: Quality,
}

/// All values a device reported for one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub t: Timestamp,
    pub values: Vec<PointValue>,
}

/// Where a batch came from (a bounded label for metrics and the audit trail).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestSource {
    Mqtt,
    Modbus,
    Simulator,
}

impl IngestSource {
    pub fn label(self) -> &'static str {
        match self {
            IngestSource::Mqtt => "mqtt",
            IngestSource::Modbus => "modbus",
            IngestSource::Simulator => "simulator",
        }
    }
}

/// Records of one device, in the order they are to be applied (ingest sorts them by time).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceBatch {
    pub device: DeviceId,
    pub source: IngestSource,
    pub records: Vec<Record>,
}

impl DeviceBatch {
    /// Number of point values in the batch.
    pub fn point_count(&self) -> usize {
        self.records.iter().map(|r| r.values.len()).sum()
    }
}

/// What the simulator measures in one room at one instant: for each device, one value per
/// catalog point, in catalog order. Gateways (MQTT or Modbus) turn this into wire traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomReading {
    pub room: RoomId,
    pub t: Timestamp,
    pub devices: Vec<(DeviceUnit, Vec<f64>)>,
}
