//! The WebSocket API's conformance at the edges of the protocol (RFC 6455 and
//! schemas/json/ws/PROTOCOL.md), each a defect found in review (issue 18):
//!
//! - a client's Ping is answered with a Pong carrying its payload, before and after `auth`;
//!   and an independent peer, Python's `websockets` with its keep-alive, stays connected
//!   (tests/it/peers/ws_keepalive.py);
//! - the subscription limit holds however the subscribes are pipelined;
//! - resuming another user's session is `unauthorized` and close 1008, and does not touch it;
//! - a fragmented message over the size limit is `too_large` and close 1009, like a single
//!   frame.

use crate::support::{admin_token, post, token_for};
use crate::ws::{demo, Got, Ws};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::Message;

/// Reads until the Pong, skipping (and schema-checking) text frames; panics after `deadline`.
fn pong(ws: &mut Ws, deadline: Duration) -> Vec<u8> {
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < deadline, "no Pong within {deadline:?}");
        match ws.ws.read() {
            Ok(Message::Pong(p)) => return p,
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                let (schemas, idx) = crate::ws::schema();
                assert!(schemas.validate(&v, *idx).is_ok(), "invalid frame: {t}");
            }
            Ok(Message::Close(c)) => panic!("closed instead of a Pong: {c:?}"),
            Ok(_) => {}
            Err(e) => panic!("no Pong (the server never answers a client's Ping?): {e}"),
        }
    }
}

#[test]
fn a_client_ping_is_answered_with_a_pong_of_the_same_payload() {
    let (_proc, http) = demo("ping", &["--rooms", "2", "--speed", "5"]);
    let token = admin_token(&http, false);
    // Before authentication: a control frame, not a message, so no `unauthorized`.
    let mut ws = Ws::connect(&http, None);
    ws.ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    ws.ws.send(Message::Ping(b"before-auth".to_vec())).unwrap();
    assert_eq!(pong(&mut ws, Duration::from_secs(10)), b"before-auth");
    ws.send(json!({"type": "auth", "token": token}));
    assert_eq!(ws.frame()["type"], "auth_ok");
    // After it, with a subscription streaming.
    ws.send(json!({"type": "subscribe", "id": "f", "topic": "fleet", "filter": {"rooms": true}}));
    let payload = b"cistern-ping-\x00\x01\xfe-17".to_vec();
    ws.ws.send(Message::Ping(payload.clone())).unwrap();
    assert_eq!(pong(&mut ws, Duration::from_secs(10)), payload);
}

#[test]
fn python_websockets_keeps_its_connection_alive() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/peers/ws_keepalive.py"
    );
    let (proc, http) = demo("py-peer", &["--rooms", "2", "--speed", "5"]);
    let token = admin_token(&http, false);
    let url = format!("{}/ws", http.replacen("http://", "ws://", 1));
    let out = Command::new("python3")
        .args([script, &url, &token])
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for the independent-peer test: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the Python websockets peer failed ({}):\n{stderr}\n{stdout}\nserver log:\n{}",
        out.status,
        proc.log_tail()
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    eprintln!("python websockets peer: {report}");
    assert_eq!(report["user"], "admin");
}

#[test]
fn pipelined_subscribes_cannot_pass_the_subscription_limit() {
    let (_proc, http) = demo("sub-limit", &["--rooms", "2", "--speed", "5"]);
    let token = admin_token(&http, false);
    let (mut ws, ok) = Ws::login(&http, &token, None);
    let max = ok["limits"]["max_subscriptions"].as_u64().unwrap();
    assert_eq!(max, 64);
    // 200 subscribes in one burst, written before anything is read; and the same id twice.
    let n = 200;
    for i in 0..n {
        let sub = json!({"type": "subscribe", "id": format!("s{i}"), "topic": "fleet",
                         "filter": {}});
        ws.ws.write(Message::Text(sub.to_string())).unwrap();
    }
    ws.ws.flush().unwrap();
    let (mut snapshots, mut refused) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while snapshots.len() + refused.len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} snapshots and {} refusals of {n}",
            snapshots.len(),
            refused.len()
        );
        let f = ws.frame();
        match f["type"].as_str() {
            Some("snapshot") => snapshots.push(f["id"].as_str().unwrap().to_owned()),
            Some("error") => {
                assert_eq!(f["code"], "too_many_subscriptions", "{f}");
                refused.push(f["id"].as_str().unwrap().to_owned());
            }
            _ => {}
        }
    }
    assert_eq!(snapshots.len() as u64, max, "accepted: {snapshots:?}");
    // Messages are taken in order: the first `max` are the ones accepted.
    let mut accepted: Vec<usize> = (snapshots.iter())
        .map(|id| id[1..].parse().unwrap())
        .collect();
    accepted.sort_unstable();
    assert_eq!(accepted, (0..max as usize).collect::<Vec<_>>());
    // After an unsubscribe there is room for exactly one more, pipelined or not.
    ws.send(json!({"type": "unsubscribe", "id": "s0"}));
    for id in ["again-1", "again-2"] {
        ws.send(json!({"type": "subscribe", "id": id, "topic": "fleet", "filter": {}}));
    }
    let mut answers = Vec::new();
    while answers.len() < 3 {
        let f = ws.frame();
        if f["type"] != "delta" {
            answers.push((f["type"].clone(), f["id"].clone(), f["code"].clone()));
        }
    }
    answers.sort_by_key(|a| a.1.to_string());
    assert_eq!(
        answers,
        [
            ("snapshot".into(), "again-1".into(), Value::Null),
            (
                "error".into(),
                "again-2".into(),
                "too_many_subscriptions".into()
            ),
            ("unsubscribed".into(), "s0".into(), Value::Null),
        ]
    );
    // Two pipelined subscribes of one id: the second is a duplicate, not a replacement.
    ws.send(json!({"type": "unsubscribe", "id": "s1"}));
    ws.send(json!({"type": "unsubscribe", "id": "s2"}));
    for _ in 0..2 {
        ws.send(json!({"type": "subscribe", "id": "twice", "topic": "fleet", "filter": {}}));
    }
    let mut answers = Vec::new();
    while answers.len() < 4 {
        let f = ws.frame();
        if f["type"] != "delta" {
            answers.push(format!("{} {} {}", f["type"], f["id"], f["code"]));
        }
    }
    answers.sort();
    assert_eq!(
        answers,
        [
            r#""error" "twice" "duplicate_id""#,
            r#""snapshot" "twice" null"#,
            r#""unsubscribed" "s1" null"#,
            r#""unsubscribed" "s2" null"#,
        ]
    );
}

#[test]
fn resuming_another_users_session_is_refused_and_closed() {
    let (_proc, http) = demo("resume-other", &["--rooms", "2", "--speed", "5"]);
    let token = admin_token(&http, false);
    let (mut admin, ok) = Ws::login(&http, &token, None);
    let session = ok["session"].as_str().unwrap().to_owned();
    admin.send(json!({"type": "subscribe", "id": "f", "topic": "fleet", "filter": {}}));
    assert_eq!(admin.frame()["type"], "snapshot");
    drop(admin);

    let (status, v) = post(
        &format!("{http}/api/v1/users"),
        r#"{"name":"mallory","role":"viewer","password":"mallory-password-1"}"#,
    );
    assert!(status == 200 || status == 201, "{status} {v}");
    let other = token_for(&http, "mallory", "mallory-password-1");
    let mut ws = Ws::connect(&http, None);
    ws.send(json!({"type": "auth", "token": other, "resume": session}));
    let err = ws.frame();
    assert_eq!(
        (err["type"].clone(), err["code"].clone()),
        ("error".into(), "unauthorized".into()),
        "{err}"
    );
    match ws.read() {
        Got::Closed(Some((code, _))) => assert_eq!(code, u16::from(CloseCode::Policy)),
        other => panic!("expected close 1008, got {other:?}"),
    }
    // The session is untouched: its owner resumes it with its subscription.
    let (_admin, ok) = Ws::login(&http, &token, Some(&session));
    assert_eq!(ok["resumed"], true, "{ok}");
    assert_eq!(ok["subscriptions"][0]["id"], "f", "{ok}");
}

#[test]
fn a_fragmented_message_over_the_limit_closes_with_1009() {
    let (_proc, http) = demo("fragments", &["--rooms", "2", "--speed", "5"]);
    let token = admin_token(&http, false);
    let (mut ws, ok) = Ws::login(&http, &token, None);
    let max = ok["limits"]["max_message_bytes"].as_u64().unwrap() as usize;
    // A fragmented message under the limit is one message.
    let text = format!(r#"{{"type":"ping","id":"{}"}}"#, "y".repeat(max / 2));
    let (a, b) = text.as_bytes().split_at(text.len() / 2);
    ws.ws
        .write(Message::Frame(Frame::message(
            a.to_vec(),
            OpCode::Data(Data::Text),
            false,
        )))
        .unwrap();
    ws.ws
        .send(Message::Frame(Frame::message(
            b.to_vec(),
            OpCode::Data(Data::Continue),
            true,
        )))
        .unwrap();
    let f = ws.frame();
    assert_eq!(
        (f["type"].as_str(), f["id"].as_str().map(str::len)),
        (Some("pong"), Some(max / 2))
    );
    // Three fragments, each under the limit, together over it.
    let part = vec![b'x'; max / 2];
    for (i, op) in [Data::Text, Data::Continue, Data::Continue]
        .into_iter()
        .enumerate()
    {
        ws.ws
            .write(Message::Frame(Frame::message(
                part.clone(),
                OpCode::Data(op),
                i == 2,
            )))
            .unwrap();
    }
    ws.ws.flush().unwrap();
    let end = loop {
        match ws.read() {
            Got::Frame(f) if f["type"] == "error" => {
                assert_eq!(f["code"], "too_large", "{f}");
            }
            Got::Frame(f) => panic!("unexpected frame: {f}"),
            closed @ Got::Closed(_) => break closed,
        }
    };
    match end {
        Got::Closed(Some((code, _))) => assert_eq!(code, u16::from(CloseCode::Size)),
        other => panic!("expected close 1009, got {other:?}"),
    }
}
