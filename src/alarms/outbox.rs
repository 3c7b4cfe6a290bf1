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
