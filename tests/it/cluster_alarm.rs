//! A running alarm delay continues on the node that takes its room over (issue 23), with the
//! nodes' wall clocks 4 s apart: two `cistern run` nodes in a cluster (a real etcd, a real
//! mosquitto), the room's owner running 2 s ahead and the other node 2 s behind (libfaketime,
//! the monotonic clock left alone), one room whose door is held open while disarmed
//! (`door_held_open`, its on-delay shortened to 30 s in a copy of the library). The owner is
//! killed (SIGKILL) while the delay runs; the other node takes the shard over from its
//! checkpoint and raises the alarm stamped at the due time set before the kill, not a whole
//! delay after the takeover.
//!
//! The delay's start is the owner's wall clock when it evaluated the first door sample, and
//! its due time (the raise's stamp) that start + 30 s, an absolute time kept in the
//! checkpoint; the new owner fires it when *its* clock reaches it. So the stamp is first door
//! sample + 30 s + the owner's offset (+2 s) + the publish → evaluation latency, whoever raises
//! it and whenever the takeover happened. The check does not depend on how fast the takeover
//! was, and it fails if libfaketime did not skew the owner (2 s early) or if the new owner
//! restarted the delay (≥ 10 s late).

use crate::cluster_site::ClusterSite;
use crate::support::wait_for;
use cistern::cluster::assign::{desired_owner, Candidate};
use cistern::lab::failover::{faketime_offset, forget_faketime, LIBFAKETIME};
use cistern_actors::registry::shard_of;
use cistern_schemas::RoomId;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DELAY_MS: i64 = 30_000;

/// The owner's wall clock runs this far ahead, the other node's this far behind.
const SKEW_MS: i64 = 2_000;

/// How far the raise's stamp, less the owner's offset, may be from first door sample + delay:
/// the publish → evaluation latency (loopback MQTT, the room's 20 ms coalescing, a debug build
/// on a busy 2-core machine: tens to hundreds of ms; the shard's session is known to deliver
/// before the door opens). Half the skew, so that an unskewed owner is caught.
const TOLERANCE_MS: i64 = 1_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The rule library with `door_held_open`'s delay shortened.
fn rules(dir: &std::path::Path) -> std::path::PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let lib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/library");
    for entry in std::fs::read_dir(lib).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().is_some_and(|n| n == "door_held_open.rhai") {
            assert!(
                text.contains("on_delay = \"600s\""),
                "the rule's delay changed: {text}"
            );
            text = text.replace("on_delay = \"600s\"", "on_delay = \"30s\"");
        }
        std::fs::write(rules.join(path.file_name().unwrap()), text).unwrap();
    }
    rules
}

#[test]
fn a_running_alarm_delay_continues_on_the_new_owner_instead_of_restarting() {
    let site = ClusterSite::start("delay", 4, &[]);
    let (dir, broker) = (&site.dir, &site.broker);
    let rules = rules(dir);
    let room = RoomId::new("XM-0001").unwrap();
    let shard = u64::from(shard_of(&room));
    // The room's shard belongs where rendezvous hashing puts it: that node starts first (it
    // claims every shard alone; the shard stays, being where it belongs), 2 s ahead.
    let ids = ["node-a", "node-b"];
    let candidates: Vec<Candidate<'_>> = ids
        .iter()
        .map(|node| Candidate { node, dc: "dc1" })
        .collect();
    let owner_id = desired_owner(shard_of(&room), &candidates, None).unwrap();
    let order: Vec<(&str, i64)> = if owner_id == "node-a" {
        vec![("node-a", SKEW_MS), ("node-b", -SKEW_MS)]
    } else {
        vec![("node-b", SKEW_MS), ("node-a", -SKEW_MS)]
    };
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "libfaketime is not installed: run ops/test.sh (it installs Debian's faketime)"
    );
    let mut nodes = Vec::new();
    for (id, offset) in order.iter().copied() {
        nodes.push(
            site.node(id, Some(&rules))
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME", &faketime_offset(offset))
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .start(),
        );
        if nodes.len() == 1 {
            wait_for(
                "the first node owns the room's shard",
                Duration::from_secs(60),
                || {
                    nodes[0].get("/api/v1/cluster").1["shards"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s["shard"].as_u64() == Some(shard)))
                        .then_some(())
                },
            );
        }
    }
    // Both members, and the room's shard held by one of them: the first.
    let owner = wait_for(
        "the room's shard active on a node",
        Duration::from_secs(60),
        || {
            let views: Vec<_> = nodes.iter().map(|n| n.get("/api/v1/cluster").1).collect();
            let members = views[0]["members"].as_array().map_or(0, Vec::len);
            let owners: Vec<usize> = (0..nodes.len())
                .filter(|i| {
                    views[*i]["shards"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s["shard"].as_u64() == Some(shard)))
                })
                .collect();
            (members == 2 && owners.len() == 1).then(|| owners[0])
        },
    );
    assert_eq!(owner, 0, "the room's shard left the node it belongs to");
    // The door held open, disarmed, every 2 s (the room's own device).
    let (client, mut connection) = rumqttc::Client::new(
        rumqttc::MqttOptions::new("door-gateway", "127.0.0.1", broker.addr.port()),
        64,
    );
    std::thread::spawn(move || for _ in connection.iter() {});
    let publish = |t: i64| publish_door(&client, t, true);
    // The door closed first, until the owner routes the shard's samples (its session
    // delivers), so that the first open-door sample is evaluated as soon as it is published.
    let mut closed_at = 0;
    wait_for(
        "the owner applies the room's samples",
        Duration::from_secs(30),
        || {
            if now_ms() - closed_at >= 500 {
                closed_at = now_ms();
                publish_door(&client, closed_at, false);
            }
            let (_, view) = nodes[owner].get("/api/v1/cluster");
            view["shards"]
                .as_array()
                .is_some_and(|s| {
                    s.iter().any(|s| {
                        s["shard"].as_u64() == Some(shard) && s["first_sample_at"].is_string()
                    })
                })
                .then_some(())
        },
    );
    let first = now_ms();
    publish(first);
    let mut last = first;
    let mut pump = |until: i64| {
        while now_ms() < until {
            std::thread::park_timeout(Duration::from_millis(200));
            if now_ms() - last >= 2_000 {
                last = now_ms();
                publish(last);
            }
        }
    };
    // The delay runs on the owner for 10 s; then the owner dies.
    pump(first + 10_000);
    nodes[owner].kill9();
    let heir = 1 - owner;
    let raised = loop {
        pump(now_ms() + 1_000);
        let (_, body) = nodes[heir].get("/api/v1/alarms?room=XM-0001&rule=door_held_open");
        if let Some(a) = body["alarms"].as_array().and_then(|a| a.first()).cloned() {
            break a;
        }
        assert!(
            now_ms() < first + 120_000,
            "door_held_open never raised on the new owner"
        );
    };
    let raised_at = raised["raised_at"]
        .as_i64()
        .unwrap_or_else(|| panic!("no raised_at: {raised}"));
    // Raised at its original due time on the owner's clock (the first door sample + 30 s +
    // 2 s), not a whole delay after the takeover (≥ first + 40 s), nor on the new owner's
    // clock (first + 28 s).
    let late = raised_at - SKEW_MS - (first + DELAY_MS);
    eprintln!(
        "raised on the new owner, stamped first door sample + {} ms (the old owner's clock, \
         +{SKEW_MS} ms): {late} ms from the due time on the real clock",
        raised_at - first
    );
    assert!(
        (-TOLERANCE_MS..=TOLERANCE_MS).contains(&late),
        "raised at {} ms after the first door sample: not the due time the owner (+{SKEW_MS} ms) \
         set before the kill ({} ms): {raised}",
        raised_at - first,
        DELAY_MS + SKEW_MS
    );
    let pids: Vec<u32> = nodes.iter().map(|n| n.pid()).collect();
    drop(nodes);
    for pid in pids {
        forget_faketime(pid);
    }
}

/// One sample of the room's door, disarmed, stamped `t` (the real clock).
fn publish_door(client: &rumqttc::Client, t: i64, open: bool) {
    let body = serde_json::json!({"records": [{"t": t, "v": {"door": open, "armed": false}}]});
    client
        .publish(
            "cistern/v1/telemetry/XM-0001/room",
            rumqttc::QoS::AtLeastOnce,
            false,
            body.to_string(),
        )
        .unwrap();
}
