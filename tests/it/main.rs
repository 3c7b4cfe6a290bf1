//! Black-box and component tests of Cistern (one test binary: linking is the slow part of a
//! Rust build on two cores).

// Test support code outside #[test] functions fails loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod alarms;
mod analysis_energy;
mod analysis_leakage;
mod analysis_score;
mod assets;
mod assets_import;
mod audit;
mod auth;
mod backup;
mod bench;
mod browser;
mod cleaning;
mod clock_skew;
#[cfg(feature = "cluster")]
mod cluster_alarm;
#[cfg(feature = "cluster")]
mod cluster_api;
#[cfg(feature = "cluster")]
mod cluster_live;
#[cfg(feature = "cluster")]
mod cluster_sessions;
#[cfg(feature = "cluster")]
mod cluster_site;
#[cfg(feature = "cluster")]
mod cluster_tls;
mod crash;
mod demo;
#[cfg(feature = "cluster")]
mod failover;
mod history;
mod inspections;
mod modbus;
mod monitoring;
mod mqtt;
mod notify;
mod readme;
mod reliability;
mod rest;
mod rules;
mod sessions;
mod shard_ingest;
mod shutdown;
mod simulate;
mod support;
mod tanks;
mod tls;
mod ui;
mod ui_admin;
mod ui_alarms;
mod ui_assets;
mod ui_cockpit;
mod ui_compare;
mod ui_dispatch;
mod ui_inspection;
mod ui_knowledge;
mod ui_orders;
mod ui_pages;
mod ui_perf;
mod ui_reliability;
mod ui_room;
mod ui_sessions;
mod ui_shell;
mod workorders;
mod workorders_export;
mod ws;
mod ws_protocol;
