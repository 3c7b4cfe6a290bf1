use super::*;
use cistern_actors::ports::{PlanDelivery, PortFuture};
use cistern_schemas::fill_plan::slot_start_unix_s;

/// A port that records what it was given and fails the rooms it is told to.
#[derive(Debug, Default)]
struct RecordingPort {
    sent: Mutex<Vec<(String, PlanDispatch)>>,
    failing: Mutex<Vec<RoomId>>,
}

/// The service's handle on the recorder (the test keeps another).
#[derive(Debug)]
struct Port(Arc<RecordingPort>);

impl PlanPort for Port {
    fn deliver(&self, author: String, plans: Vec<PlanDispatch>) -> PortFuture<Vec<PlanDelivery>> {
        let failing = self.0.failing.lock().unwrap().clone();
        let mut sent = self.0.sent.lock().unwrap();
        let out = plans
            .iter()
            .map(|p| PlanDelivery {
                tank: p.tank.clone(),
                result: if failing.contains(&p.tank.room) {
                    Err(format!("room {}: timed out", p.tank.room))
                } else {
                    Ok(())
                },
            })
            .collect();
        sent.extend(plans.into_iter().map(|p| (author.clone(), p)));
        Box::pin(async move { out })
    }
}

/// Two rooms with tanks in one district (the first two of the example inventory that have
/// tanks).
fn inventory() -> Inventory {
    let mut inv = Inventory::from_toml(
        include_str!("../../../ops/inventory.example.toml"),
        "ops/inventory.example.toml",
    )
    .unwrap();
    inv.rooms.retain(|r| !r.tanks.is_empty());
    inv.rooms.truncate(2);
    let zone = inv.rooms[0].zone.clone();
    for r in &mut inv.rooms {
        r.zone = zone.clone();
        assert!(!r.tanks.is_empty());
    }
    inv
}

fn sample(room: &RoomId, tanks: usize, online: bool, inflow: f64) -> RoomSample {
    RoomSample {
        room: room.clone(),
        outlet_flow_m3h: Some(3.0),
        inlet_flow_m3h: Some(inflow),
        levels: vec![Some(1.8); tanks],
        online,
    }
}

/// A week of logged samples ending before `slot`: a steady draw with a daily swing.
fn history(inv: &Inventory, slot: u32) -> Vec<(u32, Vec<RoomSample>)> {
    (slot - 7 * 96..slot)
        .map(|s| {
            let swing = 1.0 + 0.5 * ((f64::from(s % 96) / 96.0) * std::f64::consts::TAU).sin();
            let samples = inv
                .rooms
                .iter()
                .map(|r| RoomSample {
                    outlet_flow_m3h: Some(3.0 * swing),
                    ..sample(&r.id, r.tanks.len(), true, 3.0)
                })
                .collect();
            (s, samples)
        })
        .collect()
}

fn at(slot: u32, minute: i64) -> Timestamp {
    Timestamp::from_millis((slot_start_unix_s(slot) + minute * 60) * 1000)
}

fn service(inv: &Inventory, port: &Arc<RecordingPort>) -> PlanService {
    PlanService::new(
        inv,
        |_| true,
        Arc::new(Port(port.clone())) as Arc<dyn PlanPort>,
        PlansConfig::default(),
    )
}

const SLOT: u32 = 100_000;

#[tokio::test]
async fn cold_planners_write_nothing() {
    let inv = inventory();
    let port = Arc::new(RecordingPort::default());
    let mut s = service(&inv, &port);
    let samples: Vec<RoomSample> = inv
        .rooms
        .iter()
        .map(|r| sample(&r.id, r.tanks.len(), true, 1.0))
        .collect();
    assert_eq!(s.tick(at(SLOT, 1), &samples).await, 0);
    assert!(port.sent.lock().unwrap().is_empty());
    let board = s
        .board()
        .district(&inv.rooms[0].zone.to_string(), at(SLOT, 1));
    assert!(board
        .unwrap()
        .tanks
        .iter()
        .all(|t| t.state == "cold" && t.plan.is_none()));
}

#[tokio::test]
async fn a_warm_district_delivers_its_plans_and_an_offline_room_does_not_bid() {
    let inv = inventory();
    let port = Arc::new(RecordingPort::default());
    let mut s = service(&inv, &port);
    s.import(&history(&inv, SLOT));
    let (a, b) = (&inv.rooms[0], &inv.rooms[1]);
    let samples = vec![
        sample(&a.id, a.tanks.len(), true, 1.0),
        sample(&b.id, b.tanks.len(), false, 1.0),
    ];
    let delivered = s.tick(at(SLOT, 1), &samples).await;
    assert_eq!(delivered, a.tanks.len());
    let sent = port.sent.lock().unwrap().clone();
    let zone = a.zone.to_string();
    assert!(sent
        .iter()
        .all(|(author, p)| *author == format!("system:district-{zone}") && p.tank.room == a.id));
    // Priorities are the round's order: distinct, from 0.
    let mut prios: Vec<u32> = sent.iter().map(|(_, p)| p.priority).collect();
    prios.sort_unstable();
    assert_eq!(prios.first(), Some(&0));
    prios.dedup();
    assert_eq!(prios.len(), sent.len());

    let view = s.board().district(&zone, at(SLOT, 1)).unwrap();
    assert_eq!(view.rounds, 1);
    for t in &view.tanks {
        let ours = t.tank.starts_with(&format!("{}/", a.id));
        assert_eq!(t.delivery, if ours { "written" } else { "none" }, "{t:?}");
        assert_eq!(t.plan.is_some(), ours, "{t:?}");
    }
    assert_eq!(s.board().room_tanks(&a.id).len(), a.tanks.len());

    // Nothing more within the slot; a new slot is a new round.
    assert_eq!(s.tick(at(SLOT, 5), &samples).await, 0);
    assert_eq!(port.sent.lock().unwrap().len(), sent.len());
    s.tick(at(SLOT + 1, 0), &samples).await;
    assert_eq!(
        s.board().district(&zone, at(SLOT + 1, 0)).unwrap().rounds,
        2
    );
}

#[tokio::test]
async fn a_failed_write_is_shown_and_the_timeline_plans_only_what_controllers_hold() {
    let inv = inventory();
    let port = Arc::new(RecordingPort::default());
    port.failing.lock().unwrap().push(inv.rooms[1].id.clone());
    let mut s = service(&inv, &port);
    s.import(&history(&inv, SLOT));
    let samples: Vec<RoomSample> = inv
        .rooms
        .iter()
        .map(|r| sample(&r.id, r.tanks.len(), true, 2.0))
        .collect();
    s.tick(at(SLOT, 1), &samples).await;
    let zone = inv.rooms[0].zone.to_string();
    let view = s.board().district(&zone, at(SLOT, 1)).unwrap();
    let failed: Vec<&TankPlanView> = view
        .tanks
        .iter()
        .filter(|t| t.delivery == "failed")
        .collect();
    assert_eq!(failed.len(), inv.rooms[1].tanks.len());
    assert!(failed[0]
        .delivery_error
        .as_deref()
        .is_some_and(|e| e.contains("timed out")));

    // What the timeline plans ahead is the held plans' rates only.
    let held: f64 = port
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p)| p.tank.room == inv.rooms[0].id)
        .map(|(_, p)| LocalRule::from_image(&p.rule.to_image(p.priority)).planned_rate_m3h(SLOT))
        .sum();
    let now = view.timeline.iter().find(|t| t.start_ms == slot_ms(SLOT));
    assert!((now.unwrap().planned_inflow_m3h - held).abs() < 1e-9);

    // The slot that ended is in the past with both sides: the mean measured inflow of the
    // district's rooms and what was planned for it.
    s.tick(at(SLOT + 1, 0), &samples).await;
    let view = s.board().district(&zone, at(SLOT + 1, 0)).unwrap();
    let past = view
        .timeline
        .iter()
        .find(|t| t.start_ms == slot_ms(SLOT))
        .unwrap();
    assert_eq!(past.actual_inflow_m3h, Some(2.0));
    assert!((past.planned_inflow_m3h - held).abs() < 1e-9);
    assert!(view
        .timeline
        .iter()
        .filter(|t| t.start_ms >= slot_ms(SLOT + 1))
        .all(|t| t.actual_inflow_m3h.is_none()));
    // The network's peak windows are marked: the day ahead holds each of them once.
    let ahead = view
        .timeline
        .iter()
        .filter(|t| t.start_ms >= slot_ms(SLOT + 1))
        .take(96);
    let peak_slots: u32 = NETWORK_PEAK_WINDOWS.iter().map(|(a, b)| b - a).sum();
    assert_eq!(ahead.filter(|t| t.peak).count() as u32, peak_slots);
    assert!(matches!(
        s.board().district("nowhere", at(SLOT, 0)),
        Err(PlanError::UnknownDistrict { .. })
    ));
}
