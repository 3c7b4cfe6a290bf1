//! A platform node: the actor tree, its ingest sources and its HTTP API, started in order and
//! stopped in reverse.
//!
//! Start-up order: metrics registry → actor arbiters and the fleet (every room's actor tree)
//! → ingest (MQTT subscriber, Modbus pollers), so that nothing arrives for a room that does not
//! exist yet → HTTP. Shutdown: HTTP stops accepting, ingest stops (unacknowledged MQTT messages
//! stay with the broker's persistent session), then the actors' arbiters.

#[cfg(feature = "cluster")]
mod cluster;
pub mod storage;
pub use storage::Storage;

use crate::alarms::{RulesConfig, StoredAlarms};
use crate::api::{self, ApiState};
use crate::control::plans::PlanService;
use crate::control::writer::{FieldPlanPort, FieldWriter, WriteError, WriteMetrics};
use crate::ingest::metrics::IngestMetrics;
use crate::ingest::modbus::{start_pollers, ModbusConfig, ModbusError, PollerLauncher};
use crate::ingest::mqtt::{self, MqttConfig};
use crate::ingest::router::IngestRouter;
use crate::ingest::BatchSink;
use crate::monitor::fleet::{FleetCollector, FleetSources};
use crate::monitor::ready::Readiness;
use actix::Arbiter;
use actix_web::{web, App, HttpServer};
use cistern_actors::alarms::{AlarmStore, MemoryAlarmStore, RuleHost, RuleMetrics};
use cistern_actors::device::DeviceDeps;
use cistern_actors::{
    ActorConfig, ActorMetrics, Clock, FleetRegistry, MemorySnapshotStore, NullSampleSink,
    SampleSink,
};
use cistern_rules::RuleSet;
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
    /// HTTPS: the certificate served on `http` (`[http.tls]`); None: plain HTTP.
    pub http_tls: Option<crate::tls::ServerTlsConfig>,
    pub clock: Arc<dyn Clock>,
    /// The simulated field, in the demo (the lab implements the port).
    pub field: Option<Arc<dyn FieldSim>>,
    /// Where accepted samples go (the historian, when the node keeps history).
    pub sink: Arc<dyn SampleSink>,
    /// Where history is read, and flushed at shutdown.
    pub history: Option<Arc<crate::historian::Historian>>,
    /// Where actors keep their snapshots (in memory unless the node has storage).
    pub snapshots: Arc<dyn cistern_actors::SnapshotStore>,
    /// The alarm rules (`[rules]`).
    pub rules: RulesConfig,
    /// Where alarm state and events persist (in memory unless the node has storage).
    pub alarm_store: Arc<dyn AlarmStore>,
    /// The same, readable for the API's event history (when the node has storage).
    pub stored_alarms: Option<Arc<StoredAlarms>>,
    /// Identity and the audit log, shared by REST and the WebSocket.
    pub security: crate::auth::Security,
    /// The WebSocket push API (`[ws]`).
    pub ws: crate::api::ws::WsConfig,
    /// Live peak-shaving planning of the tanks whose controllers take plans (none: off).
    pub plans: Option<PlansSpec>,
    /// The site's base map, served to the fleet map.
    pub basemap: Option<crate::api::basemap::Basemap>,
    /// Where the business layer keeps its records (none: no work orders).
    pub records: Option<Arc<dyn crate::store::Records>>,
    /// Work orders (`[workorders]`): on when the node has records and rules.
    pub workorders: crate::business::workorders::WorkOrdersConfig,
    /// Notifications (`[notify]`): on when the node has records.
    pub notify: crate::notify::NotifyConfig,
    /// What an empty archive is seeded with (the demo's generated archive); none: the
    /// inventory's rooms.
    pub archive_seed: Option<(
        Vec<crate::business::assets::archive::Project>,
        Vec<crate::business::assets::archive::RoomArchive>,
    )>,
    /// The inventory's data sources win over the archive's for the rooms both hold (the demo:
    /// its simulated controllers listen on new ports at every start).
    pub inventory_sources: bool,
    /// Tank cleaning (`[cleaning]`): on when the node has records.
    pub cleaning: crate::business::assets::cleaning::CleaningConfig,
    /// Parts lifecycle (`[lifecycle]`): on when the node has records.
    pub lifecycle: crate::business::assets::lifecycle::LifecycleConfig,
    /// The demo: components without dates get a simulated failure history.
    pub simulated_parts_history: bool,
    /// Analysis (`[analysis]`): on when the node has records and history.
    pub analysis: crate::business::analysis::AnalysisConfig,
    /// Failover clustering (`[cluster]`): on, the node supervises only the shards it claims.
    pub cluster: crate::cluster::ClusterConfig,
    /// Where the cluster member journals its claims (the store's data directory).
    pub cluster_journal: Option<std::path::PathBuf>,
    /// Backups of the node's data (`POST /api/v1/admin/backup`, `[backup]`).
    pub backups: Option<Arc<crate::backup::Backups>>,
}

/// What the node's planning service starts with.
#[derive(Debug, Default)]
pub struct PlansSpec {
    pub config: crate::control::plans::PlansConfig,
    /// Per-slot samples to learn from before the first round (oldest first).
    pub history: Vec<(u32, Vec<crate::control::plans::RoomSample>)>,
}

impl NodeSpec {
    /// Keeps history in `historian`: accepted samples go to it and the API reads from it.
    pub fn with_history(mut self, historian: Arc<crate::historian::Historian>) -> Self {
        self.sink = historian.clone();
        self.history = Some(historian);
        self
    }

    /// Runs on `storage`: history, and actor snapshots that survive a restart.
    pub fn with_storage(mut self, storage: &Storage) -> Self {
        self.snapshots = storage.snapshots.clone();
        self.alarm_store = storage.alarms.clone();
        self.stored_alarms = Some(storage.alarms.clone());
        self.records = Some(storage.records.clone());
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
            http_tls: None,
            clock,
            field: None,
            sink: Arc::new(NullSampleSink),
            history: None,
            snapshots: Arc::new(MemorySnapshotStore::default()),
            rules: RulesConfig::default(),
            alarm_store: Arc::new(MemoryAlarmStore::default()),
            stored_alarms: None,
            security: crate::auth::Security::default(),
            ws: crate::api::ws::WsConfig::default(),
            plans: None,
            basemap: None,
            records: None,
            workorders: Default::default(),
            notify: Default::default(),
            archive_seed: None,
            inventory_sources: false,
            cleaning: Default::default(),
            lifecycle: Default::default(),
            simulated_parts_history: false,
            analysis: Default::default(),
            cluster: Default::default(),
            cluster_journal: None,
            backups: None,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("parts lifecycle: {0}")]
    Lifecycle(#[from] crate::business::assets::lifecycle::LifecycleError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Modbus(#[from] ModbusError),
    #[error("{0}")]
    Writer(#[from] WriteError),
    #[error(transparent)]
    Rules(#[from] cistern_rules::RuleSetError),
    #[error("rule directory {0} does not exist")]
    NoRuleDir(String),
    #[error("cannot start work orders: {0}")]
    WorkOrders(#[from] crate::business::workorders::WorkOrdersError),
    #[error("cannot start the archive: {0}")]
    Archive(#[from] crate::business::assets::archive::ArchiveError),
    #[error("cannot start the analysis: {0}")]
    Analysis(#[from] crate::business::analysis::AnalysisError),
    #[error("cannot start tank cleaning: {0}")]
    Cleaning(#[from] crate::business::assets::cleaning::CleaningError),
    #[error("cannot start inspections: {0}")]
    Inspections(#[from] crate::business::assets::inspection::InspectionError),
    #[error("cannot start notifications: {0}")]
    Notify(#[from] crate::notify::NotifyError),
    #[error(transparent)]
    ClusterConfig(#[from] crate::cluster::ClusterConfigError),
    #[cfg(feature = "cluster")]
    #[error(transparent)]
    Cluster(#[from] crate::cluster::agent::ClusterError),
    #[error("HTTPS: {0}")]
    Tls(crate::tls::TlsError),
    #[error("MQTT TLS: {0}")]
    MqttTls(crate::tls::TlsError),
    #[error("cannot serve HTTP on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Loads the rule set (the directory, else the built-in library) and builds what every room's
/// alarm engine shares; none when rules are disabled. A rule that fails to compile at start-up
/// is left out and reported; the others run.
fn start_rules(
    spec: &NodeSpec,
    metrics: &prometheus::Registry,
    outbox: crate::notify::AlarmOutbox,
) -> Result<Option<Arc<RuleHost>>, NodeError> {
    let config = &spec.rules;
    if !config.enabled {
        tracing::warn!("alarm rules are disabled ([rules] enabled = false)");
        return Ok(None);
    }
    let outcome = match (&config.dir, config.directory()) {
        (Some(_), Some(dir)) => RuleSet::load_dir(dir, config.limits.clone())?,
        (Some(dir), None) => return Err(NodeError::NoRuleDir(dir.display().to_string())),
        (None, _) => cistern_rules::library::load(config.limits.clone()),
    };
    for d in &outcome.diagnostics {
        match d.level {
            cistern_rules::DiagLevel::Error => {
                tracing::error!(diagnostic = %d, "rule not loaded")
            }
            cistern_rules::DiagLevel::Warning => tracing::warn!(diagnostic = %d, "rule warning"),
        }
    }
    let rule_metrics = RuleMetrics::register(metrics)?;
    rule_metrics.init_series(&outcome.set);
    let mut host = RuleHost::new(
        Arc::new(outcome.set),
        config.engine.clone(),
        config.zone.clone(),
        spec.alarm_store.clone(),
        Arc::new(outbox),
        rule_metrics,
    );
    host.refresh_every = config.refresh_every.max(std::time::Duration::from_secs(1));
    tracing::info!(
        rules = host.rules().len(),
        source = %config.directory().map_or("built-in library".to_owned(), |d| d.display().to_string()),
        "alarm rules loaded"
    );
    Ok(Some(Arc::new(host)))
}

/// The inventory the archive describes: each archived room's spec replaces the inventory's
/// entry of the same id (keeping the inventory's data source when `keep_sources`), and rooms
/// only the archive holds are added (in id order).
fn follow_archive(
    inventory: &mut Inventory,
    rooms: Vec<cistern_schemas::inventory::RoomSpec>,
    keep_sources: bool,
) {
    let mut by_id: std::collections::HashMap<_, _> =
        rooms.into_iter().map(|r| (r.id.clone(), r)).collect();
    for room in &mut inventory.rooms {
        if let Some(mut r) = by_id.remove(&room.id) {
            if keep_sources {
                r.source = room.source.clone();
            }
            *room = r;
        }
    }
    let mut added: Vec<_> = by_id.into_values().collect();
    added.sort_by(|a, b| a.id.cmp(&b.id));
    inventory.rooms.extend(added);
}

/// The registry as the archive's [`LiveFleet`](crate::business::assets::archive::LiveFleet):
/// a room added to the archive starts (a Modbus room with its poller; an MQTT room's data are
/// accepted at once), a changed one takes its new nameplate. A running room's data source is
/// not changed at runtime: a room moved to another controller is polled there from the next
/// start.
#[derive(Debug)]
struct FleetFollower {
    registry: Arc<FleetRegistry>,
    pollers: PollerLauncher,
}

impl crate::business::assets::archive::LiveFleet for FleetFollower {
    fn follow(
        &self,
        spec: cistern_schemas::inventory::RoomSpec,
    ) -> futures::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let new = self.registry.spec(&spec.id).is_none();
            let poll = new.then(|| spec.clone());
            self.registry
                .follow(spec)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(room) = poll {
                match self.pollers.spawn(&room) {
                    Ok(Some(_)) => tracing::info!(room = %room.id, "Modbus poller started"),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(format!(
                            "the room runs, but its Modbus poller does not: {e}"
                        ))
                    }
                }
            }
            Ok(())
        })
    }
}

/// Writes the ingest log's rate-limit summary every few seconds (the summary itself comes at
/// most once per interval), until shutdown.
async fn log_summaries(router: Arc<IngestRouter>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => router.log_summary(),
        }
    }
}

/// What a cluster member is made of before the fleet starts: the gate, the checkpoints that
/// stand in for the node's alarm state and snapshots, the metrics and the journal.
#[cfg(feature = "cluster")]
struct ClusterParts {
    config: crate::cluster::ClusterConfig,
    gate: Arc<crate::cluster::Gate>,
    checkpoints: Arc<crate::cluster::checkpoint::ShardCheckpoints>,
    metrics: crate::cluster::metrics::ClusterMetrics,
    journal: crate::cluster::journal::Journal,
}

/// Puts the cluster's checkpoints in place of the node's alarm state and snapshots (a shard's
/// state must follow it to its next owner), and turns the business layer off on a node whose
/// records are its own (they would diverge between nodes: it needs the shared store).
#[cfg(feature = "cluster")]
fn cluster_parts(
    spec: &mut NodeSpec,
    cluster_metrics: crate::cluster::metrics::ClusterMetrics,
) -> Result<ClusterParts, NodeError> {
    use crate::cluster::checkpoint::{Keys, ShardCheckpoints};
    let gate = Arc::new(crate::cluster::Gate::default());
    let checkpoints = Arc::new(ShardCheckpoints::new(
        Keys::new(spec.cluster.prefix()),
        gate.clone(),
        cluster_metrics.clone(),
        spec.alarm_store.clone(),
        spec.stored_alarms.clone(),
    ));
    spec.alarm_store = checkpoints.clone();
    spec.snapshots = checkpoints.clone();
    if spec.records.take().is_some() {
        tracing::warn!(
            "[cluster]: work orders, archives, notifications and analysis are off on a cluster \
             node whose records are its own; they need the shared store ([store] backend = \
             \"scylla\")"
        );
    }
    let journal =
        crate::cluster::journal::Journal::open(&spec.cluster.node_id, spec.cluster_journal.clone())
            .map_err(crate::cluster::agent::ClusterError::Journal)?;
    Ok(ClusterParts {
        config: spec.cluster.clone(),
        gate,
        checkpoints,
        metrics: cluster_metrics,
        journal,
    })
}

#[cfg(feature = "cluster")]
impl ClusterParts {
    /// The member, with the node's side of its moves.
    fn member(
        self,
        host: cluster::NodeShards,
    ) -> (
        Arc<crate::cluster::agent::ClusterAgent>,
        Arc<dyn crate::cluster::agent::ShardHost>,
    ) {
        let agent = crate::cluster::agent::ClusterAgent::new(
            self.config,
            self.gate,
            self.checkpoints,
            self.metrics,
            self.journal,
        );
        let _ = host.agent.set(agent.clone());
        (agent, Arc::new(host))
    }
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    pub registry: Arc<FleetRegistry>,
    pub metrics: prometheus::Registry,
    pub http: SocketAddr,
    /// Remote-parameter writes to the Modbus rooms' controllers (plans, set-points).
    pub writer: Arc<FieldWriter>,
    /// The planning service's board (when the node plans).
    pub plans: Option<Arc<crate::control::plans::PlanBoard>>,
    /// The work-order service (when the node has records and rules).
    pub workorders: Option<Arc<crate::business::workorders::WorkOrders>>,
    /// The rooms' archives (when the node has records).
    pub archive: Option<Arc<crate::business::assets::archive::Archive>>,
    /// Tank cleaning (when the node has records).
    pub cleaning: Option<Arc<crate::business::assets::cleaning::TankCleaning>>,
    /// The parts lifecycle (when the node has records).
    pub lifecycle: Option<Arc<crate::business::assets::lifecycle::service::Lifecycle>>,
    /// The analysis (when the node has records and history).
    pub analysis: Option<Arc<crate::business::analysis::Analysis>>,
    /// Identity and the audit log.
    pub security: crate::auth::Security,
    shutdown: watch::Sender<bool>,
    ws_shutdown: watch::Sender<bool>,
    server: actix_web::dev::ServerHandle,
    arbiters: Vec<Arbiter>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    mqtt_subscribed: Option<watch::Receiver<bool>>,
    history: Option<Arc<crate::historian::Historian>>,
    readiness: Readiness,
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
        if let Some(backups) = &spec.backups {
            backups.register(&metrics)?;
        }

        let arbiters: Vec<Arbiter> = (0..spec.actor_threads.max(1))
            .map(|_| Arbiter::new())
            .collect();
        let handles: Vec<_> = arbiters.iter().map(|a| a.handle()).collect();
        let mut spec = spec;
        spec.cluster.validate()?;
        spec.cluster.check_etcd_tls()?;
        // The cluster's series exist on every node (a single node owns every shard), so that
        // dashboards and alerts read the same names everywhere.
        let cluster_metrics = crate::cluster::metrics::ClusterMetrics::register(&metrics)?;
        #[cfg(feature = "cluster")]
        let cluster = if spec.cluster.enabled {
            Some(cluster_parts(&mut spec, cluster_metrics)?)
        } else {
            cluster_metrics
                .shards_owned
                .set(i64::from(cistern_actors::registry::SHARDS));
            None
        };
        #[cfg(not(feature = "cluster"))]
        cluster_metrics
            .shards_owned
            .set(i64::from(cistern_actors::registry::SHARDS));
        // Work orders watch the alarm events through a tap on the alarm store, put in place
        // before any alarm host exists.
        let intake = if spec.workorders.enabled && spec.records.is_some() && spec.rules.enabled {
            let (tap, events) = crate::business::workorders::intake::AlarmTap::new(
                spec.alarm_store.clone(),
                &metrics,
            )?;
            spec.alarm_store = Arc::new(tap);
            Some(events)
        } else {
            None
        };
        // Notifications: the alarm engine's outbox hands over without waiting; the service
        // behind it starts once the work orders it listens to exist.
        let notify_metrics = crate::notify::NotifyMetrics::register(&metrics)?;
        let mut notify_config = spec.notify.clone();
        if spec.records.is_none() && notify_config.enabled {
            if !notify_config.channels.is_empty() {
                tracing::warn!(
                    "[notify] needs a store for its outbox; notifications are only logged"
                );
            }
            notify_config.enabled = false;
        }
        let (outbox, notify_intake) = crate::notify::outbox(&notify_config, notify_metrics.clone());
        let reminders = outbox.reminders();
        let rule_host = start_rules(&spec, &metrics, outbox)?;
        // The dashboards' change feed exists before any actor, so that no change is missed.
        let live = Arc::new(crate::api::ws::HubFeed::new());
        // A cluster member also shows the rooms other nodes supervise, and publishes its own
        // for them: the live mirror over the broker (`cluster::mirror`).
        #[cfg(feature = "cluster")]
        let mirror = match &cluster {
            Some(parts) => Some(crate::cluster::mirror::Mirror::new(
                &spec.cluster.name,
                &spec.cluster.node_id,
                live.clone(),
                parts.gate.clone(),
                crate::cluster::mirror::MirrorMetrics::register(&metrics)?,
            )),
            None => None,
        };
        #[cfg(feature = "cluster")]
        let actor_feed: Arc<dyn cistern_actors::LiveFeed> = match &mirror {
            Some(m) => m.clone(),
            None => live.clone(),
        };
        #[cfg(not(feature = "cluster"))]
        let actor_feed: Arc<dyn cistern_actors::LiveFeed> = live.clone();
        if let Some(host) = &rule_host {
            host.board.set_live(actor_feed.clone());
        }
        // The archive is the fleet's source of truth once it holds a room: seeded from the
        // inventory (or the demo's archive) when empty, it says which rooms run and with what.
        let archive = match &spec.records {
            Some(records) => {
                let archive = crate::business::assets::archive::Archive::start(
                    records.clone(),
                    &spec.inventory,
                    spec.clock.clone(),
                    spec.security.audit.clone(),
                    spec.archive_seed.take(),
                )
                .await?;
                let rooms = archive.room_specs().await;
                follow_archive(&mut spec.inventory, rooms, spec.inventory_sources);
                Some(Arc::new(archive))
            }
            None => None,
        };
        let figures = Arc::new(cistern_actors::LiveFigures::default());
        let deps = DeviceDeps {
            clock: spec.clock.clone(),
            snapshots: spec.snapshots.clone(),
            sink: spec.sink.clone(),
            metrics: actor_metrics.clone(),
            config: Arc::new(spec.actors.clone()),
            rules: rule_host.clone(),
            live: actor_feed,
            figures: figures.clone(),
        };
        let registry = if spec.cluster.enabled {
            // A cluster member runs no room until its member claims the room's shard.
            FleetRegistry::start_only(&spec.inventory, &deps, &handles, |_| false)
        } else {
            FleetRegistry::start(&spec.inventory, &deps, &handles)
        };
        tracing::info!(
            rooms = registry.len(),
            threads = handles.len(),
            "actor tree started"
        );
        metrics.register(Box::new(FleetCollector::new(FleetSources {
            registry: registry.clone(),
            figures,
            rules: rule_host.clone(),
            clock: spec.clock.clone(),
            zones: spec.inventory.zones.iter().map(|z| z.id.clone()).collect(),
            lag: actor_metrics.lag.clone(),
        })?))?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let rule_dir = spec.rules.directory().map(|d| d.to_path_buf());
        if let (Some(host), Some(dir), true) = (&rule_host, &rule_dir, spec.rules.hot_reload) {
            tasks.push(tokio::spawn(crate::alarms::reload::watch(
                dir.clone(),
                spec.rules.reload_every,
                host.clone(),
                registry.clone(),
                shutdown_rx.clone(),
            )));
            tracing::info!(dir = %dir.display(), "rule hot reload on");
        }
        let ingest_router = Arc::new(IngestRouter::new(
            registry.clone(),
            ingest_metrics.clone(),
            spec.clock.clone(),
        ));
        tasks.push(tokio::spawn(log_summaries(
            ingest_router.clone(),
            shutdown_rx.clone(),
        )));
        let router: Arc<dyn BatchSink> = ingest_router;
        let mut mqtt_subscribed = None;
        if let Some(mqtt) = &spec.mqtt {
            mqtt.check_tls().map_err(NodeError::MqttTls)?;
        }
        if spec.mqtt.is_some() {
            // Series from zero, so that a rate over a stalled or never-started ingest is 0
            // rather than absent.
            ingest_metrics.messages.with_label_values(&["mqtt"]);
            ingest_metrics.points.with_label_values(&["mqtt"]);
        }
        if let (Some(mqtt), false) = (&spec.mqtt, spec.cluster.enabled) {
            let ingest = mqtt::spawn(
                mqtt,
                spec.security.auth.clone(),
                router.clone(),
                ingest_metrics.clone(),
                spec.clock.clone(),
                shutdown_rx.clone(),
            );
            tasks.extend(ingest.tasks);
            mqtt_subscribed = Some(ingest.subscribed);
            tracing::info!(broker = %format!("{}:{}", mqtt.host, mqtt.port), "MQTT ingest started");
        }
        let writer = Arc::new(FieldWriter::new(
            &spec.inventory,
            &spec.profiles,
            &spec.modbus,
            spec.security.audit.clone(),
            WriteMetrics::register(&metrics).map_err(ModbusError::Metrics)?,
        )?);
        let mut plans = None;
        if let Some(p) = spec.plans {
            let port = Arc::new(FieldPlanPort(writer.clone()));
            let mut service = PlanService::new(
                &spec.inventory,
                |tank| writer.takes_plans(tank),
                port,
                p.config,
            );
            service.import(&p.history);
            tracing::info!(
                tanks = service.tanks(),
                imported_slots = p.history.len(),
                "peak-shaving planning started"
            );
            plans = Some(service.board());
            tasks.push(service.spawn(registry.clone(), spec.clock.clone(), shutdown_rx.clone()));
        }
        let workorders = match (intake, &spec.records, &rule_host) {
            (Some(events), Some(records), Some(host)) => {
                use crate::business::workorders::{intake, service, WorkOrders};
                let service = Arc::new(
                    WorkOrders::start(
                        &spec.workorders,
                        records.clone(),
                        &spec.inventory,
                        spec.clock.clone(),
                        spec.security.clone(),
                        service::OrderMetrics::register(&metrics)?,
                    )
                    .await?,
                );
                tasks.push(tokio::spawn(intake::run(
                    service.clone(),
                    host.clone(),
                    events,
                    spec.workorders.check_every,
                    spec.workorders.reconcile_every,
                    shutdown_rx.clone(),
                )));
                tasks.push(tokio::spawn(crate::business::workorders::gauges::run(
                    service.clone(),
                    crate::business::workorders::gauges::OrderGauges::register(&metrics)?,
                    spec.workorders.check_every,
                    shutdown_rx.clone(),
                )));
                tracing::info!(
                    teams = service.roster().teams().len(),
                    templates = service.templates().iter().count(),
                    "work orders started"
                );
                Some(service)
            }
            _ => None,
        };
        // The work orders know the rooms the archive adds or renames at runtime.
        if let (Some(archive), Some(orders)) = (&archive, &workorders) {
            let mut changes = archive.subscribe();
            let (archive, orders) = (archive.clone(), orders.clone());
            let mut stop = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        change = changes.recv() => match change {
                            Ok(c) => orders.follow_room(
                                c.room,
                                c.archive.site.name.clone(),
                                c.archive.site.zone.clone(),
                            ),
                            // Missed some (a large import): take every room again.
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                for r in archive.rooms().await {
                                    orders.follow_room(
                                        r.site.id.clone(),
                                        r.site.name.clone(),
                                        r.site.zone.clone(),
                                    );
                                }
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        },
                    }
                }
            }));
        }
        // Parts lifecycle: its components are the archive's equipment (the inventory's rooms,
        // each as the archive it seeds, on a node without one), and it follows the archive's
        // changes (`Lifecycle::sync_room`: a new serial on a tag is a replacement).
        let lifecycle = match &spec.records {
            Some(records) if spec.lifecycle.enabled => {
                use crate::business::assets::archive::model::RoomArchive;
                use crate::business::assets::lifecycle::service::{self as lc, Lifecycle};
                let archives: Vec<RoomArchive> = match &archive {
                    Some(a) => a.rooms().await.iter().map(|r| (**r).clone()).collect(),
                    None => spec
                        .inventory
                        .rooms
                        .iter()
                        .map(RoomArchive::from_spec)
                        .collect(),
                };
                let service = Arc::new(
                    Lifecycle::start(
                        spec.lifecycle.clone(),
                        records.clone(),
                        spec.clock.clone(),
                        spec.workorders.utc_offset_minutes,
                        spec.simulated_parts_history,
                        &archives,
                    )
                    .await?,
                );
                if let Some(orders) = &workorders {
                    service.attach_orders(orders.clone());
                }
                tasks.push(tokio::spawn(lc::run(
                    service.clone(),
                    registry.clone(),
                    shutdown_rx.clone(),
                )));
                if let Some(archive) = &archive {
                    tasks.push(tokio::spawn(lc::follow_archive(
                        service.clone(),
                        archive.clone(),
                        shutdown_rx.clone(),
                    )));
                }
                tracing::info!(
                    components = service.components(None, None, None).len(),
                    "parts lifecycle started"
                );
                Some(service)
            }
            _ => None,
        };
        let notify = match (notify_intake, &spec.records) {
            (Some(intake), Some(records)) => {
                let (notifier, started) = crate::notify::Notifier::start(
                    notify_config,
                    records.clone(),
                    intake,
                    workorders.clone(),
                    spec.security.clone(),
                    notify_metrics,
                    shutdown_rx.clone(),
                )?;
                tasks.extend(started);
                Some(notifier)
            }
            _ => None,
        };
        let cleaning = match (&spec.records, spec.cleaning.enabled) {
            (Some(records), true) => {
                let service = Arc::new(
                    crate::business::assets::cleaning::TankCleaning::start(
                        spec.cleaning.clone(),
                        records.clone(),
                        registry.clone(),
                        workorders.clone(),
                        reminders,
                        spec.clock.clone(),
                    )
                    .await?,
                );
                tasks.push(tokio::spawn(service.clone().run(shutdown_rx.clone())));
                Some(service)
            }
            _ => None,
        };
        let inspections = match &spec.records {
            Some(records) => Some(Arc::new(
                crate::business::assets::inspection::Inspections::start(
                    records.clone(),
                    registry.clone(),
                    workorders.clone(),
                    spec.clock.clone(),
                    spec.cleaning.utc_offset_minutes,
                )
                .await?,
            )),
            None => None,
        };
        let analysis = match (&spec.records, &spec.history) {
            (Some(records), Some(history)) if spec.analysis.enabled => {
                let service = Arc::new(
                    crate::business::analysis::Analysis::start(
                        spec.analysis.clone(),
                        records.clone(),
                        Some(history.clone()),
                        registry.clone(),
                        archive.clone(),
                        spec.clock.clone(),
                    )
                    .await?,
                );
                tasks.push(tokio::spawn(service.clone().run(shutdown_rx.clone())));
                // The rooms' rule engines get their nightly leak facts (night_flow_leak).
                tasks.push(tokio::spawn(crate::business::analysis::leak_feed::run(
                    service.clone(),
                    registry.clone(),
                    shutdown_rx.clone(),
                )));
                tracing::info!(since = %service.since(), "analysis started");
                Some(service)
            }
            _ => None,
        };
        // A cluster member polls the rooms of the shards it claims, as it claims them.
        let polled = if spec.cluster.enabled {
            Inventory {
                zones: spec.inventory.zones.clone(),
                rooms: Vec::new(),
            }
        } else {
            spec.inventory.clone()
        };
        #[cfg(feature = "cluster")]
        let shard_router = router.clone();
        let (pollers, launcher) = start_pollers(
            &polled,
            &spec.profiles,
            &spec.modbus,
            router,
            &metrics,
            shutdown_rx.clone(),
        )?;
        if !pollers.is_empty() {
            tracing::info!(rooms = pollers.len(), "Modbus pollers started");
            ingest_metrics.messages.with_label_values(&["modbus"]);
            ingest_metrics.points.with_label_values(&["modbus"]);
        }
        // The archive's changes reach the running fleet from here on (nothing writes to the
        // archive before the HTTP API starts).
        if let Some(archive) = &archive {
            archive.set_fleet(Arc::new(FleetFollower {
                registry: registry.clone(),
                pollers: launcher.clone(),
            }));
        }
        let readiness = Readiness {
            mqtt_subscribed: mqtt_subscribed.clone(),
            pollers: pollers.iter().map(|p| p.abort_handle()).collect(),
            history: spec.history.clone(),
            registry: registry.clone(),
            actor_metrics,
            clock: spec.clock.clone(),
            max_ingest_lag: spec.actors.max_ingest_lag,
        };
        tasks.extend(pollers);

        let (ws_shutdown, ws_shutdown_rx) = watch::channel(false);
        let (hub, hub_task) = crate::api::ws::hub::start(
            spec.ws.clone(),
            live,
            registry.clone(),
            crate::api::ws::hub::Boards {
                alarms: rule_host.as_ref().map(|h| h.board.clone()),
                plans: plans.clone(),
                orders: workorders.clone(),
                #[cfg(feature = "cluster")]
                remote: mirror
                    .clone()
                    .map(|m| m as Arc<dyn crate::api::ws::hub::RemoteRooms>),
                #[cfg(not(feature = "cluster"))]
                remote: None,
            },
            spec.security.audit.clone(),
            crate::api::ws::WsMetrics::register(&metrics)?,
            ws_shutdown_rx.clone(),
        );
        tasks.push(hub_task);
        #[cfg(feature = "cluster")]
        let cluster = match cluster {
            Some(parts) => Some({
                let gate = parts.gate.clone();
                // Field writes (plans, set-points) go only to rooms this node runs and acts for.
                let (runs, acting) = (registry.clone(), gate.clone());
                writer.set_gate(Arc::new(move |room| {
                    runs.runs(room) && acting.acting(cistern_actors::registry::shard_of(room))
                }));
                let checkpoints = parts.checkpoints.clone();
                parts.member(cluster::NodeShards {
                    registry: registry.clone(),
                    mqtt: spec.mqtt.clone(),
                    senders: spec.security.auth.clone(),
                    cluster: spec.cluster.name.clone(),
                    router: shard_router,
                    metrics: ingest_metrics.clone(),
                    clock: spec.clock.clone(),
                    shutdown: shutdown_rx.clone(),
                    gate,
                    checkpoints,
                    agent: std::sync::OnceLock::new(),
                    rooms: cluster::NodeShards::rooms_by_shard(&spec.inventory.rooms),
                    pollers: crate::ingest::modbus::RoomPollers::new(launcher.clone()),
                    sessions: Default::default(),
                })
            }),
            None => None,
        };
        #[cfg(feature = "cluster")]
        if let (Some(mirror), Some((agent, _))) = (&mirror, &cluster) {
            mirror.set_cluster(agent.clone());
            match &spec.mqtt {
                Some(mqtt) => tasks.push(mirror.spawn(
                    mqtt,
                    registry.clone(),
                    rule_host.as_ref().map(|h| h.board.clone()),
                    shutdown_rx.clone(),
                )),
                None => tracing::warn!(
                    "[cluster] without [mqtt]: this node shows only the rooms it supervises"
                ),
            }
        }
        let state = web::Data::new(ApiState {
            registry: registry.clone(),
            metrics: metrics.clone(),
            field: spec.field,
            history: spec.history.clone(),
            alarms: rule_host.map(|host| api::AlarmsApi {
                host,
                stored: spec.stored_alarms.clone(),
                dir: rule_dir,
                cases: spec.rules.cases_directory().map(|d| d.to_path_buf()),
            }),
            security: spec.security.clone(),
            ws: Some(crate::api::ws::WsApi {
                hub,
                shutdown: ws_shutdown_rx,
            }),
            readiness: Some(readiness.clone()),
            writer: Some(writer.clone()),
            plans: plans.clone(),
            basemap: spec.basemap.clone(),
            workorders: workorders.clone(),
            notify,
            imports: archive.as_ref().map(|a| {
                use crate::business::assets::archive::import::{self, Imports, Phase};
                let audit = spec.security.audit.clone();
                Imports::new(
                    a.clone(),
                    Arc::new(crate::api::webui::ConsoleWords),
                    // The archive records what a written import changed; the rest (dry runs,
                    // refusals, failures) is recorded here.
                    Box::new(move |job: &import::Job| {
                        if job.phase == Phase::Done && !job.dry_run {
                            return;
                        }
                        audit.record(crate::auth::audit::AuditEntry::now(
                            job.by.clone(),
                            "asset_import",
                            "archive",
                            import::summary(job),
                            job.phase == Phase::Done,
                        ));
                    }),
                )
            }),
            archive: archive.clone(),
            cleaning: cleaning.clone(),
            inspections,
            lifecycle: lifecycle.clone(),
            analysis: analysis.clone(),
            #[cfg(feature = "cluster")]
            cluster: cluster
                .as_ref()
                .map(|(agent, _)| agent.clone() as Arc<dyn crate::cluster::ClusterView>),
            #[cfg(not(feature = "cluster"))]
            cluster: None,
            backups: spec.backups.clone(),
        });
        if state.analysis.is_some() {
            // The room scores' daily history (issue 22 item 5), stored as days close.
            tasks.push(tokio::spawn(crate::api::analysis_score::keep_history(
                state.clone(),
                shutdown_rx.clone(),
            )));
        }
        spec.security.auth.metrics().register(&metrics)?;
        spec.security.audit.metrics().register(&metrics)?;
        let security = web::Data::new(spec.security.clone());
        let tls = match &spec.http_tls {
            Some(config) => {
                let tls_metrics = crate::tls::TlsMetrics::register(&metrics)?;
                let cert = crate::tls::ReloadingCert::load("https", config, tls_metrics)
                    .map_err(NodeError::Tls)?;
                tasks.push(tokio::spawn(cert.clone().watch(shutdown_rx.clone())));
                Some((
                    cert.server_config().map_err(NodeError::Tls)?,
                    config.handshake_timeout,
                ))
            }
            None => None,
        };
        let server = HttpServer::new(move || {
            App::new()
                // Inside the gate: a request is sent on to its room's node once authenticated.
                .wrap(actix_web::middleware::from_fn(crate::api::forward::forward))
                .wrap(actix_web::middleware::from_fn(
                    crate::auth::middleware::authenticate,
                ))
                .app_data(security.clone())
                .app_data(state.clone())
                .configure(api::configure)
        })
        .workers(spec.http_workers.max(1))
        .disable_signals();
        let server = match tls {
            Some((config, handshake)) => server
                .tls_handshake_timeout(handshake)
                .bind_rustls_0_23(spec.http, config),
            None => server.bind(spec.http),
        }
        .map_err(|source| NodeError::Http {
            addr: spec.http,
            source,
        })?;
        let http = server.addrs().first().copied().unwrap_or(spec.http);
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let scheme = if spec.http_tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(%http, scheme, "HTTP API listening");
        // The member claims shards once the node can serve them; it is stopped first, so that
        // it hands every shard over before ingest and the actors stop.
        #[cfg(feature = "cluster")]
        if let Some((agent, host)) = cluster {
            tasks.insert(0, agent.spawn(host, shutdown_rx.clone()));
        }
        Ok(Node {
            registry,
            metrics,
            http,
            writer,
            plans,
            workorders,
            archive,
            cleaning,
            lifecycle,
            analysis,
            security: spec.security.clone(),
            shutdown,
            ws_shutdown,
            server: handle,
            arbiters,
            tasks,
            mqtt_subscribed,
            history: spec.history,
            readiness,
        })
    }

    /// Stops the node: HTTP, then ingest, then the actors.
    pub async fn stop(self) {
        // Sockets first (close 1001), or the HTTP server's graceful stop waits for them.
        let _ = self.ws_shutdown.send(true);
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

    /// What `/readyz` says now.
    pub fn readiness(&self) -> crate::monitor::ready::ReadinessReport {
        self.readiness.check()
    }

    /// A receiver that turns true when the node stops (for companions such as the field).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// The simulated field as the product sees it: a port, so that the node and the API serve the
/// demo's fault injection (`/api/v1/sim/faults`) without naming the lab that implements it
/// (`lab::field::FieldHandle`). A node on a real site has none.
pub trait FieldSim: Send + Sync + std::fmt::Debug {
    /// The fault kinds that can be injected, in a stable order.
    fn fault_kinds(&self) -> Vec<FaultKindInfo>;
    /// The faults in force now.
    fn active_faults(&self) -> Vec<ActiveFaultInfo>;
    /// Injects the fault named `fault` (one of [`FieldSim::fault_kinds`]) into `room` for
    /// `duration` of simulated time.
    fn inject(
        &self,
        room: &cistern_schemas::RoomId,
        fault: &str,
        duration: std::time::Duration,
    ) -> Result<(), FieldSimError>;
    /// The simulated field's clock.
    fn now(&self) -> cistern_schemas::Timestamp;
}

/// A kind of fault the simulated field can inject.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FaultKindInfo {
    /// Its name (`pump_trip`).
    pub fault: String,
    pub description: String,
}

/// A fault in force in the simulated field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ActiveFaultInfo {
    pub room: cistern_schemas::RoomId,
    pub fault: String,
    pub started: cistern_schemas::Timestamp,
    /// The fault ends (and the plant starts to recover) at this instant.
    pub ends: cistern_schemas::Timestamp,
    /// The device or point the fault acts on, when it acts on one (`P2`, `T1`,
    /// `outlet_pressure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Why the simulated field refused a fault.
#[derive(Debug, thiserror::Error)]
pub enum FieldSimError {
    #[error("unknown fault {fault:?}; known: {}", known.join(", "))]
    UnknownFault { fault: String, known: Vec<String> },
    /// The field cannot inject it (an unknown room, a room without the device it needs).
    #[error("{0}")]
    Rejected(String),
}
