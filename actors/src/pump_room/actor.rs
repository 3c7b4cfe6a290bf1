//! The pump-room actor's behaviour (see the module doc for its contract).

use super::alarms::{Followups, RoomAlarms};
use super::messages::{
    AlarmCommandError, GetAlarms, GetRoomView, NightLeak, Retire, RoomCommand, SamplesReceived,
    SwapRules, TankCleanings, UpdateSpec,
};
use super::state::{derive_room, ClockSkew, Link, RoomPart, RoomStatus, RoomView};
use crate::alarms::zone::{MemberEvent, SetExternal};
use crate::alarms::{Bookmark, DeviceChanged, ReportFacts};
use crate::camera::CameraActor;
use crate::device::messages::{
    ApplyRecords, BookmarkVideo, DeviceView, GetDeviceView, RetireDevice, RoomObserved, SetSpec,
    Sweep,
};
use crate::device::{DeviceActor, DeviceBehaviour, DeviceDeps, PointTable};
use crate::mailbox::Post;
use crate::pump::PumpActor;
use crate::registry::StatusBoard;
use crate::supervision::{guarded, ActorError};
use crate::tank::TankActor;
use actix::prelude::*;
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::reading::Record;
use cistern_schemas::{DeviceId, DeviceUnit, PointSpec};
use std::sync::Arc;
use std::time::Duration;

/// How long a view request waits for a child before reporting it unreachable.
const VIEW_TIMEOUT: Duration = Duration::from_secs(2);

/// Changes are evaluated this long after the first one, so that a gateway's burst (the room
/// and each of its devices) costs one evaluation.
const EVAL_COALESCE: Duration = Duration::from_millis(20);

/// A pump room (see [`crate::pump_room`]).
#[derive(Debug)]
pub struct PumpRoomActor {
    spec: Arc<RoomSpec>,
    id: DeviceId,
    specs: Arc<[PointSpec]>,
    table: PointTable,
    online: bool,
    last_seen: Option<cistern_schemas::Timestamp>,
    /// Source time of the newest good sample of the room or a device.
    last_data: Option<cistern_schemas::Timestamp>,
    /// The last sample refused for being stamped too far ahead.
    clock_skew: Option<ClockSkew>,
    pumps: Vec<Addr<PumpActor>>,
    tanks: Vec<Addr<TankActor>>,
    cameras: Vec<Addr<CameraActor>>,
    deps: DeviceDeps,
    board: Arc<StatusBoard>,
    /// The room's alarm engine (when the node runs rules).
    alarms: Option<RoomAlarms>,
    zone: Option<Recipient<MemberEvent>>,
    /// The `ingest` span of the last batch before the pending rule evaluation: the
    /// evaluation's span follows from it (see [`crate::Intake::span`]).
    rules_cause: Option<tracing::Span>,
    /// Each tank's last cleaning, as the cleaning service last said (kept across a restart in
    /// place; after a process restart the service says it again).
    cleanings: Vec<(u8, cistern_schemas::Timestamp)>,
    /// The nightly leak facts, as the analysis last said (kept across a restart in place).
    night_leak: Option<NightLeak>,
    /// Taken off this node ([`Retire`]): idle until its last address is dropped.
    retired: bool,
    /// The sweep timer, cancelled on retirement.
    sweeper: Option<SpawnHandle>,
}

impl PumpRoomActor {
    pub fn new(
        spec: Arc<RoomSpec>,
        deps: DeviceDeps,
        board: Arc<StatusBoard>,
        zone: Option<Recipient<MemberEvent>>,
    ) -> Self {
        let id = DeviceId::room(spec.id.clone());
        let specs: Arc<[PointSpec]> = spec.point_specs(DeviceUnit::Room).into();
        let mut actor = Self {
            table: PointTable::new(specs.clone()),
            specs,
            id,
            spec,
            online: false,
            last_seen: None,
            last_data: None,
            clock_skew: None,
            pumps: Vec::new(),
            tanks: Vec::new(),
            cameras: Vec::new(),
            deps,
            board,
            alarms: None,
            zone,
            rules_cause: None,
            cleanings: Vec::new(),
            night_leak: None,
            retired: false,
            sweeper: None,
        };
        actor.rebuild();
        actor
    }

    /// Reloads the room's own state: points from the last snapshot, status from the board.
    fn rebuild(&mut self) {
        self.table = PointTable::new(self.specs.clone());
        if let Some(snap) = self.deps.snapshots.load(&self.id) {
            let (now, skew) = (self.deps.clock.now(), self.deps.config.max_future_skew);
            if !self.table.restore(&snap, now, skew) {
                tracing::warn!(room = %self.id, "snapshot does not match the point catalog; starting empty");
            }
        }
        if let Some(status) = self.board.get(&self.spec.id) {
            self.online = status.online;
            self.last_seen = status.last_seen;
            self.last_data = status.last_data;
        }
        // Alarms, delays and timers as last saved: a restart does not start them over.
        self.alarms = self.deps.rules.clone().map(|host| {
            let now = self.deps.clock.now();
            let mut alarms = RoomAlarms::new(host, self.spec.clone(), self.zone.clone(), now);
            alarms.room_points(&self.table, now);
            alarms.link(self.online, self.data_age_s(now));
            alarms.cleanings(&self.cleanings, now);
            if let Some(leak) = &self.night_leak {
                alarms.night_leak(leak);
            }
            alarms
        });
    }

    fn data_age_s(&self, now: cistern_schemas::Timestamp) -> f64 {
        self.last_seen
            .map_or(f64::INFINITY, |t| now.since(t).as_secs_f64())
    }

    /// Evaluates the room's rules soon, once (see [`EVAL_COALESCE`]).
    fn schedule_rules(&mut self, ctx: &mut Context<Self>) {
        let Some(alarms) = &mut self.alarms else {
            return;
        };
        if alarms.scheduled || !alarms.pending() {
            return;
        }
        alarms.scheduled = true;
        ctx.run_later(EVAL_COALESCE, |act, ctx| {
            let id = act.id.clone();
            let metrics = act.deps.metrics.clone();
            // Its own span (it may cover several batches), linked to the batch that asked.
            let span = tracing::debug_span!(parent: None, "rules", room = %id);
            if let Some(cause) = act.rules_cause.take() {
                span.follows_from(&cause);
            }
            let _span = span.enter();
            let _ = guarded(act, ctx, "room", &id, &metrics, |act, _| {
                let now = act.deps.clock.now();
                if let Some(alarms) = &mut act.alarms {
                    let out = alarms.evaluate(now);
                    act.follow_up(out);
                }
            });
        });
    }

    /// Does what an engine call asked for: bookmarks the cameras' video.
    fn follow_up(&self, out: Followups) {
        let Some(host) = &self.deps.rules else { return };
        for (alarm, time, message) in out.bookmarks {
            for (i, cam) in self.cameras.iter().enumerate() {
                let bookmark = Bookmark {
                    camera: cistern_schemas::DeviceId::new(
                        self.spec.id.clone(),
                        DeviceUnit::Camera(i as u8 + 1),
                    ),
                    time,
                    alarm: alarm.clone(),
                    message: message.clone(),
                };
                tracing::info!(camera = %bookmark.camera, %alarm, "video bookmarked");
                host.store.bookmark(bookmark.clone());
                let _ = cam.post(BookmarkVideo(bookmark));
            }
        }
    }

    /// Asks every child for its facts (after a restart; for the periodic refresh).
    fn request_reports(&self) {
        if self.alarms.is_none() {
            return;
        }
        for p in &self.pumps {
            let _ = p.post(ReportFacts);
        }
        for t in &self.tanks {
            let _ = t.post(ReportFacts);
        }
        for c in &self.cameras {
            let _ = c.post(ReportFacts);
        }
    }

    fn start_children(&mut self, parent: &Recipient<DeviceChanged>) {
        let start = |unit: DeviceUnit| {
            let id = DeviceId::new(self.spec.id.clone(), unit);
            let specs: Arc<[PointSpec]> = self.spec.point_specs(unit).into();
            (id, specs, self.deps.clone(), Some(parent.clone()))
        };
        fn run<B: DeviceBehaviour + std::fmt::Debug>(
            (id, specs, deps, parent): (
                DeviceId,
                Arc<[PointSpec]>,
                DeviceDeps,
                Option<Recipient<DeviceChanged>>,
            ),
            device_spec: B::Spec,
        ) -> Addr<DeviceActor<B>> {
            Supervisor::start(move |_| DeviceActor::<B>::new(id, device_spec, specs, deps, parent))
        }
        let spec = self.spec.clone();
        let unit = |i: usize| i as u8 + 1;
        self.pumps = (spec.pumps.iter().enumerate())
            .map(|(i, p)| run(start(DeviceUnit::Pump(unit(i))), p.clone()))
            .collect();
        self.tanks = (spec.tanks.iter().enumerate())
            .map(|(i, t)| run(start(DeviceUnit::Tank(unit(i))), t.clone()))
            .collect();
        self.cameras = (spec.cameras.iter().enumerate())
            .map(|(i, c)| run(start(DeviceUnit::Camera(unit(i))), c.clone()))
            .collect();
    }

    fn publish_status(&self) {
        self.deps.figures.set_room(
            &self.spec.id,
            crate::figures::RoomFigures {
                outlet_flow_m3h: self.table.good_value("outlet_flow"),
                active_power_kw: self.table.good_value("active_power"),
            },
        );
        let (bad, stale) = self.table.quality_counts();
        let status = RoomStatus {
            online: self.online,
            last_seen: self.last_seen,
            last_data: self.last_data,
            bad_points: bad as u32,
            stale_points: stale as u32,
        };
        // In place when the room is on the board (every call after the first: each room's
        // sweep, every second), without cloning its id for a fresh entry.
        match self.board.get_mut(&self.spec.id) {
            Some(mut e) => *e = status,
            None => {
                self.board.insert(self.spec.id.clone(), status);
            }
        }
    }

    /// The room's own instruments and status, as dashboards see them.
    fn part(&self) -> RoomPart {
        RoomPart {
            id: self.spec.id.clone(),
            status: Link::of(self.online),
            last_seen: self.last_seen,
            last_data: self.last_data,
            clock_skew: self.clock_skew_now(),
            derived: derive_room(&self.spec, &self.table),
            points: self.table.views(),
        }
    }

    /// The gateway's clock skew, while samples stamped too far ahead keep arriving (one within
    /// `offline_after`).
    fn clock_skew_now(&self) -> Option<ClockSkew> {
        let now = self.deps.clock.now();
        self.clock_skew
            .filter(|s| now.since(s.last) <= self.deps.config.offline_after)
    }

    /// Notes what a batch says about the gateway's data: its newest good sample, and any
    /// record stamped beyond the allowed skew (which the tables refuse).
    fn observe_times(&mut self, records: &[Record], now: cistern_schemas::Timestamp) {
        let latest = now + self.deps.config.max_future_skew;
        let good = |r: &&Record| {
            r.values
                .iter()
                .any(|v| v.quality.is_good() && v.value.is_finite())
        };
        let newest_good = records
            .iter()
            .filter(|r| r.t <= latest)
            .filter(good)
            .map(|r| r.t)
            .max();
        self.last_data = self.last_data.max(newest_good);
        if let Some(ahead) = records
            .iter()
            .filter(|r| r.t > latest)
            .map(|r| r.t.0 - now.0)
            .max()
        {
            if self.clock_skew_now().is_none() {
                tracing::warn!(room = %self.id, ahead_s = ahead / 1000, "gateway clock runs ahead: samples stamped in the future are refused");
            }
            self.clock_skew = Some(ClockSkew {
                last: now,
                ahead_s: ahead as f64 / 1000.0,
            });
        }
    }

    /// Tells dashboards watching the room (if any) its own new live state.
    fn publish_live(&self) {
        if self.deps.live.watches(&self.spec.id) {
            self.deps.live.room_changed(self.part());
        }
    }

    fn apply_own(
        &mut self,
        records: &[Record],
        receipt: crate::ports::Receipt,
        source: Option<cistern_schemas::reading::IngestSource>,
    ) {
        if self
            .deps
            .apply(&self.id, &mut self.table, records, receipt, source)
        {
            self.publish_live();
            self.inform_tanks();
            if let Some(alarms) = &mut self.alarms {
                alarms.room_points(&self.table, self.deps.clock.now());
            }
        }
    }

    /// Tells each tank its share of the draw (by plan area): one message per room batch, so it
    /// is bounded by the room's intake like the batches themselves.
    fn inform_tanks(&self) {
        let flow = self.table.good_value("outlet_flow");
        let mains = self.table.good_flag("mains");
        let total_area: f64 = self.spec.tanks.iter().map(|t| t.area_m2).sum();
        for (addr, tank) in self.tanks.iter().zip(self.spec.tanks.iter()) {
            let share = if total_area > 0.0 {
                tank.area_m2 / total_area
            } else {
                0.0
            };
            let _ = addr.post(RoomObserved {
                demand_m3h: flow.map(|f| f * share),
                mains,
            });
        }
    }

    /// Forwards records, with their intake permit, to a child.
    fn forward<B>(&self, addr: Option<&Addr<DeviceActor<B>>>, unit: DeviceUnit, msg: ApplyRecords)
    where
        B: DeviceBehaviour + std::fmt::Debug,
    {
        let Some(addr) = addr else {
            tracing::warn!(room = %self.id, device = %unit, "batch for a device the room does not have");
            return;
        };
        // The child's mailbox is unbounded (the permit bounds it): only a closed one fails.
        if addr.post(msg).is_err() {
            tracing::error!(room = %self.id, device = %unit, "device actor is gone; batch not applied");
        }
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if self.retired {
            return;
        }
        let now = self.deps.clock.now();
        let n = self.table.sweep(now, self.deps.config.stale_periods);
        self.deps.metrics.stale_transitions.inc_by(n as u64);
        let silent = self
            .last_seen
            .is_none_or(|t| now.since(t) > self.deps.config.offline_after);
        if self.online && silent {
            self.online = false;
            tracing::warn!(room = %self.id, after = ?self.deps.config.offline_after, "room went offline: gateway silent");
            self.deps.live.status_changed(&self.spec.id, false);
            self.publish_live();
        } else if n > 0 {
            self.publish_live();
        }
        self.publish_status();
        let (online, age) = (self.online, self.data_age_s(now));
        let mut refresh = false;
        if let Some(alarms) = &mut self.alarms {
            if n > 0 {
                alarms.room_points(&self.table, now);
            }
            alarms.link(online, age);
            alarms.cleanings(&self.cleanings, now);
            if alarms.refresh_due(now) {
                alarms.touch_all(now);
                refresh = true;
            }
            let out = alarms.tick(now);
            self.follow_up(out);
        }
        if refresh {
            self.request_reports();
        }
        self.schedule_rules(ctx);
    }
}

impl Actor for PumpRoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Unbounded: intake permits bound what a room holds (see `crate::registry`).
        ctx.set_mailbox_capacity(0);
        if self.retired {
            return;
        }
        // After a restart the children are still running: keep them.
        if self.pumps.is_empty() && self.tanks.is_empty() && self.cameras.is_empty() {
            self.start_children(&ctx.address().recipient());
        }
        // Paired with `stopped`, which also runs before a restart.
        self.deps.metrics.running.with_label_values(&["room"]).inc();
        self.publish_status();
        // The children's facts, then every rule once (the mirror starts empty).
        self.request_reports();
        self.schedule_rules(ctx);
        self.sweeper =
            Some(ctx.run_interval(self.deps.config.sweep_every, |act, ctx| act.sweep(ctx)));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.deps.metrics.running.with_label_values(&["room"]).dec();
        if self.retired {
            tracing::debug!(room = %self.id, "retired room actor ended");
        }
    }
}

impl Supervised for PumpRoomActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        if self.retired {
            // A retired room stays idle (its state is with its next owner).
            return;
        }
        tracing::info!(room = %self.id, "restarting from the last snapshot");
        self.rebuild();
    }
}

impl Handler<Retire> for PumpRoomActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: Retire, ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return Box::pin(async {});
        }
        self.retired = true;
        if let Some(h) = self.sweeper.take() {
            ctx.cancel_future(h);
        }
        let now = self.deps.clock.now();
        if let Some(alarms) = &mut self.alarms {
            alarms.save_now();
        }
        self.deps.snapshots.save(&self.id, self.table.snapshot(now));
        let children: Vec<Recipient<RetireDevice>> = (self.pumps.drain(..))
            .map(|a| a.recipient())
            .chain(self.tanks.drain(..).map(|a| a.recipient()))
            .chain(self.cameras.drain(..).map(|a| a.recipient()))
            .collect();
        // Nothing of the room's may hold an address any more: its alarm engine holds its zone's.
        self.alarms = None;
        self.zone = None;
        self.rules_cause = None;
        let room = self.id.clone();
        Box::pin(async move {
            let acks = children
                .iter()
                .map(|c| c.send(RetireDevice).timeout(VIEW_TIMEOUT));
            for r in futures::future::join_all(acks).await {
                if let Err(error) = r {
                    tracing::error!(%room, %error, "a device did not confirm its retirement");
                }
            }
        })
    }
}

impl Handler<SamplesReceived> for PumpRoomActor {
    type Result = ();

    fn handle(&mut self, msg: SamplesReceived, ctx: &mut Self::Context) {
        if self.retired {
            // The registry refuses a retired room's batches; one here is not applied (its
            // receipt is dropped uncompleted: its producer sees it lost).
            tracing::error!(room = %self.id, "batch for a retired room dropped");
            return;
        }
        let SamplesReceived { batch, intake } = msg;
        let span = intake.span.clone();
        let _span = span.enter();
        if self.alarms.is_some() {
            self.rules_cause = Some(span.clone());
        }
        let was_online = self.online;
        self.last_seen = Some(self.deps.clock.now());
        self.online = true;
        if !was_online {
            tracing::info!(room = %self.id, "room online");
            self.deps.live.status_changed(&self.spec.id, true);
            self.publish_live();
        }
        let unit = batch.device.unit;
        let child = |n: u8| usize::from(n) - 1;
        let records = batch.records;
        self.observe_times(&records, self.deps.clock.now());
        match unit {
            DeviceUnit::Room => {
                let id = self.id.clone();
                let metrics = self.deps.metrics.clone();
                let crate::device::Intake {
                    permit,
                    receipt,
                    source,
                    ..
                } = intake;
                let _ = guarded(self, ctx, "room", &id, &metrics, |act, _| {
                    act.apply_own(&records, receipt, source)
                });
                drop(permit);
            }
            DeviceUnit::Pump(n) => self.forward(
                self.pumps.get(child(n)),
                unit,
                ApplyRecords { records, intake },
            ),
            DeviceUnit::Tank(n) => self.forward(
                self.tanks.get(child(n)),
                unit,
                ApplyRecords { records, intake },
            ),
            DeviceUnit::Camera(n) => self.forward(
                self.cameras.get(child(n)),
                unit,
                ApplyRecords { records, intake },
            ),
        }
        if !was_online || unit == DeviceUnit::Room {
            self.publish_status();
        }
        if !was_online {
            let now = self.deps.clock.now();
            let age = self.data_age_s(now);
            if let Some(alarms) = &mut self.alarms {
                alarms.link(true, age);
            }
        }
        self.schedule_rules(ctx);
    }
}

impl Handler<DeviceChanged> for PumpRoomActor {
    type Result = ();

    fn handle(&mut self, msg: DeviceChanged, ctx: &mut Self::Context) {
        if let Some(alarms) = &mut self.alarms {
            alarms.device(msg);
            self.schedule_rules(ctx);
        }
    }
}

impl Handler<RoomCommand> for PumpRoomActor {
    type Result = Result<Vec<cistern_rules::AlarmEvent>, AlarmCommandError>;

    fn handle(&mut self, msg: RoomCommand, ctx: &mut Self::Context) -> Self::Result {
        let id = self.id.clone();
        let metrics = self.deps.metrics.clone();
        guarded(self, ctx, "room", &id, &metrics, |act, _| {
            let now = act.deps.clock.now();
            let alarms = act.alarms.as_mut().ok_or(AlarmCommandError::NoRules)?;
            let (events, out) = alarms.command(&msg.0, now)?;
            act.follow_up(out);
            Ok(events)
        })?
    }
}

impl Handler<SetExternal> for PumpRoomActor {
    type Result = ();

    fn handle(&mut self, msg: SetExternal, _ctx: &mut Self::Context) {
        let now = self.deps.clock.now();
        if let Some(alarms) = &mut self.alarms {
            let out = alarms.set_external(msg.rule, msg.active, now);
            self.follow_up(out);
        }
    }
}

impl Handler<TankCleanings> for PumpRoomActor {
    type Result = ();

    fn handle(&mut self, msg: TankCleanings, ctx: &mut Self::Context) {
        if msg.0 == self.cleanings {
            return;
        }
        self.cleanings = msg.0;
        let now = self.deps.clock.now();
        if let Some(alarms) = &mut self.alarms {
            alarms.cleanings(&self.cleanings, now);
        }
        self.schedule_rules(ctx);
    }
}

impl Handler<NightLeak> for PumpRoomActor {
    type Result = ();

    fn handle(&mut self, msg: NightLeak, ctx: &mut Self::Context) {
        if self.night_leak.as_ref() == Some(&msg) {
            return;
        }
        if let Some(alarms) = &mut self.alarms {
            alarms.night_leak(&msg);
        }
        self.night_leak = Some(msg);
        self.schedule_rules(ctx);
    }
}

impl Handler<SwapRules> for PumpRoomActor {
    type Result = ();

    fn handle(&mut self, msg: SwapRules, ctx: &mut Self::Context) {
        let now = self.deps.clock.now();
        if let Some(alarms) = &mut self.alarms {
            let out = alarms.swap_rules(msg.0, now);
            self.follow_up(out);
            self.schedule_rules(ctx);
        }
    }
}

impl Handler<GetAlarms> for PumpRoomActor {
    type Result = Vec<cistern_rules::AlarmRecord>;

    fn handle(&mut self, _msg: GetAlarms, _ctx: &mut Self::Context) -> Self::Result {
        self.alarms
            .as_ref()
            .map(|a| a.records())
            .unwrap_or_default()
    }
}

impl Handler<Sweep> for PumpRoomActor {
    type Result = ();

    fn handle(&mut self, _msg: Sweep, ctx: &mut Self::Context) {
        self.sweep(ctx);
    }
}

async fn views<A>(addrs: Vec<Addr<A>>) -> Vec<DeviceView>
where
    A: Handler<GetDeviceView>,
    A::Context: actix::dev::ToEnvelope<A, GetDeviceView>,
{
    let requests = addrs
        .iter()
        .map(|a| a.send(GetDeviceView).timeout(VIEW_TIMEOUT));
    futures::future::join_all(requests)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Ok(Ok(view)) => Some(view),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "device view unavailable");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "device did not answer a view request");
                None
            }
        })
        .collect()
}

impl Handler<GetRoomView> for PumpRoomActor {
    type Result = ResponseFuture<Result<RoomView, ActorError>>;

    fn handle(&mut self, _msg: GetRoomView, ctx: &mut Self::Context) -> Self::Result {
        let id = self.id.clone();
        let metrics = self.deps.metrics.clone();
        let own = guarded(self, ctx, "room", &id, &metrics, |act, _| {
            let s = &act.spec;
            let part = act.part();
            RoomView {
                id: part.id,
                name: s.name.clone(),
                name_pinyin: s.name_pinyin.clone(),
                address: s.address.clone(),
                address_pinyin: s.address_pinyin.clone(),
                zone: s.zone.clone(),
                lat: s.lat,
                lon: s.lon,
                status: part.status,
                last_seen: part.last_seen,
                last_data: part.last_data,
                clock_skew: part.clock_skew,
                derived: part.derived,
                points: part.points,
                pumps: Vec::new(),
                tanks: Vec::new(),
                cameras: Vec::new(),
            }
        });
        let (pumps, tanks, cameras) =
            (self.pumps.clone(), self.tanks.clone(), self.cameras.clone());
        Box::pin(async move {
            let mut view = own?;
            view.pumps = views(pumps).await;
            view.tanks = views(tanks).await;
            view.cameras = views(cameras).await;
            Ok(view)
        })
    }
}

impl Handler<UpdateSpec> for PumpRoomActor {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: UpdateSpec, _ctx: &mut Self::Context) -> Self::Result {
        let new = msg.0;
        let old = &self.spec;
        if new.id != old.id {
            return Err(format!("the spec is room {}, not {}", new.id, old.id));
        }
        if new.zone != old.zone {
            return Err(format!(
                "room {} moves from zone {} to {}: that takes effect at the next start",
                old.id, old.zone, new.zone
            ));
        }
        if (new.pumps.len(), new.tanks.len(), new.cameras.len())
            != (old.pumps.len(), old.tanks.len(), old.cameras.len())
        {
            return Err(format!(
                "room {} runs {} pumps, {} tanks and {} cameras; the archive has {}, {} and {}: \
                 adding or removing a device takes effect at the next start",
                old.id,
                old.pumps.len(),
                old.tanks.len(),
                old.cameras.len(),
                new.pumps.len(),
                new.tanks.len(),
                new.cameras.len()
            ));
        }
        for (addr, spec) in self.pumps.iter().zip(new.pumps.iter()) {
            if addr.post(SetSpec(spec.clone())).is_err() {
                tracing::warn!(room = %old.id, "a device did not take its new nameplate");
            }
        }
        for (addr, spec) in self.tanks.iter().zip(new.tanks.iter()) {
            if addr.post(SetSpec(spec.clone())).is_err() {
                tracing::warn!(room = %old.id, "a device did not take its new nameplate");
            }
        }
        for (addr, spec) in self.cameras.iter().zip(new.cameras.iter()) {
            if addr.post(SetSpec(spec.clone())).is_err() {
                tracing::warn!(room = %old.id, "a device did not take its new nameplate");
            }
        }
        self.spec = new;
        Ok(())
    }
}

#[cfg(test)]
impl Handler<super::messages::Crash> for PumpRoomActor {
    type Result = Result<(), ActorError>;

    #[allow(clippy::panic)]
    fn handle(&mut self, _msg: super::messages::Crash, ctx: &mut Self::Context) -> Self::Result {
        let id = self.id.clone();
        let metrics = self.deps.metrics.clone();
        guarded(self, ctx, "room", &id, &metrics, |act, _| {
            act.table = PointTable::new(act.specs.clone());
            panic!("injected fault in {}", act.id)
        })
    }
}

#[cfg(test)]
impl Handler<super::messages::GetPump> for PumpRoomActor {
    type Result = Option<Addr<PumpActor>>;

    fn handle(&mut self, msg: super::messages::GetPump, _ctx: &mut Self::Context) -> Self::Result {
        self.pumps.get(msg.0.checked_sub(1)?).cloned()
    }
}
