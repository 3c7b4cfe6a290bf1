//! `cistern bench-store`: the historian's figures on a simulated fleet — write throughput,
//! bytes on disk per point, and 24 h query latency.
//!
//! It generates `hours` of 2-second readings of `rooms` simulated rooms ([`Simulator`], from
//! [`TRACE_EPOCH`], as fast as the machine goes) and feeds them through the real historian —
//! accept, write-ahead, seal (every 2 minutes of data), compaction (on the data clock) — into
//! a fresh embedded store, then measures. The simulator and the historian run at once, on
//! different threads: the report gives the simulator's own time so that it is clear which of
//! them set the pace.
//!
//! "Points" are data points: one value of one point at one instant (DOMAIN.md §6).
//!
//! Measured 2026-11-22 on the shared 2-core build VM (load average ~5 from other builds), with
//! `cistern bench-store --rooms 210 --hours 2 --data <fresh dir>` (release), 48.4 M points:
//! before the device-batched handover and rolling seal, 34.0 s feed (1.42 M points/s), writer
//! busy 8.5 s write-ahead + 8.8 s seal, data directory 8.5 B/point as left; after, 24.0 s
//! (2.02 M points/s), 9.2 s + 3.1 s, 1.9 B/point (version 2 blobs are 18 B a sample, not ~48).
//! The feed now outruns the seal (a seal no longer holds the receipts, so it no longer
//! throttles the feeder), and the historian spills twice during the run and drains the spill.

use crate::historian::compact::{CompactionClock, CompactionConfig, CompactionStats};
use crate::historian::rollup::{HOUR_MS, MINUTE_MS};
use crate::historian::{Historian, HistorianConfig};
use crate::lab::sim::{generate_fleet, Simulator};
use crate::lab::simulate::TRACE_EPOCH;
use crate::store::embedded::EmbeddedStore;
use crate::store::{IoRuntime, Series, Store, StoreError};
use cistern_actors::ports::{Arrival, SampleSink};
use cistern_actors::Receipt;
use cistern_schemas::reading::{PointValue, Record};
use cistern_schemas::{DeviceId, PointId, Quality, Timestamp};
use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `cistern bench-store`.
#[derive(Clone, Debug)]
pub struct StoreBenchOptions {
    pub rooms: usize,
    pub hours: u64,
    /// A data directory that does not exist yet (or is empty).
    pub data: PathBuf,
    pub seed: u64,
    /// Points whose last 24 h are queried.
    pub query_points: usize,
    /// Points the compactor writes per store call ([`CompactionConfig::points_per_batch`]);
    /// 1 is one commit per point-hour, as before batching.
    pub compaction_batch: usize,
}

/// What `cistern bench-store` measured.
#[derive(Clone, Debug)]
pub struct StoreBenchReport {
    pub rooms: usize,
    pub hours: u64,
    /// Distinct points (series).
    pub series: usize,
    /// Data points written.
    pub points: u64,
    /// From the first accept until the store held every point (sealed).
    pub feed: Duration,
    /// Of which the simulator's own stepping and reading (on its thread).
    pub simulator: Duration,
    /// Writer time spent on the write-ahead and on sealing.
    pub writer_wal: Duration,
    pub writer_seal: Duration,
    /// Compacting the hours left after the feed (the rest was compacted during it).
    pub final_compaction: Duration,
    pub compaction: CompactionStats,
    /// Sizes of the data directory's files after compaction.
    pub store_file_bytes: u64,
    pub wal_file_bytes: u64,
    /// The store file rewritten without free pages (`redb` compaction of a copy), and how long
    /// redb took.
    pub store_compacted_bytes: Option<u64>,
    pub store_compaction_time: Duration,
    /// Chunk bytes held in the store, by series.
    pub raw_bytes: u64,
    pub minute_bytes: u64,
    pub hour_bytes: u64,
    /// 24 h query latencies (mean over the queried points), raw and at 1 min / 1 h steps.
    pub query_raw: Duration,
    pub query_1m: Duration,
    pub query_1h: Duration,
    pub queried_samples: usize,
}

impl StoreBenchReport {
    fn per_point(&self, bytes: u64) -> f64 {
        bytes as f64 / self.points.max(1) as f64
    }

    /// Data points per second from the first accept until all were in the store.
    pub fn throughput(&self) -> f64 {
        self.points as f64 / self.feed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for StoreBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(f, "| figure | value |")?;
        writeln!(f, "|---|---|")?;
        writeln!(
            f,
            "| fleet | {} rooms, {} series, {} h at 2 s |",
            self.rooms, self.series, self.hours
        )?;
        writeln!(f, "| points written | {} |", self.points)?;
        writeln!(
            f,
            "| feed time (accept → store) | {:.1} s |",
            self.feed.as_secs_f64()
        )?;
        writeln!(
            f,
            "| write throughput | {:.0} points/s |",
            self.throughput()
        )?;
        writeln!(
            f,
            "| simulator time (same period, other thread) | {:.1} s |",
            self.simulator.as_secs_f64()
        )?;
        writeln!(
            f,
            "| writer busy: write-ahead / seal | {:.1} s / {:.1} s ({:.0} points/s of writer time) |",
            self.writer_wal.as_secs_f64(),
            self.writer_seal.as_secs_f64(),
            self.points as f64 / (self.writer_wal + self.writer_seal).as_secs_f64().max(1e-9)
        )?;
        writeln!(
            f,
            "| compaction | {} point-hours, raw {} chunks {} B → {} chunks {} B; last hours {:.1} s |",
            self.compaction.point_hours,
            self.compaction.raw_chunks_in,
            self.compaction.raw_bytes_in,
            self.compaction.raw_chunks_out,
            self.compaction.raw_bytes_out,
            self.final_compaction.as_secs_f64()
        )?;
        writeln!(
            f,
            "| compactor busy | {:.1} s ({:.0} point-hours/s) |",
            self.compaction.busy_micros as f64 / 1e6,
            self.compaction.point_hours as f64
                / (self.compaction.busy_micros as f64 / 1e6).max(1e-9)
        )?;
        writeln!(
            f,
            "| compaction watermark / recompacted | {} / {} |",
            self.compaction.watermark, self.compaction.recompacted
        )?;
        writeln!(
            f,
            "| raw chunk bytes per point | {:.3} B |",
            self.per_point(self.raw_bytes)
        )?;
        writeln!(
            f,
            "| rollup chunk bytes per point (1 min + 1 h) | {:.3} B + {:.3} B |",
            self.per_point(self.minute_bytes),
            self.per_point(self.hour_bytes)
        )?;
        writeln!(
            f,
            "| all chunk bytes per point | {:.3} B |",
            self.per_point(self.raw_bytes + self.minute_bytes + self.hour_bytes)
        )?;
        writeln!(
            f,
            "| store file per point (history.redb, as left) | {:.3} B ({} B) |",
            self.per_point(self.store_file_bytes),
            self.store_file_bytes
        )?;
        if let Some(c) = self.store_compacted_bytes {
            writeln!(
                f,
                "| store file per point (free pages reclaimed) | {:.3} B ({c} B; redb compact() {:.1} s) |",
                self.per_point(c),
                self.store_compaction_time.as_secs_f64()
            )?;
        }
        writeln!(
            f,
            "| data directory per point (store + write-ahead, as left) | {:.3} B |",
            self.per_point(self.store_file_bytes + self.wal_file_bytes)
        )?;
        writeln!(
            f,
            "| 24 h query, one point ({} samples): raw / 1 min / 1 h | {:.2} ms / {:.2} ms / {:.2} ms |",
            self.queried_samples,
            ms(self.query_raw),
            ms(self.query_1m),
            ms(self.query_1h)
        )
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum StoreBenchError {
    #[error("{0} exists and is not empty: give a fresh data directory")]
    NotFresh(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the historian did not take every point within {0:?}")]
    Stalled(Duration),
    #[error("the feeding thread failed")]
    Join,
}

/// Runs the benchmark (see the module doc). Blocking parts run on their own threads.
pub async fn run_store_bench(opts: StoreBenchOptions) -> Result<StoreBenchReport, StoreBenchError> {
    if std::fs::read_dir(&opts.data).is_ok_and(|mut d| d.next().is_some()) {
        return Err(StoreBenchError::NotFresh(opts.data.display().to_string()));
    }
    let io = IoRuntime::new()?;
    let dir = opts.data.clone();
    let store = Arc::new(
        io.handle()
            .spawn_blocking(move || EmbeddedStore::open(&dir))
            .await
            .map_err(|_| StoreBenchError::Join)??,
    );
    let inventory = generate_fleet(opts.rooms, opts.seed);
    let config = HistorianConfig {
        flush_every: Duration::from_millis(20),
        // Sealed by size: 2 minutes of the fleet's data (~62 points per room at 2 s), or
        // after a second when the feed is slower than that.
        seal_every: Duration::from_secs(1),
        seal_samples: opts.rooms.max(1) * 70 * 60,
        compaction: Some(CompactionConfig {
            clock: CompactionClock::Data,
            tick: Duration::from_millis(50),
            points_per_batch: opts.compaction_batch.max(1),
            ..CompactionConfig::default()
        }),
        ..HistorianConfig::default()
    };
    let (h, dir, writer_store) = (io.handle(), opts.data.clone(), store.clone());
    let historian = Arc::new(
        io.handle()
            .spawn_blocking(move || Historian::start(writer_store, &dir, config, h))
            .await
            .map_err(|_| StoreBenchError::Join)??,
    );

    let started = Instant::now();
    let feeder = {
        let historian = historian.clone();
        let hours = opts.hours;
        let seed = opts.seed;
        std::thread::Builder::new()
            .name("bench-feed".into())
            .spawn(move || feed(&historian, &inventory, seed, hours))
            .map_err(|_| StoreBenchError::Join)?
    };
    let (points, series, simulator) = tokio::task::spawn_blocking(move || feeder.join())
        .await
        .map_err(|_| StoreBenchError::Join)?
        .map_err(|_| StoreBenchError::Join)?;
    let metrics = historian.metrics().clone();
    let deadline = Instant::now() + Duration::from_secs(600);
    while metrics.sealed.get() < points {
        if Instant::now() > deadline {
            return Err(StoreBenchError::Stalled(Duration::from_secs(600)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let feed = started.elapsed();
    let end = TRACE_EPOCH.0 + opts.hours as i64 * HOUR_MS;
    let final_started = Instant::now();
    let mut compaction = CompactionStats::default();
    if let Some(compactor) = historian.compactor() {
        compactor.advance_clock(Timestamp(end + 2 * HOUR_MS));
        compactor.idle().await;
        compaction = compactor.stats();
    }
    let final_compaction = final_started.elapsed();
    let seconds = |op: &str| {
        Duration::from_secs_f64(
            metrics
                .write_seconds
                .with_label_values(&[op])
                .get_sample_sum(),
        )
    };
    let (writer_wal, writer_seal) = (seconds("wal"), seconds("seal"));

    // Chunk bytes by series, over every point.
    let (from, to) = (TRACE_EPOCH, Timestamp(end + HOUR_MS));
    let ids = series_ids(&historian).await?;
    let mut bytes = [0u64; 3];
    for id in &ids {
        for (i, s) in Series::ALL.iter().enumerate() {
            // `from` is a UTC midnight: the day chunks of hour rollups are found too.
            let chunks = store.chunks(id, *s, from, to).await?;
            bytes[i] += chunks.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
        }
    }

    // 24 h (or the whole run when shorter) of a few points.
    let q_to = Timestamp(end - 1);
    let q_from = Timestamp((end - 24 * HOUR_MS).max(TRACE_EPOCH.0));
    let mut q = [Duration::ZERO; 3];
    let mut queried = 0;
    let chosen: Vec<&PointId> = ids
        .iter()
        .step_by((ids.len() / opts.query_points.max(1)).max(1))
        .take(opts.query_points.max(1))
        .collect();
    for id in &chosen {
        let t = Instant::now();
        queried = historian.history(id, q_from, q_to).await?.len();
        q[0] += t.elapsed();
        for (i, step) in [(1, MINUTE_MS), (2, HOUR_MS)] {
            let t = Instant::now();
            historian
                .history_step(id, q_from, q_to, Duration::from_millis(step as u64))
                .await?;
            q[i] += t.elapsed();
        }
    }
    let n = chosen.len().max(1) as u32;
    historian.stop();
    drop(historian);
    let size = |name: &str| std::fs::metadata(opts.data.join(name)).map_or(0, |m| m.len());
    let (store_file_bytes, wal_file_bytes) = (size("history.redb"), size("wal.redb"));
    drop(store);
    let (store_compacted_bytes, store_compaction_time) =
        match compacted_size(&opts.data.join("history.redb")) {
            Some((bytes, took)) => (Some(bytes), took),
            None => (None, Duration::ZERO),
        };
    Ok(StoreBenchReport {
        rooms: opts.rooms,
        hours: opts.hours,
        series,
        points,
        feed,
        simulator,
        writer_wal,
        writer_seal,
        final_compaction,
        compaction,
        store_file_bytes,
        wal_file_bytes,
        store_compacted_bytes,
        store_compaction_time,
        raw_bytes: bytes[0],
        minute_bytes: bytes[1],
        hour_bytes: bytes[2],
        query_raw: q[0] / n,
        query_1m: q[1] / n,
        query_1h: q[2] / n,
        queried_samples: queried,
    })
}

/// Simulated steps handed over and not yet durable, at most (5 minutes of data): bounds the
/// memory of the writer's channel while the feed stays ahead of the flushes.
const MAX_STEPS_IN_FLIGHT: usize = 150;

/// Steps the simulator through `hours` and hands every reading to the historian, one
/// awaited receipt per step (at most [`MAX_STEPS_IN_FLIGHT`] steps in flight). Returns the points handed
/// over, the number of distinct series and the simulator's own time.
fn feed(
    historian: &Historian,
    inventory: &cistern_schemas::inventory::Inventory,
    seed: u64,
    hours: u64,
) -> (u64, usize, Duration) {
    let mut sim = Simulator::new(inventory, seed, TRACE_EPOCH);
    let period = Duration::from_secs(2);
    let steps = hours * 1800;
    let mut in_flight: VecDeque<tokio::sync::oneshot::Receiver<()>> = VecDeque::new();
    let mut points = 0u64;
    let mut series = 0usize;
    let mut simulator = Duration::ZERO;
    for i in 0..steps {
        let t = Instant::now();
        if i > 0 {
            sim.step(period);
        }
        let readings = sim.readings();
        simulator += t.elapsed();
        let mut devices = readings
            .iter()
            .flat_map(|r| {
                r.devices
                    .iter()
                    .map(move |(unit, values)| (r, unit, values))
            })
            .peekable();
        while let Some((r, unit, values)) = devices.next() {
            let device = DeviceId::new(r.room.clone(), *unit);
            let record = record_of(r.t, unit.kind().points().len(), values);
            points += record.values.len() as u64;
            if i == 0 {
                series += record.values.len();
            }
            // One awaited receipt per step, on its last handover: it completes once the
            // whole step is durable.
            let receipt = if devices.peek().is_none() {
                let (receipt, durable) = Receipt::new();
                in_flight.push_back(durable);
                receipt
            } else {
                Receipt::none()
            };
            historian.accept(&device, Arrival::Live, &[record], receipt);
        }
        while in_flight.len() > MAX_STEPS_IN_FLIGHT {
            if let Some(durable) = in_flight.pop_front() {
                let _ = futures::executor::block_on(durable);
            }
        }
    }
    for durable in in_flight {
        let _ = futures::executor::block_on(durable);
    }
    (points, series, simulator)
}

fn record_of(t: Timestamp, specs: usize, values: &[f64]) -> Record {
    Record {
        t,
        values: values
            .iter()
            .enumerate()
            .filter(|(i, v)| v.is_finite() && *i < specs)
            .map(|(i, &value)| PointValue {
                index: i as u16,
                value,
                quality: Quality::GOOD,
            })
            .collect(),
    }
}

/// Every series the run wrote (the compactor's `points` state records).
async fn series_ids(historian: &Historian) -> Result<Vec<PointId>, StoreError> {
    Ok(historian
        .store()
        .state("points")
        .await?
        .into_iter()
        .filter_map(|(p, _)| p.parse().ok())
        .collect())
}

/// The size of a copy of the redb file after redb's own compaction (free pages reclaimed), and
/// the time `compact()` took.
fn compacted_size(path: &Path) -> Option<(u64, Duration)> {
    let copy = path.with_extension("compacted.redb");
    std::fs::copy(path, &copy).ok()?;
    let size = (|| {
        let mut db = redb::Database::open(&copy).ok()?;
        let started = Instant::now();
        while db.compact().ok()? {}
        let took = started.elapsed();
        drop(db);
        std::fs::metadata(&copy).ok().map(|m| (m.len(), took))
    })();
    let _ = std::fs::remove_file(&copy);
    size
}
