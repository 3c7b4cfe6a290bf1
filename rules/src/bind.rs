//! Binding facts to script variables.
//!
//! Each evaluation pushes exactly the rule's declared inputs into one reusable Rhai scope, as
//! constants (a rule cannot assign to a fact), and clears it afterwards. A small scope matters:
//! Rhai finds variables by name, from the end of the scope. Digital points read as `bool`,
//! everything else as a float; a point that is not usable (bad, stale, never received) reads
//! as `()`. The collections (`pumps`, `tanks`, `cameras`, `transmitters`) are built only for
//! the rules that read them.

use crate::facts::{
    derived_of, is_digital, Derived, DeviceFacts, FactRef, PointFact, PointFacts, RoomFacts,
};
use crate::ruleset::{Input, Owner};
use cistern_schemas::{DeviceKind, QualityLevel};
use rhai::{Array, Dynamic, Map, Scope};

fn point_dynamic(kind: DeviceKind, index: usize, fact: Option<&PointFact>) -> Dynamic {
    match fact {
        Some(f) if f.usable() => {
            if is_digital(kind, index) {
                Dynamic::from_bool(f.value != 0.0)
            } else {
                Dynamic::from_float(f.value)
            }
        }
        _ => Dynamic::UNIT,
    }
}

fn opt(v: Option<f64>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Dynamic::from_float)
}

fn derived_dynamic(room: &RoomFacts, dev: DeviceFacts<'_>, d: Derived) -> Dynamic {
    match (d, dev) {
        (Derived::RoomOnline, _) => Dynamic::from_bool(room.online),
        (Derived::DataAgeS, _) => Dynamic::from_float(room.data_age_s),
        (Derived::Setpoint, _) => opt(room.setpoint_mpa),
        (Derived::Pumps, _) => Dynamic::from_array(
            room.pumps
                .iter()
                .map(|p| device_map(room, DeviceFacts::Pump(p)))
                .collect(),
        ),
        (Derived::Tanks, _) => Dynamic::from_array(
            room.tanks
                .iter()
                .map(|t| device_map(room, DeviceFacts::Tank(t)))
                .collect(),
        ),
        (Derived::Cameras, _) => Dynamic::from_array(
            room.cameras
                .iter()
                .map(|c| device_map(room, DeviceFacts::Camera(c)))
                .collect(),
        ),
        (Derived::Transmitters, _) => Dynamic::from_array(transmitters(room)),
        (Derived::PumpCount, _) => Dynamic::from_int(room.pumps.len() as rhai::INT),
        (Derived::PumpsTripped, _) => count_pumps(room, crate::facts::PumpStatus::Tripped),
        (Derived::PumpsRunning, _) => count_pumps(room, crate::facts::PumpStatus::Running),
        (Derived::LeakIndex, _) => opt(room.leak_index),
        (Derived::LeakBaseline, _) => opt(room.leak_baseline),
        (Derived::LeakSpread, _) => opt(room.leak_spread),
        (Derived::LeakNights, _) => room.leak_nights.as_ref().map_or(Dynamic::UNIT, |nights| {
            Dynamic::from_array(
                nights
                    .iter()
                    .map(|v| {
                        if v.is_finite() {
                            Dynamic::from_float(*v)
                        } else {
                            Dynamic::UNIT
                        }
                    })
                    .collect(),
            )
        }),
        (Derived::Unit, dev) => Dynamic::from(dev.unit().to_string()),
        (Derived::PumpStatus, DeviceFacts::Pump(p)) => Dynamic::from(p.status.as_str().to_owned()),
        (Derived::LevelPct, DeviceFacts::Tank(t)) => opt(t.level_pct),
        (Derived::VolumeM3, DeviceFacts::Tank(t)) => opt(t.volume_m3),
        (Derived::AutonomyH, DeviceFacts::Tank(t)) => opt(t.autonomy_h),
        (Derived::LevelRateMH, DeviceFacts::Tank(t)) => opt(t.level_rate_m_h),
        (Derived::DaysSinceCleaning, DeviceFacts::Tank(t)) => opt(t.days_since_cleaning),
        _ => Dynamic::UNIT,
    }
}

fn count_pumps(room: &RoomFacts, status: crate::facts::PumpStatus) -> Dynamic {
    Dynamic::from_int(room.pumps.iter().filter(|p| p.status == status).count() as rhai::INT)
}

/// A transmitter unchanged this long is listed as suspect (flat-line candidates).
const SUSPECT_FLAT_S: f64 = 60.0;

fn is_collection(d: Derived) -> bool {
    matches!(
        d,
        Derived::Pumps | Derived::Tanks | Derived::Cameras | Derived::Transmitters
    )
}

/// A device as a map: its points, its derived facts and `unit`.
fn device_map(room: &RoomFacts, dev: DeviceFacts<'_>) -> Dynamic {
    let points = dev.points();
    let kind = points.kind();
    let mut m = Map::new();
    for (i, spec) in kind.points().iter().enumerate() {
        m.insert(
            spec.name.into(),
            point_dynamic(kind, i, points.get_index(i)),
        );
    }
    for (name, d) in derived_of(kind) {
        if !is_collection(*d) {
            m.insert((*name).into(), derived_dynamic(room, dev, *d));
        }
    }
    Dynamic::from_map(m)
}

fn transmitters(room: &RoomFacts) -> Array {
    let mut out = Array::new();
    let mut add = |prefix: Option<String>, points: &PointFacts| {
        for (i, spec) in points.kind().points().iter().enumerate() {
            if !spec.transmitter {
                continue;
            }
            let Some(f) = points.get_index(i) else {
                continue;
            };
            // Only suspects: a healthy room builds an empty list, which keeps bad_analog cheap.
            if f.quality == QualityLevel::Good && !f.stale && f.flat_s < SUSPECT_FLAT_S {
                continue;
            }
            let quality = if f.stale {
                "stale"
            } else {
                match f.quality {
                    QualityLevel::Good => "good",
                    QualityLevel::Uncertain => "uncertain",
                    QualityLevel::Bad => "bad",
                    QualityLevel::Stale => "stale",
                }
            };
            let name = match &prefix {
                Some(p) => format!("{p}.{}", spec.name),
                None => spec.name.to_owned(),
            };
            let mut m = Map::new();
            m.insert("name".into(), Dynamic::from(name));
            m.insert("quality".into(), Dynamic::from(quality.to_owned()));
            m.insert("flat_s".into(), Dynamic::from_float(f.flat_s));
            m.insert("value".into(), Dynamic::from_float(f.value));
            out.push(Dynamic::from_map(m));
        }
    };
    add(None, &room.points);
    for p in &room.pumps {
        add(Some(format!("P{}", p.n)), &p.points);
    }
    for t in &room.tanks {
        add(Some(format!("T{}", t.n)), &t.points);
    }
    for c in &room.cameras {
        add(Some(format!("C{}", c.n)), &c.points);
    }
    out
}

/// Pushes a rule's declared inputs for one device, as constants.
pub(crate) fn bind_inputs(
    scope: &mut Scope<'static>,
    room: &RoomFacts,
    dev: DeviceFacts<'_>,
    inputs: &[Input],
) {
    for input in inputs {
        let source = match input.owner {
            Owner::Room => DeviceFacts::Room(room),
            Owner::Own => dev,
        };
        let value = match input.fact {
            FactRef::Point(i) => {
                let points = source.points();
                point_dynamic(points.kind(), i, points.get_index(i))
            }
            FactRef::Derived(d) => derived_dynamic(room, source, d),
        };
        scope.push_constant_dynamic(input.name.as_str(), value);
    }
}

/// Whether a declared input is usable for this device (process rules hold on unusable inputs).
pub(crate) fn input_usable(room: &RoomFacts, dev: DeviceFacts<'_>, input: &Input) -> bool {
    let source = match input.owner {
        Owner::Room => DeviceFacts::Room(room),
        Owner::Own => dev,
    };
    match input.fact {
        FactRef::Point(i) => source.points().get_index(i).is_some_and(PointFact::usable),
        FactRef::Derived(d) => match (d, source) {
            (Derived::Setpoint, _) => room.setpoint_mpa.is_some(),
            (Derived::LeakIndex, _) => room.leak_index.is_some(),
            (Derived::LeakBaseline, _) => room.leak_baseline.is_some(),
            (Derived::LeakSpread, _) => room.leak_spread.is_some(),
            (Derived::LeakNights, _) => room.leak_nights.is_some(),
            (Derived::PumpStatus, DeviceFacts::Pump(p)) => {
                p.status != crate::facts::PumpStatus::Unknown
            }
            (Derived::LevelPct, DeviceFacts::Tank(t)) => t.level_pct.is_some(),
            (Derived::VolumeM3, DeviceFacts::Tank(t)) => t.volume_m3.is_some(),
            (Derived::AutonomyH, DeviceFacts::Tank(t)) => t.autonomy_h.is_some(),
            (Derived::LevelRateMH, DeviceFacts::Tank(t)) => t.level_rate_m_h.is_some(),
            (Derived::DaysSinceCleaning, DeviceFacts::Tank(t)) => t.days_since_cleaning.is_some(),
            _ => true,
        },
    }
}
