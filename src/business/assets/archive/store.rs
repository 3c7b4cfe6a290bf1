//! The archive on the records port: one record per project (kind `asset_project`, id the
//! project's id) and one per room holding its whole [`RoomArchive`] (kind `asset_room`, id the
//! room's id, indexed by zone and project), both JSON and written with optimistic versions; the
//! bytes of documents and photos in chunks (kind `asset_document`, id `room/doc/n`), mirroring
//! the work orders' attachments (small enough for a ScyllaDB cell).
//!
//! A room is one record because it is read and written whole (the live room is derived from
//! all of it, and a replacement moves an equipment to the room's retired history in the same
//! write): a change is atomic without transactions across records.

use super::model::{Project, RoomArchive};
use super::ArchiveError;
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, RecordVersion, Records,
    RecordsError, StoredRecord,
};
use cistern_schemas::{ProjectId, RoomId};
use std::sync::Arc;

/// Bytes per stored document chunk.
pub const CHUNK_BYTES: usize = 512 * 1024;

/// The most records one listing reads (the whole archive: a few thousand rooms).
const LIST_LIMIT: usize = 1_000_000;

/// Projects, rooms and document chunks (see the module doc).
#[derive(Debug, Clone)]
pub struct ArchiveStore {
    records: Arc<dyn Records>,
    projects: RecordKind,
    rooms: RecordKind,
    documents: RecordKind,
    all: IndexName,
    by_zone: IndexName,
    by_project: IndexName,
}

impl ArchiveStore {
    pub fn new(records: Arc<dyn Records>) -> Result<Self, ArchiveError> {
        Ok(Self {
            records,
            projects: RecordKind::new("asset_project")?,
            rooms: RecordKind::new("asset_room")?,
            documents: RecordKind::new("asset_document")?,
            all: IndexName::new("all")?,
            by_zone: IndexName::new("by_zone")?,
            by_project: IndexName::new("by_project")?,
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(
        r: &StoredRecord,
        what: &str,
    ) -> Result<T, ArchiveError> {
        serde_json::from_slice(&r.body)
            .map_err(|e| ArchiveError::Corrupt(format!("{what} {} does not decode: {e}", r.id)))
    }

    /// Every project with its version.
    pub async fn projects(&self) -> Result<Vec<(Project, RecordVersion)>, ArchiveError> {
        let list = self
            .records
            .list_by_index(
                &self.projects,
                &self.all,
                IndexRange::value("1"),
                LIST_LIMIT,
            )
            .await?;
        list.iter()
            .map(|r| Ok((Self::decode(r, "project")?, r.version)))
            .collect()
    }

    /// Every room's archive with its version.
    pub async fn rooms(&self) -> Result<Vec<(RoomArchive, RecordVersion)>, ArchiveError> {
        let list = self
            .records
            .list_by_index(&self.rooms, &self.all, IndexRange::value("1"), LIST_LIMIT)
            .await?;
        list.iter()
            .map(|r| Ok((Self::decode(r, "room archive")?, r.version)))
            .collect()
    }

    pub async fn put_project(
        &self,
        p: &Project,
        expected: Option<RecordVersion>,
    ) -> Result<RecordVersion, RecordsError> {
        let body = serde_json::to_vec(p)
            .map_err(|e| RecordsError::Invalid(format!("project does not encode: {e}")))?;
        self.records
            .put_record(RecordPut {
                kind: self.projects.clone(),
                id: RecordId::new(p.id.as_str())?,
                expected,
                body,
                index: vec![IndexEntry::new(&self.all, "1")],
            })
            .await
    }

    pub async fn delete_project(
        &self,
        id: &ProjectId,
        expected: RecordVersion,
    ) -> Result<(), RecordsError> {
        self.records
            .delete_record(&self.projects, &RecordId::new(id.as_str())?, expected)
            .await
    }

    pub async fn put_room(
        &self,
        a: &RoomArchive,
        expected: Option<RecordVersion>,
    ) -> Result<RecordVersion, RecordsError> {
        let body = serde_json::to_vec(a)
            .map_err(|e| RecordsError::Invalid(format!("room archive does not encode: {e}")))?;
        let mut index = vec![
            IndexEntry::new(&self.all, "1"),
            IndexEntry::new(&self.by_zone, a.site.zone.as_str()),
        ];
        if let Some(p) = &a.project {
            index.push(IndexEntry::new(&self.by_project, p.as_str()));
        }
        self.records
            .put_record(RecordPut {
                kind: self.rooms.clone(),
                id: RecordId::new(a.site.id.as_str())?,
                expected,
                body,
                index,
            })
            .await
    }

    fn chunk_id(room: &RoomId, doc: &str, n: usize) -> Result<RecordId, RecordsError> {
        RecordId::new(&format!("{room}/{doc}/{n}"))
    }

    /// Writes a document's chunks (each created only if absent).
    pub async fn write_document(
        &self,
        room: &RoomId,
        doc: &str,
        bytes: &[u8],
    ) -> Result<(), ArchiveError> {
        for (n, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
            let put = RecordPut {
                kind: self.documents.clone(),
                id: Self::chunk_id(room, doc, n)?,
                expected: None,
                body: chunk.to_vec(),
                index: vec![],
            };
            if let Err(e) = self.records.put_record(put).await {
                self.remove_document(room, doc, n).await;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Deletes the first `chunks` chunks of a document (best effort: an orphan is only space).
    pub async fn remove_document(&self, room: &RoomId, doc: &str, chunks: usize) {
        for n in 0..chunks {
            let Ok(rid) = Self::chunk_id(room, doc, n) else {
                continue;
            };
            if let Ok(Some(r)) = self.records.record(&self.documents, &rid).await {
                if let Err(e) = self
                    .records
                    .delete_record(&self.documents, &rid, r.version)
                    .await
                {
                    tracing::warn!(%room, doc, error = %e, "a document chunk was not deleted");
                }
            }
        }
    }

    /// A document's bytes (`size` as listed).
    pub async fn read_document(
        &self,
        room: &RoomId,
        doc: &str,
        size: u64,
    ) -> Result<Vec<u8>, ArchiveError> {
        let chunks = usize::try_from(size).unwrap_or(0).div_ceil(CHUNK_BYTES);
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        for n in 0..chunks {
            let rid = Self::chunk_id(room, doc, n)?;
            let chunk = self
                .records
                .record(&self.documents, &rid)
                .await?
                .ok_or_else(|| {
                    ArchiveError::Corrupt(format!("document {doc} of {room} lost its chunk {n}"))
                })?;
            out.extend_from_slice(&chunk.body);
        }
        if out.len() as u64 != size {
            return Err(ArchiveError::Corrupt(format!(
                "document {doc} of {room} has {} bytes, listed as {size}",
                out.len()
            )));
        }
        Ok(out)
    }
}
