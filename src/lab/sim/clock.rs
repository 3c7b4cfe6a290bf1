//! The local (Xiamen, UTC+8) calendar of a simulated instant.
//!
//! Demand, climate and maintenance visits follow the residents' day, not UTC, so the
//! simulator computes the local hour, day and weekday once per step and hands them to every
//! room.

use cistern_schemas::Timestamp;

/// Xiamen is UTC+8 all year (no daylight saving in China).
const UTC_OFFSET_S: i64 = 8 * 3600;
const DAY_S: i64 = 86_400;

/// A simulated instant as the residents see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LocalClock {
    /// Seconds since the Unix epoch (UTC), whole seconds.
    pub(crate) t_s: i64,
    /// Local calendar day number (days since 1970-01-01 local).
    pub(crate) day: i64,
    /// Local hour of the day, 0.0 ≤ hour < 24.0.
    pub(crate) hour: f64,
    /// Saturday or Sunday.
    pub(crate) weekend: bool,
}

impl LocalClock {
    pub(crate) fn at(t: Timestamp) -> Self {
        let t_s = t.as_millis().div_euclid(1000);
        let local = t_s + UTC_OFFSET_S;
        let day = local.div_euclid(DAY_S);
        let hour = local.rem_euclid(DAY_S) as f64 / 3600.0;
        // 1970-01-01 was a Thursday: with Monday = 0 it is weekday 3.
        let weekday = (day + 3).rem_euclid(7);
        Self {
            t_s,
            day,
            hour,
            weekend: weekday >= 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_is_utc_plus_eight() {
        // 2024-11-23 00:00:00 UTC = 08:00 local, a Saturday.
        let c = LocalClock::at(Timestamp(1_732_320_000_000));
        assert!((c.hour - 8.0).abs() < 1e-9);
        assert!(c.weekend);
        // 2024-11-25 16:30 UTC = Tuesday 00:30 local.
        let c = LocalClock::at(Timestamp(1_732_552_200_000));
        assert!((c.hour - 0.5).abs() < 1e-9);
        assert!(!c.weekend);
    }
}
