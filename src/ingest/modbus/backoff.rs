//! Reconnection delays: exponential with jitter, so that a fleet of pollers that lost their
//! links together (a cellular outage, a gateway reboot) neither hammers the field nor comes
//! back in lockstep. Pure: the random draw is an argument, so the schedule is unit-tested.

use std::time::Duration;

/// Delays between reconnection attempts: `min`, doubling per consecutive failure up to `max`,
/// each drawn uniformly from the upper half of its step and never below `min`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            failures: 0,
        }
    }

    /// The delay before the next attempt; `unit_random` is a draw from `[0, 1)`.
    pub fn next_delay(&mut self, unit_random: f64) -> Duration {
        // 2^20 × min is beyond any sensible max; stopping there avoids overflow.
        let factor = 2u32.saturating_pow(self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        let step = self.min.saturating_mul(factor).min(self.max);
        let r = if unit_random.is_finite() {
            unit_random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        step.mul_f64(0.5 + 0.5 * r).clamp(self.min, self.max)
    }

    /// Forgets past failures (after a successful poll, not a mere connect: a device that
    /// accepts and then drops every connection must keep backing off).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(MS(500), MS(30_000));
        let top: Vec<_> = (0..9).map(|_| b.next_delay(1.0)).collect();
        assert_eq!(
            top,
            [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000].map(MS)
        );
        assert_eq!(b.failures(), 9);
        b.reset();
        assert_eq!(b.next_delay(1.0), MS(500));
    }

    #[test]
    fn jitter_stays_within_the_upper_half_and_the_bounds() {
        let mut b = Backoff::new(MS(500), MS(30_000));
        assert_eq!(b.next_delay(0.0), MS(500), "never below min");
        assert_eq!(b.next_delay(0.0), MS(500));
        assert_eq!(b.next_delay(0.5), MS(1500));
        for _ in 0..10 {
            b.next_delay(1.0);
        }
        assert_eq!(b.next_delay(0.0), MS(15_000), "spread at the cap too");
        assert_eq!(b.next_delay(f64::NAN), MS(15_000));
        assert_eq!(b.next_delay(7.0), MS(30_000));
    }

    #[test]
    fn a_max_below_min_is_min() {
        let mut b = Backoff::new(MS(500), MS(100));
        assert_eq!(b.next_delay(1.0), MS(500));
        assert_eq!(b.next_delay(1.0), MS(500));
    }
}
