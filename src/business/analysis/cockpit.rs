//! The cockpit (驾驶舱, issue 22 item 6): the indicator catalogue, per-role boards users reorder
//! and subscribe to, drill-down fleet → zone → room → device, the wall screen and the daily and
//! monthly reports.
//!
//! Every indicator is an accumulation `(Σ value × weight, Σ weight)` (or a plain sum for
//! counts) of room-days or devices, so the figure of a zone is the same accumulation over its
//! rooms and the fleet's over its zones: a drill-down's rows always make up its total (energy
//! intensity is Σ kWh / Σ m³, not a mean of rooms' ratios). The ledger's indicators come from
//! each room-day's [`DayFigures`] ([`figure_value`]); the live ones (open orders, alarms,
//! crews, equipment health, the room score) from the services, by the API.
//!
//! **Boards.** A board is an ordered list of indicators: the tiles a user follows
//! ("subscribes to"), in the order they chose. Each role starts from a default board
//! ([`BoardKind::for_role`], DOMAIN.md §9: the director follows availability, water quality,
//! energy, leakage and SLA; the dispatcher open orders, crews and alarms; the engineer
//! equipment health and efficiency); a user's own board is kept per user on the records port
//! ([`UserBoard`]).

use super::day::DayFigures;
use crate::auth::Role;
use cistern_schemas::{DeviceUnit, RoomId, ZoneId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An indicator of the catalogue. The names are the API's and the console's
/// (`cockpit.ind.<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorId {
    Availability,
    QualityCompliance,
    EnergyIntensity,
    LeakIndex,
    PumpEfficiency,
    Completeness,
    AlarmLoad,
    ActiveAlarms,
    OrderSla,
    OpenOrders,
    CrewsOnDuty,
    EquipmentHealth,
    RoomScore,
}

/// How an indicator's figures combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Σ value × weight / Σ weight.
    Mean,
    /// Σ value (counts).
    Sum,
}

/// The deepest level an indicator drills to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Fleet,
    Zone,
    Room,
    Device,
}

/// An indicator's definition.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Indicator {
    pub id: IndicatorId,
    /// The unit shown after the value (`%` for shares, which are 0..1 on the wire).
    pub unit: &'static str,
    /// A share 0..1 shown as a percentage.
    pub percent: bool,
    pub decimals: u8,
    /// A rise is good (availability) or bad (energy intensity).
    pub higher_better: bool,
    pub combine: Combine,
    pub deepest: Level,
    /// Read from the daily ledger (else from the services' live state).
    pub ledger: bool,
}

#[allow(clippy::too_many_arguments)]
const fn ind(
    id: IndicatorId,
    unit: &'static str,
    percent: bool,
    decimals: u8,
    higher_better: bool,
    combine: Combine,
    deepest: Level,
    ledger: bool,
) -> Indicator {
    Indicator {
        id,
        unit,
        percent,
        decimals,
        higher_better,
        combine,
        deepest,
        ledger,
    }
}

use Combine::{Mean, Sum};
use IndicatorId as I;

/// The catalogue.
pub const CATALOGUE: &[Indicator] = &[
    ind(I::Availability, "%", true, 2, true, Mean, Level::Room, true),
    ind(
        I::QualityCompliance,
        "%",
        true,
        1,
        true,
        Mean,
        Level::Room,
        true,
    ),
    ind(
        I::EnergyIntensity,
        "kWh/m³",
        false,
        3,
        false,
        Mean,
        Level::Room,
        true,
    ),
    ind(I::LeakIndex, "%", true, 2, false, Mean, Level::Room, true),
    ind(
        I::PumpEfficiency,
        "%",
        true,
        1,
        true,
        Mean,
        Level::Device,
        true,
    ),
    ind(
        I::Completeness,
        "%",
        true,
        1,
        true,
        Mean,
        Level::Device,
        true,
    ),
    ind(
        I::AlarmLoad,
        "/room·day",
        false,
        2,
        false,
        Mean,
        Level::Room,
        false,
    ),
    ind(
        I::ActiveAlarms,
        "",
        false,
        0,
        false,
        Sum,
        Level::Room,
        false,
    ),
    ind(I::OrderSla, "%", true, 1, true, Mean, Level::Room, false),
    ind(I::OpenOrders, "", false, 0, false, Sum, Level::Room, false),
    ind(I::CrewsOnDuty, "", false, 0, true, Sum, Level::Zone, false),
    ind(
        I::EquipmentHealth,
        "%",
        true,
        1,
        true,
        Mean,
        Level::Device,
        false,
    ),
    ind(I::RoomScore, "", false, 1, true, Mean, Level::Room, false),
];

impl IndicatorId {
    /// The indicator's definition.
    pub fn spec(self) -> &'static Indicator {
        CATALOGUE
            .iter()
            .find(|i| i.id == self)
            .unwrap_or(&CATALOGUE[0])
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            I::Availability => "availability",
            I::QualityCompliance => "quality_compliance",
            I::EnergyIntensity => "energy_intensity",
            I::LeakIndex => "leak_index",
            I::PumpEfficiency => "pump_efficiency",
            I::Completeness => "completeness",
            I::AlarmLoad => "alarm_load",
            I::ActiveAlarms => "active_alarms",
            I::OrderSla => "order_sla",
            I::OpenOrders => "open_orders",
            I::CrewsOnDuty => "crews_on_duty",
            I::EquipmentHealth => "equipment_health",
            I::RoomScore => "room_score",
        }
    }

    /// The indicator of a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        CATALOGUE.iter().map(|i| i.id).find(|i| i.as_str() == s)
    }
}

/// An accumulated figure: `sum` = Σ value × weight (Σ value for counts), `weight` = Σ weight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Acc {
    pub sum: f64,
    pub weight: f64,
}

impl Acc {
    /// One value of weight `weight` (ignored when either is not finite or the weight ≤ 0).
    pub fn of(value: f64, weight: f64) -> Self {
        if value.is_finite() && weight.is_finite() && weight > 0.0 {
            Self {
                sum: value * weight,
                weight,
            }
        } else {
            Self::default()
        }
    }

    /// A count.
    pub fn count(n: f64) -> Self {
        Self::of(n, 1.0)
    }

    pub fn add(&mut self, other: Acc) {
        self.sum += other.sum;
        self.weight += other.weight;
    }

    /// The figure: the mean or the sum; `None` when nothing was accumulated.
    pub fn value(&self, combine: Combine) -> Option<f64> {
        if self.weight <= 0.0 {
            return None;
        }
        Some(match combine {
            Combine::Mean => self.sum / self.weight,
            Combine::Sum => self.sum,
        })
    }
}

/// A ledger indicator's part of one room-day (`None`: the day did not give it, or the
/// indicator is not a ledger one). Energy intensity is weighted by the day's m³, the others
/// by the day.
pub fn figure_value(id: IndicatorId, f: &DayFigures) -> Option<Acc> {
    let acc = match id {
        I::Availability => Acc::of(f.availability?, 1.0),
        I::QualityCompliance => Acc::of(f.quality_compliance?, 1.0),
        I::EnergyIntensity => {
            let (kwh, m3) = (f.kwh?, f.m3?);
            if m3 <= 0.0 || !kwh.is_finite() {
                return None;
            }
            Acc {
                sum: kwh,
                weight: m3,
            }
        }
        I::LeakIndex => Acc::of(f.leak_index?, 1.0),
        I::PumpEfficiency => Acc::of(f.pump_efficiency?, 1.0),
        I::Completeness => Acc::of(f.completeness?, 1.0),
        _ => return None,
    };
    (acc.weight > 0.0).then_some(acc)
}

/// One room's figures for the cockpit: room-level accumulations and per-device values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomFigures {
    pub values: BTreeMap<IndicatorId, Acc>,
    /// Per-device accumulations, for the indicators that drill to devices.
    pub devices: BTreeMap<IndicatorId, Vec<(DeviceUnit, Acc)>>,
}

impl RoomFigures {
    /// Adds a room-day of the ledger.
    pub fn add_day(&mut self, f: &DayFigures) {
        for i in CATALOGUE.iter().filter(|i| i.ledger) {
            if let Some(a) = figure_value(i.id, f) {
                self.values.entry(i.id).or_default().add(a);
            }
        }
    }

    /// Sets a room-level figure.
    pub fn set(&mut self, id: IndicatorId, acc: Acc) {
        if acc.weight > 0.0 {
            self.values.insert(id, acc);
        }
    }

    /// Adds a device's figure.
    pub fn add_device(&mut self, id: IndicatorId, unit: DeviceUnit, acc: Acc) {
        if acc.weight <= 0.0 {
            return;
        }
        let list = self.devices.entry(id).or_default();
        match list.iter_mut().find(|(u, _)| *u == unit) {
            Some((_, a)) => a.add(acc),
            None => list.push((unit, acc)),
        }
    }
}

/// A room of the fleet as the cockpit sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomEntry {
    pub room: RoomId,
    pub zone: ZoneId,
    pub name: String,
    pub figures: RoomFigures,
}

/// The fleet's figures over one period: what every tile and drill-down reads.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub rooms: Vec<RoomEntry>,
    /// Zone-level figures no room carries (crews on duty).
    pub zones: BTreeMap<(IndicatorId, ZoneId), Acc>,
    /// Fleet-level figures that are not the sum of the zones' (a team serving two zones).
    pub fleet: BTreeMap<IndicatorId, Acc>,
    /// Zone names by id.
    pub zone_names: BTreeMap<ZoneId, String>,
}

/// Where a figure or a drill-down is taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "snake_case")]
pub enum Scope {
    Fleet,
    Zone { zone: ZoneId },
    Room { room: RoomId },
    Device { room: RoomId, unit: DeviceUnit },
}

/// One row of a drill-down: a child of the scope and its figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrillRow {
    pub scope: Scope,
    /// Its id (zone id, room id, device unit) and its name.
    pub key: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// How many room-days, devices or judged items the figure is over.
    pub weight: f64,
    /// The child can be drilled further.
    pub drill: bool,
}

/// A drill-down: the scope's figure and its children's, worst first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Drill {
    pub indicator: IndicatorId,
    pub scope: Scope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub rows: Vec<DrillRow>,
}

/// Why a drill-down was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum CockpitError {
    #[error("unknown zone {0}")]
    UnknownZone(String),
    #[error("unknown room {0}")]
    UnknownRoom(String),
    #[error("indicator {0} has no figures below {1:?}")]
    TooDeep(&'static str, Level),
    #[error("board: {0}")]
    Board(String),
}

impl Snapshot {
    fn acc_of_room(&self, id: IndicatorId, r: &RoomEntry) -> Acc {
        if let Some(a) = r.figures.values.get(&id) {
            return *a;
        }
        // A device-level indicator without a room figure: its devices'.
        let mut acc = Acc::default();
        for (_, a) in r.figures.devices.get(&id).into_iter().flatten() {
            acc.add(*a);
        }
        acc
    }

    fn acc_of_zone(&self, id: IndicatorId, zone: &ZoneId) -> Acc {
        if let Some(a) = self.zones.get(&(id, zone.clone())) {
            return *a;
        }
        let mut acc = Acc::default();
        for r in self.rooms.iter().filter(|r| &r.zone == zone) {
            acc.add(self.acc_of_room(id, r));
        }
        acc
    }

    fn zone_ids(&self) -> Vec<ZoneId> {
        let mut z: Vec<ZoneId> = self.zone_names.keys().cloned().collect();
        for r in &self.rooms {
            if !z.contains(&r.zone) {
                z.push(r.zone.clone());
            }
        }
        z.sort();
        z
    }

    fn acc_of_fleet(&self, id: IndicatorId) -> Acc {
        if let Some(a) = self.fleet.get(&id) {
            return *a;
        }
        let mut acc = Acc::default();
        for z in self.zone_ids() {
            acc.add(self.acc_of_zone(id, &z));
        }
        acc
    }

    /// The figure of an indicator at a scope.
    pub fn value(&self, id: IndicatorId, scope: &Scope) -> Result<Option<f64>, CockpitError> {
        let c = id.spec().combine;
        Ok(match scope {
            Scope::Fleet => self.acc_of_fleet(id).value(c),
            Scope::Zone { zone } => self.acc_of_zone(id, zone).value(c),
            Scope::Room { room } => {
                let r = self.room(room)?;
                self.acc_of_room(id, r).value(c)
            }
            Scope::Device { room, unit } => {
                let r = self.room(room)?;
                r.figures
                    .devices
                    .get(&id)
                    .and_then(|d| d.iter().find(|(u, _)| u == unit))
                    .and_then(|(_, a)| a.value(c))
            }
        })
    }

    fn room(&self, room: &RoomId) -> Result<&RoomEntry, CockpitError> {
        self.rooms
            .iter()
            .find(|r| &r.room == room)
            .ok_or_else(|| CockpitError::UnknownRoom(room.to_string()))
    }

    /// The drill-down of an indicator one level below `scope`: zones of the fleet, rooms of
    /// a zone, devices of a room; rows worst first (by the indicator's direction), rows
    /// without a figure last.
    pub fn drill(&self, id: IndicatorId, scope: &Scope) -> Result<Drill, CockpitError> {
        let spec = id.spec();
        let c = spec.combine;
        let mut rows: Vec<DrillRow> = match scope {
            // Zones without a room (or a figure of their own) are no part of the fleet's figure.
            Scope::Fleet => self
                .zone_ids()
                .into_iter()
                .filter(|z| {
                    self.rooms.iter().any(|r| &r.zone == z)
                        || self.zones.contains_key(&(id, z.clone()))
                })
                .map(|z| {
                    let a = self.acc_of_zone(id, &z);
                    DrillRow {
                        key: z.to_string(),
                        name: self
                            .zone_names
                            .get(&z)
                            .cloned()
                            .unwrap_or_else(|| z.to_string()),
                        value: a.value(c),
                        weight: a.weight,
                        drill: spec.deepest > Level::Zone,
                        scope: Scope::Zone { zone: z },
                    }
                })
                .collect(),
            Scope::Zone { zone } => {
                if spec.deepest <= Level::Zone {
                    return Err(CockpitError::TooDeep(id.as_str(), spec.deepest));
                }
                if !self.zone_ids().contains(zone) {
                    return Err(CockpitError::UnknownZone(zone.to_string()));
                }
                self.rooms
                    .iter()
                    .filter(|r| &r.zone == zone)
                    .map(|r| {
                        let a = self.acc_of_room(id, r);
                        DrillRow {
                            key: r.room.to_string(),
                            name: r.name.clone(),
                            value: a.value(c),
                            weight: a.weight,
                            drill: spec.deepest > Level::Room,
                            scope: Scope::Room {
                                room: r.room.clone(),
                            },
                        }
                    })
                    .collect()
            }
            Scope::Room { room } => {
                if spec.deepest <= Level::Room {
                    return Err(CockpitError::TooDeep(id.as_str(), spec.deepest));
                }
                let r = self.room(room)?;
                r.figures
                    .devices
                    .get(&id)
                    .into_iter()
                    .flatten()
                    .map(|(unit, a)| DrillRow {
                        key: unit.to_string(),
                        name: unit.to_string(),
                        value: a.value(c),
                        weight: a.weight,
                        drill: false,
                        scope: Scope::Device {
                            room: room.clone(),
                            unit: *unit,
                        },
                    })
                    .collect()
            }
            Scope::Device { .. } => return Err(CockpitError::TooDeep(id.as_str(), Level::Device)),
        };
        rows.sort_by(|a, b| match (a.value, b.value) {
            (Some(x), Some(y)) => {
                let o = x.total_cmp(&y);
                (if spec.higher_better { o } else { o.reverse() }).then_with(|| a.key.cmp(&b.key))
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.key.cmp(&b.key),
        });
        Ok(Drill {
            indicator: id,
            scope: scope.clone(),
            value: self.value(id, scope)?,
            rows,
        })
    }
}

/// The default boards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardKind {
    Director,
    Dispatcher,
    Engineer,
}

impl BoardKind {
    pub const ALL: &'static [BoardKind] = &[
        BoardKind::Director,
        BoardKind::Dispatcher,
        BoardKind::Engineer,
    ];

    /// The default board of a role: viewers (managers, the wall) the director's, operators
    /// (the control room) the dispatcher's, rule authors and admins the engineer's.
    pub fn for_role(role: Role) -> Self {
        match role {
            Role::Viewer => BoardKind::Director,
            Role::Operator => BoardKind::Dispatcher,
            Role::RuleAuthor | Role::Admin => BoardKind::Engineer,
        }
    }

    /// The board's indicators, in order.
    pub fn tiles(self) -> Vec<IndicatorId> {
        match self {
            BoardKind::Director => vec![
                I::Availability,
                I::QualityCompliance,
                I::EnergyIntensity,
                I::LeakIndex,
                I::OrderSla,
                I::RoomScore,
                I::Completeness,
            ],
            BoardKind::Dispatcher => vec![
                I::OpenOrders,
                I::CrewsOnDuty,
                I::ActiveAlarms,
                I::AlarmLoad,
                I::OrderSla,
                I::Availability,
            ],
            BoardKind::Engineer => vec![
                I::EquipmentHealth,
                I::PumpEfficiency,
                I::EnergyIntensity,
                I::Completeness,
                I::AlarmLoad,
                I::RoomScore,
            ],
        }
    }
}

/// A user's board: the indicators they follow, in their order (kept per user on the records
/// port; without one, the role's default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBoard {
    /// The default it started from.
    pub kind: BoardKind,
    pub tiles: Vec<IndicatorId>,
}

impl UserBoard {
    /// The default board of `kind`.
    pub fn default_of(kind: BoardKind) -> Self {
        Self {
            kind,
            tiles: kind.tiles(),
        }
    }

    /// Checks a board a user sent: at least one tile, none twice.
    pub fn validate(&self) -> Result<(), CockpitError> {
        if self.tiles.is_empty() {
            return Err(CockpitError::Board("no tile".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.tiles {
            if !seen.insert(*t) {
                return Err(CockpitError::Board(format!("{} twice", t.as_str())));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> RoomId {
        RoomId::new(s).unwrap()
    }
    fn zone(s: &str) -> ZoneId {
        ZoneId::new(s).unwrap()
    }

    fn snapshot() -> Snapshot {
        let mut rooms = Vec::new();
        for (id, z, kwh, m3, avail) in [
            ("A", "z1", 100.0, 400.0, 1.0),
            ("B", "z1", 300.0, 600.0, 0.9),
            ("C", "z2", 50.0, 100.0, 0.95),
        ] {
            let mut f = RoomFigures::default();
            for _ in 0..2 {
                f.add_day(&DayFigures {
                    kwh: Some(kwh),
                    m3: Some(m3),
                    availability: Some(avail),
                    completeness: Some(0.9),
                    ..DayFigures::default()
                });
            }
            f.add_device(I::Completeness, DeviceUnit::Room, Acc::of(1.0, 30.0));
            f.add_device(I::Completeness, DeviceUnit::Pump(1), Acc::of(0.5, 10.0));
            f.set(I::OpenOrders, Acc::count(2.0));
            rooms.push(RoomEntry {
                room: room(id),
                zone: zone(z),
                name: format!("room {id}"),
                figures: f,
            });
        }
        let mut s = Snapshot {
            rooms,
            ..Snapshot::default()
        };
        s.zones
            .insert((I::CrewsOnDuty, zone("z1")), Acc::count(3.0));
        s.zones
            .insert((I::CrewsOnDuty, zone("z2")), Acc::count(1.0));
        // A zone of the inventory without a room.
        s.zone_names.insert(zone("z3"), "empty".into());
        s
    }

    #[test]
    fn the_catalogue_names_every_indicator_once_and_round_trips() {
        for i in CATALOGUE {
            assert_eq!(IndicatorId::parse(i.id.as_str()), Some(i.id));
            assert_eq!(i.id.spec().id, i.id);
            let json = serde_json::to_string(&i.id).unwrap();
            assert_eq!(json, format!("\"{}\"", i.id.as_str()));
        }
        assert_eq!(IndicatorId::parse("nope"), None);
    }

    #[test]
    fn energy_intensity_is_total_kwh_over_total_m3_at_every_level() {
        let s = snapshot();
        let fleet = s.value(I::EnergyIntensity, &Scope::Fleet).unwrap().unwrap();
        assert!((fleet - 900.0 / 2200.0).abs() < 1e-12, "{fleet}");
        let d = s.drill(I::EnergyIntensity, &Scope::Fleet).unwrap();
        // Lower is better: the worst (highest) zone first.
        assert_eq!(d.rows[0].key, "z2");
        assert!((d.rows[0].value.unwrap() - 0.5).abs() < 1e-12);
        assert!((d.rows[1].value.unwrap() - 800.0 / 2000.0).abs() < 1e-12);
        let z = s
            .drill(I::EnergyIntensity, &Scope::Zone { zone: zone("z1") })
            .unwrap();
        assert_eq!(z.rows.len(), 2);
        assert_eq!(z.rows[0].key, "B");
        assert!(!z.rows[0].drill);
        // The rows make up the total.
        let (sum, w): (f64, f64) = z.rows.iter().fold((0.0, 0.0), |(s, w), r| {
            (s + r.value.unwrap() * r.weight, w + r.weight)
        });
        assert!((sum / w - z.value.unwrap()).abs() < 1e-12);
    }

    #[test]
    fn drill_down_goes_from_the_fleet_to_a_pump() {
        let s = snapshot();
        let fleet = s.drill(I::Completeness, &Scope::Fleet).unwrap();
        assert!(fleet.rows.iter().all(|r| r.drill));
        assert_eq!(fleet.rows.len(), 2, "the zone without a room is left out");
        let zone_scope = fleet
            .rows
            .iter()
            .find(|r| r.key == "z1")
            .unwrap()
            .scope
            .clone();
        let rooms = s.drill(I::Completeness, &zone_scope).unwrap();
        assert!(rooms.rows[0].drill);
        let devices = s.drill(I::Completeness, &rooms.rows[0].scope).unwrap();
        // Worst first: the pump at 50 %.
        assert_eq!(devices.rows[0].key, "P1");
        assert_eq!(devices.rows[0].value, Some(0.5));
        assert_eq!(
            s.value(I::Completeness, &devices.rows[0].scope).unwrap(),
            Some(0.5)
        );
        assert!(matches!(
            s.drill(I::Completeness, &devices.rows[0].scope),
            Err(CockpitError::TooDeep(..))
        ));
    }

    #[test]
    fn counts_add_up_and_zone_only_indicators_stop_at_the_zone() {
        let s = snapshot();
        assert_eq!(s.value(I::OpenOrders, &Scope::Fleet).unwrap(), Some(6.0));
        assert_eq!(s.value(I::CrewsOnDuty, &Scope::Fleet).unwrap(), Some(4.0));
        let d = s.drill(I::CrewsOnDuty, &Scope::Fleet).unwrap();
        assert!(d.rows.iter().all(|r| !r.drill));
        assert!(matches!(
            s.drill(I::CrewsOnDuty, &Scope::Zone { zone: zone("z1") }),
            Err(CockpitError::TooDeep(..))
        ));
        assert!(matches!(
            s.drill(I::OpenOrders, &Scope::Zone { zone: zone("nope") }),
            Err(CockpitError::UnknownZone(_))
        ));
        // No figure anywhere: None, never NaN.
        assert_eq!(s.value(I::LeakIndex, &Scope::Fleet).unwrap(), None);
    }

    #[test]
    fn bad_figures_are_left_out_not_spread_as_nan() {
        let mut f = RoomFigures::default();
        f.add_day(&DayFigures {
            kwh: Some(f64::NAN),
            m3: Some(10.0),
            availability: Some(f64::INFINITY),
            ..DayFigures::default()
        });
        f.add_day(&DayFigures {
            kwh: Some(5.0),
            m3: Some(0.0),
            ..DayFigures::default()
        });
        assert!(f.values.is_empty(), "{:?}", f.values);
    }

    #[test]
    fn each_role_starts_from_its_board_and_a_board_is_checked() {
        assert_eq!(BoardKind::for_role(Role::Viewer), BoardKind::Director);
        assert_eq!(BoardKind::for_role(Role::Operator), BoardKind::Dispatcher);
        assert_eq!(BoardKind::for_role(Role::Admin), BoardKind::Engineer);
        for k in BoardKind::ALL {
            UserBoard::default_of(*k).validate().unwrap();
        }
        let twice = UserBoard {
            kind: BoardKind::Director,
            tiles: vec![I::Availability, I::Availability],
        };
        assert!(twice.validate().is_err());
        let empty = UserBoard {
            kind: BoardKind::Director,
            tiles: vec![],
        };
        assert!(empty.validate().is_err());
    }
}
