//! The alarm engine as the room actor hosts it: facts from the children, delays on the actor's
//! clock, state that survives a restart, commands, correlation within a room.

use super::messages::Crash;
use super::tests::{batch, fixture_with_rules, Fixture, T0};
use crate::alarms::{AlarmFilter, LogOutbox, MemoryAlarmStore, RuleHost, RuleMetrics};
use crate::device::messages::Sweep;
use crate::ActorConfig;
use cistern_rules::{
    AlarmKey, AlarmState, Command, CommandAction, EngineConfig, EventKind, RuleSet, SandboxLimits,
    ZoneConfig,
};
use cistern_schemas::Timestamp;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(super) struct Alarms {
    pub f: Fixture,
    pub host: Arc<RuleHost>,
    pub store: Arc<MemoryAlarmStore>,
}

pub(super) fn library() -> Arc<RuleSet> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/library");
    let out = RuleSet::load_dir(&dir, SandboxLimits::default()).unwrap();
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    Arc::new(out.set)
}

fn with_rules() -> Alarms {
    with_store(Arc::new(MemoryAlarmStore::default()))
}

/// A node over `store`'s saved alarm state, with its own board and gauges (a process restart).
fn with_store(store: Arc<MemoryAlarmStore>) -> Alarms {
    let host = Arc::new(RuleHost::new(
        library(),
        EngineConfig::default(),
        ZoneConfig::default(),
        store.clone(),
        Arc::new(LogOutbox),
        RuleMetrics::unregistered().unwrap(),
    ));
    let f = fixture_with_rules(
        ActorConfig {
            sweep_every: Duration::from_secs(3600),
            ..Default::default()
        },
        Some(host.clone()),
    );
    Alarms { f, host, store }
}

pub(super) const ROOM_OK: &[(&str, f64)] = &[
    ("mains", 1.0),
    ("voltage_a", 380.0),
    ("voltage_b", 380.0),
    ("voltage_c", 380.0),
    ("inlet_pressure", 0.25),
    ("outlet_pressure", 0.45),
];

impl Alarms {
    pub(super) fn at(&self, s: u64) -> Timestamp {
        T0 + Duration::from_secs(s)
    }

    /// Sets the clock to `T0 + s`, delivers the batches stamped then, and lets the room
    /// evaluate and tick.
    pub(super) async fn step(&self, s: u64, batches: &[(&str, &[(&str, f64)])]) {
        self.f.clock.set(self.at(s));
        for (device, values) in batches {
            self.f.deliver(batch(device, self.at(s), values)).await;
        }
        self.settle().await;
    }

    /// Lets the coalesced evaluation run, then sweeps (timers). Time is paused
    /// ([`PausedSystem`]): each sleep returns once everything ready has run and the timers due
    /// before it have fired, without waiting on the wall clock.
    pub(super) async fn settle(&self) {
        actix_rt::time::sleep(Duration::from_millis(60)).await;
        let addr = self.f.registry.addr(&self.f.room).unwrap();
        addr.send(Sweep).await.unwrap();
        actix_rt::time::sleep(Duration::from_millis(60)).await;
    }

    pub(super) fn board(&self, key: &str) -> Option<crate::alarms::AlarmView> {
        self.host.board.get(&format!("XM-0001/{key}"))
    }
}

/// An actix system on a tokio runtime whose clock starts paused (the runtime `#[tokio::test(
/// start_paused = true)]` builds): the room's coalescing timer fires as soon as every actor is
/// idle, in order, and a loaded machine cannot make it late. The alarm delays themselves run
/// on the fixture's manual clock.
pub(super) struct PausedSystem(actix_rt::SystemRunner);

impl PausedSystem {
    pub(super) fn new() -> Self {
        Self(actix_rt::System::with_tokio_rt(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap()
        }))
    }

    pub(super) fn block_on<F: std::future::Future>(self, test: F) -> F::Output {
        self.0.block_on(test)
    }
}

#[actix_rt::test(system = "PausedSystem")]
async fn a_pump_trip_raises_after_its_delay_and_a_restart_does_not_start_the_delay_over() {
    let a = with_rules();
    let pump_ok: &[(&str, f64)] = &[("fault", 0.0), ("running", 1.0)];
    let tripped: &[(&str, f64)] = &[("fault", 1.0), ("running", 0.0)];
    a.step(0, &[("XM-0001", ROOM_OK), ("XM-0001/P1", pump_ok)])
        .await;
    assert!(a.board("pump_fault@P1").is_none());
    a.step(10, &[("XM-0001", ROOM_OK), ("XM-0001/P1", tripped)])
        .await;
    // pump_fault has a 5 s on-delay: pending, not raised.
    assert!(a.board("pump_fault@P1").is_none());
    a.step(13, &[("XM-0001", ROOM_OK), ("XM-0001/P1", tripped)])
        .await;
    // The room crashes 3 s into the delay and restarts from its saved state.
    let addr = a.f.registry.addr(&a.f.room).unwrap();
    assert!(addr.send(Crash).await.unwrap().is_err());
    // After a restart the rules wait 5 s for fresh samples before they evaluate again.
    a.step(16, &[("XM-0001", ROOM_OK), ("XM-0001/P1", tripped)])
        .await;
    a.step(19, &[("XM-0001", ROOM_OK), ("XM-0001/P1", tripped)])
        .await;
    let v = a.board("pump_fault@P1").expect("raised after 5 s");
    assert_eq!(v.state, AlarmState::Unacked);
    // Raised at the original due time (10 s + 5 s), not 5 s after the restart.
    assert_eq!(v.raised_at, Some(a.at(15)));
    let raised: Vec<_> = (a.store.events().into_iter())
        .filter(|e| e.kind == EventKind::Raised && e.key.to_string() == "pump_fault@P1")
        .collect();
    assert_eq!(raised.len(), 1, "one raise, recorded once");

    // Acknowledged through the registry, by a user with a comment.
    let key: AlarmKey = "pump_fault@P1".parse().unwrap();
    let events =
        a.f.registry
            .command(
                &a.f.room,
                Command {
                    key: key.clone(),
                    action: CommandAction::Ack,
                    user: "op1".into(),
                    comment: "crew sent".into(),
                },
            )
            .await
            .unwrap();
    assert_eq!(events[0].kind, EventKind::Acknowledged);
    assert_eq!(a.board("pump_fault@P1").unwrap().state, AlarmState::Acked);
    // A second ack is refused with a reason.
    let err =
        a.f.registry
            .command(
                &a.f.room,
                Command {
                    key,
                    action: CommandAction::Ack,
                    user: "op1".into(),
                    comment: String::new(),
                },
            )
            .await
            .unwrap_err();
    assert!(err.to_string().contains("nothing to acknowledge"), "{err}");

    // The fault clears: off the board after the clear.
    a.step(24, &[("XM-0001", ROOM_OK), ("XM-0001/P1", pump_ok)])
        .await;
    assert!(a.board("pump_fault@P1").is_none());
}

#[actix_rt::test(system = "PausedSystem")]
async fn mains_loss_is_first_out_and_suppresses_the_pump_trips_it_causes() {
    let a = with_rules();
    let pump_ok: &[(&str, f64)] = &[("fault", 0.0), ("running", 1.0)];
    let tripped: &[(&str, f64)] = &[("fault", 1.0), ("running", 0.0)];
    let no_mains: &[(&str, f64)] = &[
        ("mains", 0.0),
        ("voltage_a", 0.0),
        ("voltage_b", 0.0),
        ("voltage_c", 0.0),
        ("inlet_pressure", 0.25),
        ("outlet_pressure", 0.45),
    ];
    a.step(
        0,
        &[
            ("XM-0001", ROOM_OK),
            ("XM-0001/P1", pump_ok),
            ("XM-0001/P2", pump_ok),
        ],
    )
    .await;
    for s in [10, 12, 14, 16] {
        a.step(
            s,
            &[
                ("XM-0001", no_mains),
                ("XM-0001/P1", tripped),
                ("XM-0001/P2", tripped),
            ],
        )
        .await;
    }
    let mains = a.board("mains_loss@room").expect("mains loss raised");
    assert_eq!(mains.state, AlarmState::Unacked);
    assert!(mains.first_out);
    for p in ["P1", "P2"] {
        let v = a.board(&format!("pump_fault@{p}")).expect("recorded");
        assert_eq!(v.state, AlarmState::Suppressed, "{p}");
        assert_eq!(
            v.suppressed_by.map(|k| k.to_string()).as_deref(),
            Some("mains_loss@room")
        );
        assert!(!v.first_out);
    }
    let annunciated = a.host.board.list(&AlarmFilter {
        states: vec![AlarmState::Unacked],
        room: Some(a.f.room.clone()),
        ..Default::default()
    });
    assert_eq!(
        annunciated
            .iter()
            .map(|v| v.id.as_str())
            .collect::<Vec<_>>(),
        ["XM-0001/mains_loss@room"],
        "one alarm annunciated for the burst"
    );
}

#[actix_rt::test(system = "PausedSystem")]
async fn an_alarm_shelved_by_an_operator_leaves_the_annunciated_list_until_it_expires() {
    let a = with_rules();
    let tripped: &[(&str, f64)] = &[("fault", 1.0), ("running", 0.0)];
    for s in [0, 3, 6] {
        a.step(s, &[("XM-0001", ROOM_OK), ("XM-0001/P2", tripped)])
            .await;
    }
    assert_eq!(a.board("pump_fault@P2").unwrap().state, AlarmState::Unacked);
    a.f.registry
        .command(
            &a.f.room,
            Command {
                key: "pump_fault@P2".parse().unwrap(),
                action: CommandAction::Shelve {
                    until: a.at(60),
                    reason: "drive replaced tomorrow".into(),
                },
                user: "op2".into(),
                comment: String::new(),
            },
        )
        .await
        .unwrap();
    let v = a.board("pump_fault@P2").unwrap();
    assert_eq!(v.state, AlarmState::Shelved);
    assert_eq!(v.shelve.unwrap().user, "op2");
    a.step(61, &[("XM-0001", ROOM_OK), ("XM-0001/P2", tripped)])
        .await;
    assert_eq!(
        a.board("pump_fault@P2").unwrap().state,
        AlarmState::Unacked,
        "the shelve expired and the alarm is back"
    );
}

#[actix_rt::test]
async fn a_standing_latched_alarm_is_back_on_the_board_after_a_process_and_an_actor_restart() {
    let a = with_rules();
    let mut smoke: Vec<(&str, f64)> = ROOM_OK.to_vec();
    smoke.push(("smoke", 1.0));
    for s in [0, 2] {
        a.step(s, &[("XM-0001", &smoke)]).await;
    }
    assert_eq!(a.board("smoke@room").unwrap().state, AlarmState::Unacked);
    let gauge = |host: &RuleHost| {
        host.metrics
            .active
            .with_label_values(&["P1", "unacked"])
            .get()
    };
    assert_eq!(gauge(&a.host), 1);

    // The process restarts: a new board and new gauges over the same saved alarm state, and
    // no sample yet.
    let b = with_store(a.store.clone());
    b.f.clock.set(a.at(10));
    b.f.registry.room_view(&b.f.room).await.unwrap();
    let v = b
        .board("smoke@room")
        .expect("the standing alarm is on the new board");
    assert_eq!(v.state, AlarmState::Unacked);
    assert_eq!(v.severity, cistern_rules::Severity::P1);
    assert_eq!(gauge(&b.host), 1, "cistern_alarm_active counts it");
    let zone = b.host.board.counts_by_zone();
    assert_eq!(
        zone.values().sum::<u64>(),
        1,
        "the zone counts it: {zone:?}"
    );

    // The room actor restarts: its alarms are put back, not counted twice.
    let addr = b.f.registry.addr(&b.f.room).unwrap();
    assert!(addr.send(Crash).await.unwrap().is_err());
    b.f.registry.room_view(&b.f.room).await.unwrap();
    assert_eq!(b.board("smoke@room").unwrap().state, AlarmState::Unacked);
    assert_eq!(gauge(&b.host), 1);
    assert_eq!(b.host.board.len(), 1);
}

#[actix_rt::test(system = "PausedSystem")]
async fn tank_cleaning_overdue_follows_the_cleanings_the_room_is_told_even_across_a_restart_in_place(
) {
    use super::messages::TankCleanings;
    const DAY: u64 = 86_400;
    let a = with_rules();
    let addr = a.f.registry.addr(&a.f.room).unwrap();
    let active = |a: &Alarms| {
        a.board("tank_cleaning_overdue@T1")
            .is_some_and(|v| v.active)
    };
    // Never told: no value, no alarm, however long.
    a.step(400 * DAY, &[]).await;
    assert!(!active(&a));
    // Cleaned 100 days ago: not yet.
    assert!(a
        .f
        .registry
        .tank_cleanings(&a.f.room, vec![(1, a.at(300 * DAY))]));
    a.settle().await;
    assert!(!active(&a));
    // 183 days after it: raised on the room's own clock.
    a.step(483 * DAY, &[]).await;
    assert!(active(&a), "overdue after 183 days");
    // A restart in place keeps what the room was told.
    let _ = addr.send(Crash).await;
    a.step(484 * DAY, &[]).await;
    assert!(active(&a), "still overdue after the restart");
    // Cleaned again: cleared.
    addr.send(TankCleanings(vec![(1, a.at(484 * DAY))]))
        .await
        .unwrap();
    a.settle().await;
    assert!(!active(&a), "cleared by the new cleaning");
}

#[actix_rt::test(system = "PausedSystem")]
async fn night_flow_leak_follows_the_nightly_facts_the_room_is_told_even_across_a_restart_in_place()
{
    use super::messages::NightLeak;
    const DAY: u64 = 86_400;
    let a = with_rules();
    let addr = a.f.registry.addr(&a.f.room).unwrap();
    let active = |a: &Alarms| a.board("night_flow_leak@room").is_some_and(|v| v.active);
    let leak = |nights: &[f64]| NightLeak {
        index: nights.last().copied(),
        baseline: Some(0.15),
        spread: Some(0.01),
        nights: nights.to_vec(),
    };
    // Never told: no facts, no alarm.
    a.step(DAY, &[]).await;
    assert!(!active(&a));
    // Two nights over the baseline + margin: not yet.
    assert!(a.f.registry.night_leak(&a.f.room, leak(&[0.15, 0.19, 0.2])));
    a.settle().await;
    assert!(!active(&a));
    // The third: raised.
    a.step(2 * DAY, &[]).await;
    addr.send(leak(&[0.19, 0.2, 0.2])).await.unwrap();
    a.settle().await;
    assert!(active(&a), "three nights over");
    // A restart in place keeps what the room was told.
    let _ = addr.send(Crash).await;
    a.step(2 * DAY + 60, &[]).await;
    assert!(active(&a), "still raised after the restart");
    // A night back under the baseline: cleared.
    a.step(3 * DAY, &[]).await;
    addr.send(leak(&[0.2, 0.2, 0.15])).await.unwrap();
    a.settle().await;
    assert!(!active(&a), "cleared by a clean night");
}
