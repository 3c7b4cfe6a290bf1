//! Actor snapshots that survive a process restart: held in memory for the actors (a save is a
//! map insert: the actors never wait on the store), written behind to the store's state
//! records (kind `snapshot`, JSON) every `every`, and loaded back before the actors start, so
//! that a restarted node rehydrates every device from its last written state. A crash loses at
//! most `every` of snapshot changes — the live data that follows within seconds replaces them
//! anyway. A snapshot may also run ahead of the historian's write-ahead (a sample applied live
//! but not yet durable when the process was killed): its redelivery is then not taken for a
//! duplicate of the restored value but passed on to history (`PointTable::apply`), so
//! telemetry is never at risk.

use super::{Store, StoreError};
use cistern_actors::device::DeviceSnapshot;
use cistern_actors::SnapshotStore;
use cistern_schemas::DeviceId;
use dashmap::{DashMap, DashSet};
use std::sync::Arc;
use std::time::Duration;

const KIND: &str = "snapshot";

/// Snapshots in memory, persisted behind (see the module doc).
#[derive(Debug, Default)]
pub struct StoredSnapshots {
    snapshots: DashMap<DeviceId, DeviceSnapshot>,
    dirty: DashSet<DeviceId>,
}

impl StoredSnapshots {
    /// Loads every snapshot the store holds. Unreadable records are logged and skipped.
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let this = Self::default();
        for (key, bytes) in store.state(KIND).await? {
            let parsed = key
                .parse::<DeviceId>()
                .map_err(|e| e.to_string())
                .and_then(|id| {
                    serde_json::from_slice::<DeviceSnapshot>(&bytes)
                        .map(|s| (id, s))
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok((id, snapshot)) => {
                    this.snapshots.insert(id, snapshot);
                }
                Err(error) => tracing::warn!(%key, %error, "unreadable snapshot skipped"),
            }
        }
        tracing::info!(devices = this.snapshots.len(), "snapshots loaded");
        Ok(this)
    }

    /// Writes the snapshots changed since the last write. Returns how many went.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let ids: Vec<DeviceId> = self.dirty.iter().map(|id| id.clone()).collect();
        let mut records = Vec::with_capacity(ids.len());
        for id in &ids {
            self.dirty.remove(id);
            if let Some(snapshot) = self.snapshots.get(id) {
                match serde_json::to_vec(&*snapshot) {
                    Ok(bytes) => records.push((id.to_string(), Some(bytes))),
                    Err(error) => tracing::error!(device = %id, %error, "cannot encode a snapshot"),
                }
            }
        }
        let n = records.len();
        if n == 0 {
            return Ok(0);
        }
        if let Err(e) = store.put_state(KIND, records).await {
            // Written again next time.
            for id in ids {
                self.dirty.insert(id);
            }
            return Err(e);
        }
        Ok(n)
    }

    /// Writes behind every `every` until `shutdown` turns true, then once more.
    pub async fn write_behind(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                _ = shutdown.changed() => true,
            };
            if let Err(error) = self.flush(store.as_ref()).await {
                tracing::warn!(%error, "snapshots not written; retrying");
            }
            if stop || *shutdown.borrow() {
                return;
            }
        }
    }
}

impl SnapshotStore for StoredSnapshots {
    fn save(&self, device: &DeviceId, snapshot: DeviceSnapshot) {
        self.snapshots.insert(device.clone(), snapshot);
        self.dirty.insert(device.clone());
    }

    fn load(&self, device: &DeviceId) -> Option<DeviceSnapshot> {
        self.snapshots.get(device).map(|s| s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;
    use cistern_actors::device::PointState;
    use cistern_schemas::{Quality, Timestamp};

    #[tokio::test]
    async fn snapshots_written_behind_load_back_exactly() {
        let d = std::env::temp_dir().join(format!("cistern-snapshots-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let store = EmbeddedStore::open(&d).unwrap();
        let snap = DeviceSnapshot {
            taken_at: Timestamp(5),
            points: vec![PointState {
                value: Some(1.1179999999999999),
                quality: Quality::bad("range"),
                t: Some(Timestamp(4)),
            }],
        };
        let id: DeviceId = "XM-0001/T1".parse().unwrap();
        let saved = StoredSnapshots::default();
        saved.save(&id, snap.clone());
        assert_eq!(saved.flush(&store).await.unwrap(), 1);
        assert_eq!(
            saved.flush(&store).await.unwrap(),
            0,
            "nothing changed since"
        );
        let back = StoredSnapshots::load(&store).await.unwrap();
        assert_eq!(back.load(&id), Some(snap));
    }
}
