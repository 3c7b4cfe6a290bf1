//! A node's storage stack, wired over the store port: the store chosen in `[store]`
//! ([`crate::store::open`]), the historian on it with its `[historian]` settings, actor
//! snapshots and alarm state loaded before the actors start and written behind. This wiring
//! lives with the node, not in `store/`, so that the store knows none of the modules that use
//! it (identities and audit open over [`Storage::store`] in `crate::auth`).
//!
//! Start: store → historian (reads its write-ahead back) → snapshots → alarm state.
//! Stop ([`Storage::close`], after the node has stopped): the write-behind tasks write their
//! last changes, then the historian flushes and joins its writer; the I/O runtime goes last.

use crate::alarms::StoredAlarms;
use crate::historian::{Historian, HistorianSection};
use crate::store::snapshots::StoredSnapshots;
use crate::store::{IoRuntime, Records, Store, StoreConfig, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// A node's storage: keep it alive until the node has stopped (the historian flushes at stop),
/// then [`Storage::close`] it.
#[derive(Debug)]
pub struct Storage {
    pub historian: Arc<Historian>,
    pub store: Arc<dyn Store>,
    /// Business records (the records port), for the services of `crate::business`.
    pub records: Arc<dyn Records>,
    /// Actor snapshots, loaded before the actors start and written behind.
    pub snapshots: Arc<StoredSnapshots>,
    snapshots_stop: tokio::sync::watch::Sender<bool>,
    snapshots_task: tokio::task::JoinHandle<()>,
    /// Alarm state and events, loaded before the actors start and written behind.
    pub alarms: Arc<StoredAlarms>,
    alarms_task: tokio::task::JoinHandle<()>,
    /// What a backup copies (the embedded store and the write-ahead; none on ScyllaDB).
    pub backup: Option<crate::backup::BackupSource>,
    // Last: the runtime must outlive the historian's writer.
    pub io: IoRuntime,
}

/// How often changed actor snapshots are written.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);

impl Storage {
    /// Opens the configured store and starts the historian on it (its write-ahead lives in
    /// `[store] data_dir` whatever the backend), then loads snapshots and alarm state.
    pub async fn open(
        config: &StoreConfig,
        historian: &HistorianSection,
    ) -> Result<Self, StoreError> {
        let io = IoRuntime::new()?;
        let opened = crate::store::open(config, &historian.retention(), &io).await?;
        let (store, records) = (opened.store, opened.records);
        let embedded = opened.embedded;
        let settings = historian.historian_config();
        let dir = config.data_dir.clone();
        let handle = io.handle();
        let writer_store = store.clone();
        let started = io
            .handle()
            .spawn_blocking(move || Historian::start(writer_store, &dir, settings, handle))
            .await
            .map_err(|e| StoreError::Unavailable(format!("historian start failed: {e}")))??;
        let loading = store.clone();
        let snapshots = Arc::new(
            io.handle()
                .spawn(async move { StoredSnapshots::load(loading.as_ref()).await })
                .await
                .map_err(|e| StoreError::Unavailable(format!("snapshot load failed: {e}")))??,
        );
        let (snapshots_stop, stop) = tokio::sync::watch::channel(false);
        let alarms_stop = stop.clone();
        let snapshots_task = io.handle().spawn(snapshots.clone().write_behind(
            store.clone(),
            SNAPSHOT_EVERY,
            stop,
        ));
        let loading = store.clone();
        let alarms = Arc::new(
            io.handle()
                .spawn(StoredAlarms::load(loading))
                .await
                .map_err(|e| StoreError::Unavailable(format!("alarm state load failed: {e}")))??,
        );
        // Alarm state is as durable as the samples that raised it.
        let alarms_task = io.handle().spawn(
            alarms
                .clone()
                .write_behind(historian.flush_every, alarms_stop),
        );
        let backup = embedded.map(|e| crate::backup::BackupSource {
            history: e.database(),
            wal: started.wal_database(),
        });
        Ok(Self {
            backup,
            historian: Arc::new(started),
            store,
            records,
            snapshots,
            snapshots_stop,
            snapshots_task,
            alarms,
            alarms_task,
            io,
        })
    }

    /// Writes the last snapshots and releases the store (after the node has stopped).
    pub async fn close(self) {
        let _ = self.snapshots_stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.snapshots_task).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.alarms_task).await;
        self.historian.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::scylla::cql_peer::CqlPeer;
    use crate::store::scylla::tests::config_for;
    use crate::store::{ChunkKey, Series, StoreBackend};
    use cistern_schemas::{PointId, Timestamp};

    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;
    const D: i64 = 20_000 * DAY;

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

    /// The `[store] backend = "scylla"` branch of [`Storage::open`]: the store is connected on the
    /// I/O runtime, the historian starts on it (reading its promise back from `state`) with its
    /// write-ahead in `data_dir`, and what goes through the store comes back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn storage_runs_the_historian_on_a_scylla_store() {
        let peer = CqlPeer::start().await;
        let data_dir =
            std::env::temp_dir().join(format!("cistern-scylla-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let config = StoreConfig {
            backend: StoreBackend::Scylla,
            data_dir: data_dir.clone(),
            scylla: Some(config_for(peer.node())),
        };
        let storage = Storage::open(&config, &HistorianSection::default())
            .await
            .unwrap();
        let p = "XM-0007/T1.level";
        storage
            .store
            .put_chunks(vec![(key(p, Series::Raw, D + HOUR), vec![7])])
            .await
            .unwrap();
        let got = storage
            .store
            .chunks(
                &point(p),
                Series::Raw,
                Timestamp(D + HOUR),
                Timestamp(D + DAY - 1),
            )
            .await
            .unwrap();
        assert_eq!(got, vec![(Timestamp(D + HOUR), vec![7])]);
        assert!(data_dir.exists(), "the write-ahead stays local");
        // Stopping the historian blocks (it flushes and joins its writer).
        tokio::task::spawn_blocking(move || drop(storage))
            .await
            .unwrap();
        let _ = std::fs::remove_dir_all(&data_dir);
    }
}
