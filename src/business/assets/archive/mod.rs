//! The rooms' electronic archives (档案, DOMAIN.md §8): projects → pump rooms → equipment, with
//! vendors, serials, dates, nameplates, documents and supplier contacts. See [`model`] for the
//! records and how the live fleet is derived from them.

pub mod client;
pub mod import;
pub mod model;
pub mod sheet;

pub use model::{
    Contact, Document, Equipment, EquipmentKind, Known, Nameplate, Problem, Project, Retired,
    RoomArchive, Site,
};
