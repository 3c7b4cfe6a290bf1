//! MQTT ingest (rumqttc): subscribes to the telemetry convention of
//! `cistern_schemas::telemetry` (room messages and per-device messages) with QoS 1 and a
//! persistent session, decodes, routes, acks.
//!
//! Shape: one task polls the rumqttc event loop and does nothing else (rumqtt's rule: never
//! block the poll loop with work); it hands each PUBLISH to one of `workers` decode tasks,
//! chosen by room, so one device's messages stay in order (whichever form carries them). A
//! worker decodes and routes each device batch of the message to its room (waiting if the
//! room's mailbox is full), each with a [`Receipt`] of its own, and hands the receipts' other
//! ends to the acker. PUBACKs (manual acks) are sent by the acker strictly in the order the
//! PUBLISHes arrived, each once the samples of all its batches are durable (the historian completes
//! the receipt after its write-ahead commit, within `[historian] flush_every`): a message the
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
use cistern_schemas::telemetry::{self, PayloadLimits, TelemetryTopic};
use cistern_schemas::RoomId;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS, SubscribeFilter};
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
    /// `[mqtt.tls]`: TLS to the broker, with this node's client certificate when the broker
    /// asks for one (mTLS).
    pub tls: Option<crate::tls::ClientTlsConfig>,
    /// Whether telemetry must come through a gateway's identity topic
    /// (`cistern/v1/gw/{gateway}/telemetry/{room}…`, see [`crate::auth::gateways`]): true
    /// refuses (and counts) the plain form, whose sender the platform cannot know.
    pub require_gateway_identity: bool,
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
            tls: None,
            require_gateway_identity: false,
        }
    }
}

impl MqttConfig {
    /// Checks that the TLS files load: the node does not start on a configuration it could
    /// not connect with.
    pub fn check_tls(&self) -> Result<(), crate::tls::TlsError> {
        self.tls
            .as_ref()
            .map_or(Ok(()), |t| t.client_config().map(drop))
    }

    /// Client options for `client_id` on this broker: address, credentials and TLS. Should the
    /// TLS files have become unreadable since [`check_tls`](Self::check_tls), the connection
    /// trusts no server (every attempt fails, logged) — it never falls back to plain MQTT.
    pub fn options(&self, client_id: &str) -> MqttOptions {
        let mut opts = MqttOptions::new(client_id, &self.host, self.port);
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            opts.set_credentials(u, p);
        }
        if let Some(tls) = &self.tls {
            let config = tls.client_config().unwrap_or_else(|e| {
                tracing::error!(error = %e, "MQTT TLS files unusable: no broker is trusted until they are fixed");
                crate::tls::trusting_nobody()
            });
            opts.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::new(config)),
            ));
        }
        opts
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

/// Whether the session may still acknowledge messages. The acker asks before every ack, the
/// workers before every message, the poll task on every PUBLISH and every
/// [`GATE_CHECK_EVERY`]: once it answers false the session stops acknowledging, stops routing,
/// and drops its connection without a DISCONNECT — the broker keeps every message it was not
/// told is safe in the persistent session, for the next session with the same client id (the
/// shard's next owner). A closed gate stays closed for the session: it is never reopened.
pub trait AckGate: Send + Sync + 'static {
    fn may_ack(&self) -> bool;
}

impl<F: Fn() -> bool + Send + Sync + 'static> AckGate for F {
    fn may_ack(&self) -> bool {
        self()
    }
}

/// How often a session's poll task asks its gate while no message arrives.
pub const GATE_CHECK_EVERY: Duration = Duration::from_millis(100);

/// The topic filters of one room: its room messages and its per-device messages, in the
/// plain form and in the gateway identity form.
pub fn room_filters(room: &RoomId) -> [String; 4] {
    let base = format!("{}/{room}", telemetry::TOPIC_PREFIX);
    let devices = format!("{base}/+");
    let gateway = format!("{}/+/telemetry/{room}", telemetry::GATEWAY_PREFIX);
    let gateway_devices = format!("{gateway}/+");
    [base, devices, gateway, gateway_devices]
}

/// Every telemetry filter of a node that takes all rooms.
pub fn all_filters() -> Vec<String> {
    telemetry::TOPIC_FILTERS
        .iter()
        .chain(telemetry::GATEWAY_TOPIC_FILTERS.iter())
        .map(|f| (*f).to_owned())
        .collect()
}

/// Why a gateway's message was refused: the platform's half of device identity (the broker's
/// half lets a gateway publish only under its own name).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SenderRefusal {
    #[error("gateway {0:?} is not enrolled")]
    Unknown(String),
    #[error("gateway {0:?} is disabled (revoked)")]
    Disabled(String),
    #[error("gateway {gateway:?} is not enrolled for room {room}")]
    NotItsRoom { gateway: String, room: String },
    #[error("no sender: this node takes telemetry only on gateway identity topics ({}/<gateway>/telemetry/…)", telemetry::GATEWAY_PREFIX)]
    Anonymous,
}

impl SenderRefusal {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unknown(_) => "gateway_unknown",
            Self::Disabled(_) => "gateway_disabled",
            Self::NotItsRoom { .. } => "gateway_room",
            Self::Anonymous => "no_identity",
        }
    }
}

/// Who may send telemetry for which room: the enrolled gateways (`crate::auth`).
pub trait SenderCheck: Send + Sync + std::fmt::Debug + 'static {
    /// Whether `gateway` may send for `room`.
    fn check(&self, gateway: &str, room: &RoomId) -> Result<(), SenderRefusal>;
}

/// No gateway is enrolled anywhere: every gateway topic is refused (a node without identities).
#[derive(Debug)]
pub struct NoGateways;

impl SenderCheck for NoGateways {
    fn check(&self, gateway: &str, _room: &RoomId) -> Result<(), SenderRefusal> {
        Err(SenderRefusal::Unknown(gateway.to_owned()))
    }
}

/// The client id of a shard's persistent session in cluster `cluster`
/// (`cistern-<cluster>-shard-<NN>`): every owner of the shard, in turn, uses the same one.
pub fn shard_client_id(cluster: &str, shard: u32) -> String {
    format!("cistern-{cluster}-shard-{shard:02}")
}

/// What one session subscribes to, as whom, and under which gate.
#[derive(Clone)]
pub struct SessionSpec {
    /// The client id of the persistent session (the broker keeps what it did not ack).
    pub client_id: String,
    /// Topic filters (QoS 1). Empty: subscribe to nothing new (the persistent session keeps
    /// what an earlier connection subscribed to).
    pub filters: Vec<String>,
    /// None: acknowledge always (a single node).
    pub gate: Option<Arc<dyn AckGate>>,
    /// Who may send for which room (the enrolled gateways).
    pub senders: Arc<dyn SenderCheck>,
}

impl std::fmt::Debug for SessionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSpec")
            .field("client_id", &self.client_id)
            .field("filters", &self.filters)
            .field("gated", &self.gate.is_some())
            .field("senders", &self.senders)
            .finish()
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Stopped on request ([`MqttSession::stop`]): the messages it had taken were acknowledged
    /// once durable, then it sent DISCONNECT; the rest stays with the broker.
    Stopped,
    /// The node is shutting down: DISCONNECT at once; what was not acknowledged stays.
    Shutdown,
    /// Its gate closed: acknowledgements stopped and the connection was dropped without
    /// DISCONNECT.
    Fenced,
    /// A message for a room this node does not run arrived (its shard moved): handled as a
    /// closed gate — the message and those after it are not acknowledged.
    NotOwner,
    /// The decode pipeline stopped unexpectedly: the connection was dropped.
    Failed,
}

/// One running MQTT session (a shard's, in a cluster).
#[derive(Debug)]
pub struct MqttSession {
    client_id: String,
    /// Turns true once the subscriptions are in place (false while the connection is down).
    pub subscribed: watch::Receiver<bool>,
    ended: watch::Receiver<Option<SessionEnd>>,
    stop: watch::Sender<Option<Duration>>,
    tasks: Vec<JoinHandle<()>>,
}

impl MqttSession {
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Why the session ended, once it has (a closed gate ends it on its own).
    pub fn ended(&self) -> Option<SessionEnd> {
        *self.ended.borrow()
    }

    /// Stops the session gracefully: it takes no new message, acknowledges those it took once
    /// they are durable (waiting up to `drain`), sends DISCONNECT, and its tasks end. What it
    /// did not acknowledge stays with the broker for the next session with its client id.
    /// Returns how it ended (not `Stopped` when it had ended already, e.g. fenced).
    pub async fn stop(self, drain: Duration) -> SessionEnd {
        let _ = self.stop.send(Some(drain));
        self.join().await
    }

    /// Waits for the session's end (a closed gate, a shutdown, a stop) and for its tasks.
    pub async fn join(self) -> SessionEnd {
        for task in self.tasks {
            let _ = task.await;
        }
        let end = *self.ended.borrow();
        end.unwrap_or(SessionEnd::Failed)
    }
}

/// How a worker tells the acker it is done with a message: with the ends of the receipts to
/// wait on, one per batch delivered (none when everything was rejected: nothing to store), or
/// that the message must not be acknowledged at all (and the session must end).
#[derive(Debug)]
enum Done {
    Ack(Vec<oneshot::Receiver<()>>),
    Refuse(SessionEnd),
}

/// What a decode worker checks a message against: its size limits and its sender.
#[derive(Clone, Debug)]
struct Inbound {
    limits: PayloadLimits,
    senders: Arc<dyn SenderCheck>,
    /// Plain topics (no sender) are refused.
    require_identity: bool,
}

/// A message handed to a decode worker.
type Job = (Publish, oneshot::Sender<Done>);

/// Starts the MQTT ingest of a single node: the configured client id, every room's
/// telemetry. It stops when `shutdown` turns true.
pub fn spawn(
    config: &MqttConfig,
    senders: Arc<dyn SenderCheck>,
    sink: Arc<dyn BatchSink>,
    metrics: IngestMetrics,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
) -> MqttIngest {
    let session = SessionSpec {
        client_id: config.client_id.clone(),
        filters: all_filters(),
        gate: None,
        senders,
    };
    // Nobody stops this one but the shutdown (a dropped stop handle asks nothing).
    let MqttSession {
        subscribed, tasks, ..
    } = spawn_session(config, session, sink, metrics, clock, shutdown);
    MqttIngest { tasks, subscribed }
}

/// Starts one MQTT session (`session`: client id, filters, gate) with the broker settings of
/// `config` (its own `client_id` is not used). It ends on [`MqttSession::stop`], when its gate
/// closes, or at once when `shutdown` turns true.
pub fn spawn_session(
    config: &MqttConfig,
    session: SessionSpec,
    sink: Arc<dyn BatchSink>,
    metrics: IngestMetrics,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
) -> MqttSession {
    let mut opts = config.options(&session.client_id);
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
    let inbound = Inbound {
        limits: PayloadLimits {
            max_bytes: config.max_payload_bytes,
            ..PayloadLimits::default()
        },
        senders: session.senders.clone(),
        require_identity: config.require_gateway_identity,
    };
    let gate: Arc<dyn AckGate> = session.gate.clone().unwrap_or_else(|| Arc::new(|| true));
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
            inbound.clone(),
            gate.clone(),
        )));
    }
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let (abort_tx, abort_rx) = mpsc::unbounded_channel();
    let (acked_tx, acked_rx) = oneshot::channel();
    tasks.push(tokio::spawn(acker(
        ack_rx,
        client.clone(),
        metrics.clone(),
        shutdown.clone(),
        gate.clone(),
        abort_tx,
        acked_tx,
    )));
    let (subscribed_tx, subscribed) = watch::channel(false);
    let (ended_tx, ended) = watch::channel(None);
    let (stop, stop_rx) = watch::channel(None);
    let poll = Poll {
        client,
        senders,
        acks: ack_tx,
        metrics,
        reconnect_max: config.reconnect_max,
        subscribed: subscribed_tx,
        filters: session.filters,
        gate,
        client_id: session.client_id.clone(),
    };
    tasks.push(tokio::spawn(async move {
        let end = poll
            .run(eventloop, shutdown, stop_rx, abort_rx, acked_rx)
            .await;
        let _ = ended_tx.send(Some(end));
    }));
    MqttSession {
        client_id: session.client_id,
        subscribed,
        ended,
        stop,
        tasks,
    }
}

/// Which worker a topic goes to: by room, so a device's messages keep their order.
fn worker_for(topic: &str, workers: usize) -> usize {
    let room = match topic
        .strip_prefix(telemetry::GATEWAY_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
    {
        // `{gateway}/telemetry/{room}…`
        Some(rest) => rest.split('/').nth(2),
        None => topic
            .strip_prefix(telemetry::TOPIC_PREFIX)
            .and_then(|r| r.split('/').nth(1)),
    }
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
    filters: Vec<String>,
    gate: Arc<dyn AckGate>,
    client_id: String,
}

/// Resolves with the drain time once a stop is asked; never when the handle is gone.
async fn stop_asked(stop: &mut watch::Receiver<Option<Duration>>) -> Duration {
    let asked = stop
        .wait_for(Option::is_some)
        .await
        .map(|d| d.unwrap_or_default());
    match asked {
        Ok(d) => d,
        Err(_) => std::future::pending().await,
    }
}

impl Poll {
    async fn run(
        self,
        mut eventloop: rumqttc::EventLoop,
        mut shutdown: watch::Receiver<bool>,
        mut stop: watch::Receiver<Option<Duration>>,
        mut abort: mpsc::UnboundedReceiver<SessionEnd>,
        acked: oneshot::Receiver<()>,
    ) -> SessionEnd {
        let id = self.client_id.clone();
        let mut backoff = Duration::from_millis(100);
        let mut gate_check = tokio::time::interval(GATE_CHECK_EVERY);
        gate_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let drain = loop {
            let event = tokio::select! {
                _ = shutdown.changed() => break None,
                d = stop_asked(&mut stop) => break Some(d),
                Some(end) = abort.recv() => return self.drop_connection(end),
                _ = gate_check.tick() => {
                    if !self.gate.may_ack() {
                        return self.drop_connection(SessionEnd::Fenced);
                    }
                    continue;
                }
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::from_millis(100);
                    tracing::info!(
                        client_id = %id,
                        session_present = ack.session_present,
                        "connected to the MQTT broker"
                    );
                    // A persistent session keeps our subscriptions, and is ready at once. We
                    // subscribe on every connection all the same (re-subscribing to a filter
                    // only replaces it): a session made by an older node that knew only the
                    // per-device filter gains the room filter.
                    if ack.session_present || self.filters.is_empty() {
                        let _ = self.subscribed.send(true);
                    }
                    if !self.filters.is_empty() {
                        let filters = (self.filters.iter())
                            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                        if let Err(error) = self.client.try_subscribe_many(filters) {
                            tracing::error!(client_id = %id, %error, "could not subscribe to telemetry");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let refused = ack
                        .return_codes
                        .iter()
                        .filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                        .count();
                    if refused > 0 {
                        tracing::error!(
                            client_id = %id,
                            filters = ?self.filters,
                            refused,
                            "the broker refused a telemetry subscription (check its ACL)"
                        );
                    } else {
                        tracing::info!(
                            client_id = %id,
                            filters = self.filters.len(),
                            "subscribed to telemetry"
                        );
                    }
                    let _ = self.subscribed.send(true);
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if !self.gate.may_ack() {
                        return self.drop_connection(SessionEnd::Fenced);
                    }
                    let i = worker_for(&publish.topic, self.senders.len());
                    let (done, wait) = oneshot::channel();
                    self.metrics.queue_depth.inc();
                    // Never wait here (see the module doc): the broker's in-flight window bounds
                    // what we hold.
                    let queued = self.acks.send((publish.clone(), wait)).is_ok()
                        && self.senders[i].send((publish, done)).is_ok();
                    if !queued {
                        // The job never reached a worker: it leaves the queue here.
                        self.metrics.queue_depth.dec();
                        tracing::error!(client_id = %id, "MQTT decode pipeline stopped; ingest stops");
                        return self.drop_connection(SessionEnd::Failed);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    let _ = self.subscribed.send(false);
                    tracing::warn!(client_id = %id, %error, retry_in = ?backoff, "MQTT connection failed");
                    tokio::select! {
                        _ = shutdown.changed() => break None,
                        d = stop_asked(&mut stop) => break Some(d),
                        Some(end) = abort.recv() => return self.drop_connection(end),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.reconnect_max);
                }
            }
        };
        let Poll {
            client,
            senders,
            acks,
            subscribed,
            gate,
            ..
        } = self;
        let end = match drain {
            None => SessionEnd::Shutdown,
            Some(drain) => {
                // A graceful stop: no new message is taken (what arrives now is not ours to
                // acknowledge: the broker keeps it), the workers finish what they have, and the
                // acker acknowledges it once durable; acks leave through the event loop, so it
                // is polled meanwhile.
                //
                // The DISCONNECT is queued behind the last acknowledgement (by a task that waits
                // for the acker), and the loop polls until it is out: the event loop's poll is
                // never dropped half-way for the acker's signal — rumqttc loses a packet whose
                // write is cancelled (rumqtt issue 930), and a lost PUBACK is a message the
                // broker delivers again to the shard's next session.
                drop(senders);
                drop(acks);
                let disconnect = client.clone();
                let queued = tokio::spawn(async move {
                    if acked.await.is_ok() {
                        let _ = disconnect.try_disconnect();
                    }
                });
                let deadline = tokio::time::sleep(drain);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        _ = &mut deadline => {
                            tracing::warn!(client_id = %id, ?drain, "stopping an MQTT session: messages in flight were not all durable in time; the broker keeps them");
                            break;
                        }
                        Some(end) = abort.recv() => {
                            queued.abort();
                            let _ = subscribed.send(false);
                            tracing::warn!(client_id = %id, ?end, "MQTT session dropped while stopping");
                            return end;
                        }
                        event = eventloop.poll() => match event {
                            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                                let _ = subscribed.send(false);
                                if !gate.may_ack() {
                                    return SessionEnd::Fenced;
                                }
                                tracing::info!(client_id = %id, end = ?SessionEnd::Stopped, "MQTT session ended");
                                return SessionEnd::Stopped;
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                }
                queued.abort();
                if !gate.may_ack() {
                    let _ = subscribed.send(false);
                    return SessionEnd::Fenced;
                }
                SessionEnd::Stopped
            }
        };
        let _ = subscribed.send(false);
        // An orderly end: the DISCONNECT leaves through the event loop, so keep polling it
        // until it is out (the broker then closes our session quietly instead of seeing the
        // connection drop). What arrives meanwhile is not acknowledged: the broker keeps it in
        // our persistent session and delivers it again at the next start.
        if client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
        }
        tracing::info!(client_id = %id, ?end, "MQTT session ended");
        end
    }

    /// Ends the session by dropping its connection without a DISCONNECT (a closed gate, a
    /// moved shard): the broker keeps every unacknowledged message for the next session with
    /// this client id. The event loop (and its socket) is dropped with the caller's frame.
    fn drop_connection(self, end: SessionEnd) -> SessionEnd {
        let _ = self.subscribed.send(false);
        tracing::warn!(client_id = %self.client_id, ?end, "MQTT session dropped without DISCONNECT: the broker keeps what was not acknowledged");
        end
    }
}

/// Acknowledges messages in arrival order, each once the samples of all its batches are
/// durable, while the gate allows it.
///
/// An ack fails only once the event loop is gone: then nothing more can be acknowledged, and
/// the broker delivers what was not again from our persistent session. When the node is
/// stopping that is the expected end (logged at debug, not once per message in flight).
async fn acker(
    mut rx: mpsc::UnboundedReceiver<(Publish, oneshot::Receiver<Done>)>,
    client: AsyncClient,
    metrics: IngestMetrics,
    shutdown: watch::Receiver<bool>,
    gate: Arc<dyn AckGate>,
    abort: mpsc::UnboundedSender<SessionEnd>,
    acked: oneshot::Sender<()>,
) {
    while let Some((publish, done)) = rx.recv().await {
        // A worker that stopped without signalling has stopped ingest: don't ack what it lost.
        let receipts = match done.await {
            Ok(Done::Ack(receipts)) => receipts,
            Ok(Done::Refuse(end)) => {
                if end == SessionEnd::NotOwner {
                    tracing::warn!(topic = %publish.topic, "MQTT message for a room this node does not run: not acknowledged (the broker keeps it for the room's owner); the session ends");
                }
                let _ = abort.send(end);
                break;
            }
            Err(_) => {
                let _ = abort.send(SessionEnd::Failed);
                break;
            }
        };
        // Every receipt is awaited, even after one failed: the ack must not overtake any of
        // the message's batches.
        let mut lost = false;
        for durable in receipts {
            lost |= durable.await.is_err();
        }
        if !gate.may_ack() {
            let _ = abort.send(SessionEnd::Fenced);
            break;
        }
        if lost {
            metrics.unstored.inc();
            tracing::error!(topic = %publish.topic, "MQTT message acknowledged although its samples were not stored (see cistern_ingest_unstored_total)");
        }
        if let Err(error) = client.ack(&publish).await {
            let left = 1 + rx.len();
            if *shutdown.borrow() {
                tracing::debug!(
                    left,
                    "stopping: MQTT messages left unacknowledged, the broker delivers them again"
                );
            } else {
                tracing::warn!(%error, left, "could not acknowledge MQTT messages: the MQTT connection's event loop has stopped");
            }
            break;
        }
    }
    let _ = acked.send(());
}

async fn worker(
    mut rx: mpsc::UnboundedReceiver<Job>,
    sink: Arc<dyn BatchSink>,
    metrics: IngestMetrics,
    clock: Arc<dyn Clock>,
    inbound: Inbound,
    gate: Arc<dyn AckGate>,
) {
    // Every job is taken off the queue (the depth gauge stays exact), even after the gate
    // closed; from then on nothing is routed.
    while let Some((publish, done)) = rx.recv().await {
        metrics.queue_depth.dec();
        let outcome = if gate.may_ack() {
            handle(&publish, sink.as_ref(), clock.as_ref(), &inbound).await
        } else {
            Done::Refuse(SessionEnd::Fenced)
        };
        let _ = done.send(outcome);
    }
}

/// Decodes one PUBLISH and routes its device batches; every failure is counted and logged by
/// the sink. Returns the ends of the receipts to wait on before acknowledging, one per batch
/// that is to be stored — or, for a room this node does not run, that the message must not be
/// acknowledged at all.
async fn handle(
    publish: &Publish,
    sink: &dyn BatchSink,
    clock: &dyn Clock,
    inbound: &Inbound,
) -> Done {
    let limits = &inbound.limits;
    let topic: String = publish.topic.chars().take(128).collect();
    let parsed = telemetry::split_sender(&publish.topic)
        .and_then(|(sender, plain)| telemetry::parse_any_topic(&plain).map(|t| (sender, t)));
    let parsed = match parsed {
        Ok((sender, t)) => {
            let room = match &t {
                TelemetryTopic::Room(r) => r,
                TelemetryTopic::Device(d) => &d.room,
            };
            let verdict = match sender {
                Some(gateway) => inbound.senders.check(gateway, room),
                None if inbound.require_identity => Err(SenderRefusal::Anonymous),
                None => Ok(()),
            };
            if let Err(refusal) = verdict {
                // Counted and logged; acknowledged, so that the broker does not offer it again.
                sink.reject(IngestSource::Mqtt, &topic, refusal.label(), &refusal);
                return Done::Ack(Vec::new());
            }
            Ok(t)
        }
        Err(e) => Err(e),
    };
    let decoded = match parsed {
        Ok(TelemetryTopic::Device(device)) => {
            match telemetry::decode(device.clone(), &publish.payload, clock.now(), limits) {
                Ok(d) => vec![d],
                Err(e) => {
                    sink.reject(IngestSource::Mqtt, &device.to_string(), e.label(), &e);
                    return Done::Ack(Vec::new());
                }
            }
        }
        Ok(TelemetryTopic::Room(room)) => {
            match telemetry::decode_room(room.clone(), &publish.payload, clock.now(), limits) {
                Ok(d) => {
                    for refused in &d.refused {
                        let entry = format!("{room}/{}", refused.key);
                        sink.reject(
                            IngestSource::Mqtt,
                            &entry,
                            refused.error.label(),
                            &refused.error,
                        );
                    }
                    d.devices
                }
                Err(e) => {
                    sink.reject(IngestSource::Mqtt, room.as_str(), e.label(), &e);
                    return Done::Ack(Vec::new());
                }
            }
        }
        Err(e) => {
            sink.reject(IngestSource::Mqtt, &topic, e.label(), &e);
            return Done::Ack(Vec::new());
        }
    };
    let mut receipts = Vec::with_capacity(decoded.len());
    for d in decoded {
        let device = d.batch.device.to_string();
        for r in &d.rejections {
            sink.reject(IngestSource::Mqtt, &device, r.label(), r);
        }
        if d.batch.records.is_empty() {
            continue;
        }
        let (receipt, durable) = Receipt::new();
        // Routing errors are counted by the sink itself; the receipt went with the batch, so
        // for an unknown room or device nothing waits. An unknown room is every batch's
        // fate: counted once per message, the rest is not tried.
        match sink.deliver(d.batch, receipt).await {
            Ok(()) => receipts.push(durable),
            Err(DeliveryError::UnknownRoom(_)) => break,
            Err(DeliveryError::UnknownDevice { .. }) => {}
            // Another node's room (its shard moved): not acknowledged, whatever of it was
            // delivered already (the next owner stores it again; reads collapse the copies).
            Err(DeliveryError::NotHere(_)) => return Done::Refuse(SessionEnd::NotOwner),
            Err(_) => receipts.push(durable),
        }
    }
    Done::Ack(receipts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_always_goes_to_the_same_worker() {
        let a = worker_for("cistern/v1/telemetry/XM-0001/P1", 4);
        assert_eq!(a, worker_for("cistern/v1/telemetry/XM-0001/T1", 4));
        assert_eq!(a, worker_for("cistern/v1/telemetry/XM-0001/room", 4));
        // a room message goes where the room's per-device messages go: mixing forms keeps order
        assert_eq!(a, worker_for("cistern/v1/telemetry/XM-0001", 4));
        let spread: std::collections::HashSet<_> = (1..100)
            .map(|i| worker_for(&format!("cistern/v1/telemetry/XM-{i:04}/room"), 4))
            .collect();
        assert_eq!(spread.len(), 4);
        assert!(worker_for("garbage", 4) < 4);
        // the identity form goes where the plain form goes
        assert_eq!(a, worker_for("cistern/v1/gw/gw-1/telemetry/XM-0001", 4));
        assert_eq!(a, worker_for("cistern/v1/gw/gw-7/telemetry/XM-0001/P1", 4));
    }

    /// A sink that knows one room with a pump and a tank, keeps what it is given and counts
    /// rejections by label.
    #[derive(Default)]
    struct Recording {
        delivered: std::sync::Mutex<Vec<(cistern_schemas::reading::DeviceBatch, Receipt)>>,
        rejected: std::sync::Mutex<Vec<(String, &'static str)>>,
    }

    impl BatchSink for Recording {
        fn deliver(
            &self,
            batch: cistern_schemas::reading::DeviceBatch,
            receipt: Receipt,
        ) -> futures::future::BoxFuture<'_, Result<(), DeliveryError>> {
            Box::pin(async move {
                let device = batch.device.clone();
                let error = if device.room.as_str() == "XM-0002" {
                    Some(DeliveryError::NotHere(device.room.to_string()))
                } else if device.room.as_str() != "XM-0001" {
                    Some(DeliveryError::UnknownRoom(device.room.to_string()))
                } else if !matches!(
                    device.unit,
                    cistern_schemas::DeviceUnit::Pump(1) | cistern_schemas::DeviceUnit::Tank(1)
                ) {
                    Some(DeliveryError::UnknownDevice {
                        room: device.room.to_string(),
                        device: device.unit.to_string(),
                    })
                } else {
                    None
                };
                match error {
                    Some(e) => {
                        self.reject(IngestSource::Mqtt, &device.to_string(), e.label(), &e);
                        Err(e)
                    }
                    None => {
                        self.delivered.lock().unwrap().push((batch, receipt));
                        Ok(())
                    }
                }
            })
        }

        fn reject(
            &self,
            _source: IngestSource,
            device: &str,
            reason: &'static str,
            _detail: &dyn std::fmt::Display,
        ) {
            self.rejected
                .lock()
                .unwrap()
                .push((device.to_owned(), reason));
        }
    }

    const NOW: cistern_schemas::Timestamp = cistern_schemas::Timestamp(1_763_700_000_000);

    async fn handled_as(topic: &str, payload: String) -> (Recording, Done) {
        handled_with(topic, payload, Arc::new(NoGateways), false).await
    }

    async fn handled_with(
        topic: &str,
        payload: String,
        senders: Arc<dyn SenderCheck>,
        require_identity: bool,
    ) -> (Recording, Done) {
        let sink = Recording::default();
        let clock = cistern_actors::ManualClock::new(NOW);
        let publish = Publish::new(topic, QoS::AtLeastOnce, payload);
        let inbound = Inbound {
            limits: PayloadLimits::default(),
            senders,
            require_identity,
        };
        let done = handle(&publish, &sink, &clock, &inbound).await;
        (sink, done)
    }

    /// Gateway `gw-1` is enrolled for XM-0001, `gw-off` is disabled.
    #[derive(Debug)]
    struct OneGateway;

    impl SenderCheck for OneGateway {
        fn check(&self, gateway: &str, room: &RoomId) -> Result<(), SenderRefusal> {
            match gateway {
                "gw-1" if room.as_str() == "XM-0001" => Ok(()),
                "gw-1" => Err(SenderRefusal::NotItsRoom {
                    gateway: gateway.into(),
                    room: room.to_string(),
                }),
                "gw-off" => Err(SenderRefusal::Disabled(gateway.into())),
                _ => Err(SenderRefusal::Unknown(gateway.into())),
            }
        }
    }

    #[tokio::test]
    async fn a_gateway_sends_only_for_its_own_rooms_and_the_rest_is_counted() {
        let payload = || {
            format!(
                r#"{{"devices":{{"P1":[{{"t":{t},"v":{{"frequency":40.0}}}}]}}}}"#,
                t = NOW.0
            )
        };
        let cases = [
            ("cistern/v1/gw/gw-1/telemetry/XM-0001", false, None),
            (
                "cistern/v1/gw/gw-1/telemetry/XM-0003",
                false,
                Some("gateway_room"),
            ),
            (
                "cistern/v1/gw/gw-1/telemetry/XM-0003/P1",
                false,
                Some("gateway_room"),
            ),
            (
                "cistern/v1/gw/gw-off/telemetry/XM-0001",
                false,
                Some("gateway_disabled"),
            ),
            (
                "cistern/v1/gw/gw-9/telemetry/XM-0001",
                false,
                Some("gateway_unknown"),
            ),
            ("cistern/v1/telemetry/XM-0001", true, Some("no_identity")),
            ("cistern/v1/telemetry/XM-0001", false, None),
        ];
        for (topic, require, refused) in cases {
            let (sink, done) = handled_with(topic, payload(), Arc::new(OneGateway), require).await;
            let Done::Ack(receipts) = done else {
                panic!("{topic}: acknowledged either way")
            };
            let rejected = sink.rejected.lock().unwrap().clone();
            match refused {
                None => {
                    assert!(rejected.is_empty(), "{topic}: {rejected:?}");
                    assert_eq!(receipts.len(), 1, "{topic}: delivered");
                }
                Some(reason) => {
                    assert_eq!(rejected, [(topic.to_owned(), reason)], "{topic}");
                    assert!(receipts.is_empty(), "{topic}: nothing delivered");
                    assert!(sink.delivered.lock().unwrap().is_empty());
                }
            }
        }
    }

    async fn handled(topic: &str, payload: String) -> (Recording, Vec<oneshot::Receiver<()>>) {
        match handled_as(topic, payload).await {
            (sink, Done::Ack(receipts)) => (sink, receipts),
            (_, other) => panic!("{topic}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_room_message_is_acknowledged_only_once_all_its_batches_are_durable() {
        let payload = format!(
            r#"{{"devices":{{"P1":[{{"t":{t},"v":{{"frequency":40.0}}}}],
                "T1":[{{"t":{t},"v":{{"level":2.0,"overflow":false}}}}]}}}}"#,
            t = NOW.0
        );
        let (sink, mut done) = handled("cistern/v1/telemetry/XM-0001", payload).await;
        assert!(sink.rejected.lock().unwrap().is_empty());
        let mut delivered = std::mem::take(&mut *sink.delivered.lock().unwrap());
        let devices: Vec<String> = delivered
            .iter()
            .map(|(b, _)| b.device.to_string())
            .collect();
        assert_eq!(devices, ["XM-0001/P1", "XM-0001/T1"]);
        assert_eq!(delivered[1].0.point_count(), 2);
        assert_eq!(done.len(), 2, "one receipt per batch");
        let (_, first) = delivered.remove(0);
        first.complete();
        assert!(done[0].try_recv().is_ok());
        assert!(
            done[1].try_recv().is_err(),
            "the second batch is not durable yet: the message must not be acknowledged"
        );
        let (_, second) = delivered.remove(0);
        second.complete();
        assert!(done[1].try_recv().is_ok());
    }

    #[tokio::test]
    async fn bad_parts_of_a_room_message_are_counted_and_the_rest_delivered() {
        let payload = format!(
            r#"{{"devices":{{"P1":[{{"t":{t},"v":{{"frequency":40.0,"bogus":1}}}}],
                "P7":[{{"t":{t},"v":{{"frequency":41.0}}}}],
                "X9":[{{"t":{t},"v":{{"frequency":41.0}}}}],
                "T1":[{{"t":{t},"v":{{"level":-1e9}}}}, {{"t":{future},"v":{{"level":1.0}}}}]}}}}"#,
            t = NOW.0,
            future = NOW.0 + 3_600_000
        );
        let (sink, done) = handled("cistern/v1/telemetry/XM-0001", payload).await;
        let rejected = sink.rejected.lock().unwrap().clone();
        let expected = [
            ("XM-0001/X9", "bad_id"),
            ("XM-0001/P1", "unknown_point"),
            ("XM-0001/P7", "unknown_device"),
            ("XM-0001/T1", "future_timestamp"),
        ];
        let expected: Vec<(String, &str)> =
            expected.iter().map(|(d, r)| (d.to_string(), *r)).collect();
        assert_eq!(rejected, expected);
        // P1's good value and T1's (marked bad, out of range, but kept) are to be stored
        assert_eq!(done.len(), 2);
        assert_eq!(sink.delivered.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_refused_room_message_is_counted_once_and_acknowledged_at_once() {
        let t = NOW.0;
        let two_devices = format!(
            r#"{{"devices":{{"P1":[{{"t":{t},"v":{{"frequency":40.0}}}}],
                "T1":[{{"t":{t},"v":{{"level":1.0}}}}]}}}}"#
        );
        for (topic, payload, reason) in [
            (
                "cistern/v1/telemetry/XM-0001",
                "not json".to_owned(),
                "malformed",
            ),
            (
                "cistern/v1/telemetry/XM-0001",
                format!(r#"{{"records":[{{"t":{t},"v":{{"frequency":40.0}}}}]}}"#),
                "malformed",
            ),
            (
                "cistern/v1/telemetry/XM-9999",
                two_devices.clone(),
                "unknown_room",
            ),
            (
                "cistern/v1/telemetry/XM-0001/P1/x",
                two_devices.clone(),
                "bad_topic",
            ),
            ("cistern/v1/telemetry/XM 1", two_devices.clone(), "bad_id"),
        ] {
            let (sink, done) = handled(topic, payload).await;
            assert!(done.is_empty(), "{topic}: nothing to wait for");
            let reasons: Vec<&str> = sink.rejected.lock().unwrap().iter().map(|r| r.1).collect();
            assert_eq!(reasons, [reason], "{topic}");
        }
    }

    #[tokio::test]
    async fn a_message_for_a_room_run_elsewhere_is_not_acknowledged() {
        let t = NOW.0;
        let payload = format!(
            r#"{{"devices":{{"P1":[{{"t":{t},"v":{{"frequency":40.0}}}}],
                "T1":[{{"t":{t},"v":{{"level":1.0}}}}]}}}}"#
        );
        let (sink, done) = handled_as("cistern/v1/telemetry/XM-0002", payload).await;
        assert!(
            matches!(done, Done::Refuse(SessionEnd::NotOwner)),
            "{done:?}"
        );
        let reasons: Vec<&str> = sink.rejected.lock().unwrap().iter().map(|r| r.1).collect();
        assert_eq!(reasons, ["not_here"], "counted once, the rest not tried");
    }

    #[test]
    fn a_room_has_four_filters_and_a_shard_one_client_id() {
        let room = RoomId::new("XM-0042").unwrap();
        assert_eq!(
            room_filters(&room),
            [
                "cistern/v1/telemetry/XM-0042".to_owned(),
                "cistern/v1/telemetry/XM-0042/+".to_owned(),
                "cistern/v1/gw/+/telemetry/XM-0042".to_owned(),
                "cistern/v1/gw/+/telemetry/XM-0042/+".to_owned(),
            ]
        );
        assert_eq!(shard_client_id("xiamen", 7), "cistern-xiamen-shard-07");
    }
}
