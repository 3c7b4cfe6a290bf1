//! How far behind the node applies samples: the ingest lag that readiness, the console's
//! backlog badge (`/readyz` `ingest_lag_ms`) and the `cistern_ingest_apply_lag_seconds` gauge
//! report.
//!
//! A loaded node applies every sample late, so the youngest sample applied lately is old; a
//! node that keeps up applies some fresh sample every second, however many gateways replay
//! their buffers after an outage. The lag of one source (MQTT, Modbus, the simulator) is
//! therefore the age of the youngest sample applied from it over the last two windows (5 s
//! each): a replaying gateway, or one whose clock is slow, does not raise it; a source that
//! falls behind does. The node's lag is the largest over its sources: the sources have
//! backlogs of their own (the broker holds MQTT messages the node has not taken, while the
//! Modbus pollers read fresh values), and a youngest sample over all of them would hide a
//! backlog behind the source that keeps up — the 2,100-room demo, its MQTT stream a minute
//! behind, reported a lag of 0 from its fresh Modbus rooms. With nothing applied from a source
//! for two windows, that source does not count (a quiet or disconnected fleet is judged by the
//! room and ingest checks, not by lag).

use cistern_schemas::reading::IngestSource;
use cistern_schemas::Timestamp;
use std::sync::Mutex;
use std::time::Duration;

/// The length of one window.
const WINDOW: Duration = Duration::from_secs(5);

/// The sources measured apart: MQTT, Modbus, the simulator, and samples of no known source
/// (tests, tools).
const SOURCES: usize = 4;

fn slot(source: Option<IngestSource>) -> usize {
    match source {
        Some(IngestSource::Mqtt) => 0,
        Some(IngestSource::Modbus) => 1,
        Some(IngestSource::Simulator) => 2,
        None => 3,
    }
}

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

    fn lag(&mut self, now: Timestamp) -> Option<Duration> {
        self.roll(now);
        match (self.current, self.previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The ingest lag of one node (see the module doc). Shared by every actor.
#[derive(Debug, Default)]
pub struct IngestLag {
    windows: Mutex<[Windows; SOURCES]>,
}

impl IngestLag {
    /// A sample stamped `t`, from `source`, became live at `now`.
    pub fn observe(&self, source: Option<IngestSource>, now: Timestamp, t: Timestamp) {
        let age = now.since(t);
        let mut all = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = &mut all[slot(source)];
        w.roll(now);
        w.current = Some(w.current.map_or(age, |c| c.min(age)));
    }

    /// The lag at `now`: the largest over the sources that applied samples within the last
    /// two windows (none when none did).
    pub fn lag(&self, now: Timestamp) -> Option<Duration> {
        let mut all = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        all.iter_mut().filter_map(|w| w.lag(now)).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_763_700_000_000);

    const MQTT: Option<IngestSource> = Some(IngestSource::Mqtt);
    const MODBUS: Option<IngestSource> = Some(IngestSource::Modbus);

    fn at(ms: i64) -> Timestamp {
        Timestamp(T0.0 + ms)
    }

    #[test]
    fn the_lag_is_the_youngest_sample_lately_and_a_replay_does_not_raise_it() {
        let lag = IngestLag::default();
        assert_eq!(lag.lag(at(0)), None, "nothing applied yet");
        // Keeping up: samples 200 ms old; one gateway replays an hour-old buffer.
        for s in 0..10 {
            lag.observe(MQTT, at(s * 1000), at(s * 1000 - 200));
            lag.observe(MQTT, at(s * 1000), at(s * 1000 - 3_600_000));
        }
        assert_eq!(lag.lag(at(10_000)), Some(Duration::from_millis(200)));
        // Falling behind: every sample applied is 40 s old; within two windows it shows.
        for s in 10..22 {
            lag.observe(MQTT, at(s * 1000), at(s * 1000 - 40_000));
        }
        assert_eq!(lag.lag(at(22_000)), Some(Duration::from_secs(40)));
        // Nothing applied for two windows: unknown.
        assert_eq!(lag.lag(at(40_000)), None);
    }

    /// The 2,100-room demo: the broker held a minute of MQTT messages the node had not taken,
    /// while the Modbus rooms it polls were read fresh; the youngest sample over both sources
    /// said 0. The MQTT backlog is the lag.
    #[test]
    fn a_backlog_of_one_source_is_not_hidden_by_another_that_keeps_up() {
        let lag = IngestLag::default();
        for s in 0..10 {
            lag.observe(MODBUS, at(s * 1000), at(s * 1000 - 100));
            lag.observe(MQTT, at(s * 1000), at(s * 1000 - 57_000));
            // a gateway replaying its buffer after an outage is older still
            lag.observe(MQTT, at(s * 1000), at(s * 1000 - 3_600_000));
        }
        assert_eq!(lag.lag(at(10_000)), Some(Duration::from_secs(57)));
        // The MQTT stream caught up: the lag is the slower source's again.
        for s in 10..22 {
            lag.observe(MODBUS, at(s * 1000), at(s * 1000 - 100));
            lag.observe(MQTT, at(s * 1000), at(s * 1000 - 300));
        }
        assert_eq!(lag.lag(at(22_000)), Some(Duration::from_millis(300)));
        // MQTT falls silent (its broker is down: the ingest check says so): Modbus alone.
        for s in 22..40 {
            lag.observe(MODBUS, at(s * 1000), at(s * 1000 - 100));
        }
        assert_eq!(lag.lag(at(40_000)), Some(Duration::from_millis(100)));
    }
}
