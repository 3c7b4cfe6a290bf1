//! `[store.scylla]`: where the cluster is, how to reach it, how much to replicate and how long
//! to keep telemetry. Every key is documented in `ops/scylla/cistern.scylla.toml` (a test
//! parses it); [`ScyllaConfig::validate`] refuses a configuration that cannot work before any
//! connection is tried.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// ScyllaDB's largest TTL (20 years).
pub const MAX_TTL: Duration = Duration::from_secs(630_720_000);

/// `[store.scylla]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScyllaConfig {
    /// Contact points, `host:port` (the driver discovers the other nodes from them).
    pub nodes: Vec<String>,
    /// The data centre this node runs in: requests go to its replicas only (LOCAL_* levels).
    pub local_dc: String,
    /// The keyspace (lower case letters, digits and `_`).
    pub keyspace: String,
    /// Create the keyspace at start-up when it is absent (needs the CREATE permission); when
    /// false it must exist (ops/scylla/keyspace-two-dc.cql).
    pub create_keyspace: bool,
    /// Data centre name → replication factor, for `NetworkTopologyStrategy` when the keyspace
    /// is created. Must name `local_dc`.
    pub replication: BTreeMap<String, u32>,
    pub read_consistency: ConsistencyLevel,
    pub write_consistency: ConsistencyLevel,
    /// Client-side deadline of one request (each page of a read counts as one).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Deadline for the session to come up (contact points, topology, keyspace, migrations).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Rows per page of a read.
    pub page_size: u32,
    /// Writes in flight at once within one call (a flush of many chunks).
    pub max_concurrent_writes: usize,
    /// Credentials (PasswordAuthenticator); both or neither.
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: ScyllaTlsConfig,
    /// Retention per series, as TTLs written with every chunk (default: `[store]` retention).
    pub ttl: ScyllaTtlConfig,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            local_dc: String::new(),
            keyspace: "cistern".into(),
            create_keyspace: true,
            replication: BTreeMap::new(),
            read_consistency: ConsistencyLevel::LocalQuorum,
            write_consistency: ConsistencyLevel::LocalQuorum,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(30),
            page_size: 1000,
            max_concurrent_writes: 256,
            username: None,
            password: None,
            tls: ScyllaTlsConfig::default(),
            ttl: ScyllaTtlConfig::default(),
        }
    }
}

/// `[store.scylla.tls]`
#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ScyllaTlsConfig {
    pub enabled: bool,
    /// PEM file of the CA(s) that signed the nodes' certificates (relative paths are relative
    /// to the configuration file).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) when the cluster requires client authentication.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// `[store.scylla.ttl]`: how long each series is kept in ScyllaDB, as the TTL written with
/// every chunk. A series left out takes the `[store]` retention of its resolution
/// ([`ScyllaTtlConfig::default_to`]); `"0s"` keeps it until deleted.
#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ScyllaTtlConfig {
    #[serde(with = "humantime_serde")]
    pub raw: Option<Duration>,
    #[serde(rename = "1m", with = "humantime_serde")]
    pub minute: Option<Duration>,
    #[serde(rename = "1h", with = "humantime_serde")]
    pub hour: Option<Duration>,
}

impl ScyllaTtlConfig {
    /// The TTL of `series` (none given: none, the rows are kept).
    pub fn of(&self, series: crate::store::Series) -> Duration {
        let ttl = match series {
            crate::store::Series::Raw => self.raw,
            crate::store::Series::Minute => self.minute,
            crate::store::Series::Hour => self.hour,
        };
        ttl.unwrap_or(Duration::ZERO)
    }

    /// Fills the series not given with the store's retention per resolution.
    pub fn default_to(&mut self, raw: Duration, minute: Duration, hour: Duration) {
        self.raw.get_or_insert(raw);
        self.minute.get_or_insert(minute);
        self.hour.get_or_insert(hour);
    }
}

/// CQL consistency levels a deployer may choose.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsistencyLevel {
    Any,
    One,
    Two,
    Three,
    Quorum,
    All,
    LocalOne,
    LocalQuorum,
    EachQuorum,
}

impl ConsistencyLevel {
    pub fn to_driver(self) -> scylla::statement::Consistency {
        use scylla::statement::Consistency as C;
        match self {
            ConsistencyLevel::Any => C::Any,
            ConsistencyLevel::One => C::One,
            ConsistencyLevel::Two => C::Two,
            ConsistencyLevel::Three => C::Three,
            ConsistencyLevel::Quorum => C::Quorum,
            ConsistencyLevel::All => C::All,
            ConsistencyLevel::LocalOne => C::LocalOne,
            ConsistencyLevel::LocalQuorum => C::LocalQuorum,
            ConsistencyLevel::EachQuorum => C::EachQuorum,
        }
    }
}

/// Why `[store.scylla]` cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScyllaConfigError {
    #[error("[store.scylla] nodes is empty: give at least one contact point (host:port)")]
    NoNodes,
    #[error("[store.scylla] nodes: {node:?} is not host:port")]
    BadNode { node: String },
    #[error("[store.scylla] local_dc is empty: name the data centre this node runs in")]
    NoLocalDc,
    #[error("[store.scylla] {key}: {name:?} is not a valid data-centre name (letters, digits, '_', '-', '.')")]
    BadDcName { key: &'static str, name: String },
    #[error("[store.scylla] keyspace {0:?} is invalid: 1 to 48 lower-case letters, digits or '_', starting with a letter")]
    BadKeyspace(String),
    #[error("[store.scylla] replication is empty: give a replication factor per data centre (e.g. dc1 = 3) or set create_keyspace = false")]
    NoReplication,
    #[error("[store.scylla] replication does not name local_dc {0:?}: LOCAL_QUORUM there would have no replicas")]
    LocalDcNotReplicated(String),
    #[error("[store.scylla] replication.{dc} = 0: leave the data centre out instead")]
    ZeroReplication { dc: String },
    #[error("[store.scylla] read_consistency = {0:?} is not a read level (ANY and EACH_QUORUM are for writes)")]
    BadReadConsistency(ConsistencyLevel),
    #[error("[store.scylla] {key} must be more than zero")]
    Zero { key: &'static str },
    #[error("[store.scylla] max_concurrent_writes = {0}: choose 1 to 4096")]
    BadConcurrency(usize),
    #[error("[store.scylla] username and password go together: give both or neither")]
    HalfCredentials,
    #[error(
        "[store.scylla.tls] enabled needs ca_file (the CA that signed the nodes' certificates)"
    )]
    TlsWithoutCa,
    #[error("[store.scylla.tls] cert_file and key_file go together: give both or neither")]
    HalfClientCert,
    #[error("[store.scylla.tls] enabled, but this build of cistern has no TLS support: rebuild with `--features scylla-tls`")]
    TlsNotBuilt,
    #[error(
        "[store.scylla.ttl] {series} = {ttl:?} is longer than ScyllaDB's maximum TTL (20 years)"
    )]
    TtlTooLong { series: &'static str, ttl: Duration },
    #[error("[store.scylla.ttl] {series} = {ttl:?} is not a whole number of seconds")]
    TtlNotSeconds { series: &'static str, ttl: Duration },
}

fn valid_dc(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A keyspace name that needs no quoting in CQL (and so cannot inject any).
pub fn valid_keyspace(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 48
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl ScyllaConfig {
    /// Checks everything that can be checked without a cluster.
    pub fn validate(&self) -> Result<(), ScyllaConfigError> {
        use ScyllaConfigError as E;
        if self.nodes.is_empty() {
            return Err(E::NoNodes);
        }
        for node in &self.nodes {
            let ok = node
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(E::BadNode { node: node.clone() });
            }
        }
        if self.local_dc.is_empty() {
            return Err(E::NoLocalDc);
        }
        if !valid_dc(&self.local_dc) {
            return Err(E::BadDcName {
                key: "local_dc",
                name: self.local_dc.clone(),
            });
        }
        if !valid_keyspace(&self.keyspace) {
            return Err(E::BadKeyspace(self.keyspace.clone()));
        }
        for (dc, rf) in &self.replication {
            if !valid_dc(dc) {
                return Err(E::BadDcName {
                    key: "replication",
                    name: dc.clone(),
                });
            }
            if *rf == 0 {
                return Err(E::ZeroReplication { dc: dc.clone() });
            }
        }
        if self.create_keyspace {
            if self.replication.is_empty() {
                return Err(E::NoReplication);
            }
            if !self.replication.contains_key(&self.local_dc) {
                return Err(E::LocalDcNotReplicated(self.local_dc.clone()));
            }
        }
        if matches!(
            self.read_consistency,
            ConsistencyLevel::Any | ConsistencyLevel::EachQuorum
        ) {
            return Err(E::BadReadConsistency(self.read_consistency));
        }
        if self.request_timeout.is_zero() {
            return Err(E::Zero {
                key: "request_timeout",
            });
        }
        if self.connect_timeout.is_zero() {
            return Err(E::Zero {
                key: "connect_timeout",
            });
        }
        if self.page_size == 0 {
            return Err(E::Zero { key: "page_size" });
        }
        if !(1..=4096).contains(&self.max_concurrent_writes) {
            return Err(E::BadConcurrency(self.max_concurrent_writes));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(E::HalfCredentials);
        }
        if self.tls.enabled {
            if self.tls.ca_file.is_none() {
                return Err(E::TlsWithoutCa);
            }
            if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
                return Err(E::HalfClientCert);
            }
            if !cfg!(feature = "scylla-tls") {
                return Err(E::TlsNotBuilt);
            }
        }
        for series in crate::store::Series::ALL {
            let ttl = self.ttl.of(series);
            if ttl > MAX_TTL {
                return Err(E::TtlTooLong {
                    series: series.as_str(),
                    ttl,
                });
            }
        }
        Ok(())
    }

    /// Makes the TLS files' relative paths relative to `base` (the configuration's folder).
    pub fn resolve_relative_to(&mut self, base: &Path) {
        for path in [
            &mut self.tls.ca_file,
            &mut self.tls.cert_file,
            &mut self.tls.key_file,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }
}
