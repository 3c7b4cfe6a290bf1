//! The live mirror: every cluster node shows every room on its WebSocket, whichever node
//! supervises it, through a shared fan-out over the MQTT broker (issue 23 item 4).
//!
//! Each node publishes the live changes of the rooms whose shards it acts for, and feeds the
//! other nodes' changes into its own WebSocket hub as if its actors had made them:
//!
//! | topic (`cistern/<name>/mirror/…`) | what | QoS, retained |
//! |---|---|---|
//! | `status/<room>` | the room went online or offline | 1, retained |
//! | `alarm/<room>/<rule>@<unit>` | an alarm's board view (the last one stays: a cleared view) | 1, retained |
//! | `events/<node>` | alarm events, in order | 1 |
//! | `view/<room>` | a device's or the room's own live view — only while some node watches the room | 0 |
//! | `watch/<node>` | the rooms this node's dashboards watch (cleared by the node's will) | 1, retained |
//!
//! Retained messages are the fleet's shared snapshot: a node that starts (or reconnects)
//! receives every room's status and every alarm at once, from the broker, with no request to
//! any other node. Each message carries its publisher and the shard's epoch: a message of an
//! older epoch than one already seen for the shard is dropped, so a deposed owner can never
//! overwrite its successor; a node publishes only for shards it acts for (its gate is open),
//! and ignores messages about rooms whose claim it holds (its own actors are the truth).
//! When a node comes to act for a shard (a claim, a takeover, a reconnection to the broker) it
//! republishes that shard's statuses and alarms, so that the retained state is its own.
//!
//! A `room` subscription to a room another node supervises takes its first view from that
//! node over HTTP (`GET /api/v1/rooms/{id}` with the cluster's service token), then follows
//! `view/<room>`, which the owner publishes because the watcher's `watch/<node>` names the room.
//! Zone alarms (`zone_event`) stay on the node that correlated them: a zone's rooms may live on
//! several nodes, each correlating its own (ARCHITECTURE.md, what a cluster node does not do).

use super::{ClusterView, Gate};
use crate::api::ws::hub::RemoteRooms;
use crate::api::ws::HubFeed;
use crate::ingest::mqtt::MqttConfig;
use cistern_actors::alarms::{AlarmBoard, AlarmFilter, AlarmView};
use cistern_actors::device::messages::DeviceView;
use cistern_actors::pump_room::{RoomPart, RoomView};
use cistern_actors::registry::shard_of;
use cistern_actors::{FleetRegistry, LiveFeed};
use cistern_rules::{AlarmEvent, AlarmSource};
use cistern_schemas::RoomId;
use dashmap::DashMap;
use futures::future::BoxFuture;
use prometheus::{IntCounterVec, Opts};
use rumqttc::{AsyncClient, Event, LastWill, Packet, QoS};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// How often the publisher looks at which shards it acts for and which rooms are watched.
const TICK: Duration = Duration::from_millis(250);
/// Requests waiting in the MQTT client; beyond them a change is dropped and counted (the
/// next republish of its shard repairs the retained state).
const CLIENT_QUEUE: usize = 20_000;
/// How long a node waits for another node's room view.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The mirror's series (`cistern_cluster_mirror_*`).
#[derive(Clone, Debug)]
pub struct MirrorMetrics {
    /// `cistern_cluster_mirror_messages_total{direction="out|in", result="ok|dropped|stale|refused"}`
    pub messages: IntCounterVec,
}

impl MirrorMetrics {
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let messages = IntCounterVec::new(
            Opts::new(
                "cistern_cluster_mirror_messages_total",
                "Live-mirror messages between cluster nodes over the broker, by direction and \
                 result (dropped: the client's queue was full; stale: an older epoch; refused: \
                 unreadable)",
            ),
            &["direction", "result"],
        )?;
        registry.register(Box::new(messages.clone()))?;
        Ok(Self { messages })
    }

    fn count(&self, direction: &str, result: &str) {
        self.messages.with_label_values(&[direction, result]).inc();
    }
}

/// What every mirror message carries besides its data.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<T> {
    node: String,
    /// The shard's epoch on the publisher (0 for messages about no single shard).
    epoch: i64,
    #[serde(flatten)]
    data: T,
}

#[derive(Debug, Serialize, Deserialize)]
struct Status {
    room: RoomId,
    online: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct AlarmMsg {
    alarm: AlarmView,
}

#[derive(Debug, Serialize, Deserialize)]
struct Events {
    events: Vec<AlarmEvent>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ViewMsg {
    Device(DeviceView),
    Room(RoomPart),
}

#[derive(Debug, Serialize, Deserialize)]
struct Watch {
    rooms: BTreeSet<RoomId>,
}

/// The topics of one cluster.
#[derive(Debug, Clone)]
struct Topics {
    root: String,
}

impl Topics {
    fn new(cluster: &str) -> Self {
        Self {
            root: format!("cistern/{cluster}/mirror"),
        }
    }
    fn status(&self, room: &RoomId) -> String {
        format!("{}/status/{room}", self.root)
    }
    fn alarm(&self, id: &str) -> String {
        format!("{}/alarm/{id}", self.root)
    }
    fn events(&self, node: &str) -> String {
        format!("{}/events/{node}", self.root)
    }
    fn view(&self, room: &RoomId) -> String {
        format!("{}/view/{room}", self.root)
    }
    fn watch(&self, node: &str) -> String {
        format!("{}/watch/{node}", self.root)
    }
    fn all(&self) -> String {
        format!("{}/#", self.root)
    }
}

/// The live feed of a cluster node: the local hub's feed, plus the broker (see the module
/// doc). The actors and the alarm board report here.
#[derive(Debug)]
pub struct Mirror {
    name: String,
    node: String,
    topics: Topics,
    hub: Arc<HubFeed>,
    /// What waits to be published (conflated per key like the hub's own buffer).
    outbox: HubFeed,
    gate: Arc<Gate>,
    /// Rooms the other nodes' dashboards watch: room → the nodes watching it.
    remote_watch: DashMap<RoomId, HashSet<String>>,
    /// Each node's last published watch list.
    watch_lists: Mutex<HashMap<String, BTreeSet<RoomId>>>,
    /// Each room's status as its actor last reported it here (the registry's status board is
    /// written after the report, so it may lag the message already published).
    statuses: DashMap<RoomId, bool>,
    /// Each room's status as another node last published it (to show again when a shard
    /// that looked unsupervised has an owner again).
    remote_statuses: DashMap<RoomId, bool>,
    /// The newest epoch seen per shard (messages of older ones are stale).
    epochs: DashMap<u32, i64>,
    cluster: OnceLock<Arc<dyn ClusterView>>,
    metrics: MirrorMetrics,
}

/// The room an alarm event is about (none: a zone's).
fn event_room(e: &AlarmEvent) -> Option<&RoomId> {
    match &e.source {
        AlarmSource::Device(d) => Some(&d.room),
        AlarmSource::Zone(_) => None,
    }
}

impl Mirror {
    pub fn new(
        cluster: &str,
        node: &str,
        hub: Arc<HubFeed>,
        gate: Arc<Gate>,
        metrics: MirrorMetrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            name: cluster.to_owned(),
            node: node.to_owned(),
            topics: Topics::new(cluster),
            hub,
            outbox: HubFeed::new(),
            gate,
            remote_watch: DashMap::new(),
            watch_lists: Mutex::new(HashMap::new()),
            statuses: DashMap::new(),
            remote_statuses: DashMap::new(),
            epochs: DashMap::new(),
            cluster: OnceLock::new(),
            metrics,
        })
    }

    /// The member, once it exists (for the owners' addresses and the service token).
    pub fn set_cluster(&self, view: Arc<dyn ClusterView>) {
        let _ = self.cluster.set(view);
    }

    /// Whether this node acts for `room`'s shard now (publishes about it).
    fn acting(&self, room: &RoomId) -> bool {
        self.gate.acting(shard_of(room))
    }

    /// Whether this node holds `room`'s claim (its actors are the truth about the room).
    fn holds(&self, room: &RoomId) -> bool {
        self.gate.epoch(shard_of(room)).is_some()
    }

    fn epoch_of(&self, room: &RoomId) -> i64 {
        self.gate.epoch(shard_of(room)).map_or(0, |e| e.0)
    }

    /// Whether a message of `epoch` about `room` is current (and records a newer epoch).
    fn current(&self, room: &RoomId, epoch: i64) -> bool {
        let mut seen = self.epochs.entry(shard_of(room)).or_insert(epoch);
        if epoch < *seen {
            return false;
        }
        *seen = epoch;
        true
    }

    /// Applies another node's watch list.
    fn set_watch_list(&self, node: &str, rooms: BTreeSet<RoomId>) {
        let mut lists = self.watch_lists.lock().unwrap_or_else(|p| p.into_inner());
        let old = lists
            .insert(node.to_owned(), rooms.clone())
            .unwrap_or_default();
        for gone in old.difference(&rooms) {
            self.remote_watch.remove_if_mut(gone, |_, nodes| {
                nodes.remove(node);
                nodes.is_empty()
            });
        }
        for new in rooms.difference(&old) {
            self.remote_watch
                .entry(new.clone())
                .or_default()
                .insert(node.to_owned());
        }
    }

    /// One message from the broker.
    fn receive(&self, topic: &str, payload: &[u8]) {
        let Some(rest) = topic.strip_prefix(&self.topics.root) else {
            return;
        };
        let rest = rest.trim_start_matches('/');
        let kind = rest.split('/').next().unwrap_or("");
        if kind == "watch" {
            let node = rest.trim_start_matches("watch/");
            if node == self.node {
                return;
            }
            if payload.is_empty() {
                // The node left (its will, or a clean stop).
                self.set_watch_list(node, BTreeSet::new());
                return;
            }
            match serde_json::from_slice::<Envelope<Watch>>(payload) {
                Ok(m) => self.set_watch_list(node, m.data.rooms),
                Err(e) => self.refused(topic, &e),
            }
            return;
        }
        if payload.is_empty() {
            return;
        }
        let result = match kind {
            "status" => serde_json::from_slice::<Envelope<Status>>(payload).map(|m| {
                if self.admit(&m.node, &m.data.room, m.epoch) {
                    self.remote_statuses
                        .insert(m.data.room.clone(), m.data.online);
                    self.hub.status_changed(&m.data.room, m.data.online);
                }
            }),
            "alarm" => serde_json::from_slice::<Envelope<AlarmMsg>>(payload).map(|m| {
                let Some(room) = m.data.alarm.room.clone() else {
                    return;
                };
                if self.admit(&m.node, &room, m.epoch) {
                    self.hub.alarm_changed(&m.data.alarm);
                }
            }),
            "events" => serde_json::from_slice::<Envelope<Events>>(payload).map(|m| {
                if m.node == self.node {
                    return;
                }
                let events: Vec<AlarmEvent> = (m.data.events.into_iter())
                    .filter(|e| event_room(e).is_some_and(|r| !self.holds(r)))
                    .collect();
                self.hub.alarm_events(&events);
            }),
            "view" => serde_json::from_slice::<Envelope<ViewMsg>>(payload).map(|m| {
                let room = match &m.data {
                    ViewMsg::Device(v) => v.id.room.clone(),
                    ViewMsg::Room(p) => p.id.clone(),
                };
                if !self.hub.watches(&room) || !self.admit(&m.node, &room, m.epoch) {
                    return;
                }
                match m.data {
                    ViewMsg::Device(v) => self.hub.device_changed(v),
                    ViewMsg::Room(p) => self.hub.room_changed(p),
                }
            }),
            _ => return,
        };
        match result {
            Ok(()) => self.metrics.count("in", "ok"),
            Err(e) => self.refused(topic, &e),
        }
    }

    /// Whether another node's message about `room` is for this node's hub.
    fn admit(&self, node: &str, room: &RoomId, epoch: i64) -> bool {
        if node == self.node || self.holds(room) {
            return false;
        }
        if !self.current(room, epoch) {
            self.metrics.count("in", "stale");
            return false;
        }
        true
    }

    fn refused(&self, topic: &str, error: &serde_json::Error) {
        self.metrics.count("in", "refused");
        tracing::warn!(%topic, %error, "unreadable live-mirror message ignored");
    }
}

impl RemoteRooms for Mirror {
    /// The view of a room another node supervises, from that node (None: this node holds
    /// the room's claim, or is no cluster member yet).
    fn fetch_room(&self, room: &RoomId) -> Option<BoxFuture<'static, Result<RoomView, String>>> {
        if self.holds(room) {
            return None;
        }
        let cluster = self.cluster.get()?.clone();
        let room = room.clone();
        let node = self.node.clone();
        Some(Box::pin(async move {
            let base = cluster
                .owner_http(shard_of(&room))
                .ok_or_else(|| format!("no live node supervises room {room} now"))?;
            let token = cluster
                .service_token()
                .ok_or_else(|| "the cluster's service token is not known yet".to_owned())?;
            let answer = super::peer::call(super::peer::PeerRequest {
                method: "GET".into(),
                url: format!("{base}/api/v1/rooms/{room}"),
                headers: vec![
                    ("authorization".into(), format!("Bearer {token}")),
                    (super::peer::FORWARDED_BY.into(), node),
                ],
                body: None,
                timeout: FETCH_TIMEOUT,
                connect_timeout: FETCH_TIMEOUT,
            })
            .await
            .map_err(|e| e.to_string())?;
            if answer.status != 200 {
                return Err(format!(
                    "{base} answered {} for room {room}: {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                ));
            }
            serde_json::from_slice::<RoomView>(&answer.body).map_err(|e| format!("{base}: {e}"))
        }))
    }
}

impl Mirror {
    /// Publishes what waits, and keeps the retained state and the watch list current, until
    /// `shutdown`. `registry` and `board` give each shard's state when the node comes to act
    /// for it.
    pub fn spawn(
        self: &Arc<Self>,
        mqtt: &MqttConfig,
        registry: Arc<FleetRegistry>,
        board: Option<Arc<AlarmBoard>>,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let mut opts = mqtt.options(&format!("cistern-{}-mirror-{}", self.name, self.node));
        opts.set_keep_alive(mqtt.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(16 << 20, 16 << 20)
            .set_last_will(LastWill::new(
                self.topics.watch(&self.node),
                Vec::<u8>::new(),
                QoS::AtLeastOnce,
                true,
            ));
        let (client, eventloop) = AsyncClient::new(opts, CLIENT_QUEUE);
        let (connected_tx, connected_rx) = watch::channel(0u64);
        let me = self.clone();
        let reconnect_max = mqtt.reconnect_max;
        let poll_shutdown = shutdown.clone();
        let poll = tokio::spawn(me.clone().poll(
            client.clone(),
            eventloop,
            connected_tx,
            reconnect_max,
            poll_shutdown,
        ));
        tokio::spawn(async move {
            me.publish_loop(client, registry, board, connected_rx, shutdown)
                .await;
            poll.abort();
        })
    }

    /// The connection: subscribes on each connection and hands messages in.
    async fn poll(
        self: Arc<Self>,
        client: AsyncClient,
        mut eventloop: rumqttc::EventLoop,
        connected: watch::Sender<u64>,
        reconnect_max: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let event = tokio::select! {
                e = eventloop.poll() => e,
                _ = shutdown.changed() => return,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(200);
                    if let Err(e) = client.try_subscribe(self.topics.all(), QoS::AtLeastOnce) {
                        tracing::warn!(error = %e, "live mirror: cannot subscribe");
                    }
                    connected.send_modify(|n| *n += 1);
                    tracing::info!("live mirror connected to the broker");
                }
                Ok(Event::Incoming(Packet::Publish(p))) => self.receive(&p.topic, &p.payload),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "live mirror: broker connection lost; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(reconnect_max.max(Duration::from_millis(200)));
                }
            }
        }
    }

    fn publish(&self, client: &AsyncClient, topic: String, qos: QoS, retain: bool, body: Vec<u8>) {
        match client.try_publish(topic, qos, retain, body) {
            Ok(()) => self.metrics.count("out", "ok"),
            Err(_) => self.metrics.count("out", "dropped"),
        }
    }

    fn publish_json<T: Serialize>(
        &self,
        client: &AsyncClient,
        topic: String,
        qos: QoS,
        retain: bool,
        epoch: i64,
        data: T,
    ) {
        let envelope = Envelope {
            node: self.node.clone(),
            epoch,
            data,
        };
        match serde_json::to_vec(&envelope) {
            Ok(body) => self.publish(client, topic, qos, retain, body),
            Err(e) => tracing::error!(error = %e, "live mirror: cannot serialise a change"),
        }
    }

    fn publish_alarm(&self, client: &AsyncClient, view: &AlarmView) {
        let Some(room) = view.room.clone() else {
            return;
        };
        if !self.acting(&room) {
            return;
        }
        let epoch = self.epoch_of(&room);
        self.publish_json(
            client,
            self.topics.alarm(&view.id),
            QoS::AtLeastOnce,
            true,
            epoch,
            AlarmMsg {
                alarm: view.clone(),
            },
        );
    }

    async fn publish_loop(
        &self,
        client: AsyncClient,
        registry: Arc<FleetRegistry>,
        board: Option<Arc<AlarmBoard>>,
        mut connected: watch::Receiver<u64>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        let mut announced: HashSet<u32> = HashSet::new();
        let mut watched: BTreeSet<RoomId> = BTreeSet::new();
        let mut first_watch = true;
        // Shards no live node supervises (their owner died and none has claimed them yet).
        let mut orphaned: HashSet<u32> = HashSet::new();
        loop {
            tokio::select! {
                _ = self.outbox.wake.notified() => self.flush(&client),
                _ = tick.tick() => {
                    // The shards this node acts for now; the new ones get their state
                    // republished (retained), so that it is this owner's.
                    let acting: HashSet<u32> = (0..cistern_actors::registry::SHARDS)
                        .filter(|s| self.gate.acting(*s))
                        .collect();
                    let new: HashSet<u32> = acting.difference(&announced).copied().collect();
                    if !new.is_empty() {
                        self.announce(&client, &registry, board.as_deref(), &new);
                    }
                    // A shard that left: its rooms start offline when it comes back.
                    for shard in announced.difference(&acting) {
                        for room in registry.known_rooms_of_shard(*shard) {
                            self.statuses.remove(&room);
                        }
                    }
                    announced = acting;
                    self.mark_orphans(&registry, &mut orphaned);
                    let now: BTreeSet<RoomId> = self.hub.watched_rooms().into_iter().collect();
                    if now != watched || first_watch {
                        first_watch = false;
                        watched = now;
                        self.publish_json(
                            &client,
                            self.topics.watch(&self.node),
                            QoS::AtLeastOnce,
                            true,
                            0,
                            Watch { rooms: watched.clone() },
                        );
                    }
                }
                r = connected.changed() => {
                    if r.is_err() {
                        return;
                    }
                    // A new connection: the broker may have lost what was in flight.
                    announced.clear();
                    first_watch = true;
                }
                _ = shutdown.changed() => {
                    // A clean stop clears this node's watch list (the will covers a death).
                    self.publish(&client, self.topics.watch(&self.node), QoS::AtLeastOnce, true, Vec::new());
                    let _ = tokio::time::timeout(Duration::from_millis(500), client.disconnect()).await;
                    return;
                }
            }
        }
    }

    /// Shows the rooms of shards that no live node supervises as offline on this node's
    /// dashboards (their last owner died; the retained state is its last word), until an
    /// owner publishes again. Only while this node is a member: outside the cluster it does
    /// not know the owners.
    fn mark_orphans(&self, registry: &FleetRegistry, orphaned: &mut HashSet<u32>) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        if !cluster.ready() {
            return;
        }
        for shard in 0..cistern_actors::registry::SHARDS {
            let unsupervised =
                self.gate.epoch(shard).is_none() && cluster.owner_http(shard).is_none();
            if unsupervised && orphaned.insert(shard) {
                for room in registry.known_rooms_of_shard(shard) {
                    self.hub.status_changed(&room, false);
                }
            } else if !unsupervised && orphaned.remove(&shard) {
                // An owner again: what it (or anyone) last published, which may have come
                // before this node learnt of the owner; its newer messages follow.
                for room in registry.known_rooms_of_shard(shard) {
                    if let Some(online) = self.remote_statuses.get(&room).map(|s| *s) {
                        self.hub.status_changed(&room, online);
                    }
                }
            }
        }
    }

    /// Republishes the statuses and alarms of `shards`' rooms.
    fn announce(
        &self,
        client: &AsyncClient,
        registry: &FleetRegistry,
        board: Option<&AlarmBoard>,
        shards: &HashSet<u32>,
    ) {
        for shard in shards {
            for room in registry.rooms_of_shard(*shard) {
                if !self.acting(&room) {
                    continue;
                }
                let epoch = self.epoch_of(&room);
                let online = self.statuses.get(&room).is_some_and(|s| *s);
                self.publish_json(
                    client,
                    self.topics.status(&room),
                    QoS::AtLeastOnce,
                    true,
                    epoch,
                    Status { room, online },
                );
            }
        }
        if let Some(board) = board {
            for v in board.list(&AlarmFilter::default()) {
                if v.room
                    .as_ref()
                    .is_some_and(|r| shards.contains(&shard_of(r)))
                {
                    self.publish_alarm(client, &v);
                }
            }
        }
    }

    /// A watched room's device or own view, while this node acts for it.
    fn publish_view(&self, client: &AsyncClient, room: &RoomId, view: ViewMsg) {
        if self.acting(room) {
            let epoch = self.epoch_of(room);
            let topic = self.topics.view(room);
            self.publish_json(client, topic, QoS::AtMostOnce, false, epoch, view);
        }
    }

    /// Publishes every change that waits.
    fn flush(&self, client: &AsyncClient) {
        use crate::api::ws::feed::Change;
        let drained = self.outbox.drain();
        for change in drained.changes {
            match change {
                Change::Status { room, online } => {
                    if self.acting(&room) {
                        let epoch = self.epoch_of(&room);
                        let topic = self.topics.status(&room);
                        self.publish_json(
                            client,
                            topic,
                            QoS::AtLeastOnce,
                            true,
                            epoch,
                            Status { room, online },
                        );
                    }
                }
                Change::Alarm(view) => self.publish_alarm(client, &view),
                Change::Device(view) => {
                    let room = view.id.room.clone();
                    self.publish_view(client, &room, ViewMsg::Device(view));
                }
                Change::Room(part) => {
                    let room = part.id.clone();
                    self.publish_view(client, &room, ViewMsg::Room(part));
                }
            }
        }
        if drained.events_lost > 0 {
            tracing::warn!(
                lost = drained.events_lost,
                "live mirror: alarm events lost to a full buffer (other nodes' event lists miss them)"
            );
        }
        let events: Vec<AlarmEvent> = (drained.events.into_iter())
            .filter(|e| event_room(e).is_some_and(|r| self.acting(r)))
            .collect();
        for chunk in events.chunks(500) {
            self.publish_json(
                client,
                self.topics.events(&self.node),
                QoS::AtLeastOnce,
                false,
                0,
                Events {
                    events: chunk.to_vec(),
                },
            );
        }
    }
}

impl LiveFeed for Mirror {
    fn watches(&self, room: &RoomId) -> bool {
        self.hub.watches(room) || self.remote_watch.contains_key(room)
    }

    fn device_changed(&self, view: DeviceView) {
        if self.remote_watch.contains_key(&view.id.room) {
            self.outbox.device_changed(view.clone());
        }
        if self.hub.watches(&view.id.room) {
            self.hub.device_changed(view);
        }
    }

    fn room_changed(&self, part: RoomPart) {
        if self.remote_watch.contains_key(&part.id) {
            self.outbox.room_changed(part.clone());
        }
        if self.hub.watches(&part.id) {
            self.hub.room_changed(part);
        }
    }

    fn status_changed(&self, room: &RoomId, online: bool) {
        self.statuses.insert(room.clone(), online);
        self.outbox.status_changed(room, online);
        self.hub.status_changed(room, online);
    }

    fn alarm_changed(&self, view: &AlarmView) {
        if view.room.is_some() {
            self.outbox.alarm_changed(view);
        }
        self.hub.alarm_changed(view);
    }

    fn alarm_events(&self, events: &[AlarmEvent]) {
        self.outbox.alarm_events(events);
        self.hub.alarm_events(events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Epoch;

    fn mirror() -> Arc<Mirror> {
        let registry = prometheus::Registry::new();
        Mirror::new(
            "c1",
            "node-a",
            Arc::new(HubFeed::new()),
            Arc::new(Gate::default()),
            MirrorMetrics::register(&registry).unwrap(),
        )
    }

    fn status(node: &str, room: &str, epoch: i64, online: bool) -> Vec<u8> {
        serde_json::to_vec(&Envelope {
            node: node.into(),
            epoch,
            data: Status {
                room: RoomId::new(room).unwrap(),
                online,
            },
        })
        .unwrap()
    }

    fn drained_statuses(m: &Mirror) -> Vec<(String, bool)> {
        use crate::api::ws::feed::Change;
        m.hub
            .drain()
            .changes
            .into_iter()
            .filter_map(|c| match c {
                Change::Status { room, online } => Some((room.to_string(), online)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn another_node_s_status_reaches_the_hub_and_an_older_epoch_does_not() {
        let m = mirror();
        let t = m.topics.status(&RoomId::new("XM-0001").unwrap());
        m.receive(&t, &status("node-b", "XM-0001", 10, true));
        assert_eq!(drained_statuses(&m), vec![("XM-0001".to_owned(), true)]);
        // A deposed owner's late message (epoch 7 < 10) is stale.
        m.receive(&t, &status("node-c", "XM-0001", 7, false));
        assert!(drained_statuses(&m).is_empty());
        assert_eq!(
            m.metrics.messages.with_label_values(&["in", "stale"]).get(),
            1
        );
        // A newer owner's is taken.
        m.receive(&t, &status("node-c", "XM-0001", 12, false));
        assert_eq!(drained_statuses(&m), vec![("XM-0001".to_owned(), false)]);
    }

    #[test]
    fn messages_about_rooms_this_node_holds_and_its_own_are_ignored() {
        let m = mirror();
        let room = RoomId::new("XM-0001").unwrap();
        m.gate.set_epoch(shard_of(&room), Some(Epoch(40)));
        m.receive(
            &m.topics.status(&room),
            &status("node-b", "XM-0001", 50, true),
        );
        m.receive(
            &m.topics.status(&room),
            &status("node-a", "XM-0001", 50, true),
        );
        assert!(drained_statuses(&m).is_empty());
    }

    #[test]
    fn unreadable_messages_are_counted_not_applied() {
        let m = mirror();
        m.receive("cistern/c1/mirror/status/XM-0001", b"{not json");
        m.receive("cistern/c1/mirror/alarm/XM-0001/x@y", b"[]");
        assert_eq!(
            m.metrics
                .messages
                .with_label_values(&["in", "refused"])
                .get(),
            2
        );
        assert!(drained_statuses(&m).is_empty());
    }

    #[test]
    fn watch_lists_decide_which_rooms_the_owner_reports() {
        let m = mirror();
        let a = RoomId::new("XM-0001").unwrap();
        let b = RoomId::new("XM-0002").unwrap();
        let list = |rooms: &[&RoomId]| {
            serde_json::to_vec(&Envelope {
                node: "node-b".into(),
                epoch: 0,
                data: Watch {
                    rooms: rooms.iter().map(|r| (*r).clone()).collect(),
                },
            })
            .unwrap()
        };
        let topic = m.topics.watch("node-b");
        m.receive(&topic, &list(&[&a, &b]));
        assert!(m.watches(&a) && m.watches(&b));
        m.receive(&topic, &list(&[&b]));
        assert!(!m.watches(&a) && m.watches(&b));
        // The node's will (an empty retained message) clears its list.
        m.receive(&topic, b"");
        assert!(!m.watches(&b));
    }
}
