//! The simulator's randomness: one independent random stream per room and purpose,
//! Ornstein-Uhlenbeck processes for quantities that wander slowly (demand noise, mains
//! pressure, pH, room climate), and stateless measurement noise.
//!
//! Streams are keyed by (seed, purpose, room index) so that a room's trajectory does not depend
//! on how many rooms exist, and so that the fleet generator and the physics never replay each
//! other's numbers when a caller passes them the same seed.
//!
//! Measurement noise is a hash of (room, second, channel) rather than a draw from the room's
//! stream: readings are taken through `&self` at whatever rate callers like, and drawing there
//! would make the physics depend on how often someone looks.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// What a random stream is used for; each purpose gets an unrelated key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Equipment and sites drawn by the fleet generator.
    Fleet,
    /// Exogenous physics: demand, mains, water quality, climate, visits.
    Physics,
    /// Fault parameters and fault-driven behaviour (a chattering contact's timing), kept apart so
    /// that injecting a fault never shifts the physics stream of the room.
    Faults,
    /// The key of the stateless measurement noise.
    Measurement,
    /// A room's position drawn again when the first draw fell in the sea.
    Position,
}

impl Stream {
    fn salt(self) -> u64 {
        match self {
            Stream::Fleet => 0x6a09_e667_f3bc_c908,
            Stream::Physics => 0xbb67_ae85_84ca_a73b,
            Stream::Faults => 0x3c6e_f372_fe94_f82b,
            Stream::Measurement => 0xa54f_f53a_5f1d_36f1,
            Stream::Position => 0x510e_527f_ade6_82d1,
        }
    }
}

/// The random stream of room `index` for `purpose`.
pub(crate) fn room_rng(seed: u64, purpose: Stream, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ purpose.salt());
    rng.set_stream(index as u64);
    rng
}

/// The key of a room's measurement noise.
pub(crate) fn measurement_key(seed: u64, index: usize) -> u64 {
    splitmix64(splitmix64(seed ^ Stream::Measurement.salt()) ^ index as u64)
}

/// A standard normal draw.
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// An Ornstein-Uhlenbeck process sampled every `step_s` seconds: mean zero, stationary standard
/// deviation `sigma`, correlation time `tau_s`. Exact discretisation, so the statistics do not
/// depend on the step.
#[derive(Clone, Debug)]
pub(crate) struct OrnsteinUhlenbeck {
    value: f64,
    decay: f64,
    kick: f64,
}

impl OrnsteinUhlenbeck {
    /// A process started from its stationary distribution.
    pub(crate) fn new(sigma: f64, tau_s: f64, step_s: f64, rng: &mut ChaCha8Rng) -> Self {
        let decay = (-step_s / tau_s.max(step_s)).exp();
        let kick = sigma * (1.0 - decay * decay).sqrt();
        Self {
            value: sigma * normal(rng),
            decay,
            kick,
        }
    }

    pub(crate) fn step(&mut self, rng: &mut ChaCha8Rng) -> f64 {
        self.value = self.decay * self.value + self.kick * normal(rng);
        self.value
    }

    pub(crate) fn value(&self) -> f64 {
        self.value
    }
}

/// A first-order lag factor: the fraction of the remaining gap closed in one step.
pub(crate) fn lag_factor(step_s: f64, tau_s: f64) -> f64 {
    1.0 - (-step_s / tau_s).exp()
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Approximately standard-normal measurement noise for `channel` of a room at second `t_s`:
/// the same arguments always give the same value. Irwin-Hall of four uniforms: bounded at
/// ±3.5 σ, which suits sensor noise (no absurd outliers).
pub(crate) fn measurement_noise(key: u64, t_s: i64, channel: u32) -> f64 {
    let h = splitmix64(key ^ splitmix64((t_s as u64) ^ (u64::from(channel) << 40)));
    let sum: f64 = (0..4)
        .map(|i| ((h >> (16 * i)) & 0xffff) as f64 / 65_536.0)
        .sum();
    (sum - 2.0) * 3.0_f64.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_of_purpose_and_room() {
        let a: u64 = room_rng(7, Stream::Physics, 0).random();
        let b: u64 = room_rng(7, Stream::Physics, 1).random();
        let c: u64 = room_rng(7, Stream::Faults, 0).random();
        let again: u64 = room_rng(7, Stream::Physics, 0).random();
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn measurement_noise_is_repeatable_and_roughly_standard() {
        let key = measurement_key(1, 2);
        assert_eq!(measurement_noise(key, 10, 3), measurement_noise(key, 10, 3));
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|t| measurement_noise(key, t, 5)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn ornstein_uhlenbeck_keeps_its_stationary_spread() {
        let mut rng = room_rng(3, Stream::Physics, 0);
        let mut ou = OrnsteinUhlenbeck::new(0.5, 60.0, 1.0, &mut rng);
        let n = 200_000;
        let mut sum_sq = 0.0;
        for _ in 0..n {
            sum_sq += ou.step(&mut rng).powi(2);
        }
        let sd = (sum_sq / n as f64).sqrt();
        assert!((sd - 0.5).abs() < 0.05, "{sd}");
    }
}
