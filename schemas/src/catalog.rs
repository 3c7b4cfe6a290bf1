//! The point catalog: which points each kind of equipment has, with unit, type, range and
//! expected period.
//!
//! The catalog is the standard pump-room instrumentation of DOMAIN.md §1 (61-65 points for a
//! room with three pumps, two tanks and two cameras). A site inventory may override the range
//! and the expected period of any point of any room (vendors differ), but not add names: rules,
//! dashboards and register maps are written against these names.
//!
//! Analog points flagged `transmitter` are 4-20 mA loops whose range maps onto 4..20 mA; the
//! NAMUR NE43 limits then tell a failed sensor (< 3.6 mA or > 21 mA) from a saturated one.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Kinds of equipment; each has its own catalog and its own actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Room,
    Pump,
    Tank,
    Camera,
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Room => "room",
            DeviceKind::Pump => "pump",
            DeviceKind::Tank => "tank",
            DeviceKind::Camera => "camera",
        })
    }
}

/// How a point's value is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    /// A measured quantity.
    Analog,
    /// A contact or state: 0 or 1.
    Digital,
    /// A monotonic total (energy, volume, run hours, starts).
    Counter,
    /// An event code, e.g. access control: 0 none, 1 granted, 2 denied, 3 forced.
    Event,
}

/// One point of a device: unit, type, valid range and expected update period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointSpec {
    pub name: &'static str,
    pub unit: &'static str,
    pub kind: PointKind,
    /// Lower end of the measuring range.
    pub lo: f64,
    /// Upper end of the measuring range.
    pub hi: f64,
    /// The period the field promises; 3x this without an update turns the point stale.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// A 4-20 mA transmitter: NAMUR NE43 failure detection applies.
    pub transmitter: bool,
    /// The resolution the value reaches SCADA with, as decimals: `3` means steps of 0.001
    /// (a register scaled ×1000). See [`PointSpec::resolution`].
    pub decimals: u8,
    pub description: &'static str,
}

const P2S: Duration = Duration::from_secs(2);

const fn analog(
    name: &'static str,
    unit: &'static str,
    (lo, hi, decimals): (f64, f64, u8),
    transmitter: bool,
    description: &'static str,
) -> PointSpec {
    PointSpec {
        name,
        unit,
        kind: PointKind::Analog,
        lo,
        hi,
        period: P2S,
        transmitter,
        decimals,
        description,
    }
}

const fn digital(name: &'static str, description: &'static str) -> PointSpec {
    PointSpec {
        name,
        unit: "",
        kind: PointKind::Digital,
        lo: 0.0,
        hi: 1.0,
        period: P2S,
        transmitter: false,
        decimals: 0,
        description,
    }
}

const fn counter(
    name: &'static str,
    unit: &'static str,
    decimals: u8,
    description: &'static str,
) -> PointSpec {
    PointSpec {
        name,
        unit,
        kind: PointKind::Counter,
        lo: 0.0,
        hi: 1.0e12,
        period: P2S,
        transmitter: false,
        decimals,
        description,
    }
}

/// The room's own instruments. Resolutions (the third number of each range) are those of the
/// registers typical equipment reports through: a power meter's 0.1 V, 0.01 A, 0.001 power
/// factor, 0.01 kW and 0.01 kWh; pressure transmitters read by the controller into kPa
/// registers (0.001 MPa); flow in 0.1 m³/h and volume totals in 0.01 m³; analysers' 0.01 NTU,
/// mg/L and pH; 0.1 °C and 0.1 %RH; 1 mm of tank level; a drive's 0.01 Hz, 0.1 A, 0.1 kW.
pub static ROOM_POINTS: &[PointSpec] = &[
    // power meter
    analog("voltage_a", "V", (0.0, 500.0, 1), false, "phase A voltage"),
    analog("voltage_b", "V", (0.0, 500.0, 1), false, "phase B voltage"),
    analog("voltage_c", "V", (0.0, 500.0, 1), false, "phase C voltage"),
    analog("current_a", "A", (0.0, 400.0, 2), false, "phase A current"),
    analog("current_b", "A", (0.0, 400.0, 2), false, "phase B current"),
    analog("current_c", "A", (0.0, 400.0, 2), false, "phase C current"),
    analog("power_factor", "", (0.0, 1.0, 3), false, "power factor"),
    analog(
        "active_power",
        "kW",
        (0.0, 400.0, 2),
        false,
        "total active power",
    ),
    counter("energy", "kWh", 2, "active energy"),
    counter("reactive_energy", "kvarh", 2, "reactive energy"),
    digital("mains", "mains present"),
    // hydraulics
    analog(
        "inlet_pressure",
        "MPa",
        (0.0, 1.0, 3),
        true,
        "municipal inlet pressure",
    ),
    analog(
        "outlet_pressure",
        "MPa",
        (0.0, 1.6, 3),
        true,
        "booster outlet pressure",
    ),
    analog(
        "outlet_setpoint",
        "MPa",
        (0.0, 1.6, 3),
        false,
        "outlet pressure set-point",
    ),
    analog(
        "outlet_flow",
        "m3/h",
        (0.0, 500.0, 1),
        true,
        "booster outlet flow",
    ),
    counter("outlet_volume", "m3", 2, "cumulative outlet volume"),
    analog(
        "inlet_flow",
        "m3/h",
        (0.0, 500.0, 1),
        true,
        "tank inlet flow",
    ),
    counter("inlet_volume", "m3", 2, "cumulative inlet volume"),
    // water quality analyser
    analog("turbidity", "NTU", (0.0, 20.0, 2), true, "turbidity"),
    analog("chlorine", "mg/L", (0.0, 5.0, 2), true, "free chlorine"),
    analog("ph", "pH", (0.0, 14.0, 2), true, "pH"),
    // environment
    analog(
        "temperature",
        "degC",
        (-20.0, 60.0, 1),
        true,
        "room temperature",
    ),
    analog(
        "humidity",
        "%RH",
        (0.0, 100.0, 1),
        true,
        "relative humidity",
    ),
    digital("flooding", "immersion sensor"),
    digital("smoke", "smoke detector"),
    // security
    digital("door", "door contact (1 = open)"),
    digital("intrusion", "infrared intrusion detector"),
    digital("armed", "security system armed"),
    PointSpec {
        name: "access",
        unit: "",
        kind: PointKind::Event,
        lo: 0.0,
        hi: 3.0,
        period: P2S,
        transmitter: false,
        decimals: 0,
        description: "access-control event: 0 none, 1 granted, 2 denied, 3 forced",
    },
    digital("siren", "sound/light alarm output"),
];

/// A booster pump on a variable-speed drive.
pub static PUMP_POINTS: &[PointSpec] = &[
    digital("running", "run feedback"),
    digital("fault", "drive or motor fault"),
    analog(
        "frequency",
        "Hz",
        (0.0, 55.0, 2),
        false,
        "drive output frequency",
    ),
    analog("current", "A", (0.0, 200.0, 1), false, "motor current"),
    analog("power", "kW", (0.0, 110.0, 1), false, "motor input power"),
    counter("run_hours", "h", 1, "run hours"),
    counter("starts", "", 0, "number of starts"),
    digital("duty", "selected as duty pump (0 = standby)"),
];

/// A break tank.
pub static TANK_POINTS: &[PointSpec] = &[
    analog("level", "m", (0.0, 5.0, 3), true, "water level"),
    digital("inlet_valve", "inlet valve open"),
    digital("overflow", "overflow switch"),
    digital("low_low", "low-low float switch"),
    // What the controller's fill logic is doing (schemas::fill_plan::FillMode): 0 float
    // valve, 1 following the platform's plan, 2 plan's fallback (below its fallback level).
    analog("fill_mode", "", (0.0, 2.0, 0), false, "inlet fill mode"),
];

/// A camera.
pub static CAMERA_POINTS: &[PointSpec] = &[
    digital("online", "camera reachable"),
    digital("recording", "recording to the NVR"),
    digital("motion", "motion / intrusion detected"),
];

impl DeviceKind {
    /// The standard points of this kind of equipment, in a fixed order (the order indexes
    /// live state arrays).
    pub fn points(self) -> &'static [PointSpec] {
        match self {
            DeviceKind::Room => ROOM_POINTS,
            DeviceKind::Pump => PUMP_POINTS,
            DeviceKind::Tank => TANK_POINTS,
            DeviceKind::Camera => CAMERA_POINTS,
        }
    }

    /// The index of point `name` in [`DeviceKind::points`].
    pub fn point_index(self, name: &str) -> Option<usize> {
        self.points().iter().position(|p| p.name == name)
    }
}

impl PointSpec {
    /// The loop current a value of this transmitter corresponds to (4..20 mA over the range).
    pub fn milliamps(&self, value: f64) -> Option<f64> {
        if !self.transmitter || self.hi <= self.lo {
            return None;
        }
        Some(4.0 + 16.0 * (value - self.lo) / (self.hi - self.lo))
    }

    /// The smallest step of the value as reported: `10^-decimals` in the catalog unit.
    pub fn resolution(&self) -> f64 {
        1.0 / 10f64.powi(i32::from(self.decimals))
    }

    /// `value` as an instrument of this resolution reports it: rounded to `decimals` places and
    /// computed as `m / 10^decimals`, the very double a decimal register (or a JSON number
    /// with those decimals) decodes to — the form the chunk codec's decimal mode stores in a
    /// few bits. NaN and infinities pass unchanged.
    pub fn quantise(&self, value: f64) -> f64 {
        if !value.is_finite() {
            return value;
        }
        let scale = 10f64.powi(i32::from(self.decimals));
        let q = (value * scale).round() / scale;
        // No negative zero: it is not a decimal the codec's decimal mode can hold.
        if q == 0.0 {
            0.0
        } else {
            q
        }
    }

    /// The engineering value a loop current corresponds to (the inverse of [`Self::milliamps`]).
    pub fn value_at_milliamps(&self, ma: f64) -> f64 {
        self.lo + (ma - 4.0) / 16.0 * (self.hi - self.lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_kind() {
        for kind in [
            DeviceKind::Room,
            DeviceKind::Pump,
            DeviceKind::Tank,
            DeviceKind::Camera,
        ] {
            let pts = kind.points();
            for (i, p) in pts.iter().enumerate() {
                assert_eq!(kind.point_index(p.name), Some(i), "{kind}.{}", p.name);
                assert!(p.hi > p.lo, "{kind}.{} has an empty range", p.name);
            }
        }
    }

    #[test]
    fn a_typical_room_has_sixty_odd_points() {
        let n = ROOM_POINTS.len()
            + 3 * PUMP_POINTS.len()
            + 2 * TANK_POINTS.len()
            + 2 * CAMERA_POINTS.len();
        assert!((55..=70).contains(&n), "{n}");
    }

    #[test]
    fn values_are_quantised_to_the_decimal_the_point_reports() {
        let level = &TANK_POINTS[0];
        assert_eq!(level.resolution(), 0.001);
        assert_eq!(level.quantise(2.513_4).to_bits(), 2.513f64.to_bits());
        assert_eq!(
            level.quantise(2.512_6).to_bits(),
            (2513.0 / 1000.0f64).to_bits()
        );
        assert_eq!(level.quantise(-0.000_1).to_bits(), 0.0f64.to_bits());
        assert!(level.quantise(f64::NAN).is_nan());
        let starts = &PUMP_POINTS[DeviceKind::Pump.point_index("starts").unwrap()];
        assert_eq!(starts.quantise(17.0), 17.0);
        for kind in [
            DeviceKind::Room,
            DeviceKind::Pump,
            DeviceKind::Tank,
            DeviceKind::Camera,
        ] {
            for p in kind.points() {
                assert!(p.decimals <= 3, "{kind}.{}", p.name);
                if p.kind != PointKind::Analog && p.kind != PointKind::Counter {
                    assert_eq!(p.decimals, 0, "{kind}.{} is an integer", p.name);
                }
            }
        }
    }

    #[test]
    fn transmitter_scaling_round_trips() {
        let spec = &ROOM_POINTS[DeviceKind::Room.point_index("outlet_pressure").unwrap()];
        assert_eq!(spec.milliamps(0.0), Some(4.0));
        assert_eq!(spec.milliamps(1.6), Some(20.0));
        assert!((spec.value_at_milliamps(12.0) - 0.8).abs() < 1e-12);
    }
}
