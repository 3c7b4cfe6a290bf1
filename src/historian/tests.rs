use super::*;
use crate::store::embedded::EmbeddedStore;
use crate::store::{ChunkKey, ChunkReplacement, StateRecords, StoredChunk, StoredEvent};
use cistern_schemas::reading::PointValue;
use cistern_schemas::{DeviceKind, Quality};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, Ordering};

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("cistern-historian-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

const EVERYTHING: (Timestamp, Timestamp) = (Timestamp(0), Timestamp(i64::MAX / 4));

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

fn fast(seal_every: Duration) -> HistorianConfig {
    HistorianConfig {
        flush_every: Duration::from_millis(20),
        seal_every,
        ..Default::default()
    }
}

/// A store that fails every write while `down` is set (a real embedded store underneath).
#[derive(Debug)]
struct Flaky {
    inner: EmbeddedStore,
    down: Arc<AtomicBool>,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("test outage".into()))
        } else {
            Ok(())
        }
    }
}

impl Store for Flaky {
    fn put_chunks(&self, c: Vec<(ChunkKey, Vec<u8>)>) -> BoxFuture<'_, Result<(), StoreError>> {
        match self.check() {
            Ok(()) => self.inner.put_chunks(c),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
    fn chunks(
        &self,
        p: &PointId,
        s: Series,
        f: Timestamp,
        t: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<StoredChunk>, StoreError>> {
        self.inner.chunks(p, s, f, t)
    }
    fn replace_chunks_batch(
        &self,
        batch: Vec<ChunkReplacement>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        match self.check() {
            Ok(()) => self.inner.replace_chunks_batch(batch),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
    fn expire(&self, s: Series, b: Timestamp) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.expire(s, b)
    }
    fn put_state(
        &self,
        kind: &str,
        r: Vec<(String, Option<Vec<u8>>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        match self.check() {
            Ok(()) => self.inner.put_state(kind, r),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
    fn state(&self, kind: &str) -> BoxFuture<'_, Result<StateRecords, StoreError>> {
        self.inner.state(kind)
    }
    fn append_events(&self, s: &str, e: Vec<StoredEvent>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.append_events(s, e)
    }
    fn events(
        &self,
        s: &str,
        f: Timestamp,
        t: Timestamp,
        l: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.inner.events(s, f, t, l)
    }
}

async fn wait_for_count(h: &Historian, point: &PointId, n: usize) -> Vec<(i64, f64)> {
    let mut got = Vec::new();
    for _ in 0..500 {
        got = h.history(point, EVERYTHING.0, EVERYTHING.1).await.unwrap();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} of {n} samples became durable", got.len());
}

async fn sealed(store: &dyn Store, point: &PointId) -> Vec<StoredChunk> {
    store
        .chunks(point, Series::Raw, EVERYTHING.0, EVERYTHING.1)
        .await
        .unwrap()
}

fn ids() -> (DeviceId, PointId) {
    (
        "XM-0001/T1".parse().unwrap(),
        "XM-0001/T1.level".parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_completes_only_once_its_samples_are_durable() {
    let d = dir("receipt");
    let (device, point) = ids();
    let store = Arc::new(EmbeddedStore::open(&d).unwrap());
    let h = Historian::start(
        store,
        &d,
        fast(Duration::from_secs(3600)),
        tokio::runtime::Handle::current(),
    )
    .unwrap();
    let (receipt, durable) = Receipt::new();
    h.accept(&device, Arrival::Live, &records(1_000_000, 10), receipt);
    tokio::time::timeout(Duration::from_secs(5), durable)
        .await
        .unwrap()
        .unwrap();
    // The open samples are exactly those committed to the write-ahead.
    assert_eq!(
        h.history(&point, EVERYTHING.0, EVERYTHING.1)
            .await
            .unwrap()
            .len(),
        10
    );
    assert_eq!(h.metrics().receipts.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_become_durable_seal_into_chunks_and_survive_a_reopen() {
    let d = dir("durable");
    let (device, point) = ids();
    let rt = tokio::runtime::Handle::current();
    {
        // Seal at once: the first flush seals what it has.
        let store = Arc::new(EmbeddedStore::open(&d).unwrap());
        let h = Historian::start(store.clone(), &d, fast(Duration::ZERO), rt.clone()).unwrap();
        h.accept(
            &device,
            Arrival::Live,
            &records(1_000_000, 100),
            Receipt::none(),
        );
        assert_eq!(wait_for_count(&h, &point, 100).await.len(), 100);
        let mut chunks = Vec::new();
        for _ in 0..200 {
            chunks = sealed(store.as_ref(), &point).await;
            if !chunks.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!chunks.is_empty(), "the samples were sealed into a chunk");
    }
    {
        // Never seal: the next samples stay in the write-ahead.
        let store = Arc::new(EmbeddedStore::open(&d).unwrap());
        let h = Historian::start(store, &d, fast(Duration::from_secs(3600)), rt.clone()).unwrap();
        h.accept(
            &device,
            Arrival::Live,
            &records(1_200_000, 150),
            Receipt::none(),
        );
        assert_eq!(wait_for_count(&h, &point, 250).await.len(), 250);
    }
    // A new historian on the same directory (as after a restart) has everything, chunks and
    // write-ahead alike.
    let store = Arc::new(EmbeddedStore::open(&d).unwrap());
    let h = Historian::start(store, &d, HistorianConfig::default(), rt).unwrap();
    let got = h.history(&point, EVERYTHING.0, EVERYTHING.1).await.unwrap();
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
    h.accept(
        &device,
        Arrival::Backfill,
        &records(1_000_000, 250),
        Receipt::none(),
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        h.history(&point, EVERYTHING.0, EVERYTHING.1)
            .await
            .unwrap()
            .len(),
        250
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_samples_merge_into_stored_chunks_without_losing_or_duplicating() {
    let d = dir("late");
    let (device, point) = ids();
    let rt = tokio::runtime::Handle::current();
    let store = Arc::new(EmbeddedStore::open(&d).unwrap());
    {
        let h = Historian::start(store.clone(), &d, fast(Duration::ZERO), rt.clone()).unwrap();
        // 0, 4, 8, ... seconds
        let even: Vec<Record> = records(1_000_000, 20).into_iter().step_by(2).collect();
        h.accept(&device, Arrival::Live, &even, Receipt::none());
        wait_for_count(&h, &point, 10).await;
        while sealed(store.as_ref(), &point).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        h.stop();
    }
    // After a restart (so the historian knows only the promised newest time), the odd
    // samples arrive late, with a re-delivered copy of the first sample: the very key of the
    // stored chunk.
    let h = Historian::start(store.clone(), &d, fast(Duration::ZERO), rt).unwrap();
    let mut late: Vec<Record> = records(1_000_000, 20)
        .into_iter()
        .skip(1)
        .step_by(2)
        .collect();
    late.insert(0, records(1_000_000, 1).remove(0));
    h.accept(&device, Arrival::Backfill, &late, Receipt::none());
    // Late: the copy of the first sample and 9 odd ones; the last odd one (after every stored
    // sample) starts a fresh chunk.
    for _ in 0..200 {
        if h.metrics().sealed.get() >= 11 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.metrics().merged.get(), 10);
    let got = h.history(&point, EVERYTHING.0, EVERYTHING.1).await.unwrap();
    assert_eq!(
        got.iter().map(|s| s.0).collect::<Vec<_>>(),
        (0..20).map(|i| 1_000_000 + i * 2_000).collect::<Vec<_>>()
    );
    // the stored chunks hold each sample once: the merged one replaced the original
    let chunks = sealed(store.as_ref(), &point).await;
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    let stored: usize = chunks
        .iter()
        .map(|c| chunk::decode(&c.1).unwrap().len())
        .sum();
    assert_eq!(stored, 20);
}

/// The store fails for 60 s while samples keep coming (as the fleet would send them, sped
/// up): nothing is lost, the spill shows in the metrics, and it drains in order afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_for_60_s_loses_nothing() {
    let d = dir("outage");
    let rt = tokio::runtime::Handle::current();
    let down = Arc::new(AtomicBool::new(false));
    let store = Arc::new(Flaky {
        inner: EmbeddedStore::open(&d).unwrap(),
        down: down.clone(),
    });
    let config = HistorianConfig {
        flush_every: Duration::from_millis(50),
        seal_every: Duration::from_secs(1),
        // Small enough that the outage spills to disk.
        max_open_samples: 20_000,
        drain_batch_bytes: 256 << 10,
        ..Default::default()
    };
    let h = Arc::new(Historian::start(store.clone(), &d, config, rt).unwrap());
    let devices: Vec<DeviceId> = (1..=20)
        .map(|i| format!("XM-{i:04}/T1").parse().unwrap())
        .collect();
    let started = Instant::now();
    let mut sent = 0usize;
    let mut tick = 0i64;
    let mut peak_spill = 0;
    let mut pending = Vec::new();
    // 10 s normal, 60 s down, 10 s normal again: 20 tanks, 10 samples per tick each.
    while started.elapsed() < Duration::from_secs(80) {
        let s = started.elapsed().as_secs();
        down.store((10..70).contains(&s), Ordering::SeqCst);
        for device in &devices {
            let (receipt, durable) = Receipt::new();
            h.accept(
                device,
                Arrival::Live,
                &records(1_000_000 + tick * 20_000, 10),
                receipt,
            );
            pending.push(durable);
            sent += 10;
        }
        tick += 1;
        peak_spill = peak_spill.max(h.metrics().spill_bytes.get());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    down.store(false, Ordering::SeqCst);
    // Every receipt completed: durable although the store was down.
    for durable in pending {
        tokio::time::timeout(Duration::from_secs(10), durable)
            .await
            .unwrap()
            .unwrap();
    }
    assert!(peak_spill > 0, "the outage spilled to disk");
    // The backlog drains, then every sample is in the store exactly once.
    for _ in 0..600 {
        if h.metrics().spill_bytes.get() == 0 && h.metrics().sealed.get() as usize >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(h.metrics().drained.get() > 0);
    assert_eq!(h.metrics().spill_bytes.get(), 0);
    let mut total = 0;
    for device in &devices {
        let point: PointId = format!("{device}.level").parse().unwrap();
        let got = h.history(&point, EVERYTHING.0, EVERYTHING.1).await.unwrap();
        assert_eq!(got.len(), sent / devices.len(), "{point}");
        assert!(
            got.windows(2).all(|w| w[1].0 - w[0].0 == 2_000),
            "{point}: a gap"
        );
        total += got.len();
    }
    assert_eq!(total, sent);
    assert!(
        h.metrics()
            .write_errors
            .with_label_values(&["seal", "unavailable"])
            .get()
            > 0
    );
}
