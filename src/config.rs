//! The configuration file of `cistern run --config FILE`: one TOML file, every key documented
//! in `ops/cistern.example.toml` (a test parses it), unknown keys refused so that a misspelt
//! setting stops start-up instead of being silently ignored.

use crate::api::basemap::Basemap;
use crate::historian::{HistorianSection, HistorianSectionError};
use crate::ingest::modbus::ModbusConfig;
use crate::ingest::mqtt::MqttConfig;
use crate::store::StoreConfigError;
pub use crate::store::{StoreBackend, StoreConfig};
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
    /// `[store]`: the backend and where it keeps its data (owned by `crate::store`).
    #[serde(default)]
    pub store: StoreConfig,
    /// `[historian]`: flush, seal, memory and retention of the historian.
    #[serde(default)]
    pub historian: HistorianSection,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub rules: crate::alarms::RulesConfig,
    #[serde(default)]
    pub ws: crate::api::ws::WsConfig,
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    /// `[workorders]`: templates, teams, rosters and targets (owned by
    /// `crate::business::workorders`).
    #[serde(default)]
    pub workorders: crate::business::workorders::WorkOrdersConfig,
    /// `[cleaning]`: tank-cleaning intervals, orders and reminders (owned by
    /// `crate::business::assets::cleaning`).
    #[serde(default)]
    pub cleaning: crate::business::assets::cleaning::CleaningConfig,
    /// `[notify]`: channels, recipients and their preferences (owned by `crate::notify`).
    #[serde(default)]
    pub notify: crate::notify::NotifyConfig,
    /// `[lifecycle]`: parts' duty, preventive lead time and costs (owned by
    /// `crate::business::assets::lifecycle`).
    #[serde(default)]
    pub lifecycle: crate::business::assets::lifecycle::LifecycleConfig,
    /// `[analysis]`: day boundary, energy, leakage and score settings (owned by
    /// `crate::business::analysis`).
    #[serde(default)]
    pub analysis: crate::business::analysis::AnalysisConfig,
    /// `[cluster]`: failover clustering over etcd (owned by `crate::cluster`); off: this node
    /// owns every shard.
    #[serde(default)]
    pub cluster: crate::cluster::ClusterConfig,
    /// `[backup]`: scheduled backups (owned by `crate::backup`).
    #[serde(default)]
    pub backup: crate::backup::BackupConfig,
    /// `[audit]`: retention and forwarding of the audit log (owned by `crate::auth::audit`).
    #[serde(default)]
    pub audit: crate::auth::audit_config::AuditConfig,
}

/// `[http]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub workers: usize,
    /// `[http.tls]`: HTTPS with this certificate (reloaded when its files change). Without
    /// it the API and UI are plain HTTP, which `cistern run` warns about on any listener
    /// that is not loopback.
    pub tls: Option<crate::tls::ServerTlsConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 2,
            tls: None,
        }
    }
}

/// `[inventory]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InventoryConfig {
    /// The site inventory (relative paths are relative to the configuration file).
    pub file: PathBuf,
    /// The site's base map for the fleet map: district boundaries and coastline as GeoJSON
    /// (see ops/maps/README.md). None: the map draws the rooms on a plain graticule.
    #[serde(default)]
    pub basemap: Option<PathBuf>,
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
    #[error(transparent)]
    Store(#[from] StoreConfigError),
    /// `[historian]` cannot work (the message names the key).
    #[error(transparent)]
    Historian(#[from] HistorianSectionError),
    /// A configuration written before the historian's knobs left `[store]`.
    #[error("configuration {path}: [store] {key} has moved to [historian] (the store section now says only which backend and where)")]
    MovedToHistorian { path: String, key: &'static str },
    #[error("base map {path} ([inventory] basemap) cannot be used: {reason}")]
    Basemap { path: String, reason: String },
    /// `[notify]` cannot work (the message names the channel or user).
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterConfigError),
    /// `[auth]` cannot work (the message names the key).
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthConfigError),
    /// `[backup]` cannot work (the message names the key).
    #[error(transparent)]
    Backup(#[from] crate::backup::schedule::BackupConfigError),
    /// `[audit]` cannot work (the message names the key).
    #[error(transparent)]
    Audit(#[from] crate::auth::audit_config::AuditConfigError),
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let config = Self::from_toml(&text, &path.display().to_string())?;
        config.resolve(path.parent().unwrap_or(Path::new(".")))
    }

    /// What [`Config::load`] does after parsing: relative paths resolved against `base` (the
    /// file's directory) and every section's checks. Public for the config fuzz target
    /// (fuzz/), which runs exactly what start-up runs on a file's text.
    #[doc(hidden)]
    pub fn resolve(mut self, base: &Path) -> Result<Self, ConfigError> {
        let config = &mut self;
        if config.inventory.file.is_relative() {
            config.inventory.file = base.join(&config.inventory.file);
        }
        if let Some(map) = &mut config.inventory.basemap {
            if map.is_relative() {
                *map = base.join(&*map);
            }
        }
        config.store.resolve_relative_to(base);
        if let Some(tls) = &mut config.http.tls {
            tls.resolve_relative_to(base);
        }
        if let Some(tls) = config.mqtt.as_mut().and_then(|m| m.tls.as_mut()) {
            tls.resolve_relative_to(base);
        }
        for channel in &mut config.notify.channels {
            if let Some(ca) = channel.ca.as_mut().filter(|ca| ca.is_relative()) {
                *ca = base.join(&*ca);
            }
        }
        config.cluster.resolve_relative_to(base);
        config.historian.validate()?;
        config.store.validate(&config.historian.retention())?;
        config.rules.resolve_relative_to(base);
        if let Some(legacy) = config.rules.webhook.take() {
            config.notify.adopt_rules_webhook(&legacy);
        }
        config.notify.validate()?;
        config.cluster.validate()?;
        config.auth.validate()?;
        config.backup.resolve_relative_to(base);
        config.backup.validate()?;
        config.audit.validate()?;
        if let Some(dir) = &mut config.profiles.dir {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        Ok(self)
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| match moved_to_historian(text) {
            Some(key) => ConfigError::MovedToHistorian {
                path: origin.to_owned(),
                key,
            },
            None => ConfigError::Parse {
                path: origin.to_owned(),
                source: Box::new(source),
            },
        })
    }

    pub fn load_inventory(&self) -> Result<Inventory, ConfigError> {
        Ok(Inventory::load(&self.inventory.file)?)
    }

    /// The base map named by `[inventory] basemap`, read and checked (none when unnamed).
    pub fn load_basemap(&self) -> Result<Option<Basemap>, ConfigError> {
        let Some(path) = &self.inventory.basemap else {
            return Ok(None);
        };
        let fail = |reason: String| ConfigError::Basemap {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Basemap::parse(&text)
            .map(Some)
            .map_err(|e| fail(e.to_string()))
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

/// Keys that were `[store]`'s until the historian got a section of its own.
const MOVED_TO_HISTORIAN: [&str; 7] = [
    "flush_every",
    "seal_every",
    "seal_samples",
    "max_open_samples",
    "retention_raw",
    "retention_1m",
    "retention_1h",
];

/// The first of [`MOVED_TO_HISTORIAN`] a configuration still has under `[store]`.
fn moved_to_historian(text: &str) -> Option<&'static str> {
    let table: toml::Table = text.parse().ok()?;
    let store = table.get("store")?.as_table()?;
    MOVED_TO_HISTORIAN
        .into_iter()
        .find(|key| store.contains_key(*key))
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
        assert_eq!(
            config.audit,
            crate::auth::audit_config::AuditConfig::default(),
            "the example documents the defaults of [audit]"
        );
        assert_eq!(
            config.lifecycle,
            crate::business::assets::lifecycle::LifecycleConfig::default(),
            "the example documents the defaults of [lifecycle]"
        );
        let orders = &config.workorders;
        assert_eq!(
            orders.sla,
            crate::business::workorders::Sla::default(),
            "the example documents the default targets"
        );
        crate::business::workorders::teams::Roster::new(
            orders.teams.clone(),
            orders.utc_offset_minutes,
            &orders.holidays,
        )
        .unwrap();
        assert!(orders
            .teams
            .iter()
            .flat_map(|t| &t.zones)
            .all(|z| inventory.zones.iter().any(|iz| &iz.id == z)));
        assert_eq!(
            config.cleaning,
            crate::business::assets::cleaning::CleaningConfig::default(),
            "the example documents the defaults of [cleaning]"
        );
        assert_eq!(
            config.analysis,
            crate::business::analysis::AnalysisConfig::default(),
            "the example documents the defaults of [analysis]"
        );
        config.notify.validate().unwrap();
        assert_eq!(
            config.notify.channels.len(),
            4,
            "one channel of each kind but webhook"
        );
        assert_eq!(
            (
                config.notify.attempts,
                config.notify.backoff,
                config.notify.dedupe_window,
                config.notify.utc_offset_minutes
            ),
            {
                let d = crate::notify::NotifyConfig::default();
                (d.attempts, d.backoff, d.dedupe_window, d.utc_offset_minutes)
            },
            "the example documents the defaults of [notify]"
        );
        assert!(
            config.notify.users.iter().all(|u| orders
                .teams
                .iter()
                .any(|t| t.lead == u.name || t.members.iter().any(|m| m.user == u.name))),
            "the example's notified users are the example's team"
        );
        let store = StoreConfig {
            data_dir: config.store.data_dir.clone(),
            ..StoreConfig::default()
        };
        assert_eq!(
            config.store, store,
            "the example documents the defaults of [store]"
        );
        assert_eq!(
            config.historian,
            HistorianSection::default(),
            "the example documents the defaults of [historian]"
        );
        assert_eq!(
            config.backup,
            crate::backup::BackupConfig::default(),
            "the example documents the defaults of [backup]"
        );
    }

    #[test]
    fn historian_memory_settings_are_read_and_checked() {
        let config = Config::from_toml(
            "[inventory]\nfile = \"x\"\n[historian]\nseal_samples = 1000\nmax_open_samples = 5000\n",
            "test",
        )
        .unwrap();
        assert_eq!(
            (
                config.historian.seal_samples,
                config.historian.max_open_samples
            ),
            (1000, 5000)
        );
        config.historian.validate().unwrap();
        for (seal, max) in [(0, 5000), (6000, 5000)] {
            let historian = HistorianSection {
                seal_samples: seal,
                max_open_samples: max,
                ..HistorianSection::default()
            };
            let err = historian.validate().unwrap_err().to_string();
            assert!(err.contains("[historian] seal_samples"), "{err}");
        }
    }

    /// The historian's knobs left `[store]` for `[historian]`: under `[store]` they stop
    /// start-up with an error saying where they went (a setting silently ignored would run the
    /// node on defaults), and `[store]` takes only what the store itself is.
    #[test]
    fn historian_keys_belong_to_historian_not_store() {
        for key in [
            "flush_every = \"1s\"",
            "seal_every = \"1m\"",
            "seal_samples = 10",
            "max_open_samples = 10",
            "retention_raw = \"1d\"",
            "retention_1m = \"1d\"",
            "retention_1h = \"1d\"",
        ] {
            let err = Config::from_toml(
                &format!("[inventory]\nfile = \"x\"\n[store]\n{key}\n"),
                "test",
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("has moved to [historian]")
                    && err.contains(key.split(' ').next().unwrap()),
                "{key}: {err}"
            );
            let config = Config::from_toml(
                &format!("[inventory]\nfile = \"x\"\n[historian]\n{key}\n"),
                "test",
            )
            .unwrap();
            assert_ne!(config.historian, HistorianSection::default(), "{key}");
        }
        // Any other unknown key of [store] is the parser's plain error.
        let err = Config::from_toml(
            "[inventory]\nfile = \"x\"\n[store]\nbackedn = \"embedded\"\n",
            "test",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("backedn") && !err.contains("[historian]"),
            "{err}"
        );
        let config = Config::from_toml(
            "[inventory]\nfile = \"x\"\n[historian]\nflush_every = \"1s\"\nretention_1m = \"30d\"\n",
            "test",
        )
        .unwrap();
        let running = config.historian.historian_config();
        assert_eq!(running.flush_every, std::time::Duration::from_secs(1));
        assert_eq!(
            running.compaction.map(|c| c.retention_1m),
            Some(std::time::Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            config.historian.retention().minute,
            std::time::Duration::from_secs(30 * 86_400)
        );
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

    /// `[store] backend = "scylla"` as a whole configuration file reads it.
    mod scylla_section {
        use super::*;
        use crate::store::scylla::ConsistencyLevel;
        use crate::store::Series;
        use std::time::Duration;

        #[test]
        fn the_scylla_example_configuration_parses_and_validates() {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("ops/scylla/cistern.scylla.toml");
            let config = Config::load(&path).unwrap();
            assert_eq!(config.store.backend, StoreBackend::Scylla);
            let scylla = config.store.scylla.clone().unwrap();
            assert_eq!(scylla.local_dc, "dc1");
            assert_eq!(scylla.replication.len(), 2);
            assert_eq!(scylla.read_consistency, ConsistencyLevel::LocalQuorum);
            assert_eq!(scylla.write_consistency, ConsistencyLevel::LocalQuorum);
            assert_eq!(scylla.ttl.raw, Some(Duration::from_secs(30 * 86_400)));
            scylla.validate().unwrap();
            // What the example leaves out comes from the [historian] retention per resolution.
            let resolved = config
                .store
                .scylla_config(&config.historian.retention())
                .unwrap();
            assert_eq!(
                resolved.ttl.of(Series::Minute),
                config.historian.retention_1m
            );
            resolved.validate().unwrap();
        }

        #[test]
        fn a_configuration_that_cannot_work_is_refused_with_the_key_that_is_wrong() {
            let parse = |scylla: &str| {
                Config::from_toml(
                    &format!("[inventory]\nfile = \"x\"\n[store]\nbackend = \"scylla\"\n{scylla}"),
                    "test",
                )
            };
            let config = parse("").unwrap();
            let err = config
                .store
                .validate(&config.historian.retention())
                .unwrap_err()
                .to_string();
            assert!(err.contains("[store.scylla]"), "{err}");

            let base = "[store.scylla]\nnodes = [\"10.0.0.1:9042\"]\nlocal_dc = \"dc1\"\n";
            let dc1 = "[store.scylla.replication]\ndc1 = 3\n";
            parse(&format!("{base}{dc1}"))
                .unwrap()
                .store
                .validate(&Default::default())
                .unwrap();

            let tls = format!("{dc1}[store.scylla.tls]\nenabled = true\n");
            let ttl = format!("{dc1}[store.scylla.ttl]\nraw = \"30years\"\n");
            for (keys, tables, wanted) in [
                ("", "", "replication is empty"),
                ("", "[store.scylla.replication]\ndc2 = 3\n", "local_dc"),
                ("keyspace = \"Cistern-1\"\n", dc1, "keyspace"),
                (
                    "read_consistency = \"each_quorum\"\n",
                    dc1,
                    "read_consistency",
                ),
                ("username = \"cistern\"\n", dc1, "username and password"),
                ("request_timeout = \"0s\"\n", dc1, "request_timeout"),
                ("", tls.as_str(), "ca_file"),
                ("", ttl.as_str(), "20 years"),
            ] {
                let config = parse(&format!("{base}{keys}{tables}")).unwrap();
                let err = config
                    .store
                    .validate(&config.historian.retention())
                    .unwrap_err()
                    .to_string();
                assert!(err.contains(wanted), "{keys}{tables}: {err}");
            }
            // A misspelt key stops start-up.
            let err = parse(&format!("{base}local_quorum = true\n")).unwrap_err();
            assert!(err.to_string().contains("local_quorum"), "{err}");
        }
    }
}
