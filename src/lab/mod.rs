//! The lab: everything that exists to exercise, demonstrate or measure Cistern rather than to
//! supervise a real site — the physics of simulated pump rooms ([`sim`]), the simulated rooms'
//! gateways and controllers ([`field`]), the embedded MQTT broker of the demo ([`broker`]), the
//! `cistern demo` and `cistern simulate` commands ([`demo`], [`simulate`]), the benchmarks
//! (`cistern bench`: [`bench`]; `cistern bench tanks`: [`peak`]; `cistern bench-store`:
//! [`store_bench`]; `cistern bench failover`, with the feature `cluster`: `failover`) and the
//! simulated-fleet driver of `cistern rules backtest` ([`backtest`]).
//!
//! The boundary runs one way: the lab uses the product (the node, the historian, the rule
//! engine, the planner), the product never names the lab. Where the product needs something
//! the lab provides — fault injection into the simulated field and its clock, for
//! `/api/v1/sim/faults` in the demo — it declares a port ([`crate::node::FieldSim`]) and the
//! lab implements it. The whole tree is behind the cargo feature `lab` (on by default), so
//! `cargo check -p cistern --no-default-features` proves that `cistern run` builds without it.

pub mod analysis_bench;
pub mod backtest;
pub mod backup_bench;
pub mod bench;
pub mod broker;
pub mod crews;
pub mod demo;
#[cfg(feature = "cluster")]
pub mod failover;
pub mod field;
pub mod peak;
pub mod sim;
pub mod simulate;
pub mod store_bench;
