//! Copying the embedded store and the historian's write-ahead out of a live node, for a backup
//! (`crate::backup`). A redb file that a running node holds open is never copied as raw bytes
//! (a copy taken while a commit lands is torn): the copy reads every table through one read
//! transaction — a snapshot of the last commit, which writers do not disturb — and inserts
//! the entries, in key order, into a fresh redb file, a bounded batch per write transaction
//! (non-durable commits, one durable commit at the end), so memory stays bounded and the
//! live store's writers never wait: redb's readers and its one writer do not block each
//! other.
//!
//! Each table is copied with its type: redb checks a table's key and value types when it is
//! opened, so a table this binary does not know (a newer version's) cannot be copied, and the
//! copy refuses it by name rather than leaving it out.

use super::records::{RECORDS, RECORD_INDEX};
use super::{io, EVENTS, HOUR, MINUTE, RAW, STATE};
use crate::store::wal::LOG;
use crate::store::StoreError;
use redb::{
    Database, Durability, Key, MultimapTableHandle, ReadTransaction, ReadableDatabase,
    ReadableTable, TableDefinition, TableHandle, Value,
};
use std::collections::BTreeMap;
use std::path::Path;

/// Entries copied per table, by table name.
pub type TableCounts = BTreeMap<String, u64>;

/// The file of the embedded store in a data directory (and in a backup).
pub const HISTORY_FILE: &str = "history.redb";
/// The file of the historian's write-ahead in a data directory (and in a backup).
pub const WAL_FILE: &str = "wal.redb";

/// The tables of `history.redb` this binary knows.
pub const HISTORY_TABLES: &[&str] = &[
    "chunks_raw_v2",
    "chunks_1m_v2",
    "chunks_1h_v2",
    "state_v1",
    "events_v1",
    "records_v1",
    "record_index_v1",
];
/// The tables of `wal.redb` this binary knows.
pub const WAL_TABLES: &[&str] = &["wal_v3"];

/// How far a copy has gone: called after each committed batch with the entries copied so far
/// (all tables of the file).
pub type Progress<'a> = &'a mut dyn FnMut(u64);

/// A read transaction of a live store (its snapshot lasts as long as the transaction).
pub fn snapshot(db: &Database) -> Result<ReadTransaction, StoreError> {
    db.begin_read().map_err(io)
}

/// Refuses a snapshot holding a table outside `known` (a newer version's data).
fn check_tables(tx: &ReadTransaction, file: &str, known: &[&str]) -> Result<(), StoreError> {
    let unknown: Vec<String> = tx
        .list_tables()
        .map_err(io)?
        .map(|t| t.name().to_owned())
        .chain(
            tx.list_multimap_tables()
                .map_err(io)?
                .map(|t| t.name().to_owned()),
        )
        .filter(|n| !known.contains(&n.as_str()))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{file} holds tables this version does not know: {}",
            unknown.join(", ")
        )))
    }
}

/// Copies one table of `src` into `dst`, `batch` entries per write transaction.
fn copy_table<K: Key + 'static, V: Value + 'static>(
    src: &ReadTransaction,
    dst: &Database,
    def: TableDefinition<'static, K, V>,
    batch: usize,
    copied: &mut u64,
    progress: Progress<'_>,
) -> Result<u64, StoreError> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        // A store that never created the table has nothing in it.
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(io(e)),
    };
    let mut entries = from.iter().map_err(io)?;
    let mut n = 0u64;
    loop {
        let mut tx = dst.begin_write().map_err(io)?;
        tx.set_durability(Durability::None).map_err(io)?;
        let mut done = true;
        {
            let mut to = tx.open_table(def).map_err(io)?;
            for entry in entries.by_ref() {
                let (k, v) = entry.map_err(io)?;
                to.insert(k.value(), v.value()).map_err(io)?;
                n += 1;
                *copied += 1;
                if n.is_multiple_of(batch as u64) {
                    done = false;
                    break;
                }
            }
        }
        tx.commit().map_err(io)?;
        progress(*copied);
        if done {
            return Ok(n);
        }
    }
}

/// Creates `path` (which must not exist) as a fresh redb file.
fn create(path: &Path) -> Result<Database, StoreError> {
    if path.exists() {
        return Err(StoreError::Invalid(format!(
            "{} exists already",
            path.display()
        )));
    }
    Database::builder()
        .set_cache_size(16 << 20)
        .create(path)
        .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", path.display())))
}

/// Makes everything copied into `db` durable.
fn finish(db: &Database) -> Result<(), StoreError> {
    let mut tx = db.begin_write().map_err(io)?;
    tx.set_durability(Durability::Immediate).map_err(io)?;
    tx.commit().map_err(io)
}

/// Copies the store's snapshot `src` (of `history.redb`) into a fresh file at `dst`.
pub fn copy_history(
    src: &ReadTransaction,
    dst: &Path,
    batch: usize,
    progress: Progress<'_>,
) -> Result<TableCounts, StoreError> {
    check_tables(src, HISTORY_FILE, HISTORY_TABLES)?;
    let db = create(dst)?;
    let batch = batch.max(1);
    let mut copied = 0;
    let mut counts = TableCounts::new();
    for def in [RAW, MINUTE, HOUR] {
        let n = copy_table(src, &db, def, batch, &mut copied, progress)?;
        counts.insert(def.name().to_owned(), n);
    }
    let n = copy_table(src, &db, STATE, batch, &mut copied, progress)?;
    counts.insert(STATE.name().to_owned(), n);
    let n = copy_table(src, &db, EVENTS, batch, &mut copied, progress)?;
    counts.insert(EVENTS.name().to_owned(), n);
    let n = copy_table(src, &db, RECORDS, batch, &mut copied, progress)?;
    counts.insert(RECORDS.name().to_owned(), n);
    let n = copy_table(src, &db, RECORD_INDEX, batch, &mut copied, progress)?;
    counts.insert(RECORD_INDEX.name().to_owned(), n);
    finish(&db)?;
    Ok(counts)
}

/// Copies the write-ahead's snapshot `src` (of `wal.redb`) into a fresh file at `dst`.
pub fn copy_wal(
    src: &ReadTransaction,
    dst: &Path,
    batch: usize,
    progress: Progress<'_>,
) -> Result<TableCounts, StoreError> {
    check_tables(src, WAL_FILE, WAL_TABLES)?;
    let db = create(dst)?;
    let mut copied = 0;
    let n = copy_table(src, &db, LOG, batch.max(1), &mut copied, progress)?;
    finish(&db)?;
    Ok(TableCounts::from([(LOG.name().to_owned(), n)]))
}

/// The tables of a redb file and their entry counts (opening it read-only checks it is a redb
/// file; a table this binary does not know is listed with its name, count unknown: `None`).
pub fn table_counts(path: &Path) -> Result<BTreeMap<String, Option<u64>>, StoreError> {
    use redb::ReadableTableMetadata;
    let db = redb::ReadOnlyDatabase::open(path).map_err(|e| {
        StoreError::Corrupt(format!("{} is not a readable store: {e}", path.display()))
    })?;
    let tx = redb::ReadableDatabase::begin_read(&db).map_err(io)?;
    let mut out = BTreeMap::new();
    let names: Vec<String> = tx
        .list_tables()
        .map_err(io)?
        .map(|t| t.name().to_owned())
        .collect();
    for name in names {
        let len = match name.as_str() {
            "chunks_raw_v2" => tx.open_table(RAW).map_err(io)?.len(),
            "chunks_1m_v2" => tx.open_table(MINUTE).map_err(io)?.len(),
            "chunks_1h_v2" => tx.open_table(HOUR).map_err(io)?.len(),
            "state_v1" => tx.open_table(STATE).map_err(io)?.len(),
            "events_v1" => tx.open_table(EVENTS).map_err(io)?.len(),
            "records_v1" => tx.open_table(RECORDS).map_err(io)?.len(),
            "record_index_v1" => tx.open_table(RECORD_INDEX).map_err(io)?.len(),
            "wal_v3" => tx.open_table(LOG).map_err(io)?.len(),
            _ => {
                out.insert(name, None);
                continue;
            }
        };
        out.insert(name, Some(len.map_err(io)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use crate::store::wal::Wal;
    use crate::store::{ChunkKey, Series, Store, StoredEvent};
    use cistern_schemas::Timestamp;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_copies_every_table_and_not_what_is_written_after_it() {
        let d = super::super::tests::dir("backup-copy");
        let store = EmbeddedStore::open(&d).unwrap();
        let point: cistern_schemas::PointId = "XM-0001/T1.level".parse().unwrap();
        let chunks: Vec<_> = (0..25)
            .map(|i| {
                let key = ChunkKey {
                    point: point.clone(),
                    series: Series::Raw,
                    start: Timestamp(i * 120_000),
                };
                (key, vec![i as u8; 10])
            })
            .collect();
        store.put_chunks(chunks).await.unwrap();
        store
            .put_state("auth_user", vec![("admin".into(), Some(b"{}".to_vec()))])
            .await
            .unwrap();
        let ev = StoredEvent {
            t: Timestamp(5),
            id: 1,
            body: vec![1],
        };
        store.append_events("audit", vec![ev]).await.unwrap();
        let mut wal = Wal::open(&d).unwrap();
        wal.append(7, b"blob").unwrap();

        let history = snapshot(&store.database()).unwrap();
        let log = snapshot(&wal.database()).unwrap();
        // Written after the snapshot: not in the copy.
        store
            .put_state("auth_user", vec![("later".into(), Some(b"{}".to_vec()))])
            .await
            .unwrap();
        wal.append(8, b"later").unwrap();

        let out = d.join("copy");
        std::fs::create_dir_all(&out).unwrap();
        let mut batches = 0;
        let counts =
            copy_history(&history, &out.join(HISTORY_FILE), 10, &mut |_| batches += 1).unwrap();
        assert_eq!(counts["chunks_raw_v2"], 25);
        assert_eq!(counts["state_v1"], 1);
        assert_eq!(counts["events_v1"], 1);
        assert!(batches >= 3, "25 chunks in batches of 10: {batches}");
        let counts = copy_wal(&log, &out.join(WAL_FILE), 10, &mut |_| {}).unwrap();
        assert_eq!(counts["wal_v3"], 1);
        assert!(
            copy_wal(&log, &out.join(WAL_FILE), 10, &mut |_| {}).is_err(),
            "never over an existing file"
        );

        let read = table_counts(&out.join(HISTORY_FILE)).unwrap();
        assert_eq!(read["chunks_raw_v2"], Some(25));
        drop((history, log, wal));
        let copy = EmbeddedStore::open(&out).unwrap();
        let got = copy
            .chunks(&point, Series::Raw, Timestamp(0), Timestamp(10_000_000))
            .await
            .unwrap();
        assert_eq!(got.len(), 25);
        assert_eq!(copy.state("auth_user").await.unwrap().len(), 1);
        let wal = Wal::open(&out).unwrap();
        assert_eq!(wal.read(0, u64::MAX).unwrap(), vec![(7, b"blob".to_vec())]);
        let _ = std::fs::remove_dir_all(&d);
    }
}
