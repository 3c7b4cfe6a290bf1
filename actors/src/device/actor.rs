//! The generic device actor: one point table, one kind-specific behaviour.

use super::messages::{
    ApplyRecords, BookmarkVideo, DeviceView, GetDeviceView, Intake, RetireDevice, RoomObserved,
    Sweep,
};
use super::table::PointTable;
use crate::alarms::{fill_points, Bookmark, DerivedFacts, DeviceChanged, ReportFacts, RuleHost};
use crate::clock::Clock;
use crate::mailbox::Post;
use crate::metrics::ActorMetrics;
use crate::ports::{Arrival, Receipt, SampleSink, SnapshotStore};
use crate::supervision::{guarded, ActorError};
use crate::ActorConfig;
use actix::{Actor, AsyncContext, Context, Handler, Recipient, SpawnHandle, Supervised};
use cistern_rules::PointFacts;
use cistern_schemas::reading::{IngestSource, Record};
use cistern_schemas::{DeviceId, DeviceKind, PointSpec, Timestamp};
use std::sync::Arc;

/// What the actors of one room (and the whole fleet) share.
#[derive(Clone, Debug)]
pub struct DeviceDeps {
    pub clock: Arc<dyn Clock>,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub sink: Arc<dyn SampleSink>,
    pub metrics: ActorMetrics,
    pub config: Arc<ActorConfig>,
    /// The alarm rules and their ports; none runs no rules.
    pub rules: Option<Arc<RuleHost>>,
    /// Where live changes go for dashboards (never blocks).
    pub live: Arc<dyn crate::LiveFeed>,
    /// Where actors post the live figures the fleet gauges sum up.
    pub figures: Arc<crate::figures::LiveFigures>,
}

/// The kind-specific part of a device actor: the state it derives from its points.
pub trait DeviceBehaviour: Default + Unpin + Sized + 'static {
    const KIND: DeviceKind;
    /// The device's inventory entry.
    type Spec: Clone + Unpin + Send + std::fmt::Debug + 'static;
    type Derived: serde::Serialize;

    /// Derived state from the live points.
    fn derive(&self, spec: &Self::Spec, table: &PointTable, now: Timestamp) -> Self::Derived;

    /// Takes in room-level context; most kinds ignore it.
    fn observe_room(&mut self, _obs: &RoomObserved) {}

    /// Follows the live points after a batch was applied (a tank tracks its level trend).
    fn applied(&mut self, _table: &PointTable, _now: Timestamp) {}

    /// Derived facts for the room's rules.
    fn rule_facts(&self, _spec: &Self::Spec, _table: &PointTable, _now: Timestamp) -> DerivedFacts {
        DerivedFacts::None
    }

    /// Keeps a video bookmark an alarm asked for; only cameras have video.
    fn bookmark(&mut self, _bookmark: Bookmark) {}

    /// Posts the device's figures for the fleet gauges after a change (a tank: its level).
    fn post_figures(
        &self,
        _id: &DeviceId,
        _spec: &Self::Spec,
        _table: &PointTable,
        _figures: &crate::figures::LiveFigures,
    ) {
    }
}

/// A pump, tank or camera (see [`crate::device`] for its contract).
#[derive(Debug)]
pub struct DeviceActor<B: DeviceBehaviour> {
    id: DeviceId,
    spec: B::Spec,
    specs: Arc<[PointSpec]>,
    table: PointTable,
    behaviour: B,
    deps: DeviceDeps,
    /// The room, which mirrors the device's facts for its rules.
    parent: Option<Recipient<DeviceChanged>>,
    /// Derived facts last reported.
    reported: DerivedFacts,
    /// Taken off this node with its room: idle until its last address is dropped.
    retired: bool,
    /// The sweep timer, cancelled on retirement.
    sweeper: Option<SpawnHandle>,
}

impl DeviceDeps {
    /// Applies records to a device's table and passes on what that did: counts, accepted
    /// samples to the sink with the batch's receipt, a fresh snapshot when live state changed.
    /// Returns whether it did.
    pub fn apply(
        &self,
        id: &DeviceId,
        table: &mut PointTable,
        records: &[Record],
        receipt: Receipt,
        source: Option<IngestSource>,
    ) -> bool {
        let now = self.clock.now();
        let c = &self.config;
        let out = table.apply(records, now, c.stale_periods, c.max_future_skew);
        tracing::debug!(
            device = %id,
            live = out.live.len(),
            backfill = out.backfill.len(),
            duplicates = out.duplicates,
            "applied; handing the samples to the historian"
        );
        let m = &self.metrics;
        m.applied.inc_by(out.live_count() as u64);
        m.duplicates.inc_by(out.duplicates as u64);
        m.backfill.inc_by(out.backfill_count() as u64);
        if out.future > 0 {
            m.future
                .with_label_values(&[&id.unit.kind().to_string()])
                .inc_by(out.future as u64);
            tracing::debug!(device = %id, refused = out.future, "samples stamped in the future refused");
        }
        if let Some(t) = out.live.last().map(|r| r.t) {
            m.lag.observe(source, now, t);
        }
        // The receipt goes with the last handover (the sink keeps them in order); with nothing
        // to store, the batch is done.
        let mut receipt = Some(receipt);
        if !out.backfill.is_empty() {
            let last = if out.live.is_empty() {
                receipt.take()
            } else {
                None
            };
            self.sink.accept(
                id,
                Arrival::Backfill,
                &out.backfill,
                last.unwrap_or_default(),
            );
        }
        if out.live.is_empty() {
            if let Some(receipt) = receipt {
                receipt.complete();
            }
            return false;
        }
        self.sink
            .accept(id, Arrival::Live, &out.live, receipt.unwrap_or_default());
        self.snapshots.save(id, table.snapshot(now));
        true
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> DeviceActor<B> {
    pub fn new(
        id: DeviceId,
        spec: B::Spec,
        specs: Arc<[PointSpec]>,
        deps: DeviceDeps,
        parent: Option<Recipient<DeviceChanged>>,
    ) -> Self {
        let table = PointTable::new(specs.clone());
        let parent = parent.filter(|_| deps.rules.is_some());
        let mut actor = Self {
            id,
            spec,
            specs,
            table,
            behaviour: B::default(),
            deps,
            parent,
            reported: DerivedFacts::None,
            retired: false,
            sweeper: None,
        };
        actor.rebuild();
        actor
    }

    /// Forgets everything and reloads the last snapshot, as a fresh actor would.
    fn rebuild(&mut self) {
        self.table = PointTable::new(self.specs.clone());
        self.behaviour = B::default();
        if let Some(snap) = self.deps.snapshots.load(&self.id) {
            let (now, skew) = (self.deps.clock.now(), self.deps.config.max_future_skew);
            if !self.table.restore(&snap, now, skew) {
                tracing::warn!(device = %self.id, "snapshot does not match the point catalog; starting empty");
            }
        }
    }

    fn kind_label() -> &'static str {
        match B::KIND {
            DeviceKind::Room => "room",
            DeviceKind::Pump => "pump",
            DeviceKind::Tank => "tank",
            DeviceKind::Camera => "camera",
        }
    }

    fn apply(&mut self, records: &[Record], receipt: Receipt, source: Option<IngestSource>) {
        if self
            .deps
            .apply(&self.id, &mut self.table, records, receipt, source)
        {
            let now = self.deps.clock.now();
            self.behaviour.applied(&self.table, now);
            self.behaviour
                .post_figures(&self.id, &self.spec, &self.table, &self.deps.figures);
            self.report();
            self.publish_live();
        }
    }

    /// Tells dashboards watching the room (if any) the device's new live view.
    fn publish_live(&self) {
        if self.deps.live.watches(&self.id.room) {
            self.deps.live.device_changed(self.view());
        }
    }

    /// Sends the device's facts to its room's rules (when it runs rules).
    fn report(&mut self) {
        let Some(parent) = &self.parent else { return };
        let now = self.deps.clock.now();
        let mut points = PointFacts::new(B::KIND);
        fill_points(&self.table, &mut points, now);
        let derived = self.behaviour.rule_facts(&self.spec, &self.table, now);
        self.reported = derived;
        if parent
            .post(DeviceChanged {
                unit: self.id.unit,
                points,
                derived,
            })
            .is_err()
        {
            tracing::warn!(device = %self.id, "room did not take the device's facts");
        }
    }

    fn sweep(&mut self) {
        if self.retired {
            return;
        }
        let now = self.deps.clock.now();
        let n = self.table.sweep(now, self.deps.config.stale_periods);
        self.deps.metrics.stale_transitions.inc_by(n as u64);
        if n > 0 {
            self.report();
            self.publish_live();
        }
    }

    fn view(&self) -> DeviceView {
        let derived = self
            .behaviour
            .derive(&self.spec, &self.table, self.deps.clock.now());
        DeviceView {
            id: self.id.clone(),
            kind: B::KIND,
            derived: serde_json::to_value(derived).unwrap_or(serde_json::Value::Null),
            points: self.table.views(),
        }
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> Actor for DeviceActor<B> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Unbounded: what reaches a device is bounded by its room's intake permits, which are
        // released only once applied (actix's own bounded `send` can lose its wake-up).
        ctx.set_mailbox_capacity(0);
        if self.retired {
            return;
        }
        self.deps
            .metrics
            .running
            .with_label_values(&[Self::kind_label()])
            .inc();
        self.sweeper = Some(ctx.run_interval(self.deps.config.sweep_every, |act, _| act.sweep()));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.deps
            .metrics
            .running
            .with_label_values(&[Self::kind_label()])
            .dec();
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> Supervised for DeviceActor<B> {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        if self.retired {
            return;
        }
        tracing::info!(device = %self.id, "restarting from the last snapshot");
        self.rebuild();
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> Handler<RetireDevice> for DeviceActor<B> {
    type Result = ();

    fn handle(&mut self, _msg: RetireDevice, ctx: &mut Self::Context) {
        if self.retired {
            return;
        }
        self.retired = true;
        if let Some(h) = self.sweeper.take() {
            ctx.cancel_future(h);
        }
        let now = self.deps.clock.now();
        self.deps.snapshots.save(&self.id, self.table.snapshot(now));
        self.parent = None;
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> Handler<ApplyRecords> for DeviceActor<B> {
    type Result = Result<(), ActorError>;

    fn handle(&mut self, msg: ApplyRecords, ctx: &mut Self::Context) -> Self::Result {
        let id = self.id.clone();
        let metrics = self.deps.metrics.clone();
        let ApplyRecords { records, intake } = msg;
        let Intake {
            permit,
            receipt,
            span,
            source,
        } = intake;
        let _span = span.enter();
        if self.retired {
            tracing::error!(device = %id, "batch for a retired device dropped");
            return Ok(());
        }
        let result = guarded(self, ctx, Self::kind_label(), &id, &metrics, |act, _| {
            act.apply(&records, receipt, source)
        });
        drop(permit);
        result
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> Handler<RoomObserved> for DeviceActor<B> {
    type Result = ();

    fn handle(&mut self, msg: RoomObserved, _ctx: &mut Self::Context) {
        self.behaviour.observe_room(&msg);
        if self.parent.is_some() {
            let now = self.deps.clock.now();
            if self.behaviour.rule_facts(&self.spec, &self.table, now) != self.reported {
                self.report();
            }
        }
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> Handler<ReportFacts> for DeviceActor<B> {
    type Result = ();

    fn handle(&mut self, _msg: ReportFacts, _ctx: &mut Self::Context) {
        self.report();
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> Handler<BookmarkVideo> for DeviceActor<B> {
    type Result = ();

    fn handle(&mut self, msg: BookmarkVideo, _ctx: &mut Self::Context) {
        self.behaviour.bookmark(msg.0);
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> Handler<Sweep> for DeviceActor<B> {
    type Result = ();

    fn handle(&mut self, _msg: Sweep, _ctx: &mut Self::Context) {
        self.sweep();
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> Handler<super::messages::SetSpec<B::Spec>>
    for DeviceActor<B>
{
    type Result = ();

    fn handle(&mut self, msg: super::messages::SetSpec<B::Spec>, _ctx: &mut Self::Context) {
        self.spec = msg.0;
    }
}

impl<B: DeviceBehaviour + std::fmt::Debug> Handler<GetDeviceView> for DeviceActor<B> {
    type Result = Result<DeviceView, ActorError>;

    fn handle(&mut self, _msg: GetDeviceView, ctx: &mut Self::Context) -> Self::Result {
        let id = self.id.clone();
        let metrics = self.deps.metrics.clone();
        guarded(self, ctx, Self::kind_label(), &id, &metrics, |act, _| {
            act.view()
        })
    }
}

#[cfg(test)]
impl<B: DeviceBehaviour + std::fmt::Debug> Handler<super::messages::Crash> for DeviceActor<B> {
    type Result = Result<(), ActorError>;

    #[allow(clippy::panic)]
    fn handle(&mut self, _msg: super::messages::Crash, ctx: &mut Self::Context) -> Self::Result {
        let id = self.id.clone();
        let metrics = self.deps.metrics.clone();
        guarded(self, ctx, Self::kind_label(), &id, &metrics, |act, _| {
            // Leave the state half-modified first, as a real bug would.
            act.table = PointTable::new(act.specs.clone());
            panic!("injected fault in {}", act.id)
        })
    }
}
