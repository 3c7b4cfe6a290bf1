//! The member against a real etcd (Debian's etcd-server, started here on free loopback ports):
//! claims, a node's death and its shards' re-homing, fenced checkpoint writes.

use super::agent::{ClusterAgent, ShardHost};
use super::checkpoint::{Keys, ShardCheckpoints};
use super::gate::Gate;
use super::journal::Journal;
use super::metrics::ClusterMetrics;
use super::ClusterConfig;
use cistern_actors::alarms::{AlarmStore, MemoryAlarmStore};
use cistern_actors::registry::{shard_of, SHARDS};
use cistern_rules::EngineSnapshot;
use cistern_schemas::RoomId;
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One etcd member on loopback; killed and its data removed on drop.
struct Etcd {
    child: Child,
    dir: PathBuf,
    url: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

impl Etcd {
    fn start() -> Option<Etcd> {
        Self::start_on(free_port())
    }

    fn start_on(client: u16) -> Option<Etcd> {
        if !std::path::Path::new("/usr/bin/etcd").exists() {
            eprintln!("SKIPPED: /usr/bin/etcd is not installed (Debian etcd-server; ops/test.sh installs it)");
            return None;
        }
        let peer = free_port();
        let dir =
            std::env::temp_dir().join(format!("cistern-etcd-{}-{client}", std::process::id()));
        let url = format!("http://127.0.0.1:{client}");
        let child = Command::new("/usr/bin/etcd")
            .args(["--name", "t", "--data-dir"])
            .arg(&dir)
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args(["--initial-cluster", &format!("t=http://127.0.0.1:{peer}")])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Etcd { child, dir, url })
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut c) = etcd_client::Client::connect([&self.url], None).await {
                if c.status().await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("etcd did not start at {}", self.url);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A node's rooms as the tests see them: which shards run, and the agent told of samples.
#[derive(Debug, Default)]
struct Host {
    running: Mutex<BTreeSet<u32>>,
    /// Shards stopped by a planned hand-over (graceful) and by fencing.
    handed_over: Mutex<usize>,
    fenced: Mutex<usize>,
    agent: OnceLock<Arc<ClusterAgent>>,
}

impl ShardHost for Host {
    fn start_shard(&self, shard: u32) -> BoxFuture<'_, Result<usize, String>> {
        Box::pin(async move {
            self.running.lock().unwrap().insert(shard);
            if let Some(a) = self.agent.get() {
                a.sample_applied(shard);
            }
            Ok(1)
        })
    }
    fn stop_shard(&self, shard: u32, graceful: bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.running.lock().unwrap().remove(&shard);
            *if graceful {
                &self.handed_over
            } else {
                &self.fenced
            }
            .lock()
            .unwrap() += 1;
        })
    }
}

struct Node {
    agent: Arc<ClusterAgent>,
    host: Arc<Host>,
    checkpoints: Arc<ShardCheckpoints>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn config(url: &str, node: &str) -> ClusterConfig {
    ClusterConfig {
        enabled: true,
        name: "t".into(),
        node_id: node.into(),
        endpoints: vec![url.into()],
        advertise: format!("http://{node}"),
        settle: Duration::from_millis(300),
        ..ClusterConfig::default()
    }
}

fn start(url: &str, node: &str) -> Node {
    start_with(url, node, None)
}

/// A node whose checkpoints flush `events` (the node's own alarm store) first.
fn start_with(url: &str, node: &str, events: Option<Arc<crate::alarms::StoredAlarms>>) -> Node {
    let config = config(url, node);
    let gate = Arc::new(Gate::default());
    let metrics = ClusterMetrics::register(&prometheus::Registry::new()).unwrap();
    let checkpoints = Arc::new(ShardCheckpoints::new(
        Keys::new(config.prefix()),
        gate.clone(),
        metrics.clone(),
        match &events {
            Some(e) => e.clone(),
            None => Arc::new(MemoryAlarmStore::default()),
        },
        events,
    ));
    let agent = ClusterAgent::new(
        config,
        gate,
        checkpoints.clone(),
        metrics,
        Journal::open(node, None).unwrap(),
    );
    let host = Arc::new(Host::default());
    let _ = host.agent.set(agent.clone());
    let (stop, rx) = watch::channel(false);
    let task = agent.spawn(host.clone(), rx);
    Node {
        agent,
        host,
        checkpoints,
        stop,
        task,
    }
}

fn running(nodes: &[&Node]) -> Vec<BTreeSet<u32>> {
    nodes
        .iter()
        .map(|n| n.host.running.lock().unwrap().clone())
        .collect()
}

async fn until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t0.elapsed()
}

/// Every shard runs on exactly one of `nodes`.
fn partitioned(nodes: &[&Node]) -> bool {
    let sets = running(nodes);
    let total: usize = sets.iter().map(|s| s.len()).sum();
    let union: BTreeSet<u32> = sets.into_iter().flatten().collect();
    total == SHARDS as usize && union.len() == SHARDS as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_shards_are_claimed_by_the_others_and_its_late_writes_are_refused() {
    let Some(etcd) = Etcd::start() else { return };
    etcd.wait_ready().await;
    let (a, b, c) = (
        start(&etcd.url, "node-a"),
        start(&etcd.url, "node-b"),
        start(&etcd.url, "node-c"),
    );
    until(
        "all 64 shards spread over three nodes",
        Duration::from_secs(30),
        || partitioned(&[&a, &b, &c]) && running(&[&a, &b, &c]).iter().all(|s| !s.is_empty()),
    )
    .await;
    // A room of one of b's shards raises state that must survive b.
    let shard = *b.host.running.lock().unwrap().iter().next().unwrap();
    let room = (0..10_000)
        .map(|i| RoomId::new(&format!("XM-{i:04}")).unwrap())
        .find(|r| shard_of(r) == shard)
        .unwrap();
    let snapshot = EngineSnapshot::default();
    b.checkpoints.save_room(&room, snapshot.clone());
    let epoch_b = b.agent.gate().epoch(shard).unwrap();
    until("b's checkpoint written", Duration::from_secs(30), || {
        b.checkpoints.dirty_shards().is_empty()
    })
    .await;
    let orphaned = b.host.running.lock().unwrap().clone();

    // b dies: its task stops without leaving (no revoke), as with SIGKILL.
    b.task.abort();
    let took = until("b's shards re-homed", Duration::from_secs(30), || {
        partitioned(&[&a, &c])
    })
    .await;
    eprintln!("re-homed {} shards in {took:?}", orphaned.len());
    let new_owner = if a.host.running.lock().unwrap().contains(&shard) {
        &a
    } else {
        &c
    };
    assert_eq!(
        new_owner.checkpoints.load_room(&room),
        Some(snapshot),
        "the new owner starts from b's state"
    );
    let epoch_new = new_owner.agent.gate().epoch(shard).unwrap();
    assert!(
        epoch_new > epoch_b,
        "a new claim, a newer epoch: {epoch_new:?} > {epoch_b:?}"
    );

    // b's late write, with its old epoch, is refused by etcd.
    let mut client = etcd_client::Client::connect([&etcd.url], None)
        .await
        .unwrap();
    let gate = b.agent.gate();
    // As if b still believed itself live (a stale view of its own: its gate opened afresh).
    gate.close();
    gate.extend(Instant::now() + Duration::from_secs(5));
    b.checkpoints.save_room(&room, EngineSnapshot::default());
    let refused = b.checkpoints.flush(&mut client, shard, epoch_b).await;
    assert!(
        matches!(refused, Err(super::checkpoint::CheckpointError::Stale(s)) if s == shard),
        "{refused:?}"
    );
    let _ = (a.stop.send(true), c.stop.send(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_takes_its_shards_by_planned_moves_and_a_leaving_one_hands_all_back() {
    let Some(etcd) = Etcd::start() else { return };
    etcd.wait_ready().await;
    let a = start(&etcd.url, "node-a");
    until("a owns everything", Duration::from_secs(30), || {
        partitioned(&[&a])
    })
    .await;
    let b = start(&etcd.url, "node-b");
    let members = [
        super::assign::Candidate {
            node: "node-a",
            dc: "dc1",
        },
        super::assign::Candidate {
            node: "node-b",
            dc: "dc1",
        },
    ];
    let b_wants: BTreeSet<u32> = (0..SHARDS)
        .filter(|s| super::assign::desired_owner(*s, &members, None) == Some("node-b"))
        .collect();
    let took = until(
        "a and b share the shards as rendezvous says",
        Duration::from_secs(30),
        || partitioned(&[&a, &b]) && *b.host.running.lock().unwrap() == b_wants,
    )
    .await;
    eprintln!(
        "{} shards moved to a joining node in {took:?}",
        b_wants.len()
    );
    let split = running(&[&a, &b]);
    // It settles: nothing moves any more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(running(&[&a, &b]), split, "the assignment flapped");
    // b leaves cleanly: a has everything again, long before b's lease would have expired.
    let _ = b.stop.send(true);
    let took = until("a owns everything again", Duration::from_secs(30), || {
        partitioned(&[&a]) && b.host.running.lock().unwrap().is_empty()
    })
    .await;
    eprintln!("a planned leave handed over in {took:?}");
    assert_eq!(*b.host.fenced.lock().unwrap(), 0, "b was never fenced");
    assert_eq!(
        *a.host.handed_over.lock().unwrap(),
        b_wants.len(),
        "a handed b its shards"
    );
    assert_eq!(
        *b.host.handed_over.lock().unwrap(),
        b_wants.len(),
        "b handed them all back"
    );
    assert_eq!(*a.host.fenced.lock().unwrap(), 0, "a was never fenced");
    let _ = a.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarting_with_its_id_frees_its_old_claims_at_once() {
    let Some(etcd) = Etcd::start() else { return };
    etcd.wait_ready().await;
    let first = start(&etcd.url, "node-a");
    until("a owns everything", Duration::from_secs(30), || {
        partitioned(&[&first])
    })
    .await;
    let old_epoch = first.agent.gate().epoch(0).unwrap();
    // Killed (no leave), and back at once with the same id: its previous run's lease still
    // holds every claim; the new run revokes it instead of waiting for it to expire.
    first.task.abort();
    let again = start(&etcd.url, "node-a");
    let took = until(
        "the restarted node owns everything",
        Duration::from_secs(30),
        || partitioned(&[&again]),
    )
    .await;
    eprintln!("a restart with the same id took its shards back in {took:?}");
    assert!(
        again.agent.gate().epoch(0).unwrap() > old_epoch,
        "new claims, newer epochs"
    );
    let _ = again.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_reach_etcd_supervises_nothing_and_joins_once_it_can() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let node = start(&url, "node-a");
    until("etcd unreachable is said", Duration::from_secs(30), || {
        node.agent.status().state == super::agent::NodeState::Unreachable
    })
    .await;
    assert!(!node.agent.ready());
    assert!(running(&[&node])[0].is_empty(), "no shard without etcd");
    // etcd comes up on that address: the node joins and claims everything.
    let Some(etcd) = Etcd::start_on(port) else {
        return;
    };
    etcd.wait_ready().await;
    until(
        "joined and owning everything",
        Duration::from_secs(60),
        || partitioned(&[&node]) && node.agent.ready(),
    )
    .await;
    let _ = node.stop.send(true);
}

/// A checkpoint first writes the alarm events recorded before it to the node's own store: a
/// node that dies once its checkpoint has committed leaves no transition in the shard's state
/// that no event log holds (the next owner would start from that state and never make the
/// transition again). No write-behind task runs here: only the checkpoint writes the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_writes_the_alarm_events_recorded_before_its_state_first() {
    use crate::store::Store;
    use cistern_schemas::Timestamp;
    let Some(etcd) = Etcd::start() else { return };
    etcd.wait_ready().await;
    let dir = std::env::temp_dir().join(format!("cistern-ckpt-events-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> =
        Arc::new(crate::store::embedded::EmbeddedStore::open(&dir).unwrap());
    let log = Arc::new(
        crate::alarms::StoredAlarms::load(store.clone())
            .await
            .unwrap(),
    );
    let a = start_with(&etcd.url, "node-a", Some(log));
    until("a owns everything", Duration::from_secs(30), || {
        partitioned(&[&a])
    })
    .await;
    let room = RoomId::new("XM-0001").unwrap();
    let raised = crate::alarms::stored::raised_event(1_000, "pump_fault@P1");
    // As a room hands an engine call on: its events, then the state they left.
    a.checkpoints.record(std::slice::from_ref(&raised));
    a.checkpoints.save_room(&room, EngineSnapshot::default());
    let written = tokio::time::timeout(
        Duration::from_secs(30),
        a.checkpoints.covered(shard_of(&room)),
    )
    .await;
    assert_eq!(written.ok(), Some(true), "the checkpoint was not written");
    let stored = store
        .events("alarms/XM-0001", Timestamp(0), Timestamp(10_000), 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "the event is not in the node's store");
    let _ = a.stop.send(true);
    let _ = std::fs::remove_dir_all(&dir);
}
