//! The demo fleet's parts history: generated, not observed. Each component gets vendor and
//! model (when its archive has none), a commissioning date and a sequence of lives sampled from
//! its class's literature curve (one vendor's seals and bearings made to wear faster, so that
//! the suppliers' table has something to show), all drawn from a generator seeded by the
//! component's id — the same fleet always has the same history. Every event is marked
//! [`EventSource::Simulated`] and the console says so.

use super::model::{derive, Component, ComponentClass, Event, EventKind, EventSource};
use crate::business::assets::archive::model::RoomArchive;
use cistern_schemas::inventory::Inventory;
use cistern_schemas::Timestamp;

/// SplitMix64: small, seedable, and enough for a demo's dice.
struct Dice(u64);

impl Dice {
    fn new(seed: &str) -> Self {
        // FNV-1a of the seed text.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Self(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

const VENDORS: [(&str, &str); 4] = [
    ("Grundfos", "CR 32-4"),
    ("Wilo", "Helix V 3604"),
    ("南方泵业", "CDL 32-40"),
    ("凯泉", "KQDP 32-4"),
];

const MS_PER_HOUR: f64 = 3_600_000.0;
const YEAR_MS: i64 = 365 * 86_400_000;

/// Fills in `c`'s simulated history up to `now` (replacing its events), from `installed` when
/// its archive dates it (else a start drawn for its room). `duty` converts running hours to
/// calendar time.
pub fn history(c: &mut Component, now: Timestamp, duty: f64, installed: Option<Timestamp>) {
    let room_seed = c.room.to_string();
    let mut room_dice = Dice::new(&room_seed);
    // The room commissioned 4 to 12 years ago (kept when the history is drawn again).
    let drawn = now.as_millis() - (4 * YEAR_MS + (room_dice.unit() * 8.0 * YEAR_MS as f64) as i64);
    let start = match c.events.first() {
        Some(e) if e.source == EventSource::Simulated && e.kind == EventKind::Install => {
            e.at.as_millis()
        }
        _ => installed.map_or(drawn, |t| t.as_millis().min(now.as_millis())),
    };
    let vendor_index = (Dice::new(&format!("{room_seed}/{}", c.equipment)).next() % 4) as usize;
    if c.vendor.is_empty() {
        let (v, m) = VENDORS[vendor_index];
        c.vendor = v.to_owned();
        c.model = m.to_owned();
    }
    let mut dice = Dice::new(c.id.as_str());
    let lit = c.class.literature();
    // One vendor's seals and bearings wear out faster (a simulated quality problem): 南方泵业
    // where the archive names vendors, else the third of the list.
    let slow = if c.vendor.is_empty() || !VENDORS.iter().any(|(v, _)| c.vendor.contains(v)) {
        vendor_index == 2
    } else {
        c.vendor.contains(VENDORS[2].0)
    };
    let eta = if slow
        && matches!(
            c.class,
            ComponentClass::MechanicalSeal | ComponentClass::Bearing
        ) {
        lit.eta * 0.6
    } else {
        lit.eta
    };
    let duty = if c.class.runs_with_pump() { duty } else { 1.0 };
    let by = "demo".to_owned();
    let event = |at: i64, kind: EventKind| Event {
        at: Timestamp::from_millis(at),
        kind,
        source: EventSource::Simulated,
        serial: String::new(),
        by: by.clone(),
        order: None,
        note: String::new(),
    };
    c.events.clear();
    c.events.push(event(start, EventKind::Install));
    let mut t = start;
    loop {
        let life = eta * (-dice.unit().ln()).powf(1.0 / lit.beta);
        // One life in five ended by a planned replacement at four fifths of it.
        let planned = dice.unit() < 0.2;
        let hours = if planned { 0.8 * life } else { life };
        let end = t + (hours / duty * MS_PER_HOUR).min(50.0 * YEAR_MS as f64) as i64;
        if end >= now.as_millis() {
            break;
        }
        c.events.push(event(
            end,
            if planned {
                EventKind::Replacement
            } else {
                EventKind::Failure
            },
        ));
        t = end;
    }
    c.installed_at = Timestamp::from_millis(t);
}

/// Every component of `inventory`'s rooms (each seeded as its archive) with the simulated
/// history at `duty`: the demo fleet's lifecycle, for the fleet-scale measurement.
pub fn fleet(inventory: &Inventory, now: Timestamp, duty: f64) -> Vec<Component> {
    let mut out = Vec::new();
    for room in &inventory.rooms {
        for d in derive(&RoomArchive::from_spec(room), 480) {
            let mut c = d.component(now, duty);
            history(&mut c, now, duty, None);
            out.push(c);
        }
    }
    out
}
