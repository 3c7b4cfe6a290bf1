//! A generated fleet of Xiamen pump rooms for the demo, the simulator and the benchmarks.
//!
//! Rooms are spread over Xiamen's six districts in proportion to their population, with
//! compound names and street addresses in pinyin. Equipment is sized the way a design
//! institute would size it, from design values (3.2 persons per household, 180 L/person/day,
//! hourly peak factor 2.1, max-day factor 1.1) rather than from the simulator's actual demand:
//! that is why real boosters run well below their rated flow most of the day, and why staging
//! happens only at the peaks of rooms with three or four pumps.
//!
//! Room `i` is drawn from its own random stream, so a fleet of N rooms is the first N rooms of
//! any larger fleet with the same seed.

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
    name: &'static str,
    lat: (f64, f64),
    lon: (f64, f64),
    /// Share of the city's pump rooms (roughly its share of the population).
    weight: f64,
    roads: &'static [&'static str],
}

const DISTRICTS: &[District] = &[
    District {
        id: "siming",
        name: "Siming",
        lat: (24.43, 24.50),
        lon: (118.07, 118.20),
        weight: 0.23,
        roads: &[
            "Hubin Nanlu",
            "Lianqian Xilu",
            "Xiahe Lu",
            "Siming Nanlu",
            "Zhongshan Lu",
            "Lianyue Lu",
            "Hubin Donglu",
            "Huandao Nanlu",
            "Yundang Lu",
            "Zhenhai Lu",
        ],
    },
    District {
        id: "huli",
        name: "Huli",
        lat: (24.49, 24.56),
        lon: (118.07, 118.20),
        weight: 0.22,
        roads: &[
            "Jiahe Lu",
            "Xianyue Lu",
            "Jinshang Lu",
            "Gaoqi Nanlu",
            "Xinglong Lu",
            "Chenggong Dadao",
            "Jiangtou Beilu",
            "Dianqian Lu",
            "Huli Dadao",
            "Ruijing Lu",
        ],
    },
    District {
        id: "jimei",
        name: "Jimei",
        lat: (24.57, 24.68),
        lon: (117.98, 118.12),
        weight: 0.17,
        roads: &[
            "Jimei Dadao",
            "Yinjiang Lu",
            "Xinglin Wan Lu",
            "Jiageng Lu",
            "Leyuan Lu",
            "Houxi Lu",
            "Shanjiang Lu",
            "Xingtai Lu",
        ],
    },
    District {
        id: "haicang",
        name: "Haicang",
        lat: (24.44, 24.55),
        lon: (117.92, 118.05),
        weight: 0.12,
        roads: &[
            "Haicang Dadao",
            "Xinyang Lu",
            "Nanhai Sanlu",
            "Haijing Lu",
            "Wengjiao Lu",
            "Canghai Lu",
            "Jiaosong Lu",
        ],
    },
    District {
        id: "tongan",
        name: "Tong'an",
        lat: (24.68, 24.75),
        lon: (118.05, 118.22),
        weight: 0.14,
        roads: &[
            "Tongji Lu",
            "Huandong Lu",
            "Tongxiang Lu",
            "Xilin Lu",
            "Chengnan Lu",
            "Tong'an Dadao",
            "Wufeng Lu",
        ],
    },
    District {
        id: "xiangan",
        name: "Xiang'an",
        lat: (24.55, 24.70),
        lon: (118.22, 118.35),
        weight: 0.12,
        roads: &[
            "Xiang'an Nanlu",
            "Xiang'an Beilu",
            "Xinchang Lu",
            "Maxiang Dadao",
            "Minan Dadao",
            "Dadeng Lu",
        ],
    },
];

const NAME_PREFIXES: &[&str] = &[
    "Jinshan",
    "Lianhua",
    "Ruijing",
    "Haiyue",
    "Yuanyang",
    "Xinglin",
    "Jiahe",
    "Huaxia",
    "Binhai",
    "Lianqian",
    "Tianhu",
    "Guanyin",
    "Wanke",
    "Zhongshan",
    "Xiangshu",
    "Baicheng",
    "Yundang",
    "Wuyuan",
    "Caitang",
    "Xiabin",
    "Shuangshi",
    "Fuqian",
    "Lingdou",
    "Longshan",
    "Meilin",
    "Donghai",
    "Qianpu",
    "Gaolin",
    "Jinhu",
    "Tongji",
    "Xinglong",
    "Jiangtou",
    "Shima",
    "Tian'an",
    "Houxi",
    "Lucuo",
    "Changle",
    "Mingfa",
    "Lvyuan",
    "Haitian",
];

const NAME_SUFFIXES: &[&str] = &[
    "Huayuan", "Jiayuan", "Xiaoqu", "Mingyuan", "Haoting", "Yayuan", "Xincun", "Gongyu", "Huating",
    "Shijia", "Lijing", "Xinyuan",
];

const CAMERA_NAMES: &[&str] = &["Entrance", "Pump hall", "Tank area"];

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
                name: format!("{} District", d.name),
            })
        })
        .collect();
    let rooms = (0..rooms).filter_map(|i| generate_room(i, seed)).collect();
    Inventory { zones, rooms }
}

fn generate_room(index: usize, seed: u64) -> Option<RoomSpec> {
    let mut rng = room_rng(seed, Stream::Fleet, index);
    let district = pick_district(&mut rng);
    let id = RoomId::new(&format!("XM-{:04}", index + 1)).ok()?;
    let zone = ZoneId::new(district.id).ok()?;
    let lat = round_dp(rng.random_range(district.lat.0..district.lat.1), 6);
    let lon = round_dp(rng.random_range(district.lon.0..district.lon.1), 6);
    let mut name = format!(
        "{} {}",
        pick(NAME_PREFIXES, &mut rng),
        pick(NAME_SUFFIXES, &mut rng)
    );
    if rng.random_bool(0.3) {
        name.push_str(&format!(" Phase {}", rng.random_range(2..=4)));
    }
    let address = format!(
        "{} {}, {} District, Xiamen",
        rng.random_range(1..=999),
        pick(district.roads, &mut rng),
        district.name
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
        id,
        name,
        address,
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
            assert!(!r.name.is_empty() && r.address.ends_with("Xiamen"));
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
}
