//! The room's three-phase power meter: voltages, currents, power factor, active power and the
//! active and reactive energy registers.
//!
//! The load is the pumps' drives plus the room's auxiliaries (lighting, ventilation, dosing,
//! controls, cameras). The grid voltage wanders slowly around a per-room level near 380 V with
//! small fixed phase differences; currents follow P = √3·V·I·pf with a small phase imbalance.
//! The meter and the gateway sit on a UPS, so a mains failure reads as ~0 V rather than silence.

use super::noise::OrnsteinUhlenbeck;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug)]
pub(crate) struct PowerMeter {
    nominal_v: f64,
    grid_wander: OrnsteinUhlenbeck,
    phase_offset: [f64; 3],
    phase_imbalance: [f64; 3],
    auxiliary_kw: f64,
    /// The load at which the power factor is best (the pumps' combined rating).
    full_load_kw: f64,
    pub(crate) mains: bool,
    pub(crate) active_power_kw: f64,
    pub(crate) power_factor: f64,
    pub(crate) energy_kwh: f64,
    pub(crate) reactive_kvarh: f64,
}

impl PowerMeter {
    pub(crate) fn new(full_load_kw: f64, rng: &mut ChaCha8Rng) -> Self {
        let mut offset = || rng.random_range(-0.006..0.006);
        let phase_offset = [offset(), offset(), offset()];
        let mut imbalance = || rng.random_range(-0.02..0.02);
        let phase_imbalance = [imbalance(), imbalance(), imbalance()];
        let energy_kwh = rng.random_range(10_000.0..800_000.0);
        Self {
            nominal_v: rng.random_range(374.0..392.0),
            grid_wander: OrnsteinUhlenbeck::new(0.01, 3600.0, 1.0, rng),
            phase_offset,
            phase_imbalance,
            auxiliary_kw: rng.random_range(0.8..2.0),
            full_load_kw: full_load_kw.max(1.0),
            mains: true,
            active_power_kw: 0.0,
            power_factor: 0.85,
            energy_kwh,
            reactive_kvarh: energy_kwh * rng.random_range(0.5..0.65),
        }
    }

    /// Advances one second with the pumps drawing `pump_kw`.
    pub(crate) fn step(&mut self, mains: bool, pump_kw: f64, rng: &mut ChaCha8Rng) {
        self.grid_wander.step(rng);
        self.update(mains, pump_kw);
        let hours = 1.0 / 3600.0;
        self.energy_kwh += self.active_power_kw * hours;
        if self.mains {
            let reactive_kvar =
                self.active_power_kw * (1.0 - self.power_factor.powi(2)).sqrt() / self.power_factor;
            self.reactive_kvarh += reactive_kvar * hours;
        }
    }

    /// Sets the present load without advancing the registers.
    pub(crate) fn update(&mut self, mains: bool, pump_kw: f64) {
        self.mains = mains;
        if mains {
            self.active_power_kw = pump_kw + self.auxiliary_kw;
            let load = (self.active_power_kw / self.full_load_kw).min(1.0);
            self.power_factor = 0.83 + 0.06 * load;
        } else {
            self.active_power_kw = 0.0;
        }
    }

    /// Phase voltage (0 = A), V.
    pub(crate) fn voltage_v(&self, phase: usize) -> f64 {
        if !self.mains {
            return 0.0;
        }
        let offset = self.phase_offset.get(phase).copied().unwrap_or(0.0);
        self.nominal_v * (1.0 + self.grid_wander.value() + offset)
    }

    /// Phase current (0 = A), A.
    pub(crate) fn current_a(&self, phase: usize) -> f64 {
        if !self.mains {
            return 0.0;
        }
        let v = self.nominal_v * (1.0 + self.grid_wander.value());
        let balanced = self.active_power_kw * 1000.0 / (3.0_f64.sqrt() * v * self.power_factor);
        balanced * (1.0 + self.phase_imbalance.get(phase).copied().unwrap_or(0.0))
    }
}
