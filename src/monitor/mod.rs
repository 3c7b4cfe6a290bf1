//! What the platform tells the people who run it: readiness for `/readyz` ([`ready`]) and the
//! fleet gauges computed at scrape time ([`fleet`]). The metric families of each subsystem live
//! with it (`ingest/metrics.rs`, `historian/metrics.rs`, `actors/src/metrics.rs`, ...);
//! ARCHITECTURE.md § Observability lists them all, and ops/prometheus and ops/grafana use them.

pub mod fleet;
pub mod ready;
