//! The historian's storage port: compressed telemetry chunks keyed by point and start time,
//! with two backends behind one trait — the embedded store (redb, one node, the default) and,
//! later, ScyllaDB. Both must pass the same conformance suite ([`conformance`]).
//!
//! A chunk is the Gorilla-encoded samples of one point over a bounded span
//! ([`MAX_CHUNK_SPAN`]) starting at its key's timestamp (`cistern_schemas::chunk`). Writes are
//! idempotent: writing a key again replaces the chunk, so a replayed flush never duplicates.
//!
//! Status: the port and the embedded backend exist; the historian that fills them (open chunks,
//! the write-ahead of the open tail, store-and-forward, rollups) is the next step of the
//! historian issue — see ARCHITECTURE.md.

pub mod embedded;

#[cfg(test)]
pub(crate) mod conformance;

use cistern_schemas::{PointId, Timestamp};
use futures::future::BoxFuture;
use std::time::Duration;

/// The longest span of one chunk: a range query looks this far back for chunks that start
/// before its `from` and reach into it.
pub const MAX_CHUNK_SPAN: Duration = Duration::from_secs(3600);

/// Where a chunk is filed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkKey {
    pub point: PointId,
    /// Timestamp of the chunk's first sample.
    pub start: Timestamp,
}

/// What went wrong in a store, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store I/O failed: {0}")]
    Io(String),
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    #[error("chunk of {point} starting {start} spans more than {MAX_CHUNK_SPAN:?}")]
    ChunkTooLong { point: String, start: i64 },
}

impl StoreError {
    /// Whether the same write may succeed later (the historian keeps it queued) or never will.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Io(_))
    }
}

/// A chunk as stored: its start and its encoded bytes.
pub type StoredChunk = (Timestamp, Vec<u8>);

/// A telemetry store.
pub trait HistoryStore: Send + Sync + std::fmt::Debug + 'static {
    /// Writes chunks atomically (all or none); a key written again is replaced.
    fn put_chunks(&self, chunks: Vec<(ChunkKey, Vec<u8>)>)
        -> BoxFuture<'_, Result<(), StoreError>>;

    /// The chunks of `point` that may hold samples within `[from, to]`, in start order.
    fn chunks(
        &self,
        point: &PointId,
        from: Timestamp,
        to: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<StoredChunk>, StoreError>>;
}
