//! The parts a room's equipment is made of, as the lifecycle tracks them: one component per
//! wearing part of an archived equipment (a pump set is the pump, its mechanical seal, its
//! bearings and its motor), each with the events of its position — installed, replaced
//! (planned), failed (and replaced). A position is the unit of the history: a failed seal
//! replaced by a new one is one component with two lives.

use crate::business::assets::archive::model::{EquipmentKind, RoomArchive};
use crate::business::assets::weibull::Weibull;
use cistern_schemas::{EquipmentTag, RoomId, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a component is; each has a literature failure curve (DOMAIN.md §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentClass {
    Pump,
    Motor,
    MechanicalSeal,
    Bearing,
    PressureTransducer,
    ControlValve,
}

impl ComponentClass {
    pub const ALL: [ComponentClass; 6] = [
        ComponentClass::Pump,
        ComponentClass::Motor,
        ComponentClass::MechanicalSeal,
        ComponentClass::Bearing,
        ComponentClass::PressureTransducer,
        ComponentClass::ControlValve,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentClass::Pump => "pump",
            ComponentClass::Motor => "motor",
            ComponentClass::MechanicalSeal => "mechanical_seal",
            ComponentClass::Bearing => "bearing",
            ComponentClass::PressureTransducer => "pressure_transducer",
            ComponentClass::ControlValve => "control_valve",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The literature curve of DOMAIN.md §8 (Barringer's tables, hours of running). No VFD
    /// class: §8 gives it no default and we cite none.
    pub fn literature(self) -> Weibull {
        let (beta, eta) = match self {
            ComponentClass::Pump => (1.2, 35_000.0),
            ComponentClass::Motor => (1.2, 100_000.0),
            ComponentClass::MechanicalSeal => (1.4, 25_000.0),
            ComponentClass::Bearing => (1.3, 40_000.0),
            ComponentClass::PressureTransducer => (1.0, 20_000.0),
            ComponentClass::ControlValve => (1.0, 100_000.0),
        };
        Weibull { beta, eta }
    }

    /// Whether the component runs with its pump (its hours are the pump's run hours) or all
    /// the time (a transducer or valve ages with the calendar).
    pub fn runs_with_pump(self) -> bool {
        matches!(
            self,
            ComponentClass::Pump
                | ComponentClass::Motor
                | ComponentClass::MechanicalSeal
                | ComponentClass::Bearing
        )
    }
}

impl fmt::Display for ComponentClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component: `ROOM/TAG/class` (`XM-0001/P1/mechanical_seal`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ComponentId(String);

impl ComponentId {
    pub fn new(room: &RoomId, tag: &EquipmentTag, class: ComponentClass) -> Self {
        Self(format!("{room}/{tag}/{class}"))
    }

    /// Parses `ROOM/TAG/class` (the room and tag as given; the class must be known).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.rsplitn(3, '/');
        let class = parts.next()?;
        let tag = parts.next()?;
        let room = parts.next()?;
        (ComponentClass::parse(class).is_some()
            && !room.is_empty()
            && !tag.is_empty()
            && s.len() <= 160
            && !s.chars().any(char::is_control))
        .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The smallest id starting with `prefix` (a bound for a range of the ids of one room).
    pub(crate) fn prefix(prefix: &str) -> Self {
        Self(prefix.to_owned())
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happened to a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// First fitted (starts a life).
    Install,
    /// Replaced before failing (ends a life censored, starts the next).
    Replacement,
    /// Failed and replaced (ends a life failed, starts the next).
    Failure,
}

impl EventKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "install" => Some(Self::Install),
            "replacement" => Some(Self::Replacement),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }
}

/// Where an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// The room's archive (an equipment appeared, or its serial changed).
    Archive,
    /// A completed work order that replaced the part.
    WorkOrder,
    /// Recorded by hand through the API.
    Manual,
    /// From a spreadsheet import.
    Import,
    /// The demo's generated history (sampled from the literature curves): not real data.
    Simulated,
}

/// One event of a component.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub kind: EventKind,
    pub source: EventSource,
    /// The serial fitted by this event, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serial: String,
    pub by: String,
    /// The work order it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// How a component's running hours are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoursSource {
    /// From its pump's `run_hours` counter (the measured duty applied to its age).
    Counter,
    /// Calendar age × the configured duty factor (no counter read for this room).
    Calendar,
}

/// A component (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Component {
    pub id: ComponentId,
    pub room: RoomId,
    pub equipment: EquipmentTag,
    pub class: ComponentClass,
    pub vendor: String,
    pub model: String,
    pub part_number: String,
    pub serial: String,
    /// When the part now fitted was installed (the last install, replacement or failure).
    pub installed_at: Timestamp,
    /// Oldest first.
    pub events: Vec<Event>,
    /// Running hours per calendar hour (0–1).
    pub duty: f64,
    pub hours_source: HoursSource,
}

/// One life of a component: its running hours and whether it ended in a failure (else it
/// was replaced before, or is still running: censored).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Life {
    pub hours: f64,
    pub failed: bool,
}

/// Hours per millisecond.
const HOURS_PER_MS: f64 = 1.0 / 3_600_000.0;

impl Component {
    /// Running hours of the part now fitted, at `now`.
    pub fn age_hours(&self, now: Timestamp) -> f64 {
        ((now.as_millis() - self.installed_at.as_millis()).max(0) as f64) * HOURS_PER_MS * self.duty
    }

    /// The lives of this position: closed ones from its events, then the running one.
    pub fn lives(&self, now: Timestamp) -> Vec<Life> {
        let mut out = Vec::new();
        let mut start: Option<Timestamp> = None;
        for e in &self.events {
            if let (Some(s), EventKind::Replacement | EventKind::Failure) = (start, e.kind) {
                let hours =
                    ((e.at.as_millis() - s.as_millis()).max(0) as f64) * HOURS_PER_MS * self.duty;
                if hours > 0.0 {
                    out.push(Life {
                        hours,
                        failed: e.kind == EventKind::Failure,
                    });
                }
            }
            start = Some(e.at);
        }
        let age = self.age_hours(now);
        if age > 0.0 {
            out.push(Life {
                hours: age,
                failed: false,
            });
        }
        out
    }

    /// Adds an event in time order and moves the fitted part's install time and serial on.
    pub fn push(&mut self, event: Event) {
        let at = self.events.partition_point(|e| e.at <= event.at);
        self.events.insert(at, event);
        if let Some(last) = self.events.last() {
            self.installed_at = last.at;
            if !last.serial.is_empty() {
                self.serial = last.serial.clone();
            }
        }
    }

    pub fn failures(&self) -> usize {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::Failure)
            .count()
    }
}

/// A component an archive's equipment implies (before any event).
#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    pub id: ComponentId,
    pub room: RoomId,
    pub equipment: EquipmentTag,
    pub class: ComponentClass,
    pub vendor: String,
    pub model: String,
    pub part_number: String,
    pub serial: String,
    /// The equipment's install date (else the commissioning date, the room's, or `None`).
    pub installed: Option<Timestamp>,
}

impl Derived {
    /// The component, installed at `installed` (an archive install event), its pump's parts
    /// running `duty` of the calendar (the others all of it).
    pub fn component(self, installed: Timestamp, duty: f64) -> Component {
        Component {
            duty: if self.class.runs_with_pump() {
                duty
            } else {
                1.0
            },
            hours_source: HoursSource::Calendar,
            installed_at: installed,
            events: vec![Event {
                at: installed,
                kind: EventKind::Install,
                source: EventSource::Archive,
                serial: self.serial.clone(),
                by: "archive".into(),
                order: None,
                note: String::new(),
            }],
            id: self.id,
            room: self.room,
            equipment: self.equipment,
            class: self.class,
            vendor: self.vendor,
            model: self.model,
            part_number: self.part_number,
            serial: self.serial,
        }
    }
}

/// The components of a room's archive: a pump → pump, mechanical seal, bearing (and a motor
/// unless the set has its own motor equipment); a motor → motor; a transducer → pressure
/// transducer; a valve → control valve. The seal's and bearing's part numbers are the pump's
/// with a suffix when it has one (they are bought for that pump).
pub fn derive(archive: &RoomArchive, utc_offset_minutes: i32) -> Vec<Derived> {
    let room = &archive.site.id;
    let mut out = Vec::new();
    let has_own_motor = |tag: &EquipmentTag| {
        archive
            .equipment
            .iter()
            .any(|e| e.kind == EquipmentKind::Motor && e.set.as_ref() == Some(tag))
    };
    for e in &archive.equipment {
        let installed = e
            .installed
            .or(e.commissioned)
            .or(archive.commissioned)
            .map(|d| d.start(utc_offset_minutes));
        let mut add = |class: ComponentClass, part_number: String, serial: String| {
            out.push(Derived {
                id: ComponentId::new(room, &e.tag, class),
                room: room.clone(),
                equipment: e.tag.clone(),
                class,
                vendor: e.vendor.clone(),
                model: e.model.clone(),
                part_number,
                serial,
                installed,
            })
        };
        let suffixed = |s: &str| {
            if e.part_number.is_empty() {
                String::new()
            } else {
                format!("{}-{s}", e.part_number)
            }
        };
        match e.kind {
            EquipmentKind::Pump => {
                add(
                    ComponentClass::Pump,
                    e.part_number.clone(),
                    e.serial.clone(),
                );
                add(
                    ComponentClass::MechanicalSeal,
                    suffixed("SEAL"),
                    String::new(),
                );
                add(ComponentClass::Bearing, suffixed("BRG"), String::new());
                if !has_own_motor(&e.tag) {
                    add(ComponentClass::Motor, suffixed("MOT"), String::new());
                }
            }
            EquipmentKind::Motor => add(
                ComponentClass::Motor,
                e.part_number.clone(),
                e.serial.clone(),
            ),
            EquipmentKind::Transducer => add(
                ComponentClass::PressureTransducer,
                e.part_number.clone(),
                e.serial.clone(),
            ),
            EquipmentKind::Valve => add(
                ComponentClass::ControlValve,
                e.part_number.clone(),
                e.serial.clone(),
            ),
            _ => {}
        }
    }
    out
}

/// The part number a component is ordered by: its own, else its class (`mechanical_seal`).
pub fn stock_key(c: &Component) -> String {
    if c.part_number.is_empty() {
        c.class.as_str().to_owned()
    } else {
        c.part_number.clone()
    }
}
