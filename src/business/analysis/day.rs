//! A room's day: the 1-minute rollups of the points the analyses read ([`DaySeries`]), and the
//! facts computed from them once the day closes ([`RoomDay`]).
//!
//! The live platform loads a `DaySeries` from the historian's rollups
//! ([`DaySeries::load`]); `cistern bench analysis` fills one from the simulator in simulated
//! time ([`DaySeries::add`]). Both hand it to [`compute_day`], so the figures the benchmark
//! checks against the simulator's physics are those the platform shows.
//!
//! Days are local days (`[analysis] utc_offset_minutes`); a bucket belongs to the day its start
//! falls in. Only finite samples reach the historian, so every bucket holds good readings.

use super::{efficiency, energy, leakage, quality, AnalysisConfig};
use crate::business::assets::archive::RoomArchive;
use crate::historian::rollup::{Bucket, MINUTE_MS};
use crate::historian::Historian;
use crate::store::StoreError;
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::{Date, DeviceId, DeviceKind, DeviceUnit, PointId, RoomId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The room-level points the analyses read.
pub const ROOM_POINTS: &[&str] = &[
    "energy",
    "active_power",
    "outlet_volume",
    "outlet_flow",
    "outlet_pressure",
    "inlet_volume",
    "inlet_flow",
    "inlet_pressure",
    "turbidity",
    "chlorine",
    "ph",
];
/// The points read of each pump.
pub const PUMP_POINTS: &[&str] = &["running", "frequency", "power", "run_hours", "starts"];
/// The points read of each tank.
pub const TANK_POINTS: &[&str] = &["level", "inlet_valve", "overflow"];

/// The points of `unit` the analyses read.
pub fn points_of(unit: DeviceUnit) -> &'static [&'static str] {
    match unit.kind() {
        DeviceKind::Room => ROOM_POINTS,
        DeviceKind::Pump => PUMP_POINTS,
        DeviceKind::Tank => TANK_POINTS,
        DeviceKind::Camera => &[],
    }
}

/// The devices of a room that carry points the analyses read: the room, its pumps, its tanks.
pub fn units_of(spec: &RoomSpec) -> Vec<DeviceUnit> {
    let mut units = vec![DeviceUnit::Room];
    units.extend((1..=spec.pumps.len()).map(|i| DeviceUnit::Pump(i as u8)));
    units.extend((1..=spec.tanks.len()).map(|i| DeviceUnit::Tank(i as u8)));
    units
}

/// One room's local day of 1-minute buckets, by device and point name. Minutes without a
/// sample have no bucket.
#[derive(Clone, Debug)]
pub struct DaySeries {
    pub room: RoomId,
    pub date: Date,
    /// The day's first and last millisecond + 1 (UTC ms): `[from_ms, to_ms)`.
    pub from_ms: i64,
    pub to_ms: i64,
    series: HashMap<(DeviceUnit, &'static str), Vec<Bucket>>,
}

impl DaySeries {
    /// An empty day of `room` (local day `date` at `utc_offset_minutes`).
    pub fn new(room: RoomId, date: Date, utc_offset_minutes: i32) -> Self {
        let from_ms = date.start(utc_offset_minutes).0;
        let to_ms = date.plus_days(1).start(utc_offset_minutes).0;
        Self {
            room,
            date,
            from_ms,
            to_ms,
            series: HashMap::new(),
        }
    }

    /// The buckets of `unit`'s point `name`, in start order (empty when it has none).
    pub fn get(&self, unit: DeviceUnit, name: &str) -> &[Bucket] {
        self.series
            .iter()
            .find(|((u, n), _)| *u == unit && *n == name)
            .map(|(_, b)| b.as_slice())
            .unwrap_or(&[])
    }

    /// Sets the buckets of a point (sorted by start; those outside the day are dropped).
    pub fn insert(&mut self, unit: DeviceUnit, name: &'static str, mut buckets: Vec<Bucket>) {
        buckets.retain(|b| b.start >= self.from_ms && b.start < self.to_ms);
        buckets.sort_by_key(|b| b.start);
        self.series.insert((unit, name), buckets);
    }

    /// Adds one sample (the simulated-time path): it joins its minute's bucket. Samples must
    /// come in time order per point; samples outside the day or not finite are ignored.
    pub fn add(&mut self, unit: DeviceUnit, name: &'static str, t: i64, v: f64) {
        if t < self.from_ms || t >= self.to_ms || !v.is_finite() {
            return;
        }
        let start = t.div_euclid(MINUTE_MS) * MINUTE_MS;
        let buckets = self.series.entry((unit, name)).or_default();
        match buckets.last_mut() {
            Some(last) if last.start == start => last.add(t, v),
            _ => buckets.push(Bucket::of(start, t, v)),
        }
    }

    /// The day's 1-minute buckets of the points the analyses read, from the historian's
    /// rollups (and raw samples where an hour is not rolled up yet).
    pub async fn load(
        historian: &Historian,
        spec: &RoomSpec,
        date: Date,
        utc_offset_minutes: i32,
    ) -> Result<Self, StoreError> {
        let mut day = Self::new(spec.id.clone(), date, utc_offset_minutes);
        let (from, to) = (Timestamp(day.from_ms), Timestamp(day.to_ms - 1));
        for unit in units_of(spec) {
            let device = DeviceId::new(spec.id.clone(), unit);
            for &name in points_of(unit) {
                let point = PointId {
                    device: device.clone(),
                    name: Arc::from(name),
                };
                let buckets = historian
                    .history_step(&point, from, to, Duration::from_millis(MINUTE_MS as u64))
                    .await?;
                day.insert(unit, name, buckets);
            }
        }
        Ok(day)
    }
}

/// What a room's analyses know of it besides its samples.
#[derive(Clone, Copy, Debug)]
pub struct RoomContext<'a> {
    pub spec: &'a RoomSpec,
    /// The room's archive (nameplates with curves), when it has one.
    pub archive: Option<&'a RoomArchive>,
    pub config: &'a AnalysisConfig,
}

/// A room's facts for one local day: what every report reads instead of the samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomDay {
    pub room: RoomId,
    pub date: Date,
    /// The day was complete when computed (closed); a live day is recomputed until it is.
    pub closed: bool,
    pub energy: energy::EnergyDay,
    pub pumps: Vec<efficiency::PumpDay>,
    pub night: leakage::NightFlow,
    pub operation: quality::OperationDay,
}

/// The day's headline figures: small, kept in memory for the whole fleet and retained period
/// (the ledger every report and ranking reads), derived from a [`RoomDay`] by each analysis'
/// `figures`. `None`: the day's data could not give the figure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DayFigures {
    /// Energy used, kWh, and the share of the day the meter's deltas covered (0..1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh_coverage: Option<f64>,
    /// Water delivered at the booster outlet, m³, and the share of the day covered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m3: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m3_coverage: Option<f64>,
    /// Water taken in from the mains, m³.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inlet_m3: Option<f64>,
    /// Flow-weighted mean lift (outlet − suction), MPa.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lift_mpa: Option<f64>,
    /// kWh/m³ and kWh per 1,000 m³·MPa; pump-set efficiency = 278 / the latter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh_per_m3: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh_per_kt_mpa: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_efficiency: Option<f64>,
    /// Run-time-weighted mean pump efficiency from the curves (0..1), the share of run time
    /// inside 70-120 % of BEP flow, and the kWh the day would have saved at the best point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pump_efficiency: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub por_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_kwh: Option<f64>,
    /// Minimum night flow, legitimate night use (m³/h), the leak index and the overflow
    /// minutes (inflow while full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mnf_m3h: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legit_m3h: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak_index: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow_minutes: Option<f64>,
    /// Water-quality compliance (share of samples within limits), data completeness
    /// (received / expected samples) and availability (share of the day supplying), 0..1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality_compliance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completeness: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<f64>,
}

impl RoomDay {
    /// The day's headline figures.
    pub fn figures(&self) -> DayFigures {
        let mut f = DayFigures::default();
        energy::figures(&self.energy, &mut f);
        efficiency::figures(&self.pumps, &mut f);
        leakage::figures(&self.night, &mut f);
        quality::figures(&self.operation, &mut f);
        f
    }
}

/// A room's facts for the day of `series`.
pub fn compute_day(series: &DaySeries, ctx: &RoomContext<'_>, closed: bool) -> RoomDay {
    RoomDay {
        room: series.room.clone(),
        date: series.date,
        closed,
        energy: energy::compute(series, ctx),
        pumps: efficiency::compute(series, ctx),
        night: leakage::compute(series, ctx),
        operation: quality::compute(series, ctx),
    }
}
