//! `cistern bench backup`: how long a backup of a day of the fleet's history takes, and what
//! it does to ingest latency meanwhile (issue 24: 24 h of the 1× fleet in < 60 s while ingest
//! keeps its latency).
//!
//! 1. **Fill**: a fresh embedded store gets `hours` of history of `rooms` generated rooms, as
//!    the compactor leaves it — per point and hour one raw chunk (1,800 samples at 2 s) and one
//!    chunk of 1-minute rollups, per point and UTC day one of hourly rollups — written straight
//!    through the [`Store`] port (fast: the chunks are encoded once per template and hour, the
//!    points share 16 synthetic signals, quantised as the field sends them).
//! 2. **Ingest**: a historian on the store takes the fleet's live rate (every device's batch
//!    every 2 s, with a receipt each, as the MQTT ingest hands them over); the latency of a
//!    batch is from its handover until its receipt completes (durable: when the MQTT message
//!    would be acknowledged).
//! 3. **Backup**: after a baseline, [`crate::backup::make`] copies the live store and
//!    write-ahead into a new directory while ingest goes on; then [`crate::backup::verify`]
//!    reads it back. The report gives the backup's time and size and the ingest latency
//!    before, during and after.
//!
//! Budget: 24 h of the 1× fleet (2,100 rooms) in < 60 s, ingest latency holding. Measured
//! 2026-12-07 on the shared 2-core build VM (load ~6), release build:
//! `cistern bench backup --rooms 2100 --hours 6 --baseline 10`: 6 h (1.46 G samples, 2,076 MiB)
//! backed up in 14.1 s, ingest p99 392 ms before and during (max 393 / 425 ms); `--hours 3`:
//! 8.4 s. ~1.9 s per hour of history: ~48–56 s for 24 h by extrapolation (the full day needs
//! ~16.5 GB of disk, more than the VM had free). ARCHITECTURE.md § Backup and restore.

use crate::backup::{self, BackupSource};
use crate::historian::rollup::{self, Bucket, DAY_MS, HOUR_MS, MINUTE_MS};
use crate::historian::{Historian, HistorianConfig};
use crate::lab::sim::generate_fleet;
use crate::store::embedded::EmbeddedStore;
use crate::store::{ChunkKey, IoRuntime, Series, Store, StoreError};
use cistern_actors::ports::{Arrival, SampleSink};
use cistern_actors::Receipt;
use cistern_schemas::chunk;
use cistern_schemas::reading::{PointValue, Record};
use cistern_schemas::{DeviceId, PointId, Quality, Timestamp};
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of `cistern bench backup`.
#[derive(Clone, Debug)]
pub struct BackupBenchOptions {
    pub rooms: usize,
    pub hours: u64,
    /// A working directory that does not exist yet (or is empty): `data/` and `backup/`.
    pub dir: PathBuf,
    pub seed: u64,
    /// Seconds of ingest before the backup (the baseline) and after it.
    pub baseline: u64,
    /// Keep the directory afterwards.
    pub keep: bool,
}

/// Ingest latency over one phase.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub batches: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut ms: Vec<f64>) -> Self {
        if ms.is_empty() {
            return Self::default();
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        Self {
            batches: ms.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: ms[ms.len() - 1],
        }
    }
}

/// What `cistern bench backup` measured.
#[derive(Clone, Debug, Serialize)]
pub struct BackupBenchReport {
    pub rooms: usize,
    pub hours: u64,
    pub series: usize,
    /// Samples the filled history stands for.
    pub samples: u64,
    pub chunks: u64,
    pub fill_s: f64,
    pub store_file_bytes: u64,
    pub backup_s: f64,
    pub backup_bytes: u64,
    pub verify_s: f64,
    /// Samples per second the live ingest offered during the run.
    pub ingest_rate: f64,
    pub before: Latency,
    pub during: Latency,
    pub after: Latency,
}

impl fmt::Display for BackupBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        writeln!(f, "| figure | value |")?;
        writeln!(f, "|---|---|")?;
        writeln!(
            f,
            "| history | {} rooms, {} series, {} h ({} samples, {} chunks) |",
            self.rooms, self.series, self.hours, self.samples, self.chunks
        )?;
        writeln!(
            f,
            "| fill (through the Store port) | {:.1} s, store file {:.0} MiB ({:.2} B/sample) |",
            self.fill_s,
            mib(self.store_file_bytes),
            self.store_file_bytes as f64 / self.samples.max(1) as f64
        )?;
        writeln!(
            f,
            "| **backup** (live, ingest on) | **{:.1} s**, {:.0} MiB ({:.0} MiB/s) |",
            self.backup_s,
            mib(self.backup_bytes),
            mib(self.backup_bytes) / self.backup_s.max(1e-9)
        )?;
        writeln!(f, "| verify (SHA-256, tables) | {:.1} s |", self.verify_s)?;
        writeln!(
            f,
            "| live ingest offered | {:.0} samples/s |",
            self.ingest_rate
        )?;
        for (name, l) in [
            ("before", &self.before),
            ("during the backup", &self.during),
            ("after", &self.after),
        ] {
            writeln!(
                f,
                "| ingest latency {name} (handover → durable) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} batches) |",
                l.p50_ms, l.p99_ms, l.max_ms, l.batches
            )?;
        }
        Ok(())
    }
}

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BackupBenchError {
    #[error("{0} is not empty: the bench needs a fresh directory")]
    NotFresh(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backup(#[from] backup::BackupError),
    #[error("bench: {0}")]
    Other(String),
}

/// A synthetic signal, quantised to the point's decimals as the field sends it.
fn signal(template: usize, t: i64) -> f64 {
    let k = template as f64;
    let x = t as f64 / 1000.0;
    let v = 0.3
        + 0.05 * k
        + 0.02 * (x / (600.0 + 37.0 * k)).sin()
        + 0.003 * ((x * (k + 1.0)) % 7.0 - 3.0) / 3.0;
    (v * 1000.0).round() / 1000.0
}

const TEMPLATES: usize = 16;

/// One template's hour: the raw chunk, the 1-minute rollups' chunk, the hour's bucket.
type HourChunks = (Vec<u8>, Vec<u8>, Vec<Bucket>);

/// Encoded chunks of one hour for each template.
fn hour_chunks(start: i64) -> Result<Vec<HourChunks>, BackupBenchError> {
    (0..TEMPLATES)
        .map(|k| {
            let samples: Vec<(i64, f64)> = (0..1800)
                .map(|i| {
                    let t = start + i * 2_000;
                    (t, signal(k, t))
                })
                .collect();
            let raw =
                chunk::encode(&samples).map_err(|e| BackupBenchError::Other(e.to_string()))?;
            let minutes = rollup::bucketize(&samples, MINUTE_MS);
            let minute =
                rollup::encode(&minutes).map_err(|e| BackupBenchError::Other(e.to_string()))?;
            let hour = rollup::rebucket(&minutes, HOUR_MS);
            Ok((raw, minute, hour))
        })
        .collect()
}

/// Waits `d` on a plain thread (the bench's own threads, never an async one).
fn pause(d: Duration) {
    let until = Instant::now() + d;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        std::thread::park_timeout(left);
    }
}

/// Runs the bench (blocking; it makes its own runtimes and threads).
pub fn run(opts: &BackupBenchOptions) -> Result<BackupBenchReport, BackupBenchError> {
    if std::fs::read_dir(&opts.dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(BackupBenchError::NotFresh(opts.dir.display().to_string()));
    }
    let data = opts.dir.join("data");
    let dest = opts.dir.join("backup");
    let inventory = generate_fleet(opts.rooms, opts.seed);
    let devices: Vec<DeviceId> = inventory
        .rooms
        .iter()
        .flat_map(|r| {
            r.units()
                .into_iter()
                .map(|u| DeviceId::new(r.id.clone(), u))
        })
        .collect();
    let points: Vec<PointId> = devices
        .iter()
        .flat_map(|d| d.unit.kind().points().iter().map(|p| d.point(p.name)))
        .collect();

    let io = IoRuntime::new()?;
    let store = Arc::new(EmbeddedStore::open(&data)?);
    let handle = io.handle();

    // 1. Fill: `hours` ending at the last full hour, so the live samples come after.
    let now = Timestamp::now().0;
    let end = now.div_euclid(HOUR_MS) * HOUR_MS;
    let first = end - opts.hours as i64 * HOUR_MS;
    let started = Instant::now();
    let mut chunks = 0u64;
    let mut day_buckets: Vec<Vec<Bucket>> = vec![Vec::new(); TEMPLATES];
    let mut day_start = first.div_euclid(DAY_MS) * DAY_MS;
    let put = |batch: Vec<(ChunkKey, Vec<u8>)>| {
        let store = store.clone();
        handle.block_on(async move { store.put_chunks(batch).await })
    };
    let flush_days = |day_start: i64,
                      day_buckets: &mut Vec<Vec<Bucket>>,
                      chunks: &mut u64|
     -> Result<(), BackupBenchError> {
        let encoded: Vec<Vec<u8>> = day_buckets
            .iter()
            .map(|b| rollup::encode(b).map_err(|e| BackupBenchError::Other(e.to_string())))
            .collect::<Result<_, _>>()?;
        for part in points.chunks(50_000).enumerate() {
            let (offset, ps) = part;
            let batch: Vec<_> = ps
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let key = ChunkKey {
                        point: p.clone(),
                        series: Series::Hour,
                        start: Timestamp(day_start),
                    };
                    (key, encoded[(offset * 50_000 + i) % TEMPLATES].clone())
                })
                .collect();
            *chunks += batch.len() as u64;
            put(batch)?;
        }
        day_buckets.iter_mut().for_each(Vec::clear);
        Ok(())
    };
    for h in 0..opts.hours as i64 {
        let start = first + h * HOUR_MS;
        if start.div_euclid(DAY_MS) * DAY_MS != day_start {
            flush_days(day_start, &mut day_buckets, &mut chunks)?;
            day_start = start.div_euclid(DAY_MS) * DAY_MS;
        }
        let templates = hour_chunks(start)?;
        for (k, (_, _, hour)) in templates.iter().enumerate() {
            day_buckets[k].extend(hour.iter().copied());
        }
        for (series, pick) in [(Series::Raw, 0), (Series::Minute, 1)] {
            for (offset, ps) in points.chunks(50_000).enumerate() {
                let batch: Vec<_> = ps
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let t = &templates[(offset * 50_000 + i) % TEMPLATES];
                        let bytes = if pick == 0 { &t.0 } else { &t.1 };
                        let key = ChunkKey {
                            point: p.clone(),
                            series,
                            start: Timestamp(start),
                        };
                        (key, bytes.clone())
                    })
                    .collect();
                chunks += batch.len() as u64;
                put(batch)?;
            }
        }
        eprint!("\rfill: hour {}/{}   ", h + 1, opts.hours);
    }
    flush_days(day_start, &mut day_buckets, &mut chunks)?;
    eprintln!();
    let fill_s = started.elapsed().as_secs_f64();
    let store_file_bytes = std::fs::metadata(data.join("history.redb")).map_or(0, |m| m.len());

    // 2. Live ingest on a historian over the same store.
    let historian = {
        let (store, dir, h) = (store.clone(), data.clone(), io.handle());
        Arc::new(Historian::start(
            store,
            &dir,
            HistorianConfig::default(),
            h,
        )?)
    };
    let source = BackupSource {
        history: store.database(),
        wal: historian.wal_database(),
    };
    let phase = Arc::new(Mutex::new(0usize));
    let latencies: Arc<Mutex<[Vec<f64>; 3]>> = Arc::new(Mutex::new(Default::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waiter = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| BackupBenchError::Other(e.to_string()))?;
    let offered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let feeder = {
        let (historian, phase, latencies, stop, offered) = (
            historian.clone(),
            phase.clone(),
            latencies.clone(),
            stop.clone(),
            offered.clone(),
        );
        let handle = waiter.handle().clone();
        let devices = devices.clone();
        std::thread::Builder::new()
            .name("bench-ingest".into())
            .spawn(move || {
                // Every device once per 2 s, in 20 slices of 100 ms.
                let slices = 20usize;
                let per = devices.len().div_ceil(slices);
                let begun = Instant::now();
                let mut tick = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let slice = (tick as usize) % slices;
                    let t = Timestamp::now();
                    for d in devices.iter().skip(slice * per).take(per) {
                        let n = d.unit.kind().points().len();
                        let values: Vec<PointValue> = (0..n)
                            .map(|i| PointValue {
                                index: i as u16,
                                value: signal(i % TEMPLATES, t.0),
                                quality: Quality::GOOD,
                            })
                            .collect();
                        offered.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        let record = Record { t, values };
                        let (receipt, rx) = Receipt::new();
                        let sent = Instant::now();
                        let p = *phase.lock().unwrap_or_else(|e| e.into_inner());
                        historian.accept(d, Arrival::Live, &[record], receipt);
                        let latencies = latencies.clone();
                        handle.spawn(async move {
                            if rx.await.is_ok() {
                                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                                latencies.lock().unwrap_or_else(|e| e.into_inner())[p].push(ms);
                            }
                        });
                    }
                    tick += 1;
                    let next = begun + Duration::from_millis(100 * tick);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        pause(wait);
                    }
                }
            })
            .map_err(|e| BackupBenchError::Other(e.to_string()))?
    };
    let ingest_started = Instant::now();
    pause(Duration::from_secs(opts.baseline));

    // 3. The backup, ingest going on.
    *phase.lock().unwrap_or_else(|e| e.into_inner()) = 1;
    let started = Instant::now();
    let manifest = backup::make(&source, &dest, "bench", &mut |_| {})?;
    let backup_s = started.elapsed().as_secs_f64();
    *phase.lock().unwrap_or_else(|e| e.into_inner()) = 2;
    pause(Duration::from_secs(opts.baseline));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = feeder.join();
    let ingest_rate = offered.load(std::sync::atomic::Ordering::Relaxed) as f64
        / ingest_started.elapsed().as_secs_f64();
    // Let the last receipts complete.
    pause(Duration::from_millis(500));
    let started = Instant::now();
    backup::verify(&dest)?;
    let verify_s = started.elapsed().as_secs_f64();
    historian.stop();
    drop(waiter);
    let [before, during, after] =
        std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    let samples = points.len() as u64 * opts.hours * 1800;
    let report = BackupBenchReport {
        rooms: opts.rooms,
        hours: opts.hours,
        series: points.len(),
        samples,
        chunks,
        fill_s,
        store_file_bytes,
        backup_s,
        backup_bytes: manifest.bytes(),
        verify_s,
        ingest_rate,
        before: Latency::of(before),
        during: Latency::of(during),
        after: Latency::of(after),
    };
    drop(historian);
    drop(source);
    drop(store);
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&opts.dir);
    }
    Ok(report)
}
