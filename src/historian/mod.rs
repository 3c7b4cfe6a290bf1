//! The historian: every sample the actors accept, durable within `flush_every` (default
//! 250 ms), sealed into compressed chunks in the store, and queryable by point and time range.
//!
//! The actors hand samples over through the [`SampleSink`] port without ever waiting: the
//! handover is a channel to a writer thread of its own ([`writer`]). A handover is one device's
//! batch — the [`DeviceId`] once, then `(point index, t, value)` per sample: no string and no
//! allocation per sample. With the samples comes the batch's [`Receipt`]: the writer completes
//! it once the samples are durable, and only then does the MQTT ingest acknowledge the message
//! to the broker — so a `kill -9` at any moment loses nothing the broker was told is safe.
//!
//! - Every `flush_every` the writer commits what arrived as one write-ahead blob ([`Wal`]:
//!   one insert however many samples — 66,000 per-sample rows a second cost far too much at
//!   fleet scale; [`blob`]: the device id once per batch), then adds the samples to the open
//!   buffers in memory, by device and point index ([`buffers`]).
//! - Every `seal_every` (2 min; sooner past `seal_samples`) a seal round starts: the open
//!   buffers become the sealing ones, which are written to the store a slice of at most
//!   `seal_slice_samples` at a time, with flushes in between (a rolling seal: durability, and
//!   so the MQTT acknowledgements, never wait for more than one slice). When the round is
//!   over, the blobs it came from are dropped.
//! - When the store fails, samples stay in the write-ahead and in memory; past
//!   `max_open_samples` they are dropped from memory and stay on disk only (the spill). When
//!   the store is back, the spill drains oldest first, in batches, while supervision and
//!   ingest carry on. `cistern_store_queue_depth_samples`, `cistern_store_spill_bytes` and
//!   `cistern_store_drain_rate_samples_per_second` show it.
//! - At start-up the write-ahead is read back (as far as memory allows; the rest is a spill).
//!   Blobs of the previous format (a point id per sample) are still read.
//! - Queries merge the store's chunks with the samples in memory (sealing and open), which
//!   are durable.

mod blob;
mod buffers;
pub mod compact;
mod config;
pub mod metrics;
pub mod rollup;
mod writer;

use crate::store::wal::Wal;
use crate::store::{Series, Store, StoreError};
use buffers::{Buffers, IndexedSample};
use cistern_actors::ports::{Arrival, SampleSink};
use cistern_actors::Receipt;
use cistern_schemas::chunk;
use cistern_schemas::reading::Record;
use cistern_schemas::{DeviceId, PointId, Timestamp};
pub use config::{HistorianSection, HistorianSectionError};
pub use metrics::StoreMetrics;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How the historian writes.
#[derive(Clone, Debug)]
pub struct HistorianConfig {
    /// Samples are durable this long after they are accepted, at the latest (and MQTT
    /// messages are acknowledged then).
    pub flush_every: Duration,
    /// A seal round starts this often...
    pub seal_every: Duration,
    /// ...or as soon as this many samples are open. Each round writes one chunk per point
    /// that has samples, so rounds that come early on this count make more and smaller
    /// chunks: at ten times the fleet (1.4 M points, 680,000 samples/s) a 10 M trigger meant a
    /// round every 15 s of ~7 samples a chunk, and the store's inserts, not the samples, bound
    /// the seal. 60 M (about 1 GiB of open samples) keeps 2-minute rounds up to ~500,000
    /// samples/s and ~90-second rounds at ten times the fleet.
    pub seal_samples: usize,
    /// A seal round writes this many samples (whole devices, at least one) per slice, with
    /// flushes in between: the longest a flush waits for the seal is one slice.
    pub seal_slice_samples: usize,
    /// Past this many open samples (the store is down or slow), they are dropped from memory
    /// and wait on disk. 16 bytes a sample: 150 M is about 2.4 GiB.
    pub max_open_samples: usize,
    /// Write-ahead bytes read per drain batch.
    pub drain_batch_bytes: u64,
    /// Chunks per store write.
    pub chunks_per_write: usize,
    /// Compaction, rollups and retention (`None`: none, the raw chunks stay as sealed).
    pub compaction: Option<compact::CompactionConfig>,
}

impl Default for HistorianConfig {
    fn default() -> Self {
        Self {
            flush_every: Duration::from_millis(250),
            seal_every: Duration::from_secs(120),
            seal_samples: 60_000_000,
            seal_slice_samples: 200_000,
            max_open_samples: 150_000_000,
            drain_batch_bytes: 32 << 20,
            chunks_per_write: 50_000,
            compaction: None,
        }
    }
}

/// The historian (see the module doc).
#[derive(Debug)]
pub struct Historian {
    tx: Mutex<Option<mpsc::Sender<writer::Handover>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    buffers: Arc<Mutex<Buffers>>,
    store: Arc<dyn Store>,
    metrics: StoreMetrics,
    compactor: Option<compact::CompactorHandle>,
    health: Arc<WriterHealth>,
    max_open_samples: usize,
    /// The write-ahead's database, for a backup's consistent copy (`crate::backup`).
    wal_db: Arc<redb::Database>,
}

/// The writer's failing operations (`wal`, `seal`, `drain`) and their last error, for
/// readiness; an operation leaves it when it next succeeds.
#[derive(Debug, Default)]
pub struct WriterHealth {
    failing: Mutex<Vec<(String, String)>>,
}

impl WriterHealth {
    fn set_failing(&self, op: &str, error: &StoreError) {
        let mut f = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        f.retain(|(o, _)| o != op);
        f.push((op.to_owned(), error.to_string()));
    }

    fn clear(&self, op: &str) {
        let mut f = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        f.retain(|(o, _)| o != op);
    }

    /// The failing operations, as one line; none when every write succeeds.
    fn failing(&self) -> Option<String> {
        let f = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        (!f.is_empty()).then(|| {
            f.iter()
                .map(|(op, e)| format!("store {op} failing: {e}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

fn lock(buffers: &Mutex<Buffers>) -> MutexGuard<'_, Buffers> {
    // The writer never leaves the buffers half-updated on a panic path worth refusing to read.
    buffers.lock().unwrap_or_else(|p| p.into_inner())
}

impl Historian {
    /// Starts the writer thread, after reading the write-ahead in `wal_dir` back. Store calls
    /// run on `io` (a runtime of the caller's, which must outlive the historian).
    pub fn start(
        store: Arc<dyn Store>,
        wal_dir: &Path,
        config: HistorianConfig,
        io: tokio::runtime::Handle,
    ) -> Result<Self, StoreError> {
        let metrics =
            StoreMetrics::new().map_err(|e| StoreError::Invalid(format!("metrics: {e}")))?;
        let wal = Wal::open(wal_dir)?;
        let wal_db = wal.database();
        let mut buffers = Buffers::default();
        let mut blob_samples = BTreeMap::new();
        let mut open_samples = 0;
        let next_seq = wal.last_seq().map_or(0, |s| s + 1);
        // Read the log back newest first, as far as memory allows: older blobs stay spilled.
        let mut open_from = next_seq;
        let mut seq = next_seq;
        // Once a blob does not fit, older ones must not either: the blobs in memory are a
        // contiguous newest run (everything below `open_from` is spilled).
        let mut full = false;
        while let Some(first) = wal.first_seq().filter(|f| *f < seq) {
            let from = seq.saturating_sub(64).max(first);
            let blobs = wal.read(from, u64::MAX)?;
            let mut took = false;
            for (s, bytes) in blobs.iter().rev().filter(|(s, _)| *s < seq) {
                let blocks = match blob::decode(bytes) {
                    Ok(blocks) => blocks,
                    Err(what) => {
                        tracing::error!(
                            seq = s,
                            what,
                            "historian: unreadable write-ahead blob skipped"
                        );
                        Vec::new()
                    }
                };
                let samples: usize = blocks.iter().map(|b| b.samples.len()).sum();
                if open_samples + samples > config.max_open_samples {
                    full = true;
                    break;
                }
                for block in blocks {
                    open_samples += buffers.add_open(&block.device, &block.samples);
                }
                blob_samples.insert(*s, (samples as u64, bytes.len() as u64));
                open_from = *s;
                took = true;
            }
            if full || !took || from == first {
                break;
            }
            seq = from;
        }
        tracing::info!(
            blobs = wal.len(),
            bytes = wal.bytes(),
            samples = open_samples,
            spilled_blobs = wal.first_seq().map_or(0, |f| open_from.saturating_sub(f)),
            "historian: write-ahead read back"
        );
        let buffers = Arc::new(Mutex::new(buffers));
        let (hook, compactor) = match config.compaction.clone() {
            Some(c) => {
                let (hook, handle) = compact::spawn(store.clone(), io.clone(), c)?;
                (Some(hook), Some(handle))
            }
            None => (None, None),
        };
        let (tx, rx) = mpsc::channel();
        let health = Arc::new(WriterHealth::default());
        let max_open_samples = config.max_open_samples;
        let writer = writer::Writer {
            store: store.clone(),
            wal,
            io,
            config,
            metrics: metrics.clone(),
            buffers: buffers.clone(),
            pending: Vec::new(),
            pending_samples: 0,
            receipts: Vec::new(),
            seq: next_seq,
            open_from,
            open_samples,
            round: None,
            blob_samples,
            sealed_to: Vec::new(),
            sealed_before_start: None,
            sealed_max: i64::MIN,
            retry_at: Instant::now(),
            backoff: Duration::ZERO,
            compaction: hook,
            health: health.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("historian".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the historian: {e}")))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            buffers,
            store,
            metrics,
            compactor,
            health,
            max_open_samples,
            wal_db,
        })
    }

    /// Whether the historian can take samples and keep up: its writer runs, its last write
    /// (write-ahead or store) did not fail, and its backlog fits in memory (nothing spilled).
    pub fn health(&self) -> Result<(), String> {
        let running = self
            .writer
            .lock()
            .map(|w| w.as_ref().is_some_and(|h| !h.is_finished()))
            .unwrap_or(false);
        if !running {
            return Err("the historian's writer is not running".into());
        }
        if let Some(failing) = self.health.failing() {
            return Err(failing);
        }
        let spilled = self.metrics.spill_bytes.get();
        if spilled > 0 {
            return Err(format!(
                "backlog spilled to disk: {spilled} bytes wait for the store"
            ));
        }
        let depth = self.metrics.queue_depth.get();
        if depth > self.max_open_samples as i64 {
            return Err(format!(
                "backlog of {depth} samples exceeds the in-memory bound of {}",
                self.max_open_samples
            ));
        }
        Ok(())
    }

    /// The historian's metrics (register them with the node's registry).
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// The store behind the historian.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The write-ahead's database (a backup reads a snapshot of it).
    pub fn wal_database(&self) -> Arc<redb::Database> {
        self.wal_db.clone()
    }

    /// The compactor, when compaction is configured.
    pub fn compactor(&self) -> Option<&compact::CompactorHandle> {
        self.compactor.as_ref()
    }

    /// Flushes what was accepted and stops the writer (also done on drop). Blocks.
    pub fn stop(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        if let Some(compactor) = &self.compactor {
            compactor.stop();
        }
    }

    /// Samples of `point` within `[from, to]` that are durable, in time order.
    pub async fn history(
        &self,
        point: &PointId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        // Memory first, then the store: a sample leaves memory only once the store has it, so
        // whatever is sealed meanwhile is found in one or the other.
        let buffered = lock(&self.buffers).samples_of(point, from.0, to.0);
        let chunks = self.store.chunks(point, Series::Raw, from, to).await?;
        let mut merged = BTreeMap::new();
        for (_, bytes) in chunks {
            // `decode_range` excludes its end: ask for one millisecond more to include `to`.
            let samples = chunk::decode_range(&bytes, from.0, to.0.saturating_add(1))
                .map_err(|e| StoreError::Corrupt(format!("chunk of {point}: {e}")))?;
            merged.extend(samples);
        }
        merged.extend(buffered);
        Ok(merged.into_iter().collect())
    }
}

impl Drop for Historian {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SampleSink for Historian {
    fn accept(&self, device: &DeviceId, _arrival: Arrival, records: &[Record], receipt: Receipt) {
        let points = device.unit.kind().points().len();
        let mut samples: Vec<IndexedSample> =
            Vec::with_capacity(records.iter().map(|r| r.values.len()).sum());
        for r in records {
            for v in &r.values {
                // A bad point without a value (a Modbus exception) has nothing to store.
                if v.value.is_finite() && usize::from(v.index) < points {
                    samples.push((v.index, r.t.0, v.value));
                }
            }
        }
        let batch = writer::Handover {
            device: device.clone(),
            samples,
            receipt,
        };
        let sent = self
            .tx
            .lock()
            .map(|tx| tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok()))
            .unwrap_or(false);
        if !sent {
            // The receipt is dropped with the batch: the producer does not acknowledge it.
            tracing::error!(%device, "historian writer is gone: samples not stored");
        }
    }
}

#[cfg(test)]
mod tests;
