//! The compactor: a thread of its own that, once an hour is closed, rewrites each point's raw
//! chunks of that hour into one, writes its 1-minute and 1-hour rollups, and applies retention.
//!
//! Why: the writer seals every point every 2 minutes (30 small chunks an hour, each with its
//! own header and first value), which costs bytes and rows; one chunk per point-hour is what
//! the Gorilla codec compresses best and what a 24 h query reads fastest. Rollups make long
//! ranges cheap (`Historian::history_step`).
//!
//! - **What to compact** comes from the writer: after each successful seal it sends the
//!   `(point, hour)` pairs it wrote ([`SealHook`]); the compactor keeps them until the hour is
//!   closed (`hour + 1 h + grace` has passed on its [`CompactionClock`]).
//! - **Layout after compaction**, per point: one raw chunk per hour (keyed, as every raw chunk,
//!   by its first sample); one `Series::Minute` chunk per hour holding its 60 buckets, keyed
//!   by the hour; one `Series::Hour` chunk per UTC day holding its 24 buckets, keyed by the day
//!   (a day per chunk keeps the row count of ten years of 130,000 points at 0.5 billion instead
//!   of 11). Rollup keys are the period's start, not the first bucket's, so that compacting an
//!   hour again overwrites them in place with no read.
//! - **Never blocking the writer**: the compactor has its own thread and talks to the writer
//!   through an unbounded channel. Its store writes are batched: the raw rewrites and rollups
//!   of `points_per_batch` points go in one `replace_chunks_batch` (one redb transaction; on
//!   ScyllaDB idempotent writes, then deletes). One commit per point-hour was 3.9× slower
//!   (203 against 785 point-hours/s on the 21-room bench; ARCHITECTURE.md has the figures).
//! - **Late samples**: the writer's merge path rewrites stored raw chunks. A read-modify-write
//!   of the same chunks by both threads at once could lose a sample, so the two share one lock
//!   ([`SealHook::rewrite_lock`]): the compactor holds it around one batch's reads and write
//!   (well under a second), the writer only while it merges late samples (rare). A seal that touched an
//!   hour already compacted marks that point-hour for compaction again (persisted, so that a
//!   restart keeps the mark), which brings its rollups up to date.
//! - **Restarts**: state records keep the watermark (`compaction`/`watermark`: every hour
//!   before it is compacted), every point ever seen (`points`, one record each, written once)
//!   and the marks of late point-hours (`compaction_dirty`). At start the compactor also reads
//!   the writer's newest sealed time, and compacts every known point for the hours from the
//!   watermark to it: those sealed before a crash and never compacted.
//! - **Retention**: about once an hour of its clock, `store.expire(series, now - retention)`
//!   for each series.

use super::rollup::{self, Bucket, DAY_MS, HOUR_MS, MINUTE_MS};
use crate::store::{ChunkReplacement, Series, Store, StoreError};
use cistern_schemas::chunk;
use cistern_schemas::{PointId, Timestamp};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const STATE_KIND: &str = "compaction";
const WATERMARK_KEY: &str = "watermark";
const POINTS_KIND: &str = "points";
const DIRTY_KIND: &str = "compaction_dirty";
/// The writer's promise of its newest sealed sample time (see `writer.rs`).
const SEALED_KIND: &str = "historian";
const SEALED_KEY: &str = "sealed_max";

/// Which time decides that an hour is closed and what retention cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactionClock {
    /// The wall clock (a node in service).
    Wall,
    /// The newest sealed sample time: for replaying data faster than real time (benchmarks,
    /// tests). Never for a node in service, where one device with a wrong clock would close
    /// every hour at once.
    Data,
}

/// How the compactor works.
#[derive(Clone, Debug)]
pub struct CompactionConfig {
    /// An hour is compacted once this long after its end has passed (late samples within it
    /// are merged by the writer before the compaction).
    pub grace: Duration,
    pub retention_raw: Duration,
    pub retention_1m: Duration,
    pub retention_1h: Duration,
    /// Points whose rollups go to the store in one write.
    pub points_per_batch: usize,
    pub clock: CompactionClock,
    /// How often the thread looks at its clock when nothing arrives.
    pub tick: Duration,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(600),
            retention_raw: crate::store::Retention::default().raw,
            retention_1m: crate::store::Retention::default().minute,
            retention_1h: crate::store::Retention::default().hour,
            points_per_batch: 2_000,
            clock: CompactionClock::Wall,
            tick: Duration::from_secs(10),
        }
    }
}

/// What the compactor has done since start (for benchmarks, tests and logs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Point-hours compacted (including those compacted again).
    pub point_hours: u64,
    /// Point-hours compacted again because late samples reached them.
    pub recompacted: u64,
    /// Raw chunks read, and their bytes.
    pub raw_chunks_in: u64,
    pub raw_bytes_in: u64,
    /// Raw chunks written, and their bytes.
    pub raw_chunks_out: u64,
    pub raw_bytes_out: u64,
    /// Bytes of rollup chunks written (1 min and 1 h).
    pub rollup_bytes: u64,
    /// Chunks removed by retention.
    pub expired: u64,
    /// Time spent compacting point-hours (reads, plans, writes), µs.
    pub busy_micros: u64,
    /// Start of the first hour not compacted yet (`i64::MIN` before the first).
    pub watermark: i64,
}

#[derive(Debug, Default)]
struct Counters {
    point_hours: AtomicU64,
    recompacted: AtomicU64,
    raw_chunks_in: AtomicU64,
    raw_bytes_in: AtomicU64,
    raw_chunks_out: AtomicU64,
    raw_bytes_out: AtomicU64,
    rollup_bytes: AtomicU64,
    expired: AtomicU64,
    busy_micros: AtomicU64,
    watermark: std::sync::atomic::AtomicI64,
}

impl Counters {
    fn snapshot(&self) -> CompactionStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CompactionStats {
            point_hours: g(&self.point_hours),
            recompacted: g(&self.recompacted),
            raw_chunks_in: g(&self.raw_chunks_in),
            raw_bytes_in: g(&self.raw_bytes_in),
            raw_chunks_out: g(&self.raw_chunks_out),
            raw_bytes_out: g(&self.raw_bytes_out),
            rollup_bytes: g(&self.rollup_bytes),
            expired: g(&self.expired),
            busy_micros: g(&self.busy_micros),
            watermark: self.watermark.load(Ordering::Relaxed),
        }
    }

    fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

pub(super) enum Msg {
    /// A seal wrote samples of these `(point, hour)` pairs; its newest sample time.
    Sealed {
        hours: Vec<(String, i64)>,
        newest: i64,
    },
    /// Moves the data clock forward (benchmarks and tests close the last hours with it).
    Advance(i64),
    /// Answered once everything due before it is done.
    Idle(tokio::sync::oneshot::Sender<()>),
    /// Nothing to do: wakes the thread from its tick's wait, to see the stop flag (a stop
    /// waited up to a tick, 10 s, for it: most of a node's stop).
    Wake,
}

/// The writer's end: tells the compactor what each seal wrote, and guards rewrites of stored
/// raw chunks (see the module doc).
#[derive(Clone, Debug)]
pub(super) struct SealHook {
    tx: mpsc::Sender<Msg>,
    rewrite: Arc<Mutex<()>>,
}

impl SealHook {
    /// Called after a successful seal of `groups` (each point's samples sorted by time).
    /// Cheap: a binary search per hour touched.
    pub fn sealed<'a>(&self, groups: impl IntoIterator<Item = (&'a PointId, &'a [(i64, f64)])>) {
        let mut hours = Vec::new();
        let mut newest = i64::MIN;
        for (point, samples) in groups {
            let mut rest = samples;
            let mut name = None;
            while let Some(&(t, _)) = rest.first() {
                let hour = rollup::floor(t, HOUR_MS);
                let name = name.get_or_insert_with(|| point.to_string());
                hours.push((name.clone(), hour));
                let n = rest.partition_point(|s| s.0 < hour.saturating_add(HOUR_MS));
                rest = rest.get(n..).unwrap_or_default();
            }
            if let Some(&(t, _)) = samples.last() {
                newest = newest.max(t);
            }
        }
        if !hours.is_empty() {
            // A gone compactor (stopped) needs nothing more.
            let _ = self.tx.send(Msg::Sealed { hours, newest });
        }
    }

    /// Held while stored raw chunks are rewritten (the writer: while merging late samples).
    pub fn rewrite_lock(&self) -> MutexGuard<'_, ()> {
        self.rewrite.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The historian's handle on its compactor thread.
#[derive(Debug)]
pub struct CompactorHandle {
    tx: mpsc::Sender<Msg>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl CompactorHandle {
    /// Moves the data clock to `t` at least (with [`CompactionClock::Data`]).
    pub fn advance_clock(&self, t: Timestamp) {
        let _ = self.tx.send(Msg::Advance(t.0));
    }

    /// Resolves once the compactor has done everything due for what it was sent before
    /// (false if it stopped first).
    pub async fn idle(&self) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Idle(tx)).is_err() {
            return false;
        }
        rx.await.is_ok()
    }

    pub fn stats(&self) -> CompactionStats {
        self.counters.snapshot()
    }

    /// Stops the thread after the point it is compacting (blocks until then).
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.tx.send(Msg::Wake);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Starts the compactor thread: the writer's hook and the historian's handle.
pub(super) fn spawn(
    store: Arc<dyn Store>,
    io: tokio::runtime::Handle,
    config: CompactionConfig,
) -> Result<(SealHook, CompactorHandle), StoreError> {
    let (tx, rx) = mpsc::channel();
    let rewrite = Arc::new(Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    counters.watermark.store(i64::MIN, Ordering::Relaxed);
    let compactor = Compactor {
        store,
        io,
        config,
        rewrite: rewrite.clone(),
        stop: stop.clone(),
        counters: counters.clone(),
        loaded: false,
        known: HashSet::new(),
        unsaved_points: Vec::new(),
        pending: BTreeMap::new(),
        dirty: BTreeSet::new(),
        unsaved_dirty: Vec::new(),
        watermark: None,
        catch_up: None,
        data_now: i64::MIN,
        last_expire: None,
        retry_at: Instant::now(),
        backoff: Duration::ZERO,
    };
    let thread = std::thread::Builder::new()
        .name("compactor".into())
        .spawn(move || compactor.run(rx))
        .map_err(|e| StoreError::Unavailable(format!("cannot start the compactor: {e}")))?;
    Ok((
        SealHook {
            tx: tx.clone(),
            rewrite,
        },
        CompactorHandle {
            tx,
            thread: Mutex::new(Some(thread)),
            stop,
            counters,
        },
    ))
}

/// What one batch compacted, added to the counters once it is written.
#[derive(Debug, Default)]
struct RawStats {
    point_hours: u64,
    chunks_in: u64,
    bytes_in: u64,
    chunks_out: u64,
    bytes_out: u64,
    rollup_bytes: u64,
}

/// A point-hour's compaction: what to write, what it replaces.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PointHour {
    /// Raw chunks to write (starts and bytes), and the starts of those they replace.
    pub raw_put: Vec<(Timestamp, Vec<u8>)>,
    pub raw_remove: Vec<Timestamp>,
    /// The hour's samples, sorted and de-duplicated.
    pub samples: Vec<(i64, f64)>,
    /// Stored raw chunks that held samples of the hour, and their bytes.
    pub chunks_in: u64,
    pub bytes_in: u64,
}

/// Plans the compaction of hour `[hour, hour + 1 h)` of one point from its stored raw chunks
/// (all those starting within `[hour - 1 h, hour + 2 h)`, in start order): pure.
///
/// Every chunk holding a sample of the hour is replaced: the hour's samples become one chunk
/// keyed by the first of them; samples of the chunks outside the hour are written back, those
/// before it under their chunk's own start, those after it as one chunk keyed by the first of
/// them (merged with a stored chunk of that very start, if there is one). Nothing to write
/// when the hour is already one chunk of exactly its samples.
pub(crate) fn plan(
    hour: i64,
    stored: &[(Timestamp, Vec<(i64, f64)>)],
) -> Result<PointHour, chunk::ChunkError> {
    let end = hour + HOUR_MS;
    let inside = |t: i64| (hour..end).contains(&t);
    let mut out = PointHour::default();
    let mut relevant = Vec::new();
    let mut after: Vec<(i64, f64)> = Vec::new();
    let mut puts: Vec<(Timestamp, Vec<(i64, f64)>)> = Vec::new();
    for (start, samples) in stored {
        if !samples.iter().any(|s| inside(s.0)) {
            continue;
        }
        relevant.push(*start);
        out.chunks_in += 1;
        out.samples.extend(samples.iter().filter(|s| inside(s.0)));
        let before: Vec<(i64, f64)> = samples.iter().filter(|s| s.0 < hour).copied().collect();
        if !before.is_empty() {
            puts.push((*start, before));
        }
        after.extend(samples.iter().filter(|s| s.0 >= end));
    }
    if relevant.is_empty() {
        return Ok(out);
    }
    sort_dedup(&mut out.samples);
    let Some(&(first, _)) = out.samples.first() else {
        return Ok(out);
    };
    let untouched = relevant == [Timestamp(first)]
        && puts.is_empty()
        && after.is_empty()
        && stored
            .iter()
            .find(|(s, _)| *s == Timestamp(first))
            .is_some_and(|(_, samples)| samples.len() == out.samples.len());
    if untouched {
        return Ok(out);
    }
    puts.push((Timestamp(first), out.samples.clone()));
    if !after.is_empty() {
        sort_dedup(&mut after);
        let key = after.first().map_or(end, |s| s.0);
        if let Some((_, same)) = stored.iter().find(|(s, _)| s.0 == key) {
            after.extend(same.iter().copied());
            sort_dedup(&mut after);
        }
        puts.push((Timestamp(key), after));
    }
    for (start, samples) in puts {
        out.raw_put.push((start, chunk::encode(&samples)?));
    }
    out.raw_remove = relevant
        .into_iter()
        .filter(|s| !out.raw_put.iter().any(|(p, _)| p == s))
        .collect();
    Ok(out)
}

fn sort_dedup(samples: &mut Vec<(i64, f64)>) {
    samples.sort_by_key(|s| s.0);
    samples.dedup_by_key(|s| s.0);
}

struct Compactor {
    store: Arc<dyn Store>,
    io: tokio::runtime::Handle,
    config: CompactionConfig,
    rewrite: Arc<Mutex<()>>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    /// State read back from the store (retried until it is).
    loaded: bool,
    /// Every point ever seen, and those not yet written to the `points` state.
    known: HashSet<Arc<str>>,
    unsaved_points: Vec<Arc<str>>,
    /// Hours with sealed samples, not compacted since, by point.
    pending: BTreeMap<i64, BTreeSet<Arc<str>>>,
    /// Point-hours compacted before and sealed into again (persisted marks), and those marks
    /// not yet written.
    dirty: BTreeSet<(i64, Arc<str>)>,
    unsaved_dirty: Vec<(i64, Arc<str>)>,
    /// Every hour before this one is compacted.
    watermark: Option<i64>,
    /// After a restart: hours `[from, to)` to compact for every known point.
    catch_up: Option<(i64, i64)>,
    data_now: i64,
    last_expire: Option<i64>,
    retry_at: Instant,
    backoff: Duration,
}

impl Compactor {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut waiting: Vec<tokio::sync::oneshot::Sender<()>> = Vec::new();
        let mut again = false;
        loop {
            let wait = if again {
                Duration::ZERO
            } else {
                self.config.tick
            };
            again = false;
            match rx.recv_timeout(wait) {
                Ok(msg) => self.receive(msg, &mut waiting),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(msg) = rx.try_recv() {
                self.receive(msg, &mut waiting);
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            if Instant::now() < self.retry_at {
                continue;
            }
            // Answered after a step that started after they were asked (what arrives during
            // a step, such as a clock move, waits for the next one).
            let asked = std::mem::take(&mut waiting);
            let result = self.step(&rx, &mut waiting);
            match result {
                Ok(true) => {
                    self.backoff = Duration::ZERO;
                    for w in asked {
                        let _ = w.send(());
                    }
                    again = !waiting.is_empty();
                }
                // Stopped, or more arrived meanwhile: go round again.
                Ok(false) => {
                    waiting.splice(0..0, asked);
                    again = true;
                }
                Err(error) => {
                    waiting.splice(0..0, asked);
                    self.backoff = (self.backoff * 2)
                        .clamp(Duration::from_millis(500), Duration::from_secs(60));
                    self.retry_at = Instant::now() + self.backoff;
                    tracing::warn!(%error, retry_in = ?self.backoff, "compactor: store call failed; will retry");
                }
            }
        }
    }

    fn receive(&mut self, msg: Msg, waiting: &mut Vec<tokio::sync::oneshot::Sender<()>>) {
        match msg {
            Msg::Sealed { hours, newest } => {
                self.data_now = self.data_now.max(newest);
                for (point, hour) in hours {
                    let point = self.intern(point);
                    if self.watermark.is_some_and(|w| hour < w) {
                        if self.dirty.insert((hour, point.clone())) {
                            self.unsaved_dirty.push((hour, point));
                        }
                    } else {
                        self.pending.entry(hour).or_default().insert(point);
                    }
                }
            }
            Msg::Advance(t) => self.data_now = self.data_now.max(t),
            Msg::Idle(tx) => waiting.push(tx),
            Msg::Wake => {}
        }
    }

    fn intern(&mut self, point: String) -> Arc<str> {
        if let Some(p) = self.known.get(point.as_str()) {
            return p.clone();
        }
        let p: Arc<str> = Arc::from(point);
        self.known.insert(p.clone());
        self.unsaved_points.push(p.clone());
        p
    }

    fn now(&self) -> Option<i64> {
        match self.config.clock {
            CompactionClock::Wall => Some(Timestamp::now().0),
            CompactionClock::Data => (self.data_now > i64::MIN).then_some(self.data_now),
        }
    }

    /// Does what is due. `Ok(true)` when all of it is done.
    fn step(
        &mut self,
        rx: &mpsc::Receiver<Msg>,
        waiting: &mut Vec<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<bool, StoreError> {
        if !self.loaded {
            self.load()?;
        }
        self.save_marks()?;
        let Some(now) = self.now() else {
            return Ok(true);
        };
        // The first hour not closed yet.
        let closed_end = rollup::floor(
            (Timestamp(now) - self.config.grace)
                .0
                .saturating_sub(HOUR_MS),
            HOUR_MS,
        ) + HOUR_MS;
        if self.watermark.is_none() {
            let first = self
                .pending
                .keys()
                .next()
                .copied()
                .unwrap_or(closed_end)
                .min(closed_end);
            self.set_watermark(first)?;
        }
        if let Some((from, to)) = self.catch_up {
            let until = to.min(closed_end);
            let mut h = from;
            while h < until {
                let all: BTreeSet<Arc<str>> = self.known.iter().cloned().collect();
                self.pending.entry(h).or_default().extend(all);
                h += HOUR_MS;
            }
            self.catch_up = (until < to).then_some((until, to));
        }
        // Marked point-hours first (they are closed already), then closed hours in order.
        while let Some((hour, _)) = self.dirty.first().cloned() {
            let points: Vec<Arc<str>> = self
                .dirty
                .iter()
                .filter(|(h, _)| *h == hour)
                .map(|(_, p)| p.clone())
                .collect();
            if !self.compact_hour(hour, &points, rx, waiting)? {
                return Ok(false);
            }
            for p in &points {
                self.dirty.remove(&(hour, p.clone()));
            }
            Counters::add(&self.counters.recompacted, points.len() as u64);
            let done = points.iter().map(|p| (dirty_key(hour, p), None)).collect();
            self.io.block_on(self.store.put_state(DIRTY_KIND, done))?;
        }
        while let Some(hour) = self
            .pending
            .keys()
            .next()
            .copied()
            .filter(|h| *h < closed_end)
        {
            // Taken out: what arrives for this hour meanwhile is compacted again after it.
            let taken = self.pending.remove(&hour).unwrap_or_default();
            let points: Vec<Arc<str>> = taken.iter().cloned().collect();
            let done = self.compact_hour(hour, &points, rx, waiting);
            if !matches!(done, Ok(true)) {
                self.pending.entry(hour).or_default().extend(taken);
                return done;
            }
            if self.watermark.is_some_and(|w| hour >= w) {
                self.set_watermark(hour + HOUR_MS)?;
            }
        }
        if self.catch_up.is_none() && self.watermark.is_some_and(|w| w < closed_end) {
            self.set_watermark(closed_end)?;
        }
        self.expire(now)?;
        let closed_left = self.pending.keys().next().is_some_and(|h| *h < closed_end);
        Ok(self.unsaved_dirty.is_empty() && self.dirty.is_empty() && !closed_left)
    }

    fn load(&mut self) -> Result<(), StoreError> {
        let state = self.io.block_on(self.store.state(STATE_KIND))?;
        let watermark = state
            .iter()
            .find(|(k, _)| k == WATERMARK_KEY)
            .and_then(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(i64::from_le_bytes);
        let points = self.io.block_on(self.store.state(POINTS_KIND))?;
        for (point, _) in points {
            let p: Arc<str> = Arc::from(point);
            if !self.known.contains(&p) {
                self.known.insert(p);
            }
        }
        for (key, _) in self.io.block_on(self.store.state(DIRTY_KIND))? {
            if let Some((hour, point)) = key.split_once('/') {
                if let Ok(hour) = hour.parse::<i64>() {
                    let point = self.intern(point.to_owned());
                    self.dirty.insert((hour, point));
                }
            }
        }
        let sealed = self
            .io
            .block_on(self.store.state(SEALED_KIND))?
            .iter()
            .find(|(k, _)| k == SEALED_KEY)
            .and_then(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(i64::from_le_bytes);
        if let (Some(w), Some(sealed)) = (watermark, sealed) {
            let to = rollup::floor(sealed, HOUR_MS) + HOUR_MS;
            if w < to {
                self.catch_up = Some((w, to));
            }
        }
        // Marks of hours not below the watermark are plain pending hours.
        if let Some(w) = watermark {
            let late: Vec<_> = self
                .dirty
                .iter()
                .filter(|(h, _)| *h >= w)
                .cloned()
                .collect();
            for (h, p) in late {
                self.dirty.remove(&(h, p.clone()));
                self.pending.entry(h).or_default().insert(p);
            }
            self.set_watermark_in_memory(w);
            let early: Vec<i64> = self.pending.range(..w).map(|(h, _)| *h).collect();
            for h in early {
                for p in self.pending.remove(&h).into_iter().flatten() {
                    if self.dirty.insert((h, p.clone())) {
                        self.unsaved_dirty.push((h, p));
                    }
                }
            }
        }
        tracing::info!(
            points = self.known.len(),
            watermark = ?watermark,
            catch_up = ?self.catch_up,
            marked = self.dirty.len(),
            "compactor: state read back"
        );
        self.loaded = true;
        Ok(())
    }

    /// Writes new points and new late marks.
    fn save_marks(&mut self) -> Result<(), StoreError> {
        for batch in self
            .unsaved_points
            .chunks(self.config.points_per_batch.max(1) * 10)
        {
            let records = batch
                .iter()
                .map(|p| (p.to_string(), Some(Vec::new())))
                .collect();
            self.io
                .block_on(self.store.put_state(POINTS_KIND, records))?;
        }
        self.unsaved_points.clear();
        if !self.unsaved_dirty.is_empty() {
            let records = self
                .unsaved_dirty
                .iter()
                .map(|(h, p)| (dirty_key(*h, p), Some(Vec::new())))
                .collect();
            self.io
                .block_on(self.store.put_state(DIRTY_KIND, records))?;
            self.unsaved_dirty.clear();
        }
        Ok(())
    }

    fn set_watermark_in_memory(&mut self, w: i64) {
        self.watermark = Some(w);
        self.counters.watermark.store(w, Ordering::Relaxed);
    }

    fn set_watermark(&mut self, w: i64) -> Result<(), StoreError> {
        if self.watermark == Some(w) {
            return Ok(());
        }
        let write = self.store.put_state(
            STATE_KIND,
            vec![(WATERMARK_KEY.to_owned(), Some(w.to_le_bytes().to_vec()))],
        );
        self.io.block_on(write)?;
        self.set_watermark_in_memory(w);
        Ok(())
    }

    /// Compacts `hour` for `points`, a batch of points at a time: each batch is read point by
    /// point and written in one [`Store::replace_chunks_batch`] (raw rewrites and rollups
    /// together). `Ok(false)` if stopped.
    fn compact_hour(
        &mut self,
        hour: i64,
        points: &[Arc<str>],
        rx: &mpsc::Receiver<Msg>,
        waiting: &mut Vec<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<bool, StoreError> {
        for batch in points.chunks(self.config.points_per_batch.max(1)) {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            let started = Instant::now();
            self.compact_batch(hour, batch)?;
            Counters::add(
                &self.counters.busy_micros,
                started.elapsed().as_micros() as u64,
            );
            // Keep the channel short while a long hour runs.
            while let Ok(msg) = rx.try_recv() {
                self.receive(msg, waiting);
            }
        }
        Ok(true)
    }

    /// One batch of points of one hour: reads, plans, one write. The rewrite lock is held from
    /// the first read to the write, so that no late-sample merge of the writer falls between
    /// (it waits for the batch instead, a rare event).
    fn compact_batch(&self, hour: i64, batch: &[Arc<str>]) -> Result<(), StoreError> {
        let _rewriting = self.rewrite.lock().unwrap_or_else(|p| p.into_inner());
        let mut writes = Vec::with_capacity(batch.len() * 3);
        let mut stats = RawStats::default();
        for point in batch {
            let Ok(id) = point.parse::<PointId>() else {
                continue;
            };
            if let Some(samples) = self.compact_raw(&id, hour, &mut writes, &mut stats)? {
                self.rollups_of(&id, hour, &samples, &mut writes)?;
            }
        }
        stats.rollup_bytes = writes
            .iter()
            .filter(|r| r.series != Series::Raw)
            .flat_map(|r| r.put.iter().map(|(_, b)| b.len() as u64))
            .sum();
        if !writes.is_empty() {
            self.io.block_on(self.store.replace_chunks_batch(writes))?;
        }
        let c = &self.counters;
        Counters::add(&c.point_hours, stats.point_hours);
        Counters::add(&c.raw_chunks_in, stats.chunks_in);
        Counters::add(&c.raw_bytes_in, stats.bytes_in);
        Counters::add(&c.raw_chunks_out, stats.chunks_out);
        Counters::add(&c.raw_bytes_out, stats.bytes_out);
        Counters::add(&c.rollup_bytes, stats.rollup_bytes);
        Ok(())
    }

    /// Plans the rewrite of one point-hour's raw chunks into one (added to `writes`); its
    /// samples.
    fn compact_raw(
        &self,
        point: &PointId,
        hour: i64,
        writes: &mut Vec<ChunkReplacement>,
        stats: &mut RawStats,
    ) -> Result<Option<Vec<(i64, f64)>>, StoreError> {
        let stored = self.io.block_on(self.store.chunks(
            point,
            Series::Raw,
            Timestamp(hour),
            Timestamp(hour + 2 * HOUR_MS - 1),
        ))?;
        let corrupt = |start: Timestamp, e: chunk::ChunkError| {
            StoreError::Corrupt(format!("raw chunk of {point} at {}: {e}", start.0))
        };
        let mut decoded = Vec::with_capacity(stored.len());
        let mut sizes = Vec::with_capacity(stored.len());
        for (start, bytes) in &stored {
            decoded.push((
                *start,
                chunk::decode(bytes).map_err(|e| corrupt(*start, e))?,
            ));
            sizes.push((*start, bytes.len() as u64));
        }
        let plan = plan(hour, &decoded).map_err(|e| corrupt(Timestamp(hour), e))?;
        if plan.samples.is_empty() {
            return Ok(None);
        }
        stats.point_hours += 1;
        if !plan.raw_put.is_empty() {
            let touched: Vec<Timestamp> = plan
                .raw_remove
                .iter()
                .chain(plan.raw_put.iter().map(|(s, _)| s))
                .copied()
                .collect();
            stats.bytes_in += sizes
                .iter()
                .filter(|(s, _)| touched.contains(s))
                .map(|(_, n)| n)
                .sum::<u64>();
            stats.bytes_out += plan
                .raw_put
                .iter()
                .map(|(_, b)| b.len() as u64)
                .sum::<u64>();
            stats.chunks_in += plan.chunks_in;
            stats.chunks_out += plan.raw_put.len() as u64;
            writes.push(ChunkReplacement {
                point: point.clone(),
                series: Series::Raw,
                remove: plan.raw_remove,
                put: plan.raw_put,
            });
        }
        Ok(Some(plan.samples))
    }

    /// The point-hour's minute chunk, and its day's hour chunk with this hour's bucket.
    fn rollups_of(
        &self,
        point: &PointId,
        hour: i64,
        samples: &[(i64, f64)],
        out: &mut Vec<ChunkReplacement>,
    ) -> Result<(), StoreError> {
        let invalid = |e: rollup::RollupError| {
            StoreError::Invalid(format!("rollup of {point} at {hour}: {e}"))
        };
        let minutes = rollup::bucketize(samples, MINUTE_MS);
        out.push(ChunkReplacement {
            point: point.clone(),
            series: Series::Minute,
            remove: Vec::new(),
            put: vec![(Timestamp(hour), rollup::encode(&minutes).map_err(invalid)?)],
        });
        let Some(bucket) = rollup::bucketize(samples, HOUR_MS).into_iter().next() else {
            return Ok(());
        };
        let day = rollup::floor(hour, DAY_MS);
        let stored = self.io.block_on(self.store.chunks(
            point,
            Series::Hour,
            Timestamp(day),
            Timestamp(day),
        ))?;
        let mut hours: Vec<Bucket> = match stored.iter().find(|(s, _)| s.0 == day) {
            Some((_, bytes)) => rollup::decode(bytes)
                .map_err(|e| StoreError::Corrupt(format!("1h rollup of {point} at {day}: {e}")))?,
            None => Vec::new(),
        };
        hours.retain(|b| b.start != bucket.start);
        hours.push(bucket);
        hours.sort_by_key(|b| b.start);
        out.push(ChunkReplacement {
            point: point.clone(),
            series: Series::Hour,
            remove: Vec::new(),
            put: vec![(Timestamp(day), rollup::encode(&hours).map_err(invalid)?)],
        });
        Ok(())
    }

    /// Retention, about once an hour.
    fn expire(&mut self, now: i64) -> Result<(), StoreError> {
        if self.last_expire.is_some_and(|t| now - t < HOUR_MS) {
            return Ok(());
        }
        let mut removed = 0;
        for (series, keep) in [
            (Series::Raw, self.config.retention_raw),
            (Series::Minute, self.config.retention_1m),
            (Series::Hour, self.config.retention_1h),
        ] {
            let before = Timestamp(now) - keep;
            removed += self.io.block_on(self.store.expire(series, before))?;
        }
        if removed > 0 {
            tracing::info!(removed, "compactor: retention removed old chunks");
        }
        Counters::add(&self.counters.expired, removed);
        self.last_expire = Some(now);
        Ok(())
    }
}

fn dirty_key(hour: i64, point: &str) -> String {
    format!("{hour}/{point}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::historian::{Historian, HistorianConfig};
    use crate::store::embedded::EmbeddedStore;
    use cistern_actors::ports::{Arrival, SampleSink};
    use cistern_actors::Receipt;
    use cistern_schemas::reading::{PointValue, Record};
    use cistern_schemas::{DeviceId, DeviceKind, Quality};

    /// Monday 2026-01-05 00:00 UTC.
    const H0: i64 = 1_767_571_200_000;

    fn series(from: i64, n: i64) -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| (from + i * 2_000, (2_000 + (i * 7) % 23) as f64 / 1000.0))
            .collect()
    }

    fn chunk_of(samples: &[(i64, f64)]) -> (Timestamp, Vec<(i64, f64)>) {
        (Timestamp(samples[0].0), samples.to_vec())
    }

    #[test]
    fn an_hours_small_chunks_become_one() {
        let all = series(H0, 1800);
        let stored: Vec<_> = all.chunks(60).map(chunk_of).collect();
        let p = plan(H0, &stored).unwrap();
        assert_eq!(p.samples, all);
        assert_eq!(p.chunks_in, 30);
        assert_eq!(p.raw_put.len(), 1);
        assert_eq!(p.raw_put[0].0, Timestamp(H0));
        assert_eq!(chunk::decode(&p.raw_put[0].1).unwrap(), all);
        // the first small chunk is replaced by the write itself
        assert_eq!(p.raw_remove.len(), 29);
        assert!(!p.raw_remove.contains(&Timestamp(H0)));
        let small: usize = stored
            .iter()
            .map(|(_, s)| chunk::encode(s).unwrap().len())
            .sum();
        println!(
            "one hour, 1,800 samples: 30 chunks of 2 min {small} B ({:.2} B/pt), one chunk {} B ({:.2} B/pt)",
            small as f64 / 1800.0,
            p.raw_put[0].1.len(),
            p.raw_put[0].1.len() as f64 / 1800.0
        );
        assert!(p.raw_put[0].1.len() < small);
        // compacted again: nothing to write
        let again = plan(H0, &[(Timestamp(H0), all.clone())]).unwrap();
        assert!(again.raw_put.is_empty() && again.raw_remove.is_empty());
        assert_eq!(again.samples, all);
    }

    #[test]
    fn chunks_straddling_the_hour_keep_their_outside_samples() {
        let all = series(H0 - 60_000, 1800 + 60);
        // 10:59 .. 11:01, then chunks inside, then 11:59 .. 12:01
        let stored = vec![
            chunk_of(&all[..60]),
            chunk_of(&all[60..1800]),
            chunk_of(&all[1800..]),
        ];
        // plus an unrelated chunk before, and a duplicate copy of a sample
        let mut stored_dup = vec![chunk_of(&series(H0 - 3_000_000, 10))];
        stored_dup.extend(stored);
        stored_dup[2].1.insert(0, all[30]);
        let p = plan(H0, &stored_dup).unwrap();
        let inside: Vec<_> = all
            .iter()
            .copied()
            .filter(|s| (H0..H0 + HOUR_MS).contains(&s.0))
            .collect();
        assert_eq!(p.samples, inside);
        let puts: BTreeMap<i64, Vec<(i64, f64)>> = p
            .raw_put
            .iter()
            .map(|(s, b)| (s.0, chunk::decode(b).unwrap()))
            .collect();
        assert_eq!(puts.len(), 3, "{:?}", puts.keys());
        assert_eq!(puts[&(H0 - 60_000)], all[..30].to_vec());
        assert_eq!(puts[&H0], inside);
        assert_eq!(puts[&(H0 + HOUR_MS)], all[1830..].to_vec());
        // the chunks that started inside the hour went; the unrelated one stays
        assert_eq!(p.raw_remove, vec![stored_dup[2].0, stored_dup[3].0]);
        // every sample is in exactly one chunk afterwards
        let total: usize = puts.values().map(Vec::len).sum();
        assert_eq!(total, all.len());
    }

    fn level_records(samples: &[(i64, f64)]) -> Vec<Record> {
        let level = DeviceKind::Tank.point_index("level").unwrap() as u16;
        samples
            .iter()
            .map(|&(t, v)| Record {
                t: Timestamp(t),
                values: vec![PointValue {
                    index: level,
                    value: v,
                    quality: Quality::GOOD,
                }],
            })
            .collect()
    }

    fn config() -> HistorianConfig {
        HistorianConfig {
            flush_every: Duration::from_millis(10),
            seal_every: Duration::ZERO,
            compaction: Some(CompactionConfig {
                clock: CompactionClock::Data,
                tick: Duration::from_millis(10),
                ..CompactionConfig::default()
            }),
            ..HistorianConfig::default()
        }
    }

    async fn raw_starts(store: &dyn Store, point: &PointId, from: i64, to: i64) -> Vec<i64> {
        store
            .chunks(point, Series::Raw, Timestamp(from), Timestamp(to))
            .await
            .unwrap()
            .into_iter()
            .map(|(s, _)| s.0)
            .filter(|s| (from..=to).contains(s))
            .collect()
    }

    fn assert_buckets_match(got: &[Bucket], want: &[Bucket]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(
                (g.start, g.min, g.max, g.count, g.last_t, g.last_v),
                (w.start, w.min, w.max, w.count, w.last_t, w.last_v)
            );
            assert!(
                (g.sum - w.sum).abs() <= 1e-9 * w.count as f64,
                "{g:?} {w:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_hours_are_compacted_rolled_up_recompacted_and_caught_up_after_a_restart() {
        let d = std::env::temp_dir().join(format!("cistern-compact-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let device: DeviceId = "XM-0001/T1".parse().unwrap();
        let point: PointId = "XM-0001/T1.level".parse().unwrap();
        let rt = tokio::runtime::Handle::current();
        let store = Arc::new(EmbeddedStore::open(&d).unwrap());
        let mut all = series(H0, 3 * 1800);
        {
            let h = Historian::start(store.clone(), &d, config(), rt.clone()).unwrap();
            // 10-minute seals, as the writer would make them with a 10-minute seal_every
            for (i, part) in all.chunks(300).enumerate() {
                h.accept(
                    &device,
                    Arrival::Live,
                    &level_records(part),
                    Receipt::none(),
                );
                while h.metrics().sealed.get() < ((i + 1) * 300) as u64 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let compactor = h.compactor().unwrap();
            assert!(compactor.idle().await);
            // hours 0 and 1 are closed (the data clock is at 02:59:58), hour 2 is not
            let stats = compactor.stats();
            assert_eq!(stats.point_hours, 2, "{stats:?}");
            assert_eq!(stats.watermark, H0 + 2 * HOUR_MS);
            assert_eq!(
                raw_starts(store.as_ref(), &point, H0, H0 + HOUR_MS - 1).await,
                [H0]
            );
            assert_eq!(
                raw_starts(store.as_ref(), &point, H0 + 2 * HOUR_MS, H0 + 3 * HOUR_MS)
                    .await
                    .len(),
                6
            );
            assert_eq!(
                h.history(&point, Timestamp(H0 - DAY_MS), Timestamp(H0 + DAY_MS))
                    .await
                    .unwrap(),
                all
            );

            // steps served from rollups, raw samples and both at once equal bucketing the raw
            let (from, to) = (Timestamp(H0 + 61_000), Timestamp(H0 + 3 * HOUR_MS - 7_000));
            let inside: Vec<_> = all
                .iter()
                .copied()
                .filter(|s| (from.0..=to.0).contains(&s.0))
                .collect();
            for step in [60_000, 420_000, HOUR_MS, 30_000] {
                let got = h
                    .history_step(&point, from, to, Duration::from_millis(step as u64))
                    .await
                    .unwrap();
                assert_buckets_match(&got, &rollup::bucketize(&inside, step));
            }
            let minutes = store
                .chunks(&point, Series::Minute, Timestamp(H0), Timestamp(H0))
                .await
                .unwrap();
            assert_eq!(rollup::decode(&minutes[0].1).unwrap().len(), 60);

            // a late sample into the compacted hour 0: compacted again, rollups follow
            let late = (H0 + 1_000, 9.999);
            h.accept(
                &device,
                Arrival::Backfill,
                &level_records(&[late]),
                Receipt::none(),
            );
            while h.metrics().merged.get() < 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(compactor.idle().await);
            assert_eq!(compactor.stats().recompacted, 1);
            all.push(late);
            all.sort_by_key(|s| s.0);
            assert_eq!(
                raw_starts(store.as_ref(), &point, H0, H0 + HOUR_MS - 1).await,
                [H0]
            );
            let hour = h
                .history_step(
                    &point,
                    Timestamp(H0),
                    Timestamp(H0 + HOUR_MS - 1),
                    Duration::from_secs(3600),
                )
                .await
                .unwrap();
            assert_eq!((hour[0].count, hour[0].max), (1801, 9.999));
            h.stop();
        }
        // After a restart the watermark is back, and hour 2 — sealed before the restart, never
        // compacted — is caught up once it closes.
        let h = Historian::start(store.clone(), &d, config(), rt).unwrap();
        let compactor = h.compactor().unwrap();
        compactor.advance_clock(Timestamp(H0 + 4 * HOUR_MS));
        assert!(compactor.idle().await);
        assert_eq!(compactor.stats().watermark, H0 + 3 * HOUR_MS);
        assert_eq!(
            raw_starts(store.as_ref(), &point, H0 + 2 * HOUR_MS, H0 + 3 * HOUR_MS).await,
            [H0 + 2 * HOUR_MS]
        );
        assert_eq!(
            h.history(&point, Timestamp(H0 - DAY_MS), Timestamp(H0 + DAY_MS))
                .await
                .unwrap(),
            all
        );
        let day = h
            .history_step(
                &point,
                Timestamp(H0),
                Timestamp(H0 + DAY_MS - 1),
                Duration::from_secs(86_400),
            )
            .await
            .unwrap();
        assert_eq!(day.len(), 1);
        assert_eq!(day[0].count, all.len() as u64);
    }
}
