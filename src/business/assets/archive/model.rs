//! The archive's records (档案): projects, and each room's site data and equipment.
//!
//! One source of truth with the live fleet: a room's archive holds its site data (where it is,
//! how its data arrive, its set-point) and its equipment; the running room's [`RoomSpec`] is
//! *derived* from it by [`RoomArchive::spec`] — a pump's ratings are its pump equipment's
//! nameplate, a tank's geometry its tank equipment's, a camera its camera equipment — so a pump
//! replaced in the archive is the pump the room runs with. The site inventory file remains a way
//! to seed the archive ([`RoomArchive::from_spec`]).
//!
//! Validation returns every problem at once, each naming the field it is about and a stable
//! code (`asset.<code>` in the catalogues), so the spreadsheet import can report sheet, row and
//! column in the user's language.

use cistern_schemas::inventory::{
    CameraSpec, PointOverride, PumpSpec, RoomSpec, SourceSpec, TankSpec,
};
use cistern_schemas::{Date, DeviceUnit, EquipmentTag, ProjectId, RoomId, Timestamp, ZoneId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// A person or company to call about a project or an equipment (a supplier's service line).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub company: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phone: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
}

impl Contact {
    pub fn is_empty(&self) -> bool {
        self.name.is_empty()
            && self.company.is_empty()
            && self.phone.is_empty()
            && self.email.is_empty()
    }
}

/// A project or compound (小区): the rooms built together for one development.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    #[serde(default)]
    pub address: String,
    /// The developer (开发商) or owner.
    #[serde(default)]
    pub developer: String,
    /// The property manager (物业).
    #[serde(default)]
    pub property_manager: String,
    /// Households of the compound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub households: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
}

/// What an equipment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EquipmentKind {
    Pump,
    Motor,
    Vfd,
    /// An electrical control cabinet (控制柜).
    Cabinet,
    Tank,
    /// A water-quality analyser (turbidity, chlorine, pH).
    Analyser,
    /// A flow or energy meter.
    Meter,
    /// A pressure transducer.
    Transducer,
    /// A valve (inlet, control, check).
    Valve,
    Camera,
    /// Access control (门禁).
    AccessControl,
}

impl EquipmentKind {
    pub const ALL: [EquipmentKind; 11] = [
        EquipmentKind::Pump,
        EquipmentKind::Motor,
        EquipmentKind::Vfd,
        EquipmentKind::Cabinet,
        EquipmentKind::Tank,
        EquipmentKind::Analyser,
        EquipmentKind::Meter,
        EquipmentKind::Transducer,
        EquipmentKind::Valve,
        EquipmentKind::Camera,
        EquipmentKind::AccessControl,
    ];

    /// The name in files and URLs (`access_control`).
    pub fn as_str(self) -> &'static str {
        match self {
            EquipmentKind::Pump => "pump",
            EquipmentKind::Motor => "motor",
            EquipmentKind::Vfd => "vfd",
            EquipmentKind::Cabinet => "cabinet",
            EquipmentKind::Tank => "tank",
            EquipmentKind::Analyser => "analyser",
            EquipmentKind::Meter => "meter",
            EquipmentKind::Transducer => "transducer",
            EquipmentKind::Valve => "valve",
            EquipmentKind::Camera => "camera",
            EquipmentKind::AccessControl => "access_control",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of live device an equipment of this kind can be, if any.
    pub fn device_prefix(self) -> Option<char> {
        match self {
            EquipmentKind::Pump => Some('P'),
            EquipmentKind::Tank => Some('T'),
            EquipmentKind::Camera => Some('C'),
            _ => None,
        }
    }
}

/// The ratings on an equipment's plate; which apply depends on its kind (a pump has flow,
/// head, speed and curves; a motor power and speed; a tank its geometry).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nameplate {
    /// Rated (BEP) flow, m³/h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rated_flow_m3h: Option<f64>,
    /// Rated head at the rated flow, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rated_head_m: Option<f64>,
    /// Shut-off head at rated speed, m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutoff_head_m: Option<f64>,
    /// Rated power, kW.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rated_power_kw: Option<f64>,
    /// Rated speed, rpm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rated_speed_rpm: Option<f64>,
    /// Efficiency at the rated point, 0..1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<f64>,
    /// The pump's H-Q curve at rated speed: (flow m³/h, head m), flow increasing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve_hq: Vec<[f64; 2]>,
    /// The pump's η-Q curve: (flow m³/h, efficiency 0..1), flow increasing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve_eta_q: Vec<[f64; 2]>,
    /// A tank's geometry and float valve (its live tank's spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tank: Option<TankSpec>,
}

/// A document or photo of an equipment or room (a manual, a drawing, a certificate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// The attachment's id in the records store.
    pub id: String,
    /// The file's name as uploaded.
    pub name: String,
    /// `manual`, `drawing`, `certificate`, `photo`, `other`.
    pub kind: String,
    pub content_type: String,
    pub bytes: u64,
    pub added_at: Timestamp,
    pub added_by: String,
}

/// An equipment of a room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Equipment {
    pub tag: EquipmentTag,
    pub kind: EquipmentKind,
    /// The live device it is: pump equipment `P<n>`, tank `T<n>`, camera `C<n>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceUnit>,
    /// The pump set a motor or VFD belongs to (the pump's tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<EquipmentTag>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub serial: String,
    /// The spare part number it is ordered by.
    #[serde(default)]
    pub part_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commissioned: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warranty_end: Option<Date>,
    #[serde(default)]
    pub nameplate: Nameplate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<Contact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// An equipment taken out of service, kept with the room's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retired {
    pub equipment: Equipment,
    pub at: Timestamp,
    pub by: String,
    /// `replaced` or `removed`.
    pub reason: String,
}

/// A room's site data: everything of its [`RoomSpec`] that is not equipment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub id: RoomId,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_pinyin: String,
    #[serde(default)]
    pub address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address_pinyin: String,
    pub lat: f64,
    pub lon: f64,
    pub zone: ZoneId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    pub households: u32,
    pub outlet_setpoint_mpa: f64,
    #[serde(default)]
    pub source: SourceSpec,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub points: BTreeMap<String, PointOverride>,
}

/// A pump room's archive: its site, project, dates and equipment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomArchive {
    pub site: Site,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commissioned: Option<Date>,
    /// The equipment in service, pumps first in device order.
    pub equipment: Vec<Equipment>,
    /// The room's documents and photos (not an equipment's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
    /// Equipment taken out of service, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retired>,
}

/// One thing wrong with an archive entry: the field it is about (a spreadsheet column's key,
/// `equipment[3].serial` inside a room), a stable code and the offending value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub field: String,
    /// `asset.<code>` in the catalogues: `required`, `range`, `duplicate`, `unknown_zone`,
    /// `unknown_project`, `device`, `set`, `curve`, `date_order`, `pump_count`, `tank_levels`.
    pub code: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, code: &str, value: impl std::fmt::Display) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            value: value.to_string(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.code)?;
        if !self.value.is_empty() {
            write!(f, " ({})", self.value)?;
        }
        Ok(())
    }
}

/// What a room's archive is checked against: the zones of the fleet and the projects known.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub zones: &'a HashSet<ZoneId>,
    pub projects: &'a HashSet<ProjectId>,
}

impl Project {
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.name.trim().is_empty() {
            out.push(Problem::new("name", "required", ""));
        }
        out
    }
}

impl RoomArchive {
    /// The archive a room of the site inventory seeds: its site data, and one equipment per
    /// pump, tank and camera carrying the inventory's ratings (no vendor, serial or dates).
    pub fn from_spec(spec: &RoomSpec) -> Self {
        let mut equipment = Vec::new();
        for (i, p) in spec.pumps.iter().enumerate() {
            equipment.push(Equipment::live(
                DeviceUnit::Pump(i as u8 + 1),
                EquipmentKind::Pump,
                Nameplate {
                    rated_flow_m3h: Some(p.rated_flow_m3h),
                    rated_head_m: Some(p.rated_head_m),
                    shutoff_head_m: Some(p.shutoff_head_m),
                    rated_power_kw: Some(p.rated_power_kw),
                    efficiency: Some(p.bep_efficiency),
                    ..Nameplate::default()
                },
                String::new(),
            ));
        }
        for (i, t) in spec.tanks.iter().enumerate() {
            equipment.push(Equipment::live(
                DeviceUnit::Tank(i as u8 + 1),
                EquipmentKind::Tank,
                Nameplate {
                    tank: Some(t.clone()),
                    ..Nameplate::default()
                },
                String::new(),
            ));
        }
        for (i, c) in spec.cameras.iter().enumerate() {
            equipment.push(Equipment::live(
                DeviceUnit::Camera(i as u8 + 1),
                EquipmentKind::Camera,
                Nameplate::default(),
                c.name.clone(),
            ));
        }
        Self {
            site: Site {
                id: spec.id.clone(),
                name: spec.name.clone(),
                name_pinyin: spec.name_pinyin.clone(),
                address: spec.address.clone(),
                address_pinyin: spec.address_pinyin.clone(),
                lat: spec.lat,
                lon: spec.lon,
                zone: spec.zone.clone(),
                carrier: spec.carrier.clone(),
                households: spec.households,
                outlet_setpoint_mpa: spec.outlet_setpoint_mpa,
                source: spec.source.clone(),
                points: spec.points.clone(),
            },
            project: None,
            commissioned: None,
            equipment,
            documents: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// The live room this archive describes (see the module doc). Call [`Self::validate`]
    /// first: an equipment missing a rating the live room needs is left out here.
    pub fn spec(&self) -> RoomSpec {
        let mut pumps: Vec<(u8, PumpSpec)> = Vec::new();
        let mut tanks: Vec<(u8, TankSpec)> = Vec::new();
        let mut cameras: Vec<(u8, CameraSpec)> = Vec::new();
        for e in &self.equipment {
            match e.device {
                Some(DeviceUnit::Pump(n)) => {
                    if let Some(p) = e.pump_spec() {
                        pumps.push((n, p));
                    }
                }
                Some(DeviceUnit::Tank(n)) => {
                    if let Some(t) = &e.nameplate.tank {
                        tanks.push((n, t.clone()));
                    }
                }
                Some(DeviceUnit::Camera(n)) => cameras.push((
                    n,
                    CameraSpec {
                        name: if e.name.is_empty() {
                            format!("C{n}")
                        } else {
                            e.name.clone()
                        },
                    },
                )),
                _ => {}
            }
        }
        pumps.sort_by_key(|(n, _)| *n);
        tanks.sort_by_key(|(n, _)| *n);
        cameras.sort_by_key(|(n, _)| *n);
        let s = &self.site;
        RoomSpec {
            id: s.id.clone(),
            name: s.name.clone(),
            name_pinyin: s.name_pinyin.clone(),
            address: s.address.clone(),
            address_pinyin: s.address_pinyin.clone(),
            lat: s.lat,
            lon: s.lon,
            zone: s.zone.clone(),
            carrier: s.carrier.clone(),
            households: s.households,
            outlet_setpoint_mpa: s.outlet_setpoint_mpa,
            pumps: pumps.into_iter().map(|(_, p)| p).collect(),
            tanks: tanks.into_iter().map(|(_, t)| t).collect(),
            cameras: cameras.into_iter().map(|(_, c)| c).collect(),
            source: s.source.clone(),
            points: s.points.clone(),
        }
    }

    /// The equipment tagged `tag`.
    pub fn equipment(&self, tag: &EquipmentTag) -> Option<&Equipment> {
        self.equipment.iter().find(|e| &e.tag == tag)
    }

    /// Every problem of this room's archive (none: it can be saved and run).
    pub fn validate(&self, known: Known<'_>) -> Vec<Problem> {
        let mut out = Vec::new();
        let s = &self.site;
        if s.name.trim().is_empty() {
            out.push(Problem::new("name", "required", ""));
        }
        if !(-90.0..=90.0).contains(&s.lat) || !s.lat.is_finite() {
            out.push(Problem::new("lat", "range", s.lat));
        }
        if !(-180.0..=180.0).contains(&s.lon) || !s.lon.is_finite() {
            out.push(Problem::new("lon", "range", s.lon));
        }
        if !known.zones.contains(&s.zone) {
            out.push(Problem::new("zone", "unknown_zone", &s.zone));
        }
        if let Some(p) = &self.project {
            if !known.projects.contains(p) {
                out.push(Problem::new("project", "unknown_project", p));
            }
        }
        if !(0.1..=1.6).contains(&s.outlet_setpoint_mpa) {
            out.push(Problem::new(
                "outlet_setpoint_mpa",
                "range",
                s.outlet_setpoint_mpa,
            ));
        }
        let mut tags = HashSet::new();
        let mut devices = HashSet::new();
        let pump_tags: HashSet<&EquipmentTag> = (self.equipment.iter())
            .filter(|e| e.kind == EquipmentKind::Pump)
            .map(|e| &e.tag)
            .collect();
        for (i, e) in self.equipment.iter().enumerate() {
            let at = |field: &str| format!("equipment[{i}].{field}");
            if !tags.insert(&e.tag) {
                out.push(Problem::new(at("tag"), "duplicate", &e.tag));
            }
            out.extend(e.validate().into_iter().map(|mut p| {
                p.field = at(&p.field);
                p
            }));
            if let Some(d) = e.device {
                if !devices.insert(d) {
                    out.push(Problem::new(at("device"), "duplicate", d));
                }
            }
            if let Some(set) = &e.set {
                if !pump_tags.contains(set) {
                    out.push(Problem::new(at("set"), "set", set));
                }
            }
        }
        let count = |prefix: char| {
            (devices.iter())
                .filter(|d| d.to_string().starts_with(prefix))
                .count()
        };
        let (pumps, tanks, cameras) = (count('P'), count('T'), count('C'));
        if pumps == 0 || pumps > 9 {
            out.push(Problem::new("equipment", "pump_count", pumps));
        }
        if tanks > 9 || cameras > 9 {
            out.push(Problem::new(
                "equipment",
                "device_count",
                tanks.max(cameras),
            ));
        }
        // Devices must be numbered 1..=n without gaps: the live room numbers them so.
        for (prefix, n) in [('P', pumps), ('T', tanks), ('C', cameras)] {
            for k in 1..=n {
                if !devices
                    .iter()
                    .any(|d| d.to_string() == format!("{prefix}{k}"))
                {
                    out.push(Problem::new(
                        "equipment",
                        "device_gap",
                        format!("{prefix}{k}"),
                    ));
                }
            }
        }
        if out.is_empty() {
            // What the live room checks besides (point overrides against its devices).
            if let Err(e) = self.spec().validate() {
                out.push(Problem::new("points", "site", e));
            }
        }
        out
    }
}

impl Equipment {
    /// An equipment that is a live device, tagged by it (`P1`).
    pub fn live(
        device: DeviceUnit,
        kind: EquipmentKind,
        nameplate: Nameplate,
        name: String,
    ) -> Self {
        Self {
            tag: EquipmentTag::from(device),
            kind,
            device: Some(device),
            set: None,
            name,
            vendor: String::new(),
            model: String::new(),
            serial: String::new(),
            part_number: String::new(),
            installed: None,
            commissioned: None,
            warranty_end: None,
            nameplate,
            supplier: None,
            documents: Vec::new(),
            notes: String::new(),
        }
    }

    /// The live pump's spec from this pump's nameplate, when it has every rating needed.
    pub fn pump_spec(&self) -> Option<PumpSpec> {
        let n = &self.nameplate;
        Some(PumpSpec {
            rated_flow_m3h: n.rated_flow_m3h?,
            rated_head_m: n.rated_head_m?,
            shutoff_head_m: n.shutoff_head_m?,
            rated_power_kw: n.rated_power_kw?,
            bep_efficiency: n.efficiency?,
        })
    }

    /// This equipment's own problems (field names relative to it).
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let n = &self.nameplate;
        let positive = |out: &mut Vec<Problem>, field: &str, v: Option<f64>| {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    out.push(Problem::new(field, "range", v));
                }
            }
        };
        positive(&mut out, "rated_flow_m3h", n.rated_flow_m3h);
        positive(&mut out, "rated_head_m", n.rated_head_m);
        positive(&mut out, "shutoff_head_m", n.shutoff_head_m);
        positive(&mut out, "rated_power_kw", n.rated_power_kw);
        positive(&mut out, "rated_speed_rpm", n.rated_speed_rpm);
        if let Some(e) = n.efficiency {
            if !(0.05..=0.95).contains(&e) {
                out.push(Problem::new("efficiency", "range", e));
            }
        }
        match (self.kind.device_prefix(), self.device) {
            (_, None) => {}
            (Some(prefix), Some(d)) if d.to_string().starts_with(prefix) => {}
            (_, Some(d)) => out.push(Problem::new("device", "device", d)),
        }
        if self.kind == EquipmentKind::Pump && self.device.is_some() {
            for (field, v) in [
                ("rated_flow_m3h", n.rated_flow_m3h),
                ("rated_head_m", n.rated_head_m),
                ("shutoff_head_m", n.shutoff_head_m),
                ("rated_power_kw", n.rated_power_kw),
                ("efficiency", n.efficiency),
            ] {
                if v.is_none() {
                    out.push(Problem::new(field, "required", ""));
                }
            }
            if let (Some(h), Some(s)) = (n.rated_head_m, n.shutoff_head_m) {
                if s <= h {
                    out.push(Problem::new("shutoff_head_m", "shutoff", s));
                }
            }
        }
        if self.kind == EquipmentKind::Tank && self.device.is_some() {
            match &n.tank {
                None => out.push(Problem::new("area_m2", "required", "")),
                Some(t) => {
                    let ok = t.area_m2 > 0.0
                        && 0.0 <= t.hard_min_m
                        && t.hard_min_m < t.refill_on_m
                        && t.fire_reserve_m < t.refill_on_m
                        && t.refill_on_m < t.refill_off_m
                        && t.refill_off_m <= t.overflow_m
                        && t.overflow_m <= t.height_m
                        && t.inlet_capacity_m3h > 0.0;
                    if !ok {
                        out.push(Problem::new("height_m", "tank_levels", ""));
                    }
                }
            }
        }
        for (field, curve, hi) in [
            ("curve_hq", &n.curve_hq, f64::INFINITY),
            ("curve_eta_q", &n.curve_eta_q, 1.0),
        ] {
            let ok = curve
                .iter()
                .all(|[q, y]| q.is_finite() && *q >= 0.0 && y.is_finite() && *y >= 0.0 && *y <= hi)
                && curve.windows(2).all(|w| w[0][0] < w[1][0]);
            if !ok {
                out.push(Problem::new(field, "curve", ""));
            }
        }
        if let (Some(a), Some(b)) = (self.installed, self.warranty_end) {
            if b < a {
                out.push(Problem::new("warranty_end", "date_order", b));
            }
        }
        if let (Some(a), Some(b)) = (self.installed, self.commissioned) {
            if b < a {
                out.push(Problem::new("commissioned", "date_order", b));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cistern_schemas::inventory::Inventory;

    fn inventory() -> Inventory {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/ops/inventory.example.toml"
        ))
        .unwrap();
        Inventory::from_toml(&text, "example").unwrap()
    }

    fn known(inv: &Inventory) -> (HashSet<ZoneId>, HashSet<ProjectId>) {
        (
            inv.zones.iter().map(|z| z.id.clone()).collect(),
            HashSet::new(),
        )
    }

    #[test]
    fn a_seeded_archive_runs_the_room_the_inventory_described() {
        let inv = inventory();
        let (zones, projects) = known(&inv);
        for spec in &inv.rooms {
            let archive = RoomArchive::from_spec(spec);
            let problems = archive.validate(Known {
                zones: &zones,
                projects: &projects,
            });
            assert!(problems.is_empty(), "{}: {problems:?}", spec.id);
            assert_eq!(&archive.spec(), spec);
            let json = serde_json::to_string(&archive).unwrap();
            assert_eq!(serde_json::from_str::<RoomArchive>(&json).unwrap(), archive);
        }
    }

    #[test]
    fn a_replaced_pump_is_the_pump_the_room_runs_with() {
        let inv = inventory();
        let mut archive = RoomArchive::from_spec(&inv.rooms[0]);
        let p1 = archive
            .equipment
            .iter_mut()
            .find(|e| e.device == Some(DeviceUnit::Pump(1)))
            .unwrap();
        p1.nameplate.rated_power_kw = Some(15.0);
        p1.serial = "SN-NEW".into();
        assert_eq!(archive.spec().pumps[0].rated_power_kw, 15.0);
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let inv = inventory();
        let (zones, projects) = known(&inv);
        let mut archive = RoomArchive::from_spec(&inv.rooms[0]);
        archive.site.zone = ZoneId::new("atlantis").unwrap();
        archive.site.lat = 123.0;
        archive.project = Some(ProjectId::new("P-X").unwrap());
        let dup = archive.equipment[0].clone();
        archive.equipment.push(dup);
        archive.equipment[1].nameplate.efficiency = Some(1.5);
        archive.equipment[1].nameplate.curve_hq = vec![[10.0, 50.0], [5.0, 55.0]];
        let mut vfd = Equipment::live(
            DeviceUnit::Pump(1),
            EquipmentKind::Vfd,
            Nameplate::default(),
            String::new(),
        );
        vfd.tag = EquipmentTag::new("P9-VFD").unwrap();
        vfd.device = None;
        vfd.set = Some(EquipmentTag::new("P9").unwrap());
        archive.equipment.push(vfd);
        let got: Vec<(String, String)> = archive
            .validate(Known {
                zones: &zones,
                projects: &projects,
            })
            .into_iter()
            .map(|p| (p.field, p.code))
            .collect();
        let n = archive.equipment.len();
        for want in [
            ("lat", "range"),
            ("zone", "unknown_zone"),
            ("project", "unknown_project"),
            (&*format!("equipment[{}].tag", n - 2), "duplicate"),
            (&*format!("equipment[{}].device", n - 2), "duplicate"),
            ("equipment[1].efficiency", "range"),
            ("equipment[1].curve_hq", "curve"),
            (&*format!("equipment[{}].set", n - 1), "set"),
        ] {
            assert!(
                got.iter().any(|(f, c)| f == want.0 && c == want.1),
                "{want:?} missing from {got:?}"
            );
        }
    }
}
