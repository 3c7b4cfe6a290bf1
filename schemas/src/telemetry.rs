//! The MQTT telemetry convention (version 1), documented in `schemas/json/telemetry.md` with the
//! JSON Schema `schemas/json/telemetry.schema.json`.
//!
//! Topic: `cistern/v1/telemetry/{room}/{device}` where `device` is `room`, `P<n>`, `T<n>` or
//! `C<n>`. Payload: a batch of records of that device, each an instant with its values:
//!
//! ```json
//! {"records": [{"t": 1732170000000, "v": {"frequency": 42.1, "running": true},
//!               "q": {"current": "bad"}}], "replay": false}
//! ```
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
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Topic prefix of version 1 of the convention.
pub const TOPIC_PREFIX: &str = "cistern/v1/telemetry";
/// The subscription filter a platform node uses.
pub const TOPIC_FILTER: &str = "cistern/v1/telemetry/+/+";
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

/// The device a telemetry topic names.
pub fn parse_topic(topic: &str) -> Result<DeviceId, PayloadError> {
    let rest = topic
        .strip_prefix(TOPIC_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or(PayloadError::Topic)?;
    let (room, unit) = rest.split_once('/').ok_or(PayloadError::Topic)?;
    let room = RoomId::new(room).map_err(PayloadError::Id)?;
    let unit: DeviceUnit = unit.parse().map_err(PayloadError::Id)?;
    Ok(DeviceId::new(room, unit))
}

/// A value on the wire: a number, or a boolean for digital points.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WireValue {
    Bool(bool),
    Number(f64),
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

/// Why a whole payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("topic is not {TOPIC_PREFIX}/<room>/<device>")]
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
    if payload.len() > limits.max_bytes {
        return Err(PayloadError::TooLarge {
            size: payload.len(),
            limit: limits.max_bytes,
        });
    }
    let wire: WireBatch = serde_json::from_slice(payload)?;
    if wire.records.len() > limits.max_records {
        return Err(PayloadError::TooManyRecords {
            count: wire.records.len(),
            limit: limits.max_records,
        });
    }
    let kind = device.unit.kind();
    let specs = kind.points();
    let latest = (now + limits.max_future).0;
    let earliest = (now - limits.max_age).0;
    let mut rejections = Vec::new();
    let mut records = Vec::with_capacity(wire.records.len());
    for rec in wire.records {
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
    Ok(Decoded {
        batch: DeviceBatch {
            device,
            source: IngestSource::Mqtt,
            records,
        },
        replay: wire.replay,
        rejections,
    })
}

/// Encodes records of `kind` (values in catalog order) as a payload. Used by the simulator's
/// gateways and by tests; `NaN` marks a value the device could not read (it is left out).
pub fn encode(kind: DeviceKind, records: &[(Timestamp, &[f64])], replay: bool) -> Vec<u8> {
    let specs = kind.points();
    let wire = WireBatch {
        records: records
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
            .collect(),
        replay,
    };
    serde_json::to_vec(&wire).unwrap_or_default()
}

#[cfg(test)]
mod tests {
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

/// The wire format is a protocol: these tests pin it to the committed example and schema. A
/// change here is a reviewed protocol change (and a new version of the convention).
#[cfg(test)]
mod wire_format {
    use super::*;

    const EXAMPLE: &str = include_str!("../json/examples/pump-replay.json");
    const SCHEMA: &str = include_str!("../json/telemetry.schema.json");

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
    fn the_schema_describes_exactly_the_fields_the_codec_reads() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&schema["properties"]), ["records", "replay"]);
        assert_eq!(
            keys(&schema["$defs"]["record"]["properties"]),
            ["q", "t", "v"]
        );
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["properties"]["records"]["maxItems"],
            PayloadLimits::default().max_records
        );
        // what the codec writes uses only those fields
        let example: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        assert_eq!(keys(&example), ["records", "replay"]);
    }
}
