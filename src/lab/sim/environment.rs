//! The pump room's climate: temperature and relative humidity.
//!
//! Most Xiamen pump rooms are basements, so the climate is mild and lagged: a per-room mean of
//! 20-26 °C with a daily swing peaking mid-afternoon, a slow random wander, and the pumps'
//! motor heat (which also dries the air a little). Water on the floor raises the humidity.

use super::clock::LocalClock;
use super::noise::{lag_factor, OrnsteinUhlenbeck};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f64::consts::TAU;

/// Motor heat: °C of room warming per kW of pump input power, settled.
const HEAT_PER_KW_C: f64 = 0.05;
const HEAT_TAU_S: f64 = 1800.0;
/// Extra humidity with water on the floor, %RH.
const FLOODED_RH: f64 = 12.0;

#[derive(Clone, Debug)]
pub(crate) struct Environment {
    mean_c: f64,
    swing_c: f64,
    temperature_wander: OrnsteinUhlenbeck,
    motor_heat_c: f64,
    heat_rate: f64,
    humidity_mean: f64,
    humidity_wander: OrnsteinUhlenbeck,
    pub(crate) temperature_c: f64,
    pub(crate) humidity_pct: f64,
}

impl Environment {
    pub(crate) fn new(clock: &LocalClock, rng: &mut ChaCha8Rng) -> Self {
        let mut env = Self {
            mean_c: rng.random_range(20.0..26.0),
            swing_c: rng.random_range(0.8..2.5),
            temperature_wander: OrnsteinUhlenbeck::new(0.5, 2.0 * 3600.0, 1.0, rng),
            motor_heat_c: 0.0,
            heat_rate: lag_factor(1.0, HEAT_TAU_S),
            humidity_mean: rng.random_range(58.0..72.0),
            humidity_wander: OrnsteinUhlenbeck::new(3.0, 3.0 * 3600.0, 1.0, rng),
            temperature_c: 0.0,
            humidity_pct: 0.0,
        };
        env.update(clock, false);
        env
    }

    pub(crate) fn step(
        &mut self,
        clock: &LocalClock,
        pump_power_kw: f64,
        flooded: bool,
        rng: &mut ChaCha8Rng,
    ) {
        self.temperature_wander.step(rng);
        self.humidity_wander.step(rng);
        self.motor_heat_c += self.heat_rate * (HEAT_PER_KW_C * pump_power_kw - self.motor_heat_c);
        self.update(clock, flooded);
    }

    fn update(&mut self, clock: &LocalClock, flooded: bool) {
        let daily = self.swing_c * (TAU * (clock.hour - 15.0) / 24.0).cos();
        let warm = daily + self.temperature_wander.value() + self.motor_heat_c;
        self.temperature_c = (self.mean_c + warm).clamp(18.0, 30.0);
        let wet = if flooded { FLOODED_RH } else { 0.0 };
        self.humidity_pct = (self.humidity_mean - 2.0 * warm + self.humidity_wander.value() + wet)
            .clamp(50.0, 80.0 + wet);
    }
}
