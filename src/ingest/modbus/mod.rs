//! Modbus TCP ingest: one polling task per room whose inventory source is
//! `via = "modbus"`, reading the room's controller by its register-map profile
//! (`schemas/profiles/`) and handing one [`DeviceBatch`](cistern_schemas::reading::DeviceBatch)
//! per device per poll cycle to the [`BatchSink`].
//!
//! What it owns: the connection to each controller and its failure handling. Every request
//! and connection attempt is bounded by a timeout. A timeout or a transport error drops the
//! client context (a late answer to a timed-out request would be taken for the answer to the
//! next one: transaction-id mismatches) and reconnects with exponential backoff and jitter;
//! the outage is logged once per room (rate-limited) and counted. A Modbus exception is data,
//! not a link failure: the points of that block are marked bad with reason
//! `modbus exception: <code>` and the connection stays up.
//!
//! Configuration is checked and every room's profile and read plan is resolved before any
//! task starts, so a misspelt profile name stops start-up with the room's id in the message.
//! Pollers stop when the shutdown watch turns `true` (or its sender is dropped), at whatever
//! await point they are. In a cluster a node polls only the rooms it runs: [`RoomPollers`]
//! starts and stops them one room at a time, with their rooms (a shard moves with its Modbus
//! polling; stop a room's poller before the room itself, so that no batch of it is refused).

mod backoff;
mod metrics;
mod poller;

pub use backoff::Backoff;
pub use metrics::ModbusMetrics;

use crate::ingest::BatchSink;
use cistern_schemas::inventory::{Inventory, ModbusSource};
use cistern_schemas::modbus::{ProfileError, ProfileSet, RegisterKind, RoomShape};
use cistern_schemas::RoomId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The `[modbus]` section of the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModbusConfig {
    /// Time between the starts of two poll cycles of a room.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Longest wait for the answer to one read request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest wait for a TCP connection (cellular gateways can be slow to accept).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// First delay before reconnecting after a failure.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    /// Cap of the reconnection delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
}

impl Default for ModbusConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(3),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

impl ModbusConfig {
    /// Checks what serde cannot: positive durations and a sane backoff range.
    pub fn validate(&self) -> Result<(), ModbusError> {
        let positive = [
            ("interval", self.interval),
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("backoff_min", self.backoff_min),
        ];
        for (key, d) in positive {
            if d.is_zero() {
                return Err(ModbusError::Config(format!(
                    "modbus.{key} must be positive"
                )));
            }
        }
        if self.backoff_max < self.backoff_min {
            return Err(ModbusError::Config(format!(
                "modbus.backoff_max ({}) is below modbus.backoff_min ({})",
                humantime::format_duration(self.backoff_max),
                humantime::format_duration(self.backoff_min)
            )));
        }
        Ok(())
    }
}

/// Errors of Modbus ingest: set-up errors are returned by [`spawn_pollers`]; link and read
/// errors are logged and counted by the poller that meets them.
#[derive(Debug, thiserror::Error)]
pub enum ModbusError {
    #[error("invalid Modbus configuration: {0}")]
    Config(String),
    #[error("room {room}: {source}")]
    Profile { room: RoomId, source: ProfileError },
    #[error("cannot register Modbus metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("Modbus pollers must be started inside a tokio runtime")]
    NoRuntime,
    #[error("room {room}: cannot connect to {address}: {source}")]
    Connect {
        room: RoomId,
        address: String,
        source: std::io::Error,
    },
    #[error("room {room}: connecting to {address} timed out after {after:?}")]
    ConnectTimeout {
        room: RoomId,
        address: String,
        after: Duration,
    },
    #[error("room {room}: read of {kind}s {start}..={end} timed out after {after:?}")]
    Timeout {
        room: RoomId,
        kind: RegisterKind,
        start: u16,
        end: u16,
        after: Duration,
    },
    #[error("room {room}: read of {kind}s {start}..={end} failed: {source}")]
    Transport {
        room: RoomId,
        kind: RegisterKind,
        start: u16,
        end: u16,
        source: tokio_modbus::Error,
    },
}

/// Starts one poller per Modbus room of `inventory` and returns their handles.
///
/// Everything that can be wrong with the set-up (configuration, an unknown profile, a room
/// with more pumps than its controller maps, metrics already registered on `registry`) is
/// reported before any task starts. The pollers stop when `shutdown` turns `true` or its
/// sender is dropped; await the handles for a clean stop.
pub fn spawn_pollers(
    inventory: &Inventory,
    profiles: &ProfileSet,
    config: &ModbusConfig,
    sink: Arc<dyn BatchSink>,
    registry: &prometheus::Registry,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, ModbusError> {
    start_pollers(inventory, profiles, config, sink, registry, shutdown).map(|(h, _)| h)
}

/// [`spawn_pollers`], and what starts the poller of a room added later.
pub fn start_pollers(
    inventory: &Inventory,
    profiles: &ProfileSet,
    config: &ModbusConfig,
    sink: Arc<dyn BatchSink>,
    registry: &prometheus::Registry,
    shutdown: watch::Receiver<bool>,
) -> Result<(Vec<JoinHandle<()>>, PollerLauncher), ModbusError> {
    config.validate()?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| ModbusError::NoRuntime)?;
    let mut pollers = Vec::new();
    for room in &inventory.rooms {
        if let Some(p) = poller_of(room, profiles, config, &sink)? {
            pollers.push(p);
        }
    }
    let metrics = ModbusMetrics::register(registry)?;
    let handles = pollers
        .into_iter()
        .map(|p| runtime.spawn(p.with_metrics(&metrics).run(shutdown.clone(), None)))
        .collect();
    Ok((
        handles,
        PollerLauncher {
            profiles: profiles.clone(),
            config: config.clone(),
            sink,
            metrics,
            shutdown,
            runtime,
        },
    ))
}

/// The poller of a Modbus room (none for a room whose data arrive otherwise).
fn poller_of(
    room: &cistern_schemas::inventory::RoomSpec,
    profiles: &ProfileSet,
    config: &ModbusConfig,
    sink: &Arc<dyn BatchSink>,
) -> Result<Option<poller::RoomPoller>, ModbusError> {
    let Some(ModbusSource {
        address,
        unit_id,
        profile,
    }) = room.modbus()
    else {
        return Ok(None);
    };
    let with_room = |source| ModbusError::Profile {
        room: room.id.clone(),
        source,
    };
    let profile = Arc::clone(profiles.get(profile).map_err(with_room)?);
    let plan = profile.plan(RoomShape::of(room)).map_err(with_room)?;
    Ok(Some(poller::RoomPoller::new(poller::RoomSetup {
        room,
        address: address.to_owned(),
        unit_id,
        profile,
        plan,
        config: config.clone(),
        sink: Arc::clone(sink),
    })))
}

/// Starts the poller of a Modbus room added while the node runs (a room added to the
/// archive): the same profiles, settings, sink, metrics and shutdown as those of the start.
#[derive(Clone)]
pub struct PollerLauncher {
    profiles: ProfileSet,
    config: ModbusConfig,
    sink: Arc<dyn BatchSink>,
    metrics: ModbusMetrics,
    shutdown: watch::Receiver<bool>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for PollerLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollerLauncher").finish_non_exhaustive()
    }
}

impl PollerLauncher {
    /// What starts pollers later, none started yet (a cluster node, which polls the rooms of
    /// the shards it acquires): the configuration is checked and the metrics registered now.
    pub fn new(
        profiles: &ProfileSet,
        config: &ModbusConfig,
        sink: Arc<dyn BatchSink>,
        registry: &prometheus::Registry,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, ModbusError> {
        let empty = Inventory {
            zones: Vec::new(),
            rooms: Vec::new(),
        };
        start_pollers(&empty, profiles, config, sink, registry, shutdown).map(|(_, l)| l)
    }

    /// Starts `room`'s poller; none when its data do not arrive over Modbus.
    pub fn spawn(
        &self,
        room: &cistern_schemas::inventory::RoomSpec,
    ) -> Result<Option<JoinHandle<()>>, ModbusError> {
        self.spawn_until(room, None)
    }

    /// Starts `room`'s poller, which stops at the shutdown or when `stop` turns true (or its
    /// sender is dropped).
    fn spawn_until(
        &self,
        room: &cistern_schemas::inventory::RoomSpec,
        stop: Option<watch::Receiver<bool>>,
    ) -> Result<Option<JoinHandle<()>>, ModbusError> {
        let Some(p) = poller_of(room, &self.profiles, &self.config, &self.sink)? else {
            return Ok(None);
        };
        Ok(Some(
            self.runtime.spawn(
                p.with_metrics(&self.metrics)
                    .run(self.shutdown.clone(), stop),
            ),
        ))
    }
}

/// The Modbus pollers of the rooms a node runs, by room, started and stopped with them (a
/// shard's rooms move between nodes with their polling). Stop a room's poller before the
/// room: a batch polled for a room already stopped is refused (counted as `not_here`).
#[derive(Debug)]
pub struct RoomPollers {
    launcher: PollerLauncher,
    running: Mutex<HashMap<RoomId, Polling>>,
}

/// A running poller: its stop signal and its task.
type Polling = (watch::Sender<bool>, JoinHandle<()>);

impl RoomPollers {
    pub fn new(launcher: PollerLauncher) -> Self {
        Self {
            launcher,
            running: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Polling>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the poller of each of `rooms` polled over Modbus and not polled yet; returns how
    /// many started. A room whose profile does not fit fails the call with its id (the rooms
    /// before it in `rooms` are polled).
    pub fn start(
        &self,
        rooms: &[cistern_schemas::inventory::RoomSpec],
    ) -> Result<usize, ModbusError> {
        let mut started = 0;
        for room in rooms {
            let mut running = self.lock();
            if running.get(&room.id).is_some_and(|(_, h)| !h.is_finished()) {
                continue;
            }
            let (stop, stop_rx) = watch::channel(false);
            if let Some(handle) = self.launcher.spawn_until(room, Some(stop_rx))? {
                running.insert(room.id.clone(), (stop, handle));
                started += 1;
            }
        }
        Ok(started)
    }

    /// Stops the pollers of `rooms` (at whatever await point they are: a poll cycle under way
    /// is abandoned, its controller is polled by the room's next owner) and waits for them to
    /// end. Returns how many were polled here.
    pub async fn stop(&self, rooms: &[RoomId]) -> usize {
        let stopping: Vec<Polling> = {
            let mut running = self.lock();
            rooms.iter().filter_map(|r| running.remove(r)).collect()
        };
        let n = stopping.len();
        for (stop, handle) in stopping {
            let _ = stop.send(true);
            if let Err(error) = handle.await {
                tracing::error!(%error, "a Modbus poller ended abnormally");
            }
        }
        n
    }

    /// Whether `room` is polled here.
    pub fn polls(&self, room: &RoomId) -> bool {
        self.lock().contains_key(room)
    }

    /// Pollers started here (and not stopped), and how many of them still run (readiness).
    pub fn counts(&self) -> (usize, usize) {
        let running = self.lock();
        let alive = running.values().filter(|(_, h)| !h.is_finished()).count();
        (running.len(), alive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_durations_parse() {
        let c: ModbusConfig = toml::from_str("").unwrap();
        assert_eq!(c, ModbusConfig::default());
        let c: ModbusConfig =
            toml::from_str("interval = \"5s\"\nrequest_timeout = \"750ms\"\nbackoff_max = \"1m\"")
                .unwrap();
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.request_timeout, Duration::from_millis(750));
        assert_eq!(c.backoff_max, Duration::from_secs(60));
        c.validate().unwrap();
    }

    #[test]
    fn misspelt_or_impossible_config_is_refused() {
        let err = toml::from_str::<ModbusConfig>("intervall = \"5s\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `intervall`"), "{err}");
        let err = toml::from_str::<ModbusConfig>("interval = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("interval"), "{err}");
        let c = ModbusConfig {
            backoff_max: Duration::from_millis(100),
            ..ModbusConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("backoff_max (100ms) is below"));
        let c = ModbusConfig {
            request_timeout: Duration::ZERO,
            ..ModbusConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("request_timeout must be positive"));
    }
}
