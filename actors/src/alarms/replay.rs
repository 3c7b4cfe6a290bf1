//! A room's rule inputs rebuilt from a series of readings without actors: the same point
//! tables, the same conversion to facts and the same derived values as the live room actor,
//! driven by the caller's clock. `cistern rules backtest` replays stored history or a seeded
//! simulator run through it.

use super::facts::{fill_points, merge_device, merge_room, DeviceChanged};
use crate::device::messages::RoomObserved;
use crate::device::{DeviceBehaviour, PointTable};
use crate::tank::TankBehaviour;
use crate::ActorConfig;
use cistern_rules::{PointFacts, RoomFacts, Touched};
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::reading::Record;
use cistern_schemas::{DeviceUnit, PointSpec, Timestamp};
use std::sync::Arc;

/// One room's facts, fed record by record (see the module doc).
#[derive(Debug)]
pub struct RoomReplay {
    spec: Arc<RoomSpec>,
    config: ActorConfig,
    room: PointTable,
    /// Pumps, tanks and cameras, in inventory order.
    devices: Vec<(DeviceUnit, PointTable)>,
    tanks: Vec<TankBehaviour>,
    facts: RoomFacts,
    touched: Touched,
    last_seen: Option<Timestamp>,
}

impl RoomReplay {
    pub fn new(spec: Arc<RoomSpec>, config: ActorConfig) -> Self {
        let table = |unit: DeviceUnit| {
            let specs: Arc<[PointSpec]> = spec.point_specs(unit).into();
            PointTable::new(specs)
        };
        let mut devices = Vec::new();
        for n in 1..=spec.pumps.len() as u8 {
            devices.push((DeviceUnit::Pump(n), table(DeviceUnit::Pump(n))));
        }
        for n in 1..=spec.tanks.len() as u8 {
            devices.push((DeviceUnit::Tank(n), table(DeviceUnit::Tank(n))));
        }
        for n in 1..=spec.cameras.len() as u8 {
            devices.push((DeviceUnit::Camera(n), table(DeviceUnit::Camera(n))));
        }
        let mut facts = RoomFacts::new(
            spec.id.clone(),
            spec.pumps.len() as u8,
            spec.tanks.len() as u8,
            spec.cameras.len() as u8,
        );
        facts.setpoint_mpa = Some(spec.outlet_setpoint_mpa);
        Self {
            room: table(DeviceUnit::Room),
            tanks: (0..spec.tanks.len())
                .map(|_| TankBehaviour::default())
                .collect(),
            spec,
            config,
            devices,
            facts,
            touched: Touched::all(),
            last_seen: None,
        }
    }

    pub fn facts(&self) -> &RoomFacts {
        &self.facts
    }

    /// Applies one record of a device, received at `now`.
    pub fn apply(&mut self, unit: DeviceUnit, record: &Record, now: Timestamp) {
        self.last_seen = Some(now);
        let periods = self.config.stale_periods;
        let skew = self.config.max_future_skew;
        let records = std::slice::from_ref(record);
        if unit == DeviceUnit::Room {
            if self.room.apply(records, now, periods, skew).live.is_empty() {
                return;
            }
            merge_room(&mut self.facts, &self.room, now, &mut self.touched);
            self.observe_tanks(now);
            return;
        }
        let Some(i) = self.devices.iter().position(|(u, _)| *u == unit) else {
            return;
        };
        if self.devices[i]
            .1
            .apply(records, now, periods, skew)
            .live
            .is_empty()
        {
            return;
        }
        self.report(i, now, true);
    }

    /// Reports device `i` to the room's facts, as its actor does.
    fn report(&mut self, i: usize, now: Timestamp, applied: bool) {
        let Some((unit, table)) = self.devices.get(i) else {
            return;
        };
        let unit = *unit;
        let mut points = PointFacts::new(unit.kind());
        fill_points(table, &mut points, now);
        let derived = match unit {
            DeviceUnit::Tank(n) => {
                let k = usize::from(n) - 1;
                match (self.tanks.get_mut(k), self.spec.tanks.get(k)) {
                    (Some(b), Some(spec)) => {
                        if applied {
                            b.applied(table, now);
                        }
                        b.rule_facts(spec, table, now)
                    }
                    _ => Default::default(),
                }
            }
            _ => Default::default(),
        };
        merge_device(
            &mut self.facts,
            DeviceChanged {
                unit,
                points,
                derived,
            },
            &mut self.touched,
        );
    }

    /// Gives each tank its share of the room's draw (as the room actor does).
    fn observe_tanks(&mut self, now: Timestamp) {
        let flow = self.room.good_value("outlet_flow");
        let mains = self.room.good_flag("mains");
        let total: f64 = self.spec.tanks.iter().map(|t| t.area_m2).sum();
        let spec = self.spec.clone();
        for (k, t) in spec.tanks.iter().enumerate() {
            let share = if total > 0.0 { t.area_m2 / total } else { 0.0 };
            if let Some(b) = self.tanks.get_mut(k) {
                b.observe_room(&RoomObserved {
                    demand_m3h: flow.map(|f| f * share),
                    mains,
                });
            }
            if let Some(i) =
                (self.devices.iter()).position(|(u, _)| *u == DeviceUnit::Tank(k as u8 + 1))
            {
                self.report(i, now, false);
            }
        }
    }

    /// Staleness and the room's link, as the actors' one-second sweep does.
    pub fn sweep(&mut self, now: Timestamp) {
        let periods = self.config.stale_periods;
        if self.room.sweep(now, periods) > 0 {
            merge_room(&mut self.facts, &self.room, now, &mut self.touched);
        }
        for i in 0..self.devices.len() {
            if self.devices[i].1.sweep(now, periods) > 0 {
                self.report(i, now, false);
            }
        }
        let age = self
            .last_seen
            .map_or(f64::INFINITY, |t| now.since(t).as_secs_f64());
        let online = self
            .last_seen
            .is_some_and(|t| now.since(t) <= self.config.offline_after);
        self.facts.data_age_s = age;
        if online != self.facts.online {
            self.facts.online = online;
            let _ = self.touched.fact(DeviceUnit::Room, "room_online");
        }
    }

    /// Everything changed (the periodic refresh of time-based facts); flat-line times are
    /// brought up to `now`.
    pub fn touch_all(&mut self, now: Timestamp) {
        merge_room(&mut self.facts, &self.room, now, &mut self.touched);
        for i in 0..self.devices.len() {
            self.report(i, now, false);
        }
        self.touched = Touched::all();
    }

    /// What changed since the last call.
    pub fn take_touched(&mut self) -> Touched {
        std::mem::take(&mut self.touched)
    }
}
