//! Work orders on the embedded store (issue 20's performance budgets):
//!
//! - order queries with 100,000 orders in the store answer in < 50 ms: the newest page, the
//!   open ones, a room's, a crew member's open ones, a state's, a rare priority's, one order
//!   by id;
//! - a burst of 500 alarms across the fleet (mains loss in a zone) creates one order per room
//!   and cause: the time from the first request to the last order written;
//! - the export of 10,000 orders (issue 20 item 8) as .xlsx and as CSV, from the orders in
//!   memory to the file's bytes;
//! - one refresh of the /metrics gauges over the 100,000 orders (the open ones, and the 43,200
//!   created in the 30 days before the clock the bench sets at the newest order).
//!
//! The 100,000 orders are written once into `target/bench-workorders` (a durable write each,
//! several minutes) and reused by later runs.
//!
//! Run: `cargo bench --bench workorders`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use cistern::business::workorders::model::{OrderId, OrderState, OrderType, WorkOrder};
use cistern::business::workorders::service::{AlarmOrder, OrderMetrics};
use cistern::business::workorders::store::{OrderFilter, OrderStore};
use cistern::business::workorders::{WorkOrders, WorkOrdersConfig};
use cistern::store::embedded::EmbeddedStore;
use cistern_actors::SystemClock;
use cistern_rules::Severity;
use cistern_schemas::inventory::Inventory;
use cistern_schemas::{RoomId, Timestamp, ZoneId};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORDERS: u64 = 100_000;
const ROOMS: u64 = 2_100;
const T0: i64 = 1_767_571_200_000;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-workorders")
}

fn order(n: u64) -> WorkOrder {
    let room = RoomId::new(&format!("XM-{:04}", n % ROOMS + 1)).unwrap();
    let open = n.is_multiple_of(50);
    WorkOrder {
        id: OrderId::from_sequence(n),
        kind: OrderType::Corrective,
        template: Some("pump_fault".into()),
        // One order in a thousand is a P1.
        priority: if n % 1000 == 7 {
            Severity::P1
        } else {
            Severity::P3
        },
        state: if open {
            OrderState::Dispatched
        } else {
            OrderState::Closed
        },
        title: "Pump fault".into(),
        title_zh: "水泵故障".into(),
        room: Some(room),
        zone: ZoneId::new("siming").ok(),
        device: None,
        cause: format!("cause_{}", n % 7),
        alarms: vec![],
        team: Some("siming".into()),
        assignee: Some(format!("crew-{}", n % 12)),
        created_at: Timestamp(T0 + n as i64 * 60_000),
        created_by: "system".into(),
        response_due: Timestamp(T0 + n as i64 * 60_000 + 7_200_000),
        resolution_due: Timestamp(T0 + n as i64 * 60_000 + 86_400_000),
        escalation: 0,
        checklist: vec![],
        photos_required: 0,
        safety: String::new(),
        safety_zh: String::new(),
        expected_parts: vec![],
        parts: vec![],
        minutes: 30,
        resolution: None,
        comments: vec![],
        held_from: None,
        transitions: vec![],
        attachments: vec![],
    }
}

/// The store with 100,000 orders (written on the first run).
async fn fixture() -> OrderStore {
    let dir = fixture_dir();
    let marker = dir.join("complete");
    let store = OrderStore::new(Arc::new(EmbeddedStore::open(&dir).unwrap())).unwrap();
    if !marker.exists() {
        let t = Instant::now();
        let existing = store
            .list(&OrderFilter {
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .first()
            .map_or(0, |o| o.id.as_str()[3..].parse::<u64>().unwrap());
        for n in existing + 1..=ORDERS {
            store.put(&order(n), None).await.unwrap();
        }
        std::fs::write(&marker, b"").unwrap();
        eprintln!("wrote {ORDERS} orders in {:?}", t.elapsed());
    }
    store
}

fn queries(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(fixture());
    let mut g = c.benchmark_group("workorders_100k");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    let cases: Vec<(&str, OrderFilter)> = vec![
        (
            "newest_200",
            OrderFilter {
                limit: 200,
                ..Default::default()
            },
        ),
        (
            "open_200",
            OrderFilter {
                open: Some(true),
                limit: 200,
                ..Default::default()
            },
        ),
        (
            "room",
            OrderFilter {
                room: Some("XM-0042".into()),
                limit: 200,
                ..Default::default()
            },
        ),
        (
            "assignee_open",
            OrderFilter {
                assignee: Some("crew-3".into()),
                open: Some(true),
                limit: 200,
                ..Default::default()
            },
        ),
        (
            "closed_state_200",
            OrderFilter {
                state: Some(OrderState::Closed),
                limit: 200,
                ..Default::default()
            },
        ),
        (
            "priority_p1",
            OrderFilter {
                priority: Some(Severity::P1),
                limit: 200,
                ..Default::default()
            },
        ),
    ];
    for (name, filter) in cases {
        g.bench_function(name, |b| {
            b.iter(|| black_box(rt.block_on(store.list(&filter)).unwrap().len()))
        });
    }
    let id = OrderId::from_sequence(54_321);
    g.bench_function("get_by_id", |b| {
        b.iter(|| black_box(rt.block_on(store.get(&id)).unwrap().is_some()))
    });
    g.finish();
}

fn burst_inventory() -> Inventory {
    let mut text = String::from(
        "[[zones]]\nid = \"siming\"\nname = \"思明区\"\nname_pinyin = \"Siming District\"\n",
    );
    for i in 1..=500 {
        text.push_str(&format!(
            "[[rooms]]\nid = \"XM-{i:04}\"\nname = \"泵房{i}\"\nlat = 24.48\nlon = 118.09\nzone = \"siming\"\npumps = []\ntanks = []\n"
        ));
    }
    toml::from_str(&text).unwrap()
}

/// 500 rooms lose their mains at once: 500 `mains_loss`-style alarms, one order each.
fn burst(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut g = c.benchmark_group("workorders_burst");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("500_alarms_500_orders", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let dir = std::env::temp_dir()
                    .join(format!("cistern-bench-burst-{}-{i}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let records = Arc::new(EmbeddedStore::open(&dir).unwrap());
                let inventory = burst_inventory();
                let config = WorkOrdersConfig {
                    teams: cistern::lab::crews::teams(&inventory),
                    ..Default::default()
                };
                let elapsed = rt.block_on(async {
                    let svc = WorkOrders::start(
                        &config,
                        records,
                        &inventory,
                        Arc::new(SystemClock),
                        cistern::auth::Security::default(),
                        OrderMetrics::register(&prometheus::Registry::new()).unwrap(),
                    )
                    .await
                    .unwrap();
                    let t = Instant::now();
                    for r in 1..=500 {
                        let alarm = AlarmOrder {
                            alarm: format!("XM-{r:04}/no_pump_available@room"),
                            room: RoomId::new(&format!("XM-{r:04}")).unwrap(),
                            device: None,
                            rule: "no_pump_available".into(),
                            template: "no_pump_available".into(),
                            severity: Severity::P1,
                            raised_at: Timestamp::now(),
                            message: "No pump available".into(),
                            message_zh: "无可用水泵".into(),
                        };
                        svc.from_alarm(&alarm).await.unwrap();
                    }
                    t.elapsed()
                });
                total += elapsed;
                let _ = std::fs::remove_dir_all(&dir);
            }
            total
        })
    });
    g.finish();
}

/// 10,000 orders as the console's export writes them.
fn export(c: &mut Criterion) {
    use cistern::auth::identity::Language;
    use cistern::business::workorders::export;
    let orders: Vec<WorkOrder> = (1..=10_000).map(order).collect();
    let now = Timestamp(T0 + 10_000 * 60_000);
    let labels = cistern::api::workorders::export_labels(Language::ZhCn, 480);
    let rows = |orders: &[WorkOrder]| -> Vec<Vec<export::Cell>> {
        orders
            .iter()
            .map(|o| export::row(o, o.overdue(now), &labels))
            .collect()
    };
    let mut g = c.benchmark_group("workorders_export");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("xlsx_10k", |b| {
        b.iter(|| {
            black_box(
                export::xlsx(&rows(&orders), &labels, "workorders")
                    .unwrap()
                    .len(),
            )
        })
    });
    g.bench_function("csv_10k", |b| {
        b.iter(|| black_box(export::csv(&rows(&orders), &labels).unwrap().len()))
    });
    g.finish();
}

/// One refresh of the gauges over the 100,000 orders.
fn gauges(c: &mut Criterion) {
    use cistern::business::workorders::gauges::OrderGauges;
    let rt = tokio::runtime::Runtime::new().unwrap();
    drop(rt.block_on(fixture()));
    let clock = cistern_actors::ManualClock::new(Timestamp(T0 + ORDERS as i64 * 60_000));
    let registry = prometheus::Registry::new();
    let svc = rt
        .block_on(WorkOrders::start(
            &WorkOrdersConfig::default(),
            Arc::new(EmbeddedStore::open(&fixture_dir()).unwrap()),
            &Inventory::default(),
            Arc::new(clock),
            cistern::auth::Security::default(),
            OrderMetrics::register(&registry).unwrap(),
        ))
        .unwrap();
    let gauges = OrderGauges::register(&registry).unwrap();
    let mut g = c.benchmark_group("workorders_gauges");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("refresh_100k", |b| {
        b.iter(|| rt.block_on(gauges.refresh(&svc)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, queries, burst, export, gauges);
criterion_main!(benches);
