//! Facts: the input view of a room that the rules read.
//!
//! The room actor builds a [`RoomFacts`] from its live point tables and derived state and hands
//! it to its [`crate::RoomEngine`]. It is plain data: point values by catalog name with their
//! quality, plus *derived facts* that are not catalog points but that rules need:
//!
//! | device | derived fact | meaning |
//! |---|---|---|
//! | room | `room_online` | the room's gateway is talking (the actor's own online test) |
//! | room | `data_age_s` | seconds since anything was received from the room |
//! | room | `setpoint` | outlet pressure set-point, MPa (the point, else the site inventory) |
//! | room | `pumps`, `tanks`, `cameras` | the children as arrays of maps (`unit`, points, derived) |
//! | room | `pump_count`, `pumps_tripped`, `pumps_running` | pumps by status (unknown counts as neither) |
//! | room | `leak_index`, `leak_baseline` | the last closed night's leak index (minimum night flow less the households' legitimate use, over the day's mean flow) and the room's own baseline (median of its earlier unflagged nights), set by the analysis once a night (DOMAIN.md §4) |
//! | room | `leak_spread` | the robust spread (1.4826 × MAD) of the nights behind the baseline: how much the room's index wanders night to night |
//! | room | `leak_nights` | the recent nights' leak indices, oldest first (a night without data reads `()`) |
//! | room | `suspect_transmitters` | the 4-20 mA points (room and devices) that are not good or have not changed for 60 s: `name` (`chlorine`, `T1.level`), `quality`, `flat_s`, `value` |
//! | pump | `unit`, `status` | `"P1"`; `"running"`, `"stopped"`, `"tripped"` or `"unknown"` |
//! | tank | `unit`, `level_pct` | level as % of the overflow level |
//! | tank | `volume_m3`, `autonomy_h` | stored volume; hours of supply at the current draw |
//! | tank | `level_rate_m_h` | level trend, m/h (negative = falling), as the actor estimates it |
//! | tank | `days_since_cleaning` | days since the last recorded cleaning and disinfection |
//! | camera | `unit` | `"C1"` |
//!
//! A point is *usable* when its quality is good or uncertain (saturated) and it is not stale.
//! Time-based facts (`data_age_s`, `flat_s`, `days_since_cleaning`) are computed by the host when
//! it builds the facts; it re-evaluates the rules that read them periodically
//! ([`Touched::all`] once a minute is plenty).

use cistern_schemas::{DeviceKind, DeviceUnit, PointKind, QualityLevel, RoomId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a fact could not be set or named.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    #[error("{kind} has no point or derived fact named {name:?}")]
    UnknownFact { kind: DeviceKind, name: String },
    #[error("room has no device {0}")]
    UnknownDevice(DeviceUnit),
    #[error("{0:?} is not `<name>` or `<unit>.<name>` (unit: P1, T1, C1 …)")]
    BadPath(String),
}

/// The value and quality of one point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointFact {
    pub value: f64,
    pub quality: QualityLevel,
    /// No update for three expected periods.
    #[serde(default)]
    pub stale: bool,
    /// Seconds the value has not changed (flat-line detection for `bad_analog`).
    #[serde(default)]
    pub flat_s: f64,
}

impl PointFact {
    /// A good, fresh value.
    pub fn good(value: f64) -> Self {
        Self {
            value,
            quality: QualityLevel::Good,
            stale: false,
            flat_s: 0.0,
        }
    }

    /// A bad value (failed sensor).
    pub fn bad(value: f64) -> Self {
        Self {
            quality: QualityLevel::Bad,
            ..Self::good(value)
        }
    }

    /// Rules may act on it: good or uncertain, and not stale.
    pub fn usable(&self) -> bool {
        !self.stale && matches!(self.quality, QualityLevel::Good | QualityLevel::Uncertain)
    }
}

/// The points of one device, in catalog order. A point never received is `None` (unknown).
#[derive(Clone, Debug, PartialEq)]
pub struct PointFacts {
    kind: DeviceKind,
    values: Vec<Option<PointFact>>,
}

impl PointFacts {
    /// All points unknown.
    pub fn new(kind: DeviceKind) -> Self {
        Self {
            kind,
            values: vec![None; kind.points().len()],
        }
    }

    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// Sets a point by catalog name.
    pub fn set(&mut self, name: &str, fact: PointFact) -> Result<(), FactsError> {
        let i = self.index(name)?;
        if let Some(slot) = self.values.get_mut(i) {
            *slot = Some(fact);
        }
        Ok(())
    }

    /// Sets a good value.
    pub fn set_value(&mut self, name: &str, value: f64) -> Result<(), FactsError> {
        self.set(name, PointFact::good(value))
    }

    /// Sets a point by catalog index (the actors' point tables use the same order).
    pub fn set_index(&mut self, index: usize, fact: Option<PointFact>) {
        if let Some(slot) = self.values.get_mut(index) {
            *slot = fact;
        }
    }

    /// Mutable access to a point that is already known.
    pub fn get_mut(&mut self, name: &str) -> Result<Option<&mut PointFact>, FactsError> {
        let i = self.index(name)?;
        Ok(self.values.get_mut(i).and_then(Option::as_mut))
    }

    pub fn get(&self, name: &str) -> Option<&PointFact> {
        self.kind.point_index(name).and_then(|i| self.get_index(i))
    }

    pub fn get_index(&self, index: usize) -> Option<&PointFact> {
        self.values.get(index).and_then(Option::as_ref)
    }

    fn index(&self, name: &str) -> Result<usize, FactsError> {
        self.kind
            .point_index(name)
            .ok_or_else(|| FactsError::UnknownFact {
                kind: self.kind,
                name: name.to_owned(),
            })
    }
}

/// Operating state of a pump, as the pump actor derives it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PumpStatus {
    Running,
    Stopped,
    Tripped,
    #[default]
    Unknown,
}

impl PumpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PumpStatus::Running => "running",
            PumpStatus::Stopped => "stopped",
            PumpStatus::Tripped => "tripped",
            PumpStatus::Unknown => "unknown",
        }
    }

    /// The status the fault and run feedback imply (a fault outranks running; nothing is
    /// claimed from a point that is not usable).
    pub fn from_points(points: &PointFacts) -> Self {
        let flag = |n: &str| points.get(n).filter(|p| p.usable()).map(|p| p.value != 0.0);
        match (flag("fault"), flag("running")) {
            (Some(true), _) => PumpStatus::Tripped,
            (Some(false), Some(true)) => PumpStatus::Running,
            (Some(false), Some(false)) => PumpStatus::Stopped,
            _ => PumpStatus::Unknown,
        }
    }
}

/// A pump of the room.
#[derive(Clone, Debug, PartialEq)]
pub struct PumpFacts {
    /// `n` of `P<n>`.
    pub n: u8,
    pub points: PointFacts,
    pub status: PumpStatus,
}

/// A tank of the room.
#[derive(Clone, Debug, PartialEq)]
pub struct TankFacts {
    /// `n` of `T<n>`.
    pub n: u8,
    pub points: PointFacts,
    pub level_pct: Option<f64>,
    pub volume_m3: Option<f64>,
    pub autonomy_h: Option<f64>,
    pub level_rate_m_h: Option<f64>,
    pub days_since_cleaning: Option<f64>,
}

/// A camera of the room.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraFacts {
    /// `n` of `C<n>`.
    pub n: u8,
    pub points: PointFacts,
}

/// Everything the rules of one room may read.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomFacts {
    pub room: RoomId,
    /// Derived: the room's gateway is talking.
    pub online: bool,
    /// Derived: seconds since anything was received from the room.
    pub data_age_s: f64,
    /// Derived: outlet pressure set-point, MPa.
    pub setpoint_mpa: Option<f64>,
    pub points: PointFacts,
    pub pumps: Vec<PumpFacts>,
    pub tanks: Vec<TankFacts>,
    pub cameras: Vec<CameraFacts>,
    /// Derived, set by the analysis once a night: the last night's leak index, the room's
    /// baseline, and the recent nights' indices (oldest first; NaN = a night without data).
    pub leak_index: Option<f64>,
    pub leak_baseline: Option<f64>,
    /// The robust spread (1.4826 × MAD) of the nights behind the baseline.
    pub leak_spread: Option<f64>,
    pub leak_nights: Option<Vec<f64>>,
}

/// A borrowed device of a room.
#[derive(Clone, Copy, Debug)]
pub enum DeviceFacts<'a> {
    Room(&'a RoomFacts),
    Pump(&'a PumpFacts),
    Tank(&'a TankFacts),
    Camera(&'a CameraFacts),
}

impl DeviceFacts<'_> {
    pub fn unit(&self) -> DeviceUnit {
        match self {
            DeviceFacts::Room(_) => DeviceUnit::Room,
            DeviceFacts::Pump(p) => DeviceUnit::Pump(p.n),
            DeviceFacts::Tank(t) => DeviceUnit::Tank(t.n),
            DeviceFacts::Camera(c) => DeviceUnit::Camera(c.n),
        }
    }

    pub fn points(&self) -> &PointFacts {
        match self {
            DeviceFacts::Room(r) => &r.points,
            DeviceFacts::Pump(p) => &p.points,
            DeviceFacts::Tank(t) => &t.points,
            DeviceFacts::Camera(c) => &c.points,
        }
    }
}

impl RoomFacts {
    /// A room with the given numbers of pumps, tanks and cameras, every point unknown and the
    /// room offline.
    pub fn new(room: RoomId, pumps: u8, tanks: u8, cameras: u8) -> Self {
        Self {
            room,
            online: false,
            data_age_s: 0.0,
            setpoint_mpa: None,
            points: PointFacts::new(DeviceKind::Room),
            pumps: (1..=pumps)
                .map(|n| PumpFacts {
                    n,
                    points: PointFacts::new(DeviceKind::Pump),
                    status: PumpStatus::Unknown,
                })
                .collect(),
            tanks: (1..=tanks)
                .map(|n| TankFacts {
                    n,
                    points: PointFacts::new(DeviceKind::Tank),
                    level_pct: None,
                    volume_m3: None,
                    autonomy_h: None,
                    level_rate_m_h: None,
                    days_since_cleaning: None,
                })
                .collect(),
            cameras: (1..=cameras)
                .map(|n| CameraFacts {
                    n,
                    points: PointFacts::new(DeviceKind::Camera),
                })
                .collect(),
            leak_index: None,
            leak_baseline: None,
            leak_spread: None,
            leak_nights: None,
        }
    }

    /// A healthy room at nominal values: mains on at 380 V, outlet at its 0.45 MPa set-point,
    /// inlet 0.25 MPa, good water, tanks at 70 % and recently cleaned, pump 1 running at
    /// 38 Hz and the others on standby, cameras online and recording, door shut and disarmed.
    /// The golden cases and the bench start from it.
    pub fn nominal(room: RoomId, pumps: u8, tanks: u8, cameras: u8) -> Self {
        let mut f = Self::new(room, pumps, tanks, cameras);
        f.online = true;
        f.setpoint_mpa = Some(0.45);
        let room_values: &[(&str, f64)] = &[
            ("voltage_a", 380.0),
            ("voltage_b", 380.0),
            ("voltage_c", 380.0),
            ("current_a", 40.0),
            ("current_b", 40.0),
            ("current_c", 40.0),
            ("power_factor", 0.92),
            ("active_power", 24.0),
            ("energy", 120_000.0),
            ("reactive_energy", 30_000.0),
            ("mains", 1.0),
            ("inlet_pressure", 0.25),
            ("outlet_pressure", 0.45),
            ("outlet_setpoint", 0.45),
            ("outlet_flow", 60.0),
            ("outlet_volume", 500_000.0),
            ("inlet_flow", 55.0),
            ("inlet_volume", 480_000.0),
            ("turbidity", 0.3),
            ("chlorine", 0.6),
            ("ph", 7.2),
            ("temperature", 18.0),
            ("humidity", 60.0),
            ("flooding", 0.0),
            ("smoke", 0.0),
            ("door", 0.0),
            ("intrusion", 0.0),
            ("armed", 0.0),
            ("access", 0.0),
            ("siren", 0.0),
        ];
        for (name, v) in room_values {
            let _ = f.points.set_value(name, *v);
        }
        for p in &mut f.pumps {
            let duty = p.n == 1;
            let values: &[(&str, f64)] = &[
                ("running", if duty { 1.0 } else { 0.0 }),
                ("fault", 0.0),
                ("frequency", if duty { 38.0 } else { 0.0 }),
                ("current", if duty { 30.0 } else { 0.0 }),
                ("power", if duty { 15.0 } else { 0.0 }),
                ("run_hours", 10_000.0),
                ("starts", 2_000.0),
                ("duty", if duty { 1.0 } else { 0.0 }),
            ];
            for (name, v) in values {
                let _ = p.points.set_value(name, *v);
            }
            p.status = PumpStatus::from_points(&p.points);
        }
        for t in &mut f.tanks {
            let _ = t.points.set_value("level", 2.45);
            let _ = t.points.set_value("inlet_valve", 0.0);
            let _ = t.points.set_value("overflow", 0.0);
            let _ = t.points.set_value("low_low", 0.0);
            t.level_pct = Some(70.0);
            t.volume_m3 = Some(98.0);
            t.autonomy_h = Some(6.0);
            t.level_rate_m_h = Some(0.0);
            t.days_since_cleaning = Some(30.0);
        }
        for c in &mut f.cameras {
            let _ = c.points.set_value("online", 1.0);
            let _ = c.points.set_value("recording", 1.0);
            let _ = c.points.set_value("motion", 0.0);
        }
        f
    }

    /// The room itself or one of its devices.
    pub fn device(&self, unit: DeviceUnit) -> Option<DeviceFacts<'_>> {
        match unit {
            DeviceUnit::Room => Some(DeviceFacts::Room(self)),
            DeviceUnit::Pump(n) => self.pumps.iter().find(|p| p.n == n).map(DeviceFacts::Pump),
            DeviceUnit::Tank(n) => self.tanks.iter().find(|t| t.n == n).map(DeviceFacts::Tank),
            DeviceUnit::Camera(n) => self
                .cameras
                .iter()
                .find(|c| c.n == n)
                .map(DeviceFacts::Camera),
        }
    }

    /// The devices a rule of `kind` is evaluated for.
    pub fn devices_of(&self, kind: DeviceKind) -> Vec<DeviceFacts<'_>> {
        match kind {
            DeviceKind::Room => vec![DeviceFacts::Room(self)],
            DeviceKind::Pump => self.pumps.iter().map(DeviceFacts::Pump).collect(),
            DeviceKind::Tank => self.tanks.iter().map(DeviceFacts::Tank).collect(),
            DeviceKind::Camera => self.cameras.iter().map(DeviceFacts::Camera).collect(),
        }
    }

    /// The point table of a device.
    pub fn points_mut(&mut self, unit: DeviceUnit) -> Result<&mut PointFacts, FactsError> {
        let missing = || FactsError::UnknownDevice(unit);
        Ok(match unit {
            DeviceUnit::Room => &mut self.points,
            DeviceUnit::Pump(n) => {
                &mut self
                    .pumps
                    .iter_mut()
                    .find(|p| p.n == n)
                    .ok_or_else(missing)?
                    .points
            }
            DeviceUnit::Tank(n) => {
                &mut self
                    .tanks
                    .iter_mut()
                    .find(|t| t.n == n)
                    .ok_or_else(missing)?
                    .points
            }
            DeviceUnit::Camera(n) => {
                &mut self
                    .cameras
                    .iter_mut()
                    .find(|c| c.n == n)
                    .ok_or_else(missing)?
                    .points
            }
        })
    }

    /// Sets a fact by path: `outlet_pressure`, `P1.fault`, `T1.level_pct`, `room_online`.
    /// Points get a good quality; derived facts take the number (booleans as 0/1).
    pub fn set_path(&mut self, path: &str, value: f64) -> Result<(), FactsError> {
        let (unit, name) = split_path(path)?;
        let kind = unit.kind();
        if kind.point_index(name).is_some() {
            return self.points_mut(unit)?.set_value(name, value);
        }
        let unknown = || FactsError::UnknownFact {
            kind,
            name: name.to_owned(),
        };
        match (unit, name) {
            (DeviceUnit::Room, "room_online") => self.online = value != 0.0,
            (DeviceUnit::Room, "data_age_s") => self.data_age_s = value,
            (DeviceUnit::Room, "setpoint") => self.setpoint_mpa = Some(value),
            (DeviceUnit::Room, "leak_index") => self.leak_index = Some(value),
            (DeviceUnit::Room, "leak_baseline") => self.leak_baseline = Some(value),
            (DeviceUnit::Room, "leak_spread") => self.leak_spread = Some(value),
            (DeviceUnit::Tank(n), field) => {
                let t = self
                    .tanks
                    .iter_mut()
                    .find(|t| t.n == n)
                    .ok_or(FactsError::UnknownDevice(unit))?;
                let slot = match field {
                    "level_pct" => &mut t.level_pct,
                    "volume_m3" => &mut t.volume_m3,
                    "autonomy_h" => &mut t.autonomy_h,
                    "level_rate_m_h" => &mut t.level_rate_m_h,
                    "days_since_cleaning" => &mut t.days_since_cleaning,
                    _ => return Err(unknown()),
                };
                *slot = Some(value);
            }
            _ => return Err(unknown()),
        }
        Ok(())
    }

    /// Sets a series fact by path (`leak_nights`: the recent nights' leak indices, oldest
    /// first; NaN marks a night without data).
    pub fn set_series(&mut self, path: &str, values: Vec<f64>) -> Result<(), FactsError> {
        match split_path(path)? {
            (DeviceUnit::Room, "leak_nights") => {
                self.leak_nights = Some(values);
                Ok(())
            }
            (unit, name) => Err(FactsError::UnknownFact {
                kind: unit.kind(),
                name: name.to_owned(),
            }),
        }
    }

    /// Re-derives each pump's status from its fault and run points.
    pub fn derive_pump_status(&mut self) {
        for p in &mut self.pumps {
            p.status = PumpStatus::from_points(&p.points);
        }
    }
}

/// Splits `P1.fault` into its unit and name; a bare name is the room's.
pub fn split_path(path: &str) -> Result<(DeviceUnit, &str), FactsError> {
    match path.split_once('.') {
        None => Ok((DeviceUnit::Room, path)),
        Some((unit, name)) => {
            let unit = unit
                .parse::<DeviceUnit>()
                .map_err(|_| FactsError::BadPath(path.to_owned()))?;
            if name.is_empty() {
                return Err(FactsError::BadPath(path.to_owned()));
            }
            Ok((unit, name))
        }
    }
}

/// A derived fact (not a catalog point).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Derived {
    RoomOnline,
    DataAgeS,
    Setpoint,
    Pumps,
    Tanks,
    Cameras,
    Transmitters,
    PumpCount,
    PumpsTripped,
    PumpsRunning,
    Unit,
    PumpStatus,
    LevelPct,
    VolumeM3,
    AutonomyH,
    LevelRateMH,
    DaysSinceCleaning,
    LeakIndex,
    LeakBaseline,
    LeakSpread,
    LeakNights,
}

const ROOM_DERIVED: &[(&str, Derived)] = &[
    ("room_online", Derived::RoomOnline),
    ("data_age_s", Derived::DataAgeS),
    ("setpoint", Derived::Setpoint),
    ("pumps", Derived::Pumps),
    ("tanks", Derived::Tanks),
    ("cameras", Derived::Cameras),
    ("suspect_transmitters", Derived::Transmitters),
    ("pump_count", Derived::PumpCount),
    ("pumps_tripped", Derived::PumpsTripped),
    ("pumps_running", Derived::PumpsRunning),
    ("leak_index", Derived::LeakIndex),
    ("leak_baseline", Derived::LeakBaseline),
    ("leak_spread", Derived::LeakSpread),
    ("leak_nights", Derived::LeakNights),
];
const PUMP_DERIVED: &[(&str, Derived)] =
    &[("unit", Derived::Unit), ("status", Derived::PumpStatus)];
const TANK_DERIVED: &[(&str, Derived)] = &[
    ("unit", Derived::Unit),
    ("level_pct", Derived::LevelPct),
    ("volume_m3", Derived::VolumeM3),
    ("autonomy_h", Derived::AutonomyH),
    ("level_rate_m_h", Derived::LevelRateMH),
    ("days_since_cleaning", Derived::DaysSinceCleaning),
];
const CAMERA_DERIVED: &[(&str, Derived)] = &[("unit", Derived::Unit)];

pub(crate) fn derived_of(kind: DeviceKind) -> &'static [(&'static str, Derived)] {
    match kind {
        DeviceKind::Room => ROOM_DERIVED,
        DeviceKind::Pump => PUMP_DERIVED,
        DeviceKind::Tank => TANK_DERIVED,
        DeviceKind::Camera => CAMERA_DERIVED,
    }
}

/// Every fact name a device of `kind` offers (points, then derived facts).
pub fn fact_names(kind: DeviceKind) -> impl Iterator<Item = &'static str> {
    kind.points()
        .iter()
        .map(|p| p.name)
        .chain(derived_of(kind).iter().map(|(n, _)| *n))
}

/// A fact of one device kind: a catalog point (by index) or a derived fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FactRef {
    Point(usize),
    Derived(Derived),
}

impl FactRef {
    /// Looks a name up among the facts of `kind`; also returns its bit for [`Touched`].
    pub(crate) fn lookup(kind: DeviceKind, name: &str) -> Option<(FactRef, u64)> {
        if let Some(i) = kind.point_index(name) {
            return Some((FactRef::Point(i), bit(i)));
        }
        let base = kind.points().len();
        derived_of(kind)
            .iter()
            .position(|(n, _)| *n == name)
            .and_then(|j| {
                derived_of(kind)
                    .get(j)
                    .map(|(_, d)| (FactRef::Derived(*d), bit(base + j)))
            })
    }
}

fn bit(i: usize) -> u64 {
    if i < 64 {
        1u64 << i
    } else {
        u64::MAX
    }
}

/// Which facts changed since the last evaluation, so that only the rules reading them run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    all: bool,
    room: u64,
    devices: Vec<(DeviceUnit, u64)>,
}

impl Touched {
    /// Everything: evaluates every rule (start-up, periodic refresh of time-based facts).
    pub fn all() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }

    /// Nothing yet; add with [`Touched::fact`] or [`Touched::device`].
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.room == 0 && self.devices.iter().all(|(_, b)| *b == 0)
    }

    /// Marks one fact of one device as changed.
    pub fn fact(&mut self, unit: DeviceUnit, name: &str) -> Result<&mut Self, FactsError> {
        let (_, b) = FactRef::lookup(unit.kind(), name).ok_or_else(|| FactsError::UnknownFact {
            kind: unit.kind(),
            name: name.to_owned(),
        })?;
        self.add(unit, b);
        Ok(self)
    }

    /// Marks a fact by path (`P1.fault`, `outlet_pressure`).
    pub fn path(&mut self, path: &str) -> Result<&mut Self, FactsError> {
        let (unit, name) = split_path(path)?;
        self.fact(unit, name)
    }

    /// Marks every fact of a device as changed (it appeared, went offline, …).
    pub fn device(&mut self, unit: DeviceUnit) -> &mut Self {
        self.add(unit, u64::MAX);
        self
    }

    /// Marks points of a device as changed by catalog index (bit `i` = point `i`), as the
    /// actors' point tables report them.
    pub fn points(&mut self, unit: DeviceUnit, mask: u64) -> &mut Self {
        if mask != 0 {
            self.add(unit, mask);
        }
        self
    }

    fn add(&mut self, unit: DeviceUnit, b: u64) {
        if unit == DeviceUnit::Room {
            self.room |= b;
        } else if let Some(e) = self.devices.iter_mut().find(|(u, _)| *u == unit) {
            e.1 |= b;
        } else {
            self.devices.push((unit, b));
        }
    }

    pub(crate) fn room_bits(&self) -> u64 {
        if self.all {
            u64::MAX
        } else {
            self.room
        }
    }

    pub(crate) fn device_bits(&self, unit: DeviceUnit) -> u64 {
        if self.all {
            return u64::MAX;
        }
        if unit == DeviceUnit::Room {
            return self.room;
        }
        self.devices
            .iter()
            .find(|(u, _)| *u == unit)
            .map_or(0, |(_, b)| *b)
    }

    pub(crate) fn any_of_kind(&self, kind: DeviceKind) -> bool {
        self.all
            || self
                .devices
                .iter()
                .any(|(u, b)| u.kind() == kind && *b != 0)
    }
}

/// Whether a point reads as a boolean in scripts.
pub(crate) fn is_digital(kind: DeviceKind, index: usize) -> bool {
    kind.points()
        .get(index)
        .is_some_and(|p| p.kind == PointKind::Digital)
}

impl fmt::Display for PumpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fact_names_do_not_collide_across_a_room_and_its_devices() {
        // Device rules see the room's facts and their own under bare names.
        let room: Vec<_> = fact_names(DeviceKind::Room).collect();
        for kind in [DeviceKind::Pump, DeviceKind::Tank, DeviceKind::Camera] {
            for n in fact_names(kind) {
                assert!(!room.contains(&n), "{kind}.{n} shadows a room fact");
            }
            assert!(fact_names(kind).count() <= 64);
        }
        assert!(room.len() <= 64);
    }

    #[test]
    fn paths_set_points_and_derived_facts() {
        let mut f = RoomFacts::new(RoomId::new("XM-1").unwrap(), 2, 1, 1);
        f.set_path("P2.fault", 1.0).unwrap();
        f.set_path("T1.level_pct", 12.0).unwrap();
        f.set_path("room_online", 1.0).unwrap();
        f.derive_pump_status();
        assert_eq!(f.pumps[1].points.get("fault").unwrap().value, 1.0);
        assert_eq!(f.pumps[1].status, PumpStatus::Tripped);
        assert_eq!(f.tanks[0].level_pct, Some(12.0));
        assert!(f.online);
        assert!(f.set_path("P3.fault", 1.0).is_err());
        assert!(f.set_path("nonsense", 1.0).is_err());
        let mut t = Touched::none();
        t.path("P2.fault").unwrap();
        assert_ne!(t.device_bits(DeviceUnit::Pump(2)), 0);
        assert_eq!(t.device_bits(DeviceUnit::Pump(1)), 0);
        assert!(t.any_of_kind(DeviceKind::Pump));
        assert!(!t.any_of_kind(DeviceKind::Tank));
    }
}
