//! Energy reports from the ledger (issue 22 item 1): a period's energy figures per room, zone
//! and fleet, with year-on-year (同比) and period-on-period (环比) changes and a peer
//! comparison that flags outliers by robust z-score — all pure functions over the days'
//! [`DayFigures`], so a year of the whole fleet is summed in one pass without reading a sample.
//!
//! Periods and their comparisons:
//! - a day compares with the day before (环比) and the same date a year before (同比); a
//!   29 February compares with 28 February of the year before (there is no 29th), and a
//!   28 February after a leap year with the leap year's 28 February — the leap day itself is
//!   then compared with nothing a year later (documented choice: a day always compares with
//!   exactly one day);
//! - a month compares with the whole previous calendar month and the same month a year
//!   before (February 2028's 29 days with February 2027's 28: totals differ by a day, the
//!   intensities kWh/m³ and kWh per 1,000 m³·MPa do not depend on the length);
//! - a period still running (it ends after `today`) is cut at today, and both comparisons
//!   are cut to the same number of days from their start, so a month to date compares with
//!   the same days of the months it is compared with.
//!
//! Intensities of a period are ratios of sums (each day's counters scaled to their own
//! coverage, days whose intensity the day could not give left out), never means of ratios.
//!
//! Peers: rooms of the same lift band (0.1 MPa) and size band (households), pumps of the same
//! model. An outlier has |z| ≥ the threshold with z = (x − median) / (1.4826 · MAD) over its
//! group including itself; a group smaller than [`MIN_PEERS`] or with no spread (MAD 0) gives
//! no verdict but says so.

use super::day::DayFigures;
use cistern_schemas::{Date, RoomId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Scale of the MAD to a normal standard deviation.
pub const MAD_SCALE: f64 = 1.4826;
/// The smallest peer group (the room included) that gives a verdict.
pub const MIN_PEERS: usize = 5;
/// |z| at or above this flags an outlier.
pub const OUTLIER_Z: f64 = 3.0;
/// Width of a lift band, MPa.
pub const LIFT_BAND_MPA: f64 = 0.1;
/// Lower bounds of the households size bands.
pub const HOUSEHOLD_BANDS: &[u32] = &[0, 200, 500, 1000, 2000];

/// What a report covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Day,
    Month,
    Year,
}

/// A report's period: a local day, a calendar month or a calendar year.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub kind: PeriodKind,
    /// The first day (a month's 1st).
    pub start: Date,
}

/// Why a period was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("{0:?} is not a day (YYYY-MM-DD) or a month (YYYY-MM)")]
    Unreadable(String),
}

impl Period {
    pub fn day(date: Date) -> Self {
        Self {
            kind: PeriodKind::Day,
            start: date,
        }
    }

    /// The month of `date`.
    pub fn month_of(date: Date) -> Self {
        let (y, m, _) = date.parts();
        Self {
            kind: PeriodKind::Month,
            start: Date::ymd(y, m, 1).unwrap_or(date),
        }
    }

    /// The year of `date`.
    pub fn year_of(date: Date) -> Self {
        let (y, _, _) = date.parts();
        Self {
            kind: PeriodKind::Year,
            start: Date::ymd(y, 1, 1).unwrap_or(date),
        }
    }

    /// `YYYY-MM-DD` (a day), `YYYY-MM` (a month) or `YYYY` (a year).
    pub fn parse(text: &str) -> Result<Self, PeriodError> {
        let bad = || PeriodError::Unreadable(text.to_string());
        let parts: Vec<&str> = text.split('-').collect();
        let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
        match parts.as_slice() {
            [y] if y.len() == 4 => {
                let y = i32::try_from(num(y)?).map_err(|_| bad())?;
                Date::ymd(y, 1, 1).map(Self::year_of).ok_or_else(bad)
            }
            [y, m] if y.len() == 4 && m.len() == 2 => {
                let y = i32::try_from(num(y)?).map_err(|_| bad())?;
                Date::ymd(y, num(m)?, 1).map(Self::month_of).ok_or_else(bad)
            }
            [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
                let y = i32::try_from(num(y)?).map_err(|_| bad())?;
                Date::ymd(y, num(m)?, num(d)?)
                    .map(Self::day)
                    .ok_or_else(bad)
            }
            _ => Err(bad()),
        }
    }

    /// The period as written: `YYYY-MM-DD` or `YYYY-MM`.
    pub fn label(&self) -> String {
        let (y, m, d) = self.start.parts();
        match self.kind {
            PeriodKind::Day => format!("{y:04}-{m:02}-{d:02}"),
            PeriodKind::Month => format!("{y:04}-{m:02}"),
            PeriodKind::Year => format!("{y:04}"),
        }
    }

    /// First and last day, inclusive.
    pub fn range(&self) -> (Date, Date) {
        match self.kind {
            PeriodKind::Day => (self.start, self.start),
            PeriodKind::Month => {
                let (y, m, _) = self.start.parts();
                (
                    self.start,
                    self.start.plus_days(days_in_month(y, m) as i32 - 1),
                )
            }
            PeriodKind::Year => {
                let (y, _, _) = self.start.parts();
                (self.start, Date::ymd(y, 12, 31).unwrap_or(self.start))
            }
        }
    }

    /// The period before (环比): the day before, the previous calendar month.
    pub fn previous(&self) -> Self {
        match self.kind {
            PeriodKind::Day => Self::day(self.start.plus_days(-1)),
            PeriodKind::Month => Self::month_of(self.start.plus_days(-1)),
            PeriodKind::Year => Self::year_of(self.start.plus_days(-1)),
        }
    }

    /// The same period a year before (同比); 29 February → 28 February.
    pub fn year_ago(&self) -> Self {
        let (y, m, d) = self.start.parts();
        let d = d.min(days_in_month(y - 1, m));
        let start = Date::ymd(y - 1, m, d).unwrap_or(self.start);
        Self {
            kind: self.kind,
            start,
        }
    }

    /// The range to sum: the period cut at `today` (inclusive); `None` when it starts later.
    pub fn cut(&self, today: Date) -> Option<(Date, Date)> {
        let (from, to) = self.range();
        (from <= today).then_some((from, to.min(today)))
    }
}

/// The days of a month.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The ranges a report sums: the period (cut at today), the previous period and the same
/// period a year before, each cut to the period's length so far.
pub fn comparison_ranges(period: Period, today: Date) -> Option<[(Date, Date); 3]> {
    let (from, to) = period.cut(today)?;
    let len = to.days() - from.days();
    let same_length = |p: Period| {
        let (f, t) = p.range();
        (f, t.min(f.plus_days(len)))
    };
    Some([
        (from, to),
        same_length(period.previous()),
        same_length(period.year_ago()),
    ])
}

/// Sums of a period's days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub days: u32,
    pub kwh: f64,
    pub kwh_days: u32,
    pub kwh_coverage: f64,
    pub m3: f64,
    pub m3_days: u32,
    pub inlet_m3: f64,
    pub inlet_days: u32,
    /// Over the days with an intensity: coverage-scaled kWh and m³, and Σ m³·MPa.
    pub scaled_kwh: f64,
    pub scaled_m3: f64,
    pub scaled_m3_mpa: f64,
    pub intensity_days: u32,
    pub lift_days: u32,
    /// Over the days with a pump efficiency.
    pub pump_efficiency: f64,
    pub pump_days: u32,
    pub lost_kwh: f64,
    pub lost_days: u32,
    pub por_share: f64,
    pub por_days: u32,
}

impl Totals {
    /// Adds a day.
    pub fn add(&mut self, f: &DayFigures) {
        self.days += 1;
        if let Some(k) = f.kwh {
            self.kwh += k;
            self.kwh_days += 1;
            self.kwh_coverage += f.kwh_coverage.unwrap_or(0.0);
        }
        if let Some(m) = f.m3 {
            self.m3 += m;
            self.m3_days += 1;
        }
        if let Some(m) = f.inlet_m3 {
            self.inlet_m3 += m;
            self.inlet_days += 1;
        }
        if let (Some(k), Some(kc), Some(m), Some(mc), Some(_)) =
            (f.kwh, f.kwh_coverage, f.m3, f.m3_coverage, f.kwh_per_m3)
        {
            if kc > 0.0 && mc > 0.0 {
                self.scaled_kwh += k / kc;
                self.scaled_m3 += m / mc;
                self.intensity_days += 1;
                if let (Some(lift), Some(_)) = (f.lift_mpa, f.kwh_per_kt_mpa) {
                    self.scaled_m3_mpa += m / mc * lift;
                    self.lift_days += 1;
                }
            }
        }
        if let Some(e) = f.pump_efficiency {
            self.pump_efficiency += e;
            self.pump_days += 1;
        }
        if let Some(l) = f.lost_kwh {
            self.lost_kwh += l;
            self.lost_days += 1;
        }
        if let Some(p) = f.por_share {
            self.por_share += p;
            self.por_days += 1;
        }
    }

    /// Adds another's sums (a room's into its zone's).
    pub fn merge(&mut self, o: &Totals) {
        self.days += o.days;
        self.kwh += o.kwh;
        self.kwh_days += o.kwh_days;
        self.kwh_coverage += o.kwh_coverage;
        self.m3 += o.m3;
        self.m3_days += o.m3_days;
        self.inlet_m3 += o.inlet_m3;
        self.inlet_days += o.inlet_days;
        self.scaled_kwh += o.scaled_kwh;
        self.scaled_m3 += o.scaled_m3;
        self.scaled_m3_mpa += o.scaled_m3_mpa;
        self.intensity_days += o.intensity_days;
        self.lift_days += o.lift_days;
        self.pump_efficiency += o.pump_efficiency;
        self.pump_days += o.pump_days;
        self.lost_kwh += o.lost_kwh;
        self.lost_days += o.lost_days;
        self.por_share += o.por_share;
        self.por_days += o.por_days;
    }

    /// The period's figures.
    pub fn figures(&self) -> PeriodFigures {
        let ratio = |a: f64, b: f64| (b > 1e-9).then(|| a / b).filter(|v| v.is_finite());
        let kwh_per_kt_mpa = if self.lift_days > 0 {
            ratio(self.scaled_kwh * 1000.0, self.scaled_m3_mpa)
        } else {
            None
        };
        PeriodFigures {
            days: self.days,
            kwh: (self.kwh_days > 0).then_some(self.kwh),
            kwh_coverage: ratio(self.kwh_coverage, f64::from(self.days)),
            m3: (self.m3_days > 0).then_some(self.m3),
            inlet_m3: (self.inlet_days > 0).then_some(self.inlet_m3),
            kwh_per_m3: if self.intensity_days > 0 {
                ratio(self.scaled_kwh, self.scaled_m3)
            } else {
                None
            },
            kwh_per_kt_mpa,
            set_efficiency: kwh_per_kt_mpa
                .and_then(|v| ratio(super::energy::IDEAL_KWH_PER_KT_MPA, v)),
            lift_mpa: ratio(self.scaled_m3_mpa, self.scaled_m3).filter(|_| self.lift_days > 0),
            pump_efficiency: ratio(self.pump_efficiency, f64::from(self.pump_days)),
            lost_kwh: (self.lost_days > 0).then_some(self.lost_kwh),
            por_share: ratio(self.por_share, f64::from(self.por_days)),
        }
    }
}

/// A period's energy figures; `None`: no day of the period gave it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeriodFigures {
    /// Days in the ledger.
    pub days: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh: Option<f64>,
    /// Mean share of the days the energy meter covered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh_coverage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m3: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inlet_m3: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh_per_m3: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh_per_kt_mpa: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_efficiency: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lift_mpa: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pump_efficiency: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_kwh: Option<f64>,
    /// Mean share of the days' pump run time inside 70-120 % of BEP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub por_share: Option<f64>,
}

/// Relative change, % (`None` when either side lacks the figure or the base is zero).
pub fn change_pct(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    let (n, b) = (now?, before?);
    (b.abs() > 1e-9)
        .then(|| (n / b - 1.0) * 100.0)
        .filter(|v| v.is_finite())
}

/// The changes of a period against one it is compared with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m3_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh_per_m3_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh_per_kt_mpa_pct: Option<f64>,
}

impl Changes {
    pub fn of(now: &PeriodFigures, before: &PeriodFigures) -> Self {
        Self {
            kwh_pct: change_pct(now.kwh, before.kwh),
            m3_pct: change_pct(now.m3, before.m3),
            kwh_per_m3_pct: change_pct(now.kwh_per_m3, before.kwh_per_m3),
            kwh_per_kt_mpa_pct: change_pct(now.kwh_per_kt_mpa, before.kwh_per_kt_mpa),
        }
    }
}

/// The median of `values` (sorted in place); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// A value's standing among its peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum PeerVerdict {
    /// The group gave a verdict: the robust z-score, how far from the median (%), the number
    /// of peers (the value's own excluded) and whether it is an outlier.
    Scored {
        z: f64,
        pct_vs_median: f64,
        peers: usize,
        median: f64,
        outlier: bool,
    },
    /// No verdict: `group_too_small` (fewer than [`MIN_PEERS`] with the value) or `no_spread`
    /// (MAD zero).
    NoPeerGroup { reason: String, peers: usize },
    /// The value itself is missing (the period gave no intensity): not compared.
    NoFigure,
}

/// The robust z-score verdict of each value within its group: `items` are (group, value);
/// the answer is in `items`' order.
pub fn peer_verdicts<G: std::hash::Hash + Eq + Clone>(
    items: &[(G, f64)],
    threshold: f64,
) -> Vec<PeerVerdict> {
    let mut groups: HashMap<G, Vec<f64>> = HashMap::new();
    for (g, v) in items {
        groups.entry(g.clone()).or_default().push(*v);
    }
    let stats: HashMap<G, (usize, Option<(f64, f64)>)> = groups
        .into_iter()
        .map(|(g, mut values)| {
            let n = values.len();
            let stat = median(&mut values).and_then(|m| {
                let mut dev: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
                median(&mut dev).map(|mad| (m, mad))
            });
            (g, (n, stat))
        })
        .collect();
    items
        .iter()
        .map(|(g, v)| {
            let Some(&(n, stat)) = stats.get(g) else {
                return PeerVerdict::NoPeerGroup {
                    reason: "group_too_small".into(),
                    peers: 0,
                };
            };
            let peers = n.saturating_sub(1);
            match stat {
                _ if n < MIN_PEERS => PeerVerdict::NoPeerGroup {
                    reason: "group_too_small".into(),
                    peers,
                },
                Some((m, mad)) if mad > 1e-12 * m.abs().max(1e-9) => {
                    let z = (v - m) / (MAD_SCALE * mad);
                    PeerVerdict::Scored {
                        z,
                        pct_vs_median: if m.abs() > 1e-12 {
                            (v / m - 1.0) * 100.0
                        } else {
                            0.0
                        },
                        peers,
                        median: m,
                        outlier: z.abs() >= threshold,
                    }
                }
                _ => PeerVerdict::NoPeerGroup {
                    reason: "no_spread".into(),
                    peers,
                },
            }
        })
        .collect()
}

/// A room's peer group: its lift band and size band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoomPeerGroup {
    /// Lift band index: lift in [band·0.1, (band+1)·0.1) MPa.
    pub lift_band: i32,
    /// Households band index into [`HOUSEHOLD_BANDS`].
    pub size_band: usize,
}

impl RoomPeerGroup {
    pub fn of(lift_mpa: f64, households: u32) -> Self {
        Self {
            lift_band: (lift_mpa / LIFT_BAND_MPA).floor() as i32,
            size_band: HOUSEHOLD_BANDS
                .iter()
                .rposition(|&b| households >= b)
                .unwrap_or(0),
        }
    }
}

/// The reason of an outlier in words, English and Chinese: "XM-0412 uses 38 % more per
/// m³·MPa than its 27 peers this month".
pub fn outlier_reason(
    who: &str,
    pct_vs_median: f64,
    peers: usize,
    kind: PeriodKind,
) -> (String, String) {
    let pct = pct_vs_median.abs().round();
    let (more, zh_more) = if pct_vs_median >= 0.0 {
        ("more", "高")
    } else {
        ("less", "低")
    };
    let (when, zh_when) = match kind {
        PeriodKind::Day => ("that day", "当日"),
        PeriodKind::Month => ("this month", "本月"),
        PeriodKind::Year => ("this year", "本年"),
    };
    (
        format!("{who} uses {pct} % {more} per m³·MPa than its {peers} peers {when}"),
        format!("{who}{zh_when}千吨水兆帕电耗比同类 {peers} 座泵房{zh_more} {pct} %"),
    )
}

/// What the report needs to know of a room.
#[derive(Clone, Debug)]
pub struct RoomInfo {
    pub id: RoomId,
    pub name: String,
    pub zone: String,
    pub households: u32,
}

/// One line of the report (the fleet, a zone or a room).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportRow {
    /// `fleet`, the zone id or the room id.
    pub key: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub zone: String,
    pub figures: PeriodFigures,
    /// Against the previous period (环比) and the same period a year before (同比).
    pub mom: Changes,
    pub yoy: Changes,
    /// Rooms only: the peer verdict on kWh per 1,000 m³·MPa, and its reason in words.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peers: Option<PeerVerdict>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason_en: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason_zh: Option<String>,
}

/// The energy report of a period.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnergyReport {
    pub period: Period,
    pub label: String,
    /// The ranges summed: the period (cut at today), the previous one, a year before.
    pub from: Date,
    pub to: Date,
    pub previous: (Date, Date),
    pub year_ago: (Date, Date),
    pub fleet: ReportRow,
    pub zones: Vec<ReportRow>,
    pub rooms: Vec<ReportRow>,
    /// The fleet by day over the period.
    pub days: Vec<(Date, PeriodFigures)>,
}

/// Sums the ledger into the report of `period`. `each` calls its visitor with every
/// (room, date, figures) of the ledger between the two dates given (inclusive) — the
/// `Analysis::each_figures` of the service. `None` when the period starts after today.
pub fn report(
    rooms: &[RoomInfo],
    period: Period,
    today: Date,
    each: impl FnOnce(Date, Date, &mut dyn FnMut(&RoomId, Date, &DayFigures)),
) -> Option<EnergyReport> {
    let ranges = comparison_ranges(period, today)?;
    let index: HashMap<&RoomId, usize> =
        rooms.iter().enumerate().map(|(i, r)| (&r.id, i)).collect();
    let lo = ranges.iter().map(|r| r.0).min().unwrap_or(ranges[0].0);
    let hi = ranges.iter().map(|r| r.1).max().unwrap_or(ranges[0].1);
    let mut sums = vec![[Totals::default(); 3]; rooms.len()];
    let (from, to) = ranges[0];
    let span = (to.days() - from.days() + 1).max(0) as usize;
    let mut by_day = vec![Totals::default(); span];
    each(lo, hi, &mut |room, date, f| {
        let Some(&i) = index.get(room) else {
            return;
        };
        for (k, (a, b)) in ranges.iter().enumerate() {
            if *a <= date && date <= *b {
                sums[i][k].add(f);
            }
        }
        if from <= date && date <= to {
            if let Some(d) = by_day.get_mut((date.days() - from.days()) as usize) {
                d.add(f);
            }
        }
    });
    let row = |key: String, name: String, zone: String, t: &[Totals; 3]| {
        let now = t[0].figures();
        ReportRow {
            key,
            name,
            zone,
            figures: now,
            mom: Changes::of(&now, &t[1].figures()),
            yoy: Changes::of(&now, &t[2].figures()),
            peers: None,
            reason_en: None,
            reason_zh: None,
        }
    };
    let mut fleet = [Totals::default(); 3];
    let mut zones: Vec<(String, [Totals; 3])> = Vec::new();
    let mut room_rows = Vec::with_capacity(rooms.len());
    for (r, t) in rooms.iter().zip(&sums) {
        for k in 0..3 {
            fleet[k].merge(&t[k]);
        }
        match zones.iter_mut().find(|(z, _)| *z == r.zone) {
            Some((_, z)) => (0..3).for_each(|k| z[k].merge(&t[k])),
            None => zones.push((r.zone.clone(), *t)),
        }
        room_rows.push(row(r.id.to_string(), r.name.clone(), r.zone.clone(), t));
    }
    // Peers on kWh per 1,000 m³·MPa, among rooms that have it.
    let scored: Vec<(usize, (RoomPeerGroup, f64))> = room_rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let v = row.figures.kwh_per_kt_mpa?;
            let lift = row.figures.lift_mpa?;
            Some((i, (RoomPeerGroup::of(lift, rooms[i].households), v)))
        })
        .collect();
    for row in &mut room_rows {
        row.peers = Some(PeerVerdict::NoFigure);
    }
    let items: Vec<(RoomPeerGroup, f64)> = scored.iter().map(|(_, x)| *x).collect();
    for ((i, _), verdict) in scored.iter().zip(peer_verdicts(&items, OUTLIER_Z)) {
        let row = &mut room_rows[*i];
        if let PeerVerdict::Scored {
            pct_vs_median,
            peers,
            outlier: true,
            ..
        } = verdict
        {
            let (en, zh) = outlier_reason(&row.key, pct_vs_median, peers, period.kind);
            row.reason_en = Some(en);
            row.reason_zh = Some(zh);
        }
        row.peers = Some(verdict);
    }
    zones.sort_by(|a, b| a.0.cmp(&b.0));
    Some(EnergyReport {
        period,
        label: period.label(),
        from,
        to,
        previous: ranges[1],
        year_ago: ranges[2],
        fleet: row("fleet".into(), String::new(), String::new(), &fleet),
        zones: zones
            .iter()
            .map(|(z, t)| row(z.clone(), String::new(), z.clone(), t))
            .collect(),
        rooms: room_rows,
        days: by_day
            .iter()
            .enumerate()
            .map(|(k, t)| (from.plus_days(k as i32), t.figures()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> Date {
        Date::ymd(y, m, day).unwrap()
    }

    #[test]
    fn periods_compare_across_a_month_boundary_and_a_leap_day() {
        // A day on the 1st compares with the last day of the month before.
        let p = Period::day(d(2027, 3, 1));
        assert_eq!(p.previous().start, d(2027, 2, 28));
        assert_eq!(Period::day(d(2028, 3, 1)).previous().start, d(2028, 2, 29));
        // The leap day compares with 28 February of the year before.
        assert_eq!(Period::day(d(2028, 2, 29)).year_ago().start, d(2027, 2, 28));
        assert_eq!(Period::day(d(2029, 2, 28)).year_ago().start, d(2028, 2, 28));
        // January's month before is December of the year before.
        let jan = Period::parse("2027-01").unwrap();
        assert_eq!(jan.previous().range(), (d(2026, 12, 1), d(2026, 12, 31)));
        // Leap February is 29 days, a year before 28.
        let feb = Period::parse("2028-02").unwrap();
        assert_eq!(feb.range(), (d(2028, 2, 1), d(2028, 2, 29)));
        assert_eq!(feb.year_ago().range(), (d(2027, 2, 1), d(2027, 2, 28)));
        // March 2028 to date (10 days) compares with 10 days of February and of March 2027.
        let r = comparison_ranges(Period::parse("2028-03").unwrap(), d(2028, 3, 10)).unwrap();
        assert_eq!(r[0], (d(2028, 3, 1), d(2028, 3, 10)));
        assert_eq!(r[1], (d(2028, 2, 1), d(2028, 2, 10)));
        assert_eq!(r[2], (d(2027, 3, 1), d(2027, 3, 10)));
        // A whole March compares with the whole (shorter) February.
        let r = comparison_ranges(Period::parse("2028-03").unwrap(), d(2028, 5, 1)).unwrap();
        assert_eq!(r[1], (d(2028, 2, 1), d(2028, 2, 29)));
        // A period after today has no report.
        assert!(comparison_ranges(Period::parse("2028-04").unwrap(), d(2028, 3, 10)).is_none());
        assert!(Period::parse("2027-02-29").is_err());
        assert!(Period::parse("2027-13").is_err());
        assert!(Period::parse("27-01").is_err());
        assert_eq!(Period::parse("2028-02-29").unwrap().label(), "2028-02-29");
        let y = Period::parse("2028").unwrap();
        assert_eq!(y.range(), (d(2028, 1, 1), d(2028, 12, 31)));
        assert_eq!(y.previous().range(), (d(2027, 1, 1), d(2027, 12, 31)));
    }

    fn day(kwh: f64, m3: f64, lift: f64) -> DayFigures {
        DayFigures {
            kwh: Some(kwh),
            kwh_coverage: Some(1.0),
            m3: Some(m3),
            m3_coverage: Some(1.0),
            lift_mpa: Some(lift),
            kwh_per_m3: Some(kwh / m3),
            kwh_per_kt_mpa: Some(kwh / m3 * 1000.0 / lift),
            ..DayFigures::default()
        }
    }

    #[test]
    fn intensities_are_ratios_of_sums_and_missing_days_stay_missing() {
        let mut t = Totals::default();
        t.add(&day(100.0, 400.0, 0.5));
        t.add(&day(300.0, 600.0, 0.4));
        t.add(&DayFigures::default());
        let f = t.figures();
        assert_eq!(f.days, 3);
        assert_eq!(f.kwh, Some(400.0));
        // 400 kWh / 1000 m³; m³·MPa = 400·0.5 + 600·0.4 = 440 ⇒ 909.09 kWh per 1000 m³·MPa.
        assert_eq!(f.kwh_per_m3, Some(0.4));
        assert!((f.kwh_per_kt_mpa.unwrap() - 400_000.0 / 440.0).abs() < 1e-9);
        assert!((f.lift_mpa.unwrap() - 0.44).abs() < 1e-12);
        assert_eq!(f.pump_efficiency, None);
        // A period with no data gives nothing, not NaN.
        let empty = Totals::default().figures();
        assert_eq!(
            (empty.kwh, empty.kwh_per_m3, empty.kwh_coverage),
            (None, None, None)
        );
        assert_eq!(
            change_pct(Some(1.2), Some(1.0)).map(|v| v.round()),
            Some(20.0)
        );
        assert_eq!(change_pct(Some(1.2), Some(0.0)), None);
        assert_eq!(change_pct(None, Some(1.0)), None);
    }

    #[test]
    fn robust_z_flags_the_outlier_and_refuses_small_or_flat_groups() {
        // Values 10, 11, 12, 13, 20: median 12, |dev| 2,1,0,1,8 ⇒ MAD 1;
        // z(20) = 8 / 1.4826 = 5.396 ⇒ outlier; z(13) = 0.674.
        let items: Vec<(u8, f64)> = [10.0, 11.0, 12.0, 13.0, 20.0]
            .iter()
            .map(|v| (0u8, *v))
            .collect();
        let v = peer_verdicts(&items, OUTLIER_Z);
        match &v[4] {
            PeerVerdict::Scored {
                z,
                pct_vs_median,
                peers,
                outlier,
                ..
            } => {
                assert!((z - 8.0 / 1.4826).abs() < 1e-9);
                assert!((pct_vs_median - 200.0 / 3.0).abs() < 1e-9);
                assert_eq!((*peers, *outlier), (4, true));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(v[3], PeerVerdict::Scored { outlier: false, .. }));
        // Four values: too small.
        let v = peer_verdicts(&items[..4], OUTLIER_Z);
        assert!(
            matches!(&v[0], PeerVerdict::NoPeerGroup { reason, peers: 3 } if reason == "group_too_small")
        );
        // MAD zero (most equal): no spread.
        let flat: Vec<(u8, f64)> = [5.0, 5.0, 5.0, 5.0, 9.0].iter().map(|v| (1, *v)).collect();
        let v = peer_verdicts(&flat, OUTLIER_Z);
        assert!(matches!(&v[4], PeerVerdict::NoPeerGroup { reason, .. } if reason == "no_spread"));
        let (en, zh) = outlier_reason("XM-0412", 37.6, 27, PeriodKind::Month);
        assert_eq!(
            en,
            "XM-0412 uses 38 % more per m³·MPa than its 27 peers this month"
        );
        assert_eq!(zh, "XM-0412本月千吨水兆帕电耗比同类 27 座泵房高 38 %");
        assert_eq!(
            RoomPeerGroup::of(0.45, 650),
            RoomPeerGroup {
                lift_band: 4,
                size_band: 2
            }
        );
    }

    #[test]
    fn a_report_sums_rooms_zones_and_the_fleet_with_its_comparisons() {
        let rooms: Vec<RoomInfo> = (1..=6)
            .map(|i| RoomInfo {
                id: RoomId::new(&format!("XM-{i:04}")).unwrap(),
                name: format!("r{i}"),
                zone: if i <= 3 { "a".into() } else { "b".into() },
                households: 300,
            })
            .collect();
        let today = d(2028, 3, 2);
        let ledger: Vec<(RoomId, Date, DayFigures)> = rooms
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                // Room 6 uses twice the energy of the others (per 100 m³ at 0.45 MPa:
                // 10 kWh, others 5 + i·0.1).
                let kwh = if i == 5 { 10.0 } else { 5.0 + i as f64 * 0.1 };
                [d(2027, 3, 1), d(2028, 2, 29), d(2028, 3, 1)].map(|date| {
                    let k = if date == d(2028, 2, 29) {
                        kwh / 2.0
                    } else {
                        kwh
                    };
                    (r.id.clone(), date, day(k, 100.0, 0.45))
                })
            })
            .collect();
        let r = report(
            &rooms,
            Period::day(d(2028, 3, 1)),
            today,
            |from, to, visit| {
                for (room, date, f) in &ledger {
                    if from <= *date && *date <= to {
                        visit(room, *date, f);
                    }
                }
            },
        )
        .unwrap();
        assert_eq!(r.previous, (d(2028, 2, 29), d(2028, 2, 29)));
        assert_eq!(r.year_ago, (d(2027, 3, 1), d(2027, 3, 1)));
        let total: f64 = (0..5).map(|i| 5.0 + i as f64 * 0.1).sum::<f64>() + 10.0;
        assert!((r.fleet.figures.kwh.unwrap() - total).abs() < 1e-9);
        // 环比: twice the day before; 同比: the same.
        assert!((r.fleet.mom.kwh_pct.unwrap() - 100.0).abs() < 1e-9);
        assert!(r.fleet.yoy.kwh_pct.unwrap().abs() < 1e-9);
        assert_eq!(r.zones.len(), 2);
        assert_eq!(r.days.len(), 1);
        let six = &r.rooms[5];
        assert!(matches!(
            six.peers,
            Some(PeerVerdict::Scored { outlier: true, .. })
        ));
        assert!(six
            .reason_en
            .as_deref()
            .unwrap_or("")
            .starts_with("XM-0006 uses"));
        assert!(r.rooms[0].reason_en.is_none());
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("NaN") && !json.contains("null,"));
    }

    /// The figure of issue 22: the report of a year by day for 2,100 rooms, the ledger held
    /// in memory as the service holds it (a year and the year before for 同比). Run with
    /// `cargo test -p cistern --lib energy_report::tests::measure -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn measure_a_year_of_2100_rooms_by_day() {
        let rooms: Vec<RoomInfo> = (1..=2100)
            .map(|i| RoomInfo {
                id: RoomId::new(&format!("XM-{i:04}")).unwrap(),
                name: String::new(),
                zone: format!("z{}", i % 7),
                households: 100 + (i as u32 * 37) % 2000,
            })
            .collect();
        let first = d(2026, 1, 1);
        let ledger: Vec<Vec<DayFigures>> = rooms
            .iter()
            .enumerate()
            .map(|(i, _)| {
                (0..730)
                    .map(|k| {
                        day(
                            50.0 + (i + k) as f64 % 13.0,
                            200.0,
                            0.3 + (i % 5) as f64 * 0.05,
                        )
                    })
                    .collect()
            })
            .collect();
        let mut runs = Vec::new();
        for _ in 0..5 {
            let t = std::time::Instant::now();
            let r = report(
                &rooms,
                Period::parse("2027").unwrap(),
                d(2028, 1, 5),
                |from, to, visit| {
                    for (room, days) in rooms.iter().zip(&ledger) {
                        for (k, f) in days.iter().enumerate() {
                            let date = first.plus_days(k as i32);
                            if from <= date && date <= to {
                                visit(&room.id, date, f);
                            }
                        }
                    }
                },
            )
            .unwrap();
            runs.push(t.elapsed());
            assert_eq!((r.rooms.len(), r.days.len()), (2100, 365));
        }
        runs.sort();
        println!(
            "energy report, 2,100 rooms x 365 days by day (+365 for 同比): median {:?}, min {:?}",
            runs[2], runs[0]
        );
    }
}
