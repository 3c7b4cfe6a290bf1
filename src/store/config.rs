//! `[store]`: which backend keeps the data and where. The store owns its configuration so that
//! nothing in `store/` reaches back up to the modules that use it: the historian's own knobs
//! (flush, seal, memory, retention) are `[historian]` (`crate::historian::HistorianSection`),
//! and the only thing the store takes from a caller is how long each series lives
//! ([`Retention`]), which ScyllaDB writes as TTLs when `[store.scylla.ttl]` leaves a series out.

use super::scylla::{ScyllaConfig, ScyllaConfigError};
use super::Series;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[store]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `embedded` (one node, redb files in `data_dir`) or `scylla`.
    pub backend: StoreBackend,
    /// The data directory: the embedded store, and the historian's write-ahead log and disk
    /// spill whatever the backend (relative paths are relative to the configuration file).
    pub data_dir: PathBuf,
    /// `[store.scylla]`: the cluster, when `backend = "scylla"`.
    pub scylla: Option<ScyllaConfig>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Embedded,
            data_dir: PathBuf::from("data"),
            scylla: None,
        }
    }
}

/// Storage backends.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    Embedded,
    /// A ScyllaDB cluster (`[store.scylla]`); the historian's write-ahead stays in `data_dir`.
    Scylla,
}

/// How long each series is kept: the historian's compactor deletes past it (embedded), and
/// ScyllaDB writes it as the TTL of the series `[store.scylla.ttl]` leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub raw: Duration,
    pub minute: Duration,
    pub hour: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw: Duration::from_secs(90 * 86_400),
            minute: Duration::from_secs(2 * 365 * 86_400),
            hour: Duration::from_secs(10 * 365 * 86_400),
        }
    }
}

impl Retention {
    /// The retention of `series`.
    pub fn of(&self, series: Series) -> Duration {
        match series {
            Series::Raw => self.raw,
            Series::Minute => self.minute,
            Series::Hour => self.hour,
        }
    }
}

/// Why `[store]` cannot work (the message names the key).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreConfigError {
    #[error("[store] backend = \"scylla\" needs a [store.scylla] section")]
    NoScyllaSection,
    #[error(transparent)]
    Scylla(#[from] ScyllaConfigError),
}

impl StoreConfig {
    /// Checks the backend's settings before anything is opened, with the retention the node
    /// runs with (the TTLs are checked as they will be written).
    pub fn validate(&self, retention: &Retention) -> Result<(), StoreConfigError> {
        match (self.backend, self.scylla_config(retention)) {
            (StoreBackend::Embedded, _) => Ok(()),
            (StoreBackend::Scylla, None) => Err(StoreConfigError::NoScyllaSection),
            (StoreBackend::Scylla, Some(scylla)) => Ok(scylla.validate()?),
        }
    }

    /// `[store.scylla]` with the TTLs it leaves out taken from `retention`.
    pub fn scylla_config(&self, retention: &Retention) -> Option<ScyllaConfig> {
        let mut scylla = self.scylla.clone()?;
        scylla
            .ttl
            .default_to(retention.raw, retention.minute, retention.hour);
        Some(scylla)
    }

    /// Makes relative paths relative to `base` (the configuration's folder).
    pub fn resolve_relative_to(&mut self, base: &Path) {
        if self.data_dir.is_relative() {
            self.data_dir = base.join(&self.data_dir);
        }
        if let Some(scylla) = &mut self.scylla {
            scylla.resolve_relative_to(base);
        }
    }
}
