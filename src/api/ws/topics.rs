//! The topics a client can subscribe to, their filters (parsed strictly: a filter that does
//! not fit its topic is refused with `bad_filter`), and the shapes of their data: one serde
//! type per snapshot and per delta of each topic (PROTOCOL.md §2's table).

use crate::auth::AuditEntry;
use crate::business::workorders::WorkOrder;
use cistern_actors::alarms::{AlarmFilter, AlarmView};
use cistern_actors::device::messages::DeviceView;
use cistern_actors::device::PointView;
use cistern_actors::pump_room::RoomPart;
use cistern_actors::FleetRegistry;
use cistern_rules::{AlarmEvent, AlarmState, Severity};
use cistern_schemas::{PointId, Quality, RoomId, Timestamp, ZoneId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeSet;

/// The topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Fleet,
    Room,
    Points,
    Alarms,
    Events,
    Workorders,
}

impl Topic {
    pub fn parse(s: &str) -> Option<Topic> {
        Some(match s {
            "fleet" => Topic::Fleet,
            "room" => Topic::Room,
            "points" => Topic::Points,
            "alarms" => Topic::Alarms,
            "events" => Topic::Events,
            "workorders" => Topic::Workorders,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Fleet => "fleet",
            Topic::Room => "room",
            Topic::Points => "points",
            Topic::Alarms => "alarms",
            Topic::Events => "events",
            Topic::Workorders => "workorders",
        }
    }
}

/// Why a filter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown topic {0:?}; known: fleet, room, points, alarms, events, workorders")]
    UnknownTopic(String),
    #[error("bad filter for topic {topic}: {message}")]
    Bad {
        topic: &'static str,
        message: String,
    },
}

impl FilterError {
    pub fn code(&self) -> &'static str {
        match self {
            FilterError::UnknownTopic(_) => "unknown_topic",
            FilterError::Bad { .. } => "bad_filter",
        }
    }
}

/// A subscription's parsed topic and filter.
#[derive(Debug, Clone, PartialEq)]
pub enum SubSpec {
    Fleet { zone: Option<ZoneId>, rooms: bool },
    Room(RoomId),
    Points(Vec<PointId>),
    Alarms(AlarmFilter),
    Events { alarm: bool, audit: bool },
    Workorders(OrderSubFilter),
}

/// A `workorders` subscription's filter: every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSubFilter {
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub room: Option<RoomId>,
}

impl OrderSubFilter {
    pub fn matches(&self, o: &WorkOrder) -> bool {
        self.team
            .as_ref()
            .is_none_or(|t| o.team.as_ref() == Some(t))
            && (self.assignee.as_ref()).is_none_or(|a| o.assignee.as_ref() == Some(a))
            && self
                .room
                .as_ref()
                .is_none_or(|r| o.room.as_ref() == Some(r))
    }
}

impl SubSpec {
    pub fn topic(&self) -> Topic {
        match self {
            SubSpec::Fleet { .. } => Topic::Fleet,
            SubSpec::Room(_) => Topic::Room,
            SubSpec::Points(_) => Topic::Points,
            SubSpec::Alarms(_) => Topic::Alarms,
            SubSpec::Events { .. } => Topic::Events,
            SubSpec::Workorders(_) => Topic::Workorders,
        }
    }

    /// The rooms whose detailed state the subscription needs.
    pub fn rooms(&self) -> BTreeSet<RoomId> {
        match self {
            SubSpec::Room(r) => BTreeSet::from([r.clone()]),
            SubSpec::Points(ps) => ps.iter().map(|p| p.device.room.clone()).collect(),
            _ => BTreeSet::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFilter {
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    rooms: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomFilter {
    room: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointsFilter {
    points: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlarmsFilter {
    #[serde(default)]
    state: Vec<AlarmState>,
    #[serde(default)]
    severity: Vec<Severity>,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    room: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsFilter {
    #[serde(default)]
    kinds: Option<Vec<String>>,
}

/// Parses and checks a subscription against the fleet.
pub fn parse(
    topic: &str,
    filter: &serde_json::Value,
    registry: &FleetRegistry,
    max_points: usize,
) -> Result<SubSpec, FilterError> {
    let t = Topic::parse(topic).ok_or_else(|| FilterError::UnknownTopic(topic.to_owned()))?;
    let bad = |message: String| FilterError::Bad {
        topic: t.as_str(),
        message,
    };
    // An absent filter is an empty one.
    let filter = if filter.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        filter.clone()
    };
    fn de<T: for<'de> Deserialize<'de>>(v: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }
    let room_of = |s: &str| -> Result<RoomId, FilterError> {
        let id = RoomId::new(s).map_err(|e| bad(e.to_string()))?;
        registry
            .known_spec(&id)
            .map(|_| id)
            .ok_or_else(|| bad(format!("unknown room {s:?}")))
    };
    Ok(match t {
        Topic::Fleet => {
            let f: FleetFilter = de(filter).map_err(bad)?;
            let zone = f
                .zone
                .map(|z| z.parse::<ZoneId>().map_err(|e| bad(e.to_string())))
                .transpose()?;
            SubSpec::Fleet {
                zone,
                rooms: f.rooms,
            }
        }
        Topic::Room => {
            let f: RoomFilter = de(filter).map_err(bad)?;
            SubSpec::Room(room_of(&f.room)?)
        }
        Topic::Points => {
            let f: PointsFilter = de(filter).map_err(bad)?;
            if f.points.is_empty() || f.points.len() > max_points {
                return Err(bad(format!(
                    "`points` needs 1 to {max_points} point ids, got {}",
                    f.points.len()
                )));
            }
            let mut out = Vec::with_capacity(f.points.len());
            for p in &f.points {
                let id: PointId = p.parse().map_err(|e| bad(format!("{e}")))?;
                let spec = registry
                    .known_spec(&id.device.room)
                    .ok_or_else(|| bad(format!("unknown room in {p:?}")))?;
                if !spec.has_unit(id.device.unit) {
                    return Err(bad(format!("unknown device in {p:?}")));
                }
                if !spec
                    .point_specs(id.device.unit)
                    .iter()
                    .any(|s| s.name == &*id.name)
                {
                    return Err(bad(format!("unknown point {p:?}")));
                }
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            SubSpec::Points(out)
        }
        Topic::Alarms => {
            let f: AlarmsFilter = de(filter).map_err(bad)?;
            SubSpec::Alarms(AlarmFilter {
                states: f.state,
                severities: f.severity,
                zone: f
                    .zone
                    .map(|z| z.parse::<ZoneId>().map_err(|e| bad(e.to_string())))
                    .transpose()?,
                room: f.room.as_deref().map(room_of).transpose()?,
                rule: None,
            })
        }
        Topic::Workorders => {
            let f: OrderSubFilter = de(filter).map_err(bad)?;
            if let Some(r) = &f.room {
                room_of(r.as_str())?;
            }
            SubSpec::Workorders(f)
        }
        Topic::Events => {
            let f: EventsFilter = de(filter).map_err(bad)?;
            match f.kinds {
                None => SubSpec::Events {
                    alarm: true,
                    audit: true,
                },
                Some(kinds) => {
                    let mut spec = (false, false);
                    for k in &kinds {
                        match k.as_str() {
                            "alarm" => spec.0 = true,
                            "audit" => spec.1 = true,
                            other => {
                                return Err(bad(format!(
                                    "unknown event kind {other:?}; known: alarm, audit"
                                )))
                            }
                        }
                    }
                    if !(spec.0 || spec.1) {
                        return Err(bad("`kinds` is empty".into()));
                    }
                    SubSpec::Events {
                        alarm: spec.0,
                        audit: spec.1,
                    }
                }
            }
        }
    })
}

/// Alarms on the board by severity (P1..P4).
pub type BySeverity = [u32; 4];

/// Counts by severity on the wire: `{"P1": n, "P2": n, "P3": n, "P4": n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeverityCounts {
    #[serde(rename = "P1")]
    pub p1: u32,
    #[serde(rename = "P2")]
    pub p2: u32,
    #[serde(rename = "P3")]
    pub p3: u32,
    #[serde(rename = "P4")]
    pub p4: u32,
}

impl From<&BySeverity> for SeverityCounts {
    fn from(c: &BySeverity) -> Self {
        Self {
            p1: c[0],
            p2: c[1],
            p3: c[2],
            p4: c[3],
        }
    }
}

/// One supply zone's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneSummary {
    pub rooms: u32,
    pub online: u32,
    pub alarms: BySeverity,
    pub unacked: u32,
}

impl ZoneSummary {
    /// The zone's entry on the wire (PROTOCOL.md's ZoneSummary).
    pub fn entry<'a>(&self, zone: &'a ZoneId) -> ZoneEntry<'a> {
        ZoneEntry {
            zone,
            rooms: self.rooms,
            online: self.online,
            offline: self.rooms.saturating_sub(self.online),
            alarms: (&self.alarms).into(),
            unacked: self.unacked,
        }
    }
}

/// PROTOCOL.md's ZoneSummary.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneEntry<'a> {
    pub zone: &'a ZoneId,
    pub rooms: u32,
    pub online: u32,
    pub offline: u32,
    pub alarms: SeverityCounts,
    pub unacked: u32,
}

/// One room on the fleet map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMark {
    pub zone: ZoneId,
    pub online: bool,
    /// Alarms on the board.
    pub alarms: u32,
    pub unacked: u32,
    /// Annunciating alarms by severity (active, not shelved, suppressed or out of service).
    pub annunciating: BySeverity,
}

impl RoomMark {
    pub fn worst(&self) -> Option<Severity> {
        Severity::ALL
            .iter()
            .copied()
            .find(|s| self.annunciating[s.index()] > 0)
    }

    /// The room's entry on the wire (PROTOCOL.md's RoomMark).
    pub fn entry<'a>(&'a self, room: &'a RoomId) -> RoomMarkEntry<'a> {
        RoomMarkEntry {
            room,
            zone: &self.zone,
            status: if self.online {
                RoomStatus::Online
            } else {
                RoomStatus::Offline
            },
            worst: self.worst(),
            alarms: self.alarms,
            unacked: self.unacked,
        }
    }
}

/// A room's connection on the fleet map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomStatus {
    Online,
    Offline,
}

/// PROTOCOL.md's RoomMark.
#[derive(Debug, Clone, Serialize)]
pub struct RoomMarkEntry<'a> {
    pub room: &'a RoomId,
    pub zone: &'a ZoneId,
    pub status: RoomStatus,
    pub worst: Option<Severity>,
    pub alarms: u32,
    pub unacked: u32,
}

/// A point's live value, as the `points` topic sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointValue {
    pub id: String,
    pub unit: &'static str,
    pub value: Option<f64>,
    pub quality: Quality,
    pub t: Option<Timestamp>,
}

impl PointValue {
    pub fn of(id: &PointId, view: Option<&PointView>) -> Self {
        match view {
            Some(v) => Self {
                id: id.to_string(),
                unit: v.unit,
                value: v.value,
                quality: v.quality.clone(),
                t: v.t,
            },
            None => Self {
                id: id.to_string(),
                unit: "",
                value: None,
                quality: Quality::uncertain("no_data"),
                t: None,
            },
        }
    }
}

// ---------------------------------------------------------------- the topics' data

/// `fleet` snapshot data.
#[derive(Debug, Clone, Serialize)]
pub struct FleetSnapshot<'a> {
    pub zones: Vec<ZoneEntry<'a>>,
    /// Only with `"rooms": true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<RoomMarkEntry<'a>>>,
}

/// `fleet` delta data (keys `zone:<zone>`, `room:<room>`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FleetDelta<'a> {
    Zone { zone: ZoneEntry<'a> },
    Room { room: RoomMarkEntry<'a> },
}

/// `room` delta data (keys `room`, a device id); the snapshot is the REST RoomView
/// (`api::rooms::room_body`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomDelta<'a> {
    Room { room: &'a RoomPart },
    Device { device: &'a DeviceView },
}

/// `points` snapshot data.
#[derive(Debug, Clone, Serialize)]
pub struct PointsSnapshot {
    pub points: Vec<PointValue>,
}

/// `points` delta data (key: the point id).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PointsDelta<'a> {
    Point { point: &'a PointValue },
}

/// `alarms` snapshot data: the filtered board, most severe first, then newest.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmsSnapshot<'a> {
    pub alarms: Vec<&'a AlarmView>,
}

/// `alarms` delta data (key: the alarm id).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlarmsDelta<'a> {
    Upsert { alarm: &'a AlarmView },
    Remove { alarm_id: &'a str },
}

/// One `events` item: a delta's data (keys `alarm:<n>`, `audit:<n>`), and an entry of the
/// snapshot.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventItem<'a> {
    Alarm {
        alarm_id: &'a str,
        event: &'a AlarmEvent,
    },
    Audit {
        entry: &'a AuditEntry,
    },
}

/// `workorders` snapshot data: the open orders that match, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct OrdersSnapshot<'a> {
    pub orders: Vec<&'a WorkOrder>,
}

/// `workorders` delta data (key: the order id): the order as written — created, commanded,
/// escalated, linked, closed (a closed or cancelled order leaves the snapshot after this).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrdersDelta<'a> {
    Order { order: &'a WorkOrder },
}

/// `events` snapshot data: the recent items, oldest first, each as it was sent.
#[derive(Debug, Clone, Serialize)]
pub struct EventsSnapshot<'a> {
    pub events: Vec<&'a RawValue>,
}
