//! `GET /api/v1/history?point=…&point=…&from=…&to=…[&step=…]`: the stored samples of one or
//! more points (for comparing devices) over a time range, in time order. `from` and `to` are
//! milliseconds since the Unix epoch, RFC 3339 times (`2026-12-06T10:00:00Z`, with an offset
//! or not), `now`, or times relative to now (`-24h`, `-15m`, `now-7d`: humantime); `to` defaults
//! to now and `from` to an hour before `to`. A point the fleet does not have is 404
//! `unknown_point` (naming it), not an empty series.
//!
//! Without `step`: raw samples, `[t, value]` pairs, over at most 31 days and at most
//! [`MAX_SAMPLES`] samples in all (past that: 400 `too_many_samples`, ask for a step).
//! With `step` (humantime such as `1m`, `15m`, `1h`, `1d`, or plain milliseconds, at least 1 s):
//! buckets aligned to the Unix epoch (UTC), `{t, min, max, mean, last, count}` each, empty
//! buckets left out, over at most 366 days and at most [`MAX_BUCKETS`] buckets in all (checked
//! before anything is read: 400 `too_many_buckets`). Whole-hour and whole-minute steps are
//! served from the historian's rollups where it has them.

use super::error::{ApiError, ErrorCode};
use super::ApiState;
use crate::historian::rollup::Bucket;
use actix_web::{web, HttpResponse};
use cistern_schemas::{PointId, Timestamp};
use serde::Serialize;
use std::time::Duration;

/// Longest range of a raw request.
const MAX_RANGE_MS: i64 = 31 * 24 * 3600 * 1000;
/// Longest range of a request with a step.
const MAX_STEP_RANGE_MS: i64 = 366 * 24 * 3600 * 1000;
/// Most points one request may ask for.
const MAX_POINTS: usize = 20;
/// Most raw samples one response may hold (all points together).
pub const MAX_SAMPLES: usize = 500_000;
/// Most buckets one response may hold (all points together).
pub const MAX_BUCKETS: i64 = 100_000;
/// The smallest step.
const MIN_STEP_MS: i64 = 1_000;

#[derive(Serialize)]
struct Series {
    point: String,
    /// `[t, value]` pairs.
    samples: Vec<(i64, f64)>,
}

#[derive(Serialize)]
struct StepSeries {
    point: String,
    buckets: Vec<BucketView>,
}

#[derive(Serialize, Debug, PartialEq)]
struct BucketView {
    t: i64,
    min: f64,
    max: f64,
    mean: f64,
    last: f64,
    count: u64,
}

impl From<&Bucket> for BucketView {
    fn from(b: &Bucket) -> Self {
        Self {
            t: b.start,
            min: b.min,
            max: b.max,
            mean: b.mean(),
            last: b.last(),
            count: b.count,
        }
    }
}

/// A parsed, validated request.
#[derive(Debug, PartialEq)]
struct HistoryRequest {
    points: Vec<PointId>,
    from: Timestamp,
    to: Timestamp,
    step: Option<Duration>,
}

/// A step: humantime (`15m`, `1h`) or milliseconds.
pub(super) fn parse_step(value: &str) -> Result<Duration, ApiError> {
    let step = match value.parse::<u64>() {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => humantime::parse_duration(value).map_err(|e| {
            ApiError::bad_request(
                ErrorCode::InvalidStep,
                format!("step must be a duration such as 1m, 15m or 1h, or milliseconds: {e}"),
            )
        })?,
    };
    if step.as_millis() < MIN_STEP_MS as u128 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidStep,
            format!("step must be at least {MIN_STEP_MS} ms"),
        ));
    }
    Ok(step)
}

/// A point in time: milliseconds since the epoch, RFC 3339 (`Z` or an offset such as `+02:00`),
/// `now`, or `-<duration>` / `now-<duration>` (humantime: `-24h`, `-15m`, `now-7d`).
pub(super) fn parse_time(value: &str, now: Timestamp) -> Option<Timestamp> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Some(Timestamp(ms));
    }
    if value == "now" {
        return Some(now);
    }
    if let Some(ago) = value
        .strip_prefix("now-")
        .or_else(|| value.strip_prefix('-'))
    {
        let ago = humantime::parse_duration(ago).ok()?;
        let ms = i64::try_from(ago.as_millis()).ok()?;
        return Some(Timestamp(now.0.checked_sub(ms)?));
    }
    rfc3339(value)
}

/// An RFC 3339 time as milliseconds since the epoch (humantime reads UTC; an offset is applied
/// here).
fn rfc3339(value: &str) -> Option<Timestamp> {
    let (utc, offset_ms) = match value.len().checked_sub(6).and_then(|i| value.get(i..)) {
        Some(tail)
            if (tail.starts_with('+') || tail.starts_with('-')) && tail.as_bytes()[3] == b':' =>
        {
            let sign = if tail.starts_with('-') { -1 } else { 1 };
            let hours: i64 = tail.get(1..3)?.parse().ok()?;
            let minutes: i64 = tail.get(4..6)?.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let utc = format!("{}Z", &value[..value.len() - 6]);
            (utc, sign * (hours * 60 + minutes) * 60_000)
        }
        _ => (value.to_owned(), 0),
    };
    if !utc.ends_with('Z') && !utc.ends_with('z') {
        return None;
    }
    let at = humantime::parse_rfc3339(&utc.to_uppercase()).ok()?;
    let ms = match at.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).ok()?,
        Err(e) => -i64::try_from(e.duration().as_millis()).ok()?,
    };
    Some(Timestamp(ms - offset_ms))
}

fn parse(query: &[(String, String)], now: Timestamp) -> Result<HistoryRequest, ApiError> {
    let mut points = Vec::new();
    let (mut from, mut to, mut step) = (None, None, None);
    let time = |v: &str, key: &str| {
        parse_time(v, now).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidTime,
                format!(
                    "{key} {v:?} is not a time: give milliseconds since the epoch, an RFC 3339 time (2026-12-06T10:00:00Z), now, or a time relative to now (-24h, -15m)"
                ),
            )
        })
    };
    for (key, value) in query {
        match key.as_str() {
            "point" => points.push(
                value
                    .parse::<PointId>()
                    .map_err(|e| ApiError::bad_request(ErrorCode::InvalidPoint, e.to_string()))?,
            ),
            "from" => from = Some(time(value, "from")?),
            "to" => to = Some(time(value, "to")?),
            "step" => step = Some(parse_step(value)?),
            other => {
                return Err(ApiError::bad_request(
                    ErrorCode::UnknownParameter,
                    format!("unknown parameter {other:?}"),
                ))
            }
        }
    }
    if points.is_empty() || points.len() > MAX_POINTS {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidPoint,
            format!("give 1 to {MAX_POINTS} point parameters"),
        ));
    }
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(Timestamp(to.0.saturating_sub(3_600_000)));
    let (max_range, days) = match step {
        Some(_) => (MAX_STEP_RANGE_MS, 366),
        None => (MAX_RANGE_MS, 31),
    };
    if from > to || to.0.saturating_sub(from.0) > max_range {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRange,
            format!("from must not be after to, and the range at most {days} days"),
        ));
    }
    if let Some(step) = step {
        let step_ms = step.as_millis() as i64;
        let per_point = (to.0 - from.0) / step_ms + 2;
        let total = per_point.saturating_mul(points.len() as i64);
        if total > MAX_BUCKETS {
            return Err(ApiError::bad_request(
                ErrorCode::TooManyBuckets,
                format!(
                    "{} point(s) over this range at this step make up to {total} buckets, more than {MAX_BUCKETS}: ask for a larger step or a shorter range",
                    points.len()
                ),
            ));
        }
    }
    Ok(HistoryRequest {
        points,
        from,
        to,
        step,
    })
}

/// A point of the fleet: its room is known, the room has its device, and the device's kind has
/// a point of that name. Else 404 `unknown_point`, naming it (an empty series would read as
/// "no data", which is a different fact).
pub(super) fn known_point(
    fleet: &cistern_actors::FleetRegistry,
    point: &PointId,
) -> Result<(), ApiError> {
    let room = &point.device.room;
    let unit = point.device.unit;
    let why = match fleet.spec(room) {
        None => format!("room {room} is not in the fleet"),
        Some(spec) if !spec.has_unit(unit) => format!("room {room} has no device {}", point.device),
        Some(_) if unit.kind().point_index(&point.name).is_none() => {
            format!("a {} has no point named {:?}", unit.kind(), &*point.name)
        }
        Some(_) => return Ok(()),
    };
    Err(ApiError::not_found(
        ErrorCode::UnknownPoint,
        format!("unknown point {point}: {why}"),
    ))
}

pub async fn get(
    state: web::Data<ApiState>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let history = state
        .history
        .as_ref()
        .ok_or_else(|| ApiError::not_found(ErrorCode::NoHistory, "this node keeps no history"))?;
    let HistoryRequest {
        points,
        from,
        to,
        step,
    } = parse(&query, Timestamp::now())?;
    for point in &points {
        known_point(&state.registry, point)?;
    }
    let internal = |e: crate::store::StoreError| ApiError::internal(e.to_string());
    if let Some(step) = step {
        let mut series = Vec::with_capacity(points.len());
        for point in points {
            let buckets = history
                .history_step(&point, from, to, step)
                .await
                .map_err(internal)?;
            series.push(StepSeries {
                point: point.to_string(),
                buckets: buckets.iter().map(BucketView::from).collect(),
            });
        }
        let step_ms = step.as_millis() as i64;
        return Ok(HttpResponse::Ok().json(
            serde_json::json!({ "from": from, "to": to, "step": step_ms, "series": series }),
        ));
    }
    let mut series = Vec::with_capacity(points.len());
    let mut total = 0;
    for point in points {
        let samples = history.history(&point, from, to).await.map_err(internal)?;
        total += samples.len();
        if total > MAX_SAMPLES {
            return Err(ApiError::bad_request(
                ErrorCode::TooManySamples,
                format!(
                    "the range holds more than {MAX_SAMPLES} raw samples: ask for a step (e.g. step=1m) or a shorter range"
                ),
            ));
        }
        series.push(Series {
            point: point.to_string(),
            samples,
        });
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "from": from, "to": to, "series": series })))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_767_571_200_000);

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn code(r: Result<HistoryRequest, ApiError>) -> ErrorCode {
        match r {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(e) => {
                assert_eq!(e.status, 400);
                e.code
            }
        }
    }

    #[test]
    fn steps_parse_as_humantime_or_milliseconds() {
        assert_eq!(parse_step("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_step("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_step("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_step("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_step("90000").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_step("0").unwrap_err().code, "invalid_step");
        assert_eq!(parse_step("10ms").unwrap_err().code, "invalid_step");
        assert_eq!(parse_step("soon").unwrap_err().code, "invalid_step");
    }

    #[test]
    fn a_request_defaults_to_the_last_hour_of_raw_samples() {
        let r = parse(&q(&[("point", "XM-0001/T1.level")]), NOW).unwrap();
        assert_eq!(r.to, NOW);
        assert_eq!(r.from, Timestamp(NOW.0 - 3_600_000));
        assert_eq!(r.step, None);
        let r = parse(
            &q(&[
                ("point", "XM-0001/T1.level"),
                ("point", "XM-0002.outlet_pressure"),
                ("from", "1000"),
                ("to", "2000"),
                ("step", "1s"),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!(r.points.len(), 2);
        assert_eq!(
            (r.from, r.to, r.step),
            (
                Timestamp(1000),
                Timestamp(2000),
                Some(Duration::from_secs(1))
            )
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let p = ("point", "XM-0001/T1.level");
        assert_eq!(code(parse(&q(&[]), NOW)), "invalid_point");
        assert_eq!(
            code(parse(&q(&[("point", "nonsense")]), NOW)),
            "invalid_point"
        );
        assert_eq!(
            code(parse(&q(&[p, ("from", "yesterday")]), NOW)),
            "invalid_time"
        );
        assert_eq!(
            code(parse(&q(&[p, ("from", "5"), ("to", "4")]), NOW)),
            "invalid_range"
        );
        assert_eq!(
            code(parse(&q(&[p, ("stpe", "1m")]), NOW)),
            "unknown_parameter"
        );
        // raw: 31 days at most; with a step: 366 days, and the bucket cap
        assert_eq!(
            code(parse(&q(&[p, ("from", "0"), ("to", "2678400001")]), NOW)),
            "invalid_range"
        );
        parse(
            &q(&[p, ("from", "0"), ("to", "2678400001"), ("step", "1h")]),
            NOW,
        )
        .unwrap();
        assert_eq!(
            code(parse(
                &q(&[p, ("from", "0"), ("to", "31536000000"), ("step", "1m")]),
                NOW
            )),
            "too_many_buckets"
        );
        let twenty: Vec<(&str, &str)> = (0..20).map(|_| p).collect();
        let mut week = twenty.clone();
        week.extend([("from", "0"), ("to", "604800000"), ("step", "1h")]);
        parse(&q(&week), NOW).unwrap();
        let mut month_1m = twenty;
        month_1m.extend([("from", "0"), ("to", "2678400000"), ("step", "1m")]);
        assert_eq!(code(parse(&q(&month_1m), NOW)), "too_many_buckets");
    }

    #[test]
    fn times_are_epoch_milliseconds_rfc3339_or_relative_to_now() {
        let at = |v: &str| parse_time(v, NOW);
        assert_eq!(at("1767571200000"), Some(NOW));
        assert_eq!(at("now"), Some(NOW));
        assert_eq!(at("-24h"), Some(Timestamp(NOW.0 - 86_400_000)));
        assert_eq!(at("-15m"), Some(Timestamp(NOW.0 - 900_000)));
        assert_eq!(at("now-7d"), Some(Timestamp(NOW.0 - 7 * 86_400_000)));
        // 2026-01-05T00:00:00Z is NOW.
        assert_eq!(at("2026-01-05T00:00:00Z"), Some(NOW));
        assert_eq!(at("2026-01-05T00:00:00.250Z"), Some(Timestamp(NOW.0 + 250)));
        assert_eq!(at("2026-01-05T02:00:00+02:00"), Some(NOW));
        assert_eq!(at("2026-01-04T19:30:00-04:30"), Some(NOW));
        for bad in [
            "yesterday",
            "-",
            "-soon",
            "2026-01-05",
            "2026-01-05T00:00:00+25:00",
            "",
        ] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
        let r = parse(
            &q(&[
                ("point", "XM-0001/T1.level"),
                ("from", "2026-01-04T00:00:00Z"),
                ("to", "-1h"),
                ("step", "1h"),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!(
            (r.from, r.to),
            (Timestamp(NOW.0 - 86_400_000), Timestamp(NOW.0 - 3_600_000))
        );
    }

    #[test]
    fn buckets_show_mean_and_last() {
        let mut b = Bucket::of(60_000, 61_000, 1.0);
        b.add(62_000, 3.0);
        assert_eq!(
            serde_json::to_value(BucketView::from(&b)).unwrap(),
            serde_json::json!({"t": 60_000, "min": 1.0, "max": 3.0, "mean": 2.0, "last": 3.0, "count": 2})
        );
    }
}
