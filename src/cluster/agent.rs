//! The node's cluster member: its lease, its claims, its moves (feature `cluster`).
//!
//! One task runs the member: it connects to etcd (retrying while it cannot: the node is then
//! not ready), grants the node's lease and registers the node under it, then every
//! `poll_every` reads the members and the shards' owners and acts:
//! - a shard with no owner whose desired owner (rendezvous over the live members) is this node
//!   is claimed at once, by a transaction that puts the owner key with the lease only if it
//!   does not exist; the key's create revision is the claim's epoch;
//! - a shard this node owns whose desired owner is another live node is drained (planned move)
//!   once membership has been quiet for `settle`: its rooms and ingest stop, its checkpoint is
//!   written one last time, the node stops acting, and only then is the owner key deleted;
//! - a claim that vanished or changed under this node (its lease expired) is given up at once.
//!
//! A second task keeps the lease alive; the gate's deadline follows its answers. When the
//! deadline passes (no answer for TTL − margin), the node has already stopped acting (the gate
//! is time-based); the member task then stops every shard's rooms and ingest without writing,
//! journals the fencing at the deadline, and joins again with a new lease once etcd answers.

use super::assign::{desired_owner, Candidate};
use super::checkpoint::{Keys, ShardCheckpoints};
use super::config::ClusterConfig;
use super::gate::{Epoch, Gate};
use super::journal::{unix_ms, Journal, JournalEvent};
use super::metrics::ClusterMetrics;
use cistern_actors::registry::SHARDS;
use etcd_client::{Client, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// What the node does when a shard comes or goes (implemented by the node).
pub trait ShardHost: Send + Sync + std::fmt::Debug + 'static {
    /// Starts supervising `shard` (its checkpoint is loaded): its rooms, their ingest and
    /// polling. Returns how many rooms it has.
    fn start_shard(&self, shard: u32) -> BoxFuture<'_, Result<usize, String>>;
    /// Stops supervising `shard`. `graceful`: a planned move — the rooms save their state and
    /// the ingest disconnects cleanly; otherwise the node was fenced — stop at once.
    fn stop_shard(&self, shard: u32, graceful: bool) -> BoxFuture<'_, ()>;
}

/// A member as registered under `nodes/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub node: String,
    pub dc: String,
    pub http: String,
}

/// An owner key's value.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OwnerValue {
    node: String,
    dc: String,
}

/// Where this node stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Connecting to etcd or granting a lease.
    Joining,
    /// Holding a live lease.
    Member,
    /// Stopped acting: the lease could not be renewed in time.
    Fenced,
    /// etcd cannot be reached.
    Unreachable,
}

/// A shard's state on its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardState {
    Acquiring,
    Active,
    Draining,
}

/// One owned shard, as `GET /api/v1/cluster` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ShardStatus {
    pub shard: u32,
    pub owner: String,
    pub epoch: i64,
    pub state: ShardState,
    pub acquired_at: String,
    pub first_sample_at: Option<String>,
    pub rooms: usize,
}

/// The node's view of the cluster.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterStatus {
    pub node: String,
    pub dc: String,
    pub state: NodeState,
    pub lease_ttl_s: f64,
    pub last_renewal_ms_ago: Option<u64>,
    pub members: Vec<MemberInfo>,
    pub shards: Vec<ShardStatus>,
}

#[derive(Debug)]
struct Owned {
    epoch: Epoch,
    state: ShardState,
    acquired: SystemTime,
    first_sample: Option<SystemTime>,
    rooms: usize,
}

#[derive(Debug)]
struct View {
    state: NodeState,
    members: Vec<MemberInfo>,
    /// Each claimed shard's owner node, as last read.
    owners: BTreeMap<u32, String>,
    shards: BTreeMap<u32, Owned>,
    membership_changed: Instant,
}

/// Why the cluster member could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot open the cluster journal: {0}")]
    Journal(#[from] std::io::Error),
    #[error("cannot register the cluster metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The node's member of the cluster.
#[derive(Debug)]
pub struct ClusterAgent {
    config: ClusterConfig,
    keys: Keys,
    gate: Arc<Gate>,
    checkpoints: Arc<ShardCheckpoints>,
    metrics: ClusterMetrics,
    journal: Journal,
    view: Mutex<View>,
    /// Wall time of each shard's first applied sample since its claim (unix ms, 0: none yet).
    first_samples: Vec<std::sync::atomic::AtomicI64>,
    /// The cluster's service token, read at join.
    service: std::sync::OnceLock<String>,
}

/// Wall-clock time of a monotonic instant (for the journal and the API).
fn wall(at: Instant) -> SystemTime {
    let now = Instant::now();
    if at <= now {
        SystemTime::now() - (now - at)
    } else {
        SystemTime::now() + (at - now)
    }
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// What the node read of the cluster in one pass.
struct Snapshot {
    members: Vec<MemberInfo>,
    /// shard → (owner node, epoch, lease)
    owners: BTreeMap<u32, (String, Epoch, i64)>,
}

impl ClusterAgent {
    /// Builds the member; nothing runs until [`ClusterAgent::spawn`].
    pub fn new(
        config: ClusterConfig,
        gate: Arc<Gate>,
        checkpoints: Arc<ShardCheckpoints>,
        metrics: ClusterMetrics,
        journal: Journal,
    ) -> Arc<Self> {
        let keys = Keys::new(config.prefix());
        Arc::new(Self {
            config,
            keys,
            gate,
            checkpoints,
            metrics,
            journal,
            view: Mutex::new(View {
                state: NodeState::Joining,
                members: Vec::new(),
                owners: BTreeMap::new(),
                shards: BTreeMap::new(),
                membership_changed: Instant::now(),
            }),
            first_samples: (0..SHARDS)
                .map(|_| std::sync::atomic::AtomicI64::new(0))
                .collect(),
            service: std::sync::OnceLock::new(),
        })
    }

    /// The gate every acting path asks.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// The keys of this cluster.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Tells the member that `shard`'s first sample since its claim was applied.
    pub fn sample_applied(&self, shard: u32) {
        if let Some(slot) = self.first_samples.get(shard as usize) {
            let _ = slot.compare_exchange(
                0,
                unix_ms(SystemTime::now()),
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
            );
        }
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the node holds a live lease (readiness).
    pub fn ready(&self) -> bool {
        self.view().state == NodeState::Member && self.gate.live()
    }

    /// The node's view, for the API and `cistern cluster status`.
    pub fn status(&self) -> ClusterStatus {
        let v = self.view();
        ClusterStatus {
            node: self.config.node_id.clone(),
            dc: self.config.dc.clone(),
            state: v.state,
            lease_ttl_s: self.config.lease_ttl.as_secs_f64(),
            last_renewal_ms_ago: self
                .last_renewal()
                .map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)),
            members: v.members.clone(),
            shards: v
                .shards
                .iter()
                .map(|(s, o)| ShardStatus {
                    shard: *s,
                    owner: self.config.node_id.clone(),
                    epoch: o.epoch.0,
                    state: o.state,
                    acquired_at: rfc3339(o.acquired),
                    first_sample_at: o.first_sample.map(rfc3339),
                    rooms: o.rooms,
                })
                .collect(),
        }
    }

    /// When the last answered keep-alive was sent (the gate's deadline less what it grants).
    fn last_renewal(&self) -> Option<Instant> {
        let grant = self
            .config
            .lease_ttl
            .saturating_sub(self.config.fence_margin);
        self.gate.deadline().and_then(|d| d.checked_sub(grant))
    }

    /// The shards this node holds, with their epochs.
    fn held(&self) -> Vec<(u32, Epoch)> {
        self.view()
            .shards
            .iter()
            .map(|(s, o)| (*s, o.epoch))
            .collect()
    }

    fn set_state(&self, state: NodeState) {
        self.view().state = state;
    }

    /// Starts the member's task; it leaves the cluster (draining its shards) when `shutdown`
    /// turns true.
    pub fn spawn(
        self: &Arc<Self>,
        host: Arc<dyn ShardHost>,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().run(host, shutdown))
    }

    async fn connect(
        &self,
        request_timeout: Option<Duration>,
    ) -> Result<Client, etcd_client::Error> {
        // A dead connection needs no HTTP/2 pings here: the gate's deadline fences the node,
        // and the member reconnects with fresh clients.
        super::etcd::connect(
            &self.config,
            super::etcd::Connect {
                require_leader: true,
                ..super::etcd::Connect::requests(request_timeout)
            },
        )
        .await
    }

    async fn run(self: Arc<Self>, host: Arc<dyn ShardHost>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Requests time out well within the lease; the keep-alive stream has a client of
            // its own without a request timeout (a timeout would cut the stream).
            let session = async {
                let client = self.connect(Some(Duration::from_secs(1))).await?;
                let keeper = self.connect(None).await?;
                Ok::<_, etcd_client::Error>((client, keeper))
            }
            .await;
            let (mut client, keeper) = match session {
                Ok(c) => c,
                Err(error) => {
                    self.metrics.etcd_up.set(0);
                    self.set_state(NodeState::Unreachable);
                    tracing::warn!(error = %super::etcd::explain(&self.config, &error), retry_in = ?backoff, "cannot reach etcd; this node supervises no shard until it can");
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            match self.member(&mut client, keeper, &host, &mut shutdown).await {
                Ok(true) => break,
                Ok(false) => backoff = Duration::from_millis(200),
                Err(error) => {
                    self.metrics.etcd_up.set(0);
                    self.set_state(NodeState::Unreachable);
                    tracing::warn!(error = %super::etcd::explain(&self.config, &error), retry_in = ?backoff, "etcd does not answer; this node supervises no shard until it does");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            self.fence_all(&host).await;
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }

    /// Grants a lease, registers, and runs the member loop until the lease is lost (false) or
    /// the node stops (true, after leaving cleanly).
    async fn member(
        &self,
        client: &mut Client,
        keeper: Client,
        host: &Arc<dyn ShardHost>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, etcd_client::Error> {
        self.set_state(NodeState::Joining);
        let ttl = self.config.lease_ttl;
        let sent = Instant::now();
        let lease = client
            .lease_grant(i64::try_from(ttl.as_secs().max(2)).unwrap_or(3), None)
            .await?
            .id();
        self.gate
            .extend(sent + ttl.saturating_sub(self.config.fence_margin));
        let me = MemberInfo {
            node: self.config.node_id.clone(),
            dc: self.config.dc.clone(),
            http: self.config.advertise.clone(),
        };
        let value = serde_json::to_vec(&me).unwrap_or_default();
        client
            .put(
                self.keys.node(&self.config.node_id),
                value,
                Some(PutOptions::new().with_lease(lease)),
            )
            .await?;
        self.metrics.etcd_up.set(1);
        if self.service.get().is_none() {
            match super::identity::service_token(client, &self.config).await {
                Ok(token) => {
                    let _ = self.service.set(token);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the cluster's service token; node-to-node calls wait for the next join")
                }
            }
        }
        self.set_state(NodeState::Member);
        tracing::info!(lease, node = %self.config.node_id, "joined the cluster");
        let (lost_tx, mut lost) = watch::channel(false);
        let keepalive = tokio::spawn(keep_alive(
            keeper,
            lease,
            self.gate.clone(),
            self.metrics.clone(),
            self.config.clone(),
            lost_tx,
        ));
        let _abort = AbortOnDrop(keepalive);
        let mut tick = tokio::time::interval(self.config.poll_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_flush = Instant::now();
        loop {
            let deadline = self.gate.deadline().unwrap_or_else(Instant::now);
            tokio::select! {
                _ = shutdown.changed() => {
                    self.leave(client, lease, host).await;
                    return Ok(true);
                }
                _ = lost.changed() => {
                    tracing::warn!(lease, "the lease expired in etcd");
                    self.gate.close();
                    return Ok(false);
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    if !self.gate.live() {
                        tracing::warn!(lease, "no keep-alive answered in time: fencing");
                        return Ok(false);
                    }
                }
                _ = tick.tick() => {
                    if !self.gate.live() {
                        tracing::warn!(lease, "no keep-alive answered in time: fencing");
                        return Ok(false);
                    }
                    if let Some(t) = self.last_renewal() {
                        self.metrics.lease_age.set(t.elapsed().as_secs_f64());
                    }
                    match self.reconcile(client, lease, host).await {
                        Ok(()) => self.metrics.etcd_up.set(1),
                        Err(error) => {
                            self.metrics.etcd_up.set(0);
                            tracing::warn!(%error, "cannot read the cluster's state this round");
                        }
                    }
                    if last_flush.elapsed() >= self.config.checkpoint_every {
                        last_flush = Instant::now();
                        self.flush_all(client, host).await;
                    }
                }
            }
        }
    }

    async fn read(&self, client: &mut Client) -> Result<Snapshot, etcd_client::Error> {
        let nodes = client
            .get(self.keys.nodes(), Some(GetOptions::new().with_prefix()))
            .await?;
        let mut members: Vec<MemberInfo> = nodes
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
            .collect();
        members.sort_by(|a, b| a.node.cmp(&b.node));
        let owners = client
            .get(self.keys.owners(), Some(GetOptions::new().with_prefix()))
            .await?;
        let owners = owners
            .kvs()
            .iter()
            .filter_map(|kv| {
                let shard = self.keys.owner_shard(kv.key())?;
                let value: OwnerValue = serde_json::from_slice(kv.value()).ok()?;
                Some((shard, (value.node, Epoch(kv.create_revision()), kv.lease())))
            })
            .collect();
        Ok(Snapshot { members, owners })
    }

    async fn reconcile(
        &self,
        client: &mut Client,
        lease: i64,
        host: &Arc<dyn ShardHost>,
    ) -> Result<(), etcd_client::Error> {
        let snap = self.read(client).await?;
        let me = self.config.node_id.as_str();
        let settled = {
            let mut v = self.view();
            if v.members != snap.members {
                v.members = snap.members.clone();
                v.membership_changed = Instant::now();
            }
            v.owners = (snap.owners.iter())
                .map(|(shard, (node, _, _))| (*shard, node.clone()))
                .collect();
            self.metrics
                .members
                .set(i64::try_from(snap.members.len()).unwrap_or(0));
            v.membership_changed.elapsed() >= self.config.settle
        };
        let candidates: Vec<Candidate<'_>> = snap
            .members
            .iter()
            .map(|m| Candidate {
                node: &m.node,
                dc: &m.dc,
            })
            .collect();
        let prefer = self.config.prefer_dc.as_deref();
        // Claims this node holds that etcd no longer shows as its own: lost (its lease ran
        // out under it); stop at once.
        let held = self.held();
        for (shard, epoch) in &held {
            let still = snap
                .owners
                .get(shard)
                .is_some_and(|(node, e, _)| node == me && e == epoch);
            if !still {
                tracing::warn!(
                    shard,
                    epoch = epoch.0,
                    "the claim is gone from etcd: stopping the shard"
                );
                self.drop_shard(*shard, *epoch, host, SystemTime::now())
                    .await;
                self.metrics.fencing_events.inc();
            }
        }
        let mut claimed = Vec::new();
        for shard in 0..SHARDS {
            let desired = desired_owner(shard, &candidates, prefer);
            match snap.owners.get(&shard) {
                None if desired == Some(me) => {
                    if let Some(epoch) = self.claim(client, shard, lease).await? {
                        claimed.push((shard, epoch));
                    }
                }
                Some((node, _, old)) if node == me && *old != lease => {
                    // A claim of this node's previous life (a restart with the same id): its
                    // lease is ours to revoke, which frees the shard now rather than at expiry.
                    tracing::info!(
                        shard,
                        lease = old,
                        "revoking the lease of this node's previous run"
                    );
                    let _ = client.lease_revoke(*old).await;
                }
                Some((node, epoch, _))
                    if node == me && !self.view().shards.contains_key(&shard) =>
                {
                    // Ours in etcd with our lease but not running (a start that failed): adopt.
                    claimed.push((shard, *epoch));
                    self.gate.set_epoch(shard, Some(*epoch));
                    self.journal
                        .write(SystemTime::now(), shard, epoch.0, JournalEvent::Acquired);
                }
                _ => {}
            }
        }
        if !claimed.is_empty() {
            self.start_claimed(client, &claimed, host).await;
        }
        self.note_first_samples();
        if settled {
            let moves: Vec<(u32, Epoch)> = self
                .view()
                .shards
                .iter()
                .filter(|(s, o)| {
                    o.state == ShardState::Active
                        && desired_owner(**s, &candidates, prefer).is_some_and(|d| d != me)
                })
                .map(|(s, o)| (*s, o.epoch))
                .take(4)
                .collect();
            for (shard, epoch) in moves {
                self.drain(client, shard, epoch, host).await;
            }
        }
        let owned = i64::try_from(self.view().shards.len()).unwrap_or(0);
        self.metrics.shards_owned.set(owned);
        Ok(())
    }

    /// Claims `shard` for this node's lease; its epoch when the claim won.
    async fn claim(
        &self,
        client: &mut Client,
        shard: u32,
        lease: i64,
    ) -> Result<Option<Epoch>, etcd_client::Error> {
        let key = self.keys.owner(shard);
        let value = serde_json::to_vec(&OwnerValue {
            node: self.config.node_id.clone(),
            dc: self.config.dc.clone(),
        })
        .unwrap_or_default();
        let txn = Txn::new()
            .when([Compare::create_revision(
                key.as_bytes(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(
                key.as_bytes(),
                value,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let resp = client.txn(txn).await?;
        if !resp.succeeded() {
            return Ok(None);
        }
        // The transaction's revision is the key's create revision: the epoch.
        let Some(epoch) = resp.header().map(|h| Epoch(h.revision())) else {
            return Ok(None);
        };
        self.gate.set_epoch(shard, Some(epoch));
        self.journal
            .write(SystemTime::now(), shard, epoch.0, JournalEvent::Acquired);
        self.metrics
            .shard_moves
            .with_label_values(&["acquired"])
            .inc();
        Ok(Some(epoch))
    }

    /// Loads the claimed shards' checkpoints and starts them (concurrently).
    async fn start_claimed(
        &self,
        client: &mut Client,
        claimed: &[(u32, Epoch)],
        host: &Arc<dyn ShardHost>,
    ) {
        let now = SystemTime::now();
        for (shard, epoch) in claimed {
            if let Some(slot) = self.first_samples.get(*shard as usize) {
                slot.store(0, std::sync::atomic::Ordering::Release);
            }
            self.view().shards.insert(
                *shard,
                Owned {
                    epoch: *epoch,
                    state: ShardState::Acquiring,
                    acquired: now,
                    first_sample: None,
                    rooms: 0,
                },
            );
            match self.checkpoints.load(client, *shard).await {
                Ok((rooms, devices)) => {
                    tracing::debug!(shard, rooms, devices, "shard checkpoint loaded")
                }
                Err(error) => {
                    tracing::warn!(shard, %error, "cannot read the shard's checkpoint: its rooms start from their first samples")
                }
            }
        }
        let starts = claimed.iter().map(|(shard, _)| {
            let host = host.clone();
            let shard = *shard;
            async move { (shard, host.start_shard(shard).await) }
        });
        for (shard, result) in futures::future::join_all(starts).await {
            match result {
                Ok(rooms) => {
                    if let Some(o) = self.view().shards.get_mut(&shard) {
                        o.rooms = rooms;
                    }
                    if rooms == 0 {
                        // Nothing to supervise: supervised at once.
                        self.sample_applied(shard);
                    }
                }
                Err(error) => tracing::error!(shard, %error, "cannot start the shard's rooms"),
            }
        }
    }

    /// Turns shards whose first sample arrived active.
    fn note_first_samples(&self) {
        let mut v = self.view();
        for (shard, o) in v.shards.iter_mut() {
            if o.first_sample.is_some() {
                continue;
            }
            let ms = self
                .first_samples
                .get(*shard as usize)
                .map_or(0, |s| s.load(std::sync::atomic::Ordering::Acquire));
            if ms == 0 {
                continue;
            }
            let at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            o.first_sample = Some(at);
            o.state = ShardState::Active;
            let took = at.duration_since(o.acquired).unwrap_or_default();
            self.metrics.takeover.observe(took.as_secs_f64());
            self.journal
                .write(at, *shard, o.epoch.0, JournalEvent::Active);
        }
    }

    /// A planned move: stop the shard here, write its checkpoint, stop acting, give it back.
    async fn drain(
        &self,
        client: &mut Client,
        shard: u32,
        epoch: Epoch,
        host: &Arc<dyn ShardHost>,
    ) {
        if let Some(o) = self.view().shards.get_mut(&shard) {
            o.state = ShardState::Draining;
        }
        self.journal
            .write(SystemTime::now(), shard, epoch.0, JournalEvent::Draining);
        // The session's stop waits for its messages in flight to be acknowledged, and each
        // waits for a checkpoint that started after it to commit (`ShardCheckpoints::covered`),
        // which only this task writes: keep writing the shard's checkpoint while it stops, or
        // the stop waits for acknowledgements that cannot come until drain_timeout.
        let stop = host.stop_shard(shard, true);
        tokio::pin!(stop);
        let deadline = tokio::time::sleep(self.config.drain_timeout);
        tokio::pin!(deadline);
        let mut flush = tokio::time::interval(Duration::from_millis(50));
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = &mut deadline => {
                    tracing::warn!(
                        shard,
                        "the shard did not stop within drain_timeout; giving it back all the same"
                    );
                    break;
                }
                _ = flush.tick() => {
                    if let Err(error) = self.checkpoints.flush(client, shard, epoch).await {
                        tracing::debug!(shard, %error, "checkpoint not written while draining");
                    }
                }
            }
        }
        if let Err(error) = self.checkpoints.flush(client, shard, epoch).await {
            tracing::warn!(shard, %error, "the shard's last checkpoint was not written");
        }
        self.gate.set_epoch(shard, None);
        self.journal
            .write(SystemTime::now(), shard, epoch.0, JournalEvent::Released);
        self.view().shards.remove(&shard);
        self.checkpoints.forget(shard);
        let key = self.keys.owner(shard);
        let txn = Txn::new()
            .when([Compare::create_revision(
                key.as_bytes(),
                CompareOp::Equal,
                epoch.0,
            )])
            .and_then([TxnOp::delete(key.as_bytes(), None::<DeleteOptions>)]);
        if let Err(error) = client.txn(txn).await {
            tracing::warn!(shard, %error, "cannot give the shard back; it frees when the lease ends");
        }
        self.metrics
            .shard_moves
            .with_label_values(&["released"])
            .inc();
        tracing::info!(shard, "shard handed over");
    }

    /// Stops a shard without writing (fenced or lost), journalled as of `at`.
    async fn drop_shard(
        &self,
        shard: u32,
        epoch: Epoch,
        host: &Arc<dyn ShardHost>,
        at: SystemTime,
    ) {
        self.gate.set_epoch(shard, None);
        self.journal.write(at, shard, epoch.0, JournalEvent::Fenced);
        self.view().shards.remove(&shard);
        host.stop_shard(shard, false).await;
        self.checkpoints.forget(shard);
        self.metrics
            .shard_moves
            .with_label_values(&["fenced"])
            .inc();
    }

    /// The lease is gone or may be: every shard stops, journalled at the deadline (when the
    /// gate shut by itself).
    async fn fence_all(&self, host: &Arc<dyn ShardHost>) {
        self.gate.close();
        let at = wall(self.gate.acted_until());
        let held = self.held();
        if !held.is_empty() {
            self.metrics.fencing_events.inc();
            tracing::warn!(
                shards = held.len(),
                "fenced: this node acts for none of its shards"
            );
        }
        for (shard, epoch) in held {
            self.drop_shard(shard, epoch, host, at).await;
        }
        self.metrics.shards_owned.set(0);
        let mut v = self.view();
        if v.state == NodeState::Member {
            v.state = NodeState::Fenced;
        }
    }

    /// Writes every owned shard's pending checkpoint (a shard with nothing pending commits an
    /// empty one at once: acknowledgements waiting on it go).
    async fn flush_all(&self, client: &mut Client, host: &Arc<dyn ShardHost>) {
        let owned: Vec<u32> = self.view().shards.keys().copied().collect();
        for shard in owned {
            let Some(epoch) = self.gate.epoch(shard) else {
                continue;
            };
            match self.checkpoints.flush(client, shard, epoch).await {
                Ok(_) => {}
                Err(super::checkpoint::CheckpointError::Stale(_)) => {
                    tracing::error!(
                        shard,
                        epoch = epoch.0,
                        "checkpoint refused: the shard has a newer owner; stopping it"
                    );
                    self.drop_shard(shard, epoch, host, SystemTime::now()).await;
                    self.metrics.fencing_events.inc();
                }
                Err(error) => {
                    // etcd does not answer: the other shards would wait as long; next round.
                    tracing::warn!(shard, %error, "checkpoint not written this round");
                    break;
                }
            }
        }
    }

    /// A planned leave: every shard is handed over, then the lease revoked.
    async fn leave(&self, client: &mut Client, lease: i64, host: &Arc<dyn ShardHost>) {
        let held = self.held();
        tracing::info!(
            shards = held.len(),
            "leaving the cluster: handing every shard over"
        );
        // Out of the membership first: the others' rendezvous then leaves this node out, and
        // each shard released below is claimed by its new owner at that owner's next read —
        // not all of them only once the last is drained and the lease revoked.
        if let Err(error) = client
            .delete(self.keys.node(&self.config.node_id), None)
            .await
        {
            tracing::warn!(%error, "cannot leave the membership before the drains; the shards move once the lease is revoked");
        }
        // Every shard at once (each with a client of its own: they are cheap clones of one
        // channel), so that the leave fits in the time the node's stop gives this task.
        let drains = held.into_iter().map(|(shard, epoch)| {
            let mut client = client.clone();
            async move { self.drain(&mut client, shard, epoch, host).await }
        });
        futures::future::join_all(drains).await;
        if let Err(error) = client.lease_revoke(lease).await {
            tracing::warn!(%error, "cannot revoke the lease; it ends by itself");
        }
        self.gate.close();
        self.metrics.shards_owned.set(0);
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps `lease` alive, one keep-alive every `keepalive_every`; every answer moves the gate's
/// deadline to its request's send time + TTL − margin. Answers come in request order, so each
/// is matched with the oldest unanswered send. Signals `lost` when etcd says the lease is gone;
/// a broken stream is opened again while the deadline has not passed.
async fn keep_alive(
    mut client: Client,
    lease: i64,
    gate: Arc<Gate>,
    metrics: ClusterMetrics,
    config: ClusterConfig,
    lost: watch::Sender<bool>,
) {
    let grant = config.lease_ttl.saturating_sub(config.fence_margin);
    loop {
        let (mut keeper, mut stream) = match client.lease_keep_alive(lease).await {
            Ok(pair) => pair,
            Err(error) => {
                metrics.lease_failures.inc();
                tracing::warn!(%error, "cannot open the lease keep-alive stream");
                if !gate.live() {
                    return;
                }
                tokio::time::sleep(config.keepalive_every / 4).await;
                continue;
            }
        };
        let mut sent: VecDeque<Instant> = VecDeque::new();
        let mut tick = tokio::time::interval(config.keepalive_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if !sent.is_empty() {
                        // The last one is still unanswered: count it, and keep asking. Its
                        // send time stays queued — a late answer is matched with the oldest
                        // send, never a newer one (that would grant more than etcd did).
                        metrics.lease_failures.inc();
                    }
                    sent.push_back(Instant::now());
                    if let Err(error) = keeper.keep_alive().await {
                        metrics.lease_failures.inc();
                        tracing::warn!(%error, "lease keep-alive failed");
                        break;
                    }
                }
                answer = stream.message() => match answer {
                    Ok(Some(resp)) => {
                        let Some(at) = sent.pop_front() else { continue };
                        if resp.ttl() <= 0 {
                            gate.close();
                            let _ = lost.send(true);
                            return;
                        }
                        gate.extend(at + grant);
                        metrics.lease_renewals.inc();
                    }
                    Ok(None) | Err(_) => {
                        metrics.lease_failures.inc();
                        break;
                    }
                }
            }
        }
        if !gate.live() {
            return;
        }
        tokio::time::sleep(config.keepalive_every / 4).await;
    }
}

impl super::ClusterView for ClusterAgent {
    fn status_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self.status()).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("enabled".into(), true.into());
        }
        v
    }
    fn ready(&self) -> bool {
        ClusterAgent::ready(self)
    }
    fn acts_for(&self, shard: u32) -> bool {
        let active =
            (self.view().shards.get(&shard)).is_some_and(|o| o.state == ShardState::Active);
        active && self.gate.acting(shard)
    }
    fn node_id(&self) -> String {
        self.config.node_id.clone()
    }
    fn owner(&self, shard: u32) -> Option<super::Peer> {
        let v = self.view();
        let node = v.owners.get(&shard)?;
        if *node == self.config.node_id {
            return None;
        }
        let m = v.members.iter().find(|m| &m.node == node)?;
        Some(super::Peer {
            node: m.node.clone(),
            http: m.http.clone(),
        })
    }
    fn owner_http(&self, shard: u32) -> Option<String> {
        self.owner(shard).map(|p| p.http)
    }
    fn peers(&self) -> Vec<super::Peer> {
        (self.view().members.iter())
            .filter(|m| m.node != self.config.node_id)
            .map(|m| super::Peer {
                node: m.node.clone(),
                http: m.http.clone(),
            })
            .collect()
    }
    fn peers_http(&self) -> Vec<String> {
        self.peers().into_iter().map(|p| p.http).collect()
    }
    fn service_token(&self) -> Option<String> {
        self.service.get().cloned()
    }
    fn count_forward(&self, result: super::peer::Forwarded) {
        self.metrics
            .forwarded
            .with_label_values(&[result.label()])
            .inc();
    }
}
