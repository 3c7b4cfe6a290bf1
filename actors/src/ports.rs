//! What the actors need from the outside, as traits (ports); `src/` provides the adapters.
//!
//! - [`SnapshotStore`]: where an actor leaves its state so that a restart can rebuild it.
//!   In memory for now; the historian issue persists it.
//! - [`SampleSink`]: where accepted samples go after de-duplication (the historian). It must
//!   never block: the historian buffers and spills on its side.

use crate::device::DeviceSnapshot;
use cistern_schemas::reading::Record;
use cistern_schemas::DeviceId;
use dashmap::DashMap;

/// Keeps the last snapshot of every device.
pub trait SnapshotStore: Send + Sync + std::fmt::Debug + 'static {
    fn save(&self, device: &DeviceId, snapshot: DeviceSnapshot);
    fn load(&self, device: &DeviceId) -> Option<DeviceSnapshot>;
}

/// Snapshots held in process memory: they survive an actor restart, not a process restart.
#[derive(Debug, Default)]
pub struct MemorySnapshotStore {
    snapshots: DashMap<DeviceId, DeviceSnapshot>,
}

impl SnapshotStore for MemorySnapshotStore {
    fn save(&self, device: &DeviceId, snapshot: DeviceSnapshot) {
        self.snapshots.insert(device.clone(), snapshot);
    }

    fn load(&self, device: &DeviceId) -> Option<DeviceSnapshot> {
        self.snapshots.get(device).map(|s| s.clone())
    }
}

/// Whether accepted samples are live (newer than anything seen for the point) or a backfill
/// arriving after newer data (the store de-duplicates those by point and timestamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    Live,
    Backfill,
}

/// Receives every accepted, de-duplicated sample, in the order it was applied.
pub trait SampleSink: Send + Sync + std::fmt::Debug + 'static {
    fn accept(&self, device: &DeviceId, arrival: Arrival, records: &[Record]);
}

/// Discards samples (used until a historian is wired in, and in benchmarks of the actors alone).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSampleSink;

impl SampleSink for NullSampleSink {
    fn accept(&self, _device: &DeviceId, _arrival: Arrival, _records: &[Record]) {}
}
