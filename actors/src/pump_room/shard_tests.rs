//! Rooms started and stopped at runtime (a shard moving between nodes): a parked room is
//! refused as not here, a started one takes batches, a stopped one refuses them at once,
//! applies what it took, saves its state, ends for good (its supervisor does not revive it) and
//! leaves the boards; started again, it goes on from the saved state.

use super::alarm_tests::{library, Alarms, PausedSystem, ROOM_OK};
use super::tests::{batch, fixture_keeping, T0};
use crate::alarms::{AlarmStore, LogOutbox, MemoryAlarmStore, RuleHost, RuleMetrics};
use crate::device::messages::GetDeviceView;
use crate::ports::{Receipt, SnapshotStore};
use crate::registry::shard_of;
use crate::{ActorConfig, RouteError};
use cistern_rules::{AlarmState, EngineConfig, EventKind, ZoneConfig};
use cistern_schemas::{DeviceId, DeviceUnit};
use std::sync::Arc;
use std::time::Duration;

/// A node that runs none of the fleet's rooms at start (they are another node's).
fn parked_node() -> Alarms {
    let store = Arc::new(MemoryAlarmStore::default());
    let host = Arc::new(RuleHost::new(
        library(),
        EngineConfig::default(),
        ZoneConfig::default(),
        store.clone(),
        Arc::new(LogOutbox),
        RuleMetrics::unregistered().unwrap(),
    ));
    let f = fixture_keeping(
        ActorConfig {
            sweep_every: Duration::from_secs(3600),
            ..Default::default()
        },
        Some(host.clone()),
        Some(|_| false),
    );
    Alarms { f, host, store }
}

fn active_gauges(a: &Alarms) -> i64 {
    let mut total = 0;
    for sev in ["P1", "P2", "P3", "P4"] {
        for state in [
            "unacked",
            "acked",
            "returned_unacked",
            "shelved",
            "suppressed",
            "out_of_service",
        ] {
            total += a.host.metrics.active.with_label_values(&[sev, state]).get();
        }
    }
    total
}

fn running(a: &Alarms, kind: &str) -> i64 {
    a.f.metrics.running.with_label_values(&[kind]).get()
}

#[actix_rt::test(system = "PausedSystem")]
async fn a_shard_starts_stops_for_good_and_starts_again_from_its_saved_state() {
    let a = parked_node();
    let room = a.f.room.clone();
    let shard = shard_of(&room);
    let p1 = "XM-0001/P1";
    let pump_ok: &[(&str, f64)] = &[("fault", 0.0), ("running", 1.0)];
    let tripped: &[(&str, f64)] = &[("fault", 1.0), ("running", 0.0)];

    // Parked: known, not run; refused as not here (ingest must not acknowledge it).
    assert!(a.f.registry.is_empty());
    assert!(a.f.registry.known_spec(&room).is_some());
    assert_eq!(a.f.registry.known_rooms_of_shard(shard), vec![room.clone()]);
    assert!(a.f.registry.held_shards().is_empty());
    let err = (a.f.registry)
        .route(batch(p1, T0, pump_ok), Receipt::none())
        .await
        .unwrap_err();
    assert_eq!(err, RouteError::NotHere("XM-0001".into()));
    assert_eq!(err.label(), "not_here");
    assert_eq!(running(&a, "room"), 0);

    // The shard is acquired: its room runs and takes batches.
    assert_eq!(a.f.registry.start_shard(shard).unwrap(), 1);
    assert_eq!(a.f.registry.start_shard(shard).unwrap(), 0, "idempotent");
    assert_eq!(a.f.registry.held_shards(), vec![shard]);
    a.step(
        0,
        &[("XM-0001", ROOM_OK), (p1, pump_ok), ("XM-0001/P2", pump_ok)],
    )
    .await;
    assert_eq!(running(&a, "room"), 1);
    assert_eq!(running(&a, "pump"), 2);
    // P1 trips at 10 s (5 s on-delay): raised at 15 s. P2 trips at 16 s: due at 21 s.
    a.step(10, &[("XM-0001", ROOM_OK), (p1, tripped)]).await;
    a.step(
        16,
        &[("XM-0001", ROOM_OK), (p1, tripped), ("XM-0001/P2", tripped)],
    )
    .await;
    assert_eq!(a.board("pump_fault@P1").unwrap().state, AlarmState::Unacked);
    assert!(a.board("pump_fault@P2").is_none(), "still in its on-delay");
    assert_eq!(active_gauges(&a), 1);
    assert_eq!(a.f.registry.online_count(), (1, 1));

    // A batch in flight when the shard is stopped is applied before the room saves.
    a.f.clock.set(a.at(18));
    let weak = a.f.registry.addr(&room).unwrap().downgrade();
    (a.f.registry)
        .route(
            batch("XM-0001/P2", a.at(18), &[("frequency", 33.0)]),
            Receipt::none(),
        )
        .await
        .unwrap();
    assert_eq!(a.f.registry.stop_shard(shard).await, 1);
    assert_eq!(a.f.registry.stop_shard(shard).await, 0, "idempotent");

    // Refused at once, as not here, for batches and requests alike.
    let err = (a.f.registry)
        .route(batch(p1, a.at(18), tripped), Receipt::none())
        .await
        .unwrap_err();
    assert_eq!(err.label(), "not_here");
    assert_eq!(
        a.f.registry.room_view(&room).await.unwrap_err().label(),
        "not_here"
    );
    assert!(a.f.registry.held_shards().is_empty());
    // Its state was saved at the stop: the alarm engine (P2's running delay with it) and the
    // devices' live state, the batch in flight included.
    let saved = a.store.load_room(&room).expect("alarm state saved");
    let p2_key: cistern_rules::AlarmKey = "pump_fault@P2".parse().unwrap();
    let p2 = saved.alarms.get(&p2_key).expect("P2 saved");
    assert!(p2.pending_on.is_some(), "P2's delay saved running: {p2:?}");
    let p2_id = DeviceId::new(room.clone(), DeviceUnit::Pump(2));
    assert!(a.f.snapshots.load(&p2_id).is_some());
    // Off the boards, gauges exact; its alarms are the next owner's.
    assert!(a.board("pump_fault@P1").is_none());
    assert_eq!(active_gauges(&a), 0);
    assert_eq!(a.f.registry.online_count(), (0, 0));
    assert!(a.f.registry.summaries().is_empty());
    // Its actors end, and stay ended (no supervisor brings them back).
    for _ in 0..100 {
        if weak.upgrade().is_none() && running(&a, "room") == 0 && running(&a, "pump") == 0 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(weak.upgrade().is_none(), "the room actor is gone");
    assert_eq!(running(&a, "room"), 0);
    assert_eq!(running(&a, "pump"), 0);
    assert_eq!(running(&a, "tank"), 0);
    assert_eq!(running(&a, "camera"), 0);
    assert_eq!(a.f.metrics.restarts.with_label_values(&["room"]).get(), 0);

    // Acquired again (here, as by the next owner over the same stores): it goes on from the
    // saved state — P1 still raised (not raised again), P2 raised at its original due time.
    a.f.clock.set(a.at(19));
    assert_eq!(a.f.registry.start_shard(shard).unwrap(), 1);
    a.f.registry.room_view(&room).await.unwrap();
    assert_eq!(
        a.board("pump_fault@P1").unwrap().state,
        AlarmState::Unacked,
        "the standing alarm is back on the board from the saved state"
    );
    assert_eq!(active_gauges(&a), 1);
    let addr = a.f.registry.addr(&room).unwrap();
    let pump2 = addr
        .send(super::messages::GetPump(2))
        .await
        .unwrap()
        .unwrap();
    let view = pump2.send(GetDeviceView).await.unwrap().unwrap();
    let freq = view.points.iter().find(|p| p.name == "frequency").unwrap();
    assert_eq!(freq.value, Some(33.0), "the batch in flight at the stop");
    for s in [20, 22, 24, 26] {
        a.step(
            s,
            &[("XM-0001", ROOM_OK), (p1, tripped), ("XM-0001/P2", tripped)],
        )
        .await;
    }
    let v2 = a.board("pump_fault@P2").expect("P2 raised after the move");
    assert_eq!(
        v2.raised_at,
        Some(a.at(21)),
        "its delay was not started over"
    );
    let raised = |key: &str| {
        (a.store.events().into_iter())
            .filter(|e| e.kind == EventKind::Raised && e.key.to_string() == key)
            .count()
    };
    assert_eq!(raised("pump_fault@P1"), 1, "P1 raised once across the move");
    assert_eq!(raised("pump_fault@P2"), 1);
    assert_eq!(running(&a, "room"), 1);
    assert_eq!(running(&a, "pump"), 2);
}

#[actix_rt::test]
async fn a_room_added_at_runtime_starts_only_in_a_held_shard() {
    let a = parked_node();
    let room = a.f.room.clone();
    let mut other = super::tests::room_spec();
    // A room of the same zone in another shard.
    other.id = (2..)
        .map(|i| cistern_schemas::RoomId::new(&format!("XM-{i:04}")).unwrap())
        .find(|r| shard_of(r) != shard_of(&room))
        .unwrap();
    a.f.registry.follow(other.clone()).await.unwrap();
    assert!(
        !a.f.registry.runs(&other.id),
        "its shard is not held: parked"
    );
    assert_eq!(
        a.f.registry.room_view(&other.id).await.unwrap_err().label(),
        "not_here"
    );
    assert_eq!(a.f.registry.start_rooms(vec![other.clone()]).unwrap(), 1);
    assert!(a.f.registry.runs(&other.id));
    assert!(!a.f.registry.runs(&room), "the other room stays parked");
    assert_eq!(a.f.registry.held_shards(), vec![shard_of(&other.id)]);
    assert_eq!(a.f.registry.stop_rooms(&[other.id.clone()]).await, 1);
    assert!(a.f.registry.held_shards().is_empty(), "no room left in it");
    a.f.registry.follow(other.clone()).await.unwrap();
    assert!(
        !a.f.registry.runs(&other.id),
        "a released shard's room stays parked"
    );
    // A spec of a zone the fleet does not have starts nothing.
    let mut lost = other.clone();
    lost.zone = "nowhere".parse().unwrap();
    assert!(a.f.registry.start_rooms(vec![other, lost]).is_err());
    assert!(a.f.registry.is_empty());
}
