//! The notification outbox: every notification is logged, and — with `[rules.webhook]` —
//! POSTed as JSON (the [`Notification`] as its body) to a webhook, from a bounded queue on its
//! own thread: a slow or dead receiver never slows the actors. A full queue drops the newest
//! and counts it; a failed POST is retried with backoff, then counted as failed.

use cistern_actors::alarms::{LogOutbox, Outbox};
use cistern_rules::Notification;
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Deserialize;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

/// `[rules.webhook]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://host:port/path` (put a TLS-terminating relay in front for https).
    pub url: String,
    /// Per request.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per notification.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Notifications waiting to be sent; beyond, new ones are dropped and counted.
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_attempts() -> u32 {
    3
}
fn default_queue() -> usize {
    10_000
}

/// Outcomes of webhook deliveries.
#[derive(Clone, Debug)]
pub struct OutboxMetrics {
    pub webhook: IntCounterVec,
}

impl OutboxMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            webhook: IntCounterVec::new(
                Opts::new(
                    "cistern_alarm_webhook_total",
                    "Webhook deliveries of notifications, by result (sent, failed, dropped)",
                ),
                &["result"],
            )?,
        };
        registry.register(Box::new(m.webhook.clone()))?;
        for result in ["sent", "failed", "dropped"] {
            m.webhook.with_label_values(&[result]);
        }
        Ok(m)
    }
}

/// The log, plus a webhook when configured.
#[derive(Debug)]
pub struct NodeOutbox {
    webhook: Option<(SyncSender<Notification>, OutboxMetrics)>,
}

impl NodeOutbox {
    /// Starts the webhook sender thread when configured.
    pub fn start(
        webhook: Option<&WebhookConfig>,
        metrics: OutboxMetrics,
    ) -> Result<Self, std::io::Error> {
        let Some(config) = webhook else {
            return Ok(Self { webhook: None });
        };
        let (tx, rx) = sync_channel(config.queue.max(1));
        let (config, m) = (config.clone(), metrics.clone());
        std::thread::Builder::new()
            .name("webhook".into())
            .spawn(move || deliver(rx, &config, &m))?;
        Ok(Self {
            webhook: Some((tx, metrics)),
        })
    }
}

impl Outbox for NodeOutbox {
    fn send(&self, notification: Notification) {
        if let Some((tx, m)) = &self.webhook {
            match tx.try_send(notification.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    m.webhook.with_label_values(&["dropped"]).inc();
                    tracing::warn!(key = %notification.key, "webhook queue full; notification not sent to the webhook");
                }
                Err(TrySendError::Disconnected(_)) => {
                    m.webhook.with_label_values(&["failed"]).inc();
                }
            }
        }
        LogOutbox.send(notification);
    }
}

/// The sender thread: one POST per notification, retried with backoff.
fn deliver(rx: Receiver<Notification>, config: &WebhookConfig, m: &OutboxMetrics) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(config.timeout))
        .http_status_as_error(true)
        .build()
        .into();
    while let Ok(n) = rx.recv() {
        let body = match serde_json::to_string(&n) {
            Ok(b) => b,
            Err(error) => {
                tracing::error!(%error, "cannot encode a notification");
                continue;
            }
        };
        let mut sent = false;
        for attempt in 0..config.attempts.max(1) {
            if attempt > 0 {
                std::thread::park_timeout(Duration::from_millis(500 << attempt.min(6)));
            }
            match agent
                .post(&config.url)
                .header("content-type", "application/json")
                .send(&body)
            {
                Ok(_) => {
                    sent = true;
                    break;
                }
                Err(error) => {
                    tracing::warn!(url = %config.url, attempt = attempt + 1, %error, "webhook POST failed")
                }
            }
        }
        let result = if sent { "sent" } else { "failed" };
        m.webhook.with_label_values(&[result]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cistern_rules::{AlarmSource, NotificationKind, Severity};
    use cistern_schemas::{RoomId, Timestamp};
    use std::io::{BufRead, BufReader, Read, Write};

    #[test]
    fn notifications_are_posted_to_the_webhook_as_json_and_failures_are_retried() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The receiver refuses the first attempt (503), then takes the retry.
        let server = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for status in ["503 Service Unavailable", "200 OK"] {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                bodies.push(String::from_utf8(body).unwrap());
                let mut stream = reader.into_inner();
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .unwrap();
            }
            bodies
        });
        let metrics = OutboxMetrics::register(&Registry::new()).unwrap();
        let outbox = NodeOutbox::start(
            Some(&WebhookConfig {
                url: format!("http://{addr}/hook"),
                timeout: Duration::from_secs(5),
                attempts: 3,
                queue: 10,
            }),
            metrics.clone(),
        )
        .unwrap();
        let key: cistern_rules::AlarmKey = "pump_fault@P1".parse().unwrap();
        outbox.send(Notification {
            time: Timestamp(1_000),
            source: AlarmSource::Device(cistern_schemas::DeviceId::new(
                RoomId::new("XM-0001").unwrap(),
                key.unit,
            )),
            rule: key.rule.clone(),
            key,
            severity: Severity::P1,
            target: "shift_lead".into(),
            message: "Pump P1 fault".into(),
            kind: NotificationKind::Escalation { step: 1 },
        });
        let bodies = server.join().unwrap();
        assert_eq!(bodies.len(), 2, "one refusal, one retry");
        let v: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
        assert_eq!(v["target"], "shift_lead");
        assert_eq!(v["type"], "escalation");
        assert_eq!(v["step"], 1);
        assert_eq!(v["key"], "pump_fault@P1");
        // The sender counts the delivery once it is done.
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while metrics.webhook.with_label_values(&["sent"]).get() == 0
            && std::time::Instant::now() < until
        {
            std::thread::park_timeout(Duration::from_millis(20));
        }
        assert_eq!(metrics.webhook.with_label_values(&["sent"]).get(), 1);
    }
}
