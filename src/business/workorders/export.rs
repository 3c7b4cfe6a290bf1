//! A list of work orders as a spreadsheet (issue 20 item 8): .xlsx (rust_xlsxwriter) with a
//! frozen header row, set column widths and times as real Excel dates, or CSV with a UTF-8
//! byte-order mark so that Excel opens Chinese text as Chinese. The words (headers, states,
//! types) come from the caller, in the caller's language; times are written in the site's local
//! time (UTC + the roster's offset), as the crews read their clocks. Pure: orders in, bytes out.

use super::model::WorkOrder;
use cistern_schemas::Timestamp;

/// Why a sheet could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("csv: {0}")]
    CsvFlush(String),
}

/// The words of a sheet, in one language.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    /// One per [`COLUMNS`] entry, in order.
    pub headers: Vec<String>,
    /// An order's state or type id → its word (the id itself when missing).
    pub words: std::collections::HashMap<String, String>,
    /// The cell of an overdue order.
    pub overdue: String,
    /// Chinese titles (`title_zh`) rather than English ones.
    pub chinese: bool,
    /// Local time = UTC + this many minutes.
    pub offset_minutes: i64,
}

/// The columns, as catalogue keys under `orders.` (`col_<name>`).
pub const COLUMNS: &[&str] = &[
    "id",
    "priority",
    "type",
    "state",
    "title",
    "room",
    "zone",
    "team",
    "assignee",
    "created",
    "response_due",
    "resolution_due",
    "overdue",
];

/// Column widths in characters (as Excel counts them), one per column.
const WIDTHS: &[f64] = &[
    12.0, 8.0, 12.0, 12.0, 40.0, 11.0, 11.0, 12.0, 12.0, 17.0, 17.0, 17.0, 9.0,
];

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Time(Timestamp),
}

/// An order's row: one cell per [`COLUMNS`] entry.
pub fn row(o: &WorkOrder, overdue: bool, labels: &Labels) -> Vec<Cell> {
    let word = |id: &str| {
        labels
            .words
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    };
    let text = |s: &str| Cell::Text(s.to_owned());
    let title = if labels.chinese && !o.title_zh.is_empty() {
        &o.title_zh
    } else {
        &o.title
    };
    vec![
        text(o.id.as_str()),
        text(o.priority.as_str()),
        Cell::Text(word(o.kind.as_str())),
        Cell::Text(word(o.state.as_str())),
        text(title),
        text(o.room.as_ref().map(|r| r.as_str()).unwrap_or_default()),
        text(o.zone.as_ref().map(|z| z.as_str()).unwrap_or_default()),
        text(o.team.as_deref().unwrap_or_default()),
        text(o.assignee.as_deref().unwrap_or_default()),
        Cell::Time(o.created_at),
        Cell::Time(o.response_due),
        Cell::Time(o.resolution_due),
        Cell::Text(if overdue {
            labels.overdue.clone()
        } else {
            String::new()
        }),
    ]
}

/// Excel's serial date (days since 1899-12-30) of `t` in local time.
fn serial(t: Timestamp, offset_minutes: i64) -> f64 {
    (t.as_millis() + offset_minutes * 60_000) as f64 / 86_400_000.0 + 25_569.0
}

/// `t` in local time as `YYYY-MM-DD HH:MM:SS`.
pub fn local_text(t: Timestamp, offset_minutes: i64) -> String {
    let ms = t.as_millis() + offset_minutes * 60_000;
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replacen('T', " ", 1)
        .trim_end_matches('Z')
        .to_owned()
}

/// The rows as an .xlsx workbook of one sheet named `sheet`.
pub fn xlsx(rows: &[Vec<Cell>], labels: &Labels, sheet: &str) -> Result<Vec<u8>, ExportError> {
    use rust_xlsxwriter::{Format, FormatBorder, Workbook};
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name(sheet)?;
    let head = Format::new()
        .set_bold()
        .set_border_bottom(FormatBorder::Thin);
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm");
    for (c, h) in labels.headers.iter().enumerate() {
        let c = c as u16;
        ws.write_string_with_format(0, c, h, &head)?;
        ws.set_column_width(c, WIDTHS.get(usize::from(c)).copied().unwrap_or(12.0))?;
    }
    ws.set_freeze_panes(1, 0)?;
    for (r, cells) in rows.iter().enumerate() {
        let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
        for (c, cell) in cells.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Text(s) if s.is_empty() => {}
                Cell::Text(s) => {
                    ws.write_string(r, c, s)?;
                }
                Cell::Time(t) => {
                    ws.write_number_with_format(r, c, serial(*t, labels.offset_minutes), &date)?;
                }
            }
        }
    }
    if !rows.is_empty() {
        ws.autofilter(0, 0, rows.len() as u32, (COLUMNS.len() - 1) as u16)?;
    }
    Ok(book.save_to_buffer()?)
}

/// The rows as CSV (UTF-8 with a byte-order mark, CRLF line ends, quoted where needed).
pub fn csv(rows: &[Vec<Cell>], labels: &Labels) -> Result<Vec<u8>, ExportError> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    out.write_record(&labels.headers)?;
    for cells in rows {
        out.write_record(cells.iter().map(|c| match c {
            Cell::Text(s) => s.clone(),
            Cell::Time(t) => local_text(*t, labels.offset_minutes),
        }))?;
    }
    out.into_inner()
        .map_err(|e| ExportError::CsvFlush(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_and_excel_serials() {
        // 2026-12-07 01:30 UTC is 09:30 in Beijing.
        let t = Timestamp(1_796_607_000_000);
        assert_eq!(local_text(t, 480), "2026-12-07 09:30:00");
        assert_eq!(local_text(t, 0), "2026-12-07 01:30:00");
        // 1970-01-01 is Excel's day 25569; noon is half a day on.
        assert_eq!(serial(Timestamp(43_200_000), 0), 25_569.5);
    }

    #[test]
    fn csv_has_a_bom_and_quotes_what_needs_it() {
        let labels = Labels {
            headers: vec!["编号".into(), "标题".into()],
            ..Labels::default()
        };
        let rows = vec![vec![
            Cell::Text("WO-1".into()),
            Cell::Text("泵房 \"A\", 2号泵".into()),
        ]];
        let bytes = csv(&rows, &labels).unwrap();
        assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF]);
        let text = std::str::from_utf8(&bytes[3..]).unwrap();
        assert_eq!(text, "编号,标题\r\nWO-1,\"泵房 \"\"A\"\", 2号泵\"\r\n");
    }
}
