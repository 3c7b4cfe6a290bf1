//! The ScyllaDB backend of the storage port ([`Store`]): the store of a multi-node,
//! multi-data-centre deployment, where a shard that moves to another node rehydrates from the
//! shared cluster.
//!
//! **Owns** a driver session (the `scylla` crate, 1.x) whose connection tasks run on the store's
//! I/O runtime, and the prepared statements of every data access. **Receives** the calls of the
//! [`Store`] trait; **emits** nothing. When the cluster is unreachable or too slow, calls fail
//! with a retryable [`StoreError::Unavailable`] and the historian keeps the data queued (and
//! spilled to its local write-ahead) until the cluster is back: this store never buffers.
//!
//! Data model (`schemas/cql/0001_initial.cql`, applied at start-up by [`schema`]):
//! - chunks in one table per series, partitioned by `(point, bucket)` with the chunk `start` as
//!   clustering key; buckets are a day (raw), 30 days (1 m) or 365 days (1 h) ([`buckets`]).
//!   Raw (and 1 m) chunks are written `USING TTL` the configured retention, into tables with
//!   TimeWindowCompactionStrategy; [`Store::expire`] therefore does nothing and returns 0.
//! - `partition_index`: which buckets of a point's series (or an event stream) hold rows, so
//!   that a query reads only those partitions, whatever its range (a request for "everything"
//!   does not walk millions of empty days). Written before the rows it points to, so a reader
//!   never misses a written row; read whole (a few rows per point) and filtered here.
//! - `state` by `(kind)` partition and `key` clustering; `events` by `(stream, day)` partition
//!   and `(t, id)` clustering.
//! - `records` and `record_index` (`schemas/cql/0002_records.cql`): the records port, the one
//!   place that uses lightweight transactions ([`records`]).
//!
//! Consistency: LOCAL_QUORUM for reads and writes by default (configurable), requests routed
//! token-aware to the local data centre only. Every statement of the [`Store`] port is prepared
//! and plain (no counters, no lists, no LWT), so every one is marked idempotent and the driver
//! may retry or re-send it; writing the same key again replaces it. Client-side monotonic timestamps make a
//! later call of this process win over an earlier one (a re-written chunk after a compaction's
//! delete, a state record written twice).
//!
//! Where this backend differs from the embedded one, as the port allows:
//! - `put_chunks` writes concurrently (at most `max_concurrent_writes` in flight); on error some
//!   chunks may be written and others not, and the caller retries the whole call (idempotent).
//!   `replace_chunks_batch` is not one transaction: its puts, then its deletes, each
//!   idempotent, so a retry after a partial failure converges.
//! - `put_state` is one single-partition batch, which ScyllaDB applies atomically, as long as
//!   it stays under [`STATE_BATCH_BYTES`]; a larger call is split into several batches, each
//!   atomic, the whole converging on retry. Within one call the last record of a key wins
//!   (records of one batch share a timestamp, where a delete would beat a write).
//! - `expire` returns 0: TTLs expire data, compaction drops it.

mod buckets;
mod config;
mod records;
mod schema;

#[cfg(test)]
pub(crate) mod cql_peer;
#[cfg(test)]
pub(crate) mod tests;

pub use config::{
    valid_keyspace, ConsistencyLevel, ScyllaConfig, ScyllaConfigError, ScyllaTlsConfig,
    ScyllaTtlConfig, MAX_TTL,
};
pub use schema::{Migration, MIGRATIONS};

use super::{
    ChunkKey, ChunkReplacement, Series, StateRecords, Store, StoreError, StoredChunk, StoredEvent,
    MAX_CHUNK_SPAN,
};
use buckets::{plan_reads, BucketRead, Family};
use cistern_schemas::{PointId, Timestamp};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::{
    DbError, ExecutionError, NewSessionError, NextPageError, NextRowError, PagerExecutionError,
    PrepareError, RequestAttemptError, RequestError, UseKeyspaceError,
};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Consistency;
use scylla::value::CqlValue;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// The largest `put_state` batch, in bytes of values: under ScyllaDB's default
/// `batch_size_fail_threshold_in_kb` (1024) with room for the statement overhead.
pub const STATE_BATCH_BYTES: usize = 512 * 1024;

/// Partitions of one range query read at once.
const PARALLEL_BUCKET_READS: usize = 8;

/// The ScyllaDB store.
#[derive(Debug)]
pub struct ScyllaStore {
    session: Arc<Session>,
    statements: Statements,
    max_concurrent_writes: usize,
    write_consistency: Consistency,
    /// The records port's statements, prepared on first use ([`records`]).
    records: tokio::sync::OnceCell<records::RecordStatements>,
    records_settings: records::RecordsSettings,
}

/// The prepared statements of one chunk series.
#[derive(Debug)]
struct SeriesStatements {
    insert: PreparedStatement,
    index: PreparedStatement,
    whole: PreparedStatement,
    range: PreparedStatement,
    delete: PreparedStatement,
}

#[derive(Debug)]
struct Statements {
    raw: SeriesStatements,
    minute: SeriesStatements,
    hour: SeriesStatements,
    read_index: PreparedStatement,
    index_event: PreparedStatement,
    insert_event: PreparedStatement,
    events_whole: PreparedStatement,
    events_range: PreparedStatement,
    put_state: PreparedStatement,
    delete_state: PreparedStatement,
    read_state: PreparedStatement,
}

impl Statements {
    fn series(&self, series: Series) -> &SeriesStatements {
        match series {
            Series::Raw => &self.raw,
            Series::Minute => &self.minute,
            Series::Hour => &self.hour,
        }
    }
}

/// Stored `events.id`: the u64 with its top bit flipped, so that signed order is u64 order.
fn id_to_cql(id: u64) -> i64 {
    (id ^ (1 << 63)) as i64
}

fn id_from_cql(id: i64) -> u64 {
    (id as u64) ^ (1 << 63)
}

/// TTL clause value (seconds; 0 = none) of an index row: it must outlive every row of its
/// bucket, which may be written up to a bucket's width after the first.
fn index_ttl(ttl: Duration, family: Family) -> u64 {
    if ttl.is_zero() {
        return 0;
    }
    let width = Duration::from_millis(family.width_ms().unsigned_abs());
    (ttl + width + Duration::from_secs(86_400))
        .min(MAX_TTL)
        .as_secs()
}

impl ScyllaStore {
    /// Connects, creates the keyspace when configured to, applies pending migrations and
    /// prepares every statement. Call it on the runtime that will drive the store (the
    /// driver's connection tasks are spawned there).
    pub async fn connect(config: &ScyllaConfig) -> Result<Self, StoreError> {
        config
            .validate()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let deadline = config.connect_timeout;
        tokio::time::timeout(deadline, Self::connect_inner(config))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "ScyllaDB at {} did not come up within {deadline:?} (connect_timeout)",
                    config.nodes.join(", ")
                ))
            })?
    }

    async fn connect_inner(config: &ScyllaConfig) -> Result<Self, StoreError> {
        let policy = DefaultPolicy::builder()
            .prefer_datacenter(config.local_dc.clone())
            .permit_dc_failover(false)
            .token_aware(true)
            .build();
        let profile = ExecutionProfile::builder()
            .consistency(config.write_consistency.to_driver())
            .request_timeout(Some(config.request_timeout))
            .load_balancing_policy(policy)
            .build()
            .into_handle();
        let mut builder = SessionBuilder::new()
            .known_nodes(&config.nodes)
            .default_execution_profile_handle(profile)
            .connection_timeout(config.request_timeout)
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            // Routing needs keyspaces, tables and partitioners, not columns or UDTs.
            .fetch_full_schema_metadata(false);
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.user(user, password);
        }
        if config.tls.enabled {
            builder = tls::with_tls(builder, &config.tls)?;
        }
        let session = builder.build().await.map_err(|e| {
            let what = format!("connecting to ScyllaDB at {}", config.nodes.join(", "));
            new_session_error(&what, e)
        })?;
        // A misspelt local_dc would leave every request without a replica to go to.
        let cluster = session.get_cluster_state();
        let dcs: BTreeSet<&str> = cluster
            .get_nodes_info()
            .iter()
            .filter_map(|n| n.datacenter.as_deref())
            .collect();
        if dcs.is_empty() {
            return Err(StoreError::Unavailable(format!(
                "could not read the topology of the cluster at {} (system.local, system.peers)",
                config.nodes.join(", ")
            )));
        }
        if !dcs.contains(config.local_dc.as_str()) {
            return Err(StoreError::Invalid(format!(
                "[store.scylla] local_dc = {:?} is not a data centre of the cluster at {} (its \
                 nodes report: {})",
                config.local_dc,
                config.nodes.join(", "),
                dcs.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        drop(cluster);
        let applied = schema::migrate(&session, config).await?;
        if !applied.is_empty() {
            tracing::info!(keyspace = %config.keyspace, ?applied, "ScyllaDB schema migrated");
        }
        let statements = prepare_all(&session, config).await?;
        Ok(Self {
            session: Arc::new(session),
            statements,
            max_concurrent_writes: config.max_concurrent_writes,
            write_consistency: config.write_consistency.to_driver(),
            records: tokio::sync::OnceCell::new(),
            records_settings: records::RecordsSettings {
                keyspace: config.keyspace.clone(),
                read: config.read_consistency.to_driver(),
                write: config.write_consistency.to_driver(),
                page_size: config.page_size,
            },
        })
    }

    /// Runs `writes` with at most `max_concurrent_writes` in flight; the first error wins.
    async fn write_all<V: SerializeRow + Send + Sync>(
        &self,
        what: &str,
        writes: Vec<(&PreparedStatement, V)>,
    ) -> Result<(), StoreError> {
        futures::stream::iter(writes.into_iter().map(Ok))
            .try_for_each_concurrent(
                self.max_concurrent_writes,
                |(statement, values)| async move {
                    self.session
                        .execute_unpaged(statement, values)
                        .await
                        .map(|_| ())
                        .map_err(|e| driver_error(what, e))
                },
            )
            .await
    }

    /// Reads every row of a (paged) query, until `keep` says stop.
    async fn read_rows<R>(
        &self,
        what: &str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        mut keep: impl FnMut(R) -> bool,
    ) -> Result<(), StoreError>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
    {
        let pager = self
            .session
            .execute_iter(statement.clone(), values)
            .await
            .map_err(|e| driver_error(what, e))?;
        let mut rows = pager
            .rows_stream::<R>()
            .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
        while let Some(row) = rows.next().await {
            let row = row.map_err(|e| driver_error(what, e))?;
            if !keep(row) {
                break;
            }
        }
        Ok(())
    }

    /// The non-empty buckets of `key` in `family`, from the partition index.
    async fn known_buckets(&self, family: Family, key: &str) -> Result<Vec<i64>, StoreError> {
        let mut out = Vec::new();
        self.read_rows(
            "reading the partition index",
            &self.statements.read_index,
            (family.as_str(), key),
            |(bucket,): (i64,)| {
                out.push(bucket);
                true
            },
        )
        .await?;
        Ok(out)
    }

    /// Writes chunks of any points and series: index rows first (each distinct bucket once),
    /// then the chunks; the last chunk of a key in the call wins.
    async fn put_chunks_inner(&self, chunks: Vec<(ChunkKey, Vec<u8>)>) -> Result<(), StoreError> {
        let mut latest: BTreeMap<(Series, String, i64), Vec<u8>> = BTreeMap::new();
        for (key, bytes) in chunks {
            latest.insert((key.series, key.point.to_string(), key.start.0), bytes);
        }
        let buckets: BTreeSet<(Series, &str, i64)> = latest
            .keys()
            .map(|(s, p, start)| (*s, p.as_str(), Family::Chunks(*s).bucket(*start)))
            .collect();
        let index = buckets
            .into_iter()
            .map(|(s, p, b)| {
                let family = Family::Chunks(s).as_str();
                (&self.statements.series(s).index, (family, p, b))
            })
            .collect();
        self.write_all("writing the partition index", index).await?;
        let rows = latest
            .iter()
            .map(|((s, p, start), bytes)| {
                let bucket = Family::Chunks(*s).bucket(*start);
                (
                    &self.statements.series(*s).insert,
                    (p.as_str(), bucket, *start, bytes.as_slice()),
                )
            })
            .collect();
        self.write_all("writing chunks", rows).await
    }

    async fn chunks_inner(
        &self,
        point: String,
        series: Series,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        let lookback = (from - MAX_CHUNK_SPAN).0;
        if lookback > to.0 {
            return Ok(Vec::new());
        }
        let family = Family::Chunks(series);
        let known = self.known_buckets(family, &point).await?;
        let what = format!("reading {} chunks of {point}", series.as_str());
        let st = self.statements.series(series);
        let point = point.as_str();
        let what = what.as_str();
        // A long range spans many partitions: read a few at once, keep them in time order.
        let parts: Vec<Vec<StoredChunk>> =
            futures::stream::iter(plan_reads(family, &known, lookback, to.0))
                .map(|read| async move {
                    let mut part = Vec::new();
                    let push = |(start, data): (i64, Vec<u8>)| {
                        part.push((Timestamp(start), data));
                        true
                    };
                    match read {
                        BucketRead::Whole(b) => {
                            self.read_rows(what, &st.whole, (point, b), push).await?
                        }
                        BucketRead::Range { bucket, lo, hi } => {
                            self.read_rows(what, &st.range, (point, bucket, lo, hi), push)
                                .await?
                        }
                    }
                    Ok::<_, StoreError>(part)
                })
                .buffered(PARALLEL_BUCKET_READS)
                .try_collect()
                .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// Every put of the batch (idempotent, concurrent), then the full-key deletes of the
    /// removed chunks that no put of the batch rewrote.
    async fn replace_chunks_batch_inner(
        &self,
        batch: Vec<ChunkReplacement>,
    ) -> Result<(), StoreError> {
        let mut puts = Vec::new();
        let mut rewritten: BTreeSet<(Series, String, i64)> = BTreeSet::new();
        let mut removes: Vec<(Series, String, i64)> = Vec::new();
        for r in batch {
            let name = r.point.to_string();
            for (start, bytes) in r.put {
                rewritten.insert((r.series, name.clone(), start.0));
                let key = ChunkKey {
                    point: r.point.clone(),
                    series: r.series,
                    start,
                };
                puts.push((key, bytes));
            }
            removes.extend(r.remove.iter().map(|t| (r.series, name.clone(), t.0)));
        }
        self.put_chunks_inner(puts).await?;
        removes.retain(|k| !rewritten.contains(k));
        removes.sort();
        removes.dedup();
        let deletes = removes
            .iter()
            .map(|(series, name, start)| {
                let family = Family::Chunks(*series);
                (
                    &self.statements.series(*series).delete,
                    (name.as_str(), family.bucket(*start), *start),
                )
            })
            .collect();
        self.write_all("removing compacted chunks", deletes).await
    }

    async fn put_state_inner(
        &self,
        kind: String,
        records: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(), StoreError> {
        let latest: BTreeMap<String, Option<Vec<u8>>> = records.into_iter().collect();
        let mut batches: Vec<(Batch, Vec<Vec<CqlValue>>)> = Vec::new();
        let mut size = usize::MAX;
        for (key, value) in latest {
            let bytes = kind.len() + key.len() + value.as_ref().map_or(0, Vec::len);
            if size.saturating_add(bytes) > STATE_BATCH_BYTES {
                let mut batch = Batch::new(BatchType::Unlogged);
                batch.set_is_idempotent(true);
                batch.set_consistency(self.write_consistency);
                batches.push((batch, Vec::new()));
                size = 0;
            }
            size += bytes;
            let Some((batch, values)) = batches.last_mut() else {
                continue;
            };
            match value {
                Some(v) => {
                    batch.append_statement(self.statements.put_state.clone());
                    values.push(vec![
                        CqlValue::Text(kind.clone()),
                        CqlValue::Text(key),
                        CqlValue::Blob(v),
                    ]);
                }
                None => {
                    batch.append_statement(self.statements.delete_state.clone());
                    values.push(vec![CqlValue::Text(kind.clone()), CqlValue::Text(key)]);
                }
            }
        }
        for (batch, values) in batches {
            self.session
                .batch(&batch, values)
                .await
                .map_err(|e| driver_error(&format!("writing state of kind {kind}"), e))?;
        }
        Ok(())
    }

    async fn state_inner(&self, kind: String) -> Result<StateRecords, StoreError> {
        let mut out = Vec::new();
        self.read_rows(
            &format!("reading state of kind {kind}"),
            &self.statements.read_state,
            (kind.as_str(),),
            |row: (String, Vec<u8>)| {
                out.push(row);
                true
            },
        )
        .await?;
        // Clustering order is byte order, as is `str`'s: this only guards the port's promise.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn append_events_inner(
        &self,
        stream: String,
        events: Vec<StoredEvent>,
    ) -> Result<(), StoreError> {
        let family = Family::Events;
        let buckets: BTreeSet<i64> = events.iter().map(|e| family.bucket(e.t.0)).collect();
        let index = buckets
            .into_iter()
            .map(|b| {
                (
                    &self.statements.index_event,
                    (family.as_str(), stream.as_str(), b),
                )
            })
            .collect();
        self.write_all("writing the partition index", index).await?;
        let latest: BTreeMap<(i64, u64), Vec<u8>> = events
            .into_iter()
            .map(|e| ((e.t.0, e.id), e.body))
            .collect();
        let rows = latest
            .iter()
            .map(|((t, id), body)| {
                (
                    &self.statements.insert_event,
                    (
                        stream.as_str(),
                        family.bucket(*t),
                        *t,
                        id_to_cql(*id),
                        body.as_slice(),
                    ),
                )
            })
            .collect();
        self.write_all(&format!("appending events to {stream}"), rows)
            .await
    }

    async fn events_inner(
        &self,
        stream: String,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        if from > to || limit == 0 {
            return Ok(out);
        }
        let family = Family::Events;
        let known = self.known_buckets(family, &stream).await?;
        let what = format!("reading events of {stream}");
        for read in plan_reads(family, &known, from.0, to.0) {
            let push = |(t, id, body): (i64, i64, Vec<u8>)| {
                out.push(StoredEvent {
                    t: Timestamp(t),
                    id: id_from_cql(id),
                    body,
                });
                out.len() < limit
            };
            match read {
                BucketRead::Whole(b) => {
                    self.read_rows(
                        &what,
                        &self.statements.events_whole,
                        (stream.as_str(), b),
                        push,
                    )
                    .await?
                }
                BucketRead::Range { bucket, lo, hi } => {
                    self.read_rows(
                        &what,
                        &self.statements.events_range,
                        (stream.as_str(), bucket, lo, hi),
                        push,
                    )
                    .await?
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

async fn prepare(
    session: &Session,
    cql: String,
    consistency: Consistency,
    page_size: u32,
) -> Result<PreparedStatement, StoreError> {
    let mut statement = session
        .prepare(cql.as_str())
        .await
        .map_err(|e| driver_error(&format!("preparing `{cql}`"), e))?;
    statement.set_consistency(consistency);
    // Plain INSERT/DELETE/SELECT of fixed values: running one twice changes nothing.
    statement.set_is_idempotent(true);
    statement.set_page_size(i32::try_from(page_size).unwrap_or(i32::MAX));
    Ok(statement)
}

async fn prepare_all(session: &Session, config: &ScyllaConfig) -> Result<Statements, StoreError> {
    let ks = &config.keyspace;
    let read = config.read_consistency.to_driver();
    let write = config.write_consistency.to_driver();
    let page = config.page_size;
    let series = |s: Series| {
        let table = Family::Chunks(s).as_str();
        let ttl = config.ttl.of(s).as_secs();
        let index_ttl = index_ttl(config.ttl.of(s), Family::Chunks(s));
        async move {
            Ok::<_, StoreError>(SeriesStatements {
                // The TTL is fixed for the life of the process: part of the statement.
                insert: prepare(
                    session,
                    format!(
                        "INSERT INTO {ks}.{table} (point, bucket, start, data) VALUES (?, ?, ?, ?) USING TTL {ttl}"
                    ),
                    write,
                    page,
                )
                .await?,
                index: prepare(
                    session,
                    format!(
                        "INSERT INTO {ks}.partition_index (family, key, bucket) VALUES (?, ?, ?) USING TTL {index_ttl}"
                    ),
                    write,
                    page,
                )
                .await?,
                whole: prepare(
                    session,
                    format!("SELECT start, data FROM {ks}.{table} WHERE point = ? AND bucket = ?"),
                    read,
                    page,
                )
                .await?,
                range: prepare(
                    session,
                    format!(
                        "SELECT start, data FROM {ks}.{table} WHERE point = ? AND bucket = ? AND start >= ? AND start <= ?"
                    ),
                    read,
                    page,
                )
                .await?,
                delete: prepare(
                    session,
                    format!("DELETE FROM {ks}.{table} WHERE point = ? AND bucket = ? AND start = ?"),
                    write,
                    page,
                )
                .await?,
            })
        }
    };
    Ok(Statements {
        raw: series(Series::Raw).await?,
        minute: series(Series::Minute).await?,
        hour: series(Series::Hour).await?,
        read_index: prepare(
            session,
            format!("SELECT bucket FROM {ks}.partition_index WHERE family = ? AND key = ?"),
            read,
            page,
        )
        .await?,
        index_event: prepare(
            session,
            format!("INSERT INTO {ks}.partition_index (family, key, bucket) VALUES (?, ?, ?)"),
            write,
            page,
        )
        .await?,
        insert_event: prepare(
            session,
            format!("INSERT INTO {ks}.events (stream, bucket, t, id, body) VALUES (?, ?, ?, ?, ?)"),
            write,
            page,
        )
        .await?,
        events_whole: prepare(
            session,
            format!("SELECT t, id, body FROM {ks}.events WHERE stream = ? AND bucket = ?"),
            read,
            page,
        )
        .await?,
        events_range: prepare(
            session,
            format!(
                "SELECT t, id, body FROM {ks}.events WHERE stream = ? AND bucket = ? AND t >= ? AND t <= ?"
            ),
            read,
            page,
        )
        .await?,
        put_state: prepare(
            session,
            format!("INSERT INTO {ks}.state (kind, key, value) VALUES (?, ?, ?)"),
            write,
            page,
        )
        .await?,
        delete_state: prepare(
            session,
            format!("DELETE FROM {ks}.state WHERE kind = ? AND key = ?"),
            write,
            page,
        )
        .await?,
        read_state: prepare(
            session,
            format!("SELECT key, value FROM {ks}.state WHERE kind = ?"),
            read,
            page,
        )
        .await?,
    })
}

impl Store for ScyllaStore {
    fn put_chunks(
        &self,
        chunks: Vec<(ChunkKey, Vec<u8>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.put_chunks_inner(chunks))
    }

    fn chunks(
        &self,
        point: &PointId,
        series: Series,
        from: Timestamp,
        to: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<StoredChunk>, StoreError>> {
        Box::pin(self.chunks_inner(point.to_string(), series, from, to))
    }

    fn replace_chunks_batch(
        &self,
        batch: Vec<ChunkReplacement>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.replace_chunks_batch_inner(batch))
    }

    /// TTLs expire data in ScyllaDB, and TimeWindowCompactionStrategy drops whole expired
    /// SSTables: nothing to do here.
    fn expire(
        &self,
        _series: Series,
        _before: Timestamp,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async { Ok(0) })
    }

    fn put_state(
        &self,
        kind: &str,
        records: Vec<(String, Option<Vec<u8>>)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.put_state_inner(kind.to_owned(), records))
    }

    fn state(&self, kind: &str) -> BoxFuture<'_, Result<StateRecords, StoreError>> {
        Box::pin(self.state_inner(kind.to_owned()))
    }

    fn append_events(
        &self,
        stream: &str,
        events: Vec<StoredEvent>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.append_events_inner(stream.to_owned(), events))
    }

    fn events(
        &self,
        stream: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        Box::pin(self.events_inner(stream.to_owned(), from, to, limit))
    }
}

/// Driver errors as the port's: what the server refused (bad statement, permissions, types)
/// is [`StoreError::Invalid`] and will not get better by retrying; everything about reaching
/// replicas in time is [`StoreError::Unavailable`], and the historian keeps the data queued.
pub(crate) trait DriverError: std::fmt::Display {
    fn is_permanent(&self) -> bool;
}

fn attempt_is_permanent(e: &RequestAttemptError) -> bool {
    match e {
        RequestAttemptError::DbError(db, _) => matches!(
            db,
            DbError::SyntaxError
                | DbError::Invalid
                | DbError::Unauthorized
                | DbError::AuthenticationError
                | DbError::ConfigError
                | DbError::AlreadyExists { .. }
                | DbError::FunctionFailure { .. }
        ),
        RequestAttemptError::SerializationError(_)
        | RequestAttemptError::CqlRequestSerialization(_) => true,
        _ => false,
    }
}

impl DriverError for PrepareError {
    fn is_permanent(&self) -> bool {
        match self {
            PrepareError::AllAttemptsFailed { first_attempt } => {
                attempt_is_permanent(first_attempt)
            }
            _ => false,
        }
    }
}

impl DriverError for ExecutionError {
    fn is_permanent(&self) -> bool {
        match self {
            ExecutionError::BadQuery(_) => true,
            ExecutionError::LastAttemptError(e) => attempt_is_permanent(e),
            ExecutionError::PrepareError(e) => e.is_permanent(),
            ExecutionError::UseKeyspaceError(e) => e.is_permanent(),
            _ => false,
        }
    }
}

impl DriverError for UseKeyspaceError {
    fn is_permanent(&self) -> bool {
        match self {
            UseKeyspaceError::BadKeyspaceName(_) => true,
            UseKeyspaceError::RequestError(e) => attempt_is_permanent(e),
            _ => false,
        }
    }
}

impl DriverError for NextPageError {
    fn is_permanent(&self) -> bool {
        match self {
            NextPageError::RequestFailure(RequestError::LastAttemptError(e)) => {
                attempt_is_permanent(e)
            }
            NextPageError::TypeCheckError(_) => true,
            _ => false,
        }
    }
}

impl DriverError for PagerExecutionError {
    fn is_permanent(&self) -> bool {
        match self {
            PagerExecutionError::PrepareError(e) => e.is_permanent(),
            PagerExecutionError::SerializationError(_) => true,
            PagerExecutionError::NextPageError(e) => e.is_permanent(),
            PagerExecutionError::UseKeyspaceError(e) => e.is_permanent(),
            _ => false,
        }
    }
}

impl DriverError for NextRowError {
    fn is_permanent(&self) -> bool {
        match self {
            NextRowError::NextPageError(e) => e.is_permanent(),
            _ => true,
        }
    }
}

pub(crate) fn driver_error(what: &str, e: impl DriverError) -> StoreError {
    if e.is_permanent() {
        StoreError::Invalid(format!("{what}: {e}"))
    } else {
        StoreError::Unavailable(format!("{what}: {e}"))
    }
}

fn new_session_error(what: &str, e: NewSessionError) -> StoreError {
    match e {
        NewSessionError::EmptyKnownNodesList | NewSessionError::IllegalConfig(_) => {
            StoreError::Invalid(format!("{what}: {e}"))
        }
        other => StoreError::Unavailable(format!("{what}: {other}")),
    }
}

/// TLS towards the cluster (rustls), when built with the `scylla-tls` feature.
#[cfg(feature = "scylla-tls")]
mod tls {
    use super::ScyllaTlsConfig;
    use crate::store::StoreError;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use scylla::client::session_builder::SessionBuilder;
    use std::path::Path;
    use std::sync::Arc;

    fn invalid(what: &str, path: &Path, e: impl std::fmt::Display) -> StoreError {
        StoreError::Invalid(format!("[store.scylla.tls] {what} {}: {e}", path.display()))
    }

    fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, StoreError> {
        CertificateDer::pem_file_iter(path)
            .map_err(|e| invalid("cannot read", path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("bad certificate in", path, e))
    }

    /// The nodes are verified against `ca_file`, by the address the driver connects to (so
    /// node certificates carry their IP addresses as subject alternative names).
    pub fn with_tls(
        builder: SessionBuilder,
        config: &ScyllaTlsConfig,
    ) -> Result<SessionBuilder, StoreError> {
        let Some(ca) = &config.ca_file else {
            return Err(StoreError::Invalid(
                "[store.scylla.tls] enabled needs ca_file".into(),
            ));
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(ca)? {
            roots
                .add(cert)
                .map_err(|e| invalid("unusable CA certificate in", ca, e))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Invalid(format!("[store.scylla.tls]: {e}")))?
            .with_root_certificates(roots);
        let tls = match (&config.cert_file, &config.key_file) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert)?;
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| invalid("cannot read the private key", key, e))?;
                tls.with_client_auth_cert(chain, key_der)
                    .map_err(|e| invalid("unusable client certificate", cert, e))?
            }
            _ => tls.with_no_client_auth(),
        };
        Ok(builder.tls_context(Some(Arc::new(tls))))
    }
}

/// Without the `scylla-tls` feature, TLS is refused (validation says so first).
#[cfg(not(feature = "scylla-tls"))]
mod tls {
    use super::{ScyllaConfigError, ScyllaTlsConfig};
    use crate::store::StoreError;
    use scylla::client::session_builder::SessionBuilder;

    pub fn with_tls(
        _builder: SessionBuilder,
        _config: &ScyllaTlsConfig,
    ) -> Result<SessionBuilder, StoreError> {
        Err(StoreError::Invalid(
            ScyllaConfigError::TlsNotBuilt.to_string(),
        ))
    }
}
