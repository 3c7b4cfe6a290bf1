//! The inspection service (see the module doc of [`super`]).

use super::{builtin_templates, InspectionError, ItemKind, Template, ORDER_TEMPLATE};
use crate::business::workorders::service::NewOrder;
use crate::business::workorders::WorkOrders;
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, RecordVersion, Records,
    RecordsError, StoredRecord,
};
use cistern_actors::{Clock, FleetRegistry};
use cistern_schemas::{Date, RoomId, Timestamp, ZoneId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The longest note, in characters.
const MAX_NOTE: usize = 2000;
/// The largest photo kept on an item (a data URL), in bytes.
pub const MAX_PHOTO_BYTES: usize = 1_000_000;

/// An item's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Ok,
    Anomaly,
}

/// One item of an inspection: what it asked, and what the inspector found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    #[serde(flatten)]
    pub item: super::TemplateItem,
    pub status: Option<ItemStatus>,
    pub value: Option<f64>,
    #[serde(default)]
    pub note: String,
    /// A photo as a `data:image/...` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<String>,
    pub at: Option<Timestamp>,
    /// The work order raised from this item.
    pub order: Option<String>,
}

/// An inspection of a room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub id: String,
    pub room: RoomId,
    pub room_name: String,
    pub zone: ZoneId,
    pub template: String,
    pub inspector: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// The plan's due date when it started.
    pub due: Date,
    /// Finished on or before its due date.
    pub on_time: Option<bool>,
    pub items: Vec<ItemResult>,
}

impl Inspection {
    pub fn anomalies(&self) -> usize {
        (self.items.iter())
            .filter(|i| i.status == Some(ItemStatus::Anomaly))
            .count()
    }

    pub fn orders(&self) -> Vec<String> {
        self.items.iter().filter_map(|i| i.order.clone()).collect()
    }
}

/// What the inspector says of an item.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub status: ItemStatus,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub photo: Option<String>,
}

/// Where a room's plan stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanLine {
    pub room: RoomId,
    pub room_name: String,
    pub zone: ZoneId,
    pub template: String,
    pub every_days: u32,
    pub last: Option<Date>,
    pub due: Date,
    /// Past its due date.
    pub overdue: bool,
}

/// Inspections of a period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeriodReport {
    pub from: Date,
    pub to: Date,
    pub inspections: usize,
    pub finished: usize,
    pub on_time: usize,
    pub anomalies: usize,
    pub orders: Vec<String>,
    pub rows: Vec<InspectionLine>,
}

/// An inspection in a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InspectionLine {
    pub id: String,
    pub room: RoomId,
    pub room_name: String,
    pub zone: ZoneId,
    pub template: String,
    pub inspector: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub on_time: Option<bool>,
    pub items: usize,
    pub anomalies: usize,
    pub orders: Vec<String>,
}

impl From<&Inspection> for InspectionLine {
    fn from(i: &Inspection) -> Self {
        Self {
            id: i.id.clone(),
            room: i.room.clone(),
            room_name: i.room_name.clone(),
            zone: i.zone.clone(),
            template: i.template.clone(),
            inspector: i.inspector.clone(),
            started_at: i.started_at,
            finished_at: i.finished_at,
            on_time: i.on_time,
            items: i.items.len(),
            anomalies: i.anomalies(),
            orders: i.orders(),
        }
    }
}

/// Plans inspected on time over plans, for a zone or overall.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coverage {
    /// None: every zone.
    pub zone: Option<ZoneId>,
    pub plans: usize,
    pub on_time: usize,
    pub overdue: usize,
    /// `on_time / plans` (1 when there are no plans).
    pub ratio: f64,
}

/// One inspector's figures over a period (for staff performance).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InspectorFigures {
    pub inspector: String,
    pub started: usize,
    pub finished: usize,
    pub on_time: usize,
    pub anomalies: usize,
    pub orders: usize,
    /// Mean minutes from start to finish of the finished ones (none without any).
    pub mean_minutes: Option<f64>,
}

struct RoomInfo {
    name: String,
    zone: ZoneId,
}

/// The inspection service.
pub struct Inspections {
    records: Arc<dyn Records>,
    kind: RecordKind,
    /// A plan's last finished day (id `<room>|<template>`), so that the plans are rebuilt at
    /// start without reading every inspection ever made.
    lasts: RecordKind,
    by_started: IndexName,
    by_room: IndexName,
    all: IndexName,
    templates: Vec<Template>,
    registry: Arc<FleetRegistry>,
    workorders: Option<Arc<WorkOrders>>,
    clock: Arc<dyn Clock>,
    offset_minutes: i32,
    /// (room, template) → the day of its last finished inspection.
    last: Mutex<BTreeMap<(String, String), Date>>,
    seq: AtomicU64,
}

impl std::fmt::Debug for Inspections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspections")
            .field("templates", &self.templates.len())
            .finish()
    }
}

fn decode(r: &StoredRecord) -> Result<Inspection, InspectionError> {
    serde_json::from_slice(&r.body).map_err(|e| InspectionError::Corrupt(format!("{}: {e}", r.id)))
}

fn ms_key(t: Timestamp) -> String {
    format!("{:013}", t.as_millis().max(0))
}

impl Inspections {
    /// Starts on `records`, rebuilding the plans from the finished inspections.
    pub async fn start(
        records: Arc<dyn Records>,
        registry: Arc<FleetRegistry>,
        workorders: Option<Arc<WorkOrders>>,
        clock: Arc<dyn Clock>,
        offset_minutes: i32,
    ) -> Result<Self, InspectionError> {
        let me = Self {
            records,
            kind: RecordKind::new("inspection")?,
            lasts: RecordKind::new("inspection_last")?,
            by_started: IndexName::new("by_started")?,
            by_room: IndexName::new("by_room")?,
            all: IndexName::new("all")?,
            templates: builtin_templates()?,
            registry,
            workorders,
            clock,
            offset_minutes,
            last: Mutex::new(BTreeMap::new()),
            seq: AtomicU64::new(0),
        };
        let mut last = BTreeMap::new();
        for r in (me.records)
            .list_by_index(&me.lasts, &me.all, IndexRange::between("", "~"), usize::MAX)
            .await?
        {
            let day: Date = serde_json::from_slice(&r.body)
                .map_err(|e| InspectionError::Corrupt(format!("{}: {e}", r.id)))?;
            if let Some((room, template)) = r.id.as_str().split_once('|') {
                last.insert((room.to_owned(), template.to_owned()), day);
            }
        }
        let plans = last.len();
        if let Ok(mut g) = me.last.lock() {
            *g = last;
        }
        tracing::info!(plans_inspected = plans, "inspections started");
        Ok(me)
    }

    /// The node's clock now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The local time of the due dates (minutes east of UTC).
    pub fn offset_minutes(&self) -> i32 {
        self.offset_minutes
    }

    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    fn template(&self, id: &str) -> Result<&Template, InspectionError> {
        self.templates
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| InspectionError::UnknownTemplate(id.to_owned()))
    }

    fn today(&self) -> Date {
        Date::of(self.clock.now(), self.offset_minutes)
    }

    fn rooms(&self) -> BTreeMap<RoomId, RoomInfo> {
        let mut out = BTreeMap::new();
        self.registry.visit(|spec, _, _| {
            out.insert(
                spec.id.clone(),
                RoomInfo {
                    name: spec.name.clone(),
                    zone: spec.zone.clone(),
                },
            );
        });
        out
    }

    fn due(&self, room: &RoomId, t: &Template) -> (Option<Date>, Date) {
        let last = self
            .last
            .lock()
            .ok()
            .and_then(|g| g.get(&(room.to_string(), t.id.clone())).copied());
        let every = i32::try_from(t.every_days).unwrap_or(i32::MAX);
        (last, last.map_or(self.today(), |d| d.plus_days(every)))
    }

    /// Every room's plans (of `zone`, of `room`), overdue first then by due date.
    pub fn plans(&self, zone: Option<&str>, room: Option<&str>) -> Vec<PlanLine> {
        let today = self.today();
        let mut out = Vec::new();
        for (id, info) in self.rooms() {
            if zone.is_some_and(|z| info.zone.as_str() != z)
                || room.is_some_and(|r| id.as_str() != r)
            {
                continue;
            }
            for t in &self.templates {
                let (last, due) = self.due(&id, t);
                out.push(PlanLine {
                    room: id.clone(),
                    room_name: info.name.clone(),
                    zone: info.zone.clone(),
                    template: t.id.clone(),
                    every_days: t.every_days,
                    last,
                    due,
                    overdue: due < today,
                });
            }
        }
        out.sort_by(|a, b| {
            (!a.overdue, a.due, a.room.as_str(), a.template.as_str()).cmp(&(
                !b.overdue,
                b.due,
                b.room.as_str(),
                b.template.as_str(),
            ))
        });
        out
    }

    /// Coverage per zone (and overall, first): plans not past their due date over plans.
    pub fn coverage(&self) -> Vec<Coverage> {
        let mut per: BTreeMap<Option<ZoneId>, (usize, usize)> = BTreeMap::new();
        for p in self.plans(None, None) {
            for key in [None, Some(p.zone.clone())] {
                let e = per.entry(key).or_default();
                e.0 += 1;
                if p.overdue {
                    e.1 += 1;
                }
            }
        }
        per.into_iter()
            .map(|(zone, (plans, overdue))| Coverage {
                zone,
                plans,
                on_time: plans - overdue,
                overdue,
                ratio: if plans == 0 {
                    1.0
                } else {
                    (plans - overdue) as f64 / plans as f64
                },
            })
            .collect()
    }

    /// Starts an inspection of `room` from `template` by `inspector`.
    pub async fn start_inspection(
        &self,
        room: &RoomId,
        template: &str,
        inspector: &str,
    ) -> Result<Inspection, InspectionError> {
        let t = self.template(template)?.clone();
        let rooms = self.rooms();
        let info = rooms
            .get(room)
            .ok_or_else(|| InspectionError::UnknownRoom(room.to_string()))?;
        let now = self.clock.now();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) % 1000;
        let (_, due) = self.due(room, &t);
        let ins = Inspection {
            id: format!("INS-{}-{seq:03}", ms_key(now)),
            room: room.clone(),
            room_name: info.name.clone(),
            zone: info.zone.clone(),
            template: t.id.clone(),
            inspector: inspector.to_owned(),
            started_at: now,
            finished_at: None,
            due,
            on_time: None,
            items: (t.items.iter())
                .map(|i| ItemResult {
                    item: i.clone(),
                    status: None,
                    value: None,
                    note: String::new(),
                    photo: None,
                    at: None,
                    order: None,
                })
                .collect(),
        };
        self.put(&ins, None).await?;
        Ok(ins)
    }

    async fn put(
        &self,
        i: &Inspection,
        expected: Option<RecordVersion>,
    ) -> Result<RecordVersion, RecordsError> {
        let body = serde_json::to_vec(i)
            .map_err(|e| RecordsError::Invalid(format!("inspection does not encode: {e}")))?;
        let started = ms_key(i.started_at);
        self.records
            .put_record(RecordPut {
                kind: self.kind.clone(),
                id: RecordId::new(&i.id)?,
                expected,
                body,
                index: vec![
                    IndexEntry::new(&self.by_started, started.clone()),
                    IndexEntry::new(&self.by_room, format!("{}|{started}", i.room)),
                ],
            })
            .await
    }

    async fn read(&self, id: &str) -> Result<(Inspection, RecordVersion), InspectionError> {
        let rid = RecordId::new(id).map_err(|_| InspectionError::UnknownInspection(id.into()))?;
        match self.records.record(&self.kind, &rid).await? {
            Some(r) => Ok((decode(&r)?, r.version)),
            None => Err(InspectionError::UnknownInspection(id.to_owned())),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Inspection, InspectionError> {
        Ok(self.read(id).await?.0)
    }

    /// Reads, changes and writes back an inspection (again on a concurrent change).
    async fn update<F>(&self, id: &str, change: F) -> Result<Inspection, InspectionError>
    where
        F: Fn(&mut Inspection, Timestamp) -> Result<(), InspectionError>,
    {
        for _ in 0..8 {
            let (mut i, version) = self.read(id).await?;
            change(&mut i, self.clock.now())?;
            match self.put(&i, Some(version)).await {
                Ok(_) => return Ok(i),
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(InspectionError::Busy(id.to_owned()))
    }

    /// Records item `n`'s outcome (the inspector who started it, or `supervisor`).
    pub async fn record_item(
        &self,
        id: &str,
        n: usize,
        input: ItemInput,
        by: &str,
        supervisor: bool,
    ) -> Result<Inspection, InspectionError> {
        let note = input.note.clone().unwrap_or_default().trim().to_owned();
        if note.chars().count() > MAX_NOTE {
            return Err(InspectionError::Invalid(format!(
                "note: at most {MAX_NOTE} characters"
            )));
        }
        if input.value.is_some_and(|v| !v.is_finite()) {
            return Err(InspectionError::Invalid(
                "value must be a finite number".into(),
            ));
        }
        if let Some(p) = &input.photo {
            if p.len() > MAX_PHOTO_BYTES || !p.starts_with("data:image/") {
                return Err(InspectionError::Invalid(format!(
                    "photo: a data:image/ URL of at most {MAX_PHOTO_BYTES} bytes"
                )));
            }
        }
        self.update(id, |i, now| {
            if i.finished_at.is_some() {
                return Err(InspectionError::Finished(i.id.clone()));
            }
            if i.inspector != by && !supervisor {
                return Err(InspectionError::NotInspector(
                    i.id.clone(),
                    i.inspector.clone(),
                ));
            }
            let item = i
                .items
                .get_mut(n)
                .ok_or_else(|| InspectionError::UnknownItem(id.to_owned(), n))?;
            if item.item.kind == ItemKind::Reading && input.value.is_none() {
                return Err(InspectionError::Invalid(format!(
                    "item {n} needs the value read"
                )));
            }
            item.status = Some(input.status);
            item.value = input.value;
            item.note = note.clone();
            if input.photo.is_some() {
                item.photo = input.photo.clone();
            }
            item.at = Some(now);
            Ok(())
        })
        .await
    }

    /// Finishes an inspection once every item has its outcome.
    pub async fn finish(
        &self,
        id: &str,
        by: &str,
        supervisor: bool,
    ) -> Result<Inspection, InspectionError> {
        let offset = self.offset_minutes;
        let done = self
            .update(id, |i, now| {
                if i.finished_at.is_some() {
                    return Err(InspectionError::Finished(i.id.clone()));
                }
                if i.inspector != by && !supervisor {
                    return Err(InspectionError::NotInspector(
                        i.id.clone(),
                        i.inspector.clone(),
                    ));
                }
                if let Some(n) = i.items.iter().position(|x| x.status.is_none()) {
                    return Err(InspectionError::Invalid(format!(
                        "item {n} has no outcome yet"
                    )));
                }
                i.finished_at = Some(now);
                i.on_time = Some(Date::of(now, offset) <= i.due);
                Ok(())
            })
            .await?;
        if let Some(f) = done.finished_at {
            let day = Date::of(f, offset);
            self.save_last(&done.room, &done.template, day).await?;
            if let Ok(mut g) = self.last.lock() {
                let e = g
                    .entry((done.room.to_string(), done.template.clone()))
                    .or_insert(day);
                *e = (*e).max(day);
            }
        }
        Ok(done)
    }

    /// Keeps `day` as the plan's last finished day unless a later one is kept already.
    async fn save_last(
        &self,
        room: &RoomId,
        template: &str,
        day: Date,
    ) -> Result<(), InspectionError> {
        let key = format!("{room}|{template}");
        let id = RecordId::new(&key)?;
        for _ in 0..8 {
            let current = self.records.record(&self.lasts, &id).await?;
            let expected = match &current {
                Some(r) => {
                    let kept: Date = serde_json::from_slice(&r.body)
                        .map_err(|e| InspectionError::Corrupt(format!("{key}: {e}")))?;
                    if kept >= day {
                        return Ok(());
                    }
                    Some(r.version)
                }
                None => None,
            };
            let body = serde_json::to_vec(&day)
                .map_err(|e| InspectionError::Corrupt(format!("{key}: {e}")))?;
            let put = RecordPut {
                kind: self.lasts.clone(),
                id: id.clone(),
                expected,
                body,
                index: vec![IndexEntry::new(&self.all, key.clone())],
            };
            match self.records.put_record(put).await {
                Ok(_) => return Ok(()),
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(InspectionError::Busy(key))
    }

    /// Turns item `n`'s anomaly into a work order (the room's open `inspection_anomaly` order
    /// when it has one); the order's id is kept on the item.
    pub async fn raise_order(
        &self,
        id: &str,
        n: usize,
        by: &str,
    ) -> Result<(Inspection, String), InspectionError> {
        let w = self
            .workorders
            .as_ref()
            .ok_or(InspectionError::NoWorkOrders)?;
        let i = self.get(id).await?;
        let item = i
            .items
            .get(n)
            .ok_or_else(|| InspectionError::UnknownItem(id.to_owned(), n))?;
        if item.status != Some(ItemStatus::Anomaly) {
            return Err(InspectionError::Invalid(format!(
                "item {n} is not an anomaly"
            )));
        }
        if let Some(o) = &item.order {
            return Ok((i.clone(), o.clone()));
        }
        let value = item.value.map(|v| format!(" = {v}")).unwrap_or_default();
        let comment = format!(
            "{} #{}: {} / {}{value}. {}",
            i.id,
            n + 1,
            item.item.text_zh,
            item.item.text,
            item.note
        );
        let order = match w
            .create(
                NewOrder {
                    template: ORDER_TEMPLATE.to_owned(),
                    room: i.room.clone(),
                    priority: None,
                    assignee: None,
                    comment: Some(comment),
                },
                by,
            )
            .await?
        {
            Ok(o) => o.id.to_string(),
            Err(open) => open.to_string(),
        };
        let o = order.clone();
        let i = self
            .update(id, move |i, _| {
                if let Some(item) = i.items.get_mut(n) {
                    item.order = Some(o.clone());
                }
                Ok(())
            })
            .await?;
        Ok((i, order))
    }

    async fn between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Inspection>, InspectionError> {
        let range = IndexRange::between(ms_key(from), ms_key(to));
        (self.records)
            .list_by_index(&self.kind, &self.by_started, range, usize::MAX)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// A room's inspections, newest first (at most `limit`).
    pub async fn of_room(
        &self,
        room: &RoomId,
        limit: usize,
    ) -> Result<Vec<InspectionLine>, InspectionError> {
        let range = IndexRange::between(format!("{room}|"), format!("{room}|~"));
        let mut out: Vec<InspectionLine> = (self.records)
            .list_by_index(&self.kind, &self.by_room, range, usize::MAX)
            .await?
            .iter()
            .map(|r| decode(r).map(|i| InspectionLine::from(&i)))
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|b| std::cmp::Reverse(b.started_at));
        out.truncate(limit);
        Ok(out)
    }

    fn span(&self, from: Date, to: Date) -> (Timestamp, Timestamp) {
        (
            from.start(self.offset_minutes),
            Timestamp(to.plus_days(1).start(self.offset_minutes).as_millis() - 1),
        )
    }

    /// The inspections started from `from` to `to` (local days, inclusive), of `zone`.
    pub async fn report(
        &self,
        from: Date,
        to: Date,
        zone: Option<&str>,
    ) -> Result<PeriodReport, InspectionError> {
        let (a, b) = self.span(from, to);
        let list: Vec<Inspection> = self
            .between(a, b)
            .await?
            .into_iter()
            .filter(|i| zone.is_none_or(|z| i.zone.as_str() == z))
            .collect();
        let mut rows: Vec<InspectionLine> = list.iter().map(InspectionLine::from).collect();
        rows.sort_by_key(|y| std::cmp::Reverse(y.started_at));
        Ok(PeriodReport {
            from,
            to,
            inspections: list.len(),
            finished: list.iter().filter(|i| i.finished_at.is_some()).count(),
            on_time: list.iter().filter(|i| i.on_time == Some(true)).count(),
            anomalies: list.iter().map(Inspection::anomalies).sum(),
            orders: list.iter().flat_map(Inspection::orders).collect(),
            rows,
        })
    }

    /// Each inspector's figures over `from`–`to` (local days, inclusive), by name.
    pub async fn inspectors(
        &self,
        from: Date,
        to: Date,
    ) -> Result<Vec<InspectorFigures>, InspectionError> {
        let (a, b) = self.span(from, to);
        let mut per: BTreeMap<String, (InspectorFigures, f64)> = BTreeMap::new();
        for i in self.between(a, b).await? {
            let (f, minutes) = per.entry(i.inspector.clone()).or_insert_with(|| {
                (
                    InspectorFigures {
                        inspector: i.inspector.clone(),
                        started: 0,
                        finished: 0,
                        on_time: 0,
                        anomalies: 0,
                        orders: 0,
                        mean_minutes: None,
                    },
                    0.0,
                )
            });
            f.started += 1;
            f.anomalies += i.anomalies();
            f.orders += i.orders().len();
            if let Some(end) = i.finished_at {
                f.finished += 1;
                *minutes += (end.as_millis() - i.started_at.as_millis()).max(0) as f64 / 60_000.0;
            }
            if i.on_time == Some(true) {
                f.on_time += 1;
            }
        }
        Ok(per
            .into_values()
            .map(|(mut f, minutes)| {
                f.mean_minutes = (f.finished > 0).then(|| minutes / f.finished as f64);
                f
            })
            .collect())
    }
}
