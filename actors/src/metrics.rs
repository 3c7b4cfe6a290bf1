//! Metrics of the actor tree. Labels come from bounded sets only (device kind), never from
//! room or point ids.

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};
use std::sync::Arc;

/// Counters and gauges the actors update.
#[derive(Clone, Debug)]
pub struct ActorMetrics {
    pub restarts: IntCounterVec,
    pub running: IntGaugeVec,
    pub applied: IntCounter,
    pub duplicates: IntCounter,
    pub backfill: IntCounter,
    pub stale_transitions: IntCounter,
    /// Samples refused for a timestamp beyond the allowed clock skew, by device kind.
    pub future: IntCounterVec,
    /// How far behind samples are applied (read by readiness and the fleet gauges).
    pub lag: Arc<crate::lag::IngestLag>,
}

impl ActorMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered()?;
        registry.register(Box::new(m.restarts.clone()))?;
        registry.register(Box::new(m.running.clone()))?;
        registry.register(Box::new(m.applied.clone()))?;
        registry.register(Box::new(m.duplicates.clone()))?;
        registry.register(Box::new(m.backfill.clone()))?;
        registry.register(Box::new(m.stale_transitions.clone()))?;
        registry.register(Box::new(m.future.clone()))?;
        // Restarts and refusals from zero (a restart storm is a rate over them).
        for kind in ["room", "pump", "tank", "camera"] {
            m.restarts.with_label_values(&[kind]);
            m.future.with_label_values(&[kind]);
        }
        Ok(m)
    }

    /// Creates the metrics without registering them (tests, tools).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        Ok(Self {
            restarts: IntCounterVec::new(
                Opts::new(
                    "cistern_actor_restarts_total",
                    "Actor restarts after a panic, by kind",
                ),
                &["kind"],
            )?,
            running: IntGaugeVec::new(
                Opts::new("cistern_actor_running", "Running actors, by kind"),
                &["kind"],
            )?,
            applied: IntCounter::new(
                "cistern_ingest_samples_applied_total",
                "Samples that updated live state",
            )?,
            duplicates: IntCounter::new(
                "cistern_ingest_samples_duplicate_total",
                "Samples dropped as duplicates (same point and timestamp)",
            )?,
            backfill: IntCounter::new(
                "cistern_ingest_samples_backfill_total",
                "Samples older than live state, passed to the historian only",
            )?,
            stale_transitions: IntCounter::new(
                "cistern_actor_points_stale_total",
                "Points that turned stale for lack of updates",
            )?,
            future: IntCounterVec::new(
                Opts::new(
                    "cistern_ingest_future_samples_total",
                    "Samples refused because they are stamped beyond the allowed clock skew ahead of the node's clock (a gateway clock running fast), by device kind",
                ),
                &["kind"],
            )?,
            lag: Arc::default(),
        })
    }
}
