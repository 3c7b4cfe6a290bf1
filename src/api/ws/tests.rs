//! Unit tests of the WebSocket API: the session queue (conflation, sequence numbers, overflow,
//! replay and resume) without a socket, and the wire formats — every example of PROTOCOL.md
//! and the frames the code builds validate against the JSON Schemas, and every frame type the
//! code builds is pinned by a golden frame in schemas/json/ws/golden/ (a changed golden frame
//! is a reviewed protocol change; regenerate them with `UPDATE_GOLDEN=1`).

use super::client::{Client, Pushed, Refused, Resume};
use super::metrics::WsMetrics;
use super::protocol::{data, ClientMessage, Data, HeldSubscription, Limits, ServerMessage};
use super::topics::{
    AlarmsDelta, AlarmsSnapshot, EventItem, EventsSnapshot, FleetDelta, FleetSnapshot, OrdersDelta,
    OrdersSnapshot, PointValue, PointsDelta, PointsSnapshot, RoomDelta, RoomMark, Topic,
    ZoneSummary,
};
use crate::auth::AuditEntry;
use cistern_actors::alarms::AlarmView;
use cistern_actors::device::messages::DeviceView;
use cistern_actors::device::PointView;
use cistern_actors::pump_room::{RoomDerived, RoomPart};
use cistern_rules::{AlarmEvent, AlarmRecord, Severity};
use cistern_schemas::{DeviceKind, Quality, RoomId, Timestamp, ZoneId};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;

const PROTOCOL: &str = include_str!("../../../schemas/json/ws/PROTOCOL.md");
const CLIENT_SCHEMA: &str = include_str!("../../../schemas/json/ws/client.schema.json");
const SERVER_SCHEMA: &str = include_str!("../../../schemas/json/ws/server.schema.json");
const GOLDEN: &str = "schemas/json/ws/golden";

/// Both schemas, compiled.
struct Schemas {
    schemas: boon::Schemas,
    client: boon::SchemaIndex,
    server: boon::SchemaIndex,
}

impl Schemas {
    fn load() -> Self {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        let mut add = |text: &str| {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let id = v["$id"].as_str().unwrap().to_owned();
            compiler.add_resource(&id, v).unwrap();
            compiler.compile(&id, &mut schemas).unwrap()
        };
        let client = add(CLIENT_SCHEMA);
        let server = add(SERVER_SCHEMA);
        Self {
            schemas,
            client,
            server,
        }
    }

    fn check(&self, server: bool, text: &str) {
        let v: serde_json::Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        let idx = if server { self.server } else { self.client };
        if let Err(e) = self.schemas.validate(&v, idx) {
            panic!("does not validate: {e:#}\n{text}");
        }
    }
}

fn metrics() -> WsMetrics {
    WsMetrics::unregistered().unwrap()
}

fn client(queue_keys: usize, replay: usize) -> Client {
    Client::new("s-1".into(), "alice".into(), queue_keys, replay, metrics())
}

fn a(s: &str) -> Arc<str> {
    Arc::from(s)
}

/// Data as the hub shares it (already serialised).
fn d(json: &str) -> Data {
    Arc::from(RawValue::from_string(json.to_owned()).unwrap())
}

fn frames(c: &Client) -> Vec<serde_json::Value> {
    std::iter::from_fn(|| c.next_frame())
        .map(|f| serde_json::from_str(&f).unwrap())
        .collect()
}

#[test]
fn snapshot_then_deltas_in_sequence() {
    let c = client(100, 10);
    c.add("f", Topic::Fleet, serde_json::json!({}));
    // Nothing goes out before the snapshot.
    c.push("f", &a("zone:a"), &d(r#"{"n":0}"#));
    assert!(c.next_frame().is_none());
    c.set_snapshot("f", d(r#"{"zones":[]}"#), false);
    c.push("f", &a("zone:a"), &d(r#"{"n":1}"#));
    c.push("f", &a("zone:b"), &d(r#"{"n":2}"#));
    let out = frames(&c);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0]["type"], "snapshot");
    assert_eq!(out[0]["seq"], 0);
    assert_eq!(out[0]["resync"], false);
    assert_eq!(
        (out[1]["seq"].clone(), out[1]["data"]["n"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(
        (out[2]["seq"].clone(), out[2]["key"].clone()),
        (2.into(), "zone:b".into())
    );
}

#[test]
fn a_slow_client_gets_the_latest_value_per_key_and_an_unbroken_sequence() {
    let c = client(100, 10);
    c.add("f", Topic::Fleet, serde_json::json!({}));
    c.set_snapshot("f", d("{}"), false);
    assert!(c.next_frame().is_some());
    for n in 0..5 {
        let pushed = c.push("f", &a("zone:a"), &d(&format!(r#"{{"n":{n}}}"#)));
        assert_eq!(
            pushed,
            if n == 0 {
                Pushed::Queued
            } else {
                Pushed::Conflated
            }
        );
    }
    c.push("f", &a("zone:b"), &d(r#"{"n":9}"#));
    let out = frames(&c);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["data"]["n"], 4, "the latest value wins");
    assert_eq!(out[0]["conflated"], 4, "four superseded updates");
    assert_eq!(out[0]["seq"], 1);
    assert_eq!(out[1]["seq"], 2);
    assert_eq!(out[1]["conflated"], 0);
}

#[test]
fn a_full_queue_re_snapshots_the_subscription_instead_of_losing_updates_silently() {
    let m = metrics();
    let c = Client::new("s".into(), "u".into(), 3, 10, m.clone());
    c.add("e", Topic::Events, serde_json::json!({}));
    c.set_snapshot("e", d(r#"{"events":[]}"#), false);
    c.next_frame();
    for n in 0..3 {
        assert_eq!(c.push("e", &a(&format!("k{n}")), &d("{}")), Pushed::Queued);
    }
    assert_eq!(c.push("e", &a("k3"), &d("{}")), Pushed::Overflow);
    assert_eq!(m.dropped.get(), 4);
    c.set_snapshot("e", d(r#"{"events":[1]}"#), true);
    let out = frames(&c);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "snapshot");
    assert_eq!(out[0]["resync"], true);
    assert_eq!(out[0]["seq"], 1, "the sequence goes on");
    // And the queue has room again.
    assert_eq!(c.push("e", &a("k4"), &d("{}")), Pushed::Queued);
}

#[test]
fn resume_replays_what_was_missed_or_asks_for_a_resync() {
    let c = client(100, 4);
    c.add("f", Topic::Fleet, serde_json::json!({}));
    c.set_snapshot("f", d("{}"), false);
    for n in 0..6 {
        c.push("f", &a(&format!("k{n}")), &d(&format!(r#"{{"n":{n}}}"#)));
    }
    let sent = frames(&c);
    assert_eq!(sent.len(), 7); // seq 0..=6; the ring keeps 3..=6
    let epoch = c.attach();
    assert!(epoch > 0);
    assert!(!c.is_live("f"), "held, paused until resubscribed");
    assert_eq!(
        c.held(),
        vec![HeldSubscription {
            id: "f".into(),
            topic: "fleet",
            seq: 6
        }]
    );
    // A delta produced while the client was away is queued behind the replay.
    c.push("f", &a("k9"), &d(r#"{"n":9}"#));
    assert_eq!(c.resume("f", 4), Resume::Replayed);
    let out = frames(&c);
    let seqs: Vec<u64> = out.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [5, 6, 7]);
    assert_eq!(out[0], sent[5], "replayed exactly as first sent");
    // Too old for the ring, ahead of what was sent, or before the snapshot: resync.
    c.attach();
    assert_eq!(c.resume("f", 1), Resume::Resync);
    assert_eq!(c.resume("f", 99), Resume::Resync);
    assert_eq!(c.resume("g", 0), Resume::Resync);
    assert_eq!(c.resume("f", 7), Resume::Replayed, "nothing missed");
    assert!(frames(&c).is_empty());
}

#[test]
fn a_replaced_socket_cannot_take_its_successors_frames() {
    let c = client(100, 4);
    let old = c.attach();
    c.add("f", Topic::Fleet, serde_json::json!({}));
    c.set_snapshot("f", d("{}"), false);
    assert!(c.next_frame_for(old).is_some());
    c.push("f", &a("k0"), &d(r#"{"n":0}"#));
    // A resume attaches a new socket while the old writer has not noticed its end yet.
    let new = c.attach();
    assert_eq!(c.resume("f", 0), Resume::Replayed);
    assert!(
        c.next_frame_for(old).is_none(),
        "the stale writer gets nothing"
    );
    let f: serde_json::Value = serde_json::from_str(&c.next_frame_for(new).unwrap()).unwrap();
    assert_eq!(
        (f["seq"].clone(), f["data"]["n"].clone()),
        (1.into(), 0.into())
    );
}

#[test]
fn answers_go_before_subscription_data_and_subscriptions_take_turns() {
    let c = client(100, 0);
    for id in ["x", "y"] {
        c.add(id, Topic::Fleet, serde_json::json!({}));
        c.set_snapshot(id, d("{}"), false);
    }
    c.send_control(ServerMessage::Unsubscribed { id: "z".into() }.to_text());
    let out = frames(&c);
    assert_eq!(out[0]["type"], "unsubscribed");
    assert_eq!(out[1]["id"], "x");
    assert_eq!(out[2]["id"], "y");
    for n in 0..3 {
        c.push("x", &a(&format!("k{n}")), &d("{}"));
        c.push("y", &a(&format!("k{n}")), &d("{}"));
    }
    let ids: Vec<String> = frames(&c)
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["x", "y", "x", "y", "x", "y"]);
}

/// The fenced examples of PROTOCOL.md: (is a server message, text).
fn protocol_examples() -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut current: Option<(bool, String)> = None;
    for line in PROTOCOL.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```json client") => current = Some((false, String::new())),
            (None, "```json server") => current = Some((true, String::new())),
            (Some(_), "```") => out.extend(current.take()),
            (Some((_, text)), l) => {
                text.push_str(l);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn every_example_of_the_protocol_page_validates_and_client_examples_parse() {
    let schemas = Schemas::load();
    let examples = protocol_examples();
    let mut types = std::collections::BTreeSet::new();
    for (server, text) in &examples {
        schemas.check(*server, text);
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        types.insert(format!(
            "{}:{}",
            if *server { "server" } else { "client" },
            v["type"].as_str().unwrap()
        ));
        if !server {
            serde_json::from_str::<ClientMessage>(text)
                .unwrap_or_else(|e| panic!("the server refuses this example ({e}): {text}"));
        }
    }
    // Every message type has an example.
    for t in [
        "client:auth",
        "client:subscribe",
        "client:unsubscribe",
        "client:ping",
        "client:command",
        "server:auth_ok",
        "server:snapshot",
        "server:delta",
        "server:unsubscribed",
        "server:pong",
        "server:result",
        "server:error",
    ] {
        assert!(types.contains(t), "PROTOCOL.md has no example of {t}");
    }
}

#[test]
fn the_schemas_refuse_what_the_server_refuses() {
    let schemas = Schemas::load();
    let v = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap();
    for bad in [
        r#"{"type":"subscribe","id":"a","topic":"weather"}"#,
        r#"{"type":"subscribe","id":"a","topic":"room","filter":{"rom":"XM-0001"}}"#,
        r#"{"type":"auth"}"#,
        r#"{"type":"ping","extra":1}"#,
        r#"{"type":"command","id":"c","command":"setpoint","room":"XM-0001"}"#,
        r#"{"type":"command","id":"c","command":"setpoint","room":"XM-0001","writes":[]}"#,
        r#"{"type":"command","id":"c","command":"ack","room":"XM-0001","alarm":"XM-0001/a@b"}"#,
        r#"{"type":"command","id":"c","command":"setpoint","room":"XM-0001","alarm":"XM-0001/a@b","writes":[{"point":"XM-0001.outlet_setpoint","value":0.4}]}"#,
    ] {
        assert!(
            schemas.schemas.validate(&v(bad), schemas.client).is_err(),
            "the client schema accepts {bad}"
        );
    }
    assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"ping","extra":1}"#).is_err());
}

#[test]
fn pipelined_subscribes_and_unsubscribes_count_in_message_order() {
    let c = client(100, 10);
    c.attach();
    // The reader claims 3 while the hub has taken none of them yet.
    for id in ["a", "b", "c"] {
        assert_eq!(c.claim(id, 3), Ok(()));
    }
    assert_eq!(c.claim("d", 3), Err(Refused::TooMany));
    assert_eq!(
        c.claim("a", 3),
        Err(Refused::Duplicate),
        "asked for already"
    );
    // The hub taking them changes nothing.
    for id in ["a", "b", "c"] {
        c.add(id, Topic::Fleet, serde_json::json!({}));
        c.set_snapshot(id, d("{}"), false);
    }
    assert_eq!(c.claim("d", 3), Err(Refused::TooMany));
    // An unsubscribe frees its place at once, before the hub has removed it.
    c.unclaim("a");
    assert_eq!(c.claim("d", 3), Ok(()));
    assert_eq!(c.claim("a", 3), Err(Refused::TooMany));
    // After a reconnect the held subscriptions count, and each may be resubscribed once.
    c.attach();
    assert_eq!(c.claim("e", 3), Err(Refused::TooMany));
    assert_eq!(
        c.claim("b", 3),
        Ok(()),
        "a held subscription takes no new place"
    );
    assert_eq!(c.claim("b", 3), Err(Refused::Duplicate));
}

fn alarm_view() -> AlarmView {
    let mut rec = AlarmRecord::new("pump_fault@P2".parse().unwrap(), Severity::P2);
    rec.active = true;
    rec.raised_at = Some(Timestamp::from_millis(1_795_288_893_910));
    rec.message = "Pump P2 fault".into();
    rec.message_zh = "水泵 P2 故障".into();
    let room = RoomId::new("XM-0001").unwrap();
    let zone: ZoneId = "xiangan".parse().unwrap();
    AlarmView::of(
        "XM-0001",
        Some(&room),
        &zone,
        &rec,
        true,
        Timestamp::from_millis(1_795_288_894_660),
    )
}

fn alarm_event() -> AlarmEvent {
    serde_json::from_value(serde_json::json!({
        "time": 1_795_288_893_910_i64, "source": {"device": "XM-0001/P2"}, "rule": "pump_fault",
        "key": "pump_fault@P2", "kind": "raised", "from": "normal", "to": "unacked",
        "severity": "P2", "message": "Pump P2 fault", "message_zh": "水泵 P2 故障",
        "first_out": true
    }))
    .unwrap()
}

fn audit_entry() -> AuditEntry {
    let mut e = AuditEntry::now(
        "alice",
        "alarm_ack",
        "XM-0001/pump_fault@P2",
        "pump reset on site",
        true,
    )
    .from_source("10.0.0.7");
    e.at_ms = 1_795_288_901_200;
    e.seq = Some(976);
    e.prev = crate::auth::audit_chain::GENESIS.to_owned();
    e.hash = crate::auth::audit_chain::hash_of(&e.prev, &e);
    e
}

fn point_view(name: &'static str, unit: &'static str, value: f64) -> PointView {
    PointView {
        name,
        unit,
        value: Some(value),
        quality: Quality::GOOD,
        t: Some(Timestamp::from_millis(1_795_288_870_890)),
    }
}

/// A subscription's frames as a session sends them: its snapshot, then one delta per
/// `(key, data)`.
fn subscription_frames(
    id: &str,
    topic: Topic,
    snapshot: Data,
    resync: bool,
    deltas: Vec<(&str, Data)>,
) -> Vec<String> {
    let c = client(100, 10);
    c.add(id, topic, serde_json::json!({}));
    c.set_snapshot(id, snapshot, resync);
    let mut out = vec![c.next_frame().unwrap().to_string()];
    for (key, delta) in deltas {
        c.push(id, &a(key), &delta);
        out.push(c.next_frame().unwrap().to_string());
    }
    out
}

/// Every frame type the server sends, by name, built by the code's own types for a fixed
/// input (the room snapshot, the REST RoomView, is pinned by the REST API and checked against
/// REST in tests/it/ws.rs).
fn server_frames() -> BTreeMap<&'static str, String> {
    let limits = Limits {
        max_message_bytes: 65536,
        max_subscriptions: 64,
        replay: 512,
        resume_window_ms: 120_000,
    };
    let mut out = BTreeMap::from([
        (
            "auth_ok",
            ServerMessage::AuthOk {
                user: "alice".into(),
                role: crate::auth::Role::Operator,
                session: "s-0000000000000001".into(),
                resumed: false,
                subscriptions: Vec::new(),
                limits,
            }
            .to_text(),
        ),
        (
            "auth_ok-resumed",
            ServerMessage::AuthOk {
                user: "alice".into(),
                role: crate::auth::Role::Viewer,
                session: "s-0000000000000001".into(),
                resumed: true,
                subscriptions: vec![HeldSubscription {
                    id: "fleet-1".into(),
                    topic: "fleet",
                    seq: 41,
                }],
                limits,
            }
            .to_text(),
        ),
        (
            "error",
            ServerMessage::error(Some("c1"), "forbidden", "this needs the operator role").to_text(),
        ),
        (
            "error-without-id",
            ServerMessage::error(None, "unauthorized", "authentication required").to_text(),
        ),
        (
            "pong",
            ServerMessage::Pong {
                id: Some("p".into()),
                time: 1_795_288_901_200,
            }
            .to_text(),
        ),
        (
            "pong-without-id",
            ServerMessage::Pong {
                id: None,
                time: 1_795_288_901_200,
            }
            .to_text(),
        ),
        (
            "unsubscribed",
            ServerMessage::Unsubscribed { id: "f".into() }.to_text(),
        ),
        (
            "result-alarm-command",
            ServerMessage::Result {
                id: "c1".into(),
                ok: true,
                data: serde_json::to_value(crate::api::alarms::CommandOutcome {
                    events: Vec::new(),
                    alarm: Some(alarm_view()),
                })
                .unwrap(),
            }
            .to_text(),
        ),
        (
            "result-setpoint",
            ServerMessage::Result {
                id: "c7".into(),
                ok: true,
                data: crate::api::setpoints::answer(
                    &RoomId::new("XM-0001").unwrap(),
                    &[crate::api::setpoints::SetpointWritten {
                        point: "XM-0001.outlet_setpoint".into(),
                        requested: 0.42,
                        read_back: 0.42,
                    }],
                ),
            }
            .to_text(),
        ),
    ]);
    let mut add = |names: &[&'static str], frames: Vec<String>| {
        assert_eq!(names.len(), frames.len());
        out.extend(names.iter().copied().zip(frames));
    };

    let zone: ZoneId = "xiangan".parse().unwrap();
    let room = RoomId::new("XM-0001").unwrap();
    let summary = ZoneSummary {
        rooms: 3,
        online: 2,
        alarms: [0, 1, 0, 2],
        unacked: 1,
    };
    let mark = RoomMark {
        zone: zone.clone(),
        online: true,
        alarms: 1,
        unacked: 1,
        annunciating: [0, 1, 0, 0],
    };
    add(
        &["snapshot-fleet", "delta-fleet-zone", "delta-fleet-room"],
        subscription_frames(
            "fleet",
            Topic::Fleet,
            data(&FleetSnapshot {
                zones: vec![summary.entry(&zone)],
                rooms: Some(vec![mark.entry(&room)]),
            }),
            false,
            vec![
                (
                    "zone:xiangan",
                    data(&FleetDelta::Zone {
                        zone: summary.entry(&zone),
                    }),
                ),
                (
                    "room:XM-0001",
                    data(&FleetDelta::Room {
                        room: mark.entry(&room),
                    }),
                ),
            ],
        ),
    );
    add(
        &["snapshot-fleet-zones-only"],
        subscription_frames(
            "zones",
            Topic::Fleet,
            data(&FleetSnapshot {
                zones: vec![summary.entry(&zone)],
                rooms: None,
            }),
            false,
            Vec::new(),
        ),
    );

    let part = RoomPart {
        id: room.clone(),
        status: cistern_actors::pump_room::Link::Online,
        last_seen: Some(Timestamp::from_millis(1_795_288_870_890)),
        last_data: Some(Timestamp::from_millis(1_795_288_870_890)),
        clock_skew: None,
        derived: RoomDerived {
            mains: Some(true),
            inlet_pressure_mpa: Some(0.12),
            outlet_pressure_mpa: Some(0.41),
            outlet_setpoint_mpa: 0.42,
            outlet_flow_m3h: Some(18.5),
            active_power_kw: Some(6.4),
            energy_intensity_kwh_m3: None,
        },
        points: vec![point_view("outlet_pressure", "MPa", 0.41)],
    };
    let device = DeviceView {
        id: "XM-0001/P1".parse().unwrap(),
        kind: DeviceKind::Pump,
        derived: serde_json::json!({"frequency_hz": 42.3, "power_kw": 6.4, "role": "duty",
                                    "speed_ratio": 0.85, "status": "running"}),
        points: vec![
            point_view("running", "", 1.0),
            point_view("frequency", "Hz", 42.3),
        ],
    };
    // The room snapshot's data is the REST RoomView: stand-in data here, only the envelope.
    let room_frames = subscription_frames(
        "room-XM-0001",
        Topic::Room,
        d("{}"),
        false,
        vec![
            ("room", data(&RoomDelta::Room { room: &part })),
            ("XM-0001/P1", data(&RoomDelta::Device { device: &device })),
        ],
    );
    add(
        &["delta-room-part", "delta-room-device"],
        room_frames[1..].to_vec(),
    );

    let point = PointValue::of(
        &"XM-0001/P1.frequency".parse().unwrap(),
        Some(&point_view("frequency", "Hz", 42.3)),
    );
    let never = PointValue::of(&"XM-0001.outlet_pressure".parse().unwrap(), None);
    add(
        &["snapshot-points", "delta-point"],
        subscription_frames(
            "trend",
            Topic::Points,
            data(&PointsSnapshot {
                points: vec![point.clone(), never],
            }),
            false,
            vec![(
                "XM-0001/P1.frequency",
                data(&PointsDelta::Point { point: &point }),
            )],
        ),
    );

    let alarm = alarm_view();
    add(
        &[
            "snapshot-alarms-resync",
            "delta-alarm-upsert",
            "delta-alarm-remove",
        ],
        subscription_frames(
            "alarms",
            Topic::Alarms,
            data(&AlarmsSnapshot {
                alarms: vec![&alarm],
            }),
            true,
            vec![
                (
                    "XM-0001/pump_fault@P2",
                    data(&AlarmsDelta::Upsert { alarm: &alarm }),
                ),
                (
                    "XM-0001/pump_fault@P2",
                    data(&AlarmsDelta::Remove {
                        alarm_id: &alarm.id,
                    }),
                ),
            ],
        ),
    );

    let (event, entry) = (alarm_event(), audit_entry());
    let alarm_item = data(&EventItem::Alarm {
        alarm_id: "XM-0001/pump_fault@P2",
        event: &event,
    });
    let audit_item = data(&EventItem::Audit { entry: &entry });
    add(
        &["snapshot-events", "delta-event-alarm", "delta-event-audit"],
        subscription_frames(
            "log",
            Topic::Events,
            data(&EventsSnapshot {
                events: vec![&alarm_item, &audit_item],
            }),
            false,
            vec![
                ("alarm:40312", alarm_item.clone()),
                ("audit:977", audit_item.clone()),
            ],
        ),
    );

    let order = work_order();
    add(
        &["snapshot-workorders", "delta-order"],
        subscription_frames(
            "my-orders",
            Topic::Workorders,
            data(&OrdersSnapshot {
                orders: vec![&order],
            }),
            false,
            vec![("WO-000123", data(&OrdersDelta::Order { order: &order }))],
        ),
    );
    out
}

/// The work order of the protocol page's example.
fn work_order() -> crate::business::workorders::WorkOrder {
    let example = protocol_examples()
        .into_iter()
        .find(|(server, text)| *server && text.contains(r#""kind": "order""#))
        .unwrap()
        .1;
    let v: serde_json::Value = serde_json::from_str(&example).unwrap();
    serde_json::from_value(v["data"]["order"].clone()).unwrap()
}

#[test]
fn every_frame_type_matches_its_golden_frame() {
    let schemas = Schemas::load();
    let frames = server_frames();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    if update {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut changed = Vec::new();
    for (name, frame) in &frames {
        schemas.check(true, frame);
        let path = dir.join(format!("{name}.json"));
        let text = format!("{frame}\n");
        if update {
            std::fs::write(&path, &text).unwrap();
        }
        match std::fs::read_to_string(&path) {
            Ok(golden) if golden == text => {}
            Ok(golden) => changed.push(format!("{name}:\n  golden: {golden}  now:    {text}")),
            Err(e) => changed.push(format!("{name}: {} ({e})", path.display())),
        }
    }
    assert!(
        changed.is_empty(),
        "the wire format changed: review it and regenerate {GOLDEN}/ with UPDATE_GOLDEN=1\n{}",
        changed.join("\n")
    );
    // No golden frame is left over from a frame type that is gone.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let name = file.trim_end_matches(".json");
        assert!(
            frames.contains_key(name),
            "{GOLDEN}/{file} is no frame the server builds"
        );
    }
}

/// Compiles one `$defs` entry of the server schema.
fn server_def(schemas: &mut boon::Schemas, def: &str) -> boon::SchemaIndex {
    let v: serde_json::Value = serde_json::from_str(SERVER_SCHEMA).unwrap();
    let id = v["$id"].as_str().unwrap().to_owned();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(&id, v).unwrap();
    compiler
        .compile(&format!("{id}#/$defs/{def}"), schemas)
        .unwrap()
}

/// The last segment of a `{"$ref": "#/$defs/x"}`.
fn def_name(r: &serde_json::Value) -> String {
    r["$ref"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn every_frame_type_of_the_schema_has_a_golden_frame() {
    let schema: serde_json::Value = serde_json::from_str(SERVER_SCHEMA).unwrap();
    let frames: Vec<serde_json::Value> = (server_frames().values())
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    // Every message type.
    for def in schema["oneOf"].as_array().unwrap().iter().map(def_name) {
        let t = &schema["$defs"][&def]["properties"]["type"]["const"];
        assert!(
            frames.iter().any(|f| &f["type"] == t),
            "no golden frame of type {t}"
        );
    }
    // Every snapshot topic but `room`, whose data is the REST RoomView (tests/it/ws.rs checks
    // it against REST and the schema).
    let topics = &schema["$defs"]["snapshot"]["properties"]["topic"]["enum"];
    for topic in topics.as_array().unwrap().iter().filter(|t| *t != "room") {
        assert!(
            frames
                .iter()
                .any(|f| f["type"] == "snapshot" && &f["topic"] == topic),
            "no golden snapshot of topic {topic}"
        );
    }
    // Every kind of delta data.
    let mut schemas = boon::Schemas::new();
    let kinds = schema["$defs"]["delta"]["properties"]["data"]["oneOf"]
        .as_array()
        .unwrap();
    for def in kinds.iter().map(def_name) {
        let idx = server_def(&mut schemas, &def);
        assert!(
            (frames.iter().filter(|f| f["type"] == "delta"))
                .any(|f| schemas.validate(&f["data"], idx).is_ok()),
            "no golden delta whose data is a {def}"
        );
    }
}

#[test]
fn one_change_is_serialised_once_for_every_subscriber() {
    // The hub shares one `Data` among the sessions it pushes to: what each session's frame
    // embeds is that allocation, not a copy serialised again.
    let shared = data(&PointsDelta::Point {
        point: &PointValue::of(&"XM-0001.outlet_pressure".parse().unwrap(), None),
    });
    let sessions: Vec<Client> = (0..3).map(|_| client(10, 10)).collect();
    for c in &sessions {
        c.add("p", Topic::Points, serde_json::json!({}));
        c.set_snapshot("p", d("{}"), false);
        c.next_frame();
        c.push("p", &a("XM-0001.outlet_pressure"), &shared);
    }
    assert_eq!(Arc::strong_count(&shared), 1 + sessions.len());
    for c in &sessions {
        let frame = c.next_frame().unwrap();
        assert!(
            frame.ends_with(&format!(r#","data":{}}}"#, shared.get())),
            "{frame}"
        );
    }
}

#[test]
fn a_workorders_filter_matches_every_field_it_gives() {
    use super::topics::OrderSubFilter;
    let order = work_order();
    let f = |v: serde_json::Value| serde_json::from_value::<OrderSubFilter>(v).unwrap();
    assert!(f(serde_json::json!({})).matches(&order));
    assert!(f(serde_json::json!({"team": "siming", "room": "XM-0001"})).matches(&order));
    assert!(f(serde_json::json!({"assignee": "crew-siming-1"})).matches(&order));
    assert!(!f(serde_json::json!({"assignee": "crew-siming-2"})).matches(&order));
    assert!(!f(serde_json::json!({"team": "siming", "room": "XM-0002"})).matches(&order));
    assert!(serde_json::from_value::<OrderSubFilter>(serde_json::json!({"zone": "x"})).is_err());
}
