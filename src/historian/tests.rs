use super::*;
use crate::store::embedded::EmbeddedStore;
use crate::store::{ChunkKey, ChunkReplacement, StateRecords, StoredChunk, StoredEvent};
use cistern_schemas::reading::PointValue;
use cistern_schemas::{DeviceKind, Quality};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
    let store = Arc::new(Scripted::new(&d, Duration::ZERO));
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
        store.down.store((10..70).contains(&s), Ordering::SeqCst);
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
    store.down.store(false, Ordering::SeqCst);
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

/// What a [`Scripted`] store runs before each chunk write (on the writer's thread), with the
/// write's number (from 1).
type PutHook = Box<dyn FnMut(usize) + Send>;

/// A store that runs a hook before each chunk write, takes `put_delay` over each, and fails
/// every write while `down` is set (a real embedded store underneath).
struct Scripted {
    inner: EmbeddedStore,
    down: AtomicBool,
    puts: AtomicUsize,
    put_delay: Duration,
    on_put: Mutex<Option<PutHook>>,
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripted").finish_non_exhaustive()
    }
}

impl Scripted {
    fn new(dir: &std::path::Path, put_delay: Duration) -> Self {
        Self {
            inner: EmbeddedStore::open(dir).unwrap(),
            down: AtomicBool::new(false),
            puts: AtomicUsize::new(0),
            put_delay,
            on_put: Mutex::new(None),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("test outage".into()))
        } else {
            Ok(())
        }
    }
}

impl Store for Scripted {
    fn put_chunks(&self, c: Vec<(ChunkKey, Vec<u8>)>) -> BoxFuture<'_, Result<(), StoreError>> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(hook) = self.on_put.lock().unwrap().as_mut() {
            hook(n);
        }
        Box::pin(async move {
            tokio::time::sleep(self.put_delay).await;
            self.check()?;
            self.inner.put_chunks(c).await
        })
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

/// `n` tanks: `XM-1001/T1`, `XM-1002/T1`, ...
fn tanks(n: usize) -> Vec<DeviceId> {
    (1..=n)
        .map(|i| format!("XM-{:04}/T1", 1000 + i).parse().unwrap())
        .collect()
}

fn level_of(device: &DeviceId) -> PointId {
    device.point("level")
}

/// A seal round in slices of one device each: 40 tanks, 10 samples each.
fn rolling(seal_samples: usize) -> HistorianConfig {
    HistorianConfig {
        flush_every: Duration::from_millis(20),
        seal_every: Duration::from_secs(3600),
        seal_samples,
        seal_slice_samples: 1,
        ..Default::default()
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn stored_count(store: &dyn Store, point: &PointId) -> usize {
    sealed(store, point)
        .await
        .iter()
        .map(|c| chunk::decode(&c.1).unwrap().len())
        .sum()
}

/// A seal round written over several flushes: a batch accepted while the round writes its
/// first slice is durable (its receipt completed) by the time the round writes its second —
/// the seal does not hold durability back until it is over. Each chunk write takes longer
/// than a flush period, so a flush falls between every two slices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_accepted_during_a_seal_round_become_durable_before_it_ends() {
    let d = dir("rolling");
    let rt = tokio::runtime::Handle::current();
    let store = Arc::new(Scripted::new(&d, Duration::from_millis(25)));
    let devices = tanks(40);
    let h = Arc::new(Historian::start(store.clone(), &d, rolling(400), rt).unwrap());
    let late_device: DeviceId = "XM-2000/T1".parse().unwrap();
    let durable_at = Arc::new(Mutex::new(None));
    {
        let (weak, late_device, durable_at) =
            (Arc::downgrade(&h), late_device.clone(), durable_at.clone());
        let mut receipt_rx = None;
        *store.on_put.lock().unwrap() = Some(Box::new(move |n| {
            if n == 1 {
                // Accepted while the round writes its first slice.
                let (receipt, durable) = Receipt::new();
                if let Some(h) = weak.upgrade() {
                    h.accept(
                        &late_device,
                        Arrival::Live,
                        &records(5_000_000, 10),
                        receipt,
                    );
                }
                receipt_rx = Some(durable);
            } else if let Some(rx) = receipt_rx.as_mut() {
                let mut at = durable_at.lock().unwrap();
                if at.is_none() && rx.try_recv().is_ok() {
                    *at = Some(n);
                }
            }
        }));
    }
    for device in &devices {
        h.accept(
            device,
            Arrival::Live,
            &records(1_000_000, 10),
            Receipt::none(),
        );
    }
    // The round: one slice (one chunk write) per device.
    wait_until("the round is sealed", || h.metrics().sealed.get() >= 400).await;
    assert_eq!(store.puts.load(Ordering::SeqCst), 40);
    assert_eq!(*durable_at.lock().unwrap(), Some(2));
    assert_eq!(h.metrics().durable.get(), 410);
    for device in &devices {
        assert_eq!(stored_count(store.as_ref(), &level_of(device)).await, 10);
        let got = h
            .history(&level_of(device), EVERYTHING.0, EVERYTHING.1)
            .await
            .unwrap();
        assert_eq!(got.len(), 10);
    }
    // The batch accepted meanwhile is open (queryable), for the next round.
    let late = h
        .history(&level_of(&late_device), EVERYTHING.0, EVERYTHING.1)
        .await
        .unwrap();
    assert_eq!(late.len(), 10);
    assert_eq!(
        stored_count(store.as_ref(), &level_of(&late_device)).await,
        0
    );
    // Queue depth: only the open batch is left.
    wait_until("the gauges are updated", || {
        h.metrics().queue_depth.get() == 10
    })
    .await;
}

/// A chunk write fails in the middle of a seal round: the slices written stay written, the
/// rest stays in memory and in the write-ahead, flushes carry on, and after the outage (and a
/// restart) every sample is in the store exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_store_write_mid_round_loses_nothing() {
    let d = dir("round-failure");
    let rt = tokio::runtime::Handle::current();
    let devices = tanks(40);
    {
        let store = Arc::new(Scripted::new(&d, Duration::ZERO));
        let h = Historian::start(store.clone(), &d, rolling(400), rt.clone()).unwrap();
        {
            let weak = Arc::downgrade(&store);
            *store.on_put.lock().unwrap() = Some(Box::new(move |n| {
                // The third slice's write fails, and every write after it, until the test
                // brings the store back.
                if n == 3 {
                    if let Some(s) = weak.upgrade() {
                        s.down.store(true, Ordering::SeqCst);
                    }
                }
            }));
        }
        for device in &devices {
            h.accept(
                device,
                Arrival::Live,
                &records(1_000_000, 10),
                Receipt::none(),
            );
        }
        let errors = || {
            h.metrics()
                .write_errors
                .with_label_values(&["seal", "unavailable"])
                .get()
        };
        wait_until("a slice fails", || errors() > 0).await;
        assert_eq!(h.metrics().sealed.get(), 20, "two slices were written");
        assert!(h.health().is_err());
        // Durability goes on while the round is stuck.
        let (receipt, durable) = Receipt::new();
        let (last, rest) = devices.split_last().unwrap();
        for device in rest {
            h.accept(
                device,
                Arrival::Live,
                &records(1_020_000, 5),
                Receipt::none(),
            );
        }
        h.accept(last, Arrival::Live, &records(1_020_000, 5), receipt);
        tokio::time::timeout(Duration::from_secs(5), durable)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(h.metrics().sealed.get(), 20);
        for device in &devices {
            let got = h
                .history(&level_of(device), EVERYTHING.0, EVERYTHING.1)
                .await
                .unwrap();
            assert_eq!(got.len(), 15, "{device}");
        }
        // Back: the round finishes after its back-off.
        store.down.store(false, Ordering::SeqCst);
        wait_until("the round is sealed", || h.metrics().sealed.get() >= 400).await;
        assert!(h.health().is_ok(), "{:?}", h.health());
        for device in &devices {
            assert_eq!(stored_count(store.as_ref(), &level_of(device)).await, 10);
        }
        h.stop();
    }
    // The samples accepted during the outage were in no round: a restart reads them back
    // from the write-ahead and seals them.
    let store = Arc::new(EmbeddedStore::open(&d).unwrap());
    let h = Historian::start(store.clone(), &d, fast(Duration::ZERO), rt).unwrap();
    wait_until("the replay is sealed", || h.metrics().sealed.get() >= 200).await;
    for device in &devices {
        let point = level_of(device);
        assert_eq!(stored_count(store.as_ref(), &point).await, 15, "{point}");
        let got = h.history(&point, EVERYTHING.0, EVERYTHING.1).await.unwrap();
        assert_eq!(got.len(), 15);
    }
    assert_eq!(h.metrics().merged.get(), 0, "nothing was sealed twice");
}
