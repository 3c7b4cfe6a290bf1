//! The work-order service: creates orders (from an annunciated alarm, or by hand), dispatches
//! them by the roster, applies the commands of the API and the crews, and escalates missed
//! targets. Every change is a compare-and-set on the records port (a conflicting writer makes
//! it read again and re-apply), so two crews pressing Accept at once give one acceptance and
//! one clear refusal, and nothing is lost to a race.
//!
//! Orders are created one at a time (a short async lock): the claim, the id and the write of a
//! new order are a few store round trips, and serialising them keeps the per-person loads the
//! dispatcher balances on exact.

use super::knowledge::Knowledge;
use super::model::{AlarmLink, Caller, Command, Context, OrderId, OrderState, WorkOrder};
use super::store::{Claim, OrderFilter, OrderStore};
use super::teams::Roster;
use super::templates::{Template, Templates};
use super::{Sla, WorkOrdersConfig, WorkOrdersError};
use crate::store::records::{Records, RecordsError};
use cistern_actors::Clock;
use cistern_rules::Severity;
use cistern_schemas::inventory::Inventory;
use cistern_schemas::{DeviceId, RoomId, Timestamp, ZoneId};
use prometheus::{IntCounterVec, Opts, Registry};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The user the service acts as (dispatch, escalation, links).
pub const SYSTEM: &str = "system";

/// An alarm that asks for an order.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmOrder {
    /// The board's id (`XM-0001/pump_fault@P1`).
    pub alarm: String,
    pub room: RoomId,
    pub device: Option<DeviceId>,
    /// The rule (the order's cause).
    pub rule: String,
    pub template: String,
    pub severity: Severity,
    pub raised_at: Timestamp,
    pub message: String,
    pub message_zh: String,
}

/// What became of an alarm's request.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Created(OrderId),
    /// Joined the open order for the same room and cause.
    Linked(OrderId),
    /// Already linked (a reconciliation or a redelivery).
    Unchanged(OrderId),
}

/// An order by hand.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOrder {
    pub template: String,
    pub room: RoomId,
    pub priority: Option<Severity>,
    /// Straight to this person (else the roster decides).
    pub assignee: Option<String>,
    pub comment: Option<String>,
}

#[derive(Clone, Debug)]
struct RoomInfo {
    name: String,
    zone: ZoneId,
}

/// Counters of the service (bounded labels only).
#[derive(Clone, Debug)]
pub struct OrderMetrics {
    /// Orders created, by origin (`alarm`, `manual`) and priority.
    pub created: IntCounterVec,
    /// Alarm raisings joined to an open order, by priority.
    pub linked: IntCounterVec,
    /// Escalations, by step (`lead`, `manager`) and priority.
    pub escalated: IntCounterVec,
}

impl OrderMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            created: IntCounterVec::new(
                Opts::new(
                    "cistern_workorders_created_total",
                    "Work orders created, by origin (alarm, manual) and priority",
                ),
                &["origin", "priority"],
            )?,
            linked: IntCounterVec::new(
                Opts::new(
                    "cistern_workorders_linked_total",
                    "Alarm recurrences joined to an open work order, by priority",
                ),
                &["priority"],
            )?,
            escalated: IntCounterVec::new(
                Opts::new(
                    "cistern_workorders_escalated_total",
                    "Work orders escalated for a missed target, by step (lead, manager) and priority",
                ),
                &["step", "priority"],
            )?,
        };
        registry.register(Box::new(m.created.clone()))?;
        registry.register(Box::new(m.linked.clone()))?;
        registry.register(Box::new(m.escalated.clone()))?;
        Ok(m)
    }
}

/// The service (see the module doc).
#[derive(Debug)]
pub struct WorkOrders {
    store: OrderStore,
    templates: Templates,
    roster: Roster,
    sla: Sla,
    clock: Arc<dyn Clock>,
    /// The rooms orders may be for: the inventory's at start, and rooms added since
    /// ([`WorkOrders::follow_room`], from the archive).
    rooms: std::sync::RwLock<HashMap<RoomId, RoomInfo>>,
    security: crate::auth::Security,
    metrics: OrderMetrics,
    creating: tokio::sync::Mutex<()>,
    /// Open orders per assignee (what dispatch balances), rebuilt from the store at start.
    load: Mutex<HashMap<String, usize>>,
    knowledge: Knowledge,
    /// Every order as written, after each durable write (see [`WorkOrders::subscribe`]).
    events: tokio::sync::broadcast::Sender<Arc<WorkOrder>>,
    /// Photos' bytes ([`super::attachments`]).
    attachments: super::attachments::AttachmentStore,
    max_attachment_bytes: u64,
    /// Crews' last positions and orders' trails ([`super::positions`]).
    positions: super::positions::Positions,
}

/// How many times a command re-reads and re-applies after losing a race.
const RETRIES: usize = 8;

/// Order events a listener may fall behind by before it is told it lagged.
pub const EVENTS: usize = 4096;

impl WorkOrders {
    /// Starts the service over `records`: loads the templates and the roster, and counts the
    /// open orders per person.
    pub async fn start(
        config: &WorkOrdersConfig,
        records: Arc<dyn Records>,
        inventory: &Inventory,
        clock: Arc<dyn Clock>,
        security: crate::auth::Security,
        metrics: OrderMetrics,
    ) -> Result<Self, WorkOrdersError> {
        let templates = match &config.templates {
            Some(path) => Templates::load(path)?,
            None => Templates::built_in()?,
        };
        let roster = Roster::new(
            config.teams.clone(),
            config.utc_offset_minutes,
            &config.holidays,
        )?;
        let rooms = inventory
            .rooms
            .iter()
            .map(|r| {
                (
                    r.id.clone(),
                    RoomInfo {
                        name: r.name.clone(),
                        zone: r.zone.clone(),
                    },
                )
            })
            .collect();
        let service = Self {
            attachments: super::attachments::AttachmentStore::new(records.clone())?,
            max_attachment_bytes: config.max_attachment_bytes,
            positions: super::positions::Positions::load(records.clone()).await?,
            knowledge: Knowledge::new(records.clone())?,
            store: OrderStore::new(records)?,
            templates,
            roster,
            sla: config.sla,
            clock,
            rooms: std::sync::RwLock::new(rooms),
            security,
            metrics,
            creating: tokio::sync::Mutex::new(()),
            load: Mutex::new(HashMap::new()),
            events: tokio::sync::broadcast::channel(EVENTS).0,
        };
        service.recount().await?;
        service.knowledge.load_edits().await?;
        Ok(service)
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    pub fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }

    fn room_info(&self, room: &RoomId) -> Option<RoomInfo> {
        let rooms = self.rooms.read().unwrap_or_else(|p| p.into_inner());
        rooms.get(room).cloned()
    }

    /// The zone of a room of the fleet.
    pub fn zone_of(&self, room: &RoomId) -> Option<ZoneId> {
        self.room_info(room).map(|r| r.zone)
    }

    /// Keeps a room's name and zone as the archive has them (a room added or renamed at
    /// runtime): orders may be raised for it at once.
    pub fn follow_room(&self, room: RoomId, name: String, zone: ZoneId) {
        let mut rooms = self.rooms.write().unwrap_or_else(|p| p.into_inner());
        rooms.insert(room, RoomInfo { name, zone });
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(super) fn attachment_store(&self) -> &super::attachments::AttachmentStore {
        &self.attachments
    }

    /// The largest attachment accepted, in bytes.
    pub fn max_attachment_bytes(&self) -> u64 {
        self.max_attachment_bytes
    }

    pub fn positions(&self) -> &super::positions::Positions {
        &self.positions
    }

    /// Every order after each durable write — created, linked to another alarm, commanded,
    /// escalated — for the notifications and the live feed. Its last transition says what
    /// happened (a link adds an alarm, not a transition). A receiver that falls more than
    /// [`EVENTS`] behind is told so (`Lagged`) and should re-read what it needs from the store;
    /// nobody listening costs nothing, and a slow listener never slows the service.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<WorkOrder>> {
        self.events.subscribe()
    }

    /// Tells the listeners (none is fine).
    fn publish(&self, order: &WorkOrder) {
        let _ = self.events.send(Arc::new(order.clone()));
    }

    /// Recounts the open orders per person from the store.
    async fn recount(&self) -> Result<(), WorkOrdersError> {
        let mut load = HashMap::new();
        for o in self.store.open().await? {
            if let Some(a) = o.assignee {
                *load.entry(a).or_insert(0) += 1;
            }
        }
        *self.load.lock().unwrap_or_else(|e| e.into_inner()) = load;
        Ok(())
    }

    fn loads(&self) -> HashMap<String, usize> {
        self.load.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Moves the load count from `before`'s assignee to `after`'s.
    fn track(&self, before: Option<&WorkOrder>, after: &WorkOrder) {
        let mut load = self.load.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = before
            .filter(|b| b.state.is_open())
            .and_then(|b| b.assignee.as_ref())
        {
            if let Some(n) = load.get_mut(a) {
                *n = n.saturating_sub(1);
            }
        }
        if let Some(a) = after.assignee.as_ref().filter(|_| after.state.is_open()) {
            *load.entry(a.clone()).or_insert(0) += 1;
        }
    }

    pub async fn get(&self, id: &OrderId) -> Result<WorkOrder, WorkOrdersError> {
        self.store
            .get(id)
            .await?
            .map(|(o, _)| o)
            .ok_or_else(|| WorkOrdersError::UnknownOrder(id.to_string()))
    }

    pub async fn list(&self, filter: &OrderFilter) -> Result<Vec<WorkOrder>, WorkOrdersError> {
        self.store.list(filter).await
    }

    /// Every open order (the gauges' backlog).
    pub async fn open_orders(&self) -> Result<Vec<WorkOrder>, WorkOrdersError> {
        self.store.open().await
    }

    /// Every order created in `[from, to]`, newest first.
    pub async fn created_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<WorkOrder>, WorkOrdersError> {
        self.store.created_between(from, to).await
    }

    /// The KPIs of the orders created in `[from, to]`, grouped by `by`.
    pub async fn kpis(
        &self,
        from: Timestamp,
        to: Timestamp,
        by: super::kpi::GroupBy,
    ) -> Result<Vec<super::kpi::Kpis>, WorkOrdersError> {
        let orders = self.store.created_between(from, to).await?;
        let before = Timestamp(from.as_millis() - 30 * 86_400_000);
        let history = self
            .store
            .created_between(before, Timestamp(from.as_millis() - 1))
            .await?;
        Ok(super::kpi::compute(&orders, &history, by, self.clock.now()))
    }

    /// A new order from `template` for `room` (not yet stored), dispatched by the roster unless
    /// `assignee` is given.
    fn draft(
        &self,
        id: OrderId,
        template: &Template,
        room: &RoomId,
        priority: Severity,
        created_by: &str,
        assignee: Option<String>,
    ) -> Result<WorkOrder, WorkOrdersError> {
        let now = self.clock.now();
        let info = self
            .room_info(room)
            .ok_or_else(|| WorkOrdersError::UnknownRoom(room.to_string()))?;
        let targets = self.sla.of(priority);
        let due = |d: std::time::Duration| now + d;
        let mut order = WorkOrder {
            id,
            kind: template.kind,
            template: Some(template.id.clone()),
            priority,
            state: OrderState::Created,
            title: template.title.replace("{room}", &info.name),
            title_zh: template.title_zh.replace("{room}", &info.name),
            room: Some(room.clone()),
            zone: Some(info.zone.clone()),
            device: None,
            cause: template.cause.clone(),
            alarms: Vec::new(),
            team: None,
            assignee: None,
            created_at: now,
            created_by: created_by.to_owned(),
            response_due: due(targets.response),
            resolution_due: due(targets.resolution),
            escalation: 0,
            checklist: template.checklist(),
            photos_required: template.photos,
            safety: template.safety.clone(),
            safety_zh: template.safety_zh.clone(),
            expected_parts: template.parts.clone(),
            parts: Vec::new(),
            minutes: 0,
            resolution: None,
            comments: Vec::new(),
            held_from: None,
            transitions: Vec::new(),
            attachments: Vec::new(),
        };
        let (team, person) = match assignee {
            Some(a) => (
                self.roster
                    .teams()
                    .iter()
                    .find(|t| t.members.iter().any(|m| m.user == a))
                    .map(|t| t.id.clone()),
                Some(a),
            ),
            None => {
                match self
                    .roster
                    .dispatch(Some(&info.zone), &template.skills, now, &self.loads())
                {
                    Some((team, person)) => (Some(team), person),
                    None => (None, None),
                }
            }
        };
        if team.is_some() || person.is_some() {
            order.apply(
                Command::Dispatch {
                    team,
                    assignee: person,
                },
                &Caller {
                    user: created_by.to_owned(),
                    dispatcher: true,
                },
                Context::default(),
                now,
            )?;
        }
        Ok(order)
    }

    /// An annunciated alarm whose rule names a template: creates its order, or links it to the
    /// open order of the same room and cause.
    pub async fn from_alarm(&self, alarm: &AlarmOrder) -> Result<Outcome, WorkOrdersError> {
        let template = self
            .templates
            .get(&alarm.template)
            .ok_or_else(|| WorkOrdersError::UnknownTemplate(alarm.template.clone()))?;
        if self.room_info(&alarm.room).is_none() {
            return Err(WorkOrdersError::UnknownRoom(alarm.room.to_string()));
        }
        let link = AlarmLink {
            alarm: alarm.alarm.clone(),
            raised_at: alarm.raised_at,
            severity: alarm.severity,
            message: alarm.message.clone(),
            message_zh: alarm.message_zh.clone(),
        };
        let _one_at_a_time = self.creating.lock().await;
        match self.store.claim(alarm.room.as_str(), &alarm.rule).await? {
            Claim::Held(id) => {
                let linked = self
                    .update(&id, |o, now| Ok(o.link(link.clone(), now)))
                    .await?;
                if linked.1 {
                    self.metrics
                        .linked
                        .with_label_values(&[alarm.severity.as_str()])
                        .inc();
                    Ok(Outcome::Linked(id))
                } else {
                    Ok(Outcome::Unchanged(id))
                }
            }
            Claim::Taken(id) => {
                let mut order = self.draft(
                    id.clone(),
                    template,
                    &alarm.room,
                    alarm.severity,
                    SYSTEM,
                    None,
                )?;
                order.cause = alarm.rule.clone();
                order.device = alarm.device.clone();
                order.alarms.push(link);
                self.store.put(&order, None).await?;
                self.track(None, &order);
                self.publish(&order);
                self.metrics
                    .created
                    .with_label_values(&["alarm", order.priority.as_str()])
                    .inc();
                tracing::info!(
                    order = %order.id,
                    alarm = %alarm.alarm,
                    team = ?order.team,
                    assignee = ?order.assignee,
                    "work order created from an alarm"
                );
                Ok(Outcome::Created(id))
            }
        }
    }

    /// An order by hand (an operator, from an alarm, a room or a report). Refused while the
    /// room has an open order of the same cause (its id is in the error).
    pub async fn create(
        &self,
        new: NewOrder,
        by: &str,
    ) -> Result<Result<WorkOrder, OrderId>, WorkOrdersError> {
        let template = self
            .templates
            .get(&new.template)
            .ok_or_else(|| WorkOrdersError::UnknownTemplate(new.template.clone()))?;
        if self.room_info(&new.room).is_none() {
            return Err(WorkOrdersError::UnknownRoom(new.room.to_string()));
        }
        if let Some(a) = &new.assignee {
            if !self
                .roster
                .teams()
                .iter()
                .any(|t| t.members.iter().any(|m| &m.user == a))
            {
                return Err(WorkOrdersError::UnknownTeam(format!("with member {a}")));
            }
        }
        let _one_at_a_time = self.creating.lock().await;
        let now = self.clock.now();
        let id = match self.store.claim(new.room.as_str(), &template.cause).await? {
            Claim::Held(id) => return Ok(Err(id)),
            Claim::Taken(id) => id,
        };
        let mut order = self.draft(
            id,
            template,
            &new.room,
            new.priority.unwrap_or(template.priority),
            by,
            new.assignee,
        )?;
        if let Some(c) = new.comment.filter(|c| !c.trim().is_empty()) {
            order.apply(
                Command::Comment,
                &Caller {
                    user: by.to_owned(),
                    dispatcher: true,
                },
                Context {
                    comment: Some(c),
                    position: None,
                },
                now,
            )?;
        }
        self.store.put(&order, None).await?;
        self.track(None, &order);
        self.publish(&order);
        self.metrics
            .created
            .with_label_values(&["manual", order.priority.as_str()])
            .inc();
        Ok(Ok(order))
    }

    /// Reads, changes and writes back an order, again on a concurrent change. `change` says
    /// whether it changed anything (nothing written if not).
    pub(super) async fn update<F>(
        &self,
        id: &OrderId,
        change: F,
    ) -> Result<(WorkOrder, bool), WorkOrdersError>
    where
        F: Fn(&mut WorkOrder, Timestamp) -> Result<bool, WorkOrdersError>,
    {
        for _ in 0..RETRIES {
            let (before, version) = self
                .store
                .get(id)
                .await?
                .ok_or_else(|| WorkOrdersError::UnknownOrder(id.to_string()))?;
            let mut order = before.clone();
            if !change(&mut order, self.clock.now())? {
                return Ok((order, false));
            }
            match self.store.put(&order, Some(version)).await {
                Ok(_) => {
                    self.track(Some(&before), &order);
                    self.publish(&order);
                    if before.state.is_open() && !order.state.is_open() {
                        if let Some(room) = &order.room {
                            self.store.release(room.as_str(), &order.cause, id).await?;
                        }
                    }
                    return Ok((order, true));
                }
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WorkOrdersError::Busy("the work order"))
    }

    /// Applies a caller's command (the state machine of [`super::model`] decides).
    pub async fn command(
        &self,
        id: &OrderId,
        command: Command,
        caller: &Caller,
        context: Context,
    ) -> Result<WorkOrder, WorkOrdersError> {
        if let Command::Dispatch {
            team: Some(team), ..
        } = &command
        {
            if self.roster.team(team).is_none() {
                return Err(WorkOrdersError::UnknownTeam(team.clone()));
            }
        }
        let verify = command == Command::Verify;
        let (order, _) = self
            .update(id, |o, now| {
                o.apply(command.clone(), caller, context.clone(), now)?;
                Ok(true)
            })
            .await?;
        // A verified fix teaches the knowledge base (the order is closed whatever happens here).
        if let (true, Some(resolution)) = (verify, &order.resolution) {
            if let Err(e) = self.knowledge.record(&order.cause, resolution).await {
                tracing::error!(order = %order.id, error = %e, "the knowledge base did not count a verified fix");
            }
        }
        Ok(order)
    }

    /// Escalates every open order past a target: no response by the response target → the
    /// team lead; still none after twice the target, or not completed by the resolution
    /// target → the manager. Each step once, recorded on the order and in the audit log.
    pub async fn escalate_due(&self) -> Result<usize, WorkOrdersError> {
        let now = self.clock.now();
        let mut escalated = 0;
        for o in self.store.open().await? {
            let Some(step) = self.due_step(&o, now) else {
                continue;
            };
            let team = o.team.as_deref().and_then(|t| self.roster.team(t));
            let to = match (step, team) {
                (1, Some(t)) => t.lead.clone(),
                (_, Some(t)) => t.manager.clone(),
                (_, None) => "manager".to_owned(),
            };
            let reason = if step == 1 {
                format!("not accepted within the {} response target", o.priority)
            } else if now > o.resolution_due {
                format!("not completed within the {} resolution target", o.priority)
            } else {
                format!(
                    "not accepted within twice the {} response target",
                    o.priority
                )
            };
            let (order, changed) = self
                .update(&o.id, |x, now| match self.due_step(x, now) {
                    Some(s) => {
                        x.escalate(s, &to, reason.clone(), now);
                        Ok(true)
                    }
                    None => Ok(false),
                })
                .await?;
            if changed {
                escalated += 1;
                let label = if order.escalation == 1 {
                    "lead"
                } else {
                    "manager"
                };
                self.metrics
                    .escalated
                    .with_label_values(&[label, order.priority.as_str()])
                    .inc();
                self.security.record(
                    &crate::auth::Principal::new(SYSTEM, crate::auth::Role::Operator),
                    "workorder_escalate",
                    order.id.as_str(),
                    format!("to {to} ({label}): {reason}"),
                    true,
                );
                tracing::warn!(order = %order.id, to = %to, step = label, %reason, "work order escalated");
            }
        }
        Ok(escalated)
    }

    /// The escalation step `o` has reached at `now` and not yet taken.
    fn due_step(&self, o: &WorkOrder, now: Timestamp) -> Option<u8> {
        if !o.state.is_open() || o.state == OrderState::Completed {
            return None;
        }
        let unresponded = o.responded_at().is_none();
        let response = self.sla.of(o.priority).response.as_millis() as i64;
        let step = if now > o.resolution_due
            || (unresponded && now.as_millis() > o.response_due.as_millis() + response)
        {
            2
        } else if unresponded && now > o.response_due {
            1
        } else {
            0
        };
        (step > o.escalation).then_some(step)
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::tests::store;
    use super::super::teams::{Day, Member, Shift, Team};
    use super::*;
    use cistern_actors::clock::ManualClock;

    fn inventory() -> Inventory {
        let toml = r#"
            [[zones]]
            id = "siming"
            name = "思明"
            [[rooms]]
            id = "XM-0001"
            name = "金山花园泵房"
            lat = 24.48
            lon = 118.09
            zone = "siming"
            pumps = []
            tanks = []
        "#;
        toml::from_str(toml).unwrap()
    }

    fn config() -> WorkOrdersConfig {
        WorkOrdersConfig {
            teams: vec![Team {
                id: "siming".into(),
                name: "思明维修班".into(),
                name_en: "Siming crew".into(),
                zones: vec![ZoneId::new("siming").unwrap()],
                lead: "lead".into(),
                manager: "boss".into(),
                members: vec![
                    Member {
                        user: "li".into(),
                        skills: vec!["electrical".into()],
                    },
                    Member {
                        user: "wang".into(),
                        skills: vec![],
                    },
                ],
                on_call: vec![Shift {
                    days: Day::EVERY.to_vec(),
                    from: "00:00".into(),
                    to: "00:00".into(),
                    users: vec!["li".into(), "wang".into()],
                }],
            }],
            ..Default::default()
        }
    }

    fn alarm(raised: i64) -> AlarmOrder {
        AlarmOrder {
            alarm: "XM-0001/pump_fault@P1".into(),
            room: RoomId::new("XM-0001").unwrap(),
            device: None,
            rule: "pump_fault".into(),
            template: "pump_fault".into(),
            severity: Severity::P2,
            raised_at: Timestamp(raised),
            message: "Pump P1 fault".into(),
            message_zh: "水泵 P1 故障".into(),
        }
    }

    async fn service(
        name: &str,
    ) -> (
        super::super::store::tests::Scratch,
        WorkOrders,
        Arc<ManualClock>,
    ) {
        let (scratch, _, records) = store(name);
        let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
        let svc = WorkOrders::start(
            &config(),
            records,
            &inventory(),
            clock.clone(),
            crate::auth::Security::default(),
            OrderMetrics::register(&Registry::new()).unwrap(),
        )
        .await
        .unwrap();
        (scratch, svc, clock)
    }

    #[tokio::test]
    async fn an_alarm_creates_one_dispatched_order_and_a_recurrence_links_to_it() {
        let (_s, svc, _c) = service("alarm").await;
        let Outcome::Created(id) = svc.from_alarm(&alarm(1)).await.unwrap() else {
            panic!("not created")
        };
        let o = svc.get(&id).await.unwrap();
        assert_eq!(o.state, OrderState::Dispatched);
        assert_eq!(o.assignee.as_deref(), Some("li"), "the electrician on call");
        assert_eq!(o.team.as_deref(), Some("siming"));
        assert_eq!(o.title_zh, "金山花园泵房 水泵故障");
        assert_eq!(
            svc.from_alarm(&alarm(2)).await.unwrap(),
            Outcome::Linked(id.clone())
        );
        assert_eq!(
            svc.from_alarm(&alarm(2)).await.unwrap(),
            Outcome::Unchanged(id.clone())
        );
        assert_eq!(svc.get(&id).await.unwrap().alarms.len(), 2);
        // The next order goes to the less loaded colleague.
        let mut other = alarm(3);
        other.rule = "outlet_pressure_low".into();
        other.template = "outlet_pressure_low".into();
        let Outcome::Created(second) = svc.from_alarm(&other).await.unwrap() else {
            panic!("not created")
        };
        assert_eq!(
            svc.get(&second).await.unwrap().assignee.as_deref(),
            Some("wang")
        );
    }

    #[tokio::test]
    async fn every_durable_write_is_published_once_and_an_unchanged_link_is_not() {
        let (_s, svc, _c) = service("events").await;
        let mut events = svc.subscribe();
        let Outcome::Created(id) = svc.from_alarm(&alarm(1)).await.unwrap() else {
            panic!("not created")
        };
        let created = events.try_recv().unwrap();
        assert_eq!((&created.id, created.state), (&id, OrderState::Dispatched));
        svc.from_alarm(&alarm(2)).await.unwrap();
        assert_eq!(events.try_recv().unwrap().alarms.len(), 2, "the link");
        svc.from_alarm(&alarm(2)).await.unwrap();
        let li = Caller {
            user: "li".into(),
            dispatcher: false,
        };
        svc.command(&id, Command::Accept, &li, Context::default())
            .await
            .unwrap();
        let accepted = events.try_recv().unwrap();
        assert_eq!(
            accepted.state,
            OrderState::Accepted,
            "no event for the unchanged link"
        );
        assert!(svc
            .command(&id, Command::Verify, &li, Context::default())
            .await
            .is_err());
        assert!(
            events.try_recv().is_err(),
            "a refused command publishes nothing"
        );
    }

    #[tokio::test]
    async fn an_unaccepted_order_goes_to_the_lead_then_the_manager_once_each() {
        let (_s, svc, clock) = service("escalate").await;
        let Outcome::Created(id) = svc.from_alarm(&alarm(1)).await.unwrap() else {
            panic!("not created")
        };
        assert_eq!(svc.escalate_due().await.unwrap(), 0);
        let start = clock.now().as_millis();
        let two_hours = 2 * 3_600_000;
        clock.set(Timestamp(start + two_hours + 1));
        assert_eq!(svc.escalate_due().await.unwrap(), 1);
        assert_eq!(svc.escalate_due().await.unwrap(), 0, "each step once");
        let o = svc.get(&id).await.unwrap();
        assert_eq!(o.escalation, 1);
        assert_eq!(
            o.transitions.last().unwrap().assignee.as_deref(),
            Some("lead")
        );
        clock.set(Timestamp(start + 2 * two_hours + 1));
        assert_eq!(svc.escalate_due().await.unwrap(), 1);
        let o = svc.get(&id).await.unwrap();
        assert_eq!(o.escalation, 2);
        assert_eq!(
            o.transitions.last().unwrap().assignee.as_deref(),
            Some("boss")
        );
    }

    #[tokio::test]
    async fn two_crews_accepting_at_once_give_one_acceptance_and_closing_frees_the_room() {
        let (_s, svc, _c) = service("race").await;
        let Outcome::Created(id) = svc.from_alarm(&alarm(1)).await.unwrap() else {
            panic!("not created")
        };
        // Back to the team's queue, so that anyone may accept.
        let boss = Caller {
            user: "boss".into(),
            dispatcher: true,
        };
        svc.command(
            &id,
            Command::Dispatch {
                team: None,
                assignee: None,
            },
            &boss,
            Context::default(),
        )
        .await
        .unwrap();
        let crew = |u: &str| Caller {
            user: u.into(),
            dispatcher: false,
        };
        let (li, wang) = (crew("li"), crew("wang"));
        let (a, b) = tokio::join!(
            svc.command(&id, Command::Accept, &li, Context::default()),
            svc.command(&id, Command::Accept, &wang, Context::default())
        );
        assert_eq!(
            [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count(),
            1,
            "{a:?} {b:?}"
        );
        let o = svc.get(&id).await.unwrap();
        assert_eq!(
            o.transitions
                .iter()
                .filter(|t| t.to == OrderState::Accepted)
                .count(),
            1
        );
        svc.command(
            &id,
            Command::Cancel,
            &boss,
            Context {
                comment: Some("duplicate report".into()),
                position: None,
            },
        )
        .await
        .unwrap();
        assert!(matches!(
            svc.from_alarm(&alarm(5)).await.unwrap(),
            Outcome::Created(new) if new != id
        ));
    }
}
