//! Supervision, routing, staleness and offline detection of a room's actor tree, with a
//! manual clock (no sleeps).

use super::messages::{Crash, GetPump};
use super::*;
use crate::device::messages::Crash as DeviceCrash;
use crate::device::table::good_record;
use crate::device::DeviceDeps;
use crate::ports::{Arrival, Receipt, SampleSink};
use crate::{ActorConfig, ActorMetrics, FleetRegistry, ManualClock, MemorySnapshotStore};
use actix::Arbiter;
use cistern_schemas::inventory::{CameraSpec, Inventory, PumpSpec, RoomSpec, TankSpec, ZoneSpec};
use cistern_schemas::reading::{DeviceBatch, IngestSource, Record};
use cistern_schemas::{DeviceId, QualityLevel, RoomId, Timestamp};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) const T0: Timestamp = Timestamp(1_763_700_000_000);

#[derive(Debug, Default)]
struct RecordingSink(Mutex<Vec<(DeviceId, Arrival, Vec<Record>)>>);

impl SampleSink for RecordingSink {
    fn accept(&self, device: &DeviceId, arrival: Arrival, records: &[Record], receipt: Receipt) {
        self.0
            .lock()
            .unwrap()
            .push((device.clone(), arrival, records.to_vec()));
        receipt.complete();
    }
}

pub(super) fn room_spec() -> RoomSpec {
    let pump = PumpSpec {
        rated_flow_m3h: 30.0,
        rated_head_m: 50.0,
        shutoff_head_m: 62.0,
        rated_power_kw: 7.5,
        bep_efficiency: 0.72,
    };
    RoomSpec {
        id: RoomId::new("XM-0001").unwrap(),
        name: "Test room".into(),
        name_pinyin: String::new(),
        address: String::new(),
        address_pinyin: String::new(),
        lat: 24.48,
        lon: 118.1,
        zone: "siming".parse().unwrap(),
        carrier: None,
        households: 800,
        outlet_setpoint_mpa: 0.45,
        pumps: vec![pump.clone(), pump],
        tanks: vec![TankSpec {
            area_m2: 20.0,
            height_m: 3.5,
            overflow_m: 3.2,
            hard_min_m: 0.4,
            fire_reserve_m: 0.0,
            refill_on_m: 2.4,
            refill_off_m: 3.0,
            inlet_capacity_m3h: 40.0,
        }],
        cameras: vec![CameraSpec {
            name: "entrance".into(),
        }],
        source: Default::default(),
        points: Default::default(),
    }
}

pub(super) struct Fixture {
    pub registry: Arc<FleetRegistry>,
    pub clock: ManualClock,
    pub metrics: ActorMetrics,
    sink: Arc<RecordingSink>,
    pub room: RoomId,
    pub snapshots: Arc<MemorySnapshotStore>,
}

fn fixture() -> Fixture {
    fixture_with(ActorConfig {
        sweep_every: Duration::from_secs(3600),
        ..Default::default()
    })
}

fn fixture_with(config: ActorConfig) -> Fixture {
    fixture_with_rules(config, None)
}

pub(super) fn fixture_with_rules(
    config: ActorConfig,
    rules: Option<Arc<crate::alarms::RuleHost>>,
) -> Fixture {
    fixture_keeping(config, rules, None)
}

/// A fixture whose registry runs every room (`keep` none: [`FleetRegistry::start`]) or only
/// those `keep` keeps ([`FleetRegistry::start_only`]).
pub(super) fn fixture_keeping(
    config: ActorConfig,
    rules: Option<Arc<crate::alarms::RuleHost>>,
    keep: Option<fn(&RoomSpec) -> bool>,
) -> Fixture {
    let clock = ManualClock::new(T0);
    let snapshots = Arc::new(MemorySnapshotStore::default());
    let metrics = ActorMetrics::unregistered().unwrap();
    let sink = Arc::new(RecordingSink::default());
    let deps = DeviceDeps {
        clock: Arc::new(clock.clone()),
        snapshots: snapshots.clone(),
        sink: sink.clone(),
        metrics: metrics.clone(),
        // tests pass a sweep timer that never fires on its own and send Sweep themselves
        config: Arc::new(config),
        rules,
        live: Arc::new(crate::NullLiveFeed),
        figures: Default::default(),
    };
    let inventory = Inventory {
        zones: vec![ZoneSpec {
            id: "siming".parse().unwrap(),
            name: "Siming".into(),
            name_pinyin: String::new(),
        }],
        rooms: vec![room_spec()],
    };
    inventory.validate().unwrap();
    let arbiters = [Arbiter::current()];
    let registry = match keep {
        None => FleetRegistry::start(&inventory, &deps, &arbiters),
        Some(keep) => FleetRegistry::start_only(&inventory, &deps, &arbiters, keep),
    };
    Fixture {
        registry,
        clock,
        metrics,
        sink,
        room: RoomId::new("XM-0001").unwrap(),
        snapshots,
    }
}

pub(super) fn batch(device: &str, t: Timestamp, values: &[(&str, f64)]) -> DeviceBatch {
    let device: DeviceId = device.parse().unwrap();
    let kind = device.unit.kind();
    let vals: Vec<_> = values
        .iter()
        .map(|(n, v)| (kind.point_index(n).unwrap(), *v))
        .collect();
    DeviceBatch {
        device,
        source: IngestSource::Simulator,
        records: vec![good_record(t, &vals)],
    }
}

impl Fixture {
    /// Routes a batch and waits until the room (and so the device it forwards to) has it.
    pub(super) async fn deliver(&self, b: DeviceBatch) {
        self.registry.route(b, Receipt::none()).await.unwrap();
        self.registry.room_view(&self.room).await.unwrap();
    }
}

fn point(view: &[crate::device::PointView], name: &str) -> Option<f64> {
    view.iter().find(|p| p.name == name).and_then(|p| p.value)
}

#[actix_rt::test]
async fn batches_reach_the_room_and_its_devices() {
    let f = fixture();
    f.deliver(batch(
        "XM-0001",
        T0,
        &[("outlet_pressure", 0.45), ("outlet_flow", 12.0)],
    ))
    .await;
    f.deliver(batch(
        "XM-0001/P2",
        T0,
        &[("frequency", 41.0), ("running", 1.0), ("fault", 0.0)],
    ))
    .await;
    f.deliver(batch("XM-0001/T1", T0, &[("level", 2.6)])).await;
    let view = f.registry.room_view(&f.room).await.unwrap();
    assert_eq!(view.status, Link::Online);
    assert_eq!(point(&view.points, "outlet_pressure"), Some(0.45));
    assert_eq!(point(&view.pumps[1].points, "frequency"), Some(41.0));
    assert_eq!(view.pumps[1].derived["status"], "running");
    assert_eq!(
        view.tanks[0].derived["autonomy_h"]
            .as_f64()
            .map(|h| (h * 100.0).round()),
        Some(367.0)
    );
    assert_eq!(view.cameras.len(), 1);
    assert_eq!(f.sink.0.lock().unwrap().len(), 3);
}

/// A burst of batches — a broker redelivering its in-flight window at start — reaches a room
/// that has not started yet (its arbiter is this test's, which does not yield here). When it
/// starts, it spawns its devices and forwards the whole burst to the tank before the tank has
/// run `started`: every batch goes into the tank's mailbox and every receipt completes. (With
/// actix's `try_send` the 17th was refused as `Full`, the room logged "device actor is gone",
/// and ingest acknowledged the rest unstored: 113 samples lost after a `kill -9` in CI.)
#[actix_rt::test]
async fn a_burst_reaching_a_room_before_it_started_is_stored_whole() {
    let f = fixture();
    let mut durable = Vec::new();
    for i in 0..64 {
        let (receipt, done) = Receipt::new();
        let t = T0 - Duration::from_secs(2 * (64 - i));
        f.registry
            .route(batch("XM-0001/T1", t, &[("level", 2.0)]), receipt)
            .await
            .unwrap_or_else(|e| panic!("batch {i} refused: {e}"));
        durable.push(done);
    }
    for (i, done) in durable.into_iter().enumerate() {
        assert!(done.await.is_ok(), "batch {i} was not stored");
    }
    assert_eq!(f.sink.0.lock().unwrap().len(), 64);
}

#[actix_rt::test]
async fn unknown_rooms_and_devices_are_refused() {
    let f = fixture();
    let err = f
        .registry
        .route(
            batch("XM-9999/P1", T0, &[("frequency", 1.0)]),
            Receipt::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.label(), "unknown_room");
    let err = f
        .registry
        .route(
            batch("XM-0001/P3", T0, &[("frequency", 1.0)]),
            Receipt::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.label(), "unknown_device");
}

#[actix_rt::test]
async fn a_panicking_pump_restarts_from_its_snapshot_and_its_siblings_do_not_notice() {
    let f = fixture();
    f.deliver(batch("XM-0001/P1", T0, &[("frequency", 40.0)]))
        .await;
    f.deliver(batch("XM-0001/P2", T0, &[("frequency", 35.0)]))
        .await;
    let room = f.registry.addr(&f.room).unwrap();
    let p1 = room.send(GetPump(1)).await.unwrap().unwrap();
    let p2 = room.send(GetPump(2)).await.unwrap().unwrap();
    let p2_before = p2
        .send(crate::device::messages::GetDeviceView)
        .await
        .unwrap()
        .unwrap();

    assert!(
        p1.send(DeviceCrash).await.unwrap().is_err(),
        "the crash is reported to the sender"
    );
    assert_eq!(f.metrics.restarts.with_label_values(&["pump"]).get(), 1);

    // Same address, same mailbox: the restarted pump answers, with its state rebuilt.
    let v1 = p1
        .send(crate::device::messages::GetDeviceView)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        point(&v1.points, "frequency"),
        Some(40.0),
        "state rebuilt from the snapshot"
    );
    f.deliver(batch(
        "XM-0001/P1",
        T0 + Duration::from_secs(2),
        &[("frequency", 42.0)],
    ))
    .await;
    let v1 = p1
        .send(crate::device::messages::GetDeviceView)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        point(&v1.points, "frequency"),
        Some(42.0),
        "ingest still reaches the restarted pump"
    );

    let p2_after = p2
        .send(crate::device::messages::GetDeviceView)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        p2_before.points, p2_after.points,
        "the sibling is untouched"
    );
    assert_eq!(f.metrics.restarts.with_label_values(&["room"]).get(), 0);
}

#[actix_rt::test]
async fn a_panicking_room_restarts_and_keeps_its_children() {
    let f = fixture();
    f.deliver(batch("XM-0001", T0, &[("outlet_pressure", 0.44)]))
        .await;
    f.deliver(batch("XM-0001/P1", T0, &[("frequency", 40.0)]))
        .await;
    let room = f.registry.addr(&f.room).unwrap();
    let p1 = room.send(GetPump(1)).await.unwrap().unwrap();
    assert!(room.send(Crash).await.unwrap().is_err());
    assert_eq!(f.metrics.restarts.with_label_values(&["room"]).get(), 1);
    let view = f.registry.room_view(&f.room).await.unwrap();
    assert_eq!(
        f.metrics.running.with_label_values(&["room"]).get(),
        1,
        "one room still runs"
    );
    assert_eq!(f.metrics.running.with_label_values(&["pump"]).get(), 2);
    assert_eq!(point(&view.points, "outlet_pressure"), Some(0.44));
    assert_eq!(view.status, Link::Online, "status rebuilt from the board");
    assert_eq!(point(&view.pumps[0].points, "frequency"), Some(40.0));
    let p1_again = room.send(GetPump(1)).await.unwrap().unwrap();
    assert_eq!(p1, p1_again, "children are not restarted with their room");
    assert_eq!(f.metrics.restarts.with_label_values(&["pump"]).get(), 0);
}

#[actix_rt::test]
async fn silent_points_turn_stale_and_a_silent_room_goes_offline() {
    let f = fixture();
    f.deliver(batch("XM-0001", T0, &[("outlet_pressure", 0.45)]))
        .await;
    let room = f.registry.addr(&f.room).unwrap();
    f.clock.advance(Duration::from_secs(7));
    room.send(Sweep).await.unwrap();
    let view = f.registry.room_view(&f.room).await.unwrap();
    let p = view
        .points
        .iter()
        .find(|p| p.name == "outlet_pressure")
        .unwrap();
    assert_eq!(p.quality.level, QualityLevel::Stale);
    assert_eq!(view.status, Link::Online);
    assert_eq!(
        view.derived.outlet_pressure_mpa, None,
        "a stale value is not used"
    );

    f.clock.advance(Duration::from_secs(60));
    room.send(Sweep).await.unwrap();
    assert_eq!(
        f.registry.room_view(&f.room).await.unwrap().status,
        Link::Offline
    );
    assert_eq!(f.registry.online_count(), (0, 1));

    f.deliver(batch(
        "XM-0001",
        T0 + Duration::from_secs(67),
        &[("outlet_pressure", 0.45)],
    ))
    .await;
    let view = f.registry.room_view(&f.room).await.unwrap();
    assert_eq!(view.status, Link::Online);
    assert_eq!(view.derived.outlet_pressure_mpa, Some(0.45));
    assert_eq!(f.registry.summaries()[0].status, "online");
}

#[actix_rt::test]
async fn replays_are_deduplicated_and_late_samples_go_to_history_only() {
    let f = fixture();
    let at = |s: u64| T0 + Duration::from_secs(s);
    for s in [0, 2, 4] {
        f.deliver(batch(
            "XM-0001/T1",
            at(s),
            &[("level", 2.0 + s as f64 / 100.0)],
        ))
        .await;
    }
    // QoS 1 redelivery of the whole series, then one sample that arrives late
    for s in [0, 2, 4] {
        f.deliver(batch(
            "XM-0001/T1",
            at(s),
            &[("level", 2.0 + s as f64 / 100.0)],
        ))
        .await;
    }
    f.deliver(batch("XM-0001/T1", at(3), &[("level", 2.03)]))
        .await;
    let view = f.registry.room_view(&f.room).await.unwrap();
    assert_eq!(point(&view.tanks[0].points, "level"), Some(2.04));
    assert_eq!(
        f.metrics.duplicates.get(),
        3,
        "redelivered older samples are recognised too"
    );
    let sunk = f.sink.0.lock().unwrap();
    let live: Vec<_> = sunk
        .iter()
        .filter(|s| s.1 == Arrival::Live)
        .map(|s| s.2[0].t)
        .collect();
    assert_eq!(live, [at(0), at(2), at(4)]);
    let backfill: Vec<_> = sunk
        .iter()
        .filter(|s| s.1 == Arrival::Backfill)
        .map(|s| s.2[0].t)
        .collect();
    assert_eq!(backfill, [at(3)]);
}

#[actix_rt::test]
async fn a_full_room_makes_ingest_wait_and_loses_nothing() {
    // Two intake permits against four concurrent senders of 100 batches each, spread over the
    // room and its devices: every sender waits for permits most of the time.
    let f = fixture_with(ActorConfig {
        sweep_every: Duration::from_secs(3600),
        mailbox: 2,
        ..Default::default()
    });
    // The samples span 200 s: the node's clock is past them (none is stamped in the future).
    f.clock.set(T0 + Duration::from_secs(200));
    let senders: Vec<_> = ["XM-0001", "XM-0001/P1", "XM-0001/T1", "XM-0001/C1"]
        .into_iter()
        .map(|device| {
            let registry = f.registry.clone();
            let kind: DeviceId = device.parse().unwrap();
            let name = kind.unit.kind().points()[0].name;
            actix_rt::spawn(async move {
                for s in 0..100u64 {
                    let b = batch(device, T0 + Duration::from_secs(2 * s), &[(name, 1.0)]);
                    registry.route(b, Receipt::none()).await.unwrap();
                }
            })
        })
        .collect();
    let all = futures::future::join_all(senders);
    tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .expect("ingest never stalls");
    f.registry.room_view(&f.room).await.unwrap();
    assert_eq!(f.metrics.applied.get(), 400, "every sample applied");
}

#[actix_rt::test]
async fn a_receipt_completes_once_the_sink_has_the_samples_or_when_nothing_is_new() {
    let f = fixture();
    for _ in 0..2 {
        // The second delivery is all duplicates: nothing to store, done at once.
        let (receipt, durable) = Receipt::new();
        f.registry
            .route(batch("XM-0001/P1", T0, &[("frequency", 40.0)]), receipt)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), durable)
            .await
            .expect("the receipt completes")
            .expect("completed, not dropped");
    }
    assert_eq!(f.sink.0.lock().unwrap().len(), 1);
    // A batch for the room's own points too.
    let (receipt, durable) = Receipt::new();
    f.registry
        .route(
            batch("XM-0001/room", T0, &[("outlet_pressure", 0.4)]),
            receipt,
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), durable)
        .await
        .unwrap()
        .unwrap();
}

#[actix_rt::test]
async fn a_future_stamped_record_is_refused_flagged_and_real_samples_stay_live() {
    let f = fixture();
    f.deliver(batch("XM-0001", T0, &[("outlet_pressure", 0.45)]))
        .await;
    // One record stamped 270 s ahead of the node's clock (a gateway clock running fast).
    f.clock.set(T0 + Duration::from_secs(1));
    f.deliver(batch(
        "XM-0001",
        T0 + Duration::from_secs(271),
        &[("outlet_pressure", 0.011)],
    ))
    .await;
    f.deliver(batch(
        "XM-0001/P1",
        T0 + Duration::from_secs(271),
        &[("frequency", 1.0)],
    ))
    .await;
    let view = f.registry.room_view(&f.room).await.unwrap();
    assert_eq!(point(&view.points, "outlet_pressure"), Some(0.45));
    let skew = view
        .clock_skew
        .expect("the room is flagged as clock-skewed");
    assert_eq!(skew.ahead_s, 270.0);
    assert_eq!(view.last_data, Some(T0), "the future record is not data");
    for kind in ["room", "pump"] {
        assert_eq!(
            f.metrics.future.with_label_values(&[kind]).get(),
            1,
            "{kind}"
        );
    }
    // The real samples that follow are live (not backfill behind the future one).
    for s in 2..5 {
        let t = T0 + Duration::from_secs(s);
        f.clock.set(t);
        f.deliver(batch(
            "XM-0001",
            t,
            &[("outlet_pressure", 0.40 + s as f64 / 100.0)],
        ))
        .await;
    }
    let view = f.registry.room_view(&f.room).await.unwrap();
    assert_eq!(point(&view.points, "outlet_pressure"), Some(0.44));
    assert_eq!(view.last_data, Some(T0 + Duration::from_secs(4)));
    // The flag clears once the gateway stops (after `offline_after` without such a record).
    f.clock.set(T0 + Duration::from_secs(70));
    let view = f.registry.room_view(&f.room).await.unwrap();
    assert!(view.clock_skew.is_none(), "{:?}", view.clock_skew);
}

#[actix_rt::test]
async fn last_data_is_the_newest_good_sample_not_the_last_message() {
    let f = fixture();
    f.deliver(batch("XM-0001", T0, &[("outlet_pressure", 0.45)]))
        .await;
    // Ten minutes later the gateway sends a sample stamped five minutes ago (lagging ingest
    // or a replay) and a bad one stamped now.
    let now = T0 + Duration::from_secs(600);
    f.clock.set(now);
    f.deliver(batch(
        "XM-0001",
        T0 + Duration::from_secs(300),
        &[("outlet_pressure", 0.46)],
    ))
    .await;
    let mut bad = batch("XM-0001", now, &[("outlet_pressure", 0.0)]);
    bad.records[0].values[0].quality = cistern_schemas::Quality::bad("sensor fault");
    f.deliver(bad).await;
    let view = f.registry.room_view(&f.room).await.unwrap();
    assert_eq!(view.last_seen, Some(now));
    assert_eq!(view.last_data, Some(T0 + Duration::from_secs(300)));
    let status = f.registry.summaries();
    assert_eq!(
        status[0].detail.last_data,
        Some(T0 + Duration::from_secs(300))
    );
}

#[actix_rt::test]
async fn a_running_room_takes_a_changed_nameplate_and_a_new_room_starts() {
    let f = fixture();
    // The same devices, new ratings: in force at once, in the registry and the actors.
    let mut changed = room_spec();
    changed.pumps[0].rated_power_kw = 11.0;
    changed.name = "Renamed".into();
    f.registry.follow(changed.clone()).await.unwrap();
    assert_eq!(
        f.registry.spec(&f.room).unwrap().pumps[0].rated_power_kw,
        11.0
    );
    let view = f.registry.room_view(&f.room).await.unwrap();
    assert_eq!(view.name, "Renamed");
    // A pump more (or a zone moved) is refused: the room runs on with the spec it has.
    let mut more = changed.clone();
    more.pumps.push(more.pumps[0].clone());
    let err = f.registry.follow(more).await.unwrap_err();
    assert!(matches!(err, crate::FollowError::Refused(_)), "{err}");
    assert_eq!(f.registry.spec(&f.room).unwrap().pumps.len(), 2);
    // A room the registry does not run starts, in its zone.
    let mut new = room_spec();
    new.id = RoomId::new("XM-0002").unwrap();
    f.registry.follow(new.clone()).await.unwrap();
    assert_eq!(f.registry.len(), 2);
    let view = f.registry.room_view(&new.id).await.unwrap();
    assert_eq!(view.pumps.len(), 2);
    // A zone the fleet does not have is refused.
    let mut lost = room_spec();
    lost.id = RoomId::new("XM-0003").unwrap();
    lost.zone = "atlantis".parse().unwrap();
    assert!(matches!(
        f.registry.follow(lost).await,
        Err(crate::FollowError::UnknownZone(_))
    ));
}
