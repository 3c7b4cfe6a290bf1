//! Readiness (`/readyz`): a node is ready when its parts are — ingest (the MQTT
//! subscription is in place and every Modbus poller runs), the ingest lag (the samples being
//! applied are not further behind the node's clock than `[actors] max_ingest_lag`: a node
//! that keeps its subscription but applies everything 20-60 s late is not ready), the store
//! (the historian's writer runs, its writes succeed and its backlog fits in memory) and the
//! actors (every room of the inventory has a running actor). Liveness (`/healthz`) only says
//! the process answers.
//!
//! The verdict is a pure function of what each part reports ([`assess`]), so that its rules are
//! unit-tested; [`Readiness::check`] gathers the reports from the running node.

use cistern_actors::{ActorMetrics, Clock, FleetRegistry};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One part's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartReport {
    pub ready: bool,
    /// Why it is not ready, or what it is doing when it is.
    pub detail: String,
}

impl PartReport {
    fn ok(detail: impl Into<String>) -> Self {
        Self {
            ready: true,
            detail: detail.into(),
        }
    }

    fn not(detail: impl Into<String>) -> Self {
        Self {
            ready: false,
            detail: detail.into(),
        }
    }
}

/// The `/readyz` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    pub ready: bool,
    pub ingest: PartReport,
    pub ingest_lag: PartReport,
    pub store: PartReport,
    pub actors: PartReport,
    /// How far behind their source time samples are applied, in ms (none: no samples applied
    /// lately): the figure the operator console shows as an ingest backlog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_lag_ms: Option<u64>,
    /// The parts that are not ready, in order (`ingest`, `ingest_lag`, `store`, `actors`).
    pub not_ready: Vec<&'static str>,
}

/// What the parts say (the inputs of [`assess`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// None: the node has no MQTT ingest.
    pub mqtt_subscribed: Option<bool>,
    /// Modbus pollers started, and how many still run.
    pub pollers: usize,
    pub pollers_running: usize,
    /// None: the node keeps no history. Else the historian's verdict.
    pub store: Option<Result<(), String>>,
    /// Rooms of the inventory, rooms with a running actor.
    pub rooms: usize,
    pub rooms_running: i64,
    /// How far behind samples are applied (None: none applied lately), and the limit.
    pub ingest_lag: Option<Duration>,
    pub max_ingest_lag: Duration,
}

/// The verdict (see the module doc).
pub fn assess(o: &Observed) -> ReadinessReport {
    let ingest = match o.mqtt_subscribed {
        Some(false) => PartReport::not("MQTT: not subscribed to the broker (connecting)"),
        _ if o.pollers_running < o.pollers => PartReport::not(format!(
            "Modbus: {} of {} pollers have stopped",
            o.pollers - o.pollers_running,
            o.pollers
        )),
        Some(true) => PartReport::ok(format!(
            "MQTT subscribed; {} Modbus pollers running",
            o.pollers_running
        )),
        None if o.pollers == 0 => PartReport::not("no ingest source is configured"),
        None => PartReport::ok(format!("{} Modbus pollers running", o.pollers_running)),
    };
    let ingest_lag = match o.ingest_lag {
        None => PartReport::ok("no samples applied in the last 10 s"),
        Some(lag) if lag > o.max_ingest_lag => PartReport::not(format!(
            "samples are applied {:.1} s after their source time (limit {} s): ingest is behind",
            lag.as_secs_f64(),
            o.max_ingest_lag.as_secs_f64()
        )),
        Some(lag) => PartReport::ok(format!(
            "samples applied {:.1} s after their source time",
            lag.as_secs_f64()
        )),
    };
    let store = match &o.store {
        None => PartReport::ok("no history kept (samples are not stored)"),
        Some(Ok(())) => PartReport::ok("writer running, backlog in memory"),
        Some(Err(why)) => PartReport::not(why.clone()),
    };
    let actors = if o.rooms_running >= o.rooms as i64 {
        PartReport::ok(format!("{} room actors running", o.rooms))
    } else {
        PartReport::not(format!(
            "{} of {} room actors running (the fleet is starting or restarting)",
            o.rooms_running.max(0),
            o.rooms
        ))
    };
    let not_ready: Vec<&'static str> = [
        ("ingest", &ingest),
        ("ingest_lag", &ingest_lag),
        ("store", &store),
        ("actors", &actors),
    ]
    .into_iter()
    .filter(|(_, p)| !p.ready)
    .map(|(n, _)| n)
    .collect();
    ReadinessReport {
        ready: not_ready.is_empty(),
        ingest,
        ingest_lag,
        store,
        actors,
        ingest_lag_ms: o
            .ingest_lag
            .map(|lag| u64::try_from(lag.as_millis()).unwrap_or(u64::MAX)),
        not_ready,
    }
}

/// The running node's parts, as readiness reads them.
#[derive(Clone, Debug)]
pub struct Readiness {
    pub mqtt_subscribed: Option<watch::Receiver<bool>>,
    pub pollers: Vec<tokio::task::AbortHandle>,
    pub history: Option<Arc<crate::historian::Historian>>,
    pub registry: Arc<FleetRegistry>,
    pub actor_metrics: ActorMetrics,
    /// The node's clock (the one sample ages are measured on) and the lag limit.
    pub clock: Arc<dyn Clock>,
    pub max_ingest_lag: Duration,
}

impl Readiness {
    pub fn observe(&self) -> Observed {
        Observed {
            mqtt_subscribed: self.mqtt_subscribed.as_ref().map(|rx| *rx.borrow()),
            pollers: self.pollers.len(),
            pollers_running: self.pollers.iter().filter(|h| !h.is_finished()).count(),
            store: self.history.as_ref().map(|h| h.health()),
            rooms: self.registry.len(),
            rooms_running: self
                .actor_metrics
                .running
                .with_label_values(&["room"])
                .get(),
            ingest_lag: self.actor_metrics.lag.lag(self.clock.now()),
            max_ingest_lag: self.max_ingest_lag,
        }
    }

    pub fn check(&self) -> ReadinessReport {
        assess(&self.observe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> Observed {
        Observed {
            mqtt_subscribed: Some(true),
            pollers: 2,
            pollers_running: 2,
            store: Some(Ok(())),
            rooms: 10,
            rooms_running: 10,
            ingest_lag: Some(Duration::from_millis(300)),
            max_ingest_lag: Duration::from_secs(15),
        }
    }

    #[test]
    fn a_node_applying_samples_late_is_not_ready_for_ingest_lag() {
        let r = assess(&Observed {
            ingest_lag: Some(Duration::from_secs(40)),
            ..up()
        });
        assert!(!r.ready);
        assert_eq!(r.not_ready, vec!["ingest_lag"]);
        assert!(
            r.ingest_lag.detail.contains("40.0 s"),
            "{}",
            r.ingest_lag.detail
        );
        // The figure the console's header shows, in ms; none when nothing was applied lately.
        assert_eq!(r.ingest_lag_ms, Some(40_000));
        assert_eq!(
            assess(&Observed {
                ingest_lag: None,
                ..up()
            })
            .ingest_lag_ms,
            None
        );
        assert!(
            assess(&Observed {
                ingest_lag: None,
                ..up()
            })
            .ready
        );
        assert!(
            assess(&Observed {
                ingest_lag: Some(Duration::from_secs(15)),
                ..up()
            })
            .ready
        );
    }

    #[test]
    fn readiness_reads_the_lag_of_the_samples_the_actors_apply() {
        let metrics = ActorMetrics::unregistered().unwrap();
        let clock = cistern_actors::ManualClock::new(cistern_schemas::Timestamp(1_763_700_000_000));
        let now = clock.now();
        // Every sample applied in the last seconds is 30 s old.
        for s in 0..3 {
            metrics
                .lag
                .observe(None, now, now - Duration::from_secs(30 + s));
        }
        let lag = metrics.lag.lag(now);
        let r = assess(&Observed {
            ingest_lag: lag,
            ..up()
        });
        assert_eq!(r.not_ready, vec!["ingest_lag"], "{r:?}");
    }

    /// The 2,100-room demo: its MQTT stream a minute behind in the broker, its Modbus rooms
    /// polled fresh; `/readyz` said `ingest_lag_ms: 0` and the console showed no backlog.
    #[test]
    fn an_mqtt_backlog_shows_although_the_modbus_rooms_are_fresh() {
        use cistern_schemas::reading::IngestSource;
        let metrics = ActorMetrics::unregistered().unwrap();
        let clock = cistern_actors::ManualClock::new(cistern_schemas::Timestamp(1_763_700_000_000));
        let now = clock.now();
        for s in 0..3 {
            metrics.lag.observe(
                Some(IngestSource::Modbus),
                now,
                now - Duration::from_millis(50 + s),
            );
            metrics.lag.observe(
                Some(IngestSource::Mqtt),
                now,
                now - Duration::from_secs(57 + s),
            );
        }
        let r = assess(&Observed {
            ingest_lag: metrics.lag.lag(now),
            ..up()
        });
        assert_eq!(r.not_ready, vec!["ingest_lag"], "{r:?}");
        assert_eq!(r.ingest_lag_ms, Some(57_000));
    }

    #[test]
    fn ready_only_when_every_part_is() {
        let r = assess(&up());
        assert!(r.ready, "{r:?}");
        assert!(r.not_ready.is_empty());

        let r = assess(&Observed {
            mqtt_subscribed: Some(false),
            ..up()
        });
        assert_eq!(r.not_ready, vec!["ingest"]);
        assert!(r.ingest.detail.contains("MQTT"), "{}", r.ingest.detail);

        let r = assess(&Observed {
            pollers_running: 1,
            ..up()
        });
        assert_eq!(r.not_ready, vec!["ingest"]);
        assert!(r.ingest.detail.contains("1 of 2"), "{}", r.ingest.detail);

        let r = assess(&Observed {
            store: Some(Err("store seal failing: unavailable".into())),
            rooms_running: 3,
            ..up()
        });
        assert_eq!(r.not_ready, vec!["store", "actors"]);
        assert!(r.store.detail.contains("seal failing"));
        assert!(r.actors.detail.contains("3 of 10"), "{}", r.actors.detail);
    }

    #[test]
    fn a_node_without_history_or_mqtt_can_be_ready_but_not_without_any_ingest() {
        let r = assess(&Observed {
            mqtt_subscribed: None,
            store: None,
            ..up()
        });
        assert!(r.ready, "{r:?}");
        let r = assess(&Observed {
            mqtt_subscribed: None,
            pollers: 0,
            pollers_running: 0,
            ..up()
        });
        assert_eq!(r.not_ready, vec!["ingest"]);
    }
}
