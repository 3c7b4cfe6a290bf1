//! The historian: every sample the actors accept, made durable within `flush_every` (default
//! 1 s) in the embedded store, and queryable by point and time range.
//!
//! The actors hand samples over through the [`SampleSink`] port without ever waiting: the
//! handover is a channel to a writer thread of its own (redb calls block). Every `flush_every`
//! the writer commits, in one transaction, the new raw samples to the store's write-ahead, and
//! seals the points whose open chunk is full (`chunk_samples` samples or [`MAX_CHUNK_SPAN`]):
//! the Gorilla chunk is written and the write-ahead rows it covers are removed. At start-up the
//! write-ahead is read back into the open chunks, so a `kill -9` loses only what arrived within
//! the last flush interval. A store write that fails keeps its samples queued in memory and is
//! retried on the next flush, in order.
//!
//! Not yet (see ARCHITECTURE.md, "The historian"): acknowledging MQTT only once durable, the
//! disk spill of a long store outage, re-encoding a sealed chunk for late backfill (a late
//! sample opens a chunk of its own; queries merge and de-duplicate), rollups, ScyllaDB.

use crate::store::embedded::{EmbeddedStore, Seal, WalSample};
use crate::store::{ChunkKey, HistoryStore, StoreError, MAX_CHUNK_SPAN};
use cistern_actors::ports::{Arrival, SampleSink};
use cistern_schemas::chunk;
use cistern_schemas::reading::Record;
use cistern_schemas::{DeviceId, PointId, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How the historian writes.
#[derive(Clone, Debug)]
pub struct HistorianConfig {
    /// Samples are durable this long after they are accepted, at the latest.
    pub flush_every: Duration,
    /// A point's open chunk is sealed at this many samples (or at [`MAX_CHUNK_SPAN`]).
    pub chunk_samples: usize,
}

impl Default for HistorianConfig {
    fn default() -> Self {
        // 1,800 samples is an hour at 2 s: one chunk spans about MAX_CHUNK_SPAN.
        Self {
            flush_every: Duration::from_secs(1),
            chunk_samples: 1_800,
        }
    }
}

/// The historian (see the module doc).
#[derive(Debug)]
pub struct Historian {
    tx: Mutex<Option<mpsc::Sender<Vec<WalSample>>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    store: EmbeddedStore,
}

impl Historian {
    /// Starts the writer thread on `store`, after reading its write-ahead back.
    pub fn start(store: EmbeddedStore, config: HistorianConfig) -> Result<Self, StoreError> {
        let mut open: HashMap<String, Vec<(i64, f64)>> = HashMap::new();
        for (point, t, v) in store.write_ahead_rows()? {
            open.entry(point).or_default().push((t, v));
        }
        tracing::info!(
            points = open.len(),
            samples = open.values().map(Vec::len).sum::<usize>(),
            "historian: write-ahead replayed"
        );
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            store: store.clone(),
            config,
            open,
            pending: Vec::new(),
        };
        let writer = std::thread::Builder::new()
            .name("historian".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the historian: {e}")))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
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
        let store = self.store.clone();
        let key = point.to_string();
        let tail = tokio::task::spawn_blocking(move || store.write_ahead_range(&key, from, to))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))??;
        let mut merged = BTreeMap::new();
        for (_, bytes) in chunks {
            // `decode_range` excludes its end: ask for one millisecond more to include `to`.
            let samples = chunk::decode_range(&bytes, from.0, to.0.saturating_add(1))
                .map_err(|e| StoreError::Corrupt(format!("chunk of {point}: {e}")))?;
            merged.extend(samples);
        }
        merged.extend(tail);
        Ok(merged.into_iter().collect())
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

impl Drop for Historian {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Writer {
    store: EmbeddedStore,
    config: HistorianConfig,
    open: HashMap<String, Vec<(i64, f64)>>,
    /// Samples received but not yet in the write-ahead (a failed flush keeps them here).
    pending: Vec<WalSample>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Vec<WalSample>>) {
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
            self.flush();
            if closed {
                return;
            }
        }
    }

    fn flush(&mut self) {
        let fresh = std::mem::take(&mut self.pending);
        let mut seals = Vec::new();
        for (point, t, v) in &fresh {
            self.open.entry(point.clone()).or_default().push((*t, *v));
        }
        let span = MAX_CHUNK_SPAN.as_millis() as i64;
        let size = self.config.chunk_samples.max(1);
        let mut sealed: Vec<(String, usize)> = Vec::new();
        for (point, samples) in &mut self.open {
            samples.sort_by_key(|s| s.0);
            samples.dedup_by_key(|s| s.0);
            let Ok(point_id) = point.parse::<PointId>() else {
                continue;
            };
            // Cut full chunks off the front; what remains stays open.
            let mut cut = 0;
            loop {
                let rest = &samples[cut..];
                let Some(&(first, _)) = rest.first() else {
                    break;
                };
                let by_span = rest.iter().position(|s| s.0 - first >= span);
                let n = match by_span {
                    Some(i) if i < size => i,
                    _ if rest.len() >= size => size,
                    _ => break,
                };
                let piece = &rest[..n];
                match chunk::encode(piece) {
                    Ok(bytes) => seals.push(Seal {
                        key: ChunkKey {
                            point: point_id.clone(),
                            start: Timestamp(first),
                        },
                        bytes,
                        last: Timestamp(piece[n - 1].0),
                    }),
                    Err(error) => {
                        tracing::error!(%point, %error, "historian: cannot encode a chunk");
                        break;
                    }
                }
                cut += n;
            }
            if cut > 0 {
                sealed.push((point.clone(), cut));
            }
        }
        if fresh.is_empty() && seals.is_empty() {
            return;
        }
        match self.store.write_ahead(&fresh, &seals) {
            Ok(()) => {
                for (point, cut) in sealed {
                    if let Some(open) = self.open.get_mut(&point) {
                        open.drain(..cut);
                        if open.is_empty() {
                            self.open.remove(&point);
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, samples = fresh.len(), "historian: store write failed; retrying on the next flush");
                // Undo the merge: the same samples come back through `pending`.
                for (point, t, _) in &fresh {
                    if let Some(open) = self.open.get_mut(point) {
                        if let Some(i) = open.iter().rposition(|s| s.0 == *t) {
                            open.remove(i);
                        }
                    }
                }
                let mut keep = fresh;
                keep.append(&mut self.pending);
                self.pending = keep;
            }
        }
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
        for _ in 0..100 {
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

    #[tokio::test]
    async fn samples_become_durable_seal_into_chunks_and_survive_a_reopen() {
        let d = dir("durable");
        let device: DeviceId = "XM-0001/T1".parse().unwrap();
        let point: PointId = "XM-0001/T1.level".parse().unwrap();
        let config = HistorianConfig {
            flush_every: Duration::from_millis(20),
            chunk_samples: 100,
        };
        {
            let h = Historian::start(EmbeddedStore::open(&d).unwrap(), config.clone()).unwrap();
            h.accept(&device, Arrival::Live, &records(1_000_000, 250));
            let got = wait_for_count(&h, &point, 250).await;
            assert_eq!(got.len(), 250);
            assert_eq!(got[0], (1_000_000, 2.0));
            // two chunks sealed (100 samples each), the rest in the write-ahead
            let sealed = h
                .store
                .chunks(&point, Timestamp(0), Timestamp(i64::MAX / 4))
                .await
                .unwrap();
            assert_eq!(sealed.len(), 2);
        }
        // A new historian on the same directory (as after a restart) has everything.
        let h = Historian::start(EmbeddedStore::open(&d).unwrap(), config).unwrap();
        let got = h
            .history(&point, Timestamp(0), Timestamp(i64::MAX / 4))
            .await
            .unwrap();
        assert_eq!(got.len(), 250);
        // a range query returns exactly the range, both ends included
        let some = h
            .history(
                &point,
                Timestamp(1_000_000 + 2_000 * 99),
                Timestamp(1_000_000 + 2_000 * 101),
            )
            .await
            .unwrap();
        assert_eq!(
            some.iter().map(|s| s.0).collect::<Vec<_>>(),
            [1_198_000, 1_200_000, 1_202_000]
        );
        // a replay of the same samples does not duplicate them
        h.accept(&device, Arrival::Backfill, &records(1_000_000, 250));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got = h
            .history(&point, Timestamp(0), Timestamp(i64::MAX / 4))
            .await
            .unwrap();
        assert_eq!(got.len(), 250);
    }
}
