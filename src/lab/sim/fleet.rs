//! A generated fleet of Xiamen pump rooms for the demo, the simulator and the benchmarks.
//!
//! Rooms are spread over Xiamen's six districts in proportion to their population, with
//! compound names and street addresses in Chinese (金山花园三期泵房, 厦门市海沧区海沧大道128号)
//! and in pinyin beside them (`name_pinyin`, `address_pinyin`: Jinshan Huayuan Phase 3). Equipment is sized the way a design
//! institute would size it, from design values (3.2 persons per household, 180 L/person/day,
//! hourly peak factor 2.1, max-day factor 1.1) rather than from the simulator's actual demand:
//! that is why real boosters run well below their rated flow most of the day, and why staging
//! happens only at the peaks of rooms with three or four pumps.
//!
//! Room `i` is drawn from its own random stream, so a fleet of N rooms is the first N rooms of
//! any larger fleet with the same seed.

use super::geography;
use super::noise::{normal, room_rng, Stream};
use super::pump_curve::METRES_PER_MPA;
use cistern_schemas::inventory::{
    CameraSpec, Inventory, PumpSpec, RoomSpec, SourceSpec, TankSpec, ZoneSpec,
};
use cistern_schemas::{RoomId, ZoneId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// A district of Xiamen: its bounding box and a few of its main roads.
struct District {
    id: &'static str,
    /// Its name as operators read it (思明区) and in pinyin (Siming).
    name: &'static str,
    pinyin: &'static str,
    lat: (f64, f64),
    lon: (f64, f64),
    /// Share of the city's pump rooms (roughly its share of the population).
    weight: f64,
    /// (Chinese, pinyin) of each road.
    roads: &'static [(&'static str, &'static str)],
}

const DISTRICTS: &[District] = &[
    District {
        id: "siming",
        name: "思明区",
        pinyin: "Siming",
        lat: (24.43, 24.50),
        lon: (118.07, 118.20),
        weight: 0.23,
        roads: &[
            ("湖滨南路", "Hubin Nanlu"),
            ("莲前西路", "Lianqian Xilu"),
            ("厦禾路", "Xiahe Lu"),
            ("思明南路", "Siming Nanlu"),
            ("中山路", "Zhongshan Lu"),
            ("莲岳路", "Lianyue Lu"),
            ("湖滨东路", "Hubin Donglu"),
            ("环岛南路", "Huandao Nanlu"),
            ("筼筜路", "Yundang Lu"),
            ("镇海路", "Zhenhai Lu"),
        ],
    },
    District {
        id: "huli",
        name: "湖里区",
        pinyin: "Huli",
        lat: (24.49, 24.56),
        lon: (118.07, 118.20),
        weight: 0.22,
        roads: &[
            ("嘉禾路", "Jiahe Lu"),
            ("仙岳路", "Xianyue Lu"),
            ("金尚路", "Jinshang Lu"),
            ("高崎南路", "Gaoqi Nanlu"),
            ("兴隆路", "Xinglong Lu"),
            ("成功大道", "Chenggong Dadao"),
            ("江头北路", "Jiangtou Beilu"),
            ("殿前路", "Dianqian Lu"),
            ("湖里大道", "Huli Dadao"),
            ("瑞景路", "Ruijing Lu"),
        ],
    },
    District {
        id: "jimei",
        name: "集美区",
        pinyin: "Jimei",
        lat: (24.57, 24.68),
        lon: (117.98, 118.12),
        weight: 0.17,
        roads: &[
            ("集美大道", "Jimei Dadao"),
            ("银江路", "Yinjiang Lu"),
            ("杏林湾路", "Xinglin Wan Lu"),
            ("嘉庚路", "Jiageng Lu"),
            ("乐园路", "Leyuan Lu"),
            ("后溪路", "Houxi Lu"),
            ("杉江路", "Shanjiang Lu"),
            ("兴泰路", "Xingtai Lu"),
        ],
    },
    District {
        id: "haicang",
        name: "海沧区",
        pinyin: "Haicang",
        lat: (24.44, 24.55),
        lon: (117.92, 118.05),
        weight: 0.12,
        roads: &[
            ("海沧大道", "Haicang Dadao"),
            ("新阳路", "Xinyang Lu"),
            ("南海三路", "Nanhai Sanlu"),
            ("海景路", "Haijing Lu"),
            ("翁角路", "Wengjiao Lu"),
            ("沧海路", "Canghai Lu"),
            ("角嵩路", "Jiaosong Lu"),
        ],
    },
    District {
        id: "tongan",
        name: "同安区",
        pinyin: "Tong'an",
        lat: (24.68, 24.75),
        lon: (118.05, 118.22),
        weight: 0.14,
        roads: &[
            ("同集路", "Tongji Lu"),
            ("环东路", "Huandong Lu"),
            ("同翔路", "Tongxiang Lu"),
            ("西林路", "Xilin Lu"),
            ("城南路", "Chengnan Lu"),
            ("同安大道", "Tong'an Dadao"),
            ("五峰路", "Wufeng Lu"),
        ],
    },
    District {
        id: "xiangan",
        name: "翔安区",
        pinyin: "Xiang'an",
        lat: (24.55, 24.70),
        lon: (118.22, 118.35),
        weight: 0.12,
        roads: &[
            ("翔安南路", "Xiang'an Nanlu"),
            ("翔安北路", "Xiang'an Beilu"),
            ("新昌路", "Xinchang Lu"),
            ("马巷大道", "Maxiang Dadao"),
            ("民安大道", "Minan Dadao"),
            ("大嶝路", "Dadeng Lu"),
        ],
    },
];

/// (Chinese, pinyin) of the first half of a compound's name, and of the second below.
const NAME_PREFIXES: &[(&str, &str)] = &[
    ("金山", "Jinshan"),
    ("莲花", "Lianhua"),
    ("瑞景", "Ruijing"),
    ("海岳", "Haiyue"),
    ("远洋", "Yuanyang"),
    ("杏林", "Xinglin"),
    ("嘉禾", "Jiahe"),
    ("华夏", "Huaxia"),
    ("滨海", "Binhai"),
    ("莲前", "Lianqian"),
    ("天湖", "Tianhu"),
    ("观音", "Guanyin"),
    ("万科", "Wanke"),
    ("中山", "Zhongshan"),
    ("香树", "Xiangshu"),
    ("白城", "Baicheng"),
    ("筼筜", "Yundang"),
    ("五缘", "Wuyuan"),
    ("蔡塘", "Caitang"),
    ("厦滨", "Xiabin"),
    ("双十", "Shuangshi"),
    ("府前", "Fuqian"),
    ("岭兜", "Lingdou"),
    ("龙山", "Longshan"),
    ("梅林", "Meilin"),
    ("东海", "Donghai"),
    ("前埔", "Qianpu"),
    ("高林", "Gaolin"),
    ("金湖", "Jinhu"),
    ("同集", "Tongji"),
    ("兴隆", "Xinglong"),
    ("江头", "Jiangtou"),
    ("石码", "Shima"),
    ("天安", "Tian'an"),
    ("后溪", "Houxi"),
    ("芦厝", "Lucuo"),
    ("长乐", "Changle"),
    ("明发", "Mingfa"),
    ("绿苑", "Lvyuan"),
    ("海天", "Haitian"),
];

const NAME_SUFFIXES: &[(&str, &str)] = &[
    ("花园", "Huayuan"),
    ("家园", "Jiayuan"),
    ("小区", "Xiaoqu"),
    ("名苑", "Mingyuan"),
    ("豪庭", "Haoting"),
    ("雅苑", "Yayuan"),
    ("新村", "Xincun"),
    ("公寓", "Gongyu"),
    ("华庭", "Huating"),
    ("世家", "Shijia"),
    ("丽景", "Lijing"),
    ("馨苑", "Xinyuan"),
];

const CAMERA_NAMES: &[&str] = &["入口", "水泵间", "水箱间"];

/// IEC standard motor ratings, kW.
const MOTOR_SIZES_KW: &[f64] = &[
    1.5, 2.2, 3.0, 4.0, 5.5, 7.5, 11.0, 15.0, 18.5, 22.0, 30.0, 37.0, 45.0, 55.0, 75.0, 90.0, 110.0,
];

/// Design basis of the equipment sizing (see the module doc).
const DESIGN_PERSONS: f64 = 3.2;
const DESIGN_LITRES_PER_PERSON_DAY: f64 = 180.0;
const DESIGN_PEAK_FACTOR: f64 = 2.1;
const DESIGN_MAX_DAY_FACTOR: f64 = 1.1;
/// Tanks are sized on the expected demand (2.85 persons, 150 L/person/day) on a max day.
const TANK_BASIS_M3_PER_HOUSEHOLD_DAY: f64 = 2.85 * 0.150 * 1.2;
const TANK_HEIGHT_M: f64 = 3.5;

/// `x` rounded to `decimals` places (dividing by a power of ten keeps 0.41 exactly 0.41).
fn round_dp(x: f64, decimals: i32) -> f64 {
    let scale = 10_f64.powi(decimals);
    (x * scale).round() / scale
}

fn pick<'a, T>(items: &'a [T], rng: &mut ChaCha8Rng) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A fleet of `rooms` pump rooms, deterministic for `seed`.
pub fn generate_fleet(rooms: usize, seed: u64) -> Inventory {
    let zones = DISTRICTS
        .iter()
        .filter_map(|d| {
            Some(ZoneSpec {
                id: ZoneId::new(d.id).ok()?,
                name: d.name.to_owned(),
                name_pinyin: format!("{} District", d.pinyin),
            })
        })
        .collect();
    let rooms = (0..rooms).filter_map(|i| generate_room(i, seed)).collect();
    Inventory { zones, rooms }
}

/// (lat, lon) if it is on the district's land, else a point drawn from the room's position
/// stream until one is (the draw as it was after 200 misses, which the map never gives).
fn on_land(district: &District, index: usize, seed: u64, lat: f64, lon: f64) -> (f64, f64) {
    if geography::on_land(district.name, lon, lat) != Some(false) {
        return (lat, lon);
    }
    let mut rng = room_rng(seed, Stream::Position, index);
    for _ in 0..200 {
        let la = round_dp(rng.random_range(district.lat.0..district.lat.1), 6);
        let lo = round_dp(rng.random_range(district.lon.0..district.lon.1), 6);
        if geography::on_land(district.name, lo, la) == Some(true) {
            return (la, lo);
        }
    }
    (lat, lon)
}

fn generate_room(index: usize, seed: u64) -> Option<RoomSpec> {
    let mut rng = room_rng(seed, Stream::Fleet, index);
    let district = pick_district(&mut rng);
    let id = RoomId::new(&format!("XM-{:04}", index + 1)).ok()?;
    let zone = ZoneId::new(district.id).ok()?;
    let lat = round_dp(rng.random_range(district.lat.0..district.lat.1), 6);
    let lon = round_dp(rng.random_range(district.lon.0..district.lon.1), 6);
    let (lat, lon) = on_land(district, index, seed, lat, lon);
    // The draws are those of the pinyin-only generator, so a seed gives the same rooms.
    let (prefix, prefix_pinyin) = pick(NAME_PREFIXES, &mut rng);
    let (suffix, suffix_pinyin) = pick(NAME_SUFFIXES, &mut rng);
    let mut name = format!("{prefix}{suffix}");
    let mut name_pinyin = format!("{prefix_pinyin} {suffix_pinyin}");
    if rng.random_bool(0.3) {
        let phase = rng.random_range(2..=4);
        name.push_str(["二", "三", "四"][phase - 2]);
        name.push('期');
        name_pinyin.push_str(&format!(" Phase {phase}"));
    }
    name.push_str("泵房");
    let number = rng.random_range(1..=999);
    let (road, road_pinyin) = pick(district.roads, &mut rng);
    let address = format!("厦门市{}{road}{number}号", district.name);
    let address_pinyin = format!(
        "{number} {road_pinyin}, {} District, Xiamen",
        district.pinyin
    );
    let households = (800.0 * (0.6 * normal(&mut rng)).exp())
        .clamp(200.0, 3000.0)
        .round();
    let setpoint_mpa = round_dp(rng.random_range(0.40..=0.50), 2);

    let tanks = generate_tanks(households, &mut rng);
    let suction_min_m = tanks
        .iter()
        .map(|t| t.hard_min_m)
        .fold(f64::INFINITY, f64::min);
    let pumps = generate_pumps(households, setpoint_mpa, suction_min_m, &mut rng);
    let camera_count = rng.random_range(1..=CAMERA_NAMES.len());
    let cameras = CAMERA_NAMES[..camera_count]
        .iter()
        .map(|n| CameraSpec {
            name: (*n).to_owned(),
        })
        .collect();

    Some(RoomSpec {
        carrier: Some(carrier_of(&id).to_owned()),
        id,
        name,
        name_pinyin,
        address,
        address_pinyin,
        lat,
        lon,
        zone,
        households: households as u32,
        outlet_setpoint_mpa: setpoint_mpa,
        pumps,
        tanks,
        cameras,
        source: SourceSpec::Mqtt,
        points: BTreeMap::new(),
    })
}

/// The three carriers a Chinese city's pump rooms are linked by, by the room id's hash (not
/// drawn from the generator's stream, which would move every later room's figures).
const CARRIERS: &[&str] = &["中国移动", "中国电信", "中国联通"];

fn carrier_of(id: &RoomId) -> &'static str {
    let h = id.as_str().bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    CARRIERS[h % CARRIERS.len()]
}

fn pick_district(rng: &mut ChaCha8Rng) -> &'static District {
    let total: f64 = DISTRICTS.iter().map(|d| d.weight).sum();
    let mut x = rng.random_range(0.0..total);
    for d in DISTRICTS {
        if x < d.weight {
            return d;
        }
        x -= d.weight;
    }
    &DISTRICTS[DISTRICTS.len() - 1]
}

fn generate_pumps(
    households: f64,
    setpoint_mpa: f64,
    suction_min_m: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<PumpSpec> {
    let design_mean_m3h =
        households * DESIGN_PERSONS * DESIGN_LITRES_PER_PERSON_DAY / 1000.0 / 24.0;
    let design_peak_m3h = design_mean_m3h * DESIGN_PEAK_FACTOR * DESIGN_MAX_DAY_FACTOR;
    let count: usize = match rng.random_range(0.0..1.0) {
        x if x < 0.45 => 2,
        x if x < 0.85 => 3,
        _ => 4,
    };
    // Duty + assists carry the peak; one pump is always in reserve.
    let rated_flow_m3h = round_dp(design_peak_m3h / (count - 1) as f64, 1).max(1.0);
    let suction_m = if suction_min_m.is_finite() {
        suction_min_m
    } else {
        0.0
    };
    // Pipework, meter and valve losses are covered by the head margin.
    let margin_m = rng.random_range(3.0..6.0);
    // Rated heads come in half metres.
    let rated_head_m = (2.0 * (setpoint_mpa * METRES_PER_MPA - suction_m + margin_m)).round() / 2.0;
    let shutoff_head_m = round_dp(rated_head_m * rng.random_range(1.22..1.30), 1);
    let bep_efficiency = round_dp(
        (0.60 + 0.04 * rated_flow_m3h.ln() + rng.random_range(-0.02..0.02)).clamp(0.55, 0.85),
        2,
    );
    let shaft_kw = 9.81 * rated_flow_m3h / 3600.0 * rated_head_m / bep_efficiency;
    let wanted_kw = shaft_kw * rng.random_range(1.10..1.20);
    let rated_power_kw = MOTOR_SIZES_KW
        .iter()
        .copied()
        .find(|&size| size >= wanted_kw)
        .unwrap_or(MOTOR_SIZES_KW[MOTOR_SIZES_KW.len() - 1]);
    let pump = PumpSpec {
        rated_flow_m3h,
        rated_head_m,
        shutoff_head_m,
        rated_power_kw,
        bep_efficiency,
    };
    vec![pump; count]
}

fn generate_tanks(households: f64, rng: &mut ChaCha8Rng) -> Vec<TankSpec> {
    let max_day_m3 = households * TANK_BASIS_M3_PER_HOUSEHOLD_DAY;
    let usable_m3 = max_day_m3 * rng.random_range(0.20..0.25) * rng.random_range(1.0..2.0);
    let max_hour_m3h = max_day_m3 / 24.0 * 2.0;
    let inlet_total_m3h = max_hour_m3h * rng.random_range(1.2..3.0);
    let count = if rng.random_bool(0.4) { 2 } else { 1 };
    let hard_min_m = round_dp(rng.random_range(0.3..0.5), 2);
    let fire_reserve_m = if rng.random_bool(0.3) {
        round_dp(rng.random_range(0.6..1.0), 2)
    } else {
        0.0
    };
    let overflow_m = round_dp(rng.random_range(3.15..3.3), 2);
    let refill_off_m = round_dp(overflow_m * rng.random_range(0.88..0.92), 2);
    let refill_on_m = round_dp(overflow_m * rng.random_range(0.72..0.82), 2);
    let floor_m = hard_min_m.max(fire_reserve_m);
    let area_m2 = round_dp(usable_m3 / count as f64 / (refill_off_m - floor_m), 1).max(1.0);
    let inlet_capacity_m3h = round_dp(inlet_total_m3h / count as f64, 1).max(0.5);
    let tank = TankSpec {
        area_m2,
        height_m: TANK_HEIGHT_M,
        overflow_m,
        hard_min_m,
        fire_reserve_m,
        refill_on_m,
        refill_off_m,
        inlet_capacity_m3h,
    };
    vec![tank; count]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_room_stands_on_its_districts_land() {
        let fleet = generate_fleet(2100, 7);
        for r in &fleet.rooms {
            let district = DISTRICTS.iter().find(|d| d.id == r.zone.as_str()).unwrap();
            assert_eq!(
                geography::on_land(district.name, r.lon, r.lat),
                Some(true),
                "{} at {}, {} in {}",
                r.id,
                r.lat,
                r.lon,
                district.name
            );
        }
    }

    #[test]
    fn fleets_validate_and_have_the_requested_size() {
        for n in [1, 20, 2100] {
            let inv = generate_fleet(n, 42);
            inv.validate().unwrap();
            assert_eq!(inv.rooms.len(), n);
            assert_eq!(inv.zones.len(), 6);
        }
    }

    #[test]
    fn fleets_are_deterministic_and_prefix_stable() {
        let a = generate_fleet(20, 7);
        assert_eq!(a, generate_fleet(20, 7));
        assert_ne!(a, generate_fleet(20, 8));
        let small = generate_fleet(5, 7);
        assert_eq!(small.rooms[..], a.rooms[..5]);
    }

    #[test]
    fn rooms_are_plausible() {
        let inv = generate_fleet(2100, 1);
        assert_eq!(inv.rooms[0].id.as_str(), "XM-0001");
        assert_eq!(inv.rooms[2099].id.as_str(), "XM-2100");
        let mut zones = std::collections::BTreeSet::new();
        let mut with_fire_reserve = 0;
        for r in &inv.rooms {
            zones.insert(r.zone.as_str().to_owned());
            assert!((24.4..=24.75).contains(&r.lat) && (117.9..=118.35).contains(&r.lon));
            assert!((200..=3000).contains(&r.households));
            assert!((0.40..=0.50).contains(&r.outlet_setpoint_mpa));
            assert!((2..=4).contains(&r.pumps.len()));
            assert!((1..=2).contains(&r.tanks.len()));
            assert!((1..=3).contains(&r.cameras.len()));
            assert_eq!(r.source, SourceSpec::Mqtt);
            assert!(r.name.ends_with("泵房"), "{}", r.name);
            assert!(r.address.starts_with("厦门市") && r.address.ends_with('号'));
            assert!(r.address_pinyin.ends_with("District, Xiamen"));
            assert!(!r.name_pinyin.is_empty());
            let p = &r.pumps[0];
            assert!((p.shutoff_head_m / p.rated_head_m - 1.25).abs() < 0.06);
            assert!(p.rated_head_m > r.outlet_setpoint_mpa * METRES_PER_MPA);
            assert!(p.rated_power_kw <= 110.0);
            let t = &r.tanks[0];
            assert_eq!(t.height_m, 3.5);
            with_fire_reserve += usize::from(t.fire_reserve_m > 0.0);
        }
        assert_eq!(zones.len(), 6);
        let share = with_fire_reserve as f64 / inv.rooms.len() as f64;
        assert!((0.25..0.35).contains(&share), "{share}");
        let median = {
            let mut h: Vec<u32> = inv.rooms.iter().map(|r| r.households).collect();
            h.sort_unstable();
            h[h.len() / 2]
        };
        assert!((700..=900).contains(&median), "{median}");
    }

    #[test]
    fn names_and_addresses_are_chinese_with_their_pinyin_beside_them() {
        let inv = generate_fleet(400, 3);
        let zones: Vec<(&str, &str, &str)> = inv
            .zones
            .iter()
            .map(|z| (z.id.as_str(), z.name.as_str(), z.name_pinyin.as_str()))
            .collect();
        assert_eq!(
            zones,
            [
                ("siming", "思明区", "Siming District"),
                ("huli", "湖里区", "Huli District"),
                ("jimei", "集美区", "Jimei District"),
                ("haicang", "海沧区", "Haicang District"),
                ("tongan", "同安区", "Tong'an District"),
                ("xiangan", "翔安区", "Xiang'an District"),
            ]
        );
        let mut phases = 0;
        for r in &inv.rooms {
            // The Chinese name is the pinyin one, word for word: 金山花园三期泵房 is
            // "Jinshan Huayuan Phase 3".
            let words: Vec<&str> = r.name_pinyin.split(' ').collect();
            let zh = |table: &[(&'static str, &'static str)], py: &str| {
                table.iter().find(|(_, p)| *p == py).map(|(z, _)| *z)
            };
            let mut expected = format!(
                "{}{}",
                zh(NAME_PREFIXES, words[0]).unwrap(),
                zh(NAME_SUFFIXES, words[1]).unwrap()
            );
            if let ["Phase", n] = words[2..] {
                expected.push_str(["二期", "三期", "四期"][n.parse::<usize>().unwrap() - 2]);
                phases += 1;
            }
            assert_eq!(r.name, format!("{expected}泵房"), "{}", r.name_pinyin);
            // 厦门市海沧区海沧大道128号 beside "128 Haicang Dadao, Haicang District, Xiamen".
            let district = DISTRICTS.iter().find(|d| d.id == r.zone.as_str()).unwrap();
            let (number, rest) = r.address_pinyin.split_once(' ').unwrap();
            let road_pinyin = rest.split(',').next().unwrap();
            let road = district
                .roads
                .iter()
                .find(|(_, p)| *p == road_pinyin)
                .unwrap()
                .0;
            assert_eq!(
                r.address,
                format!("厦门市{}{road}{number}号", district.name)
            );
        }
        assert!(phases > 50, "{phases}");
    }
}
