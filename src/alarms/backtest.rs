//! `cistern rules backtest`: a rule set replayed over a site's stored history
//! ([`load_history`], [`replay_history`]) through the same point tables, facts and engine as
//! the live rooms, on a simulated clock; prints the ISA-18.2 / EEMUA 191 KPIs so that an author
//! can compare two versions of a rule before deploying one.
//!
//! The replay ([`Fleet`]) is the product's; the driver that replays a seeded simulator run with
//! injected faults instead is the lab's (`lab::backtest`), which feeds this same [`Fleet`].
use cistern_actors::alarms::replay::RoomReplay;
use cistern_actors::ActorConfig;
use cistern_rules::kpi::{compute, KpiConfig, KpiReport};
use cistern_rules::zone::zone_event_rule;
use cistern_rules::{
    AlarmEvent, EngineConfig, Notification, RoomEngine, RuleSet, ZoneConfig, ZoneCorrelator,
};
use cistern_schemas::inventory::Inventory;
use cistern_schemas::reading::{PointValue, Record, RoomReading};
use cistern_schemas::{quality, RoomId, Timestamp, ZoneId};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A backtest's result.
#[derive(Clone, Debug, Serialize)]
pub struct Backtest {
    pub rooms: usize,
    pub simulated: Duration,
    pub faults_injected: usize,
    pub rule_evaluations: u64,
    pub events: usize,
    pub notifications: usize,
    /// Annunciated alarms per injected fault (ISA-18.2: one root cause, one annunciation, so
    /// near 1); `None` when no fault was injected (a replay of history).
    pub annunciations_per_fault: Option<f64>,
    pub kpis: KpiReport,
    /// Wall-clock time of the replay.
    pub wall: Duration,
    #[serde(skip)]
    pub all_events: Vec<AlarmEvent>,
}

/// The rooms of a fleet, each with its engine, and the zones' correlators: what a backtest
/// feeds readings to and steps on its clock.
#[derive(Debug)]
pub struct Fleet {
    rooms: Vec<(RoomReplay, RoomEngine, ZoneId)>,
    index: HashMap<RoomId, usize>,
    zones: HashMap<ZoneId, ZoneCorrelator>,
    events: Vec<AlarmEvent>,
    notes: Vec<Notification>,
    last_refresh: Timestamp,
}

const REFRESH: Duration = Duration::from_secs(60);

impl Fleet {
    pub fn new(inventory: &Inventory, rules: &Arc<RuleSet>, start: Timestamp) -> Self {
        let config = Arc::new(EngineConfig::default());
        let rooms: Vec<_> = (inventory.rooms.iter())
            .map(|spec| {
                (
                    RoomReplay::new(Arc::new(spec.clone()), ActorConfig::default()),
                    RoomEngine::new(spec.id.clone(), rules.clone(), config.clone()),
                    spec.zone.clone(),
                )
            })
            .collect();
        let index = (inventory.rooms.iter().enumerate())
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let zones = (inventory.rooms.iter())
            .map(|s| {
                (
                    s.zone.clone(),
                    ZoneCorrelator::new(s.zone.clone(), ZoneConfig::default()),
                )
            })
            .collect();
        Self {
            rooms,
            index,
            zones,
            events: Vec::new(),
            notes: Vec::new(),
            last_refresh: start,
        }
    }

    /// Feeds one reading (values graded as ingest grades them).
    pub fn feed(&mut self, reading: &RoomReading, now: Timestamp) {
        let Some(&i) = self.index.get(&reading.room) else {
            return;
        };
        let replay = &mut self.rooms[i].0;
        for (unit, values) in &reading.devices {
            let specs = unit.kind().points();
            let values = (specs.iter().zip(values).enumerate())
                .filter_map(|(index, (spec, v))| {
                    let q = quality::assess(spec, *v).ok()?;
                    Some(PointValue {
                        index: index as u16,
                        value: *v,
                        quality: q,
                    })
                })
                .collect();
            replay.apply(
                *unit,
                &Record {
                    t: reading.t,
                    values,
                },
                now,
            );
        }
    }

    /// Sweeps, evaluates what changed, fires timers, correlates zones.
    pub fn step(&mut self, now: Timestamp) {
        let refresh = now.since(self.last_refresh) >= REFRESH;
        if refresh {
            self.last_refresh = now;
        }
        let mut zone_inputs = Vec::new();
        for (replay, engine, zone) in &mut self.rooms {
            replay.sweep(now);
            if refresh {
                replay.touch_all(now);
            }
            let touched = replay.take_touched();
            let mut events = engine.evaluate(replay.facts(), &touched, now, &mut self.notes);
            events.extend(engine.tick(now, &mut self.notes));
            for e in &events {
                if e.rule.as_str() == ZoneConfig::default().member_rule {
                    zone_inputs.push((zone.clone(), e.clone()));
                }
            }
            self.events.extend(events);
        }
        let mut inhibit = Vec::new();
        for (zone, e) in zone_inputs {
            if let Some(z) = self.zones.get_mut(&zone) {
                let out = z.observe(&e, now);
                self.events.extend(out.events);
                inhibit.extend(out.inhibit);
            }
        }
        for z in self.zones.values_mut() {
            if z.next_deadline().is_some_and(|d| d <= now) {
                let out = z.tick(now);
                self.events.extend(out.events);
                inhibit.extend(out.inhibit);
            }
        }
        for (room, active) in inhibit {
            if let Some(&i) = self.index.get(&room) {
                let ev =
                    self.rooms[i]
                        .1
                        .set_external(zone_event_rule(), active, now, &mut self.notes);
                self.events.extend(ev);
            }
        }
    }

    fn evaluations(&self) -> u64 {
        self.rooms
            .iter()
            .map(|(_, e, _)| e.evaluation_counts().0)
            .sum()
    }
}

/// The backtest of `fleet` over `[start, end]`, with `faults` injected faults.
pub fn finish(
    fleet: Fleet,
    rooms: usize,
    start: Timestamp,
    end: Timestamp,
    faults: usize,
    wall: Instant,
) -> Backtest {
    let kpis = compute(&fleet.events, start, end, &KpiConfig::default());
    Backtest {
        rooms,
        simulated: end.since(start),
        faults_injected: faults,
        rule_evaluations: fleet.evaluations(),
        events: fleet.events.len(),
        notifications: fleet.notes.len(),
        annunciations_per_fault: (faults > 0).then(|| kpis.annunciated as f64 / faults as f64),
        kpis,
        wall: wall.elapsed(),
        all_events: fleet.events,
    }
}

/// Replays stored readings (time-ordered) of `inventory`'s rooms through `rules`.
pub fn replay_history(
    rules: Arc<RuleSet>,
    inventory: &Inventory,
    readings: impl IntoIterator<Item = RoomReading>,
    from: Timestamp,
    to: Timestamp,
) -> Backtest {
    let wall = Instant::now();
    let mut fleet = Fleet::new(inventory, &rules, from);
    let mut clock = from;
    let step = Duration::from_secs(1);
    for reading in readings {
        while clock + step <= reading.t {
            clock = clock + step;
            fleet.step(clock);
        }
        fleet.feed(&reading, reading.t);
    }
    while clock < to {
        clock = clock + step;
        fleet.step(clock);
    }
    finish(fleet, inventory.rooms.len(), from, to, 0, wall)
}

impl std::fmt::Display for Backtest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Backtest: {} rooms, {} simulated, {} faults injected; {} rule evaluations, {} events, {} notifications; {:.1} s wall",
            self.rooms,
            humantime::format_duration(self.simulated),
            self.faults_injected,
            self.rule_evaluations,
            self.events,
            self.notifications,
            self.wall.as_secs_f64()
        )?;
        if let Some(per_fault) = self.annunciations_per_fault {
            writeln!(
                f,
                "Annunciations per injected fault: {per_fault:.2}   (target ~1: one root cause, one alarm)"
            )?;
        }
        write!(f, "{}", self.kpis)
    }
}

/// Reads the stored raw history of `inventory`'s rooms over `[from, to]` as readings, in time
/// order (a reading per room and instant; points without a sample then are NaN). Holds the
/// period in memory: pick the rooms and span accordingly.
pub async fn load_history(
    historian: &crate::historian::Historian,
    inventory: &Inventory,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<RoomReading>, crate::store::StoreError> {
    use cistern_schemas::{DeviceId, DeviceUnit, PointId};
    use std::collections::BTreeMap;
    let mut out = Vec::new();
    for spec in &inventory.rooms {
        let units = std::iter::once(DeviceUnit::Room)
            .chain((1..=spec.pumps.len() as u8).map(DeviceUnit::Pump))
            .chain((1..=spec.tanks.len() as u8).map(DeviceUnit::Tank))
            .chain((1..=spec.cameras.len() as u8).map(DeviceUnit::Camera));
        let mut by_time: BTreeMap<i64, Vec<(DeviceUnit, Vec<f64>)>> = BTreeMap::new();
        for unit in units {
            let points = unit.kind().points();
            for (i, p) in points.iter().enumerate() {
                let id = PointId {
                    device: DeviceId::new(spec.id.clone(), unit),
                    name: Arc::from(p.name),
                };
                for (t, v) in historian.history(&id, from, to).await? {
                    let devices = by_time.entry(t).or_default();
                    let slot = match devices.iter().position(|(u, _)| *u == unit) {
                        Some(k) => k,
                        None => {
                            devices.push((unit, vec![f64::NAN; points.len()]));
                            devices.len() - 1
                        }
                    };
                    devices[slot].1[i] = v;
                }
            }
        }
        out.extend(by_time.into_iter().map(|(t, devices)| RoomReading {
            room: spec.id.clone(),
            t: Timestamp(t),
            devices,
        }));
    }
    out.sort_by_key(|r| r.t);
    Ok(out)
}
