//! Cross-room correlation: one `zone_event` alarm when several rooms of a supply zone lose
//! inlet pressure together.
//!
//! When the municipal main of a zone drops, every room in it raises `inlet_pressure_low`; the
//! operator needs one alarm for the zone, not one per room (Alertmanager's grouping and
//! inhibition are the model). A [`ZoneCorrelator`] is owned by the zone actor, fed with the
//! member rule's events of its rooms, and answers with the zone alarm's transitions and with
//! which rooms to inhibit: the host calls [`crate::RoomEngine::set_external`]`("zone_event",
//! …)` on each, and their `inlet_pressure_low` (whose parent is `zone_event`) is recorded as
//! suppressed under the zone alarm. Pure and clock-free like the room engine.

use crate::alarm::{AlarmRecord, Pending};
use crate::event::{AlarmEvent, AlarmSource, AlarmState, EventKind, FactValue};
use crate::ids::{AlarmKey, RuleId};
use crate::meta::Severity;
use crate::ruleset::ZONE_EVENT;
use cistern_schemas::{RoomId, Timestamp, ZoneId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Settings of zone correlation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZoneConfig {
    /// The room rule whose alarms are grouped.
    pub member_rule: String,
    /// Rooms that must raise it …
    pub min_rooms: usize,
    /// … within this window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// The grouping must hold this long before the zone alarm is raised.
    #[serde(with = "humantime_serde")]
    pub on_delay: Duration,
    pub severity: Severity,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            member_rule: "inlet_pressure_low".into(),
            min_rooms: 3,
            window: Duration::from_secs(600),
            on_delay: Duration::from_secs(30),
            severity: Severity::P2,
        }
    }
}

/// What the zone actor must do after feeding the correlator.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZoneOutput {
    pub events: Vec<AlarmEvent>,
    /// Rooms whose `zone_event` external condition changes: (room, active).
    pub inhibit: Vec<(RoomId, bool)>,
}

/// Persistent state of a correlator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneState {
    /// Rooms whose member alarm is active, and since when.
    pub members: BTreeMap<RoomId, Timestamp>,
    pub record: AlarmRecord,
    /// Rooms told to inhibit.
    pub inhibited: BTreeSet<RoomId>,
}

/// The correlator of one supply zone.
#[derive(Clone, Debug)]
pub struct ZoneCorrelator {
    zone: ZoneId,
    config: ZoneConfig,
    state: ZoneState,
}

impl ZoneCorrelator {
    pub fn new(zone: ZoneId, config: ZoneConfig) -> Self {
        let key = zone_key();
        Self {
            zone,
            state: ZoneState {
                members: BTreeMap::new(),
                record: AlarmRecord::new(key, config.severity),
                inhibited: BTreeSet::new(),
            },
            config,
        }
    }

    pub fn restore(zone: ZoneId, config: ZoneConfig, state: ZoneState) -> Self {
        Self {
            zone,
            config,
            state,
        }
    }

    pub fn snapshot(&self) -> ZoneState {
        self.state.clone()
    }

    pub fn state(&self) -> AlarmState {
        self.state.record.state()
    }

    /// The zone alarm's key (`zone_event@room`; the source of its events is the zone).
    pub fn key(&self) -> &AlarmKey {
        &self.state.record.key
    }

    /// When `tick` next has something to do.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.state.record.pending_on.map(|p| p.due)
    }

    /// Feeds an event of a member room (events of other rules are ignored).
    pub fn observe(&mut self, event: &AlarmEvent, now: Timestamp) -> ZoneOutput {
        if event.rule.as_str() != self.config.member_rule {
            return ZoneOutput::default();
        }
        let AlarmSource::Device(dev) = &event.source else {
            return ZoneOutput::default();
        };
        let room = dev.room.clone();
        match event.kind {
            EventKind::Raised => self.member_raised(room, event.time, now),
            EventKind::Suppressed if event.from == AlarmState::Normal => {
                self.member_raised(room, event.time, now)
            }
            EventKind::Cleared | EventKind::RuleRemoved | EventKind::Reset => {
                self.member_cleared(&room, now)
            }
            _ => ZoneOutput::default(),
        }
    }

    /// A member room's alarm became active at `at`.
    pub fn member_raised(&mut self, room: RoomId, at: Timestamp, now: Timestamp) -> ZoneOutput {
        self.state.members.entry(room).or_insert(at);
        self.update(now)
    }

    /// A member room's alarm cleared.
    pub fn member_cleared(&mut self, room: &RoomId, now: Timestamp) -> ZoneOutput {
        self.state.members.remove(room);
        self.update(now)
    }

    /// Fires the on-delay when due.
    pub fn tick(&mut self, now: Timestamp) -> ZoneOutput {
        self.update(now)
    }

    /// Acknowledges the zone alarm.
    pub fn ack(&mut self, user: &str, comment: &str, now: Timestamp) -> Option<AlarmEvent> {
        let rec = &mut self.state.record;
        let from = rec.state();
        rec.base = match from {
            AlarmState::Unacked => AlarmState::Acked,
            AlarmState::ReturnedUnacked => AlarmState::Normal,
            _ => return None,
        };
        let mut e = self.event(EventKind::Acknowledged, from, now);
        e.user = Some(user.to_owned());
        e.comment = (!comment.is_empty()).then(|| comment.to_owned());
        Some(e)
    }

    fn grouped(&self, now: Timestamp) -> bool {
        let recent = self
            .state
            .members
            .values()
            .filter(|t| now.since(**t) <= self.config.window)
            .count();
        recent >= self.config.min_rooms
    }

    fn update(&mut self, now: Timestamp) -> ZoneOutput {
        let mut out = ZoneOutput::default();
        let active = self.state.record.active;
        if !active {
            if self.grouped(now) {
                let p = *self.state.record.pending_on.get_or_insert(Pending {
                    since: now,
                    due: now + self.config.on_delay,
                });
                if now >= p.due {
                    let from = self.state.record.state();
                    let rec = &mut self.state.record;
                    rec.active = true;
                    rec.pending_on = None;
                    rec.base = AlarmState::Unacked;
                    rec.raised_at = Some(p.due);
                    let mut e = self.event(EventKind::Raised, from, p.due);
                    e.first_out = true;
                    out.events.push(e);
                }
            } else {
                self.state.record.pending_on = None;
            }
        } else if self.state.members.len() < self.config.min_rooms {
            let from = self.state.record.state();
            let rec = &mut self.state.record;
            rec.active = false;
            rec.base = if rec.base == AlarmState::Unacked {
                AlarmState::ReturnedUnacked
            } else {
                AlarmState::Normal
            };
            out.events.push(self.event(EventKind::Cleared, from, now));
        }
        // Inhibition follows the zone alarm: every member while it is active.
        let want: BTreeSet<RoomId> = if self.state.record.active {
            self.state.members.keys().cloned().collect()
        } else {
            BTreeSet::new()
        };
        for r in want.difference(&self.state.inhibited) {
            out.inhibit.push((r.clone(), true));
        }
        for r in self.state.inhibited.difference(&want) {
            out.inhibit.push((r.clone(), false));
        }
        // A room that cleared stays inhibited until the zone alarm clears: its next raise is
        // still part of the same event.
        if self.state.record.active {
            self.state.inhibited.extend(want);
            out.inhibit.retain(|(_, on)| *on);
        } else {
            self.state.inhibited = want;
        }
        out
    }

    fn event(&self, kind: EventKind, from: AlarmState, time: Timestamp) -> AlarmEvent {
        let rec = &self.state.record;
        let n = self.state.members.len();
        let members: Vec<String> = self.state.members.keys().map(ToString::to_string).collect();
        AlarmEvent {
            time,
            source: AlarmSource::Zone(self.zone.clone()),
            rule: rec.key.rule.clone(),
            key: rec.key.clone(),
            kind,
            from,
            to: rec.state(),
            severity: rec.severity,
            value: Some(FactValue::Number(n as f64)),
            message: format!(
                "Low inlet pressure in {n} rooms of zone {}: {}",
                self.zone,
                members.join(", ")
            ),
            message_zh: format!(
                "供水分区 {} 有 {n} 个泵房进水压力低：{}",
                self.zone,
                members.join("、")
            ),
            user: None,
            comment: None,
            parent: None,
            first_out: false,
            escalation_step: None,
            notify: None,
            actions: Vec::new(),
        }
    }
}

/// The id of the zone alarm, which member rules name as their parent (`parents = ["zone_event"]`).
pub fn zone_event_rule() -> RuleId {
    RuleId::builtin(ZONE_EVENT)
}

fn zone_key() -> AlarmKey {
    AlarmKey::room(RuleId::builtin(ZONE_EVENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp(1_000_000 + s * 1000)
    }

    #[test]
    fn three_rooms_within_ten_minutes_make_one_zone_event() {
        let mut z = ZoneCorrelator::new(ZoneId::new("siming").unwrap(), ZoneConfig::default());
        let room = |i: u32| RoomId::new(&format!("XM-{i:04}")).unwrap();
        assert!(z.member_raised(room(1), t(0), t(0)).events.is_empty());
        assert!(z.member_raised(room(2), t(60), t(60)).events.is_empty());
        // Third room: the grouping starts its 30 s on-delay.
        let out = z.member_raised(room(3), t(120), t(120));
        assert!(out.events.is_empty());
        assert_eq!(z.next_deadline(), Some(t(150)));
        let out = z.tick(t(150));
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].kind, EventKind::Raised);
        assert_eq!(
            out.events[0].source,
            AlarmSource::Zone(ZoneId::new("siming").unwrap())
        );
        assert_eq!(out.inhibit.len(), 3);
        assert!(out.inhibit.iter().all(|(_, on)| *on));
        // A fourth room joins the event and is inhibited at once.
        let out = z.member_raised(room(4), t(200), t(200));
        assert_eq!(out.inhibit, vec![(room(4), true)]);
        // Recovery: below three active members the zone alarm returns, inhibition lifts.
        z.member_cleared(&room(1), t(300));
        let out = z.member_cleared(&room(2), t(310));
        assert_eq!(out.events[0].kind, EventKind::Cleared);
        assert_eq!(z.state(), AlarmState::ReturnedUnacked);
        assert_eq!(out.inhibit.iter().filter(|(_, on)| !*on).count(), 4);
        assert!(z.ack("op", "", t(320)).is_some());
        assert_eq!(z.state(), AlarmState::Normal);
    }

    #[test]
    fn rooms_spread_over_more_than_the_window_do_not_group() {
        let mut z = ZoneCorrelator::new(ZoneId::new("siming").unwrap(), ZoneConfig::default());
        let room = |i: u32| RoomId::new(&format!("XM-{i:04}")).unwrap();
        z.member_raised(room(1), t(0), t(0));
        z.member_raised(room(2), t(400), t(400));
        z.member_raised(room(3), t(700), t(700));
        assert_eq!(z.tick(t(800)).events.len(), 0);
        assert_eq!(z.state(), AlarmState::Normal);
    }
}
