//! `cistern bench`: the fleet-scale benchmark. It drives the whole pipeline as in production
//! and prints one table.
//!
//! Three processes, so that each one's CPU and memory are its own and the load generator does
//! not share the platform's accounting:
//! - the broker: Debian's mosquitto, with queues deep enough never to drop for a slow
//!   subscriber;
//! - the platform: `cistern run` on a generated config — MQTT ingest, the actor tree, the full
//!   default rule library, the historian on the embedded store in a fresh data directory;
//! - the load generator: `cistern simulate`, the rooms' gateways publishing every 2 s, with
//!   faults injected at a realistic rate (comms losses among them, so store-and-forward replays
//!   are part of the load), printing its counters every second.
//!
//! The benchmark waits for a warm-up, measures a window (node CPU, points offered and ingested,
//! rule evaluations, alarms, publish-to-durable latency from the historian's
//! `cistern_store_durable_lag_seconds`), then stops the generator, lets the node drain, and
//! compares every point the gateways published with what the historian made durable: the
//! difference is the samples lost, which must be 0.
//!
//! Latency is the sample's age when it became durable: the simulated gateways stamp a reading
//! when they publish it, so for live data that is publish-to-durable. Replayed readings (after
//! a comms loss) are minutes old by design; ages above two minutes are counted as backfill and
//! kept out of the percentiles.

pub mod procs;
pub mod scrape;
pub mod tls;
pub mod ws_clients;

use procs::{cpu_seconds, peak_rss_bytes, start_broker, BenchProc};
use scrape::{agent, scrape, Scrape, WindowHistogram};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `cistern bench`.
#[derive(Clone, Debug)]
pub struct FleetBenchOptions {
    pub rooms: usize,
    /// The measured window.
    pub seconds: u64,
    /// Before the window: start-up, first samples, rules warming up.
    pub warmup: u64,
    /// WebSocket clients (50 on the fleet summary and alarms, the rest on single rooms).
    pub clients: usize,
    pub seed: u64,
    pub faults_per_room_day: f64,
    /// Where the node keeps its data (a fresh temporary directory when absent).
    pub data: Option<PathBuf>,
    /// Keep the working directory (configs, logs, every child's stdout) and say where.
    pub keep: bool,
    /// The gateways publish per device instead of one room message per reading.
    pub per_device: bool,
    /// TLS everywhere: MQTT over mutual TLS for the gateways and the node, HTTPS for the
    /// dashboards and the scrapes.
    pub tls: bool,
}

impl Default for FleetBenchOptions {
    fn default() -> Self {
        Self {
            rooms: 2_100,
            seconds: 120,
            warmup: 30,
            clients: 60,
            seed: 1,
            faults_per_room_day: 4.0,
            data: None,
            keep: false,
            per_device: false,
            tls: false,
        }
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("mosquitto is not installed (Debian: apt-get install mosquitto; ops/test.sh does it)")]
    NoBroker,
    #[error("the {name} {why}; its log ends:\n{log}")]
    Child {
        name: &'static str,
        why: String,
        log: String,
    },
    #[error("cannot read the node's /metrics: {0}")]
    Scrape(String),
    #[error("cannot write the generated {what}: {message}")]
    Generate { what: &'static str, message: String },
    #[error("cannot log in to the node: {0}")]
    Login(String),
    #[error("WebSocket client: {0}")]
    WebSocket(String),
}

/// The benchmark's result: the table's figures.
#[derive(Clone, Debug, Serialize)]
pub struct FleetBenchReport {
    pub rooms: usize,
    /// Whether MQTT and HTTP ran over TLS (`--tls`).
    #[serde(default)]
    pub tls: bool,
    pub window_s: f64,
    /// Points the gateways published per second, over the window.
    pub offered_points_per_s: f64,
    /// Points the node ingested per second, over the window.
    pub ingested_points_per_s: f64,
    /// Over the whole run, after draining: published points the historian did not make
    /// durable (must be 0; negative would mean duplicates were stored).
    pub samples_lost: i64,
    pub published_points: u64,
    /// Points the node's ingest counted over the whole run (between published and durable).
    pub ingested_points: u64,
    pub durable_points: u64,
    /// Seconds from the generator's end to the end of the drain (everything durable, or given
    /// up).
    pub drain_s: f64,
    /// The drain hit its time limit while the node was still ingesting or making samples
    /// durable: `samples_lost` is then what was still behind, not lost.
    pub still_catching_up: bool,
    /// Samples the historian held not yet sealed into the store at the end (durable in its
    /// write-ahead; `cistern_store_queue_depth_samples`).
    pub historian_queue_at_end: u64,
    /// Of the published points, how many were replayed after a comms loss.
    pub replayed_points: u64,
    /// Readings the gateways still held at the end (their link was down), not published yet.
    pub gateway_buffered: u64,
    /// Readings a gateway's buffer dropped (none unless a comms loss outlasts its buffer).
    pub gateway_dropped: u64,
    /// Where points went that did not become durable: values the node rejected (by reason:
    /// see `cistern_ingest_rejected_total`), samples it already had (QoS 1 re-deliveries), and
    /// messages acknowledged without their samples reaching the historian.
    pub rejected_values: u64,
    pub duplicate_samples: u64,
    pub unstored_messages: u64,
    /// Node CPU over the window, as a share of the machine (all cores).
    pub node_cpu_share: f64,
    pub cores: usize,
    /// Node CPU seconds per million points ingested, over the window.
    pub cpu_s_per_million_points: f64,
    pub generator_cpu_share: f64,
    pub broker_cpu_share: f64,
    /// Node peak resident memory.
    pub node_peak_rss_bytes: u64,
    /// Publish-to-durable latency of live samples over the window, seconds.
    pub durable_p50_s: f64,
    pub durable_p99_s: f64,
    /// Upper bound of the slowest live sample's latency bucket, seconds.
    pub durable_max_bound_s: f64,
    /// Samples observed more than two minutes old when durable (backfill), over the window.
    pub durable_backfill_observed: u64,
    pub rule_evaluations_per_s: f64,
    /// Alarm activations over the whole run.
    pub alarms_raised: u64,
    pub faults_injected: u64,
    /// Sealed chunk bytes per sealed point (0 when nothing was sealed yet).
    pub store_bytes_per_point: f64,
    /// The node's data directory on disk per durable point (write-ahead log included).
    pub disk_bytes_per_point: f64,
    /// WebSocket publish-to-socket latency: not measured until the WebSocket API exists.
    pub websocket: Option<WebSocketFigures>,
}

/// The WebSocket clients' figures, over the window.
#[derive(Clone, Debug, Serialize)]
pub struct WebSocketFigures {
    pub clients: usize,
    /// Publish-to-socket latency of the room clients' deltas.
    pub p50_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
    pub deltas_measured: usize,
    /// Messages received by all clients per second.
    pub messages_per_s: f64,
    /// Deltas whose sequence number did not follow their subscription's previous one (must
    /// be 0: a gap is announced by a fresh snapshot, never silent).
    pub sequence_gaps: u64,
    /// Clients that ended with an error (a dropped connection).
    pub failed_clients: usize,
}

impl WebSocketFigures {
    fn of(tallies: &[ws_clients::ClientTally], window: f64) -> Self {
        let mut lat: Vec<u32> = tallies
            .iter()
            .flat_map(|t| t.latencies_ms.iter().copied())
            .collect();
        lat.sort_unstable();
        let pct = |q: f64| {
            if lat.is_empty() {
                f64::NAN
            } else {
                let i = ((lat.len() - 1) as f64 * q).round() as usize;
                f64::from(lat[i]) / 1e3
            }
        };
        for t in tallies {
            if let Some(e) = &t.error {
                tracing::warn!(error = %e, "a benchmark WebSocket client failed");
            }
        }
        Self {
            clients: tallies.len(),
            p50_s: pct(0.5),
            p99_s: pct(0.99),
            max_s: pct(1.0),
            deltas_measured: lat.len(),
            messages_per_s: tallies.iter().map(|t| t.messages).sum::<u64>() as f64 / window,
            sequence_gaps: tallies.iter().map(|t| t.gaps).sum(),
            failed_clients: tallies.iter().filter(|t| t.error.is_some()).count(),
        }
    }
}

/// Logs in as the node's bootstrap admin; returns the session token.
fn login(http: &ureq::Agent, base: &str, password: &str) -> Result<String, BenchError> {
    let body: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .send_json(serde_json::json!({"user": "admin", "password": password}))
        .and_then(|mut r| r.body_mut().read_json())
        .map_err(|e| BenchError::Login(e.to_string()))?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BenchError::Login(format!("no token in {body}")))
}

/// Runs the benchmark.
pub fn run(opts: &FleetBenchOptions) -> Result<FleetBenchReport, BenchError> {
    let exe = std::env::current_exe().map_err(|source| BenchError::Io {
        what: "find the cistern binary".into(),
        source,
    })?;
    let tmp = std::env::temp_dir().join(format!("cistern-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    mkdir(&tmp)?;
    let data = opts.data.clone().unwrap_or_else(|| tmp.join("data"));
    let result = run_in(opts, &exe, &tmp, &data);
    if opts.keep {
        eprintln!("bench: kept {}", tmp.display());
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn run_in(
    opts: &FleetBenchOptions,
    exe: &Path,
    tmp: &Path,
    data: &Path,
) -> Result<FleetBenchReport, BenchError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "bench: {} rooms, {} s warm-up, {} s window, {} faults/room/day, {} messages",
        opts.rooms,
        opts.warmup,
        opts.seconds,
        opts.faults_per_room_day,
        if opts.per_device {
            "per-device"
        } else {
            "room"
        }
    );
    let tls = if opts.tls {
        Some(tls::BenchTls::make(tmp)?)
    } else {
        None
    };
    let (mut broker, mqtt) = match &tls {
        Some(t) => procs::start_broker_with(tmp, &t.broker_conf())?,
        None => start_broker(tmp)?,
    };
    let (config, first_rooms) = write_node_config(opts, tmp, data, mqtt, tls.as_ref())?;
    let password = format!("bench-{}-{}", std::process::id(), opts.seed);
    let mut node_cmd = Command::new(exe);
    node_cmd
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("CISTERN_ADMIN_PASSWORD", &password)
        .env("RUST_LOG", "warn");
    let mut node = BenchProc::spawn("node", node_cmd, tmp.join("node.log"))?;
    let ready = node.wait_line("ready", Duration::from_secs(120))?;
    let base = ready
        .get("http")
        .cloned()
        .ok_or_else(|| node.failed("printed a ready line without http=".into()))?;
    let http = match &tls {
        Some(t) => t.agent()?,
        None => agent(),
    };
    let ws = if opts.clients > 0 {
        let token = login(&http, &base, &password)?;
        let addr: std::net::SocketAddr = base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .parse()
            .map_err(|_| node.failed(format!("printed an unusable address {base}")))?;
        let ws_tls = tls.as_ref().map(tls::BenchTls::client_config).transpose()?;
        Some(ws_clients::WsClients::start(
            addr,
            ws_tls,
            &token,
            opts.clients,
            &first_rooms,
        )?)
    } else {
        None
    };

    let mut gen_cmd = Command::new(exe);
    gen_cmd
        .arg("simulate")
        .args(["--rooms", &opts.rooms.to_string()])
        .args(["--seed", &opts.seed.to_string()])
        .args(["--mqtt", &mqtt.to_string()])
        .args(["--seconds", &(opts.warmup + opts.seconds).to_string()])
        .args([
            "--faults-per-room-day",
            &opts.faults_per_room_day.to_string(),
        ])
        .args(["--stats-every", "1s"])
        .env("RUST_LOG", "warn");
    if opts.per_device {
        gen_cmd.arg("--per-device");
    }
    if let Some(t) = &tls {
        gen_cmd.args(t.generator_args());
    }
    let mut generator = BenchProc::spawn("load generator", gen_cmd, tmp.join("generator.log"))?;
    generator.wait_line("ready", Duration::from_secs(120))?;

    wait_or_fail(
        Duration::from_secs(opts.warmup),
        &mut [&mut node, &mut broker],
    )?;
    let a = Snapshot::take(&http, &base, &node, &generator, &broker)?;
    if let Some(ws) = &ws {
        ws.measure();
    }
    wait_or_fail(
        Duration::from_secs(opts.seconds),
        &mut [&mut node, &mut broker],
    )?;
    let b = Snapshot::take(&http, &base, &node, &generator, &broker)?;
    let tallies = ws.map(ws_clients::WsClients::stop);
    let peak_rss = peak_rss_bytes(node.pid()).unwrap_or(0);

    // The generator stops by itself at the end of its run and prints its final counters once
    // everything it published has gone to the broker.
    let published = generator.wait_line("published", Duration::from_secs(60))?;
    let num = |k: &str| {
        published
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let published_points = num("points");
    // Drain: the node has everything once its durable count stops short of nothing, or stops
    // moving.
    let Drained {
        scrape: drained,
        seconds: drain_s,
        still_moving,
    } = drain(&http, &base, published_points, &mut node)?;
    let durable_points = drained.get("cistern_store_durable_samples_total") as u64;

    let window = (b.at - a.at).as_secs_f64().max(1e-9);
    let ingested =
        b.scrape.get("cistern_ingest_points_total") - a.scrape.get("cistern_ingest_points_total");
    let node_cpu = b.node_cpu - a.node_cpu;
    let lag = WindowHistogram::between(
        &a.scrape,
        &b.scrape,
        "cistern_store_durable_lag_seconds",
        120.0,
    );
    let sealed = drained.get("cistern_store_sealed_samples_total");
    let report = FleetBenchReport {
        rooms: opts.rooms,
        tls: opts.tls,
        window_s: window,
        offered_points_per_s: (b.offered - a.offered) / window,
        ingested_points_per_s: ingested / window,
        samples_lost: published_points as i64 - durable_points as i64,
        published_points,
        ingested_points: drained.get("cistern_ingest_points_total") as u64,
        durable_points,
        drain_s,
        still_catching_up: still_moving,
        historian_queue_at_end: drained.get("cistern_store_queue_depth_samples") as u64,
        replayed_points: num("replayed_points"),
        gateway_buffered: num("gateway_buffered"),
        gateway_dropped: num("gateway_dropped"),
        rejected_values: drained.get("cistern_ingest_rejected_total") as u64,
        duplicate_samples: drained.get("cistern_ingest_samples_duplicate_total") as u64,
        unstored_messages: drained.get("cistern_ingest_unstored_total") as u64,
        node_cpu_share: node_cpu / window / cores as f64,
        cores,
        cpu_s_per_million_points: if ingested > 0.0 {
            node_cpu / ingested * 1e6
        } else {
            f64::NAN
        },
        generator_cpu_share: (b.generator_cpu - a.generator_cpu) / window / cores as f64,
        broker_cpu_share: (b.broker_cpu - a.broker_cpu) / window / cores as f64,
        node_peak_rss_bytes: peak_rss,
        durable_p50_s: lag.as_ref().map_or(f64::NAN, |l| l.p50),
        durable_p99_s: lag.as_ref().map_or(f64::NAN, |l| l.p99),
        durable_max_bound_s: lag.as_ref().map_or(f64::NAN, |l| l.max_bound),
        durable_backfill_observed: lag.as_ref().map_or(0, |l| l.beyond as u64),
        rule_evaluations_per_s: (b.scrape.get("cistern_rules_evaluations_total")
            - a.scrape.get("cistern_rules_evaluations_total"))
            / window,
        alarms_raised: drained.get("cistern_rules_activations_total") as u64,
        faults_injected: num("faults"),
        store_bytes_per_point: if sealed > 0.0 {
            drained.get("cistern_store_chunk_bytes_total") / sealed
        } else {
            0.0
        },
        disk_bytes_per_point: if durable_points > 0 {
            dir_bytes(data) as f64 / durable_points as f64
        } else {
            0.0
        },
        websocket: tallies.map(|t| WebSocketFigures::of(&t, window)),
    };
    drop(generator);
    drop(node);
    drop(broker);
    Ok(report)
}

/// What one moment of the run looked like.
struct Snapshot {
    at: Instant,
    scrape: Scrape,
    node_cpu: f64,
    generator_cpu: f64,
    broker_cpu: f64,
    offered: f64,
}

impl Snapshot {
    fn take(
        http: &ureq::Agent,
        base: &str,
        node: &BenchProc,
        generator: &BenchProc,
        broker: &BenchProc,
    ) -> Result<Self, BenchError> {
        let at = Instant::now();
        let node_cpu = cpu_seconds(node.pid()).unwrap_or(0.0);
        let generator_cpu = cpu_seconds(generator.pid()).unwrap_or(0.0);
        let broker_cpu = cpu_seconds(broker.pid()).unwrap_or(0.0);
        let offered = generator
            .line("stats")
            .and_then(|l| l.get("points").and_then(|v| v.parse().ok()))
            .unwrap_or(0.0);
        let scrape = scrape(http, base)?;
        Ok(Self {
            at,
            scrape,
            node_cpu,
            generator_cpu,
            broker_cpu,
            offered,
        })
    }
}

/// Waits `span`, failing early when one of `procs` dies.
fn wait_or_fail(span: Duration, procs: &mut [&mut BenchProc]) -> Result<(), BenchError> {
    let end = Instant::now() + span;
    while Instant::now() < end {
        for p in procs.iter_mut() {
            if !p.running() {
                return Err(p.failed("exited during the run".into()));
            }
        }
        std::thread::park_timeout(
            end.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(500)),
        );
    }
    Ok(())
}

/// What the drain saw at its end.
struct Drained {
    scrape: Scrape,
    /// From the generator's last acknowledged publish to the end of the drain.
    seconds: f64,
    /// Whether the node's counts were still moving when the drain gave up (the difference
    /// is then in flight — behind in the node — rather than lost).
    still_moving: bool,
}

/// How long the node may go without ingesting or making anything durable before the
/// difference is called lost.
const DRAIN_STALL: Duration = Duration::from_secs(20);
/// The longest drain.
const DRAIN_MAX: Duration = Duration::from_secs(600);

/// Polls the node until it has made `expected` points durable, or neither its ingest nor its
/// durable count has moved for [`DRAIN_STALL`] (then the difference is lost), or
/// [`DRAIN_MAX`] passes (then the report says the node was still catching up).
fn drain(
    http: &ureq::Agent,
    base: &str,
    expected: u64,
    node: &mut BenchProc,
) -> Result<Drained, BenchError> {
    let start = Instant::now();
    let mut last = (-1.0, -1.0);
    let mut moved = Instant::now();
    loop {
        if !node.running() {
            return Err(node.failed("exited while draining".into()));
        }
        let scrape = scrape(http, base)?;
        let durable = scrape.get("cistern_store_durable_samples_total");
        let now = (durable, scrape.get("cistern_ingest_points_total"));
        if now != last {
            last = now;
            moved = Instant::now();
        }
        let done = durable >= expected as f64;
        let stalled = moved.elapsed() > DRAIN_STALL;
        if done || stalled || start.elapsed() > DRAIN_MAX {
            return Ok(Drained {
                scrape,
                seconds: start.elapsed().as_secs_f64(),
                still_moving: !done && !stalled,
            });
        }
        std::thread::park_timeout(Duration::from_millis(250));
    }
}

fn write_node_config(
    opts: &FleetBenchOptions,
    tmp: &Path,
    data: &Path,
    mqtt: std::net::SocketAddr,
    tls: Option<&tls::BenchTls>,
) -> Result<(PathBuf, Vec<String>), BenchError> {
    let inventory = crate::lab::sim::generate_fleet(opts.rooms, opts.seed);
    // The room clients watch the first rooms.
    let first_rooms = inventory
        .rooms
        .iter()
        .take(10)
        .map(|r| r.id.to_string())
        .collect();
    let inventory_file = tmp.join("inventory.toml");
    let text = toml::to_string(&inventory).map_err(|e| BenchError::Generate {
        what: "inventory",
        message: e.to_string(),
    })?;
    write(&inventory_file, &text)?;
    let config = tmp.join("cistern.toml");
    let text = format!(
        "# Generated by `cistern bench`.\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [inventory]\nfile = {inv:?}\n\
         [mqtt]\nhost = \"{host}\"\nport = {port}\nclient_id = \"cistern-bench-node\"\n\
         [store]\nbackend = \"embedded\"\ndata_dir = {data:?}\n\
         [rules]\nenabled = true\nhot_reload = false\n\
         [log]\nfilter = \"warn\"\n{tls}",
        tls = tls.map(tls::BenchTls::node_conf).unwrap_or_default(),
        inv = inventory_file.display().to_string(),
        host = mqtt.ip(),
        port = mqtt.port(),
        data = data.display().to_string(),
    );
    write(&config, &text)?;
    Ok((config, first_rooms))
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|source| BenchError::Io {
        what: format!("write {}", path.display()),
        source,
    })
}

fn mkdir(path: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(path).map_err(|source| BenchError::Io {
        what: format!("create {}", path.display()),
        source,
    })
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// ThingsBoard's published figure on a 2-vCPU machine (DOMAIN.md §6), points per second.
pub const THINGSBOARD_POINTS_PER_S: f64 = 15_000.0;

impl fmt::Display for FleetBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "| {k} | {v} |");
        writeln!(
            f,
            "Fleet benchmark: {} rooms, {:.0} s window, {} cores{}",
            self.rooms,
            self.window_s,
            self.cores,
            if self.tls {
                ", TLS (MQTT mTLS, HTTPS)"
            } else {
                ""
            }
        )?;
        writeln!(f)?;
        writeln!(f, "| figure | value |")?;
        writeln!(f, "|---|---|")?;
        row(
            f,
            "points/s offered",
            format!("{:.0}", self.offered_points_per_s),
        )?;
        row(
            f,
            "points/s ingested",
            format!("{:.0}", self.ingested_points_per_s),
        )?;
        row(
            f,
            "ratio to ThingsBoard's 15,000 points/s on 2 vCPU",
            format!(
                "{:.1}×",
                self.ingested_points_per_s / THINGSBOARD_POINTS_PER_S
            ),
        )?;
        row(
            f,
            "samples lost (published − durable, whole run)",
            format!(
                "{} ({} published, {} ingested, {} durable; {} replayed after comms losses)",
                self.samples_lost,
                self.published_points,
                self.ingested_points,
                self.durable_points,
                self.replayed_points
            ),
        )?;
        row(
            f,
            "drain after the generator stopped",
            format!(
                "{:.1} s{}",
                self.drain_s,
                if self.still_catching_up {
                    " (gave up while the node was still catching up: the difference is behind, not lost)"
                } else {
                    ""
                }
            ),
        )?;
        row(
            f,
            "values rejected / duplicate samples / messages acknowledged unstored",
            format!(
                "{} / {} / {}",
                self.rejected_values, self.duplicate_samples, self.unstored_messages
            ),
        )?;
        row(
            f,
            "readings still buffered in gateways at the end / dropped by a gateway",
            format!("{} / {}", self.gateway_buffered, self.gateway_dropped),
        )?;
        row(
            f,
            "node CPU (share of the machine)",
            format!("{:.1} %", self.node_cpu_share * 100.0),
        )?;
        row(
            f,
            "node CPU seconds per million points",
            format!("{:.2}", self.cpu_s_per_million_points),
        )?;
        row(
            f,
            "load generator / broker CPU (share of the machine)",
            format!(
                "{:.1} % / {:.1} %",
                self.generator_cpu_share * 100.0,
                self.broker_cpu_share * 100.0
            ),
        )?;
        row(
            f,
            "node peak RSS",
            format!("{:.0} MiB", self.node_peak_rss_bytes as f64 / 1048576.0),
        )?;
        row(
            f,
            "publish → store-durable p50 / p99 / max",
            format!(
                "{:.0} ms / {:.0} ms / ≤ {:.0} ms ({} backfilled samples kept apart)",
                self.durable_p50_s * 1e3,
                self.durable_p99_s * 1e3,
                self.durable_max_bound_s * 1e3,
                self.durable_backfill_observed
            ),
        )?;
        match &self.websocket {
            Some(ws) => {
                row(
                    f,
                    "publish → WebSocket p50 / p99 / max",
                    format!(
                        "{:.0} ms / {:.0} ms / {:.0} ms ({} room deltas)",
                        ws.p50_s * 1e3,
                        ws.p99_s * 1e3,
                        ws.max_s * 1e3,
                        ws.deltas_measured
                    ),
                )?;
                row(
                    f,
                    "WebSocket clients / messages/s / sequence gaps / failed clients",
                    format!(
                        "{} / {:.0} / {} / {}",
                        ws.clients, ws.messages_per_s, ws.sequence_gaps, ws.failed_clients
                    ),
                )?;
            }
            None => row(
                f,
                "publish → WebSocket",
                "not measured (--clients 0)".into(),
            )?,
        }
        row(
            f,
            "rule evaluations/s",
            format!("{:.0}", self.rule_evaluations_per_s),
        )?;
        row(
            f,
            "alarms raised / faults injected",
            format!("{} / {}", self.alarms_raised, self.faults_injected),
        )?;
        row(
            f,
            "store bytes per point (sealed chunks / data directory)",
            format!(
                "{:.2} / {:.2} ({} samples durable in the write-ahead, not sealed yet)",
                self.store_bytes_per_point, self.disk_bytes_per_point, self.historian_queue_at_end
            ),
        )
    }
}
