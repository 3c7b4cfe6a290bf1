//! Backup and restore through the real binary (issue 24, item 6): `cistern backup DEST` while
//! a simulated fleet ingests through a real mosquitto, `cistern backup verify`, `cistern
//! restore` into a fresh directory, and a node started on it with every sample that was
//! durable before the backup began, the standing alarm, the open work order, the user and the
//! API token.
//! Then the refusals: a non-empty data directory, a corrupt backup, a destination that is not
//! new or not absolute, a destination that fills up (a tiny tmpfs); and the schedule.

use crate::support::{
    admin_token, call_as, get, metric, post, publish_record, run_site, storage_site, temp_dir,
    try_wait_for, wait_for, Cistern, Mosquitto,
};
use cistern::lab::sim;
use cistern_schemas::Timestamp;
use rumqttc::{Client, MqttOptions};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Points the MQTT ingest decoded and routed.
const INGESTED: &str = "cistern_ingest_points_total{source=\"mqtt\"}";

/// The room the test's own gateway publishes for (the simulated fleet has one fewer).
const ROOM: &str = "XM-0041";

/// The timestamps of `point` in history between `from` and `to`.
fn stamps(base: &str, point: &str, from: i64, to: i64) -> BTreeSet<i64> {
    let (_, v) = get(&format!(
        "{base}/api/v1/history?point={point}&from={from}&to={to}"
    ));
    v["series"][0]["samples"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s[0].as_i64()).collect())
        .unwrap_or_default()
}

fn cistern(name: &str, args: &[&str]) -> std::process::Output {
    Cistern::command(name, args).output()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn backup_during_ingest_restores_history_alarms_orders_users_and_tokens() {
    let broker = Mosquitto::start("mosquitto-backup");
    let fleet = sim::generate_fleet(41, 1);
    let config = run_site(
        "backup-node",
        &fleet,
        &broker,
        "[store]\ndata_dir = \"data\"\n[historian]\nseal_every = \"3s\"\n",
    );
    let node = Cistern::run("backup-node", &config).start();
    let base = node.http().to_owned();
    // 40 simulated rooms publishing through mosquitto, as their gateways would.
    let _fleet = Cistern::simulate("backup-sim", broker.addr)
        .rooms(40)
        .seed(1)
        .start();

    // The test's own gateway for XM-0041: smoke (a latched P1 alarm) and a tank level, one
    // sample every 2 s of data time, 50 messages a second.
    let mut opts = MqttOptions::new("backup-gateway", "127.0.0.1", broker.addr.port());
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_inflight(200);
    let (client, mut connection) = Client::new(opts, 1_000);
    std::thread::spawn(move || for _ in connection.iter() {});
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Timestamp::now().0 - 3 * 3_600_000;
    let point = format!("{ROOM}/T1.level");
    let gateway = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0i64;
            while !stop.load(Ordering::SeqCst) {
                if i % 50 == 0 {
                    publish_record(
                        &client,
                        ROOM,
                        Timestamp::now(),
                        &[
                            ("mains", 1.0),
                            ("voltage_a", 380.0),
                            ("voltage_b", 380.0),
                            ("voltage_c", 380.0),
                            ("smoke", 1.0),
                        ],
                    );
                }
                let t = Timestamp(t0 + 2_000 * i);
                publish_record(
                    &client,
                    &format!("{ROOM}/T1"),
                    t,
                    &[("level", 1.0 + (i % 100) as f64 / 100.0)],
                );
                i += 1;
                std::thread::park_timeout(Duration::from_millis(20));
            }
        })
    };
    let far = t0 + 2_000 * 1_000_000;
    let alarm = format!("{base}/api/v1/alarms/{ROOM}/smoke@room");
    wait_for("the smoke alarm raised", Duration::from_secs(60), || {
        let (_, v) = get(&alarm);
        (v["alarm"]["state"] == "unacked").then_some(())
    });
    wait_for("the level stream stored", Duration::from_secs(60), || {
        (stamps(&base, &point, t0, far).len() >= 300).then_some(())
    });
    let (s, order) = post(
        &format!("{base}/api/v1/workorders"),
        &format!(r#"{{"template":"inspection","room":"{ROOM}"}}"#),
    );
    assert_eq!(s, 201, "{order}");
    let order_id = order["order"]["id"]
        .as_str()
        .or_else(|| order["id"].as_str())
        .unwrap_or_else(|| panic!("no order id in {order}"))
        .to_owned();
    let (s, v) = post(
        &format!("{base}/api/v1/users"),
        r#"{"name":"night-operator","role":"operator","password":"Tide-pool-4417"}"#,
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = post(
        &format!("{base}/api/v1/tokens"),
        r#"{"name":"scada-bridge","role":"viewer"}"#,
    );
    assert_eq!(s, 201, "{v}");
    let api_token = v["token"].as_str().unwrap().to_owned();

    // What is durable now (history reads only durable samples) must be in the backup.
    let durable = stamps(&base, &point, t0, far);
    let work = temp_dir("backup-work");
    let dest = work.join("backup-1");
    let token = admin_token(&base, false);
    let out = cistern(
        "backup-cli",
        &[
            "backup",
            dest.to_str().unwrap(),
            "--url",
            &base,
            "--token",
            &token,
        ],
    );
    assert!(out.status.success(), "{}\n{}", text(&out), node.log_tail());
    assert!(text(&out).contains("history.redb"), "{}", text(&out));
    eprintln!(
        "{} samples durable before the backup\n{}",
        durable.len(),
        text(&out)
    );
    // Ingest went on: more of the stream arrived after the backup.
    let later = stamps(&base, &point, t0, far);
    wait_for(
        "ingest goes on after the backup",
        Duration::from_secs(30),
        || (stamps(&base, &point, t0, far).len() > later.len()).then_some(()),
    );
    assert_eq!(metric(&base, "cistern_backup_total"), 1.0);
    let (_, audit) = get(&format!("{base}/api/v1/audit?action=backup"));
    assert_eq!(
        audit["entries"][0]["ok"], true,
        "the backup is audited: {audit}"
    );

    let out = cistern(
        "backup-verify",
        &["backup", "verify", dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));

    // Restore into a fresh site's data directory; the same directory again is refused (exit
    // 2) and left untouched. The site's node has a broker of its own: nothing new arrives.
    let broker2 = Mosquitto::start("mosquitto-restored");
    let config2 = run_site(
        "backup-restored",
        &fleet,
        &broker2,
        "[store]\ndata_dir = \"data\"\n",
    );
    let data = config2.parent().unwrap().join("data");
    let out = cistern(
        "backup-restore",
        &[
            "restore",
            dest.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let listing = |d: &Path| -> Vec<(String, u64)> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let restored = listing(&data);
    let out = cistern(
        "backup-restore-again",
        &[
            "restore",
            dest.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    assert_eq!(
        listing(&data),
        restored,
        "a refused restore touches nothing"
    );

    stop.store(true, Ordering::SeqCst);
    gateway.join().unwrap();
    let restored_node = Cistern::run("backup-restored-node", &config2).start();
    let base2 = restored_node.http().to_owned();
    let got = stamps(&base2, &point, t0, far);
    let missing: Vec<_> = durable.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "{} of {} samples durable before the backup are missing after the restore (first {:?})\n{}",
        missing.len(),
        durable.len(),
        missing.first(),
        restored_node.log_tail()
    );
    let (_, v) = get(&format!("{base2}/api/v1/alarms/{ROOM}/smoke@room"));
    assert_eq!(v["alarm"]["state"], "unacked", "the standing alarm: {v}");
    let (s, v) = get(&format!("{base2}/api/v1/workorders/{order_id}"));
    assert_eq!(s, 200, "the open work order: {v}");
    let (s, v) = call_as(
        None,
        "POST",
        &format!("{base2}/api/v1/auth/login"),
        Some(r#"{"user":"night-operator","password":"Tide-pool-4417"}"#),
    );
    assert_eq!(s, 200, "the user signs in on the restored node: {v}");
    let (s, v) = call_as(
        Some(&api_token),
        "GET",
        &format!("{base2}/api/v1/rooms"),
        None,
    );
    assert_eq!(s, 200, "the API token works on the restored node: {v}");
    let (_, audit) = get(&format!("{base2}/api/v1/audit?action=restore"));
    assert_eq!(
        audit["entries"][0]["ok"], true,
        "the restore is audited: {audit}"
    );

    // A corrupt copy is refused, naming the file.
    let bad = work.join("corrupt");
    std::fs::create_dir_all(&bad).unwrap();
    for f in ["history.redb", "wal.redb", "manifest.json"] {
        std::fs::copy(dest.join(f), bad.join(f)).unwrap();
    }
    let mut bytes = std::fs::read(bad.join("history.redb")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(bad.join("history.redb"), &bytes).unwrap();
    let out = cistern(
        "backup-verify-bad",
        &["backup", "verify", bad.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("history.redb"), "{}", text(&out));
    let elsewhere = work.join("never");
    let out = cistern(
        "backup-restore-bad",
        &[
            "restore",
            bad.to_str().unwrap(),
            "--data",
            elsewhere.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!elsewhere.exists(), "nothing written from a corrupt backup");

    // Through the API: a destination that exists, or is relative, is refused.
    for (dest, why) in [
        (dest.to_str().unwrap(), "exists"),
        ("relative/dir", "relative"),
    ] {
        let (s, v) = post(
            &format!("{base}/api/v1/admin/backup"),
            &serde_json::json!({ "dest": dest }).to_string(),
        );
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_backup_dest")),
            "{why}: {v}"
        );
    }
}

/// A destination that fills up: the backup fails with a clear error, the partial backup is
/// removed, the failure is counted, and the node goes on ingesting. Needs root (a 16 KiB tmpfs).
#[test]
fn a_backup_destination_that_fills_up_is_refused_and_cleaned_up() {
    let broker = Mosquitto::start("mosquitto-backup-full");
    let fleet = sim::generate_fleet(5, 1);
    let config = run_site(
        "backup-full",
        &fleet,
        &broker,
        "[store]\ndata_dir = \"data\"\n",
    );
    let node = Cistern::run("backup-full", &config).start();
    let base = node.http().to_owned();
    let _fleet = Cistern::simulate("backup-full-sim", broker.addr)
        .rooms(5)
        .seed(1)
        .start();
    wait_for("the fleet ingested", Duration::from_secs(60), || {
        (metric(&base, INGESTED) > 0.0).then_some(())
    });
    // 16 KiB: a fresh redb file alone is larger.
    let small = temp_dir("backup-full-mnt");
    let mount = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&small)
        .status()
        .expect("mount");
    assert!(
        mount.success(),
        "this test mounts a 1 MiB tmpfs: it needs root (as in CI)"
    );
    let dest = small.join("backup");
    let (s, v) = post(
        &format!("{base}/api/v1/admin/backup"),
        &serde_json::json!({ "dest": dest }).to_string(),
    );
    let left: Vec<_> = std::fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let _ = std::process::Command::new("umount").arg(&small).status();
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (500, Some("backup_failed")),
        "{v}"
    );
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("No space left") || message.contains("space"),
        "a clear error: {message}"
    );
    assert!(left.is_empty(), "the partial backup is removed: {left:?}");
    assert_eq!(
        metric(&base, "cistern_backup_failures_total{reason=\"write\"}"),
        1.0
    );
    let (_, audit) = get(&format!("{base}/api/v1/audit?action=backup"));
    assert_eq!(audit["entries"][0]["ok"], false, "{audit}");
    // The node goes on: it ingests, is ready, and a backup to a roomy place works.
    let after_failure = metric(&base, INGESTED);
    wait_for("ingest after the failure", Duration::from_secs(30), || {
        (metric(&base, INGESTED) > after_failure).then_some(())
    });
    let (s, _) = get(&format!("{base}/readyz"));
    assert_eq!(s, 200, "{}", node.log_tail());
    let roomy = temp_dir("backup-full-roomy").join("backup");
    let (s, v) = post(
        &format!("{base}/api/v1/admin/backup"),
        &serde_json::json!({ "dest": roomy }).to_string(),
    );
    assert_eq!(s, 200, "{v}");
    assert!(
        v["manifest"]["files"][0]["sha256"].as_str().is_some(),
        "{v}"
    );
}

/// `[backup] dir, every, keep`: the node makes its backups itself and keeps the newest `keep`.
#[test]
fn scheduled_backups_keep_the_newest() {
    let config = storage_site(
        "backup-schedule",
        "[backup]\ndir = \"backups\"\nevery = \"1s\"\nkeep = 2\n",
    );
    let node = Cistern::run("backup-schedule", &config).start();
    let base = node.http().to_owned();
    let dir = config.parent().unwrap().join("backups");
    let made = try_wait_for(Duration::from_secs(60), || {
        metric(&base, "cistern_backup_total") >= 4.0
    });
    assert!(made, "4 scheduled backups within 60 s\n{}", node.log_tail());
    // Pruning follows each backup: at most `keep`, plus one being made.
    let kept = wait_for("pruned to 2", Duration::from_secs(10), || {
        let n = cistern::backup::schedule::scheduled_in(&dir).len();
        (n == 2).then_some(n)
    });
    assert_eq!(kept, 2);
    for b in cistern::backup::schedule::scheduled_in(&dir) {
        cistern::backup::verify(&b).unwrap();
    }
    assert!(metric(&base, "cistern_backup_last_success_timestamp_seconds") > 1.7e9);
    let (_, audit) = get(&format!("{base}/api/v1/audit?action=backup&user=scheduler"));
    assert!(
        audit["entries"].as_array().is_some_and(|e| e.len() >= 4),
        "{audit}"
    );
}
