//! The storage port: one interface ([`Store`]), two backends — the embedded store (redb, one
//! node, the default: [`embedded`]) and ScyllaDB at scale — and one conformance suite both must
//! pass ([`conformance`]).
//!
//! What a store keeps:
//! - **Telemetry chunks**: the Gorilla-encoded samples (`cistern_schemas::chunk`) of one point
//!   over a bounded span ([`MAX_CHUNK_SPAN`]), per [`Series`] (raw samples, 1-minute and 1-hour
//!   rollups), filed by point, series and the timestamp of their first sample. The encoding is
//!   the backends' common currency: they store bytes and never look inside.
//! - **State**: small keyed records that must survive restarts (actor snapshots, alarm state with
//!   its timers, users), by kind and key; a write replaces.
//! - **Events**: append-only streams (alarm transitions, audit), by stream, time and id.
//!
//! - **Records** (a second port, [`Records`], on the same backends): the business layer's
//!   records (work orders, assets, inspections, the notification outbox, rosters), by kind and
//!   id, versioned with compare-and-set writes, listed through the indexes each kind names
//!   ([`records`]).
//!
//! Every write of the [`Store`] port is idempotent — writing a key again replaces it — so a replayed flush or a
//! re-delivered message never duplicates.
//!
//! The historian's write-ahead (samples accepted but not yet sealed into chunks, and the disk
//! spill when the store is down) is not part of this port: it is always local ([`wal`]).

pub mod config;
pub mod embedded;
pub mod records;
pub mod scylla;
pub mod snapshots;
pub mod wal;

mod open;
pub use config::{Retention, StoreBackend, StoreConfig, StoreConfigError};
pub use open::{open, IoRuntime, OpenedStore};
pub use records::Records;

#[cfg(test)]
pub(crate) mod conformance;

use cistern_schemas::{PointId, Timestamp};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest span of one chunk: a range query looks this far back for chunks that start
/// before its `from` and reach into it.
pub const MAX_CHUNK_SPAN: Duration = Duration::from_secs(3600);

/// The resolution a chunk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Series {
    /// Samples as received.
    Raw,
    /// 1-minute rollups (min, max, mean, last, count).
    Minute,
    /// 1-hour rollups.
    Hour,
}

impl Series {
    pub const ALL: [Series; 3] = [Series::Raw, Series::Minute, Series::Hour];

    /// Stable name, used in keys, tables and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Series::Raw => "raw",
            Series::Minute => "1m",
            Series::Hour => "1h",
        }
    }

    /// The width of one rollup bucket (`None` for raw samples).
    pub fn bucket(self) -> Option<Duration> {
        match self {
            Series::Raw => None,
            Series::Minute => Some(Duration::from_secs(60)),
            Series::Hour => Some(Duration::from_secs(3600)),
        }
    }
}

/// Where a chunk is filed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkKey {
    pub point: PointId,
    pub series: Series,
    /// Timestamp of the chunk's first sample (or first bucket).
    pub start: Timestamp,
}

/// One point and series' part of a batched replace ([`Store::replace_chunks_batch`]): write
/// `put`, and remove the chunks that start at `remove` (those `put` does not rewrite).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkReplacement {
    pub point: PointId,
    pub series: Series,
    pub remove: Vec<Timestamp>,
    pub put: Vec<(Timestamp, Vec<u8>)>,
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
    #[error("store rejected the request: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether the same write may succeed later (the historian keeps it queued) or never will.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Io(_))
    }

    /// A short, stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Io(_) => "io",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Invalid(_) => "invalid",
        }
    }
}

/// State records as read: (key, bytes), by key order.
pub type StateRecords = Vec<(String, Vec<u8>)>;

/// A chunk as stored: its start and its encoded bytes.
pub type StoredChunk = (Timestamp, Vec<u8>);

/// One event of an append-only stream. `(t, id)` identifies it within its stream: appending
/// the same pair again replaces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub t: Timestamp,
    /// Unique within the stream and `t` (the producer's sequence number or hash).
    pub id: u64,
    pub body: Vec<u8>,
}

/// A store (see the module doc). Ranges are inclusive at both ends.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Writes chunks; a key written again is replaced. The embedded store writes them in one
    /// transaction; ScyllaDB writes each idempotently (a retry after a partial failure
    /// converges).
    fn put_chunks(&self, chunks: Vec<(ChunkKey, Vec<u8>)>)
        -> BoxFuture<'_, Result<(), StoreError>>;

    /// The chunks of `point` in `series` that may hold samples within `[from, to]` (including
    /// those starting up to [`MAX_CHUNK_SPAN`] before `from`), in start order.
    fn chunks(
        &self,
        point: &PointId,
        series: Series,
        from: Timestamp,
        to: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<StoredChunk>, StoreError>>;

    /// Replaces chunks of one point and series: writes `put`, then removes the chunks that
    /// start at `remove` (those not rewritten by `put`). Used by compaction, which merges many
    /// small chunks into one; a reader may briefly see both, and queries de-duplicate by
    /// timestamp. One replacement of [`Store::replace_chunks_batch`].
    fn replace_chunks(
        &self,
        point: &PointId,
        series: Series,
        remove: Vec<Timestamp>,
        put: Vec<(Timestamp, Vec<u8>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.replace_chunks_batch(vec![ChunkReplacement {
            point: point.clone(),
            series,
            remove,
            put,
        }])
    }

    /// Replaces chunks of many points and series at once (compaction's unit of work): every
    /// `put` of the batch is written, then every `remove` that no `put` of the same point and
    /// series rewrites goes. A reader never misses a sample: it may briefly see a chunk and its
    /// replacement, and queries de-duplicate by timestamp. The embedded store does it all in
    /// one transaction; ScyllaDB writes every put idempotently, then deletes (a retry after a
    /// partial failure converges).
    fn replace_chunks_batch(
        &self,
        batch: Vec<ChunkReplacement>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Removes the chunks of `series` that start before `before` (retention). Returns how many
    /// went. A backend that expires data by itself (ScyllaDB's TTL) may do nothing and return 0.
    fn expire(&self, series: Series, before: Timestamp) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Writes (`Some`) or deletes (`None`) state records of `kind`, all or none.
    fn put_state(
        &self,
        kind: &str,
        records: Vec<(String, Option<Vec<u8>>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Every state record of `kind`, by key order.
    fn state(&self, kind: &str) -> BoxFuture<'_, Result<StateRecords, StoreError>>;

    /// Appends events to `stream` (idempotent by `(t, id)`).
    fn append_events(
        &self,
        stream: &str,
        events: Vec<StoredEvent>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Events of `stream` within `[from, to]`, in `(t, id)` order, at most `limit`.
    fn events(
        &self,
        stream: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>>;

    /// Removes the events of `stream` stored before `before` (the audit log's retention).
    /// Returns how many went. A backend that cannot remove events keeps them and returns 0.
    fn expire_events(
        &self,
        stream: &str,
        before: Timestamp,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        let _ = (stream, before);
        Box::pin(async { Ok(0) })
    }
}
