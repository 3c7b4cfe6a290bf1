//! Monitoring as operators use it: the live `/metrics` of the demo passes `promtool check
//! metrics`, a real Prometheus scrapes it and answers a PromQL query with the live ingest rate,
//! the shipped alerting rules and scrape configuration pass `promtool`, every metric the
//! Grafana dashboards and the alerts query exists on the live `/metrics`, and `/readyz` says
//! which part is not ready, and why, until it is.

use crate::support::{
    get, get_text, promtool, run_site_on_port, wait_for, Cistern, Mosquitto, Prometheus,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every sample name of an exposition (`x_bucket`, `x_sum`, `x_count` for a histogram x).
fn sample_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// Metric families by `# TYPE` line.
fn families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect()
}

/// The metric names a PromQL expression reads: identifiers of Cistern's or the process's
/// families (label names, functions and keywords never start so); `up` when it is used.
fn metric_names(expr: &str) -> Vec<String> {
    // Label matchers may quote anything: drop quoted strings first.
    let mut plain = String::new();
    let mut quoted = false;
    for c in expr.chars() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted {
            plain.push(c);
        }
    }
    let mut out = Vec::new();
    for token in plain.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if token.starts_with("cistern_") || token.starts_with("process_") || token == "up" {
            out.push(token.to_owned());
        }
    }
    out
}

/// Every `expr` of a Grafana dashboard (panels, rows' panels, templating queries).
fn dashboard_exprs(dash: &Value, out: &mut Vec<String>) {
    match dash {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn promtool_accepts_the_shipped_scrape_config_and_alerting_rules() {
    let rules = repo("ops/prometheus/cistern-alerts.yml");
    let (ok, out) = promtool(&["check", "rules", rules.to_str().unwrap()], None);
    assert!(ok, "promtool check rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let config = repo("ops/prometheus/prometheus.yml");
    let (ok, out) = promtool(&["check", "config", config.to_str().unwrap()], None);
    assert!(ok, "promtool check config:\n{out}");
    // The config's rule file was found and checked with it.
    assert!(out.contains("rules found"), "{out}");
    // The alerts' unit tests (ops/prometheus/cistern-alerts-tests.yml: the cluster's alerts fire
    // on the series that should page, and stay quiet on those that should not).
    let tests = repo("ops/prometheus/cistern-alerts-tests.yml");
    let (ok, out) = promtool(&["test", "rules", tests.to_str().unwrap()], None);
    assert!(ok, "promtool test rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert the issue asks for is there, with a `for:` where a blip must not page.
    let text = std::fs::read_to_string(&rules).unwrap();
    for alert in [
        "CisternNodeDown",
        "CisternIngestStalled",
        "CisternStoreBacklogGrowing",
        "CisternActorRestartStorm",
        "CisternRuleSandboxKills",
    ] {
        assert!(text.contains(&format!("alert: {alert}")), "{alert} missing");
    }
}

/// Publishes one malformed payload to the demo's broker, as a broken gateway would.
fn publish_garbage(mqtt: &str) {
    let (host, port) = mqtt.rsplit_once(':').unwrap();
    let opts = rumqttc::MqttOptions::new("it-monitoring-garbage", host, port.parse().unwrap());
    let (client, mut connection) = rumqttc::Client::new(opts, 10);
    std::thread::spawn(move || {
        for event in connection.iter() {
            if event.is_err() {
                break;
            }
        }
    });
    client
        .publish(
            "cistern/v1/telemetry/XM-0002/P1",
            rumqttc::QoS::AtLeastOnce,
            false,
            b"not json".to_vec(),
        )
        .unwrap();
}

#[test]
fn prometheus_scrapes_the_live_demo_and_the_dashboards_query_only_metrics_that_exist() {
    let demo = Cistern::demo("monitoring-demo")
        .rooms(20)
        .modbus_rooms(2)
        .start();
    let base = demo.http().to_owned();
    let (status, body) = get(&format!("{base}/readyz"));
    assert_eq!(status, 200, "the demo is ready once it says so: {body}");
    assert_eq!(body["ready"], true);

    // A broken gateway's payload: counted by reason (and the series exists from then on).
    publish_garbage(demo.mqtt());
    let metrics = wait_for(
        "the garbage payload to be counted",
        Duration::from_secs(10),
        || {
            let text = get_text(&format!("{base}/metrics"));
            text.contains(r#"cistern_ingest_rejected_total{reason="malformed",source="mqtt"}"#)
                .then_some(text)
        },
    );

    // The exposition is valid and lint-clean.
    let (ok, out) = promtool(&["check", "metrics"], Some(&metrics));
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}"
    );

    // Every family the issue lists is exported, and no label identifies a room, a device or a
    // point (label sets stay bounded at 2,100 rooms).
    let fams = families(&metrics);
    for name in [
        "cistern_ingest_messages_total",
        "cistern_ingest_points_total",
        "cistern_ingest_rejected_total",
        "cistern_ingest_lag_seconds",
        "cistern_actor_running",
        "cistern_actor_restarts_total",
        "cistern_actor_mailbox_depth_batches",
        "cistern_rules_evaluations_total",
        "cistern_rules_evaluation_seconds",
        "cistern_rules_activations_total",
        "cistern_rules_sandbox_kills_total",
        "cistern_alarm_active",
        "cistern_alarm_annunciation_rate_per_10min",
        "cistern_store_write_seconds",
        "cistern_store_queue_depth_samples",
        "cistern_store_spill_bytes",
        "cistern_store_chunk_bytes_per_point",
        "cistern_modbus_requests_total",
        "cistern_modbus_timeouts_total",
        "cistern_modbus_exceptions_total",
        "cistern_fleet_rooms",
        "cistern_fleet_alarms_active",
        "cistern_fleet_outlet_flow_m3_per_hour",
        "cistern_fleet_active_power_kilowatts",
        "cistern_fleet_energy_intensity_kwh_per_m3",
        "cistern_fleet_tanks",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(fams.contains(name), "{name} is not on /metrics");
    }
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        for label in ["room=", "device=", "point=", "id="] {
            assert!(
                !line.contains(&format!("{{{label}")) && !line.contains(&format!(",{label}")),
                "unbounded label {label} in {line}"
            );
        }
        if line.starts_with("cistern_") {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                !name.ends_with("_total") || fams.iter().any(|f| f == name),
                "{name}: only counters end in _total"
            );
        }
    }
    let online: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("cistern_fleet_rooms{") && l.contains(r#"status="online""#))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(online, 20.0, "every room online, summed over the zones");

    // The dashboards and the alerts query only what exists.
    let names = sample_names(&metrics);
    let mut checked = 0;
    for file in [
        "ops/grafana/cistern-platform.json",
        "ops/grafana/cistern-fleet.json",
    ] {
        let dash: Value = serde_json::from_str(&std::fs::read_to_string(repo(file)).unwrap())
            .unwrap_or_else(|e| panic!("{file} is not valid JSON: {e}"));
        assert_eq!(
            dash["__inputs"][0]["pluginId"], "prometheus",
            "{file}: import asks for a Prometheus datasource"
        );
        assert!(dash["panels"].as_array().is_some_and(|p| p.len() > 5));
        let mut exprs = Vec::new();
        dashboard_exprs(&dash, &mut exprs);
        assert!(exprs.len() > 10, "{file}: {} queries", exprs.len());
        for expr in &exprs {
            let used = metric_names(expr);
            assert!(!used.is_empty(), "{file}: no metric in `{expr}`");
            for m in used.iter().filter(|m| *m != "up") {
                assert!(
                    names.contains(m),
                    "{file}: `{expr}` reads {m}, not on /metrics"
                );
                checked += 1;
            }
        }
    }
    let alerts = std::fs::read_to_string(repo("ops/prometheus/cistern-alerts.yml")).unwrap();
    for m in metric_names(&alerts).iter().filter(|m| *m != "up") {
        assert!(names.contains(m), "alerts read {m}, not on /metrics");
        checked += 1;
    }
    eprintln!("{checked} metric references of the dashboards and alerts exist on /metrics");

    // A real Prometheus scrapes the demo every second, with the shipped alerting rules loaded.
    let target = base.trim_start_matches("http://");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - cistern-alerts.yml\n\
         scrape_configs:\n  - job_name: cistern\n    static_configs:\n      - targets: ['{target}']\n"
    );
    let prometheus = Prometheus::start(
        "monitoring-prometheus",
        &config,
        &[("cistern-alerts.yml", &alerts)],
    );
    let query = "sum(rate(cistern_ingest_points_total[30s]))";
    // 20 rooms publish about every 2 s, dozens of points each: well over 20 points/s once
    // Prometheus holds a full 30 s window (the first scrapes extrapolate from a few samples).
    let rate = wait_for(
        "Prometheus to report an ingest rate above 20 points/s",
        Duration::from_secs(90),
        || {
            let result = prometheus.query(query);
            let v: f64 = result.first()?["value"][1].as_str()?.parse().ok()?;
            (v > 20.0).then_some(v)
        },
    );
    eprintln!("PromQL `{query}` against the demo (20 rooms) = {rate:.1} points/s");
    let up = prometheus.query(r#"up{job="cistern"}"#);
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    let rooms = prometheus.query(r#"sum(cistern_fleet_rooms{status="online"})"#);
    assert_eq!(rooms[0]["value"][1], "20", "{rooms:?}\n{}", demo.log_tail());
    let targets = prometheus.targets();
    assert_eq!(
        targets["data"]["activeTargets"][0]["health"], "up",
        "{targets}"
    );
}

#[test]
fn readyz_names_the_part_that_is_not_ready_until_it_is() {
    let inventory = cistern::lab::sim::generate_fleet(3, 5);
    let port = crate::support::free_port();
    // No broker on the port yet; reconnect attempts capped at 500 ms so that the test sees the
    // broker soon after it starts.
    let config = run_site_on_port("readyz", &inventory, port, "reconnect_max = \"500ms\"\n");
    let node = Cistern::run("readyz", &config).start();
    let base = node.http().to_owned();
    let (status, body) = get(&format!("{base}/healthz"));
    assert_eq!(status, 200, "alive though not ready: {body}");
    let (status, body) = get(&format!("{base}/readyz"));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["not_ready"], serde_json::json!(["ingest"]), "{body}");
    assert!(
        body["ingest"]["detail"].as_str().unwrap().contains("MQTT"),
        "{body}"
    );
    assert_eq!(body["store"]["ready"], true, "{body}");
    assert_eq!(body["actors"]["ready"], true, "{body}");

    // The broker comes up: the node subscribes and is ready.
    let broker = Mosquitto::start_on("readyz-broker", port);
    let body = wait_for("/readyz to turn ready", Duration::from_secs(30), || {
        let (status, body) = get(&format!("{base}/readyz"));
        (status == 200).then_some(body)
    });
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["not_ready"], serde_json::json!([]));

    // The broker goes away: not ready again, and the body says it is ingest.
    drop(broker);
    let body = wait_for("/readyz to turn not ready", Duration::from_secs(30), || {
        let (status, body) = get(&format!("{base}/readyz"));
        (status == 503).then_some(body)
    });
    assert_eq!(
        body["not_ready"],
        serde_json::json!(["ingest"]),
        "{body}\n{}",
        node.log_tail()
    );
    let (status, _) = get(&format!("{base}/healthz"));
    assert_eq!(status, 200);
}
