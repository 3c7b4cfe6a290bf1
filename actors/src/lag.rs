//! How far behind the node applies samples: the ingest lag that readiness and the
//! `cistern_ingest_apply_lag_seconds` gauge report.
//!
//! A loaded node applies every sample late, so the youngest sample applied lately is old; a
//! node that keeps up applies some fresh sample every second, however many gateways replay
//! their buffers after an outage. The lag is therefore the age of the youngest sample applied
//! over the last two windows (5 s each): a replaying gateway does not raise it, a node that
//! falls behind does. With nothing applied for two windows it is unknown (a quiet or
//! disconnected fleet is judged by the room and ingest checks, not by lag).

use cistern_schemas::Timestamp;
use std::sync::Mutex;
use std::time::Duration;

/// The length of one window.
const WINDOW: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Windows {
    /// Start of the current window.
    start: Option<Timestamp>,
    /// Youngest age applied in the current window and in the one before it.
    current: Option<Duration>,
    previous: Option<Duration>,
}

impl Windows {
    fn roll(&mut self, now: Timestamp) {
        match self.start {
            Some(s) if now.since(s) < WINDOW => {}
            Some(s) => {
                self.previous = if now.since(s) < WINDOW * 2 {
                    self.current
                } else {
                    None
                };
                self.current = None;
                self.start = Some(now);
            }
            None => self.start = Some(now),
        }
    }
}

/// The ingest lag of one node (see the module doc). Shared by every actor.
#[derive(Debug, Default)]
pub struct IngestLag {
    windows: Mutex<Windows>,
}

impl IngestLag {
    /// A sample stamped `t` became live at `now`.
    pub fn observe(&self, now: Timestamp, t: Timestamp) {
        let age = now.since(t);
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        w.roll(now);
        w.current = Some(w.current.map_or(age, |c| c.min(age)));
    }

    /// The lag at `now`, when samples were applied within the last two windows.
    pub fn lag(&self, now: Timestamp) -> Option<Duration> {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        w.roll(now);
        match (w.current, w.previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_763_700_000_000);

    fn at(ms: i64) -> Timestamp {
        Timestamp(T0.0 + ms)
    }

    #[test]
    fn the_lag_is_the_youngest_sample_lately_and_a_replay_does_not_raise_it() {
        let lag = IngestLag::default();
        assert_eq!(lag.lag(at(0)), None, "nothing applied yet");
        // Keeping up: samples 200 ms old; one gateway replays an hour-old buffer.
        for s in 0..10 {
            lag.observe(at(s * 1000), at(s * 1000 - 200));
            lag.observe(at(s * 1000), at(s * 1000 - 3_600_000));
        }
        assert_eq!(lag.lag(at(10_000)), Some(Duration::from_millis(200)));
        // Falling behind: every sample applied is 40 s old; within two windows it shows.
        for s in 10..22 {
            lag.observe(at(s * 1000), at(s * 1000 - 40_000));
        }
        assert_eq!(lag.lag(at(22_000)), Some(Duration::from_secs(40)));
        // Nothing applied for two windows: unknown.
        assert_eq!(lag.lag(at(40_000)), None);
    }
}
