//! History queries from the embedded store: 24 h of one 2-second point (43,200 samples).
//!
//! Measures `Historian::history` (raw samples) over 24 h, and `Historian::history_step` at
//! 1 min and 1 h steps, on two layouts of the same data in one store:
//! - `compacted`: as the compactor leaves it — one raw chunk per hour, one 1-minute rollup
//!   chunk per hour, one 1-hour rollup chunk for the day (steps are served from rollups);
//! - `sealed`: as the writer seals it, before compaction — one raw chunk per 2 minutes, no
//!   rollups (steps are computed from the raw samples).
//!
//! Budget (issue 3): 24 h of raw samples of one point in < 100 ms from the embedded store.
//!
//! Run: `cargo bench --bench history`. Figures: see the closing note of the historian work
//! (ARCHITECTURE.md / the issue), with the machine they were measured on.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cistern::historian::rollup::{self, DAY_MS, HOUR_MS, MINUTE_MS};
use cistern::historian::{Historian, HistorianConfig};
use cistern::store::embedded::EmbeddedStore;
use cistern::store::{ChunkKey, Series, Store};
use cistern_schemas::{chunk, PointId, Timestamp};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// Monday 2026-01-05 00:00 UTC.
const DAY0: i64 = 1_767_571_200_000;

/// A day of a tank level at 2 s: 1 mm steps of a slow random walk, a few ms of poll jitter.
fn day_of_samples() -> Vec<(i64, f64)> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut level: i64 = 2_500;
    (0..43_200)
        .map(|i| {
            let r = next();
            level += (r % 3) as i64 - 1;
            let jitter = if r % 5 == 0 {
                (r >> 8) as i64 % 11 - 5
            } else {
                0
            };
            (DAY0 + i * 2_000 + jitter, level as f64 / 1000.0)
        })
        .collect()
}

fn raw_chunks(point: &PointId, samples: &[(i64, f64)], span_ms: i64) -> Vec<(ChunkKey, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = samples;
    while let Some(&(first, _)) = rest.first() {
        let end = rollup::floor(first, span_ms) + span_ms;
        let n = rest.partition_point(|s| s.0 < end);
        out.push((
            ChunkKey {
                point: point.clone(),
                series: Series::Raw,
                start: Timestamp(first),
            },
            chunk::encode(&rest[..n]).unwrap(),
        ));
        rest = &rest[n..];
    }
    out
}

fn rollup_chunks(point: &PointId, samples: &[(i64, f64)]) -> Vec<(ChunkKey, Vec<u8>)> {
    let key = |series, start| ChunkKey {
        point: point.clone(),
        series,
        start: Timestamp(start),
    };
    let mut out = Vec::new();
    for hour in samples.chunk_by(|a, b| rollup::floor(a.0, HOUR_MS) == rollup::floor(b.0, HOUR_MS))
    {
        let start = rollup::floor(hour[0].0, HOUR_MS);
        let minutes = rollup::bucketize(hour, MINUTE_MS);
        out.push((
            key(Series::Minute, start),
            rollup::encode(&minutes).unwrap(),
        ));
    }
    let hours = rollup::bucketize(samples, HOUR_MS);
    out.push((
        key(Series::Hour, rollup::floor(DAY0, DAY_MS)),
        rollup::encode(&hours).unwrap(),
    ));
    out
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("cistern-bench-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(EmbeddedStore::open(&dir).unwrap());
    let samples = day_of_samples();
    let compacted: PointId = "XM-0001/T1.level".parse().unwrap();
    let sealed: PointId = "XM-0002/T1.level".parse().unwrap();
    let mut chunks = raw_chunks(&compacted, &samples, HOUR_MS);
    chunks.extend(rollup_chunks(&compacted, &samples));
    chunks.extend(raw_chunks(&sealed, &samples, 120_000));
    rt.block_on(store.put_chunks(chunks)).unwrap();
    let historian = rt
        .block_on(async {
            let h = rt.handle().clone();
            let store = store.clone();
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || {
                Historian::start(store, &dir, HistorianConfig::default(), h)
            })
            .await
        })
        .unwrap()
        .unwrap();
    let (from, to) = (Timestamp(DAY0), Timestamp(DAY0 + DAY_MS - 1));
    for point in [&compacted, &sealed] {
        let got = rt.block_on(historian.history(point, from, to)).unwrap();
        assert_eq!(got.len(), samples.len());
        let hours = rt
            .block_on(historian.history_step(point, from, to, Duration::from_secs(3600)))
            .unwrap();
        assert_eq!(
            hours.iter().map(|b| b.count).sum::<u64>(),
            samples.len() as u64
        );
    }

    let mut group = c.benchmark_group("history_24h");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for (layout, point) in [("compacted", &compacted), ("sealed", &sealed)] {
        group.bench_function(format!("{layout}/raw"), |b| {
            b.iter(|| {
                black_box(
                    rt.block_on(historian.history(point, from, to))
                        .unwrap()
                        .len(),
                )
            })
        });
        for (name, step) in [("step_1m", 60), ("step_1h", 3600)] {
            group.bench_function(format!("{layout}/{name}"), |b| {
                b.iter(|| {
                    let step = Duration::from_secs(step);
                    black_box(
                        rt.block_on(historian.history_step(point, from, to, step))
                            .unwrap()
                            .len(),
                    )
                })
            });
        }
    }
    group.finish();
    drop(historian);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
