//! The booster set of a room: duty/standby pumps on variable-speed drives that hold the outlet
//! pressure set-point, and the controller a pump-room PLC runs around them.
//!
//! The controller here is what the field commonly does: the duty pump's drive holds the
//! set-point (modelled as an ideal speed target followed through a first-order ramp, like a
//! well-tuned PI loop with a 2 s acceleration time); a standby pump is staged in when the
//! running ones are at full speed and still short of pressure, and staged out when fewer could
//! carry the flow comfortably; the duty role rotates every 24 h so that wear is shared, and
//! passes to a healthy pump a few seconds after a trip; after a mains failure the drives
//! restart on their own once power is back; the low-low float stops everything (dry-run
//! protection).
//!
//! Pumps running together share one speed: on staging the controller picks the speed that
//! keeps the present head, so a pump joins or leaves without a pressure bump.

use super::noise::lag_factor;
use super::pump_curve::{
    hydraulic_power_kw, operating_point, shaft_power_kw, HeadCurve, OperatingPoint, ParallelSet,
};
use cistern_schemas::inventory::PumpSpec;

/// Lowest drive frequency as a fraction of 50 Hz (20 Hz).
pub(crate) const MIN_SPEED: f64 = 0.4;
const MAX_SPEED: f64 = 1.0;
/// The drive's speed follows its target with this time constant (acceleration ramp).
const RAMP_TAU_S: f64 = 2.0;
/// Full speed and still short of pressure this long: start another pump.
const STAGE_DELAY_S: u32 = 5;
/// One pump fewer could run at or below this speed for this long: stop one.
const DESTAGE_SPEED: f64 = 0.92;
const DESTAGE_DELAY_S: u32 = 60;
/// A tripped duty pump hands over to the next healthy one after this delay.
const CHANGEOVER_DELAY_S: u32 = 5;
/// Drives restart this long after the mains come back.
const RESTART_DELAY_S: u32 = 10;
/// Duty rotation period.
pub(crate) const ROTATION_S: u32 = 86_400;
/// Motor and drive efficiency combined (input power / shaft power).
const MOTOR_EFFICIENCY: f64 = 0.90;
const MOTOR_VOLTAGE_V: f64 = 380.0;
const MOTOR_POWER_FACTOR: f64 = 0.85;

/// One pump with its drive.
#[derive(Clone, Debug)]
pub(crate) struct Pump {
    curve: HeadCurve,
    bep_flow_m3h: f64,
    bep_efficiency: f64,
    /// Fraction of head lost to wear (the degradation fault).
    pub(crate) wear: f64,
    /// Drive or motor fault (the trip fault).
    pub(crate) tripped: bool,
    pub(crate) running: bool,
    pub(crate) run_hours: f64,
    pub(crate) starts: f64,
    pub(crate) flow_m3h: f64,
    pub(crate) power_kw: f64,
    /// Head across the pump and its hydraulic efficiency (ρgQH / shaft power) at the last
    /// step: the truth the analysis' estimates are measured against (0 when stopped).
    pub(crate) head_m: f64,
    pub(crate) efficiency: f64,
}

impl Pump {
    fn new(spec: &PumpSpec, run_hours: f64, starts: f64) -> Self {
        Self {
            curve: HeadCurve::through(spec.shutoff_head_m, spec.rated_head_m, spec.rated_flow_m3h),
            bep_flow_m3h: spec.rated_flow_m3h,
            bep_efficiency: spec.bep_efficiency,
            wear: 0.0,
            tripped: false,
            running: false,
            run_hours,
            starts,
            flow_m3h: 0.0,
            power_kw: 0.0,
            head_m: 0.0,
            efficiency: 0.0,
        }
    }

    fn effective_curve(&self) -> HeadCurve {
        if self.wear > 0.0 {
            self.curve.worn(self.wear)
        } else {
            self.curve
        }
    }

    fn start(&mut self) {
        if !self.running {
            self.running = true;
            self.starts += 1.0;
        }
    }

    /// Motor current from P = √3·V·I·pf.
    pub(crate) fn current_a(&self) -> f64 {
        self.power_kw * 1000.0 / (3.0_f64.sqrt() * MOTOR_VOLTAGE_V * MOTOR_POWER_FACTOR)
    }
}

/// What the booster needs to know about the room for one step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BoosterInputs {
    pub(crate) demand_m3h: f64,
    /// Suction pressure as metres of water (the tank level, or the mains for a tankless room).
    pub(crate) suction_m: f64,
    pub(crate) setpoint_m: f64,
    pub(crate) mains: bool,
    /// False while dry-run protection holds the pumps off.
    pub(crate) suction_ok: bool,
}

/// The pumps and their controller.
#[derive(Clone, Debug)]
pub(crate) struct Booster {
    pub(crate) pumps: Vec<Pump>,
    pub(crate) duty: usize,
    /// Speed ratio (frequency / 50 Hz) of the running pumps.
    pub(crate) speed: f64,
    stage_s: u32,
    destage_s: u32,
    changeover_s: u32,
    restart_s: u32,
    since_rotation_s: u32,
    ramp: f64,
    pub(crate) point: OperatingPoint,
}

impl Booster {
    /// A booster whose duty rotation is `rotation_phase_s` into its day; counters start at the
    /// given totals (pumps have a history).
    pub(crate) fn new(specs: &[PumpSpec], rotation_phase_s: u32, history: &[(f64, f64)]) -> Self {
        let pumps = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (hours, starts) = history.get(i).copied().unwrap_or((0.0, 0.0));
                Pump::new(s, hours, starts)
            })
            .collect();
        Self {
            pumps,
            duty: 0,
            speed: 0.0,
            stage_s: 0,
            destage_s: 0,
            changeover_s: 0,
            restart_s: 0,
            since_rotation_s: rotation_phase_s % ROTATION_S,
            ramp: lag_factor(1.0, RAMP_TAU_S),
            point: OperatingPoint {
                flow_m3h: 0.0,
                outlet_head_m: 0.0,
            },
        }
    }

    /// Puts the booster in the steady state for `inputs`: the duty pump (and as many standby
    /// pumps as the demand needs) running at the speed that holds the set-point.
    pub(crate) fn settle(&mut self, inputs: &BoosterInputs) {
        if let Some(p) = self.pumps.get_mut(self.duty) {
            p.running = true;
        }
        let head = (inputs.setpoint_m - inputs.suction_m).max(0.0);
        while self.running_set(None).speed_for(head, inputs.demand_m3h) > MAX_SPEED {
            let Some(next) = self.next_standby() else {
                break;
            };
            self.pumps[next].running = true;
        }
        self.speed = self
            .running_set(None)
            .speed_for(head, inputs.demand_m3h)
            .clamp(MIN_SPEED, MAX_SPEED);
        self.update_outputs(inputs);
    }

    /// Advances the controller and the pumps by one second.
    pub(crate) fn step(&mut self, inputs: &BoosterInputs) {
        if !inputs.mains {
            self.restart_s = RESTART_DELAY_S;
        }
        if !inputs.mains || !inputs.suction_ok || self.restart_s > 0 {
            if inputs.mains {
                self.restart_s = self.restart_s.saturating_sub(1);
            }
            self.stop_all();
            self.update_outputs(inputs);
            return;
        }
        self.change_over_if_tripped();
        self.since_rotation_s += 1;
        if self.since_rotation_s >= ROTATION_S {
            self.since_rotation_s = 0;
            self.rotate_duty();
        }
        for p in &mut self.pumps {
            if p.tripped {
                p.running = false;
            }
        }
        if !self.pumps.iter().any(|p| p.running) {
            // The drives ramp up from standstill.
            self.speed = 0.0;
        }
        if self
            .pumps
            .get(self.duty)
            .is_some_and(|p| !p.tripped && !p.running)
        {
            self.start_bumpless(self.duty, inputs);
        }
        self.stage(inputs);
        let head = (inputs.setpoint_m - inputs.suction_m).max(0.0);
        let set = self.running_set(None);
        if !set.is_empty() {
            let target = set
                .speed_for(head, inputs.demand_m3h)
                .clamp(MIN_SPEED, MAX_SPEED);
            self.speed += self.ramp * (target - self.speed);
        }
        for p in self.pumps.iter_mut().filter(|p| p.running) {
            p.run_hours += 1.0 / 3600.0;
        }
        self.update_outputs(inputs);
    }

    /// Stops every pump at once (a trip of all drives, as at a mains failure).
    pub(crate) fn stop_all(&mut self) {
        for p in &mut self.pumps {
            p.running = false;
        }
        self.speed = 0.0;
        self.stage_s = 0;
        self.destage_s = 0;
    }

    /// Takes a pump out at once (its drive tripped); the controller reacts on the next step.
    pub(crate) fn trip(&mut self, i: usize) {
        if let Some(p) = self.pumps.get_mut(i) {
            p.tripped = true;
            p.running = false;
        }
        if !self.pumps.iter().any(|p| p.running) {
            self.speed = 0.0;
        }
    }

    pub(crate) fn running_count(&self) -> usize {
        self.pumps.iter().filter(|p| p.running).count()
    }

    pub(crate) fn total_power_kw(&self) -> f64 {
        self.pumps.iter().map(|p| p.power_kw).sum()
    }

    /// Drive output frequency of pump `i`, Hz.
    pub(crate) fn frequency_hz(&self, i: usize) -> f64 {
        match self.pumps.get(i) {
            Some(p) if p.running => 50.0 * self.speed,
            _ => 0.0,
        }
    }

    fn change_over_if_tripped(&mut self) {
        if self.pumps.get(self.duty).is_some_and(|p| p.tripped) {
            self.changeover_s += 1;
            if self.changeover_s >= CHANGEOVER_DELAY_S {
                self.changeover_s = 0;
                if let Some(next) = self.next_healthy_after(self.duty) {
                    self.duty = next;
                }
            }
        } else {
            self.changeover_s = 0;
        }
    }

    fn rotate_duty(&mut self) {
        let Some(next) = self.next_healthy_after(self.duty) else {
            return;
        };
        let (old, new) = (self.duty, next);
        if self.pumps[old].running && !self.pumps[new].running {
            // The incoming pump takes the load at the same speed: identical pumps, no bump.
            self.pumps[old].running = false;
            self.pumps[new].start();
        }
        self.duty = new;
    }

    fn stage(&mut self, inputs: &BoosterInputs) {
        let head = (inputs.setpoint_m - inputs.suction_m).max(0.0);
        let set = self.running_set(None);
        if set.is_empty() {
            return;
        }
        if set.speed_for(head, inputs.demand_m3h) > MAX_SPEED {
            self.stage_s += 1;
            if self.stage_s >= STAGE_DELAY_S {
                self.stage_s = 0;
                if let Some(next) = self.next_standby() {
                    self.start_bumpless(next, inputs);
                }
            }
        } else {
            self.stage_s = 0;
        }
        let assist = self.last_assist();
        match assist {
            Some(a)
                if self.running_set(Some(a)).speed_for(head, inputs.demand_m3h)
                    <= DESTAGE_SPEED =>
            {
                self.destage_s += 1;
                if self.destage_s >= DESTAGE_DELAY_S {
                    self.destage_s = 0;
                    self.pumps[a].running = false;
                    self.hold_present_head(inputs);
                }
            }
            _ => self.destage_s = 0,
        }
    }

    /// Starts pump `i`; if others are running, resets the common speed so that the present
    /// head is kept (the controller's bumpless transfer).
    fn start_bumpless(&mut self, i: usize, inputs: &BoosterInputs) {
        let others = self.pumps.iter().any(|p| p.running);
        self.pumps[i].start();
        if others {
            self.hold_present_head(inputs);
        }
    }

    fn hold_present_head(&mut self, inputs: &BoosterInputs) {
        let set = self.running_set(None);
        if set.is_empty() {
            self.speed = 0.0;
            return;
        }
        let head = self.point.pump_head_m(inputs.suction_m);
        self.speed = set
            .speed_for(head, self.point.flow_m3h)
            .clamp(0.0, MAX_SPEED);
    }

    /// The running pumps, optionally without one.
    fn running_set(&self, without: Option<usize>) -> ParallelSet {
        let mut set = ParallelSet::default();
        for (i, p) in self.pumps.iter().enumerate() {
            if p.running && Some(i) != without {
                set.push(p.effective_curve());
            }
        }
        set
    }

    fn next_healthy_after(&self, i: usize) -> Option<usize> {
        let n = self.pumps.len();
        (1..n)
            .map(|off| (i + off) % n)
            .find(|&j| !self.pumps[j].tripped)
    }

    /// The next healthy stopped pump in rotation order after the duty pump.
    fn next_standby(&self) -> Option<usize> {
        let n = self.pumps.len();
        (1..n)
            .map(|off| (self.duty + off) % n)
            .find(|&j| !self.pumps[j].tripped && !self.pumps[j].running)
    }

    /// The running non-duty pump furthest from the duty pump in rotation order (the last one
    /// staged in), when at least two run.
    fn last_assist(&self) -> Option<usize> {
        if self.running_count() < 2 {
            return None;
        }
        let n = self.pumps.len();
        (1..n)
            .rev()
            .map(|off| (self.duty + off) % n)
            .find(|&j| self.pumps[j].running)
    }

    fn update_outputs(&mut self, inputs: &BoosterInputs) {
        let set = self.running_set(None);
        self.point = if inputs.suction_ok {
            operating_point(
                &set,
                self.speed,
                inputs.demand_m3h,
                inputs.suction_m,
                inputs.setpoint_m,
            )
        } else {
            // Nothing left above the suction: neither the pumps nor the bypass deliver.
            OperatingPoint {
                flow_m3h: 0.0,
                outlet_head_m: 0.0,
            }
        };
        let head = self.point.pump_head_m(inputs.suction_m);
        let pumping = !set.is_empty() && self.point.outlet_head_m > inputs.suction_m;
        let mut k = 0;
        let (speed, total) = (self.speed, self.point.flow_m3h);
        for p in &mut self.pumps {
            if p.running {
                let flow = if pumping {
                    set.share(k, head, speed, total)
                } else {
                    0.0
                };
                k += 1;
                let efficiency = p.bep_efficiency * (1.0 - 0.5 * p.wear);
                p.flow_m3h = flow;
                let shaft_kw = shaft_power_kw(p.bep_flow_m3h, efficiency, flow, head, speed);
                p.power_kw = shaft_kw / MOTOR_EFFICIENCY;
                p.head_m = head;
                p.efficiency = if shaft_kw > 0.0 {
                    hydraulic_power_kw(flow, head) / shaft_kw
                } else {
                    0.0
                };
            } else {
                p.flow_m3h = 0.0;
                p.power_kw = 0.0;
                p.head_m = 0.0;
                p.efficiency = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::sim::pump_curve::METRES_PER_MPA;

    fn spec(flow: f64) -> PumpSpec {
        PumpSpec {
            rated_flow_m3h: flow,
            rated_head_m: 50.0,
            shutoff_head_m: 62.5,
            rated_power_kw: 11.0,
            bep_efficiency: 0.75,
        }
    }

    fn inputs(demand: f64) -> BoosterInputs {
        BoosterInputs {
            demand_m3h: demand,
            suction_m: 2.5,
            setpoint_m: 0.45 * METRES_PER_MPA,
            mains: true,
            suction_ok: true,
        }
    }

    #[test]
    fn the_drive_settles_on_the_set_point() {
        let mut b = Booster::new(&[spec(40.0), spec(40.0)], 0, &[]);
        b.settle(&inputs(20.0));
        for _ in 0..30 {
            b.step(&inputs(25.0));
        }
        assert!((b.point.outlet_head_m - 0.45 * METRES_PER_MPA).abs() < 0.01);
        assert_eq!(b.running_count(), 1);
        assert!((20.0..=50.0).contains(&b.frequency_hz(0)));
        assert!(b.pumps[0].power_kw > 1.0 && b.pumps[1].power_kw == 0.0);
    }

    #[test]
    fn a_standby_pump_is_staged_in_and_out() {
        let mut b = Booster::new(&[spec(20.0), spec(20.0), spec(20.0)], 0, &[]);
        b.settle(&inputs(10.0));
        for _ in 0..20 {
            b.step(&inputs(45.0));
        }
        assert!(b.running_count() >= 2, "staged in at high demand");
        assert!((b.point.outlet_head_m - 0.45 * METRES_PER_MPA).abs() < 0.05);
        for _ in 0..200 {
            b.step(&inputs(8.0));
        }
        assert_eq!(b.running_count(), 1, "staged out at low demand");
    }

    #[test]
    fn a_trip_hands_over_to_the_standby_after_a_few_seconds() {
        let mut b = Booster::new(&[spec(40.0), spec(40.0)], 0, &[]);
        b.settle(&inputs(20.0));
        let starts = b.pumps[1].starts;
        b.trip(0);
        b.step(&inputs(20.0));
        assert_eq!(b.running_count(), 0);
        assert!(
            b.point.outlet_head_m < 10.0,
            "pressure collapses to the suction head"
        );
        for _ in 0..CHANGEOVER_DELAY_S + 15 {
            b.step(&inputs(20.0));
        }
        assert_eq!(b.duty, 1);
        assert!(b.pumps[1].running && b.pumps[1].starts == starts + 1.0);
        assert!((b.point.outlet_head_m - 0.45 * METRES_PER_MPA).abs() < 0.1);
    }

    #[test]
    fn the_duty_rotates_daily_without_a_bump() {
        let mut b = Booster::new(&[spec(40.0), spec(40.0)], ROTATION_S - 3, &[]);
        b.settle(&inputs(20.0));
        for _ in 0..5 {
            b.step(&inputs(20.0));
            assert!((b.point.outlet_head_m - 0.45 * METRES_PER_MPA).abs() < 0.01);
        }
        assert_eq!(b.duty, 1);
        assert!(b.pumps[1].running && !b.pumps[0].running);
    }
}
