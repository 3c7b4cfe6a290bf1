//! Double ownership, from the nodes' own journals: each node appends to
//! `<data_dir>/cluster-journal.jsonl` a line per shard event as it happens (CLUSTER23 design,
//! ARCHITECTURE.md). A node acts for a shard from `acquired` until `released` or `fenced`, or
//! until it dies; two nodes acting for one shard at once is what the cluster must never allow.
//! All nodes run on this machine, so their clocks are one clock and the intervals compare —
//! unless the bench skewed them (`--skew-ms`): it then brings every line's time back to the
//! real clock by the node's known offset before calling anything here.

use super::FailoverError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The journal's file name in a node's data directory.
pub const JOURNAL: &str = "cluster-journal.jsonl";

/// One line of a journal.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct JournalEvent {
    pub at_ms: i64,
    pub node: String,
    pub shard: u32,
    #[serde(default)]
    pub epoch: i64,
    pub event: String,
}

/// A span in which `node` acted for `shard`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Acting {
    pub node: String,
    pub shard: u32,
    pub epoch: i64,
    pub from_ms: i64,
    pub to_ms: i64,
    /// How the span ended: `released`, `fenced`, `died` or `stopped`.
    pub ended: String,
}

/// Two nodes acting for one shard at once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overlap {
    pub shard: u32,
    pub first: String,
    pub second: String,
    pub ms: i64,
}

/// Reads a journal; a torn last line (a node killed mid-write) is skipped, any other bad line
/// is an error. A missing journal is empty (a node that never owned a shard may not write it).
pub fn read(path: &Path) -> Result<Vec<JournalEvent>, FailoverError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(FailoverError::Journal(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut events = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<JournalEvent>(line) {
            Ok(e) => events.push(e),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(FailoverError::Journal(format!(
                    "{} line {}: {e}: {line}",
                    path.display(),
                    i + 1
                )))
            }
        }
    }
    Ok(events)
}

/// One node's acting spans from its events; a span still open at the end of the journal ends
/// at `end_ms` (`died`: when the node was killed; otherwise when it stopped).
pub fn acting(events: &[JournalEvent], end_ms: i64, died: bool) -> Vec<Acting> {
    let mut open: BTreeMap<u32, (String, i64, i64)> = BTreeMap::new();
    let mut spans = Vec::new();
    let close = |spans: &mut Vec<Acting>, shard: u32, o: (String, i64, i64), to: i64, how: &str| {
        spans.push(Acting {
            node: o.0,
            shard,
            epoch: o.1,
            from_ms: o.2,
            to_ms: to,
            ended: how.to_owned(),
        });
    };
    for e in events {
        match e.event.as_str() {
            "acquired" => {
                // A claim again while acting (a new epoch): the old span ends here.
                if let Some(o) = open.remove(&e.shard) {
                    close(&mut spans, e.shard, o, e.at_ms, "released");
                }
                open.insert(e.shard, (e.node.clone(), e.epoch, e.at_ms));
            }
            how @ ("released" | "fenced") => {
                if let Some(o) = open.remove(&e.shard) {
                    close(&mut spans, e.shard, o, e.at_ms, how);
                }
            }
            // `active`, `draining`: still acting.
            _ => {}
        }
    }
    for (shard, o) in open {
        close(
            &mut spans,
            shard,
            o,
            end_ms,
            if died { "died" } else { "stopped" },
        );
    }
    spans
}

/// Every pair of spans of different nodes for one shard that overlap in time.
pub fn overlaps(spans: &[Acting]) -> Vec<Overlap> {
    let mut by_shard: BTreeMap<u32, Vec<&Acting>> = BTreeMap::new();
    for s in spans {
        by_shard.entry(s.shard).or_default().push(s);
    }
    let mut found = Vec::new();
    for (shard, list) in by_shard {
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                if a.node == b.node {
                    continue;
                }
                let ms = a.to_ms.min(b.to_ms) - a.from_ms.max(b.from_ms);
                if ms > 0 {
                    let (first, second) = if a.from_ms <= b.from_ms {
                        (a, b)
                    } else {
                        (b, a)
                    };
                    found.push(Overlap {
                        shard,
                        first: first.node.clone(),
                        second: second.node.clone(),
                        ms,
                    });
                }
            }
        }
    }
    found
}

/// For each shard, when `event` was first written for it at or after `since_ms` (a leaving
/// node's `released` lines).
pub fn events_since(events: &[JournalEvent], event: &str, since_ms: i64) -> BTreeMap<u32, i64> {
    let mut at: BTreeMap<u32, i64> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.event == event && e.at_ms >= since_ms)
    {
        at.entry(e.shard)
            .and_modify(|t| *t = (*t).min(e.at_ms))
            .or_insert(e.at_ms);
    }
    at
}

/// When `node` first wrote `event` at or after `since_ms` (the partitioned node's fencing).
pub fn first_event(events: &[JournalEvent], event: &str, since_ms: i64) -> Option<i64> {
    events
        .iter()
        .filter(|e| e.event == event && e.at_ms >= since_ms)
        .map(|e| e.at_ms)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ms: i64, node: &str, shard: u32, epoch: i64, event: &str) -> JournalEvent {
        JournalEvent {
            at_ms,
            node: node.into(),
            shard,
            epoch,
            event: event.into(),
        }
    }

    #[test]
    fn a_killed_owner_acts_until_its_death_and_a_successor_after_it_does_not_overlap() {
        let a = vec![
            ev(1_000, "node-a", 3, 10, "acquired"),
            ev(1_100, "node-a", 3, 10, "active"),
        ];
        let b = vec![
            ev(9_000, "node-b", 3, 20, "acquired"),
            ev(9_050, "node-b", 3, 20, "active"),
            ev(20_000, "node-b", 3, 20, "released"),
        ];
        let mut spans = acting(&a, 5_000, true);
        assert_eq!(spans[0].ended, "died");
        assert_eq!((spans[0].from_ms, spans[0].to_ms), (1_000, 5_000));
        spans.extend(acting(&b, 30_000, false));
        assert!(overlaps(&spans).is_empty());
    }

    #[test]
    fn a_partitioned_owner_fencing_after_its_successor_claimed_is_double_ownership() {
        let a = vec![
            ev(1_000, "node-a", 7, 10, "acquired"),
            ev(6_000, "node-a", 7, 10, "fenced"),
            // Back after the heal.
            ev(30_000, "node-a", 7, 40, "acquired"),
        ];
        let b = vec![
            ev(5_500, "node-b", 7, 20, "acquired"),
            ev(29_000, "node-b", 7, 20, "draining"),
            ev(29_900, "node-b", 7, 20, "released"),
        ];
        let mut spans = acting(&a, 40_000, false);
        spans.extend(acting(&b, 40_000, false));
        let o = overlaps(&spans);
        assert_eq!(
            o,
            vec![Overlap {
                shard: 7,
                first: "node-a".into(),
                second: "node-b".into(),
                ms: 500
            }]
        );
        assert_eq!(first_event(&a, "fenced", 2_000), Some(6_000));
        assert_eq!(first_event(&a, "fenced", 7_000), None);
    }

    #[test]
    fn a_leaving_node_s_releases_are_found_per_shard_after_the_signal() {
        let a = vec![
            ev(1_000, "node-a", 3, 10, "acquired"),
            ev(2_000, "node-a", 3, 10, "released"),
            ev(3_000, "node-a", 3, 30, "acquired"),
            ev(9_000, "node-a", 3, 30, "draining"),
            ev(9_100, "node-a", 3, 30, "released"),
            ev(1_000, "node-a", 5, 11, "acquired"),
            ev(9_300, "node-a", 5, 11, "released"),
        ];
        let r = events_since(&a, "released", 8_000);
        assert_eq!(
            r.into_iter().collect::<Vec<_>>(),
            vec![(3, 9_100), (5, 9_300)]
        );
        let mut spans = acting(&a, 10_000, false);
        spans.sort_by_key(|s| (s.shard, s.from_ms));
        assert_eq!(spans.len(), 3);
        assert!(spans.iter().all(|s| s.ended == "released"));
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_a_bad_line_elsewhere_is_an_error() {
        let dir = std::env::temp_dir().join(format!("cistern-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(JOURNAL);
        std::fs::write(
            &path,
            "{\"at_ms\":1,\"node\":\"n\",\"shard\":1,\"epoch\":5,\"event\":\"acquired\"}\n{\"at_ms\":2,\"no",
        )
        .unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        std::fs::write(
            &path,
            "garbage\n{\"at_ms\":1,\"node\":\"n\",\"shard\":1,\"event\":\"x\"}\n",
        )
        .unwrap();
        assert!(read(&path).is_err());
        assert!(read(&dir.join("none.jsonl")).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
