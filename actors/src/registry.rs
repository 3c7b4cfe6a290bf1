//! The fleet registry: room id → room actor, and the status board.
//!
//! Ingest routes every decoded batch through [`FleetRegistry::route`]. The map is a DashMap so
//! that routing from many ingest tasks never contends on one lock; an entry's guard is dropped
//! before any `.await` (holding it across an await could deadlock a shard of the map).
//!
//! Rooms are hashed into [`SHARDS`] shards; a shard lives on one arbiter (thread). A single
//! node runs every shard ([`FleetRegistry::start`]); in a cluster a node runs the shards it
//! owns ([`FleetRegistry::start_only`]) and starts and stops them at runtime
//! ([`FleetRegistry::start_rooms`], [`FleetRegistry::stop_rooms`] and their per-shard forms).
//! A room of the fleet that is not running here is *parked*: the registry knows its spec, and
//! refuses its batches and requests with [`RouteError::NotHere`] (ingest does not acknowledge
//! such a message: the broker keeps it for the room's owner) — never with `UnknownRoom`, which
//! ingest treats as garbage and acknowledges.
//!
//! Stopping a room (retiring it): its batches are refused from that moment, the batches it
//! already took are applied (the registry waits for its intake permits, bounded by
//! [`DRAIN_TIMEOUT`]), then the room and its devices save their state now (alarm engine,
//! live snapshots) and go idle: they cancel their timers and drop every address they hold,
//! the registry and the zone drop theirs, and the actors end once no address is left. They
//! are never stopped with `ctx.stop()`: actix's `Supervisor` restarts a stopped actor as long
//! as any address to it lives (a request in flight would revive it), while an actor whose
//! mailbox has no sender and whose context has no timer ends for good.
//!
//! Backpressure: each room has an intake semaphore of [`crate::ActorConfig::mailbox`] permits.
//! [`FleetRegistry::route`] waits for a permit (a properly woken async wait), and the permit
//! travels with the batch — to the room, then to the device it is for — and is released once
//! the batch is applied. A room never holds more than that many unapplied batches, ingest
//! waits when it does, and no sample is ever dropped. actix 0.13's bounded mailboxes are not
//! used for this: `Addr::send` on a full mailbox returns `Pending` without registering a
//! waker, and can sleep forever (seen at 2,100 rooms). The mailboxes are unbounded, and
//! messages go in with [`crate::mailbox::Post`], never `try_send` (which refuses the 17th
//! message to an actor that has not started yet).

use crate::alarms::zone::{AckZone, MemberEvent, ZoneActor, ZoneMembers};
use crate::device::{DeviceDeps, Intake};
use crate::mailbox::Post;
use crate::ports::Receipt;
use crate::pump_room::status_label;
use crate::pump_room::{
    AlarmCommandError, GetAlarms, GetRoomView, NightLeak, PumpRoomActor, Retire, RoomCommand,
    RoomStatus, RoomSummary, RoomView, SamplesReceived, SwapRules, TankCleanings, UpdateSpec,
};
use actix::{Addr, ArbiterHandle, Supervisor};
use cistern_rules::{AlarmEvent, AlarmRecord, Command, RuleSet};
use cistern_schemas::inventory::{Inventory, RoomSpec, ZoneSpec};
use cistern_schemas::reading::DeviceBatch;
use cistern_schemas::ZoneId;
use cistern_schemas::{RoomId, Timestamp};
use dashmap::DashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long stopping a room waits for the batches it already took to be applied.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long stopping a room waits for it and its devices to save their state.
const RETIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Number of shards rooms are hashed into (fixed: changing it moves rooms between nodes).
pub const SHARDS: u32 = 64;

/// The shard of a room: FNV-1a of its id, stable across processes and versions.
pub fn shard_of(room: &RoomId) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in room.as_str().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SHARDS
}

/// Live status of every room, written by the room actors, read by listings.
pub type StatusBoard = DashMap<RoomId, RoomStatus>;

/// Why a batch or a request could not reach its room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("unknown room {0}")]
    UnknownRoom(String),
    #[error("room {room} has no device {device}")]
    UnknownDevice { room: String, device: String },
    #[error("room {0} is not running")]
    RoomDown(String),
    #[error("room {0} did not answer in time")]
    Timeout(String),
    /// A room of the fleet that this node does not run (its shard is owned elsewhere, or it
    /// was just stopped here). Ingest must not acknowledge its message: the broker keeps it
    /// for the room's owner.
    #[error("room {0} is not run by this node")]
    NotHere(String),
}

impl RouteError {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            RouteError::UnknownRoom(_) => "unknown_room",
            RouteError::UnknownDevice { .. } => "unknown_device",
            RouteError::RoomDown(_) => "room_down",
            RouteError::Timeout(_) => "timeout",
            RouteError::NotHere(_) => "not_here",
        }
    }
}

fn mailbox_error(who: &dyn std::fmt::Display, e: actix::MailboxError) -> RouteError {
    match e {
        actix::MailboxError::Timeout => RouteError::Timeout(who.to_string()),
        actix::MailboxError::Closed => RouteError::RoomDown(who.to_string()),
    }
}

/// Why an alarm command failed: it did not reach its room, or the room refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandFailed {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Alarm(AlarmCommandError),
}

/// Why the running fleet could not follow a room's changed spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FollowError {
    /// The room runs on, with its old spec, until the next start.
    #[error("{0}")]
    Refused(String),
    #[error("room {0} is not running")]
    RoomDown(String),
    #[error("this registry cannot start rooms (it was not started by FleetRegistry::start)")]
    NoSpawner,
    #[error("zone {0} is not a zone of this fleet")]
    UnknownZone(String),
}

/// What starting a room at runtime needs: the actors' dependencies and the arbiters.
#[derive(Debug, Clone)]
struct Spawner {
    deps: DeviceDeps,
    arbiters: Vec<ArbiterHandle>,
}

#[derive(Debug, Clone)]
struct RoomEntry {
    addr: Addr<PumpRoomActor>,
    spec: Arc<RoomSpec>,
    intake: Arc<Semaphore>,
    /// The intake's permits in all (what the room may hold unapplied).
    capacity: usize,
    /// Set when the room is being stopped: batches that get a permit after it are refused.
    retired: Arc<AtomicBool>,
}

/// Every room of this node, and the zone actors when it runs rules.
#[derive(Debug, Default)]
pub struct FleetRegistry {
    rooms: DashMap<RoomId, RoomEntry>,
    zones: DashMap<ZoneId, Addr<ZoneActor>>,
    /// The inventory's supply zones (id, names), for the room list.
    zone_specs: Vec<ZoneSpec>,
    board: Arc<StatusBoard>,
    /// How rooms added at runtime start ([`FleetRegistry::follow`]).
    spawner: std::sync::OnceLock<Spawner>,
    /// Serialises runtime changes (a room started twice at once would run twice).
    changes: std::sync::Mutex<()>,
    /// Rooms of the fleet not running here (see the module doc).
    parked: DashMap<RoomId, Arc<RoomSpec>>,
    /// The shards this registry runs: a room added at runtime ([`FleetRegistry::follow`])
    /// starts only when its shard is one of them, else it is parked.
    held: std::sync::Mutex<HashSet<u32>>,
}

impl FleetRegistry {
    /// Starts a supervised actor tree for every room of `inventory`, spreading shards over
    /// `arbiters` (at least one). The registry runs every shard.
    pub fn start(
        inventory: &Inventory,
        deps: &DeviceDeps,
        arbiters: &[ArbiterHandle],
    ) -> Arc<Self> {
        let registry = Self::start_with(inventory, deps, arbiters, |_| true);
        registry.lock_held().extend(0..SHARDS);
        registry
    }

    /// Starts the rooms of `inventory` that `keep` keeps, and parks the others (known, not
    /// run: see the module doc), ready to start rooms later ([`FleetRegistry::start_rooms`],
    /// [`FleetRegistry::start_shard`]). The registry holds the shards of the rooms it kept.
    pub fn start_only(
        inventory: &Inventory,
        deps: &DeviceDeps,
        arbiters: &[ArbiterHandle],
        keep: impl Fn(&RoomSpec) -> bool,
    ) -> Arc<Self> {
        let registry = Self::start_with(inventory, deps, arbiters, keep);
        let shards: Vec<u32> = registry.rooms.iter().map(|r| shard_of(r.key())).collect();
        registry.lock_held().extend(shards);
        registry
    }

    fn start_with(
        inventory: &Inventory,
        deps: &DeviceDeps,
        arbiters: &[ArbiterHandle],
        keep: impl Fn(&RoomSpec) -> bool,
    ) -> Arc<Self> {
        let registry = Arc::new(Self {
            zone_specs: inventory.zones.clone(),
            ..Self::default()
        });
        let _ = registry.spawner.set(Spawner {
            deps: deps.clone(),
            arbiters: arbiters.to_vec(),
        });
        let (kept, parked): (Vec<&RoomSpec>, Vec<&RoomSpec>) =
            inventory.rooms.iter().partition(|r| keep(r));
        for spec in parked {
            registry
                .parked
                .insert(spec.id.clone(), Arc::new(spec.clone()));
        }
        if let Some(arbiter) = arbiters.first() {
            for spec in &kept {
                registry.ensure_zone(&spec.zone, deps, arbiter);
            }
        }
        for spec in kept {
            let arbiter = &arbiters[shard_of(&spec.id) as usize % arbiters.len().max(1)];
            registry.spawn_room(Arc::new(spec.clone()), deps.clone(), arbiter);
        }
        for zone in registry.zones.iter() {
            registry.send_members(zone.key(), zone.value());
        }
        registry
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the zone actor of `zone` (when the node runs rules and it is not running yet).
    fn ensure_zone(&self, zone: &ZoneId, deps: &DeviceDeps, arbiter: &ArbiterHandle) {
        let Some(host) = &deps.rules else { return };
        if self.zones.contains_key(zone) {
            return;
        }
        let (z, host, clock) = (zone.clone(), host.clone(), deps.clock.clone());
        let addr = Supervisor::start_in_arbiter(arbiter, move |_| ZoneActor::new(z, host, clock));
        self.zones.insert(zone.clone(), addr);
    }

    /// Tells a zone actor its member rooms.
    fn send_members(&self, zone: &ZoneId, addr: &Addr<ZoneActor>) {
        let members = (self.rooms.iter())
            .filter(|r| &r.spec.zone == zone)
            .map(|r| (r.key().clone(), r.addr.clone().recipient()))
            .collect();
        let _ = addr.post(ZoneMembers(members));
    }

    /// Puts a room's spec in force at runtime (its archive changed): a room not running is
    /// started (on its shard's arbiter, a member of its zone) when this registry holds its
    /// shard, else parked (known, not run); a running one takes the new
    /// nameplates. A running room refuses a change of zone or of its number of pumps, tanks or
    /// cameras ([`FollowError::Refused`]): it keeps its old spec until the next start.
    pub async fn follow(&self, spec: RoomSpec) -> Result<(), FollowError> {
        let running = self.rooms.get(&spec.id).map(|e| e.addr.clone());
        if let Some(addr) = running {
            let spec = Arc::new(spec);
            addr.send(UpdateSpec(spec.clone()))
                .timeout(Duration::from_secs(5))
                .await
                .map_err(|_| FollowError::RoomDown(spec.id.to_string()))?
                .map_err(FollowError::Refused)?;
            if let Some(mut e) = self.rooms.get_mut(&spec.id) {
                e.spec = spec;
            }
            return Ok(());
        }
        let spawner = self.spawner.get().ok_or(FollowError::NoSpawner)?.clone();
        if !self.zone_specs.iter().any(|z| z.id == spec.zone) {
            return Err(FollowError::UnknownZone(spec.zone.to_string()));
        }
        let Some(arbiter) = (spawner.arbiters)
            .get(shard_of(&spec.id) as usize % spawner.arbiters.len().max(1))
            .cloned()
        else {
            return Err(FollowError::NoSpawner);
        };
        let _guard = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        if self.rooms.contains_key(&spec.id) {
            return Ok(());
        }
        if !self.lock_held().contains(&shard_of(&spec.id)) {
            // Another node's room (or one of a shard not acquired yet): known, not run.
            self.parked.insert(spec.id.clone(), Arc::new(spec));
            return Ok(());
        }
        self.parked.remove(&spec.id);
        self.ensure_zone(&spec.zone, &spawner.deps, &arbiter);
        let zone = spec.zone.clone();
        self.spawn_room(Arc::new(spec), spawner.deps, &arbiter);
        if let Some(addr) = self.zones.get(&zone).map(|z| z.value().clone()) {
            self.send_members(&zone, &addr);
        }
        Ok(())
    }

    /// Starts `specs`' rooms that are not running here yet (idempotent: a running room is left
    /// as it is), each on its shard's arbiter and a member of its zone, from its saved state
    /// (alarm engine, live snapshots), and holds their shards. Returns how many started. A
    /// spec of a zone the inventory does not have refuses the whole call (nothing starts).
    pub fn start_rooms(&self, specs: Vec<RoomSpec>) -> Result<usize, FollowError> {
        let spawner = self.spawner.get().ok_or(FollowError::NoSpawner)?.clone();
        if let Some(bad) = specs
            .iter()
            .find(|s| !self.zone_specs.iter().any(|z| z.id == s.zone))
        {
            return Err(FollowError::UnknownZone(bad.zone.to_string()));
        }
        let n = spawner.arbiters.len();
        if n == 0 {
            return Err(FollowError::NoSpawner);
        }
        let _guard = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let mut zones = HashSet::new();
        let mut started = 0;
        for spec in specs {
            let shard = shard_of(&spec.id);
            self.lock_held().insert(shard);
            if self.rooms.contains_key(&spec.id) {
                continue;
            }
            let arbiter = &spawner.arbiters[shard as usize % n];
            self.parked.remove(&spec.id);
            self.ensure_zone(&spec.zone, &spawner.deps, arbiter);
            zones.insert(spec.zone.clone());
            self.spawn_room(Arc::new(spec), spawner.deps.clone(), arbiter);
            started += 1;
        }
        for zone in zones {
            if let Some(addr) = self.zones.get(&zone).map(|z| z.value().clone()) {
                self.send_members(&zone, &addr);
            }
        }
        Ok(started)
    }

    /// Starts every parked room of `shard` (see [`FleetRegistry::start_rooms`]) and holds
    /// the shard (a room the archive adds to it later starts too). Returns how many started.
    pub fn start_shard(&self, shard: u32) -> Result<usize, FollowError> {
        let specs: Vec<RoomSpec> = (self.parked.iter())
            .filter(|r| shard_of(r.key()) == shard)
            .map(|r| RoomSpec::clone(r.value()))
            .collect();
        let started = self.start_rooms(specs)?;
        self.lock_held().insert(shard);
        Ok(started)
    }

    /// Stops every running room of `shard` for good (see [`FleetRegistry::stop_rooms`]) and
    /// lets the shard go. Returns how many stopped.
    pub async fn stop_shard(&self, shard: u32) -> usize {
        let rooms = self.rooms_of_shard(shard);
        self.lock_held().remove(&shard);
        let stopped = self.stop_rooms(&rooms).await;
        // A room the archive added meanwhile was parked: the shard is not held any more.
        self.lock_held().remove(&shard);
        stopped
    }

    /// Takes rooms off this node for good (see the module doc): their new batches are refused
    /// at once ([`RouteError::NotHere`]), the batches they took are applied (waiting up to
    /// [`DRAIN_TIMEOUT`] for them), they save their alarm state and live snapshots now, their
    /// actors end (not restarted), and they leave their zone, the status board, the live
    /// figures and the alarm board (their alarms are the next owner's; the gauges follow).
    /// They stay known (parked). A shard with no running room left is no longer held.
    /// Returns how many of `rooms` were running and stopped.
    pub async fn stop_rooms(&self, rooms: &[RoomId]) -> usize {
        let retiring: Vec<RoomEntry> = {
            let _guard = self.changes.lock().unwrap_or_else(|p| p.into_inner());
            let mut out = Vec::new();
            let mut zones = HashSet::new();
            for room in rooms {
                if let Some((id, entry)) = self.rooms.remove(room) {
                    entry.retired.store(true, Ordering::SeqCst);
                    self.parked.insert(id, entry.spec.clone());
                    zones.insert(entry.spec.zone.clone());
                    out.push(entry);
                }
            }
            let emptied: Vec<u32> = (out.iter())
                .map(|e| shard_of(&e.spec.id))
                .filter(|s| !self.rooms.iter().any(|r| shard_of(r.key()) == *s))
                .collect();
            let mut held = self.lock_held();
            for s in emptied {
                held.remove(&s);
            }
            drop(held);
            // The zone actors drop their addresses of the stopped rooms.
            for zone in zones {
                if let Some(addr) = self.zones.get(&zone).map(|z| z.value().clone()) {
                    self.send_members(&zone, &addr);
                }
            }
            out
        };
        let stopped = retiring.len();
        futures::future::join_all(retiring.into_iter().map(|e| self.retire(e))).await;
        stopped
    }

    /// Drains a room taken off the map, has its tree save and go idle, and clears its traces.
    async fn retire(&self, entry: RoomEntry) {
        let room = entry.spec.id.clone();
        let all = u32::try_from(entry.capacity).unwrap_or(u32::MAX);
        // Every permit back: every batch the room took is applied (batches that wait for a
        // permit meanwhile see the room retired and give theirs back).
        match tokio::time::timeout(DRAIN_TIMEOUT, entry.intake.acquire_many(all)).await {
            Ok(Ok(permits)) => permits.forget(),
            Ok(Err(_)) => {}
            Err(_) => {
                tracing::warn!(%room, after = ?DRAIN_TIMEOUT, "stopping a room: its batches in flight did not all apply in time; its state is saved after those it has")
            }
        }
        entry.intake.close();
        // The mailbox is in order: batches still queued are applied before the retirement.
        if let Err(error) = entry.addr.send(Retire).timeout(RETIRE_TIMEOUT).await {
            tracing::error!(%room, %error, "stopping a room: it did not confirm that it saved its state");
        }
        self.board.remove(&room);
        if let Some(spawner) = self.spawner.get() {
            spawner.deps.figures.remove_room(&room);
            if let Some(host) = &spawner.deps.rules {
                host.board.remove_source(room.as_str());
            }
        }
        tracing::debug!(%room, "room stopped on this node");
    }

    /// Whether `room` runs on this node.
    pub fn runs(&self, room: &RoomId) -> bool {
        self.rooms.contains_key(room)
    }

    /// A registry that knows `inventory`'s rooms and runs none of them (every room parked, no
    /// actor, no arbiter): for code that only asks what the fleet is, such as the fuzz targets
    /// of the WebSocket subscription filters (fuzz/).
    #[doc(hidden)]
    pub fn known_only(inventory: &Inventory) -> Self {
        let registry = Self {
            zone_specs: inventory.zones.clone(),
            ..Self::default()
        };
        for spec in &inventory.rooms {
            registry
                .parked
                .insert(spec.id.clone(), Arc::new(spec.clone()));
        }
        registry
    }

    /// The spec of a room of the fleet, running here or parked.
    pub fn known_spec(&self, room: &RoomId) -> Option<Arc<RoomSpec>> {
        self.spec(room)
            .or_else(|| self.parked.get(room).map(|e| e.value().clone()))
    }

    /// The rooms of `shard` running here, sorted.
    pub fn rooms_of_shard(&self, shard: u32) -> Vec<RoomId> {
        let mut out: Vec<RoomId> = (self.rooms.iter())
            .filter(|r| shard_of(r.key()) == shard)
            .map(|r| r.key().clone())
            .collect();
        out.sort();
        out
    }

    /// Every room of `shard` this registry knows (running here or parked), sorted.
    pub fn known_rooms_of_shard(&self, shard: u32) -> Vec<RoomId> {
        let mut out = self.rooms_of_shard(shard);
        out.extend(
            (self.parked.iter())
                .filter(|r| shard_of(r.key()) == shard)
                .map(|r| r.key().clone()),
        );
        out.sort();
        out
    }

    /// The shards this registry holds, sorted.
    pub fn held_shards(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self.lock_held().iter().copied().collect();
        out.sort_unstable();
        out
    }

    /// The supply zones of the inventory, in its order.
    pub fn zone_specs(&self) -> &[ZoneSpec] {
        &self.zone_specs
    }

    /// Starts one room's actor tree on `arbiter`.
    pub fn spawn_room(&self, spec: Arc<RoomSpec>, deps: DeviceDeps, arbiter: &ArbiterHandle) {
        let board = self.board.clone();
        let s = spec.clone();
        let capacity = deps.config.mailbox.max(1);
        let intake = Arc::new(Semaphore::new(capacity));
        let zone = self
            .zones
            .get(&spec.zone)
            .map(|z| z.value().clone().recipient::<MemberEvent>());
        let addr = Supervisor::start_in_arbiter(arbiter, move |_| {
            PumpRoomActor::new(s, deps, board, zone)
        });
        self.rooms.insert(
            spec.id.clone(),
            RoomEntry {
                addr,
                spec,
                intake,
                capacity,
                retired: Arc::default(),
            },
        );
    }

    /// Puts a reloaded rule set in force in every room.
    pub fn swap_rules(&self, rules: &Arc<RuleSet>) {
        for room in self.rooms.iter() {
            if room.addr.post(SwapRules(rules.clone())).is_err() {
                tracing::error!(room = %room.key(), "room did not take the reloaded rules");
            }
        }
    }

    /// Tells a room its tanks' last cleanings (see [`TankCleanings`]); false when the room is
    /// not on this node or its mailbox is closed.
    pub fn tank_cleanings(&self, room: &RoomId, cleanings: Vec<(u8, Timestamp)>) -> bool {
        self.rooms
            .get(room)
            .map(|e| e.addr.clone())
            .is_some_and(|addr| addr.post(TankCleanings(cleanings)).is_ok())
    }

    /// Tells a room its nightly leak facts (see [`NightLeak`]); false when the room is not on
    /// this node or its mailbox is closed.
    pub fn night_leak(&self, room: &RoomId, leak: NightLeak) -> bool {
        self.rooms
            .get(room)
            .map(|e| e.addr.clone())
            .is_some_and(|addr| addr.post(leak).is_ok())
    }

    /// Applies an operator command to one of a room's alarms.
    pub async fn command(
        &self,
        room: &RoomId,
        command: Command,
    ) -> Result<Vec<AlarmEvent>, CommandFailed> {
        let entry = self.entry(room)?;
        entry
            .addr
            .send(RoomCommand(command))
            .timeout(Duration::from_secs(5))
            .await
            .map_err(|e| mailbox_error(room, e))?
            .map_err(CommandFailed::Alarm)
    }

    /// Every alarm record of a room (normal ones included).
    pub async fn alarms(&self, room: &RoomId) -> Result<Vec<AlarmRecord>, RouteError> {
        let entry = self.entry(room)?;
        entry
            .addr
            .send(GetAlarms)
            .timeout(Duration::from_secs(5))
            .await
            .map_err(|e| mailbox_error(room, e))
    }

    /// Acknowledges a zone's alarm.
    pub async fn ack_zone(
        &self,
        zone: &ZoneId,
        user: String,
        comment: String,
    ) -> Result<Vec<AlarmEvent>, RouteError> {
        let addr = self
            .zones
            .get(zone)
            .map(|z| z.value().clone())
            .ok_or_else(|| RouteError::UnknownRoom(format!("zone:{zone}")))?;
        addr.send(AckZone { user, comment })
            .timeout(Duration::from_secs(5))
            .await
            .map_err(|e| mailbox_error(zone, e))?
            .map_err(|_| RouteError::RoomDown(format!("zone:{zone}")))
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    pub fn spec(&self, room: &RoomId) -> Option<Arc<RoomSpec>> {
        self.rooms.get(room).map(|e| e.spec.clone())
    }

    fn entry(&self, room: &RoomId) -> Result<RoomEntry, RouteError> {
        // Clone out of the guard: it must not live across an await.
        self.rooms.get(room).map(|e| e.clone()).ok_or_else(|| {
            if self.parked.contains_key(room) {
                RouteError::NotHere(room.to_string())
            } else {
                RouteError::UnknownRoom(room.to_string())
            }
        })
    }

    /// Hands a batch to its room, with the receipt its producer waits on (completed once the
    /// samples are durable). Waits while the room holds its full share of unapplied batches
    /// (backpressure, never a drop).
    pub async fn route(&self, batch: DeviceBatch, receipt: Receipt) -> Result<(), RouteError> {
        let entry = self.entry(&batch.device.room)?;
        if !entry.spec.has_unit(batch.device.unit) {
            return Err(RouteError::UnknownDevice {
                room: entry.spec.id.to_string(),
                device: batch.device.unit.to_string(),
            });
        }
        // Once the room is being stopped, nothing more reaches it: not even a batch that waited
        // for a permit before (the semaphore is closed when the room retires).
        let retired = || entry.retired.load(Ordering::SeqCst);
        let down = || {
            if retired() {
                RouteError::NotHere(entry.spec.id.to_string())
            } else {
                RouteError::RoomDown(entry.spec.id.to_string())
            }
        };
        let source = Some(batch.source);
        let permit = entry
            .intake
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| down())?;
        if retired() {
            return Err(down());
        }
        entry
            .addr
            .post(SamplesReceived {
                batch,
                intake: Intake {
                    permit: Some(permit),
                    receipt,
                    span: tracing::Span::current(),
                    source,
                },
            })
            .map_err(|_| down())
    }

    /// The live state of a room and its equipment.
    pub async fn room_view(&self, room: &RoomId) -> Result<RoomView, RouteError> {
        let entry = self.entry(room)?;
        entry
            .addr
            .send(GetRoomView)
            .timeout(Duration::from_secs(5))
            .await
            .map_err(|e| mailbox_error(room, e))?
            .map_err(|_| RouteError::RoomDown(room.to_string()))
    }

    /// One line per room running here, from the status board (no actor is asked).
    pub fn summaries(&self) -> Vec<RoomSummary> {
        let mut out: Vec<RoomSummary> =
            (self.rooms.iter()).map(|e| self.summary(&e.spec)).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// One line per room of the fleet: those running here, and the parked ones (rooms another
    /// cluster node supervises), offline as far as this node knows.
    pub fn fleet_summaries(&self) -> Vec<RoomSummary> {
        let mut out = self.summaries();
        out.extend(self.parked.iter().map(|e| self.summary(e.value())));
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn summary(&self, spec: &RoomSpec) -> RoomSummary {
        let detail = (self.board.get(&spec.id))
            .map(|s| s.clone())
            .unwrap_or_default();
        Self::summary_with(spec, detail)
    }

    /// The line of a room of the fleet (running here or parked) as no node supervises it:
    /// offline, with no status.
    pub fn unsupervised_summary(&self, room: &RoomId) -> Option<RoomSummary> {
        self.known_spec(room)
            .map(|spec| Self::summary_with(&spec, RoomStatus::default()))
    }

    fn summary_with(spec: &RoomSpec, detail: RoomStatus) -> RoomSummary {
        RoomSummary {
            id: spec.id.clone(),
            name: spec.name.clone(),
            name_pinyin: spec.name_pinyin.clone(),
            address: spec.address.clone(),
            address_pinyin: spec.address_pinyin.clone(),
            zone: spec.zone.clone(),
            lat: spec.lat,
            lon: spec.lon,
            status: status_label(detail.online),
            detail,
        }
    }

    /// Visits every room for the fleet gauges: its inventory entry, whether it is online, and
    /// how many batches it holds but has not applied yet (its mailbox depth). Reads the map
    /// and the status board only: no actor is asked.
    pub fn visit(&self, mut f: impl FnMut(&RoomSpec, bool, usize)) {
        for e in self.rooms.iter() {
            let online = self.board.get(&e.spec.id).is_some_and(|s| s.online);
            let held = e.capacity.saturating_sub(e.intake.available_permits());
            f(&e.spec, online, held);
        }
    }

    /// Rooms online, rooms in total.
    pub fn online_count(&self) -> (usize, usize) {
        let online = self.board.iter().filter(|s| s.online).count();
        (online, self.rooms.len())
    }

    #[cfg(test)]
    pub(crate) fn addr(&self, room: &RoomId) -> Option<Addr<PumpRoomActor>> {
        self.rooms.get(room).map(|e| e.addr.clone())
    }
}
