//! Annunciated alarms in: the dispatcher's side of the alarm path.
//!
//! [`AlarmTap`] wraps the node's alarm store: every event the alarm hosts record also goes,
//! with a non-blocking `try_send`, to a bounded queue the dispatcher drains. The alarm path
//! never waits for it; a full queue drops the event and counts it, and the reconciliation
//! ([`reconcile`], at start and every `[workorders] reconcile_every`) finds any standing
//! annunciated alarm without its order from the alarm board, which the node rebuilds whole
//! after a restart — so neither a full queue nor a `kill -9` leaves an alarm without its order.
//!
//! An alarm asks for an order when it becomes annunciated (raised, unsuppressed, unshelved,
//! returned to service — never while suppressed or shelved), its source is a room, and its
//! rule names a template (`work_order = "…"`). A cleared alarm closes nothing: the crew does.

use super::service::{AlarmOrder, Outcome, WorkOrders};
use cistern_actors::alarms::{AlarmBoard, AlarmFilter, AlarmStore, Bookmark, RuleHost};
use cistern_rules::zone::ZoneState;
use cistern_rules::{AlarmEvent, AlarmSource, EngineSnapshot, EventKind};
use cistern_schemas::{DeviceId, DeviceUnit, RoomId, ZoneId};
use prometheus::{IntCounter, Registry};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Events waiting for the dispatcher at most.
const QUEUE: usize = 10_000;

/// The alarm store with a tap (see the module doc).
#[derive(Debug)]
pub struct AlarmTap {
    inner: Arc<dyn AlarmStore>,
    tx: mpsc::Sender<AlarmEvent>,
    dropped: IntCounter,
}

impl AlarmTap {
    /// Wraps `inner`; the receiver goes to [`run`].
    pub fn new(
        inner: Arc<dyn AlarmStore>,
        registry: &Registry,
    ) -> Result<(Self, mpsc::Receiver<AlarmEvent>), prometheus::Error> {
        let dropped = IntCounter::new(
            "cistern_workorders_intake_dropped_total",
            "Alarm events the work-order dispatcher's full queue dropped (the reconciliation \
             finds their alarms)",
        )?;
        registry.register(Box::new(dropped.clone()))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        Ok((Self { inner, tx, dropped }, rx))
    }
}

impl AlarmStore for AlarmTap {
    fn load_room(&self, room: &RoomId) -> Option<EngineSnapshot> {
        self.inner.load_room(room)
    }
    fn save_room(&self, room: &RoomId, snapshot: EngineSnapshot) {
        self.inner.save_room(room, snapshot)
    }
    fn load_zone(&self, zone: &ZoneId) -> Option<ZoneState> {
        self.inner.load_zone(zone)
    }
    fn save_zone(&self, zone: &ZoneId, state: ZoneState) {
        self.inner.save_zone(zone, state)
    }
    fn record(&self, events: &[AlarmEvent]) {
        self.inner.record(events);
        for e in events.iter().filter(|e| asks_for_order(e)) {
            if self.tx.try_send(e.clone()).is_err() {
                self.dropped.inc();
            }
        }
    }
    fn bookmark(&self, bookmark: Bookmark) {
        self.inner.bookmark(bookmark)
    }
}

/// Whether the event is a raising operators see: a new raising (also one after a return to
/// normal that nobody acknowledged yet), or an alarm becoming annunciated again (unsuppressed,
/// unshelved, returned to service while active).
fn asks_for_order(e: &AlarmEvent) -> bool {
    e.to.annunciated()
        && (e.kind == EventKind::Raised || !e.from.annunciated())
        && matches!(e.source, AlarmSource::Device(_))
}

/// The order an event asks for, if its rule names a template.
fn order_for(host: &RuleHost, e: &AlarmEvent) -> Option<AlarmOrder> {
    let AlarmSource::Device(device) = &e.source else {
        return None;
    };
    let template = host.rules().meta(&e.rule)?.work_order.clone()?;
    let alarm = cistern_actors::alarms::alarm_id(device.room.as_str(), &e.key);
    // The raising's own instant identifies it (the board's, for an alarm annunciated again),
    // so that the reconciliation recognises the link.
    let raised_at = match e.kind {
        EventKind::Raised => e.time,
        _ => host
            .board
            .get(&alarm)
            .and_then(|v| v.raised_at)
            .unwrap_or(e.time),
    };
    Some(AlarmOrder {
        alarm,
        room: device.room.clone(),
        device: unit_device(&device.room, e.key.unit),
        rule: e.rule.to_string(),
        template,
        severity: e.severity,
        raised_at,
        message: e.message.clone(),
        message_zh: e.message_zh.clone(),
    })
}

fn unit_device(room: &RoomId, unit: DeviceUnit) -> Option<DeviceId> {
    (unit != DeviceUnit::Room).then(|| DeviceId::new(room.clone(), unit))
}

fn handle(outcome: Result<Outcome, super::WorkOrdersError>, alarm: &AlarmOrder) {
    match outcome {
        Ok(_) => {}
        Err(e) => tracing::error!(
            alarm = %alarm.alarm,
            template = %alarm.template,
            error = %e,
            "no work order for an annunciated alarm (the reconciliation will try again)"
        ),
    }
}

/// Creates the orders the standing annunciated alarms on `board` should have (idempotent: an
/// alarm already linked changes nothing). Returns how many orders it created or linked.
pub async fn reconcile(service: &WorkOrders, host: &RuleHost, board: &AlarmBoard) -> usize {
    let mut changed = 0;
    for v in board.list(&AlarmFilter::default()) {
        if !v.state.annunciated() {
            continue;
        }
        let (Some(room), Some(raised_at)) = (&v.room, v.raised_at) else {
            continue;
        };
        let Some(template) = host
            .rules()
            .meta(&v.rule)
            .and_then(|m| m.work_order.clone())
        else {
            continue;
        };
        let alarm = AlarmOrder {
            alarm: v.id.clone(),
            room: room.clone(),
            device: unit_device(room, v.key.unit),
            rule: v.rule.to_string(),
            template,
            severity: v.severity,
            raised_at,
            message: v.message.clone(),
            message_zh: v.message_zh.clone(),
        };
        let outcome = service.from_alarm(&alarm).await;
        if matches!(outcome, Ok(Outcome::Created(_) | Outcome::Linked(_))) {
            changed += 1;
        }
        handle(outcome, &alarm);
    }
    changed
}

/// The dispatcher's loop: orders for the tapped events as they come, the reconciliation at
/// start and every `reconcile_every`, the escalation check every `check_every`, until shutdown.
pub async fn run(
    service: Arc<WorkOrders>,
    host: Arc<RuleHost>,
    mut events: mpsc::Receiver<AlarmEvent>,
    check_every: Duration,
    reconcile_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut check = tokio::time::interval(check_every.max(Duration::from_millis(100)));
    let mut sweep = tokio::time::interval(reconcile_every.max(Duration::from_secs(1)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(e) = events.recv() => {
                if let Some(alarm) = order_for(&host, &e) {
                    handle(service.from_alarm(&alarm).await, &alarm);
                }
            }
            _ = sweep.tick() => {
                let n = reconcile(&service, &host, &host.board).await;
                if n > 0 {
                    tracing::info!(orders = n, "work orders reconciled with the standing alarms");
                }
            }
            _ = check.tick() => {
                if let Err(e) = service.escalate_due().await {
                    tracing::error!(error = %e, "work-order escalation check failed");
                }
            }
        }
    }
}
