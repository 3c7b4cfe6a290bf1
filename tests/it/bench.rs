//! `cistern bench` end to end at a small scale: a real mosquitto, the node and the load
//! generator as separate processes; every published point must be durable, and the report
//! must carry live figures, WebSocket clients' among them.

use crate::support::Cistern;

#[test]
fn the_fleet_benchmark_loses_nothing_and_reports_live_figures() {
    let out = Cistern::command(
        "bench",
        [
            "bench",
            "--rooms",
            "30",
            "--warmup",
            "6",
            "--seconds",
            "8",
            "--faults-per-room-day",
            "2000",
            "--clients",
            "12",
            "--json",
        ],
    )
    .log_filter("warn")
    .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cistern bench failed:\n{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)));
    let n = |k: &str| {
        report[k]
            .as_f64()
            .unwrap_or_else(|| panic!("no {k} in {report}"))
    };
    // 30 rooms of ~60 points every 2 s for 14 s: tens of thousands of points.
    assert!(n("published_points") > 5_000.0, "{report}");
    assert_eq!(
        n("samples_lost"),
        0.0,
        "published points were not all durable: {report}"
    );
    assert_eq!(n("published_points"), n("durable_points"), "{report}");
    assert!(n("ingested_points_per_s") > 100.0, "{report}");
    assert!(n("node_cpu_share") > 0.0, "{report}");
    assert!(n("node_peak_rss_bytes") > 1e6, "{report}");
    assert!(n("rule_evaluations_per_s") > 0.0, "{report}");
    // At 2,000 faults per room and day, some go in during a 14-second run.
    assert!(n("faults_injected") > 0.0, "{report}");
    let p50 = n("durable_p50_s");
    let p99 = n("durable_p99_s");
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= 120.0, "{report}");
    // The WebSocket clients (all dashboards below 50 clients: here 12 on the fleet summary and
    // the alarm list) saw the fleet live, with no silent gap and no dropped connection.
    let ws = &report["websocket"];
    assert_eq!(ws["clients"], 12, "{report}");
    assert_eq!(ws["failed_clients"], 0, "{report}");
    assert_eq!(ws["sequence_gaps"], 0, "{report}");
    assert!(ws["messages_per_s"].as_f64().unwrap() > 0.0, "{report}");
}
