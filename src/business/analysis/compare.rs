//! Comparisons (issue 22 item 4): several devices' points on one chart, aligned, with rollups
//! for long ranges; the same point over two periods overlaid; exported as .xlsx or CSV.
//!
//! Pure: the caller reads each point's buckets at one step from the historian
//! (`Historian::history_step`, which serves whole minutes and hours from the rollups), and this
//! module aligns them on one grid ([`align`]: a row per step, a column per series, a hole where
//! a series has no bucket), works out the earlier period to overlay ([`earlier_period`]: the
//! same length just before, a week, a calendar month or a calendar year earlier) and moves its
//! buckets onto the first period's time axis ([`shift`]), and writes the table as a sheet
//! ([`xlsx`], [`csv`]).

use crate::business::workorders::export::local_text;
use crate::historian::rollup::Bucket;
use cistern_schemas::{Date, Timestamp};
use serde::{Deserialize, Serialize};

/// Why a comparison could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("csv: {0}")]
    CsvFlush(String),
}

/// The earlier period overlaid on the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Earlier {
    /// The period of the same length just before (环比 of an arbitrary range).
    Previous,
    /// A week earlier (this week vs last week).
    Week,
    /// The same dates a calendar month earlier (this month vs last month).
    Month,
    /// The same dates a calendar year earlier (同比: this month vs the same month last year).
    Year,
}

impl Earlier {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "previous" => Some(Self::Previous),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }
}

/// The earlier period `[from, to]` for `earlier`, in the site's local calendar
/// (`offset_minutes`): a calendar month or year back keeps the local date and time, with the day
/// clamped to the month's length (31 March → 28 or 29 February; 29 February → 28 February).
pub fn earlier_period(
    from: Timestamp,
    to: Timestamp,
    earlier: Earlier,
    offset_minutes: i32,
) -> (Timestamp, Timestamp) {
    const WEEK_MS: i64 = 7 * 86_400_000;
    match earlier {
        Earlier::Previous => {
            let len = to.0 - from.0 + 1;
            (Timestamp(from.0 - len), Timestamp(to.0 - len))
        }
        Earlier::Week => (Timestamp(from.0 - WEEK_MS), Timestamp(to.0 - WEEK_MS)),
        Earlier::Month => (
            months_back(from, 1, offset_minutes),
            months_back(to, 1, offset_minutes),
        ),
        Earlier::Year => (
            months_back(from, 12, offset_minutes),
            months_back(to, 12, offset_minutes),
        ),
    }
}

/// `t` moved `months` calendar months back in local time.
fn months_back(t: Timestamp, months: i32, offset_minutes: i32) -> Timestamp {
    let date = Date::of(t, offset_minutes);
    let time_of_day = t.0 - date.start(offset_minutes).0;
    let (y, m, d) = date.parts();
    let index = y * 12 + (m as i32 - 1) - months;
    let (y2, m2) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
    let last = (28..=31)
        .rev()
        .find(|&day| Date::ymd(y2, m2, day).is_some())
        .unwrap_or(28);
    let back = Date::ymd(y2, m2, d.min(last)).unwrap_or(date);
    Timestamp(back.start(offset_minutes).0 + time_of_day)
}

/// The buckets moved by `by_ms` (an earlier period's onto the first's time axis).
pub fn shift(buckets: &[Bucket], by_ms: i64) -> Vec<Bucket> {
    buckets
        .iter()
        .map(|b| Bucket {
            start: b.start + by_ms,
            last_t: b.last_t + by_ms,
            ..*b
        })
        .collect()
}

/// Series aligned on one grid of `step_ms`: `times[i]` is a row, `columns[j].values[i]` the mean
/// of series `j` over that step (`None`: no data). Rows where no series has data are left out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Aligned {
    pub step_ms: i64,
    pub times: Vec<i64>,
    pub columns: Vec<Column>,
}

/// One series of an [`Aligned`] table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Column {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

/// Aligns series of buckets (each in start order) on the grid of `step_ms` from the epoch: a
/// bucket goes to the row of the grid step its start falls in (a shifted bucket may start off
/// the grid); two in one row are averaged by their sample counts.
pub fn align(series: &[(String, Vec<Bucket>)], step_ms: i64) -> Aligned {
    let step = step_ms.max(1);
    let row_of = |t: i64| t - t.rem_euclid(step);
    let mut times: Vec<i64> = series
        .iter()
        .flat_map(|(_, b)| b.iter().map(|b| row_of(b.start)))
        .collect();
    times.sort_unstable();
    times.dedup();
    let columns = series
        .iter()
        .map(|(label, buckets)| {
            let mut sums = vec![(0.0, 0u64); times.len()];
            for b in buckets {
                if let Ok(i) = times.binary_search(&row_of(b.start)) {
                    if let Some(s) = sums.get_mut(i) {
                        s.0 += b.sum;
                        s.1 += b.count;
                    }
                }
            }
            Column {
                label: label.clone(),
                values: sums
                    .iter()
                    .map(|&(sum, n)| (n > 0).then(|| sum / n as f64).filter(|v| v.is_finite()))
                    .collect(),
            }
        })
        .collect();
    Aligned {
        step_ms: step,
        times,
        columns,
    }
}

/// The table as an .xlsx workbook: a header row (`time_header`, then each column's label),
/// times as Excel dates in local time, values as numbers, holes empty.
pub fn xlsx(
    table: &Aligned,
    time_header: &str,
    offset_minutes: i64,
) -> Result<Vec<u8>, CompareError> {
    use rust_xlsxwriter::{Format, FormatBorder, Workbook};
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name("compare")?;
    let head = Format::new()
        .set_bold()
        .set_border_bottom(FormatBorder::Thin);
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    ws.write_string_with_format(0, 0, time_header, &head)?;
    ws.set_column_width(0, 17.0)?;
    for (c, col) in table.columns.iter().enumerate() {
        let c = u16::try_from(c + 1).unwrap_or(u16::MAX);
        ws.write_string_with_format(0, c, &col.label, &head)?;
        ws.set_column_width(
            c,
            (col.label.chars().count() as f64 + 2.0).clamp(12.0, 40.0),
        )?;
    }
    ws.set_freeze_panes(1, 1)?;
    for (r, t) in table.times.iter().enumerate() {
        let row = u32::try_from(r + 1).unwrap_or(u32::MAX);
        let serial = (*t + offset_minutes * 60_000) as f64 / 86_400_000.0 + 25_569.0;
        ws.write_number_with_format(row, 0, serial, &date)?;
        for (c, col) in table.columns.iter().enumerate() {
            if let Some(Some(v)) = col.values.get(r) {
                ws.write_number(row, u16::try_from(c + 1).unwrap_or(u16::MAX), *v)?;
            }
        }
    }
    Ok(book.save_to_buffer()?)
}

/// The table as CSV (UTF-8 with a byte-order mark, CRLF line ends), times in local time.
pub fn csv(
    table: &Aligned,
    time_header: &str,
    offset_minutes: i64,
) -> Result<Vec<u8>, CompareError> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    let mut header = vec![time_header.to_owned()];
    header.extend(table.columns.iter().map(|c| c.label.clone()));
    out.write_record(&header)?;
    for (r, t) in table.times.iter().enumerate() {
        let mut record = vec![local_text(Timestamp(*t), offset_minutes)];
        record.extend(table.columns.iter().map(|c| match c.values.get(r) {
            Some(Some(v)) => format!("{v}"),
            _ => String::new(),
        }));
        out.write_record(&record)?;
    }
    out.into_inner()
        .map_err(|e| CompareError::CsvFlush(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn b(start: i64, v: f64) -> Bucket {
        Bucket::of(start, start, v)
    }

    #[test]
    fn series_align_on_one_grid_with_holes() {
        let a = vec![b(0, 1.0), b(H, 2.0), b(3 * H, 4.0)];
        let mut two = b(H, 10.0);
        two.add(H + 1, 20.0);
        let c = vec![two, b(2 * H, 30.0)];
        let t = align(&[("a".into(), a), ("c".into(), c)], H);
        assert_eq!(t.times, vec![0, H, 2 * H, 3 * H]);
        assert_eq!(
            t.columns[0].values,
            vec![Some(1.0), Some(2.0), None, Some(4.0)]
        );
        assert_eq!(
            t.columns[1].values,
            vec![None, Some(15.0), Some(30.0), None]
        );
        assert_eq!(align(&[], H).times, Vec::<i64>::new());
    }

    #[test]
    fn an_earlier_period_shifts_onto_the_first() {
        let from = Timestamp(10 * 86_400_000);
        let to = Timestamp(17 * 86_400_000 - 1);
        let (pf, pt) = earlier_period(from, to, Earlier::Week, 480);
        assert_eq!((pf.0, pt.0), (3 * 86_400_000, 10 * 86_400_000 - 1));
        let (pf, pt) = earlier_period(from, to, Earlier::Previous, 480);
        assert_eq!((pf.0, pt.0), (3 * 86_400_000, 10 * 86_400_000 - 1));
        let moved = shift(&[b(pf.0, 5.0)], from.0 - pf.0);
        assert_eq!(moved[0].start, from.0);
        assert_eq!(moved[0].mean(), 5.0);
    }

    #[test]
    fn a_month_or_year_back_keeps_the_local_calendar_across_a_leap_day() {
        let at = |y, m, d, h: i64| Timestamp(Date::ymd(y, m, d).unwrap().start(480).0 + h * H);
        // March 2024 (2024 is a leap year) → February 2024; 31 March clamps to 29 February.
        let (f, t) = earlier_period(at(2024, 3, 1, 0), at(2024, 3, 31, 23), Earlier::Month, 480);
        assert_eq!((f, t), (at(2024, 2, 1, 0), at(2024, 2, 29, 23)));
        // 29 February 2024 a year back is 28 February 2023.
        let (f, _) = earlier_period(at(2024, 2, 29, 6), at(2024, 3, 1, 0), Earlier::Year, 480);
        assert_eq!(f, at(2023, 2, 28, 6));
        // January → December of the year before.
        let (f, _) = earlier_period(at(2026, 1, 15, 9), at(2026, 1, 16, 0), Earlier::Month, 480);
        assert_eq!(f, at(2025, 12, 15, 9));
        assert_eq!(Earlier::parse("year"), Some(Earlier::Year));
        assert_eq!(Earlier::parse("decade"), None);
    }

    #[test]
    fn the_table_exports_as_csv_and_xlsx() {
        let t = align(
            &[
                ("XM-0001.outlet_flow".into(), vec![b(0, 1.5), b(H, 2.0)]),
                ("上周".into(), vec![b(H, 3.0)]),
            ],
            H,
        );
        let bytes = csv(&t, "时间", 480).unwrap();
        assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF]);
        let text = std::str::from_utf8(&bytes[3..]).unwrap();
        assert_eq!(
            text,
            "时间,XM-0001.outlet_flow,上周\r\n1970-01-01 08:00:00,1.5,\r\n1970-01-01 09:00:00,2,3\r\n"
        );
        let book = xlsx(&t, "time", 480).unwrap();
        assert_eq!(&book[..2], b"PK");
    }
}
