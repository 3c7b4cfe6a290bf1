//! The benchmark's etcd: a cluster of real `/usr/bin/etcd` members (Debian's etcd-server), each a
//! process of its own on free loopback ports with a fresh data directory, so that the nodes'
//! leases and claims go through a real Raft quorum. Members are killed, and their data removed,
//! when the cluster is dropped.
//!
//! Timing suits loopback: a 50 ms heartbeat and a 500 ms election timeout (etcd asks for an
//! election timeout of about ten round trips; a WAN cluster needs far more — ops/). The data
//! directories go to tmpfs (`/dev/shm`) when there is one, so that three members' fsyncs on one
//! shared virtual disk do not become the benchmark's figure.

use super::FailoverError;
use crate::lab::bench::procs::{free_port, BenchProc};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Names of the members (the [`BenchProc`] names are static).
const MEMBERS: [&str; 5] = ["etcd-0", "etcd-1", "etcd-2", "etcd-3", "etcd-4"];

/// Debian's etcd.
pub const ETCD: &str = "/usr/bin/etcd";

/// A running etcd cluster.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<BenchProc>,
    client_ports: Vec<u16>,
    /// Where each member answers `/health` over plain HTTP on loopback: its client port, or
    /// its metrics port when its clients must speak TLS.
    health_ports: Vec<u16>,
    /// Whether clients reach the members over TLS.
    tls: bool,
    data: PathBuf,
}

/// A member serving TLS to its clients and its peers: every client must present a certificate
/// chaining to `ca` (`--client-cert-auth`), and so must every peer. `cert` serves both sides
/// (`cistern pki issue --kind peer`, with 127.0.0.1 in its SAN).
#[derive(Clone, Debug)]
pub struct MemberTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The plain loopback port of `/health` and `/metrics`.
    pub metrics_port: u16,
}

/// One member's place in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpec {
    pub name: &'static str,
    pub client_port: u16,
    pub peer_port: u16,
}

/// The command line of `member` in a cluster of `all`, its data in `data`, its client port
/// also open on `also` (a network namespace's link) besides loopback.
pub fn member_args(
    member: &MemberSpec,
    all: &[MemberSpec],
    data: &Path,
    also: &[IpAddr],
    token: &str,
) -> Vec<String> {
    member_args_with(member, all, data, also, token, None)
}

/// As [`member_args`], serving TLS with `tls`.
pub fn member_args_with(
    member: &MemberSpec,
    all: &[MemberSpec],
    data: &Path,
    also: &[IpAddr],
    token: &str,
    tls: Option<&MemberTls>,
) -> Vec<String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut listen = vec![format!("{scheme}://127.0.0.1:{}", member.client_port)];
    listen.extend(
        also.iter()
            .map(|ip| format!("{scheme}://{ip}:{}", member.client_port)),
    );
    let initial: Vec<String> = all
        .iter()
        .map(|m| format!("{}={scheme}://127.0.0.1:{}", m.name, m.peer_port))
        .collect();
    let peer = format!("{scheme}://127.0.0.1:{}", member.peer_port);
    let mut secured = Vec::new();
    if let Some(tls) = tls {
        let (ca, cert, key) = (
            tls.ca.display().to_string(),
            tls.cert.display().to_string(),
            tls.key.display().to_string(),
        );
        secured = vec![
            ("--trusted-ca-file", ca.clone()),
            ("--cert-file", cert.clone()),
            ("--key-file", key.clone()),
            ("--client-cert-auth", "true".to_owned()),
            ("--peer-trusted-ca-file", ca),
            ("--peer-cert-file", cert),
            ("--peer-key-file", key),
            ("--peer-client-cert-auth", "true".to_owned()),
            (
                "--listen-metrics-urls",
                format!("http://127.0.0.1:{}", tls.metrics_port),
            ),
        ];
    }
    [
        ("--name", member.name.to_owned()),
        ("--data-dir", data.display().to_string()),
        ("--listen-client-urls", listen.join(",")),
        (
            "--advertise-client-urls",
            format!("{scheme}://127.0.0.1:{}", member.client_port),
        ),
        ("--listen-peer-urls", peer.clone()),
        ("--initial-advertise-peer-urls", peer),
        ("--initial-cluster", initial.join(",")),
        ("--initial-cluster-token", token.to_owned()),
        ("--initial-cluster-state", "new".to_owned()),
        ("--heartbeat-interval", "50".to_owned()),
        ("--election-timeout", "500".to_owned()),
        ("--auto-compaction-mode", "periodic".to_owned()),
        ("--auto-compaction-retention", "5m".to_owned()),
        // The nodes ping their connection every second; etcd's default (5 s) answers that
        // with GOAWAY too_many_pings, the lease's keep-alive stream closing with it.
        ("--grpc-keepalive-min-time", "500ms".to_owned()),
        ("--pre-vote", "true".to_owned()),
        ("--logger", "zap".to_owned()),
        ("--log-level", "warn".to_owned()),
    ]
    .into_iter()
    .chain(secured)
    .map(|(k, v)| format!("{k}={v}"))
    .collect()
}

/// Where the members keep their data: tmpfs when the machine has one.
pub fn data_root(tag: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("cistern-failover-etcd-{tag}"))
}

impl EtcdCluster {
    /// Starts `members` members (1 to 5) and waits until every one answers `/health` healthy
    /// (the cluster has a leader), within `deadline`. Logs go to `logs`.
    pub fn start(
        members: usize,
        logs: &Path,
        also: &[IpAddr],
        tag: &str,
        deadline: Duration,
    ) -> Result<Self, FailoverError> {
        Self::start_with(members, logs, also, tag, deadline, None)
    }

    /// As [`EtcdCluster::start`], every member serving TLS with `tls`'s files (its
    /// `metrics_port` is chosen here, per member).
    pub fn start_with(
        members: usize,
        logs: &Path,
        also: &[IpAddr],
        tag: &str,
        deadline: Duration,
        tls: Option<&MemberTls>,
    ) -> Result<Self, FailoverError> {
        if !Path::new(ETCD).exists() {
            return Err(FailoverError::Missing(
                "etcd (Debian: apt-get install etcd-server; ops/test.sh does it)",
            ));
        }
        let n = members.clamp(1, MEMBERS.len());
        let mut specs = Vec::with_capacity(n);
        for name in MEMBERS.iter().take(n) {
            specs.push(MemberSpec {
                name,
                client_port: free_port()?,
                peer_port: free_port()?,
            });
        }
        let data = data_root(tag);
        let _ = std::fs::remove_dir_all(&data);
        let mut cluster = Self {
            members: Vec::with_capacity(n),
            client_ports: specs.iter().map(|m| m.client_port).collect(),
            health_ports: Vec::with_capacity(n),
            tls: tls.is_some(),
            data: data.clone(),
        };
        for m in &specs {
            let dir = data.join(m.name);
            let member_tls = match tls {
                Some(t) => Some(MemberTls {
                    metrics_port: free_port()?,
                    ..t.clone()
                }),
                None => None,
            };
            cluster.health_ports.push(
                member_tls
                    .as_ref()
                    .map_or(m.client_port, |t| t.metrics_port),
            );
            let mut command = Command::new(ETCD);
            command.args(member_args_with(
                m,
                &specs,
                &dir,
                also,
                tag,
                member_tls.as_ref(),
            ));
            let proc = BenchProc::spawn(m.name, command, logs.join(format!("{}.log", m.name)))?;
            cluster.members.push(proc);
        }
        let http = crate::lab::bench::scrape::agent();
        let end = Instant::now() + deadline;
        for (i, port) in cluster.health_ports.clone().iter().enumerate() {
            loop {
                if healthy(&http, *port) {
                    break;
                }
                if let Some(m) = cluster.members.get_mut(i) {
                    if !m.running() {
                        return Err(m.failed("exited before it was healthy".into()).into());
                    }
                    if Instant::now() >= end {
                        return Err(m
                            .failed(format!("was not healthy within {deadline:?}"))
                            .into());
                    }
                }
                std::thread::park_timeout(Duration::from_millis(100));
            }
        }
        Ok(cluster)
    }

    /// The members' client URLs as reached at `host` (127.0.0.1, or the host's end of a
    /// namespace's link).
    pub fn endpoints(&self, host: IpAddr) -> Vec<String> {
        let scheme = if self.tls { "https" } else { "http" };
        self.client_ports
            .iter()
            .map(|p| format!("{scheme}://{host}:{p}"))
            .collect()
    }

    /// Fails when a member has died.
    pub fn check(&mut self) -> Result<(), FailoverError> {
        for m in &mut self.members {
            if !m.running() {
                return Err(m.failed("exited during the run".into()).into());
            }
        }
        Ok(())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        // The members first (killed on drop), then their data.
        self.members.clear();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Whether the member on `port` says it is healthy (it has a leader and answers reads).
fn healthy(http: &ureq::Agent, port: u16) -> bool {
    let answer: Result<serde_json::Value, _> = http
        .get(format!("http://127.0.0.1:{port}/health"))
        .call()
        .and_then(|mut r| r.body_mut().read_json());
    answer.is_ok_and(|v| v["health"] == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_listens_where_asked_and_knows_every_peer() {
        let all = vec![
            MemberSpec {
                name: "etcd-0",
                client_port: 2379,
                peer_port: 2380,
            },
            MemberSpec {
                name: "etcd-1",
                client_port: 3379,
                peer_port: 3380,
            },
        ];
        let also = ["10.231.0.1".parse().unwrap()];
        let args = member_args(&all[1], &all, Path::new("/d/etcd-1"), &also, "t1");
        let has = |a: &str| args.iter().any(|x| x == a);
        assert!(has("--name=etcd-1"), "{args:?}");
        assert!(has("--data-dir=/d/etcd-1"), "{args:?}");
        assert!(
            has("--listen-client-urls=http://127.0.0.1:3379,http://10.231.0.1:3379"),
            "{args:?}"
        );
        assert!(has("--advertise-client-urls=http://127.0.0.1:3379"));
        assert!(has("--listen-peer-urls=http://127.0.0.1:3380"));
        assert!(has(
            "--initial-cluster=etcd-0=http://127.0.0.1:2380,etcd-1=http://127.0.0.1:3380"
        ));
        assert!(has("--initial-cluster-state=new"));
        assert!(has("--auto-compaction-retention=5m"));
        assert!(has("--grpc-keepalive-min-time=500ms"));
    }

    /// A real three-member cluster comes up healthy and goes away with its data.
    #[test]
    fn three_members_elect_a_leader_and_leave_nothing_behind() {
        if !Path::new(ETCD).exists() {
            panic!("{ETCD} is missing (ops/test.sh installs etcd-server)");
        }
        let logs = std::env::temp_dir().join(format!("cistern-etcd-unit-{}", std::process::id()));
        std::fs::create_dir_all(&logs).unwrap();
        let tag = format!("unit-{}", std::process::id());
        let cluster = EtcdCluster::start(3, &logs, &[], &tag, Duration::from_secs(30)).unwrap();
        let endpoints = cluster.endpoints("127.0.0.1".parse().unwrap());
        assert_eq!(endpoints.len(), 3);
        let http = crate::lab::bench::scrape::agent();
        for port in &cluster.health_ports {
            assert!(healthy(&http, *port));
        }
        let data = cluster.data.clone();
        assert!(data.is_dir());
        drop(cluster);
        assert!(!data.exists());
        let _ = std::fs::remove_dir_all(&logs);
    }
}
