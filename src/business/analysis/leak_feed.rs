//! Feeds each room's rule engine its nightly leak facts (`leak_index`, `leak_baseline`,
//! `leak_spread`, `leak_nights`: the library rule `night_flow_leak`).
//!
//! The facts are a pure function of the room's closed days' leak indices in the analysis
//! ledger ([`super::leak_rule::leak_facts`]), which the service persists (month ledgers): at
//! start every room is told its facts as of its last closed night, and again whenever one of its
//! days closes. A process restart therefore rebuilds them whole; a room actor restarted in
//! place keeps what it was last told. Today's live figures are never sent: a night counts once
//! its day has closed.

use super::leak_rule::{leak_facts, LeakFacts};
use super::service::Analysis;
use cistern_actors::pump_room::NightLeak;
use cistern_actors::registry::FleetRegistry;
use cistern_schemas::RoomId;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// The facts of `room` as of its last closed night, when it has any.
pub fn room_facts(svc: &Analysis, room: &RoomId) -> Option<LeakFacts> {
    let cfg = &svc.config().leakage;
    let last = svc.today().plus_days(-1);
    let from = last.plus_days(-(cfg.baseline_nights as i32 + cfg.recent_nights as i32 + 3));
    let history: Vec<_> = svc
        .figures(room, from, last)
        .into_iter()
        .map(|(d, f)| (d, f.leak_index))
        .collect();
    leak_facts(&history, cfg).pop()
}

/// The message a room actor takes for `facts`.
pub fn message(facts: &LeakFacts) -> NightLeak {
    NightLeak {
        index: facts.index,
        baseline: facts.baseline,
        spread: facts.spread,
        nights: facts.recent.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
    }
}

fn tell(svc: &Analysis, registry: &FleetRegistry, room: &RoomId) {
    if let Some(facts) = room_facts(svc, room) {
        if !registry.night_leak(room, message(&facts)) {
            tracing::debug!(%room, "room did not take its night-flow facts");
        }
    }
}

fn tell_all(svc: &Analysis, registry: &FleetRegistry) {
    for spec in svc.rooms() {
        tell(svc, registry, &spec.id);
    }
}

/// Tells every room its facts, then each room again when one of its days closes, until
/// shutdown.
pub async fn run(
    svc: Arc<Analysis>,
    registry: Arc<FleetRegistry>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut closed = svc.subscribe();
    tell_all(&svc, &registry);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            msg = closed.recv() => match msg {
                Ok(day) => tell(&svc, &registry, &day.room),
                Err(RecvError::Lagged(_)) => tell_all(&svc, &registry),
                Err(RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::analysis::AnalysisConfig;
    use crate::historian::{Historian, HistorianConfig};
    use crate::store::embedded::EmbeddedStore;
    use cistern_actors::clock::ManualClock;
    use cistern_actors::ports::{Arrival, SampleSink};
    use cistern_actors::Receipt;
    use cistern_schemas::inventory::RoomSpec;
    use cistern_schemas::reading::{PointValue, Record};
    use cistern_schemas::{Date, DeviceId, DeviceKind, DeviceUnit, Quality, Timestamp};
    use std::time::Duration;

    /// A day of outlet flow every 2 minutes: 20 m³/h, `night` m³/h from 02:00 to 04:00.
    async fn feed(h: &Historian, room: &RoomSpec, day: Date, night: f64) {
        let device = DeviceId::new(room.id.clone(), DeviceUnit::Room);
        let flow = DeviceKind::Room.point_index("outlet_flow").unwrap() as u16;
        let start = day.start(480).0;
        let records: Vec<Record> = (0..720)
            .map(|i| Record {
                t: Timestamp(start + i * 120_000),
                values: vec![PointValue {
                    index: flow,
                    value: if (60..120).contains(&i) { night } else { 20.0 },
                    quality: Quality::GOOD,
                }],
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
    async fn a_rooms_facts_come_from_its_closed_nights_in_the_ledger() {
        let d = std::env::temp_dir().join(format!("cistern-leak-feed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
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
        let rooms: Vec<Arc<RoomSpec>> = crate::lab::sim::generate_fleet(1, 5)
            .rooms
            .into_iter()
            .map(Arc::new)
            .collect();
        let room = rooms[0].clone();
        let first = Date::ymd(2026, 3, 1).unwrap();
        let clock = ManualClock::new(first.start(480));
        let mut config = AnalysisConfig::default();
        // A baseline after 7 nights (the default waits for 14): a short test.
        config.leakage.baseline_min_nights = 7;
        let svc = Analysis::start(
            config,
            store.clone(),
            Some(historian.clone()),
            Arc::new(rooms.clone()),
            None,
            Arc::new(clock.clone()),
        )
        .await
        .unwrap();
        assert_eq!(room_facts(&svc, &room.id), None, "no closed night yet");
        // Eight nights at 6 m³/h, then two at 8 m³/h (a leak of 2 m³/h).
        for n in 0..10 {
            let day = first.plus_days(n);
            feed(&historian, &room, day, if n < 8 { 6.0 } else { 8.0 }).await;
            clock.set(Timestamp(day.plus_days(1).start(480).0 + 20 * 60_000));
            assert_eq!(svc.close_due().await, 1, "night {n} closes");
        }
        let facts = room_facts(&svc, &room.id).unwrap();
        assert_eq!(facts.date, first.plus_days(9));
        let legit = svc.config().leakage.legit_m3h(room.households);
        let mean = |night: f64| (22.0 * 20.0 + 2.0 * night) / 24.0;
        let index = |night: f64| (night - legit) / mean(night);
        assert!(
            (facts.index.unwrap() - index(8.0)).abs() < 1e-9,
            "{facts:?}"
        );
        assert!((facts.baseline.unwrap() - index(6.0)).abs() < 1e-9);
        assert_eq!(facts.spread, Some(0.0));
        assert_eq!((facts.flagged, facts.nights_over), (true, 2));
        assert_eq!(facts.recent.len(), 7);
        let msg = message(&facts);
        assert_eq!(msg.nights.len(), 7);
        assert_eq!(msg.index, facts.index);
    }
}
