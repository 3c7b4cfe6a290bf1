//! The embedded store: one redb file in the data directory, the default backend of a single
//! node. redb is a pure-Rust, copy-on-write B-tree with ACID transactions: a commit that
//! returned is durable, and a crash at any moment leaves the last committed state (no repair
//! step, no corruption) — which is what the crash-safety requirement needs. ARCHITECTURE.md
//! compares it with the other embedded engines on this workload.
//!
//! Tables: one per chunk series, keyed **time first**: (time bucket, point id, start ms), the
//! bucket being as wide as one seal for raw chunks (2 min; an hour for 1-minute rollups, a day
//! for hourly ones). A seal writes ~130,000 chunks at the fleet's scale: keyed point first,
//! each insert rewrote a page of its own in redb's copy-on-write B-tree (~100 MiB written per
//! seal); keyed time first, a seal's inserts fill one fresh key range (~20 MiB, a third of
//! the CPU; ops/enginebench/RESULTS.md). A range query scans one key range per bucket.
//! `state_v1` is keyed by (kind, key); `events_v1` by (stream, t, id); the records port's
//! tables are in [`records`]. redb calls block, so
//! every call runs on tokio's blocking pool.

use super::{
    ChunkKey, ChunkReplacement, Series, StateRecords, Store, StoreError, StoredChunk, StoredEvent,
    MAX_CHUNK_SPAN,
};
use cistern_schemas::{PointId, Timestamp};
use futures::future::BoxFuture;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;
use std::sync::Arc;

pub mod backup;
mod records;

type ChunkTable = TableDefinition<'static, (i64, &'static str, i64), &'static [u8]>;

const RAW: ChunkTable = TableDefinition::new("chunks_raw_v2");
const MINUTE: ChunkTable = TableDefinition::new("chunks_1m_v2");
const HOUR: ChunkTable = TableDefinition::new("chunks_1h_v2");
const STATE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("state_v1");
const EVENTS: TableDefinition<(&str, i64, u64), &[u8]> = TableDefinition::new("events_v1");

/// Width of a time bucket of `series`, ms.
fn bucket_width(series: Series) -> i64 {
    match series {
        Series::Raw => 120_000,
        Series::Minute => 3_600_000,
        Series::Hour => 86_400_000,
    }
}

fn bucket(series: Series, t: i64) -> i64 {
    t.div_euclid(bucket_width(series))
}

fn table(series: Series) -> ChunkTable {
    match series {
        Series::Raw => RAW,
        Series::Minute => MINUTE,
        Series::Hour => HOUR,
    }
}

/// The embedded (redb) store.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

pub(crate) fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

/// Opens (or creates) a redb file with a page cache of `cache` bytes, mapping its errors.
pub(crate) fn open_database(path: &Path, cache: usize) -> Result<Database, StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    Database::builder()
        .set_cache_size(cache)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(c)) => {
                StoreError::Corrupt(format!("{}: {c}", path.display()))
            }
            other => StoreError::Unavailable(format!("cannot open {}: {other}", path.display())),
        })
}

/// Runs a blocking store call on tokio's blocking pool.
fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> BoxFuture<'static, Result<T, StoreError>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
    })
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        // redb's page cache defaults to about 1 GiB; the historian writes far more than it
        // reads back, so a small cache is enough.
        let db = open_database(&dir.join("history.redb"), 64 << 20)?;
        // Create the tables so that readers of a fresh store find them.
        let tx = db.begin_write().map_err(io)?;
        for series in Series::ALL {
            tx.open_table(table(series)).map_err(io)?;
        }
        tx.open_table(STATE).map_err(io)?;
        tx.open_table(EVENTS).map_err(io)?;
        tx.open_table(records::RECORDS).map_err(io)?;
        tx.open_table(records::RECORD_INDEX).map_err(io)?;
        tx.commit().map_err(io)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// The redb database, for a backup's consistent copy ([`backup`]).
    pub fn database(&self) -> Arc<Database> {
        self.db.clone()
    }

    fn put_blocking(db: &Database, chunks: &[(ChunkKey, Vec<u8>)]) -> Result<(), StoreError> {
        let tx = db.begin_write().map_err(io)?;
        for series in Series::ALL {
            let mut t = tx.open_table(table(series)).map_err(io)?;
            for (key, bytes) in chunks.iter().filter(|(k, _)| k.series == series) {
                let point = key.point.to_string();
                let k = (bucket(series, key.start.0), point.as_str(), key.start.0);
                t.insert(k, bytes.as_slice()).map_err(io)?;
            }
        }
        tx.commit().map_err(io)
    }

    fn chunks_blocking(
        db: &Database,
        point: &str,
        series: Series,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        let tx = db.begin_read().map_err(io)?;
        let t = tx.open_table(table(series)).map_err(io)?;
        let lookback = (from - MAX_CHUNK_SPAN).0;
        let mut out = Vec::new();
        if lookback > to.0 {
            return Ok(out);
        }
        // Bucket by bucket, skipping the empty ones: the cost follows the buckets that hold
        // data, not the width of the range.
        let last = bucket(series, to.0);
        let mut b = bucket(series, lookback);
        while b <= last {
            let mut found_later = None;
            let mut any = false;
            for entry in t.range((b, point, lookback)..).map_err(io)? {
                any = true;
                let (k, v) = entry.map_err(io)?;
                let (kb, kp, ks) = k.value();
                if kb != b {
                    found_later = Some(kb);
                    break;
                }
                if kp != point || ks > to.0 {
                    break;
                }
                out.push((Timestamp(ks), v.value().to_vec()));
            }
            b = match found_later {
                Some(kb) => kb,
                None if any => b + 1,
                // Nothing at or after this key: no later bucket holds anything.
                None => break,
            };
        }
        out.sort_by_key(|c| c.0);
        Ok(out)
    }

    /// Every replacement in one transaction: removes first, then puts, so that a start both
    /// removed and put (by entries of the same point and series) is kept with the put bytes.
    fn replace_batch_blocking(db: &Database, batch: &[ChunkReplacement]) -> Result<(), StoreError> {
        let tx = db.begin_write().map_err(io)?;
        for series in Series::ALL {
            let mut t = tx.open_table(table(series)).map_err(io)?;
            let entries = || batch.iter().filter(|r| r.series == series);
            let points: Vec<String> = entries().map(|r| r.point.to_string()).collect();
            for (r, point) in entries().zip(&points) {
                for start in &r.remove {
                    t.remove((bucket(series, start.0), point.as_str(), start.0))
                        .map_err(io)?;
                }
            }
            for (r, point) in entries().zip(&points) {
                for (start, bytes) in &r.put {
                    t.insert(
                        (bucket(series, start.0), point.as_str(), start.0),
                        bytes.as_slice(),
                    )
                    .map_err(io)?;
                }
            }
        }
        tx.commit().map_err(io)
    }

    /// Retention: removes the buckets before the one `before` falls in, then the chunks of
    /// that bucket that start before it.
    fn expire_blocking(db: &Database, series: Series, before: i64) -> Result<u64, StoreError> {
        let tx = db.begin_write().map_err(io)?;
        let removed;
        {
            let mut t = tx.open_table(table(series)).map_err(io)?;
            let len = t.len().map_err(io)?;
            let b = bucket(series, before);
            t.retain_in(..(b, "", i64::MIN), |_, _| false).map_err(io)?;
            t.retain_in((b, "", i64::MIN)..(b + 1, "", i64::MIN), |k, _| {
                k.2 >= before
            })
            .map_err(io)?;
            removed = len - t.len().map_err(io)?;
        }
        tx.commit().map_err(io)?;
        Ok(removed)
    }

    fn put_state_blocking(
        db: &Database,
        kind: &str,
        records: &[(String, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        let tx = db.begin_write().map_err(io)?;
        {
            let mut t = tx.open_table(STATE).map_err(io)?;
            for (key, value) in records {
                match value {
                    Some(bytes) => {
                        t.insert((kind, key.as_str()), bytes.as_slice())
                            .map_err(io)?;
                    }
                    None => {
                        t.remove((kind, key.as_str())).map_err(io)?;
                    }
                }
            }
        }
        tx.commit().map_err(io)
    }

    fn state_blocking(db: &Database, kind: &str) -> Result<StateRecords, StoreError> {
        let tx = db.begin_read().map_err(io)?;
        let t = tx.open_table(STATE).map_err(io)?;
        let mut out = Vec::new();
        for entry in t.range((kind, "")..).map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            let (k_kind, key) = k.value();
            if k_kind != kind {
                break;
            }
            out.push((key.to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn append_blocking(
        db: &Database,
        stream: &str,
        events: &[StoredEvent],
    ) -> Result<(), StoreError> {
        let tx = db.begin_write().map_err(io)?;
        {
            let mut t = tx.open_table(EVENTS).map_err(io)?;
            for e in events {
                t.insert((stream, e.t.0, e.id), e.body.as_slice())
                    .map_err(io)?;
            }
        }
        tx.commit().map_err(io)
    }

    fn expire_events_blocking(
        db: &Database,
        stream: &str,
        before: Timestamp,
    ) -> Result<u64, StoreError> {
        let tx = db.begin_write().map_err(io)?;
        let removed = {
            let mut t = tx.open_table(EVENTS).map_err(io)?;
            let mut n = 0u64;
            // Keys first: the range borrows the table (volumes are an audit log's).
            let keys: Vec<(i64, u64)> = t
                .range((stream, i64::MIN, 0)..(stream, before.0, 0))
                .map_err(io)?
                .map(|e| e.map(|(k, _)| (k.value().1, k.value().2)).map_err(io))
                .collect::<Result<_, _>>()?;
            for (at, id) in keys {
                t.remove((stream, at, id)).map_err(io)?;
                n += 1;
            }
            n
        };
        tx.commit().map_err(io)?;
        Ok(removed)
    }

    fn events_blocking(
        db: &Database,
        stream: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let tx = db.begin_read().map_err(io)?;
        let t = tx.open_table(EVENTS).map_err(io)?;
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        for entry in t
            .range((stream, from.0, 0)..=(stream, to.0, u64::MAX))
            .map_err(io)?
            .take(limit)
        {
            let (k, v) = entry.map_err(io)?;
            let (_, t, id) = k.value();
            out.push(StoredEvent {
                t: Timestamp(t),
                id,
                body: v.value().to_vec(),
            });
        }
        Ok(out)
    }
}

impl Store for EmbeddedStore {
    fn put_chunks(
        &self,
        chunks: Vec<(ChunkKey, Vec<u8>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let db = self.db.clone();
        blocking(move || Self::put_blocking(&db, &chunks))
    }

    fn chunks(
        &self,
        point: &PointId,
        series: Series,
        from: Timestamp,
        to: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<StoredChunk>, StoreError>> {
        let db = self.db.clone();
        let point = point.to_string();
        blocking(move || Self::chunks_blocking(&db, &point, series, from, to))
    }

    fn replace_chunks_batch(
        &self,
        batch: Vec<ChunkReplacement>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let db = self.db.clone();
        blocking(move || Self::replace_batch_blocking(&db, &batch))
    }

    fn expire(&self, series: Series, before: Timestamp) -> BoxFuture<'_, Result<u64, StoreError>> {
        let db = self.db.clone();
        blocking(move || Self::expire_blocking(&db, series, before.0))
    }

    fn put_state(
        &self,
        kind: &str,
        records: Vec<(String, Option<Vec<u8>>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let db = self.db.clone();
        let kind = kind.to_owned();
        blocking(move || Self::put_state_blocking(&db, &kind, &records))
    }

    fn state(&self, kind: &str) -> BoxFuture<'_, Result<StateRecords, StoreError>> {
        let db = self.db.clone();
        let kind = kind.to_owned();
        blocking(move || Self::state_blocking(&db, &kind))
    }

    fn append_events(
        &self,
        stream: &str,
        events: Vec<StoredEvent>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let db = self.db.clone();
        let stream = stream.to_owned();
        blocking(move || Self::append_blocking(&db, &stream, &events))
    }

    fn events(
        &self,
        stream: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        let db = self.db.clone();
        let stream = stream.to_owned();
        blocking(move || Self::events_blocking(&db, &stream, from, to, limit))
    }

    fn expire_events(
        &self,
        stream: &str,
        before: Timestamp,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        let db = self.db.clone();
        let stream = stream.to_owned();
        blocking(move || Self::expire_events_blocking(&db, &stream, before))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("cistern-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn the_embedded_store_passes_the_conformance_suite() {
        let store = EmbeddedStore::open(&dir("conformance")).unwrap();
        super::super::conformance::run(&store).await;
        super::super::conformance::run_batched_replace(&store).await;
        super::super::conformance::run_expiring(&store).await;
        super::super::conformance::run_records(&store).await;
    }

    /// A put is durable when it returns: a record and its index entries written by a store
    /// that is then dropped (a process that stops) are there when the file is opened again.
    #[tokio::test]
    async fn a_record_that_was_put_survives_reopening_with_its_index() {
        use crate::store::records::{
            IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, RecordVersion,
            Records,
        };
        let d = dir("records-reopen");
        let kind = RecordKind::new("inspection").unwrap();
        let by_room = IndexName::new("by_room").unwrap();
        let id = RecordId::new("IN-1").unwrap();
        {
            let store = EmbeddedStore::open(&d).unwrap();
            store
                .put_record(RecordPut {
                    kind: kind.clone(),
                    id: id.clone(),
                    expected: None,
                    body: b"{}".to_vec(),
                    index: vec![IndexEntry::new(&by_room, "XM-0001")],
                })
                .await
                .unwrap();
        }
        let store = EmbeddedStore::open(&d).unwrap();
        let got = store.record(&kind, &id).await.unwrap().unwrap();
        assert_eq!(got.version, RecordVersion(1));
        let listed = store
            .list_by_index(&kind, &by_room, IndexRange::value("XM-0001"), 10)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
    }

    #[tokio::test]
    async fn what_was_committed_survives_reopening() {
        let d = dir("reopen");
        let key = ChunkKey {
            point: "XM-0001/T1.level".parse().unwrap(),
            series: Series::Raw,
            start: Timestamp(1_000),
        };
        {
            let store = EmbeddedStore::open(&d).unwrap();
            store
                .put_chunks(vec![(key.clone(), vec![1, 2, 3])])
                .await
                .unwrap();
            store
                .put_state("snapshot", vec![("XM-0001/T1".into(), Some(vec![4]))])
                .await
                .unwrap();
        }
        let store = EmbeddedStore::open(&d).unwrap();
        let got = store
            .chunks(&key.point, Series::Raw, Timestamp(0), Timestamp(10_000))
            .await
            .unwrap();
        assert_eq!(got, vec![(Timestamp(1_000), vec![1, 2, 3])]);
        assert_eq!(
            store.state("snapshot").await.unwrap(),
            vec![("XM-0001/T1".to_owned(), vec![4])]
        );
    }

    #[test]
    fn a_store_that_cannot_be_created_says_where_and_why() {
        let err = EmbeddedStore::open(Path::new("/proc/cistern-cannot-be-here")).unwrap_err();
        assert!(err.is_retryable());
        assert!(
            err.to_string().contains("/proc/cistern-cannot-be-here"),
            "{err}"
        );
    }
}
