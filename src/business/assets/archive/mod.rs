//! The rooms' electronic archives (档案, DOMAIN.md §8): projects → pump rooms → equipment, with
//! vendors, serials, dates, nameplates, documents and supplier contacts. See [`model`] for the
//! records and how the live fleet is derived from them, [`service`] for the archive the node
//! runs (writes, batches, the live fleet following it), [`store`] for how it is kept and
//! [`demo`] for the demo fleet's generated archive.

pub mod client;
pub mod demo;
pub mod import;
pub mod model;
pub mod service;
pub mod sheet;
pub mod store;

pub use demo::demo_archive;
pub use model::{
    Contact, Document, Equipment, EquipmentKind, Known, Nameplate, Problem, Project, Retired,
    RoomArchive, Site,
};
pub use service::{
    ApplyReport, Archive, ArchiveBatch, ArchiveChange, BatchProblem, DocumentUpload, LiveFleet,
};

use cistern_schemas::{EquipmentTag, ProjectId, RoomId};

/// Why an archive request failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The entry as given has these problems (nothing was written).
    #[error("the archive entry is refused: {}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    #[error("unknown room {0}")]
    UnknownRoom(RoomId),
    #[error("unknown project {0}")]
    UnknownProject(ProjectId),
    #[error("project {0} exists")]
    ProjectExists(ProjectId),
    #[error("room {room} has no equipment {tag}")]
    UnknownEquipment { room: RoomId, tag: EquipmentTag },
    #[error("unknown document {0}")]
    UnknownDocument(String),
    #[error("the file is {size} bytes; at most {max} are accepted")]
    TooLarge { size: u64, max: u64 },
    #[error("the file is empty")]
    EmptyDocument,
    #[error("the file is not a PDF, JPEG, PNG or WebP (checked by its content)")]
    NotADocument,
    /// Another writer changed the record meanwhile: read again and retry.
    #[error("{0} changed meanwhile; read it again")]
    Conflict(String),
    #[error("the archive's records are corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Records(#[from] crate::store::records::RecordsError),
}
