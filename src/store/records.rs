//! The records port: where the business layer (work orders, assets, inspections, the
//! notification outbox, rosters) keeps its records, beside the telemetry, state and events of
//! [`super::Store`], on the same two backends and checked by the same conformance suite
//! (`conformance::run_records`).
//!
//! A record is `(kind, id, version, body)`: a kind names what it is (`work_order`), an id is
//! unique within its kind, the body is bytes the store never looks inside (the service's JSON),
//! and the version counts its writes. Volumes are small (thousands a year), so there is no query
//! engine: each kind names its few access paths as explicit **index entries** given with every
//! put (`by_room = XM-0001`, `by_state = open`, `by_due = 2026-12-24T08:00Z`), and a read is a
//! key lookup ([`Records::record`]) or an ordered range of one index ([`Records::list_by_index`]).
//! Values compare as strings (byte order): encode dates so that they sort (RFC 3339 UTC, or
//! zero-padded milliseconds).
//!
//! **Optimistic concurrency.** Every write names the version it expects (`None`: the record
//! must not exist) and fails with [`RecordsError::Conflict`] if another writer got there first;
//! so two writers cannot lose an update: the loser reads again and re-applies its change. A put
//! returns the new version (1 for a new record). Versions start again at 1 after a delete.
//!
//! **Atomicity and durability.** The embedded store changes a record and its index entries in
//! one transaction, durable when the call returns. ScyllaDB compares-and-sets the record with a
//! lightweight transaction (`IF NOT EXISTS` / `IF version = ?`) and maintains the index rows
//! around it (new rows before, dropped rows after); a reader checks each index row against its
//! record, so a crash between the two leaves at worst an index row that is ignored.

use super::StoreError;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest kind, index name or id, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// What a record is (`work_order`, `asset`): lower-case letters, digits and `_`, starting with
/// a letter, at most 48 bytes (it names tables' partitions, and metrics one day).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKind(String);

/// The name of one of a kind's indexes (`by_room`): the same rule as [`RecordKind`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IndexName(String);

/// A record's id within its kind: any non-empty text up to [`MAX_NAME_BYTES`] without control
/// characters (`WO-2026-000123`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(String);

fn valid_name(name: &str) -> bool {
    (1..=48).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl RecordKind {
    pub fn new(kind: &str) -> Result<Self, RecordsError> {
        if valid_name(kind) {
            Ok(Self(kind.to_owned()))
        } else {
            Err(RecordsError::Invalid(format!(
                "record kind {kind:?}: 1 to 48 lower-case letters, digits or '_', starting with a letter"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl IndexName {
    pub fn new(name: &str) -> Result<Self, RecordsError> {
        if valid_name(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(RecordsError::Invalid(format!(
                "index name {name:?}: 1 to 48 lower-case letters, digits or '_', starting with a letter"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IndexName {
    type Error = RecordsError;
    fn try_from(name: String) -> Result<Self, RecordsError> {
        Self::new(&name)
    }
}

impl From<IndexName> for String {
    fn from(name: IndexName) -> String {
        name.0
    }
}

impl RecordId {
    pub fn new(id: &str) -> Result<Self, RecordsError> {
        if !id.is_empty() && id.len() <= MAX_NAME_BYTES && !id.chars().any(char::is_control) {
            Ok(Self(id.to_owned()))
        } else {
            Err(RecordsError::Invalid(format!(
                "record id {id:?}: 1 to {MAX_NAME_BYTES} bytes without control characters"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for IndexName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The version of a record: 1 when created, one more at every put.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordVersion(pub u64);

impl fmt::Display for RecordVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// One access path of a record: it is listed under `index` at `value`. A record may have
/// several values in one index (two assignees), or none (an unassigned order).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IndexEntry {
    pub index: IndexName,
    pub value: String,
}

impl IndexEntry {
    pub fn new(index: &IndexName, value: impl Into<String>) -> Self {
        Self {
            index: index.clone(),
            value: value.into(),
        }
    }
}

/// A write of one record ([`Records::put_record`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordPut {
    pub kind: RecordKind,
    pub id: RecordId,
    /// The version the writer read (`None`: the record must not exist yet).
    pub expected: Option<RecordVersion>,
    pub body: Vec<u8>,
    /// Every index entry of the new version (those of the old version not given here go).
    pub index: Vec<IndexEntry>,
}

/// A record as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub id: RecordId,
    pub version: RecordVersion,
    pub body: Vec<u8>,
    pub index: Vec<IndexEntry>,
}

/// A range of index values, inclusive at both ends (`from == to`: one value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRange {
    pub from: String,
    pub to: String,
}

impl IndexRange {
    /// Exactly `value`.
    pub fn value(value: impl Into<String>) -> Self {
        let value = value.into();
        Self {
            from: value.clone(),
            to: value,
        }
    }

    /// From `from` to `to`, both included.
    pub fn between(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
        }
    }

    pub fn contains(&self, value: &str) -> bool {
        self.from.as_str() <= value && value <= self.to.as_str()
    }
}

/// What went wrong with a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// Another writer changed the record since `expected` was read (`found`: what is there
    /// now, `None` for nothing): read it again and re-apply the change.
    #[error("record {kind}/{id} changed: expected {expected:?}, found {found:?} (read it again)")]
    Conflict {
        kind: RecordKind,
        id: RecordId,
        expected: Option<RecordVersion>,
        found: Option<RecordVersion>,
    },
    #[error("invalid record request: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RecordsError {
    /// The compare-and-set refusal both backends give: `found` is the version stored now.
    pub fn conflict(
        kind: &RecordKind,
        id: &RecordId,
        expected: Option<RecordVersion>,
        found: Option<RecordVersion>,
    ) -> Self {
        Self::Conflict {
            kind: kind.clone(),
            id: id.clone(),
            expected,
            found,
        }
    }
}

impl RecordsError {
    /// Whether the same call may succeed later unchanged (a conflict needs a fresh read).
    pub fn is_retryable(&self) -> bool {
        matches!(self, RecordsError::Store(e) if e.is_retryable())
    }
}

/// The records port (see the module doc).
pub trait Records: Send + Sync + fmt::Debug + 'static {
    /// Writes a record if its version is still `put.expected`, with its index entries, and
    /// returns the new version. Durable when it returns.
    fn put_record(&self, put: RecordPut) -> BoxFuture<'_, Result<RecordVersion, RecordsError>>;

    /// The record `kind`/`id`, if there is one.
    fn record(
        &self,
        kind: &RecordKind,
        id: &RecordId,
    ) -> BoxFuture<'_, Result<Option<StoredRecord>, RecordsError>>;

    /// The records of `kind` listed under `index` at a value within `range`, in (value, id)
    /// order, each at most once (at its first value in the range), at most `limit`.
    fn list_by_index(
        &self,
        kind: &RecordKind,
        index: &IndexName,
        range: IndexRange,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, RecordsError>>;

    /// Deletes a record and its index entries if its version is still `expected`.
    fn delete_record(
        &self,
        kind: &RecordKind,
        id: &RecordId,
        expected: RecordVersion,
    ) -> BoxFuture<'_, Result<(), RecordsError>>;
}
