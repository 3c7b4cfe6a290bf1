//! What a pump's points mean.

use crate::device::{DeviceBehaviour, PointTable};
use cistern_schemas::inventory::PumpSpec;
use cistern_schemas::{DeviceKind, Timestamp};
use serde::Serialize;

/// Operating state of a pump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PumpStatus {
    Running,
    Stopped,
    /// The drive or motor reports a fault.
    Tripped,
    /// Run or fault feedback is missing, stale or bad.
    Unknown,
}

/// Duty (in service) or standby.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PumpRole {
    Duty,
    Standby,
}

/// Derived state of a pump.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PumpDerived {
    pub status: PumpStatus,
    pub role: Option<PumpRole>,
    pub frequency_hz: Option<f64>,
    pub power_kw: Option<f64>,
    /// Share of rated speed, 0..1.
    pub speed_ratio: Option<f64>,
}

/// The pump's kind-specific behaviour (it needs no state of its own).
#[derive(Debug, Default)]
pub struct PumpBehaviour;

/// Derives a pump's state from its points: a fault outranks the run feedback, and nothing is
/// claimed from a point that is not good.
pub fn derive_pump(table: &PointTable) -> PumpDerived {
    let status = match (table.good_flag("fault"), table.good_flag("running")) {
        (Some(true), _) => PumpStatus::Tripped,
        (Some(false), Some(true)) => PumpStatus::Running,
        (Some(false), Some(false)) => PumpStatus::Stopped,
        _ => PumpStatus::Unknown,
    };
    let role = table
        .good_flag("duty")
        .map(|d| if d { PumpRole::Duty } else { PumpRole::Standby });
    let frequency_hz = table.good_value("frequency");
    PumpDerived {
        status,
        role,
        frequency_hz,
        power_kw: table.good_value("power"),
        speed_ratio: frequency_hz.map(|f| f / 50.0),
    }
}

impl DeviceBehaviour for PumpBehaviour {
    const KIND: DeviceKind = DeviceKind::Pump;
    type Spec = PumpSpec;
    type Derived = PumpDerived;

    fn derive(&self, _spec: &PumpSpec, table: &PointTable, _now: Timestamp) -> PumpDerived {
        derive_pump(table)
    }
}
