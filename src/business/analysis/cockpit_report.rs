//! The cockpit's daily and monthly reports as .xlsx (issue 22 item 6): a sheet of the fleet
//! and its zones and a sheet of the rooms, one column per indicator of the catalogue, shares
//! as percentages and every figure a real number (Excel sums and charts them). Words come from
//! the caller, in the caller's language. Pure: a snapshot in, bytes out.

use super::cockpit::{Scope, Snapshot, CATALOGUE};
use rust_xlsxwriter::{Format, FormatBorder, Workbook, Worksheet, XlsxError};

/// The report's words, in one language.
#[derive(Clone, Debug, Default)]
pub struct Words {
    pub title: String,
    pub fleet: String,
    pub zones: String,
    pub rooms: String,
    pub zone: String,
    pub room: String,
    pub name: String,
    /// One per [`CATALOGUE`] entry, in order (with the unit added here).
    pub indicators: Vec<String>,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("xlsx: {0}")]
    Xlsx(#[from] XlsxError),
}

fn header(ws: &mut Worksheet, row: u32, first: &[&str], words: &Words) -> Result<(), XlsxError> {
    let head = Format::new()
        .set_bold()
        .set_border_bottom(FormatBorder::Thin);
    let mut c = 0u16;
    for h in first {
        ws.write_string_with_format(row, c, *h, &head)?;
        ws.set_column_width(c, 14.0)?;
        c += 1;
    }
    for (i, spec) in CATALOGUE.iter().enumerate() {
        let name = words.indicators.get(i).cloned().unwrap_or_default();
        let unit = if spec.unit.is_empty() {
            String::new()
        } else {
            format!(" ({})", spec.unit)
        };
        ws.write_string_with_format(row, c, format!("{name}{unit}"), &head)?;
        ws.set_column_width(c, 14.0)?;
        c += 1;
    }
    Ok(())
}

fn values(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    s: &Snapshot,
    scope: &Scope,
) -> Result<(), XlsxError> {
    for (i, spec) in CATALOGUE.iter().enumerate() {
        let c = col + i as u16;
        if let Ok(Some(v)) = s.value(spec.id, scope) {
            let (v, fmt) = if spec.percent {
                let f =
                    Format::new().set_num_format(if spec.decimals >= 2 { "0.00%" } else { "0.0%" });
                (v, f)
            } else {
                let f = Format::new().set_num_format(match spec.decimals {
                    0 => "0",
                    1 => "0.0",
                    2 => "0.00",
                    _ => "0.000",
                });
                (v, f)
            };
            ws.write_number_with_format(row, c, v, &fmt)?;
        }
    }
    Ok(())
}

/// The report of `snapshot`.
pub fn xlsx(snapshot: &Snapshot, words: &Words) -> Result<Vec<u8>, ReportError> {
    let mut book = Workbook::new();
    let title = Format::new().set_bold().set_font_size(14);
    {
        let ws = book.add_worksheet();
        ws.set_name(sheet_name(&words.zones))?;
        ws.write_string_with_format(0, 0, &words.title, &title)?;
        header(ws, 2, &[&words.zone, &words.name], words)?;
        ws.set_freeze_panes(3, 2)?;
        ws.write_string(3, 0, "")?;
        ws.write_string(3, 1, &words.fleet)?;
        values(ws, 3, 2, snapshot, &Scope::Fleet)?;
        let mut zones: Vec<_> = snapshot.rooms.iter().map(|r| r.zone.clone()).collect();
        zones.extend(snapshot.zone_names.keys().cloned());
        zones.sort();
        zones.dedup();
        for (i, z) in zones.iter().enumerate() {
            let r = 4 + i as u32;
            ws.write_string(r, 0, z.as_str())?;
            ws.write_string(
                r,
                1,
                snapshot
                    .zone_names
                    .get(z)
                    .map_or(z.as_str(), |n| n.as_str()),
            )?;
            values(ws, r, 2, snapshot, &Scope::Zone { zone: z.clone() })?;
        }
    }
    {
        let ws = book.add_worksheet();
        ws.set_name(sheet_name(&words.rooms))?;
        ws.write_string_with_format(0, 0, &words.title, &title)?;
        header(ws, 2, &[&words.zone, &words.room, &words.name], words)?;
        ws.set_freeze_panes(3, 3)?;
        ws.set_column_width(2, 24.0)?;
        let mut rooms: Vec<_> = snapshot.rooms.iter().collect();
        rooms.sort_by(|a, b| (&a.zone, &a.room).cmp(&(&b.zone, &b.room)));
        for (i, e) in rooms.iter().enumerate() {
            let r = 3 + i as u32;
            ws.write_string(r, 0, e.zone.as_str())?;
            ws.write_string(r, 1, e.room.as_str())?;
            ws.write_string(r, 2, &e.name)?;
            values(
                ws,
                r,
                3,
                snapshot,
                &Scope::Room {
                    room: e.room.clone(),
                },
            )?;
        }
        if !rooms.is_empty() {
            ws.autofilter(2, 0, 2 + rooms.len() as u32, 2 + CATALOGUE.len() as u16)?;
        }
    }
    Ok(book.save_to_buffer()?)
}

/// A sheet name Excel accepts (≤ 31 characters, none of `[]:*?/\`).
fn sheet_name(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
        .take(31)
        .collect();
    if clean.is_empty() {
        "sheet".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::analysis::cockpit::{Acc, IndicatorId, RoomEntry, RoomFigures};
    use cistern_schemas::{RoomId, ZoneId};

    #[test]
    fn a_report_is_an_xlsx_with_both_sheets() {
        let mut f = RoomFigures::default();
        f.set(IndicatorId::Availability, Acc::of(0.99, 1.0));
        let snap = Snapshot {
            rooms: vec![RoomEntry {
                room: RoomId::new("XM-0001").unwrap(),
                zone: ZoneId::new("siming").unwrap(),
                name: "金山花园泵房".into(),
                figures: f,
            }],
            ..Snapshot::default()
        };
        let words = Words {
            title: "日报 2026-03-01".into(),
            zones: "区域/片区".into(),
            rooms: "泵房".into(),
            ..Words::default()
        };
        let bytes = xlsx(&snap, &words).unwrap();
        assert_eq!(&bytes[..2], b"PK");
        assert_eq!(sheet_name("区域/片区"), "区域片区");
        assert_eq!(sheet_name("[]"), "sheet");
    }
}
