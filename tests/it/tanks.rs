//! Peak-shaving plans reaching the field (issue 7): the platform's `FieldWriter` against the
//! simulator's Modbus TCP server over a real socket on 127.0.0.1 (port 0), and the simulated
//! controller running what was written. Simulated time is stepped explicitly; nothing sleeps.

use cistern::auth::AuditLog;
use cistern::ingest::modbus::writer::{FieldWriter, WriteError, WriteMetrics};
use cistern::ingest::modbus::ModbusConfig;
use cistern::sim::modbus_server::ModbusFieldServer;
use cistern::sim::{self, Simulator};
use cistern_actors::ports::AuditPort;
use cistern_schemas::fill_plan::{
    slot_at, slot_start_unix_s, FillMode, PlanImage, PlanWindow, PLAN_WORDS,
};
use cistern_schemas::inventory::{Inventory, SourceSpec};
use cistern_schemas::modbus::{ProfileSet, RoomShape};
use cistern_schemas::{DeviceId, DeviceUnit, PointId, Timestamp};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

const PROFILE: &str = "hydrotek-hc300";

fn profiles() -> ProfileSet {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/profiles");
    ProfileSet::load_dir(&dir).unwrap()
}

fn config() -> ModbusConfig {
    ModbusConfig {
        interval: Duration::from_millis(100),
        request_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
    }
}

struct Rig {
    inventory: Inventory,
    server: ModbusFieldServer,
    writer: FieldWriter,
    audit: Arc<AuditLog>,
}

/// One simulated room with tanks, served over Modbus by the hydrotek profile.
async fn rig() -> Rig {
    let mut inventory = sim::generate_fleet(1, 7);
    let profiles = profiles();
    let profile = profiles.get(PROFILE).unwrap();
    let room = &mut inventory.rooms[0];
    assert!(!room.tanks.is_empty(), "the generated room has tanks");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = ModbusFieldServer::start(listener, profile, RoomShape::of(room), 1).unwrap();
    room.source = SourceSpec::Modbus {
        address: server.local_addr().to_string(),
        unit_id: 1,
        profile: PROFILE.into(),
    };
    let audit = Arc::new(AuditLog::new());
    let writer = FieldWriter::new(
        &inventory,
        &profiles,
        &config(),
        audit.clone() as Arc<dyn AuditPort>,
        WriteMetrics::register(&prometheus::Registry::new()).unwrap(),
    )
    .unwrap();
    Rig {
        inventory,
        server,
        writer,
        audit,
    }
}

fn tank(rig: &Rig) -> DeviceId {
    DeviceId::new(rig.inventory.rooms[0].id.clone(), DeviceUnit::Tank(1))
}

#[tokio::test]
async fn a_plan_written_reads_back_identical_and_the_controller_fills_only_in_its_window() {
    let rig = rig().await;
    let spec = rig.inventory.rooms[0].tanks[0].clone();
    let s0 = slot_at(Timestamp::now().as_millis() / 1000);
    let plan = PlanImage {
        issued_slot: s0,
        expires_slot: s0 + 96,
        priority: 3,
        // Never reached here: the window logic alone decides.
        fallback_level_m: 0.0,
        fallback_hysteresis_m: 0.3,
        max_level_m: spec.height_m,
        windows: vec![PlanWindow {
            start_slot: s0 + 2,
            end_slot: s0 + 4,
            rate_m3h: 4.5,
            target_level_m: spec.height_m,
        }],
    };
    let tank = tank(&rig);
    let room = tank.room.clone();
    let results = rig
        .writer
        .write_plans("system:test", &room, &[(tank.clone(), plan.clone())])
        .await;
    let written = results.into_iter().next().unwrap().unwrap();
    assert_eq!(written.image, plan);

    // What the controller holds is the plan, register for register.
    let held = rig.server.controller_writes();
    assert_eq!(held.plans.len(), rig.inventory.rooms[0].tanks.len());
    assert_eq!(held.plans[0].as_ref(), Some(&plan));
    assert_eq!(rig.writer.metrics().get("plan", "ok"), 1);
    let entry = rig.audit.recent(1).pop().unwrap();
    assert_eq!(
        (entry.action.as_str(), entry.target.as_str(), entry.ok),
        ("plan_write", tank.to_string().as_str(), true)
    );

    // The simulated room runs it: closed before the window, filling at no more than the
    // planned rate inside it, and reporting plan mode.
    let start = Timestamp::from_millis(slot_start_unix_s(s0) * 1000);
    let mut sim = Simulator::new(&rig.inventory, 7, start);
    sim.apply_writes(&room, &held);
    let t1 = |sim: &Simulator| sim.diagnostics(&room).unwrap().tanks[0].clone();
    sim.step(Duration::from_secs(10 * 60));
    let before = t1(&sim);
    assert_eq!(before.fill_mode, FillMode::Plan);
    assert_eq!(before.inflow_m3h, 0.0, "no filling before the window");
    sim.step(Duration::from_secs(25 * 60)); // 35 min: inside slot s0 + 2
    let inside = t1(&sim);
    assert_eq!(inside.fill_mode, FillMode::Plan);
    assert!(
        inside.inflow_m3h > 0.0 && inside.inflow_m3h <= 4.5 + 1e-9,
        "fills at the planned rate inside the window: {} m3/h",
        inside.inflow_m3h
    );
    sim.step(Duration::from_secs(30 * 60)); // 65 min: after the window
    let after = t1(&sim);
    assert_eq!(after.fill_mode, FillMode::Plan);
    assert_eq!(after.inflow_m3h, 0.0, "no filling after the window");
    // The mode is a point the platform reads: the simulated reading carries it.
    let reading = sim.reading(&room).unwrap();
    let (_, values) = reading
        .devices
        .iter()
        .find(|(unit, _)| *unit == DeviceUnit::Tank(1))
        .unwrap();
    let fill_mode = cistern_schemas::DeviceKind::Tank
        .point_index("fill_mode")
        .unwrap();
    assert_eq!(values[fill_mode], FillMode::Plan.code());

    // A tank without a plan is a float valve.
    assert_eq!(
        sim.diagnostics(&room)
            .unwrap()
            .tanks
            .get(1)
            .map(|t| t.fill_mode),
        rig.inventory.rooms[0]
            .tanks
            .get(1)
            .map(|_| FillMode::FloatValve)
    );
}

#[tokio::test]
async fn a_setpoint_is_written_read_back_and_audited_and_bad_ones_are_refused_clearly() {
    let rig = rig().await;
    let room = rig.inventory.rooms[0].id.clone();
    let point: PointId = format!("{room}.outlet_setpoint").parse().unwrap();
    let held = rig.writer.write_point("alice", &point, 0.42).await.unwrap();
    assert!((held - 0.42).abs() < 1e-6, "{held}");
    assert_eq!(
        rig.server.controller_writes().outlet_setpoint_mpa,
        Some(held)
    );
    let ok = rig.audit.recent(1).pop().unwrap();
    assert_eq!(
        (ok.user.as_str(), ok.action.as_str(), ok.ok),
        ("alice", "setpoint_write", true)
    );

    // Out of the profile's write_range: refused before the wire, audited, counted.
    let err = rig
        .writer
        .write_point("alice", &point, 1.5)
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::OutOfRange { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("outside the writable range 0.15..=0.8"),
        "{err}"
    );
    let refused = rig.audit.recent(1).pop().unwrap();
    assert!(!refused.ok && refused.detail.contains("1.5"), "{refused:?}");
    assert_eq!(rig.writer.metrics().get("setpoint", "rejected"), 1);

    // A point the profile does not mark writable.
    let level: PointId = format!("{room}/T1.level").parse().unwrap();
    let err = rig
        .writer
        .write_point("alice", &level, 1.0)
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::NotWritable { .. }), "{err}");

    // A plan that is not a plan (it expires before it is issued) never reaches the wire,
    // and is audited as refused.
    let tank = tank(&rig);
    let bad = PlanImage {
        issued_slot: 10,
        expires_slot: 5,
        priority: 0,
        fallback_level_m: 1.0,
        fallback_hysteresis_m: 0.3,
        max_level_m: 3.0,
        windows: vec![],
    };
    let r = rig
        .writer
        .write_plans("system:test", &room, &[(tank.clone(), bad)])
        .await;
    let err = r.into_iter().next().unwrap().unwrap_err();
    assert!(err.to_string().contains("expires"), "{err}");
    assert!(!rig.audit.recent(1).pop().unwrap().ok);
    assert_eq!(PLAN_WORDS, 41);
}

#[tokio::test]
async fn a_silent_controller_times_out_and_the_link_backs_off() {
    let rig = rig().await;
    rig.server.set_silent(true);
    let room = rig.inventory.rooms[0].id.clone();
    let point: PointId = format!("{room}.outlet_setpoint").parse().unwrap();
    let err = rig
        .writer
        .write_point("bob", &point, 0.4)
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::Timeout { .. }), "{err}");
    assert_eq!(rig.writer.metrics().get("setpoint", "timeout"), 1);
    // Straight after a timeout the link backs off instead of hammering the device.
    let err = rig
        .writer
        .write_point("bob", &point, 0.4)
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::BackingOff { .. }), "{err}");
    assert_eq!(rig.audit.recent(10).len(), 2);
}
