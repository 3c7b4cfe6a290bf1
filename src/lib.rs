//! The Cistern server: command line, configuration, and the wiring of the actor tree to its
//! sources (MQTT, Modbus TCP), its sinks and its HTTP API; plus the field simulator that the
//! demo and the tests run against.
//!
//! Layout: `api/` HTTP; `ingest/` field data in; `control/` writes to the field (fill plans,
//! set-points); `sim/` the physics of simulated pump rooms; `field/` the simulated rooms'
//! gateways and controllers around it; `node` wires a platform node; `demo` and `simulate`
//! are the commands of the same names; `broker` embeds rumqttd.

pub mod alarms;
pub mod api;
pub mod auth;
pub mod bench;
pub mod broker;
pub mod config;
pub mod control;
pub mod demo;
pub mod field;
pub mod historian;
pub mod ingest;
pub mod monitor;
pub mod node;
pub mod peak;
pub mod sim;
pub mod simulate;
pub mod store;
