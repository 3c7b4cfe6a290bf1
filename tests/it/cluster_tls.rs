//! etcd over TLS (issue 24 item 1; `[cluster.etcd_tls]`): a real etcd serving TLS to its clients
//! and peers and asking every client for a certificate of the pilot CA (`--client-cert-auth`),
//! the certificates made by `cistern pki`. A node with the cluster's certificate joins and
//! holds every shard, and `cistern cluster status` reads the cluster through the same TLS; a
//! node whose certificate comes from another CA is refused by etcd (etcd's log says so) and
//! never serves, saying why as it retries; a node given an `https://` endpoint without a CA
//! refuses to start.

use crate::cluster_site::ClusterSite;
use crate::support::{metric, temp_dir, wait_for, Cistern};
use crate::tls::pki;
use cistern::lab::failover::etcd::MemberTls;
use cistern_actors::registry::SHARDS;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `[cluster.etcd_tls]` with `ca` and the client certificate `name` (.pem, .key) of `dir`.
fn etcd_tls(ca: &Path, dir: &Path, name: &str) -> String {
    format!(
        "[cluster.etcd_tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        ca.display().to_string(),
        dir.join(format!("{name}.pem")).display().to_string(),
        dir.join(format!("{name}.key")).display().to_string(),
    )
}

#[test]
fn a_node_reaches_etcd_over_tls_only_with_a_certificate_of_the_clusters_ca() {
    let dir = temp_dir("cluster-tls-pki");
    let (good, rogue) = (dir.join("pki"), dir.join("rogue"));
    let (g, r) = (good.to_str().unwrap(), rogue.to_str().unwrap());
    pki(&["ca", "--dir", g]);
    // etcd's member certificate serves clients and its peers: both usages, 127.0.0.1 in its SAN.
    pki(&[
        "issue",
        "--ca",
        g,
        "--name",
        "etcd-0",
        "--kind",
        "peer",
        "--ip",
        "127.0.0.1",
    ]);
    pki(&["issue", "--ca", g, "--name", "node-a"]);
    pki(&["ca", "--dir", r, "--name", "Rogue CA"]);
    pki(&["issue", "--ca", r, "--name", "node-b"]);
    let member = MemberTls {
        ca: good.join("ca.pem"),
        cert: good.join("etcd-0.pem"),
        key: good.join("etcd-0.key"),
        metrics_port: 0,
    };
    let site = ClusterSite::start_with("etcdtls", 4, &[], Some(&member));
    let ca = good.join("ca.pem");

    // The cluster's certificate: the node leases, claims every shard, is ready.
    let a = site
        .node_with("node-a", None, &etcd_tls(&ca, &good, "node-a"))
        .start();
    let a_http = a.http().to_owned();
    wait_for(
        "node-a holds every shard over TLS",
        Duration::from_secs(30),
        || {
            let owned = metric(&a_http, "cistern_cluster_shards_owned");
            (metric(&a_http, "cistern_cluster_etcd_up") == 1.0 && owned == f64::from(SHARDS))
                .then_some(())
        },
    );
    let not_ready = |base: &str| {
        let (_, report) = crate::support::get(&format!("{base}/readyz"));
        report["not_ready"].as_array().cloned().unwrap_or_default()
    };
    wait_for("node-a ready as a member", Duration::from_secs(10), || {
        (!not_ready(&a_http).contains(&"cluster".into())).then_some(())
    });
    // `cistern cluster status` through the node's own [cluster.etcd_tls].
    let status = Cistern::command(
        "cluster-tls-status",
        [
            "cluster",
            "status",
            "--json",
            "--config",
            site.dir.join("node-a.toml").to_str().unwrap(),
        ],
    )
    .output();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["members"][0]["node"], "node-a", "{report}");
    assert_eq!(report["unowned"], 0, "{report}");

    // A certificate of another CA: etcd refuses the connection (its own log says why); the
    // node says it cannot reach etcd, with the reason, and never serves.
    drop(site.node_with("node-b", None, &etcd_tls(&ca, &rogue, "node-b")));
    let b_log = dir.join("node-b.log");
    let mut b = Command::new(env!("CARGO_BIN_EXE_cistern"))
        .args([
            "run",
            "--config",
            site.dir.join("node-b.toml").to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&b_log).unwrap())
        .spawn()
        .unwrap();
    let refused = wait_for(
        "node-b says it cannot reach etcd",
        Duration::from_secs(20),
        || {
            let log = std::fs::read_to_string(&b_log).unwrap_or_default();
            log.lines()
                .find(|l| l.contains("cannot reach etcd"))
                .map(str::to_owned)
        },
    );
    eprintln!("node-b: {refused}");
    assert_eq!(b.try_wait().unwrap(), None, "node-b keeps trying");
    let _ = b.kill();
    let _ = b.wait();
    let etcd_log = std::fs::read_to_string(site.dir.join("etcd-0.log")).unwrap_or_default();
    let rejected = etcd_log
        .lines()
        .find(|l| l.contains("rejected connection"))
        .unwrap_or_else(|| panic!("etcd logged no rejected connection:\n{etcd_log}"));
    eprintln!("etcd: {rejected}");
    assert!(rejected.contains("unknown authority"), "{rejected}");
    // node-a kept every shard.
    assert_eq!(
        metric(&a_http, "cistern_cluster_shards_owned"),
        f64::from(SHARDS)
    );

    // An https:// endpoint and no CA to check etcd against: refused before anything starts.
    let config = site.dir.join("node-c.toml");
    drop(site.node("node-c", None));
    let c = Cistern::command(
        "cluster-tls-no-ca",
        ["run", "--config", config.to_str().unwrap()],
    )
    .output();
    assert!(!c.status.success());
    let stderr = String::from_utf8_lossy(&c.stderr);
    assert!(stderr.contains("[cluster.etcd_tls] is missing"), "{stderr}");
}
