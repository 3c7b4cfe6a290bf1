//! The service's plumbing: a day closes once, into the store and the ledger, and a restart
//! reads the ledger back instead of computing again.

use super::service::Analysis;
use super::AnalysisConfig;
use crate::historian::{Historian, HistorianConfig};
use crate::store::embedded::EmbeddedStore;
use cistern_actors::clock::ManualClock;
use cistern_actors::ports::{Arrival, SampleSink};
use cistern_actors::Receipt;
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::reading::{PointValue, Record};
use cistern_schemas::{Date, DeviceId, DeviceKind, DeviceUnit, Quality, Timestamp};
use std::sync::Arc;
use std::time::Duration;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("cistern-analysis-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn rooms() -> Vec<Arc<RoomSpec>> {
    crate::lab::sim::generate_fleet(2, 5)
        .rooms
        .into_iter()
        .map(Arc::new)
        .collect()
}

/// A day of the room's energy counter and outlet flow, every 2 minutes, durable on return.
async fn feed(h: &Historian, room: &RoomSpec, day: Date) {
    let device = DeviceId::new(room.id.clone(), DeviceUnit::Room);
    let energy = DeviceKind::Room.point_index("energy").unwrap() as u16;
    let flow = DeviceKind::Room.point_index("outlet_flow").unwrap() as u16;
    let start = day.start(480).0;
    let records: Vec<Record> = (0..720)
        .map(|i| Record {
            t: Timestamp(start + i * 120_000),
            values: vec![
                PointValue {
                    index: energy,
                    value: 1000.0 + i as f64 * 0.5,
                    quality: Quality::GOOD,
                },
                PointValue {
                    index: flow,
                    value: 20.0,
                    quality: Quality::GOOD,
                },
            ],
        })
        .collect();
    let (receipt, durable) = Receipt::new();
    h.accept(&device, Arrival::Live, &records, receipt);
    tokio::time::timeout(Duration::from_secs(10), durable)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_closes_once_and_the_ledger_survives_a_restart() {
    let d = dir("close");
    let store = Arc::new(EmbeddedStore::open(&d).unwrap());
    let historian = Arc::new(
        Historian::start(
            store.clone(),
            &d,
            HistorianConfig {
                flush_every: Duration::from_millis(20),
                ..Default::default()
            },
            tokio::runtime::Handle::current(),
        )
        .unwrap(),
    );
    let rooms = rooms();
    let day = Date::ymd(2026, 3, 1).unwrap();
    feed(&historian, &rooms[0], day).await;
    // The node began that day; it is now 00:20 the next morning (closes after 15 min).
    let clock = ManualClock::new(day.start(480));
    let start = |clock: &ManualClock| {
        Analysis::start(
            AnalysisConfig::default(),
            store.clone(),
            Some(historian.clone()),
            Arc::new(rooms.clone()),
            None,
            Arc::new(clock.clone()),
        )
    };
    let series = super::DaySeries::load(&historian, &rooms[0], day, 480)
        .await
        .unwrap();
    let energy = series.get(DeviceUnit::Room, "energy");
    assert_eq!(energy.len(), 720, "a bucket for each minute with a sample");
    assert_eq!(energy.iter().map(|b| b.count).sum::<u64>(), 720);
    assert_eq!(energy.last().unwrap().last_v, 1000.0 + 719.0 * 0.5);
    let svc = start(&clock).await.unwrap();
    assert_eq!(svc.since(), day);
    assert_eq!(svc.close_due().await, 0, "nothing is due on the first day");
    clock.set(Timestamp(day.plus_days(1).start(480).0 + 20 * 60_000));
    let mut closed = svc.subscribe();
    assert_eq!(svc.close_due().await, 2, "each room's day closes");
    assert_eq!(closed.try_recv().unwrap().date, day);
    assert_eq!(svc.close_due().await, 0, "a day closes once");
    let stored = svc.day(&rooms[0].id, day).await.unwrap().unwrap();
    assert!(stored.closed);
    let figures = svc.figures(&rooms[0].id, day, day);
    assert_eq!(figures.len(), 1);
    assert_eq!(figures[0].1, stored.figures());
    let mut fleet = Vec::new();
    svc.each_figures(day, day, |room, date, _| fleet.push((room.clone(), date)));
    assert_eq!(fleet.len(), 2);
    drop(svc);

    // A restart: the ledger is read back, nothing is computed again, the start day is kept.
    clock.advance(Duration::from_secs(3600));
    let again = start(&clock).await.unwrap();
    assert_eq!(again.since(), day);
    assert_eq!(again.figures(&rooms[0].id, day, day), figures);
    assert_eq!(again.close_due().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn today_is_live_and_a_future_day_is_refused() {
    let d = dir("live");
    let store = Arc::new(EmbeddedStore::open(&d).unwrap());
    let historian = Arc::new(
        Historian::start(
            store.clone(),
            &d,
            HistorianConfig::default(),
            tokio::runtime::Handle::current(),
        )
        .unwrap(),
    );
    let rooms = rooms();
    let day = Date::ymd(2028, 2, 29).unwrap();
    let clock = ManualClock::new(Timestamp(day.start(480).0 + 12 * 3_600_000));
    let svc = Analysis::start(
        AnalysisConfig::default(),
        store.clone(),
        Some(historian),
        Arc::new(rooms.clone()),
        None,
        Arc::new(clock),
    )
    .await
    .unwrap();
    assert_eq!(svc.refresh_live().await, 2);
    let live = svc.figures(&rooms[1].id, day, day);
    assert_eq!(live.len(), 1, "today's live figures are served");
    let today = svc.day(&rooms[1].id, day).await.unwrap().unwrap();
    assert!(!today.closed);
    assert!(matches!(
        svc.day(&rooms[1].id, day.plus_days(1)).await,
        Err(super::AnalysisError::Future(..))
    ));
    assert!(matches!(
        svc.day(&"XM-9999".parse().unwrap(), day).await,
        Err(super::AnalysisError::UnknownRoom(_))
    ));
}
