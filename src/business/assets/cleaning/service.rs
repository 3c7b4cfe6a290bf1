//! The cleaning service: records and settings on the records port, the schedule in memory
//! (rebuilt whole from the records at start), the periodic sweep (reminders, orders ahead of the
//! due date, each room told its tanks' last good cleaning). See the module doc of
//! [`super`].
//!
//! Records: kind `tank_cleaning` (one per cleaning, id `<tank>@<ms>-<seq>`, indexed `by_tank =
//! <tank>|<date>|<id>`), kind `tank_cleaning_plan` (one per tank that has settings: its own
//! interval, the due date an order and a reminder were last made for — so each is made once per
//! due date, across restarts — indexed `all = <tank>`).

use super::water::{Failure, WaterTest};
use super::{CleaningConfig, CleaningError, MAX_INTERVAL_DAYS};
use crate::business::workorders::service::NewOrder;
use crate::business::workorders::WorkOrders;
use crate::notify::{Reminder, ReminderSender};
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, RecordVersion, Records,
    RecordsError, StoredRecord,
};
use cistern_actors::{Clock, FleetRegistry};
use cistern_rules::Severity;
use cistern_schemas::{Date, DeviceId, DeviceUnit, RoomId, Timestamp, ZoneId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Who the service acts as (orders it creates).
const SYSTEM: &str = "system";
/// The work-order template of a cleaning.
pub const TEMPLATE: &str = "tank_cleaning";
/// The longest crew or note text, in characters.
const MAX_TEXT: usize = 2000;

/// One cleaning and disinfection of a tank, with its water test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CleaningRecord {
    pub id: String,
    pub tank: DeviceId,
    pub room: RoomId,
    /// The day it was cleaned.
    pub date: Date,
    /// Who cleaned it (names as written).
    pub crew: String,
    /// The work order it closes, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    pub test: WaterTest,
    /// Readings outside GB 5749-2022 (empty: passed).
    pub failures: Vec<Failure>,
    pub passed: bool,
    /// The order raised because the water failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<String>,
    #[serde(default)]
    pub note: String,
    pub recorded_by: String,
    pub recorded_at: Timestamp,
}

/// A cleaning as reported.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCleaning {
    pub date: Date,
    pub crew: String,
    #[serde(default)]
    pub order: Option<String>,
    pub test: WaterTest,
    #[serde(default)]
    pub note: Option<String>,
}

/// A tank's own settings and what was done for its current due date.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct TankSettings {
    /// Its own interval (none: the city's).
    #[serde(default)]
    interval_days: Option<u32>,
    /// The due date the last order was created for.
    #[serde(default)]
    ordered_for: Option<Date>,
    #[serde(default)]
    order: Option<String>,
    /// The due date the last reminder was sent for.
    #[serde(default)]
    reminded_for: Option<Date>,
}

#[derive(Clone, Debug, Default)]
struct TankState {
    settings: TankSettings,
    version: Option<RecordVersion>,
    /// The newest cleaning whose water passed (the schedule counts from it).
    last_good: Option<CleaningRecord>,
    /// The newest cleaning of all.
    last: Option<CleaningRecord>,
}

/// Where a tank stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleaningStatus {
    /// Past its due date.
    Overdue,
    /// Its last cleaning's water failed the test.
    Failed,
    /// Within the reminder window.
    DueSoon,
    Ok,
    /// Never recorded: no due date until a first cleaning is.
    NoRecord,
}

/// A tank's line of the schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TankSchedule {
    pub tank: DeviceId,
    pub room: RoomId,
    pub room_name: String,
    pub zone: ZoneId,
    pub interval_days: u32,
    /// Its own interval (else the city's).
    pub own_interval: bool,
    pub last_cleaning: Option<Date>,
    /// Whether the newest cleaning's water passed.
    pub last_passed: Option<bool>,
    pub due: Option<Date>,
    /// Days to the due date (negative: overdue by).
    pub days_left: Option<i32>,
    pub status: CleaningStatus,
    /// The order created for the current due date (or the failed test's follow-up).
    pub order: Option<String>,
}

/// A tank of the live fleet.
#[derive(Clone, Debug)]
struct FleetTank {
    tank: DeviceId,
    room: RoomId,
    room_name: String,
    zone: ZoneId,
}

/// What a sweep did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SweepReport {
    /// Orders created (ids), one per tank and due date.
    pub orders: Vec<String>,
    pub reminders: usize,
}

/// The tank-cleaning service (see the module doc).
pub struct TankCleaning {
    records: Arc<dyn Records>,
    kind: RecordKind,
    plans: RecordKind,
    by_tank: IndexName,
    all: IndexName,
    registry: Arc<FleetRegistry>,
    workorders: Option<Arc<WorkOrders>>,
    reminders: Option<ReminderSender>,
    clock: Arc<dyn Clock>,
    config: CleaningConfig,
    state: Mutex<BTreeMap<String, TankState>>,
    /// One writer at a time (records and the sweep).
    writing: tokio::sync::Mutex<()>,
    seq: AtomicU64,
}

impl std::fmt::Debug for TankCleaning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TankCleaning")
            .field("config", &self.config)
            .finish()
    }
}

fn corrupt(r: &StoredRecord, e: serde_json::Error) -> CleaningError {
    CleaningError::Corrupt(format!("{}: {e}", r.id))
}

impl TankCleaning {
    /// Starts on `records`, rebuilding every tank's schedule from them.
    pub async fn start(
        config: CleaningConfig,
        records: Arc<dyn Records>,
        registry: Arc<FleetRegistry>,
        workorders: Option<Arc<WorkOrders>>,
        reminders: Option<ReminderSender>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CleaningError> {
        let me = Self {
            records,
            kind: RecordKind::new("tank_cleaning")?,
            plans: RecordKind::new("tank_cleaning_plan")?,
            by_tank: IndexName::new("by_tank")?,
            all: IndexName::new("all")?,
            registry,
            workorders,
            reminders,
            clock,
            config,
            state: Mutex::new(BTreeMap::new()),
            writing: tokio::sync::Mutex::new(()),
            seq: AtomicU64::new(0),
        };
        let mut state: BTreeMap<String, TankState> = BTreeMap::new();
        let everything = IndexRange::between("", "~");
        for r in (me.records)
            .list_by_index(&me.kind, &me.by_tank, everything.clone(), usize::MAX)
            .await?
        {
            let c: CleaningRecord = serde_json::from_slice(&r.body).map_err(|e| corrupt(&r, e))?;
            let s = state.entry(c.tank.to_string()).or_default();
            absorb(s, c);
        }
        for r in (me.records)
            .list_by_index(&me.plans, &me.all, everything, usize::MAX)
            .await?
        {
            let settings: TankSettings =
                serde_json::from_slice(&r.body).map_err(|e| corrupt(&r, e))?;
            let s = state.entry(r.id.as_str().to_owned()).or_default();
            s.settings = settings;
            s.version = Some(r.version);
        }
        let cleanings = state.values().filter(|s| s.last.is_some()).count();
        if let Ok(mut g) = me.state.lock() {
            *g = state;
        }
        tracing::info!(tanks_with_records = cleanings, "tank cleaning started");
        me.tell_rooms();
        Ok(me)
    }

    pub fn config(&self) -> &CleaningConfig {
        &self.config
    }

    /// Today in the due dates' local time, on the node's clock.
    pub fn today(&self) -> Date {
        Date::of(self.clock.now(), self.config.utc_offset_minutes)
    }

    fn fleet(&self) -> Vec<FleetTank> {
        let mut out = Vec::new();
        self.registry.visit(|spec, _, _| {
            for n in 1..=spec.tanks.len() {
                let Ok(n) = u8::try_from(n) else { continue };
                out.push(FleetTank {
                    tank: DeviceId::new(spec.id.clone(), DeviceUnit::Tank(n)),
                    room: spec.id.clone(),
                    room_name: spec.name.clone(),
                    zone: spec.zone.clone(),
                });
            }
        });
        out.sort_by_key(|a| a.tank.to_string());
        out
    }

    fn fleet_tank(&self, tank: &DeviceId) -> Result<FleetTank, CleaningError> {
        let unknown = || CleaningError::UnknownTank(tank.to_string());
        let DeviceUnit::Tank(n) = tank.unit else {
            return Err(unknown());
        };
        let spec = self.registry.spec(&tank.room).ok_or_else(unknown)?;
        if n == 0 || usize::from(n) > spec.tanks.len() {
            return Err(unknown());
        }
        Ok(FleetTank {
            tank: tank.clone(),
            room: spec.id.clone(),
            room_name: spec.name.clone(),
            zone: spec.zone.clone(),
        })
    }

    fn snapshot(&self, tank: &DeviceId) -> TankState {
        self.state
            .lock()
            .ok()
            .and_then(|g| g.get(&tank.to_string()).cloned())
            .unwrap_or_default()
    }

    fn interval(&self, s: &TankSettings) -> u32 {
        s.interval_days.unwrap_or(self.config.interval_days).max(1)
    }

    fn due(&self, s: &TankState) -> Option<Date> {
        let last = s.last_good.as_ref()?;
        let days = i32::try_from(self.interval(&s.settings)).unwrap_or(i32::MAX);
        Some(last.date.plus_days(days))
    }

    fn line(&self, t: &FleetTank, s: &TankState, today: Date) -> TankSchedule {
        let due = self.due(s);
        let days_left = due.map(|d| d.days() - today.days());
        let failed = s.last.as_ref().is_some_and(|l| !l.passed);
        let remind = i32::try_from(self.config.remind_days).unwrap_or(i32::MAX);
        let status = match days_left {
            Some(d) if d < 0 => CleaningStatus::Overdue,
            _ if failed => CleaningStatus::Failed,
            Some(d) if d <= remind => CleaningStatus::DueSoon,
            Some(_) => CleaningStatus::Ok,
            None => CleaningStatus::NoRecord,
        };
        let order = match (&s.last, &s.settings) {
            (Some(l), _) if !l.passed && l.follow_up.is_some() => l.follow_up.clone(),
            (_, st) if st.ordered_for.is_some() && st.ordered_for == due => st.order.clone(),
            _ => None,
        };
        TankSchedule {
            tank: t.tank.clone(),
            room: t.room.clone(),
            room_name: t.room_name.clone(),
            zone: t.zone.clone(),
            interval_days: self.interval(&s.settings),
            own_interval: s.settings.interval_days.is_some(),
            last_cleaning: s.last.as_ref().map(|l| l.date),
            last_passed: s.last.as_ref().map(|l| l.passed),
            due,
            days_left,
            status,
            order,
        }
    }

    /// Every tank of the fleet (of `zone`, of `room`; only those past due with `overdue`), the
    /// most urgent first: overdue, failed, due soon, by due date, then those never recorded.
    pub fn schedule(
        &self,
        zone: Option<&str>,
        room: Option<&str>,
        overdue: bool,
    ) -> Vec<TankSchedule> {
        let today = self.today();
        let state = self.state.lock().map(|g| g.clone()).unwrap_or_default();
        let mut out: Vec<TankSchedule> = self
            .fleet()
            .iter()
            .filter(|t| zone.is_none_or(|z| t.zone.as_str() == z))
            .filter(|t| room.is_none_or(|r| t.room.as_str() == r))
            .map(|t| {
                let s = state.get(&t.tank.to_string()).cloned().unwrap_or_default();
                self.line(t, &s, today)
            })
            .filter(|l| !overdue || l.status == CleaningStatus::Overdue)
            .collect();
        out.sort_by(|a, b| {
            (a.status, a.due, a.tank.to_string()).cmp(&(b.status, b.due, b.tank.to_string()))
        });
        out
    }

    /// A tank's line of the schedule.
    pub fn tank(&self, tank: &DeviceId) -> Result<TankSchedule, CleaningError> {
        let t = self.fleet_tank(tank)?;
        Ok(self.line(&t, &self.snapshot(tank), self.today()))
    }

    /// A tank's cleanings, newest first.
    pub async fn log(&self, tank: &DeviceId) -> Result<Vec<CleaningRecord>, CleaningError> {
        let key = tank.to_string();
        let range = IndexRange::between(format!("{key}|"), format!("{key}|~"));
        let mut out = Vec::new();
        for r in (self.records)
            .list_by_index(&self.kind, &self.by_tank, range, usize::MAX)
            .await?
        {
            out.push(
                serde_json::from_slice::<CleaningRecord>(&r.body).map_err(|e| corrupt(&r, e))?,
            );
        }
        out.sort_by_key(|b| std::cmp::Reverse((b.date, b.recorded_at)));
        Ok(out)
    }

    /// Records a cleaning of `tank` by `by`: its water judged, kept, the schedule moved on when
    /// the water passed, a follow-up order raised when it failed; the room is told.
    pub async fn record(
        &self,
        tank: &DeviceId,
        new: NewCleaning,
        by: &str,
    ) -> Result<CleaningRecord, CleaningError> {
        let t = self.fleet_tank(tank)?;
        new.test
            .validate()
            .map_err(|e| CleaningError::Invalid(e.to_string()))?;
        let crew = new.crew.trim().to_owned();
        if crew.is_empty() || crew.chars().count() > MAX_TEXT {
            return Err(CleaningError::Invalid(format!(
                "crew: 1 to {MAX_TEXT} characters"
            )));
        }
        let note = new.note.unwrap_or_default().trim().to_owned();
        if note.chars().count() > MAX_TEXT {
            return Err(CleaningError::Invalid(format!(
                "note: at most {MAX_TEXT} characters"
            )));
        }
        let today = self.today();
        if new.date > today || new.date < Date::from_days(today.days() - 3 * 366) {
            return Err(CleaningError::Invalid(format!(
                "date {} is in the future or more than three years back",
                new.date
            )));
        }
        let _one = self.writing.lock().await;
        let now = self.clock.now();
        let failures = new.test.failures();
        let passed = failures.is_empty();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) % 1000;
        let id = format!("{tank}@{:013}-{seq:03}", now.as_millis().max(0));
        let mut record = CleaningRecord {
            id: id.clone(),
            tank: tank.clone(),
            room: t.room.clone(),
            date: new.date,
            crew,
            order: new.order.filter(|o| !o.trim().is_empty()),
            test: new.test,
            failures,
            passed,
            follow_up: None,
            note,
            recorded_by: by.to_owned(),
            recorded_at: now,
        };
        if !passed {
            let list: Vec<&str> = record
                .failures
                .iter()
                .map(|f| f.parameter.as_str())
                .collect();
            record.follow_up = self
                .order_for(
                    &t,
                    &format!(
                        "{tank}: water test after cleaning failed ({})",
                        list.join(", ")
                    ),
                )
                .await;
        }
        let body = serde_json::to_vec(&record)
            .map_err(|e| CleaningError::Invalid(format!("record does not encode: {e}")))?;
        self.records
            .put_record(RecordPut {
                kind: self.kind.clone(),
                id: RecordId::new(&id)?,
                expected: None,
                body,
                index: vec![IndexEntry::new(
                    &self.by_tank,
                    format!("{tank}|{}|{id}", record.date),
                )],
            })
            .await?;
        if let Ok(mut g) = self.state.lock() {
            absorb(g.entry(tank.to_string()).or_default(), record.clone());
        }
        tracing::info!(%tank, date = %record.date, passed, "tank cleaning recorded");
        self.tell_room(&t.room);
        Ok(record)
    }

    /// Gives `tank` its own interval (none: back to the city's).
    pub async fn set_interval(
        &self,
        tank: &DeviceId,
        days: Option<u32>,
    ) -> Result<TankSchedule, CleaningError> {
        if let Some(d) = days {
            if d == 0 || d > MAX_INTERVAL_DAYS {
                return Err(CleaningError::Interval(d));
            }
        }
        self.fleet_tank(tank)?;
        let _one = self.writing.lock().await;
        self.change_settings(tank, |s| s.interval_days = days)
            .await?;
        self.tank(tank)
    }

    /// Reads, changes and writes back a tank's settings (again on a concurrent change).
    async fn change_settings(
        &self,
        tank: &DeviceId,
        change: impl Fn(&mut TankSettings),
    ) -> Result<(), CleaningError> {
        let id = RecordId::new(&tank.to_string())?;
        for _ in 0..8 {
            let (mut settings, expected) = match self.records.record(&self.plans, &id).await? {
                Some(r) => (
                    serde_json::from_slice::<TankSettings>(&r.body).map_err(|e| corrupt(&r, e))?,
                    Some(r.version),
                ),
                None => (TankSettings::default(), None),
            };
            change(&mut settings);
            let body = serde_json::to_vec(&settings)
                .map_err(|e| CleaningError::Invalid(format!("settings do not encode: {e}")))?;
            let put = RecordPut {
                kind: self.plans.clone(),
                id: id.clone(),
                expected,
                body,
                index: vec![IndexEntry::new(&self.all, tank.to_string())],
            };
            match self.records.put_record(put).await {
                Ok(version) => {
                    if let Ok(mut g) = self.state.lock() {
                        let s = g.entry(tank.to_string()).or_default();
                        s.settings = settings;
                        s.version = Some(version);
                    }
                    return Ok(());
                }
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CleaningError::Busy(tank.to_string()))
    }

    /// A cleaning order for the tank's room (its id; the open one when the room has one
    /// already); none without work orders or when creation failed (logged).
    async fn order_for(&self, t: &FleetTank, comment: &str) -> Option<String> {
        let w = self.workorders.as_ref()?;
        let new = NewOrder {
            template: TEMPLATE.to_owned(),
            room: t.room.clone(),
            priority: None,
            assignee: None,
            comment: Some(comment.to_owned()),
        };
        match w.create(new, SYSTEM).await {
            Ok(Ok(order)) => Some(order.id.to_string()),
            Ok(Err(open)) => Some(open.to_string()),
            Err(error) => {
                tracing::error!(tank = %t.tank, %error, "cannot create the cleaning order");
                None
            }
        }
    }

    /// Looks at every tank once: a reminder to the zone's on-call `remind_days` before the due
    /// date, an order `order_days` before it (each once per due date); then tells every room.
    pub async fn sweep(&self) -> SweepReport {
        let mut report = SweepReport::default();
        let _one = self.writing.lock().await;
        let now = self.clock.now();
        let today = Date::of(now, self.config.utc_offset_minutes);
        let order_days = i32::try_from(self.config.order_days).unwrap_or(i32::MAX);
        let remind_days = i32::try_from(self.config.remind_days).unwrap_or(i32::MAX);
        for t in self.fleet() {
            let s = self.snapshot(&t.tank);
            let Some(due) = self.due(&s) else { continue };
            let left = due.days() - today.days();
            if left <= order_days && s.settings.ordered_for != Some(due) {
                let comment = format!("{}: cleaning due {due}", t.tank);
                if let Some(order) = self.order_for(&t, &comment).await {
                    let saved = self
                        .change_settings(&t.tank, |st| {
                            st.ordered_for = Some(due);
                            st.order = Some(order.clone());
                        })
                        .await;
                    match saved {
                        Ok(()) => report.orders.push(order),
                        Err(error) => {
                            tracing::error!(tank = %t.tank, %error, "cannot save the cleaning order's date")
                        }
                    }
                }
            }
            if left <= remind_days && s.settings.reminded_for != Some(due) {
                if self.remind(&t, due, left, now) {
                    report.reminders += 1;
                }
                if let Err(error) = self
                    .change_settings(&t.tank, |st| st.reminded_for = Some(due))
                    .await
                {
                    tracing::error!(tank = %t.tank, %error, "cannot save the reminder's date");
                }
            }
        }
        self.tell_rooms();
        report
    }

    /// Sends the zone's on-call crew a reminder; false when there is no one or nowhere to send.
    fn remind(&self, t: &FleetTank, due: Date, left: i32, now: Timestamp) -> bool {
        let (Some(sender), Some(w)) = (&self.reminders, &self.workorders) else {
            return false;
        };
        let to = w.roster().resolve("on_call", Some(&t.zone), now);
        if to.is_empty() {
            return false;
        }
        let (zh_when, en_when) = if left < 0 {
            (
                format!("已逾期 {} 天", -left),
                format!("overdue by {} days", -left),
            )
        } else {
            (format!("{left} 天后到期"), format!("due in {left} days"))
        };
        sender.send(Reminder {
            event: "cleaning_due".into(),
            key: format!("cleaning:{}:{due}", t.tank),
            to,
            severity: Severity::P4,
            zh: (
                format!("水箱清洗提醒：{} {}", t.tank, zh_when),
                format!(
                    "{}（{}）水箱 {} 应于 {due} 前清洗消毒",
                    t.room_name, t.room, t.tank
                ),
            ),
            en: (
                format!("Tank cleaning reminder: {} {}", t.tank, en_when),
                format!(
                    "{} ({}): tank {} is to be cleaned and disinfected by {due}",
                    t.room_name, t.room, t.tank
                ),
            ),
        })
    }

    fn cleanings_of(&self, room: &RoomId) -> Vec<(u8, Timestamp)> {
        let offset = self.config.utc_offset_minutes;
        let Ok(g) = self.state.lock() else {
            return Vec::new();
        };
        let prefix = format!("{room}/");
        g.iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(_, s)| {
                let c = s.last_good.as_ref()?;
                match c.tank.unit {
                    DeviceUnit::Tank(n) => Some((n, c.date.start(offset))),
                    _ => None,
                }
            })
            .collect()
    }

    fn tell_room(&self, room: &RoomId) {
        let cleanings = self.cleanings_of(room);
        if !self.registry.tank_cleanings(room, cleanings) {
            tracing::debug!(%room, "room not on this node: cleaning not told");
        }
    }

    /// Tells every room with a recorded cleaning its tanks' last good cleanings.
    fn tell_rooms(&self) {
        let rooms: std::collections::BTreeSet<RoomId> = self
            .state
            .lock()
            .map(|g| {
                g.values()
                    .filter_map(|s| s.last_good.as_ref().map(|c| c.room.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for room in rooms {
            self.tell_room(&room);
        }
    }

    /// Sweeps every `check_every` until shutdown (the first at once).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(
            self.config
                .check_every
                .max(std::time::Duration::from_secs(1)),
        );
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tick.tick() => {
                    let r = self.sweep().await;
                    if !r.orders.is_empty() || r.reminders > 0 {
                        tracing::info!(orders = r.orders.len(), reminders = r.reminders, "tank cleaning sweep");
                    }
                }
            }
        }
    }
}

/// Folds a cleaning into its tank's state (records may come in any order).
fn absorb(s: &mut TankState, c: CleaningRecord) {
    let newer = |old: &Option<CleaningRecord>| {
        old.as_ref()
            .is_none_or(|o| (c.date, c.recorded_at) >= (o.date, o.recorded_at))
    };
    if c.passed && newer(&s.last_good) {
        s.last_good = Some(c.clone());
    }
    if newer(&s.last) {
        s.last = Some(c);
    }
}
