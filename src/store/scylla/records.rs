//! The records port ([`Records`]) on ScyllaDB (`schemas/cql/0002_records.cql`): `records`, one
//! partition per (kind, id), written only by lightweight transactions (`IF NOT EXISTS` for a
//! new record, `IF version = ?` for a change or a delete), so two writers cannot lose an
//! update; `record_index`, one partition per (kind, index) with the values in order.
//!
//! An index row cannot change in the same transaction as its record (LWT batches are single
//! partition), so a put writes the new version's index rows **before** its compare-and-set
//! and removes the rows the new version dropped **after** it; a reader checks every index row
//! against the record's own entries and skips those that are not current. A crash or a failed
//! clean-up leaves at worst an extra index row, never a missing one; a losing writer removes
//! the rows it added (best effort).
//!
//! Records are read at LOCAL_SERIAL, so a read sees every compare-and-set that returned. An LWT
//! that times out has an unknown outcome: the error is retryable and the caller reads again.
//! The statements are prepared on first use, not at start-up: a node that keeps no records
//! pays nothing, and the smoke tests' CQL peer (kassandra) is never asked for them. kassandra
//! cannot run this port at all: it ignores `IF` conditions (no `[applied]` column comes back)
//! and refuses a request that carries a serial consistency ("Could not parse query
//! parameters"), so even a read fails there; `conformance::run_records` runs against the
//! embedded store and a real cluster only.

use super::{driver_error, prepare, ScyllaStore};
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, RecordVersion, Records,
    RecordsError, StoredRecord,
};
use crate::store::StoreError;
use futures::future::BoxFuture;
use scylla::response::query_result::QueryResult;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlValue, Row};
use std::collections::HashSet;

/// The prepared statements of the records port.
#[derive(Debug)]
pub(super) struct RecordStatements {
    insert_new: PreparedStatement,
    update: PreparedStatement,
    delete: PreparedStatement,
    get: PreparedStatement,
    index_put: PreparedStatement,
    index_delete: PreparedStatement,
    index_range: PreparedStatement,
}

/// What preparing the records statements needs from the configuration.
#[derive(Debug, Clone)]
pub(super) struct RecordsSettings {
    pub keyspace: String,
    pub read: Consistency,
    pub write: Consistency,
    pub page_size: u32,
}

async fn lwt(
    session: &scylla::client::session::Session,
    cql: String,
    settings: &RecordsSettings,
) -> Result<PreparedStatement, StoreError> {
    let mut statement = prepare(session, cql, settings.write, settings.page_size).await?;
    // A compare-and-set sent twice may fail the second time against its own first write.
    statement.set_is_idempotent(false);
    statement.set_serial_consistency(Some(SerialConsistency::LocalSerial));
    Ok(statement)
}

pub(super) async fn prepare_records(
    session: &scylla::client::session::Session,
    settings: &RecordsSettings,
) -> Result<RecordStatements, StoreError> {
    let ks = &settings.keyspace;
    let (write, page) = (settings.write, settings.page_size);
    Ok(RecordStatements {
        insert_new: lwt(
            session,
            format!(
                "INSERT INTO {ks}.records (kind, id, version, body, entries) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
            ),
            settings,
        )
        .await?,
        update: lwt(
            session,
            format!(
                "UPDATE {ks}.records SET version = ?, body = ?, entries = ? WHERE kind = ? AND id = ? IF version = ?"
            ),
            settings,
        )
        .await?,
        delete: lwt(
            session,
            format!("DELETE FROM {ks}.records WHERE kind = ? AND id = ? IF version = ?"),
            settings,
        )
        .await?,
        get: prepare(
            session,
            format!("SELECT version, body, entries FROM {ks}.records WHERE kind = ? AND id = ?"),
            Consistency::LocalSerial,
            page,
        )
        .await?,
        index_put: prepare(
            session,
            format!(
                "INSERT INTO {ks}.record_index (kind, index_name, value, id) VALUES (?, ?, ?, ?)"
            ),
            write,
            page,
        )
        .await?,
        index_delete: prepare(
            session,
            format!(
                "DELETE FROM {ks}.record_index WHERE kind = ? AND index_name = ? AND value = ? AND id = ?"
            ),
            write,
            page,
        )
        .await?,
        index_range: prepare(
            session,
            format!(
                "SELECT value, id FROM {ks}.record_index WHERE kind = ? AND index_name = ? AND value >= ? AND value <= ?"
            ),
            settings.read,
            page,
        )
        .await?,
    })
}

fn version_from_cql(v: i64) -> RecordVersion {
    RecordVersion(u64::try_from(v).unwrap_or(0))
}

fn version_to_cql(v: RecordVersion) -> Result<i64, StoreError> {
    i64::try_from(v.0).map_err(|_| StoreError::Invalid(format!("record version {v} too large")))
}

/// Whether a lightweight transaction applied, and the version it found when it did not.
fn lwt_outcome(
    result: QueryResult,
    what: &str,
) -> Result<(bool, Option<RecordVersion>), StoreError> {
    let rows = result
        .into_rows_result()
        .map_err(|e| StoreError::Corrupt(format!("{what}: no LWT result: {e}")))?;
    let specs = rows.column_specs();
    let applied_at = specs
        .get_by_name("[applied]")
        .map(|(i, _)| i)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: no [applied] column")))?;
    let version_at = specs.get_by_name("version").map(|(i, _)| i);
    let row: Row = rows
        .single_row::<Row>()
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    let applied = matches!(
        row.columns.get(applied_at),
        Some(Some(CqlValue::Boolean(true)))
    );
    let found = version_at
        .and_then(|i| row.columns.get(i))
        .and_then(|c| match c {
            Some(CqlValue::BigInt(v)) => Some(version_from_cql(*v)),
            _ => None,
        });
    Ok((applied, found))
}

impl ScyllaStore {
    async fn record_statements(&self) -> Result<&RecordStatements, StoreError> {
        self.records
            .get_or_try_init(|| prepare_records(&self.session, &self.records_settings))
            .await
    }

    async fn read_record(
        &self,
        kind: &RecordKind,
        id: &RecordId,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let statements = self.record_statements().await?;
        let what = "reading a record";
        let rows = self
            .session
            .execute_unpaged(&statements.get, (kind.as_str(), id.as_str()))
            .await
            .map_err(|e| driver_error(what, e))?
            .into_rows_result()
            .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
        let row = rows
            .maybe_first_row::<(i64, Option<Vec<u8>>, Option<Vec<u8>>)>()
            .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
        let Some((version, body, entries)) = row else {
            return Ok(None);
        };
        let index: Vec<IndexEntry> = serde_json::from_slice(&entries.unwrap_or_default())
            .map_err(|e| StoreError::Corrupt(format!("record {kind}/{id}: index entries: {e}")))?;
        Ok(Some(StoredRecord {
            id: id.clone(),
            version: version_from_cql(version),
            body: body.unwrap_or_default(),
            index,
        }))
    }

    /// Writes or deletes index rows of one record; the first error wins.
    async fn index_rows(
        &self,
        statement: &PreparedStatement,
        kind: &RecordKind,
        id: &RecordId,
        entries: &[&IndexEntry],
    ) -> Result<(), StoreError> {
        let writes = entries
            .iter()
            .map(|e| {
                (
                    statement,
                    (
                        kind.as_str(),
                        e.index.as_str(),
                        e.value.as_str(),
                        id.as_str(),
                    ),
                )
            })
            .collect();
        self.write_all("writing the record index", writes).await
    }

    async fn put_record_inner(&self, put: RecordPut) -> Result<RecordVersion, RecordsError> {
        let statements = self.record_statements().await?;
        let current = self.read_record(&put.kind, &put.id).await?;
        let found = current.as_ref().map(|r| r.version);
        if found != put.expected {
            return Err(RecordsError::conflict(
                &put.kind,
                &put.id,
                put.expected,
                found,
            ));
        }
        let version = RecordVersion(found.map_or(1, |v| v.0 + 1));
        let old: Vec<&IndexEntry> = current.iter().flat_map(|r| &r.index).collect();
        let added: Vec<&IndexEntry> = put.index.iter().filter(|e| !old.contains(e)).collect();
        let dropped: Vec<&IndexEntry> = old
            .iter()
            .copied()
            .filter(|e| !put.index.contains(e))
            .collect();
        self.index_rows(&statements.index_put, &put.kind, &put.id, &added)
            .await?;
        let entries = serde_json::to_vec(&put.index)
            .map_err(|e| StoreError::Invalid(format!("record index entries: {e}")))?;
        let what = "writing a record";
        let result = match put.expected {
            None => {
                self.session
                    .execute_unpaged(
                        &statements.insert_new,
                        (
                            put.kind.as_str(),
                            put.id.as_str(),
                            version_to_cql(version)?,
                            put.body.as_slice(),
                            entries.as_slice(),
                        ),
                    )
                    .await
            }
            Some(expected) => {
                self.session
                    .execute_unpaged(
                        &statements.update,
                        (
                            version_to_cql(version)?,
                            put.body.as_slice(),
                            entries.as_slice(),
                            put.kind.as_str(),
                            put.id.as_str(),
                            version_to_cql(expected)?,
                        ),
                    )
                    .await
            }
        }
        .map_err(|e| driver_error(what, e))?;
        let (applied, found_now) = lwt_outcome(result, what)?;
        if !applied {
            // Another writer won: take back the rows this put added that the winner lacks.
            if let Ok(now) = self.read_record(&put.kind, &put.id).await {
                let keep: Vec<&IndexEntry> = now.iter().flat_map(|r| &r.index).collect();
                let stray: Vec<&IndexEntry> =
                    added.into_iter().filter(|e| !keep.contains(e)).collect();
                if let Err(error) = self
                    .index_rows(&statements.index_delete, &put.kind, &put.id, &stray)
                    .await
                {
                    tracing::debug!(kind = %put.kind, id = %put.id, %error, "stray record index rows stay (ignored by readers)");
                }
            }
            return Err(RecordsError::conflict(
                &put.kind,
                &put.id,
                put.expected,
                found_now,
            ));
        }
        if let Err(error) = self
            .index_rows(&statements.index_delete, &put.kind, &put.id, &dropped)
            .await
        {
            // The put is done; readers skip index rows that are no longer the record's.
            tracing::warn!(kind = %put.kind, id = %put.id, %error, "old record index rows stay (ignored by readers)");
        }
        Ok(version)
    }

    async fn list_inner(
        &self,
        kind: &RecordKind,
        index: &IndexName,
        range: IndexRange,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, RecordsError> {
        let mut out = Vec::new();
        if range.from > range.to || limit == 0 {
            return Ok(out);
        }
        let statements = self.record_statements().await?;
        let mut rows: Vec<(String, String)> = Vec::new();
        self.read_rows(
            "reading the record index",
            &statements.index_range,
            (
                kind.as_str(),
                index.as_str(),
                range.from.as_str(),
                range.to.as_str(),
            ),
            |row: (String, String)| {
                rows.push(row);
                true
            },
        )
        .await?;
        let mut seen = HashSet::new();
        for (value, id) in rows {
            if seen.contains(&id) {
                continue;
            }
            let Ok(record_id) = RecordId::new(&id) else {
                continue;
            };
            let Some(record) = self.read_record(kind, &record_id).await? else {
                continue;
            };
            // An index row the record no longer has (a crash, a lost writer) is skipped.
            if record
                .index
                .iter()
                .any(|e| &e.index == index && e.value == value)
            {
                seen.insert(id);
                out.push(record);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn delete_inner(
        &self,
        kind: &RecordKind,
        id: &RecordId,
        expected: RecordVersion,
    ) -> Result<(), RecordsError> {
        let statements = self.record_statements().await?;
        let current = self.read_record(kind, id).await?;
        let found = current.as_ref().map(|r| r.version);
        if found != Some(expected) {
            return Err(RecordsError::conflict(kind, id, Some(expected), found));
        }
        let what = "deleting a record";
        let result = self
            .session
            .execute_unpaged(
                &statements.delete,
                (kind.as_str(), id.as_str(), version_to_cql(expected)?),
            )
            .await
            .map_err(|e| driver_error(what, e))?;
        let (applied, found_now) = lwt_outcome(result, what)?;
        if !applied {
            return Err(RecordsError::conflict(kind, id, Some(expected), found_now));
        }
        let old: Vec<&IndexEntry> = current.iter().flat_map(|r| &r.index).collect();
        if let Err(error) = self
            .index_rows(&statements.index_delete, kind, id, &old)
            .await
        {
            tracing::warn!(%kind, %id, %error, "index rows of a deleted record stay (ignored by readers)");
        }
        Ok(())
    }
}

impl Records for ScyllaStore {
    fn put_record(&self, put: RecordPut) -> BoxFuture<'_, Result<RecordVersion, RecordsError>> {
        Box::pin(self.put_record_inner(put))
    }

    fn record(
        &self,
        kind: &RecordKind,
        id: &RecordId,
    ) -> BoxFuture<'_, Result<Option<StoredRecord>, RecordsError>> {
        let (kind, id) = (kind.clone(), id.clone());
        Box::pin(async move { Ok(self.read_record(&kind, &id).await?) })
    }

    fn list_by_index(
        &self,
        kind: &RecordKind,
        index: &IndexName,
        range: IndexRange,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredRecord>, RecordsError>> {
        let (kind, index) = (kind.clone(), index.clone());
        Box::pin(async move { self.list_inner(&kind, &index, range, limit).await })
    }

    fn delete_record(
        &self,
        kind: &RecordKind,
        id: &RecordId,
        expected: RecordVersion,
    ) -> BoxFuture<'_, Result<(), RecordsError>> {
        let (kind, id) = (kind.clone(), id.clone());
        Box::pin(async move { self.delete_inner(&kind, &id, expected).await })
    }
}
