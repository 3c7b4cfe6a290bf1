//! The archive service: projects and rooms' archives on the records port ([`super::store`]),
//! held whole in memory for reading (a 2,100-room archive is a few tens of MB), written one
//! room record at a time with optimistic versions.
//!
//! Every write is validated with [`RoomArchive::validate`] against the fleet's zones and the
//! projects known, plus the archive-wide rule that a non-empty (vendor, serial) pair names one
//! equipment; every problem comes back at once and nothing is written when there is one. A
//! write is audited with its author (taken or refused), published on [`Archive::subscribe`]
//! and put in force in the running fleet through the [`LiveFleet`] port (the node's registry):
//! a room added starts, a room changed runs with its new nameplate.
//!
//! Writes are serialised in this process (one writer lock); the versions keep two nodes from
//! losing each other's change (the loser gets [`ArchiveError::Conflict`]).

use super::model::{Document, Equipment, Known, Problem, Project, Retired, RoomArchive};
use super::store::{ArchiveStore, CHUNK_BYTES};
use super::ArchiveError;
use crate::auth::{AuditEntry, AuditLog};
use crate::store::records::{RecordVersion, Records, RecordsError};
use cistern_actors::Clock;
use cistern_schemas::inventory::{Inventory, RoomSpec};
use cistern_schemas::{EquipmentTag, ProjectId, RoomId, Timestamp, ZoneId};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use tokio::sync::{broadcast, Mutex, RwLock};

/// The default upload limit for a document or photo.
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;
/// The kinds a document may be filed as.
pub const DOCUMENT_KINDS: [&str; 5] = ["manual", "drawing", "certificate", "photo", "other"];

/// A room's archive changed (created, edited, imported): its id and its new archive.
#[derive(Debug, Clone)]
pub struct ArchiveChange {
    pub room: RoomId,
    pub archive: Arc<RoomArchive>,
}

/// The running fleet as the archive sees it (the node's registry implements it).
pub trait LiveFleet: Send + Sync + std::fmt::Debug {
    /// Puts `spec` in force: starts the room if it is not running, else updates its nameplate.
    /// An error says why the running room could not follow (it will at the next start).
    fn follow(&self, spec: RoomSpec) -> futures::future::BoxFuture<'_, Result<(), String>>;
}

/// What a batch ([`Archive::apply`]) carries: projects and whole rooms' archives.
#[derive(Debug, Clone, Default)]
pub struct ArchiveBatch {
    pub projects: Vec<Project>,
    pub rooms: Vec<RoomArchive>,
}

/// One problem of a batch: the project or room it is about and what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchProblem {
    pub project: Option<ProjectId>,
    pub room: Option<RoomId>,
    pub problem: Problem,
}

/// What a batch did (or, dry, would do); `problems` non-empty: nothing was written.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApplyReport {
    pub created_projects: usize,
    pub updated_projects: usize,
    pub created_rooms: usize,
    pub updated_rooms: usize,
    pub unchanged_rooms: usize,
    pub retired_equipment: usize,
    pub problems: Vec<BatchProblem>,
}

/// A document or photo checked and ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentUpload {
    pub name: String,
    pub kind: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// By the first bytes: the content types a document may have.
pub fn sniff_document(bytes: &[u8]) -> Option<&'static str> {
    use crate::business::workorders::attachments::ImageType;
    if let Some(t) = ImageType::sniff(bytes) {
        return Some(t.content_type());
    }
    bytes.starts_with(b"%PDF-").then_some("application/pdf")
}

impl DocumentUpload {
    /// Checks `bytes` (size; a PDF, JPEG, PNG or WebP by content, whatever the name says) and
    /// tidies `name` (no path, no control characters).
    pub fn check(
        bytes: Vec<u8>,
        name: Option<&str>,
        kind: &str,
        max: u64,
    ) -> Result<Self, ArchiveError> {
        let size = bytes.len() as u64;
        if size > max {
            return Err(ArchiveError::TooLarge { size, max });
        }
        if bytes.is_empty() {
            return Err(ArchiveError::EmptyDocument);
        }
        if !DOCUMENT_KINDS.contains(&kind) {
            return Err(ArchiveError::Invalid(vec![Problem::new(
                "kind",
                "document_kind",
                kind,
            )]));
        }
        let content_type = sniff_document(&bytes).ok_or(ArchiveError::NotADocument)?;
        let name = crate::business::workorders::attachments::display_name(name, || {
            format!(
                "{kind}.{}",
                content_type.rsplit('/').next().unwrap_or("bin")
            )
        });
        Ok(Self {
            name,
            kind: kind.to_owned(),
            content_type,
            bytes,
        })
    }
}

#[derive(Debug, Default)]
struct State {
    projects: BTreeMap<ProjectId, (Project, RecordVersion)>,
    rooms: BTreeMap<RoomId, (Arc<RoomArchive>, RecordVersion)>,
}

/// The archive (see the module doc).
#[derive(Debug)]
pub struct Archive {
    store: ArchiveStore,
    state: RwLock<State>,
    writer: Mutex<()>,
    zones: HashSet<ZoneId>,
    clock: Arc<dyn Clock>,
    audit: Arc<AuditLog>,
    changes: broadcast::Sender<ArchiveChange>,
    fleet: OnceLock<Arc<dyn LiveFleet>>,
    max_document_bytes: u64,
}

/// The key a serial is unique under: the vendor (trimmed, case-folded) and the serial.
fn serial_key(e: &Equipment) -> Option<(String, String)> {
    let serial = e.serial.trim();
    (!serial.is_empty()).then(|| (e.vendor.trim().to_lowercase(), serial.to_owned()))
}

/// The serials of `rooms`: key → (room, tag).
fn serials<'a>(
    rooms: impl Iterator<Item = &'a RoomArchive>,
) -> HashMap<(String, String), (RoomId, EquipmentTag)> {
    let mut out = HashMap::new();
    for r in rooms {
        for e in &r.equipment {
            if let Some(k) = serial_key(e) {
                out.entry(k).or_insert((r.site.id.clone(), e.tag.clone()));
            }
        }
    }
    out
}

/// The duplicate-serial problems of `room` against `taken` (and within itself); adds its own.
fn serial_problems(
    room: &RoomArchive,
    taken: &mut HashMap<(String, String), (RoomId, EquipmentTag)>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, e) in room.equipment.iter().enumerate() {
        let Some(k) = serial_key(e) else { continue };
        match taken.get(&k) {
            Some((r, t)) if r != &room.site.id || t != &e.tag => out.push(Problem::new(
                format!("equipment[{i}].serial"),
                "duplicate",
                format!("{} ({r}/{t})", e.serial),
            )),
            Some(_) => {}
            None => {
                taken.insert(k, (room.site.id.clone(), e.tag.clone()));
            }
        }
    }
    out
}

/// `new` as it is stored over `old`: equipment matched by tag — a changed serial retires the
/// old one (`replaced`), a tag no longer there retires it (`removed`); documents kept when the
/// new entry has none (a spreadsheet carries none); the retired history kept and extended.
/// Returns the merged archive and how many equipment it retired.
pub fn merge(
    old: Option<&RoomArchive>,
    mut new: RoomArchive,
    at: Timestamp,
    by: &str,
) -> (RoomArchive, usize) {
    let Some(old) = old else {
        return (new, 0);
    };
    let mut retired = old.retired.clone();
    let before = retired.len();
    let retire = |retired: &mut Vec<Retired>, e: &Equipment, reason: &str| {
        retired.push(Retired {
            equipment: e.clone(),
            at,
            by: by.to_owned(),
            reason: reason.to_owned(),
        })
    };
    for e in &mut new.equipment {
        if let Some(o) = old.equipment(&e.tag) {
            if o.serial.trim() != e.serial.trim() && !o.serial.trim().is_empty() {
                retire(&mut retired, o, "replaced");
            } else if e.documents.is_empty() {
                e.documents = o.documents.clone();
            }
        }
    }
    for o in &old.equipment {
        if new.equipment(&o.tag).is_none() {
            retire(&mut retired, o, "removed");
        }
    }
    if new.documents.is_empty() {
        new.documents = old.documents.clone();
    }
    let count = retired.len() - before;
    new.retired = retired;
    (new, count)
}

/// The next free document id of a room (`D1`, `D2`, …), over its room, equipment and retired
/// equipment.
fn next_document_id(room: &RoomArchive) -> String {
    let all = (room.documents.iter())
        .chain(room.equipment.iter().flat_map(|e| e.documents.iter()))
        .chain(
            room.retired
                .iter()
                .flat_map(|r| r.equipment.documents.iter()),
        );
    let max = all
        .filter_map(|d| d.id.strip_prefix('D').and_then(|n| n.parse::<u32>().ok()))
        .max()
        .unwrap_or(0);
    format!("D{}", max + 1)
}

/// Every document of a room, wherever it is filed.
fn find_document<'a>(room: &'a RoomArchive, id: &str) -> Option<&'a Document> {
    (room.documents.iter())
        .chain(room.equipment.iter().flat_map(|e| e.documents.iter()))
        .chain(
            room.retired
                .iter()
                .flat_map(|r| r.equipment.documents.iter()),
        )
        .find(|d| d.id == id)
}

fn conflict(e: RecordsError) -> ArchiveError {
    match e {
        RecordsError::Conflict { kind, id, .. } => ArchiveError::Conflict(format!("{kind}/{id}")),
        e => ArchiveError::Records(e),
    }
}

impl Archive {
    /// Loads the archive; when it is empty, seeds it with `seed` (the demo's generated archive)
    /// or else with the inventory's rooms ([`RoomArchive::from_spec`]).
    pub async fn start(
        records: Arc<dyn Records>,
        inventory: &Inventory,
        clock: Arc<dyn Clock>,
        audit: Arc<AuditLog>,
        seed: Option<(Vec<Project>, Vec<RoomArchive>)>,
    ) -> Result<Self, ArchiveError> {
        let store = ArchiveStore::new(records)?;
        let mut state = State::default();
        for (p, v) in store.projects().await? {
            state.projects.insert(p.id.clone(), (p, v));
        }
        for (r, v) in store.rooms().await? {
            state.rooms.insert(r.site.id.clone(), (Arc::new(r), v));
        }
        let zones = inventory.zones.iter().map(|z| z.id.clone()).collect();
        let (changes, _) = broadcast::channel(256);
        let archive = Self {
            store,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            zones,
            clock,
            audit,
            changes,
            fleet: OnceLock::new(),
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
        };
        let empty = {
            let s = archive.state.read().await;
            s.rooms.is_empty() && s.projects.is_empty()
        };
        if empty && !inventory.rooms.is_empty() {
            let (projects, rooms) = seed.unwrap_or_else(|| {
                (
                    Vec::new(),
                    inventory.rooms.iter().map(RoomArchive::from_spec).collect(),
                )
            });
            let report = archive
                .apply(
                    ArchiveBatch { projects, rooms },
                    "system",
                    false,
                    &|_, _| {},
                )
                .await?;
            if !report.problems.is_empty() {
                for p in report.problems.iter().take(20) {
                    tracing::error!(room = ?p.room, project = ?p.project, problem = %p.problem, "the archive's seed is refused");
                }
                return Err(ArchiveError::Invalid(
                    report.problems.into_iter().map(|p| p.problem).collect(),
                ));
            }
            tracing::info!(
                rooms = report.created_rooms,
                projects = report.created_projects,
                "the archive was empty: seeded"
            );
        } else {
            // The inventory stays a way to add rooms: those the archive does not hold yet.
            let missing: Vec<RoomArchive> = {
                let s = archive.state.read().await;
                (inventory.rooms.iter())
                    .filter(|r| !s.rooms.contains_key(&r.id))
                    .map(RoomArchive::from_spec)
                    .collect()
            };
            if !missing.is_empty() {
                let batch = ArchiveBatch {
                    projects: Vec::new(),
                    rooms: missing,
                };
                let report = archive.apply(batch, "system", false, &|_, _| {}).await?;
                for p in report.problems.iter().take(20) {
                    tracing::error!(room = ?p.room, problem = %p.problem, "an inventory room is not added to the archive");
                }
                tracing::info!(
                    rooms = report.created_rooms,
                    "rooms of the inventory added to the archive"
                );
            }
        }
        Ok(archive)
    }

    /// Where changes go in the running fleet (set once, by the node).
    pub fn set_fleet(&self, fleet: Arc<dyn LiveFleet>) {
        if self.fleet.set(fleet).is_err() {
            tracing::warn!("the archive already follows a fleet");
        }
    }

    /// Every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ArchiveChange> {
        self.changes.subscribe()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The fleet's zones (what a room's zone must be).
    pub fn zones(&self) -> &HashSet<ZoneId> {
        &self.zones
    }

    /// The live rooms the archive describes, in id order.
    pub async fn room_specs(&self) -> Vec<RoomSpec> {
        let s = self.state.read().await;
        s.rooms.values().map(|(r, _)| r.spec()).collect()
    }

    pub async fn projects(&self) -> Vec<Project> {
        let s = self.state.read().await;
        s.projects.values().map(|(p, _)| p.clone()).collect()
    }

    pub async fn project(&self, id: &ProjectId) -> Option<Project> {
        self.state
            .read()
            .await
            .projects
            .get(id)
            .map(|(p, _)| p.clone())
    }

    pub async fn rooms(&self) -> Vec<Arc<RoomArchive>> {
        let s = self.state.read().await;
        s.rooms.values().map(|(r, _)| r.clone()).collect()
    }

    pub async fn room(&self, id: &RoomId) -> Option<Arc<RoomArchive>> {
        self.state
            .read()
            .await
            .rooms
            .get(id)
            .map(|(r, _)| r.clone())
    }

    fn record(&self, author: &str, action: &str, target: &str, detail: String, ok: bool) {
        self.audit
            .record(AuditEntry::now(author, action, target, detail, ok));
    }

    fn audited<T>(
        &self,
        author: &str,
        action: &str,
        target: &str,
        result: Result<T, ArchiveError>,
        done: impl FnOnce(&T) -> String,
    ) -> Result<T, ArchiveError> {
        let (detail, ok) = match &result {
            Ok(v) => (done(v), true),
            Err(e) => (format!("refused: {e}"), false),
        };
        self.record(author, action, target, detail, ok);
        result
    }

    async fn publish(&self, archive: &Arc<RoomArchive>) -> Option<String> {
        let _ = self.changes.send(ArchiveChange {
            room: archive.site.id.clone(),
            archive: archive.clone(),
        });
        let fleet = self.fleet.get()?;
        match fleet.follow(archive.spec()).await {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(room = %archive.site.id, error = %e, "the running room does not follow its archive yet");
                Some(e)
            }
        }
    }

    // ---- Projects.

    pub async fn create_project(&self, p: Project, author: &str) -> Result<Project, ArchiveError> {
        let target = p.id.to_string();
        let result = self.put_project(p, author, true).await;
        self.audited(author, "asset_project_create", &target, result, |p| {
            format!("project {}", p.name)
        })
    }

    pub async fn update_project(&self, p: Project, author: &str) -> Result<Project, ArchiveError> {
        let target = p.id.to_string();
        let result = self.put_project(p, author, false).await;
        self.audited(author, "asset_project_update", &target, result, |p| {
            format!("project {}", p.name)
        })
    }

    async fn put_project(
        &self,
        p: Project,
        _author: &str,
        create: bool,
    ) -> Result<Project, ArchiveError> {
        let _w = self.writer.lock().await;
        let problems = p.validate();
        if !problems.is_empty() {
            return Err(ArchiveError::Invalid(problems));
        }
        let expected = self.state.read().await.projects.get(&p.id).map(|(_, v)| *v);
        match (create, expected) {
            (true, Some(_)) => return Err(ArchiveError::ProjectExists(p.id)),
            (false, None) => return Err(ArchiveError::UnknownProject(p.id)),
            _ => {}
        }
        let v = self
            .store
            .put_project(&p, expected)
            .await
            .map_err(conflict)?;
        self.state
            .write()
            .await
            .projects
            .insert(p.id.clone(), (p.clone(), v));
        Ok(p)
    }

    /// Deletes a project no room belongs to.
    pub async fn delete_project(&self, id: &ProjectId, author: &str) -> Result<(), ArchiveError> {
        let result = async {
            let _w = self.writer.lock().await;
            let (version, rooms) = {
                let s = self.state.read().await;
                let v = (s.projects.get(id).map(|(_, v)| *v))
                    .ok_or_else(|| ArchiveError::UnknownProject(id.clone()))?;
                let n = (s.rooms.values())
                    .filter(|(r, _)| r.project.as_ref() == Some(id))
                    .count();
                (v, n)
            };
            if rooms > 0 {
                return Err(ArchiveError::Invalid(vec![Problem::new(
                    "project", "in_use", rooms,
                )]));
            }
            self.store
                .delete_project(id, version)
                .await
                .map_err(conflict)?;
            self.state.write().await.projects.remove(id);
            Ok(())
        }
        .await;
        self.audited(author, "asset_project_delete", id.as_str(), result, |_| {
            String::new()
        })
    }

    // ---- Rooms.

    /// Changes one room with `f` (or creates it, when `f` is given `None` and returns one),
    /// validates, writes, publishes. The audit entry is `action` on `target`.
    async fn modify_room(
        &self,
        room: &RoomId,
        author: &str,
        action: &str,
        target: &str,
        f: impl FnOnce(Option<&RoomArchive>, Timestamp) -> Result<RoomArchive, ArchiveError>,
    ) -> Result<(Arc<RoomArchive>, Option<String>), ArchiveError> {
        let result = async {
            let _w = self.writer.lock().await;
            let now = self.clock.now();
            let (old, version, problems, new) = {
                let s = self.state.read().await;
                let (old, version) = match s.rooms.get(room) {
                    Some((r, v)) => (Some(r.clone()), Some(*v)),
                    None => (None, None),
                };
                let new = f(old.as_deref(), now)?;
                if &new.site.id != room {
                    return Err(ArchiveError::Invalid(vec![Problem::new(
                        "id",
                        "mismatch",
                        &new.site.id,
                    )]));
                }
                let projects: HashSet<ProjectId> = s.projects.keys().cloned().collect();
                let mut problems = new.validate(Known {
                    zones: &self.zones,
                    projects: &projects,
                });
                let mut taken = serials(
                    (s.rooms.iter())
                        .filter(|(id, _)| *id != room)
                        .map(|(_, (r, _))| &**r),
                );
                problems.extend(serial_problems(&new, &mut taken));
                (old, version, problems, new)
            };
            if !problems.is_empty() {
                return Err(ArchiveError::Invalid(problems));
            }
            if old.as_deref() == Some(&new) {
                return Ok((old.unwrap_or_else(|| Arc::new(new)), None));
            }
            let v = self.store.put_room(&new, version).await.map_err(conflict)?;
            let new = Arc::new(new);
            self.state
                .write()
                .await
                .rooms
                .insert(room.clone(), (new.clone(), v));
            let live = self.publish(&new).await;
            Ok((new, live))
        }
        .await;
        self.audited(author, action, target, result, |(r, _)| {
            format!("{} equipment", r.equipment.len())
        })
    }

    /// Creates a room or replaces its archive (site data and equipment; equipment matched by
    /// tag as in [`merge`]). Returns the stored archive and, when the running room could not
    /// follow, why.
    pub async fn put_room(
        &self,
        archive: RoomArchive,
        author: &str,
    ) -> Result<(Arc<RoomArchive>, Option<String>), ArchiveError> {
        let id = archive.site.id.clone();
        self.modify_room(&id, author, "asset_room_put", id.as_str(), |old, now| {
            Ok(merge(old, archive, now, author).0)
        })
        .await
    }

    fn existing(old: Option<&RoomArchive>, room: &RoomId) -> Result<RoomArchive, ArchiveError> {
        old.cloned()
            .ok_or_else(|| ArchiveError::UnknownRoom(room.clone()))
    }

    /// Adds an equipment to a room (its tag new in the room).
    pub async fn add_equipment(
        &self,
        room: &RoomId,
        e: Equipment,
        author: &str,
    ) -> Result<(Arc<RoomArchive>, Option<String>), ArchiveError> {
        let target = format!("{room}/{}", e.tag);
        self.modify_room(room, author, "asset_equipment_add", &target, |old, _| {
            let mut r = Self::existing(old, room)?;
            if r.equipment(&e.tag).is_some() {
                return Err(ArchiveError::Invalid(vec![Problem::new(
                    "tag",
                    "duplicate",
                    &e.tag,
                )]));
            }
            r.equipment.push(e);
            Ok(r)
        })
        .await
    }

    fn position(r: &RoomArchive, room: &RoomId, tag: &EquipmentTag) -> Result<usize, ArchiveError> {
        (r.equipment.iter().position(|x| &x.tag == tag)).ok_or_else(|| {
            ArchiveError::UnknownEquipment {
                room: room.clone(),
                tag: tag.clone(),
            }
        })
    }

    /// Corrects an equipment's data (the same unit: no history entry).
    pub async fn edit_equipment(
        &self,
        room: &RoomId,
        tag: &EquipmentTag,
        mut e: Equipment,
        author: &str,
    ) -> Result<(Arc<RoomArchive>, Option<String>), ArchiveError> {
        let target = format!("{room}/{tag}");
        self.modify_room(room, author, "asset_equipment_edit", &target, |old, _| {
            let mut r = Self::existing(old, room)?;
            let i = Self::position(&r, room, tag)?;
            e.tag = tag.clone();
            if e.documents.is_empty() {
                e.documents = r.equipment[i].documents.clone();
            }
            r.equipment[i] = e;
            Ok(r)
        })
        .await
    }

    /// Replaces an equipment by a new unit under the same tag; the old one is retired
    /// (`replaced`, now, by `author`).
    pub async fn replace_equipment(
        &self,
        room: &RoomId,
        tag: &EquipmentTag,
        mut e: Equipment,
        author: &str,
    ) -> Result<(Arc<RoomArchive>, Option<String>), ArchiveError> {
        let target = format!("{room}/{tag}");
        self.modify_room(
            room,
            author,
            "asset_equipment_replace",
            &target,
            |old, now| {
                let mut r = Self::existing(old, room)?;
                let i = Self::position(&r, room, tag)?;
                e.tag = tag.clone();
                let gone = std::mem::replace(&mut r.equipment[i], e);
                r.retired.push(Retired {
                    equipment: gone,
                    at: now,
                    by: author.to_owned(),
                    reason: "replaced".into(),
                });
                Ok(r)
            },
        )
        .await
    }

    /// Takes an equipment out of service (retired, `removed`).
    pub async fn remove_equipment(
        &self,
        room: &RoomId,
        tag: &EquipmentTag,
        author: &str,
    ) -> Result<(Arc<RoomArchive>, Option<String>), ArchiveError> {
        let target = format!("{room}/{tag}");
        self.modify_room(
            room,
            author,
            "asset_equipment_remove",
            &target,
            |old, now| {
                let mut r = Self::existing(old, room)?;
                let i = Self::position(&r, room, tag)?;
                let gone = r.equipment.remove(i);
                r.retired.push(Retired {
                    equipment: gone,
                    at: now,
                    by: author.to_owned(),
                    reason: "removed".into(),
                });
                Ok(r)
            },
        )
        .await
    }

    /// The upload limit for documents.
    pub fn max_document_bytes(&self) -> u64 {
        self.max_document_bytes
    }

    /// Stores a document or photo of a room (`tag` none) or of one of its equipment, and lists
    /// it there. The bytes are written first; a refused listing deletes them.
    pub async fn attach_document(
        &self,
        room: &RoomId,
        tag: Option<&EquipmentTag>,
        upload: DocumentUpload,
        author: &str,
    ) -> Result<Document, ArchiveError> {
        let target = match tag {
            Some(t) => format!("{room}/{t}"),
            None => room.to_string(),
        };
        let result = async {
            let current = self
                .room(room)
                .await
                .ok_or_else(|| ArchiveError::UnknownRoom(room.clone()))?;
            if let Some(t) = tag {
                Self::position(&current, room, t)?;
            }
            // Writes are serialised: the id is free until this write lists it, and a crashed
            // upload's orphan chunks are overwritten only if never listed (put refuses them).
            let mut id = next_document_id(&current);
            let mut n = 0;
            while let Err(e) = self.store.write_document(room, &id, &upload.bytes).await {
                n += 1;
                if n > 8 {
                    return Err(e);
                }
                id = format!("{id}x");
            }
            let doc = Document {
                id: id.clone(),
                name: upload.name.clone(),
                kind: upload.kind.clone(),
                content_type: upload.content_type.to_owned(),
                bytes: upload.bytes.len() as u64,
                added_at: self.clock.now(),
                added_by: author.to_owned(),
            };
            let listed = self
                .modify_room(room, author, "asset_document_attach", &target, |old, _| {
                    let mut r = Self::existing(old, room)?;
                    match tag {
                        Some(t) => {
                            let i = Self::position(&r, room, t)?;
                            r.equipment[i].documents.push(doc.clone());
                        }
                        None => r.documents.push(doc.clone()),
                    }
                    Ok(r)
                })
                .await;
            if let Err(e) = listed {
                self.store
                    .remove_document(room, &id, upload.bytes.len().div_ceil(CHUNK_BYTES))
                    .await;
                return Err(e);
            }
            Ok(doc)
        }
        .await;
        match result {
            Ok(d) => Ok(d),
            Err(e) => {
                if !matches!(e, ArchiveError::Invalid(_)) {
                    self.record(
                        author,
                        "asset_document_attach",
                        &target,
                        format!("refused: {e}"),
                        false,
                    );
                }
                Err(e)
            }
        }
    }

    /// A document's listing and bytes.
    pub async fn document(
        &self,
        room: &RoomId,
        id: &str,
    ) -> Result<(Document, Vec<u8>), ArchiveError> {
        let r = self
            .room(room)
            .await
            .ok_or_else(|| ArchiveError::UnknownRoom(room.clone()))?;
        let doc = find_document(&r, id)
            .cloned()
            .ok_or_else(|| ArchiveError::UnknownDocument(id.to_owned()))?;
        let bytes = self.store.read_document(room, id, doc.bytes).await?;
        Ok((doc, bytes))
    }

    // ---- Batches.

    /// Validates a whole batch, then (unless `dry_run`, and only when nothing is wrong) writes
    /// it: projects, then rooms (calling `progress(done, total)`), then the live fleet. See
    /// the module doc of [`super`] and [`merge`] for what "unchanged" and "retired" mean.
    pub async fn apply(
        &self,
        batch: ArchiveBatch,
        author: &str,
        dry_run: bool,
        progress: &(dyn Fn(usize, usize) + Send + Sync),
    ) -> Result<ApplyReport, ArchiveError> {
        let _w = self.writer.lock().await;
        let now = self.clock.now();
        let mut report = ApplyReport::default();
        let (projects, rooms) = {
            let s = self.state.read().await;
            // Projects.
            let mut seen = HashSet::new();
            let mut projects = Vec::new();
            for p in batch.projects {
                let at = |problem: Problem| BatchProblem {
                    project: Some(p.id.clone()),
                    room: None,
                    problem,
                };
                let mut problems: Vec<BatchProblem> = p.validate().into_iter().map(at).collect();
                if !seen.insert(p.id.clone()) {
                    problems.push(at(Problem::new("id", "duplicate", &p.id)));
                }
                report.problems.extend(problems);
                match s.projects.get(&p.id) {
                    Some((old, _)) if old == &p => {}
                    Some((_, v)) => {
                        report.updated_projects += 1;
                        projects.push((p, Some(*v)));
                    }
                    None => {
                        report.created_projects += 1;
                        projects.push((p, None));
                    }
                }
            }
            let known_projects: HashSet<ProjectId> =
                s.projects.keys().cloned().chain(seen).collect();
            let known = Known {
                zones: &self.zones,
                projects: &known_projects,
            };
            // Rooms.
            let batch_ids: HashSet<RoomId> =
                batch.rooms.iter().map(|r| r.site.id.clone()).collect();
            let mut taken = serials(
                (s.rooms.iter())
                    .filter(|(id, _)| !batch_ids.contains(*id))
                    .map(|(_, (r, _))| &**r),
            );
            let mut seen = HashSet::new();
            let mut rooms = Vec::new();
            for r in batch.rooms {
                let id = r.site.id.clone();
                let mut problems = r.validate(known);
                if !seen.insert(id.clone()) {
                    problems.push(Problem::new("id", "duplicate", &id));
                }
                problems.extend(serial_problems(&r, &mut taken));
                report
                    .problems
                    .extend(problems.into_iter().map(|problem| BatchProblem {
                        project: None,
                        room: Some(id.clone()),
                        problem,
                    }));
                if !report.problems.is_empty() {
                    continue;
                }
                let old = s.rooms.get(&id);
                let (merged, retired) = merge(old.map(|(a, _)| &**a), r, now, author);
                match old {
                    Some((a, _)) if **a == merged => report.unchanged_rooms += 1,
                    Some((_, v)) => {
                        report.updated_rooms += 1;
                        report.retired_equipment += retired;
                        rooms.push((merged, Some(*v)));
                    }
                    None => {
                        report.created_rooms += 1;
                        rooms.push((merged, None));
                    }
                }
            }
            (projects, rooms)
        };
        if !report.problems.is_empty() {
            report.created_projects = 0;
            report.updated_projects = 0;
            report.created_rooms = 0;
            report.updated_rooms = 0;
            report.unchanged_rooms = 0;
            report.retired_equipment = 0;
            return Ok(report);
        }
        if dry_run {
            return Ok(report);
        }
        for (p, v) in projects {
            let nv = self.store.put_project(&p, v).await.map_err(conflict)?;
            self.state
                .write()
                .await
                .projects
                .insert(p.id.clone(), (p, nv));
        }
        let total = rooms.len();
        progress(0, total);
        let mut written = Vec::with_capacity(total);
        for (i, (r, v)) in rooms.into_iter().enumerate() {
            let nv = self.store.put_room(&r, v).await.map_err(conflict)?;
            let r = Arc::new(r);
            self.state
                .write()
                .await
                .rooms
                .insert(r.site.id.clone(), (r.clone(), nv));
            written.push(r);
            progress(i + 1, total);
        }
        // The running fleet follows, a few rooms at a time (each is one actor round trip).
        futures::stream::iter(written.iter())
            .for_each_concurrent(32, |r| async move {
                self.publish(r).await;
            })
            .await;
        self.record(
            author,
            "asset_import",
            "archive",
            format!(
                "projects +{} ~{}; rooms +{} ~{} ={}; retired {}",
                report.created_projects,
                report.updated_projects,
                report.created_rooms,
                report.updated_rooms,
                report.unchanged_rooms,
                report.retired_equipment
            ),
            true,
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::assets::archive::demo_archive;
    use crate::store::embedded::EmbeddedStore;
    use cistern_actors::SystemClock;

    struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn records(name: &str) -> (Scratch, Arc<dyn Records>) {
        let d = std::env::temp_dir().join(format!("cistern-archive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let s: Arc<dyn Records> = Arc::new(EmbeddedStore::open(&d).unwrap());
        (Scratch(d), s)
    }

    async fn archive(records: Arc<dyn Records>, inv: &Inventory) -> Archive {
        Archive::start(
            records,
            inv,
            Arc::new(SystemClock),
            Arc::new(AuditLog::new()),
            None,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn an_empty_archive_is_seeded_from_the_inventory_and_kept() {
        let (_d, rec) = records("seed");
        let inv = crate::lab::sim::generate_fleet(12, 3);
        let a = archive(rec.clone(), &inv).await;
        assert_eq!(a.room_specs().await, inv.rooms);
        // The archive is the truth from now on: a second start does not reseed…
        let mut other = inv.clone();
        other.rooms.truncate(2);
        other.rooms[0].households = 1;
        let again = archive(rec.clone(), &other).await;
        assert_eq!(again.rooms().await.len(), 12);
        assert_eq!(again.room_specs().await[0], inv.rooms[0]);
        // …but rooms the inventory gains are added.
        let bigger = crate::lab::sim::generate_fleet(14, 3);
        let grown = archive(rec, &bigger).await;
        assert_eq!(grown.rooms().await.len(), 14);
    }

    #[tokio::test]
    async fn a_batch_is_all_or_nothing_and_idempotent() {
        let (_d, rec) = records("batch");
        let inv = crate::lab::sim::generate_fleet(30, 5);
        let a = archive(rec.clone(), &inv).await;
        let (projects, rooms) = demo_archive(&inv);
        let before = a.rooms().await;
        // One bad room (an unknown zone) and a serial used twice: nothing is written.
        let mut bad = rooms.clone();
        bad[3].site.zone = ZoneId::new("atlantis").unwrap();
        let dup = bad[0].equipment[0].clone();
        bad[1].equipment[0].vendor = dup.vendor.clone();
        bad[1].equipment[0].serial = dup.serial.clone();
        let report = a
            .apply(
                ArchiveBatch {
                    projects: projects.clone(),
                    rooms: bad,
                },
                "tester",
                false,
                &|_, _| {},
            )
            .await
            .unwrap();
        let fields: Vec<(Option<RoomId>, String, String)> = (report.problems.iter())
            .map(|p| {
                (
                    p.room.clone(),
                    p.problem.field.clone(),
                    p.problem.code.clone(),
                )
            })
            .collect();
        assert!(
            fields.contains(&(
                Some(rooms[3].site.id.clone()),
                "zone".into(),
                "unknown_zone".into()
            )),
            "{fields:?}"
        );
        assert!(
            fields.contains(&(
                Some(rooms[1].site.id.clone()),
                "equipment[0].serial".into(),
                "duplicate".into()
            )),
            "{fields:?}"
        );
        assert_eq!(report.created_rooms + report.updated_rooms, 0);
        assert_eq!(a.rooms().await, before);
        assert!(a.projects().await.is_empty());
        // A dry run writes nothing either, but counts.
        let batch = ArchiveBatch {
            projects: projects.clone(),
            rooms: rooms.clone(),
        };
        let dry = a
            .apply(batch.clone(), "tester", true, &|_, _| {})
            .await
            .unwrap();
        assert_eq!(
            (dry.updated_rooms, dry.created_projects),
            (30, projects.len())
        );
        assert_eq!(a.rooms().await, before);
        // Applied: every room updated, with progress; then again: all unchanged.
        let seen = std::sync::Mutex::new(Vec::new());
        let first = a
            .apply(batch.clone(), "tester", false, &|d, t| {
                seen.lock().unwrap().push((d, t))
            })
            .await
            .unwrap();
        assert!(first.problems.is_empty(), "{:?}", first.problems);
        assert_eq!(first.updated_rooms, 30);
        assert_eq!(seen.lock().unwrap().last(), Some(&(30, 30)));
        let second = a.apply(batch, "tester", false, &|_, _| {}).await.unwrap();
        assert_eq!(
            (
                second.unchanged_rooms,
                second.updated_rooms,
                second.created_rooms,
                second.updated_projects,
                second.created_projects
            ),
            (30, 0, 0, 0, 0)
        );
        // A batch of two rooms leaves the others alone; a tag left out is retired as removed.
        let mut two = vec![rooms[0].clone(), rooms[1].clone()];
        let gone = two[0].equipment.pop().unwrap();
        let part = a
            .apply(
                ArchiveBatch {
                    projects: Vec::new(),
                    rooms: two,
                },
                "tester",
                false,
                &|_, _| {},
            )
            .await
            .unwrap();
        assert_eq!(
            (
                part.updated_rooms,
                part.unchanged_rooms,
                part.retired_equipment
            ),
            (1, 1, 1)
        );
        let r0 = a.room(&rooms[0].site.id).await.unwrap();
        let last = r0.retired.last().unwrap();
        assert_eq!(
            (last.equipment.tag.clone(), last.reason.as_str()),
            (gone.tag, "removed")
        );
        assert_eq!(a.rooms().await.len(), 30);
        assert_eq!(*a.room(&rooms[2].site.id).await.unwrap(), rooms[2]);
        // The records hold it whole after a restart.
        let restarted = archive(rec, &inv).await;
        assert_eq!(restarted.rooms().await, a.rooms().await);
        assert_eq!(restarted.projects().await.len(), projects.len());
    }

    #[tokio::test]
    async fn a_replaced_equipment_is_retired_and_a_refused_write_changes_nothing() {
        let (_d, rec) = records("replace");
        let inv = crate::lab::sim::generate_fleet(6, 9);
        let a = archive(rec, &inv).await;
        let (projects, rooms) = demo_archive(&inv);
        a.apply(ArchiveBatch { projects, rooms }, "t", false, &|_, _| {})
            .await
            .unwrap();
        let room = inv.rooms[0].id.clone();
        let tag = EquipmentTag::new("P1").unwrap();
        let old = a.room(&room).await.unwrap();
        let mut new = old.equipment(&tag).unwrap().clone();
        new.serial = "NEW-0001".into();
        new.nameplate.rated_power_kw = Some(18.5);
        let (after, _) = a
            .replace_equipment(&room, &tag, new, "alice")
            .await
            .unwrap();
        assert_eq!(after.spec().pumps[0].rated_power_kw, 18.5);
        let r = after.retired.last().unwrap();
        assert_eq!((r.reason.as_str(), r.by.as_str()), ("replaced", "alice"));
        assert_eq!(r.equipment.serial, old.equipment(&tag).unwrap().serial);
        // A serial another room's equipment has: refused with its field, nothing changed.
        let other = a.room(&inv.rooms[1].id).await.unwrap();
        let mut dup = after.equipment(&tag).unwrap().clone();
        dup.vendor = other.equipment[0].vendor.clone();
        dup.serial = other.equipment[0].serial.clone();
        dup.nameplate.efficiency = Some(3.0);
        let err = a
            .edit_equipment(&room, &tag, dup, "alice")
            .await
            .unwrap_err();
        let ArchiveError::Invalid(problems) = err else {
            panic!("{err}")
        };
        let i = after.equipment.iter().position(|e| e.tag == tag).unwrap();
        for want in [
            format!("equipment[{i}].serial"),
            format!("equipment[{i}].efficiency"),
        ] {
            assert!(
                problems.iter().any(|p| p.field == want),
                "{want} in {problems:?}"
            );
        }
        assert_eq!(a.room(&room).await.unwrap(), after);
    }

    /// The figure of the issue: applying the 2,100-room demo archive. Run explicitly:
    /// `cargo test -p cistern --lib archive::service::tests::apply_the_demo_fleet -- --ignored --nocapture`
    #[tokio::test]
    #[ignore]
    async fn apply_the_demo_fleet() {
        let (_d, rec) = records("bench");
        let inv = crate::lab::sim::generate_fleet(2100, 42);
        let t = std::time::Instant::now();
        let a = archive(rec, &inv).await;
        let seeded = t.elapsed();
        let (projects, rooms) = demo_archive(&inv);
        let equipment: usize = rooms.iter().map(|r| r.equipment.len()).sum();
        let batch = ArchiveBatch { projects, rooms };
        let t = std::time::Instant::now();
        let dry = a
            .apply(batch.clone(), "bench", true, &|_, _| {})
            .await
            .unwrap();
        let dry_s = t.elapsed();
        let t = std::time::Instant::now();
        let report = a
            .apply(batch.clone(), "bench", false, &|_, _| {})
            .await
            .unwrap();
        let apply_s = t.elapsed();
        let t = std::time::Instant::now();
        let again = a.apply(batch, "bench", false, &|_, _| {}).await.unwrap();
        let again_s = t.elapsed();
        assert!(report.problems.is_empty() && dry.problems.is_empty());
        assert_eq!(again.unchanged_rooms, 2100);
        println!(
            "2100 rooms, {equipment} equipment: seed from the inventory {seeded:?}, dry run {dry_s:?}, apply {apply_s:?} ({} updated), re-apply {again_s:?} (all unchanged)",
            report.updated_rooms
        );
    }
}
