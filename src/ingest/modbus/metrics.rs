//! Prometheus metrics of the Modbus poller. Labels are profile names only (a bounded set: the
//! files of `schemas/profiles/`); per-room detail belongs in logs, not in label values.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// The poller's metric families, registered once per registry.
#[derive(Clone, Debug)]
pub struct ModbusMetrics {
    requests: IntCounterVec,
    timeouts: IntCounterVec,
    exceptions: IntCounterVec,
    transport_errors: IntCounterVec,
    reconnects: IntCounterVec,
    poll_duration: HistogramVec,
}

/// The families resolved for one profile (no label lookup on the hot path).
#[derive(Clone, Debug)]
pub(crate) struct ProfileMetrics {
    pub requests: IntCounter,
    pub timeouts: IntCounter,
    pub exceptions: IntCounter,
    pub transport_errors: IntCounter,
    pub reconnects: IntCounter,
    pub poll_duration: prometheus::Histogram,
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), &["profile"])?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl ModbusMetrics {
    /// Creates and registers the families; fails if they are already registered there.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let poll_duration = HistogramVec::new(
            HistogramOpts::new(
                "cistern_modbus_poll_duration_seconds",
                "Time to read every block of a room, for poll cycles that completed",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["profile"],
        )?;
        registry.register(Box::new(poll_duration.clone()))?;
        Ok(Self {
            requests: counter(registry, "cistern_modbus_requests_total", "Modbus read requests sent")?,
            timeouts: counter(
                registry,
                "cistern_modbus_timeouts_total",
                "Modbus requests or connection attempts that timed out",
            )?,
            exceptions: counter(
                registry,
                "cistern_modbus_exceptions_total",
                "Modbus exception responses (the block's points are marked bad)",
            )?,
            transport_errors: counter(
                registry,
                "cistern_modbus_transport_errors_total",
                "Modbus requests or connection attempts that failed at the transport or protocol level",
            )?,
            reconnects: counter(
                registry,
                "cistern_modbus_reconnects_total",
                "Connection attempts after a lost link or a failed attempt",
            )?,
            poll_duration,
        })
    }

    pub(crate) fn for_profile(&self, profile: &str) -> ProfileMetrics {
        let l = [profile];
        ProfileMetrics {
            requests: self.requests.with_label_values(&l),
            timeouts: self.timeouts.with_label_values(&l),
            exceptions: self.exceptions.with_label_values(&l),
            transport_errors: self.transport_errors.with_label_values(&l),
            reconnects: self.reconnects.with_label_values(&l),
            poll_duration: self.poll_duration.with_label_values(&l),
        }
    }
}
