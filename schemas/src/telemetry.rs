//! The MQTT telemetry convention (version 1), documented in `schemas/json/telemetry.md` with the
//! JSON Schema `schemas/json/telemetry.schema.json`.
//!
//! Two message forms, both decoded into one [`DeviceBatch`] per device:
//!
//! - per device, topic `cistern/v1/telemetry/{room}/{device}` where `device` is `room`, `P<n>`,
//!   `T<n>` or `C<n>`; payload: a batch of records of that device, each an instant with its
//!   values:
//!
//!   ```json
//!   {"records": [{"t": 1732170000000, "v": {"frequency": 42.1, "running": true},
//!                 "q": {"current": "bad"}}], "replay": false}
//!   ```
//!
//! - per room, topic `cistern/v1/telemetry/{room}`; payload: records of several devices of the
//!   room, by device, in the same record form:
//!
//!   ```json
//!   {"devices": {"room": [{"t": 1732170000000, "v": {"outlet_pressure": 0.42}}],
//!                "P1": [{"t": 1732170000000, "v": {"frequency": 42.1}}]}, "replay": false}
//!   ```
//!
//! The room form exists for cost: a pump room has about nine devices, and a broker pays its
//! per-message syscalls once per message, so one message per room and cycle (what real edge
//! gateways send) costs the broker a ninth of the per-device form at 21,000 rooms.
//!
//! QoS 1. A gateway publishes every record of a device in time order (store-and-forward is a
//! FIFO): after an outage it replays its buffer with the original timestamps, then resumes live
//! data. The platform de-duplicates by point and timestamp, so QoS 1 redelivery and repeated
//! replays never double a sample.

use crate::catalog::DeviceKind;
use crate::ids::{DeviceId, DeviceUnit, IdError, RoomId};
use crate::quality::{assess, Quality, QualityLevel, ValueRejection};
use crate::reading::{DeviceBatch, IngestSource, PointValue, Record};
use crate::time::Timestamp;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Topic prefix of version 1 of the convention.
pub const TOPIC_PREFIX: &str = "cistern/v1/telemetry";
/// The subscription filters a platform node uses: room messages and per-device messages. `+`
/// matches exactly one level, so the two never overlap and nothing deeper is delivered.
pub const TOPIC_FILTERS: [&str; 2] = ["cistern/v1/telemetry/+", "cistern/v1/telemetry/+/+"];
/// Topic prefix of a gateway's identity form: `cistern/v1/gw/{gateway}/telemetry/{room}` and
/// `…/telemetry/{room}/{device}`. The broker lets a gateway publish only under its own name
/// (`pattern write cistern/v1/gw/%u/#`, its certificate's name as user name), so the
/// platform knows who sent each message and refuses rooms the gateway is not enrolled for.
pub const GATEWAY_PREFIX: &str = "cistern/v1/gw";
/// The subscription filters of the gateway identity form.
pub const GATEWAY_TOPIC_FILTERS: [&str; 2] = [
    "cistern/v1/gw/+/telemetry/+",
    "cistern/v1/gw/+/telemetry/+/+",
];

/// Splits a gateway identity topic into the gateway's name and the plain telemetry topic it
/// carries (`cistern/v1/telemetry/…`); a plain topic has no sender (`None`) and is returned
/// as it is. A gateway topic without a name or without `telemetry/` is refused.
pub fn split_sender(
    topic: &str,
) -> Result<(Option<&str>, std::borrow::Cow<'_, str>), PayloadError> {
    let Some(rest) = topic
        .strip_prefix(GATEWAY_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Ok((None, std::borrow::Cow::Borrowed(topic)));
    };
    let (gateway, rest) = rest.split_once('/').ok_or(PayloadError::Topic)?;
    let rest = rest.strip_prefix("telemetry/").ok_or(PayloadError::Topic)?;
    if gateway.is_empty() {
        return Err(PayloadError::Topic);
    }
    Ok((
        Some(gateway),
        std::borrow::Cow::Owned(format!("{TOPIC_PREFIX}/{rest}")),
    ))
}

/// The topic a gateway publishes a room message to in the identity form.
pub fn gateway_room_topic(gateway: &str, room: &RoomId) -> String {
    format!("{GATEWAY_PREFIX}/{gateway}/telemetry/{room}")
}

/// Gateways publish their status (`online` / `offline`, the latter as their MQTT last will) here.
pub const STATUS_PREFIX: &str = "cistern/v1/status";

/// Limits on a payload; anything beyond is rejected whole, before parsing where possible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadLimits {
    pub max_bytes: usize,
    pub max_records: usize,
    /// How far in the future a timestamp may be (clock skew of a gateway).
    pub max_future: Duration,
    /// How far in the past a timestamp may be (a gateway's buffer is finite).
    pub max_age: Duration,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024,
            max_records: 2_000,
            max_future: Duration::from_secs(300),
            max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The topic a device publishes to.
pub fn topic(device: &DeviceId) -> String {
    format!("{TOPIC_PREFIX}/{}/{}", device.room, device.unit)
}

/// The topic a room's gateway publishes its room messages to.
pub fn room_topic(room: &RoomId) -> String {
    format!("{TOPIC_PREFIX}/{room}")
}

/// What a telemetry topic names: a room (room message) or one device (per-device message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TelemetryTopic {
    Room(RoomId),
    Device(DeviceId),
}

/// Parses a topic of either form; a topic with more levels than `{room}/{device}` is refused.
pub fn parse_any_topic(topic: &str) -> Result<TelemetryTopic, PayloadError> {
    let rest = topic
        .strip_prefix(TOPIC_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or(PayloadError::Topic)?;
    match rest.split_once('/') {
        None => Ok(TelemetryTopic::Room(
            RoomId::new(rest).map_err(PayloadError::Id)?,
        )),
        Some((room, unit)) => {
            if unit.contains('/') {
                return Err(PayloadError::Topic);
            }
            let room = RoomId::new(room).map_err(PayloadError::Id)?;
            let unit: DeviceUnit = unit.parse().map_err(PayloadError::Id)?;
            Ok(TelemetryTopic::Device(DeviceId::new(room, unit)))
        }
    }
}

/// The device a per-device telemetry topic names.
pub fn parse_topic(topic: &str) -> Result<DeviceId, PayloadError> {
    match parse_any_topic(topic)? {
        TelemetryTopic::Device(d) => Ok(d),
        TelemetryTopic::Room(_) => Err(PayloadError::Topic),
    }
}

/// A value on the wire: a number, or a boolean for digital points.
///
/// Deserialized by hand rather than `#[serde(untagged)]`: untagged buffers each value and
/// tries the variants in turn, building (and dropping) a serde error for every number — the
/// hot path of ingest. Serialized as the bare bool or number.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum WireValue {
    Bool(bool),
    Number(f64),
}

impl<'de> Deserialize<'de> for WireValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WireValueVisitor;

        impl Visitor<'_> for WireValueVisitor {
            type Value = WireValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean or a number")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<WireValue, E> {
                Ok(WireValue::Bool(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<WireValue, E> {
                Ok(WireValue::Number(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<WireValue, E> {
                Ok(WireValue::Number(v as f64))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<WireValue, E> {
                Ok(WireValue::Number(v))
            }
        }

        deserializer.deserialize_any(WireValueVisitor)
    }
}

impl WireValue {
    fn as_f64(self) -> f64 {
        match self {
            WireValue::Bool(b) => f64::from(u8::from(b)),
            WireValue::Number(n) => n,
        }
    }
}

/// A quality a device may report for a value it could not measure properly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireQuality {
    Good,
    Uncertain,
    Bad,
}

/// One instant on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireRecord {
    /// Source timestamp, ms since the Unix epoch.
    pub t: i64,
    /// Values by point name.
    pub v: BTreeMap<String, WireValue>,
    /// Qualities the device reports (absent = good).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub q: BTreeMap<String, WireQuality>,
}

/// A telemetry payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireBatch {
    pub records: Vec<WireRecord>,
    /// Set by a gateway replaying its buffer after an outage (informational).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
}

/// A room payload: records of several devices of the room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireRoomBatch {
    pub devices: WireDevices,
    /// Set by a gateway replaying its buffer after an outage (informational).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
}

/// Records by device key (`room`, `P1`, …), in the order the gateway wrote them: a JSON object
/// in which a device appears at most once (a repeated key is malformed, not silently merged or
/// overwritten).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WireDevices(pub Vec<(String, Vec<WireRecord>)>);

impl WireDevices {
    /// Records over all devices (what [`PayloadLimits::max_records`] bounds).
    pub fn record_count(&self) -> usize {
        self.0.iter().map(|(_, r)| r.len()).sum()
    }
}

impl Serialize for WireDevices {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, records) in &self.0 {
            map.serialize_entry(key, records)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for WireDevices {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DevicesVisitor;

        impl<'de> Visitor<'de> for DevicesVisitor {
            type Value = WireDevices;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of record arrays by device")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireDevices, A::Error> {
                let mut devices: Vec<(String, Vec<WireRecord>)> = Vec::new();
                while let Some((key, records)) = map.next_entry::<String, Vec<WireRecord>>()? {
                    devices.push((key, records));
                }
                // Sorted, not pairwise: a hostile payload may carry tens of thousands of keys.
                let mut keys: Vec<&str> = devices.iter().map(|(k, _)| k.as_str()).collect();
                keys.sort_unstable();
                if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
                    let key: String = w[0].chars().take(64).collect();
                    return Err(de::Error::custom(format_args!(
                        "device {key:?} appears twice"
                    )));
                }
                Ok(WireDevices(devices))
            }
        }

        deserializer.deserialize_map(DevicesVisitor)
    }
}

/// Why a whole payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("topic is not {TOPIC_PREFIX}/<room> or {TOPIC_PREFIX}/<room>/<device>")]
    Topic,
    #[error("bad id in topic: {0}")]
    Id(IdError),
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("payload has {count} records, more than the limit of {limit}")]
    TooManyRecords { count: usize, limit: usize },
    #[error("payload is not a valid telemetry batch: {0}")]
    Json(#[from] serde_json::Error),
}

impl PayloadError {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            PayloadError::Topic => "bad_topic",
            PayloadError::Id(_) => "bad_id",
            PayloadError::TooLarge { .. } => "too_large",
            PayloadError::TooManyRecords { .. } => "too_many_records",
            PayloadError::Json(_) => "malformed",
        }
    }
}

/// Why a single value or record inside an accepted payload was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SampleRejection {
    #[error("unknown point {point:?} for a {kind}")]
    UnknownPoint { kind: DeviceKind, point: String },
    #[error("point {point:?}: {reason}")]
    Value {
        point: String,
        reason: ValueRejection,
    },
    #[error("timestamp {t} is more than {ahead_s} s in the future")]
    Future { t: i64, ahead_s: u64 },
    #[error("timestamp {t} is older than the accepted {max_age_s} s")]
    TooOld { t: i64, max_age_s: u64 },
}

impl SampleRejection {
    /// A bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            SampleRejection::UnknownPoint { .. } => "unknown_point",
            SampleRejection::Value { reason, .. } => reason.label(),
            SampleRejection::Future { .. } => "future_timestamp",
            SampleRejection::TooOld { .. } => "too_old",
        }
    }
}

/// A decoded payload: the batch to apply and what was dropped from it.
#[derive(Debug)]
pub struct Decoded {
    pub batch: DeviceBatch,
    pub replay: bool,
    pub rejections: Vec<SampleRejection>,
}

/// A decoded room payload: one [`Decoded`] per device entry, in payload order.
#[derive(Debug)]
pub struct RoomDecoded {
    pub room: RoomId,
    /// The device entries with a valid key, each decoded as a per-device payload would be
    /// (an entry may come out with no records: everything in it was rejected or it was empty).
    pub devices: Vec<Decoded>,
    /// Device entries refused whole: their key is not a device unit.
    pub refused: Vec<DeviceRefusal>,
    pub replay: bool,
}

/// A device entry of a room payload refused whole, and why.
#[derive(Debug)]
pub struct DeviceRefusal {
    /// The key as sent (at most 64 characters of it).
    pub key: String,
    pub error: PayloadError,
}

fn check_size(payload: &[u8], limits: &PayloadLimits) -> Result<(), PayloadError> {
    if payload.len() > limits.max_bytes {
        return Err(PayloadError::TooLarge {
            size: payload.len(),
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

fn check_record_count(count: usize, limits: &PayloadLimits) -> Result<(), PayloadError> {
    if count > limits.max_records {
        return Err(PayloadError::TooManyRecords {
            count,
            limit: limits.max_records,
        });
    }
    Ok(())
}

/// Decodes and validates one payload of `device`, as received at `now`.
///
/// Records come out sorted by time (stable), so a batch is applied in time order whatever
/// order the gateway wrote it in.
pub fn decode(
    device: DeviceId,
    payload: &[u8],
    now: Timestamp,
    limits: &PayloadLimits,
) -> Result<Decoded, PayloadError> {
    check_size(payload, limits)?;
    let wire: WireBatch = serde_json::from_slice(payload)?;
    check_record_count(wire.records.len(), limits)?;
    Ok(decode_records(
        device,
        wire.records,
        wire.replay,
        now,
        limits,
    ))
}

/// Decodes and validates one room payload of `room`, as received at `now`: each device entry
/// exactly as [`decode`] would a per-device payload of that device. The limits apply to the
/// whole payload (its bytes, and its records over all devices).
pub fn decode_room(
    room: RoomId,
    payload: &[u8],
    now: Timestamp,
    limits: &PayloadLimits,
) -> Result<RoomDecoded, PayloadError> {
    check_size(payload, limits)?;
    let wire: WireRoomBatch = serde_json::from_slice(payload)?;
    check_record_count(wire.devices.record_count(), limits)?;
    let mut devices = Vec::with_capacity(wire.devices.0.len());
    let mut refused = Vec::new();
    for (key, records) in wire.devices.0 {
        match key.parse::<DeviceUnit>() {
            Ok(unit) => devices.push(decode_records(
                DeviceId::new(room.clone(), unit),
                records,
                wire.replay,
                now,
                limits,
            )),
            Err(e) => refused.push(DeviceRefusal {
                key: key.chars().take(64).collect(),
                error: PayloadError::Id(e),
            }),
        }
    }
    Ok(RoomDecoded {
        room,
        devices,
        refused,
        replay: wire.replay,
    })
}

/// Validates the records of one device (the part both message forms share).
fn decode_records(
    device: DeviceId,
    wire: Vec<WireRecord>,
    replay: bool,
    now: Timestamp,
    limits: &PayloadLimits,
) -> Decoded {
    let kind = device.unit.kind();
    let specs = kind.points();
    let latest = (now + limits.max_future).0;
    let earliest = (now - limits.max_age).0;
    let mut rejections = Vec::new();
    let mut records = Vec::with_capacity(wire.len());
    for rec in wire {
        if rec.t > latest {
            rejections.push(SampleRejection::Future {
                t: rec.t,
                ahead_s: limits.max_future.as_secs(),
            });
            continue;
        }
        if rec.t < earliest {
            rejections.push(SampleRejection::TooOld {
                t: rec.t,
                max_age_s: limits.max_age.as_secs(),
            });
            continue;
        }
        let mut values = Vec::with_capacity(rec.v.len());
        for (name, v) in &rec.v {
            let Some(index) = kind.point_index(name) else {
                rejections.push(SampleRejection::UnknownPoint {
                    kind,
                    point: name.chars().take(64).collect(),
                });
                continue;
            };
            let spec = &specs[index];
            let value = v.as_f64();
            match assess(spec, value) {
                Err(reason) => rejections.push(SampleRejection::Value {
                    point: name.clone(),
                    reason,
                }),
                Ok(mut quality) => {
                    match rec.q.get(name) {
                        Some(WireQuality::Bad) if quality.level != QualityLevel::Bad => {
                            quality = Quality::bad("reported bad by the device");
                        }
                        Some(WireQuality::Uncertain) if quality.is_good() => {
                            quality = Quality::uncertain("reported uncertain by the device");
                        }
                        _ => {}
                    }
                    values.push(PointValue {
                        index: index as u16,
                        value,
                        quality,
                    });
                }
            }
        }
        for name in rec.q.keys() {
            if !rec.v.contains_key(name) && kind.point_index(name).is_none() {
                rejections.push(SampleRejection::UnknownPoint {
                    kind,
                    point: name.chars().take(64).collect(),
                });
            }
        }
        if !values.is_empty() {
            records.push(Record {
                t: Timestamp(rec.t),
                values,
            });
        }
    }
    records.sort_by_key(|r| r.t);
    Decoded {
        batch: DeviceBatch {
            device,
            source: IngestSource::Mqtt,
            records,
        },
        replay,
        rejections,
    }
}

/// Encodes records of `kind` (values in catalog order) as a payload. Used by the simulator's
/// gateways and by tests; `NaN` marks a value the device could not read (it is left out).
pub fn encode(kind: DeviceKind, records: &[(Timestamp, &[f64])], replay: bool) -> Vec<u8> {
    let wire = WireBatch {
        records: wire_records(kind, records),
        replay,
    };
    serde_json::to_vec(&wire).unwrap_or_default()
}

/// Encodes records of several devices of a room (each device's values in catalog order, as
/// for [`encode`]) as a room payload, devices in the order given.
pub fn encode_room<'a>(
    devices: impl IntoIterator<Item = (DeviceUnit, &'a [(Timestamp, &'a [f64])])>,
    replay: bool,
) -> Vec<u8> {
    let wire = WireRoomBatch {
        devices: WireDevices(
            devices
                .into_iter()
                .map(|(unit, records)| (unit.to_string(), wire_records(unit.kind(), records)))
                .collect(),
        ),
        replay,
    };
    serde_json::to_vec(&wire).unwrap_or_default()
}

fn wire_records(kind: DeviceKind, records: &[(Timestamp, &[f64])]) -> Vec<WireRecord> {
    let specs = kind.points();
    records
        .iter()
        .map(|(t, values)| WireRecord {
            t: t.0,
            v: specs
                .iter()
                .zip(values.iter())
                .filter(|(_, v)| !v.is_nan())
                .map(|(s, v)| {
                    let wv = if s.kind == crate::PointKind::Digital {
                        WireValue::Bool(*v != 0.0)
                    } else {
                        WireValue::Number(*v)
                    };
                    (s.name.to_owned(), wv)
                })
                .collect(),
            q: BTreeMap::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_gateway_topic_names_its_sender_and_carries_a_plain_topic() {
        let (gw, plain) = split_sender("cistern/v1/gw/gw-1/telemetry/XM-0001/P1").unwrap();
        assert_eq!(gw, Some("gw-1"));
        assert_eq!(plain, "cistern/v1/telemetry/XM-0001/P1");
        let (gw, plain) = split_sender("cistern/v1/telemetry/XM-0001").unwrap();
        assert_eq!((gw, plain.as_ref()), (None, "cistern/v1/telemetry/XM-0001"));
        for bad in [
            "cistern/v1/gw/gw-1",
            "cistern/v1/gw/gw-1/status/XM-0001",
            "cistern/v1/gw//telemetry/XM-0001",
        ] {
            assert!(split_sender(bad).is_err(), "{bad}");
        }
        let room = RoomId::new("XM-0001").unwrap();
        assert_eq!(
            gateway_room_topic("gw-1", &room),
            "cistern/v1/gw/gw-1/telemetry/XM-0001"
        );
    }

    use super::*;

    const NOW: Timestamp = Timestamp(1_763_700_000_000);

    fn pump() -> DeviceId {
        "XM-0001/P1".parse().unwrap()
    }

    #[test]
    fn topics_round_trip() {
        let d = pump();
        assert_eq!(topic(&d), "cistern/v1/telemetry/XM-0001/P1");
        assert_eq!(parse_topic(&topic(&d)).unwrap(), d);
        assert!(matches!(
            parse_topic("cistern/v1/telemetry/XM-0001"),
            Err(PayloadError::Topic)
        ));
        assert!(matches!(
            parse_topic("other/XM-0001/P1"),
            Err(PayloadError::Topic)
        ));
        assert!(matches!(
            parse_topic("cistern/v1/telemetry/XM 1/P1"),
            Err(PayloadError::Id(_))
        ));
    }

    #[test]
    fn encode_then_decode_keeps_every_value_in_time_order() {
        let a = [1.0, 0.0, 42.5, 30.0, 11.0, 100.0, 7.0, 1.0];
        let b = [1.0, 0.0, 43.0, 31.0, 12.0, 100.1, 7.0, 1.0];
        let later = Timestamp(NOW.0 - 2_000);
        let earlier = Timestamp(NOW.0 - 4_000);
        let payload = encode(DeviceKind::Pump, &[(later, &b), (earlier, &a)], true);
        let d = decode(pump(), &payload, NOW, &PayloadLimits::default()).unwrap();
        assert!(d.replay);
        assert!(d.rejections.is_empty(), "{:?}", d.rejections);
        assert_eq!(d.batch.records.len(), 2);
        assert_eq!(d.batch.records[0].t, earlier);
        let freq = DeviceKind::Pump.point_index("frequency").unwrap();
        let v = d.batch.records[0]
            .values
            .iter()
            .find(|v| v.index as usize == freq)
            .unwrap();
        assert_eq!(v.value, 42.5);
    }

    #[test]
    fn bad_values_are_dropped_with_reasons_and_the_rest_kept() {
        let payload = format!(
            r#"{{"records":[{{"t":{},"v":{{"frequency":40.0,"running":0.5,"bogus":1,"current":1e999}}}},
                 {{"t":{},"v":{{"frequency":41.0}}}}]}}"#,
            NOW.0,
            NOW.0 + 3_600_000
        );
        // 1e999 is not valid JSON for a finite f64 in serde_json: the whole payload is malformed.
        assert!(matches!(
            decode(pump(), payload.as_bytes(), NOW, &PayloadLimits::default()),
            Err(PayloadError::Json(_))
        ));
        let payload = format!(
            r#"{{"records":[{{"t":{},"v":{{"frequency":40.0,"running":0.5,"bogus":1}},"q":{{"frequency":"bad"}}}},
                 {{"t":{},"v":{{"frequency":41.0}}}}]}}"#,
            NOW.0,
            NOW.0 + 3_600_000
        );
        let d = decode(pump(), payload.as_bytes(), NOW, &PayloadLimits::default()).unwrap();
        let labels: Vec<_> = d.rejections.iter().map(|r| r.label()).collect();
        // values are visited in name order: bogus, frequency, running
        assert_eq!(labels, ["unknown_point", "not_digital", "future_timestamp"]);
        assert_eq!(d.batch.records.len(), 1);
        assert_eq!(d.batch.records[0].values.len(), 1);
        assert_eq!(
            d.batch.records[0].values[0].quality.level,
            QualityLevel::Bad
        );
    }

    #[test]
    fn oversized_and_malformed_payloads_are_refused_whole() {
        let limits = PayloadLimits {
            max_bytes: 16,
            ..PayloadLimits::default()
        };
        let err = decode(pump(), &[b' '; 17], NOW, &limits).unwrap_err();
        assert_eq!(err.label(), "too_large");
        for junk in [
            &b"not json"[..],
            b"{}",
            b"{\"records\":5}",
            b"\xff\xfe",
            b"[]",
        ] {
            let err = decode(pump(), junk, NOW, &PayloadLimits::default()).unwrap_err();
            assert_eq!(err.label(), "malformed");
        }
        let many = format!(r#"{{"records":[{}]}}"#, [r#"{"t":0,"v":{}}"#; 3].join(","));
        let limits = PayloadLimits {
            max_records: 2,
            ..PayloadLimits::default()
        };
        assert_eq!(
            decode(pump(), many.as_bytes(), NOW, &limits)
                .unwrap_err()
                .label(),
            "too_many_records"
        );
    }
}

#[cfg(test)]
mod room_tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_763_700_000_000);

    fn room() -> RoomId {
        RoomId::new("XM-0001").unwrap()
    }

    #[test]
    fn topics_of_both_forms_are_told_apart_and_deeper_ones_refused() {
        let r = room();
        assert_eq!(room_topic(&r), "cistern/v1/telemetry/XM-0001");
        assert_eq!(
            parse_any_topic(&room_topic(&r)).unwrap(),
            TelemetryTopic::Room(r.clone())
        );
        let pump: DeviceId = "XM-0001/P1".parse().unwrap();
        assert_eq!(
            parse_any_topic(&topic(&pump)).unwrap(),
            TelemetryTopic::Device(pump)
        );
        for (t, label) in [
            ("cistern/v1/telemetry/XM-0001/P1/extra", "bad_topic"),
            ("cistern/v1/telemetry/XM-0001/P1/", "bad_topic"),
            ("cistern/v1/telemetry", "bad_topic"),
            ("cistern/v1/telemetry/", "bad_id"),
            ("cistern/v1/telemetry/XM 1", "bad_id"),
            ("cistern/v1/telemetry/XM-0001/Q7", "bad_id"),
        ] {
            assert_eq!(parse_any_topic(t).unwrap_err().label(), label, "{t}");
        }
        assert_eq!(
            parse_topic(&room_topic(&r)).unwrap_err().label(),
            "bad_topic"
        );
    }

    fn rows() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let pump_a = vec![1.0, 0.0, 42.5, 30.0, 11.0, 100.0, 7.0, 1.0];
        let pump_b = vec![1.0, 0.0, 43.0, f64::NAN, 12.0, 100.1, 7.0, 1.0];
        let tank = vec![f64::NAN; DeviceKind::Tank.points().len()];
        (pump_a, pump_b, tank)
    }

    #[test]
    fn a_room_message_decodes_into_the_batches_of_the_per_device_form() {
        let (pump_a, pump_b, mut tank) = rows();
        tank[DeviceKind::Tank.point_index("level").unwrap()] = 2.5;
        let later = Timestamp(NOW.0 - 2_000);
        let earlier = Timestamp(NOW.0 - 4_000);
        // written out of time order: decoding sorts, as for the per-device form
        let pump_records: Vec<(Timestamp, &[f64])> = vec![(later, &pump_b), (earlier, &pump_a)];
        let tank_records: Vec<(Timestamp, &[f64])> = vec![(earlier, &tank), (later, &tank)];
        let units = [DeviceUnit::Pump(1), DeviceUnit::Tank(2)];
        let payload = encode_room(
            [
                (units[0], pump_records.as_slice()),
                (units[1], tank_records.as_slice()),
            ],
            true,
        );
        let limits = PayloadLimits::default();
        let d = decode_room(room(), &payload, NOW, &limits).unwrap();
        assert!(d.replay && d.refused.is_empty());
        assert_eq!(d.devices.len(), 2);
        for (decoded, (unit, records)) in d
            .devices
            .iter()
            .zip(units.iter().zip([&pump_records, &tank_records]))
        {
            let device = DeviceId::new(room(), *unit);
            let single = decode(
                device.clone(),
                &encode(unit.kind(), records, true),
                NOW,
                &limits,
            )
            .unwrap();
            assert_eq!(decoded.batch, single.batch);
            assert_eq!(decoded.batch.device, device);
            assert!(decoded.replay && decoded.rejections.is_empty());
        }
        assert_eq!(d.devices[0].batch.records[0].t, earlier);
        assert_eq!(d.devices[0].batch.point_count(), 8 + 7);
        assert_eq!(d.devices[1].batch.point_count(), 2);
        // and the payload itself survives a round trip through the wire types
        let wire: WireRoomBatch = serde_json::from_slice(&payload).unwrap();
        assert_eq!(serde_json::to_vec(&wire).unwrap(), payload);
        assert_eq!(
            wire.devices.0[0].0, "P1",
            "devices keep the gateway's order"
        );
    }

    #[test]
    fn room_messages_are_held_to_the_payload_limits_over_all_devices() {
        let (pump_a, _, _) = rows();
        let records: Vec<(Timestamp, &[f64])> = vec![(NOW, &pump_a), (NOW, &pump_a)];
        let payload = encode_room(
            [
                (DeviceUnit::Pump(1), records.as_slice()),
                (DeviceUnit::Pump(2), records.as_slice()),
            ],
            false,
        );
        let limits = |max_records, max_bytes| PayloadLimits {
            max_records,
            max_bytes,
            ..PayloadLimits::default()
        };
        let err = decode_room(room(), &payload, NOW, &limits(3, 1 << 20)).unwrap_err();
        assert!(
            matches!(err, PayloadError::TooManyRecords { count: 4, limit: 3 }),
            "{err}"
        );
        assert!(decode_room(room(), &payload, NOW, &limits(4, 1 << 20)).is_ok());
        let err = decode_room(room(), &payload, NOW, &limits(4, payload.len() - 1)).unwrap_err();
        assert_eq!(err.label(), "too_large");
        for junk in [
            &b"not json"[..],
            b"{}",
            b"[]",
            b"{\"devices\":[]}",
            b"{\"devices\":{\"P1\":{}}}",
            b"{\"records\":[]}",
            b"{\"devices\":{},\"extra\":1}",
            b"{\"devices\":{\"P1\":[],\"T1\":[],\"P1\":[]}}",
            b"{\"devices\":{\"P1\":[{\"t\":0,\"v\":{\"running\":null}}]}}",
        ] {
            let err = decode_room(room(), junk, NOW, &PayloadLimits::default()).unwrap_err();
            assert_eq!(
                err.label(),
                "malformed",
                "{}",
                String::from_utf8_lossy(junk)
            );
        }
        let empty = decode_room(room(), b"{\"devices\":{}}", NOW, &PayloadLimits::default());
        assert!(empty.unwrap().devices.is_empty());
    }

    #[test]
    fn a_bad_device_key_refuses_that_entry_and_keeps_the_others() {
        let payload = format!(
            r#"{{"devices":{{"P1":[{{"t":{t},"v":{{"frequency":40.0}}}}],
                "Q7":[{{"t":{t},"v":{{"frequency":41.0}}}}],
                "XM-0002/P1":[{{"t":{t},"v":{{"frequency":42.0}}}}],
                "room":[{{"t":{t},"v":{{"chlorine":0.3}}}}]}}}}"#,
            t = NOW.0
        );
        let d = decode_room(room(), payload.as_bytes(), NOW, &PayloadLimits::default()).unwrap();
        let keys: Vec<_> = d.refused.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["Q7", "XM-0002/P1"]);
        assert!(d.refused.iter().all(|r| r.error.label() == "bad_id"));
        let devices: Vec<String> = d
            .devices
            .iter()
            .map(|d| d.batch.device.to_string())
            .collect();
        assert_eq!(devices, ["XM-0001/P1", "XM-0001"]);
        assert!(d.devices.iter().all(|d| d.batch.point_count() == 1));
    }

    #[test]
    fn bad_values_of_one_device_are_rejected_and_counted_per_device() {
        let payload = format!(
            r#"{{"devices":{{
                "P1":[{{"t":{now},"v":{{"frequency":40.0,"running":0.5,"bogus":1}},"q":{{"frequency":"bad"}}}},
                      {{"t":{future},"v":{{"frequency":41.0}}}}],
                "T1":[{{"t":{now},"v":{{"level":2.0,"overflow":true}}}}],
                "C1":[{{"t":{now},"v":{{"online":2}}}}]}},"replay":true}}"#,
            now = NOW.0,
            future = NOW.0 + 3_600_000
        );
        let d = decode_room(room(), payload.as_bytes(), NOW, &PayloadLimits::default()).unwrap();
        assert!(d.replay && d.refused.is_empty());
        let labels =
            |i: usize| -> Vec<&str> { d.devices[i].rejections.iter().map(|r| r.label()).collect() };
        assert_eq!(
            labels(0),
            ["unknown_point", "not_digital", "future_timestamp"]
        );
        assert_eq!(d.devices[0].batch.point_count(), 1);
        assert_eq!(
            d.devices[0].batch.records[0].values[0].quality.level,
            QualityLevel::Bad
        );
        assert!(labels(1).is_empty());
        assert_eq!(d.devices[1].batch.point_count(), 2);
        assert_eq!(labels(2), ["not_digital"]);
        assert!(d.devices[2].batch.records.is_empty());
    }

    #[test]
    fn wire_values_take_booleans_and_any_number_and_serialize_bare() {
        let parse = |s: &str| serde_json::from_str::<WireValue>(s);
        assert_eq!(parse("true").unwrap(), WireValue::Bool(true));
        assert_eq!(parse("false").unwrap(), WireValue::Bool(false));
        assert_eq!(parse("7").unwrap(), WireValue::Number(7.0));
        assert_eq!(parse("-3").unwrap(), WireValue::Number(-3.0));
        assert_eq!(parse("42.5").unwrap(), WireValue::Number(42.5));
        assert_eq!(parse("1e3").unwrap(), WireValue::Number(1000.0));
        assert_eq!(
            parse("18446744073709551615").unwrap(),
            WireValue::Number(u64::MAX as f64)
        );
        for bad in ["null", "\"1\"", "[]", "{}", "1e999"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("\"x\"").unwrap_err().to_string(),
            "invalid type: string \"x\", expected a boolean or a number at line 1 column 3"
        );
        let out = serde_json::to_string(&[
            WireValue::Bool(true),
            WireValue::Number(42.5),
            WireValue::Number(1.0),
        ])
        .unwrap();
        assert_eq!(out, "[true,42.5,1.0]");
    }
}

/// The wire format is a protocol: these tests pin it to the committed example and schema. A
/// change here is a reviewed protocol change (and a new version of the convention).
#[cfg(test)]
mod wire_format {
    use super::*;

    const EXAMPLE: &str = include_str!("../json/examples/pump-replay.json");
    const ROOM_EXAMPLE: &str = include_str!("../json/examples/room-live.json");
    const SCHEMA: &str = include_str!("../json/telemetry.schema.json");

    /// A decoded batch as rows of catalog-ordered values (`NaN`: absent), ready to re-encode.
    fn rows(d: &Decoded) -> Vec<(Timestamp, Vec<f64>)> {
        let width = d.batch.device.unit.kind().points().len();
        d.batch
            .records
            .iter()
            .map(|r| {
                let mut row = vec![f64::NAN; width];
                for v in &r.values {
                    row[usize::from(v.index)] = v.value;
                }
                (r.t, row)
            })
            .collect()
    }

    #[test]
    fn the_committed_example_decodes_and_re_encodes_byte_for_byte() {
        let device: DeviceId = "XM-0001/P1".parse().unwrap();
        let now = Timestamp(1_767_571_260_000);
        let d = decode(
            device,
            EXAMPLE.trim().as_bytes(),
            now,
            &PayloadLimits::default(),
        )
        .unwrap();
        assert!(d.rejections.is_empty() && d.replay);
        let rows: Vec<Vec<f64>> = d
            .batch
            .records
            .iter()
            .map(|r| {
                let mut row = vec![f64::NAN; DeviceKind::Pump.points().len()];
                for v in &r.values {
                    row[usize::from(v.index)] = v.value;
                }
                row
            })
            .collect();
        let records: Vec<(Timestamp, &[f64])> = d
            .batch
            .records
            .iter()
            .zip(&rows)
            .map(|(r, row)| (r.t, row.as_slice()))
            .collect();
        let encoded = String::from_utf8(encode(DeviceKind::Pump, &records, true)).unwrap();
        assert_eq!(encoded, EXAMPLE.trim());
    }

    #[test]
    fn the_committed_room_example_decodes_and_re_encodes_byte_for_byte() {
        let room = RoomId::new("XM-0001").unwrap();
        let now = Timestamp(1_767_571_260_000);
        let d = decode_room(
            room,
            ROOM_EXAMPLE.trim().as_bytes(),
            now,
            &PayloadLimits::default(),
        )
        .unwrap();
        assert!(!d.replay && d.refused.is_empty());
        assert!(d.devices.iter().all(|d| d.rejections.is_empty()));
        let units: Vec<String> = d
            .devices
            .iter()
            .map(|d| d.batch.device.unit.to_string())
            .collect();
        assert_eq!(units, ["room", "P1", "T1"]);
        type Rows<V> = Vec<(Timestamp, V)>;
        let rows: Vec<(DeviceUnit, Rows<Vec<f64>>)> = d
            .devices
            .iter()
            .map(|d| (d.batch.device.unit, rows(d)))
            .collect();
        let records: Vec<(DeviceUnit, Rows<&[f64]>)> = rows
            .iter()
            .map(|(u, rs)| (*u, rs.iter().map(|(t, r)| (*t, r.as_slice())).collect()))
            .collect();
        let encoded = String::from_utf8(encode_room(
            records.iter().map(|(u, rs)| (*u, rs.as_slice())),
            false,
        ))
        .unwrap();
        assert_eq!(encoded, ROOM_EXAMPLE.trim());
    }

    #[test]
    fn the_schema_describes_exactly_the_fields_the_codec_reads() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        // a payload is one of the two forms (the topic says which)
        let forms: Vec<&str> = schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["$ref"].as_str().unwrap())
            .collect();
        assert_eq!(forms, ["#/$defs/deviceBatch", "#/$defs/roomBatch"]);
        let device = &schema["$defs"]["deviceBatch"];
        assert_eq!(keys(&device["properties"]), ["records", "replay"]);
        assert_eq!(device["additionalProperties"], false);
        assert_eq!(
            device["properties"]["records"]["maxItems"],
            PayloadLimits::default().max_records
        );
        let room = &schema["$defs"]["roomBatch"];
        assert_eq!(keys(&room["properties"]), ["devices", "replay"]);
        assert_eq!(room["additionalProperties"], false);
        assert_eq!(room["required"], serde_json::json!(["devices"]));
        assert_eq!(
            room["properties"]["devices"]["additionalProperties"]["items"]["$ref"],
            "#/$defs/record"
        );
        assert_eq!(
            keys(&schema["$defs"]["record"]["properties"]),
            ["q", "t", "v"]
        );
        // what the codec writes uses only those fields
        let example: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        assert_eq!(keys(&example), ["records", "replay"]);
        let room_example: serde_json::Value = serde_json::from_str(ROOM_EXAMPLE).unwrap();
        assert_eq!(keys(&room_example), ["devices"]);
    }
}

/// The committed examples, and every JSON example of telemetry.md, validate against the
/// committed JSON Schema (and decode with the codec); payloads the codec refuses for their
/// shape do not validate.
#[cfg(test)]
mod schema_validation {
    use super::*;

    const SCHEMA: &str = include_str!("../json/telemetry.schema.json");
    const PAGE: &str = include_str!("../json/telemetry.md");
    const EXAMPLES: [&str; 2] = [
        include_str!("../json/examples/pump-replay.json"),
        include_str!("../json/examples/room-live.json"),
    ];

    fn compiled() -> (boon::Schemas, boon::SchemaIndex) {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        let v: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        let id = v["$id"].as_str().unwrap().to_owned();
        compiler.add_resource(&id, v).unwrap();
        let index = compiler.compile(&id, &mut schemas).unwrap();
        (schemas, index)
    }

    /// The fenced ```json blocks of the page.
    fn page_examples() -> Vec<String> {
        PAGE.split("```json\n")
            .skip(1)
            .map(|rest| rest.split("```").next().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn examples_validate_and_decode() {
        let (schemas, index) = compiled();
        let page = page_examples();
        assert!(page.len() >= 2, "telemetry.md shows both forms");
        let now = Timestamp(1_767_571_260_000);
        let limits = PayloadLimits::default();
        for text in EXAMPLES
            .iter()
            .copied()
            .chain(page.iter().map(String::as_str))
        {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            if let Err(e) = schemas.validate(&v, index) {
                panic!("does not validate: {e:#}\n{text}");
            }
            let bytes = text.as_bytes();
            if v.get("devices").is_some() {
                let d = decode_room(RoomId::new("XM-0001").unwrap(), bytes, now, &limits).unwrap();
                assert!(d.refused.is_empty(), "{text}");
                assert!(d.devices.iter().all(|d| d.rejections.is_empty()), "{text}");
            } else {
                let d = decode("XM-0001/P1".parse().unwrap(), bytes, now, &limits).unwrap();
                assert!(d.rejections.is_empty(), "{text}");
            }
        }
    }

    #[test]
    fn payloads_of_neither_form_do_not_validate() {
        let (schemas, index) = compiled();
        for text in [
            r#"{}"#,
            r#"{"records":[],"devices":{}}"#,
            r#"{"records":[],"extra":1}"#,
            r#"{"devices":{"Q7":[]}}"#,
            r#"{"devices":{"P1":{"t":0,"v":{}}}}"#,
            r#"{"devices":{"P1":[{"t":0,"v":{"running":null}}]}}"#,
            r#"{"devices":{"P1":[]},"replay":"yes"}"#,
        ] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(schemas.validate(&v, index).is_err(), "validates: {text}");
        }
    }
}
