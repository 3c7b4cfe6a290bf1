//! A platform node: the actor tree, its ingest sources and its HTTP API, started in order and
//! stopped in reverse.
//!
//! Start-up order: metrics registry → actor arbiters and the fleet (every room's actor tree)
//! → ingest (MQTT subscriber, Modbus pollers), so that nothing arrives for a room that does not
//! exist yet → HTTP. Shutdown: HTTP stops accepting, ingest stops (unacknowledged MQTT messages
//! stay with the broker's persistent session), then the actors' arbiters.

use crate::api::{self, ApiState};
use crate::field::FieldHandle;
use crate::ingest::metrics::IngestMetrics;
use crate::ingest::modbus::{spawn_pollers, ModbusConfig, ModbusError};
use crate::ingest::mqtt::{self, MqttConfig};
use crate::ingest::router::IngestRouter;
use crate::ingest::BatchSink;
use actix::Arbiter;
use actix_web::{web, App, HttpServer};
use cistern_actors::device::DeviceDeps;
use cistern_actors::{
    ActorConfig, ActorMetrics, Clock, FleetRegistry, MemorySnapshotStore, NullSampleSink,
    SampleSink,
};
use cistern_schemas::inventory::Inventory;
use cistern_schemas::modbus::ProfileSet;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// What a node runs.
#[derive(Debug)]
pub struct NodeSpec {
    pub inventory: Inventory,
    pub actors: ActorConfig,
    pub actor_threads: usize,
    pub mqtt: Option<MqttConfig>,
    pub modbus: ModbusConfig,
    pub profiles: ProfileSet,
    pub http: SocketAddr,
    pub http_workers: usize,
    pub clock: Arc<dyn Clock>,
    /// The simulated field, in the demo.
    pub field: Option<FieldHandle>,
    /// Where accepted samples go (the historian, when the node keeps history).
    pub sink: Arc<dyn SampleSink>,
    /// Where history is read, and flushed at shutdown.
    pub history: Option<Arc<crate::historian::Historian>>,
    /// Where actors keep their snapshots (in memory unless the node has storage).
    pub snapshots: Arc<dyn cistern_actors::SnapshotStore>,
}

impl NodeSpec {
    /// Keeps history in `historian`: accepted samples go to it and the API reads from it.
    pub fn with_history(mut self, historian: Arc<crate::historian::Historian>) -> Self {
        self.sink = historian.clone();
        self.history = Some(historian);
        self
    }

    /// Runs on `storage`: history, and actor snapshots that survive a restart.
    pub fn with_storage(mut self, storage: &crate::store::Storage) -> Self {
        self.snapshots = storage.snapshots.clone();
        self.with_history(storage.historian.clone())
    }
}

impl NodeSpec {
    /// A node with defaults for everything but the inventory and the ingest sources.
    pub fn new(inventory: Inventory, profiles: ProfileSet, clock: Arc<dyn Clock>) -> Self {
        Self {
            inventory,
            actors: ActorConfig::default(),
            actor_threads: 2,
            mqtt: None,
            modbus: ModbusConfig::default(),
            profiles,
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            http_workers: 2,
            clock,
            field: None,
            sink: Arc::new(NullSampleSink),
            history: None,
            snapshots: Arc::new(MemorySnapshotStore::default()),
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Modbus(#[from] ModbusError),
    #[error("cannot serve HTTP on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    pub registry: Arc<FleetRegistry>,
    pub metrics: prometheus::Registry,
    pub http: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: actix_web::dev::ServerHandle,
    arbiters: Vec<Arbiter>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    mqtt_subscribed: Option<watch::Receiver<bool>>,
    history: Option<Arc<crate::historian::Historian>>,
}

impl Node {
    /// Starts a node. Must run inside the actix system.
    pub async fn start(spec: NodeSpec) -> Result<Node, NodeError> {
        let metrics = prometheus::Registry::new();
        #[cfg(target_os = "linux")]
        metrics.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let actor_metrics = ActorMetrics::register(&metrics)?;
        let ingest_metrics = IngestMetrics::register(&metrics)?;
        if let Some(history) = &spec.history {
            history.metrics().register(&metrics)?;
        }

        let arbiters: Vec<Arbiter> = (0..spec.actor_threads.max(1))
            .map(|_| Arbiter::new())
            .collect();
        let handles: Vec<_> = arbiters.iter().map(|a| a.handle()).collect();
        let deps = DeviceDeps {
            clock: spec.clock.clone(),
            snapshots: spec.snapshots.clone(),
            sink: spec.sink.clone(),
            metrics: actor_metrics,
            config: Arc::new(spec.actors.clone()),
        };
        let registry = FleetRegistry::start(&spec.inventory, &deps, &handles);
        tracing::info!(
            rooms = registry.len(),
            threads = handles.len(),
            "actor tree started"
        );

        let (shutdown, shutdown_rx) = watch::channel(false);
        let router: Arc<dyn BatchSink> = Arc::new(IngestRouter::new(
            registry.clone(),
            ingest_metrics.clone(),
            spec.clock.clone(),
        ));
        let mut tasks = Vec::new();
        let mut mqtt_subscribed = None;
        if let Some(mqtt) = &spec.mqtt {
            let ingest = mqtt::spawn(
                mqtt,
                router.clone(),
                ingest_metrics,
                spec.clock.clone(),
                shutdown_rx.clone(),
            );
            tasks.extend(ingest.tasks);
            mqtt_subscribed = Some(ingest.subscribed);
            tracing::info!(broker = %format!("{}:{}", mqtt.host, mqtt.port), "MQTT ingest started");
        }
        let pollers = spawn_pollers(
            &spec.inventory,
            &spec.profiles,
            &spec.modbus,
            router,
            &metrics,
            shutdown_rx,
        )?;
        if !pollers.is_empty() {
            tracing::info!(rooms = pollers.len(), "Modbus pollers started");
        }
        tasks.extend(pollers);

        let state = web::Data::new(ApiState {
            registry: registry.clone(),
            metrics: metrics.clone(),
            field: spec.field,
            history: spec.history.clone(),
        });
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).configure(api::configure))
                .workers(spec.http_workers.max(1))
                .disable_signals()
                .bind(spec.http)
                .map_err(|source| NodeError::Http {
                    addr: spec.http,
                    source,
                })?;
        let http = server.addrs().first().copied().unwrap_or(spec.http);
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        tracing::info!(%http, "HTTP API listening");
        Ok(Node {
            registry,
            metrics,
            http,
            shutdown,
            server: handle,
            arbiters,
            tasks,
            mqtt_subscribed,
            history: spec.history,
        })
    }

    /// Stops the node: HTTP, then ingest, then the actors.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        for arbiter in self.arbiters {
            arbiter.stop();
        }
        // Last, the historian flushes what the actors handed it.
        if let Some(history) = self.history {
            let _ = tokio::task::spawn_blocking(move || history.stop()).await;
        }
        tracing::info!("node stopped");
    }

    /// Waits until the MQTT subscription is in place (at most `deadline`); true when it is, or
    /// when the node has no MQTT ingest.
    pub async fn mqtt_subscribed(&self, deadline: std::time::Duration) -> bool {
        let Some(mut rx) = self.mqtt_subscribed.clone() else {
            return true;
        };
        tokio::time::timeout(deadline, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// A receiver that turns true when the node stops (for companions such as the field).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}
