//! The room engine: evaluates a rule set against a room's facts and runs the ISA-18.2 alarm
//! state machine of every alarm of the room.
//!
//! One [`RoomEngine`] per room, owned by the room actor. It never reads a clock: the actor
//! passes `now` to [`RoomEngine::evaluate`] on every state change and to [`RoomEngine::tick`]
//! when a timer may be due ([`RoomEngine::next_deadline`] says when). Everything it emits is
//! returned (events) or pushed into a [`Notify`] outbox (notifications); it does no I/O.
//!
//! Per alarm, per evaluation:
//! 1. Inputs: a process rule with an unusable required input is not run; its verdict is
//!    *unknown*, which cancels pending delays and holds the alarm where it is (a failed sensor
//!    never raises, nor clears, a process alarm).
//! 2. Verdict: the script's bool, `()` or threshold; thresholds get the rule's deadband as
//!    hysteresis; `invert` flips it; an edge trigger turns it into a momentary pulse.
//! 3. Delays: on-delay before raising, off-delay before clearing; edge pulses skip the
//!    on-delay; latched alarms wait for a reset.
//! 4. Activation: if a parent (same room) is active the alarm is recorded as *suppressed* with
//!    that parent, else *raised*; the first activation after a quiet spell of
//!    `first_out_window` is marked first-out; an annunciated alarm starts its escalation
//!    ladder; recurrence and chatter are counted.
//! 5. After the pass: parent changes are propagated (children of a parent that became active
//!    are suppressed, those of a parent that cleared are annunciated), and chattering alarms
//!    are auto-shelved and consolidated into the room's `chattering` alarm.

use crate::alarm::{AlarmRecord, EscalationTimer, Pending, ServiceInfo, ShelveInfo};
use crate::bind;
use crate::event::{AlarmEvent, AlarmSource, AlarmState, EventKind, FactValue};
use crate::facts::{DeviceFacts, RoomFacts, Touched};
use crate::ids::{AlarmKey, RuleId};
use crate::meta::{EscalationStep, RuleMeta, Severity, Trigger};
use crate::notify::{Notification, NotificationKind, Notify};
use crate::ruleset::{child_kind_index, Entry, ParentLink, RuleSet, CHATTERING};
use crate::sandbox::{classify, outcome, EvalFailure, Outcome};
use crate::stats::{EngineStats, RuleStats};
use cistern_schemas::{DeviceId, DeviceKind, DeviceUnit, RoomId, Timestamp};
use rhai::{Dynamic, Scope};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Chatter detection defaults (a rule may override them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatterConfig {
    pub enabled: bool,
    /// Activations …
    pub count: u32,
    /// … within this window make an alarm chattering.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// A chattering alarm is auto-shelved (consolidated into the room's `chattering` alarm)
    /// until it has not changed state for this long: a contact that keeps chattering stays
    /// one consolidated alarm, with a count, for as long as it chatters.
    #[serde(with = "humantime_serde")]
    pub shelve_for: Duration,
}

impl Default for ChatterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            count: 3,
            window: Duration::from_secs(60),
            shelve_for: Duration::from_secs(30 * 60),
        }
    }
}

/// Engine-wide settings (one per node; rooms share it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub chatter: ChatterConfig,
    /// Escalation ladder per severity, for rules that do not declare their own.
    pub escalation: BTreeMap<Severity, Vec<EscalationStep>>,
    /// An activation is first-out when no other alarm of the room activated this long before.
    #[serde(with = "humantime_serde")]
    pub first_out_window: Duration,
    /// The longest a user may shelve an alarm.
    #[serde(with = "humantime_serde")]
    pub max_shelve: Duration,
    /// Who hears about chattering alarms (a maintenance ticket).
    pub chatter_target: String,
    /// Who hears about rules stopped by the sandbox.
    pub sandbox_target: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let ladder = vec![
            EscalationStep {
                after: Duration::from_secs(10 * 60),
                notify: "shift_lead".into(),
                raise: 1,
            },
            EscalationStep {
                after: Duration::from_secs(30 * 60),
                notify: "on_call_manager".into(),
                raise: 1,
            },
        ];
        let mut escalation = BTreeMap::new();
        for s in [Severity::P1, Severity::P2, Severity::P3] {
            escalation.insert(s, ladder.clone());
        }
        escalation.insert(Severity::P4, Vec::new());
        Self {
            chatter: ChatterConfig::default(),
            escalation,
            first_out_window: Duration::from_secs(60),
            max_shelve: Duration::from_secs(7 * 24 * 3600),
            chatter_target: "maintenance".into(),
            sandbox_target: "rule_authors".into(),
        }
    }
}

/// An operator command on one alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub key: AlarmKey,
    pub action: CommandAction,
    pub user: String,
    #[serde(default)]
    pub comment: String,
}

/// What a command does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CommandAction {
    Ack,
    Shelve { until: Timestamp, reason: String },
    Unshelve,
    RemoveFromService,
    ReturnToService,
    Reset,
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("room {room} has no alarm {key}")]
    UnknownAlarm { room: RoomId, key: AlarmKey },
    #[error("alarm {key} is {state}: nothing to acknowledge")]
    NotAckable { key: AlarmKey, state: AlarmState },
    #[error("alarm {key} is not latched: there is nothing to reset")]
    NotLatched { key: AlarmKey },
    #[error("alarm {key} cannot be reset while its condition is still present")]
    ConditionActive { key: AlarmKey },
    #[error("alarm {key} is not shelved")]
    NotShelved { key: AlarmKey },
    #[error("alarm {key} is out of service")]
    OutOfService { key: AlarmKey },
    #[error("alarm {key} is not out of service")]
    InService { key: AlarmKey },
    #[error("shelving {key} until {until} is not within (now, now + {max_s} s]")]
    BadShelveExpiry {
        key: AlarmKey,
        until: Timestamp,
        max_s: u64,
    },
    #[error("a command needs a user")]
    NoUser,
}

/// A room engine's persistent state: serialize it to survive restarts and crashes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineSnapshot {
    pub version: u32,
    pub room: Option<RoomId>,
    pub alarms: BTreeMap<AlarmKey, AlarmRecord>,
    /// Conditions set from outside the room (`zone_event`).
    pub externals: BTreeMap<RuleId, bool>,
    pub last_activation: Option<Timestamp>,
    /// Alarms auto-shelved for chattering, and until when.
    pub chatter_members: BTreeMap<AlarmKey, Timestamp>,
}

const SNAPSHOT_VERSION: u32 = 1;

#[derive(Clone, Debug, Default)]
struct Counters {
    totals: EngineStats,
    per_rule: Vec<RuleStats>,
}

/// The engine borrowed apart for one call: the context, the alarm maps and the script scope,
/// so that all can be borrowed at once.
struct Pass<'a> {
    ctx: Ctx<'a>,
    alarms: &'a mut BTreeMap<AlarmKey, AlarmRecord>,
    externals: &'a BTreeMap<RuleId, bool>,
    chatter_members: &'a mut BTreeMap<AlarmKey, Timestamp>,
    scope: &'a mut Scope<'static>,
    logged_errors: &'a mut HashSet<RuleId>,
}

/// The mutable context of one engine call, split from the alarm map so that both can be
/// borrowed at once.
struct Ctx<'a> {
    room: &'a RoomId,
    rules: &'a RuleSet,
    config: &'a EngineConfig,
    events: Vec<AlarmEvent>,
    notify: &'a mut dyn Notify,
    last_activation: &'a mut Option<Timestamp>,
    counters: &'a mut Counters,
    /// Alarms that reached the chatter threshold: (key, time, activations).
    chatter_due: Vec<(AlarmKey, Timestamp, u32)>,
    /// A consolidated (chatter-shelved) alarm activated again: its count changed.
    chatter_counted: bool,
    /// Some alarm's activity changed: parent links must be re-checked.
    dirty: bool,
}

/// The alarm engine of one room.
#[derive(Debug)]
pub struct RoomEngine {
    room: RoomId,
    rules: Arc<RuleSet>,
    config: Arc<EngineConfig>,
    state: EngineSnapshot,
    counters: Counters,
    scope: Scope<'static>,
    logged_errors: HashSet<RuleId>,
    /// [`Self::next_deadline`] once computed; emptied by every call that can change an alarm
    /// (they all borrow the engine through [`Self::pass`], or are `swap_rules`). A room asks
    /// for its next deadline on every sweep (each second), far more often than its alarms
    /// change, and the scan over every alarm record was a visible share of the node's CPU.
    due: std::cell::Cell<Option<Option<Timestamp>>>,
}

impl RoomEngine {
    /// Borrows the engine apart for one call with `rules` (a clone of the engine's, so that
    /// the set stays put while the call runs).
    fn pass<'a>(
        &'a mut self,
        rules: &'a RuleSet,
        notify: &'a mut dyn Notify,
        dirty: bool,
    ) -> Pass<'a> {
        self.due.set(None);
        let Self {
            room,
            config,
            state,
            counters,
            scope,
            logged_errors,
            ..
        } = self;
        let EngineSnapshot {
            alarms,
            externals,
            last_activation,
            chatter_members,
            ..
        } = state;
        Pass {
            ctx: Ctx {
                room,
                rules,
                config,
                events: Vec::new(),
                notify,
                last_activation,
                counters,
                chatter_due: Vec::new(),
                chatter_counted: false,
                dirty,
            },
            alarms,
            externals,
            chatter_members,
            scope,
            logged_errors,
        }
    }

    pub fn new(room: RoomId, rules: Arc<RuleSet>, config: Arc<EngineConfig>) -> Self {
        let per_rule = vec![RuleStats::default(); rules.len()];
        Self {
            state: EngineSnapshot {
                version: SNAPSHOT_VERSION,
                room: Some(room.clone()),
                ..EngineSnapshot::default()
            },
            room,
            rules,
            config,
            counters: Counters {
                totals: EngineStats::default(),
                per_rule,
            },
            scope: Scope::new(),
            logged_errors: HashSet::new(),
            due: std::cell::Cell::new(None),
        }
    }

    /// Rebuilds an engine from a snapshot: every alarm, delay, shelve and escalation timer is
    /// where it was. Alarms of rules that no longer exist are dropped (see `swap_rules`).
    pub fn restore(
        room: RoomId,
        rules: Arc<RuleSet>,
        config: Arc<EngineConfig>,
        snapshot: EngineSnapshot,
    ) -> Self {
        let mut e = Self::new(room.clone(), rules, config);
        e.state = EngineSnapshot {
            version: SNAPSHOT_VERSION,
            room: Some(room),
            ..snapshot
        };
        let rules = e.rules.clone();
        e.state.alarms.retain(|k, _| keep_key(&rules, k));
        e.state.chatter_members.retain(|k, _| keep_key(&rules, k));
        e.due.set(None);
        e
    }

    /// The persistent state (serialize it with serde; restore with [`RoomEngine::restore`]).
    pub fn snapshot(&self) -> EngineSnapshot {
        self.state.clone()
    }

    pub fn room(&self) -> &RoomId {
        &self.room
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Every alarm the engine has a record of (normal ones included).
    pub fn alarms(&self) -> impl Iterator<Item = &AlarmRecord> {
        self.state.alarms.values()
    }

    pub fn alarm(&self, key: &AlarmKey) -> Option<&AlarmRecord> {
        self.state.alarms.get(key)
    }

    /// The state of an alarm (normal when never seen).
    pub fn state_of(&self, key: &AlarmKey) -> AlarmState {
        self.alarm(key)
            .map_or(AlarmState::Normal, AlarmRecord::state)
    }

    /// Counters since this engine was created.
    pub fn stats(&self) -> EngineStats {
        let mut s = self.counters.totals.clone();
        for (e, r) in self.rules.entries().iter().zip(&self.counters.per_rule) {
            s.per_rule.insert(e.rule.meta.id.clone(), r.clone());
        }
        s
    }

    /// A hash of the persistent state a restart must not lose: every alarm's state, verdict,
    /// running delays, shelve and escalation timers, and the external conditions. The host
    /// compares it after each call and persists the snapshot when it moved (most evaluations
    /// change nothing and cost no write).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for r in self.state.alarms.values() {
            r.condition.hash(&mut h);
            r.last_input.hash(&mut h);
            r.active.hash(&mut h);
            (r.base as u8).hash(&mut h);
            r.latched_clear.hash(&mut h);
            r.pending_on.map(|p| (p.since.0, p.due.0)).hash(&mut h);
            r.pending_off.map(|p| (p.since.0, p.due.0)).hash(&mut h);
            r.shelve.as_ref().map(|s| s.until.0).hash(&mut h);
            r.chatter_count.hash(&mut h);
            r.out_of_service.as_ref().map(|s| s.since.0).hash(&mut h);
            r.suppressed_by.hash(&mut h);
            r.escalation.map(|e| (e.next_step, e.due.0)).hash(&mut h);
            (r.severity as u8).hash(&mut h);
        }
        self.state.externals.hash(&mut h);
        self.state.chatter_members.len().hash(&mut h);
        h.finish()
    }

    /// Evaluations and script errors since this engine was created (cheap, for metrics;
    /// [`RoomEngine::stats`] has the rest).
    pub fn evaluation_counts(&self) -> (u64, u64) {
        let t = &self.counters.totals;
        (t.evaluations, t.script_errors)
    }

    /// The earliest time a `tick` has something to do.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        if let Some(due) = self.due.get() {
            return due;
        }
        let due = self
            .state
            .alarms
            .values()
            .filter_map(AlarmRecord::next_deadline)
            .min();
        self.due.set(Some(due));
        due
    }

    /// Evaluates every rule (start-up, periodic refresh of time-based facts).
    pub fn evaluate_all(
        &mut self,
        facts: &RoomFacts,
        now: Timestamp,
        notify: &mut dyn Notify,
    ) -> Vec<AlarmEvent> {
        self.evaluate(facts, &Touched::all(), now, notify)
    }

    /// Evaluates the rules that read a touched fact, then runs due timers up to `now`.
    pub fn evaluate(
        &mut self,
        facts: &RoomFacts,
        touched: &Touched,
        now: Timestamp,
        notify: &mut dyn Notify,
    ) -> Vec<AlarmEvent> {
        let rules = self.rules.clone();
        let Pass {
            mut ctx,
            alarms,
            externals,
            chatter_members,
            scope,
            logged_errors,
        } = self.pass(&rules, notify, false);
        if touched.is_empty() {
            return finish(ctx, alarms, externals, chatter_members, now);
        }
        let room_bits = touched.room_bits();
        for (idx, entry) in rules.entries().iter().enumerate() {
            let rule = &*entry.rule;
            if rule.is_disabled() {
                continue;
            }
            let kind = rule.meta.applies_to;
            let children_hit = [DeviceKind::Pump, DeviceKind::Tank, DeviceKind::Camera]
                .iter()
                .filter(|k| {
                    child_kind_index(**k).is_some_and(|i| rule.reads_children[i])
                        || rule.reads_transmitters
                })
                .any(|k| touched.any_of_kind(*k));
            let room_hit = room_bits & rule.room_mask != 0
                || children_hit
                || (rule.reads_transmitters && room_bits != 0);
            for dev in devices(facts, kind) {
                let unit = dev.unit();
                let hit = room_hit
                    || (kind != DeviceKind::Room && touched.device_bits(unit) & rule.own_mask != 0);
                if !hit {
                    continue;
                }
                eval_one(
                    &mut ctx,
                    alarms,
                    externals,
                    scope,
                    logged_errors,
                    idx,
                    entry,
                    facts,
                    dev,
                    now,
                );
                scope.clear();
            }
        }
        if alarms
            .values()
            .any(|r| r.next_deadline().is_some_and(|d| d <= now))
        {
            run_timers(&mut ctx, alarms, externals, chatter_members, now);
        }
        finish(ctx, alarms, externals, chatter_members, now)
    }

    /// Fires every timer due at or before `now`: delays, shelve expiries, escalation steps.
    /// Transitions carry their due time, not `now`.
    pub fn tick(&mut self, now: Timestamp, notify: &mut dyn Notify) -> Vec<AlarmEvent> {
        if self.next_deadline().is_none_or(|d| d > now) {
            return Vec::new();
        }
        let rules = self.rules.clone();
        let Pass {
            mut ctx,
            alarms,
            externals,
            chatter_members,
            ..
        } = self.pass(&rules, notify, false);
        run_timers(&mut ctx, alarms, externals, chatter_members, now);
        finish(ctx, alarms, externals, chatter_members, now)
    }

    /// Sets a condition from outside the room that rules may name as a parent (the zone actor
    /// sets `zone_event` on the members of a zone event).
    pub fn set_external(
        &mut self,
        id: RuleId,
        active: bool,
        now: Timestamp,
        notify: &mut dyn Notify,
    ) -> Vec<AlarmEvent> {
        let changed = self.state.externals.get(&id).copied().unwrap_or(false) != active;
        self.state.externals.insert(id, active);
        if !changed {
            return Vec::new();
        }
        let rules = self.rules.clone();
        let Pass {
            mut ctx,
            alarms,
            externals,
            chatter_members,
            ..
        } = self.pass(&rules, notify, true);
        run_timers(&mut ctx, alarms, externals, chatter_members, now);
        finish(ctx, alarms, externals, chatter_members, now)
    }

    /// Applies an operator command.
    pub fn apply(
        &mut self,
        cmd: &Command,
        now: Timestamp,
        notify: &mut dyn Notify,
    ) -> Result<Vec<AlarmEvent>, CommandError> {
        if cmd.user.trim().is_empty() {
            return Err(CommandError::NoUser);
        }
        let rules = self.rules.clone();
        let key = &cmd.key;
        let Some(meta) = rules
            .meta(&key.rule)
            .filter(|m| m.applies_to == key.unit.kind())
        else {
            return Err(CommandError::UnknownAlarm {
                room: self.room.clone(),
                key: key.clone(),
            });
        };
        let Pass {
            mut ctx,
            alarms,
            externals,
            chatter_members,
            ..
        } = self.pass(&rules, notify, false);
        let rec = alarms
            .entry(key.clone())
            .or_insert_with(|| AlarmRecord::new(key.clone(), meta.severity));
        let from = rec.state();
        let user = Some(cmd.user.clone());
        let comment = (!cmd.comment.is_empty()).then(|| cmd.comment.clone());
        let kind = match &cmd.action {
            CommandAction::Ack => {
                match rec.state() {
                    AlarmState::Unacked => rec.base = AlarmState::Acked,
                    AlarmState::ReturnedUnacked => rec.base = AlarmState::Normal,
                    state => {
                        return Err(CommandError::NotAckable {
                            key: key.clone(),
                            state,
                        })
                    }
                }
                rec.escalation = None;
                EventKind::Acknowledged
            }
            CommandAction::Shelve { until, reason } => {
                if rec.out_of_service.is_some() {
                    return Err(CommandError::OutOfService { key: key.clone() });
                }
                if *until <= now || *until > now + ctx.config.max_shelve {
                    return Err(CommandError::BadShelveExpiry {
                        key: key.clone(),
                        until: *until,
                        max_s: ctx.config.max_shelve.as_secs(),
                    });
                }
                rec.shelve = Some(ShelveInfo {
                    until: *until,
                    reason: reason.clone(),
                    user: cmd.user.clone(),
                    comment: cmd.comment.clone(),
                    auto: false,
                });
                rec.escalation = None;
                rec.chatter_count = 0;
                chatter_members.remove(key);
                EventKind::Shelved
            }
            CommandAction::Unshelve => {
                if rec.shelve.is_none() {
                    return Err(CommandError::NotShelved { key: key.clone() });
                }
                if rec.shelve.as_ref().is_some_and(|s| s.auto) {
                    chatter_members.remove(key);
                }
                rec.shelve = None;
                rec.chatter_count = 0;
                rec.base = if rec.active {
                    AlarmState::Unacked
                } else {
                    AlarmState::Normal
                };
                EventKind::Unshelved
            }
            CommandAction::RemoveFromService => {
                if rec.out_of_service.is_some() {
                    return Err(CommandError::OutOfService { key: key.clone() });
                }
                if rec.shelve.take().is_some_and(|s| s.auto) {
                    chatter_members.remove(key);
                }
                rec.chatter_count = 0;
                rec.out_of_service = Some(ServiceInfo {
                    since: now,
                    user: cmd.user.clone(),
                    comment: cmd.comment.clone(),
                });
                rec.escalation = None;
                rec.suppressed_by = None;
                EventKind::RemovedFromService
            }
            CommandAction::ReturnToService => {
                if rec.out_of_service.take().is_none() {
                    return Err(CommandError::InService { key: key.clone() });
                }
                rec.base = if rec.active {
                    AlarmState::Unacked
                } else {
                    AlarmState::Normal
                };
                EventKind::ReturnedToService
            }
            CommandAction::Reset => {
                if !meta.latched {
                    return Err(CommandError::NotLatched { key: key.clone() });
                }
                if rec.active && !rec.latched_clear {
                    return Err(CommandError::ConditionActive { key: key.clone() });
                }
                rec.active = false;
                rec.latched_clear = false;
                rec.base = AlarmState::Normal;
                rec.escalation = None;
                rec.suppressed_by = None;
                EventKind::Reset
            }
        };
        let mut e = event(&ctx, rec, kind, from, now);
        e.user = user;
        e.comment = comment;
        ctx.events.push(e);
        if rec.state() == AlarmState::Unacked && rec.escalation.is_none() {
            start_escalation(&ctx, rec, meta, now);
        }
        ctx.dirty = true;
        run_timers(&mut ctx, alarms, externals, chatter_members, now);
        Ok(finish(ctx, alarms, externals, chatter_members, now))
    }

    /// Swaps in a reloaded rule set. Alarms whose rule still exists (for the same kind of
    /// device) keep their state and timers; the others are dropped with a `rule_removed` event
    /// when they were not normal.
    pub fn swap_rules(&mut self, rules: Arc<RuleSet>, now: Timestamp) -> Vec<AlarmEvent> {
        self.due.set(None);
        let mut events = Vec::new();
        let old = std::mem::replace(&mut self.rules, rules.clone());
        let dropped: Vec<AlarmKey> = self
            .state
            .alarms
            .keys()
            .filter(|k| !keep_key(&rules, k))
            .cloned()
            .collect();
        for k in dropped {
            self.state.chatter_members.remove(&k);
            if let Some(rec) = self.state.alarms.remove(&k) {
                let from = rec.state();
                if from != AlarmState::Normal {
                    events.push(AlarmEvent {
                        time: now,
                        source: AlarmSource::Device(DeviceId::new(self.room.clone(), k.unit)),
                        rule: k.rule.clone(),
                        key: k.clone(),
                        kind: EventKind::RuleRemoved,
                        from,
                        to: AlarmState::Normal,
                        severity: rec.severity,
                        value: rec.value.clone(),
                        message: rec.message.clone(),
                        message_zh: rec.message_zh.clone(),
                        user: None,
                        comment: Some("rule removed by a reload".into()),
                        parent: None,
                        first_out: false,
                        escalation_step: None,
                        notify: None,
                        actions: Vec::new(),
                    });
                }
            }
        }
        // Carry per-rule counters over by id.
        let mut per_rule = vec![RuleStats::default(); rules.len()];
        for (e, s) in old.entries().iter().zip(&self.counters.per_rule) {
            if let Some(i) = rules.position(&e.rule.meta.id) {
                if let Some(slot) = per_rule.get_mut(i) {
                    *slot = s.clone();
                }
            }
        }
        self.counters.per_rule = per_rule;
        self.logged_errors.clear();
        events
    }
}

fn keep_key(rules: &RuleSet, k: &AlarmKey) -> bool {
    rules
        .meta(&k.rule)
        .is_some_and(|m| m.applies_to == k.unit.kind())
}

/// The devices a rule of `kind` runs for, without allocating.
fn devices(facts: &RoomFacts, kind: DeviceKind) -> impl Iterator<Item = DeviceFacts<'_>> {
    let room = (kind == DeviceKind::Room).then_some(DeviceFacts::Room(facts));
    let pumps = facts
        .pumps
        .iter()
        .filter(move |_| kind == DeviceKind::Pump)
        .map(DeviceFacts::Pump);
    let tanks = facts
        .tanks
        .iter()
        .filter(move |_| kind == DeviceKind::Tank)
        .map(DeviceFacts::Tank);
    let cameras = facts
        .cameras
        .iter()
        .filter(move |_| kind == DeviceKind::Camera)
        .map(DeviceFacts::Camera);
    room.into_iter().chain(pumps).chain(tanks).chain(cameras)
}

fn key_range(rule: &RuleId) -> std::ops::RangeInclusive<AlarmKey> {
    AlarmKey::new(rule.clone(), DeviceUnit::Room)
        ..=AlarmKey::new(rule.clone(), DeviceUnit::Camera(u8::MAX))
}

/// The first active parent of the alarm of `entry` on `unit`, if any.
fn active_parent(
    alarms: &BTreeMap<AlarmKey, AlarmRecord>,
    externals: &BTreeMap<RuleId, bool>,
    entry: &Entry,
    unit: DeviceUnit,
) -> Option<AlarmKey> {
    let on = |r: &AlarmRecord| r.active && r.out_of_service.is_none();
    for link in &entry.parents {
        match link {
            ParentLink::External(id) => {
                if externals.get(id).copied().unwrap_or(false) {
                    return Some(AlarmKey::room(id.clone()));
                }
            }
            ParentLink::Rule(id, kind) => {
                let candidate = if *kind == DeviceKind::Room {
                    Some(AlarmKey::room(id.clone()))
                } else if *kind == unit.kind() {
                    Some(AlarmKey::new(id.clone(), unit))
                } else {
                    None
                };
                match candidate {
                    Some(k) => {
                        if alarms.get(&k).is_some_and(on) {
                            return Some(k);
                        }
                    }
                    None => {
                        if let Some((k, _)) = alarms.range(key_range(id)).find(|(_, r)| on(r)) {
                            return Some(k.clone());
                        }
                    }
                }
            }
        }
    }
    None
}

fn event(
    ctx: &Ctx<'_>,
    rec: &AlarmRecord,
    kind: EventKind,
    from: AlarmState,
    time: Timestamp,
) -> AlarmEvent {
    AlarmEvent {
        time,
        source: AlarmSource::Device(DeviceId::new(ctx.room.clone(), rec.key.unit)),
        rule: rec.key.rule.clone(),
        key: rec.key.clone(),
        kind,
        from,
        to: rec.state(),
        severity: rec.severity,
        value: rec.value.clone(),
        message: rec.message.clone(),
        message_zh: rec.message_zh.clone(),
        user: None,
        comment: None,
        parent: rec.suppressed_by.clone(),
        first_out: false,
        escalation_step: None,
        notify: None,
        actions: Vec::new(),
    }
}

fn first_out(ctx: &mut Ctx<'_>, t: Timestamp) -> bool {
    let window = ctx.config.first_out_window;
    let fo = ctx
        .last_activation
        .is_none_or(|l| t > l && t.since(l) > window);
    *ctx.last_activation = Some(ctx.last_activation.map_or(t, |l| l.max(t)));
    fo
}

fn ladder<'a>(config: &'a EngineConfig, meta: &'a RuleMeta) -> &'a [EscalationStep] {
    match &meta.escalation {
        Some(l) => l,
        None => config
            .escalation
            .get(&meta.severity)
            .map_or(&[][..], Vec::as_slice),
    }
}

fn start_escalation(ctx: &Ctx<'_>, rec: &mut AlarmRecord, meta: &RuleMeta, t: Timestamp) {
    rec.escalation = ladder(ctx.config, meta).first().map(|s| EscalationTimer {
        started: t,
        next_step: 0,
        due: t + s.after,
    });
}

fn chatter_config(config: &EngineConfig, meta: &RuleMeta) -> (bool, u32, Duration, Duration) {
    let c = &config.chatter;
    let o = meta.chatter.clone().unwrap_or_default();
    (
        o.enabled.unwrap_or(c.enabled) && meta.id.as_str() != CHATTERING,
        o.count.unwrap_or(c.count).max(2),
        o.window.unwrap_or(c.window),
        o.shelve_for.unwrap_or(c.shelve_for),
    )
}

fn rule_stats<'a>(ctx: &'a mut Ctx<'_>, id: &RuleId) -> Option<&'a mut RuleStats> {
    let i = ctx.rules.position(id)?;
    ctx.counters.per_rule.get_mut(i)
}

/// The alarm becomes active at `t`.
fn activate(
    ctx: &mut Ctx<'_>,
    rec: &mut AlarmRecord,
    meta: &RuleMeta,
    t: Timestamp,
    parent: Option<AlarmKey>,
) {
    let from = rec.state();
    rec.active = true;
    rec.pending_on = None;
    rec.pending_off = None;
    rec.latched_clear = false;
    rec.raised_at = Some(t);
    rec.raised_value = rec.value.clone();
    rec.severity = meta.severity;
    rec.base = AlarmState::Unacked;
    ctx.dirty = true;
    if rec.overlaid() {
        hold_consolidated(ctx, rec, meta, t, true);
        return; // shelved or out of service: tracked, not annunciated
    }
    let (chatter_on, count, window, _) = chatter_config(ctx.config, meta);
    if chatter_on {
        rec.chatter.push(t);
        rec.chatter.retain(|x| t.since(*x) <= window);
        if rec.chatter.len() >= count as usize {
            ctx.chatter_due
                .push((rec.key.clone(), t, rec.chatter.len() as u32));
            rec.chatter.clear();
        }
    }
    let is_builtin = meta.id.as_str() == CHATTERING;
    if let Some(p) = parent {
        rec.suppressed_by = Some(p);
        let mut e = event(ctx, rec, EventKind::Suppressed, from, t);
        e.first_out = first_out(ctx, t);
        ctx.events.push(e);
        ctx.counters.totals.suppressed += 1;
        if let Some(s) = rule_stats(ctx, &meta.id) {
            s.suppressed += 1;
        }
        return;
    }
    rec.suppressed_by = None;
    let mut e = event(ctx, rec, EventKind::Raised, from, t);
    e.first_out = !is_builtin && first_out(ctx, t);
    e.actions = meta.actions.clone();
    ctx.events.push(e);
    if let Some(c) = ctx
        .counters
        .totals
        .activations_by_severity
        .get_mut(meta.severity.index())
    {
        *c += 1;
    }
    if let Some(s) = rule_stats(ctx, &meta.id) {
        s.activations += 1;
    }
    start_escalation(ctx, rec, meta, t);
    if let Some(r) = &meta.recurrence {
        rec.recurrences.push(t);
        rec.recurrences.retain(|x| t.since(*x) <= r.window);
        if rec.recurrences.len() >= r.count.max(1) as usize {
            rec.severity = rec.severity.raised(1);
            let mut e = event(
                ctx,
                rec,
                EventKind::RecurrenceEscalated,
                AlarmState::Unacked,
                t,
            );
            e.notify = Some(r.notify.clone());
            ctx.events.push(e);
            ctx.notify.notify(Notification {
                time: t,
                source: AlarmSource::Device(DeviceId::new(ctx.room.clone(), rec.key.unit)),
                key: rec.key.clone(),
                rule: rec.key.rule.clone(),
                severity: rec.severity,
                target: r.notify.clone(),
                message: rec.message.clone(),
                kind: NotificationKind::Recurrence {
                    count: rec.recurrences.len() as u32,
                    window_s: r.window.as_secs(),
                },
            });
            rec.recurrences.clear();
        }
    }
}

/// A chatter-shelved (consolidated) alarm changed state at `t`: it is still chattering, so
/// its shelve holds until it has been quiet for the chatter `shelve_for` from now, and an
/// activation (`rose`) adds to its count instead of being annunciated again (ISA-18.2: a
/// chattering alarm is one alarm until it stops chattering).
fn hold_consolidated(
    ctx: &mut Ctx<'_>,
    rec: &mut AlarmRecord,
    meta: &RuleMeta,
    t: Timestamp,
    rose: bool,
) {
    if rec.out_of_service.is_some() {
        return;
    }
    let Some(shelve) = rec.shelve.as_mut().filter(|s| s.auto) else {
        return;
    };
    let (_, _, _, quiet) = chatter_config(ctx.config, meta);
    shelve.until = shelve.until.max(t + quiet);
    if rose {
        rec.chatter_count = rec.chatter_count.saturating_add(1);
        ctx.chatter_counted = true;
    }
}

/// The alarm's condition is gone at `t` (or a latched alarm is reset elsewhere).
fn deactivate(ctx: &mut Ctx<'_>, rec: &mut AlarmRecord, t: Timestamp) {
    let rules = ctx.rules;
    if let Some(meta) = rules.meta(&rec.key.rule) {
        hold_consolidated(ctx, rec, meta, t, false);
    }
    let from = rec.state();
    rec.active = false;
    rec.pending_off = None;
    rec.latched_clear = false;
    rec.escalation = None;
    ctx.dirty = true;
    let parent = rec.suppressed_by.take();
    rec.base = if rec.overlaid() || parent.is_some() || rec.base != AlarmState::Unacked {
        AlarmState::Normal
    } else {
        AlarmState::ReturnedUnacked
    };
    if rec.state() != from {
        let mut e = event(ctx, rec, EventKind::Cleared, from, t);
        e.parent = parent;
        ctx.events.push(e);
    }
}

/// Applies a verdict to an alarm's delays. `edge`: a momentary pulse from an edge trigger.
#[allow(clippy::too_many_arguments)]
fn step_condition(
    ctx: &mut Ctx<'_>,
    rec: &mut AlarmRecord,
    meta: &RuleMeta,
    cond: Option<bool>,
    edge: bool,
    now: Timestamp,
    parent: Option<AlarmKey>,
) {
    match cond {
        None => {
            // Unknown: no raise, no clear, and no delay keeps counting on unknown data.
            rec.pending_on = None;
            rec.pending_off = None;
        }
        Some(true) => {
            rec.pending_off = None;
            if rec.active {
                rec.latched_clear = false;
            } else if edge || meta.on_delay.is_zero() {
                activate(ctx, rec, meta, now, parent);
            } else {
                let p = *rec.pending_on.get_or_insert(Pending {
                    since: now,
                    due: now + meta.on_delay,
                });
                if now >= p.due {
                    activate(ctx, rec, meta, p.due, parent);
                }
            }
        }
        Some(false) => {
            rec.pending_on = None;
            if rec.active {
                if meta.latched {
                    rec.latched_clear = true;
                } else if meta.off_delay.is_zero() {
                    deactivate(ctx, rec, now);
                } else {
                    let p = *rec.pending_off.get_or_insert(Pending {
                        since: now,
                        due: now + meta.off_delay,
                    });
                    if now >= p.due {
                        deactivate(ctx, rec, p.due);
                    }
                }
            }
        }
    }
    if edge && rec.active && !meta.latched {
        // A pulse returns at once; it stays returned-unacknowledged until acknowledged.
        deactivate(ctx, rec, now);
    }
}

#[allow(clippy::too_many_arguments)]
fn eval_one(
    ctx: &mut Ctx<'_>,
    alarms: &mut BTreeMap<AlarmKey, AlarmRecord>,
    externals: &BTreeMap<RuleId, bool>,
    scope: &mut Scope<'static>,
    logged_errors: &mut HashSet<RuleId>,
    idx: usize,
    entry: &Entry,
    facts: &RoomFacts,
    dev: DeviceFacts<'_>,
    now: Timestamp,
) {
    let rule = &*entry.rule;
    let meta = &rule.meta;
    let unit = dev.unit();
    let mut optional_unknown = false;
    let mut blocked = false;
    for input in &rule.inputs {
        if !bind::input_usable(facts, dev, input) {
            if input.optional || meta.quality_rule {
                optional_unknown = true;
            } else {
                blocked = true;
                break;
            }
        }
    }
    let result = if blocked {
        Ok(Outcome::Unknown)
    } else {
        bind::bind_inputs(scope, facts, dev, &rule.inputs);
        for (n, v) in &rule.params {
            scope.push_constant_dynamic(n.as_str(), v.clone());
        }
        let started = Instant::now();
        let r = ctx
            .rules
            .engine()
            .eval_ast_with_scope::<Dynamic>(scope, &rule.ast);
        let nanos = started.elapsed().as_nanos() as u64;
        ctx.counters.totals.eval_nanos += nanos;
        if let Some(s) = ctx.counters.per_rule.get_mut(idx) {
            s.eval_nanos += nanos;
        }
        r.map_err(|e| classify(&e)).and_then(outcome)
    };
    ctx.counters.totals.evaluations += 1;
    if let Some(s) = ctx.counters.per_rule.get_mut(idx) {
        s.evaluations += 1;
    }
    let key = AlarmKey::new(meta.id.clone(), unit);
    let outcome = match result {
        Ok(o) => o,
        Err(EvalFailure::Killed(error)) => {
            rule.disable();
            ctx.counters.totals.sandbox_kills += 1;
            if let Some(s) = ctx.counters.per_rule.get_mut(idx) {
                s.sandbox_kills += 1;
            }
            tracing::warn!(room = %ctx.room, rule = %meta.id, %error, "alarm rule stopped by the sandbox and disabled");
            let rec = alarms
                .entry(key.clone())
                .or_insert_with(|| AlarmRecord::new(key.clone(), meta.severity));
            let state = rec.state();
            let mut e = event(ctx, rec, EventKind::RuleDisabled, state, now);
            e.message = format!("rule {} disabled by the sandbox: {error}", meta.id);
            e.message_zh = format!("规则 {} 超出沙箱限制，已停用：{error}", meta.id);
            e.notify = Some(ctx.config.sandbox_target.clone());
            ctx.events.push(e);
            ctx.notify.notify(Notification {
                time: now,
                source: AlarmSource::Device(DeviceId::new(ctx.room.clone(), unit)),
                key,
                rule: meta.id.clone(),
                severity: meta.severity,
                target: ctx.config.sandbox_target.clone(),
                message: format!("rule {} disabled by the sandbox", meta.id),
                kind: NotificationKind::SandboxKill { error },
            });
            return;
        }
        Err(EvalFailure::Error(error)) => {
            ctx.counters.totals.script_errors += 1;
            if let Some(s) = ctx.counters.per_rule.get_mut(idx) {
                s.script_errors += 1;
            }
            if logged_errors.insert(meta.id.clone()) {
                tracing::warn!(room = %ctx.room, rule = %meta.id, device = %unit, %error, "alarm rule failed; its verdict is unknown");
            }
            Outcome::Unknown
        }
    };
    if outcome == Outcome::Unknown {
        ctx.counters.totals.unknown += 1;
        if let Some(s) = ctx.counters.per_rule.get_mut(idx) {
            s.unknown += 1;
        }
    }

    // Phase 1: the verdict (needs the record's previous condition for hysteresis and edges).
    let (cond, need_parent) = {
        let rec = alarms
            .entry(key.clone())
            .or_insert_with(|| AlarmRecord::new(key.clone(), meta.severity));
        let (raw, value, value_zh, limit) = match outcome {
            Outcome::Unknown => (None, None, None, None),
            Outcome::Bool {
                active,
                value,
                value_zh,
            } => {
                let known = active || !optional_unknown || meta.quality_rule;
                (known.then_some(active), value, value_zh, None)
            }
            Outcome::Threshold(t) => (
                Some(t.active(rec.condition == Some(true), meta.deadband)),
                Some(FactValue::Number(t.value)),
                None,
                Some(t.limit()),
            ),
        };
        if raw.is_some() {
            rec.condition = raw;
        }
        let level = raw.map(|c| c ^ meta.invert);
        let cond = match (meta.trigger, level) {
            (Trigger::Level, c) | (_, c @ None) => c,
            (trigger, Some(x)) => {
                let prev = rec.last_input.replace(x);
                Some(match trigger {
                    Trigger::Rising => prev == Some(false) && x,
                    Trigger::Falling => prev == Some(true) && !x,
                    _ => prev.is_some_and(|p| p != x),
                })
            }
        };
        if cond == Some(true) || rec.active {
            if value.is_some() {
                rec.value = value;
            }
            if limit.is_some() {
                rec.limit = limit;
            }
            // Only while the condition holds: a message says what is wrong, so the value an
            // alarm returns with stays in `value`, not in a message that would read "0.400 MPa
            // below 0.05 MPa".
            if cond == Some(true) {
                rec.message = render(&rule.template, rec, ctx.room, scope, None);
                rec.message_zh = render(&rule.template_zh, rec, ctx.room, scope, value_zh.as_ref());
            }
        }
        (cond, cond == Some(true) && !rec.active)
    };
    // Phase 2: the parents, only when the alarm may activate now.
    let parent = if need_parent {
        active_parent(alarms, externals, entry, unit)
    } else {
        None
    };
    // Phase 3: delays and activation.
    if let Some(rec) = alarms.get_mut(&key) {
        let edge = meta.trigger != Trigger::Level;
        step_condition(ctx, rec, meta, cond, edge, now, parent);
    }
}

/// Renders a message; `value` in place of the record's where the script worded the value for
/// this language (`value_zh`).
fn render(
    template: &crate::message::Template,
    rec: &AlarmRecord,
    room: &RoomId,
    scope: &Scope<'static>,
    value: Option<&FactValue>,
) -> String {
    template.render(|name, decimals| match name {
        "value" => value.or(rec.value.as_ref()).map(|v| v.format(decimals)),
        "limit" => rec.limit.map(|l| FactValue::Number(l).format(decimals)),
        "device" => Some(rec.key.unit.to_string()),
        "room" => Some(room.to_string()),
        "severity" => Some(rec.severity.to_string()),
        "rule" => Some(rec.key.rule.to_string()),
        other => scope
            .get(other)
            .and_then(FactValue::from_dynamic)
            .map(|v| v.format(decimals)),
    })
}

/// Fires due delays (parents first), shelve expiries and escalation steps.
fn run_timers(
    ctx: &mut Ctx<'_>,
    alarms: &mut BTreeMap<AlarmKey, AlarmRecord>,
    externals: &BTreeMap<RuleId, bool>,
    chatter_members: &mut BTreeMap<AlarmKey, Timestamp>,
    now: Timestamp,
) {
    let rules = ctx.rules;
    // Delays, in evaluation order so that a parent due at the same instant as its child is
    // active before the child is.
    for entry in rules.entries() {
        let meta = &entry.rule.meta;
        let due: Vec<AlarmKey> = alarms
            .range(key_range(&meta.id))
            .filter(|(_, r)| {
                r.pending_on.is_some_and(|p| p.due <= now)
                    || r.pending_off.is_some_and(|p| p.due <= now)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            let parent = active_parent(alarms, externals, entry, k.unit);
            let Some(rec) = alarms.get_mut(&k) else {
                continue;
            };
            if let Some(p) = rec.pending_on.filter(|p| p.due <= now) {
                if !rec.active {
                    activate(ctx, rec, meta, p.due, parent);
                }
                rec.pending_on = None;
            }
            if let Some(p) = rec.pending_off.filter(|p| p.due <= now) {
                if rec.active {
                    deactivate(ctx, rec, p.due);
                }
                rec.pending_off = None;
            }
        }
    }
    // Shelve expiries and escalation steps.
    let mut chatter_changed = false;
    for (key, rec) in alarms.iter_mut() {
        if let Some(s) = rec.shelve.clone().filter(|s| s.until <= now) {
            let from = rec.state();
            rec.shelve = None;
            rec.base = if rec.active {
                AlarmState::Unacked
            } else {
                AlarmState::Normal
            };
            if s.auto {
                rec.chatter_count = 0;
                if chatter_members.remove(key).is_some() {
                    chatter_changed = true;
                }
            }
            let mut e = event(ctx, rec, EventKind::ShelveExpired, from, s.until);
            e.user = Some("system".into());
            ctx.events.push(e);
            ctx.dirty = true;
            if rec.state() == AlarmState::Unacked {
                if let Some(meta) = rules.meta(&key.rule) {
                    start_escalation(ctx, rec, meta, s.until);
                }
            }
        }
        while let Some(esc) = rec.escalation.filter(|e| e.due <= now) {
            let Some(meta) = rules.meta(&key.rule) else {
                rec.escalation = None;
                break;
            };
            if rec.state() != AlarmState::Unacked {
                rec.escalation = None;
                break;
            }
            let steps = ladder(ctx.config, meta);
            let Some(step) = steps.get(usize::from(esc.next_step)) else {
                rec.escalation = None;
                break;
            };
            rec.severity = rec.severity.raised(step.raise);
            let mut e = event(ctx, rec, EventKind::Escalated, AlarmState::Unacked, esc.due);
            e.escalation_step = Some(esc.next_step + 1);
            e.notify = Some(step.notify.clone());
            ctx.events.push(e);
            ctx.notify.notify(Notification {
                time: esc.due,
                source: AlarmSource::Device(DeviceId::new(ctx.room.clone(), key.unit)),
                key: key.clone(),
                rule: key.rule.clone(),
                severity: rec.severity,
                target: step.notify.clone(),
                message: rec.message.clone(),
                kind: NotificationKind::Escalation {
                    step: esc.next_step + 1,
                },
            });
            let next = esc.next_step + 1;
            rec.escalation = steps.get(usize::from(next)).map(|s| EscalationTimer {
                started: esc.started,
                next_step: next,
                due: esc.started + s.after,
            });
        }
    }
    if chatter_changed {
        update_chattering(ctx, alarms, chatter_members, now);
    }
}

/// Propagates parent changes, then handles alarms that started chattering.
fn finish(
    mut ctx: Ctx<'_>,
    alarms: &mut BTreeMap<AlarmKey, AlarmRecord>,
    externals: &BTreeMap<RuleId, bool>,
    chatter_members: &mut BTreeMap<AlarmKey, Timestamp>,
    now: Timestamp,
) -> Vec<AlarmEvent> {
    // Each sweep may change a parent of a later rule; rules are in parent-first order, so one
    // pass settles every chain.
    if ctx.dirty {
        sweep(&mut ctx, alarms, externals, now);
    }
    let due = std::mem::take(&mut ctx.chatter_due);
    if !due.is_empty() || ctx.chatter_counted {
        for (key, t, count) in due {
            let Some(meta) = ctx.rules.meta(&key.rule) else {
                continue;
            };
            let (_, _, window, shelve_for) = chatter_config(ctx.config, meta);
            let Some(rec) = alarms.get_mut(&key) else {
                continue;
            };
            let from = rec.state();
            let until = t + shelve_for;
            rec.shelve = Some(ShelveInfo {
                until,
                reason: format!(
                    "chattering: {count} activations within {}",
                    humantime::format_duration(window)
                ),
                user: "system".into(),
                comment: String::new(),
                auto: true,
            });
            rec.escalation = None;
            rec.chatter_count = count;
            let mut e = event(&ctx, rec, EventKind::ChatterShelved, from, t);
            e.user = Some("system".into());
            e.notify = Some(ctx.config.chatter_target.clone());
            ctx.events.push(e);
            ctx.notify.notify(Notification {
                time: t,
                source: AlarmSource::Device(DeviceId::new(ctx.room.clone(), key.unit)),
                key: key.clone(),
                rule: key.rule.clone(),
                severity: rec.severity,
                target: ctx.config.chatter_target.clone(),
                message: rec.message.clone(),
                kind: NotificationKind::Chattering {
                    activations: count,
                    window_s: window.as_secs(),
                    shelved_until: until,
                },
            });
            chatter_members.insert(key, until);
        }
        // A consolidated alarm's shelve runs on while it chatters: keep the recorded expiries.
        for (key, until) in chatter_members.iter_mut() {
            if let Some(s) = alarms.get(key).and_then(|r| r.shelve.as_ref()) {
                *until = s.until;
            }
        }
        update_chattering(&mut ctx, alarms, chatter_members, now);
    }
    ctx.events
}

/// Keeps the room's `chattering` alarm in line with the set of auto-shelved alarms.
fn update_chattering(
    ctx: &mut Ctx<'_>,
    alarms: &mut BTreeMap<AlarmKey, AlarmRecord>,
    members: &BTreeMap<AlarmKey, Timestamp>,
    now: Timestamp,
) {
    let Some(meta) = ctx.rules.meta(&RuleId::builtin(CHATTERING)) else {
        return;
    };
    // Each member with its activations since it was found chattering.
    let (list, list_zh): (Vec<String>, Vec<String>) = members
        .keys()
        .map(|k| match alarms.get(k).map(|r| r.chatter_count) {
            Some(n) if n > 0 => (format!("{k} ({n} activations)"), format!("{k}（{n} 次）")),
            _ => (k.to_string(), k.to_string()),
        })
        .unzip();
    let key = AlarmKey::room(meta.id.clone());
    let rec = alarms
        .entry(key.clone())
        .or_insert_with(|| AlarmRecord::new(key, meta.severity));
    if !list.is_empty() {
        rec.value = Some(FactValue::Text(list.join(", ")));
        rec.message = format!("Chattering alarms consolidated: {}", list.join(", "));
        rec.message_zh = format!("频繁抖动的报警已合并：{}", list_zh.join("，"));
        if !rec.active {
            rec.condition = Some(true);
            activate(ctx, rec, meta, now, None);
        }
    } else if rec.active {
        rec.condition = Some(false);
        deactivate(ctx, rec, now);
    }
}

/// Re-checks the parents of every active alarm: suppress under a parent that became active,
/// annunciate when the parent is gone.
fn sweep(
    ctx: &mut Ctx<'_>,
    alarms: &mut BTreeMap<AlarmKey, AlarmRecord>,
    externals: &BTreeMap<RuleId, bool>,
    now: Timestamp,
) {
    for entry in ctx.rules.entries() {
        if entry.parents.is_empty() {
            continue;
        }
        let keys: Vec<AlarmKey> = alarms
            .range(key_range(&entry.rule.meta.id))
            .filter(|(_, r)| r.active || r.suppressed_by.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let parent = active_parent(alarms, externals, entry, k.unit);
            let Some(rec) = alarms.get_mut(&k) else {
                continue;
            };
            if rec.overlaid() || !rec.active {
                continue;
            }
            match (&rec.suppressed_by, parent) {
                (None, Some(p)) => {
                    let from = rec.state();
                    rec.suppressed_by = Some(p);
                    rec.escalation = None;
                    let e = event(ctx, rec, EventKind::Suppressed, from, now);
                    ctx.events.push(e);
                    ctx.counters.totals.suppressed += 1;
                    if let Some(s) = rule_stats(ctx, &k.rule) {
                        s.suppressed += 1;
                    }
                }
                (Some(old), None) => {
                    let old = old.clone();
                    rec.suppressed_by = None;
                    rec.base = AlarmState::Unacked;
                    let mut e = event(
                        ctx,
                        rec,
                        EventKind::Unsuppressed,
                        AlarmState::Suppressed,
                        now,
                    );
                    e.parent = Some(old);
                    ctx.events.push(e);
                    start_escalation(ctx, rec, &entry.rule.meta, now);
                }
                (Some(old), Some(p)) if *old != p => rec.suppressed_by = Some(p),
                _ => {}
            }
        }
    }
}
