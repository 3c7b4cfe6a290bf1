//! The conformance suite every [`Store`] backend must pass: the embedded store always,
//! ScyllaDB when `CISTERN_SCYLLA_NODES` is set.
//!
//! [`run`] covers everything a backend must do faithfully, as named sub-suites; [`run_expiring`]
//! adds retention by deletion, which backends that expire by TTL (ScyllaDB) skip;
//! [`run_batched_replace`] is compaction's batched replace; [`run_records`] is the records port.
//!
//! Where each runs:
//!
//! | sub-suite | embedded | ScyllaDB cluster | CQL peer (kassandra smoke tests) |
//! | --- | --- | --- | --- |
//! | [`run_chunks`], [`run_state`], [`run_events`], [`run_batched_replace`] | yes | yes | yes |
//! | [`run_chunk_ranges`], [`run_event_ranges`] | yes | yes | no: clustering ranges ignored |
//! | [`run_records`] | yes | yes | no: `IF` conditions (LWT) ignored |
//! | [`run_expiring`] | yes | no: TTLs expire | no |

use super::{ChunkKey, Series, Store, StoredEvent, MAX_CHUNK_SPAN};
use cistern_schemas::{PointId, Timestamp};

fn key(point: &str, series: Series, start: i64) -> ChunkKey {
    ChunkKey {
        point: point.parse().unwrap(),
        series,
        start: Timestamp(start),
    }
}

fn raw(point: &str, start: i64) -> ChunkKey {
    key(point, Series::Raw, start)
}

/// Runs every case of the [`Store`] port against `store` (which must start empty): the
/// sub-suites below, each on points and streams of its own.
pub async fn run(store: &dyn Store) {
    run_chunks(store).await;
    run_chunk_ranges(store).await;
    run_state(store).await;
    run_events(store).await;
    run_event_ranges(store).await;
}

/// Chunks written, read back, rewritten and compacted, with reads that cover whole time
/// buckets (every backend; the ScyllaDB smoke tests' CQL peer too, which reads whole
/// partitions only).
pub async fn run_chunks(store: &dyn Store) {
    let level: PointId = "XM-0001/T1.level".parse().unwrap();
    let h = MAX_CHUNK_SPAN.as_millis() as i64;
    let far = Timestamp(i64::MAX / 2);

    // empty
    assert!(store
        .chunks(&level, Series::Raw, Timestamp(0), far)
        .await
        .unwrap()
        .is_empty());

    // written chunks come back in start order, only for their point and series
    store
        .put_chunks(vec![
            (raw("XM-0001/T1.level", 2 * h), vec![2]),
            (raw("XM-0001/T1.level", 0), vec![0]),
            (raw("XM-0001/T1.level", h), vec![1]),
            (raw("XM-0002/T1.level", h), vec![9]),
            (raw("XM-0001/T1.levelx", h), vec![8]),
            (key("XM-0001/T1.level", Series::Minute, h), vec![60]),
            (key("XM-0001/T1.level", Series::Hour, h), vec![36]),
        ])
        .await
        .unwrap();
    let all = store
        .chunks(&level, Series::Raw, Timestamp(0), far)
        .await
        .unwrap();
    assert_eq!(
        all,
        vec![
            (Timestamp(0), vec![0]),
            (Timestamp(h), vec![1]),
            (Timestamp(2 * h), vec![2])
        ]
    );
    for (series, body) in [(Series::Minute, 60), (Series::Hour, 36)] {
        assert_eq!(
            store
                .chunks(&level, series, Timestamp(0), far)
                .await
                .unwrap(),
            vec![(Timestamp(h), vec![body])],
            "{series:?}"
        );
    }

    // writing a key again replaces it (idempotent flushes and replays)
    for _ in 0..2 {
        store
            .put_chunks(vec![(raw("XM-0001/T1.level", h), vec![1, 1])])
            .await
            .unwrap();
    }
    let again = store
        .chunks(&level, Series::Raw, Timestamp(0), far)
        .await
        .unwrap();
    assert_eq!(again.iter().filter(|(s, _)| s.0 == h).count(), 1);
    assert!(again.contains(&(Timestamp(h), vec![1, 1])));

    // compaction: many chunks replaced by one, in that point and series only
    store
        .replace_chunks(
            &level,
            Series::Raw,
            vec![Timestamp(0), Timestamp(h), Timestamp(2 * h)],
            vec![(Timestamp(0), vec![0, 1, 2])],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .chunks(&level, Series::Raw, Timestamp(0), far)
            .await
            .unwrap(),
        vec![(Timestamp(0), vec![0, 1, 2])]
    );
    let other: PointId = "XM-0002/T1.level".parse().unwrap();
    assert_eq!(
        store
            .chunks(&other, Series::Raw, Timestamp(0), far)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .chunks(&level, Series::Minute, Timestamp(0), far)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Chunk reads whose range cuts a time bucket: the range itself, the chunk that starts before
/// it and reaches into it, one start exactly, negative times. ScyllaDB serves them with
/// clustering-range reads, which the smoke tests' CQL peer (kassandra) ignores: these run on
/// the embedded store and a real cluster only.
pub async fn run_chunk_ranges(store: &dyn Store) {
    let level: PointId = "XM-0301/T1.level".parse().unwrap();
    let h = MAX_CHUNK_SPAN.as_millis() as i64;
    store
        .put_chunks(vec![
            (raw("XM-0301/T1.level", 2 * h), vec![2]),
            (raw("XM-0301/T1.level", 0), vec![0]),
            (raw("XM-0301/T1.level", h), vec![1]),
            (raw("XM-0301/T1.level", 30 * h), vec![30]),
            (raw("XM-0302/T1.level", h), vec![9]),
        ])
        .await
        .unwrap();

    // a range returns its chunks in start order, and none that start after it
    assert_eq!(
        store
            .chunks(&level, Series::Raw, Timestamp(0), Timestamp(3 * h))
            .await
            .unwrap(),
        vec![
            (Timestamp(0), vec![0]),
            (Timestamp(h), vec![1]),
            (Timestamp(2 * h), vec![2])
        ]
    );

    // a range finds the chunk that starts before it and reaches into it, and no chunk after it
    let mid = store
        .chunks(
            &level,
            Series::Raw,
            Timestamp(h + h / 2),
            Timestamp(h + h / 2 + 10),
        )
        .await
        .unwrap();
    assert_eq!(mid.first(), Some(&(Timestamp(h), vec![1])));
    assert!(mid.iter().all(|(s, _)| s.0 <= h + h / 2 + 10));

    // one start exactly
    let one = store
        .chunks(&level, Series::Raw, Timestamp(h), Timestamp(h))
        .await
        .unwrap();
    assert_eq!(one.iter().filter(|(s, _)| s.0 == h).count(), 1);
    assert!(!one.iter().any(|(s, _)| s.0 > h));

    // negative and far-future timestamps order correctly
    store
        .put_chunks(vec![(raw("XM-0003.ph", -5 * h), vec![7])])
        .await
        .unwrap();
    let ph: PointId = "XM-0003.ph".parse().unwrap();
    assert_eq!(
        store
            .chunks(&ph, Series::Raw, Timestamp(-5 * h), Timestamp(0))
            .await
            .unwrap(),
        vec![(Timestamp(-5 * h), vec![7])]
    );
}

/// State records: write, replace, delete, by kind (every backend).
pub async fn run_state(store: &dyn Store) {
    store
        .put_state(
            "snapshot",
            vec![
                ("XM-0001/P1".into(), Some(vec![1])),
                ("XM-0001/P2".into(), Some(vec![2])),
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
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.state("snapshot").await.unwrap(),
        vec![("XM-0001/P1".to_owned(), vec![11])]
    );
    assert_eq!(store.state("alarm").await.unwrap().len(), 1);
    assert!(store.state("nothing").await.unwrap().is_empty());
}

fn ev(t: i64, id: u64, b: u8) -> StoredEvent {
    StoredEvent {
        t: Timestamp(t),
        id,
        body: vec![b],
    }
}

/// Events: ordered by (t, id), idempotent, by stream, limited, with reads that cover whole
/// days (every backend; the CQL peer of the smoke tests too).
pub async fn run_events(store: &dyn Store) {
    let far = Timestamp(i64::MAX / 2);
    for _ in 0..2 {
        store
            .append_events("alarm", vec![ev(20, 1, 2), ev(10, 5, 1), ev(20, 0, 3)])
            .await
            .unwrap();
    }
    store
        .append_events("audit", vec![ev(15, 0, 9)])
        .await
        .unwrap();
    let alarm = store.events("alarm", Timestamp(0), far, 100).await.unwrap();
    assert_eq!(alarm, vec![ev(10, 5, 1), ev(20, 0, 3), ev(20, 1, 2)]);
    assert_eq!(
        store.events("alarm", Timestamp(0), far, 2).await.unwrap(),
        vec![ev(10, 5, 1), ev(20, 0, 3)]
    );
    assert_eq!(
        store.events("audit", Timestamp(0), far, 100).await.unwrap(),
        vec![ev(15, 0, 9)]
    );
    assert!(store
        .events("nothing", Timestamp(0), far, 100)
        .await
        .unwrap()
        .is_empty());
}

/// Events within a range that cuts a day (clustering-range reads on ScyllaDB: not on the
/// smoke tests' CQL peer).
pub async fn run_event_ranges(store: &dyn Store) {
    store
        .append_events(
            "alarm_ranges",
            vec![ev(20, 1, 2), ev(10, 5, 1), ev(20, 0, 3), ev(30, 0, 4)],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .events("alarm_ranges", Timestamp(0), Timestamp(25), 100)
            .await
            .unwrap(),
        vec![ev(10, 5, 1), ev(20, 0, 3), ev(20, 1, 2)]
    );
    assert_eq!(
        store
            .events("alarm_ranges", Timestamp(11), Timestamp(20), 1)
            .await
            .unwrap(),
        vec![ev(20, 0, 3)]
    );
}

/// Retention by deletion: chunks that start before the cut-off go, in that series only.
pub async fn run_expiring(store: &dyn Store) {
    let h = MAX_CHUNK_SPAN.as_millis() as i64;
    store
        .put_chunks(vec![
            (raw("XM-0101/P1.frequency", 0), vec![0]),
            (raw("XM-0101/P1.frequency", 10 * h), vec![1]),
            (raw("XM-0102.ph", h), vec![2]),
            (raw("XM-0102.ph", 11 * h), vec![3]),
            (key("XM-0102.ph", Series::Hour, 0), vec![4]),
        ])
        .await
        .unwrap();
    let removed = store.expire(Series::Raw, Timestamp(5 * h)).await.unwrap();
    assert!(removed >= 2, "removed {removed}");
    let far = Timestamp(100 * h);
    let ph: PointId = "XM-0102.ph".parse().unwrap();
    let freq: PointId = "XM-0101/P1.frequency".parse().unwrap();
    assert_eq!(
        store
            .chunks(&ph, Series::Raw, Timestamp(0), far)
            .await
            .unwrap(),
        vec![(Timestamp(11 * h), vec![3])]
    );
    assert_eq!(
        store
            .chunks(&freq, Series::Raw, Timestamp(0), far)
            .await
            .unwrap(),
        vec![(Timestamp(10 * h), vec![1])]
    );
    assert_eq!(
        store
            .chunks(&ph, Series::Hour, Timestamp(0), far)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// The batched replace of compaction ([`Store::replace_chunks_batch`]): many points and series
/// in one call, idempotent, a put beating a remove of the same chunk. Uses only ranges that
/// cover whole partitions, so that it also runs against the in-memory CQL peer of the ScyllaDB
/// smoke tests. Its points are its own: it runs on a store [`run`] has used.
pub async fn run_batched_replace(store: &dyn Store) {
    use super::ChunkReplacement;
    let (a, b, c) = ("XM-0201/P1.current", "XM-0201.ph", "XM-0202/T1.level");
    let (pa, pb, pc): (PointId, PointId, PointId) =
        (a.parse().unwrap(), b.parse().unwrap(), c.parse().unwrap());
    let m = 120_000;
    let t0 = 1_767_571_200_000; // a UTC midnight
    let (from, far) = (Timestamp(0), Timestamp(i64::MAX / 2));
    let all = |p: &PointId, s: Series| {
        let p = p.clone();
        async move { store.chunks(&p, s, from, far).await.unwrap() }
    };
    store
        .put_chunks(vec![
            (raw(a, t0), vec![1]),
            (raw(a, t0 + m), vec![2]),
            (raw(a, t0 + 2 * m), vec![3]),
            (raw(a, t0 + 3 * m), vec![4]),
            (raw(b, t0), vec![5]),
            (raw(b, t0 + m), vec![6]),
            (raw(c, t0), vec![7]),
            (key(a, Series::Minute, t0), vec![60]),
        ])
        .await
        .unwrap();

    // nothing to do is not an error
    store.replace_chunks_batch(Vec::new()).await.unwrap();

    let replace =
        |point: &PointId, series, remove: Vec<i64>, put: Vec<(i64, Vec<u8>)>| ChunkReplacement {
            point: point.clone(),
            series,
            remove: remove.into_iter().map(Timestamp).collect(),
            put: put.into_iter().map(|(t, b)| (Timestamp(t), b)).collect(),
        };
    let batch = vec![
        // a's first three chunks become one, keyed like the first
        replace(
            &pa,
            Series::Raw,
            vec![t0, t0 + m, t0 + 2 * m],
            vec![(t0, vec![1, 2, 3])],
        ),
        // b's two become one keyed like the second: the first goes
        replace(
            &pb,
            Series::Raw,
            vec![t0, t0 + m],
            vec![(t0 + m, vec![5, 6])],
        ),
        // rollups written alongside, one replacing a stored chunk
        replace(&pa, Series::Minute, vec![], vec![(t0, vec![61])]),
        replace(&pa, Series::Hour, vec![], vec![(t0, vec![24])]),
        // removing a chunk that is not there is fine
        replace(&pc, Series::Raw, vec![t0 + 5 * m], vec![]),
    ];
    // idempotent: a retried batch leaves the same
    for _ in 0..2 {
        store.replace_chunks_batch(batch.clone()).await.unwrap();
        assert_eq!(
            all(&pa, Series::Raw).await,
            vec![
                (Timestamp(t0), vec![1, 2, 3]),
                (Timestamp(t0 + 3 * m), vec![4])
            ]
        );
        assert_eq!(
            all(&pb, Series::Raw).await,
            vec![(Timestamp(t0 + m), vec![5, 6])]
        );
        assert_eq!(all(&pc, Series::Raw).await, vec![(Timestamp(t0), vec![7])]);
        assert_eq!(
            all(&pa, Series::Minute).await,
            vec![(Timestamp(t0), vec![61])]
        );
        assert_eq!(
            all(&pa, Series::Hour).await,
            vec![(Timestamp(t0), vec![24])]
        );
        assert!(all(&pb, Series::Minute).await.is_empty());
    }

    // a put of the batch beats a remove of the same chunk in another entry, in either order
    for order in [false, true] {
        let mut batch = vec![
            replace(&pc, Series::Raw, vec![t0], vec![]),
            replace(
                &pc,
                Series::Raw,
                vec![],
                vec![(t0, vec![7, u8::from(order)])],
            ),
        ];
        if order {
            batch.reverse();
        }
        store.replace_chunks_batch(batch).await.unwrap();
        assert_eq!(
            all(&pc, Series::Raw).await,
            vec![(Timestamp(t0), vec![7, u8::from(order)])],
            "put first: {order}"
        );
    }
}

/// The records port ([`super::Records`]): create, read, compare-and-set updates that refuse a
/// stale version (two writers cannot lose an update), index entries that follow every version
/// (exact values, ranges, several values, limits, (value, id) order, one kind apart from
/// another), and deletes. Its kinds are its own: it runs on a store the other cases have used.
pub async fn run_records(records: &dyn super::Records) {
    use super::records::{
        IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, RecordVersion,
        RecordsError,
    };
    let orders = RecordKind::new("work_order").unwrap();
    let assets = RecordKind::new("asset").unwrap();
    let by_room = IndexName::new("by_room").unwrap();
    let by_state = IndexName::new("by_state").unwrap();
    let by_due = IndexName::new("by_due").unwrap();
    let by_assignee = IndexName::new("by_assignee").unwrap();
    let id = |s: &str| RecordId::new(s).unwrap();
    let put =
        |kind: &RecordKind, i: &str, expected: Option<u64>, body: &str, index: Vec<IndexEntry>| {
            RecordPut {
                kind: kind.clone(),
                id: id(i),
                expected: expected.map(RecordVersion),
                body: body.as_bytes().to_vec(),
                index,
            }
        };
    let order_index = |room: &str, state: &str, due: &str| {
        vec![
            IndexEntry::new(&by_room, room),
            IndexEntry::new(&by_state, state),
            IndexEntry::new(&by_due, due),
        ]
    };
    let ids = |listed: Vec<super::records::StoredRecord>| -> Vec<String> {
        listed.into_iter().map(|r| r.id.to_string()).collect()
    };
    let list = |kind: &RecordKind, index: &IndexName, range: IndexRange, limit: usize| {
        let (kind, index) = (kind.clone(), index.clone());
        async move {
            ids(records
                .list_by_index(&kind, &index, range, limit)
                .await
                .unwrap())
        }
    };

    // nothing yet
    assert!(records
        .record(&orders, &id("WO-1"))
        .await
        .unwrap()
        .is_none());
    assert!(list(&orders, &by_room, IndexRange::value("XM-0001"), 10)
        .await
        .is_empty());

    // created at version 1, read back with its body and entries
    let v = records
        .put_record(put(
            &orders,
            "WO-1",
            None,
            "{\"title\":\"pump P1 bearing\"}",
            order_index("XM-0001", "open", "2026-12-24T08:00Z"),
        ))
        .await
        .unwrap();
    assert_eq!(v, RecordVersion(1));
    let got = records.record(&orders, &id("WO-1")).await.unwrap().unwrap();
    assert_eq!(got.version, RecordVersion(1));
    assert_eq!(got.body, b"{\"title\":\"pump P1 bearing\"}".to_vec());
    assert_eq!(
        got.index,
        order_index("XM-0001", "open", "2026-12-24T08:00Z")
    );

    // creating it again is a conflict that names what is there
    match records
        .put_record(put(&orders, "WO-1", None, "again", vec![]))
        .await
    {
        Err(RecordsError::Conflict {
            expected: None,
            found: Some(RecordVersion(1)),
            ..
        }) => {}
        other => panic!("create over an existing record: {other:?}"),
    }
    // so is updating a record that is not there
    match records
        .put_record(put(&orders, "WO-404", Some(1), "x", vec![]))
        .await
    {
        Err(RecordsError::Conflict { found: None, .. }) => {}
        other => panic!("update of a missing record: {other:?}"),
    }

    // more records, in two rooms, with due dates that sort as text
    for (i, room, state, due) in [
        ("WO-2", "XM-0001", "open", "2026-12-20T08:00Z"),
        ("WO-3", "XM-0002", "open", "2026-12-22T08:00Z"),
        ("WO-4", "XM-0001", "closed", "2026-11-01T08:00Z"),
    ] {
        records
            .put_record(put(&orders, i, None, i, order_index(room, state, due)))
            .await
            .unwrap();
    }
    // an asset in the same room: another kind, never listed with the orders
    records
        .put_record(put(
            &assets,
            "XM-0001/P1",
            None,
            "pump",
            vec![IndexEntry::new(&by_room, "XM-0001")],
        ))
        .await
        .unwrap();

    // exact values, in id order
    assert_eq!(
        list(&orders, &by_room, IndexRange::value("XM-0001"), 10).await,
        ["WO-1", "WO-2", "WO-4"]
    );
    assert_eq!(
        list(&orders, &by_state, IndexRange::value("open"), 10).await,
        ["WO-1", "WO-2", "WO-3"]
    );
    assert_eq!(
        list(&assets, &by_room, IndexRange::value("XM-0001"), 10).await,
        ["XM-0001/P1"]
    );
    // a value that is a prefix of another is not it
    assert!(list(&orders, &by_room, IndexRange::value("XM-000"), 10)
        .await
        .is_empty());
    // ranges, in value order, with a limit
    assert_eq!(
        list(
            &orders,
            &by_due,
            IndexRange::between("2026-12-01", "2026-12-31"),
            10
        )
        .await,
        ["WO-2", "WO-3", "WO-1"]
    );
    assert_eq!(
        list(
            &orders,
            &by_due,
            IndexRange::between("2026-12-01", "2026-12-31"),
            2
        )
        .await,
        ["WO-2", "WO-3"]
    );
    assert_eq!(
        list(
            &orders,
            &by_due,
            IndexRange::between("2026-12-22T08:00Z", "2026-12-22T08:00Z"),
            10
        )
        .await,
        ["WO-3"]
    );
    assert!(list(&orders, &by_due, IndexRange::between("z", "a"), 10)
        .await
        .is_empty());

    // a compare-and-set update moves the record in its indexes
    let v2 = records
        .put_record(put(
            &orders,
            "WO-1",
            Some(1),
            "{\"title\":\"pump P1 bearing\",\"state\":\"closed\"}",
            order_index("XM-0001", "closed", "2026-12-24T08:00Z"),
        ))
        .await
        .unwrap();
    assert_eq!(v2, RecordVersion(2));
    assert_eq!(
        list(&orders, &by_state, IndexRange::value("open"), 10).await,
        ["WO-2", "WO-3"]
    );
    assert_eq!(
        list(&orders, &by_state, IndexRange::value("closed"), 10).await,
        ["WO-1", "WO-4"]
    );

    // a writer holding version 1 cannot overwrite version 2: the update is not lost
    match records
        .put_record(put(
            &orders,
            "WO-1",
            Some(1),
            "stale",
            order_index("XM-0001", "open", "2026-12-24T08:00Z"),
        ))
        .await
    {
        Err(RecordsError::Conflict {
            expected: Some(RecordVersion(1)),
            found: Some(RecordVersion(2)),
            ..
        }) => {}
        other => panic!("stale update: {other:?}"),
    }
    let now = records.record(&orders, &id("WO-1")).await.unwrap().unwrap();
    assert_eq!(now.version, RecordVersion(2));
    assert!(String::from_utf8_lossy(&now.body).contains("closed"));
    assert_eq!(
        list(&orders, &by_state, IndexRange::value("closed"), 10).await,
        ["WO-1", "WO-4"],
        "the refused write left the index alone"
    );

    // two writers racing from the same version: exactly one wins
    let (a, b) = futures::join!(
        records.put_record(put(
            &orders,
            "WO-2",
            Some(1),
            "writer a",
            order_index("XM-0001", "assigned", "2026-12-20T08:00Z"),
        )),
        records.put_record(put(
            &orders,
            "WO-2",
            Some(1),
            "writer b",
            order_index("XM-0001", "cancelled", "2026-12-20T08:00Z"),
        )),
    );
    let won = match (&a, &b) {
        (Ok(RecordVersion(2)), Err(RecordsError::Conflict { .. })) => "writer a",
        (Err(RecordsError::Conflict { .. }), Ok(RecordVersion(2))) => "writer b",
        other => panic!("racing writers: {other:?}"),
    };
    let raced = records.record(&orders, &id("WO-2")).await.unwrap().unwrap();
    assert_eq!(raced.body, won.as_bytes().to_vec());
    let state = if won == "writer a" {
        "assigned"
    } else {
        "cancelled"
    };
    assert_eq!(
        list(&orders, &by_state, IndexRange::value(state), 10).await,
        ["WO-2"]
    );
    let loser = if won == "writer a" {
        "cancelled"
    } else {
        "assigned"
    };
    assert!(
        list(&orders, &by_state, IndexRange::value(loser), 10)
            .await
            .is_empty(),
        "the loser's index entries are not listed"
    );

    // several values in one index (two assignees), listed once per range
    records
        .put_record(put(
            &orders,
            "WO-3",
            Some(1),
            "two assignees",
            vec![
                IndexEntry::new(&by_assignee, "chen"),
                IndexEntry::new(&by_assignee, "li"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(
        list(&orders, &by_assignee, IndexRange::value("li"), 10).await,
        ["WO-3"]
    );
    assert_eq!(
        list(&orders, &by_assignee, IndexRange::between("a", "z"), 10).await,
        ["WO-3"]
    );
    // entries the new version does not give are gone
    assert!(list(&orders, &by_room, IndexRange::value("XM-0002"), 10)
        .await
        .is_empty());

    // deletes compare-and-set too, and take the index entries with them
    match records
        .delete_record(&orders, &id("WO-4"), RecordVersion(7))
        .await
    {
        Err(RecordsError::Conflict {
            found: Some(RecordVersion(1)),
            ..
        }) => {}
        other => panic!("stale delete: {other:?}"),
    }
    records
        .delete_record(&orders, &id("WO-4"), RecordVersion(1))
        .await
        .unwrap();
    assert!(records
        .record(&orders, &id("WO-4"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        list(&orders, &by_state, IndexRange::value("closed"), 10).await,
        ["WO-1"]
    );
    match records
        .delete_record(&orders, &id("WO-4"), RecordVersion(1))
        .await
    {
        Err(RecordsError::Conflict { found: None, .. }) => {}
        other => panic!("delete of a deleted record: {other:?}"),
    }
    // and a deleted record can be created again, at version 1
    assert_eq!(
        records
            .put_record(put(&orders, "WO-4", None, "again", vec![]))
            .await
            .unwrap(),
        RecordVersion(1)
    );
}
