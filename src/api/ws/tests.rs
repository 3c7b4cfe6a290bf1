//! Unit tests of the WebSocket API: the session queue (conflation, sequence numbers, overflow,
//! replay and resume) without a socket, and the wire formats — every example of PROTOCOL.md
//! and the frames the code builds validate against the JSON Schemas, and the code's frames are
//! pinned by a golden file (a changed golden file is a reviewed protocol change; regenerate it
//! with `UPDATE_GOLDEN=1`).

use super::client::{Client, Pushed, Resume};
use super::metrics::WsMetrics;
use super::protocol::{ClientMessage, HeldSubscription, Limits, ServerMessage};
use super::topics::{PointValue, RoomMark, Topic, ZoneSummary};
use cistern_actors::alarms::AlarmView;
use cistern_actors::device::PointView;
use cistern_rules::{AlarmRecord, Severity};
use cistern_schemas::{Quality, RoomId, Timestamp, ZoneId};
use std::sync::Arc;

const PROTOCOL: &str = include_str!("../../../schemas/json/ws/PROTOCOL.md");
const CLIENT_SCHEMA: &str = include_str!("../../../schemas/json/ws/client.schema.json");
const SERVER_SCHEMA: &str = include_str!("../../../schemas/json/ws/server.schema.json");
const GOLDEN: &str = "schemas/json/ws/golden/server-frames.jsonl";

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
    c.push("f", &a("zone:a"), &a(r#"{"n":0}"#));
    assert!(c.next_frame().is_none());
    c.set_snapshot("f", a(r#"{"zones":[]}"#), false);
    c.push("f", &a("zone:a"), &a(r#"{"n":1}"#));
    c.push("f", &a("zone:b"), &a(r#"{"n":2}"#));
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
    c.set_snapshot("f", a("{}"), false);
    assert!(c.next_frame().is_some());
    for n in 0..5 {
        let pushed = c.push("f", &a("zone:a"), &a(&format!(r#"{{"n":{n}}}"#)));
        assert_eq!(
            pushed,
            if n == 0 {
                Pushed::Queued
            } else {
                Pushed::Conflated
            }
        );
    }
    c.push("f", &a("zone:b"), &a(r#"{"n":9}"#));
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
    c.set_snapshot("e", a(r#"{"events":[]}"#), false);
    c.next_frame();
    for n in 0..3 {
        assert_eq!(c.push("e", &a(&format!("k{n}")), &a("{}")), Pushed::Queued);
    }
    assert_eq!(c.push("e", &a("k3"), &a("{}")), Pushed::Overflow);
    assert_eq!(m.dropped.get(), 4);
    c.set_snapshot("e", a(r#"{"events":[1]}"#), true);
    let out = frames(&c);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "snapshot");
    assert_eq!(out[0]["resync"], true);
    assert_eq!(out[0]["seq"], 1, "the sequence goes on");
    // And the queue has room again.
    assert_eq!(c.push("e", &a("k4"), &a("{}")), Pushed::Queued);
}

#[test]
fn resume_replays_what_was_missed_or_asks_for_a_resync() {
    let c = client(100, 4);
    c.add("f", Topic::Fleet, serde_json::json!({}));
    c.set_snapshot("f", a("{}"), false);
    for n in 0..6 {
        c.push("f", &a(&format!("k{n}")), &a(&format!(r#"{{"n":{n}}}"#)));
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
    c.push("f", &a("k9"), &a(r#"{"n":9}"#));
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
    c.set_snapshot("f", a("{}"), false);
    assert!(c.next_frame_for(old).is_some());
    c.push("f", &a("k0"), &a(r#"{"n":0}"#));
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
        c.set_snapshot(id, a("{}"), false);
    }
    c.send_control(ServerMessage::Unsubscribed { id: "z".into() }.to_text());
    let out = frames(&c);
    assert_eq!(out[0]["type"], "unsubscribed");
    assert_eq!(out[1]["id"], "x");
    assert_eq!(out[2]["id"], "y");
    for n in 0..3 {
        c.push("x", &a(&format!("k{n}")), &a("{}"));
        c.push("y", &a(&format!("k{n}")), &a("{}"));
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

fn alarm_view() -> AlarmView {
    let mut rec = AlarmRecord::new("pump_fault@P2".parse().unwrap(), Severity::P2);
    rec.active = true;
    rec.raised_at = Some(Timestamp::from_millis(1_795_288_893_910));
    rec.message = "Pump P2 fault".into();
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

/// Frames as the server's code builds them, for a fixed input.
fn server_frames() -> Vec<String> {
    let mut out = vec![
        ServerMessage::AuthOk {
            user: "alice".into(),
            role: crate::auth::Role::Operator,
            session: "s-0000000000000001".into(),
            resumed: false,
            subscriptions: Vec::new(),
            limits: Limits {
                max_message_bytes: 65536,
                max_subscriptions: 64,
                replay: 512,
                resume_window_ms: 120_000,
            },
        }
        .to_text(),
        ServerMessage::error(Some("c1"), "forbidden", "this needs the operator role").to_text(),
        ServerMessage::Pong {
            id: Some("p".into()),
            time: 1_795_288_901_200,
        }
        .to_text(),
        ServerMessage::Unsubscribed { id: "f".into() }.to_text(),
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
    ];
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
    let point = PointValue::of(
        &"XM-0001/P1.frequency".parse().unwrap(),
        Some(&PointView {
            name: "frequency",
            unit: "Hz",
            value: Some(42.3),
            quality: Quality::GOOD,
            t: Some(Timestamp::from_millis(1_795_288_870_890)),
        }),
    );
    let c = client(100, 10);
    c.add("fleet", Topic::Fleet, serde_json::json!({}));
    let snapshot = serde_json::json!({
        "zones": [summary.to_json(&zone)],
        "rooms": [mark.to_json(&room)],
    });
    c.set_snapshot("fleet", Arc::from(snapshot.to_string()), false);
    let data = |v: serde_json::Value| -> Arc<str> { Arc::from(v.to_string()) };
    c.push(
        "fleet",
        &a("zone:xiangan"),
        &data(serde_json::json!({"kind": "zone", "zone": summary.to_json(&zone)})),
    );
    c.push(
        "fleet",
        &a("room:XM-0001"),
        &data(serde_json::json!({"kind": "room", "room": mark.to_json(&room)})),
    );
    c.add("pts", Topic::Points, serde_json::json!({}));
    c.set_snapshot(
        "pts",
        data(serde_json::json!({"points": [point.clone()]})),
        false,
    );
    c.push(
        "pts",
        &a("XM-0001/P1.frequency"),
        &data(serde_json::json!({"kind": "point", "point": point})),
    );
    c.add("al", Topic::Alarms, serde_json::json!({}));
    c.set_snapshot(
        "al",
        data(serde_json::json!({"alarms": [alarm_view()]})),
        true,
    );
    c.push(
        "al",
        &a("XM-0001/pump_fault@P2"),
        &data(serde_json::json!({"kind": "upsert", "alarm": alarm_view()})),
    );
    out.extend(std::iter::from_fn(|| c.next_frame()).map(|f| f.to_string()));
    c.push(
        "al",
        &a("XM-0001/pump_fault@P2"),
        &data(serde_json::json!({"kind": "remove", "alarm_id": "XM-0001/pump_fault@P2"})),
    );
    out.extend(std::iter::from_fn(|| c.next_frame()).map(|f| f.to_string()));
    out
}

#[test]
fn the_server_frames_validate_and_match_the_golden_file() {
    let schemas = Schemas::load();
    let frames = server_frames();
    for f in &frames {
        schemas.check(true, f);
    }
    let text = frames.join("\n") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{GOLDEN}: {e} (UPDATE_GOLDEN=1 writes it)"));
    assert_eq!(
        golden, text,
        "the wire format changed: review it and regenerate {GOLDEN} with UPDATE_GOLDEN=1"
    );
}
