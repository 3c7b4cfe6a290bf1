//! Opening the storage stack a node runs on: the store backend chosen in `[store]`, the
//! runtime its I/O runs on, and the historian writing into it.

use super::embedded::EmbeddedStore;
use super::scylla::ScyllaStore;
use super::snapshots::StoredSnapshots;
use super::{Store, StoreError};
use crate::config::{StoreBackend, StoreConfig};
use crate::historian::compact::CompactionConfig;
use crate::historian::{Historian, HistorianConfig};
use std::sync::Arc;

/// A runtime for store I/O, owned by whoever opens the store: the historian's writer thread
/// drives store calls on it. Dropping it inside an async context is allowed.
#[derive(Debug)]
pub struct IoRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl IoRuntime {
    pub fn new() -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-io")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store runtime: {e}")))?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A node's storage: keep it alive until the node has stopped (the historian flushes at stop),
/// then [`Storage::close`] it.
#[derive(Debug)]
pub struct Storage {
    pub historian: Arc<Historian>,
    pub store: Arc<dyn Store>,
    /// Actor snapshots, loaded before the actors start and written behind.
    pub snapshots: Arc<StoredSnapshots>,
    snapshots_stop: tokio::sync::watch::Sender<bool>,
    snapshots_task: tokio::task::JoinHandle<()>,
    /// Alarm state and events, loaded before the actors start and written behind.
    pub alarms: Arc<crate::alarms::StoredAlarms>,
    alarms_task: tokio::task::JoinHandle<()>,
    // Last: the runtime must outlive the historian's writer.
    pub io: IoRuntime,
}

/// Opens the configured store and starts the historian on it (its write-ahead lives in
/// `data_dir` whatever the backend).
pub async fn open_storage(config: &StoreConfig) -> Result<Storage, StoreError> {
    let io = IoRuntime::new()?;
    let store: Arc<dyn Store> = match config.backend {
        StoreBackend::Embedded => {
            let dir = config.data_dir.clone();
            Arc::new(
                io.handle()
                    .spawn_blocking(move || EmbeddedStore::open(&dir))
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("store start failed: {e}")))??,
            )
        }
        StoreBackend::Scylla => {
            let Some(scylla) = config.scylla_config() else {
                return Err(StoreError::Invalid(
                    "[store] backend = \"scylla\" needs a [store.scylla] section".into(),
                ));
            };
            // Connected on the I/O runtime: the driver's connection tasks live there, beside
            // the historian's writes that use them.
            Arc::new(
                io.handle()
                    .spawn(async move { ScyllaStore::connect(&scylla).await })
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("store start failed: {e}")))??,
            )
        }
    };
    let historian = HistorianConfig {
        flush_every: config.flush_every,
        seal_every: config.seal_every,
        seal_samples: config.seal_samples,
        max_open_samples: config.max_open_samples,
        compaction: Some(CompactionConfig {
            retention_raw: config.retention_raw,
            retention_1m: config.retention_1m,
            retention_1h: config.retention_1h,
            ..CompactionConfig::default()
        }),
        ..HistorianConfig::default()
    };
    let dir = config.data_dir.clone();
    let handle = io.handle();
    let writer_store = store.clone();
    let historian = io
        .handle()
        .spawn_blocking(move || Historian::start(writer_store, &dir, historian, handle))
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
            .spawn(crate::alarms::StoredAlarms::load(loading))
            .await
            .map_err(|e| StoreError::Unavailable(format!("alarm state load failed: {e}")))??,
    );
    let alarms_task = io
        .handle()
        .spawn(alarms.clone().write_behind(config.flush_every, alarms_stop));
    Ok(Storage {
        historian: Arc::new(historian),
        store,
        snapshots,
        snapshots_stop,
        snapshots_task,
        alarms,
        alarms_task,
        io,
    })
}

/// How often changed actor snapshots are written.
const SNAPSHOT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Storage {
    /// Writes the last snapshots and releases the store (after the node has stopped).
    pub async fn close(self) {
        let _ = self.snapshots_stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.snapshots_task).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.alarms_task).await;
        self.historian.stop();
    }
}
