//! The `cistern` binary: `run --config FILE` and the rule tools; with the cargo feature `lab`
//! (on by default) also the lab's commands — `demo`, `simulate`, `bench`, `bench-store`,
//! `inventory` and the simulated fleet of `rules backtest`.

use anyhow::Context as _;
use cistern::config::{Config, LogConfig, LogFormat};
#[cfg(feature = "lab")]
use cistern::lab::demo::{self, DemoOptions};
#[cfg(feature = "lab")]
use cistern::lab::simulate::{self, SimulateOptions};
use cistern::node::{Node, NodeSpec};
use cistern_actors::SystemClock;
use clap::{Parser, Subcommand};
#[cfg(feature = "lab")]
use std::net::SocketAddr;
use std::path::PathBuf;

/// mimalloc rather than glibc's malloc: at fleet scale the node allocates per message and per
/// batch on many threads, and glibc's allocator (arena locks, consolidation) cost about a
/// quarter of its CPU in the profile (ARCHITECTURE.md, "The fleet benchmark").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Cistern: real-time supervision of a city's secondary water supply pump rooms.
#[derive(Debug, Parser)]
#[command(name = "cistern", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[cfg(feature = "lab")]
    /// Everything in one process: embedded broker, simulated fleet, platform, HTTP.
    Demo {
        /// Simulated pump rooms.
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// HTTP address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Seed of the simulated fleet.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Address of the embedded MQTT broker (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        mqtt: SocketAddr,
        /// Rooms polled over Modbus TCP instead of publishing over MQTT.
        #[arg(long, default_value_t = 4)]
        modbus_rooms: usize,
        /// Simulated seconds per second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Threads for the actors.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Log as JSON lines.
        #[arg(long)]
        json_logs: bool,
        /// Data directory of the embedded store (history survives a restart).
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Rule directory, hot-reloaded (default: rules/library when run from the repository,
        /// else the library built into the binary).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Unacknowledged alarms escalate after this long, and again after three times it
        /// (default 10 min and 30 min; shorten it to watch escalation happen); work orders
        /// not accepted within it go to the team lead, then the manager (default: the
        /// priority's targets, P1 30 min … P4 24 h).
        #[arg(long, value_parser = humantime::parse_duration)]
        escalate_after: Option<Duration>,
        /// A room whose gateway is silent this long is offline (default 60 s).
        #[arg(long, value_parser = humantime::parse_duration)]
        offline_after: Option<Duration>,
        /// WebSocket API: sent deltas kept per subscription for a resume (default 512).
        #[arg(long)]
        ws_replay: Option<usize>,
        /// WebSocket API: pending updates per client before a re-snapshot (default 4096).
        #[arg(long)]
        ws_queue_keys: Option<usize>,
        /// WebSocket API: a socket that accepts nothing this long is closed (default 30 s).
        #[arg(long, value_parser = humantime::parse_duration)]
        ws_stall_timeout: Option<Duration>,
        /// The first admin's password (user `admin`), when the data directory has no users
        /// yet; else CISTERN_ADMIN_PASSWORD, else a generated one printed once.
        #[arg(long)]
        admin_password: Option<String>,
        /// Leave the demo's work orders to people: no simulated crew accepts, travels and
        /// closes them (crew logins work them from the orders page).
        #[arg(long)]
        manual_crews: bool,
        /// Days of simulated past the analysis starts with (energy, efficiency, night flow,
        /// scores): the fleet simulated in simulated time before today, two rooms leaking
        /// from six days ago. 0: the analysis starts from today.
        #[arg(long, default_value_t = 21)]
        history_days: usize,
        /// A TOML file whose `[notify]` section configures the demo's notifications
        /// (channels, users' addresses and preferences; see ops/cistern.example.toml).
        #[arg(long)]
        notify: Option<PathBuf>,
    },
    /// Run against an external broker and field devices.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Log line format, overriding `[log] format`: human or json.
        #[arg(long, value_parser = parse_log_format)]
        log_format: Option<LogFormat>,
    },
    #[cfg(feature = "lab")]
    /// Run the field simulator alone: publish to a broker, or write a CSV trace.
    Simulate {
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Broker to publish to, as the rooms' gateways.
        #[arg(long)]
        mqtt: Option<SocketAddr>,
        /// Write every reading to this CSV file instead (needs --seconds).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Simulated seconds to run.
        #[arg(long)]
        seconds: Option<u64>,
        /// Simulated seconds per second (MQTT mode).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Faults injected per room per simulated day (MQTT mode; kinds, starts and lengths
        /// drawn from the seed).
        #[arg(long, default_value_t = 0.0)]
        faults_per_room_day: f64,
        /// Print the gateways' counters as a `stats ...` line on stdout this often (MQTT mode).
        #[arg(long, value_parser = humantime::parse_duration)]
        stats_every: Option<Duration>,
        /// Publish one message per device and reading (topic cistern/v1/telemetry/ROOM/DEVICE)
        /// instead of one room message per reading (MQTT mode).
        #[arg(long)]
        per_device: bool,
        /// Also inject the faults asked for on stdin, one a line:
        /// `fault ROOM KIND SECONDS [IN_SECONDS]` (MQTT mode).
        #[arg(long)]
        faults_stdin: bool,
        /// MQTT over TLS: the broker's CA (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_ca: Option<PathBuf>,
        /// The gateways' client certificate (PEM).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        #[arg(long, requires = "tls_ca")]
        tls_key: Option<PathBuf>,
    },
    #[cfg(feature = "lab")]
    /// The historian's figures on a simulated fleet (throughput, bytes per point, query
    /// latency), into a fresh data directory.
    #[command(hide = true)]
    BenchStore {
        #[arg(long, default_value_t = 210)]
        rooms: usize,
        #[arg(long, default_value_t = 24)]
        hours: u64,
        /// A data directory that does not exist yet.
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Points per compaction write (1: a commit per point-hour).
        #[arg(long, default_value_t = 2000)]
        compaction_batch: usize,
    },
    #[cfg(feature = "lab")]
    /// The fleet-scale benchmark (broker, platform and load generator as separate processes;
    /// one table); `cistern bench tanks`: the SWS peak-shaving district benchmark.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        what: Option<BenchCommand>,
        #[command(flatten)]
        fleet: FleetBenchArgs,
    },
    /// Failover clustering: the cluster as etcd holds it.
    Cluster {
        #[command(subcommand)]
        action: ClusterCommand,
    },
    /// Tools for rule authors.
    Rules {
        #[command(subcommand)]
        action: RulesCommand,
    },
    /// A certificate authority and certificates for a TLS pilot (ops/deploy.md).
    Pki {
        #[command(subcommand)]
        action: PkiCommand,
    },
    /// The rooms' archive as a spreadsheet, through a running node's API.
    Assets {
        #[command(subcommand)]
        action: AssetsCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// A consistent backup of a running node's data, made by the node in DEST (a new directory
    /// on the node's machine; ingest goes on); `cistern backup verify SRC` checks one.
    #[command(args_conflicts_with_subcommands = true)]
    Backup {
        #[command(subcommand)]
        action: Option<BackupCommand>,
        /// Where the node writes the backup (must not exist yet).
        dest: Option<PathBuf>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Restores a backup into an empty data directory (a non-empty one is refused, exit 2);
    /// the backup is verified first.
    Restore {
        /// The backup directory.
        src: PathBuf,
        /// The data directory to fill (`[store] data_dir` of the node to start on it).
        #[arg(long)]
        data: PathBuf,
    },
    /// The audit log: check its hash chain, export it.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Parts' failure curves (DOMAIN.md §8), the same code as the platform's.
    Reliability {
        #[command(subcommand)]
        action: ReliabilityCommand,
    },
    #[cfg(feature = "lab")]
    /// Print a generated inventory (TOML) to start a site file from.
    Inventory {
        #[arg(long, default_value_t = 20)]
        rooms: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[cfg(feature = "lab")]
#[derive(clap::Args, Debug)]
struct FleetBenchArgs {
    /// Simulated sites (DOMAIN.md §6: 2,100 is the Xiamen fleet, 21,000 ten times it).
    #[arg(long, default_value_t = 2_100)]
    rooms: usize,
    /// The measured window, seconds.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Seconds before the window (start-up, first samples, rules warming up).
    #[arg(long, default_value_t = 30)]
    warmup: u64,
    /// WebSocket clients (50 on the fleet summary and alarms, the rest on single rooms).
    #[arg(long, default_value_t = 60)]
    clients: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Faults injected per room per day.
    #[arg(long, default_value_t = 4.0)]
    faults_per_room_day: f64,
    /// The node's data directory (default: a fresh temporary one, removed afterwards).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print the report as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Keep the working directory (generated configs, logs, the children's output).
    #[arg(long)]
    keep: bool,
    /// The simulated gateways publish one message per device and reading instead of one room
    /// message per reading.
    #[arg(long)]
    per_device: bool,
    /// TLS everywhere (MQTT over mutual TLS for the gateways and the node, HTTPS for the
    /// dashboards): run with and without it for the cost of TLS.
    #[arg(long)]
    tls: bool,
}

#[cfg(feature = "lab")]
#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Peak-shaving tank filling on the SWS district benchmark (DOMAIN.md §5): B0, B1, the
    /// platform's protocol and the LP oracle, one table per scale.
    Tanks {
        /// S = 1 district × 40 rooms, M = 10 × 40, L = 50 × 40.
        #[arg(long, default_value = "S")]
        scale: cistern::lab::peak::Scale,
        #[arg(long, default_value_t = 28)]
        days: usize,
        #[arg(long, default_value_t = 7)]
        warmup: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the report as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// The analysis against the simulator's physics (issue 22): energy intensity and pump
    /// efficiency errors, leaks found by the night-flow rule and false alarms.
    Analysis {
        #[arg(long, default_value_t = 30)]
        rooms: usize,
        #[arg(long, default_value_t = 21)]
        days: usize,
        /// Rooms given a compound leak from --leak-day on.
        #[arg(long, default_value_t = 10)]
        leaks: usize,
        /// The leak, as a fraction of the room's mean daily flow.
        #[arg(long, default_value_t = 0.02)]
        leak_fraction: f64,
        /// The first day (1-based) with the leaks.
        #[arg(long, default_value_t = 16)]
        leak_day: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A configuration file whose [analysis] section is used (night window, baseline,
        /// margins): tune them against the simulator before a site uses them.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A rule directory whose night_flow_leak is run instead of the library's.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Print the report as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// A backup of `--hours` of the fleet's history while ingest runs at the fleet's rate
    /// (issue 24): backup time and size, ingest latency before, during and after.
    Backup {
        #[arg(long, default_value_t = 2_100)]
        rooms: usize,
        #[arg(long, default_value_t = 24)]
        hours: u64,
        /// A working directory that does not exist yet (default: a fresh temporary one).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds of ingest measured before the backup, and again after it.
        #[arg(long, default_value_t = 10)]
        baseline: u64,
        /// Keep the working directory (the filled store and the backup).
        #[arg(long)]
        keep: bool,
        /// Print the report as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    #[cfg(feature = "cluster")]
    /// Failover (issue 23): etcd (3 members), mosquitto and --nodes cluster nodes as separate
    /// processes, the fleet publishing; one node killed (SIGKILL), cut off by a network
    /// partition (needs root) or leaving (SIGTERM); takeover times, samples lost and
    /// duplicated, double ownership.
    Failover {
        #[arg(long, default_value_t = 2_100)]
        rooms: usize,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// kill, partition, leave, both (kill and partition) or all (each on fresh processes).
        #[arg(long, default_value = "both")]
        scenario: cistern::lab::failover::Scenario,
        /// Seconds of publishing, every shard supervised, before the node is lost (at least the
        /// alarm burst's 24 s lead, when --alarm-burst is not 0).
        #[arg(long, default_value_t = 20)]
        warmup: u64,
        /// Seconds of publishing after the takeover (or the heal).
        #[arg(long, default_value_t = 20)]
        after: u64,
        /// Seconds a partition lasts at least.
        #[arg(long, default_value_t = 10)]
        partition_hold: u64,
        /// Faults injected per room per day (comms losses among them: replays).
        #[arg(long, default_value_t = 4.0)]
        faults_per_room_day: f64,
        /// Skew the nodes' wall clocks (libfaketime): node i by +N, -N, 0, +N, ... ms.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        skew_ms: i64,
        /// Rooms of the node to be lost, and as many others, given a fault of 20-40 s (pump
        /// trip, mains loss) over the 24 s before the loss, so that alarm transitions fall in
        /// the takeover (0: none).
        #[arg(long, default_value_t = 24)]
        alarm_burst: usize,
        /// Keep the working directory (configs, logs, data).
        #[arg(long)]
        keep: bool,
        /// Print the report as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

/// Which node, as whom, in which language.
#[derive(clap::Args, Debug)]
struct RemoteArgs {
    /// The node's HTTP address.
    #[arg(
        long,
        alias = "server",
        env = "CISTERN_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// An API token (else `--user` signs in with the password in CISTERN_PASSWORD).
    #[arg(long, env = "CISTERN_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// The user who signs in when no token is given.
    #[arg(long, default_value = "admin", global = true)]
    user: String,
    /// Language of headings and problems: zh-CN or en.
    #[arg(long, default_value = "zh-CN", global = true)]
    lang: String,
}

impl RemoteArgs {
    /// The client of a running node's API that `assets`, `audit` and `backup` share.
    fn into_remote(self) -> cistern::business::assets::archive::client::Remote {
        cistern::business::assets::archive::client::Remote {
            url: self.url,
            token: self.token,
            user: self.user,
            lang: self.lang,
        }
    }
}

#[derive(Subcommand, Debug)]
enum AssetsCommand {
    /// Import a filled-in template (.xlsx, or one sheet as CSV): all or nothing, rooms matched
    /// by id and equipment by tag; every problem is printed by sheet, row and column.
    Import {
        file: std::path::PathBuf,
        /// Check only: write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the archive in the template (.xlsx, or one sheet as CSV).
    Export {
        file: std::path::PathBuf,
        /// xlsx or csv.
        #[arg(long, default_value = "xlsx")]
        format: String,
        /// The sheet of a CSV export: projects, rooms or equipment.
        #[arg(long)]
        sheet: Option<String>,
    },
    /// Write the empty template (.xlsx).
    Template { file: std::path::PathBuf },
}

#[derive(Subcommand, Debug)]
enum BackupCommand {
    /// Checks a backup: its manifest, each file's size and SHA-256, the tables' entries.
    Verify { src: PathBuf },
}

#[derive(Subcommand, Debug)]
enum ReliabilityCommand {
    /// Fit a two-parameter Weibull by maximum likelihood to a CSV of `hours,failed` (header
    /// required; failed 1 for a failure, 0 for a unit still running) and print β and η with
    /// their 95 % confidence bounds.
    Fit { file: PathBuf },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Members with their leases' time to live, shards per node with their epochs, unowned
    /// shards — read from etcd, so it answers when no node does.
    Status {
        /// etcd client URLs, comma-separated (default: `[cluster] endpoints` of --config).
        #[arg(long, value_delimiter = ',')]
        endpoints: Vec<String>,
        /// The cluster's name (default: `[cluster] name` of --config, else "cistern").
        #[arg(long)]
        name: Option<String>,
        /// A node's configuration file to take the endpoints, the name and etcd's TLS
        /// (`[cluster.etcd_tls]`) from.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Walk the hash chain: of a stopped node's data directory (--data), of a JSON-lines
    /// export (--file), or else ask the running node at --url (admin). Exit code 0: intact;
    /// 1: broken (the first break is named); 2: could not check.
    Verify {
        /// The stopped node's [store] data_dir.
        #[arg(long, conflicts_with = "file")]
        data: Option<PathBuf>,
        /// A JSON-lines export (`cistern audit export --format jsonl`).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the audit log (or a time range of it) to FILE through the running node's API
    /// (admin; the export is itself audited).
    Export {
        file: PathBuf,
        /// csv (UTF-8 with a BOM, headers in --lang) or jsonl (entries as stored, hashes
        /// included: `cistern audit verify --file` checks such a copy).
        #[arg(long, default_value = "csv")]
        format: String,
        /// From (ms since the epoch or an RFC 3339 time).
        #[arg(long)]
        since: Option<String>,
        /// To (ms since the epoch or an RFC 3339 time).
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum PkiCommand {
    /// Makes a CA in DIR: ca.pem, and ca.key (owner-only). Nothing is overwritten.
    Ca {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "Cistern pilot CA")]
        name: String,
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issues a certificate signed by the CA in --ca: <out>/<name>.pem and .key; prints its
    /// SHA-256 fingerprint (what a gateway is enrolled with).
    Issue {
        /// The CA's directory (ca.pem, ca.key).
        #[arg(long)]
        ca: PathBuf,
        /// Where to write the certificate and key (default: the CA's directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Its name: a gateway's id, a node's name, a server's host name (CN and SAN).
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "client")]
        kind: cistern::tls::pki::Kind,
        /// More DNS names in the SAN (servers).
        #[arg(long)]
        dns: Vec<String>,
        /// IP addresses in the SAN (servers reached by address).
        #[arg(long)]
        ip: Vec<std::net::IpAddr>,
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// Expires on this day (YYYY-MM-DD) instead; a past day makes an expired certificate
        /// (to test that it is refused).
        #[arg(long)]
        until: Option<String>,
    },
    /// Prints the SHA-256 fingerprint of a PEM certificate.
    Fingerprint { file: PathBuf },
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Compile and lint every rule of a directory (metadata, unknown points, parent cycles).
    Check {
        #[arg(default_value = "rules/library")]
        dir: PathBuf,
    },
    /// Run the golden cases (input series → expected transitions) against a rule directory.
    Test {
        #[arg(default_value = "rules/library")]
        dir: PathBuf,
        #[arg(long, default_value = "rules/cases")]
        cases: PathBuf,
    },
    /// Replays a seeded simulator run with injected faults (or, with --config, the stored
    /// history of a site) through a rule set and prints ISA-18.2 alarm KPIs; --against
    /// replays the same through a second rule set to compare versions.
    Backtest {
        #[arg(default_value = "rules/library")]
        dir: PathBuf,
        /// A second rule directory, replayed on the same data.
        #[arg(long)]
        against: Option<PathBuf>,
        #[arg(long, default_value_t = 50)]
        rooms: usize,
        #[arg(long, default_value_t = 24.0)]
        hours: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Faults injected per room per simulated day.
        #[arg(long, default_value_t = 1.0)]
        faults_per_room_day: f64,
        /// Replay this site's stored history instead of a simulation.
        #[arg(long)]
        config: Option<PathBuf>,
        /// With --config: the period replayed, ending now.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        last: Duration,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Also write every alarm event as a JSON line to this file (of the first rule set).
        #[arg(long)]
        events: Option<PathBuf>,
    },
}

/// `cistern rules backtest` without `--config`: a seeded simulator run with injected faults.
#[cfg(feature = "lab")]
fn simulated_backtest(
    set: Arc<cistern_rules::RuleSet>,
    rooms: usize,
    hours: f64,
    seed: u64,
    faults_per_room_day: f64,
) -> anyhow::Result<cistern::alarms::backtest::Backtest> {
    Ok(cistern::lab::backtest::simulate(
        set,
        &cistern::lab::backtest::SimulatedRun {
            rooms,
            hours,
            seed,
            faults_per_room_day,
        },
    ))
}

/// Without the lab there is no simulator: a backtest replays a site's stored history.
#[cfg(not(feature = "lab"))]
fn simulated_backtest(
    _set: Arc<cistern_rules::RuleSet>,
    _rooms: usize,
    _hours: f64,
    _seed: u64,
    _faults_per_room_day: f64,
) -> anyhow::Result<cistern::alarms::backtest::Backtest> {
    anyhow::bail!(
        "this cistern is built without the lab (cargo feature `lab`), which simulates a fleet: \
         give --config to replay a site's stored history"
    )
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "human" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("unknown log format {other:?} (human or json)")),
    }
}

/// Set once the demo starts to stop. The embedded broker (rumqttd) logs every client's
/// disconnection as an ERROR; while the demo stops, those are the expected end of an orderly
/// stop, not faults, so its lines are dropped from then on (rumqttd cannot be stopped itself).
static EMBEDDED_BROKER_STOPPING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Logs to stderr in `log.format`; levels per module from `RUST_LOG` when it is set, else from
/// `[log] filter`. A filter that does not parse stops start-up (like any bad setting) rather
/// than silently logging something else. Human lines are coloured only on a terminal: a log
/// written to a file or a pipe carries no ANSI escape codes.
fn init_tracing(log: &LogConfig) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => tracing_subscriber::EnvFilter::try_new(&env)
            .with_context(|| format!("RUST_LOG={env:?} is not a valid log filter"))?,
        _ => tracing_subscriber::EnvFilter::try_new(&log.filter).with_context(|| {
            format!("[log] filter = {:?} is not a valid log filter", log.filter)
        })?,
    };
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = match log.format {
        // Spans as fields of every line: a sample's `ingest` span (source, device) shows on
        // what the room, the devices and the rules log about it.
        LogFormat::Json => layer
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
        LogFormat::Human => layer.with_ansi(std::io::stderr().is_terminal()).boxed(),
    };
    let broker_quiet = tracing_subscriber::filter::filter_fn(|meta| {
        !(meta.target().starts_with("rumqttd")
            && EMBEDDED_BROKER_STOPPING.load(std::sync::atomic::Ordering::Relaxed))
    });
    tracing_subscriber::registry()
        .with(layer.with_filter(filter).with_filter(broker_quiet))
        .try_init()
        .context("cannot install the log subscriber")?;
    Ok(())
}

/// Turns true on Ctrl-C or SIGTERM.
fn stop_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    actix_web::rt::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(true);
    });
    rx
}

/// The node's name in its backups' manifests: its cluster id, else the host's name.
fn backup_node_name(config: &Config) -> String {
    if !config.cluster.node_id.is_empty() {
        return config.cluster.node_id.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}

/// A refused backup or restore exits with status 2 (nothing was touched); another failure
/// with 1.
fn refused(e: cistern::backup::BackupError) -> anyhow::Result<()> {
    if e.is_refusal() {
        eprintln!("Error: {e}");
        std::process::exit(2);
    }
    Err(e.into())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One crypto provider (ring) for every TLS connection the process makes.
    cistern::tls::install_provider();
    match cli.command {
        #[cfg(feature = "lab")]
        Command::Demo {
            rooms,
            http,
            seed,
            mqtt,
            modbus_rooms,
            speed,
            threads,
            json_logs,
            data,
            rules,
            escalate_after,
            offline_after,
            ws_replay,
            ws_queue_keys,
            ws_stall_timeout,
            admin_password,
            manual_crews,
            history_days,
            notify,
        } => {
            let format = if json_logs {
                LogFormat::Json
            } else {
                LogFormat::Human
            };
            init_tracing(&LogConfig {
                format,
                ..LogConfig::default()
            })?;
            let opts = DemoOptions {
                rooms,
                seed,
                http,
                mqtt,
                modbus_rooms,
                speed,
                actor_threads: threads,
                data,
                rules,
                escalate_after,
                offline_after,
                ws: {
                    let mut ws = cistern::api::ws::WsConfig::default();
                    ws.replay = ws_replay.unwrap_or(ws.replay);
                    ws.queue_keys = ws_queue_keys.unwrap_or(ws.queue_keys);
                    ws.stall_timeout = ws_stall_timeout.unwrap_or(ws.stall_timeout);
                    ws
                },
                admin_password: admin_password
                    .or_else(|| cistern::auth::AuthConfig::default().admin_password_from_env()),
                plan_sample_every: std::time::Duration::from_secs(30),
                simulated_crews: !manual_crews,
                history_days,
                notify: match &notify {
                    Some(path) => cistern::notify::NotifyConfig::load_section(path)?,
                    None => Default::default(),
                },
            };
            actix_web::rt::System::new().block_on(async move {
                let mut stop = stop_signal();
                let demo = demo::start(&opts)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot start the demo: {e}"))?;
                tracing::info!(
                    rooms, online = demo.online_at_start, started_in = ?demo.started_in,
                    "Cistern demo ready: web UI and API at http://{}/", demo.node.http
                );
                println!(
                    "ready http=http://{} mqtt={} rooms={} online={} start_ms={}",
                    demo.node.http,
                    demo.mqtt,
                    rooms,
                    demo.online_at_start,
                    demo.started_in.as_millis()
                );
                println!(
                    "crew logins (password {}): {} — dispatch: lead-<district>, {}",
                    cistern::lab::crews::CREW_PASSWORD,
                    demo.crews.join(", "),
                    cistern::lab::crews::MANAGER
                );
                let _ = stop.changed().await;
                tracing::info!("stopping");
                EMBEDDED_BROKER_STOPPING.store(true, std::sync::atomic::Ordering::Relaxed);
                demo.node.stop().await;
                demo.security.close().await;
                demo.storage.close().await;
                Ok(())
            })
        }
        Command::Run { config, log_format } => {
            let mut config = Config::load(&config)?;
            if let Some(format) = log_format {
                config.log.format = format;
            }
            init_tracing(&config.log)?;
            let inventory = config.load_inventory()?;
            let profiles = config.load_profiles()?;
            let basemap = config.load_basemap()?;
            actix_web::rt::System::new().block_on(async move {
                let mut stop = stop_signal();
                let storage = cistern::node::Storage::open(&config.store, &config.historian).await?;
                #[cfg(feature = "cluster")]
                let security = if config.cluster.enabled {
                    config.cluster.validate()?;
                    config.cluster.check_etcd_tls()?;
                    if let Some(ca) = &config.cluster.peer_ca {
                        cistern::cluster::peer::trust_ca(ca)
                            .context("[cluster] peer_ca: the other nodes' CA")?;
                    }
                    // Users, tokens and sessions shared by every node of the cluster.
                    cistern::auth::Security::open_shared(&config.auth, &config.cluster, &storage)
                        .await
                        .context("cannot load the cluster's users and tokens from etcd")?
                } else {
                    cistern::auth::Security::open(&config.auth, Some(&storage))
                        .await
                        .context("cannot load users and tokens")?
                };
                #[cfg(not(feature = "cluster"))]
                let security = cistern::auth::Security::open(&config.auth, Some(&storage))
                    .await
                    .context("cannot load users and tokens")?;
                security
                    .audit
                    .forward_to(&config.audit.forward, &storage.io.handle())?;
                if let Some(keep) = config.audit.retention() {
                    security.audit.keep_for(keep, config.audit.prune_every);
                }
                security
                    .bootstrap(config.auth.admin_password_from_env().as_deref())
                    .await
                    .context("cannot create the first admin")?;
                let mut spec = NodeSpec::new(inventory, profiles, Arc::new(SystemClock))
                    .with_storage(&storage);
                spec.security = security.clone();
                spec.actors = config.actors.actor_config();
                spec.actor_threads = config.actors.thread_count();
                spec.mqtt = config.mqtt.clone();
                spec.modbus = config.modbus.clone();
                spec.http = config.http.listen;
                spec.http_workers = config.http.workers;
                spec.http_tls = config.http.tls.clone();
                warn_plain_listeners(&config);
                spec.rules = config.rules.clone();
                spec.ws = config.ws.clone();
                spec.workorders = config.workorders.clone();
                spec.cleaning = config.cleaning.clone();
                spec.notify = config.notify.clone();
                spec.lifecycle = config.lifecycle.clone();
                spec.analysis = config.analysis.clone();
                spec.basemap = basemap;
                spec.cluster = config.cluster.clone();
                spec.cluster_journal = Some(config.store.data_dir.join("cluster-journal.jsonl"));
                let backups = cistern::backup::Backups::new(
                    storage.backup.clone(),
                    config.backup.clone(),
                    backup_node_name(&config),
                    security.audit.clone(),
                )?;
                let (backups_stop, backups_stopped) = watch::channel(false);
                backups.spawn_schedule(&storage.io.handle(), backups_stopped);
                spec.backups = Some(backups);
                let node = Node::start(spec).await.context("cannot start the node")?;
                if !node.mqtt_subscribed(Duration::from_secs(10)).await {
                    tracing::warn!("not subscribed to the MQTT broker yet; ready anyway, ingest starts once it is");
                }
                let scheme = if config.http.tls.is_some() { "https" } else { "http" };
                println!("ready http={scheme}://{}", node.http);
                let _ = stop.changed().await;
                let _ = backups_stop.send(true);
                node.stop().await;
                security.close().await;
                storage.close().await;
                Ok(())
            })
        }
        #[cfg(feature = "lab")]
        Command::Simulate {
            rooms,
            seed,
            mqtt,
            csv,
            seconds,
            speed,
            faults_per_room_day,
            stats_every,
            per_device,
            faults_stdin,
            tls_ca,
            tls_cert,
            tls_key,
        } => {
            init_tracing(&LogConfig::default())?;
            let tls = tls_ca.map(|ca| cistern::tls::ClientTlsConfig {
                ca,
                cert: tls_cert,
                key: tls_key,
            });
            let opts = SimulateOptions {
                rooms,
                seed,
                mqtt,
                csv,
                seconds,
                speed,
                period: Duration::from_secs(2),
                faults_per_room_day,
                stats_every,
                per_device,
                faults_stdin,
                tls,
            };
            actix_web::rt::System::new().block_on(async move {
                let stop = stop_signal();
                simulate::run(opts, stop).await.context("simulation failed")
            })
        }
        #[cfg(feature = "lab")]
        Command::BenchStore {
            rooms,
            hours,
            data,
            seed,
            compaction_batch,
        } => {
            init_tracing(&LogConfig {
                filter: "warn".into(),
                ..LogConfig::default()
            })?;
            let opts = cistern::lab::store_bench::StoreBenchOptions {
                rooms,
                hours,
                data,
                seed,
                query_points: 5,
                compaction_batch,
            };
            let report = tokio::runtime::Runtime::new()?
                .block_on(cistern::lab::store_bench::run_store_bench(opts))?;
            print!("{report}");
            Ok(())
        }
        #[cfg(feature = "lab")]
        Command::Bench { what: None, fleet } => {
            init_tracing(&LogConfig {
                filter: "warn".into(),
                ..LogConfig::default()
            })?;
            let opts = cistern::lab::bench::FleetBenchOptions {
                rooms: fleet.rooms,
                seconds: fleet.seconds,
                warmup: fleet.warmup,
                clients: fleet.clients,
                seed: fleet.seed,
                faults_per_room_day: fleet.faults_per_room_day,
                data: fleet.data,
                keep: fleet.keep,
                per_device: fleet.per_device,
                tls: fleet.tls,
            };
            let report = cistern::lab::bench::run(&opts)?;
            if fleet.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(())
        }
        #[cfg(feature = "lab")]
        Command::Bench {
            what:
                Some(BenchCommand::Tanks {
                    scale,
                    days,
                    warmup,
                    seed,
                    json,
                }),
            ..
        } => {
            let opts = cistern::lab::peak::TankBenchOptions {
                scale,
                days,
                warmup,
                seed,
                ..Default::default()
            };
            let report = cistern::lab::peak::run_tank_bench(&opts);
            print_report(&report, json)?;
            Ok(())
        }
        #[cfg(feature = "lab")]
        Command::Bench {
            what:
                Some(BenchCommand::Analysis {
                    rooms,
                    days,
                    leaks,
                    leak_fraction,
                    leak_day,
                    seed,
                    config,
                    rules,
                    json,
                }),
            ..
        } => {
            let opts = cistern::lab::analysis_bench::AnalysisBenchOptions {
                rooms,
                days,
                leaks,
                leak_fraction,
                leak_day: leak_day.saturating_sub(1),
                seed,
                config: match &config {
                    Some(path) => {
                        cistern::lab::analysis_bench::AnalysisBenchOptions::load_config(path)?
                    }
                    None => Default::default(),
                },
                rules,
            };
            let report = cistern::lab::analysis_bench::run_analysis_bench(&opts)?;
            print_report(&report, json)?;
            Ok(())
        }
        #[cfg(all(feature = "lab", feature = "cluster"))]
        Command::Bench {
            what:
                Some(BenchCommand::Failover {
                    rooms,
                    nodes,
                    seed,
                    scenario,
                    warmup,
                    after,
                    partition_hold,
                    faults_per_room_day,
                    skew_ms,
                    alarm_burst,
                    keep,
                    json,
                }),
            ..
        } => {
            init_tracing(&LogConfig {
                filter: "warn".into(),
                ..LogConfig::default()
            })?;
            let opts = cistern::lab::failover::FailoverOptions {
                rooms,
                nodes,
                seed,
                scenario,
                warmup,
                after,
                partition_hold,
                faults_per_room_day,
                keep,
                skew_ms,
                alarm_burst,
            };
            let report = cistern::lab::failover::run(&opts)?;
            print_report(&report, json)?;
            Ok(())
        }
        #[cfg(feature = "lab")]
        Command::Bench {
            what:
                Some(BenchCommand::Backup {
                    rooms,
                    hours,
                    dir,
                    seed,
                    baseline,
                    keep,
                    json,
                }),
            ..
        } => {
            init_tracing(&LogConfig::default())?;
            let dir = dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("cistern-bench-backup-{}", std::process::id()))
            });
            let opts = cistern::lab::backup_bench::BackupBenchOptions {
                rooms,
                hours,
                dir,
                seed,
                baseline,
                keep,
            };
            let report = cistern::lab::backup_bench::run(&opts)?;
            print_report(&report, json)?;
            Ok(())
        }
        Command::Assets { action, remote } => {
            anyhow::ensure!(
                ["zh-CN", "en"].contains(&remote.lang.as_str()),
                "--lang must be zh-CN or en"
            );
            let r = remote.into_remote();
            match action {
                AssetsCommand::Import { file, dry_run } => r.import(&file, dry_run)?,
                AssetsCommand::Export {
                    file,
                    format,
                    sheet,
                } => {
                    let mut path = format!("/api/v1/assets/export?format={format}&lang={}", r.lang);
                    if let Some(s) = sheet {
                        path.push_str(&format!("&sheet={s}"));
                    }
                    let n = r.download(&path, &file)?;
                    eprintln!("{}: {n} bytes", file.display());
                }
                AssetsCommand::Template { file } => {
                    let n =
                        r.download(&format!("/api/v1/assets/template?lang={}", r.lang), &file)?;
                    eprintln!("{}: {n} bytes", file.display());
                }
            }
            Ok(())
        }
        Command::Backup {
            action: Some(BackupCommand::Verify { src }),
            ..
        } => match cistern::backup::verify(&src) {
            Ok(m) => {
                print!("{}", cistern::backup::client::summary(&m));
                println!("verified: {}", src.display());
                Ok(())
            }
            Err(e) => refused(e),
        },
        Command::Backup {
            action: None,
            dest,
            remote,
        } => {
            let dest = dest.context("give the backup's destination: cistern backup DEST")?;
            let remote = remote.into_remote();
            let (at, m) = cistern::backup::client::request(&remote, &dest)?;
            print!("{}", cistern::backup::client::summary(&m));
            println!("backup made: {at}");
            Ok(())
        }
        Command::Restore { src, data } => match cistern::backup::restore(&src, &data) {
            Ok(m) => {
                let user = std::env::var("USER").unwrap_or_else(|_| "cli".into());
                cistern::backup::record_restore(&data, &src, &m, &user)
                    .context("restored, but the restore could not be audited")?;
                print!("{}", cistern::backup::client::summary(&m));
                println!("restored into {}", data.display());
                Ok(())
            }
            Err(e) => refused(e),
        },
        Command::Audit { action, remote } => {
            use cistern::auth::audit_cli::{self, VerifyTarget};
            let r = remote.into_remote();
            match action {
                AuditCommand::Verify { data, file, json } => {
                    let target = match (data, file) {
                        (Some(d), _) => VerifyTarget::Data(d),
                        (None, Some(f)) => VerifyTarget::File(f),
                        (None, None) => VerifyTarget::Server(r),
                    };
                    match audit_cli::verify(&target) {
                        Ok(report) => {
                            if json {
                                println!("{}", serde_json::to_string_pretty(&report)?);
                            } else {
                                println!("{report}");
                            }
                            std::process::exit(if report.intact { 0 } else { 1 });
                        }
                        Err(e) => {
                            eprintln!("error: {e}");
                            std::process::exit(2);
                        }
                    }
                }
                AuditCommand::Export {
                    file,
                    format,
                    since,
                    until,
                } => {
                    let mut path = format!("/api/v1/audit/export?format={format}&lang={}", r.lang);
                    for (key, value) in [("since", since), ("until", until)] {
                        if let Some(v) = value {
                            let ms = audit_cli::parse_time(&v).map_err(anyhow::Error::msg)?;
                            path.push_str(&format!("&{key}={ms}"));
                        }
                    }
                    let n = r.download(&path, &file)?;
                    eprintln!("{}: {n} bytes", file.display());
                }
            }
            Ok(())
        }
        Command::Reliability {
            action: ReliabilityCommand::Fit { file },
        } => {
            use cistern::business::assets::weibull;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let sample = weibull::Sample::from_csv(&text)
                .with_context(|| format!("refusing {}", file.display()))?;
            let f = weibull::fit_with_bounds(&sample.failures, &sample.censored)
                .with_context(|| format!("no fit for {}", file.display()))?;
            println!("failures {}  censored {}", f.failures, f.censored);
            println!(
                "beta  {:.4}  95% [{:.4}, {:.4}]",
                f.curve.beta, f.beta.lower, f.beta.upper
            );
            println!(
                "eta   {:.1} h  95% [{:.1}, {:.1}]",
                f.curve.eta, f.eta.lower, f.eta.upper
            );
            Ok(())
        }
        Command::Cluster {
            action:
                ClusterCommand::Status {
                    endpoints,
                    name,
                    config,
                    json,
                },
        } => cluster_status(endpoints, name, config, json),
        Command::Pki { action } => pki(action),
        Command::Rules { action } => match action {
            RulesCommand::Check { dir } => {
                let report = cistern_rules::tools::check(&dir)?;
                print!("{report}");
                anyhow::ensure!(report.ok(), "{} rule errors", report.errors());
                Ok(())
            }
            RulesCommand::Test { dir, cases } => {
                let report = cistern_rules::tools::test(&dir, &cases)?;
                print!("{report}");
                anyhow::ensure!(report.ok(), "{} golden cases failed", report.failed());
                Ok(())
            }
            RulesCommand::Backtest {
                dir,
                against,
                rooms,
                hours,
                seed,
                faults_per_room_day,
                config,
                last,
                json,
                events,
            } => {
                init_tracing(&LogConfig {
                    filter: "warn".into(),
                    ..LogConfig::default()
                })?;
                let load = |d: &std::path::Path| -> anyhow::Result<Arc<cistern_rules::RuleSet>> {
                    let out = cistern_rules::RuleSet::load_dir(d, Default::default())?;
                    for diag in &out.diagnostics {
                        eprintln!("{diag}");
                    }
                    anyhow::ensure!(!out.has_errors(), "{} does not compile", d.display());
                    Ok(Arc::new(out.set))
                };
                let mut sets = vec![(dir.clone(), load(&dir)?)];
                if let Some(a) = &against {
                    sets.push((a.clone(), load(a)?));
                }
                let history = match &config {
                    Some(path) => {
                        let config = Config::load(path)?;
                        let inventory = config.load_inventory()?;
                        let to = cistern_schemas::Timestamp::now();
                        let from = to - last;
                        let readings = tokio::runtime::Runtime::new()?.block_on(async {
                            let storage =
                                cistern::node::Storage::open(&config.store, &config.historian)
                                    .await?;
                            let r = cistern::alarms::backtest::load_history(
                                &storage.historian,
                                &inventory,
                                from,
                                to,
                            )
                            .await;
                            storage.close().await;
                            r.map_err(anyhow::Error::from)
                        })?;
                        Some((inventory, readings, from, to))
                    }
                    None => None,
                };
                for (n, (d, set)) in sets.into_iter().enumerate() {
                    let result = match &history {
                        Some((inventory, readings, from, to)) => {
                            cistern::alarms::backtest::replay_history(
                                set,
                                inventory,
                                readings.iter().cloned(),
                                *from,
                                *to,
                            )
                        }
                        None => simulated_backtest(set, rooms, hours, seed, faults_per_room_day)?,
                    };
                    if let (Some(path), 0) = (&events, n) {
                        let mut out = String::new();
                        for e in &result.all_events {
                            out.push_str(&serde_json::to_string(e)?);
                            out.push('\n');
                        }
                        std::fs::write(path, out)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                    if json {
                        println!("{}", serde_json::to_string(&result)?);
                    } else {
                        println!("== rules: {}", d.display());
                        print!("{result}");
                    }
                }
                Ok(())
            }
        },
        #[cfg(feature = "lab")]
        Command::Inventory { rooms, seed } => {
            let inventory = cistern::lab::sim::generate_fleet(rooms, seed);
            print!(
                "{}",
                toml::to_string(&inventory).context("cannot write the inventory as TOML")?
            );
            Ok(())
        }
    }
}

/// `cistern cluster status`.
fn cluster_status(
    endpoints: Vec<String>,
    name: Option<String>,
    config: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    let mut section = match &config {
        Some(path) => Config::load(path)?.cluster,
        None => cistern::cluster::ClusterConfig::default(),
    };
    if !endpoints.is_empty() {
        section.endpoints = endpoints;
    }
    if let Some(name) = name {
        section.name = name;
    }
    #[cfg(feature = "cluster")]
    {
        let report = tokio::runtime::Runtime::new()?
            .block_on(cistern::cluster::status::read(&section))
            .map_err(|e| anyhow::anyhow!(cistern::cluster::etcd::explain(&section, &e)))
            .with_context(|| {
                format!(
                    "cannot read the cluster from etcd at {}",
                    section.endpoints.join(",")
                )
            })?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", cistern::cluster::status::render(&report));
        }
        Ok(())
    }
    #[cfg(not(feature = "cluster"))]
    {
        let _ = (section, json);
        Err(cistern::cluster::ClusterConfigError::NotBuilt.into())
    }
}

/// Says loudly when traffic that leaves this machine would travel in clear: the API and UI on
/// a non-loopback address without `[http.tls]`, or an MQTT broker elsewhere without
/// `[mqtt.tls]` (passwords and telemetry readable on the wire). The demo stays plain on
/// loopback.
fn warn_plain_listeners(config: &Config) {
    if config.http.tls.is_none() && !cistern::tls::is_loopback(&config.http.listen) {
        tracing::warn!(listen = %config.http.listen, "PLAIN HTTP ON A NETWORK ADDRESS: passwords, session cookies and commands cross the network unencrypted; configure [http.tls] (ops/deploy.md)");
    }
    if let Some(mqtt) = &config.mqtt {
        if mqtt.tls.is_none() && !cistern::tls::is_loopback_host(&mqtt.host) {
            tracing::warn!(broker = %mqtt.host, "PLAIN MQTT TO A BROKER ON THE NETWORK: telemetry and the node's credentials cross the network unencrypted; configure [mqtt.tls] (ops/deploy.md)");
        }
    }
    for endpoint in config.cluster.plain_remote_endpoints() {
        tracing::warn!(%endpoint, "PLAIN ETCD ON THE NETWORK: shard claims, checkpoints and the cluster's users cross the network unencrypted; configure [cluster.etcd_tls] (ops/deploy.md)");
    }
}

fn pki(action: PkiCommand) -> anyhow::Result<()> {
    use cistern::tls::pki;
    match action {
        PkiCommand::Ca { dir, name, days } => {
            let cert = pki::make_ca(&dir, &name, days)?;
            println!("CA certificate {}", cert.display());
            println!("fingerprint {}", pki::fingerprint_of(&cert)?);
        }
        PkiCommand::Issue {
            ca,
            out,
            name,
            kind,
            dns,
            ip,
            days,
            until,
        } => {
            let until = until
                .map(|d| {
                    let format = time::macros::format_description!("[year]-[month]-[day]");
                    time::Date::parse(&d, format)
                        .map(|day| day.midnight().assume_utc())
                        .map_err(|e| anyhow::anyhow!("--until {d:?} is not YYYY-MM-DD: {e}"))
                })
                .transpose()?;
            let out = out.unwrap_or_else(|| ca.clone());
            let issued = pki::issue(
                &ca,
                &out,
                &pki::Request {
                    name,
                    kind,
                    dns,
                    ips: ip,
                    days,
                    until,
                },
            )?;
            println!("certificate {}", issued.cert.display());
            println!("key {}", issued.key.display());
            println!("fingerprint {}", issued.fingerprint);
        }
        PkiCommand::Fingerprint { file } => println!("{}", pki::fingerprint_of(&file)?),
    }
    Ok(())
}

/// Prints a benchmark's report: its table, or JSON with `--json`.
#[cfg(feature = "lab")]
fn print_report<R: serde::Serialize + std::fmt::Display>(
    report: &R,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
