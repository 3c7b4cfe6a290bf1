//! The embedded store: one redb file in the data directory, the default backend of a single
//! node. redb is a pure-Rust, copy-on-write B-tree with ACID transactions: a commit that
//! returned is durable, and a crash at any moment leaves the last committed state (no repair
//! step, no corruption) — which is what the crash-safety requirement needs.
//!
//! redb calls block, so every call runs on tokio's blocking pool.

use super::{ChunkKey, HistoryStore, StoreError, StoredChunk, MAX_CHUNK_SPAN};
use cistern_schemas::{PointId, Timestamp};
use futures::future::BoxFuture;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::Arc;

/// Chunks keyed by (point id, start ms).
const CHUNKS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("chunks_v1");
/// The write-ahead of open chunks: one blob of raw samples per historian flush, keyed by the
/// flush's sequence number (one insert per flush, however many samples it holds).
const WAL: TableDefinition<u64, &[u8]> = TableDefinition::new("wal_v2");

/// A chunk to seal.
#[derive(Debug, Clone)]
pub struct Seal {
    pub key: ChunkKey,
    pub bytes: Vec<u8>,
}

/// The embedded (redb) store.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let path = dir.join("history.redb");
        // redb's page cache defaults to about 1 GiB; the historian writes far more than it
        // reads back, so a small cache is enough.
        let db = Database::builder()
            .set_cache_size(64 << 20)
            .create(&path)
            .map_err(|e| match e {
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(c)) => {
                    StoreError::Corrupt(c)
                }
                other => {
                    StoreError::Unavailable(format!("cannot open {}: {other}", path.display()))
                }
            })?;
        // Create the tables so that readers of a fresh store find them.
        let tx = db.begin_write().map_err(io)?;
        tx.open_table(CHUNKS).map_err(io)?;
        tx.open_table(WAL).map_err(io)?;
        tx.commit().map_err(io)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// One durable transaction: the flush's write-ahead blob (when not empty), the chunks to
    /// seal, and the removal of every write-ahead blob up to `drop_through` (the blobs the
    /// sealed chunks now hold). Blocking.
    pub fn write_ahead(
        &self,
        seq: u64,
        blob: &[u8],
        seals: &[Seal],
        drop_through: Option<u64>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(io)?;
        {
            let mut wal = tx.open_table(WAL).map_err(io)?;
            if let Some(last) = drop_through {
                let covered: Vec<u64> = wal
                    .range(..=last)
                    .map_err(io)?
                    .map(|e| e.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()
                    .map_err(io)?;
                for k in covered {
                    wal.remove(k).map_err(io)?;
                }
            }
            if !blob.is_empty() && drop_through.is_none_or(|last| seq > last) {
                wal.insert(seq, blob).map_err(io)?;
            }
            let mut chunks = tx.open_table(CHUNKS).map_err(io)?;
            for seal in seals {
                let point = seal.key.point.to_string();
                chunks
                    .insert((point.as_str(), seal.key.start.0), seal.bytes.as_slice())
                    .map_err(io)?;
            }
        }
        tx.commit().map_err(io)
    }

    /// Every write-ahead blob in sequence order (replayed at start-up). Blocking.
    pub fn write_ahead_blobs(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let wal = tx.open_table(WAL).map_err(io)?;
        let mut out = Vec::new();
        for entry in wal.iter().map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn put_blocking(db: &Database, chunks: &[(ChunkKey, Vec<u8>)]) -> Result<(), StoreError> {
        let tx = db.begin_write().map_err(io)?;
        {
            let mut table = tx.open_table(CHUNKS).map_err(io)?;
            for (key, bytes) in chunks {
                let point = key.point.to_string();
                table
                    .insert((point.as_str(), key.start.0), bytes.as_slice())
                    .map_err(io)?;
            }
        }
        tx.commit().map_err(io)
    }

    fn chunks_blocking(
        db: &Database,
        point: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        let tx = db.begin_read().map_err(io)?;
        let table = tx.open_table(CHUNKS).map_err(io)?;
        let lookback = (from - MAX_CHUNK_SPAN).0;
        let mut out = Vec::new();
        for entry in table.range((point, lookback)..=(point, to.0)).map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            out.push((Timestamp(k.value().1), v.value().to_vec()));
        }
        Ok(out)
    }
}

impl HistoryStore for EmbeddedStore {
    fn put_chunks(
        &self,
        chunks: Vec<(ChunkKey, Vec<u8>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || Self::put_blocking(&db, &chunks))
                .await
                .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
        })
    }

    fn chunks(
        &self,
        point: &PointId,
        from: Timestamp,
        to: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<StoredChunk>, StoreError>> {
        let db = self.db.clone();
        let point = point.to_string();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || Self::chunks_blocking(&db, &point, from, to))
                .await
                .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("cistern-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn the_embedded_store_passes_the_conformance_suite() {
        let store = EmbeddedStore::open(&dir("conformance")).unwrap();
        super::super::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn what_was_committed_survives_reopening() {
        let d = dir("reopen");
        let key = ChunkKey {
            point: "XM-0001/T1.level".parse().unwrap(),
            start: Timestamp(1_000),
        };
        {
            let store = EmbeddedStore::open(&d).unwrap();
            store
                .put_chunks(vec![(key.clone(), vec![1, 2, 3])])
                .await
                .unwrap();
        }
        let store = EmbeddedStore::open(&d).unwrap();
        let got = store
            .chunks(&key.point, Timestamp(0), Timestamp(10_000))
            .await
            .unwrap();
        assert_eq!(got, vec![(Timestamp(1_000), vec![1, 2, 3])]);
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
