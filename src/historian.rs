//! The historian: every sample the actors accept, made durable within `flush_every` (default
//! 1 s) in the embedded store, and queryable by point and time range.
//!
//! The actors hand samples over through the [`SampleSink`] port without ever waiting: the
//! handover is a channel to a writer thread of its own (redb calls block).
//!
//! - Every `flush_every` the writer commits the samples received since the last flush as one
//!   write-ahead blob (one insert, however many samples: 66,000 per-sample rows a second cost
//!   far too much CPU and disk at fleet scale), then adds them to the open chunks in memory.
//! - Every `seal_every` (default 2 min, ~60 samples a point at 2 s) it seals every open chunk:
//!   one transaction writes the Gorilla chunks and deletes the write-ahead blobs they now hold.
//!   Sealing often keeps the open buffers small (about 130 MiB for the 2,100-room fleet) at a
//!   small cost in compression (a chunk header per minute or two).
//! - At start-up the write-ahead blobs are read back into the open chunks, so a `kill -9`
//!   loses only what arrived within the last flush interval.
//! - Queries merge sealed chunks with the open chunks, which hold only committed samples.
//! - A store write that fails keeps its samples queued in memory and is retried on the next
//!   flush, in order.
//!
//! Not yet (see ARCHITECTURE.md, "The historian"): acknowledging MQTT only once durable, the
//! disk spill of a long store outage, rollups, ScyllaDB. A late backfill sample lands in a
//! later chunk of its own; queries merge and de-duplicate by timestamp.

use crate::store::embedded::{EmbeddedStore, Seal};
use crate::store::{ChunkKey, HistoryStore, StoreError};
use cistern_actors::ports::{Arrival, SampleSink};
use cistern_schemas::chunk;
use cistern_schemas::reading::Record;
use cistern_schemas::{DeviceId, PointId, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How the historian writes.
#[derive(Clone, Debug)]
pub struct HistorianConfig {
    /// Samples are durable this long after they are accepted, at the latest.
    pub flush_every: Duration,
    /// Open chunks are sealed this often.
    pub seal_every: Duration,
}

impl Default for HistorianConfig {
    fn default() -> Self {
        Self {
            flush_every: Duration::from_secs(1),
            seal_every: Duration::from_secs(120),
        }
    }
}

/// A raw sample on its way to the store: point id, t (ms), value.
type Sample = (String, i64, f64);
/// Committed, not yet sealed samples by point.
type OpenChunks = HashMap<String, Vec<(i64, f64)>>;

/// The historian (see the module doc).
#[derive(Debug)]
pub struct Historian {
    tx: Mutex<Option<mpsc::Sender<Vec<Sample>>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    open: Arc<Mutex<OpenChunks>>,
    store: EmbeddedStore,
}

fn lock(open: &Mutex<OpenChunks>) -> MutexGuard<'_, OpenChunks> {
    // The writer never leaves the map half-updated on a panic path worth refusing to read.
    open.lock().unwrap_or_else(|p| p.into_inner())
}

impl Historian {
    /// Starts the writer thread on `store`, after reading its write-ahead back.
    pub fn start(store: EmbeddedStore, config: HistorianConfig) -> Result<Self, StoreError> {
        let mut open = OpenChunks::new();
        let mut next_seq = 0;
        let blobs = store.write_ahead_blobs()?;
        for (seq, blob) in &blobs {
            next_seq = seq + 1;
            match decode_blob(blob) {
                Ok(samples) => {
                    for (point, t, v) in samples {
                        open.entry(point).or_default().push((t, v));
                    }
                }
                Err(what) => {
                    tracing::error!(seq, what, "historian: unreadable write-ahead blob skipped")
                }
            }
        }
        tracing::info!(
            blobs = blobs.len(),
            points = open.len(),
            samples = open.values().map(Vec::len).sum::<usize>(),
            "historian: write-ahead replayed"
        );
        let open = Arc::new(Mutex::new(open));
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            store: store.clone(),
            config,
            open: open.clone(),
            pending: Vec::new(),
            seq: next_seq,
        };
        let writer = std::thread::Builder::new()
            .name("historian".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the historian: {e}")))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            open,
            store,
        })
    }

    /// Flushes what was accepted and stops the writer (also done on drop).
    pub fn stop(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }

    /// Samples of `point` within `[from, to]` that are durable, in time order.
    pub async fn history(
        &self,
        point: &PointId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let chunks = self.store.chunks(point, from, to).await?;
        let mut merged = BTreeMap::new();
        for (_, bytes) in chunks {
            // `decode_range` excludes its end: ask for one millisecond more to include `to`.
            let samples = chunk::decode_range(&bytes, from.0, to.0.saturating_add(1))
                .map_err(|e| StoreError::Corrupt(format!("chunk of {point}: {e}")))?;
            merged.extend(samples);
        }
        if let Some(open) = lock(&self.open).get(&point.to_string()) {
            merged.extend(
                open.iter()
                    .filter(|s| (from.0..=to.0).contains(&s.0))
                    .copied(),
            );
        }
        Ok(merged.into_iter().collect())
    }
}

impl Drop for Historian {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SampleSink for Historian {
    fn accept(&self, device: &DeviceId, _arrival: Arrival, records: &[Record]) {
        let specs = device.unit.kind().points();
        let mut batch = Vec::with_capacity(records.iter().map(|r| r.values.len()).sum());
        for r in records {
            for v in &r.values {
                // A bad point without a value (a Modbus exception) has nothing to store.
                if let (true, Some(spec)) = (v.value.is_finite(), specs.get(usize::from(v.index))) {
                    batch.push((format!("{device}.{}", spec.name), r.t.0, v.value));
                }
            }
        }
        let sent = self
            .tx
            .lock()
            .map(|tx| tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok()))
            .unwrap_or(false);
        if !sent {
            tracing::error!(%device, "historian writer is gone: samples not stored");
        }
    }
}

/// A write-ahead blob: for each sample, a u16 length and the point id, then t (i64) and the
/// value (f64), little-endian.
fn encode_blob(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 40);
    for (point, t, v) in samples {
        let bytes = point.as_bytes();
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&bytes[..usize::from(len)]);
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn decode_blob(mut blob: &[u8]) -> Result<Vec<Sample>, &'static str> {
    fn take<'a>(blob: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
        if blob.len() < n {
            return Err("truncated");
        }
        let (head, rest) = blob.split_at(n);
        *blob = rest;
        Ok(head)
    }
    let mut out = Vec::new();
    while !blob.is_empty() {
        let len = u16::from_le_bytes(take(&mut blob, 2)?.try_into().map_err(|_| "length")?);
        let point =
            std::str::from_utf8(take(&mut blob, usize::from(len))?).map_err(|_| "point id")?;
        let t = i64::from_le_bytes(take(&mut blob, 8)?.try_into().map_err(|_| "time")?);
        let v = f64::from_le_bytes(take(&mut blob, 8)?.try_into().map_err(|_| "value")?);
        out.push((point.to_owned(), t, v));
    }
    Ok(out)
}

struct Writer {
    store: EmbeddedStore,
    config: HistorianConfig,
    open: Arc<Mutex<OpenChunks>>,
    /// Samples received but not yet committed (a failed flush keeps them here).
    pending: Vec<Sample>,
    /// Sequence number of the next write-ahead blob.
    seq: u64,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Vec<Sample>>) {
        let mut next_seal = Instant::now() + self.config.seal_every;
        loop {
            let deadline = Instant::now() + self.config.flush_every;
            let mut closed = false;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(batch) => self.pending.extend(batch),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let seal = Instant::now() >= next_seal;
            if self.flush(seal) && seal {
                next_seal = Instant::now() + self.config.seal_every;
            }
            if closed {
                return;
            }
        }
    }

    /// Commits the pending samples, then, when `seal`, seals every open chunk. True when all
    /// of it succeeded.
    fn flush(&mut self, seal: bool) -> bool {
        if !self.pending.is_empty() {
            let blob = encode_blob(&self.pending);
            if let Err(error) = self.store.write_ahead(self.seq, &blob, &[], None) {
                tracing::warn!(%error, samples = self.pending.len(), "historian: store write failed; retrying on the next flush");
                return false;
            }
            self.seq += 1;
            let mut open = lock(&self.open);
            for (point, t, v) in self.pending.drain(..) {
                open.entry(point).or_default().push((t, v));
            }
        }
        if !seal || self.seq == 0 {
            return true;
        }
        // A second transaction, over committed samples only: chunks in, the blobs they hold out.
        let seals = self.seals();
        match self
            .store
            .write_ahead(self.seq, &[], &seals, Some(self.seq - 1))
        {
            Ok(()) => {
                *lock(&self.open) = OpenChunks::new();
                true
            }
            Err(error) => {
                tracing::warn!(%error, chunks = seals.len(), "historian: sealing failed; retrying later");
                false
            }
        }
    }

    /// Chunks of everything open, one per point. Encodes in place, under the lock: copying
    /// every open buffer would double the historian's memory at each seal.
    fn seals(&self) -> Vec<Seal> {
        let mut open = lock(&self.open);
        let mut seals = Vec::with_capacity(open.len());
        for (point, samples) in open.iter_mut() {
            samples.sort_by_key(|s| s.0);
            samples.dedup_by_key(|s| s.0);
            let (Ok(point_id), Some(&(first, _))) = (point.parse::<PointId>(), samples.first())
            else {
                continue;
            };
            match chunk::encode(samples) {
                Ok(bytes) => seals.push(Seal {
                    key: ChunkKey {
                        point: point_id,
                        start: Timestamp(first),
                    },
                    bytes,
                }),
                Err(error) => tracing::error!(%point, %error, "historian: cannot encode a chunk"),
            }
        }
        seals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cistern_schemas::reading::PointValue;
    use cistern_schemas::{DeviceKind, Quality};

    fn dir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("cistern-historian-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn records(from: i64, n: i64) -> Vec<Record> {
        let level = DeviceKind::Tank.point_index("level").unwrap() as u16;
        (0..n)
            .map(|i| Record {
                t: Timestamp(from + i * 2_000),
                values: vec![PointValue {
                    index: level,
                    value: 2.0 + i as f64 / 1000.0,
                    quality: Quality::GOOD,
                }],
            })
            .collect()
    }

    async fn wait_for_count(h: &Historian, point: &PointId, n: usize) -> Vec<(i64, f64)> {
        for _ in 0..200 {
            let got = h
                .history(point, Timestamp(0), Timestamp(i64::MAX / 4))
                .await
                .unwrap();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fewer than {n} samples became durable");
    }

    #[test]
    fn write_ahead_blobs_round_trip_and_refuse_truncation() {
        let samples = vec![
            ("XM-0001/T1.level".to_owned(), 5, 2.5),
            ("XM-0001.ph".to_owned(), -7, f64::NAN),
        ];
        let blob = encode_blob(&samples);
        let back = decode_blob(&blob).unwrap();
        assert_eq!(back[0], samples[0]);
        assert!(back[1].2.is_nan());
        for cut in 1..blob.len() {
            if let Ok(partial) = decode_blob(&blob[..cut]) {
                assert!(partial.len() < 2 || cut == blob.len());
            }
        }
        assert!(decode_blob(&blob[..blob.len() - 1]).is_err());
    }

    #[tokio::test]
    async fn samples_become_durable_seal_into_chunks_and_survive_a_reopen() {
        let d = dir("durable");
        let device: DeviceId = "XM-0001/T1".parse().unwrap();
        let point: PointId = "XM-0001/T1.level".parse().unwrap();
        let open_store = || EmbeddedStore::open(&d).unwrap();
        let everything = (Timestamp(0), Timestamp(i64::MAX / 4));
        {
            // Seal at once: the first flush seals what it has.
            let config = HistorianConfig {
                flush_every: Duration::from_millis(20),
                seal_every: Duration::ZERO,
            };
            let h = Historian::start(open_store(), config).unwrap();
            h.accept(&device, Arrival::Live, &records(1_000_000, 100));
            assert_eq!(wait_for_count(&h, &point, 100).await.len(), 100);
            // Sealing is a second transaction after the flush that made them visible.
            let mut sealed = Vec::new();
            for _ in 0..200 {
                sealed = h
                    .store
                    .chunks(&point, everything.0, everything.1)
                    .await
                    .unwrap();
                if !sealed.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(!sealed.is_empty(), "the samples were sealed into a chunk");
        }
        {
            // Never seal: the next samples stay in the write-ahead.
            let config = HistorianConfig {
                flush_every: Duration::from_millis(20),
                seal_every: Duration::from_secs(3600),
            };
            let h = Historian::start(open_store(), config).unwrap();
            h.accept(&device, Arrival::Live, &records(1_200_000, 150));
            assert_eq!(wait_for_count(&h, &point, 250).await.len(), 250);
            assert!(!h.store.write_ahead_blobs().unwrap().is_empty());
        }
        // A new historian on the same directory (as after a restart) has everything, chunks and
        // write-ahead alike.
        let h = Historian::start(open_store(), HistorianConfig::default()).unwrap();
        let got = h.history(&point, everything.0, everything.1).await.unwrap();
        assert_eq!(got.len(), 250);
        assert_eq!(got[0], (1_000_000, 2.0));
        // a range query returns exactly the range, both ends included
        let some = h
            .history(&point, Timestamp(1_198_000), Timestamp(1_202_000))
            .await
            .unwrap();
        assert_eq!(
            some.iter().map(|s| s.0).collect::<Vec<_>>(),
            [1_198_000, 1_200_000, 1_202_000]
        );
        // a replay of the same samples does not duplicate them
        h.accept(&device, Arrival::Backfill, &records(1_000_000, 250));
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(
            h.history(&point, everything.0, everything.1)
                .await
                .unwrap()
                .len(),
            250
        );
    }
}
