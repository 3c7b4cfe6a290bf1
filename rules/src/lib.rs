//! Cistern's alarm-rule engine: Rhai scripts with delay, flip, escalation and correlation, and
//! the ISA-18.2 alarm state machine. Pure: no actix, no tokio, no I/O except reading the rule
//! directory it is pointed at. Time is always passed in (`Timestamp`, ms); timers advance only
//! through [`RoomEngine::tick`], so tests, backtests and restarts are deterministic.
//!
//! # Layout
//!
//! | module | what it holds |
//! |---|---|
//! | [`ids`] | [`RuleId`], [`AlarmKey`] (`rule@unit`, e.g. `pump_fault@P1`) |
//! | [`meta`] | the TOML header of a rule file: [`RuleMeta`], [`Severity`], triggers, deadband, escalation |
//! | [`facts`] | [`RoomFacts`]: the input view of a room the actor builds; derived facts; [`Touched`] |
//! | [`sandbox`] | the Rhai engine with its limits and author helpers (`below`, `above`, `outside`, `known`) |
//! | [`ruleset`] | [`RuleSet`]: load / compile / lint / order a rule directory, hot reload per file |
//! | [`engine`] | [`RoomEngine`]: evaluation, the alarm state machine, commands, snapshot/restore |
//! | [`alarm`] | [`AlarmRecord`]: one alarm's persistent state and timers |
//! | [`event`] | [`AlarmEvent`] (every transition), [`AlarmState`], [`EventKind`] |
//! | [`notify`] | the [`Notify`] outbox, [`Notification`] payload, [`LogNotify`] |
//! | [`zone`] | [`ZoneCorrelator`]: cross-room `zone_event` grouping and inhibition |
//! | [`stats`] | [`EngineStats`]: counters for Prometheus |
//! | [`cases`] | golden cases (`rules/cases/*.toml`) and their runner |
//! | [`kpi`] | ISA-18.2 / EEMUA 191 KPIs over events (backtests) |
//! | [`tools`] | `check`, `test`, `backtest_kpis`: what `cistern rules …` prints |
//! | `message`, `bind` | message templates; binding facts to script variables |
//!
//! # How the room actor uses it
//!
//! ```text
//! let rules = Arc::new(RuleSet::load_dir(dir, SandboxLimits::default())?.set);   // once per node
//! let mut engine = RoomEngine::new(room_id, rules, Arc::new(EngineConfig::default()));
//! // (or RoomEngine::restore(room_id, rules, config, snapshot) after a restart)
//! on a state change:  events = engine.evaluate(&facts, &touched, now, &mut outbox);
//! on a timer:         events = engine.tick(now, &mut outbox);   // schedule at engine.next_deadline()
//! on a command:       events = engine.apply(&Command { key, action, user, comment }, now, &mut outbox)?;
//! periodically:       store engine.snapshot(); export engine.stats()
//! on a reload:        let new = rules.reload_dir(dir)?; events = engine.swap_rules(Arc::new(new.set), now);
//! ```
//! Every returned [`AlarmEvent`] goes to the historian (never dropped) and the dashboards.

pub mod alarm;
mod bind;
pub mod cases;
pub mod engine;
pub mod event;
pub mod facts;
pub mod ids;
pub mod kpi;
pub mod library;
pub mod message;
pub mod meta;
pub mod notify;
pub mod ruleset;
pub mod sandbox;
pub mod stats;
pub mod tools;
pub mod zone;

#[cfg(test)]
mod tests;

pub use alarm::AlarmRecord;
pub use engine::{
    ChatterConfig, Command, CommandAction, CommandError, EngineConfig, EngineSnapshot, RoomEngine,
};
pub use event::{AlarmEvent, AlarmSource, AlarmState, EventKind, FactValue};
pub use facts::{
    CameraFacts, PointFact, PointFacts, PumpFacts, PumpStatus, RoomFacts, TankFacts, Touched,
};
pub use ids::{AlarmKey, RuleId};
pub use meta::{RuleAction, RuleMeta, Severity, Trigger};
pub use notify::{Discard, LogNotify, Notification, NotificationKind, Notify};
pub use ruleset::{DiagLevel, Diagnostic, LoadOutcome, Rejection, Rule, RuleSet, RuleSetError};
pub use sandbox::SandboxLimits;
pub use stats::{EngineStats, RuleStats};
pub use zone::{ZoneConfig, ZoneCorrelator, ZoneOutput};
