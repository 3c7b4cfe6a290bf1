//! The WebSocket push API end to end: `cistern demo` and real WebSocket clients (tungstenite)
//! over real sockets. Every frame the server sends is validated against
//! schemas/json/ws/server.schema.json.
//!
//! - snapshot then ordered deltas on every topic (the room snapshot is the REST RoomView, tank
//!   plans included), a fault's alarm and its events, an ack over the socket (audited, seen on
//!   the events stream), an operator's set-point write (read back, audited, polled back);
//! - reconnect and resume: missed deltas replayed, or a resync snapshot when the gap is too old
//!   or the session unknown;
//! - a deliberately slow client gets conflated updates with an unbroken sequence while a fast
//!   one on the same subscriptions is unaffected;
//! - bad tokens, a viewer's ack and set-point, malformed JSON, unknown topics, oversized frames: clear errors,
//!   and the server goes on serving everyone.

use crate::support::{admin_token, get, metric, post, token_for, wait_for, Cistern, Node};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

const SERVER_SCHEMA: &str = include_str!("../../schemas/json/ws/server.schema.json");

/// The server schema, compiled once.
pub(crate) fn schema() -> &'static (boon::Schemas, boon::SchemaIndex) {
    static S: std::sync::OnceLock<(boon::Schemas, boon::SchemaIndex)> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let v: Value = serde_json::from_str(SERVER_SCHEMA).unwrap();
        let id = v["$id"].as_str().unwrap().to_owned();
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.add_resource(&id, v).unwrap();
        let idx = compiler.compile(&id, &mut schemas).unwrap();
        (schemas, idx)
    })
}

/// What a read gave.
#[derive(Debug)]
pub(crate) enum Got {
    Frame(Value),
    Closed(Option<(u16, String)>),
}

/// A WebSocket client.
pub(crate) struct Ws {
    pub(crate) ws: WebSocket<TcpStream>,
}

impl Ws {
    /// Connects to `{http}/ws`; `rcvbuf` shrinks the socket's receive buffer (a slow client
    /// whose backlog stays in the server's queue, not in the kernel).
    pub(crate) fn connect(http: &str, rcvbuf: Option<usize>) -> Self {
        let addr = http.trim_start_matches("http://");
        let stream = match rcvbuf {
            None => TcpStream::connect(addr).unwrap(),
            Some(n) => {
                let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .unwrap();
                sock.set_recv_buffer_size(n).unwrap();
                sock.connect(&addr.parse::<std::net::SocketAddr>().unwrap().into())
                    .unwrap();
                sock.into()
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (ws, _) = tungstenite::client(format!("ws://{addr}/ws"), stream).unwrap();
        Self { ws }
    }

    /// Connects and authenticates; returns the client and its `auth_ok`.
    pub(crate) fn login(http: &str, token: &str, resume: Option<&str>) -> (Self, Value) {
        let mut ws = Self::connect(http, None);
        ws.send(json!({"type": "auth", "token": token, "resume": resume}));
        let ok = ws.frame();
        assert_eq!(ok["type"], "auth_ok", "{ok}");
        (ws, ok)
    }

    pub(crate) fn send(&mut self, v: Value) {
        self.ws.send(Message::Text(v.to_string())).unwrap();
    }

    fn send_text(&mut self, t: String) {
        self.ws.send(Message::Text(t)).unwrap();
    }

    pub(crate) fn read(&mut self) -> Got {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    let (schemas, idx) = schema();
                    if let Err(e) = schemas.validate(&v, *idx) {
                        panic!("server frame does not validate: {e:#}\n{t}");
                    }
                    return Got::Frame(v);
                }
                Ok(Message::Close(c)) => {
                    return Got::Closed(c.map(|c| (u16::from(c.code), c.reason.to_string())))
                }
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Got::Closed(None)
                }
                Err(tungstenite::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::ConnectionReset =>
                {
                    return Got::Closed(None)
                }
                Err(e) => panic!("websocket read: {e}"),
            }
        }
    }

    pub(crate) fn frame(&mut self) -> Value {
        match self.read() {
            Got::Frame(v) => v,
            Got::Closed(c) => panic!("closed unexpectedly: {c:?}"),
        }
    }

    /// Reads until a frame satisfies `pred` (within `deadline`), checking every subscription's
    /// sequence on the way.
    fn until(
        &mut self,
        seqs: &mut Seqs,
        deadline: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        // The last frames passed over, to say what came instead.
        let mut skipped: VecDeque<String> = VecDeque::new();
        loop {
            assert!(
                start.elapsed() < deadline,
                "no matching frame within {deadline:?}; the last frames were:\n{}",
                Vec::from(skipped).join("\n")
            );
            let f = self.frame();
            seqs.check(&f);
            if pred(&f) {
                return f;
            }
            if skipped.len() == 20 {
                skipped.pop_front();
            }
            let mut text = f.to_string();
            text.truncate(400);
            skipped.push_back(text);
        }
    }

    /// Reads (checking sequences) until `done` holds for the frames read so far, which it
    /// returns: for frames of different subscriptions, or a command's answer and its effects,
    /// whose relative order the protocol does not fix.
    fn gather(
        &mut self,
        seqs: &mut Seqs,
        deadline: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let start = Instant::now();
        let mut got = Vec::new();
        while !done(&got) {
            assert!(
                start.elapsed() < deadline,
                "not everything came within {deadline:?}; the last frames were:\n{}",
                (got.iter().rev().take(20).rev())
                    .map(|f: &Value| {
                        let mut t = f.to_string();
                        t.truncate(400);
                        t
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            let f = self.frame();
            seqs.check(&f);
            got.push(f);
        }
        got
    }

    fn subscribe(&mut self, id: &str, topic: &str, filter: Value) {
        self.send(json!({"type": "subscribe", "id": id, "topic": topic, "filter": filter}));
    }
}

/// Checks that each subscription's `seq` goes up by exactly one.
#[derive(Default)]
struct Seqs {
    last: HashMap<String, u64>,
    deltas: HashMap<String, u64>,
    conflated: HashMap<String, u64>,
}

impl Seqs {
    fn check(&mut self, f: &Value) {
        let id = || f["id"].as_str().unwrap().to_owned();
        match f["type"].as_str() {
            Some("snapshot") => {
                let seq = f["seq"].as_u64().unwrap();
                if let Some(prev) = self.last.get(&id()) {
                    assert!(
                        seq == prev + 1 || (seq == 0 && f["resync"] == true),
                        "snapshot seq {seq} after {prev}: {f}"
                    );
                }
                self.last.insert(id(), seq);
            }
            Some("delta") => {
                let seq = f["seq"].as_u64().unwrap();
                let prev = self.last.get(&id()).copied();
                assert_eq!(Some(seq), prev.map(|p| p + 1), "delta out of sequence: {f}");
                self.last.insert(id(), seq);
                *self.deltas.entry(id()).or_default() += 1;
                *self.conflated.entry(id()).or_default() += f["conflated"].as_u64().unwrap();
            }
            _ => {}
        }
    }

    fn total(map: &HashMap<String, u64>) -> u64 {
        map.values().sum()
    }
}

pub(crate) fn demo(name: &str, extra: &[&str]) -> (Node, String) {
    let node = Cistern::demo(&format!("ws-{name}")).args(extra).start();
    let http = node.http().to_owned();
    (node, http)
}

#[test]
fn snapshots_then_ordered_deltas_alarms_events_and_an_ack() {
    let (_proc, http) = demo("topics", &["--rooms", "6", "--speed", "5"]);
    let token = admin_token(&http, false);
    let (mut ws, ok) = Ws::login(&http, &token, None);
    assert_eq!(ok["user"], "admin");
    assert_eq!(ok["role"], "admin");
    assert_eq!(ok["resumed"], false);
    let mut seqs = Seqs::default();

    ws.subscribe("fleet", "fleet", json!({"rooms": true}));
    let snap = ws.until(&mut seqs, Duration::from_secs(10), |f| f["id"] == "fleet");
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["seq"], 0);
    assert_eq!(snap["data"]["rooms"].as_array().unwrap().len(), 6);
    let rooms: u64 = (snap["data"]["zones"].as_array().unwrap().iter())
        .map(|z| z["rooms"].as_u64().unwrap())
        .sum();
    assert_eq!(rooms, 6);

    // The room snapshot is the REST RoomView, tank plans and nameplate included (XM-0001 is
    // a Modbus room with planned tanks in the demo).
    let tanks_of = |v: &Value| -> Vec<String> {
        let mut t: Vec<String> = (v["tank_plans"].as_array().unwrap().iter())
            .map(|p| p["tank"].as_str().unwrap().to_owned())
            .collect();
        t.sort();
        t
    };
    let rest = wait_for(
        "XM-0001's tanks on the plan board",
        Duration::from_secs(30),
        || {
            let (status, v) = get(&format!("{http}/api/v1/rooms/XM-0001"));
            assert_eq!(status, 200, "{v}");
            (!v["tank_plans"].as_array()?.is_empty()).then_some(v)
        },
    );
    ws.subscribe("room", "room", json!({"room": "XM-0001"}));
    let snap = ws.until(&mut seqs, Duration::from_secs(10), |f| f["id"] == "room");
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["data"]["id"], "XM-0001");
    assert!(!snap["data"]["pumps"].as_array().unwrap().is_empty());
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&snap["data"]), keys(&rest));
    assert_eq!(snap["data"]["spec"], rest["spec"]);
    assert!(!snap["data"]["spec"]["tanks"].as_array().unwrap().is_empty());
    assert_eq!(tanks_of(&snap["data"]), tanks_of(&rest));
    assert!(tanks_of(&rest).iter().all(|t| t.starts_with("XM-0001/")));

    ws.subscribe(
        "pts",
        "points",
        json!({"points": ["XM-0001/T1.level", "XM-0001.outlet_pressure"]}),
    );
    let snap = ws.until(&mut seqs, Duration::from_secs(10), |f| f["id"] == "pts");
    assert_eq!(snap["data"]["points"].as_array().unwrap().len(), 2);
    ws.subscribe("alarms", "alarms", json!({}));
    ws.until(&mut seqs, Duration::from_secs(10), |f| f["id"] == "alarms");
    ws.subscribe("log", "events", json!({}));
    ws.until(&mut seqs, Duration::from_secs(10), |f| f["id"] == "log");

    // Live data flows, in sequence, on the room and points subscriptions.
    for id in ["room", "pts"] {
        for _ in 0..3 {
            ws.until(&mut seqs, Duration::from_secs(30), |f| {
                f["type"] == "delta" && f["id"] == id
            });
        }
    }

    // A fault raises an alarm: it appears on the alarm list and on the events stream.
    let (status, v) = post(
        &format!("{http}/api/v1/sim/faults"),
        r#"{"room":"XM-0001","fault":"pump_trip","seconds":900}"#,
    );
    assert_eq!(status, 202, "{v}");
    // The alarm's upsert and its `raised` event are on two subscriptions, in either order.
    let upsert = |f: &Value| {
        f["id"] == "alarms"
            && f["data"]["kind"] == "upsert"
            && f["data"]["alarm"]["rule"] == "pump_fault"
    };
    let raised = |f: &Value, alarm: &Value| {
        f["id"] == "log"
            && f["data"]["kind"] == "alarm"
            && f["data"]["event"]["kind"] == "raised"
            && &f["data"]["alarm_id"] == alarm
    };
    let got = ws.gather(&mut seqs, Duration::from_secs(60), |got| {
        (got.iter().filter(|f| upsert(f)))
            .any(|u| got.iter().any(|f| raised(f, &u["data"]["alarm"]["id"])))
    });
    let up = (got.iter().filter(|f| upsert(f)))
        .find(|u| got.iter().any(|f| raised(f, &u["data"]["alarm"]["id"])))
        .unwrap();
    let alarm_id = up["data"]["alarm"]["id"].as_str().unwrap().to_owned();

    // Acknowledged over the socket: the answer, the alarm's new state, and the audit entry —
    // the answer is not promised to come before its effects on the subscriptions.
    ws.send(
        json!({"type": "command", "id": "c1", "command": "ack", "alarm": alarm_id,
                   "comment": "seen from the socket test"}),
    );
    let answer = |f: &Value| f["id"] == "c1";
    let acked = |f: &Value| {
        f["id"] == "alarms"
            && f["data"]["kind"] == "upsert"
            && f["data"]["alarm"]["id"] == alarm_id.as_str()
            && f["data"]["alarm"]["state"] == "acked"
    };
    let audited = |f: &Value| {
        f["id"] == "log"
            && f["data"]["kind"] == "audit"
            && f["data"]["entry"]["action"] == "alarm_ack"
    };
    let got = ws.gather(&mut seqs, Duration::from_secs(20), |got| {
        got.iter().any(answer) && got.iter().any(acked) && got.iter().any(audited)
    });
    let result = got.iter().find(|f| answer(f)).unwrap();
    assert_eq!(result["type"], "result", "{result}");
    assert_eq!(result["data"]["alarm"]["state"], "acked");
    let audit = got.iter().find(|f| audited(f)).unwrap();
    assert_eq!(audit["data"]["entry"]["user"], "admin");
    assert_eq!(audit["data"]["entry"]["target"], alarm_id.as_str());
    assert_eq!(audit["data"]["entry"]["ok"], true);

    // An operator writes the room's outlet set-point over the socket: the answer holds the
    // controller's read-back, the write is audited (on the events stream and in the audit
    // log), and the polled point takes the new value.
    let (status, v) = post(
        &format!("{http}/api/v1/users"),
        r#"{"name":"otto","role":"operator","password":"otto-password-1"}"#,
    );
    assert!(status == 200 || status == 201, "{status} {v}");
    let operator = token_for(&http, "otto", "otto-password-1");
    let (mut op, ok) = Ws::login(&http, &operator, None);
    assert_eq!(ok["role"], "operator");
    let mut oseqs = Seqs::default();
    op.subscribe("audit", "events", json!({"kinds": ["audit"]}));
    op.until(&mut oseqs, Duration::from_secs(10), |f| f["id"] == "audit");
    op.subscribe(
        "sp",
        "points",
        json!({"points": ["XM-0001.outlet_setpoint"]}),
    );
    op.until(&mut oseqs, Duration::from_secs(10), |f| f["id"] == "sp");
    op.send(
        json!({"type": "command", "id": "c7", "command": "setpoint", "room": "XM-0001",
                   "writes": [{"point": "XM-0001.outlet_setpoint", "value": 0.42}]}),
    );
    let answer = |f: &Value| f["id"] == "c7";
    let audited = |f: &Value| {
        f["id"] == "audit"
            && f["data"]["entry"]["action"] == "setpoint_write"
            && f["data"]["entry"]["user"] == "otto"
    };
    let got = op.gather(&mut oseqs, Duration::from_secs(30), |got| {
        got.iter().any(answer) && got.iter().any(audited)
    });
    let result = got.iter().find(|f| answer(f)).unwrap();
    assert_eq!(result["type"], "result", "{result}");
    assert_eq!(result["data"]["room"], "XM-0001");
    let written = &result["data"]["written"][0];
    assert_eq!(written["point"], "XM-0001.outlet_setpoint");
    let read_back = written["read_back"].as_f64().unwrap();
    assert!((read_back - 0.42).abs() < 1e-6, "{result}");
    let audit = got.iter().find(|f| audited(f)).unwrap();
    assert_eq!(audit["data"]["entry"]["target"], "XM-0001.outlet_setpoint");
    assert_eq!(audit["data"]["entry"]["ok"], true);
    let entry = wait_for(
        "otto's write in the audit log",
        Duration::from_secs(10),
        || {
            let url = format!("{http}/api/v1/audit?user=otto&action=setpoint_write");
            let (status, log) = get(&url);
            assert_eq!(status, 200, "{log}");
            log["entries"].as_array()?.first().cloned()
        },
    );
    assert_eq!(entry["target"], "XM-0001.outlet_setpoint", "{entry}");
    op.until(&mut oseqs, Duration::from_secs(30), |f| {
        f["id"] == "sp"
            && f["type"] == "delta"
            && (f["data"]["point"]["value"].as_f64()).is_some_and(|v| (v - 0.42).abs() < 1e-3)
    });
    // Out of the profile's range: the REST code, and the socket goes on.
    op.send(
        json!({"type": "command", "id": "c8", "command": "setpoint", "room": "XM-0001",
                   "writes": [{"point": "XM-0001.outlet_setpoint", "value": 1.5}]}),
    );
    let err = op.until(&mut oseqs, Duration::from_secs(30), |f| f["id"] == "c8");
    assert_eq!(
        (err["type"].clone(), err["code"].clone()),
        ("error".into(), "out_of_range".into()),
        "{err}"
    );

    // Unsubscribe, ping.
    ws.send(json!({"type": "unsubscribe", "id": "room"}));
    ws.until(&mut seqs, Duration::from_secs(10), |f| {
        f["type"] == "unsubscribed"
    });
    ws.send(json!({"type": "ping", "id": "p1"}));
    let pong = ws.until(&mut seqs, Duration::from_secs(10), |f| f["type"] == "pong");
    assert_eq!(pong["id"], "p1");
    assert!(metric(&http, "cistern_ws_messages_total{direction=\"out\"}") > 10.0);
}

#[test]
fn a_reconnecting_client_gets_what_it_missed_or_a_flagged_resync() {
    // PROTOCOL.md §3-4: `seq` is given as a delta is sent, and a session keeps a ring of its
    // last `replay` sent deltas; while no socket is attached, updates wait in the session's
    // queue (conflated by key) and are sent, in sequence, after the resumed subscription's
    // replay. "Missed" is therefore what was sent but not processed (replayed exactly from
    // the ring) plus what changed meanwhile (delivered after it).
    let (_proc, http) = demo(
        "resume",
        &["--rooms", "3", "--speed", "5", "--ws-replay", "6"],
    );
    let token = admin_token(&http, false);
    let filter = json!({"points": ["XM-0001/T1.level"]});
    // An observer sees what the server produces meanwhile.
    let (mut observer, _) = Ws::login(&http, &token, None);
    observer.subscribe("o", "points", filter.clone());
    let mut oseqs = Seqs::default();
    observer.until(&mut oseqs, Duration::from_secs(10), |f| {
        f["type"] == "snapshot"
    });
    let point_t = |f: &Value| f["data"]["point"]["t"].as_u64().unwrap();
    let resubscribe = |ws: &mut Ws, since: u64| {
        ws.send(
            json!({"type": "subscribe", "id": "lvl", "topic": "points", "filter": filter,
                       "since": since}),
        );
    };

    let (mut ws, ok) = Ws::login(&http, &token, None);
    let session = ok["session"].as_str().unwrap().to_owned();
    let mut seqs = Seqs::default();
    ws.subscribe("lvl", "points", filter.clone());
    ws.until(&mut seqs, Duration::from_secs(10), |f| {
        f["type"] == "snapshot"
    });
    // Three deltas arrive, but the client processed only the first before it lost the socket.
    let seen: Vec<Value> = (0..3)
        .map(|_| ws.until(&mut seqs, Duration::from_secs(30), |f| f["type"] == "delta"))
        .collect();
    let since = seen[0]["seq"].as_u64().unwrap();
    drop(ws); // gone without a close

    // Two more changes happen while it is away (the observer may still be behind: changes
    // newer than the last one the client saw).
    let mut latest = point_t(&seen[2]);
    for _ in 0..2 {
        let d = observer.until(&mut oseqs, Duration::from_secs(30), |f| {
            f["type"] == "delta" && point_t(f) > latest
        });
        latest = point_t(&d);
    }
    let (mut ws, ok) = Ws::login(&http, &token, Some(&session));
    assert_eq!(ok["resumed"], true, "{ok}");
    assert_eq!(ok["session"], session.as_str());
    assert_eq!(ok["subscriptions"][0]["id"], "lvl");
    let held = ok["subscriptions"][0]["seq"].as_u64().unwrap();
    assert!(
        held >= since + 2,
        "the server sent at least the three deltas read: {ok}"
    );
    resubscribe(&mut ws, since);
    // The two unprocessed deltas again, exactly as first sent; no snapshot.
    let mut seqs = Seqs::default();
    seqs.last.insert("lvl".into(), since);
    for original in &seen[1..] {
        let replayed = ws.frame();
        seqs.check(&replayed);
        assert_eq!(&replayed, original, "a replay, exactly as first sent");
    }
    // Then, still in sequence, whatever else went out and what changed meanwhile, up to the
    // value the observer saw last.
    let caught_up = ws.until(&mut seqs, Duration::from_secs(30), |f| {
        f["type"] == "delta" && point_t(f) >= latest
    });
    assert!(caught_up["seq"].as_u64().unwrap() > since + 2);
    // The client processes one more delta, then reads past the ring (6 deltas) before it loses
    // the socket again: the gap after what it processed is too old to replay.
    let since = ws.until(&mut seqs, Duration::from_secs(30), |f| f["type"] == "delta")["seq"]
        .as_u64()
        .unwrap();
    for _ in 0..7 {
        ws.until(&mut seqs, Duration::from_secs(30), |f| f["type"] == "delta");
    }
    drop(ws);
    let (mut ws, ok) = Ws::login(&http, &token, Some(&session));
    assert_eq!(ok["resumed"], true);
    let held = ok["subscriptions"][0]["seq"].as_u64().unwrap();
    assert!(held >= since + 7, "{ok}");
    resubscribe(&mut ws, since);
    let snap = ws.frame();
    assert_eq!(snap["type"], "snapshot", "{snap}");
    assert_eq!(snap["resync"], true);
    assert_eq!(
        snap["seq"].as_u64(),
        Some(held + 1),
        "a held subscription's sequence goes on"
    );
    let mut seqs = Seqs::default();
    seqs.check(&snap);
    ws.until(&mut seqs, Duration::from_secs(30), |f| f["type"] == "delta");
    // Asking for more than was ever sent: a resync too.
    drop(ws);
    let (mut ws, ok) = Ws::login(&http, &token, Some(&session));
    let held = ok["subscriptions"][0]["seq"].as_u64().unwrap();
    resubscribe(&mut ws, held + 10);
    let snap = ws.frame();
    assert_eq!(
        (snap["type"].clone(), snap["resync"].clone()),
        ("snapshot".into(), true.into()),
        "{snap}"
    );
    drop(ws);

    // An unknown (expired) session: a new one, and a resync snapshot from 0.
    let (mut ws, ok) = Ws::login(&http, &token, Some("s-does-not-exist"));
    assert_eq!(ok["resumed"], false);
    assert_ne!(ok["session"], "s-does-not-exist");
    resubscribe(&mut ws, since);
    let snap = ws.frame();
    assert_eq!(
        (
            snap["type"].clone(),
            snap["resync"].clone(),
            snap["seq"].clone()
        ),
        ("snapshot".into(), true.into(), 0.into())
    );
}

#[test]
fn a_slow_client_gets_conflated_updates_while_a_fast_one_is_unaffected() {
    let (_proc, http) = demo("slow", &["--rooms", "12", "--speed", "10"]);
    let token = admin_token(&http, false);
    let rooms: Vec<String> = (1..=12).map(|i| format!("XM-{i:04}")).collect();
    let auth = json!({"type": "auth", "token": token}).to_string();

    let mut slow = Ws::connect(&http, Some(4096));
    slow.send_text(auth.clone());
    assert_eq!(slow.frame()["type"], "auth_ok");
    for r in &rooms {
        slow.subscribe(r, "room", json!({"room": r}));
    }
    let fast_http = http.clone();
    let fast_rooms = rooms.clone();
    let fast = std::thread::spawn(move || {
        let mut fast = Ws::connect(&fast_http, None);
        fast.send_text(auth);
        assert_eq!(fast.frame()["type"], "auth_ok");
        for r in &fast_rooms {
            fast.subscribe(r, "room", json!({"room": r}));
        }
        let mut seqs = Seqs::default();
        // Reads everything at once for as long as the slow client takes.
        while Seqs::total(&seqs.deltas) < 1500 {
            let f = fast.frame();
            seqs.check(&f);
        }
        seqs
    });
    // The slow client reads one frame every 20 ms.
    let mut seqs = Seqs::default();
    let start = Instant::now();
    while Seqs::total(&seqs.conflated) == 0 || Seqs::total(&seqs.deltas) < 100 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the slow client saw no conflation after {} deltas",
            Seqs::total(&seqs.deltas)
        );
        std::thread::park_timeout(Duration::from_millis(20));
        let f = slow.frame();
        seqs.check(&f);
    }
    let fast = fast.join().unwrap();
    let (slow_n, fast_n) = (Seqs::total(&seqs.deltas), Seqs::total(&fast.deltas));
    let (slow_c, fast_c) = (Seqs::total(&seqs.conflated), Seqs::total(&fast.conflated));
    eprintln!(
        "slow: {slow_n} deltas, {slow_c} conflated; fast: {fast_n} deltas, {fast_c} conflated"
    );
    assert!(slow_c > 0);
    // The fast client kept receiving: far more deltas, and (almost) nothing conflated.
    assert!(fast_n >= 1500);
    assert!(
        fast_c * 20 < fast_n,
        "the fast client was slowed: {fast_c} conflated of {fast_n}"
    );
    assert!(metric(&http, "cistern_ws_conflated_total") > 0.0);
}

#[test]
fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let (_proc, http) = demo("errors", &["--rooms", "3", "--speed", "5"]);
    let token = admin_token(&http, false);
    // A bystander watching a room must keep getting deltas through all of this.
    let (mut bystander, _) = Ws::login(&http, &token, None);
    bystander.subscribe("r", "room", json!({"room": "XM-0002"}));
    let mut bseqs = Seqs::default();
    bystander.until(&mut bseqs, Duration::from_secs(10), |f| {
        f["type"] == "snapshot"
    });

    // A bad token: unauthorized, then close 1008.
    let mut ws = Ws::connect(&http, None);
    ws.send(json!({"type": "auth", "token": "not-a-token"}));
    let err = ws.frame();
    assert_eq!(
        (err["type"].clone(), err["code"].clone()),
        ("error".into(), "unauthorized".into())
    );
    match ws.read() {
        Got::Closed(Some((code, _))) => assert_eq!(code, u16::from(CloseCode::Policy)),
        other => panic!("expected close 1008, got {other:?}"),
    }
    // Anything but auth first: the same.
    let mut ws = Ws::connect(&http, None);
    ws.send(json!({"type": "ping"}));
    assert_eq!(ws.frame()["code"], "unauthorized");

    // A viewer may watch but not acknowledge.
    let (status, v) = post(
        &format!("{http}/api/v1/users"),
        r#"{"name":"vera","role":"viewer","password":"vera-password-1"}"#,
    );
    assert!(status == 200 || status == 201, "{status} {v}");
    let viewer = token_for(&http, "vera", "vera-password-1");
    let (mut ws, ok) = Ws::login(&http, &viewer, None);
    assert_eq!(ok["role"], "viewer");
    ws.send(json!({"type": "command", "id": "c1", "command": "ack",
                   "alarm": "XM-0001/pump_fault@P1", "comment": "x"}));
    let err = ws.frame();
    assert_eq!(
        (err["id"].clone(), err["code"].clone()),
        ("c1".into(), "forbidden".into()),
        "{err}"
    );
    // Nor write a set-point: refused before anything reaches the field.
    ws.send(
        json!({"type": "command", "id": "c2", "command": "setpoint", "room": "XM-0001",
                   "writes": [{"point": "XM-0001.outlet_setpoint", "value": 0.42}]}),
    );
    let err = ws.frame();
    assert_eq!(
        (err["id"].clone(), err["code"].clone()),
        ("c2".into(), "forbidden".into()),
        "{err}"
    );
    let (status, log) = get(&format!("{http}/api/v1/audit?action=setpoint_write"));
    assert_eq!((status, &log["count"]), (200, &json!(0)), "{log}");

    // Malformed JSON, an unknown type, an unknown field, an unknown topic, a bad filter, a
    // duplicate id: errors, and the socket goes on.
    let mut seqs = Seqs::default();
    ws.send_text("{not json".into());
    assert_eq!(ws.frame()["code"], "bad_message");
    ws.send(json!({"type": "dance"}));
    assert_eq!(ws.frame()["code"], "bad_message");
    ws.send(json!({"type": "ping", "idd": "x"}));
    assert_eq!(ws.frame()["code"], "bad_message");
    ws.subscribe("w", "weather", json!({}));
    let err = ws.frame();
    assert_eq!(
        (err["id"].clone(), err["code"].clone()),
        ("w".into(), "unknown_topic".into())
    );
    ws.subscribe("x", "room", json!({"room": "XM-9999"}));
    assert_eq!(ws.frame()["code"], "bad_filter");
    ws.subscribe(
        "y",
        "points",
        json!({"points": ["XM-0001/P1.no_such_point"]}),
    );
    assert_eq!(ws.frame()["code"], "bad_filter");
    ws.subscribe("f", "fleet", json!({}));
    ws.until(&mut seqs, Duration::from_secs(10), |f| {
        f["type"] == "snapshot"
    });
    ws.subscribe("f", "fleet", json!({}));
    ws.until(&mut seqs, Duration::from_secs(10), |f| {
        f["code"] == "duplicate_id"
    });
    ws.send(json!({"type": "unsubscribe", "id": "nope"}));
    ws.until(&mut seqs, Duration::from_secs(10), |f| {
        f["code"] == "unknown_subscription"
    });
    ws.send(json!({"type": "ping", "id": "still-here"}));
    ws.until(&mut seqs, Duration::from_secs(10), |f| f["type"] == "pong");

    // An oversized frame: too_large, then close 1009.
    ws.send_text(format!(
        r#"{{"type":"ping","id":"{}"}}"#,
        "x".repeat(70_000)
    ));
    let end = loop {
        match ws.read() {
            Got::Frame(f) if f["code"] == "too_large" => continue,
            Got::Frame(f) => seqs.check(&f),
            closed @ Got::Closed(_) => break closed,
        }
    };
    match end {
        Got::Closed(Some((code, _))) => assert_eq!(code, u16::from(CloseCode::Size)),
        other => panic!("expected close 1009, got {other:?}"),
    }

    // The bystander never noticed.
    for _ in 0..3 {
        bystander.until(&mut bseqs, Duration::from_secs(30), |f| {
            f["type"] == "delta"
        });
    }
    assert!(metric(&http, "cistern_ws_disconnects_total{reason=\"auth\"}") >= 2.0);
    assert!(metric(&http, "cistern_ws_disconnects_total{reason=\"too_large\"}") >= 1.0);
}

/// POSTs as `token`: the JSON answer, which must be a success.
fn order_call(token: &str, url: &str, body: &str) -> Value {
    let (s, v) = crate::support::call_as(Some(token), "POST", url, Some(body));
    assert!((200..300).contains(&s), "{url}: {s} {v}");
    v
}

#[test]
fn the_workorders_topic_streams_orders_as_written_filtered_and_resyncs_a_lagging_client() {
    let (_proc, http) = demo("workorders", &["--rooms", "6", "--ws-replay", "2"]);
    let token = admin_token(&http, false);
    let create = |room: &str| {
        order_call(
            &token,
            &format!("{http}/api/v1/workorders"),
            &format!(r#"{{"template":"inspection","room":"{room}"}}"#),
        )["order"]
            .clone()
    };
    let (mut all, _) = Ws::login(&http, &token, None);
    let (mut one_room, _) = Ws::login(&http, &token, None);
    let (mut seqs, mut room_seqs) = (Seqs::default(), Seqs::default());
    all.subscribe("all", "workorders", json!({}));
    one_room.subscribe("r1", "workorders", json!({"room": "XM-0001"}));
    let snap = all.until(&mut seqs, Duration::from_secs(10), |f| {
        f["type"] == "snapshot"
    });
    assert_eq!(snap["topic"], "workorders");
    let before = snap["data"]["orders"].as_array().unwrap().len();
    one_room.until(&mut room_seqs, Duration::from_secs(10), |f| {
        f["type"] == "snapshot"
    });

    // Created (and dispatched by the roster in the same write), then accepted by its crew.
    let first = create("XM-0001");
    let id = first["id"].as_str().unwrap().to_owned();
    let crew = first["assignee"].as_str().unwrap().to_owned();
    let crew_token = token_for(&http, &crew, cistern::lab::crews::CREW_PASSWORD);
    let is = |f: &Value, id: &str, state: &str| {
        f["type"] == "delta"
            && f["key"] == id
            && f["data"]["kind"] == "order"
            && f["data"]["order"]["state"] == state
    };
    for ws in [(&mut all, &mut seqs), (&mut one_room, &mut room_seqs)] {
        let f =
            ws.0.until(ws.1, Duration::from_secs(10), |f| f["type"] == "delta");
        assert!(is(&f, &id, "dispatched"), "{f}");
    }
    order_call(
        &crew_token,
        &format!("{http}/api/v1/workorders/{id}/accept"),
        "{}",
    );
    for ws in [(&mut all, &mut seqs), (&mut one_room, &mut room_seqs)] {
        let f =
            ws.0.until(ws.1, Duration::from_secs(10), |f| f["type"] == "delta");
        assert!(is(&f, &id, "accepted"), "{f}");
        assert_eq!(f["data"]["order"]["transitions"][1]["by"], crew.as_str());
    }

    // Another room's order reaches the unfiltered subscription only: the room's next delta
    // is its own order's next step.
    let second = create("XM-0002");
    let id2 = second["id"].as_str().unwrap().to_owned();
    let f = all.until(&mut seqs, Duration::from_secs(10), |f| f["type"] == "delta");
    assert!(is(&f, &id2, "dispatched"), "{f}");
    order_call(
        &crew_token,
        &format!("{http}/api/v1/workorders/{id}/en_route"),
        "{}",
    );
    let f = one_room.until(&mut room_seqs, Duration::from_secs(10), |f| {
        f["type"] == "delta"
    });
    assert!(is(&f, &id, "en_route"), "the room's filter: {f}");

    // A client that read three deltas but processed none of them comes back past its replay
    // ring (2): it is told to resync, with a snapshot of the open orders.
    let (mut lagging, ok) = Ws::login(&http, &token, None);
    let session = ok["session"].as_str().unwrap().to_owned();
    let mut lag_seqs = Seqs::default();
    lagging.subscribe("lag", "workorders", json!({}));
    let snap = lagging.until(&mut lag_seqs, Duration::from_secs(10), |f| {
        f["type"] == "snapshot"
    });
    let since = snap["seq"].as_u64().unwrap();
    let third = create("XM-0003");
    let crew2 = token_for(
        &http,
        second["assignee"].as_str().unwrap(),
        cistern::lab::crews::CREW_PASSWORD,
    );
    order_call(
        &crew2,
        &format!("{http}/api/v1/workorders/{id2}/accept"),
        "{}",
    );
    order_call(
        &crew_token,
        &format!("{http}/api/v1/workorders/{id}/on_site"),
        "{}",
    );
    for _ in 0..3 {
        lagging.until(&mut lag_seqs, Duration::from_secs(10), |f| {
            f["type"] == "delta"
        });
    }
    drop(lagging);
    let (mut lagging, ok) = Ws::login(&http, &token, Some(&session));
    assert_eq!(ok["resumed"], true, "{ok}");
    lagging.send(
        json!({"type": "subscribe", "id": "lag", "topic": "workorders",
                        "filter": {}, "since": since}),
    );
    let snap = lagging.frame();
    assert_eq!(
        (snap["type"].as_str(), &snap["resync"]),
        (Some("snapshot"), &json!(true)),
        "{snap}"
    );
    let orders = snap["data"]["orders"].as_array().unwrap();
    assert_eq!(orders.len(), before + 3, "{snap}");
    let state_of = |id: &str| {
        orders
            .iter()
            .find(|o| o["id"] == id)
            .map(|o| o["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state_of(&id).as_deref(), Some("on_site"));
    assert_eq!(state_of(&id2).as_deref(), Some("accepted"));
    assert_eq!(
        state_of(third["id"].as_str().unwrap()).as_deref(),
        Some("dispatched")
    );
    // Newest first.
    assert_eq!(orders[0]["id"], third["id"]);
}
