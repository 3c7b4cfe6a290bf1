//! Tests of the ScyllaDB backend.
//!
//! - `scylla_conformance`: the conformance suite against a real ScyllaDB. Ignored by default;
//!   run explicitly (`cargo test --lib -- --ignored scylla_conformance`, as ops/test.sh does
//!   when `CISTERN_SCYLLA_NODES` is set) it fails loudly when the variable is unset, so it
//!   never passes without a cluster.
//! - Smoke tests over the real CQL protocol against kassandra ([`super::cql_peer`]): the real
//!   driver, the real start-up (keyspace, migrations and their record, prepared statements)
//!   and the store's real statements, restricted to what kassandra does faithfully — prepared
//!   INSERT, SELECT of whole partitions (the store reads a bucket whole when the query range
//!   covers it, so the smoke tests choose such ranges), DELETE by full key, paging, batches.
//!   The conformance sub-suites that stay within that run here too
//!   (`the_conformance_sub_suites_kassandra_serves_pass_over_cql`). Not covered here, only by
//!   the conformance run against a cluster: clustering-range reads (a range that cuts a bucket:
//!   `run_chunk_ranges`, `run_event_ranges`), the records port (`run_records`: lightweight
//!   transactions, whose `IF` kassandra ignores), TTL expiry, and anything about replication,
//!   consistency levels or failover.

use super::cql_peer::CqlPeer;
use super::*;
use kassandra::frame::request::RequestOpcode;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// A day well after the epoch: bucket boundaries are multiples of DAY.
const D: i64 = 20_000 * DAY;

pub(crate) fn config_for(node: String) -> ScyllaConfig {
    let mut config = ScyllaConfig {
        nodes: vec![node],
        local_dc: "datacenter1".into(),
        connect_timeout: Duration::from_secs(20),
        ..ScyllaConfig::default()
    };
    config.replication.insert("datacenter1".into(), 1);
    config
}

async fn store_on(peer: &CqlPeer) -> ScyllaStore {
    ScyllaStore::connect(&config_for(peer.node()))
        .await
        .unwrap()
}

fn key(point: &str, series: Series, start: i64) -> ChunkKey {
    ChunkKey {
        point: point.parse().unwrap(),
        series,
        start: Timestamp(start),
    }
}

fn point(p: &str) -> PointId {
    p.parse().unwrap()
}

/// The conformance suite against a real cluster (`CISTERN_SCYLLA_NODES=host:port,…`, and
/// `CISTERN_SCYLLA_DC`, default `datacenter1`), in a fresh keyspace dropped afterwards.
#[tokio::test]
#[ignore = "needs a ScyllaDB cluster: set CISTERN_SCYLLA_NODES and run with --ignored (ops/test.sh does)"]
async fn scylla_conformance() {
    let nodes = std::env::var("CISTERN_SCYLLA_NODES").unwrap_or_default();
    assert!(
        !nodes.trim().is_empty(),
        "CISTERN_SCYLLA_NODES is unset: the ScyllaDB conformance suite cannot run, and this is \
         NOT a pass. Set it to the cluster's contact points (host:port,…)."
    );
    let dc = std::env::var("CISTERN_SCYLLA_DC").unwrap_or_else(|_| "datacenter1".into());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut config = ScyllaConfig {
        nodes: nodes.split(',').map(|n| n.trim().to_owned()).collect(),
        local_dc: dc.clone(),
        keyspace: format!("cistern_conformance_{stamp}"),
        ..ScyllaConfig::default()
    };
    config.replication.insert(dc, 1);
    let store = ScyllaStore::connect(&config).await.unwrap();
    crate::store::conformance::run(&store).await;
    crate::store::conformance::run_batched_replace(&store).await;
    crate::store::conformance::run_records(&store).await;
    // Retention is by TTL: `expire` deletes nothing (run_expiring does not apply).
    assert_eq!(
        store
            .expire(Series::Raw, Timestamp(i64::MAX))
            .await
            .unwrap(),
        0
    );
    store
        .session
        .query_unpaged(format!("DROP KEYSPACE {}", config.keyspace), ())
        .await
        .unwrap();
}

#[tokio::test]
async fn start_up_creates_the_keyspace_applies_and_records_the_migrations() {
    let peer = CqlPeer::start().await;
    let config = config_for(peer.node());
    let store = ScyllaStore::connect(&config).await.unwrap();
    let rows = store
        .session
        .query_unpaged(
            "SELECT version, name, checksum FROM cistern.schema_migrations",
            (),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let recorded: Vec<(i32, String, String)> = rows
        .rows::<(i32, String, String)>()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<(i32, String, String)> = MIGRATIONS
        .iter()
        .map(|m| (m.version, m.name.to_owned(), m.checksum()))
        .collect();
    assert_eq!(recorded, expected);

    // A second node (or a restart) finds them applied and applies nothing.
    let again = ScyllaStore::connect(&config).await.unwrap();
    drop(again);

    // A released migration that was edited stops start-up, and says which.
    store
        .session
        .query_unpaged(
            "INSERT INTO cistern.schema_migrations (version, name, checksum) VALUES (1, '0001_initial.cql', 'crc32:00000000')",
            (),
        )
        .await
        .unwrap();
    let err = ScyllaStore::connect(&config).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("0001_initial.cql"), "{err}");
}

#[tokio::test]
async fn chunks_come_back_per_point_and_series_in_start_order_and_rewrites_replace() {
    let peer = CqlPeer::start().await;
    let store = store_on(&peer).await;
    let a = "XM-0001/T1.level";
    store
        .put_chunks(vec![
            (key(a, Series::Raw, D + 2 * HOUR), vec![2]),
            (key(a, Series::Raw, D + HOUR), vec![1]),
            (key(a, Series::Raw, D + DAY + HOUR), vec![3]),
            (key(a, Series::Raw, D + 5 * DAY), vec![5]),
            (key("XM-0002/T1.level", Series::Raw, D + HOUR), vec![9]),
            (key(a, Series::Minute, D + HOUR), vec![60]),
            (key(a, Series::Hour, D + HOUR), vec![36]),
            // the last of a key in one call wins
            (key(a, Series::Raw, D + HOUR), vec![1, 1]),
        ])
        .await
        .unwrap();
    // [D + 1 h, D + 2 days - 1 ms] with its 1-hour lookback covers days D and D+1 whole.
    let got = store
        .chunks(
            &point(a),
            Series::Raw,
            Timestamp(D + HOUR),
            Timestamp(D + 2 * DAY - 1),
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            (Timestamp(D + HOUR), vec![1, 1]),
            (Timestamp(D + 2 * HOUR), vec![2]),
            (Timestamp(D + DAY + HOUR), vec![3]),
        ]
    );
    // Rollups: their own tables and buckets (30 and 365 days), read whole.
    let far = Timestamp(i64::MAX / 2);
    let from = Timestamp(i64::MIN / 2);
    assert_eq!(
        store
            .chunks(&point(a), Series::Minute, from, far)
            .await
            .unwrap(),
        vec![(Timestamp(D + HOUR), vec![60])]
    );
    assert_eq!(
        store
            .chunks(&point(a), Series::Hour, from, far)
            .await
            .unwrap(),
        vec![(Timestamp(D + HOUR), vec![36])]
    );
    // Another point, and a point with nothing.
    assert_eq!(
        store
            .chunks(&point("XM-0002/T1.level"), Series::Raw, from, far)
            .await
            .unwrap(),
        vec![(Timestamp(D + HOUR), vec![9])]
    );
    assert!(store
        .chunks(&point("XM-0003/T1.level"), Series::Raw, from, far)
        .await
        .unwrap()
        .is_empty());
    // Writing again replaces (a replayed flush never duplicates).
    for _ in 0..2 {
        store
            .put_chunks(vec![(key(a, Series::Raw, D + 2 * HOUR), vec![2, 2])])
            .await
            .unwrap();
    }
    let all = store
        .chunks(&point(a), Series::Raw, from, far)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|(t, _)| t.0).collect::<Vec<_>>(),
        vec![D + HOUR, D + 2 * HOUR, D + DAY + HOUR, D + 5 * DAY]
    );
    assert!(all.contains(&(Timestamp(D + 2 * HOUR), vec![2, 2])));
}

#[tokio::test]
async fn compaction_replaces_chunks_by_full_key_deletes() {
    let peer = CqlPeer::start().await;
    let store = store_on(&peer).await;
    let p = "XM-0001/P1.frequency";
    let chunks = (0..6)
        .map(|i| (key(p, Series::Raw, D + i * 120_000), vec![i as u8]))
        .collect();
    store.put_chunks(chunks).await.unwrap();
    store
        .replace_chunks(
            &point(p),
            Series::Raw,
            (0..4).map(|i| Timestamp(D + i * 120_000)).collect(),
            vec![(Timestamp(D), vec![0, 1, 2, 3])],
        )
        .await
        .unwrap();
    let got = store
        .chunks(
            &point(p),
            Series::Raw,
            Timestamp(D + HOUR),
            Timestamp(D + DAY - 1),
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            (Timestamp(D), vec![0, 1, 2, 3]),
            (Timestamp(D + 4 * 120_000), vec![4]),
            (Timestamp(D + 5 * 120_000), vec![5]),
        ]
    );
    // Retention is by TTL.
    assert_eq!(
        store
            .expire(Series::Raw, Timestamp(i64::MAX))
            .await
            .unwrap(),
        0
    );
}

/// The conformance suite over the CQL protocol, as far as kassandra goes: the sub-suites that
/// read whole partitions (chunks, state, events, compaction's batched replace), in the order
/// `conformance::run` runs them, on one store. Not here (see `conformance`'s table):
/// `run_chunk_ranges` and `run_event_ranges` (clustering ranges, which kassandra ignores) and
/// `run_records` (lightweight transactions: kassandra ignores `IF` and returns no `[applied]`).
#[tokio::test]
async fn the_conformance_sub_suites_kassandra_serves_pass_over_cql() {
    let peer = CqlPeer::start().await;
    let store = store_on(&peer).await;
    crate::store::conformance::run_chunks(&store).await;
    crate::store::conformance::run_state(&store).await;
    crate::store::conformance::run_events(&store).await;
    crate::store::conformance::run_batched_replace(&store).await;
}

#[tokio::test]
async fn a_large_partition_is_written_concurrently_and_read_back_through_many_pages() {
    let peer = CqlPeer::start().await;
    let config = ScyllaConfig {
        page_size: 100,
        max_concurrent_writes: 64,
        ..config_for(peer.node())
    };
    let store = ScyllaStore::connect(&config).await.unwrap();
    let p = "XM-0042/T1.level";
    // A chunk a minute for a day: 1,440 rows in one partition, 15 pages.
    let chunks: Vec<_> = (0..1440)
        .map(|i| {
            (
                key(p, Series::Raw, D + i * 60_000),
                vec![(i % 251) as u8; 70],
            )
        })
        .collect();
    store.put_chunks(chunks.clone()).await.unwrap();
    let before = peer.requests(RequestOpcode::Execute);
    let got = store
        .chunks(
            &point(p),
            Series::Raw,
            Timestamp(D + HOUR),
            Timestamp(D + DAY - 1),
        )
        .await
        .unwrap();
    let expected: Vec<_> = chunks.into_iter().map(|(k, b)| (k.start, b)).collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
    // One EXECUTE for the partition index, then one per page of 100 rows.
    let executes = peer.requests(RequestOpcode::Execute) - before;
    assert!(executes > 1440 / 100, "{executes} requests");
}

#[tokio::test]
async fn state_is_written_replaced_and_deleted_by_kind_in_batches() {
    let peer = CqlPeer::start().await;
    let store = store_on(&peer).await;
    store
        .put_state(
            "snapshot",
            vec![
                ("XM-0001/P2".into(), Some(vec![2])),
                ("XM-0001/P1".into(), Some(vec![1])),
            ],
        )
        .await
        .unwrap();
    store
        .put_state(
            "alarm",
            vec![("XM-0001/pump_fault/P1".into(), Some(vec![3]))],
        )
        .await
        .unwrap();
    store
        .put_state(
            "snapshot",
            vec![
                ("XM-0001/P1".into(), Some(vec![11])),
                ("XM-0001/P2".into(), None),
                // the last record of a key in one call wins, as in the embedded store
                ("XM-0001/P3".into(), None),
                ("XM-0001/P3".into(), Some(vec![33])),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.state("snapshot").await.unwrap(),
        vec![
            ("XM-0001/P1".to_owned(), vec![11]),
            ("XM-0001/P3".to_owned(), vec![33])
        ]
    );
    assert_eq!(store.state("alarm").await.unwrap().len(), 1);
    assert!(store.state("nothing").await.unwrap().is_empty());

    // More than one batch's worth is split into several batches, and all of it lands.
    let big: Vec<_> = (0..5)
        .map(|i| (format!("room-{i}"), Some(vec![i as u8; 200 * 1024])))
        .collect();
    let before = peer.requests(RequestOpcode::Batch);
    store.put_state("big", big).await.unwrap();
    // 1 MB of values in batches of at most 512 KiB: three batches of two, two and one.
    assert_eq!(peer.requests(RequestOpcode::Batch) - before, 3);
    let got = store.state("big").await.unwrap();
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|(_, v)| v.len() == 200 * 1024));
}

#[tokio::test]
async fn events_come_back_in_t_then_id_order_per_stream_and_day_up_to_the_limit() {
    let peer = CqlPeer::start().await;
    let store = store_on(&peer).await;
    let ev = |t: i64, id: u64, b: u8| StoredEvent {
        t: Timestamp(t),
        id,
        body: vec![b],
    };
    for _ in 0..2 {
        store
            .append_events(
                "alarm",
                vec![
                    ev(D + 20, 1, 2),
                    ev(D + 10, 5, 1),
                    ev(D + 20, 0, 3),
                    // ids above 2^63 order as u64
                    ev(D + 20, u64::MAX, 4),
                    ev(D + DAY + 5, 0, 6),
                ],
            )
            .await
            .unwrap();
    }
    store
        .append_events("audit", vec![ev(D + 15, 0, 9)])
        .await
        .unwrap();
    // Whole days [D, D + 2 days - 1]: both partitions read whole.
    let all = store
        .events("alarm", Timestamp(D), Timestamp(D + 2 * DAY - 1), 100)
        .await
        .unwrap();
    assert_eq!(
        all,
        vec![
            ev(D + 10, 5, 1),
            ev(D + 20, 0, 3),
            ev(D + 20, 1, 2),
            ev(D + 20, u64::MAX, 4),
            ev(D + DAY + 5, 0, 6)
        ]
    );
    // The limit stops the read, across pages and partitions.
    assert_eq!(
        store
            .events("alarm", Timestamp(D), Timestamp(D + 2 * DAY - 1), 2)
            .await
            .unwrap(),
        vec![ev(D + 10, 5, 1), ev(D + 20, 0, 3)]
    );
    assert_eq!(
        store
            .events("audit", Timestamp(D), Timestamp(D + DAY - 1), 100)
            .await
            .unwrap(),
        vec![ev(D + 15, 0, 9)]
    );
    assert!(store
        .events("nothing", Timestamp(D), Timestamp(D + DAY - 1), 100)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_retryable_error_that_names_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = ScyllaStore::connect(&config_for(node.clone()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains(&node), "{err}");
}

#[tokio::test]
async fn a_local_dc_the_cluster_does_not_have_is_refused_at_start_up() {
    let peer = CqlPeer::start().await;
    let mut config = config_for(peer.node());
    config.local_dc = "dc9".into();
    config.replication = [("dc9".to_owned(), 1)].into();
    let err = ScyllaStore::connect(&config).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("\"dc9\" is not a data centre"),
        "{err}"
    );
    assert!(err.to_string().contains("datacenter1"), "{err}");
}

#[test]
fn u64_ids_keep_their_order_as_bigints() {
    let ids = [0, 1, 5, (1 << 63) - 1, 1 << 63, u64::MAX - 1, u64::MAX];
    for w in ids.windows(2) {
        assert!(id_to_cql(w[0]) < id_to_cql(w[1]), "{w:?}");
    }
    for id in ids {
        assert_eq!(id_from_cql(id_to_cql(id)), id);
    }
}

#[test]
fn index_rows_outlive_the_rows_of_their_bucket() {
    let raw = Family::Chunks(Series::Raw);
    assert_eq!(index_ttl(Duration::ZERO, raw), 0);
    assert_eq!(
        index_ttl(Duration::from_secs(30 * 86_400), raw),
        32 * 86_400
    );
    assert_eq!(index_ttl(MAX_TTL, raw), MAX_TTL.as_secs());
}

#[test]
fn a_contact_point_without_a_port_is_refused() {
    let bad_node = ScyllaConfig {
        nodes: vec!["10.0.0.1".into()],
        ..config_for("x:1".into())
    };
    assert!(matches!(
        bad_node.validate(),
        Err(ScyllaConfigError::BadNode { .. })
    ));
}

#[cfg(not(feature = "scylla-tls"))]
#[test]
fn tls_without_the_feature_is_refused_plainly() {
    let mut config = config_for("10.0.0.1:9142".into());
    config.tls.enabled = true;
    config.tls.ca_file = Some("ca.pem".into());
    let err = config.validate().unwrap_err();
    assert_eq!(err, ScyllaConfigError::TlsNotBuilt);
    assert!(err.to_string().contains("--features scylla-tls"));
}
