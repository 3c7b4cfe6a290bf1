//! `[historian]`: the historian's own knobs as written in the configuration file — how soon
//! samples are durable, how often and how big seal rounds are, how much it holds in memory,
//! and how long each resolution is kept. They were under `[store]` until the store took its
//! own configuration (which backend, where): these say how the historian uses the store, not
//! what the store is.

use super::compact::CompactionConfig;
use super::HistorianConfig;
use crate::store::Retention;
use serde::Deserialize;
use std::time::Duration;

/// `[historian]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistorianSection {
    /// Accepted samples are durable within this interval; MQTT messages are acknowledged then
    /// (alarm state is written behind at the same interval).
    #[serde(with = "humantime_serde")]
    pub flush_every: Duration,
    /// Open chunks are sealed into the store this often...
    #[serde(with = "humantime_serde")]
    pub seal_every: Duration,
    /// ...or as soon as this many samples are open (16 bytes each in memory). Each seal
    /// writes a chunk per point, so a low figure makes many small chunks at fleet scale.
    pub seal_samples: usize,
    /// Past this many samples in memory (the store is down or behind) the historian lets go
    /// of them: they wait in the write-ahead on disk and are drained in order (the spill).
    pub max_open_samples: usize,
    // -- retention per resolution (the compactor applies it about hourly; ScyllaDB as TTLs) --
    /// Raw samples are kept this long.
    #[serde(with = "humantime_serde")]
    pub retention_raw: Duration,
    /// 1-minute rollups are kept this long.
    #[serde(with = "humantime_serde")]
    pub retention_1m: Duration,
    /// 1-hour rollups are kept this long.
    #[serde(with = "humantime_serde")]
    pub retention_1h: Duration,
}

impl Default for HistorianSection {
    fn default() -> Self {
        let d = HistorianConfig::default();
        let r = Retention::default();
        Self {
            flush_every: d.flush_every,
            seal_every: d.seal_every,
            seal_samples: d.seal_samples,
            max_open_samples: d.max_open_samples,
            retention_raw: r.raw,
            retention_1m: r.minute,
            retention_1h: r.hour,
        }
    }
}

/// Why `[historian]` cannot work.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HistorianSectionError {
    #[error(
        "[historian] seal_samples ({seal}) must be at least 1 and at most max_open_samples \
         ({max}): otherwise memory spills to disk before a seal can start"
    )]
    SealAboveSpill { seal: usize, max: usize },
}

impl HistorianSection {
    /// Checks the settings before anything is started.
    pub fn validate(&self) -> Result<(), HistorianSectionError> {
        if self.seal_samples == 0 || self.seal_samples > self.max_open_samples {
            return Err(HistorianSectionError::SealAboveSpill {
                seal: self.seal_samples,
                max: self.max_open_samples,
            });
        }
        Ok(())
    }

    /// How long each series is kept.
    pub fn retention(&self) -> Retention {
        Retention {
            raw: self.retention_raw,
            minute: self.retention_1m,
            hour: self.retention_1h,
        }
    }

    /// The historian's running configuration: these settings, compaction with this retention,
    /// the rest at its defaults.
    pub fn historian_config(&self) -> HistorianConfig {
        HistorianConfig {
            flush_every: self.flush_every,
            seal_every: self.seal_every,
            seal_samples: self.seal_samples,
            max_open_samples: self.max_open_samples,
            compaction: Some(CompactionConfig {
                retention_raw: self.retention_raw,
                retention_1m: self.retention_1m,
                retention_1h: self.retention_1h,
                ..CompactionConfig::default()
            }),
            ..HistorianConfig::default()
        }
    }
}
