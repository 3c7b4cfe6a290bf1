//! A node in a cluster (feature `cluster`): the shards its member claims are started here and
//! stopped here. Starting a shard starts its rooms (from the checkpoint the member loaded),
//! then its MQTT persistent session (client id `cistern-<cluster>-shard-<NN>`: the session the
//! shard's previous owner used, so the broker hands over what that owner did not acknowledge),
//! then its rooms' Modbus pollers. Stopping does the reverse. Every acknowledgement of the
//! shard's session asks the gate first: a node that may no longer act for the shard
//! acknowledges nothing, and the broker keeps the messages for the next owner.

use crate::cluster::agent::{ClusterAgent, ShardHost};
use crate::cluster::checkpoint::ShardCheckpoints;
use crate::cluster::Gate;
use crate::ingest::metrics::IngestMetrics;
use crate::ingest::modbus::RoomPollers;
use crate::ingest::mqtt::{self, MqttConfig, MqttSession, SessionSpec};
use crate::ingest::{BatchSink, DeliveryError};
use cistern_actors::registry::shard_of;
use cistern_actors::{Clock, FleetRegistry, Receipt};
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::reading::{DeviceBatch, IngestSource};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// How long a planned move waits for the shard's taken messages to be acknowledged.
const SESSION_DRAIN: Duration = Duration::from_secs(2);

/// The node's side of shard moves.
pub(crate) struct NodeShards {
    pub registry: Arc<FleetRegistry>,
    pub mqtt: Option<MqttConfig>,
    /// Who may send for which room (the enrolled gateways).
    pub senders: Arc<dyn crate::ingest::mqtt::SenderCheck>,
    pub cluster: String,
    pub router: Arc<dyn BatchSink>,
    pub metrics: IngestMetrics,
    pub clock: Arc<dyn Clock>,
    pub shutdown: watch::Receiver<bool>,
    pub gate: Arc<Gate>,
    pub checkpoints: Arc<ShardCheckpoints>,
    pub agent: OnceLock<Arc<ClusterAgent>>,
    pub rooms: HashMap<u32, Vec<RoomSpec>>,
    pub pollers: RoomPollers,
    pub sessions: tokio::sync::Mutex<HashMap<u32, MqttSession>>,
}

impl std::fmt::Debug for NodeShards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeShards")
            .field("cluster", &self.cluster)
            .field("shards", &self.rooms.len())
            .finish_non_exhaustive()
    }
}

impl NodeShards {
    /// The inventory's rooms by shard.
    pub fn rooms_by_shard(rooms: &[RoomSpec]) -> HashMap<u32, Vec<RoomSpec>> {
        let mut by: HashMap<u32, Vec<RoomSpec>> = HashMap::new();
        for r in rooms {
            by.entry(shard_of(&r.id)).or_default().push(r.clone());
        }
        by
    }
}

/// A shard's batches on their way to the router: the member learns when the shard's first
/// sample since its claim was routed (the shard is supervised again), and a batch counts as
/// done (its message may be acknowledged) once its samples are durable *and* the shard's
/// checkpoint has caught up with the state they moved ([`ShardCheckpoints::covered`]).
struct ShardSink {
    inner: Arc<dyn BatchSink>,
    agent: Option<Arc<ClusterAgent>>,
    checkpoints: Arc<ShardCheckpoints>,
    shard: u32,
}

impl BatchSink for ShardSink {
    fn deliver(
        &self,
        batch: DeviceBatch,
        receipt: Receipt,
    ) -> BoxFuture<'_, Result<(), DeliveryError>> {
        Box::pin(async move {
            let receipt = if receipt.is_awaited() {
                let (inner, durable) = Receipt::new();
                let (checkpoints, shard) = (self.checkpoints.clone(), self.shard);
                tokio::spawn(async move {
                    // Dropped without completing (not acknowledged) when the samples were lost
                    // or the node stopped acting for the shard first.
                    if durable.await.is_ok() && checkpoints.covered(shard).await {
                        receipt.complete();
                    }
                });
                inner
            } else {
                receipt
            };
            let routed = self.inner.deliver(batch, receipt).await;
            if routed.is_ok() {
                if let Some(agent) = &self.agent {
                    agent.sample_applied(self.shard);
                }
            }
            routed
        })
    }

    fn reject(
        &self,
        source: IngestSource,
        device: &str,
        reason: &'static str,
        detail: &dyn Display,
    ) {
        self.inner.reject(source, device, reason, detail);
    }
}

impl ShardHost for NodeShards {
    fn start_shard(&self, shard: u32) -> BoxFuture<'_, Result<usize, String>> {
        Box::pin(async move {
            let rooms = self
                .registry
                .start_shard(shard)
                .map_err(|e| e.to_string())?;
            let specs = self.rooms.get(&shard).cloned().unwrap_or_default();
            let agent = self.agent.get().cloned();
            if let Some(config) = &self.mqtt {
                let filters = specs
                    .iter()
                    .flat_map(|r| mqtt::room_filters(&r.id))
                    .collect();
                let gate = self.gate.clone();
                let session = mqtt::spawn_session(
                    config,
                    SessionSpec {
                        client_id: mqtt::shard_client_id(&self.cluster, shard),
                        filters,
                        gate: Some(Arc::new(move || gate.acting(shard))),
                        senders: self.senders.clone(),
                    },
                    Arc::new(ShardSink {
                        inner: self.router.clone(),
                        agent: agent.clone(),
                        checkpoints: self.checkpoints.clone(),
                        shard,
                    }),
                    self.metrics.clone(),
                    self.clock.clone(),
                    self.shutdown.clone(),
                );
                if let Some(old) = self.sessions.lock().await.insert(shard, session) {
                    // A session left from an earlier claim (it was fenced): it has ended.
                    let _ = old.stop(Duration::ZERO).await;
                }
            }
            match self.pollers.start(&specs) {
                Ok(0) => {}
                Ok(_) => {
                    // A polled shard is supervised once its pollers run.
                    if let Some(agent) = &agent {
                        agent.sample_applied(shard);
                    }
                }
                Err(error) => tracing::error!(shard, %error, "cannot poll the shard's rooms"),
            }
            Ok(rooms)
        })
    }

    fn stop_shard(&self, shard: u32, graceful: bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let ids: Vec<_> = (self.rooms.get(&shard).into_iter().flatten())
                .map(|r| r.id.clone())
                .collect();
            self.pollers.stop(&ids).await;
            if let Some(session) = self.sessions.lock().await.remove(&shard) {
                let drain = if graceful {
                    SESSION_DRAIN
                } else {
                    Duration::ZERO
                };
                let end = session.stop(drain).await;
                tracing::debug!(shard, ?end, "the shard's MQTT session ended");
            }
            let stopped = self.registry.stop_shard(shard).await;
            tracing::info!(shard, rooms = stopped, graceful, "shard stopped here");
        })
    }
}
