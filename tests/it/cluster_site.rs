//! What the cluster tests share: a real etcd (one member), a real mosquitto, an inventory, and
//! `cistern run` nodes in cluster mode on them, each with its own port and data directory.

use crate::support::{free_port, temp_dir, Cistern, Mosquitto};
use cistern::lab::failover::etcd::{EtcdCluster, MemberTls};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// etcd, the broker and the inventory of one test's cluster.
pub struct ClusterSite {
    pub dir: PathBuf,
    pub broker: Mosquitto,
    /// `[cluster] name`.
    name: String,
    /// The etcd endpoints as TOML strings.
    endpoints: Vec<String>,
    _etcd: EtcdCluster,
}

impl ClusterSite {
    /// Starts etcd and mosquitto and writes `cistern inventory --rooms N` (and `extra`
    /// arguments) for cluster `name`.
    pub fn start(name: &str, rooms: usize, extra: &[&str]) -> Self {
        Self::start_with(name, rooms, extra, None)
    }

    /// As [`ClusterSite::start`], etcd serving TLS with `tls` and asking every client for a
    /// certificate; the nodes' endpoints are `https://`.
    pub fn start_with(name: &str, rooms: usize, extra: &[&str], tls: Option<&MemberTls>) -> Self {
        let dir = temp_dir(&format!("cluster-{name}"));
        // The broker first: it makes its directory afresh, which is also the site's (etcd's
        // log goes there).
        let broker = Mosquitto::start(&format!("cluster-{name}"));
        let etcd = EtcdCluster::start_with(1, &dir, &[], name, Duration::from_secs(30), tls)
            .expect("etcd starts");
        let endpoints = etcd
            .endpoints("127.0.0.1".parse().unwrap())
            .iter()
            .map(|e| format!("{e:?}"))
            .collect();
        let rooms = rooms.to_string();
        let mut args = vec!["inventory", "--rooms", rooms.as_str()];
        args.extend_from_slice(extra);
        let inventory = Cistern::command(&format!("cluster-{name}-inventory"), args).output();
        assert!(inventory.status.success());
        std::fs::write(dir.join("inventory.toml"), &inventory.stdout).unwrap();
        Self {
            dir,
            broker,
            name: name.to_owned(),
            endpoints,
            _etcd: etcd,
        }
    }

    /// `cistern run` for node `id` of the cluster (not started), its configuration written
    /// with `rules` as its rule directory when given.
    pub fn node(&self, id: &str, rules: Option<&Path>) -> Cistern {
        self.node_with(id, rules, "")
    }

    /// As [`ClusterSite::node`], with `extra` sections appended to its configuration.
    pub fn node_with(&self, id: &str, rules: Option<&Path>, extra: &str) -> Cistern {
        let port = free_port();
        let config = self.dir.join(format!("{id}.toml"));
        let rules = rules
            .map(|r| {
                format!(
                    "[rules]\ndir = {:?}\nhot_reload = false\n",
                    r.display().to_string()
                )
            })
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "[http]\nlisten = \"127.0.0.1:{port}\"\n\
                 [inventory]\nfile = \"inventory.toml\"\n\
                 [mqtt]\nhost = \"127.0.0.1\"\nport = {mqtt}\nclient_id = \"unused-{id}\"\n\
                 [store]\ndata_dir = \"data-{id}\"\n\
                 {rules}\
                 [cluster]\nenabled = true\nname = \"{name}\"\nnode_id = \"{id}\"\n\
                 endpoints = [{endpoints}]\nadvertise = \"http://127.0.0.1:{port}\"\n{extra}",
                mqtt = self.broker.addr.port(),
                name = self.name,
                endpoints = self.endpoints.join(", "),
            ),
        )
        .unwrap();
        Cistern::run(&format!("cluster-{}-{id}", self.name), &config)
    }
}
