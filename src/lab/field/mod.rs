//! The simulated field around the simulator: paces it in (optionally accelerated) time, and
//! carries its readings out the way real pump rooms do — MQTT gateways with store-and-forward,
//! and Modbus TCP controllers that the platform polls.
//!
//! The physics runs on the blocking pool (it is CPU work: 2,100 rooms a step); publishing runs
//! on async tasks. Each MQTT publisher connection has its own task that only polls its event
//! loop.

pub mod gateway;

use crate::lab::sim::{ActiveFault, FaultKind, SimError, Simulator};
use cistern_schemas::inventory::{Inventory, SourceSpec};
use cistern_schemas::reading::RoomReading;
use cistern_schemas::{RoomId, Timestamp};
use gateway::{Outgoing, RoomGateway};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// How the field runs.
#[derive(Clone, Debug)]
pub struct FieldConfig {
    /// Sampling period of the gateways (simulated time).
    pub period: Duration,
    /// Simulated seconds per wall-clock second.
    pub speed: f64,
    /// Readings a gateway buffers while its link is down (a day at 2 s by default).
    pub gateway_buffer: usize,
    /// Broker the MQTT gateways publish to; `None` publishes nothing over MQTT.
    pub mqtt: Option<SocketAddr>,
    /// MQTT connections the gateways share.
    pub publishers: usize,
    /// Gateways publish one message per device and reading (the per-device form of the
    /// telemetry convention) instead of one room message per reading.
    pub per_device: bool,
    /// MQTT over TLS to the broker, with a client certificate (`cistern bench --tls`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for FieldConfig {
    fn default() -> Self {
        Self {
            period: Duration::from_secs(2),
            speed: 1.0,
            gateway_buffer: 43_200,
            mqtt: None,
            publishers: 2,
            per_device: false,
            tls: None,
        }
    }
}

/// Something that takes every reading of the rooms it serves (the simulator's Modbus
/// servers implement it).
pub trait ReadingOutlet: Send + Sync + 'static {
    fn update(&self, reading: &RoomReading, link_up: bool);

    /// What the platform wrote to the room's controller, handed to the simulated room before
    /// each step (`None`: this outlet takes no writes).
    fn writes(&self) -> Option<crate::lab::sim::ControllerWrites> {
        None
    }
}

/// A handle on the running field: fault injection and inspection.
#[derive(Clone, Debug)]
pub struct FieldHandle {
    sim: Arc<Mutex<Simulator>>,
}

impl FieldHandle {
    /// A simulator for `inventory`, not yet running (see [`run`]).
    pub fn new(inventory: &Inventory, seed: u64, start: Timestamp) -> Self {
        Self {
            sim: Arc::new(Mutex::new(Simulator::new(inventory, seed, start))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Simulator> {
        // A panic while holding the lock leaves the physics as it was at that step: keep going.
        self.sim.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Injects a fault into a room for `duration` of simulated time.
    pub fn inject(
        &self,
        room: &RoomId,
        fault: FaultKind,
        duration: Duration,
    ) -> Result<(), SimError> {
        self.lock().inject(room, fault, duration)
    }

    pub fn active_faults(&self) -> Vec<ActiveFault> {
        self.lock().active_faults()
    }

    /// Simulated time now.
    pub fn now(&self) -> Timestamp {
        self.lock().now()
    }

    pub fn reading(&self, room: &RoomId) -> Option<RoomReading> {
        self.lock().reading(room)
    }
}

/// The product's port on the simulated field (`/api/v1/sim/faults` in the demo).
impl crate::node::FieldSim for FieldHandle {
    fn fault_kinds(&self) -> Vec<crate::node::FaultKindInfo> {
        (FaultKind::ALL.iter())
            .map(|k| crate::node::FaultKindInfo {
                fault: k.to_string(),
                description: k.description().to_owned(),
            })
            .collect()
    }

    fn active_faults(&self) -> Vec<crate::node::ActiveFaultInfo> {
        (FieldHandle::active_faults(self).into_iter())
            .map(|f| crate::node::ActiveFaultInfo {
                room: f.room,
                fault: f.fault.to_string(),
                started: f.started,
                ends: f.ends,
                target: f.target,
            })
            .collect()
    }

    fn inject(
        &self,
        room: &RoomId,
        fault: &str,
        duration: Duration,
    ) -> Result<(), crate::node::FieldSimError> {
        let kind: FaultKind =
            fault
                .parse()
                .map_err(|_| crate::node::FieldSimError::UnknownFault {
                    fault: fault.to_owned(),
                    known: FaultKind::ALL.iter().map(ToString::to_string).collect(),
                })?;
        FieldHandle::inject(self, room, kind, duration)
            .map_err(|e| crate::node::FieldSimError::Rejected(e.to_string()))
    }

    fn now(&self) -> Timestamp {
        FieldHandle::now(self)
    }
}

/// What the simulated gateways have published so far (the fleet benchmark's "offered").
#[derive(Debug, Default)]
pub struct PublishStats {
    /// MQTT messages handed to the client (QoS 1: the client retries them until acknowledged).
    pub messages: AtomicU64,
    /// Point values in them, live and replayed.
    pub points: AtomicU64,
    /// Of which replayed after a comms loss (store-and-forward).
    pub replayed_points: AtomicU64,
    /// Messages the client refused (its request queue closed).
    pub failed: AtomicU64,
    /// Readings lost because a gateway's buffer overflowed during a long comms loss.
    pub gateway_dropped: AtomicU64,
    /// Readings held in the gateways (comms down), not yet published.
    pub gateway_buffered: AtomicU64,
}

/// Runs the field: the simulator steps every `period / speed` of wall time and its readings go
/// to MQTT gateways (rooms whose source is MQTT) and to `outlets` (by room), until `shutdown`.
pub fn run(
    field: &FieldHandle,
    inventory: &Inventory,
    config: FieldConfig,
    outlets: HashMap<RoomId, Arc<dyn ReadingOutlet>>,
    shutdown: watch::Receiver<bool>,
) -> FieldRun {
    let stats = Arc::new(PublishStats::default());
    let counters = stats.clone();
    let sim = field.sim.clone();
    let mqtt_rooms: Vec<RoomId> = inventory
        .rooms
        .iter()
        .filter(|r| matches!(r.source, SourceSpec::Mqtt))
        .map(|r| r.id.clone())
        .collect();
    let publishers = match config.mqtt {
        Some(addr) => (0..config.publishers.max(1))
            .map(|i| publisher(addr, config.tls.clone(), i, shutdown.clone()))
            .collect(),
        None => Vec::new(),
    };
    let mut gateways: HashMap<RoomId, RoomGateway> = mqtt_rooms
        .into_iter()
        .map(|id| {
            let gateway =
                RoomGateway::new(id.clone(), config.gateway_buffer).per_device(config.per_device);
            (id, gateway)
        })
        .collect();
    let task = tokio::spawn(async move {
        let mut shutdown = shutdown;
        let wall = config.period.div_f64(config.speed.max(1e-3));
        // A tick's readings are computed just ahead of it, so that at the tick they go out at
        // once: a gateway reads its instruments and publishes, and the time the simulator takes
        // over 2,100 rooms' physics must not count as a fleet-wide publish delay (it would, if
        // the step ran at the tick). The step starts a margin ahead of the tick (twice the last
        // step's cost, at most half a period), so a fault injected up to then shows at this tick.
        let mut next = tokio::time::Instant::now();
        let mut step_cost = Duration::ZERO;
        let mut first = true;
        // In real time, a sample goes out when the wall clock reaches its time stamp. Building
        // a large fleet's simulator takes a while after its start instant was taken: the first
        // readings go out at once (that late), and the second tick comes early by as much, so
        // that every later tick is on time rather than every tick that late.
        let sim_start = sim
            .lock()
            .map(|s| s.now())
            .unwrap_or_else(|p| p.into_inner().now());
        // On a loaded machine start-up can take longer than a period: then the first ticks
        // come back to back until the field has caught up (a lag of a minute or more is not
        // start-up but a deliberate start in the past, and is left alone).
        let behind = Timestamp::now().as_millis() - sim_start.as_millis();
        let mut catch_up = if (config.speed - 1.0).abs() < 1e-9
            && behind > 0
            && (behind as u128) < 30 * config.period.as_millis()
        {
            Duration::from_millis(behind as u64)
        } else {
            Duration::ZERO
        };
        loop {
            let margin = (step_cost * 2 + Duration::from_millis(20)).min(wall / 2);
            let start_at = next.checked_sub(margin).unwrap_or(next);
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep_until(start_at) => {}
            }
            // What operators and planners wrote to the controllers since the last step.
            let writes: Vec<(RoomId, crate::lab::sim::ControllerWrites)> = outlets
                .iter()
                .filter_map(|(room, o)| o.writes().map(|w| (room.clone(), w)))
                .collect();
            let began = tokio::time::Instant::now();
            let step = (!first).then_some(config.period);
            first = false;
            let Ok((readings, links)) = take_readings(sim.clone(), step, writes).await else {
                tracing::error!("simulator step failed; the field stops");
                break;
            };
            step_cost = began.elapsed();
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep_until(next) => {}
            }
            // The next tick, one period on; a late tick (a loaded machine) delays the schedule
            // rather than bunching ticks up.
            let pay = catch_up.min(wall);
            catch_up -= pay;
            next = (next + wall - pay).max(tokio::time::Instant::now());
            let mut out: Vec<Outgoing> = Vec::new();
            let (mut dropped, mut buffered) = (0, 0);
            for (reading, link_up) in readings.into_iter().zip(links) {
                if let Some(outlet) = outlets.get(&reading.room) {
                    outlet.update(&reading, link_up);
                }
                if let Some(gw) = gateways.get_mut(&reading.room) {
                    gw.offer(reading, link_up, &mut out);
                    dropped += gw.dropped();
                    buffered += gw.buffered() as u64;
                }
                // Each room's gateway publishes as soon as it has its readings, as real ones
                // do, not after the whole fleet's messages are encoded.
                for o in out.drain(..) {
                    publish(&publishers, &counters, o).await;
                }
            }
            counters.gateway_dropped.store(dropped, Ordering::Relaxed);
            counters.gateway_buffered.store(buffered, Ordering::Relaxed);
        }
        // Queued behind the last publishes: see `publisher`.
        for (client, _) in &publishers {
            let _ = client.disconnect().await;
        }
        for (_, task) in publishers {
            let _ = task.await;
        }
    });
    FieldRun { stats, task }
}

/// Hands one gateway message to its connection (none: the field publishes nowhere, as in a
/// Modbus-only demo) and counts it.
async fn publish(
    publishers: &[(AsyncClient, tokio::task::JoinHandle<()>)],
    counters: &PublishStats,
    o: Outgoing,
) {
    if publishers.is_empty() {
        return;
    }
    // A room keeps to one connection, so its messages reach the broker in order.
    let (client, _) = &publishers[o.connection % publishers.len()];
    match client
        .publish(o.topic, QoS::AtLeastOnce, false, o.payload)
        .await
    {
        Ok(()) => {
            counters.messages.fetch_add(1, Ordering::Relaxed);
            counters
                .points
                .fetch_add(o.points as u64, Ordering::Relaxed);
            if o.replay {
                counters
                    .replayed_points
                    .fetch_add(o.points as u64, Ordering::Relaxed);
            }
        }
        Err(error) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, "simulated gateway could not publish");
        }
    }
}

/// Applies the controllers' remote-parameter `writes`, advances the simulator by `step` (none:
/// the first readings) and takes every room's reading and comms state, off the runtime's
/// threads.
fn take_readings(
    sim: Arc<Mutex<Simulator>>,
    step: Option<Duration>,
    writes: Vec<(RoomId, crate::lab::sim::ControllerWrites)>,
) -> tokio::task::JoinHandle<(Vec<RoomReading>, Vec<bool>)> {
    tokio::task::spawn_blocking(move || {
        let mut s = sim.lock().unwrap_or_else(|p| p.into_inner());
        for (room, w) in &writes {
            s.apply_writes(room, w);
        }
        if let Some(dt) = step {
            s.step(dt);
        }
        let readings = s.readings();
        let links: Vec<bool> = readings.iter().map(|r| s.comms_up(&r.room)).collect();
        (readings, links)
    })
}

/// A running field.
#[derive(Debug)]
pub struct FieldRun {
    pub stats: Arc<PublishStats>,
    /// Ends after shutdown, once every published message has gone to the broker.
    pub task: tokio::task::JoinHandle<()>,
}

/// One MQTT connection of the simulated gateways, with its event loop on a task of its own.
///
/// At shutdown the field loop stops publishing and asks each client to disconnect; the request
/// queues behind the last publishes, so the event loop keeps running until everything handed
/// to the client has gone to the broker (or a grace period ends), and nothing counted as
/// published is left in the client's queue.
fn publisher(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    index: usize,
    mut shutdown: watch::Receiver<bool>,
) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let mut opts = MqttOptions::new(
        format!("cistern-sim-gateways-{index}"),
        addr.ip().to_string(),
        addr.port(),
    );
    opts.set_keep_alive(Duration::from_secs(30))
        .set_inflight(1000)
        .set_max_packet_size(1 << 20, 1 << 20);
    if let Some(tls) = tls {
        opts.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let task = tokio::spawn(async move {
        let mut stopping: Option<tokio::time::Instant> = None;
        let mut disconnect_sent = false;
        loop {
            let grace = async {
                match stopping {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.changed(), if stopping.is_none() => {
                    stopping = Some(tokio::time::Instant::now() + PUBLISH_GRACE);
                }
                _ = grace => break,
                ev = eventloop.poll() => match ev {
                    // Keep reading until the broker closes: dropping the socket with its
                    // acknowledgements unread would reset the connection, and a reset makes
                    // the broker discard what it has received but not yet read.
                    Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                        disconnect_sent = true;
                    }
                    Ok(_) => {}
                    Err(_) if disconnect_sent => break,
                    Err(error) => {
                        tracing::warn!(%error, "simulated gateways lost the broker; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
            }
        }
    });
    (client, task)
}

/// How long a gateway connection may take, at shutdown, to hand its queued messages over.
const PUBLISH_GRACE: Duration = Duration::from_secs(10);

/// The simulator's Modbus controllers take readings too; a comms loss silences them.
impl ReadingOutlet for crate::lab::sim::modbus_server::ModbusFieldServer {
    fn update(&self, reading: &RoomReading, link_up: bool) {
        crate::lab::sim::modbus_server::ModbusFieldServer::update(self, reading);
        self.set_silent(!link_up);
    }

    fn writes(&self) -> Option<crate::lab::sim::ControllerWrites> {
        Some(self.controller_writes())
    }
}
