//! Tank cleaning (issue 21 item 6) on a node assembled in the test around a hand-moved clock and
//! an embedded store: a cleaning falls due in simulated time and creates its order once (and
//! reminds the zone's on-call crew once); a cleaning whose water fails GB 5749-2022 is kept,
//! flagged and raises a follow-up order; `tank_cleaning_overdue` raises on an old cleaning and
//! clears once a new one is recorded; the records, the schedule and the orders made survive a
//! restart, and the rooms hear of the cleanings again after it.

use crate::support::temp_dir;
use cistern::business::assets::cleaning::service::CleaningStatus;
use cistern::business::assets::cleaning::water::WaterTest;
use cistern::business::assets::cleaning::NewCleaning;
use cistern::business::workorders::OrderType;
use cistern::config::builtin_profiles;
use cistern::lab::sim;
use cistern::node::{Node, NodeSpec, Storage};
use cistern_actors::ManualClock;
use cistern_schemas::inventory::Inventory;
use cistern_schemas::{Date, DeviceId, DeviceUnit, RoomId, Timestamp};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 2026-12-07 00:00 UTC (08:00 in Xiamen).
const T0: i64 = 1_796_601_600_000;
const DAY_MS: i64 = 86_400_000;

fn good_water() -> WaterTest {
    WaterTest {
        colour: 5.0,
        turbidity_ntu: 0.3,
        odour: false,
        ph: 7.2,
        free_chlorine_mg_l: 0.4,
        coliforms_per_100ml: 0.0,
        bacteria_cfu_ml: 20.0,
    }
}

fn cleaning(date: Date, test: WaterTest) -> NewCleaning {
    NewCleaning {
        date,
        crew: "张伟, 李娜".into(),
        order: None,
        test,
        note: None,
    }
}

/// One generated room with two tanks.
fn inventory() -> Inventory {
    let mut inventory = sim::generate_fleet(1, 7);
    let room = &mut inventory.rooms[0];
    assert!(!room.tanks.is_empty(), "the generated room has tanks");
    room.tanks.truncate(1);
    room.tanks.push(room.tanks[0].clone());
    inventory
}

const ORDERS: &str = r#"
    [[teams]]
    id = "crew"
    name = "维修班"
    name_en = "Crew"
    lead = "boss"
    manager = "boss"
    members = [{ user = "li" }]
    on_call = [
      { days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday"], from = "00:00", to = "12:00", users = ["li"] },
      { days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday"], from = "12:00", to = "00:00", users = ["li"] },
    ]
"#;

async fn open_storage(dir: &Path) -> Storage {
    Storage::open(
        &cistern::store::StoreConfig {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        },
        &cistern::historian::HistorianSection::default(),
    )
    .await
    .unwrap()
}

/// A node on `storage`. A second one on the same storage after the first has stopped is the
/// restart: every service and actor starts again from what the store holds (in-process, the
/// store itself stays open: a stopped node's arbiters let go of it only as they wind down).
async fn start(inventory: &Inventory, clock: &ManualClock, storage: &Storage) -> Node {
    let mut spec = NodeSpec::new(
        inventory.clone(),
        builtin_profiles().unwrap(),
        Arc::new(clock.clone()),
    )
    .with_storage(storage);
    spec.http = "127.0.0.1:0".parse().unwrap();
    spec.security = crate::support::it_security().await;
    spec.workorders = toml::from_str(ORDERS).unwrap();
    spec.cleaning.check_every = Duration::from_secs(3600);
    Node::start(spec).await.unwrap()
}

/// Whether the room's `tank_cleaning_overdue` alarm on tank `n` is active.
async fn overdue_active(node: &Node, room: &RoomId, n: u8) -> bool {
    node.registry.alarms(room).await.unwrap().iter().any(|a| {
        a.key.rule.as_str() == "tank_cleaning_overdue"
            && a.key.unit == DeviceUnit::Tank(n)
            && a.active
    })
}

/// Waits (at most 20 s) until the alarm is `active`, or fails.
async fn wait_overdue(node: &Node, room: &RoomId, n: u8, active: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while overdue_active(node, room, n).await != active {
        assert!(
            Instant::now() < deadline,
            "tank_cleaning_overdue on T{n} did not turn {active} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cleaning_orders(node: &Node, room: &RoomId) -> Vec<String> {
    let w = node.workorders.as_ref().unwrap();
    w.open_orders()
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.room.as_ref() == Some(room) && o.kind == OrderType::TankCleaning)
        .map(|o| o.id.to_string())
        .collect()
}

#[actix_rt::test]
async fn a_cleaning_falls_due_orders_once_raises_the_overdue_alarm_and_survives_a_restart() {
    let dir = temp_dir("cleaning");
    let inventory = inventory();
    let room = inventory.rooms[0].id.clone();
    let t1 = DeviceId::new(room.clone(), DeviceUnit::Tank(1));
    let t2 = DeviceId::new(room.clone(), DeviceUnit::Tank(2));
    let clock = ManualClock::new(Timestamp(T0));
    let at_day = |d: i64| clock.set(Timestamp(T0 + d * DAY_MS));
    let today = |d: i64| Date::of(Timestamp(T0 + d * DAY_MS), 480);

    let storage = open_storage(&dir).await;
    let node = start(&inventory, &clock, &storage).await;
    let svc = node.cleaning.clone().unwrap();
    // Never cleaned: no due date, nothing ordered, no alarm.
    assert_eq!(svc.tank(&t1).unwrap().status, CleaningStatus::NoRecord);
    assert_eq!(svc.sweep().await.orders.len(), 0);

    // Cleaned 100 days ago with good water: due in 82 days, nothing to do yet.
    let r = svc
        .record(&t1, cleaning(today(-100), good_water()), "li")
        .await
        .unwrap();
    assert!(r.passed && r.failures.is_empty());
    let line = svc.tank(&t1).unwrap();
    assert_eq!(line.due, Some(today(82)));
    assert_eq!(line.status, CleaningStatus::Ok);
    let sweep = svc.sweep().await;
    assert!(sweep.orders.is_empty() && sweep.reminders == 0, "{sweep:?}");
    assert!(!overdue_active(&node, &room, 1).await);

    // 70 days on, 12 days before the due date (orders go 14 days ahead): one order, once.
    at_day(70);
    let sweep = svc.sweep().await;
    assert_eq!(sweep.orders.len(), 1, "{sweep:?}");
    assert_eq!(sweep.reminders, 0, "reminders go 7 days ahead");
    let order = sweep.orders[0].clone();
    assert_eq!(cleaning_orders(&node, &room).await, vec![order.clone()]);
    assert_eq!(
        svc.tank(&t1).unwrap().order.as_deref(),
        Some(order.as_str())
    );
    assert!(
        svc.sweep().await.orders.is_empty(),
        "one order per due date"
    );
    // 5 days before: the zone's on-call crew is reminded, once.
    at_day(77);
    assert_eq!(svc.sweep().await.reminders, 1);
    assert_eq!(svc.sweep().await.reminders, 0);
    assert_eq!(svc.tank(&t1).unwrap().status, CleaningStatus::DueSoon);

    // 185 days after the cleaning: overdue, and the rule raises (the room derives the days
    // from the cleaning it was told with its own clock).
    at_day(85);
    wait_overdue(&node, &room, 1, true).await;
    assert_eq!(svc.tank(&t1).unwrap().status, CleaningStatus::Overdue);
    assert_eq!(
        svc.schedule(None, None, true).len(),
        1,
        "only T1 is overdue"
    );
    assert!(svc.sweep().await.orders.is_empty());
    assert_eq!(
        cleaning_orders(&node, &room).await,
        vec![order.clone()],
        "the alarm's order is the cleaning's order"
    );

    // Cleaned again today, water good: the alarm clears, the tank is due in 182 days.
    svc.record(&t1, cleaning(today(85), good_water()), "li")
        .await
        .unwrap();
    wait_overdue(&node, &room, 1, false).await;
    let line = svc.tank(&t1).unwrap();
    assert_eq!(line.due, Some(today(85 + 182)));
    assert_eq!(line.status, CleaningStatus::Ok);

    // T2 cleaned with turbid, chlorine-free water: kept, flagged, a follow-up order; not a
    // cleaning the schedule counts.
    let bad = WaterTest {
        turbidity_ntu: 3.0,
        free_chlorine_mg_l: 0.01,
        ..good_water()
    };
    let r = svc
        .record(&t2, cleaning(today(85), bad), "li")
        .await
        .unwrap();
    assert!(!r.passed);
    let failed: Vec<&str> = r.failures.iter().map(|f| f.parameter.as_str()).collect();
    assert_eq!(failed, ["turbidity_ntu", "free_chlorine_mg_l"]);
    assert!(
        r.follow_up.is_some(),
        "a failed test raises a follow-up order"
    );
    let line = svc.tank(&t2).unwrap();
    assert_eq!(line.status, CleaningStatus::Failed);
    assert_eq!(line.due, None);
    assert_eq!(line.last_passed, Some(false));
    // Bad input: a reading that cannot be, a date ahead.
    let nan = WaterTest {
        ph: 15.0,
        ..good_water()
    };
    assert!(svc
        .record(&t2, cleaning(today(85), nan), "li")
        .await
        .is_err());
    assert!(svc
        .record(&t2, cleaning(today(86), good_water()), "li")
        .await
        .is_err());
    let log_t1 = svc.log(&t1).await.unwrap();
    assert_eq!(log_t1.len(), 2);
    assert_eq!(log_t1[0].date, today(85), "newest first");

    drop(svc);
    node.stop().await;

    // Restart on the same store: the log, the schedule and the orders made are rebuilt.
    let node = start(&inventory, &clock, &storage).await;
    let svc = node.cleaning.clone().unwrap();
    assert_eq!(svc.log(&t1).await.unwrap(), log_t1);
    assert_eq!(svc.tank(&t1).unwrap().due, Some(today(85 + 182)));
    assert_eq!(svc.tank(&t2).unwrap().status, CleaningStatus::Failed);
    assert!(svc.sweep().await.orders.is_empty());
    assert!(!overdue_active(&node, &room, 1).await);
    // The rooms were told again: 190 days on, T1's alarm raises.
    at_day(85 + 190);
    wait_overdue(&node, &room, 1, true).await;
    node.stop().await;
    storage.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Measures (run explicitly: `cargo nextest run -p cistern --test it cleaning::measure
/// --run-ignored only --no-capture`) on a 2,100-room fleet in-process: recording one cleaning
/// per tank (each a durable write), a sweep over every tank, the schedule's read, and the
/// service's start over those records (what a restart costs). Prints the figures; asserts only
/// that every tank was recorded and rebuilt.
#[actix_rt::test]
#[ignore = "a measurement, run explicitly"]
async fn measure_cleaning_at_fleet_scale() {
    let dir = temp_dir("cleaning-measure");
    let inventory = sim::generate_fleet(2_100, 7);
    let clock = ManualClock::new(Timestamp(T0));
    let storage = open_storage(&dir).await;
    let node = start(&inventory, &clock, &storage).await;
    let svc = node.cleaning.clone().unwrap();
    let tanks = svc.schedule(None, None, false);
    let t = Instant::now();
    for (i, line) in tanks.iter().enumerate() {
        let back = i64::try_from(i % 170).unwrap();
        svc.record(
            &line.tank,
            cleaning(Date::of(Timestamp(T0 - back * DAY_MS), 480), good_water()),
            "li",
        )
        .await
        .unwrap();
    }
    let recording = t.elapsed();
    let t = Instant::now();
    let sweep = svc.sweep().await;
    let sweeping = t.elapsed();
    let t = Instant::now();
    let overdue = svc.schedule(None, None, true).len();
    let all = svc.schedule(None, None, false).len();
    let reading = t.elapsed();
    let t = Instant::now();
    let again = cistern::business::assets::cleaning::TankCleaning::start(
        Default::default(),
        storage.records.clone(),
        node.registry.clone(),
        None,
        None,
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    let rebuilding = t.elapsed();
    let rebuilt = again.schedule(None, None, false);
    assert_eq!(rebuilt.len(), tanks.len());
    assert!(rebuilt.iter().all(|l| l.last_cleaning.is_some()));
    println!(
        "rooms 2100, tanks {}: record {:?} ({:.0}/s), sweep {:?} ({} orders), schedule x2 {:?} ({all} tanks, {overdue} overdue), start over the records {:?}",
        tanks.len(),
        recording,
        tanks.len() as f64 / recording.as_secs_f64(),
        sweeping,
        sweep.orders.len(),
        reading,
        rebuilding,
    );
    drop((svc, again));
    node.stop().await;
    storage.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
