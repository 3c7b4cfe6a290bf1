//! Every cluster node shows every room live, and a dashboard whose node dies resumes on
//! another with a flagged resync (issue 23 item 4): a real etcd, a real mosquitto, two `cistern
//! run` nodes in cluster mode and the simulated fleet publishing through the broker.
//!
//! - A WebSocket client on node A sees every room of the fleet online (node B's rooms through
//!   the live mirror over the broker), the live view of a room node B supervises (its first
//!   view fetched from B, then B's changes), and an alarm B raises for it.
//! - Node A is killed (SIGKILL). The same client connects to node B with the same token (one
//!   identity across the cluster) and its old session id, re-subscribes with `since`, and gets
//!   every subscription back as a snapshot flagged `resync` — never a silent gap — holding the
//!   whole fleet, B's alarm included; once A's rooms are re-homed on B, their changes flow
//!   again.

use crate::browser::Browser;
use crate::cluster_site::ClusterSite;
use crate::support::{token_for, wait_for, Cistern, IT_ADMIN_PASSWORD};
use crate::ws::Ws;
use cistern_actors::registry::shard_of;
use cistern_schemas::RoomId;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ROOMS: usize = 12;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What a client knows from its subscriptions: the fleet's room marks, the watched room's
/// newest sample time, the alarms, and each subscription's last `seq`.
#[derive(Default, Debug)]
struct Model {
    online: BTreeMap<String, bool>,
    room_data: Option<i64>,
    room_updates: usize,
    /// Sample time to arrival on this socket, ms, of each watched-room delta.
    latency_ms: Vec<i64>,
    alarms: BTreeSet<String>,
    seq: BTreeMap<String, u64>,
    resyncs: BTreeSet<String>,
    errors: Vec<String>,
}

impl Model {
    /// Applies one frame (checking each subscription's sequence).
    fn apply(&mut self, f: &Value) {
        let id = f["id"].as_str().unwrap_or_default().to_owned();
        match f["type"].as_str() {
            Some("snapshot") => {
                if f["resync"] == true {
                    self.resyncs.insert(id.clone());
                }
                self.seq.insert(id.clone(), f["seq"].as_u64().unwrap());
                let d = &f["data"];
                match f["topic"].as_str() {
                    Some("fleet") => {
                        self.online.clear();
                        for r in d["rooms"].as_array().unwrap() {
                            self.online.insert(
                                r["room"].as_str().unwrap().to_owned(),
                                r["status"] == "online",
                            );
                        }
                    }
                    Some("room") => self.room_data = d["last_data"].as_i64(),
                    Some("alarms") => {
                        self.alarms = (d["alarms"].as_array().unwrap().iter())
                            .map(|a| a["id"].as_str().unwrap().to_owned())
                            .collect();
                    }
                    _ => {}
                }
            }
            Some("error") => self.errors.push(f.to_string()),
            Some("delta") => {
                let seq = f["seq"].as_u64().unwrap();
                let last = self.seq.insert(id.clone(), seq);
                assert_eq!(last.map(|s| s + 1), Some(seq), "a gap in {id}: {f}");
                let d = &f["data"];
                match (id.as_str(), d["kind"].as_str()) {
                    ("fleet", Some("room")) => {
                        let r = &d["room"];
                        self.online.insert(
                            r["room"].as_str().unwrap().to_owned(),
                            r["status"] == "online",
                        );
                    }
                    ("room", _) => {
                        self.room_updates += 1;
                        if let Some(t) = newest(d) {
                            self.room_data = self.room_data.max(Some(t));
                            self.latency_ms.push(now_ms() - t);
                        }
                    }
                    ("alarms", Some("upsert")) => {
                        self.alarms
                            .insert(d["alarm"]["id"].as_str().unwrap().to_owned());
                    }
                    ("alarms", Some("remove")) => {
                        self.alarms.remove(d["alarm_id"].as_str().unwrap());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn all_online(&self) -> bool {
        self.online.len() == ROOMS && self.online.values().all(|o| *o)
    }
}

/// The newest point time in a room delta's data.
fn newest(d: &Value) -> Option<i64> {
    let points = d["room"]["points"]
        .as_array()
        .or_else(|| d["device"]["points"].as_array())?;
    points.iter().filter_map(|p| p["t"].as_i64()).max()
}

/// Reads frames into `model` until `done` holds (or panics after `deadline`, whether frames
/// come or not).
fn read_until(
    ws: &mut Ws,
    model: &mut Model,
    deadline: Duration,
    what: &str,
    done: impl Fn(&Model) -> bool,
) -> bool {
    let start = Instant::now();
    ws.ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while !done(model) {
        if start.elapsed() > deadline {
            return false;
        }
        match ws.ws.read() {
            Ok(tungstenite::Message::Text(t)) => model.apply(&serde_json::from_str(&t).unwrap()),
            Ok(tungstenite::Message::Close(c)) => panic!("closed while waiting for {what}: {c:?}"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("while waiting for {what}: {e}"),
        }
    }
    true
}

/// What the nodes say of the mirror (for a failure's message).
fn mirror_figures(nodes: &[crate::support::Node]) -> String {
    nodes
        .iter()
        .map(|n| {
            let text = crate::support::get_text(&n.url("/metrics"));
            text.lines()
                .filter(|l| l.starts_with("cistern_cluster_mirror"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// [`read_until`], or a failure naming what the nodes' mirrors did.
fn assert_read(
    nodes: &[crate::support::Node],
    ws: &mut Ws,
    model: &mut Model,
    deadline: Duration,
    what: &str,
    done: impl Fn(&Model) -> bool,
) {
    assert!(
        read_until(ws, model, deadline, what, done),
        "{what}: not within {deadline:?}; {model:?}\n{}",
        mirror_figures(nodes)
    );
}

fn subscribe(ws: &mut Ws, model: &Model, room: &str, with_since: bool) {
    for (id, topic, filter) in [
        ("fleet", "fleet", json!({"rooms": true})),
        ("room", "room", json!({"room": room})),
        ("alarms", "alarms", json!({})),
    ] {
        let mut msg = json!({"type": "subscribe", "id": id, "topic": topic, "filter": filter});
        if with_since {
            msg["since"] = json!(model.seq[id]);
        }
        ws.send(msg);
    }
}

#[test]
fn every_node_shows_every_room_and_a_dashboard_resumes_on_another_node() {
    let site = ClusterSite::start("live", ROOMS, &[]);
    let broker = &site.broker;
    let mut nodes: Vec<_> = ["node-a", "node-b"]
        .iter()
        .map(|id| site.node(id, None).start())
        .collect();
    let _sim = Cistern::simulate("cluster-live-sim", broker.addr)
        .rooms(ROOMS)
        .start();
    // Which node supervises which room, once every shard with rooms is active somewhere.
    let rooms: Vec<RoomId> = (1..=ROOMS)
        .map(|i| RoomId::new(&format!("XM-{i:04}")).unwrap())
        .collect();
    let owners: BTreeMap<RoomId, usize> = wait_for(
        "every room's shard active on one node",
        Duration::from_secs(60),
        || {
            let views: Vec<Value> = nodes.iter().map(|n| n.get("/api/v1/cluster").1).collect();
            // Both members, and the joining node's share moved to it (after `settle`).
            if views
                .iter()
                .any(|v| v["members"].as_array().map_or(0, Vec::len) != 2)
            {
                return None;
            }
            let mut owners = BTreeMap::new();
            for room in &rooms {
                let shard = u64::from(shard_of(room));
                let on: Vec<usize> = (0..nodes.len())
                    .filter(|i| {
                        views[*i]["shards"].as_array().is_some_and(|s| {
                            s.iter().any(|s| {
                                s["shard"].as_u64() == Some(shard) && s["state"] == "active"
                            })
                        })
                    })
                    .collect();
                if on.len() != 1 {
                    return None;
                }
                owners.insert(room.clone(), on[0]);
            }
            let spread = (0..nodes.len()).all(|i| owners.values().any(|n| *n == i));
            spread.then_some(owners)
        },
    );
    let on_b: Vec<&RoomId> = owners
        .iter()
        .filter(|(_, n)| **n == 1)
        .map(|(r, _)| r)
        .collect();
    let on_a: Vec<&RoomId> = owners
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(r, _)| r)
        .collect();
    let remote = on_b[0].to_string();
    eprintln!("owners: {owners:?}");

    // A dashboard on node A: the whole fleet, a room node B supervises, the alarms.
    let token = token_for(nodes[0].http(), "admin", IT_ADMIN_PASSWORD);
    let (mut ws, ok) = Ws::login(nodes[0].http(), &token, None);
    let session = ok["session"].as_str().unwrap().to_owned();
    let mut model = Model::default();
    subscribe(&mut ws, &model, &remote, false);
    assert_read(
        &nodes,
        &mut ws,
        &mut model,
        Duration::from_secs(30),
        "every room online on node A",
        |m| m.all_online(),
    );
    let first = model.room_data;
    assert_read(
        &nodes,
        &mut ws,
        &mut model,
        Duration::from_secs(30),
        "node B's room changing on node A",
        |m| m.room_updates >= 20 && m.room_data > first,
    );
    let mut lat = model.latency_ms.clone();
    lat.sort_unstable();
    eprintln!(
        "node B's room on node A's socket: {} deltas, sample time -> socket p50 {} ms, max {} ms",
        lat.len(),
        lat[lat.len() / 2],
        lat[lat.len() - 1]
    );
    // Node B raises an alarm for its room (an intrusion: the door open while armed,
    // latched): node A's dashboard shows it. Published every 500 ms until seen, since the
    // simulated gateway reports the room's own door and arming every 2 s too.
    let (client, mut connection) = rumqttc::Client::new(
        rumqttc::MqttOptions::new("intruder", "127.0.0.1", broker.addr.port()),
        64,
    );
    std::thread::spawn(move || for _ in connection.iter() {});
    let intrusion = format!("{remote}/intrusion");
    let seen = |m: &Model| m.alarms.iter().any(|a| a.starts_with(&intrusion));
    let start = Instant::now();
    while !seen(&model) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "node B's intrusion alarm never reached node A's socket: {model:?}\n{}",
            mirror_figures(&nodes)
        );
        let body = json!({"records": [{"t": now_ms(), "v": {"door": true, "armed": true}}]});
        client
            .publish(
                format!("cistern/v1/telemetry/{remote}/room"),
                rumqttc::QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .unwrap();
        read_until(
            &mut ws,
            &mut model,
            Duration::from_millis(500),
            "the intrusion",
            seen,
        );
    }

    // The web console on node A too (zh-CN, on a phone: 390×844), live.
    let browser = Browser::start_sized("cluster-live-browser", 390, 844);
    browser.sign_in(nodes[0].http(), "zh-CN");
    browser.until(
        "the console's live link on node A",
        Duration::from_secs(30),
        "return document.getElementById('link-state').textContent === '实时' || null;",
    );

    // Node A dies; the dashboard resumes on node B.
    let mut a = nodes.remove(0);
    a.kill9();
    let killed = Instant::now();
    // The socket ends with its node (a reset: no closing handshake from a dead process).
    while let Ok(m) = ws.ws.read() {
        if m.is_close() {
            break;
        }
    }
    // The console reconnects through node B by itself and says so.
    let banner = browser.until(
        "the console live again through node B, saying its views were resynchronised",
        Duration::from_secs(60),
        "const b = document.getElementById('link-banner'); \
         const s = document.getElementById('link-state').textContent; \
         return (s.includes('node-b') && !b.hidden && b.classList.contains('resynced')) \
           ? b.textContent : null;",
    );
    let banner = banner.as_str().unwrap_or_default().to_owned();
    assert!(
        banner.contains("node-b") && banner.contains("重新同步"),
        "the banner names the node and the resync, in Chinese: {banner}"
    );
    assert!(
        browser.missing_keys().is_empty(),
        "{:?}",
        browser.missing_keys()
    );
    // On the phone, the banner and the badge are on screen and nothing scrolls sideways.
    let placed = browser.js(
        "const w = window.innerWidth; \
         return ['link-banner', 'link-state'].map(id => { \
           const r = document.getElementById(id).getBoundingClientRect(); \
           return r.width > 0 && r.left >= 0 && r.right <= w + 1 && r.top >= 0 \
             && r.top < window.innerHeight; });",
        serde_json::json!([]),
    );
    assert_eq!(
        placed,
        serde_json::json!([true, true]),
        "banner and badge on a 390-pixel screen"
    );
    assert!(
        browser.overflowing().is_empty(),
        "{:?}",
        browser.overflowing()
    );
    let (mut ws, ok) = Ws::login(nodes[0].http(), &token, Some(&session));
    assert_eq!(
        ok["resumed"], false,
        "node B cannot hold node A's session: {ok}"
    );
    model.resyncs.clear();
    subscribe(&mut ws, &model, &remote, true);
    assert_read(
        &nodes,
        &mut ws,
        &mut model,
        Duration::from_secs(10),
        "three resync snapshots",
        |m| m.resyncs.len() == 3,
    );
    assert_eq!(
        model.online.len(),
        ROOMS,
        "the resync holds the whole fleet: {model:?}"
    );
    assert!(seen(&model), "node B's alarm is in the resync: {model:?}");
    // Node A's rooms come back online on node B, by its own supervision.
    assert_read(
        &nodes,
        &mut ws,
        &mut model,
        Duration::from_secs(30),
        "node A's rooms online again on node B",
        |m| {
            m.all_online()
                && on_a
                    .iter()
                    .all(|r| nodes[0].get(&format!("/api/v1/rooms/{r}")).0 == 200)
        },
    );
    eprintln!(
        "node A killed -> its rooms online on node B's socket: {:?}",
        killed.elapsed()
    );
}
