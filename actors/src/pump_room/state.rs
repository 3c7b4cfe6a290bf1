//! What a room's own points mean, and the views of a room.

use crate::device::messages::DeviceView;
use crate::device::{PointTable, PointView};
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::{RoomId, Timestamp, ZoneId};
use serde::{Deserialize, Serialize};

/// Online/offline status of a room, kept on the fleet's status board for cheap listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct RoomStatus {
    pub online: bool,
    /// When the platform last received anything from the room's gateway.
    pub last_seen: Option<Timestamp>,
    /// Source time of the room's newest good sample (its own or a device's): a room whose
    /// gateway sends old or bad data, or whose samples wait in a lagging ingest, shows its
    /// true data age here while `last_seen` stays recent.
    pub last_data: Option<Timestamp>,
    /// Room-level points that are bad or uncertain.
    pub bad_points: u32,
    /// Room-level points that are stale.
    pub stale_points: u32,
}

/// A gateway stamping samples beyond the allowed skew ahead of the node's clock (shown in the
/// room's view while it keeps happening; those samples are refused).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClockSkew {
    /// When such a sample last arrived (node time).
    pub last: Timestamp,
    /// How far ahead of the node's clock it was stamped, seconds.
    pub ahead_s: f64,
}

/// One line of the room list.
#[derive(Clone, Debug, Serialize)]
pub struct RoomSummary {
    pub id: RoomId,
    /// The name operators read (Chinese in the demo) and its pinyin ("" when not given).
    pub name: String,
    pub name_pinyin: String,
    pub address: String,
    pub address_pinyin: String,
    pub zone: ZoneId,
    pub lat: f64,
    pub lon: f64,
    pub status: &'static str,
    #[serde(flatten)]
    pub detail: RoomStatus,
}

/// Derived state of the room's own instruments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomDerived {
    pub mains: Option<bool>,
    pub inlet_pressure_mpa: Option<f64>,
    pub outlet_pressure_mpa: Option<f64>,
    pub outlet_setpoint_mpa: f64,
    pub outlet_flow_m3h: Option<f64>,
    pub active_power_kw: Option<f64>,
    /// Energy intensity at this instant, kWh/m³.
    pub energy_intensity_kwh_m3: Option<f64>,
}

/// The live state of a room and everything in it (deserialised by a cluster node that shows
/// a room another node supervises).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoomView {
    pub id: RoomId,
    pub name: String,
    /// The name and address in pinyin ("" when the inventory gives none).
    pub name_pinyin: String,
    pub address: String,
    pub address_pinyin: String,
    pub zone: ZoneId,
    pub lat: f64,
    pub lon: f64,
    pub status: Link,
    pub last_seen: Option<Timestamp>,
    /// Source time of the room's newest good sample.
    pub last_data: Option<Timestamp>,
    /// The gateway's clock runs ahead (see [`ClockSkew`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_skew: Option<ClockSkew>,
    pub derived: RoomDerived,
    pub points: Vec<PointView>,
    pub pumps: Vec<DeviceView>,
    pub tanks: Vec<DeviceView>,
    pub cameras: Vec<DeviceView>,
}

/// The room's own part of its [`RoomView`]: what changes when its own instruments report
/// (the live feed sends it to dashboards watching the room).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoomPart {
    pub id: RoomId,
    pub status: Link,
    pub last_seen: Option<Timestamp>,
    pub last_data: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_skew: Option<ClockSkew>,
    pub derived: RoomDerived,
    pub points: Vec<PointView>,
}

/// Derives the room's state from its own points.
pub fn derive_room(spec: &RoomSpec, table: &PointTable) -> RoomDerived {
    let flow = table.good_value("outlet_flow");
    let power = table.good_value("active_power");
    RoomDerived {
        mains: table.good_flag("mains"),
        inlet_pressure_mpa: table.good_value("inlet_pressure"),
        outlet_pressure_mpa: table.good_value("outlet_pressure"),
        outlet_setpoint_mpa: table
            .good_value("outlet_setpoint")
            .unwrap_or(spec.outlet_setpoint_mpa),
        outlet_flow_m3h: flow,
        active_power_kw: power,
        energy_intensity_kwh_m3: match (power, flow) {
            (Some(p), Some(q)) if q > 0.1 => Some(p / q),
            _ => None,
        },
    }
}

/// A room's link as its live view shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    Online,
    Offline,
}

impl Link {
    pub fn of(online: bool) -> Self {
        if online {
            Link::Online
        } else {
            Link::Offline
        }
    }
}

pub fn status_label(online: bool) -> &'static str {
    if online {
        "online"
    } else {
        "offline"
    }
}
