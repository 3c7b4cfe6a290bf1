//! Peak-shaving tank filling (错峰调蓄): the pure logic that tank actors and a district actor
//! host — demand learning, tank needs, and the district filling protocol. No actix, no I/O,
//! no clock: every function takes the 15-minute slot it is about (slot 0 = a Monday 00:00).
//!
//! - [`forecast`]: hour-of-week demand profile learned online, robust to outliers, gaps and
//!   holidays; 24-h forecasts with a quantile band.
//! - [`needs`]: hard minimum, fire reserve, safety reserve in hours of autonomy, water-age cap,
//!   inlet capacity → the must-have / may-have curves a tank bids with.
//! - [`protocol`]: the messages of a planning round and the local rule a plan leaves with the
//!   room's controller (the fallback when the room is cut off).
//! - [`planner`]: the per-tank planner and the district coordinator state machines.
//!
//! The benchmark that measures all this (`cistern bench tanks`) lives in the server crate
//! (`src/peak`), with the district simulator and the perfect-forecast LP oracle.

pub mod forecast;
pub mod needs;
pub mod planner;
pub mod protocol;
#[cfg(test)]
mod tests;

pub use forecast::{Calendar, DayType, DemandForecaster, Forecast, ForecastConfig, ForecastSlot};
pub use needs::{tank_needs, NeedsConfig, TankNeeds, TankSpec};
pub use planner::{
    run_round, CoordinatorConfig, CoordinatorPhase, DistrictConstraints, DistrictCoordinator,
    RoundSummary, TankPlanner, TankPlannerConfig, TankPlannerState, Tariff, TariffTier,
    NETWORK_PEAK_WINDOWS,
};
pub use protocol::{
    FillBid, FillGranted, FillWindow, ForecastMissed, InletCommand, LocalRule, PlanConfirmed,
    PlanningRoundOpened,
};

use cistern_schemas::DeviceId;

/// A protocol message that does not fit the receiver's state.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DistrictError {
    #[error("message of round {round} arrived during round {current}")]
    StaleRound { round: u64, current: u64 },
    #[error("no planning round is open")]
    NoOpenRound,
    #[error("tank {tank}: the coordinator is not collecting bids or confirmations")]
    NotCollecting { tank: DeviceId },
    #[error("tank {tank}: grant of round {round} without a bid")]
    UnexpectedGrant { tank: DeviceId, round: u64 },
    #[error("tank {tank}: bid does not cover the {expected}-slot horizon")]
    HorizonMismatch { tank: DeviceId, expected: usize },
}
