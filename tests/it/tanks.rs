//! Peak-shaving plans reaching the field (issue 7): the platform's `FieldWriter` against the
//! simulator's Modbus TCP server over a real socket on 127.0.0.1 (port 0), and the simulated
//! controller running what was written. Simulated time is stepped explicitly; nothing sleeps.
//! Then the whole path in a running demo node (see the last test).

use crate::modbus::{fast_config, profiles};
use crate::support::{call_as, free_port, temp_dir};
use cistern::auth::AuditLog;
use cistern::control::writer::{FieldWriter, WriteError, WriteMetrics};
use cistern::lab::sim::modbus_server::ModbusFieldServer;
use cistern::lab::sim::{self, Simulator};
use cistern_actors::ports::AuditPort;
use cistern_schemas::fill_plan::{
    slot_at, slot_start_unix_s, FillMode, PlanImage, PlanWindow, PLAN_WORDS,
};
use cistern_schemas::inventory::{Inventory, SourceSpec};
use cistern_schemas::modbus::RoomShape;
use cistern_schemas::{DeviceId, DeviceUnit, PointId, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

const PROFILE: &str = "hydrotek-hc300";

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
    // Two tanks, so that their plans can share a request.
    if room.tanks.len() == 1 {
        room.tanks.push(room.tanks[0].clone());
    }
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
        &fast_config(),
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
async fn the_plans_of_a_rooms_tanks_go_in_one_request() {
    let rig = rig().await;
    let room = rig.inventory.rooms[0].id.clone();
    let s0 = slot_at(Timestamp::now().as_millis() / 1000);
    let plans: Vec<(DeviceId, PlanImage)> = (1..=2u8)
        .map(|n| {
            (
                DeviceId::new(room.clone(), DeviceUnit::Tank(n)),
                PlanImage {
                    issued_slot: s0,
                    expires_slot: s0 + 8,
                    priority: u16::from(n - 1),
                    fallback_level_m: 0.5,
                    fallback_hysteresis_m: 0.3,
                    max_level_m: 2.5,
                    windows: vec![PlanWindow {
                        start_slot: s0 + u32::from(n),
                        end_slot: s0 + 4,
                        rate_m3h: 3.0,
                        target_level_m: 2.4,
                    }],
                },
            )
        })
        .collect();
    let results = rig.writer.write_plans("system:test", &room, &plans).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(rig.writer.metrics().requests(), 1);
    let held = rig.server.controller_writes();
    assert_eq!(held.plans[0].as_ref(), Some(&plans[0].1));
    assert_eq!(held.plans[1].as_ref(), Some(&plans[1].1));
    // Each plan is audited on its own.
    let audited = rig.audit.recent(10);
    assert_eq!(audited.len(), 2);
    assert!(audited.iter().all(|e| e.action == "plan_write" && e.ok));
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
async fn a_write_the_controller_does_not_keep_is_caught_by_the_read_back() {
    let rig = rig().await;
    rig.server.set_forgetful(true);
    let room = rig.inventory.rooms[0].id.clone();
    let point: PointId = format!("{room}.outlet_setpoint").parse().unwrap();
    let err = rig
        .writer
        .write_point("carol", &point, 0.5)
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::ReadBack { .. }), "{err}");
    assert!(err.to_string().contains("did not take the write"), "{err}");
    assert_eq!(
        rig.writer.metrics().get("setpoint", "refused_by_read_back"),
        1
    );
    let entry = rig.audit.recent(1).pop().unwrap();
    assert_eq!(
        (entry.user.as_str(), entry.action.as_str(), entry.ok),
        ("carol", "setpoint_write", false)
    );
    assert_eq!(rig.server.controller_writes().outlet_setpoint_mpa, None);
    // The link is fine (the device answered): the next write goes through once it keeps them.
    rig.server.set_forgetful(false);
    let held = rig.writer.write_point("carol", &point, 0.5).await.unwrap();
    assert!((held - 0.5).abs() < 1e-6);
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

/// Polls `f` (which may block: it runs on the blocking pool, so the demo's own tasks on this
/// runtime keep running) until it returns `Some` or the deadline passes.
async fn poll_blocking<T: Send + 'static>(
    what: &str,
    deadline: Duration,
    f: impl Fn() -> Option<T> + Send + Sync + 'static,
) -> T {
    let f = Arc::new(f);
    let start = tokio::time::Instant::now();
    loop {
        let g = f.clone();
        if let Some(v) = tokio::task::spawn_blocking(move || g()).await.unwrap() {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn call(
    token: Option<&'static str>,
    method: &'static str,
    url: String,
    body: Option<String>,
) -> (u16, serde_json::Value) {
    tokio::task::spawn_blocking(move || call_as(token, method, &url, body.as_deref()))
        .await
        .unwrap()
}

fn tank_point(view: &serde_json::Value, tank: &str, name: &str) -> Option<f64> {
    view["tanks"]
        .as_array()?
        .iter()
        .find(|t| t["id"].as_str() == Some(tank))?["points"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?["value"]
        .as_f64()
}

/// The whole path in a running demo: the district's planners agree plans, the node writes them
/// over Modbus TCP to the rooms' simulated controllers (batched, read back, audited), the
/// controllers run them and report their fill mode, which the platform polls back and shows
/// in the room view next to the plan; the district plan and timeline are served; an operator
/// writes a set-point (read back, audited) and a viewer is refused.
#[actix_rt::test]
async fn the_demo_writes_plans_the_controllers_honour_and_operators_write_setpoints() {
    use cistern::auth::{Principal, Role};
    use cistern::lab::demo::{self, DemoOptions};

    let opts = DemoOptions {
        rooms: 4,
        seed: 11,
        http: "127.0.0.1:0".parse().unwrap(),
        mqtt: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        modbus_rooms: 2,
        speed: 1.0,
        actor_threads: 1,
        data: temp_dir("tanks-demo-data"),
        rules: None,
        escalate_after: None,
        offline_after: None,
        plan_sample_every: Duration::from_millis(500),
        ws: Default::default(),
        admin_password: Some(crate::support::IT_ADMIN_PASSWORD.into()),
        simulated_crews: false,
        history_days: 0,
        notify: Default::default(),
    };
    let demo = demo::start(&opts).await.unwrap();
    let base = format!("http://{}", demo.node.http);
    let auth = &demo.node.security.auth;
    auth.insert_token("it-operator", Principal::new("olga", Role::Operator));
    auth.insert_token("it-viewer", Principal::new("victor", Role::Viewer));
    // The first Modbus room: a hydrotek controller (plans and a writable set-point).
    let room = demo
        .inventory
        .rooms
        .iter()
        .find(|r| matches!(&r.source, SourceSpec::Modbus { profile, .. } if profile == PROFILE))
        .unwrap()
        .clone();
    assert!(!room.tanks.is_empty());
    let SourceSpec::Modbus { address, .. } = &room.source else {
        unreachable!()
    };
    let tank = format!("{}/T1", room.id);
    let district = room.zone.to_string();

    // 1. A round ran and T1's plan was written and read back identical.
    let plan_url = format!("{base}/api/v1/districts/{district}/plan");
    let tank_id = tank.clone();
    let url = plan_url.clone();
    let (plan, board) = poll_blocking(
        "T1's plan to be written",
        Duration::from_secs(60),
        move || {
            let (status, v) = call_as(Some("it-viewer"), "GET", &url, None);
            if status != 200 {
                return None;
            }
            let t = v["tanks"]
                .as_array()?
                .iter()
                .find(|t| t["tank"] == tank_id.as_str())?
                .clone();
            // The board takes the delivery inside the round and the planners' states once
            // the round is over: wait for both.
            (t["delivery"] == "written" && t["state"] == "planned").then_some((t, v))
        },
    )
    .await;
    assert!(board["rounds"].as_u64().unwrap() >= 1, "{board}");
    assert_eq!(plan["state"], "planned", "{plan}");

    // 2. The controller holds exactly that plan: read its registers over Modbus ourselves.
    let profiles = profiles();
    let block = profiles.get(PROFILE).unwrap().plan_address(1).unwrap();
    let stream = tokio::net::TcpStream::connect(address.as_str())
        .await
        .unwrap();
    let mut ctx = tokio_modbus::client::tcp::attach_slave(stream, tokio_modbus::Slave(1));
    use tokio_modbus::client::Reader;
    let words = ctx
        .read_holding_registers(block, PLAN_WORDS)
        .await
        .unwrap()
        .unwrap();
    let held = PlanImage::decode(&words).unwrap();
    let shown = &plan["plan"];
    assert_eq!(
        shown["issued_at_ms"].as_i64().unwrap(),
        slot_start_unix_s(held.issued_slot) * 1000
    );
    assert_eq!(
        shown["priority"].as_u64().unwrap(),
        u64::from(held.priority)
    );
    assert_eq!(
        shown["windows"].as_array().unwrap().len(),
        held.windows.len(),
        "{shown}"
    );

    // 3. The controller runs it and says so: fill_mode (polled over Modbus) is plan or
    //    fallback in the room view, next to the tank's plan.
    let room_url = format!("{base}/api/v1/rooms/{}", room.id);
    let tank_id = tank.clone();
    let view = poll_blocking(
        "the controller to report plan mode",
        Duration::from_secs(30),
        move || {
            let (status, v) = call_as(Some("it-viewer"), "GET", &room_url, None);
            let mode = tank_point(&v, &tank_id, "fill_mode")?;
            (status == 200 && (mode == FillMode::Plan.code() || mode == FillMode::Fallback.code()))
                .then_some(v)
        },
    )
    .await;
    let tank_plans = view["tank_plans"].as_array().unwrap();
    assert!(
        tank_plans
            .iter()
            .any(|t| t["tank"] == tank.as_str() && t["delivery"] == "written"),
        "{view}"
    );

    // 4. Audited as the district's plan write, and counted.
    let audited = demo.node.security.audit.recent(1000);
    assert!(
        audited.iter().any(|e| e.action == "plan_write"
            && e.target == tank
            && e.ok
            && e.user == format!("system:district-{district}")),
        "{audited:?}"
    );
    assert!(demo.node.writer.metrics().get("plan", "ok") >= 1);

    // 5. The district timeline: planned inflow ahead, from the plans the controllers hold.
    let timeline = board["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 96, "{}", timeline.len());
    assert!(timeline
        .iter()
        .all(|s| s["planned_inflow_m3h"].as_f64().is_some_and(|q| q >= 0.0)));
    let (status, list) = call(
        Some("it-viewer"),
        "GET",
        format!("{base}/api/v1/districts"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert!(list["districts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["district"] == district.as_str()));
    let (status, v) = call(
        Some("it-viewer"),
        "GET",
        format!("{base}/api/v1/districts/nowhere/plan"),
        None,
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("unknown_district"))
    );

    // 6. Set-points: the viewer is refused and nothing is written; anonymous is 401; the
    //    operator's write is read back, audited and held by the controller.
    let sp_url = format!("{base}/api/v1/rooms/{}/setpoints", room.id);
    let body = format!(
        r#"{{"writes":[{{"point":"{}.outlet_setpoint","value":0.42}}]}}"#,
        room.id
    );
    let (status, v) = call(
        Some("it-viewer"),
        "POST",
        sp_url.clone(),
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let (status, _) = call(None, "POST", sp_url.clone(), Some(body.clone())).await;
    assert_eq!(status, 401);
    assert!(!demo
        .node
        .security
        .audit
        .recent(1000)
        .iter()
        .any(|e| e.action == "setpoint_write"));
    let (status, v) = call(Some("it-operator"), "POST", sp_url.clone(), Some(body)).await;
    assert_eq!(status, 200, "{v}");
    let read_back = v["written"][0]["read_back"].as_f64().unwrap();
    assert!((read_back - 0.42).abs() < 1e-6, "{v}");
    let entry = demo.node.security.audit.recent(1).pop().unwrap();
    assert_eq!(
        (entry.user.as_str(), entry.action.as_str(), entry.ok),
        ("olga", "setpoint_write", true)
    );
    let room_url = format!("{base}/api/v1/rooms/{}", room.id);
    poll_blocking(
        "the polled set-point to change",
        Duration::from_secs(15),
        move || {
            let (_, v) = call_as(Some("it-viewer"), "GET", &room_url, None);
            let sp = v["points"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == "outlet_setpoint")?["value"]
                .as_f64()?;
            ((sp - 0.42).abs() < 1e-3).then_some(())
        },
    )
    .await;
    // Out of the profile's range: refused with a clear error, audited as refused.
    let bad = format!(
        r#"{{"writes":[{{"point":"{}.outlet_setpoint","value":1.5}}]}}"#,
        room.id
    );
    let (status, v) = call(Some("it-operator"), "POST", sp_url, Some(bad)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("out_of_range")),
        "{v}"
    );
    assert!(!demo.node.security.audit.recent(1).pop().unwrap().ok);

    demo.node.stop().await;
    demo.storage.close().await;
}

/// In a cluster the writer writes only to the rooms its node runs at the moment of the request
/// (the gate): a room run elsewhere gets nothing on the wire, and the refusal is audited and
/// counted; once the room is this node's, writes go through.
#[tokio::test]
async fn a_room_run_by_another_node_is_not_written_to() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let rig = rig().await;
    let room = rig.inventory.rooms[0].id.clone();
    let ours = Arc::new(AtomicBool::new(false));
    let gate = ours.clone();
    rig.writer
        .set_gate(Arc::new(move |_: &cistern_schemas::RoomId| {
            gate.load(Ordering::SeqCst)
        }));
    let point: PointId = format!("{room}.outlet_setpoint").parse().unwrap();
    let err = rig
        .writer
        .write_point("alice", &point, 0.42)
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::NotOwned { .. }), "{err}");
    assert_eq!(rig.server.controller_writes().outlet_setpoint_mpa, None);
    assert_eq!(rig.writer.metrics().get("setpoint", "not_owned"), 1);
    assert_eq!(rig.writer.metrics().requests(), 0, "nothing on the wire");
    let refused = rig.audit.recent(1).pop().unwrap();
    assert!(
        !refused.ok && refused.detail.contains("not run by this node"),
        "{refused:?}"
    );

    ours.store(true, Ordering::SeqCst);
    let held = rig.writer.write_point("alice", &point, 0.42).await.unwrap();
    assert_eq!(
        rig.server.controller_writes().outlet_setpoint_mpa,
        Some(held)
    );
}
