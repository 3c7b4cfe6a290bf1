//! Faults the simulator can inject: their names (the vocabulary of the demo API
//! `GET /api/v1/sim/faults`), the record of an active fault, and the room-level effects of the
//! faults active in a room.
//!
//! Every fault lasts for a given duration, then the plant recovers on its own. Several faults
//! may be active in one room at once, including two of one kind (two pumps tripped); effects are
//! therefore recomputed from the list of active faults whenever it changes, never toggled, so
//! that ending one fault cannot undo another.

use cistern_schemas::{RoomId, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A kind of fault the simulator can inject into a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    PumpTrip,
    PumpDegradation,
    TankLeak,
    Overflow,
    InletPressureLoss,
    ChlorineDrop,
    TurbiditySpike,
    StuckSensor,
    FailedSensor,
    ChatteringContact,
    CommsLoss,
    MainsLoss,
    Flooding,
    Smoke,
    Intrusion,
    PipeLeak,
}

impl FaultKind {
    /// Every fault kind, in a stable order.
    pub const ALL: [FaultKind; 16] = [
        FaultKind::PumpTrip,
        FaultKind::PumpDegradation,
        FaultKind::TankLeak,
        FaultKind::Overflow,
        FaultKind::InletPressureLoss,
        FaultKind::ChlorineDrop,
        FaultKind::TurbiditySpike,
        FaultKind::StuckSensor,
        FaultKind::FailedSensor,
        FaultKind::ChatteringContact,
        FaultKind::CommsLoss,
        FaultKind::MainsLoss,
        FaultKind::Flooding,
        FaultKind::Smoke,
        FaultKind::Intrusion,
        FaultKind::PipeLeak,
    ];

    /// The kinds a random [`fault_plan`] draws from: every kind but the pipe leak, which only
    /// shows over nights (a 5-90 minute leak is invisible to the night-flow analysis) and is
    /// injected on purpose (`Simulator::inject_pipe_leak`). Keeping it out also keeps the
    /// seeded plans of the backtests what they were.
    pub const PLANNED: [FaultKind; 15] = [
        FaultKind::PumpTrip,
        FaultKind::PumpDegradation,
        FaultKind::TankLeak,
        FaultKind::Overflow,
        FaultKind::InletPressureLoss,
        FaultKind::ChlorineDrop,
        FaultKind::TurbiditySpike,
        FaultKind::StuckSensor,
        FaultKind::FailedSensor,
        FaultKind::ChatteringContact,
        FaultKind::CommsLoss,
        FaultKind::MainsLoss,
        FaultKind::Flooding,
        FaultKind::Smoke,
        FaultKind::Intrusion,
    ];

    /// The snake_case name used on the wire and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::PumpTrip => "pump_trip",
            FaultKind::PumpDegradation => "pump_degradation",
            FaultKind::TankLeak => "tank_leak",
            FaultKind::Overflow => "overflow",
            FaultKind::InletPressureLoss => "inlet_pressure_loss",
            FaultKind::ChlorineDrop => "chlorine_drop",
            FaultKind::TurbiditySpike => "turbidity_spike",
            FaultKind::StuckSensor => "stuck_sensor",
            FaultKind::FailedSensor => "failed_sensor",
            FaultKind::ChatteringContact => "chattering_contact",
            FaultKind::CommsLoss => "comms_loss",
            FaultKind::MainsLoss => "mains_loss",
            FaultKind::Flooding => "flooding",
            FaultKind::Smoke => "smoke",
            FaultKind::Intrusion => "intrusion",
            FaultKind::PipeLeak => "pipe_leak",
        }
    }

    /// What the fault does, in one line (shown by the demo API).
    pub fn description(self) -> &'static str {
        match self {
            FaultKind::PumpTrip => {
                "the duty pump's drive trips (fault = 1, running = 0); the standby takes over \
                 after ~5 s"
            }
            FaultKind::PumpDegradation => {
                "the duty pump's impeller is worn (15-25 % less head): it runs at a higher \
                 frequency and a lower efficiency"
            }
            FaultKind::TankLeak => {
                "tank T1 leaks 0.3-0.6 x the mean demand: inflow exceeds outflow, the level sags"
            }
            FaultKind::Overflow => {
                "tank T1's inlet valve jams open: the level rises to the overflow and water is \
                 lost over the weir"
            }
            FaultKind::InletPressureLoss => {
                "the municipal inlet pressure falls to ~0.02 MPa: the tanks stop refilling"
            }
            FaultKind::ChlorineDrop => "free chlorine at the outlet falls to 0.02-0.05 mg/L",
            FaultKind::TurbiditySpike => "outlet turbidity rises to 3-5 NTU",
            FaultKind::StuckSensor => {
                "the outlet pressure transmitter freezes at its present value"
            }
            FaultKind::FailedSensor => {
                "the outlet pressure transmitter fails low at 3.0 mA (NAMUR NE43 failure)"
            }
            FaultKind::ChatteringContact => "the door contact chatters, toggling every 3-8 s",
            FaultKind::CommsLoss => {
                "the room's gateway loses its uplink and buffers; physics carries on"
            }
            FaultKind::MainsLoss => {
                "mains power fails: voltages ~0, pumps stop, outlet pressure falls to the \
                 suction head"
            }
            FaultKind::Flooding => "the immersion sensor detects water on the floor",
            FaultKind::Smoke => "the smoke detector trips and sounds the siren",
            FaultKind::Intrusion => {
                "forced entry while armed: the door opens without a valid card (access = 3), \
                 the infrared detector and the cameras see motion, the siren sounds"
            }
            FaultKind::PipeLeak => {
                "a pipe leaks after the booster outlet: a constant 2-5 % of the room's mean \
                 daily flow on top of the demand, day and night (what the night-flow analysis \
                 looks for)"
            }
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault name that is not one of [`FaultKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fault kind {0:?}: expected one of pump_trip, pump_degradation, tank_leak, \
         overflow, inlet_pressure_loss, chlorine_drop, turbidity_spike, stuck_sensor, \
         failed_sensor, chattering_contact, comms_loss, mains_loss, flooding, smoke, intrusion, \
         pipe_leak"
)]
pub struct UnknownFaultKind(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFaultKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownFaultKind(s.chars().take(64).collect()))
    }
}

/// A fault to inject at a given instant: part of a [`fault_plan`].
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedFault {
    pub at: Timestamp,
    pub room: RoomId,
    pub fault: FaultKind,
    pub length: std::time::Duration,
}

/// A seeded plan of faults over `[start, start + span)`: per room, `per_room_day` faults a day
/// on average (the fraction drawn), each of a kind, start and length (5 to 90 min) drawn from
/// the seed. Sorted by start. The backtest and the fleet benchmark's load generator share it,
/// so that the same seed injects the same faults.
pub fn fault_plan<'a>(
    rooms: impl IntoIterator<Item = &'a RoomId>,
    seed: u64,
    start: Timestamp,
    span: std::time::Duration,
    per_room_day: f64,
) -> Vec<PlannedFault> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x00fa_0175);
    let mut plan = Vec::new();
    let expected = per_room_day.max(0.0) * span.as_secs_f64() / 86_400.0;
    for room in rooms {
        let mut n = expected.floor() as usize;
        if rng.random::<f64>() < expected.fract() {
            n += 1;
        }
        for _ in 0..n {
            let at = start
                + std::time::Duration::from_secs_f64(rng.random::<f64>() * span.as_secs_f64());
            let fault = FaultKind::PLANNED[rng.random_range(0..FaultKind::PLANNED.len())];
            let length = std::time::Duration::from_secs(rng.random_range(5 * 60..=90 * 60));
            plan.push(PlannedFault {
                at,
                room: room.clone(),
                fault,
                length,
            });
        }
    }
    plan.sort_by_key(|p| p.at);
    plan
}

/// A fault in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveFault {
    pub room: RoomId,
    pub fault: FaultKind,
    pub started: Timestamp,
    /// The fault ends (and the plant starts to recover) at this instant.
    pub ends: Timestamp,
    /// The device or point the fault acts on, when it acts on one (`P2`, `T1`,
    /// `outlet_pressure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// An active fault with the parameters drawn for it at injection.
#[derive(Clone, Debug)]
pub(crate) struct InjectedFault {
    pub(crate) record: ActiveFault,
    /// Pump or tank index the fault acts on (0 when it acts on the room).
    pub(crate) device: usize,
    /// Kind-specific size: wear fraction, leak coefficient, pressure, concentration, NTU, the
    /// frozen reading, or the pipe leak's flow (m³/h).
    pub(crate) magnitude: f64,
}

/// What the active faults do to the room as a whole (device faults are applied to the pumps
/// and tanks themselves).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RoomFaultEffects {
    pub(crate) mains_lost: bool,
    pub(crate) comms_lost: bool,
    /// Mains pressure forced down, MPa.
    pub(crate) mains_pressure_mpa: Option<f64>,
    /// Outlet chlorine pulled towards this, mg/L.
    pub(crate) chlorine_mg_l: Option<f64>,
    /// Outlet turbidity pulled towards this, NTU.
    pub(crate) turbidity_ntu: Option<f64>,
    /// The outlet pressure transmitter reads this, frozen.
    pub(crate) frozen_outlet_pressure: Option<f64>,
    pub(crate) failed_outlet_pressure: bool,
    pub(crate) chattering_door: bool,
    pub(crate) flooding: bool,
    pub(crate) smoke: bool,
    /// When the intruder forced the door, while the intrusion lasts.
    pub(crate) intrusion_since: Option<Timestamp>,
    /// Water lost from the pipes after the booster outlet, m³/h (the pipe leaks' sum).
    pub(crate) pipe_leak_m3h: f64,
}

impl RoomFaultEffects {
    pub(crate) fn of(active: &[InjectedFault]) -> Self {
        let mut e = RoomFaultEffects::default();
        for f in active {
            let m = f.magnitude;
            match f.record.fault {
                FaultKind::MainsLoss => e.mains_lost = true,
                FaultKind::CommsLoss => e.comms_lost = true,
                FaultKind::InletPressureLoss => {
                    e.mains_pressure_mpa = Some(e.mains_pressure_mpa.map_or(m, |p| p.min(m)));
                }
                FaultKind::ChlorineDrop => {
                    e.chlorine_mg_l = Some(e.chlorine_mg_l.map_or(m, |c| c.min(m)));
                }
                FaultKind::TurbiditySpike => {
                    e.turbidity_ntu = Some(e.turbidity_ntu.map_or(m, |t| t.max(m)));
                }
                // The first sensor fault to arrive decides what the transmitter shows.
                FaultKind::StuckSensor => {
                    if e.frozen_outlet_pressure.is_none() {
                        e.frozen_outlet_pressure = Some(m);
                    }
                }
                FaultKind::FailedSensor => e.failed_outlet_pressure = true,
                FaultKind::ChatteringContact => e.chattering_door = true,
                FaultKind::Flooding => e.flooding = true,
                FaultKind::Smoke => e.smoke = true,
                FaultKind::Intrusion => {
                    let t = f.record.started;
                    e.intrusion_since = Some(e.intrusion_since.map_or(t, |s| s.min(t)));
                }
                FaultKind::PipeLeak => e.pipe_leak_m3h += m.max(0.0),
                FaultKind::PumpTrip
                | FaultKind::PumpDegradation
                | FaultKind::TankLeak
                | FaultKind::Overflow => {}
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.as_str().parse::<FaultKind>(), Ok(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<FaultKind>(&json).unwrap(), kind);
            assert!(!kind.description().is_empty() && !kind.description().contains('\n'));
        }
        assert!("pump-trip".parse::<FaultKind>().is_err());
    }

    #[test]
    fn effects_are_the_union_of_the_active_faults() {
        let room = RoomId::new("XM-0001").unwrap();
        let fault = |kind, magnitude| InjectedFault {
            record: ActiveFault {
                room: room.clone(),
                fault: kind,
                started: Timestamp(0),
                ends: Timestamp(1000),
                target: None,
            },
            device: 0,
            magnitude,
        };
        let e = RoomFaultEffects::of(&[
            fault(FaultKind::InletPressureLoss, 0.03),
            fault(FaultKind::InletPressureLoss, 0.02),
            fault(FaultKind::Smoke, 0.0),
        ]);
        assert_eq!(e.mains_pressure_mpa, Some(0.02));
        assert!(e.smoke && !e.flooding && !e.mains_lost);
        assert_eq!(RoomFaultEffects::of(&[]), RoomFaultEffects::default());
    }
}
