//! The lifecycle service: the fleet's components in memory (rebuilt at start from the rooms'
//! archives, the demo's simulated history when asked, and the recorded events), the events
//! recorded on the records port, the stock on hand, and the periodic task that reads the pumps'
//! run-hours counters and raises preventive work orders ahead of plan.
//!
//! Records: `component_event` (an event by hand, from a work order or an archive's serial
//! change; index `by_component`), `spare_stock` (a part number's stock on hand), and
//! `preventive_order` (`component@planned-date`, written once after its order exists, so that a
//! component is ordered once per plan across restarts), and `component_seen` (per room, when
//! each component without an install date in the archive was first seen: its install time). The figures (fits, risks, plan) are
//! recomputed on demand and cached until a change or an hour of clock time.

use super::analysis::{self, Fits, Plan, Risk, SpareLine, SupplierLine};
use super::model::{
    derive, Component, ComponentClass, ComponentId, Event, EventKind, EventSource, HoursSource,
};
use super::{LifecycleConfig, LifecycleError};
use crate::business::assets::archive::model::RoomArchive;
use crate::business::workorders::model::{OrderState, OrderType, WorkOrder};
use crate::business::workorders::service::NewOrder;
use crate::business::workorders::WorkOrders;
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, Records, RecordsError,
};
use cistern_actors::Clock;
use cistern_schemas::{Date, DeviceUnit, EquipmentTag, RoomId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

/// Everything the console shows, computed at one instant.
#[derive(Debug, Serialize)]
pub struct Figures {
    pub at: Timestamp,
    pub fits: Fits,
    /// In component order.
    pub risks: Vec<Risk>,
    pub plan: Plan,
    pub spares: Vec<SpareLine>,
    pub suppliers: Vec<SupplierLine>,
}

#[derive(Debug, Default)]
struct State {
    components: BTreeMap<ComponentId, Component>,
    stock: BTreeMap<String, u32>,
    figures: Option<Arc<Figures>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EventRecord {
    component: ComponentId,
    event: Event,
}

#[derive(Debug, Serialize, Deserialize)]
struct StockRecord {
    part_number: String,
    quantity: u32,
    by: String,
    at: Timestamp,
}

/// A stock line as set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stock {
    pub part_number: String,
    pub quantity: u32,
}

#[derive(Debug)]
struct Kinds {
    events: RecordKind,
    stock: RecordKind,
    ordered: RecordKind,
    seen: RecordKind,
    by_component: IndexName,
    all: IndexName,
}

/// What following a room's archive found.
#[derive(Debug, Default)]
struct Derivation {
    /// A new serial on a known component.
    changed: Vec<(ComponentId, String)>,
    /// New components without an install date (outside the demo).
    undated: Vec<ComponentId>,
}

/// The service (see the module doc).
#[derive(Debug)]
pub struct Lifecycle {
    config: LifecycleConfig,
    records: Arc<dyn Records>,
    kinds: Kinds,
    clock: Arc<dyn Clock>,
    offset_minutes: i32,
    /// The demo's simulated history is generated for new components.
    simulated: bool,
    state: RwLock<State>,
    orders: Mutex<Option<Arc<WorkOrders>>>,
    /// Rooms whose undated components' first sighting is still to be read or written.
    pending: Mutex<Vec<(RoomId, Vec<ComponentId>)>>,
}

const LIST_LIMIT: usize = 10_000_000;

/// The note of the install event of a part whose archive gives no install date.
const FIRST_SEEN: &str = "first seen (no install date in the archive)";

impl Lifecycle {
    /// The service over `archives` (one per room), with the recorded events and stock. With
    /// `simulated`, components get the demo's generated history (see [`super::demo`]).
    pub async fn start(
        config: LifecycleConfig,
        records: Arc<dyn Records>,
        clock: Arc<dyn Clock>,
        offset_minutes: i32,
        simulated: bool,
        archives: &[RoomArchive],
    ) -> Result<Self, LifecycleError> {
        let service = Self {
            config,
            records,
            kinds: Kinds {
                events: RecordKind::new("component_event")?,
                stock: RecordKind::new("spare_stock")?,
                ordered: RecordKind::new("preventive_order")?,
                seen: RecordKind::new("component_seen")?,
                by_component: IndexName::new("by_component")?,
                all: IndexName::new("all")?,
            },
            clock,
            offset_minutes,
            simulated,
            state: RwLock::new(State::default()),
            orders: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
        };
        let mut undated = Vec::new();
        for a in archives {
            let d = service.derive_room(a);
            if !d.undated.is_empty() {
                undated.push((a.site.id.clone(), d.undated));
            }
        }
        // Written by the periodic task's first step (`remember_first_seen`): a new site's
        // first start would otherwise wait for a durable write per room.
        if let Ok(mut pending) = service.pending.lock() {
            *pending = undated;
        }
        let stored = service
            .records
            .list_by_index(
                &service.kinds.events,
                &service.kinds.by_component,
                IndexRange::between("", "\u{10ffff}"),
                LIST_LIMIT,
            )
            .await?;
        let stock = service
            .records
            .list_by_index(
                &service.kinds.stock,
                &service.kinds.all,
                IndexRange::value("all"),
                LIST_LIMIT,
            )
            .await?;
        {
            let mut state = service.write();
            for r in stored {
                match serde_json::from_slice::<EventRecord>(&r.body) {
                    Ok(e) => {
                        if let Some(c) = state.components.get_mut(&e.component) {
                            c.push(e.event);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(id = %r.id, %error, "unreadable component event skipped")
                    }
                }
            }
            for r in stock {
                if let Ok(s) = serde_json::from_slice::<StockRecord>(&r.body) {
                    state.stock.insert(s.part_number, s.quantity);
                }
            }
        }
        Ok(service)
    }

    /// Reads or writes when the components without an install date seen at start were first
    /// seen (their install time; see the module doc). The periodic task does it first.
    pub async fn remember_first_seen(&self) -> Result<(), LifecycleError> {
        let pending = self
            .pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for (room, ids) in &pending {
            self.first_seen(room, ids).await?;
        }
        Ok(())
    }

    /// Preventive orders go through this service from now on (else none are raised).
    pub fn attach_orders(&self, orders: Arc<WorkOrders>) {
        if let Ok(mut o) = self.orders.lock() {
            *o = Some(orders);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> &LifecycleConfig {
        &self.config
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Adds the room's components not known yet (install events from the archive, or the
    /// demo's history); returns the new components and the serial changes seen.
    fn derive_room(&self, archive: &RoomArchive) -> Derivation {
        let now = self.clock.now();
        let derived = derive(archive, self.offset_minutes);
        let mut state = self.write();
        let mut out = Derivation::default();
        let keep: std::collections::HashSet<ComponentId> =
            derived.iter().map(|d| d.id.clone()).collect();
        // The room's components are one range of the map (ids start `ROOM/`).
        let prefix = format!("{}/", archive.site.id);
        let gone: Vec<ComponentId> = state
            .components
            .range(ComponentId::prefix(&prefix)..)
            .take_while(|(id, _)| id.as_str().starts_with(&prefix))
            .filter(|(id, _)| !keep.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            state.components.remove(&id);
        }
        for d in derived {
            if let Some(c) = state.components.get_mut(&d.id) {
                if !d.serial.is_empty() && !c.serial.is_empty() && d.serial != c.serial {
                    out.changed.push((d.id.clone(), d.serial.clone()));
                }
                if !d.vendor.is_empty() {
                    c.vendor = d.vendor;
                    c.model = d.model;
                }
                if !d.part_number.is_empty() {
                    c.part_number = d.part_number;
                }
                continue;
            }
            let installed = d.installed.unwrap_or(now);
            let dated = d.installed.is_some();
            let id = d.id.clone();
            let mut c = d.component(installed, self.config.duty);
            if self.simulated {
                // The demo: every part gets a simulated history (from its archive's install
                // date where it has one), so that curves, fits and plans have data.
                let dated = dated.then_some(installed);
                super::demo::history(&mut c, now, self.config.duty, dated);
            } else if !dated {
                // Installed when first seen: remembered (Self::first_seen), so that its
                // age does not start again at every restart.
                c.events.clear();
                out.undated.push(id.clone());
            }
            state.components.insert(id, c);
        }
        state.figures = None;
        out
    }

    /// Gives the room's components without an install date the time they were first seen
    /// (kept in one `component_seen` record per room), as an install event.
    async fn first_seen(&self, room: &RoomId, ids: &[ComponentId]) -> Result<(), LifecycleError> {
        if ids.is_empty() {
            return Ok(());
        }
        let rid = RecordId::new(room.as_str())?;
        let now = self.clock.now();
        let mut seen: BTreeMap<ComponentId, Timestamp> = BTreeMap::new();
        for _ in 0..5 {
            let stored = self.records.record(&self.kinds.seen, &rid).await?;
            seen = match &stored {
                Some(r) => serde_json::from_slice(&r.body)?,
                None => BTreeMap::new(),
            };
            let missing: Vec<&ComponentId> =
                ids.iter().filter(|i| !seen.contains_key(*i)).collect();
            if missing.is_empty() {
                break;
            }
            for id in missing {
                seen.insert(id.clone(), now);
            }
            let put = RecordPut {
                kind: self.kinds.seen.clone(),
                id: rid.clone(),
                expected: stored.map(|r| r.version),
                body: serde_json::to_vec(&seen)?,
                index: Vec::new(),
            };
            match self.records.put_record(put).await {
                Ok(_) => break,
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let mut state = self.write();
        for id in ids {
            let (Some(at), Some(c)) = (seen.get(id), state.components.get_mut(id)) else {
                continue;
            };
            if c.events.iter().any(|e| e.kind == EventKind::Install) {
                continue;
            }
            c.push(Event {
                at: *at,
                kind: EventKind::Install,
                source: EventSource::Archive,
                serial: c.serial.clone(),
                by: "archive".into(),
                order: None,
                note: FIRST_SEEN.into(),
            });
        }
        state.figures = None;
        Ok(())
    }

    /// Follows a room's archive: an equipment new to it gets its components (an install
    /// event), a changed serial on the same tag is a replacement (recorded, by `author`), a
    /// removed equipment's components go. Idempotent.
    pub async fn sync_room(
        &self,
        archive: &RoomArchive,
        author: &str,
    ) -> Result<(), LifecycleError> {
        let d = self.derive_room(archive);
        self.first_seen(&archive.site.id, &d.undated).await?;
        for (id, serial) in d.changed {
            let event = Event {
                at: self.clock.now(),
                kind: EventKind::Replacement,
                source: EventSource::Archive,
                serial: serial.clone(),
                by: author.to_owned(),
                order: None,
                note: String::new(),
            };
            self.record(&id, event, &format!("{id}@serial:{serial}"))
                .await?;
        }
        Ok(())
    }

    /// Records an event once under `key` (a repeat of the key is a no-op) and applies it.
    async fn record(
        &self,
        id: &ComponentId,
        event: Event,
        key: &str,
    ) -> Result<bool, LifecycleError> {
        if !self.read().components.contains_key(id) {
            return Err(LifecycleError::UnknownComponent(id.to_string()));
        }
        let body = serde_json::to_vec(&EventRecord {
            component: id.clone(),
            event: event.clone(),
        })?;
        let put = RecordPut {
            kind: self.kinds.events.clone(),
            id: RecordId::new(key)?,
            expected: None,
            body,
            index: vec![IndexEntry::new(&self.kinds.by_component, id.as_str())],
        };
        match self.records.put_record(put).await {
            Ok(_) => {}
            Err(RecordsError::Conflict { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let mut state = self.write();
        if let Some(c) = state.components.get_mut(id) {
            c.push(event);
        }
        state.figures = None;
        Ok(true)
    }

    /// An event by hand (the API). `at` in the future or before 1990 is refused.
    pub async fn record_manual(
        &self,
        id: &ComponentId,
        kind: EventKind,
        at: Option<Timestamp>,
        serial: String,
        note: String,
        by: &str,
    ) -> Result<Component, LifecycleError> {
        self.record_from(EventSource::Manual, id, kind, at, serial, note, by)
            .await
    }

    /// An event from a spreadsheet import (the archive's import calls this for its parts'
    /// history rows): the same checks as by hand, and a repeat of the same row (component,
    /// time and kind) records nothing, so a re-import does not duplicate it.
    pub async fn record_imported(
        &self,
        id: &ComponentId,
        kind: EventKind,
        at: Timestamp,
        serial: String,
        note: String,
        by: &str,
    ) -> Result<Component, LifecycleError> {
        self.record_from(EventSource::Import, id, kind, Some(at), serial, note, by)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_from(
        &self,
        source: EventSource,
        id: &ComponentId,
        kind: EventKind,
        at: Option<Timestamp>,
        serial: String,
        note: String,
        by: &str,
    ) -> Result<Component, LifecycleError> {
        let now = self.clock.now();
        let at = at.unwrap_or(now);
        if at > now || at.as_millis() < 631_152_000_000 {
            return Err(LifecycleError::Invalid(format!(
                "the event's time {at} is in the future or before 1990"
            )));
        }
        if serial.chars().count() > 100 || note.chars().count() > 2_000 {
            return Err(LifecycleError::Invalid("serial or note too long".into()));
        }
        let key = format!("{id}#{}-{:?}", at.as_millis(), kind);
        let event = Event {
            at,
            kind,
            source,
            serial,
            by: by.to_owned(),
            order: None,
            note,
        };
        self.record(id, event, &key).await?;
        self.component(id)
            .ok_or_else(|| LifecycleError::UnknownComponent(id.to_string()))
    }

    /// A completed work order that replaced parts: each used part naming a component class
    /// (`mechanical_seal`) on the order's pump is a failure (corrective and emergency orders)
    /// or a planned replacement (preventive orders). Returns the events recorded (0 on a
    /// repeat).
    pub async fn from_order(&self, order: &WorkOrder) -> Result<usize, LifecycleError> {
        if !matches!(order.state, OrderState::Completed | OrderState::Closed) {
            return Ok(0);
        }
        let kind = match order.kind {
            OrderType::Corrective | OrderType::Emergency => EventKind::Failure,
            OrderType::Preventive => EventKind::Replacement,
            _ => return Ok(0),
        };
        let (Some(room), Some(device)) = (&order.room, &order.device) else {
            return Ok(0);
        };
        if !matches!(device.unit, DeviceUnit::Pump(_)) {
            return Ok(0);
        }
        let tag = EquipmentTag::from(device.unit);
        let at = order
            .transitions
            .iter()
            .rev()
            .find(|t| t.action == crate::business::workorders::model::ActionKind::Complete)
            .map(|t| t.at)
            .unwrap_or_else(|| self.clock.now());
        let mut n = 0;
        for part in &order.parts {
            let name = part.part.trim();
            let Some(class) = ComponentClass::parse(name.strip_suffix("_set").unwrap_or(name))
            else {
                continue;
            };
            let id = ComponentId::new(room, &tag, class);
            let event = Event {
                at,
                kind,
                source: EventSource::WorkOrder,
                serial: String::new(),
                by: order
                    .assignee
                    .clone()
                    .unwrap_or_else(|| order.created_by.clone()),
                order: Some(order.id.to_string()),
                note: String::new(),
            };
            match self.record(&id, event, &format!("{id}@{}", order.id)).await {
                Ok(true) => n += 1,
                Ok(false) | Err(LifecycleError::UnknownComponent(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Sets a part number's stock on hand.
    pub async fn set_stock(
        &self,
        part_number: &str,
        quantity: u32,
        by: &str,
    ) -> Result<Stock, LifecycleError> {
        let part = part_number.trim();
        if part.is_empty() || part.len() > 100 || part.chars().any(char::is_control) {
            return Err(LifecycleError::Invalid(format!("part number {part:?}")));
        }
        let id = RecordId::new(part)?;
        let body = serde_json::to_vec(&StockRecord {
            part_number: part.to_owned(),
            quantity,
            by: by.to_owned(),
            at: self.clock.now(),
        })?;
        for _ in 0..5 {
            let expected = self
                .records
                .record(&self.kinds.stock, &id)
                .await?
                .map(|r| r.version);
            let put = RecordPut {
                kind: self.kinds.stock.clone(),
                id: id.clone(),
                expected,
                body: body.clone(),
                index: vec![IndexEntry::new(&self.kinds.all, "all")],
            };
            match self.records.put_record(put).await {
                Ok(_) => {
                    let mut state = self.write();
                    state.stock.insert(part.to_owned(), quantity);
                    state.figures = None;
                    return Ok(Stock {
                        part_number: part.to_owned(),
                        quantity,
                    });
                }
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(LifecycleError::Invalid("the stock record is busy".into()))
    }

    /// The measured duty of a room's pumps from their `run_hours` counters: a counter of
    /// `hours` on a pump first installed at `since` runs `hours / calendar hours`. Rooms not
    /// given keep the configured duty (calendar).
    pub fn set_run_hours(&self, room: &RoomId, counters: &[(EquipmentTag, f64)]) {
        let now = self.clock.now();
        let mut state = self.write();
        for c in state.components.values_mut() {
            if &c.room != room || !c.class.runs_with_pump() {
                continue;
            }
            let Some((_, hours)) = counters.iter().find(|(t, _)| t == &c.equipment) else {
                continue;
            };
            let undated = c.events.len() <= 1
                && c.events
                    .iter()
                    .all(|e| e.kind == EventKind::Install && e.note == FIRST_SEEN);
            if undated && hours.is_finite() && *hours > 0.0 {
                // No install date and no replacement since: the counter (the pump's hours since
                // it was fitted) is the part's age; its install time is put back to match it.
                let duty = self.config.duty.clamp(0.02, 1.0);
                let back = (hours / duty * 3_600_000.0).min(1e15) as i64;
                c.installed_at = Timestamp::from_millis(now.as_millis() - back);
                c.duty = duty;
                c.hours_source = HoursSource::Counter;
                continue;
            }
            let since = c.events.first().map(|e| e.at).unwrap_or(c.installed_at);
            let calendar = (now.as_millis() - since.as_millis()) as f64 / 3_600_000.0;
            if hours.is_finite() && *hours > 0.0 && calendar > 24.0 {
                let duty = (hours / calendar).clamp(0.02, 1.0);
                // The demo's generated history was drawn in running hours at the assumed duty:
                // drawn again at the measured one, so that its lives stay lives of this curve.
                if self.simulated
                    && (c.duty - duty).abs() > 1e-3
                    && c.events.iter().all(|e| e.source == EventSource::Simulated)
                {
                    super::demo::history(c, now, duty, None);
                }
                c.duty = duty;
                c.hours_source = HoursSource::Counter;
            }
        }
        state.figures = None;
    }

    /// Every component (filtered).
    pub fn components(
        &self,
        room: Option<&RoomId>,
        class: Option<ComponentClass>,
        vendor: Option<&str>,
    ) -> Vec<Component> {
        self.read()
            .components
            .values()
            .filter(|c| room.is_none_or(|r| &c.room == r))
            .filter(|c| class.is_none_or(|k| c.class == k))
            .filter(|c| vendor.is_none_or(|v| c.vendor == v))
            .cloned()
            .collect()
    }

    pub fn component(&self, id: &ComponentId) -> Option<Component> {
        self.read().components.get(id).cloned()
    }

    pub fn stock(&self) -> Vec<Stock> {
        self.read()
            .stock
            .iter()
            .map(|(p, q)| Stock {
                part_number: p.clone(),
                quantity: *q,
            })
            .collect()
    }

    /// The figures now (cached until a change or an hour of clock time).
    pub fn figures(&self) -> Arc<Figures> {
        let now = self.clock.now();
        if let Some(f) = &self.read().figures {
            if (0..3_600_000).contains(&(now.as_millis() - f.at.as_millis())) {
                return f.clone();
            }
        }
        let (components, stock) = {
            let s = self.read();
            (
                s.components.values().cloned().collect::<Vec<_>>(),
                s.stock.clone(),
            )
        };
        let figures = Arc::new(compute(
            &components,
            &stock,
            &self.config,
            now,
            self.offset_minutes,
        ));
        self.write().figures = Some(figures.clone());
        figures
    }

    /// Raises the preventive orders due within the lead time: one order per room (the
    /// `preventive_replacement` template) naming its components, each component once per
    /// planned date. Returns how many components were ordered.
    pub async fn raise_preventive(&self) -> Result<usize, LifecycleError> {
        let orders = self.orders.lock().ok().and_then(|o| o.clone());
        let Some(orders) = orders.filter(|_| self.config.preventive_orders) else {
            return Ok(0);
        };
        let now = self.clock.now();
        let until = now + std::time::Duration::from_secs(u64::from(self.config.lead_days) * 86_400);
        let figures = self.figures();
        let mut by_room: BTreeMap<RoomId, Vec<(&Risk, String)>> = BTreeMap::new();
        for r in &figures.risks {
            let Some(due) = r.next_replacement else {
                continue;
            };
            if due > until {
                continue;
            }
            let plan = Date::of(due, self.offset_minutes).to_string();
            let key = format!("{}@{plan}", r.id);
            if self
                .records
                .record(&self.kinds.ordered, &RecordId::new(&key)?)
                .await?
                .is_some()
            {
                continue;
            }
            by_room.entry(r.room.clone()).or_default().push((r, key));
        }
        let mut n = 0;
        for (room, items) in by_room {
            let text = items
                .iter()
                .map(|(r, _)| {
                    format!(
                        "{} {} ({:.0} h, P90d {:.0}%)",
                        r.equipment,
                        r.class,
                        r.age_hours,
                        r.p90 * 100.0
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let comment = format!("Preventive replacement / 预防性更换: {text}");
            let order = match orders
                .create(
                    NewOrder {
                        template: "preventive_replacement".into(),
                        room: room.clone(),
                        priority: None,
                        assignee: None,
                        comment: Some(comment.clone()),
                    },
                    crate::business::workorders::service::SYSTEM,
                )
                .await
            {
                Ok(Ok(o)) => o.id,
                Ok(Err(open)) => {
                    // The room has an open preventive order: the new parts join it.
                    orders
                        .command(
                            &open,
                            crate::business::workorders::model::Command::Comment,
                            &crate::business::workorders::model::Caller {
                                user: crate::business::workorders::service::SYSTEM.into(),
                                dispatcher: true,
                            },
                            crate::business::workorders::model::Context {
                                comment: Some(comment),
                                position: None,
                            },
                        )
                        .await
                        .map_err(|e| LifecycleError::Invalid(e.to_string()))?;
                    open
                }
                Err(e) => {
                    tracing::warn!(%room, error = %e, "preventive order not raised");
                    continue;
                }
            };
            for (_, key) in items {
                let put = RecordPut {
                    kind: self.kinds.ordered.clone(),
                    id: RecordId::new(&key)?,
                    expected: None,
                    body: serde_json::to_vec(&order.to_string())?,
                    index: Vec::new(),
                };
                match self.records.put_record(put).await {
                    Ok(_) => n += 1,
                    Err(RecordsError::Conflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(n)
    }
}

/// Work orders and the alarms linked to them over a period, by the equipment they were about
/// (the order's device, e.g. a pump, and that equipment's vendor and model in the archive).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VendorOrders {
    /// The equipment type (`pump`).
    pub equipment: ComponentClass,
    pub vendor: String,
    pub model: String,
    pub orders: usize,
    /// Of them, corrective and emergency orders (failures and faults).
    pub corrective: usize,
    /// Alarm raisings linked to the orders.
    pub alarms: usize,
}

impl Lifecycle {
    /// The work orders created in the last `days` days and their linked alarms, counted by the
    /// vendor and model of the pump they were about (orders without a pump device are not
    /// counted).
    pub async fn order_statistics(
        &self,
        orders: &WorkOrders,
        days: u32,
    ) -> Result<Vec<VendorOrders>, LifecycleError> {
        let now = self.clock.now();
        let from = Timestamp::from_millis(now.as_millis() - i64::from(days) * 86_400_000);
        let list = orders
            .created_between(from, now)
            .await
            .map_err(|e| LifecycleError::Invalid(e.to_string()))?;
        let vendors: HashMap<(RoomId, EquipmentTag), (String, String)> = self
            .read()
            .components
            .values()
            .filter(|c| c.class == ComponentClass::Pump)
            .map(|c| {
                (
                    (c.room.clone(), c.equipment.clone()),
                    (c.vendor.clone(), c.model.clone()),
                )
            })
            .collect();
        let mut lines: BTreeMap<(String, String), VendorOrders> = BTreeMap::new();
        for o in &list {
            let (Some(room), Some(device)) = (&o.room, &o.device) else {
                continue;
            };
            if !matches!(device.unit, DeviceUnit::Pump(_)) {
                continue;
            }
            let Some((vendor, model)) =
                vendors.get(&(room.clone(), EquipmentTag::from(device.unit)))
            else {
                continue;
            };
            let line = lines
                .entry((vendor.clone(), model.clone()))
                .or_insert_with(|| VendorOrders {
                    equipment: ComponentClass::Pump,
                    vendor: if vendor.is_empty() {
                        "-".into()
                    } else {
                        vendor.clone()
                    },
                    model: if model.is_empty() {
                        "-".into()
                    } else {
                        model.clone()
                    },
                    orders: 0,
                    corrective: 0,
                    alarms: 0,
                });
            line.orders += 1;
            line.corrective += usize::from(matches!(
                o.kind,
                OrderType::Corrective | OrderType::Emergency
            ));
            line.alarms += o.alarms.len();
        }
        Ok(lines.into_values().collect())
    }
}

/// The figures of `components` at `now` (the fleet measurement times this).
pub fn compute(
    components: &[Component],
    stock: &BTreeMap<String, u32>,
    config: &LifecycleConfig,
    now: Timestamp,
    offset_minutes: i32,
) -> Figures {
    let fits = analysis::fits(components, now);
    let risks = analysis::risks(components, &fits, &config.costs, now);
    let plan = analysis::plan(&risks, &config.costs, now, 12, offset_minutes);
    let spares = analysis::spares(components, &risks, &fits, stock, now, config.horizon_days);
    let suppliers = analysis::suppliers(components, now);
    Figures {
        at: now,
        fits,
        risks,
        plan,
        spares,
        suppliers,
    }
}

/// Follows the archive: every room it writes (an equipment added, replaced, removed; an
/// import) is synced ([`Lifecycle::sync_room`]); after missing changes (a large import outran
/// the feed), every room is synced again. A room that cannot be synced is logged and retried
/// at its next change.
pub async fn follow_archive(
    service: Arc<Lifecycle>,
    archive: Arc<crate::business::assets::archive::Archive>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut changes = archive.subscribe();
    let sync = |room: Arc<RoomArchive>| {
        let service = service.clone();
        async move {
            if let Err(e) = service.sync_room(&room, "archive").await {
                tracing::warn!(room = %room.site.id, error = %e, "parts lifecycle did not follow the archive");
            }
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            change = changes.recv() => match change {
                Ok(c) => sync(c.archive).await,
                Err(RecvError::Lagged(_)) => {
                    for room in archive.rooms().await {
                        sync(room).await;
                    }
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
}

/// The periodic task: reads the pumps' run-hours counters from the live rooms, follows the
/// completed work orders, and raises preventive orders, every `check_every`.
pub async fn run(
    service: Arc<Lifecycle>,
    registry: Arc<cistern_actors::FleetRegistry>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let orders = service.orders.lock().ok().and_then(|o| o.clone());
    let mut completed = orders.as_ref().map(|o| o.subscribe());
    if let Err(error) = service.remember_first_seen().await {
        tracing::warn!(%error, "when undated parts were first seen is not kept");
    }
    let mut tick = tokio::time::interval(service.config.check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                read_counters(&service, &registry).await;
                // The fits and risks are CPU work: computed (and cached) off the runtime.
                let figures = service.clone();
                if let Err(error) = tokio::task::spawn_blocking(move || figures.figures()).await {
                    tracing::warn!(%error, "lifecycle figures not computed");
                }
                match service.raise_preventive().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(components = n, "preventive replacement orders raised"),
                    Err(error) => tracing::warn!(%error, "preventive orders not raised"),
                }
            }
            order = async {
                match completed.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match order {
                Ok(o) => {
                    if let Err(error) = service.from_order(&o).await {
                        tracing::warn!(order = %o.id, %error, "parts of a completed order not recorded");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "lifecycle missed work-order updates");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => completed = None,
            }
        }
    }
}

async fn read_counters(service: &Lifecycle, registry: &cistern_actors::FleetRegistry) {
    let rooms: Vec<RoomId> = {
        let state = service.read();
        let mut rooms: Vec<RoomId> = state.components.values().map(|c| c.room.clone()).collect();
        rooms.dedup();
        rooms
    };
    let mut seen: HashMap<RoomId, ()> = HashMap::new();
    for room in rooms {
        if seen.insert(room.clone(), ()).is_some() {
            continue;
        }
        let Ok(view) = registry.room_view(&room).await else {
            continue;
        };
        let counters: Vec<(EquipmentTag, f64)> = view
            .pumps
            .iter()
            .filter_map(|p| {
                let hours = p.points.iter().find(|pt| pt.name == "run_hours")?.value?;
                Some((EquipmentTag::from(p.id.unit), hours))
            })
            .collect();
        if !counters.is_empty() {
            service.set_run_hours(&room, &counters);
        }
    }
}
