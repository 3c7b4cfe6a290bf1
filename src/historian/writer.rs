//! The historian's writer thread: flushes to the write-ahead log, seals chunks into the store
//! in rolling rounds, spills to disk when the store is down and drains the spill in order when
//! it is back.
//!
//! The loop waits for handovers until the next flush is due; meanwhile, whenever the store is
//! due some work, it does one bounded step of it — one slice of a seal round (at most
//! `seal_slice_samples`), one drain batch (about `drain_batch_bytes`), or the start of a
//! round — and then flushes on time. A flush is late by one step at most, however much there is
//! to seal: sealing every open chunk in one go (10–80 M samples at ten times the fleet) used to
//! stop durability, and the MQTT acknowledgements that wait on it, for over 10 s.
//!
//! A seal round: every device's open buffers become its sealing ones (a swap per device) and
//! the round notes the last blob they came from. Slices of whole devices are copied out of
//! `sealing`, sorted and written to the store, and only then dropped from `sealing` (queries
//! see them until the store has them). When every device is written, the round's blobs are
//! dropped from the log; meanwhile flushes carry on into the open buffers, for the next round.
//!
//! Invariants:
//! - Every accepted sample is in exactly one of: `pending` (not yet durable), a write-ahead
//!   blob (durable), or the store (sealed). A blob leaves the log only after the store has
//!   every sample it holds — a round's blobs only once the whole round is written.
//! - Blobs `>= open_from` are also in memory (`open`, queryable); those of the round in
//!   progress (`<= round.last`) are in `sealing` (queryable) or already in the store; any
//!   others are spilled: on disk only, drained oldest first before anything newer is sealed.
//!   A round starts only when nothing is spilled, and a spill during a round drops only the
//!   open samples (newer than the round's), so the round always finishes first.
//! - A chunk's key is its first sample's time, so two writes must never produce different
//!   chunks with the same key. Samples newer than anything sealed for their point start fresh
//!   chunks; older ones ("late": a backfill, a re-delivery after a crash) are merged with the
//!   stored chunks they overlap, which are rewritten (the read-merge-write path). A point is
//!   in exactly one slice per round, and rounds follow each other, so its samples are sealed
//!   in order.
//! - The newest sealed time is promised (`sealed_max`, in the store) before the chunks of
//!   each slice are written.
//! - A failed slice keeps its samples in `sealing` and is retried after a back-off, while
//!   flushes go on; slices written before it stay written. A crash or stop mid-round replays
//!   all the round's blobs: what was already sealed comes back as late samples and merges
//!   into its own chunks (idempotent).

use super::blob;
use super::buffers::{FastBuildHasher, IndexedSample};
use super::metrics::StoreMetrics;
use super::{lock, Buffers, HistorianConfig};
use crate::store::wal::Wal;
use crate::store::{ChunkKey, Series, Store, StoreError, MAX_CHUNK_SPAN};
use cistern_actors::Receipt;
use cistern_schemas::chunk;
use cistern_schemas::{DeviceId, PointId, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// State kind and key of the newest sample time ever sealed (an upper bound, written before
/// the seal): samples newer than it cannot collide with a stored chunk.
const SEALED_KIND: &str = "historian";
const SEALED_KEY: &str = "sealed_max";

/// One durable sample in this many is observed in `cistern_store_durable_lag_seconds`.
const DURABLE_LAG_STRIDE: usize = 8;

/// Write-ahead bytes per sample, to estimate the samples of spilled blobs whose count is not
/// known (left by an earlier run and not read back): 18 a sample plus the device headers.
const SPILLED_BYTES_PER_SAMPLE: u64 = 20;

/// What the actors hand over: one device's samples, and the receipt to complete once they are
/// durable.
pub(super) struct Handover {
    pub device: DeviceId,
    pub samples: Vec<IndexedSample>,
    pub receipt: Receipt,
}

/// The seal round in progress (see the module doc).
#[derive(Debug)]
pub(super) struct Round {
    /// The last blob whose samples are in the round.
    last: u64,
    /// The next device slot to seal.
    cursor: usize,
    /// Samples of the round not yet in the store.
    left: usize,
    started: Instant,
}

/// One point's samples to seal: its device slot and point index (for `sealed_to`), its id, and
/// its samples (sorted and de-duplicated before sealing).
struct SealGroup {
    slot: usize,
    index: usize,
    point: PointId,
    samples: Vec<(i64, f64)>,
}

pub(super) struct Writer {
    pub store: Arc<dyn Store>,
    pub wal: Wal,
    pub io: tokio::runtime::Handle,
    pub config: HistorianConfig,
    pub metrics: StoreMetrics,
    pub buffers: Arc<Mutex<Buffers>>,
    /// Batches received, not yet durable, their samples, and their receipts.
    pub pending: Vec<(DeviceId, Vec<IndexedSample>)>,
    pub pending_samples: usize,
    pub receipts: Vec<Receipt>,
    /// Sequence number of the next blob.
    pub seq: u64,
    /// First blob held in `open` (blobs below it and still in the log are spilled, but for
    /// those of the round in progress).
    pub open_from: u64,
    /// Samples in `open`.
    pub open_samples: usize,
    /// The seal round in progress.
    pub round: Option<Round>,
    /// Samples and bytes of the blobs in the log whose sample count is known (written or read
    /// back by this run), for the queue depth.
    pub blob_samples: BTreeMap<u64, (u64, u64)>,
    /// Newest sealed sample time by device slot and point index, for the points sealed since
    /// start (`i64::MIN`: none).
    pub sealed_to: Vec<Vec<i64>>,
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
                loop {
                    match rx.try_recv() {
                        Ok(handover) => self.take(handover),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                let now = Instant::now();
                if closed || now >= deadline {
                    break;
                }
                if now >= self.retry_at && self.store_step(now, &mut next_seal) {
                    continue;
                }
                match rx.recv_timeout(deadline - now) {
                    Ok(handover) => self.take(handover),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            self.flush();
            // The round's samples count too: they are in memory until the store has them.
            let sealing = self.round.as_ref().map_or(0, |r| r.left);
            if self.open_samples > 0 && self.open_samples + sealing > self.config.max_open_samples {
                self.spill();
            }
            self.update_gauges();
            if closed {
                return;
            }
        }
    }

    fn take(&mut self, handover: Handover) {
        let Handover {
            device,
            samples,
            receipt,
        } = handover;
        if !samples.is_empty() {
            self.pending_samples += samples.len();
            self.pending.push((device, samples));
        }
        if receipt.is_awaited() {
            self.receipts.push(receipt);
        }
    }

    /// Does one bounded step of store work if any is due (the round's next slice, a drain
    /// batch, or a new round); false when there was none.
    fn store_step(&mut self, now: Instant, next_seal: &mut Instant) -> bool {
        if self.round.is_some() {
            match self.seal_slice() {
                Ok(true) => *next_seal = Instant::now() + self.config.seal_every,
                Ok(false) => {}
                Err(error) => self.failed("seal", &error),
            }
            return true;
        }
        if self.spilled() {
            self.drain_step();
            return true;
        }
        if now < *next_seal && self.open_samples < self.config.seal_samples {
            return false;
        }
        if self.open_samples == 0 {
            *next_seal = now + self.config.seal_every;
            return false;
        }
        self.start_round();
        true
    }

    /// Makes the pending samples durable as one blob, moves them to the open buffers and
    /// completes their receipts. A failure keeps them pending (retried on the next flush; the
    /// producers' acknowledgements wait).
    fn flush(&mut self) {
        if self.pending_samples == 0 {
            self.pending.clear();
            for r in self.receipts.drain(..) {
                self.metrics.receipts.inc();
                r.complete();
            }
            return;
        }
        let bytes = blob::encode(
            self.pending.iter().map(|(d, s)| (d, s.as_slice())),
            self.pending_samples,
        );
        let timer = self.metrics.timer("wal");
        if let Err(error) = self.wal.append(self.seq, &bytes) {
            timer.stop_and_discard();
            self.metrics
                .write_errors
                .with_label_values(&["wal", error.label()])
                .inc();
            tracing::warn!(%error, samples = self.pending_samples, "historian: write-ahead failed; retrying on the next flush");
            self.health.set_failing("wal", &error);
            return;
        }
        self.health.clear("wal");
        timer.observe_duration();
        self.blob_samples
            .insert(self.seq, (self.pending_samples as u64, bytes.len() as u64));
        self.seq += 1;
        self.metrics.durable.inc_by(self.pending_samples as u64);
        let now_ms = cistern_schemas::Timestamp::now().0;
        for (_, t, _) in self
            .pending
            .iter()
            .flat_map(|(_, s)| s.iter())
            .step_by(DURABLE_LAG_STRIDE)
        {
            self.metrics
                .durable_lag
                .observe((now_ms - t).max(0) as f64 / 1000.0);
        }
        let pending = std::mem::take(&mut self.pending);
        {
            let mut buffers = lock(&self.buffers);
            for (device, samples) in &pending {
                self.open_samples += buffers.add_open(device, samples);
            }
        }
        // Freed outside the lock.
        drop(pending);
        self.pending_samples = 0;
        for r in self.receipts.drain(..) {
            // Counted first: whoever awaits the receipt may read the metric at once.
            self.metrics.receipts.inc();
            r.complete();
        }
    }

    /// The spilled blobs (on disk only): `[from, to)`, if any.
    fn spilled_range(&self) -> Option<(u64, u64)> {
        let first = self.wal.first_seq()?;
        let from = match &self.round {
            Some(round) => first.max(round.last + 1),
            None => first,
        };
        (from < self.open_from).then_some((from, self.open_from))
    }

    fn spilled(&self) -> bool {
        self.spilled_range().is_some()
    }

    /// Drops the open samples from memory: they stay in the log, to be drained in order.
    fn spill(&mut self) {
        tracing::warn!(
            samples = self.open_samples,
            wal_bytes = self.wal.bytes(),
            "historian: the store is behind; spilling to disk until it catches up"
        );
        lock(&self.buffers).drop_open();
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

    /// Starts a seal round with every open sample (see the module doc).
    fn start_round(&mut self) {
        let Some(last) = self.seq.checked_sub(1) else {
            return;
        };
        lock(&self.buffers).start_round();
        self.round = Some(Round {
            last,
            cursor: 0,
            left: self.open_samples,
            started: Instant::now(),
        });
        self.open_samples = 0;
        self.open_from = self.seq;
    }

    /// Seals the round's next slice: whole devices from the cursor on, up to
    /// `seal_slice_samples` (at least one device with samples). True when the round is over
    /// (and its blobs are dropped).
    fn seal_slice(&mut self) -> Result<bool, StoreError> {
        let Some(cursor) = self.round.as_ref().map(|r| r.cursor) else {
            return Ok(true);
        };
        let slice = self.config.seal_slice_samples.max(1);
        // Copied, not moved: queries keep seeing them until the store has them, and a failed
        // write leaves them where they were. A copy of one slice, not of the whole round.
        let (mut groups, raw, end) = {
            let buffers = lock(&self.buffers);
            let mut groups = Vec::new();
            let mut raw = 0;
            let mut end = cursor;
            while end < buffers.devices.len() && raw < slice {
                let d = &buffers.devices[end];
                let specs = d.device.unit.kind().points();
                for (index, samples) in d.sealing.iter().enumerate() {
                    if let (false, Some(spec)) = (samples.is_empty(), specs.get(index)) {
                        raw += samples.len();
                        groups.push(SealGroup {
                            slot: end,
                            index,
                            point: d.device.point(spec.name),
                            samples: samples.clone(),
                        });
                    }
                }
                end += 1;
            }
            (groups, raw, end)
        };
        if !groups.is_empty() {
            sort_dedup(&mut groups);
            let timer = self.metrics.timer("seal");
            if let Err(error) = self.seal(&groups) {
                timer.stop_and_discard();
                return Err(error);
            }
            timer.observe_duration();
        }
        // The store has them: out of memory (freed outside the lock).
        let mut freed: Vec<Vec<(i64, f64)>> = Vec::with_capacity(groups.len());
        let done = {
            let mut buffers = lock(&self.buffers);
            for d in buffers.devices.get_mut(cursor..end).unwrap_or_default() {
                freed.extend(d.sealing.iter_mut().map(std::mem::take));
            }
            end >= buffers.devices.len()
        };
        drop(freed);
        self.metrics.sealed.inc_by(raw as u64);
        self.succeeded();
        let Some(round) = self.round.as_mut() else {
            return Ok(true);
        };
        round.cursor = end;
        round.left = round.left.saturating_sub(raw);
        if !done {
            return Ok(false);
        }
        let last = round.last;
        tracing::debug!(
            took = ?round.started.elapsed(),
            "historian: seal round done"
        );
        self.round = None;
        self.trim(last);
        Ok(true)
    }

    /// Drops the blobs through `last` from the log (the store has all their samples).
    fn trim(&mut self, last: u64) -> bool {
        match self.wal.drop_through(last) {
            Ok(()) => {
                let kept = self.blob_samples.split_off(&(last.saturating_add(1)));
                self.blob_samples = kept;
                true
            }
            Err(error) => {
                // The chunks are in; the blobs will be sealed again (idempotent).
                tracing::warn!(%error, "historian: could not trim the write-ahead");
                false
            }
        }
    }

    /// Seals the oldest spilled blobs (one batch) into the store.
    fn drain_step(&mut self) {
        let Some((from, to)) = self.spilled_range() else {
            return;
        };
        let started = Instant::now();
        let blobs = match self.wal.read(from, self.config.drain_batch_bytes) {
            Ok(b) => b,
            Err(error) => return self.failed("drain", &error),
        };
        let blobs: Vec<_> = blobs.into_iter().filter(|(seq, _)| *seq < to).collect();
        let Some(&(last, _)) = blobs.last() else {
            return;
        };
        let (mut groups, count) = self.groups_of(&blobs);
        sort_dedup(&mut groups);
        let timer = self.metrics.timer("drain");
        match self.seal(&groups) {
            Ok(()) => {
                timer.observe_duration();
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
                if !self.trim(last) {
                    // Not drained again at once: that would re-write the same batch in a loop.
                    self.failed(
                        "drain",
                        &StoreError::Unavailable("the write-ahead cannot be trimmed".into()),
                    );
                }
            }
            Err(error) => {
                timer.stop_and_discard();
                self.failed("drain", &error);
            }
        }
    }

    /// The samples of write-ahead blobs, by point, and how many there are.
    fn groups_of(&self, blobs: &[(u64, Vec<u8>)]) -> (Vec<SealGroup>, usize) {
        // By device slot, then point index: a hash per device block, not per sample.
        let mut by_slot: HashMap<usize, Vec<Vec<(i64, f64)>>, FastBuildHasher> = HashMap::default();
        let mut count = 0;
        let mut buffers = lock(&self.buffers);
        for (seq, bytes) in blobs {
            let blocks = match blob::decode(bytes) {
                Ok(blocks) => blocks,
                Err(what) => {
                    tracing::error!(seq, what, "historian: unreadable write-ahead blob skipped");
                    continue;
                }
            };
            for block in blocks {
                let slot = buffers.slot(&block.device);
                let points = by_slot
                    .entry(slot)
                    .or_insert_with(|| vec![Vec::new(); block.device.unit.kind().points().len()]);
                for (index, t, v) in block.samples {
                    if let Some(p) = points.get_mut(usize::from(index)) {
                        p.push((t, v));
                        count += 1;
                    }
                }
            }
        }
        let mut groups = Vec::new();
        for (slot, points) in by_slot {
            let Some(d) = buffers.devices.get(slot) else {
                continue;
            };
            let specs = d.device.unit.kind().points();
            for (index, samples) in points.into_iter().enumerate() {
                if let (false, Some(spec)) = (samples.is_empty(), specs.get(index)) {
                    groups.push(SealGroup {
                        slot,
                        index,
                        point: d.device.point(spec.name),
                        samples,
                    });
                }
            }
        }
        (groups, count)
    }

    fn sealed_to(&self, slot: usize, index: usize) -> i64 {
        self.sealed_to
            .get(slot)
            .and_then(|p| p.get(index))
            .copied()
            .unwrap_or(i64::MIN)
    }

    /// Writes the samples (by point, sorted and de-duplicated) into the store as chunks,
    /// merging late samples with the chunks they overlap.
    fn seal(&mut self, groups: &[SealGroup]) -> Result<(), StoreError> {
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
        let mut late_groups = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let samples = &g.samples;
            // Anything at or before what earlier runs sealed may overlap a stored chunk.
            let guard = self.sealed_to(g.slot, g.index).max(before_start);
            let split = samples.partition_point(|s| s.0 <= guard);
            if split > 0 {
                late_groups.push((i, split));
            }
            let fresh = &samples[split..];
            if let Some(&(t, _)) = fresh.last() {
                newest = newest.max(t);
            }
            chunks_of(&g.point, fresh, &mut puts);
        }
        // Late samples: merge with the stored chunks they overlap — not while the compactor
        // rewrites stored chunks (held to the end of the seal).
        let _rewriting = match &self.compaction {
            Some(hook) if !late_groups.is_empty() => Some(hook.rewrite_lock()),
            _ => None,
        };
        let mut merged = 0;
        for (i, split) in late_groups {
            let g = &groups[i];
            let late = &g.samples[..split];
            let (p, r) = self.merge(&g.point, late)?;
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
        for g in groups {
            if let Some(&(t, _)) = g.samples.last() {
                raise_sealed_to(&mut self.sealed_to, g.slot, g.index, t);
            }
        }
        if let Some(hook) = &self.compaction {
            hook.sealed(groups.iter().map(|g| (&g.point, g.samples.as_slice())));
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
        let (spilled_bytes, spilled_samples) = match self.spilled_range() {
            Some((from, to)) => {
                let bytes = self.wal.bytes_from(from) - self.wal.bytes_from(to);
                // Counted where known (blobs of this run), estimated from the bytes elsewhere.
                let (samples, known_bytes) = self
                    .blob_samples
                    .range(from..to)
                    .fold((0, 0), |(s, b), (_, &(n, size))| (s + n, b + size));
                let unknown = bytes.saturating_sub(known_bytes);
                (bytes, samples + unknown / SPILLED_BYTES_PER_SAMPLE)
            }
            None => (0, 0),
        };
        self.metrics.spill_bytes.set(spilled_bytes as i64);
        self.metrics.wal_bytes.set(self.wal.bytes() as i64);
        let sealing = self.round.as_ref().map_or(0, |r| r.left);
        let depth = self.pending_samples as u64
            + self.open_samples as u64
            + sealing as u64
            + spilled_samples;
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

/// Raises the newest sealed time of a point (by device slot and point index) to `t`.
fn raise_sealed_to(sealed_to: &mut Vec<Vec<i64>>, slot: usize, index: usize, t: i64) {
    if sealed_to.len() <= slot {
        sealed_to.resize_with(slot + 1, Vec::new);
    }
    let points = &mut sealed_to[slot];
    if points.len() <= index {
        points.resize(index + 1, i64::MIN);
    }
    points[index] = points[index].max(t);
}

/// Sorts each point's samples by time and drops repeated timestamps.
fn sort_dedup(groups: &mut [SealGroup]) {
    for g in groups {
        // Stable: of repeated timestamps, the first to arrive is kept (as before).
        g.samples.sort_by_key(|s| s.0);
        g.samples.dedup_by_key(|s| s.0);
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
