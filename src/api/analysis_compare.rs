//! `GET /api/v1/analysis/compare?point=…&point=…&from=…&to=…[&step=…][&earlier=week|month|year|previous][&format=json|csv|xlsx][&lang=…]`:
//! several devices' points on one grid, optionally each with its earlier period (a week, a
//! calendar month, a calendar year, or the same length just before) moved onto the first
//! period's time axis; as JSON for the console's chart, or as a .xlsx / CSV download.
//!
//! Times and steps are read as `/api/v1/history` reads them. Without `step` the coarsest of
//! 1 min, 5 min, 15 min, 1 h, 6 h and 1 d that keeps a series within [`TARGET_ROWS`] rows is
//! taken; whole minutes and hours come from the historian's rollups, never from a scan of raw
//! samples. Limits: at most [`MAX_POINTS`] points, a range of at most 366 days, and at most
//! [`MAX_CELLS`] cells (series × rows, an earlier period counting as a series) — past that 400
//! `too_many_buckets` before anything is read.

use super::error::{ApiError, ErrorCode};
use super::history::{known_point, parse_step, parse_time};
use super::users::{caller, language_of};
use super::ApiState;
use crate::business::analysis::compare::{self, Earlier};
use actix_web::{web, HttpRequest, HttpResponse};
use cistern_schemas::{PointId, Timestamp};
use serde::Serialize;
use std::time::Duration;

/// Most points one comparison may hold.
pub const MAX_POINTS: usize = 8;
/// Most cells (series × rows) one comparison may hold.
pub const MAX_CELLS: i64 = 100_000;
/// The automatic step keeps a series within this many rows.
pub const TARGET_ROWS: i64 = 1_500;
/// Longest range.
const MAX_RANGE_MS: i64 = 366 * 86_400_000;
const AUTO_STEPS_MS: &[i64] = &[
    60_000,
    300_000,
    900_000,
    3_600_000,
    6 * 3_600_000,
    86_400_000,
];

#[derive(Debug, PartialEq)]
struct CompareRequest {
    points: Vec<PointId>,
    from: Timestamp,
    to: Timestamp,
    step_ms: i64,
    earlier: Option<Earlier>,
    format: Format,
    lang: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Json,
    Csv,
    Xlsx,
}

fn parse(query: &[(String, String)], now: Timestamp) -> Result<CompareRequest, ApiError> {
    let bad = |code: ErrorCode, m: String| ApiError::bad_request(code, m);
    let mut points = Vec::new();
    let (mut from, mut to, mut step, mut earlier, mut format, mut lang) =
        (None, None, None, None, Format::Json, None);
    let time = |v: &str, key: &str| {
        parse_time(v, now).ok_or_else(|| {
            bad(
                ErrorCode::InvalidTime,
                format!("{key} {v:?} is not a time: give milliseconds since the epoch, an RFC 3339 time, now, or a time relative to now (-7d)"),
            )
        })
    };
    for (key, value) in query {
        match key.as_str() {
            "point" => points.push(
                value
                    .parse::<PointId>()
                    .map_err(|e| bad(ErrorCode::InvalidPoint, e.to_string()))?,
            ),
            "from" => from = Some(time(value, "from")?),
            "to" => to = Some(time(value, "to")?),
            "step" => step = Some(parse_step(value)?),
            "earlier" if value.is_empty() => earlier = None,
            "earlier" => {
                earlier = Some(Earlier::parse(value).ok_or_else(|| {
                    bad(
                        ErrorCode::InvalidQuery,
                        format!("earlier must be previous, week, month or year (got {value:?})"),
                    )
                })?)
            }
            "format" => {
                format = match value.as_str() {
                    "json" => Format::Json,
                    "csv" => Format::Csv,
                    "xlsx" => Format::Xlsx,
                    other => {
                        return Err(bad(
                            ErrorCode::InvalidQuery,
                            format!("format must be json, csv or xlsx (got {other:?})"),
                        ))
                    }
                }
            }
            "lang" => lang = Some(value.clone()),
            other => {
                return Err(bad(
                    ErrorCode::UnknownParameter,
                    format!("unknown parameter {other:?}"),
                ))
            }
        }
    }
    if points.is_empty() || points.len() > MAX_POINTS {
        return Err(bad(
            ErrorCode::InvalidPoint,
            format!("give 1 to {MAX_POINTS} point parameters"),
        ));
    }
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(Timestamp(to.0.saturating_sub(86_400_000)));
    if from > to || to.0.saturating_sub(from.0) > MAX_RANGE_MS {
        return Err(bad(
            ErrorCode::InvalidRange,
            "from must not be after to, and the range at most 366 days".into(),
        ));
    }
    let span = to.0 - from.0 + 1;
    let step_ms = match step {
        Some(s) => i64::try_from(s.as_millis()).unwrap_or(i64::MAX),
        None => AUTO_STEPS_MS
            .iter()
            .copied()
            .find(|s| span / s <= TARGET_ROWS)
            .unwrap_or(86_400_000),
    };
    let series = points.len() as i64 * if earlier.is_some() { 2 } else { 1 };
    let cells = (span / step_ms + 2).saturating_mul(series);
    if cells > MAX_CELLS {
        return Err(bad(
            ErrorCode::TooManyBuckets,
            format!(
                "{series} series over this range at this step make up to {cells} cells, more than {MAX_CELLS}: ask for a larger step, a shorter range or fewer points"
            ),
        ));
    }
    Ok(CompareRequest {
        points,
        from,
        to,
        step_ms,
        earlier,
        format,
        lang,
    })
}

#[derive(Serialize)]
struct ColumnView {
    label: String,
    point: String,
    /// `current`, or `earlier` (moved onto the current period's axis).
    period: &'static str,
    values: Vec<Option<f64>>,
}

/// The site's local time: the analysis' day boundary (its default without the service).
fn offset_minutes(state: &ApiState) -> i32 {
    state.analysis.as_ref().map_or_else(
        || crate::business::analysis::AnalysisConfig::default().utc_offset_minutes,
        |a| a.config().utc_offset_minutes,
    )
}

pub async fn get(
    state: web::Data<ApiState>,
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req)?;
    let history = state
        .history
        .as_ref()
        .ok_or_else(|| ApiError::not_found(ErrorCode::NoHistory, "this node keeps no history"))?;
    let r = parse(&query, Timestamp::now())?;
    for point in &r.points {
        known_point(&state.registry, point)?;
    }
    let language = language_of(&state, &who, r.lang.as_deref())?;
    let words = &super::webui::catalogue(language)["compare"];
    let word = |key: &str, fallback: &str| {
        words[key]
            .as_str()
            .map_or_else(|| fallback.to_owned(), str::to_owned)
    };
    let offset = offset_minutes(&state);
    let step = Duration::from_millis(u64::try_from(r.step_ms).unwrap_or(60_000));
    let internal = |e: crate::store::StoreError| ApiError::internal(e.to_string());
    let earlier = r
        .earlier
        .map(|e| compare::earlier_period(r.from, r.to, e, offset));
    let mut series = Vec::new();
    let mut meta = Vec::new();
    for point in &r.points {
        let buckets = history
            .history_step(point, r.from, r.to, step)
            .await
            .map_err(internal)?;
        series.push((point.to_string(), buckets));
        meta.push((point.to_string(), "current"));
        if let Some((ef, et)) = earlier {
            let buckets = history
                .history_step(point, ef, et, step)
                .await
                .map_err(internal)?;
            let label = format!("{point} ({})", word("earlier_label", "earlier period"));
            series.push((label, compare::shift(&buckets, r.from.0 - ef.0)));
            meta.push((point.to_string(), "earlier"));
        }
    }
    let table = compare::align(&series, r.step_ms);
    let offset_ms = i64::from(offset);
    let (kind, ext, bytes) = match r.format {
        Format::Json => {
            let columns: Vec<ColumnView> = table
                .columns
                .into_iter()
                .zip(meta)
                .map(|(c, (point, period))| ColumnView {
                    label: c.label,
                    point,
                    period,
                    values: c.values,
                })
                .collect();
            return Ok(HttpResponse::Ok().json(serde_json::json!({
                "from": r.from,
                "to": r.to,
                "step": r.step_ms,
                "utc_offset_minutes": offset,
                "earlier": earlier.map(|(f, t)| serde_json::json!({ "from": f, "to": t })),
                "times": table.times,
                "columns": columns,
            })));
        }
        Format::Csv => (
            "text/csv; charset=utf-8",
            "csv",
            compare::csv(&table, &word("col_time", "time"), offset_ms),
        ),
        Format::Xlsx => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
            compare::xlsx(&table, &word("col_time", "time"), offset_ms),
        ),
    };
    state.security.record(
        &who,
        "data_export",
        "analysis/compare",
        match &bytes {
            Ok(_) => format!(
                "{} series from {} to {} as {ext}",
                series.len(),
                r.from.as_millis(),
                r.to.as_millis()
            ),
            Err(e) => format!("failed: {e}"),
        },
        bytes.is_ok(),
    );
    let bytes = bytes.map_err(|e| ApiError::internal(e.to_string()))?;
    let stem = format!(
        "compare-{}",
        crate::business::workorders::export::local_text(r.from, offset_ms)
            .get(..10)
            .unwrap_or_default()
            .replace('-', "")
    );
    Ok(HttpResponse::Ok()
        .content_type(kind)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{stem}.{ext}\""),
        ))
        .body(bytes))
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

    fn code(r: Result<CompareRequest, ApiError>) -> ErrorCode {
        match r {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(e) => {
                assert_eq!(e.status, 400);
                e.code
            }
        }
    }

    #[test]
    fn the_step_is_chosen_for_the_range_unless_given() {
        let p = ("point", "XM-0001.outlet_flow");
        let r = parse(&q(&[p]), NOW).unwrap();
        assert_eq!(
            (r.step_ms, r.format, r.earlier),
            (60_000, Format::Json, None)
        );
        let r = parse(&q(&[p, ("from", "-7d"), ("earlier", "week")]), NOW).unwrap();
        assert_eq!((r.step_ms, r.earlier), (900_000, Some(Earlier::Week)));
        let r = parse(&q(&[p, ("from", "-31d"), ("format", "xlsx")]), NOW).unwrap();
        assert_eq!((r.step_ms, r.format), (3_600_000, Format::Xlsx));
        let r = parse(&q(&[p, ("from", "-366d"), ("earlier", "year")]), NOW).unwrap();
        assert_eq!(r.step_ms, 6 * 3_600_000);
        let r = parse(&q(&[p, ("from", "-1d"), ("step", "1h")]), NOW).unwrap();
        assert_eq!(r.step_ms, 3_600_000);
    }

    #[test]
    fn limits_and_bad_input_have_their_codes() {
        let p = ("point", "XM-0001.outlet_flow");
        assert_eq!(code(parse(&q(&[]), NOW)), "invalid_point");
        let nine: Vec<(&str, &str)> = (0..9).map(|_| p).collect();
        assert_eq!(code(parse(&q(&nine), NOW)), "invalid_point");
        assert_eq!(
            code(parse(&q(&[p, ("from", "-400d")]), NOW)),
            "invalid_range"
        );
        // 8 points, each with its earlier period, over 31 days at 1 min: far over the cap.
        let mut many: Vec<(&str, &str)> = (0..8).map(|_| p).collect();
        many.extend([("from", "-31d"), ("step", "1m"), ("earlier", "month")]);
        assert_eq!(code(parse(&q(&many), NOW)), "too_many_buckets");
        assert_eq!(
            code(parse(&q(&[p, ("earlier", "decade")]), NOW)),
            "invalid_query"
        );
        assert_eq!(
            code(parse(&q(&[p, ("format", "pdf")]), NOW)),
            "invalid_query"
        );
        assert_eq!(
            code(parse(&q(&[p, ("stpe", "1m")]), NOW)),
            "unknown_parameter"
        );
    }
}
