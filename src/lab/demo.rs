//! `cistern demo`: everything in one process with no external service — the embedded MQTT
//! broker, a simulated fleet (most rooms on MQTT gateways, a few on Modbus TCP controllers that
//! the platform polls), and the platform itself with its HTTP API.

use crate::config::builtin_profiles;
use crate::ingest::mqtt::MqttConfig;
use crate::lab::field::{self, FieldConfig, FieldHandle, ReadingOutlet};
use crate::lab::sim::modbus_server::{ModbusFieldServer, ModbusServerError};
use crate::lab::{broker, sim};
use crate::node::{Node, NodeError, NodeSpec};
use cistern_actors::SystemClock;
use cistern_schemas::inventory::{Inventory, SourceSpec};
use cistern_schemas::modbus::{ProfileError, ProfileSet, RoomShape};
use cistern_schemas::{RoomId, Timestamp};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `cistern demo`.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub rooms: usize,
    pub seed: u64,
    pub http: SocketAddr,
    pub mqtt: SocketAddr,
    /// How many rooms are polled over Modbus TCP instead of publishing over MQTT.
    pub modbus_rooms: usize,
    pub speed: f64,
    pub actor_threads: usize,
    /// Where the embedded store keeps history.
    pub data: std::path::PathBuf,
    /// The rule directory (none: `rules/library` when it exists here, else the built-in
    /// library).
    pub rules: Option<std::path::PathBuf>,
    /// Shortens the default escalation ladders: first step after this, second after 3×.
    pub escalate_after: Option<Duration>,
    /// A room silent this long is offline (default: the actors' 60 s).
    pub offline_after: Option<Duration>,
    /// The WebSocket API's limits.
    pub ws: crate::api::ws::WsConfig,
    /// The first admin's password when the data directory has no users yet (none: generated
    /// and printed once).
    pub admin_password: Option<String>,
    /// How often the tank planners sample the planned rooms (default 30 s).
    pub plan_sample_every: Duration,
    /// Simulated crews work the demo's orders ([`super::crews::work`]).
    pub simulated_crews: bool,
    /// Days of simulated past the analysis starts with (0: none).
    pub history_days: usize,
    /// Notifications (`[notify]` of `--notify FILE`; default: none configured, so only logged).
    pub notify: crate::notify::NotifyConfig,
}

impl DemoOptions {
    /// `[rules]` of the demo.
    fn rules_config(&self) -> crate::alarms::RulesConfig {
        let mut config = crate::alarms::RulesConfig::default();
        let repo = std::path::Path::new("rules/library");
        config.dir = self
            .rules
            .clone()
            .or_else(|| repo.is_dir().then(|| repo.to_path_buf()));
        // The rule editor's golden cases beside the library: `rules/cases` of the checkout the
        // demo runs in (edited with the rules), else the copy built into the binary.
        let cases = std::path::Path::new("rules/cases");
        config.cases = cases.is_dir().then(|| cases.to_path_buf());
        if let Some(first) = self.escalate_after {
            for ladder in config.engine.escalation.values_mut() {
                for (i, step) in ladder.iter_mut().enumerate() {
                    step.after = first * (1 + 2 * i as u32);
                }
            }
        }
        config
    }

    /// `[workorders]` of the demo: its teams; with `--escalate-after D`, every priority's
    /// response target is D and its resolution target 3 D (the escalation check runs often
    /// enough to see them pass).
    fn workorders_config(
        &self,
        teams: Vec<crate::business::workorders::teams::Team>,
    ) -> crate::business::workorders::WorkOrdersConfig {
        let mut config = crate::business::workorders::WorkOrdersConfig {
            teams,
            ..Default::default()
        };
        if let Some(d) = self.escalate_after {
            let targets = crate::business::workorders::Targets {
                response: d,
                resolution: d * 3,
            };
            config.sla = crate::business::workorders::Sla {
                p1: targets,
                p2: targets,
                p3: targets,
                p4: targets,
            };
            config.check_every = config
                .check_every
                .min(d / 4)
                .max(Duration::from_millis(250));
        }
        config
    }
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    ModbusServer(#[from] ModbusServerError),
    #[error("cannot bind a simulated Modbus controller: {0}")]
    Bind(std::io::Error),
    #[error("the demo needs at least one room")]
    NoRooms,
    #[error("the broker thread failed to start")]
    Join,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Identity(#[from] crate::auth::IdentityError),
    #[error("the shipped base map of Xiamen: {0}")]
    Basemap(#[from] crate::api::basemap::BasemapError),
}

/// A running demo.
#[derive(Debug)]
pub struct Demo {
    pub node: Node,
    pub field: FieldHandle,
    pub mqtt: SocketAddr,
    pub inventory: Inventory,
    pub started_in: Duration,
    pub online_at_start: usize,
    _modbus: Vec<Arc<ModbusFieldServer>>,
    /// The store and historian (kept until the node has stopped).
    pub storage: crate::node::Storage,
    /// Identity and audit (closed after the node has stopped, before the storage).
    pub security: crate::auth::Security,
    /// The crew members' logins (password [`super::crews::CREW_PASSWORD`]).
    pub crews: Vec<String>,
}

/// How often the demo's historian makes samples durable, and so how often the node
/// acknowledges the embedded broker's messages. rumqttd sends the node at most
/// [`broker::SUBSCRIBER_WINDOW`] (100) messages it has not acknowledged, so the node takes at
/// most 100 messages per flush: at the historian's default 250 ms that was 400 a second, and the
/// 2,100-room demo (1,050 room messages a second) fell further behind every second until
/// rumqttd dropped what it could no longer hold. 20 ms makes room for 2,500 a second with a
/// flush's worth of work between two (a flush is one write-ahead commit, ~50 a second).
const DEMO_FLUSH_EVERY: Duration = Duration::from_millis(20);

/// How far ahead of the node's clock a sped-up demo's samples may be stamped (see `start`).
const SPED_UP_FIELD_LEAD: Duration = Duration::from_secs(30 * 86_400);

/// Profiles the demo's Modbus rooms alternate between.
const DEMO_PROFILES: [&str; 2] = ["hydrotek-hc300", "aquaflow-ps2"];

/// The demo's Modbus rooms (indices into `inventory.rooms`) and the profile of each: `n` rooms
/// spread evenly over the fleet, the demo's profiles taking turns. A room the profile whose
/// turn it is cannot map (a fourth pump on a three-pump controller) takes the next demo profile
/// that maps it, and a room that none maps is passed over for the next room along, so that the
/// demo never builds a controller for a room its register map cannot hold.
fn modbus_rooms(
    inventory: &Inventory,
    n: usize,
    profiles: &ProfileSet,
) -> Result<Vec<(usize, &'static str)>, ProfileError> {
    let rooms = inventory.rooms.len();
    let n = n.min(rooms);
    let Some(stride) = rooms.checked_div(n) else {
        return Ok(Vec::new());
    };
    let mut chosen: Vec<(usize, &'static str)> = Vec::with_capacity(n);
    // The evenly spread rooms first, then every room in order for any passed over.
    for i in (0..rooms).step_by(stride).take(n).chain(0..rooms) {
        if chosen.len() == n {
            break;
        }
        if chosen.iter().any(|(c, _)| *c == i) {
            continue;
        }
        let shape = RoomShape::of(&inventory.rooms[i]);
        let k = chosen.len();
        for j in 0..DEMO_PROFILES.len() {
            let name = DEMO_PROFILES[(k + j) % DEMO_PROFILES.len()];
            let profile = profiles.get(name)?;
            if profile.mappings(shape).is_ok() && profile.plan(shape).is_ok() {
                chosen.push((i, name));
                break;
            }
        }
    }
    Ok(chosen)
}

/// Full days of logged readings the demo's planners learn from before their first round,
/// counted back from `today` (plan-clock day number, day 0 a Monday): as few as give two whole
/// weekdays, since a planner is cold until it has two samples of every slot of a weekday
/// (2 days back from a Wednesday to a Saturday, 4 from a Monday). The simulator steps in 1-s
/// sub-steps, so every day imported costs start-up time.
fn plan_history_days(today: u32) -> u32 {
    let mut weekdays = 0;
    let mut days = 0;
    while weekdays < 2 && days < today {
        days += 1;
        if (today - days) % 7 < 5 {
            weekdays += 1;
        }
    }
    days
}

/// The rooms the platform polls over Modbus (the ones whose controllers can take plans).
fn modbus_inventory(inventory: &Inventory) -> Inventory {
    Inventory {
        zones: inventory.zones.clone(),
        rooms: inventory
            .rooms
            .iter()
            .filter(|r| matches!(r.source, SourceSpec::Modbus { .. }) && !r.tanks.is_empty())
            .cloned()
            .collect(),
    }
}

/// What the rooms' data loggers hold of the days before `now` ([`plan_history_days`]): their
/// readings once a minute (a simulation of the past, with its own random stream), as per-slot
/// samples for [`crate::control::plans::PlanService::import`]. The planners learn from these readings
/// exactly as from live ones; nothing of the simulator's internals is handed over.
fn plan_history(
    inventory: &Inventory,
    seed: u64,
    now: Timestamp,
) -> Vec<(u32, Vec<crate::control::plans::RoomSample>)> {
    use cistern_schemas::fill_plan::{slot_at, slot_start_unix_s};
    use cistern_schemas::DeviceKind;
    if inventory.rooms.is_empty() {
        return Vec::new();
    }
    let now_slot = slot_at(now.as_millis() / 1000);
    let today = now_slot / 96;
    let first = (today - plan_history_days(today)) * 96;
    let start = Timestamp::from_millis(slot_start_unix_s(first) * 1000);
    let mut past = sim::Simulator::new(inventory, seed ^ 0x6869_7374_6f72_7931, start);
    let index = |kind: DeviceKind, name: &str| kind.point_index(name).unwrap_or(usize::MAX);
    let (outlet, inlet, level) = (
        index(DeviceKind::Room, "outlet_flow"),
        index(DeviceKind::Room, "inlet_flow"),
        index(DeviceKind::Tank, "level"),
    );
    let mut out = Vec::with_capacity((now_slot - first) as usize);
    for slot in first..now_slot {
        let mut samples = Vec::new();
        for _ in 0..15 {
            past.step(Duration::from_secs(60));
            for r in past.readings() {
                let value = |unit: cistern_schemas::DeviceUnit, i: usize| {
                    r.devices
                        .iter()
                        .find(|(u, _)| *u == unit)
                        .and_then(|(_, v)| v.get(i).copied())
                        .filter(|v| v.is_finite())
                };
                let tanks = r
                    .devices
                    .iter()
                    .filter(|(u, _)| matches!(u, cistern_schemas::DeviceUnit::Tank(_)))
                    .map(|(u, _)| value(*u, level))
                    .collect();
                samples.push(crate::control::plans::RoomSample {
                    room: r.room.clone(),
                    outlet_flow_m3h: value(cistern_schemas::DeviceUnit::Room, outlet),
                    inlet_flow_m3h: value(cistern_schemas::DeviceUnit::Room, inlet),
                    levels: tanks,
                    online: true,
                });
            }
        }
        out.push((slot, samples));
    }
    out
}

/// Starts the demo and waits (up to 30 s) until every room is online.
pub async fn start(opts: &DemoOptions) -> Result<Demo, DemoError> {
    let t0 = Instant::now();
    if opts.rooms == 0 {
        return Err(DemoError::NoRooms);
    }
    let mut inventory = sim::generate_fleet(opts.rooms, opts.seed);
    let profiles = builtin_profiles()?;

    // Rooms spread evenly over the fleet are Modbus controllers polled by the platform.
    let mut outlets: HashMap<RoomId, Arc<dyn ReadingOutlet>> = HashMap::new();
    let mut modbus = Vec::new();
    for (i, name) in modbus_rooms(&inventory, opts.modbus_rooms, &profiles)? {
        if let Some(room) = inventory.rooms.get_mut(i) {
            let profile = profiles.get(name)?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(DemoError::Bind)?;
            let server = Arc::new(ModbusFieldServer::start(
                listener,
                profile,
                RoomShape::of(room),
                1,
            )?);
            room.source = SourceSpec::Modbus {
                address: server.local_addr().to_string(),
                unit_id: 1,
                profile: name.to_owned(),
            };
            outlets.insert(room.id.clone(), server.clone());
            modbus.push(server);
        }
    }

    let mqtt_max = MqttConfig::default().max_payload_bytes;
    let addr = opts.mqtt;
    let broker = tokio::task::spawn_blocking(move || broker::start(addr, mqtt_max * 4))
        .await
        .map_err(|_| DemoError::Join)??;

    let field = FieldHandle::new(&inventory, opts.seed, Timestamp::now());
    let storage = crate::node::Storage::open(
        &crate::store::StoreConfig {
            data_dir: opts.data.clone(),
            ..Default::default()
        },
        &crate::historian::HistorianSection {
            flush_every: DEMO_FLUSH_EVERY,
            ..Default::default()
        },
    )
    .await?;
    let security =
        crate::auth::Security::open(&crate::auth::AuthConfig::default(), Some(&storage)).await?;
    security.bootstrap(opts.admin_password.as_deref()).await?;
    let teams = super::crews::teams(&inventory);
    let crews = super::crews::create_logins(&security, &teams).await?;
    // The planners learn from the Modbus rooms' logged readings of the last days before the
    // first round, so plans reach the controllers at once instead of after two days.
    let planned = modbus_inventory(&inventory);
    let seed = opts.seed;
    let now = Timestamp::now();
    let history = tokio::task::spawn_blocking(move || plan_history(&planned, seed, now))
        .await
        .map_err(|_| DemoError::Join)?;
    let mut spec =
        NodeSpec::new(inventory.clone(), profiles, Arc::new(SystemClock)).with_storage(&storage);
    spec.security = security.clone();
    // `POST /api/v1/admin/backup` works on the demo too (no schedule).
    spec.backups = Some(
        crate::backup::Backups::new(
            storage.backup.clone(),
            crate::backup::BackupConfig::default(),
            "demo",
            security.audit.clone(),
        )
        .map_err(NodeError::from)?,
    );
    spec.plans = Some(crate::node::PlansSpec {
        config: crate::control::plans::PlansConfig {
            sample_every: opts.plan_sample_every,
            ..Default::default()
        },
        history,
    });
    spec.http = opts.http;
    spec.actor_threads = opts.actor_threads;
    spec.rules = opts.rules_config();
    spec.ws = opts.ws.clone();
    spec.workorders = opts.workorders_config(teams);
    spec.notify = opts.notify.clone();
    // An archive for the whole fleet: projects, pump sets, meters, cameras, dates, suppliers.
    spec.archive_seed = Some(crate::business::assets::archive::demo_archive(&inventory));
    spec.inventory_sources = true;
    spec.simulated_parts_history = true;
    // Today's figures follow the live fleet closely (the pages are watched as it runs).
    spec.analysis.live_every = Duration::from_secs(60);
    // The simulated history leaves many parts past their replacement age at start: their
    // preventive orders would bury the alarms' orders the demo is about. The plan still shows.
    spec.lifecycle.preventive_orders = false;
    // The simulated fleet is Xiamen's: its districts' real boundaries and coastline.
    spec.basemap = Some(crate::api::basemap::Basemap::parse(include_str!(
        "../../ops/maps/xiamen-districts.geojson"
    ))?);
    if let Some(d) = opts.offline_after {
        spec.actors.offline_after = d;
    }
    if opts.speed > 1.0 {
        // A sped-up field stamps its samples on the simulator's clock, which runs ahead of the
        // node's by (speed - 1) seconds every second: the node would refuse them as
        // future-stamped ([actors] max_future_skew). The demo's field is trusted by
        // construction, so it accepts a month of lead (a site's node never does).
        spec.actors.max_future_skew = SPED_UP_FIELD_LEAD;
        tracing::info!(
            speed = opts.speed,
            "the simulated field runs faster than real time: samples stamped up to 30 days ahead are accepted"
        );
    }
    spec.field = Some(Arc::new(field.clone()));
    spec.mqtt = Some(MqttConfig {
        host: broker.addr.ip().to_string(),
        port: broker.addr.port(),
        client_id: "cistern-demo-node".into(),
        ..MqttConfig::default()
    });
    let node = Node::start(spec).await?;
    if !node.mqtt_subscribed(Duration::from_secs(10)).await {
        tracing::warn!(
            "the platform is not subscribed to the embedded broker yet; starting the field anyway"
        );
    }

    // Done before the demo says it is ready (below), so that what a client sees of the
    // cleaning schedule no longer changes under it.
    let seeding = node
        .cleaning
        .clone()
        .map(|c| tokio::spawn(seed_cleanings(c, opts.seed)));
    if let (Some(analysis), true) = (&node.analysis, opts.history_days > 0) {
        tokio::spawn(simulated_past(
            analysis.clone(),
            inventory.clone(),
            opts.seed,
            opts.history_days,
        ));
    }
    if let (true, Some(service)) = (opts.simulated_crews, &node.workorders) {
        tokio::spawn({
            let (service, inventory, crews) = (service.clone(), inventory.clone(), crews.clone());
            let stop = node.shutdown_signal();
            async move { super::crews::work(service, &inventory, crews, stop).await }
        });
    }
    let config = FieldConfig {
        mqtt: Some(broker.addr),
        speed: opts.speed,
        ..FieldConfig::default()
    };
    field::run(&field, &inventory, config, outlets, node.shutdown_signal());

    // Ready when every room has been heard from (or after 30 s, with what we have).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut online = 0;
    while Instant::now() < deadline {
        online = node.registry.online_count().0;
        if online == opts.rooms {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(seeding) = seeding {
        let _ = seeding.await;
    }
    Ok(Demo {
        node,
        field,
        mqtt: broker.addr,
        inventory,
        started_in: t0.elapsed(),
        online_at_start: online,
        _modbus: modbus,
        storage,
        security,
        crews,
    })
}

/// The analysis' past: the demo's fleet simulated in simulated time over the `days` before
/// today, through the code the platform runs on its historian
/// ([`super::analysis_bench::DaySim`]), each day stored as closed. Two rooms leak (8 % of their
/// daily flow) from six days ago, so the leakage page has a finding. Once: a ledger that holds
/// any day already (a demo restarted on its data directory) is left as it is.
async fn simulated_past(
    analysis: Arc<crate::business::analysis::Analysis>,
    inventory: Inventory,
    seed: u64,
    days: usize,
) {
    use super::analysis_bench::{inject_leak, DaySim};
    let today = analysis.today();
    let mut any = false;
    // Closed days only: today's live figures may be there already.
    analysis.each_figures(
        today.plus_days(-(days as i32)),
        today.plus_days(-1),
        |_, _, _| any = true,
    );
    if any {
        return;
    }
    let first = today.plus_days(-(days as i32));
    let (archives, config) = {
        let (_, rooms) = crate::business::assets::archive::demo_archive(&inventory);
        let archives = rooms.into_iter().map(|a| (a.site.id.clone(), a)).collect();
        (archives, analysis.config().clone())
    };
    let leaking: Vec<_> = [0, inventory.rooms.len() / 2]
        .iter()
        .filter_map(|&i| inventory.rooms.get(i).map(|r| r.id.clone()))
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let worker = tokio::task::spawn_blocking(move || {
        // A seed of its own: the past is not the live fleet's trajectory replayed.
        let mut run = DaySim::new(
            inventory,
            archives,
            seed ^ 0x9e37_79b9,
            first,
            config,
            Duration::from_secs(10),
        );
        run.with_truth = false;
        for d in 0..days {
            if d + 6 == days {
                for room in &leaking {
                    if let Err(e) = inject_leak(run.simulator(), room, 0.08) {
                        tracing::warn!(%room, error = %e, "the simulated past has no leak");
                    }
                }
            }
            let (date, out, ..) = run.next_day();
            if tx.blocking_send((date, out)).is_err() {
                return;
            }
        }
    });
    tracing::info!(days, %first, "analysis: simulating the past days");
    while let Some((date, out)) = rx.recv().await {
        for (day, _) in out {
            if let Err(e) = analysis.store(&day).await {
                tracing::warn!(room = %day.room, %date, error = %e, "analysis: a simulated day was not stored");
            }
        }
        tracing::info!(%date, "analysis: simulated day stored");
    }
    let _ = worker.await;
}

/// The demo's tanks cleaned, with good water, on a day of the last 150 (spread by `seed`), so
/// that the cleaning schedule has dates to show and none falls due within the order window at
/// start (no cleaning orders, no overdue alarms in a fresh demo). Once: a tank with a record
/// keeps it (a demo restarted on its data directory).
async fn seed_cleanings(svc: Arc<crate::business::assets::cleaning::TankCleaning>, seed: u64) {
    use crate::business::assets::cleaning::water::WaterTest;
    use crate::business::assets::cleaning::NewCleaning;
    let today = svc.today();
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut seeded = 0;
    for line in svc.schedule(None, None, false) {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if line.last_cleaning.is_some() {
            continue;
        }
        let back = i32::try_from((x >> 33) % 150).unwrap_or(0);
        let new = NewCleaning {
            date: today.plus_days(-back),
            crew: "演示班组".into(),
            order: None,
            test: WaterTest {
                colour: 5.0,
                turbidity_ntu: 0.2 + f64::from(back % 5) / 10.0,
                odour: false,
                ph: 7.2,
                free_chlorine_mg_l: 0.3 + f64::from(back % 7) / 20.0,
                coliforms_per_100ml: 0.0,
                bacteria_cfu_ml: f64::from(back % 40),
            },
            note: None,
        };
        match svc.record(&line.tank, new, "demo").await {
            Ok(_) => seeded += 1,
            Err(error) => tracing::warn!(tank = %line.tank, %error, "demo cleaning not seeded"),
        }
    }
    if seeded > 0 {
        tracing::info!(tanks = seeded, "demo tank cleanings seeded");
    }
}

#[cfg(test)]
mod tests {
    use super::{modbus_rooms, plan_history_days};
    use crate::config::builtin_profiles;
    use crate::lab::sim::generate_fleet;
    use cistern_schemas::modbus::RoomShape;

    /// Issue 18: `cistern demo --rooms 20 --seed 2` died at start ("Modbus profile aquaflow-ps2
    /// maps at most 3 pump(s), the room has 4"). Every Modbus room of every seed and size is one
    /// its profile maps, and the demo gets the Modbus rooms it asked for.
    #[test]
    fn every_modbus_room_is_one_its_profile_maps() {
        let profiles = builtin_profiles().unwrap();
        for size in [4, 20, 100, 2100] {
            for seed in 0..200 {
                let inventory = generate_fleet(size, seed);
                for wanted in [4, size.min(25)] {
                    let chosen = modbus_rooms(&inventory, wanted, &profiles).unwrap();
                    assert_eq!(chosen.len(), wanted, "--rooms {size} --seed {seed}");
                    for (i, name) in chosen {
                        let room = &inventory.rooms[i];
                        let profile = profiles.get(name).unwrap();
                        let shape = RoomShape::of(room);
                        let mapped = profile.mappings(shape).and_then(|_| profile.plan(shape));
                        assert!(
                            mapped.is_ok(),
                            "--rooms {size} --seed {seed}, room {}: {}",
                            room.id,
                            mapped.err().map(|e| e.to_string()).unwrap_or_default()
                        );
                    }
                }
            }
        }
    }

    /// The embedded broker's window, taken once per flush, carries the largest demo's room
    /// messages twice over (a flush round is the wait for the flush and the work before it:
    /// counted here as two flush intervals).
    #[test]
    fn the_demo_flushes_often_enough_for_the_embedded_brokers_window() {
        let period = crate::lab::field::FieldConfig::default().period;
        let offered = 2_100.0 / period.as_secs_f64();
        let taken = crate::lab::broker::SUBSCRIBER_WINDOW as f64
            / (2.0 * super::DEMO_FLUSH_EVERY.as_secs_f64());
        assert!(
            taken >= 2.0 * offered,
            "{taken:.0} messages/s taken, {offered:.0} offered"
        );
    }

    #[test]
    fn history_covers_two_whole_weekdays() {
        // Day 7 is a Monday: Sunday, Saturday, Friday, Thursday.
        assert_eq!(plan_history_days(7), 4);
        // Day 9 is a Wednesday: Tuesday, Monday.
        assert_eq!(plan_history_days(9), 2);
        // Day 12 is a Saturday: Friday, Thursday.
        assert_eq!(plan_history_days(12), 2);
        // Near the clock's epoch there is only what there is.
        assert_eq!(plan_history_days(1), 1);
    }
}
