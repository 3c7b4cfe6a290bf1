//! The WebSocket fan-out's per-delta cost: one point delta serialised once (`protocol::data`)
//! and pushed into 1,000 sessions' queues, then taken out by each session's writer
//! (`Client::next_frame_for`: its `seq`, its envelope — a serde `SubscriptionFrame` around the
//! shared data — and its replay ring). This is the hub-to-socket work of a dashboard fleet, less
//! the socket writes.
//!
//! Budget (issue 18, typed frames): a delta to 1,000 sessions in under 1 ms (1 µs a session), so
//! that the hub keeps up with 2,100 rooms' changes while a thousand dashboards watch.
//!
//! Run: `cargo bench --bench ws_fanout`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cistern::api::ws::client::Client;
use cistern::api::ws::protocol::data;
use cistern::api::ws::topics::{PointValue, PointsDelta, Topic};
use cistern::api::ws::WsMetrics;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::Arc;

const SESSIONS: usize = 1_000;

fn fan_out(c: &mut Criterion) {
    let metrics = WsMetrics::unregistered().unwrap();
    let sessions: Vec<(Client, u64)> = (0..SESSIONS)
        .map(|i| {
            let client = Client::new(
                format!("s-{i:016x}"),
                "bench".into(),
                4096,
                512,
                metrics.clone(),
            );
            let epoch = client.attach();
            client.add("trend", Topic::Points, serde_json::json!({}));
            client.set_snapshot("trend", data(&serde_json::json!({"points": []})), false);
            client.next_frame_for(epoch).unwrap();
            (client, epoch)
        })
        .collect();
    let key: Arc<str> = Arc::from("XM-0001/P1.frequency");
    let mut value = 40.0;
    c.bench_function("one point delta to 1,000 sessions", |b| {
        b.iter(|| {
            value += 0.1;
            let point = PointValue {
                id: "XM-0001/P1.frequency".into(),
                unit: "Hz",
                value: Some(value),
                quality: cistern_schemas::Quality::GOOD,
                t: Some(cistern_schemas::Timestamp::from_millis(1_795_288_870_890)),
            };
            let delta = data(&PointsDelta::Point { point: &point });
            for (client, _) in &sessions {
                client.push("trend", &key, &delta);
            }
            for (client, epoch) in &sessions {
                black_box(client.next_frame_for(*epoch));
            }
        })
    });
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
