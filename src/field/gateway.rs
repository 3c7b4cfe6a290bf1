//! A simulated room gateway (DTU) on MQTT: publishes each device's readings to the telemetry
//! convention and, while its link is down, buffers them and replays them afterwards
//! (断点续传) with their original timestamps, oldest first, before resuming live data.
//!
//! The buffer is bounded like a real DTU's flash: when full, the oldest readings go first and
//! are counted. Pure logic: what to publish is returned, not sent.

use cistern_schemas::reading::RoomReading;
use cistern_schemas::telemetry;
use cistern_schemas::{DeviceId, RoomId, Timestamp};
use std::collections::VecDeque;

/// Records per replay message: keeps replay payloads far below the payload limit.
pub const REPLAY_CHUNK: usize = 120;

/// One message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
    pub replay: bool,
    /// The gateway's connection slot: every message of a room carries the same one, so that
    /// sharing connections never reorders a room's messages.
    pub connection: usize,
    /// Point values the payload carries (absent readings are not sent).
    pub points: usize,
}

/// The store-and-forward state of one room's gateway.
#[derive(Debug)]
pub struct RoomGateway {
    room: RoomId,
    buffer: VecDeque<RoomReading>,
    capacity: usize,
    dropped: u64,
    connection: usize,
}

impl RoomGateway {
    /// A gateway that can hold `capacity` readings while its link is down.
    pub fn new(room: RoomId, capacity: usize) -> Self {
        // The room's shard is a stable hash of its id: reuse it to pick the connection slot.
        let connection = cistern_actors::registry::shard_of(&room) as usize;
        Self {
            room,
            buffer: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
            connection,
        }
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Readings lost because the buffer overflowed.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Takes a new reading; when the link is up, appends what to publish to `out`.
    pub fn offer(&mut self, reading: RoomReading, link_up: bool, out: &mut Vec<Outgoing>) {
        if !link_up || !self.buffer.is_empty() {
            if self.buffer.len() >= self.capacity {
                self.buffer.pop_front();
                self.dropped += 1;
            }
            self.buffer.push_back(reading);
            if link_up {
                self.replay(out);
            }
            return;
        }
        for (unit, values) in &reading.devices {
            let device = DeviceId::new(self.room.clone(), *unit);
            out.push(Outgoing {
                topic: telemetry::topic(&device),
                payload: telemetry::encode(unit.kind(), &[(reading.t, values)], false),
                replay: false,
                connection: self.connection,
                points: present(values),
            });
        }
    }

    /// Empties the buffer as replay messages, per device in time order.
    fn replay(&mut self, out: &mut Vec<Outgoing>) {
        let readings: Vec<RoomReading> = self.buffer.drain(..).collect();
        let Some(first) = readings.first() else {
            return;
        };
        for (d, (unit, _)) in first.devices.iter().enumerate() {
            let device = DeviceId::new(self.room.clone(), *unit);
            let topic = telemetry::topic(&device);
            let series: Vec<(Timestamp, &[f64])> = readings
                .iter()
                .filter_map(|r| r.devices.get(d).map(|(_, v)| (r.t, v.as_slice())))
                .collect();
            for chunk in series.chunks(REPLAY_CHUNK) {
                out.push(Outgoing {
                    topic: topic.clone(),
                    payload: telemetry::encode(unit.kind(), chunk, true),
                    replay: true,
                    connection: self.connection,
                    points: chunk.iter().map(|(_, v)| present(v)).sum(),
                });
            }
        }
    }
}

/// Values a payload carries: the readings that are not absent (NaN).
fn present(values: &[f64]) -> usize {
    values.iter().filter(|v| !v.is_nan()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cistern_schemas::telemetry::{decode, PayloadLimits};
    use cistern_schemas::{DeviceKind, DeviceUnit};

    fn reading(t: i64) -> RoomReading {
        let mut pump = vec![0.0; DeviceKind::Pump.points().len()];
        pump[2] = t as f64 / 1000.0; // frequency carries the time, to check order
        RoomReading {
            room: RoomId::new("XM-0001").unwrap(),
            t: Timestamp(t),
            devices: vec![(DeviceUnit::Pump(1), pump)],
        }
    }

    fn decoded_times(out: &[Outgoing]) -> Vec<i64> {
        out.iter()
            .flat_map(|o| {
                let device = telemetry::parse_topic(&o.topic).unwrap();
                let d = decode(
                    device,
                    &o.payload,
                    Timestamp(1_000_000),
                    &PayloadLimits::default(),
                )
                .unwrap();
                d.batch
                    .records
                    .into_iter()
                    .map(|r| r.t.0)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn an_outage_is_replayed_in_order_with_nothing_lost_or_doubled() {
        let mut gw = RoomGateway::new(RoomId::new("XM-0001").unwrap(), 10_000);
        let mut out = Vec::new();
        for t in 0..5 {
            gw.offer(reading(t * 2000), true, &mut out);
        }
        for t in 5..400 {
            gw.offer(reading(t * 2000), false, &mut out);
        }
        assert_eq!(
            decoded_times(&out).len(),
            5,
            "nothing published while the link is down"
        );
        assert_eq!(gw.buffered(), 395);
        gw.offer(reading(400 * 2000), true, &mut out);
        assert_eq!(gw.buffered(), 0);
        let times = decoded_times(&out);
        let expected: Vec<i64> = (0..=400).map(|t| t * 2000).collect();
        assert_eq!(times, expected);
        assert!(out[5..].iter().all(|o| o.replay));
        assert!(
            out.iter().all(|o| o.connection == out[0].connection),
            "a room keeps to one connection"
        );
        assert_eq!(out.len(), 5 + 396_usize.div_ceil(REPLAY_CHUNK));
        gw.offer(reading(401 * 2000), true, &mut out);
        assert!(!out.last().unwrap().replay, "live again after the replay");
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_counts_them() {
        let mut gw = RoomGateway::new(RoomId::new("XM-0001").unwrap(), 3);
        let mut out = Vec::new();
        for t in 0..5 {
            gw.offer(reading(t * 2000), false, &mut out);
        }
        assert_eq!((gw.buffered(), gw.dropped()), (3, 2));
        gw.offer(reading(10_000), true, &mut out);
        assert_eq!(decoded_times(&out), [6000, 8000, 10_000]);
    }
}
