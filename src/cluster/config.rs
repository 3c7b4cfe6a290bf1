//! `[cluster]`: membership and shard ownership in etcd. Off by default (one node owns every
//! shard); on, the node supervises only the shards it holds a claim on.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[cluster]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// The cluster's name: every key lives under `/cistern/<name>/`.
    pub name: String,
    /// This node's id, unique in the cluster; a node restarting with the same id is welcome.
    pub node_id: String,
    /// This node's data centre.
    pub dc: String,
    /// etcd's client URLs (`http://host:2379`, or `https://host:2379` with `[cluster.etcd_tls]`).
    pub endpoints: Vec<String>,
    /// `[cluster.etcd_tls]`: etcd over TLS, this node proving itself with a client
    /// certificate (etcd started with `--client-cert-auth`; ops/deploy.md).
    pub etcd_tls: Option<EtcdTls>,
    /// This node's HTTP address as the other nodes and the dashboards reach it
    /// (`https://…` when the nodes serve `[http.tls]`).
    pub advertise: String,
    /// The CA the other nodes' HTTPS certificates chain to (requests forwarded between
    /// nodes); without it, only the public roots are trusted.
    pub peer_ca: Option<std::path::PathBuf>,
    /// When set, shards go to the live nodes of this data centre while it has any (an active
    /// data centre and a standby one); otherwise to every live node alike.
    pub prefer_dc: Option<String>,
    /// The lease's time to live: a dead node's shards are claimed again within it.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How often the lease is renewed (a third of the TTL or less).
    #[serde(with = "humantime_serde")]
    pub keepalive_every: Duration,
    /// A node stops acting this long before its lease could expire.
    #[serde(with = "humantime_serde")]
    pub fence_margin: Duration,
    /// Membership must be quiet this long before a shard moves to a node that joined.
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
    /// How long a planned move may take to stop the shard on its old owner.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// How often changed alarm state and snapshots are written to the shard's checkpoint.
    #[serde(with = "humantime_serde")]
    pub checkpoint_every: Duration,
    /// How often the node reads the members and the shards' owners.
    #[serde(with = "humantime_serde")]
    pub poll_every: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            name: "cistern".into(),
            node_id: String::new(),
            dc: "dc1".into(),
            endpoints: vec!["http://127.0.0.1:2379".into()],
            etcd_tls: None,
            advertise: String::new(),
            peer_ca: None,
            prefer_dc: None,
            lease_ttl: Duration::from_secs(3),
            keepalive_every: Duration::from_secs(1),
            fence_margin: Duration::from_millis(500),
            settle: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(3),
            checkpoint_every: Duration::from_millis(250),
            poll_every: Duration::from_millis(200),
        }
    }
}

/// A `[cluster]` section that cannot work.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClusterConfigError {
    #[error("[cluster] node_id is empty: every node needs its own id")]
    NoNodeId,
    #[error("[cluster] node_id {0:?} may hold only letters, digits, '-', '_' and '.'")]
    BadId(String),
    #[error("[cluster] name {0:?} may hold only letters, digits, '-', '_' and '.'")]
    BadName(String),
    #[error("[cluster] endpoints is empty")]
    NoEndpoints,
    #[error("[cluster] lease_ttl must be at least 2 s (etcd's own minimum is about 1.5 election timeouts), not {0:?}")]
    TtlTooShort(Duration),
    #[error(
        "[cluster] keepalive_every ({every:?}) must be at most a third of lease_ttl ({ttl:?})"
    )]
    KeepAliveTooSlow { every: Duration, ttl: Duration },
    #[error("[cluster] fence_margin ({margin:?}) must be shorter than lease_ttl - keepalive_every ({room:?})")]
    MarginTooLong { margin: Duration, room: Duration },
    #[error("[cluster] {0} must not be zero")]
    Zero(&'static str),
    #[error("[cluster] endpoint {0:?} is https:// but [cluster.etcd_tls] is missing: set its `ca` (the CA etcd's certificate chains to)")]
    HttpsWithoutCa(String),
    #[error("[cluster] endpoint {0:?} is plain http:// but [cluster.etcd_tls] is set: use https:// endpoints (a node never falls back to plain text)")]
    PlainWithTls(String),
    #[error("[cluster.etcd_tls] needs both `cert` and `key` (a client certificate and its key), or neither")]
    CertWithoutKey,
    #[error("[cluster.etcd_tls] {what} {path}: {error}")]
    EtcdTlsFile {
        what: &'static str,
        path: PathBuf,
        error: String,
    },
    #[error("this binary was built without clustering: build it with `cargo build --release --features cluster`")]
    NotBuilt,
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl ClusterConfig {
    /// Every problem that would stop the cluster from working, found before anything starts.
    pub fn validate(&self) -> Result<(), ClusterConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if !cfg!(feature = "cluster") {
            return Err(ClusterConfigError::NotBuilt);
        }
        if self.node_id.is_empty() {
            return Err(ClusterConfigError::NoNodeId);
        }
        if !is_id(&self.node_id) {
            return Err(ClusterConfigError::BadId(self.node_id.clone()));
        }
        if !is_id(&self.name) {
            return Err(ClusterConfigError::BadName(self.name.clone()));
        }
        if self.endpoints.is_empty() {
            return Err(ClusterConfigError::NoEndpoints);
        }
        for e in &self.endpoints {
            let https = e.starts_with("https://");
            match (&self.etcd_tls, https) {
                (None, true) => return Err(ClusterConfigError::HttpsWithoutCa(e.clone())),
                (Some(_), false) if e.starts_with("http://") => {
                    return Err(ClusterConfigError::PlainWithTls(e.clone()))
                }
                _ => {}
            }
        }
        if let Some(tls) = &self.etcd_tls {
            if tls.cert.is_some() != tls.key.is_some() {
                return Err(ClusterConfigError::CertWithoutKey);
            }
        }
        if self.lease_ttl < Duration::from_secs(2) {
            return Err(ClusterConfigError::TtlTooShort(self.lease_ttl));
        }
        for (name, d) in [
            ("keepalive_every", self.keepalive_every),
            ("checkpoint_every", self.checkpoint_every),
            ("poll_every", self.poll_every),
            ("drain_timeout", self.drain_timeout),
        ] {
            if d.is_zero() {
                return Err(ClusterConfigError::Zero(name));
            }
        }
        if self.keepalive_every * 3 > self.lease_ttl {
            return Err(ClusterConfigError::KeepAliveTooSlow {
                every: self.keepalive_every,
                ttl: self.lease_ttl,
            });
        }
        let room = self.lease_ttl.saturating_sub(self.keepalive_every);
        if self.fence_margin >= room {
            return Err(ClusterConfigError::MarginTooLong {
                margin: self.fence_margin,
                room,
            });
        }
        Ok(())
    }

    /// Loads `[cluster.etcd_tls]`'s files once, so that a node refuses to start on files it
    /// cannot use rather than failing at every reconnection.
    pub fn check_etcd_tls(&self) -> Result<(), ClusterConfigError> {
        match &self.etcd_tls {
            Some(tls) if self.enabled => tls.load().map(drop),
            _ => Ok(()),
        }
    }

    /// Resolves the TLS files' relative paths against the configuration's directory.
    pub fn resolve_relative_to(&mut self, base: &Path) {
        let mut paths: Vec<&mut PathBuf> = self.peer_ca.iter_mut().collect();
        if let Some(tls) = &mut self.etcd_tls {
            paths.push(&mut tls.ca);
            paths.extend(tls.cert.iter_mut());
            paths.extend(tls.key.iter_mut());
        }
        for path in paths {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Whether a plain (not TLS) endpoint leaves this machine: `cistern run` warns of it.
    pub fn plain_remote_endpoints(&self) -> Vec<&str> {
        if !self.enabled || self.etcd_tls.is_some() {
            return Vec::new();
        }
        self.endpoints
            .iter()
            .map(String::as_str)
            .filter(|e| {
                let host = e.strip_prefix("http://").unwrap_or(e);
                let host = host.split('/').next().unwrap_or(host);
                let host = host
                    .rsplit_once(':')
                    .map_or(host, |(h, _)| h)
                    .trim_matches(['[', ']']);
                !crate::tls::is_loopback_host(host)
            })
            .collect()
    }

    /// The prefix of every key of this cluster.
    pub fn prefix(&self) -> String {
        format!("/cistern/{}/", self.name)
    }
}

/// `[cluster.etcd_tls]`: how a node reaches etcd over TLS.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EtcdTls {
    /// The CA etcd's server certificates chain to (PEM). Only it is trusted for etcd.
    pub ca: PathBuf,
    /// This node's client certificate (PEM), for an etcd that asks for one
    /// (`--client-cert-auth`); its name is the node's etcd user when etcd's auth is on.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, owner-only).
    pub key: Option<PathBuf>,
    /// The name etcd's certificate must carry, when it is not the endpoints' host.
    pub server_name: Option<String>,
}

/// `[cluster.etcd_tls]` read from its files: PEM bytes, checked to hold what they should.
#[derive(Clone, Debug)]
pub struct EtcdTlsFiles {
    pub ca: Vec<u8>,
    /// Certificate and key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    pub server_name: Option<String>,
}

impl EtcdTls {
    /// Reads the files and checks them: a CA with at least one certificate, a certificate
    /// chain and a private key. Read again at every connection, so a renewed certificate is
    /// used from the next reconnection on.
    pub fn load(&self) -> Result<EtcdTlsFiles, ClusterConfigError> {
        let read = |what: &'static str, path: &Path| {
            std::fs::read(path).map_err(|e| ClusterConfigError::EtcdTlsFile {
                what,
                path: path.to_owned(),
                error: e.to_string(),
            })
        };
        let bad = |what: &'static str, path: &Path, error: crate::tls::TlsError| {
            ClusterConfigError::EtcdTlsFile {
                what,
                path: path.to_owned(),
                error: error.to_string(),
            }
        };
        let ca = read("ca", &self.ca)?;
        crate::tls::load_roots(&self.ca).map_err(|e| bad("ca", &self.ca, e))?;
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                crate::tls::load_certs(cert).map_err(|e| bad("cert", cert, e))?;
                crate::tls::load_key(key).map_err(|e| bad("key", key, e))?;
                Some((read("cert", cert)?, read("key", key)?))
            }
            (None, None) => None,
            _ => return Err(ClusterConfigError::CertWithoutKey),
        };
        Ok(EtcdTlsFiles {
            ca,
            identity,
            server_name: self.server_name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> ClusterConfig {
        ClusterConfig {
            enabled: true,
            node_id: "node-a".into(),
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn the_defaults_fail_over_within_five_seconds_and_validate() {
        let c = on();
        if cfg!(feature = "cluster") {
            assert_eq!(c.validate(), Ok(()));
        } else {
            assert_eq!(c.validate(), Err(ClusterConfigError::NotBuilt));
        }
        // A dead node's lease lapses at most one TTL after its last renewal, and etcd checks
        // expiry every 500 ms: what is left of 5 s must cover claiming and starting the rooms.
        assert!(c.lease_ttl + Duration::from_millis(500) + c.poll_every < Duration::from_secs(5));
    }

    #[test]
    fn a_section_that_cannot_work_says_why() {
        if !cfg!(feature = "cluster") {
            return;
        }
        let cases = [
            (
                ClusterConfig {
                    node_id: String::new(),
                    ..on()
                },
                ClusterConfigError::NoNodeId,
            ),
            (
                ClusterConfig {
                    node_id: "a/b".into(),
                    ..on()
                },
                ClusterConfigError::BadId("a/b".into()),
            ),
            (
                ClusterConfig {
                    endpoints: vec![],
                    ..on()
                },
                ClusterConfigError::NoEndpoints,
            ),
            (
                ClusterConfig {
                    lease_ttl: Duration::from_secs(1),
                    ..on()
                },
                ClusterConfigError::TtlTooShort(Duration::from_secs(1)),
            ),
            (
                ClusterConfig {
                    keepalive_every: Duration::from_secs(2),
                    ..on()
                },
                ClusterConfigError::KeepAliveTooSlow {
                    every: Duration::from_secs(2),
                    ttl: Duration::from_secs(3),
                },
            ),
            (
                ClusterConfig {
                    fence_margin: Duration::from_secs(2),
                    ..on()
                },
                ClusterConfigError::MarginTooLong {
                    margin: Duration::from_secs(2),
                    room: Duration::from_secs(2),
                },
            ),
        ];
        for (config, error) in cases {
            assert_eq!(config.validate(), Err(error));
        }
        assert_eq!(
            ClusterConfig::default().validate(),
            Ok(()),
            "off is always valid"
        );
    }

    fn tls(dir: &Path) -> EtcdTls {
        EtcdTls {
            ca: dir.join("ca.pem"),
            cert: Some(dir.join("localhost.pem")),
            key: Some(dir.join("localhost.key")),
            server_name: None,
        }
    }

    #[test]
    fn etcd_over_tls_is_all_or_nothing_and_its_files_are_checked_at_start() {
        if !cfg!(feature = "cluster") {
            return;
        }
        let dir = std::env::temp_dir().join(format!("cistern-etcd-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let https = vec!["https://10.0.0.5:2379".to_owned()];
        // https:// without a CA; http:// with TLS (no silent fall-back); a certificate alone.
        let no_ca = ClusterConfig {
            endpoints: https.clone(),
            ..on()
        };
        assert_eq!(
            no_ca.validate(),
            Err(ClusterConfigError::HttpsWithoutCa(https[0].clone()))
        );
        let plain = ClusterConfig {
            endpoints: vec!["http://10.0.0.5:2379".into()],
            etcd_tls: Some(tls(&dir)),
            ..on()
        };
        assert_eq!(
            plain.validate(),
            Err(ClusterConfigError::PlainWithTls(
                "http://10.0.0.5:2379".into()
            ))
        );
        let half = ClusterConfig {
            endpoints: https.clone(),
            etcd_tls: Some(EtcdTls {
                key: None,
                ..tls(&dir)
            }),
            ..on()
        };
        assert_eq!(half.validate(), Err(ClusterConfigError::CertWithoutKey));
        // Valid, but its files do not exist yet: refused at start, naming the file.
        let good = ClusterConfig {
            endpoints: https,
            etcd_tls: Some(tls(&dir)),
            ..on()
        };
        assert_eq!(good.validate(), Ok(()));
        let missing = good.check_etcd_tls().unwrap_err();
        assert!(missing.to_string().contains("ca.pem"), "{missing}");
        // A key where the CA should be: not a certificate.
        crate::tls::testing::pilot(&dir);
        assert_eq!(good.check_etcd_tls(), Ok(()));
        let swapped = ClusterConfig {
            etcd_tls: Some(EtcdTls {
                ca: dir.join("localhost.key"),
                ..tls(&dir)
            }),
            ..good.clone()
        };
        assert!(matches!(
            swapped.check_etcd_tls(),
            Err(ClusterConfigError::EtcdTlsFile { what: "ca", .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_plain_endpoints_off_this_machine_are_warned_of() {
        let config = ClusterConfig {
            endpoints: vec![
                "http://127.0.0.1:2379".into(),
                "http://localhost:2379".into(),
                "http://[::1]:2379".into(),
                "http://10.1.2.3:2379".into(),
                "etcd-2.dc2:2379".into(),
            ],
            ..on()
        };
        assert_eq!(
            config.plain_remote_endpoints(),
            vec!["http://10.1.2.3:2379", "etcd-2.dc2:2379"]
        );
        let mut relative = ClusterConfig {
            etcd_tls: Some(EtcdTls {
                ca: "pki/ca.pem".into(),
                cert: Some("pki/node-a.pem".into()),
                key: Some("/etc/cistern/node-a.key".into()),
                server_name: None,
            }),
            ..on()
        };
        assert!(relative.plain_remote_endpoints().is_empty());
        relative.resolve_relative_to(Path::new("/etc/cistern"));
        let tls = relative.etcd_tls.unwrap();
        assert_eq!(tls.ca, Path::new("/etc/cistern/pki/ca.pem"));
        assert_eq!(tls.cert.unwrap(), Path::new("/etc/cistern/pki/node-a.pem"));
        assert_eq!(tls.key.unwrap(), Path::new("/etc/cistern/node-a.key"));
    }
}
