//! The archive as a spreadsheet (issue 21, item 2): one template — a projects, a rooms and an
//! equipment sheet — read from .xlsx (calamine) or CSV and written to .xlsx (rust_xlsxwriter)
//! or CSV, so a utility can load two thousand rooms in one go and take them back out.
//!
//! Reading never trusts the file: a workbook that is not one, a missing sheet or column, a
//! merged cell, a formula, a number where a date belongs, a duplicate row, a room no sheet and
//! no archive knows — each is reported by sheet, row and column (the row and column a user sees
//! in Excel), with a stable code worded in the user's language by the console's catalogues
//! (`asset.<code>`, the archive's own words for its problems); headers are read in either language or as the column keys of the
//! template's second row. Nothing here writes: [`parse`] turns the sheets into archive records
//! and remembers where each field came from, so that what the archive's validation finds later
//! ([`locate`]) points at a cell too.
//!
//! Fields the template does not carry (documents, photos, the retired history) are the stored
//! archive's: the archive's batch keeps them ([`super::service::merge`]).

use super::model::{
    Contact, Equipment, EquipmentKind, Nameplate, Problem, Project, RoomArchive, Site,
};
use cistern_schemas::inventory::{PointOverride, SourceSpec, TankSpec};
use cistern_schemas::{Date, DeviceUnit, EquipmentTag, ProjectId, RoomId, ZoneId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The most rows a sheet may hold (the header rows included).
pub const MAX_ROWS: usize = 200_000;

/// The most problems a report lists; the rest are counted.
pub const MAX_PROBLEMS: usize = 1_000;

/// The template's three sheets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SheetKind {
    Projects,
    Rooms,
    Equipment,
}

impl SheetKind {
    pub const ALL: [SheetKind; 3] = [SheetKind::Projects, SheetKind::Rooms, SheetKind::Equipment];

    /// The sheet's key (its English name, and its catalogue key `assets.sheet_<key>`).
    pub fn key(self) -> &'static str {
        match self {
            SheetKind::Projects => "projects",
            SheetKind::Rooms => "rooms",
            SheetKind::Equipment => "equipment",
        }
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            SheetKind::Projects => PROJECT_COLUMNS,
            SheetKind::Rooms => ROOM_COLUMNS,
            SheetKind::Equipment => EQUIPMENT_COLUMNS,
        }
    }

    /// The column every row must fill (the row's identity).
    fn id_column(self) -> &'static str {
        match self {
            SheetKind::Projects => "project_id",
            SheetKind::Rooms | SheetKind::Equipment => "room_id",
        }
    }
}

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Number,
    Integer,
    Date,
}

/// A column of the template: its key (row 2 of the template, and the catalogue's
/// `assets.col_<key>` for its heading) and what it holds.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub key: &'static str,
    pub ty: ColumnType,
    pub required: bool,
}

const fn col(key: &'static str, ty: ColumnType, required: bool) -> Column {
    Column { key, ty, required }
}

use ColumnType::{Date as D, Integer as I, Number as N, Text as T};

pub const PROJECT_COLUMNS: &[Column] = &[
    col("project_id", T, true),
    col("name", T, true),
    col("address", T, false),
    col("developer", T, false),
    col("property_manager", T, false),
    col("households", I, false),
    col("contact_name", T, false),
    col("contact_company", T, false),
    col("contact_phone", T, false),
    col("contact_email", T, false),
];

pub const ROOM_COLUMNS: &[Column] = &[
    col("room_id", T, true),
    col("name", T, true),
    col("name_pinyin", T, false),
    col("address", T, false),
    col("address_pinyin", T, false),
    col("project_id", T, false),
    col("zone", T, true),
    col("lat", N, true),
    col("lon", N, true),
    col("carrier", T, false),
    col("households", I, true),
    col("outlet_setpoint_mpa", N, true),
    col("commissioned", D, false),
    col("source", T, false),
    col("modbus_address", T, false),
    col("modbus_unit_id", I, false),
    col("modbus_profile", T, false),
    col("point_overrides", T, false),
];

pub const EQUIPMENT_COLUMNS: &[Column] = &[
    col("room_id", T, true),
    col("tag", T, true),
    col("kind", T, true),
    col("device", T, false),
    col("set", T, false),
    col("name", T, false),
    col("vendor", T, false),
    col("model", T, false),
    col("serial", T, false),
    col("part_number", T, false),
    col("installed", D, false),
    col("commissioned", D, false),
    col("warranty_end", D, false),
    col("rated_flow_m3h", N, false),
    col("rated_head_m", N, false),
    col("shutoff_head_m", N, false),
    col("rated_power_kw", N, false),
    col("rated_speed_rpm", N, false),
    col("efficiency", N, false),
    col("curve_hq", T, false),
    col("curve_eta_q", T, false),
    col("tank_area_m2", N, false),
    col("tank_height_m", N, false),
    col("tank_overflow_m", N, false),
    col("tank_hard_min_m", N, false),
    col("tank_fire_reserve_m", N, false),
    col("tank_refill_on_m", N, false),
    col("tank_refill_off_m", N, false),
    col("tank_inlet_capacity_m3h", N, false),
    col("supplier_name", T, false),
    col("supplier_company", T, false),
    col("supplier_phone", T, false),
    col("supplier_email", T, false),
    col("notes", T, false),
];

/// A language of the sheets' words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    ZhCn,
    En,
}

/// Where the sheets' words come from (the console's catalogues, one source of words): the text
/// of a catalogue key (`assets.col_room_id`) in a language, if it has one.
pub trait Words: Send + Sync {
    fn text(&self, lang: Lang, key: &str) -> Option<String>;
}

fn word(words: &dyn Words, lang: Lang, key: &str) -> String {
    words
        .text(lang, key)
        .unwrap_or_else(|| key.rsplit('.').next().unwrap_or(key).to_owned())
}

/// A sheet's name in a language (`泵房`, `rooms`).
pub fn sheet_name(words: &dyn Words, lang: Lang, kind: SheetKind) -> String {
    word(words, lang, &format!("assets.sheet_{}", kind.key()))
}

/// Why a file is refused as a whole (nothing of it is read further).
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SheetError {
    #[error("the file is not an .xlsx workbook or a CSV file: {detail}")]
    NotSpreadsheet { detail: String },
    #[error("the workbook has no {sheet} sheet")]
    MissingSheet { sheet: SheetKind },
    #[error("sheet {sheet}: no header row naming its columns in the first five rows")]
    NoHeader { sheet: SheetKind },
    #[error("sheet {sheet}: column {column} is missing")]
    MissingColumn { sheet: SheetKind, column: String },
    #[error("sheet {sheet}: at least {rows} rows, more than the {max} a sheet may hold")]
    TooManyRows {
        sheet: SheetKind,
        rows: usize,
        max: usize,
    },
    #[error("a CSV file's header names none of the template's sheets")]
    UnknownCsv,
    #[error("the template cannot be written: {0}")]
    Write(String),
}

impl std::fmt::Display for SheetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// One cell's value as read.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Date(Date),
    /// A formula, an error value (`#REF!`) or a boolean: refused where a value belongs.
    Other(String),
}

/// A sheet as read: its kind, the column of each template column (by key), and the data rows
/// with their 1-based row numbers as Excel shows them.
#[derive(Clone, Debug)]
pub struct RawSheet {
    pub kind: SheetKind,
    /// Template column key → the sheet's column index.
    columns: HashMap<&'static str, usize>,
    rows: Vec<(u32, Vec<Cell>)>,
    /// Headings no template column has (ignored, reported as a notice).
    pub unknown_columns: Vec<String>,
    /// Merged regions over data rows, as `A3:A5` (refused cell by cell).
    merged: Vec<(u32, u32, u32, u32)>,
}

/// One problem found in the file, where a user finds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportProblem {
    pub sheet: SheetKind,
    /// The row as Excel numbers it (1-based), 0 when the problem is the sheet's.
    pub row: u32,
    /// The column's letter (`C`), empty when the problem is the row's.
    pub column: String,
    /// The template column's key (`serial`), empty when the problem is the row's.
    pub field: String,
    /// `asset.<code>` in the catalogues (the archive's problem codes, and the file's own).
    pub code: String,
    pub value: String,
    /// The problem in the requested language (filled by [`word_problems`]).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The column letter of a 0-based index (`A`, `Z`, `AA`).
pub fn column_letter(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

fn normalise(s: &str) -> String {
    s.trim().to_lowercase()
}

/// How a heading is recognised: its key, or its catalogue heading in either language.
fn heading_index(kind: SheetKind, words: &dyn Words) -> HashMap<String, &'static str> {
    let mut index = HashMap::new();
    for c in kind.columns() {
        index.insert(c.key.to_owned(), c.key);
        for lang in [Lang::ZhCn, Lang::En] {
            if let Some(text) = words.text(lang, &format!("assets.col_{}", c.key)) {
                index.entry(normalise(&text)).or_insert(c.key);
            }
        }
    }
    index
}

fn cell_text(c: &Cell) -> Option<String> {
    match c {
        Cell::Text(s) => Some(s.clone()),
        _ => None,
    }
}

/// Turns a grid (header rows first) into a sheet of `kind`.
fn raw_sheet(
    kind: SheetKind,
    grid: Vec<(u32, Vec<Cell>)>,
    merged: Vec<(u32, u32, u32, u32)>,
    words: &dyn Words,
) -> Result<RawSheet, SheetError> {
    if grid.len() > MAX_ROWS {
        return Err(SheetError::TooManyRows {
            sheet: kind,
            rows: grid.len(),
            max: MAX_ROWS,
        });
    }
    let index = heading_index(kind, words);
    let headed = |cells: &[Cell]| -> Option<(HashMap<&'static str, usize>, Vec<String>)> {
        let mut columns = HashMap::new();
        let mut unknown = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            let Some(text) = cell_text(c) else { continue };
            if text.trim().is_empty() {
                continue;
            }
            match index.get(&normalise(&text)) {
                Some(key) => {
                    columns.entry(*key).or_insert(i);
                }
                None => unknown.push(text),
            }
        }
        (columns.contains_key(kind.id_column()) && columns.len() >= 2).then_some((columns, unknown))
    };
    let mut header = None;
    for (pos, (_, cells)) in grid.iter().enumerate().take(5) {
        if let Some(h) = headed(cells) {
            header = Some((pos, h));
            break;
        }
    }
    let Some((mut pos, (columns, unknown))) = header else {
        return Err(SheetError::NoHeader { sheet: kind });
    };
    // The template's two heading rows (words, then keys): skip the second too.
    if grid
        .get(pos + 1)
        .is_some_and(|(_, cells)| headed(cells).is_some())
    {
        pos += 1;
    }
    for c in kind.columns().iter().filter(|c| c.required) {
        if !columns.contains_key(c.key) {
            return Err(SheetError::MissingColumn {
                sheet: kind,
                column: c.key.to_owned(),
            });
        }
    }
    let first_data = grid.get(pos + 1).map_or(u32::MAX, |(r, _)| *r);
    Ok(RawSheet {
        kind,
        columns,
        rows: grid.into_iter().skip(pos + 1).collect(),
        unknown_columns: unknown,
        merged: merged
            .into_iter()
            .filter(|(_, _, r1, _)| *r1 >= first_data)
            .collect(),
    })
}

/// Reads the template's sheets from an .xlsx workbook. Every sheet must be there (an empty one
/// holds only its headings); sheets are recognised by name in either language.
pub fn read_xlsx(bytes: &[u8], words: &dyn Words) -> Result<Vec<RawSheet>, SheetError> {
    use calamine::{Data, Reader, Xlsx};
    let not = |e: &dyn std::fmt::Display| SheetError::NotSpreadsheet {
        detail: e.to_string(),
    };
    let mut book = Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| not(&e))?;
    let names = book.sheet_names();
    let mut found = Vec::new();
    for kind in SheetKind::ALL {
        let wanted: Vec<String> = [Lang::ZhCn, Lang::En]
            .iter()
            .map(|l| normalise(&sheet_name(words, *l, kind)))
            .chain([kind.key().to_owned()])
            .collect();
        let Some(name) = names
            .iter()
            .find(|n| wanted.contains(&normalise(n)))
            .cloned()
        else {
            return Err(SheetError::MissingSheet { sheet: kind });
        };
        found.push((kind, name));
    }
    let mut out = Vec::new();
    for (kind, name) in found {
        let range = book.worksheet_range(&name).map_err(|e| not(&e))?;
        let formulas = book.worksheet_formula(&name).map_err(|e| not(&e))?;
        let merged = book
            .merge_cells_by_sheet_name(&name)
            .map_err(|e| not(&e))?
            .into_iter()
            .map(|d| (d.start.0 + 1, d.start.1, d.end.0 + 1, d.end.1))
            .collect();
        let (r0, c0) = range.start().unwrap_or((0, 0));
        let height = range.height();
        if height > MAX_ROWS {
            return Err(SheetError::TooManyRows {
                sheet: kind,
                rows: height,
                max: MAX_ROWS,
            });
        }
        let mut grid = Vec::with_capacity(height);
        for (i, row) in range.rows().enumerate() {
            let r = r0 + i as u32;
            let mut cells = vec![Cell::Empty; c0 as usize];
            for (j, d) in row.iter().enumerate() {
                let c = c0 + j as u32;
                let formula = formulas
                    .get_value((r, c))
                    .filter(|f| !f.is_empty())
                    .map(|f| format!("={f}"));
                cells.push(match (formula, d) {
                    (Some(f), _) => Cell::Other(f),
                    (None, Data::Empty) => Cell::Empty,
                    (None, Data::String(s)) => {
                        if s.trim().is_empty() {
                            Cell::Empty
                        } else {
                            Cell::Text(s.clone())
                        }
                    }
                    (None, Data::Float(f)) => Cell::Number(*f),
                    (None, Data::Int(i)) => Cell::Number(*i as f64),
                    (None, Data::DateTime(dt)) => excel_date(dt.as_f64())
                        .map_or_else(|| Cell::Other(dt.as_f64().to_string()), Cell::Date),
                    (None, Data::DateTimeIso(s)) => s
                        .get(..10)
                        .and_then(|d| d.parse().ok())
                        .map_or_else(|| Cell::Other(s.clone()), Cell::Date),
                    (None, Data::Bool(b)) => Cell::Other(b.to_string()),
                    (None, other) => Cell::Other(other.to_string()),
                });
            }
            grid.push((r + 1, cells));
        }
        out.push(raw_sheet(kind, grid, merged, words)?);
    }
    Ok(out)
}

/// The day of an Excel serial date (days since 1899-12-30; the time of day is dropped).
fn excel_date(serial: f64) -> Option<Date> {
    (serial.is_finite() && (1.0..2_958_466.0).contains(&serial))
        .then(|| Date::from_days(serial.floor() as i32 - 25_569))
}

/// Reads one sheet from a CSV file (UTF-8, a byte-order mark allowed), recognised by its
/// headings: an equipment sheet names `tag`, a rooms sheet `room_id`, a projects sheet only
/// `project_id`.
pub fn read_csv(bytes: &[u8], words: &dyn Words) -> Result<RawSheet, SheetError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SheetError::NotSpreadsheet {
        detail: format!("not UTF-8 text: {e}"),
    })?;
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut grid = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| SheetError::NotSpreadsheet {
            detail: e.to_string(),
        })?;
        // One past the limit is enough to refuse it (by its sheet, once its headings say which).
        if grid.len() > MAX_ROWS {
            break;
        }
        let cells: Vec<Cell> = record
            .iter()
            .map(|s| {
                if s.trim().is_empty() {
                    Cell::Empty
                } else if s.starts_with('=') {
                    Cell::Other(s.to_owned())
                } else {
                    Cell::Text(s.to_owned())
                }
            })
            .collect();
        grid.push((i as u32 + 1, cells));
    }
    // Which sheet: the first that finds its header.
    for kind in [SheetKind::Equipment, SheetKind::Rooms, SheetKind::Projects] {
        let index = heading_index(kind, words);
        let keys: HashSet<&str> = grid
            .iter()
            .take(5)
            .flat_map(|(_, cells): &(u32, Vec<Cell>)| cells.iter().filter_map(cell_text))
            .filter_map(|t| index.get(&normalise(&t)).copied())
            .collect();
        let marker = match kind {
            SheetKind::Equipment => keys.contains("tag"),
            SheetKind::Rooms => keys.contains("room_id") && keys.contains("lat"),
            SheetKind::Projects => keys.contains("project_id") && !keys.contains("room_id"),
        };
        if marker {
            return raw_sheet(kind, grid, Vec::new(), words);
        }
    }
    Err(SheetError::UnknownCsv)
}

/// Where each field of a parsed room came from.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// A project → its row.
    projects: HashMap<ProjectId, u32>,
    /// A room → its rooms-sheet row (none when only its equipment was in the file).
    rooms: HashMap<RoomId, u32>,
    /// A room → the equipment-sheet row of each of its equipment, in order (none for
    /// equipment kept from the archive).
    equipment: HashMap<RoomId, Vec<Option<u32>>>,
    /// Sheet → template key → column index, for letters.
    columns: HashMap<SheetKind, HashMap<&'static str, usize>>,
}

/// What a file holds, as archive records: the projects and the rooms it names (a room named
/// only by equipment rows is the stored room with that equipment).
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub projects: Vec<Project>,
    pub rooms: Vec<RoomArchive>,
    pub provenance: Provenance,
    /// Headings ignored, per sheet.
    pub unknown_columns: Vec<(SheetKind, String)>,
    /// Data rows read, per sheet.
    pub rows: BTreeMap<SheetKind, usize>,
}

/// Reads one row's cells by column key, collecting its problems.
struct RowReader<'a> {
    sheet: &'a RawSheet,
    row: u32,
    cells: &'a [Cell],
    problems: &'a mut Vec<ImportProblem>,
}

impl RowReader<'_> {
    /// Records a problem of a cell; one per cell (the first found).
    fn problem(&mut self, key: &str, code: &str, value: impl std::fmt::Display) {
        let (sheet, row) = (self.sheet.kind, self.row);
        if (self.problems.iter().rev())
            .take_while(|p| p.sheet == sheet && p.row == row)
            .any(|p| p.field == key)
        {
            return;
        }
        let column = self
            .sheet
            .columns
            .get(key)
            .map(|c| column_letter(*c))
            .unwrap_or_default();
        self.problems.push(ImportProblem {
            sheet: self.sheet.kind,
            row: self.row,
            column,
            field: key.to_owned(),
            code: code.to_owned(),
            value: value.to_string(),
            message: String::new(),
        });
    }

    fn cell(&mut self, key: &str) -> Option<&Cell> {
        let i = *self.sheet.columns.get(key)?;
        let col = i as u32;
        if self
            .sheet
            .merged
            .iter()
            .any(|(r0, c0, r1, c1)| (*r0..=*r1).contains(&self.row) && (*c0..=*c1).contains(&col))
        {
            self.problem(key, "merged", "");
            return None;
        }
        match self.cells.get(i) {
            None | Some(Cell::Empty) => None,
            Some(Cell::Other(v)) => {
                let v = v.clone();
                let code = if v.starts_with('=') {
                    "formula"
                } else {
                    "type_value"
                };
                self.problem(key, code, v);
                None
            }
            Some(c) => Some(c),
        }
    }

    /// Text; a whole number typed as a number reads as its digits (a serial, a phone).
    fn text(&mut self, key: &str) -> String {
        match self.cell(key).cloned() {
            None => String::new(),
            Some(Cell::Text(s)) => s.trim().to_owned(),
            Some(Cell::Number(n)) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", n as i64),
            Some(Cell::Number(n)) => n.to_string(),
            Some(Cell::Date(d)) => d.to_string(),
            Some(Cell::Empty | Cell::Other(_)) => String::new(),
        }
    }

    fn required_text(&mut self, key: &str) -> Option<String> {
        let s = self.text(key);
        if s.is_empty() {
            self.problem(key, "required", "");
            return None;
        }
        Some(s)
    }

    fn number(&mut self, key: &str) -> Option<f64> {
        match self.cell(key).cloned() {
            None => None,
            Some(Cell::Number(n)) if n.is_finite() => Some(n),
            Some(Cell::Text(s)) => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Some(n),
                _ => {
                    self.problem(key, "type_number", s);
                    None
                }
            },
            Some(other) => {
                self.problem(key, "type_number", shown(&other));
                None
            }
        }
    }

    fn integer(&mut self, key: &str) -> Option<u32> {
        let n = self.number(key)?;
        if n.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&n) {
            self.problem(key, "type_integer", n);
            return None;
        }
        Some(n as u32)
    }

    fn date(&mut self, key: &str) -> Option<Date> {
        match self.cell(key).cloned() {
            None => None,
            Some(Cell::Date(d)) => Some(d),
            Some(Cell::Text(s)) => match parse_date(&s) {
                Some(d) => Some(d),
                None => {
                    self.problem(key, "type_date", s);
                    None
                }
            },
            Some(other) => {
                self.problem(key, "type_date", shown(&other));
                None
            }
        }
    }

    fn id<T>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, cistern_schemas::IdError>,
    ) -> Option<T> {
        let s = self.text(key);
        if s.is_empty() {
            return None;
        }
        match parse(&s) {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(key, "id", s);
                None
            }
        }
    }
}

fn shown(c: &Cell) -> String {
    match c {
        Cell::Empty => String::new(),
        Cell::Text(s) | Cell::Other(s) => s.clone(),
        Cell::Number(n) => n.to_string(),
        Cell::Date(d) => d.to_string(),
    }
}

/// `2024-05-01`, `2024/5/1` or `2024.5.1`.
fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    if let Ok(d) = s.parse() {
        return Some(d);
    }
    let mut parts = s.split(['/', '.', '-']);
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1000..=9999).contains(&y) {
        return None;
    }
    Date::ymd(y, m, d)
}

/// `0:52; 10:50; 20:45` — (flow, value) points.
fn parse_curve(s: &str) -> Option<Vec<[f64; 2]>> {
    s.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (q, v) = p.split_once(':')?;
            let (q, v): (f64, f64) = (q.trim().parse().ok()?, v.trim().parse().ok()?);
            (q.is_finite() && v.is_finite()).then_some([q, v])
        })
        .collect()
}

fn format_curve(c: &[[f64; 2]]) -> String {
    c.iter()
        .map(|[q, v]| format!("{q}:{v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `outlet_pressure: 0.1..1.2, 2s; P1.frequency: 0..50` — a room's point overrides.
fn parse_overrides(s: &str) -> Option<BTreeMap<String, PointOverride>> {
    let mut out = BTreeMap::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (point, spec) = part.split_once(':')?;
        let mut o = PointOverride {
            range: None,
            period: None,
        };
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if let Some((lo, hi)) = item.split_once("..") {
                o.range = Some([lo.trim().parse().ok()?, hi.trim().parse().ok()?]);
            } else {
                o.period = Some(humantime::parse_duration(item).ok()?);
            }
        }
        out.insert(point.trim().to_owned(), o);
    }
    Some(out)
}

fn format_overrides(points: &BTreeMap<String, PointOverride>) -> String {
    points
        .iter()
        .map(|(k, o)| {
            let mut items = Vec::new();
            if let Some([lo, hi]) = o.range {
                items.push(format!("{lo}..{hi}"));
            }
            if let Some(p) = o.period {
                items.push(humantime::format_duration(p).to_string());
            }
            format!("{k}: {}", items.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Contacts from the four contact columns (several separated by `;`, aligned).
fn contacts(name: &str, company: &str, phone: &str, email: &str) -> Vec<Contact> {
    let split = |s: &str| {
        s.split(';')
            .map(|p| p.trim().to_owned())
            .collect::<Vec<_>>()
    };
    let (n, c, p, e) = (split(name), split(company), split(phone), split(email));
    let len = n.len().max(c.len()).max(p.len()).max(e.len());
    (0..len)
        .map(|i| Contact {
            name: n.get(i).cloned().unwrap_or_default(),
            company: c.get(i).cloned().unwrap_or_default(),
            phone: p.get(i).cloned().unwrap_or_default(),
            email: e.get(i).cloned().unwrap_or_default(),
        })
        .filter(|c| !c.is_empty())
        .collect()
}

fn contact_columns(list: &[Contact]) -> [String; 4] {
    let join = |f: fn(&Contact) -> &str| list.iter().map(f).collect::<Vec<_>>().join("; ");
    [
        join(|c| &c.name),
        join(|c| &c.company),
        join(|c| &c.phone),
        join(|c| &c.email),
    ]
}

/// The archive records a file's sheets describe, or every problem found reading them.
/// `stored` answers a room the archive already holds (a room named only by equipment rows, and
/// the fields the template does not carry).
pub fn parse(
    sheets: &[RawSheet],
    stored: &dyn Fn(&RoomId) -> Option<RoomArchive>,
) -> Result<Parsed, Vec<ImportProblem>> {
    let mut problems = Vec::new();
    let mut parsed = Parsed::default();
    for s in sheets {
        parsed.provenance.columns.insert(s.kind, s.columns.clone());
        parsed.rows.insert(s.kind, 0);
        for u in &s.unknown_columns {
            parsed.unknown_columns.push((s.kind, u.clone()));
        }
    }
    let sheet = |kind| sheets.iter().find(|s| s.kind == kind);
    let nonempty = |cells: &[Cell]| cells.iter().any(|c| *c != Cell::Empty);

    if let Some(s) = sheet(SheetKind::Projects) {
        for (row, cells) in s.rows.iter().filter(|(_, c)| nonempty(c)) {
            *parsed.rows.entry(s.kind).or_default() += 1;
            let mut r = RowReader {
                sheet: s,
                row: *row,
                cells,
                problems: &mut problems,
            };
            let id = r.id("project_id", ProjectId::new);
            if id.is_none() && r.text("project_id").is_empty() {
                r.problem("project_id", "required", "");
            }
            let name = r.required_text("name");
            let p = Project {
                id: match id {
                    Some(id) => id,
                    None => continue,
                },
                name: name.unwrap_or_default(),
                address: r.text("address"),
                developer: r.text("developer"),
                property_manager: r.text("property_manager"),
                households: r.integer("households"),
                contacts: contacts(
                    &r.text("contact_name"),
                    &r.text("contact_company"),
                    &r.text("contact_phone"),
                    &r.text("contact_email"),
                ),
            };
            if parsed
                .provenance
                .projects
                .insert(p.id.clone(), *row)
                .is_some()
            {
                r.problem("project_id", "duplicate", &p.id);
                continue;
            }
            parsed.projects.push(p);
        }
    }

    let mut rooms: Vec<RoomArchive> = Vec::new();
    let mut room_at: HashMap<RoomId, usize> = HashMap::new();
    // Every room id the rooms sheet names, valid row or not (its equipment rows are not
    // "unknown": the room's own row is what is wrong).
    let mut named: HashSet<RoomId> = HashSet::new();
    if let Some(s) = sheet(SheetKind::Rooms) {
        for (row, cells) in s.rows.iter().filter(|(_, c)| nonempty(c)) {
            *parsed.rows.entry(s.kind).or_default() += 1;
            let mut r = RowReader {
                sheet: s,
                row: *row,
                cells,
                problems: &mut problems,
            };
            let id = r.id("room_id", RoomId::new);
            if let Some(id) = &id {
                if !named.insert(id.clone()) {
                    r.problem("room_id", "duplicate", id);
                    continue;
                }
            }
            let name = r.required_text("name");
            let zone = r.id("zone", ZoneId::new);
            if zone.is_none() && r.text("zone").is_empty() {
                r.problem("zone", "required", "");
            }
            let lat = r.number("lat");
            let lon = r.number("lon");
            for (key, v) in [("lat", lat), ("lon", lon)] {
                if v.is_none() && r.text(key).is_empty() {
                    r.problem(key, "required", "");
                }
            }
            let households = r.integer("households");
            let setpoint = r.number("outlet_setpoint_mpa");
            for (key, missing) in [
                ("households", households.is_none()),
                ("outlet_setpoint_mpa", setpoint.is_none()),
            ] {
                if missing && r.text(key).is_empty() {
                    r.problem(key, "required", "");
                }
            }
            let source = match r.text("source").to_lowercase().as_str() {
                "" | "mqtt" => Some(SourceSpec::Mqtt),
                "modbus" => {
                    let address = r.text("modbus_address");
                    let profile = r.text("modbus_profile");
                    if address.is_empty() {
                        r.problem("modbus_address", "required", "");
                    }
                    if profile.is_empty() {
                        r.problem("modbus_profile", "required", "");
                    }
                    let unit = r.integer("modbus_unit_id").unwrap_or(1);
                    if unit > 247 {
                        r.problem("modbus_unit_id", "range", unit);
                    }
                    Some(SourceSpec::Modbus {
                        address,
                        unit_id: unit.min(247) as u8,
                        profile,
                    })
                }
                other => {
                    r.problem("source", "source", other);
                    None
                }
            };
            let overrides = r.text("point_overrides");
            let points = match parse_overrides(&overrides) {
                Some(p) => p,
                None => {
                    r.problem("point_overrides", "overrides", &overrides);
                    BTreeMap::new()
                }
            };
            let project = r.id("project_id", ProjectId::new);
            let commissioned = r.date("commissioned");
            let carrier = Some(r.text("carrier")).filter(|c| !c.is_empty());
            let (name_pinyin, address, address_pinyin) = (
                r.text("name_pinyin"),
                r.text("address"),
                r.text("address_pinyin"),
            );
            let (
                Some(id),
                Some(name),
                Some(zone),
                Some(lat),
                Some(lon),
                Some(households),
                Some(setpoint),
                Some(source),
            ) = (id, name, zone, lat, lon, households, setpoint, source)
            else {
                continue;
            };
            let before = stored(&id);
            let archive = RoomArchive {
                site: Site {
                    id: id.clone(),
                    name,
                    name_pinyin,
                    address,
                    address_pinyin,
                    lat,
                    lon,
                    zone,
                    carrier,
                    households,
                    outlet_setpoint_mpa: setpoint,
                    source,
                    points,
                },
                project,
                commissioned,
                // The stored equipment stays unless the equipment sheet lists the room's.
                equipment: before
                    .as_ref()
                    .map(|b| b.equipment.clone())
                    .unwrap_or_default(),
                documents: Vec::new(),
                retired: Vec::new(),
            };
            parsed.provenance.rooms.insert(id.clone(), *row);
            room_at.insert(id, rooms.len());
            rooms.push(archive);
        }
    }

    if let Some(s) = sheet(SheetKind::Equipment) {
        let mut listed: HashMap<RoomId, Vec<(u32, Equipment)>> = HashMap::new();
        let mut order: Vec<RoomId> = Vec::new();
        let mut tags: HashSet<(RoomId, EquipmentTag)> = HashSet::new();
        let mut serials: HashMap<(String, String), u32> = HashMap::new();
        for (row, cells) in s.rows.iter().filter(|(_, c)| nonempty(c)) {
            *parsed.rows.entry(s.kind).or_default() += 1;
            let mut r = RowReader {
                sheet: s,
                row: *row,
                cells,
                problems: &mut problems,
            };
            let room = r.id("room_id", RoomId::new);
            let tag = r.id("tag", EquipmentTag::new);
            if tag.is_none() && r.text("tag").is_empty() {
                r.problem("tag", "required", "");
            }
            let kind_text = r.text("kind");
            let kind = EquipmentKind::parse(&kind_text.to_lowercase());
            if kind.is_none() {
                let code = if kind_text.is_empty() {
                    "required"
                } else {
                    "kind"
                };
                r.problem("kind", code, &kind_text);
            }
            let device_text = r.text("device");
            let device = if device_text.is_empty() {
                None
            } else {
                match device_text.parse::<DeviceUnit>() {
                    Ok(d) if d != DeviceUnit::Room => Some(d),
                    _ => {
                        r.problem("device", "device", &device_text);
                        None
                    }
                }
            };
            let set = r.id("set", EquipmentTag::new);
            let tank_fields = [
                "tank_area_m2",
                "tank_height_m",
                "tank_overflow_m",
                "tank_hard_min_m",
                "tank_fire_reserve_m",
                "tank_refill_on_m",
                "tank_refill_off_m",
                "tank_inlet_capacity_m3h",
            ]
            .map(|k| r.number(k));
            let tank = if tank_fields.iter().all(Option::is_none) {
                None
            } else {
                let [area, height, overflow, hard_min, fire, on, off, inlet] = tank_fields;
                let mut need = |key: &str, v: Option<f64>| {
                    if v.is_none() && key != "tank_fire_reserve_m" {
                        r.problem(key, "required", "");
                    }
                    v.unwrap_or(0.0)
                };
                Some(TankSpec {
                    area_m2: need("tank_area_m2", area),
                    height_m: need("tank_height_m", height),
                    overflow_m: need("tank_overflow_m", overflow),
                    hard_min_m: need("tank_hard_min_m", hard_min),
                    fire_reserve_m: need("tank_fire_reserve_m", fire),
                    refill_on_m: need("tank_refill_on_m", on),
                    refill_off_m: need("tank_refill_off_m", off),
                    inlet_capacity_m3h: need("tank_inlet_capacity_m3h", inlet),
                })
            };
            let mut curve = |key: &str| {
                let text = r.text(key);
                parse_curve(&text).unwrap_or_else(|| {
                    r.problem(key, "curve", &text);
                    Vec::new()
                })
            };
            let (curve_hq, curve_eta_q) = (curve("curve_hq"), curve("curve_eta_q"));
            let nameplate = Nameplate {
                rated_flow_m3h: r.number("rated_flow_m3h"),
                rated_head_m: r.number("rated_head_m"),
                shutoff_head_m: r.number("shutoff_head_m"),
                rated_power_kw: r.number("rated_power_kw"),
                rated_speed_rpm: r.number("rated_speed_rpm"),
                efficiency: r.number("efficiency"),
                curve_hq,
                curve_eta_q,
                tank,
            };
            let supplier = contacts(
                &r.text("supplier_name"),
                &r.text("supplier_company"),
                &r.text("supplier_phone"),
                &r.text("supplier_email"),
            )
            .into_iter()
            .next();
            let (name, vendor, model, serial, part_number, notes) = (
                r.text("name"),
                r.text("vendor"),
                r.text("model"),
                r.text("serial"),
                r.text("part_number"),
                r.text("notes"),
            );
            let (installed, commissioned, warranty_end) = (
                r.date("installed"),
                r.date("commissioned"),
                r.date("warranty_end"),
            );
            let (Some(room), Some(tag), Some(kind)) = (room, tag, kind) else {
                continue;
            };
            if !tags.insert((room.clone(), tag.clone())) {
                r.problem("tag", "duplicate", &tag);
                continue;
            }
            if !serial.is_empty() {
                if let Some(first) = serials.insert((vendor.clone(), serial.clone()), *row) {
                    r.problem("serial", "duplicate_in_file", format!("{serial} ({first})"));
                }
            }
            if !named.contains(&room) && !listed.contains_key(&room) && stored(&room).is_none() {
                r.problem("room_id", "unknown_room", &room);
                continue;
            }
            if !listed.contains_key(&room) {
                order.push(room.clone());
            }
            listed.entry(room).or_default().push((
                *row,
                Equipment {
                    tag,
                    kind,
                    device,
                    set,
                    name,
                    vendor,
                    model,
                    serial,
                    part_number,
                    installed,
                    commissioned,
                    warranty_end,
                    nameplate,
                    supplier,
                    documents: Vec::new(),
                    notes,
                },
            ));
        }
        for room in order {
            let list = listed.remove(&room).unwrap_or_default();
            let at = match room_at.get(&room) {
                Some(i) => *i,
                None => {
                    let Some(before) = stored(&room) else {
                        continue;
                    };
                    room_at.insert(room.clone(), rooms.len());
                    rooms.push(RoomArchive {
                        documents: Vec::new(),
                        retired: Vec::new(),
                        ..before
                    });
                    rooms.len() - 1
                }
            };
            parsed
                .provenance
                .equipment
                .insert(room.clone(), list.iter().map(|(r, _)| Some(*r)).collect());
            rooms[at].equipment = list.into_iter().map(|(_, e)| e).collect();
        }
    }
    // Rooms whose equipment was kept: no equipment rows to point at.
    for room in &rooms {
        parsed
            .provenance
            .equipment
            .entry(room.site.id.clone())
            .or_insert_with(|| vec![None; room.equipment.len()]);
    }
    parsed.rooms = rooms;
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(problems)
    }
}

/// Where a problem the archive's validation found is in the file: a room's field maps to its
/// rooms-sheet cell, an equipment's field (`equipment[3].serial`) to its equipment-sheet cell.
pub fn locate(
    parsed: &Parsed,
    room: Option<&RoomId>,
    project: Option<&ProjectId>,
    problem: &Problem,
) -> ImportProblem {
    let letter = |sheet: SheetKind, key: &str| {
        (parsed.provenance.columns.get(&sheet))
            .and_then(|c| c.get(key))
            .map(|i| column_letter(*i))
            .unwrap_or_default()
    };
    let make = |sheet: SheetKind, row: u32, key: &str| ImportProblem {
        sheet,
        row,
        column: letter(sheet, key),
        field: key.to_owned(),
        code: problem.code.clone(),
        value: problem.value.clone(),
        message: String::new(),
    };
    if let (Some(p), None) = (project, room) {
        let row = parsed.provenance.projects.get(p).copied().unwrap_or(0);
        return make(SheetKind::Projects, row, &problem.field);
    }
    let Some(room) = room else {
        return make(SheetKind::Rooms, 0, &problem.field);
    };
    let room_row = parsed.provenance.rooms.get(room).copied();
    if let Some(rest) = problem.field.strip_prefix("equipment[") {
        if let Some((i, field)) = rest.split_once("].") {
            let row = i.parse::<usize>().ok().and_then(|i| {
                parsed
                    .provenance
                    .equipment
                    .get(room)?
                    .get(i)
                    .copied()
                    .flatten()
            });
            let key = match field {
                "area_m2" | "height_m" => format!("tank_{field}"),
                other => other.to_owned(),
            };
            return match row {
                Some(row) => make(SheetKind::Equipment, row, &key),
                None => make(SheetKind::Rooms, room_row.unwrap_or(0), "room_id"),
            };
        }
    }
    let key = match problem.field.as_str() {
        "project" => "project_id",
        "points" => "point_overrides",
        "equipment" => "room_id",
        other => other,
    };
    match room_row {
        Some(row) => make(SheetKind::Rooms, row, key),
        // A room named only by its equipment: its first equipment row.
        None => {
            let row = (parsed.provenance.equipment.get(room))
                .and_then(|rows| rows.iter().flatten().next().copied())
                .unwrap_or(0);
            make(SheetKind::Equipment, row, "room_id")
        }
    }
}

/// Words each problem in `lang`: `asset.<code>` (the words the archive's page uses for the
/// same codes) with the value after it, prefixed by where.
pub fn word_problems(problems: &mut [ImportProblem], words: &dyn Words, lang: Lang) {
    for p in problems {
        let mut what = word(words, lang, &format!("asset.{}", p.code));
        if !p.value.is_empty() {
            what.push_str(&format!(" ({})", p.value));
        }
        let column = if p.field.is_empty() {
            String::new()
        } else {
            word(words, lang, &format!("assets.col_{}", p.field))
        };
        let at = word(words, lang, "assets.problem_at")
            .replace("{sheet}", &sheet_name(words, lang, p.sheet))
            .replace("{row}", &p.row.to_string())
            .replace(
                "{column}",
                &if p.column.is_empty() {
                    column
                } else {
                    format!("{} {column}", p.column)
                },
            );
        p.message = format!("{at}: {what}");
    }
}

/// One value to write.
enum Out<'a> {
    Text(&'a str),
    Owned(String),
    Number(Option<f64>),
    Date(Option<Date>),
}

fn project_row(p: &Project) -> Vec<Out<'_>> {
    let [name, company, phone, email] = contact_columns(&p.contacts);
    vec![
        Out::Text(p.id.as_str()),
        Out::Text(&p.name),
        Out::Text(&p.address),
        Out::Text(&p.developer),
        Out::Text(&p.property_manager),
        Out::Number(p.households.map(f64::from)),
        Out::Owned(name),
        Out::Owned(company),
        Out::Owned(phone),
        Out::Owned(email),
    ]
}

fn room_row(r: &RoomArchive) -> Vec<Out<'_>> {
    let s = &r.site;
    let (source, address, unit, profile) = match &s.source {
        SourceSpec::Mqtt => ("mqtt", "", None, ""),
        SourceSpec::Modbus {
            address,
            unit_id,
            profile,
        } => (
            "modbus",
            address.as_str(),
            Some(f64::from(*unit_id)),
            profile.as_str(),
        ),
    };
    vec![
        Out::Text(s.id.as_str()),
        Out::Text(&s.name),
        Out::Text(&s.name_pinyin),
        Out::Text(&s.address),
        Out::Text(&s.address_pinyin),
        Out::Text(r.project.as_ref().map_or("", |p| p.as_str())),
        Out::Text(s.zone.as_str()),
        Out::Number(Some(s.lat)),
        Out::Number(Some(s.lon)),
        Out::Text(s.carrier.as_deref().unwrap_or("")),
        Out::Number(Some(f64::from(s.households))),
        Out::Number(Some(s.outlet_setpoint_mpa)),
        Out::Date(r.commissioned),
        Out::Text(source),
        Out::Text(address),
        Out::Number(unit),
        Out::Text(profile),
        Out::Owned(format_overrides(&s.points)),
    ]
}

fn equipment_row<'a>(room: &'a RoomId, e: &'a Equipment) -> Vec<Out<'a>> {
    let n = &e.nameplate;
    let t = n.tank.as_ref();
    let tank = |f: fn(&TankSpec) -> f64| Out::Number(t.map(f));
    let [sname, scompany, sphone, semail] = contact_columns(e.supplier.as_slice());
    vec![
        Out::Text(room.as_str()),
        Out::Text(e.tag.as_str()),
        Out::Text(e.kind.as_str()),
        Out::Owned(e.device.map(|d| d.to_string()).unwrap_or_default()),
        Out::Text(e.set.as_ref().map_or("", |s| s.as_str())),
        Out::Text(&e.name),
        Out::Text(&e.vendor),
        Out::Text(&e.model),
        Out::Text(&e.serial),
        Out::Text(&e.part_number),
        Out::Date(e.installed),
        Out::Date(e.commissioned),
        Out::Date(e.warranty_end),
        Out::Number(n.rated_flow_m3h),
        Out::Number(n.rated_head_m),
        Out::Number(n.shutoff_head_m),
        Out::Number(n.rated_power_kw),
        Out::Number(n.rated_speed_rpm),
        Out::Number(n.efficiency),
        Out::Owned(format_curve(&n.curve_hq)),
        Out::Owned(format_curve(&n.curve_eta_q)),
        tank(|t| t.area_m2),
        tank(|t| t.height_m),
        tank(|t| t.overflow_m),
        tank(|t| t.hard_min_m),
        tank(|t| t.fire_reserve_m),
        tank(|t| t.refill_on_m),
        tank(|t| t.refill_off_m),
        tank(|t| t.inlet_capacity_m3h),
        Out::Owned(sname),
        Out::Owned(scompany),
        Out::Owned(sphone),
        Out::Owned(semail),
        Out::Text(&e.notes),
    ]
}

/// The archive (or, with nothing in it, the empty template) as an .xlsx workbook in `lang`:
/// an instructions sheet, then the three sheets, each with its headings in `lang` on row 1 and
/// the column keys on row 2.
pub fn write_xlsx(
    projects: &[Project],
    rooms: &[RoomArchive],
    words: &dyn Words,
    lang: Lang,
) -> Result<Vec<u8>, SheetError> {
    use rust_xlsxwriter::{DataValidation, Format, FormatBorder, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| SheetError::Write(e.to_string());
    let mut book = Workbook::new();
    let head = Format::new()
        .set_bold()
        .set_background_color("#E8ECEF")
        .set_border_bottom(FormatBorder::Thin);
    let keys = Format::new().set_font_color("#8A9399").set_font_size(8);
    let date = Format::new().set_num_format("yyyy-mm-dd");

    let readme = book.add_worksheet();
    readme
        .set_name(word(words, lang, "assets.sheet_readme"))
        .map_err(err)?;
    readme.set_column_width(0, 110).map_err(err)?;
    for (i, key) in [
        "readme_1", "readme_2", "readme_3", "readme_4", "readme_5", "readme_6",
    ]
    .iter()
    .enumerate()
    {
        readme
            .write_string(i as u32, 0, word(words, lang, &format!("assets.{key}")))
            .map_err(err)?;
    }
    let kinds = EquipmentKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    readme
        .write_string(7, 0, format!("kind: {kinds}"))
        .map_err(err)?;

    for kind in SheetKind::ALL {
        let ws = book.add_worksheet();
        ws.set_name(sheet_name(words, lang, kind)).map_err(err)?;
        let columns = kind.columns();
        for (c, column) in columns.iter().enumerate() {
            let c = c as u16;
            ws.write_string_with_format(
                0,
                c,
                word(words, lang, &format!("assets.col_{}", column.key)),
                &head,
            )
            .map_err(err)?;
            ws.write_string_with_format(1, c, column.key, &keys)
                .map_err(err)?;
            let width = match column.ty {
                ColumnType::Date => 12.0,
                ColumnType::Number | ColumnType::Integer => 11.0,
                ColumnType::Text => 16.0,
            };
            ws.set_column_width(c, width).map_err(err)?;
        }
        ws.set_freeze_panes(2, 0).map_err(err)?;
        let rows: Box<dyn Iterator<Item = Vec<Out<'_>>>> = match kind {
            SheetKind::Projects => Box::new(projects.iter().map(project_row)),
            SheetKind::Rooms => Box::new(rooms.iter().map(room_row)),
            SheetKind::Equipment => Box::new(rooms.iter().flat_map(|r| {
                r.equipment
                    .iter()
                    .map(move |e| equipment_row(&r.site.id, e))
            })),
        };
        let mut last = 1u32;
        for (i, row) in rows.enumerate() {
            let r = 2 + i as u32;
            last = r;
            for (c, v) in row.into_iter().enumerate() {
                let c = c as u16;
                match v {
                    Out::Text(s) if !s.is_empty() => {
                        ws.write_string(r, c, s).map_err(err)?;
                    }
                    Out::Owned(s) if !s.is_empty() => {
                        ws.write_string(r, c, s).map_err(err)?;
                    }
                    Out::Number(Some(n)) => {
                        ws.write_number(r, c, n).map_err(err)?;
                    }
                    Out::Date(Some(d)) => {
                        ws.write_number_with_format(r, c, f64::from(d.days()) + 25_569.0, &date)
                            .map_err(err)?;
                    }
                    _ => {}
                }
            }
        }
        if kind == SheetKind::Equipment {
            let list: Vec<&str> = EquipmentKind::ALL.iter().map(|k| k.as_str()).collect();
            let v = DataValidation::new()
                .allow_list_strings(&list)
                .map_err(err)?;
            ws.add_data_validation(2, 2, last.max(2) + 5_000, 2, &v)
                .map_err(err)?;
        }
    }
    book.save_to_buffer().map_err(err)
}

/// One sheet of the archive as CSV (UTF-8 with a byte-order mark, so Excel reads Chinese):
/// headings in `lang`, then the rows.
pub fn write_csv(
    kind: SheetKind,
    projects: &[Project],
    rooms: &[RoomArchive],
    words: &dyn Words,
    lang: Lang,
) -> Result<Vec<u8>, SheetError> {
    let err = |e: csv::Error| SheetError::Write(e.to_string());
    let mut out = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    out.write_record(
        kind.columns()
            .iter()
            .map(|c| word(words, lang, &format!("assets.col_{}", c.key))),
    )
    .map_err(err)?;
    let text = |v: Out<'_>| match v {
        Out::Text(s) => s.to_owned(),
        Out::Owned(s) => s,
        Out::Number(n) => n.map(|n| n.to_string()).unwrap_or_default(),
        Out::Date(d) => d.map(|d| d.to_string()).unwrap_or_default(),
    };
    match kind {
        SheetKind::Projects => {
            for p in projects {
                out.write_record(project_row(p).into_iter().map(text))
                    .map_err(err)?;
            }
        }
        SheetKind::Rooms => {
            for r in rooms {
                out.write_record(room_row(r).into_iter().map(text))
                    .map_err(err)?;
            }
        }
        SheetKind::Equipment => {
            for r in rooms {
                for e in &r.equipment {
                    out.write_record(equipment_row(&r.site.id, e).into_iter().map(text))
                        .map_err(err)?;
                }
            }
        }
    }
    out.into_inner()
        .map_err(|e| SheetError::Write(e.to_string()))
}

/// Reads a file as the template: an .xlsx workbook (a zip: `PK` first) or a CSV sheet.
pub fn read(bytes: &[u8], words: &dyn Words) -> Result<Vec<RawSheet>, SheetError> {
    if bytes.starts_with(b"PK\x03\x04") {
        read_xlsx(bytes, words)
    } else if bytes.contains(&0) {
        Err(SheetError::NotSpreadsheet {
            detail: "binary data that is not an .xlsx workbook".into(),
        })
    } else {
        Ok(vec![read_csv(bytes, words)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::business::assets::archive::model::Known;
    use cistern_schemas::inventory::Inventory;

    fn words() -> crate::api::webui::ConsoleWords {
        crate::api::webui::ConsoleWords
    }

    fn archive() -> (Inventory, Vec<Project>, Vec<RoomArchive>) {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/ops/inventory.example.toml"
        ))
        .unwrap();
        let inv = Inventory::from_toml(&text, "example").unwrap();
        let projects = vec![Project {
            id: ProjectId::new("XM-P0001").unwrap(),
            name: "东海豪庭".into(),
            address: "思明区".into(),
            developer: "厦门建发".into(),
            property_manager: "".into(),
            households: Some(1200),
            contacts: vec![
                Contact {
                    name: "王工".into(),
                    company: "".into(),
                    phone: "13800000001".into(),
                    email: "".into(),
                },
                Contact {
                    name: "李经理".into(),
                    company: "物业".into(),
                    phone: "".into(),
                    email: "li@example.com".into(),
                },
            ],
        }];
        let mut rooms: Vec<RoomArchive> = inv.rooms.iter().map(RoomArchive::from_spec).collect();
        rooms[0].project = Some(projects[0].id.clone());
        rooms[0].commissioned = Date::ymd(2016, 3, 1);
        let p1 = &mut rooms[0].equipment[0];
        p1.vendor = "格兰富".into();
        p1.model = "CR 32-4".into();
        p1.serial = "00123".into();
        p1.installed = Date::ymd(2016, 2, 20);
        p1.warranty_end = Date::ymd(2019, 2, 20);
        p1.nameplate.rated_speed_rpm = Some(2900.0);
        p1.nameplate.curve_hq = vec![[0.0, 62.5], [16.0, 58.1], [32.0, 48.0]];
        p1.nameplate.curve_eta_q = vec![[0.0, 0.0], [32.0, 0.74]];
        p1.supplier = Some(Contact {
            name: "张三".into(),
            company: "格兰富水泵".into(),
            phone: "4008-123-456".into(),
            email: "".into(),
        });
        p1.notes = "2023 年更换机封".into();
        let mut motor = Equipment::live(
            DeviceUnit::Pump(1),
            EquipmentKind::Motor,
            Nameplate::default(),
            String::new(),
        );
        motor.tag = EquipmentTag::new("P1-M").unwrap();
        motor.device = None;
        motor.set = Some(EquipmentTag::new("P1").unwrap());
        motor.nameplate.rated_power_kw = Some(7.5);
        rooms[0].equipment.push(motor);
        (inv, projects, rooms)
    }

    #[test]
    fn the_exported_archive_reads_back_identical_in_either_language_and_as_csv() {
        let w = words();
        let (_, projects, rooms) = archive();
        for lang in [Lang::ZhCn, Lang::En] {
            let bytes = write_xlsx(&projects, &rooms, &w, lang).unwrap();
            let sheets = read(&bytes, &w).unwrap();
            let parsed = parse(&sheets, &|_| None).unwrap();
            assert_eq!(parsed.projects, projects);
            assert_eq!(parsed.rooms, rooms);
            assert_eq!(
                parsed.rows[&SheetKind::Equipment],
                rooms.iter().map(|r| r.equipment.len()).sum::<usize>()
            );
        }
        let csv: Vec<RawSheet> = SheetKind::ALL
            .iter()
            .map(|k| {
                read(
                    &write_csv(*k, &projects, &rooms, &w, Lang::ZhCn).unwrap(),
                    &w,
                )
                .unwrap()
                .remove(0)
            })
            .collect();
        let parsed = parse(&csv, &|_| None).unwrap();
        assert_eq!(parsed.projects, projects);
        assert_eq!(parsed.rooms, rooms);
    }

    #[test]
    fn a_bad_workbook_is_reported_cell_by_cell_in_the_users_language() {
        use rust_xlsxwriter::{Formula, Workbook};
        let w = words();
        let (_, projects, rooms) = archive();
        let good = write_xlsx(&projects, &rooms, &w, Lang::En).unwrap();
        let sheets = read(&good, &w).unwrap();
        let mut book = Workbook::new();
        // The good file's sheets, with cells spoiled.
        for s in &sheets {
            let ws = book.add_worksheet();
            ws.set_name(s.kind.key()).unwrap();
            for (c, column) in s.kind.columns().iter().enumerate() {
                ws.write_string(0, c as u16, column.key).unwrap();
            }
            for (i, (_, cells)) in s.rows.iter().enumerate() {
                for (c, cell) in cells.iter().enumerate() {
                    let (r, c) = (1 + i as u32, c as u16);
                    match cell {
                        Cell::Text(t) => ws.write_string(r, c, t).map(|_| ()).unwrap(),
                        Cell::Number(n) => ws.write_number(r, c, *n).map(|_| ()).unwrap(),
                        Cell::Date(d) => ws.write_string(r, c, d.to_string()).map(|_| ()).unwrap(),
                        _ => {}
                    }
                }
            }
            match s.kind {
                SheetKind::Rooms => {
                    // Row 2: lat as words; row 3: a formula for households; row 4: a duplicate id.
                    ws.write_string(1, 7, "north").unwrap();
                    ws.write_formula(2, 10, Formula::new("=1+1")).unwrap();
                    ws.write_string(3, 0, rooms[0].site.id.as_str()).unwrap();
                    ws.merge_range(5, 1, 6, 1, "merged", &rust_xlsxwriter::Format::new())
                        .unwrap();
                }
                SheetKind::Equipment => {
                    // Row 2: an unknown kind; row 3: a date that is no date; a row for a room
                    // nobody knows.
                    ws.write_string(1, 2, "spaceship").unwrap();
                    ws.write_string(2, 10, "2024-02-30").unwrap();
                    let last = 1 + s.rows.len() as u32;
                    ws.write_string(last, 0, "XM-9999").unwrap();
                    ws.write_string(last, 1, "P1").unwrap();
                    ws.write_string(last, 2, "pump").unwrap();
                }
                SheetKind::Projects => {}
            }
        }
        let bytes = book.save_to_buffer().unwrap();
        let sheets = read(&bytes, &w).unwrap();
        let mut problems = parse(&sheets, &|_| None).unwrap_err();
        word_problems(&mut problems, &w, Lang::ZhCn);
        let got: Vec<(SheetKind, u32, &str, &str)> = problems
            .iter()
            .map(|p| (p.sheet, p.row, p.column.as_str(), p.code.as_str()))
            .collect();
        for want in [
            (SheetKind::Rooms, 2, "H", "type_number"),
            (SheetKind::Rooms, 3, "K", "formula"),
            (SheetKind::Rooms, 4, "A", "duplicate"),
            (SheetKind::Rooms, 6, "B", "merged"),
            (SheetKind::Equipment, 2, "C", "kind"),
            (SheetKind::Equipment, 3, "K", "type_date"),
            (
                SheetKind::Equipment,
                2 + sheets[2].rows.len() as u32 - 1,
                "A",
                "unknown_room",
            ),
        ] {
            assert!(got.contains(&want), "{want:?} not in {got:?}");
        }
        let merged = problems.iter().find(|p| p.code == "merged").unwrap();
        assert!(
            merged.message.contains("泵房") && merged.message.contains("第 6 行"),
            "{}",
            merged.message
        );
    }

    #[test]
    fn files_that_are_not_the_template_are_refused_as_a_whole() {
        let w = words();
        let (_, projects, rooms) = archive();
        // Not a spreadsheet: a PNG renamed, a zip that is no workbook, text with no header.
        assert!(matches!(
            read(b"\x89PNG\r\n\x1a\n\0\0\0IHDR", &w),
            Err(SheetError::NotSpreadsheet { .. })
        ));
        assert!(matches!(
            read(b"PK\x03\x04garbage", &w),
            Err(SheetError::NotSpreadsheet { .. })
        ));
        assert_eq!(
            read(b"hello,world\n1,2\n", &w).unwrap_err(),
            SheetError::UnknownCsv
        );
        // A workbook without its equipment sheet.
        let mut book = rust_xlsxwriter::Workbook::new();
        for name in ["projects", "rooms"] {
            book.add_worksheet()
                .set_name(name)
                .unwrap()
                .write_string(0, 0, "room_id")
                .unwrap();
        }
        let bytes = book.save_to_buffer().unwrap();
        assert!(matches!(
            read(&bytes, &w),
            Err(SheetError::MissingSheet {
                sheet: SheetKind::Projects | SheetKind::Equipment
            })
        ));
        // A rooms CSV without its zone column.
        let csv = String::from_utf8(
            write_csv(SheetKind::Rooms, &projects, &rooms, &w, Lang::En).unwrap(),
        )
        .unwrap();
        let without: String = csv
            .lines()
            .map(|l| {
                l.split(',')
                    .enumerate()
                    .filter(|(i, _)| *i != 6)
                    .map(|(_, c)| c)
                    .collect::<Vec<_>>()
                    .join(",")
                    + "\n"
            })
            .collect();
        assert_eq!(
            read(without.as_bytes(), &w).unwrap_err(),
            SheetError::MissingColumn {
                sheet: SheetKind::Rooms,
                column: "zone".into()
            }
        );
    }

    #[test]
    fn the_archives_own_checks_point_at_cells() {
        let w = words();
        let (inv, projects, mut rooms) = archive();
        rooms[1].site.zone = ZoneId::new("atlantis").unwrap();
        rooms[0].equipment[0].nameplate.efficiency = Some(1.5);
        let bytes = write_xlsx(&projects, &rooms, &w, Lang::En).unwrap();
        let parsed = parse(&read(&bytes, &w).unwrap(), &|_| None).unwrap();
        let zones: HashSet<ZoneId> = inv.zones.iter().map(|z| z.id.clone()).collect();
        let ids: HashSet<ProjectId> = projects.iter().map(|p| p.id.clone()).collect();
        let mut found = Vec::new();
        for r in &parsed.rooms {
            for p in r.validate(Known {
                zones: &zones,
                projects: &ids,
            }) {
                found.push(locate(&parsed, Some(&r.site.id), None, &p));
            }
        }
        let got: Vec<(SheetKind, u32, &str, &str)> = found
            .iter()
            .map(|p| (p.sheet, p.row, p.column.as_str(), p.code.as_str()))
            .collect();
        assert!(
            got.contains(&(SheetKind::Rooms, 4, "G", "unknown_zone")),
            "{got:?}"
        );
        assert!(
            got.contains(&(SheetKind::Equipment, 3, "S", "range")),
            "{got:?}"
        );
    }

    #[test]
    fn a_hundred_thousand_rows_are_all_reported_and_more_than_the_limit_refused() {
        let w = words();
        // 100,000 equipment rows of a room nobody knows: every row reported, nothing kept.
        let mut csv = String::from("room_id,tag,kind,serial\n");
        for i in 0..100_000 {
            csv.push_str(&format!("XM-9999,E{i},meter,S{i}\n"));
        }
        let sheets = read(csv.as_bytes(), &w).unwrap();
        let problems = parse(&sheets, &|_| None).unwrap_err();
        assert_eq!(problems.len(), 100_000);
        assert!(problems
            .iter()
            .all(|p| p.code == "unknown_room" && p.column == "A"));
        assert_eq!((problems[0].row, problems[99_999].row), (2, 100_001));
        // Past the sheet limit: refused whole, before anything is parsed.
        let mut csv = String::from("room_id,tag,kind\n");
        for i in 0..MAX_ROWS {
            csv.push_str(&format!("XM-0001,E{i},meter\n"));
        }
        assert!(matches!(
            read(csv.as_bytes(), &w),
            Err(SheetError::TooManyRows { max: MAX_ROWS, .. })
        ));
    }
}
