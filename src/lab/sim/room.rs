//! One simulated pump room: the physics that ties demand, mains, tanks, booster pumps, power,
//! water quality, climate and security together, one second at a time, and the faults
//! injected into it.
//!
//! Each room owns its random streams (physics and faults) and never looks at another room, so
//! the fleet can be stepped in any order or split across threads with identical results. The
//! physics stream is drawn a fixed number of times per second whatever state the room is in:
//! a faulted room and its healthy twin see the same demand, weather and visits, which is what
//! lets tests (and operators replaying an incident) compare the two.

use super::booster::{Booster, BoosterInputs, ROTATION_S};
use super::clock::LocalClock;
use super::demand::DemandModel;
use super::environment::Environment;
use super::faults::{ActiveFault, FaultKind, InjectedFault, RoomFaultEffects};
use super::noise::{measurement_key, room_rng, OrnsteinUhlenbeck, Stream};
use super::power_meter::PowerMeter;
use super::pump_curve::METRES_PER_MPA;
use super::security::Security;
use super::tank::Tank;
use super::water_quality::WaterQuality;
use super::SimError;
use cistern_schemas::ids::DeviceUnit;
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::{RoomId, Timestamp};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// The physics step, s.
pub(crate) const STEP_S: f64 = 1.0;
/// Pressure lost in the service pipe at full inlet capacity, MPa (what the inlet gauge shows
/// while the valve is open).
const SERVICE_PIPE_LOSS_MPA: f64 = 0.02;
/// The dry-run lockout releases when a tank has refilled this far above its supply floor.
const LOCKOUT_RELEASE_M: f64 = 0.2;

/// The municipal main at the room's inlet.
#[derive(Clone, Debug)]
pub(crate) struct Mains {
    pub(crate) nominal_mpa: f64,
    /// How much the pressure sags at the district's busiest hour.
    dip_mpa: f64,
    wander: OrnsteinUhlenbeck,
}

impl Mains {
    fn new(rng: &mut ChaCha8Rng) -> Self {
        Self {
            nominal_mpa: rng.random_range(0.25..0.38),
            dip_mpa: rng.random_range(0.02..0.05),
            wander: OrnsteinUhlenbeck::new(0.008, 1800.0, STEP_S, rng),
        }
    }

    fn pressure_mpa(&self, busyness: f64) -> f64 {
        (self.nominal_mpa - self.dip_mpa * busyness + self.wander.value()).clamp(0.08, 0.6)
    }
}

/// Physics state of one tank, for tests and the demo's diagnostics page.
#[derive(Clone, Debug, PartialEq)]
pub struct TankDiagnostics {
    pub unit: DeviceUnit,
    pub level_m: f64,
    pub volume_m3: f64,
    /// Volume when the simulation started, m³.
    pub initial_volume_m3: f64,
    /// Cumulative volumes since the start, m³: V_now − V_start = inflow − outflow − leak −
    /// overflow.
    pub inflow_m3: f64,
    pub outflow_m3: f64,
    pub leak_m3: f64,
    pub overflow_m3: f64,
    pub chlorine_mg_l: f64,
    pub water_age_h: f64,
    /// Inflow at the last step, m³/h.
    pub inflow_m3h: f64,
    /// What the controller's fill logic did at the last step.
    pub fill_mode: cistern_schemas::fill_plan::FillMode,
    /// The plan the controller holds (as written to its registers).
    pub plan: Option<cistern_actors::district::LocalRule>,
}

/// Physics state of one pump at the last step (true values).
#[derive(Clone, Debug, PartialEq)]
pub struct PumpDiagnostics {
    pub unit: DeviceUnit,
    pub running: bool,
    pub flow_m3h: f64,
    pub head_m: f64,
    /// Drive speed / rated speed.
    pub speed_ratio: f64,
    /// Hydraulic efficiency: ρgQH / shaft power (0 when stopped).
    pub efficiency: f64,
    /// Electrical input, kW.
    pub power_kw: f64,
}

/// Physics state of one room (true values, not what the instruments read).
#[derive(Clone, Debug, PartialEq)]
pub struct RoomDiagnostics {
    pub room: RoomId,
    pub t: Timestamp,
    /// What the consumers want, m³/h.
    pub demand_m3h: f64,
    /// What they get, m³/h (less when pressure cannot be held).
    pub served_m3h: f64,
    /// Lost from a pipe leak after the booster outlet, m³/h (the outlet meter sees it on top
    /// of what the consumers get).
    pub pipe_leak_m3h: f64,
    /// Cumulative demand and supply since the start, m³.
    pub demand_m3: f64,
    pub served_m3: f64,
    pub outlet_pressure_mpa: f64,
    pub setpoint_mpa: f64,
    pub mains_pressure_mpa: f64,
    /// Drive speed of the running pumps (frequency / 50 Hz).
    pub speed_ratio: f64,
    pub pumps_running: usize,
    pub duty_pump: DeviceUnit,
    pub pump_power_kw: f64,
    /// Dry-run protection is holding the pumps off.
    pub dry_run_lockout: bool,
    pub tanks: Vec<TankDiagnostics>,
    pub pumps: Vec<PumpDiagnostics>,
    /// The room's energy use since the meter was new (the physics the meter integrates), kWh.
    pub energy_kwh: f64,
}

#[derive(Debug)]
pub(crate) struct RoomSim {
    pub(super) id: RoomId,
    pub(super) units: Vec<DeviceUnit>,
    pub(super) setpoint_mpa: f64,
    setpoint_m: f64,
    /// The outlet pressure transmitter's reading at 3.0 mA (with the room's range overrides).
    pub(super) failed_outlet_pressure: f64,
    rng: ChaCha8Rng,
    fault_rng: ChaCha8Rng,
    pub(super) noise_key: u64,
    demand: DemandModel,
    mains: Mains,
    pub(super) tanks: Vec<Tank>,
    pub(super) dry_run_lockout: bool,
    pub(super) booster: Booster,
    pub(super) quality: WaterQuality,
    pub(super) climate: Environment,
    pub(super) security: Security,
    pub(super) meter: PowerMeter,
    pub(super) faults: Vec<InjectedFault>,
    pub(super) effects: RoomFaultEffects,
    demand_m3h: f64,
    pub(super) served_m3h: f64,
    pub(super) mains_mpa: f64,
    pub(super) inlet_pressure_mpa: f64,
    pub(super) inlet_flow_m3h: f64,
    pub(super) tank_chlorine_mg_l: f64,
    pub(super) outlet_volume_m3: f64,
    pub(super) inlet_volume_m3: f64,
    demand_total_m3: f64,
    served_total_m3: f64,
    /// The size the next pipe leak injected takes, as a fraction of the mean flow (else drawn).
    pipe_leak_fraction: Option<f64>,
}

impl RoomSim {
    pub(crate) fn new(spec: &RoomSpec, index: usize, seed: u64, start: Timestamp) -> Self {
        let clock = LocalClock::at(start);
        let mut rng = room_rng(seed, Stream::Physics, index);
        let fault_rng = room_rng(seed, Stream::Faults, index);
        let demand = DemandModel::new(spec.households, &clock, &mut rng);
        let mains = Mains::new(&mut rng);
        let quality = WaterQuality::new(&mut rng);
        let climate = Environment::new(&clock, &mut rng);
        let full_load_kw: f64 = spec.pumps.iter().map(|p| p.rated_power_kw).sum();
        let meter = PowerMeter::new(full_load_kw, &mut rng);

        let per_tank_demand = demand.mean_m3h() / spec.tanks.len().max(1) as f64;
        let tanks: Vec<Tank> = spec
            .tanks
            .iter()
            .map(|t| {
                let level = rng.random_range(t.refill_on_m..=t.refill_off_m);
                let age_h = (t.volume_m3(level) / per_tank_demand.max(0.1)).clamp(2.0, 48.0);
                let chlorine = quality.inlet_chlorine_mg_l() / (1.0 + quality.decay_per_h * age_h);
                let mut tank = Tank::new(t, level, chlorine, age_h);
                // Inside the float valve's dead band either state is possible.
                tank.valve_open = rng.random_bool(0.3);
                tank
            })
            .collect();

        let history: Vec<(f64, f64)> = spec
            .pumps
            .iter()
            .map(|_| {
                (
                    rng.random_range(2_000.0..30_000.0),
                    rng.random_range(200.0_f64..5_000.0).round(),
                )
            })
            .collect();
        let mut booster = Booster::new(&spec.pumps, rng.random_range(0..ROTATION_S), &history);
        booster.duty = rng.random_range(0..spec.pumps.len().max(1));
        let outlet_volume_m3 = demand.mean_m3h() * 24.0 * 365.0 * rng.random_range(1.0..8.0);
        let inlet_volume_m3 = outlet_volume_m3 * rng.random_range(1.0..1.002);

        let outlet_pressure_spec = spec
            .point_specs(DeviceUnit::Room)
            .into_iter()
            .find(|p| p.name == "outlet_pressure");
        let failed_outlet_pressure =
            outlet_pressure_spec.map_or(-0.1, |p| p.value_at_milliamps(3.0));

        let mut room = Self {
            id: spec.id.clone(),
            units: spec.units(),
            setpoint_mpa: spec.outlet_setpoint_mpa,
            setpoint_m: spec.outlet_setpoint_mpa * METRES_PER_MPA,
            failed_outlet_pressure,
            rng,
            fault_rng,
            noise_key: measurement_key(seed, index),
            demand,
            mains,
            tanks,
            dry_run_lockout: false,
            booster,
            quality,
            climate,
            security: Security::default(),
            meter,
            faults: Vec::new(),
            effects: RoomFaultEffects::default(),
            demand_m3h: 0.0,
            served_m3h: 0.0,
            mains_mpa: 0.0,
            inlet_pressure_mpa: 0.0,
            inlet_flow_m3h: 0.0,
            tank_chlorine_mg_l: 0.0,
            outlet_volume_m3,
            inlet_volume_m3,
            demand_total_m3: 0.0,
            served_total_m3: 0.0,
            pipe_leak_fraction: None,
        };
        room.settle(&clock);
        room
    }

    /// Puts the room in a steady state at `clock` (pumps at speed, instruments reading).
    fn settle(&mut self, clock: &LocalClock) {
        self.demand_m3h = self.demand.current(clock);
        self.mains_mpa = self.mains.pressure_mpa(self.demand.busyness(clock));
        let inputs = self.booster_inputs(self.demand_m3h);
        self.booster.settle(&inputs);
        self.served_m3h = self.booster.point.flow_m3h;
        for tank in &mut self.tanks {
            tank.inflow_m3h = tank.valve_flow_m3h(self.mains_mpa, self.mains.nominal_mpa);
        }
        self.inlet_flow_m3h = self.tanks.iter().map(|t| t.inflow_m3h).sum();
        self.inlet_pressure_mpa = self.inlet_gauge_mpa();
        self.tank_chlorine_mg_l = self.mixed_tank_chlorine();
        self.meter.update(true, self.booster.total_power_kw());
    }

    /// Takes what the platform wrote to the room's controller: the tanks' plans and the
    /// outlet pressure set-point.
    pub(crate) fn apply_writes(&mut self, writes: &super::ControllerWrites) {
        for (tank, plan) in self.tanks.iter_mut().zip(&writes.plans) {
            tank.plan = plan
                .as_ref()
                .map(cistern_actors::district::LocalRule::from_image);
        }
        if let Some(mpa) = writes.outlet_setpoint_mpa.filter(|v| v.is_finite()) {
            self.setpoint_mpa = mpa;
            self.setpoint_m = mpa * METRES_PER_MPA;
        }
    }

    /// Advances the room by one second, from `clock` to `clock + 1 s` (= `end`).
    pub(crate) fn step(&mut self, clock: &LocalClock, end: Timestamp) {
        // Exogenous randomness first, a fixed number of draws whatever the state.
        let rng = &mut self.rng;
        let demand = self.demand.step(clock, rng);
        self.mains.wander.step(rng);
        self.quality
            .step(self.effects.chlorine_mg_l, self.effects.turbidity_ntu, rng);
        self.climate.step(
            clock,
            self.booster.total_power_kw(),
            self.effects.flooding,
            rng,
        );
        self.security.step(
            clock,
            self.effects.chattering_door,
            rng,
            &mut self.fault_rng,
        );
        self.demand_m3h = demand;

        let busy = self.demand.busyness(clock);
        self.mains_mpa = self
            .effects
            .mains_pressure_mpa
            .unwrap_or_else(|| self.mains.pressure_mpa(busy));
        self.update_dry_run_lockout();
        // A pipe leak after the outlet is drawn through the booster like any other use.
        let inputs = self.booster_inputs(demand + self.effects.pipe_leak_m3h);
        self.booster.step(&inputs);
        let wanted = self.booster.point.flow_m3h;

        let served = if self.tanks.is_empty() {
            // A tankless (direct-boost) station draws straight from the main.
            self.inlet_flow_m3h = wanted;
            wanted
        } else {
            self.balance_tanks(wanted, cistern_schemas::fill_plan::slot_at(clock.t_s))
        };
        self.served_m3h = served;
        self.inlet_pressure_mpa = self.inlet_gauge_mpa();
        let inlet_chlorine = self.quality.inlet_chlorine_mg_l();
        for tank in &mut self.tanks {
            tank.mix(inlet_chlorine, self.quality.decay_per_h, STEP_S);
        }
        self.tank_chlorine_mg_l = self.mixed_tank_chlorine();
        self.meter.step(
            !self.effects.mains_lost,
            self.booster.total_power_kw(),
            &mut self.rng,
        );

        let hours = STEP_S / 3600.0;
        self.outlet_volume_m3 += served * hours;
        self.inlet_volume_m3 += self.inlet_flow_m3h * hours;
        self.demand_total_m3 += demand * hours;
        self.served_total_m3 += served * hours;

        self.expire_faults(end);
    }

    fn booster_inputs(&self, demand_m3h: f64) -> BoosterInputs {
        BoosterInputs {
            demand_m3h,
            suction_m: self.suction_m(),
            setpoint_m: self.setpoint_m,
            mains: !self.effects.mains_lost,
            suction_ok: !self.dry_run_lockout,
        }
    }

    /// Suction pressure as metres of water: the level of the tanks that can supply
    /// (area-weighted: they share the suction header), or the main for a tankless room.
    fn suction_m(&self) -> f64 {
        if self.tanks.is_empty() {
            return self.mains_mpa * METRES_PER_MPA;
        }
        let (mut area, mut weighted) = (0.0, 0.0);
        for t in self.tanks.iter().filter(|t| t.can_supply(0.0)) {
            area += t.area_m2();
            weighted += t.area_m2() * t.level_m();
        }
        if area > 0.0 {
            weighted / area
        } else {
            self.tanks.iter().map(Tank::level_m).fold(0.0, f64::max)
        }
    }

    /// The low-low float stops the pumps when no tank can supply, and releases them once one
    /// has refilled a little (hysteresis, so the pumps do not hunt on the float).
    fn update_dry_run_lockout(&mut self) {
        if self.tanks.is_empty() {
            self.dry_run_lockout = false;
        } else if self.dry_run_lockout {
            self.dry_run_lockout = !self.tanks.iter().any(|t| t.can_supply(LOCKOUT_RELEASE_M));
        } else {
            self.dry_run_lockout = !self.tanks.iter().any(|t| t.can_supply(0.0));
        }
    }

    /// Refills and draws the tanks for one step; returns the flow actually delivered.
    fn balance_tanks(&mut self, wanted_m3h: f64, slot: u32) -> f64 {
        let supplying_area: f64 = self
            .tanks
            .iter()
            .filter(|t| t.can_supply(0.0))
            .map(Tank::area_m2)
            .sum();
        let (mains, nominal) = (self.mains_mpa, self.mains.nominal_mpa);
        let mut served = 0.0;
        let mut inflow_total = 0.0;
        for tank in &mut self.tanks {
            tank.update_valve(slot);
            let inflow = tank.valve_flow_m3h(mains, nominal);
            let draw = if supplying_area > 0.0 && tank.can_supply(0.0) {
                wanted_m3h * tank.area_m2() / supplying_area
            } else {
                0.0
            };
            served += tank.balance(inflow, draw, STEP_S);
            inflow_total += inflow;
        }
        self.inlet_flow_m3h = inflow_total;
        served
    }

    /// The inlet gauge sits upstream of the valve(s): the main less the service pipe's loss.
    fn inlet_gauge_mpa(&self) -> f64 {
        let capacity: f64 = self.tanks.iter().map(Tank::inlet_capacity_m3h).sum();
        let loading = if capacity > 0.0 {
            (self.inlet_flow_m3h / capacity).min(1.5)
        } else {
            0.0
        };
        (self.mains_mpa - SERVICE_PIPE_LOSS_MPA * loading * loading).max(0.0)
    }

    /// Outlet chlorine before the analyser: the tanks mixed in proportion to what they give.
    fn mixed_tank_chlorine(&self) -> f64 {
        if self.tanks.is_empty() {
            return self.quality.inlet_chlorine_mg_l();
        }
        let outflow: f64 = self.tanks.iter().map(|t| t.outflow_m3h).sum();
        let weight = |t: &Tank| {
            if outflow > 0.0 {
                t.outflow_m3h
            } else {
                t.area_m2()
            }
        };
        let total: f64 = self.tanks.iter().map(weight).sum();
        if total <= 0.0 {
            return self.quality.inlet_chlorine_mg_l();
        }
        self.tanks
            .iter()
            .map(|t| weight(t) * t.chlorine_mg_l)
            .sum::<f64>()
            / total
    }

    /// True outlet pressure, MPa.
    pub(super) fn outlet_pressure_mpa(&self) -> f64 {
        self.booster.point.outlet_head_m / METRES_PER_MPA
    }

    pub(crate) fn comms_up(&self) -> bool {
        !self.effects.comms_lost
    }

    pub(crate) fn active_faults(&self) -> impl Iterator<Item = &ActiveFault> {
        self.faults.iter().map(|f| &f.record)
    }

    /// Starts a pipe leak of `fraction` of the room's mean flow now for `duration`.
    pub(crate) fn inject_pipe_leak(
        &mut self,
        fraction: f64,
        now: Timestamp,
        duration: Duration,
    ) -> Result<(), SimError> {
        self.pipe_leak_fraction = Some(fraction);
        let result = self.inject(FaultKind::PipeLeak, now, duration);
        self.pipe_leak_fraction = None;
        result
    }

    /// The room's long-run mean demand, m³/h (what a pipe leak's fraction is of).
    pub(crate) fn mean_demand_m3h(&self) -> f64 {
        self.demand.mean_m3h()
    }

    /// Starts `kind` now for `duration`.
    pub(crate) fn inject(
        &mut self,
        kind: FaultKind,
        now: Timestamp,
        duration: Duration,
    ) -> Result<(), SimError> {
        if duration.as_millis() == 0 {
            return Err(SimError::ZeroDuration {
                room: self.id.clone(),
                fault: kind,
            });
        }
        let needs_tank = matches!(kind, FaultKind::TankLeak | FaultKind::Overflow);
        if needs_tank && self.tanks.is_empty() {
            return Err(SimError::NotApplicable {
                room: self.id.clone(),
                fault: kind,
                needs: "a tank",
            });
        }
        let rng = &mut self.fault_rng;
        let duty = self.booster.duty;
        let (device, magnitude, target) = match kind {
            FaultKind::PumpTrip => {
                let pumps = &self.booster.pumps;
                let victim = if pumps.get(duty).is_some_and(|p| !p.tripped) {
                    duty
                } else {
                    pumps
                        .iter()
                        .position(|p| p.running && !p.tripped)
                        .unwrap_or(duty)
                };
                (
                    victim,
                    0.0,
                    Some(DeviceUnit::Pump(victim as u8 + 1).to_string()),
                )
            }
            FaultKind::PumpDegradation => {
                let wear = rng.random_range(0.15..0.25);
                (
                    duty,
                    wear,
                    Some(DeviceUnit::Pump(duty as u8 + 1).to_string()),
                )
            }
            FaultKind::TankLeak => {
                let share = rng.random_range(0.3..0.6);
                let depth = self.tanks.first().map_or(1.0, |t| t.level_m().max(0.5));
                let coefficient = share * self.demand.mean_m3h() / depth.sqrt();
                (0, coefficient, Some(DeviceUnit::Tank(1).to_string()))
            }
            FaultKind::Overflow => (0, 0.0, Some(DeviceUnit::Tank(1).to_string())),
            FaultKind::InletPressureLoss => (0, rng.random_range(0.015..0.025), None),
            FaultKind::ChlorineDrop => (0, rng.random_range(0.02..0.05), None),
            FaultKind::TurbiditySpike => (0, rng.random_range(3.0..5.0), None),
            FaultKind::StuckSensor => {
                let frozen = self.measured_outlet_pressure(now);
                (0, frozen, Some("outlet_pressure".to_owned()))
            }
            FaultKind::FailedSensor => (0, 0.0, Some("outlet_pressure".to_owned())),
            FaultKind::ChatteringContact => (0, 0.0, Some("door".to_owned())),
            FaultKind::PipeLeak => {
                let fraction = self
                    .pipe_leak_fraction
                    .take()
                    .unwrap_or_else(|| rng.random_range(0.02..0.05));
                (0, fraction.max(0.0) * self.demand.mean_m3h(), None)
            }
            FaultKind::CommsLoss
            | FaultKind::MainsLoss
            | FaultKind::Flooding
            | FaultKind::Smoke
            | FaultKind::Intrusion => (0, 0.0, None),
        };
        self.faults.push(InjectedFault {
            record: ActiveFault {
                room: self.id.clone(),
                fault: kind,
                started: now,
                ends: now + duration,
                target,
            },
            device,
            magnitude,
        });
        self.apply_faults();
        Ok(())
    }

    /// Ends the faults whose time is up.
    fn expire_faults(&mut self, now: Timestamp) {
        if self.faults.iter().any(|f| f.record.ends <= now) {
            self.faults.retain(|f| f.record.ends > now);
            self.apply_faults();
        }
    }

    /// Recomputes every fault effect from the list of active faults.
    fn apply_faults(&mut self) {
        self.effects = RoomFaultEffects::of(&self.faults);
        for p in &mut self.booster.pumps {
            p.tripped = false;
            p.wear = 0.0;
        }
        for t in &mut self.tanks {
            t.leak_coefficient = 0.0;
            t.valve_stuck_open = false;
        }
        for f in &self.faults {
            match f.record.fault {
                FaultKind::PumpTrip => self.booster.trip(f.device),
                FaultKind::PumpDegradation => {
                    if let Some(p) = self.booster.pumps.get_mut(f.device) {
                        p.wear = p.wear.max(f.magnitude);
                    }
                }
                FaultKind::TankLeak => {
                    if let Some(t) = self.tanks.get_mut(f.device) {
                        t.leak_coefficient += f.magnitude;
                    }
                }
                FaultKind::Overflow => {
                    if let Some(t) = self.tanks.get_mut(f.device) {
                        t.valve_stuck_open = true;
                        t.update_valve(0);
                    }
                }
                _ => {}
            }
        }
        if self.effects.mains_lost {
            self.booster.stop_all();
        }
        // The meter shows the loss, or the return, of the mains at once.
        self.meter
            .update(!self.effects.mains_lost, self.booster.total_power_kw());
    }

    pub(crate) fn diagnostics(&self, t: Timestamp) -> RoomDiagnostics {
        let tanks = self
            .tanks
            .iter()
            .enumerate()
            .map(|(i, tank)| TankDiagnostics {
                unit: DeviceUnit::Tank(i as u8 + 1),
                level_m: tank.level_m(),
                volume_m3: tank.volume_m3,
                initial_volume_m3: tank.totals.initial_m3,
                inflow_m3: tank.totals.inflow_m3,
                outflow_m3: tank.totals.outflow_m3,
                leak_m3: tank.totals.leak_m3,
                overflow_m3: tank.totals.overflow_m3,
                chlorine_mg_l: tank.chlorine_mg_l,
                water_age_h: tank.age_h,
                inflow_m3h: tank.inflow_m3h,
                fill_mode: tank.mode,
                plan: tank.plan.clone(),
            })
            .collect();
        RoomDiagnostics {
            room: self.id.clone(),
            t,
            demand_m3h: self.demand_m3h,
            served_m3h: self.served_m3h,
            pipe_leak_m3h: self.effects.pipe_leak_m3h,
            demand_m3: self.demand_total_m3,
            served_m3: self.served_total_m3,
            outlet_pressure_mpa: self.outlet_pressure_mpa(),
            setpoint_mpa: self.setpoint_mpa,
            mains_pressure_mpa: self.mains_mpa,
            speed_ratio: self.booster.speed,
            pumps_running: self.booster.running_count(),
            duty_pump: DeviceUnit::Pump(self.booster.duty as u8 + 1),
            pump_power_kw: self.booster.total_power_kw(),
            dry_run_lockout: self.dry_run_lockout,
            tanks,
            pumps: self
                .booster
                .pumps
                .iter()
                .enumerate()
                .map(|(i, p)| PumpDiagnostics {
                    unit: DeviceUnit::Pump(i as u8 + 1),
                    running: p.running,
                    flow_m3h: p.flow_m3h,
                    head_m: p.head_m,
                    speed_ratio: if p.running { self.booster.speed } else { 0.0 },
                    efficiency: p.efficiency,
                    power_kw: p.power_kw,
                })
                .collect(),
            energy_kwh: self.meter.energy_kwh,
        }
    }
}
