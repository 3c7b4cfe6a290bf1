//! Failover clustering (`[cluster]`): shards of rooms leased in etcd, so that a node's rooms
//! are supervised again by another node within seconds of its death, never by two at once.
//!
//! - [`config`]: `[cluster]`, validated before anything starts.
//! - [`assign`]: which live node should own each shard (rendezvous hashing, DC preference).
//! - [`gate`]: may the node act for a shard now (epoch + self-fencing deadline), lock-free.
//! - [`journal`]: the node's ownership journal, proof of who acted when.
//! - [`metrics`](mod@metrics): the `cistern_cluster_*` series.
//! - [`peer`]: HTTP calls from one node to another (forwarded requests, fleet-wide lists).
//! - feature `cluster` (links etcd): [`agent`] (lease, claims, moves, fencing),
//!   [`checkpoint`] (alarm state and snapshots per shard in etcd, writes fenced by the
//!   epoch), [`etcd`] (the node's etcd clients, TLS), [`mirror`] (every room's live state on every node, over the broker), [`status`]
//!   (`cistern cluster status`), [`identity`] (users, tokens and sessions shared through etcd;
//!   the service token).
//!
//! Why etcd and not our own protocol: ownership must be decided by a consensus that survives
//! the loss of a data centre; etcd's Raft, leases and transactions are that, proven. The
//! node adds no failure detector of its own: a lease that is not renewed is the only signal.

pub mod assign;
pub mod config;
pub mod gate;
pub mod journal;
pub mod metrics;
pub mod peer;

#[cfg(feature = "cluster")]
pub mod agent;
#[cfg(feature = "cluster")]
pub mod checkpoint;
#[cfg(feature = "cluster")]
pub mod etcd;
#[cfg(feature = "cluster")]
pub mod identity;
#[cfg(feature = "cluster")]
pub mod mirror;
#[cfg(feature = "cluster")]
pub mod status;
#[cfg(test)]
#[cfg(feature = "cluster")]
mod tests;

pub use config::{ClusterConfig, ClusterConfigError};
pub use gate::{Epoch, Gate};

/// Another live member of the cluster, as the API reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub node: String,
    /// Its advertised HTTP base (`http://host:port`).
    pub http: String,
}

/// What the API and readiness read of the node's cluster member.
pub trait ClusterView: Send + Sync + std::fmt::Debug + 'static {
    /// The node's view (`GET /api/v1/cluster`).
    fn status_json(&self) -> serde_json::Value;
    /// Whether the node holds a live lease.
    fn ready(&self) -> bool;
    /// Whether this node acts for `shard` now (it holds the claim and its gate is open).
    fn acts_for(&self, _shard: u32) -> bool {
        true
    }
    /// The advertised HTTP base (`http://host:port`) of the other live node that holds
    /// `shard`'s claim. None: this node holds it, or no live node does.
    fn owner_http(&self, _shard: u32) -> Option<String> {
        None
    }
    /// The advertised HTTP bases of the other live members.
    fn peers_http(&self) -> Vec<String> {
        Vec::new()
    }
    /// This node's id (empty outside a cluster).
    fn node_id(&self) -> String {
        String::new()
    }
    /// The other live node that holds `shard`'s claim (as [`ClusterView::owner_http`], with
    /// its id).
    fn owner(&self, _shard: u32) -> Option<Peer> {
        None
    }
    /// The other live members (as [`ClusterView::peers_http`], with their ids).
    fn peers(&self) -> Vec<Peer> {
        Vec::new()
    }
    /// Counts a request sent on (or not) to the node that acts for its room.
    fn count_forward(&self, _result: peer::Forwarded) {}
    /// The bearer token every node of the cluster accepts for node-to-node calls (viewer
    /// rights), shared through etcd. None: not known yet.
    fn service_token(&self) -> Option<String> {
        None
    }
}
