//! MQTT ingest (rumqttc): subscribes to the telemetry convention of
//! `cistern_schemas::telemetry` with QoS 1 and a persistent session, decodes, routes, acks.
//!
//! Shape: one task polls the rumqttc event loop and does nothing else (rumqtt's rule: never
//! block the poll loop with work); it hands each PUBLISH to one of `workers` decode tasks,
//! chosen by room, so one device's messages stay in order. A worker decodes and routes the
//! batch to its room (waiting if the room's mailbox is full) with a [`Receipt`], and hands the
//! receipt's other end to the acker. PUBACKs (manual acks) are sent by the acker strictly in
//! the order the PUBLISHes arrived, each once its samples are durable (the historian completes
//! the receipt after its write-ahead commit, within `[store] flush_every`): a message the
//! broker was told is safe survives a `kill -9`; one that was not is re-delivered by the
//! broker from our persistent session. MQTT 3.1.1 requires in-order acknowledgements (rumqttd
//! drops a session that breaks the rule), while decoding still runs in parallel.
//!
//! Acknowledging after the flush keeps about `flush_every` × message rate messages in flight:
//! the broker's per-client in-flight limit must allow it (mosquitto `max_inflight_messages`,
//! rumqttd `max_inflight_count`; see ops/). A receipt dropped without completing (an actor
//! crashed while applying the batch) is counted in `cistern_ingest_unstored_total`, logged,
//! and acknowledged: holding it back would stall the session behind it.
//!
//! Backpressure is the broker's QoS 1 in-flight window: a broker sends a client only so many
//! unacknowledged messages (mosquitto's `max_inflight_messages`; never more than 65,535, the
//! packet-id space), so when the workers fall behind, our acks lag and the broker holds the
//! rest in our persistent session — nothing is dropped. The poll task itself must never wait
//! on the pipeline: acks leave through the event loop it polls, and rumqttc serves network
//! reads before queued requests, so a poll task waiting for room downstream would stop the
//! very acks that make room (this deadlocked at 2,100 rooms with bounded queues). The internal
//! queues are therefore unbounded, bounded in fact by the in-flight window, and measured by
//! `cistern_ingest_mqtt_queue_depth`. Rejected payloads are acknowledged too (counted and
//! logged): a broker that redelivered garbage forever would stall the session.

use super::{BatchSink, DeliveryError};
use crate::ingest::metrics::IngestMetrics;
use cistern_actors::{Clock, Receipt};
use cistern_schemas::reading::IngestSource;
use cistern_schemas::telemetry::{self, PayloadLimits};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Most QoS 1 messages that can await our acknowledgement at once (MQTT 3.1.1 packet ids).
const MAX_UNACKED: usize = u16::MAX as usize;
use tokio::task::JoinHandle;

/// `[mqtt]` in the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id of this node's persistent session.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Payloads larger than this are rejected (and counted) without being parsed.
    pub max_payload_bytes: usize,
    /// Decode tasks; a room's messages always go to the same one.
    pub workers: usize,
    /// QoS 1 messages this client may have in flight to the broker (it publishes little).
    pub inflight: u16,
    /// Longest wait between reconnection attempts.
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: "cistern-node-1".into(),
            username: None,
            password: None,
            keep_alive: Duration::from_secs(30),
            max_payload_bytes: PayloadLimits::default().max_bytes,
            workers: 2,
            inflight: 1000,
            reconnect_max: Duration::from_secs(30),
        }
    }
}

/// A running MQTT ingest.
#[derive(Debug)]
pub struct MqttIngest {
    /// The poll task, the acker and the decode workers.
    pub tasks: Vec<JoinHandle<()>>,
    /// Turns true once the telemetry subscription is in place (and back to false while the
    /// connection is down).
    pub subscribed: watch::Receiver<bool>,
}

/// How a worker tells the acker it is done with a message: with the receipt's end to wait on
/// when the message was delivered, without when it was rejected (nothing to store).
type Done = Option<oneshot::Receiver<()>>;
/// A message handed to a decode worker.
type Job = (Publish, oneshot::Sender<Done>);

/// Starts the MQTT ingest. It stops when `shutdown` turns true.
pub fn spawn(
    config: &MqttConfig,
    sink: Arc<dyn BatchSink>,
    metrics: IngestMetrics,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
) -> MqttIngest {
    let mut opts = MqttOptions::new(&config.client_id, &config.host, config.port);
    opts.set_keep_alive(config.keep_alive)
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(config.inflight.max(1))
        // Accept packets well above our payload limit so that an oversized payload is
        // rejected by us (counted, acked) instead of killing the connection in the client.
        .set_max_packet_size(
            config.max_payload_bytes.saturating_mul(4).max(1 << 20),
            64 * 1024,
        );
    if let (Some(u), Some(p)) = (&config.username, &config.password) {
        opts.set_credentials(u, p);
    }
    let limits = PayloadLimits {
        max_bytes: config.max_payload_bytes,
        ..PayloadLimits::default()
    };
    let workers = config.workers.max(1);
    // Acks wait in rumqttc's request channel until the poll task's next turn of the event
    // loop: it must hold a full in-flight window of them without ever making the acker wait.
    let (client, eventloop) = AsyncClient::new(opts, MAX_UNACKED + 256);
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        tasks.push(tokio::spawn(worker(
            rx,
            sink.clone(),
            metrics.clone(),
            clock.clone(),
            limits,
        )));
    }
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    tasks.push(tokio::spawn(acker(ack_rx, client.clone(), metrics.clone())));
    let (subscribed_tx, subscribed) = watch::channel(false);
    let poll = Poll {
        client,
        senders,
        acks: ack_tx,
        metrics,
        reconnect_max: config.reconnect_max,
        subscribed: subscribed_tx,
    };
    tasks.push(tokio::spawn(poll.run(eventloop, shutdown)));
    MqttIngest { tasks, subscribed }
}

/// Which worker a topic goes to: by room, so a device's messages keep their order.
fn worker_for(topic: &str, workers: usize) -> usize {
    let room = topic
        .strip_prefix(telemetry::TOPIC_PREFIX)
        .and_then(|r| r.split('/').nth(1))
        .unwrap_or(topic);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in room.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % workers as u64) as usize
}

/// The poll task's state.
struct Poll {
    client: AsyncClient,
    senders: Vec<mpsc::UnboundedSender<Job>>,
    acks: mpsc::UnboundedSender<(Publish, oneshot::Receiver<Done>)>,
    metrics: IngestMetrics,
    reconnect_max: Duration,
    subscribed: watch::Sender<bool>,
}

impl Poll {
    async fn run(self, mut eventloop: rumqttc::EventLoop, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let event = tokio::select! {
                _ = shutdown.changed() => break,
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::from_millis(100);
                    tracing::info!(
                        session_present = ack.session_present,
                        "connected to the MQTT broker"
                    );
                    // A persistent session keeps our subscription; subscribe again only if the
                    // broker lost it.
                    if ack.session_present {
                        let _ = self.subscribed.send(true);
                    } else if let Err(error) = self
                        .client
                        .try_subscribe(telemetry::TOPIC_FILTER, QoS::AtLeastOnce)
                    {
                        tracing::error!(%error, "could not subscribe to telemetry");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    tracing::info!(filter = telemetry::TOPIC_FILTER, "subscribed to telemetry");
                    let _ = self.subscribed.send(true);
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let i = worker_for(&publish.topic, self.senders.len());
                    let (done, wait) = oneshot::channel();
                    self.metrics.queue_depth.inc();
                    // Never wait here (see the module doc): the broker's in-flight window bounds
                    // what we hold.
                    let queued = self.acks.send((publish.clone(), wait)).is_ok()
                        && self.senders[i].send((publish, done)).is_ok();
                    if !queued {
                        tracing::error!("MQTT decode pipeline stopped; ingest stops");
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    let _ = self.subscribed.send(false);
                    tracing::warn!(%error, retry_in = ?backoff, "MQTT connection failed");
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.reconnect_max);
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.disconnect()).await;
    }
}

/// Acknowledges messages in arrival order, each once its samples are durable.
async fn acker(
    mut rx: mpsc::UnboundedReceiver<(Publish, oneshot::Receiver<Done>)>,
    client: AsyncClient,
    metrics: IngestMetrics,
) {
    while let Some((publish, done)) = rx.recv().await {
        // A worker that stopped without signalling has stopped ingest: don't ack what it lost.
        let Ok(durable) = done.await else {
            break;
        };
        if let Some(durable) = durable {
            if durable.await.is_err() {
                metrics.unstored.inc();
                tracing::error!(topic = %publish.topic, "MQTT message acknowledged although its samples were not stored (see cistern_ingest_unstored_total)");
            }
        }
        if let Err(error) = client.ack(&publish).await {
            tracing::warn!(%error, "could not acknowledge an MQTT message");
        }
    }
}

async fn worker(
    mut rx: mpsc::UnboundedReceiver<Job>,
    sink: Arc<dyn BatchSink>,
    metrics: IngestMetrics,
    clock: Arc<dyn Clock>,
    limits: PayloadLimits,
) {
    while let Some((publish, done)) = rx.recv().await {
        metrics.queue_depth.dec();
        let durable = handle(&publish, sink.as_ref(), clock.as_ref(), &limits).await;
        let _ = done.send(durable);
    }
}

/// Decodes one PUBLISH and routes it; every failure is counted and logged by the sink. Returns
/// the end of the receipt to wait on before acknowledging, if there is anything to store.
async fn handle(
    publish: &Publish,
    sink: &dyn BatchSink,
    clock: &dyn Clock,
    limits: &PayloadLimits,
) -> Done {
    let topic: String = publish.topic.chars().take(128).collect();
    let device = match telemetry::parse_topic(&publish.topic) {
        Ok(d) => d,
        Err(e) => {
            sink.reject(IngestSource::Mqtt, &topic, e.label(), &e);
            return None;
        }
    };
    let decoded = match telemetry::decode(device.clone(), &publish.payload, clock.now(), limits) {
        Ok(d) => d,
        Err(e) => {
            sink.reject(IngestSource::Mqtt, &device.to_string(), e.label(), &e);
            return None;
        }
    };
    for r in &decoded.rejections {
        sink.reject(IngestSource::Mqtt, &device.to_string(), r.label(), r);
    }
    if decoded.batch.records.is_empty() {
        return None;
    }
    let (receipt, durable) = Receipt::new();
    // Routing errors (unknown room or device) are counted by the sink itself; the receipt
    // went with the batch, so nothing waits.
    match sink.deliver(decoded.batch, receipt).await {
        Ok(()) => Some(durable),
        Err(DeliveryError::UnknownRoom(_) | DeliveryError::UnknownDevice { .. }) => None,
        Err(_) => Some(durable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_always_goes_to_the_same_worker() {
        let a = worker_for("cistern/v1/telemetry/XM-0001/P1", 4);
        assert_eq!(a, worker_for("cistern/v1/telemetry/XM-0001/T1", 4));
        assert_eq!(a, worker_for("cistern/v1/telemetry/XM-0001/room", 4));
        let spread: std::collections::HashSet<_> = (1..100)
            .map(|i| worker_for(&format!("cistern/v1/telemetry/XM-{i:04}/room"), 4))
            .collect();
        assert_eq!(spread.len(), 4);
        assert!(worker_for("garbage", 4) < 4);
    }
}
