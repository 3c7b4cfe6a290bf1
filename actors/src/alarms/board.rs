//! The alarm board: every alarm of the node that is not normal (unacknowledged, acknowledged,
//! returned-unacknowledged, shelved, suppressed, out of service), kept current by the room and
//! zone actors after every transition. Listings and the fleet's alarm gauges read it; no actor
//! is asked. Every change is also reported to the [`LiveFeed`] (dashboards), when one is set.

use super::metrics::RuleMetrics;
use crate::LiveFeed;
use cistern_rules::alarm::{Pending, ServiceInfo, ShelveInfo};
use cistern_rules::AlarmEvent;
use cistern_rules::{AlarmKey, AlarmRecord, AlarmState, FactValue, RuleId, Severity};
use cistern_schemas::{DeviceId, RoomId, Timestamp, ZoneId};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// The API id of an alarm: `<room>/<rule>@<unit>` (`XM-0001/pump_fault@P1`), or
/// `zone:<zone>/zone_event@room` for a zone's alarm.
pub fn alarm_id(source: &str, key: &AlarmKey) -> String {
    format!("{source}/{key}")
}

/// One alarm as operators see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmView {
    pub id: String,
    /// The room, for a room's alarm; none for a zone's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomId>,
    pub zone: ZoneId,
    /// The device the alarm is about (`XM-0001/P1`); none for a zone's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    pub rule: RuleId,
    pub key: AlarmKey,
    pub severity: Severity,
    pub state: AlarmState,
    /// The condition holds (past its on-delay).
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raised_at: Option<Timestamp>,
    /// The first alarm of its room's burst.
    pub first_out: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<AlarmKey>,
    /// What is wrong, in English, rendered while the condition held (a returned alarm keeps it).
    pub message: String,
    /// The same in Chinese (the rule's `message_zh`; the English text for a rule without one).
    pub message_zh: String,
    /// The latest value while the alarm was on; once it has returned, the value it returned with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<FactValue>,
    /// The value when the alarm was raised ("was {raised_value}, now {value}").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raised_value: Option<FactValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shelve: Option<ShelveInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_service: Option<ServiceInfo>,
    /// Escalation steps reached so far.
    pub escalation_step: u8,
    /// A latched alarm whose condition cleared: it waits for a reset.
    pub awaiting_reset: bool,
    /// A running on-delay: the condition holds and the alarm is raised at `due` unless it goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_on: Option<Pending>,
    /// A running off-delay: the condition went and the alarm clears at `due` unless it returns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_off: Option<Pending>,
    pub updated: Timestamp,
}

impl AlarmView {
    /// The view of `rec`; `first_out` is carried over from the event that raised it.
    pub fn of(
        source: &str,
        room: Option<&RoomId>,
        zone: &ZoneId,
        rec: &AlarmRecord,
        first_out: bool,
        now: Timestamp,
    ) -> Self {
        Self {
            id: alarm_id(source, &rec.key),
            room: room.cloned(),
            zone: zone.clone(),
            device: room.map(|r| DeviceId::new(r.clone(), rec.key.unit)),
            rule: rec.key.rule.clone(),
            key: rec.key.clone(),
            severity: rec.severity,
            state: rec.state(),
            active: rec.active,
            raised_at: rec.raised_at,
            first_out,
            suppressed_by: rec.suppressed_by.clone(),
            message: rec.message.clone(),
            // A record stored before `message_zh` existed has none until it is re-rendered.
            message_zh: if rec.message_zh.is_empty() {
                rec.message.clone()
            } else {
                rec.message_zh.clone()
            },
            value: rec.value.clone(),
            raised_value: rec.raised_value.clone(),
            limit: rec.limit,
            shelve: rec.shelve.clone(),
            out_of_service: rec.out_of_service.clone(),
            escalation_step: rec.escalation.map_or(0, |e| e.next_step),
            awaiting_reset: rec.latched_clear,
            pending_on: rec.pending_on,
            pending_off: rec.pending_off,
            updated: now,
        }
    }

    /// Whether the board lists it.
    pub fn listed(&self) -> bool {
        self.state != AlarmState::Normal || self.active
    }
}

/// What a listing selects (every field optional: all must match).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlarmFilter {
    pub states: Vec<AlarmState>,
    pub severities: Vec<Severity>,
    pub room: Option<RoomId>,
    pub zone: Option<ZoneId>,
    pub rule: Option<RuleId>,
}

impl AlarmFilter {
    pub fn matches(&self, v: &AlarmView) -> bool {
        (self.states.is_empty() || self.states.contains(&v.state))
            && (self.severities.is_empty() || self.severities.contains(&v.severity))
            && self
                .room
                .as_ref()
                .is_none_or(|r| v.room.as_ref() == Some(r))
            && self.zone.as_ref().is_none_or(|z| &v.zone == z)
            && self.rule.as_ref().is_none_or(|r| &v.rule == r)
    }
}

/// Every alarm that is not normal (see the module doc).
#[derive(Debug)]
pub struct AlarmBoard {
    alarms: DashMap<String, AlarmView>,
    metrics: RuleMetrics,
    /// Set once by the node, before the actors start.
    live: OnceLock<Arc<dyn LiveFeed>>,
}

impl AlarmBoard {
    pub fn new(metrics: RuleMetrics) -> Self {
        Self {
            alarms: DashMap::new(),
            metrics,
            live: OnceLock::new(),
        }
    }

    /// Reports every later change of the board, and every alarm event, to `live`. Only the
    /// first call takes effect.
    pub fn set_live(&self, live: Arc<dyn LiveFeed>) {
        let _ = self.live.set(live);
    }

    /// Hands alarm events to the live feed (the actors call it beside `AlarmStore::record`).
    pub fn publish_events(&self, events: &[AlarmEvent]) {
        if let Some(live) = self.live.get() {
            live.alarm_events(events);
        }
    }

    /// Puts a view on the board, or takes it off when it is normal again; keeps the
    /// `cistern_alarm_active` gauges in step.
    pub fn update(&self, view: AlarmView) {
        if let Some(live) = self.live.get() {
            live.alarm_changed(&view);
        }
        let old = if view.listed() {
            let gauge = self.gauge(&view);
            gauge.inc();
            self.alarms.insert(view.id.clone(), view)
        } else {
            self.alarms.remove(&view.id).map(|(_, v)| v)
        };
        if let Some(old) = old {
            self.gauge(&old).dec();
        }
    }

    /// Puts an alarm source's alarms on the board as its engine holds them (a room or zone
    /// actor that starts or restarts from saved state): each of `views` is put on (or taken off
    /// when normal), and whatever the board still lists for `source` that `views` does not
    /// name is taken off. Without it a process restart would leave standing alarms off the
    /// board until their next transition.
    pub fn rebuild_source(&self, source: &str, views: Vec<AlarmView>) {
        let prefix = format!("{source}/");
        let named: std::collections::HashSet<String> = views.iter().map(|v| v.id.clone()).collect();
        let gone: Vec<AlarmView> = self
            .alarms
            .iter()
            .filter(|v| v.id.starts_with(&prefix) && !named.contains(&v.id))
            .map(|v| v.clone())
            .collect();
        for mut v in gone {
            v.state = AlarmState::Normal;
            v.active = false;
            self.update(v);
        }
        for v in views {
            self.update(v);
        }
    }

    /// Takes every alarm of `source` off the board without reporting a change (the room
    /// stopped on this node: its alarms stand on, owned by another node); keeps the gauges in
    /// step. Returns how many were taken off.
    pub fn remove_source(&self, source: &str) -> usize {
        let prefix = format!("{source}/");
        let ids: Vec<String> = (self.alarms.iter())
            .filter(|v| v.id.starts_with(&prefix))
            .map(|v| v.id.clone())
            .collect();
        let mut removed = 0;
        for id in ids {
            if let Some((_, old)) = self.alarms.remove(&id) {
                self.gauge(&old).dec();
                removed += 1;
            }
        }
        removed
    }

    fn gauge(&self, v: &AlarmView) -> prometheus::IntGauge {
        self.metrics
            .active
            .with_label_values(&[v.severity.as_str(), v.state.as_str()])
    }

    pub fn get(&self, id: &str) -> Option<AlarmView> {
        self.alarms.get(id).map(|v| v.clone())
    }

    /// Whether an alarm on the board came first in its burst.
    pub fn first_out(&self, id: &str) -> bool {
        self.alarms.get(id).is_some_and(|v| v.first_out)
    }

    /// The alarms matching `filter`, most severe first, then newest first.
    pub fn list(&self, filter: &AlarmFilter) -> Vec<AlarmView> {
        let mut out: Vec<AlarmView> = self
            .alarms
            .iter()
            .filter(|v| filter.matches(v))
            .map(|v| v.clone())
            .collect();
        out.sort_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(b.raised_at.cmp(&a.raised_at))
                .then(a.id.cmp(&b.id))
        });
        out
    }

    /// Alarms on the board that are active or unacknowledged (not shelved, suppressed or out
    /// of service), by zone and severity: the fleet gauges' figure.
    pub fn counts_by_zone(&self) -> std::collections::HashMap<(ZoneId, Severity), u64> {
        let mut out = std::collections::HashMap::new();
        for v in self.alarms.iter() {
            let standing = matches!(
                v.state,
                AlarmState::Unacked | AlarmState::Acked | AlarmState::ReturnedUnacked
            );
            if standing {
                *out.entry((v.zone.clone(), v.severity)).or_insert(0) += 1;
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.alarms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alarms.is_empty()
    }
}
