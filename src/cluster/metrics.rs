//! The cluster's metrics (`cistern_cluster_*`). Labels are bounded: the reason of a shard move,
//! the result of a forwarded request.

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Counters and gauges of membership, claims, fencing and checkpoints.
#[derive(Clone, Debug)]
pub struct ClusterMetrics {
    pub shards_owned: IntGauge,
    pub members: IntGauge,
    pub etcd_up: IntGauge,
    pub lease_age: Gauge,
    pub lease_renewals: IntCounter,
    pub lease_failures: IntCounter,
    pub fencing_events: IntCounter,
    pub shard_moves: IntCounterVec,
    pub stale_writes_refused: IntCounter,
    pub checkpoint_writes: IntCounter,
    pub takeover: Histogram,
    /// REST requests sent on to the node that acts for their room, by result.
    pub forwarded: IntCounterVec,
}

impl ClusterMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            shards_owned: IntGauge::new(
                "cistern_cluster_shards_owned",
                "Shards this node holds a claim on and acts for",
            )?,
            members: IntGauge::new(
                "cistern_cluster_members",
                "Live members of the cluster as this node last read them",
            )?,
            etcd_up: IntGauge::new(
                "cistern_cluster_etcd_up",
                "1 while this node's last etcd request succeeded",
            )?,
            lease_age: Gauge::new(
                "cistern_cluster_lease_age_seconds",
                "Seconds since the node's last answered lease keep-alive was sent",
            )?,
            lease_renewals: IntCounter::new(
                "cistern_cluster_lease_renewals_total",
                "Lease keep-alives answered",
            )?,
            lease_failures: IntCounter::new(
                "cistern_cluster_lease_failures_total",
                "Lease keep-alives that failed or went unanswered",
            )?,
            fencing_events: IntCounter::new(
                "cistern_cluster_fencing_events_total",
                "Times this node stopped acting because its lease could expire or its claim was lost",
            )?,
            shard_moves: IntCounterVec::new(
                Opts::new(
                    "cistern_cluster_shard_moves_total",
                    "Shards this node acquired, released (planned moves) or lost by fencing",
                ),
                &["reason"],
            )?,
            stale_writes_refused: IntCounter::new(
                "cistern_cluster_stale_writes_refused_total",
                "Checkpoint writes refused because the shard's epoch had moved on",
            )?,
            checkpoint_writes: IntCounter::new(
                "cistern_cluster_checkpoint_writes_total",
                "Checkpoint transactions written to etcd",
            )?,
            takeover: Histogram::with_opts(
                HistogramOpts::new(
                    "cistern_cluster_takeover_seconds",
                    "From a shard's claim to its first sample applied on this node",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0]),
            )?,
            forwarded: IntCounterVec::new(
                Opts::new(
                    "cistern_cluster_forwarded_total",
                    "REST requests sent on to the node that acts for their room: ok (it answered), unreachable, refused (already forwarded once)",
                ),
                &["result"],
            )?,
        };
        registry.register(Box::new(m.shards_owned.clone()))?;
        registry.register(Box::new(m.members.clone()))?;
        registry.register(Box::new(m.etcd_up.clone()))?;
        registry.register(Box::new(m.lease_age.clone()))?;
        registry.register(Box::new(m.lease_renewals.clone()))?;
        registry.register(Box::new(m.lease_failures.clone()))?;
        registry.register(Box::new(m.fencing_events.clone()))?;
        registry.register(Box::new(m.shard_moves.clone()))?;
        registry.register(Box::new(m.stale_writes_refused.clone()))?;
        registry.register(Box::new(m.checkpoint_writes.clone()))?;
        registry.register(Box::new(m.takeover.clone()))?;
        registry.register(Box::new(m.forwarded.clone()))?;
        for result in ["ok", "unreachable", "refused"] {
            m.forwarded.with_label_values(&[result]);
        }
        for reason in ["acquired", "released", "fenced"] {
            m.shard_moves.with_label_values(&[reason]);
        }
        Ok(m)
    }
}
