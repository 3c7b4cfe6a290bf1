//! `cistern cluster status`: the cluster as etcd holds it — members with their leases' time to
//! live, shards per node with their epochs, unowned shards — read straight from etcd, so it
//! answers even when no node does.

use super::checkpoint::Keys;
use super::ClusterConfig;
use cistern_actors::registry::SHARDS;
use etcd_client::{GetOptions, LeaseTimeToLiveOptions};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// A member as etcd shows it.
#[derive(Clone, Debug, Serialize)]
pub struct MemberRow {
    pub node: String,
    pub dc: String,
    pub http: String,
    pub lease: i64,
    /// Seconds the lease has left (its age is TTL − this).
    pub ttl_left_s: i64,
    pub granted_ttl_s: i64,
    pub shards: Vec<u32>,
}

/// A shard's owner.
#[derive(Clone, Debug, Serialize)]
pub struct ShardRow {
    pub shard: u32,
    pub owner: Option<String>,
    pub epoch: Option<i64>,
}

/// The whole cluster.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cluster: String,
    pub members: Vec<MemberRow>,
    pub shards: Vec<ShardRow>,
    pub unowned: usize,
    pub etcd_revision: i64,
}

/// Reads the cluster `config.name` from etcd at `config.endpoints` (over TLS with
/// `[cluster.etcd_tls]`).
pub async fn read(config: &ClusterConfig) -> Result<Report, etcd_client::Error> {
    let how = super::etcd::Connect {
        connect_timeout: Duration::from_secs(2),
        ..super::etcd::Connect::requests(Some(Duration::from_secs(2)))
    };
    let mut client = super::etcd::connect(config, how).await?;
    let keys = Keys::new(config.prefix());
    let nodes = client
        .get(keys.nodes(), Some(GetOptions::new().with_prefix()))
        .await?;
    let owners = client
        .get(keys.owners(), Some(GetOptions::new().with_prefix()))
        .await?;
    let revision = owners.header().map_or(0, |h| h.revision());
    let mut by_shard: BTreeMap<u32, (String, i64)> = BTreeMap::new();
    for kv in owners.kvs() {
        let Some(shard) = keys.owner_shard(kv.key()) else {
            continue;
        };
        let node = serde_json::from_slice::<serde_json::Value>(kv.value())
            .ok()
            .and_then(|v| v.get("node")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        by_shard.insert(shard, (node, kv.create_revision()));
    }
    let mut members = Vec::new();
    for kv in nodes.kvs() {
        let v: serde_json::Value = serde_json::from_slice(kv.value()).unwrap_or_default();
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
        let node = field("node");
        let ttl = client
            .lease_time_to_live(kv.lease(), None::<LeaseTimeToLiveOptions>)
            .await?;
        members.push(MemberRow {
            shards: by_shard
                .iter()
                .filter(|(_, (n, _))| *n == node)
                .map(|(s, _)| *s)
                .collect(),
            node,
            dc: field("dc"),
            http: field("http"),
            lease: kv.lease(),
            ttl_left_s: ttl.ttl(),
            granted_ttl_s: ttl.granted_ttl(),
        });
    }
    let shards: Vec<ShardRow> = (0..SHARDS)
        .map(|s| ShardRow {
            shard: s,
            owner: by_shard.get(&s).map(|(n, _)| n.clone()),
            epoch: by_shard.get(&s).map(|(_, e)| *e),
        })
        .collect();
    Ok(Report {
        cluster: config.name.clone(),
        unowned: shards.iter().filter(|s| s.owner.is_none()).count(),
        members,
        shards,
        etcd_revision: revision,
    })
}

/// The report as text: members, then shards per owner.
pub fn render(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {}: {} members, {} of {SHARDS} shards owned, etcd revision {}",
        report.cluster,
        report.members.len(),
        SHARDS as usize - report.unowned,
        report.etcd_revision
    );
    let _ = writeln!(
        out,
        "{:<16} {:<8} {:>6} {:>10} {:<28} shards",
        "node", "dc", "owned", "lease ttl", "http"
    );
    for m in &report.members {
        let list: Vec<String> = m.shards.iter().map(|s| format!("{s:02}")).collect();
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:>6} {:>7}/{:<2} {:<28} {}",
            m.node,
            m.dc,
            m.shards.len(),
            m.ttl_left_s,
            m.granted_ttl_s,
            m.http,
            list.join(" ")
        );
    }
    if report.unowned > 0 {
        let list: Vec<String> = (report.shards.iter())
            .filter(|s| s.owner.is_none())
            .map(|s| format!("{:02}", s.shard))
            .collect();
        let _ = writeln!(out, "unowned: {}", list.join(" "));
    }
    let _ = writeln!(out, "epochs: {}", {
        let e: Vec<String> = (report.shards.iter())
            .filter_map(|s| s.epoch.map(|e| format!("{:02}={e}", s.shard)))
            .collect();
        e.join(" ")
    });
    out
}
