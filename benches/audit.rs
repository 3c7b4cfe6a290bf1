//! The audit log's hash chain: what recording costs now that every entry is hashed and linked
//! under one lock (`AuditLog::record`, in memory), and how fast a whole stored log verifies
//! (`audit::verify_store` over the embedded store, as `cistern audit verify --data` runs it).
//!
//! Budget (issue 24 item 5): recording stays far below a request's cost (< 50 µs an entry);
//! a year of a busy site's audit (≈ 100,000 entries) verifies in < 10 s.
//!
//! Run: `cargo bench --bench audit`. Figures: ARCHITECTURE.md § Audit.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cistern::auth::audit::{verify_store, AuditEntry, AuditLog};
use cistern::store::embedded::EmbeddedStore;
use cistern::store::Store;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const STORED: usize = 100_000;

fn entry(i: usize) -> AuditEntry {
    AuditEntry::now(
        "operator-17",
        "alarm_ack",
        format!("XM-{:04}/pump_fault@P2", i % 2_100),
        "pump reset on site, the seal leaked again",
        true,
    )
}

fn audit(c: &mut Criterion) {
    let mut group = c.benchmark_group("audit");
    let log = AuditLog::new();
    let mut i = 0;
    group.bench_function("record_one_entry", |b| {
        b.iter(|| {
            i += 1;
            log.record(black_box(entry(i)));
        })
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("cistern-bench-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir).unwrap());
    let io = rt.handle().clone();
    rt.block_on(async {
        let log = AuditLog::stored(store.clone(), io.clone(), Duration::from_secs(3600))
            .await
            .unwrap();
        for i in 0..STORED {
            log.record(entry(i));
            if i % 10_000 == 0 {
                log.flush().await.unwrap();
            }
        }
        log.close().await;
    });
    group.sample_size(10);
    group.bench_function("verify_100k_stored_entries", |b| {
        b.iter(|| {
            let report = rt.block_on(verify_store(&store, &io)).unwrap();
            assert!(report.intact && report.checked == STORED as u64);
        })
    });
    group.finish();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, audit);
criterion_main!(benches);
