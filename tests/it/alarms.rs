//! The alarm rules end to end: `cistern demo` with injected faults raising the expected alarms
//! after their configured delays, first-out and suppression on mains loss, escalation on
//! schedule, a chattering contact ending as one chattering alarm, zone correlation, commands
//! through the API, and hot reload; then `cistern run` killed with SIGKILL in the middle of a
//! delay, which carries on where it was after the restart.

use crate::support::{get, metric, post, run_site, temp_dir, wait_for, Cistern, Mosquitto};
use cistern::lab::sim;
use cistern_schemas::{telemetry, DeviceId, Timestamp};
use rumqttc::{Client, MqttOptions, QoS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A copy of the shipped library, with some on-delays shortened so that a test sees them
/// expire (the delays are configuration: the rule files).
fn library_copy(name: &str, delays: &[(&str, &str)]) -> PathBuf {
    let dir = temp_dir(name);
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/library");
    for e in std::fs::read_dir(&lib).unwrap() {
        let p = e.unwrap().path();
        let mut text = std::fs::read_to_string(&p).unwrap();
        let stem = p.file_stem().unwrap().to_str().unwrap();
        for (rule, delay) in delays {
            if stem == *rule {
                let start = text.find("//! on_delay = ").expect("rule has an on_delay");
                let end = start + text[start..].find('\n').unwrap();
                text.replace_range(start..end, &format!("//! on_delay = \"{delay}\""));
            }
        }
        std::fs::write(dir.join(p.file_name().unwrap()), text).unwrap();
    }
    dir
}

fn alarms(base: &str) -> BTreeMap<String, Value> {
    let (status, v) = get(&format!("{base}/api/v1/alarms"));
    assert_eq!(status, 200, "{v}");
    v["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap().to_owned(), a.clone()))
        .collect()
}

fn inject(base: &str, room: &str, fault: &str) -> i64 {
    let (status, v) = post(
        &format!("{base}/api/v1/sim/faults"),
        &format!(r#"{{"room":"{room}","fault":"{fault}","seconds":900}}"#),
    );
    assert_eq!(status, 202, "{v}");
    Timestamp::now().0
}

#[test]
fn demo_faults_raise_their_alarms_and_operators_work_them() {
    let rules = library_copy(
        "alarm-rules",
        &[("chlorine_low", "10s"), ("comms_lost", "10s")],
    );
    let demo = Cistern::demo("alarm-demo")
        .rooms(20)
        .modbus_rooms(0)
        .rules(&rules)
        .args(["--escalate-after", "20s", "--offline-after", "5s"])
        .start();
    let base = demo.http().to_owned();
    assert_eq!(demo.ready_field("online"), "20", "{}", demo.log_tail());
    assert!(alarms(&base).is_empty(), "a healthy fleet raises nothing");

    // A zone with three rooms the other faults leave alone: its inlet pressure drops.
    let (_, rooms) = get(&format!("{base}/api/v1/rooms"));
    // Names as operators read them, pinyin beside them; zones listed once with theirs.
    let zone_names: Vec<(&str, &str, &str)> = (rooms["zones"].as_array().unwrap().iter())
        .map(|z| {
            let s = |k: &str| z[k].as_str().unwrap();
            (s("id"), s("name"), s("name_pinyin"))
        })
        .collect();
    assert_eq!(
        zone_names[0],
        ("siming", "思明区", "Siming District"),
        "{rooms}"
    );
    assert_eq!(zone_names.len(), 6, "{rooms}");
    let first = &rooms["rooms"][0];
    assert!(first["name"].as_str().unwrap().ends_with("泵房"), "{first}");
    assert!(
        first["address"].as_str().unwrap().starts_with("厦门市"),
        "{first}"
    );
    assert!(
        !first["name_pinyin"].as_str().unwrap().is_empty(),
        "{first}"
    );
    assert!(
        first["address_pinyin"]
            .as_str()
            .unwrap()
            .ends_with("Xiamen"),
        "{first}"
    );
    let used = [
        "XM-0002", "XM-0003", "XM-0004", "XM-0005", "XM-0006", "XM-0007",
    ];
    let mut zones: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rooms["rooms"].as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        if !used.contains(&id) {
            zones
                .entry(r["zone"].as_str().unwrap().to_owned())
                .or_default()
                .push(id.to_owned());
        }
    }
    let (zone, members) = zones
        .into_iter()
        .find(|(_, m)| m.len() >= 3)
        .expect("a zone with three free rooms");

    let t_trip = inject(&base, "XM-0002", "pump_trip");
    inject(&base, "XM-0003", "mains_loss");
    inject(&base, "XM-0004", "intrusion");
    let t_chlorine = inject(&base, "XM-0005", "chlorine_drop");
    inject(&base, "XM-0006", "chattering_contact");
    inject(&base, "XM-0007", "comms_loss");
    for m in &members[..3] {
        inject(&base, m, "inlet_pressure_loss");
    }

    let expected = [
        "XM-0002/pump_fault@P1",
        "XM-0003/mains_loss@room",
        "XM-0004/intrusion@room",
        "XM-0005/chlorine_low@room",
        "XM-0006/intrusion@room",
        "XM-0007/comms_lost@room",
    ];
    let zone_id = format!("zone:{zone}/zone_event@room");
    let all = wait_for(
        "every injected fault's alarm",
        // The chlorine falls with a 30 s time constant: below 0.05 mg/L after ~2 min.
        Duration::from_secs(180),
        || {
            let a = alarms(&base);
            (expected.iter().all(|id| a.contains_key(*id)) && a.contains_key(&zone_id)).then_some(a)
        },
    );
    let raised_after = |id: &str, t: i64| all[id]["raised_at"].as_i64().unwrap() - t;
    // Both languages on every alarm.
    let trip = &all["XM-0002/pump_fault@P1"];
    assert_eq!(trip["message"], "Pump P1 fault", "{trip}");
    assert_eq!(trip["message_zh"], "水泵 P1 故障", "{trip}");
    let mains = all["XM-0003/mains_loss@room"]["message_zh"]
        .as_str()
        .unwrap();
    assert!(mains.starts_with("市电失电（A 相"), "{mains}");
    let zone_alarm = all[&zone_id]["message_zh"].as_str().unwrap();
    assert!(zone_alarm.contains("进水压力低"), "{zone_alarm}");
    // Raised after their configured on-delays, not before.
    assert!(raised_after("XM-0002/pump_fault@P1", t_trip) >= 5_000);
    assert!(raised_after("XM-0005/chlorine_low@room", t_chlorine) >= 10_000);

    // Mains loss: one first-out alarm; what it causes is recorded as suppressed under it.
    assert_eq!(all["XM-0003/mains_loss@room"]["first_out"], true);
    let suppressed: Vec<&Value> = all
        .values()
        .filter(|a| a["room"] == "XM-0003" && a["state"] == "suppressed")
        .collect();
    let xm3 = wait_for(
        "a consequence of the mains loss, suppressed",
        Duration::from_secs(30),
        || {
            let a = alarms(&base);
            let s: Vec<Value> = a
                .values()
                .filter(|a| a["room"] == "XM-0003" && a["state"] == "suppressed")
                .cloned()
                .collect();
            (!s.is_empty()).then_some(a)
        },
    );
    let _ = suppressed;
    for a in xm3.values().filter(|a| a["room"] == "XM-0003") {
        if a["id"] != "XM-0003/mains_loss@room" {
            assert_eq!(a["state"], "suppressed", "{a}");
            assert_eq!(a["suppressed_by"], "mains_loss@room", "{a}");
        }
    }

    // Intrusion bookmarks the room's camera video.
    let (_, room4) = get(&format!("{base}/api/v1/rooms/XM-0004"));
    let bookmarks = &room4["cameras"][0]["derived"]["bookmarks"];
    assert_eq!(bookmarks[0]["alarm"], "XM-0004/intrusion@room", "{room4}");

    // The door contact chattering while armed: one intrusion, latched, annunciated once however
    // often the contact flaps (not a stream of raises, nor a chattering alarm).
    let (_, chat) = get(&format!("{base}/api/v1/alarms/XM-0006/intrusion@room"));
    assert_eq!(chat["alarm"]["state"], "unacked", "{chat}");
    let kinds: Vec<&str> = (chat["events"].as_array().unwrap().iter())
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "raised").count(),
        1,
        "{chat}"
    );
    assert!(
        !kinds.contains(&"cleared") && !kinds.contains(&"chatter_shelved"),
        "{chat}"
    );
    assert!(!alarms(&base).contains_key("XM-0006/chattering@room"));

    // Zone correlation: the members' inlet_pressure_low is suppressed under the zone event.
    let member = wait_for(
        "a zone member's inlet alarm under the zone event",
        Duration::from_secs(30),
        || {
            let a = alarms(&base);
            a.get(&format!("{}/inlet_pressure_low@room", members[0]))
                .filter(|v| v["state"] == "suppressed")
                .cloned()
        },
    );
    assert_eq!(member["suppressed_by"], "zone_event@room");

    // Escalation on schedule: unacknowledged for 20 s → step 1, notifying the shift lead.
    let id = "XM-0002/pump_fault@P1";
    let detail = wait_for("the escalation step", Duration::from_secs(40), || {
        let (_, d) = get(&format!("{base}/api/v1/alarms/{id}"));
        d["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "escalated")
            .then_some(d)
    });
    let events = detail["events"].as_array().unwrap();
    let raised = events.iter().find(|e| e["kind"] == "raised").unwrap();
    let step = events.iter().find(|e| e["kind"] == "escalated").unwrap();
    assert_eq!(raised["message_zh"], "水泵 P1 故障", "{raised}");
    assert_eq!(
        step["time"].as_i64().unwrap() - raised["time"].as_i64().unwrap(),
        20_000
    );
    assert_eq!(step["notify"], "shift_lead");

    // Commands through the API, by the authenticated user with a comment; a body naming
    // someone else is refused.
    let (status, v) = post(
        &format!("{base}/api/v1/alarms/{id}/ack"),
        r#"{"user":"op1","comment":"crew on the way"}"#,
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "user_mismatch", "{v}");
    let (status, v) = post(
        &format!("{base}/api/v1/alarms/{id}/ack"),
        r#"{"user":"admin","comment":"crew on the way"}"#,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["alarm"]["state"], "acked");
    assert_eq!(v["events"][0]["user"], "admin");
    let (status, v) = post(&format!("{base}/api/v1/alarms/{id}/ack"), r#"{}"#);
    assert_eq!(status, 409, "a second ack is refused: {v}");
    let (status, v) = post(
        &format!("{base}/api/v1/alarms/XM-0004/intrusion@room/shelve"),
        r#"{"reason":"police on site","for":"1h"}"#,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["alarm"]["state"], "shelved");
    let (status, v) = post(
        &format!("{base}/api/v1/alarms/XM-0004/intrusion@room/unshelve"),
        r#"{}"#,
    );
    assert_eq!(status, 200, "{v}");
    let (status, _) = post(
        &format!("{base}/api/v1/alarms/XM-0004/intrusion@room/shelve"),
        r#"{"reason":"no end"}"#,
    );
    assert_eq!(status, 400, "a shelve needs an expiry");
    let (status, v) = post(&format!("{base}/api/v1/alarms/XM-0099/x@room/ack"), r#"{}"#);
    assert_eq!(status, 404, "{v}");

    // Hot reload: a broken file is rejected with its position and the previous version runs.
    std::fs::write(
        rules.join("smoke.rhai"),
        "//! id = \"smoke\"\n//! applies_to = \"room\"\n//! severity = \"P1\"\n\
         //! message = \"Smoke\"\n//! inputs = [\"smoke\"]\nsmoke &&& 1\n",
    )
    .unwrap();
    wait_for("the broken rule rejected", Duration::from_secs(20), || {
        (metric(&base, "cistern_rules_reloads_total{result=\"rejected\"}") >= 1.0).then_some(())
    });
    let (status, smoke) = get(&format!("{base}/api/v1/rules/smoke"));
    assert_eq!(status, 200, "the previous smoke rule stays in service");
    assert_eq!(smoke["meta"]["severity"], "P1");
    assert_eq!(smoke["message_zh"], "泵房 {room} 烟感报警", "{smoke}");
    assert_eq!(smoke["description_zh"], "烟感报警。自保持。", "{smoke}");
    let (_, list) = get(&format!("{base}/api/v1/rules"));
    for r in list["rules"].as_array().unwrap() {
        let zh = r["description_zh"].as_str().unwrap_or_default();
        assert!(zh.chars().any(|c| c > '\u{2e80}'), "{r}");
        assert_eq!(r["message_zh"], r["meta"]["message_zh"], "{r}");
    }
    // The demo's output reaches its log file through a pipe: the line may trail the metric.
    wait_for(
        "file:line:column in the log",
        Duration::from_secs(10),
        || demo.log().contains("smoke.rhai:6:").then_some(()),
    );
    // Upload through the API: refused with diagnostics when broken, in force when good.
    let put =
        |body: &str| crate::support::put(&format!("{base}/api/v1/rules/door_held_open"), body);
    let (status, v) = put("//! id = \"door_held_open\"\nnot a header\n");
    assert_eq!(status, 422, "{v}");
    assert!(v["diagnostics"][0]["line"].as_u64().is_some(), "{v}");
    let src = std::fs::read_to_string(rules.join("door_held_open.rhai"))
        .unwrap()
        .replace("severity = \"P4\"", "severity = \"P3\"");
    let (status, v) = put(&src);
    assert_eq!(status, 200, "{v}");
    let (_, rule) = get(&format!("{base}/api/v1/rules/door_held_open"));
    assert_eq!(rule["meta"]["severity"], "P3");
    // A rule of one's own without Chinese texts: the English ones stand in.
    let src = src
        .lines()
        .filter(|l| !l.contains("_zh = "))
        .collect::<Vec<_>>()
        .join("\n");
    let (status, v) = put(&src);
    assert_eq!(status, 200, "{v}");
    let (_, rule) = get(&format!("{base}/api/v1/rules/door_held_open"));
    assert_eq!(rule["message_zh"], rule["meta"]["message"], "{rule}");
    assert_eq!(
        rule["description_zh"], rule["meta"]["description"],
        "{rule}"
    );
    assert!(rule["meta"].get("message_zh").is_none(), "{rule}");
    drop(demo);
}

/// Publishes one record of `device` with the named values (the others left out).
fn publish(client: &Client, device: &str, values: &[(&str, f64)]) {
    let device: DeviceId = device.parse().unwrap();
    let kind = device.unit.kind();
    let mut v = vec![f64::NAN; kind.points().len()];
    for (name, x) in values {
        v[kind.point_index(name).unwrap()] = *x;
    }
    let payload = telemetry::encode(kind, &[(Timestamp::now(), &v)], false);
    client
        .publish(telemetry::topic(&device), QoS::AtLeastOnce, false, payload)
        .unwrap();
}

#[test]
fn kill_9_keeps_active_alarms_and_running_delays() {
    let broker = Mosquitto::start("mosquitto-alarms");
    let rules = library_copy("kill-rules", &[("pump_fault", "30s")]);
    let config = run_site(
        "alarm-kill",
        &sim::generate_fleet(2, 5),
        &broker,
        &format!(
            "[store]\ndata_dir = \"data\"\n[rules]\ndir = \"{}\"\n",
            rules.display()
        ),
    );
    let mut node = Cistern::run("alarm-kill", &config).start();
    let base = node.http().to_owned();

    // The gateway of XM-0001, publishing every second from a thread: mains on, P2 tripped
    // from the start, P1 tripped 15 s later.
    let mut opts = MqttOptions::new("alarm-gateway", "127.0.0.1", broker.addr.port());
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(opts, 100);
    std::thread::spawn(move || for _ in connection.iter() {});
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let start = std::time::Instant::now();
    let gateway = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let p1_trip = start.elapsed() >= Duration::from_secs(15);
                publish(
                    &client,
                    "XM-0001",
                    &[
                        ("mains", 1.0),
                        ("voltage_a", 380.0),
                        ("voltage_b", 380.0),
                        ("voltage_c", 380.0),
                    ],
                );
                publish(&client, "XM-0001/P2", &[("fault", 1.0), ("running", 0.0)]);
                publish(
                    &client,
                    "XM-0001/P1",
                    &[("fault", f64::from(u8::from(p1_trip))), ("running", 1.0)],
                );
                std::thread::park_timeout(Duration::from_secs(1));
            }
        })
    };

    let url = |base: &str, key: &str| format!("{base}/api/v1/alarms/XM-0001/{key}");
    wait_for("P2's alarm raised", Duration::from_secs(60), || {
        let (_, v) = get(&url(&base, "pump_fault@P2"));
        (v["alarm"]["state"] == "unacked").then_some(())
    });
    let (status, v) = post(
        &format!("{}/ack", url(&base, "pump_fault@P2")),
        r#"{"comment":"seen"}"#,
    );
    assert_eq!(status, 200, "{v}");
    // P1's 30 s delay is running.
    let pending = wait_for("P1's delay running", Duration::from_secs(30), || {
        let (_, v) = get(&url(&base, "pump_fault@P1"));
        v["alarm"]["pending_on"]["due"].as_i64()
    });
    // 5 s into the delay (its state written within 250 ms), SIGKILL.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        std::thread::park_timeout(left);
    }
    node.kill9();

    node.restart();
    let base = node.http().to_owned();
    let (_, p2) = get(&url(&base, "pump_fault@P2"));
    assert_eq!(
        p2["alarm"]["state"],
        "acked",
        "the active alarm and its ack survive: {p2}\n{}",
        node.log_tail()
    );
    let p1 = wait_for("P1 raised", Duration::from_secs(60), || {
        let (_, v) = get(&url(&base, "pump_fault@P1"));
        (v["alarm"]["state"] == "unacked").then_some(v)
    });
    assert_eq!(
        p1["alarm"]["raised_at"].as_i64(),
        Some(pending),
        "raised at the due time set before the kill: the delay did not start over"
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    gateway.join().unwrap();
}

/// The snapshot of one WebSocket subscription, as the admin (`topic` with `filter`).
fn ws_snapshot(http: &str, topic: &str, filter: Value) -> Value {
    let addr = http.trim_start_matches("http://");
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).unwrap();
    let send = |ws: &mut tungstenite::WebSocket<std::net::TcpStream>, v: Value| {
        ws.send(tungstenite::Message::Text(v.to_string())).unwrap();
    };
    let token = crate::support::admin_token(http, false);
    send(
        &mut ws,
        serde_json::json!({"type": "auth", "token": token, "resume": null}),
    );
    send(
        &mut ws,
        serde_json::json!({"type": "subscribe", "id": "s", "topic": topic, "filter": filter}),
    );
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let tungstenite::Message::Text(t) = ws.read().unwrap() {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "snapshot" && v["id"] == "s" {
                return v["data"].clone();
            }
        }
    }
    panic!("no {topic} snapshot within 20 s");
}

/// The value of a metric line whose name is `name` and whose labels include every one of
/// `labels` (`severity="P1"`).
fn metric_with(base: &str, name: &str, labels: &[&str]) -> f64 {
    crate::support::get_text(&format!("{base}/metrics"))
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn kill_9_keeps_a_standing_latched_alarm_on_the_board() {
    let broker = Mosquitto::start("mosquitto-board");
    let rules = library_copy("board-rules", &[]);
    let fleet = sim::generate_fleet(2, 5);
    let zone = fleet.rooms[0].zone.to_string();
    let config = run_site(
        "alarm-board",
        &fleet,
        &broker,
        &format!(
            "[store]\ndata_dir = \"data\"\n[rules]\ndir = \"{}\"\n",
            rules.display()
        ),
    );
    let mut node = Cistern::run("alarm-board", &config).start();
    let base = node.http().to_owned();

    // The gateway of XM-0001 reports smoke every second, before and after the kill.
    let mut opts = MqttOptions::new("board-gateway", "127.0.0.1", broker.addr.port());
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(opts, 100);
    std::thread::spawn(move || for _ in connection.iter() {});
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gateway = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                publish(
                    &client,
                    "XM-0001",
                    &[
                        ("mains", 1.0),
                        ("voltage_a", 380.0),
                        ("voltage_b", 380.0),
                        ("voltage_c", 380.0),
                        ("smoke", 1.0),
                    ],
                );
                std::thread::park_timeout(Duration::from_secs(1));
            }
        })
    };
    let id = "XM-0001/smoke@room";
    wait_for("smoke raised", Duration::from_secs(60), || {
        alarms(&base).contains_key(id).then_some(())
    });
    // The alarm state is written behind within 250 ms; leave it a margin, then SIGKILL.
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        std::thread::park_timeout(left);
    }
    node.kill9();
    node.restart();
    let base = node.http().to_owned();
    let (_, one) = get(&format!("{base}/api/v1/alarms/{id}"));
    assert_eq!(one["alarm"]["state"], "unacked", "{one}");
    let listed = wait_for("the standing alarm listed", Duration::from_secs(20), || {
        alarms(&base).remove(id)
    });
    assert_eq!(listed["state"], "unacked", "{listed}\n{}", node.log_tail());
    assert_eq!(listed["severity"], "P1");
    assert_eq!(
        metric_with(
            &base,
            "cistern_alarm_active",
            &["severity=\"P1\"", "state=\"unacked\""]
        ),
        1.0,
        "cistern_alarm_active counts it"
    );
    assert_eq!(
        metric_with(
            &base,
            "cistern_fleet_alarms_active",
            &[&format!("zone=\"{zone}\""), "severity=\"P1\""]
        ),
        1.0,
        "the zone's standing alarms count it"
    );
    let snap = ws_snapshot(&base, "alarms", serde_json::json!({}));
    let ids: Vec<&str> = (snap["alarms"].as_array().unwrap().iter())
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert!(ids.contains(&id), "WebSocket alarms snapshot: {snap}");
    let fleet = ws_snapshot(&base, "fleet", serde_json::json!({"rooms": true}));
    let z = (fleet["zones"].as_array().unwrap().iter())
        .find(|z| z["zone"] == zone.as_str())
        .unwrap();
    assert_eq!(z["alarms"]["P1"], 1, "zone counts: {fleet}");
    let mark = (fleet["rooms"].as_array().unwrap().iter())
        .find(|r| r["room"] == "XM-0001")
        .unwrap();
    assert_eq!(mark["worst"], "P1", "the room's map colour: {fleet}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    gateway.join().unwrap();
    drop(node);
}
