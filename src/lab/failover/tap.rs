//! The ledger of what the fleet published: a subscriber of its own on the broker (persistent
//! session, QoS 1, every telemetry topic) that decodes every message exactly as a node does and
//! keeps each sample's identity — device, point, timestamp. After the run, every identity is
//! looked for in the nodes' stores: one found nowhere is lost.
//!
//! The tap counts what the broker accepted, which is what the nodes are answerable for (a
//! gateway's unpublished buffer is not). Values the node would reject (out of range, unknown
//! point, too old) are counted apart, not expected in any store.
//!
//! It also keeps every decoded message with the moment it arrived ([`Heard`]): the alarm
//! reference replays them through the rule engine ([`super::transitions`]).

use super::FailoverError;
use cistern_schemas::reading::Record;
use cistern_schemas::telemetry::{self, Decoded, PayloadLimits, TelemetryTopic};
use cistern_schemas::{DeviceId, Timestamp};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// One series: a device's point by its index in the device kind's catalogue.
pub type SeriesKey = (DeviceId, u16);

/// One device's records of a message as a node takes them (rejected values left out), and when
/// the tap received it.
#[derive(Clone, Debug)]
pub struct Heard {
    pub at_ms: i64,
    pub device: DeviceId,
    pub records: Vec<Record>,
}

/// What was published, by series.
#[derive(Debug, Default)]
pub struct Ledger {
    pub series: HashMap<SeriesKey, Vec<i64>>,
    /// Every message's records, in arrival order.
    pub heard: Vec<Heard>,
    /// Telemetry messages received.
    pub messages: u64,
    /// Messages that did not decode (topic or payload).
    pub undecodable: u64,
    /// Values a node rejects by design (range, unknown point, age).
    pub rejected_values: u64,
}

impl Ledger {
    /// Records one telemetry message as a node would decode it at `now`.
    pub fn record(&mut self, topic: &str, payload: &[u8], now: Timestamp) {
        self.messages += 1;
        let limits = PayloadLimits::default();
        let decoded: Vec<Decoded> = match telemetry::parse_any_topic(topic) {
            Ok(TelemetryTopic::Room(room)) => {
                match telemetry::decode_room(room, payload, now, &limits) {
                    Ok(r) => r.devices,
                    Err(_) => {
                        self.undecodable += 1;
                        return;
                    }
                }
            }
            Ok(TelemetryTopic::Device(device)) => {
                match telemetry::decode(device, payload, now, &limits) {
                    Ok(d) => vec![d],
                    Err(_) => {
                        self.undecodable += 1;
                        return;
                    }
                }
            }
            Err(_) => {
                self.undecodable += 1;
                return;
            }
        };
        for d in decoded {
            self.rejected_values += d.rejections.len() as u64;
            let points = d.batch.device.unit.kind().points().len();
            for r in &d.batch.records {
                for v in &r.values {
                    // As the historian: a value that is not a number is not stored.
                    if v.value.is_finite() && usize::from(v.index) < points {
                        self.series
                            .entry((d.batch.device.clone(), v.index))
                            .or_default()
                            .push(r.t.0);
                    }
                }
            }
            if !d.batch.records.is_empty() {
                self.heard.push(Heard {
                    at_ms: now.0,
                    device: d.batch.device,
                    records: d.batch.records,
                });
            }
        }
    }

    /// Every series' timestamps sorted, repeats (a QoS 1 redelivery to the tap, or a gateway
    /// publishing a reading twice) removed and counted.
    pub fn settle(mut self) -> Published {
        let mut repeats = 0u64;
        let mut samples = 0u64;
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for ts in self.series.values_mut() {
            ts.sort_unstable();
            let before = ts.len();
            ts.dedup();
            repeats += (before - ts.len()) as u64;
            samples += ts.len() as u64;
            if let (Some(a), Some(b)) = (ts.first(), ts.last()) {
                first = first.min(*a);
                last = last.max(*b);
            }
        }
        Published {
            series: self.series,
            heard: self.heard,
            samples,
            repeats,
            first_ms: first,
            last_ms: last,
            messages: self.messages,
            undecodable: self.undecodable,
            rejected_values: self.rejected_values,
        }
    }
}

/// The ledger after the run.
#[derive(Debug)]
pub struct Published {
    pub series: HashMap<SeriesKey, Vec<i64>>,
    /// Every message's records, in arrival order (see [`Heard`]).
    pub heard: Vec<Heard>,
    /// Distinct samples (series, timestamp).
    pub samples: u64,
    /// Samples seen more than once by the tap.
    pub repeats: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub messages: u64,
    pub undecodable: u64,
    pub rejected_values: u64,
}

/// A running tap.
#[derive(Debug)]
pub struct Tap {
    ledger: Arc<Mutex<Ledger>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Tap {
    /// Connects to `broker`, subscribes to every telemetry topic and returns once the broker
    /// has confirmed the subscription (within `deadline`).
    pub async fn start(
        broker: SocketAddr,
        client_id: &str,
        deadline: Duration,
    ) -> Result<Self, FailoverError> {
        let mut opts = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
        opts.set_keep_alive(Duration::from_secs(30))
            .set_clean_session(false)
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(opts, 1_000);
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let (stop, mut stopped) = watch::channel(false);
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let into = ledger.clone();
        let subscriber = client.clone();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    ev = events.poll() => match ev {
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            if let Some(tx) = subscribed_tx.take() {
                                let _ = tx.send(());
                            }
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            let topic = p.topic.clone();
                            into.lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .record(&topic, &p.payload, Timestamp::now());
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(%error, "the failover tap lost the broker; retrying");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    },
                }
            }
            let _ = client.disconnect().await;
        });
        for filter in telemetry::TOPIC_FILTERS {
            // Queued until the connection is up.
            subscriber
                .subscribe(filter, QoS::AtLeastOnce)
                .await
                .map_err(|e| FailoverError::Broker(format!("the tap cannot subscribe: {e}")))?;
        }
        let tap = Self { ledger, stop, task };
        match tokio::time::timeout(deadline, subscribed).await {
            Ok(Ok(())) => Ok(tap),
            _ => Err(FailoverError::Broker(format!(
                "the tap's subscription was not confirmed within {deadline:?}"
            ))),
        }
    }

    /// Samples seen so far (with repeats).
    pub fn seen(&self) -> u64 {
        self.ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .series
            .values()
            .map(|v| v.len() as u64)
            .sum()
    }

    /// Stops the tap and hands over the ledger.
    pub async fn stop(self) -> Published {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let ledger = std::mem::take(&mut *self.ledger.lock().unwrap_or_else(|e| e.into_inner()));
        ledger.settle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cistern_schemas::{DeviceUnit, RoomId};

    /// Against a real mosquitto and the simulated gateways: the tap accounts for every point
    /// the gateways published.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_tap_sees_every_point_the_simulated_gateways_publish() {
        use crate::lab::field::{self, FieldConfig, FieldHandle};
        use std::collections::HashMap;
        use std::sync::atomic::Ordering;

        let dir = std::env::temp_dir().join(format!("cistern-tap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (_broker, addr) = crate::lab::bench::procs::start_broker(&dir).unwrap();
        let tap = Tap::start(addr, "tap-test", Duration::from_secs(10))
            .await
            .unwrap();
        let inventory = crate::lab::sim::generate_fleet(4, 7);
        let handle = FieldHandle::new(&inventory, 7, Timestamp::now());
        let (stop, stopped) = watch::channel(false);
        let config = FieldConfig {
            mqtt: Some(addr),
            speed: 10.0,
            ..FieldConfig::default()
        };
        let run = field::run(&handle, &inventory, config, HashMap::new(), stopped);
        let stats = run.stats.clone();
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        while stats.messages.load(Ordering::Relaxed) < 20 {
            assert!(
                tokio::time::Instant::now() < end,
                "nothing published in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = stop.send(true);
        let _ = run.task.await;
        let points = stats.points.load(Ordering::Relaxed);
        assert!(points > 0);
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        while tap.seen() < points && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let published = tap.stop().await;
        assert_eq!(published.samples, points);
        assert_eq!(published.repeats, 0);
        assert_eq!(published.undecodable, 0);
        assert_eq!(published.messages, stats.messages.load(Ordering::Relaxed));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_ledger_keeps_each_sample_once_and_counts_repeats_and_rejections() {
        let room = RoomId::new("XM-0001").unwrap();
        let unit: DeviceUnit = "P1".parse().unwrap();
        let device = DeviceId::new(room.clone(), unit);
        let kind = device.unit.kind();
        let n = kind.points().len();
        let mut one: Vec<f64> = (0..n).map(|_| f64::NAN).collect();
        // One finite value: the others are not read.
        one[0] = 1.0;
        let now = Timestamp::now();
        let t1 = Timestamp(now.0 - 4_000);
        let t2 = Timestamp(now.0 - 2_000);
        let payload = telemetry::encode(kind, &[(t1, &one), (t2, &one)], false);
        let topic = telemetry::topic(&device);
        let mut ledger = Ledger::default();
        ledger.record(&topic, &payload, now);
        // A redelivery of the same message.
        ledger.record(&topic, &payload, now);
        ledger.record("cistern/v1/telemetry/XM-0001/P1/extra", &payload, now);
        ledger.record(&topic, b"not json", now);
        let published = ledger.settle();
        assert_eq!(published.messages, 4);
        assert_eq!(published.undecodable, 2);
        assert_eq!(published.samples, 2);
        assert_eq!(published.repeats, 2);
        assert_eq!(published.first_ms, t1.0);
        assert_eq!(published.last_ms, t2.0);
        assert_eq!(
            published.series.get(&(device, 0)).map(Vec::as_slice),
            Some(&[t1.0, t2.0][..])
        );
    }
}
