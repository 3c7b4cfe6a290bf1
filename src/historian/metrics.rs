//! Historian and store metrics (`cistern_store_*`). Labels are bounded: the operation and the
//! error kind, never a point.

use prometheus::{Gauge, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};
use prometheus::{Registry, Result};

/// Buckets of `cistern_store_durable_lag_seconds`: fine below a second (the live path), then
/// coarse up to two minutes; anything older is backfill.
pub const DURABLE_LAG_BUCKETS: [f64; 16] = [
    0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 10.0, 30.0, 120.0,
];

/// What the historian reports.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// Samples accepted but not yet in the store (pending, open and spilled).
    pub queue_depth: IntGauge,
    /// Bytes of write-ahead held on disk only (spilled out of memory), waiting to drain.
    pub spill_bytes: IntGauge,
    /// Bytes of the whole write-ahead log.
    pub wal_bytes: IntGauge,
    /// Samples written to the store by draining the spill.
    pub drained: IntCounter,
    /// Samples per second of the last drain batch.
    pub drain_rate: Gauge,
    /// Samples made durable (write-ahead committed).
    pub durable: IntCounter,
    /// Samples sealed into chunks in the store.
    pub sealed: IntCounter,
    /// Chunk bytes written to the store.
    pub chunk_bytes: IntCounter,
    /// Late samples merged into chunks already stored.
    pub merged: IntCounter,
    /// Store write latency by operation (`wal`: a flush; `seal`: one slice of a seal round;
    /// `drain`: a batch of the spill).
    pub write_seconds: prometheus::HistogramVec,
    /// Failed store writes by operation and error kind.
    pub write_errors: IntCounterVec,
    /// Receipts completed (the producer may acknowledge).
    pub receipts: IntCounter,
    /// Age of samples (wall clock minus sample time) when they became durable: the
    /// publish-to-durable latency of live data. Backfilled samples land in the top buckets.
    pub durable_lag: prometheus::Histogram,
    /// Chunk bytes per sealed sample since start.
    pub bytes_per_point: Gauge,
}

impl StoreMetrics {
    /// Creates the collectors (not registered: see [`StoreMetrics::register`]).
    pub fn new() -> Result<Self> {
        Ok(Self {
            queue_depth: IntGauge::new(
                "cistern_store_queue_depth_samples",
                "Samples accepted but not yet written to the store (in memory or spilled)",
            )?,
            spill_bytes: IntGauge::new(
                "cistern_store_spill_bytes",
                "Write-ahead bytes held on disk only, waiting for the store (store-and-forward)",
            )?,
            wal_bytes: IntGauge::new(
                "cistern_store_wal_bytes",
                "Bytes in the historian's write-ahead log",
            )?,
            drained: IntCounter::new(
                "cistern_store_drained_samples_total",
                "Samples written to the store from the disk spill",
            )?,
            drain_rate: Gauge::new(
                "cistern_store_drain_rate_samples_per_second",
                "Samples per second of the last spill drain batch (0 when nothing drains)",
            )?,
            durable: IntCounter::new(
                "cistern_store_durable_samples_total",
                "Samples made durable in the write-ahead log",
            )?,
            sealed: IntCounter::new(
                "cistern_store_sealed_samples_total",
                "Samples sealed into compressed chunks in the store",
            )?,
            chunk_bytes: IntCounter::new(
                "cistern_store_chunk_bytes_total",
                "Bytes of compressed chunks written to the store (with sealed samples: bytes per point)",
            )?,
            merged: IntCounter::new(
                "cistern_store_late_samples_total",
                "Late samples merged into chunks already in the store",
            )?,
            write_seconds: prometheus::HistogramVec::new(
                HistogramOpts::new(
                    "cistern_store_write_seconds",
                    "Store write latency by operation (wal: a flush, seal: a slice of a seal round, drain: a spill batch)",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["op"],
            )?,
            write_errors: IntCounterVec::new(
                Opts::new(
                    "cistern_store_write_errors_total",
                    "Failed store writes by operation and error kind (retried)",
                ),
                &["op", "kind"],
            )?,
            receipts: IntCounter::new(
                "cistern_store_receipts_total",
                "Batches whose samples became durable and whose producer may acknowledge them",
            )?,
            durable_lag: prometheus::Histogram::with_opts(
                HistogramOpts::new(
                    "cistern_store_durable_lag_seconds",
                    "Sample age when it became durable (wall clock minus sample time; one in \
                     eight samples observed); backfilled samples land above 120 s",
                )
                .buckets(DURABLE_LAG_BUCKETS.to_vec()),
            )?,
            bytes_per_point: Gauge::new(
                "cistern_store_chunk_bytes_per_point",
                "Compressed chunk bytes per sealed sample since start (chunk bytes / sealed samples)",
            )?,
        })
    }

    /// Registers every collector in `registry`.
    pub fn register(&self, registry: &Registry) -> Result<()> {
        registry.register(Box::new(self.queue_depth.clone()))?;
        registry.register(Box::new(self.spill_bytes.clone()))?;
        registry.register(Box::new(self.wal_bytes.clone()))?;
        registry.register(Box::new(self.drained.clone()))?;
        registry.register(Box::new(self.drain_rate.clone()))?;
        registry.register(Box::new(self.durable.clone()))?;
        registry.register(Box::new(self.sealed.clone()))?;
        registry.register(Box::new(self.chunk_bytes.clone()))?;
        registry.register(Box::new(self.merged.clone()))?;
        registry.register(Box::new(self.write_seconds.clone()))?;
        registry.register(Box::new(self.write_errors.clone()))?;
        registry.register(Box::new(self.receipts.clone()))?;
        registry.register(Box::new(self.durable_lag.clone()))?;
        registry.register(Box::new(self.bytes_per_point.clone()))?;
        // Errors from zero, by every operation and error kind there is.
        for op in ["wal", "seal", "drain"] {
            for kind in ["unavailable", "io", "corrupt", "invalid"] {
                self.write_errors.with_label_values(&[op, kind]);
            }
        }
        Ok(())
    }

    pub(crate) fn timer(&self, op: &str) -> prometheus::HistogramTimer {
        self.write_seconds.with_label_values(&[op]).start_timer()
    }
}
