//! Opening the store a node runs on: the backend chosen in `[store]`, connected or opened on
//! the runtime its I/O runs on ([`IoRuntime`]). What runs over the store (the historian, actor
//! snapshots, alarm state, identities, audit, records) is started by the node
//! (`crate::node::storage`), never from here: the store knows none of its callers.

use super::config::{Retention, StoreBackend, StoreConfig, StoreConfigError};
use super::embedded::EmbeddedStore;
use super::scylla::ScyllaStore;
use super::{Records, Store, StoreError};
use std::sync::Arc;

/// An opened backend, through both of its ports.
#[derive(Debug, Clone)]
pub struct OpenedStore {
    /// Telemetry chunks, state and events.
    pub store: Arc<dyn Store>,
    /// Business records ([`super::records`]).
    pub records: Arc<dyn Records>,
    /// The embedded store itself, when it is the backend (a backup copies it).
    pub embedded: Option<EmbeddedStore>,
}

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

/// Opens the store `config` chooses, on `io` (ScyllaDB's connection tasks live there, beside
/// the writes that use them). `retention` gives ScyllaDB the TTL of each series
/// `[store.scylla.ttl]` leaves out.
pub async fn open(
    config: &StoreConfig,
    retention: &Retention,
    io: &IoRuntime,
) -> Result<OpenedStore, StoreError> {
    match config.backend {
        StoreBackend::Embedded => {
            let dir = config.data_dir.clone();
            let store = Arc::new(
                io.handle()
                    .spawn_blocking(move || EmbeddedStore::open(&dir))
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("store start failed: {e}")))??,
            );
            Ok(OpenedStore {
                store: store.clone(),
                embedded: Some(store.as_ref().clone()),
                records: store,
            })
        }
        StoreBackend::Scylla => {
            let Some(scylla) = config.scylla_config(retention) else {
                return Err(StoreError::Invalid(
                    StoreConfigError::NoScyllaSection.to_string(),
                ));
            };
            let store = Arc::new(
                io.handle()
                    .spawn(async move { ScyllaStore::connect(&scylla).await })
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("store start failed: {e}")))??,
            );
            Ok(OpenedStore {
                store: store.clone(),
                records: store,
                embedded: None,
            })
        }
    }
}
