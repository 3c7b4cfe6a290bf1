//! MQTT ingest: through a real mosquitto (the platform and the simulator as separate processes;
//! a room message acknowledged only once all of it is durable), and in process through the
//! embedded broker — a comms outage replayed with no gap and no duplicate (room messages and
//! per device), and bad input counted without stopping ingest.

use crate::support::{get, run_site, wait_for, Cistern, Mosquitto};
use cistern::config::builtin_profiles;
use cistern::ingest::mqtt::MqttConfig;
use cistern::lab::field::{self, FieldConfig, FieldHandle};
use cistern::lab::sim::FaultKind;
use cistern::lab::{broker, sim};
use cistern::node::{Node, NodeSpec};
use cistern_actors::ports::{Arrival, Receipt, SampleSink};
use cistern_actors::SystemClock;
use cistern_schemas::inventory::Inventory;
use cistern_schemas::reading::Record;
use cistern_schemas::telemetry;
use cistern_schemas::{DeviceId, DeviceKind, RoomId, Timestamp};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A client that connects with the node's own client id and a clean session (a takeover, on a
/// broker without `use_username_as_clientid`) kicks the node off and wipes its persistent
/// session: the node counts the drop and the lost session (alerted on:
/// `CisternMqttSessionLost`), says so in its log, and takes telemetry again.
#[test]
fn a_takeover_of_the_nodes_client_id_is_detected_and_counted() {
    let broker = Mosquitto::start("mosquitto-takeover");
    let config = run_site("takeover", &sim::generate_fleet(2, 3), &broker, "");
    let node = Cistern::run("takeover", &config).start();
    let base = node.http().to_owned();
    let metric = |name: &str| crate::support::metric(&base, name);
    assert_eq!(metric("cistern_ingest_mqtt_sessions_lost_total"), 0.0);
    // paho-mqtt (an independent client) as the intruder: the node's client id, clean session.
    let script = format!(
        "import paho.mqtt.client as m, time\n\
         c = m.Client(m.CallbackAPIVersion.VERSION2, client_id='cistern-it-takeover', clean_session=True)\n\
         c.connect('127.0.0.1', {port})\nc.loop_start()\ntime.sleep(1)\nc.disconnect()\nc.loop_stop()\n",
        port = broker.addr.port()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 with paho-mqtt (ops/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "the node to count the drop and the lost session",
        Duration::from_secs(30),
        || {
            (metric("cistern_ingest_mqtt_disconnects_total") >= 1.0
                && metric("cistern_ingest_mqtt_sessions_lost_total") >= 1.0)
                .then_some(())
        },
    );
    assert!(
        node.log()
            .contains("the broker no longer had this node's persistent session"),
        "{}",
        node.log_tail()
    );
    // Back in service: a simulated gateway's data arrives.
    let _sim = Cistern::simulate("takeover-sim", broker.addr)
        .rooms(2)
        .seed(3)
        .start();
    wait_for("both rooms online again", Duration::from_secs(30), || {
        let (_, rooms) = get(&format!("{base}/api/v1/rooms"));
        (rooms["online"] == 2).then_some(())
    });
}

#[test]
fn cistern_run_ingests_a_simulated_fleet_through_a_real_mosquitto() {
    let broker = Mosquitto::start("mosquitto-run");
    let config = run_site("run", &sim::generate_fleet(5, 3), &broker, "");
    let node = Cistern::run("run", &config).start();
    let base = node.http().to_owned();
    let _sim = Cistern::simulate("simulate", broker.addr)
        .rooms(5)
        .seed(3)
        // per device: the room form is what `cistern bench` and the demo publish
        .arg("--per-device")
        .start();
    let rooms = wait_for(
        "all 5 rooms online through mosquitto",
        Duration::from_secs(20),
        || {
            let (_, rooms) = get(&format!("{base}/api/v1/rooms"));
            (rooms["online"] == 5).then_some(rooms)
        },
    );
    assert_eq!(rooms["count"], 5, "{}", node.log_tail());
    let (_, room) = get(&format!("{base}/api/v1/rooms/XM-0003"));
    let level = &room["tanks"][0]["points"][0];
    assert_eq!(level["name"], "level");
    assert_eq!(level["quality"]["level"], "good", "{room}");
}

/// Records what the actors accept for one device.
#[derive(Debug, Default)]
struct Recorder {
    device: Option<DeviceId>,
    seen: Mutex<Vec<(Arrival, Timestamp)>>,
}

impl SampleSink for Recorder {
    fn accept(&self, device: &DeviceId, arrival: Arrival, records: &[Record], receipt: Receipt) {
        receipt.complete();
        if Some(device) == self.device.as_ref() {
            let level = DeviceKind::Tank.point_index("level").unwrap() as u16;
            let mut seen = self.seen.lock().unwrap();
            for r in records {
                if r.values.iter().any(|v| v.index == level) {
                    seen.push((arrival, r.t));
                }
            }
        }
    }
}

async fn embedded_node(
    inventory: &Inventory,
    sink: Arc<dyn SampleSink>,
    field: Option<FieldHandle>,
) -> (Node, SocketAddr) {
    let broker =
        tokio::task::spawn_blocking(|| broker::start("127.0.0.1:0".parse().unwrap(), 1 << 20))
            .await
            .unwrap()
            .unwrap();
    let client_id = format!("cistern-it-{}", broker.addr.port());
    let mut spec = mqtt_node_spec(inventory, broker.addr, &client_id).await;
    spec.sink = sink;
    if field.is_some() {
        // The simulated field runs faster than real time, so its samples are stamped ahead of
        // the node's clock: accept them rather than refuse them as future-stamped.
        spec.actors.max_future_skew = Duration::from_secs(86_400);
    }
    spec.field = field.map(|f| Arc::new(f) as Arc<dyn cistern::node::FieldSim>);
    let node = Node::start(spec).await.unwrap();
    // Messages published before the node's subscription exists are not the broker's to keep:
    // the tests publish as soon as this returns, so it returns once the node is subscribed.
    assert!(
        node.mqtt_subscribed(Duration::from_secs(30)).await,
        "the node did not subscribe to the embedded broker within 30 s"
    );
    (node, broker.addr)
}

/// A node on `inventory` that ingests from the broker at `broker` as `client_id`.
async fn mqtt_node_spec(inventory: &Inventory, broker: SocketAddr, client_id: &str) -> NodeSpec {
    let mut spec = NodeSpec::new(
        inventory.clone(),
        builtin_profiles().unwrap(),
        Arc::new(SystemClock),
    );
    spec.http = "127.0.0.1:0".parse().unwrap();
    spec.security = crate::support::it_security().await;
    spec.mqtt = Some(MqttConfig {
        host: "127.0.0.1".into(),
        port: broker.port(),
        client_id: client_id.into(),
        ..MqttConfig::default()
    });
    spec
}

async fn publisher(addr: SocketAddr, id: &str) -> AsyncClient {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_max_packet_size(2 << 20, 2 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    client
}

fn counter(node: &Node, name: &str, labels: &[(&str, &str)]) -> f64 {
    node.metrics
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().to_vec())
        .filter(|m| {
            labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            })
        })
        .map(|m| m.get_counter().get_value())
        .sum()
}

async fn wait_async<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn a_comms_outage_is_replayed_with_no_gap_and_no_duplicate() {
    comms_outage_replayed(false).await;
}

#[actix_rt::test]
async fn a_comms_outage_replayed_per_device_has_no_gap_and_no_duplicate() {
    comms_outage_replayed(true).await;
}

/// A one-minute comms loss of a room, its gateway publishing room messages or per device.
async fn comms_outage_replayed(per_device: bool) {
    let inventory = sim::generate_fleet(3, 7);
    let room = RoomId::new("XM-0002").unwrap();
    let tank = DeviceId::new(room.clone(), cistern_schemas::DeviceUnit::Tank(1));
    let recorder = Arc::new(Recorder {
        device: Some(tank.clone()),
        ..Recorder::default()
    });
    let field = FieldHandle::new(&inventory, 7, Timestamp::now());
    let (node, broker) = embedded_node(&inventory, recorder.clone(), Some(field.clone())).await;
    // Ten simulated seconds per wall second: a one-minute outage takes six.
    let config = FieldConfig {
        mqtt: Some(broker),
        speed: 10.0,
        per_device,
        ..FieldConfig::default()
    };
    field::run(
        &field,
        &inventory,
        config,
        HashMap::new(),
        node.shutdown_signal(),
    );

    let count = || recorder.seen.lock().unwrap().len();
    wait_async("first samples", Duration::from_secs(15), || {
        (count() >= 3).then_some(())
    })
    .await;
    field
        .inject(&room, FaultKind::CommsLoss, Duration::from_secs(60))
        .unwrap();
    let outage_start = field.now();
    let outage_end = outage_start + Duration::from_secs(60);
    // Well past the end of the outage, on the simulator's clock, the replay must have landed.
    let until = outage_end + Duration::from_secs(20);
    wait_async("the replay to land", Duration::from_secs(30), || {
        recorder
            .seen
            .lock()
            .unwrap()
            .last()
            .filter(|(_, t)| *t >= until)
            .map(|_| ())
    })
    .await;

    let seen = recorder.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|(a, _)| *a == Arrival::Live),
        "a FIFO replay arrives in order"
    );
    let times: Vec<i64> = seen.iter().map(|(_, t)| t.0).collect();
    assert!(times.first().unwrap() < &outage_start.0 && times.last().unwrap() > &outage_end.0);
    for w in times.windows(2) {
        assert_eq!(
            w[1] - w[0],
            2_000,
            "no gap and no duplicate: {} then {}",
            w[0],
            w[1]
        );
    }
    assert_eq!(
        counter(&node, "cistern_ingest_samples_duplicate_total", &[]),
        0.0
    );

    // A gateway that replays the same data again (or a QoS 1 redelivery) changes nothing.
    let client = publisher(broker, "it-replayer").await;
    let r = field.reading(&room).unwrap();
    let tank_values = &r.devices.iter().find(|(u, _)| *u == tank.unit).unwrap().1;
    let old = Timestamp(times[times.len() - 5]);
    let payload = cistern_schemas::telemetry::encode(
        DeviceKind::Tank,
        &[(old, tank_values.as_slice())],
        true,
    );
    client
        .publish(
            cistern_schemas::telemetry::topic(&tank),
            QoS::AtLeastOnce,
            false,
            payload,
        )
        .await
        .unwrap();
    wait_async(
        "the duplicate to be counted",
        Duration::from_secs(10),
        || (counter(&node, "cistern_ingest_samples_duplicate_total", &[]) >= 4.0).then_some(()),
    )
    .await;
    let again = recorder.seen.lock().unwrap().clone();
    assert!(
        again.iter().filter(|(_, t)| *t == old).count() == 1,
        "the repeated sample is not recorded twice"
    );
    node.stop().await;
}

#[actix_rt::test]
async fn bad_mqtt_input_is_counted_and_logged_and_never_stops_ingest() {
    let inventory = sim::generate_fleet(2, 11);
    let (node, broker) =
        embedded_node(&inventory, Arc::new(cistern_actors::NullSampleSink), None).await;
    let client = publisher(broker, "it-bad-input").await;
    let now = Timestamp::now().0;
    let topic = "cistern/v1/telemetry/XM-0001/P1";
    let bad: Vec<(&str, Vec<u8>)> = vec![
        (topic, b"not json".to_vec()),
        (topic, vec![0xff, 0xfe, 0x00]),
        (
            topic,
            format!(r#"{{"records":[{{"t":{now},"v":{{"frequency":1}}}}],"extra":1}}"#)
                .into_bytes(),
        ),
        (topic, vec![b' '; 300 * 1024]),
        ("cistern/v1/telemetry/XM-0001/Q7", b"{}".to_vec()),
        (
            "cistern/v1/telemetry/XM-9999/P1",
            format!(r#"{{"records":[{{"t":{now},"v":{{"frequency":1}}}}]}}"#).into_bytes(),
        ),
        (
            "cistern/v1/telemetry/XM-0001/P9",
            format!(r#"{{"records":[{{"t":{now},"v":{{"frequency":1}}}}]}}"#).into_bytes(),
        ),
        (
            topic,
            format!(
                r#"{{"records":[{{"t":{now},"v":{{"bogus":1,"running":0.5,"run_hours":-3}}}}]}}"#
            )
            .into_bytes(),
        ),
        (
            topic,
            format!(
                r#"{{"records":[{{"t":{},"v":{{"frequency":1}}}}]}}"#,
                now + 3_600_000
            )
            .into_bytes(),
        ),
    ];
    for (topic, payload) in bad {
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    let good = format!(
        r#"{{"records":[{{"t":{now},"v":{{"frequency":43.5,"running":true,"fault":false}}}}]}}"#
    );
    client
        .publish(topic, QoS::AtLeastOnce, false, good.into_bytes())
        .await
        .unwrap();

    let room = RoomId::new("XM-0001").unwrap();
    let registry = node.registry.clone();
    let mut view = None;
    for _ in 0..200 {
        let v = registry.room_view(&room).await.unwrap();
        if v.pumps[0].derived["frequency_hz"] == 43.5 {
            view = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let view = view.expect("the good message after the bad ones is applied");
    assert_eq!(view.pumps[0].derived["status"], "running");

    let expected = [
        ("malformed", 3.0),
        ("too_large", 1.0),
        ("bad_id", 1.0),
        ("unknown_room", 1.0),
        ("unknown_device", 1.0),
        ("unknown_point", 1.0),
        ("not_digital", 1.0),
        ("negative_counter", 1.0),
        ("future_timestamp", 1.0),
    ];
    let counted = |reason: &str| {
        counter(
            &node,
            "cistern_ingest_rejected_total",
            &[("source", "mqtt"), ("reason", reason)],
        )
    };
    for _ in 0..200 {
        if expected.iter().all(|(reason, n)| counted(reason) >= *n) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (reason, n) in expected {
        assert_eq!(counted(reason), n, "rejections counted under {reason}");
    }
    node.stop().await;
}

/// A burst far larger than every internal queue, through a real mosquitto that lets 1,000
/// messages be in flight: everything arrives (regression: the acker and the poll loop once
/// waited on each other when more acks were pending than rumqttc's request channel held).
#[actix_rt::test]
async fn a_burst_larger_than_every_queue_is_ingested_in_full() {
    let broker = Mosquitto::start("mosquitto-burst");
    let inventory = sim::generate_fleet(50, 5);
    let spec = mqtt_node_spec(&inventory, broker.addr, "cistern-it-burst").await;
    let node = Node::start(spec).await.unwrap();
    assert!(node.mqtt_subscribed(Duration::from_secs(10)).await);
    let client = publisher(broker.addr, "it-burst").await;
    let start = Timestamp::now().0 - 3_600_000;
    let values = vec![1.0; DeviceKind::Tank.points().len()];
    let per_message = DeviceKind::Tank.points().len() as f64;
    let messages = 6_000;
    for i in 0..messages {
        let room = &inventory.rooms[i % 50].id;
        let device = DeviceId::new(room.clone(), cistern_schemas::DeviceUnit::Tank(1));
        let t = Timestamp(start + (i / 50) as i64 * 2_000);
        let payload =
            cistern_schemas::telemetry::encode(DeviceKind::Tank, &[(t, values.as_slice())], false);
        client
            .publish(
                cistern_schemas::telemetry::topic(&device),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .unwrap();
    }
    let expected = messages as f64 * per_message;
    for _ in 0..600 {
        if counter(&node, "cistern_ingest_points_total", &[("source", "mqtt")]) >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        counter(&node, "cistern_ingest_points_total", &[("source", "mqtt")]),
        expected
    );
    node.stop().await;
}

/// Holds every receipt (the samples are never "durable" until the test says so) and counts
/// the points accepted per device.
#[derive(Debug, Default)]
struct Gate {
    held: Mutex<Vec<Receipt>>,
    points: Mutex<HashMap<DeviceId, usize>>,
}

impl SampleSink for Gate {
    fn accept(&self, device: &DeviceId, _arrival: Arrival, records: &[Record], receipt: Receipt) {
        let n: usize = records.iter().map(|r| r.values.len()).sum();
        *self
            .points
            .lock()
            .unwrap()
            .entry(device.clone())
            .or_default() += n;
        self.held.lock().unwrap().push(receipt);
    }
}

/// A room message (all the devices of a simulated room in one PUBLISH) through a real
/// mosquitto is ingested in full, and acknowledged only once the samples of every device batch
/// it yields are durable: the broker lets the node have one unacknowledged message, so the
/// message published after it arrives only once the node has acknowledged it.
#[actix_rt::test]
async fn a_room_message_is_ingested_in_full_and_acknowledged_once_all_of_it_is_durable() {
    let broker = Mosquitto::start_with_inflight("mosquitto-room", 1);
    let inventory = sim::generate_fleet(3, 9);
    let gate = Arc::new(Gate::default());
    let mut spec = mqtt_node_spec(&inventory, broker.addr, "cistern-it-room").await;
    spec.sink = gate.clone();
    let node = Node::start(spec).await.unwrap();
    assert!(node.mqtt_subscribed(Duration::from_secs(10)).await);
    let client = publisher(broker.addr, "it-room-gateway").await;

    let room = RoomId::new("XM-0001").unwrap();
    let now = Timestamp::now();
    let readings = sim::Simulator::new(&inventory, 9, now).readings();
    let reading = readings.iter().find(|r| r.room == room).unwrap();
    let series: Vec<_> = reading
        .devices
        .iter()
        .map(|(u, v)| (*u, vec![(now, v.as_slice())]))
        .collect();
    let payload = telemetry::encode_room(series.iter().map(|(u, r)| (*u, r.as_slice())), false);
    let expected: HashMap<DeviceId, usize> = reading
        .devices
        .iter()
        .map(|(u, v)| {
            let n = v.iter().filter(|v| !v.is_nan()).count();
            (DeviceId::new(room.clone(), *u), n)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(
        expected.len() >= 5,
        "a room of several devices: {expected:?}"
    );
    client
        .publish(
            telemetry::room_topic(&room),
            QoS::AtLeastOnce,
            false,
            payload,
        )
        .await
        .unwrap();
    let batches = wait_async(
        "every device of the room message",
        Duration::from_secs(15),
        || {
            let points = gate.points.lock().unwrap().clone();
            (points == expected).then(|| gate.held.lock().unwrap().len())
        },
    )
    .await;
    assert!(batches >= expected.len(), "a receipt per device batch");

    // The next message (another room's device, per device) waits behind the acknowledgement.
    let other = readings.iter().find(|r| r.room != room).unwrap();
    let (unit, values) = &other.devices[0];
    let marker = DeviceId::new(other.room.clone(), *unit);
    let marker_points = values.iter().filter(|v| !v.is_nan()).count();
    client
        .publish(
            telemetry::topic(&marker),
            QoS::AtLeastOnce,
            false,
            telemetry::encode(unit.kind(), &[(now, values.as_slice())], false),
        )
        .await
        .unwrap();
    let mut held: Vec<Receipt> = std::mem::take(&mut *gate.held.lock().unwrap());
    let last = held.pop().unwrap();
    for receipt in held {
        receipt.complete();
    }
    // All batches but one durable: no acknowledgement, so the broker holds the marker back (a
    // bounded wait for something that must not happen; acked early, it would come in ms).
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !gate.points.lock().unwrap().contains_key(&marker),
        "the room message was acknowledged before all its batches were durable"
    );
    last.complete();
    wait_async(
        "the message after the acknowledged room message",
        Duration::from_secs(10),
        || {
            gate.points
                .lock()
                .unwrap()
                .contains_key(&marker)
                .then_some(())
        },
    )
    .await;
    let total: usize = expected.values().sum();
    assert_eq!(
        counter(&node, "cistern_ingest_points_total", &[("source", "mqtt")]),
        (total + marker_points) as f64
    );
    assert_eq!(
        counter(
            &node,
            "cistern_ingest_rejected_total",
            &[("source", "mqtt")]
        ),
        0.0
    );
    for r in std::mem::take(&mut *gate.held.lock().unwrap()) {
        r.complete();
    }
    node.stop().await;
}
