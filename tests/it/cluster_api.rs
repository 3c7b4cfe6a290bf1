//! Any node serves the whole fleet over REST (issue 23, item 4): two `cistern run` nodes in a
//! cluster (a real etcd, a real mosquitto, the simulator as the rooms' gateways). Identity is
//! shared through etcd (a session from node A works on node B; a user created on A logs in on
//! B; a user deleted on A is refused on B); a room that B supervises is answered on A by B
//! (`X-Cistern-Served-By: node-b`), an alarm acknowledged on A is acknowledged on B and audited
//! there under the operator's name; a request forwarded once is never forwarded again; both
//! nodes list every room; and with B killed (SIGKILL) A's list first says what it cannot see
//! (partial, or rooms unsupervised), then, once A has taken B's shards over, lists every room
//! as its own.

use crate::cluster_site::ClusterSite;
use crate::support::{call_as, metric, token_for, wait_for, Cistern, IT_ADMIN_PASSWORD};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ROOMS: usize = 12;

/// A GET or POST with a bearer and extra headers: status, the `X-Cistern-Served-By` header,
/// `Retry-After`, and the JSON body.
fn request(
    method: &str,
    url: &str,
    token: &str,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Option<String>, Option<String>, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(15)))
        .http_status_as_error(false)
        .build()
        .into();
    let auth = format!("Bearer {token}");
    let result = match method {
        "GET" => {
            let mut r = agent.get(url).header("authorization", &auth);
            for (k, v) in extra {
                r = r.header(*k, *v);
            }
            r.call()
        }
        _ => {
            let mut r = agent
                .post(url)
                .header("authorization", &auth)
                .header("content-type", "application/json");
            for (k, v) in extra {
                r = r.header(*k, *v);
            }
            r.send(body.unwrap_or("{}"))
        }
    };
    let mut resp = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (served_by, retry_after) = (header("x-cistern-served-by"), header("retry-after"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, served_by, retry_after, json)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[test]
fn any_node_serves_the_whole_fleet_over_rest_with_shared_identity() {
    let site = ClusterSite::start("api", ROOMS, &["--seed", "1"]);
    let broker = &site.broker;
    let mut nodes: Vec<_> = ["node-a", "node-b"]
        .iter()
        .map(|id| site.node(id, None).start())
        .collect();
    let (a, b) = (nodes[0].http().to_owned(), nodes[1].http().to_owned());

    // Shared identity: the admin bootstrapped once; a session from A works on B.
    let admin_a = token_for(&a, "admin", IT_ADMIN_PASSWORD);
    let me = wait_for("A's session accepted by B", Duration::from_secs(5), || {
        let (status, me) = call_as(Some(&admin_a), "GET", &format!("{b}/api/v1/auth/me"), None);
        (status == 200).then_some(me)
    });
    assert_eq!(me["user"], "admin", "{me}");
    // A user created on A logs in on B.
    let (status, created) = call_as(
        Some(&admin_a),
        "POST",
        &format!("{a}/api/v1/users"),
        Some(r#"{"name": "op-shared", "role": "operator", "password": "op-shared-password"}"#),
    );
    assert_eq!(status, 201, "{created}");
    // (Known to B first, then one login: failed logins would count against the user's limit.)
    let created_at = std::time::Instant::now();
    wait_for("the new user known to B", Duration::from_secs(5), || {
        let url = format!("{b}/api/v1/users/op-shared");
        (call_as(Some(&admin_a), "GET", &url, None).0 == 200).then_some(())
    });
    eprintln!(
        "a user created on A was known to B after {:?}",
        created_at.elapsed()
    );
    let op = token_for(&b, "op-shared", "op-shared-password");

    // Both members, every shard held, every shard active (the simulator feeds every room).
    let _sim = Cistern::simulate("cluster-api-sim", broker.addr)
        .rooms(ROOMS)
        .seed(1)
        .start();
    let shards_of = |base: &str| -> Vec<(u64, String)> {
        let (_, view) = call_as(Some(&op), "GET", &format!("{base}/api/v1/cluster"), None);
        (view["shards"].as_array().into_iter().flatten())
            .map(|s| {
                (
                    s["shard"].as_u64().unwrap(),
                    s["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    wait_for(
        "64 shards held and active, some on each node",
        Duration::from_secs(60),
        || {
            let (on_a, on_b) = (shards_of(&a), shards_of(&b));
            let active = on_a.iter().chain(&on_b).all(|(_, s)| s == "active");
            (on_a.len() + on_b.len() == 64 && !on_a.is_empty() && !on_b.is_empty() && active)
                .then_some(())
        },
    );
    // Every room online in the list of either node, each with the node that supervises it.
    for base in [&a, &b] {
        let rooms = wait_for(
            "every room online in a node's fleet-wide list",
            Duration::from_secs(60),
            || {
                let (_, _, _, rooms) =
                    request("GET", &format!("{base}/api/v1/rooms"), &op, &[], None);
                let on_b = (rooms["rooms"].as_array().into_iter().flatten())
                    .any(|r| r["node"] == "node-b");
                (rooms["online"] == ROOMS && on_b).then_some(rooms)
            },
        );
        assert_eq!(rooms["count"], ROOMS, "{rooms}");
        assert_eq!(rooms["partial"], false, "{rooms}");
        let list = rooms["rooms"].as_array().unwrap();
        assert!(list.iter().all(|r| r["supervised"] == true), "{rooms}");
        assert!(list.iter().any(|r| r["node"] == "node-a"), "{rooms}");
        assert!(list.iter().any(|r| r["node"] == "node-b"), "{rooms}");
    }
    // A room B supervises (its shard active there).
    let (_, _, _, rooms) = request("GET", &format!("{a}/api/v1/rooms"), &op, &[], None);
    let room_b = (rooms["rooms"].as_array().unwrap().iter())
        .find(|r| r["node"] == "node-b")
        .and_then(|r| r["id"].as_str())
        .unwrap()
        .to_owned();

    // Its live view, asked on A, answered by B.
    let (status, served_by, _, view) =
        request("GET", &format!("{a}/api/v1/rooms/{room_b}"), &op, &[], None);
    assert_eq!(status, 200, "{view}");
    assert_eq!(served_by.as_deref(), Some("node-b"));
    assert_eq!(view["id"], room_b.as_str(), "{view}");
    assert!(
        view["tanks"].as_array().is_some_and(|t| !t.is_empty()),
        "{view}"
    );
    // On B itself: no forwarding.
    let (status, served_by, _, _) =
        request("GET", &format!("{b}/api/v1/rooms/{room_b}"), &op, &[], None);
    assert_eq!((status, served_by), (200, None));
    // A request forwarded once is never forwarded again.
    let refused_before = metric(&a, "cistern_cluster_forwarded_total{result=\"refused\"}");
    let (status, _, retry_after, body) = request(
        "GET",
        &format!("{a}/api/v1/rooms/{room_b}"),
        &op,
        &[("x-cistern-forwarded-by", "node-x")],
        None,
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "room_unavailable", "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(
        metric(&a, "cistern_cluster_forwarded_total{result=\"refused\"}"),
        refused_before + 1.0
    );

    // An intrusion in B's room (latched), listed on A, acknowledged on A by the operator.
    let (client, mut connection) = rumqttc::Client::new(
        rumqttc::MqttOptions::new("intruder", "127.0.0.1", broker.addr.port()),
        16,
    );
    std::thread::spawn(move || for _ in connection.iter() {});
    // Published until it is seen (every 500 ms): the simulated gateway reports the room's own
    // door and arming every 2 s too.
    let mut sent = 0;
    let mut intrude = || {
        if now_ms() - sent < 500 {
            return;
        }
        sent = now_ms();
        let body =
            serde_json::json!({"records": [{"t": sent, "v": {"door": true, "armed": true}}]});
        client
            .publish(
                format!("cistern/v1/telemetry/{room_b}/room"),
                rumqttc::QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .unwrap();
    };
    let alarm = wait_for("the intrusion listed on A", Duration::from_secs(30), || {
        intrude();
        let (_, _, _, list) = request(
            "GET",
            &format!("{a}/api/v1/alarms?room={room_b}&rule=intrusion"),
            &op,
            &[],
            None,
        );
        list["alarms"].as_array().and_then(|l| l.first()).cloned()
    });
    assert_eq!(alarm["state"], "unacked", "{alarm}");
    let id = alarm["id"].as_str().unwrap();
    let (source, key) = id.split_once('/').unwrap();
    assert_eq!(source, room_b);
    let (status, served_by, _, acked) = request(
        "POST",
        &format!("{a}/api/v1/alarms/{source}/{key}/ack"),
        &op,
        &[],
        Some(r#"{"comment": "acknowledged through node A"}"#),
    );
    assert_eq!(status, 200, "{acked}");
    assert_eq!(served_by.as_deref(), Some("node-b"));
    assert_eq!(acked["alarm"]["state"], "acked", "{acked}");
    // Applied on B, and audited there under the operator's name (not on A).
    let (_, _, _, on_b) = request(
        "GET",
        &format!("{b}/api/v1/alarms?room={room_b}&rule=intrusion"),
        &op,
        &[("x-cistern-scope", "local")],
        None,
    );
    assert_eq!(on_b["alarms"][0]["state"], "acked", "{on_b}");
    let audit = |base: &str| {
        let (_, _, _, log) = request(
            "GET",
            &format!("{base}/api/v1/audit?user=op-shared&action=alarm_ack"),
            &admin_a,
            &[],
            None,
        );
        log["entries"].as_array().cloned().unwrap_or_default()
    };
    let entries = audit(&b);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["target"], id, "{entries:?}");
    assert!(audit(&a).is_empty(), "audited on A too");
    assert!(metric(&a, "cistern_cluster_forwarded_total{result=\"ok\"}") >= 2.0);

    // A user deleted on A is refused on B.
    let (status, _) = call_as(
        Some(&admin_a),
        "DELETE",
        &format!("{a}/api/v1/users/op-shared"),
        None,
    );
    assert_eq!(status, 200);
    wait_for(
        "the deleted user refused on B",
        Duration::from_secs(5),
        || {
            let (status, _) = call_as(Some(&op), "GET", &format!("{b}/api/v1/auth/me"), None);
            (status == 401).then_some(())
        },
    );

    // B dies: A first shows what it cannot see, then takes B's rooms over.
    nodes[1].kill9();
    let degraded = wait_for(
        "A's list partial or with unsupervised rooms",
        Duration::from_secs(15),
        || {
            let (_, _, _, rooms) =
                request("GET", &format!("{a}/api/v1/rooms"), &admin_a, &[], None);
            let unsupervised =
                (rooms["rooms"].as_array().into_iter().flatten()).any(|r| r["supervised"] == false);
            (rooms["partial"] == true || unsupervised).then_some(rooms)
        },
    );
    assert_eq!(degraded["count"], ROOMS, "{degraded}");
    let rehomed = wait_for(
        "every room supervised by A",
        Duration::from_secs(60),
        || {
            let (_, _, _, rooms) =
                request("GET", &format!("{a}/api/v1/rooms"), &admin_a, &[], None);
            let mine = (rooms["rooms"].as_array().into_iter().flatten())
                .filter(|r| r["node"] == "node-a" && r["supervised"] == true)
                .count();
            (rooms["partial"] == false && mine == ROOMS).then_some(rooms)
        },
    );
    assert_eq!(rehomed["missing"], serde_json::json!([]), "{rehomed}");
    let (status, served_by, _, view) = request(
        "GET",
        &format!("{a}/api/v1/rooms/{room_b}"),
        &admin_a,
        &[],
        None,
    );
    assert_eq!((status, served_by), (200, None), "{view}");
}
