//! The room's water-quality analyser: free chlorine, turbidity and pH at the booster outlet.
//!
//! Chlorine is physical: the municipal supply brings 0.6-0.9 mg/L (wandering slowly), each tank
//! mixes it in and lets it decay first-order with the water's age (k 0.05-0.1 /h), and the
//! outlet sees the flow-weighted mix of the tanks. Turbidity and pH are random processes around
//! per-room baselines. Quality faults are excursions: the analyser's value is pulled towards
//! the fault's level with a few minutes' time constant, and back once the fault ends (flushing
//! and dosing restore the water; modelling the operators' remedy would add nothing here).

use super::noise::{lag_factor, OrnsteinUhlenbeck};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How fast a quality excursion develops and recedes: a dosing failure or a dirty inflow shows at the outlet analyser within a minute or two.
const EXCURSION_TAU_S: f64 = 30.0;

/// A quality fault's pull on a reading.
#[derive(Clone, Debug, Default)]
struct Excursion {
    /// 0 = no effect, 1 = the reading is the fault level.
    blend: f64,
    level: f64,
}

impl Excursion {
    fn step(&mut self, target: Option<f64>, rate: f64) {
        match target {
            Some(level) => {
                self.level = level;
                self.blend += rate * (1.0 - self.blend);
            }
            None => self.blend -= rate * self.blend,
        }
    }

    fn apply(&self, base: f64) -> f64 {
        base + self.blend * (self.level - base)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct WaterQuality {
    inlet_chlorine_mean: f64,
    inlet_chlorine_wander: OrnsteinUhlenbeck,
    /// First-order chlorine decay in the tanks, 1/h.
    pub(crate) decay_per_h: f64,
    turbidity_base_ntu: f64,
    turbidity_wander: OrnsteinUhlenbeck,
    ph_mean: f64,
    ph_wander: OrnsteinUhlenbeck,
    chlorine_excursion: Excursion,
    turbidity_excursion: Excursion,
    excursion_rate: f64,
}

impl WaterQuality {
    pub(crate) fn new(rng: &mut ChaCha8Rng) -> Self {
        let inlet_chlorine_mean = rng.random_range(0.6..0.9);
        let decay_per_h = rng.random_range(0.05..0.1);
        let turbidity_base_ntu = rng.random_range(0.1..0.3);
        let ph_mean = rng.random_range(7.2..7.6);
        Self {
            inlet_chlorine_mean,
            inlet_chlorine_wander: OrnsteinUhlenbeck::new(0.04, 3.0 * 3600.0, 1.0, rng),
            decay_per_h,
            turbidity_base_ntu,
            turbidity_wander: OrnsteinUhlenbeck::new(0.15, 1200.0, 1.0, rng),
            ph_mean,
            ph_wander: OrnsteinUhlenbeck::new(0.08, 12.0 * 3600.0, 1.0, rng),
            chlorine_excursion: Excursion::default(),
            turbidity_excursion: Excursion::default(),
            excursion_rate: lag_factor(1.0, EXCURSION_TAU_S),
        }
    }

    /// Advances one second; `chlorine_fault` / `turbidity_fault` are the levels active faults
    /// pull towards.
    pub(crate) fn step(
        &mut self,
        chlorine_fault: Option<f64>,
        turbidity_fault: Option<f64>,
        rng: &mut ChaCha8Rng,
    ) {
        self.inlet_chlorine_wander.step(rng);
        self.turbidity_wander.step(rng);
        self.ph_wander.step(rng);
        self.chlorine_excursion
            .step(chlorine_fault, self.excursion_rate);
        self.turbidity_excursion
            .step(turbidity_fault, self.excursion_rate);
    }

    /// Free chlorine of the municipal water entering the tanks, mg/L.
    pub(crate) fn inlet_chlorine_mg_l(&self) -> f64 {
        (self.inlet_chlorine_mean + self.inlet_chlorine_wander.value()).clamp(0.3, 1.2)
    }

    /// What the analyser sees of the tanks' mixed chlorine.
    pub(crate) fn outlet_chlorine_mg_l(&self, tank_mix_mg_l: f64) -> f64 {
        self.chlorine_excursion.apply(tank_mix_mg_l).max(0.0)
    }

    pub(crate) fn turbidity_ntu(&self) -> f64 {
        let base = self.turbidity_base_ntu * self.turbidity_wander.value().exp();
        self.turbidity_excursion.apply(base).max(0.0)
    }

    pub(crate) fn ph(&self) -> f64 {
        (self.ph_mean + self.ph_wander.value()).clamp(6.9, 7.9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sim::noise::{room_rng, Stream};

    #[test]
    fn an_excursion_develops_and_recedes() {
        let mut rng = room_rng(1, Stream::Physics, 0);
        let mut q = WaterQuality::new(&mut rng);
        let normal = q.outlet_chlorine_mg_l(0.6);
        for _ in 0..900 {
            q.step(Some(0.03), Some(4.0), &mut rng);
        }
        assert!(q.outlet_chlorine_mg_l(0.6) < 0.06);
        assert!(q.turbidity_ntu() > 3.5);
        for _ in 0..1800 {
            q.step(None, None, &mut rng);
        }
        assert!((q.outlet_chlorine_mg_l(0.6) - normal).abs() < 0.01);
        assert!(q.turbidity_ntu() < 0.6);
    }
}
