//! What the actors need from the outside, as traits (ports); `src/` provides the adapters.
//!
//! - [`SnapshotStore`]: where an actor leaves its state so that a restart can rebuild it.
//!   In memory for now; the historian issue persists it.
//! - [`SampleSink`]: where accepted samples go after de-duplication (the historian). It must
//!   never block: the historian buffers and spills on its side.
//! - [`AuditPort`]: where writes to the field (plans, set-points) are audited.
//! - [`PlanPort`]: where a district's agreed fill plans go to reach the rooms' controllers.
//! - [`Receipt`]: travels with a batch from its producer (the MQTT ingest) to the sink, which
//!   completes it once the samples are durable; the producer acknowledges only then.

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

/// The producer's side of a batch's durability: completed once the batch's samples are
/// durable (or once nothing of it needs storing), dropped without completing when they were
/// lost on the way (a crashed actor, a stopped historian) — the producer sees the difference.
#[derive(Debug, Default)]
pub struct Receipt(Option<tokio::sync::oneshot::Sender<()>>);

impl Receipt {
    /// A receipt and the producer's end, which resolves `Ok` on completion.
    pub fn new() -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Self(Some(tx)), rx)
    }

    /// A receipt nobody waits for.
    pub fn none() -> Self {
        Self(None)
    }

    /// Whether a producer waits on it.
    pub fn is_awaited(&self) -> bool {
        self.0.is_some()
    }

    /// Tells the producer its samples are durable.
    pub fn complete(mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Receives every accepted, de-duplicated sample, in the order it was applied, with the
/// batch's receipt to complete once they are durable.
pub trait SampleSink: Send + Sync + std::fmt::Debug + 'static {
    fn accept(&self, device: &DeviceId, arrival: Arrival, records: &[Record], receipt: Receipt);
}

/// Discards samples (used until a historian is wired in, and in benchmarks of the actors alone).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSampleSink;

impl SampleSink for NullSampleSink {
    fn accept(&self, _device: &DeviceId, _arrival: Arrival, _records: &[Record], receipt: Receipt) {
        receipt.complete();
    }
}

/// One audited action taken on the field (a plan or a set-point written to a controller).
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    /// Who acted: an operator's user name, or `system:<component>` for the platform itself.
    pub user: String,
    /// What kind of action: `plan_write`, `setpoint_write`.
    pub action: &'static str,
    /// What it acted on (a tank or point id).
    pub target: String,
    /// The written value(s) and the outcome.
    pub detail: String,
    /// Whether the write took effect (read back identical).
    pub ok: bool,
}

/// Where field writes are audited. The server crate implements it over its audit log, so the
/// actors never depend on identity or its storage.
pub trait AuditPort: Send + Sync + std::fmt::Debug + 'static {
    fn record(&self, record: AuditRecord);
}

/// One tank's agreed plan on its way to the room's controller.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanDispatch {
    pub tank: cistern_schemas::DeviceId,
    /// The local rule the tank confirmed (windows, target levels, fallback).
    pub rule: crate::district::LocalRule,
    /// Its place in the round's order (0 = served first: least hours of autonomy).
    pub priority: u32,
}

/// What became of one dispatched plan: `Ok` once the controller holds it (written and read
/// back identical), else why not, in words an operator can act on.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanDelivery {
    pub tank: cistern_schemas::DeviceId,
    pub result: Result<(), String>,
}

/// A boxed future, so ports stay object-safe without an async-trait dependency.
pub type PortFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Where a district's agreed plans go to reach the field. The server implements it over its
/// Modbus writer (batched per room, audited, read back); the actors never see Modbus.
/// `author` is who the audit log names (`system:district-<id>`).
pub trait PlanPort: Send + Sync + std::fmt::Debug + 'static {
    fn deliver(&self, author: String, plans: Vec<PlanDispatch>) -> PortFuture<Vec<PlanDelivery>>;
}
