//! Alarms in the actor tree.
//!
//! Each room actor hosts its room's [`RoomEngine`](cistern_rules::RoomEngine): it keeps a
//! [`RoomFacts`](cistern_rules::RoomFacts) mirror of its own points and of its children's (a
//! child reports after every change of its live state: [`DeviceChanged`]), evaluates the rules
//! those changes touch (coalesced over a few milliseconds, so that one gateway burst is one
//! evaluation), fires due timers on its one-second sweep, re-evaluates everything once a minute
//! for time-based facts, applies operator commands, and hands every event and every change of
//! persistent alarm state (a delay that started, a shelve, an escalation step) to the
//! [`AlarmStore`] port. A [`zone::ZoneActor`] per supply zone correlates `inlet_pressure_low`
//! across its rooms into one `zone_event` alarm that inhibits the members'.
//!
//! Shared by every room of a node: the [`RuleHost`] — the current rule set (swapped on hot
//! reload), the engine settings, the ports, the [`AlarmBoard`] that lists every alarm that is
//! not normal (the API and dashboards read it without asking 2,100 actors) and the metrics.

mod board;
mod facts;
mod metrics;
mod ports;
pub mod replay;
pub mod zone;

pub use board::{alarm_id, AlarmBoard, AlarmFilter, AlarmView};
pub(crate) use facts::{fill_points, merge_device, merge_room};
pub use facts::{DerivedFacts, DeviceChanged, ReportFacts};
pub use metrics::RuleMetrics;
pub use ports::{AlarmStore, Bookmark, LogOutbox, MemoryAlarmStore, Outbox};

use cistern_rules::{EngineConfig, RuleSet, ZoneConfig};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What every room's alarm engine shares (one per node).
#[derive(Debug)]
pub struct RuleHost {
    rules: RwLock<Arc<RuleSet>>,
    pub config: Arc<EngineConfig>,
    pub zone: ZoneConfig,
    pub store: Arc<dyn AlarmStore>,
    pub outbox: Arc<dyn Outbox>,
    pub board: Arc<AlarmBoard>,
    pub metrics: RuleMetrics,
    /// How often every rule is re-evaluated for time-based facts (`data_age_s`, flat lines,
    /// days since cleaning).
    pub refresh_every: Duration,
}

impl RuleHost {
    pub fn new(
        rules: Arc<RuleSet>,
        config: EngineConfig,
        zone: ZoneConfig,
        store: Arc<dyn AlarmStore>,
        outbox: Arc<dyn Outbox>,
        metrics: RuleMetrics,
    ) -> Self {
        Self {
            board: Arc::new(AlarmBoard::new(metrics.clone())),
            rules: RwLock::new(rules),
            config: Arc::new(config),
            zone,
            store,
            outbox,
            metrics,
            refresh_every: Duration::from_secs(60),
        }
    }

    /// The rule set in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        match self.rules.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts a new rule set in force for rooms that start from now on; running rooms get it
    /// through [`crate::FleetRegistry::swap_rules`].
    pub fn set_rules(&self, rules: Arc<RuleSet>) {
        match self.rules.write() {
            Ok(mut r) => *r = rules,
            Err(poisoned) => *poisoned.into_inner() = rules,
        }
    }
}
