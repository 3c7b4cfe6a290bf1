//! The parts lifecycle's figures for the whole demo fleet: fits per class and vendor/model,
//! every component's risk, the 12-month plan, the spares forecast and the suppliers' table
//! (`lifecycle::service::compute`) over 2,100 rooms with their simulated history.
//!
//! Budget (issue 21): fits and replacement plans for the whole fleet in < 5 s.
//!
//! Run: `cargo bench --bench lifecycle`. Figures: ARCHITECTURE.md § Parts lifecycle.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cistern::business::assets::lifecycle::{demo, service, LifecycleConfig};
use cistern_schemas::Timestamp;
use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::BTreeMap;
use std::hint::black_box;

fn fleet_figures(c: &mut Criterion) {
    let inventory = cistern::lab::sim::fleet::generate_fleet(2_100, 1);
    let now = Timestamp(1_800_000_000_000);
    let components = demo::fleet(&inventory, now, 0.5);
    let config = LifecycleConfig::default();
    let stock = BTreeMap::new();
    let mut group = c.benchmark_group("lifecycle");
    group.sample_size(10);
    group.bench_function("fleet_2100_rooms", |b| {
        b.iter(|| black_box(service::compute(&components, &stock, &config, now, 480)))
    });
    group.finish();
}

criterion_group!(benches, fleet_figures);
criterion_main!(benches);
