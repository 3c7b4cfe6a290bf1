//! `GET /api/v1/history?point=…&point=…&from=…&to=…`: the stored samples of one or more points
//! (for comparing devices) over a time range, in time order. Times are milliseconds since the
//! Unix epoch; `to` defaults to now and `from` to an hour before `to`. Raw samples only for now
//! (rollups and `step` come with the rest of the historian).

use super::error::ApiError;
use super::ApiState;
use actix_web::{web, HttpResponse};
use cistern_schemas::{PointId, Timestamp};
use serde::Serialize;

/// Longest range one request may ask for.
const MAX_RANGE_MS: i64 = 31 * 24 * 3600 * 1000;
/// Most points one request may ask for.
const MAX_POINTS: usize = 20;

#[derive(Serialize)]
struct Series {
    point: String,
    /// `[t, value]` pairs.
    samples: Vec<(i64, f64)>,
}

pub async fn get(
    state: web::Data<ApiState>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let history = state
        .history
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no_history", "this node keeps no history"))?;
    let mut points = Vec::new();
    let (mut from, mut to) = (None, None);
    let time = |v: &str, key: &str| {
        v.parse::<i64>().map(Timestamp).map_err(|_| {
            ApiError::bad_request(
                "invalid_time",
                format!("{key} must be milliseconds since the epoch"),
            )
        })
    };
    for (key, value) in query.iter() {
        match key.as_str() {
            "point" => points.push(
                value
                    .parse::<PointId>()
                    .map_err(|e| ApiError::bad_request("invalid_point", e.to_string()))?,
            ),
            "from" => from = Some(time(value, "from")?),
            "to" => to = Some(time(value, "to")?),
            other => {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!("unknown parameter {other:?}"),
                ))
            }
        }
    }
    if points.is_empty() || points.len() > MAX_POINTS {
        return Err(ApiError::bad_request(
            "invalid_point",
            format!("give 1 to {MAX_POINTS} point parameters"),
        ));
    }
    let to = to.unwrap_or_else(Timestamp::now);
    let from = from.unwrap_or(Timestamp(to.0 - 3_600_000));
    if from > to || to.0 - from.0 > MAX_RANGE_MS {
        return Err(ApiError::bad_request(
            "invalid_range",
            "from must not be after to, and the range at most 31 days",
        ));
    }
    let mut series = Vec::with_capacity(points.len());
    for point in points {
        let samples = history
            .history(&point, from, to)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        series.push(Series {
            point: point.to_string(),
            samples,
        });
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "from": from, "to": to, "series": series })))
}
