//! The hub: one task that owns the dashboards' model of the fleet and fans changes out.
//!
//! - Owns: the fleet summary (per zone and per room, kept incrementally), a mirror of the alarm
//!   board, the live views of the rooms someone watches (fetched once from the room actor, then
//!   kept current by the feed), the most recent events, and every subscription's route.
//! - Receives: the actors' changes through [`HubFeed`] (drained in batches), and commands from
//!   the socket tasks (subscribe, unsubscribe) and helper tasks (room fetched, audit entries)
//!   over a bounded channel.
//! - Emits: snapshots and deltas into each [`Client`]'s queue. Each change is serialised once,
//!   whoever subscribes to it; pushing never waits (see `client.rs`). Snapshots come from this
//!   model, never from a database, so a snapshot and the deltas after it are consistent: both
//!   are made by this one task, in order.
//! - On failure: nothing here can panic by design (no unwrap, no indexing that can fail); a
//!   closed command channel ends the task and the sockets see their sessions go quiet.

use super::client::{Client, Pushed, Resume};
use super::feed::{Change, HubFeed};
use super::metrics::WsMetrics;
use super::protocol::{data, Data, ServerMessage};
use super::topics::{
    AlarmsDelta, AlarmsSnapshot, EventItem, EventsSnapshot, FleetDelta, FleetSnapshot, OrdersDelta,
    OrdersSnapshot, PointValue, PointsDelta, PointsSnapshot, RoomDelta, RoomMark, SubSpec,
    ZoneSummary,
};
use super::WsConfig;
use crate::auth::{AuditEntry, AuditLog};
use crate::business::workorders::store::OrderFilter;
use crate::business::workorders::{OrderId, WorkOrder, WorkOrders};
use crate::control::plans::PlanBoard;
use cistern_actors::alarms::{AlarmBoard, AlarmFilter, AlarmView};
use cistern_actors::device::messages::DeviceView;
use cistern_actors::device::PointView;
use cistern_actors::pump_room::{RoomPart, RoomView};
use cistern_actors::FleetRegistry;
use cistern_rules::{AlarmEvent, AlarmSource, AlarmState};
use cistern_schemas::{PointId, RoomId, Timestamp, ZoneId};
use dashmap::DashMap;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How many recent events an `events` snapshot holds.
const RECENT_EVENTS: usize = 100;
/// The most open orders a `workorders` snapshot holds (the store's list limit).
const MAX_OPEN_ORDERS: usize = 1_000;
/// Commands waiting for the hub.
const COMMAND_QUEUE: usize = 4096;

/// What the socket tasks and helpers ask of the hub.
#[derive(Debug)]
pub enum HubCommand {
    Subscribe {
        client: Arc<Client>,
        id: String,
        spec: SubSpec,
        filter: serde_json::Value,
        since: Option<u64>,
    },
    Unsubscribe {
        client: Arc<Client>,
        id: String,
    },
    RoomFetched {
        room: RoomId,
        result: Result<Box<RoomView>, String>,
    },
    Audit(AuditEntry),
    /// The audit stream lagged: entries were lost.
    AuditLost(u64),
    /// A work order as written.
    Order(Arc<WorkOrder>),
    /// Every open order, read from the store: at start, and after the order stream lagged
    /// (the `workorders` subscriptions are re-snapshotted with `resync`).
    OpenOrders(Vec<WorkOrder>),
}

/// What the socket tasks hold: the way to the hub, the sessions, the limits.
#[derive(Debug, Clone)]
pub struct HubHandle {
    pub tx: mpsc::Sender<HubCommand>,
    pub sessions: Arc<DashMap<String, Arc<Client>>>,
    pub config: WsConfig,
    pub metrics: WsMetrics,
    pub open: Arc<AtomicUsize>,
    pub registry: Arc<FleetRegistry>,
}

impl HubHandle {
    /// Counts a socket in, unless the node already holds `max_clients`.
    pub fn admit(&self) -> bool {
        let max = self.config.max_clients;
        let ok = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if ok {
            self.metrics.clients.inc();
        }
        ok
    }

    pub fn release(&self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        self.metrics.clients.dec();
    }
}

#[derive(Debug)]
struct Route {
    client: Arc<Client>,
    id: String,
    spec: SubSpec,
}

#[derive(Debug, Default)]
struct Loading {
    early: Vec<Change>,
    /// Subscriptions waiting for the room: (session, id, resync).
    waiters: Vec<(String, String, bool)>,
}

/// The hub's state (see the module doc).
#[derive(Debug)]
pub struct Hub {
    config: WsConfig,
    feed: Arc<HubFeed>,
    registry: Arc<FleetRegistry>,
    board: Option<Arc<AlarmBoard>>,
    /// The peak-shaving plans, read at each room snapshot (`tank_plans`).
    plans: Option<Arc<PlanBoard>>,
    remote: Option<Arc<dyn RemoteRooms>>,
    sessions: Arc<DashMap<String, Arc<Client>>>,
    tx: mpsc::Sender<HubCommand>,
    routes: Vec<Route>,
    marks: HashMap<RoomId, RoomMark>,
    zones: BTreeMap<ZoneId, ZoneSummary>,
    dirty_rooms: BTreeSet<RoomId>,
    dirty_zones: BTreeSet<ZoneId>,
    last_zone: HashMap<ZoneId, Data>,
    last_mark: HashMap<RoomId, Data>,
    alarms: HashMap<String, AlarmView>,
    cache: HashMap<RoomId, RoomView>,
    refs: HashMap<RoomId, usize>,
    loading: HashMap<RoomId, Loading>,
    recent: VecDeque<(bool, Data)>,
    event_no: u64,
    /// The open work orders (and, until their delta is sent, the ones just closed).
    orders: HashMap<OrderId, Arc<WorkOrder>>,
}

/// Rooms another node supervises (a cluster node: `cluster::mirror`).
pub trait RemoteRooms: Send + Sync + std::fmt::Debug {
    /// The room's live view from the node that supervises it; None: this node holds the
    /// room (its actors answer).
    fn fetch_room(
        &self,
        room: &RoomId,
    ) -> Option<futures::future::BoxFuture<'static, Result<RoomView, String>>>;
}

/// How often, and how far apart, the view of a room another node supervises is asked for
/// before the subscription is refused (the room may be moving, or its owner not known yet).
const REMOTE_ATTEMPTS: usize = 10;
const REMOTE_RETRY: Duration = Duration::from_millis(500);

/// The view of a room this node does not run, from the node that does.
async fn remote_view(
    remote: &dyn RemoteRooms,
    registry: &FleetRegistry,
    room: &RoomId,
) -> Result<Box<RoomView>, String> {
    let mut last = format!("no node answered for room {room}");
    for attempt in 0..REMOTE_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(REMOTE_RETRY).await;
            // The room may have come here meanwhile.
            if let Ok(view) = registry.room_view(room).await {
                return Ok(Box::new(view));
            }
        }
        match remote.fetch_room(room) {
            Some(fetch) => match fetch.await {
                Ok(view) => return Ok(Box::new(view)),
                Err(e) => last = e,
            },
            None => last = format!("room {room} is being taken over by this node"),
        }
    }
    Err(last)
}

/// The boards the hub reads besides the feed (each absent when the node does not run it).
#[derive(Debug, Clone, Default)]
pub struct Boards {
    /// Where the live view of a room another cluster node supervises comes from.
    pub remote: Option<Arc<dyn RemoteRooms>>,
    pub alarms: Option<Arc<AlarmBoard>>,
    pub plans: Option<Arc<PlanBoard>>,
    /// The work-order service (the `workorders` topic).
    pub orders: Option<Arc<WorkOrders>>,
}

/// Forwards the work-order service's writes into the hub: the open orders first, then every
/// order as written; after a lag, the open orders again.
async fn forward_orders(service: Arc<WorkOrders>, tx: mpsc::Sender<HubCommand>) {
    use tokio::sync::broadcast::error::RecvError;
    // Subscribed before the read, so that nothing written after it is missed; a write seen
    // in both is applied twice, in order, and ends where the store is.
    let mut rx = service.subscribe();
    let mut reload = true;
    loop {
        if reload {
            let filter = OrderFilter {
                open: Some(true),
                limit: MAX_OPEN_ORDERS,
                ..Default::default()
            };
            match service.list(&filter).await {
                Ok(open) => {
                    if tx.send(HubCommand::OpenOrders(open)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the live feed could not read the open orders")
                }
            }
            reload = false;
        }
        let cmd = match rx.recv().await {
            Ok(o) => HubCommand::Order(o),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    lost = n,
                    "work-order events lost by the live feed; re-reading the open orders"
                );
                reload = true;
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if tx.send(cmd).await.is_err() {
            return;
        }
    }
}

/// Starts the hub task; returns the handle the sockets use.
pub fn start(
    config: WsConfig,
    feed: Arc<HubFeed>,
    registry: Arc<FleetRegistry>,
    boards: Boards,
    audit: Arc<AuditLog>,
    metrics: WsMetrics,
    shutdown: watch::Receiver<bool>,
) -> (HubHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let sessions = Arc::new(DashMap::new());
    let handle = HubHandle {
        tx: tx.clone(),
        sessions: sessions.clone(),
        config: config.clone(),
        metrics,
        open: Arc::new(AtomicUsize::new(0)),
        registry: registry.clone(),
    };
    if let Some(service) = boards.orders.clone() {
        tokio::spawn(forward_orders(service, tx.clone()));
    }
    let mut hub = Hub::new(config, feed, registry, boards, sessions, tx.clone());
    // The audit log's live entries, forwarded into the hub.
    let mut entries = audit.subscribe();
    let audit_tx = tx;
    tokio::spawn(async move {
        loop {
            let cmd = match entries.recv().await {
                Ok(e) => HubCommand::Audit(e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    HubCommand::AuditLost(n)
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            if audit_tx.send(cmd).await.is_err() {
                break;
            }
        }
    });
    let task = tokio::spawn(async move { hub.run(rx, shutdown).await });
    (handle, task)
}

/// An alarm's weight in the fleet summary.
#[derive(Debug, Clone, Copy)]
struct Weight {
    sev: usize,
    unacked: bool,
    annunciating: bool,
}

fn weight(v: &AlarmView) -> Option<Weight> {
    v.listed().then(|| Weight {
        sev: v.severity.index(),
        unacked: matches!(v.state, AlarmState::Unacked | AlarmState::ReturnedUnacked),
        annunciating: v.active
            && !matches!(
                v.state,
                AlarmState::Shelved | AlarmState::Suppressed | AlarmState::OutOfService
            ),
    })
}

/// The newest point time of a list of views.
fn newest(points: &[PointView]) -> Option<Timestamp> {
    points.iter().filter_map(|p| p.t).max()
}

impl Hub {
    fn new(
        config: WsConfig,
        feed: Arc<HubFeed>,
        registry: Arc<FleetRegistry>,
        boards: Boards,
        sessions: Arc<DashMap<String, Arc<Client>>>,
        tx: mpsc::Sender<HubCommand>,
    ) -> Self {
        let mut hub = Self {
            config,
            feed,
            registry,
            board: boards.alarms,
            plans: boards.plans,
            remote: boards.remote,
            sessions,
            tx,
            routes: Vec::new(),
            marks: HashMap::new(),
            zones: BTreeMap::new(),
            dirty_rooms: BTreeSet::new(),
            dirty_zones: BTreeSet::new(),
            last_zone: HashMap::new(),
            last_mark: HashMap::new(),
            alarms: HashMap::new(),
            cache: HashMap::new(),
            refs: HashMap::new(),
            loading: HashMap::new(),
            recent: VecDeque::new(),
            event_no: 0,
            orders: HashMap::new(),
        };
        // The whole fleet: a cluster node also marks the rooms other nodes supervise (the live
        // mirror brings their status).
        for r in hub.registry.fleet_summaries() {
            let z = hub.zones.entry(r.zone.clone()).or_default();
            z.rooms += 1;
            z.online += u32::from(r.detail.online);
            hub.marks.insert(
                r.id,
                RoomMark {
                    zone: r.zone,
                    online: r.detail.online,
                    alarms: 0,
                    unacked: 0,
                    annunciating: [0; 4],
                },
            );
        }
        if let Some(board) = hub.board.clone() {
            for v in board.list(&AlarmFilter::default()) {
                hub.apply_alarm(v, false);
            }
        }
        hub.dirty_rooms.clear();
        hub.dirty_zones.clear();
        hub
    }

    async fn run(
        &mut self,
        mut rx: mpsc::Receiver<HubCommand>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let feed = self.feed.clone();
        let mut expiry = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = feed.wake.notified() => self.process_feed(),
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                _ = expiry.tick() => self.expire(),
                _ = shutdown.changed() => break,
            }
        }
    }

    // ---------------------------------------------------------------- feed

    fn process_feed(&mut self) {
        let drained = self.feed.drain();
        // The sockets' leg of a sample's trace: the feed logged each change's key inside its
        // batch's `ingest` span; the same key shows here, in the fan-out that sends it.
        let _fanout = tracing::debug_span!(
            "ws_fanout",
            changes = drained.changes.len(),
            events = drained.events.len(),
            sessions = self.sessions.len()
        )
        .entered();
        for change in drained.changes {
            tracing::trace!(change = %change_id(&change), "fanned out to the subscribed sessions");
            self.change(change);
        }
        if drained.events_lost > 0 {
            tracing::warn!(
                lost = drained.events_lost,
                "live alarm events lost to a full buffer; events subscriptions re-snapshotted"
            );
            self.resnapshot_where(|s| matches!(s, SubSpec::Events { alarm: true, .. }));
        }
        for e in drained.events {
            self.alarm_event(&e);
        }
        self.flush_fleet();
    }

    fn change(&mut self, change: Change) {
        let room = match &change {
            Change::Device(v) => Some(v.id.room.clone()),
            Change::Room(p) => Some(p.id.clone()),
            Change::Status { room, online } => {
                self.status(room, *online);
                None
            }
            Change::Alarm(v) => {
                self.apply_alarm((**v).clone(), true);
                None
            }
        };
        let Some(room) = room else { return };
        if let Some(loading) = self.loading.get_mut(&room) {
            loading.early.push(change);
            return;
        }
        if !self.cache.contains_key(&room) {
            return;
        }
        match change {
            Change::Device(v) => self.device(v),
            Change::Room(p) => self.room_part(p),
            _ => {}
        }
    }

    fn status(&mut self, room: &RoomId, online: bool) {
        let Some(mark) = self.marks.get_mut(room) else {
            return;
        };
        if mark.online == online {
            return;
        }
        mark.online = online;
        if let Some(z) = self.zones.get_mut(&mark.zone) {
            if online {
                z.online += 1;
            } else {
                z.online = z.online.saturating_sub(1);
            }
        }
        self.dirty_zones.insert(mark.zone.clone());
        self.dirty_rooms.insert(room.clone());
    }

    fn weigh(&mut self, v: &AlarmView, sign: i64) {
        let Some(w) = weight(v) else { return };
        let add = |n: &mut u32, yes: bool| {
            if yes {
                *n = (i64::from(*n) + sign).max(0) as u32;
            }
        };
        if let Some(z) = self.zones.get_mut(&v.zone) {
            add(&mut z.alarms[w.sev], true);
            add(&mut z.unacked, w.unacked);
            self.dirty_zones.insert(v.zone.clone());
        }
        if let Some(room) = &v.room {
            if let Some(m) = self.marks.get_mut(room) {
                add(&mut m.alarms, true);
                add(&mut m.unacked, w.unacked);
                add(&mut m.annunciating[w.sev], w.annunciating);
                self.dirty_rooms.insert(room.clone());
            }
        }
    }

    /// Mirrors an alarm's new view, re-weighs the summary and routes it to `alarms`
    /// subscriptions.
    fn apply_alarm(&mut self, view: AlarmView, route: bool) {
        let old = if view.listed() {
            self.alarms.insert(view.id.clone(), view.clone())
        } else {
            self.alarms.remove(&view.id)
        };
        if let Some(old) = &old {
            self.weigh(old, -1);
        }
        self.weigh(&view, 1);
        if !route {
            return;
        }
        let key: Arc<str> = Arc::from(view.id.as_str());
        let mut upsert: Option<Data> = None;
        let mut remove: Option<Data> = None;
        let mut overflowed = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let SubSpec::Alarms(filter) = &r.spec else {
                continue;
            };
            let now = view.listed() && filter.matches(&view);
            let before = old.as_ref().is_some_and(|o| filter.matches(o));
            let data = if now {
                upsert
                    .get_or_insert_with(|| data(&AlarmsDelta::Upsert { alarm: &view }))
                    .clone()
            } else if before {
                remove
                    .get_or_insert_with(|| data(&AlarmsDelta::Remove { alarm_id: &view.id }))
                    .clone()
            } else {
                continue;
            };
            if r.client.push(&r.id, &key, &data) == Pushed::Overflow {
                overflowed.push(i);
            }
        }
        self.resnapshot(overflowed);
    }

    fn alarm_event(&mut self, e: &AlarmEvent) {
        let source = match &e.source {
            AlarmSource::Device(d) => d.room.to_string(),
            AlarmSource::Zone(z) => format!("zone:{z}"),
        };
        let alarm_id = cistern_actors::alarms::alarm_id(&source, &e.key);
        let item = data(&EventItem::Alarm {
            alarm_id: &alarm_id,
            event: e,
        });
        self.event(true, item);
    }

    fn audit(&mut self, entry: &AuditEntry) {
        self.event(false, data(&EventItem::Audit { entry }));
    }

    fn event(&mut self, alarm: bool, data: Data) {
        self.event_no += 1;
        let key: Arc<str> = Arc::from(format!(
            "{}:{}",
            if alarm { "alarm" } else { "audit" },
            self.event_no
        ));
        if self.recent.len() >= RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back((alarm, data.clone()));
        let mut overflowed = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let wants = match r.spec {
                SubSpec::Events { alarm: a, audit: b } => (alarm && a) || (!alarm && b),
                _ => false,
            };
            if wants && r.client.push(&r.id, &key, &data) == Pushed::Overflow {
                overflowed.push(i);
            }
        }
        self.resnapshot(overflowed);
    }

    /// An order as written: to every `workorders` subscription it matches now or matched
    /// before (so that a reassigned order leaves a filtered list); a closed or cancelled order
    /// is sent once more, then forgotten.
    fn order(&mut self, order: Arc<WorkOrder>) {
        let before = if order.state.is_open() {
            self.orders.insert(order.id.clone(), order.clone())
        } else {
            self.orders.remove(&order.id)
        };
        let item = data(&OrdersDelta::Order { order: &order });
        let key: Arc<str> = Arc::from(order.id.as_str());
        let mut overflowed = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let wants = match &r.spec {
                SubSpec::Workorders(f) => {
                    f.matches(&order) || before.as_deref().is_some_and(|b| f.matches(b))
                }
                _ => false,
            };
            if wants && r.client.push(&r.id, &key, &item) == Pushed::Overflow {
                overflowed.push(i);
            }
        }
        self.resnapshot(overflowed);
    }

    /// Sends the zone and room summaries that changed.
    fn flush_fleet(&mut self) {
        let zones = std::mem::take(&mut self.dirty_zones);
        let rooms = std::mem::take(&mut self.dirty_rooms);
        let mut overflowed = Vec::new();
        for zone in zones {
            let Some(z) = self.zones.get(&zone) else {
                continue;
            };
            let data = data(&FleetDelta::Zone {
                zone: z.entry(&zone),
            });
            if same(self.last_zone.get(&zone), &data) {
                continue;
            }
            self.last_zone.insert(zone.clone(), data.clone());
            let key: Arc<str> = Arc::from(format!("zone:{zone}"));
            self.push_fleet(&zone, false, &key, &data, &mut overflowed);
        }
        for room in rooms {
            let Some(m) = self.marks.get(&room) else {
                continue;
            };
            let data = data(&FleetDelta::Room {
                room: m.entry(&room),
            });
            if same(self.last_mark.get(&room), &data) {
                continue;
            }
            self.last_mark.insert(room.clone(), data.clone());
            let key: Arc<str> = Arc::from(format!("room:{room}"));
            self.push_fleet(&m.zone, true, &key, &data, &mut overflowed);
        }
        overflowed.sort_unstable();
        overflowed.dedup();
        self.resnapshot(overflowed);
    }

    /// Pushes one fleet delta about `zone` to every fleet subscription whose zone filter takes
    /// it (a room mark only to those that asked for room marks); notes the routes whose queue
    /// overflowed.
    fn push_fleet(
        &self,
        zone: &ZoneId,
        room_mark: bool,
        key: &Arc<str>,
        data: &Data,
        overflowed: &mut Vec<usize>,
    ) {
        for (i, r) in self.routes.iter().enumerate() {
            if let SubSpec::Fleet { zone: f, rooms } = &r.spec {
                if (*rooms || !room_mark)
                    && f.as_ref().is_none_or(|f| f == zone)
                    && r.client.push(&r.id, key, data) == Pushed::Overflow
                {
                    overflowed.push(i);
                }
            }
        }
    }

    fn device(&mut self, view: DeviceView) {
        let room = view.id.room.clone();
        let Some(cached) = self.cache.get_mut(&room) else {
            return;
        };
        let list = match view.kind {
            cistern_schemas::DeviceKind::Pump => &mut cached.pumps,
            cistern_schemas::DeviceKind::Tank => &mut cached.tanks,
            cistern_schemas::DeviceKind::Camera => &mut cached.cameras,
            cistern_schemas::DeviceKind::Room => return,
        };
        let old = match list.iter_mut().find(|d| d.id == view.id) {
            Some(slot) => std::mem::replace(slot, view.clone()),
            None => {
                list.push(view.clone());
                DeviceView {
                    id: view.id.clone(),
                    kind: view.kind,
                    derived: serde_json::Value::Null,
                    points: Vec::new(),
                }
            }
        };
        let key: Arc<str> = Arc::from(view.id.to_string());
        let mut delta: Option<Data> = None;
        let mut made = PointDeltas::new();
        let mut overflowed = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            match &r.spec {
                SubSpec::Room(id) if id == &room => {
                    let d = delta
                        .get_or_insert_with(|| data(&RoomDelta::Device { device: &view }))
                        .clone();
                    if r.client.push(&r.id, &key, &d) == Pushed::Overflow {
                        overflowed.push(i);
                    }
                }
                SubSpec::Points(points) => {
                    // Pushing is the point, so not a match guard.
                    overflowed.extend(
                        push_points(r, points, &view.id, (&old.points, &view.points), &mut made)
                            .then_some(i),
                    );
                }
                _ => {}
            }
        }
        self.resnapshot(overflowed);
    }

    fn room_part(&mut self, part: RoomPart) {
        let room = part.id.clone();
        let Some(cached) = self.cache.get_mut(&room) else {
            return;
        };
        let old_points = std::mem::replace(&mut cached.points, part.points.clone());
        cached.status = part.status;
        cached.last_seen = part.last_seen;
        cached.last_data = part.last_data;
        cached.clock_skew = part.clock_skew;
        cached.derived = part.derived.clone();
        let key: Arc<str> = Arc::from("room");
        let device = cistern_schemas::DeviceId::room(room.clone());
        let mut delta: Option<Data> = None;
        let mut made = PointDeltas::new();
        let mut overflowed = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            match &r.spec {
                SubSpec::Room(id) if id == &room => {
                    let d = delta
                        .get_or_insert_with(|| data(&RoomDelta::Room { room: &part }))
                        .clone();
                    if r.client.push(&r.id, &key, &d) == Pushed::Overflow {
                        overflowed.push(i);
                    }
                }
                SubSpec::Points(points) => {
                    // Pushing is the point, so not a match guard.
                    overflowed.extend(
                        push_points(r, points, &device, (&old_points, &part.points), &mut made)
                            .then_some(i),
                    );
                }
                _ => {}
            }
        }
        self.resnapshot(overflowed);
    }

    // ---------------------------------------------------------------- snapshots

    /// The snapshot of a subscription, or none while a room it needs is loading.
    fn snapshot(&self, spec: &SubSpec) -> Option<Data> {
        Some(match spec {
            SubSpec::Fleet { zone, rooms } => {
                let zones = (self.zones.iter())
                    .filter(|(z, _)| zone.as_ref().is_none_or(|f| f == *z))
                    .map(|(z, s)| s.entry(z))
                    .collect();
                let rooms = rooms.then(|| {
                    let mut marks: Vec<(&RoomId, &RoomMark)> = (self.marks.iter())
                        .filter(|(_, m)| zone.as_ref().is_none_or(|f| f == &m.zone))
                        .collect();
                    marks.sort_by(|a, b| a.0.cmp(b.0));
                    marks.into_iter().map(|(r, m)| m.entry(r)).collect()
                });
                data(&FleetSnapshot { zones, rooms })
            }
            SubSpec::Room(room) => {
                let view = self.cache.get(room)?;
                match crate::api::rooms::room_body(&self.registry, self.plans.as_deref(), view) {
                    Ok(body) => data(&body),
                    Err(e) => {
                        tracing::error!(%room, error = %e, "a room snapshot cannot be serialised");
                        data(&serde_json::Value::Null)
                    }
                }
            }
            SubSpec::Points(points) => {
                let mut out = Vec::with_capacity(points.len());
                for p in points {
                    let view = self.cache.get(&p.device.room)?;
                    let list: &[_] = match p.device.unit {
                        cistern_schemas::DeviceUnit::Room => &view.points,
                        _ => (view.pumps.iter())
                            .chain(view.tanks.iter())
                            .chain(view.cameras.iter())
                            .find(|d| d.id == p.device)
                            .map_or(&[], |d| &d.points[..]),
                    };
                    out.push(PointValue::of(p, list.iter().find(|v| v.name == &*p.name)));
                }
                data(&PointsSnapshot { points: out })
            }
            SubSpec::Alarms(filter) => {
                let mut list: Vec<&AlarmView> =
                    self.alarms.values().filter(|v| filter.matches(v)).collect();
                list.sort_by(|a, b| {
                    a.severity
                        .cmp(&b.severity)
                        .then(b.raised_at.cmp(&a.raised_at))
                        .then(a.id.cmp(&b.id))
                });
                data(&AlarmsSnapshot { alarms: list })
            }
            SubSpec::Workorders(filter) => {
                let mut list: Vec<&WorkOrder> = (self.orders.values())
                    .map(|o| &**o)
                    .filter(|o| filter.matches(o))
                    .collect();
                list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
                data(&OrdersSnapshot { orders: list })
            }
            SubSpec::Events { alarm, audit } => {
                let events = (self.recent.iter())
                    .filter(|(is_alarm, _)| if *is_alarm { *alarm } else { *audit })
                    .map(|(_, d)| &**d)
                    .collect();
                data(&EventsSnapshot { events })
            }
        })
    }

    /// Re-snapshots the routes at these indices (their queues overflowed).
    fn resnapshot(&self, indices: Vec<usize>) {
        for i in indices {
            if let Some(r) = self.routes.get(i) {
                if let Some(data) = self.snapshot(&r.spec) {
                    r.client.set_snapshot(&r.id, data, true);
                }
            }
        }
    }

    fn resnapshot_where(&self, pred: impl Fn(&SubSpec) -> bool) {
        let idx = (self.routes.iter().enumerate())
            .filter(|(_, r)| pred(&r.spec))
            .map(|(i, _)| i)
            .collect();
        self.resnapshot(idx);
    }

    // ---------------------------------------------------------------- commands

    fn command(&mut self, cmd: HubCommand) {
        match cmd {
            HubCommand::Subscribe {
                client,
                id,
                spec,
                filter,
                since,
            } => self.subscribe(client, id, spec, filter, since),
            HubCommand::Unsubscribe { client, id } => {
                self.drop_route(&client.session, &id);
                let frame = if client.remove(&id) {
                    ServerMessage::Unsubscribed { id }
                } else {
                    ServerMessage::error(
                        Some(&id),
                        "unknown_subscription",
                        format!("no subscription {id:?} on this session"),
                    )
                };
                client.send_control(frame.to_text());
            }
            HubCommand::RoomFetched { room, result } => self.fetched(room, result),
            HubCommand::Audit(entry) => self.audit(&entry),
            HubCommand::Order(order) => self.order(order),
            HubCommand::OpenOrders(open) => {
                self.orders = open
                    .into_iter()
                    .map(|o| (o.id.clone(), Arc::new(o)))
                    .collect();
                self.resnapshot_where(|s| matches!(s, SubSpec::Workorders(_)));
            }
            HubCommand::AuditLost(n) => {
                tracing::warn!(
                    lost = n,
                    "audit entries lost by the live stream; events subscriptions re-snapshotted"
                );
                self.resnapshot_where(|s| matches!(s, SubSpec::Events { audit: true, .. }));
            }
        }
    }

    fn subscribe(
        &mut self,
        client: Arc<Client>,
        id: String,
        spec: SubSpec,
        filter: serde_json::Value,
        since: Option<u64>,
    ) {
        let topic = spec.topic();
        if let Some(since) = since {
            if client.holds(&id, topic, &filter) {
                match client.resume(&id, since) {
                    Resume::Replayed => return,
                    Resume::Resync => {
                        if let Some(r) = self.route(&client.session, &id) {
                            if let Some(data) = self.snapshot(&r.spec) {
                                client.set_snapshot(&id, data, true);
                                return;
                            }
                        }
                    }
                }
            }
        }
        self.drop_route(&client.session, &id);
        client.add(&id, topic, filter);
        for room in spec.rooms() {
            self.retain_room(&room);
        }
        let resync = since.is_some();
        let rooms = spec.rooms();
        self.routes.push(Route {
            client: client.clone(),
            id: id.clone(),
            spec,
        });
        let waiting: Vec<RoomId> = rooms
            .into_iter()
            .filter(|r| self.loading.contains_key(r))
            .collect();
        if waiting.is_empty() {
            if let Some(r) = self.route(&client.session, &id) {
                if let Some(data) = self.snapshot(&r.spec) {
                    client.set_snapshot(&id, data, resync);
                }
            }
        } else {
            for room in waiting {
                if let Some(l) = self.loading.get_mut(&room) {
                    l.waiters.push((client.session.clone(), id.clone(), resync));
                }
            }
        }
    }

    fn route(&self, session: &str, id: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.client.session == session && r.id == id)
    }

    fn drop_route(&mut self, session: &str, id: &str) {
        if let Some(i) =
            (self.routes.iter()).position(|r| r.client.session == session && r.id == id)
        {
            let r = self.routes.swap_remove(i);
            for room in r.spec.rooms() {
                self.release_room(&room);
            }
        }
    }

    fn retain_room(&mut self, room: &RoomId) {
        let n = self.refs.entry(room.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            return;
        }
        // Changes flow from now on; the fetch gives the base they apply to.
        self.feed.watch(room);
        self.loading.insert(room.clone(), Loading::default());
        let (registry, tx, room) = (self.registry.clone(), self.tx.clone(), room.clone());
        let remote = self.remote.clone();
        tokio::spawn(async move {
            let result = match (registry.room_view(&room).await, remote) {
                (Ok(view), _) => Ok(Box::new(view)),
                // Another cluster node supervises the room: its view comes from there.
                (Err(cistern_actors::RouteError::NotHere(_)), Some(remote)) => {
                    remote_view(remote.as_ref(), &registry, &room).await
                }
                (Err(e), _) => Err(e.to_string()),
            };
            let _ = tx.send(HubCommand::RoomFetched { room, result }).await;
        });
    }

    fn release_room(&mut self, room: &RoomId) {
        let Some(n) = self.refs.get_mut(room) else {
            return;
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.refs.remove(room);
            self.cache.remove(room);
            self.loading.remove(room);
            self.feed.unwatch(room);
        }
    }

    fn fetched(&mut self, room: RoomId, result: Result<Box<RoomView>, String>) {
        let Some(loading) = self.loading.remove(&room) else {
            return;
        };
        match result {
            Ok(view) => {
                self.cache.insert(room.clone(), *view);
                // Changes that arrived during the fetch, unless the fetch already has them.
                for change in loading.early {
                    match change {
                        Change::Device(v) => {
                            let cached = self.cache.get(&room).and_then(|c| {
                                (c.pumps.iter().chain(c.tanks.iter()).chain(c.cameras.iter()))
                                    .find(|d| d.id == v.id)
                                    .map(|d| newest(&d.points))
                            });
                            if cached.flatten() <= newest(&v.points) {
                                self.device(v);
                            }
                        }
                        Change::Room(p) => {
                            let cached = self.cache.get(&room).map(|c| newest(&c.points));
                            if cached.flatten() <= newest(&p.points) {
                                self.room_part(p);
                            }
                        }
                        _ => {}
                    }
                }
                for (session, id, resync) in loading.waiters {
                    let Some(r) = self.route(&session, &id) else {
                        continue;
                    };
                    if let Some(data) = self.snapshot(&r.spec) {
                        r.client.set_snapshot(&id, data, resync);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%room, error = %e, "live view of a room could not be fetched");
                for (session, id, _) in loading.waiters {
                    let Some(client) = self.route(&session, &id).map(|r| r.client.clone()) else {
                        continue;
                    };
                    self.drop_route(&session, &id);
                    client.remove(&id);
                    client.unclaim(&id);
                    client.send_control(
                        ServerMessage::error(
                            Some(&id),
                            "room_unavailable",
                            format!("room {room} did not answer: {e}"),
                        )
                        .to_text(),
                    );
                }
            }
        }
    }

    /// Forgets sessions detached for longer than the resume window.
    fn expire(&mut self) {
        let window = self.config.resume_window;
        let expired: Vec<String> = (self.sessions.iter())
            .filter(|c| c.detached_since().is_some_and(|t| t.elapsed() > window))
            .map(|c| c.key().clone())
            .collect();
        for session in expired {
            self.sessions.remove(&session);
            let ids: Vec<String> = (self.routes.iter())
                .filter(|r| r.client.session == session)
                .map(|r| r.id.clone())
                .collect();
            for id in ids {
                self.drop_route(&session, &id);
            }
        }
    }
}

/// The `points` deltas of one change, each made once for every route that watches its point:
/// (key, data).
type PointDeltas = HashMap<PointId, (Arc<str>, Data)>;

/// Pushes the points of `device` that changed to a `points` route; true on overflow.
fn push_points(
    r: &Route,
    points: &[PointId],
    device: &cistern_schemas::DeviceId,
    (old, new): (&[PointView], &[PointView]),
    made: &mut PointDeltas,
) -> bool {
    let mut overflow = false;
    for p in points.iter().filter(|p| &p.device == device) {
        let (key, delta) = match made.get(p) {
            Some(made) => made.clone(),
            None => {
                let now = new.iter().find(|v| v.name == &*p.name);
                let before = old.iter().find(|v| v.name == &*p.name);
                if now == before || now.is_none() {
                    continue;
                }
                let value = PointValue::of(p, now);
                let delta = data(&PointsDelta::Point { point: &value });
                let key: Arc<str> = Arc::from(value.id.as_str());
                made.insert(p.clone(), (key.clone(), delta.clone()));
                (key, delta)
            }
        };
        overflow |= r.client.push(&r.id, &key, &delta) == Pushed::Overflow;
    }
    overflow
}

/// Whether a fleet entry is what was sent last (only changes are sent).
fn same(last: Option<&Data>, now: &Data) -> bool {
    last.is_some_and(|l| l.get() == now.get())
}

/// What a change is about, for the fan-out's trace (the feed logs the same ids).
fn change_id(change: &Change) -> String {
    match change {
        Change::Device(v) => v.id.to_string(),
        Change::Room(p) => p.id.to_string(),
        Change::Status { room, .. } => format!("status of {room}"),
        Change::Alarm(a) => a.id.to_string(),
    }
}
