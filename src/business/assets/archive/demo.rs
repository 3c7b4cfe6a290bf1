//! The demo fleet's archive: a realistic, deterministic archive generated from its inventory,
//! so that the console, the import and export and the lifecycle have something to show. Each
//! room gets a project (compounds of one to five neighbouring rooms of a zone), and per pump a
//! pump set (pump with its H-Q and η-Q curves consistent with the inventory's ratings, motor,
//! VFD), a control cabinet, its tanks, a water-quality analyser, flow and energy meters,
//! pressure transducers, its cameras and access control, from the vendors such rooms are built
//! with, serials, part numbers, dates over the last twelve years and the suppliers' contacts.
//! Everything follows from a hash of the room's id: the same inventory gives the same archive.

use super::model::{Contact, Equipment, EquipmentKind, Nameplate, Project, RoomArchive};
use cistern_schemas::inventory::{Inventory, PumpSpec, RoomSpec};
use cistern_schemas::{Date, DeviceUnit, EquipmentTag, ProjectId};

/// FNV-1a of `text` and `salt`.
fn hash(text: &str, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h ^ (h >> 29)
}

fn pick<T: Copy>(items: &[T], h: u64) -> T {
    items[(h % items.len() as u64) as usize]
}

/// A vendor: name, the code its serials start with, its model line, and its service line.
#[derive(Clone, Copy)]
struct Vendor {
    name: &'static str,
    code: &'static str,
    model: &'static str,
    service: &'static str,
    phone: &'static str,
}

const fn v(
    name: &'static str,
    code: &'static str,
    model: &'static str,
    service: &'static str,
    phone: &'static str,
) -> Vendor {
    Vendor {
        name,
        code,
        model,
        service,
        phone,
    }
}

const PUMPS: &[Vendor] = &[
    v(
        "格兰富 Grundfos",
        "GF",
        "CR",
        "格兰富水泵(上海)有限公司厦门服务站",
        "0592-5110",
    ),
    v("南方泵业", "NF", "CDL", "南方泵业厦门办事处", "0592-5320"),
    v(
        "威乐 Wilo",
        "WL",
        "MVI",
        "威乐(中国)水泵系统有限公司福建分公司",
        "0591-8765",
    ),
    v("凯泉", "KQ", "KQDP", "上海凯泉泵业厦门分公司", "0592-5581"),
    v("连成", "LC", "SLG", "上海连成集团厦门销售公司", "0592-5902"),
];
const MOTORS: &[Vendor] = &[
    v("ABB", "AB", "M3BP", "ABB(中国)厦门服务中心", "0592-2956"),
    v(
        "西门子 Siemens",
        "SI",
        "1LE0",
        "西门子电机厦门授权服务商",
        "0592-2688",
    ),
    v("卧龙", "WO", "YE3", "卧龙电驱厦门办事处", "0592-5733"),
];
const VFDS: &[Vendor] = &[
    v(
        "汇川 Inovance",
        "IN",
        "MD520",
        "汇川技术厦门服务中心",
        "0592-5196",
    ),
    v("ABB", "AB", "ACS580", "ABB(中国)厦门服务中心", "0592-2956"),
    v(
        "丹佛斯 Danfoss",
        "DF",
        "FC-102",
        "丹佛斯传动厦门服务商",
        "0592-5368",
    ),
    v(
        "施耐德 Schneider",
        "SE",
        "ATV630",
        "施耐德电气厦门办事处",
        "0592-2387",
    ),
];
const CABINETS: &[Vendor] = &[
    v("正泰 CHINT", "CH", "GGD", "正泰电气厦门分公司", "0592-5627"),
    v(
        "施耐德 Schneider",
        "SE",
        "Prisma",
        "施耐德电气厦门办事处",
        "0592-2387",
    ),
    v("良信", "LX", "NDK", "良信电器厦门办事处", "0592-5841"),
];
const TANKS: &[Vendor] = &[
    v("蓝恒", "LH", "SUS444", "蓝恒水箱厦门工程部", "0592-6033"),
    v(
        "华兴",
        "HX",
        "SUS304",
        "华兴不锈钢水箱福建公司",
        "0591-8312",
    ),
];
const ANALYSERS: &[Vendor] = &[
    v(
        "哈希 Hach",
        "HA",
        "CL17sc",
        "哈希水质分析仪器(上海)厦门服务站",
        "0592-5061",
    ),
    v(
        "恩德斯豪斯 E+H",
        "EH",
        "Liquiline CM442",
        "恩德斯豪斯(中国)厦门办事处",
        "0592-2217",
    ),
];
const FLOW_METERS: &[Vendor] = &[
    v(
        "西门子 Siemens",
        "SI",
        "MAG 5000",
        "西门子过程仪表厦门服务商",
        "0592-2688",
    ),
    v(
        "恩德斯豪斯 E+H",
        "EH",
        "Promag W 400",
        "恩德斯豪斯(中国)厦门办事处",
        "0592-2217",
    ),
];
const ENERGY_METERS: &[Vendor] = &[
    v(
        "安科瑞 Acrel",
        "AC",
        "ADL400",
        "安科瑞电气厦门办事处",
        "0592-5546",
    ),
    v(
        "正泰 CHINT",
        "CH",
        "DTSU666",
        "正泰电气厦门分公司",
        "0592-5627",
    ),
];
const TRANSDUCERS: &[Vendor] = &[
    v(
        "西门子 Siemens",
        "SI",
        "SITRANS P200",
        "西门子过程仪表厦门服务商",
        "0592-2688",
    ),
    v(
        "恩德斯豪斯 E+H",
        "EH",
        "Cerabar PMC21",
        "恩德斯豪斯(中国)厦门办事处",
        "0592-2217",
    ),
    v(
        "麦克传感",
        "MC",
        "MPM489",
        "麦克传感器厦门代理",
        "0592-5677",
    ),
];
const CAMERAS: &[Vendor] = &[
    v(
        "海康威视 Hikvision",
        "HK",
        "DS-2CD3T46",
        "海康威视厦门分公司",
        "0592-5902",
    ),
    v(
        "大华 Dahua",
        "DH",
        "DH-IPC-HFW4433",
        "大华股份厦门分公司",
        "0592-5189",
    ),
];
const ACCESS: &[Vendor] = &[
    v(
        "海康威视 Hikvision",
        "HK",
        "DS-K1T671",
        "海康威视厦门分公司",
        "0592-5902",
    ),
    v(
        "大华 Dahua",
        "DH",
        "DHI-ASI7213",
        "大华股份厦门分公司",
        "0592-5189",
    ),
];

const DEVELOPERS: &[&str] = &[
    "建发房产",
    "国贸地产",
    "联发集团",
    "万科",
    "保利发展",
    "中海地产",
    "世茂",
    "融侨集团",
];
const MANAGERS: &[&str] = &[
    "建发物业",
    "国贸物业",
    "联发物业",
    "万科物业",
    "保利物业",
    "中海物业",
    "象屿物业",
];
const ENGINEERS: &[&str] = &[
    "王工", "陈工", "林工", "黄工", "张工", "李工", "吴工", "郑工",
];

/// The day all demo dates count back from.
fn reference_day() -> Date {
    Date::ymd(2026, 6, 30).unwrap_or(Date::from_days(20_634))
}

/// Standard motor and drive sizes, kW.
const SIZES: &[f64] = &[
    0.75, 1.1, 1.5, 2.2, 3.0, 4.0, 5.5, 7.5, 11.0, 15.0, 18.5, 22.0, 30.0, 37.0, 45.0, 55.0, 75.0,
    90.0, 110.0,
];

fn size_at_least(kw: f64) -> f64 {
    SIZES
        .iter()
        .copied()
        .find(|s| *s >= kw)
        .unwrap_or(kw.ceil())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The pump's H-Q and η-Q curves: a parabola through the shut-off head and the rated point,
/// the efficiency peaking at the rated flow.
fn curves(p: &PumpSpec) -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
    let mut hq = Vec::new();
    let mut eta = Vec::new();
    for k in 0..=6 {
        let x = f64::from(k) * 0.25;
        let q = round1(p.rated_flow_m3h * x);
        let h = p.shutoff_head_m - (p.shutoff_head_m - p.rated_head_m) * x * x;
        hq.push([q, round1(h.max(0.0))]);
        let e = p.bep_efficiency * (2.0 * x - x * x);
        eta.push([q, (e.max(0.0) * 1000.0).round() / 1000.0]);
    }
    (hq, eta)
}

/// What the generator carries from room to room.
struct Gen {
    serial: u64,
}

impl Gen {
    fn serial(&mut self, vendor: &Vendor, year: i32) -> String {
        self.serial += 1;
        // 7919 is prime to 10⁷: distinct serials below 10⁷ map to distinct numbers.
        format!(
            "{}{:02}{:07}",
            vendor.code,
            year.rem_euclid(100),
            self.serial * 7919 % 10_000_000
        )
    }
}

/// One equipment of `room`: vendor picked by the hash of the room and tag.
#[allow(clippy::too_many_arguments)]
fn equipment(
    g: &mut Gen,
    room: &RoomSpec,
    commissioned: Date,
    tag: &str,
    kind: EquipmentKind,
    vendors: &[Vendor],
    model_suffix: &str,
    nameplate: Nameplate,
) -> Equipment {
    let h = hash(room.id.as_str(), hash(tag, 7));
    let vendor = pick(vendors, h);
    // One in five was replaced or added since: installed later than the room.
    let installed = if h.is_multiple_of(5) {
        let days = (reference_day().days() - commissioned.days()).max(30);
        commissioned.plus_days((h >> 8) as i32 % days)
    } else {
        commissioned.plus_days(-(((h >> 16) % 20) as i32))
    };
    let started = installed.plus_days(3 + ((h >> 24) % 25) as i32);
    let warranty_years = pick(&[2, 3, 3, 5], h >> 32);
    let (year, _, _) = installed.parts();
    let tag = EquipmentTag::new(tag).unwrap_or_else(|_| EquipmentTag::from(DeviceUnit::Pump(1)));
    Equipment {
        tag: tag.clone(),
        kind,
        device: None,
        set: None,
        name: String::new(),
        vendor: vendor.name.to_owned(),
        model: if model_suffix.is_empty() {
            vendor.model.to_owned()
        } else {
            format!("{} {model_suffix}", vendor.model)
        },
        serial: g.serial(&vendor, year),
        part_number: format!(
            "{}-{}{}",
            vendor.code,
            vendor.model.replace([' ', '-'], ""),
            model_suffix.replace([' ', '-', '.'], "")
        ),
        installed: Some(installed),
        commissioned: Some(started),
        warranty_end: Some(started.plus_days(365 * warranty_years)),
        nameplate,
        supplier: Some(Contact {
            name: pick(ENGINEERS, h >> 40).to_owned(),
            company: vendor.service.to_owned(),
            phone: format!("{}{:03}", vendor.phone, (h >> 44) % 1000),
            email: String::new(),
        }),
        documents: Vec::new(),
        notes: String::new(),
    }
}

fn room_archive(g: &mut Gen, room: &RoomSpec, project: &ProjectId) -> RoomArchive {
    let h = hash(room.id.as_str(), 1);
    let commissioned = reference_day().plus_days(-(90 + (h % (12 * 365 - 90)) as i32));
    let mut a = RoomArchive::from_spec(room);
    a.project = Some(project.clone());
    a.commissioned = Some(commissioned);
    let mut out = Vec::new();
    let live = |a: &RoomArchive, unit: DeviceUnit| {
        a.equipment.iter().find(|e| e.device == Some(unit)).cloned()
    };
    for (i, p) in room.pumps.iter().enumerate() {
        let unit = DeviceUnit::Pump(i as u8 + 1);
        let tag = unit.to_string();
        let (hq, eta) = curves(p);
        let mut pump = equipment(
            g,
            room,
            commissioned,
            &tag,
            EquipmentKind::Pump,
            PUMPS,
            &format!(
                "{:.0}-{}",
                p.rated_flow_m3h,
                (p.rated_head_m / 12.0).ceil().max(1.0)
            ),
            Nameplate {
                rated_speed_rpm: Some(2900.0),
                curve_hq: hq,
                curve_eta_q: eta,
                ..live(&a, unit).map(|e| e.nameplate).unwrap_or_default()
            },
        );
        pump.device = Some(unit);
        let kw = size_at_least(p.rated_power_kw);
        let mut motor = equipment(
            g,
            room,
            commissioned,
            &format!("{tag}-M"),
            EquipmentKind::Motor,
            MOTORS,
            &format!("{kw}kW-2P"),
            Nameplate {
                rated_power_kw: Some(kw),
                rated_speed_rpm: Some(2930.0),
                efficiency: Some(if kw < 7.5 { 0.88 } else { 0.92 }),
                ..Nameplate::default()
            },
        );
        motor.set = Some(pump.tag.clone());
        let mut vfd = equipment(
            g,
            room,
            commissioned,
            &format!("{tag}-VFD"),
            EquipmentKind::Vfd,
            VFDS,
            &format!("{kw}kW"),
            Nameplate {
                rated_power_kw: Some(kw),
                ..Nameplate::default()
            },
        );
        vfd.set = Some(pump.tag.clone());
        out.extend([pump, motor, vfd]);
    }
    let total_kw: f64 = room
        .pumps
        .iter()
        .map(|p| size_at_least(p.rated_power_kw))
        .sum();
    out.push(equipment(
        g,
        room,
        commissioned,
        "CAB1",
        EquipmentKind::Cabinet,
        CABINETS,
        "",
        Nameplate {
            rated_power_kw: Some(total_kw),
            ..Nameplate::default()
        },
    ));
    for (i, _) in room.tanks.iter().enumerate() {
        let unit = DeviceUnit::Tank(i as u8 + 1);
        let mut t = equipment(
            g,
            room,
            commissioned,
            &unit.to_string(),
            EquipmentKind::Tank,
            TANKS,
            "",
            live(&a, unit).map(|e| e.nameplate).unwrap_or_default(),
        );
        t.device = Some(unit);
        out.push(t);
    }
    let flow: f64 = room.pumps.iter().map(|p| p.rated_flow_m3h).sum();
    for (tag, kind, vendors, suffix, nameplate) in [
        (
            "WQ1",
            EquipmentKind::Analyser,
            ANALYSERS,
            "",
            Nameplate::default(),
        ),
        (
            "FM1",
            EquipmentKind::Meter,
            FLOW_METERS,
            if flow > 60.0 { "DN100" } else { "DN80" },
            Nameplate {
                rated_flow_m3h: Some(round1(flow)),
                ..Nameplate::default()
            },
        ),
        (
            "EM1",
            EquipmentKind::Meter,
            ENERGY_METERS,
            "",
            Nameplate::default(),
        ),
        (
            "PT1",
            EquipmentKind::Transducer,
            TRANSDUCERS,
            "0-1.6MPa",
            Nameplate::default(),
        ),
    ] {
        out.push(equipment(
            g,
            room,
            commissioned,
            tag,
            kind,
            vendors,
            suffix,
            nameplate,
        ));
    }
    for (i, c) in room.cameras.iter().enumerate() {
        let unit = DeviceUnit::Camera(i as u8 + 1);
        let mut cam = equipment(
            g,
            room,
            commissioned,
            &unit.to_string(),
            EquipmentKind::Camera,
            CAMERAS,
            "",
            Nameplate::default(),
        );
        cam.device = Some(unit);
        cam.name = c.name.clone();
        out.push(cam);
    }
    out.push(equipment(
        g,
        room,
        commissioned,
        "AC1",
        EquipmentKind::AccessControl,
        ACCESS,
        "",
        Nameplate::default(),
    ));
    a.equipment = out;
    a
}

/// The compound a room belongs to: its name without the phase and the pump room.
fn compound_name(room: &RoomSpec) -> String {
    let mut name = room.name.trim_end_matches("泵房").to_owned();
    for phase in ["二期", "三期", "四期"] {
        if let Some(stripped) = name.strip_suffix(phase) {
            name = stripped.to_owned();
        }
    }
    name
}

/// The demo fleet's projects and rooms' archives (see the module doc).
pub fn demo_archive(inventory: &Inventory) -> (Vec<Project>, Vec<RoomArchive>) {
    let mut g = Gen { serial: 0 };
    let mut projects: Vec<Project> = Vec::new();
    let mut rooms = Vec::with_capacity(inventory.rooms.len());
    // Rooms of a zone in inventory order, cut into compounds of 1 to 5 (3 on average).
    let mut order: Vec<&RoomSpec> = inventory.rooms.iter().collect();
    order.sort_by(|a, b| a.zone.cmp(&b.zone).then_with(|| a.id.cmp(&b.id)));
    let mut left = 0usize;
    let mut current: Option<ProjectId> = None;
    let mut zone = None;
    for room in order {
        if left == 0 || zone.as_ref() != Some(&room.zone) {
            let h = hash(room.id.as_str(), 3);
            left = 1 + (h % 5) as usize;
            zone = Some(room.zone.clone());
            let Ok(id) = ProjectId::new(&format!("XM-P{:04}", projects.len() + 1)) else {
                continue;
            };
            projects.push(Project {
                id: id.clone(),
                name: format!("{}项目", compound_name(room)),
                address: room.address.clone(),
                developer: pick(DEVELOPERS, h >> 8).to_owned(),
                property_manager: pick(MANAGERS, h >> 16).to_owned(),
                households: Some(0),
                contacts: vec![Contact {
                    name: pick(ENGINEERS, h >> 24).to_owned(),
                    company: pick(MANAGERS, h >> 16).to_owned(),
                    phone: format!("138{:08}", (h >> 28) % 100_000_000),
                    email: String::new(),
                }],
            });
            current = Some(id);
        }
        left -= 1;
        if let (Some(p), Some(id)) = (projects.last_mut(), &current) {
            p.households = Some(p.households.unwrap_or(0) + room.households);
            rooms.push(room_archive(&mut g, room, id));
        }
    }
    rooms.sort_by(|a, b| a.site.id.cmp(&b.site.id));
    (projects, rooms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::assets::archive::Known;
    use std::collections::HashSet;

    #[test]
    fn the_demo_archive_is_valid_deterministic_and_runs_the_inventory() {
        let inv = crate::lab::sim::generate_fleet(60, 7);
        let (projects, rooms) = demo_archive(&inv);
        assert_eq!(demo_archive(&inv), (projects.clone(), rooms.clone()));
        assert!((12..=40).contains(&projects.len()), "{}", projects.len());
        let zones: HashSet<_> = inv.zones.iter().map(|z| z.id.clone()).collect();
        let known: HashSet<_> = projects.iter().map(|p| p.id.clone()).collect();
        let mut serials = HashSet::new();
        let mut equipment = 0;
        for (r, spec) in rooms.iter().zip(&inv.rooms) {
            let problems = r.validate(Known {
                zones: &zones,
                projects: &known,
            });
            assert!(problems.is_empty(), "{}: {problems:?}", r.site.id);
            assert_eq!(
                &r.spec(),
                spec,
                "the archive runs the room the inventory described"
            );
            for e in &r.equipment {
                assert!(
                    serials.insert((e.vendor.clone(), e.serial.clone())),
                    "{}",
                    e.serial
                );
            }
            equipment += r.equipment.len();
        }
        let per_room = equipment as f64 / rooms.len() as f64;
        assert!((12.0..=20.0).contains(&per_room), "{per_room}");
    }
}
