//! What a room's instruments read: the physics state turned into one value per catalog point,
//! with sensor noise, scaling artefacts and sensor faults, at the resolution each point reports
//! with (a register scaled ×10, ×100, ×1000: the catalog's `decimals`), as real instruments do.
//!
//! The catalog ([`DeviceKind::points`]) fixes the order; the index constants below name the
//! positions this module writes, and a test checks them against the catalog's names so a
//! reordered catalog fails loudly instead of shifting values silently. Noise is the stateless
//! measurement noise of [`super::noise`], so a reading is a pure function of the state and the
//! instant.

use super::noise::measurement_noise;
use super::room::RoomSim;
use cistern_schemas::catalog::PointSpec;
use cistern_schemas::ids::DeviceUnit;
use cistern_schemas::reading::RoomReading;
use cistern_schemas::{DeviceKind, Timestamp};

/// Positions in the room catalog.
pub(crate) mod room_point {
    pub(crate) const VOLTAGE_A: usize = 0;
    pub(crate) const CURRENT_A: usize = 3;
    pub(crate) const POWER_FACTOR: usize = 6;
    pub(crate) const ACTIVE_POWER: usize = 7;
    pub(crate) const ENERGY: usize = 8;
    pub(crate) const REACTIVE_ENERGY: usize = 9;
    pub(crate) const MAINS: usize = 10;
    pub(crate) const INLET_PRESSURE: usize = 11;
    pub(crate) const OUTLET_PRESSURE: usize = 12;
    pub(crate) const OUTLET_SETPOINT: usize = 13;
    pub(crate) const OUTLET_FLOW: usize = 14;
    pub(crate) const OUTLET_VOLUME: usize = 15;
    pub(crate) const INLET_FLOW: usize = 16;
    pub(crate) const INLET_VOLUME: usize = 17;
    pub(crate) const TURBIDITY: usize = 18;
    pub(crate) const CHLORINE: usize = 19;
    pub(crate) const PH: usize = 20;
    pub(crate) const TEMPERATURE: usize = 21;
    pub(crate) const HUMIDITY: usize = 22;
    pub(crate) const FLOODING: usize = 23;
    pub(crate) const SMOKE: usize = 24;
    pub(crate) const DOOR: usize = 25;
    pub(crate) const INTRUSION: usize = 26;
    pub(crate) const ARMED: usize = 27;
    pub(crate) const ACCESS: usize = 28;
    pub(crate) const SIREN: usize = 29;
}

/// Positions in the pump catalog.
pub(crate) mod pump_point {
    pub(crate) const RUNNING: usize = 0;
    pub(crate) const FAULT: usize = 1;
    pub(crate) const FREQUENCY: usize = 2;
    pub(crate) const CURRENT: usize = 3;
    pub(crate) const POWER: usize = 4;
    pub(crate) const RUN_HOURS: usize = 5;
    pub(crate) const STARTS: usize = 6;
    pub(crate) const DUTY: usize = 7;
}

/// Positions in the tank catalog.
pub(crate) mod tank_point {
    pub(crate) const LEVEL: usize = 0;
    pub(crate) const INLET_VALVE: usize = 1;
    pub(crate) const OVERFLOW: usize = 2;
    pub(crate) const LOW_LOW: usize = 3;
    pub(crate) const FILL_MODE: usize = 4;
}

/// Positions in the camera catalog.
pub(crate) mod camera_point {
    pub(crate) const ONLINE: usize = 0;
    pub(crate) const RECORDING: usize = 1;
    pub(crate) const MOTION: usize = 2;
}

/// Flow meters report zero below this (their low-flow cut-off), m³/h.
const LOW_FLOW_CUTOFF_M3H: f64 = 0.1;

fn digital(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}

/// A device's value vector being filled in catalog order, each value as its instrument
/// reports it: rounded to the point's resolution ([`PointSpec::quantise`]).
struct Values {
    specs: &'static [PointSpec],
    values: Vec<f64>,
    noise_key: u64,
    t_s: i64,
    device: u32,
}

impl Values {
    fn new(kind: DeviceKind, noise_key: u64, t_s: i64, device: usize) -> Self {
        Self {
            specs: kind.points(),
            values: vec![f64::NAN; kind.points().len()],
            noise_key,
            t_s,
            device: device as u32,
        }
    }

    fn set(&mut self, index: usize, value: f64) {
        if let (Some(slot), Some(spec)) = (self.values.get_mut(index), self.specs.get(index)) {
            *slot = spec.quantise(value);
        }
    }

    /// Sets `value` plus Gaussian noise of `sigma` (each point has its own noise channel).
    fn measure(&mut self, index: usize, value: f64, sigma: f64) {
        let channel = (self.device << 8) | index as u32;
        let noise = measurement_noise(self.noise_key, self.t_s, channel);
        self.set(index, value + sigma * noise);
    }

    /// A flow meter: relative noise, never negative, zero below the cut-off.
    fn measure_flow(&mut self, index: usize, flow_m3h: f64) {
        if flow_m3h < LOW_FLOW_CUTOFF_M3H {
            self.set(index, 0.0);
        } else {
            self.measure(index, flow_m3h, 0.005 * flow_m3h + 0.02);
            if let Some(v) = self.values.get_mut(index) {
                *v = v.max(0.0);
            }
        }
    }
}

impl RoomSim {
    /// The room's reading at `t`.
    pub(crate) fn reading(&self, t: Timestamp) -> RoomReading {
        let t_s = t.as_millis().div_euclid(1000);
        let devices = self
            .units
            .iter()
            .enumerate()
            .map(|(ordinal, &unit)| {
                let mut v = Values::new(unit.kind(), self.noise_key, t_s, ordinal);
                match unit {
                    DeviceUnit::Room => self.room_values(&mut v, t_s),
                    DeviceUnit::Pump(n) => self.pump_values(&mut v, usize::from(n) - 1),
                    DeviceUnit::Tank(n) => self.tank_values(&mut v, usize::from(n) - 1),
                    DeviceUnit::Camera(_) => self.camera_values(&mut v, t_s),
                }
                (unit, v.values)
            })
            .collect();
        RoomReading {
            room: self.id.clone(),
            t,
            devices,
        }
    }

    /// What the outlet pressure transmitter reads at `t` if it is healthy.
    pub(crate) fn measured_outlet_pressure(&self, t: Timestamp) -> f64 {
        let t_s = t.as_millis().div_euclid(1000);
        let mut v = Values::new(DeviceKind::Room, self.noise_key, t_s, 0);
        v.measure(
            room_point::OUTLET_PRESSURE,
            self.outlet_pressure_mpa(),
            0.002,
        );
        v.values
            .get(room_point::OUTLET_PRESSURE)
            .copied()
            .unwrap_or(f64::NAN)
    }

    fn room_values(&self, v: &mut Values, t_s: i64) {
        use room_point::*;
        let m = &self.meter;
        for phase in 0..3 {
            if m.mains {
                v.measure(VOLTAGE_A + phase, m.voltage_v(phase), 0.8);
                let i = m.current_a(phase);
                v.measure(CURRENT_A + phase, i, 0.005 * i);
            } else {
                // The meter still sees a little induced voltage on dead lines.
                let residual = measurement_noise(self.noise_key, t_s, 900 + phase as u32).abs();
                v.set(VOLTAGE_A + phase, residual);
                v.set(CURRENT_A + phase, 0.0);
            }
        }
        if m.mains {
            v.measure(POWER_FACTOR, m.power_factor, 0.003);
            v.measure(ACTIVE_POWER, m.active_power_kw, 0.005 * m.active_power_kw);
        } else {
            // No current, no phase angle: the meter cannot tell a power factor.
            v.set(POWER_FACTOR, f64::NAN);
            v.set(ACTIVE_POWER, 0.0);
        }
        v.set(ENERGY, m.energy_kwh);
        v.set(REACTIVE_ENERGY, m.reactive_kvarh);
        v.set(MAINS, digital(m.mains));

        v.measure(INLET_PRESSURE, self.inlet_pressure_mpa, 0.002);
        let outlet = if self.effects.failed_outlet_pressure {
            self.failed_outlet_pressure
        } else if let Some(frozen) = self.effects.frozen_outlet_pressure {
            frozen
        } else {
            self.measured_outlet_pressure(Timestamp(t_s * 1000))
        };
        v.set(OUTLET_PRESSURE, outlet);
        v.set(OUTLET_SETPOINT, self.setpoint_mpa);
        v.measure_flow(OUTLET_FLOW, self.served_m3h);
        v.set(OUTLET_VOLUME, self.outlet_volume_m3);
        v.measure_flow(INLET_FLOW, self.inlet_flow_m3h);
        v.set(INLET_VOLUME, self.inlet_volume_m3);

        v.measure(TURBIDITY, self.quality.turbidity_ntu(), 0.01);
        v.measure(
            CHLORINE,
            self.quality.outlet_chlorine_mg_l(self.tank_chlorine_mg_l),
            0.005,
        );
        v.measure(PH, self.quality.ph(), 0.01);
        for index in [TURBIDITY, CHLORINE] {
            if let Some(x) = v.values.get_mut(index) {
                *x = x.max(0.0);
            }
        }
        v.measure(TEMPERATURE, self.climate.temperature_c, 0.05);
        v.measure(HUMIDITY, self.climate.humidity_pct, 0.3);
        v.set(FLOODING, digital(self.effects.flooding));
        v.set(SMOKE, digital(self.effects.smoke));

        let s = self.security.state(t_s, &self.effects);
        v.set(DOOR, digital(s.door));
        v.set(INTRUSION, digital(s.intrusion));
        v.set(ARMED, digital(s.armed));
        v.set(ACCESS, s.access);
        v.set(SIREN, digital(s.siren));
    }

    fn pump_values(&self, v: &mut Values, i: usize) {
        use pump_point::*;
        let Some(p) = self.booster.pumps.get(i) else {
            return;
        };
        v.set(RUNNING, digital(p.running));
        v.set(FAULT, digital(p.tripped));
        if p.running {
            v.measure(FREQUENCY, self.booster.frequency_hz(i), 0.02);
            v.measure(CURRENT, p.current_a(), 0.005 * p.current_a());
            v.measure(POWER, p.power_kw, 0.005 * p.power_kw);
        } else {
            v.set(FREQUENCY, 0.0);
            v.set(CURRENT, 0.0);
            v.set(POWER, 0.0);
        }
        v.set(RUN_HOURS, p.run_hours);
        v.set(STARTS, p.starts);
        v.set(DUTY, digital(self.booster.duty == i));
    }

    fn tank_values(&self, v: &mut Values, i: usize) {
        use tank_point::*;
        let Some(t) = self.tanks.get(i) else { return };
        v.measure(LEVEL, t.level_m(), 0.003);
        v.set(INLET_VALVE, digital(t.valve_open));
        v.set(OVERFLOW, digital(t.overflowing()));
        v.set(LOW_LOW, digital(t.low_low()));
        v.set(FILL_MODE, t.mode.code());
    }

    fn camera_values(&self, v: &mut Values, t_s: i64) {
        use camera_point::*;
        // Cameras and the NVR are not on the UPS: a mains failure takes them offline.
        let powered = !self.effects.mains_lost;
        v.set(ONLINE, digital(powered));
        v.set(RECORDING, digital(powered));
        if powered {
            v.set(
                MOTION,
                digital(self.security.state(t_s, &self.effects).motion),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_constants_match_the_catalog() {
        let check = |kind: DeviceKind, pairs: &[(usize, &str)]| {
            for &(index, name) in pairs {
                assert_eq!(kind.point_index(name), Some(index), "{kind}.{name}");
            }
        };
        use room_point::*;
        check(
            DeviceKind::Room,
            &[
                (VOLTAGE_A, "voltage_a"),
                (VOLTAGE_A + 1, "voltage_b"),
                (VOLTAGE_A + 2, "voltage_c"),
                (CURRENT_A, "current_a"),
                (CURRENT_A + 1, "current_b"),
                (CURRENT_A + 2, "current_c"),
                (POWER_FACTOR, "power_factor"),
                (ACTIVE_POWER, "active_power"),
                (ENERGY, "energy"),
                (REACTIVE_ENERGY, "reactive_energy"),
                (MAINS, "mains"),
                (INLET_PRESSURE, "inlet_pressure"),
                (OUTLET_PRESSURE, "outlet_pressure"),
                (OUTLET_SETPOINT, "outlet_setpoint"),
                (OUTLET_FLOW, "outlet_flow"),
                (OUTLET_VOLUME, "outlet_volume"),
                (INLET_FLOW, "inlet_flow"),
                (INLET_VOLUME, "inlet_volume"),
                (TURBIDITY, "turbidity"),
                (CHLORINE, "chlorine"),
                (PH, "ph"),
                (TEMPERATURE, "temperature"),
                (HUMIDITY, "humidity"),
                (FLOODING, "flooding"),
                (SMOKE, "smoke"),
                (DOOR, "door"),
                (INTRUSION, "intrusion"),
                (ARMED, "armed"),
                (ACCESS, "access"),
                (SIREN, "siren"),
            ],
        );
        assert_eq!(
            DeviceKind::Room.points().len(),
            SIREN + 1,
            "every room point is written"
        );
        use pump_point::*;
        check(
            DeviceKind::Pump,
            &[
                (RUNNING, "running"),
                (FAULT, "fault"),
                (FREQUENCY, "frequency"),
                (CURRENT, "current"),
                (POWER, "power"),
                (RUN_HOURS, "run_hours"),
                (STARTS, "starts"),
                (DUTY, "duty"),
            ],
        );
        assert_eq!(DeviceKind::Pump.points().len(), DUTY + 1);
        use tank_point::*;
        check(
            DeviceKind::Tank,
            &[
                (LEVEL, "level"),
                (INLET_VALVE, "inlet_valve"),
                (OVERFLOW, "overflow"),
                (LOW_LOW, "low_low"),
                (FILL_MODE, "fill_mode"),
            ],
        );
        assert_eq!(DeviceKind::Tank.points().len(), FILL_MODE + 1);
        use camera_point::*;
        check(
            DeviceKind::Camera,
            &[
                (ONLINE, "online"),
                (RECORDING, "recording"),
                (MOTION, "motion"),
            ],
        );
        assert_eq!(DeviceKind::Camera.points().len(), MOTION + 1);
    }
}
