//! The historian's writer thread: flushes to the write-ahead log, seals chunks into the store,
//! spills to disk when the store is down and drains the spill in order when it is back.
//!
//! Invariants:
//! - Every accepted sample is in exactly one of: `pending` (not yet durable), a write-ahead
//!   blob (durable), or the store (sealed). A blob leaves the log only after the store has
//!   every sample it holds.
//! - Blobs `>= open_from` are also in memory (`open`, queryable); blobs below it are spilled:
//!   on disk only, drained oldest first before anything newer is sealed.
//! - A chunk's key is its first sample's time, so two writes must never produce different
//!   chunks with the same key. Samples newer than anything sealed for their point start fresh
//!   chunks; older ones ("late": a backfill, a re-delivery after a crash) are merged with the
//!   stored chunks they overlap, which are rewritten (the read-merge-write path).

use super::blob;
use super::metrics::StoreMetrics;
use super::{lock, Buffers, HistorianConfig, OpenChunks, Sample};
use crate::store::wal::Wal;
use crate::store::{ChunkKey, Series, Store, StoreError, MAX_CHUNK_SPAN};
use cistern_actors::Receipt;
use cistern_schemas::chunk;
use cistern_schemas::{PointId, Timestamp};
use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// State kind and key of the newest sample time ever sealed (an upper bound, written before
/// the seal): samples newer than it cannot collide with a stored chunk.
const SEALED_KIND: &str = "historian";
const SEALED_KEY: &str = "sealed_max";

/// One durable sample in this many is observed in `cistern_store_durable_lag_seconds`.
const DURABLE_LAG_STRIDE: usize = 8;

/// What the actors hand over: samples and the receipts to complete once they are durable.
pub(super) type Handover = (Vec<Sample>, Receipt);

pub(super) struct Writer {
    pub store: Arc<dyn Store>,
    pub wal: Wal,
    pub io: tokio::runtime::Handle,
    pub config: HistorianConfig,
    pub metrics: StoreMetrics,
    pub buffers: Arc<Mutex<Buffers>>,
    /// Samples received, not yet durable, and their receipts.
    pub pending: Vec<Sample>,
    pub receipts: Vec<Receipt>,
    /// Sequence number of the next blob.
    pub seq: u64,
    /// First blob held in `open` (blobs below it and still in the log are spilled).
    pub open_from: u64,
    /// Samples in `open`.
    pub open_samples: usize,
    /// Newest sealed sample time per point, for the points sealed since start.
    pub sealed_to: HashMap<String, i64>,
    /// Newest sample time sealed by any run before this one (see [`SEALED_KEY`]), once read.
    pub sealed_before_start: Option<i64>,
    /// Newest sample time this run has promised (written) as sealed.
    pub sealed_max: i64,
    /// No store write before this instant (backing off after a failure).
    pub retry_at: Instant,
    pub backoff: Duration,
    /// The compactor's hook: told what each seal wrote (see `compact.rs`).
    pub compaction: Option<super::compact::SealHook>,
    /// What readiness reads: the failing write, if any.
    pub health: Arc<super::WriterHealth>,
}

impl Writer {
    pub fn run(mut self, rx: mpsc::Receiver<Handover>) {
        let mut next_seal = Instant::now() + self.config.seal_every;
        loop {
            let deadline = Instant::now() + self.config.flush_every;
            let mut closed = false;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok((samples, receipt)) => {
                        self.pending.extend(samples);
                        if receipt.is_awaited() {
                            self.receipts.push(receipt);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            self.flush();
            let now = Instant::now();
            if now >= self.retry_at {
                if self.spilled() {
                    self.drain_step();
                } else if (now >= next_seal || self.open_samples >= self.config.seal_samples)
                    && self.seal_open()
                {
                    next_seal = Instant::now() + self.config.seal_every;
                }
            }
            if self.open_samples > self.config.max_open_samples {
                self.spill();
            }
            self.update_gauges();
            if closed {
                return;
            }
        }
    }

    /// Makes the pending samples durable as one blob, moves them to the open chunks and
    /// completes their receipts. A failure keeps them pending (retried on the next flush; the
    /// producers' acknowledgements wait).
    fn flush(&mut self) {
        if self.pending.is_empty() {
            for r in self.receipts.drain(..) {
                self.metrics.receipts.inc();
                r.complete();
            }
            return;
        }
        let bytes = blob::encode(&self.pending);
        let timer = self.metrics.timer("wal");
        if let Err(error) = self.wal.append(self.seq, &bytes) {
            timer.stop_and_discard();
            self.metrics
                .write_errors
                .with_label_values(&["wal", error.label()])
                .inc();
            tracing::warn!(%error, samples = self.pending.len(), "historian: write-ahead failed; retrying on the next flush");
            self.health.set_failing("wal", &error);
            return;
        }
        self.health.clear("wal");
        timer.observe_duration();
        self.seq += 1;
        self.metrics.durable.inc_by(self.pending.len() as u64);
        let now_ms = cistern_schemas::Timestamp::now().0;
        for (_, t, _) in self.pending.iter().step_by(DURABLE_LAG_STRIDE) {
            self.metrics
                .durable_lag
                .observe((now_ms - t).max(0) as f64 / 1000.0);
        }
        {
            let mut buffers = lock(&self.buffers);
            self.open_samples += self.pending.len();
            for (point, t, v) in self.pending.drain(..) {
                buffers.open.entry(point).or_default().push((t, v));
            }
        }
        for r in self.receipts.drain(..) {
            // Counted first: whoever awaits the receipt may read the metric at once.
            self.metrics.receipts.inc();
            r.complete();
        }
    }

    fn spilled(&self) -> bool {
        self.wal
            .first_seq()
            .is_some_and(|first| first < self.open_from)
    }

    /// Drops the open samples from memory: they stay in the log, to be drained in order.
    fn spill(&mut self) {
        tracing::warn!(
            samples = self.open_samples,
            wal_bytes = self.wal.bytes(),
            "historian: the store is behind; spilling to disk until it catches up"
        );
        lock(&self.buffers).open = OpenChunks::new();
        self.open_samples = 0;
        self.open_from = self.seq;
    }

    fn failed(&mut self, op: &str, error: &StoreError) {
        self.health.set_failing(op, error);
        self.metrics
            .write_errors
            .with_label_values(&[op, error.label()])
            .inc();
        self.backoff =
            (self.backoff * 2).clamp(Duration::from_millis(500), Duration::from_secs(10));
        self.retry_at = Instant::now() + self.backoff;
        tracing::warn!(%error, op, retry_in = ?self.backoff, "historian: store write failed; samples stay in the write-ahead");
    }

    fn succeeded(&mut self) {
        self.health.clear("seal");
        self.health.clear("drain");
        self.backoff = Duration::ZERO;
    }

    /// Seals every open chunk into the store, then drops the blobs they came from.
    fn seal_open(&mut self) -> bool {
        let Some(last) = self.seq.checked_sub(1) else {
            return true;
        };
        if self.open_samples == 0 {
            return true;
        }
        let timer = self.metrics.timer("seal");
        // Moved, not copied (a copy would double the historian's memory at each seal), and
        // still visible to queries while the store writes them.
        let mut groups = std::mem::take(&mut lock(&self.buffers).open);
        sort_dedup(&mut groups);
        let groups = Arc::new(groups);
        lock(&self.buffers).sealing = Some(groups.clone());
        let count = self.open_samples;
        let result = self.seal(&groups);
        lock(&self.buffers).sealing = None;
        match result {
            Ok(()) => {
                timer.observe_duration();
                self.open_samples = 0;
                self.metrics.sealed.inc_by(count as u64);
                if let Err(error) = self.wal.drop_through(last) {
                    // The chunks are in; the blobs will be sealed again (idempotent).
                    tracing::warn!(%error, "historian: could not trim the write-ahead");
                }
                self.open_from = self.seq;
                self.succeeded();
                true
            }
            Err(error) => {
                timer.stop_and_discard();
                // Put the samples back (nothing arrived meanwhile: this thread is the only
                // writer of the open buffers).
                lock(&self.buffers).open =
                    Arc::try_unwrap(groups).unwrap_or_else(|shared| (*shared).clone());
                self.failed("seal", &error);
                false
            }
        }
    }

    /// Seals the oldest spilled blobs (one batch) into the store.
    fn drain_step(&mut self) {
        let Some(first) = self.wal.first_seq() else {
            return;
        };
        let started = Instant::now();
        let blobs = match self.wal.read(first, self.config.drain_batch_bytes) {
            Ok(b) => b,
            Err(error) => return self.failed("drain", &error),
        };
        let blobs: Vec<_> = blobs
            .into_iter()
            .filter(|(seq, _)| *seq < self.open_from)
            .collect();
        let Some(&(last, _)) = blobs.last() else {
            return;
        };
        let mut groups = OpenChunks::new();
        let mut count = 0;
        for (seq, bytes) in &blobs {
            match blob::decode(bytes) {
                Ok(samples) => {
                    count += samples.len();
                    for (point, t, v) in samples {
                        groups.entry(point).or_default().push((t, v));
                    }
                }
                Err(what) => {
                    tracing::error!(seq, what, "historian: unreadable write-ahead blob skipped")
                }
            }
        }
        sort_dedup(&mut groups);
        let timer = self.metrics.timer("drain");
        match self.seal(&groups) {
            Ok(()) => {
                timer.observe_duration();
                if let Err(error) = self.wal.drop_through(last) {
                    tracing::warn!(%error, "historian: could not trim the write-ahead");
                }
                let secs = started.elapsed().as_secs_f64().max(1e-6);
                self.metrics.drained.inc_by(count as u64);
                self.metrics.sealed.inc_by(count as u64);
                self.metrics.drain_rate.set(count as f64 / secs);
                tracing::info!(
                    samples = count,
                    blobs = blobs.len(),
                    left_bytes = self.wal.bytes_from(last + 1),
                    "historian: drained spilled samples into the store"
                );
                self.succeeded();
            }
            Err(error) => {
                timer.stop_and_discard();
                self.failed("drain", &error);
            }
        }
    }

    /// Writes the samples (by point, sorted and de-duplicated) into the store as chunks,
    /// merging late samples with the chunks they overlap.
    fn seal(&mut self, groups: &OpenChunks) -> Result<(), StoreError> {
        let before_start = match self.sealed_before_start {
            Some(t) => t,
            None => {
                let t = sealed_before(self.store.as_ref(), &self.io)?;
                self.sealed_before_start = Some(t);
                self.sealed_max = self.sealed_max.max(t);
                t
            }
        };
        let mut puts = Vec::new();
        let mut removes = Vec::new();
        let mut newest = self.sealed_max;
        let mut late_points = Vec::new();
        for (point, samples) in groups {
            if samples.is_empty() {
                continue;
            }
            let Ok(point_id) = point.parse::<PointId>() else {
                tracing::error!(%point, "historian: not a point id; samples dropped");
                continue;
            };
            let guard = self.sealed_to.get(point).copied().unwrap_or(before_start);
            let split = samples.partition_point(|s| s.0 <= guard);
            if split > 0 {
                late_points.push((point_id.clone(), split));
            }
            let fresh = &samples[split..];
            if let Some(&(t, _)) = fresh.last() {
                newest = newest.max(t);
            }
            chunks_of(&point_id, fresh, &mut puts);
        }
        // Late samples: merge with the stored chunks they overlap — not while the compactor
        // rewrites stored chunks (held to the end of the seal).
        let _rewriting = match &self.compaction {
            Some(hook) if !late_points.is_empty() => Some(hook.rewrite_lock()),
            _ => None,
        };
        let mut merged = 0;
        for (point, split) in late_points {
            let Some(samples) = groups.get(&point.to_string()) else {
                continue;
            };
            let late = &samples[..split];
            let (p, r) = self.merge(&point, late)?;
            merged += late.len();
            puts.extend(p);
            removes.extend(r);
        }
        // Promise the newest time first: a crash after the chunks but before the promise
        // would let a later run take an overlapping sample for a fresh one.
        if newest > self.sealed_max {
            let write = self.store.put_state(
                SEALED_KIND,
                vec![(SEALED_KEY.to_owned(), Some(newest.to_le_bytes().to_vec()))],
            );
            self.io.block_on(write)?;
            self.sealed_max = newest;
        }
        let bytes: usize = puts
            .iter()
            .map(|(_, b): &(ChunkKey, Vec<u8>)| b.len())
            .sum();
        for batch in chunked(puts, self.config.chunks_per_write) {
            self.io.block_on(self.store.put_chunks(batch))?;
        }
        for (point, starts) in removes {
            let remove = self
                .store
                .replace_chunks(&point, Series::Raw, starts, Vec::new());
            self.io.block_on(remove)?;
        }
        self.metrics.chunk_bytes.inc_by(bytes as u64);
        self.metrics.merged.inc_by(merged as u64);
        for (point, samples) in groups {
            if let Some(&(t, _)) = samples.last() {
                match self.sealed_to.get_mut(point) {
                    Some(e) => *e = (*e).max(t),
                    None => {
                        self.sealed_to.insert(point.clone(), t);
                    }
                }
            }
        }
        if let Some(hook) = &self.compaction {
            hook.sealed(groups);
        }
        Ok(())
    }

    /// Merges late samples of one point with the stored chunks they overlap: the chunks to
    /// write, and the starts of the stored chunks they replace.
    #[allow(clippy::type_complexity)]
    fn merge(
        &self,
        point: &PointId,
        late: &[(i64, f64)],
    ) -> Result<(Vec<(ChunkKey, Vec<u8>)>, Option<(PointId, Vec<Timestamp>)>), StoreError> {
        let (Some(&(from, _)), Some(&(to, _))) = (late.first(), late.last()) else {
            return Ok((Vec::new(), None));
        };
        let stored = self.io.block_on(self.store.chunks(
            point,
            Series::Raw,
            Timestamp(from),
            Timestamp(to),
        ))?;
        let mut all: std::collections::BTreeMap<i64, f64> = late.iter().copied().collect();
        let mut replaced = Vec::new();
        for (start, bytes) in stored {
            let samples = chunk::decode(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("chunk of {point} at {start}: {e}")))?;
            let overlaps = samples
                .last()
                .is_some_and(|&(end, _)| end >= from && start.0 <= to);
            if overlaps {
                // Stored samples win over late copies of themselves (they are the same).
                all.extend(samples);
                replaced.push(start);
            }
        }
        let all: Vec<(i64, f64)> = all.into_iter().collect();
        let mut puts = Vec::new();
        chunks_of(point, &all, &mut puts);
        // A stored chunk whose start is written again is replaced by the write itself.
        replaced.retain(|s| !puts.iter().any(|(k, _)| k.start == *s));
        let removes = (!replaced.is_empty()).then(|| (point.clone(), replaced));
        Ok((puts, removes))
    }

    fn update_gauges(&self) {
        let spilled_bytes = match self.wal.first_seq() {
            Some(first) if first < self.open_from => {
                self.wal.bytes() - self.wal.bytes_from(self.open_from)
            }
            _ => 0,
        };
        self.metrics.spill_bytes.set(spilled_bytes as i64);
        self.metrics.wal_bytes.set(self.wal.bytes() as i64);
        // Spilled samples are estimated from their bytes (about 40 per sample).
        let depth = self.pending.len() + self.open_samples + (spilled_bytes / 40) as usize;
        self.metrics.queue_depth.set(depth as i64);
        let sealed = self.metrics.sealed.get();
        if sealed > 0 {
            self.metrics
                .bytes_per_point
                .set(self.metrics.chunk_bytes.get() as f64 / sealed as f64);
        }
        if !self.spilled() {
            self.metrics.drain_rate.set(0.0);
        }
    }
}

/// Encodes sorted, de-duplicated samples of one point into chunks of at most
/// [`MAX_CHUNK_SPAN`] each.
fn chunks_of(point: &PointId, samples: &[(i64, f64)], out: &mut Vec<(ChunkKey, Vec<u8>)>) {
    let span = MAX_CHUNK_SPAN.as_millis() as i64;
    let mut rest = samples;
    while let Some(&(first, _)) = rest.first() {
        let n = rest.partition_point(|s| s.0 - first <= span);
        match chunk::encode(&rest[..n]) {
            Ok(bytes) => out.push((
                ChunkKey {
                    point: point.clone(),
                    series: Series::Raw,
                    start: Timestamp(first),
                },
                bytes,
            )),
            Err(error) => tracing::error!(%point, %error, "historian: cannot encode a chunk"),
        }
        rest = &rest[n..];
    }
}

/// Sorts each point's samples by time and drops repeated timestamps.
fn sort_dedup(groups: &mut OpenChunks) {
    for samples in groups.values_mut() {
        samples.sort_by_key(|s| s.0);
        samples.dedup_by_key(|s| s.0);
    }
}

fn chunked<T>(mut items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let size = size.max(1);
    let mut out = Vec::with_capacity(items.len() / size + 1);
    while items.len() > size {
        let tail = items.split_off(size);
        out.push(std::mem::replace(&mut items, tail));
    }
    if !items.is_empty() {
        out.push(items);
    }
    out
}

/// Reads the newest sealed time promised by earlier runs.
fn sealed_before(store: &dyn Store, io: &tokio::runtime::Handle) -> Result<i64, StoreError> {
    let state = io.block_on(store.state(SEALED_KIND))?;
    Ok(state
        .iter()
        .find(|(k, _)| k == SEALED_KEY)
        .and_then(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(i64::from_le_bytes)
        .unwrap_or(i64::MIN))
}
