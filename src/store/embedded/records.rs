//! The records port ([`Records`]) on the embedded store: `records_v1` keyed by (kind, id)
//! holds each record's version, index entries and body; `record_index_v1` keyed by (kind,
//! index, value, id) lists it under each of its entries. A put or delete reads the record,
//! checks the version, and changes the record and its index rows in one write transaction:
//! redb serialises write transactions, so the compare-and-set cannot interleave with another
//! writer's, and the commit that returned is durable (a crash leaves the last committed state).

use super::{blocking, io, EmbeddedStore};
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, RecordVersion, Records,
    RecordsError, StoredRecord,
};
use crate::store::StoreError;
use futures::future::BoxFuture;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

pub(super) const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records_v1");
pub(super) const RECORD_INDEX: TableDefinition<(&str, &str, &str, &str), ()> =
    TableDefinition::new("record_index_v1");

/// A stored record: version (8 bytes, big-endian), the length of the index entries' JSON
/// (4 bytes), that JSON, then the body.
fn encode(
    version: RecordVersion,
    index: &[IndexEntry],
    body: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let entries = serde_json::to_vec(index)
        .map_err(|e| StoreError::Invalid(format!("record index entries: {e}")))?;
    let len = u32::try_from(entries.len())
        .map_err(|_| StoreError::Invalid("record index entries too large".into()))?;
    let mut out = Vec::with_capacity(12 + entries.len() + body.len());
    out.extend_from_slice(&version.0.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&entries);
    out.extend_from_slice(body);
    Ok(out)
}

fn decode(id: &str, bytes: &[u8]) -> Result<StoredRecord, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("record {id}: truncated"));
    let (version, rest) = bytes.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(corrupt());
    }
    let (entries, body) = rest.split_at(len);
    Ok(StoredRecord {
        id: RecordId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        version: RecordVersion(u64::from_be_bytes(*version)),
        index: serde_json::from_slice(entries)
            .map_err(|e| StoreError::Corrupt(format!("record {id}: index entries: {e}")))?,
        body: body.to_vec(),
    })
}

fn read_record(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    kind: &str,
    id: &str,
) -> Result<Option<StoredRecord>, StoreError> {
    match t.get((kind, id)).map_err(io)? {
        Some(v) => Ok(Some(decode(id, v.value())?)),
        None => Ok(None),
    }
}

fn put_blocking(db: &Database, put: &RecordPut) -> Result<RecordVersion, RecordsError> {
    let (kind, id) = (put.kind.as_str(), put.id.as_str());
    let tx = db.begin_write().map_err(io)?;
    let version;
    {
        let mut records = tx.open_table(RECORDS).map_err(io)?;
        let mut index = tx.open_table(RECORD_INDEX).map_err(io)?;
        let current = read_record(&records, kind, id)?;
        let found = current.as_ref().map(|r| r.version);
        if found != put.expected {
            return Err(RecordsError::conflict(
                &put.kind,
                &put.id,
                put.expected,
                found,
            ));
        }
        version = RecordVersion(found.map_or(1, |v| v.0 + 1));
        for old in current.iter().flat_map(|r| &r.index) {
            index
                .remove((kind, old.index.as_str(), old.value.as_str(), id))
                .map_err(io)?;
        }
        for new in &put.index {
            index
                .insert((kind, new.index.as_str(), new.value.as_str(), id), ())
                .map_err(io)?;
        }
        let bytes = encode(version, &put.index, &put.body)?;
        records.insert((kind, id), bytes.as_slice()).map_err(io)?;
    }
    tx.commit().map_err(io)?;
    Ok(version)
}

fn delete_blocking(
    db: &Database,
    kind: &RecordKind,
    id: &RecordId,
    expected: RecordVersion,
) -> Result<(), RecordsError> {
    let tx = db.begin_write().map_err(io)?;
    {
        let mut records = tx.open_table(RECORDS).map_err(io)?;
        let mut index = tx.open_table(RECORD_INDEX).map_err(io)?;
        let current = read_record(&records, kind.as_str(), id.as_str())?;
        let found = current.as_ref().map(|r| r.version);
        if found != Some(expected) {
            return Err(RecordsError::conflict(kind, id, Some(expected), found));
        }
        for old in current.iter().flat_map(|r| &r.index) {
            index
                .remove((
                    kind.as_str(),
                    old.index.as_str(),
                    old.value.as_str(),
                    id.as_str(),
                ))
                .map_err(io)?;
        }
        records.remove((kind.as_str(), id.as_str())).map_err(io)?;
    }
    tx.commit().map_err(io)?;
    Ok(())
}

fn get_blocking(db: &Database, kind: &str, id: &str) -> Result<Option<StoredRecord>, StoreError> {
    let tx = db.begin_read().map_err(io)?;
    let records = tx.open_table(RECORDS).map_err(io)?;
    read_record(&records, kind, id)
}

fn list_blocking(
    db: &Database,
    kind: &str,
    index_name: &str,
    range: &IndexRange,
    limit: usize,
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out: Vec<StoredRecord> = Vec::new();
    if range.from > range.to || limit == 0 {
        return Ok(out);
    }
    // One read transaction: the index and the records are of the same commit.
    let tx = db.begin_read().map_err(io)?;
    let records = tx.open_table(RECORDS).map_err(io)?;
    let index = tx.open_table(RECORD_INDEX).map_err(io)?;
    // Every id sorts after "" and every (to, id) before (to + "\0", ""): ids and values are
    // compared as bytes.
    let past = format!("{}\0", range.to);
    let mut seen = std::collections::HashSet::new();
    for entry in index
        .range((kind, index_name, range.from.as_str(), "")..(kind, index_name, past.as_str(), ""))
        .map_err(io)?
    {
        let (k, _) = entry.map_err(io)?;
        let (_, _, _, id) = k.value();
        if !seen.insert(id.to_owned()) {
            continue;
        }
        match read_record(&records, kind, id)? {
            Some(record) => out.push(record),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "record index {kind}/{index_name} lists {id}, which is not there"
                )))
            }
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

impl Records for EmbeddedStore {
    fn put_record(&self, put: RecordPut) -> BoxFuture<'_, Result<RecordVersion, RecordsError>> {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || put_blocking(&db, &put))
                .await
                .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
        })
    }

    fn record(
        &self,
        kind: &RecordKind,
        id: &RecordId,
    ) -> BoxFuture<'_, Result<Option<StoredRecord>, RecordsError>> {
        let db = self.db.clone();
        let (kind, id) = (kind.as_str().to_owned(), id.as_str().to_owned());
        let read = blocking(move || get_blocking(&db, &kind, &id));
        Box::pin(async move { Ok(read.await?) })
    }

    fn list_by_index(
        &self,
        kind: &RecordKind,
        index: &IndexName,
        range: IndexRange,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, RecordsError>> {
        let db = self.db.clone();
        let (kind, index) = (kind.as_str().to_owned(), index.as_str().to_owned());
        let read = blocking(move || list_blocking(&db, &kind, &index, &range, limit));
        Box::pin(async move { Ok(read.await?) })
    }

    fn delete_record(
        &self,
        kind: &RecordKind,
        id: &RecordId,
        expected: RecordVersion,
    ) -> BoxFuture<'_, Result<(), RecordsError>> {
        let db = self.db.clone();
        let (kind, id) = (kind.clone(), id.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || delete_blocking(&db, &kind, &id, expected))
                .await
                .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
        })
    }
}
