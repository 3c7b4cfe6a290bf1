//! The MQTT telemetry decoder, as ingest runs it on every PUBLISH (src/ingest/mqtt.rs,
//! `handle`): the topic split into sender and plain topic, the topic parsed, the payload
//! decoded as a per-device or a room message with the default limits.
//!
//! Input: the topic, a newline, the payload. Beyond "no panic" it checks what the decoder
//! promises: limits hold (bytes, records), every kept record is inside the time window and
//! sorted, every value names a point of the device's kind, and the wire form round-trips
//! (parse → serialise → parse gives the same batch).
#![no_main]

use cistern_schemas::telemetry::{
    self, Decoded, PayloadLimits, TelemetryTopic, WireBatch, WireRoomBatch,
};
use cistern_schemas::Timestamp;
use libfuzzer_sys::fuzz_target;

/// A fixed "now" (2026-01-05, a minute after the examples in schemas/json/examples), so that a finding replays the same way.
const NOW: Timestamp = Timestamp(1_767_571_260_000);

fn check(d: &Decoded, limits: &PayloadLimits) {
    let latest = (NOW + limits.max_future).0;
    let earliest = (NOW - limits.max_age).0;
    let points = d.batch.device.unit.kind().points().len();
    for pair in d.batch.records.windows(2) {
        assert!(pair[0].t <= pair[1].t, "records out of time order");
    }
    for r in &d.batch.records {
        assert!(
            (earliest..=latest).contains(&r.t.0),
            "a record outside the window"
        );
        assert!(!r.values.is_empty(), "a record without values");
        for v in &r.values {
            assert!(usize::from(v.index) < points, "a value of no point");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (topic, payload) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let topic = String::from_utf8_lossy(topic);
    let limits = PayloadLimits::default();
    let Ok((_sender, plain)) = telemetry::split_sender(&topic) else {
        return;
    };
    let Ok(parsed) = telemetry::parse_any_topic(&plain) else {
        return;
    };
    match parsed {
        TelemetryTopic::Device(device) => {
            if let Ok(d) = telemetry::decode(device, payload, NOW, &limits) {
                assert!(payload.len() <= limits.max_bytes);
                assert!(d.batch.records.len() <= limits.max_records);
                check(&d, &limits);
                let wire: WireBatch = serde_json::from_slice(payload).expect("decoded, so parsed");
                assert!(wire.records.len() <= limits.max_records);
                let again = serde_json::to_vec(&wire).expect("serialises");
                let back: WireBatch = serde_json::from_slice(&again).expect("round-trips");
                assert_eq!(wire, back, "the wire batch changed in a round trip");
            }
        }
        TelemetryTopic::Room(room) => {
            if let Ok(d) = telemetry::decode_room(room.clone(), payload, NOW, &limits) {
                assert!(payload.len() <= limits.max_bytes);
                let kept: usize = d.devices.iter().map(|x| x.batch.records.len()).sum();
                assert!(kept <= limits.max_records);
                for x in &d.devices {
                    assert_eq!(x.batch.device.room, room, "a device of another room");
                    check(x, &limits);
                }
                let wire: WireRoomBatch =
                    serde_json::from_slice(payload).expect("decoded, so parsed");
                let again = serde_json::to_vec(&wire).expect("serialises");
                let back: WireRoomBatch = serde_json::from_slice(&again).expect("round-trips");
                assert_eq!(wire, back, "the wire room batch changed in a round trip");
            }
        }
    }
});
