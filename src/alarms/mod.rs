//! Alarm rules on a node: the rule directory and its hot reload, where alarm state and events
//! persist, where notifications go. The engine itself is the `cistern-rules` crate; the room
//! and zone actors host it (`cistern_actors::alarms`).
//!
//! - [`RulesConfig`]: `[rules]` in the configuration file.
//! - [`StoredAlarms`]: the [`AlarmStore`](cistern_actors::alarms::AlarmStore) port on the
//!   node's store — every room's engine state (alarms, running delays, shelves, escalation
//!   timers) under state kind `alarm_state`, events in one stream per room
//!   (`alarms/<room>`, `alarms/zone:<zone>`), bookmarks in `bookmarks/<room>`; written within
//!   `flush_every` (250 ms), so a `kill -9` loses at most that much of alarm history.
//! - Notifications the engine emits go to [`crate::notify`] (its outbox; `[notify]`).
//! - [`diagnosis`]: the hint on an alarm — the room's equipment, the network (its line, or its
//!   carrier when its peers are silent too) or the platform.
//! - [`reload`]: hot reload — the rule directory is polled; a changed file is compiled and put
//!   in force in every room without a restart; a file that fails to compile is reported with
//!   file:line:column and the previous version keeps running.

pub mod backtest;
pub mod diagnosis;
pub mod reload;
pub(crate) mod stored;

pub use stored::StoredAlarms;

use cistern_rules::{EngineConfig, SandboxLimits, ZoneConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `[rules]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Run the alarm rules at all.
    pub enabled: bool,
    /// The rule directory (`*.rhai`). Absent or missing: the library built into the binary
    /// (the same files as `rules/library/`), without hot reload. Relative paths are relative
    /// to the configuration file.
    pub dir: Option<PathBuf>,
    /// The golden cases (`*.toml`, the format of `rules/cases/`) the rule editor runs against a
    /// draft before it is deployed. Absent or missing: the cases built into the binary (the
    /// same files as `rules/cases/`, written for the built-in library). Relative paths are
    /// relative to the configuration file.
    pub cases: Option<PathBuf>,
    /// Watch the directory and put changed rules in force without a restart.
    pub hot_reload: bool,
    /// How often the directory is checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_every: Duration,
    /// How often every rule is re-evaluated for time-based facts (data age, flat lines).
    #[serde(with = "humantime_serde")]
    pub refresh_every: Duration,
    /// Sandbox limits of the scripts.
    pub limits: SandboxLimits,
    /// Chatter detection, escalation ladders per severity, first-out window, longest shelve.
    pub engine: EngineConfig,
    /// Cross-room correlation (`zone_event`).
    pub zone: ZoneConfig,
    /// Deprecated: `[rules.webhook]` is read as a `[[notify.channels]]` webhook named
    /// `rules-webhook` (with a warning at start-up); configure `[notify]` instead.
    pub webhook: Option<LegacyWebhook>,
}

/// The deprecated `[rules.webhook]` (see [`crate::notify`]): its `url` and `timeout` become a
/// webhook channel; `attempts` and `queue` are `[notify]`'s now and are ignored.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LegacyWebhook {
    pub url: String,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    pub attempts: Option<u32>,
    pub queue: Option<usize>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
            cases: None,
            hot_reload: true,
            reload_every: Duration::from_secs(2),
            refresh_every: Duration::from_secs(60),
            limits: SandboxLimits::default(),
            engine: EngineConfig::default(),
            zone: ZoneConfig::default(),
            webhook: None,
        }
    }
}

impl RulesConfig {
    /// Makes relative directories relative to `base` (the configuration's folder).
    pub fn resolve_relative_to(&mut self, base: &Path) {
        for dir in [&mut self.dir, &mut self.cases].into_iter().flatten() {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
    }

    /// The directory rules are read from, when it exists.
    pub fn directory(&self) -> Option<&Path> {
        self.dir.as_deref().filter(|d| d.is_dir())
    }

    /// The directory of golden cases, when it exists (none: the built-in cases).
    pub fn cases_directory(&self) -> Option<&Path> {
        self.cases.as_deref().filter(|d| d.is_dir())
    }
}
