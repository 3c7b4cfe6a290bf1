//! The configuration file of `cistern run --config FILE`: one TOML file, every key documented
//! in `ops/cistern.example.toml` (a test parses it), unknown keys refused so that a misspelt
//! setting stops start-up instead of being silently ignored.

use crate::historian::HistorianConfig;
use crate::ingest::modbus::ModbusConfig;
use crate::ingest::mqtt::MqttConfig;
use crate::store::scylla::ScyllaConfig;
use cistern_actors::ActorConfig;
use cistern_schemas::inventory::{Inventory, InventoryError};
use cistern_schemas::modbus::{Profile, ProfileError, ProfileSet};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub http: HttpConfig,
    pub inventory: InventoryConfig,
    /// MQTT ingest; absent = no MQTT.
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
    #[serde(default)]
    pub modbus: ModbusConfig,
    #[serde(default)]
    pub profiles: ProfilesConfig,
    #[serde(default)]
    pub actors: ActorsConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub rules: crate::alarms::RulesConfig,
    #[serde(default)]
    pub ws: crate::api::ws::WsConfig,
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
}

/// `[store]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `embedded` (one node, redb files in `data_dir`) or `scylla`.
    pub backend: StoreBackend,
    /// The data directory: the embedded store, and the historian's write-ahead log and disk
    /// spill whatever the backend (relative paths are relative to the configuration file).
    pub data_dir: PathBuf,
    /// Accepted samples are durable within this interval; MQTT messages are acknowledged then.
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
    // -- retention per resolution (the historian's compactor applies it about hourly) --
    /// Raw samples are kept this long.
    #[serde(with = "humantime_serde")]
    pub retention_raw: Duration,
    /// 1-minute rollups are kept this long.
    #[serde(with = "humantime_serde")]
    pub retention_1m: Duration,
    /// 1-hour rollups are kept this long.
    #[serde(with = "humantime_serde")]
    pub retention_1h: Duration,
    /// `[store.scylla]`: the cluster, when `backend = "scylla"`.
    pub scylla: Option<ScyllaConfig>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Embedded,
            data_dir: PathBuf::from("data"),
            flush_every: Duration::from_millis(250),
            seal_every: Duration::from_secs(120),
            seal_samples: HistorianConfig::default().seal_samples,
            max_open_samples: HistorianConfig::default().max_open_samples,
            retention_raw: Duration::from_secs(90 * 86_400),
            retention_1m: Duration::from_secs(2 * 365 * 86_400),
            retention_1h: Duration::from_secs(10 * 365 * 86_400),
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

impl StoreConfig {
    /// Checks the backend's settings before anything is opened.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.seal_samples == 0 || self.seal_samples > self.max_open_samples {
            return Err(ConfigError::Store(format!(
                "[store] seal_samples ({}) must be at least 1 and at most max_open_samples ({}): \
                 otherwise memory spills to disk before a seal can start",
                self.seal_samples, self.max_open_samples
            )));
        }
        match (self.backend, &self.scylla) {
            (StoreBackend::Embedded, _) => Ok(()),
            (StoreBackend::Scylla, None) => Err(ConfigError::Store(
                "[store] backend = \"scylla\" needs a [store.scylla] section".into(),
            )),
            (StoreBackend::Scylla, Some(_)) => self
                .scylla_config()
                .map_or(Ok(()), |scylla| scylla.validate())
                .map_err(|e| ConfigError::Store(e.to_string())),
        }
    }

    /// `[store.scylla]` with the TTLs it leaves out taken from the retention per resolution.
    pub fn scylla_config(&self) -> Option<ScyllaConfig> {
        let mut scylla = self.scylla.clone()?;
        scylla
            .ttl
            .default_to(self.retention_raw, self.retention_1m, self.retention_1h);
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

/// `[http]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub workers: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 2,
        }
    }
}

/// `[inventory]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InventoryConfig {
    /// The site inventory (relative paths are relative to the configuration file).
    pub file: PathBuf,
}

/// `[profiles]`
#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ProfilesConfig {
    /// A directory of extra Modbus register maps (`*.toml`), added to the built-in ones.
    pub dir: Option<PathBuf>,
}

/// `[actors]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ActorsConfig {
    /// A room whose gateway sent nothing for this long is offline.
    #[serde(with = "humantime_serde")]
    pub offline_after: Duration,
    /// A point not updated for this many expected periods is stale.
    pub stale_periods: u32,
    /// How often actors check their points for staleness.
    #[serde(with = "humantime_serde")]
    pub sweep_every: Duration,
    /// Mailbox capacity of each actor.
    pub mailbox: usize,
    /// Threads the actors run on (0 = one per core).
    pub threads: usize,
    /// A sample stamped further ahead of the node's clock is refused (a gateway clock running
    /// fast must not pin live state).
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// `/readyz` fails (`ingest_lag`) while the samples applied are this far behind.
    #[serde(with = "humantime_serde")]
    pub max_ingest_lag: Duration,
}

impl Default for ActorsConfig {
    fn default() -> Self {
        let d = ActorConfig::default();
        Self {
            offline_after: d.offline_after,
            stale_periods: d.stale_periods,
            sweep_every: d.sweep_every,
            mailbox: d.mailbox,
            threads: 0,
            max_future_skew: d.max_future_skew,
            max_ingest_lag: d.max_ingest_lag,
        }
    }
}

impl ActorsConfig {
    pub fn actor_config(&self) -> ActorConfig {
        ActorConfig {
            offline_after: self.offline_after,
            stale_periods: self.stale_periods.max(1),
            sweep_every: self.sweep_every.max(Duration::from_millis(100)),
            mailbox: self.mailbox.max(16),
            max_future_skew: self.max_future_skew,
            max_ingest_lag: self.max_ingest_lag.max(Duration::from_secs(1)),
        }
    }

    pub fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        }
    }
}

/// `[log]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info,cistern::ingest=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: DEFAULT_LOG_FILTER.into(),
        }
    }
}

/// The log filter when nothing else is said: the brokers' own chatter is kept down.
pub const DEFAULT_LOG_FILTER: &str = "info,rumqttd=warn,rumqttc=warn,actix_server=warn";

/// Log line format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("configuration {path} is invalid: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// `[store]` cannot work (the message names the key).
    #[error("{0}")]
    Store(String),
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Self::from_toml(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        if config.inventory.file.is_relative() {
            config.inventory.file = base.join(&config.inventory.file);
        }
        config.store.resolve_relative_to(base);
        config.store.validate()?;
        config.rules.resolve_relative_to(base);
        if let Some(dir) = &mut config.profiles.dir {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        Ok(config)
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: origin.to_owned(),
            source: Box::new(source),
        })
    }

    pub fn load_inventory(&self) -> Result<Inventory, ConfigError> {
        Ok(Inventory::load(&self.inventory.file)?)
    }

    /// The built-in register maps plus those of `[profiles] dir`.
    pub fn load_profiles(&self) -> Result<ProfileSet, ConfigError> {
        let mut set = builtin_profiles()?;
        if let Some(dir) = &self.profiles.dir {
            let extra = ProfileSet::load_dir(dir)?;
            for name in extra.names() {
                set.insert(Profile::clone(extra.get(name)?))?;
            }
        }
        Ok(set)
    }
}

/// The vendor register maps shipped in `schemas/profiles/`, compiled into the binary so that
/// the demo and a fresh install need no files beside it.
pub fn builtin_profiles() -> Result<ProfileSet, ProfileError> {
    let mut set = ProfileSet::default();
    for (name, text) in [
        (
            "hydrotek-hc300.toml",
            include_str!("../schemas/profiles/hydrotek-hc300.toml"),
        ),
        (
            "aquaflow-ps2.toml",
            include_str!("../schemas/profiles/aquaflow-ps2.toml"),
        ),
    ] {
        set.insert(Profile::from_toml(text, name)?)?;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses_and_documents_every_section() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/cistern.example.toml");
        let config = Config::load(&path).unwrap();
        assert!(config.mqtt.is_some());
        assert_eq!(config.log.format, LogFormat::Human);
        let inventory = config.load_inventory().unwrap();
        assert_eq!(inventory.rooms.len(), 20);
        config.load_profiles().unwrap();
        assert!(
            config.rules.directory().is_some(),
            "the example points at rules/library"
        );
        assert_eq!(
            config.rules.engine,
            cistern_rules::EngineConfig::default(),
            "the example documents the defaults"
        );
        assert_eq!(
            config.auth,
            crate::auth::AuthConfig::default(),
            "the example documents the defaults of [auth]"
        );
        let store = StoreConfig {
            data_dir: config.store.data_dir.clone(),
            ..StoreConfig::default()
        };
        assert_eq!(
            config.store, store,
            "the example documents the defaults of [store]"
        );
    }

    #[test]
    fn historian_memory_settings_are_read_and_checked() {
        let config = Config::from_toml(
            "[inventory]\nfile = \"x\"\n[store]\nseal_samples = 1000\nmax_open_samples = 5000\n",
            "test",
        )
        .unwrap();
        assert_eq!(
            (config.store.seal_samples, config.store.max_open_samples),
            (1000, 5000)
        );
        config.store.validate().unwrap();
        for (seal, max) in [(0, 5000), (6000, 5000)] {
            let store = StoreConfig {
                seal_samples: seal,
                max_open_samples: max,
                ..StoreConfig::default()
            };
            let err = store.validate().unwrap_err().to_string();
            assert!(err.contains("seal_samples"), "{err}");
        }
    }

    #[test]
    fn a_misspelt_key_stops_start_up() {
        let err = Config::from_toml(
            "[inventory]\nfile = \"x\"\n[actors]\nofline_after = \"1m\"\n",
            "test",
        )
        .unwrap_err();
        assert!(err.to_string().contains("ofline_after"), "{err}");
        let err = Config::from_toml(
            "[inventory]\nfile = \"x\"\n[actors]\noffline_after = \"soon\"\n",
            "test",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("offline_after") || err.to_string().contains("soon"),
            "{err}"
        );
    }

    #[test]
    fn builtin_profiles_load() {
        builtin_profiles().unwrap();
    }
}
