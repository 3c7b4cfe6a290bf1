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

/// How many QoS 1 messages rumqttd (0.20) sends a subscriber before it waits for their
/// acknowledgements: a constant of its router (`MAX_INFLIGHT`), whatever the configuration says
/// (`max_inflight_count` only sizes a connection's read batches). The node acknowledges a
/// message once its samples are durable, within the historian's `flush_every`, so through this
/// broker the node takes at most this many messages per flush: at the default 250 ms that is
/// 400 a second, against the 2,100-room fleet's 1,050 room messages a second. The demo flushes
/// more often for that reason (`lab::demo`); mosquitto's window is set by
/// `max_inflight_messages` (0: unlimited in `cistern bench`, 20,000 in ops/).
pub const SUBSCRIBER_WINDOW: usize = 100;

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
/// falls behind. A consumer further behind than that loses the oldest segment (rumqttd logs
/// "Read cursor start jumped"): the node must keep up, which [`SUBSCRIBER_WINDOW`] bounds.
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
# Not the window to a subscriber (see SUBSCRIBER_WINDOW): how many packets a connection reads
# from its socket at once.
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

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    use std::time::Duration;

    /// The demo's historian flush is set from this window (`lab::demo`): should a rumqttd
    /// upgrade change it, this says so. A subscriber that acknowledges nothing is sent exactly
    /// `SUBSCRIBER_WINDOW` of 300 QoS 1 messages, however large `max_inflight_count` is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_broker_sends_a_subscriber_at_most_its_window_unacknowledged() {
        let broker = tokio::task::spawn_blocking(|| start("127.0.0.1:0".parse().unwrap(), 1 << 20))
            .await
            .unwrap()
            .unwrap();
        let addr = broker.addr;
        let mut opts = MqttOptions::new("window-sub", addr.ip().to_string(), addr.port());
        opts.set_manual_acks(true).set_clean_session(true);
        let (sub, mut sub_loop) = AsyncClient::new(opts, 100);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match sub_loop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = tx.send(None);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Some(p.pkid));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        sub.subscribe("w/#", QoS::AtLeastOnce).await.unwrap();
        let subscribed = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(
            matches!(subscribed, Ok(Some(None))),
            "no SUBACK within 10 s"
        );

        let opts = MqttOptions::new("window-pub", addr.ip().to_string(), addr.port());
        let (publisher, mut pub_loop) = AsyncClient::new(opts, 400);
        tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
        for i in 0..300u32 {
            publisher
                .publish("w/x", QoS::AtLeastOnce, false, i.to_be_bytes().to_vec())
                .await
                .unwrap();
        }
        // Deliveries until none has come for two seconds (the window is full by then).
        let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(
            matches!(first, Ok(Some(Some(_)))),
            "nothing delivered within 10 s"
        );
        let mut delivered = 1;
        while let Ok(Some(Some(_))) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await
        {
            delivered += 1;
        }
        assert_eq!(delivered, SUBSCRIBER_WINDOW);
    }
}
