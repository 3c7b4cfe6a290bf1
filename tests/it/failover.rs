//! Failover end to end (issue 23), through `cistern bench failover` at a small scale: a real
//! etcd of three members, a real mosquitto and three `cistern run` nodes in cluster mode as
//! separate processes, the simulated fleet publishing. One node is lost — SIGKILL (with the
//! nodes' wall clocks skewed ±2 s by libfaketime), cut off by a network partition (a namespace
//! of its own; needs root, as CI runs), or leaving on SIGTERM — and the report must show every
//! orphaned shard supervised again, no published sample missing from every store, none
//! duplicated as served, no alarm transition the samples caused missing from every node's event
//! log (the bench times short faults around the loss, so that the lost node's rooms raise and
//! clear alarms in the takeover), and no shard ever acted for by two nodes at once.
//!
//! The kill's budget (< 5 s) and a planned leave's gap are asserted with margins for a debug
//! build on a busy machine; the figures at 2,100 rooms are the benchmark's, on a release build
//! (ARCHITECTURE.md, "The failover benchmark").

use crate::support::Cistern;

/// Runs the benchmark for one scenario (the node lost: `seed` mod 3, 1 node-b, 2 node-c) and
/// returns its JSON report.
fn bench(name: &str, scenario: &str, seed: &str, extra: &[&str]) -> serde_json::Value {
    let out = Cistern::command(
        name,
        [
            "bench",
            "failover",
            "--rooms",
            "60",
            "--nodes",
            "3",
            "--seed",
            seed,
            "--scenario",
            scenario,
            "--warmup",
            "6",
            "--after",
            "8",
            "--partition-hold",
            "8",
            "--faults-per-room-day",
            "0",
            "--json",
        ],
    )
    .args(extra)
    .log_filter("warn")
    .output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cistern bench failover --scenario {scenario} failed:\n{stderr}"
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

/// What both scenarios must show.
fn check(report: &serde_json::Value, scenario: &str) {
    let s = &report["scenarios"][0];
    assert_eq!(s["scenario"], scenario, "{report:#}");
    let n = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("no {k} in {report:#}"))
    };
    let c = |k: &str| {
        s["census"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("no census.{k} in {report:#}"))
    };
    // The victim owned shards with rooms (60 rooms over 64 shards and 3 nodes: some).
    assert!(n("orphaned_with_rooms") > 0, "{report:#}");
    assert_eq!(
        n("rehomed"),
        n("orphaned_with_rooms"),
        "orphaned shards not supervised again: {:#}",
        s["takeovers"]
    );
    assert!(s["takeover_max_s"].as_f64().is_some(), "{report:#}");
    // 60 rooms of ~60 points every 2 s for 20 s and more: thousands of samples.
    assert!(c("published") > 10_000, "{report:#}");
    assert_eq!(
        c("lost"),
        0,
        "published samples in no store: {:#}",
        s["census"]
    );
    assert_eq!(c("durable"), c("published"), "{:#}", s["census"]);
    assert_eq!(c("duplicates"), 0, "{:#}", s["census"]);
    // Alarm transitions: the burst of faults gave the lost node's rooms transitions around the
    // loss (a run without them would pass vacuously), and none that the published samples
    // caused (the reference replay) is missing from every node's event log.
    let alarms = &s["alarms"];
    let a = |part: &str, k: &str| {
        alarms[part][k]
            .as_u64()
            .unwrap_or_else(|| panic!("no alarms.{part}.{k} in {report:#}"))
    };
    assert!(
        a("around_loss", "expected") >= MIN_TRANSITIONS_AROUND_LOSS,
        "too few alarm transitions around the loss to lose: {alarms:#}"
    );
    assert_eq!(
        a("all", "lost"),
        0,
        "alarm transitions recorded by no node: {alarms:#}"
    );
    assert_eq!(
        n("double_ownership"),
        0,
        "two nodes acted for one shard: {:#}",
        s["overlaps"]
    );
    // The journals were there to read (a run without them would pass vacuously).
    assert!(n("acting_spans") >= 64, "{report:#}");
}

/// Alarm transitions of the lost node's rooms expected from 1 s before the loss to the end of
/// its takeover + the restored rooms' 5 s grace + 1 s: the burst's ~20 faults in the lost
/// node's rooms at 60 rooms (raises, clears, suppressions, from 24 s before the loss to 40 s
/// after) gave 21–28 in the runs at 60 and 300 rooms.
const MIN_TRANSITIONS_AROUND_LOSS: u64 = 5;

/// The re-homing budget of issue 23: a killed node's rooms supervised again within 5 s.
const KILL_BUDGET_S: f64 = 5.0;

/// A planned leave: how long a moved shard may have no owner (the old owner's `released` →
/// the new owner's claim). No lease has to expire and `settle` does not apply: the leaving node
/// drains its shards one after the other (a few ms each at this size), revokes its lease —
/// its membership goes with it, and only then do the others' rendezvous stop naming it — and
/// the new owners claim at their next read (`poll_every`, 200 ms). Measured on a debug build
/// at 60 rooms: 0.08–0.25 s (ARCHITECTURE.md); 1 s leaves a margin of four for a loaded CI
/// machine and stays below the 2.5 s a kill needs for the lease to lapse at the earliest.
const LEAVE_UNOWNED_BOUND_S: f64 = 1.0;

/// A planned leave's gap, `released` → the new owner's first sample: the unowned time above,
/// the shard's start (checkpoint, rooms, MQTT session: tens of ms), then the first delivery —
/// at once when the broker holds messages for the session, otherwise the rooms' next publish,
/// which the fleet makes every 2 s (a room that published just before the leave, its message
/// acknowledged by the old owner, has nothing queued: measured 1.7 s). So one publish period
/// plus the bound above: a gap that needed a lease to lapse or a `settle` would exceed it.
const LEAVE_GAP_BOUND_S: f64 = 3.0;

#[test]
fn a_killed_node_s_shards_are_supervised_again_with_nothing_lost_despite_skewed_clocks() {
    // Seed 1: node-b is killed; node-a runs 2 s ahead, node-b 2 s behind, node-c on time. The
    // bench compares the nodes' wall times only after taking each node's offset off.
    let report = bench("failover-kill", "kill", "1", &["--skew-ms", "2000"]);
    check(&report, "kill");
    let s = &report["scenarios"][0];
    assert_eq!(s["victim"], "node-b", "{report:#}");
    // The survivors stopped by themselves at the end.
    assert_eq!(s["stopped_cleanly"], 2, "{report:#}");
    let max = s["takeover_max_s"].as_f64().unwrap_or(f64::MAX);
    assert!(
        max < KILL_BUDGET_S,
        "re-homing took {max} s with skewed clocks: {:#}",
        s["takeovers"]
    );
    // libfaketime really moved the nodes' wall clocks (`SystemTime::now()`): the line each
    // survivor logged on SIGTERM is stamped its offset away from when the bench sent it (plus
    // the signal's delivery and the HTTP server's stop, which come first).
    let clocks = s["clocks"].as_array().expect("clocks");
    for c in clocks.iter().filter(|c| c["node"] != "node-b") {
        let (set, measured) = (c["set_ms"].as_i64().unwrap(), c["measured_ms"].as_i64());
        let measured = measured.unwrap_or_else(|| panic!("no offset measured: {c}"));
        assert!(
            (set - 300..=set + 1_500).contains(&measured),
            "node's wall clock is {measured} ms off, not {set} ms: {report:#}"
        );
    }
    assert_eq!(
        clocks
            .iter()
            .map(|c| c["set_ms"].as_i64())
            .collect::<Vec<_>>(),
        vec![Some(2_000), Some(-2_000), Some(0)]
    );
}

#[test]
fn a_planned_leave_moves_shards_with_no_gap() {
    let report = bench("failover-leave", "leave", "2", &[]);
    check(&report, "leave");
    let s = &report["scenarios"][0];
    // Every shard of the leaving node was handed over (journalled `released`), it exited by
    // itself, and so did the others at the end.
    assert_eq!(s["released"], s["orphaned_shards"], "{report:#}");
    assert!(s["victim_exit_s"].as_f64().is_some(), "{report:#}");
    assert_eq!(s["stopped_cleanly"], 2, "{report:#}");
    let takeovers = s["takeovers"].as_array().expect("takeovers");
    for t in takeovers {
        let unowned = t["unowned_s"]
            .as_f64()
            .unwrap_or_else(|| panic!("no release or claim for shard {t}: {report:#}"));
        assert!(
            (0.0..LEAVE_UNOWNED_BOUND_S).contains(&unowned),
            "shard {} had no owner for {unowned} s after its release (bound \
             {LEAVE_UNOWNED_BOUND_S} s): {:#}",
            t["shard"],
            s["takeovers"]
        );
    }
    for t in takeovers.iter().filter(|t| t["rooms"].as_u64() > Some(0)) {
        let gap = t["gap_s"]
            .as_f64()
            .unwrap_or_else(|| panic!("no gap for shard {t}: {report:#}"));
        assert!(
            (0.0..LEAVE_GAP_BOUND_S).contains(&gap),
            "shard {} went {gap} s unsupervised after its release (bound {LEAVE_GAP_BOUND_S} s): {:#}",
            t["shard"],
            s["takeovers"]
        );
    }
}

#[test]
fn a_partitioned_node_fences_itself_and_no_shard_has_two_writers() {
    let report = bench("failover-partition", "partition", "2", &[]);
    check(&report, "partition");
    let s = &report["scenarios"][0];
    // The cut-off node wrote `fenced` for its shards, and everyone rejoined after the heal.
    assert!(s["victim_fenced_after_s"].as_f64().is_some(), "{report:#}");
    assert!(s["settled_after_heal_s"].as_f64().is_some(), "{report:#}");
    assert_eq!(s["stopped_cleanly"], 3, "{report:#}");
}
