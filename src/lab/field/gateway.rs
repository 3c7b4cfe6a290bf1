//! A simulated room gateway (DTU) on MQTT: publishes its room's readings to the telemetry
//! convention and, while its link is down, buffers them and replays them afterwards
//! (断点续传) with their original timestamps, oldest first, before resuming live data.
//!
//! By default a gateway publishes one room message per reading (topic
//! `cistern/v1/telemetry/{room}`), as real edge gateways do and as the broker's per-message
//! cost wants; per device (one message per device and reading) stays available so that form of
//! the convention stays exercised. A replay sends room messages oldest first, each a span of
//! time for all the room's devices, chunked to stay far below the payload limits.
//!
//! The buffer is bounded like a real DTU's flash: when full, the oldest readings go first and
//! are counted. Pure logic: what to publish is returned, not sent.

use cistern_schemas::reading::RoomReading;
use cistern_schemas::telemetry;
use cistern_schemas::{DeviceId, DeviceUnit, RoomId, Timestamp};
use std::collections::VecDeque;

/// Records per replay message: keeps replay payloads far below the payload limits (2,000
/// records, 256 KiB). A room message carries whole readings (a record per device each), so
/// it holds `REPLAY_CHUNK / devices` readings (at least one): 17 readings of a simulated
/// seven-device room make about 21 KB; a per-device replay message of the same room's own
/// instruments (120 records) about 67 KB.
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
    per_device: bool,
}

impl RoomGateway {
    /// A gateway that can hold `capacity` readings while its link is down, publishing room
    /// messages.
    pub fn new(room: RoomId, capacity: usize) -> Self {
        // The room's shard is a stable hash of its id: reuse it to pick the connection slot.
        let connection = cistern_actors::registry::shard_of(&room) as usize;
        Self {
            room,
            buffer: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
            connection,
            per_device: false,
        }
    }

    /// Publishes one message per device and reading instead of one per reading.
    pub fn per_device(mut self, per_device: bool) -> Self {
        self.per_device = per_device;
        self
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
        if self.per_device {
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
        } else {
            out.push(self.room_message(std::slice::from_ref(&reading), false));
        }
    }

    /// Empties the buffer as replay messages: room messages in time order, or per device in
    /// time order.
    fn replay(&mut self, out: &mut Vec<Outgoing>) {
        let readings: Vec<RoomReading> = self.buffer.drain(..).collect();
        let Some(first) = readings.first() else {
            return;
        };
        if !self.per_device {
            let per_message = (REPLAY_CHUNK / first.devices.len().max(1)).max(1);
            for chunk in readings.chunks(per_message) {
                out.push(self.room_message(chunk, true));
            }
            return;
        }
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

    /// One room message carrying `readings` (in time order): each device's records, devices
    /// in the order of the first reading.
    fn room_message(&self, readings: &[RoomReading], replay: bool) -> Outgoing {
        let units: Vec<DeviceUnit> = readings
            .first()
            .map(|r| r.devices.iter().map(|(u, _)| *u).collect())
            .unwrap_or_default();
        let series: Vec<Vec<(Timestamp, &[f64])>> = units
            .iter()
            .enumerate()
            .map(|(d, unit)| {
                readings
                    .iter()
                    .filter_map(|r| match r.devices.get(d) {
                        // the simulator's readings list a room's devices the same way every
                        // time; look the unit up should that ever change
                        Some((u, v)) if u == unit => Some((r.t, v.as_slice())),
                        _ => r
                            .devices
                            .iter()
                            .find(|(u, _)| u == unit)
                            .map(|(_, v)| (r.t, v.as_slice())),
                    })
                    .collect()
            })
            .collect();
        let points = series.iter().flatten().map(|(_, v)| present(v)).sum();
        Outgoing {
            topic: telemetry::room_topic(&self.room),
            payload: telemetry::encode_room(
                units.iter().copied().zip(series.iter().map(Vec::as_slice)),
                replay,
            ),
            replay,
            connection: self.connection,
            points,
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
    use cistern_schemas::telemetry::{decode, decode_room, PayloadLimits, TelemetryTopic};
    use cistern_schemas::DeviceKind;
    use std::collections::BTreeMap;

    const NOW: Timestamp = Timestamp(1_000_000);

    /// A reading of a pump and a tank; the pump's frequency and the tank's level carry the time,
    /// to check order.
    fn reading(t: i64) -> RoomReading {
        let mut pump = vec![0.0; DeviceKind::Pump.points().len()];
        pump[2] = t as f64 / 1000.0;
        let mut tank = vec![f64::NAN; DeviceKind::Tank.points().len()];
        tank[0] = t as f64 / 1000.0;
        RoomReading {
            room: RoomId::new("XM-0001").unwrap(),
            t: Timestamp(t),
            devices: vec![(DeviceUnit::Pump(1), pump), (DeviceUnit::Tank(1), tank)],
        }
    }

    fn gateway(capacity: usize, per_device: bool) -> RoomGateway {
        RoomGateway::new(RoomId::new("XM-0001").unwrap(), capacity).per_device(per_device)
    }

    /// Decodes what a gateway published, as the platform would: per device, the times of its
    /// records in the order they arrive, and the points in all.
    fn decoded(out: &[Outgoing]) -> (BTreeMap<String, Vec<i64>>, usize) {
        let limits = PayloadLimits::default();
        let mut times: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut points = 0;
        for o in out {
            assert!(o.payload.len() <= limits.max_bytes);
            let batches = match telemetry::parse_any_topic(&o.topic).unwrap() {
                TelemetryTopic::Device(device) => {
                    vec![decode(device, &o.payload, NOW, &limits).unwrap()]
                }
                TelemetryTopic::Room(room) => {
                    let d = decode_room(room, &o.payload, NOW, &limits).unwrap();
                    assert!(d.refused.is_empty());
                    d.devices
                }
            };
            let mut message_points = 0;
            for d in batches {
                assert!(d.rejections.is_empty(), "{:?}", d.rejections);
                assert_eq!(d.replay, o.replay);
                message_points += d.batch.point_count();
                times
                    .entry(d.batch.device.to_string())
                    .or_default()
                    .extend(d.batch.records.iter().map(|r| r.t.0));
            }
            assert_eq!(message_points, o.points, "the published count is exact");
            points += message_points;
        }
        (times, points)
    }

    fn outage_replayed_in_order(per_device: bool) -> Vec<Outgoing> {
        let mut gw = gateway(10_000, per_device);
        let mut out = Vec::new();
        for t in 0..5 {
            gw.offer(reading(t * 2000), true, &mut out);
        }
        let live = out.len();
        for t in 5..400 {
            gw.offer(reading(t * 2000), false, &mut out);
        }
        assert_eq!(out.len(), live, "nothing published while the link is down");
        assert_eq!(gw.buffered(), 395);
        gw.offer(reading(400 * 2000), true, &mut out);
        assert_eq!(gw.buffered(), 0);
        let (times, points) = decoded(&out);
        let expected: Vec<i64> = (0..=400).map(|t| t * 2000).collect();
        assert_eq!(times.len(), 2);
        for (device, seen) in &times {
            assert_eq!(
                seen, &expected,
                "{device}: in order, nothing lost or doubled"
            );
        }
        // a pump reading has 8 points, a tank's only its level
        assert_eq!(points, 401 * (8 + 1));
        assert!(out[live..].iter().all(|o| o.replay));
        assert!(out[..live].iter().all(|o| !o.replay));
        assert!(
            out.iter().all(|o| o.connection == out[0].connection),
            "a room keeps to one connection"
        );
        gw.offer(reading(401 * 2000), true, &mut out);
        assert!(!out.last().unwrap().replay, "live again after the replay");
        out
    }

    #[test]
    fn an_outage_is_replayed_in_order_with_nothing_lost_or_doubled() {
        let out = outage_replayed_in_order(false);
        // one room message per live reading, then 396 readings of two devices at 60 a message
        assert_eq!(out.len(), 5 + 396_usize.div_ceil(REPLAY_CHUNK / 2) + 1);
        assert!(out
            .iter()
            .all(|o| o.topic == "cistern/v1/telemetry/XM-0001"));
    }

    #[test]
    fn per_device_an_outage_is_replayed_in_order_with_nothing_lost_or_doubled() {
        let out = outage_replayed_in_order(true);
        assert_eq!(out.len(), 2 * (5 + 396_usize.div_ceil(REPLAY_CHUNK) + 1));
        assert!(out
            .iter()
            .all(|o| o.topic != "cistern/v1/telemetry/XM-0001"));
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_counts_them() {
        for per_device in [false, true] {
            let mut gw = gateway(3, per_device);
            let mut out = Vec::new();
            for t in 0..5 {
                gw.offer(reading(t * 2000), false, &mut out);
            }
            assert_eq!((gw.buffered(), gw.dropped()), (3, 2));
            gw.offer(reading(10_000), true, &mut out);
            let (times, _) = decoded(&out);
            assert_eq!(times["XM-0001/P1"], [6000, 8000, 10_000]);
            assert_eq!(times["XM-0001/T1"], [6000, 8000, 10_000]);
        }
    }

    /// A simulated room's readings, live and as a day's replay, stay far below the payload
    /// limits in either form.
    #[test]
    fn a_real_room_replays_within_the_payload_limits() {
        let inventory = crate::lab::sim::generate_fleet(1, 3);
        let mut sim = crate::lab::sim::Simulator::new(&inventory, 3, Timestamp(0));
        let room = inventory.rooms[0].id.clone();
        for per_device in [false, true] {
            let mut gw = RoomGateway::new(room.clone(), 10_000).per_device(per_device);
            let mut out = Vec::new();
            for _ in 0..300 {
                sim.step(std::time::Duration::from_secs(2));
                let r = sim.readings().remove(0);
                gw.offer(r, false, &mut out);
            }
            assert!(out.is_empty());
            let r = sim.readings().remove(0);
            let devices = r.devices.len();
            assert!(devices >= 5, "a realistic room: {devices} devices");
            gw.offer(r, true, &mut out);
            let limits = PayloadLimits::default();
            let largest = out.iter().map(|o| o.payload.len()).max().unwrap();
            assert!(largest < limits.max_bytes / 2, "{largest} bytes");
            let room_messages = out.len();
            if !per_device {
                assert_eq!(room_messages, 301_usize.div_ceil(REPLAY_CHUNK / devices));
            }
            for o in &out {
                let records = match telemetry::parse_any_topic(&o.topic).unwrap() {
                    TelemetryTopic::Device(d) => decode(d, &o.payload, sim.now(), &limits)
                        .unwrap()
                        .batch
                        .records
                        .len(),
                    TelemetryTopic::Room(r) => decode_room(r, &o.payload, sim.now(), &limits)
                        .unwrap()
                        .devices
                        .iter()
                        .map(|d| d.batch.records.len())
                        .sum(),
                };
                assert!(records <= REPLAY_CHUNK, "{records} records");
            }
        }
    }
}
