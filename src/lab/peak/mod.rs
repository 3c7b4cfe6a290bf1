//! Peak-shaving tank filling, measured: the SWS district benchmark of DOMAIN.md §5
//! (`cistern bench tanks`).
//!
//! - `sim`: the district simulator (demand, tanks, inlets on a shared main, outages);
//! - `oracle`: B3, the perfect-forecast LP;
//! - `bench`: the baselines B0 and B1, the platform (the protocol of
//!   `cistern_actors::district` on learned forecasts), the metrics and the table.
//!
//! The platform's logic itself lives in `cistern_actors::district`, where tank actors and a
//! district actor host it; this module only drives it against simulated physics.

pub mod bench;
pub mod oracle;
pub mod sim;

pub use bench::{run_tank_bench, TankBenchOptions, TankBenchReport};
pub use sim::Scale;
