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
use crate::historian::HistorianSection;
use crate::node::storage::Storage;
use crate::store::StoreConfig;
use cistern_schemas::{PointId, Timestamp};
use serde::Serialize;
use std::path::PathBuf;
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

/// Looks for every published sample in the stores of `data_dirs` (the nodes have stopped).
pub async fn count(published: &Published, data_dirs: &[PathBuf]) -> Result<Census, FailoverError> {
    let mut stores = Vec::with_capacity(data_dirs.len());
    for dir in data_dirs {
        let config = StoreConfig {
            data_dir: dir.clone(),
            ..StoreConfig::default()
        };
        let storage = Storage::open(&config, &HistorianSection::default())
            .await
            .map_err(|e| FailoverError::Census(format!("cannot open {}: {e}", dir.display())))?;
        stores.push(storage);
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
            let historian: &Arc<crate::historian::Historian> = &s.historian;
            let samples = historian
                .history(&point, from, to)
                .await
                .map_err(|e| FailoverError::Census(format!("cannot read {point}: {e}")))?;
            held.push(samples);
        }
        census.add_series(&|| point.to_string(), ts, &held);
    }
    for s in stores {
        s.close().await;
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
