//! A gateway whose clock runs fast, through a real mosquitto: one record stamped 270 s ahead of
//! the node's clock is refused (counted, the room flagged as clock-skewed) and the real samples
//! that follow stay live, so that no false alarm follows from the bogus value (issue 18: one
//! future-stamped `outlet_pressure` of 0.011 had pinned the live value for ~4.7 min and raised
//! a false P2). Then the same node applying samples 40 s late: `/readyz` names `ingest_lag`.

use crate::support::{
    get, get_text, publish_record, run_site, spawn_cistern, temp_dir, wait_for, Mosquitto,
};
use cistern::lab::sim;
use cistern_schemas::Timestamp;
use rumqttc::{Client, MqttOptions};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// The shipped rule library with `outlet_pressure_low`'s on-delay cut to 2 s, so that a pinned
/// low value would raise within the test.
fn rules() -> std::path::PathBuf {
    let dir = temp_dir("skew-rules");
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/library");
    for e in std::fs::read_dir(&lib).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("//! on_delay = \"15s\"", "//! on_delay = \"2s\"");
        std::fs::write(dir.join(p.file_name().unwrap()), text).unwrap();
    }
    dir
}

/// Publishes one record of XM-0001 stamped `t`.
fn publish(client: &Client, t: Timestamp, values: &[(&str, f64)]) {
    publish_record(client, "XM-0001", t, values);
}

fn outlet_pressure(room: &Value) -> (Option<f64>, Option<i64>) {
    let p = (room["points"].as_array().unwrap().iter())
        .find(|p| p["name"] == "outlet_pressure")
        .unwrap();
    (p["value"].as_f64(), p["t"].as_i64())
}

#[test]
fn a_future_stamped_record_is_refused_and_live_state_follows_the_real_samples() {
    let broker = Mosquitto::start("mosquitto-skew");
    let fleet = sim::generate_fleet(2, 5);
    let setpoint = fleet.rooms[0].outlet_setpoint_mpa;
    let rules = rules();
    let config = run_site(
        "skew",
        &fleet,
        &broker,
        &format!("[rules]\ndir = \"{}\"\n", rules.display()),
    );
    let (node, ready) = spawn_cistern(
        "skew",
        &["run", "--config", config.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let base = ready["http"].clone();
    let mut opts = MqttOptions::new("skew-gateway", "127.0.0.1", broker.addr.port());
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(opts, 100);
    std::thread::spawn(move || for _ in connection.iter() {});
    let healthy = |p: f64| {
        [
            ("mains", 1.0),
            ("voltage_a", 380.0),
            ("voltage_b", 380.0),
            ("voltage_c", 380.0),
            ("inlet_pressure", 0.25),
            ("outlet_pressure", p),
        ]
    };
    publish(&client, Timestamp::now(), &healthy(setpoint));
    wait_for(
        "the room's first sample live",
        Duration::from_secs(20),
        || {
            let (_, room) = get(&format!("{base}/api/v1/rooms/XM-0001"));
            outlet_pressure(&room).0.map(|_| ())
        },
    );
    // The gateway's clock jumps 270 s ahead for one record.
    let sent = Timestamp::now();
    publish(
        &client,
        sent + Duration::from_secs(270),
        &[("outlet_pressure", 0.011)],
    );
    // Real samples every 500 ms until they have been live for the rule's 2 s delay and more.
    let mut n = 0u32;
    let room = wait_for(
        "real samples live 5 s after the future one",
        Duration::from_secs(30),
        || {
            n += 1;
            publish(
                &client,
                Timestamp::now(),
                &healthy(setpoint + 0.001 * f64::from(n % 5)),
            );
            std::thread::park_timeout(Duration::from_millis(500));
            let (_, room) = get(&format!("{base}/api/v1/rooms/XM-0001"));
            let (_, t) = outlet_pressure(&room);
            t.is_some_and(|t| t >= sent.0 + 5_000).then_some(room)
        },
    );
    let (value, t) = outlet_pressure(&room);
    assert!(
        value.is_some_and(|v| (v - setpoint).abs() < 0.01),
        "live state follows the real samples: {room}\n{}",
        node.log_tail()
    );
    assert!(t.unwrap() < Timestamp::now().0 + 5_000, "{room}");
    assert!(
        (room["clock_skew"]["ahead_s"].as_f64().unwrap() - 270.0).abs() < 5.0,
        "the room is flagged as clock-skewed: {room}"
    );
    let metrics = get_text(&format!("{base}/metrics"));
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("cistern_ingest_future_samples_total{kind=\"room\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(refused, Some(1.0), "counted");
    let (_, alarms) = get(&format!("{base}/api/v1/alarms"));
    let rules: Vec<&str> = (alarms["alarms"].as_array().unwrap().iter())
        .filter_map(|a| a["rule"].as_str())
        .collect();
    assert!(
        !rules.contains(&"outlet_pressure_low"),
        "no false low-pressure alarm: {alarms}"
    );

    let (status, body) = get(&format!("{base}/readyz"));
    assert_eq!(
        (status, &body["ingest_lag"]["ready"]),
        (200, &Value::Bool(true)),
        "{body}"
    );

    // XM-0001 falls silent; XM-0002's samples arrive 40 s after their source time (an ingest
    // running behind): within two 5 s windows the node is not ready, naming the lag.
    let body = wait_for(
        "/readyz to name ingest_lag",
        Duration::from_secs(30),
        || {
            publish_record(
                &client,
                "XM-0002",
                Timestamp::now() - Duration::from_secs(40),
                &[("outlet_pressure", setpoint)],
            );
            std::thread::park_timeout(Duration::from_millis(500));
            let (status, body) = get(&format!("{base}/readyz"));
            (status == 503).then_some(body)
        },
    );
    assert_eq!(
        body["not_ready"],
        serde_json::json!(["ingest_lag"]),
        "{body}"
    );
    let lag = get_text(&format!("{base}/metrics"))
        .lines()
        .find(|l| l.starts_with("cistern_ingest_apply_lag_seconds "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!(
        (39.0..45.0).contains(&lag),
        "cistern_ingest_apply_lag_seconds {lag}"
    );
}
