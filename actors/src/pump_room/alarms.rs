//! The room's alarm engine as its actor hosts it (see [`crate::alarms`]).

use crate::alarms::zone::MemberEvent;
use crate::alarms::{alarm_id, merge_device, merge_room, AlarmView, DeviceChanged, RuleHost};
use crate::device::PointTable;
use crate::mailbox::Post;
use actix::Recipient;
use cistern_rules::{
    AlarmEvent, Command, CommandError, EventKind, Notification, NotificationKind, RoomEngine,
    RoomFacts, RuleAction, RuleId, RuleSet, Severity, Touched,
};
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::{DeviceUnit, Timestamp};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After a restart from saved alarm state, rules wait this long before they evaluate again, so
/// that fresh samples replace the restored snapshots first: a snapshot older than the alarm
/// state (written behind every 30 s) must not cancel a delay that was running.
const RESTART_GRACE: Duration = Duration::from_secs(5);

/// What an engine call left for the actor to do beyond publishing.
#[derive(Debug, Default)]
pub(super) struct Followups {
    /// Bookmark the cameras' video for these alarms (id, time, message).
    pub bookmarks: Vec<(String, Timestamp, String)>,
}

/// A room's engine, its facts mirror and the changes not yet evaluated.
#[derive(Debug)]
pub(super) struct RoomAlarms {
    host: Arc<RuleHost>,
    spec: Arc<RoomSpec>,
    engine: RoomEngine,
    facts: RoomFacts,
    touched: Touched,
    /// An evaluation is scheduled (changes are coalesced).
    pub scheduled: bool,
    saved: u64,
    last_refresh: Option<Timestamp>,
    zone: Option<Recipient<MemberEvent>>,
    /// Restored from saved state: no evaluation before this (see [`RESTART_GRACE`]).
    hold_until: Option<Timestamp>,
}

impl RoomAlarms {
    /// The engine as last saved (its alarms, delays and timers where they were), or a fresh one.
    pub fn new(
        host: Arc<RuleHost>,
        spec: Arc<RoomSpec>,
        zone: Option<Recipient<MemberEvent>>,
        now: Timestamp,
    ) -> Self {
        let rules = host.rules();
        let room = spec.id.clone();
        let (engine, hold_until) = match host.store.load_room(&room) {
            Some(snap) => (
                RoomEngine::restore(room.clone(), rules, host.config.clone(), snap),
                Some(now + RESTART_GRACE),
            ),
            None => (
                RoomEngine::new(room.clone(), rules, host.config.clone()),
                None,
            ),
        };
        let mut facts = RoomFacts::new(
            room,
            spec.pumps.len() as u8,
            spec.tanks.len() as u8,
            spec.cameras.len() as u8,
        );
        facts.setpoint_mpa = Some(spec.outlet_setpoint_mpa);
        // The board lists what the saved state holds (a process or actor restart).
        let source = spec.id.to_string();
        let views = engine
            .alarms()
            .map(|rec| {
                let first_out = host.board.first_out(&alarm_id(&source, &rec.key));
                AlarmView::of(&source, Some(&spec.id), &spec.zone, rec, first_out, now)
            })
            .collect();
        host.board.rebuild_source(&source, views);
        Self {
            saved: engine.fingerprint(),
            host,
            spec,
            engine,
            facts,
            touched: Touched::all(),
            scheduled: false,
            last_refresh: None,
            zone,
            hold_until,
        }
    }

    /// The room's own points changed.
    pub fn room_points(&mut self, table: &PointTable, now: Timestamp) {
        merge_room(&mut self.facts, table, now, &mut self.touched);
        let setpoint = table
            .good_value("outlet_setpoint")
            .unwrap_or(self.spec.outlet_setpoint_mpa);
        if self.facts.setpoint_mpa != Some(setpoint) {
            self.facts.setpoint_mpa = Some(setpoint);
            self.mark_room("setpoint");
        }
    }

    /// A child reported.
    pub fn device(&mut self, msg: DeviceChanged) {
        merge_device(&mut self.facts, msg, &mut self.touched);
    }

    /// The room's link status and data age (from its sweep).
    pub fn link(&mut self, online: bool, data_age_s: f64) {
        self.facts.data_age_s = data_age_s;
        if self.facts.online != online {
            self.facts.online = online;
            self.mark_room("room_online");
            self.mark_room("data_age_s");
        }
    }

    /// Each tank's days since its last cleaning (`cleanings`: `n` of `T<n>` and when) at `now`;
    /// a tank without a record has none. The fact is marked for evaluation when its whole
    /// number of days changes (it grows continuously; the periodic refresh covers the rest).
    pub fn cleanings(&mut self, cleanings: &[(u8, Timestamp)], now: Timestamp) {
        let mut changed = Vec::new();
        for t in &mut self.facts.tanks {
            let days = cleanings
                .iter()
                .filter(|(n, _)| *n == t.n)
                .map(|(_, at)| at)
                .max()
                .map(|at| (now.as_millis() - at.as_millis()) as f64 / 86_400_000.0);
            let day = |d: Option<f64>| d.map(|d| d.floor() as i64);
            if day(t.days_since_cleaning) != day(days) {
                changed.push(t.n);
            }
            t.days_since_cleaning = days;
        }
        for n in changed {
            if let Err(error) = self
                .touched
                .fact(DeviceUnit::Tank(n), "days_since_cleaning")
            {
                tracing::error!(room = %self.spec.id, %error, "tank fact missing from the catalog");
            }
        }
    }

    /// The nightly leak facts; marked for evaluation when they changed.
    pub fn night_leak(&mut self, leak: &super::messages::NightLeak) {
        let same = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        let changed = self.facts.leak_index != leak.index
            || self.facts.leak_baseline != leak.baseline
            || self.facts.leak_spread != leak.spread
            || !self
                .facts
                .leak_nights
                .as_deref()
                .is_some_and(|n| same(n, &leak.nights));
        if !changed {
            return;
        }
        self.facts.leak_index = leak.index;
        self.facts.leak_baseline = leak.baseline;
        self.facts.leak_spread = leak.spread;
        self.facts.leak_nights = Some(leak.nights.clone());
        for name in ["leak_index", "leak_baseline", "leak_spread", "leak_nights"] {
            self.mark_room(name);
        }
    }

    fn mark_room(&mut self, name: &str) {
        if let Err(error) = self.touched.fact(DeviceUnit::Room, name) {
            tracing::error!(room = %self.spec.id, %error, "room fact missing from the catalog");
        }
    }

    /// Whether a full refresh (every rule, for time-based facts) is due.
    pub fn refresh_due(&self, now: Timestamp) -> bool {
        self.last_refresh
            .is_none_or(|t| now.since(t) >= self.host.refresh_every)
    }

    /// Marks everything for the next evaluation.
    pub fn touch_all(&mut self, now: Timestamp) {
        self.touched = Touched::all();
        self.last_refresh = Some(now);
    }

    pub fn pending(&self) -> bool {
        !self.touched.is_empty()
    }

    /// Evaluates the rules the changes since the last call touched, and due timers.
    pub fn evaluate(&mut self, now: Timestamp) -> Followups {
        self.scheduled = false;
        if self.held(now) {
            return Followups::default();
        }
        let touched = std::mem::take(&mut self.touched);
        let mut notes: Vec<Notification> = Vec::new();
        let before = self.engine.evaluation_counts();
        let started = Instant::now();
        let events = self.engine.evaluate(&self.facts, &touched, now, &mut notes);
        self.host
            .metrics
            .eval_seconds
            .observe(started.elapsed().as_secs_f64());
        let after = self.engine.evaluation_counts();
        let m = &self.host.metrics;
        m.evaluations.inc_by(after.0.saturating_sub(before.0));
        m.script_errors.inc_by(after.1.saturating_sub(before.1));
        self.publish(events, notes, now)
    }

    /// Fires timers that are due (delays, shelve expiries, escalation steps).
    /// Whether evaluation still waits after a restart.
    fn held(&mut self, now: Timestamp) -> bool {
        match self.hold_until {
            Some(t) if now < t => true,
            Some(_) => {
                self.hold_until = None;
                false
            }
            None => false,
        }
    }

    pub fn tick(&mut self, now: Timestamp) -> Followups {
        if self.held(now) || self.engine.next_deadline().is_none_or(|d| d > now) {
            return Followups::default();
        }
        let mut notes = Vec::new();
        let events = self.engine.tick(now, &mut notes);
        self.publish(events, notes, now)
    }

    pub fn command(
        &mut self,
        cmd: &Command,
        now: Timestamp,
    ) -> Result<(Vec<AlarmEvent>, Followups), CommandError> {
        let mut notes = Vec::new();
        let events = self.engine.apply(cmd, now, &mut notes)?;
        let out = self.publish(events.clone(), notes, now);
        Ok((events, out))
    }

    pub fn set_external(&mut self, rule: RuleId, active: bool, now: Timestamp) -> Followups {
        let mut notes = Vec::new();
        let events = self.engine.set_external(rule, active, now, &mut notes);
        self.publish(events, notes, now)
    }

    /// Swaps in a reloaded rule set; everything is re-evaluated at the next call.
    pub fn swap_rules(&mut self, rules: Arc<RuleSet>, now: Timestamp) -> Followups {
        if Arc::ptr_eq(self.engine.rules(), &rules) {
            return Followups::default();
        }
        let events = self.engine.swap_rules(rules, now);
        self.touched = Touched::all();
        self.publish(events, Vec::new(), now)
    }

    /// Saves the engine's state now, whether it moved or not (the room is stopping here).
    pub fn save_now(&mut self) {
        self.saved = self.engine.fingerprint();
        self.host
            .store
            .save_room(&self.spec.id, self.engine.snapshot());
    }

    /// Every alarm record of the room (normal ones included).
    pub fn records(&self) -> Vec<cistern_rules::AlarmRecord> {
        self.engine.alarms().cloned().collect()
    }

    /// Hands the results of an engine call on: metrics, the board, the store (events, and the
    /// engine's state when it moved), the outbox, the zone; returns what the actor must do.
    fn publish(
        &mut self,
        events: Vec<AlarmEvent>,
        notes: Vec<Notification>,
        now: Timestamp,
    ) -> Followups {
        let mut out = Followups::default();
        let room = &self.spec.id;
        let source = room.to_string();
        let m = &self.host.metrics;
        for e in &events {
            m.events.with_label_values(&[e.kind.as_str()]).inc();
            match e.kind {
                EventKind::Raised => {
                    m.annunciations.record(e.time);
                    m.activations
                        .with_label_values(&[e.rule.as_str(), e.severity.as_str()])
                        .inc();
                    if e.actions.contains(&RuleAction::BookmarkVideo) {
                        out.bookmarks
                            .push((alarm_id(&source, &e.key), e.time, e.message.clone()));
                    }
                }
                EventKind::Suppressed => m.suppressed.with_label_values(&[e.rule.as_str()]).inc(),
                EventKind::RuleDisabled => {
                    m.sandbox_kills.with_label_values(&[e.rule.as_str()]).inc()
                }
                _ => {}
            }
            if e.severity <= Severity::P2 && e.kind == EventKind::Raised {
                tracing::warn!(room = %room, event = %e, "alarm");
            } else {
                tracing::info!(room = %room, event = %e, "alarm event");
            }
            let id = alarm_id(&source, &e.key);
            let first_out = e.first_out || self.host.board.first_out(&id);
            let view = match self.engine.alarm(&e.key) {
                Some(rec) => {
                    AlarmView::of(&source, Some(room), &self.spec.zone, rec, first_out, now)
                }
                // Dropped with its rule (a reload): off the board.
                None => {
                    let mut rec = cistern_rules::AlarmRecord::new(e.key.clone(), e.severity);
                    rec.message = e.message.clone();
                    AlarmView::of(&source, Some(room), &self.spec.zone, &rec, false, now)
                }
            };
            self.host.board.update(view);
            if let Some(zone) = &self.zone {
                if e.rule.as_str() == self.host.zone.member_rule
                    && zone.post(MemberEvent(e.clone())).is_err()
                {
                    tracing::error!(room = %room, "zone actor did not take a member event");
                }
            }
        }
        for n in notes {
            let label = match &n.kind {
                NotificationKind::Escalation { .. } => "escalation",
                NotificationKind::Recurrence { .. } => "recurrence",
                NotificationKind::Chattering { .. } => "chattering",
                NotificationKind::SandboxKill { .. } => "sandbox_kill",
            };
            m.notifications.with_label_values(&[label]).inc();
            self.host.outbox.send(n);
        }
        if !events.is_empty() {
            self.host.store.record(&events);
            self.host.board.publish_events(&events);
        }
        let fingerprint = self.engine.fingerprint();
        if fingerprint != self.saved || !events.is_empty() {
            self.saved = fingerprint;
            self.host.store.save_room(room, self.engine.snapshot());
        }
        out
    }
}
