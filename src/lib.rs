//! The Cistern server: command line, configuration, and the wiring of the actor tree to its
//! sources (MQTT, Modbus TCP), its sinks and its HTTP API; plus, apart from it, the lab — the
//! field simulator, the demo and the benchmarks that run against it.
//!
//! Layout: `node` wires a platform node; `api/` HTTP; `ingest/` field data in; `control/` writes
//! to the field (fill plans, set-points; next the linkage actions); `historian/`, `store/` history
//! and state on disk; `alarms/` rules on a node; `notify/` notifications (alarms and work orders to people, robots and webhooks); `auth/` identity; `monitor/` readiness and the
//! fleet view; `config` the configuration file. `lab/` holds the simulator, the simulated field,
//! the demo, `simulate` and the benchmarks; the product never imports it, and it is compiled only with the cargo feature `lab`.

pub mod alarms;
pub mod api;
pub mod auth;
pub mod business;
pub mod cluster;
pub mod config;
pub mod control;
pub mod historian;
pub mod ingest;
#[cfg(feature = "lab")]
pub mod lab;
pub mod monitor;
pub mod node;
pub mod notify;
pub mod store;
pub mod tls;
