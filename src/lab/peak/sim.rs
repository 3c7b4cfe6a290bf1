//! The SWS district simulator of DOMAIN.md §5, at 15-minute steps.
//!
//! What is drawn (fixed seeds; every district has its own random streams, so a district's
//! trajectory does not depend on how many districts run):
//! - demand per room: households lognormal (median 800, 200-3,000), 2.5-3.2 persons,
//!   120-180 L/person/day; a daily shape with three peaks (06-08, 11:30-13, 17-22) jittered
//!   ±45 min every day, night minimum 0.2-0.35 × mean, peak factor Kh 1.7-2.1; day factor
//!   lognormal σ 0.08 (a district-wide weather part and a room part); weekends (and holidays)
//!   rise later and use 3-8 % more; AR(1) noise in log space (hourly φ 0.5-0.7,
//!   σ ∝ 1/√households);
//! - tanks: usable volume 20-25 % of max-day demand × oversize 1.0-2.0, 3.5 m high (operating
//!   maximum 3.3 m), hard minimum 0.3-0.5 m, a fire reserve never to be drawn in 30 % of rooms,
//!   water-age limit 24-48 h;
//! - inlets: rated capacity 1.2-3 × max-hour demand at nominal pressure; inflow ∝
//!   √(p_main − inlet elevation − tank level); mains pressure 0.4 MPa at no draw falling to
//!   0.2 MPa at the district's reference peak draw (quadratic, like pipe friction), solved per
//!   step together with the inflows: this couples the tanks;
//! - 30-50 % of district demand is served directly from the main and cannot be shifted;
//! - comms: each room goes offline with probability 2 % per day for 2-12 h;
//! - meters: 0.2 % of outflow readings are spikes (×3-8), 0.1 % read zero.
//!
//! Engineering defaults (not sourced): max-day factor 1.3; inlet elevations −2…+8 m; fire
//! reserve 0.4-0.8 m of level.

use cistern_actors::district::{InletCommand, TankSpec};
use cistern_schemas::{DeviceId, DeviceUnit, RoomId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// 15-min slots per day.
pub const SLOTS_PER_DAY: usize = 96;
/// Hours per slot.
pub const SLOT_H: f64 = 0.25;
/// Metres of head per MPa.
const M_PER_MPA: f64 = 101.97;
/// Max-day over mean-day demand (engineering default).
const MAX_DAY_FACTOR: f64 = 1.3;
/// Rooms per district.
pub const ROOMS_PER_DISTRICT: usize = 40;

/// One pump room's tank, inlet and demand.
#[derive(Clone, Debug)]
pub struct RoomModel {
    pub tank: DeviceId,
    pub households: f64,
    pub mean_m3h: f64,
    pub spec: TankSpec,
    pub has_fire_reserve: bool,
    /// Inlet elevation above the main's reference, m.
    pub elevation_m: f64,
    /// Inflow = k √(head available), m³/h per √m.
    pub inlet_k: f64,
    /// True demand per slot, m³/h.
    pub demand: Vec<f64>,
    /// Offline intervals [start, end) in slots.
    pub offline: Vec<(u32, u32)>,
}

impl RoomModel {
    pub fn online(&self, slot: u32) -> bool {
        !self.offline.iter().any(|&(a, b)| a <= slot && slot < b)
    }
}

/// One district: its rooms, its direct-served demand and its main.
#[derive(Clone, Debug)]
pub struct DistrictModel {
    pub index: usize,
    pub rooms: Vec<RoomModel>,
    /// Demand served directly from the main, m³/h per slot.
    pub direct: Vec<f64>,
    /// Mains pressure at no draw and at the reference draw, m of head.
    pub p_idle_m: f64,
    pub p_ref_m: f64,
    pub q_ref_m3h: f64,
    pub main_capacity_m3h: f64,
    pub holidays: Vec<u32>,
    pub seed: u64,
}

impl DistrictModel {
    /// Mains pressure at district draw `q`, m of head.
    pub fn pressure_m(&self, q_m3h: f64) -> f64 {
        let x = q_m3h / self.q_ref_m3h.max(1e-9);
        (self.p_idle_m - (self.p_idle_m - self.p_ref_m) * x * x).max(0.5 * self.p_ref_m)
    }

    pub fn slots(&self) -> usize {
        self.direct.len()
    }
}

fn rng_for(seed: u64, district: usize, purpose: u64) -> ChaCha8Rng {
    let key = seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add((district as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9))
        .wrapping_add(purpose.wrapping_mul(0x94d0_49bb_1331_11eb));
    ChaCha8Rng::seed_from_u64(key)
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample::<f64, _>(StandardNormal)
}

/// A soft-edged period of raised use.
#[derive(Clone, Copy)]
struct UsePeriod {
    start_h: f64,
    end_h: f64,
    weight: f64,
}

impl UsePeriod {
    fn at(&self, hour: f64, edge_h: f64) -> f64 {
        let logistic = |x: f64| 1.0 / (1.0 + (-x).exp());
        [-24.0, 0.0, 24.0]
            .iter()
            .map(|s| {
                let h = hour + s;
                logistic((h - self.start_h) / edge_h) * logistic((self.end_h - h) / edge_h)
            })
            .sum::<f64>()
            * self.weight
    }
}

/// A daily shape (mean 1, minimum `night_min`, maximum `kh`) tabulated at 5-min resolution so
/// that a jittered evaluation stays smooth.
struct Shape {
    table: Vec<f64>,
}

const SHAPE_RES: usize = 288;

impl Shape {
    fn new(peaks: &[UsePeriod], edge_h: f64, night_min: f64, kh: f64) -> Self {
        let daytime = UsePeriod {
            start_h: 6.5,
            end_h: 23.0,
            weight: 1.0,
        };
        let hours: Vec<f64> = (0..SHAPE_RES)
            .map(|i| i as f64 * 24.0 / SHAPE_RES as f64)
            .collect();
        let peak_part: Vec<f64> = hours
            .iter()
            .map(|&h| peaks.iter().map(|p| p.at(h, edge_h)).sum())
            .collect();
        let day_part: Vec<f64> = hours.iter().map(|&h| daytime.at(h, edge_h)).collect();
        Self {
            table: crate::lab::sim::demand::fit_shape(&peak_part, &day_part, night_min, kh),
        }
    }

    fn at(&self, hour: f64) -> f64 {
        let x = hour.rem_euclid(24.0) / 24.0 * SHAPE_RES as f64;
        let i = (x as usize).min(SHAPE_RES - 1);
        let f = x - i as f64;
        let a = self.table[i];
        let b = self.table[(i + 1) % SHAPE_RES];
        a + (b - a) * f
    }
}

/// Per-day weather: the district-wide part of the day factor (log space).
fn weather(seed: u64, district: usize, days: usize) -> Vec<f64> {
    let mut rng = rng_for(seed, district, 1);
    (0..days).map(|_| 0.06 * normal(&mut rng)).collect()
}

/// One consumer group's demand per slot (m³/h) and its mean.
fn demand_series(
    rng: &mut ChaCha8Rng,
    households: f64,
    days: usize,
    weather: &[f64],
    holidays: &[u32],
) -> (Vec<f64>, f64, f64) {
    let persons = rng.random_range(2.5..3.2);
    let lpd = rng.random_range(120.0..180.0);
    let mean = households * persons * lpd / 1000.0 / 24.0;
    let night_min = rng.random_range(0.20..0.35);
    let kh = rng.random_range(1.7..2.1);
    let edge_h = rng.random_range(0.3..0.5);
    let morning = UsePeriod {
        start_h: 6.0,
        end_h: 8.0,
        weight: 1.0,
    };
    let midday = UsePeriod {
        start_h: 11.5,
        end_h: 13.0,
        weight: 0.55,
    };
    let evening = UsePeriod {
        start_h: 17.0,
        end_h: 22.0,
        weight: 0.85,
    };
    let weekday = Shape::new(&[morning, midday, evening], edge_h, night_min, kh);
    let lie_in = rng.random_range(0.75..1.5);
    let weekend = Shape::new(
        &[
            UsePeriod {
                start_h: 6.0 + lie_in,
                end_h: 8.0 + lie_in,
                weight: 0.8,
            },
            UsePeriod {
                weight: 0.75,
                ..midday
            },
            evening,
        ],
        edge_h,
        night_min,
        kh,
    );
    let weekend_factor = rng.random_range(1.03..1.08);
    let phi_h: f64 = rng.random_range(0.5..0.7);
    let phi = phi_h.powf(SLOT_H);
    let sigma = (0.10 * (800.0 / households).sqrt()).clamp(0.03, 0.25);
    let innovation = sigma * (1.0 - phi * phi).sqrt();
    let mut ar = sigma * normal(rng);
    let mut out = Vec::with_capacity(days * SLOTS_PER_DAY);
    for day in 0..days {
        let is_weekend = day % 7 >= 5 || holidays.contains(&(day as u32));
        let shape = if is_weekend { &weekend } else { &weekday };
        let day_log = weather.get(day).copied().unwrap_or(0.0) + 0.053 * normal(rng) - 0.0032;
        let factor = day_log.exp() * if is_weekend { weekend_factor } else { 1.0 };
        // ±45 min jitter of each peak, today.
        let (jm, jn, je) = (
            rng.random_range(-0.75..0.75),
            rng.random_range(-0.75..0.75),
            rng.random_range(-0.75..0.75),
        );
        let anchors = [
            (0.0, 0.0),
            (3.5, 0.0),
            (7.0, jm),
            (12.25, jn),
            (19.5, je),
            (24.0, 0.0),
        ];
        for k in 0..SLOTS_PER_DAY {
            let hour = (k as f64 + 0.5) * SLOT_H;
            let mut j = 0.0;
            for w in anchors.windows(2) {
                if hour >= w[0].0 && hour < w[1].0 {
                    let f = (hour - w[0].0) / (w[1].0 - w[0].0);
                    j = w[0].1 + (w[1].1 - w[0].1) * f;
                }
            }
            ar = phi * ar + innovation * normal(rng);
            let noise = (ar - sigma * sigma / 2.0).exp();
            out.push(mean * shape.at(hour - j) * factor * noise);
        }
    }
    (out, mean, kh)
}

/// The benchmark's scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Scale {
    S,
    M,
    L,
}

impl Scale {
    pub fn districts(self) -> usize {
        match self {
            Scale::S => 1,
            Scale::M => 10,
            Scale::L => 50,
        }
    }
}

impl std::str::FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "S" | "s" => Ok(Scale::S),
            "M" | "m" => Ok(Scale::M),
            "L" | "l" => Ok(Scale::L),
            other => Err(format!("unknown scale {other:?} (S, M or L)")),
        }
    }
}

/// Draws district `index` of the benchmark: `days` days in all (warm-up included).
pub fn district(seed: u64, index: usize, rooms: usize, days: usize) -> DistrictModel {
    let mut rng = rng_for(seed, index, 2);
    let weather = weather(seed, index, days);
    // One public holiday in the scored weeks (a Thursday), when the run is long enough.
    let holidays: Vec<u32> = if days > 18 { vec![17] } else { Vec::new() };
    let mut models = Vec::with_capacity(rooms);
    let mut total_mean = 0.0;
    let mut total_peak = 0.0;
    for r in 0..rooms {
        let mut room_rng = rng_for(seed, index, 1000 + r as u64);
        let households = (800.0_f64.ln() + 0.55 * normal(&mut room_rng))
            .exp()
            .clamp(200.0, 3000.0);
        let (demand, mean, kh) =
            demand_series(&mut room_rng, households, days, &weather, &holidays);
        let max_day_m3 = mean * 24.0 * MAX_DAY_FACTOR;
        let max_hour = kh * mean * MAX_DAY_FACTOR;
        let usable = rng.random_range(0.20..0.25) * max_day_m3 * rng.random_range(1.0..2.0);
        let hard_min = rng.random_range(0.3..0.5);
        let has_fire = rng.random_bool(0.3);
        let fire = if has_fire {
            rng.random_range(0.4..0.8)
        } else {
            0.0
        };
        let max_level = 3.3;
        let area = usable / (max_level - hard_min - fire);
        let capacity = rng.random_range(1.2..3.0) * max_hour;
        let elevation = rng.random_range(-2.0..8.0);
        let spec = TankSpec {
            area_m2: area,
            max_level_m: max_level,
            hard_min_m: hard_min,
            fire_reserve_m: fire,
            age_limit_h: rng.random_range(24.0..48.0),
            inlet_capacity_m3h: capacity,
        };
        let mut offline = Vec::new();
        for day in 0..days {
            if room_rng.random_bool(0.02) {
                let start =
                    (day * SLOTS_PER_DAY) as u32 + room_rng.random_range(0..SLOTS_PER_DAY as u32);
                let len = room_rng.random_range(8..=48);
                offline.push((start, start + len));
            }
        }
        let room_id = RoomId::new(&format!("D{:02}-{:04}", index, r + 1));
        let tank = match room_id {
            Ok(room) => DeviceId::new(room, DeviceUnit::Tank(1)),
            Err(_) => continue,
        };
        total_mean += mean;
        total_peak += max_hour / MAX_DAY_FACTOR;
        models.push(RoomModel {
            tank,
            households,
            mean_m3h: mean,
            spec,
            has_fire_reserve: has_fire,
            elevation_m: elevation,
            inlet_k: capacity, // normalised below, once the pressure model is known
            demand,
            offline,
        });
    }
    // Directly served demand: 30-50 % of the district's, a few large groups of consumers.
    let share = rng.random_range(0.30..0.50);
    let direct_mean_target = total_mean * share / (1.0 - share);
    let mut direct = vec![0.0; days * SLOTS_PER_DAY];
    let mut direct_mean = 0.0;
    for g in 0..6 {
        let mut g_rng = rng_for(seed, index, 500 + g);
        let (series, mean, _) = demand_series(&mut g_rng, 3000.0, days, &weather, &holidays);
        direct_mean += mean;
        for (d, s) in direct.iter_mut().zip(series) {
            *d += s;
        }
    }
    let k = direct_mean_target / direct_mean.max(1e-9);
    for d in &mut direct {
        *d *= k;
    }
    // The main: 0.4 MPa idle, 0.2 MPa at the reference draw (the district's coincident peak
    // hour, about the sum of the rooms' peak hours discounted for diversity).
    let q_ref = (0.85 * total_peak + direct_mean_target * 1.8).max(1e-6);
    let mut model = DistrictModel {
        index,
        rooms: models,
        direct,
        p_idle_m: 0.40 * M_PER_MPA,
        p_ref_m: 0.20 * M_PER_MPA,
        q_ref_m3h: q_ref,
        main_capacity_m3h: 1.05 * q_ref,
        holidays,
        seed,
    };
    // Rated inlet capacity at nominal pressure (the main at 60 % of its reference draw), full tank.
    let p_nominal = model.pressure_m(0.6 * q_ref);
    for room in &mut model.rooms {
        let head = (p_nominal - room.elevation_m - room.spec.max_level_m).max(1.0);
        room.inlet_k = room.spec.inlet_capacity_m3h / head.sqrt();
    }
    model
}

/// A tank's physical state.
#[derive(Clone, Copy, Debug)]
pub struct TankState {
    pub volume_m3: f64,
    pub age_h: f64,
    pub inlet_open: bool,
}

/// What one step did to one tank.
#[derive(Clone, Copy, Debug, Default)]
pub struct TankStep {
    pub inflow_m3h: f64,
    pub served_m3h: f64,
    pub unmet_m3: f64,
    pub encroached: bool,
}

impl TankState {
    pub fn full(room: &RoomModel) -> Self {
        Self {
            volume_m3: room.spec.volume_m3(room.spec.max_level_m),
            age_h: 12.0,
            inlet_open: false,
        }
    }

    pub fn level_m(&self, room: &RoomModel) -> f64 {
        room.spec.level_m(self.volume_m3)
    }
}

/// Advances a district by one slot under the controllers' commands; returns the district's
/// draw on the main (m³/h). `pressure` carries the mains pressure between steps.
pub fn step_district(
    model: &DistrictModel,
    slot: usize,
    commands: &[InletCommand],
    tanks: &mut [TankState],
    steps: &mut [TankStep],
    pressure: &mut f64,
) -> f64 {
    let direct = model.direct[slot];
    let mut inflows = vec![0.0; model.rooms.len()];
    let mut p = *pressure;
    for _ in 0..6 {
        let mut q = direct;
        for (i, room) in model.rooms.iter().enumerate() {
            let state = &tanks[i];
            let level = state.level_m(room);
            let head = (p - room.elevation_m - level).max(0.0);
            let physical = room.inlet_k * head.sqrt();
            let d = room.demand[slot];
            let headroom = |until: f64| {
                ((room.spec.volume_m3(until.min(room.spec.max_level_m)) - state.volume_m3) / SLOT_H
                    + d)
                    .max(0.0)
            };
            inflows[i] = match commands[i] {
                InletCommand::Closed => 0.0,
                InletCommand::Rate {
                    rate_m3h,
                    until_level_m,
                } => rate_m3h.max(0.0).min(physical).min(headroom(until_level_m)),
                InletCommand::Full { until_level_m } => physical.min(headroom(until_level_m)),
            };
            q += inflows[i];
        }
        p = 0.5 * (p + model.pressure_m(q));
    }
    *pressure = p;
    let mut draw = direct;
    for (i, room) in model.rooms.iter().enumerate() {
        let state = &mut tanks[i];
        let d = room.demand[slot];
        let inflow = inflows[i];
        let floor = room.spec.volume_m3(room.spec.hard_min_m);
        let mut volume = state.volume_m3 + (inflow - d) * SLOT_H;
        let mut unmet = 0.0;
        if volume < floor {
            unmet = floor - volume;
            volume = floor;
        }
        let fire = room.spec.volume_m3(room.spec.floor_level_m());
        let encroached = room.has_fire_reserve && volume < fire - 1e-4;
        // Well-mixed age: the water left ages by a slot, the new water arrives at age ~0.
        let kept = (state.volume_m3 - (d * SLOT_H - unmet)).max(0.0);
        let added = inflow * SLOT_H;
        state.age_h = if volume > 1e-9 {
            (kept * (state.age_h + SLOT_H) + added * SLOT_H * 0.5) / (kept + added).max(1e-9)
        } else {
            0.0
        };
        state.volume_m3 = volume;
        state.inlet_open = inflow > 1e-3 * room.spec.inlet_capacity_m3h;
        steps[i] = TankStep {
            inflow_m3h: inflow,
            served_m3h: d - unmet / SLOT_H,
            unmet_m3: unmet,
            encroached,
        };
        draw += inflow;
    }
    draw
}
