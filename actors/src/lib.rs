//! Cistern's actor tree: one supervised actix actor per pump room, pump, tank and camera.
//!
//! ```text
//! FleetRegistry (DashMap room id -> room address, status board)
//!   └─ PumpRoomActor  (room-level points; routes device batches to its children)
//!        ├─ PumpActor   × n
//!        ├─ TankActor   × n
//!        └─ CameraActor × n
//! ```
//!
//! Actors hold live state: per point the latest value, its quality (with a reason) and its
//! source timestamp, plus state derived from it. A point not updated for 3× its expected period
//! turns stale; a room whose gateway falls silent past `offline_after` is offline.
//!
//! Supervision: every handler runs under [`supervision::guarded`]; a panic is caught, counted,
//! logged, and stops the actor, whose actix `Supervisor` restarts it in place (same address,
//! same mailbox) and rebuilds its state from its last snapshot. Siblings never notice.
//!
//! Ports: the crate needs a [`Clock`], a [`SnapshotStore`] and a [`SampleSink`] (the historian);
//! `src/` provides them. actix stays inside this crate so that it could be swapped.

pub mod alarms;
pub mod camera;
pub mod clock;
pub mod device;
pub mod district;
pub mod figures;
pub mod lag;
pub mod live;
pub mod mailbox;
pub mod metrics;
pub mod ports;
pub mod pump;
pub mod pump_room;
pub mod registry;
pub mod supervision;
pub mod tank;

pub use clock::{Clock, ManualClock, SystemClock};
pub use device::Intake;
pub use figures::{LiveFigures, RoomFigures};
pub use live::{LiveFeed, NullLiveFeed};
pub use metrics::ActorMetrics;
pub use ports::{MemorySnapshotStore, NullSampleSink, Receipt, SampleSink, SnapshotStore};
pub use registry::{FleetRegistry, FollowError, RouteError};

use std::time::Duration;

/// Timing of the actor tree.
#[derive(Clone, Debug)]
pub struct ActorConfig {
    /// A room whose gateway sent nothing for this long is offline.
    pub offline_after: Duration,
    /// A point not updated for this many expected periods is stale.
    pub stale_periods: u32,
    /// How often actors sweep their points for staleness.
    pub sweep_every: Duration,
    /// Batches a room may have accepted but not yet applied (its intake permits); when they
    /// are all taken, ingest waits for one to be released: samples are never dropped.
    pub mailbox: usize,
    /// How far ahead of the node's clock a sample may be stamped and still be taken: beyond
    /// it, the sample is refused (a gateway clock running fast must not pin live state).
    pub max_future_skew: Duration,
    /// Readiness fails (`ingest_lag`) while the samples being applied are this far behind
    /// the node's clock.
    pub max_ingest_lag: Duration,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            offline_after: Duration::from_secs(60),
            stale_periods: 3,
            sweep_every: Duration::from_secs(1),
            mailbox: 256,
            max_future_skew: Duration::from_secs(5),
            max_ingest_lag: Duration::from_secs(15),
        }
    }
}
