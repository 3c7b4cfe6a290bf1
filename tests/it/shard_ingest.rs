//! A shard's MQTT session against a real mosquitto, with an independent publisher (Python's
//! paho-mqtt, a separate process): the broker keeps what a shard's session did not
//! acknowledge — messages published while no session is connected, and those a gated-off
//! (fenced) session had taken without acknowledging — and delivers them to the next session
//! with the same client id; a graceful stop acknowledges what the session had taken, so the
//! next session does not see it again.

use crate::support::Mosquitto;
use cistern::ingest::metrics::IngestMetrics;
use cistern::ingest::mqtt::{self, MqttConfig, MqttSession, SessionEnd, SessionSpec};
use cistern::ingest::{BatchSink, DeliveryError};
use cistern_actors::{Receipt, SystemClock};
use cistern_schemas::reading::{DeviceBatch, IngestSource};
use cistern_schemas::{RoomId, Timestamp};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Records the timestamps of every batch it is given; holds the receipts while `hold` is set
/// (nothing is durable, so nothing is acknowledged), completes them at once otherwise.
#[derive(Default)]
struct Sink {
    seen: Mutex<Vec<i64>>,
    hold: AtomicBool,
    held: Mutex<Vec<Receipt>>,
}

impl Sink {
    fn holding() -> Arc<Self> {
        let s = Self::default();
        s.hold.store(true, Ordering::SeqCst);
        Arc::new(s)
    }

    fn seen(&self) -> Vec<i64> {
        let mut v = self.seen.lock().unwrap().clone();
        v.sort_unstable();
        v
    }

    /// Makes every held batch durable.
    fn release(&self) {
        for r in std::mem::take(&mut *self.held.lock().unwrap()) {
            r.complete();
        }
    }
}

impl BatchSink for Sink {
    fn deliver(
        &self,
        batch: DeviceBatch,
        receipt: Receipt,
    ) -> futures::future::BoxFuture<'_, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.seen
                .lock()
                .unwrap()
                .extend(batch.records.iter().map(|r| r.t.0));
            if self.hold.load(Ordering::SeqCst) {
                self.held.lock().unwrap().push(receipt);
            } else {
                receipt.complete();
            }
            Ok(())
        })
    }

    fn reject(
        &self,
        _source: IngestSource,
        device: &str,
        reason: &'static str,
        detail: &dyn std::fmt::Display,
    ) {
        panic!("{device} rejected ({reason}): {detail}");
    }
}

const PEER: &str = r#"
import json, sys
import paho.mqtt.client as mqtt
port, topic, base, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="it-shard-peer-%d" % base)
c.connect("127.0.0.1", port)
c.loop_start()
infos = []
for i in range(n):
    payload = json.dumps({"devices": {"P1": [{"t": base + i * 1000, "v": {"frequency": 40.0}}]}})
    infos.append(c.publish(topic, payload, qos=1))
for m in infos:
    m.wait_for_publish(timeout=10)
ok = all(m.is_published() for m in infos)
c.loop_stop()
c.disconnect()
print("published" if ok else "not acknowledged by the broker", n)
sys.exit(0 if ok else 1)
"#;

/// Publishes `n` room messages of XM-0001 (QoS 1, pump P1, one record each, stamped `base`,
/// `base` + 1 s, ...) from a separate paho-mqtt process, and waits for the broker's PUBACKs.
/// Returns the timestamps.
async fn publish(broker: SocketAddr, base: i64, n: usize) -> Vec<i64> {
    let args = [
        "-c".to_owned(),
        PEER.to_owned(),
        broker.port().to_string(),
        "cistern/v1/telemetry/XM-0001".to_owned(),
        base.to_string(),
        n.to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(&args)
            .output()
            .expect("python3 with paho-mqtt (ops/test.sh installs it)")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the paho-mqtt publisher failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (0..n as i64).map(|i| base + i * 1000).collect()
}

fn config(broker: SocketAddr) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port: broker.port(),
        keep_alive: Duration::from_secs(5),
        ..MqttConfig::default()
    }
}

/// A shard's session on XM-0001's filters as `client_id`, subscribed when this returns.
async fn session(
    broker: SocketAddr,
    client_id: &str,
    sink: Arc<Sink>,
    gate: Option<Arc<AtomicBool>>,
    shutdown: watch::Receiver<bool>,
) -> MqttSession {
    let room = RoomId::new("XM-0001").unwrap();
    let spec = SessionSpec {
        client_id: client_id.to_owned(),
        filters: mqtt::room_filters(&room).to_vec(),
        gate: gate.map(|g| Arc::new(move || g.load(Ordering::SeqCst)) as Arc<dyn mqtt::AckGate>),
        senders: Arc::new(mqtt::NoGateways),
    };
    let metrics = IngestMetrics::register(&prometheus::Registry::new()).unwrap();
    let mut s = mqtt::spawn_session(
        &config(broker),
        spec,
        sink,
        metrics,
        Arc::new(SystemClock),
        shutdown,
    );
    tokio::time::timeout(Duration::from_secs(15), s.subscribed.wait_for(|s| *s))
        .await
        .expect("the session subscribed within 15 s")
        .unwrap();
    s
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after 15 s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn base() -> i64 {
    // Stamped a minute ago (not refused as future), distinct per call.
    Timestamp::now().0 - 60_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_shard_session_did_not_acknowledge_goes_to_the_next_session_with_its_client_id() {
    let broker = Mosquitto::start("mosquitto-shard-fence");
    let (_stop_all, shutdown) = watch::channel(false);
    let id = mqtt::shard_client_id("it", 7);

    // The owner's session takes five messages but none is durable yet: nothing is acked.
    let owner = Sink::holding();
    let gate = Arc::new(AtomicBool::new(true));
    let first = session(
        broker.addr,
        &id,
        owner.clone(),
        Some(gate.clone()),
        shutdown.clone(),
    )
    .await;
    let sent = publish(broker.addr, base(), 5).await;
    wait_until("the owner took all five", || owner.seen() == sent).await;

    // The owner fences itself: the gate closes, then its batches become durable — too late to
    // be acknowledged. The session drops its connection without a DISCONNECT.
    gate.store(false, Ordering::SeqCst);
    owner.release();
    let end = tokio::time::timeout(Duration::from_secs(10), first.join())
        .await
        .expect("a fenced session ends on its own");
    assert_eq!(end, SessionEnd::Fenced);

    // The next owner connects with the shard's client id and receives all five again.
    let next = Arc::new(Sink::default());
    let second = session(broker.addr, &id, next.clone(), None, shutdown.clone()).await;
    wait_until("the next owner received the five unacknowledged", || {
        next.seen() == sent
    })
    .await;
    // It acknowledged them (durable at once) and stops gracefully: a third session sees only
    // what is published after.
    assert_eq!(
        second.stop(Duration::from_secs(5)).await,
        SessionEnd::Stopped
    );
    let after = Arc::new(Sink::default());
    let third = session(broker.addr, &id, after.clone(), None, shutdown.clone()).await;
    let marker = publish(broker.addr, base() + 500, 1).await;
    wait_until("the marker", || !after.seen().is_empty()).await;
    assert_eq!(
        after.seen(),
        marker,
        "the messages the second session acknowledged are not delivered again"
    );
    assert_eq!(
        third.stop(Duration::from_secs(5)).await,
        SessionEnd::Stopped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_session_stopped_gracefully_acks_what_it_took_and_the_broker_keeps_the_rest() {
    let broker = Mosquitto::start("mosquitto-shard-stop");
    let (_stop_all, shutdown) = watch::channel(false);
    let id = mqtt::shard_client_id("it", 12);

    // The session takes three messages; they are durable only after the stop was asked.
    let sink = Sink::holding();
    let first = session(broker.addr, &id, sink.clone(), None, shutdown.clone()).await;
    let taken = publish(broker.addr, base(), 3).await;
    wait_until("the session took all three", || sink.seen() == taken).await;
    let stopping = tokio::spawn(first.stop(Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopping.is_finished(), "the stop waits for the three");
    sink.release();
    assert_eq!(stopping.await.unwrap(), SessionEnd::Stopped);

    // Published while no session is connected: kept by the broker for the shard's session.
    let offline = publish(broker.addr, base() + 10_000, 4).await;
    let next = Arc::new(Sink::default());
    let second = session(broker.addr, &id, next.clone(), None, shutdown.clone()).await;
    wait_until("the four published while disconnected", || {
        next.seen().len() >= offline.len()
    })
    .await;
    assert_eq!(
        next.seen(),
        offline,
        "exactly the messages published while disconnected: the three taken before the stop \
         were acknowledged by it"
    );
    assert_eq!(
        second.stop(Duration::from_secs(5)).await,
        SessionEnd::Stopped
    );
}

fn counter(metric: &prometheus::IntCounterVec, labels: &[&str]) -> u64 {
    metric.with_label_values(labels).get()
}

/// Through the real registry and router: once a room is stopped on this node, a message for
/// it is refused as not here, is not acknowledged, and ends the session (its shard moved);
/// the next session with the shard's client id receives it — and only it: what the room took
/// before the stop was acknowledged.
#[actix_rt::test]
async fn a_message_for_a_stopped_room_is_not_acknowledged_and_goes_to_the_next_session() {
    use cistern::ingest::router::IngestRouter;
    use cistern_actors::device::DeviceDeps;
    use cistern_actors::{
        ActorConfig, ActorMetrics, FleetRegistry, MemorySnapshotStore, NullLiveFeed, NullSampleSink,
    };
    let broker = Mosquitto::start("mosquitto-shard-moved");
    let (_stop_all, shutdown) = watch::channel(false);
    let id = mqtt::shard_client_id("it", 33);
    let inventory = cistern::lab::sim::generate_fleet(1, 7);
    let room = RoomId::new("XM-0001").unwrap();
    assert_eq!(inventory.rooms[0].id, room);
    let deps = DeviceDeps {
        clock: Arc::new(SystemClock),
        snapshots: Arc::new(MemorySnapshotStore::default()),
        sink: Arc::new(NullSampleSink),
        metrics: ActorMetrics::unregistered().unwrap(),
        config: Arc::new(ActorConfig::default()),
        rules: None,
        live: Arc::new(NullLiveFeed),
        figures: Default::default(),
    };
    let registry = FleetRegistry::start(&inventory, &deps, &[actix::Arbiter::current()]);
    let metrics = IngestMetrics::register(&prometheus::Registry::new()).unwrap();
    let router = Arc::new(IngestRouter::new(
        registry.clone(),
        metrics.clone(),
        Arc::new(SystemClock),
    ));
    let spec = SessionSpec {
        client_id: id.clone(),
        filters: mqtt::room_filters(&room).to_vec(),
        gate: None,
        senders: Arc::new(mqtt::NoGateways),
    };
    let mut owner = mqtt::spawn_session(
        &config(broker.addr),
        spec,
        router,
        metrics.clone(),
        Arc::new(SystemClock),
        shutdown.clone(),
    );
    tokio::time::timeout(Duration::from_secs(15), owner.subscribed.wait_for(|s| *s))
        .await
        .unwrap()
        .unwrap();

    // The room runs here: two messages stored and acknowledged.
    publish(broker.addr, base(), 2).await;
    wait_until("the two messages routed to the room", || {
        counter(&metrics.messages, &["mqtt"]) == 2
    })
    .await;

    // The room's shard moves away; the next message is refused and not acknowledged.
    assert_eq!(registry.stop_rooms(std::slice::from_ref(&room)).await, 1);
    let moved = publish(broker.addr, base() + 5_000, 1).await;
    let end = tokio::time::timeout(Duration::from_secs(10), owner.join())
        .await
        .expect("the session ends once a message of a moved room arrives");
    assert_eq!(end, SessionEnd::NotOwner);
    assert_eq!(counter(&metrics.rejected, &["mqtt", "not_here"]), 1);
    assert_eq!(counter(&metrics.messages, &["mqtt"]), 2);
    assert_eq!(metrics.unstored.get(), 0);
    assert_eq!(metrics.queue_depth.get(), 0);

    // The shard's next owner gets exactly that message.
    let next = Arc::new(Sink::default());
    let second = session(broker.addr, &id, next.clone(), None, shutdown.clone()).await;
    wait_until("the refused message at the next owner", || {
        !next.seen().is_empty()
    })
    .await;
    assert_eq!(
        next.seen(),
        moved,
        "the two acknowledged are not delivered again"
    );
    assert_eq!(
        second.stop(Duration::from_secs(5)).await,
        SessionEnd::Stopped
    );
}
