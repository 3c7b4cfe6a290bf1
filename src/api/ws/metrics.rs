//! The WebSocket API's metrics. Label values come from bounded sets only.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Why a socket ended (the `reason` label of `cistern_ws_disconnects_total`).
pub const REASONS: [&str; 7] = [
    "normal",
    "auth",
    "too_large",
    "stalled",
    "error",
    "too_many_clients",
    "shutdown",
];

#[derive(Clone, Debug)]
pub struct WsMetrics {
    pub clients: IntGauge,
    messages: IntCounterVec,
    pub messages_in: IntCounter,
    pub messages_out: IntCounter,
    pub conflated: IntCounter,
    pub dropped: IntCounter,
    pub disconnects: IntCounterVec,
}

impl WsMetrics {
    /// Metrics registered in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered()?;
        registry.register(Box::new(m.clients.clone()))?;
        registry.register(Box::new(m.messages.clone()))?;
        registry.register(Box::new(m.conflated.clone()))?;
        registry.register(Box::new(m.dropped.clone()))?;
        registry.register(Box::new(m.disconnects.clone()))?;
        Ok(m)
    }

    /// Metrics in no registry (tests, benchmarks).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        let messages = IntCounterVec::new(
            Opts::new(
                "cistern_ws_messages_total",
                "WebSocket messages, by direction (in: from clients, out: to clients)",
            ),
            &["direction"],
        )?;
        let disconnects = IntCounterVec::new(
            Opts::new(
                "cistern_ws_disconnects_total",
                "WebSocket connections ended, by reason",
            ),
            &["reason"],
        )?;
        for r in REASONS {
            disconnects.with_label_values(&[r]);
        }
        Ok(Self {
            clients: IntGauge::new("cistern_ws_clients", "Open WebSocket connections")?,
            messages_in: messages.with_label_values(&["in"]),
            messages_out: messages.with_label_values(&["out"]),
            messages,
            conflated: IntCounter::new(
                "cistern_ws_conflated_total",
                "Updates superseded by a newer one of the same key before they were sent",
            )?,
            dropped: IntCounter::new(
                "cistern_ws_dropped_total",
                "Updates dropped because a client's queue was full (its subscription re-snapshotted)",
            )?,
            disconnects,
        })
    }

    pub fn disconnect(&self, reason: &'static str) {
        self.disconnects.with_label_values(&[reason]).inc();
    }
}
