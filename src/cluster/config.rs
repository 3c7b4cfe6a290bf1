//! `[cluster]`: membership and shard ownership in etcd. Off by default (one node owns every
//! shard); on, the node supervises only the shards it holds a claim on.

use serde::Deserialize;
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
    /// etcd's client URLs (`http://host:2379`).
    pub endpoints: Vec<String>,
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

    /// The prefix of every key of this cluster.
    pub fn prefix(&self) -> String {
        format!("/cistern/{}/", self.name)
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
}
