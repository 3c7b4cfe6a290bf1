//! Ingest metrics. Labels are bounded: the source (`mqtt`, `modbus`, `simulator`) and the
//! rejection reason (a fixed set of labels from the codecs), never a device or point id.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Counters of the ingest pipeline.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    pub messages: IntCounterVec,
    pub points: IntCounterVec,
    pub rejected: IntCounterVec,
    pub backfill_lag: Histogram,
    pub queue_depth: IntGauge,
    pub unstored: IntCounter,
    /// MQTT connections the broker dropped (a broker restart, a network cut — or another
    /// client connecting with this node's client id: a takeover).
    pub mqtt_disconnects: IntCounter,
    /// Reconnections that found the persistent session gone.
    pub mqtt_sessions_lost: IntCounter,
}

impl IngestMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            messages: IntCounterVec::new(
                Opts::new(
                    "cistern_ingest_messages_total",
                    "Messages (batches) received, by source",
                ),
                &["source"],
            )?,
            points: IntCounterVec::new(
                Opts::new(
                    "cistern_ingest_points_total",
                    "Point values decoded and routed, by source",
                ),
                &["source"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "cistern_ingest_rejected_total",
                    "Inputs rejected, by source and reason (whole payloads and single values)",
                ),
                &["source", "reason"],
            )?,
            backfill_lag: Histogram::with_opts(
                HistogramOpts::new(
                    "cistern_ingest_lag_seconds",
                    "Age of a batch's newest record when it is routed (replays show here)",
                )
                .buckets(vec![
                    0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 60.0, 600.0, 3600.0, 86400.0,
                ]),
            )?,
            queue_depth: IntGauge::new(
                "cistern_ingest_mqtt_queue_depth",
                "MQTT publishes received but not yet decoded and routed",
            )?,
            unstored: IntCounter::new(
                "cistern_ingest_unstored_total",
                "Messages acknowledged although their samples were lost before the historian (an actor crashed applying them)",
            )?,
            mqtt_disconnects: IntCounter::new(
                "cistern_ingest_mqtt_disconnects_total",
                "MQTT connections of this node the broker dropped (broker restart, network cut, or another client taking this node's client id)",
            )?,
            mqtt_sessions_lost: IntCounter::new(
                "cistern_ingest_mqtt_sessions_lost_total",
                "Reconnections to the MQTT broker that found this node's persistent session gone (broker restarted without persistence, or taken over by a client with a clean session): messages queued for it may be lost",
            )?,
        };
        registry.register(Box::new(m.mqtt_disconnects.clone()))?;
        registry.register(Box::new(m.mqtt_sessions_lost.clone()))?;
        registry.register(Box::new(m.unstored.clone()))?;
        registry.register(Box::new(m.messages.clone()))?;
        registry.register(Box::new(m.points.clone()))?;
        registry.register(Box::new(m.rejected.clone()))?;
        registry.register(Box::new(m.backfill_lag.clone()))?;
        registry.register(Box::new(m.queue_depth.clone()))?;
        Ok(m)
    }
}
