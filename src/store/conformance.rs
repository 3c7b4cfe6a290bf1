//! The conformance suite every [`HistoryStore`] backend must pass: the embedded store always,
//! ScyllaDB when `CISTERN_SCYLLA_NODES` is set (with the ScyllaDB backend).

use super::{ChunkKey, HistoryStore, MAX_CHUNK_SPAN};
use cistern_schemas::{PointId, Timestamp};

fn key(point: &str, start: i64) -> ChunkKey {
    ChunkKey {
        point: point.parse().unwrap(),
        start: Timestamp(start),
    }
}

/// Runs every case against `store` (which must start empty).
pub async fn run(store: &dyn HistoryStore) {
    let level: PointId = "XM-0001/T1.level".parse().unwrap();
    let h = MAX_CHUNK_SPAN.as_millis() as i64;

    // empty
    assert!(store
        .chunks(&level, Timestamp(0), Timestamp(i64::MAX / 2))
        .await
        .unwrap()
        .is_empty());

    // written chunks come back in start order, only for their point
    store
        .put_chunks(vec![
            (key("XM-0001/T1.level", 2 * h), vec![2]),
            (key("XM-0001/T1.level", 0), vec![0]),
            (key("XM-0001/T1.level", h), vec![1]),
            (key("XM-0002/T1.level", h), vec![9]),
            (key("XM-0001/T1.levelx", h), vec![8]),
        ])
        .await
        .unwrap();
    let all = store
        .chunks(&level, Timestamp(0), Timestamp(3 * h))
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

    // a range finds the chunk that starts before it and reaches into it, and no chunk after it
    let mid = store
        .chunks(&level, Timestamp(h + h / 2), Timestamp(h + h / 2 + 10))
        .await
        .unwrap();
    assert_eq!(mid.first(), Some(&(Timestamp(h), vec![1])));
    assert!(mid.iter().all(|(s, _)| s.0 <= h + h / 2 + 10));

    // writing a key again replaces it (idempotent flushes and replays)
    store
        .put_chunks(vec![(key("XM-0001/T1.level", h), vec![1, 1])])
        .await
        .unwrap();
    store
        .put_chunks(vec![(key("XM-0001/T1.level", h), vec![1, 1])])
        .await
        .unwrap();
    let again = store
        .chunks(&level, Timestamp(h), Timestamp(h))
        .await
        .unwrap();
    assert_eq!(again.iter().filter(|(s, _)| s.0 == h).count(), 1);
    assert!(again.contains(&(Timestamp(h), vec![1, 1])));

    // negative and far-future timestamps order correctly
    store
        .put_chunks(vec![(key("XM-0003.ph", -5 * h), vec![7])])
        .await
        .unwrap();
    let ph: PointId = "XM-0003.ph".parse().unwrap();
    assert_eq!(
        store
            .chunks(&ph, Timestamp(-5 * h), Timestamp(0))
            .await
            .unwrap(),
        vec![(Timestamp(-5 * h), vec![7])]
    );
}
