//! The fleet gauges a water utility graphs (rooms online and offline by zone, standing alarms
//! by zone and severity, outlet flow, power and energy intensity by zone, the distribution of
//! tank levels) and the gauges of the actor tree and the alarm load that are cheaper to read
//! than to keep (mailbox depths, annunciations of the last ten minutes, the ingest lag).
//!
//! They are computed when Prometheus scrapes, from the registry's status board, the actors'
//! [`LiveFigures`] and the alarm board: a walk over 2,100 map entries per scrape, nothing per
//! sample. Labels are bounded: zones come from the inventory, severities are P1-P4, fill bands
//! a fixed list.

use cistern_actors::alarms::RuleHost;
use cistern_actors::{Clock, FleetRegistry, LiveFigures};
use cistern_rules::Severity;
use cistern_schemas::ZoneId;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, IntGauge, IntGaugeVec, Opts};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Tank fill bands, by level / overflow level: `[0, 0.1)` is "0-10", and so on; "over_100" is
/// a tank above its overflow level (a stuck inlet).
pub const FILL_BANDS: [&str; 11] = [
    "0-10", "10-20", "20-30", "30-40", "40-50", "50-60", "60-70", "70-80", "80-90", "90-100",
    "over_100",
];

/// The band of a level ratio.
pub fn fill_band(ratio: f64) -> &'static str {
    if ratio >= 1.0 {
        // Exactly full is the top of the last regular band.
        if ratio == 1.0 {
            return FILL_BANDS[9];
        }
        return FILL_BANDS[10];
    }
    let i = (ratio.max(0.0) * 10.0).floor() as usize;
    FILL_BANDS[i.min(9)]
}

/// Below this outlet flow a zone's energy intensity is not reported (a division by almost
/// nothing at night).
const MIN_FLOW_M3H: f64 = 0.5;

/// What the collector reads.
#[derive(Debug)]
pub struct FleetSources {
    pub registry: Arc<FleetRegistry>,
    pub figures: Arc<LiveFigures>,
    pub rules: Option<Arc<RuleHost>>,
    pub clock: Arc<dyn Clock>,
    /// Every zone of the inventory, so that an empty zone reports zeros rather than nothing.
    pub zones: Vec<ZoneId>,
    /// How far behind the actors apply samples.
    pub lag: Arc<cistern_actors::lag::IngestLag>,
}

/// The collector (see the module doc); register it once per registry.
#[derive(Debug)]
pub struct FleetCollector {
    src: FleetSources,
    rooms: IntGaugeVec,
    alarms: IntGaugeVec,
    flow: GaugeVec,
    power: GaugeVec,
    intensity: GaugeVec,
    tanks: IntGaugeVec,
    mailbox: IntGaugeVec,
    mailbox_max: IntGaugeVec,
    annunciations: IntGauge,
    lag: Gauge,
    /// Two scrapes at once must not interleave their resets and sets.
    collecting: Mutex<()>,
}

impl FleetCollector {
    pub fn new(src: FleetSources) -> Result<Self, prometheus::Error> {
        let zone = &["zone"];
        Ok(Self {
            src,
            rooms: IntGaugeVec::new(
                Opts::new("cistern_fleet_rooms", "Pump rooms by zone and status (online, offline)"),
                &["zone", "status"],
            )?,
            alarms: IntGaugeVec::new(
                Opts::new(
                    "cistern_fleet_alarms_active",
                    "Standing alarms (unacknowledged, acknowledged, returned unacknowledged) by zone and severity",
                ),
                &["zone", "severity"],
            )?,
            flow: GaugeVec::new(
                Opts::new("cistern_fleet_outlet_flow_m3_per_hour", "Outlet flow of the zone's online rooms, m³/h"),
                zone,
            )?,
            power: GaugeVec::new(
                Opts::new("cistern_fleet_active_power_kilowatts", "Active power of the zone's online rooms, kW"),
                zone,
            )?,
            intensity: GaugeVec::new(
                Opts::new(
                    "cistern_fleet_energy_intensity_kwh_per_m3",
                    "Energy per volume pumped in the zone now (power over flow of the rooms that report both), kWh/m³",
                ),
                zone,
            )?,
            tanks: IntGaugeVec::new(
                Opts::new(
                    "cistern_fleet_tanks",
                    "Tanks with a good level, by zone and fill band (level / overflow level, %)",
                ),
                &["zone", "fill"],
            )?,
            mailbox: IntGaugeVec::new(
                Opts::new(
                    "cistern_actor_mailbox_depth_batches",
                    "Batches accepted by actors but not yet applied, summed over the fleet, by kind (a room's count includes its devices')",
                ),
                &["kind"],
            )?,
            mailbox_max: IntGaugeVec::new(
                Opts::new(
                    "cistern_actor_mailbox_depth_max_batches",
                    "The fullest actor's unapplied batches, by kind (ingest waits when it reaches the mailbox size)",
                ),
                &["kind"],
            )?,
            annunciations: IntGauge::new(
                "cistern_alarm_annunciation_rate_per_10min",
                "Alarms annunciated in the last 10 minutes (ISA-18.2 alarm load: ~1 acceptable, over 10 a flood)",
            )?,
            lag: Gauge::new(
                "cistern_ingest_apply_lag_seconds",
                "Age of the youngest sample the actors applied in the last 5-10 s (how far behind the node applies; 0 when nothing was applied lately); readiness fails past [actors] max_ingest_lag",
            )?,
            collecting: Mutex::new(()),
        })
    }

    fn families(&self) -> [&dyn Collector; 10] {
        [
            &self.rooms,
            &self.alarms,
            &self.flow,
            &self.power,
            &self.intensity,
            &self.tanks,
            &self.mailbox,
            &self.mailbox_max,
            &self.annunciations,
            &self.lag,
        ]
    }

    /// Recomputes every gauge from the sources.
    fn refresh(&self) {
        let src = &self.src;
        for v in [&self.rooms, &self.alarms, &self.tanks] {
            v.reset();
        }
        for v in [&self.flow, &self.power, &self.intensity] {
            v.reset();
        }
        let lag = src.lag.lag(src.clock.now());
        self.lag.set(lag.map_or(0.0, |l| l.as_secs_f64()));
        let mut zones: HashMap<ZoneId, ZoneTotals> = HashMap::new();
        for z in &src.zones {
            zones.entry(z.clone()).or_default();
        }
        let (mut held, mut held_max) = (0usize, 0usize);
        src.registry.visit(|spec, online, depth| {
            held += depth;
            held_max = held_max.max(depth);
            let z = zones.entry(spec.zone.clone()).or_default();
            if online {
                z.online += 1;
                let f = src.figures.room(&spec.id);
                z.flow += f.outlet_flow_m3h.unwrap_or(0.0);
                z.power += f.active_power_kw.unwrap_or(0.0);
                if let (Some(q), Some(p)) = (f.outlet_flow_m3h, f.active_power_kw) {
                    z.both_flow += q;
                    z.both_power += p;
                }
            } else {
                z.offline += 1;
            }
        });
        let mut bands: HashMap<(ZoneId, &'static str), i64> = HashMap::new();
        for (room, ratio) in src.figures.tanks() {
            if let Some(spec) = src.registry.spec(&room) {
                *bands
                    .entry((spec.zone.clone(), fill_band(ratio)))
                    .or_default() += 1;
            }
        }
        for (zone, t) in &zones {
            let z = zone.as_str();
            self.rooms.with_label_values(&[z, "online"]).set(t.online);
            self.rooms.with_label_values(&[z, "offline"]).set(t.offline);
            self.flow.with_label_values(&[z]).set(t.flow);
            self.power.with_label_values(&[z]).set(t.power);
            if t.both_flow >= MIN_FLOW_M3H {
                self.intensity
                    .with_label_values(&[z])
                    .set(t.both_power / t.both_flow);
            }
            for band in FILL_BANDS {
                let n = bands.get(&(zone.clone(), band)).copied().unwrap_or(0);
                self.tanks.with_label_values(&[z, band]).set(n);
            }
        }
        self.mailbox.with_label_values(&["room"]).set(held as i64);
        self.mailbox_max
            .with_label_values(&["room"])
            .set(held_max as i64);
        if let Some(host) = &src.rules {
            let counts = host.board.counts_by_zone();
            for zone in zones.keys() {
                for sev in Severity::ALL {
                    let n = counts.get(&(zone.clone(), sev)).copied().unwrap_or(0);
                    self.alarms
                        .with_label_values(&[zone.as_str(), sev.as_str()])
                        .set(n as i64);
                }
            }
            let n = host.metrics.annunciations.last_10_min(src.clock.now());
            self.annunciations.set(n as i64);
        }
    }
}

#[derive(Debug, Default)]
struct ZoneTotals {
    online: i64,
    offline: i64,
    flow: f64,
    power: f64,
    /// Flow and power of the rooms that report both (for the intensity).
    both_flow: f64,
    both_power: f64,
}

impl Collector for FleetCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.families().into_iter().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _guard = self.collecting.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh();
        self.families()
            .into_iter()
            .flat_map(|c| c.collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_bands_cover_every_level() {
        assert_eq!(fill_band(-0.1), "0-10");
        assert_eq!(fill_band(0.0), "0-10");
        assert_eq!(fill_band(0.0999), "0-10");
        assert_eq!(fill_band(0.1), "10-20");
        assert_eq!(fill_band(0.95), "90-100");
        assert_eq!(fill_band(1.0), "90-100");
        assert_eq!(fill_band(1.02), "over_100");
    }
}
