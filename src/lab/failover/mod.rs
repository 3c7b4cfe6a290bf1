//! `cistern bench failover`: a node lost, and how long its rooms go unsupervised, measured on
//! real processes — an etcd cluster of three members ([`etcd`]), mosquitto, and `--nodes`
//! `cistern run` nodes in cluster mode, with the simulated fleet publishing every 2 s.
//!
//! Each scenario runs on a fresh set of processes:
//! - `kill`: one node gets SIGKILL;
//! - `partition`: one node, started inside a network namespace of its own ([`netns`]), is cut
//!   off from etcd and the broker (and the other nodes), and healed a while later;
//! - `leave`: one node gets SIGTERM — a planned leave: it hands every shard over (stops its
//!   rooms, writes the last checkpoint, deletes the owner key: `released` in its journal) and
//!   exits.
//!
//! For every shard the lost node owned (its *orphans*), the time from the kill (or the cut, or
//! the SIGTERM) to the first sample its new owner applied (`first_sample_at` of
//! `GET /api/v1/cluster`) is the shard's takeover: p50 and max are reported. For a leave, each
//! moved shard's *gap* — the old owner's `released` line to the new owner's first sample, the
//! time nobody acted for it — is reported too. After the run the nodes stop and every sample
//! the broker accepted, as recorded by a subscriber of the bench's own ([`tap`]), is looked
//! for in every node's store ([`census`]): lost, stored twice, duplicated. The nodes' journals
//! say whether two nodes ever acted for one shard at once ([`journal`]).
//!
//! Alarm transitions: over the 24 s before the loss the bench has the load generator inject a
//! fault of 20–40 s (a pump trip, a mains loss) into `--alarm-burst` rooms of the node about to
//! be lost and as many elsewhere ([`burst`]), so that their alarms raise, are suppressed and
//! clear before, during and after the takeover. After the run, the transitions the published samples should have
//! produced (the tap's messages replayed through the rule engine) are paired with those the
//! nodes' alarm event logs hold ([`transitions`]): lost, recorded twice, spurious.
//!
//! With `--skew-ms N` the nodes' wall clocks are skewed by libfaketime (`LD_PRELOAD`, the
//! monotonic clock left alone): node *i* runs +N, −N, 0, +N, … ms off. Every wall time a node
//! reports (its API's `acquired_at` and `first_sample_at`, its journal) is brought back to the
//! real clock by its known offset before anything is compared; each node's actual offset is
//! measured from its log (the line it writes on SIGTERM against when the bench sent it).

pub mod burst;
pub mod census;
pub mod etcd;
pub mod journal;
pub mod netns;
pub mod tap;
pub mod transitions;

use crate::cluster::assign::{desired_owner, Candidate};
use crate::lab::bench::procs::{free_port, start_broker_on, BenchProc};
use crate::lab::bench::scrape::scrape;
use crate::lab::bench::BenchError;
use census::Census;
use cistern_actors::registry::{shard_of, SHARDS};
use cistern_schemas::Timestamp;
use journal::{Acting, Overlap};
use netns::Netns;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Why the failover benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error("{0} is not installed")]
    Missing(&'static str),
    #[error("network namespace: {0}")]
    Netns(String),
    #[error("broker: {0}")]
    Broker(String),
    #[error("the cluster {0}")]
    Cluster(String),
    #[error("counting the stores: {0}")]
    Census(String),
    #[error("journal: {0}")]
    Journal(String),
    #[error("alarm transitions: {0}")]
    Alarms(String),
    #[error("{0}")]
    Usage(String),
}

/// Which node loss to stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    Kill,
    Partition,
    Leave,
    /// Kill, then partition.
    Both,
    /// Kill, partition, leave.
    All,
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kill" => Ok(Self::Kill),
            "partition" => Ok(Self::Partition),
            "leave" => Ok(Self::Leave),
            "both" => Ok(Self::Both),
            "all" => Ok(Self::All),
            other => Err(format!("{other:?}: kill, partition, leave, both or all")),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kill => "kill",
            Self::Partition => "partition",
            Self::Leave => "leave",
            Self::Both => "both",
            Self::All => "all",
        })
    }
}

/// Options of `cistern bench failover`.
#[derive(Clone, Debug)]
pub struct FailoverOptions {
    pub rooms: usize,
    pub nodes: usize,
    pub seed: u64,
    pub scenario: Scenario,
    /// Seconds of publishing, every shard supervised, before the node is lost (at least the
    /// alarm burst's lead, [`burst::LEAD`], when there is a burst).
    pub warmup: u64,
    /// Seconds of publishing after the takeover (or the heal).
    pub after: u64,
    /// Seconds a partition lasts at least (it lasts until the orphans are re-homed).
    pub partition_hold: u64,
    /// Faults injected per room per day by the fleet (comms losses among them: replays).
    pub faults_per_room_day: f64,
    /// Keep the working directory (configs, logs, data) and say where.
    pub keep: bool,
    /// Wall-clock skew of the nodes, ms: node i runs [`skew_of`] off (libfaketime).
    pub skew_ms: i64,
    /// Rooms of the node to be lost, and as many others, given a fault timed around the loss
    /// ([`burst`]), so that alarm transitions fall in the takeover.
    pub alarm_burst: usize,
}

impl Default for FailoverOptions {
    fn default() -> Self {
        Self {
            rooms: 2_100,
            nodes: 3,
            seed: 1,
            scenario: Scenario::Both,
            warmup: 20,
            after: 20,
            partition_hold: 10,
            faults_per_room_day: 4.0,
            keep: false,
            skew_ms: 0,
            alarm_burst: 24,
        }
    }
}

/// libfaketime as Debian installs it (package `faketime`).
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Removes what libfaketime left in /dev/shm for the process `pid`, once it has ended: its
/// shared-memory segment and semaphore are unlinked at a normal exit only, not after SIGKILL.
pub fn forget_faketime(pid: u32) {
    let _ = std::fs::remove_file(format!("/dev/shm/faketime_shm_{pid}"));
    let _ = std::fs::remove_file(format!("/dev/shm/sem.faketime_sem_{pid}"));
}

/// The wall-clock offset of node `i` under `--skew-ms skew`: +skew, −skew, 0, +skew, …
pub fn skew_of(i: usize, skew: i64) -> i64 {
    match i % 3 {
        0 => skew,
        1 => -skew,
        _ => 0,
    }
}

/// libfaketime's `FAKETIME` for an offset of `ms` (seconds with a fraction: `+2.000`).
pub fn faketime_offset(ms: i64) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1_000, abs % 1_000)
}

/// Node ids (the [`BenchProc`] names are static).
const NODE_IDS: [&str; 9] = [
    "node-a", "node-b", "node-c", "node-d", "node-e", "node-f", "node-g", "node-h", "node-i",
];

/// The cluster's name in etcd (`/cistern/bench/...`).
pub const CLUSTER_NAME: &str = "bench";

/// The longest wait for every shard to be owned, and for the orphans to be re-homed.
const OWNERSHIP_DEADLINE: Duration = Duration::from_secs(90);
const TAKEOVER_DEADLINE: Duration = Duration::from_secs(60);

/// The whole benchmark's result.
#[derive(Clone, Debug, Serialize)]
pub struct FailoverReport {
    pub rooms: usize,
    pub nodes: usize,
    pub seed: u64,
    pub cores: usize,
    /// Where etcd kept its data (tmpfs when the machine has one).
    pub etcd_data: String,
    /// `--skew-ms`: node i's wall clock ran [`skew_of`] off.
    pub skew_ms: i64,
    pub scenarios: Vec<ScenarioReport>,
}

/// One scenario's figures.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    pub scenario: Scenario,
    /// The node killed or cut off.
    pub victim: String,
    /// Shards the victim owned when it was lost, and of them those with rooms.
    pub orphaned_shards: usize,
    pub orphaned_with_rooms: usize,
    /// Orphans with rooms whose new owner applied a first sample within the deadline.
    pub rehomed: usize,
    /// Kill (or cut, or SIGTERM) → first sample applied by the new owner, over the orphans
    /// with rooms.
    pub takeover_p50_s: Option<f64>,
    pub takeover_max_s: Option<f64>,
    /// Kill (or cut) → the new owner's claim, over every orphan.
    pub claim_max_s: Option<f64>,
    pub takeovers: Vec<Takeover>,
    /// Leave: the old owner's `released` → the new owner's first sample, over the moved
    /// shards with rooms.
    pub gap_p50_s: Option<f64>,
    pub gap_max_s: Option<f64>,
    /// Leave: the old owner's `released` → the new owner's claim, max over the moved shards.
    pub unowned_max_s: Option<f64>,
    /// Leave: the victim's shards its journal shows released (of `orphaned_shards`).
    pub released: usize,
    /// Leave: SIGTERM → the victim's exit (None: it did not exit within a minute and was
    /// killed).
    pub victim_exit_s: Option<f64>,
    /// Partition: cut → the victim's first `fenced` journal line (self-fencing).
    pub victim_fenced_after_s: Option<f64>,
    /// Partition: heal → every shard owned again with the victim a member.
    pub settled_after_heal_s: Option<f64>,
    /// Points the generator published (its own count).
    pub generator_points: u64,
    /// The samples' census (distinct published samples against the stores).
    pub census: Census,
    /// Samples the tap saw more than once (QoS 1 redelivery to the tap itself).
    pub tap_repeats: u64,
    /// Values any node rejects by design (not expected in a store).
    pub rejected_values: u64,
    /// Shards two nodes acted for at once, from the journals.
    pub double_ownership: usize,
    pub overlaps: Vec<Overlap>,
    /// Acting spans in the journals.
    pub acting_spans: usize,
    /// Nodes that stopped by themselves on SIGTERM at the end (of those still running).
    pub stopped_cleanly: usize,
    pub drain_s: f64,
    /// Alarm transitions: expected from the published samples, recorded by the nodes.
    pub alarms: AlarmsReport,
    /// Each node's wall-clock offset: as set, and as measured from its log.
    pub clocks: Vec<ClockOffset>,
}

/// A node's wall-clock offset.
#[derive(Clone, Debug, Serialize)]
pub struct ClockOffset {
    pub node: String,
    /// As set (libfaketime), ms; the bench corrects the node's wall times by it.
    pub set_ms: i64,
    /// As measured: the time stamp of the line the node logs on SIGTERM ("leaving the
    /// cluster") less when the bench sent the signal (a few ms of delivery included). None
    /// for a node that got no SIGTERM (the killed one) or wrote no such line.
    pub measured_ms: Option<i64>,
}

/// One orphan shard's takeover.
#[derive(Clone, Debug, Serialize)]
pub struct Takeover {
    pub shard: u32,
    pub rooms: usize,
    pub to: String,
    pub claim_s: f64,
    /// None: no sample within the deadline (or a shard without rooms).
    pub first_sample_s: Option<f64>,
    /// Leave: when the old owner released the shard (its journal), from the SIGTERM.
    pub released_s: Option<f64>,
    /// Leave: released → the new owner's first sample.
    pub gap_s: Option<f64>,
    /// Leave: released → the new owner's claim (the shard had no owner).
    pub unowned_s: Option<f64>,
}

/// Runs the benchmark.
pub fn run(opts: &FailoverOptions) -> Result<FailoverReport, FailoverError> {
    if !(2..=NODE_IDS.len()).contains(&opts.nodes) {
        return Err(FailoverError::Usage(format!(
            "--nodes {}: between 2 and {}",
            opts.nodes,
            NODE_IDS.len()
        )));
    }
    if opts.rooms == 0 {
        return Err(FailoverError::Usage("--rooms must be at least 1".into()));
    }
    let exe = std::env::current_exe().map_err(|source| BenchError::Io {
        what: "find the cistern binary".into(),
        source,
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| BenchError::Io {
            what: "start a runtime".into(),
            source,
        })?;
    let tmp = std::env::temp_dir().join(format!("cistern-failover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    mkdir(&tmp)?;
    if opts.skew_ms != 0 && !Path::new(LIBFAKETIME).exists() {
        return Err(FailoverError::Missing(
            "libfaketime (Debian: apt-get install faketime), needed by --skew-ms,",
        ));
    }
    let scenarios = match opts.scenario {
        Scenario::Both => vec![Scenario::Kill, Scenario::Partition],
        Scenario::All => vec![Scenario::Kill, Scenario::Partition, Scenario::Leave],
        s => vec![s],
    };
    let mut reports = Vec::new();
    let mut failure = None;
    for s in scenarios {
        eprintln!(
            "bench failover: {s}: {} rooms, {} nodes, seed {}",
            opts.rooms, opts.nodes, opts.seed
        );
        match run_scenario(opts, s, &exe, &tmp.join(s.to_string()), &rt) {
            Ok(r) => reports.push(r),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if opts.keep || failure.is_some() {
        eprintln!("bench failover: kept {}", tmp.display());
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(FailoverReport {
        rooms: opts.rooms,
        nodes: opts.nodes,
        seed: opts.seed,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        etcd_data: etcd::data_root("*").display().to_string(),
        skew_ms: opts.skew_ms,
        scenarios: reports,
    })
}

/// One `cistern run` of the cluster.
#[derive(Debug)]
struct ClusterNode {
    id: &'static str,
    proc: BenchProc,
    base: String,
    data: PathBuf,
    token: String,
    /// Its log (stderr).
    log: PathBuf,
    /// Its wall clock's offset (libfaketime), ms: its wall times less this are real times.
    offset_ms: i64,
    /// When it was killed (ms), for the journals.
    died_ms: Option<i64>,
    stopped_ms: Option<i64>,
    /// When the bench sent it SIGTERM (ms).
    term_ms: Option<i64>,
}

impl ClusterNode {
    /// A wall time this node reported, on the real clock.
    fn real(&self, node_ms: i64) -> i64 {
        node_ms - self.offset_ms
    }

    /// SIGTERM, noting when.
    fn terminate(&mut self) {
        self.term_ms = Some(now_ms());
        self.proc.signal_term();
    }

    /// This node's offset as set and as measured from its log (see [`ClockOffset`]).
    fn clock(&self) -> ClockOffset {
        let logged = std::fs::read_to_string(&self.log).ok().and_then(|text| {
            text.lines()
                .find(|l| l.contains("leaving the cluster"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(parse_rfc3339)
        });
        ClockOffset {
            node: self.id.to_owned(),
            set_ms: self.offset_ms,
            measured_ms: logged.zip(self.term_ms).map(|(l, t)| l - t),
        }
    }
}

/// What a node said of itself and its shards (`GET /api/v1/cluster`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeView {
    pub node: String,
    pub state: String,
    pub shards: Vec<ShardView>,
}

/// One shard a node owns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardView {
    pub shard: u32,
    pub state: String,
    pub epoch: i64,
    pub rooms: usize,
    pub acquired_ms: Option<i64>,
    pub first_sample_ms: Option<i64>,
}

impl NodeView {
    /// Reads the answer of `GET /api/v1/cluster` (fields this bench does not use are ignored;
    /// `rooms` may be a count or a list).
    pub fn parse(v: &serde_json::Value) -> Option<Self> {
        let shards = v["shards"]
            .as_array()?
            .iter()
            .filter_map(|s| {
                Some(ShardView {
                    shard: u32::try_from(s["shard"].as_u64()?).ok()?,
                    state: s["state"].as_str().unwrap_or("").to_owned(),
                    epoch: s["epoch"].as_i64().unwrap_or(0),
                    rooms: s["rooms"]
                        .as_u64()
                        .map(|n| n as usize)
                        .or_else(|| s["rooms"].as_array().map(Vec::len))
                        .unwrap_or(0),
                    acquired_ms: s["acquired_at"].as_str().and_then(parse_rfc3339),
                    first_sample_ms: s["first_sample_at"].as_str().and_then(parse_rfc3339),
                })
            })
            .collect();
        Some(Self {
            node: v["node"].as_str()?.to_owned(),
            state: v["state"].as_str().unwrap_or("").to_owned(),
            shards,
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` → Unix milliseconds; also `<Unix ms>ms` (a
/// timestamp's own display) and a bare number of milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if let Ok(ms) = s.strip_suffix("ms").unwrap_or(s).parse::<i64>() {
        return Some(ms);
    }
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let (y, mo, da) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let day = cistern_schemas::time::Date::ymd(y, mo, da)?;
    let (clock, offset_min) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (c, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':')?;
        (
            c,
            sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?),
        )
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut p = hms.split(':');
    let (h, mi, se): (i64, i64, i64) = (
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
    );
    let ms: i64 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        digits.parse().ok()?
    };
    Some(day.start(0).0 + ((h * 60 + mi) * 60 + se) * 1_000 + ms - offset_min * 60_000)
}

/// The configuration of one node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub id: &'static str,
    pub listen: SocketAddr,
    pub inventory: PathBuf,
    pub data: PathBuf,
    pub broker: SocketAddr,
    pub endpoints: Vec<String>,
}

/// `cistern.toml` of a cluster node.
pub fn node_config(spec: &NodeSpec) -> String {
    let endpoints: Vec<String> = spec.endpoints.iter().map(|e| format!("{e:?}")).collect();
    format!(
        "# Generated by `cistern bench failover`.\n\
         [http]\nlisten = \"{listen}\"\n\
         [inventory]\nfile = {inv:?}\n\
         [mqtt]\nhost = \"{host}\"\nport = {port}\nclient_id = \"cistern-{name}-{id}\"\n\
         [store]\nbackend = \"embedded\"\ndata_dir = {data:?}\n\
         [rules]\nenabled = true\nhot_reload = false\n\
         [log]\nfilter = \"warn\"\n\
         [cluster]\nenabled = true\nname = \"{name}\"\nnode_id = \"{id}\"\ndc = \"dc1\"\n\
         endpoints = [{endpoints}]\nadvertise = \"http://{listen}\"\n\
         lease_ttl = \"3s\"\nkeepalive_every = \"1s\"\nfence_margin = \"500ms\"\n\
         settle = \"1s\"\ndrain_timeout = \"3s\"\ncheckpoint_every = \"250ms\"\n",
        listen = spec.listen,
        inv = spec.inventory.display().to_string(),
        host = spec.broker.ip(),
        port = spec.broker.port(),
        name = CLUSTER_NAME,
        id = spec.id,
        data = spec.data.display().to_string(),
        endpoints = endpoints.join(", "),
    )
}

fn now_ms() -> i64 {
    Timestamp::now().0
}

/// An agent for the cluster polls: short timeouts (a partitioned node does not answer).
fn poll_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(true)
        .build()
        .into()
}

fn login(http: &ureq::Agent, base: &str, password: &str) -> Result<String, FailoverError> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let body: Result<serde_json::Value, _> = http
            .post(format!("{base}/api/v1/auth/login"))
            .send_json(serde_json::json!({"user": "admin", "password": password}))
            .and_then(|mut r| r.body_mut().read_json());
        match body {
            Ok(b) => {
                if let Some(t) = b["token"].as_str() {
                    return Ok(t.to_owned());
                }
                return Err(BenchError::Login(format!("no token in {b}")).into());
            }
            Err(e) if Instant::now() >= end => return Err(BenchError::Login(e.to_string()).into()),
            Err(_) => std::thread::park_timeout(Duration::from_millis(200)),
        }
    }
}

fn view(http: &ureq::Agent, node: &ClusterNode) -> Option<NodeView> {
    let v: serde_json::Value = http
        .get(format!("{}/api/v1/cluster", node.base))
        .header("authorization", format!("Bearer {}", node.token))
        .call()
        .and_then(|mut r| r.body_mut().read_json())
        .ok()?;
    NodeView::parse(&v)
}

/// Owners by shard (claimed and not draining: `acquiring` until the shard's first sample,
/// which a shard without rooms never has, then `active`), from the views of `members`.
fn owners(views: &[(usize, NodeView)]) -> BTreeMap<u32, Vec<(usize, ShardView)>> {
    let mut by: BTreeMap<u32, Vec<(usize, ShardView)>> = BTreeMap::new();
    for (i, v) in views {
        for s in &v.shards {
            if s.state == "active" || s.state == "acquiring" {
                by.entry(s.shard).or_default().push((*i, s.clone()));
            }
        }
    }
    by
}

/// What a wait for the cluster asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settle {
    /// Every shard owned by exactly one member (where does not matter yet).
    Owned,
    /// Moreover every shard with rooms active on the member rendezvous hashing over `members`
    /// wants (the cluster's own rule; a shard moves only once active, so the fleet publishes),
    /// the assignment unchanged over two polls a second apart.
    Balanced,
}

/// Waits until the cluster of `members` is as `settle` asks, every member answering as a
/// member. `rooms_of` holds the rooms of each shard.
fn wait_settled(
    http: &ureq::Agent,
    nodes: &mut [ClusterNode],
    members: &[usize],
    rooms_of: &BTreeMap<u32, usize>,
    settle: Settle,
    deadline: Duration,
) -> Result<BTreeMap<u32, (usize, ShardView)>, FailoverError> {
    let end = Instant::now() + deadline;
    let mut previous: Option<BTreeMap<u32, usize>> = None;
    let ids: Vec<&'static str> = members
        .iter()
        .filter_map(|&i| nodes.get(i).map(|n| n.id))
        .collect();
    let candidates: Vec<Candidate<'_>> = ids
        .iter()
        .map(|id| Candidate {
            node: id,
            dc: "dc1",
        })
        .collect();
    loop {
        for &i in members {
            if let Some(n) = nodes.get_mut(i) {
                if !n.proc.running() {
                    return Err(n
                        .proc
                        .failed("exited while the cluster settled".into())
                        .into());
                }
            }
        }
        let views: Vec<(usize, NodeView)> = members
            .iter()
            .filter_map(|&i| nodes.get(i).and_then(|n| view(http, n)).map(|v| (i, v)))
            .collect();
        let by = owners(&views);
        let single = (0..SHARDS)
            .filter(|s| by.get(s).is_some_and(|o| o.len() == 1))
            .count();
        let placed = (0..SHARDS)
            .filter(|s| {
                let Some([(i, v)]) = by.get(s).map(Vec::as_slice) else {
                    return false;
                };
                let rooms = rooms_of.get(s).copied().unwrap_or(0);
                settle == Settle::Owned
                    || rooms == 0
                    || (v.state == "active"
                        && nodes.get(*i).map(|n| n.id) == desired_owner(*s, &candidates, None))
            })
            .count();
        let all_members =
            views.len() == members.len() && views.iter().all(|(_, v)| v.state == "member");
        if all_members && placed == SHARDS as usize {
            let now: BTreeMap<u32, usize> = by.iter().map(|(s, o)| (*s, o[0].0)).collect();
            if settle == Settle::Owned || previous.as_ref() == Some(&now) {
                return Ok(by
                    .into_iter()
                    .filter_map(|(s, mut o)| o.pop().map(|x| (s, x)))
                    .collect());
            }
            previous = Some(now);
            std::thread::park_timeout(Duration::from_secs(1));
            continue;
        }
        previous = None;
        if Instant::now() >= end {
            return Err(FailoverError::Cluster(format!(
                "did not settle ({settle:?}) within {deadline:?}: {single} of {SHARDS} shards \
                 owned by one node, {placed} where they belong, {} of {} nodes answering as members",
                views.iter().filter(|(_, v)| v.state == "member").count(),
                members.len()
            )));
        }
        std::thread::park_timeout(Duration::from_millis(250));
    }
}

/// Waits until the owned shards hold all `rooms` rooms and every shard with rooms has applied
/// a sample.
fn wait_first_samples(
    http: &ureq::Agent,
    nodes: &[ClusterNode],
    members: &[usize],
    rooms: usize,
    deadline: Duration,
) -> Result<(), FailoverError> {
    let end = Instant::now() + deadline;
    loop {
        let views: Vec<(usize, NodeView)> = members
            .iter()
            .filter_map(|&i| nodes.get(i).and_then(|n| view(http, n)).map(|v| (i, v)))
            .collect();
        let by = owners(&views);
        let held: usize = by
            .values()
            .filter_map(|o| o.first())
            .map(|(_, s)| s.rooms)
            .sum();
        let waiting = by
            .values()
            .filter_map(|o| o.first())
            .filter(|(_, s)| s.rooms > 0 && s.first_sample_ms.is_none())
            .count();
        if waiting == 0 && held == rooms && views.len() == members.len() {
            return Ok(());
        }
        if Instant::now() >= end {
            return Err(FailoverError::Cluster(format!(
                "had {waiting} shards with rooms and no sample, and {held} of {rooms} rooms \
                 started, {deadline:?} after the fleet started"
            )));
        }
        std::thread::park_timeout(Duration::from_millis(250));
    }
}

/// Polls the survivors until every orphan is claimed and, when it has rooms, supervised again
/// (times on the real clock: each node's by its offset). `leaving`: a node stopping by itself,
/// whose exit is noted (`stopped_ms`) as the polls see it.
fn wait_takeovers(
    http: &ureq::Agent,
    nodes: &mut [ClusterNode],
    survivors: &[usize],
    orphans: &BTreeMap<u32, usize>,
    t0: i64,
    leaving: Option<usize>,
) -> Vec<Takeover> {
    let end = Instant::now() + TAKEOVER_DEADLINE;
    let mut done: BTreeMap<u32, Takeover> = BTreeMap::new();
    loop {
        note_exit(nodes, leaving);
        for &i in survivors {
            let Some(n) = nodes.get(i) else { continue };
            let Some(v) = view(http, n) else { continue };
            for s in &v.shards {
                let Some(&rooms) = orphans.get(&s.shard) else {
                    continue;
                };
                let Some(acquired) = s
                    .acquired_ms
                    .map(|a| n.real(a))
                    .filter(|a| *a >= t0 - 1_000)
                else {
                    continue;
                };
                let finished = done
                    .get(&s.shard)
                    .is_some_and(|d| d.first_sample_s.is_some());
                if finished {
                    continue;
                }
                done.insert(
                    s.shard,
                    Takeover {
                        shard: s.shard,
                        rooms,
                        to: n.id.to_owned(),
                        claim_s: (acquired - t0) as f64 / 1e3,
                        first_sample_s: s.first_sample_ms.map(|f| (n.real(f) - t0) as f64 / 1e3),
                        released_s: None,
                        gap_s: None,
                        unowned_s: None,
                    },
                );
            }
        }
        let complete = orphans.iter().all(|(s, rooms)| {
            done.get(s)
                .is_some_and(|d| *rooms == 0 || d.first_sample_s.is_some())
        });
        if complete || Instant::now() >= end {
            return done.into_values().collect();
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// Notes when the `leaving` node exited (`stopped_ms`), if it has.
fn note_exit(nodes: &mut [ClusterNode], leaving: Option<usize>) {
    if let Some(n) = leaving.and_then(|i| nodes.get_mut(i)) {
        if n.stopped_ms.is_none() && !n.proc.running() {
            n.stopped_ms = Some(now_ms());
        }
    }
}

/// Quantile (nearest rank) of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i).copied()
}

fn run_scenario(
    opts: &FailoverOptions,
    scenario: Scenario,
    exe: &Path,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> Result<ScenarioReport, FailoverError> {
    mkdir(dir)?;
    let tag = std::process::id();
    let victim = (opts.seed % opts.nodes as u64) as usize;
    let ns = if scenario == Scenario::Partition {
        Some(Netns::create(tag)?)
    } else {
        None
    };
    let also: Vec<IpAddr> = ns.iter().map(|n| IpAddr::V4(n.host_ip)).collect();
    let mut etcd = etcd::EtcdCluster::start(
        3,
        dir,
        &also,
        &format!("{tag}-{scenario}"),
        Duration::from_secs(30),
    )?;
    let (mut broker, mqtt) = start_broker_on(dir, &also)?;

    let inventory = crate::lab::sim::generate_fleet(opts.rooms, opts.seed);
    let inventory_file = dir.join("inventory.toml");
    let text = toml::to_string(&inventory).map_err(|e| BenchError::Generate {
        what: "inventory",
        message: e.to_string(),
    })?;
    write(&inventory_file, &text)?;

    let password = format!("failover-{tag}-{}", opts.seed);
    let http = poll_agent();
    let mut nodes: Vec<ClusterNode> = Vec::with_capacity(opts.nodes);
    for (i, id) in NODE_IDS.iter().take(opts.nodes).enumerate() {
        let inside = ns.as_ref().filter(|_| i == victim);
        let (listen_ip, reach): (IpAddr, IpAddr) = match inside {
            Some(n) => (IpAddr::V4(n.ns_ip), IpAddr::V4(n.host_ip)),
            None => (
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            ),
        };
        let data = dir.join(format!("{id}-data"));
        let spec = NodeSpec {
            id,
            listen: SocketAddr::new(listen_ip, free_port()?),
            inventory: inventory_file.clone(),
            data: data.clone(),
            broker: SocketAddr::new(reach, mqtt.port()),
            endpoints: etcd.endpoints(reach),
        };
        let config = dir.join(format!("{id}.toml"));
        write(&config, &node_config(&spec))?;
        let mut command = match inside {
            Some(n) => n.command(exe),
            None => Command::new(exe),
        };
        command
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("CISTERN_ADMIN_PASSWORD", &password)
            // The cluster's events, at least (the journal's lines, "leaving the cluster").
            .env(
                "RUST_LOG",
                std::env::var("CISTERN_FAILOVER_NODE_LOG")
                    .unwrap_or_else(|_| "warn,cistern::cluster=info".to_owned()),
            );
        let offset_ms = skew_of(i, opts.skew_ms);
        if offset_ms != 0 {
            // Only the wall clock: the gate and every timeout run on the monotonic clock.
            command
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME", faketime_offset(offset_ms))
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let log = dir.join(format!("{id}.log"));
        let mut proc = BenchProc::spawn(id, command, log.clone())?;
        let ready = proc.wait_line("ready", Duration::from_secs(120))?;
        let base = ready
            .get("http")
            .cloned()
            .ok_or_else(|| proc.failed("printed a ready line without http=".into()))?;
        let token = login(&http, &base, &password)?;
        nodes.push(ClusterNode {
            id,
            proc,
            base,
            data,
            token,
            log,
            offset_ms,
            died_ms: None,
            stopped_ms: None,
            term_ms: None,
        });
    }
    let all: Vec<usize> = (0..nodes.len()).collect();
    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != victim).collect();
    eprintln!(
        "bench failover: {scenario}: {} nodes up; waiting for every shard",
        nodes.len()
    );
    let mut rooms_of: BTreeMap<u32, usize> = BTreeMap::new();
    for r in &inventory.rooms {
        *rooms_of.entry(shard_of(&r.id)).or_default() += 1;
    }
    let balanced = Settle::Balanced;
    let settle = |nodes: &mut Vec<ClusterNode>, how: Settle| {
        wait_settled(&http, nodes, &all, &rooms_of, how, OWNERSHIP_DEADLINE)
    };
    settle(&mut nodes, Settle::Owned)?;

    let tap = rt.block_on(tap::Tap::start(
        mqtt,
        &format!("cistern-failover-tap-{tag}"),
        Duration::from_secs(10),
    ))?;
    let mut gen_cmd = Command::new(exe);
    gen_cmd
        .arg("simulate")
        .args(["--rooms", &opts.rooms.to_string()])
        .args(["--seed", &opts.seed.to_string()])
        .args(["--mqtt", &mqtt.to_string()])
        .args([
            "--faults-per-room-day",
            &opts.faults_per_room_day.to_string(),
        ])
        .args(["--stats-every", "1s"])
        .arg("--faults-stdin")
        .env("RUST_LOG", "warn");
    let mut generator =
        BenchProc::spawn_with_input("load generator", gen_cmd, dir.join("generator.log"))?;
    generator.wait_line("ready", Duration::from_secs(120))?;
    wait_first_samples(&http, &nodes, &all, opts.rooms, Duration::from_secs(60))?;
    // Shards move to where they belong once active (the fleet publishes).
    settle(&mut nodes, balanced)?;
    // The burst's lead is the warmup's end (or lengthens it).
    let lead = if opts.alarm_burst > 0 {
        burst::LEAD
    } else {
        Duration::ZERO
    };
    wait_alive(
        Duration::from_secs(opts.warmup).saturating_sub(lead),
        &mut nodes,
        &mut etcd,
        &mut broker,
    )?;

    // Short faults timed around the loss (see [`burst`]), in the victim's rooms and elsewhere.
    let before = settle(&mut nodes, balanced)?;
    let (doomed, spared): (Vec<_>, Vec<_>) = inventory
        .rooms
        .iter()
        .map(|r| r.id.clone())
        .partition(|r| before.get(&shard_of(r)).is_some_and(|(i, _)| *i == victim));
    let faults = burst::plan(&doomed, &spared, opts.alarm_burst);
    let burst_sent = Instant::now();
    for f in &faults {
        generator.tell(&f.command())?;
    }

    // The victim's shards just before it is lost.
    let settled = settle(&mut nodes, balanced)?;
    wait_alive(
        lead.saturating_sub(burst_sent.elapsed()),
        &mut nodes,
        &mut etcd,
        &mut broker,
    )?;
    let orphans: BTreeMap<u32, usize> = settled
        .iter()
        .filter(|(_, (i, _))| *i == victim)
        .map(|(s, (_, v))| (*s, v.rooms))
        .collect();
    let victim_id = NODE_IDS.get(victim).copied().unwrap_or("?");
    eprintln!(
        "bench failover: {scenario}: {victim_id} owns {} shards; losing it",
        orphans.len()
    );
    let t0 = now_ms();
    let leave = scenario == Scenario::Leave;
    match (&ns, nodes.get_mut(victim)) {
        (Some(n), _) => n.cut()?,
        (None, Some(v)) if leave => v.terminate(),
        (None, Some(v)) => {
            v.proc.kill9();
            v.died_ms = Some(t0);
        }
        (None, None) => {}
    }
    let mut takeovers = wait_takeovers(
        &http,
        &mut nodes,
        &survivors,
        &orphans,
        t0,
        leave.then_some(victim),
    );
    let mut victim_exit_s = None;
    if leave {
        if let Some(v) = nodes.get_mut(victim) {
            let end = Instant::now() + Duration::from_secs(60);
            while v.stopped_ms.is_none() && Instant::now() < end {
                std::thread::park_timeout(Duration::from_millis(50));
                if !v.proc.running() {
                    v.stopped_ms = Some(now_ms());
                }
            }
            if v.stopped_ms.is_none() {
                v.proc.kill9();
                v.died_ms = Some(now_ms());
            }
            victim_exit_s = v.stopped_ms.map(|s| (s - t0) as f64 / 1e3);
        }
    }
    let mut settled_after_heal_s = None;
    if let Some(n) = &ns {
        let hold_until = Instant::now()
            + Duration::from_millis(
                (opts.partition_hold * 1_000).saturating_sub((now_ms() - t0).max(0) as u64),
            );
        wait_alive(
            hold_until.saturating_duration_since(Instant::now()),
            &mut nodes,
            &mut etcd,
            &mut broker,
        )?;
        n.heal()?;
        let healed = Instant::now();
        eprintln!("bench failover: {scenario}: healed; waiting for the cluster to settle");
        settle(&mut nodes, balanced)?;
        settled_after_heal_s = Some(healed.elapsed().as_secs_f64());
    }
    let live: Vec<usize> = if ns.is_some() {
        all.clone()
    } else {
        survivors.clone()
    };
    wait_alive_some(Duration::from_secs(opts.after), &mut nodes, &live)?;

    // Stop the fleet, let everything drain, stop the nodes.
    generator.signal_term();
    let published_line = generator.wait_line("published", Duration::from_secs(60))?;
    let generator_points = published_line
        .get("points")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let drain_started = Instant::now();
    wait_quiet(
        || tap.seen(),
        Duration::from_secs(2),
        Duration::from_secs(30),
    );
    let metrics = agent_metrics_total(&nodes, &live);
    wait_quiet(metrics, Duration::from_secs(3), Duration::from_secs(120));
    let drain_s = drain_started.elapsed().as_secs_f64();
    for &i in &live {
        if let Some(n) = nodes.get_mut(i) {
            n.terminate();
        }
    }
    let mut stopped_cleanly = 0;
    for &i in &live {
        if let Some(n) = nodes.get_mut(i) {
            if n.proc.wait_exit(Duration::from_secs(30)) {
                stopped_cleanly += 1;
            }
            n.stopped_ms = Some(now_ms());
        }
    }
    let published = rt.block_on(tap.stop());
    drop(generator);

    let dirs: Vec<PathBuf> = nodes.iter().map(|n| n.data.clone()).collect();
    eprintln!(
        "bench failover: {scenario}: looking for {} samples in {} stores",
        published.samples,
        dirs.len()
    );
    let census = rt.block_on(census::count(&published, &dirs))?;

    let mut spans: Vec<Acting> = Vec::new();
    let mut victim_fenced_after_s = None;
    let mut released: BTreeMap<u32, i64> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let mut events = journal::read(&n.data.join(journal::JOURNAL))?;
        // On the real clock.
        for e in &mut events {
            e.at_ms = n.real(e.at_ms);
        }
        if i == victim && ns.is_some() {
            victim_fenced_after_s =
                journal::first_event(&events, "fenced", t0).map(|f| (f - t0) as f64 / 1e3);
        }
        if i == victim && leave {
            released = journal::events_since(&events, "released", t0);
        }
        let end = n.died_ms.or(n.stopped_ms).unwrap_or_else(now_ms);
        spans.extend(journal::acting(&events, end, n.died_ms.is_some()));
    }
    let overlaps = journal::overlaps(&spans);
    let double: BTreeSet<u32> = overlaps.iter().map(|o| o.shard).collect();
    for t in &mut takeovers {
        let Some(&r) = released.get(&t.shard) else {
            continue;
        };
        let released_s = (r - t0) as f64 / 1e3;
        t.released_s = Some(released_s);
        t.gap_s = t.first_sample_s.map(|f| f - released_s);
        t.unowned_s = Some(t.claim_s - released_s);
    }
    let unowned_max_s = takeovers
        .iter()
        .filter_map(|t| t.unowned_s)
        .max_by(f64::total_cmp);
    let mut gaps: Vec<f64> = takeovers
        .iter()
        .filter(|t| t.rooms > 0)
        .filter_map(|t| t.gap_s)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let clocks: Vec<ClockOffset> = nodes.iter().map(ClusterNode::clock).collect();

    let mut times: Vec<f64> = takeovers
        .iter()
        .filter(|t| t.rooms > 0)
        .filter_map(|t| t.first_sample_s)
        .collect();
    times.sort_by(f64::total_cmp);
    let mut claims: Vec<f64> = takeovers.iter().map(|t| t.claim_s).collect();
    claims.sort_by(f64::total_cmp);
    eprintln!(
        "bench failover: {scenario}: replaying {} messages through the rules; reading the \
         nodes' alarm events",
        published.heard.len()
    );
    let alarms = alarm_report(
        rt,
        &AlarmInputs {
            heard: &published.heard,
            inventory: &inventory,
            nodes: &nodes,
            orphans: &orphans,
            t0,
            takeover_max_s: times.last().copied(),
            skew_ms: opts.skew_ms,
            burst: &faults,
        },
    )?;
    let skewed: Vec<u32> = (nodes.iter())
        .filter(|n| n.offset_ms != 0)
        .map(|n| n.proc.pid())
        .collect();
    drop(nodes);
    for pid in skewed {
        forget_faketime(pid);
    }
    drop(broker);
    drop(etcd);
    drop(ns);
    Ok(ScenarioReport {
        scenario,
        victim: victim_id.to_owned(),
        orphaned_shards: orphans.len(),
        orphaned_with_rooms: orphans.values().filter(|r| **r > 0).count(),
        rehomed: times.len(),
        takeover_p50_s: quantile(&times, 0.5),
        takeover_max_s: times.last().copied(),
        claim_max_s: claims.last().copied(),
        takeovers,
        gap_p50_s: quantile(&gaps, 0.5),
        gap_max_s: gaps.last().copied(),
        unowned_max_s,
        released: released.len(),
        victim_exit_s,
        victim_fenced_after_s,
        settled_after_heal_s,
        generator_points,
        census,
        tap_repeats: published.repeats,
        rejected_values: published.rejected_values,
        double_ownership: double.len(),
        overlaps,
        acting_spans: spans.len(),
        stopped_cleanly,
        drain_s,
        alarms,
        clocks,
    })
}

/// What the alarm comparison needs from a scenario's run.
struct AlarmInputs<'a> {
    heard: &'a [tap::Heard],
    inventory: &'a cistern_schemas::inventory::Inventory,
    nodes: &'a [ClusterNode],
    orphans: &'a BTreeMap<u32, usize>,
    /// The loss, real clock (ms).
    t0: i64,
    takeover_max_s: Option<f64>,
    skew_ms: i64,
    burst: &'a [burst::BurstFault],
}

/// The alarm transitions of a scenario (see [`transitions`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct AlarmsReport {
    /// From the tap's first message to its last, and the pairing tolerance.
    pub window: Option<transitions::Window>,
    /// Faults asked of the generator around the loss: in the lost node's rooms, elsewhere.
    pub burst_lost_node: usize,
    pub burst_elsewhere: usize,
    /// Every room.
    pub all: transitions::AlarmCensus,
    /// The lost node's rooms.
    pub lost_node: transitions::AlarmCensus,
    /// The lost node's rooms, transitions stamped in [`AlarmsReport::around_loss_window`]:
    /// from 1 s before the loss (the old owner's last checkpoint and event writes) to the last
    /// re-homing + the restored rooms' evaluation grace + 1 s.
    pub around_loss: transitions::AlarmCensus,
    pub around_loss_window: Option<transitions::Window>,
}

fn alarm_report(
    rt: &tokio::runtime::Runtime,
    a: &AlarmInputs<'_>,
) -> Result<AlarmsReport, FailoverError> {
    let (Some(first), Some(last)) = (a.heard.first(), a.heard.last()) else {
        return Ok(AlarmsReport::default());
    };
    let lost_room = |r: &cistern_schemas::RoomId| a.orphans.contains_key(&shard_of(r));
    let burst_lost_node = a.burst.iter().filter(|f| lost_room(&f.room)).count();
    // See the tolerance in [`transitions`]: the takeover (the budget, or longer if it was), the
    // restored rooms' grace, a sweep and evaluation latency, twice the skew.
    let takeover_ms = ((a.takeover_max_s.unwrap_or(0.0) * 1e3) as i64).max(5_000);
    let grace_ms = transitions::RESTART_GRACE.as_millis() as i64;
    let tolerance_ms = takeover_ms + grace_ms + 2_000 + 2 * a.skew_ms.abs();
    let window = transitions::Window {
        from_ms: first.at_ms,
        to_ms: last.at_ms,
        tolerance_ms,
    };
    let expected = transitions::expected(a.heard, a.inventory, last.at_ms);
    let dirs: Vec<PathBuf> = a.nodes.iter().map(|n| n.data.clone()).collect();
    // Read wide (each node's own clock), counted on the real clock within the window.
    let margin = 60_000 + a.skew_ms.abs();
    let by_node = rt.block_on(transitions::recorded(
        &dirs,
        a.inventory,
        first.at_ms - margin,
        last.at_ms + margin,
    ))?;
    let mut recorded = Vec::new();
    for (i, (n, ts)) in a.nodes.iter().zip(by_node).enumerate() {
        for mut t in ts {
            t.at_ms = n.real(t.at_ms);
            recorded.push(transitions::Recorded {
                node: i,
                transition: t,
            });
        }
    }
    let around = transitions::Window {
        from_ms: a.t0 - 1_000,
        to_ms: a.t0 + takeover_ms + grace_ms + 1_000,
        tolerance_ms,
    };
    Ok(AlarmsReport {
        window: Some(window),
        burst_lost_node,
        burst_elsewhere: a.burst.len() - burst_lost_node,
        all: transitions::compare(&expected, &recorded, window, &|_| true),
        lost_node: transitions::compare(&expected, &recorded, window, &lost_room),
        around_loss: transitions::compare(&expected, &recorded, around, &lost_room),
        around_loss_window: Some(around),
    })
}

/// A reading of the live nodes' ingest and durable counters, for [`wait_quiet`].
fn agent_metrics_total(nodes: &[ClusterNode], live: &[usize]) -> impl FnMut() -> u64 {
    let bases: Vec<String> = live
        .iter()
        .filter_map(|&i| nodes.get(i).map(|n| n.base.clone()))
        .collect();
    let http = poll_agent();
    move || {
        bases
            .iter()
            .filter_map(|b| scrape(&http, b).ok())
            .map(|s| {
                (s.get("cistern_store_durable_samples_total")
                    + s.get("cistern_ingest_points_total")) as u64
            })
            .sum()
    }
}

/// Waits until `read` has not changed for `quiet`, or `max` passes.
fn wait_quiet(mut read: impl FnMut() -> u64, quiet: Duration, max: Duration) {
    let start = Instant::now();
    let mut last = read();
    let mut moved = Instant::now();
    while start.elapsed() < max && moved.elapsed() < quiet {
        std::thread::park_timeout(Duration::from_millis(250));
        let now = read();
        if now != last {
            last = now;
            moved = Instant::now();
        }
    }
}

/// Waits `span`, failing early when a node, an etcd member or the broker dies.
fn wait_alive(
    span: Duration,
    nodes: &mut [ClusterNode],
    etcd: &mut etcd::EtcdCluster,
    broker: &mut BenchProc,
) -> Result<(), FailoverError> {
    let end = Instant::now() + span;
    loop {
        for n in nodes.iter_mut() {
            if n.died_ms.is_none() && !n.proc.running() {
                return Err(n.proc.failed("exited during the run".into()).into());
            }
        }
        etcd.check()?;
        if !broker.running() {
            return Err(broker.failed("exited during the run".into()).into());
        }
        if Instant::now() >= end {
            return Ok(());
        }
        std::thread::park_timeout(
            end.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(500)),
        );
    }
}

/// Waits `span`, failing early when one of the `live` nodes dies.
fn wait_alive_some(
    span: Duration,
    nodes: &mut [ClusterNode],
    live: &[usize],
) -> Result<(), FailoverError> {
    let end = Instant::now() + span;
    loop {
        for &i in live {
            if let Some(n) = nodes.get_mut(i) {
                if !n.proc.running() {
                    return Err(n.proc.failed("exited during the run".into()).into());
                }
            }
        }
        if Instant::now() >= end {
            return Ok(());
        }
        std::thread::park_timeout(
            end.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(500)),
        );
    }
}

fn write(path: &Path, text: &str) -> Result<(), FailoverError> {
    std::fs::write(path, text).map_err(|source| {
        BenchError::Io {
            what: format!("write {}", path.display()),
            source,
        }
        .into()
    })
}

fn mkdir(path: &Path) -> Result<(), FailoverError> {
    std::fs::create_dir_all(path).map_err(|source| {
        BenchError::Io {
            what: format!("create {}", path.display()),
            source,
        }
        .into()
    })
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |s| format!("{s:.2} s"))
}

impl fmt::Display for FailoverReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Failover benchmark: {} rooms, {} nodes, seed {}, {} cores; etcd 3 members (data {})",
            self.rooms, self.nodes, self.seed, self.cores, self.etcd_data
        )?;
        if self.skew_ms != 0 {
            writeln!(
                f,
                "Wall clocks skewed (libfaketime): node i by +{0}, -{0}, 0, +{0}, ... ms; \
                 the nodes' wall times corrected by their offsets",
                self.skew_ms
            )?;
        }
        writeln!(f)?;
        write!(f, "| figure |")?;
        for s in &self.scenarios {
            write!(f, " {} ({}) |", s.scenario, s.victim)?;
        }
        writeln!(f)?;
        write!(f, "|---|")?;
        for _ in &self.scenarios {
            write!(f, "---|")?;
        }
        writeln!(f)?;
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: &dyn Fn(&ScenarioReport) -> String| {
            write!(f, "| {k} |")?;
            for s in &self.scenarios {
                write!(f, " {} |", v(s))?;
            }
            writeln!(f)
        };
        row(f, "shards orphaned (with rooms)", &|s| {
            format!("{} ({})", s.orphaned_shards, s.orphaned_with_rooms)
        })?;
        row(f, "re-homed and supervised again", &|s| {
            format!("{} of {}", s.rehomed, s.orphaned_with_rooms)
        })?;
        row(f, "loss → supervised again, p50 / max", &|s| {
            format!("{} / {}", secs(s.takeover_p50_s), secs(s.takeover_max_s))
        })?;
        row(f, "loss → last claim", &|s| secs(s.claim_max_s))?;
        row(f, "leave: shards released (journal)", &|s| {
            if s.scenario == Scenario::Leave {
                format!("{} of {}", s.released, s.orphaned_shards)
            } else {
                "—".to_owned()
            }
        })?;
        row(
            f,
            "leave: released → supervised again (gap), p50 / max",
            &|s| {
                if s.scenario == Scenario::Leave {
                    format!("{} / {}", secs(s.gap_p50_s), secs(s.gap_max_s))
                } else {
                    "—".to_owned()
                }
            },
        )?;
        row(
            f,
            "leave: released → claimed by the new owner, max",
            &|s| secs(s.unowned_max_s),
        )?;
        row(f, "leave: SIGTERM → the node exited", &|s| {
            secs(s.victim_exit_s)
        })?;
        row(f, "partitioned node fenced itself after", &|s| {
            secs(s.victim_fenced_after_s)
        })?;
        row(f, "heal → cluster settled", &|s| {
            secs(s.settled_after_heal_s)
        })?;
        row(f, "samples published (tap) / by the generator", &|s| {
            format!("{} / {}", s.census.published, s.generator_points)
        })?;
        row(f, "samples durable / lost", &|s| {
            format!("{} / {}", s.census.durable, s.census.lost)
        })?;
        row(
            f,
            "duplicated (one store twice, or values differing)",
            &|s| s.census.duplicates.to_string(),
        )?;
        row(f, "stored by two nodes (redelivered, served once)", &|s| {
            s.census.stored_twice.to_string()
        })?;
        row(f, "stored, never published", &|s| {
            s.census.unpublished_stored.to_string()
        })?;
        row(f, "alarm transitions expected / recorded / lost", &|s| {
            let a = &s.alarms.all;
            format!("{} / {} / {}", a.expected, a.recorded, a.lost)
        })?;
        row(f, "alarm transitions recorded twice / spurious", &|s| {
            let a = &s.alarms.all;
            format!("{} / {}", a.recorded_twice + a.duplicated, a.spurious)
        })?;
        row(f, "of the lost node's rooms: expected / lost", &|s| {
            let a = &s.alarms.lost_node;
            format!("{} / {}", a.expected, a.lost)
        })?;
        row(
            f,
            "of them around the loss (−1 s … takeover + 6 s): expected / lost",
            &|s| {
                let a = &s.alarms.around_loss;
                format!("{} / {}", a.expected, a.lost)
            },
        )?;
        row(f, "alarm stamp vs reference, p50 / max (ms)", &|s| {
            let a = &s.alarms.all;
            let ms = |v: Option<i64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:+}"));
            format!(
                "{} / {} (tolerance {})",
                ms(a.lateness_p50_ms),
                ms(a.lateness_max_ms),
                s.alarms
                    .window
                    .map_or_else(|| "—".to_owned(), |w| format!("{} ms", w.tolerance_ms))
            )
        })?;
        row(f, "shards with two acting owners (journals)", &|s| {
            format!("{} ({} spans)", s.double_ownership, s.acting_spans)
        })?;
        row(f, "drain / nodes stopped cleanly", &|s| {
            format!("{:.1} s / {}", s.drain_s, s.stopped_cleanly)
        })?;
        row(f, "clock offsets set / measured (ms)", &|s| {
            s.clocks
                .iter()
                .map(|c| {
                    format!(
                        "{} {:+}/{}",
                        c.node,
                        c.set_ms,
                        c.measured_ms
                            .map_or_else(|| "—".to_owned(), |m| format!("{m:+}"))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_with_milliseconds_and_offsets_read_as_unix_milliseconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-12-07T10:41:50.123Z"),
            Some(1_796_640_110_123)
        );
        assert_eq!(
            parse_rfc3339("2026-12-07T18:41:50.123+08:00"),
            Some(1_796_640_110_123)
        );
        assert_eq!(
            parse_rfc3339("2026-12-07T10:41:50.1Z"),
            Some(1_796_640_110_100)
        );
        assert_eq!(parse_rfc3339("1796640110123ms"), Some(1_796_640_110_123));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn a_node_view_reads_the_cluster_endpoint() {
        let v = serde_json::json!({
            "node": "node-a", "dc": "dc1", "state": "member", "lease_ttl_s": 3,
            "last_renewal_ms_ago": 120, "members": [],
            "shards": [
                {"shard": 3, "owner": "node-a", "epoch": 41, "state": "active",
                 "acquired_at": "1970-01-01T00:00:01.000Z",
                 "first_sample_at": "1970-01-01T00:00:02.500Z", "rooms": 7},
                {"shard": 9, "owner": "node-a", "epoch": 42, "state": "acquiring",
                 "acquired_at": "1970-01-01T00:00:01.000Z", "first_sample_at": null,
                 "rooms": ["XM-0001"]},
                {"shard": 11, "owner": "node-a", "epoch": 43, "state": "draining",
                 "acquired_at": "1970-01-01T00:00:01.000Z", "first_sample_at": null,
                 "rooms": 0}
            ]
        });
        let n = NodeView::parse(&v).unwrap();
        assert_eq!(n.node, "node-a");
        assert_eq!(n.state, "member");
        assert_eq!(n.shards.len(), 3);
        assert_eq!(n.shards[0].first_sample_ms, Some(2_500));
        assert_eq!(n.shards[0].rooms, 7);
        assert_eq!(n.shards[1].rooms, 1);
        assert_eq!(n.shards[1].first_sample_ms, None);
        let by = owners(&[(0, n)]);
        // Claimed, with or without a first sample; a draining shard is on its way out.
        assert_eq!(by.keys().copied().collect::<Vec<_>>(), vec![3, 9]);
    }

    #[test]
    fn a_node_config_names_its_cluster_broker_and_store() {
        let spec = NodeSpec {
            id: "node-b",
            listen: "10.231.0.2:8081".parse().unwrap(),
            inventory: "/t/inventory.toml".into(),
            data: "/t/node-b-data".into(),
            broker: "10.231.0.1:1883".parse().unwrap(),
            endpoints: vec![
                "http://10.231.0.1:2379".into(),
                "http://10.231.0.1:2479".into(),
            ],
        };
        let text = node_config(&spec);
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(v["cluster"]["enabled"].as_bool(), Some(true));
        assert_eq!(v["cluster"]["node_id"].as_str(), Some("node-b"));
        assert_eq!(v["cluster"]["name"].as_str(), Some(CLUSTER_NAME));
        assert_eq!(
            v["cluster"]["advertise"].as_str(),
            Some("http://10.231.0.2:8081")
        );
        assert_eq!(v["cluster"]["endpoints"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["mqtt"]["host"].as_str(), Some("10.231.0.1"));
        assert_eq!(v["mqtt"]["port"].as_integer(), Some(1883));
        assert_eq!(v["store"]["data_dir"].as_str(), Some("/t/node-b-data"));
        assert_eq!(v["http"]["listen"].as_str(), Some("10.231.0.2:8081"));
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 1.0), Some(4.0));
    }

    #[test]
    fn scenarios_parse() {
        assert_eq!("kill".parse::<Scenario>(), Ok(Scenario::Kill));
        assert_eq!("both".parse::<Scenario>(), Ok(Scenario::Both));
        assert_eq!("leave".parse::<Scenario>(), Ok(Scenario::Leave));
        assert_eq!("all".parse::<Scenario>(), Ok(Scenario::All));
        assert_eq!(Scenario::Leave.to_string(), "leave");
        assert!("crash".parse::<Scenario>().is_err());
    }

    #[test]
    fn skews_alternate_and_read_as_libfaketime_offsets() {
        let offsets: Vec<i64> = (0..5).map(|i| skew_of(i, 2_000)).collect();
        assert_eq!(offsets, vec![2_000, -2_000, 0, 2_000, -2_000]);
        assert_eq!(faketime_offset(2_000), "+2.000");
        assert_eq!(faketime_offset(-2_000), "-2.000");
        assert_eq!(faketime_offset(-250), "-0.250");
        assert_eq!(faketime_offset(1_500), "+1.500");
    }
}
