//! The strict crash test of the historian issue: `cistern run` is killed with SIGKILL in the
//! middle of an MQTT stream and restarted; every sample published ends up in history exactly
//! once. Cistern acknowledges a message to the broker only once its samples are durable, so
//! what it had acknowledged survives the kill, and the real mosquitto re-delivers the rest
//! from the persistent session (an acknowledgement sent too early would lose the samples of
//! the last flush interval, and this test would see the hole).

use crate::support::{get, run_site, try_wait_for, wait_for, Cistern, Mosquitto};
use cistern::lab::sim;
use cistern_schemas::telemetry;
use cistern_schemas::{DeviceId, DeviceKind, Timestamp};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const N: usize = 4_000;

fn level(i: usize) -> f64 {
    1.0 + (i % 1000) as f64 / 1000.0
}

#[test]
fn kill_9_during_ingest_loses_no_acknowledged_sample_and_duplicates_none() {
    let broker = Mosquitto::start("mosquitto-crash");
    let config = run_site(
        "crash",
        &sim::generate_fleet(2, 11),
        &broker,
        "[store]\ndata_dir = \"data\"\n[historian]\nflush_every = \"250ms\"\nseal_every = \"3s\"\n",
    );
    let mut node = Cistern::run("crash", &config).start();
    let base = node.http().to_owned();
    // `ready` means subscribed to telemetry: what is published from now on reaches it.

    let device: DeviceId = "XM-0001/T1".parse().unwrap();
    let t0 = Timestamp::now().0 - 3 * 3_600_000;
    let point = "XM-0001/T1.level";
    let history = format!(
        "{base}/api/v1/history?point={point}&from={t0}&to={}",
        t0 + 2_000 * N as i64
    );

    // Publish N one-sample messages, QoS 1, at about 1,000 a second; kill cistern halfway.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let acked = acked.clone();
        let addr = broker.addr;
        let topic = telemetry::topic(&device);
        rt.spawn(async move {
            let mut opts = MqttOptions::new("crash-gateway", addr.ip().to_string(), addr.port());
            opts.set_inflight(500);
            let (client, mut eventloop) = AsyncClient::new(opts, 1_000);
            tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
            for i in 0..N {
                let t = Timestamp(t0 + 2_000 * i as i64);
                let payload = telemetry::encode(DeviceKind::Tank, &[(t, &[level(i)])], false);
                client
                    .publish(&topic, QoS::AtLeastOnce, false, payload)
                    .await
                    .unwrap();
                if i % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
    };
    let stored_before = wait_for(
        "part of the stream stored before the kill",
        Duration::from_secs(30),
        || {
            let (_, v) = get(&history);
            let n = v["series"][0]["samples"].as_array().map_or(0, Vec::len);
            (n >= N / 3).then_some(n)
        },
    );
    node.kill9();
    assert!(
        stored_before < N,
        "the kill must happen during ingest ({stored_before} of {N} stored)"
    );

    rt.block_on(publisher).unwrap();
    wait_for(
        "mosquitto acknowledged every publish",
        Duration::from_secs(30),
        || (acked.load(Ordering::SeqCst) >= N).then_some(()),
    );

    // Restart on the same data directory: the broker re-delivers what was not acknowledged.
    node.restart();
    let history = history.replace(&base, node.http());
    // On a timeout, say how far it got and which samples are missing: a slow catch-up and a
    // hole in history are different defects.
    let mut seen = Vec::new();
    let mut last = (0, serde_json::Value::Null);
    let complete = try_wait_for(Duration::from_secs(120), || {
        last = get(&history);
        let v = &last.1;
        seen = v["series"][0]["samples"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        seen.len() >= N
    });
    let samples = seen;
    if !complete {
        let stamps: std::collections::HashSet<i64> =
            samples.iter().filter_map(|s| s[0].as_i64()).collect();
        let missing: Vec<usize> = (0..N)
            .filter(|i| !stamps.contains(&(t0 + 2_000 * *i as i64)))
            .collect();
        panic!(
            "after 120 s, {} of {N} samples in history ({} before the kill, {} acknowledged \
             by the broker); missing {} from index {:?} to {:?}; the last answer was {} {:.300}\n{}",
            samples.len(),
            stored_before,
            acked.load(Ordering::SeqCst),
            missing.len(),
            missing.first(),
            missing.last(),
            last.0,
            last.1.to_string(),
            node.log_tail()
        );
    }
    assert_eq!(samples.len(), N, "{}", node.log_tail());
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(s[0].as_i64().unwrap(), t0 + 2_000 * i as i64, "sample {i}");
        assert_eq!(s[1].as_f64().unwrap(), level(i), "sample {i}");
    }

    // A clean stop writes the actors' snapshots; a node started again with no field data
    // rehydrates the tank from them.
    node.terminate();
    node.restart();
    let (_, room) = node.get("/api/v1/rooms/XM-0001");
    let tank_level = &room["tanks"][0]["points"][0];
    assert_eq!(tank_level["name"], "level", "{room}");
    assert_eq!(
        tank_level["value"].as_f64(),
        Some(level(N - 1)),
        "{room}\n{}",
        node.log_tail()
    );
}
