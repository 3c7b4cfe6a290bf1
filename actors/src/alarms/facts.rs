//! Building the rules' view of a room from the actors' point tables.
//!
//! A device actor converts its table into [`PointFacts`] after every change of its live state
//! (a batch applied, a point turned stale, a derived value moved) and sends it to its room as
//! [`DeviceChanged`]; the room merges it into its [`RoomFacts`] mirror and marks in a
//! [`Touched`] exactly the facts that differ, so that only the rules reading them run.

use crate::device::PointTable;
use actix::Message;
use cistern_rules::{PointFact, PointFacts, PumpStatus, RoomFacts, Touched};
use cistern_schemas::{DeviceUnit, QualityLevel, Timestamp};

/// Derived facts a device computes for its room's rules (beyond its points).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum DerivedFacts {
    #[default]
    None,
    Tank {
        level_pct: Option<f64>,
        volume_m3: Option<f64>,
        autonomy_h: Option<f64>,
        level_rate_m_h: Option<f64>,
    },
}

/// A child's live state for its room's rules, sent after every change.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct DeviceChanged {
    pub unit: DeviceUnit,
    pub points: PointFacts,
    pub derived: DerivedFacts,
}

/// Asks a device to report its facts now (its room restarted, or refreshes time-based facts).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ReportFacts;

/// Writes a point table into `out` (same catalog order). A point never received is unknown;
/// a bad point without a value (a Modbus exception) is known, bad, and NaN.
pub(crate) fn fill_points(table: &PointTable, out: &mut PointFacts, now: Timestamp) {
    for (i, p) in table.points().iter().enumerate() {
        let fact = match (p.value, p.t) {
            (None, None) => None,
            (value, _) => Some(PointFact {
                value: value.unwrap_or(f64::NAN),
                quality: p.quality.level,
                stale: p.quality.level == QualityLevel::Stale,
                flat_s: table
                    .unchanged_since(i)
                    .map_or(0.0, |t| now.since(t).as_secs_f64()),
            }),
        };
        out.set_index(i, fact);
    }
}

/// Bits of the points whose value, quality or staleness differ (`flat_s` alone does not
/// count: it grows every second and the periodic refresh covers it).
fn diff(old: &PointFacts, new: &PointFacts) -> u64 {
    let mut mask = 0u64;
    for i in 0..new.kind().points().len().min(64) {
        let same = match (old.get_index(i), new.get_index(i)) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.value.to_bits() == b.value.to_bits()
                    && a.quality == b.quality
                    && a.stale == b.stale
            }
            _ => false,
        };
        if !same {
            mask |= 1 << i;
        }
    }
    mask
}

/// Merges a device's report into the room's facts and marks what changed.
pub(crate) fn merge_device(facts: &mut RoomFacts, msg: DeviceChanged, touched: &mut Touched) {
    let unit = msg.unit;
    let mark = |touched: &mut Touched, name: &str| {
        if let Err(error) = touched.fact(unit, name) {
            tracing::error!(device = %unit, %error, "derived fact missing from the catalog");
        }
    };
    match unit {
        DeviceUnit::Room => {}
        DeviceUnit::Pump(n) => {
            let Some(p) = facts.pumps.iter_mut().find(|p| p.n == n) else {
                return;
            };
            touched.points(unit, diff(&p.points, &msg.points));
            p.points = msg.points;
            let status = PumpStatus::from_points(&p.points);
            if status != p.status {
                p.status = status;
                mark(touched, "status");
            }
        }
        DeviceUnit::Tank(n) => {
            let Some(t) = facts.tanks.iter_mut().find(|t| t.n == n) else {
                return;
            };
            touched.points(unit, diff(&t.points, &msg.points));
            t.points = msg.points;
            if let DerivedFacts::Tank {
                level_pct,
                volume_m3,
                autonomy_h,
                level_rate_m_h,
            } = msg.derived
            {
                let mut set = |slot: &mut Option<f64>, v: Option<f64>, name: &str| {
                    if slot.map(f64::to_bits) != v.map(f64::to_bits) {
                        *slot = v;
                        mark(touched, name);
                    }
                };
                set(&mut t.level_pct, level_pct, "level_pct");
                set(&mut t.volume_m3, volume_m3, "volume_m3");
                set(&mut t.autonomy_h, autonomy_h, "autonomy_h");
                set(&mut t.level_rate_m_h, level_rate_m_h, "level_rate_m_h");
            }
        }
        DeviceUnit::Camera(n) => {
            let Some(c) = facts.cameras.iter_mut().find(|c| c.n == n) else {
                return;
            };
            touched.points(unit, diff(&c.points, &msg.points));
            c.points = msg.points;
        }
    }
}

/// Writes the room's own table into its facts and marks what changed.
pub(crate) fn merge_room(
    facts: &mut RoomFacts,
    table: &PointTable,
    now: Timestamp,
    touched: &mut Touched,
) {
    let mut fresh = PointFacts::new(facts.points.kind());
    fill_points(table, &mut fresh, now);
    touched.points(DeviceUnit::Room, diff(&facts.points, &fresh));
    facts.points = fresh;
}
