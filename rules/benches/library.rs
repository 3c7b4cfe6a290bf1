//! The whole default library on one room's state change.
//!
//! Measures `RoomEngine::evaluate` for a room with 3 pumps, 2 tanks and 2 cameras (38 rule
//! instances): `full` evaluates every rule (`Touched::all`, what the periodic refresh does);
//! `one_point` a typical state change (the outlet pressure moved: only the rules reading it
//! run). Each iteration flips the value so the engine really works (the alarm state machine,
//! not a cache).
//!
//! Budget (DOMAIN.md §6, fleet 1×): 2,100 rooms each changing state every 2 s = 1,050 room
//! evaluations/s must cost well under one core, i.e. well under ~950 µs per evaluation; the
//! target is < 10 % of a core (< 95 µs) for a full evaluation.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-rules cargo bench -p cistern-rules --bench library`.
//! Measured 2026-11-21 on the 2-core workspace VM while other builds ran (load average ~5):
//! full 107 µs, one_point 18 µs, tick (nothing due) 0.3 µs; mean script time 1.6 µs per rule
//! evaluation. Fleet 1×: 1,050 × 107 µs ≈ 0.11 core if every change re-ran every rule,
//! ≈ 0.02 core for typical one-point changes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cistern_rules::{
    Discard, EngineConfig, RoomEngine, RoomFacts, RuleSet, SandboxLimits, Touched,
};
use cistern_schemas::{RoomId, Timestamp};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
    let rules = Arc::new(
        RuleSet::load_dir(&dir, SandboxLimits::default())
            .unwrap()
            .set,
    );
    let room = RoomId::new("XM-0001").unwrap();
    let mut facts = RoomFacts::nominal(room.clone(), 3, 2, 2);
    let mut engine = RoomEngine::new(room, rules, Arc::new(EngineConfig::default()));
    let mut now = Timestamp(1_700_000_000_000);
    engine.evaluate_all(&facts, now, &mut Discard);

    let mut flip = false;
    c.bench_function("library/full", |b| {
        b.iter(|| {
            flip = !flip;
            facts
                .set_path("outlet_pressure", if flip { 0.44 } else { 0.45 })
                .unwrap();
            now = now + Duration::from_secs(2);
            black_box(engine.evaluate_all(&facts, now, &mut Discard))
        })
    });
    let mut touched = Touched::none();
    touched.path("outlet_pressure").unwrap();
    c.bench_function("library/one_point", |b| {
        b.iter(|| {
            flip = !flip;
            facts
                .set_path("outlet_pressure", if flip { 0.44 } else { 0.45 })
                .unwrap();
            now = now + Duration::from_secs(2);
            black_box(engine.evaluate(&facts, &touched, now, &mut Discard))
        })
    });
    c.bench_function("library/tick", |b| {
        b.iter(|| {
            now = now + Duration::from_secs(1);
            black_box(engine.tick(now, &mut Discard))
        })
    });
    let s = engine.stats();
    eprintln!(
        "evaluations {}, mean script time {} ns/evaluation",
        s.evaluations,
        s.eval_nanos / s.evaluations.max(1)
    );
    let mut per: Vec<_> = s
        .per_rule
        .iter()
        .map(|(id, r)| (r.eval_nanos / r.evaluations.max(1), id.to_string()))
        .collect();
    per.sort();
    for (ns, id) in per.iter().rev() {
        eprintln!("  {ns:>7} ns  {id}");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
