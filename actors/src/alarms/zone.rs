//! The zone actor: one per supply zone, correlating its rooms' `inlet_pressure_low` alarms into
//! one `zone_event` alarm (see [`cistern_rules::zone`]) that inhibits the members'.
//!
//! - Receives: [`MemberEvent`] from its rooms (events of the member rule only), [`ZoneMembers`]
//!   once at start, [`AckZone`] from the API; ticks every second for its on-delay.
//! - Emits: [`SetExternal`] (`zone_event` on/off) to member rooms; its events and state to the
//!   alarm store and board.
//! - On failure: restarted in place by its supervisor, it reloads its last saved state.

use super::{AlarmView, RuleHost};
use crate::clock::Clock;
use crate::mailbox::Post;
use crate::supervision::ActorError;
use actix::prelude::*;
use cistern_rules::zone::zone_event_rule;
use cistern_rules::{AlarmEvent, RuleId, ZoneCorrelator, ZoneOutput};
use cistern_schemas::{RoomId, Timestamp, ZoneId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// An event of a member rule in one of the zone's rooms.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct MemberEvent(pub AlarmEvent);

/// Sets a condition from outside a room (`zone_event`) that its rules may name as a parent.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SetExternal {
    pub rule: RuleId,
    pub active: bool,
}

/// The zone's rooms, given once their actors run.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ZoneMembers(pub Vec<(RoomId, Recipient<SetExternal>)>);

/// Acknowledges the zone alarm.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<AlarmEvent>, ActorError>")]
pub struct AckZone {
    pub user: String,
    pub comment: String,
}

/// The correlator of one zone (see the module doc).
#[derive(Debug)]
pub struct ZoneActor {
    zone: ZoneId,
    host: Arc<RuleHost>,
    clock: Arc<dyn Clock>,
    correlator: ZoneCorrelator,
    rooms: HashMap<RoomId, Recipient<SetExternal>>,
    source: String,
}

impl ZoneActor {
    pub fn new(zone: ZoneId, host: Arc<RuleHost>, clock: Arc<dyn Clock>) -> Self {
        let correlator = Self::load(&zone, &host, clock.now());
        Self {
            source: format!("zone:{zone}"),
            zone,
            host,
            clock,
            correlator,
            rooms: HashMap::new(),
        }
    }

    /// The zone's correlator as last saved, its alarm put back on the board (a process or
    /// actor restart must not leave a standing zone alarm off it).
    fn load(zone: &ZoneId, host: &RuleHost, now: Timestamp) -> ZoneCorrelator {
        let correlator = match host.store.load_zone(zone) {
            Some(state) => ZoneCorrelator::restore(zone.clone(), host.zone.clone(), state),
            None => ZoneCorrelator::new(zone.clone(), host.zone.clone()),
        };
        let source = format!("zone:{zone}");
        let rec = correlator.snapshot().record;
        let first_out = host.board.first_out(&super::alarm_id(&source, &rec.key));
        let view = AlarmView::of(&source, None, zone, &rec, first_out, now);
        host.board.rebuild_source(&source, vec![view]);
        correlator
    }

    fn publish(&mut self, out: ZoneOutput) {
        for (room, active) in out.inhibit {
            match self.rooms.get(&room) {
                Some(r) => {
                    if r.post(SetExternal {
                        rule: zone_event_rule(),
                        active,
                    })
                    .is_err()
                    {
                        tracing::error!(zone = %self.zone, %room, "room did not take the zone inhibition");
                    }
                }
                None => {
                    tracing::warn!(zone = %self.zone, %room, "zone member unknown to the zone actor")
                }
            }
        }
        self.record(&out.events);
    }

    fn record(&mut self, events: &[AlarmEvent]) {
        if events.is_empty() {
            return;
        }
        let now = self.clock.now();
        for e in events {
            self.host
                .metrics
                .events
                .with_label_values(&[e.kind.as_str()])
                .inc();
            if e.kind == cistern_rules::EventKind::Raised {
                self.host.metrics.annunciations.record(e.time);
            }
            tracing::info!(zone = %self.zone, event = %e, "zone alarm event");
        }
        let snap = self.correlator.snapshot();
        let first_out = events.iter().any(|e| e.first_out)
            || self
                .host
                .board
                .first_out(&super::alarm_id(&self.source, &snap.record.key));
        let mut view = AlarmView::of(&self.source, None, &self.zone, &snap.record, first_out, now);
        // The zone's record keeps no message: the events carry the members.
        if let Some(e) = events.last() {
            view.message.clone_from(&e.message);
            view.message_zh.clone_from(&e.message_zh);
            view.value.clone_from(&e.value);
        }
        self.host.board.update(view);
        self.host.store.record(events);
        self.host.board.publish_events(events);
        self.host.store.save_zone(&self.zone, snap);
    }
}

impl Actor for ZoneActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(0);
        ctx.run_interval(Duration::from_secs(1), |act, _| {
            let now = act.clock.now();
            if act.correlator.next_deadline().is_some_and(|d| d <= now) {
                let out = act.correlator.tick(now);
                act.publish(out);
            }
        });
    }
}

impl Supervised for ZoneActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::info!(zone = %self.zone, "zone actor restarting from its saved state");
        self.correlator = Self::load(&self.zone, &self.host, self.clock.now());
    }
}

impl Handler<ZoneMembers> for ZoneActor {
    type Result = ();

    fn handle(&mut self, msg: ZoneMembers, _ctx: &mut Self::Context) {
        self.rooms = msg.0.into_iter().collect();
    }
}

impl Handler<MemberEvent> for ZoneActor {
    type Result = ();

    fn handle(&mut self, msg: MemberEvent, _ctx: &mut Self::Context) {
        let now = self.clock.now();
        let out = self.correlator.observe(&msg.0, now);
        self.publish(out);
    }
}

impl Handler<AckZone> for ZoneActor {
    type Result = Result<Vec<AlarmEvent>, ActorError>;

    fn handle(&mut self, msg: AckZone, _ctx: &mut Self::Context) -> Self::Result {
        let now = self.clock.now();
        let events: Vec<AlarmEvent> = self
            .correlator
            .ack(&msg.user, &msg.comment, now)
            .into_iter()
            .collect();
        self.record(&events);
        Ok(events)
    }
}
