//! The field simulator: a fleet of pump rooms with plausible physics and injectable faults,
//! for the demo, the integration tests and the benchmarks.
//!
//! It owns the simulated plant (demand, mains, tanks, booster pumps, power, water quality,
//! climate, security) and its faults; it knows nothing of wires. Gateways (`modbus_server`, the
//! MQTT publisher) read [`Simulator::readings`] and put them on the wire, buffering while
//! [`Simulator::comms_up`] is false, exactly as field gateways do.
//!
//! Time is simulated: the caller steps it (`step(dt)`), and the physics advances in fixed 1 s
//! sub-steps with the remainder carried, so a trajectory does not depend on how the caller
//! batches its steps. Each room has its own random streams keyed by (seed, room index), so a
//! room behaves the same in a fleet of 1 or of 2,100, and the same seed with the same calls
//! gives bit-identical readings.
//!
//! Layout: [`fleet`] generates inventories; `room` composes one room from `demand`, `tank`,
//! `booster` (on `pump_curve`), `water_quality`, `environment`, `security` and `power_meter`;
//! `readout` turns a room's state into catalog-ordered readings; [`faults`] names the faults.

pub mod modbus_server;

mod booster;
mod clock;
pub(crate) mod demand;
mod environment;
pub mod faults;
pub mod fleet;
mod geography;
mod noise;
mod power_meter;
mod pump_curve;
mod readout;
mod room;
mod security;
mod tank;
mod water_quality;

#[cfg(test)]
mod tests;

pub use faults::{fault_plan, ActiveFault, FaultKind, PlannedFault, UnknownFaultKind};
pub use fleet::generate_fleet;
pub use room::{PumpDiagnostics, RoomDiagnostics, TankDiagnostics};

use cistern_schemas::inventory::Inventory;
use cistern_schemas::reading::RoomReading;
use cistern_schemas::{RoomId, Timestamp};
use clock::LocalClock;
use room::RoomSim;
use std::collections::HashMap;
use std::time::Duration;

/// The physics sub-step.
const SUBSTEP: Duration = Duration::from_secs(1);

/// Why the simulator refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error("unknown room {0}")]
    UnknownRoom(RoomId),
    #[error("room {room}: a {fault} fault needs {needs}, which the room does not have")]
    NotApplicable {
        room: RoomId,
        fault: FaultKind,
        needs: &'static str,
    },
    #[error("room {room}: a {fault} fault needs a positive duration")]
    ZeroDuration { room: RoomId, fault: FaultKind },
}

/// What the platform wrote to a simulated controller (over its Modbus server): per tank its
/// fill plan (`None`: no plan, or registers that do not hold one), and the outlet pressure
/// set-point when it was written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ControllerWrites {
    pub plans: Vec<Option<cistern_schemas::fill_plan::PlanImage>>,
    pub outlet_setpoint_mpa: Option<f64>,
}

/// A simulated fleet of pump rooms.
#[derive(Debug)]
pub struct Simulator {
    rooms: Vec<RoomSim>,
    by_id: HashMap<RoomId, usize>,
    now: Timestamp,
    /// Simulated time requested but not yet stepped (less than one sub-step).
    carry: Duration,
}

impl Simulator {
    /// A simulator for every room of `inventory`, in a steady state at `start`.
    pub fn new(inventory: &Inventory, seed: u64, start: Timestamp) -> Self {
        let rooms: Vec<RoomSim> = inventory
            .rooms
            .iter()
            .enumerate()
            .map(|(i, spec)| RoomSim::new(spec, i, seed, start))
            .collect();
        let by_id = rooms
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        Self {
            rooms,
            by_id,
            now: start,
            carry: Duration::ZERO,
        }
    }

    /// The instant of the physics state (a remainder of less than a second from the last
    /// `step` is carried, not yet simulated).
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Advances physics by `dt` of simulated time, in 1 s sub-steps.
    pub fn step(&mut self, dt: Duration) {
        self.carry += dt;
        let substeps = self.carry.as_secs();
        self.carry -= Duration::from_secs(substeps);
        if substeps == 0 {
            return;
        }
        let start = self.now;
        // Rooms are independent: stepping each room through the whole batch keeps its state
        // hot in cache, with results identical to stepping the fleet second by second.
        for room in &mut self.rooms {
            let mut t = start;
            for _ in 0..substeps {
                let end = t + SUBSTEP;
                room.step(&LocalClock::at(t), end);
                t = end;
            }
        }
        self.now = start + Duration::from_secs(substeps);
    }

    /// Hands a room's controller what the platform wrote to it (an unknown room is ignored:
    /// the writes came from a server the simulator does not run).
    pub fn apply_writes(&mut self, room: &RoomId, writes: &ControllerWrites) {
        if let Some(r) = self.by_id.get(room).and_then(|&i| self.rooms.get_mut(i)) {
            r.apply_writes(writes);
        }
    }

    /// The current reading of every room, in inventory order.
    pub fn readings(&self) -> Vec<RoomReading> {
        self.rooms.iter().map(|r| r.reading(self.now)).collect()
    }

    /// The current reading of one room.
    pub fn reading(&self, room: &RoomId) -> Option<RoomReading> {
        self.room(room).map(|r| r.reading(self.now))
    }

    /// Injects `fault` into `room` from now for `duration`; the plant recovers afterwards.
    pub fn inject(
        &mut self,
        room: &RoomId,
        fault: FaultKind,
        duration: Duration,
    ) -> Result<(), SimError> {
        let now = self.now;
        let index = *self
            .by_id
            .get(room)
            .ok_or_else(|| SimError::UnknownRoom(room.clone()))?;
        match self.rooms.get_mut(index) {
            Some(r) => r.inject(fault, now, duration),
            None => Err(SimError::UnknownRoom(room.clone())),
        }
    }

    /// Injects a pipe leak after `room`'s booster outlet of `fraction` of the room's mean daily
    /// flow (0.02 = 2 %: a constant [`Simulator::mean_demand_m3h`] × `fraction` m³/h on top of
    /// the demand) from now for `duration`.
    pub fn inject_pipe_leak(
        &mut self,
        room: &RoomId,
        fraction: f64,
        duration: Duration,
    ) -> Result<(), SimError> {
        let now = self.now;
        let index = *self
            .by_id
            .get(room)
            .ok_or_else(|| SimError::UnknownRoom(room.clone()))?;
        match self.rooms.get_mut(index) {
            Some(r) => r.inject_pipe_leak(fraction, now, duration),
            None => Err(SimError::UnknownRoom(room.clone())),
        }
    }

    /// A room's long-run mean demand, m³/h (the simulator's truth of its mean daily flow / 24).
    pub fn mean_demand_m3h(&self, room: &RoomId) -> Option<f64> {
        self.room(room).map(RoomSim::mean_demand_m3h)
    }

    /// Every fault in progress, by room in inventory order, then by injection order.
    pub fn active_faults(&self) -> Vec<ActiveFault> {
        self.rooms
            .iter()
            .flat_map(|r| r.active_faults().cloned())
            .collect()
    }

    /// False while a comms-loss fault is active for the room (and for an unknown room): its
    /// gateway must buffer and replay later.
    pub fn comms_up(&self, room: &RoomId) -> bool {
        self.room(room).is_some_and(RoomSim::comms_up)
    }

    /// The room's true physics state, for tests and diagnostics.
    pub fn diagnostics(&self, room: &RoomId) -> Option<RoomDiagnostics> {
        self.room(room).map(|r| r.diagnostics(self.now))
    }

    /// Ids of the simulated rooms, in inventory order.
    pub fn room_ids(&self) -> impl Iterator<Item = &RoomId> {
        self.rooms.iter().map(|r| &r.id)
    }

    fn room(&self, id: &RoomId) -> Option<&RoomSim> {
        self.by_id.get(id).and_then(|&i| self.rooms.get(i))
    }
}
