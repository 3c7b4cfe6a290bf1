//! After the run: every published sample looked for in every node's store. The nodes are
//! stopped first; each data directory is then opened with the product's own storage code (the
//! store, and the historian reading its write-ahead back, as a restarted node would), so a
//! sample counts as durable exactly when a node made it durable — the killed node's included.
//!
//! Without ScyllaDB each node keeps the samples it acknowledged (ARCHITECTURE.md, clustering):
//! a message durable on a node that died before acknowledging it is delivered again to the
//! shard's next owner and stored there too. Such a sample is *stored twice* (two stores, one
//! identity) and served once, the reads collapsing by point and timestamp. A *duplicate* is a
//! sample one store holds twice, or two stores hold with different values: the collapse could
//! not hide that.

use super::tap::{Published, SeriesKey};
use super::FailoverError;
use crate::historian::{Historian, HistorianSection};
use crate::store::{IoRuntime, StoreConfig};
use cistern_schemas::{PointId, Timestamp};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Census {
    /// Distinct published samples.
    pub published: u64,
    /// Of them, found in at least one store.
    pub durable: u64,
    /// Published and in no store.
    pub lost: u64,
    /// Held by two stores or more (a redelivery after a takeover; served once).
    pub stored_twice: u64,
    /// Held twice by one store, or by two with different values.
    pub duplicates: u64,
    /// Samples in a store at a time of the run that the tap never saw published.
    pub unpublished_stored: u64,
    /// Samples (of published series) each node's store holds.
    pub per_node: Vec<u64>,
    /// A few lost samples, `point@t_ms`, for the investigation.
    pub lost_examples: Vec<String>,
}

/// What one store holds of one series: `(t_ms, value)` in the store's order.
pub type Held = Vec<(i64, f64)>;

impl Census {
    /// Adds one series: the published timestamps (sorted, distinct) and what each store holds.
    pub fn add_series(&mut self, name: &dyn Fn() -> String, published: &[i64], held: &[Held]) {
        if self.per_node.len() < held.len() {
            self.per_node.resize(held.len(), 0);
        }
        // Per timestamp: how many stores hold it, and whether their values agree.
        let mut found: std::collections::BTreeMap<i64, (u32, f64, bool)> = Default::default();
        for (node, samples) in held.iter().enumerate() {
            self.per_node[node] += samples.len() as u64;
            let mut last: Option<i64> = None;
            for &(t, v) in samples {
                if last == Some(t) {
                    // The same store, twice.
                    self.duplicates += 1;
                    continue;
                }
                last = Some(t);
                let e = found.entry(t).or_insert((0, v, true));
                if e.0 > 0 && e.1.to_bits() != v.to_bits() {
                    e.2 = false;
                }
                e.0 += 1;
            }
        }
        self.published += published.len() as u64;
        for t in published {
            match found.remove(t) {
                None => {
                    self.lost += 1;
                    if self.lost_examples.len() < 10 {
                        self.lost_examples.push(format!("{}@{t}", name()));
                    }
                }
                Some((stores, _, agree)) => {
                    self.durable += 1;
                    if stores > 1 {
                        self.stored_twice += 1;
                    }
                    if !agree {
                        self.duplicates += 1;
                    }
                }
            }
        }
        self.unpublished_stored += found.len() as u64;
    }
}

/// One node's samples, opened as a restarted node opens them: the store, then the historian
/// reading its write-ahead back (what was durable but not yet sealed).
struct Opened {
    historian: Historian,
    // Last: the runtime must outlive the historian's writer.
    _io: IoRuntime,
}

async fn open(dir: &Path) -> Result<Opened, FailoverError> {
    let fail = |e: String| FailoverError::Census(format!("cannot open {}: {e}", dir.display()));
    let config = StoreConfig {
        data_dir: dir.to_path_buf(),
        ..StoreConfig::default()
    };
    let section = HistorianSection::default();
    let io = IoRuntime::new().map_err(|e| fail(e.to_string()))?;
    let opened = crate::store::open(&config, &section.retention(), &io)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut settings = section.historian_config();
    // Reading only: no compactor (whose stop waits for its tick).
    settings.compaction = None;
    let (store, wal, handle) = (opened.store, dir.to_path_buf(), io.handle());
    let historian = io
        .handle()
        .spawn_blocking(move || Historian::start(store, &wal, settings, handle))
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(e.to_string()))?;
    Ok(Opened { historian, _io: io })
}

/// Looks for every published sample in the stores of `data_dirs` (the nodes have stopped).
pub async fn count(published: &Published, data_dirs: &[PathBuf]) -> Result<Census, FailoverError> {
    let mut stores = Vec::with_capacity(data_dirs.len());
    for dir in data_dirs {
        stores.push(open(dir).await?);
    }
    let from = Timestamp(published.first_ms);
    let to = Timestamp(published.last_ms);
    let mut census = Census {
        per_node: vec![0; stores.len()],
        ..Census::default()
    };
    let mut keys: Vec<&SeriesKey> = published.series.keys().collect();
    keys.sort();
    for key in keys {
        let Some(ts) = published.series.get(key) else {
            continue;
        };
        let point = point_of(key);
        let mut held = Vec::with_capacity(stores.len());
        for s in &stores {
            let samples = s
                .historian
                .history(&point, from, to)
                .await
                .map_err(|e| FailoverError::Census(format!("cannot read {point}: {e}")))?;
            held.push(samples);
        }
        census.add_series(&|| point.to_string(), ts, &held);
    }
    for s in stores {
        // Blocks while the writer flushes: off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || s.historian.stop()).await;
    }
    Ok(census)
}

/// The point a series names.
fn point_of(key: &SeriesKey) -> PointId {
    let (device, index) = key;
    let name = device
        .unit
        .kind()
        .points()
        .get(usize::from(*index))
        .map_or("?", |s| s.name);
    PointId {
        device: device.clone(),
        name: Arc::from(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> String {
        "XM-0001/P1.freq".into()
    }

    #[test]
    fn a_sample_in_no_store_is_lost_and_in_two_is_stored_twice() {
        let mut c = Census::default();
        let published = [10, 20, 30, 40];
        let a: Held = vec![(10, 1.0), (20, 2.0)];
        // The new owner got 20 again (redelivered) and 30; 40 is nowhere; 50 was never
        // published.
        let b: Held = vec![(20, 2.0), (30, 3.0), (50, 5.0)];
        c.add_series(&name, &published, &[a, b]);
        assert_eq!(c.published, 4);
        assert_eq!(c.durable, 3);
        assert_eq!(c.lost, 1);
        assert_eq!(c.lost_examples, vec!["XM-0001/P1.freq@40".to_owned()]);
        assert_eq!(c.stored_twice, 1);
        assert_eq!(c.duplicates, 0);
        assert_eq!(c.unpublished_stored, 1);
        assert_eq!(c.per_node, vec![2, 3]);
    }

    /// The real path: samples made durable by two "nodes" (the historian over the embedded
    /// store, in two data directories, left in the write-ahead as a killed node leaves them),
    /// then found by opening each directory again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn samples_durable_in_each_nodes_data_directory_are_found_there() {
        use crate::lab::failover::tap::Ledger;
        use cistern_actors::ports::{Arrival, SampleSink};
        use cistern_actors::Receipt;
        use cistern_schemas::reading::{PointValue, Record};
        use cistern_schemas::telemetry;
        use cistern_schemas::{DeviceId, Quality};

        let root = std::env::temp_dir().join(format!("cistern-census-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dirs = vec![root.join("node-a"), root.join("node-b")];
        let device: DeviceId = "XM-0001/T1".parse().unwrap();
        let kind = device.unit.kind();
        let index = kind.point_index("level").unwrap();
        let now = Timestamp::now().0;
        let ts: Vec<i64> = (1..=4).map(|i| now - 10_000 + i * 2_000).collect();
        // Node a made t1, t2 durable; node b (the next owner) t2 again and t3; t4 is nowhere.
        for (dir, held) in dirs.iter().zip([&ts[0..2], &ts[1..3]]) {
            let node = open(dir).await.unwrap();
            let records: Vec<Record> = held
                .iter()
                .map(|&t| Record {
                    t: Timestamp(t),
                    values: vec![PointValue {
                        index: index as u16,
                        value: 1.5,
                        quality: Quality::GOOD,
                    }],
                })
                .collect();
            let (receipt, durable) = Receipt::new();
            node.historian
                .accept(&device, Arrival::Live, &records, receipt);
            tokio::time::timeout(std::time::Duration::from_secs(10), durable)
                .await
                .unwrap()
                .unwrap();
            // As a killed node leaves it: no orderly stop (the samples are in the write-ahead).
            drop(node.historian);
        }
        // What the tap saw: the four readings, one message each.
        let mut ledger = Ledger::default();
        let n = kind.points().len();
        for &t in &ts {
            let mut values = vec![f64::NAN; n];
            values[index] = 1.5;
            let payload = telemetry::encode(kind, &[(Timestamp(t), &values)], false);
            ledger.record(&telemetry::topic(&device), &payload, Timestamp::now());
        }
        let published = ledger.settle();
        let census = count(&published, &dirs).await.unwrap();
        assert_eq!(census.published, 4);
        assert_eq!(census.durable, 3);
        assert_eq!(census.lost, 1, "{census:?}");
        assert_eq!(
            census.lost_examples,
            vec![format!("XM-0001/T1.level@{}", ts[3])]
        );
        assert_eq!(census.stored_twice, 1);
        assert_eq!(census.duplicates, 0);
        assert_eq!(census.per_node, vec![2, 2]);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_store_holding_a_sample_twice_or_two_stores_disagreeing_is_a_duplicate() {
        let mut c = Census::default();
        let a: Held = vec![(10, 1.0), (10, 1.0), (20, 2.0)];
        let b: Held = vec![(20, 2.5)];
        c.add_series(&name, &[10, 20], &[a, b]);
        assert_eq!(c.lost, 0);
        assert_eq!(c.duplicates, 2);
        assert_eq!(c.stored_twice, 1);
    }
}
