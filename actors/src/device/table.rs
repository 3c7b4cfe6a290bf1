//! The live point table of one device, and the rules for applying samples to it.
//!
//! Per point: a sample newer than the latest one becomes the live value; one with the same
//! timestamp is a duplicate (QoS 1 redelivery, a repeated replay) and is dropped and counted;
//! an older one is a backfill: it does not touch live state but goes to the historian, whose
//! store is idempotent by point and timestamp. A sample stamped further ahead of `now` than the
//! allowed clock skew is refused whole (neither live nor history, counted as `future`): a
//! clock that runs fast would otherwise pin the live value until real time caught up with it,
//! and every real sample meanwhile would count as an older backfill. Pure logic: `now` is an
//! argument.

use cistern_schemas::reading::{PointValue, Record};
use cistern_schemas::{PointSpec, Quality, QualityLevel, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The live state of one point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointState {
    pub value: Option<f64>,
    pub quality: Quality,
    /// Source timestamp of `value`.
    pub t: Option<Timestamp>,
}

impl Default for PointState {
    fn default() -> Self {
        Self {
            value: None,
            quality: Quality::stale("no data received yet"),
            t: None,
        }
    }
}

/// What applying a batch did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyOutcome {
    /// Values newer than the live ones, now live; grouped by record.
    pub live: Vec<Record>,
    /// Values older than the live ones, for the historian only.
    pub backfill: Vec<Record>,
    /// Values whose point already had a sample at that timestamp.
    pub duplicates: usize,
    /// Values stamped beyond `now` + the allowed clock skew: refused.
    pub future: usize,
    /// The newest source time among the accepted values of good quality.
    pub newest_good: Option<Timestamp>,
}

impl ApplyOutcome {
    pub fn live_count(&self) -> usize {
        self.live.iter().map(|r| r.values.len()).sum()
    }

    pub fn backfill_count(&self) -> usize {
        self.backfill.iter().map(|r| r.values.len()).sum()
    }
}

/// A device's state as saved for recovery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceSnapshot {
    pub taken_at: Timestamp,
    pub points: Vec<PointState>,
}

/// A point as shown to operators.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointView {
    pub name: &'static str,
    pub unit: &'static str,
    pub value: Option<f64>,
    pub quality: Quality,
    pub t: Option<Timestamp>,
}

/// A [`PointView`] as read back (a view from another cluster node).
#[derive(Deserialize)]
struct PointViewRead {
    name: String,
    unit: String,
    value: Option<f64>,
    quality: Quality,
    t: Option<Timestamp>,
}

impl<'de> Deserialize<'de> for PointView {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PointViewRead::deserialize(d)?
            .try_into()
            .map_err(serde::de::Error::custom)
    }
}

impl TryFrom<PointViewRead> for PointView {
    type Error = String;

    /// The name and unit become the catalog's own text, so that a view holds no allocation
    /// of its own; a word the catalog does not have is refused.
    fn try_from(r: PointViewRead) -> Result<Self, String> {
        use cistern_schemas::catalog::{CAMERA_POINTS, PUMP_POINTS, ROOM_POINTS, TANK_POINTS};
        let specs = || {
            [ROOM_POINTS, PUMP_POINTS, TANK_POINTS, CAMERA_POINTS]
                .into_iter()
                .flat_map(|points| points.iter())
        };
        let name = specs()
            .find(|p| p.name == r.name)
            .map(|p| p.name)
            .ok_or_else(|| format!("no point {:?} in the catalog", r.name))?;
        let unit = specs()
            .find(|p| p.unit == r.unit)
            .map(|p| p.unit)
            .ok_or_else(|| format!("no unit {:?} in the catalog", r.unit))?;
        Ok(PointView {
            name,
            unit,
            value: r.value,
            quality: r.quality,
            t: r.t,
        })
    }
}

/// How many recent sample instants a device remembers for exact de-duplication (at a 2 s
/// period, about two minutes: the span of QoS 1 redeliveries and of a gateway's repeated
/// replay of its last messages). Older repeats are passed on as backfill and the store's
/// idempotent writes absorb them.
pub const DEDUP_WINDOW: usize = 64;

/// Live state of every point of one device, aligned with its specs.
#[derive(Clone, Debug)]
pub struct PointTable {
    specs: Arc<[PointSpec]>,
    points: Vec<PointState>,
    /// Per point, the source time its value last changed (flat-line detection).
    changed_at: Vec<Option<Timestamp>>,
    /// Recently accepted instants, ascending, each with a bit per point index accepted at it.
    recent: std::collections::VecDeque<(Timestamp, u64)>,
}

impl PointTable {
    pub fn new(specs: Arc<[PointSpec]>) -> Self {
        let points = vec![PointState::default(); specs.len()];
        Self {
            changed_at: vec![None; specs.len()],
            specs,
            points,
            recent: std::collections::VecDeque::with_capacity(DEDUP_WINDOW),
        }
    }

    pub fn specs(&self) -> &[PointSpec] {
        &self.specs
    }

    pub fn points(&self) -> &[PointState] {
        &self.points
    }

    /// How old a sample may be and still be fresh.
    fn stale_after(spec: &PointSpec, stale_periods: u32) -> std::time::Duration {
        spec.period * stale_periods
    }

    /// Applies records (sorted by time) received at `now`; those stamped after
    /// `now + max_future_skew` are refused (see the module doc).
    pub fn apply(
        &mut self,
        records: &[Record],
        now: Timestamp,
        stale_periods: u32,
        max_future_skew: std::time::Duration,
    ) -> ApplyOutcome {
        let mut out = ApplyOutcome::default();
        let latest = now + max_future_skew;
        for rec in records {
            if rec.t > latest {
                out.future += rec.values.len();
                continue;
            }
            let mut live = Vec::new();
            let mut backfill = Vec::new();
            for pv in &rec.values {
                let i = usize::from(pv.index);
                let (Some(state), Some(spec)) = (self.points.get_mut(i), self.specs.get(i)) else {
                    continue;
                };
                let bit = 1u64 << (i % 64);
                match state.t {
                    // At or before the live value's instant: a duplicate if this table has seen
                    // the instant (the recent window), else backfill. Even the live value's own
                    // instant goes on when it was restored from a snapshot: the snapshot is
                    // written behind, so after a kill it may hold a sample that never became
                    // durable, and the broker's redelivery of it must reach history (the store's
                    // idempotent writes absorb it if it was there after all).
                    Some(t) if rec.t <= t => {
                        if remember(&mut self.recent, rec.t, bit) {
                            backfill.push(pv.clone());
                        } else {
                            out.duplicates += 1;
                        }
                    }
                    _ => {
                        remember(&mut self.recent, rec.t, bit);
                        let age = now.since(rec.t);
                        let limit = Self::stale_after(spec, stale_periods);
                        let quality = if age > limit {
                            Quality::stale(format!("sample is {} s old", age.as_secs()))
                        } else {
                            pv.quality.clone()
                        };
                        // A bad point may come without a value (a Modbus exception): hold
                        // none rather than a NaN every consumer would have to guard against.
                        let value = pv.value.is_finite().then_some(pv.value);
                        if value.map(f64::to_bits) != state.value.map(f64::to_bits) {
                            if let Some(c) = self.changed_at.get_mut(i) {
                                *c = Some(rec.t);
                            }
                        }
                        if quality.is_good() && value.is_some() {
                            out.newest_good = out.newest_good.max(Some(rec.t));
                        }
                        *state = PointState {
                            value,
                            quality,
                            t: Some(rec.t),
                        };
                        live.push(pv.clone());
                    }
                }
            }
            if !live.is_empty() {
                out.live.push(Record {
                    t: rec.t,
                    values: live,
                });
            }
            if !backfill.is_empty() {
                out.backfill.push(Record {
                    t: rec.t,
                    values: backfill,
                });
            }
        }
        out
    }

    /// Marks points not updated within `stale_periods` × their period as stale. Returns how
    /// many points changed quality.
    pub fn sweep(&mut self, now: Timestamp, stale_periods: u32) -> usize {
        let mut changed = 0;
        for (state, spec) in self.points.iter_mut().zip(self.specs.iter()) {
            if state.quality.level == QualityLevel::Stale {
                continue;
            }
            let Some(t) = state.t else { continue };
            let age = now.since(t);
            if age > Self::stale_after(spec, stale_periods) {
                state.quality = Quality::stale(format!(
                    "not updated for {} s (expected every {} s)",
                    age.as_secs(),
                    spec.period.as_secs_f64()
                ));
                changed += 1;
            }
        }
        changed
    }

    /// The source time the value of point `index` last changed (`None` before any value).
    pub fn unchanged_since(&self, index: usize) -> Option<Timestamp> {
        self.changed_at.get(index).copied().flatten()
    }

    /// The value of a point by name, whatever its quality.
    pub fn value(&self, name: &str) -> Option<f64> {
        let i = self.specs.iter().position(|s| s.name == name)?;
        self.points[i].value
    }

    /// The value of a point by name, only when its quality is good.
    pub fn good_value(&self, name: &str) -> Option<f64> {
        let i = self.specs.iter().position(|s| s.name == name)?;
        let p = &self.points[i];
        p.quality.is_good().then_some(p.value).flatten()
    }

    /// A digital point by name, only when good.
    pub fn good_flag(&self, name: &str) -> Option<bool> {
        self.good_value(name).map(|v| v != 0.0)
    }

    /// Counts of points by quality level: (bad or uncertain, stale).
    pub fn quality_counts(&self) -> (usize, usize) {
        let mut bad = 0;
        let mut stale = 0;
        for p in &self.points {
            match p.quality.level {
                QualityLevel::Good => {}
                QualityLevel::Stale => stale += 1,
                QualityLevel::Bad | QualityLevel::Uncertain => bad += 1,
            }
        }
        (bad, stale)
    }

    pub fn snapshot(&self, now: Timestamp) -> DeviceSnapshot {
        DeviceSnapshot {
            taken_at: now,
            points: self.points.clone(),
        }
    }

    /// Restores from a snapshot. A snapshot of a different shape (the catalog changed since it
    /// was taken) is ignored whole: its indices no longer mean the same points. A point whose
    /// saved sample is stamped after `now + max_future_skew` (saved before the limit existed,
    /// or by a node whose clock ran fast) is not restored: it would pin the live value.
    pub fn restore(
        &mut self,
        snap: &DeviceSnapshot,
        now: Timestamp,
        max_future_skew: std::time::Duration,
    ) -> bool {
        if snap.points.len() != self.points.len() {
            return false;
        }
        let latest = now + max_future_skew;
        self.points = (snap.points.iter())
            .map(|p| match p.t {
                Some(t) if t > latest => PointState::default(),
                _ => p.clone(),
            })
            .collect();
        // Unknown since when the values have been flat: count from their sample time.
        self.changed_at = self.points.iter().map(|p| p.t).collect();
        true
    }

    pub fn views(&self) -> Vec<PointView> {
        self.specs
            .iter()
            .zip(self.points.iter())
            .map(|(s, p)| PointView {
                name: s.name,
                unit: s.unit,
                value: p.value,
                quality: p.quality.clone(),
                t: p.t,
            })
            .collect()
    }
}

/// Notes that the point `bit` was accepted at `t`; false when it already was. Instants older
/// than the window are not remembered (and are reported as new: the store de-duplicates them).
fn remember(
    recent: &mut std::collections::VecDeque<(Timestamp, u64)>,
    t: Timestamp,
    bit: u64,
) -> bool {
    match recent.binary_search_by_key(&t, |e| e.0) {
        Ok(i) => {
            let seen = recent[i].1 & bit != 0;
            recent[i].1 |= bit;
            !seen
        }
        Err(0) if recent.len() >= DEDUP_WINDOW => true,
        Err(i) => {
            recent.insert(i, (t, bit));
            if recent.len() > DEDUP_WINDOW {
                recent.pop_front();
            }
            true
        }
    }
}

/// Builds a record from `(index, value)` pairs with good quality (tests and the simulator).
pub fn good_record(t: Timestamp, values: &[(usize, f64)]) -> Record {
    Record {
        t,
        values: values
            .iter()
            .map(|&(i, v)| PointValue {
                index: i as u16,
                value: v,
                quality: Quality::GOOD,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cistern_schemas::DeviceKind;

    fn table() -> PointTable {
        let specs: Vec<PointSpec> = DeviceKind::Tank.points().to_vec();
        PointTable::new(specs.into())
    }

    const T0: Timestamp = Timestamp(1_763_700_000_000);
    const SKEW: std::time::Duration = std::time::Duration::from_secs(5);

    fn at(s: i64) -> Timestamp {
        Timestamp(T0.0 + s * 1000)
    }

    #[test]
    fn newer_applies_same_is_duplicate_older_is_backfill() {
        let mut t = table();
        let out = t.apply(
            &[
                good_record(at(0), &[(0, 2.0)]),
                good_record(at(2), &[(0, 2.1)]),
            ],
            at(2),
            3,
            SKEW,
        );
        assert_eq!(out.live_count(), 2);
        assert_eq!(t.value("level"), Some(2.1));
        let out = t.apply(&[good_record(at(2), &[(0, 2.1)])], at(3), 3, SKEW);
        assert_eq!(
            (out.live_count(), out.duplicates, out.backfill_count()),
            (0, 1, 0)
        );
        let out = t.apply(&[good_record(at(1), &[(0, 2.05)])], at(3), 3, SKEW);
        assert_eq!(
            (out.live_count(), out.duplicates, out.backfill_count()),
            (0, 0, 1)
        );
        assert_eq!(
            t.value("level"),
            Some(2.1),
            "a backfill never rewinds live state"
        );
        // a redelivery of older samples, the backfill included, is recognised
        let again = [
            good_record(at(0), &[(0, 2.0)]),
            good_record(at(1), &[(0, 2.05)]),
        ];
        let out = t.apply(&again, at(4), 3, SKEW);
        assert_eq!(
            (out.live_count(), out.duplicates, out.backfill_count()),
            (0, 2, 0)
        );
        // another point at an instant already seen is not a duplicate
        let out = t.apply(&[good_record(at(3), &[(1, 1.0)])], at(4), 3, SKEW);
        assert_eq!(out.live_count(), 1);
        let out = t.apply(&[good_record(at(0), &[(1, 0.0)])], at(4), 3, SKEW);
        assert_eq!((out.duplicates, out.backfill_count()), (0, 1));
    }

    #[test]
    fn catalogs_fit_the_dedup_mask() {
        for kind in [
            DeviceKind::Room,
            DeviceKind::Pump,
            DeviceKind::Tank,
            DeviceKind::Camera,
        ] {
            assert!(
                kind.points().len() <= 64,
                "{kind}: the dedup window keeps one bit per point"
            );
        }
    }

    #[test]
    fn the_dedup_window_is_bounded() {
        let mut t = table();
        for s in 0..(DEDUP_WINDOW as i64 * 3) {
            t.apply(&[good_record(at(s), &[(0, 1.0)])], at(s), 3, SKEW);
        }
        assert_eq!(t.recent.len(), DEDUP_WINDOW);
    }

    #[test]
    fn a_bad_point_without_a_value_holds_none() {
        let mut t = table();
        let rec = Record {
            t: at(0),
            values: vec![PointValue {
                index: 0,
                value: f64::NAN,
                quality: Quality::bad("modbus exception"),
            }],
        };
        t.apply(&[rec], at(0), 3, SKEW);
        assert_eq!(t.value("level"), None);
        assert_eq!(t.points()[0].quality.level, QualityLevel::Bad);
    }

    #[test]
    fn silent_points_turn_stale_after_three_periods() {
        let mut t = table();
        t.apply(&[good_record(at(0), &[(0, 2.0)])], at(0), 3, SKEW);
        assert_eq!(t.sweep(at(6), 3), 0, "exactly 3 periods is still fresh");
        assert_eq!(t.sweep(at(7), 3), 1);
        assert_eq!(t.points()[0].quality.level, QualityLevel::Stale);
        assert_eq!(t.good_value("level"), None);
        // a fresh sample makes it good again
        t.apply(&[good_record(at(8), &[(0, 2.0)])], at(8), 3, SKEW);
        assert!(t.points()[0].quality.is_good());
    }

    #[test]
    fn replayed_old_samples_stay_stale() {
        let mut t = table();
        let out = t.apply(&[good_record(at(0), &[(0, 2.0)])], at(60), 3, SKEW);
        assert_eq!(out.live_count(), 1);
        assert_eq!(t.points()[0].quality.level, QualityLevel::Stale);
        assert_eq!(t.value("level"), Some(2.0));
    }

    /// A kill -9 between a snapshot's write-behind and the write-ahead's: the snapshot holds a
    /// sample history never got. Its redelivery after the restart reaches history (backfill),
    /// rather than being dropped as a duplicate of the restored live value; a second
    /// redelivery of it is a duplicate.
    #[test]
    fn a_redelivered_sample_at_the_restored_instant_goes_on_to_history() {
        let mut before = table();
        before.apply(&[good_record(at(2), &[(0, 2.1)])], at(2), 3, SKEW);
        let snap = before.snapshot(at(2));
        let mut after = table();
        assert!(after.restore(&snap, at(5), SKEW));
        assert_eq!(after.value("level"), Some(2.1));
        let out = after.apply(&[good_record(at(2), &[(0, 2.1)])], at(5), 3, SKEW);
        assert_eq!(
            (out.live_count(), out.duplicates, out.backfill_count()),
            (0, 0, 1)
        );
        let out = after.apply(&[good_record(at(2), &[(0, 2.1)])], at(6), 3, SKEW);
        assert_eq!(
            (out.live_count(), out.duplicates, out.backfill_count()),
            (0, 1, 0)
        );
    }

    #[test]
    fn snapshots_restore_only_matching_shapes() {
        let mut t = table();
        t.apply(&[good_record(at(0), &[(0, 2.0), (1, 1.0)])], at(0), 3, SKEW);
        let snap = t.snapshot(at(1));
        let mut fresh = table();
        assert!(fresh.restore(&snap, at(1), SKEW));
        assert_eq!(fresh.value("inlet_valve"), Some(1.0));
        let other = PointTable::new(DeviceKind::Camera.points().to_vec().into()).snapshot(at(1));
        assert!(!fresh.restore(&other, at(1), SKEW));
    }

    #[test]
    fn a_future_stamped_sample_never_becomes_live_and_real_samples_follow() {
        let mut t = table();
        t.apply(&[good_record(at(0), &[(0, 2.0)])], at(0), 3, SKEW);
        // A gateway stamps one record 270 s ahead of the node's clock.
        let out = t.apply(&[good_record(at(271), &[(0, 0.011)])], at(1), 3, SKEW);
        assert_eq!(
            (out.live_count(), out.backfill_count(), out.future),
            (0, 0, 1)
        );
        assert_eq!(t.value("level"), Some(2.0), "the live value is not pinned");
        // The real samples that follow are live, not backfill.
        for s in 2..5 {
            let out = t.apply(
                &[good_record(at(s), &[(0, 2.0 + s as f64 / 10.0)])],
                at(s),
                3,
                SKEW,
            );
            assert_eq!(out.live_count(), 1, "at {s} s");
        }
        assert_eq!(t.value("level"), Some(2.4));
        // Within the allowed skew a sample is taken as it is.
        let out = t.apply(&[good_record(at(9), &[(0, 2.5)])], at(5), 3, SKEW);
        assert_eq!((out.live_count(), out.future), (1, 0));
        assert_eq!(out.newest_good, Some(at(9)));
    }

    #[test]
    fn a_snapshot_never_restores_a_future_stamped_value() {
        let mut t = table();
        t.apply(
            &[
                good_record(at(0), &[(1, 1.0)]),
                good_record(at(300), &[(0, 0.011)]),
            ],
            at(300),
            3,
            SKEW,
        );
        let snap = t.snapshot(at(300));
        // The node restarts with its clock at 10 s (the snapshot was taken by a clock 290 s
        // ahead of it): the future value is dropped, the other point kept.
        let mut fresh = table();
        assert!(fresh.restore(&snap, at(10), SKEW));
        assert_eq!(fresh.value("level"), None);
        assert_eq!(fresh.points()[0].quality.level, QualityLevel::Stale);
        assert_eq!(fresh.value("inlet_valve"), Some(1.0));
        let out = fresh.apply(&[good_record(at(11), &[(0, 2.0)])], at(11), 3, SKEW);
        assert_eq!(out.live_count(), 1);
    }
}
