//! The embedded MQTT broker of `cistern demo` (rumqttd), so that the demo needs no external
//! service. Production runs against the utility's own broker (mosquitto, EMQX, ...).
//!
//! rumqttd runs its own threads and runtimes; we start it on a thread of its own after checking
//! the address (rumqttd would only log a bind failure from inside its thread). Clients connect
//! with retries; the demo waits for the platform's own subscription before the simulated
//! gateways publish, so nothing is published before anyone listens.

use std::net::{SocketAddr, TcpListener};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("MQTT address {addr} is not available: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("embedded broker configuration is invalid: {0}")]
    Config(String),
    #[error("cannot start the broker thread: {0}")]
    Thread(std::io::Error),
}

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
}

/// Starts rumqttd on `addr` (port 0 picks a free port). `max_payload` bounds a PUBLISH.
///
/// rumqttd keeps published data in an in-memory commit log of segments; 8 × 16 MiB caps the
/// broker near 128 MiB (rumqttd's example, 10 × 100 MB, lets a long demo grow towards 1 GB)
/// while still holding about a minute of the 2,100-room fleet's traffic for a consumer that
/// falls behind.
pub fn start(addr: SocketAddr, max_payload: usize) -> Result<EmbeddedBroker, BrokerError> {
    // Resolve port 0 and fail early, with a clear message, when the port is taken.
    let probe = TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
    let addr = probe
        .local_addr()
        .map_err(|source| BrokerError::Bind { addr, source })?;
    drop(probe);

    let toml = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 50000
max_outgoing_packet_count = 1000
max_segment_size = 16777216
max_segment_count = 8

[v4.1]
name = "cistern-v4"
listen = "{addr}"
next_connection_delay_ms = 0
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = {max_payload}
max_inflight_count = 20000
dynamic_filters = true
"#
    );
    let config: rumqttd::Config =
        toml::from_str(&toml).map_err(|e| BrokerError::Config(e.to_string()))?;
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(%error, "embedded MQTT broker stopped");
            }
        })
        .map_err(BrokerError::Thread)?;

    tracing::info!(%addr, "embedded MQTT broker started");
    Ok(EmbeddedBroker { addr })
}
