//! The analysis service: closes each room's day once, keeps the fleet's daily figures in
//! memory, and serves today live.
//!
//! - **Closed days.** A day is closed `close_after` past local midnight (late store-and-forward
//!   data is then in the historian; a day recomputed on demand takes what came later). The
//!   closer loads the room's [`DaySeries`] from the historian's rollups, runs
//!   [`compute_day`] and writes the [`RoomDay`] (record kind `analysis_day`, id
//!   `<room>@<date>`) and the day's [`DayFigures`] into the room's month ledger (kind
//!   `analysis_month`, id `<room>@<YYYY-MM>`), then announces [`DayClosed`]. A day is closed at
//!   most once (a restart finds it in the ledger); missed days are caught up, back to
//!   `backfill_days` but never before the node first ran (`analysis_state`).
//! - **The ledger.** Every month ledger within `retain_days` is loaded at start, so reports
//!   over the fleet and a year ([`Analysis::each_figures`]) read memory, not the store.
//! - **Today** is computed from the same rollups by the same code every `live_every` for every
//!   room, and on demand for one room ([`Analysis::day`]).
//!
//! The clock is the node's: in simulated-time runs days close as simulated time passes.

use super::day::{compute_day, DayFigures, DaySeries, RoomContext, RoomDay};
use super::AnalysisConfig;
use crate::business::assets::archive::{Archive, RoomArchive};
use crate::historian::Historian;
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, RecordVersion, Records,
    RecordsError, StoredRecord,
};
use cistern_actors::clock::Clock;
use cistern_actors::registry::FleetRegistry;
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::{Date, RoomId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// Why the analysis service refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("unknown room {0}")]
    UnknownRoom(RoomId),
    #[error("{0} is in the future (today is {1})")]
    Future(Date, Date),
    #[error("this node keeps no history to analyse")]
    NoHistory,
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("stored analysis record is unreadable: {0}")]
    Encoding(String),
}

/// The rooms the analysis covers: the live fleet ([`FleetRegistry`]) on a node, a fixed
/// inventory in tests and simulated-time runs.
pub trait RoomSource: Send + Sync + 'static {
    /// Every room, in id order.
    fn rooms(&self) -> Vec<Arc<RoomSpec>>;
    fn room(&self, id: &RoomId) -> Option<Arc<RoomSpec>>;
}

impl RoomSource for FleetRegistry {
    fn rooms(&self) -> Vec<Arc<RoomSpec>> {
        let mut out = Vec::with_capacity(self.len());
        self.visit(|spec, _, _| {
            if let Some(s) = self.spec(&spec.id) {
                out.push(s);
            }
        });
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn room(&self, id: &RoomId) -> Option<Arc<RoomSpec>> {
        self.spec(id)
    }
}

/// A fixed set of rooms.
impl RoomSource for Vec<Arc<RoomSpec>> {
    fn rooms(&self) -> Vec<Arc<RoomSpec>> {
        let mut out = self.clone();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn room(&self, id: &RoomId) -> Option<Arc<RoomSpec>> {
        self.iter().find(|r| &r.id == id).cloned()
    }
}

/// A room's day was closed and its facts stored.
#[derive(Clone, Debug, PartialEq)]
pub struct DayClosed {
    pub room: RoomId,
    pub date: Date,
}

/// One room's figures of one month, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct MonthLedger {
    room: RoomId,
    /// `YYYY-MM`.
    month: String,
    days: BTreeMap<Date, DayFigures>,
}

/// The first day the node ran the analysis (backfill never goes before it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct State {
    since: Date,
}

fn month_of(d: Date) -> String {
    let (y, m, _) = d.parts();
    format!("{y:04}-{m:02}")
}

fn encoding(r: &StoredRecord, e: serde_json::Error) -> AnalysisError {
    AnalysisError::Encoding(format!("{}: {e}", r.id))
}

/// The closed days' figures of every room, and today's.
#[derive(Default)]
struct Ledger {
    closed: HashMap<RoomId, BTreeMap<Date, DayFigures>>,
    /// Versions of the month records, for the next write.
    versions: HashMap<(RoomId, String), RecordVersion>,
    /// Today's live figures (date, figures).
    live: HashMap<RoomId, (Date, DayFigures)>,
}

/// The analysis service (see the module doc).
pub struct Analysis {
    config: AnalysisConfig,
    records: Arc<dyn Records>,
    historian: Option<Arc<Historian>>,
    registry: Arc<dyn RoomSource>,
    archive: Option<Arc<Archive>>,
    clock: Arc<dyn Clock>,
    ledger: RwLock<Ledger>,
    since: Date,
    closed_tx: broadcast::Sender<DayClosed>,
    day_kind: RecordKind,
    month_kind: RecordKind,
    by_room: IndexName,
    by_month: IndexName,
    /// One closer at a time (the periodic one, a recompute).
    closing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis")
            .field("config", &self.config)
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

impl Analysis {
    /// Loads the ledger within `retain_days` and the node's first day.
    pub async fn start(
        config: AnalysisConfig,
        records: Arc<dyn Records>,
        historian: Option<Arc<Historian>>,
        registry: Arc<dyn RoomSource>,
        archive: Option<Arc<Archive>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AnalysisError> {
        let (closed_tx, _) = broadcast::channel(1024);
        let state_kind = RecordKind::new("analysis_state")?;
        let today = Date::of(clock.now(), config.utc_offset_minutes);
        let state_id = RecordId::new("node")?;
        let since = match records.record(&state_kind, &state_id).await? {
            Some(r) => {
                serde_json::from_slice::<State>(&r.body)
                    .map_err(|e| encoding(&r, e))?
                    .since
            }
            None => {
                let body = serde_json::to_vec(&State { since: today })
                    .map_err(|e| AnalysisError::Encoding(e.to_string()))?;
                records
                    .put_record(RecordPut {
                        kind: state_kind.clone(),
                        id: state_id,
                        expected: None,
                        body,
                        index: Vec::new(),
                    })
                    .await?;
                today
            }
        };
        let me = Self {
            records,
            historian,
            registry,
            archive,
            clock,
            ledger: RwLock::new(Ledger::default()),
            since,
            closed_tx,
            day_kind: RecordKind::new("analysis_day")?,
            month_kind: RecordKind::new("analysis_month")?,
            by_room: IndexName::new("by_room")?,
            by_month: IndexName::new("by_month")?,
            closing: tokio::sync::Mutex::new(()),
            config,
        };
        me.load_ledger(today).await?;
        Ok(me)
    }

    async fn load_ledger(&self, today: Date) -> Result<(), AnalysisError> {
        let first = month_of(today.plus_days(-(self.config.retain_days as i32)));
        let range = IndexRange::between(format!("{first}/"), format!("{}/~", month_of(today)));
        let stored = self
            .records
            .list_by_index(&self.month_kind, &self.by_month, range, usize::MAX)
            .await?;
        let mut ledger = self.write();
        for r in stored {
            let m: MonthLedger = serde_json::from_slice(&r.body).map_err(|e| encoding(&r, e))?;
            ledger
                .versions
                .insert((m.room.clone(), m.month.clone()), r.version);
            ledger.closed.entry(m.room).or_default().extend(m.days);
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ledger> {
        self.ledger.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Ledger> {
        self.ledger.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &AnalysisConfig {
        &self.config
    }

    /// The records port the analysis keeps its days on (the cockpit keeps its users' boards
    /// and the score its history beside them).
    pub fn records(&self) -> &Arc<dyn Records> {
        &self.records
    }

    /// Now, by the node's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Today, local.
    pub fn today(&self) -> Date {
        Date::of(self.clock.now(), self.config.utc_offset_minutes)
    }

    /// The newest day that is closed (or closes at the next pass).
    pub fn last_closable(&self) -> Date {
        let t = self.clock.now() - self.config.close_after;
        Date::of(t, self.config.utc_offset_minutes).plus_days(-1)
    }

    /// The first day the node ran the analysis.
    pub fn since(&self) -> Date {
        self.since
    }

    /// The live fleet's rooms.
    pub fn rooms(&self) -> Vec<Arc<RoomSpec>> {
        self.registry.rooms()
    }

    pub fn room(&self, id: &RoomId) -> Option<Arc<RoomSpec>> {
        self.registry.room(id)
    }

    /// The room's archive (nameplates with curves), when the node keeps one.
    pub async fn archive(&self, id: &RoomId) -> Option<Arc<RoomArchive>> {
        match &self.archive {
            Some(a) => a.room(id).await,
            None => None,
        }
    }

    /// Tells of each closed day as it is stored.
    pub fn subscribe(&self) -> broadcast::Receiver<DayClosed> {
        self.closed_tx.subscribe()
    }

    /// The room's figures for each day within `[from, to]` that has them: closed days from the
    /// ledger, today's live figures (as of the last live pass).
    pub fn figures(&self, room: &RoomId, from: Date, to: Date) -> Vec<(Date, DayFigures)> {
        let ledger = self.read();
        let mut out: Vec<(Date, DayFigures)> = ledger
            .closed
            .get(room)
            .map(|days| {
                days.range(from..=to)
                    .map(|(d, f)| (*d, f.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some((d, f)) = ledger.live.get(room) {
            if (from..=to).contains(d) && out.last().is_none_or(|(last, _)| last < d) {
                out.push((*d, f.clone()));
            }
        }
        out
    }

    /// Calls `f` for every room's figures of each day within `[from, to]` (closed days, then
    /// today's live figures), room by room in id order, days in order. Holds the ledger's read
    /// lock: `f` must not call back into the service.
    pub fn each_figures(
        &self,
        from: Date,
        to: Date,
        mut f: impl FnMut(&RoomId, Date, &DayFigures),
    ) {
        let ledger = self.read();
        let mut rooms: Vec<&RoomId> = ledger.closed.keys().chain(ledger.live.keys()).collect();
        rooms.sort();
        rooms.dedup();
        for room in rooms {
            let mut last = None;
            if let Some(days) = ledger.closed.get(room) {
                for (d, fig) in days.range(from..=to) {
                    f(room, *d, fig);
                    last = Some(*d);
                }
            }
            if let Some((d, fig)) = ledger.live.get(room) {
                if (from..=to).contains(d) && last.is_none_or(|l| l < *d) {
                    f(room, *d, fig);
                }
            }
        }
    }

    /// The room's full facts for `date`: stored when closed, computed now when it is today or
    /// not closed yet. `None`: a closed day before the node ran, never computed.
    pub async fn day(&self, room: &RoomId, date: Date) -> Result<Option<RoomDay>, AnalysisError> {
        let spec = self
            .room(room)
            .ok_or_else(|| AnalysisError::UnknownRoom(room.clone()))?;
        let today = self.today();
        if date > today {
            return Err(AnalysisError::Future(date, today));
        }
        if let Some(r) = self
            .records
            .record(&self.day_kind, &day_id(room, date)?)
            .await?
        {
            return Ok(Some(
                serde_json::from_slice(&r.body).map_err(|e| encoding(&r, e))?,
            ));
        }
        if date > self.last_closable() {
            return Ok(Some(self.compute(&spec, date, false).await?));
        }
        Ok(None)
    }

    /// Computes the room's `date` again (late data arrived, a curve was corrected) and stores
    /// it when the day is closable.
    pub async fn recompute(&self, room: &RoomId, date: Date) -> Result<RoomDay, AnalysisError> {
        let spec = self
            .room(room)
            .ok_or_else(|| AnalysisError::UnknownRoom(room.clone()))?;
        let today = self.today();
        if date > today {
            return Err(AnalysisError::Future(date, today));
        }
        if date > self.last_closable() {
            let day = self.compute(&spec, date, false).await?;
            self.write()
                .live
                .insert(room.clone(), (date, day.figures()));
            return Ok(day);
        }
        let _one = self.closing.lock().await;
        let day = self.compute(&spec, date, true).await?;
        self.store(&day).await?;
        Ok(day)
    }

    /// Loads and computes a room's day.
    async fn compute(
        &self,
        spec: &RoomSpec,
        date: Date,
        closed: bool,
    ) -> Result<RoomDay, AnalysisError> {
        let historian = self.historian.as_ref().ok_or(AnalysisError::NoHistory)?;
        let series = DaySeries::load(historian, spec, date, self.config.utc_offset_minutes).await?;
        let archive = self.archive(&spec.id).await;
        let ctx = RoomContext {
            spec,
            archive: archive.as_deref(),
            config: &self.config,
        };
        Ok(compute_day(&series, &ctx, closed))
    }

    /// Stores a closed day: its record, then its figures in the month ledger (memory and
    /// store), then tells the subscribers.
    pub async fn store(&self, day: &RoomDay) -> Result<(), AnalysisError> {
        let id = day_id(&day.room, day.date)?;
        let body = serde_json::to_vec(day).map_err(|e| AnalysisError::Encoding(e.to_string()))?;
        let expected = self
            .records
            .record(&self.day_kind, &id)
            .await?
            .map(|r| r.version);
        self.records
            .put_record(RecordPut {
                kind: self.day_kind.clone(),
                id,
                expected,
                body,
                index: vec![IndexEntry::new(
                    &self.by_room,
                    format!("{}/{}", day.room, day.date),
                )],
            })
            .await?;
        let month = month_of(day.date);
        let figures = day.figures();
        let (ledger, expected) = {
            let mut g = self.write();
            let days = g.closed.entry(day.room.clone()).or_default();
            days.insert(day.date, figures);
            let first = Date::ymd(day.date.parts().0, day.date.parts().1, 1).unwrap_or(day.date);
            let in_month: BTreeMap<Date, DayFigures> = days
                .range(first..)
                .take_while(|(d, _)| month_of(**d) == month)
                .map(|(d, f)| (*d, f.clone()))
                .collect();
            if g.live.get(&day.room).is_some_and(|(d, _)| *d <= day.date) {
                g.live.remove(&day.room);
            }
            let expected = g.versions.get(&(day.room.clone(), month.clone())).copied();
            (
                MonthLedger {
                    room: day.room.clone(),
                    month: month.clone(),
                    days: in_month,
                },
                expected,
            )
        };
        let body =
            serde_json::to_vec(&ledger).map_err(|e| AnalysisError::Encoding(e.to_string()))?;
        let id = RecordId::new(&format!("{}@{month}", day.room))?;
        let put = |expected| RecordPut {
            kind: self.month_kind.clone(),
            id: id.clone(),
            expected,
            body: body.clone(),
            index: vec![IndexEntry::new(
                &self.by_month,
                format!("{month}/{}", day.room),
            )],
        };
        let version = match self.records.put_record(put(expected)).await {
            Ok(v) => v,
            // Another writer (a recompute racing the closer): the memory holds the union.
            Err(RecordsError::Conflict { found, .. }) => {
                self.records.put_record(put(found)).await?
            }
            Err(e) => return Err(e.into()),
        };
        self.write()
            .versions
            .insert((day.room.clone(), month), version);
        let _ = self.closed_tx.send(DayClosed {
            room: day.room.clone(),
            date: day.date,
        });
        Ok(())
    }

    /// Closes every room's days that are due and not closed yet (oldest first); returns how
    /// many were closed. A room whose day fails is logged and tried again at the next pass.
    pub async fn close_due(&self) -> usize {
        let Some(_) = &self.historian else {
            return 0;
        };
        let _one = self.closing.lock().await;
        let last = self.last_closable();
        let first = last
            .plus_days(1 - self.config.backfill_days as i32)
            .max(self.since);
        let mut closed = 0;
        for spec in self.rooms() {
            let missing: Vec<Date> = {
                let g = self.read();
                let have = g.closed.get(&spec.id);
                (first.days()..=last.days())
                    .map(Date::from_days)
                    .filter(|d| !have.is_some_and(|h| h.contains_key(d)))
                    .collect()
            };
            tokio::task::yield_now().await;
            for date in missing {
                let result = match self.compute(&spec, date, true).await {
                    Ok(day) => self.store(&day).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => closed += 1,
                    Err(e) => {
                        tracing::warn!(room = %spec.id, %date, error = %e, "cannot close the day");
                        break;
                    }
                }
            }
        }
        closed
    }

    /// Recomputes today's figures of every room.
    pub async fn refresh_live(&self) -> usize {
        if self.historian.is_none() {
            return 0;
        }
        let today = self.today();
        let mut n = 0;
        for spec in self.rooms() {
            match self.compute(&spec, today, false).await {
                Ok(day) => {
                    self.write()
                        .live
                        .insert(spec.id.clone(), (today, day.figures()));
                    n += 1;
                }
                Err(e) => tracing::warn!(room = %spec.id, error = %e, "cannot compute today"),
            }
            tokio::task::yield_now().await;
        }
        n
    }

    /// Closes days as they come due and keeps today's figures fresh, until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut live_due = tokio::time::Instant::now();
        loop {
            let closed = self.close_due().await;
            if closed > 0 {
                tracing::info!(closed, "analysis: days closed");
            }
            if tokio::time::Instant::now() >= live_due {
                self.refresh_live().await;
                live_due = tokio::time::Instant::now() + self.config.live_every;
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(self.config.check_every) => {}
            }
        }
    }
}

fn day_id(room: &RoomId, date: Date) -> Result<RecordId, AnalysisError> {
    Ok(RecordId::new(&format!("{room}@{date}"))?)
}
